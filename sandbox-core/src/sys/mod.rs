//! Raw system calls the crates we use do not wrap (new mount API, `close_range`,
//! `capset`, fork-style `clone` with namespace flags) and the allocation-free
//! primitives of the last hop. Every function here is a thin wrapper: no
//! allocation, no locks, errors as `Errno`.

use std::ffi::CStr;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

use libc::{c_char, c_int, c_long, c_uint, c_ulong, pid_t};
use nix::errno::Errno;

pub mod netlink;
pub mod pidfd;

pub use libc::{
    MOUNT_ATTR_IDMAP, MOUNT_ATTR_NODEV, MOUNT_ATTR_NOSUID, MOUNT_ATTR_RDONLY, OPEN_TREE_CLOEXEC,
    OPEN_TREE_CLONE,
};

fn check(ret: c_long) -> Result<c_long, Errno> {
    if ret < 0 {
        Err(Errno::last())
    } else {
        Ok(ret)
    }
}

/// `open_tree(dirfd, path, flags)`: with `OPEN_TREE_CLONE`, a detached copy of the
/// mount tree at `path`.
pub fn open_tree(dirfd: RawFd, path: &CStr, flags: c_uint) -> Result<OwnedFd, Errno> {
    // SAFETY: `path` is a valid NUL-terminated string for the duration of the call;
    // the kernel returns a new fd we take ownership of.
    let fd = check(unsafe { libc::syscall(libc::SYS_open_tree, dirfd, path.as_ptr(), flags) })?;
    // SAFETY: `fd` was just returned by the kernel and is owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

/// Attach the detached mount `from` at `to` (relative to `to_dirfd`).
pub fn move_mount(from: BorrowedFd<'_>, to_dirfd: RawFd, to: &CStr) -> Result<(), Errno> {
    const MOVE_MOUNT_F_EMPTY_PATH: c_uint = 0x4;
    // SAFETY: both strings are NUL-terminated and live across the call; `from` is
    // a valid fd borrowed for the call.
    check(unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            from.as_raw_fd(),
            c"".as_ptr(),
            to_dirfd,
            to.as_ptr(),
            MOVE_MOUNT_F_EMPTY_PATH,
        )
    })?;
    Ok(())
}

/// Attach the detached mount `from` on top of the object `to` refers to (an
/// `O_PATH` descriptor: no path is looked up again, so nothing can redirect it).
pub fn move_mount_onto(from: BorrowedFd<'_>, to: BorrowedFd<'_>) -> Result<(), Errno> {
    const MOVE_MOUNT_F_EMPTY_PATH: c_uint = 0x4;
    const MOVE_MOUNT_T_EMPTY_PATH: c_uint = 0x40;
    // SAFETY: both paths are the empty NUL-terminated string; both fds are
    // valid and borrowed for the call.
    check(unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            from.as_raw_fd(),
            c"".as_ptr(),
            to.as_raw_fd(),
            c"".as_ptr(),
            MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH,
        )
    })?;
    Ok(())
}

/// `mount_setattr` on the mount (tree) referred to by `fd`.
pub fn mount_setattr(
    fd: BorrowedFd<'_>,
    recursive: bool,
    attr_set: u64,
    attr_clr: u64,
    userns: Option<BorrowedFd<'_>>,
) -> Result<(), Errno> {
    let mut attr = libc::mount_attr {
        attr_set,
        attr_clr,
        propagation: 0,
        userns_fd: userns.map(|f| f.as_raw_fd() as u64).unwrap_or(0),
    };
    let flags = libc::AT_EMPTY_PATH | if recursive { libc::AT_RECURSIVE } else { 0 };
    // SAFETY: `attr` is a valid, initialized `struct mount_attr` and its exact size
    // is passed; the path is the empty string with AT_EMPTY_PATH.
    check(unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            fd.as_raw_fd(),
            c"".as_ptr(),
            flags as c_uint,
            &mut attr as *mut libc::mount_attr,
            std::mem::size_of::<libc::mount_attr>(),
        )
    })?;
    Ok(())
}

/// Fork-style `clone(flags | SIGCHLD)`: returns 0 in the child and the child's pid
/// in the parent. Namespace flags may be included.
///
/// # Safety
/// The calling process must be single-threaded (the child gets a copy of only the
/// calling thread, so any lock held by another thread would stay locked forever).
pub unsafe fn clone_process(flags: c_ulong) -> Result<pid_t, Errno> {
    // SAFETY: with a NULL stack the child continues on a copy-on-write copy of the
    // parent's stack, exactly like fork(); the caller guarantees single-threadedness.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_clone,
            flags | libc::SIGCHLD as c_ulong,
            std::ptr::null_mut::<libc::c_void>(),
            std::ptr::null_mut::<c_int>(),
            std::ptr::null_mut::<c_int>(),
            0 as c_ulong,
        )
    };
    Ok(check(ret)? as pid_t)
}

/// `close_range(first, last, flags)`.
pub fn close_range(first: c_uint, last: c_uint, flags: c_uint) -> Result<(), Errno> {
    // SAFETY: plain integer arguments; closing fds cannot violate memory safety of
    // this process because no Rust object above this call relies on them (callers
    // are the last hop, which owns no fds beyond its plan's raw numbers).
    check(unsafe { libc::syscall(libc::SYS_close_range, first, last, flags) })?;
    Ok(())
}

/// Close every descriptor except those in `keep`, which must be sorted
/// ascending. Allocation-free: usable in the last hop.
pub fn close_fds_except(keep: &[RawFd]) -> Result<(), Errno> {
    let mut next: c_uint = 0;
    for &fd in keep {
        let fd = fd as c_uint;
        if fd > next {
            close_range(next, fd - 1, 0)?;
        }
        next = fd.saturating_add(1).max(next);
    }
    close_range(next, c_uint::MAX, 0)
}

/// `pivot_root(new_root, put_old)`.
pub fn pivot_root(new_root: &CStr, put_old: &CStr) -> Result<(), Errno> {
    // SAFETY: both paths are valid NUL-terminated strings.
    check(unsafe { libc::syscall(libc::SYS_pivot_root, new_root.as_ptr(), put_old.as_ptr()) })?;
    Ok(())
}

/// `seccomp(SECCOMP_SET_MODE_FILTER, 0, prog)`: attach `filter` to the calling
/// thread. Needs `no_new_privs` (or `CAP_SYS_ADMIN`). Allocation-free: the
/// `sock_fprog` header lives on the stack and points into `filter`.
pub fn seccomp_set_filter(filter: &[libc::sock_filter]) -> Result<(), Errno> {
    let Ok(len) = u16::try_from(filter.len()) else {
        return Err(Errno::E2BIG);
    };
    let prog = libc::sock_fprog {
        len,
        filter: filter.as_ptr().cast_mut(),
    };
    // SAFETY: `prog` points to `len` valid instructions that outlive the call;
    // the kernel copies the program and never writes through the pointer.
    check(unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_SET_MODE_FILTER,
            0 as c_uint,
            &prog as *const libc::sock_fprog,
        )
    })?;
    Ok(())
}

/// Attach `filter` with `SECCOMP_FILTER_FLAG_NEW_LISTENER`: the returned
/// descriptor (CLOEXEC) receives the program's `USER_NOTIF` refusals.
pub fn seccomp_set_filter_listener(filter: &[libc::sock_filter]) -> Result<RawFd, Errno> {
    let Ok(len) = u16::try_from(filter.len()) else {
        return Err(Errno::E2BIG);
    };
    let prog = libc::sock_fprog {
        len,
        filter: filter.as_ptr().cast_mut(),
    };
    // SAFETY: as in `seccomp_set_filter`; the kernel returns a new descriptor.
    let fd = check(unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_SET_MODE_FILTER,
            libc::SECCOMP_FILTER_FLAG_NEW_LISTENER as c_uint,
            &prog as *const libc::sock_fprog,
        )
    })?;
    Ok(fd as RawFd)
}

/// `sendmsg(sock, record, SCM_RIGHTS [fd])` with everything on the stack.
pub fn send_fd(sock: RawFd, record: &[u8], fd: RawFd) -> Result<(), Errno> {
    /// A control message carrying one descriptor, aligned as `cmsghdr`.
    #[repr(C)]
    struct OneFd {
        header: libc::cmsghdr,
        fd: c_int,
    }
    // SAFETY: CMSG_LEN only computes a length.
    let cmsg_len = unsafe { libc::CMSG_LEN(std::mem::size_of::<c_int>() as c_uint) } as usize;
    let mut control = OneFd {
        header: libc::cmsghdr {
            cmsg_len,
            cmsg_level: libc::SOL_SOCKET,
            cmsg_type: libc::SCM_RIGHTS,
        },
        fd,
    };
    let mut iov = libc::iovec {
        iov_base: record.as_ptr().cast_mut().cast(),
        iov_len: record.len(),
    };
    // SAFETY: an all-zero msghdr is valid (no name, no iov, no control).
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = (&mut control as *mut OneFd).cast();
    msg.msg_controllen = std::mem::size_of::<OneFd>();
    loop {
        // SAFETY: `msg` points to the iovec and control buffer above, valid
        // for the call; the kernel only reads them.
        let n = unsafe { libc::sendmsg(sock, &msg, libc::MSG_NOSIGNAL) };
        if n >= 0 {
            return Ok(());
        }
        if Errno::last() != Errno::EINTR {
            return Err(Errno::last());
        }
    }
}

/// Receive one pending `USER_NOTIF` refusal from a seccomp listener.
/// `ENOENT`: the caller died or was interrupted before we got it.
pub fn notif_recv(listener: BorrowedFd<'_>) -> Result<libc::seccomp_notif, Errno> {
    // SAFETY: the kernel requires a zeroed buffer; all-zero is a valid value.
    let mut notif: libc::seccomp_notif = unsafe { std::mem::zeroed() };
    // SAFETY: `notif` is a valid, writable `seccomp_notif` for the ioctl.
    check(unsafe {
        libc::ioctl(
            listener.as_raw_fd(),
            libc::SECCOMP_IOCTL_NOTIF_RECV,
            &mut notif as *mut libc::seccomp_notif,
        )
    } as c_long)?;
    Ok(notif)
}

/// Answer refusal `id` with `-errno` (never "continue": the syscall fails).
pub fn notif_refuse(listener: BorrowedFd<'_>, id: u64, errno: i32) -> Result<(), Errno> {
    notif_answer(listener, id, 0, errno)
}

/// Answer notification `id` with the syscall's result: `val` when `error`
/// is 0, else the failure `-error` (never "continue": the call does not run
/// in the kernel, whatever we answer).
pub fn notif_answer(listener: BorrowedFd<'_>, id: u64, val: i64, errno: i32) -> Result<(), Errno> {
    let mut resp = libc::seccomp_notif_resp {
        id,
        val,
        error: -errno,
        flags: 0,
    };
    // SAFETY: `resp` is a valid `seccomp_notif_resp` for the ioctl.
    check(unsafe {
        libc::ioctl(
            listener.as_raw_fd(),
            libc::SECCOMP_IOCTL_NOTIF_SEND,
            &mut resp as *mut libc::seccomp_notif_resp,
        )
    } as c_long)?;
    Ok(())
}

/// Whether notification `id` is still pending: its caller has not died or
/// been interrupted, so a pid read from it still names that caller.
pub fn notif_id_valid(listener: BorrowedFd<'_>, id: u64) -> bool {
    let mut id = id;
    // SAFETY: the ioctl reads one u64 from the pointer.
    let ret = unsafe {
        libc::ioctl(
            listener.as_raw_fd(),
            libc::SECCOMP_IOCTL_NOTIF_ID_VALID,
            &mut id as *mut u64,
        )
    };
    ret == 0
}

/// Ask the kernel to wake the supervisor and the caller of a refused
/// syscall synchronously (`SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP`, Linux 6.6):
/// the answer comes sooner. Older kernels refuse; nothing else changes.
pub fn notif_sync_wake_up(listener: BorrowedFd<'_>) -> Result<(), Errno> {
    /// `SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP` (uapi `linux/seccomp.h`).
    const SYNC_WAKE_UP: u64 = 1;
    // SAFETY: the ioctl takes its u64 argument by value (`_IOW` with u64,
    // but the kernel reads `arg` itself); no memory is passed.
    check(unsafe {
        libc::ioctl(
            listener.as_raw_fd(),
            libc::SECCOMP_IOCTL_NOTIF_SET_FLAGS,
            SYNC_WAKE_UP,
        )
    } as c_long)?;
    Ok(())
}

/// Whether the kernel has seccomp user notification (Linux 5.0+).
pub fn seccomp_user_notif_available() -> bool {
    let mut sizes = libc::seccomp_notif_sizes {
        seccomp_notif: 0,
        seccomp_notif_resp: 0,
        seccomp_data: 0,
    };
    // SAFETY: `sizes` is a valid writable `seccomp_notif_sizes`.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_GET_NOTIF_SIZES,
            0 as c_uint,
            &mut sizes as *mut libc::seccomp_notif_sizes,
        )
    };
    ret == 0 && usize::from(sizes.seccomp_notif) <= std::mem::size_of::<libc::seccomp_notif>()
}

/// Clear the effective, permitted and inheritable capability sets.
pub fn capset_zero() -> Result<(), Errno> {
    #[repr(C)]
    struct Header {
        version: u32,
        pid: c_int,
    }
    #[repr(C)]
    #[derive(Clone, Copy)]
    struct Data {
        effective: u32,
        permitted: u32,
        inheritable: u32,
    }
    const LINUX_CAPABILITY_VERSION_3: u32 = 0x2008_0522;
    let mut header = Header {
        version: LINUX_CAPABILITY_VERSION_3,
        pid: 0,
    };
    let data = [Data {
        effective: 0,
        permitted: 0,
        inheritable: 0,
    }; 2];
    // SAFETY: header and the two-element data array have the kernel's v3 layout
    // and outlive the call.
    check(unsafe { libc::syscall(libc::SYS_capset, &mut header as *mut Header, data.as_ptr()) })?;
    Ok(())
}

/// `prctl(option, arg2, 0, 0, 0)`.
pub fn prctl(option: c_int, arg2: c_ulong) -> Result<c_int, Errno> {
    // SAFETY: the options used with this wrapper take integer arguments only.
    let r = unsafe { libc::prctl(option, arg2, 0 as c_ulong, 0 as c_ulong, 0 as c_ulong) };
    Ok(check(r as c_long)? as c_int)
}

/// `setsid()`.
pub fn setsid() -> Result<(), Errno> {
    // SAFETY: no arguments.
    check(unsafe { libc::setsid() } as c_long)?;
    Ok(())
}

/// `getppid()`.
pub fn getppid() -> pid_t {
    // SAFETY: no arguments, cannot fail.
    unsafe { libc::getppid() }
}

/// `dup2(old, new)` (no-op when equal, but clears `FD_CLOEXEC` on `new` then).
pub fn dup2(old: RawFd, new: RawFd) -> Result<(), Errno> {
    if old == new {
        // SAFETY: fcntl on an fd number with integer arguments.
        check(unsafe { libc::fcntl(old, libc::F_SETFD, 0) } as c_long)?;
        return Ok(());
    }
    // SAFETY: integer arguments; `new` is replaced atomically.
    check(unsafe { libc::dup2(old, new) } as c_long)?;
    Ok(())
}

/// `chdir(path)`.
pub fn chdir(path: &CStr) -> Result<(), Errno> {
    // SAFETY: valid NUL-terminated path.
    check(unsafe { libc::chdir(path.as_ptr()) } as c_long)?;
    Ok(())
}

/// `getrlimit(resource)` as `(cur, max)`.
pub fn getrlimit(resource: libc::__rlimit_resource_t) -> Result<(u64, u64), Errno> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `lim` is a valid, writable rlimit struct for the call.
    check(unsafe { libc::getrlimit(resource, &mut lim) } as c_long)?;
    Ok((lim.rlim_cur, lim.rlim_max))
}

/// `setrlimit(resource, {cur, max})`.
pub fn setrlimit(resource: libc::__rlimit_resource_t, cur: u64, max: u64) -> Result<(), Errno> {
    let lim = libc::rlimit {
        rlim_cur: cur,
        rlim_max: max,
    };
    // SAFETY: `lim` is a valid rlimit struct for the call.
    check(unsafe { libc::setrlimit(resource, &lim) } as c_long)?;
    Ok(())
}

/// `sigprocmask(SIG_SETMASK, empty)`: the command starts with no blocked signals.
pub fn unblock_all_signals() -> Result<(), Errno> {
    // SAFETY: a zeroed sigset_t is then initialized by sigemptyset before use.
    let mut set: libc::sigset_t = unsafe { std::mem::zeroed() };
    // SAFETY: `set` is a valid sigset_t.
    unsafe { libc::sigemptyset(&mut set) };
    // SAFETY: `set` is initialized; old set not requested.
    check(unsafe { libc::sigprocmask(libc::SIG_SETMASK, &set, std::ptr::null_mut()) } as c_long)?;
    Ok(())
}

/// Reset one signal to its default disposition.
pub fn default_signal(sig: c_int) {
    // SAFETY: installing SIG_DFL is always valid; an invalid number just fails.
    unsafe { libc::signal(sig, libc::SIG_DFL) };
}

/// `execve(path, argv, envp)`; returns only on failure.
///
/// `argv` and `envp` must be NULL-terminated arrays of pointers to NUL-terminated
/// strings that live across the call (checked by the caller's prepared plan).
pub fn execve(path: &CStr, argv: &[*const c_char], envp: &[*const c_char]) -> Errno {
    if argv.last() != Some(&std::ptr::null()) || envp.last() != Some(&std::ptr::null()) {
        return Errno::EINVAL;
    }
    // SAFETY: both arrays are NULL-terminated (checked above) and, per this
    // function's contract, point to live NUL-terminated strings.
    unsafe { libc::execve(path.as_ptr(), argv.as_ptr(), envp.as_ptr()) };
    Errno::last()
}

/// Write all of `buf` to `fd`, retrying on EINTR; best effort.
pub fn write_all(fd: RawFd, mut buf: &[u8]) {
    while !buf.is_empty() {
        // SAFETY: `buf` is a valid readable slice for `buf.len()` bytes.
        let n = unsafe { libc::write(fd, buf.as_ptr().cast(), buf.len()) };
        if n < 0 && Errno::last() == Errno::EINTR {
            continue;
        }
        if n <= 0 {
            return;
        }
        buf = &buf[n as usize..];
    }
}

/// `_exit(code)`: no destructors, no atexit handlers, no stdio flush.
pub fn exit_now(code: c_int) -> ! {
    // SAFETY: _exit never returns and touches no process state we rely on.
    unsafe { libc::_exit(code) }
}

/// `kill(pid, sig)`.
pub fn kill(pid: pid_t, sig: c_int) -> Result<(), Errno> {
    // SAFETY: integer arguments.
    check(unsafe { libc::kill(pid, sig) } as c_long)?;
    Ok(())
}

/// Bring the loopback interface of the current network namespace up.
pub fn loopback_up() -> Result<(), Errno> {
    // SAFETY: plain socket creation; the fd is owned below.
    let sock =
        check(
            unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) }
                as c_long,
        )?;
    // SAFETY: `sock` is a fresh fd owned by nobody else.
    let sock = unsafe { OwnedFd::from_raw_fd(sock as RawFd) };
    // SAFETY: ifreq is plain data; all-zero is a valid value.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (dst, src) in req.ifr_name.iter_mut().zip(b"lo\0") {
        *dst = *src as c_char;
    }
    // SAFETY: `req` is a valid ifreq naming "lo"; SIOCGIFFLAGS fills ifru_flags.
    check(unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCGIFFLAGS, &mut req) } as c_long)?;
    // SAFETY: reading and writing the flags member of the union the kernel just filled.
    unsafe { req.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short };
    // SAFETY: `req` is a valid ifreq with updated flags.
    check(unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCSIFFLAGS, &req) } as c_long)?;
    Ok(())
}

static ARGC: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
static ARGV: std::sync::atomic::AtomicPtr<*const c_char> =
    std::sync::atomic::AtomicPtr::new(std::ptr::null_mut());

/// Record the process's argv (called from the `.init_array` hook).
pub fn remember_argv(argc: c_int, argv: *const *const c_char) {
    use std::sync::atomic::Ordering;
    ARGC.store(argc.max(0) as usize, Ordering::Relaxed);
    ARGV.store(argv as *mut _, Ordering::Relaxed);
}

/// Replace what `/proc/self/cmdline` shows with `name`: the sandbox init is a
/// clone of its launcher and must not show the sandbox the launcher's command
/// line (host paths, `--env` values). Also sets the thread name.
pub fn set_process_title(name: &CStr) {
    use std::sync::atomic::Ordering;
    let (argc, argv) = (ARGC.load(Ordering::Relaxed), ARGV.load(Ordering::Relaxed));
    // SAFETY: PR_SET_NAME reads a NUL-terminated string of at most 16 bytes.
    unsafe {
        libc::prctl(
            libc::PR_SET_NAME,
            name.as_ptr() as c_ulong,
            0 as c_ulong,
            0 as c_ulong,
            0 as c_ulong,
        )
    };
    if argc == 0 || argv.is_null() {
        return;
    }
    // SAFETY: `argv` is the array glibc passed to `.init_array` functions:
    // `argc` valid pointers to NUL-terminated strings the kernel laid out
    // back to back in this process's own (writable) stack memory, which lives
    // until exit. We write only inside [argv[0], end of argv[argc-1]].
    unsafe {
        let first = *argv;
        let last = *argv.add(argc - 1);
        if first.is_null() || last.is_null() {
            return;
        }
        let end = last.add(libc::strlen(last) + 1);
        let len = end.offset_from(first) as usize;
        let area = std::slice::from_raw_parts_mut(first as *mut u8, len);
        area.fill(0);
        let bytes = name.to_bytes();
        let n = bytes.len().min(len.saturating_sub(1));
        area[..n].copy_from_slice(&bytes[..n]);
    }
}

/// `renameat2(old_dir, old, new_dir, new, flags)`: nix wraps it for glibc
/// only, and `RENAME_NOREPLACE` is what makes a rename refuse to clobber.
pub fn renameat2(
    old_dir: BorrowedFd<'_>,
    old: &CStr,
    new_dir: BorrowedFd<'_>,
    new: &CStr,
    flags: c_uint,
) -> Result<(), Errno> {
    // SAFETY: both names are valid NUL-terminated strings and both fds are
    // borrowed for the duration of the call.
    check(unsafe {
        libc::syscall(
            libc::SYS_renameat2,
            old_dir.as_raw_fd(),
            old.as_ptr(),
            new_dir.as_raw_fd(),
            new.as_ptr(),
            flags,
        )
    })?;
    Ok(())
}

/// `fchmodat2(dir, name, mode, flags)` (Linux 6.6): the chmod that honours
/// `AT_SYMLINK_NOFOLLOW`, so a symlink planted at `name` is refused
/// (`EOPNOTSUPP`) instead of followed.
pub fn fchmodat2(dir: BorrowedFd<'_>, name: &CStr, mode: u32, flags: c_int) -> Result<(), Errno> {
    // SAFETY: `name` is a valid NUL-terminated string and `dir` is borrowed
    // for the duration of the call.
    check(unsafe {
        libc::syscall(
            libc::SYS_fchmodat2,
            dir.as_raw_fd(),
            name.as_ptr(),
            mode as libc::mode_t,
            flags,
        )
    })?;
    Ok(())
}

/// Read extended attribute `name` of the file open at `fd` into `buf`: its
/// length, or `None` when it is not set (or the filesystem has no xattrs).
/// Values longer than `buf` are `ERANGE`.
pub fn fgetxattr(fd: BorrowedFd<'_>, name: &CStr, buf: &mut [u8]) -> Result<Option<usize>, Errno> {
    // SAFETY: `name` is NUL-terminated, `buf` is writable for `buf.len()`
    // bytes, and `fd` is borrowed for the duration of the call.
    let n = unsafe {
        libc::fgetxattr(
            fd.as_raw_fd(),
            name.as_ptr(),
            buf.as_mut_ptr().cast(),
            buf.len(),
        )
    };
    if n >= 0 {
        return Ok(Some(n as usize));
    }
    match Errno::last() {
        Errno::ENODATA | Errno::EOPNOTSUPP => Ok(None),
        e => Err(e),
    }
}

/// `ioctl(NS_GET_OWNER_UID)` on a `/proc/PID/ns/user` file: the uid (in our
/// user namespace) of the process that created that user namespace.
pub fn ns_owner_uid(userns: BorrowedFd<'_>) -> Result<u32, Errno> {
    // _IO(0xb7, 0x4) from <linux/nsfs.h>.
    const NS_GET_OWNER_UID: c_ulong = 0xb704;
    let mut uid: libc::uid_t = 0;
    // SAFETY: `userns` is a valid fd borrowed for the call; NS_GET_OWNER_UID
    // writes one uid_t through the pointer, which points at `uid`.
    check(unsafe {
        libc::ioctl(
            userns.as_raw_fd(),
            NS_GET_OWNER_UID,
            &mut uid as *mut libc::uid_t,
        )
    } as c_long)?;
    Ok(uid)
}
