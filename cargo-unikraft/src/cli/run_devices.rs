//! The flags of `cargo unikraft run` that attach debugging and host folders to the guest
//! (`--gdb`, `-v`), flattened into [`super::run::RunArgs`].

use crate::runner::volume::Volume;

/// The port `--gdb` listens on when none is given (QEMU's `-s` and gdb's habit).
pub const DEFAULT_GDB_PORT: u16 = 1234;

#[derive(clap::Args, Debug, Clone, Default)]
pub struct RunDevicesArgs {
    /// Share a host folder with the guest, read-write, over 9P: a plain program's
    /// `std::fs` reads and writes the host's files at GUEST_DIR. Repeatable; QEMU only;
    /// the image needs `devices = ["9pfs"]` in [package.metadata.unikraft].
    #[arg(
        short = 'v',
        long = "volume",
        value_name = "HOST_DIR:GUEST_DIR",
        help_heading = "Host folders and debugging"
    )]
    pub volumes: Vec<Volume>,
    /// Start QEMU's gdb stub on 127.0.0.1:PORT (default 1234), the guest stopped before its
    /// first instruction until a debugger continues it; prints how to attach (see
    /// docs/debugging.md). No time limits apply unless --timeout is given.
    #[arg(
        long,
        value_name = "PORT",
        num_args = 0..=1,
        default_missing_value = "1234",
        value_parser = clap::value_parser!(u16).range(1..),
        help_heading = "Host folders and debugging"
    )]
    pub gdb: Option<u16>,
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use crate::cli::{Cli, Command};

    fn run_args(args: &[&str]) -> Result<crate::cli::run::RunArgs, String> {
        let argv = ["cargo-unikraft", "run"].iter().chain(args);
        match Cli::try_parse_from(argv).map_err(|e| e.to_string())?.command {
            Command::Run(run) => Ok(run),
            other => panic!("{other:?}"),
        }
    }

    /// clap's own checks of the whole command line (a short flag taken twice, as `-v`
    /// would be by a `--verbose`, fails here rather than at a user's first run).
    #[test]
    fn the_command_line_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }

    #[test]
    fn volumes_repeat_and_gdb_takes_an_optional_port() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().display().to_string();
        let run = run_args(&["-v", &format!("{d}:/a"), "--volume", &format!("{d}:/b"), "--gdb"]).unwrap();
        assert_eq!(run.devices.volumes.iter().map(|v| v.guest.as_str()).collect::<Vec<_>>(), ["/a", "/b"]);
        assert_eq!(run.devices.gdb, Some(super::DEFAULT_GDB_PORT));
        assert_eq!(run_args(&["--gdb", "4321"]).unwrap().devices.gdb, Some(4321));
        assert_eq!(run_args(&["--gdb=4321"]).unwrap().devices.gdb, Some(4321));
        assert_eq!(run_args(&[]).unwrap().devices.gdb, None);
    }

    /// A bad spec is refused by the command line, naming the flag.
    #[test]
    fn bad_volume_and_gdb_specs_are_refused_naming_the_flag() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().display().to_string();
        for (args, flag, why) in [
            (vec!["-v".to_string(), "/nonexistent-dir-for-a-test:/data".to_string()], "--volume", "does not exist"),
            (vec!["-v".to_string(), format!("{d}:data")], "--volume", "is not absolute"),
            (vec!["-v".to_string(), d.clone()], "--volume", "a host folder and a guest path are needed"),
            (vec!["--gdb".to_string(), "0".to_string()], "--gdb", "0"),
            (vec!["--gdb".to_string(), "70000".to_string()], "--gdb", "70000"),
        ] {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let err = run_args(&args).expect_err(&format!("{args:?}"));
            assert!(err.contains(flag) && err.contains(why), "{args:?}: {err}");
        }
    }

    /// Refused before anything is built on targets that have no such device.
    #[test]
    fn targets_other_than_qemu_refuse_volumes_and_gdb() {
        use crate::pipeline::Devices;
        use crate::target::{Target, Tender};
        let dir = tempfile::tempdir().unwrap();
        let volume = format!("{}:/data", dir.path().display()).parse().unwrap();
        let volumes = Devices { volumes: vec![volume], ..Devices::default() };
        let gdb = Devices { gdb: Some(1234), ..Devices::default() };
        volumes.check_for(Target::UnikraftQemu).unwrap();
        gdb.check_for(Target::UnikraftQemu).unwrap();
        for target in [Target::UnikraftFirecracker, Target::Solo5(Tender::Spt), Target::HostedMusl] {
            let err = volumes.check_for(target).unwrap_err().to_string();
            assert!(err.starts_with("-v/--volume shares a folder over virtio-9p, which only QEMU has"), "{err}");
            let err = gdb.check_for(target).unwrap_err().to_string();
            assert!(err.starts_with("--gdb uses QEMU's gdb stub"), "{err}");
        }
        let err = volumes.check_for(Target::UnikraftFirecracker).unwrap_err().to_string();
        assert!(err.contains("Firecracker has neither virtio-9p nor virtio-fs"), "{err}");
    }
}
