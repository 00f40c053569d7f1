//! Warm sessions: one sandbox, many commands.
//!
//! [`Sandbox::session`](crate::Sandbox::session) builds the sandbox once
//! (namespaces, root, Landlock ruleset, seccomp program, proxy) and keeps its
//! init as the session's PID 1. Each [`Session::command`] is forked by that
//! init through the same last hop as a one-command sandbox, so it costs about
//! a fork and an `execve`; no namespace is created per command. Commands share
//! the filesystem (a file one writes, the next reads, like a container) and
//! run concurrently, each in its own process group with its own argv,
//! environment, working directory, timeout, stdio and exit status.
//!
//! Ending: [`Session::close`], dropping the [`Session`], or the caller dying
//! closes the control channel; the init then kills every process in the
//! sandbox and exits, and the namespaces (mounts, network) go with it.
//!
//! A command is reported ended as soon as its leader (the process started
//! for it) exits, like `docker exec`; processes it left running keep running
//! until the session ends. Its timeout and [`SessionChild::kill`] reach its
//! process group and every group of its session id; a process that calls
//! `setsid` itself escapes both and lives until the session ends.
//!
//! Each command enforces the session's Landlock ruleset in a domain of its
//! own (the last hop's `landlock_restrict_self`), so with Landlock's signal
//! scoping (ABI 6 and later) a command cannot signal (or ptrace-inspect)
//! processes of another command, not even a background process an earlier
//! command left: one command cannot disturb another, and ending such a
//! process is the session's job (its end, or the timeout or kill of the
//! command that started it while that command runs). Abstract unix sockets
//! are scoped the same way; pathname sockets and the filesystem are shared.

mod child;
mod command;
pub(crate) mod demux;

pub use child::SessionChild;
pub use command::SessionCommand;

use std::os::fd::{OwnedFd, RawFd};
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::Duration;

use crate::child::Stdio;
use crate::error::Error;
use crate::launch::{Keeper, Launched};
use demux::Shared;

/// The session's event log, how its commands' refused syscalls are
/// answered (none: not recorded), and its overlay uppers.
pub(crate) struct SessionEvents {
    pub log: Arc<crate::events::Log>,
    pub refusals: Option<Arc<crate::seccomp::BpfProgram>>,
    pub overlays: Vec<crate::fs::Upper>,
}

/// What every command of a session starts from, fixed by the
/// [`Sandbox`](crate::Sandbox) the session came from.
#[derive(Debug, Clone)]
pub(crate) struct Defaults {
    /// The sandbox's environment; a command's own variables are added.
    pub env: Vec<(String, String)>,
    /// Working directory when a command names none.
    pub cwd: String,
    /// Timeout when a command sets none.
    pub timeout: Option<Duration>,
    /// SIGTERM-to-SIGKILL grace when a command sets none.
    pub grace: Duration,
    /// The sandbox's stdio choices, if it made any.
    pub stdio: [Option<Stdio>; 3],
    /// Pass-throughs every command gets (the sandbox's `pass_fd`s).
    pub passes: Vec<(Arc<OwnedFd>, RawFd)>,
    /// For a root caller, the host ids that anonymous pipes are handed to
    /// (see `sandbox::hand_pipe_to`).
    pub pipe_owner: Option<(u32, u32)>,
    /// What [`Session::attest`] holds the sandbox to.
    pub attest: crate::attest::Expected,
    /// Where a command's own `TMPDIR` may point.
    pub tmpdirs: crate::policy::tmpdir::WritableDirs,
}

/// A warm sandbox that runs many commands. See the [module
/// documentation](self) and [`Sandbox::session`](crate::Sandbox::session).
///
/// ```
/// use stockade::{Fs, Sandbox};
/// # fn main() -> Result<(), stockade::Error> {
/// let session = Sandbox::new().fs(Fs::minimal()).session()?;
/// session.command(["sh", "-c", "echo hi > /tmp/note"]).status()?;
/// let out = session.command(["cat", "/tmp/note"]).output()?;
/// assert_eq!(out.stdout, b"hi\n");
/// session.close()?;
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct Session {
    shared: Arc<Shared>,
    reader: Option<std::thread::JoinHandle<()>>,
    keeper: Option<Keeper>,
    proxy: Option<Arc<crate::proxy::Served>>,
    defaults: Defaults,
    next_id: AtomicU64,
    init_pid: u32,
    landlock_abi: u32,
    /// The session's cgroup (limits set): removed after `end`, when the
    /// session is dropped.
    cgroup: Option<crate::cgroup::SandboxCgroup>,
    /// The overlay uppers (`--overlay`), for the workspace diff.
    overlays: Vec<crate::fs::Upper>,
    /// A root caller's ssh-agent relay, served while the session lives.
    agent_relay: Option<crate::ssh_agent::Relay>,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Shared(..)")
    }
}

impl Session {
    /// Take over a started session sandbox. On error the sandbox is ended.
    pub(crate) fn new(
        mut launched: Launched,
        defaults: Defaults,
        proxy: Option<crate::proxy::Served>,
        events: SessionEvents,
    ) -> Result<Session, Error> {
        launched.listeners.clear();
        let (shared, reader) = match Shared::start(launched.control, events.log, events.refusals) {
            Ok(started) => started,
            Err(e) => {
                // The control socket went with the failed start: the init
                // has seen it close and is ending the sandbox.
                launched.keeper.reap_soon();
                return Err(e);
            }
        };
        Ok(Session {
            shared,
            reader: Some(reader),
            keeper: Some(launched.keeper),
            proxy: proxy.map(Arc::new),
            defaults,
            next_id: AtomicU64::new(1),
            init_pid: launched.init_pid,
            landlock_abi: launched.landlock_abi,
            cgroup: launched.cgroup,
            overlays: events.overlays,
            agent_relay: None,
        })
    }

    /// The session's id: random, in every [`crate::Event`] of it.
    pub fn sandbox_id(&self) -> &str {
        self.shared.log.sandbox()
    }

    /// Every event of the session so far, all commands together (each
    /// carries its command id; see [`crate::events`]).
    pub fn events(&self) -> Vec<crate::Event> {
        self.shared.log.snapshot(None)
    }

    /// What the session's commands changed under each `--overlay` path so
    /// far (see [`crate::Child::workspace_diff`]). Between commands, it is
    /// the state after the last one; while one runs, a snapshot of a moving
    /// tree.
    pub fn workspace_diff(
        &self,
    ) -> Result<Vec<crate::workspace::WorkspaceDiff>, crate::workspace::WorkspaceError> {
        crate::fs::diff_uppers(&self.overlays)
    }

    /// A command to run in this session; `argv[0]` is looked up in the
    /// command's `PATH`.
    pub fn command<I: IntoIterator<Item = S>, S: Into<String>>(
        &self,
        argv: I,
    ) -> SessionCommand<'_> {
        SessionCommand::new(self, argv.into_iter().map(Into::into).collect())
    }

    /// Host pid of the session's init (PID 1 inside). Its death takes every
    /// process of the session with it.
    pub fn pid(&self) -> u32 {
        self.init_pid
    }

    /// The Landlock ABI every command is restricted at (0 only when the
    /// caller accepted running without Landlock).
    pub fn landlock_abi(&self) -> u32 {
        self.landlock_abi
    }

    /// Forward ssh-agent connections through `relay` while the session lives.
    pub(crate) fn keep_agent_relay(&mut self, relay: crate::ssh_agent::Relay) {
        self.agent_relay = Some(relay);
    }

    /// Every decision of the session's egress proxy so far (`Net::Proxy`;
    /// empty otherwise).
    pub fn proxy_events(&self) -> Vec<crate::proxy::ProxyEvent> {
        self.proxy.as_ref().map(|p| p.events()).unwrap_or_default()
    }

    /// Check the sandbox's containment from the host side, reading only kernel
    /// state, against what was asked for (ids, limits, cgroup): every command
    /// running now and the init; see [`crate::attest`].
    pub fn attest(&self) -> Result<crate::attest::Report, crate::attest::AttestError> {
        let expected = self.defaults.attest.with_cgroup(self.cgroup.as_ref());
        crate::attest::attest(self.init_pid, &expected)
    }

    /// End the session and wait until every process of the sandbox is gone.
    /// Commands still running are killed; their handles' `wait` then fails.
    pub fn close(mut self) -> Result<(), Error> {
        self.end(true);
        Ok(())
    }

    /// Close the channel (the init kills everything and exits), stop the
    /// reader and the proxy, and reap the helper: now, or in the background.
    fn end(&mut self, wait: bool) {
        self.shared.shut_down();
        if let Some(reader) = self.reader.take() {
            let _ = reader.join();
        }
        if let Some(keeper) = self.keeper.take() {
            if wait {
                let _ = keeper.wait();
            } else {
                keeper.reap_soon();
            }
        }
        if let Some(p) = &self.proxy {
            p.stop();
        }
        // Kills whatever is left and removes the cgroup.
        self.cgroup = None;
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        self.end(false);
    }
}
