//! The sandbox init: PID 1 of the new pid namespace. Builds the root, drops its
//! own privileges, forks the command through the allocation-free last hop, then
//! supervises until the whole tree is gone.

use std::ffi::CString;
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use nix::errno::Errno;
use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::unistd::{pipe2, ForkResult, Gid, Uid};

use super::exec::{PreparedExec, Rings, Step, RECORD};
use super::outer::{Go, Mapped, INIT_REPORTED};
use super::wire::{self, Identity, Plan, Report};
use crate::error::{Layer, SetupFailure};
use crate::fs::apply;
use crate::landlock::{IfUnsupported, LandlockError, PreparedRuleset, Rules};
use crate::supervise;
use crate::sys;

fn fail(layer: Layer, step: impl Into<String>, errno: Errno) -> SetupFailure {
    SetupFailure {
        layer,
        step: step.into(),
        errno: errno as i32,
        detail: String::new(),
    }
}

/// Run the init. Never returns; always sends exactly one final report.
pub fn run(id: &Identity, control: &OwnedFd, sync: OwnedFd) -> ! {
    let report = match build_and_run(id, control, sync) {
        Ok(r) => r,
        Err(f) => Report::Failed(f),
    };
    let _ = wire::send(control.as_fd(), &report, &[]);
    sys::exit_now(INIT_REPORTED)
}

/// Wait for the next message from the outer half; if it is gone, it reports
/// (or, for an unused pre-warmed sandbox, nobody is waiting): just leave.
fn from_outer<T: for<'de> serde::Deserialize<'de>>(sync: &OwnedFd) -> (T, Vec<OwnedFd>) {
    match wire::recv(sync.as_fd(), false) {
        Ok(Some(m)) => m,
        _ => sys::exit_now(INIT_REPORTED),
    }
}

fn build_and_run(id: &Identity, control: &OwnedFd, sync: OwnedFd) -> Result<Report, SetupFailure> {
    sys::set_process_title(c"stockade-init");
    // Only our own channels may stay open: whatever else the process that
    // cloned us held (a caller's descriptors, the host's end of `control`)
    // must not reach the sandbox or keep the host's channel alive.
    let mut keep: Vec<RawFd> = vec![control.as_raw_fd(), sync.as_raw_fd()];
    close_all_except(&mut keep)
        .map_err(|e| fail(Layer::Supervisor, "close inherited descriptors", e))?;
    // If the outer half is killed, so is the init, and with it the whole namespace.
    sys::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong)
        .map_err(|e| fail(Layer::Supervisor, "set parent-death signal", e))?;

    // Everything that depends only on who we are, done before the plan arrives
    // (for a pre-warmed sandbox, that is before the caller even asks).
    let (mapped, _) = from_outer::<Mapped>(&sync);
    become_inside_user(id)?;
    forbid_nested_user_namespaces()?;
    sys::loopback_up().map_err(|e| fail(Layer::Network, "bring up loopback", e))?;
    apply::make_mounts_private()?;
    let host = apply::HostView::take()?;
    let mut sources = apply::clone_sources(&mapped.base, &host, std::iter::empty())?;
    apply::enter_staging()?;
    apply::apply(&mut apply::RealSys, &mapped.base, &mut sources)?;
    drop(sources);

    let (go, mut fds): (Go, Vec<OwnedFd>) = from_outer(&sync);
    drop(sync);
    let plan = &go.plan;
    if fds.len() < 3 {
        return Err(fail(
            Layer::Helper,
            "receive the command's stdio",
            Errno::EBADF,
        ));
    }
    let npass = plan.pass_fds.len();
    if fds.len() < 3 + npass {
        return Err(fail(
            Layer::Helper,
            "receive the pass-through descriptors",
            Errno::EBADF,
        ));
    }
    let granted = fds.split_off(3 + npass);
    let passed = fds.split_off(3);
    let stdio = fds;
    nix::unistd::sethostname(&plan.hostname)
        .map_err(|e| fail(Layer::Namespaces, "sethostname", e))?;
    // Listening before the command starts: its first request waits in the
    // backlog until the host serves it. Both need the capabilities the init
    // still holds over the namespace (CAP_NET_ADMIN for the address,
    // CAP_NET_BIND_SERVICE for ports 53, 80 and 443).
    let listeners = if plan.proxy_listeners {
        crate::proxy::listen::add_fake_pool().map_err(|e| {
            fail(
                Layer::Network,
                "make the proxy's fake address pool 198.18.0.0/15 local on lo (netlink RTM_NEWADDR)",
                e,
            )
        })?;
        crate::proxy::listen::create().map_err(|e| fail(Layer::Proxy, e.step, e.errno))?
    } else {
        Vec::new()
    };

    let mut sources = apply::clone_sources(&plan.mounts, &host, granted.into_iter())?;
    drop(host);
    apply::apply(&mut apply::RealSys, &plan.mounts, &mut sources)?;
    drop(sources);
    apply::pivot_and_seal()?;
    // Children get fresh clocks (CLONE_NEWTIME only applies to children).
    nix::sched::unshare(nix::sched::CloneFlags::from_bits_retain(
        libc::CLONE_NEWTIME,
    ))
    .map_err(|e| fail(Layer::Namespaces, "unshare time namespace", e))?;

    // The access and syscall rings, built now (paths inside the new root) so
    // the last hop only has to enforce them.
    let landlock = prepare_landlock(&mapped.base, plan, &stdio, &passed)?;
    let filter = unpack_filter(&plan.filter)?;

    let program = match resolve_program(&plan.argv[0], plan) {
        Ok(p) => p,
        Err(errno) => {
            return Ok(Report::ExecFailed {
                errno: errno as i32,
            })
        }
    };
    drop_privileges()?;

    let mut mask = SigSet::empty();
    mask.add(Signal::SIGCHLD);
    mask.thread_block()
        .map_err(|e| fail(Layer::Supervisor, "block SIGCHLD", e))?;
    let sigfd = SignalFd::with_flags(&mask, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK)
        .map_err(|e| fail(Layer::Supervisor, "signalfd", e))?;

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
        .zip(&plan.pass_fds)
        .map(|(src, &target)| (src.as_raw_fd(), target))
        .collect();
    let landlock_abi = landlock.abi();
    let rings = Rings {
        landlock: landlock.map_fd(move_high)?,
        filter,
    };
    let exec = prepare_exec(plan, program, &stdio, passes, report_wr.as_raw_fd(), rings)?;
    // SAFETY: the init is single-threaded; the child only runs `apply_raw`,
    // which performs raw syscalls from the prepared plan and never allocates.
    let child = match unsafe { nix::unistd::fork() } {
        Ok(ForkResult::Child) => exec.apply_raw(),
        Ok(ForkResult::Parent { child }) => child,
        Err(e) => return Err(fail(Layer::Supervisor, "fork the command", e)),
    };
    drop(report_wr);
    drop(stdio);
    drop(passed);

    if let Some((step, errno)) = read_exec_result(&report_rd) {
        let _ = nix::sys::wait::waitpid(child, None);
        return Ok(match step {
            Step::Exec => Report::ExecFailed {
                errno: errno as i32,
            },
            _ => Report::Failed(fail(
                match step {
                    Step::Capabilities | Step::NoNewPrivs => Layer::Privileges,
                    Step::Landlock => Layer::Landlock,
                    Step::Seccomp => Layer::Seccomp,
                    _ => Layer::Exec,
                },
                step.name(),
                errno,
            )),
        });
    }
    let listener_fds: Vec<RawFd> = listeners.iter().map(AsRawFd::as_raw_fd).collect();
    wire::send(
        control.as_fd(),
        &Report::Started {
            pid: go.init_pid,
            landlock_abi,
        },
        &listener_fds,
    )
    .map_err(|e| {
        fail(
            Layer::Supervisor,
            format!("report start: {e}"),
            Errno::EPIPE,
        )
    })?;
    // The host holds them now; the init has no use for them.
    drop(listeners);

    let outcome = supervise::supervise(
        child,
        control.as_fd(),
        &sigfd,
        plan.timeout_ms.map(Duration::from_millis),
        Duration::from_millis(plan.grace_ms),
    );
    Ok(Report::Exited {
        code: outcome.code,
        signal: outcome.signal,
        timed_out: outcome.timed_out,
    })
}

/// Close every descriptor not in `keep`, then park `/dev/null` on whichever
/// of 0-2 is free, so no later descriptor (the exec report pipe, say) can land
/// on a number the command's stdio will overwrite.
fn close_all_except(keep: &mut [RawFd]) -> Result<(), Errno> {
    keep.sort_unstable();
    sys::close_fds_except(keep)?;
    let null = nix::fcntl::open(
        "/dev/null",
        nix::fcntl::OFlag::O_RDWR | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )?;
    for fd in 0..3 {
        if !keep.contains(&fd) && null.as_raw_fd() != fd {
            sys::dup2(null.as_raw_fd(), fd)?;
        }
    }
    if null.as_raw_fd() > 2 {
        drop(null);
    } else {
        std::mem::forget(null); // it now is one of 0-2 itself
    }
    Ok(())
}

/// Switch to the inside uid/gid. Capabilities in the new user namespace stay
/// (KEEPCAPS) until [`drop_privileges`]; they are needed to build the root.
fn become_inside_user(id: &Identity) -> Result<(), SetupFailure> {
    let step = |e| fail(Layer::UserNamespace, "switch to the inside uid/gid", e);
    sys::prctl(libc::PR_SET_KEEPCAPS, 1).map_err(step)?;
    let (u, g) = (Uid::from_raw(id.uid), Gid::from_raw(id.gid));
    nix::unistd::setresgid(g, g, g).map_err(step)?;
    nix::unistd::setresuid(u, u, u).map_err(step)
}

/// A nested user namespace would give the command a fresh set of capabilities
/// over new namespaces of its own. The per-namespace limit is set to 0 in the
/// sandbox's user namespace (sysctls under /proc/sys/user apply to the writer's
/// own user namespace), independently of the seccomp filter.
fn forbid_nested_user_namespaces() -> Result<(), SetupFailure> {
    std::fs::write("/proc/sys/user/max_user_namespaces", "0").map_err(|e| SetupFailure {
        layer: Layer::Namespaces,
        step: "limit nested user namespaces to 0".into(),
        errno: e.raw_os_error().unwrap_or(0),
        detail: String::new(),
    })
}

/// Everything the command inherits from the init: no capability in any set,
/// an empty bounding set, locked securebits so uid 0 inside never regains one.
fn drop_privileges() -> Result<(), SetupFailure> {
    use caps::{CapSet, Capability};
    let err = |step: &str, e: caps::errors::CapsError| SetupFailure {
        layer: Layer::Privileges,
        step: step.into(),
        errno: Errno::last() as i32,
        detail: e.to_string(),
    };
    let securebits = (1 << 0) // SECBIT_NOROOT
        | (1 << 1) // SECBIT_NOROOT_LOCKED
        | (1 << 2) // SECBIT_NO_SETUID_FIXUP
        | (1 << 3) // SECBIT_NO_SETUID_FIXUP_LOCKED
        | (1 << 5) // SECBIT_KEEP_CAPS_LOCKED
        | (1 << 6) // SECBIT_NO_CAP_AMBIENT_RAISE
        | (1 << 7); // SECBIT_NO_CAP_AMBIENT_RAISE_LOCKED
    sys::prctl(libc::PR_SET_SECUREBITS, securebits)
        .map_err(|e| fail(Layer::Privileges, "lock securebits", e))?;
    caps::clear(None, CapSet::Ambient).map_err(|e| err("clear ambient capabilities", e))?;
    for cap in caps::all() {
        if cap == Capability::CAP_SETPCAP {
            continue;
        }
        caps::drop(None, CapSet::Bounding, cap)
            .map_err(|e| err("drop bounding capabilities", e))?;
    }
    caps::drop(None, CapSet::Bounding, Capability::CAP_SETPCAP)
        .map_err(|e| err("drop bounding capabilities", e))?;
    sys::capset_zero().map_err(|e| fail(Layer::Privileges, "clear capabilities", e))?;
    // Nothing in the sandbox may read the init's memory or descriptors.
    sys::prctl(libc::PR_SET_DUMPABLE, 0)
        .map_err(|e| fail(Layer::Privileges, "set non-dumpable", e))?;
    Ok(())
}

/// Build the Landlock ruleset for the whole mount plan (`base` then the
/// plan's own mounts), plus rules for the files the command inherits.
fn prepare_landlock(
    base: &[crate::fs::plan::MountOp],
    plan: &Plan,
    stdio: &[OwnedFd],
    passed: &[OwnedFd],
) -> Result<PreparedRuleset, SetupFailure> {
    let rules = Rules::for_sandbox(base.iter().chain(&plan.mounts), &plan.landlock);
    let inherited: Vec<_> = stdio.iter().chain(passed).map(AsFd::as_fd).collect();
    let if_unsupported = if plan.landlock.required {
        IfUnsupported::Fail
    } else {
        IfUnsupported::RunWithout
    };
    PreparedRuleset::prepare_with_inherited(&rules, &inherited, if_unsupported).map_err(|e| {
        let (errno, accept) = match &e {
            LandlockError::Unsupported { errno } => (
                *errno,
                "; or accept running without Landlock (CLI --allow-no-landlock, Rust \
                 Sandbox::require_landlock(false)): the other layers still apply",
            ),
            LandlockError::OpenPath { errno, .. } => (*errno, ""),
            _ => (Errno::UnknownErrno, ""),
        };
        SetupFailure {
            layer: Layer::Landlock,
            step: "build the ruleset".into(),
            errno: errno as i32,
            detail: format!("{e}{accept}"),
        }
    })
}

/// The seccomp program from the plan's packed words; an empty program would
/// mean running unfiltered, which is refused.
fn unpack_filter(words: &[u64]) -> Result<Vec<libc::sock_filter>, SetupFailure> {
    if words.is_empty() || words.len() > usize::from(u16::MAX) {
        return Err(SetupFailure {
            layer: Layer::Seccomp,
            step: "receive the filter".into(),
            errno: libc::EINVAL,
            detail: format!("the plan carries {} instructions", words.len()),
        });
    }
    Ok(words
        .iter()
        .map(|&w| {
            let i = crate::seccomp::unpack(w);
            libc::sock_filter {
                code: i.code,
                jt: i.jt,
                jf: i.jf,
                k: i.k,
            }
        })
        .collect())
}

/// Find `argv[0]` inside the new root, like `execvp` (which would allocate in
/// the last hop).
fn resolve_program(argv0: &str, plan: &Plan) -> Result<PathBuf, Errno> {
    if argv0.contains('/') {
        return Ok(PathBuf::from(argv0));
    }
    let path = plan
        .env
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
fn move_high(fd: OwnedFd) -> Result<OwnedFd, SetupFailure> {
    let high = nix::fcntl::fcntl(
        &fd,
        nix::fcntl::FcntlArg::F_DUPFD_CLOEXEC(super::exec::HIGH_FD),
    )
    .map_err(|e| {
        let mut f = fail(Layer::Supervisor, "move descriptor", e);
        f.detail = format!("needs RLIMIT_NOFILE above {}", super::exec::HIGH_FD);
        f
    })?;
    // SAFETY: F_DUPFD_CLOEXEC returned a new descriptor owned by nobody else.
    Ok(unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(high) })
}

fn prepare_exec(
    plan: &Plan,
    program: PathBuf,
    stdio: &[OwnedFd],
    passes: Vec<(RawFd, RawFd)>,
    report_fd: RawFd,
    rings: Rings,
) -> Result<PreparedExec, SetupFailure> {
    use std::os::unix::ffi::OsStrExt;
    let path = CString::new(program.as_os_str().as_bytes()).map_err(|_| {
        fail(
            Layer::Exec,
            "program path contains a NUL byte",
            Errno::EINVAL,
        )
    })?;
    let argv = plan
        .argv
        .iter()
        .map(|a| cstring(a, "argument"))
        .collect::<Result<Vec<_>, _>>()?;
    let envp = plan
        .env
        .iter()
        .map(|(k, v)| cstring(&format!("{k}={v}"), "environment"))
        .collect::<Result<Vec<_>, _>>()?;
    let cwd = cstring(&plan.cwd, "working directory")?;
    let fds = [
        stdio[0].as_raw_fd(),
        stdio[1].as_raw_fd(),
        stdio[2].as_raw_fd(),
    ];
    Ok(PreparedExec::new(
        path, argv, envp, cwd, fds, passes, report_fd, 1, rings,
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
