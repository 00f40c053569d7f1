//! Process descriptors: a pid that cannot be reused under our feet once
//! opened (signalling a stale pid could hit an unrelated host process), and
//! a copy of another process's descriptor (`pidfd_getfd`).

use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

use libc::{c_int, c_long, pid_t};
use nix::errno::Errno;

fn check(ret: c_long) -> Result<c_long, Errno> {
    if ret < 0 {
        Err(Errno::last())
    } else {
        Ok(ret)
    }
}

/// `pidfd_open(pid, 0)` (Linux 5.3), close-on-exec.
pub fn open(pid: pid_t) -> Result<OwnedFd, Errno> {
    // SAFETY: integer arguments; the kernel returns a new descriptor or -1.
    let fd = check(unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0 as c_int) })?;
    // SAFETY: a fresh descriptor owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

/// `pidfd_send_signal(pidfd, sig, NULL, 0)`: like `kill`, but to exactly
/// the process the descriptor was opened for.
pub fn send_signal(pidfd: BorrowedFd<'_>, sig: c_int) -> Result<(), Errno> {
    // SAFETY: a NULL siginfo is documented (the kernel fills it like kill).
    check(unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd.as_raw_fd(),
            sig,
            std::ptr::null::<libc::siginfo_t>(),
            0 as c_int,
        )
    })?;
    Ok(())
}

/// `pidfd_getfd(pidfd, fd, 0)` (Linux 5.6): a close-on-exec duplicate, in
/// this process, of descriptor `fd` of the process (same open file). Needs
/// ptrace-attach rights over it.
pub fn get_fd(pidfd: BorrowedFd<'_>, fd: c_int) -> Result<OwnedFd, Errno> {
    // SAFETY: integer arguments; the kernel returns a new descriptor or -1.
    let new =
        check(unsafe { libc::syscall(libc::SYS_pidfd_getfd, pidfd.as_raw_fd(), fd, 0 as c_int) })?;
    // SAFETY: a fresh descriptor owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(new as RawFd) })
}

/// `pidfd_open(pid, flags)`, e.g. with `PIDFD_THREAD` for a thread id.
pub fn open_flags(pid: pid_t, flags: c_int) -> Result<OwnedFd, Errno> {
    // SAFETY: integer arguments; the kernel returns a new descriptor or -1.
    let fd = check(unsafe { libc::syscall(libc::SYS_pidfd_open, pid, flags) })?;
    // SAFETY: a fresh descriptor owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}
