//! The sandbox's cgroups as the host sees them: where the init is in each
//! hierarchy stockade places it in (v1 `memory`, `pids`, `cpu`, `cpuacct`; v2), whether that
//! is a cgroup of its own, and the limit files there.

use std::path::{Path, PathBuf};

use crate::doctor::parse::{parse_mountinfo, parse_proc_cgroup, Mount};

/// The hierarchies stockade places a sandbox in, with their limit files
/// (`cpuacct` only counts: it has none).
const HIERARCHIES: [(&str, &[&str]); 5] = [
    (
        "memory",
        &["memory.limit_in_bytes", "memory.memsw.limit_in_bytes"],
    ),
    ("pids", &["pids.max"]),
    ("cpu", &["cpu.cfs_quota_us", "cpu.cfs_period_us"]),
    ("cpuacct", &[]),
    (
        "unified",
        &["memory.max", "memory.swap.max", "pids.max", "cpu.max"],
    ),
];

/// The init's cgroup in one hierarchy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Dir {
    /// `memory`, `pids`, `cpu`, `cpuacct` (v1) or `unified` (v2).
    pub hierarchy: &'static str,
    /// The path as in `/proc/PID/cgroup`.
    pub path: String,
    /// Where that cgroup is in our mounts (None: not visible from here).
    pub dir: Option<PathBuf>,
    /// Whether it is the sandbox's own cgroup (one the host made for it, or,
    /// when the host is not asked, one its parent is not in).
    pub own: bool,
    /// The limit files present there: (name, trimmed contents).
    pub files: Vec<(String, String)>,
}

impl Dir {
    /// The contents of limit file `name`, if present.
    pub(crate) fn file(&self, name: &str) -> Option<&str> {
        self.files
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// The init's cgroups and the processes listed in its own ones.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct View {
    pub dirs: Vec<Dir>,
    /// Every pid in the `cgroup.procs` of the sandbox's own cgroups.
    pub procs: Vec<u32>,
}

impl View {
    pub(crate) fn own(&self) -> impl Iterator<Item = &Dir> {
        self.dirs.iter().filter(|d| d.own)
    }

    /// The directory serving `hierarchy`.
    pub(crate) fn get(&self, hierarchy: &str) -> Option<&Dir> {
        self.dirs.iter().find(|d| d.hierarchy == hierarchy)
    }
}

/// Read the cgroups of a process whose `/proc/PID/cgroup` is `init`. A dir is
/// its own when it is one of `known` (the host's record) or, with no record,
/// when `parent` (the creator's `/proc/PID/cgroup`) shows another path there.
pub(crate) fn view(init: &str, parent: Option<&str>, known: &[PathBuf]) -> View {
    let mounts: Vec<Mount> = std::fs::read_to_string("/proc/self/mountinfo")
        .map(|t| parse_mountinfo(&t))
        .unwrap_or_default()
        .into_iter()
        .filter(|m| m.fstype == "cgroup" || m.fstype == "cgroup2")
        .collect();
    let parent = parent.map(parse_proc_cgroup);
    let mut view = View::default();
    for (hierarchy, files) in HIERARCHIES {
        let Some(path) = path_in(init, hierarchy) else {
            continue;
        };
        let mount = mounts.iter().find(|m| match hierarchy {
            "unified" => m.fstype == "cgroup2",
            h => m.fstype == "cgroup" && m.has_super_opt(h),
        });
        let dir = mount.and_then(|m| m.cgroup_dir(&path));
        let own = if known.is_empty() {
            let parent_path = parent.as_ref().and_then(|p| {
                p.iter()
                    .find(|e| matches_hierarchy(e, hierarchy))
                    .map(|e| e.path.clone())
            });
            parent_path.is_some_and(|p| p != path)
        } else {
            dir.as_ref().is_some_and(|d| known.iter().any(|k| k == d))
        };
        let files = dir
            .as_deref()
            .map(|d| read_files(d, files))
            .unwrap_or_default();
        if own {
            if let Some(d) = &dir {
                view.procs.extend(procs(d));
            }
        }
        view.dirs.push(Dir {
            hierarchy,
            path,
            dir,
            own,
            files,
        });
    }
    view.procs.sort_unstable();
    view.procs.dedup();
    view
}

fn matches_hierarchy(e: &crate::doctor::parse::CgroupEntry, hierarchy: &str) -> bool {
    match hierarchy {
        "unified" => e.is_v2(),
        h => e.controllers.iter().any(|c| c == h),
    }
}

/// The path of `hierarchy` in a `/proc/PID/cgroup` text.
pub(crate) fn path_in(cgroup: &str, hierarchy: &str) -> Option<String> {
    parse_proc_cgroup(cgroup)
        .into_iter()
        .find(|e| matches_hierarchy(e, hierarchy))
        .map(|e| e.path)
}

fn read_files(dir: &Path, names: &[&str]) -> Vec<(String, String)> {
    names
        .iter()
        .filter_map(|n| {
            let v = std::fs::read_to_string(dir.join(n)).ok()?;
            Some((n.to_string(), v.trim().to_string()))
        })
        .collect()
}

fn procs(dir: &Path) -> Vec<u32> {
    std::fs::read_to_string(dir.join("cgroup.procs"))
        .map(|t| t.lines().filter_map(|l| l.trim().parse().ok()).collect())
        .unwrap_or_default()
}
