//! A directory tree read into memory: names, kinds, modes, sizes and symlink
//! targets, never file contents. The overlay upper is read whole (bounded by
//! [`MAX_ENTRIES`] and [`MAX_DEPTH`]) with its overlay metadata; the host side
//! is read one level at a time, or as a bounded snapshot.

use std::collections::BTreeMap;
use std::ffi::{CStr, OsStr, OsString};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{readlinkat, OFlag};
use nix::sys::stat::{fstat, FileStat};

use super::beneath::{kind_of, lstat_at, names, open_beneath, Root};
use super::{FileKind, WorkspaceError, MAX_DEPTH, MAX_ENTRIES};
use crate::sys;

/// One entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Node {
    /// An overlay whiteout (character device 0:0 in the upper): deleted.
    Whiteout,
    /// A regular file.
    File { mode: u32, size: u64 },
    /// A symlink and its target, never followed.
    Symlink { target: PathBuf },
    /// A directory.
    Dir(Dir),
    /// A FIFO, socket or device: `st_mode` (with the type bits) and `st_rdev`.
    Other { st_mode: u32, rdev: u64 },
}

/// A directory and what is in it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct Dir {
    /// Permission bits.
    pub mode: u32,
    /// Overlay: hides everything of the lower below it.
    pub opaque: bool,
    /// Overlay: the lower directory this one was moved from.
    pub redirect: Option<Redirect>,
    pub entries: BTreeMap<OsString, Node>,
}

/// Where a directory was moved from (`*.overlay.redirect`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Redirect {
    /// A path from the overlay root.
    Absolute(PathBuf),
    /// A name in the lower counterpart of the parent directory.
    Sibling(OsString),
}

impl Node {
    pub(super) fn kind(&self) -> FileKind {
        match self {
            Node::File { .. } => FileKind::File,
            Node::Dir(_) => FileKind::Dir,
            Node::Symlink { .. } => FileKind::Symlink,
            Node::Whiteout | Node::Other { .. } => FileKind::Other,
        }
    }
}

impl Dir {
    /// The entry at `rel` below this directory.
    pub(super) fn lookup(&self, rel: &Path) -> Option<&Node> {
        let mut names = rel.iter();
        let mut node = self.entries.get(names.next()?)?;
        for name in names {
            match node {
                Node::Dir(d) => node = d.entries.get(name)?,
                _ => return None,
            }
        }
        Some(node)
    }

    /// Entries below this directory, and the total size of its files.
    pub(super) fn totals(&self) -> (usize, u64) {
        self.entries
            .values()
            .fold((0, 0), |(n, bytes), node| match node {
                Node::Dir(d) => {
                    let (dn, db) = d.totals();
                    (n + 1 + dn, bytes + db)
                }
                Node::File { size, .. } => (n + 1, bytes + size),
                _ => (n + 1, bytes),
            })
    }
}

/// Read the whole overlay upper, with whiteouts, opaque directories and
/// redirects.
pub(super) fn read_upper(upper: &Root) -> Result<Dir, WorkspaceError> {
    read_upper_within(upper, MAX_ENTRIES)
}

/// [`read_upper`] with at most `limit` entries.
pub(super) fn read_upper_within(upper: &Root, limit: usize) -> Result<Dir, WorkspaceError> {
    let fd = upper
        .open_dir(Path::new(""))
        .map_err(|e| WorkspaceError::io("open the overlay upper", Path::new("."), e))?;
    let mut reader = Reader {
        resolve_root: upper,
        overlay: true,
        left: limit,
    };
    reader.dir(fd, Path::new(""), 0).map_err(|e| match e {
        ReadError::Budget => WorkspaceError::TooManyEntries { limit },
        ReadError::Fatal(e) => e,
    })
}

/// The host tree at `rel`, if it is a directory of at most `limit` entries.
pub(super) fn snapshot(
    root: &Root,
    rel: &Path,
    limit: usize,
) -> Result<Option<Dir>, WorkspaceError> {
    let fd = match root.open_dir(rel) {
        Ok(fd) => fd,
        Err(Errno::ENOENT | Errno::ENOTDIR | Errno::ELOOP) => return Ok(None),
        Err(e) => return Err(WorkspaceError::io("open directory", rel, e)),
    };
    let mut reader = Reader {
        resolve_root: root,
        overlay: false,
        left: limit,
    };
    match reader.dir(fd, rel, 0) {
        Ok(dir) => Ok(Some(dir)),
        Err(ReadError::Budget) => Ok(None),
        Err(ReadError::Fatal(WorkspaceError::TooDeep { .. })) => Ok(None),
        Err(ReadError::Fatal(e)) => Err(e),
    }
}

/// Entries of the host directory `rel`, one level deep (directories come
/// back empty): all of them, or only those named in `only`. `None` when
/// `rel` is not a directory.
pub(super) fn level(
    root: &Root,
    rel: &Path,
    only: Option<&BTreeMap<OsString, Node>>,
) -> Result<Option<BTreeMap<OsString, Node>>, WorkspaceError> {
    let fd = match root.open_dir(rel) {
        Ok(fd) => fd,
        Err(Errno::ENOENT | Errno::ENOTDIR | Errno::ELOOP) => return Ok(None),
        Err(e) => return Err(WorkspaceError::io("open directory", rel, e)),
    };
    let wanted = match only {
        Some(upper) => upper.keys().cloned().collect(),
        None => names(fd.as_fd(), usize::MAX)
            .map_err(|e| WorkspaceError::io("read directory", rel, e.unwrap_or(Errno::E2BIG)))?,
    };
    let mut out = BTreeMap::new();
    for name in wanted {
        let path = rel.join(&name);
        let st = match lstat_at(fd.as_fd(), &name) {
            Ok(st) => st,
            Err(Errno::ENOENT) => continue,
            Err(e) => return Err(WorkspaceError::io("stat", &path, e)),
        };
        let node = match kind_of(&st) {
            FileKind::Dir => Node::Dir(Dir {
                mode: st.st_mode & 0o7777,
                ..Dir::default()
            }),
            _ => leaf(fd.as_fd(), &name, &st, false)
                .map_err(|e| WorkspaceError::io("read link", &path, e))?,
        };
        out.insert(name, node);
    }
    Ok(Some(out))
}

enum ReadError {
    /// More entries than allowed.
    Budget,
    Fatal(WorkspaceError),
}

impl From<WorkspaceError> for ReadError {
    fn from(e: WorkspaceError) -> Self {
        ReadError::Fatal(e)
    }
}

struct Reader<'a> {
    resolve_root: &'a Root,
    overlay: bool,
    left: usize,
}

impl Reader<'_> {
    fn dir(&mut self, fd: OwnedFd, rel: &Path, depth: usize) -> Result<Dir, ReadError> {
        let io = |op, e| WorkspaceError::io(op, rel, e);
        let st = fstat(fd.as_fd()).map_err(|e| io("stat", e))?;
        let mut dir = Dir {
            mode: st.st_mode & 0o7777,
            ..Dir::default()
        };
        if self.overlay {
            dir.opaque = overlay_xattr(fd.as_fd(), "opaque", rel)?.as_deref() == Some(b"y");
            if let Some(value) = overlay_xattr(fd.as_fd(), "redirect", rel)? {
                dir.redirect = Some(parse_redirect(&value, rel)?);
            }
        }
        let all = match names(fd.as_fd(), self.left) {
            Ok(all) => all,
            Err(None) => return Err(ReadError::Budget),
            Err(Some(e)) => return Err(io("read directory", e).into()),
        };
        self.left -= all.len();
        for name in all {
            let path = rel.join(&name);
            let st = match lstat_at(fd.as_fd(), &name) {
                Ok(st) => st,
                // Gone since it was listed: then it is not there.
                Err(Errno::ENOENT) => continue,
                Err(e) => return Err(WorkspaceError::io("stat", &path, e).into()),
            };
            let node = if kind_of(&st) == FileKind::Dir {
                if depth + 1 > MAX_DEPTH {
                    return Err(WorkspaceError::TooDeep {
                        path,
                        limit: MAX_DEPTH,
                    }
                    .into());
                }
                let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY;
                let child = open_beneath(fd.as_fd(), Path::new(&name), flags, self.resolve())
                    .map_err(|e| WorkspaceError::io("open directory", &path, e))?;
                Node::Dir(self.dir(child, &path, depth + 1)?)
            } else {
                leaf(fd.as_fd(), &name, &st, self.overlay)
                    .map_err(|e| WorkspaceError::io("read link", &path, e))?
            };
            dir.entries.insert(name, node);
        }
        Ok(dir)
    }

    fn resolve(&self) -> nix::fcntl::ResolveFlag {
        // Children are opened relative to their parent's fd, with the same
        // rules as their root.
        self.resolve_root.resolve_flags()
    }
}

/// A non-directory entry `name` of `dir`, described by `st`.
fn leaf(dir: BorrowedFd<'_>, name: &OsStr, st: &FileStat, overlay: bool) -> Result<Node, Errno> {
    Ok(match kind_of(st) {
        FileKind::File => Node::File {
            mode: st.st_mode & 0o7777,
            size: st.st_size as u64,
        },
        FileKind::Symlink => Node::Symlink {
            target: PathBuf::from(readlinkat(dir, name)?),
        },
        FileKind::Other if overlay && is_whiteout(st) => Node::Whiteout,
        FileKind::Other | FileKind::Dir => Node::Other {
            st_mode: st.st_mode,
            rdev: st.st_rdev,
        },
    })
}

fn is_whiteout(st: &FileStat) -> bool {
    st.st_mode & libc::S_IFMT == libc::S_IFCHR && st.st_rdev == 0
}

/// The overlay attribute `user.overlay.<name>` (written with `userxattr`), or
/// else `trusted.overlay.<name>`.
fn overlay_xattr(
    fd: BorrowedFd<'_>,
    name: &str,
    rel: &Path,
) -> Result<Option<Vec<u8>>, WorkspaceError> {
    for prefix in ["user.overlay.", "trusted.overlay."] {
        let attr = std::ffi::CString::new(format!("{prefix}{name}")).expect("no NUL in the name");
        let mut buf = [0u8; libc::PATH_MAX as usize];
        match sys::fgetxattr(fd, &attr, &mut buf) {
            Ok(Some(n)) => return Ok(Some(buf[..n].to_vec())),
            Ok(None) => {}
            // No permission to read trusted.*: then it is not ours to honour.
            Err(Errno::EPERM | Errno::EACCES) if prefix.starts_with("trusted") => {}
            Err(Errno::ERANGE) => {
                return Err(WorkspaceError::Malformed {
                    path: rel.to_path_buf(),
                    reason: format!("{prefix}{name} is longer than PATH_MAX"),
                })
            }
            Err(e) => return Err(WorkspaceError::io("read the overlay attributes of", rel, e)),
        }
    }
    Ok(None)
}

/// A redirect: `/a/b` from the overlay root, or one sibling name. Anything
/// with `.`, `..` or empty components is not something the kernel writes.
fn parse_redirect(value: &[u8], rel: &Path) -> Result<Redirect, WorkspaceError> {
    let malformed = |why: &str| WorkspaceError::Malformed {
        path: rel.to_path_buf(),
        reason: format!("redirect {:?} {why}", String::from_utf8_lossy(value)),
    };
    let value = CStr::from_bytes_until_nul(value)
        .map(|c| c.to_bytes())
        .unwrap_or(value);
    let path = Path::new(OsStr::from_bytes(value));
    let normal = |p: &Path| {
        value
            .split(|&b| b == b'/')
            .skip(usize::from(p.is_absolute()))
            .all(|c| !c.is_empty() && c != b"." && c != b"..")
    };
    if value.is_empty() || !normal(path) {
        return Err(malformed("is not a plain path"));
    }
    if path.is_absolute() {
        let rel: PathBuf = path
            .components()
            .filter(|c| matches!(c, Component::Normal(_)))
            .collect();
        return Ok(Redirect::Absolute(rel));
    }
    if value.contains(&b'/') {
        return Err(malformed("is relative but names more than one component"));
    }
    Ok(Redirect::Sibling(OsString::from(OsStr::from_bytes(value))))
}
