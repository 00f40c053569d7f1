//! A handle on one running command of a session.

use std::fs::File;
use std::os::fd::AsFd;
use std::sync::mpsc::{RecvTimeoutError, TryRecvError};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use super::demux::{ended, Mailbox, Shared};
use crate::capture;
use crate::child::{ChildStderr, ChildStdin, ChildStdout, ExitStatus, Output};
use crate::error::Error;
use crate::kill_handle::KillHandle;
use crate::launch::wire::Report;

/// A command running in a [`Session`](super::Session), like
/// [`std::process::Child`].
///
/// Dropping the handle does not stop the command (as with `std`); the
/// session's end does.
#[derive(Debug)]
pub struct SessionChild {
    /// The command's stdin, if piped.
    pub stdin: Option<ChildStdin>,
    /// The command's stdout, if piped.
    pub stdout: Option<ChildStdout>,
    /// The command's stderr, if piped.
    pub stderr: Option<ChildStderr>,
    id: u64,
    pid: u32,
    shared: Arc<Shared>,
    mailbox: Mailbox,
    started: Instant,
    started_at: SystemTime,
    landlock_abi: u32,
    status: Option<ExitStatus>,
    proxy: Option<Arc<crate::proxy::Served>>,
}

impl std::fmt::Debug for Mailbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Mailbox(..)")
    }
}

/// Everything [`SessionChild::new`] needs besides the pipes.
pub(crate) struct Started {
    pub id: u64,
    pub pid: u32,
    pub shared: Arc<Shared>,
    pub mailbox: Mailbox,
    pub started: Instant,
    pub started_at: SystemTime,
    pub landlock_abi: u32,
    pub proxy: Option<Arc<crate::proxy::Served>>,
}

impl SessionChild {
    pub(crate) fn new(s: Started, pipes: [Option<File>; 3]) -> Self {
        let [i, o, e] = pipes;
        SessionChild {
            stdin: i.map(ChildStdin),
            stdout: o.map(ChildStdout),
            stderr: e.map(ChildStderr),
            id: s.id,
            pid: s.pid,
            shared: s.shared,
            mailbox: s.mailbox,
            started: s.started,
            started_at: s.started_at,
            landlock_abi: s.landlock_abi,
            status: None,
            proxy: s.proxy,
        }
    }

    /// The command's pid inside the sandbox (its pid namespace, where the
    /// session's init is 1); also its process group and session id there.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Same as [`SessionChild::pid`], named like `std::process::Child::id`.
    pub fn id(&self) -> u32 {
        self.pid
    }

    /// The Landlock ABI the command is restricted at.
    pub fn landlock_abi(&self) -> u32 {
        self.landlock_abi
    }

    /// SIGKILL the command: its process group and the other groups of its
    /// session id, nothing else in the sandbox. Harmless once it has ended.
    pub fn kill(&mut self) -> Result<(), Error> {
        if self.status.is_some() {
            return Ok(());
        }
        self.kill_handle().kill()
    }

    /// Send `signal` (1..=64) to the command's process groups, e.g.
    /// `SIGTERM`. Harmless once it has ended.
    pub fn signal(&mut self, signal: i32) -> Result<(), Error> {
        if self.status.is_some() {
            return Ok(());
        }
        self.kill_handle().signal(signal)
    }

    /// A handle that kills or signals this command from another thread
    /// while this one waits.
    pub fn kill_handle(&self) -> KillHandle {
        KillHandle::command(&self.shared, self.id)
    }

    /// Wait at most `timeout` for the command's leader; `None` if it is
    /// still running.
    pub fn wait_timeout(&mut self, timeout: Duration) -> Result<Option<ExitStatus>, Error> {
        drop(self.stdin.take());
        let deadline = Instant::now() + timeout;
        while self.status.is_none() {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.mailbox.reports.recv_timeout(left) {
                Ok(report) => self.take(report),
                Err(RecvTimeoutError::Timeout) => return Ok(None),
                Err(RecvTimeoutError::Disconnected) => return Err(ended()),
            }
        }
        Ok(self.status)
    }

    /// Wait for the command's leader to end (what it left running may live
    /// on until the session ends).
    pub fn wait(&mut self) -> Result<ExitStatus, Error> {
        drop(self.stdin.take());
        while self.status.is_none() {
            let report = self.mailbox.reports.recv().map_err(|_| ended())?;
            self.take(report);
        }
        Ok(self.status.expect("set above"))
    }

    /// The status if the command has ended, without blocking.
    pub fn try_wait(&mut self) -> Result<Option<ExitStatus>, Error> {
        while self.status.is_none() {
            match self.mailbox.reports.try_recv() {
                Ok(report) => self.take(report),
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => return Err(ended()),
            }
        }
        Ok(self.status)
    }

    /// Wait, collecting the piped stdout and stderr: until both reach end
    /// of file, or until the command's leader has ended, whichever comes
    /// first, so a background process still holding the pipes cannot keep
    /// the caller waiting (what it writes later is not collected).
    pub fn wait_with_output(self) -> Result<Output, Error> {
        self.communicate(&[], usize::MAX)
    }

    /// Write `input` to the piped stdin, collect stdout and stderr keeping
    /// at most `max_output` bytes of each ([`Output::truncated`] says if
    /// anything was cut), and wait; collection ends as for
    /// [`SessionChild::wait_with_output`]. All on this thread.
    pub fn communicate(mut self, input: &[u8], max_output: usize) -> Result<Output, Error> {
        let pipes = (self.stdin.take(), self.stdout.take(), self.stderr.take());
        let done = Some(self.mailbox.done.as_fd());
        let c = capture::communicate(pipes, input, done, max_output)?;
        let status = self.wait()?;
        Ok(c.into_output(status, self.proxy_events(), self.events()))
    }

    /// This command's events (see [`crate::events`]): its start, refused
    /// syscalls, timeout and exit, and the session proxy's decisions made
    /// while it ran (while commands overlap, theirs are included too).
    pub fn events(&self) -> Vec<crate::Event> {
        let end = self
            .status
            .map(|s| self.started_at + s.duration)
            .unwrap_or_else(SystemTime::now);
        self.shared
            .log
            .snapshot(None)
            .into_iter()
            .filter(|e| {
                e.command == Some(self.id)
                    || (matches!(e.kind, crate::EventKind::Proxy { .. })
                        && e.at >= self.started_at
                        && e.at <= end)
            })
            .collect()
    }

    /// The session proxy's decisions made between this command's start and
    /// its end (or now), so while commands overlap, theirs are included too.
    pub fn proxy_events(&self) -> Vec<crate::proxy::ProxyEvent> {
        let Some(p) = &self.proxy else {
            return Vec::new();
        };
        let end = self
            .status
            .map(|s| self.started_at + s.duration)
            .unwrap_or_else(SystemTime::now);
        p.events()
            .into_iter()
            .filter(|e| e.at >= self.started_at && e.at <= end)
            .collect()
    }

    fn take(&mut self, report: Report) {
        if let Report::CommandExited {
            code,
            signal,
            timed_out,
            ..
        } = report
        {
            let status = ExitStatus {
                code,
                signal,
                timed_out,
                duration: self.started.elapsed(),
                landlock_abi: self.landlock_abi,
                // The session's cgroup is shared by all its commands.
                usage: Default::default(),
                // Sessions exist in the full mode only.
                missing: &[],
            };
            self.status = Some(status);
            let log = &self.shared.log;
            crate::events::limit_events(log, Some(self.id), &status);
            log.push(
                Some(self.id),
                crate::EventKind::Exit {
                    code,
                    signal,
                    timed_out,
                },
            );
        }
    }
}
