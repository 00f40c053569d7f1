//! The helper as a reduced-mode supervisor (`crate::reduced`): no
//! namespaces, no mounts. The host started it (`launch::launch_reduced`)
//! and it stays in the host's namespaces as the command's parent and a
//! child subreaper, so every process the command starts remains below it
//! (`supervise::descendants`).
//!
//! ```text
//! host --posix_spawn--> helper (supervisor, subreaper) --fork--> last hop --execve--> command
//! ```
//!
//! It builds the same rings as a sandbox init (a Landlock ruleset, here at
//! host paths; the compiled seccomp program) and forks the command through
//! the same allocation-free last hop ([`super::exec::PreparedExec`]); then it
//! supervises like PID 1 would, with its descendants as "everything".

use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};

use nix::errno::Errno;
use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::unistd::{Gid, Uid};

use super::fork::{self, fail};
use super::wire::{self, Plan, Report};
use super::{rings, Forked};
use crate::error::{Layer, SetupFailure};
use crate::supervise;
use crate::sys;

/// Serve one reduced-mode sandbox on `control` (after the opening): read
/// the plan, start the command, supervise it, report. `Err`: nothing ran
/// (the caller reports it).
pub(crate) fn run(control: &OwnedFd) -> Result<(), SetupFailure> {
    let (plan, fds) = match wire::recv::<Plan>(control.as_fd(), false) {
        Ok(Some(m)) => m,
        Ok(None) => return Ok(()),
        Err(e) => return Err(helper_fail(format!("malformed plan: {e}"))),
    };
    if let Some(report) = start_and_supervise(&plan, fds, control)? {
        let _ = wire::send(control.as_fd(), &report, &[]);
    }
    Ok(())
}

fn helper_fail(detail: impl Into<String>) -> SetupFailure {
    SetupFailure {
        layer: Layer::Helper,
        step: "read plan".into(),
        errno: 0,
        detail: detail.into(),
    }
}

fn start_and_supervise(
    plan: &Plan,
    mut fds: Vec<OwnedFd>,
    control: &OwnedFd,
) -> Result<Option<Report>, SetupFailure> {
    let Some(reduced) = &plan.reduced else {
        return Err(helper_fail(
            "a reduced-mode helper got a plan without reduced mode",
        ));
    };
    if plan.session {
        return Err(helper_fail("sessions need the full mode"));
    }
    sys::set_process_title(c"stockade-init");
    // Every orphan of the command's tree comes back to us, never to the
    // host's init: "the sandbox" is our descendants, for good.
    sys::prctl(libc::PR_SET_CHILD_SUBREAPER, 1)
        .map_err(|e| fail(Layer::Supervisor, "become a child subreaper", e))?;

    let npass = plan.pass_fds.len();
    if fds.len() != 3 + npass + plan.cgroup_procs {
        return Err(fail(
            Layer::Helper,
            "receive the command's stdio, pass-throughs and cgroup.procs files",
            Errno::EBADF,
        ));
    }
    // Into the cgroup before anything is forked, so everything is in it.
    for procs in fds.split_off(3 + npass) {
        let pid = nix::unistd::getpid().as_raw().to_string();
        nix::unistd::write(&procs, pid.as_bytes())
            .map_err(|e| fail(Layer::Cgroup, "move the supervisor into its cgroup", e))?;
    }
    let passed = fds.split_off(3);
    let stdio = fds;

    // Rule paths are host paths, opened now (as the caller) for the ruleset.
    let inherited: Vec<_> = stdio.iter().chain(&passed).map(AsFd::as_fd).collect();
    let landlock = rings::landlock_ruleset(&reduced.rules, true, &inherited)?;
    drop(inherited);
    if landlock.abi() < crate::reduced::MIN_LANDLOCK_ABI {
        return Err(SetupFailure {
            layer: Layer::Landlock,
            step: "check the Landlock ABI for reduced mode".into(),
            errno: libc::EOPNOTSUPP,
            detail: format!(
                "reduced mode needs Landlock ABI {} (Linux 6.12+) for signal and abstract-socket \
                 scoping; this kernel has {}",
                crate::reduced::MIN_LANDLOCK_ABI,
                landlock.abi()
            ),
        });
    }
    let filter = rings::unpack_filter(&plan.filter)?;
    let program = match fork::resolve_program(&plan.argv[0], &plan.env) {
        Ok(p) => p,
        Err(errno) => {
            return Ok(Some(Report::ExecFailed {
                errno: errno as i32,
            }))
        }
    };
    become_sandbox_user(plan)?;

    let mut mask = SigSet::empty();
    mask.add(Signal::SIGCHLD);
    mask.thread_block()
        .map_err(|e| fail(Layer::Supervisor, "block SIGCHLD", e))?;
    let sigfd = SignalFd::with_flags(&mask, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK)
        .map_err(|e| fail(Layer::Supervisor, "signalfd", e))?;
    let landlock_abi = landlock.abi();
    let landlock = landlock.map_fd(fork::move_high)?;

    let forked = match fork::fork_plan_command(plan, &program, stdio, passed, &landlock, &filter)? {
        Ok(forked) => forked,
        Err(report) => return Ok(Some(report)),
    };
    report_started(control, landlock_abi, &forked)?;
    drop(forked.listener);

    Ok(Some(supervise::until_exit(
        forked.pid,
        control.as_fd(),
        &sigfd,
        plan,
        supervise::Tree::Descendants,
    )))
}

/// Tell the host the command runs: our own (host) pid, the Landlock ABI,
/// and the command's seccomp listener (the connect gate needs it).
fn report_started(
    control: &OwnedFd,
    landlock_abi: u32,
    forked: &Forked,
) -> Result<(), SetupFailure> {
    let fds: Vec<RawFd> = forked.listener.iter().map(AsRawFd::as_raw_fd).collect();
    wire::send(
        control.as_fd(),
        &Report::Started {
            pid: nix::unistd::getpid().as_raw(),
            landlock_abi,
            uppers: 0,
            syscall_listener: forked.listener.is_some(),
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

/// Become the id the command runs as, with nothing to regain.
///
/// A root caller's command runs as its unprivileged host id
/// ([`wire::Identity::host_uid`], `root_host_id`, like the full mode's
/// outside id): supplementary groups gone, bounding and ambient sets
/// emptied and root's special treatment locked off while we still may,
/// then `setresuid`, which clears the rest. An unprivileged caller has no
/// capability to drop (its bounding set cannot be emptied without
/// `CAP_SETPCAP`; `no_new_privs` in the last hop keeps it inert). Either
/// way the supervisor is then non-dumpable: the command (same uid) cannot
/// read its memory or descriptors.
fn become_sandbox_user(plan: &Plan) -> Result<(), SetupFailure> {
    use caps::{CapSet, Capability};
    let id = &plan.identity;
    if nix::unistd::geteuid().is_root() {
        let step = |s: &'static str| move |e| fail(Layer::Privileges, s, e);
        nix::unistd::setgroups(&[]).map_err(step("drop supplementary groups"))?;
        let g = Gid::from_raw(id.host_gid);
        nix::unistd::setresgid(g, g, g).map_err(step("switch to the sandbox's host gid"))?;
        let securebits = (1 << 0) // SECBIT_NOROOT
            | (1 << 1) // SECBIT_NOROOT_LOCKED
            | (1 << 3) // SECBIT_NO_SETUID_FIXUP_LOCKED (fixup stays on: setuid clears caps)
            | (1 << 5) // SECBIT_KEEP_CAPS_LOCKED (keep-caps stays off)
            | (1 << 6) // SECBIT_NO_CAP_AMBIENT_RAISE
            | (1 << 7); // SECBIT_NO_CAP_AMBIENT_RAISE_LOCKED
        sys::prctl(libc::PR_SET_SECUREBITS, securebits).map_err(step("lock securebits"))?;
        let err = |what: &str, e: caps::errors::CapsError| SetupFailure {
            layer: Layer::Privileges,
            step: what.into(),
            errno: Errno::last() as i32,
            detail: e.to_string(),
        };
        caps::clear(None, CapSet::Ambient).map_err(|e| err("clear ambient capabilities", e))?;
        for cap in caps::all() {
            if cap != Capability::CAP_SETPCAP && cap != Capability::CAP_SETUID {
                caps::drop(None, CapSet::Bounding, cap)
                    .map_err(|e| err("drop bounding capabilities", e))?;
            }
        }
        for cap in [Capability::CAP_SETUID, Capability::CAP_SETPCAP] {
            caps::drop(None, CapSet::Bounding, cap)
                .map_err(|e| err("drop bounding capabilities", e))?;
        }
        let u = Uid::from_raw(id.host_uid);
        nix::unistd::setresuid(u, u, u).map_err(step("switch to the sandbox's host uid"))?;
    }
    sys::capset_zero().map_err(|e| fail(Layer::Privileges, "clear capabilities", e))?;
    sys::prctl(libc::PR_SET_DUMPABLE, 0)
        .map_err(|e| fail(Layer::Privileges, "set non-dumpable", e))?;
    Ok(())
}
