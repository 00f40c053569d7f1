//! The cgroup layer: one cgroup per sandbox with memory, pids, cpu (and io weight)
//! limits, killing the whole tree, OOM/peak/cpu statistics, and removal at the end.
//!
//! # Why our own module and not `cgroups-rs`
//!
//! DESIGN.md ("Dependencies") asks to check `cgroups-rs` against three hosts. Checked
//! against its source (0.5.1):
//!
//! 1. *Pure v2 with a delegated subtree (unprivileged)*: fails. The v2 hierarchy is
//!    hard-coded at `/sys/fs/cgroup`; creating a cgroup writes `+controller` into the
//!    `cgroup.subtree_control` of the root and of every ancestor and **ignores the write
//!    errors** (a silent downgrade, which our fail-closed rule forbids); the controllers
//!    it checks against are the root's `cgroup.controllers`, not the delegated cgroup's;
//!    nothing detects delegation or the no-internal-processes rule; no directory fd for
//!    `CLONE_INTO_CGROUP`.
//! 2. *Hybrid/v1 as root (this project's test machine)*: half works. Mode detection is a
//!    `statfs` of `/sys/fs/cgroup` (tmpfs → v1), so the v2 `cgroup.kill` and
//!    `memory.events` are unreachable on hybrid hosts; on v1 `kill()` returns an error
//!    (no iterate-and-kill); `memory.oom_control` is parsed by position with `unwrap()`
//!    (a panic on an unexpected line); the caller's own cgroup per hierarchy must be
//!    worked out by hand.
//! 3. *Unprivileged without delegation*: fails: no detection, just a generic `FsError`
//!    at `mkdir` with no reason and no remedy to report in `doctor`.
//!
//! It would also bring 92 crates into the lock file (zbus and friends for its systemd
//! manager). The module here is ~1,000 lines plus tests, reads the kernel's files
//! directly, and reports every unusable controller with a reason and a fix.
//!
//! # Placement rules
//!
//! Sandbox cgroups are created only under the caller's own cgroup, per hierarchy, as
//! read from `/proc/self/cgroup` mapped through the mount roots in
//! `/proc/self/mountinfo`; nothing else is ever written, and everything created is
//! removed (also on error paths and on drop). One exception on v2, forced by the
//! kernel: a cgroup that holds processes (the caller's own, unless it is the real root)
//! cannot enable controllers for its children, and stockade never moves the caller.
//! There the sandbox cgroup goes next to the caller's cgroup inside the delegated unit
//! that directly contains it (systemd's `Delegate=yes` + `DelegateSubgroup=` layout);
//! without such a unit v2 is unavailable, with [`detect::DELEGATE_REMEDY`] as remedy.
//! Nothing here downgrades silently: asking for a limit whose controller is unusable is
//! a [`CgroupError::Unavailable`]; the caller decides the fallback (rlimits) or fails.
//!
//! # Wiring
//!
//! Only when [`crate::Limits`] are set ([`create_for`]): the host (the library's
//! process, which owns the result) detects once ([`available`]), creates the
//! cgroup, and opens each directory's `cgroup.procs`. Those files travel with the
//! plan as extra descriptors ([`crate::launch::wire::Plan::cgroup_procs`]); the
//! outer half (the helper, or the CLI itself in-process) writes the init's pid
//! into each after the clone and before sending `Go`, so the init has run nothing
//! of the plan and forked nothing yet. The same code serves v1 and v2 and both
//! paths, including pre-warmed helpers whose init was cloned before the plan
//! existed (which also rules out `CLONE_INTO_CGROUP`). The `SandboxCgroup` stays
//! in the `Child` or `Session`: counters are read when the exit is reported and
//! the cgroup is killed and removed when its owner ends.

// Some accessors serve only the tests.
#![cfg_attr(not(test), allow(dead_code))]

pub(crate) mod detect;
mod v1;
mod v2;

use std::io::{self, Write};
use std::os::fd::BorrowedFd;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

#[allow(unused_imports)]
pub(crate) use detect::{Available, Probe, Unusable, V1Dirs, V2Base};

/// A cgroup controller stockade limits with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum Controller {
    /// `memory`.
    Memory,
    /// `pids`.
    Pids,
    /// `cpu`.
    Cpu,
    /// `io` (v2 only).
    Io,
}

impl Controller {
    /// All of them, in report order.
    pub(crate) const ALL: [Controller; 4] = [
        Controller::Memory,
        Controller::Pids,
        Controller::Cpu,
        Controller::Io,
    ];

    /// The kernel's name.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Controller::Memory => "memory",
            Controller::Pids => "pids",
            Controller::Cpu => "cpu",
            Controller::Io => "io",
        }
    }
}

/// [`Available::detect`] for this process, once.
pub(crate) fn available() -> &'static Available {
    static AVAIL: std::sync::OnceLock<Available> = std::sync::OnceLock::new();
    AVAIL.get_or_init(Available::detect)
}

/// A fresh cgroup with `limits` for one sandbox, or why the limits cannot be
/// enforced (fail closed: nothing runs).
pub(crate) fn create_for(limits: &crate::Limits) -> Result<SandboxCgroup, crate::Error> {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let name = format!(
        "stockade-{}-{}-{nanos:x}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    );
    SandboxCgroup::create(available(), &name, &limits.into()).map_err(|e| match e {
        CgroupError::Unavailable(u) => crate::Error::Unsupported {
            option: format!("--{}", u.controller.name()),
            layer: crate::error::Layer::Cgroup,
            detail: format!("{}; nothing was run; fix: {}", u.why, u.fix),
        },
        e => {
            let errno = match &e {
                CgroupError::Io { source, .. } => source.raw_os_error().unwrap_or(0),
                _ => 0,
            };
            crate::Error::Setup(crate::error::SetupFailure {
                layer: crate::error::Layer::Cgroup,
                step: "create the sandbox cgroup".into(),
                errno,
                detail: e.to_string(),
            })
        }
    })
}

/// The limits of one sandbox cgroup.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct CgroupLimits {
    /// Memory cap in bytes, swap included (v2 `memory.max` + `memory.swap.max = 0`;
    /// v1 `memory.limit_in_bytes` + `memory.memsw.limit_in_bytes`).
    pub memory: Option<u64>,
    /// `pids.max`.
    pub pids: Option<u64>,
    /// CPU quota in milli-cores (1000 = one core), at a 100 ms period.
    pub cpu_millis: Option<u64>,
    /// v2 `io.weight` (1..=10000).
    pub io_weight: Option<u16>,
}

impl From<&crate::Limits> for CgroupLimits {
    fn from(l: &crate::Limits) -> Self {
        CgroupLimits {
            memory: l.memory,
            pids: l.pids,
            cpu_millis: l.cpu_millis,
            io_weight: None,
        }
    }
}

/// The CFS period stockade uses, in microseconds.
pub(crate) const CPU_PERIOD_US: u64 = 100_000;

impl CgroupLimits {
    /// The controllers these limits need.
    pub(crate) fn controllers(&self) -> Vec<Controller> {
        let mut v = Vec::new();
        if self.memory.is_some() {
            v.push(Controller::Memory);
        }
        if self.pids.is_some() {
            v.push(Controller::Pids);
        }
        if self.cpu_millis.is_some() {
            v.push(Controller::Cpu);
        }
        if self.io_weight.is_some() {
            v.push(Controller::Io);
        }
        v
    }

    /// The quota in microseconds per [`CPU_PERIOD_US`].
    fn cpu_quota_us(millis: u64) -> u64 {
        millis.saturating_mul(CPU_PERIOD_US) / 1000
    }

    fn validate(&self) -> Result<(), CgroupError> {
        if self.memory == Some(0) {
            return Err(CgroupError::Invalid("memory limit must be > 0".into()));
        }
        if self.pids == Some(0) {
            return Err(CgroupError::Invalid("pids limit must be >= 1".into()));
        }
        if let Some(m) = self.cpu_millis {
            // The kernel's minimum quota is 1 ms per period.
            if Self::cpu_quota_us(m) < 1000 {
                return Err(CgroupError::Invalid(format!(
                    "cpu limit {m} milli-cores is below the kernel minimum of 10 (1 ms per 100 ms)"
                )));
            }
        }
        if let Some(w) = self.io_weight {
            if !(1..=10000).contains(&w) {
                return Err(CgroupError::Invalid(format!(
                    "io weight {w} is outside 1..=10000"
                )));
            }
        }
        Ok(())
    }
}

/// What the kernel counted for one sandbox cgroup.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct CgroupStats {
    /// The OOM killer killed at least one process of the cgroup (from the kernel's
    /// counter, never guessed from SIGKILL).
    pub oom_killed: bool,
    /// How many (v2 `memory.events` `oom_kill`, v1 `memory.oom_control` `oom_kill`);
    /// None when the kernel does not count (no memory controller, v1 before 4.13).
    pub oom_kills: Option<u64>,
    /// Peak memory use in bytes (v2 `memory.peak`, 5.19+; v1 `memory.max_usage_in_bytes`).
    pub peak_memory: Option<u64>,
    /// CPU time of all processes (v2 `cpu.stat` `usage_usec`, v1 `cpuacct.usage`).
    pub cpu_time: Option<Duration>,
    /// CFS periods in which the quota throttled the cgroup (`cpu.stat` `nr_throttled`).
    pub cpu_throttled: Option<u64>,
    /// Forks refused at `pids.max` (`pids.events` `max`).
    pub pids_max_hits: Option<u64>,
}

/// A cgroup failure: the controller (or `cgroup` for core files), the path, the errno
/// and the fix. Never a silent downgrade.
#[derive(Debug, thiserror::Error)]
pub(crate) enum CgroupError {
    /// A limit was asked for but its controller cannot be used on this host.
    #[error("cgroup {}: cannot enforce the {} limit: {}; fix: {}", .0.controller.name(), .0.controller.name(), .0.why, .0.fix)]
    Unavailable(Unusable),
    /// A cgroup file or directory operation failed.
    #[error("cgroup {controller}: cannot {op} {}: {source}; fix: {fix}", path.display())]
    Io {
        /// `memory`, `pids`, `cpu`, `cpuacct`, `io` or `cgroup` (core files).
        controller: &'static str,
        /// What was attempted (`create`, `write "64M" to`, `read`, `remove`...).
        op: String,
        /// The file or directory.
        path: PathBuf,
        /// The error from the kernel.
        #[source]
        source: io::Error,
        /// How to fix it.
        fix: String,
    },
    /// The cgroup still holds processes after killing them for a while.
    #[error("cgroup: {} still holds processes {pids:?} after {waited:?} of SIGKILL; fix: find what keeps them alive (a task in uninterruptible sleep, e.g. on a hung NFS mount) and remove the directory by hand once they are gone", path.display())]
    Busy {
        /// The cgroup directory.
        path: PathBuf,
        /// Processes still listed in its `cgroup.procs`.
        pids: Vec<u32>,
        /// How long we tried.
        waited: Duration,
    },
    /// Invalid arguments (name, limits).
    #[error("cgroup: {0}")]
    Invalid(String),
}

/// The fix for a failed operation, from its errno.
fn fix_for(err: &io::Error, path: &Path) -> String {
    match err.raw_os_error() {
        Some(libc::EACCES) | Some(libc::EPERM) => format!(
            "{} is not writable by this user: run as root (v1/hybrid hosts) or in a delegated \
             cgroup ({})",
            path.display(),
            detect::DELEGATE_REMEDY
        ),
        Some(libc::EROFS) => {
            "the cgroup filesystem is mounted read-only: remount it rw or run on the host".into()
        }
        Some(libc::ENOENT) => format!(
            "{} does not exist: the controller is not enabled for this cgroup (check \
             cgroup.subtree_control of the parent) or the kernel is too old",
            path.display()
        ),
        Some(libc::EBUSY) => "cgroup v2's no-internal-processes rule: the parent cgroup holds \
                              processes, so controllers cannot be enabled for its children"
            .into(),
        Some(libc::EEXIST) => "a cgroup of that name already exists: use a unique name \
                               (stockade never reuses a cgroup it did not create)"
            .into(),
        Some(libc::EINVAL) => "the kernel refused the value (out of range, below current \
                               usage, or memsw lower than the memory limit)"
            .into(),
        _ => "see the kernel error".into(),
    }
}

fn io_err(controller: &'static str, op: String, path: &Path, source: io::Error) -> CgroupError {
    let fix = fix_for(&source, path);
    CgroupError::Io {
        controller,
        op,
        path: path.to_path_buf(),
        source,
        fix,
    }
}

/// Write `value` to the existing control file `path` in one `write(2)` (never creates).
fn write_file(controller: &'static str, path: &Path, value: &str) -> Result<(), CgroupError> {
    std::fs::OpenOptions::new()
        .write(true)
        .open(path)
        .and_then(|mut f| f.write_all(value.as_bytes()))
        .map_err(|e| io_err(controller, format!("write {value:?} to"), path, e))
}

fn read_file(controller: &'static str, path: &Path) -> Result<String, CgroupError> {
    std::fs::read_to_string(path).map_err(|e| io_err(controller, "read".into(), path, e))
}

/// `read_file`, but a missing file is `None` (a counter this kernel does not have).
fn read_optional(controller: &'static str, path: &Path) -> Result<Option<String>, CgroupError> {
    match std::fs::read_to_string(path) {
        Ok(t) => Ok(Some(t)),
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(None),
        Err(e) => Err(io_err(controller, "read".into(), path, e)),
    }
}

/// The value of `key` in a flat-keyed file (`key value` per line).
fn keyed(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|l| {
        let (k, v) = l.split_once(' ')?;
        (k == key).then(|| v.trim().parse().ok()).flatten()
    })
}

fn parse_u64(text: &str) -> Option<u64> {
    text.trim().parse().ok()
}

/// The pids listed in `dir/cgroup.procs`.
fn procs(dir: &Path) -> Result<Vec<u32>, CgroupError> {
    Ok(read_file("cgroup", &dir.join("cgroup.procs"))?
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect())
}

/// `mkdir dir` for a new sandbox cgroup.
fn make_dir(controller: &'static str, dir: &Path) -> Result<(), CgroupError> {
    std::fs::create_dir(dir).map_err(|e| io_err(controller, "create".into(), dir, e))
}

fn pidfd_open(pid: u32) -> io::Result<std::os::fd::OwnedFd> {
    use std::os::fd::FromRawFd;
    // SAFETY: pidfd_open takes a pid and flags (0) and returns a new fd or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid as libc::pid_t, 0u32) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the kernel just returned this fd to us; nobody else owns it.
    Ok(unsafe { std::os::fd::OwnedFd::from_raw_fd(fd as i32) })
}

fn pidfd_kill(fd: BorrowedFd<'_>) {
    use std::os::fd::AsRawFd;
    // SAFETY: a valid pidfd, SIGKILL, no siginfo (NULL), flags 0. ESRCH (already dead)
    // is fine and ignored.
    unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            fd.as_raw_fd(),
            libc::SIGKILL,
            std::ptr::null::<libc::siginfo_t>(),
            0u32,
        );
    }
}

/// SIGKILL every process in `dir` until `cgroup.procs` is empty (v1, and v2 before
/// `cgroup.kill`). A pid is signalled through a pidfd opened *before* re-reading
/// `cgroup.procs`: if the pid is still listed then, the pidfd's process is the one in
/// the cgroup (a pid number belongs to one live process), so a recycled pid of an
/// unrelated process is never killed.
fn kill_loop(dir: &Path, deadline: Duration) -> Result<(), CgroupError> {
    use std::os::fd::{AsFd, OwnedFd};
    enum Handle {
        Pidfd(OwnedFd),
        /// Kernel < 5.3: no pidfd_open.
        NoPidfd,
        /// Exited already.
        Gone,
    }
    let start = Instant::now();
    let mut nap = Duration::from_micros(200);
    loop {
        let first = procs(dir)?;
        if first.is_empty() {
            return Ok(());
        }
        let handles: Vec<(u32, Handle)> = first
            .iter()
            .map(|&p| match pidfd_open(p) {
                Ok(fd) => (p, Handle::Pidfd(fd)),
                Err(e) if e.raw_os_error() == Some(libc::ENOSYS) => (p, Handle::NoPidfd),
                Err(_) => (p, Handle::Gone),
            })
            .collect();
        let now = procs(dir)?;
        for (pid, handle) in &handles {
            if !now.contains(pid) {
                continue;
            }
            match handle {
                Handle::Pidfd(fd) => pidfd_kill(fd.as_fd()),
                Handle::NoPidfd => {
                    // Plain kill(2), racing with pid reuse like every pre-pidfd tool.
                    let _ = nix::sys::signal::kill(
                        nix::unistd::Pid::from_raw(*pid as i32),
                        nix::sys::signal::Signal::SIGKILL,
                    );
                }
                Handle::Gone => {}
            }
        }
        if start.elapsed() > deadline {
            let pids = procs(dir)?;
            if pids.is_empty() {
                return Ok(());
            }
            return Err(CgroupError::Busy {
                path: dir.to_path_buf(),
                pids,
                waited: start.elapsed(),
            });
        }
        std::thread::sleep(nap);
        nap = (nap * 2).min(Duration::from_millis(10));
    }
}

/// `rmdir` the cgroup `dir`; while it is busy, remove its sub-cgroups (depth first) and
/// kill its processes, then retry, until `deadline`. A missing directory counts as
/// removed.
fn remove_dir(controller: &'static str, dir: &Path, deadline: Duration) -> Result<(), CgroupError> {
    let start = Instant::now();
    loop {
        match std::fs::remove_dir(dir) {
            Ok(()) => return Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => return Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) && start.elapsed() < deadline => {
                let left = deadline.saturating_sub(start.elapsed());
                if let Ok(entries) = std::fs::read_dir(dir) {
                    for entry in entries.flatten() {
                        if entry.file_type().is_ok_and(|t| t.is_dir()) {
                            remove_dir(controller, &entry.path(), left)?;
                        }
                    }
                }
                kill_loop(dir, deadline.saturating_sub(start.elapsed()))?;
                std::thread::sleep(Duration::from_millis(1));
            }
            Err(e) => return Err(io_err(controller, "remove".into(), dir, e)),
        }
    }
}

/// How long `kill`/`remove` keep trying.
const KILL_DEADLINE: Duration = Duration::from_secs(5);

/// Check that `name` is one plain directory name of our own.
fn check_name(name: &str) -> Result<(), CgroupError> {
    let ok = !name.is_empty()
        && name.len() <= 128
        && name.as_bytes()[0].is_ascii_alphanumeric()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if ok {
        Ok(())
    } else {
        Err(CgroupError::Invalid(format!(
            "cgroup name {name:?} must start with a letter or digit and contain only \
             [A-Za-z0-9._-] (at most 128 bytes)"
        )))
    }
}

/// One sandbox's cgroup (v2) or set of cgroups (one per v1 hierarchy).
///
/// Lifecycle for the launcher: `create` before starting the sandbox; on v2 pass
/// [`SandboxCgroup::clone_into_fd`] to `clone3(CLONE_INTO_CGROUP)` so the sandbox's
/// init starts inside it, otherwise [`SandboxCgroup::attach`] the init's pid right after
/// clone and before it execs or forks; at the end [`SandboxCgroup::stats`], then
/// [`SandboxCgroup::remove`] (or drop), which kills whatever is left first.
#[derive(Debug)]
pub(crate) struct SandboxCgroup {
    inner: Inner,
    removed: bool,
}

#[derive(Debug)]
enum Inner {
    V2(v2::V2Cgroup),
    V1(v1::V1Cgroup),
}

impl SandboxCgroup {
    /// Create the cgroup `name` where `avail` says, with `limits`. Every limit asked for
    /// must be enforceable (else [`CgroupError::Unavailable`]); on any error nothing is
    /// left behind.
    pub(crate) fn create(
        avail: &Available,
        name: &str,
        limits: &CgroupLimits,
    ) -> Result<SandboxCgroup, CgroupError> {
        check_name(name)?;
        limits.validate()?;
        for c in limits.controllers() {
            if let Some(u) = avail.unusable(c) {
                return Err(CgroupError::Unavailable(u));
            }
        }
        let inner = match avail {
            Available::V2(base) => Inner::V2(v2::V2Cgroup::create(base, name, limits)?),
            Available::V1(dirs) => Inner::V1(v1::V1Cgroup::create(dirs, name, limits)?),
            Available::None { why, remedy } => {
                return Err(CgroupError::Unavailable(Unusable {
                    controller: limits
                        .controllers()
                        .first()
                        .copied()
                        .unwrap_or(Controller::Pids),
                    why: why.clone(),
                    fix: remedy.clone(),
                }))
            }
        };
        Ok(SandboxCgroup {
            inner,
            removed: false,
        })
    }

    /// Move process `pid` (all its threads) into the cgroup, in every hierarchy.
    pub(crate) fn attach(&self, pid: u32) -> Result<(), CgroupError> {
        match &self.inner {
            Inner::V2(c) => c.attach(pid),
            Inner::V1(c) => c.attach(pid),
        }
    }

    /// v2: the cgroup directory, for `clone3` with `CLONE_INTO_CGROUP` (kernel 5.7+).
    /// None on v1.
    pub(crate) fn clone_into_fd(&self) -> Option<BorrowedFd<'_>> {
        match &self.inner {
            Inner::V2(c) => Some(c.fd()),
            Inner::V1(_) => None,
        }
    }

    /// Whether swap is capped too (v2 `memory.swap.max`, v1 memsw); false when the
    /// kernel does not account swap, so the memory limit covers RAM only.
    pub(crate) fn swap_capped(&self) -> bool {
        match &self.inner {
            Inner::V2(c) => c.swap_capped,
            Inner::V1(c) => c.swap_capped,
        }
    }

    /// What enforces the limits.
    pub(crate) fn level(&self) -> crate::LimitsLevel {
        match &self.inner {
            Inner::V2(_) => crate::LimitsLevel::CgroupV2,
            Inner::V1(_) => crate::LimitsLevel::CgroupV1,
        }
    }

    /// The directories created (one on v2, one per v1 hierarchy).
    pub(crate) fn paths(&self) -> Vec<&Path> {
        match &self.inner {
            Inner::V2(c) => vec![c.dir.as_path()],
            Inner::V1(c) => c.dirs.iter().map(|(_, d)| d.as_path()).collect(),
        }
    }

    /// The processes in the cgroup.
    pub(crate) fn pids(&self) -> Result<Vec<u32>, CgroupError> {
        procs(self.paths()[0])
    }

    /// SIGKILL every process in the cgroup and wait until none is left (v2
    /// `cgroup.kill`; v1 iterate `cgroup.procs`).
    pub(crate) fn kill(&self) -> Result<(), CgroupError> {
        match &self.inner {
            Inner::V2(c) => c.kill(),
            Inner::V1(c) => c.kill(),
        }
    }

    /// The kernel's counters.
    pub(crate) fn stats(&self) -> Result<CgroupStats, CgroupError> {
        match &self.inner {
            Inner::V2(c) => c.stats(),
            Inner::V1(c) => c.stats(),
        }
    }

    /// Kill what is left and remove the cgroup directories.
    pub(crate) fn remove(mut self) -> Result<(), CgroupError> {
        self.removed = true;
        self.remove_inner()
    }

    fn remove_inner(&self) -> Result<(), CgroupError> {
        let mut first_err = None;
        for dir in self.paths() {
            if let Err(e) = remove_dir("cgroup", dir, KILL_DEADLINE) {
                first_err.get_or_insert(e);
            }
        }
        first_err.map_or(Ok(()), Err)
    }
}

impl Drop for SandboxCgroup {
    fn drop(&mut self) {
        if !self.removed {
            let _ = self.remove_inner();
        }
    }
}

#[cfg(test)]
mod tests;
