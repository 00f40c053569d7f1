//! The seccomp layer inside real sandboxes, for root and for an unprivileged caller, probed
//! with raw syscalls by a C program (`tests/probes/syscall_probe.c`, compiled here with gcc).
//!
//! The bad-argument technique: every call carries arguments the kernel rejects harmlessly (a
//! bad pointer → EFAULT, fd -1 → EBADF, unknown flags → EINVAL, ...). An allowed call reaches
//! the kernel and fails with exactly that errno; a blocked call returns the policy's errno
//! without the kernel ever looking at the arguments. So each result says on which side of the
//! filter the call was, and the expectations come from `stockade::seccomp::Policy`, not from a
//! copy of its lists:
//!
//! - every syscall number 0..1024 the policy refuses returns its errno: EPERM, or ENOSYS
//!   (`clone3`, io_uring, named-but-unlisted, unknown numbers), never EFAULT/EBADF/EINVAL;
//!   ablation: lifting the refusals with `--syscalls-allow` brings the kernel's own answers back;
//!   numbers a host kernel runs without consulting seccomp at all (335 and 336 on the PVM guest
//!   kernel this was written on) are detected with a stacked marker filter and reported;
//! - every syscall the policy allows (bar a documented few) gets the kernel's harmless errno,
//!   the same as on the host (no over-blocking);
//! - x32 and ia32 calls kill the process with SIGSYS (not on the host);
//! - `clone3` is ENOSYS while fork, vfork, posix_spawn and threads work;
//! - the argument rules: `clone` namespace flags, terminal ioctls, socket families, netlink
//!   protocols and personality, also with garbage in the high 32 bits;
//! - `--syscalls-allow` / `--syscalls-deny` overrides, an unknown name refused with 125;
//! - the filter is attached before exec: the first instruction of a static program already
//!   runs filtered, and `/proc/self/status` shows `Seccomp: 2`, one filter, `NoNewPrivs: 1`.

#[macro_use]
mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;

use common::*;
use stockade::seccomp::{self, table, Decision, Policy};

for_each_caller! {
    root_policy_refusals_return_policy_errno_without_touching_arguments,
    user_policy_refusals_return_policy_errno_without_touching_arguments
        => refusals_exact;
    root_lifting_refusals_brings_kernel_answers_back,
    user_lifting_refusals_brings_kernel_answers_back
        => refusals_come_from_filter;
    root_allowed_syscalls_reach_kernel_and_fail_harmlessly,
    user_allowed_syscalls_reach_kernel_and_fail_harmlessly
        => allowlist_not_overblocked;
    root_x32_and_ia32_calls_killed_by_sigsys,
    user_x32_and_ia32_calls_killed_by_sigsys
        => foreign_abis_killed;
    root_clone3_enosys_while_fork_spawn_and_threads_work,
    user_clone3_enosys_while_fork_spawn_and_threads_work
        => clone3_enosys_processes_work;
    root_clone_namespace_flags_eperm_plain_clone_works,
    user_clone_namespace_flags_eperm_plain_clone_works
        => clone_namespace_flags;
    root_terminal_ioctls_eperm_others_reach_kernel,
    user_terminal_ioctls_eperm_others_reach_kernel
        => ioctl_rules;
    root_socket_families_and_netlink_protocols_filtered,
    user_socket_families_and_netlink_protocols_filtered
        => socket_rules;
    root_personality_only_linux_linux32_and_query,
    user_personality_only_linux_linux32_and_query
        => personality_rules;
    root_cli_overrides_deny_allow_and_unknown_name,
    user_cli_overrides_deny_allow_and_unknown_name
        => cli_overrides;
    root_first_instruction_runs_filtered_and_status_shows_filter,
    user_first_instruction_runs_filtered_and_status_shows_filter
        => filtered_from_first_instruction;
}

// ---------------------------------------------------------------------------------------------
// The probes: compiled once per test process into a dir every caller can read and execute
// ---------------------------------------------------------------------------------------------

static PROBE_DIR: OnceLock<PathBuf> = OnceLock::new();

extern "C" fn remove_probe_dir() {
    if let Some(dir) = PROBE_DIR.get() {
        let _ = fs::remove_dir_all(dir);
    }
}

fn probe_src(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/probes")
        .join(name)
}

fn gcc(args: &[&str]) {
    let out = Command::new("gcc")
        .args(args)
        .output()
        .expect("gcc not found: the syscall probes need a C compiler (apt-get install gcc)");
    assert!(
        out.status.success(),
        "gcc {args:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The dir holding `syscall_probe` and `first_insn`, 0755, removed at exit.
fn probe_dir() -> &'static Path {
    PROBE_DIR.get_or_init(|| {
        require_root();
        let dir = PathBuf::from(format!(
            "/tmp/stockade-it-probes-{}-{}",
            std::process::id(),
            random_hex(4)
        ));
        fs::create_dir(&dir).expect("create probe dir");
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).expect("chmod probe dir");
        // SAFETY: registering a plain extern "C" fn without captured state.
        unsafe { libc::atexit(remove_probe_dir) };
        let probe = dir.join("syscall_probe");
        let first = dir.join("first_insn");
        let (src, src_first) = (probe_src("syscall_probe.c"), probe_src("first_insn.c"));
        gcc(&[
            "-O1",
            "-Wall",
            "-pthread",
            "-o",
            probe.to_str().unwrap(),
            src.to_str().unwrap(),
        ]);
        gcc(&[
            "-static",
            "-nostdlib",
            "-ffreestanding",
            "-fno-stack-protector",
            "-fno-pie",
            "-no-pie",
            "-O1",
            "-Wall",
            "-o",
            first.to_str().unwrap(),
            src_first.to_str().unwrap(),
        ]);
        for bin in [&probe, &first] {
            fs::set_permissions(bin, fs::Permissions::from_mode(0o755)).expect("chmod probe");
        }
        dir
    })
}

fn probe_path(name: &str) -> String {
    probe_dir().join(name).to_str().unwrap().to_string()
}

/// `stockade run [OPTS] --ro PROBE_DIR -- PROBE ARGS...` as `caller`.
fn in_sandbox(caller: Caller, opts: &[String], program: &str, args: &[String]) -> Output {
    let dir = probe_dir().to_str().unwrap().to_string();
    let mut cmd = command(caller);
    cmd.args(opts)
        .args(["--ro", &dir, "--", &probe_path(program)])
        .args(args);
    cmd.output().expect("cannot spawn the stockade CLI")
}

/// The same probe on the host, without any sandbox, as the same caller (positive control).
fn on_host(caller: Caller, program: &str, args: &[String]) -> Output {
    let mut cmd = match caller {
        Caller::Root => Command::new(probe_path(program)),
        Caller::User => {
            test_user();
            let mut c = Command::new(find_tool("runuser"));
            c.args(["-u", TEST_USER, "--"]).arg(probe_path(program));
            c
        }
    };
    cmd.args(args).current_dir("/").stdin(Stdio::null());
    cmd.output().expect("cannot run the probe on the host")
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

// ---------------------------------------------------------------------------------------------
// Parsing the probe's lines
// ---------------------------------------------------------------------------------------------

/// One `LABEL NR RET ERRNO [WANT]` line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Call {
    nr: i64,
    ret: i64,
    errno: i32,
    want: Option<i32>,
}

impl Call {
    fn ok(&self) -> bool {
        self.ret >= 0
    }
}

/// Everything a probe printed, by label, in order.
struct Lines {
    calls: BTreeMap<String, Call>,
    order: Vec<String>,
    waits: BTreeMap<String, String>,
    /// `LABEL NR invisible`: seccomp never sees this number on this kernel.
    invisible: BTreeMap<String, i64>,
    all: String,
}

fn parse(out: &Output) -> Lines {
    let mut lines = Lines {
        calls: BTreeMap::new(),
        order: Vec::new(),
        waits: BTreeMap::new(),
        invisible: BTreeMap::new(),
        all: describe(out),
    };
    for l in stdout(out).lines() {
        let f: Vec<&str> = l.split_whitespace().collect();
        match f.as_slice() {
            [label, "wait", how] => {
                lines.waits.insert(label.to_string(), how.to_string());
            }
            [label, nr, "invisible"] => {
                if let Ok(nr) = nr.parse() {
                    lines.invisible.insert(label.to_string(), nr);
                }
            }
            [label, nr, ret, errno, rest @ ..] if rest.len() <= 1 => {
                let (Ok(nr), Ok(ret), Ok(errno)) = (nr.parse(), ret.parse(), errno.parse()) else {
                    continue;
                };
                let want = rest.first().and_then(|w| w.parse().ok());
                lines.order.push(label.to_string());
                lines.calls.insert(
                    label.to_string(),
                    Call {
                        nr,
                        ret,
                        errno,
                        want,
                    },
                );
            }
            _ => {}
        }
    }
    lines
}

impl Lines {
    #[track_caller]
    fn call(&self, label: &str) -> Call {
        *self
            .calls
            .get(label)
            .unwrap_or_else(|| panic!("no result for {label}\n{}", self.all))
    }

    /// How a child ended: `exit=N` or `signal=N`.
    #[track_caller]
    fn wait(&self, label: &str) -> &str {
        self.waits
            .get(label)
            .unwrap_or_else(|| panic!("no wait status for {label}\n{}", self.all))
    }

    /// The call failed with exactly `errno`.
    #[track_caller]
    fn fails(&self, label: &str, errno: i32) {
        let c = self.call(label);
        assert!(
            c.ret == -1 && c.errno == errno,
            "{label}: want -1 {}, got {c:?} ({})\n{}",
            errno_name(errno),
            errno_name(c.errno),
            self.all
        );
    }

    /// The call succeeded.
    #[track_caller]
    fn succeeds(&self, label: &str) -> i64 {
        let c = self.call(label);
        assert!(
            c.ok(),
            "{label}: want success, got {c:?} ({})\n{}",
            errno_name(c.errno),
            self.all
        );
        c.ret
    }

    /// A forked child ended as `how` (`exit=7`, `signal=31`).
    #[track_caller]
    fn child(&self, label: &str, how: &str) {
        assert_eq!(self.wait(label), how, "{label}\n{}", self.all);
    }
}

fn errno_name(e: i32) -> String {
    let name = match e {
        0 => "success",
        libc::EPERM => "EPERM",
        libc::ENOENT => "ENOENT",
        libc::ESRCH => "ESRCH",
        libc::EINTR => "EINTR",
        libc::EIO => "EIO",
        libc::E2BIG => "E2BIG",
        libc::EBADF => "EBADF",
        libc::ECHILD => "ECHILD",
        libc::ENOMEM => "ENOMEM",
        libc::EFAULT => "EFAULT",
        libc::EINVAL => "EINVAL",
        libc::ENOTTY => "ENOTTY",
        libc::ENOSYS => "ENOSYS",
        libc::EOPNOTSUPP => "EOPNOTSUPP",
        libc::EAFNOSUPPORT => "EAFNOSUPPORT",
        libc::EPROTONOSUPPORT => "EPROTONOSUPPORT",
        _ => return format!("errno {e}"),
    };
    name.to_string()
}

const SIGSYS_EXIT: i32 = 128 + libc::SIGSYS;

/// The test process itself runs without a seccomp filter (a bare host, not a container with
/// its own profile): the host-side positive controls then show the kernel's own answers.
fn host_unfiltered() -> bool {
    let status = fs::read_to_string("/proc/self/status").expect("read /proc/self/status");
    status_field(&status, "Seccomp") == Some("0")
}

// ---------------------------------------------------------------------------------------------
// What the policy says
// ---------------------------------------------------------------------------------------------

/// Which part of the policy refuses a number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Group {
    /// Refused with EPERM by name.
    Eperm,
    /// Refused with another errno by name (the ENOSYS list).
    NamedErrno,
    /// Not in the policy: the default errno (named-but-unlisted and unknown numbers alike).
    Default,
}

/// Every number below 1024 the default policy refuses outright: (label, nr, errno, group).
/// 0..1024 covers the whole x86_64 table, the x32 compat range 512..548 (without the x32 bit)
/// and hundreds of numbers no kernel has assigned yet.
fn refused_by_default() -> Vec<(String, i64, i32, Group)> {
    let map = Policy::default()
        .resolve()
        .expect("default policy resolves");
    let names: BTreeMap<i64, &str> = seccomp::known().map(|(n, nr)| (nr, n)).collect();
    let mut v = Vec::new();
    for nr in 0..1024i64 {
        match map.get(&nr) {
            Some((_, Decision::Allow | Decision::Args(_) | Decision::Gate)) => {}
            Some((name, Decision::Errno(e))) => {
                let group = if *e == libc::EPERM {
                    Group::Eperm
                } else {
                    Group::NamedErrno
                };
                v.push((name.to_string(), nr, *e, group));
            }
            None => {
                let label = names
                    .get(&nr)
                    .map_or_else(|| format!("nr{nr}"), |n| n.to_string());
                v.push((label, nr, table::DEFAULT_ERRNO, Group::Default));
            }
        }
    }
    v
}

// ---------------------------------------------------------------------------------------------
// 1. Refusals: the policy's errno, never the kernel's answer to the garbage arguments
// ---------------------------------------------------------------------------------------------

fn refusals_exact(caller: Caller) {
    let refused = refused_by_default();
    // `call NAME=NR` passes -1 in all six arguments: a bad pointer, a bad fd and unknown flags
    // at once, so the kernel would answer EFAULT/EBADF/EINVAL (or ENOSYS for numbers it does
    // not have) if it ever saw the call. unshare(0) is a no-op success for the kernel.
    // `--visible-only` first checks, in a child with a stacked marker filter, that seccomp sees
    // the number at all on this kernel (some hosts handle a few numbers before seccomp runs:
    // no filter can refuse those, so they are reported, not held against the policy).
    let mut args: Vec<String> = vec!["call".into(), "--visible-only".into()];
    args.extend(refused.iter().map(|(l, nr, _, _)| format!("{l}={nr}")));
    args.push(format!("unshare_nothing={},0", libc::SYS_unshare));
    let out = in_sandbox(caller, &[], "syscall_probe", &args);
    assert_code(&out, 0);
    let lines = parse(&out);

    // At most a handful of numbers may bypass seccomp on a host, and never a named one.
    assert!(
        lines.invisible.len() <= 4 && lines.invisible.keys().all(|l| l.starts_with("nr")),
        "seccomp does not see these syscalls on this kernel: {:?}\n{}",
        lines.invisible,
        lines.all
    );
    if !lines.invisible.is_empty() {
        eprintln!(
            "note: this kernel runs syscalls {:?} without consulting seccomp (no filter can \
             refuse them; a host property, not the policy's)",
            lines.invisible.values().collect::<Vec<_>>()
        );
    }

    let mut wrong = Vec::new();
    let mut counts: BTreeMap<Group, usize> = BTreeMap::new();
    for (label, nr, errno, group) in &refused {
        if lines.invisible.contains_key(label) {
            continue;
        }
        match lines.calls.get(label) {
            Some(c) if c.nr == *nr && c.ret == -1 && c.errno == *errno => {
                *counts.entry(*group).or_default() += 1;
            }
            got => wrong.push(format!(
                "{label} ({nr}, {group:?}): want {}, got {}",
                errno_name(*errno),
                got.map_or("nothing".into(), |c| format!(
                    "ret {} {}",
                    c.ret,
                    errno_name(c.errno)
                ))
            )),
        }
    }
    assert!(
        wrong.is_empty(),
        "{} refused syscalls did not return the policy's errno:\n{}\n{}",
        wrong.len(),
        wrong.join("\n"),
        lines.all
    );
    lines.fails("unshare_nothing", libc::EPERM);

    // What the brief names explicitly, whatever the table says today (335, the first number
    // after the table's last, is checked only where seccomp can see it at all).
    for name in [
        "clone3",
        "io_uring_setup",
        "io_uring_enter",
        "io_uring_register",
        "nr335",
        "nr337",
        "nr471",
        "nr600",
        "nr1023",
    ] {
        if !lines.invisible.contains_key(name) {
            lines.fails(name, libc::ENOSYS);
        }
    }
    for name in [
        "mount",
        "unshare",
        "setns",
        "ptrace",
        "bpf",
        "kexec_load",
        "reboot",
    ] {
        lines.fails(name, libc::EPERM);
    }
    // Sanity of the derivation: the groups are all populated.
    assert!(counts[&Group::Eperm] >= 50, "{counts:?}");
    assert!(counts[&Group::NamedErrno] >= 4, "{counts:?}");
    assert!(counts[&Group::Default] >= 600, "{counts:?}");
    eprintln!(
        "refused and checked: {counts:?} (+ unshare(0)); seccomp-invisible here: {:?}",
        lines.invisible.values().collect::<Vec<_>>()
    );
}

/// Ablation: the same garbage calls with every named refusal lifted by `--syscalls-allow`
/// reach the kernel, which answers differently (EFAULT, EINVAL, EBADF, ...): the errno seen
/// above is the filter's, not the kernel's. Calls the kernel itself refuses with EPERM without
/// capabilities (reboot, acct, ...) cannot tell the layers apart and are only reported.
fn refusals_come_from_filter(caller: Caller) {
    let named: Vec<(String, i64, i32)> = refused_by_default()
        .into_iter()
        .filter(|(_, _, _, g)| *g != Group::Default)
        .map(|(l, nr, e, _)| (l, nr, e))
        .collect();
    let mut opts = Vec::new();
    for (name, _, _) in &named {
        opts.push("--syscalls-allow".to_string());
        opts.push(name.clone());
    }
    let mut args: Vec<String> = vec!["call".into()];
    args.extend(named.iter().map(|(l, nr, _)| format!("{l}={nr}")));
    args.push(format!("unshare_nothing={},0", libc::SYS_unshare));
    let out = in_sandbox(caller, &opts, "syscall_probe", &args);
    assert_code(&out, 0);
    let lines = parse(&out);
    for (name, _, _) in &named {
        lines.call(name);
    }
    // unshare(0) is a no-op success once the filter lets it through.
    assert_eq!(lines.succeeds("unshare_nothing"), 0);
    // These read their (garbage) arguments before any privilege check, on any kernel.
    for name in [
        "mount",
        "umount2",
        "chroot",
        "unshare",
        "setns",
        "ptrace",
        "process_vm_readv",
        "process_vm_writev",
        "kcmp",
        "settimeofday",
        "clock_settime",
        "adjtimex",
        "clock_adjtime",
        "set_mempolicy",
        "mbind",
        "clone3",
    ] {
        let (_, _, policy_errno) = named
            .iter()
            .find(|(l, _, _)| l == name)
            .unwrap_or_else(|| panic!("{name} is no longer refused by name"));
        let c = lines.call(name);
        assert!(
            !(c.ret == -1 && c.errno == *policy_errno),
            "{name}: with the filter lifted the kernel should answer the garbage arguments \
             itself, got {} again\n{}",
            errno_name(c.errno),
            lines.all
        );
    }
    let same: Vec<&str> = named
        .iter()
        .filter(|(l, _, e)| {
            let c = lines.call(l);
            c.ret == -1 && c.errno == *e
        })
        .map(|(l, _, _)| l.as_str())
        .collect();
    eprintln!(
        "lifted {} refusals; the kernel itself gives the policy's errno for: {same:?}",
        named.len()
    );
}

// ---------------------------------------------------------------------------------------------
// 2. No over-blocking
// ---------------------------------------------------------------------------------------------

/// Allowed syscalls the `allow` table leaves out, each covered elsewhere or impossible to call
/// harmlessly (see the comment above the table in syscall_probe.c).
const NOT_IN_ALLOW_TABLE: &[&str] = &[
    // exercised by mode spawn / clone / socket, or by every run
    "clone",
    "fork",
    "vfork",
    "socket",
    "exit",
    "exit_group",
    // no failing form, or blocks, or disturbs the probe
    "sync",
    "pause",
    "rt_sigreturn",
    // the kernel says EPERM before reading any argument without CAP_SETGID
    "setgroups",
];

fn allowlist_not_overblocked(caller: Caller) {
    let map = Policy::default()
        .resolve()
        .expect("default policy resolves");
    let out = in_sandbox(caller, &[], "syscall_probe", &strings(&["allow"]));
    assert_code(&out, 0);
    let lines = parse(&out);
    let host = parse(&on_host(caller, "syscall_probe", &strings(&["allow"])));

    let mut wrong = Vec::new();
    let mut probed = BTreeSet::new();
    for name in &lines.order {
        let c = lines.call(name);
        let want = c.want.expect("allow lines carry the documented errno");
        // The probe's number is the table's number for that name, and the policy allows it.
        assert_eq!(
            seccomp::lookup(name).map(|(_, nr)| nr),
            Some(c.nr),
            "{name}: the probe's syscall number {} is not the table's",
            c.nr
        );
        let decision = map.get(&c.nr).map(|(_, d)| *d);
        assert!(
            matches!(decision, Some(Decision::Allow | Decision::Args(_))),
            "{name} is in the probe's must-allow table but the policy refuses it: {decision:?}"
        );
        probed.insert(name.as_str());
        let good = |c: &Call| {
            if want == 0 {
                c.ok()
            } else {
                c.ret == -1 && c.errno == want
            }
        };
        if !good(&c) {
            wrong.push(format!(
                "{name} ({}): want {}, got ret {} {}",
                c.nr,
                errno_name(want),
                c.ret,
                errno_name(c.errno)
            ));
        }
        // Positive control: on the host, without any filter, the kernel gives the same answer,
        // so the documented errno is the kernel's own. (Skipped where the test itself runs
        // under someone else's seccomp filter, e.g. a container's: that host is not bare.)
        match host.calls.get(name) {
            Some(h) if good(h) => {}
            _ if !host_unfiltered() => {}
            h => wrong.push(format!(
                "host control {name}: want {}, got {h:?}",
                errno_name(want)
            )),
        }
    }
    assert!(
        wrong.is_empty(),
        "allowed syscalls blocked or mis-probed:\n{}\n{}",
        wrong.join("\n"),
        lines.all
    );

    // The brief's must-allow list is all there.
    for name in [
        "read",
        "write",
        "openat",
        "close",
        "mmap",
        "mprotect",
        "futex",
        "getdents64",
        "fstat",
        "newfstatat",
        "statx",
        "pipe2",
        "dup3",
        "fcntl",
        "execve",
        "wait4",
        "kill",
        "rt_sigaction",
        "clock_gettime",
        "getrandom",
        "connect",
        "sendto",
        "recvfrom",
        "prctl",
    ] {
        assert!(probed.contains(name), "{name} missing from the allow table");
    }
    // Every syscall the policy lets through is probed, here or elsewhere: a new allowlist entry
    // needs a probe line.
    let unprobed: Vec<&str> = map
        .values()
        .filter(|(_, d)| matches!(d, Decision::Allow | Decision::Args(_)))
        .map(|(n, _)| *n)
        .filter(|n| !probed.contains(n) && !NOT_IN_ALLOW_TABLE.contains(n))
        .collect();
    assert!(
        unprobed.is_empty(),
        "allowed by the policy but not probed (add them to ALLOWED in syscall_probe.c): \
         {unprobed:?}"
    );
    eprintln!("allowed and checked: {} syscalls", probed.len());
}

// ---------------------------------------------------------------------------------------------
// 3. Foreign ABIs
// ---------------------------------------------------------------------------------------------

const FOREIGN: &[&str] = &[
    "x32_getpid",
    "x32_write",
    "x32_rt_sigaction",
    "nr_minus_one",
    "ia32_getpid",
    "ia32_write",
    "ia32_exit",
];

fn foreign_abis_killed(caller: Caller) {
    // Each call in its own forked child: every one is killed by SIGSYS, none returns.
    let out = in_sandbox(caller, &[], "syscall_probe", &strings(&["abi"]));
    assert_code(&out, 0);
    let lines = parse(&out);
    for label in FOREIGN {
        lines.child(label, &format!("signal={}", libc::SIGSYS));
        assert!(
            !lines.calls.contains_key(*label),
            "{label} returned inside the sandbox\n{}",
            lines.all
        );
    }
    // In the command's own process: the sandbox reports 128 + SIGSYS, and nothing was printed.
    for mode in ["x32", "ia32"] {
        let out = in_sandbox(caller, &[], "syscall_probe", &strings(&[mode]));
        assert_code(&out, SIGSYS_EXIT);
        assert!(stdout(&out).is_empty(), "{mode}: {}", describe(&out));
    }
    // Positive control: on the host no filter kills them (x32 may be compiled out, giving
    // ENOSYS, and ia32 may be disabled, giving SIGSEGV: both host-dependent, neither SIGSYS).
    let host = parse(&on_host(caller, "syscall_probe", &strings(&["abi"])));
    for label in FOREIGN.iter().filter(|_| host_unfiltered()) {
        assert_ne!(
            host.wait(label),
            format!("signal={}", libc::SIGSYS),
            "{label} killed by SIGSYS on the host: the control is void\n{}",
            host.all
        );
    }
}

// ---------------------------------------------------------------------------------------------
// 4. clone3 vs process creation
// ---------------------------------------------------------------------------------------------

fn clone3_enosys_processes_work(caller: Caller) {
    let out = in_sandbox(caller, &[], "syscall_probe", &strings(&["spawn"]));
    assert_code(&out, 0);
    let l = parse(&out);
    // A valid clone3 (a plain fork) and one with a bad pointer: ENOSYS both.
    l.fails("clone3", libc::ENOSYS);
    l.fails("clone3_badptr", libc::ENOSYS);
    // Positive controls: every other way to make a process or thread works.
    for label in ["fork", "sys_fork", "vfork", "posix_spawn"] {
        l.succeeds(label);
        l.child(label, "exit=7");
    }
    l.succeeds("pthread_create");
    assert_eq!(l.succeeds("pthread_join"), 42, "{}", l.all);

    // Ablation: with clone3 allowed the same valid call creates a child.
    let out = in_sandbox(
        caller,
        &strings(&["--syscalls-allow", "clone3"]),
        "syscall_probe",
        &strings(&["spawn"]),
    );
    assert_code(&out, 0);
    let l = parse(&out);
    l.succeeds("clone3");
    l.child("clone3", "exit=0");
}

// ---------------------------------------------------------------------------------------------
// 5.-8. The argument rules
// ---------------------------------------------------------------------------------------------

fn clone_namespace_flags(caller: Caller) {
    let out = in_sandbox(caller, &[], "syscall_probe", &strings(&["clone"]));
    assert_code(&out, 0);
    let l = parse(&out);
    for label in ["clone_plain", "clone_plain_hi", "clone_plain_allhi"] {
        l.succeeds(label);
        l.child(label, "exit=7");
    }
    for label in [
        "clone_NEWNS",
        "clone_NEWCGROUP",
        "clone_NEWUTS",
        "clone_NEWIPC",
        "clone_NEWUSER",
        "clone_NEWPID",
        "clone_NEWNET",
        "clone_NEWTIME",
        "clone_NEWUSER_hi",
        "clone_NEWUSER_allhi",
        "clone_NEWNET_NEWNS",
    ] {
        l.fails(label, libc::EPERM);
        assert!(!l.waits.contains_key(label), "{label} made a child");
    }
}

fn ioctl_rules(caller: Caller) {
    let out = in_sandbox(caller, &[], "syscall_probe", &strings(&["ioctl"]));
    assert_code(&out, 0);
    let l = parse(&out);
    let denied = table::IOCTL_DENY
        .iter()
        .map(|(n, _)| *n)
        .collect::<Vec<_>>();
    assert_eq!(denied, ["TIOCSTI", "TIOCLINUX", "TIOCSETD", "TIOCCONS"]);
    // fd -1: EBADF if the kernel saw it; EPERM from the filter, with or without high garbage.
    for cmd in denied {
        l.fails(&format!("ioctl_{cmd}"), libc::EPERM);
        l.fails(&format!("ioctl_{cmd}_hi"), libc::EPERM);
    }
    l.fails("ioctl_TIOCSTI_fd0", libc::EPERM);
    // Allowed commands reach the kernel.
    for label in [
        "ioctl_TCGETS",
        "ioctl_TCGETS_hi",
        "ioctl_FIONREAD",
        "ioctl_TIOCGWINSZ",
    ] {
        l.fails(label, libc::EBADF);
    }
    l.fails("ioctl_TCGETS_fd0", libc::ENOTTY);
}

fn socket_rules(caller: Caller) {
    let out = in_sandbox(caller, &[], "syscall_probe", &strings(&["socket"]));
    assert_code(&out, 0);
    let l = parse(&out);
    // Refused families: EAFNOSUPPORT even with a type the kernel would call EINVAL first.
    for label in [
        "socket_VSOCK",
        "socket_VSOCK_badtype",
        "socket_ALG",
        "socket_ALG_badtype",
        "socket_PACKET",
        "socket_PACKET_badtype",
        "socket_PACKET_hi",
        "socket_BLUETOOTH",
        "socket_BLUETOOTH_badtype",
        "socket_NETLINK_AUDIT",
        "socket_NETLINK_KOBJECT_UEVENT",
        "socket_NETLINK_badproto",
        "socketpair_PACKET",
        "socketpair_NETLINK",
        "socketpair_VSOCK",
        "socketpair_INET",
        "socketpair_INET_PACKET",
    ] {
        l.fails(label, libc::EAFNOSUPPORT);
    }
    // Raw IP: EPERM, also with flags, high garbage, or a protocol the kernel would reject.
    for label in [
        "socket_INET_RAW",
        "socket_INET_RAW_badproto",
        "socket_INET_RAW_flags",
        "socket_INET_RAW_hi",
        "socket_INET6_RAW",
        "socket_INET6_RAW_badproto",
        "socket_INET_PACKET",
        "socket_INET_PACKET_flags",
        "socket_INET6_SEQPACKET",
        "socket_INET_DCCP",
    ] {
        l.fails(label, libc::EPERM);
    }
    // Allowed: these create sockets.
    for label in [
        "socket_UNIX_STREAM",
        "socket_UNIX_DGRAM",
        "socket_UNIX_hi",
        "socket_INET_STREAM",
        "socket_INET_DGRAM",
        "socket_INET6_STREAM",
        "socket_INET6_DGRAM",
        "socket_NETLINK_ROUTE",
        "socket_NETLINK_ROUTE_dgram",
        "socketpair_UNIX",
    ] {
        l.succeeds(label);
    }
    // Allowed family, the kernel's own answers.
    l.fails("socket_INET_badtype", libc::EINVAL);
}

fn personality_rules(caller: Caller) {
    let out = in_sandbox(caller, &[], "syscall_probe", &strings(&["personality"]));
    assert_code(&out, 0);
    let l = parse(&out);
    for label in [
        "personality_query",
        "personality_query_hi",
        "personality_LINUX",
        "personality_LINUX32",
    ] {
        l.succeeds(label);
    }
    // The previous call set PER_LINUX32 (8): the kernel really ran it.
    assert_eq!(l.succeeds("personality_reset"), 8, "{}", l.all);
    for label in [
        "personality_ADDR_NO_RANDOMIZE",
        "personality_ADDR_NO_RANDOMIZE_hi",
        "personality_READ_IMPLIES_EXEC",
        "personality_UNAME26",
        "personality_LINUX32_ANR",
    ] {
        l.fails(label, libc::EPERM);
    }
}

// ---------------------------------------------------------------------------------------------
// 9. CLI overrides
// ---------------------------------------------------------------------------------------------

fn cli_overrides(caller: Caller) {
    // getppid; ptrace(PTRACE_PEEKDATA, pid 0): no such process (ESRCH) once allowed.
    let calls = strings(&[
        "call",
        &format!("getppid={}", libc::SYS_getppid),
        &format!(
            "ptrace={},{},0,0,0",
            libc::SYS_ptrace,
            libc::PTRACE_PEEKDATA
        ),
    ]);
    let out = in_sandbox(caller, &[], "syscall_probe", &calls);
    assert_code(&out, 0);
    let l = parse(&out);
    // The command's parent is the sandbox init, PID 1.
    assert_eq!(l.succeeds("getppid"), 1, "{}", l.all);
    l.fails("ptrace", libc::EPERM);

    let out = in_sandbox(
        caller,
        &strings(&["--syscalls-deny", "getppid"]),
        "syscall_probe",
        &calls,
    );
    assert_code(&out, 0);
    let l = parse(&out);
    l.fails("getppid", libc::EPERM);
    l.fails("ptrace", libc::EPERM);

    let out = in_sandbox(
        caller,
        &strings(&["--syscalls-allow", "ptrace"]),
        "syscall_probe",
        &calls,
    );
    assert_code(&out, 0);
    let l = parse(&out);
    l.succeeds("getppid");
    l.fails("ptrace", libc::ESRCH);

    // Deny wins over allow, whatever the order on the command line.
    let out = in_sandbox(
        caller,
        &strings(&["--syscalls-deny", "ptrace", "--syscalls-allow", "ptrace"]),
        "syscall_probe",
        &calls,
    );
    assert_code(&out, 0);
    parse(&out).fails("ptrace", libc::EPERM);

    // An unknown name is a setup error: 125, one line naming it, nothing ran.
    for flag in ["--syscalls-allow", "--syscalls-deny"] {
        let out = in_sandbox(
            caller,
            &strings(&[flag, "frobnicate"]),
            "syscall_probe",
            &calls,
        );
        let line = assert_refused(&out);
        assert!(line.contains("frobnicate"), "{}", describe(&out));
        assert!(stdout(&out).is_empty(), "the probe ran: {}", describe(&out));
    }
}

// ---------------------------------------------------------------------------------------------
// 10. Attached before exec
// ---------------------------------------------------------------------------------------------

fn status_field<'a>(text: &'a str, key: &str) -> Option<&'a str> {
    text.lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
        .map(str::trim)
}

fn filtered_from_first_instruction(caller: Caller) {
    // A static program without libc or loader: its first instruction calls unshare(0), a no-op
    // the kernel always grants, and gets the filter's EPERM. Then it reads its own status.
    let out = in_sandbox(caller, &[], "first_insn", &[]);
    assert_code(&out, 0);
    let l = parse(&out);
    l.fails("first_unshare", libc::EPERM);
    let text = stdout(&out);
    assert_eq!(
        status_field(&text, "Seccomp"),
        Some("2"),
        "{}",
        describe(&out)
    );
    assert_eq!(
        status_field(&text, "Seccomp_filters"),
        Some("1"),
        "{}",
        describe(&out)
    );
    assert_eq!(
        status_field(&text, "NoNewPrivs"),
        Some("1"),
        "{}",
        describe(&out)
    );

    // Positive control: the same binary on the host runs, and where the host itself puts no
    // filter on us (the usual case) its first unshare(0) succeeds.
    let host = on_host(caller, "first_insn", &[]);
    assert_code(&host, 0);
    let text = stdout(&host);
    let h = parse(&host);
    if status_field(&text, "Seccomp") == Some("0") {
        assert!(host_unfiltered());
        assert_eq!(h.succeeds("first_unshare"), 0, "{}", describe(&host));
    }
}
