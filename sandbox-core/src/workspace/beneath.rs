//! Paths resolved beneath a root descriptor. Every lookup goes through
//! `openat2` with `RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS`, so neither `..` nor
//! a symlink anywhere on the path can lead out of the tree; the final name is
//! then only acted on with `*at` calls that do not follow it.

use std::ffi::{CString, OsStr, OsString};
use std::fs::File;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::Arc;

use nix::dir::Dir;
use nix::errno::Errno;
use nix::fcntl::{open, openat2, AtFlags, OFlag, OpenHow, ResolveFlag};
use nix::sys::stat::{fstat, fstatat, FileStat, Mode, SFlag};

use super::{FileKind, WorkspaceError};

/// A directory every path is resolved beneath.
#[derive(Debug)]
pub(super) struct Root {
    fd: Arc<OwnedFd>,
    resolve: ResolveFlag,
}

const BENEATH: ResolveFlag = ResolveFlag::RESOLVE_BENEATH
    .union(ResolveFlag::RESOLVE_NO_SYMLINKS)
    .union(ResolveFlag::RESOLVE_NO_MAGICLINKS);

impl Root {
    /// The overlay upper: one tmpfs, so mount crossings are refused too.
    pub(super) fn upper(fd: Arc<OwnedFd>) -> Self {
        Root {
            fd,
            resolve: BENEATH | ResolveFlag::RESOLVE_NO_XDEV,
        }
    }

    /// The host SRC the overlay was layered on. Mounts inside it are
    /// crossed: they are part of what the host sees there.
    pub(super) fn open_lower(src: &Path) -> Result<Self, WorkspaceError> {
        Ok(Root {
            fd: Arc::new(open_dir_path(src)?),
            resolve: BENEATH,
        })
    }

    /// Where changes are applied: nothing may cross a mount or a symlink.
    pub(super) fn open_target(target: &Path) -> Result<Self, WorkspaceError> {
        Ok(Root {
            fd: Arc::new(open_dir_path(target)?),
            resolve: BENEATH | ResolveFlag::RESOLVE_NO_XDEV,
        })
    }

    pub(super) fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    pub(super) fn resolve_flags(&self) -> ResolveFlag {
        self.resolve
    }

    /// Open `rel` (`""` is the root) with `flags`, never following a
    /// symlink, not even as the last component.
    pub(super) fn open(&self, rel: &Path, flags: OFlag) -> Result<OwnedFd, Errno> {
        open_beneath(self.fd(), rel, flags, self.resolve)
    }

    /// Open the directory `rel` for reading its entries and attributes.
    pub(super) fn open_dir(&self, rel: &Path) -> Result<OwnedFd, Errno> {
        self.open(rel, OFlag::O_RDONLY | OFlag::O_DIRECTORY)
    }

    /// Open the parent directory of `rel` (as an `O_PATH` handle for `*at`
    /// calls) and return it with the last component.
    pub(super) fn parent<'p>(&self, rel: &'p Path) -> Result<(OwnedFd, &'p OsStr), Errno> {
        let name = rel.file_name().ok_or(Errno::EINVAL)?;
        let parent = rel.parent().unwrap_or(Path::new(""));
        let fd = self.open(parent, OFlag::O_PATH | OFlag::O_DIRECTORY)?;
        Ok((fd, name))
    }

    /// Open the regular file `rel` for reading. Anything else is refused
    /// before it is opened (opening a device can act on it), and checked
    /// again once open, non-blocking, in case it was swapped in between: a
    /// FIFO can never hang the caller.
    pub(super) fn read_file(&self, rel: &Path) -> io::Result<File> {
        let not_regular = || {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{} is not a regular file", rel.display()),
            )
        };
        let (dir, name) = self.parent(rel)?;
        if kind_of(&lstat_at(dir.as_fd(), name)?) != FileKind::File {
            return Err(not_regular());
        }
        let flags = OFlag::O_RDONLY | OFlag::O_NONBLOCK | OFlag::O_NOCTTY;
        let fd = open_beneath(dir.as_fd(), Path::new(name), flags, self.resolve)?;
        if kind_of(&fstat(fd.as_fd())?) != FileKind::File {
            return Err(not_regular());
        }
        Ok(File::from(fd))
    }

    /// `lstat` of `rel`; `None` when it does not exist.
    pub(super) fn stat(&self, rel: &Path) -> Result<Option<FileStat>, Errno> {
        let Some(name) = rel.file_name() else {
            return fstat(self.fd()).map(Some);
        };
        let parent = self.open(
            rel.parent().unwrap_or(Path::new("")),
            OFlag::O_PATH | OFlag::O_DIRECTORY,
        );
        match parent {
            Ok(dir) => match lstat_at(dir.as_fd(), name) {
                Ok(st) => Ok(Some(st)),
                Err(Errno::ENOENT) => Ok(None),
                Err(e) => Err(e),
            },
            Err(Errno::ENOENT | Errno::ENOTDIR | Errno::ELOOP) => Ok(None),
            Err(e) => Err(e),
        }
    }
}

fn open_dir_path(path: &Path) -> Result<OwnedFd, WorkspaceError> {
    open(
        path,
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| WorkspaceError::io("open directory", path, e))
}

/// `openat2(dir, rel, flags | O_CLOEXEC, resolve)`. `resolve` refuses every
/// symlink, the last component's too (`ELOOP`); `O_NOFOLLOW` is added as well
/// except with `O_PATH`, where it would return the symlink itself.
pub(super) fn open_beneath(
    dir: BorrowedFd<'_>,
    rel: &Path,
    flags: OFlag,
    resolve: ResolveFlag,
) -> Result<OwnedFd, Errno> {
    let rel = if rel.as_os_str().is_empty() {
        Path::new(".")
    } else {
        rel
    };
    let nofollow = if flags.contains(OFlag::O_PATH) {
        OFlag::empty()
    } else {
        OFlag::O_NOFOLLOW
    };
    let how = OpenHow::new()
        .flags(flags | nofollow | OFlag::O_CLOEXEC)
        .resolve(resolve);
    openat2(dir, rel, how)
}

/// `fstatat(dir, name, AT_SYMLINK_NOFOLLOW)`.
pub(super) fn lstat_at(dir: BorrowedFd<'_>, name: &OsStr) -> Result<FileStat, Errno> {
    fstatat(dir, name, AtFlags::AT_SYMLINK_NOFOLLOW)
}

/// The names in the directory open at `dir` (without `.` and `..`), or
/// `Err(None)` when there are more than `limit`.
pub(super) fn names(dir: BorrowedFd<'_>, limit: usize) -> Result<Vec<OsString>, Option<Errno>> {
    let dup = dir
        .try_clone_to_owned()
        .map_err(|e| Errno::from_raw(e.raw_os_error().unwrap_or(libc::EBADF)))?;
    let mut dir = Dir::from_fd(dup)?;
    let mut out = Vec::new();
    for entry in dir.iter() {
        let name = entry?.file_name().to_bytes().to_vec();
        if name == b"." || name == b".." {
            continue;
        }
        if out.len() == limit {
            return Err(None);
        }
        out.push(OsString::from(OsStr::from_bytes(&name)));
    }
    Ok(out)
}

/// The kind of entry `st` describes.
pub(super) fn kind_of(st: &FileStat) -> FileKind {
    match SFlag::from_bits_truncate(st.st_mode & SFlag::S_IFMT.bits()) {
        SFlag::S_IFREG => FileKind::File,
        SFlag::S_IFDIR => FileKind::Dir,
        SFlag::S_IFLNK => FileKind::Symlink,
        _ => FileKind::Other,
    }
}

/// `name` as a C string (directory entry names never hold a NUL).
pub(super) fn c_name(name: &OsStr) -> Result<CString, Errno> {
    CString::new(name.as_bytes()).map_err(|_| Errno::EINVAL)
}
