// Shared by build.rs (the `bindgen` feature) and tests/layout.rs: the clang flags of a
// real Unikraft build, so bindgen sees the headers exactly as Unikraft's compiler did.

/// The `-I`, `-D`, `-include`, `-isystem`, `-m` and `-f` flags of a C compile recorded
/// in a Unikraft build directory (`<build>/app*/*.o.cmd`, written by Unikraft's make).
#[allow(dead_code)]
fn unikraft_clang_flags(build_dir: &std::path::Path) -> Result<Vec<String>, String> {
    let mut cmd_file = None;
    let entries = std::fs::read_dir(build_dir).map_err(|e| format!("read {}: {e}", build_dir.display()))?;
    for entry in entries.flatten() {
        let path = entry.path();
        let is_app = path.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with("app"));
        if path.is_dir() && is_app {
            let candidate = path.join("netdev.o.cmd");
            if candidate.is_file() {
                cmd_file = Some(candidate);
                break;
            }
        }
    }
    let cmd_file = cmd_file.ok_or_else(|| {
        format!("{} has no app*/netdev.o.cmd: build an app with devices first (`cargo unikraft build` in conformance/)", build_dir.display())
    })?;
    let text = std::fs::read_to_string(&cmd_file).map_err(|e| format!("read {}: {e}", cmd_file.display()))?;
    let words: Vec<&str> = text.split_whitespace().collect();
    let mut flags = Vec::new();
    let mut i = 0;
    while i < words.len() {
        let w = words[i].trim_matches('\'');
        if w == "-include" || w == "-isystem" || w == "-D" || w == "-I" {
            if let Some(next) = words.get(i + 1) {
                flags.push(w.to_string());
                flags.push(next.trim_matches('\'').to_string());
                i += 1;
            }
        } else if (w.starts_with("-I") || w.starts_with("-D") || w == "-nostdinc" || w == "-nostdlib")
            && !w.contains("__LIBNAME__")
            && !w.contains("__BASENAME__")
        {
            flags.push(w.replace("\\\"", "\""));
        }
        i += 1;
    }
    if !flags.iter().any(|f| f.starts_with("-I")) {
        return Err(format!("{} has no include flags", cmd_file.display()));
    }
    Ok(flags)
}
