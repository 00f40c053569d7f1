//! Can this process see Landlock denials? Read-only checks, each failure a
//! reason and a remedy in one sentence each.
//!
//! [`gather`] reads the facts (the Landlock ABI, namespaces, capabilities,
//! the audit status by `AUDIT_GET`); none of them changes host state.
//! [`judge`] is the pure decision, unit-tested on every branch.

use std::os::unix::fs::MetadataExt;

use nix::errno::Errno;

use super::netlink::{self, Status};

/// The Landlock ABI that logs denials to audit (Linux 6.15).
pub const AUDIT_ABI: u32 = 7;

/// Fixed inode numbers of the initial namespaces (`include/linux/proc_ns.h`).
/// User and PID have been fixed since Linux 3.8; network only since 6.18.
const INIT_USER_NS_INO: u64 = 0xEFFF_FFFD;
const INIT_PID_NS_INO: u64 = 0xEFFF_FFFC;
const INIT_NET_NS_INO: u64 = 0xEFFF_FFF9;

/// Why denials cannot be seen, by kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Reason {
    /// No Landlock, or a Landlock ABI below 7 (no audit support).
    KernelTooOld,
    /// The kernel has no audit subsystem (`CONFIG_AUDIT` off).
    NoKernelAudit,
    /// The caller may not read audit records (not root in the initial user
    /// namespace: `CAP_AUDIT_READ`, `CAP_AUDIT_CONTROL`).
    NotPermitted,
    /// The caller is in a PID or network namespace the kernel does not
    /// serve audit to.
    Namespaced,
    /// Audit is off (`enabled=0`), so Landlock logs nothing.
    AuditDisabled,
    /// The audit status could not be read for another reason.
    ProbeFailed,
}

/// Denials are not visible here: what is missing and how to fix it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, serde::Serialize)]
#[error("{reason} {remedy}")]
pub struct Unavailable {
    /// The kind, for code.
    pub kind: Reason,
    /// What is missing, one sentence.
    pub reason: String,
    /// How to fix it, one sentence.
    pub remedy: String,
}

impl Unavailable {
    pub(crate) fn new(kind: Reason, reason: impl Into<String>, remedy: impl Into<String>) -> Self {
        Unavailable {
            kind,
            reason: reason.into(),
            remedy: remedy.into(),
        }
    }
}

/// What [`judge`] decides on.
#[derive(Debug, Clone)]
pub struct Facts {
    /// `landlock_create_ruleset(NULL, 0, VERSION)`.
    pub landlock_abi: Result<u32, Errno>,
    /// Whether we are in the initial user namespace (`None`: unknown).
    pub initial_user_ns: Option<bool>,
    /// Whether we are in the initial PID namespace.
    pub initial_pid_ns: Option<bool>,
    /// Whether we are in the initial network namespace.
    pub initial_net_ns: Option<bool>,
    /// `CAP_AUDIT_READ` in the effective set.
    pub cap_audit_read: bool,
    /// `CAP_AUDIT_CONTROL` in the effective set.
    pub cap_audit_control: bool,
    /// `AUDIT_GET`.
    pub status: Result<Status, Errno>,
}

/// Read the facts. Changes nothing on the host.
pub fn gather() -> Facts {
    use caps::{CapSet, Capability};
    let has = |c| caps::has_cap(None, CapSet::Effective, c).unwrap_or(false);
    Facts {
        landlock_abi: crate::landlock::abi_version(),
        initial_user_ns: ns_ino("user").map(|i| i == INIT_USER_NS_INO),
        initial_pid_ns: ns_ino("pid").map(|i| i == INIT_PID_NS_INO),
        initial_net_ns: initial_net_ns(),
        cap_audit_read: has(Capability::CAP_AUDIT_READ),
        cap_audit_control: has(Capability::CAP_AUDIT_CONTROL),
        status: netlink::status(),
    }
}

/// The decision, first missing condition first.
pub fn judge(f: &Facts) -> Result<(), Unavailable> {
    use Reason::*;
    match f.landlock_abi {
        Err(e) => {
            return Err(Unavailable::new(
                KernelTooOld,
                format!("This kernel has no usable Landlock ({e}), so there are no Landlock denials to report."),
                "Use Linux 6.15 or newer with Landlock enabled (`lsm=` includes landlock).",
            ))
        }
        Ok(abi) if abi < AUDIT_ABI => {
            return Err(Unavailable::new(
                KernelTooOld,
                format!("Landlock ABI {abi} cannot log denials (audit support came with ABI 7, Linux 6.15)."),
                "Upgrade the kernel to Linux 6.15 or newer.",
            ))
        }
        Ok(_) => {}
    }
    if f.initial_user_ns == Some(false) {
        return Err(Unavailable::new(
            NotPermitted,
            "This process runs in a user namespace, and only the host's initial user namespace may read audit records.",
            "Run stockade as root on the host, outside any container's user namespace.",
        ));
    }
    if !f.cap_audit_read || !f.cap_audit_control {
        let missing = match (f.cap_audit_read, f.cap_audit_control) {
            (false, false) => "CAP_AUDIT_READ and CAP_AUDIT_CONTROL",
            (false, true) => "CAP_AUDIT_READ",
            _ => "CAP_AUDIT_CONTROL",
        };
        return Err(Unavailable::new(
            NotPermitted,
            format!("The caller lacks {missing}, which reading the kernel's audit records requires; an unprivileged caller cannot see them."),
            "Run as root to get filesystem denials in the event stream.",
        ));
    }
    if f.initial_pid_ns == Some(false) {
        return Err(Unavailable::new(
            Namespaced,
            "This process runs in a child PID namespace: the kernel answers audit queries only in the initial one, and audit records name host pids.",
            "Run stockade in the host's PID namespace.",
        ));
    }
    if f.initial_net_ns == Some(false) {
        return Err(Unavailable::new(
            Namespaced,
            "This process runs in a child network namespace, and the kernel sends audit records only to readers in the initial one.",
            "Run stockade in the host's network namespace (for a container: host networking).",
        ));
    }
    match &f.status {
        Err(Errno::EPROTONOSUPPORT) => Err(Unavailable::new(
            NoKernelAudit,
            "This kernel was built without the audit subsystem (CONFIG_AUDIT), which Landlock logs denials through.",
            "Use a kernel built with CONFIG_AUDIT=y.",
        )),
        Err(Errno::ECONNREFUSED) => Err(Unavailable::new(
            Namespaced,
            "The kernel refused the audit query: this process is not in the initial user namespace.",
            "Run stockade as root on the host, outside any container's user namespace.",
        )),
        Err(Errno::EPERM) => Err(Unavailable::new(
            NotPermitted,
            "The kernel refused the audit status query (it needs CAP_AUDIT_CONTROL in the initial PID namespace).",
            "Run stockade as root on the host.",
        )),
        Err(e) => Err(Unavailable::new(
            ProbeFailed,
            format!("Reading the audit status over netlink failed: {e}."),
            "Check that `auditctl -s` works here; netlink audit may be blocked in this container.",
        )),
        Ok(s) if s.enabled == 0 => Err(Unavailable::new(
            AuditDisabled,
            "Kernel audit is disabled (enabled=0), so Landlock logs no denials.",
            "Enable it with `auditctl -e 1`, or boot with `audit=1`.",
        )),
        Ok(_) => Ok(()),
    }
}

/// The inode of `/proc/self/ns/<kind>`, i.e. the namespace's id.
fn ns_ino(kind: &str) -> Option<u64> {
    std::fs::metadata(format!("/proc/self/ns/{kind}"))
        .ok()
        .map(|m| m.ino())
}

/// Whether we share the initial network namespace: its fixed id (Linux
/// 6.18+), else the same namespace as PID 1 (when we may look at PID 1).
fn initial_net_ns() -> Option<bool> {
    let ours = std::fs::metadata("/proc/self/ns/net").ok()?;
    if ours.ino() == INIT_NET_NS_INO {
        return Some(true);
    }
    let init = std::fs::metadata("/proc/1/ns/net").ok()?;
    Some(init.ino() == ours.ino() && init.dev() == ours.dev())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ready() -> Facts {
        Facts {
            landlock_abi: Ok(7),
            initial_user_ns: Some(true),
            initial_pid_ns: Some(true),
            initial_net_ns: Some(true),
            cap_audit_read: true,
            cap_audit_control: true,
            status: Ok(Status {
                enabled: 1,
                pid: 0,
                lost: 0,
                backlog: 0,
            }),
        }
    }

    fn kind(f: &Facts) -> Option<Reason> {
        judge(f).err().map(|u| u.kind)
    }

    #[test]
    fn all_conditions_met() {
        assert_eq!(judge(&ready()), Ok(()));
        // Locked on (2) is on; unknown namespaces do not block.
        let mut f = ready();
        f.status = Ok(Status {
            enabled: 2,
            ..f.status.unwrap()
        });
        f.initial_net_ns = None;
        f.initial_user_ns = None;
        assert_eq!(judge(&f), Ok(()));
    }

    #[test]
    fn each_missing_condition_is_named_with_its_remedy() {
        let mut f = ready();
        f.landlock_abi = Ok(6);
        let u = judge(&f).unwrap_err();
        assert_eq!(u.kind, Reason::KernelTooOld);
        assert!(u.reason.contains("ABI 6"), "{u}");
        assert!(u.remedy.contains("6.15"), "{u}");

        let mut f = ready();
        f.landlock_abi = Err(Errno::EOPNOTSUPP);
        assert_eq!(kind(&f), Some(Reason::KernelTooOld));

        let mut f = ready();
        f.cap_audit_read = false;
        let u = judge(&f).unwrap_err();
        assert_eq!(u.kind, Reason::NotPermitted);
        assert!(
            u.reason.contains("CAP_AUDIT_READ") && u.reason.contains("unprivileged"),
            "{u}"
        );
        assert!(u.remedy.contains("root"), "{u}");

        let mut f = ready();
        f.cap_audit_control = false;
        assert!(judge(&f)
            .unwrap_err()
            .reason
            .contains("lacks CAP_AUDIT_CONTROL"));

        let mut f = ready();
        f.initial_user_ns = Some(false);
        assert_eq!(kind(&f), Some(Reason::NotPermitted));

        let mut f = ready();
        f.initial_pid_ns = Some(false);
        assert_eq!(kind(&f), Some(Reason::Namespaced));

        let mut f = ready();
        f.initial_net_ns = Some(false);
        let u = judge(&f).unwrap_err();
        assert_eq!(u.kind, Reason::Namespaced);
        assert!(u.reason.contains("network namespace"), "{u}");

        let mut f = ready();
        f.status = Err(Errno::EPROTONOSUPPORT);
        assert_eq!(kind(&f), Some(Reason::NoKernelAudit));
        f.status = Err(Errno::ECONNREFUSED);
        assert_eq!(kind(&f), Some(Reason::Namespaced));
        f.status = Err(Errno::EPERM);
        assert_eq!(kind(&f), Some(Reason::NotPermitted));
        f.status = Err(Errno::EACCES);
        assert_eq!(kind(&f), Some(Reason::ProbeFailed));

        let mut f = ready();
        f.status = Ok(Status {
            enabled: 0,
            ..f.status.unwrap()
        });
        let u = judge(&f).unwrap_err();
        assert_eq!(u.kind, Reason::AuditDisabled);
        assert!(
            u.remedy.contains("auditctl -e 1") && u.remedy.contains("audit=1"),
            "{u}"
        );
        assert_eq!(u.to_string(), format!("{} {}", u.reason, u.remedy));
    }

    #[test]
    fn the_first_missing_condition_wins() {
        // An old kernel is reported before the caller's privileges.
        let mut f = ready();
        f.landlock_abi = Ok(3);
        f.cap_audit_read = false;
        f.status = Err(Errno::EPERM);
        assert_eq!(kind(&f), Some(Reason::KernelTooOld));
        // Privileges before the audit status they make unreadable.
        let mut f = ready();
        f.cap_audit_read = false;
        f.cap_audit_control = false;
        f.status = Err(Errno::EPERM);
        assert!(judge(&f)
            .unwrap_err()
            .reason
            .contains("CAP_AUDIT_READ and CAP_AUDIT_CONTROL"));
    }
}
