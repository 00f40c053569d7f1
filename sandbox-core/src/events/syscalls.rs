//! Refused syscalls, answered and recorded by the host.
//!
//! A sandbox's filter comes in two compiled forms ([`crate::seccomp::Denials`]):
//! the errno program, which refuses in the kernel, and the notify program,
//! identical except that its refusals return `SECCOMP_RET_USER_NOTIF`. The
//! command runs under the notify program; its last hop hands the filter's
//! listener to the init, which passes it to the host with the start report.
//! Here one thread per host process waits on every listener (`epoll`), and
//! for each refusal:
//!
//! 1. reads the `seccomp_data` (number, arch, argument registers; nothing is
//!    read from the sandbox's memory, so there is no check-then-use race);
//! 2. runs the errno program on it ([`crate::seccomp::bpf_interp`]) to get
//!    the errno the kernel would have given, and records the event;
//! 3. answers with that errno. It never answers "continue": a refused
//!    syscall cannot be let through from here, whatever goes wrong.
//!
//! Allowed syscalls never leave the kernel (the same instructions decide
//! them). If the host stops answering, refused syscalls wait; if it goes
//! away (the listener closes), they fail with `ENOSYS`: still refused.

use std::collections::{BTreeMap, HashMap};
use std::os::fd::{AsFd, OwnedFd};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use nix::errno::Errno;
use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags, EpollTimeout};

use super::{EventKind, Log};
use crate::seccomp::bpf_interp::{self, SeccompData};
use crate::seccomp::BpfProgram;
use crate::sys;

/// One listener: whose refusals they are and how to answer them.
struct Watched {
    listener: OwnedFd,
    /// The errno program: the reference for every answer.
    answers: Arc<BpfProgram>,
    log: Arc<Log>,
    command: Option<u64>,
    /// Reduced mode: `connect` notifications go to this gate.
    gate: Option<Arc<crate::reduced::gate::Gate>>,
}

/// The process-wide thread and its `epoll` set.
struct Supervisor {
    epoll: Epoll,
    watched: Mutex<HashMap<u64, Arc<Watched>>>,
    next: AtomicU64,
}

/// Answer and record the refusals of `listener` until every process under
/// its filter has ended. `answers` is the errno form of the filter.
pub(crate) fn watch(
    listener: OwnedFd,
    answers: Arc<BpfProgram>,
    log: Arc<Log>,
    command: Option<u64>,
) -> std::io::Result<()> {
    watch_gated(listener, answers, log, command, None)
}

/// [`watch`], with reduced mode's `connect` notifications decided by `gate`
/// (see `crate::reduced::gate`; without a gate they are refused).
pub(crate) fn watch_gated(
    listener: OwnedFd,
    answers: Arc<BpfProgram>,
    log: Arc<Log>,
    command: Option<u64>,
    gate: Option<Arc<crate::reduced::gate::Gate>>,
) -> std::io::Result<()> {
    let sup = supervisor()?;
    // Best effort: a faster answer on kernels that have it.
    let _ = sys::notif_sync_wake_up(listener.as_fd());
    let token = sup.next.fetch_add(1, Ordering::Relaxed);
    let w = Arc::new(Watched {
        listener,
        answers,
        log,
        command,
        gate,
    });
    let event = EpollEvent::new(EpollFlags::EPOLLIN, token);
    sup.watched
        .lock()
        .map_err(|_| std::io::Error::other("syscall supervisor poisoned"))?
        .insert(token, w.clone());
    if let Err(e) = sup.epoll.add(w.listener.as_fd(), event) {
        if let Ok(mut m) = sup.watched.lock() {
            m.remove(&token);
        }
        return Err(e.into());
    }
    Ok(())
}

fn supervisor() -> std::io::Result<&'static Supervisor> {
    static SUP: OnceLock<Result<&'static Supervisor, Errno>> = OnceLock::new();
    let sup = SUP.get_or_init(|| {
        let sup: &'static Supervisor = Box::leak(Box::new(Supervisor {
            epoll: Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC)?,
            watched: Mutex::new(HashMap::new()),
            next: AtomicU64::new(1),
        }));
        std::thread::Builder::new()
            .name("stockade-syscalls".into())
            .spawn(move || serve(sup))
            .map_err(|e| Errno::from_raw(e.raw_os_error().unwrap_or(libc::EAGAIN)))?;
        Ok(sup)
    });
    sup.map_err(std::io::Error::from)
}

fn serve(sup: &'static Supervisor) -> ! {
    let mut ready = [EpollEvent::empty(); 64];
    loop {
        let n = match sup.epoll.wait(&mut ready, EpollTimeout::NONE) {
            Ok(n) => n,
            Err(_) => continue, // EINTR
        };
        for ev in &ready[..n] {
            let token = ev.data();
            let Some(w) = sup.watched.lock().ok().and_then(|m| m.get(&token).cloned()) else {
                continue;
            };
            let flags = ev.events();
            if flags.contains(EpollFlags::EPOLLIN) {
                answer_one(&w);
            } else if flags.intersects(EpollFlags::EPOLLHUP | EpollFlags::EPOLLERR) {
                // No process is under this filter any more.
                let _ = sup.epoll.delete(w.listener.as_fd());
                if let Ok(mut m) = sup.watched.lock() {
                    m.remove(&token);
                }
            }
        }
    }
}

/// Receive one refusal, record it, answer it.
fn answer_one(w: &Watched) {
    let notif = match sys::notif_recv(w.listener.as_fd()) {
        Ok(n) => n,
        // ENOENT: the caller died or was interrupted before we got it.
        Err(_) => return,
    };
    if i64::from(notif.data.nr) == libc::SYS_connect
        && notif.data.arch == crate::seccomp::AUDIT_ARCH_X86_64
    {
        if let Some(gate) = &w.gate {
            gate.answer(&w.listener, &notif, &w.log, w.command);
            return;
        }
    }
    let data = SeccompData {
        nr: notif.data.nr,
        arch: notif.data.arch,
        instruction_pointer: notif.data.instruction_pointer,
        args: notif.data.args,
    };
    let errno = errno_for(&w.answers, &data);
    let nr = i64::from(notif.data.nr);
    // Recorded before the answer: once the caller runs on, its event exists.
    w.log.push(
        w.command,
        EventKind::SyscallDenied {
            syscall: syscall_name(nr),
            nr,
            args: notif.data.args,
            pid: notif.pid,
            errno,
            errno_name: format!("{:?}", Errno::from_raw(errno)),
        },
    );
    let _ = sys::notif_refuse(w.listener.as_fd(), notif.id, errno);
}

/// The errno the errno program gives for `data`; `EPERM` if it would not
/// refuse (the two programs disagreeing is a bug: refuse anyway).
fn errno_for(answers: &BpfProgram, data: &SeccompData) -> i32 {
    match bpf_interp::run(answers, data) {
        Ok(action) if action & libc::SECCOMP_RET_ACTION_FULL == libc::SECCOMP_RET_ERRNO => {
            (action & libc::SECCOMP_RET_DATA) as i32
        }
        _ => libc::EPERM,
    }
}

/// The table's name of syscall `nr`.
fn syscall_name(nr: i64) -> String {
    static NAMES: OnceLock<BTreeMap<i64, &'static str>> = OnceLock::new();
    let names = NAMES.get_or_init(|| crate::seccomp::known().map(|(n, nr)| (nr, n)).collect());
    names
        .get(&nr)
        .map_or_else(|| format!("syscall_{nr}"), |n| (*n).to_string())
}

/// Whether the notify program can be used with `answers` (the errno form of
/// the same policy): the kernel has user notification, and the last hop's
/// steps after attaching the filter (`sendmsg` of the listener, `execve`,
/// or the failure record's `write` and `exit_group`) are allowed. A refusal
/// there would wait for a listener nobody reads yet. `Err` says why not.
pub(crate) fn usable(answers: &BpfProgram) -> Result<(), String> {
    static KERNEL: OnceLock<bool> = OnceLock::new();
    if !*KERNEL.get_or_init(sys::seccomp_user_notif_available) {
        return Err(
            "refused syscalls are not recorded: this kernel lacks seccomp user notification (Linux 5.0+); they are still refused"
                .into(),
        );
    }
    let last_hop = [
        libc::SYS_sendmsg,
        libc::SYS_execve,
        libc::SYS_write,
        libc::SYS_exit_group,
    ];
    for nr in last_hop {
        let data = SeccompData {
            nr: nr as i32,
            arch: crate::seccomp::AUDIT_ARCH_X86_64,
            instruction_pointer: 0,
            args: [crate::launch::exec::HIGH_FD as u64, 0, 0, 0, 0, 0],
        };
        if bpf_interp::run(answers, &data) != Ok(libc::SECCOMP_RET_ALLOW) {
            return Err(format!(
                "refused syscalls are not recorded: the policy denies {}, which the sandbox needs to hand the record over; they are still refused",
                syscall_name(nr)
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::seccomp::{compile, Policy};

    #[test]
    fn answers_are_the_errno_programs() {
        let prog = compile(&Policy::default()).unwrap();
        let at = |nr: i64, args: [u64; 6]| SeccompData {
            nr: nr as i32,
            arch: crate::seccomp::AUDIT_ARCH_X86_64,
            instruction_pointer: 0,
            args,
        };
        assert_eq!(errno_for(&prog, &at(libc::SYS_mount, [0; 6])), libc::EPERM);
        assert_eq!(errno_for(&prog, &at(1000, [0; 6])), libc::ENOSYS);
        let raw = [libc::AF_INET as u64, libc::SOCK_RAW as u64, 0, 0, 0, 0];
        assert_eq!(errno_for(&prog, &at(libc::SYS_socket, raw)), libc::EPERM);
        let packet = [libc::AF_PACKET as u64, libc::SOCK_RAW as u64, 0, 0, 0, 0];
        assert_eq!(
            errno_for(&prog, &at(libc::SYS_socket, packet)),
            libc::EAFNOSUPPORT
        );
        // Disagreement (an allowed call reaching the host) is still refused.
        assert_eq!(errno_for(&prog, &at(libc::SYS_getpid, [0; 6])), libc::EPERM);
        assert_eq!(syscall_name(libc::SYS_mount), "mount");
        assert_eq!(syscall_name(1000), "syscall_1000");
    }

    #[test]
    fn notify_needs_the_last_hop_allowed() {
        let ok = compile(&Policy::default()).unwrap();
        assert_eq!(usable(&ok), Ok(()));
        let no_sendmsg = compile(&Policy::default().deny(["sendmsg"])).unwrap();
        let why = usable(&no_sendmsg).unwrap_err();
        assert!(why.contains("denies sendmsg"), "{why}");
    }
}
