//! The sandbox init: PID 1 of the new pid namespace. Builds the root, drops its
//! own privileges, forks the command through the allocation-free last hop, then
//! supervises until the whole tree is gone. For a session it builds the same
//! sandbox without a command and becomes the zygote (see `zygote`).

use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::path::PathBuf;

use nix::errno::Errno;
use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::unistd::{Gid, Uid};

use super::fork::{self, fail};
use super::outer::{Go, Mapped, INIT_REPORTED};
use super::wire::{self, Identity, Report};
use super::{rings, zygote};
use crate::error::{Layer, SetupFailure};
use crate::fs::apply;
use crate::supervise;
use crate::sys;

/// Run the init. Never returns; always sends exactly one final report,
/// except for a session, whose end is the host closing the channel.
pub fn run(id: &Identity, control: &OwnedFd, sync: OwnedFd) -> ! {
    let report = match build_and_run(id, control, sync) {
        Ok(r) => r,
        Err(f) => Some(Report::Failed(f)),
    };
    if let Some(report) = report {
        let _ = wire::send(control.as_fd(), &report, &[]);
    }
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

fn build_and_run(
    id: &Identity,
    control: &OwnedFd,
    sync: OwnedFd,
) -> Result<Option<Report>, SetupFailure> {
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
    apply::apply(&mut apply::RealSys::default(), &mapped.base, &mut sources)?;
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
    let mut real = apply::RealSys::default();
    apply::apply(&mut real, &plan.mounts, &mut sources)?;
    drop(sources);
    let uppers = real.uppers;
    apply::pivot_and_seal()?;
    // Children get fresh clocks (CLONE_NEWTIME only applies to children).
    nix::sched::unshare(nix::sched::CloneFlags::from_bits_retain(
        libc::CLONE_NEWTIME,
    ))
    .map_err(|e| fail(Layer::Namespaces, "unshare time namespace", e))?;

    // The access and syscall rings, built now (paths inside the new root) so
    // the last hop only has to enforce them.
    let rules = rings::landlock_rules(&mapped.base, plan);
    // A session's commands bring their own stdio later: its shared ruleset
    // covers the plan alone (see `zygote`).
    let inherited: Vec<_> = if plan.session {
        Vec::new()
    } else {
        stdio.iter().chain(&passed).map(AsFd::as_fd).collect()
    };
    let landlock = rings::landlock_ruleset(&rules, plan.landlock.required, &inherited)?;
    drop(inherited);
    let filter = rings::unpack_filter(&plan.filter)?;

    let program = if plan.session {
        PathBuf::new()
    } else {
        match fork::resolve_program(&plan.argv[0], &plan.env) {
            Ok(p) => p,
            Err(errno) => {
                return Ok(Some(Report::ExecFailed {
                    errno: errno as i32,
                }))
            }
        }
    };
    drop_privileges()?;

    let mut mask = SigSet::empty();
    mask.add(Signal::SIGCHLD);
    mask.thread_block()
        .map_err(|e| fail(Layer::Supervisor, "block SIGCHLD", e))?;
    let sigfd = SignalFd::with_flags(&mask, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK)
        .map_err(|e| fail(Layer::Supervisor, "signalfd", e))?;
    let landlock_abi = landlock.abi();
    let landlock = landlock.map_fd(fork::move_high)?;

    let started = Started {
        init_pid: go.init_pid,
        landlock_abi,
        listeners,
        uppers,
    };
    if plan.session {
        drop((stdio, passed));
        report_started(control, started, None)?;
        let zygote = zygote::Zygote::new(
            rules,
            plan.landlock.required,
            landlock,
            filter,
            plan.notify,
            plan.nproc,
        );
        zygote.serve(control.as_fd(), &sigfd);
        return Ok(None);
    }

    let forked = match fork::fork_plan_command(plan, &program, stdio, passed, &landlock, &filter)? {
        Ok(forked) => forked,
        Err(report) => return Ok(Some(report)),
    };
    report_started(control, started, forked.listener)?;

    Ok(Some(supervise::until_exit(
        forked.pid,
        control.as_fd(),
        &sigfd,
        plan,
        supervise::Tree::Namespace,
    )))
}

/// What the start report carries besides the pid.
struct Started {
    init_pid: i32,
    landlock_abi: u32,
    /// The proxy's sockets (proxy mode).
    listeners: Vec<OwnedFd>,
    /// The overlay uppers, for the host's workspace diff.
    uppers: Vec<OwnedFd>,
}

/// Tell the host the sandbox is up. The descriptors go along (the init has
/// no use for them afterwards): proxy sockets, overlay uppers, then the
/// command's seccomp listener.
fn report_started(
    control: &OwnedFd,
    s: Started,
    syscall_listener: Option<OwnedFd>,
) -> Result<(), SetupFailure> {
    let fds: Vec<RawFd> = s
        .listeners
        .iter()
        .chain(&s.uppers)
        .chain(&syscall_listener)
        .map(AsRawFd::as_raw_fd)
        .collect();
    wire::send(
        control.as_fd(),
        &Report::Started {
            pid: s.init_pid,
            landlock_abi: s.landlock_abi,
            uppers: s.uppers.len(),
            syscall_listener: syscall_listener.is_some(),
        },
        &fds,
    )
    .map_err(|e| {
        fail(
            Layer::Supervisor,
            format!("report start: {e}"),
            Errno::EPIPE,
        )
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

/// The step that writes the nested-userns limit (named in errors).
pub(crate) const NESTED_USERNS_STEP: &str = "limit nested user namespaces to 0";

/// A nested user namespace would give the command a fresh set of capabilities
/// over new namespaces of its own. The per-namespace limit is set to 0 in the
/// sandbox's user namespace (sysctls under /proc/sys/user apply to the writer's
/// own user namespace), independently of the seccomp filter.
fn forbid_nested_user_namespaces() -> Result<(), SetupFailure> {
    std::fs::write("/proc/sys/user/max_user_namespaces", "0").map_err(|e| SetupFailure {
        layer: Layer::Namespaces,
        step: NESTED_USERNS_STEP.into(),
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
