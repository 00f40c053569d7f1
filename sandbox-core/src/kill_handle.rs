//! [`KillHandle`]: stop a running command from another thread while its
//! owner is blocked in `wait` (bindings: asyncio cancellation, AbortSignal,
//! `Process.kill()` while another thread waits).

use std::os::fd::{AsFd, OwnedFd};
use std::sync::{Arc, Weak};

use crate::error::Error;
use crate::launch::wire::{self, Control};
use crate::session::demux::Shared;

/// A detached way to signal a [`Child`](crate::Child) or a
/// [`SessionChild`](crate::SessionChild). Cheap to clone; it never keeps the
/// sandbox alive, and using it after the command has ended does nothing.
#[derive(Debug, Clone)]
pub struct KillHandle(Target);

#[derive(Debug, Clone)]
enum Target {
    /// A whole sandbox: its control channel.
    Sandbox(Weak<OwnedFd>),
    /// One command of a session.
    Command { shared: Weak<Shared>, id: u64 },
}

impl KillHandle {
    pub(crate) fn sandbox(control: &Arc<OwnedFd>) -> Self {
        KillHandle(Target::Sandbox(Arc::downgrade(control)))
    }

    /// A handle to a sandbox that has ended already: it does nothing.
    pub(crate) fn ended() -> Self {
        KillHandle(Target::Sandbox(Weak::new()))
    }

    pub(crate) fn command(shared: &Arc<Shared>, id: u64) -> Self {
        KillHandle(Target::Command {
            shared: Arc::downgrade(shared),
            id,
        })
    }

    /// SIGKILL everything the command started: the whole sandbox for a
    /// [`Child`](crate::Child), the command's process groups for a
    /// [`SessionChild`](crate::SessionChild).
    pub fn kill(&self) -> Result<(), Error> {
        match &self.0 {
            Target::Sandbox(_) => self.send(&Control::Kill),
            Target::Command { id, .. } => self.send(&Control::KillCommand { id: *id }),
        }
    }

    /// Send `signal` (1..=64) to the same processes as [`KillHandle::kill`].
    pub fn signal(&self, signal: i32) -> Result<(), Error> {
        if !wire::forwardable(signal) {
            return Err(Error::Policy(format!(
                "invalid signal {signal}: expected a number from 1 to 64"
            )));
        }
        match &self.0 {
            Target::Sandbox(_) => self.send(&Control::Signal { signal }),
            Target::Command { id, .. } => self.send(&Control::SignalCommand { id: *id, signal }),
        }
    }

    fn send(&self, msg: &Control) -> Result<(), Error> {
        match &self.0 {
            Target::Sandbox(weak) => {
                // Gone: the owner has finished with the sandbox already.
                let Some(control) = weak.upgrade() else {
                    return Ok(());
                };
                match wire::send(control.as_fd(), msg, &[]) {
                    Ok(()) => Ok(()),
                    Err(e)
                        if e.raw_os_error() == Some(libc::EPIPE)
                            || e.raw_os_error() == Some(libc::ECONNRESET) =>
                    {
                        Ok(())
                    }
                    Err(e) => Err(e.into()),
                }
            }
            Target::Command { shared, .. } => {
                let Some(shared) = shared.upgrade() else {
                    return Ok(());
                };
                match shared.send(msg, &[]) {
                    // An ended session has killed the command already.
                    Err(Error::Helper(_)) => Ok(()),
                    other => other,
                }
            }
        }
    }
}
