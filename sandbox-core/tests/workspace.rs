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

use common::{require_root, text};
use stockade::workspace::{ChangeKind, FileKind, WorkspaceDiff};

const TEST_USER: &str = "stockade-test";

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

    fn scan(&self) -> WorkspaceDiff {
        WorkspaceDiff::scan(
            upper_fd(&self.path("upper")),
            &self.path("lower"),
            Path::new("/work"),
        )
        .unwrap()
    }

    /// A fresh copy of the host directory to apply to.
    fn target(&self, name: &str) -> PathBuf {
        let t = self.path(name);
        cp_a(&self.path("lower"), &t);
        t
    }
}

impl Drop for Run {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.base);
    }
}

fn upper_fd(path: &Path) -> Arc<OwnedFd> {
    Arc::new(fs::File::open(path).unwrap().into())
}

fn cp_a(from: &Path, to: &Path) {
    let st = Command::new("cp")
        .arg("-a")
        .arg(from)
        .arg(to)
        .status()
        .unwrap();
    assert!(st.success());
}

fn line(c: &stockade::workspace::Change) -> String {
    let kind = match &c.kind {
        ChangeKind::Created => "created".to_string(),
        ChangeKind::Modified => "modified".to_string(),
        ChangeKind::Deleted => "deleted".to_string(),
        ChangeKind::Renamed { from } => format!("renamed(from {})", from.display()),
    };
    let fk = match c.file_kind {
        FileKind::File => "file",
        FileKind::Dir => "dir",
        FileKind::Symlink => "symlink",
        FileKind::Other => "other",
    };
    let mut s = format!("{kind} {fk} {}", c.path.display());
    if c.content_changed {
        s.push_str(" content");
    }
    if c.mode_changed {
        s.push_str(" mode");
    }
    if let Some(t) = &c.link_target {
        s.push_str(&format!(" -> {}", t.display()));
    }
    if c.escapes {
        s.push_str(" escapes");
    }
    s
}

/// Every entry under `root` with kind, mode and content or link target,
/// leaving out the names in `skip`.
fn listing(root: &Path, skip: &[&str]) -> Vec<String> {
    fn walk(root: &Path, rel: &Path, skip: &[&str], out: &mut Vec<String>) {
        let mut names: Vec<_> = fs::read_dir(root.join(rel))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        names.sort();
        for name in names {
            let r = rel.join(&name);
            if skip.iter().any(|s| Path::new(s) == r) {
                continue;
            }
            let p = root.join(&r);
            let md = fs::symlink_metadata(&p).unwrap();
            let mode = md.mode() & 0o7777;
            if md.is_dir() {
                out.push(format!("{} dir {mode:o}", r.display()));
                walk(root, &r, skip, out);
            } else if md.file_type().is_symlink() {
                out.push(format!(
                    "{} -> {}",
                    r.display(),
                    fs::read_link(&p).unwrap().display()
                ));
            } else if md.is_file() {
                let body = match fs::read(&p) {
                    Ok(b) => format!("{:?}", String::from_utf8_lossy(&b)),
                    Err(e) => format!("({e})"),
                };
                out.push(format!("{} file {mode:o} {body}", r.display()));
            } else {
                out.push(format!("{} other", r.display()));
            }
        }
    }
    let mut out = Vec::new();
    walk(root, Path::new(""), skip, &mut out);
    out
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

    let diff = run.scan();
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
    let skipped: Vec<(String, String)> = report
        .skipped
        .iter()
        .map(|(p, w)| (p.display().to_string(), w.clone()))
        .collect();
    assert_eq!(
        skipped,
        [
            (
                "evil".to_string(),
                "the symlink target leaves the tree".to_string()
            ),
            (
                "fifo".into(),
                "special files (FIFOs, sockets, devices) are not applied".into()
            ),
        ]
    );
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
    let bin = Path::new("/tmp").join(format!("stockade-ws-test-{}", std::process::id()));
    fs::copy(std::env::current_exe().unwrap(), &bin).unwrap();
    fs::set_permissions(&bin, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let out = Command::new("/usr/sbin/runuser")
        .args(["-u", TEST_USER, "--"])
        .arg(&bin)
        .args([
            "--exact",
            "review_as_the_current_user",
            "--ignored",
            "--nocapture",
        ])
        .env("STOCKADE_WS_BASE", &run.base)
        .current_dir("/")
        .output()
        .unwrap();
    let _ = fs::remove_file(&bin);
    let all = format!("{}{}", text(&out.stdout), text(&out.stderr));
    assert!(out.status.success(), "{all}");
    assert!(all.contains("unprivileged review ok"), "{all}");
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
    let Some(base) = std::env::var_os("STOCKADE_WS_BASE") else {
        return;
    };
    // SAFETY: geteuid has no preconditions and cannot fail.
    let euid = unsafe { libc::geteuid() };
    assert_ne!(euid, 0, "must run as the unprivileged test user");
    let base = PathBuf::from(base);
    let diff = WorkspaceDiff::scan(
        upper_fd(&base.join("upper")),
        &base.join("lower"),
        Path::new("/work"),
    )
    .unwrap();
    let lines: Vec<String> = diff.changes.iter().map(line).collect();
    assert_eq!(lines, EXPECTED);

    let t = base.join("user-target");
    let report = diff.apply_to(&t, |_| true).unwrap();
    let skipped: Vec<(String, String)> = report
        .skipped
        .iter()
        .map(|(p, w)| (p.display().to_string(), w.clone()))
        .collect();
    assert_eq!(
        skipped,
        [
            (
                "evil".to_string(),
                "the symlink target leaves the tree".to_string()
            ),
            (
                "fifo".into(),
                "special files (FIFOs, sockets, devices) are not applied".into()
            ),
            (
                "locked".into(),
                "read the new content in the sandbox: Permission denied (os error 13)".into()
            ),
        ]
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
    let skipped: Vec<(String, String)> = report
        .skipped
        .iter()
        .map(|(p, w)| (p.display().to_string(), w.clone()))
        .collect();
    let in_the_way =
        "open the parent directory: a symlink is in the way and is not followed (ELOOP)";
    assert_eq!(
        skipped,
        [
            (
                "edit.txt".to_string(),
                "the target is now a symlink".to_string()
            ),
            ("newdir".into(), "the target is now a symlink".into()),
            ("newdir/deep".into(), in_the_way.into()),
            ("newdir/deep/f".into(), in_the_way.into()),
        ]
    );
    assert!(report.applied.is_empty());
    assert_eq!(sha(&outside.join("victim")), victim);
    assert_eq!(fs::read_dir(&outside).unwrap().count(), 1);
    println!("unprivileged review ok");
}
