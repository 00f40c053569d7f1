//! The last hop: sandbox init -> command -> `execve`.
//!
//! [`PreparedExec`] is built (allocating) in the init before it forks; the forked
//! child only calls [`PreparedExec::apply_raw`], which performs raw syscalls from
//! that plan and, on failure, writes a fixed-size `(step, errno)` record to a
//! CLOEXEC pipe and `_exit`s. No allocation, no locks, no panics on this path.

use std::ffi::CString;
use std::os::fd::RawFd;

use libc::c_char;
use nix::errno::Errno;

use crate::landlock::PreparedRuleset;
use crate::sys;

/// Which step of the last hop failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub enum Step {
    /// `setsid`: the command gets no controlling terminal it could push input to.
    Setsid = 1,
    /// Parent-death signal.
    DeathSignal,
    /// stdin/stdout/stderr.
    Stdio,
    /// Closing every other descriptor.
    CloseFds,
    /// `RLIMIT_CORE = 0`, `RLIMIT_NOFILE` capped, `RLIMIT_NPROC` (`--pids` without a cgroup).
    Rlimit,
    /// Clearing the capability sets.
    Capabilities,
    /// `PR_SET_NO_NEW_PRIVS`.
    NoNewPrivs,
    /// Working directory.
    Chdir,
    /// Signal mask.
    Signals,
    /// `landlock_restrict_self`.
    Landlock,
    /// Attaching the seccomp filter.
    Seccomp,
    /// `execve` itself.
    Exec,
}

impl Step {
    /// Decode a step number read from the pipe.
    pub fn from_u32(v: u32) -> Option<Step> {
        use Step::*;
        [
            Setsid,
            DeathSignal,
            Stdio,
            CloseFds,
            Rlimit,
            Capabilities,
            NoNewPrivs,
            Chdir,
            Signals,
            Landlock,
            Seccomp,
            Exec,
        ]
        .into_iter()
        .find(|s| *s as u32 == v)
    }

    /// Human name for error messages.
    pub fn name(self) -> &'static str {
        match self {
            Step::Setsid => "setsid",
            Step::DeathSignal => "set parent-death signal",
            Step::Stdio => "install stdio",
            Step::CloseFds => "close inherited descriptors",
            Step::Rlimit => "set RLIMIT_CORE, RLIMIT_NOFILE and RLIMIT_NPROC",
            Step::Capabilities => "clear capabilities",
            Step::NoNewPrivs => "set no_new_privs",
            Step::Chdir => "chdir to the working directory",
            Step::Signals => "reset signal mask",
            Step::Landlock => "landlock_restrict_self",
            Step::Seccomp => "attach the seccomp filter",
            Step::Exec => "execve",
        }
    }
}

/// Pass-through targets are below this; the init moves their sources and the
/// report pipe at or above it before forking.
pub const HIGH_FD: RawFd = 256;

/// The command's hard `RLIMIT_NOFILE` cap: far above what tools use (build
/// systems and language servers open a few thousand at most), far below the
/// 1M-plus hard limits containers often inherit.
pub const NOFILE_MAX: u64 = 65536;

/// Size of one `(step, errno)` record.
pub const RECORD: usize = 8;

/// The record that carries the seccomp listener (step 0 is no [`Step`]).
pub const LISTENER_RECORD: [u8; RECORD] = [0; RECORD];

/// Everything the command's process needs, ready before `fork`. The rings
/// are borrowed: a session's zygote prepares them once and lends them to
/// every command.
pub struct PreparedExec<'r> {
    path: CString,
    cwd: CString,
    // The pointer arrays point into these; they must live as long as `self`.
    _argv: Vec<CString>,
    _envp: Vec<CString>,
    argv_ptrs: Vec<*const c_char>,
    envp_ptrs: Vec<*const c_char>,
    /// Descriptors that become 0, 1, 2.
    stdio: [RawFd; 3],
    /// Declared pass-throughs: (source, target). Sources sit at or above
    /// [`HIGH_FD`], targets below it, so no `dup2` can clobber a source.
    passes: Vec<(RawFd, RawFd)>,
    /// Descriptors that survive, ascending: 0-2, the targets, the report pipe.
    keep: Vec<RawFd>,
    /// Where a failure's `(step, errno)` goes (CLOEXEC: gone at exec).
    report_fd: RawFd,
    /// Expected parent pid (the init is PID 1 of its namespace).
    parent: libc::pid_t,
    /// The Landlock ruleset to enforce (already built by the init).
    landlock: &'r PreparedRuleset,
    /// The seccomp program, attached last.
    filter: &'r [libc::sock_filter],
    /// Whether `filter` refuses with `USER_NOTIF` ([`Rings::notify`]).
    notify: bool,
    /// `RLIMIT_NPROC` for the command, if any.
    nproc: Option<u64>,
}

/// The access and syscall rings the last hop enforces, prepared by the init.
#[derive(Clone, Copy)]
pub struct Rings<'r> {
    /// Built Landlock ruleset; its descriptor must sit at or above [`HIGH_FD`].
    pub landlock: &'r PreparedRuleset,
    /// Compiled seccomp program (non-empty).
    pub filter: &'r [libc::sock_filter],
    /// The program refuses with `USER_NOTIF`: attach it with a listener and
    /// send the listener over the report socket (for the host, which
    /// answers and records each refusal) before `execve`.
    pub notify: bool,
    /// `RLIMIT_NPROC` (soft = hard), the `--pids` fallback without a cgroup.
    pub nproc: Option<u64>,
}

impl<'r> PreparedExec<'r> {
    /// Build the plan. Strings with interior NUL bytes are rejected by the caller.
    /// `report_fd` and every pass-through source must be at or above
    /// [`HIGH_FD`]; targets must be in `3..HIGH_FD` (checked by the policy).
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        path: CString,
        argv: Vec<CString>,
        envp: Vec<CString>,
        cwd: CString,
        stdio: [RawFd; 3],
        passes: Vec<(RawFd, RawFd)>,
        report_fd: RawFd,
        parent: libc::pid_t,
        rings: Rings<'r>,
    ) -> Self {
        let mut keep: Vec<RawFd> = vec![0, 1, 2, report_fd];
        // The ruleset descriptor is CLOEXEC: it lives until `execve`.
        keep.extend(rings.landlock.raw_fd());
        keep.extend(passes.iter().map(|&(_, target)| target));
        keep.sort_unstable();
        keep.dedup();
        let mut argv_ptrs: Vec<*const c_char> = argv.iter().map(|s| s.as_ptr()).collect();
        argv_ptrs.push(std::ptr::null());
        let mut envp_ptrs: Vec<*const c_char> = envp.iter().map(|s| s.as_ptr()).collect();
        envp_ptrs.push(std::ptr::null());
        PreparedExec {
            path,
            cwd,
            _argv: argv,
            _envp: envp,
            argv_ptrs,
            envp_ptrs,
            stdio,
            passes,
            keep,
            report_fd,
            parent,
            landlock: rings.landlock,
            filter: rings.filter,
            notify: rings.notify,
            nproc: rings.nproc,
        }
    }

    /// Run in the freshly forked child. Never returns: either `execve` succeeds or
    /// `(step, errno)` goes to `report_fd` and the process exits with 127.
    pub fn apply_raw(&self) -> ! {
        let err = match self.steps() {
            Ok(()) => (
                Step::Exec,
                sys::execve(&self.path, &self.argv_ptrs, &self.envp_ptrs),
            ),
            Err(e) => e,
        };
        // Built element by element: no slice copy, so no panic path here.
        let (s, e) = ((err.0 as u32).to_ne_bytes(), (err.1 as i32).to_ne_bytes());
        let rec: [u8; RECORD] = [s[0], s[1], s[2], s[3], e[0], e[1], e[2], e[3]];
        sys::write_all(self.report_fd, &rec);
        sys::exit_now(127)
    }

    fn steps(&self) -> Result<(), (Step, Errno)> {
        let at = |step: Step| move |e: Errno| (step, e);
        sys::setsid().map_err(at(Step::Setsid))?;
        sys::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong)
            .map_err(at(Step::DeathSignal))?;
        // The init may have died between fork and prctl; then nobody supervises us.
        if sys::getppid() != self.parent {
            return Err((Step::DeathSignal, Errno::ESRCH));
        }
        for (target, &fd) in self.stdio.iter().enumerate() {
            sys::dup2(fd, target as RawFd).map_err(at(Step::Stdio))?;
        }
        for &(source, target) in &self.passes {
            sys::dup2(source, target).map_err(at(Step::Stdio))?;
        }
        // Close everything but `keep`: 0-2, the declared pass-throughs, the
        // report pipe and the Landlock ruleset (both CLOEXEC, gone at exec).
        sys::close_fds_except(&self.keep).map_err(at(Step::CloseFds))?;
        sys::setrlimit(libc::RLIMIT_CORE, 0, 0).map_err(at(Step::Rlimit))?;
        // At most NOFILE_MAX descriptors (never raised: the caller's lower
        // limits stay), so a leak or a descriptor bomb stops early.
        let (cur, max) = sys::getrlimit(libc::RLIMIT_NOFILE).map_err(at(Step::Rlimit))?;
        let max = max.min(NOFILE_MAX);
        sys::setrlimit(libc::RLIMIT_NOFILE, cur.min(max), max).map_err(at(Step::Rlimit))?;
        if let Some(n) = self.nproc {
            sys::setrlimit(libc::RLIMIT_NPROC, n, n).map_err(at(Step::Rlimit))?;
        }
        sys::capset_zero().map_err(at(Step::Capabilities))?;
        sys::prctl(libc::PR_SET_NO_NEW_PRIVS, 1).map_err(at(Step::NoNewPrivs))?;
        sys::chdir(&self.cwd).map_err(at(Step::Chdir))?;
        // Rust runtimes ignore SIGPIPE; the command must get the default back.
        sys::default_signal(libc::SIGPIPE);
        sys::unblock_all_signals().map_err(at(Step::Signals))?;
        // Needs no_new_privs (set above).
        self.landlock.restrict_raw().map_err(at(Step::Landlock))?;
        // Last: from here on only `sendmsg`, `execve` (or the failure
        // record's `write` and `exit_group`) run, all on the allowlist (the
        // host checks that before it asks for a listener: a refusal here
        // would wait for a listener nobody reads yet).
        if self.notify {
            let listener =
                sys::seccomp_set_filter_listener(self.filter).map_err(at(Step::Seccomp))?;
            // CLOEXEC: our copy is gone at `execve`; the init's goes to the host.
            sys::send_fd(self.report_fd, &LISTENER_RECORD, listener).map_err(at(Step::Seccomp))?;
        } else {
            sys::seccomp_set_filter(self.filter).map_err(at(Step::Seccomp))?;
        }
        Ok(())
    }
}
