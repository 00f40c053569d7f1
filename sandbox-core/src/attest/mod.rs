//! Attestation from outside: check a running sandbox's containment from the
//! host side, reading only kernel state (`/proc`, the cgroup filesystem) and
//! never asking anything inside the sandbox, so an auditor need not trust the
//! agent (or the sandbox's own supervisor) to believe the result.
//!
//! [`attest_pid`] (the `stockade attest PID` command) takes any pid of a
//! sandbox, its init's host pid ([`crate::Child::pid`]) or any process in it,
//! finds the sandbox's init (PID 1 of the outermost pid namespace below ours,
//! walking up through parents), collects every process of the sandbox (the
//! init's descendants, the pids listed in its own cgroup, and every process we
//! can see in its pid namespace) and checks each [`Property`]:
//!
//! | property | kernel state read | applies to |
//! |---|---|---|
//! | `user-ns` ... `time-ns` | `/proc/PID/ns/*` differs from the attesting process's | init and every process |
//! | `loopback-only` | `/proc/PID/net/{dev,route,ipv6_route}`: only `lo`, every route on `lo` | every process |
//! | `seccomp` | `Seccomp: 2`, `Seccomp_filters` at least the init's + 1 (per thread) | every process but the init |
//! | `no-new-privs` | `NoNewPrivs: 1` (per thread) | every process but the init |
//! | `capabilities` | `CapInh/CapPrm/CapEff/CapBnd/CapAmb` all 0 (per thread) | init and every process |
//! | `id-maps` | `uid_map`/`gid_map` one id each, not host root, to the expected host id; `setgroups` deny | init and every process |
//! | `cgroup-limits` | `/proc/PID/cgroup` and the limit files of the sandbox's own cgroup | the sandbox |
//! | `landlock` | nothing: see below | - |
//! | `pid-ns-containment` | every process's `ns/pid` (or `NSpid` depth) equals the init's | every process |
//!
//! Decisions the kernel forces:
//!
//! - **The init and time**: the init enters its new time namespace with
//!   `unshare(CLONE_NEWTIME)`, which moves only its future children, so its own
//!   `ns/time` stays the creator's by construction. For the init, `time-ns`
//!   checks `time_for_children`, the namespace every process it forks gets;
//!   for every other process its own `ns/time` (and `ns/pid`, never the
//!   `*_for_children` links).
//! - **Seccomp count**: the init is not under the sandbox's filter; it
//!   inherited whatever filters its creator had. Every command adds exactly one
//!   (the last hop's), so the expected count is the init's `Seccomp_filters` + 1,
//!   read from the kernel, not assumed. A command may stack filters of its own
//!   (`seccomp` is allowed for self-restriction; filters only ever narrow), so
//!   more is a pass with a note; fewer is a failure.
//! - **Reading the init as an unprivileged user**: the init is non-dumpable,
//!   and the kernel lets only a `CAP_SYS_PTRACE` holder read its `ns/*` links.
//!   Then other world-readable files decide where they can: `pid-ns` by its
//!   `NSpid` depth (a deeper pid namespace is a different one), `user-ns` by
//!   its `uid_map` (the kernel shows the same map for the same namespace to the
//!   same reader, so a different map is a different namespace), `net-ns` by
//!   its `net/dev` interface list differing from ours, `mnt-ns` by a mount id
//!   in its `mountinfo` that ours lacks. `uts-ns`, `ipc-ns`, `cgroup-ns` and
//!   `time-ns` stay `unknown` for the init (attest as root to read them), while
//!   its commands are read as usual.
//! - **Judging without the host's record** (`stockade attest`): the id maps
//!   must have the launcher's shape (one id each, `setgroups` deny, never host
//!   root, and for a user namespace created by a non-root uid, that uid); a
//!   cgroup is the sandbox's own when its creator (the init's parent) is in
//!   another one, and its limit files are reported, not compared.
//! - **Landlock**: Linux (6.18 included) has no interface that shows a task's
//!   Landlock domain: no `/proc/PID/attr/landlock` (proposed, never merged), no
//!   `status` field; since 6.15 the audit log names a domain only when it
//!   denies something. So `landlock` is always `unknown`, with that reason.
//!
//! Races: a process that exits while it is read is left out (not a failure);
//! if the init exits, there is nothing left to attest ([`AttestError::Vanished`]).
//!
//! [`crate::Child::attest`] and [`crate::Session::attest`] do the same with the
//! host's own record of what it asked for: the exact id maps, the limits and
//! the cgroup directories it created.

mod cgroup;
mod procfs;
mod properties;
mod report;
mod tree;

#[cfg(test)]
mod tests;

use std::path::PathBuf;

pub use report::{Check, Outcome, Process, Property, Report, Role};

/// Why there is no report.
#[derive(Debug, thiserror::Error)]
pub enum AttestError {
    /// No process has that pid.
    #[error("no process with pid {0}: nothing to attest")]
    NoSuchProcess(u32),
    /// The sandbox's init exited while it was being read.
    #[error(
        "the sandbox init (pid {0}) exited while it was being attested: nothing left to attest"
    )]
    Vanished(u32),
    /// `/proc` could not be read.
    #[error("cannot read {path}: {source}; fix: attest on a host with /proc mounted")]
    Proc {
        /// What was read.
        path: String,
        /// The error from the kernel.
        #[source]
        source: std::io::Error,
    },
}

fn proc_error(path: &str) -> impl FnOnce(std::io::Error) -> AttestError + '_ {
    move |source| AttestError::Proc {
        path: path.to_string(),
        source,
    }
}

/// What the host asked for, when the host attests its own sandbox.
#[derive(Debug, Clone, Default)]
pub(crate) struct Expected {
    /// Inside and host ids of the single id each map must hold.
    pub ids: Option<Ids>,
    /// The limits asked for and what enforces them.
    pub limits: Option<(crate::Limits, crate::LimitsLevel)>,
    /// The cgroup directories created for the sandbox.
    pub cgroup_dirs: Vec<PathBuf>,
    /// A reduced-mode sandbox (`crate::reduced`): no namespaces expected.
    pub reduced: bool,
}

impl Expected {
    /// The host's record of a sandbox: its ids, the limits asked for and what
    /// enforces them.
    pub(crate) fn new(ids: Ids, limits: &crate::Limits, level: crate::LimitsLevel) -> Self {
        Expected {
            ids: Some(ids),
            limits: Some((limits.clone(), level)),
            cgroup_dirs: Vec::new(),
            reduced: false,
        }
    }

    /// The same, with the directories of the cgroup the host made (if any).
    pub(crate) fn with_cgroup(&self, cg: Option<&crate::cgroup::SandboxCgroup>) -> Self {
        let mut e = self.clone();
        e.cgroup_dirs = cg
            .map(|c| c.paths().into_iter().map(PathBuf::from).collect())
            .unwrap_or_default();
        e
    }
}

/// `inside_uid host_uid 1` and `inside_gid host_gid 1`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Ids {
    pub uid: u32,
    pub gid: u32,
    pub host_uid: u32,
    pub host_gid: u32,
}

/// Attest the sandbox that process `pid` belongs to (any of its processes),
/// from kernel state alone: what `stockade attest PID` prints.
pub fn attest_pid(pid: u32) -> Result<Report, AttestError> {
    attest(pid, &Expected::default())
}

/// [`attest_pid`], judged against what the host asked for.
pub(crate) fn attest(pid: u32, expected: &Expected) -> Result<Report, AttestError> {
    let snapshot = Snapshot::take(pid, expected)?;
    Ok(properties::evaluate(&snapshot, expected))
}

/// One process of the sandbox as read.
#[derive(Debug, Clone)]
pub(crate) struct Member {
    pub proc: procfs::Proc,
    pub role: Role,
    pub found_by: &'static str,
}

/// Everything read, before any judgement.
#[derive(Debug, Clone)]
pub(crate) struct Snapshot {
    /// The pid asked about.
    pub asked: u32,
    /// The attesting process itself.
    pub caller: procfs::Proc,
    /// The init's host pid, if the tree has one.
    pub init: Option<u32>,
    /// The root of the tree first.
    pub members: Vec<Member>,
    /// The root's cgroups.
    pub cgroup: cgroup::View,
    /// The root is a reduced-mode supervisor (no namespaces).
    pub reduced: bool,
}

impl Snapshot {
    fn take(pid: u32, expected: &Expected) -> Result<Snapshot, AttestError> {
        let caller = match procfs::read(std::process::id()).map_err(proc_error("/proc/self"))? {
            procfs::Read::Alive(p) => *p,
            procfs::Read::Vanished => {
                return Err(AttestError::Proc {
                    path: "/proc/self".into(),
                    source: std::io::Error::from_raw_os_error(libc::ENOENT),
                })
            }
        };
        let Some(depth) = tree::nspid(pid).map(|v| v.len()) else {
            return Err(AttestError::NoSuchProcess(pid));
        };
        let (root, is_init) = tree::root(pid, depth, caller.nspid.len())
            .map_err(proc_error("/proc"))?
            .ok_or(AttestError::NoSuchProcess(pid))?;
        // No pid namespace of its own: a reduced-mode supervisor's tree?
        let supervisor = if is_init {
            None
        } else {
            tree::reduced_supervisor(pid, caller.nspid.len()).map_err(proc_error("/proc"))?
        };
        let (root, reduced) = match supervisor {
            Some(sup) => (sup, true),
            None => (root, expected.reduced),
        };
        let root_proc = match procfs::read(root).map_err(proc_error("/proc"))? {
            procfs::Read::Alive(p) => *p,
            procfs::Read::Vanished if is_init => return Err(AttestError::Vanished(root)),
            procfs::Read::Vanished => return Err(AttestError::NoSuchProcess(pid)),
        };
        let parent_cgroup = std::fs::read_to_string(format!("/proc/{}/cgroup", root_proc.ppid));
        let view = cgroup::view(
            &root_proc.cgroup,
            parent_cgroup.ok().as_deref(),
            &expected.cgroup_dirs,
        );
        let found = tree::members(root, is_init, pid, &view.procs).map_err(proc_error("/proc"))?;
        let mut members = Vec::new();
        for (p, found_by) in found {
            let proc = if p == root {
                root_proc.clone()
            } else {
                match procfs::read(p).map_err(proc_error("/proc"))? {
                    procfs::Read::Alive(proc) => *proc,
                    procfs::Read::Vanished => continue,
                }
            };
            let role = if (is_init || reduced) && p == root {
                Role::Init
            } else {
                Role::Command
            };
            members.push(Member {
                proc,
                role,
                found_by,
            });
        }
        // Mounts made or removed in our namespace while we read must not look
        // like another namespace's: ours are the union of before and after.
        let mut caller = caller;
        if let (Some(ids), Some(after)) =
            (&mut caller.mount_ids, procfs::mount_ids(std::process::id()))
        {
            ids.extend(after);
        }
        // The init read first must still be there once everything was read.
        let init_now = procfs::running(root).ok().flatten().map(|s| s.start_time);
        if (is_init || reduced) && init_now != Some(root_proc.start_time) {
            return Err(AttestError::Vanished(root));
        }
        Ok(Snapshot {
            asked: pid,
            caller,
            init: (is_init || reduced).then_some(root),
            members,
            cgroup: view,
            reduced,
        })
    }
}
