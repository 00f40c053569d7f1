//! PID 1's job in a session: fork commands on request, reap, enforce each
//! command's own timeout, and end everything when the host goes away.
//!
//! A command is its process group: the last hop's `setsid` makes the leader
//! the leader of a new session and process group, both numbered by its pid,
//! and everything it starts stays there unless it moves itself.
//!
//! Reporting rule: [`Report::CommandExited`] is sent as soon as the
//! command's leader is reaped, like `docker exec`; what it left running
//! (`server &`) keeps running in the session until the session ends, so a
//! later command can use it. The leader's timeout and
//! [`Control::KillCommand`] reach the whole command: its process group, and
//! any other group in its session (job-control shells put pipelines in
//! groups of their own). A timed-out command is reported once its leader is
//! gone, after its group got SIGKILL, whether or not the grace ran out.
//!
//! Limitation: a process that calls `setsid` itself leaves both the group
//! and the session, so a timeout or kill of its command no longer reaches
//! it. It lives until the session ends (`kill(-1)` from PID 1 reaches every
//! process in the pid namespace).

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags};
use nix::sys::signalfd::SignalFd;
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

use super::{kill_all, poll_timeout, reap_all};
use crate::launch::wire::{self, Control, Report, Spawn, SpawnFailure};
use crate::sys;

/// Starts one command; returns it once it has exec'd.
pub(crate) type SpawnFn<'a> =
    dyn FnMut(&Spawn, Vec<OwnedFd>) -> Result<crate::launch::Forked, SpawnFailure> + 'a;

/// A command whose leader has not been reported yet.
struct Running {
    id: u64,
    /// The leader: also its process group and session id.
    pid: Pid,
    deadline: Option<Instant>,
    grace: Duration,
    /// When the SIGTERM of a timeout turns into SIGKILL.
    kill_at: Option<Instant>,
    timed_out: bool,
}

impl Running {
    fn next_timer(&self) -> Option<Instant> {
        match (self.timed_out, self.kill_at) {
            (_, Some(k)) => Some(k),
            (false, None) => self.deadline,
            (true, None) => None,
        }
    }

    /// Advance the timeout: SIGTERM (and SIGCONT, so stopped processes can
    /// act on it) at the deadline, SIGKILL after the grace.
    fn tick(&mut self, now: Instant) {
        if !self.timed_out && self.deadline.is_some_and(|d| now >= d) {
            self.timed_out = true;
            kill_command(self.pid, libc::SIGTERM);
            kill_command(self.pid, libc::SIGCONT);
            self.kill_at = Some(now + self.grace);
        }
        if self.kill_at.is_some_and(|k| now >= k) {
            kill_command(self.pid, libc::SIGKILL);
            self.kill_at = None;
        }
    }
}

/// Serve the session until the host closes `control` (or sends nonsense);
/// then kill and reap everything.
pub(crate) fn serve(control: BorrowedFd<'_>, sigfd: &SignalFd, spawn: &mut SpawnFn<'_>) {
    let mut running: Vec<Running> = Vec::new();
    while step(control, sigfd, spawn, &mut running).is_ok() {}
    kill_all(libc::SIGKILL);
    reap_all();
}

/// The host is gone: end the session.
struct HostGone;

/// One round of the loop: wait for a signal, a message or a timer, handle it.
fn step(
    control: BorrowedFd<'_>,
    sigfd: &SignalFd,
    spawn: &mut SpawnFn<'_>,
    running: &mut Vec<Running>,
) -> Result<(), HostGone> {
    let next = running.iter().filter_map(Running::next_timer).min();
    let mut fds = [
        PollFd::new(sigfd.as_fd(), PollFlags::POLLIN),
        PollFd::new(control, PollFlags::POLLIN),
    ];
    match poll(&mut fds, poll_timeout(next)) {
        Ok(_) | Err(Errno::EINTR) => {}
        Err(_) => return Err(HostGone),
    }
    let sig_ready = fds[0]
        .revents()
        .is_some_and(|r| r.contains(PollFlags::POLLIN));
    let ctl_ready = fds[1]
        .revents()
        .is_some_and(|r| r.intersects(PollFlags::POLLIN | PollFlags::POLLHUP | PollFlags::POLLERR));
    if sig_ready {
        while let Ok(Some(_)) = sigfd.read_signal() {}
        reap(control, running)?;
    }
    if ctl_ready {
        obey(control, spawn, running)?;
    }
    let now = Instant::now();
    for r in running.iter_mut() {
        r.tick(now);
    }
    Ok(())
}

/// Handle every message waiting on the channel.
fn obey(
    control: BorrowedFd<'_>,
    spawn: &mut SpawnFn<'_>,
    running: &mut Vec<Running>,
) -> Result<(), HostGone> {
    loop {
        match wire::recv::<Control>(control, true) {
            Ok(Some((Control::Spawn(req), fds))) => {
                let mut listener = None;
                let report = match spawn(&req, fds) {
                    Ok(forked) => {
                        let pid = forked.pid;
                        listener = forked.listener;
                        running.push(Running {
                            id: req.id,
                            pid,
                            deadline: req
                                .timeout_ms
                                .map(|t| Instant::now() + Duration::from_millis(t)),
                            grace: Duration::from_millis(req.grace_ms),
                            kill_at: None,
                            timed_out: false,
                        });
                        Report::CommandStarted {
                            id: req.id,
                            pid: pid.as_raw(),
                            syscall_listener: listener.is_some(),
                        }
                    }
                    Err(failure) => Report::CommandFailed {
                        id: req.id,
                        failure,
                    },
                };
                // The listener goes to the host, which answers the command's
                // refused syscalls; the init keeps no copy.
                let fds: Vec<_> = listener.iter().map(AsRawFd::as_raw_fd).collect();
                wire::send(control, &report, &fds).map_err(|_| HostGone)?;
            }
            Ok(Some((Control::KillCommand { id }, _))) => {
                if let Some(r) = running.iter().find(|r| r.id == id) {
                    kill_command(r.pid, libc::SIGKILL);
                }
            }
            Ok(Some((Control::SignalCommand { id, signal }, _))) => {
                if let Some(r) = running.iter().find(|r| r.id == id) {
                    if wire::forwardable(signal) {
                        kill_command(r.pid, signal);
                    }
                }
            }
            Ok(Some((Control::Signal { signal }, _))) => {
                if wire::forwardable(signal) {
                    kill_all(signal);
                }
            }
            Ok(Some((Control::Kill, _))) => kill_all(libc::SIGKILL),
            // Sessions never hold reaping.
            Ok(Some((Control::Ack, _))) => {}
            Err(e) if e.raw_os_error() == Some(Errno::EAGAIN as i32) => return Ok(()),
            // End of stream, or a host that talks nonsense: nobody may
            // outlive it.
            Ok(None) | Err(_) => return Err(HostGone),
        }
    }
}

/// Reap every child that has ended; report the commands' leaders among them.
fn reap(control: BorrowedFd<'_>, running: &mut Vec<Running>) -> Result<(), HostGone> {
    loop {
        let (pid, code, signal) =
            match waitpid(None, Some(WaitPidFlag::WNOHANG | WaitPidFlag::__WALL)) {
                Ok(WaitStatus::Exited(pid, code)) => (pid, Some(code), None),
                Ok(WaitStatus::Signaled(pid, sig, _)) => (pid, None, Some(sig as i32)),
                Ok(WaitStatus::StillAlive) | Err(_) => return Ok(()),
                Ok(_) => continue,
            };
        let Some(i) = running.iter().position(|r| r.pid == pid) else {
            continue; // an orphan that was reparented to us
        };
        let r = running.swap_remove(i);
        if r.timed_out {
            // The leader is gone; what it started gets no more grace.
            kill_command(r.pid, libc::SIGKILL);
        }
        send(
            control,
            &Report::CommandExited {
                id: r.id,
                code,
                signal,
                timed_out: r.timed_out,
            },
        )?;
    }
}

fn send(control: BorrowedFd<'_>, report: &Report) -> Result<(), HostGone> {
    wire::send(control, report, &[]).map_err(|_| HostGone)
}

/// Signal a command: its process group, and every other group of its
/// session (read from `/proc`, the sandbox's own).
fn kill_command(leader: Pid, sig: libc::c_int) {
    let sid = leader.as_raw();
    let _ = sys::kill(-sid, sig);
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return;
    };
    for e in dir.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        if pid != 1 && session_of(pid) == Some(sid) {
            let _ = sys::kill(pid, sig);
        }
    }
}

/// The session id of `pid`, from `/proc/<pid>/stat`: after the command name
/// (which may hold spaces and parentheses) come state, ppid, pgrp, session.
fn session_of(pid: i32) -> Option<i32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(3)?.parse().ok()
}
