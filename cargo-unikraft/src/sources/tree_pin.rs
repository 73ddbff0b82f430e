//! The git trees are pinned by content, not only by tag name: a tag can be moved and a
//! mirror modified, and Solo5 is even built (configure.sh, make) from what is cloned.
//!
//! The pin is git's tree id of the tagged commit. It is content-addressed (every file's
//! bytes, name and mode), so any copy of the release has it, whatever commit carries it:
//! an offline kit that commits the release archive as one new commit under the same tag
//! (`/work/shared/sources/unpack` style) has other commit ids but the same tree. A commit
//! id is pinned too, and checked on clones from upstream, where it must be upstream's.
//!
//! Two tree ids are accepted where the release archive committed with `git add -A` differs
//! from upstream's tree: Unikraft's and Solo5's own `.gitignore` ignore a few files they
//! track (`.clang-format`, `.gitignore` itself, ...), so such a commit leaves exactly those
//! out. Both ids were read from the tags (`git rev-parse TAG^{tree}`) of upstream's
//! repositories and of the unpacked kit; the kit's files otherwise equal upstream's.

use std::path::Path;
use std::process::{Command, Stdio};

use anyhow::{bail, Context, Result};

use super::PIN;

/// What a pinned tag must hold.
#[derive(Debug)]
pub struct TreePin {
    /// The tag the tree is checked out at.
    pub tag: &'static str,
    /// The commit upstream's tag names (checked on clones from upstream).
    pub upstream_commit: &'static str,
    /// The git tree ids the tag's tree may have: upstream's first, then, where it
    /// differs, that of the release archive committed with `git add -A`.
    pub trees: &'static [&'static str],
}

/// Unikraft RELEASE-0.16.3 (github.com/unikraft/unikraft).
pub const UNIKRAFT: TreePin = TreePin {
    tag: PIN.unikraft_tag,
    upstream_commit: "e453b74a2e78a0de98563d75d8e0a97e668088e6",
    trees: &["2a23f32e19b4143a3c950493773dbcd3e83ae2d8", "0a37cf9c8978167e14d9ee0174d910c09650bf63"],
};

/// lib-musl RELEASE-0.16.3 (github.com/unikraft/lib-musl): one tree either way.
pub const LIB_MUSL: TreePin = TreePin {
    tag: PIN.lib_musl_tag,
    upstream_commit: "fd1abc9257b40a74c69b3a40467a453bf8892439",
    trees: &["a3a6e1d67f6498471226c9f36970a49dc9b3ac1b"],
};

/// Solo5 v0.12.1 (github.com/Solo5/solo5).
pub const SOLO5: TreePin = TreePin {
    tag: crate::solo5::SOLO5_TAG,
    upstream_commit: "d88e37879363dddbb693b13dceee59042d265e42",
    trees: &["579206a51cdd41a828c8eb939c9fc418131f5ec1", "b261c657835dc950965dedcd448d0f1fe9d5bbca"],
};

/// How the tree to check came to be.
pub enum Checkout<'a> {
    /// A clone from upstream, checked out at the tag: the commit must be upstream's.
    Upstream,
    /// A clone of a local repository, checked out at the tag.
    LocalClone,
    /// A plain copy (no git metadata): its tree id is computed from its files, in a
    /// scratch repository under this directory (outside the tree).
    Plain { scratch: &'a Path },
}

/// Refuses `tree` (the staging copy of `what` from `origin`) unless it holds the pinned
/// release: the error says which tree it has and which are pinned.
pub fn check(what: &str, pin: &TreePin, tree: &Path, checkout: Checkout, origin: &str) -> Result<()> {
    let (got, subject) = match checkout {
        Checkout::Upstream | Checkout::LocalClone => {
            (git_output(tree, &["rev-parse", "HEAD^{tree}"])?, "the tag's tree")
        }
        Checkout::Plain { scratch } => (tree_id_of_files(tree, scratch)?, "the tree of its files"),
    };
    if !pin.trees.contains(&got.as_str()) {
        bail!(
            "{what} {tag} from {origin}: {subject} is {got}, which is not the pinned tree \
             ({pinned}): the tag was moved or the tree modified since the release; refusing it \
             (fetch from upstream, or from an unmodified copy of the release)",
            tag = pin.tag,
            pinned = pin.trees.join(" or "),
        );
    }
    if let Checkout::Upstream = checkout {
        let commit = git_output(tree, &["rev-parse", "HEAD^{commit}"])?;
        if commit != pin.upstream_commit {
            bail!(
                "{what} {tag} from {origin}: the tag names commit {commit}, not upstream's {want}; \
                 refusing it",
                tag = pin.tag,
                want = pin.upstream_commit,
            );
        }
    }
    Ok(())
}

/// Git's tree id for the files under `tree` as they are (ignore rules overridden, so
/// nothing present is left out), computed in a scratch repository.
fn tree_id_of_files(tree: &Path, scratch: &Path) -> Result<String> {
    let git_dir = scratch.join("tree-pin.git");
    let mut init = Command::new("git");
    init.args(["init", "--quiet", "--bare"]).arg(&git_dir);
    output_of(init, &["init"])?;
    let run = |args: &[&str]| -> Result<String> {
        let mut cmd = Command::new("git");
        cmd.arg("--git-dir").arg(&git_dir).arg("--work-tree").arg(tree).args(args);
        output_of(cmd, args)
    };
    run(&["add", "--all", "--force", "."])?;
    let id = run(&["write-tree"])?;
    let _ = std::fs::remove_dir_all(&git_dir);
    Ok(id)
}

fn git_output(dir: &Path, args: &[&str]) -> Result<String> {
    let mut cmd = Command::new("git");
    cmd.arg("-C").arg(dir).args(args);
    output_of(cmd, args)
}

fn output_of(mut cmd: Command, args: &[&str]) -> Result<String> {
    let out = cmd.stdin(Stdio::null()).output().with_context(|| format!("run git {}", args.join(" ")))?;
    if !out.status.success() {
        bail!("git {} failed: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A plain tree's id is git's: the same files give the id git gives their commit.
    #[test]
    fn a_plain_tree_gets_the_tree_id_git_gives_its_commit() {
        let tmp = tempfile::tempdir().unwrap();
        let tree = tmp.path().join("tree");
        std::fs::create_dir_all(tree.join("sub")).unwrap();
        std::fs::write(tree.join("a"), "a\n").unwrap();
        std::fs::write(tree.join("sub/.hidden"), "h\n").unwrap();
        std::fs::write(tree.join(".gitignore"), ".*\n").unwrap();
        let id = tree_id_of_files(&tree, tmp.path()).unwrap();
        assert!(!tmp.path().join("tree-pin.git").exists(), "the scratch repository is removed");
        git_output(&tree, &["init", "--quiet"]).unwrap();
        git_output(&tree, &["add", "--all", "--force", "."]).unwrap();
        assert_eq!(git_output(&tree, &["write-tree"]).unwrap(), id);
        let pin = TreePin { tag: "T", upstream_commit: "0", trees: &[] };
        let err = check("x", &pin, &tree, Checkout::Plain { scratch: tmp.path() }, "here").unwrap_err();
        assert!(err.to_string().contains(&format!("the tree of its files is {id}, which is not the pinned")), "{err}");
    }

    /// From upstream, the pinned tree under another commit is refused too: upstream's tag
    /// names one commit.
    #[test]
    fn an_upstream_clone_must_have_upstream_s_commit() {
        let tmp = tempfile::tempdir().unwrap();
        let repo = tmp.path();
        std::fs::write(repo.join("a"), "a\n").unwrap();
        git_output(repo, &["init", "--quiet"]).unwrap();
        git_output(repo, &["add", "a"]).unwrap();
        git_output(repo, &["-c", "user.name=t", "-c", "user.email=t@localhost", "commit", "--quiet", "-m", "c"])
            .unwrap();
        let tree: &'static str = git_output(repo, &["rev-parse", "HEAD^{tree}"]).unwrap().leak();
        let commit: &'static str = git_output(repo, &["rev-parse", "HEAD"]).unwrap().leak();
        let trees: &'static [&'static str] = vec![tree].leak();
        let other = TreePin { tag: "T", upstream_commit: "e453b74a2e78a0de98563d75d8e0a97e668088e6", trees };
        check("x", &other, repo, Checkout::LocalClone, "here").unwrap();
        let err = check("x", &other, repo, Checkout::Upstream, "upstream").unwrap_err();
        assert!(err.to_string().contains(&format!("names commit {commit}, not upstream's")), "{err}");
        let same = TreePin { tag: "T", upstream_commit: commit, trees };
        check("x", &same, repo, Checkout::Upstream, "upstream").unwrap();
    }
}
