//! Reaping the process that owns a sandbox, off the caller's critical path.
//!
//! The exit report arrives once every sandboxed process is gone; the namespace
//! teardown that follows (mounts, network namespace) takes a few hundred
//! microseconds more. Callers get their status at the report; the owner
//! process is reaped then if it is already gone, else by one background thread.

use std::sync::mpsc::{channel, SendError, Sender};
use std::sync::{Mutex, OnceLock};

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
}

impl Keeper {
    /// Block until it is gone; a short description of how it ended.
    pub fn wait(self) -> String {
        match self {
            Keeper::Helper(mut c) => c.wait().map(|s| s.to_string()).unwrap_or_else(|e| e.to_string()),
            Keeper::Init(pid) => match waitpid(pid, None) {
                Ok(WaitStatus::Exited(_, c)) => format!("exit status {c}"),
                Ok(WaitStatus::Signaled(_, s, _)) => format!("killed by {s:?}"),
                other => format!("{other:?}"),
            },
        }
    }

    /// Reap now if already gone, else hand it to the background reaper.
    pub fn reap_soon(mut self) {
        if self.try_reap() {
            return;
        }
        static REAPER: OnceLock<Mutex<Sender<Keeper>>> = OnceLock::new();
        let tx = REAPER.get_or_init(|| {
            let (tx, rx) = channel::<Keeper>();
            let spawned = std::thread::Builder::new().name("stockade-reaper".into()).spawn(move || {
                for k in rx {
                    k.wait();
                }
            });
            if spawned.is_err() {
                // No thread to be had: the send below fails and we wait inline.
            }
            Mutex::new(tx)
        });
        let sent = tx.lock().unwrap_or_else(|p| p.into_inner()).send(self);
        if let Err(SendError(k)) = sent {
            k.wait();
        }
    }

    fn try_reap(&mut self) -> bool {
        match self {
            Keeper::Helper(c) => !matches!(c.try_wait(), Ok(None)),
            Keeper::Init(pid) => !matches!(waitpid(*pid, Some(WaitPidFlag::WNOHANG)), Ok(WaitStatus::StillAlive)),
        }
    }
}
