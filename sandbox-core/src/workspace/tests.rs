//! Synthetic upper/lower pairs, built the way overlayfs writes them (whiteouts
//! are 0:0 character devices, overlay attributes are `user.overlay.*`), in
//! scratch directories under /var/tmp (ext4: user xattrs work there). Root is
//! needed for `mknod`.

use std::ffi::CString;
use std::fs;
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{symlink, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;

use nix::fcntl::{open, OFlag};
use nix::sys::stat::{mknod, Mode, SFlag};

use super::beneath::Root;
use super::diff::escapes;
use super::*;

fn require_root() {
    // SAFETY: geteuid has no preconditions and cannot fail.
    let euid = unsafe { libc::geteuid() };
    assert_eq!(euid, 0, "these tests need root (mknod)");
}

/// `lower/`, `upper/` and `outside/` under a fresh /var/tmp directory.
struct Scratch {
    base: PathBuf,
}

impl Scratch {
    fn new() -> Self {
        require_root();
        static N: AtomicU64 = AtomicU64::new(0);
        let base = PathBuf::from(format!(
            "/var/tmp/stockade-ws-unit-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = fs::remove_dir_all(&base);
        for d in ["lower", "upper", "outside"] {
            fs::create_dir_all(base.join(d)).unwrap();
        }
        Scratch { base }
    }
    fn lower(&self) -> PathBuf {
        self.base.join("lower")
    }
    fn upper(&self) -> PathBuf {
        self.base.join("upper")
    }
    fn outside(&self) -> PathBuf {
        self.base.join("outside")
    }
    fn scan(&self) -> WorkspaceDiff {
        self.try_scan().unwrap()
    }
    fn try_scan(&self) -> Result<WorkspaceDiff, WorkspaceError> {
        WorkspaceDiff::scan(upper_fd(&self.upper()), &self.lower(), Path::new("/work"))
    }
    /// A copy of the lower to apply to.
    fn target(&self, name: &str) -> PathBuf {
        let t = self.base.join(name);
        copy_tree(&self.lower(), &t);
        t
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.base);
    }
}

/// The upper as the host will get it: an `O_PATH` descriptor.
fn upper_fd(path: &Path) -> Arc<OwnedFd> {
    let fd = open(
        path,
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .unwrap();
    Arc::new(fd)
}

fn write(path: PathBuf, content: &str, mode: u32) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(&path, content).unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(mode)).unwrap();
}

fn mkdir(path: PathBuf, mode: u32) {
    fs::create_dir_all(&path).unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(mode)).unwrap();
}

fn whiteout(path: PathBuf) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    mknod(&path, SFlag::S_IFCHR, Mode::empty(), 0).unwrap();
}

fn set_xattr(path: &Path, name: &str, value: &[u8]) {
    let p = CString::new(path.as_os_str().as_bytes()).unwrap();
    let n = CString::new(name).unwrap();
    // SAFETY: both strings are NUL-terminated and `value` is readable for
    // its length.
    let r = unsafe {
        libc::lsetxattr(
            p.as_ptr(),
            n.as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            0,
        )
    };
    assert_eq!(
        r,
        0,
        "setxattr {name} on {}: {}",
        path.display(),
        std::io::Error::last_os_error()
    );
}

fn opaque(path: PathBuf) {
    set_xattr(&path, "user.overlay.opaque", b"y");
}

fn mode_of(path: &Path) -> u32 {
    fs::symlink_metadata(path).unwrap().mode() & 0o7777
}

/// `cp -a`, keeping special files and xattrs.
fn copy_tree(from: &Path, to: &Path) {
    let st = std::process::Command::new("cp")
        .arg("-a")
        .arg(from)
        .arg(to)
        .status()
        .unwrap();
    assert!(st.success());
}

fn hash(path: &Path) -> String {
    let out = std::process::Command::new("sha256sum")
        .arg(path)
        .output()
        .unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout).unwrap()
}

/// A change as one line: `<kind> <file kind> <path>[ from X][ content][ mode][ -> T][ escapes]`.
fn line(c: &Change) -> String {
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

fn lines(d: &WorkspaceDiff) -> Vec<String> {
    d.changes.iter().map(line).collect()
}

/// Every entry under `root`: path, kind, mode, and content or link target.
fn listing(root: &Path) -> Vec<String> {
    fn walk(root: &Path, rel: &Path, out: &mut Vec<String>) {
        let mut names: Vec<_> = fs::read_dir(root.join(rel))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        names.sort();
        for name in names {
            let r = rel.join(&name);
            let p = root.join(&r);
            let md = fs::symlink_metadata(&p).unwrap();
            let ft = md.file_type();
            if ft.is_dir() {
                out.push(format!("{} dir {:o}", r.display(), md.mode() & 0o7777));
                walk(root, &r, out);
            } else if ft.is_symlink() {
                out.push(format!(
                    "{} -> {}",
                    r.display(),
                    fs::read_link(&p).unwrap().display()
                ));
            } else if ft.is_file() {
                let text = String::from_utf8_lossy(&fs::read(&p).unwrap()).into_owned();
                out.push(format!(
                    "{} file {:o} {text:?}",
                    r.display(),
                    md.mode() & 0o7777
                ));
            } else {
                out.push(format!("{} other", r.display()));
            }
        }
    }
    let mut out = Vec::new();
    walk(root, Path::new(""), &mut out);
    out
}

#[test]
fn user_xattrs_work_on_the_scratch_filesystem() {
    let s = Scratch::new();
    let d = s.upper().join("d");
    mkdir(d.clone(), 0o755);
    opaque(d.clone());
    let p = CString::new(d.as_os_str().as_bytes()).unwrap();
    let mut buf = [0u8; 8];
    // SAFETY: NUL-terminated strings, `buf` writable for its length.
    let n = unsafe {
        libc::lgetxattr(
            p.as_ptr(),
            c"user.overlay.opaque".as_ptr(),
            buf.as_mut_ptr().cast(),
            buf.len(),
        )
    };
    assert_eq!(n, 1);
    assert_eq!(buf[0], b'y');
}

#[test]
fn created_modified_and_deleted_entries_are_listed_untouched_ones_are_not() {
    let s = Scratch::new();
    let (l, u) = (s.lower(), s.upper());
    write(l.join("edit.txt"), "old", 0o644);
    write(l.join("keep.txt"), "keep", 0o644);
    write(l.join("gone.txt"), "bye", 0o644);
    write(l.join("d/x"), "1", 0o644);
    write(l.join("d/y"), "2", 0o644);
    write(u.join("edit.txt"), "new!", 0o644);
    write(u.join("new.txt"), "hello", 0o640);
    whiteout(u.join("gone.txt"));
    // A copied-up parent whose content did not change, with one new file.
    mkdir(u.join("d"), 0o755);
    write(u.join("d/z"), "3", 0o644);
    write(u.join("fresh/deep/f"), "f", 0o600);
    mkdir(u.join("fresh"), 0o750);
    let diff = s.scan();
    assert_eq!(
        lines(&diff),
        [
            "created file d/z",
            "modified file edit.txt content",
            "created dir fresh",
            "created dir fresh/deep",
            "created file fresh/deep/f",
            "deleted file gone.txt",
            "created file new.txt",
        ]
    );
    let new = diff
        .changes
        .iter()
        .find(|c| c.path == Path::new("new.txt"))
        .unwrap();
    assert_eq!((new.mode, new.size), (Some(0o640), Some(5)));
    let fresh = diff
        .changes
        .iter()
        .find(|c| c.path == Path::new("fresh"))
        .unwrap();
    assert_eq!(fresh.mode, Some(0o750));
    let gone = diff
        .changes
        .iter()
        .find(|c| c.path == Path::new("gone.txt"))
        .unwrap();
    assert_eq!((gone.mode, gone.size), (None, None));
    assert_eq!(diff.read(Path::new("edit.txt")).unwrap(), b"new!");
    assert_eq!(diff.read(Path::new("fresh/deep/f")).unwrap(), b"f");
}

#[test]
fn copy_ups_that_changed_nothing_are_not_listed() {
    let s = Scratch::new();
    let (l, u) = (s.lower(), s.upper());
    write(l.join("opened.txt"), "same bytes", 0o644);
    write(l.join("touched.txt"), "same too", 0o600);
    write(l.join("samesize.txt"), "abcdef", 0o644);
    mkdir(l.join("dir"), 0o755);
    write(u.join("opened.txt"), "same bytes", 0o644);
    write(u.join("touched.txt"), "same too", 0o600);
    mkdir(u.join("dir"), 0o755);
    let old = std::time::UNIX_EPOCH + Duration::from_secs(1_000_000);
    let touched = fs::File::options()
        .write(true)
        .open(u.join("touched.txt"))
        .unwrap();
    touched.set_modified(old).unwrap();
    assert_eq!(lines(&s.scan()), Vec::<String>::new());
    // Positive control: one byte different at the same size is a change.
    write(u.join("samesize.txt"), "abcdeX", 0o644);
    assert_eq!(lines(&s.scan()), ["modified file samesize.txt content"]);
}

#[test]
fn a_chmod_alone_is_a_mode_change() {
    let s = Scratch::new();
    let (l, u) = (s.lower(), s.upper());
    write(l.join("run.sh"), "echo", 0o644);
    write(l.join("both.sh"), "echo", 0o644);
    mkdir(l.join("d"), 0o755);
    write(u.join("run.sh"), "echo", 0o755);
    write(u.join("both.sh"), "echo 2", 0o700);
    mkdir(u.join("d"), 0o700);
    let diff = s.scan();
    assert_eq!(
        lines(&diff),
        [
            "modified file both.sh content mode",
            "modified dir d mode",
            "modified file run.sh mode",
        ]
    );
    assert_eq!(diff.changes[2].mode, Some(0o755));
}

#[test]
fn escaping_is_judged_on_the_link_text() {
    let cases = [
        ("l", "a.txt", false),
        ("l", "./a/../b", false),
        ("l", "..", true),
        ("l", "/etc/passwd", true),
        ("sub/l", "../a.txt", false),
        ("sub/l", "../../x", true),
        ("a/b/l", "../../c/../d", false),
        ("a/b/l", "x/../../../..", true),
        ("a/b/l", "../../..", true),
    ];
    for (link, target, expected) in cases {
        assert_eq!(
            escapes(Path::new(link), Path::new(target)),
            expected,
            "{link} -> {target}"
        );
    }
}

#[test]
fn symlinks_are_listed_with_their_target_and_never_followed() {
    let s = Scratch::new();
    let (l, u) = (s.lower(), s.upper());
    write(l.join("a.txt"), "a", 0o644);
    symlink("a.txt", l.join("retarget")).unwrap();
    mkdir(u.join("sub"), 0o755);
    symlink("../a.txt", u.join("sub/inside")).unwrap();
    symlink("../../etc", u.join("sub/out")).unwrap();
    symlink("/etc/shadow", u.join("abs")).unwrap();
    symlink("sub", u.join("retarget")).unwrap();
    // A symlink where the host has a file: kind change, and the link (to a
    // directory outside) must not be walked into.
    symlink(s.outside(), u.join("a.txt")).unwrap();
    write(s.outside().join("secret"), "s", 0o644);
    let diff = s.scan();
    assert_eq!(
        lines(&diff),
        [
            "deleted file a.txt".to_string(),
            format!("created symlink a.txt -> {} escapes", s.outside().display()),
            "created symlink abs -> /etc/shadow escapes".into(),
            "modified symlink retarget content -> sub".into(),
            "created dir sub".into(),
            "created symlink sub/inside -> ../a.txt".into(),
            "created symlink sub/out -> ../../etc escapes".into(),
        ]
    );
    assert!(diff.read(Path::new("a.txt/secret")).is_err());
}

#[test]
fn an_opaque_directory_hides_the_host_entries_it_does_not_have() {
    for attr in ["user.overlay.opaque", "trusted.overlay.opaque"] {
        let s = Scratch::new();
        let (l, u) = (s.lower(), s.upper());
        write(l.join("d/same"), "s", 0o644);
        write(l.join("d/old"), "o", 0o644);
        write(l.join("d/sub/deep"), "x", 0o644);
        write(l.join("d/sub/keep"), "k", 0o644);
        write(u.join("d/same"), "s", 0o644);
        write(u.join("d/new"), "n", 0o644);
        // Recreated below the opaque dir: not opaque itself, yet its host
        // content is hidden too.
        write(u.join("d/sub/keep"), "k", 0o644);
        fs::set_permissions(u.join("d/sub"), fs::Permissions::from_mode(0o755)).unwrap();
        fs::set_permissions(u.join("d"), fs::Permissions::from_mode(0o755)).unwrap();
        set_xattr(&u.join("d"), attr, b"y");
        assert_eq!(
            lines(&s.scan()),
            [
                "created file d/new",
                "deleted file d/old",
                "deleted file d/sub/deep"
            ],
            "{attr}"
        );
        // Control: without the attribute the host entries show through.
        set_xattr(&u.join("d"), attr, b"n");
        assert_eq!(lines(&s.scan()), ["created file d/new"], "{attr}");
    }
}

#[test]
fn a_redirected_directory_is_a_rename() {
    let s = Scratch::new();
    let (l, u) = (s.lower(), s.upper());
    write(l.join("old/f"), "f", 0o644);
    write(l.join("old/g"), "g", 0o644);
    write(l.join("pair/a/x"), "x", 0o644);
    mkdir(u.join("new"), 0o755);
    set_xattr(&u.join("new"), "user.overlay.redirect", b"/old");
    write(u.join("new/f"), "changed", 0o644);
    whiteout(u.join("old"));
    // A rename inside one directory stores just the old name.
    mkdir(u.join("pair/b"), 0o755);
    set_xattr(&u.join("pair/b"), "user.overlay.redirect", b"a");
    whiteout(u.join("pair/a"));
    // And a new directory where the old one was.
    mkdir(u.join("old2"), 0o755);
    let diff = s.scan();
    assert_eq!(
        lines(&diff),
        [
            "renamed(from old) dir new",
            "modified file new/f content",
            "created dir old2",
            "renamed(from pair/a) dir pair/b",
        ]
    );
    let t = s.target("t");
    let report = diff.apply_to(&t, |_| true).unwrap();
    assert!(report.skipped.is_empty(), "{:?}", report.skipped);
    assert_eq!(
        listing(&t),
        [
            "new dir 755",
            "new/f file 644 \"changed\"",
            "new/g file 644 \"g\"",
            "old2 dir 755",
            "pair dir 755",
            "pair/b dir 755",
            "pair/b/x file 644 \"x\"",
        ]
    );
}

#[test]
fn a_malformed_redirect_is_refused() {
    let s = Scratch::new();
    mkdir(s.upper().join("d"), 0o755);
    set_xattr(&s.upper().join("d"), "user.overlay.redirect", b"/../etc");
    let err = s.try_scan().unwrap_err();
    assert_eq!(
        err.to_string(),
        "workspace: malformed overlay metadata on d: redirect \"/../etc\" is not a plain path"
    );
    set_xattr(&s.upper().join("d"), "user.overlay.redirect", b"a/b");
    let err = s.try_scan().unwrap_err();
    assert!(
        err.to_string()
            .ends_with("is relative but names more than one component"),
        "{err}"
    );
}

/// `mv` of a host directory in the sandbox gets EXDEV (no redirect_dir) and
/// copies then deletes: that is one rename when the trees are identical.
#[test]
fn a_copied_and_deleted_directory_is_one_rename() {
    let s = Scratch::new();
    let (l, u) = (s.lower(), s.upper());
    write(l.join("src/f"), "f", 0o644);
    write(l.join("src/sub/g"), "g", 0o600);
    symlink("f", l.join("src/link")).unwrap();
    mkdir(l.join("src/sub"), 0o700);
    write(l.join("other/h"), "h", 0o644);
    whiteout(u.join("src"));
    copy_tree(&l.join("src"), &u.join("moved"));
    mkdir(u.join("into"), 0o755);
    whiteout(u.join("other"));
    copy_tree(&l.join("other"), &u.join("into/other"));
    let diff = s.scan();
    assert_eq!(
        lines(&diff),
        [
            "created dir into",
            "renamed(from other) dir into/other",
            "renamed(from src) dir moved"
        ]
    );
    let t = s.target("t");
    let report = diff.apply_to(&t, |_| true).unwrap();
    assert!(report.skipped.is_empty(), "{:?}", report.skipped);
    assert_eq!(
        listing(&t),
        [
            "into dir 755",
            "into/other dir 755",
            "into/other/h file 644 \"h\"",
            "moved dir 755",
            "moved/f file 644 \"f\"",
            "moved/link -> f",
            "moved/sub dir 700",
            "moved/sub/g file 600 \"g\"",
        ]
    );
    // The source is gone from the target: the copy in the upper is used.
    let t2 = s.target("t2");
    fs::remove_dir_all(t2.join("src")).unwrap();
    let report = diff
        .apply_to(&t2, |c| c.path == Path::new("moved"))
        .unwrap();
    assert_eq!(report.applied, [PathBuf::from("moved")]);
    assert_eq!(listing(&t2.join("moved")), listing(&t.join("moved")));
}

#[test]
fn a_copy_that_differs_is_not_a_rename() {
    for tweak in ["content", "mode", "extra"] {
        let s = Scratch::new();
        let (l, u) = (s.lower(), s.upper());
        write(l.join("src/f"), "f", 0o644);
        whiteout(u.join("src"));
        copy_tree(&l.join("src"), &u.join("moved"));
        match tweak {
            "content" => write(u.join("moved/f"), "F", 0o644),
            "mode" => write(u.join("moved/f"), "f", 0o600),
            _ => write(u.join("moved/e"), "", 0o644),
        }
        let mut expected = vec![
            "created dir moved",
            "created file moved/f",
            "deleted dir src",
        ];
        if tweak == "extra" {
            expected.insert(1, "created file moved/e");
        }
        assert_eq!(lines(&s.scan()), expected, "{tweak}");
    }
}

#[test]
fn an_entry_that_changed_kind_is_deleted_then_created() {
    let s = Scratch::new();
    let (l, u) = (s.lower(), s.upper());
    write(l.join("x"), "file", 0o644);
    write(l.join("y/inner"), "i", 0o644);
    write(u.join("x/c"), "c", 0o644);
    mkdir(u.join("x"), 0o755);
    opaque(u.join("x"));
    write(u.join("y"), "now a file", 0o644);
    let diff = s.scan();
    assert_eq!(
        lines(&diff),
        [
            "deleted file x",
            "created dir x",
            "created file x/c",
            "deleted dir y",
            "created file y",
        ]
    );
    let t = s.target("t");
    let report = diff.apply_to(&t, |_| true).unwrap();
    assert!(report.skipped.is_empty(), "{:?}", report.skipped);
    assert_eq!(
        listing(&t),
        [
            "x dir 755",
            "x/c file 644 \"c\"",
            "y file 644 \"now a file\""
        ]
    );
}

#[test]
fn a_fifo_in_the_upper_never_blocks_the_host() {
    let s = Scratch::new();
    let (l, u) = (s.lower(), s.upper());
    write(l.join("data"), "", 0o644);
    nix::unistd::mkfifo(&u.join("data"), Mode::from_bits_truncate(0o644)).unwrap();
    nix::unistd::mkfifo(&u.join("pipe"), Mode::from_bits_truncate(0o600)).unwrap();
    let upper = s.upper();
    let lower = s.lower();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let diff = WorkspaceDiff::scan(upper_fd(&upper), &lower, Path::new("/work")).unwrap();
        let read = diff.read(Path::new("pipe")).map_err(|e| e.to_string());
        let report = diff.apply_to(&lower, |_| true).unwrap();
        tx.send((lines(&diff), read, report)).unwrap();
    });
    let (lines, read, report) = rx
        .recv_timeout(Duration::from_secs(10))
        .expect("scan hung on a FIFO");
    assert_eq!(
        lines,
        [
            "deleted file data",
            "created other data",
            "created other pipe"
        ]
    );
    assert_eq!(read, Err("pipe is not a regular file".to_string()));
    let special = "special files (FIFOs, sockets, devices) are not applied".to_string();
    assert_eq!(report.applied, [PathBuf::from("data")]);
    assert_eq!(
        report.skipped,
        [
            (PathBuf::from("data"), special.clone()),
            (PathBuf::from("pipe"), special)
        ]
    );
}

#[test]
fn the_upper_is_bounded_in_entries_and_depth() {
    let s = Scratch::new();
    for i in 0..10 {
        write(s.upper().join(format!("f{i}")), "", 0o644);
    }
    let upper = Root::upper(upper_fd(&s.upper()));
    assert_eq!(
        super::tree::read_upper_within(&upper, 10)
            .unwrap()
            .entries
            .len(),
        10
    );
    let err = super::tree::read_upper_within(&upper, 9).unwrap_err();
    assert_eq!(
        err.to_string(),
        "workspace: the sandbox wrote more than 9 entries; too many to review"
    );

    let s = Scratch::new();
    let mut deep = s.upper();
    for _ in 0..MAX_DEPTH {
        deep.push("d");
    }
    fs::create_dir_all(&deep).unwrap();
    assert_eq!(s.scan().changes.len(), MAX_DEPTH);
    fs::create_dir(deep.join("d")).unwrap();
    match s.try_scan().unwrap_err() {
        WorkspaceError::TooDeep { path, limit } => {
            assert_eq!(limit, MAX_DEPTH);
            assert_eq!(path.components().count(), MAX_DEPTH + 1);
        }
        e => panic!("{e}"),
    }
}

#[test]
fn apply_writes_what_was_chosen_and_nothing_else() {
    let s = Scratch::new();
    let (l, u) = (s.lower(), s.upper());
    write(l.join("edit.txt"), "old", 0o644);
    write(l.join("gone.txt"), "bye", 0o644);
    write(l.join("mode.sh"), "echo", 0o644);
    write(u.join("edit.txt"), "new", 0o644);
    write(u.join("suid"), "#!", 0o4755);
    write(u.join("mode.sh"), "echo", 0o755);
    whiteout(u.join("gone.txt"));
    write(u.join("ro/inner"), "i", 0o644);
    mkdir(u.join("ro"), 0o555);
    symlink("edit.txt", u.join("link")).unwrap();
    symlink("../x", u.join("evil")).unwrap();
    let diff = s.scan();

    // A subset: only the edit and the deletion.
    let t = s.target("subset");
    let chosen = |c: &Change| c.path == Path::new("edit.txt") || c.kind == ChangeKind::Deleted;
    let report = diff.apply_to(&t, chosen).unwrap();
    assert_eq!(
        report.applied,
        [PathBuf::from("edit.txt"), PathBuf::from("gone.txt")]
    );
    assert!(report.skipped.is_empty());
    assert_eq!(
        listing(&t),
        ["edit.txt file 644 \"new\"", "mode.sh file 644 \"echo\""]
    );

    // Everything, onto another root.
    let t = s.target("all");
    let report = diff.apply_to(&t, |_| true).unwrap();
    assert_eq!(
        report.skipped,
        [(
            PathBuf::from("evil"),
            "the symlink target leaves the tree".to_string()
        )]
    );
    assert_eq!(
        listing(&t),
        [
            "edit.txt file 644 \"new\"",
            "link -> edit.txt",
            "mode.sh file 755 \"echo\"",
            "ro dir 555",
            "ro/inner file 644 \"i\"",
            "suid file 755 \"#!\"",
        ]
    );
    // The lower itself was not touched by either.
    assert_eq!(listing(&l).len(), 3);
    assert_eq!(fs::read(l.join("edit.txt")).unwrap(), b"old");
    // No temporary names are left anywhere.
    assert!(!listing(&t).iter().any(|e| e.contains(".stockade-apply-")));
}

#[test]
fn apply_onto_src_by_default() {
    let s = Scratch::new();
    write(s.lower().join("a"), "old", 0o644);
    write(s.upper().join("a"), "new", 0o644);
    let report = s.scan().apply(|_| true).unwrap();
    assert_eq!(report.applied, [PathBuf::from("a")]);
    assert_eq!(fs::read(s.lower().join("a")).unwrap(), b"new");
}

/// Symlinks planted in the target (by the agent through another channel, or
/// anyone else) must never carry a write, a chmod or a delete outside.
#[test]
fn a_symlink_planted_in_the_target_never_redirects_apply() {
    let s = Scratch::new();
    let (l, u, out) = (s.lower(), s.upper(), s.outside());
    write(l.join("sub/a.txt"), "old", 0o644);
    write(l.join("b.txt"), "old", 0o644);
    write(l.join("m.txt"), "m", 0o644);
    write(l.join("deldir/x"), "x", 0o644);
    write(l.join("keepdir/y"), "y", 0o644);
    write(u.join("sub/a.txt"), "agent", 0o644);
    write(u.join("sub/new.txt"), "agent", 0o644);
    write(u.join("b.txt"), "agent", 0o644);
    write(u.join("created.txt"), "agent", 0o644);
    write(u.join("m.txt"), "m", 0o755);
    whiteout(u.join("deldir"));
    whiteout(u.join("keepdir/y"));
    mkdir(u.join("keepdir"), 0o755);
    let diff = s.scan();
    assert_eq!(
        lines(&diff),
        [
            "modified file b.txt content",
            "created file created.txt",
            "deleted dir deldir",
            "deleted file keepdir/y",
            "modified file m.txt mode",
            "modified file sub/a.txt content",
            "created file sub/new.txt",
        ]
    );

    // Positive control: an untampered target takes every change.
    let clean = s.target("clean");
    let report = diff.apply_to(&clean, |_| true).unwrap();
    assert!(report.skipped.is_empty(), "{:?}", report.skipped);
    assert_eq!(fs::read(clean.join("sub/a.txt")).unwrap(), b"agent");

    // The attack: every path of the diff leads outside in the target.
    write(out.join("a.txt"), "outside a", 0o644);
    write(out.join("victim"), "outside victim", 0o644);
    write(out.join("dir/y"), "outside y", 0o644);
    let t = s.target("attacked");
    fs::remove_dir_all(t.join("sub")).unwrap();
    symlink(&out, t.join("sub")).unwrap();
    fs::remove_file(t.join("b.txt")).unwrap();
    symlink(out.join("victim"), t.join("b.txt")).unwrap();
    symlink(out.join("victim"), t.join("created.txt")).unwrap();
    fs::remove_file(t.join("m.txt")).unwrap();
    symlink(out.join("victim"), t.join("m.txt")).unwrap();
    fs::remove_dir_all(t.join("deldir")).unwrap();
    symlink(out.join("dir"), t.join("deldir")).unwrap();
    fs::remove_dir_all(t.join("keepdir")).unwrap();
    symlink(out.join("dir"), t.join("keepdir")).unwrap();
    let before: Vec<String> = ["a.txt", "victim", "dir/y"]
        .iter()
        .map(|f| hash(&out.join(f)))
        .collect();
    let mode_before = mode_of(&out.join("victim"));

    let report = diff.apply_to(&t, |_| true).unwrap();
    let symlink_parent =
        "open the parent directory: a symlink is in the way and is not followed (ELOOP)";
    let skipped: Vec<(String, String)> = report
        .skipped
        .iter()
        .map(|(p, why)| (p.display().to_string(), why.clone()))
        .collect();
    assert_eq!(
        skipped,
        [
            ("b.txt".into(), "the target is now a symlink".into()),
            (
                "created.txt".into(),
                "rename into place: something is already there (EEXIST)".into()
            ),
            ("m.txt".into(), "the target is now a symlink".into()),
            ("sub/a.txt".into(), symlink_parent.into()),
            ("sub/new.txt".into(), symlink_parent.into()),
            ("keepdir/y".into(), symlink_parent.into()),
            ("deldir".into(), "the target is now a symlink".into()),
        ]
    );
    assert!(report.applied.is_empty(), "{:?}", report.applied);
    let after: Vec<String> = ["a.txt", "victim", "dir/y"]
        .iter()
        .map(|f| hash(&out.join(f)))
        .collect();
    assert_eq!(before, after);
    assert_eq!(mode_of(&out.join("victim")), mode_before);
    assert_eq!(listing(&out).len(), 4);
    // The planted links themselves are still there, untouched.
    assert_eq!(
        fs::read_link(t.join("created.txt")).unwrap(),
        out.join("victim")
    );
    assert!(!listing(&t).iter().any(|e| e.contains(".stockade-apply-")));
}

/// A directory being deleted may hold symlinks to the outside: they go, what
/// they point to stays.
#[test]
fn deleting_a_directory_removes_links_not_their_targets() {
    let s = Scratch::new();
    let (l, u, out) = (s.lower(), s.upper(), s.outside());
    write(l.join("d/f"), "f", 0o644);
    write(u.join("keep"), "k", 0o644);
    whiteout(u.join("d"));
    write(out.join("precious/p"), "p", 0o644);
    let diff = s.scan();
    let t = s.target("t");
    symlink(out.join("precious"), t.join("d/link")).unwrap();
    write(t.join("d/sub/deeper"), "z", 0o644);
    let report = diff.apply_to(&t, |_| true).unwrap();
    // Creations first, deletions after.
    assert_eq!(report.applied, [PathBuf::from("keep"), PathBuf::from("d")]);
    assert!(!t.join("d").exists());
    assert_eq!(fs::read(out.join("precious/p")).unwrap(), b"p");
}

#[test]
fn a_mode_change_of_the_root_is_listed_and_applied() {
    let s = Scratch::new();
    fs::set_permissions(s.upper(), fs::Permissions::from_mode(0o750)).unwrap();
    let diff = s.scan();
    assert_eq!(lines(&diff), ["modified dir . mode"]);
    let t = s.target("t");
    assert_eq!(mode_of(&t), 0o755);
    let report = diff.apply_to(&t, |_| true).unwrap();
    assert_eq!(report.applied, [PathBuf::from(".")]);
    assert_eq!(mode_of(&t), 0o750);
}

#[test]
fn read_gives_new_content_and_refuses_what_is_not_a_file_beneath() {
    let s = Scratch::new();
    write(s.upper().join("d/f"), "content", 0o644);
    symlink(s.outside(), s.upper().join("out")).unwrap();
    write(s.outside().join("secret"), "secret", 0o644);
    let diff = s.scan();
    assert_eq!(diff.read(Path::new("d/f")).unwrap(), b"content");
    let err = |p: &str| diff.read(Path::new(p)).unwrap_err();
    assert_eq!(err("out/secret").raw_os_error(), Some(libc::ELOOP));
    assert_eq!(err("../outside/secret").raw_os_error(), Some(libc::EXDEV));
    assert_eq!(err("d").to_string(), "d is not a regular file");
    assert_eq!(err("out").to_string(), "out is not a regular file");
    assert_eq!(err("missing").raw_os_error(), Some(libc::ENOENT));
}

/// A chmod-only change must not reach another name of the same inode (a
/// hard link planted in the target to a file outside).
#[test]
fn a_mode_change_never_reaches_a_hard_linked_outside_file() {
    let s = Scratch::new();
    let (l, u, out) = (s.lower(), s.upper(), s.outside());
    write(l.join("run.sh"), "echo", 0o644);
    write(u.join("run.sh"), "echo", 0o755);
    let diff = s.scan();
    assert_eq!(lines(&diff), ["modified file run.sh mode"]);
    // Positive control: a plain target is changed in place.
    let t = s.target("plain");
    let inode = fs::metadata(t.join("run.sh")).unwrap().ino();
    assert!(diff.apply_to(&t, |_| true).unwrap().skipped.is_empty());
    assert_eq!(mode_of(&t.join("run.sh")), 0o755);
    assert_eq!(fs::metadata(t.join("run.sh")).unwrap().ino(), inode);
    // The attack: the target's run.sh is another name of an outside file.
    write(out.join("shared"), "echo", 0o600);
    let t = s.target("linked");
    fs::remove_file(t.join("run.sh")).unwrap();
    fs::hard_link(out.join("shared"), t.join("run.sh")).unwrap();
    let report = diff.apply_to(&t, |_| true).unwrap();
    assert_eq!(report.applied, [PathBuf::from("run.sh")]);
    assert_eq!(mode_of(&out.join("shared")), 0o600);
    assert_eq!(fs::metadata(out.join("shared")).unwrap().nlink(), 1);
    assert_eq!(mode_of(&t.join("run.sh")), 0o755);
    assert_eq!(fs::read(t.join("run.sh")).unwrap(), b"echo");
}

/// The agent picks the file names: one that is not UTF-8 must not break the
/// JSON the CLI prints.
#[test]
fn names_that_are_not_utf8_still_serialize() {
    use std::ffi::OsStr;
    let s = Scratch::new();
    let name = OsStr::from_bytes(b"bad\xffname");
    write(s.upper().join(name), "x", 0o644);
    symlink(OsStr::from_bytes(b"t\xfe"), s.upper().join("link")).unwrap();
    let diff = s.scan();
    let json = serde_json::to_value(&diff.changes).unwrap();
    assert_eq!(json[0]["path"], "bad\u{fffd}name");
    assert_eq!(json[0]["kind"], "created");
    assert_eq!(json[1]["link_target"], "t\u{fffd}");
    // Apply uses the real bytes.
    let t = s.target("t");
    let report = diff.apply_to(&t, |_| true).unwrap();
    assert_eq!(fs::read(t.join(name)).unwrap(), b"x");
    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(json["applied"][0], "bad\u{fffd}name");
}
