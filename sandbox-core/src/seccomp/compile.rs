//! Policy → BPF: the per-syscall decisions are compiled with `seccompiler` in
//! sections (one `SeccompFilter` per action), chained, and preceded by our own
//! preamble.
//!
//! `seccompiler` 0.5 builds a filter with a single match action and a single
//! mismatch action. We need several actions (allow, `EPERM`, `EAFNOSUPPORT`,
//! argument-dependent ones) so we compile one section per action with a
//! sentinel mismatch action, and rewrite every sentinel `RET` into a `JA` to
//! the start of the next section; the last section falls through to
//! `RET ERRNO(ENOSYS)`. Rewriting is in place and `seccompiler`'s jumps are
//! relative, so no offset moves. Order of sections:
//!
//! 1. `EPERM` by argument: `ioctl` with a denied cmd, raw `AF_INET(6)` sockets;
//! 2. allow: the plain allowlist plus the argument-checked allows (`clone`
//!    without namespace flags, `personality` values, socket families);
//! 3. one section per errno (`EPERM`, then `EAFNOSUPPORT`, ...): the rest of
//!    the argument-checked calls land here unconditionally.
//!
//! `seccompiler` 0.5 emits an arch check (`arch != native → KILL_PROCESS`)
//! at the head of every filter but no x32 check (rust-vmm/seccompiler#74). We
//! strip its check from each section and put one preamble in front:
//!
//! ```text
//! 0: A = seccomp_data.arch
//! 1: if A == AUDIT_ARCH_X86_64 goto 3
//! 2: return KILL_PROCESS
//! 3: A = seccomp_data.nr
//! 4: if A >= __X32_SYSCALL_BIT (0x40000000) goto 5 else goto 6
//! 5: return KILL_PROCESS
//! 6: sections...
//! ```

use std::collections::BTreeMap;

use seccompiler::{
    sock_filter, BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition,
    SeccompFilter, SeccompRule, TargetArch,
};

use super::table::{self, ArgRule};
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
        ArgRule::Socket | ArgRule::Socketpair => [libc::AF_INET as u32, libc::AF_INET6 as u32]
            .iter()
            .map(|&family| {
                rule(vec![
                    cond(0, Eq, family)?,
                    cond(
                        1,
                        MaskedEq(u64::from(table::SOCK_TYPE_MASK)),
                        table::SOCK_RAW,
                    )?,
                ])
            })
            .collect(),
        ArgRule::Clone | ArgRule::Personality => Ok(Vec::new()),
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
        ArgRule::Ioctl => Ok(Vec::new()),
        ArgRule::Personality => table::PERSONALITY_ALLOW
            .iter()
            .map(|&v| rule(vec![cond(0, Eq, v)?]))
            .collect(),
        ArgRule::Socket | ArgRule::Socketpair => {
            let mut rules = table::SOCKET_FAMILIES
                .iter()
                .map(|&(_, family)| rule(vec![cond(0, Eq, family)?]))
                .collect::<Result<Vec<_>, _>>()?;
            if arg_rule == ArgRule::Socket {
                rules.push(rule(vec![
                    cond(0, Eq, table::NETLINK_FAMILY)?,
                    cond(2, Eq, table::NETLINK_PROTOCOL)?,
                ])?);
            }
            Ok(rules)
        }
    }
}

/// The errno `rule` returns when neither section 1 nor section 2 decided.
fn fallback_errno(arg_rule: ArgRule) -> Option<i32> {
    match arg_rule {
        ArgRule::Clone | ArgRule::Personality => Some(libc::EPERM),
        ArgRule::Socket | ArgRule::Socketpair => Some(libc::EAFNOSUPPORT),
        ArgRule::Ioctl => None,
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

/// Compile `policy` to a seccomp-BPF program for x86_64, ready for
/// `seccomp(SECCOMP_SET_MODE_FILTER, 0, &sock_fprog)`.
pub fn compile(policy: &Policy) -> Result<BpfProgram, Error> {
    let decisions = policy.resolve()?;

    let mut early: Rules = BTreeMap::new();
    let mut allow: Rules = BTreeMap::new();
    let mut by_errno: BTreeMap<i32, Rules> = BTreeMap::new();
    for (&nr, &(_, decision)) in &decisions {
        match decision {
            Decision::Allow => {
                allow.insert(nr, Vec::new());
            }
            Decision::Errno(e) if e == table::DEFAULT_ERRNO => {}
            Decision::Errno(e) => {
                by_errno.entry(e).or_default().insert(nr, Vec::new());
            }
            Decision::Args(arg_rule) => {
                let deny = early_deny_rules(arg_rule)?;
                if !deny.is_empty() {
                    early.insert(nr, deny);
                }
                allow.insert(nr, allow_rules(arg_rule)?);
                if let Some(e) = fallback_errno(arg_rule) {
                    by_errno.entry(e).or_default().insert(nr, Vec::new());
                }
            }
        }
    }
    // EPERM first only for a stable, readable layout; sections are disjoint
    // except for argument-checked calls, whose order is fixed above.
    let mut sections = vec![
        (early, SeccompAction::Errno(libc::EPERM as u32)),
        (allow, SeccompAction::Allow),
    ];
    for (errno, rules) in by_errno {
        sections.push((rules, SeccompAction::Errno(errno as u32)));
    }

    let sentinel = u32::from(SENTINEL);
    let mut prog = preamble();
    for (rules, action) in sections {
        if rules.is_empty() {
            continue;
        }
        let body = section(rules, action)?;
        let start = prog.len();
        let end = start + body.len();
        prog.extend(body);
        for (i, ins) in prog.iter_mut().enumerate().take(end).skip(start) {
            if ins.code == BPF_RET_K && ins.k == sentinel {
                // Fall through to the next section (or the default below).
                *ins = stmt(BPF_JMP_JA, (end - i - 1) as u32);
            }
        }
    }
    prog.push(stmt(BPF_RET_K, errno_action(table::DEFAULT_ERRNO)));
    check(&prog)?;
    Ok(prog)
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

    #[test]
    fn starts_with_preamble_and_ends_with_default() {
        let prog = compile(&Policy::default()).unwrap();
        assert_eq!(prog[..6], preamble()[..]);
        // Section 1 starts by loading nr again.
        assert_eq!(prog[6], stmt(BPF_LD_W_ABS, OFFSET_NR));
        assert_eq!(
            *prog.last().unwrap(),
            stmt(BPF_RET_K, errno_action(libc::ENOSYS))
        );
        assert!(prog
            .iter()
            .all(|i| !(i.code == BPF_RET_K && i.k == u32::from(SENTINEL))));
    }

    #[test]
    fn empty_section_is_skipped() {
        // Denying every early-deny call leaves section 1 empty.
        let p = Policy::default().deny(["ioctl", "socket", "socketpair"]);
        let prog = compile(&p).unwrap();
        assert_eq!(prog[..6], preamble()[..]);
    }

    #[test]
    fn check_rejects_bad_programs() {
        assert!(check(&[stmt(BPF_JMP_JA, 0)]).is_err());
        assert!(check(&[jump(BPF_JEQ_K, 0, 1, 0), stmt(BPF_RET_K, 0)]).is_err());
        assert!(check(&[stmt(BPF_RET_K, u32::from(SENTINEL))]).is_err());
        assert!(check(&[stmt(BPF_LD_W_ABS, 64), stmt(BPF_RET_K, 0)]).is_err());
        assert!(check(&[stmt(BPF_RET_K, 0)]).is_ok());
    }
}
