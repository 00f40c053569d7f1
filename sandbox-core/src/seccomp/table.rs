//! The seccomp policy as data: every x86_64 syscall we know by name, and what
//! the default filter does with it.
//!
//! Reading guide. The filter is an allowlist: a syscall listed in [`ALLOW`]
//! passes, one in [`EPERM`] fails with `EPERM` (the call exists, we refuse it),
//! one in [`ENOSYS`] fails with `ENOSYS` (so runtimes fall back, e.g. glibc
//! from `clone3` to `clone`, libuv/tokio from io_uring to epoll), and one in
//! [`ARG_CHECKED`] is decided by the argument rule named there. Anything else,
//! including [`OTHER`] and every number the kernel adds after this table was
//! written, gets [`DEFAULT_ERRNO`] (`ENOSYS`). Before any of this, the filter
//! kills the process for a foreign architecture (ia32 `int $0x80`, aarch64,
//! anything) and for any number with `__X32_SYSCALL_BIT` set.
//!
//! Changing this file changes `golden.txt`: that diff is the review.

/// A syscall name and its x86_64 number.
pub type Sys = (&'static str, i64);

macro_rules! sys {
    ($($name:ident),* $(,)?) => { &[$((strip_sys(stringify!($name)), libc::$name)),*] };
}

/// `"SYS_read"` → `"read"`, at compile time.
const fn strip_sys(ident: &'static str) -> &'static str {
    let (prefix, rest) = ident.as_bytes().split_at(4);
    assert!(matches!(prefix, b"SYS_"));
    match core::str::from_utf8(rest) {
        Ok(name) => name,
        Err(_) => panic!("syscall names are ASCII"),
    }
}

/// The errno for every syscall the table does not name: `ENOSYS`, so a newer
/// libc or runtime treats it as "kernel too old" and falls back.
pub const DEFAULT_ERRNO: i32 = libc::ENOSYS;

/// Allowed without argument checks: what sh, coreutils, python3, node (with
/// worker threads), git, gcc/make, cargo and pip need. No argument checks on
/// hot calls (`read`, `write`, `futex`, `mmap`, ...): a check there costs
/// ~1.5x on a syscall loop, and the kernel caches constant-allow decisions per
/// number only for calls whose decision ignores the arguments.
#[rustfmt::skip]
pub const ALLOW: &[Sys] = sys![
    // File descriptors and plain IO.
    SYS_read, SYS_write, SYS_readv, SYS_writev, SYS_pread64, SYS_pwrite64,
    SYS_preadv, SYS_pwritev, SYS_preadv2, SYS_pwritev2, SYS_lseek,
    SYS_open, SYS_openat, SYS_openat2, SYS_creat, SYS_close, SYS_close_range,
    SYS_dup, SYS_dup2, SYS_dup3, SYS_fcntl, SYS_flock,
    SYS_fsync, SYS_fdatasync, SYS_sync, SYS_syncfs, SYS_sync_file_range,
    SYS_truncate, SYS_ftruncate, SYS_fallocate, SYS_fadvise64, SYS_readahead,
    SYS_copy_file_range, SYS_sendfile, SYS_splice, SYS_tee, SYS_vmsplice,
    // Metadata: the stat family incl. statx, directories, links.
    SYS_stat, SYS_fstat, SYS_lstat, SYS_newfstatat, SYS_statx, SYS_statfs, SYS_fstatfs,
    SYS_access, SYS_faccessat, SYS_faccessat2, SYS_readlink, SYS_readlinkat,
    SYS_getdents, SYS_getdents64, SYS_getcwd, SYS_chdir, SYS_fchdir,
    SYS_mkdir, SYS_mkdirat, SYS_rmdir, SYS_unlink, SYS_unlinkat,
    SYS_rename, SYS_renameat, SYS_renameat2, SYS_link, SYS_linkat, SYS_symlink, SYS_symlinkat,
    SYS_chmod, SYS_fchmod, SYS_fchmodat, SYS_fchmodat2,
    SYS_chown, SYS_fchown, SYS_lchown, SYS_fchownat, SYS_umask,
    SYS_utime, SYS_utimes, SYS_utimensat, SYS_futimesat, SYS_mknod, SYS_mknodat,
    SYS_getxattr, SYS_lgetxattr, SYS_fgetxattr, SYS_listxattr, SYS_llistxattr, SYS_flistxattr,
    SYS_setxattr, SYS_lsetxattr, SYS_fsetxattr, SYS_removexattr, SYS_lremovexattr, SYS_fremovexattr,
    SYS_inotify_init, SYS_inotify_init1, SYS_inotify_add_watch, SYS_inotify_rm_watch,
    // Memory.
    SYS_brk, SYS_mmap, SYS_munmap, SYS_mprotect, SYS_mremap, SYS_madvise, SYS_msync,
    SYS_mincore, SYS_mlock, SYS_mlock2, SYS_munlock, SYS_mlockall, SYS_munlockall,
    SYS_memfd_create, SYS_membarrier, SYS_pkey_alloc, SYS_pkey_free, SYS_pkey_mprotect,
    // SysV and POSIX IPC: the sandbox has its own ipc namespace.
    SYS_shmget, SYS_shmat, SYS_shmdt, SYS_shmctl, SYS_semget, SYS_semop, SYS_semctl,
    SYS_semtimedop, SYS_msgget, SYS_msgsnd, SYS_msgrcv, SYS_msgctl,
    SYS_mq_open, SYS_mq_unlink, SYS_mq_timedsend, SYS_mq_timedreceive, SYS_mq_notify,
    SYS_mq_getsetattr,
    // Processes and threads (`clone` is in ARG_CHECKED).
    SYS_fork, SYS_vfork, SYS_execve, SYS_execveat, SYS_exit, SYS_exit_group,
    SYS_wait4, SYS_waitid, SYS_set_tid_address, SYS_set_robust_list, SYS_get_robust_list,
    SYS_rseq, SYS_futex, SYS_futex_waitv, SYS_arch_prctl, SYS_prctl,
    SYS_pidfd_open, SYS_pidfd_send_signal, SYS_restart_syscall,
    SYS_getpid, SYS_getppid, SYS_gettid, SYS_getpgid, SYS_setpgid, SYS_getpgrp,
    SYS_getsid, SYS_setsid,
    SYS_getuid, SYS_geteuid, SYS_getgid, SYS_getegid, SYS_getgroups, SYS_getresuid,
    SYS_getresgid, SYS_setuid, SYS_setgid, SYS_setreuid, SYS_setregid, SYS_setresuid,
    SYS_setresgid, SYS_setgroups, SYS_setfsuid, SYS_setfsgid, SYS_capget, SYS_capset,
    SYS_getpriority, SYS_setpriority, SYS_ioprio_get, SYS_ioprio_set,
    SYS_sched_yield, SYS_sched_getaffinity, SYS_sched_setaffinity, SYS_sched_getparam,
    SYS_sched_setparam, SYS_sched_getscheduler, SYS_sched_setscheduler,
    SYS_sched_get_priority_max, SYS_sched_get_priority_min, SYS_sched_rr_get_interval,
    SYS_sched_getattr, SYS_sched_setattr, SYS_getcpu,
    SYS_getrlimit, SYS_setrlimit, SYS_prlimit64, SYS_getrusage, SYS_times, SYS_sysinfo,
    SYS_uname,
    // Signals.
    SYS_rt_sigaction, SYS_rt_sigprocmask, SYS_rt_sigreturn, SYS_rt_sigpending,
    SYS_rt_sigtimedwait, SYS_rt_sigqueueinfo, SYS_rt_tgsigqueueinfo, SYS_rt_sigsuspend,
    SYS_sigaltstack, SYS_kill, SYS_tkill, SYS_tgkill, SYS_pause, SYS_alarm,
    SYS_signalfd, SYS_signalfd4,
    // Time and timers (reading and sleeping only; setting is in EPERM).
    SYS_clock_gettime, SYS_clock_getres, SYS_clock_nanosleep, SYS_gettimeofday, SYS_time,
    SYS_nanosleep, SYS_getitimer, SYS_setitimer, SYS_timer_create, SYS_timer_settime,
    SYS_timer_gettime, SYS_timer_getoverrun, SYS_timer_delete,
    SYS_timerfd_create, SYS_timerfd_settime, SYS_timerfd_gettime,
    // Waiting on many fds.
    SYS_poll, SYS_ppoll, SYS_select, SYS_pselect6, SYS_epoll_create, SYS_epoll_create1,
    SYS_epoll_ctl, SYS_epoll_wait, SYS_epoll_pwait, SYS_epoll_pwait2,
    SYS_eventfd, SYS_eventfd2, SYS_pipe, SYS_pipe2,
    // Sockets (`socket`/`socketpair` are in ARG_CHECKED; the netns is the fence).
    SYS_bind, SYS_listen, SYS_accept, SYS_accept4, SYS_connect, SYS_getsockname,
    SYS_getpeername, SYS_sendto, SYS_recvfrom, SYS_sendmsg, SYS_recvmsg, SYS_sendmmsg,
    SYS_recvmmsg, SYS_shutdown, SYS_setsockopt, SYS_getsockopt,
    // Randomness.
    SYS_getrandom,
    // Self-restriction only (nested sandboxes, browsers, test runners;
    // `seccomp` is in ARG_CHECKED).
    SYS_landlock_create_ruleset, SYS_landlock_add_rule, SYS_landlock_restrict_self,
];

/// Refused with `EPERM`: the explicitly dangerous calls of issue 4. Each is
/// attack surface no tool call needs, or an escape attempt.
/// (`stime` does not exist on x86_64; `time` setting goes through
/// `settimeofday`/`clock_settime`, listed here.)
#[rustfmt::skip]
pub const EPERM: &[Sys] = sys![
    // Mount family incl. the new mount API.
    SYS_mount, SYS_umount2, SYS_fsopen, SYS_fsconfig, SYS_fsmount, SYS_fspick,
    SYS_open_tree, SYS_move_mount, SYS_mount_setattr, SYS_pivot_root, SYS_chroot,
    // Namespaces.
    SYS_unshare, SYS_setns,
    // Kernel attack surface.
    SYS_bpf, SYS_perf_event_open, SYS_userfaultfd,
    SYS_keyctl, SYS_add_key, SYS_request_key,
    // Reaching into other processes.
    SYS_ptrace, SYS_process_vm_readv, SYS_process_vm_writev, SYS_kcmp, SYS_pidfd_getfd,
    SYS_open_by_handle_at, SYS_name_to_handle_at,
    // Modules, kexec, reboot, swap.
    SYS_init_module, SYS_finit_module, SYS_delete_module, SYS_kexec_load,
    SYS_kexec_file_load, SYS_reboot, SYS_swapon, SYS_swapoff,
    // Clock and time setting.
    SYS_clock_settime, SYS_settimeofday, SYS_adjtimex, SYS_clock_adjtime,
    // Host-wide state and hardware. (`sethostname`/`setdomainname` would only
    // touch the sandbox's own UTS namespace, but need a capability the command
    // never has: EPERM, not ENOSYS, so hostname(1) reports the refusal instead
    // of exiting 0 as it does for ENOSYS.)
    SYS_syslog, SYS_acct, SYS_iopl, SYS_ioperm, SYS_quotactl, SYS_quotactl_fd,
    SYS_fanotify_init, SYS_sethostname, SYS_setdomainname, SYS_vhangup,
    // NUMA memory policy.
    SYS_mbind, SYS_set_mempolicy, SYS_migrate_pages, SYS_move_pages,
    SYS_set_mempolicy_home_node,
];

/// Refused with exactly `ENOSYS` (named so the choice is visible, although it
/// is also the default): glibc and runtimes fall back to `clone`, epoll and
/// plain IO. `clone3` passes its flags in memory, which BPF cannot read, so it
/// cannot get the namespace-flag check `clone` gets.
#[rustfmt::skip]
pub const ENOSYS: &[Sys] = sys![
    SYS_clone3, SYS_io_uring_setup, SYS_io_uring_enter, SYS_io_uring_register,
];

/// The argument rules, one per checked syscall; the compiler turns each into
/// BPF. Arguments are compared on their low 32 bits, which is what the kernel
/// uses for these `int`/`unsigned int` parameters, so high garbage bits can
/// neither sneak past a deny nor spoil an allow.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ArgRule {
    /// `clone(flags, ...)`: allowed unless `flags & CLONE_NS_FLAGS != 0`, then `EPERM`.
    Clone,
    /// `ioctl(fd, cmd, ...)`: allowed unless `cmd` is in [`IOCTL_DENY`], then `EPERM`.
    Ioctl,
    /// `socket(family, type, protocol)`: see [`SOCKET_FAMILIES`].
    Socket,
    /// `socketpair(family, ...)`: `AF_UNIX` only (the only family the kernel
    /// pairs; refusing the others up front also keeps `AF_INET` +
    /// `SOCK_PACKET` from reaching packet-socket creation), else
    /// `EAFNOSUPPORT`.
    Socketpair,
    /// `personality(persona)`: only [`PERSONALITY_ALLOW`], else `EPERM`.
    Personality,
    /// `seccomp(op, flags, args)`: allowed (a process may restrict itself
    /// further) unless `flags` asks for a user-notification listener, then
    /// `EPERM`. Our filter refuses with `USER_NOTIF` when refusals are
    /// recorded, and the kernel hands such a notification to the listener of
    /// the most recent filter returning it: a process's own listener could
    /// answer our refusals with "continue". The kernel already refuses a
    /// second listener in one filter chain (`EBUSY`); this rule does not
    /// depend on that check.
    Seccomp,
    /// Reduced mode's `socket(family, type, protocol)`: only TCP
    /// (`AF_INET`/`AF_INET6`, `SOCK_STREAM`, protocol 0 or `IPPROTO_TCP`)
    /// and `AF_NETLINK` + `NETLINK_ROUTE`; everything else `EPERM`: see
    /// [`REDUCED_EPERM`].
    SocketReduced,
    /// Reduced mode's `sendto`/`sendmsg`/`sendmmsg`: `EPERM` when the flags
    /// (argument number given) carry `MSG_FASTOPEN`, which connects without
    /// a `connect` call; allowed otherwise.
    SendNoFastOpen(u8),
}

/// The syscalls decided by an argument rule.
pub const ARG_CHECKED: &[(&str, i64, ArgRule)] = &[
    ("clone", libc::SYS_clone, ArgRule::Clone),
    ("ioctl", libc::SYS_ioctl, ArgRule::Ioctl),
    ("socket", libc::SYS_socket, ArgRule::Socket),
    ("socketpair", libc::SYS_socketpair, ArgRule::Socketpair),
    ("personality", libc::SYS_personality, ArgRule::Personality),
    ("seccomp", libc::SYS_seccomp, ArgRule::Seccomp),
];

/// Every `CLONE_NEW*` flag. `CLONE_NEWTIME` (0x80) overlaps the exit-signal
/// byte of `clone` and is only meaningful for `clone3`/`unshare`: a `clone`
/// with that bit set creates no time namespace, just a child with an odd exit
/// signal (0x80 | sig). No tool asks for that, so denying it costs nothing and
/// keeps the rule "no namespace flag at all" simple.
pub const CLONE_NS_FLAGS: u32 = (libc::CLONE_NEWNS
    | libc::CLONE_NEWCGROUP
    | libc::CLONE_NEWUTS
    | libc::CLONE_NEWIPC
    | libc::CLONE_NEWUSER
    | libc::CLONE_NEWPID
    | libc::CLONE_NEWNET
    | libc::CLONE_NEWTIME) as u32;

/// `ioctl` commands refused with `EPERM`: injecting input into a terminal
/// (`TIOCSTI`, CVE-2019-10063 and friends), the Linux console multiplexer
/// (`TIOCLINUX`), changing line discipline (`TIOCSETD`, historic bug source),
/// and redirecting the console (`TIOCCONS`).
pub const IOCTL_DENY: &[(&str, u32)] = &[
    ("TIOCSTI", libc::TIOCSTI as u32),
    ("TIOCLINUX", libc::TIOCLINUX as u32),
    ("TIOCSETD", libc::TIOCSETD as u32),
    ("TIOCCONS", libc::TIOCCONS as u32),
];

/// What `socket` may create.
///
/// - `AF_UNIX`: any type.
/// - `AF_INET`, `AF_INET6`: `SOCK_STREAM` and `SOCK_DGRAM` (flags like
///   `SOCK_CLOEXEC` ignored); the other types in [`INET_DENIED_TYPES`] are
///   `EPERM`: `SOCK_RAW` (in the sandbox's own user and network namespace the
///   kernel would otherwise grant raw sockets), `SOCK_PACKET` (the kernel
///   turns `AF_INET` + `SOCK_PACKET` into a packet socket), and the SCTP and
///   DCCP types (attack surface no tool needs).
/// - `AF_NETLINK` with protocol `NETLINK_ROUTE` only: glibc `getaddrinfo`
///   (`AI_ADDRCONFIG`), `getifaddrs`, libuv `uv_interface_addresses` (node's
///   `os.networkInterfaces()`) and `ip addr` read interfaces this way. Changes
///   need `CAP_NET_ADMIN`, which the command does not have, so use is read-only
///   in effect; the netns holds only `lo` anyway.
/// - Every other family (`AF_PACKET`, `AF_VSOCK`, `AF_ALG`, `AF_BLUETOOTH`, ...)
///   and every other netlink protocol: `EAFNOSUPPORT`.
pub const SOCKET_FAMILIES: &[(&str, u32)] = &[
    ("AF_UNIX", libc::AF_UNIX as u32),
    ("AF_INET", libc::AF_INET as u32),
    ("AF_INET6", libc::AF_INET6 as u32),
];

/// `AF_NETLINK`, allowed only with [`NETLINK_PROTOCOL`].
pub const NETLINK_FAMILY: u32 = libc::AF_NETLINK as u32;
/// The one netlink protocol allowed: `NETLINK_ROUTE`.
pub const NETLINK_PROTOCOL: u32 = libc::NETLINK_ROUTE as u32;
/// Socket types refused with `EPERM` for `AF_INET`/`AF_INET6`. Of the rest,
/// `SOCK_STREAM` and `SOCK_DGRAM` are what tools use; `SOCK_RDM` and the
/// unassigned numbers have no INET implementation (the kernel refuses them).
pub const INET_DENIED_TYPES: &[(&str, u32)] = &[
    ("SOCK_RAW", libc::SOCK_RAW as u32),
    ("SOCK_SEQPACKET", libc::SOCK_SEQPACKET as u32),
    ("SOCK_DCCP", 6),
    ("SOCK_PACKET", 10),
];
/// The socket type bits without `SOCK_NONBLOCK`/`SOCK_CLOEXEC`.
pub const SOCK_TYPE_MASK: u32 = 0xf;

/// `personality` values allowed: `PER_LINUX` (0), `PER_LINUX32` (8, what
/// `linux32`/`setarch i686` set for 32-bit builds; it only changes `uname -m`)
/// and the query `0xffffffff`. Refused with `EPERM`: everything else, notably
/// `ADDR_NO_RANDOMIZE` and `READ_IMPLIES_EXEC`. (Docker also allows the
/// `UNAME26` variants; no tool we target needs them.)
pub const PERSONALITY_ALLOW: &[u32] = &[0, 0x0008, 0xffff_ffff];

/// Reduced mode (no user, network or IPC namespace; see `crate::reduced`):
/// refused with `EPERM` on top of the table, whatever the caller's
/// overrides say, because without the namespaces they would reach the host:
///
/// - `listen`: an unbound TCP socket's `listen` binds an ephemeral port on
///   every host address, which Landlock's bind rule never sees; a sandbox
///   could then take connections from anywhere;
/// - SysV IPC and POSIX message queues: the host's, not a private set (ids
///   are small integers, `shmat` needs no name).
#[rustfmt::skip]
pub const REDUCED_EPERM: &[Sys] = sys![
    SYS_listen,
    SYS_shmget, SYS_shmat, SYS_shmdt, SYS_shmctl, SYS_semget, SYS_semop, SYS_semctl,
    SYS_semtimedop, SYS_msgget, SYS_msgsnd, SYS_msgrcv, SYS_msgctl,
    SYS_mq_open, SYS_mq_unlink, SYS_mq_timedsend, SYS_mq_timedreceive, SYS_mq_notify,
    SYS_mq_getsetattr,
];

/// Reduced mode's argument rules, replacing the table's for these calls:
/// TCP and route netlink only for `socket`, no `MSG_FASTOPEN` for the send
/// family (flags are argument 3 of `sendto` and `sendmmsg`, 2 of `sendmsg`).
pub const REDUCED_ARG_CHECKED: &[(&str, i64, ArgRule)] = &[
    ("socket", libc::SYS_socket, ArgRule::SocketReduced),
    ("sendto", libc::SYS_sendto, ArgRule::SendNoFastOpen(3)),
    ("sendmsg", libc::SYS_sendmsg, ArgRule::SendNoFastOpen(2)),
    ("sendmmsg", libc::SYS_sendmmsg, ArgRule::SendNoFastOpen(3)),
];

/// Reduced mode: `connect` goes to the host (`SECCOMP_RET_USER_NOTIF`),
/// which lets only the proxy's loopback addresses through (`crate::reduced::gate`):
/// Landlock's TCP rule knows ports, not addresses.
pub const REDUCED_GATED: &[Sys] = sys![SYS_connect];

/// `MSG_FASTOPEN`: `sendto`/`sendmsg` on an unconnected TCP socket connect
/// with the data (TCP Fast Open).
pub const MSG_FASTOPEN: u32 = libc::MSG_FASTOPEN as u32;

/// Known x86_64 syscalls the default filter does not allow (they get
/// [`DEFAULT_ERRNO`]), named so `.allow()`/`.deny()` can refer to them.
pub const OTHER: &[Sys] = &[
    ("_sysctl", libc::SYS__sysctl),
    ("afs_syscall", libc::SYS_afs_syscall),
    ("create_module", 174),
    ("epoll_ctl_old", libc::SYS_epoll_ctl_old),
    ("epoll_wait_old", libc::SYS_epoll_wait_old),
    ("fanotify_mark", libc::SYS_fanotify_mark),
    ("get_kernel_syms", 177),
    ("get_mempolicy", libc::SYS_get_mempolicy),
    ("get_thread_area", libc::SYS_get_thread_area),
    ("getpmsg", libc::SYS_getpmsg),
    ("io_cancel", libc::SYS_io_cancel),
    ("io_destroy", libc::SYS_io_destroy),
    ("io_getevents", libc::SYS_io_getevents),
    ("io_setup", libc::SYS_io_setup),
    ("io_submit", libc::SYS_io_submit),
    ("lookup_dcookie", libc::SYS_lookup_dcookie),
    ("memfd_secret", libc::SYS_memfd_secret),
    ("modify_ldt", libc::SYS_modify_ldt),
    ("mseal", libc::SYS_mseal),
    ("nfsservctl", libc::SYS_nfsservctl),
    ("process_madvise", libc::SYS_process_madvise),
    ("process_mrelease", libc::SYS_process_mrelease),
    ("putpmsg", libc::SYS_putpmsg),
    ("query_module", 178),
    ("remap_file_pages", libc::SYS_remap_file_pages),
    ("security", libc::SYS_security),
    ("set_thread_area", libc::SYS_set_thread_area),
    ("sysfs", libc::SYS_sysfs),
    ("tuxcall", libc::SYS_tuxcall),
    ("uselib", libc::SYS_uselib),
    ("ustat", libc::SYS_ustat),
    ("vserver", libc::SYS_vserver),
    // Not (or no longer) in `libc` 0.2 for x86_64: create_module 174,
    // get_kernel_syms 177 and query_module 178 above are literal too.
    ("io_pgetevents", 333),
];
