//! `Sandbox::git` through the library: the default protects a granted
//! repository's hooks in one-shot runs and in warm sessions alike, `Off`
//! does not (the control), `ReadOnly` refuses commits; computing a plan
//! changes nothing on the host.
//!
//! The attacks themselves, for both kinds of caller, are in
//! `sandbox-cli/tests/git.rs`.

mod common;

use std::path::Path;
use std::process::Command;

use common::{require_root, text, Workspace};
use stockade::{Fs, GitMode, Output, Sandbox};

/// A repository with one commit at `ws/repo`, made by the host's git.
fn repo(ws: &Workspace) -> std::path::PathBuf {
    let repo = ws.path().join("repo");
    std::fs::create_dir(&repo).unwrap();
    for args in [
        &["init", "-q", "-b", "main"][..],
        &["commit", "-q", "--allow-empty", "-m", "base"],
    ] {
        let out = Command::new("git")
            .arg("-C")
            .arg(&repo)
            .args(["-c", "user.name=host", "-c", "user.email=host@x"])
            .args(args)
            .output()
            .unwrap();
        assert!(out.status.success(), "git {args:?}: {}", text(&out.stderr));
    }
    repo
}

fn sandbox(repo: &Path) -> Sandbox {
    Sandbox::new()
        .fs(Fs::minimal().rw(repo))
        .env("GIT_AUTHOR_NAME", "agent")
        .env("GIT_AUTHOR_EMAIL", "agent@sandbox")
        .env("GIT_COMMITTER_NAME", "agent")
        .env("GIT_COMMITTER_EMAIL", "agent@sandbox")
}

fn run(sb: Sandbox, script: &str) -> Output {
    sb.command(["sh", "-c", script]).output().unwrap()
}

const PLANT: &str = "echo 'exit 0' > .git/hooks/pre-commit";

#[test]
fn default_protects_off_does_not_readonly_refuses_commits() {
    require_root();
    let ws = Workspace::new("git-api");
    let repo = repo(&ws);
    let hook = repo.join(".git/hooks/pre-commit");

    let out = run(sandbox(&repo), PLANT);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("Read-only file system"),
        "{}",
        text(&out.stderr)
    );
    assert!(!hook.exists());
    let out = run(
        sandbox(&repo),
        "git commit -q --allow-empty -m agent && git log --format=%s -1",
    );
    assert_eq!(text(&out.stdout), "agent\n", "{}", text(&out.stderr));

    let out = run(sandbox(&repo).git(GitMode::ReadOnly), PLANT);
    assert!(!out.status.success());
    let out = run(
        sandbox(&repo).git(GitMode::ReadOnly),
        "git commit -q --allow-empty -m nope",
    );
    assert!(
        text(&out.stderr).contains("Read-only file system"),
        "{}",
        text(&out.stderr)
    );

    // The control: without protection the same write lands on the host.
    let out = run(sandbox(&repo).git(GitMode::Off), PLANT);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(std::fs::read_to_string(&hook).unwrap(), "exit 0\n");
}

#[test]
fn a_warm_session_is_protected_like_a_one_shot_run() {
    require_root();
    let ws = Workspace::new("git-session");
    let repo = repo(&ws);
    let session = sandbox(&repo).session().unwrap();
    let out = session.command(["sh", "-c", PLANT]).output().unwrap();
    assert!(
        !out.status.success() && text(&out.stderr).contains("Read-only file system"),
        "{}",
        text(&out.stderr)
    );
    let out = session
        .command([
            "sh",
            "-c",
            "git commit -q --allow-empty -m in-session && git log --format=%s -1",
        ])
        .output()
        .unwrap();
    assert_eq!(text(&out.stdout), "in-session\n", "{}", text(&out.stderr));
    assert!(!repo.join(".git/hooks/pre-commit").exists());
}

#[test]
fn validating_a_policy_writes_nothing_to_the_host() {
    require_root();
    let ws = Workspace::new("git-validate");
    let repo = repo(&ws);
    std::fs::remove_dir_all(repo.join(".git/hooks")).unwrap();
    sandbox(&repo).validate().unwrap();
    assert!(!repo.join(".git/hooks").exists());
    assert!(!repo.join(".git/commondir").exists());
    // A run creates what it pins: an empty hooks dir and a `commondir`
    // naming the git directory itself.
    let out = run(sandbox(&repo), "ls -A .git/hooks; git status --porcelain");
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "");
    assert!(repo.join(".git/hooks").is_dir());
    assert_eq!(
        std::fs::read_to_string(repo.join(".git/commondir")).unwrap(),
        ".\n"
    );
}
