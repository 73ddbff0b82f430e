//! `cargo xtask fetch`: bad inputs are clear errors that leave the cache untouched; with
//! offline sources available (`UNIKRAFT_FETCH_TEST_SOURCES=unikraft-repo:lib-musl-repo:tarball`,
//! or the provisioned cache's own trees), a fetch into a fresh cache succeeds.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

mod common;

use common::{skip_unprovisioned, XTASK};

fn fetch(cache: &Path, args: &[&Path], flags: &[&str]) -> Output {
    let mut cmd = Command::new(XTASK);
    cmd.arg("fetch").env("UNIKERNEL_CACHE", cache);
    for (flag, value) in flags.iter().zip(args) {
        cmd.arg(flag).arg(value);
    }
    cmd.output().expect("run xtask fetch")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Every file under `dir` (the cache must hold none after a failed fetch).
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    if let Ok(entries) = fs::read_dir(dir) {
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                found.extend(files_under(&path));
            } else {
                found.push(path);
            }
        }
    }
    found
}

/// A plain directory that looks like a Unikraft core at `release` (`0.16.3` style).
fn fake_unikraft(root: &Path, release: &str) -> PathBuf {
    let [major, minor, patch]: [&str; 3] = release.split('.').collect::<Vec<_>>().try_into().unwrap();
    let dir = root.join("unikraft");
    fs::create_dir_all(&dir).unwrap();
    fs::write(
        dir.join("version.mk"),
        format!("UK_VERSION = {major}\nUK_SUBVERSION = {minor}\nUK_EXTRAVERSION = {patch}\n"),
    )
    .unwrap();
    fs::write(dir.join("Config.uk"), "config UK_NAME\n\tstring \"name\"\n").unwrap();
    dir
}

fn fake_lib_musl(root: &Path) -> PathBuf {
    let dir = root.join("lib-musl");
    fs::create_dir_all(&dir).unwrap();
    fs::write(dir.join("Makefile.uk"), "LIBMUSL_VERSION=1.2.3\n$(eval $(call addlib_s,libmusl,$(CONFIG_LIBMUSL)))\n")
        .unwrap();
    dir
}

const OFFLINE: [&str; 3] = ["--unikraft-src", "--musl-src", "--musl-tarball"];

#[test]
fn a_tampered_musl_tarball_is_rejected_and_the_cache_stays_empty() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("cache");
    let unikraft = fake_unikraft(tmp.path(), "0.16.3");
    let lib_musl = fake_lib_musl(tmp.path());
    let tarball = tmp.path().join("musl-1.2.3.tar.gz");
    fs::write(&tarball, b"not the musl release").unwrap();

    let out = fetch(&cache, &[&unikraft, &lib_musl, &tarball], &OFFLINE);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains("wrong SHA256"), "{err}");
    assert!(err.contains("expected 7d5b0b6062521e4627e099e4c9dc8248d32a30285e959b7eecaa780cf8cfd4a4"), "{err}");
    assert_eq!(files_under(&cache), Vec::<PathBuf>::new(), "a failed fetch wrote into the cache");
}

#[test]
fn a_missing_source_directory_is_a_clear_error() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("cache");
    let missing = tmp.path().join("no-unikraft-here");
    let lib_musl = fake_lib_musl(tmp.path());
    let tarball = tmp.path().join("musl.tar.gz");
    fs::write(&tarball, b"x").unwrap();

    let out = fetch(&cache, &[&missing, &lib_musl, &tarball], &OFFLINE);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains("--unikraft-src") && err.contains("no such directory"), "{err}");
    assert!(!cache.exists(), "a failed fetch created the cache");
}

#[test]
fn a_plain_tree_of_another_release_is_rejected_before_anything_is_copied() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("cache");
    let unikraft = fake_unikraft(tmp.path(), "0.17.0");
    let lib_musl = fake_lib_musl(tmp.path());
    let tarball = tmp.path().join("musl.tar.gz");
    fs::write(&tarball, b"x").unwrap();

    let out = fetch(&cache, &[&unikraft, &lib_musl, &tarball], &OFFLINE);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains("RELEASE-0.17.0") && err.contains("RELEASE-0.16.3"), "{err}");
    assert!(!cache.exists(), "a failed fetch created the cache");
}

#[test]
fn a_directory_that_is_not_lib_musl_is_rejected() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("cache");
    let unikraft = fake_unikraft(tmp.path(), "0.16.3");
    let not_musl = tmp.path().join("empty");
    fs::create_dir_all(&not_musl).unwrap();
    let tarball = tmp.path().join("musl.tar.gz");
    fs::write(&tarball, b"x").unwrap();

    let out = fetch(&cache, &[&unikraft, &not_musl, &tarball], &OFFLINE);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains("--musl-src") && err.contains("no Makefile.uk"), "{err}");
    assert!(!cache.exists(), "a failed fetch created the cache");
}

/// The offline sources to fetch from: explicit, or the trees already provisioned here
/// (a git work tree is a valid `--unikraft-src`).
fn offline_sources() -> Option<[PathBuf; 3]> {
    if let Some(spec) = std::env::var_os("UNIKRAFT_FETCH_TEST_SOURCES") {
        let parts: Vec<PathBuf> = std::env::split_paths(&spec).collect();
        return parts.try_into().ok();
    }
    let out = Command::new(XTASK).arg("sources").output().ok()?;
    if !out.status.success() {
        // Never provisioned: a skip. Provisioned but broken: a failure.
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("are not provisioned"), "the provisioned sources are unusable: {err}");
        return None;
    }
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let get = |key: &str| text.lines().find_map(|l| l.strip_prefix(&format!("{key}="))).map(PathBuf::from);
    Some([get("unikraft")?, get("lib_musl")?, get("musl_tarball")?])
}

#[test]
fn an_offline_fetch_fills_a_fresh_cache_and_a_second_one_reuses_it() {
    const TEST: &str = "an_offline_fetch_fills_a_fresh_cache_and_a_second_one_reuses_it";
    let Some([unikraft, lib_musl, tarball]) = offline_sources() else {
        skip_unprovisioned(
            TEST,
            "there are no offline sources (run `cargo xtask fetch` first, or set \
             UNIKRAFT_FETCH_TEST_SOURCES=unikraft-repo:lib-musl-repo:tarball)",
        );
        return;
    };
    if !(unikraft.join(".git").exists() || unikraft.join("HEAD").is_file()) {
        skip_unprovisioned(
            TEST,
            &format!(
                "the Unikraft tree {} is not a git repository (set \
                 UNIKRAFT_FETCH_TEST_SOURCES=unikraft-repo:lib-musl-repo:tarball)",
                unikraft.display()
            ),
        );
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("cache");
    let out = fetch(&cache, &[&unikraft, &lib_musl, &tarball], &OFFLINE);
    assert!(out.status.success(), "{}", stderr(&out));

    let sources = Command::new(XTASK).arg("sources").env("UNIKERNEL_CACHE", &cache).output().unwrap();
    let text = String::from_utf8_lossy(&sources.stdout);
    assert!(sources.status.success(), "{}", stderr(&sources));
    assert!(text.contains(&format!("unikraft={}", cache.join("unikraft/RELEASE-0.16.3").display())), "{text}");
    let version = fs::read_to_string(cache.join("unikraft/RELEASE-0.16.3/version.mk")).unwrap();
    assert!(version.contains("UK_SUBVERSION = 16"), "{version}");
    assert!(!cache.join(".staging").exists(), "staging left behind");

    let again = fetch(&cache, &[&unikraft, &lib_musl, &tarball], &OFFLINE);
    assert!(again.status.success(), "{}", stderr(&again));
    assert!(stderr(&again).contains("already cached"), "{}", stderr(&again));
}
