//! A session's init as zygote. The sandbox (namespaces, root, proxy sockets)
//! is built once and the rings once (Landlock ruleset, seccomp program); each
//! [`Spawn`] then only resolves its program and forks through the same
//! allocation-free last hop as a one-command sandbox (`fork::fork_command`):
//! setsid, stdio, close fds, caps, no_new_privs, chdir, Landlock, seccomp,
//! execve. No namespace is created per command.
//!
//! Landlock needs a rule for an inherited regular file or device (so that
//! `/dev/stdout` can be reopened when it is one); a command whose stdio or
//! pass-throughs include such a descriptor gets a ruleset of its own, built
//! from the same rules plus those descriptors. Pipes, sockets and
//! `/dev/null` reuse the session's.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use nix::errno::Errno;
use nix::sys::signalfd::SignalFd;

use super::exec::Rings;
use super::fork::{self, fail, CommandSpec, Failure};
use super::rings;
use super::wire::{Spawn, SpawnFailure};
use crate::error::Layer;
use crate::landlock::{PreparedRuleset, Rules};
use crate::supervise;

/// What every command of the session shares.
pub(crate) struct Zygote {
    rules: Rules,
    landlock_required: bool,
    /// The session's ruleset, its descriptor above `exec::HIGH_FD`.
    landlock: PreparedRuleset,
    filter: Vec<libc::sock_filter>,
    notify: bool,
    nproc: Option<u64>,
}

impl Zygote {
    pub fn new(
        rules: Rules,
        landlock_required: bool,
        landlock: PreparedRuleset,
        filter: Vec<libc::sock_filter>,
        notify: bool,
        nproc: Option<u64>,
    ) -> Self {
        Zygote {
            rules,
            landlock_required,
            landlock,
            filter,
            notify,
            nproc,
        }
    }

    /// Fork commands on request until the host closes the channel; then
    /// everything in the sandbox is killed and reaped.
    pub fn serve(&self, control: BorrowedFd<'_>, sigfd: &SignalFd) {
        supervise::session::serve(control, sigfd, &mut |req, fds| {
            self.spawn(req, fds).map_err(|f| match f {
                Failure::Exec(errno) => SpawnFailure::Exec {
                    errno: errno as i32,
                },
                Failure::Setup(f) => SpawnFailure::Setup(f),
            })
        })
    }

    /// Start one command; `fds` are its stdin, stdout, stderr, then the
    /// pass-through sources.
    fn spawn(&self, req: &Spawn, mut fds: Vec<OwnedFd>) -> Result<fork::Forked, Failure> {
        if fds.len() != 3 + req.pass_fds.len() {
            return Err(fail(
                Layer::Helper,
                "receive the command's stdio and pass-throughs",
                Errno::EBADF,
            )
            .into());
        }
        let Some(argv0) = req.argv.first() else {
            return Err(fail(Layer::Exec, "empty argv", Errno::EINVAL).into());
        };
        let program = fork::resolve_program(argv0, &req.env).map_err(Failure::Exec)?;
        let passed = fds.split_off(3);
        let stdio: [OwnedFd; 3] = fds
            .try_into()
            .map_err(|_| fail(Layer::Helper, "receive the command's stdio", Errno::EBADF))?;
        let own = self.own_ruleset(&stdio, &passed)?;
        let rings = Rings {
            landlock: own.as_ref().unwrap_or(&self.landlock),
            filter: &self.filter,
            notify: self.notify,
            nproc: self.nproc,
        };
        let cmd = CommandSpec {
            argv: &req.argv,
            env: &req.env,
            cwd: &req.cwd,
        };
        fork::fork_command(&cmd, &program, &stdio, passed, &req.pass_fds, rings)
    }

    /// A ruleset for this command alone, when it inherits a file that needs
    /// a rule (see the module's documentation).
    fn own_ruleset(
        &self,
        stdio: &[OwnedFd; 3],
        passed: &[OwnedFd],
    ) -> Result<Option<PreparedRuleset>, Failure> {
        if self.landlock.abi() == 0 {
            return Ok(None);
        }
        let inherited: Vec<_> = stdio.iter().chain(passed).map(AsFd::as_fd).collect();
        if !inherited.iter().any(|&fd| rings::needs_inherited_rule(fd)) {
            return Ok(None);
        }
        let ruleset = rings::landlock_ruleset(&self.rules, self.landlock_required, &inherited)?;
        Ok(Some(ruleset.map_fd(fork::move_high)?))
    }
}
