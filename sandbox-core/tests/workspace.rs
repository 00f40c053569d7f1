//! The workspace diff against the real kernel: an overlay mounted exactly as
//! the sandbox mounts it (tmpfs upper, `userxattr`, so no redirect_dir and no
//! metacopy), changed with ordinary tools, its upper copied out with `cp -a`
//! (whiteouts and xattrs kept) and scanned; then applied, as root and as the
//! unprivileged `stockade-test` user.

mod common;

use std::ffi::CString;
use std::fs;
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{symlink, FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use common::{in_test_user_run, require_root, run_as_test_user, text, TEST_USER};
use stockade::workspace::{ApplyReport, Change, ChangeKind, WorkspaceDiff};

/// Where the unprivileged review finds the [`Run`] it reviews.
const BASE: &str = "STOCKADE_WS_BASE";

/// What the agent does in the workspace.
const AGENT: &str = r#"
set -e
echo new >> edit.txt
rm del.txt
chmod 755 mode.sh
touch touched.txt
: >> opened.txt
mv mvdir moved
rm -rf rmdir
rm -rf opq && mkdir opq && echo 1 > opq/o1
ln -s edit.txt newlink
ln -s /etc/passwd evil
ln -sfn keep.txt link_old
mkfifo fifo
mkdir -p newdir/deep && echo hi > newdir/deep/f
mv mvfile.txt renamed.txt
mkdir rodir && echo r > rodir/f && chmod 555 rodir
echo secret > locked && chmod 000 locked
"#;

/// The changes the scan must find, one line each.
const EXPECTED: &[&str] = &[
    "deleted file del.txt",
    "modified file edit.txt content",
    "created symlink evil -> /etc/passwd escapes",
    "created other fifo",
    "modified symlink link_old content -> keep.txt",
    "created file locked",
    "modified file mode.sh mode",
    "renamed(from mvdir) dir moved",
    "deleted file mvfile.txt",
    "created dir newdir",
    "created dir newdir/deep",
    "created file newdir/deep/f",
    "created symlink newlink -> edit.txt",
    "deleted file opq/o2",
    "created file renamed.txt",
    "deleted dir rmdir",
    "created dir rodir",
    "created file rodir/f",
];

/// `base/{lower, upper, merged}`: the host directory, and copies of the
/// overlay's upper and merged view after the agent ran.
struct Run {
    base: PathBuf,
}

impl Run {
    fn new(tag: &str) -> Self {
        require_root();
        let base = PathBuf::from(format!("/var/tmp/stockade-ws-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&base);
        let lower = base.join("lower");
        common::write_tree(
            &lower,
            &[
                ("keep.txt", "keep"),
                ("edit.txt", "old\n"),
                ("del.txt", "del"),
                ("mode.sh", "echo"),
                ("touched.txt", "t"),
                ("opened.txt", "o"),
                ("mvdir/a", "a"),
                ("mvdir/sub/b", "b"),
                ("rmdir/x", "x"),
                ("opq/o1", "1\n"),
                ("opq/o2", "2"),
                ("mvfile.txt", "mv"),
            ],
        );
        symlink("edit.txt", lower.join("link_old")).unwrap();
        fs::write(base.join("agent.sh"), AGENT).unwrap();
        let script = format!(
            r#"set -e
cd {base}
mkdir stage mnt
mount -t tmpfs -o size=16m,mode=0755 tmpfs stage
mkdir stage/upper stage/work
chmod --reference=lower stage/upper
mount -t overlay overlay -o lowerdir={base}/lower,upperdir={base}/stage/upper,workdir={base}/stage/work,userxattr mnt
(cd mnt && sh ../agent.sh)
cp -a stage/upper upper
cp -a mnt merged
"#,
            base = base.display()
        );
        let out = Command::new("unshare")
            .args(["--mount", "--propagation", "private", "sh", "-c", &script])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}{}",
            text(&out.stdout),
            text(&out.stderr)
        );
        Run { base }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.base.join(name)
    }

    /// A fresh copy of the host directory to apply to.
    fn target(&self, name: &str) -> PathBuf {
        let t = self.path(name);
        let st = Command::new("cp")
            .arg("-a")
            .args([self.path("lower"), t.clone()])
            .status()
            .unwrap();
        assert!(st.success());
        t
    }
}

impl Drop for Run {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.base);
    }
}

/// The diff of the copied upper in `base` over `base/lower`.
fn scan(base: &Path) -> WorkspaceDiff {
    let upper: OwnedFd = fs::File::open(base.join("upper")).unwrap().into();
    WorkspaceDiff::scan(Arc::new(upper), &base.join("lower"), Path::new("/work")).unwrap()
}

/// A change as one line, as in [`EXPECTED`]: the kind and file kind by
/// their variant names, then the path and whichever details are set.
fn line(c: &Change) -> String {
    let kind = match &c.kind {
        ChangeKind::Renamed { from } => format!("renamed(from {})", from.display()),
        other => format!("{other:?}").to_lowercase(),
    };
    let file_kind = format!("{:?}", c.file_kind).to_lowercase();
    let mut s = format!("{kind} {file_kind} {}", c.path.display());
    for (set, word) in [(c.content_changed, " content"), (c.mode_changed, " mode")] {
        if set {
            s.push_str(word);
        }
    }
    if let Some(t) = &c.link_target {
        s.push_str(&format!(" -> {}", t.display()));
    }
    if c.escapes {
        s.push_str(" escapes");
    }
    s
}

/// The changes of [`AGENT`] that are listed but never applied, and why.
const NEVER_APPLIED: [(&str, &str); 2] = [
    ("evil", "the symlink target leaves the tree"),
    (
        "fifo",
        "special files (FIFOs, sockets, devices) are not applied",
    ),
];

/// `report` skipped exactly `want` (path, reason), in that order.
#[track_caller]
fn assert_skipped(report: &ApplyReport, want: &[(&str, &str)]) {
    let want: Vec<(PathBuf, String)> = want
        .iter()
        .map(|&(path, why)| (path.into(), why.into()))
        .collect();
    assert_eq!(report.skipped, want);
}

/// Every entry under `root` but the paths in `skip`, sorted: its path, type,
/// mode and link target (as `find -printf` gives them), and a file's content.
fn listing(root: &Path, skip: &[&str]) -> Vec<String> {
    let out = Command::new("find")
        .arg(root)
        .args(["-mindepth", "1", "-printf", "%P %y %m %l\n"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let mut entries: Vec<String> = text(&out.stdout)
        .lines()
        .map(str::trim_end)
        .filter(|l| !skip.iter().any(|s| l.split(' ').next() == Some(s)))
        .map(|l| match l.split_once(" f ") {
            Some((path, _)) => match fs::read(root.join(path)) {
                Ok(b) => format!("{l} {:?}", String::from_utf8_lossy(&b)),
                Err(e) => format!("{l} ({e})"),
            },
            None => l.to_string(),
        })
        .collect();
    entries.sort();
    entries
}

fn has_xattr(path: &Path, name: &str) -> bool {
    let p = CString::new(path.as_os_str().as_bytes()).unwrap();
    let n = CString::new(name).unwrap();
    let mut buf = [0u8; 64];
    // SAFETY: NUL-terminated strings and a buffer writable for its length.
    unsafe { libc::lgetxattr(p.as_ptr(), n.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) > 0 }
}

fn sha(path: &Path) -> String {
    let out = Command::new("sha256sum").arg(path).output().unwrap();
    assert!(out.status.success());
    text(&out.stdout)
}

#[test]
fn the_kernels_overlay_upper_scans_to_the_expected_changes_and_applies_to_the_merged_view() {
    let run = Run::new("kernel");
    // The copy kept what the kernel wrote: a 0:0 whiteout and the opaque mark.
    let wh = fs::symlink_metadata(run.path("upper/del.txt")).unwrap();
    assert!(wh.file_type().is_char_device() && wh.rdev() == 0, "{wh:?}");
    assert!(has_xattr(&run.path("upper/opq"), "user.overlay.opaque"));
    // The copy-ups that changed nothing are there, yet must not be listed.
    assert!(run.path("upper/touched.txt").exists() && run.path("upper/opened.txt").exists());

    let diff = scan(&run.base);
    let lines: Vec<String> = diff.changes.iter().map(line).collect();
    assert_eq!(lines, EXPECTED);
    let rodir = diff
        .changes
        .iter()
        .find(|c| c.path == Path::new("rodir"))
        .unwrap();
    assert_eq!(rodir.mode, Some(0o555));
    assert_eq!(diff.read(Path::new("edit.txt")).unwrap(), b"old\nnew\n");
    // What the CLI will print.
    let json = serde_json::to_value(&diff.changes[7]).unwrap();
    assert_eq!(json["kind"], "renamed");
    assert_eq!(json["from"], "mvdir");
    assert_eq!(json["path"], "moved");
    assert_eq!(json["file_kind"], "dir");

    let t = run.target("applied");
    let report = diff.apply_to(&t, |_| true).unwrap();
    assert_skipped(&report, &NEVER_APPLIED);
    assert_eq!(report.applied.len(), EXPECTED.len() - 2);
    assert_eq!(
        listing(&t, &[]),
        listing(&run.path("merged"), &["evil", "fifo"])
    );
    // The host directory itself is untouched by apply_to.
    assert_eq!(fs::read(run.path("lower/edit.txt")).unwrap(), b"old\n");
}

/// The same review done by an unprivileged user: the scan reads what it
/// can, an unreadable file is skipped with the reason, a read-only created
/// directory still gets its content, and a symlink the user planted in their
/// own target (pointing at a directory they could write) is not followed.
#[test]
fn an_unprivileged_reviewer_applies_the_same_way() {
    let run = Run::new("user");
    for d in ["upper", "merged"] {
        chown(&run.path(d));
    }
    for t in ["user-target", "user-attacked"] {
        run.target(t);
        chown(&run.path(t));
    }
    fs::create_dir(run.path("outside")).unwrap();
    fs::write(run.path("outside/victim"), "victim").unwrap();
    chown(&run.path("outside"));
    run_as_test_user(
        "review_as_the_current_user",
        &[(BASE, run.base.as_os_str())],
        "unprivileged review ok",
    );
}

fn chown(path: &Path) {
    let st = Command::new("chown")
        .args(["-R", &format!("{TEST_USER}:{TEST_USER}")])
        .arg(path)
        .status()
        .unwrap();
    assert!(st.success());
}

/// Body of the test above; does nothing unless run by it.
#[test]
#[ignore]
fn review_as_the_current_user() {
    if !in_test_user_run() {
        return;
    }
    let base = PathBuf::from(std::env::var_os(BASE).unwrap());
    let diff = scan(&base);
    let lines: Vec<String> = diff.changes.iter().map(line).collect();
    assert_eq!(lines, EXPECTED);

    let t = base.join("user-target");
    let report = diff.apply_to(&t, |_| true).unwrap();
    assert_skipped(
        &report,
        &[
            NEVER_APPLIED[0],
            NEVER_APPLIED[1],
            (
                "locked",
                "read the new content in the sandbox: Permission denied (os error 13)",
            ),
        ],
    );
    assert_eq!(
        listing(&t, &[]),
        listing(&base.join("merged"), &["evil", "fifo", "locked"])
    );
    assert_eq!(
        fs::symlink_metadata(t.join("rodir")).unwrap().mode() & 0o7777,
        0o555
    );

    // The attack: links planted where the diff writes, to a directory this
    // user can write. Positive control: the user can write there directly.
    let outside = base.join("outside");
    fs::write(outside.join("probe"), "writable").unwrap();
    fs::remove_file(outside.join("probe")).unwrap();
    let victim = sha(&outside.join("victim"));
    let a = base.join("user-attacked");
    symlink(&outside, a.join("newdir")).unwrap();
    fs::remove_file(a.join("edit.txt")).unwrap();
    symlink(outside.join("victim"), a.join("edit.txt")).unwrap();
    let report = diff
        .apply_to(&a, |c| {
            c.path.starts_with("newdir") || c.path == Path::new("edit.txt")
        })
        .unwrap();
    let in_the_way =
        "open the parent directory: a symlink is in the way and is not followed (ELOOP)";
    assert_skipped(
        &report,
        &[
            ("edit.txt", "the target is now a symlink"),
            ("newdir", "the target is now a symlink"),
            ("newdir/deep", in_the_way),
            ("newdir/deep/f", in_the_way),
        ],
    );
    assert!(report.applied.is_empty());
    assert_eq!(sha(&outside.join("victim")), victim);
    assert_eq!(fs::read_dir(&outside).unwrap().count(), 1);
    println!("unprivileged review ok");
}
