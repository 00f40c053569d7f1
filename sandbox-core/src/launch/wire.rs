//! The host <-> helper protocol: one JSON message per `SOCK_SEQPACKET` datagram,
//! file descriptors alongside as `SCM_RIGHTS`.

use std::io::{IoSlice, IoSliceMut};
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

use nix::cmsg_space;
use nix::sys::socket::{recvmsg, sendmsg, ControlMessage, ControlMessageOwned, MsgFlags};
use serde::{Deserialize, Serialize};

use crate::error::SetupFailure;
use crate::fs::plan::MountOp;

/// Bumped whenever [`Plan`] or the messages change shape (4: five proxy
/// sockets travel with [`Report::Started`]; 5: sessions, [`Plan::session`],
/// [`Control::Spawn`] and the `Command*` reports; 6: [`Control::Signal`] and
/// [`Control::SignalCommand`]; 7: the seccomp listener and the overlay
/// uppers travel with [`Report::Started`] and [`Report::CommandStarted`],
/// [`Plan::notify`], [`Plan::hold_reaping`] and [`Control::Ack`]; 8: reduced
/// mode, [`Opening::reduced`] and [`Plan::reduced`]).
pub const PROTOCOL: u32 = 8;
/// The crate version, so a mismatched helper can say which versions met.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
/// Largest message we accept.
pub const MAX_MESSAGE: usize = 64 << 10;
/// Most fds in one message.
pub const MAX_FDS: usize = 32;

/// Who the sandbox's processes are: enough to create its namespaces and write
/// its id maps before the rest of the plan is known.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    /// uid inside.
    pub uid: u32,
    /// gid inside.
    pub gid: u32,
    /// The host uid the inside uid maps to.
    pub host_uid: u32,
    /// The host gid the inside gid maps to.
    pub host_gid: u32,
}

/// Host -> helper, first message: check versions, create the namespaces.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Opening {
    /// [`PROTOCOL`] of the host.
    pub protocol: u32,
    /// [`VERSION`] of the host.
    pub version: String,
    /// Identity of the sandbox to prepare.
    pub identity: Identity,
    /// The identity-only part of the root ([`crate::fs::plan::base`]).
    pub base: Vec<MountOp>,
    /// Create no namespaces: the helper becomes a reduced-mode supervisor
    /// (`launch::reduced`) and waits for a plan with [`Plan::reduced`].
    #[serde(default)]
    pub reduced: bool,
}

/// Host -> helper, second message (with the command's stdin, stdout, stderr):
/// everything else the helper needs to build the sandbox and start the
/// command. Computed by the host; the helper only carries it out.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Plan {
    /// Program and arguments (`argv[0]` is resolved inside against `PATH`).
    pub argv: Vec<String>,
    /// Full environment of the command.
    pub env: Vec<(String, String)>,
    /// Working directory inside.
    pub cwd: String,
    /// Hostname inside.
    pub hostname: String,
    /// Must equal the [`Opening`]'s.
    pub identity: Identity,
    /// Whether the caller is root: its grants are prepared as idmapped mounts
    /// outside the user namespace (see `launch::outer`).
    pub idmap_grants: bool,
    /// The rest of the root ([`crate::fs::plan::rest`]): hostname files,
    /// `/tmp`, grants.
    pub mounts: Vec<MountOp>,
    /// The base root, computed once on the host for the [`Opening`]; never
    /// sent with the plan.
    #[serde(skip)]
    pub base: Vec<MountOp>,
    /// Wall-clock limit in milliseconds.
    pub timeout_ms: Option<u64>,
    /// Time between SIGTERM and SIGKILL on timeout.
    pub grace_ms: u64,
    /// Descriptor numbers, inside, of the declared pass-throughs; their
    /// sources travel after the three stdio descriptors, in this order.
    pub pass_fds: Vec<i32>,
    /// The compiled seccomp program, one packed instruction per word
    /// ([`crate::seccomp::pack`]); never empty.
    pub filter: Vec<u64>,
    /// `filter` refuses with `USER_NOTIF`: each command's last hop hands its
    /// listener to the init, which sends it to the host with the command's
    /// start report.
    #[serde(default)]
    pub notify: bool,
    /// The errno form of `filter`, which the host answers refusals from;
    /// never sent.
    #[serde(skip)]
    pub refusals: Option<std::sync::Arc<crate::seccomp::BpfProgram>>,
    /// Reap nothing until the host sends [`Control::Ack`] after the start
    /// report: the host then still finds the command among the init's
    /// children (to learn its host pid, which names its Landlock domain in
    /// the kernel's audit log), however fast it ends.
    #[serde(default)]
    pub hold_reaping: bool,
    /// The caller's Landlock choices; the rules themselves follow from the
    /// mounts.
    pub landlock: crate::landlock::Settings,
    /// Make the fake address pool local on `lo`, create the egress proxy's
    /// sockets inside the network namespace and hand them over with
    /// [`Report::Started`] (`Net::Proxy`).
    pub proxy_listeners: bool,
    /// Build the sandbox without a command and stay as a session's zygote:
    /// report [`Report::Started`] (with the init's pid), then fork one
    /// command per [`Control::Spawn`] until the host closes the channel.
    /// `argv`, `env`, `cwd` and the timeout are then unused (each
    /// [`Spawn`] carries its own), and the stdio sent with the plan is
    /// dropped.
    pub session: bool,
    /// How many descriptors after the pass-throughs are `cgroup.procs` files
    /// of the sandbox's cgroup (one per hierarchy; 0 without limits). The
    /// outer half writes the init's pid into each before releasing it.
    #[serde(default)]
    pub cgroup_procs: usize,
    /// `RLIMIT_NPROC` (soft = hard) set in the last hop: the `--pids` fallback
    /// without a cgroup. Since Linux 5.14 the count is per user namespace, so
    /// it counts the sandbox's processes only (in reduced mode, with no user
    /// namespace, every process of the host uid: the host adds the count).
    #[serde(default)]
    pub nproc: Option<u64>,
    /// Reduced mode (`crate::reduced`): no namespaces, no mounts; the
    /// command runs as [`Identity::host_uid`]/[`Identity::host_gid`] under
    /// these rules. `mounts` and `hostname` are then unused.
    #[serde(default)]
    pub reduced: Option<ReducedPlan>,
}

/// What a reduced-mode supervisor needs besides the common plan.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ReducedPlan {
    /// The Landlock rules at host paths (`crate::reduced::rules`).
    pub rules: crate::landlock::Rules,
}

/// Helper -> host.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Report {
    /// The command is running (a session: the sandbox is ready). With it
    /// travel, in this order: the proxy's listening sockets in proxy mode
    /// ([`crate::proxy::listen::ORDER`]), `uppers` overlay upper
    /// directories (plan order), then the command's seccomp listener if
    /// `syscall_listener`.
    Started {
        /// Host pid of the init.
        pid: i32,
        /// The Landlock ABI the command is restricted at (0: without Landlock,
        /// which only happens when the caller accepted that).
        landlock_abi: u32,
        /// How many overlay upper directories follow the proxy sockets.
        #[serde(default)]
        uppers: usize,
        /// Whether the command's seccomp listener comes last.
        #[serde(default)]
        syscall_listener: bool,
    },
    /// The sandbox could not be built; nothing ran.
    Failed(SetupFailure),
    /// `argv[0]` was not found (127) or could not be executed (126).
    ExecFailed {
        /// errno of the lookup or execve.
        errno: i32,
    },
    /// The command finished and the whole tree is gone.
    Exited {
        /// Exit code, if it exited.
        code: Option<i32>,
        /// Signal, if it was killed.
        signal: Option<i32>,
        /// Whether the timeout fired.
        timed_out: bool,
    },
    /// Session: the command `id` is running; its seccomp listener travels
    /// with it if `syscall_listener`.
    CommandStarted {
        /// The [`Spawn::id`] it answers.
        id: u64,
        /// The command's pid inside the sandbox (the init's pid namespace).
        pid: i32,
        /// Whether the command's seccomp listener travels with the report.
        #[serde(default)]
        syscall_listener: bool,
    },
    /// Session: the command `id` could not be started; nothing of it runs.
    CommandFailed {
        /// The [`Spawn::id`] it answers.
        id: u64,
        /// Why.
        failure: SpawnFailure,
    },
    /// Session: the command `id`'s leader has ended (its process group may
    /// live on, see `supervise::session`).
    CommandExited {
        /// The [`Spawn::id`].
        id: u64,
        /// Exit code, if it exited.
        code: Option<i32>,
        /// Signal, if it was killed.
        signal: Option<i32>,
        /// Whether its timeout fired.
        timed_out: bool,
    },
}

/// Why a session command did not start.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum SpawnFailure {
    /// `argv[0]` was not found (127) or could not be executed (126).
    Exec {
        /// errno of the lookup or `execve`.
        errno: i32,
    },
    /// A step of the last hop (or of its preparation) failed.
    Setup(SetupFailure),
}

/// Host -> helper, after the plan.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Control {
    /// Kill the whole tree now.
    Kill,
    /// The host has what it needed of the start report ([`Plan::hold_reaping`]).
    Ack,
    /// Session: start a command. Its stdin, stdout, stderr, then the
    /// pass-through sources travel with it as descriptors.
    Spawn(Spawn),
    /// Session: SIGKILL the process group of command `id` (ignored once its
    /// exit was reported).
    KillCommand {
        /// The [`Spawn::id`].
        id: u64,
    },
    /// Send `signal` to every process of the sandbox (not its init). The
    /// init ignores numbers outside 1..=64.
    Signal {
        /// The signal number.
        signal: i32,
    },
    /// Session: send `signal` to command `id`'s process group and session
    /// (ignored once its exit was reported, or outside 1..=64).
    SignalCommand {
        /// The [`Spawn::id`].
        id: u64,
        /// The signal number.
        signal: i32,
    },
}

/// Whether `signal` is a signal number the init forwards.
pub fn forwardable(signal: i32) -> bool {
    (1..=64).contains(&signal)
}

/// One command of a session.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Spawn {
    /// Chosen by the host, unique within the session.
    pub id: u64,
    /// Program and arguments (`argv[0]` resolved against the `PATH` in `env`).
    pub argv: Vec<String>,
    /// Full environment of the command.
    pub env: Vec<(String, String)>,
    /// Working directory inside.
    pub cwd: String,
    /// Wall-clock limit for this command, in milliseconds.
    pub timeout_ms: Option<u64>,
    /// Time between SIGTERM and SIGKILL on timeout.
    pub grace_ms: u64,
    /// Descriptor numbers, inside, of the pass-throughs (sources after the
    /// three stdio descriptors, in this order).
    pub pass_fds: Vec<i32>,
}

/// Wait up to `timeout` (at most about a minute; callers loop) until `sock`
/// has a message or its peer is gone. `false` when the time ran out.
pub fn readable(sock: BorrowedFd<'_>, timeout: std::time::Duration) -> std::io::Result<bool> {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    let ms = u16::try_from(timeout.as_nanos().div_ceil(1_000_000)).unwrap_or(u16::MAX);
    let mut fds = [PollFd::new(sock, PollFlags::POLLIN)];
    match poll(&mut fds, PollTimeout::from(ms)) {
        Ok(n) => Ok(n > 0),
        Err(nix::errno::Errno::EINTR) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// Send one message with optional fds.
pub fn send<T: Serialize>(sock: BorrowedFd<'_>, msg: &T, fds: &[RawFd]) -> std::io::Result<()> {
    let bytes = serde_json::to_vec(msg).map_err(std::io::Error::other)?;
    if bytes.len() > MAX_MESSAGE {
        return Err(std::io::Error::other(format!(
            "the plan is {} bytes, over the {} KiB limit: grant fewer paths or set fewer variables",
            bytes.len(),
            MAX_MESSAGE >> 10
        )));
    }
    let iov = [IoSlice::new(&bytes)];
    let cmsg = [ControlMessage::ScmRights(fds)];
    let cmsgs: &[ControlMessage<'_>] = if fds.is_empty() { &[] } else { &cmsg };
    sendmsg::<()>(sock.as_raw_fd(), &iov, cmsgs, MsgFlags::MSG_NOSIGNAL, None)?;
    Ok(())
}

/// Receive one message and its fds. `Ok(None)` on end of stream.
pub fn recv<T: for<'de> Deserialize<'de>>(
    sock: BorrowedFd<'_>,
    nonblocking: bool,
) -> std::io::Result<Option<(T, Vec<OwnedFd>)>> {
    match recv_bytes(sock, nonblocking)? {
        None => Ok(None),
        Some((bytes, fds)) => {
            let msg = serde_json::from_slice(&bytes).map_err(std::io::Error::other)?;
            Ok(Some((msg, fds)))
        }
    }
}

/// Receive one raw datagram and its fds. `Ok(None)` on end of stream.
pub fn recv_bytes(
    sock: BorrowedFd<'_>,
    nonblocking: bool,
) -> std::io::Result<Option<(Vec<u8>, Vec<OwnedFd>)>> {
    let mut buf = vec![0u8; MAX_MESSAGE];
    let mut cmsg = cmsg_space!([RawFd; MAX_FDS]);
    let flags = MsgFlags::MSG_CMSG_CLOEXEC
        | if nonblocking {
            MsgFlags::MSG_DONTWAIT
        } else {
            MsgFlags::empty()
        };
    loop {
        let mut iov = [IoSliceMut::new(&mut buf)];
        match recvmsg::<()>(sock.as_raw_fd(), &mut iov, Some(&mut cmsg), flags) {
            Ok(msg) => {
                let mut fds = Vec::new();
                for c in msg.cmsgs()? {
                    if let ControlMessageOwned::ScmRights(raw) = c {
                        // SAFETY: SCM_RIGHTS fds are freshly installed in this
                        // process by the kernel and owned by nobody yet.
                        fds.extend(
                            raw.into_iter()
                                .map(|fd| unsafe { OwnedFd::from_raw_fd(fd) }),
                        );
                    }
                }
                if msg
                    .flags
                    .intersects(MsgFlags::MSG_TRUNC | MsgFlags::MSG_CTRUNC)
                {
                    return Err(std::io::Error::other("truncated message from peer"));
                }
                let len = msg.bytes;
                if len == 0 {
                    return Ok(None);
                }
                buf.truncate(len);
                return Ok(Some((buf, fds)));
            }
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(e.into()),
        }
    }
}
