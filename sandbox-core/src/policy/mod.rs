//! Policy: plain data describing what a sandbox may see and do.
//!
//! Nothing here touches the system. The launcher turns a validated policy into a
//! plan ([`crate::fs::plan`]) that the helper carries out.

mod file;
pub(crate) mod preset;
mod size;
pub(crate) mod tmpdir;

pub use file::PolicyFile;
pub use preset::{CacheMode, Preset};
pub use size::parse_size;

use std::path::{Component, Path, PathBuf};
use std::time::Duration;

use crate::error::Error;

/// Default size cap of the sandbox's private `/tmp`.
pub const DEFAULT_TMP_SIZE: u64 = 256 << 20;
/// Default size cap of an `--overlay`'s tmpfs upper layer.
pub const DEFAULT_OVERLAY_SIZE: u64 = 256 << 20;
/// Default size of a `--tmpfs` mount without an explicit size.
pub const DEFAULT_TMPFS_SIZE: u64 = 64 << 20;

/// One filesystem grant on top of the minimal root.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Mount {
    /// Host `src` bound read-only at `dst`.
    ReadOnly {
        /// Host path.
        src: PathBuf,
        /// Path inside.
        dst: PathBuf,
    },
    /// Host `src` bound read-write at `dst`: writes land on the host.
    ReadWrite {
        /// Host path.
        src: PathBuf,
        /// Path inside.
        dst: PathBuf,
    },
    /// Host `src` visible and writable at `dst`; writes go to a tmpfs upper of
    /// `size` bytes and vanish when the sandbox exits.
    Overlay {
        /// Host path (the read-only lower layer).
        src: PathBuf,
        /// Path inside.
        dst: PathBuf,
        /// Cap on the bytes written, in bytes.
        size: u64,
    },
    /// A private tmpfs of `size` bytes at `dst`.
    Tmpfs {
        /// Path inside.
        dst: PathBuf,
        /// Size cap in bytes.
        size: u64,
    },
}

impl Mount {
    /// Where the grant appears inside the sandbox.
    pub fn dst(&self) -> &Path {
        match self {
            Mount::ReadOnly { dst, .. }
            | Mount::ReadWrite { dst, .. }
            | Mount::Overlay { dst, .. }
            | Mount::Tmpfs { dst, .. } => dst,
        }
    }

    /// The host path the grant exposes, if any.
    pub fn src(&self) -> Option<&Path> {
        match self {
            Mount::ReadOnly { src, .. }
            | Mount::ReadWrite { src, .. }
            | Mount::Overlay { src, .. } => Some(src),
            Mount::Tmpfs { .. } => None,
        }
    }
}

/// The sandbox's filesystem view: a minimal read-only root plus grants.
///
/// ```
/// use stockade::Fs;
/// let fs = Fs::minimal().ro("/usr/share/doc").rw("/tmp").tmpfs("/scratch", 16 << 20);
/// assert_eq!(fs.mounts().len(), 3);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fs {
    mounts: Vec<Mount>,
    tmp_size: u64,
}

impl Default for Fs {
    fn default() -> Self {
        Fs::minimal()
    }
}

impl Fs {
    /// The default view: system directories read-only, a private capped `/tmp`,
    /// a minimal `/dev`, a private `/proc`, and nothing of the host's home,
    /// `/root`, `/run`, `/var` or `/sys`.
    pub fn minimal() -> Self {
        Fs {
            mounts: Vec::new(),
            tmp_size: DEFAULT_TMP_SIZE,
        }
    }

    /// Bind host `path` read-only at the same path inside.
    pub fn ro(self, path: impl Into<PathBuf>) -> Self {
        let p = path.into();
        self.ro_at(p.clone(), p)
    }

    /// Bind host `src` read-only at `dst` inside.
    pub fn ro_at(mut self, src: impl Into<PathBuf>, dst: impl Into<PathBuf>) -> Self {
        self.mounts.push(Mount::ReadOnly {
            src: src.into(),
            dst: dst.into(),
        });
        self
    }

    /// Bind host `path` read-write at the same path inside.
    pub fn rw(self, path: impl Into<PathBuf>) -> Self {
        let p = path.into();
        self.rw_at(p.clone(), p)
    }

    /// Bind host `src` read-write at `dst` inside.
    pub fn rw_at(mut self, src: impl Into<PathBuf>, dst: impl Into<PathBuf>) -> Self {
        self.mounts.push(Mount::ReadWrite {
            src: src.into(),
            dst: dst.into(),
        });
        self
    }

    /// Show host `path` writable at the same path; writes are discarded at exit.
    pub fn overlay(self, path: impl Into<PathBuf>) -> Self {
        let p = path.into();
        self.overlay_at(p.clone(), p, DEFAULT_OVERLAY_SIZE)
    }

    /// Show host `src` writable at `dst`, with at most `size` bytes of writes kept
    /// in memory and discarded at exit.
    pub fn overlay_at(
        mut self,
        src: impl Into<PathBuf>,
        dst: impl Into<PathBuf>,
        size: u64,
    ) -> Self {
        self.mounts.push(Mount::Overlay {
            src: src.into(),
            dst: dst.into(),
            size,
        });
        self
    }

    /// A private tmpfs of `size` bytes at `dst`.
    pub fn tmpfs(mut self, dst: impl Into<PathBuf>, size: u64) -> Self {
        self.mounts.push(Mount::Tmpfs {
            dst: dst.into(),
            size,
        });
        self
    }

    /// Size cap of the private `/tmp` (default 256 MiB).
    pub fn tmp_size(mut self, bytes: u64) -> Self {
        self.tmp_size = bytes;
        self
    }

    /// Add an already-built grant.
    pub fn mount(mut self, m: Mount) -> Self {
        self.mounts.push(m);
        self
    }

    /// The grants, in the order they are applied.
    pub fn mounts(&self) -> &[Mount] {
        &self.mounts
    }

    /// The size cap of `/tmp`.
    pub fn tmp_size_bytes(&self) -> u64 {
        self.tmp_size
    }

    /// The first read-write grant's destination: the default working directory.
    pub fn first_rw_dst(&self) -> Option<&Path> {
        self.mounts.iter().find_map(|m| match m {
            Mount::ReadWrite { dst, .. } => Some(dst.as_path()),
            _ => None,
        })
    }

    /// Check every grant; host sources are canonicalized so that a symlink cannot
    /// redirect a grant after validation.
    pub fn validated(mut self) -> Result<Self, Error> {
        for m in &mut self.mounts {
            check_inside_path(m.dst(), "mount destination")?;
            if reserved_destination(m.dst()) {
                return Err(Error::policy(format!(
                    "{} cannot be a mount destination: it is part of the sandbox's own root",
                    m.dst().display()
                )));
            }
            let size = match m {
                Mount::Overlay { size, .. } | Mount::Tmpfs { size, .. } => Some(*size),
                _ => None,
            };
            if size == Some(0) {
                return Err(Error::policy(format!(
                    "size of {} must be greater than 0",
                    m.dst().display()
                )));
            }
            let overlay = matches!(m, Mount::Overlay { .. });
            let (src, writable) = match m {
                Mount::ReadOnly { src, .. } => (src, false),
                Mount::ReadWrite { src, .. } => (src, true),
                Mount::Overlay { src, .. } => (src, false),
                Mount::Tmpfs { .. } => continue,
            };
            let real = std::fs::canonicalize(&*src)
                .map_err(|e| Error::policy(format!("cannot grant {}: {}", src.display(), e)))?;
            if overlay && !real.is_dir() {
                return Err(Error::policy(format!(
                    "--overlay {} must be a directory (an overlay layers a writable tmpfs over a directory)",
                    src.display()
                )));
            }
            if writable && real == Path::new("/") {
                return Err(Error::policy(
                    "--rw of / is refused: it would hand the whole host to the sandbox",
                ));
            }
            if writable && is_kernel_fs(&real) {
                return Err(Error::policy(format!(
                    "--rw of {} is refused: kernel interfaces are never writable inside",
                    real.display()
                )));
            }
            *src = real;
        }
        Ok(self)
    }
}

/// Paths the minimal root builds itself and a grant may not replace.
fn reserved_destination(dst: &Path) -> bool {
    ["/", "/proc", "/dev", "/dev/pts"]
        .iter()
        .any(|r| dst == Path::new(r))
        || dst.starts_with("/proc")
}

fn is_kernel_fs(p: &Path) -> bool {
    ["/proc", "/sys", "/dev"].iter().any(|k| p.starts_with(k))
}

/// An inside path must be absolute and normalized (no `.`/`..`), so it cannot
/// walk out of the place it names.
pub(crate) fn check_inside_path(p: &Path, what: &str) -> Result<(), Error> {
    if !p.is_absolute() {
        return Err(Error::policy(format!(
            "{what} {} must be an absolute path",
            p.display()
        )));
    }
    if p.components()
        .any(|c| matches!(c, Component::ParentDir | Component::CurDir))
    {
        return Err(Error::policy(format!(
            "{what} {} must not contain `.` or `..`",
            p.display()
        )));
    }
    if p.as_os_str().as_encoded_bytes().contains(&0) {
        return Err(Error::policy(format!("{what} contains a NUL byte")));
    }
    Ok(())
}

/// Network policy.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Net {
    /// A network namespace with only loopback (the default).
    #[default]
    None,
    /// Egress only through the host-side domain-allowlist proxy: the explicit
    /// HTTP (`127.0.0.1:3128`) and SOCKS5 (`127.0.0.1:1080`) front ends, and
    /// the transparent mode (the sandbox's DNS answers allowed names with
    /// stand-in addresses; connections to them on 80/443 are proxied).
    Proxy(ProxyPolicy),
}

/// Allowlist for [`Net::Proxy`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProxyPolicy {
    /// Domains allowed through the proxy.
    pub allow: Vec<String>,
    /// Domains always refused (deny wins).
    pub deny: Vec<String>,
    /// CIDRs an allowed name may resolve into.
    pub allow_private: Vec<String>,
    /// Static `HOST:ADDR` entries for the proxy's resolver.
    pub resolve: Vec<String>,
}

/// System-call policy: the default seccomp allowlist plus the caller's
/// `.allow(names)` / `.deny(names)` overrides (see [`crate::seccomp`]).
pub use crate::seccomp::Policy as Syscalls;

/// Resource limits of the whole sandbox, enforced by a cgroup of its own
/// (v2, or v1 on hybrid hosts). Without a usable cgroup, `pids` alone falls
/// back to `RLIMIT_NPROC` (per user namespace) and `memory`/`cpu` fail closed
/// with [`crate::Error::Unsupported`] (exit 125). See
/// [`crate::ExitStatus::limits_level`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Limits {
    /// Memory cap in bytes.
    pub memory: Option<u64>,
    /// Maximum number of processes.
    pub pids: Option<u64>,
    /// CPU quota in cores (e.g. 1.5), stored in milli-cores.
    pub cpu_millis: Option<u64>,
}

impl Limits {
    /// No limits.
    pub fn new() -> Self {
        Limits::default()
    }
    /// Cap memory at `bytes`.
    pub fn memory(mut self, bytes: u64) -> Self {
        self.memory = Some(bytes);
        self
    }
    /// Cap the number of processes.
    pub fn pids(mut self, n: u64) -> Self {
        self.pids = Some(n);
        self
    }
    /// Cap CPU at `cores` cores.
    pub fn cpu(mut self, cores: f64) -> Self {
        self.cpu_millis = Some((cores * 1000.0).round() as u64);
        self
    }
    /// Whether any limit is set.
    pub fn is_empty(&self) -> bool {
        self.memory.is_none() && self.pids.is_none() && self.cpu_millis.is_none()
    }
}

/// Check that a working directory is a clean absolute path outside `/proc`.
pub(crate) fn check_cwd(cwd: &Path) -> Result<(), Error> {
    check_inside_path(cwd, "working directory")?;
    if cwd.starts_with("/proc") || cwd.starts_with("/dev") {
        return Err(Error::policy(format!(
            "working directory {} is refused: it must not be under /proc or /dev",
            cwd.display()
        )));
    }
    Ok(())
}

/// Validate a timeout value.
pub(crate) fn check_timeout(t: Duration) -> Result<(), Error> {
    if t.is_zero() {
        return Err(Error::policy("timeout must be greater than 0"));
    }
    Ok(())
}
