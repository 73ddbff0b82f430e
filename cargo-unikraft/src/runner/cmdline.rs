//! The kernel command line of a Unikraft guest (QEMU's `-append`, Firecracker's
//! `boot_args`).
//!
//! Images are built with Unikraft's kernel parameters (`CONFIG_LIBUKLIBPARAM`): what
//! precedes the first `--` is Unikraft's (`netdev.ip=...`, `env.vars=[...]`), the app gets
//! what follows. So the app's arguments always follow a `--` here, and an argument of the
//! app's own that is `--`, `help` or looks like `lib.param=value` reaches the app as it is.
//! Unikraft strips `<params> --` only when a parameter precedes the `--`; with none, the
//! `--` reaches `main`, and rt-unikraft's glue drops it (glue/main.c), so both shapes give
//! the app the same arguments.

/// Quotes `arg` for Unikraft's command-line split (ukargparse): double quotes with `\`
/// escapes, only when needed.
pub fn quote_arg(arg: &str) -> String {
    if !arg.is_empty() && !arg.contains(|c: char| c.is_whitespace() || c == '"' || c == '\'' || c == '\\') {
        return arg.to_string();
    }
    format!("\"{}\"", arg.replace('\\', "\\\\").replace('"', "\\\""))
}

/// `[program] [params...] -- args...`, each app argument quoted. `program` is for VMMs
/// that do not put the kernel's name first themselves (QEMU does, Firecracker does not).
pub fn kernel_command_line(program: Option<&str>, params: &[String], args: &[String]) -> String {
    let mut words: Vec<String> = program.map(quote_arg).into_iter().collect();
    words.extend(params.iter().cloned());
    words.push("--".to_string());
    words.extend(args.iter().map(|a| quote_arg(a)));
    words.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn app_arguments_always_follow_the_stop_sequence() {
        let args = vec!["--".to_string(), "help".to_string(), "a b".to_string(), "netdev.ip=x".to_string()];
        assert_eq!(kernel_command_line(None, &[], &args), r#"-- -- help "a b" netdev.ip=x"#);
        assert_eq!(
            kernel_command_line(Some("http"), &["netdev.ip=10.0.0.2/24".to_string()], &[]),
            "http netdev.ip=10.0.0.2/24 --"
        );
        assert_eq!(quote_arg(r#"say "hi"\"#), r#""say \"hi\"\\""#);
        assert_eq!(quote_arg(""), r#""""#);
        assert_eq!(quote_arg("a"), "a");
        assert_eq!(quote_arg("a b"), "\"a b\"");
    }
}
