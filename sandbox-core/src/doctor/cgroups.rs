//! The cgroup check: which hierarchy carries each controller stockade limits with
//! (memory, pids, cpu), where the caller's own cgroup is in it, and whether the caller
//! could create a child cgroup there (the only way to enforce `--memory/--pids/--cpu`).
//!
//! Three host shapes matter (see DESIGN.md, "Dependencies"): pure v2 (possibly with a
//! subtree delegated to the user), hybrid (v1 controllers plus a controller-less cgroup2
//! at `/sys/fs/cgroup/unified`, like the project's test machine) and plain v1. The
//! layout is computed from text only; the two host-dependent inputs (reading
//! `cgroup.controllers`, testing writability) are passed in, so tests use literals.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use super::parse::{parse_word_list, CgroupEntry, Mount};
use super::Check;

/// The controllers stockade sets limits with.
pub(super) const CONTROLLERS: [&str; 3] = ["memory", "pids", "cpu"];

/// v1 controller names; a cgroup v1 mount naming none of them (e.g. `name=systemd`)
/// is only a process-tracking hierarchy.
const V1_CONTROLLERS: [&str; 15] = [
    "cpuset",
    "cpu",
    "cpuacct",
    "blkio",
    "io",
    "memory",
    "devices",
    "freezer",
    "net_cls",
    "perf_event",
    "net_prio",
    "hugetlb",
    "pids",
    "rdma",
    "misc",
];

/// Which cgroup versions the host mounts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Mode {
    PureV2,
    Hybrid,
    V1,
    Absent,
}

/// Where one controller can be used by the caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Place {
    /// The caller's cgroup in the v1 hierarchy carrying the controller.
    V1 { dir: PathBuf, mount: String },
    /// The caller's v2 cgroup, whose `cgroup.controllers` lists the controller.
    V2 { dir: PathBuf, mount: String },
    /// Not usable; the reason says why.
    Nowhere(Why),
}

/// Why a controller is not usable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Why {
    /// Listed in `/proc/self/cgroup` but its v1 hierarchy is not mounted here.
    V1NotMounted,
    /// The caller's cgroup lies outside the part of the hierarchy mounted here.
    NotVisible,
    /// Not in the caller's v2 `cgroup.controllers` (not enabled by the parent).
    NotEnabled,
    /// No cgroup filesystem carries it at all.
    NoHierarchy,
}

/// The cgroup layout as seen by the calling process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Layout {
    pub mode: Mode,
    /// Mount point of the cgroup2 filesystem, if any.
    pub v2_mount: Option<String>,
    /// The caller's v2 cgroup directory, if any.
    pub v2_dir: Option<PathBuf>,
    /// Contents of the caller's v2 `cgroup.controllers`.
    pub v2_controllers: Vec<String>,
    /// One entry per controller in [`CONTROLLERS`], in that order.
    pub places: Vec<(&'static str, Place)>,
}

/// Compute the layout from `/proc/self/cgroup` and `/proc/self/mountinfo`;
/// `read_controllers(dir)` returns the text of `dir/cgroup.controllers`.
pub(super) fn layout(
    cgroups: &[CgroupEntry],
    mounts: &[Mount],
    read_controllers: &dyn Fn(&Path) -> Option<String>,
) -> Layout {
    let v1_mounts: Vec<&Mount> = mounts.iter().filter(|m| m.fstype == "cgroup").collect();
    let has_v1_controllers = v1_mounts
        .iter()
        .any(|m| V1_CONTROLLERS.iter().any(|c| m.has_super_opt(c)));
    // Prefer the canonical mount point when cgroup2 is mounted more than once.
    let v2 = mounts
        .iter()
        .filter(|m| m.fstype == "cgroup2")
        .min_by_key(|m| m.mount_point != "/sys/fs/cgroup");
    let mode = match (has_v1_controllers, v2.is_some()) {
        (true, true) => Mode::Hybrid,
        (true, false) => Mode::V1,
        (false, true) => Mode::PureV2,
        (false, false) => Mode::Absent,
    };
    let v2_dir = v2.and_then(|m| m.cgroup_dir(&cgroups.iter().find(|e| e.is_v2())?.path));
    let v2_controllers = v2_dir
        .as_deref()
        .and_then(read_controllers)
        .map(|t| parse_word_list(&t))
        .unwrap_or_default();
    let places = CONTROLLERS
        .iter()
        .map(|&c| {
            let v2 = v2.zip(v2_dir.as_deref());
            (c, place(c, cgroups, &v1_mounts, v2, &v2_controllers))
        })
        .collect();
    Layout {
        mode,
        v2_mount: v2.map(|m| m.mount_point.clone()),
        v2_dir,
        v2_controllers,
        places,
    }
}

/// Where `controller` is usable. A controller is bound to at most one hierarchy, so if a
/// v1 hierarchy has it, v2 cannot.
fn place(
    controller: &str,
    cgroups: &[CgroupEntry],
    v1_mounts: &[&Mount],
    v2: Option<(&Mount, &Path)>,
    v2_controllers: &[String],
) -> Place {
    if let Some(entry) = cgroups
        .iter()
        .find(|e| !e.is_v2() && e.controllers.iter().any(|c| c == controller))
    {
        let Some(mount) = v1_mounts.iter().find(|m| m.has_super_opt(controller)) else {
            return Place::Nowhere(Why::V1NotMounted);
        };
        return match mount.cgroup_dir(&entry.path) {
            Some(dir) => Place::V1 {
                dir,
                mount: mount.mount_point.clone(),
            },
            None => Place::Nowhere(Why::NotVisible),
        };
    }
    match v2 {
        Some((mount, dir)) if v2_controllers.iter().any(|c| c == controller) => Place::V2 {
            dir: dir.to_path_buf(),
            mount: mount.mount_point.clone(),
        },
        Some(_) => Place::Nowhere(Why::NotEnabled),
        None => Place::Nowhere(Why::NoHierarchy),
    }
}

/// The cgroups check. `writable(place)` says whether the caller may create a child
/// cgroup there; `root` is whether the caller is root.
pub(super) fn check(layout: &Layout, writable: &dyn Fn(&Place) -> bool, root: bool) -> Check {
    const LAYER: &str = "cgroups";
    if layout.mode == Mode::Absent {
        return Check::limited(
            LAYER,
            "no cgroup filesystem is mounted: --memory/--pids/--cpu cannot be enforced".into(),
            "mount the unified hierarchy: `sudo mount -t cgroup2 none /sys/fs/cgroup` (in a container: start it with a cgroup namespace, e.g. `docker run --cgroupns=private`)".into(),
        );
    }
    let mut parts = Vec::new();
    let mut unenforceable = Vec::new();
    let mut remedies = BTreeSet::new();
    for (controller, place) in &layout.places {
        let (ok, text) = match place {
            Place::V1 { dir, .. } | Place::V2 { dir, .. } => {
                let version = if matches!(place, Place::V1 { .. }) {
                    "v1"
                } else {
                    "v2"
                };
                let w = writable(place);
                (
                    w,
                    format!(
                        "{controller} {version} {} ({})",
                        dir.display(),
                        if w { "writable" } else { "not writable" }
                    ),
                )
            }
            Place::Nowhere(why) => (
                false,
                format!("{controller} unavailable ({})", why_text(*why)),
            ),
        };
        if !ok {
            unenforceable.push(*controller);
            remedies.insert(remedy(layout, controller, place, root));
        }
        parts.push(text);
    }
    let detail = format!("{}; {}", mode_text(layout), parts.join(", "));
    if unenforceable.is_empty() {
        Check::ok(
            LAYER,
            format!("{detail}; memory, pids and cpu limits can be enforced"),
        )
    } else {
        let detail = format!(
            "{detail}; limits optional, cannot enforce: {}",
            unenforceable.join(", ")
        );
        Check::limited(
            LAYER,
            detail,
            remedies.into_iter().collect::<Vec<_>>().join("\n"),
        )
    }
}

fn mode_text(layout: &Layout) -> String {
    let v2_mount = layout.v2_mount.as_deref().unwrap_or("?");
    match layout.mode {
        Mode::PureV2 => format!("pure cgroup v2 at {v2_mount}"),
        Mode::Hybrid => {
            let ctrls = if layout.v2_controllers.is_empty() {
                "none".to_string()
            } else {
                layout.v2_controllers.join(" ")
            };
            format!("hybrid: v1 controller hierarchies + cgroup2 at {v2_mount} (v2 controllers: {ctrls})")
        }
        Mode::V1 => "cgroup v1 only".into(),
        Mode::Absent => "no cgroup filesystem".into(),
    }
}

fn why_text(why: Why) -> &'static str {
    match why {
        Why::V1NotMounted => "its v1 hierarchy is not mounted",
        Why::NotVisible => "own cgroup not visible under the mount",
        Why::NotEnabled => "not in own cgroup.controllers",
        Why::NoHierarchy => "no hierarchy carries it",
    }
}

/// The concrete fix for one unusable controller.
fn remedy(layout: &Layout, controller: &str, place: &Place, root: bool) -> String {
    const SCOPE: &str = "systemd-run --user --scope -p Delegate=yes -- stockade run ...";
    match place {
        Place::V1 { .. } if !root => format!(
            "cgroup v1 has no safe delegation to unprivileged users: run stockade as root (limits then use v1), \
             or switch the host to pure cgroup v2 (kernel command line `systemd.unified_cgroup_hierarchy=1`) \
             and run under a delegated scope: `{SCOPE}`"
        ),
        Place::V2 { .. } if !root => {
            format!("run stockade in a cgroup delegated to you (the new scope is owned by your user): `{SCOPE}`")
        }
        Place::V1 { mount, .. } | Place::V2 { mount, .. } => format!(
            "root cannot write the cgroup tree at {mount} (read-only mount, typical in containers): \
             `sudo mount -o remount,rw {mount}`, or start the container with a writable cgroup \
             (Podman `--systemd=always`, Docker `--privileged`), or run stockade on the host"
        ),
        Place::Nowhere(Why::V1NotMounted) => format!(
            "mount its v1 hierarchy as root: `sudo mkdir -p /sys/fs/cgroup/{controller} && \
             sudo mount -t cgroup -o {controller} cgroup /sys/fs/cgroup/{controller}`"
        ),
        Place::Nowhere(Why::NotVisible) => {
            "the caller's cgroup lies outside the mounted cgroup tree (cgroup namespace mismatch): \
             run stockade where /sys/fs/cgroup was mounted from its own cgroup namespace"
                .into()
        }
        Place::Nowhere(Why::NotEnabled) => not_enabled_remedy(layout, controller, root),
        Place::Nowhere(Why::NoHierarchy) => format!(
            "the kernel offers no {controller} controller: mount cgroup2 (`sudo mount -t cgroup2 none /sys/fs/cgroup`) \
             and check the kernel config and command line (no `cgroup_disable={controller}`)"
        ),
    }
}

/// A v2 controller missing from the caller's `cgroup.controllers`.
fn not_enabled_remedy(layout: &Layout, controller: &str, root: bool) -> String {
    let at_top =
        layout.v2_dir.as_deref().map(Path::new) == layout.v2_mount.as_deref().map(Path::new);
    if at_top {
        // The root cgroup lists every controller the kernel has that is not bound to v1.
        return format!(
            "the kernel does not offer {controller} on cgroup v2 (not built in, bound to a v1 hierarchy, \
             or `cgroup_disable={controller}`/`cgroup_no_v1` on the kernel command line): use a kernel with the controller \
             and boot with `systemd.unified_cgroup_hierarchy=1`"
        );
    }
    if !root {
        return "delegate the controllers to user sessions: `sudo mkdir -p /etc/systemd/system/user@.service.d && \
                printf '[Service]\\nDelegate=cpu memory pids\\n' | sudo tee /etc/systemd/system/user@.service.d/delegate.conf && \
                sudo systemctl daemon-reload`, log in again, then run `systemd-run --user --scope -p Delegate=yes -- stockade run ...`"
            .into();
    }
    let parent = layout
        .v2_dir
        .as_deref()
        .and_then(Path::parent)
        .map(|p| p.display().to_string())
        .unwrap_or_default();
    format!("enable it in the parent cgroup: `echo +{controller} | sudo tee {parent}/cgroup.subtree_control`")
}

#[cfg(test)]
mod tests {
    use super::super::parse::{parse_mountinfo, parse_proc_cgroup};
    use super::super::samples::*;
    use super::super::Status;
    use super::*;

    fn layout_of(proc_cgroup: &str, mountinfo: &str, controllers: Option<&str>) -> Layout {
        let controllers = controllers.map(String::from);
        layout(
            &parse_proc_cgroup(proc_cgroup),
            &parse_mountinfo(mountinfo),
            &move |_| controllers.clone(),
        )
    }

    fn v1(dir: &str, mount: &str) -> Place {
        Place::V1 {
            dir: dir.into(),
            mount: mount.into(),
        }
    }

    #[test]
    fn hybrid_machine_layout() {
        // This machine: cgroup2 at /sys/fs/cgroup/unified offers only hugetlb.
        let l = layout_of(
            HYBRID_PROC_CGROUP,
            HYBRID_MOUNTINFO,
            Some(HYBRID_V2_CONTROLLERS),
        );
        assert_eq!(l.mode, Mode::Hybrid);
        assert_eq!(l.v2_mount.as_deref(), Some("/sys/fs/cgroup/unified"));
        assert_eq!(l.v2_dir, Some(PathBuf::from("/sys/fs/cgroup/unified")));
        assert_eq!(l.v2_controllers, ["hugetlb"]);
        assert_eq!(
            l.places,
            vec![
                (
                    "memory",
                    v1(
                        "/sys/fs/cgroup/memory/process_api/f9256aba096644396ad750cb33e26f14",
                        "/sys/fs/cgroup/memory"
                    )
                ),
                ("pids", v1("/sys/fs/cgroup/pids", "/sys/fs/cgroup/pids")),
                ("cpu", v1("/sys/fs/cgroup/cpu", "/sys/fs/cgroup/cpu")),
            ]
        );
    }

    #[test]
    fn hybrid_machine_root_is_ok_via_v1() {
        let l = layout_of(
            HYBRID_PROC_CGROUP,
            HYBRID_MOUNTINFO,
            Some(HYBRID_V2_CONTROLLERS),
        );
        let c = check(&l, &|_| true, true);
        assert_eq!(c.status, Status::Ok);
        assert_eq!(c.remedy, None);
        assert_eq!(
            c.detail,
            "hybrid: v1 controller hierarchies + cgroup2 at /sys/fs/cgroup/unified (v2 controllers: hugetlb); \
             memory v1 /sys/fs/cgroup/memory/process_api/f9256aba096644396ad750cb33e26f14 (writable), \
             pids v1 /sys/fs/cgroup/pids (writable), cpu v1 /sys/fs/cgroup/cpu (writable); \
             memory, pids and cpu limits can be enforced"
        );
    }

    #[test]
    fn hybrid_machine_unprivileged_is_limited() {
        let l = layout_of(
            HYBRID_PROC_CGROUP,
            HYBRID_MOUNTINFO,
            Some(HYBRID_V2_CONTROLLERS),
        );
        let c = check(&l, &|_| false, false);
        assert_eq!(c.status, Status::Limited);
        assert!(
            c.detail
                .ends_with("limits optional, cannot enforce: memory, pids, cpu"),
            "{}",
            c.detail
        );
        let remedy = c.remedy.unwrap();
        assert_eq!(
            remedy.lines().count(),
            1,
            "one remedy for the three v1 controllers: {remedy}"
        );
        assert!(remedy.starts_with("cgroup v1 has no safe delegation"));
        assert!(remedy.contains("systemd.unified_cgroup_hierarchy=1"));
    }

    #[test]
    fn pure_v2_session_scope_unprivileged() {
        let l = layout_of(
            V2_PROC_CGROUP_SESSION,
            V2_MOUNTINFO,
            Some("cpuset cpu io memory pids\n"),
        );
        assert_eq!(l.mode, Mode::PureV2);
        let dir = PathBuf::from("/sys/fs/cgroup/user.slice/user-1000.slice/session-2.scope");
        assert_eq!(l.v2_dir.as_ref(), Some(&dir));
        let v2 = Place::V2 {
            dir,
            mount: "/sys/fs/cgroup".into(),
        };
        assert_eq!(
            l.places,
            vec![("memory", v2.clone()), ("pids", v2.clone()), ("cpu", v2)]
        );
        let c = check(&l, &|_| false, false);
        assert_eq!(c.status, Status::Limited);
        assert_eq!(
            c.remedy.as_deref(),
            Some(
                "run stockade in a cgroup delegated to you (the new scope is owned by your user): \
                 `systemd-run --user --scope -p Delegate=yes -- stockade run ...`"
            )
        );
        assert_eq!(
            check(&l, &|_| true, false).status,
            Status::Ok,
            "a delegated scope is enough"
        );
    }

    #[test]
    fn pure_v2_missing_delegated_controller() {
        // An older systemd delegating only memory and pids to user@.service.
        let l = layout_of(V2_PROC_CGROUP_SESSION, V2_MOUNTINFO, Some("memory pids\n"));
        assert_eq!(l.places[2], ("cpu", Place::Nowhere(Why::NotEnabled)));
        let c = check(&l, &|_| true, false);
        assert_eq!(c.status, Status::Limited);
        assert!(
            c.detail
                .contains("cpu unavailable (not in own cgroup.controllers)"),
            "{}",
            c.detail
        );
        assert!(c.remedy.unwrap().contains("Delegate=cpu memory pids"));
        let c = check(&l, &|_| true, true);
        assert_eq!(
            c.remedy.as_deref(),
            Some("enable it in the parent cgroup: `echo +cpu | sudo tee /sys/fs/cgroup/user.slice/user-1000.slice/cgroup.subtree_control`")
        );
    }

    #[test]
    fn v1_host_with_combined_cpu_hierarchy() {
        let l = layout_of(V1_PROC_CGROUP, V1_MOUNTINFO, None);
        assert_eq!(l.mode, Mode::V1);
        assert_eq!(l.v2_mount, None);
        assert_eq!(
            l.places,
            vec![
                (
                    "memory",
                    v1("/sys/fs/cgroup/memory/user.slice", "/sys/fs/cgroup/memory")
                ),
                (
                    "pids",
                    v1(
                        "/sys/fs/cgroup/pids/user.slice/user-1000.slice",
                        "/sys/fs/cgroup/pids"
                    )
                ),
                (
                    "cpu",
                    v1(
                        "/sys/fs/cgroup/cpu,cpuacct/user.slice",
                        "/sys/fs/cgroup/cpu,cpuacct"
                    )
                ),
            ]
        );
        // Root but read-only mounts (a container): the remedy names the mount.
        let c = check(&l, &|_| false, true);
        assert_eq!(c.status, Status::Limited);
        assert_eq!(
            c.remedy.unwrap().lines().count(),
            3,
            "one remount per hierarchy"
        );
    }

    #[test]
    fn docker_container_v2_read_only() {
        let l = layout_of(
            "0::/\n",
            DOCKER_MOUNTINFO,
            Some("cpuset cpu io memory hugetlb pids rdma misc\n"),
        );
        assert_eq!(l.mode, Mode::PureV2);
        assert_eq!(l.v2_dir, Some(PathBuf::from("/sys/fs/cgroup")));
        let c = check(&l, &|_| false, true);
        assert_eq!(c.status, Status::Limited);
        assert!(c
            .remedy
            .unwrap()
            .contains("sudo mount -o remount,rw /sys/fs/cgroup"));
    }

    #[test]
    fn unmounted_and_invisible_hierarchies() {
        // pids listed in /proc/self/cgroup but its hierarchy not mounted; memory's mount
        // shows another subtree; no cgroup2.
        let mounts = "\
30 25 0:26 /other /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory
";
        let l = layout_of("10:memory:/user.slice\n9:pids:/\n", mounts, None);
        assert_eq!(l.mode, Mode::V1);
        assert_eq!(
            l.places,
            vec![
                ("memory", Place::Nowhere(Why::NotVisible)),
                ("pids", Place::Nowhere(Why::V1NotMounted)),
                ("cpu", Place::Nowhere(Why::NoHierarchy)),
            ]
        );
        assert_eq!(check(&l, &|_| true, true).status, Status::Limited);
    }

    #[test]
    fn container_mount_root_is_stripped() {
        // Docker without a cgroup namespace: the mount's root is the container's cgroup.
        let mounts = "40 30 0:30 /docker/abc /sys/fs/cgroup/memory ro - cgroup cgroup rw,memory\n";
        let l = layout_of("4:memory:/docker/abc\n", mounts, None);
        assert_eq!(
            l.places[0],
            (
                "memory",
                v1("/sys/fs/cgroup/memory", "/sys/fs/cgroup/memory")
            )
        );
        let l = layout_of("4:memory:/docker/abcdef\n", mounts, None);
        assert_eq!(
            l.places[0],
            ("memory", Place::Nowhere(Why::NotVisible)),
            "a prefix must end at a '/'"
        );
        let l = layout_of(
            "0::/../sibling\n",
            "35 24 0:30 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n",
            Some("memory"),
        );
        assert_eq!(
            l.v2_dir, None,
            "a path outside our cgroup namespace is not visible"
        );
    }

    #[test]
    fn no_cgroup_filesystem() {
        let l = layout_of("0::/\n", "22 27 0:21 / /proc rw - proc proc rw\n", None);
        assert_eq!(l.mode, Mode::Absent);
        let c = check(&l, &|_| true, true);
        assert_eq!(c.status, Status::Limited);
        assert!(c.remedy.unwrap().contains("mount -t cgroup2"));
    }
}
