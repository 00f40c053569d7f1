//! A classic-BPF interpreter for the seccomp subset, so the compiled filter can
//! be executed in tests without a kernel (the golden table).
//!
//! Supported: `LD W ABS` (aligned, inside `seccomp_data`), `ALU AND K`,
//! `JMP JA/JEQ/JGT/JGE/JSET K`, `RET K`. Anything else is an error, as are
//! jumps out of the program and falling off its end: the kernel's checker
//! would refuse such a program, so the interpreter does too.

use seccompiler::sock_filter;

const BPF_LD: u16 = 0x00;
const BPF_ALU: u16 = 0x04;
const BPF_JMP: u16 = 0x05;
const BPF_RET: u16 = 0x06;
const BPF_W: u16 = 0x00;
const BPF_ABS: u16 = 0x20;
const BPF_K: u16 = 0x00;
const BPF_AND: u16 = 0x50;
const BPF_JA: u16 = 0x00;
const BPF_JEQ: u16 = 0x10;
const BPF_JGT: u16 = 0x20;
const BPF_JGE: u16 = 0x30;
const BPF_JSET: u16 = 0x40;

/// `struct seccomp_data` as the kernel hands it to the filter.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SeccompData {
    /// The syscall number (`nr | 0x40000000` for x32).
    pub nr: i32,
    /// The `AUDIT_ARCH_*` value of the calling convention.
    pub arch: u32,
    /// The instruction pointer at the syscall.
    pub instruction_pointer: u64,
    /// The six syscall arguments, always 64 bits wide.
    pub args: [u64; 6],
}

impl SeccompData {
    /// The 32-bit word at byte `offset`, as the kernel lays the struct out
    /// (little-endian on every arch we care about).
    fn word(&self, offset: u32) -> Option<u32> {
        if offset % 4 != 0 {
            return None;
        }
        let u64_half = |v: u64, hi: bool| if hi { (v >> 32) as u32 } else { v as u32 };
        match offset {
            0 => Some(self.nr as u32),
            4 => Some(self.arch),
            8 | 12 => Some(u64_half(self.instruction_pointer, offset == 12)),
            16..=60 => {
                let i = ((offset - 16) / 8) as usize;
                Some(u64_half(self.args[i], (offset - 16) % 8 == 4))
            }
            _ => None,
        }
    }
}

/// Why a program could not be run to a `RET`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InterpError {
    /// An opcode outside the seccomp subset this interpreter implements.
    #[error("bpf: unsupported opcode {code:#06x} at instruction {pc}")]
    Unsupported {
        /// Instruction index.
        pc: usize,
        /// The opcode.
        code: u16,
    },
    /// A load outside `seccomp_data` or not 4-byte aligned.
    #[error("bpf: bad load offset {offset} at instruction {pc}")]
    BadLoad {
        /// Instruction index.
        pc: usize,
        /// The byte offset.
        offset: u32,
    },
    /// A jump beyond the end, or the program ran off its end without `RET`.
    #[error("bpf: control left the program at instruction {pc}")]
    OutOfBounds {
        /// Instruction index of the jump (or the program length).
        pc: usize,
    },
}

/// Run `prog` on `data` and return the seccomp action word (`SECCOMP_RET_*`).
pub fn run(prog: &[sock_filter], data: &SeccompData) -> Result<u32, InterpError> {
    trace(prog, data).map(|t| t.action)
}

/// What one run did, beyond its result.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Trace {
    /// The action word the program returned.
    pub action: u32,
    /// Instructions executed, the final `RET` included.
    pub steps: usize,
    /// Whether any `seccomp_data.args` word was loaded. The kernel's action
    /// cache evaluates the filter at attach time for each number
    /// (`seccomp_is_const_allow`) and gives up on any load other than `nr`
    /// and `arch`: an allowed number is cached as always-allow only if its
    /// path loads no argument (nor `instruction_pointer`, which our filters
    /// never read).
    pub loaded_args: bool,
}

/// Byte offset of `seccomp_data.args` (after nr, arch, instruction_pointer).
const OFFSET_ARGS: u32 = 16;

/// Run `prog` on `data` like [`run`] and report what the run did.
pub fn trace(prog: &[sock_filter], data: &SeccompData) -> Result<Trace, InterpError> {
    let mut acc: u32 = 0;
    let mut pc: usize = 0;
    let mut steps = 0;
    let mut loaded_args = false;
    // Classic BPF only jumps forward, so every step makes progress; the loop
    // ends by RET or by an error.
    loop {
        let Some(ins) = prog.get(pc) else {
            return Err(InterpError::OutOfBounds { pc });
        };
        steps += 1;
        let code = ins.code;
        let next = |off: u32| -> Result<usize, InterpError> {
            let target = pc + 1 + off as usize;
            if target >= prog.len() {
                Err(InterpError::OutOfBounds { pc })
            } else {
                Ok(target)
            }
        };
        pc = match code {
            c if c == BPF_LD | BPF_W | BPF_ABS => {
                loaded_args |= ins.k >= OFFSET_ARGS;
                acc = data
                    .word(ins.k)
                    .ok_or(InterpError::BadLoad { pc, offset: ins.k })?;
                next(0)?
            }
            c if c == BPF_ALU | BPF_AND | BPF_K => {
                acc &= ins.k;
                next(0)?
            }
            c if c == BPF_JMP | BPF_JA => next(ins.k)?,
            c if c & 0x07 == BPF_JMP && c & 0x08 == BPF_K => {
                let taken = match c & 0xf0 {
                    BPF_JEQ => acc == ins.k,
                    BPF_JGT => acc > ins.k,
                    BPF_JGE => acc >= ins.k,
                    BPF_JSET => acc & ins.k != 0,
                    _ => return Err(InterpError::Unsupported { pc, code }),
                };
                next(u32::from(if taken { ins.jt } else { ins.jf }))?
            }
            c if c == BPF_RET | BPF_K => {
                return Ok(Trace {
                    action: ins.k,
                    steps,
                    loaded_args,
                })
            }
            _ => return Err(InterpError::Unsupported { pc, code }),
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn nr(nr: i32) -> SeccompData {
        SeccompData {
            nr,
            ..Default::default()
        }
    }

    #[test]
    fn ret_constant() {
        assert_eq!(run(&[stmt(BPF_RET | BPF_K, 7)], &nr(0)), Ok(7));
    }

    #[test]
    fn loads_every_field() {
        let d = SeccompData {
            nr: -2,
            arch: 0xc000_003e,
            instruction_pointer: 0x1111_2222_3333_4444,
            args: [1, 2, 3, 4, 5, 0xaaaa_bbbb_cccc_dddd],
        };
        let load = |off| run(&[stmt(BPF_LD | BPF_W | BPF_ABS, off), stmt(BPF_RET, 0)], &d);
        assert_eq!(d.word(0), Some(0xffff_fffe));
        assert_eq!(d.word(4), Some(0xc000_003e));
        assert_eq!(d.word(8), Some(0x3333_4444));
        assert_eq!(d.word(12), Some(0x1111_2222));
        assert_eq!(d.word(16), Some(1));
        assert_eq!(d.word(20), Some(0));
        assert_eq!(d.word(56), Some(0xcccc_dddd));
        assert_eq!(d.word(60), Some(0xaaaa_bbbb));
        assert_eq!(load(60), Ok(0));
        assert_eq!(load(64), Err(InterpError::BadLoad { pc: 0, offset: 64 }));
        assert_eq!(load(2), Err(InterpError::BadLoad { pc: 0, offset: 2 }));
    }

    #[test]
    fn conditional_jumps() {
        // A = nr; if A <op> 10 return 1 else return 2
        let prog = |op: u16| {
            vec![
                stmt(BPF_LD | BPF_W | BPF_ABS, 0),
                jump(BPF_JMP | op | BPF_K, 10, 0, 1),
                stmt(BPF_RET, 1),
                stmt(BPF_RET, 2),
            ]
        };
        for (op, n, want) in [
            (BPF_JEQ, 10, 1),
            (BPF_JEQ, 11, 2),
            (BPF_JGT, 10, 2),
            (BPF_JGT, 11, 1),
            (BPF_JGE, 10, 1),
            (BPF_JGE, 9, 2),
            (BPF_JSET, 2, 1),
            (BPF_JSET, 5, 2),
            // Comparisons are unsigned: -1 is 0xffffffff.
            (BPF_JGT, -1, 1),
        ] {
            assert_eq!(run(&prog(op), &nr(n)), Ok(want), "op {op:#x} nr {n}");
        }
    }

    #[test]
    fn trace_counts_steps_and_argument_loads() {
        // A = nr; if A == 1 goto args; return 7; args: A = args[0].lo; return 8
        let prog = [
            stmt(BPF_LD | BPF_W | BPF_ABS, 0),
            jump(BPF_JMP | BPF_JEQ | BPF_K, 1, 1, 0),
            stmt(BPF_RET, 7),
            stmt(BPF_LD | BPF_W | BPF_ABS, 16),
            stmt(BPF_RET, 8),
        ];
        let constant = trace(&prog, &nr(0)).unwrap();
        assert_eq!(
            constant,
            Trace {
                action: 7,
                steps: 3,
                loaded_args: false
            }
        );
        let by_args = trace(&prog, &nr(1)).unwrap();
        assert_eq!((by_args.action, by_args.steps), (8, 4));
        assert!(by_args.loaded_args);
        // arch and instruction_pointer are not arguments.
        let ip = [stmt(BPF_LD | BPF_W | BPF_ABS, 12), stmt(BPF_RET, 0)];
        assert!(!trace(&ip, &nr(0)).unwrap().loaded_args);
    }

    #[test]
    fn ja_and_alu_and() {
        let prog = [
            stmt(BPF_LD | BPF_W | BPF_ABS, 0),
            stmt(BPF_ALU | BPF_AND | BPF_K, 0xf0),
            stmt(BPF_JMP | BPF_JA, 1),
            stmt(BPF_RET, 99),
            jump(BPF_JMP | BPF_JEQ | BPF_K, 0x30, 0, 1),
            stmt(BPF_RET, 1),
            stmt(BPF_RET, 2),
        ];
        assert_eq!(run(&prog, &nr(0x3f)), Ok(1));
        assert_eq!(run(&prog, &nr(0x4f)), Ok(2));
    }

    #[test]
    fn rejects_bad_programs() {
        assert_eq!(run(&[], &nr(0)), Err(InterpError::OutOfBounds { pc: 0 }));
        let falls_off = [stmt(BPF_LD | BPF_W | BPF_ABS, 0)];
        assert_eq!(
            run(&falls_off, &nr(0)),
            Err(InterpError::OutOfBounds { pc: 0 })
        );
        let far = [stmt(BPF_JMP | BPF_JA, 5), stmt(BPF_RET, 0)];
        assert_eq!(run(&far, &nr(0)), Err(InterpError::OutOfBounds { pc: 0 }));
        let far_cond = [jump(BPF_JMP | BPF_JEQ | BPF_K, 0, 3, 0), stmt(BPF_RET, 0)];
        assert_eq!(
            run(&far_cond, &nr(0)),
            Err(InterpError::OutOfBounds { pc: 0 })
        );
        // LD IMM, JEQ X, RET A: valid BPF, outside our subset.
        for code in [0x00, BPF_JMP | BPF_JEQ | 0x08, BPF_RET | 0x10] {
            assert_eq!(
                run(&[stmt(code, 0), stmt(BPF_RET, 0)], &nr(0)),
                Err(InterpError::Unsupported { pc: 0, code })
            );
        }
    }
}
