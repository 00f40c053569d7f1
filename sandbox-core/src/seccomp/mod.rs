//! The "syscalls" ring: a seccomp-BPF allowlist compiled from a table.
//!
//! - [`table`]: the policy as data (which syscall gets which action, and the
//!   argument rules). Changing it is a reviewed diff of `golden.txt`.
//! - [`compile()`]: [`Policy`] → BPF program, via `seccompiler` plus our own
//!   arch/x32 preamble.
//! - [`bpf_interp`]: a small BPF interpreter that runs the program in tests.
//!
//! Not installed here: the last hop loads the compiled program with
//! `prctl(PR_SET_NO_NEW_PRIVS)` and `seccomp(SECCOMP_SET_MODE_FILTER, 0, ..)`.
//! x86_64 only (the table uses x86_64 numbers).

pub mod bpf_interp;
mod compile;
pub mod table;
mod tree;

#[cfg(test)]
mod golden;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

pub use compile::{
    compile, compile_with, errno_action, Denials, AUDIT_ARCH_X86_64, X32_SYSCALL_BIT,
};
pub use seccompiler::{sock_filter, BpfProgram};
use table::ArgRule;

/// Errors of the seccomp layer.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A name in `.allow()`/`.deny()` is not an x86_64 syscall we know.
    #[error("seccomp: unknown syscall name `{0}` in the allow/deny list (x86_64 names, e.g. `openat`, `clone3`)")]
    UnknownSyscall(String),
    /// `seccompiler` refused a section.
    #[error("seccomp: building the BPF program failed: {0}")]
    Backend(#[source] seccompiler::BackendError),
    /// The program is longer than the kernel accepts.
    #[error("seccomp: the filter has {0} instructions, the kernel accepts fewer than 4096")]
    TooLarge(usize),
    /// The assembled program failed our own check (a bug in the compiler).
    #[error("seccomp: compiled program invalid at instruction {pc}: {why}")]
    Invalid {
        /// Instruction index.
        pc: usize,
        /// What is wrong.
        why: &'static str,
    },
}

/// What the filter does with one syscall.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Always allowed.
    Allow,
    /// Always refused with this errno.
    Errno(i32),
    /// Decided by an argument rule.
    Args(ArgRule),
    /// Handed to the host (`SECCOMP_RET_USER_NOTIF`) whatever the arguments,
    /// in both compiled forms: reduced mode's `connect` ([`table::REDUCED_GATED`]).
    Gate,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Override {
    Allow,
    Deny,
}

/// The default table plus the caller's overrides, applied in order (a later
/// override of the same name wins).
///
/// `.allow(name)` makes the call unconditionally allowed, lifting any argument
/// rule (`.allow(["socket"])` allows every family); `.deny(name)` makes it
/// `EPERM`. Names are checked by [`compile()`]/[`Policy::resolve`]: an unknown
/// name is an error, never ignored.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Policy {
    overrides: Vec<(String, Override)>,
    reduced: bool,
}

impl Policy {
    /// Allow these syscalls unconditionally.
    pub fn allow<I, S>(mut self, names: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.overrides
            .extend(names.into_iter().map(|n| (n.into(), Override::Allow)));
        self
    }

    /// Refuse these syscalls with `EPERM`.
    pub fn deny<I, S>(mut self, names: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.overrides
            .extend(names.into_iter().map(|n| (n.into(), Override::Deny)));
        self
    }

    /// The filter of reduced mode (no namespaces, see `crate::reduced`): the
    /// table and the overrides, then [`table::REDUCED_EPERM`],
    /// [`table::REDUCED_ARG_CHECKED`] and [`table::REDUCED_GATED`] on top.
    /// Those win over `.allow()`: without the namespaces they are what keeps
    /// the command off the host's network and IPC.
    pub fn reduced(mut self) -> Self {
        self.reduced = true;
        self
    }

    /// Whether this is the reduced-mode filter ([`Policy::reduced`]).
    pub fn is_reduced(&self) -> bool {
        self.reduced
    }

    /// The decision for every syscall the filter names, by number. Numbers not
    /// in the map get [`table::DEFAULT_ERRNO`].
    pub fn resolve(&self) -> Result<BTreeMap<i64, (&'static str, Decision)>, Error> {
        let mut map = BTreeMap::new();
        let lists: [(&[table::Sys], Decision); 3] = [
            (table::ALLOW, Decision::Allow),
            (table::EPERM, Decision::Errno(libc::EPERM)),
            (table::ENOSYS, Decision::Errno(libc::ENOSYS)),
        ];
        for (list, decision) in lists {
            for &(name, nr) in list {
                map.insert(nr, (name, decision));
            }
        }
        for &(name, nr, rule) in table::ARG_CHECKED {
            map.insert(nr, (name, Decision::Args(rule)));
        }
        for (name, how) in &self.overrides {
            let (name, nr) = lookup(name).ok_or_else(|| Error::UnknownSyscall(name.clone()))?;
            let decision = match how {
                Override::Allow => Decision::Allow,
                Override::Deny => Decision::Errno(libc::EPERM),
            };
            map.insert(nr, (name, decision));
        }
        if self.reduced {
            for &(name, nr) in table::REDUCED_EPERM {
                map.insert(nr, (name, Decision::Errno(libc::EPERM)));
            }
            for &(name, nr, rule) in table::REDUCED_ARG_CHECKED {
                map.insert(nr, (name, Decision::Args(rule)));
            }
            for &(name, nr) in table::REDUCED_GATED {
                map.insert(nr, (name, Decision::Gate));
            }
        }
        Ok(map)
    }

    /// How many syscalls the filter can let through (unconditionally or
    /// depending on their arguments).
    pub fn allowlist_size(&self) -> Result<usize, Error> {
        Ok(self
            .resolve()?
            .values()
            .filter(|(_, d)| matches!(d, Decision::Allow | Decision::Args(_) | Decision::Gate))
            .count())
    }
}

/// Both programs of one policy: the one that answers refusals in the kernel
/// and the one that hands them to the host ([`Denials`]).
#[derive(Clone, Debug)]
pub struct Programs {
    /// [`Denials::Errno`]: the reference for every answer.
    pub errno: Arc<BpfProgram>,
    /// [`Denials::Notify`].
    pub notify: Arc<BpfProgram>,
}

/// [`compile()`] with a per-process cache: a policy is compiled once, then
/// every spawn with the same policy reuses the program.
pub fn compile_cached(policy: &Policy) -> Result<Arc<BpfProgram>, Error> {
    programs_cached(policy).map(|p| p.errno)
}

/// Both [`Programs`] of `policy`, compiled once per process.
pub fn programs_cached(policy: &Policy) -> Result<Programs, Error> {
    static CACHE: Mutex<Vec<(Policy, Programs)>> = Mutex::new(Vec::new());
    // A poisoned cache only means another thread panicked mid-insert; the
    // entries themselves are immutable.
    let mut cache = CACHE.lock().unwrap_or_else(|p| p.into_inner());
    if let Some((_, progs)) = cache.iter().find(|(p, _)| p == policy) {
        return Ok(progs.clone());
    }
    let progs = Programs {
        errno: Arc::new(compile(policy)?),
        notify: Arc::new(compile_with(policy, Denials::Notify)?),
    };
    // Policies are few per process; bound the cache anyway.
    if cache.len() >= 16 {
        cache.remove(0);
    }
    cache.push((policy.clone(), progs.clone()));
    Ok(progs)
}

/// One instruction as a `u64` (`code << 48 | jt << 40 | jf << 32 | k`), the
/// form the program travels in from the host to the sandbox init.
pub fn pack(ins: &sock_filter) -> u64 {
    (u64::from(ins.code) << 48)
        | (u64::from(ins.jt) << 40)
        | (u64::from(ins.jf) << 32)
        | u64::from(ins.k)
}

/// The inverse of [`pack`].
pub fn unpack(word: u64) -> sock_filter {
    sock_filter {
        code: (word >> 48) as u16,
        jt: (word >> 40) as u8,
        jf: (word >> 32) as u8,
        k: word as u32,
    }
}

/// Every syscall the table knows, as (name, x86_64 number).
pub fn known() -> impl Iterator<Item = (&'static str, i64)> {
    table::ALLOW
        .iter()
        .chain(table::EPERM)
        .chain(table::ENOSYS)
        .chain(table::OTHER)
        .copied()
        .chain(table::ARG_CHECKED.iter().map(|&(n, nr, _)| (n, nr)))
}

/// The x86_64 number of a syscall name known to the table.
pub fn lookup(name: &str) -> Option<(&'static str, i64)> {
    known().find(|&(n, _)| n == name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    #[test]
    fn table_names_and_numbers_are_unique() {
        let all: Vec<(&str, i64)> = table::ALLOW
            .iter()
            .chain(table::EPERM)
            .chain(table::ENOSYS)
            .chain(table::OTHER)
            .copied()
            .chain(table::ARG_CHECKED.iter().map(|&(n, nr, _)| (n, nr)))
            .collect();
        let names: BTreeSet<_> = all.iter().map(|e| e.0).collect();
        let nrs: BTreeSet<_> = all.iter().map(|e| e.1).collect();
        assert_eq!(names.len(), all.len(), "duplicate name in the table");
        assert_eq!(nrs.len(), all.len(), "duplicate number in the table");
        // Every x86_64 syscall 0..=334 (up to rseq) is named.
        assert!((0..=334).all(|n| nrs.contains(&n)));
    }

    #[test]
    fn unknown_names_are_errors() {
        let err = compile(&Policy::default().allow(["openat", "frobnicate"])).unwrap_err();
        assert!(
            matches!(&err, Error::UnknownSyscall(n) if n == "frobnicate"),
            "{err}"
        );
        assert!(err.to_string().contains("frobnicate"));
        assert!(Policy::default().deny(["SYS_read"]).resolve().is_err());
    }

    #[test]
    fn pack_round_trips_and_cache_returns_the_same_program() {
        let prog = compile_cached(&Policy::default()).unwrap();
        let again = compile_cached(&Policy::default()).unwrap();
        assert!(Arc::ptr_eq(&prog, &again));
        assert_eq!(*prog, compile(&Policy::default()).unwrap());
        let other = compile_cached(&Policy::default().deny(["getppid"])).unwrap();
        assert_ne!(*prog, *other);
        for ins in prog.iter() {
            assert_eq!(unpack(pack(ins)), *ins);
        }
    }

    #[test]
    fn overrides_apply_in_order() {
        let p = Policy::default().deny(["getppid"]).allow(["clone3"]);
        let m = p.resolve().unwrap();
        assert_eq!(m[&libc::SYS_getppid].1, Decision::Errno(libc::EPERM));
        assert_eq!(m[&libc::SYS_clone3].1, Decision::Allow);
        let m = Policy::default().deny(["x"]).overrides.len();
        assert_eq!(m, 1);
        let p = Policy::default().allow(["mount"]).deny(["mount"]);
        assert_eq!(
            p.resolve().unwrap()[&libc::SYS_mount].1,
            Decision::Errno(libc::EPERM)
        );
    }
}
