//! The helper's outer half. The host starts `stockade-init` with the control
//! socket as stdin; this process (still in the host's namespaces and with the
//! caller's identity) reads the plan, clones the sandbox init into new
//! namespaces, writes its id maps, and, for a root caller, prepares the granted
//! paths as idmapped mount trees (which needs privileges only the outside has).
//! It then waits for the init and reports only if the init died without
//! reporting itself.

use std::fs;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};

use nix::errno::Errno;
use nix::sys::socket::{socketpair, AddressFamily, SockFlag, SockType};
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::Pid;
use serde::{Deserialize, Serialize};

use super::wire::{self, Identity, Opening, Plan, Report, PROTOCOL, VERSION};
use crate::error::{Layer, SetupFailure};
use crate::fs::apply::clone_tree;
use crate::fs::plan::MountOp;
use crate::sys;

/// Outer -> init, first: the id maps are written; build the base root.
#[derive(Debug, Serialize, Deserialize)]
pub struct Mapped {
    /// The identity-only part of the root.
    pub base: Vec<MountOp>,
}

/// Outer -> init, second: the plan, with the command's stdio and (root
/// callers) the prepared grant trees as descriptors.
#[derive(Debug, Serialize, Deserialize)]
pub struct Go {
    /// The init's pid on the host.
    pub init_pid: i32,
    /// What to build and run.
    pub plan: Plan,
}

/// The step that creates the namespaces (named in errors; `doctor::diagnose` explains it).
pub(crate) const CLONE_STEP: &str =
    "clone into new user, pid, mount, net, uts, ipc and cgroup namespaces";

/// The prefix of the steps writing the init's `setgroups`, `uid_map` and `gid_map`.
pub(crate) const WRITE_MAP_STEP: &str = "write ";

/// The prefix of the step idmapping a root caller's grant (named in errors).
pub(crate) const IDMAP_STEP: &str = "idmapped mount of ";

/// Exit status of the init meaning "I sent my final report myself".
pub const INIT_REPORTED: i32 = 0;

/// Entry point of the helper process. Never returns.
pub fn helper_main() -> ! {
    // SAFETY: the host starts the helper with the control socket as fd 0 and
    // nothing else owns fd 0 in this process.
    let control = unsafe { OwnedFd::from_raw_fd(0) };
    let code = match run(&control) {
        Ok(()) => 0,
        Err(f) => {
            let _ = wire::send(control.as_fd(), &Report::Failed(f), &[]);
            drain_until_closed(&control);
            1
        }
    };
    sys::exit_now(code)
}

/// Read and drop whatever the host still sends until it closes its end
/// (at most about two seconds). A failure can come before the plan was
/// read (the clone into new namespaces fails right after the opening),
/// and closing a `SOCK_SEQPACKET` socket with unread data resets the
/// connection: the host would see `ECONNRESET` instead of our report.
fn drain_until_closed(control: &OwnedFd) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        if left.is_zero() || !matches!(wire::readable(control.as_fd(), left), Ok(true)) {
            return;
        }
        match wire::recv_bytes(control.as_fd(), true) {
            Ok(Some(_)) => continue,
            Err(e) if e.raw_os_error() == Some(libc::EAGAIN) => continue,
            _ => return,
        }
    }
}

fn helper_fail(detail: impl Into<String>) -> SetupFailure {
    SetupFailure {
        layer: Layer::Helper,
        step: "read plan".into(),
        errno: 0,
        detail: detail.into(),
    }
}

#[derive(Deserialize)]
struct Versions {
    protocol: u32,
    version: String,
}

fn read_opening(control: &OwnedFd) -> Result<Option<Opening>, SetupFailure> {
    let Some((bytes, _)) =
        wire::recv_bytes(control.as_fd(), false).map_err(|e| helper_fail(e.to_string()))?
    else {
        return Ok(None);
    };
    let v: Versions = serde_json::from_slice(&bytes).map_err(|e| {
        helper_fail(format!(
            "not a stockade opening ({e}); is the control socket ours?"
        ))
    })?;
    if v.protocol != PROTOCOL || v.version != VERSION {
        return Err(helper_fail(format!(
            "version mismatch: the helper is stockade {VERSION} (protocol {PROTOCOL}) but the library is \
             stockade {} (protocol {}); install the helper that ships with the library",
            v.version, v.protocol
        )));
    }
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|e| helper_fail(format!("malformed opening: {e}")))
}

/// Opening, namespaces, then (maybe much later, for a pre-warmed helper) the
/// plan; then supervise the init until it is gone.
fn run(control: &OwnedFd) -> Result<(), SetupFailure> {
    let Some(opening) = read_opening(control)? else {
        return Ok(());
    };
    if opening.reduced {
        return super::reduced::run(control);
    }
    let (init, outer_end) = open(&opening.identity, &opening.base, control)?;
    let plan = match wire::recv::<Plan>(control.as_fd(), false) {
        Ok(Some((plan, stdio))) if plan.identity == opening.identity => (plan, stdio),
        Ok(Some(_)) => {
            return Err(abandon(
                init,
                helper_fail("the plan's identity differs from the opening's"),
            ))
        }
        Ok(None) => {
            // The host let a pre-warmed sandbox go unused: nothing to report.
            abandon(init, helper_fail("unused"));
            return Ok(());
        }
        Err(e) => return Err(abandon(init, helper_fail(format!("malformed plan: {e}")))),
    };
    hand_over(init, &outer_end, &plan.0, plan.1).map_err(|f| abandon(init, f))?;
    drop(outer_end);
    wait_for_init(init)
}

fn abandon(init: Pid, f: SetupFailure) -> SetupFailure {
    let _ = sys::kill(init.as_raw(), libc::SIGKILL);
    let _ = waitpid(init, None);
    f
}

/// Clone the sandbox init into new namespaces with `control` as its channel to
/// the host and write its id maps. Returns its pid and our end of the channel
/// to it.
///
/// Runs in a small single-threaded process: the helper, or a caller that
/// proved it is one (see `launch::launch_in_process`).
pub(crate) fn open(
    id: &Identity,
    base: &[MountOp],
    control: &OwnedFd,
) -> Result<(Pid, OwnedFd), SetupFailure> {
    let (outer_end, init_end) = socketpair(
        AddressFamily::Unix,
        SockType::SeqPacket,
        None,
        SockFlag::SOCK_CLOEXEC,
    )
    .map_err(|e| SetupFailure {
        layer: Layer::Helper,
        step: "socketpair".into(),
        errno: e as i32,
        detail: String::new(),
    })?;
    let flags = libc::CLONE_NEWUSER
        | libc::CLONE_NEWPID
        | libc::CLONE_NEWNS
        | libc::CLONE_NEWNET
        | libc::CLONE_NEWUTS
        | libc::CLONE_NEWIPC
        | libc::CLONE_NEWCGROUP;
    // SAFETY: `open` only runs in single-threaded processes (the helper never
    // starts a thread; in-process callers are checked by the launcher).
    let pid = unsafe { sys::clone_process(flags as libc::c_ulong) }.map_err(|e| SetupFailure {
        layer: Layer::UserNamespace,
        step: CLONE_STEP.into(),
        errno: e as i32,
        detail: String::new(),
    })?;
    if pid == 0 {
        drop(outer_end);
        super::init::run(id, control, init_end);
    }
    drop(init_end);
    let init = Pid::from_raw(pid);
    write_id_maps(pid, id).map_err(|f| abandon(init, f))?;
    wire::send(
        outer_end.as_fd(),
        &Mapped {
            base: base.to_vec(),
        },
        &[],
    )
    .map_err(|e| abandon(init, helper_fail(format!("hand-off: {e}"))))?;
    Ok((init, outer_end))
}

/// Give the init its plan, the command's stdio and, for a root caller, the
/// granted paths as idmapped trees.
pub(crate) fn hand_over(
    init: Pid,
    outer_end: &OwnedFd,
    plan: &Plan,
    stdio: Vec<OwnedFd>,
) -> Result<(), SetupFailure> {
    let mut stdio = stdio;
    let own = 3 + plan.pass_fds.len();
    if stdio.len() != own + plan.cgroup_procs {
        return Err(helper_fail(format!(
            "expected {} descriptors (stdio, pass-throughs and cgroup.procs files), got {}",
            own + plan.cgroup_procs,
            stdio.len()
        )));
    }
    // The init is still waiting for `Go`: it has run nothing of the plan and
    // forked nothing, so everything it starts from here on is in the cgroup.
    for procs in stdio.split_off(own) {
        join_cgroup(&procs, init.as_raw())?;
    }
    let granted = if plan.idmap_grants {
        idmapped_grants(init.as_raw(), plan)?
    } else {
        Vec::new()
    };
    let fds: Vec<_> = stdio
        .iter()
        .chain(granted.iter())
        .map(|f| f.as_raw_fd())
        .collect();
    wire::send(
        outer_end.as_fd(),
        &Go {
            init_pid: init.as_raw(),
            plan: plan.clone(),
        },
        &fds,
    )
    .map_err(|e| helper_fail(format!("hand-off to init: {e}")))
}

/// Write `pid` into an open `cgroup.procs` file (one `write(2)`).
fn join_cgroup(procs: &OwnedFd, pid: i32) -> Result<(), SetupFailure> {
    let text = pid.to_string();
    nix::unistd::write(procs, text.as_bytes())
        .map(drop)
        .map_err(|e| SetupFailure {
            layer: Layer::Cgroup,
            step: "move the sandbox init into its cgroup".into(),
            errno: e as i32,
            detail: "writing its pid to cgroup.procs failed".into(),
        })
}

/// Reap the init; an error if it died without sending its own final report.
fn wait_for_init(init: Pid) -> Result<(), SetupFailure> {
    loop {
        match waitpid(init, None) {
            Ok(WaitStatus::Exited(_, INIT_REPORTED)) => return Ok(()),
            Ok(WaitStatus::Exited(_, code)) => {
                return Err(died(format!(
                    "the sandbox init exited with status {code} without a report"
                )))
            }
            Ok(WaitStatus::Signaled(_, sig, _)) => {
                return Err(died(format!("the sandbox init was killed by {sig:?}")))
            }
            Ok(_) | Err(Errno::EINTR) => continue,
            Err(e) => return Err(died(format!("waitpid: {e}"))),
        }
    }
}

fn died(detail: String) -> SetupFailure {
    SetupFailure {
        layer: Layer::Supervisor,
        step: "supervise".into(),
        errno: 0,
        detail,
    }
}

/// The init's ids map onto exactly one host uid and gid.
fn write_id_maps(pid: i32, id: &Identity) -> Result<(), SetupFailure> {
    let write = |file: &str, contents: String| {
        fs::write(format!("/proc/{pid}/{file}"), contents).map_err(|e| SetupFailure {
            layer: Layer::UserNamespace,
            step: format!("{WRITE_MAP_STEP}{file}"),
            errno: e.raw_os_error().unwrap_or(0),
            detail: String::new(),
        })
    };
    write("setgroups", "deny".into())?;
    write("uid_map", format!("{} {} 1\n", id.uid, id.host_uid))?;
    write("gid_map", format!("{} {} 1\n", id.gid, id.host_gid))
}

/// For a root caller: the granted paths as detached trees idmapped through the
/// sandbox's user namespace.
fn idmapped_grants(pid: i32, plan: &Plan) -> Result<Vec<OwnedFd>, SetupFailure> {
    let userns = fs::File::open(format!("/proc/{pid}/ns/user")).map_err(|e| SetupFailure {
        layer: Layer::UserNamespace,
        step: "open the sandbox's user namespace".into(),
        errno: e.raw_os_error().unwrap_or(0),
        detail: String::new(),
    })?;
    let mut trees = Vec::new();
    for op in &plan.mounts {
        let src = match op {
            MountOp::Bind {
                granted: true, src, ..
            }
            | MountOp::Overlay { src, .. } => src,
            _ => continue,
        };
        let tree = clone_tree(libc::AT_FDCWD, src)?;
        // On-disk ids seen through the sandbox's map: files owned by the inside
        // uid (root's files, by default) stay owned by the inside user, and
        // what the sandbox writes is stored with that on-disk id.
        sys::mount_setattr(tree.as_fd(), true, sys::MOUNT_ATTR_IDMAP, 0, Some(userns.as_fd())).map_err(|e| {
            SetupFailure {
                layer: Layer::Filesystem,
                step: format!("{IDMAP_STEP}{}", src.display()),
                errno: e as i32,
                detail: "a root caller's grants are idmapped so the sandbox's ids can map to an unprivileged host id"
                    .into(),
            }
        })?;
        trees.push(tree);
    }
    Ok(trees)
}
