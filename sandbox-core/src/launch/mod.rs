//! Process creation. The host never forks itself: it `posix_spawn`s the small,
//! single-threaded `stockade-init` helper (cost independent of the host's size)
//! and hands it the plan over a socketpair.
//!
//! ```text
//! host --posix_spawn--> helper (outer) --clone(new namespaces)--> init (PID 1)
//!                                                                  --fork--> last hop --execve--> command
//! ```
//!
//! A session's init builds the same sandbox without a command and stays as
//! its zygote, forking each command on request (`zygote`).

mod background;
pub(crate) mod exec;
mod fork;
pub(crate) mod helper;
pub(crate) mod init;
pub(crate) mod outer;
pub(crate) mod prewarm;
mod reaper;
pub(crate) mod reduced;
mod rings;
pub(crate) mod wire;
mod zygote;

pub(crate) use fork::Forked;
pub(crate) use reaper::Keeper;

use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::Path;
use std::process::Command;

use nix::sys::socket::{socketpair, AddressFamily, SockFlag, SockType};

use crate::error::{Error, Layer, SetupFailure};
use wire::{Identity, Opening, Plan, Report, PROTOCOL, VERSION};

/// A started sandbox: the control socket and the process to reap at the end.
pub(crate) struct Launched {
    pub control: OwnedFd,
    pub keeper: Keeper,
    pub init_pid: u32,
    pub landlock_abi: u32,
    /// The proxy's listening sockets (proxy mode only), see
    /// [`crate::proxy::listen::ORDER`].
    pub listeners: Vec<OwnedFd>,
    /// The overlay upper directories, in plan order.
    pub uppers: Vec<OwnedFd>,
    /// The command's seccomp listener ([`Plan::notify`]; not for sessions,
    /// whose commands bring their own).
    pub syscall_listener: Option<OwnedFd>,
    /// The sandbox's cgroup (limits set), removed when its owner drops it.
    pub cgroup: Option<crate::cgroup::SandboxCgroup>,
    /// What enforces the limits (set with `cgroup`).
    pub limits_level: crate::LimitsLevel,
}

/// Start the sandbox for `plan` with a pre-warmed helper if one is ready for
/// this identity, else a fresh one, and wait until the command has been
/// exec'd (or setup failed).
/// `fds`: the command's stdin, stdout, stderr, then the pass-throughs.
pub(crate) fn launch(plan: &Plan, helper: &Path, fds: Vec<OwnedFd>) -> Result<Launched, Error> {
    let raw: Vec<_> = fds.iter().map(|f| f.as_raw_fd()).collect();
    if let Some(warm) = prewarm::take(helper, &plan.identity) {
        prewarm::refill_soon();
        if wire::send(warm.host_end.as_fd(), plan, &raw).is_ok() {
            drop(fds);
            return await_start(
                plan,
                warm.host_end,
                Keeper::Helper(warm.child),
                &helper.display().to_string(),
            );
        }
        // That helper died while waiting; forget it and start cold.
        Keeper::Helper(warm.child).reap_soon();
    }
    let (child, host_end) = start_helper(helper, &plan.identity, plan.base.clone())?;
    if let Err(e) = wire::send(host_end.as_fd(), plan, &raw) {
        let _ = Keeper::Helper(child).wait();
        return Err(Error::Helper(format!(
            "{} did not accept the plan: {e}",
            helper.display()
        )));
    }
    drop(fds);
    await_start(
        plan,
        host_end,
        Keeper::Helper(child),
        &helper.display().to_string(),
    )
}

/// `posix_spawn` the helper with a fresh control socket as its stdin and send
/// the opening: it creates the namespaces and then waits for the plan.
pub(crate) fn start_helper(
    helper: &Path,
    identity: &Identity,
    base: Vec<crate::fs::plan::MountOp>,
) -> Result<(std::process::Child, OwnedFd), Error> {
    let opening = Opening {
        protocol: PROTOCOL,
        version: VERSION.into(),
        identity: identity.clone(),
        base,
        reduced: false,
    };
    spawn_helper(helper, &opening)
}

/// Start a reduced-mode sandbox (`crate::reduced`): a fresh helper that
/// creates no namespaces and supervises the command as a child subreaper.
/// `tmp` (the command's temp dir) lives until that helper is reaped.
pub(crate) fn launch_reduced(
    plan: &Plan,
    helper: &Path,
    fds: Vec<OwnedFd>,
    tmp: crate::reduced::tmp::PrivateTmp,
) -> Result<Launched, Error> {
    let raw: Vec<_> = fds.iter().map(|f| f.as_raw_fd()).collect();
    let opening = Opening {
        protocol: PROTOCOL,
        version: VERSION.into(),
        identity: plan.identity.clone(),
        base: Vec::new(),
        reduced: true,
    };
    let (child, host_end) = spawn_helper(helper, &opening)?;
    let keeper = Keeper::Reduced(child, Some(tmp));
    if let Err(e) = wire::send(host_end.as_fd(), plan, &raw) {
        drop(host_end);
        let _ = keeper.wait();
        return Err(Error::Helper(format!(
            "{} did not accept the plan: {e}",
            helper.display()
        )));
    }
    drop(fds);
    await_start(plan, host_end, keeper, &helper.display().to_string())
}

/// `posix_spawn` the helper with a fresh control socket as its stdin and
/// send it `opening`.
fn spawn_helper(helper: &Path, opening: &Opening) -> Result<(std::process::Child, OwnedFd), Error> {
    use std::os::unix::process::CommandExt;
    let (host_end, helper_end) = socketpair(
        AddressFamily::Unix,
        SockType::SeqPacket,
        None,
        SockFlag::SOCK_CLOEXEC,
    )
    .map_err(|e| Error::Helper(format!("socketpair: {e}")))?;
    let debug = std::env::var_os("STOCKADE_DEBUG").is_some();
    let mut cmd = Command::new(helper);
    cmd.arg0("stockade-init")
        .arg(helper::HELPER_ARG)
        .env_clear()
        .stdin(std::process::Stdio::from(helper_end))
        .stdout(std::process::Stdio::null())
        .stderr(if debug {
            std::process::Stdio::inherit()
        } else {
            std::process::Stdio::null()
        });
    let mut child = cmd
        .spawn()
        .map_err(|e| Error::Helper(format!("cannot start {}: {e}", helper.display())))?;
    // Drop the helper's end in the host now (the Command still holds it).
    drop(cmd);
    if let Err(e) = wire::send(host_end.as_fd(), opening, &[]) {
        let _ = child.kill();
        let _ = child.wait();
        return Err(Error::Helper(format!(
            "{} did not accept the opening: {e}",
            helper.display()
        )));
    }
    Ok((child, host_end))
}

/// Do the helper's outer half in this process instead of starting a helper:
/// one exec fewer. Only for small single-threaded programs such as the
/// `stockade` CLI (the same binary as the helper); anything with a second
/// thread gets the helper, because cloning a threaded process is unsafe.
/// The caller must have checked [`single_threaded`] just before.
pub(crate) fn launch_in_process(plan: &Plan, fds: Vec<OwnedFd>) -> Result<Launched, Error> {
    let (host_end, init_end) = socketpair(
        AddressFamily::Unix,
        SockType::SeqPacket,
        None,
        SockFlag::SOCK_CLOEXEC,
    )
    .map_err(|e| Error::Helper(format!("socketpair: {e}")))?;
    let (init, outer_end) =
        outer::open(&plan.identity, &plan.base, &init_end).map_err(Error::Setup)?;
    drop(init_end);
    if let Err(f) = outer::hand_over(init, &outer_end, plan, fds) {
        drop(outer_end);
        let _ = Keeper::Init(init).wait();
        // An init that failed before the hand-off reported why; the broken
        // hand-off is only the effect (the helper's host sees that report first).
        if let Ok(Some((Report::Failed(own), _))) = wire::recv::<Report>(host_end.as_fd(), true) {
            return Err(Error::Setup(own));
        }
        return Err(Error::Setup(f));
    }
    drop(outer_end);
    await_start(plan, host_end, Keeper::Init(init), "the sandbox init")
}

/// The identity-only part of the root, for this host.
pub(crate) fn base_root(id: &Identity) -> Vec<crate::fs::plan::MountOp> {
    crate::fs::plan::base(id.uid, id.gid, &crate::fs::plan::RealHost)
}

/// Whether this process has exactly one thread.
pub(crate) fn single_threaded() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .map(|s| {
            s.lines()
                .any(|l| l.split_whitespace().eq(["Threads:", "1"]))
        })
        .unwrap_or(false)
}

/// Wait for the init's first report: started (the command has exec'd, or
/// a session's sandbox is ready), or why not.
fn await_start(
    plan: &Plan,
    host_end: OwnedFd,
    keeper: Keeper,
    what: &str,
) -> Result<Launched, Error> {
    match first_report(&host_end) {
        Ok(Some((
            Report::Started {
                pid,
                landlock_abi,
                uppers,
                syscall_listener,
            },
            mut fds,
        ))) if fds.len() == proxy_sockets(plan) + uppers + usize::from(syscall_listener) => {
            let syscall_listener = if syscall_listener { fds.pop() } else { None };
            let uppers = fds.split_off(fds.len() - uppers);
            Ok(Launched {
                control: host_end,
                keeper,
                init_pid: pid as u32,
                landlock_abi,
                listeners: fds,
                uppers,
                syscall_listener,
                cgroup: None,
                limits_level: crate::LimitsLevel::None,
            })
        }
        other => {
            drop(host_end);
            let status = keeper.wait();
            Err(match other {
                Ok(Some((Report::Failed(f), _))) => Error::Setup(f),
                Ok(Some((Report::ExecFailed { errno }, _))) => {
                    exec_error(plan.argv.first().map_or("", String::as_str), errno)
                }
                Ok(Some((_, _))) => unreachable_report(),
                Ok(None) => Error::Helper(format!(
                    "{what} exited without reporting ({status}); is it a stockade-init helper of this version?"
                )),
                Err(e) => Error::Helper(format!("reading the helper's report: {e} ({status})")),
            })
        }
    }
}

/// The init's or the helper's first report. A helper that fails before it
/// reads the plan exits with the plan unread, and the kernel then reports
/// ECONNRESET once, ahead of the report the helper queued before exiting:
/// read again past it.
fn first_report(host_end: &OwnedFd) -> std::io::Result<Option<(Report, Vec<OwnedFd>)>> {
    match wire::recv::<Report>(host_end.as_fd(), false) {
        Err(e) if e.raw_os_error() == Some(libc::ECONNRESET) => {
            wire::recv::<Report>(host_end.as_fd(), true)
        }
        other => other,
    }
}

/// How many proxy sockets come with the start report.
fn proxy_sockets(plan: &Plan) -> usize {
    if plan.proxy_listeners {
        crate::proxy::listen::ORDER.len()
    } else {
        0
    }
}

fn unreachable_report() -> Error {
    Error::Setup(SetupFailure {
        layer: Layer::Supervisor,
        step: "start".into(),
        errno: 0,
        detail:
            "the helper's first report was not a start report with the descriptors it announced"
                .into(),
    })
}

/// 127 for "not found", 126 for everything else that stops `execve`.
pub(crate) fn exec_error(program: &str, errno: i32) -> Error {
    let e = nix::errno::Errno::from_raw(errno);
    if e == nix::errno::Errno::ENOENT {
        Error::NotFound(program.to_string())
    } else {
        Error::NotExecutable {
            program: program.to_string(),
            reason: format!("{e:?} ({})", e.desc()),
        }
    }
}
