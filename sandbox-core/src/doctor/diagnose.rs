//! Why a sandbox could not be set up on this host: the cause and the exact fix
//! for a [`SetupFailure`], told apart by reading the host when the message is
//! formed (the userns sysctls, `/proc/self/status`, `/proc/self/mountinfo`).
//!
//! The same errno has several causes: `clone(CLONE_NEWUSER)` fails with EPERM
//! under Debian's sysctl, under a container's seccomp profile and inside a
//! stockade sandbox alike, and Ubuntu's AppArmor restriction lets the clone
//! succeed and then refuses the first privileged step inside. The decision is
//! a pure function of the failure and a [`HostState`], unit-tested on literal
//! states; only [`HostState::read`] touches the host.

use std::path::Path;

use nix::errno::Errno;

use super::parse::{self, KernelVersion, Mount};
use super::remedies::{self, ProfileTarget};
use super::{proc_view, ProcView, UsernsSysctls};
use crate::error::{Layer, SetupFailure};

/// The cause of a setup failure and what to change on the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Diagnosis {
    /// What on this host made the step fail, with the values read.
    pub cause: String,
    /// The exact fix, on one line.
    pub fix: String,
    /// Whether `cause` supersedes the failure's own detail (a generic guess).
    pub replaces_detail: bool,
}

/// What the diagnosis reads from the host.
#[derive(Debug, Clone)]
pub(crate) struct HostState {
    pub userns: UsernsSysctls,
    /// CAP_SYS_ADMIN in the initial user namespace: of the userns sysctls only the limit applies.
    pub privileged: bool,
    /// Effective uid 0 without CAP_SYS_ADMIN in the initial user namespace (a container's
    /// root, root in a user namespace): stockade treats the caller as root and idmaps its
    /// grants, which needs that capability.
    pub root_without_sys_admin: bool,
    /// Root in a user namespace whose uid map lacks the id a root caller's sandbox ids map to.
    pub root_host_id_unmapped: bool,
    pub initial_userns: bool,
    /// `Seccomp: 2` in `/proc/self/status`: a filter is installed on this process.
    pub seccomp_filtered: bool,
    /// PID 1 is a stockade init: this process runs inside a stockade sandbox.
    pub in_stockade: bool,
    pub mounts: Vec<Mount>,
    pub kernel: Option<KernelVersion>,
    /// The binary an AppArmor profile has to name.
    pub helper: ProfileTarget,
}

impl HostState {
    /// Read the host now.
    pub(crate) fn read() -> Self {
        let status = super::read("/proc/self/status").unwrap_or_default();
        let initial_userns =
            super::read("/proc/self/uid_map").map_or(true, |m| parse::is_initial_uid_map(&m));
        let cap_sys_admin =
            parse::status_field(&status, "CapEff").is_some_and(|m| parse::cap_mask_has(m, 21));
        HostState {
            userns: UsernsSysctls::read(),
            privileged: cap_sys_admin && initial_userns,
            root_without_sys_admin: nix::unistd::geteuid().is_root()
                && !(cap_sys_admin && initial_userns),
            root_host_id_unmapped: nix::unistd::geteuid().is_root()
                && !uid_map_contains(
                    &super::read("/proc/self/uid_map").unwrap_or_default(),
                    crate::sandbox::DEFAULT_ROOT_HOST_ID,
                ),
            initial_userns,
            seccomp_filtered: parse::status_field(&status, "Seccomp") == Some("2"),
            in_stockade: super::read("/proc/1/comm").is_some_and(|c| c.trim() == "stockade-init"),
            mounts: parse::parse_mountinfo(
                &super::read("/proc/self/mountinfo").unwrap_or_default(),
            ),
            kernel: KernelVersion::parse(&super::kernel_release()),
            helper: ProfileTarget::inspect(Path::new(&super::helper_path())),
        }
    }
}

/// Whether `id` is an inside id of a `/proc/self/uid_map` (`inside outside count` lines).
fn uid_map_contains(map: &str, id: u32) -> bool {
    map.lines().any(|l| {
        let f: Vec<u64> = l
            .split_whitespace()
            .filter_map(|x| x.parse().ok())
            .collect();
        f.len() == 3 && (f[0]..f[0] + f[2]).contains(&u64::from(id))
    })
}

/// The steps whose failure this module explains (the other modules name them
/// with these constants, so a renamed step cannot silently lose its diagnosis).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    /// `clone` with `CLONE_NEWUSER` and the other namespace flags.
    CreateNamespaces,
    /// Writing a `/proc` file: the id maps, `setgroups`, the nested-userns limit.
    ProcWrite,
    /// Mounting the sandbox's own `/proc`.
    MountProc,
    /// Mounting an `--overlay`.
    Overlay,
    /// Cloning or idmapping a granted path (a root caller's grants are idmapped).
    Grant,
    /// Building the Landlock ruleset.
    Landlock,
    /// Any other privileged step inside the new user namespace.
    Inside,
    Other,
}

fn stage(f: &SetupFailure) -> Stage {
    use crate::launch::{init, outer};
    let step = f.step.as_str();
    match f.layer {
        Layer::UserNamespace if step == outer::CLONE_STEP => Stage::CreateNamespaces,
        Layer::UserNamespace if step.starts_with(outer::WRITE_MAP_STEP) => Stage::ProcWrite,
        Layer::Namespaces if step == init::NESTED_USERNS_STEP => Stage::ProcWrite,
        Layer::Filesystem if step == crate::fs::apply::MOUNT_PROC_STEP => Stage::MountProc,
        Layer::Filesystem if step.contains("overlay") => Stage::Overlay,
        Layer::Filesystem
            if step.starts_with(crate::fs::apply::OPEN_TREE_STEP)
                || step.starts_with(outer::IDMAP_STEP) =>
        {
            Stage::Grant
        }
        Layer::Landlock => Stage::Landlock,
        Layer::UserNamespace | Layer::Namespaces | Layer::Filesystem | Layer::Network => {
            Stage::Inside
        }
        _ => Stage::Other,
    }
}

/// Explain `f` with the host as it is now.
pub(crate) fn explain(f: &SetupFailure) -> Option<Diagnosis> {
    if stage(f) == Stage::Other {
        return None;
    }
    diagnose(f, &HostState::read())
}

/// Explain `f` on a host in state `h`.
pub(crate) fn diagnose(f: &SetupFailure, h: &HostState) -> Option<Diagnosis> {
    let errno = Errno::from_raw(f.errno);
    let denied = matches!(errno, Errno::EPERM | Errno::EACCES);
    match stage(f) {
        Stage::CreateNamespaces => create_namespaces(errno, h),
        Stage::ProcWrite | Stage::MountProc | Stage::Inside if denied && apparmor_applies(h) => {
            Some(apparmor(h))
        }
        Stage::ProcWrite if errno == Errno::EPERM && h.root_host_id_unmapped => found(
            format!(
                "this process is root in a user namespace whose uid map (/proc/self/uid_map) lacks {id}, the id \
                 stockade maps a root caller's sandbox ids to",
                id = crate::sandbox::DEFAULT_ROOT_HOST_ID
            ),
            format!(
                "map a range of ids that includes {id} into that namespace (rootless Podman and Kubernetes \
                 `hostUsers: false` do; `unshare --map-root-user` maps root alone), or run stockade as a non-root user",
                id = crate::sandbox::DEFAULT_ROOT_HOST_ID
            ),
        ),
        Stage::ProcWrite | Stage::MountProc => proc_blocked(h),
        Stage::Inside if denied && h.seccomp_filtered => Some(seccomp(h)),
        Stage::Grant if denied && h.root_without_sys_admin => found(
            "this process is uid 0 without CAP_SYS_ADMIN in the initial user namespace, as a container's root \
             is: stockade idmaps a root caller's grants so sandbox ids map to nobody, and idmapped mounts of host \
             filesystems need that capability"
                .into(),
            "run stockade as a non-root user, whose grants need no idmapping: Docker `--user 1000:1000`, \
             Kubernetes `securityContext.runAsUser: 1000` with `runAsNonRoot: true`"
                .into(),
        ),
        Stage::Overlay => overlay(errno, h),
        Stage::Landlock => landlock(errno, h),
        Stage::Inside | Stage::Grant | Stage::Other => None,
    }
}

fn found(cause: String, fix: String) -> Option<Diagnosis> {
    Some(Diagnosis {
        cause,
        fix,
        replaces_detail: false,
    })
}

/// Ubuntu's restriction applies to unprivileged callers not already confined
/// by a profile that grants `userns` (ours, once installed, is named `stockade-init`).
fn apparmor_applies(h: &HostState) -> bool {
    h.userns.apparmor_restrict == Some(1) && !h.privileged
}

fn create_namespaces(errno: Errno, h: &HostState) -> Option<Diagnosis> {
    let s = &h.userns;
    let enclosing = if h.initial_userns {
        ""
    } else {
        " (this process already runs in a user namespace: the limit of an enclosing one, set by a container runtime, may be the one in force)"
    };
    if h.in_stockade {
        return found(
            "this process runs inside a stockade sandbox, which forbids nested user namespaces by design \
             (its seccomp filter and user.max_user_namespaces = 0)"
                .into(),
            "run stockade outside the sandbox: nested sandboxes are not supported".into(),
        );
    }
    match errno {
        Errno::ENOSPC if s.max_user_namespaces == Some(0) => found(
            format!(
                "user.max_user_namespaces is 0, which disables user namespaces for every user, root included{enclosing}"
            ),
            remedies::sysctl("user.max_user_namespaces", "15000"),
        ),
        Errno::ENOSPC => found(
            format!(
                "the per-user count of user namespaces reached user.max_user_namespaces ({}){enclosing}",
                super::opt(s.max_user_namespaces)
            ),
            format!(
                "end idle sandboxes or raise the limit: {}",
                remedies::sysctl("user.max_user_namespaces", "15000")
            ),
        ),
        Errno::EUSERS => found(
            "user namespaces nest at most 32 deep and this process is already that deep".into(),
            "run stockade in a less deeply nested container".into(),
        ),
        Errno::EPERM | Errno::EACCES if s.unprivileged_userns_clone == Some(0) && !h.privileged => {
            found(
                "kernel.unprivileged_userns_clone = 0 disables user namespaces for non-root users".into(),
                remedies::sysctl("kernel.unprivileged_userns_clone", "1"),
            )
        }
        Errno::EPERM | Errno::EACCES if apparmor_applies(h) => Some(apparmor(h)),
        Errno::EPERM | Errno::ENOSYS if h.seccomp_filtered => Some(seccomp(h)),
        _ => None,
    }
}

fn apparmor(h: &HostState) -> Diagnosis {
    Diagnosis {
        cause: "kernel.apparmor_restrict_unprivileged_userns = 1 (Ubuntu 23.10+): AppArmor denies unconfined \
                programs every capability inside the user namespaces they create"
            .into(),
        fix: remedies::apparmor_one_line(&h.helper),
        replaces_detail: false,
    }
}

fn seccomp(h: &HostState) -> Diagnosis {
    let also = if h.userns.max_user_namespaces == Some(0) {
        "; user.max_user_namespaces is 0 as well, raise it too"
    } else {
        ""
    };
    Diagnosis {
        cause: format!(
            "this process runs under a seccomp filter (Seccomp: 2 in /proc/self/status) that refuses creating \
             namespaces or mounting, as container runtimes' default profiles do (Docker's refuses clone and \
             unshare with namespace flags, mount and pivot_root to containers without CAP_SYS_ADMIN){also}"
        ),
        fix: remedies::container_seccomp(),
        replaces_detail: false,
    }
}

fn proc_blocked(h: &HostState) -> Option<Diagnosis> {
    let what = match (proc_view(&h.mounts), super::proc_read_only(&h.mounts)) {
        (ProcView::Masked(paths), ro) => format!(
            "/proc is masked: {} {} mounted over it{}",
            paths.join(" "),
            if paths.len() == 1 { "is" } else { "are" },
            if ro {
                ", and /proc itself is read-only"
            } else {
                ""
            }
        ),
        (ProcView::NoProc, _) => "no procfs is mounted".into(),
        (ProcView::Full, true) => "/proc is mounted read-only".into(),
        (ProcView::Full, false) => return None,
    };
    found(
        format!(
            "{what} (as in containers): stockade writes /proc/sys/user/max_user_namespaces and the id maps, and the \
             kernel refuses a fresh /proc in a user namespace unless an existing one is fully visible"
        ),
        remedies::container_proc(),
    )
}

fn overlay(errno: Errno, h: &HostState) -> Option<Diagnosis> {
    let old = !h.privileged && !h.kernel.is_some_and(|v| v.at_least(5, 11));
    let cause = match errno {
        Errno::ENODEV => "the kernel has no overlayfs (module not loaded or CONFIG_OVERLAY_FS=n)",
        Errno::EPERM | Errno::EINVAL if old => {
            "overlayfs can be mounted in a user namespace only from Linux 5.11 on"
        }
        Errno::EPERM | Errno::EINVAL => {
            "the filesystem of this path cannot be an overlay layer inside a user namespace"
        }
        _ => return None,
    };
    found(
        cause.into(),
        "run without --overlay for this path (grant it with --rw or --ro instead); for overlays: `sudo modprobe overlay`, \
         Linux 5.11+, and a path on ext4, xfs, btrfs or tmpfs"
            .into(),
    )
}

fn landlock(errno: Errno, h: &HostState) -> Option<Diagnosis> {
    let kernel_has_it = h.kernel.is_some_and(|v| v.at_least(5, 13));
    let (cause, fix) = match errno {
        Errno::ENOSYS | Errno::EPERM if h.seccomp_filtered && (kernel_has_it || errno == Errno::EPERM) => (
            format!(
                "Landlock is unavailable: this process runs under a seccomp filter (Seccomp: 2 in /proc/self/status) \
                 that answers {errno:?} to landlock_create_ruleset, as some container runtimes' default profiles do{}",
                if kernel_has_it { " (the kernel, 5.13+, has Landlock)" } else { "" }
            ),
            remedies::landlock_seccomp(),
        ),
        Errno::ENOSYS => (
            "Landlock is unavailable: the kernel has none (Linux < 5.13 or built without CONFIG_SECURITY_LANDLOCK)".into(),
            format!("use Linux 6.12+ built with CONFIG_SECURITY_LANDLOCK=y{}", remedies::without_landlock()),
        ),
        Errno::EOPNOTSUPP => (
            "Landlock is built into the kernel but not enabled at boot".into(),
            format!(
                "add `landlock` to the kernel's `lsm=` boot parameter (`stockade doctor` prints the whole list){}",
                remedies::without_landlock()
            ),
        ),
        _ => return None,
    };
    Some(Diagnosis {
        cause,
        fix,
        replaces_detail: true,
    })
}

#[cfg(test)]
mod tests {
    use super::super::samples::{DOCKER_MOUNTINFO, HYBRID_MOUNTINFO};
    use super::*;
    use crate::launch::{init, outer};

    fn host() -> HostState {
        HostState {
            userns: UsernsSysctls {
                max_user_namespaces: Some(96365),
                unprivileged_userns_clone: None,
                apparmor_restrict: None,
                apparmor_profile_installed: false,
            },
            privileged: false,
            root_without_sys_admin: false,
            root_host_id_unmapped: false,
            initial_userns: true,
            seccomp_filtered: false,
            in_stockade: false,
            mounts: parse::parse_mountinfo(HYBRID_MOUNTINFO),
            kernel: KernelVersion::parse("6.8.0-45-generic"),
            helper: ProfileTarget::with_problem("/usr/local/bin/stockade", None),
        }
    }

    fn failure(layer: Layer, step: &str, errno: Errno) -> SetupFailure {
        SetupFailure {
            layer,
            step: step.into(),
            errno: errno as i32,
            detail: String::new(),
        }
    }

    fn clone_fails(errno: Errno) -> SetupFailure {
        failure(Layer::UserNamespace, outer::CLONE_STEP, errno)
    }

    #[test]
    fn user_namespace_limit_zero() {
        let mut h = host();
        h.userns.max_user_namespaces = Some(0);
        let d = diagnose(&clone_fails(Errno::ENOSPC), &h).unwrap();
        assert_eq!(
            d.cause,
            "user.max_user_namespaces is 0, which disables user namespaces for every user, root included"
        );
        assert!(d
            .fix
            .starts_with("`sudo sysctl -w user.max_user_namespaces=15000`"));
        h.initial_userns = false;
        let d = diagnose(&clone_fails(Errno::ENOSPC), &h).unwrap();
        assert!(
            d.cause.contains("already runs in a user namespace"),
            "{d:?}"
        );
        h.userns.max_user_namespaces = Some(5);
        let d = diagnose(&clone_fails(Errno::ENOSPC), &h).unwrap();
        assert!(d.cause.starts_with(
            "the per-user count of user namespaces reached user.max_user_namespaces (5)"
        ));
    }

    #[test]
    fn eperm_from_clone_has_three_causes() {
        // Debian's switch, for a non-root caller only.
        let mut h = host();
        h.userns.unprivileged_userns_clone = Some(0);
        let d = diagnose(&clone_fails(Errno::EPERM), &h).unwrap();
        assert!(d.cause.starts_with("kernel.unprivileged_userns_clone = 0"));
        assert!(d
            .fix
            .contains("sudo sysctl -w kernel.unprivileged_userns_clone=1"));
        h.privileged = true;
        assert_eq!(diagnose(&clone_fails(Errno::EPERM), &h), None);

        // Ubuntu's AppArmor restriction.
        let mut h = host();
        h.userns.apparmor_restrict = Some(1);
        let d = diagnose(&clone_fails(Errno::EACCES), &h).unwrap();
        assert!(d
            .cause
            .starts_with("kernel.apparmor_restrict_unprivileged_userns = 1"));
        assert!(d.fix.contains("| sudo tee /etc/apparmor.d/stockade-init >/dev/null && sudo apparmor_parser -r /etc/apparmor.d/stockade-init"));

        // A container's seccomp profile: only when a filter is installed.
        let mut h = host();
        assert_eq!(diagnose(&clone_fails(Errno::EPERM), &h), None);
        h.seccomp_filtered = true;
        let d = diagnose(&clone_fails(Errno::EPERM), &h).unwrap();
        assert!(d
            .cause
            .starts_with("this process runs under a seccomp filter"));
        assert!(d
            .fix
            .contains("--security-opt seccomp=stockade-worker.json"));
        assert!(d.fix.contains("seccompProfile"));

        // Inside stockade: said so, whatever else holds.
        h.in_stockade = true;
        h.userns.max_user_namespaces = Some(0);
        let d = diagnose(&clone_fails(Errno::EPERM), &h).unwrap();
        assert!(d
            .cause
            .starts_with("this process runs inside a stockade sandbox"));
    }

    #[test]
    fn apparmor_shows_up_after_the_clone() {
        // The restriction lets the clone succeed; the first privileged step fails.
        let mut h = host();
        h.userns.apparmor_restrict = Some(1);
        for f in [
            failure(Layer::Namespaces, init::NESTED_USERNS_STEP, Errno::EACCES),
            failure(Layer::Filesystem, "make mounts private", Errno::EPERM),
            failure(Layer::Network, "bring up loopback", Errno::EPERM),
            failure(Layer::UserNamespace, "write uid_map", Errno::EPERM),
        ] {
            let d = diagnose(&f, &h).unwrap_or_else(|| panic!("{f:?}"));
            assert!(d.cause.contains("AppArmor"), "{d:?}");
            assert!(d
                .fix
                .contains("sudo apparmor_parser -r /etc/apparmor.d/stockade-init"));
            assert!(!d.fix.contains('\n'));
        }
        // Not for root in the initial namespace, which the restriction spares.
        h.privileged = true;
        let f = failure(Layer::Filesystem, "make mounts private", Errno::EPERM);
        assert_eq!(diagnose(&f, &h), None);
    }

    #[test]
    fn masked_or_read_only_proc() {
        let mut h = host();
        h.mounts = parse::parse_mountinfo(DOCKER_MOUNTINFO);
        let f = failure(Layer::Namespaces, init::NESTED_USERNS_STEP, Errno::EROFS);
        let d = diagnose(&f, &h).unwrap();
        assert_eq!(
            d.cause,
            "/proc is masked: /proc/bus /proc/sys /proc/acpi /proc/kcore are mounted over it (as in containers): \
             stockade writes /proc/sys/user/max_user_namespaces and the id maps, and the kernel refuses a fresh \
             /proc in a user namespace unless an existing one is fully visible"
        );
        assert!(d.fix.contains("--security-opt systempaths=unconfined"));
        assert!(d.fix.contains("procMount: Unmasked"));
        let f = failure(
            Layer::Filesystem,
            crate::fs::apply::MOUNT_PROC_STEP,
            Errno::EPERM,
        );
        assert_eq!(diagnose(&f, &h).unwrap().fix, d.fix);

        let mut ro = host();
        ro.mounts = parse::parse_mountinfo(&HYBRID_MOUNTINFO.replace(
            "22 27 0:21 / /proc rw,relatime",
            "22 27 0:21 / /proc ro,relatime",
        ));
        let f = failure(Layer::UserNamespace, "write setgroups", Errno::EROFS);
        assert!(diagnose(&f, &ro)
            .unwrap()
            .cause
            .starts_with("/proc is mounted read-only"));
        // A full, writable /proc: not the cause.
        assert_eq!(diagnose(&f, &host()), None);
    }

    #[test]
    fn landlock_causes() {
        let f = failure(Layer::Landlock, "build the ruleset", Errno::ENOSYS);
        let mut h = host();
        let d = diagnose(&f, &h).unwrap();
        assert!(d.replaces_detail);
        assert!(d.cause.contains("the kernel has none"));
        assert!(d.fix.contains("--allow-no-landlock"));
        h.seccomp_filtered = true;
        let d = diagnose(&f, &h).unwrap();
        assert!(d.cause.contains("seccomp filter"), "{d:?}");
        assert!(d.cause.contains("the kernel, 5.13+, has Landlock"), "{d:?}");
        assert!(d.fix.starts_with("allow landlock_create_ruleset"));
        assert!(d.fix.contains("--allow-no-landlock"));
        // A kernel older than Landlock: ENOSYS is the kernel's, filter or not.
        h.kernel = KernelVersion::parse("5.10.0");
        assert!(diagnose(&f, &h)
            .unwrap()
            .cause
            .contains("the kernel has none"));
        let f = failure(Layer::Landlock, "build the ruleset", Errno::EOPNOTSUPP);
        let d = diagnose(&f, &host()).unwrap();
        assert!(d
            .fix
            .starts_with("add `landlock` to the kernel's `lsm=` boot parameter"));
    }

    #[test]
    fn overlay_causes() {
        let f = failure(Layer::Filesystem, "mount overlay on /work", Errno::EINVAL);
        let mut h = host();
        h.kernel = KernelVersion::parse("5.10.0");
        assert_eq!(
            diagnose(&f, &h).unwrap().cause,
            "overlayfs can be mounted in a user namespace only from Linux 5.11 on"
        );
        let d = diagnose(&f, &host()).unwrap();
        assert!(d.cause.contains("cannot be an overlay layer"));
        assert!(d.fix.starts_with("run without --overlay"));
    }

    #[test]
    fn container_root_without_sys_admin() {
        let f = failure(Layer::Filesystem, "open_tree /work", Errno::EPERM);
        assert_eq!(diagnose(&f, &host()), None);
        let mut h = host();
        h.root_without_sys_admin = true;
        let d = diagnose(&f, &h).unwrap();
        assert!(d
            .cause
            .starts_with("this process is uid 0 without CAP_SYS_ADMIN"));
        assert!(d.fix.contains("--user 1000:1000"));
        let f = failure(Layer::Filesystem, "idmapped mount of /work", Errno::EPERM);
        assert_eq!(diagnose(&f, &h), Some(d));
    }

    #[test]
    fn root_in_a_user_namespace_without_nobody() {
        assert!(uid_map_contains(
            "         0          0 4294967295\n",
            65534
        ));
        assert!(!uid_map_contains(
            "         0          0          1\n",
            65534
        ));
        assert!(uid_map_contains("0 0 1\n1 100000 65536\n", 65534));
        let f = failure(Layer::UserNamespace, "write uid_map", Errno::EPERM);
        let mut h = host();
        h.initial_userns = false;
        assert_eq!(diagnose(&f, &h), None);
        h.root_host_id_unmapped = true;
        let d = diagnose(&f, &h).unwrap();
        assert!(d.cause.contains("lacks 65534"), "{d:?}");
        assert!(d.fix.contains("run stockade as a non-root user"));
    }

    #[test]
    fn other_layers_are_left_alone() {
        let f = failure(Layer::Seccomp, "load the filter", Errno::EPERM);
        assert_eq!(diagnose(&f, &host()), None);
        assert_eq!(explain(&f), None);
    }
}
