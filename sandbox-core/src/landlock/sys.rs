//! The two raw Landlock syscalls this layer makes itself: the ABI version
//! query and `landlock_restrict_self`. No allocation, no locks, errors as
//! `Errno`, so [`restrict_self`] is safe to call in a forked child.

use std::os::fd::RawFd;

use nix::errno::Errno;

/// `LANDLOCK_CREATE_RULESET_VERSION` (uapi `linux/landlock.h`).
const CREATE_RULESET_VERSION: libc::c_uint = 1 << 0;

/// The kernel's Landlock ABI version (1, 2, ...), or why there is none:
/// `ENOSYS` (not built), `EOPNOTSUPP` (not enabled at boot), `EPERM` (blocked
/// by a seccomp filter around us).
pub(crate) fn abi_version() -> Result<u32, Errno> {
    // SAFETY: the documented version query: a NULL attribute with size 0 and
    // the VERSION flag; the kernel reads no memory and returns a number, not a
    // descriptor.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_landlock_create_ruleset,
            std::ptr::null::<libc::c_void>(),
            0usize,
            CREATE_RULESET_VERSION,
        )
    };
    if ret < 0 {
        Err(Errno::last())
    } else {
        Ok(u32::try_from(ret).unwrap_or(u32::MAX))
    }
}

/// `LANDLOCK_RESTRICT_SELF_LOG_NEW_EXEC_ON` (ABI 7): log the domain's
/// denials in the kernel audit log after `execve` too. Without it only the
/// denials before the next `execve` are logged, which in the last hop are
/// none: the command itself runs after it.
const RESTRICT_SELF_LOG_NEW_EXEC_ON: libc::c_uint = 1 << 1;

/// The flags for `landlock_restrict_self` on a kernel at `abi`: the audit
/// log records the command's denials where the kernel can (ABI 7), nothing
/// before (the flags are `EINVAL` there).
pub(super) fn restrict_flags(abi: u32) -> libc::c_uint {
    if abi >= 7 {
        RESTRICT_SELF_LOG_NEW_EXEC_ON
    } else {
        0
    }
}

/// `landlock_restrict_self(fd, flags)`: enforce the ruleset on the calling
/// thread (and what it execs). Needs `no_new_privs` or `CAP_SYS_ADMIN` in the
/// current user namespace.
pub(super) fn restrict_self(ruleset_fd: RawFd, flags: libc::c_uint) -> Result<(), Errno> {
    // SAFETY: two integer arguments, no pointers; an invalid descriptor is
    // reported as EBADF, never undefined behaviour.
    let ret = unsafe { libc::syscall(libc::SYS_landlock_restrict_self, ruleset_fd, flags) };
    if ret < 0 {
        Err(Errno::last())
    } else {
        Ok(())
    }
}
