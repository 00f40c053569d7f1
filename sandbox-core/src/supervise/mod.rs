//! PID 1's job once the command runs: reap, enforce the timeout, obey the host,
//! and make sure that when the command ends, everything in the sandbox ends.
//!
//! `kill(-1, sig)` from the init of a pid namespace reaches every other process
//! in it (double-forked daemons included) and nothing outside.
//!
//! This file supervises a one-command sandbox; [`session`] supervises a
//! session's many commands.

pub(crate) mod descendants;
pub(crate) mod session;

use std::os::fd::{AsFd, BorrowedFd};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signalfd::SignalFd;
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

use crate::launch::wire::{self, Control};
use crate::sys;

/// How the command ended.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Outcome {
    /// Exit code, if it exited.
    pub code: Option<i32>,
    /// Terminating signal, if it was killed.
    pub signal: Option<i32>,
    /// Whether the timeout fired.
    pub timed_out: bool,
}

/// Kill every process of the namespace except ourselves.
pub(crate) fn kill_all(sig: libc::c_int) {
    let _ = sys::kill(-1, sig);
}

/// What "every process of the sandbox" is to its supervisor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Tree {
    /// PID 1 of the sandbox's pid namespace: `kill(-1)` reaches them all.
    Namespace,
    /// Reduced mode's child subreaper: its descendants ([`descendants`]).
    Descendants,
}

impl Tree {
    fn kill(self, sig: libc::c_int) {
        match self {
            Tree::Namespace => kill_all(sig),
            Tree::Descendants => drop(descendants::kill(sig)),
        }
    }

    fn reap_all(self) {
        match self {
            Tree::Namespace => reap_all(),
            Tree::Descendants => descendants::reap_all(),
        }
    }
}

/// Reap everything; returns the command's status if it was among them.
fn reap(command: Pid, outcome: &mut Option<Outcome>) {
    loop {
        match waitpid(None, Some(WaitPidFlag::WNOHANG | WaitPidFlag::__WALL)) {
            Ok(WaitStatus::Exited(pid, code)) if pid == command => {
                *outcome = Some(Outcome {
                    code: Some(code),
                    ..Default::default()
                })
            }
            Ok(WaitStatus::Signaled(pid, sig, _)) if pid == command => {
                *outcome = Some(Outcome {
                    signal: Some(sig as i32),
                    ..Default::default()
                })
            }
            Ok(WaitStatus::StillAlive) | Err(_) => return,
            Ok(_) => continue,
        }
    }
}

/// Block until every remaining process is gone.
pub(crate) fn reap_all() {
    loop {
        match waitpid(None, Some(WaitPidFlag::__WALL)) {
            Err(Errno::EINTR) | Ok(_) => continue,
            Err(_) => return,
        }
    }
}

/// How long `poll` may sleep to wake at `next` (rounded up: never early).
pub(crate) fn poll_timeout(next: Option<Instant>) -> PollTimeout {
    match next.map(|t| t.saturating_duration_since(Instant::now())) {
        Some(d) => PollTimeout::try_from(d.as_millis().min(i32::MAX as u128 - 1) as i32 + 1)
            .unwrap_or(PollTimeout::MAX),
        None => PollTimeout::NONE,
    }
}

/// Supervise `command` until it and everything it started (`tree`) are
/// gone. With `hold_reaping`, nothing is reaped before the host's
/// [`Control::Ack`] (or its end).
pub(crate) fn supervise(
    command: Pid,
    control: BorrowedFd<'_>,
    sigfd: &SignalFd,
    timeout: Option<Duration>,
    grace: Duration,
    hold_reaping: bool,
    tree: Tree,
) -> Outcome {
    let kill_all = |sig| tree.kill(sig);
    let mut hold = hold_reaping;
    let deadline = timeout.map(|t| Instant::now() + t);
    let mut kill_at: Option<Instant> = None;
    let mut timed_out = false;
    let mut result: Option<Outcome> = None;
    let mut host_gone = false;

    while result.is_none() {
        let next = match (deadline, kill_at) {
            (_, Some(k)) => Some(k),
            (Some(d), None) if !timed_out => Some(d),
            _ => None,
        };
        let timeout = poll_timeout(next);
        let mut fds = [
            // While held, SIGCHLD waits in the signalfd.
            PollFd::new(
                sigfd.as_fd(),
                if hold {
                    PollFlags::empty()
                } else {
                    PollFlags::POLLIN
                },
            ),
            PollFd::new(
                control,
                if host_gone {
                    PollFlags::empty()
                } else {
                    PollFlags::POLLIN
                },
            ),
        ];
        match poll(&mut fds, timeout) {
            Ok(_) | Err(Errno::EINTR) => {}
            Err(_) => {
                kill_all(libc::SIGKILL);
                break;
            }
        }
        let sig_ready = fds[0]
            .revents()
            .is_some_and(|r| r.contains(PollFlags::POLLIN));
        let ctl = fds[1].revents().unwrap_or(PollFlags::empty());

        if sig_ready {
            while let Ok(Some(_)) = sigfd.read_signal() {}
            reap(command, &mut result);
        }
        if !host_gone && ctl.intersects(PollFlags::POLLIN | PollFlags::POLLHUP | PollFlags::POLLERR)
        {
            match wire::recv::<Control>(control, true) {
                Ok(Some((Control::Kill, _))) => kill_all(libc::SIGKILL),
                Ok(Some((Control::Ack, _))) => hold = false,
                Ok(Some((Control::Signal { signal }, _))) => {
                    if wire::forwardable(signal) {
                        kill_all(signal);
                    }
                }
                // Session messages mean nothing here; a confused host is
                // treated like a gone one below.
                Err(e) if e.raw_os_error() == Some(Errno::EAGAIN as i32) => {}
                // The host is gone (or talks nonsense): nobody may outlive it.
                _ => {
                    host_gone = true;
                    hold = false;
                    kill_all(libc::SIGKILL);
                }
            }
        }
        let now = Instant::now();
        if let Some(d) = deadline {
            if !timed_out && now >= d {
                timed_out = true;
                kill_all(libc::SIGTERM);
                // Stopped processes cannot act on SIGTERM until continued.
                kill_all(libc::SIGCONT);
                kill_at = Some(now + grace);
            }
        }
        if kill_at.is_some_and(|k| now >= k) {
            kill_all(libc::SIGKILL);
            kill_at = None;
        }
    }

    // The command is gone: nothing it started may stay behind.
    kill_all(libc::SIGKILL);
    tree.reap_all();
    let mut out = result.unwrap_or(Outcome {
        signal: Some(libc::SIGKILL),
        ..Default::default()
    });
    out.timed_out = timed_out;
    out
}

/// [`supervise`] the one command of `plan` to its end: the exit report.
pub(crate) fn until_exit(
    command: Pid,
    control: BorrowedFd<'_>,
    sigfd: &SignalFd,
    plan: &crate::launch::wire::Plan,
    tree: Tree,
) -> crate::launch::wire::Report {
    let outcome = supervise(
        command,
        control,
        sigfd,
        plan.timeout_ms.map(Duration::from_millis),
        Duration::from_millis(plan.grace_ms),
        plan.hold_reaping,
        tree,
    );
    crate::launch::wire::Report::Exited {
        code: outcome.code,
        signal: outcome.signal,
        timed_out: outcome.timed_out,
    }
}
