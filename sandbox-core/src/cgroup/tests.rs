//! Tests: parsing and detection on fixtures (v1, v2, hybrid, delegation cases), and,
//! as root, real sandbox cgroups on this host proving each limit with a child process.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::detect::{self, parse_mountinfo, parse_proc_cgroup, Creds, DELEGATE_REMEDY};
use super::*;

// ---------------------------------------------------------------------------
// Fixtures
// ---------------------------------------------------------------------------

/// This project's test machine: memory, pids, cpu, cpuacct on separate v1
/// hierarchies; cgroup2 at /sys/fs/cgroup/unified without controllers.
const HYBRID_MOUNTINFO: &str = "\
22 27 0:21 / /proc rw,relatime - proc proc rw
27 1 254:0 / / rw,relatime - ext4 /dev/vda rw,discard
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
34 31 0:31 / /sys/fs/cgroup/cpuset rw,relatime - cgroup cgroup rw,cpuset
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
38 31 0:35 / /sys/fs/cgroup/blkio rw,relatime - cgroup cgroup rw,blkio
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";

const HYBRID_PROC_CGROUP: &str = "\
9:name=systemd:/
8:pids:/
7:blkio:/
4:memory:/process_api/0ad97efde41f08a76b9e885b9aef834d
3:cpuset:/
2:cpuacct:/
1:cpu:/
0::/
";

/// A CentOS 7-like v1 host: `cpu,cpuacct` share one hierarchy; a path with ':'.
const V1_MOUNTINFO: &str = "\
25 18 0:21 / /sys/fs/cgroup ro,nosuid,nodev,noexec shared:8 - tmpfs tmpfs ro,mode=755
26 25 0:22 / /sys/fs/cgroup/systemd rw,nosuid shared:9 - cgroup cgroup rw,xattr,name=systemd
29 25 0:25 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid shared:12 - cgroup cgroup rw,cpu,cpuacct
30 25 0:26 / /sys/fs/cgroup/memory rw,nosuid shared:13 - cgroup cgroup rw,memory
31 25 0:27 / /sys/fs/cgroup/pids rw,nosuid shared:14 - cgroup cgroup rw,pids
";

const V1_PROC_CGROUP: &str = "\
11:pids:/user.slice/user-1000.slice
5:memory:/user.slice
4:cpu,cpuacct:/system.slice/containerd.service/x.slice:cri:96b3
1:name=systemd:/user.slice/user-1000.slice/session-1.scope
";

/// A pure v2 desktop.
const V2_MOUNTINFO: &str = "\
35 24 0:30 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:9 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot
";

/// A fixture tree: directories and files created under a fresh /tmp directory,
/// removed on drop.
struct Tree(PathBuf);

impl Tree {
    fn new(tag: &str) -> Tree {
        let p = std::env::temp_dir().join(format!(
            "stockade-cgfix-{}-{tag}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        Tree(p)
    }
    /// Create the directory `rel` (a mounted path like `/sys/fs/cgroup/x`).
    fn dir(&self, rel: &str) -> PathBuf {
        let d = self.0.join(rel.trim_start_matches('/'));
        std::fs::create_dir_all(&d).unwrap();
        d
    }
    fn file(&self, rel: &str, text: &str) -> PathBuf {
        let f = self.0.join(rel.trim_start_matches('/'));
        std::fs::create_dir_all(f.parent().unwrap()).unwrap();
        std::fs::write(&f, text).unwrap();
        f
    }
    fn probe(&self, proc_cgroup: &str, mountinfo: &str, uid: u32) -> Probe {
        Probe {
            proc_self_cgroup: proc_cgroup.into(),
            mountinfo: mountinfo.into(),
            fs_root: self.0.clone(),
            creds: Creds::As { uid, gid: uid },
        }
    }
    /// A v2 cgroup directory with its core files.
    fn v2_cgroup(&self, rel: &str, controllers: &str, subtree: &str, procs: &str, typed: bool) {
        self.dir(rel);
        self.file(&format!("{rel}/cgroup.controllers"), controllers);
        self.file(&format!("{rel}/cgroup.subtree_control"), subtree);
        self.file(&format!("{rel}/cgroup.procs"), procs);
        if typed {
            self.file(&format!("{rel}/cgroup.type"), "domain\n");
        }
    }
    /// chown `rel` and its core files to `uid` (systemd's delegation).
    fn delegate(&self, rel: &str, uid: u32) {
        let d = self.0.join(rel.trim_start_matches('/'));
        for p in [
            d.clone(),
            d.join("cgroup.procs"),
            d.join("cgroup.subtree_control"),
        ] {
            std::os::unix::fs::chown(&p, Some(uid), Some(uid)).unwrap();
        }
    }
}

impl Drop for Tree {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// Fixtures that simulate another uid rely on files owned by root (and chown).
fn fixture_owner_is_root() -> bool {
    if !is_root() {
        eprintln!("skipped: ownership fixtures need root");
    }
    is_root()
}

// ---------------------------------------------------------------------------
// Parsing
// ---------------------------------------------------------------------------

#[test]
fn parses_proc_self_cgroup_v1_v2_hybrid() {
    let h = parse_proc_cgroup(HYBRID_PROC_CGROUP);
    assert_eq!(h.len(), 8);
    assert_eq!(h[3].hierarchy, 4);
    assert_eq!(h[3].controllers, ["memory"]);
    assert_eq!(h[3].path, "/process_api/0ad97efde41f08a76b9e885b9aef834d");
    assert_eq!(h[0].controllers, ["name=systemd"]);
    assert_eq!(
        (h[7].hierarchy, h[7].controllers.len(), h[7].path.as_str()),
        (0, 0, "/")
    );

    let v1 = parse_proc_cgroup(V1_PROC_CGROUP);
    assert_eq!(v1[2].controllers, ["cpu", "cpuacct"]);
    assert_eq!(
        v1[2].path, "/system.slice/containerd.service/x.slice:cri:96b3",
        "a path may contain ':'"
    );

    let v2 = parse_proc_cgroup("0::/user.slice/user-1000.slice/session-2.scope\n");
    assert_eq!(v2.len(), 1);
    assert_eq!(v2[0].path, "/user.slice/user-1000.slice/session-2.scope");
    assert!(parse_proc_cgroup("garbage\n\nx:y\n").is_empty());
}

#[test]
fn parses_cgroup_mounts_only() {
    let m = parse_mountinfo(HYBRID_MOUNTINFO);
    assert_eq!(
        m.len(),
        8,
        "proc, ext4 and tmpfs lines are not cgroup mounts"
    );
    assert_eq!(m[0].mount_point, "/sys/fs/cgroup/cpu");
    assert_eq!(m[0].super_opts, "rw,cpu");
    assert_eq!(m[7].fstype, "cgroup2");
    let m = parse_mountinfo(
        "40 30 0:30 /docker/a\\040b /sys/fs/cgroup/my\\040mem ro,nosuid - cgroup cgroup rw,memory\n",
    );
    assert_eq!(m[0].root, "/docker/a b");
    assert_eq!(m[0].mount_point, "/sys/fs/cgroup/my mem");
    assert_eq!(m[0].mount_opts, "ro,nosuid");
}

#[test]
fn keyed_files() {
    let oom_control = "oom_kill_disable 0\nunder_oom 0\noom_kill 3\n";
    assert_eq!(keyed(oom_control, "oom_kill"), Some(3));
    assert_eq!(keyed(oom_control, "oom_kill_disable"), Some(0));
    let events = "low 0\nhigh 0\nmax 12\noom 1\noom_kill 1\noom_group_kill 0\n";
    assert_eq!(keyed(events, "oom_kill"), Some(1));
    assert_eq!(keyed(events, "oom"), Some(1));
    assert_eq!(
        keyed("usage_usec 1234\nuser_usec 1\n", "usage_usec"),
        Some(1234)
    );
    assert_eq!(keyed("oom_kill_disable 0\nunder_oom 0\n", "oom_kill"), None);
}

// ---------------------------------------------------------------------------
// Detection on fixture trees
// ---------------------------------------------------------------------------

fn hybrid_tree() -> Tree {
    let t = Tree::new("hybrid");
    t.dir("/sys/fs/cgroup/memory/process_api/0ad97efde41f08a76b9e885b9aef834d");
    t.file(
        "/sys/fs/cgroup/memory/process_api/0ad97efde41f08a76b9e885b9aef834d/memory.memsw.limit_in_bytes",
        "9223372036854771712\n",
    );
    for h in ["pids", "cpu", "cpuacct"] {
        t.dir(&format!("/sys/fs/cgroup/{h}"));
    }
    t.v2_cgroup("/sys/fs/cgroup/unified", "hugetlb\n", "", "1\n", false);
    t
}

#[test]
fn detects_hybrid_host_as_root() {
    let t = hybrid_tree();
    let a = detect::detect(&t.probe(HYBRID_PROC_CGROUP, HYBRID_MOUNTINFO, 0));
    let cg = t.0.join("sys/fs/cgroup");
    let Available::V1(d) = &a else {
        panic!("expected v1, got {a:?}")
    };
    assert_eq!(
        d.memory.as_deref(),
        Some(&*cg.join("memory/process_api/0ad97efde41f08a76b9e885b9aef834d"))
    );
    assert_eq!(d.pids.as_deref(), Some(&*cg.join("pids")));
    assert_eq!(d.cpu.as_deref(), Some(&*cg.join("cpu")));
    assert_eq!(d.cpuacct.as_deref(), Some(&*cg.join("cpuacct")));
    assert!(d.memsw);
    assert_eq!(a.unusable(Controller::Memory), None);
    assert_eq!(
        a.unusable(Controller::Io).unwrap().controller,
        Controller::Io
    );
    let level = a.level();
    assert!(level.starts_with("cgroup v1 (memory "), "{level}");
    assert!(level.contains("swap capped"), "{level}");
    assert!(
        level.ends_with("io unavailable: io weight is supported on cgroup v2 only"),
        "{level}"
    );
}

#[test]
fn detects_hybrid_host_unprivileged_as_unavailable() {
    if !fixture_owner_is_root() {
        return;
    }
    let t = hybrid_tree();
    // The fixture is owned by root with mode 0755: uid 1000 cannot write.
    let a = detect::detect(&t.probe(HYBRID_PROC_CGROUP, HYBRID_MOUNTINFO, 1000));
    let Available::None { why, remedy } = &a else {
        panic!("expected none, got {a:?}")
    };
    assert!(
        why.contains("memory: ") && why.contains("no safe delegation"),
        "{why}"
    );
    assert_eq!(
        remedy.lines().count(),
        1,
        "one remedy for the three: {remedy}"
    );
    assert!(remedy.contains("run stockade as root"), "{remedy}");
    assert!(a.level().starts_with("none: memory: "), "{}", a.level());
}

#[test]
fn detects_v1_host_with_combined_cpu_hierarchy() {
    let t = Tree::new("v1");
    t.dir("/sys/fs/cgroup/memory/user.slice");
    t.dir("/sys/fs/cgroup/pids/user.slice/user-1000.slice");
    let cpu = t.dir("/sys/fs/cgroup/cpu,cpuacct/system.slice/containerd.service/x.slice:cri:96b3");
    let a = detect::detect(&t.probe(V1_PROC_CGROUP, V1_MOUNTINFO, 0));
    let Available::V1(d) = &a else {
        panic!("expected v1, got {a:?}")
    };
    assert_eq!(d.cpu.as_deref(), Some(&*cpu));
    assert_eq!(d.cpuacct.as_deref(), Some(&*cpu));
    assert!(!d.memsw, "no memsw file: swap not accounted");
    assert!(a.level().contains("swap not accounted"));
}

#[test]
fn detects_v2_unprivileged_without_delegation() {
    if !fixture_owner_is_root() {
        return;
    }
    let t = Tree::new("v2nodeleg");
    let scope = "/sys/fs/cgroup/user.slice/user-1000.slice/session-2.scope";
    t.v2_cgroup(
        "/sys/fs/cgroup",
        "cpuset cpu io memory pids\n",
        "cpu io memory pids\n",
        "",
        false,
    );
    t.v2_cgroup(
        "/sys/fs/cgroup/user.slice",
        "cpu io memory pids\n",
        "cpu io memory pids\n",
        "",
        true,
    );
    t.v2_cgroup(
        "/sys/fs/cgroup/user.slice/user-1000.slice",
        "cpu io memory pids\n",
        "cpu io memory pids\n",
        "",
        true,
    );
    t.v2_cgroup(scope, "cpu io memory pids\n", "", "1234\n1240\n", true);
    let a = detect::detect(&t.probe(&format!("0::{}\n", &scope[14..]), V2_MOUNTINFO, 1000));
    let Available::None { why, remedy } = &a else {
        panic!("expected none, got {a:?}")
    };
    assert!(
        why.contains("session-2.scope is not writable by uid 1000 (not delegated to it)"),
        "{why}"
    );
    assert_eq!(remedy, DELEGATE_REMEDY);
    assert!(remedy.contains("systemd-run --user"));
    // Asking for a limit there is an error naming the controller and the fix.
    let err = SandboxCgroup::create(
        &a,
        "x",
        &CgroupLimits {
            pids: Some(8),
            ..Default::default()
        },
    )
    .unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.starts_with("cgroup pids: cannot enforce the pids limit: the caller's cgroup"),
        "{msg}"
    );
    assert!(
        msg.contains("fix: run stockade in a cgroup delegated to you"),
        "{msg}"
    );
}

#[test]
fn detects_v2_delegated_scope_holding_the_caller_as_unavailable() {
    if !fixture_owner_is_root() {
        return;
    }
    // `systemd-run --user --scope -p Delegate=yes`: the scope is ours, but the caller sits
    // in it, so no controller can be enabled for its children; the parent is a slice.
    let t = Tree::new("v2scope");
    let slice = "/sys/fs/cgroup/user.slice/user-1000.slice/user@1000.service/app.slice";
    let scope = format!("{slice}/run-r1.scope");
    t.v2_cgroup(
        slice,
        "cpu io memory pids\n",
        "cpu io memory pids\n",
        "",
        true,
    );
    t.v2_cgroup(&scope, "cpu io memory pids\n", "", "4242\n", true);
    t.delegate(slice, 1000);
    t.delegate(&scope, 1000);
    let a = detect::detect(&t.probe(&format!("0::{}\n", &scope[14..]), V2_MOUNTINFO, 1000));
    let Available::None { why, remedy } = &a else {
        panic!("expected none, got {a:?}")
    };
    assert!(
        why.contains("no-internal-processes rule forbids enabling memory pids cpu io"),
        "{why}"
    );
    assert!(why.contains("does not move the caller"), "{why}");
    assert!(remedy.contains("DelegateSubgroup=main"), "{remedy}");
}

#[test]
fn detects_v2_delegate_subgroup_layout() {
    if !fixture_owner_is_root() {
        return;
    }
    // `Delegate=yes` + `DelegateSubgroup=main`: the unit's cgroup is delegated and empty,
    // the caller lives in `unit/main`; sandboxes go beside `main`.
    let t = Tree::new("v2subgroup");
    let unit =
        "/sys/fs/cgroup/user.slice/user-1000.slice/user@1000.service/app.slice/agent.service";
    let main = format!("{unit}/main");
    t.v2_cgroup(unit, "cpu io memory pids\n", "", "", true);
    t.v2_cgroup(&main, "", "", "4242\n", true);
    t.delegate(unit, 1000);
    t.delegate(&main, 1000);
    let a = detect::detect(&t.probe(&format!("0::{}\n", &main[14..]), V2_MOUNTINFO, 1000));
    let Available::V2(b) = &a else {
        panic!("expected v2, got {a:?}")
    };
    assert_eq!(b.base, t.0.join(unit.trim_start_matches('/')));
    assert!(b.beside_caller);
    assert_eq!(b.controllers, Controller::ALL);
    assert_eq!(
        b.enable,
        Controller::ALL,
        "the empty delegated unit may enable them"
    );
    assert!(b.unusable.is_empty());
    assert!(a
        .level()
        .contains("delegated parent of the caller's cgroup"));

    // The same unit not owned by the caller (and no delegate xattr): unavailable.
    let t2 = Tree::new("v2subgroup-notours");
    t2.v2_cgroup(unit, "cpu io memory pids\n", "", "", true);
    t2.v2_cgroup(&main, "", "", "4242\n", true);
    let a = detect::detect(&t2.probe(&format!("0::{}\n", &main[14..]), V2_MOUNTINFO, 1000));
    assert!(matches!(a, Available::None { .. }), "{a:?}");
}

#[test]
fn detects_v2_root_service_by_delegate_xattr() {
    if !fixture_owner_is_root() {
        return;
    }
    // Root in `system.slice/agent.service/main` with Delegate=yes: systemd marks the
    // unit with a delegate xattr; controllers already enabled there.
    let t = Tree::new("v2xattr");
    let unit = "/sys/fs/cgroup/system.slice/agent.service";
    t.v2_cgroup(unit, "cpu memory pids\n", "cpu memory pids\n", "", true);
    t.v2_cgroup(
        &format!("{unit}/main"),
        "cpu memory pids\n",
        "",
        "77\n",
        true,
    );
    let probe = t.probe("0::/system.slice/agent.service/main\n", V2_MOUNTINFO, 0);
    // Without the mark, root does not take over its parent.
    assert!(matches!(detect::detect(&probe), Available::None { .. }));
    let dir =
        std::ffi::CString::new(t.0.join(unit.trim_start_matches('/')).to_str().unwrap()).unwrap();
    // SAFETY: valid NUL-terminated path and name, a 1-byte value buffer.
    let r = unsafe {
        libc::setxattr(
            dir.as_ptr(),
            c"user.delegate".as_ptr(),
            b"1".as_ptr().cast(),
            1,
            0,
        )
    };
    if r != 0 {
        eprintln!(
            "skipping the marked half: setxattr: {}",
            std::io::Error::last_os_error()
        );
        return;
    }
    let a = detect::detect(&probe);
    let Available::V2(b) = &a else {
        panic!("expected v2, got {a:?}")
    };
    assert_eq!(
        b.controllers,
        [Controller::Memory, Controller::Pids, Controller::Cpu]
    );
    assert!(b.enable.is_empty());
    assert_eq!(b.unusable.len(), 1);
    assert_eq!(b.unusable[0].controller, Controller::Io);
    assert!(
        b.unusable[0].fix.contains("Delegate=io"),
        "{:?}",
        b.unusable[0]
    );
    let err = SandboxCgroup::create(
        &a,
        "x",
        &CgroupLimits {
            io_weight: Some(100),
            ..Default::default()
        },
    )
    .unwrap_err();
    assert!(
        err.to_string()
            .starts_with("cgroup io: cannot enforce the io limit: not in "),
        "{err}"
    );
}

#[test]
fn detects_v2_real_root_cgroup() {
    // A VM whose init is not systemd: the caller is in the real root cgroup (no
    // cgroup.type), where enabling controllers is allowed despite its processes.
    let t = Tree::new("v2root");
    t.v2_cgroup(
        "/sys/fs/cgroup",
        "cpuset cpu io memory pids\n",
        "",
        "1\n2\n",
        false,
    );
    let a = detect::detect(&t.probe("0::/\n", V2_MOUNTINFO, 0));
    let Available::V2(b) = &a else {
        panic!("expected v2, got {a:?}")
    };
    assert_eq!(b.base, t.0.join("sys/fs/cgroup"));
    assert!(!b.beside_caller);
    assert_eq!(b.enable, Controller::ALL);
    // A container's cgroup-namespace root is not the real root (it has cgroup.type):
    // its processes forbid enabling, so it is unavailable.
    t.file("/sys/fs/cgroup/cgroup.type", "domain\n");
    assert!(matches!(
        detect::detect(&t.probe("0::/\n", V2_MOUNTINFO, 0)),
        Available::None { .. }
    ));
}

#[test]
fn detects_read_only_v2_mount() {
    let t = Tree::new("v2ro");
    t.v2_cgroup(
        "/sys/fs/cgroup",
        "cpu memory pids\n",
        "cpu memory pids\n",
        "",
        false,
    );
    let ro = "1005 1004 0:28 / /sys/fs/cgroup ro,nosuid,nodev,noexec,relatime - cgroup2 cgroup rw,nsdelegate\n";
    let a = detect::detect(&t.probe("0::/\n", ro, 0));
    let Available::None { why, remedy } = &a else {
        panic!("expected none, got {a:?}")
    };
    assert!(why.contains("mounted read-only"), "{why}");
    assert!(remedy.contains("remount,rw /sys/fs/cgroup"), "{remedy}");
}

#[test]
fn detects_no_cgroup_filesystem() {
    let t = Tree::new("none");
    let a = detect::detect(&t.probe("0::/\n", "22 27 0:21 / /proc rw - proc proc rw\n", 0));
    assert!(matches!(&a, Available::None { remedy, .. } if remedy.contains("mount -t cgroup2")));
}

#[test]
fn rejects_bad_names_and_limits() {
    let a = Available::None {
        why: "w".into(),
        remedy: "r".into(),
    };
    for bad in ["", "../x", "a/b", ".hidden", "x y"] {
        let e = SandboxCgroup::create(&a, bad, &CgroupLimits::default()).unwrap_err();
        assert!(matches!(e, CgroupError::Invalid(_)), "{bad:?}: {e}");
    }
    let e = SandboxCgroup::create(
        &a,
        "ok",
        &CgroupLimits {
            cpu_millis: Some(5),
            ..Default::default()
        },
    )
    .unwrap_err();
    assert!(e.to_string().contains("below the kernel minimum"), "{e}");
    let e = SandboxCgroup::create(
        &a,
        "ok",
        &CgroupLimits {
            memory: Some(1 << 20),
            ..Default::default()
        },
    )
    .unwrap_err();
    assert_eq!(
        e.to_string(),
        "cgroup memory: cannot enforce the memory limit: w; fix: r"
    );
    assert_eq!(CgroupLimits::cpu_quota_us(500), 50_000);
    assert_eq!(CgroupLimits::cpu_quota_us(1500), 150_000);
}

// ---------------------------------------------------------------------------
// Real cgroups on this host (root)
// ---------------------------------------------------------------------------

/// The caller's own cgroup directory in the hierarchy carrying `controller` (`""` for
/// v2), worked out independently of `detect` (mount root `/` assumed, as on the hosts
/// these tests run on).
fn own_dir(controller: &str) -> Option<PathBuf> {
    let cgroup = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    let path = cgroup.lines().find_map(|l| {
        let mut it = l.splitn(3, ':');
        let _id = it.next()?;
        let ctrls = it.next()?;
        let path = it.next()?;
        let hit = if controller.is_empty() {
            ctrls.is_empty()
        } else {
            ctrls.split(',').any(|c| c == controller)
        };
        hit.then(|| path.to_string())
    })?;
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    let mount = mounts.lines().find_map(|l| {
        let (left, right) = l.split_once(" - ")?;
        let left: Vec<&str> = left.split(' ').collect();
        let right: Vec<&str> = right.split(' ').collect();
        let ok = if controller.is_empty() {
            right[0] == "cgroup2"
        } else {
            right[0] == "cgroup" && right[2].split(',').any(|o| o == controller)
        };
        (ok && left[3] == "/").then(|| left[4].to_string())
    })?;
    Some(Path::new(&mount).join(path.trim_start_matches('/')))
}

/// Available on this host for the real tests, or None (with a note) when they cannot
/// run here: not root, or no cgroup usable.
fn host() -> Option<Available> {
    if !is_root() {
        eprintln!("skipped: real cgroup tests need root");
        return None;
    }
    match Available::detect() {
        Available::None { why, .. } => {
            eprintln!("skipped: no usable cgroup here: {why}");
            None
        }
        a => Some(a),
    }
}

fn name(tag: &str) -> String {
    format!("stockade-test-{}-{tag}", std::process::id())
}

/// Every directory of `cg` is a direct child of the caller's own cgroup in its
/// hierarchy, and exists.
fn assert_under_own_cgroups(cg: &SandboxCgroup) {
    for p in cg.paths() {
        assert!(p.is_dir(), "{} exists", p.display());
        let parent = p.parent().unwrap();
        let owns = ["memory", "pids", "cpu", "cpuacct", ""]
            .iter()
            .filter_map(|c| own_dir(c))
            .any(|d| d == parent);
        assert!(
            owns,
            "{} is not directly under one of our own cgroups",
            p.display()
        );
    }
}

fn assert_removed(paths: &[PathBuf]) {
    for p in paths {
        assert!(!p.exists(), "{} left behind", p.display());
    }
}

/// Spawn `sh -c SCRIPT` that first waits on stdin, attach it, then let it go: the
/// script runs entirely inside the cgroup.
fn spawn_in(cg: &SandboxCgroup, script: &str) -> Child {
    let mut child = Command::new("/bin/sh")
        .arg("-c")
        .arg(format!("read _go; {script}"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    cg.attach(child.id()).unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(b"go\n").unwrap();
    drop(stdin);
    child
}

fn limits_64m_16_half() -> CgroupLimits {
    CgroupLimits {
        memory: Some(64 << 20),
        pids: Some(16),
        cpu_millis: Some(500),
        io_weight: None,
    }
}

fn this_host_is_hybrid() -> bool {
    let unified_is_v2 = std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .any(|l| l.contains(" /sys/fs/cgroup/unified ") && l.contains(" - cgroup2 "));
    unified_is_v2 && own_dir("memory").is_some()
}

#[test]
fn host_detection_on_this_hybrid_machine() {
    if !this_host_is_hybrid() {
        eprintln!("skipped: not a hybrid host");
        return;
    }
    let a = Available::detect();
    eprintln!("effective level: {}", a.level());
    if !is_root() {
        // The unprivileged caller on a v1/hybrid host: honestly unavailable.
        let Available::None { why, remedy } = &a else {
            panic!("unprivileged on v1 must be unavailable: {a:?}")
        };
        assert!(why.contains("no safe delegation"), "{why}");
        assert!(remedy.contains("run stockade as root"), "{remedy}");
        return;
    }
    let Available::V1(d) = &a else {
        panic!("a hybrid host must be detected as v1: {a:?}")
    };
    assert_eq!(d.memory, own_dir("memory"));
    assert_eq!(d.pids, own_dir("pids"));
    assert_eq!(d.cpu, own_dir("cpu"));
    assert_eq!(d.cpuacct, own_dir("cpuacct"));
    assert_eq!(
        d.memsw,
        own_dir("memory")
            .unwrap()
            .join("memory.memsw.limit_in_bytes")
            .exists()
    );
    // The same real tree judged for another uid (the unprivileged case on this host).
    let mut probe = Probe::host().unwrap();
    probe.creds = Creds::As {
        uid: 4242,
        gid: 4242,
    };
    let a = detect::detect(&probe);
    assert!(
        matches!(&a, Available::None { why, .. } if why.contains("not writable by uid 4242")),
        "{a:?}"
    );
    let e = SandboxCgroup::create(
        &a,
        &name("unpriv"),
        &CgroupLimits {
            memory: Some(64 << 20),
            ..Default::default()
        },
    )
    .unwrap_err();
    eprintln!("unprivileged: {e}");
    assert!(matches!(e, CgroupError::Unavailable(_)));
}

#[test]
fn fork_bomb_stops_at_pids_and_kill_empties_the_tree() {
    let Some(a) = host() else { return };
    let cg = SandboxCgroup::create(&a, &name("forkbomb"), &limits_64m_16_half()).unwrap();
    assert_under_own_cgroups(&cg);
    let paths: Vec<PathBuf> = cg.paths().iter().map(|p| p.to_path_buf()).collect();
    // 100 forks of a child that sleeps; perl reports each failure's errno text.
    let child = spawn_in(
        &cg,
        r#"exec perl -e '
            my ($ok, $fail, $msg) = (0, 0, "");
            for (1..100) {
                my $p = fork;
                if (!defined $p) { $fail++; $msg = "$!"; next }
                if ($p == 0) { close STDOUT; close STDERR; sleep 60; exit 0 }
                $ok++;
            }
            print "forked=$ok failed=$fail msg=$msg\n";'"#,
    );
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    eprintln!("fork bomb: {}", stdout.trim());
    assert!(out.status.success(), "{out:?}");
    let forked: u32 = stdout
        .split("forked=")
        .nth(1)
        .unwrap()
        .split(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let failed: u32 = stdout
        .split("failed=")
        .nth(1)
        .unwrap()
        .split(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(forked, 15, "perl + 15 children = pids.max 16");
    assert_eq!(failed, 85);
    assert!(
        stdout.contains("msg=Resource temporarily unavailable"),
        "{stdout}"
    );
    let stats = cg.stats().unwrap();
    assert_eq!(stats.pids_max_hits, Some(85), "{stats:?}");
    assert_eq!(
        cg.pids().unwrap().len(),
        15,
        "the sleeping children are still there"
    );
    // The caller is not limited.
    assert!(Command::new("/bin/true").status().unwrap().success());
    let t = Instant::now();
    cg.kill().unwrap();
    eprintln!("kill of 15 processes took {:?}", t.elapsed());
    assert!(cg.pids().unwrap().is_empty());
    cg.remove().unwrap();
    assert_removed(&paths);
}

#[test]
fn memory_hog_is_oom_killed_and_reported() {
    let Some(a) = host() else { return };
    // Positive control: 8 MiB fits in 64 MiB.
    let small = SandboxCgroup::create(&a, &name("mem-small"), &limits_64m_16_half()).unwrap();
    assert_under_own_cgroups(&small);
    let out = spawn_in(&small, "head -c 8M /dev/zero | tail > /dev/null")
        .wait_with_output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let s = small.stats().unwrap();
    eprintln!("8 MiB: {s:?}");
    assert!(!s.oom_killed);
    assert_eq!(s.oom_kills, Some(0));
    let peak = s.peak_memory.unwrap();
    assert!(peak > 4 << 20 && peak < 64 << 20, "peak {peak}");
    let small_paths: Vec<PathBuf> = small.paths().iter().map(|p| p.to_path_buf()).collect();
    small.remove().unwrap();
    assert_removed(&small_paths);

    // 200 MiB does not: tail buffers its whole input (no newline) and is OOM-killed.
    let big = SandboxCgroup::create(&a, &name("mem-big"), &limits_64m_16_half()).unwrap();
    assert_under_own_cgroups(&big);
    let out = spawn_in(&big, "head -c 200M /dev/zero | tail > /dev/null")
        .wait_with_output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(137),
        "sh reports tail's SIGKILL: {out:?}"
    );
    let s = big.stats().unwrap();
    eprintln!("200 MiB: {s:?}, swap capped: {}", big.swap_capped());
    assert!(s.oom_killed, "{s:?}");
    assert!(s.oom_kills.unwrap() >= 1);
    let peak = s.peak_memory.unwrap();
    assert!(
        peak > 48 << 20 && peak <= 64 << 20,
        "peak {peak} is at the limit"
    );
    let big_paths: Vec<PathBuf> = big.paths().iter().map(|p| p.to_path_buf()).collect();
    drop(big); // drop removes too
    assert_removed(&big_paths);
}

/// Burn CPU for `wall` in a cgroup; returns its stats.
fn burn(a: &Available, tag: &str, limits: &CgroupLimits, wall: Duration) -> CgroupStats {
    let cg = SandboxCgroup::create(a, &name(tag), limits).unwrap();
    assert_under_own_cgroups(&cg);
    let script = format!(
        "exec perl -e 'my $end = time + {}; while (time < $end) {{}}'",
        wall.as_secs_f64()
    );
    // perl's time is whole seconds; use Time::HiRes for sub-second ends.
    let script = script.replace("my $end", "use Time::HiRes qw(time); my $end");
    let out = spawn_in(&cg, &script).wait_with_output().unwrap();
    assert!(out.status.success(), "{out:?}");
    cg.stats().unwrap()
}

#[test]
fn cpu_quota_throttles_a_busy_loop() {
    let Some(a) = host() else { return };
    let wall = Duration::from_millis(1500);
    let limited = burn(&a, "cpu-half", &limits_64m_16_half(), wall);
    let free = burn(&a, "cpu-free", &CgroupLimits::default(), wall);
    let (l, f) = (limited.cpu_time.unwrap(), free.cpu_time.unwrap());
    eprintln!(
        "busy loop for {wall:?}: at 0.5 cores {l:?} (throttled {:?} periods), unlimited {f:?}",
        limited.cpu_throttled
    );
    assert!(l <= wall.mul_f64(0.5 * 1.2), "quota exceeded: {l:?}");
    if l >= wall.mul_f64(0.5 * 0.8) {
        assert!(limited.cpu_throttled.unwrap() > 0, "{limited:?}");
    } else {
        eprintln!("note: the limited loop got only {l:?} (a loaded machine): not at its quota");
    }
    if f < wall.mul_f64(0.8) {
        eprintln!("note: the unlimited control got only {f:?} (a loaded machine)");
    } else {
        assert!(f > l.mul_f64(1.4), "unlimited {f:?} vs limited {l:?}");
    }
}

#[test]
fn drop_kills_survivors_and_leaves_nothing() {
    let Some(a) = host() else { return };
    let cg = SandboxCgroup::create(&a, &name("drop"), &limits_64m_16_half()).unwrap();
    let paths: Vec<PathBuf> = cg.paths().iter().map(|p| p.to_path_buf()).collect();
    let mut child = spawn_in(&cg, "sleep 60 & sleep 60 & wait");
    // Wait until the three processes are in.
    let t = Instant::now();
    while cg.pids().unwrap().len() < 3 && t.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(cg.pids().unwrap().len(), 3);
    drop(cg);
    assert_removed(&paths);
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(child.wait().unwrap().signal(), Some(libc::SIGKILL));
}

#[test]
fn remove_takes_nested_cgroups_and_their_processes() {
    let Some(a) = host() else { return };
    let cg = SandboxCgroup::create(&a, &name("nested"), &CgroupLimits::default()).unwrap();
    let paths: Vec<PathBuf> = cg.paths().iter().map(|p| p.to_path_buf()).collect();
    // A sub-cgroup with a process in it, as a sandbox with cgroup access could make.
    let inner = paths[0].join("inner");
    std::fs::create_dir(&inner).unwrap();
    let mut sleeper = Command::new("sleep").arg("60").spawn().unwrap();
    cg.attach(sleeper.id()).unwrap();
    std::fs::write(inner.join("cgroup.procs"), sleeper.id().to_string()).unwrap();
    assert!(
        cg.pids().unwrap().is_empty(),
        "the process sits in the sub-cgroup"
    );
    cg.remove().unwrap();
    assert_removed(&paths);
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(sleeper.wait().unwrap().signal(), Some(libc::SIGKILL));
}

#[test]
fn create_fails_cleanly_and_leaves_nothing() {
    let Some(a) = host() else { return };
    let n = name("dup");
    let first = SandboxCgroup::create(&a, &n, &CgroupLimits::default()).unwrap();
    // The same name again: EEXIST, named, and the first one is untouched.
    let e = SandboxCgroup::create(&a, &n, &CgroupLimits::default()).unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.contains("cannot create") && msg.contains("already exists"),
        "{msg}"
    );
    assert_under_own_cgroups(&first);
    let paths: Vec<PathBuf> = first.paths().iter().map(|p| p.to_path_buf()).collect();
    first.remove().unwrap();
    assert_removed(&paths);
    // A limit the kernel refuses after the directories exist: all of them removed.
    if let Available::V1(d) = &a {
        let huge = CgroupLimits {
            pids: Some(u64::MAX),
            ..Default::default()
        };
        let e = SandboxCgroup::create(&a, &name("bad"), &huge).unwrap_err();
        assert!(
            e.to_string().starts_with("cgroup pids: cannot write"),
            "{e}"
        );
        for parent in [&d.memory, &d.pids, &d.cpu, &d.cpuacct]
            .into_iter()
            .flatten()
        {
            assert!(
                !parent.join(name("bad")).exists(),
                "leftover under {}",
                parent.display()
            );
        }
    }
}

// --- v2 mechanics on the controller-less cgroup2 of a hybrid host ------------------

/// `clone3` arguments (struct clone_args, CLONE_ARGS_SIZE_VER2).
#[repr(C)]
#[derive(Default)]
struct CloneArgs {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
    set_tid: u64,
    set_tid_size: u64,
    cgroup: u64,
}

const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;

#[test]
fn v2_clone_into_cgroup_attach_kill_remove() {
    if !is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    // The caller's own v2 cgroup (on this hybrid host: the root of the unified mount,
    // which has no controllers; cgroup.procs, cgroup.kill and cpu.stat still work).
    let Some(base) = own_dir("") else {
        eprintln!("skipped: no cgroup2 mount");
        return;
    };
    let a = Available::V2(V2Base {
        base: base.clone(),
        controllers: vec![],
        enable: vec![],
        beside_caller: false,
        unusable: vec![],
    });
    let n = name("v2");
    let cg = SandboxCgroup::create(&a, &n, &CgroupLimits::default()).unwrap();
    assert_under_own_cgroups(&cg);
    assert_eq!(cg.paths(), [base.join(&n).as_path()]);
    let fd = cg.clone_into_fd().expect("v2 has a directory fd");

    use std::os::fd::AsRawFd;
    let args = CloneArgs {
        flags: CLONE_INTO_CGROUP,
        exit_signal: libc::SIGCHLD as u64,
        cgroup: fd.as_raw_fd() as u64,
        ..Default::default()
    };
    // SAFETY: clone3 with a valid, fully initialised clone_args of the size passed; no
    // CLONE_VM, so the child has its own copy of memory and only calls the
    // async-signal-safe pause() and _exit().
    let pid = unsafe {
        libc::syscall(
            libc::SYS_clone3,
            &args as *const CloneArgs,
            std::mem::size_of::<CloneArgs>(),
        )
    };
    if pid == 0 {
        // SAFETY: async-signal-safe calls only, in the fork child.
        unsafe {
            libc::pause();
            libc::_exit(0);
        }
    }
    assert!(pid > 0, "clone3: {}", std::io::Error::last_os_error());
    let pid = pid as u32;
    // Started inside: no attach needed, no window outside the cgroup.
    let line = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    assert!(line.lines().any(|l| l == format!("0::/{n}")), "{line}");
    assert_eq!(cg.pids().unwrap(), [pid]);

    // attach(): a second process moved in by pid.
    let mut sleeper = Command::new("sleep").arg("60").spawn().unwrap();
    cg.attach(sleeper.id()).unwrap();
    let mut in_cg = cg.pids().unwrap();
    in_cg.sort();
    let mut want = vec![pid, sleeper.id()];
    want.sort();
    assert_eq!(in_cg, want);

    // cgroup.kill (5.14+; the fallback loop otherwise). The root cgroup has no
    // cgroup.kill, its children do.
    eprintln!(
        "v2 cgroup.kill present: {}",
        base.join(&n).join("cgroup.kill").exists()
    );
    cg.kill().unwrap();
    assert!(cg.pids().unwrap().is_empty());
    let mut status = 0;
    // SAFETY: waiting for our own child; `status` is a valid out pointer.
    let r = unsafe { libc::waitpid(pid as i32, &mut status, 0) };
    assert_eq!(r, pid as i32);
    assert!(libc::WIFSIGNALED(status) && libc::WTERMSIG(status) == libc::SIGKILL);
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(sleeper.wait().unwrap().signal(), Some(libc::SIGKILL));
    let s = cg.stats().unwrap();
    assert!(
        s.cpu_time.is_some(),
        "cpu.stat usage_usec is a core file: {s:?}"
    );
    assert_eq!(s.oom_kills, None, "no memory controller here");
    let dir = base.join(&n);
    cg.remove().unwrap();
    assert!(!dir.exists());
}

#[test]
fn no_test_cgroups_left_behind() {
    // Runs alongside the others, so it only checks names of tests that finished; the
    // others check their own paths. This one creates and removes 50 in a row.
    let Some(a) = host() else { return };
    for i in 0..50 {
        let cg =
            SandboxCgroup::create(&a, &name(&format!("churn{i}")), &limits_64m_16_half()).unwrap();
        if i % 2 == 0 {
            cg.remove().unwrap();
        } else {
            drop(cg);
        }
    }
    for h in ["memory", "pids", "cpu", "cpuacct", ""] {
        let Some(d) = own_dir(h) else { continue };
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let f = e.file_name().to_string_lossy().into_owned();
            assert!(
                !f.starts_with(&name("churn")),
                "leftover {}",
                e.path().display()
            );
        }
    }
}
