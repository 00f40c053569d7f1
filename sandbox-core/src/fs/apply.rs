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

use super::plan::MountOp;
use crate::error::{Layer, SetupFailure};
use crate::sys;

/// Where the new root is assembled in the sandbox's own mount namespace. Covering
/// it is harmless: every host source was cloned before.
pub const STAGING: &str = "/tmp";

type Result<T> = std::result::Result<T, SetupFailure>;

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
            f.step = format!("open_tree {}", src.display());
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
        let fd = match op {
            MountOp::Bind {
                granted: true, src, ..
            }
            | MountOp::Overlay { src, .. } => match granted.next() {
                Some(fd) => Some(fd),
                None => Some(host.clone_source(src)?),
            },
            MountOp::Bind { src, .. } => Some(host.clone_source(src)?),
            _ => None,
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
    .map_err(|e| fail(format!("open_tree {}", src.display()), e))
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

/// Apply every op relative to the current directory (the new root).
pub fn apply(ops: &[MountOp], sources: &mut [Option<OwnedFd>]) -> Result<()> {
    for (i, op) in ops.iter().enumerate() {
        apply_one(op, sources[i].take(), i)?;
    }
    Ok(())
}

fn mkdirs(p: &Path) -> Result<()> {
    fs::create_dir_all(p)
        .map_err(|e| io_fail(format!("create {}", Path::new("/").join(p).display()), e))
}

/// Create an empty file (and its parents) to mount a single file over.
fn mkfile(p: &Path) -> Result<()> {
    if let Some(parent) = p.parent() {
        mkdirs(parent)?;
    }
    if p.exists() {
        return Ok(());
    }
    fs::File::create(p)
        .map(drop)
        .map_err(|e| io_fail(format!("create {}", Path::new("/").join(p).display()), e))
}

fn apply_one(op: &MountOp, source: Option<OwnedFd>, index: usize) -> Result<()> {
    match op {
        MountOp::Dir { dst, mode } => {
            let p = rel(dst);
            mkdirs(&p)?;
            fs::set_permissions(&p, fs::Permissions::from_mode(*mode))
                .map_err(|e| io_fail("chmod", e))
        }
        MountOp::Symlink { target, dst } => {
            let p = rel(dst);
            if let Some(parent) = p.parent() {
                mkdirs(parent)?;
            }
            symlink(target, &p).map_err(|e| io_fail(format!("symlink {}", dst.display()), e))
        }
        MountOp::File {
            dst,
            contents,
            mode,
        } => {
            let p = rel(dst);
            fs::write(&p, contents).map_err(|e| io_fail(format!("write {}", dst.display()), e))?;
            fs::set_permissions(&p, fs::Permissions::from_mode(*mode))
                .map_err(|e| io_fail("chmod", e))
        }
        MountOp::Copy { src, dst } => copy(src, &rel(dst)),
        MountOp::Bind { dst, ro, src, .. } => {
            let fd = source.expect("every bind has a cloned source");
            bind(&fd, &rel(dst), *ro, src)
        }
        MountOp::Tmpfs { dst, size, mode } => {
            let p = rel(dst);
            mkdirs(&p)?;
            let opts = format!("size={size},mode={mode:o}");
            mount(
                Some("tmpfs"),
                &p,
                Some("tmpfs"),
                MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
                Some(opts.as_str()),
            )
            .map_err(|e| fail(format!("mount tmpfs {}", dst.display()), e))
        }
        MountOp::Overlay { src, dst, size } => {
            let fd = source.expect("every overlay has a cloned source");
            overlay(&fd, &rel(dst), *size, index, src)
        }
        MountOp::Devpts { dst } => {
            let p = rel(dst);
            mkdirs(&p)?;
            mount(
                Some("devpts"),
                &p,
                Some("devpts"),
                MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC,
                Some("newinstance,ptmxmode=0666,mode=0620"),
            )
            .map_err(|e| fail("mount devpts", e))?;
            let ptmx = p.parent().unwrap_or(Path::new("")).join("ptmx");
            symlink("pts/ptmx", ptmx).map_err(|e| io_fail("symlink /dev/ptmx", e))
        }
        MountOp::Proc { dst } => {
            let p = rel(dst);
            mkdirs(&p)?;
            mount(
                Some("proc"),
                &p,
                Some("proc"),
                MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
                None::<&str>,
            )
            .map_err(|e| fail("mount /proc", e))
        }
        MountOp::Mask { dst, dir } => {
            let p = rel(dst);
            if *dir {
                mount(
                    Some("tmpfs"),
                    &p,
                    Some("tmpfs"),
                    MsFlags::MS_RDONLY
                        | MsFlags::MS_NOSUID
                        | MsFlags::MS_NODEV
                        | MsFlags::MS_NOEXEC,
                    Some("size=0,mode=0555"),
                )
            } else {
                mount(
                    Some("dev/null"),
                    &p,
                    None::<&str>,
                    MsFlags::MS_BIND,
                    None::<&str>,
                )
            }
            .map_err(|e| fail(format!("mask {}", dst.display()), e))
        }
        MountOp::ReadOnly { dst } => {
            let p = rel(dst);
            mount(
                Some(&p),
                &p,
                None::<&str>,
                MsFlags::MS_BIND | MsFlags::MS_REC,
                None::<&str>,
            )
            .map_err(|e| fail(format!("bind {}", dst.display()), e))?;
            remount_ro(&p).map_err(|e| fail(format!("read-only {}", dst.display()), e))
        }
    }
}

fn remount_ro(p: &Path) -> nix::Result<()> {
    mount(
        None::<&str>,
        p,
        None::<&str>,
        MsFlags::MS_REMOUNT
            | MsFlags::MS_BIND
            | MsFlags::MS_RDONLY
            | MsFlags::MS_NOSUID
            | MsFlags::MS_NODEV
            | MsFlags::MS_NOEXEC,
        None::<&str>,
    )
}

/// Copy a small host file into the new root; a host symlink stays a symlink.
fn copy(src: &Path, dst: &Path) -> Result<()> {
    if let Ok(target) = fs::read_link(src) {
        return symlink(target, dst).map_err(|e| io_fail(format!("symlink {}", src.display()), e));
    }
    match fs::read(src) {
        Ok(bytes) => {
            fs::write(dst, bytes).map_err(|e| io_fail(format!("copy {}", src.display()), e))
        }
        // A host that lacks or hides the file simply does not get it inside.
        Err(_) => Ok(()),
    }
}

/// Attach a cloned tree at `dst`, with `nosuid` (and `nodev` except for device
/// nodes) always, and read-only when asked. Flags are only ever added.
fn bind(fd: &OwnedFd, dst: &Path, ro: bool, src: &Path) -> Result<()> {
    let st = fstat(fd).map_err(|e| fail(format!("stat {}", src.display()), e))?;
    let kind = SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT;
    let is_device = kind == SFlag::S_IFCHR || kind == SFlag::S_IFBLK;
    if kind == SFlag::S_IFDIR {
        mkdirs(dst)?;
    } else {
        mkfile(dst)?;
    }
    let mut attrs = sys::MOUNT_ATTR_NOSUID;
    if !is_device {
        attrs |= sys::MOUNT_ATTR_NODEV;
    }
    if ro {
        attrs |= sys::MOUNT_ATTR_RDONLY;
    }
    sys::mount_setattr(fd.as_fd(), true, attrs, 0, None)
        .map_err(|e| fail(format!("set flags on {}", src.display()), e))?;
    sys::move_mount(fd.as_fd(), libc::AT_FDCWD, &cstr(dst))
        .map_err(|e| fail(format!("bind {} at /{}", src.display(), dst.display()), e))
}

/// `dst` shows the cloned tree with a `size`-capped tmpfs upper on top: writes
/// never reach the host and vanish with the mount namespace.
fn overlay(lower: &OwnedFd, dst: &Path, size: u64, index: usize, src: &Path) -> Result<()> {
    bind(lower, dst, true, src)?;
    let stage = PathBuf::from(format!(".stockade-ovl-{index}"));
    mkdirs(&stage)?;
    mount(
        Some("tmpfs"),
        &stage,
        Some("tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
        Some(format!("size={size},mode=0755").as_str()),
    )
    .map_err(|e| fail(format!("mount overlay upper for {}", src.display()), e))?;
    let (upper, work) = (stage.join("upper"), stage.join("work"));
    mkdirs(&upper)?;
    mkdirs(&work)?;
    // Keep the lower's root mode/owner on the upper so the merged root looks alike.
    if let Ok(meta) = fs::metadata(dst) {
        let _ = fs::set_permissions(&upper, meta.permissions());
    }
    let abs = |p: &Path| Path::new(STAGING).join(p).display().to_string();
    let opts = format!(
        "lowerdir={},upperdir={},workdir={},userxattr",
        abs(dst),
        abs(&upper),
        abs(&work)
    );
    mount(
        Some("overlay"),
        dst,
        Some("overlay"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
        Some(opts.as_str()),
    )
    .map_err(|e| fail(format!("mount overlay on {}", src.display()), e))?;
    // The overlay keeps its own reference to the upper; hide the staging mount.
    umount2(&stage, MntFlags::MNT_DETACH).map_err(|e| fail("detach overlay upper", e))?;
    fs::remove_dir(&stage).map_err(|e| io_fail("remove overlay staging", e))
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
