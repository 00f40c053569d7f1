//! The comparison: the merged view (upper over the host directory) against
//! the host directory. Only what the upper holds is walked; everything else
//! is the host's own and unchanged.
//!
//! Paths are merged-view paths. Each upper directory is compared with its
//! *origin* on the host: the same path, or for a redirected (renamed)
//! directory the path it came from. Below an opaque directory the host's
//! entries are hidden, so each one the upper does not have is deleted.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::ffi::OsString;
use std::io::Read;
use std::path::{Component, Path, PathBuf};

use super::beneath::{kind_of, Root};
use super::tree::{self, Dir, Node, Redirect};
use super::{Change, ChangeKind, FileKind, WorkspaceError};

/// Host entries read, in total, to recognise moved directories.
const MOVE_BUDGET: usize = 1_000_000;

/// The changes, and the renamed directories whose whole tree is in the upper.
pub(super) struct Found {
    pub changes: Vec<Change>,
    pub copied: Vec<PathBuf>,
}

pub(super) fn diff(upper_root: &Root, upper: &Dir, lower: &Root) -> Result<Found, WorkspaceError> {
    let mut vacated = HashSet::new();
    redirect_sources(upper, Path::new(""), Some(Path::new("")), &mut vacated);
    let mut walk = Walk {
        upper: upper_root,
        lower,
        vacated,
        changes: Vec::new(),
        origins: HashMap::new(),
    };
    let root = lower
        .stat(Path::new(""))
        .map_err(|e| WorkspaceError::io("stat", Path::new("."), e))?
        .map_or(upper.mode, |st| st.st_mode & 0o7777);
    if root != upper.mode {
        let mut c = change(
            Path::new("."),
            ChangeKind::Modified,
            &Node::Dir(Dir::default()),
        );
        c.mode = Some(upper.mode);
        c.mode_changed = true;
        walk.changes.push(c);
    }
    walk.dir(upper, Path::new(""), Some(Path::new("")), upper.opaque)?;
    let copied = walk.match_moves(upper)?;
    let mut changes = walk.changes;
    let rank = |c: &Change| u8::from(c.kind != ChangeKind::Deleted);
    changes.sort_by(|a, b| a.path.cmp(&b.path).then(rank(a).cmp(&rank(b))));
    Ok(Found { changes, copied })
}

/// Whether a symlink at `link` pointing to `target` leads out of the tree,
/// judged on the text alone: absolute, or more `..` than it is deep.
pub(super) fn escapes(link: &Path, target: &Path) -> bool {
    let mut depth = link.parent().map_or(0, |p| p.components().count());
    for part in target.components() {
        match part {
            Component::Normal(_) => depth += 1,
            Component::CurDir => {}
            Component::ParentDir => match depth.checked_sub(1) {
                Some(d) => depth = d,
                None => return true,
            },
            Component::RootDir | Component::Prefix(_) => return true,
        }
    }
    false
}

/// The host path a redirect names.
fn redirect_source(r: &Redirect, parent_origin: Option<&Path>, parent: &Path) -> PathBuf {
    match r {
        Redirect::Absolute(p) => p.clone(),
        Redirect::Sibling(name) => parent_origin.unwrap_or(parent).join(name),
    }
}

/// Every host path a redirected directory was moved away from: those are
/// gone from where they were.
fn redirect_sources(dir: &Dir, path: &Path, origin: Option<&Path>, out: &mut HashSet<PathBuf>) {
    for (name, node) in &dir.entries {
        let Node::Dir(d) = node else { continue };
        let child_origin = match &d.redirect {
            Some(r) => {
                let from = redirect_source(r, origin, path);
                out.insert(from.clone());
                Some(from)
            }
            None => origin.map(|o| o.join(name)),
        };
        redirect_sources(d, &path.join(name), child_origin.as_deref(), out);
    }
}

/// A change at `path` with nothing known of its entry but its kind.
fn bare(path: &Path, kind: ChangeKind, file_kind: FileKind) -> Change {
    Change {
        path: path.to_path_buf(),
        kind,
        file_kind,
        mode: None,
        size: None,
        content_changed: false,
        mode_changed: false,
        link_target: None,
        escapes: false,
    }
}

/// A change describing the new entry `node` at `path`.
pub(super) fn change(path: &Path, kind: ChangeKind, node: &Node) -> Change {
    let mut c = bare(path, kind, node.kind());
    match node {
        Node::File { mode, size } => {
            c.mode = Some(*mode);
            c.size = Some(*size);
        }
        Node::Dir(d) => c.mode = Some(d.mode),
        Node::Symlink { target } => {
            c.escapes = escapes(path, target);
            c.link_target = Some(target.clone());
        }
        Node::Other { st_mode, .. } => c.mode = Some(st_mode & 0o7777),
        Node::Whiteout => {}
    }
    c
}

struct Walk<'a> {
    upper: &'a Root,
    lower: &'a Root,
    /// Host paths moved away by a redirect.
    vacated: HashSet<PathBuf>,
    changes: Vec<Change>,
    /// The host path of each deleted entry (they differ below a redirect).
    origins: HashMap<PathBuf, PathBuf>,
}

impl Walk<'_> {
    /// Compare the upper directory `dir` at `path` with its host origin.
    /// `hidden`: the host's entries are not part of the merged view.
    fn dir(
        &mut self,
        dir: &Dir,
        path: &Path,
        origin: Option<&Path>,
        hidden: bool,
    ) -> Result<(), WorkspaceError> {
        // Where the host's entries show through, only those the upper also
        // names matter; where they are hidden, each one is a deletion.
        let only = (!hidden).then_some(&dir.entries);
        let below = match origin {
            Some(o) => tree::level(self.lower, o, only)?.unwrap_or_default(),
            None => BTreeMap::new(),
        };
        for (name, node) in &dir.entries {
            let child = path.join(name);
            let child_origin = origin
                .map(|o| o.join(name))
                .filter(|o| !self.vacated.contains(o));
            let lower = child_origin
                .as_deref()
                .and_then(|o| below.get(name).map(|l| (o, l)));
            match node {
                Node::Whiteout => {
                    if let Some((o, l)) = lower {
                        self.deleted(&child, o, l);
                    }
                }
                Node::Dir(d) if d.redirect.is_some() => {
                    self.redirected(node, d, &child, (path, origin), lower)?
                }
                _ => match lower {
                    None => self.created(node, &child)?,
                    Some((o, l)) => self.compare(node, l, &child, o, hidden)?,
                },
            }
        }
        if let (true, Some(origin)) = (hidden, origin) {
            for (name, l) in &below {
                let lo = origin.join(name);
                if !dir.entries.contains_key(name) && !self.vacated.contains(&lo) {
                    self.deleted(&path.join(name), &lo, l);
                }
            }
        }
        Ok(())
    }

    /// An entry with no host counterpart.
    fn created(&mut self, node: &Node, path: &Path) -> Result<(), WorkspaceError> {
        match node {
            Node::Whiteout => {}
            Node::Dir(d) => {
                self.changes.push(change(path, ChangeKind::Created, node));
                self.dir(d, path, None, true)?;
            }
            _ => self.changes.push(change(path, ChangeKind::Created, node)),
        }
        Ok(())
    }

    fn deleted(&mut self, path: &Path, origin: &Path, was: &Node) {
        self.changes
            .push(bare(path, ChangeKind::Deleted, was.kind()));
        self.origins
            .insert(path.to_path_buf(), origin.to_path_buf());
    }

    /// A directory moved from elsewhere (`*.overlay.redirect`).
    fn redirected(
        &mut self,
        node: &Node,
        dir: &Dir,
        path: &Path,
        (parent, parent_origin): (&Path, Option<&Path>),
        lower: Option<(&Path, &Node)>,
    ) -> Result<(), WorkspaceError> {
        let redirect = dir.redirect.as_ref().expect("only called for redirects");
        let from = redirect_source(redirect, parent_origin, parent);
        // Whatever the host has where the directory landed goes first.
        if let Some((o, l)) = lower {
            self.deleted(path, o, l);
        }
        let source = self
            .lower
            .stat(&from)
            .map_err(|e| WorkspaceError::io("stat", &from, e))?;
        match source {
            Some(st) if kind_of(&st) == FileKind::Dir => {
                let mut c = change(path, ChangeKind::Renamed { from: from.clone() }, node);
                c.mode_changed = dir.mode != st.st_mode & 0o7777;
                self.changes.push(c);
                self.dir(dir, path, Some(&from), dir.opaque)
            }
            // Nothing to move: the kernel shows it as a new directory.
            _ => {
                self.changes.push(change(path, ChangeKind::Created, node));
                self.dir(dir, path, None, true)
            }
        }
    }

    /// An entry present on both sides.
    fn compare(
        &mut self,
        node: &Node,
        below: &Node,
        path: &Path,
        origin: &Path,
        hidden: bool,
    ) -> Result<(), WorkspaceError> {
        let modified = |content_changed: bool, mode_changed: bool| {
            let mut c = change(path, ChangeKind::Modified, node);
            c.content_changed = content_changed;
            c.mode_changed = mode_changed;
            c
        };
        match (node, below) {
            (Node::Dir(u), Node::Dir(l)) => {
                if u.mode != l.mode {
                    self.changes.push(modified(false, true));
                }
                self.dir(u, path, Some(origin), hidden || u.opaque)?;
            }
            (Node::File { mode: um, size: us }, Node::File { mode: lm, size: ls }) => {
                let content = us != ls || !self.same_bytes(path, origin);
                if content || um != lm {
                    self.changes.push(modified(content, um != lm));
                }
            }
            (Node::Symlink { target: ut }, Node::Symlink { target: lt }) => {
                if ut != lt {
                    self.changes.push(modified(true, false));
                }
            }
            (
                Node::Other {
                    st_mode: a,
                    rdev: ra,
                },
                Node::Other {
                    st_mode: b,
                    rdev: rb,
                },
            ) => {
                let content = a & libc::S_IFMT != b & libc::S_IFMT || ra != rb;
                let mode = a & 0o7777 != b & 0o7777;
                if content || mode {
                    self.changes.push(modified(content, mode));
                }
            }
            // A different kind of entry: the old one is deleted, the new one
            // created in its place.
            _ => {
                self.deleted(path, origin, below);
                self.created(node, path)?;
            }
        }
        Ok(())
    }

    /// Whether the upper file `path` and the host file `origin` hold the same
    /// bytes. Anything unreadable counts as different, so it is listed.
    fn same_bytes(&self, path: &Path, origin: &Path) -> bool {
        let (Ok(mut a), Ok(mut b)) = (self.upper.read_file(path), self.lower.read_file(origin))
        else {
            return false;
        };
        let (mut x, mut y) = (vec![0u8; 64 * 1024], vec![0u8; 64 * 1024]);
        loop {
            let Ok(n) = read_full(&mut a, &mut x) else {
                return false;
            };
            let Ok(m) = read_full(&mut b, &mut y) else {
                return false;
            };
            if x[..n] != y[..m] {
                return false;
            }
            if n == 0 {
                return true;
            }
        }
    }

    /// A move of a host directory falls back to copy and delete when the
    /// overlay cannot rename it (`EXDEV`): a created directory whose whole
    /// tree equals a deleted one is that directory, renamed.
    fn match_moves(&mut self, upper: &Dir) -> Result<Vec<PathBuf>, WorkspaceError> {
        let mut sources: Vec<(PathBuf, PathBuf)> = self
            .changes
            .iter()
            .filter(|c| c.kind == ChangeKind::Deleted && c.file_kind == FileKind::Dir)
            .map(|c| (c.path.clone(), self.origins[&c.path].clone()))
            .collect();
        let created: Vec<PathBuf> = self
            .changes
            .iter()
            .filter(|c| c.kind == ChangeKind::Created && c.file_kind == FileKind::Dir)
            .map(|c| c.path.clone())
            .collect();
        let mut budget = MOVE_BUDGET;
        let mut copied: Vec<PathBuf> = Vec::new();
        for path in created {
            if sources.is_empty() {
                break;
            }
            if copied.iter().any(|c| path.starts_with(c)) {
                continue;
            }
            let Some(Node::Dir(node)) = upper.lookup(&path) else {
                continue;
            };
            let totals = node.totals();
            // Same name first: `mv a b/a` is the common move.
            let mut order: Vec<usize> = (0..sources.len()).collect();
            order.sort_by_key(|&i| (sources[i].1.file_name() != path.file_name(), i));
            let mut found = None;
            for i in order {
                let Some(left) = budget.checked_sub(totals.0 + 1) else {
                    break;
                };
                budget = left;
                let Some(snap) = tree::snapshot(self.lower, &sources[i].1, totals.0)? else {
                    continue;
                };
                if snap.totals() == totals
                    && same_shape(node, &snap)
                    && self.same_files(node, &path, &sources[i].1)
                {
                    found = Some(i);
                    break;
                }
            }
            let Some(i) = found else { continue };
            let (deleted, from) = sources.remove(i);
            self.changes.retain(|c| {
                let is_source = c.kind == ChangeKind::Deleted && c.path == deleted;
                let inside = c.path.starts_with(&path) && c.path != path;
                !is_source && !inside
            });
            if let Some(c) = self
                .changes
                .iter_mut()
                .find(|c| c.path == path && c.kind == ChangeKind::Created)
            {
                c.kind = ChangeKind::Renamed { from };
            }
            copied.push(path);
        }
        Ok(copied)
    }

    /// Whether every file in the upper tree `dir` at `path` has the bytes of
    /// its counterpart under `origin` (the shapes already match).
    fn same_files(&self, dir: &Dir, path: &Path, origin: &Path) -> bool {
        dir.entries.iter().all(|(name, node)| {
            let (p, o) = (path.join(name), origin.join(name));
            match node {
                Node::File { .. } => self.same_bytes(&p, &o),
                Node::Dir(d) => self.same_files(d, &p, &o),
                _ => true,
            }
        })
    }
}

/// Same names, kinds, modes, sizes and link targets all the way down.
fn same_shape(upper: &Dir, host: &Dir) -> bool {
    upper.mode == host.mode
        && upper.redirect.is_none()
        && upper.entries.len() == host.entries.len()
        && upper.entries.iter().zip(&host.entries).all(
            |((un, u), (hn, h)): ((&OsString, &Node), (&OsString, &Node))| {
                un == hn
                    && match (u, h) {
                        (Node::Dir(a), Node::Dir(b)) => same_shape(a, b),
                        (Node::Whiteout, _) | (Node::Dir(_), _) => false,
                        (a, b) => a == b,
                    }
            },
        )
}

/// Read until `buf` is full or the file ends.
fn read_full(file: &mut std::fs::File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match file.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}
