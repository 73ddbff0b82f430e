//! `cargo unikraft run`: build the app, boot it, exit with its exit code.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{anyhow, bail, Result};

use super::build::BuildArgs;
use super::run_devices::RunDevicesArgs;
use crate::heap_plot::{self, HeapSamples};
use crate::pipeline::{self, Devices};
use crate::runner::console_log::ConsoleLog;
use crate::runner::guest_env::{self, EnvVar};
use crate::runner::usernet::{self, PublishedPort};
use crate::runner::{backtrace, console, Accel, GuestExit};

#[derive(clap::Args, Debug, Clone)]
pub struct RunArgs {
    /// The app and the target (as for `cargo unikraft build`).
    #[command(flatten)]
    pub build: BuildArgs,
    /// QEMU accelerator: probe KVM and fall back to TCG (auto), or force one.
    #[arg(long, value_enum, default_value = "auto")]
    pub accel: Accel,
    /// Build the image and print its path without booting it.
    #[arg(long, alias = "no-run")]
    pub no_boot: bool,
    /// Boot the image an earlier build (`--no-boot`) left, without building or checking
    /// that it is up to date: nothing is locked or compiled first, so the boot starts at
    /// once (for scripts and tests that build first, whose boot timers should measure the
    /// guest). Fails when there is no such image.
    #[arg(long, conflicts_with = "no_boot")]
    pub no_build: bool,
    /// Guest memory in MiB for this boot, instead of the metadata's `memory`.
    #[arg(long, value_name = "MIB", value_parser = clap::value_parser!(u32).range(
        i64::from(*kraftfile_gen::MEMORY_MIB_RANGE.start())..=i64::from(*kraftfile_gen::MEMORY_MIB_RANGE.end())))]
    pub memory_mib: Option<u32>,
    /// Give the guest a net device on this TAP interface (which must exist in the network
    /// namespace this runs in).
    #[arg(long, value_name = "IFNAME")]
    pub tap: Option<String>,
    /// Publish a guest port on the host, without root: the guest's net device is on QEMU's
    /// user-mode networking (guest 10.0.2.15, gateway 10.0.2.2, DNS 10.0.2.3) and QEMU
    /// forwards HOSTIP:HOST (default 127.0.0.1) to the guest's port. Repeatable; QEMU only.
    #[arg(short = 'p', long = "publish", value_name = "[HOSTIP:]HOST:GUEST[/udp]", conflicts_with = "tap")]
    pub publish: Vec<PublishedPort>,
    /// Set an environment variable in the guest (`std::env`); `-e KEY` passes this
    /// environment's value. Repeatable.
    #[arg(short = 'e', long = "env", value_name = "KEY=VALUE")]
    pub env: Vec<EnvVar>,
    /// Give the guest a block device backed by this raw disk image.
    #[arg(long, value_name = "FILE")]
    pub disk: Option<PathBuf>,
    /// With --tap: QEMU's default virtio-net (EVENT_IDX and offloads on), as urunc and
    /// kraftkit start a guest, instead of this tool's tuned settings.
    #[arg(long, requires = "tap")]
    pub virtio_net_defaults: bool,
    /// Kill the guest after this many seconds (default: no limit).
    #[arg(long, value_name = "SECS")]
    pub timeout: Option<u64>,
    /// A VM guest that prints nothing (not even Unikraft's banner) for this many seconds
    /// never booted: it is killed and reported.
    #[arg(long, value_name = "SECS", default_value_t = console::DEFAULT_BOOT_TIMEOUT.as_secs())]
    pub boot_timeout: u64,
    /// Draw the guest's heap over time into this SVG after the run: the app is given
    /// `--heap-sample-ms` (unless its arguments have it) and its `heap-sample` lines are
    /// collected from the console.
    #[arg(long, value_name = "FILE")]
    pub heap_plot: Option<PathBuf>,
    /// With --heap-plot: milliseconds between samples.
    #[arg(long, value_name = "MS", default_value_t = heap_plot::DEFAULT_SAMPLE_MS, requires = "heap_plot")]
    pub heap_sample_ms: u64,
    /// Host folders (`-v`) and the gdb stub (`--gdb`).
    #[command(flatten)]
    pub devices: RunDevicesArgs,
    /// Arguments for the app (after those in the metadata's `cmdline`).
    #[arg(last = true)]
    pub args: Vec<String>,
}

impl RunArgs {
    pub fn run(&self) -> Result<u8> {
        let devices = Devices {
            tap: self.tap.clone(),
            published: self.publish.clone(),
            disk: self.disk.clone(),
            net_defaults: self.virtio_net_defaults,
            env: self.env.clone(),
            volumes: self.devices.volumes.clone(),
            gdb: self.devices.gdb,
        };
        devices.check_for(self.build.plat)?;
        guest_env::check_distinct(&self.env).map_err(|e| anyhow!(e))?;
        if !self.no_boot {
            // Before the build (minutes) as well as before the boot.
            usernet::check_host_ports_free(&self.publish)?;
        }
        let app = self.build.app.resolve()?;
        let image = if self.no_build {
            pipeline::built_image(&app, self.build.plat, &devices)?
        } else {
            pipeline::build(&app, self.build.plat, &devices)?
        };
        if self.no_boot {
            println!("{}", image.display());
            return Ok(0);
        }
        let memory_mib = self.memory_mib.unwrap_or(app.spec.memory_mib);
        let guest = pipeline::guest(&app, self.build.plat, &image, memory_mib, self.accel, &devices)?;
        let mut args = app.spec.cmdline.clone();
        args.extend(self.args.iter().cloned());
        let sample_arg = format!("{}=", heap_plot::SAMPLE_ARG);
        if self.heap_plot.is_some() && !args.iter().any(|a| a.starts_with(&sample_arg)) {
            args.push(format!("{sample_arg}{}", self.heap_sample_ms));
        }
        let mut heap = HeapSamples::default();
        usernet::check_host_ports_free(&self.publish)?;
        eprintln!("cargo-unikraft: running {} on {}", image.display(), guest.describe());
        for port in &self.publish {
            eprintln!("cargo-unikraft: {}", port.reach_line());
        }
        for volume in &self.devices.volumes {
            eprintln!("cargo-unikraft: {} is the guest's {}", volume.host.display(), volume.guest);
        }
        if let Some(port) = self.devices.gdb {
            // The program's crate is its package's name with `-` as `_` (cargo's default).
            let krate = app.spec.package.replace('-', "_");
            eprintln!("{}", crate::runner::gdb::attach_hint(&image, port, &krate));
        }
        // The console is echoed line by line and kept in a file; a backtrace line from
        // rt-unikraft (apps with `backtrace = true`) is followed by its symbolized frames.
        // A guest waiting for a debugger prints nothing until it is continued.
        let limits = console::Limits {
            total: self.timeout.map(Duration::from_secs),
            boot: Some(Duration::from_secs(self.boot_timeout)).filter(|_| self.devices.gdb.is_none()),
        };
        let mut log = ConsoleLog::create(&app.build_dir(self.build.plat.platform()), &app.spec.name);
        let finished = console::run(&*guest, guest.command(&args), limits, |line| {
            println!("{line}");
            log.line(line);
            heap.on_line(line);
            if let Some(addresses) = backtrace::parse_backtrace_line(line) {
                for frame in backtrace::symbolized_lines(&image, &addresses) {
                    println!("{frame}");
                    log.line(&frame);
                }
            }
        })?;
        if let Some(path) = &self.heap_plot {
            heap.write_svg(path, &format!("{} ({})", app.spec.package, self.build.plat))?;
            eprintln!("cargo-unikraft: heap plot of {} samples written to {}", heap.samples.len(), path.display());
        }
        log.report_failure(&finished.exit);
        match finished.exit {
            GuestExit::App(code) => Ok(code),
            GuestExit::NotReported(why) => match usernet::hostfwd_failure(&self.publish, &finished.transcript) {
                Some(forward_failed) => bail!("{forward_failed}"),
                None => bail!("{why}"),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use crate::cli::Cli;

    /// `--memory-mib` outside 4 MiB..=64 GiB is refused before anything is built: 0 once
    /// silently became 128 MiB, and 1 MiB hung the guest.
    #[test]
    fn guest_memory_outside_the_range_is_refused_by_the_command_line() {
        for bad in ["0", "1", "3", "65537"] {
            let parsed = Cli::try_parse_from(["cargo-unikraft", "run", "--memory-mib", bad]);
            let err = parsed.expect_err(bad).to_string();
            assert!(err.contains("--memory-mib") && err.contains("4..=65536"), "{bad}: {err}");
        }
        assert!(Cli::try_parse_from(["cargo-unikraft", "run", "--memory-mib", "4"]).is_ok());
    }

    fn run_args(args: &[&str]) -> Result<super::RunArgs, String> {
        let argv = ["cargo-unikraft", "run"].iter().chain(args);
        match Cli::try_parse_from(argv).map_err(|e| e.to_string())?.command {
            crate::cli::Command::Run(run) => Ok(run),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn publish_and_env_are_repeatable() {
        let run =
            run_args(&["-p", "8080:80", "--publish", "127.0.0.1:5353:53/udp", "-e", "A=1", "--env", "B=x y"]).unwrap();
        assert_eq!(run.publish.len(), 2);
        assert_eq!(run.publish[1].to_string(), "127.0.0.1:5353:53/udp");
        assert_eq!(run.env.iter().map(ToString::to_string).collect::<Vec<_>>(), ["A=1", "B=x y"]);
    }

    /// A bad spec is refused by the command line, naming the flag and saying why.
    #[test]
    fn bad_publish_and_env_specs_are_refused_naming_the_flag() {
        for (args, flag, why) in [
            (&["-p", "8080"][..], "--publish", "a host port and a guest port are needed"),
            (&["-p", "8080:80/sctp"], "--publish", "`sctp` is not a protocol"),
            (&["-p", "99999:80"], "--publish", "not a number in 1..=65535"),
            (&["-e", "=1"], "--env", "is not a variable name"),
            (&["-e", "A-B=1"], "--env", "`A-B` is not a variable name"),
        ] {
            let err = run_args(args).expect_err(&format!("{args:?}"));
            assert!(err.contains(flag) && err.contains(why), "{args:?}: {err}");
        }
    }

    #[test]
    fn publish_and_tap_together_are_refused_naming_both() {
        let err = run_args(&["-p", "8080:80", "--tap", "tap0"]).expect_err("-p with --tap");
        assert!(err.contains("--publish") && err.contains("--tap"), "{err}");
    }

    /// Refused before anything is built, for the targets that cannot take them.
    #[test]
    fn targets_without_user_networking_or_an_environment_refuse_them() {
        use crate::pipeline::Devices;
        use crate::target::{Target, Tender};
        let published = Devices { published: vec!["8080:80".parse().unwrap()], ..Devices::default() };
        published.check_for(Target::UnikraftQemu).unwrap();
        for target in [Target::UnikraftFirecracker, Target::Solo5(Tender::Spt), Target::HostedMusl] {
            let err = published.check_for(target).unwrap_err().to_string();
            assert!(err.contains("-p/--publish needs QEMU's user-mode networking"), "{target}: {err}");
        }
        let env = Devices { env: vec!["A=1".parse().unwrap()], ..Devices::default() };
        for target in [Target::UnikraftQemu, Target::UnikraftFirecracker, Target::HostedMusl] {
            env.check_for(target).unwrap();
        }
        let err = env.check_for(Target::Solo5(Tender::Hvt)).unwrap_err().to_string();
        assert!(err.contains("-e/--env: a Solo5 unikernel has no environment variables"), "{err}");
    }

    /// Nothing is built or started when a duplicate is given.
    #[test]
    fn a_variable_given_twice_is_refused() {
        let run = run_args(&["-e", "A=1", "-e", "A=2", "--manifest-path", "/nonexistent/Cargo.toml"]).unwrap();
        let err = run.run().unwrap_err().to_string();
        assert_eq!(err, "-e A: the variable is given twice");
    }
}
