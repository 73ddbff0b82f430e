//! The std section: what the stock `x86_64-unknown-linux-gnu` std does on this backend.
//!
//! On Unikraft this is the proof that the rt-unikraft shims over lib-musl are complete
//! (docs/runtime.md); on unix it is the reference. Backends without std (solo5) report
//! every case as SKIP. Two cases end the process and so cannot run here: the runner boots
//! the app again with `--std-exit=panic` and `--std-exit=3` and checks the exit status
//! (`std.panic-exit`, `std.process-exit`, see `end_now` in lib.rs).

use std::collections::hash_map::RandomState;
use std::collections::HashMap;
use std::hash::BuildHasher;
use std::string::String;
use std::sync::{mpsc, Arc, Condvar, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use std::vec::Vec;
use std::{format, thread, vec};

use conformance_protocol::STD_CASES;
use unikernel::services;

use crate::{check, Outcome};

/// How late `thread::sleep` may return (TCG guests are slow; early is never allowed).
const SLEEP_LATE_TOLERANCE: Duration = Duration::from_millis(50);

/// The cases, in the order of `conformance_protocol::STD_CASES`, which names them (and
/// has as many entries: the array length is checked).
pub const CASES: [fn() -> Outcome; STD_CASES.len()] =
    [args, env, time, sleep, spawn_join, sync, thread_local_values, alloc_large, fs, hashmap, parallelism, command];

fn args() -> Outcome {
    let from_std: Vec<String> = std::env::args().skip(1).collect();
    let from_backend = services::boot_args();
    check(
        from_std == from_backend && std::env::args().count() >= 1,
        format!("std::env::args() has argv[0] and the {} boot args", from_backend.len()),
        format!("std::env::args() {from_std:?} differs from the boot args {from_backend:?}"),
    )
}

fn env() -> Outcome {
    let key = "CONFORMANCE_ENV_CASE";
    // No other thread of this app is running while the environment changes.
    std::env::set_var(key, "value=with=equals");
    let read = std::env::var(key);
    let listed = std::env::vars().any(|(k, v)| k == key && v == "value=with=equals");
    std::env::remove_var(key);
    let removed = std::env::var_os(key).is_none();
    check(
        read.as_deref() == Ok("value=with=equals") && listed && removed,
        String::from("set_var, var, vars and remove_var agree"),
        format!("read {read:?}, listed {listed}, removed {removed}"),
    )
}

fn time() -> Outcome {
    let start = Instant::now();
    let mut backwards = 0;
    let mut last = start;
    for _ in 0..1000 {
        let now = Instant::now();
        if now < last {
            backwards += 1;
        }
        last = now;
    }
    let wall = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let backend_wall = services::wall_clock_ns() / 1_000_000_000;
    check(
        backwards == 0 && (1_577_836_800..4_102_444_800).contains(&wall) && wall.abs_diff(backend_wall) <= 2,
        format!("Instant monotonic over 1000 reads; SystemTime {wall} s agrees with the backend clock"),
        format!("Instant went backwards {backwards} times; SystemTime {wall} s, backend {backend_wall} s"),
    )
}

fn sleep() -> Outcome {
    let mut worst_late = Duration::ZERO;
    for ms in [10u64, 50] {
        let wanted = Duration::from_millis(ms);
        let start = Instant::now();
        thread::sleep(wanted);
        let took = start.elapsed();
        if took < wanted {
            return Outcome::Fail(format!("thread::sleep({ms} ms) returned after {took:?}"));
        }
        worst_late = worst_late.max(took - wanted);
    }
    check(
        worst_late <= SLEEP_LATE_TOLERANCE,
        format!("thread::sleep 10/50 ms, worst {worst_late:?} late"),
        format!("thread::sleep was {worst_late:?} late (tolerance {SLEEP_LATE_TOLERANCE:?})"),
    )
}

fn spawn_join() -> Outcome {
    let handles: Vec<_> =
        (1..=4u64).map(|i| thread::spawn(move || (1..=1000u64).map(|n| n * i).sum::<u64>())).collect();
    let mut total = 0;
    for handle in handles {
        match handle.join() {
            Ok(part) => total += part,
            Err(_) => return Outcome::Fail(String::from("a spawned thread panicked")),
        }
    }
    let expected = 500_500 * (1 + 2 + 3 + 4);
    check(
        total == expected,
        String::from("4 threads spawned and joined with their results"),
        format!("threads summed to {total}, expected {expected}"),
    )
}

fn sync() -> Outcome {
    // Mutex: 4 threads x 1000 increments.
    let counter = Arc::new(Mutex::new(0u32));
    let workers: Vec<_> = (0..4)
        .map(|_| {
            let counter = Arc::clone(&counter);
            thread::spawn(move || {
                for _ in 0..1000 {
                    *counter.lock().expect("not poisoned") += 1;
                }
            })
        })
        .collect();
    for w in workers {
        let _ = w.join();
    }
    let count = *counter.lock().expect("not poisoned");

    // Condvar: a thread waits until the flag is set.
    let pair = Arc::new((Mutex::new(false), Condvar::new()));
    let waiter = {
        let pair = Arc::clone(&pair);
        thread::spawn(move || {
            let (flag, cv) = &*pair;
            let guard = cv.wait_while(flag.lock().expect("not poisoned"), |set| !*set).expect("not poisoned");
            *guard
        })
    };
    thread::sleep(Duration::from_millis(5));
    *pair.0.lock().expect("not poisoned") = true;
    pair.1.notify_all();
    let woke = waiter.join().unwrap_or(false);

    // mpsc: 100 messages arrive in order.
    let (tx, rx) = mpsc::channel();
    let sender = thread::spawn(move || {
        for i in 0..100u32 {
            let _ = tx.send(i);
        }
    });
    let received: Vec<u32> = rx.iter().collect();
    let _ = sender.join();
    let in_order = received == (0..100).collect::<Vec<_>>();

    check(
        count == 4000 && woke && in_order,
        String::from("Mutex counted 4000, Condvar woke its waiter, mpsc kept 100 messages in order"),
        format!("mutex count {count} (want 4000), condvar woke {woke}, mpsc in order {in_order}"),
    )
}

fn thread_local_values() -> Outcome {
    std::thread_local!(static SLOT: core::cell::Cell<u32> = const { core::cell::Cell::new(7) });
    SLOT.with(|s| s.set(1));
    let other = thread::spawn(|| {
        let initial = SLOT.with(|s| s.get());
        SLOT.with(|s| s.set(2));
        initial
    })
    .join()
    .unwrap_or(0);
    let mine = SLOT.with(|s| s.get());
    check(
        other == 7 && mine == 1,
        String::from("each thread sees its own thread_local value"),
        format!("the other thread started with {other} (want 7); this one has {mine} (want 1)"),
    )
}

fn alloc_large() -> Outcome {
    const SIZE: usize = 8 << 20;
    let mut big = vec![0u8; SIZE];
    for (i, page) in big.chunks_mut(4096).enumerate() {
        page[0] = i as u8;
        page[4095] = !(i as u8);
    }
    let ok = big.chunks(4096).enumerate().all(|(i, p)| p[0] == i as u8 && p[4095] == !(i as u8));
    check(
        ok,
        String::from("8 MiB allocated, every page written and read back"),
        String::from("8 MiB buffer lost writes"),
    )
}

fn fs() -> Outcome {
    match fs_steps() {
        Ok(detail) => Outcome::Pass(detail),
        Err(e) => Outcome::Fail(e),
    }
}

fn fs_steps() -> Result<String, String> {
    use std::fs;
    let base = std::env::temp_dir();
    fs::create_dir_all(&base).map_err(|e| format!("create {}: {e}", base.display()))?;
    let mut tag = [0u8; 4];
    services::fill_random(&mut tag);
    let dir = base.join(format!("conformance-{:08x}", u32::from_le_bytes(tag)));
    fs::create_dir(&dir).map_err(|e| format!("create_dir {}: {e}", dir.display()))?;
    let first = dir.join("first.txt");
    let second = dir.join("second.txt");
    let body = "hello, file system\n".repeat(100);
    let steps = || -> Result<(), String> {
        fs::write(&first, &body).map_err(|e| format!("write: {e}"))?;
        let read = fs::read_to_string(&first).map_err(|e| format!("read: {e}"))?;
        if read != body {
            return Err(format!("read back {} bytes, wrote {}", read.len(), body.len()));
        }
        fs::rename(&first, &second).map_err(|e| format!("rename: {e}"))?;
        if first.exists() || !second.exists() {
            return Err(String::from("rename left the old name or lost the new one"));
        }
        let names: Vec<String> = fs::read_dir(&dir)
            .map_err(|e| format!("read_dir: {e}"))?
            .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
            .collect();
        if names != ["second.txt"] {
            return Err(format!("read_dir listed {names:?}, want [\"second.txt\"]"));
        }
        fs::remove_file(&second).map_err(|e| format!("remove_file: {e}"))?;
        Ok(())
    };
    let result = steps();
    let removed = fs::remove_dir(&dir);
    result?;
    removed.map_err(|e| format!("remove_dir: {e}"))?;
    Ok(format!("create, write, read, rename, read_dir, remove in {}", base.display()))
}

fn hashmap() -> Outcome {
    let (a, b) = (RandomState::new(), RandomState::new());
    // Two maps built in one thread share keys; across threads, or on another run, they
    // must not. Compare fresh states from two threads.
    let c = thread::spawn(RandomState::new).join().ok();
    let key = "conformance";
    let differs = c.map(|c| c.hash_one(key) != a.hash_one(key)).unwrap_or(false);
    let mut map = HashMap::with_hasher(b);
    for i in 0..1000u32 {
        map.insert(i, i * 2);
    }
    let lookups_ok = (0..1000u32).all(|i| map.get(&i) == Some(&(i * 2)));
    check(
        differs && lookups_ok && map.len() == 1000,
        String::from("randomly seeded hashers differ across threads; 1000 entries stored and found"),
        format!("seeds differ {differs}, lookups {lookups_ok}, len {}", map.len()),
    )
}

fn parallelism() -> Outcome {
    match thread::available_parallelism() {
        Ok(n) => Outcome::Pass(format!("available_parallelism = {n}")),
        Err(e) => Outcome::Fail(format!("available_parallelism failed: {e}")),
    }
}

fn command() -> Outcome {
    let result = std::process::Command::new("true").status();
    if services::backend_name() == "unix" {
        return match result {
            Ok(status) if status.success() => Outcome::Pass(String::from("`true` ran and succeeded")),
            Ok(status) => Outcome::Fail(format!("`true` exited with {status}")),
            Err(e) => Outcome::Fail(format!("spawning `true` failed: {e}")),
        };
    }
    // A unikernel has no processes: the spawn must fail cleanly, not crash or hang.
    match result {
        Err(e) if e.raw_os_error() == Some(libc_enosys()) => {
            Outcome::Pass(format!("Command::status is a clean error: {e}"))
        }
        Err(e) => Outcome::Fail(format!("Command::status failed, but not with ENOSYS: {e}")),
        Ok(status) => Outcome::Fail(format!("a process ran on a unikernel ({status})")),
    }
}

/// ENOSYS on Linux x86_64 (the ABI both std and musl use).
const fn libc_enosys() -> i32 {
    38
}
