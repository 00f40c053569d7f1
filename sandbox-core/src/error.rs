//! The one error type. Every message says what failed, in which layer, the errno,
//! and how to fix the host.

use std::fmt;

use nix::errno::Errno;
use serde::{Deserialize, Serialize};

/// The sandbox layer an error belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Layer {
    /// The policy given by the caller.
    Policy,
    /// Finding, starting or talking to the `stockade-init` helper.
    Helper,
    /// The user namespace and its id maps.
    UserNamespace,
    /// pid, net, mount, uts, ipc, cgroup and time namespaces.
    Namespaces,
    /// The minimal root: mounts, overlay, `pivot_root`.
    Filesystem,
    /// Loopback-only network setup.
    Network,
    /// Dropping capabilities, `no_new_privs`, rlimits, session.
    Privileges,
    /// The seccomp filter.
    Seccomp,
    /// Landlock.
    Landlock,
    /// cgroup limits.
    Cgroup,
    /// The egress proxy.
    Proxy,
    /// Starting the program itself.
    Exec,
    /// The sandbox's PID 1 and its supervision.
    Supervisor,
}

impl Layer {
    /// Stable lower-case name, as used in reports.
    pub fn name(self) -> &'static str {
        match self {
            Layer::Policy => "policy",
            Layer::Helper => "helper",
            Layer::UserNamespace => "user namespace",
            Layer::Namespaces => "namespaces",
            Layer::Filesystem => "filesystem",
            Layer::Network => "network",
            Layer::Privileges => "privileges",
            Layer::Seccomp => "seccomp",
            Layer::Landlock => "landlock",
            Layer::Cgroup => "cgroup",
            Layer::Proxy => "proxy",
            Layer::Exec => "exec",
            Layer::Supervisor => "supervisor",
        }
    }
}

impl fmt::Display for Layer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A failed system step inside the helper, as reported over its pipe.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SetupFailure {
    /// Layer being built.
    pub layer: Layer,
    /// The operation, e.g. `mount /usr`.
    pub step: String,
    /// Raw errno (0 when the failure was not a syscall).
    pub errno: i32,
    /// Extra context.
    pub detail: String,
}

/// Everything that can go wrong creating or running a sandbox.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The policy is invalid; nothing was started.
    #[error("invalid policy: {0}")]
    Policy(String),

    /// The policy asks for something this build cannot enforce yet.
    #[error("{option} cannot be enforced ({layer} layer): {detail}")]
    Unsupported {
        /// The option asked for.
        option: String,
        /// The layer that would enforce it.
        layer: Layer,
        /// Why, and what to do.
        detail: String,
    },

    /// The `stockade-init` helper is missing, not runnable, or from another version.
    #[error("helper: {0}")]
    Helper(String),

    /// A layer could not be set up; nothing ran.
    #[error("{}", describe_setup(.0))]
    Setup(SetupFailure),

    /// The program does not exist inside the sandbox (exit 127).
    #[error("program not found inside the sandbox: {0}")]
    NotFound(String),

    /// The program exists but cannot be executed (exit 126).
    #[error("program not executable inside the sandbox: {program}: {reason}")]
    NotExecutable {
        /// The program.
        program: String,
        /// errno description.
        reason: String,
    },

    /// Talking to the sandbox failed.
    #[error("I/O with the sandbox failed: {0}")]
    Io(#[from] std::io::Error),
}

impl Error {
    pub(crate) fn policy(msg: impl Into<String>) -> Self {
        Error::Policy(msg.into())
    }

    /// The layer this error belongs to.
    pub fn layer(&self) -> Layer {
        match self {
            Error::Policy(_) => Layer::Policy,
            Error::Unsupported { layer, .. } => *layer,
            Error::Helper(_) => Layer::Helper,
            Error::Setup(f) => f.layer,
            Error::NotFound(_) | Error::NotExecutable { .. } => Layer::Exec,
            Error::Io(_) => Layer::Supervisor,
        }
    }

    /// The CLI exit code for this error (DESIGN.md's contract).
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::NotFound(_) => 127,
            Error::NotExecutable { .. } => 126,
            _ => 125,
        }
    }
}

fn errno_text(errno: i32) -> String {
    let e = Errno::from_raw(errno);
    format!("{e:?} ({})", e.desc())
}

/// Between a setup error's cause and its fix.
pub(crate) const FIX_SEPARATOR: &str = ". Fix: ";

/// The layer, the step, the errno, then the cause and the fix: diagnosed on
/// this host now where the errno alone does not tell the cause (see
/// `doctor::diagnose`), else the layer's known remedy.
fn describe_setup(f: &SetupFailure) -> String {
    let diagnosis = crate::doctor::diagnose::explain(f);
    let mut s = format!("{} layer: {} failed", f.layer, f.step);
    if f.errno != 0 {
        s.push_str(": ");
        s.push_str(&errno_text(f.errno));
    }
    let detail = match &diagnosis {
        Some(d) if d.replaces_detail => "",
        _ => f.detail.as_str(),
    };
    if !detail.is_empty() {
        s.push_str(": ");
        s.push_str(detail);
    }
    match diagnosis {
        Some(d) => {
            s.push_str(": ");
            s.push_str(&d.cause);
            s.push_str(FIX_SEPARATOR);
            s.push_str(&d.fix);
        }
        None => {
            if let Some(fix) = remedy(f.layer, f.errno) {
                s.push_str(FIX_SEPARATOR);
                s.push_str(fix);
            }
        }
    }
    s
}

/// The host remedy for a failed layer, when there is a known one.
pub(crate) fn remedy(layer: Layer, errno: i32) -> Option<&'static str> {
    let e = Errno::from_raw(errno);
    Some(match (layer, e) {
        (Layer::UserNamespace, Errno::ENOSPC) => {
            "the user-namespace limit is 0 or used up: sysctl -w user.max_user_namespaces=15000"
        }
        (Layer::UserNamespace, Errno::EPERM | Errno::EACCES) => {
            "unprivileged user namespaces are disabled or restricted. Debian: sysctl -w \
             kernel.unprivileged_userns_clone=1; Ubuntu 23.10+: allow them for the stockade \
             helper with an AppArmor profile granting `userns,` (or sysctl -w \
             kernel.apparmor_restrict_unprivileged_userns=0); in a container: run it with a \
             seccomp profile that allows clone/unshare of user namespaces (e.g. docker \
             --security-opt seccomp=unconfined) or run stockade on the host"
        }
        (Layer::UserNamespace, _) => "run `stockade doctor` and follow the user-namespaces row",
        (Layer::Namespaces, Errno::EPERM | Errno::EACCES) => {
            "the host refuses new namespaces inside a user namespace (container seccomp or LSM \
             policy); run stockade on the host or give the container a profile that allows \
             unshare/clone of namespaces"
        }
        (Layer::Namespaces, Errno::EINVAL) => {
            "the kernel lacks a namespace type (CONFIG_TIME_NS/CONFIG_CGROUPS/CONFIG_NET_NS); \
             stockade needs Linux 5.6 or later built with all namespaces"
        }
        (Layer::Filesystem, Errno::EPERM) => {
            "mounting inside the user namespace was refused; if /proc is partly masked (as in \
             containers), start the container with --security-opt systempaths=unconfined or \
             mount a full procfs"
        }
        (Layer::Filesystem, Errno::ENOENT) => "a granted path does not exist on the host",
        (Layer::Filesystem, Errno::EINVAL) => {
            "the kernel or the filesystem refused this mount. A root caller's grants are \
             idmapped mounts, which need Linux 5.12+ and a filesystem that supports them \
             (ext4, xfs, btrfs 5.15+, tmpfs 6.3+; not procfs, sysfs or most network \
             filesystems): grant a path on such a filesystem, or run stockade as an \
             unprivileged user, whose grants need no idmapping"
        }
        (Layer::Seccomp, Errno::EINVAL | Errno::ENOSYS) => {
            "the kernel refused the seccomp filter; stockade needs a kernel built with \
             CONFIG_SECCOMP=y and CONFIG_SECCOMP_FILTER=y (every distribution kernel has them)"
        }
        (Layer::Seccomp, Errno::EPERM) => {
            "a security policy around this process refused self-restriction (a container's \
             seccomp profile or an LSM); allow the seccomp(2) system call"
        }
        _ => return None,
    })
}
