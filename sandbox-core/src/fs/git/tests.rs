//! The plan for repositories laid out by hand in scratch directories (no
//! git, no privileges): which paths are pinned, which are added, which
//! layouts are refused.

use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use super::*;

/// A scratch directory, removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new() -> Self {
        static N: AtomicU64 = AtomicU64::new(0);
        let dir = std::env::temp_dir().join(format!(
            "stockade-git-unit-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        Scratch(fs::canonicalize(&dir).unwrap())
    }
    fn path(&self, rel: &str) -> PathBuf {
        self.0.join(rel)
    }
    fn file(&self, rel: &str, text: &str) -> PathBuf {
        let p = self.path(rel);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(&p, text).unwrap();
        p
    }
    fn dir(&self, rel: &str) -> PathBuf {
        let p = self.path(rel);
        fs::create_dir_all(&p).unwrap();
        p
    }
    /// What `git init` leaves in `rel` (a git directory).
    fn git_dir(&self, rel: &str) -> PathBuf {
        self.file(&format!("{rel}/HEAD"), "ref: refs/heads/main\n");
        self.file(&format!("{rel}/config"), "[core]\n\tbare = false\n");
        self.dir(&format!("{rel}/objects"));
        self.dir(&format!("{rel}/refs/heads"));
        self.dir(&format!("{rel}/hooks"));
        self.path(rel)
    }
    /// A linked worktree `wt` of the repository `repo`, laid out as
    /// `git worktree add ../wt` does.
    fn linked_worktree(&self, repo: &str, wt: &str) -> (PathBuf, PathBuf) {
        let common = self.git_dir(&format!("{repo}/.git"));
        let admin = self.dir(&format!("{repo}/.git/worktrees/{wt}"));
        let top = self.dir(wt);
        fs::write(admin.join("HEAD"), "ref: refs/heads/feat\n").unwrap();
        fs::write(admin.join("commondir"), "../..\n").unwrap();
        fs::write(
            admin.join("gitdir"),
            format!("{}\n", top.join(".git").display()),
        )
        .unwrap();
        fs::write(top.join(".git"), format!("gitdir: {}\n", admin.display())).unwrap();
        (top, common)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn plan_for(fs: Fs, mode: GitMode) -> Result<GitMounts, Error> {
    plan(&fs.validated().unwrap(), mode)
}

/// The pins as `(path, ro, missing)`.
fn pins(m: &GitMounts) -> Vec<(PathBuf, bool, Missing)> {
    m.pins
        .iter()
        .map(|op| match op {
            MountOp::Pin { dst, ro, missing } => (dst.clone(), *ro, missing.clone()),
            other => panic!("not a pin: {other:?}"),
        })
        .collect()
}

fn pin(p: PathBuf, ro: bool, missing: Missing) -> (PathBuf, bool, Missing) {
    (p, ro, missing)
}

fn refusal(r: Result<GitMounts, Error>) -> String {
    match r {
        Err(Error::Policy(msg)) => msg,
        other => panic!("expected a policy error, got {other:?}"),
    }
}

#[test]
fn protect_pins_the_git_dir_then_its_hooks_config_and_commondir() {
    let s = Scratch::new();
    let repo = s.dir("repo");
    s.git_dir("repo/.git");
    let got = plan_for(Fs::minimal().rw(&repo), GitMode::Protect).unwrap();
    let g = repo.join(".git");
    assert_eq!(
        pins(&got),
        vec![
            pin(g.clone(), false, Missing::Skip),
            pin(g.join("commondir"), true, Missing::File(SAME_DIR.into())),
            pin(g.join("config"), true, Missing::File(String::new())),
            pin(g.join("hooks"), true, Missing::EmptyDir),
            pin(g.join("config.worktree"), true, Missing::Skip),
            pin(g.join("modules"), true, Missing::Skip),
        ]
    );
    assert!(got.grants.is_empty());
}

#[test]
fn readonly_pins_the_whole_git_dir_and_off_adds_nothing() {
    let s = Scratch::new();
    let repo = s.dir("repo");
    s.git_dir("repo/.git");
    let ro = plan_for(Fs::minimal().rw(&repo), GitMode::ReadOnly).unwrap();
    assert_eq!(pins(&ro), vec![pin(repo.join(".git"), true, Missing::Skip)]);
    let off = plan_for(Fs::minimal().rw(&repo), GitMode::Off).unwrap();
    assert_eq!(off, GitMounts::default());
}

#[test]
fn only_writable_grants_and_only_their_root_are_looked_at() {
    let s = Scratch::new();
    s.git_dir("ro/.git");
    s.git_dir("parent/deeper/.git");
    let fs = Fs::minimal()
        .ro(s.path("ro"))
        .rw(s.path("parent"))
        .tmpfs("/scratch", 1 << 20);
    assert_eq!(
        plan_for(fs, GitMode::Protect).unwrap(),
        GitMounts::default()
    );
}

#[test]
fn a_grant_that_is_itself_a_git_dir_is_protected_without_pinning_its_root() {
    let s = Scratch::new();
    let bare = s.git_dir("bare.git");
    let got = plan_for(Fs::minimal().rw(&bare), GitMode::Protect).unwrap();
    let paths: Vec<PathBuf> = pins(&got).into_iter().map(|p| p.0).collect();
    assert!(!paths.contains(&bare), "{paths:?}");
    assert!(paths.contains(&bare.join("hooks")), "{paths:?}");
    assert!(paths.contains(&bare.join("config")), "{paths:?}");
    // Read-only mode makes the whole grant read-only.
    let ro = plan_for(Fs::minimal().rw(&bare), GitMode::ReadOnly).unwrap();
    assert_eq!(pins(&ro), vec![pin(bare, true, Missing::Skip)]);
}

#[test]
fn inside_paths_follow_the_grant_destination() {
    let s = Scratch::new();
    let repo = s.dir("repo");
    s.git_dir("repo/.git");
    let got = plan_for(Fs::minimal().rw_at(&repo, "/work"), GitMode::Protect).unwrap();
    assert_eq!(
        pins(&got)[0],
        pin("/work/.git".into(), false, Missing::Skip)
    );
    assert!(pins(&got).iter().all(|p| p.0.starts_with("/work/.git")));
}

#[test]
fn another_grant_at_the_git_dir_decides() {
    let s = Scratch::new();
    let repo = s.dir("repo");
    s.git_dir("repo/.git");
    let fs = Fs::minimal().rw(&repo).ro(repo.join(".git"));
    assert_eq!(
        plan_for(fs, GitMode::Protect).unwrap(),
        GitMounts::default()
    );
}

#[test]
fn existing_linked_worktrees_admin_dirs_are_pinned_with_their_pointers() {
    let s = Scratch::new();
    let (_, common) = s.linked_worktree("repo", "wt");
    // A broken entry (no commondir) is read-only as a whole.
    s.dir("repo/.git/worktrees/broken");
    let got = plan_for(Fs::minimal().rw(s.path("repo")), GitMode::Protect).unwrap();
    let p = pins(&got);
    let admin = common.join("worktrees/wt");
    for want in [
        pin(common.join("worktrees"), false, Missing::Skip),
        pin(admin.clone(), false, Missing::Skip),
        pin(admin.join("commondir"), true, Missing::Skip),
        pin(admin.join("gitdir"), true, Missing::Skip),
        pin(common.join("worktrees/broken"), true, Missing::Skip),
    ] {
        assert!(p.contains(&want), "{want:?} not in {p:?}");
    }
    // Parents before children.
    let at = |q: &Path| p.iter().position(|x| x.0 == q).unwrap();
    assert!(at(&common) < at(&common.join("worktrees")));
    assert!(at(&common.join("worktrees")) < at(&admin));
    assert!(at(&admin) < at(&admin.join("commondir")));
}

#[test]
fn config_worktree_is_created_only_where_git_reads_it() {
    let s = Scratch::new();
    let repo = s.dir("repo");
    s.git_dir("repo/.git");
    let missing = |fs: Fs| {
        let got = plan_for(fs, GitMode::Protect).unwrap();
        pins(&got)
            .into_iter()
            .find(|p| p.0.ends_with("config.worktree"))
            .unwrap()
            .2
    };
    assert_eq!(missing(Fs::minimal().rw(&repo)), Missing::Skip);
    s.file(
        "repo/.git/config",
        "[core]\n\trepositoryformatversion = 1\n[extensions]\n\tworktreeConfig = true\n",
    );
    assert_eq!(
        missing(Fs::minimal().rw(&repo)),
        Missing::File(String::new())
    );
}

#[test]
fn a_symlinked_dot_git_is_refused() {
    let s = Scratch::new();
    let real = s.git_dir("real.git");
    let repo = s.dir("repo");
    symlink(&real, repo.join(".git")).unwrap();
    let msg = refusal(plan_for(Fs::minimal().rw(&repo), GitMode::Protect));
    assert!(
        msg.contains("is a symlink") && msg.contains("--git off"),
        "{msg}"
    );
    // Off: nothing is looked at.
    assert!(plan_for(Fs::minimal().rw(&repo), GitMode::Off).is_ok());
}

#[test]
fn hooks_symlinked_into_a_writable_grant_are_refused_elsewhere_kept() {
    let s = Scratch::new();
    let repo = s.dir("repo");
    s.git_dir("repo/.git");
    fs::remove_dir(repo.join(".git/hooks")).unwrap();
    let shared = s.dir("shared-hooks");
    symlink(&shared, repo.join(".git/hooks")).unwrap();
    // The target is not writable inside: the symlink is pinned as it is.
    let got = plan_for(Fs::minimal().rw(&repo), GitMode::Protect).unwrap();
    assert!(pins(&got).contains(&pin(repo.join(".git/hooks"), true, Missing::EmptyDir)));
    // Granted writable too: the sandbox could write the hooks through it.
    let msg = refusal(plan_for(
        Fs::minimal().rw(&repo).rw(&shared),
        GitMode::Protect,
    ));
    assert!(msg.contains("inside the writable grant"), "{msg}");
    // A symlink into the workspace itself, or one that resolves nowhere.
    fs::remove_file(repo.join(".git/hooks")).unwrap();
    s.dir("repo/tools/hooks");
    symlink("../tools/hooks", repo.join(".git/hooks")).unwrap();
    let msg = refusal(plan_for(Fs::minimal().rw(&repo), GitMode::Protect));
    assert!(msg.contains("inside the writable grant"), "{msg}");
    fs::remove_file(repo.join(".git/hooks")).unwrap();
    symlink("../missing", repo.join(".git/hooks")).unwrap();
    let msg = refusal(plan_for(Fs::minimal().rw(&repo), GitMode::Protect));
    assert!(msg.contains("does not resolve"), "{msg}");
}

#[test]
fn a_hard_linked_config_is_refused() {
    let s = Scratch::new();
    let repo = s.dir("repo");
    s.git_dir("repo/.git");
    fs::hard_link(repo.join(".git/config"), repo.join("innocent.txt")).unwrap();
    let msg = refusal(plan_for(Fs::minimal().rw(&repo), GitMode::Protect));
    assert!(msg.contains("hard links"), "{msg}");
}

#[test]
fn a_commondir_naming_another_directory_is_refused_its_own_is_kept() {
    let s = Scratch::new();
    let repo = s.dir("repo");
    s.git_dir("repo/.git");
    s.file("repo/.git/commondir", "../elsewhere\n");
    let msg = refusal(plan_for(Fs::minimal().rw(&repo), GitMode::Protect));
    assert!(msg.contains("sends git to another directory"), "{msg}");
    // The file protection leaves behind: accepted on the next run.
    s.file("repo/.git/commondir", SAME_DIR);
    assert!(plan_for(Fs::minimal().rw(&repo), GitMode::Protect).is_ok());
}

#[test]
fn a_fifo_where_git_keeps_config_is_refused() {
    let s = Scratch::new();
    let repo = s.dir("repo");
    s.git_dir("repo/.git");
    fs::remove_file(repo.join(".git/config")).unwrap();
    nix::unistd::mkfifo(&repo.join(".git/config"), nix::sys::stat::Mode::S_IRWXU).unwrap();
    let msg = refusal(plan_for(Fs::minimal().rw(&repo), GitMode::Protect));
    assert!(msg.contains("neither a file nor a directory"), "{msg}");
}

#[test]
fn a_linked_worktree_granted_alone_gets_its_common_dir_granted_and_protected() {
    let s = Scratch::new();
    let (wt, common) = s.linked_worktree("repo", "wt");
    let got = plan_for(Fs::minimal().rw(&wt), GitMode::Protect).unwrap();
    assert_eq!(
        got.grants,
        vec![Mount::ReadWrite {
            src: common.clone(),
            dst: common.clone()
        }]
    );
    let p = pins(&got);
    for want in [
        pin(wt.join(".git"), true, Missing::Skip),
        pin(common.join("hooks"), true, Missing::EmptyDir),
        pin(common.join("config"), true, Missing::File(String::new())),
        pin(
            common.join("commondir"),
            true,
            Missing::File(SAME_DIR.into()),
        ),
        pin(common.join("worktrees/wt/commondir"), true, Missing::Skip),
        pin(common.join("worktrees/wt/gitdir"), true, Missing::Skip),
    ] {
        assert!(p.contains(&want), "{want:?} not in {p:?}");
    }
    // The granted common dir is a mount already: not pinned again.
    assert!(!p.iter().any(|x| x.0 == common), "{p:?}");
    // Read-only: the common dir is granted read-only, the `.git` file pinned.
    let ro = plan_for(Fs::minimal().rw(&wt), GitMode::ReadOnly).unwrap();
    assert_eq!(
        ro.grants,
        vec![Mount::ReadOnly {
            src: common.clone(),
            dst: common.clone()
        }]
    );
    assert_eq!(pins(&ro), vec![pin(wt.join(".git"), true, Missing::Skip)]);
    // An overlaid worktree commits into an overlay of the common dir.
    let ovl = plan_for(Fs::minimal().overlay(&wt), GitMode::Protect).unwrap();
    assert!(matches!(&ovl.grants[..], [Mount::Overlay { src, .. }] if *src == common));
}

#[test]
fn a_linked_worktree_whose_common_dir_is_granted_already_adds_no_grant() {
    let s = Scratch::new();
    let (wt, common) = s.linked_worktree("repo", "wt");
    let repo = s.path("repo");
    let got = plan_for(Fs::minimal().rw(&repo).rw(&wt), GitMode::Protect).unwrap();
    assert!(got.grants.is_empty());
    // Both grants lead to the same pins, each kept once.
    let p = pins(&got);
    let hooks = p.iter().filter(|x| x.0 == common.join("hooks")).count();
    assert_eq!(hooks, 1, "{p:?}");
    // Granted read-only by the caller: left alone.
    let got = plan_for(Fs::minimal().ro(&repo).rw(&wt), GitMode::Protect).unwrap();
    assert!(got.grants.is_empty());
    assert_eq!(pins(&got), vec![pin(wt.join(".git"), true, Missing::Skip)]);
}

#[test]
fn a_linked_worktree_that_does_not_check_out_is_refused() {
    let s = Scratch::new();
    let (wt, common) = s.linked_worktree("repo", "wt");
    let admin = common.join("worktrees/wt");
    // The back-pointer names another worktree.
    fs::write(
        admin.join("gitdir"),
        format!("{}\n", s.dir("other").join(".git").display()),
    )
    .unwrap();
    let msg = refusal(plan_for(Fs::minimal().rw(&wt), GitMode::Protect));
    assert!(
        msg.contains("not a valid linked worktree") && msg.contains("gitdir"),
        "{msg}"
    );
    fs::write(
        admin.join("gitdir"),
        format!("{}\n", wt.join(".git").display()),
    )
    .unwrap();
    assert!(plan_for(Fs::minimal().rw(&wt), GitMode::Protect).is_ok());

    // The `.git` file names a git dir outside <common>/worktrees: a
    // look-alike the sandbox could have built.
    let fake = s.dir("fake/worktrees/wt");
    fs::write(fake.join("commondir"), format!("{}\n", common.display())).unwrap();
    fs::write(
        fake.join("gitdir"),
        format!("{}\n", wt.join(".git").display()),
    )
    .unwrap();
    fs::write(wt.join(".git"), format!("gitdir: {}\n", fake.display())).unwrap();
    let msg = refusal(plan_for(Fs::minimal().rw(&wt), GitMode::Protect));
    assert!(msg.contains("is not in"), "{msg}");

    // A common dir that is not a git directory.
    fs::write(fake.join("commondir"), "../..\n").unwrap();
    let msg = refusal(plan_for(Fs::minimal().rw(&wt), GitMode::Protect));
    assert!(msg.contains("is not a git directory"), "{msg}");

    // A `.git` file naming nothing, or not a `gitdir:` line at all.
    fs::write(wt.join(".git"), "gitdir: /nonexistent/wt\n").unwrap();
    let msg = refusal(plan_for(Fs::minimal().rw(&wt), GitMode::Protect));
    assert!(msg.contains("git worktree repair"), "{msg}");
    fs::write(wt.join(".git"), "ref: nothing\n").unwrap();
    let msg = refusal(plan_for(Fs::minimal().rw(&wt), GitMode::Protect));
    assert!(msg.contains("not a `gitdir: <path>` file"), "{msg}");
}

#[test]
fn a_git_file_without_commondir_is_pinned_and_nothing_granted() {
    let s = Scratch::new();
    // A submodule's checkout: `.git` names <super>/.git/modules/sub.
    s.git_dir("super/.git");
    let module = s.git_dir("super/.git/modules/sub");
    let sub = s.dir("super/sub");
    fs::write(sub.join(".git"), "gitdir: ../.git/modules/sub\n").unwrap();
    let got = plan_for(Fs::minimal().rw(&sub), GitMode::Protect).unwrap();
    assert!(got.grants.is_empty());
    assert_eq!(pins(&got), vec![pin(sub.join(".git"), true, Missing::Skip)]);
    // Its super-project granted: the modules' git dirs are read-only.
    let got = plan_for(Fs::minimal().rw(s.path("super")), GitMode::Protect).unwrap();
    let modules = module.parent().unwrap().to_path_buf();
    assert!(pins(&got).contains(&pin(modules, true, Missing::Skip)));
}

#[test]
fn a_relative_git_file_resolves_inside_from_the_grant_destination() {
    let s = Scratch::new();
    let (wt, common) = s.linked_worktree("repo", "wt");
    fs::write(wt.join(".git"), "gitdir: ../repo/.git/worktrees/wt\n").unwrap();
    fs::write(common.join("worktrees/wt/gitdir"), "../../../../wt/.git\n").unwrap();
    let got = plan_for(Fs::minimal().rw(&wt), GitMode::Protect).unwrap();
    assert_eq!(
        got.grants,
        vec![Mount::ReadWrite {
            src: common.clone(),
            dst: common.clone()
        }]
    );
    // Elsewhere inside: the common dir appears where the relative path leads.
    let got = plan_for(Fs::minimal().rw_at(&wt, "/w/wt"), GitMode::Protect).unwrap();
    assert_eq!(
        got.grants,
        vec![Mount::ReadWrite {
            src: common,
            dst: "/w/repo/.git".into()
        }]
    );
}

#[test]
fn git_mode_parses_and_prints() {
    for m in [GitMode::Protect, GitMode::ReadOnly, GitMode::Off] {
        assert_eq!(m.to_string().parse::<GitMode>().unwrap(), m);
    }
    assert_eq!(GitMode::default(), GitMode::Protect);
    let err = "ro".parse::<GitMode>().unwrap_err().to_string();
    assert!(err.contains("protect, readonly or off"), "{err}");
}

#[test]
fn config_includes_in_the_git_dir_are_kept_in_the_workspace_refused() {
    let s = Scratch::new();
    let repo = s.dir("repo");
    s.git_dir("repo/.git");
    // A file next to the config, existing or not: pinned like the config.
    s.file(
        "repo/.git/config",
        "[include]\n\tpath = config.local\n[includeIf \"onbranch:main\"]\n\tpath = later.cfg\n",
    );
    s.file("repo/.git/config.local", "[user]\n\tname = me\n");
    let got = plan_for(Fs::minimal().rw(&repo), GitMode::Protect).unwrap();
    let p = pins(&got);
    let g = repo.join(".git");
    assert!(
        p.contains(&pin(
            g.join("config.local"),
            true,
            Missing::File(String::new())
        )),
        "{p:?}"
    );
    assert!(
        p.contains(&pin(
            g.join("later.cfg"),
            true,
            Missing::File(String::new())
        )),
        "{p:?}"
    );
    // Read-only mode: the whole directory is read-only already.
    assert!(plan_for(Fs::minimal().rw(&repo), GitMode::ReadOnly).is_ok());

    // A file in the work tree (a shared project config): refused in both modes.
    s.file(
        "repo/.git/config",
        "[include]\n\tpath = ../project.gitconfig\n",
    );
    for mode in [GitMode::Protect, GitMode::ReadOnly] {
        let msg = refusal(plan_for(Fs::minimal().rw(&repo), mode));
        assert!(
            msg.contains("includes") && msg.contains("project.gitconfig"),
            "{msg}"
        );
    }
    // Through a file outside every writable grant: still found.
    let shared = s.file("shared.cfg", "[include]\n\tpath = repo/evil.cfg\n");
    s.file(
        "repo/.git/config",
        &format!("[include]\n\tpath = {}\n", shared.display()),
    );
    let msg = refusal(plan_for(Fs::minimal().rw(&repo), GitMode::Protect));
    assert!(msg.contains("evil.cfg"), "{msg}");
    // Not granted writable: nothing to refuse.
    assert!(plan_for(Fs::minimal().ro(&repo), GitMode::Protect).is_ok());
}

#[test]
fn a_dot_git_dir_that_is_no_repository_is_left_alone() {
    let s = Scratch::new();
    let dir = s.dir("dir");
    s.dir("dir/.git/objects");
    assert_eq!(
        plan_for(Fs::minimal().rw(&dir), GitMode::Protect).unwrap(),
        GitMounts::default()
    );
}
