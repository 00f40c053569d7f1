//! The host end of a session's control channel: many senders (each command
//! handle sends its `Spawn` and `KillCommand`), one reader thread that hands
//! each report to the command it names.
//!
//! Each command gets a route: a channel for its reports and the write end of
//! a "done" pipe. The route is removed after the command's last report
//! (`CommandExited` or `CommandFailed`), or for every command when the
//! session ends; either way its pipe's write end closes, so a handle can
//! `poll` for the end of its command alongside the command's own pipes.

use std::collections::HashMap;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::{Arc, Mutex, MutexGuard};

use nix::sys::socket::{shutdown, Shutdown};

use crate::error::Error;
use crate::launch::wire::{self, Control, Report};

struct Route {
    tx: Sender<Report>,
    /// Closed (dropped) with the route.
    _done: OwnedFd,
    /// The command, for its start event.
    argv: Vec<String>,
}

/// What the session, its reader thread and its command handles share.
pub(crate) struct Shared {
    control: OwnedFd,
    /// `None` once the session has ended: no new routes.
    routes: Mutex<Option<HashMap<u64, Route>>>,
    /// The session's event log.
    pub log: Arc<crate::events::Log>,
    /// The errno program the commands' refused syscalls are answered from,
    /// when they come with a seccomp listener.
    refusals: Option<Arc<crate::seccomp::BpfProgram>>,
}

/// A command's end of its route.
pub(crate) struct Mailbox {
    pub reports: Receiver<Report>,
    /// Readable (end of file) once the route is gone.
    pub done: OwnedFd,
}

impl Shared {
    /// Take over `control` and start the reader thread.
    pub fn start(
        control: OwnedFd,
        log: Arc<crate::events::Log>,
        refusals: Option<Arc<crate::seccomp::BpfProgram>>,
    ) -> Result<(Arc<Shared>, std::thread::JoinHandle<()>), Error> {
        let shared = Arc::new(Shared {
            control,
            routes: Mutex::new(Some(HashMap::new())),
            log,
            refusals,
        });
        let reader = shared.clone();
        let handle = std::thread::Builder::new()
            .name("stockade-session".into())
            .spawn(move || reader.read_reports())?;
        Ok((shared, handle))
    }

    fn routes(&self) -> MutexGuard<'_, Option<HashMap<u64, Route>>> {
        self.routes.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Register command `id` before its `Spawn` is sent, so that no report
    /// can arrive unrouted.
    pub fn open_route(&self, id: u64, argv: &[String]) -> Result<Mailbox, Error> {
        let (done, done_wr) =
            nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(std::io::Error::from)?;
        let (tx, reports) = channel();
        match self.routes().as_mut() {
            Some(routes) => {
                routes.insert(
                    id,
                    Route {
                        tx,
                        _done: done_wr,
                        argv: argv.to_vec(),
                    },
                );
                Ok(Mailbox { reports, done })
            }
            None => Err(ended()),
        }
    }

    /// Forget command `id` (its spawn could not even be sent).
    pub fn close_route(&self, id: u64) {
        if let Some(routes) = self.routes().as_mut() {
            routes.remove(&id);
        }
    }

    /// Send one message to the init.
    pub fn send(&self, msg: &Control, fds: &[std::os::fd::RawFd]) -> Result<(), Error> {
        wire::send(self.control.as_fd(), msg, fds).map_err(|e| {
            if matches!(e.raw_os_error(), Some(libc::EPIPE | libc::ECONNRESET)) {
                ended()
            } else {
                e.into()
            }
        })
    }

    /// End the session: the init sees end of stream, kills everything and
    /// exits; the reader thread sees end of stream too and stops.
    pub fn shut_down(&self) {
        let _ = shutdown(
            std::os::fd::AsRawFd::as_raw_fd(&self.control),
            Shutdown::Both,
        );
    }

    /// The reader thread: route reports until the channel ends.
    fn read_reports(&self) {
        while let Ok(Some((report, fds))) = wire::recv::<Report>(self.control.as_fd(), false) {
            let (id, last) = match &report {
                Report::CommandStarted {
                    id,
                    syscall_listener,
                    ..
                } => {
                    let listener = fds.into_iter().next().filter(|_| *syscall_listener);
                    self.command_started(*id, listener);
                    (*id, false)
                }
                Report::CommandFailed { id, .. } | Report::CommandExited { id, .. } => (*id, true),
                // Nothing else is sent once a session runs.
                _ => continue,
            };
            let mut routes = self.routes();
            let Some(routes) = routes.as_mut() else {
                break;
            };
            let delivered = routes.get(&id).is_some_and(|r| r.tx.send(report).is_ok());
            // A handle that is gone wants nothing more for this command.
            if last || !delivered {
                routes.remove(&id);
            }
        }
        // Every waiting handle learns that the session is over.
        self.routes().take();
    }
}

impl Shared {
    /// Record command `id`'s start and supervise its refused syscalls. If
    /// they cannot be supervised they would wait forever: the command is
    /// killed instead.
    fn command_started(&self, id: u64, listener: Option<OwnedFd>) {
        let argv = self
            .routes()
            .as_ref()
            .and_then(|r| r.get(&id).map(|r| r.argv.clone()))
            .unwrap_or_default();
        self.log.push(Some(id), crate::EventKind::Start { argv });
        let (Some(listener), Some(answers)) = (listener, &self.refusals) else {
            return;
        };
        let watched =
            crate::events::syscalls::watch(listener, answers.clone(), self.log.clone(), Some(id));
        if let Err(e) = watched {
            self.log.push(
                Some(id),
                crate::EventKind::Notice {
                    detail: format!("killed: its refused syscalls cannot be supervised ({e})"),
                },
            );
            let _ = self.send(&Control::KillCommand { id }, &[]);
        }
    }
}

/// The error for anything asked of a session that has ended.
pub(crate) fn ended() -> Error {
    Error::Helper(
        "the session has ended (closed, or its sandbox init is gone); start a new one".into(),
    )
}
