/*
 * syscall_probe: raw syscalls inside a stockade sandbox, for
 * sandbox-cli/tests/security_syscalls.rs.
 *
 * The bad-argument technique. Every call is made with arguments the kernel
 * rejects cheaply and without side effects: a bad pointer (BAD, an address in
 * the never-mapped first page) gives EFAULT, fd -1 gives EBADF, an unknown
 * flag or command gives EINVAL, and so on. So:
 *
 *   - a call the filter ALLOWS reaches the kernel and fails with that
 *     harmless errno (or succeeds, for the few pure queries listed below);
 *   - a call the filter BLOCKS returns the policy's errno (EPERM, ENOSYS,
 *     EAFNOSUPPORT) without the kernel ever looking at the arguments.
 *
 * The two outcomes never coincide for the arguments chosen here, so each line
 * says which side of the filter the call was on.
 *
 * Built by the test: gcc -O1 -Wall -pthread -o syscall_probe syscall_probe.c
 *
 * Output, one line per call:
 *     LABEL NR RET ERRNO            (RET = raw return, ERRNO = errno or 0)
 *     LABEL NR RET ERRNO WANT       (mode `allow`: WANT = the documented
 *                                    errno, 0 = success expected)
 *     LABEL wait exit=N | signal=N  (a call isolated in a forked child)
 *
 * Modes (argv[1]):
 *   call [--visible-only] LABEL=NR[,A0,...,A5]...
 *                                 raw syscall(NR, A0..A5); missing args are
 *                                 -1 (all bits set: bad pointer, bad fd,
 *                                 unknown flags). Numbers: strtoull base 0.
 *                                 --visible-only: first check in a forked
 *                                 child that seccomp sees NR at all (see
 *                                 seccomp_sees); if not, print
 *                                 `LABEL NR invisible` and skip the call.
 *   allow                         the must-allow table below
 *   abi                           x32 and ia32 calls, each in its own child
 *   x32 | ia32                    one foreign-ABI getpid in this process
 *   spawn                         clone3 vs fork/vfork/posix_spawn/pthreads
 *   clone                         clone with each CLONE_NEW* flag
 *   ioctl                         denied terminal ioctls vs allowed ones
 *   socket                        socket families, raw, netlink protocols
 *   personality                   allowed vs refused personas
 *   exit N                        exit with status N (posix_spawn target)
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <linux/netlink.h>
#include <linux/seccomp.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/inotify.h>
#include <sys/ioctl.h>
#include <sys/ipc.h>
#include <sys/mman.h>
#include <sys/personality.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#ifndef SYS_fchmodat2
#define SYS_fchmodat2 452
#endif
#ifndef CLONE_NEWTIME
#define CLONE_NEWTIME 0x80
#endif
#ifndef AF_VSOCK
#define AF_VSOCK 40
#endif
#ifndef AF_ALG
#define AF_ALG 38
#endif
#ifndef AF_BLUETOOTH
#define AF_BLUETOOTH 31
#endif
#ifndef TIOCLINUX
#define TIOCLINUX 0x541C
#endif

/* An address in the first page: never mapped (vm.mmap_min_addr), but inside
 * the user range, so access_ok() passes and the copy itself faults. */
#define BAD 0x10L
/* Garbage in the upper 32 bits of an argument the kernel reads as an int. */
#define HI 0xdead000000000000L
#define X32_BIT 0x40000000L

/* Valid memory for calls whose first copied argument must not fault, so the
 * kernel goes on to the check we aim at (zeroed: a harmless value). */
static long ZERO_BUF[64];
#define Z ((long)ZERO_BUF)
/* A valid xattr name: the name is imported before the fd is looked up. */
#define XNAME ((long)"user.stockade")

static void line(const char *label, long nr, long ret, int err) {
    dprintf(1, "%s %ld %ld %d\n", label, nr, ret, ret < 0 ? err : 0);
}

static long raw6(long nr, const long a[6]) {
    errno = 0;
    return syscall(nr, a[0], a[1], a[2], a[3], a[4], a[5]);
}

/* Print how a child ended: `LABEL wait exit=N` or `LABEL wait signal=N`. */
static void report_wait(const char *label, pid_t pid) {
    int st = 0;
    if (waitpid(pid, &st, __WALL) < 0) {
        dprintf(1, "%s wait error=%d\n", label, errno);
    } else if (WIFSIGNALED(st)) {
        dprintf(1, "%s wait signal=%d\n", label, WTERMSIG(st));
    } else {
        dprintf(1, "%s wait exit=%d\n", label, WEXITSTATUS(st));
    }
}

/* ------------------------------------------------------------------------ */
/* mode call                                                                 */
/* ------------------------------------------------------------------------ */

/*
 * Does a seccomp filter see syscall NR on this kernel? A forked child stacks
 * a filter that answers NR with errno 133 (EHWPOISON, a marker nothing else
 * returns here) and makes the call. If seccomp sees the number, the newest
 * filter's errno wins among equal actions and the call never runs. Some
 * hosts handle a few numbers before seccomp runs (observed: 335 and 336 on a
 * PVM guest kernel, "6.18.44-fc"): no filter can refuse those, so they say
 * nothing about the sandbox's policy. The check runs inside the sandbox, so
 * such a call runs there (once, in the child), never on the host.
 */
#define SEEN_MARK 133
static int seccomp_sees(long nr) {
    pid_t pid = fork();
    if (pid == 0) {
        struct sock_filter f[] = {
            BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
            BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (unsigned)nr, 0, 1),
            BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | SEEN_MARK),
            BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
        };
        struct sock_fprog prog = {sizeof f / sizeof f[0], f};
        if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) ||
            syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog))
            _exit(2);
        errno = 0;
        long r = syscall(nr, -1L, -1L, -1L, -1L, -1L, -1L);
        _exit(r == -1 && errno == SEEN_MARK ? 0 : 1);
    }
    int st = 0;
    if (pid < 0 || waitpid(pid, &st, 0) < 0) return -1;
    if (WIFEXITED(st) && WEXITSTATUS(st) == 2) return -1;
    return WIFEXITED(st) && WEXITSTATUS(st) == 0;
}

static int mode_call(int argc, char **argv) {
    int visible_only = 0;
    if (argc > 0 && !strcmp(argv[0], "--visible-only")) {
        visible_only = 1;
        argc--;
        argv++;
    }
    for (int i = 0; i < argc; i++) {
        char *tok = argv[i];
        char *eq = strchr(tok, '=');
        if (!eq) {
            dprintf(2, "syscall_probe: bad token %s (want LABEL=NR[,ARG...])\n", tok);
            return 2;
        }
        *eq = 0;
        char *p = eq + 1;
        long nr = (long)strtoull(p, &p, 0);
        long a[6] = {-1, -1, -1, -1, -1, -1};
        for (int k = 0; k < 6 && *p == ','; k++) {
            p++;
            a[k] = (long)strtoull(p, &p, 0);
        }
        if (visible_only) {
            int seen = seccomp_sees(nr);
            if (seen < 0) {
                dprintf(2, "syscall_probe: cannot stack a seccomp filter\n");
                return 3;
            }
            if (!seen) {
                dprintf(1, "%s %ld invisible\n", tok, nr);
                continue;
            }
        }
        long r = raw6(nr, a);
        line(tok, nr, r, errno);
    }
    return 0;
}

/* ------------------------------------------------------------------------ */
/* mode allow: calls the default policy must let through                     */
/* ------------------------------------------------------------------------ */

#define OK 0          /* expected to succeed (a pure query or a no-op) */
#define IN_CHILD 1    /* run in a forked child: the call changes process state */
#define NNP 2         /* ... after PR_SET_NO_NEW_PRIVS (the sandbox always has it) */

struct allowed {
    const char *name;
    long nr;
    int want;         /* the errno the kernel gives for these arguments */
    int flags;
    long a[6];
};

#define E(name, want, ...) {#name, SYS_##name, want, 0, {__VA_ARGS__}}
#define C(name, want, ...) {#name, SYS_##name, want, IN_CHILD, {__VA_ARGS__}}
#define N(name, want, ...) {#name, SYS_##name, want, IN_CHILD | NNP, {__VA_ARGS__}}

/*
 * Argument choices, by errno:
 *   EBADF  : fd -1 (for *at calls the path is checked first, so those use
 *            AT_FDCWD + BAD instead).
 *   EFAULT : BAD as the first pointer the kernel copies from/to.
 *   EINVAL : an unknown flag/command/`which`, a negative id or size, an
 *            unaligned address, or an empty range where one is required.
 *   ECHILD : wait with no children.  ESRCH: a pid above pid_max.
 *   ENOMEM : a range with no mapping (mlock/munlock of the first page).
 *   ENOENT : msgget of a key that does not exist, without IPC_CREAT.
 *   EINTR  : restart_syscall with nothing to restart.
 *   OK     : queries and no-ops (getpid, umask, brk(0), setreuid(-1,-1), ...).
 *
 * Left out on purpose: calls that cannot fail harmlessly or that would block
 * or disturb the probe (sync, pause, rt_sigreturn, exit, exit_group, fork,
 * vfork and clone are exercised by mode spawn/clone), and setgroups, which
 * the kernel refuses with EPERM before reading any argument unless the caller
 * has CAP_SETGID (indistinguishable from the filter's EPERM).
 */
static const struct allowed ALLOWED[] = {
    /* File descriptors and plain IO. */
    E(read, EBADF, -1, BAD, 1),
    E(write, EBADF, -1, BAD, 1),
    E(readv, EBADF, -1, BAD, 1),
    E(writev, EBADF, -1, BAD, 1),
    E(pread64, EBADF, -1, BAD, 1, 0),
    E(pwrite64, EBADF, -1, BAD, 1, 0),
    E(preadv, EBADF, -1, BAD, 1, 0, 0),
    E(pwritev, EBADF, -1, BAD, 1, 0, 0),
    E(preadv2, EBADF, -1, BAD, 1, 0, 0, 0),
    E(pwritev2, EBADF, -1, BAD, 1, 0, 0, 0),
    E(lseek, EBADF, -1, 0, SEEK_SET),
    E(open, EFAULT, BAD, O_RDONLY),
    E(openat, EFAULT, AT_FDCWD, BAD, O_RDONLY),
    /* usize 24 = sizeof(struct open_how); the struct is copied first. */
    E(openat2, EFAULT, AT_FDCWD, BAD, BAD, 24),
    E(creat, EFAULT, BAD, 0600),
    E(close, EBADF, -1),
    /* first fd > last fd */
    E(close_range, EINVAL, 2, 1, 0),
    E(dup, EBADF, -1),
    E(dup2, EBADF, -1, 100),
    E(dup3, EBADF, -1, 100, 0),
    E(fcntl, EBADF, -1, F_GETFD),
    E(flock, EBADF, -1, LOCK_SH),
    E(fsync, EBADF, -1),
    E(fdatasync, EBADF, -1),
    E(syncfs, EBADF, -1),
    E(sync_file_range, EBADF, -1, 0, 0, 0),
    E(truncate, EFAULT, BAD, 0),
    E(ftruncate, EBADF, -1, 0),
    E(fallocate, EBADF, -1, 0, 0, 1),
    E(fadvise64, EBADF, -1, 0, 0, 0),
    E(readahead, EBADF, -1, 0, 1),
    E(copy_file_range, EBADF, -1, 0, -1, 0, 1, 0),
    E(sendfile, EBADF, -1, -1, 0, 1),
    E(splice, EBADF, -1, 0, -1, 0, 1, 0),
    E(tee, EBADF, -1, -1, 1, 0),
    E(vmsplice, EBADF, -1, BAD, 1, 0),

    /* Metadata, directories, links, xattrs, inotify. */
    E(stat, EFAULT, BAD, BAD),
    E(fstat, EBADF, -1, BAD),
    E(lstat, EFAULT, BAD, BAD),
    E(newfstatat, EFAULT, AT_FDCWD, BAD, BAD, 0),
    /* mask 0x7ff = STATX_BASIC_STATS */
    E(statx, EFAULT, AT_FDCWD, BAD, 0, 0x7ff, BAD),
    E(statfs, EFAULT, BAD, BAD),
    E(fstatfs, EBADF, -1, BAD),
    E(access, EFAULT, BAD, F_OK),
    E(faccessat, EFAULT, AT_FDCWD, BAD, F_OK),
    E(faccessat2, EFAULT, AT_FDCWD, BAD, F_OK, 0),
    E(readlink, EFAULT, BAD, BAD, 1),
    E(readlinkat, EFAULT, AT_FDCWD, BAD, BAD, 1),
    E(getdents, EBADF, -1, BAD, 1),
    E(getdents64, EBADF, -1, BAD, 1),
    /* the path is built, then copied out to BAD */
    E(getcwd, EFAULT, BAD, 4096),
    E(chdir, EFAULT, BAD),
    E(fchdir, EBADF, -1),
    E(mkdir, EFAULT, BAD, 0700),
    E(mkdirat, EFAULT, AT_FDCWD, BAD, 0700),
    E(rmdir, EFAULT, BAD),
    E(unlink, EFAULT, BAD),
    E(unlinkat, EFAULT, AT_FDCWD, BAD, 0),
    E(rename, EFAULT, BAD, BAD),
    E(renameat, EFAULT, AT_FDCWD, BAD, AT_FDCWD, BAD),
    E(renameat2, EFAULT, AT_FDCWD, BAD, AT_FDCWD, BAD, 0),
    E(link, EFAULT, BAD, BAD),
    E(linkat, EFAULT, AT_FDCWD, BAD, AT_FDCWD, BAD, 0),
    E(symlink, EFAULT, BAD, BAD),
    E(symlinkat, EFAULT, BAD, AT_FDCWD, BAD),
    E(chmod, EFAULT, BAD, 0600),
    E(fchmod, EBADF, -1, 0600),
    E(fchmodat, EFAULT, AT_FDCWD, BAD, 0600),
    E(fchmodat2, EFAULT, AT_FDCWD, BAD, 0600, 0),
    E(chown, EFAULT, BAD, -1, -1),
    E(fchown, EBADF, -1, -1, -1),
    E(lchown, EFAULT, BAD, -1, -1),
    E(fchownat, EFAULT, AT_FDCWD, BAD, -1, -1, 0),
    /* returns the old mask; 022 is what the probe runs with anyway */
    E(umask, OK, 022),
    E(utime, EFAULT, BAD, 0),
    E(utimes, EFAULT, BAD, 0),
    E(utimensat, EFAULT, AT_FDCWD, BAD, 0, 0),
    E(futimesat, EFAULT, AT_FDCWD, BAD, 0),
    E(mknod, EFAULT, BAD, S_IFREG | 0600, 0),
    E(mknodat, EFAULT, AT_FDCWD, BAD, S_IFREG | 0600, 0),
    E(getxattr, EFAULT, BAD, BAD, BAD, 1),
    E(lgetxattr, EFAULT, BAD, BAD, BAD, 1),
    E(fgetxattr, EBADF, -1, XNAME, BAD, 1),
    E(listxattr, EFAULT, BAD, BAD, 1),
    E(llistxattr, EFAULT, BAD, BAD, 1),
    E(flistxattr, EBADF, -1, BAD, 1),
    E(setxattr, EFAULT, BAD, BAD, BAD, 1, 0),
    E(lsetxattr, EFAULT, BAD, BAD, BAD, 1, 0),
    E(fsetxattr, EBADF, -1, XNAME, Z, 1, 0),
    E(removexattr, EFAULT, BAD, BAD),
    E(lremovexattr, EFAULT, BAD, BAD),
    E(fremovexattr, EBADF, -1, XNAME),
    /* a new, empty inotify instance: harmless */
    E(inotify_init, OK),
    E(inotify_init1, EINVAL, -1),
    /* mask IN_ACCESS (a zero mask would be EINVAL before the fd lookup) */
    E(inotify_add_watch, EBADF, -1, BAD, IN_ACCESS),
    E(inotify_rm_watch, EBADF, -1, 1),

    /* Memory. */
    /* brk(0) only reports the current break */
    E(brk, OK, 0),
    /* length 0 */
    E(mmap, EINVAL, 0, 0, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0),
    /* unaligned address 1 */
    E(munmap, EINVAL, 1, 1),
    E(mprotect, EINVAL, 1, 1, PROT_READ),
    E(mremap, EINVAL, 1, 1, 1, 0),
    E(madvise, EINVAL, 1, 1, MADV_NORMAL),
    E(msync, EINVAL, 1, 1, MS_SYNC),
    E(mincore, EINVAL, 1, 1, BAD),
    /* the first page has no mapping (needs RLIMIT_MEMLOCK > 0, the default) */
    E(mlock, ENOMEM, 0, 4096),
    /* unknown flags */
    E(mlock2, EINVAL, 0, 4096, -1),
    E(munlock, ENOMEM, 0, 4096),
    /* flags 0 */
    E(mlockall, EINVAL, 0),
    /* nothing is locked: a no-op */
    E(munlockall, OK),
    E(memfd_create, EFAULT, BAD, 0),
    /* unknown command */
    E(membarrier, EINVAL, -1, 0, 0),
    E(pkey_alloc, EINVAL, -1, 0),
    E(pkey_free, EINVAL, -1),
    E(pkey_mprotect, EINVAL, 1, 1, 0, -1),

    /* SysV and POSIX IPC. */
    /* size above shmmax */
    E(shmget, EINVAL, IPC_PRIVATE, -1, 0),
    /* negative ids */
    E(shmat, EINVAL, -1, 0, 0),
    E(shmdt, EINVAL, 1),
    E(shmctl, EINVAL, -1, IPC_STAT, BAD),
    /* negative nsems */
    E(semget, EINVAL, IPC_PRIVATE, -1, 0),
    /* the (zeroed) sembuf is copied before the id is checked */
    E(semop, EINVAL, -1, Z, 1),
    E(semctl, EINVAL, -1, 0, IPC_STAT, BAD),
    E(semtimedop, EINVAL, -1, Z, 1, 0),
    /* a key nobody created, no IPC_CREAT */
    E(msgget, ENOENT, 0x5717c0de, 0),
    /* mtype (0, invalid) is read first */
    E(msgsnd, EINVAL, -1, Z, 1, 0),
    E(msgrcv, EINVAL, -1, BAD, 1, 0, 0),
    E(msgctl, EINVAL, -1, IPC_STAT, BAD),
    E(mq_open, EFAULT, BAD, O_RDONLY, 0, 0),
    E(mq_unlink, EFAULT, BAD),
    E(mq_timedsend, EBADF, -1, BAD, 1, 0, 0),
    E(mq_timedreceive, EBADF, -1, BAD, 1, 0, 0),
    E(mq_notify, EBADF, -1, 0),
    E(mq_getsetattr, EBADF, -1, 0, 0),

    /* Processes and threads. */
    E(execve, EFAULT, BAD, 0, 0),
    E(execveat, EFAULT, AT_FDCWD, BAD, 0, 0, 0),
    E(wait4, ECHILD, -1, 0, WNOHANG, 0),
    /* infop NULL: waitid writes infop even on failure */
    E(waitid, ECHILD, P_ALL, 0, 0, WEXITED | WNOHANG, 0),
    C(set_tid_address, OK, 0),
    /* wrong head size */
    E(set_robust_list, EINVAL, BAD, 0),
    E(get_robust_list, EFAULT, 0, BAD, BAD),
    /* unknown flags */
    E(rseq, EINVAL, BAD, 32, -1, 0),
    E(futex, EFAULT, BAD, 0 /* FUTEX_WAIT */, 0, 0),
    /* zero futexes */
    E(futex_waitv, EINVAL, 0, 0, 0, 0, 0),
    /* 0x1003 = ARCH_GET_FS, stored to BAD */
    E(arch_prctl, EFAULT, 0x1003, BAD),
    /* an option number no kernel defines */
    E(prctl, EINVAL, 0x5717, 0, 0, 0, 0),
    E(pidfd_open, EINVAL, -1, 0),
    E(pidfd_send_signal, EBADF, -1, 0, 0, 0),
    /* nothing to restart */
    E(restart_syscall, EINTR),
    E(getpid, OK),
    E(getppid, OK),
    E(gettid, OK),
    E(getpgid, OK, 0),
    /* negative pgid */
    E(setpgid, EINVAL, 0, -1),
    E(getpgrp, OK),
    E(getsid, OK, 0),
    /* in a child, which is never a group leader: a new session, then exit */
    C(setsid, OK),
    E(getuid, OK),
    E(geteuid, OK),
    E(getgid, OK),
    E(getegid, OK),
    /* negative size */
    E(getgroups, EINVAL, -1, 0),
    E(getresuid, EFAULT, BAD, BAD, BAD),
    E(getresgid, EFAULT, BAD, BAD, BAD),
    /* uid -1 is never valid for setuid/setgid */
    E(setuid, EINVAL, -1),
    E(setgid, EINVAL, -1),
    /* -1 means "unchanged": a no-op */
    E(setreuid, OK, -1, -1),
    E(setregid, OK, -1, -1),
    E(setresuid, OK, -1, -1, -1),
    E(setresgid, OK, -1, -1, -1),
    /* an invalid id only reports the current fsuid/fsgid */
    E(setfsuid, OK, -1),
    E(setfsgid, OK, -1),
    E(capget, EFAULT, BAD, BAD),
    E(capset, EFAULT, BAD, BAD),
    /* unknown `which` */
    E(getpriority, EINVAL, -1, 0),
    E(setpriority, EINVAL, -1, 0, 0),
    E(ioprio_get, EINVAL, -1, 0),
    E(ioprio_set, EINVAL, -1, 0, 0),
    E(sched_yield, OK),
    /* a 0-byte mask is smaller than nr_cpu_ids */
    E(sched_getaffinity, EINVAL, 0, 0, BAD),
    E(sched_setaffinity, EFAULT, 0, 8, BAD),
    /* negative pid */
    E(sched_getparam, EINVAL, -1, BAD),
    E(sched_setparam, EINVAL, -1, BAD),
    E(sched_getscheduler, EINVAL, -1),
    E(sched_setscheduler, EINVAL, -1, 0, BAD),
    /* unknown policy */
    E(sched_get_priority_max, EINVAL, -1),
    E(sched_get_priority_min, EINVAL, -1),
    E(sched_rr_get_interval, EINVAL, -1, BAD),
    /* size 0 */
    E(sched_getattr, EINVAL, 0, BAD, 0, 0),
    /* unknown flags */
    E(sched_setattr, EINVAL, 0, BAD, -1),
    E(getcpu, EFAULT, BAD, BAD, 0),
    E(getrlimit, EFAULT, RLIMIT_NOFILE, BAD),
    E(setrlimit, EFAULT, RLIMIT_NOFILE, BAD),
    E(prlimit64, EFAULT, 0, RLIMIT_NOFILE, BAD, 0),
    E(getrusage, EFAULT, RUSAGE_SELF, BAD),
    E(times, EFAULT, BAD),
    E(sysinfo, EFAULT, BAD),
    E(uname, EFAULT, BAD),

    /* Signals (sigset size 8 = _NSIG / 8). */
    E(rt_sigaction, EFAULT, SIGUSR1, BAD, 0, 8),
    E(rt_sigprocmask, EFAULT, SIG_BLOCK, BAD, 0, 8),
    E(rt_sigpending, EFAULT, BAD, 8),
    E(rt_sigtimedwait, EFAULT, BAD, 0, 0, 8),
    /* the siginfo is copied before the target is looked at */
    E(rt_sigqueueinfo, EFAULT, -1, SIGUSR1, BAD),
    E(rt_tgsigqueueinfo, EFAULT, -1, -1, SIGUSR1, BAD),
    E(rt_sigsuspend, EFAULT, BAD, 8),
    E(sigaltstack, EFAULT, BAD, 0),
    /* signal 0 to a pid above any pid_max (2^22) */
    E(kill, ESRCH, 0x3fffffff, 0),
    /* tid <= 0 */
    E(tkill, EINVAL, -1, 0),
    E(tgkill, EINVAL, -1, -1, 0),
    /* cancels nothing, returns 0 */
    E(alarm, OK, 0),
    E(signalfd, EFAULT, -1, BAD, 8),
    E(signalfd4, EFAULT, -1, BAD, 8, 0),

    /* Time and timers (raw syscalls: never the vDSO). */
    E(clock_gettime, EFAULT, CLOCK_MONOTONIC, BAD),
    E(clock_getres, EFAULT, CLOCK_MONOTONIC, BAD),
    E(clock_nanosleep, EFAULT, CLOCK_MONOTONIC, 0, BAD, 0),
    E(gettimeofday, EFAULT, BAD, 0),
    E(time, EFAULT, BAD),
    E(nanosleep, EFAULT, BAD, 0),
    E(getitimer, EFAULT, ITIMER_REAL, BAD),
    E(setitimer, EFAULT, ITIMER_REAL, BAD, 0),
    E(timer_create, EFAULT, CLOCK_MONOTONIC, BAD, BAD),
    E(timer_settime, EFAULT, -1, 0, BAD, 0),
    /* no such timer */
    E(timer_gettime, EINVAL, -1, BAD),
    E(timer_getoverrun, EINVAL, -1),
    E(timer_delete, EINVAL, -1),
    E(timerfd_create, EINVAL, -1, 0),
    E(timerfd_settime, EFAULT, -1, 0, BAD, 0),
    E(timerfd_gettime, EBADF, -1, BAD),

    /* Waiting on many fds, eventfd, pipes. */
    E(poll, EFAULT, BAD, 1, 0),
    E(ppoll, EFAULT, BAD, 1, 0, 0, 8),
    /* negative nfds */
    E(select, EINVAL, -1, 0, 0, 0, 0),
    E(pselect6, EINVAL, -1, 0, 0, 0, 0, 0),
    /* size 0 */
    E(epoll_create, EINVAL, 0),
    E(epoll_create1, EINVAL, -1),
    /* 1 = EPOLL_CTL_ADD: the event is copied first */
    E(epoll_ctl, EFAULT, -1, 1, -1, BAD),
    E(epoll_wait, EBADF, -1, BAD, 1, 0),
    E(epoll_pwait, EBADF, -1, BAD, 1, 0, 0, 8),
    E(epoll_pwait2, EBADF, -1, BAD, 1, 0, 0, 8),
    /* a new eventfd: harmless */
    E(eventfd, OK, 0),
    E(eventfd2, EINVAL, 0, -1),
    E(pipe, EFAULT, BAD),
    E(pipe2, EFAULT, BAD, 0),

    /* Sockets (socket/socketpair themselves: mode socket). */
    E(bind, EBADF, -1, BAD, 16),
    E(listen, EBADF, -1, 1),
    E(accept, EBADF, -1, 0, 0),
    E(accept4, EBADF, -1, 0, 0, 0),
    E(connect, EBADF, -1, BAD, 16),
    E(getsockname, EBADF, -1, BAD, BAD),
    E(getpeername, EBADF, -1, BAD, BAD),
    E(sendto, EBADF, -1, BAD, 1, 0, 0, 0),
    E(recvfrom, EBADF, -1, BAD, 1, 0, 0, 0),
    E(sendmsg, EBADF, -1, BAD, 0),
    E(recvmsg, EBADF, -1, BAD, 0),
    E(sendmmsg, EBADF, -1, BAD, 1, 0),
    E(recvmmsg, EBADF, -1, BAD, 1, 0, 0),
    E(shutdown, EBADF, -1, 0),
    E(setsockopt, EBADF, -1, 0, 0, BAD, 4),
    E(getsockopt, EBADF, -1, 0, 0, BAD, BAD),
    /* the argument-checked calls, on their allowed path */
    E(socketpair, EFAULT, AF_UNIX, SOCK_STREAM, 0, BAD),
    E(ioctl, EBADF, -1, TCGETS, BAD),
    E(personality, OK, 0xffffffff),

    /* Randomness. */
    E(getrandom, EFAULT, BAD, 16, 0),

    /* Self-restriction. */
    /* unknown operation */
    E(seccomp, EINVAL, -1, 0, 0),
    /* unknown flags */
    E(landlock_create_ruleset, EINVAL, 0, 0, -1),
    E(landlock_add_rule, EBADF, -1, 1, BAD, 0),
    /* without no_new_privs (or CAP_SYS_ADMIN) the kernel says EPERM before
     * looking at the fd: set it first, as the sandbox does, so the host
     * control gives the same answer for an unprivileged caller */
    N(landlock_restrict_self, EBADF, -1, 0),
};

static int mode_allow(void) {
    for (size_t i = 0; i < sizeof ALLOWED / sizeof ALLOWED[0]; i++) {
        const struct allowed *c = &ALLOWED[i];
        long r;
        int err;
        if (c->flags & IN_CHILD) {
            int p[2];
            if (pipe(p) < 0) return 3;
            pid_t pid = fork();
            if (pid == 0) {
                if ((c->flags & NNP) && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)) _exit(2);
                long rr = raw6(c->nr, c->a);
                long msg[2] = {rr, errno};
                ssize_t w = write(p[1], msg, sizeof msg);
                _exit(w == (ssize_t)sizeof msg ? 0 : 1);
            }
            long msg[2] = {-1, 0};
            close(p[1]);
            if (pid < 0 || read(p[0], msg, sizeof msg) != (ssize_t)sizeof msg) {
                msg[0] = -1;
                msg[1] = 255;
            }
            close(p[0]);
            if (pid > 0) waitpid(pid, NULL, 0);
            r = msg[0];
            err = (int)msg[1];
        } else {
            r = raw6(c->nr, c->a);
            err = errno;
        }
        dprintf(1, "%s %ld %ld %d %d\n", c->name, c->nr, r, r < 0 ? err : 0, c->want);
    }
    return 0;
}

/* ------------------------------------------------------------------------ */
/* foreign ABIs                                                              */
/* ------------------------------------------------------------------------ */

/* The 32-bit entry from 64-bit code: the kernel sees AUDIT_ARCH_I386 and the
 * i386 numbers (20 = getpid, 1 = exit, 4 = write). */
static long int80(long nr, long b, long c, long d) {
    long r;
    __asm__ volatile("int $0x80"
                     : "=a"(r)
                     : "a"(nr), "b"(b), "c"(c), "d"(d)
                     : "memory", "r8", "r9", "r10", "r11");
    return r;
}

enum abi { X32, IA32 };
struct foreign {
    const char *label;
    enum abi abi;
    long nr;
    long a, b, c;
};

static const struct foreign FOREIGN[] = {
    /* x32: the x86_64 entry with __X32_SYSCALL_BIT set */
    {"x32_getpid", X32, X32_BIT + 39, 0, 0, 0},
    {"x32_write", X32, X32_BIT + 1, 1, BAD, 0},
    /* 512 = x32 rt_sigaction, an x32-only number */
    {"x32_rt_sigaction", X32, X32_BIT + 512, -1, 0, 0},
    /* nr -1 = 0xffffffff in seccomp_data.nr: the x32 bit is set */
    {"nr_minus_one", X32, -1, 0, 0, 0},
    /* ia32 via int $0x80 */
    {"ia32_getpid", IA32, 20, 0, 0, 0},
    /* ia32 write(-1, BAD, 1): EBADF if it ran */
    {"ia32_write", IA32, 4, -1, BAD, 1},
    /* ia32 exit(42): exit=42 if it ran */
    {"ia32_exit", IA32, 1, 42, 0, 0},
};

static long foreign_call(const struct foreign *f) {
    errno = 0;
    if (f->abi == X32) return syscall(f->nr, f->a, f->b, f->c);
    long r = int80(f->nr, f->a, f->b, f->c);
    if (r < 0 && r > -4096) {
        errno = (int)-r;
        return -1;
    }
    return r;
}

static int mode_abi(void) {
    for (size_t i = 0; i < sizeof FOREIGN / sizeof FOREIGN[0]; i++) {
        const struct foreign *f = &FOREIGN[i];
        pid_t pid = fork();
        if (pid == 0) {
            long r = foreign_call(f);
            line(f->label, f->nr, r, errno);
            _exit(0);
        }
        if (pid < 0) {
            dprintf(1, "%s wait error=%d\n", f->label, errno);
            continue;
        }
        report_wait(f->label, pid);
    }
    return 0;
}

/* One foreign-ABI getpid in this very process: the sandbox reports 128+SIGSYS. */
static int mode_direct(enum abi abi) {
    const struct foreign *f = &FOREIGN[abi == X32 ? 0 : 4];
    long r = foreign_call(f);
    line(f->label, f->nr, r, errno);
    return 0;
}

/* ------------------------------------------------------------------------ */
/* process creation                                                          */
/* ------------------------------------------------------------------------ */

/* struct clone_args of <linux/sched.h> (CLONE_ARGS_SIZE_VER2 = 88 bytes). */
struct clone_args_v2 {
    uint64_t flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size,
        tls, set_tid, set_tid_size, cgroup;
};

static void *thread_main(void *arg) {
    *(int *)arg = 42;
    return arg;
}

static int mode_spawn(const char *self) {
    /* clone3 with valid arguments (a plain fork): ENOSYS from the filter; if
     * it ever ran, the child exits at once. */
    struct clone_args_v2 ca;
    memset(&ca, 0, sizeof ca);
    ca.exit_signal = SIGCHLD;
    errno = 0;
    long r = syscall(SYS_clone3, &ca, sizeof ca);
    if (r == 0) _exit(0);
    line("clone3", SYS_clone3, r, errno);
    if (r > 0) report_wait("clone3", (pid_t)r);
    /* clone3 with a bad pointer: still ENOSYS, the struct is never read */
    errno = 0;
    r = syscall(SYS_clone3, BAD, sizeof ca);
    line("clone3_badptr", SYS_clone3, r, errno);

    /* glibc fork() (clone(SIGCHLD) underneath) */
    pid_t pid = fork();
    if (pid == 0) _exit(7);
    line("fork", -1, pid, errno);
    if (pid > 0) report_wait("fork", pid);

    /* the raw fork and vfork syscalls */
    errno = 0;
    r = syscall(SYS_fork);
    if (r == 0) _exit(7);
    line("sys_fork", SYS_fork, r, errno);
    if (r > 0) report_wait("sys_fork", (pid_t)r);
    pid = vfork();
    if (pid == 0) _exit(7);
    line("vfork", SYS_vfork, pid, errno);
    if (pid > 0) report_wait("vfork", pid);

    /* posix_spawn: glibc tries clone3 first and falls back to clone on ENOSYS */
    char *args[] = {(char *)self, "exit", "7", NULL};
    char *envp[] = {NULL};
    pid = 0;
    int rc = posix_spawn(&pid, self, NULL, NULL, args, envp);
    line("posix_spawn", -1, rc == 0 ? 0 : -1, rc);
    if (rc == 0) report_wait("posix_spawn", pid);

    /* pthread_create: clone3 first in glibc >= 2.34, then clone */
    pthread_t t;
    int value = 0;
    rc = pthread_create(&t, NULL, thread_main, &value);
    line("pthread_create", -1, rc == 0 ? 0 : -1, rc);
    if (rc == 0) {
        void *ret = NULL;
        rc = pthread_join(t, &ret);
        line("pthread_join", -1, rc == 0 ? value : -1, rc);
    }
    return 0;
}

struct clone_case {
    const char *label;
    unsigned long flags;
};

static int mode_clone(void) {
    static const struct clone_case cases[] = {
        /* allowed: no namespace flag (also with garbage in the high half,
         * which the kernel drops: clone's flags are 32 bits wide) */
        {"clone_plain", SIGCHLD},
        {"clone_plain_hi", (1UL << 32) | SIGCHLD},
        {"clone_plain_allhi", 0xffffffff00000000UL | SIGCHLD},
        /* refused: every CLONE_NEW* flag */
        {"clone_NEWNS", CLONE_NEWNS | SIGCHLD},
        {"clone_NEWCGROUP", CLONE_NEWCGROUP | SIGCHLD},
        {"clone_NEWUTS", CLONE_NEWUTS | SIGCHLD},
        {"clone_NEWIPC", CLONE_NEWIPC | SIGCHLD},
        {"clone_NEWUSER", CLONE_NEWUSER | SIGCHLD},
        {"clone_NEWPID", CLONE_NEWPID | SIGCHLD},
        {"clone_NEWNET", CLONE_NEWNET | SIGCHLD},
        /* 0x80 sits in clone's exit-signal byte: the kernel alone would
         * create a child with exit signal 0x91; the filter says EPERM */
        {"clone_NEWTIME", CLONE_NEWTIME | SIGCHLD},
        /* high bits do not hide a namespace flag */
        {"clone_NEWUSER_hi", (1UL << 32) | CLONE_NEWUSER | SIGCHLD},
        {"clone_NEWUSER_allhi", 0xffffffff00000000UL | CLONE_NEWUSER | SIGCHLD},
        {"clone_NEWNET_NEWNS", CLONE_NEWNET | CLONE_NEWNS | SIGCHLD},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        errno = 0;
        long r = syscall(SYS_clone, cases[i].flags, 0, 0, 0, 0);
        if (r == 0) _exit(7);
        line(cases[i].label, SYS_clone, r, errno);
        if (r > 0) report_wait(cases[i].label, (pid_t)r);
    }
    return 0;
}

/* ------------------------------------------------------------------------ */
/* argument-checked calls                                                    */
/* ------------------------------------------------------------------------ */

struct call3 {
    const char *label;
    long nr;
    long a, b, c, d;
};

static void run3(const struct call3 *cases, size_t n) {
    for (size_t i = 0; i < n; i++) {
        errno = 0;
        long r = syscall(cases[i].nr, cases[i].a, cases[i].b, cases[i].c, cases[i].d);
        line(cases[i].label, cases[i].nr, r, errno);
        if (r >= 0 && cases[i].nr == SYS_socket) close((int)r);
    }
}

static int mode_ioctl(void) {
    static const struct call3 cases[] = {
        /* refused: fd -1 would be EBADF if the kernel saw the call */
        {"ioctl_TIOCSTI", SYS_ioctl, -1, TIOCSTI, BAD},
        {"ioctl_TIOCSTI_hi", SYS_ioctl, -1, HI | TIOCSTI, BAD},
        /* a real fd (stdin): still refused before the tty check (ENOTTY) */
        {"ioctl_TIOCSTI_fd0", SYS_ioctl, 0, TIOCSTI, BAD},
        {"ioctl_TIOCLINUX", SYS_ioctl, -1, TIOCLINUX, BAD},
        {"ioctl_TIOCLINUX_hi", SYS_ioctl, -1, HI | TIOCLINUX, BAD},
        {"ioctl_TIOCSETD", SYS_ioctl, -1, TIOCSETD, BAD},
        {"ioctl_TIOCSETD_hi", SYS_ioctl, -1, HI | TIOCSETD, BAD},
        {"ioctl_TIOCCONS", SYS_ioctl, -1, TIOCCONS, BAD},
        {"ioctl_TIOCCONS_hi", SYS_ioctl, -1, HI | TIOCCONS, BAD},
        /* allowed: the kernel says EBADF */
        {"ioctl_TCGETS", SYS_ioctl, -1, TCGETS, BAD},
        {"ioctl_TCGETS_hi", SYS_ioctl, -1, HI | TCGETS, BAD},
        {"ioctl_FIONREAD", SYS_ioctl, -1, FIONREAD, BAD},
        {"ioctl_TIOCGWINSZ", SYS_ioctl, -1, TIOCGWINSZ, BAD},
        /* allowed on a real fd: stdin is /dev/null, not a tty */
        {"ioctl_TCGETS_fd0", SYS_ioctl, 0, TCGETS, BAD},
    };
    run3(cases, sizeof cases / sizeof cases[0]);
    return 0;
}

static int mode_socket(void) {
    /* Type 15 is >= SOCK_MAX and protocol 0x7fff is out of range: the kernel
     * alone answers EINVAL / EPROTONOSUPPORT for those, so the filter's
     * EAFNOSUPPORT / EPERM cannot come from the kernel. */
    static const struct call3 cases[] = {
        /* families refused with EAFNOSUPPORT */
        {"socket_VSOCK", SYS_socket, AF_VSOCK, SOCK_STREAM, 0},
        {"socket_VSOCK_badtype", SYS_socket, AF_VSOCK, 15, 0},
        {"socket_ALG", SYS_socket, AF_ALG, SOCK_SEQPACKET, 0},
        {"socket_ALG_badtype", SYS_socket, AF_ALG, 15, 0},
        {"socket_PACKET", SYS_socket, AF_PACKET, SOCK_RAW, 0x0300 /* htons(ETH_P_ALL) */},
        {"socket_PACKET_badtype", SYS_socket, AF_PACKET, 15, 0},
        {"socket_PACKET_hi", SYS_socket, HI | AF_PACKET, SOCK_RAW, 0x0300},
        {"socket_BLUETOOTH", SYS_socket, AF_BLUETOOTH, SOCK_RAW, 0},
        {"socket_BLUETOOTH_badtype", SYS_socket, AF_BLUETOOTH, 15, 0},
        /* raw IP refused with EPERM (with flags, and with garbage high bits) */
        {"socket_INET_RAW", SYS_socket, AF_INET, SOCK_RAW, 1 /* ICMP */},
        {"socket_INET_RAW_badproto", SYS_socket, AF_INET, SOCK_RAW, 0x7fff},
        {"socket_INET_RAW_flags", SYS_socket, AF_INET, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK, 1},
        {"socket_INET_RAW_hi", SYS_socket, AF_INET, HI | SOCK_RAW, 1},
        {"socket_INET6_RAW", SYS_socket, AF_INET6, SOCK_RAW, 58 /* ICMPV6 */},
        {"socket_INET6_RAW_badproto", SYS_socket, AF_INET6, SOCK_RAW, 0x7fff},
        /* the kernel turns AF_INET + SOCK_PACKET into a packet socket; SCTP and
           DCCP are attack surface no tool needs: all EPERM */
        {"socket_INET_PACKET", SYS_socket, AF_INET, SOCK_PACKET, 0x0300 /* htons(ETH_P_ALL) */},
        {"socket_INET_PACKET_flags", SYS_socket, AF_INET, SOCK_PACKET | SOCK_CLOEXEC, 0x0300},
        {"socket_INET6_SEQPACKET", SYS_socket, AF_INET6, SOCK_SEQPACKET, 132 /* SCTP */},
        {"socket_INET_DCCP", SYS_socket, AF_INET, 6 /* SOCK_DCCP */, 0},
        /* allowed: these succeed */
        {"socket_UNIX_STREAM", SYS_socket, AF_UNIX, SOCK_STREAM, 0},
        {"socket_UNIX_DGRAM", SYS_socket, AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0},
        {"socket_UNIX_hi", SYS_socket, HI | AF_UNIX, SOCK_STREAM, 0},
        {"socket_INET_STREAM", SYS_socket, AF_INET, SOCK_STREAM, 0},
        {"socket_INET_DGRAM", SYS_socket, AF_INET, SOCK_DGRAM, 0},
        {"socket_INET6_STREAM", SYS_socket, AF_INET6, SOCK_STREAM, 0},
        {"socket_INET6_DGRAM", SYS_socket, AF_INET6, SOCK_DGRAM, 0},
        /* allowed family, kernel's own answer to a bad type: EINVAL */
        {"socket_INET_badtype", SYS_socket, AF_INET, 15, 0},
        /* netlink: ROUTE only */
        {"socket_NETLINK_ROUTE", SYS_socket, AF_NETLINK, SOCK_RAW, NETLINK_ROUTE},
        {"socket_NETLINK_ROUTE_dgram", SYS_socket, AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_ROUTE},
        {"socket_NETLINK_AUDIT", SYS_socket, AF_NETLINK, SOCK_RAW, NETLINK_AUDIT},
        {"socket_NETLINK_KOBJECT_UEVENT", SYS_socket, AF_NETLINK, SOCK_DGRAM, NETLINK_KOBJECT_UEVENT},
        /* an out-of-range protocol: the kernel alone says EPROTONOSUPPORT */
        {"socket_NETLINK_badproto", SYS_socket, AF_NETLINK, SOCK_RAW, 0x7fff},
    };
    run3(cases, sizeof cases / sizeof cases[0]);

    int sv[2];
    static const struct call3 pairs[] = {
        {"socketpair_UNIX", SYS_socketpair, AF_UNIX, SOCK_STREAM, 0, 0},
        /* only AF_UNIX pairs exist; the filter refuses the rest up front */
        {"socketpair_INET", SYS_socketpair, AF_INET, SOCK_STREAM, 0, 0},
        {"socketpair_INET_PACKET", SYS_socketpair, AF_INET, SOCK_PACKET, 0x0300, BAD},
        {"socketpair_PACKET", SYS_socketpair, AF_PACKET, SOCK_RAW, 0, BAD},
        {"socketpair_NETLINK", SYS_socketpair, AF_NETLINK, SOCK_RAW, 0, BAD},
        {"socketpair_VSOCK", SYS_socketpair, AF_VSOCK, SOCK_STREAM, 0, BAD},
    };
    for (size_t i = 0; i < sizeof pairs / sizeof pairs[0]; i++) {
        long d = pairs[i].d ? pairs[i].d : (long)sv;
        errno = 0;
        long r = syscall(SYS_socketpair, pairs[i].a, pairs[i].b, pairs[i].c, d);
        line(pairs[i].label, SYS_socketpair, r, errno);
        if (r == 0 && d == (long)sv) {
            close(sv[0]);
            close(sv[1]);
        }
    }
    return 0;
}

static int mode_personality(void) {
    /* The kernel alone would grant every one of these (returning the old
     * persona); only the filter says EPERM. */
    static const struct call3 cases[] = {
        {"personality_query", SYS_personality, 0xffffffffL},
        {"personality_query_hi", SYS_personality, HI | 0xffffffffL},
        {"personality_LINUX", SYS_personality, PER_LINUX},
        {"personality_LINUX32", SYS_personality, PER_LINUX32},
        {"personality_reset", SYS_personality, PER_LINUX},
        {"personality_ADDR_NO_RANDOMIZE", SYS_personality, ADDR_NO_RANDOMIZE},
        {"personality_ADDR_NO_RANDOMIZE_hi", SYS_personality, HI | ADDR_NO_RANDOMIZE},
        {"personality_READ_IMPLIES_EXEC", SYS_personality, READ_IMPLIES_EXEC},
        {"personality_UNAME26", SYS_personality, UNAME26},
        {"personality_LINUX32_ANR", SYS_personality, PER_LINUX32 | ADDR_NO_RANDOMIZE},
    };
    run3(cases, sizeof cases / sizeof cases[0]);
    return 0;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        dprintf(2, "usage: syscall_probe MODE [ARGS...]\n");
        return 2;
    }
    const char *m = argv[1];
    if (!strcmp(m, "call")) return mode_call(argc - 2, argv + 2);
    if (!strcmp(m, "allow")) return mode_allow();
    if (!strcmp(m, "abi")) return mode_abi();
    if (!strcmp(m, "x32")) return mode_direct(X32);
    if (!strcmp(m, "ia32")) return mode_direct(IA32);
    if (!strcmp(m, "spawn")) return mode_spawn(argv[0]);
    if (!strcmp(m, "clone")) return mode_clone();
    if (!strcmp(m, "ioctl")) return mode_ioctl();
    if (!strcmp(m, "socket")) return mode_socket();
    if (!strcmp(m, "personality")) return mode_personality();
    if (!strcmp(m, "exit") && argc > 2) return atoi(argv[2]);
    dprintf(2, "syscall_probe: unknown mode %s\n", m);
    return 2;
}
