//! `cargo unikraft doctor`: what each backend needs, found or missing, and how to get it.

struct Tool {
    name: &'static str,
    /// How to check: a program on PATH, or a file that must exist.
    probe: Probe,
    install: &'static str,
    optional: bool,
}

enum Probe {
    Program(&'static str),
    File(&'static str),
}

const fn tool(name: &'static str, install: &'static str) -> Tool {
    Tool { name, probe: Probe::Program(name), install, optional: false }
}

fn backends() -> Vec<(&'static str, Vec<Tool>)> {
    vec![
        (
            "unix",
            vec![
                tool("cargo", "rustup (https://rustup.rs)"),
                tool("ip", "apt-get install iproute2"),
                Tool { optional: true, ..tool("ping", "apt-get install iputils-ping") },
            ],
        ),
        (
            "unikraft",
            vec![
                tool("make", "apt-get install build-essential"),
                tool("gcc", "apt-get install build-essential"),
                tool("flex", "apt-get install flex"),
                tool("bison", "apt-get install bison"),
                tool("bc", "apt-get install bc"),
                tool("qemu-system-x86_64", "apt-get install qemu-system-x86"),
                Tool {
                    optional: true,
                    ..tool("git", "apt-get install git (for `cargo unikraft fetch` from upstream)")
                },
                Tool {
                    optional: true,
                    ..tool("curl", "apt-get install curl (for `cargo unikraft fetch` from upstream)")
                },
                Tool {
                    optional: true,
                    ..tool(
                        "firecracker",
                        "https://github.com/firecracker-microvm/firecracker/releases (boots fc/x86_64)",
                    )
                },
                Tool {
                    optional: true,
                    ..tool(
                        "kraft",
                        "not packaged in Debian; optional (cargo-unikraft drives Unikraft's make without it)",
                    )
                },
            ],
        ),
        (
            "solo5",
            vec![
                tool("make", "apt-get install build-essential"),
                tool("gcc", "apt-get install build-essential"),
                Tool {
                    name: "libseccomp",
                    probe: Probe::File("/usr/include/seccomp.h"),
                    install: "apt-get install libseccomp-dev",
                    optional: false,
                },
            ],
        ),
    ]
}

pub fn report() {
    for (backend, tools) in backends() {
        println!("{backend}:");
        let mut missing = 0;
        for t in &tools {
            let found = match t.probe {
                Probe::Program(p) => which::which(p).ok().map(|p| p.display().to_string()),
                Probe::File(f) => std::path::Path::new(f).exists().then(|| f.to_string()),
            };
            match found {
                Some(at) => println!("  ok       {:<20} {at}", t.name),
                None => {
                    if !t.optional {
                        missing += 1;
                    }
                    let tag = if t.optional { "optional" } else { "MISSING " };
                    println!("  {tag} {:<20} install: {}", t.name, t.install);
                }
            }
        }
        if backend == "unikraft" {
            match crate::sources::provisioned() {
                Ok(found) => println!("  ok       {:<20} {}", "sources", found.unikraft.display()),
                Err(e) => {
                    missing += 1;
                    // The first line says what; the rest (which entries, how to fetch) is
                    // worth showing too, indented under the row.
                    let text = e.to_string();
                    let mut lines = text.lines();
                    println!("  MISSING  {:<20} {}", "sources", lines.next().unwrap_or_default());
                    for line in lines {
                        println!("           {:<20} {}", "", line.trim());
                    }
                }
            }
        }
        if backend == "solo5" {
            match crate::solo5::solo5_tree() {
                Ok(tree) => println!("  ok       {:<20} {}", "solo5 tree", tree.display()),
                Err(e) => {
                    missing += 1;
                    println!("  MISSING  {:<20} {e}", "solo5 tree");
                }
            }
        }
        match missing {
            0 => println!("  => {backend}: ready"),
            n => println!("  => {backend}: missing {n}"),
        }
    }
    let root = is_root();
    println!("root: {} (network namespaces for net tests need root)", if root { "yes" } else { "no" });
    let kvm = match which::which("qemu-system-x86_64") {
        Err(_) => "not checked (no qemu-system-x86_64)".to_string(),
        Ok(qemu) => match crate::runner::kvm::kvm_problem(&qemu) {
            None => "usable (a probe guest ran under KVM); QEMU boots use KVM".to_string(),
            Some(why) => format!("not usable, QEMU boots use TCG: {why}"),
        },
    };
    println!("KVM: {kvm}");
}

/// Whether this process runs as root (its effective uid, from /proc: no unsafe needed).
fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("Uid:")).map(|l| l.split_whitespace().nth(2) == Some("0")))
        .unwrap_or(false)
}
