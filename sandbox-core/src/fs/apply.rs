//! Carry out a mount plan inside the sandbox's fresh mount namespace.
//!
//! Runs in the sandbox init (single-threaded, may allocate). Host sources are
//! cloned as detached mount trees *before* the new root covers anything, so no
//! source path can be shadowed by the root we build. Absolute paths name the
//! host; the new root is the current directory and is addressed relatively.

use std::ffi::CString;
use std::fs;
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sys::stat::{fstat, SFlag};

use super::plan::{Missing, MountOp};
use crate::error::{Layer, SetupFailure};
use crate::sys;

/// Where the new root is assembled in the sandbox's own mount namespace. Covering
/// it is harmless: every host source was cloned before.
pub const STAGING: &str = "/tmp";

type Result<T> = std::result::Result<T, SetupFailure>;

/// The step that mounts the sandbox's procfs (named in errors; `doctor::diagnose` explains it).
pub(crate) const MOUNT_PROC_STEP: &str = "mount /proc";

/// The prefix of the step that clones a granted path's tree (named in errors).
pub(crate) const OPEN_TREE_STEP: &str = "open_tree ";

fn fail(step: impl Into<String>, errno: Errno) -> SetupFailure {
    SetupFailure {
        layer: Layer::Filesystem,
        step: step.into(),
        errno: errno as i32,
        detail: String::new(),
    }
}

fn io_fail(step: impl Into<String>, e: std::io::Error) -> SetupFailure {
    SetupFailure {
        layer: Layer::Filesystem,
        step: step.into(),
        errno: e.raw_os_error().unwrap_or(0),
        detail: if e.raw_os_error().is_some() {
            String::new()
        } else {
            e.to_string()
        },
    }
}

fn cstr(p: &Path) -> CString {
    CString::new(p.as_os_str().as_bytes()).expect("policy paths are checked for NUL bytes")
}

/// `/a/b` -> `a/b` (relative to the new root being built).
fn rel(dst: &Path) -> PathBuf {
    dst.strip_prefix("/").unwrap_or(dst).to_path_buf()
}

/// How the init reaches host sources once the new root is staged over
/// [`STAGING`]: a detached copy of the host's `/tmp` subtree, taken before, for
/// sources under it (the only ones the staging mount shadows); live paths for
/// everything else.
pub struct HostView {
    tmp: OwnedFd,
}

impl HostView {
    /// Take the view; call before [`enter_staging`].
    pub fn take() -> Result<Self> {
        Ok(HostView {
            tmp: clone_tree(libc::AT_FDCWD, Path::new(STAGING))?,
        })
    }

    /// A detached copy of the host tree at `src`.
    pub fn clone_source(&self, src: &Path) -> Result<OwnedFd> {
        let tree = match src.strip_prefix(STAGING) {
            Ok(inner) if inner.as_os_str().is_empty() => {
                clone_tree(self.tmp.as_raw_fd(), Path::new("."))
            }
            Ok(inner) => clone_tree(self.tmp.as_raw_fd(), inner),
            Err(_) => clone_tree(libc::AT_FDCWD, src),
        };
        tree.map_err(|mut f| {
            f.step = format!("{OPEN_TREE_STEP}{}", src.display());
            f
        })
    }
}

/// Clone every host source of `ops`. `granted` supplies the trees prepared
/// outside for the caller's grants (root callers), in plan order.
pub fn clone_sources(
    ops: &[MountOp],
    host: &HostView,
    mut granted: impl Iterator<Item = OwnedFd>,
) -> Result<Vec<Option<OwnedFd>>> {
    let mut out = Vec::with_capacity(ops.len());
    for op in ops {
        let fd = match op.host_source() {
            None => None,
            Some(src) => {
                let grant = matches!(
                    op,
                    MountOp::Bind { granted: true, .. } | MountOp::Overlay { .. }
                );
                match grant.then(|| granted.next()).flatten() {
                    Some(prepared) => Some(prepared),
                    None => Some(host.clone_source(src)?),
                }
            }
        };
        out.push(fd);
    }
    Ok(out)
}

/// A detached, recursive copy of the mount tree at `src` (relative to `dirfd`).
pub fn clone_tree(dirfd: RawFd, src: &Path) -> Result<OwnedFd> {
    sys::open_tree(
        dirfd,
        &cstr(src),
        sys::OPEN_TREE_CLONE | sys::OPEN_TREE_CLOEXEC | libc::AT_RECURSIVE as u32,
    )
    .map_err(|e| fail(format!("{OPEN_TREE_STEP}{}", src.display()), e))
}

/// Nothing mounted inside may propagate back to the host or in from it; run
/// before cloning sources so the clones are private too.
pub fn make_mounts_private() -> Result<()> {
    mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_REC | MsFlags::MS_PRIVATE,
        None::<&str>,
    )
    .map_err(|e| fail("make mounts private", e))
}

/// Mount the new root's tmpfs at [`STAGING`] and make it the current directory.
pub fn enter_staging() -> Result<()> {
    mount(
        Some("tmpfs"),
        STAGING,
        Some("tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
        Some("size=4m,mode=0755"),
    )
    .map_err(|e| fail("mount root tmpfs", e))?;
    nix::unistd::chdir(STAGING).map_err(|e| fail("enter new root", e))
}

/// What a cloned source tree is, which decides its mount point and flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TreeKind {
    /// A directory.
    Dir,
    /// A device node (keeps `dev`).
    Device,
    /// Any other file.
    File,
}

/// The system operations that carry out a plan, relative to the new root. The
/// real one performs syscalls; the tests' recorder writes them down, so the
/// plan -> syscall translation is checked without privileges.
pub trait MountSys {
    /// A detached mount tree (a cloned source).
    type Tree;
    /// `mkdir -p`.
    fn mkdirs(&mut self, p: &Path) -> Result<()>;
    /// `chmod`.
    fn chmod(&mut self, p: &Path, mode: u32) -> Result<()>;
    /// Permission bits of `p`, if it exists.
    fn mode_of(&mut self, p: &Path) -> Option<u32>;
    /// Create an empty file (and parents) to mount a file over.
    fn mkfile(&mut self, p: &Path) -> Result<()>;
    /// `symlink(target, p)`.
    fn symlink(&mut self, target: &Path, p: &Path) -> Result<()>;
    /// Write a new file.
    fn write(&mut self, p: &Path, contents: &[u8]) -> Result<()>;
    /// Copy a small host file (a host symlink stays a symlink; absent: skip).
    fn copy_host(&mut self, src: &Path, dst: &Path) -> Result<()>;
    /// What `tree` is.
    fn kind(&mut self, tree: &Self::Tree, src: &Path) -> Result<TreeKind>;
    /// Add `MOUNT_ATTR_*` flags to the whole tree (never removes any).
    fn add_attrs(&mut self, tree: &Self::Tree, attrs: u64, src: &Path) -> Result<()>;
    /// Attach `tree` at `p`.
    fn attach(&mut self, tree: &Self::Tree, p: &Path, src: &Path) -> Result<()>;
    /// `mount(2)`; `step` names it in errors.
    fn mount(
        &mut self,
        source: Option<&Path>,
        target: &Path,
        fstype: Option<&str>,
        flags: MsFlags,
        data: Option<&str>,
        step: &str,
    ) -> Result<()>;
    /// `umount2(p, MNT_DETACH)`.
    fn detach(&mut self, p: &Path, step: &str) -> Result<()>;
    /// `rmdir`.
    fn rmdir(&mut self, p: &Path) -> Result<()>;
    /// Keep an open descriptor of the overlay upper directory `p` (before
    /// its staging mount is hidden), for the host's workspace diff.
    fn keep_upper(&mut self, p: &Path) -> Result<()>;
    /// [`MountOp::Pin`]: bind `p` onto itself, read-only when `ro`.
    fn pin(&mut self, p: &Path, ro: bool, missing: &Missing) -> Result<()>;
}

/// The real system: syscalls relative to the current directory.
#[derive(Default)]
pub struct RealSys {
    /// The overlay uppers kept by [`MountSys::keep_upper`], in plan order.
    pub uppers: Vec<OwnedFd>,
}

impl MountSys for RealSys {
    type Tree = OwnedFd;

    fn mkdirs(&mut self, p: &Path) -> Result<()> {
        fs::create_dir_all(p)
            .map_err(|e| io_fail(format!("create {}", Path::new("/").join(p).display()), e))
    }
    fn chmod(&mut self, p: &Path, mode: u32) -> Result<()> {
        fs::set_permissions(p, fs::Permissions::from_mode(mode)).map_err(|e| io_fail("chmod", e))
    }
    fn mode_of(&mut self, p: &Path) -> Option<u32> {
        fs::metadata(p)
            .ok()
            .map(|m| m.permissions().mode() & 0o7777)
    }
    fn mkfile(&mut self, p: &Path) -> Result<()> {
        if let Some(parent) = p.parent() {
            self.mkdirs(parent)?;
        }
        if p.exists() {
            return Ok(());
        }
        fs::File::create(p)
            .map(drop)
            .map_err(|e| io_fail(format!("create {}", Path::new("/").join(p).display()), e))
    }
    fn symlink(&mut self, target: &Path, p: &Path) -> Result<()> {
        symlink(target, p).map_err(|e| io_fail(format!("symlink /{}", p.display()), e))
    }
    fn write(&mut self, p: &Path, contents: &[u8]) -> Result<()> {
        fs::write(p, contents).map_err(|e| io_fail(format!("write /{}", p.display()), e))
    }
    fn copy_host(&mut self, src: &Path, dst: &Path) -> Result<()> {
        if let Ok(target) = fs::read_link(src) {
            return self.symlink(&target, dst);
        }
        match fs::read(src) {
            Ok(bytes) => {
                fs::write(dst, bytes).map_err(|e| io_fail(format!("copy {}", src.display()), e))
            }
            // A host that lacks or hides the file simply does not get it inside.
            Err(_) => Ok(()),
        }
    }
    fn kind(&mut self, tree: &OwnedFd, src: &Path) -> Result<TreeKind> {
        let st = fstat(tree).map_err(|e| fail(format!("stat {}", src.display()), e))?;
        let kind = SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT;
        Ok(if kind == SFlag::S_IFDIR {
            TreeKind::Dir
        } else if kind == SFlag::S_IFCHR || kind == SFlag::S_IFBLK {
            TreeKind::Device
        } else {
            TreeKind::File
        })
    }
    fn add_attrs(&mut self, tree: &OwnedFd, attrs: u64, src: &Path) -> Result<()> {
        sys::mount_setattr(tree.as_fd(), true, attrs, 0, None)
            .map_err(|e| fail(format!("set flags on {}", src.display()), e))
    }
    fn attach(&mut self, tree: &OwnedFd, p: &Path, src: &Path) -> Result<()> {
        sys::move_mount(tree.as_fd(), libc::AT_FDCWD, &cstr(p))
            .map_err(|e| fail(format!("bind {} at /{}", src.display(), p.display()), e))
    }
    fn mount(
        &mut self,
        source: Option<&Path>,
        target: &Path,
        fstype: Option<&str>,
        flags: MsFlags,
        data: Option<&str>,
        step: &str,
    ) -> Result<()> {
        mount(source, target, fstype, flags, data).map_err(|e| fail(step, e))
    }
    fn detach(&mut self, p: &Path, step: &str) -> Result<()> {
        umount2(p, MntFlags::MNT_DETACH).map_err(|e| fail(step, e))
    }
    fn rmdir(&mut self, p: &Path) -> Result<()> {
        fs::remove_dir(p).map_err(|e| io_fail(format!("remove /{}", p.display()), e))
    }
    fn keep_upper(&mut self, p: &Path) -> Result<()> {
        let dir = fs::File::open(p).map_err(|e| io_fail("open overlay upper", e))?;
        self.uppers.push(dir.into());
        Ok(())
    }
    fn pin(&mut self, p: &Path, ro: bool, missing: &Missing) -> Result<()> {
        let step = |what: &str| format!("{what} /{} (git protection)", p.display());
        let target = match pin::open(p) {
            Ok(fd) => fd,
            Err(Errno::ENOENT) if *missing == Missing::Skip => return Ok(()),
            Err(Errno::ENOENT) => match pin::create(p, missing) {
                Ok(()) => pin::open(p).map_err(|e| fail(step("open"), e))?,
                // Not even the init, which holds every capability of the
                // sandbox's namespaces here, may create it: neither can the
                // command, which holds none.
                Err(Errno::EACCES | Errno::EPERM | Errno::EROFS) => return Ok(()),
                Err(e) => return Err(fail(step("create"), e)),
            },
            Err(e) => return Err(fail(step("open"), e)),
        };
        let tree = sys::open_tree(
            target.as_raw_fd(),
            c"",
            sys::OPEN_TREE_CLONE
                | sys::OPEN_TREE_CLOEXEC
                | libc::AT_RECURSIVE as u32
                | libc::AT_EMPTY_PATH as u32,
        )
        .map_err(|e| fail(step("clone"), e))?;
        let mut attrs = sys::MOUNT_ATTR_NOSUID | sys::MOUNT_ATTR_NODEV;
        if ro {
            attrs |= sys::MOUNT_ATTR_RDONLY;
        }
        sys::mount_setattr(tree.as_fd(), true, attrs, 0, None)
            .map_err(|e| fail(step("set flags on"), e))?;
        sys::move_mount_onto(tree.as_fd(), target.as_fd()).map_err(|e| fail(step("pin"), e))
    }
}

/// Path work for [`MountSys::pin`], relative to the new root (the current
/// directory): every lookup refuses symlinks and `..`, so what is pinned is
/// the object the plan named, never something a symlink points at.
mod pin {
    use std::ffi::{CString, OsStr};
    use std::io::Write;
    use std::os::fd::{AsFd, OwnedFd};
    use std::os::unix::ffi::OsStrExt;
    use std::path::Path;

    use nix::errno::Errno;
    use nix::fcntl::{openat, openat2, OFlag, OpenHow, ResolveFlag, AT_FDCWD};
    use nix::sys::stat::{mkdirat, Mode};
    use nix::unistd::{unlinkat, UnlinkatFlags};

    use crate::fs::plan::Missing;

    const RESOLVE: ResolveFlag = ResolveFlag::RESOLVE_BENEATH
        .union(ResolveFlag::RESOLVE_NO_SYMLINKS)
        .union(ResolveFlag::RESOLVE_NO_MAGICLINKS);

    /// An `O_PATH` descriptor of `p` itself (a final symlink is not followed).
    pub(super) fn open(p: &Path) -> Result<OwnedFd, Errno> {
        let how = OpenHow::new()
            .flags(OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC)
            .resolve(RESOLVE);
        openat2(AT_FDCWD, p, how)
    }

    /// Create the missing `p` as `missing` says, in its (symlink-free) parent.
    pub(super) fn create(p: &Path, missing: &Missing) -> Result<(), Errno> {
        let (Some(parent), Some(name)) = (p.parent(), p.file_name()) else {
            return Err(Errno::EINVAL);
        };
        let how = OpenHow::new()
            .flags(OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC)
            .resolve(RESOLVE);
        let dir = openat2(AT_FDCWD, parent, how)?;
        let made = match missing {
            Missing::Skip => return Ok(()),
            Missing::EmptyDir => mkdirat(&dir, name, Mode::from_bits_truncate(0o755)),
            Missing::File(contents) => create_file(&dir, name, contents.as_bytes()),
        };
        // Created meanwhile by someone else: pin what is there now.
        match made {
            Err(Errno::EEXIST) => Ok(()),
            other => other,
        }
    }

    /// Write a temporary file next to `name`, then rename it into place
    /// without replacing anything: a reader never sees it half-written.
    fn create_file(dir: &OwnedFd, name: &OsStr, contents: &[u8]) -> Result<(), Errno> {
        let mut tmp = name.to_os_string();
        tmp.push(format!(".stockade-{}", std::process::id()));
        let flags =
            OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
        let mode = Mode::from_bits_truncate(0o644);
        let fd = match openat(dir, tmp.as_os_str(), flags, mode) {
            // Left by a run that died here: ours to replace.
            Err(Errno::EEXIST) => {
                unlinkat(dir, tmp.as_os_str(), UnlinkatFlags::NoRemoveDir)?;
                openat(dir, tmp.as_os_str(), flags, mode)?
            }
            other => other?,
        };
        let file = std::fs::File::from(fd);
        let written = (&file)
            .write_all(contents)
            .map_err(|e| Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)));
        drop(file);
        let (tmp_c, name_c) = (cstring(&tmp)?, cstring(name)?);
        let placed = written.and_then(|()| {
            crate::sys::renameat2(
                dir.as_fd(),
                &tmp_c,
                dir.as_fd(),
                &name_c,
                libc::RENAME_NOREPLACE,
            )
        });
        if placed.is_err() {
            let _ = unlinkat(dir, tmp.as_os_str(), UnlinkatFlags::NoRemoveDir);
        }
        placed
    }

    fn cstring(s: &OsStr) -> Result<CString, Errno> {
        CString::new(s.as_bytes()).map_err(|_| Errno::EINVAL)
    }
}

/// Apply every op relative to the current directory (the new root).
pub fn apply<S: MountSys>(
    sys: &mut S,
    ops: &[MountOp],
    sources: &mut [Option<S::Tree>],
) -> Result<()> {
    for (i, op) in ops.iter().enumerate() {
        apply_one(sys, op, sources[i].take(), i)?;
    }
    Ok(())
}

const TMPFS: Option<&str> = Some("tmpfs");

fn apply_one<S: MountSys>(
    sys: &mut S,
    op: &MountOp,
    source: Option<S::Tree>,
    index: usize,
) -> Result<()> {
    match op {
        MountOp::Dir { dst, mode } => {
            let p = rel(dst);
            sys.mkdirs(&p)?;
            sys.chmod(&p, *mode)
        }
        MountOp::Symlink { target, dst } => {
            let p = rel(dst);
            if let Some(parent) = p.parent().filter(|d| !d.as_os_str().is_empty()) {
                sys.mkdirs(parent)?;
            }
            sys.symlink(target, &p)
        }
        MountOp::File {
            dst,
            contents,
            mode,
        } => {
            let p = rel(dst);
            sys.write(&p, contents.as_bytes())?;
            sys.chmod(&p, *mode)
        }
        MountOp::Copy { src, dst } => sys.copy_host(src, &rel(dst)),
        MountOp::Bind { dst, ro, src, .. } => {
            let tree = source.expect("every bind has a cloned source");
            bind(sys, &tree, &rel(dst), *ro, src)
        }
        MountOp::Tmpfs { dst, size, mode } => {
            let p = rel(dst);
            sys.mkdirs(&p)?;
            let opts = format!("size={size},mode={mode:o}");
            let step = format!("mount tmpfs {}", dst.display());
            sys.mount(
                Some(Path::new("tmpfs")),
                &p,
                TMPFS,
                MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
                Some(&opts),
                &step,
            )
        }
        MountOp::Overlay { src, dst, size } => {
            let tree = source.expect("every overlay has a cloned source");
            overlay(sys, &tree, &rel(dst), *size, index, src)
        }
        MountOp::Devpts { dst } => {
            let p = rel(dst);
            sys.mkdirs(&p)?;
            let flags = MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC;
            let opts = "newinstance,ptmxmode=0666,mode=0620";
            sys.mount(
                Some(Path::new("devpts")),
                &p,
                Some("devpts"),
                flags,
                Some(opts),
                "mount devpts",
            )?;
            sys.symlink(
                Path::new("pts/ptmx"),
                &p.parent().unwrap_or(Path::new("")).join("ptmx"),
            )
        }
        MountOp::Proc { dst } => {
            let p = rel(dst);
            sys.mkdirs(&p)?;
            let flags = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
            sys.mount(
                Some(Path::new("proc")),
                &p,
                Some("proc"),
                flags,
                None,
                MOUNT_PROC_STEP,
            )
        }
        MountOp::Mask { dst, dir } => {
            let p = rel(dst);
            let step = format!("mask {}", dst.display());
            if *dir {
                let flags = MsFlags::MS_RDONLY
                    | MsFlags::MS_NOSUID
                    | MsFlags::MS_NODEV
                    | MsFlags::MS_NOEXEC;
                sys.mount(
                    Some(Path::new("tmpfs")),
                    &p,
                    TMPFS,
                    flags,
                    Some("size=0,mode=0555"),
                    &step,
                )
            } else {
                sys.mount(
                    Some(Path::new("dev/null")),
                    &p,
                    None,
                    MsFlags::MS_BIND,
                    None,
                    &step,
                )
            }
        }
        MountOp::Pin { dst, ro, missing } => sys.pin(&rel(dst), *ro, missing),
        MountOp::ReadOnly { dst } => {
            let p = rel(dst);
            let step = format!("read-only {}", dst.display());
            sys.mount(
                Some(&p),
                &p,
                None,
                MsFlags::MS_BIND | MsFlags::MS_REC,
                None,
                &step,
            )?;
            let flags = MsFlags::MS_REMOUNT
                | MsFlags::MS_BIND
                | MsFlags::MS_RDONLY
                | MsFlags::MS_NOSUID
                | MsFlags::MS_NODEV
                | MsFlags::MS_NOEXEC;
            sys.mount(None, &p, None, flags, None, &step)
        }
    }
}

/// Attach a cloned tree at `dst`, with `nosuid` (and `nodev` except for device
/// nodes) always, and read-only when asked. Flags are only ever added.
fn bind<S: MountSys>(sys: &mut S, tree: &S::Tree, dst: &Path, ro: bool, src: &Path) -> Result<()> {
    let kind = sys.kind(tree, src)?;
    if kind == TreeKind::Dir {
        sys.mkdirs(dst)?;
    } else {
        sys.mkfile(dst)?;
    }
    let mut attrs = sys::MOUNT_ATTR_NOSUID;
    if kind != TreeKind::Device {
        attrs |= sys::MOUNT_ATTR_NODEV;
    }
    if ro {
        attrs |= sys::MOUNT_ATTR_RDONLY;
    }
    sys.add_attrs(tree, attrs, src)?;
    sys.attach(tree, dst, src)
}

/// `dst` shows the cloned tree with a `size`-capped tmpfs upper on top: writes
/// never reach the host and vanish with the mount namespace.
fn overlay<S: MountSys>(
    sys: &mut S,
    lower: &S::Tree,
    dst: &Path,
    size: u64,
    index: usize,
    src: &Path,
) -> Result<()> {
    bind(sys, lower, dst, true, src)?;
    let stage = PathBuf::from(format!(".stockade-ovl-{index}"));
    sys.mkdirs(&stage)?;
    let opts = format!("size={size},mode=0755");
    let step = format!("mount overlay upper for {}", src.display());
    sys.mount(
        Some(Path::new("tmpfs")),
        &stage,
        TMPFS,
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
        Some(&opts),
        &step,
    )?;
    let (upper, work) = (stage.join("upper"), stage.join("work"));
    sys.mkdirs(&upper)?;
    sys.mkdirs(&work)?;
    // The upper's root mode shows as the merged root's: keep the lower's.
    if let Some(mode) = sys.mode_of(dst) {
        sys.chmod(&upper, mode)?;
    }
    let abs = |p: &Path| Path::new(STAGING).join(p).display().to_string();
    let opts = format!(
        "lowerdir={},upperdir={},workdir={},userxattr",
        abs(dst),
        abs(&upper),
        abs(&work)
    );
    let step = format!("mount overlay on {}", src.display());
    sys.mount(
        Some(Path::new("overlay")),
        dst,
        Some("overlay"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
        Some(&opts),
        &step,
    )?;
    // The overlay keeps its own reference to the upper, and the host gets
    // one for the diff; hide the staging mount.
    sys.keep_upper(&upper)?;
    sys.detach(&stage, "detach overlay upper")?;
    sys.rmdir(&stage)
}

/// Make the current directory the root, drop the old root entirely, and make
/// the root itself read-only.
pub fn pivot_and_seal() -> Result<()> {
    // pivot_root(".", ".") stacks the old root on top of the new one; detaching
    // the top then leaves only the new root, with no path back to the host.
    sys::pivot_root(c".", c".").map_err(|e| fail("pivot_root", e))?;
    umount2(".", MntFlags::MNT_DETACH).map_err(|e| fail("detach old root", e))?;
    nix::unistd::chdir("/").map_err(|e| fail("chdir /", e))?;
    mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_REMOUNT
            | MsFlags::MS_BIND
            | MsFlags::MS_RDONLY
            | MsFlags::MS_NOSUID
            | MsFlags::MS_NODEV,
        None::<&str>,
    )
    .map_err(|e| fail("make root read-only", e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fs::plan::{self, tests::merged_usr_host, Identity};
    use crate::policy::Fs;

    /// Writes every operation down instead of performing it. Trees are the
    /// host paths they were cloned from; `/dev/*` trees are devices, paths with
    /// an extension are files, the rest directories.
    #[derive(Default)]
    struct Recorder {
        log: Vec<String>,
    }

    fn flags(f: MsFlags) -> String {
        let names = [
            (MsFlags::MS_RDONLY, "ro"),
            (MsFlags::MS_NOSUID, "nosuid"),
            (MsFlags::MS_NODEV, "nodev"),
            (MsFlags::MS_NOEXEC, "noexec"),
            (MsFlags::MS_REMOUNT, "remount"),
            (MsFlags::MS_BIND, "bind"),
            (MsFlags::MS_REC, "rec"),
        ];
        names
            .iter()
            .filter(|(b, _)| f.contains(*b))
            .map(|(_, n)| *n)
            .collect::<Vec<_>>()
            .join(",")
    }

    fn attrs(a: u64) -> String {
        let names = [
            (sys::MOUNT_ATTR_RDONLY, "ro"),
            (sys::MOUNT_ATTR_NOSUID, "nosuid"),
            (sys::MOUNT_ATTR_NODEV, "nodev"),
        ];
        names
            .iter()
            .filter(|(b, _)| a & b != 0)
            .map(|(_, n)| *n)
            .collect::<Vec<_>>()
            .join(",")
    }

    impl MountSys for Recorder {
        type Tree = PathBuf;
        fn mkdirs(&mut self, p: &Path) -> Result<()> {
            self.log.push(format!("mkdir {}", p.display()));
            Ok(())
        }
        fn chmod(&mut self, p: &Path, mode: u32) -> Result<()> {
            self.log.push(format!("chmod {mode:o} {}", p.display()));
            Ok(())
        }
        fn mode_of(&mut self, _: &Path) -> Option<u32> {
            Some(0o755)
        }
        fn mkfile(&mut self, p: &Path) -> Result<()> {
            self.log.push(format!("touch {}", p.display()));
            Ok(())
        }
        fn symlink(&mut self, target: &Path, p: &Path) -> Result<()> {
            self.log
                .push(format!("symlink {} -> {}", p.display(), target.display()));
            Ok(())
        }
        fn write(&mut self, p: &Path, contents: &[u8]) -> Result<()> {
            self.log
                .push(format!("write {} ({} bytes)", p.display(), contents.len()));
            Ok(())
        }
        fn copy_host(&mut self, src: &Path, dst: &Path) -> Result<()> {
            self.log
                .push(format!("copy {} -> {}", src.display(), dst.display()));
            Ok(())
        }
        fn kind(&mut self, tree: &PathBuf, _: &Path) -> Result<TreeKind> {
            Ok(if tree.starts_with("/dev") {
                TreeKind::Device
            } else if tree.extension().is_some() {
                TreeKind::File
            } else {
                TreeKind::Dir
            })
        }
        fn add_attrs(&mut self, tree: &PathBuf, a: u64, _: &Path) -> Result<()> {
            self.log
                .push(format!("setattr {} +{}", tree.display(), attrs(a)));
            Ok(())
        }
        fn attach(&mut self, tree: &PathBuf, p: &Path, _: &Path) -> Result<()> {
            self.log
                .push(format!("attach {} at {}", tree.display(), p.display()));
            Ok(())
        }
        fn mount(
            &mut self,
            source: Option<&Path>,
            target: &Path,
            fstype: Option<&str>,
            f: MsFlags,
            data: Option<&str>,
            _: &str,
        ) -> Result<()> {
            self.log.push(format!(
                "mount {} {} type={} [{}] {}",
                source
                    .map(|s| s.display().to_string())
                    .unwrap_or_else(|| "-".into()),
                target.display(),
                fstype.unwrap_or("-"),
                flags(f),
                data.unwrap_or("")
            ));
            Ok(())
        }
        fn detach(&mut self, p: &Path, _: &str) -> Result<()> {
            self.log.push(format!("umount -l {}", p.display()));
            Ok(())
        }
        fn rmdir(&mut self, p: &Path) -> Result<()> {
            self.log.push(format!("rmdir {}", p.display()));
            Ok(())
        }
        fn keep_upper(&mut self, p: &Path) -> Result<()> {
            self.log.push(format!("keep {}", p.display()));
            Ok(())
        }
        fn pin(&mut self, p: &Path, ro: bool, missing: &Missing) -> Result<()> {
            let how = if ro { "ro" } else { "rw" };
            self.log
                .push(format!("pin {} {how} if missing {missing:?}", p.display()));
            Ok(())
        }
    }

    fn record(fs: &Fs) -> String {
        let id = Identity {
            uid: 1000,
            gid: 1000,
            hostname: "box".into(),
        };
        let ops = plan::plan(fs, &id, &merged_usr_host());
        let mut sources: Vec<Option<PathBuf>> = ops
            .iter()
            .map(|o| o.host_source().map(Path::to_path_buf))
            .collect();
        let mut r = Recorder::default();
        apply(&mut r, &ops, &mut sources).unwrap();
        r.log.join("\n") + "\n"
    }

    /// Pins come after every grant and are carried out relative to the new
    /// root, each as one operation that names what to create if missing.
    #[test]
    fn pins_follow_the_grants_relative_to_the_new_root() {
        let id = Identity {
            uid: 1000,
            gid: 1000,
            hostname: "box".into(),
        };
        let mut ops = plan::plan(&Fs::minimal().rw("/work/repo"), &id, &merged_usr_host());
        ops.push(MountOp::Pin {
            dst: "/work/repo/.git".into(),
            ro: false,
            missing: Missing::Skip,
        });
        ops.push(MountOp::Pin {
            dst: "/work/repo/.git/commondir".into(),
            ro: true,
            missing: Missing::File(".\n".into()),
        });
        let mut sources: Vec<Option<PathBuf>> = ops
            .iter()
            .map(|o| o.host_source().map(Path::to_path_buf))
            .collect();
        let mut r = Recorder::default();
        apply(&mut r, &ops, &mut sources).unwrap();
        let tail = &r.log[r.log.len() - 3..];
        assert_eq!(
            tail,
            [
                "attach /work/repo at work/repo",
                "pin work/repo/.git rw if missing Skip",
                "pin work/repo/.git/commondir ro if missing File(\".\\n\")",
            ]
        );
    }

    /// The whole translation of a plan into operations, reviewed once and kept:
    /// a change here is a reviewed diff of what the sandbox mounts and how.
    #[test]
    fn golden_mount_sequence() {
        let fs = Fs::minimal()
            .rw("/work/repo")
            .ro("/work/repo/.git")
            .overlay_at("/data", "/data", 1 << 20)
            .ro_at("/etc/app.conf", "/cfg/app.conf")
            .tmpfs("/scratch", 2 << 20);
        let got = record(&fs);
        if std::env::var_os("STOCKADE_UPDATE_GOLDEN").is_some() {
            let path = concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/src/fs/golden_mount_sequence.txt"
            );
            std::fs::write(path, &got).unwrap();
        }
        let want = include_str!("golden_mount_sequence.txt");
        assert_eq!(
            got, want,
            "mount sequence changed; if intended, update golden_mount_sequence.txt:\n{got}"
        );
    }
}
