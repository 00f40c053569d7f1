//! git in writable workspaces.
//!
//! A `--rw` grant of a repository hands the command the repository's git
//! directory too, and some files there make git run programs: hooks
//! (`hooks/`), and settings such as `core.hooksPath`, `core.fsmonitor` or
//! `filter.*` in `config`, `config.worktree` and the files they include. A
//! `commondir` file, even in an ordinary `.git`, sends git to another
//! directory for all of these. A command that writes any of them has the
//! user's next git command on the host run what it chose.
//!
//! [`GitMode::Protect`] (the default) keeps them as they are: on top of the
//! grants, each becomes a read-only mount of itself ([`MountOp::Pin`]), and
//! every directory on the way to them is pinned too, so nothing can be
//! written (`EROFS`), nor renamed away and recreated (`EBUSY`), nor created
//! where it is missing: a missing `hooks` is first created as an empty
//! directory, a missing `commondir` as [`SAME_DIR`] (what git assumes
//! without the file), a missing config file git would read as an empty one;
//! these stay on the host. The command cannot undo a mount (no capabilities,
//! and seccomp refuses the mount system calls). Landlock could not do this:
//! its rights add up along a path, so nothing beneath a writable grant can be
//! made read-only by it. Everything else stays writable, so `git add`,
//! `git commit`, `git checkout -b` and `git worktree add` work.
//!
//! A linked worktree (its `.git` is a file, `gitdir: <dir>`) needs its own
//! git directory and the repository's common one to commit. Both are found
//! here, checked the way git lays them out (the back-pointer in the
//! worktree's git directory must name this worktree), and the common one is
//! granted at the path the `.git` file names, with the same protection.
//!
//! [`GitMode::ReadOnly`] makes the whole git directory (and a worktree's
//! common one) read-only; [`GitMode::Off`] does nothing.
//!
//! Only the repository at the root of a grant is handled, and what the plan
//! cannot vouch for is refused; see the README ("git in writable
//! workspaces") for what remains writable.

use std::fmt;
use std::fs::{self, File, Metadata};
use std::io::{self, Read};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Component, Path, PathBuf};
use std::str::FromStr;

use super::plan::{Missing, MountOp};
use crate::error::Error;
use crate::policy::{Fs, Mount};

/// What a missing `commondir` is created with: "this directory", the same
/// as no file for git and libgit2, except that `git rev-parse
/// --git-common-dir` prints the path absolute. git counts any entry there as
/// a `commondir` (even a dangling symlink, which it then fails to read), so
/// nothing that reads as absent can hold the name.
pub const SAME_DIR: &str = ".\n";

/// The largest `.git` file, `commondir` or `gitdir` pointer read.
const MAX_POINTER: u64 = 4096;

/// How the git repository at the root of a writable grant is handled.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum GitMode {
    /// The default: hooks, config files and the pointers git follows to
    /// other directories are read-only; objects, refs, the index and logs
    /// stay writable, so commits work.
    #[default]
    Protect,
    /// The whole git directory is read-only: `git status` and `git log`
    /// work, `git commit` fails.
    ReadOnly,
    /// No special handling. Unsafe: the command can plant a hook or a
    /// setting that runs on the user's next git command.
    Off,
}

impl FromStr for GitMode {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        match s {
            "protect" => Ok(GitMode::Protect),
            "readonly" => Ok(GitMode::ReadOnly),
            "off" => Ok(GitMode::Off),
            other => Err(Error::policy(format!(
                "invalid --git `{other}`: expected protect, readonly or off"
            ))),
        }
    }
}

impl fmt::Display for GitMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            GitMode::Protect => "protect",
            GitMode::ReadOnly => "readonly",
            GitMode::Off => "off",
        })
    }
}

/// What git handling adds to a sandbox's mounts.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct GitMounts {
    /// Grants of linked worktrees' common git directories, to add to the
    /// filesystem view (they are mounted with the other grants).
    pub grants: Vec<Mount>,
    /// Pins, outermost first, to apply after every grant.
    pub pins: Vec<MountOp>,
}

/// Find the repositories at the roots of `fs`'s writable grants (`fs` is
/// validated: sources are canonical) and what `mode` needs for them. Reads
/// the host and changes nothing there.
pub(crate) fn plan(fs: &Fs, mode: GitMode) -> Result<GitMounts, Error> {
    let mut planner = Planner {
        fs,
        mode,
        out: GitMounts::default(),
        overlay: false,
    };
    if mode != GitMode::Off {
        for m in fs.mounts() {
            if let Mount::ReadWrite { src, dst } | Mount::Overlay { src, dst, .. } = m {
                planner.overlay = matches!(m, Mount::Overlay { .. });
                planner.grant(src, dst)?;
            }
        }
    }
    let mut out = planner.out;
    out.pins = ordered(out.pins);
    Ok(out)
}

/// One pin per path (read-only wins), parents before children.
fn ordered(pins: Vec<MountOp>) -> Vec<MountOp> {
    let mut out: Vec<MountOp> = Vec::with_capacity(pins.len());
    for op in pins {
        let MountOp::Pin { dst, ro, .. } = &op else {
            continue;
        };
        let same = out
            .iter_mut()
            .find(|o| matches!(o, MountOp::Pin { dst: d, .. } if d == dst));
        match same {
            Some(MountOp::Pin { ro: kept, .. }) => *kept |= *ro,
            _ => out.push(op),
        }
    }
    out.sort_by_key(|o| match o {
        MountOp::Pin { dst, .. } => dst.components().count(),
        _ => 0,
    });
    out
}

/// A git directory: where it is on the host and inside.
struct Place {
    host: PathBuf,
    inside: PathBuf,
}

impl Place {
    fn join(&self, name: impl AsRef<Path>) -> Place {
        Place {
            host: self.host.join(name.as_ref()),
            inside: self.inside.join(name.as_ref()),
        }
    }
}

struct Planner<'a> {
    fs: &'a Fs,
    mode: GitMode,
    out: GitMounts,
    /// The grant being looked at is an overlay: what it adds is one too.
    overlay: bool,
}

impl Planner<'_> {
    /// The repository at the root of the writable grant `src` -> `dst`.
    fn grant(&mut self, src: &Path, dst: &Path) -> Result<(), Error> {
        if !src.is_dir() {
            return Ok(());
        }
        let dot = Place {
            host: src.join(".git"),
            inside: dst.join(".git"),
        };
        // Another grant shows something else there: that one decides.
        if self.all_grants().any(|m| m.dst() == dot.inside) {
            return Ok(());
        }
        match lstat(&dot.host)? {
            None if looks_like_git_dir(src) => {
                // The grant is itself a git directory (`--rw repo/.git`, a bare
                // repository): it is a mount already.
                let root = Place {
                    host: src.to_path_buf(),
                    inside: dst.to_path_buf(),
                };
                self.git_dir(&root, true)
            }
            None => Ok(()),
            // Not a repository (git would look further up): nothing of git's.
            Some(md) if md.is_dir() && !looks_like_git_dir(&dot.host) => Ok(()),
            Some(md) if md.is_dir() => self.git_dir(&dot, false),
            Some(md) if md.is_file() => self.git_file(src, dst),
            Some(md) if md.file_type().is_symlink() => Err(Error::policy(format!(
                "{} is a symlink: --git {} cannot keep a git directory reached through a symlink read-only; \
                 grant the directory it points to, or use --git off",
                dot.host.display(),
                self.mode
            ))),
            Some(_) => Err(refuse_kind(&dot.host)),
        }
    }

    /// A repository's own git directory (or a linked worktree's common one)
    /// at `dir`. `mounted`: `dir` is a grant's root, a mount already.
    fn git_dir(&mut self, dir: &Place, mounted: bool) -> Result<(), Error> {
        match self.mode {
            GitMode::Off => Ok(()),
            GitMode::ReadOnly => {
                self.pin(&dir.inside, true, Missing::Skip);
                self.readonly_includes(dir)
            }
            GitMode::Protect => {
                if !mounted {
                    self.pin(&dir.inside, false, Missing::Skip);
                }
                self.protect_common(dir)
            }
        }
    }

    /// The protected files of a common git directory.
    fn protect_common(&mut self, dir: &Place) -> Result<(), Error> {
        let commondir = dir.host.join("commondir");
        if lstat(&commondir)?.is_some() && !is_same_dir(&commondir) {
            return Err(Error::policy(format!(
                "{} sends git to another directory: --git {} does not handle this layout; \
                 grant that directory's repository instead, or use --git off",
                commondir.display(),
                self.mode
            )));
        }
        self.keep(dir, "commondir", Missing::File(SAME_DIR.into()))?;
        self.keep(dir, "config", Missing::File(String::new()))?;
        self.keep(dir, "hooks", Missing::EmptyDir)?;
        let per_worktree_config = worktree_config_enabled(&dir.host.join("config"));
        self.keep(dir, "config.worktree", empty_file_if(per_worktree_config))?;
        // Submodules' git directories: their config and hooks run too.
        self.keep(dir, "modules", Missing::Skip)?;
        self.includes(dir, &["config", "config.worktree"], true)?;
        self.worktrees(dir, per_worktree_config)
    }

    /// What the config files of `dir` (named `configs`) include: a file in
    /// `dir` itself is kept read-only like the config (created empty if
    /// missing, as git would read one created later) when `pin_here`, and
    /// is read-only already otherwise; anywhere else, it must not be
    /// writable inside.
    fn includes(&mut self, dir: &Place, configs: &[&str], pin_here: bool) -> Result<(), Error> {
        for config in configs {
            for target in include::included(&dir.host.join(config)) {
                if pin_here && target.parent() == Some(dir.host.as_path()) {
                    if let Some(name) = target.file_name().and_then(|n| n.to_str()) {
                        self.keep(dir, name, Missing::File(String::new()))?;
                        continue;
                    }
                }
                if !pin_here && target.starts_with(&dir.host) {
                    continue;
                }
                if let Some(src) = self.writable_sources().find(|s| target.starts_with(s)) {
                    return Err(Error::policy(format!(
                        "{}/{config} includes {}, which the sandbox could write (it is in the grant {}): \
                         git would read what it writes there; move the file out of the workspace, or use --git off",
                        dir.host.display(),
                        target.display(),
                        src.display()
                    )));
                }
            }
        }
        Ok(())
    }

    /// [`Planner::includes`] for a git directory that is read-only as a
    /// whole, and for its linked worktrees' `config.worktree`.
    fn readonly_includes(&mut self, dir: &Place) -> Result<(), Error> {
        self.includes(dir, &["config", "config.worktree"], false)?;
        let list = dir.join("worktrees");
        if let Ok(entries) = fs::read_dir(&list.host) {
            for entry in entries.flatten() {
                self.includes(&list.join(entry.file_name()), &["config.worktree"], false)?;
            }
        }
        Ok(())
    }

    /// `worktrees/<id>/`: each linked worktree's git directory, whose
    /// pointers and config the user's git follows when working there.
    fn worktrees(&mut self, dir: &Place, per_worktree_config: bool) -> Result<(), Error> {
        let list = dir.join("worktrees");
        match lstat(&list.host)? {
            None => return Ok(()),
            Some(md) if md.is_dir() => {}
            Some(_) => return Err(refuse_kind(&list.host)),
        }
        self.pin(&list.inside, false, Missing::Skip);
        let entries = fs::read_dir(&list.host).map_err(|e| read_error(&list.host, e))?;
        for entry in entries {
            let entry = entry.map_err(|e| read_error(&list.host, e))?;
            let one = list.join(entry.file_name());
            match lstat(&one.host)? {
                Some(md) if md.is_dir() => {}
                // git ignores anything else here.
                _ => continue,
            }
            if lstat(&one.host.join("commondir"))?.is_none() {
                // Broken (git lists it as prunable): nothing here may change,
                // or a `commondir` written now would send that worktree's
                // git elsewhere.
                self.pin(&one.inside, true, Missing::Skip);
                continue;
            }
            self.pin(&one.inside, false, Missing::Skip);
            self.keep(&one, "commondir", Missing::Skip)?;
            self.keep(&one, "gitdir", Missing::Skip)?;
            self.keep(&one, "config.worktree", empty_file_if(per_worktree_config))?;
            self.includes(&one, &["config.worktree"], true)?;
        }
        Ok(())
    }

    /// Pin `dir/name` read-only, after checking that what is there now cannot
    /// be written through another name.
    fn keep(&mut self, dir: &Place, name: &str, missing: Missing) -> Result<(), Error> {
        let path = dir.join(name);
        if let Some(md) = lstat(&path.host)? {
            let kind = md.file_type();
            if kind.is_symlink() {
                self.check_link_target(&path.host)?;
            } else if kind.is_file() {
                if md.nlink() > 1 {
                    return Err(Error::policy(format!(
                        "{} has {} hard links: the sandbox could change it through another name; \
                         replace it with a copy (cp {0} {0}.tmp && mv {0}.tmp {0}), or use --git off",
                        path.host.display(),
                        md.nlink()
                    )));
                }
            } else if !kind.is_dir() {
                return Err(refuse_kind(&path.host));
            }
        }
        self.pin(&path.inside, true, missing);
        Ok(())
    }

    /// A protected name that is the user's own symlink stays a symlink (the
    /// pin keeps it from being replaced), but only when what it points to
    /// is not writable inside.
    fn check_link_target(&self, link: &Path) -> Result<(), Error> {
        let target = fs::canonicalize(link).map_err(|e| {
            Error::policy(format!(
                "{} is a symlink that does not resolve ({e}): the sandbox might create what it names; \
                 remove it, or use --git off",
                link.display()
            ))
        })?;
        if let Some(src) = self.writable_sources().find(|s| target.starts_with(s)) {
            return Err(Error::policy(format!(
                "{} is a symlink to {}, inside the writable grant {}: the sandbox could change it; \
                 move it out of the workspace, or use --git off",
                link.display(),
                target.display(),
                src.display()
            )));
        }
        Ok(())
    }

    /// The grant at `src` -> `dst` has a `.git` file.
    fn git_file(&mut self, src: &Path, dst: &Path) -> Result<(), Error> {
        let file = src.join(".git");
        let md = fs::symlink_metadata(&file).map_err(|e| read_error(&file, e))?;
        if md.nlink() > 1 {
            return Err(Error::policy(format!(
                "{} has {} hard links: the sandbox could change it through another name",
                file.display(),
                md.nlink()
            )));
        }
        // The file names the git directory: it must not change.
        self.pin(&dst.join(".git"), true, Missing::Skip);

        let text = read_pointer(&file)?;
        let named = text.strip_prefix("gitdir: ").ok_or_else(|| {
            Error::policy(format!(
                "{} is not a `gitdir: <path>` file; remove it, or use --git off",
                file.display()
            ))
        })?;
        let worktree_dir = pointed(src, dst, named, &file)?;
        let host_md = fs::metadata(&worktree_dir.host).map_err(|e| {
            Error::policy(format!(
                "{} names the git directory {}, which cannot be used ({e}); \
                 if the repository moved, run `git worktree repair` in it",
                file.display(),
                worktree_dir.host.display()
            ))
        })?;
        if !host_md.is_dir() {
            return Err(Error::policy(format!(
                "{} names {}, which is not a directory",
                file.display(),
                worktree_dir.host.display()
            )));
        }
        let commondir = worktree_dir.host.join("commondir");
        if lstat(&commondir)?.is_none() {
            // A submodule's checkout or a `--separate-git-dir` repository:
            // not a linked worktree. Its git directory is not granted (git
            // inside does not find it); the pinned `.git` file cannot be
            // pointed elsewhere.
            return Ok(());
        }
        self.linked_worktree(src, &file, &worktree_dir)
    }

    /// Check a linked worktree's git directory as git lays it out, and grant
    /// its repository's common git directory.
    fn linked_worktree(&mut self, src: &Path, file: &Path, wt: &Place) -> Result<(), Error> {
        let bad = |why: String| {
            Error::policy(format!(
                "{} is not a valid linked worktree: {why}; run `git worktree repair` in the main \
                 repository, or use --git off",
                src.display()
            ))
        };
        let text = read_pointer(&wt.host.join("commondir"))?;
        let common = pointed(&wt.host, &wt.inside, &text, &wt.host.join("commondir"))?;
        let common_md = fs::metadata(&common.host).map_err(|e| {
            bad(format!(
                "its common git directory {}: {e}",
                common.host.display()
            ))
        })?;
        if !common_md.is_dir() || !looks_like_git_dir(&common.host) {
            return Err(bad(format!(
                "{} is not a git directory",
                common.host.display()
            )));
        }
        // git keeps a linked worktree's git directory in <common>/worktrees/.
        let list = common.join("worktrees");
        if wt.host.parent() != Some(list.host.as_path())
            || wt.inside.parent() != Some(list.inside.as_path())
        {
            return Err(bad(format!(
                "its git directory {} is not in {}/worktrees",
                wt.host.display(),
                common.host.display()
            )));
        }
        // ... and the back-pointer there names this worktree's `.git` file.
        let back = wt.host.join("gitdir");
        let text = read_pointer(&back)?;
        let named = {
            let p = Path::new(&text);
            if p.is_absolute() {
                p.to_path_buf()
            } else {
                wt.host.join(p)
            }
        };
        if fs::canonicalize(&named).ok().as_deref() != Some(file) {
            return Err(bad(format!(
                "{} names {}, not {}",
                back.display(),
                named.display(),
                file.display()
            )));
        }
        self.common_dir(&common)
    }

    /// Make a linked worktree's common git directory visible at the path its
    /// pointers name (a new grant unless a grant already shows it there),
    /// then protect it like any git directory.
    fn common_dir(&mut self, common: &Place) -> Result<(), Error> {
        let covering = self
            .all_grants()
            .filter(|m| common.inside.starts_with(m.dst()))
            .max_by_key(|m| m.dst().components().count())
            .cloned();
        let Some(grant) = covering else {
            let (src, dst) = (common.host.clone(), common.inside.clone());
            self.out.grants.push(match self.mode {
                GitMode::ReadOnly => Mount::ReadOnly { src, dst },
                // Commits in an overlaid worktree stay in memory too.
                _ if self.overlay => Mount::Overlay {
                    src,
                    dst,
                    size: crate::policy::DEFAULT_OVERLAY_SIZE,
                },
                _ => Mount::ReadWrite { src, dst },
            });
            return match self.mode {
                GitMode::Protect => self.protect_common(common),
                GitMode::ReadOnly => self.readonly_includes(common),
                GitMode::Off => Ok(()),
            };
        };
        let shows = grant.src().map(|s| {
            let rest = common
                .inside
                .strip_prefix(grant.dst())
                .unwrap_or(Path::new(""));
            fs::canonicalize(s.join(rest)).ok()
        });
        if shows != Some(Some(common.host.clone())) {
            return Err(Error::policy(format!(
                "the linked worktree's common git directory {} would appear at {}, inside the grant \
                 at {} that shows something else; grant {0} at its own path",
                common.host.display(),
                common.inside.display(),
                grant.dst().display()
            )));
        }
        if matches!(grant, Mount::ReadOnly { .. }) {
            // Granted read-only by the caller: nothing to protect, nothing to add.
            return Ok(());
        }
        let mounted = grant.dst() == common.inside;
        self.git_dir(common, mounted)
    }

    fn pin(&mut self, dst: &Path, ro: bool, missing: Missing) {
        self.out.pins.push(MountOp::Pin {
            dst: dst.to_path_buf(),
            ro,
            missing,
        });
    }

    /// The caller's grants and the ones added so far.
    fn all_grants(&self) -> impl Iterator<Item = &Mount> {
        self.fs.mounts().iter().chain(&self.out.grants)
    }

    /// Host sources the sandbox can write (overlays count: their writes can
    /// be applied to the host afterwards).
    fn writable_sources(&self) -> impl Iterator<Item = &Path> {
        self.all_grants().filter_map(|m| match m {
            Mount::ReadWrite { src, .. } | Mount::Overlay { src, .. } => Some(src.as_path()),
            _ => None,
        })
    }
}

/// `lstat`, with "does not exist" as `None`.
fn lstat(path: &Path) -> Result<Option<Metadata>, Error> {
    match fs::symlink_metadata(path) {
        Ok(md) => Ok(Some(md)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(read_error(path, e)),
    }
}

fn read_error(path: &Path, e: io::Error) -> Error {
    Error::policy(format!(
        "cannot inspect {} for git protection: {e}",
        path.display()
    ))
}

fn refuse_kind(path: &Path) -> Error {
    Error::policy(format!(
        "{} is neither a file nor a directory: --git protect refuses to guess what git makes of it; \
         remove it, or use --git off",
        path.display()
    ))
}

/// A `commondir` that names its own directory (as [`SAME_DIR`] does).
fn is_same_dir(commondir: &Path) -> bool {
    let Ok(text) = read_pointer(commondir) else {
        return false;
    };
    let Some(dir) = commondir.parent() else {
        return false;
    };
    fs::canonicalize(dir.join(text)).ok() == fs::canonicalize(dir).ok()
}

fn empty_file_if(needed: bool) -> Missing {
    if needed {
        Missing::File(String::new())
    } else {
        Missing::Skip
    }
}

/// What git itself checks first: `HEAD`, `objects/` and `refs/`.
fn looks_like_git_dir(dir: &Path) -> bool {
    dir.join("HEAD").is_file() && dir.join("objects").is_dir() && dir.join("refs").is_dir()
}

/// The first line of a small pointer file (`.git`, `commondir`, `gitdir`),
/// read without following a symlink and without blocking on a FIFO.
fn read_pointer(path: &Path) -> Result<String, Error> {
    let file = File::options()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
        .map_err(|e| read_error(path, e))?;
    let md = file.metadata().map_err(|e| read_error(path, e))?;
    if !md.is_file() || md.len() > MAX_POINTER {
        return Err(Error::policy(format!(
            "{} is not a small regular file, as git writes it",
            path.display()
        )));
    }
    let mut text = String::new();
    file.take(MAX_POINTER)
        .read_to_string(&mut text)
        .map_err(|e| read_error(path, e))?;
    let line = text.lines().next().unwrap_or("").trim_end();
    if line.is_empty() {
        return Err(Error::policy(format!("{} is empty", path.display())));
    }
    Ok(line.to_string())
}

/// Where a pointer read from a file in `base` leads: on the host (resolved,
/// to check and to mount from) and inside (as git inside resolves it, from
/// `base_inside`; no symlink resolution, which is the host's business).
fn pointed(base: &Path, base_inside: &Path, named: &str, file: &Path) -> Result<Place, Error> {
    let p = Path::new(named);
    let (host, inside) = if p.is_absolute() {
        (p.to_path_buf(), p.to_path_buf())
    } else {
        (base.join(p), base_inside.join(p))
    };
    let inside = normalize(&inside).ok_or_else(|| {
        Error::policy(format!(
            "{} names {named}, which leads above /",
            file.display()
        ))
    })?;
    crate::policy::check_inside_path(&inside, "git directory")?;
    let host = fs::canonicalize(&host).map_err(|e| {
        Error::policy(format!(
            "{} names {}, which cannot be used ({e}); if the repository moved, run \
             `git worktree repair` in it",
            file.display(),
            host.display()
        ))
    })?;
    Ok(Place { host, inside })
}

/// `a/./b/../c` -> `a/c` for an absolute path; `None` above the root.
fn normalize(p: &Path) -> Option<PathBuf> {
    let mut out = PathBuf::from("/");
    for c in p.components() {
        match c {
            Component::RootDir | Component::CurDir => {}
            Component::ParentDir => {
                if !out.pop() {
                    return None;
                }
            }
            Component::Normal(n) => out.push(n),
            Component::Prefix(_) => return None,
        }
    }
    Some(out)
}

/// Whether git reads `config.worktree` files (`extensions.worktreeConfig`).
/// git reads extensions from the repository's own config file only (no
/// includes), and key names cannot be escaped, so a case-insensitive search
/// for the name can only err towards protecting. Unreadable: assume so.
fn worktree_config_enabled(config: &Path) -> bool {
    match fs::read(config) {
        Ok(bytes) => String::from_utf8_lossy(&bytes)
            .to_ascii_lowercase()
            .contains("worktreeconfig"),
        Err(e) => e.kind() != io::ErrorKind::NotFound,
    }
}

mod include;
#[cfg(test)]
mod tests;
