//! Policy → BPF: our own preamble, a binary search on the syscall number
//! ([`tree`]), and one argument block per argument-checked syscall compiled
//! with `seccompiler`.
//!
//! ```text
//! 0: A = seccomp_data.arch
//! 1: if A == AUDIT_ARCH_X86_64 goto 3
//! 2: return KILL_PROCESS
//! 3: A = seccomp_data.nr
//! 4: if A >= __X32_SYSCALL_BIT (0x40000000) goto 5 else goto 6
//! 5: return KILL_PROCESS
//! 6: if A >= k goto ...      binary search, one JGE per level, whose
//!    ...                     branches end in a shared RET or a JA leaf
//! .. return ALLOW            shared RETs, one per constant action
//! .. return ERRNO(EPERM) ...
//! .. argument blocks         reached by the JA leaves
//! ```
//!
//! Why not one linear chain of `seccompiler` sections, as before: attaching
//! a filter makes the kernel JIT it and run it once per syscall number for
//! its action cache, so the attach cost grows with both the length and the
//! depth of the program. The default policy now compiles to 255 instructions
//! (the linear layout had 1759), a constant decision is reached in at most 12
//! instructions (preamble included), and the attach time measured by
//! `benches/seccomp-attach` fell from ~680 µs to ~70 µs p50 (a 1-instruction
//! filter: ~12 µs).
//!
//! `seccompiler` 0.5 emits an arch check (`arch != native → KILL_PROCESS`)
//! at the head of every filter but no x32 check (rust-vmm/seccompiler#74). We
//! strip its check from each section and put one preamble in front.
//!
//! Argument blocks. `seccompiler` 0.5 builds a filter with a single match
//! action and a single mismatch action; a block needs several (`EPERM` for a
//! denied ioctl cmd, allow, a fallback errno). So a block is a chain of
//! one-syscall sections, each compiled with a sentinel mismatch action whose
//! every `RET` is rewritten into a `JA` to the start of the next section (in
//! place: `seccompiler`'s jumps are relative, so no offset moves), ending in
//! the fallback `RET`:
//!
//! 1. `EPERM` by argument: `ioctl` with a denied cmd, raw `AF_INET(6)` sockets;
//! 2. allow: `clone` without namespace flags, `personality` values, socket
//!    families, any other `ioctl`;
//! 3. `RET` the fallback errno (`EPERM`, `EAFNOSUPPORT`, else `ENOSYS`).
//!
//! This is the order the old linear layout evaluated them in, so the decisions
//! are unchanged (`golden.txt`).

use std::collections::BTreeMap;

use seccompiler::{
    sock_filter, BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition,
    SeccompFilter, SeccompRule, TargetArch,
};

use super::table::{self, ArgRule};
use super::tree;
use super::{Decision, Error, Policy};

/// `AUDIT_ARCH_X86_64`: `EM_X86_64 | __AUDIT_ARCH_64BIT | __AUDIT_ARCH_LE`.
pub const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;
/// `__X32_SYSCALL_BIT`: x32 syscalls arrive with the x86_64 arch and this bit set.
pub const X32_SYSCALL_BIT: u32 = 0x4000_0000;

const BPF_LD_W_ABS: u16 = 0x20;
const BPF_JMP_JA: u16 = 0x05;
const BPF_JEQ_K: u16 = 0x15;
const BPF_JGT_K: u16 = 0x25;
const BPF_JGE_K: u16 = 0x35;
const BPF_JSET_K: u16 = 0x45;
const BPF_RET_K: u16 = 0x06;
const BPF_ALU_AND_K: u16 = 0x54;
const OFFSET_NR: u32 = 0;
const OFFSET_ARCH: u32 = 4;
/// The kernel's `BPF_MAXINSNS`.
const BPF_MAXINSNS: usize = 4096;

/// Mismatch action of every section; never a real action of ours.
const SENTINEL: SeccompAction = SeccompAction::Trace(0x5717);

fn stmt(code: u16, k: u32) -> sock_filter {
    sock_filter {
        code,
        jt: 0,
        jf: 0,
        k,
    }
}

fn jump(code: u16, k: u32, jt: u8, jf: u8) -> sock_filter {
    sock_filter { code, jt, jf, k }
}

/// The preamble: native arch only, no x32 numbers.
fn preamble() -> Vec<sock_filter> {
    vec![
        stmt(BPF_LD_W_ABS, OFFSET_ARCH),
        jump(BPF_JEQ_K, AUDIT_ARCH_X86_64, 1, 0),
        stmt(BPF_RET_K, libc::SECCOMP_RET_KILL_PROCESS),
        stmt(BPF_LD_W_ABS, OFFSET_NR),
        jump(BPF_JGE_K, X32_SYSCALL_BIT, 0, 1),
        stmt(BPF_RET_K, libc::SECCOMP_RET_KILL_PROCESS),
    ]
}

/// The action word for `ERRNO(errno)`.
pub fn errno_action(errno: i32) -> u32 {
    SeccompAction::Errno(errno as u32).into()
}

/// How a program answers the syscalls it refuses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Denials {
    /// In the kernel, with the table's errno.
    Errno,
    /// With `SECCOMP_RET_USER_NOTIF`: the host's supervisor answers with the
    /// errno the [`Denials::Errno`] program gives and records the attempt.
    /// The allowed paths and the kills are the same instructions as in the
    /// errno program; only `RET ERRNO` words change. The runtimes' fallback
    /// probes (`clone3`, `io_uring_*` at their table `ENOSYS`) stay in the
    /// kernel: glibc tries `clone3` for every thread and `posix_spawn`, and a
    /// host round trip each would slow real tools for no information.
    Notify,
}

impl Denials {
    /// The action word for a refusal of syscall `nr` with `errno`.
    fn refuse(self, nr: Option<i64>, errno: i32) -> u32 {
        let probe = errno == libc::ENOSYS
            && nr.is_some_and(|nr| table::ENOSYS.iter().any(|&(_, n)| n == nr));
        match self {
            Denials::Notify if !probe => libc::SECCOMP_RET_USER_NOTIF,
            _ => errno_action(errno),
        }
    }
}

fn cond(arg: u8, op: SeccompCmpOp, value: u32) -> Result<SeccompCondition, Error> {
    // Dword: the low 32 bits only, as the kernel reads these int arguments.
    SeccompCondition::new(arg, SeccompCmpArgLen::Dword, op, u64::from(value))
        .map_err(Error::Backend)
}

fn rule(conds: Vec<SeccompCondition>) -> Result<SeccompRule, Error> {
    SeccompRule::new(conds).map_err(Error::Backend)
}

type Rules = BTreeMap<i64, Vec<SeccompRule>>;

/// The rules that make `rule` *deny* early (section 1); empty if none.
fn early_deny_rules(arg_rule: ArgRule) -> Result<Vec<SeccompRule>, Error> {
    use SeccompCmpOp::{Eq, MaskedEq};
    match arg_rule {
        ArgRule::Ioctl => table::IOCTL_DENY
            .iter()
            .map(|&(_, cmd)| rule(vec![cond(1, Eq, cmd)?]))
            .collect(),
        // socketpair needs no early deny: it allows AF_UNIX only.
        ArgRule::Socketpair => Ok(Vec::new()),
        ArgRule::Socket => [libc::AF_INET as u32, libc::AF_INET6 as u32]
            .iter()
            .flat_map(|&family| {
                table::INET_DENIED_TYPES.iter().map(move |&(_, ty)| {
                    rule(vec![
                        cond(0, Eq, family)?,
                        cond(1, MaskedEq(u64::from(table::SOCK_TYPE_MASK)), ty)?,
                    ])
                })
            })
            .collect(),
        ArgRule::Clone | ArgRule::Personality | ArgRule::SocketReduced => Ok(Vec::new()),
        ArgRule::SendNoFastOpen(flags) => Ok(vec![rule(vec![cond(
            flags,
            MaskedEq(u64::from(table::MSG_FASTOPEN)),
            table::MSG_FASTOPEN,
        )?])?]),
        ArgRule::Seccomp => {
            let listener = libc::SECCOMP_FILTER_FLAG_NEW_LISTENER as u32;
            Ok(vec![rule(vec![cond(
                1,
                MaskedEq(u64::from(listener)),
                listener,
            )?])?])
        }
    }
}

/// The rules under which `rule` allows (section 2); empty means "always".
fn allow_rules(arg_rule: ArgRule) -> Result<Vec<SeccompRule>, Error> {
    use SeccompCmpOp::{Eq, MaskedEq};
    match arg_rule {
        ArgRule::Clone => Ok(vec![rule(vec![cond(
            0,
            MaskedEq(u64::from(table::CLONE_NS_FLAGS)),
            0,
        )?])?]),
        ArgRule::Ioctl | ArgRule::Seccomp | ArgRule::SendNoFastOpen(_) => Ok(Vec::new()),
        ArgRule::SocketReduced => {
            let stream = libc::SOCK_STREAM as u32;
            let mut rules = Vec::new();
            for family in [libc::AF_INET as u32, libc::AF_INET6 as u32] {
                for protocol in [0, libc::IPPROTO_TCP as u32] {
                    rules.push(rule(vec![
                        cond(0, Eq, family)?,
                        cond(1, MaskedEq(u64::from(table::SOCK_TYPE_MASK)), stream)?,
                        cond(2, Eq, protocol)?,
                    ])?);
                }
            }
            rules.push(rule(vec![
                cond(0, Eq, table::NETLINK_FAMILY)?,
                cond(2, Eq, table::NETLINK_PROTOCOL)?,
            ])?);
            Ok(rules)
        }
        ArgRule::Personality => table::PERSONALITY_ALLOW
            .iter()
            .map(|&v| rule(vec![cond(0, Eq, v)?]))
            .collect(),
        ArgRule::Socketpair => Ok(vec![rule(vec![cond(0, Eq, libc::AF_UNIX as u32)?])?]),
        ArgRule::Socket => {
            let mut rules = table::SOCKET_FAMILIES
                .iter()
                .map(|&(_, family)| rule(vec![cond(0, Eq, family)?]))
                .collect::<Result<Vec<_>, _>>()?;
            rules.push(rule(vec![
                cond(0, Eq, table::NETLINK_FAMILY)?,
                cond(2, Eq, table::NETLINK_PROTOCOL)?,
            ])?);
            Ok(rules)
        }
    }
}

/// The errno `rule` returns when neither section 1 nor section 2 decided.
fn fallback_errno(arg_rule: ArgRule) -> Option<i32> {
    match arg_rule {
        ArgRule::Clone | ArgRule::Personality | ArgRule::SocketReduced => Some(libc::EPERM),
        ArgRule::Socket | ArgRule::Socketpair => Some(libc::EAFNOSUPPORT),
        ArgRule::Ioctl | ArgRule::Seccomp | ArgRule::SendNoFastOpen(_) => None,
    }
}

/// Compile one section with `seccompiler` and strip its arch check.
fn section(rules: Rules, action: SeccompAction) -> Result<Vec<sock_filter>, Error> {
    let filter =
        SeccompFilter::new(rules, SENTINEL, action, TargetArch::x86_64).map_err(Error::Backend)?;
    let prog: BpfProgram = filter.try_into().map_err(Error::Backend)?;
    let arch_check = &preamble()[..3];
    if prog.get(..3) != Some(arch_check) {
        return Err(Error::Invalid {
            pc: 0,
            why: "seccompiler did not start the section with the expected arch check",
        });
    }
    Ok(prog[3..].to_vec())
}

/// The argument block of one syscall: deny section, allow section, fallback.
fn arg_block(nr: i64, arg_rule: ArgRule, denials: Denials) -> Result<Vec<sock_filter>, Error> {
    let one = |rules: Vec<SeccompRule>| Rules::from([(nr, rules)]);
    let mut sections = Vec::new();
    let deny = early_deny_rules(arg_rule)?;
    if !deny.is_empty() {
        sections.push((one(deny), SeccompAction::Errno(libc::EPERM as u32)));
    }
    sections.push((one(allow_rules(arg_rule)?), SeccompAction::Allow));

    let sentinel = u32::from(SENTINEL);
    let mut block = Vec::new();
    for (rules, action) in sections {
        let body = section(rules, action)?;
        let start = block.len();
        let end = start + body.len();
        block.extend(body);
        for (i, ins) in block.iter_mut().enumerate().take(end).skip(start) {
            if ins.code == BPF_RET_K && ins.k == sentinel {
                // Fall through to the next section (or the fallback below).
                *ins = stmt(BPF_JMP_JA, (end - i - 1) as u32);
            }
        }
    }
    let fallback = fallback_errno(arg_rule).unwrap_or(table::DEFAULT_ERRNO);
    block.push(stmt(BPF_RET_K, errno_action(fallback)));
    if denials == Denials::Notify {
        for ins in block.iter_mut() {
            if ins.code == BPF_RET_K
                && ins.k & libc::SECCOMP_RET_ACTION_FULL == libc::SECCOMP_RET_ERRNO
            {
                ins.k = libc::SECCOMP_RET_USER_NOTIF;
            }
        }
    }
    Ok(block)
}

/// A compiled program and the shape of its tree (the shape is for the tests).
#[cfg_attr(not(test), allow(dead_code))]
struct Layout {
    prog: BpfProgram,
    /// Ranges the tree searches.
    ranges: usize,
    /// Instructions of the tree (after the preamble, before the blocks).
    tree_len: usize,
}

fn layout(policy: &Policy, denials: Denials) -> Result<Layout, Error> {
    let decisions = policy.resolve()?;
    let mut points = Vec::with_capacity(decisions.len());
    let mut blocks = Vec::new();
    for (&nr, &(_, decision)) in &decisions {
        let leaf = match decision {
            Decision::Allow => tree::Leaf::Ret(libc::SECCOMP_RET_ALLOW),
            Decision::Errno(e) => tree::Leaf::Ret(denials.refuse(Some(nr), e)),
            Decision::Gate => tree::Leaf::Ret(libc::SECCOMP_RET_USER_NOTIF),
            Decision::Args(arg_rule) => {
                blocks.push(arg_block(nr, arg_rule, denials)?);
                tree::Leaf::Block(blocks.len() - 1)
            }
        };
        let nr = u32::try_from(nr)
            .ok()
            .filter(|&n| n < X32_SYSCALL_BIT)
            .ok_or(Error::Invalid {
                pc: 0,
                why: "syscall number outside 0..__X32_SYSCALL_BIT",
            })?;
        points.push((nr, leaf));
    }
    let ranges = tree::ranges(points, denials.refuse(None, table::DEFAULT_ERRNO))?;
    let (body, tree_len) = tree::emit(&ranges, &blocks)?;
    let mut prog = preamble();
    prog.extend(body);
    check(&prog)?;
    Ok(Layout {
        prog,
        ranges: ranges.len(),
        tree_len,
    })
}

/// Compile `policy` to a seccomp-BPF program for x86_64, ready for
/// `seccomp(SECCOMP_SET_MODE_FILTER, 0, &sock_fprog)`.
pub fn compile(policy: &Policy) -> Result<BpfProgram, Error> {
    compile_with(policy, Denials::Errno)
}

/// [`compile()`], answering refusals as `denials` says.
pub fn compile_with(policy: &Policy, denials: Denials) -> Result<BpfProgram, Error> {
    layout(policy, denials).map(|l| l.prog)
}

/// What the kernel's checker would refuse, plus "no sentinel left".
fn check(prog: &[sock_filter]) -> Result<(), Error> {
    if prog.len() >= BPF_MAXINSNS {
        return Err(Error::TooLarge(prog.len()));
    }
    for (pc, ins) in prog.iter().enumerate() {
        let in_bounds = |off: u32| pc + 1 + (off as usize) < prog.len();
        let ok = match ins.code {
            BPF_LD_W_ABS => ins.k % 4 == 0 && ins.k < 64,
            BPF_ALU_AND_K => true,
            BPF_JMP_JA => in_bounds(ins.k),
            BPF_JEQ_K | BPF_JGT_K | BPF_JGE_K | BPF_JSET_K => {
                in_bounds(u32::from(ins.jt)) && in_bounds(u32::from(ins.jf))
            }
            BPF_RET_K => ins.k != u32::from(SENTINEL),
            _ => false,
        };
        if !ok {
            return Err(Error::Invalid {
                pc,
                why: "instruction outside the seccomp subset, out-of-bounds jump or leftover sentinel",
            });
        }
    }
    match prog.last() {
        Some(last) if last.code == BPF_RET_K => Ok(()),
        _ => Err(Error::Invalid {
            pc: prog.len(),
            why: "program does not end with RET",
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::seccomp::bpf_interp::{trace, SeccompData};

    /// `ceil(log2(n))`, n >= 1.
    fn ceil_log2(n: usize) -> u32 {
        usize::BITS - (n - 1).leading_zeros()
    }

    #[test]
    fn starts_with_preamble_then_the_tree() {
        let l = layout(&Policy::default(), Denials::Errno).unwrap();
        let prog = &l.prog;
        assert_eq!(prog[..6], preamble()[..]);
        // The tree starts with a comparison on the nr already in A.
        assert_eq!(prog[6].code, BPF_JGE_K);
        assert_eq!(prog.last().unwrap().code, BPF_RET_K);
        assert!(prog
            .iter()
            .all(|i| !(i.code == BPF_RET_K && i.k == u32::from(SENTINEL))));
        println!(
            "seccomp: default filter {} instructions (linear layout before: 1759), \
             {} ranges, tree {} instructions",
            prog.len(),
            l.ranges,
            l.tree_len
        );
    }

    #[test]
    fn tree_jumps_stay_in_the_tree() {
        for p in [
            Policy::default(),
            Policy::default().allow(["clone3", "ptrace", "ioctl"]),
            Policy::default().deny(["read", "socket", "personality"]),
        ] {
            let l = layout(&p, Denials::Errno).unwrap();
            let tree = &l.prog[6..6 + l.tree_len];
            for (pc, ins) in tree.iter().enumerate() {
                if ins.code == BPF_JGE_K {
                    // Into a subtree or a shared RET: inside the tree.
                    let far = pc + 1 + usize::from(ins.jt.max(ins.jf));
                    assert!(far < l.tree_len, "{ins:?}");
                }
            }
            // Every jump (tree, JA leaves, seccompiler's blocks) lands inside.
            check(&l.prog).unwrap();
        }
    }

    /// Constant decisions never load an argument (the kernel caches allowed
    /// numbers as always-allow) and take a short path; argument-checked
    /// ones do reach their block.
    #[test]
    fn constant_paths_are_argument_free_and_short() {
        for p in [
            Policy::default(),
            Policy::default()
                .allow(["clone3", "ptrace", "ioctl"])
                .deny(["getppid", "socket", "read"]),
        ] {
            let l = layout(&p, Denials::Errno).unwrap();
            // Preamble 4 + one JGE per level + RET. In general a level may
            // take a JGE + JA (2·ceil(log2 ranges) + 5), but a tree this
            // short has no left subtree beyond an 8-bit hop, so no JA node.
            assert!(l.tree_len <= 256);
            let bound = ceil_log2(l.ranges) as usize + 5;
            let decisions = p.resolve().unwrap();
            let mut longest = 0;
            for nr in 0..1024i64 {
                let decision = decisions
                    .get(&nr)
                    .map_or(Decision::Errno(table::DEFAULT_ERRNO), |d| d.1);
                let data = SeccompData {
                    nr: nr as i32,
                    arch: AUDIT_ARCH_X86_64,
                    instruction_pointer: 0,
                    args: [u64::MAX; 6],
                };
                let t = trace(&l.prog, &data).unwrap();
                let want = match decision {
                    Decision::Allow => libc::SECCOMP_RET_ALLOW,
                    Decision::Errno(e) => errno_action(e),
                    Decision::Gate => libc::SECCOMP_RET_USER_NOTIF,
                    Decision::Args(_) => {
                        assert!(t.loaded_args, "nr {nr} skipped its argument block");
                        continue;
                    }
                };
                assert_eq!(t.action, want, "nr {nr}");
                assert!(!t.loaded_args, "nr {nr} loaded an argument");
                longest = longest.max(t.steps);
            }
            assert!(longest <= bound, "longest path {longest} > {bound}");
            println!(
                "seccomp: {} ranges, longest constant path {longest} instructions (bound {bound})",
                l.ranges
            );
        }
    }

    /// The notify program decides exactly like the errno program, except
    /// that a refusal becomes `USER_NOTIF` (the runtimes' probes excepted):
    /// same allows, same kills, for every number and some argument shapes.
    #[test]
    fn notify_program_differs_only_in_refusals() {
        let shapes: [[u64; 6]; 6] = [
            [0; 6],
            [u64::MAX; 6],
            [libc::CLONE_NEWUSER as u64, 0, 0, 0, 0, 0],
            [libc::AF_INET as u64, libc::SOCK_RAW as u64, 0, 0, 0, 0],
            [3, libc::TIOCSTI, 0, 0, 0, 0],
            [libc::AF_PACKET as u64, libc::SOCK_DGRAM as u64, 0, 0, 0, 0],
        ];
        for p in [
            Policy::default(),
            Policy::default()
                .deny(["getppid", "socket"])
                .allow(["ptrace"]),
            Policy::default().deny(["clone3"]),
        ] {
            let errno = compile(&p).unwrap();
            let notify = compile_with(&p, Denials::Notify).unwrap();
            let decisions = p.resolve().unwrap();
            let (mut refused, mut probes) = (0, 0);
            for arch in [AUDIT_ARCH_X86_64, 0x4000_0003] {
                for nr in (0..1024).chain([X32_SYSCALL_BIT as i32 + 1]) {
                    for args in shapes {
                        let data = SeccompData {
                            nr,
                            arch,
                            instruction_pointer: 0,
                            args,
                        };
                        let e = crate::seccomp::bpf_interp::run(&errno, &data).unwrap();
                        let n = crate::seccomp::bpf_interp::run(&notify, &data).unwrap();
                        if e & libc::SECCOMP_RET_ACTION_FULL != libc::SECCOMP_RET_ERRNO {
                            assert_eq!(n, e, "nr {nr} arch {arch:#x} {args:?}");
                            continue;
                        }
                        let probe = table::ENOSYS.iter().any(|&(_, x)| x == i64::from(nr))
                            && decisions[&i64::from(nr)].1 == Decision::Errno(libc::ENOSYS);
                        if probe {
                            probes += 1;
                            assert_eq!(n, e, "probe nr {nr} must stay in the kernel");
                        } else {
                            refused += 1;
                            assert_eq!(n, libc::SECCOMP_RET_USER_NOTIF, "nr {nr} {args:?}");
                        }
                    }
                }
            }
            assert!(refused > 1000 && probes > 0, "{refused} {probes}");
        }
        // A caller's deny of a probe is a refusal like any other.
        let p = Policy::default().deny(["clone3"]);
        let notify = compile_with(&p, Denials::Notify).unwrap();
        let data = SeccompData {
            nr: libc::SYS_clone3 as i32,
            arch: AUDIT_ARCH_X86_64,
            ..SeccompData::default()
        };
        assert_eq!(
            crate::seccomp::bpf_interp::run(&notify, &data).unwrap(),
            libc::SECCOMP_RET_USER_NOTIF
        );
    }

    #[test]
    fn policy_without_deny_sections() {
        // Denying every call with an early-deny section leaves only
        // clone/personality blocks, which start with their allow section.
        let p = Policy::default().deny(["ioctl", "socket", "socketpair"]);
        let prog = compile(&p).unwrap();
        assert_eq!(prog[..6], preamble()[..]);
        let block = arg_block(libc::SYS_clone, ArgRule::Clone, Denials::Errno).unwrap();
        assert_eq!(block[0], stmt(BPF_LD_W_ABS, OFFSET_NR));
        assert_eq!(
            *block.last().unwrap(),
            stmt(BPF_RET_K, errno_action(libc::EPERM))
        );
    }

    #[test]
    fn check_rejects_bad_programs() {
        assert!(check(&[stmt(BPF_JMP_JA, 0)]).is_err());
        assert!(check(&[jump(BPF_JEQ_K, 0, 1, 0), stmt(BPF_RET_K, 0)]).is_err());
        assert!(check(&[stmt(BPF_RET_K, u32::from(SENTINEL))]).is_err());
        assert!(check(&[stmt(BPF_LD_W_ABS, 64), stmt(BPF_RET_K, 0)]).is_err());
        assert!(check(&[stmt(BPF_RET_K, 0)]).is_ok());
    }

    /// Reduced mode: TCP and route netlink only, no UDP/raw/unix sockets,
    /// no `listen`, no Fast Open, no SysV/POSIX IPC, `connect` to the host;
    /// and the caller's `.allow()` cannot lift any of it.
    #[test]
    fn reduced_program_decisions() {
        use crate::seccomp::bpf_interp::run;
        let (inet, inet6, unix) = (
            libc::AF_INET as u64,
            libc::AF_INET6 as u64,
            libc::AF_UNIX as u64,
        );
        let (stream, dgram, raw) = (
            libc::SOCK_STREAM as u64,
            libc::SOCK_DGRAM as u64,
            libc::SOCK_RAW as u64,
        );
        let cloexec = libc::SOCK_CLOEXEC as u64 | libc::SOCK_NONBLOCK as u64;
        let fastopen = u64::from(table::MSG_FASTOPEN);
        let eperm = errno_action(libc::EPERM);
        let allow = libc::SECCOMP_RET_ALLOW;
        let notif = libc::SECCOMP_RET_USER_NOTIF;
        let cases: &[(i64, [u64; 6], u32, u32)] = &[
            // (nr, args, reduced, default)
            (libc::SYS_socket, [inet, stream, 0, 0, 0, 0], allow, allow),
            (
                libc::SYS_socket,
                [inet6, stream | cloexec, 6, 0, 0, 0],
                allow,
                allow,
            ),
            (libc::SYS_socket, [inet, dgram, 0, 0, 0, 0], eperm, allow),
            (
                libc::SYS_socket,
                [inet6, dgram | cloexec, 17, 0, 0, 0],
                eperm,
                allow,
            ),
            (
                libc::SYS_socket,
                [inet, dgram, libc::IPPROTO_ICMP as u64, 0, 0, 0],
                eperm,
                allow,
            ),
            (libc::SYS_socket, [inet, raw, 1, 0, 0, 0], eperm, eperm),
            // SCTP and MPTCP are SOCK_STREAM too, and Landlock's TCP rules
            // do not cover them.
            (libc::SYS_socket, [inet, stream, 132, 0, 0, 0], eperm, allow),
            (
                libc::SYS_socket,
                [inet6, stream, 262, 0, 0, 0],
                eperm,
                allow,
            ),
            (libc::SYS_socket, [unix, stream, 0, 0, 0, 0], eperm, allow),
            (
                libc::SYS_socket,
                [libc::AF_NETLINK as u64, raw, 0, 0, 0, 0],
                allow,
                allow,
            ),
            (
                libc::SYS_socket,
                [libc::AF_PACKET as u64, raw, 0, 0, 0, 0],
                eperm,
                errno_action(libc::EAFNOSUPPORT),
            ),
            (
                libc::SYS_socketpair,
                [unix, stream, 0, 0, 0, 0],
                allow,
                allow,
            ),
            (libc::SYS_listen, [3, 1, 0, 0, 0, 0], eperm, allow),
            (libc::SYS_bind, [3, 0, 16, 0, 0, 0], allow, allow),
            (libc::SYS_connect, [3, 0, 16, 0, 0, 0], notif, allow),
            (libc::SYS_sendto, [3, 0, 1, fastopen, 0, 16], eperm, allow),
            (
                libc::SYS_sendto,
                [3, 0, 1, libc::MSG_NOSIGNAL as u64, 0, 0],
                allow,
                allow,
            ),
            (
                libc::SYS_sendmsg,
                [3, 0, fastopen | 0x40, 0, 0, 0],
                eperm,
                allow,
            ),
            (libc::SYS_sendmsg, [3, 0, 0, 0, 0, 0], allow, allow),
            (libc::SYS_sendmmsg, [3, 0, 1, fastopen, 0, 0], eperm, allow),
            (libc::SYS_shmget, [0, 4096, 0, 0, 0, 0], eperm, allow),
            (libc::SYS_shmat, [0, 0, 0, 0, 0, 0], eperm, allow),
            (libc::SYS_msgget, [0, 0, 0, 0, 0, 0], eperm, allow),
            (libc::SYS_mq_open, [0, 0, 0, 0, 0, 0], eperm, allow),
            (libc::SYS_read, [0, 0, 0, 0, 0, 0], allow, allow),
            (libc::SYS_mount, [0, 0, 0, 0, 0, 0], eperm, eperm),
        ];
        let lifted = ["socket", "listen", "connect", "sendto", "shmget", "mq_open"];
        for policy in [
            Policy::default().reduced(),
            Policy::default().allow(lifted).reduced(),
            Policy::default().reduced().allow(lifted),
        ] {
            let errno = compile(&policy).unwrap();
            let notify = compile_with(&policy, Denials::Notify).unwrap();
            let default = compile(&Policy::default()).unwrap();
            for &(nr, args, want, want_default) in cases {
                let data = SeccompData {
                    nr: nr as i32,
                    arch: AUDIT_ARCH_X86_64,
                    instruction_pointer: 0,
                    args,
                };
                assert_eq!(
                    run(&errno, &data).unwrap(),
                    want,
                    "reduced nr {nr} {args:?}"
                );
                assert_eq!(
                    run(&default, &data).unwrap(),
                    want_default,
                    "default nr {nr} {args:?}"
                );
                let n = run(&notify, &data).unwrap();
                let expect_n = if want == allow { allow } else { notif };
                assert_eq!(n, expect_n, "reduced notify nr {nr} {args:?}");
            }
        }
    }
}
