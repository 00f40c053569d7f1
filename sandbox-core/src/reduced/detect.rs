//! Whether this host can give us a user namespace, and what the caller is
//! told when it cannot.
//!
//! The real test is the full mode's own attempt: the helper's
//! `clone(CLONE_NEWUSER | ...)` (or the id maps after it) fails with
//! `EPERM`/`EACCES` (disabled, or refused by a container's seccomp profile
//! or an LSM), `ENOSPC`/`EUSERS` (`user.max_user_namespaces` is 0 or used
//! up) or `EINVAL` (a kernel without user namespaces). With the opt-in that
//! failure is remembered for the process, so later sandboxes go reduced at
//! once; `user.max_user_namespaces = 0` is also seen up front.

use std::sync::atomic::{AtomicBool, Ordering};

use nix::errno::Errno;

use crate::error::{Error, Layer, SetupFailure};

static UNAVAILABLE: AtomicBool = AtomicBool::new(false);

/// Whether the full mode is known to fail here: an earlier attempt in this
/// process failed for want of a user namespace, or the limit is 0.
pub(crate) fn known_unavailable() -> bool {
    UNAVAILABLE.load(Ordering::Relaxed) || limit_is_zero()
}

/// Record that the full mode failed for want of a user namespace.
pub(crate) fn remember_unavailable() {
    UNAVAILABLE.store(true, Ordering::Relaxed);
}

/// `user.max_user_namespaces` (this process's own user namespace's) is 0.
fn limit_is_zero() -> bool {
    std::fs::read_to_string("/proc/sys/user/max_user_namespaces").is_ok_and(|v| v.trim() == "0")
}

/// Ubuntu's AppArmor restriction: an unprivileged process gets its user
/// namespace, but no capability in it, so the first privileged step of the
/// build fails instead of the clone.
fn apparmor_restricts() -> bool {
    !nix::unistd::geteuid().is_root()
        && std::fs::read_to_string("/proc/sys/kernel/apparmor_restrict_unprivileged_userns")
            .is_ok_and(|v| v.trim() == "1")
}

/// Whether the full mode's failure `e` means "no usable user namespace".
pub(crate) fn is_unavailable(e: &Error) -> bool {
    let Error::Setup(f) = e else {
        return false;
    };
    unavailable(f, apparmor_restricts())
}

fn unavailable(f: &SetupFailure, apparmor: bool) -> bool {
    let errno = Errno::from_raw(f.errno);
    match f.layer {
        Layer::UserNamespace => matches!(
            errno,
            Errno::EPERM | Errno::EACCES | Errno::ENOSPC | Errno::EUSERS | Errno::EINVAL
        ),
        Layer::Namespaces | Layer::Filesystem | Layer::Network => {
            apparmor && matches!(errno, Errno::EPERM | Errno::EACCES)
        }
        _ => false,
    }
}

/// What the caller may do instead, appended to the failure when the caller
/// has not opted in.
pub(crate) const HINT: &str = "to run anyway with fewer layers, opt into reduced mode (CLI \
     --allow-reduced, TOML allow-reduced = true, Rust Sandbox::allow_reduced(true)): Landlock, \
     seccomp, no capabilities and limits only; it gives up the user, pid, network, mount, uts, \
     ipc, cgroup and time namespaces and pivot_root, so the command sees host processes, the \
     host's network interfaces and the host's filesystem (as far as Landlock grants it)";

/// `e` with [`HINT`] when it means "no user namespace" (else unchanged).
pub(crate) fn with_hint(e: Error) -> Error {
    match e {
        Error::Setup(mut f) if unavailable(&f, apparmor_restricts()) => {
            if !f.detail.is_empty() {
                f.detail.push_str("; ");
            }
            f.detail.push_str(HINT);
            Error::Setup(f)
        }
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failure(layer: Layer, errno: Errno) -> SetupFailure {
        SetupFailure {
            layer,
            step: "clone into new user, pid, mount, net, uts, ipc and cgroup namespaces".into(),
            errno: errno as i32,
            detail: String::new(),
        }
    }

    #[test]
    fn user_namespace_failures_are_unavailability() {
        for errno in [
            Errno::EPERM,
            Errno::EACCES,
            Errno::ENOSPC,
            Errno::EUSERS,
            Errno::EINVAL,
        ] {
            assert!(unavailable(&failure(Layer::UserNamespace, errno), false));
        }
        assert!(!unavailable(
            &failure(Layer::UserNamespace, Errno::ENOMEM),
            false
        ));
        assert!(!unavailable(&failure(Layer::Seccomp, Errno::EPERM), true));
        assert!(!unavailable(
            &failure(Layer::Filesystem, Errno::EPERM),
            false
        ));
        assert!(unavailable(&failure(Layer::Filesystem, Errno::EPERM), true));
        assert!(!is_unavailable(&Error::Policy("x".into())));
    }

    #[test]
    fn hint_names_the_option_and_what_it_gives_up() {
        let e = with_hint(Error::Setup(failure(Layer::UserNamespace, Errno::EPERM)));
        let text = e.to_string();
        assert!(text.contains("--allow-reduced"), "{text}");
        assert!(text.contains("pid, network, mount"), "{text}");
        assert!(text.contains("EPERM"), "{text}");
        let other = with_hint(Error::Setup(failure(Layer::Seccomp, Errno::EPERM)));
        assert!(!other.to_string().contains("--allow-reduced"));
    }
}
