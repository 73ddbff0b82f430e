//! The executor must sleep in the backend's wait hook, not spin: a program that sleeps
//! for a second should use almost no CPU. Measured with `getrusage(RUSAGE_CHILDREN)`
//! around the real `hello` binary.

use std::process::Command;

fn children_cpu_ms() -> u64 {
    // SAFETY: rusage is plain integers, for which all-zero bytes are a valid value.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: valid out-pointer.
    unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut usage) };
    let ms = |tv: libc::timeval| tv.tv_sec as u64 * 1000 + tv.tv_usec as u64 / 1000;
    ms(usage.ru_utime) + ms(usage.ru_stime)
}

#[test]
fn sleeping_for_a_second_uses_almost_no_cpu() {
    let before = children_cpu_ms();
    let output = Command::new(env!("CARGO_BIN_EXE_hello")).arg("--sleep-ms=1000").output().unwrap();
    let cpu_ms = children_cpu_ms() - before;
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}");
    let advanced: u64 = stdout
        .split("slept 1000 ms: monotonic clock advanced ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no sleep line: {stdout}"));
    assert!((1000..1100).contains(&advanced), "slept {advanced} ms for a 1000 ms sleep");
    // Busy polling would burn ~1000 ms; start-up and printing take a few.
    assert!(cpu_ms < 100, "hello used {cpu_ms} ms of CPU while sleeping 1 s");
}

#[test]
fn hello_echoes_args_and_propagates_its_exit_code() {
    let output = Command::new(env!("CARGO_BIN_EXE_hello")).args(["a", "b", "--exit=3"]).output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(3), "{stdout}");
    assert!(stdout.contains("boot args: a b --exit=3"), "{stdout}");
    assert!(stdout.contains("Hello from a unikernel! (backend: unix)"), "{stdout}");
    assert!(stdout.contains("random bytes: "), "{stdout}");
}
