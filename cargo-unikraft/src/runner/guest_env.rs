//! The app's environment (`cargo unikraft run -e KEY=VALUE`, `cargo unikraft oci -e`).
//!
//! On Unikraft each variable travels as one `env.vars=KEY=VALUE` kernel parameter before
//! the `--` (posix-environ's `vars` is an array parameter: every occurrence appends one
//! entry, as `env.vars=[A=1 B=2]` does, but without the list syntax, in which a value
//! ending in `]` would end the list). posix-environ puts them in `environ`, where
//! musl's `getenv`, and so `std::env`, finds them, in plain binaries as in
//! `unikernel::main!` apps. A process (hosted-musl) gets them as its environment.

use std::fmt;
use std::str::FromStr;

use super::cmdline::quote_arg;

/// One `-e` spec.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvVar {
    pub key: String,
    pub value: String,
}

/// What `-e` accepts, for errors.
pub const ENV_FORMAT: &str = "KEY=VALUE (or KEY, for this environment's value), KEY made of letters, digits and `_`, \
                              not starting with a digit";

/// How many variables Unikraft's posix-environ takes from the command line by default
/// (`CONFIG_LIBPOSIX_ENVIRON_LIBPARAM_MAXCOUNT`); it drops further ones silently.
pub const UNIKRAFT_DEFAULT_CAPACITY: usize = 8;

impl FromStr for EnvVar {
    type Err = String;

    /// `KEY=VALUE`, or `KEY` alone for the value in this tool's environment (as docker's
    /// `-e KEY`); clap puts the flag's name before the message.
    fn from_str(spec: &str) -> Result<Self, String> {
        let (key, value) = match spec.split_once('=') {
            Some((key, value)) => (key, Some(value)),
            None => (spec, None),
        };
        let valid = key.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid {
            return Err(format!("`{key}` is not a variable name; expected {ENV_FORMAT}"));
        }
        let value = match value {
            Some(value) => value.to_string(),
            None => std::env::var(key).map_err(|_| {
                format!("`{key}` has no `=VALUE` and is not set in this environment; expected {ENV_FORMAT}")
            })?,
        };
        Ok(EnvVar { key: key.to_string(), value })
    }
}

impl fmt::Display for EnvVar {
    /// `KEY=VALUE`, as an OCI config's `Env` holds it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}={}", self.key, self.value)
    }
}

/// The kernel parameters that give a Unikraft guest `vars`, quoted for Unikraft's
/// command-line splitter.
pub fn unikraft_params(vars: &[EnvVar]) -> Vec<String> {
    vars.iter().map(|v| quote_arg(&format!("env.vars={v}"))).collect()
}

/// How many variables a Unikraft image takes from its command line, from its `.config`
/// (`CONFIG_LIBPOSIX_ENVIRON_LIBPARAM_MAXCOUNT`; 0 without `env.vars` support).
pub fn unikraft_capacity(dot_config: &str) -> usize {
    if !dot_config.lines().any(|l| l == "CONFIG_LIBPOSIX_ENVIRON_LIBPARAM=y") {
        return 0;
    }
    dot_config
        .lines()
        .find_map(|l| l.strip_prefix("CONFIG_LIBPOSIX_ENVIRON_LIBPARAM_MAXCOUNT="))
        .and_then(|n| n.parse().ok())
        .unwrap_or(UNIKRAFT_DEFAULT_CAPACITY)
}

/// Refuses a later `-e` for a key given before (which one would win is not obvious).
pub fn check_distinct(vars: &[EnvVar]) -> Result<(), String> {
    for (i, var) in vars.iter().enumerate() {
        if vars[..i].iter().any(|v| v.key == var.key) {
            return Err(format!("-e {}: the variable is given twice", var.key));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn var(spec: &str) -> EnvVar {
        spec.parse().unwrap_or_else(|e| panic!("{spec}: {e}"))
    }

    #[test]
    fn specs_split_at_the_first_equals_sign() {
        assert_eq!(var("GREETING=hi"), EnvVar { key: "GREETING".into(), value: "hi".into() });
        assert_eq!(var("URL=a=b=c").value, "a=b=c");
        assert_eq!(var("EMPTY=").value, "");
        assert_eq!(var("_x1=a b").to_string(), "_x1=a b");
        // KEY alone takes this environment's value.
        assert_eq!(var("PATH").value, std::env::var("PATH").unwrap());
    }

    #[test]
    fn bad_specs_are_refused_with_the_reason() {
        for (spec, why) in [
            ("=x", "`` is not a variable name"),
            ("", "`` is not a variable name"),
            ("1X=a", "`1X` is not a variable name"),
            ("A-B=1", "`A-B` is not a variable name"),
            ("A B=1", "`A B` is not a variable name"),
            ("[A=1", "`[A` is not a variable name"),
            ("CARGO_UNIKRAFT_SURELY_UNSET_VARIABLE", "has no `=VALUE` and is not set"),
        ] {
            let err = spec.parse::<EnvVar>().expect_err(spec);
            assert!(err.contains(why) && err.contains(ENV_FORMAT), "{spec}: {err}");
        }
        let err = check_distinct(&[var("A=1"), var("B=2"), var("A=3")]).unwrap_err();
        assert_eq!(err, "-e A: the variable is given twice");
    }

    #[test]
    fn each_variable_is_one_quoted_kernel_parameter() {
        let params = unikraft_params(&[var("A=1"), var("B=a b"), var("C=x]"), var(r#"D=say "hi""#)]);
        assert_eq!(params, ["env.vars=A=1", r#""env.vars=B=a b""#, "env.vars=C=x]", r#""env.vars=D=say \"hi\"""#]);
    }

    #[test]
    fn the_capacity_comes_from_the_images_config() {
        assert_eq!(unikraft_capacity("CONFIG_LIBPOSIX_ENVIRON_LIBPARAM=y\n"), UNIKRAFT_DEFAULT_CAPACITY);
        assert_eq!(
            unikraft_capacity("CONFIG_LIBPOSIX_ENVIRON_LIBPARAM=y\nCONFIG_LIBPOSIX_ENVIRON_LIBPARAM_MAXCOUNT=20\n"),
            20
        );
        assert_eq!(unikraft_capacity("CONFIG_LIBPOSIX_ENVIRON=y\n"), 0);
    }
}
