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
use nix::unistd::{pipe2, ForkResult, Pid};

use super::exec::{PreparedExec, Rings, Step, HIGH_FD, RECORD};
use crate::error::{Layer, SetupFailure};

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
) -> Result<Pid, Failure> {
    let (report_rd, report_wr) =
        pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|e| fail(Layer::Supervisor, "pipe", e))?;
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
    match read_exec_result(&report_rd) {
        None => Ok(child),
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
    Ok(PreparedExec::new(
        path, argv, envp, cwd, stdio, passes, report_fd, 1, rings,
    ))
}

/// EOF means `execve` succeeded (the pipe was CLOEXEC).
fn read_exec_result(fd: &OwnedFd) -> Option<(Step, Errno)> {
    let mut rec = [0u8; RECORD];
    let mut got = 0;
    while got < RECORD {
        match nix::unistd::read(fd, &mut rec[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(Errno::EINTR) => continue,
            Err(_) => break,
        }
    }
    if got < RECORD {
        return None;
    }
    let step = u32::from_ne_bytes(rec[..4].try_into().ok()?);
    let errno = i32::from_ne_bytes(rec[4..].try_into().ok()?);
    Some((
        Step::from_u32(step).unwrap_or(Step::Exec),
        Errno::from_raw(errno),
    ))
}
