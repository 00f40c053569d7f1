//! The access and syscall rings as the init builds them, after `pivot_root`
//! (paths inside the new root) and before the last hop enforces them.

use std::os::fd::BorrowedFd;

use nix::errno::Errno;
use nix::sys::stat::SFlag;

use super::wire::Plan;
use crate::error::{Layer, SetupFailure};
use crate::fs::plan::MountOp;
use crate::landlock::{IfUnsupported, LandlockError, PreparedRuleset, Rules};

/// The Landlock rules for the whole mount plan: `base`, then the plan's own
/// mounts.
pub(crate) fn landlock_rules(base: &[MountOp], plan: &Plan) -> Rules {
    Rules::for_sandbox(base.iter().chain(&plan.mounts), &plan.landlock)
}

/// Build the ruleset for `rules` plus a rule for each descriptor the command
/// inherits (see [`PreparedRuleset::prepare_with_inherited`]).
pub(crate) fn landlock_ruleset(
    rules: &Rules,
    required: bool,
    inherited: &[BorrowedFd<'_>],
) -> Result<PreparedRuleset, SetupFailure> {
    let if_unsupported = if required {
        IfUnsupported::Fail
    } else {
        IfUnsupported::RunWithout
    };
    PreparedRuleset::prepare_with_inherited(rules, inherited, if_unsupported).map_err(|e| {
        let (errno, accept) = match &e {
            LandlockError::Unsupported { errno } => (
                *errno,
                "; or accept running without Landlock (CLI --allow-no-landlock, Rust \
                 Sandbox::require_landlock(false)): the other layers still apply",
            ),
            LandlockError::OpenPath { errno, .. } => (*errno, ""),
            _ => (Errno::UnknownErrno, ""),
        };
        SetupFailure {
            layer: Layer::Landlock,
            step: "build the ruleset".into(),
            errno: errno as i32,
            detail: format!("{e}{accept}"),
        }
    })
}

/// Whether inheriting `fd` needs a rule of its own (a regular file or a
/// device other than `/dev/null`, which the plan's rules already cover: a
/// Landlock rule belongs to the inode, and the sandbox's `/dev/null` is a
/// bind of the host's). A session builds a per-command ruleset only then.
pub(crate) fn needs_inherited_rule(fd: BorrowedFd<'_>) -> bool {
    let Ok(st) = nix::sys::stat::fstat(fd) else {
        return true;
    };
    let kind = SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT;
    if kind == SFlag::S_IFREG {
        return true;
    }
    kind == SFlag::S_IFCHR && st.st_rdev != nix::sys::stat::makedev(1, 3)
}

/// The seccomp program from the plan's packed words; an empty program would
/// mean running unfiltered, which is refused.
pub(crate) fn unpack_filter(words: &[u64]) -> Result<Vec<libc::sock_filter>, SetupFailure> {
    if words.is_empty() || words.len() > usize::from(u16::MAX) {
        return Err(SetupFailure {
            layer: Layer::Seccomp,
            step: "receive the filter".into(),
            errno: libc::EINVAL,
            detail: format!("the plan carries {} instructions", words.len()),
        });
    }
    Ok(words
        .iter()
        .map(|&w| {
            let i = crate::seccomp::unpack(w);
            libc::sock_filter {
                code: i.code,
                jt: i.jt,
                jf: i.jf,
                k: i.k,
            }
        })
        .collect())
}
