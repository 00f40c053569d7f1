//! The init's side of the last hop, shared by the one-command sandbox and a
//! session's zygote: resolve the program, prepare the [`PreparedExec`], fork,
//! and read the `(step, errno)` record (EOF: `execve` succeeded).
//!
//! Runs in the init only (single-threaded), after the rings are built.

use std::ffi::CString;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::sys::socket::{
    recvmsg, socketpair, AddressFamily, ControlMessageOwned, MsgFlags, SockFlag, SockType,
};
use nix::unistd::{ForkResult, Pid};

use super::exec::{PreparedExec, Rings, Step, HIGH_FD, LISTENER_RECORD, RECORD};
use super::wire::{Plan, Report};
use crate::error::{Layer, SetupFailure};
use crate::landlock::PreparedRuleset;

/// What to run: the parts of a [`super::wire::Plan`] or a
/// [`super::wire::Spawn`] the last hop needs.
pub(crate) struct CommandSpec<'a> {
    /// Program and arguments.
    pub argv: &'a [String],
    /// Full environment.
    pub env: &'a [(String, String)],
    /// Working directory inside.
    pub cwd: &'a str,
}

/// Why a command did not start.
#[derive(Debug)]
pub(crate) enum Failure {
    /// Lookup or `execve` failed: 127 for `ENOENT`, 126 otherwise.
    Exec(Errno),
    /// Any other step, with the layer it belongs to.
    Setup(SetupFailure),
}

impl From<SetupFailure> for Failure {
    fn from(f: SetupFailure) -> Self {
        Failure::Setup(f)
    }
}

pub(crate) fn fail(layer: Layer, step: impl Into<String>, errno: Errno) -> SetupFailure {
    SetupFailure {
        layer,
        step: step.into(),
        errno: errno as i32,
        detail: String::new(),
    }
}

/// A command that has exec'd.
pub(crate) struct Forked {
    /// Its pid (inside the sandbox's pid namespace).
    pub pid: Pid,
    /// The seccomp listener of its filter ([`Rings::notify`]), for the host.
    pub listener: Option<OwnedFd>,
}

/// Fork the one command of `plan` through the last hop (a one-command
/// sandbox, full or reduced mode). `Err(report)`: it did not start, and
/// `report` is what the host is told.
pub(crate) fn fork_plan_command(
    plan: &Plan,
    program: &Path,
    stdio: Vec<OwnedFd>,
    passed: Vec<OwnedFd>,
    landlock: &PreparedRuleset,
    filter: &[libc::sock_filter],
) -> Result<Result<Forked, Report>, SetupFailure> {
    let stdio: [OwnedFd; 3] = stdio
        .try_into()
        .map_err(|_| fail(Layer::Helper, "receive the command's stdio", Errno::EBADF))?;
    let cmd = CommandSpec {
        argv: &plan.argv,
        env: &plan.env,
        cwd: &plan.cwd,
    };
    let rings = Rings {
        landlock,
        filter,
        notify: plan.notify,
        nproc: plan.nproc,
    };
    Ok(
        match fork_command(&cmd, program, &stdio, passed, &plan.pass_fds, rings) {
            Ok(forked) => Ok(forked),
            Err(Failure::Exec(errno)) => Err(Report::ExecFailed {
                errno: errno as i32,
            }),
            Err(Failure::Setup(f)) => Err(Report::Failed(f)),
        },
    )
}

/// Fork `cmd` through the last hop and wait until it has exec'd.
///
/// `stdio` becomes 0-2; `passed[i]` becomes descriptor `pass_targets[i]`.
/// The rings' Landlock descriptor must already sit at or above [`HIGH_FD`].
/// On failure the child has been reaped.
pub(crate) fn fork_command(
    cmd: &CommandSpec<'_>,
    program: &Path,
    stdio: &[OwnedFd; 3],
    passed: Vec<OwnedFd>,
    pass_targets: &[RawFd],
    rings: Rings<'_>,
) -> Result<Forked, Failure> {
    // A socket, not a pipe: the seccomp listener travels on it.
    let (report_rd, report_wr) = socketpair(
        AddressFamily::Unix,
        SockType::SeqPacket,
        None,
        SockFlag::SOCK_CLOEXEC,
    )
    .map_err(|e| fail(Layer::Supervisor, "socketpair", e))?;
    // Sources above every possible target, so the last hop's dup2s cannot
    // clobber them (see `exec::HIGH_FD`).
    let report_wr = move_high(report_wr)?;
    let passed = passed
        .into_iter()
        .map(move_high)
        .collect::<Result<Vec<_>, _>>()?;
    let passes = passed
        .iter()
        .zip(pass_targets)
        .map(|(src, &target)| (src.as_raw_fd(), target))
        .collect();
    let fds = [
        stdio[0].as_raw_fd(),
        stdio[1].as_raw_fd(),
        stdio[2].as_raw_fd(),
    ];
    let exec = prepare_exec(cmd, program, fds, passes, report_wr.as_raw_fd(), rings)?;
    // SAFETY: the init is single-threaded; the child only runs `apply_raw`,
    // which performs raw syscalls from the prepared plan and never allocates.
    let child = match unsafe { nix::unistd::fork() } {
        Ok(ForkResult::Child) => exec.apply_raw(),
        Ok(ForkResult::Parent { child }) => child,
        Err(e) => return Err(fail(Layer::Supervisor, "fork the command", e).into()),
    };
    // Our copy of the write end must go, or the read below never sees EOF.
    drop(report_wr);
    drop(passed);
    let (result, listener) = read_exec_result(&report_rd);
    match result {
        None if rings.notify && listener.is_none() => {
            // The last hop exec'd without handing over its listener: it
            // cannot, so this is a bug, and refusals would hang. Stop it.
            let _ = nix::sys::signal::kill(child, nix::sys::signal::Signal::SIGKILL);
            let _ = nix::sys::wait::waitpid(child, None);
            Err(fail(
                Layer::Seccomp,
                "receive the seccomp listener",
                Errno::EPROTO,
            )
            .into())
        }
        None => Ok(Forked {
            pid: child,
            listener,
        }),
        Some((step, errno)) => {
            let _ = nix::sys::wait::waitpid(child, None);
            Err(match step {
                Step::Exec => Failure::Exec(errno),
                _ => Failure::Setup(fail(step_layer(step), step.name(), errno)),
            })
        }
    }
}

fn step_layer(step: Step) -> Layer {
    match step {
        // The layer doc: "capabilities, no_new_privs, rlimits, session".
        Step::Setsid | Step::Rlimit | Step::Capabilities | Step::NoNewPrivs => Layer::Privileges,
        Step::Landlock => Layer::Landlock,
        Step::Seccomp => Layer::Seccomp,
        _ => Layer::Exec,
    }
}

/// Find `argv[0]` inside the new root, like `execvp` (which would allocate in
/// the last hop), along the `PATH` of `env`.
pub(crate) fn resolve_program(argv0: &str, env: &[(String, String)]) -> Result<PathBuf, Errno> {
    if argv0.contains('/') {
        return Ok(PathBuf::from(argv0));
    }
    let path = env
        .iter()
        .find(|(k, _)| k == "PATH")
        .map(|(_, v)| v.as_str())
        .unwrap_or("/usr/bin:/bin");
    let mut seen_eacces = false;
    for dir in path.split(':').filter(|d| d.starts_with('/')) {
        let candidate = Path::new(dir).join(argv0);
        if let Ok(meta) = std::fs::metadata(&candidate) {
            if meta.is_file() && meta.permissions().mode() & 0o111 != 0 {
                return Ok(candidate);
            }
            seen_eacces = true;
        }
    }
    Err(if seen_eacces {
        Errno::EACCES
    } else {
        Errno::ENOENT
    })
}

fn cstring(s: &str, what: &str) -> Result<CString, SetupFailure> {
    CString::new(s).map_err(|_| {
        fail(
            Layer::Exec,
            format!("{what} contains a NUL byte"),
            Errno::EINVAL,
        )
    })
}

/// Duplicate `fd` to the lowest free number at or above `exec::HIGH_FD`.
pub(crate) fn move_high(fd: OwnedFd) -> Result<OwnedFd, SetupFailure> {
    let high =
        nix::fcntl::fcntl(&fd, nix::fcntl::FcntlArg::F_DUPFD_CLOEXEC(HIGH_FD)).map_err(|e| {
            let mut f = fail(Layer::Supervisor, "move descriptor", e);
            f.detail = format!("needs RLIMIT_NOFILE above {HIGH_FD}");
            f
        })?;
    // SAFETY: F_DUPFD_CLOEXEC returned a new descriptor owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(high) })
}

fn prepare_exec<'r>(
    cmd: &CommandSpec<'_>,
    program: &Path,
    stdio: [RawFd; 3],
    passes: Vec<(RawFd, RawFd)>,
    report_fd: RawFd,
    rings: Rings<'r>,
) -> Result<PreparedExec<'r>, SetupFailure> {
    use std::os::unix::ffi::OsStrExt;
    let path = CString::new(program.as_os_str().as_bytes()).map_err(|_| {
        fail(
            Layer::Exec,
            "program path contains a NUL byte",
            Errno::EINVAL,
        )
    })?;
    let argv = cmd
        .argv
        .iter()
        .map(|a| cstring(a, "argument"))
        .collect::<Result<Vec<_>, _>>()?;
    let envp = cmd
        .env
        .iter()
        .map(|(k, v)| cstring(&format!("{k}={v}"), "environment"))
        .collect::<Result<Vec<_>, _>>()?;
    let cwd = cstring(cmd.cwd, "working directory")?;
    // The last hop checks it still has us as its parent: PID 1 for a
    // sandbox init, our host pid for a reduced-mode supervisor.
    let parent = nix::unistd::getpid().as_raw();
    Ok(PreparedExec::new(
        path, argv, envp, cwd, stdio, passes, report_fd, parent, rings,
    ))
}

/// Read the last hop's records until EOF, which means `execve` succeeded
/// (the socket was CLOEXEC): the failure, if any, and the seccomp listener,
/// if one came.
fn read_exec_result(sock: &OwnedFd) -> (Option<(Step, Errno)>, Option<OwnedFd>) {
    let mut listener = None;
    loop {
        let mut rec = [0u8; RECORD];
        let mut cmsg = nix::cmsg_space!([RawFd; 1]);
        let mut iov = [std::io::IoSliceMut::new(&mut rec)];
        let msg = match recvmsg::<()>(
            sock.as_raw_fd(),
            &mut iov,
            Some(&mut cmsg),
            MsgFlags::MSG_CMSG_CLOEXEC,
        ) {
            Ok(m) => m,
            Err(Errno::EINTR) => continue,
            Err(_) => return (None, listener),
        };
        let got = msg.bytes;
        let fds: Vec<OwnedFd> = msg
            .cmsgs()
            .into_iter()
            .flatten()
            .filter_map(|c| match c {
                ControlMessageOwned::ScmRights(raw) => Some(raw),
                _ => None,
            })
            .flatten()
            // SAFETY: SCM_RIGHTS descriptors are new in this process and
            // owned by nobody else.
            .map(|fd| unsafe { OwnedFd::from_raw_fd(fd) })
            .collect();
        if got == 0 {
            return (None, listener);
        }
        if got < RECORD {
            continue;
        }
        if rec == LISTENER_RECORD {
            listener = fds.into_iter().next();
            continue;
        }
        let step = u32::from_ne_bytes([rec[0], rec[1], rec[2], rec[3]]);
        let errno = i32::from_ne_bytes([rec[4], rec[5], rec[6], rec[7]]);
        let step = Step::from_u32(step).unwrap_or(Step::Exec);
        return (Some((step, Errno::from_raw(errno))), listener);
    }
}
