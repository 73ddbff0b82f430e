//! The corpus: widely used crates from crates.io, each with what its own test suite
//! exercises on a unikernel. Versions are requirements (the newest matching release is
//! fetched); the table records the version that ran.

/// One crate of the corpus.
pub struct CorpusCrate {
    pub name: &'static str,
    /// A cargo version requirement.
    pub req: &'static str,
    /// What its tests exercise, for the table.
    pub exercises: &'static str,
}

const fn krate(name: &'static str, req: &'static str, exercises: &'static str) -> CorpusCrate {
    CorpusCrate { name, req, exercises }
}

/// In the order they run: quick suites first, so a partial run covers the most crates.
pub const CORPUS: &[CorpusCrate] = &[
    krate("itoa", "1", "integer formatting"),
    krate("hex", "0.4", "encoding, should_panic"),
    krate("fnv", "1", "hashing, HashMap"),
    krate("either", "1", "formatting, iterators"),
    krate("ryu", "1", "float formatting"),
    krate("semver", "1", "parsing, formatting"),
    krate("base64", "0.22", "encoding, large buffers"),
    krate("once_cell", "1", "threads, lazy statics"),
    krate("memchr", "2", "SIMD search, large inputs"),
    krate("smallvec", "1", "allocation, should_panic"),
    krate("bytes", "1", "allocation, threads, should_panic"),
    krate("crossbeam-utils", "0.8", "threads, scoped threads, parking"),
    krate("crossbeam-channel", "0.5", "threads, time, select"),
    krate("parking_lot", "0.12", "threads, condvars, timeouts"),
    krate("indexmap", "2", "large allocations, should_panic"),
    krate("hashbrown", "0.16", "large allocations, floats"),
    krate("regex-syntax", "0.8", "parsing, Unicode tables"),
    krate("tempfile", "3", "files, env (TMPDIR)"),
    krate("socket2", "0.6", "sockets over loopback"),
    krate("serde_json", "1", "floats and formatting"),
    krate("time", "0.3", "time, formatting"),
    krate("chrono", "0.4", "time, env (TZ), formatting"),
];

/// The crates named (in the order given), or an error naming the unknown ones.
pub fn select(names: &[String]) -> anyhow::Result<Vec<&'static CorpusCrate>> {
    if names.is_empty() {
        return Ok(CORPUS.iter().collect());
    }
    let unknown: Vec<&str> =
        names.iter().filter(|n| !CORPUS.iter().any(|c| c.name == n.as_str())).map(String::as_str).collect();
    if !unknown.is_empty() {
        let known: Vec<&str> = CORPUS.iter().map(|c| c.name).collect();
        anyhow::bail!("not in the corpus: {} (the corpus: {})", unknown.join(", "), known.join(", "));
    }
    Ok(names.iter().filter_map(|n| CORPUS.iter().find(|c| c.name == n.as_str())).collect())
}
