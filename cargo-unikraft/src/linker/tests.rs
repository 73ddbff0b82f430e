//! Unit tests of the linker wrapper's pure parts (arguments, response files, plans).

use std::os::unix::ffi::OsStringExt;

use super::*;

fn os(args: &[&str]) -> Vec<OsString> {
    args.iter().map(OsString::from).collect()
}

/// rustc 1.95's link line for a `cargo new --bin` release build (shortened paths).
fn rustc_hello_line() -> Vec<OsString> {
    os(&[
        "-m64",
        "/tmp/rustcXYZ/symbols.o",
        "/t/release/deps/hello-1.hello.abc-cgu.0.rcgu.o",
        "/t/release/deps/hello-1.alloc.rcgu.o",
        "-Wl,--as-needed",
        "-Wl,-Bstatic",
        "/sys/lib/libstd-d1.rlib",
        "/sys/lib/libpanic_unwind-4b.rlib",
        "/sys/lib/libcore-12.rlib",
        "/sys/lib/libcompiler_builtins-27.rlib",
        "-Wl,-Bdynamic",
        "-lgcc_s",
        "-lutil",
        "-lrt",
        "-lpthread",
        "-lm",
        "-ldl",
        "-lc",
        "-L",
        "/tmp/rustcXYZ/raw-dylibs",
        "-B/sys/bin/gcc-ld",
        "-fuse-ld=lld",
        "-Wl,--eh-frame-hdr",
        "-Wl,-z,noexecstack",
        "-L",
        "/sys/lib",
        "-o",
        "/t/release/deps/hello-1",
        "-Wl,--gc-sections",
        "-pie",
        "-Wl,-z,relro,-z,now",
        "-Wl,-O1",
        "-Wl,--strip-debug",
        "-nodefaultlibs",
    ])
}

#[test]
fn rustc_link_line_keeps_objects_and_rlibs_and_drops_the_c_runtime() {
    let line = parse_link_line(&rustc_hello_line()).unwrap();
    assert_eq!(line.output, Some(PathBuf::from("/t/release/deps/hello-1")));
    assert_eq!(line.search_dirs, vec![PathBuf::from("/tmp/rustcXYZ/raw-dylibs"), PathBuf::from("/sys/lib")]);
    assert!(!line.shared);
    assert_eq!(host_link_reason(&line), None);
    let plan = plan_link(&line, &|_| panic!("no library should be searched")).unwrap();
    let members: Vec<_> = plan.members.iter().map(|(p, w)| (p.to_str().unwrap(), *w)).collect();
    assert_eq!(
        members,
        vec![
            ("/tmp/rustcXYZ/symbols.o", false),
            ("/t/release/deps/hello-1.hello.abc-cgu.0.rcgu.o", false),
            ("/t/release/deps/hello-1.alloc.rcgu.o", false),
            ("/sys/lib/libstd-d1.rlib", false),
            ("/sys/lib/libpanic_unwind-4b.rlib", false),
            ("/sys/lib/libcore-12.rlib", false),
            ("/sys/lib/libcompiler_builtins-27.rlib", false),
        ]
    );
    assert_eq!(plan.dropped_libs, ["gcc_s", "util", "rt", "pthread", "m", "dl", "c"]);
}

#[test]
fn joined_and_separate_option_values_are_equivalent() {
    let a = parse_link_line(&os(&["-o", "out", "-L", "/d", "-l", "foo", "x.o"])).unwrap();
    let b = parse_link_line(&os(&["-oout", "-L/d", "-lfoo", "x.o"])).unwrap();
    assert_eq!(a, b);
    assert_eq!(a.output, Some(PathBuf::from("out")));
}

#[test]
fn a_value_that_looks_like_an_option_is_still_a_value() {
    let line = parse_link_line(&os(&["-o", "-weird-name", "x.o"])).unwrap();
    assert_eq!(line.output, Some(PathBuf::from("-weird-name")));
    assert_eq!(line.inputs.len(), 1);
}

#[test]
fn a_missing_option_value_is_an_error() {
    assert!(parse_link_line(&os(&["x.o", "-o"])).is_err());
    assert!(parse_link_line(&os(&["-Xlinker"])).is_err());
}

#[test]
fn native_static_libraries_are_found_in_the_search_dirs() {
    let line = parse_link_line(&os(&[
        "main.o",
        "-Wl,-Bstatic",
        "-Wl,--whole-archive",
        "-lwhole",
        "-Wl,--no-whole-archive",
        "-lfoo",
        "-l:libexact.a",
        "-L/out/a",
        "-L",
        "/out/b",
        "-o",
        "app",
    ]))
    .unwrap();
    let exists = |p: &Path| {
        ["/out/b/libfoo.a", "/out/a/libfoo.a", "/out/b/libwhole.a", "/out/a/libexact.a"].contains(&p.to_str().unwrap())
    };
    let plan = plan_link(&line, &exists).unwrap();
    let members: Vec<_> = plan.members.iter().map(|(p, w)| (p.to_str().unwrap(), *w)).collect();
    assert_eq!(
        members,
        vec![("main.o", false), ("/out/b/libwhole.a", true), ("/out/a/libfoo.a", false), ("/out/a/libexact.a", false)]
    );
}

#[test]
fn whole_archive_and_static_state_follow_the_command_line() {
    let line = parse_link_line(&os(&[
        "-Wl,-Bstatic,--whole-archive",
        "a.rlib",
        "-lx",
        "-Xlinker",
        "--no-whole-archive",
        "-Wl,-Bdynamic",
        "b.rlib",
        "-ly",
    ]))
    .unwrap();
    assert_eq!(
        line.inputs,
        vec![
            LinkInput::File { path: "a.rlib".into(), whole_archive: true },
            LinkInput::Library { name: "x".into(), verbatim: false, static_only: true, whole_archive: true },
            LinkInput::File { path: "b.rlib".into(), whole_archive: false },
            LinkInput::Library { name: "y".into(), verbatim: false, static_only: false, whole_archive: false },
        ]
    );
}

#[test]
fn c_runtime_libraries_are_never_searched_even_if_present() {
    // A build script may add a system directory that holds glibc's libc.a.
    let line =
        parse_link_line(&os(&["m.o", "-L/usr/lib/x86_64-linux-gnu", "-Wl,-Bstatic", "-lc", "-lgcc_eh"])).unwrap();
    let plan = plan_link(&line, &|_| true).unwrap();
    assert_eq!(plan.members, vec![(PathBuf::from("m.o"), false)]);
    assert_eq!(plan.dropped_libs, ["c", "gcc_eh"]);
}

#[test]
fn a_library_with_no_static_archive_is_an_error() {
    let line = parse_link_line(&os(&["m.o", "-L/d", "-lz"])).unwrap();
    let err = plan_link(&line, &|p| p == Path::new("/d/libz.so")).unwrap_err().to_string();
    assert!(err.contains("`z`") && err.contains("libz.a") && err.contains("/d"), "{err}");
}

#[test]
fn shared_inputs_are_refused() {
    let line = parse_link_line(&os(&["m.o", "/usr/lib/libssl.so.3"])).unwrap();
    assert!(plan_link(&line, &|_| true).unwrap_err().to_string().contains("shared library"));
    let line = parse_link_line(&os(&["m.o", "-l:libfoo.so"])).unwrap();
    assert!(plan_link(&line, &|_| true).is_err());
}

#[test]
fn undefined_symbols_are_collected() {
    let line = parse_link_line(&os(&["-u", "a", "-ub", "-Wl,-u,c", "-Wl,--undefined=d", "m.o"])).unwrap();
    assert_eq!(line.undefined, os(&["a", "b", "c", "d"]));
}

#[test]
fn host_links_are_recognised() {
    let proc_macro = parse_link_line(&os(&["x.o", "-shared", "-o", "/t/release/deps/libserde_derive-1.so"])).unwrap();
    assert!(host_link_reason(&proc_macro).is_some());
    let script = parse_link_line(&os(&["x.o", "-o", "/t/release/build/libc-9/build_script_build-9"])).unwrap();
    assert!(host_link_reason(&script).is_some());
    let test = parse_link_line(&os(&["x.o", "-o", "/t/release/deps/hello-1f"])).unwrap();
    assert_eq!(host_link_reason(&test), None);
}

#[test]
fn response_files_split_like_gcc() {
    // rustc's escaping: one argument per line, `\` and space escaped.
    let text = b"-m64\n/path\\ with\\ space/a.o\nC:\\\\x\n-Wl,-Bstatic\n\n";
    assert_eq!(split_response_file(text), os(&["-m64", "/path with space/a.o", "C:\\x", "-Wl,-Bstatic"]));
    // libiberty's quoting, as other tools write it.
    assert_eq!(split_response_file(b"'a b' \"c d\"  e\\\"f '' \"it's\""), os(&["a b", "c d", "e\"f", "", "it's"]));
    assert_eq!(split_response_file(b""), Vec::<OsString>::new());
}

#[test]
fn response_files_expand_in_place_and_nest() {
    let mut read = |p: &Path| -> std::io::Result<Vec<u8>> {
        match p.to_str().unwrap() {
            "/r/outer" => Ok(b"b.o\n@/r/inner\ne.o\n".to_vec()),
            "/r/inner" => Ok(b"c.o d.o".to_vec()),
            _ => Err(std::io::ErrorKind::NotFound.into()),
        }
    };
    let out = expand_response_files(os(&["a.o", "@/r/outer", "f.o", "@"]), &mut read).unwrap();
    assert_eq!(out, os(&["a.o", "b.o", "c.o", "d.o", "e.o", "f.o", "@"]));
    let err = expand_response_files(os(&["@/r/missing"]), &mut read).unwrap_err();
    assert!(format!("{err:#}").contains("/r/missing"));
}

#[test]
fn recursive_response_files_stop() {
    let mut read = |_: &Path| -> std::io::Result<Vec<u8>> { Ok(b"@/r/self".to_vec()) };
    assert!(expand_response_files(os(&["@/r/self"]), &mut read).is_err());
}

#[test]
fn non_utf8_paths_survive() {
    let raw = OsString::from_vec(b"/t/\xff.o".to_vec());
    let line = parse_link_line(&[raw.clone(), "-o".into(), "out".into()]).unwrap();
    assert_eq!(line.inputs, vec![LinkInput::File { path: PathBuf::from(raw), whole_archive: false }]);
}

#[test]
fn entry_symbols_are_checked() {
    let ok = "main T 0 10\n_ZN5hello4main17h T 10 20\nexit U\n";
    check_entry_symbols(ok).unwrap();
    let lib = "foo T 0 10\nmain U\n";
    assert!(check_entry_symbols(lib).unwrap_err().to_string().contains("no C `main`"));
    let both = "main T 0 10\nunikernel_main T 20 10\n";
    assert!(check_entry_symbols(both).unwrap_err().to_string().contains("rt-unikraft"));
}

#[test]
fn response_files_round_trip() {
    let args = os(&["plain", "with space", "tab\there", "new\nline", "back\\slash", "quo'te\"s", "", "@x"]);
    assert_eq!(split_response_file(&response_file_text(&args)), args);
    let raw = vec![OsString::from_vec(b"/t/\xff o".to_vec())];
    assert_eq!(split_response_file(&response_file_text(&raw)), raw);
}

#[test]
fn ld_args_group_and_toggle_whole_archive() {
    let plan = LinkPlan {
        members: vec![("a.o".into(), false), ("w.a".into(), true), ("b.rlib".into(), false), ("z.a".into(), true)],
        undefined: os(&["keep"]),
        dropped_libs: vec![],
    };
    let args = ld_args(&plan, Path::new("out.o"));
    let args: Vec<_> = args.iter().map(|a| a.to_str().unwrap()).collect();
    assert_eq!(
        args,
        [
            "-r",
            "-m",
            "elf_x86_64",
            "-z",
            "noexecstack",
            "-o",
            "out.o",
            "-u",
            "keep",
            "--start-group",
            "a.o",
            "--whole-archive",
            "w.a",
            "--no-whole-archive",
            "b.rlib",
            "--whole-archive",
            "z.a",
            "--no-whole-archive",
            "--end-group",
        ]
    );
}
