//! The naive layout, for comparison: the same preamble, then one
//! `JEQ nr → RET` pair per named syscall in number order, then the default.
//! Argument-checked syscalls are approximated as allowed: the point is the
//! shape (a linear chain the kernel walks for every number at attach time),
//! not the exact policy.

use stockade::seccomp::table::DEFAULT_ERRNO;
use stockade::seccomp::{
    errno_action, sock_filter, BpfProgram, Decision, Policy, AUDIT_ARCH_X86_64, X32_SYSCALL_BIT,
};

const LD_W_ABS: u16 = 0x20;
const JEQ_K: u16 = 0x15;
const JGE_K: u16 = 0x35;
const RET_K: u16 = 0x06;

fn ins(code: u16, jt: u8, jf: u8, k: u32) -> sock_filter {
    sock_filter { code, jt, jf, k }
}

pub fn build(policy: &Policy) -> BpfProgram {
    let kill = libc::SECCOMP_RET_KILL_PROCESS;
    let mut prog = vec![
        ins(LD_W_ABS, 0, 0, 4),
        ins(JEQ_K, 1, 0, AUDIT_ARCH_X86_64),
        ins(RET_K, 0, 0, kill),
        ins(LD_W_ABS, 0, 0, 0),
        ins(JGE_K, 0, 1, X32_SYSCALL_BIT),
        ins(RET_K, 0, 0, kill),
    ];
    let decisions = policy.resolve().expect("the default policy resolves");
    for (&nr, &(_, decision)) in &decisions {
        let action = match decision {
            Decision::Allow | Decision::Args(_) => libc::SECCOMP_RET_ALLOW,
            // The fall-through default below covers these already.
            Decision::Errno(e) if e == DEFAULT_ERRNO => continue,
            Decision::Errno(e) => errno_action(e),
        };
        prog.push(ins(JEQ_K, 0, 1, nr as u32));
        prog.push(ins(RET_K, 0, 0, action));
    }
    prog.push(ins(RET_K, 0, 0, errno_action(DEFAULT_ERRNO)));
    prog
}
