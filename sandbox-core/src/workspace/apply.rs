//! Writing chosen changes onto a target directory.
//!
//! Nothing here follows a symlink: each change's parent directory is opened
//! beneath the target root with symlinks and mount crossings refused, and
//! the last name is only used with `*at` calls that act on the entry itself.
//! A file is written to a fresh temporary name next to its destination,
//! synced, given its mode (without setuid/setgid) and renamed into place, so
//! the destination is either the old or the new file, never a mix.
//!
//! A change that cannot be applied is skipped with a reason and the others go
//! on, because a reviewer wants as much of what they accepted as possible and
//! a precise list of the rest. Order: creations, modifications and renames
//! parents first (an entry that changed kind is deleted just before its
//! replacement), then the remaining deletions deepest first, then directory
//! modes deepest first (so a read-only directory is filled before it becomes
//! read-only).

use std::cmp::Reverse;
use std::ffi::{CString, OsStr};
use std::fs::File;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use nix::errno::Errno;
use nix::fcntl::{openat, OFlag};
use nix::sys::stat::{fchmod, mkdirat, Mode};
use nix::unistd::{fsync, symlinkat, unlinkat, UnlinkatFlags};

use super::beneath::{c_name, kind_of, lstat_at, names, open_beneath, Root};
use super::diff::change;
use super::tree::Node;
use super::{ApplyReport, Change, ChangeKind, FileKind, WorkspaceDiff, MAX_DEPTH};
use crate::sys;

/// Why a change was skipped.
type Skip = String;

pub(super) struct Applier<'a> {
    diff: &'a WorkspaceDiff,
    target: &'a Root,
    results: Vec<(PathBuf, Result<(), Skip>)>,
    /// Renames done so far (from, to): later host paths move with them.
    moved: Vec<(PathBuf, PathBuf)>,
    /// Directory modes to set at the end: (result index, path, mode).
    modes: Vec<(usize, PathBuf, u32)>,
}

impl<'a> Applier<'a> {
    pub(super) fn new(diff: &'a WorkspaceDiff, target: &'a Root) -> Self {
        Applier {
            diff,
            target,
            results: Vec::new(),
            moved: Vec::new(),
            modes: Vec::new(),
        }
    }

    pub(super) fn run(mut self, chosen: &[&Change]) -> ApplyReport {
        let (deletions, others): (Vec<&Change>, Vec<&Change>) =
            chosen.iter().partition(|c| c.kind == ChangeKind::Deleted);
        let mut pending: Vec<Option<&Change>> = deletions.into_iter().map(Some).collect();
        for c in others {
            if let Some(slot) = pending
                .iter_mut()
                .find(|d| d.is_some_and(|d| d.path == c.path))
            {
                let d = slot.take().expect("found above");
                let r = self.delete(d);
                self.results.push((d.path.clone(), r));
            }
            let r = match &c.kind {
                ChangeKind::Renamed { from } => self.rename(c, from),
                _ => self.write(c),
            };
            self.results.push((c.path.clone(), r));
        }
        let mut rest: Vec<&Change> = pending.into_iter().flatten().collect();
        rest.sort_by_key(|c| Reverse(c.path.components().count()));
        for d in rest {
            let r = self.delete(d);
            self.results.push((d.path.clone(), r));
        }
        let mut modes = std::mem::take(&mut self.modes);
        modes.sort_by_key(|(_, p, _)| Reverse(p.components().count()));
        for (i, path, mode) in modes {
            if let Err(why) = self.chmod_dir(&path, mode) {
                if self.results[i].1.is_ok() {
                    self.results[i].1 = Err(why);
                }
            }
        }
        let mut report = ApplyReport::default();
        for (path, r) in self.results {
            match r {
                Ok(()) => report.applied.push(path),
                Err(why) => report.skipped.push((path, why)),
            }
        }
        report
    }

    /// Set a directory's mode once everything is written (the result about
    /// to be recorded is the one a failure is reported on).
    fn defer_mode(&mut self, path: &Path, mode: u32) {
        self.modes
            .push((self.results.len(), path.to_path_buf(), mode));
    }

    /// A created or modified entry.
    fn write(&mut self, c: &Change) -> Result<(), Skip> {
        let mode = permissions(c.mode.unwrap_or(0o644));
        match (c.file_kind, &c.kind) {
            (FileKind::Other, _) => {
                Err("special files (FIFOs, sockets, devices) are not applied".into())
            }
            (FileKind::Symlink, _) => self.write_link(c),
            (FileKind::Dir, ChangeKind::Created) => self.make_dir(&c.path, mode),
            (FileKind::Dir, _) => {
                self.defer_mode(&c.path, mode);
                Ok(())
            }
            (FileKind::File, ChangeKind::Modified) if !c.content_changed => {
                self.chmod_file(&c.path, mode)
            }
            (FileKind::File, kind) => self.write_file(&c.path, mode, *kind == ChangeKind::Created),
        }
    }

    /// Copy the upper's file at `path` to the target, atomically.
    fn write_file(&mut self, path: &Path, mode: u32, created: bool) -> Result<(), Skip> {
        let (dir, name) = self.parent(path)?;
        if !created {
            expect_kind(dir.as_fd(), name, FileKind::File, false)?;
        }
        let mut src = self
            .diff
            .upper
            .read_file(path)
            .map_err(|e| format!("read the new content in the sandbox: {e}"))?;
        let temp = Temp::file(dir.as_fd())?;
        let mut file = temp.file.as_ref().expect("a file temp");
        std::io::copy(&mut src, &mut file).map_err(|e| format!("write a temporary file: {e}"))?;
        fchmod(file.as_fd(), Mode::from_bits_truncate(mode)).map_err(|e| why("set the mode", e))?;
        fsync(file.as_fd()).map_err(|e| why("sync the temporary file", e))?;
        temp.put(name, created)
    }

    fn write_link(&mut self, c: &Change) -> Result<(), Skip> {
        if c.escapes {
            return Err("the symlink target leaves the tree".into());
        }
        let target = c.link_target.as_deref().ok_or("no link target")?;
        let (dir, name) = self.parent(&c.path)?;
        let created = c.kind == ChangeKind::Created;
        if !created {
            expect_kind(dir.as_fd(), name, FileKind::Symlink, false)?;
        }
        let temp = Temp::symlink(dir.as_fd(), target)?;
        temp.put(name, created)
    }

    fn make_dir(&mut self, path: &Path, mode: u32) -> Result<(), Skip> {
        let (dir, name) = self.parent(path)?;
        // Owner-only until its content is in; the real mode comes last.
        match mkdirat(dir.as_fd(), name, Mode::from_bits_truncate(0o700)) {
            Ok(()) => {}
            Err(Errno::EEXIST) => {
                expect_kind(dir.as_fd(), name, FileKind::Dir, true)?;
            }
            Err(e) => return Err(why("create the directory", e)),
        }
        self.defer_mode(path, mode);
        Ok(())
    }

    fn chmod_file(&mut self, path: &Path, mode: u32) -> Result<(), Skip> {
        let (dir, name) = self.parent(path)?;
        expect_kind(dir.as_fd(), name, FileKind::File, true)?;
        // A hard link may share the inode with a file outside the tree:
        // then the file is replaced rather than changed in place.
        match lstat_at(dir.as_fd(), name) {
            Ok(st) if st.st_nlink == 1 => chmod_at(dir.as_fd(), name, mode),
            Ok(_) => self.write_file(path, mode, false),
            Err(e) => Err(why("look at the target", e)),
        }
    }

    fn chmod_dir(&self, path: &Path, mode: u32) -> Result<(), Skip> {
        if path == Path::new(".") {
            let fd = self
                .target
                .open_dir(Path::new(""))
                .map_err(|e| why("open the target", e))?;
            return fchmod(fd.as_fd(), Mode::from_bits_truncate(mode))
                .map_err(|e| why("set the mode", e));
        }
        let (dir, name) = self.parent(path)?;
        expect_kind(dir.as_fd(), name, FileKind::Dir, true)?;
        chmod_at(dir.as_fd(), name, mode)
    }

    /// Move the directory at host path `from` to the change's path.
    fn rename(&mut self, c: &Change, from: &Path) -> Result<(), Skip> {
        let from = self.moved_to(from);
        let source = match self.target.parent(&from) {
            Ok((dir, name)) => match lstat_at(dir.as_fd(), name) {
                Ok(st) if kind_of(&st) == FileKind::Dir => Some((dir, name)),
                Ok(st) => {
                    return Err(format!(
                        "the source {} is now a {}",
                        from.display(),
                        kind_name(kind_of(&st))
                    ))
                }
                Err(Errno::ENOENT) => None,
                Err(e) => return Err(why("look at the source", e)),
            },
            Err(Errno::ENOENT) => None,
            Err(e) => return Err(why("open the source's parent directory", e)),
        };
        let Some((sdir, sname)) = source else {
            return self.copy_moved(c, &from);
        };
        let (ddir, dname) = self.parent(&c.path)?;
        let (sname, dname) = (
            c_name(sname).map_err(|e| why("rename", e))?,
            c_name(dname).map_err(|e| why("rename", e))?,
        );
        sys::renameat2(
            sdir.as_fd(),
            &sname,
            ddir.as_fd(),
            &dname,
            libc::RENAME_NOREPLACE,
        )
        .map_err(|e| why("rename", e))?;
        self.moved.push((from, c.path.clone()));
        if c.mode_changed {
            self.defer_mode(&c.path, permissions(c.mode.unwrap_or(0o755)));
        }
        Ok(())
    }

    /// Where host path `p` is now, after the renames done so far.
    fn moved_to(&self, p: &Path) -> PathBuf {
        self.moved.iter().fold(p.to_path_buf(), |p, (from, to)| {
            match p.strip_prefix(from) {
                Ok(rest) if rest.as_os_str().is_empty() => to.clone(),
                Ok(rest) => to.join(rest),
                Err(_) => p,
            }
        })
    }

    /// The source of a rename is gone. A move that the sandbox did as copy
    /// and delete left the whole tree in the upper: create it from there.
    fn copy_moved(&mut self, c: &Change, from: &Path) -> Result<(), Skip> {
        let gone = format!("the source {} no longer exists", from.display());
        if !self.diff.copied.contains(&c.path) {
            return Err(gone);
        }
        let Some(node) = self.diff.tree.lookup(&c.path) else {
            return Err(gone);
        };
        let whole = change(&c.path, ChangeKind::Created, node);
        self.copy_tree(&whole, node).map_err(|(path, e)| {
            format!(
                "{gone}, and copying {} from the sandbox failed: {e}",
                path.display()
            )
        })
    }

    fn copy_tree(&mut self, c: &Change, node: &Node) -> Result<(), (PathBuf, Skip)> {
        self.write(c).map_err(|e| (c.path.clone(), e))?;
        if let Node::Dir(d) = node {
            for (name, child) in &d.entries {
                let path = c.path.join(name);
                self.copy_tree(&change(&path, ChangeKind::Created, child), child)?;
            }
        }
        Ok(())
    }

    fn delete(&mut self, c: &Change) -> Result<(), Skip> {
        let (dir, name) = match self.target.parent(&c.path) {
            Err(Errno::ENOENT) => return Err("already absent".into()),
            r => r.map_err(|e| why("open the parent directory", e))?,
        };
        if !expect_kind(dir.as_fd(), name, c.file_kind, false)? {
            return Err("already absent".into());
        }
        if c.file_kind == FileKind::Dir {
            self.remove_tree(dir.as_fd(), name, &c.path, 0)
        } else {
            unlinkat(dir.as_fd(), name, UnlinkatFlags::NoRemoveDir).map_err(|e| why("delete", e))
        }
    }

    /// Delete the directory `name` in `parent` and everything in it, never
    /// following a symlink and never crossing a mount.
    fn remove_tree(
        &self,
        parent: BorrowedFd<'_>,
        name: &OsStr,
        path: &Path,
        depth: usize,
    ) -> Result<(), Skip> {
        if depth > MAX_DEPTH {
            return Err(format!(
                "{} is nested deeper than {MAX_DEPTH} directories",
                path.display()
            ));
        }
        let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY;
        let dir = open_beneath(parent, Path::new(name), flags, self.target.resolve_flags())
            .map_err(|e| why(&format!("open {}", path.display()), e))?;
        let entries = names(dir.as_fd(), usize::MAX).map_err(|e| {
            why(
                &format!("read {}", path.display()),
                e.unwrap_or(Errno::E2BIG),
            )
        })?;
        for entry in entries {
            let inner = path.join(&entry);
            match lstat_at(dir.as_fd(), &entry) {
                Ok(st) if kind_of(&st) == FileKind::Dir => {
                    self.remove_tree(dir.as_fd(), &entry, &inner, depth + 1)?
                }
                Ok(_) => unlinkat(dir.as_fd(), entry.as_os_str(), UnlinkatFlags::NoRemoveDir)
                    .map_err(|e| why(&format!("delete {}", inner.display()), e))?,
                Err(Errno::ENOENT) => {}
                Err(e) => return Err(why(&format!("look at {}", inner.display()), e)),
            }
        }
        unlinkat(parent, name, UnlinkatFlags::RemoveDir)
            .map_err(|e| why(&format!("delete {}", path.display()), e))
    }

    fn parent<'p>(&self, path: &'p Path) -> Result<(OwnedFd, &'p OsStr), Skip> {
        self.target
            .parent(path)
            .map_err(|e| why("open the parent directory", e))
    }
}

/// The bits a file gets: permissions and sticky, never setuid or setgid.
fn permissions(mode: u32) -> u32 {
    mode & 0o1777
}

/// Check that `name` in `dir` is a `kind` (or absent, unless `must_exist`);
/// says whether it exists.
fn expect_kind(
    dir: BorrowedFd<'_>,
    name: &OsStr,
    kind: FileKind,
    must_exist: bool,
) -> Result<bool, Skip> {
    match lstat_at(dir, name) {
        Ok(st) if kind_of(&st) == kind => Ok(true),
        Ok(st) => Err(format!("the target is now a {}", kind_name(kind_of(&st)))),
        Err(Errno::ENOENT) if !must_exist => Ok(false),
        Err(Errno::ENOENT) => Err("the target no longer exists".into()),
        Err(e) => Err(why("look at the target", e)),
    }
}

/// `chmod` of `name` in `dir` that refuses to follow a symlink there.
fn chmod_at(dir: BorrowedFd<'_>, name: &OsStr, mode: u32) -> Result<(), Skip> {
    let cname = c_name(name).map_err(|e| why("set the mode", e))?;
    match sys::fchmodat2(dir, &cname, mode, libc::AT_SYMLINK_NOFOLLOW) {
        Ok(()) => Ok(()),
        // Before Linux 6.6: open the entry itself (no symlink is followed)
        // and change the mode through that.
        Err(Errno::ENOSYS) => {
            let flags = OFlag::O_RDONLY | OFlag::O_NONBLOCK | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
            let fd = openat(dir, name, flags, Mode::empty()).map_err(|e| why("set the mode", e))?;
            fchmod(fd.as_fd(), Mode::from_bits_truncate(mode)).map_err(|e| why("set the mode", e))
        }
        Err(e) => Err(why("set the mode", e)),
    }
}

/// A new entry under a unique temporary name, removed unless it is put in
/// place.
struct Temp<'d> {
    dir: BorrowedFd<'d>,
    name: CString,
    file: Option<File>,
    placed: bool,
}

impl<'d> Temp<'d> {
    fn fresh_name() -> CString {
        static N: AtomicU64 = AtomicU64::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        CString::new(format!(".stockade-apply-{}-{n}", std::process::id())).expect("no NUL")
    }

    /// Retry `make` on names already taken (by anything, even a symlink:
    /// nothing existing is ever opened).
    fn create(
        dir: BorrowedFd<'d>,
        mut make: impl FnMut(&CString) -> Result<Option<File>, Errno>,
    ) -> Result<Self, Skip> {
        for _ in 0..64 {
            let name = Self::fresh_name();
            match make(&name) {
                Ok(file) => {
                    return Ok(Temp {
                        dir,
                        name,
                        file,
                        placed: false,
                    })
                }
                Err(Errno::EEXIST) => continue,
                Err(e) => return Err(why("create a temporary entry", e)),
            }
        }
        Err(why("create a temporary entry", Errno::EEXIST))
    }

    fn file(dir: BorrowedFd<'d>) -> Result<Self, Skip> {
        Self::create(dir, |name| {
            let flags = OFlag::O_WRONLY
                | OFlag::O_CREAT
                | OFlag::O_EXCL
                | OFlag::O_NOFOLLOW
                | OFlag::O_CLOEXEC;
            let fd = openat(dir, name.as_c_str(), flags, Mode::from_bits_truncate(0o600))?;
            Ok(Some(File::from(fd)))
        })
    }

    fn symlink(dir: BorrowedFd<'d>, target: &Path) -> Result<Self, Skip> {
        Self::create(dir, |name| {
            symlinkat(target, dir, name.as_c_str())?;
            Ok(None)
        })
    }

    /// Rename into place as `name`; `exclusive`: never over an existing entry.
    fn put(mut self, name: &OsStr, exclusive: bool) -> Result<(), Skip> {
        let dest = c_name(name).map_err(|e| why("rename into place", e))?;
        let flags = if exclusive { libc::RENAME_NOREPLACE } else { 0 };
        sys::renameat2(self.dir, &self.name, self.dir, &dest, flags)
            .map_err(|e| why("rename into place", e))?;
        self.placed = true;
        Ok(())
    }
}

impl Drop for Temp<'_> {
    fn drop(&mut self) {
        if !self.placed {
            let _ = unlinkat(self.dir, self.name.as_c_str(), UnlinkatFlags::NoRemoveDir);
        }
    }
}

fn kind_name(kind: FileKind) -> &'static str {
    match kind {
        FileKind::File => "file",
        FileKind::Dir => "directory",
        FileKind::Symlink => "symlink",
        FileKind::Other => "special file",
    }
}

/// `<op>: <what went wrong> (<ERRNO>)`.
fn why(op: &str, e: Errno) -> Skip {
    let text = match e {
        Errno::ELOOP => "a symlink is in the way and is not followed",
        Errno::EXDEV => "a mount point is in the way and is not crossed",
        Errno::EEXIST | Errno::ENOTEMPTY => "something is already there",
        _ => e.desc(),
    };
    format!("{op}: {text} ({e:?})")
}
