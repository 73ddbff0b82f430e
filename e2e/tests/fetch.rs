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

/// `src` cloned to `dest` with `tag` moved to a commit that changes one file: what a
/// moved tag or a tampered mirror looks like.
fn clone_with_moved_tag(src: &Path, dest: &Path, tag: &str) {
    let git = |dir: &Path, args: &[&str]| {
        let out = Command::new("git").arg("-C").arg(dir).args(args).output().unwrap();
        assert!(out.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    };
    git(Path::new("."), &["clone", "--quiet", &src.to_string_lossy(), &dest.to_string_lossy()]);
    git(dest, &["checkout", "--quiet", &format!("refs/tags/{tag}")]);
    fs::write(dest.join("README.md"), "modified after the release\n").unwrap();
    git(dest, &["-c", "user.name=t", "-c", "user.email=t@localhost", "commit", "--quiet", "-am", "not the release"]);
    git(dest, &["tag", "--force", tag]);
}

/// The pinned offline sources as git repositories, or a SKIP.
fn offline_git_sources(test: &str) -> Option<[PathBuf; 3]> {
    let sources = offline_sources();
    let Some([unikraft, lib_musl, tarball]) = sources.filter(|[u, _, _]| u.join(".git").exists()) else {
        skip_unprovisioned(
            test,
            "there are no offline git sources (run `cargo xtask fetch` first, or set \
             UNIKRAFT_FETCH_TEST_SOURCES=unikraft-repo:lib-musl-repo:tarball)",
        );
        return None;
    };
    Some([unikraft, lib_musl, tarball])
}

/// The tag names a commit, the commit a tree: the tree is pinned (git's tree id, the same
/// for the same files), so a repository whose tag was moved, or whose tagged tree was
/// modified, is refused and nothing of it enters the cache.
#[test]
fn a_repository_whose_tag_was_moved_is_refused_and_not_cached() {
    const TEST: &str = "a_repository_whose_tag_was_moved_is_refused_and_not_cached";
    let Some([unikraft, lib_musl, tarball]) = offline_git_sources(TEST) else { return };
    let tmp = tempfile::tempdir().unwrap();
    let moved = tmp.path().join("unikraft-moved");
    clone_with_moved_tag(&unikraft, &moved, "RELEASE-0.16.3");
    let cache = tmp.path().join("cache");

    let out = fetch(&cache, &[&moved, &lib_musl, &tarball], &OFFLINE);
    assert!(!out.status.success(), "a moved tag was accepted:\n{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("is not the pinned tree") && err.contains("RELEASE-0.16.3"), "{err}");
    assert!(!cache.join("unikraft").exists(), "the refused tree entered the cache");
    assert!(!cache.join(".staging").exists(), "staging left behind");
}

/// A plain tree (not a git repository) is pinned by the same tree id, computed from its
/// files: one with the right version files but other contents is refused.
#[test]
fn a_plain_tree_that_is_not_the_pinned_one_is_refused_and_not_cached() {
    const TEST: &str = "a_plain_tree_that_is_not_the_pinned_one_is_refused_and_not_cached";
    let Some([_, lib_musl, tarball]) = offline_git_sources(TEST) else { return };
    let tmp = tempfile::tempdir().unwrap();
    let unikraft = fake_unikraft(tmp.path(), "0.16.3");
    let cache = tmp.path().join("cache");

    let out = fetch(&cache, &[&unikraft, &lib_musl, &tarball], &OFFLINE);
    assert!(!out.status.success(), "a tree with other files was accepted:\n{}", stderr(&out));
    assert!(stderr(&out).contains("is not the pinned tree"), "{}", stderr(&out));
    assert!(!cache.join("unikraft").exists(), "the refused tree entered the cache");
}

/// Solo5 is built from the clone (configure.sh, make), so its tag is pinned the same way
/// and checked before anything runs.
#[test]
fn a_solo5_repository_whose_tag_was_moved_is_refused_before_it_is_built() {
    const TEST: &str = "a_solo5_repository_whose_tag_was_moved_is_refused_before_it_is_built";
    let solo5 = std::env::var_os("UNIKRAFT_FETCH_TEST_SOLO5")
        .map(PathBuf::from)
        .or_else(|| cargo_unikraft::solo5::solo5_tree().ok().filter(|t| t.join(".git").exists()));
    let Some(solo5) = solo5 else {
        skip_unprovisioned(TEST, "no Solo5 git repository (provision Solo5, or set UNIKRAFT_FETCH_TEST_SOLO5=DIR)");
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let moved = tmp.path().join("solo5-moved");
    clone_with_moved_tag(&solo5, &moved, "v0.12.1");
    let cache = tmp.path().join("cache");

    let out = Command::new(XTASK)
        .arg("fetch")
        .arg("--solo5-src")
        .arg(&moved)
        .env("UNIKERNEL_CACHE", &cache)
        .output()
        .unwrap();
    assert!(!out.status.success(), "a moved Solo5 tag was accepted:\n{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("is not the pinned tree") && err.contains("v0.12.1"), "{err}");
    assert!(!err.contains("building Solo5"), "it was built before the check: {err}");
    assert!(!cache.join("solo5").exists(), "the refused tree entered the cache");
}
