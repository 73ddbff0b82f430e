//! With the `bindgen` feature: complete bindings of the headers in `wrapper.h`, generated
//! from `UNIKRAFT_BUILD_DIR` (a Unikraft build directory of an app with net and block
//! devices, whose recorded compile flags name the tree). Nothing is generated or needed
//! without the feature, and generated output never leaves OUT_DIR.

include!("clang_flags.rs");

fn main() {
    println!("cargo:rerun-if-changed=wrapper.h");
    println!("cargo:rerun-if-changed=clang_flags.rs");
    println!("cargo:rerun-if-env-changed=UNIKRAFT_BUILD_DIR");
    #[cfg(feature = "bindgen")]
    generate();
}

#[cfg(feature = "bindgen")]
fn generate() {
    let Some(build_dir) = std::env::var_os("UNIKRAFT_BUILD_DIR") else {
        panic!(
            "the `bindgen` feature needs UNIKRAFT_BUILD_DIR: a Unikraft build directory of an app \
             with devices, e.g. target/unikraft/conformance/build-qemu-x86_64 after \
             `cargo unikraft build` in conformance/"
        );
    };
    let flags = unikraft_clang_flags(std::path::Path::new(&build_dir)).unwrap_or_else(|e| panic!("{e}"));
    let bindings = bindgen::Builder::default()
        .header("wrapper.h")
        .clang_args(flags)
        .use_core()
        .generate()
        .unwrap_or_else(|e| panic!("bindgen failed on the Unikraft headers: {e}"));
    let out = std::path::PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR")).join("unikraft.rs");
    bindings.write_to_file(out).expect("write the bindings");
}
