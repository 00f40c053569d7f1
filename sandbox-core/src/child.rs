//! A running sandbox, its pipes, and how it ended. Named after
//! `std::process` where the concept exists there.

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::capture;
use crate::error::Error;
use crate::kill_handle::KillHandle;
use crate::launch::wire::{self, Report};
use crate::launch::{Keeper, Launched};

/// What to connect to one of the command's stdin/stdout/stderr.
#[derive(Debug, Clone)]
pub enum Stdio {
    /// The caller's own descriptor.
    Inherit,
    /// `/dev/null`.
    Null,
    /// A new pipe, available on [`Child`].
    Piped,
    /// A descriptor of the caller's (duplicated into the sandbox).
    Fd(Arc<OwnedFd>),
}

impl Stdio {
    /// The caller's own descriptor.
    pub fn inherit() -> Self {
        Stdio::Inherit
    }
    /// `/dev/null`.
    pub fn null() -> Self {
        Stdio::Null
    }
    /// A pipe to the caller.
    pub fn piped() -> Self {
        Stdio::Piped
    }
}

impl From<OwnedFd> for Stdio {
    fn from(fd: OwnedFd) -> Self {
        Stdio::Fd(Arc::new(fd))
    }
}

impl From<File> for Stdio {
    fn from(f: File) -> Self {
        Stdio::from(OwnedFd::from(f))
    }
}

macro_rules! pipe_end {
    ($name:ident, $doc:literal) => {
        #[doc = $doc]
        #[derive(Debug)]
        pub struct $name(pub(crate) File);

        impl AsFd for $name {
            fn as_fd(&self) -> BorrowedFd<'_> {
                self.0.as_fd()
            }
        }
        impl AsRawFd for $name {
            fn as_raw_fd(&self) -> RawFd {
                self.0.as_raw_fd()
            }
        }
        impl From<$name> for OwnedFd {
            fn from(p: $name) -> OwnedFd {
                p.0.into()
            }
        }
    };
}

pipe_end!(ChildStdin, "The writing end of the command's stdin.");
pipe_end!(ChildStdout, "The reading end of the command's stdout.");
pipe_end!(ChildStderr, "The reading end of the command's stderr.");

impl Write for ChildStdin {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}
impl Read for ChildStdout {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.read(buf)
    }
}
impl Read for ChildStderr {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.read(buf)
    }
}

/// What enforced the [`crate::Limits`] of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LimitsLevel {
    /// No limits were asked for (no cgroup was created).
    #[default]
    None,
    /// A cgroup on the v1 hierarchies (hybrid hosts).
    CgroupV1,
    /// A cgroup v2 cgroup.
    CgroupV2,
    /// No cgroup could be made; only `--pids` was asked for and is enforced by
    /// `RLIMIT_NPROC`, counted per user namespace (Linux 5.14+).
    Rlimit,
}

impl LimitsLevel {
    /// `none`, `cgroup v1` or `cgroup v2`.
    pub fn name(self) -> &'static str {
        match self {
            LimitsLevel::None => "none",
            LimitsLevel::CgroupV1 => "cgroup v1",
            LimitsLevel::CgroupV2 => "cgroup v2",
            LimitsLevel::Rlimit => "rlimit",
        }
    }
}

/// What the sandbox's cgroup counted (all None without limits).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Usage {
    pub level: LimitsLevel,
    pub oom_killed: Option<bool>,
    pub peak_memory: Option<u64>,
    pub cpu_time: Option<Duration>,
    pub pids_max_hits: Option<u64>,
}

impl Usage {
    /// Read the counters of `cg` (None: no cgroup, all unknown, at `level`).
    pub(crate) fn of(cg: Option<&crate::cgroup::SandboxCgroup>, level: LimitsLevel) -> Usage {
        let Some(cg) = cg else {
            return Usage {
                level,
                ..Usage::default()
            };
        };
        let level = cg.level();
        match cg.stats() {
            Ok(st) => Usage {
                level,
                oom_killed: Some(st.oom_killed),
                peak_memory: st.peak_memory,
                cpu_time: st.cpu_time,
                pids_max_hits: st.pids_max_hits,
            },
            Err(_) => Usage {
                level,
                ..Usage::default()
            },
        }
    }
}

/// How a sandboxed command ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExitStatus {
    pub(crate) code: Option<i32>,
    pub(crate) signal: Option<i32>,
    pub(crate) timed_out: bool,
    pub(crate) duration: Duration,
    pub(crate) landlock_abi: u32,
    pub(crate) usage: Usage,
    /// The full mode's layers the run went without (empty: full mode).
    pub(crate) missing: &'static [&'static str],
}

impl ExitStatus {
    /// Exit code, if the command exited on its own.
    pub fn code(&self) -> Option<i32> {
        self.code
    }
    /// The signal that killed the command, if any.
    pub fn signal(&self) -> Option<i32> {
        self.signal
    }
    /// Whether the timeout fired (the whole tree was then killed).
    pub fn timed_out(&self) -> bool {
        self.timed_out
    }
    /// Exit code 0 and no timeout.
    pub fn success(&self) -> bool {
        self.code == Some(0) && !self.timed_out
    }
    /// Wall-clock time from spawn to the end of the whole tree.
    pub fn duration(&self) -> Duration {
        self.duration
    }
    /// The Landlock ABI the command ran under; 0 only when the caller
    /// accepted running without Landlock on a host that lacks it.
    pub fn landlock_abi(&self) -> u32 {
        self.landlock_abi
    }
    /// Whether the kernel's OOM killer killed a process of the sandbox (from
    /// the cgroup's own counter, never guessed from SIGKILL); None when no
    /// memory-accounting cgroup was used (no limits).
    pub fn oom_killed(&self) -> Option<bool> {
        self.usage.oom_killed
    }
    /// Peak memory of the whole sandbox in bytes (cgroup; None without limits).
    pub fn peak_memory(&self) -> Option<u64> {
        self.usage.peak_memory
    }
    /// CPU time of every process of the sandbox (cgroup; None without limits).
    pub fn cpu_time(&self) -> Option<Duration> {
        self.usage.cpu_time
    }
    /// Process creations refused at the `--pids` limit (cgroup; None
    /// without one).
    pub fn pids_max_hits(&self) -> Option<u64> {
        self.usage.pids_max_hits
    }
    /// What enforced the limits ([`LimitsLevel::None`] when none were set).
    pub fn limits_level(&self) -> LimitsLevel {
        self.usage.level
    }
    /// Full mode, or reduced mode ([`crate::Sandbox::allow_reduced`]).
    pub fn mode(&self) -> crate::reduced::Mode {
        mode_of(self.missing)
    }
    /// The full mode's layers this run went without (empty in full mode):
    /// see [`crate::reduced::Mode::missing_layers`].
    pub fn missing_layers(&self) -> &'static [&'static str] {
        self.missing
    }
    /// The CLI's exit status: the program's own, `128+N` for signal N, `124`
    /// on timeout.
    pub fn exit_code(&self) -> i32 {
        if self.timed_out {
            124
        } else if let Some(c) = self.code {
            c
        } else {
            128 + self.signal.unwrap_or(libc::SIGKILL)
        }
    }
}

impl std::fmt::Display for ExitStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (self.timed_out, self.code, self.signal) {
            (true, _, _) => write!(f, "timed out"),
            (_, Some(c), _) => write!(f, "exit status: {c}"),
            (_, _, Some(s)) => write!(f, "killed by signal {s}"),
            _ => write!(f, "unknown"),
        }
    }
}

/// Everything a finished command produced.
#[derive(Debug, Clone)]
pub struct Output {
    /// How it ended.
    pub status: ExitStatus,
    /// Its standard output.
    pub stdout: Vec<u8>,
    /// Its standard error.
    pub stderr: Vec<u8>,
    /// Whether stdout or stderr was cut at the cap given to `communicate`.
    pub truncated: bool,
    /// The egress proxy's decisions (`Net::Proxy`; empty otherwise).
    pub proxy_events: Vec<crate::proxy::ProxyEvent>,
    /// Everything the sandbox's event stream recorded for this command:
    /// start, proxy decisions, refused syscalls, limit hits, exit.
    pub events: Vec<crate::Event>,
}

/// A command running in its sandbox. Dropping the handle kills the whole
/// sandboxed tree (the sandbox cannot outlive its owner).
#[derive(Debug)]
pub struct Child {
    /// The command's stdin, if piped.
    pub stdin: Option<ChildStdin>,
    /// The command's stdout, if piped.
    pub stdout: Option<ChildStdout>,
    /// The command's stderr, if piped.
    pub stderr: Option<ChildStderr>,
    control: Option<Arc<OwnedFd>>,
    keeper: Option<Keeper>,
    pid: u32,
    landlock_abi: u32,
    started: Instant,
    status: Option<ExitStatus>,
    proxy: Option<crate::proxy::Served>,
    cgroup: Option<crate::cgroup::SandboxCgroup>,
    limits_level: LimitsLevel,
    log: Arc<crate::events::Log>,
    overlays: Vec<crate::fs::Upper>,
    landlock: Option<crate::events::landlock::Watch>,
    expected: crate::attest::Expected,
    agent_relay: Option<crate::ssh_agent::Relay>,
    missing: &'static [&'static str],
}

fn mode_of(missing: &[&str]) -> crate::reduced::Mode {
    if missing.is_empty() {
        crate::reduced::Mode::Full
    } else {
        crate::reduced::Mode::Reduced
    }
}

impl Child {
    pub(crate) fn new(
        l: Launched,
        pipes: [Option<File>; 3],
        started: Instant,
        log: Arc<crate::events::Log>,
        overlays: Vec<crate::fs::Upper>,
    ) -> Self {
        let [i, o, e] = pipes;
        Child {
            stdin: i.map(ChildStdin),
            stdout: o.map(ChildStdout),
            stderr: e.map(ChildStderr),
            control: Some(Arc::new(l.control)),
            keeper: Some(l.keeper),
            pid: l.init_pid,
            landlock_abi: l.landlock_abi,
            started,
            status: None,
            proxy: None,
            cgroup: l.cgroup,
            limits_level: l.limits_level,
            log,
            overlays,
            landlock: None,
            expected: Default::default(),
            agent_relay: None,
            missing: &[],
        }
    }

    /// A reduced-mode sandbox, which runs without `missing`.
    pub(crate) fn set_missing(&mut self, missing: &'static [&'static str]) {
        self.missing = missing;
    }

    /// Full mode, or reduced mode ([`crate::Sandbox::allow_reduced`]).
    pub fn mode(&self) -> crate::reduced::Mode {
        mode_of(self.missing)
    }

    /// The full mode's layers this sandbox runs without (empty in full
    /// mode): see [`crate::reduced::Mode::missing_layers`].
    pub fn missing_layers(&self) -> &'static [&'static str] {
        self.missing
    }

    /// Keep `watch` (the command's Landlock denials) and let the init reap
    /// ([`wire::Plan::hold_reaping`]).
    pub(crate) fn ack_start(
        &mut self,
        watch: Option<crate::events::landlock::Watch>,
    ) -> Result<(), Error> {
        self.landlock = watch;
        if let Some(c) = &self.control {
            wire::send(c.as_fd(), &wire::Control::Ack, &[])?;
        }
        Ok(())
    }

    /// The sandbox's id: random, in every [`crate::Event`] of it.
    pub fn sandbox_id(&self) -> &str {
        self.log.sandbox()
    }

    /// Every event of this sandbox so far (see [`crate::events`]); complete
    /// once [`Child::wait`] has returned.
    pub fn events(&self) -> Vec<crate::Event> {
        self.log.snapshot(None)
    }

    /// What the command changed under each `--overlay` path: created,
    /// modified, deleted and renamed entries, compared with the host copy,
    /// with their new contents readable and appliable to the host
    /// ([`crate::workspace`]). Call it after [`Child::wait`]: the writes are
    /// kept (in memory, up to the overlay's size cap) as long as this handle
    /// or a returned diff lives. Empty without overlays.
    pub fn workspace_diff(
        &self,
    ) -> Result<Vec<crate::workspace::WorkspaceDiff>, crate::workspace::WorkspaceError> {
        crate::fs::diff_uppers(&self.overlays)
    }

    /// What [`Child::attest`] holds this sandbox to.
    pub(crate) fn expect(&mut self, expected: crate::attest::Expected) {
        self.expected = expected;
    }

    /// Check the sandbox's containment from the host side, reading only kernel
    /// state, against what was asked for (ids, limits, cgroup): see
    /// [`crate::attest`]. An error once the sandbox has ended.
    pub fn attest(&self) -> Result<crate::attest::Report, crate::attest::AttestError> {
        if self.status.is_some() {
            return Err(crate::attest::AttestError::Vanished(self.pid));
        }
        let expected = self.expected.with_cgroup(self.cgroup.as_ref());
        crate::attest::attest(self.pid, &expected)
    }

    /// Forward ssh-agent connections through `relay` until the handle is
    /// dropped.
    pub(crate) fn keep_agent_relay(&mut self, relay: crate::ssh_agent::Relay) {
        self.agent_relay = Some(relay);
    }

    /// Serve this sandbox's proxy listeners until it ends.
    pub(crate) fn attach_proxy(&mut self, served: crate::proxy::Served) {
        self.proxy = Some(served);
    }

    /// The egress proxy's decisions so far (`Net::Proxy`; empty otherwise).
    /// Complete once [`Child::wait`] has returned.
    pub fn proxy_events(&self) -> Vec<crate::proxy::ProxyEvent> {
        self.proxy.as_ref().map(|p| p.events()).unwrap_or_default()
    }

    /// Host pid of the sandbox's init (PID 1 inside). Its death takes every
    /// process of the sandbox with it.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// The Landlock ABI the command is restricted at (see
    /// [`ExitStatus::landlock_abi`]).
    pub fn landlock_abi(&self) -> u32 {
        self.landlock_abi
    }

    /// Same as [`Child::pid`], named like `std::process::Child::id`.
    pub fn id(&self) -> u32 {
        self.pid
    }

    /// Kill the whole sandboxed tree now. Harmless if it already ended.
    pub fn kill(&mut self) -> Result<(), Error> {
        if self.status.is_some() {
            return Ok(());
        }
        self.kill_handle().kill()
    }

    /// Send `signal` (1..=64) to every process of the sandbox, e.g.
    /// `SIGTERM` to ask the command to end. Harmless if it already ended.
    pub fn signal(&mut self, signal: i32) -> Result<(), Error> {
        if self.status.is_some() {
            return Ok(());
        }
        self.kill_handle().signal(signal)
    }

    /// A handle that kills or signals this sandbox from another thread while
    /// this one waits. It does not keep the sandbox alive.
    pub fn kill_handle(&self) -> KillHandle {
        match &self.control {
            Some(c) => KillHandle::sandbox(c),
            None => KillHandle::ended(),
        }
    }

    /// Wait at most `timeout`; `None` if the sandbox is still running.
    pub fn wait_timeout(&mut self, timeout: Duration) -> Result<Option<ExitStatus>, Error> {
        drop(self.stdin.take());
        let deadline = Instant::now() + timeout;
        while self.status.is_none() {
            let Some(control) = &self.control else {
                break;
            };
            let left = deadline.saturating_duration_since(Instant::now());
            if !wire::readable(control.as_fd(), left)? {
                if left.is_zero() {
                    return Ok(None);
                }
                continue;
            }
            self.receive(true)?;
        }
        self.wait().map(Some)
    }

    /// Wait for the command and everything it started to end.
    pub fn wait(&mut self) -> Result<ExitStatus, Error> {
        drop(self.stdin.take());
        loop {
            if let Some(s) = self.status {
                return Ok(s);
            }
            self.receive(false)?;
        }
    }

    /// The status if the sandbox has ended, without blocking.
    pub fn try_wait(&mut self) -> Result<Option<ExitStatus>, Error> {
        if self.status.is_none() {
            self.receive(true)?;
        }
        Ok(self.status)
    }

    /// Wait, collecting whatever is left on the piped stdout and stderr.
    pub fn wait_with_output(self) -> Result<Output, Error> {
        self.communicate(&[], usize::MAX)
    }

    /// Write `input` to the piped stdin (then close it), collect the piped
    /// stdout and stderr keeping at most `max_output` bytes of each (the
    /// rest is read and dropped, and [`Output::truncated`] is set), and wait.
    /// All on this thread, with one `poll` loop.
    pub fn communicate(mut self, input: &[u8], max_output: usize) -> Result<Output, Error> {
        let pipes = (self.stdin.take(), self.stdout.take(), self.stderr.take());
        let c = capture::communicate(pipes, input, None, max_output)?;
        let status = self.wait()?;
        Ok(c.into_output(status, self.proxy_events(), self.events()))
    }

    fn receive(&mut self, nonblocking: bool) -> Result<(), Error> {
        let Some(control) = &self.control else {
            return Err(Error::Helper(
                "the sandbox's control channel is closed".into(),
            ));
        };
        match wire::recv::<Report>(control.as_fd(), nonblocking) {
            Ok(Some((
                Report::Exited {
                    code,
                    signal,
                    timed_out,
                },
                _,
            ))) => {
                let status = ExitStatus {
                    code,
                    signal,
                    timed_out,
                    duration: self.started.elapsed(),
                    landlock_abi: self.landlock_abi,
                    usage: Usage::of(self.cgroup.as_ref(), self.limits_level),
                    missing: self.missing,
                };
                self.ended(status);
                Ok(())
            }
            Ok(Some((Report::Failed(f), _))) => {
                self.finish();
                Err(Error::Setup(f))
            }
            Ok(Some((other, _))) => Err(Error::Helper(format!(
                "unexpected report from the helper: {other:?}"
            ))),
            Ok(None) => {
                // A memory bomb the OOM killer cannot end by killing the command
                // (tmpfs, shm) ends with the init itself killed: the cgroup's
                // counter says so, and that is the command's end.
                let usage = Usage::of(self.cgroup.as_ref(), self.limits_level);
                if usage.oom_killed == Some(true) {
                    self.ended(ExitStatus {
                        code: None,
                        signal: Some(libc::SIGKILL),
                        timed_out: false,
                        duration: self.started.elapsed(),
                        landlock_abi: self.landlock_abi,
                        usage,
                        missing: self.missing,
                    });
                    return Ok(());
                }
                self.finish();
                Err(Error::Helper(
                    "the sandbox ended without reporting its exit status".into(),
                ))
            }
            Err(e) if nonblocking && e.raw_os_error() == Some(libc::EAGAIN) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// The sandbox has ended with `status`: record it and clean up.
    fn ended(&mut self, status: ExitStatus) {
        self.status = Some(status);
        if let Some(k) = self.keeper.as_mut() {
            k.tree_gone();
        }
        // The proxy's last events (connections closing) come in `finish`,
        // Landlock's last ones after the kernel's queue is drained.
        self.finish();
        if let Some(w) = self.landlock.take() {
            w.finish();
        }
        crate::events::limit_events(&self.log, None, &status);
        self.log.push(
            None,
            crate::EventKind::Exit {
                code: status.code,
                signal: status.signal,
                timed_out: status.timed_out,
            },
        );
    }

    /// Close the channel; reap the process that owned the sandbox now or soon
    /// (its namespace teardown need not delay the caller).
    fn finish(&mut self) {
        // Every process of the sandbox is gone: its connections end here.
        if let Some(p) = &self.proxy {
            p.stop();
        }
        self.control = None;
        if let Some(k) = self.keeper.take() {
            k.reap_soon();
        }
        // Kills whatever is left (at most the exiting init) and removes it.
        self.cgroup = None;
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        // Closing the channel makes the init kill everything and exit.
        self.finish();
    }
}
