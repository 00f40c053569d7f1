//! Opt-in ssh-agent passthrough ([`crate::Sandbox::ssh_agent`]).
//!
//! Only the caller's agent socket (`$SSH_AUTH_SOCK`) is bound in, read-only,
//! at [`INSIDE_SOCKET`]; nothing else of `~/.ssh` or of the socket's
//! directory. The command can then ask the agent to sign (authenticate as the
//! caller to any host the sandbox's network reaches) and to list, add or
//! remove keys, for as long as it runs; it cannot read the private keys.
//!
//! Landlock up to ABI 7 (our [`crate::landlock::MAX_ABI`]) has no access
//! right for `connect(2)` to a pathname socket (`make_sock` covers creating
//! one), so the bound socket needs no rule; what the kernel checks is write
//! permission on the socket inode, which the caller's own socket grants to
//! the caller's own ids inside. ABI 8 adds `LANDLOCK_ACCESS_FS_RESOLVE_UNIX`:
//! once that is vetted, the socket's rule must carry it (the ssh-agent tests
//! connect with Landlock on and would fail first).
//!
//! A root caller's sandbox runs as an unprivileged host id, and OpenSSH's
//! agent refuses peers whose uid is neither its own nor 0. For a root caller
//! the library therefore binds in a [`Relay`] instead: a socket in a private
//! host directory whose connections this process forwards to the real agent.

use std::io;
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use crate::error::Error;

/// Where the agent socket appears inside; `SSH_AUTH_SOCK` points here.
pub const INSIDE_SOCKET: &str = "/run/ssh-agent.sock";

/// At most this many agent connections are relayed at once (a command
/// cannot make the host start threads without bound).
const MAX_CONNECTIONS: usize = 8;

/// The caller's agent socket: `$SSH_AUTH_SOCK`, which must name a socket.
pub(crate) fn caller_socket() -> Result<PathBuf, Error> {
    let Some(value) = std::env::var_os("SSH_AUTH_SOCK").filter(|v| !v.is_empty()) else {
        return Err(Error::policy(
            "--ssh-agent needs SSH_AUTH_SOCK, which is not set: start an agent \
             (`eval $(ssh-agent)`, `ssh-add`) or drop --ssh-agent",
        ));
    };
    let path = PathBuf::from(value);
    match std::fs::metadata(&path) {
        Ok(m) if m.file_type().is_socket() => Ok(path),
        Ok(_) => Err(Error::policy(format!(
            "--ssh-agent: SSH_AUTH_SOCK={} is not a socket",
            path.display()
        ))),
        Err(e) => Err(Error::policy(format!(
            "--ssh-agent: SSH_AUTH_SOCK={}: {e}",
            path.display()
        ))),
    }
}

/// A socket in a private host directory whose connections are forwarded to
/// the caller's agent, for a root caller (see the module documentation).
#[derive(Debug)]
pub(crate) struct Relay {
    dir: PathBuf,
    socket: PathBuf,
    upstream: PathBuf,
    listener: Option<UnixListener>,
    stop: Arc<AtomicBool>,
    serving: bool,
}

impl Relay {
    /// Create the socket (nothing is accepted until [`Relay::serve`]).
    pub(crate) fn bind(upstream: &Path) -> Result<Relay, Error> {
        let fail = |step: &str, e: io::Error| {
            Error::policy(format!("--ssh-agent: cannot {step} the agent relay: {e}"))
        };
        let dir = private_dir().map_err(|e| fail("create a directory for", e))?;
        let socket = dir.join("agent.sock");
        let listener = UnixListener::bind(&socket).map_err(|e| {
            let _ = std::fs::remove_dir(&dir);
            fail("bind", e)
        })?;
        // Only the bound file is visible inside, where the sandbox's ids may
        // differ from the owner's (`--uid`); the directory keeps host users out.
        std::fs::set_permissions(&socket, std::fs::Permissions::from_mode(0o666))
            .map_err(|e| fail("chmod", e))?;
        Ok(Relay {
            dir,
            socket,
            upstream: upstream.to_path_buf(),
            listener: Some(listener),
            stop: Arc::new(AtomicBool::new(false)),
            serving: false,
        })
    }

    /// The host path of the relay's socket.
    pub(crate) fn path(&self) -> &Path {
        &self.socket
    }

    /// Start forwarding connections, on a thread of this process.
    pub(crate) fn serve(&mut self) -> Result<(), Error> {
        let Some(listener) = self.listener.take() else {
            return Ok(());
        };
        let (upstream, stop) = (self.upstream.clone(), self.stop.clone());
        std::thread::Builder::new()
            .name("stockade-ssh-agent".into())
            .spawn(move || accept_loop(listener, &upstream, &stop))
            .map_err(|e| Error::policy(format!("--ssh-agent: cannot start the relay: {e}")))?;
        self.serving = true;
        Ok(())
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if self.serving {
            // Wake the accept so the thread sees `stop` and exits.
            let _ = UnixStream::connect(&self.socket);
        }
        let _ = std::fs::remove_file(&self.socket);
        let _ = std::fs::remove_dir(&self.dir);
    }
}

/// A fresh 0700 directory under the host's temporary directory.
fn private_dir() -> io::Result<PathBuf> {
    let base = std::env::temp_dir();
    let mut last = None;
    // `mkdir` never follows a planted symlink and fails if the name is
    // taken: the name only has to be unlikely to collide.
    for attempt in 0..16u32 {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let name = format!("stockade-agent-{}-{nanos:08x}{attempt}", std::process::id());
        let dir = base.join(name);
        match std::fs::DirBuilder::new().mode(0o700).create(&dir) {
            Ok(()) => return Ok(dir),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| io::Error::from(io::ErrorKind::AlreadyExists)))
}

fn accept_loop(listener: UnixListener, upstream: &Path, stop: &AtomicBool) {
    let active = Arc::new(AtomicUsize::new(0));
    for conn in listener.incoming() {
        if stop.load(Ordering::SeqCst) {
            return;
        }
        let Ok(inside) = conn else { continue };
        if active.load(Ordering::SeqCst) >= MAX_CONNECTIONS {
            continue;
        }
        let Ok(agent) = UnixStream::connect(upstream) else {
            continue;
        };
        let _ = forward(inside, agent, &active);
    }
}

/// Copy both ways until each side has finished; counted in `active` until
/// both directions are done.
fn forward(inside: UnixStream, agent: UnixStream, active: &Arc<AtomicUsize>) -> io::Result<()> {
    struct Counted(Arc<AtomicUsize>);
    impl Drop for Counted {
        fn drop(&mut self) {
            self.0.fetch_sub(1, Ordering::SeqCst);
        }
    }
    active.fetch_add(1, Ordering::SeqCst);
    let guard = Arc::new(Counted(active.clone()));
    let pipe = |mut from: UnixStream, to: UnixStream, guard: Arc<Counted>| {
        move || {
            let _ = io::copy(&mut from, &mut &to);
            let _ = to.shutdown(std::net::Shutdown::Write);
            drop(guard);
        }
    };
    let (inside2, agent2) = (inside.try_clone()?, agent.try_clone()?);
    std::thread::Builder::new()
        .name("stockade-ssh-agent-conn".into())
        .spawn(pipe(inside, agent, guard.clone()))?;
    std::thread::Builder::new()
        .name("stockade-ssh-agent-conn".into())
        .spawn(pipe(agent2, inside2, guard))?;
    Ok(())
}
