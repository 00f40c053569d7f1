//! git in writable workspaces, through the CLI, as root and as `stockade-test`.
//!
//! The attack: from inside a `--rw` repository, plant something that makes
//! the user's next git command on the host run a program (a hook, a setting
//! in `.git/config`, a `commondir` sending git to a directory the sandbox
//! filled, a renamed-and-recreated `.git`). Each is attempted and must fail
//! with the exact error; then the host's own git runs `git checkout` and the
//! hook's marker must be absent, `.git/config` byte for byte the same. The
//! controls: commits inside work and show on the host, and with `--git off`
//! the same planted hook does run on the host (so these tests would notice
//! if the protection went away).

#[macro_use]
mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::*;

/// Identity for commits made inside (HOME is the sandbox's own /tmp).
const AGENT: [&str; 8] = [
    "--env",
    "GIT_AUTHOR_NAME=agent",
    "--env",
    "GIT_AUTHOR_EMAIL=agent@sandbox",
    "--env",
    "GIT_COMMITTER_NAME=agent",
    "--env",
    "GIT_COMMITTER_EMAIL=agent@sandbox",
];

/// The host's git, as the user would run it after the sandbox ended.
fn host_git(dir: &Path, args: &[&str]) -> Output {
    Command::new("git")
        .arg("-C")
        .arg(dir)
        .args([
            "-c",
            "safe.directory=*",
            "-c",
            "user.name=host",
            "-c",
            "user.email=host@x",
        ])
        .args(args)
        .output()
        .expect("run host git")
}

#[track_caller]
fn host_ok(dir: &Path, args: &[&str]) -> String {
    let out = host_git(dir, args);
    assert!(
        out.status.success(),
        "host git {args:?} in {}: {}",
        dir.display(),
        stderr(&out)
    );
    stdout(&out)
}

/// `td/repo`: one commit on `main`, and a linked worktree `td/outside` that
/// the sandbox is not given (its pointers live in `repo/.git/worktrees`).
/// Everything belongs to the caller.
fn repo(td: &TestDir, caller: Caller) -> PathBuf {
    let repo = PathBuf::from(td.mkdir("repo"));
    host_ok(&repo, &["init", "-q", "-b", "main"]);
    fs::write(repo.join("README"), "hello\n").unwrap();
    host_ok(&repo, &["add", "README"]);
    host_ok(&repo, &["commit", "-q", "-m", "base"]);
    host_ok(
        &repo,
        &["worktree", "add", "-q", "-b", "side", "../outside"],
    );
    caller.own(td.path());
    repo
}

/// A `post-checkout` hook that leaves `marker` behind when it runs.
fn plant_hook(marker: &Path) -> String {
    format!(
        "printf '#!/bin/sh\\ntouch {}\\n' > .git/hooks/post-checkout && chmod +x .git/hooks/post-checkout",
        marker.display()
    )
}

fn run_in(caller: Caller, opts: &[&str], script: String) -> Output {
    let mut all: Vec<&str> = AGENT.to_vec();
    all.extend_from_slice(opts);
    sh(caller, &all, &script)
}

for_each_caller! {
    root_planted_hooks_config_and_pointers_never_reach_the_hosts_next_git_command,
    user_planted_hooks_config_and_pointers_never_reach_the_hosts_next_git_command
        => planted_hook_never_runs;
    root_git_off_lets_the_same_hook_run_on_the_host,
    user_git_off_lets_the_same_hook_run_on_the_host
        => off_control;
    root_linked_worktree_granted_alone_commits_while_its_common_hooks_stay_read_only,
    user_linked_worktree_granted_alone_commits_while_its_common_hooks_stay_read_only
        => linked_worktree;
    root_git_readonly_refuses_commits_while_status_and_log_work,
    user_git_readonly_refuses_commits_while_status_and_log_work
        => readonly_mode;
}

fn planted_hook_never_runs(caller: Caller) {
    let td = TestDir::new("git-plant");
    let repo = repo(&td, caller);
    // A config that includes a file next to it, not there yet.
    host_ok(&repo, &["config", "include.path", "config.local"]);
    caller.own(td.path());
    let marker = td.path().join("HOOK-RAN");
    let config_before = fs::read(repo.join(".git/config")).unwrap();
    let hooks_before = listing(&repo.join(".git/hooks"));
    let admin = repo.join(".git/worktrees/outside");
    let admin_before = fs::read(admin.join("commondir")).unwrap();
    let rw = repo.to_str().unwrap();

    let script = Script::new()
        // Positive controls first: the ordinary work of an agent.
        .probe(
            "commit",
            "echo work > work.txt && git add work.txt && git commit -q -m agent-commit && git log --format=%s -1",
        )
        .probe(
            "branch",
            "git checkout -q -b agent-branch && git branch --show-current",
        )
        .probe(
            "worktree_add",
            "git worktree add -q new-wt 2>&1 && git -C new-wt log --format=%s -1",
        )
        .probe("global_config", "git config --global user.name agent && git config --global user.name")
        // The attacks.
        .probe("hook", &plant_hook(&marker))
        .probe("hooks_path", "git config core.hooksPath /tmp/x")
        .probe("fsmonitor", "printf '[core]\\n\\tfsmonitor = touch /tmp/x\\n' >> .git/config")
        .probe("include", "git config include.path ../evil.cfg")
        .probe(
            "included_file",
            "printf '[core]\\n\\thooksPath = /tmp/x\\n' > .git/config.local",
        )
        .probe("commondir", "mkdir -p evil/hooks && echo ../evil > .git/commondir")
        .probe("rename_git", "mv .git git.old")
        .probe("rename_hooks", "mv .git/hooks .git/hooks.old")
        .probe("remove_config", "rm -f .git/config")
        .probe("replace_config", "echo x > cfg && mv cfg .git/config")
        .probe("worktree_commondir", "echo ../../../evil > .git/worktrees/outside/commondir")
        .probe("rename_worktree_admin", "mv .git/worktrees/outside .git/worktrees/moved")
        .probe("rename_worktrees", "mv .git/worktrees .git/worktrees.old")
        .build();
    let out = run_in(caller, &["--rw", rw], script);
    let p = probes(&out);
    p.ok("commit", "agent-commit");
    p.ok("branch", "agent-branch");
    p.ok("worktree_add", "agent-commit");
    p.ok("global_config", "agent");
    p.fails_with("hook", "Read-only file system");
    p.fails_with("hooks_path", "Device or resource busy");
    p.fails_with("fsmonitor", "Read-only file system");
    p.fails_with("include", "Device or resource busy");
    p.fails_with("included_file", "Read-only file system");
    p.fails_with("commondir", "Read-only file system");
    p.fails_with("rename_git", "Device or resource busy");
    p.fails_with("rename_hooks", "Device or resource busy");
    p.fails_with("remove_config", "Device or resource busy");
    p.fails_with("replace_config", "Device or resource busy");
    p.fails_with("worktree_commondir", "Read-only file system");
    p.fails_with("rename_worktree_admin", "Device or resource busy");
    p.fails_with("rename_worktrees", "Device or resource busy");

    // On the host: the config and the hooks are as they were...
    assert_eq!(fs::read(repo.join(".git/config")).unwrap(), config_before);
    assert_eq!(listing(&repo.join(".git/hooks")), hooks_before);
    assert_eq!(fs::read(admin.join("commondir")).unwrap(), admin_before);
    // ... `commondir` is what protection left ("this directory") ...
    assert_eq!(
        fs::read_to_string(repo.join(".git/commondir")).unwrap(),
        ".\n"
    );
    // ... and the user's next checkout runs nothing.
    host_ok(&repo, &["checkout", "-q", "-b", "after-the-agent"]);
    assert!(!marker.exists(), "the planted hook ran on the host");
    // The agent's work is there.
    assert_eq!(
        host_ok(&repo, &["log", "--format=%s", "-1", "agent-branch"]),
        "agent-commit\n"
    );
    assert_eq!(
        host_ok(&repo, &["rev-parse", "--git-common-dir"]).trim(),
        repo.join(".git").to_str().unwrap()
    );
    // The untouched linked worktree still works from the host.
    assert_eq!(
        host_ok(&td.path().join("outside"), &["log", "--format=%s", "-1"]),
        "base\n"
    );
}

fn off_control(caller: Caller) {
    let td = TestDir::new("git-off");
    let repo = repo(&td, caller);
    let marker = td.path().join("HOOK-RAN");
    let script = Script::new()
        .probe("hook", &plant_hook(&marker))
        .probe(
            "hooks_path",
            "git config core.hooksPath .git/hooks && git config core.hooksPath",
        )
        .build();
    let out = run_in(
        caller,
        &["--git", "off", "--rw", repo.to_str().unwrap()],
        script,
    );
    let p = probes(&out);
    p.ok("hook", "");
    p.ok("hooks_path", ".git/hooks");
    assert!(
        !repo.join(".git/commondir").exists(),
        "--git off touches nothing"
    );
    host_ok(&repo, &["checkout", "-q", "-b", "after-the-agent"]);
    assert!(
        marker.exists(),
        "with --git off the planted hook must run: this is what the default prevents"
    );
}

fn linked_worktree(caller: Caller) {
    let td = TestDir::new("git-wt");
    let repo = repo(&td, caller);
    let wt = td.path().join("outside");
    let common = repo.join(".git");
    let marker = td.path().join("HOOK-RAN");
    let config_before = fs::read(common.join("config")).unwrap();
    let gitfile_before = fs::read(wt.join(".git")).unwrap();
    let c = common.to_str().unwrap();
    let script = Script::new()
        .probe(
            "commit",
            "echo wt > wt.txt && git add wt.txt && git commit -q -m wt-commit && git log --format=%s -1",
        )
        .probe("branch", "git checkout -q -b wt-branch && git branch --show-current")
        .probe(
            "common_hook",
            &format!(
                "printf '#!/bin/sh\\ntouch {}\\n' > {c}/hooks/post-checkout",
                marker.display()
            ),
        )
        .probe("common_config", &format!("echo '[core] hooksPath = /tmp' >> {c}/config"))
        .probe("hooks_path", "git config core.hooksPath /tmp/x")
        .probe("gitfile", "echo 'gitdir: /tmp/evil' > .git")
        .probe("admin_commondir", &format!("echo /tmp/evil > {c}/worktrees/outside/commondir"))
        .probe("common_commondir", &format!("echo ../evil > {c}/commondir"))
        // The rest of the main repository was not granted.
        .probe("main_checkout", &format!("ls {}", repo.join("README").display()))
        .build();
    let out = run_in(caller, &["--rw", wt.to_str().unwrap()], script);
    let p = probes(&out);
    p.ok("commit", "wt-commit");
    p.ok("branch", "wt-branch");
    p.fails_with("common_hook", "Read-only file system");
    p.fails_with("common_config", "Read-only file system");
    p.fails_with("hooks_path", "Device or resource busy");
    p.fails_with("gitfile", "Read-only file system");
    p.fails_with("admin_commondir", "Read-only file system");
    p.fails_with("common_commondir", "Read-only file system");
    p.fails_with("main_checkout", "No such file or directory");

    assert_eq!(fs::read(common.join("config")).unwrap(), config_before);
    assert_eq!(fs::read(wt.join(".git")).unwrap(), gitfile_before);
    assert_eq!(host_ok(&wt, &["log", "--format=%s", "-1"]), "wt-commit\n");
    assert_eq!(
        host_ok(&repo, &["log", "--format=%s", "-1", "wt-branch"]),
        "wt-commit\n"
    );
    host_ok(&wt, &["checkout", "-q", "-b", "after-the-agent"]);
    assert!(!marker.exists(), "the planted hook ran on the host");
}

fn readonly_mode(caller: Caller) {
    let td = TestDir::new("git-ro");
    let repo = repo(&td, caller);
    let head_before = host_ok(&repo, &["rev-parse", "HEAD"]);
    let script = Script::new()
        .probe("status", "echo new > new.txt && git status --porcelain")
        .probe("log", "git log --format=%s")
        .probe("add", "git add new.txt")
        .probe("commit", "git commit -q --allow-empty -m nope")
        .probe("hook", "echo x > .git/hooks/pre-commit")
        .probe("worktree_write", "echo edit >> README && cat README")
        .build();
    let out = run_in(
        caller,
        &["--git", "readonly", "--rw", repo.to_str().unwrap()],
        script,
    );
    let p = probes(&out);
    p.ok("status", "?? new.txt");
    p.ok("log", "base");
    p.fails_with("add", "Read-only file system");
    p.fails_with("commit", "Read-only file system");
    p.fails_with("hook", "Read-only file system");
    p.ok("worktree_write", "hello edit");
    assert_eq!(host_ok(&repo, &["rev-parse", "HEAD"]), head_before);
    assert!(
        !repo.join(".git/commondir").exists(),
        "readonly creates nothing"
    );
}

/// `--overlay`: writes are kept in memory; the protected paths stay
/// read-only there too, so neither the run nor `--apply` carries a hook to
/// the host. A commit inside the overlay still works.
#[test]
fn overlay_keeps_hooks_read_only_and_apply_carries_none() {
    require_root();
    let td = TestDir::new("git-ovl");
    let repo = repo(&td, Caller::Root);
    let marker = td.path().join("HOOK-RAN");
    let diff = td.path().join("diff.json");
    let script = Script::new()
        .probe(
            "commit",
            "git commit -q --allow-empty -m in-overlay && git log --format=%s -1",
        )
        .probe("hook", &plant_hook(&marker))
        .probe("commondir", "echo ../evil > .git/commondir")
        .build();
    let out = run_in(
        Caller::Root,
        &[
            "--overlay",
            repo.to_str().unwrap(),
            "--cwd",
            repo.to_str().unwrap(),
            "--diff",
            diff.to_str().unwrap(),
            "--apply",
        ],
        script,
    );
    let p = probes(&out);
    p.ok("commit", "in-overlay");
    p.fails_with("hook", "Read-only file system");
    p.fails_with("commondir", "Read-only file system");
    let changes = fs::read_to_string(&diff).unwrap();
    assert!(!changes.contains("hooks/"), "{changes}");
    assert!(!changes.contains(".git/config\""), "{changes}");
    assert!(!repo.join(".git/hooks/post-checkout").exists());
    host_ok(&repo, &["checkout", "-q", "-b", "after-the-agent"]);
    assert!(!marker.exists(), "the planted hook ran on the host");
}

/// Layouts protection cannot vouch for are refused before anything runs.
#[test]
fn unprotectable_layouts_are_refused_with_one_line() {
    require_root();
    let td = TestDir::new("git-refuse");
    let repo = repo(&td, Caller::Root);
    // `.git` as a symlink to the real git directory.
    let linked = PathBuf::from(td.mkdir("linked"));
    std::os::unix::fs::symlink(repo.join(".git"), linked.join(".git")).unwrap();
    let out = run(
        Caller::Root,
        &["--rw", linked.to_str().unwrap(), "--", "true"],
    );
    let line = assert_refused(&out);
    assert!(line.contains("is a symlink"), "{line}");
    // A linked worktree whose back-pointer names another checkout.
    let admin = repo.join(".git/worktrees/outside");
    fs::write(admin.join("gitdir"), "/elsewhere/.git\n").unwrap();
    let wt = td.path().join("outside");
    let out = run(Caller::Root, &["--rw", wt.to_str().unwrap(), "--", "true"]);
    let line = assert_refused(&out);
    assert!(line.contains("not a valid linked worktree"), "{line}");
    // `--git off` runs both, unprotected.
    let out = run(
        Caller::Root,
        &["--git", "off", "--rw", wt.to_str().unwrap(), "--", "true"],
    );
    assert_code(&out, 0);
    let out = run(Caller::Root, &["--git", "bogus", "--", "true"]);
    let line = assert_refused(&out);
    assert!(line.contains("protect, readonly or off"), "{line}");
}

/// The policy file's `git` key is the option.
#[test]
fn policy_file_git_key() {
    require_root();
    let td = TestDir::new("git-policy");
    let repo = repo(&td, Caller::Root);
    let policy = td.write(
        "policy.toml",
        format!("rw = [\"{}\"]\ngit = \"readonly\"\n", repo.display()).as_bytes(),
    );
    let out = run_in(
        Caller::Root,
        &["--policy", &policy],
        Script::new()
            .probe("commit", "git commit -q --allow-empty -m nope")
            .build(),
    );
    probes(&out).fails_with("commit", "Read-only file system");
    let bad = td.write("bad.toml", b"git = \"sometimes\"\n");
    let out = run(Caller::Root, &["--policy", &bad, "--", "true"]);
    let line = assert_refused(&out);
    assert!(line.contains("protect, readonly or off"), "{line}");
}
