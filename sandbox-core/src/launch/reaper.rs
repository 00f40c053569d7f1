//! Reaping the process that owns a sandbox, off the caller's critical path.
//!
//! The exit report arrives once every sandboxed process is gone; the namespace
//! teardown that follows (mounts, network namespace) takes a few hundred
//! microseconds more. Callers get their status at the report; the owner
//! process is reaped then if it is already gone, else on the background worker.

use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

/// The process whose exit ends a sandbox: the helper, or (in-process launch)
/// the sandbox init itself.
#[derive(Debug)]
pub(crate) enum Keeper {
    /// The `stockade-init` helper we spawned.
    Helper(std::process::Child),
    /// The init we cloned ourselves.
    Init(Pid),
    /// A reduced-mode helper (`launch::reduced`) and the command's private
    /// temp dir, removed once every process of the sandbox is gone
    /// ([`Keeper::tree_gone`]) or else once the helper, which outlives them
    /// all, is reaped.
    Reduced(std::process::Child, Option<crate::reduced::tmp::PrivateTmp>),
}

impl Keeper {
    /// Block until it is gone; a short description of how it ended.
    pub fn wait(self) -> String {
        match self {
            Keeper::Helper(mut c) => c
                .wait()
                .map(|s| s.to_string())
                .unwrap_or_else(|e| e.to_string()),
            Keeper::Reduced(c, tmp) => {
                let status = Keeper::Helper(c).wait();
                drop(tmp);
                status
            }
            Keeper::Init(pid) => match waitpid(pid, None) {
                Ok(WaitStatus::Exited(_, c)) => format!("exit status {c}"),
                Ok(WaitStatus::Signaled(_, s, _)) => format!("killed by {s:?}"),
                other => format!("{other:?}"),
            },
        }
    }

    /// The sandbox reported its end: no process of it is left, so what it
    /// leaves behind on the host (reduced mode's temp dir) goes now.
    pub fn tree_gone(&mut self) {
        if let Keeper::Reduced(_, tmp) = self {
            drop(tmp.take());
        }
    }

    /// Reap now if already gone, else on the background worker.
    pub fn reap_soon(mut self) {
        if !self.try_reap() {
            super::background::run(Box::new(move || drop(self.wait())));
        }
    }

    fn try_reap(&mut self) -> bool {
        match self {
            Keeper::Helper(c) | Keeper::Reduced(c, _) => !matches!(c.try_wait(), Ok(None)),
            Keeper::Init(pid) => !matches!(
                waitpid(*pid, Some(WaitPidFlag::WNOHANG)),
                Ok(WaitStatus::StillAlive)
            ),
        }
    }
}
