//! The overlay of `--overlay SRC[:DST]` keeps every write in its tmpfs upper
//! directory; the host keeps an fd of that directory after the sandbox ends.
//! [`WorkspaceDiff::scan`] compares the merged view (upper over SRC) with SRC
//! and lists the changes; a reviewer picks some and [`WorkspaceDiff::apply`]
//! writes them onto SRC.
//!
//! The upper is written by the agent, so it is read as hostile data: nothing
//! in it is followed, FIFOs are never opened for reading, and its size and
//! depth are bounded. Applying never follows a symlink either: every path in
//! the target is resolved beneath the target root with symlinks refused, so a
//! symlink planted in the target cannot send a write or a delete elsewhere.
//!
//! ```no_run
//! # use std::{path::Path, sync::Arc, os::fd::OwnedFd};
//! # fn demo(upper: Arc<OwnedFd>) -> Result<(), stockade::workspace::WorkspaceError> {
//! use stockade::workspace::{ChangeKind, WorkspaceDiff};
//! let diff = WorkspaceDiff::scan(upper, Path::new("/home/me/proj"), Path::new("/work"))?;
//! for c in &diff.changes {
//!     println!("{:?} {}", c.kind, c.path.display());
//! }
//! // Keep everything except deletions.
//! let report = diff.apply(|c| !matches!(c.kind, ChangeKind::Deleted))?;
//! for (path, why) in &report.skipped {
//!     eprintln!("not applied: {}: {why}", path.display());
//! }
//! # Ok(()) }
//! ```

mod apply;
mod beneath;
mod diff;
mod tree;

#[cfg(test)]
mod tests;

use std::io::{self, Read};
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use nix::errno::Errno;
use serde::Serialize;

use beneath::Root;

/// The most entries [`WorkspaceDiff::scan`] reads from an upper directory.
pub const MAX_ENTRIES: usize = 100_000;
/// The deepest directory nesting [`WorkspaceDiff::scan`] follows.
pub const MAX_DEPTH: usize = 256;

/// What happened to a path.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ChangeKind {
    /// New; a created directory is followed by its content.
    Created,
    /// Same kind of entry with new content or permission bits.
    Modified,
    /// Gone; a deleted directory is listed once, for its whole tree.
    Deleted,
    /// A directory moved from `from` (relative to the overlay root). Its
    /// content changes, if any, follow as separate entries under the new path.
    Renamed {
        /// The old path.
        #[serde(serialize_with = "lossy::path")]
        from: PathBuf,
    },
}

/// The kind of entry a change is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FileKind {
    /// A regular file.
    File,
    /// A directory.
    Dir,
    /// A symbolic link.
    Symlink,
    /// A FIFO, socket or device node: listed, never applied.
    Other,
}

/// One change in the workspace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Change {
    /// Path relative to the overlay root (`.` for the root itself).
    #[serde(serialize_with = "lossy::path")]
    pub path: PathBuf,
    /// What happened.
    #[serde(flatten)]
    pub kind: ChangeKind,
    /// The new entry's kind (the old one's for a deletion).
    pub file_kind: FileKind,
    /// Permission bits (`0o7777`) of the new entry; `None` for deletions and
    /// symlinks.
    pub mode: Option<u32>,
    /// Size of a new regular file.
    pub size: Option<u64>,
    /// Modified only: the content (or symlink target) differs.
    pub content_changed: bool,
    /// Modified only: the permission bits differ.
    pub mode_changed: bool,
    /// The target of a new symlink.
    #[serde(serialize_with = "lossy::optional")]
    pub link_target: Option<PathBuf>,
    /// A symlink whose target leaves the tree (absolute, or `..` past the
    /// root). Such links are listed but never applied.
    pub escapes: bool,
}

/// The result of applying a selection.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ApplyReport {
    /// Paths of the changes applied, in the order they were applied.
    #[serde(serialize_with = "lossy::paths")]
    pub applied: Vec<PathBuf>,
    /// Changes that could not be applied, with the reason.
    #[serde(serialize_with = "lossy::skipped")]
    pub skipped: Vec<(PathBuf, String)>,
}

/// Paths as JSON strings. The agent can name files with bytes that are not
/// UTF-8; those bytes show as U+FFFD instead of failing the whole report.
mod lossy {
    use std::path::{Path, PathBuf};

    use serde::Serializer;

    pub fn path<S: Serializer>(p: &Path, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&p.to_string_lossy())
    }

    pub fn optional<S: Serializer>(p: &Option<PathBuf>, s: S) -> Result<S::Ok, S::Error> {
        match p {
            Some(p) => s.serialize_some(&*p.to_string_lossy()),
            None => s.serialize_none(),
        }
    }

    pub fn paths<S: Serializer>(v: &[PathBuf], s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(v.iter().map(|p| p.to_string_lossy()))
    }

    pub fn skipped<S: Serializer>(v: &[(PathBuf, String)], s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(v.iter().map(|(p, why)| (p.to_string_lossy(), why)))
    }
}

/// Why a scan (or the start of an apply) failed.
#[derive(Debug, thiserror::Error)]
pub enum WorkspaceError {
    /// A system call on a workspace path failed.
    #[error("workspace: cannot {op} {}: {errno}", path.display())]
    Io {
        /// The operation, e.g. `read directory`.
        op: &'static str,
        /// The path, relative to the root it was resolved under (or absolute).
        path: PathBuf,
        /// The error.
        errno: Errno,
    },
    /// The upper holds more entries than [`MAX_ENTRIES`].
    #[error("workspace: the sandbox wrote more than {limit} entries; too many to review")]
    TooManyEntries {
        /// The limit.
        limit: usize,
    },
    /// The upper nests directories deeper than [`MAX_DEPTH`].
    #[error("workspace: {} is nested deeper than {limit} directories", path.display())]
    TooDeep {
        /// The first directory past the limit.
        path: PathBuf,
        /// The limit.
        limit: usize,
    },
    /// Overlay metadata that the kernel would not have written.
    #[error("workspace: malformed overlay metadata on {}: {reason}", path.display())]
    Malformed {
        /// The entry.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
}

impl WorkspaceError {
    fn io(op: &'static str, path: &Path, errno: Errno) -> Self {
        WorkspaceError::Io {
            op,
            path: path.to_path_buf(),
            errno,
        }
    }
}

/// The changes a sandbox made to one overlay workspace.
#[derive(Debug)]
pub struct WorkspaceDiff {
    /// The host directory the overlay was made from (and `apply` writes to).
    pub src: PathBuf,
    /// Where the sandbox saw it.
    pub dst: PathBuf,
    /// The changes, sorted by path (a deletion before a creation at the same
    /// path, when an entry changed kind).
    pub changes: Vec<Change>,
    upper: Root,
    tree: tree::Dir,
    /// Renamed directories whose whole tree is also a copy in the upper
    /// (moves that fell back to copy and delete), so apply can create them
    /// when their source is gone.
    copied: Vec<PathBuf>,
}

impl WorkspaceDiff {
    /// Compare the overlay upper directory `upper` (any fd of it, `O_PATH`
    /// will do) with the host directory `src` it was layered on.
    pub fn scan(upper: Arc<OwnedFd>, src: &Path, dst: &Path) -> Result<Self, WorkspaceError> {
        let upper = Root::upper(upper);
        let lower = Root::open_lower(src)?;
        let tree = tree::read_upper(&upper)?;
        let found = diff::diff(&upper, &tree, &lower)?;
        Ok(WorkspaceDiff {
            src: src.to_path_buf(),
            dst: dst.to_path_buf(),
            changes: found.changes,
            upper,
            tree,
            copied: found.copied,
        })
    }

    /// The new contents of the regular file at `path` (relative to the
    /// overlay root) as the sandbox left it: for created and modified files,
    /// and files inside created or renamed directories.
    pub fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        let mut file = self.upper.read_file(path)?;
        let mut out = Vec::new();
        file.read_to_end(&mut out)?;
        Ok(out)
    }

    /// Apply the changes `select` accepts to [`src`](Self::src).
    ///
    /// Each change is applied on its own (a file is replaced atomically) and
    /// one that cannot be applied is skipped with a reason while the others
    /// go on: see [`ApplyReport`]. An error means the target could not be
    /// opened at all.
    ///
    /// A created entry never replaces one that appeared in the target since
    /// the scan; a modified entry is skipped if the target's is now of
    /// another kind (a symlink, say), and a modified file replaces the old
    /// one by name, so a hard link there is never written through. Deleting a
    /// directory deletes what it holds now. New entries belong to the caller;
    /// setuid and setgid bits are dropped; symlinks that leave the tree and
    /// special files are never created.
    pub fn apply(&self, select: impl Fn(&Change) -> bool) -> Result<ApplyReport, WorkspaceError> {
        self.apply_to(&self.src, select)
    }

    /// [`apply`](Self::apply) onto another directory, e.g. a review copy.
    pub fn apply_to(
        &self,
        target: &Path,
        select: impl Fn(&Change) -> bool,
    ) -> Result<ApplyReport, WorkspaceError> {
        let target = Root::open_target(target)?;
        let chosen: Vec<&Change> = self.changes.iter().filter(|c| select(c)).collect();
        Ok(apply::Applier::new(self, &target).run(&chosen))
    }
}
