//! Golden table: the compiled default filter run in the interpreter for every
//! arch × syscall number 0..1023 and boundary argument values, compared with
//! `golden.txt`. Regenerate with `STOCKADE_UPDATE_GOLDEN=1 cargo test -p
//! stockade --lib seccomp` and review the diff.

use std::fmt::Write as _;

use super::bpf_interp::{run, SeccompData};
use super::{compile, errno_action, table, Policy, AUDIT_ARCH_X86_64, X32_SYSCALL_BIT};

const AUDIT_ARCH_I386: u32 = 0x4000_0003;
const AUDIT_ARCH_AARCH64: u32 = 0xc000_00b7;
const GARBAGE_ARCH: u32 = 0x1234_5678;
const GOLDEN: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/src/seccomp/golden.txt");

fn action_name(action: u32) -> String {
    match action {
        libc::SECCOMP_RET_ALLOW => "ALLOW".into(),
        libc::SECCOMP_RET_KILL_PROCESS => "KILL_PROCESS".into(),
        a if a == errno_action(libc::EPERM) => "ERRNO(EPERM)".into(),
        a if a == errno_action(libc::ENOSYS) => "ERRNO(ENOSYS)".into(),
        a if a == errno_action(libc::EAFNOSUPPORT) => "ERRNO(EAFNOSUPPORT)".into(),
        a => format!("{a:#010x}"),
    }
}

fn name_of(nr: i64) -> Option<&'static str> {
    super::known().find(|&(_, n)| n == nr).map(|(name, _)| name)
}

struct Filter(Vec<seccompiler::sock_filter>);

impl Filter {
    fn eval(&self, arch: u32, nr: u32, args: [u64; 6]) -> u32 {
        let data = SeccompData {
            nr: nr as i32,
            arch,
            instruction_pointer: 0x40_1000,
            args,
        };
        run(&self.0, &data).expect("compiled program runs to a RET")
    }
    fn sys(&self, nr: i64, args: [u64; 6]) -> u32 {
        self.eval(AUDIT_ARCH_X86_64, nr as u32, args)
    }
}

fn default_filter() -> Filter {
    Filter(compile(&Policy::default()).unwrap())
}

/// The whole table as text.
fn render(f: &Filter) -> String {
    let mut out = String::new();
    let prog_len = f.0.len();
    let size = Policy::default().allowlist_size().unwrap();
    writeln!(
        out,
        "# stockade default seccomp filter: {prog_len} instructions, allowlist {size} syscalls"
    )
    .unwrap();
    writeln!(out, "# arch nr[-nr] action [# name]   (args all zero)").unwrap();
    let arches = [
        ("x86_64", AUDIT_ARCH_X86_64, 0),
        ("x32", AUDIT_ARCH_X86_64, X32_SYSCALL_BIT),
        ("i386", AUDIT_ARCH_I386, 0),
        ("aarch64", AUDIT_ARCH_AARCH64, 0),
        ("garbage(0x12345678)", GARBAGE_ARCH, 0),
    ];
    for (label, arch, bit) in arches {
        let mut nr = 0u32;
        while nr < 1024 {
            let action = f.eval(arch, nr | bit, [0; 6]);
            let mut end = nr;
            while end + 1 < 1024 && f.eval(arch, (end + 1) | bit, [0; 6]) == action {
                end += 1;
            }
            let act = action_name(action);
            if end == nr {
                let name = if bit == 0 && arch == AUDIT_ARCH_X86_64 {
                    name_of(i64::from(nr))
                        .map(|n| format!("  # {n}"))
                        .unwrap_or_default()
                } else {
                    String::new()
                };
                writeln!(out, "{label} {nr} {act}{name}").unwrap();
            } else {
                writeln!(out, "{label} {nr}-{end} {act}").unwrap();
            }
            nr = end + 1;
        }
    }
    // The extremes of the nr space.
    for nr in [
        X32_SYSCALL_BIT - 1,
        X32_SYSCALL_BIT,
        0x7fff_ffff,
        0xffff_ffff,
    ] {
        let act = action_name(f.eval(AUDIT_ARCH_X86_64, nr, [0; 6]));
        writeln!(out, "x86_64 {nr:#x} {act}").unwrap();
    }

    writeln!(out, "# argument boundaries (x86_64)").unwrap();
    let hi = 1u64 << 32;
    let sigchld = libc::SIGCHLD as u64;
    let thread = (libc::CLONE_VM
        | libc::CLONE_FS
        | libc::CLONE_FILES
        | libc::CLONE_SIGHAND
        | libc::CLONE_THREAD
        | libc::CLONE_SYSVSEM
        | libc::CLONE_SETTLS
        | libc::CLONE_PARENT_SETTID
        | libc::CLONE_CHILD_CLEARTID) as u64;
    let mut clone_cases: Vec<(String, u64)> = vec![
        ("0".into(), 0),
        ("SIGCHLD".into(), sigchld),
        ("SIGCHLD|1<<32".into(), sigchld | hi),
        ("pthread_create flags".into(), thread),
        (
            "SIGCHLD|CLONE_VM|CLONE_VFORK".into(),
            sigchld | (libc::CLONE_VM | libc::CLONE_VFORK) as u64,
        ),
        (
            "CLONE_NEWUSER|1<<32".into(),
            libc::CLONE_NEWUSER as u64 | hi,
        ),
        ("0xffffffff00000000".into(), 0xffff_ffff_0000_0000),
    ];
    for (name, flag) in [
        ("CLONE_NEWNS", libc::CLONE_NEWNS),
        ("CLONE_NEWCGROUP", libc::CLONE_NEWCGROUP),
        ("CLONE_NEWUTS", libc::CLONE_NEWUTS),
        ("CLONE_NEWIPC", libc::CLONE_NEWIPC),
        ("CLONE_NEWUSER", libc::CLONE_NEWUSER),
        ("CLONE_NEWPID", libc::CLONE_NEWPID),
        ("CLONE_NEWNET", libc::CLONE_NEWNET),
        ("CLONE_NEWTIME", libc::CLONE_NEWTIME),
    ] {
        clone_cases.push((format!("SIGCHLD|{name}"), sigchld | flag as u64));
    }
    for (name, flags) in clone_cases {
        let act = action_name(f.sys(libc::SYS_clone, [flags, 0, 0, 0, 0, 0]));
        writeln!(out, "clone({name}) {act}").unwrap();
    }

    let mut ioctls: Vec<(String, u64)> = table::IOCTL_DENY
        .iter()
        .flat_map(|&(n, c)| {
            [
                (n.to_string(), u64::from(c)),
                (
                    format!("{n}|0xffffffff00000000"),
                    u64::from(c) | 0xffff_ffff_0000_0000,
                ),
            ]
        })
        .collect();
    ioctls.extend([
        ("TCGETS".to_string(), libc::TCGETS),
        ("TIOCGWINSZ".to_string(), libc::TIOCGWINSZ),
        ("FIONREAD".to_string(), libc::FIONREAD),
        ("TIOCSTI+1".to_string(), libc::TIOCSTI + 1),
    ]);
    for (name, cmd) in ioctls {
        let act = action_name(f.sys(libc::SYS_ioctl, [0, cmd, 0, 0, 0, 0]));
        writeln!(out, "ioctl(fd, {name}) {act}").unwrap();
    }

    let stream = libc::SOCK_STREAM as u64;
    let raw = libc::SOCK_RAW as u64;
    let cloexec = libc::SOCK_CLOEXEC as u64;
    for family in 0..=45u64 {
        for (tname, ty) in [("SOCK_STREAM", stream), ("SOCK_RAW", raw)] {
            let act = action_name(f.sys(libc::SYS_socket, [family, ty, 0, 0, 0, 0]));
            writeln!(out, "socket({family}, {tname}, 0) {act}").unwrap();
        }
    }
    let af_inet = libc::AF_INET as u64;
    let af_inet6 = libc::AF_INET6 as u64;
    let netlink = libc::AF_NETLINK as u64;
    for (label, args) in [
        (
            "AF_INET, SOCK_RAW|SOCK_CLOEXEC, 0",
            [af_inet, raw | cloexec, 0],
        ),
        (
            "AF_INET6, SOCK_RAW|SOCK_NONBLOCK, 0",
            [af_inet6, raw | libc::SOCK_NONBLOCK as u64, 0],
        ),
        (
            "AF_INET, SOCK_PACKET, ETH_P_ALL",
            [af_inet, 10 /* SOCK_PACKET */, 0x0300],
        ),
        (
            "AF_INET6, SOCK_SEQPACKET, IPPROTO_SCTP",
            [af_inet6, libc::SOCK_SEQPACKET as u64, 132],
        ),
        ("AF_INET, SOCK_DCCP, 0", [af_inet, 6, 0]),
        ("AF_INET, SOCK_RDM, 0", [af_inet, libc::SOCK_RDM as u64, 0]),
        (
            "AF_INET, SOCK_DGRAM|SOCK_CLOEXEC, 0",
            [af_inet, libc::SOCK_DGRAM as u64 | cloexec, 0],
        ),
        (
            "AF_INET, SOCK_DGRAM, IPPROTO_ICMP",
            [af_inet, libc::SOCK_DGRAM as u64, libc::IPPROTO_ICMP as u64],
        ),
        ("AF_INET|1<<32, SOCK_STREAM, 0", [af_inet | hi, stream, 0]),
        (
            "AF_VSOCK|1<<32, SOCK_STREAM, 0",
            [libc::AF_VSOCK as u64 | hi, stream, 0],
        ),
        ("AF_INET, SOCK_RAW|1<<32, 0", [af_inet, raw | hi, 0]),
        ("AF_NETLINK, SOCK_RAW, NETLINK_ROUTE", [netlink, raw, 0]),
        ("AF_NETLINK, SOCK_RAW, NETLINK_SOCK_DIAG", [netlink, raw, 4]),
        ("AF_NETLINK, SOCK_RAW, NETLINK_AUDIT", [netlink, raw, 9]),
        (
            "AF_NETLINK, SOCK_RAW, NETLINK_ROUTE|1<<32",
            [netlink, raw, hi],
        ),
    ] {
        let act = action_name(f.sys(libc::SYS_socket, [args[0], args[1], args[2], 0, 0, 0]));
        writeln!(out, "socket({label}) {act}").unwrap();
    }
    for family in 0..=45u64 {
        let act = action_name(f.sys(libc::SYS_socketpair, [family, stream, 0, 0, 0, 0]));
        writeln!(out, "socketpair({family}, SOCK_STREAM, 0) {act}").unwrap();
    }
    let act = action_name(f.sys(libc::SYS_socketpair, [af_inet, raw, 0, 0, 0, 0]));
    writeln!(out, "socketpair(AF_INET, SOCK_RAW, 0) {act}").unwrap();

    for (name, p) in [
        ("PER_LINUX", 0u64),
        ("PER_LINUX32", 8),
        ("query 0xffffffff", 0xffff_ffff),
        ("0xffffffffffffffff", u64::MAX),
        ("PER_LINUX|1<<32", hi),
        ("ADDR_NO_RANDOMIZE", 0x0040000),
        ("READ_IMPLIES_EXEC", 0x0400000),
        ("UNAME26", 0x0020000),
        ("PER_BSD", 6),
    ] {
        let act = action_name(f.sys(libc::SYS_personality, [p, 0, 0, 0, 0, 0]));
        writeln!(out, "personality({name}) {act}").unwrap();
    }

    let listener = libc::SECCOMP_FILTER_FLAG_NEW_LISTENER;
    for (name, flags) in [
        ("0", 0u64),
        ("TSYNC", libc::SECCOMP_FILTER_FLAG_TSYNC),
        ("NEW_LISTENER", listener),
        (
            "TSYNC|NEW_LISTENER",
            listener | libc::SECCOMP_FILTER_FLAG_TSYNC,
        ),
        ("NEW_LISTENER|1<<32", listener | hi),
        ("1<<32", hi),
    ] {
        let op = u64::from(libc::SECCOMP_SET_MODE_FILTER);
        let act = action_name(f.sys(libc::SYS_seccomp, [op, flags, 0, 0, 0, 0]));
        writeln!(out, "seccomp(SET_MODE_FILTER, {name}) {act}").unwrap();
    }
    out
}

#[test]
fn golden_table() {
    let got = render(&default_filter());
    if std::env::var_os("STOCKADE_UPDATE_GOLDEN").is_some() {
        std::fs::write(GOLDEN, &got).unwrap();
        return;
    }
    let want = std::fs::read_to_string(GOLDEN)
        .expect("golden.txt missing: run with STOCKADE_UPDATE_GOLDEN=1 and review it");
    if got != want {
        let diff: Vec<String> = want
            .lines()
            .zip(got.lines())
            .filter(|(w, g)| w != g)
            .take(20)
            .map(|(w, g)| format!("-{w}\n+{g}"))
            .collect();
        panic!(
            "seccomp filter differs from golden.txt (rerun with STOCKADE_UPDATE_GOLDEN=1 and review):\n{}\n(lines: want {}, got {})",
            diff.join("\n"),
            want.lines().count(),
            got.lines().count()
        );
    }
}

const ALLOW: u32 = libc::SECCOMP_RET_ALLOW;
const KILL: u32 = libc::SECCOMP_RET_KILL_PROCESS;

#[test]
fn critical_entries() {
    let f = default_filter();
    let eperm = errno_action(libc::EPERM);
    let enosys = errno_action(libc::ENOSYS);
    let eafnosupport = errno_action(libc::EAFNOSUPPORT);
    let z = [0u64; 6];
    for nr in [
        libc::SYS_read,
        libc::SYS_write,
        libc::SYS_futex,
        libc::SYS_mmap,
        libc::SYS_execve,
        libc::SYS_getppid,
        libc::SYS_statx,
        libc::SYS_rseq,
        libc::SYS_wait4,
        libc::SYS_fork,
    ] {
        assert_eq!(f.sys(nr, z), ALLOW, "nr {nr}");
    }
    for &(name, nr) in table::EPERM {
        assert_eq!(f.sys(nr, z), eperm, "{name}");
    }
    for &(name, nr) in table::ENOSYS.iter().chain(table::OTHER) {
        assert_eq!(f.sys(nr, z), enosys, "{name}");
    }
    for nr in 463..1024 {
        assert_eq!(f.sys(nr, z), enosys, "nr {nr}");
    }
    // Foreign arches and x32 numbers die, whatever the number.
    for nr in [0u32, 1, 11, 59, 165, 435, 1023] {
        for arch in [AUDIT_ARCH_I386, AUDIT_ARCH_AARCH64, GARBAGE_ARCH, 0] {
            assert_eq!(f.eval(arch, nr, z), KILL);
        }
        assert_eq!(f.eval(AUDIT_ARCH_X86_64, nr | X32_SYSCALL_BIT, z), KILL);
    }
    assert_eq!(f.eval(AUDIT_ARCH_X86_64, u32::MAX, z), KILL);
    // clone: namespace flags on the low 32 bits only.
    let clone = |flags: u64| f.sys(libc::SYS_clone, [flags, 0, 0, 0, 0, 0]);
    assert_eq!(clone(libc::SIGCHLD as u64), ALLOW);
    assert_eq!(clone(libc::CLONE_NEWUSER as u64), eperm);
    assert_eq!(clone(libc::CLONE_NEWNET as u64 | 1 << 40), eperm);
    assert_eq!(clone(1 << 40), ALLOW);
    // ioctl: TIOCSTI with high garbage is still denied.
    let ioctl = |cmd: u64| f.sys(libc::SYS_ioctl, [0, cmd, 0, 0, 0, 0]);
    assert_eq!(ioctl(libc::TIOCSTI), eperm);
    assert_eq!(ioctl(libc::TIOCSTI | 0xffff_ffff_0000_0000), eperm);
    assert_eq!(ioctl(libc::TCGETS), ALLOW);
    // socket families.
    let socket = |fam: i32, ty: i32, proto: u64| {
        f.sys(libc::SYS_socket, [fam as u64, ty as u64, proto, 0, 0, 0])
    };
    assert_eq!(socket(libc::AF_UNIX, libc::SOCK_STREAM, 0), ALLOW);
    assert_eq!(socket(libc::AF_INET6, libc::SOCK_DGRAM, 0), ALLOW);
    assert_eq!(
        socket(libc::AF_INET, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 1),
        eperm
    );
    assert_eq!(socket(libc::AF_UNIX, libc::SOCK_RAW, 0), ALLOW);
    for fam in [
        libc::AF_VSOCK,
        libc::AF_ALG,
        libc::AF_PACKET,
        libc::AF_BLUETOOTH,
        libc::AF_KEY,
    ] {
        assert_eq!(
            socket(fam, libc::SOCK_STREAM, 0),
            eafnosupport,
            "family {fam}"
        );
        assert_eq!(socket(fam, libc::SOCK_RAW, 0), eafnosupport, "family {fam}");
    }
    assert_eq!(socket(libc::AF_NETLINK, libc::SOCK_RAW, 0), ALLOW);
    assert_eq!(socket(libc::AF_NETLINK, libc::SOCK_RAW, 4), eafnosupport);
    // personality.
    let pers = |p: u64| f.sys(libc::SYS_personality, [p, 0, 0, 0, 0, 0]);
    assert_eq!(pers(0), ALLOW);
    assert_eq!(pers(0xffff_ffff), ALLOW);
    assert_eq!(pers(0x0040000), eperm);
}

#[test]
fn overrides_change_the_program() {
    let f = Filter(
        compile(
            &Policy::default()
                .allow(["clone3", "ptrace"])
                .deny(["getppid", "socket"]),
        )
        .unwrap(),
    );
    assert_eq!(f.sys(libc::SYS_clone3, [0; 6]), ALLOW);
    assert_eq!(f.sys(libc::SYS_ptrace, [0; 6]), ALLOW);
    assert_eq!(f.sys(libc::SYS_getppid, [0; 6]), errno_action(libc::EPERM));
    assert_eq!(
        f.sys(libc::SYS_socket, [libc::AF_UNIX as u64, 1, 0, 0, 0, 0]),
        errno_action(libc::EPERM)
    );
    // socketpair keeps its rule.
    assert_eq!(
        f.sys(libc::SYS_socketpair, [libc::AF_UNIX as u64, 1, 0, 0, 0, 0]),
        ALLOW
    );
    // .allow lifts an argument rule entirely.
    let f = Filter(compile(&Policy::default().allow(["ioctl"])).unwrap());
    assert_eq!(
        f.sys(libc::SYS_ioctl, [0, libc::TIOCSTI, 0, 0, 0, 0]),
        ALLOW
    );
}
