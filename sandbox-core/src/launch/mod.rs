//! Process creation. The host never forks itself: it `posix_spawn`s the small,
//! single-threaded `stockade-init` helper (cost independent of the host's size)
//! and hands it the plan over a socketpair.
//!
//! ```text
//! host --posix_spawn--> helper (outer) --clone(new namespaces)--> init (PID 1)
//!                                                                  --fork--> last hop --execve--> command
//! ```

pub(crate) mod exec;
pub(crate) mod helper;
pub(crate) mod init;
pub(crate) mod outer;
pub(crate) mod wire;

use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::process::Command;

use nix::sys::socket::{socketpair, AddressFamily, SockFlag, SockType};

use crate::error::{Error, Layer, SetupFailure};
use wire::{Plan, Report};

/// A started sandbox: the control socket and the helper process.
pub(crate) struct Launched {
    pub control: OwnedFd,
    pub helper: std::process::Child,
    pub init_pid: u32,
}

/// Start the helper, send the plan and the command's stdio, and wait until the
/// command has been exec'd (or setup failed).
pub(crate) fn launch(plan: &Plan, helper: &std::path::Path, stdio: [OwnedFd; 3]) -> Result<Launched, Error> {
    use std::os::unix::process::CommandExt;
    let (host_end, helper_end) = socketpair(AddressFamily::Unix, SockType::SeqPacket, None, SockFlag::SOCK_CLOEXEC)
        .map_err(|e| Error::Helper(format!("socketpair: {e}")))?;
    let debug = std::env::var_os("STOCKADE_DEBUG").is_some();
    let mut cmd = Command::new(helper);
    cmd.arg0("stockade-init")
        .arg(helper::HELPER_ARG)
        .env_clear()
        .stdin(std::process::Stdio::from(helper_end))
        .stdout(std::process::Stdio::null())
        .stderr(if debug { std::process::Stdio::inherit() } else { std::process::Stdio::null() });
    let mut child = cmd
        .spawn()
        .map_err(|e| Error::Helper(format!("cannot start {}: {e}", helper.display())))?;
    // Drop the helper's end in the host now (the Command still holds it).
    drop(cmd);

    let raw = [stdio[0].as_raw_fd(), stdio[1].as_raw_fd(), stdio[2].as_raw_fd()];
    if let Err(e) = wire::send(host_end.as_fd(), plan, &raw) {
        let _ = child.kill();
        let _ = child.wait();
        return Err(Error::Helper(format!("{} did not accept the plan: {e}", helper.display())));
    }
    drop(stdio);

    match wire::recv::<Report>(host_end.as_fd(), false) {
        Ok(Some((Report::Started { pid }, _))) => {
            Ok(Launched { control: host_end, helper: child, init_pid: pid as u32 })
        }
        other => {
            drop(host_end);
            let status = child.wait();
            Err(match other {
                Ok(Some((Report::Failed(f), _))) => Error::Setup(f),
                Ok(Some((Report::ExecFailed { errno }, _))) => exec_error(&plan.argv[0], errno),
                Ok(Some((Report::Exited { .. } | Report::Started { .. }, _))) => unreachable_report(),
                Ok(None) => Error::Helper(format!(
                    "{} exited without reporting ({}); it is probably not a stockade-init helper",
                    helper.display(),
                    status.map(|s| s.to_string()).unwrap_or_else(|e| e.to_string())
                )),
                Err(e) => Error::Helper(format!("reading the helper's report: {e}")),
            })
        }
    }
}

fn unreachable_report() -> Error {
    Error::Setup(SetupFailure {
        layer: Layer::Supervisor,
        step: "start".into(),
        errno: 0,
        detail: "the helper reported an exit before the start".into(),
    })
}

/// 127 for "not found", 126 for everything else that stops `execve`.
pub(crate) fn exec_error(program: &str, errno: i32) -> Error {
    let e = nix::errno::Errno::from_raw(errno);
    if e == nix::errno::Errno::ENOENT {
        Error::NotFound(program.to_string())
    } else {
        Error::NotExecutable { program: program.to_string(), reason: format!("{e:?} ({})", e.desc()) }
    }
}
