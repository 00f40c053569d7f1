//! Detection: where each controller lives for the calling process and whether a
//! sandbox cgroup can be created there.
//!
//! Inputs are the text of `/proc/self/cgroup` and `/proc/self/mountinfo` plus a
//! filesystem prefix ([`Probe::fs_root`]), so the unit tests point detection at a
//! fixture tree under `/tmp` and simulate another uid with [`Creds::As`].
//!
//! Rules (see the module doc of [`super`] for why):
//! - v1: the sandbox cgroup goes directly under the caller's own cgroup in each
//!   controller's hierarchy; usable when that directory is writable (root, in practice:
//!   v1 has no safe delegation).
//! - v2: under the caller's own cgroup `C` when `C` can hand controllers to children:
//!   they are already in `C/cgroup.subtree_control`, or `C` is the real root cgroup (no
//!   internal-process rule there) and we may enable them. Otherwise `C` holds processes
//!   (at least the caller) and the kernel refuses to enable controllers in it (the
//!   "no internal processes" rule); we never move the caller to a leaf, so the only other
//!   place is the *delegated unit that directly contains `C`* (systemd's
//!   `DelegateSubgroup=` layout: the unit's cgroup is delegated, the caller lives in its
//!   subgroup, sandboxes become siblings of that subgroup). Anything else is unavailable,
//!   with a remedy.

use std::collections::BTreeSet;
use std::ffi::CString;
use std::fmt::Write as _;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use nix::fcntl::{AtFlags, AT_FDCWD};
use nix::unistd::{faccessat, AccessFlags};

use super::Controller;

// The parsers are the doctor's (`/proc/self/cgroup` lines and mountinfo);
// detection only keeps the cgroup mounts.
pub(crate) use crate::doctor::parse::parse_proc_cgroup;
use crate::doctor::parse::{CgroupEntry as CgroupLine, Mount as MountLine};

/// The cgroup (`cgroup`, `cgroup2`) mounts of `/proc/self/mountinfo`.
pub(crate) fn parse_mountinfo(text: &str) -> Vec<MountLine> {
    crate::doctor::parse::parse_mountinfo(text)
        .into_iter()
        .filter(|m| m.fstype == "cgroup" || m.fstype == "cgroup2")
        .collect()
}

/// Whose permissions decide what is writable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Creds {
    /// The calling process: `faccessat(W_OK, AT_EACCESS)`, which honours user
    /// namespaces, read-only mounts and LSMs.
    Current,
    /// A simulated user (fixture trees): owner/group/other mode bits; uid 0 may write.
    #[cfg_attr(not(test), allow(dead_code))]
    As {
        /// Simulated effective uid.
        uid: u32,
        /// Simulated effective gid.
        gid: u32,
    },
}

/// Everything detection reads.
#[derive(Debug, Clone)]
pub(crate) struct Probe {
    /// Text of `/proc/self/cgroup`.
    pub proc_self_cgroup: String,
    /// Text of `/proc/self/mountinfo`.
    pub mountinfo: String,
    /// Prefix of every mount point (`/` on the host, a fixture directory in tests).
    pub fs_root: PathBuf,
    /// Whose permissions count.
    pub creds: Creds,
}

impl Probe {
    /// The calling process on this host.
    pub(crate) fn host() -> std::io::Result<Probe> {
        Ok(Probe {
            proc_self_cgroup: std::fs::read_to_string("/proc/self/cgroup")?,
            mountinfo: std::fs::read_to_string("/proc/self/mountinfo")?,
            fs_root: PathBuf::from("/"),
            creds: Creds::Current,
        })
    }

    /// `dir` (a path as mounted) inside [`Probe::fs_root`].
    fn at(&self, dir: &Path) -> PathBuf {
        let rel = dir.strip_prefix("/").unwrap_or(dir);
        if rel.as_os_str().is_empty() {
            self.fs_root.clone()
        } else {
            self.fs_root.join(rel)
        }
    }

    fn writable(&self, path: &Path, mount: &MountLine) -> bool {
        if mount.read_only() {
            return false;
        }
        match self.creds {
            Creds::Current => {
                faccessat(AT_FDCWD, path, AccessFlags::W_OK, AtFlags::AT_EACCESS).is_ok()
            }
            Creds::As { uid, gid } => std::fs::metadata(path).is_ok_and(|m| {
                let mode = m.mode();
                uid == 0
                    || (m.uid() == uid && mode & 0o200 != 0)
                    || (m.gid() == gid && mode & 0o020 != 0)
                    || mode & 0o002 != 0
            }),
        }
    }

    fn uid(&self) -> u32 {
        match self.creds {
            Creds::Current => nix::unistd::geteuid().as_raw(),
            Creds::As { uid, .. } => uid,
        }
    }
}

/// A controller that cannot be used, why, and how to fix the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Unusable {
    /// The controller.
    pub controller: Controller,
    /// Why it cannot be used.
    pub why: String,
    /// The concrete fix.
    pub fix: String,
}

/// Where sandbox cgroups go on a cgroup v2 host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct V2Base {
    /// The directory sandbox cgroups are created in.
    pub base: PathBuf,
    /// Controllers the sandbox cgroups get (after `enable` is written).
    pub controllers: Vec<Controller>,
    /// Controllers to write into `base/cgroup.subtree_control` before the first child.
    pub enable: Vec<Controller>,
    /// True when `base` is the delegated parent of the caller's own cgroup (the
    /// `DelegateSubgroup=` layout), false when it is the caller's own cgroup.
    pub beside_caller: bool,
    /// Controllers that cannot be used, with reasons.
    pub unusable: Vec<Unusable>,
}

/// The caller's cgroups on a cgroup v1 (or hybrid) host, one per hierarchy.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct V1Dirs {
    /// The caller's memory cgroup.
    pub memory: Option<PathBuf>,
    /// The caller's pids cgroup.
    pub pids: Option<PathBuf>,
    /// The caller's cpu cgroup.
    pub cpu: Option<PathBuf>,
    /// The caller's cpuacct cgroup (cpu time), often the same directory as `cpu`.
    pub cpuacct: Option<PathBuf>,
    /// `memory.memsw.limit_in_bytes` exists (swap accounting is on).
    pub memsw: bool,
    /// Controllers that cannot be used, with reasons.
    pub unusable: Vec<Unusable>,
}

/// What this process can do with cgroups.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Available {
    /// cgroup v2: sandbox cgroups go under `base`.
    V2(V2Base),
    /// cgroup v1 (also hybrid hosts whose controllers are on v1 hierarchies).
    V1(V1Dirs),
    /// No sandbox cgroup can be created: limits need another mechanism or must fail.
    None {
        /// Why not.
        why: String,
        /// How to fix the host.
        remedy: String,
    },
}

/// The remedy for a v2 caller without a usable delegated cgroup.
pub(crate) const DELEGATE_REMEDY: &str = "run stockade in a cgroup delegated to you whose own \
processes sit in a subgroup: `systemd-run --user --wait --pipe -p Delegate=yes \
-p DelegateSubgroup=main -- stockade run ...` (systemd >= 254; as root drop `--user`), or for a \
service set `Delegate=yes` and `DelegateSubgroup=main` in its unit";

impl Available {
    /// Detect for the calling process.
    pub(crate) fn detect() -> Available {
        match Probe::host() {
            Ok(p) => detect(&p),
            Err(e) => Available::None {
                why: format!("cannot read /proc/self/cgroup or /proc/self/mountinfo: {e}"),
                remedy: "mount /proc".into(),
            },
        }
    }

    /// Why `controller` cannot be used, or None when it can.
    pub(crate) fn unusable(&self, controller: Controller) -> Option<Unusable> {
        let (usable, list) = match self {
            Available::V2(b) => (b.controllers.contains(&controller), &b.unusable),
            Available::V1(d) => (
                match controller {
                    Controller::Memory => d.memory.is_some(),
                    Controller::Pids => d.pids.is_some(),
                    Controller::Cpu => d.cpu.is_some(),
                    Controller::Io => false,
                },
                &d.unusable,
            ),
            Available::None { why, remedy } => {
                return Some(Unusable {
                    controller,
                    why: why.clone(),
                    fix: remedy.clone(),
                })
            }
        };
        if usable {
            return None;
        }
        Some(
            list.iter()
                .find(|u| u.controller == controller)
                .cloned()
                .unwrap_or_else(|| Unusable {
                    controller,
                    why: "not offered by the detected cgroup hierarchy".into(),
                    fix: DELEGATE_REMEDY.into(),
                }),
        )
    }

    /// The effective level, one line, for `doctor` and run reports.
    pub(crate) fn level(&self) -> String {
        let names = |cs: &[Controller]| {
            if cs.is_empty() {
                "no controllers".to_string()
            } else {
                cs.iter().map(|c| c.name()).collect::<Vec<_>>().join(" ")
            }
        };
        let mut s = match self {
            Available::V2(b) => format!(
                "cgroup v2 under {} ({}{})",
                b.base.display(),
                names(&b.controllers),
                if b.beside_caller {
                    "; delegated parent of the caller's cgroup"
                } else {
                    ""
                }
            ),
            Available::V1(d) => {
                let mut parts = Vec::new();
                for (n, p) in [
                    ("memory", &d.memory),
                    ("pids", &d.pids),
                    ("cpu", &d.cpu),
                    ("cpuacct", &d.cpuacct),
                ] {
                    if let Some(p) = p {
                        parts.push(format!("{n} {}", p.display()));
                    }
                }
                if d.memory.is_some() {
                    parts.push(
                        if d.memsw {
                            "swap capped"
                        } else {
                            "swap not accounted"
                        }
                        .into(),
                    );
                }
                format!("cgroup v1 ({})", parts.join(", "))
            }
            Available::None { why, .. } => return format!("none: {why}"),
        };
        let unusable = match self {
            Available::V2(b) => &b.unusable,
            Available::V1(d) => &d.unusable,
            Available::None { .. } => unreachable!(),
        };
        for u in unusable {
            let _ = write!(s, "; {} unavailable: {}", u.controller.name(), u.why);
        }
        s
    }
}

fn read_words(path: &Path) -> Option<BTreeSet<String>> {
    std::fs::read_to_string(path)
        .ok()
        .map(|t| t.split_whitespace().map(String::from).collect())
}

/// The controllers of ours listed in `dir/cgroup.controllers`.
fn offered_in(dir: &Path) -> Vec<Controller> {
    read_words(&dir.join("cgroup.controllers"))
        .map(|w| {
            Controller::ALL
                .into_iter()
                .filter(|c| w.contains(c.name()))
                .collect()
        })
        .unwrap_or_default()
}

/// `offered` split into those already in `dir/cgroup.subtree_control` and the rest.
fn split_enabled(dir: &Path, offered: &[Controller]) -> (Vec<Controller>, Vec<Controller>) {
    let subtree = read_words(&dir.join("cgroup.subtree_control")).unwrap_or_default();
    offered
        .iter()
        .copied()
        .partition(|c| subtree.contains(c.name()))
}

fn has_processes(dir: &Path) -> bool {
    std::fs::read_to_string(dir.join("cgroup.procs")).map_or(true, |t| !t.trim().is_empty())
}

/// systemd marks delegated cgroups with `trusted.delegate=1` (system manager) or
/// `user.delegate=1` (user manager, systemd >= 251).
fn delegate_marked(dir: &Path) -> bool {
    let Ok(c) = CString::new(dir.as_os_str().as_bytes()) else {
        return false;
    };
    ["trusted.delegate", "user.delegate"].iter().any(|name| {
        let name = CString::new(*name).expect("no NUL");
        let mut buf = [0u8; 8];
        // SAFETY: `c` and `name` are valid NUL-terminated strings; `buf` is a writable
        // buffer whose exact length is passed.
        let n = unsafe {
            libc::getxattr(
                c.as_ptr(),
                name.as_ptr(),
                buf.as_mut_ptr().cast(),
                buf.len(),
            )
        };
        n >= 1 && buf[0] == b'1'
    })
}

/// Detect from `probe`.
pub(crate) fn detect(probe: &Probe) -> Available {
    let lines = parse_proc_cgroup(&probe.proc_self_cgroup);
    let mounts = parse_mountinfo(&probe.mountinfo);
    let v1 = detect_v1(probe, &lines, &mounts);
    let v2 = detect_v2(probe, &lines, &mounts);
    let core = [Controller::Memory, Controller::Pids, Controller::Cpu];
    let v2_usable = match &v2 {
        Some(Available::V2(b)) => core.iter().filter(|c| b.controllers.contains(c)).count(),
        _ => 0,
    };
    // A controller lives on one hierarchy only: use the version that carries more of
    // memory/pids/cpu (v1 on hybrid hosts like the project's test machine).
    match (v1, v2) {
        (Some((v1, bound)), _) if bound > 0 && bound >= v2_usable.max(1) => {
            let usable = v1.memory.is_some() || v1.pids.is_some() || v1.cpu.is_some();
            if usable {
                Available::V1(v1)
            } else {
                let core: Vec<&Unusable> = v1
                    .unusable
                    .iter()
                    .filter(|u| u.controller != Controller::Io)
                    .collect();
                let why = core
                    .iter()
                    .map(|u| format!("{}: {}", u.controller.name(), u.why))
                    .collect::<Vec<_>>()
                    .join("; ");
                let remedy = core
                    .iter()
                    .map(|u| u.fix.clone())
                    .collect::<BTreeSet<_>>()
                    .into_iter()
                    .collect::<Vec<_>>()
                    .join("\n");
                Available::None { why, remedy }
            }
        }
        (_, Some(v2)) => v2,
        _ => Available::None {
            why: "no cgroup hierarchy carrying memory, pids or cpu is mounted".into(),
            remedy: "mount the unified hierarchy: `sudo mount -t cgroup2 none /sys/fs/cgroup` \
                     (in a container: give it a cgroup namespace and a writable cgroupfs)"
                .into(),
        },
    }
}

/// v1: the caller's cgroup per controller hierarchy, and how many of memory/pids/cpu
/// are bound to v1 at all.
fn detect_v1(probe: &Probe, lines: &[CgroupLine], mounts: &[MountLine]) -> Option<(V1Dirs, usize)> {
    let mut dirs = V1Dirs::default();
    let mut bound = 0;
    let root = probe.uid() == 0;
    for (name, controller) in [
        ("memory", Some(Controller::Memory)),
        ("pids", Some(Controller::Pids)),
        ("cpu", Some(Controller::Cpu)),
        ("cpuacct", None),
    ] {
        let Some(line) = lines
            .iter()
            .find(|l| !l.is_v2() && l.controllers.iter().any(|c| c == name))
        else {
            continue;
        };
        if controller.is_some() {
            bound += 1;
        }
        let mount = mounts
            .iter()
            .find(|m| m.fstype == "cgroup" && m.has_super_opt(name));
        let result = match mount {
            None => Err((
                "its v1 hierarchy is not mounted".to_string(),
                format!(
                    "mount it as root: `mkdir -p /sys/fs/cgroup/{name} && \
                     mount -t cgroup -o {name} cgroup /sys/fs/cgroup/{name}`"
                ),
            )),
            Some(m) => match m.cgroup_dir(&line.path) {
                None => Err((
                    format!(
                        "the caller's cgroup {} is outside the part mounted at {}",
                        line.path, m.mount_point
                    ),
                    "run stockade where the cgroup filesystem was mounted from its own \
                     cgroup namespace"
                        .into(),
                )),
                Some(d) => {
                    let dir = probe.at(&d);
                    if probe.writable(&dir, m) {
                        Ok(dir)
                    } else if m.read_only() {
                        Err((
                            format!("{} is mounted read-only", m.mount_point),
                            format!(
                                "`mount -o remount,rw {}` (in a container: give it a writable \
                                 cgroupfs), or run stockade on the host",
                                m.mount_point
                            ),
                        ))
                    } else if !root {
                        Err((
                            format!(
                                "{} is not writable by uid {} (cgroup v1 has no safe \
                                 delegation to unprivileged users)",
                                dir.display(),
                                probe.uid()
                            ),
                            "run stockade as root (limits then use v1), or boot the host with \
                             pure cgroup v2 (`systemd.unified_cgroup_hierarchy=1`) and run it in \
                             a delegated cgroup"
                                .into(),
                        ))
                    } else {
                        Err((
                            format!("{} is not writable", dir.display()),
                            "check the LSM policy and mount options of the cgroup filesystem"
                                .into(),
                        ))
                    }
                }
            },
        };
        match (result, controller) {
            (Ok(dir), _) => match name {
                "memory" => {
                    dirs.memsw = dir.join("memory.memsw.limit_in_bytes").exists();
                    dirs.memory = Some(dir);
                }
                "pids" => dirs.pids = Some(dir),
                "cpu" => dirs.cpu = Some(dir),
                _ => dirs.cpuacct = Some(dir),
            },
            (Err((why, fix)), Some(controller)) => dirs.unusable.push(Unusable {
                controller,
                why,
                fix,
            }),
            (Err(_), None) => {} // cpuacct only feeds cpu_time; stats say None then
        }
    }
    dirs.unusable.push(Unusable {
        controller: Controller::Io,
        why: "io weight is supported on cgroup v2 only".into(),
        fix: "boot the host with pure cgroup v2 (`systemd.unified_cgroup_hierarchy=1`)".into(),
    });
    (bound > 0).then_some((dirs, bound))
}

/// v2: the base directory for sandbox cgroups, or why there is none.
fn detect_v2(probe: &Probe, lines: &[CgroupLine], mounts: &[MountLine]) -> Option<Available> {
    let mount = mounts
        .iter()
        .filter(|m| m.fstype == "cgroup2")
        .min_by_key(|m| m.mount_point != "/sys/fs/cgroup")?;
    let line = lines.iter().find(|l| l.is_v2())?;
    let Some(own) = mount.cgroup_dir(&line.path) else {
        return Some(Available::None {
            why: format!(
                "the caller's v2 cgroup {} is outside the part mounted at {}",
                line.path, mount.mount_point
            ),
            remedy: "run stockade where /sys/fs/cgroup was mounted from its own cgroup namespace"
                .into(),
        });
    };
    let top = Path::new(&mount.mount_point) == own;
    let own = probe.at(&own);
    let offered = offered_in(&own);
    let not_offered = |dir: &Path, offered: &[Controller]| -> Vec<Unusable> {
        Controller::ALL
            .into_iter()
            .filter(|c| !offered.contains(c))
            .map(|c| Unusable {
                controller: c,
                why: format!("not in {}/cgroup.controllers", dir.display()),
                fix: if top {
                    format!(
                        "the kernel does not offer {} on cgroup v2 (bound to a v1 hierarchy, \
                         not built in, or disabled on the kernel command line): boot with \
                         `systemd.unified_cgroup_hierarchy=1`",
                        c.name()
                    )
                } else {
                    format!(
                        "delegate it: `Delegate={}` on the unit (for user sessions: a drop-in \
                         for user@.service), then {DELEGATE_REMEDY}",
                        c.name()
                    )
                },
            })
            .collect()
    };
    let (enabled, missing) = split_enabled(&own, &offered);
    // The real root cgroup has no cgroup.type file; the no-internal-process rule does
    // not apply to it.
    let real_root = !own.join("cgroup.type").exists();
    let own_writable =
        probe.writable(&own, mount) && probe.writable(&own.join("cgroup.procs"), mount);
    let offers_core = offered
        .iter()
        .any(|c| matches!(c, Controller::Memory | Controller::Pids | Controller::Cpu));
    if own_writable && offers_core {
        if missing.is_empty() {
            let unusable = not_offered(&own, &offered);
            return Some(v2_base(own, enabled, vec![], false, unusable));
        }
        if (real_root || !has_processes(&own))
            && probe.writable(&own.join("cgroup.subtree_control"), mount)
        {
            let unusable = not_offered(&own, &offered);
            return Some(v2_base(own, offered, missing, false, unusable));
        }
    }
    // The caller's cgroup has processes (it holds the caller) and no controllers for
    // children. Try the delegated unit directly above it (DelegateSubgroup= layout).
    if !top {
        if let Some(parent) = own.parent() {
            let delegated = delegate_marked(parent)
                || (probe.uid() != 0
                    && !parent.to_string_lossy().ends_with(".slice")
                    && [
                        parent.to_path_buf(),
                        parent.join("cgroup.procs"),
                        parent.join("cgroup.subtree_control"),
                    ]
                    .iter()
                    .all(|p| std::fs::metadata(p).is_ok_and(|m| m.uid() == probe.uid())));
            if delegated
                && probe.writable(parent, mount)
                && probe.writable(&parent.join("cgroup.procs"), mount)
            {
                let p_offered = offered_in(parent);
                let (p_enabled, p_missing) = split_enabled(parent, &p_offered);
                // The parent holds the caller's cgroup as a child, so its own process
                // list is what decides whether controllers can still be enabled.
                let can_enable = !p_missing.is_empty()
                    && !has_processes(parent)
                    && probe.writable(&parent.join("cgroup.subtree_control"), mount);
                let (controllers, enable) = if can_enable {
                    (p_offered.clone(), p_missing)
                } else {
                    (p_enabled, vec![])
                };
                if !controllers.is_empty() {
                    let unusable = not_offered(parent, &controllers);
                    return Some(v2_base(
                        parent.to_path_buf(),
                        controllers,
                        enable,
                        true,
                        unusable,
                    ));
                }
            }
        }
    }
    if !offers_core {
        return Some(Available::None {
            why: format!(
                "cgroup v2 at {} offers none of memory, pids, cpu to {}",
                mount.mount_point,
                own.display()
            ),
            remedy: not_offered(&own, &offered)
                .into_iter()
                .map(|u| u.fix)
                .next()
                .unwrap_or_default(),
        });
    }
    if mount.read_only() {
        return Some(Available::None {
            why: format!(
                "the cgroup2 filesystem at {} is mounted read-only",
                mount.mount_point
            ),
            remedy: format!(
                "`mount -o remount,rw {}` (in a container: start it with a writable cgroupfs, \
                 e.g. Podman `--systemd=always`), or run stockade on the host",
                mount.mount_point
            ),
        });
    }
    let why = if !own_writable {
        format!(
            "the caller's cgroup {} is not writable by uid {} (not delegated to it)",
            own.display(),
            probe.uid()
        )
    } else {
        let names: Vec<&str> = missing.iter().map(|c| c.name()).collect();
        format!(
            "the caller's cgroup {} holds processes (the caller itself), so cgroup v2's \
             no-internal-processes rule forbids enabling {} for child cgroups; stockade does \
             not move the caller into a leaf, and the cgroup above it is not a delegated unit",
            own.display(),
            names.join(" ")
        )
    };
    Some(Available::None {
        why,
        remedy: DELEGATE_REMEDY.into(),
    })
}

fn v2_base(
    base: PathBuf,
    controllers: Vec<Controller>,
    enable: Vec<Controller>,
    beside_caller: bool,
    unusable: Vec<Unusable>,
) -> Available {
    Available::V2(V2Base {
        base,
        controllers,
        enable,
        beside_caller,
        unusable,
    })
}
