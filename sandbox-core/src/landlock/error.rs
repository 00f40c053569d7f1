//! Errors of the Landlock layer. Each names the operation, the errno or the
//! crate's error, and, where the host is at fault, the fix.

use std::path::PathBuf;

use nix::errno::Errno;

/// Building the Landlock ruleset failed.
#[derive(Debug, thiserror::Error)]
pub enum LandlockError {
    /// The kernel has no usable Landlock and the caller did not accept running
    /// without it.
    #[error("landlock: unavailable on this host ({errno}): {}", remedy(*errno))]
    Unsupported {
        /// From the ABI version query.
        errno: Errno,
    },
    /// A rule path could not be opened (`O_PATH`) or inspected.
    #[error("landlock: open {} for a rule: {errno}", path.display())]
    OpenPath {
        /// Path inside the sandbox.
        path: PathBuf,
        /// From `open` or `fstat`.
        errno: Errno,
    },
    /// The `landlock` crate refused a step; with hard requirements this
    /// includes any right the kernel does not support.
    #[error("landlock: {step}: {source}")]
    Ruleset {
        /// What was being done.
        step: &'static str,
        /// The crate's error.
        #[source]
        source: ::landlock::RulesetError,
    },
    /// The crate returned no ruleset descriptor although the kernel has
    /// Landlock (would be a silent fail-open).
    #[error("landlock: no ruleset descriptor although the kernel reports ABI {abi}")]
    NoRulesetFd {
        /// The detected ABI.
        abi: u32,
    },
}

/// What the host should change for each reason Landlock is unavailable.
fn remedy(errno: Errno) -> &'static str {
    match errno {
        Errno::ENOSYS => {
            "the kernel lacks Landlock; use Linux 5.13 or newer built with CONFIG_SECURITY_LANDLOCK=y"
        }
        Errno::EOPNOTSUPP => {
            "Landlock is built but not enabled; add `landlock` to the `lsm=` kernel boot parameter"
        }
        Errno::EPERM => {
            "a seccomp filter around this process (container runtime?) blocks the Landlock syscalls; allow landlock_create_ruleset, landlock_add_rule and landlock_restrict_self"
        }
        _ => "unexpected error from the Landlock ABI query",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_the_layer_errno_and_fix() {
        let e = LandlockError::Unsupported {
            errno: Errno::EOPNOTSUPP,
        };
        let s = e.to_string();
        assert!(s.starts_with("landlock: unavailable"), "{s}");
        assert!(s.contains("EOPNOTSUPP"), "{s}");
        assert!(s.contains("lsm="), "{s}");
        let e = LandlockError::OpenPath {
            path: "/w".into(),
            errno: Errno::ENOENT,
        };
        assert_eq!(
            e.to_string(),
            "landlock: open /w for a rule: ENOENT: No such file or directory"
        );
    }
}
