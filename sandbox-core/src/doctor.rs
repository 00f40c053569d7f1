//! `stockade doctor`: for each sandbox layer, whether this host can provide it, why, and
//! the exact fix.
//!
//! Everything here is a static probe: it reads `/proc` and `/sys` and makes harmless
//! query syscalls (`uname`, `prctl(PR_GET_*)`, Landlock's version query, `access`). It
//! never forks or clones the caller (Python and Node hosts must not be forked, see
//! DESIGN.md), never creates namespaces or cgroups and never changes host state. The
//! one dynamic test, a real sandboxed command, is supplied by the caller as
//! `end_to_end` and runs last.
//!
//! Each check is a small function over facts that `Facts::probe` gathered, so the
//! decisions are unit-tested with literal inputs; the text parsers live in `parse`.

use std::fmt;
use std::fs;
use std::path::Path;

use nix::errno::Errno;
use serde::Serialize;

mod cgroups;
pub(crate) mod diagnose;
pub(crate) mod parse;
mod remedies;
#[cfg(test)]
mod samples;

use parse::{KernelVersion, Mount};
use remedies::{ProfileTarget, APPARMOR_PROFILE_PATH};

/// How available a layer is on this host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Fully available.
    Ok,
    /// Available with reduced strength or only for some uses; see the remedy.
    Limited,
    /// Not available: sandboxes needing it fail to start (stockade fails closed).
    Missing,
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(match self {
            Status::Ok => "ok",
            Status::Limited => "limited",
            Status::Missing => "missing",
        })
    }
}

/// The verdict for one layer.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    /// The layer's name, e.g. `user-namespaces`, `landlock`, `cgroups`, `end-to-end`.
    pub layer: String,
    /// Whether the layer is available.
    pub status: Status,
    /// What was found, with the values read.
    pub detail: String,
    /// The exact fix; always set when the status is not `Ok`.
    pub remedy: Option<String>,
}

impl Check {
    fn ok(layer: &str, detail: String) -> Self {
        Check {
            layer: layer.into(),
            status: Status::Ok,
            detail,
            remedy: None,
        }
    }

    fn limited(layer: &str, detail: String, remedy: String) -> Self {
        Check {
            layer: layer.into(),
            status: Status::Limited,
            detail,
            remedy: Some(remedy),
        }
    }

    fn missing(layer: &str, detail: String, remedy: String) -> Self {
        Check {
            layer: layer.into(),
            status: Status::Missing,
            detail,
            remedy: Some(remedy),
        }
    }
}

/// The whole doctor report.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Kernel release (`uname -r`).
    pub kernel: String,
    /// `"root"` or `"uid N"` (effective uid).
    pub caller: String,
    /// One check per layer, outermost first; `end-to-end` is last.
    pub checks: Vec<Check>,
}

impl Report {
    /// True when no layer is missing (limited layers are allowed).
    pub fn ok(&self) -> bool {
        !self.checks.iter().any(|c| c.status == Status::Missing)
    }
}

impl fmt::Display for Report {
    /// One line per check (`layer  status  detail`), the remedy on an indented `fix:`
    /// line (continuation lines aligned under it), then a one-line summary.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "stockade doctor: kernel {}, caller {}",
            self.kernel, self.caller
        )?;
        let width = self.checks.iter().map(|c| c.layer.len()).max().unwrap_or(0);
        let indent = " ".repeat(width + 2);
        for c in &self.checks {
            writeln!(f, "{:<width$}  {:<7}  {}", c.layer, c.status, c.detail)?;
            if let Some(remedy) = &c.remedy {
                for (i, line) in remedy.lines().enumerate() {
                    let label = if i == 0 { "fix: " } else { "     " };
                    writeln!(f, "{}", format!("{indent}{label}{line}").trim_end())?;
                }
            }
        }
        let names = |s: Status| -> Vec<&str> {
            self.checks
                .iter()
                .filter(|c| c.status == s)
                .map(|c| c.layer.as_str())
                .collect()
        };
        let (missing, limited) = (names(Status::Missing), names(Status::Limited));
        match (missing.is_empty(), limited.is_empty()) {
            (true, true) => writeln!(f, "result: ok, every layer is available"),
            (true, false) => writeln!(f, "result: ok, limited: {}", limited.join(", ")),
            (false, _) => writeln!(f, "result: NOT OK, missing: {}", missing.join(", ")),
        }
    }
}

/// Probe this host and report each layer. Static probes only; `end_to_end` is called
/// last and its `Err(message)` becomes a Missing "end-to-end" check.
pub fn report(end_to_end: impl FnOnce() -> Result<(), String>) -> Report {
    let facts = Facts::probe();
    let mut checks = facts.checks();
    checks.push(check_limits(crate::cgroup::available()));
    checks.push(check_syscall_events(
        crate::sys::seccomp_user_notif_available(),
    ));
    checks.push(check_landlock_events(crate::audit::availability()));
    let missing: Vec<&str> = checks
        .iter()
        .filter(|c| c.status == Status::Missing)
        .map(|c| c.layer.as_str())
        .collect();
    let end_to_end = check_end_to_end(end_to_end(), &missing);
    checks.push(end_to_end);
    Report {
        kernel: facts.release.clone(),
        caller: if facts.euid == 0 {
            "root".into()
        } else {
            format!("uid {}", facts.euid)
        },
        checks,
    }
}

/// Namespace types of the design, as named in `/proc/self/ns`, with the kernel config
/// option (and first release) that provides each.
const NAMESPACES: [(&str, &str); 8] = [
    ("user", "CONFIG_USER_NS"),
    ("pid", "CONFIG_PID_NS"),
    ("net", "CONFIG_NET_NS"),
    ("mnt", "always built in"),
    ("uts", "CONFIG_UTS_NS"),
    ("ipc", "CONFIG_IPC_NS"),
    ("cgroup", "CONFIG_CGROUPS, Linux 4.6"),
    ("time", "CONFIG_TIME_NS, Linux 5.6"),
];

/// Below this per-user limit of namespaces of one type, only that many sandboxes can
/// exist at once (each uses one of every type); worth a warning.
const FEW_NAMESPACES: u64 = 64;

/// Everything the checks need, read once from the host.
struct Facts {
    release: String,
    version: Option<KernelVersion>,
    euid: u32,
    /// CAP_SYS_ADMIN in the initial user namespace: the userns sysctls do not apply.
    privileged: bool,
    initial_userns: bool,
    userns: UsernsSysctls,
    ns_present: Vec<(&'static str, bool)>,
    ns_limits: Vec<(String, Option<u64>)>,
    mounts: Vec<Mount>,
    container: ContainerFacts,
    filesystems: Option<String>,
    landlock_abi: Result<i64, Errno>,
    /// PID 1 is a stockade init: this process runs inside a stockade sandbox.
    in_stockade: bool,
    lsm: Option<String>,
    seccomp_actions: Option<String>,
    seccomp_mode: Result<i32, Errno>,
    no_new_privs: Result<bool, Errno>,
    cgroup_layout: cgroups::Layout,
}

/// The sysctls that switch unprivileged user namespaces off.
#[derive(Debug, Clone, Default)]
pub(crate) struct UsernsSysctls {
    /// `user.max_user_namespaces`: 0 disables user namespaces for everyone.
    max_user_namespaces: Option<u64>,
    /// Debian/older Ubuntu `kernel.unprivileged_userns_clone`: 0 disables them for non-root.
    unprivileged_userns_clone: Option<u64>,
    /// Ubuntu 23.10+ `kernel.apparmor_restrict_unprivileged_userns`: 1 restricts them.
    apparmor_restrict: Option<u64>,
    /// Whether a stockade AppArmor profile file is installed.
    apparmor_profile_installed: bool,
}

/// Signs of running inside a container, and confinement that breaks nested sandboxes.
#[derive(Debug, Clone, Default)]
struct ContainerFacts {
    hints: Vec<String>,
    /// The caller's AppArmor label, e.g. `docker-default (enforce)`.
    apparmor_label: Option<String>,
}

impl UsernsSysctls {
    fn read() -> Self {
        UsernsSysctls {
            max_user_namespaces: read_int("/proc/sys/user/max_user_namespaces"),
            unprivileged_userns_clone: read_int("/proc/sys/kernel/unprivileged_userns_clone"),
            apparmor_restrict: read_int("/proc/sys/kernel/apparmor_restrict_unprivileged_userns"),
            apparmor_profile_installed: Path::new(APPARMOR_PROFILE_PATH).exists(),
        }
    }
}

impl Facts {
    fn probe() -> Self {
        let release = kernel_release();
        let status = read("/proc/self/status").unwrap_or_default();
        let initial_userns =
            read("/proc/self/uid_map").map_or(true, |m| parse::is_initial_uid_map(&m));
        let cap_sys_admin =
            parse::status_field(&status, "CapEff").is_some_and(|m| parse::cap_mask_has(m, 21));
        let mounts = parse::parse_mountinfo(&read("/proc/self/mountinfo").unwrap_or_default());
        let proc_cgroup = parse::parse_proc_cgroup(&read("/proc/self/cgroup").unwrap_or_default());
        let cgroup_layout = cgroups::layout(&proc_cgroup, &mounts, &|dir| {
            read(dir.join("cgroup.controllers"))
        });
        Facts {
            version: KernelVersion::parse(&release),
            release,
            euid: nix::unistd::geteuid().as_raw(),
            privileged: cap_sys_admin && initial_userns,
            initial_userns,
            userns: UsernsSysctls::read(),
            ns_present: NAMESPACES
                .iter()
                .map(|(ns, _)| {
                    (
                        *ns,
                        fs::symlink_metadata(format!("/proc/self/ns/{ns}")).is_ok(),
                    )
                })
                .collect(),
            ns_limits: NAMESPACES
                .iter()
                .map(|(ns, _)| {
                    let name = format!("max_{ns}_namespaces");
                    let value = read_int(format!("/proc/sys/user/{name}"));
                    (name, value)
                })
                .collect(),
            container: ContainerFacts {
                hints: container_hints(
                    Path::new("/.dockerenv").exists(),
                    Path::new("/run/.containerenv").exists(),
                    std::env::var("container").ok().as_deref(),
                    &read("/proc/1/cgroup").unwrap_or_default(),
                    &mounts,
                ),
                apparmor_label: read("/proc/self/attr/apparmor/current")
                    .or_else(|| read("/proc/self/attr/current"))
                    .map(|l| l.trim_end_matches(['\n', '\0']).to_string()),
            },
            mounts,
            filesystems: read("/proc/filesystems"),
            landlock_abi: landlock_abi(),
            in_stockade: read("/proc/1/comm").is_some_and(|c| c.trim() == "stockade-init"),
            lsm: read("/sys/kernel/security/lsm"),
            seccomp_actions: read("/proc/sys/kernel/seccomp/actions_avail"),
            seccomp_mode: seccomp_mode(),
            no_new_privs: nix::sys::prctl::get_no_new_privs(),
            cgroup_layout,
        }
    }

    /// All static checks, outermost layer first.
    fn checks(&self) -> Vec<Check> {
        let root = self.euid == 0;
        vec![
            check_kernel(&self.release, self.version),
            if self.in_stockade {
                check_in_stockade()
            } else {
                check_userns(
                    &self.userns,
                    self.privileged,
                    self.initial_userns,
                    &ProfileTarget::inspect(Path::new(&helper_path())),
                )
            },
            check_namespaces(&self.ns_present),
            check_namespace_limits(&self.ns_limits),
            check_container(
                &self.container,
                &proc_view(&self.mounts),
                proc_read_only(&self.mounts),
                self.seccomp_mode == Ok(2),
            ),
            check_overlayfs(self.filesystems.as_deref(), self.version, self.privileged),
            check_idmapped_mounts(self.version, root),
            check_landlock(
                self.landlock_abi,
                self.lsm.as_deref(),
                self.seccomp_mode == Ok(2) && self.version.is_some_and(|v| v.at_least(5, 13)),
            ),
            check_seccomp(self.seccomp_actions.as_deref(), self.seccomp_mode),
            check_no_new_privs(self.no_new_privs),
            cgroups::check(&self.cgroup_layout, &cgroup_writable, root),
        ]
    }
}

// ---------------------------------------------------------------------------------
// Host probes (the only code here that touches the system).

fn read(path: impl AsRef<Path>) -> Option<String> {
    fs::read_to_string(path).ok()
}

fn read_int(path: impl AsRef<Path>) -> Option<u64> {
    read(path).as_deref().and_then(parse::parse_int)
}

/// `uname -r`, falling back to `/proc/sys/kernel/osrelease`.
fn kernel_release() -> String {
    // SAFETY: `utsname` is plain arrays of `c_char`, for which all-zero bytes are valid.
    let mut uts: libc::utsname = unsafe { std::mem::zeroed() };
    // SAFETY: `uts` is a valid, writable `utsname` that outlives the call.
    if unsafe { libc::uname(&mut uts) } != 0 {
        return read("/proc/sys/kernel/osrelease")
            .map(|s| s.trim().to_string())
            .unwrap_or_default();
    }
    let bytes: Vec<u8> = uts
        .release
        .iter()
        .take_while(|&&c| c != 0)
        .map(|&c| c as u8)
        .collect();
    String::from_utf8_lossy(&bytes).into_owned()
}

/// Landlock's ABI version: `landlock_create_ruleset(NULL, 0, LANDLOCK_CREATE_RULESET_VERSION)`.
#[allow(clippy::useless_conversion)] // `c_long` is only 32 bits wide on 32-bit targets.
fn landlock_abi() -> Result<i64, Errno> {
    const LANDLOCK_CREATE_RULESET_VERSION: libc::c_uint = 1;
    // SAFETY: with a NULL attribute pointer, size 0 and the VERSION flag the kernel reads
    // no memory and creates nothing; it only returns the ABI version or an error.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_landlock_create_ruleset,
            std::ptr::null::<libc::c_void>(),
            0 as libc::size_t,
            LANDLOCK_CREATE_RULESET_VERSION,
        )
    };
    Errno::result(ret).map(i64::from)
}

/// `prctl(PR_GET_SECCOMP)`: 0 = no filter, 2 = filtered; EINVAL = no seccomp in the kernel.
fn seccomp_mode() -> Result<i32, Errno> {
    // SAFETY: PR_GET_SECCOMP takes no pointers and only returns the caller's seccomp mode.
    let ret = unsafe { libc::prctl(libc::PR_GET_SECCOMP, 0, 0, 0, 0) };
    Errno::result(ret)
}

/// Whether the caller could create a child cgroup (and, on v2, enable controllers for it).
fn cgroup_writable(place: &cgroups::Place) -> bool {
    use nix::unistd::{access, AccessFlags};
    match place {
        cgroups::Place::V1 { dir, .. } => access(dir, AccessFlags::W_OK).is_ok(),
        cgroups::Place::V2 { dir, .. } => {
            access(dir, AccessFlags::W_OK).is_ok()
                && access(&dir.join("cgroup.subtree_control"), AccessFlags::W_OK).is_ok()
        }
        cgroups::Place::Nowhere(_) => false,
    }
}

/// The helper path to name in the AppArmor profile: the one the launcher would run
/// (it only looks at paths, it starts nothing), else a placeholder to edit.
fn helper_path() -> String {
    crate::launch::helper::find_helper(None)
        .map(|p| p.display().to_string())
        .unwrap_or_else(|_| "/usr/local/bin/stockade-init".into())
}

// ---------------------------------------------------------------------------------
// The checks: pure functions of the facts.

/// Kernel features stockade uses, with the release that introduced each.
const KERNEL_FEATURES: [((u32, u32), &str); 5] = [
    ((5, 2), "new mount API (open_tree/move_mount)"),
    ((5, 6), "time namespace"),
    ((5, 9), "close_range"),
    ((5, 11), "overlayfs in a user namespace"),
    ((5, 12), "idmapped mounts (mount_setattr)"),
];

fn check_kernel(release: &str, version: Option<KernelVersion>) -> Check {
    const LAYER: &str = "kernel";
    const UPGRADE: &str =
        "upgrade to Linux 5.12 or newer (6.12+ gives every Landlock feature stockade uses)";
    let Some(v) = version else {
        return Check::limited(
            LAYER,
            format!("cannot parse kernel release {release:?}"),
            format!("check `uname -r`; {UPGRADE}"),
        );
    };
    let lacking: Vec<&str> = KERNEL_FEATURES
        .iter()
        .filter(|((ma, mi), _)| !v.at_least(*ma, *mi))
        .map(|(_, f)| *f)
        .collect();
    if lacking.is_empty() {
        Check::ok(
            LAYER,
            format!(
                "{release}: >= 5.12, has the new mount API, idmapped mounts and the time namespace"
            ),
        )
    } else if v.at_least(5, 6) {
        Check::limited(
            LAYER,
            format!("{release}: < 5.12, lacks {}", lacking.join(", ")),
            UPGRADE.into(),
        )
    } else {
        Check::missing(
            LAYER,
            format!("{release}: < 5.6, lacks {}", lacking.join(", ")),
            UPGRADE.into(),
        )
    }
}

fn check_userns(
    s: &UsernsSysctls,
    privileged: bool,
    initial_userns: bool,
    helper: &ProfileTarget,
) -> Check {
    const LAYER: &str = "user-namespaces";
    let nested = if initial_userns {
        ""
    } else {
        "; already inside a user namespace (nesting is limited to 32 levels)"
    };
    if s.max_user_namespaces == Some(0) {
        // This limit applies to everyone, root included.
        return Check::missing(
            LAYER,
            format!(
                "user.max_user_namespaces = 0: user namespaces are disabled for every user{nested}"
            ),
            remedies::sysctl("user.max_user_namespaces", "15000"),
        );
    }
    if privileged {
        return Check::ok(
            LAYER,
            format!(
                "caller has CAP_SYS_ADMIN in the initial user namespace (root): \
                 unprivileged_userns_clone and AppArmor's userns restriction do not apply (max_user_namespaces = {})",
                opt(s.max_user_namespaces)
            ),
        );
    }
    if s.unprivileged_userns_clone == Some(0) {
        return Check::missing(
            LAYER,
            format!("kernel.unprivileged_userns_clone = 0: user namespaces are disabled for non-root users{nested}"),
            remedies::sysctl("kernel.unprivileged_userns_clone", "1"),
        );
    }
    if s.apparmor_restrict == Some(1) {
        if s.apparmor_profile_installed {
            return Check::ok(
                LAYER,
                format!(
                    "kernel.apparmor_restrict_unprivileged_userns = 1, but {APPARMOR_PROFILE_PATH} is installed to grant \
                     `userns` to the helper (it must be loaded and name the helper's real path; the end-to-end check confirms){nested}"
                ),
            );
        }
        return Check::missing(
            LAYER,
            format!(
                "kernel.apparmor_restrict_unprivileged_userns = 1 (Ubuntu 23.10+): AppArmor denies capabilities \
                 inside new user namespaces of unconfined programs{nested}"
            ),
            remedies::apparmor_lines(helper),
        );
    }
    Check::ok(
        LAYER,
        format!(
            "unprivileged user namespaces allowed (max_user_namespaces = {}, unprivileged_userns_clone = {}, \
             apparmor_restrict_unprivileged_userns = {}){nested}",
            opt(s.max_user_namespaces),
            opt(s.unprivileged_userns_clone),
            opt(s.apparmor_restrict),
        ),
    )
}

/// Inside a stockade sandbox, nested sandboxes are refused by design.
fn check_in_stockade() -> Check {
    Check::missing(
        "user-namespaces",
        "this process runs inside a stockade sandbox (PID 1 is stockade-init), which forbids nested user namespaces \
         (seccomp filter and user.max_user_namespaces = 0)"
            .into(),
        "run stockade outside the sandbox: nested sandboxes are not supported".into(),
    )
}

fn check_namespaces(present: &[(&str, bool)]) -> Check {
    const LAYER: &str = "namespaces";
    let names = |want: bool| -> Vec<&str> {
        present
            .iter()
            .filter(|(_, p)| *p == want)
            .map(|(n, _)| *n)
            .collect()
    };
    let missing = names(false);
    if missing.is_empty() {
        return Check::ok(
            LAYER,
            format!("all present in /proc/self/ns: {}", names(true).join(" ")),
        );
    }
    let configs: Vec<String> = missing
        .iter()
        .map(|m| {
            let config = NAMESPACES
                .iter()
                .find(|(n, _)| n == m)
                .map_or("?", |(_, c)| c);
            format!("{m} ({config})")
        })
        .collect();
    Check::missing(
        LAYER,
        format!("missing from /proc/self/ns: {}", missing.join(" ")),
        format!(
            "use a kernel built with: {} (Linux 5.6+ has all of them)",
            configs.join(", ")
        ),
    )
}

fn check_namespace_limits(limits: &[(String, Option<u64>)]) -> Check {
    const LAYER: &str = "namespace-limits";
    let known: Vec<(&str, u64)> = limits
        .iter()
        .filter_map(|(n, v)| Some((n.as_str(), (*v)?)))
        .collect();
    let Some(&(low_name, low)) = known.iter().min_by_key(|(_, v)| *v) else {
        return Check::ok(
            LAYER,
            "no per-user namespace limits exposed (kernel < 4.9)".into(),
        );
    };
    let zero: Vec<&str> = known
        .iter()
        .filter(|(_, v)| *v == 0)
        .map(|(n, _)| *n)
        .collect();
    let few: Vec<&str> = known
        .iter()
        .filter(|(_, v)| *v < FEW_NAMESPACES)
        .map(|(n, _)| *n)
        .collect();
    let fix = |names: &[&str]| -> String {
        names
            .iter()
            .map(|n| remedies::sysctl(&format!("user.{n}"), "15000"))
            .collect::<Vec<_>>()
            .join("\n")
    };
    if !zero.is_empty() {
        return Check::missing(
            LAYER,
            format!("disabled (limit 0): {}", zero.join(", ")),
            fix(&zero),
        );
    }
    if !few.is_empty() {
        return Check::limited(
            LAYER,
            format!("lowest: user.{low_name} = {low}: at most {low} sandboxes at once per user (each uses one namespace of every type)"),
            fix(&few),
        );
    }
    Check::ok(
        LAYER,
        format!("every /proc/sys/user/max_*_namespaces >= {low} (lowest: {low_name}); each sandbox uses one of each"),
    )
}

/// Whether a fresh procfs may be mounted inside a user namespace. The kernel only
/// allows it when some existing proc mount is fully visible: no over-mount on anything
/// but a permanently empty directory (`mount_too_revealing` in fs/namespace.c).
#[derive(Debug, Clone, PartialEq, Eq)]
enum ProcView {
    Full,
    /// Over-mounted paths of the proc mount(s).
    Masked(Vec<String>),
    NoProc,
}

/// Whether the mount at `/proc` is read-only (writes to `/proc/sys` and the
/// id maps fail with EROFS; a fresh procfs must then be read-only too).
fn proc_read_only(mounts: &[Mount]) -> bool {
    mounts
        .iter()
        .rev()
        .find(|m| m.mount_point == "/proc")
        .is_some_and(|m| m.fstype == "proc" && m.read_only())
}

fn proc_view(mounts: &[Mount]) -> ProcView {
    // systemd's binfmt_misc automount sits on a permanently empty directory: harmless.
    const EMPTY_DIRS: [&str; 1] = ["/proc/sys/fs/binfmt_misc"];
    let mut masked = Vec::new();
    for proc in mounts
        .iter()
        .filter(|m| m.fstype == "proc" && m.root == "/")
    {
        let over: Vec<String> = mounts
            .iter()
            .filter(|c| {
                c.parent == proc.id
                    && c.id != proc.id
                    && !EMPTY_DIRS.contains(&c.mount_point.as_str())
            })
            .map(|c| c.mount_point.clone())
            .collect();
        if over.is_empty() {
            return ProcView::Full;
        }
        masked.extend(over);
    }
    if masked.is_empty() {
        ProcView::NoProc
    } else {
        ProcView::Masked(masked)
    }
}

/// Container evidence, in the order checked.
fn container_hints(
    dockerenv: bool,
    containerenv: bool,
    env: Option<&str>,
    pid1_cgroup: &str,
    mounts: &[Mount],
) -> Vec<String> {
    const RUNTIMES: [&str; 8] = [
        "docker",
        "kubepods",
        "containerd",
        "libpod",
        "lxc",
        "crio",
        "buildkit",
        "garden",
    ];
    let mut hints = Vec::new();
    if dockerenv {
        hints.push("/.dockerenv".to_string());
    }
    if containerenv {
        hints.push("/run/.containerenv".to_string());
    }
    if let Some(e) = env.filter(|e| !e.is_empty()) {
        hints.push(format!("container={e}"));
    }
    if let Some(rt) = RUNTIMES.iter().find(|rt| pid1_cgroup.contains(*rt)) {
        hints.push(format!("/proc/1/cgroup mentions {rt}"));
    }
    if mounts
        .iter()
        .any(|m| m.mount_point == "/" && m.fstype == "overlay")
    {
        hints.push("/ is an overlay".to_string());
    }
    hints
}

fn check_container(
    c: &ContainerFacts,
    proc: &ProcView,
    proc_read_only: bool,
    seccomp_filtered: bool,
) -> Check {
    const LAYER: &str = "container";
    let in_container = !c.hints.is_empty();
    let mut detail = if in_container {
        format!("in a container ({})", c.hints.join(", "))
    } else {
        "not in a container".to_string()
    };
    let mut status = Status::Ok;
    let mut fixes = Vec::new();
    let mut worsen = |s: Status, remedy: String| {
        if s == Status::Missing || status == Status::Ok {
            status = s;
        }
        fixes.push(remedy);
    };
    match proc {
        ProcView::Full => {
            detail.push_str("; /proc is fully visible, so a private /proc can be mounted")
        }
        ProcView::Masked(paths) => {
            detail.push_str(&format!(
                "; /proc is masked by over-mounts ({}): mounting a fresh /proc in the sandbox fails with EPERM",
                paths.join(" ")
            ));
            worsen(Status::Missing, remedies::container_proc());
        }
        ProcView::NoProc => {
            detail.push_str(
                "; no procfs is mounted: the kernel refuses a fresh /proc in a user namespace",
            );
            worsen(
                Status::Missing,
                "mount a full procfs: `sudo mount -t proc proc /proc`".into(),
            );
        }
    }
    if proc_read_only {
        detail.push_str("; /proc is read-only: the id maps and /proc/sys cannot be written");
        worsen(Status::Missing, remedies::container_proc());
    }
    if let Some(label) = c
        .apparmor_label
        .as_deref()
        .filter(|l| l.ends_with("(enforce)"))
    {
        detail.push_str(&format!("; confined by AppArmor profile {label}"));
        // The runtimes' default profiles deny mount outright; others may.
        let known_default = ["docker-default", "containers-default", "cri-containerd"]
            .iter()
            .any(|p| label.starts_with(p));
        worsen(
            if known_default {
                Status::Missing
            } else {
                Status::Limited
            },
            remedies::container_apparmor(),
        );
    }
    if in_container && seccomp_filtered {
        detail.push_str(
            "; a seccomp filter is already installed (runtime default profiles block unshare/clone with namespace flags, mount and pivot_root)",
        );
        worsen(Status::Limited, remedies::container_seccomp());
    }
    Check {
        layer: LAYER.into(),
        status,
        detail,
        remedy: (!fixes.is_empty()).then(|| fixes.join("\n")),
    }
}

fn check_overlayfs(
    filesystems: Option<&str>,
    version: Option<KernelVersion>,
    privileged: bool,
) -> Check {
    const LAYER: &str = "overlayfs";
    if !filesystems.is_some_and(|f| parse::filesystems_has(f, "overlay")) {
        return Check::limited(
            LAYER,
            "overlay is not in /proc/filesystems: --overlay is unavailable".into(),
            "`sudo modprobe overlay` (persist: `echo overlay | sudo tee /etc/modules-load.d/stockade.conf`); \
             the kernel needs CONFIG_OVERLAY_FS"
                .into(),
        );
    }
    if !privileged && !version.is_some_and(|v| v.at_least(5, 11)) {
        return Check::limited(
            LAYER,
            "overlay is available, but mounting it inside a user namespace needs Linux 5.11: --overlay is unavailable to this caller".into(),
            "upgrade to Linux 5.11 or newer, or run stockade as root".into(),
        );
    }
    Check::ok(
        LAYER,
        "overlay is in /proc/filesystems and mountable in a user namespace: --overlay works".into(),
    )
}

fn check_idmapped_mounts(version: Option<KernelVersion>, root: bool) -> Check {
    const LAYER: &str = "idmapped-mounts";
    if version.is_some_and(|v| v.at_least(5, 12)) {
        return Check::ok(
            LAYER,
            "kernel >= 5.12 supports idmapped mounts (only root callers need them: they keep --rw paths writable \
             while sandbox ids map to nobody; the filesystem must support them too: ext4, xfs, btrfs 5.15+, tmpfs 6.3+)"
                .into(),
        );
    }
    if !root {
        return Check::ok(
            LAYER,
            "kernel < 5.12 has no idmapped mounts, but only root callers need them".into(),
        );
    }
    Check::limited(
        LAYER,
        "kernel < 5.12 has no idmapped mounts: as root, --rw paths cannot stay writable while sandbox ids map to nobody".into(),
        "upgrade to Linux 5.12 or newer, or run stockade as an unprivileged user (sandbox ids then map to that user)".into(),
    )
}

/// Landlock features by ABI version (kernel release in parentheses).
const LANDLOCK_ABIS: [(i64, &str); 7] = [
    (1, "filesystem access rules (5.13)"),
    (2, "file reparenting (5.19)"),
    (3, "truncate (6.2)"),
    (4, "TCP bind/connect rules (6.7)"),
    (5, "device ioctl (6.10)"),
    (6, "abstract unix socket and signal scoping (6.12)"),
    (7, "audit logging (6.15)"),
];

/// stockade uses TCP rules (ABI 4) and scoping (ABI 6).
const LANDLOCK_WANTED_ABI: i64 = 6;

/// `hidden_by_seccomp`: a seccomp filter is installed and the kernel is new
/// enough to have Landlock, so ENOSYS more likely comes from the filter.
fn check_landlock(abi: Result<i64, Errno>, lsm: Option<&str>, hidden_by_seccomp: bool) -> Check {
    const LAYER: &str = "landlock";
    let lsms = lsm.map(parse::parse_comma_list);
    let lsm_text = match &lsms {
        Some(l) => format!("LSMs: {}", l.join(",")),
        None => "LSM list unreadable (/sys/kernel/security/lsm: securityfs not mounted or not permitted)".to_string(),
    };
    let boot_fix = || {
        let others = lsms.as_ref().map(|l| {
            l.iter()
                .filter(|x| *x != "landlock")
                .cloned()
                .collect::<Vec<_>>()
                .join(",")
        });
        let list = match others.filter(|o| !o.is_empty()) {
            Some(o) => format!("landlock,{o}"),
            None => "landlock,lockdown,yama,integrity,apparmor,bpf".to_string(),
        };
        format!(
            "enable Landlock at boot: add `lsm={list}` to the kernel command line (keep your existing LSMs in the list; \
             GRUB: GRUB_CMDLINE_LINUX in /etc/default/grub, then `sudo update-grub` and reboot)"
        )
    };
    match abi {
        Ok(v) if v >= LANDLOCK_WANTED_ABI => Check::ok(
            LAYER,
            format!(
                "ABI {v}: sandboxes are restricted at ABI {} (filesystem, TCP and IPC-scoping rules); {lsm_text}",
                v.min(i64::from(crate::landlock::MAX_ABI))
            ),
        ),
        Ok(v) => {
            let lacking: Vec<&str> = LANDLOCK_ABIS
                .iter()
                .filter(|(a, _)| *a > v && *a <= LANDLOCK_WANTED_ABI)
                .map(|(_, f)| *f)
                .collect();
            Check::limited(
                LAYER,
                format!(
                    "ABI {v}: sandboxes are restricted at ABI {v}, which lacks {}: those parts rest on the other layers only; {lsm_text}",
                    lacking.join(", ")
                ),
                "upgrade to Linux 6.12 or newer for Landlock ABI 6".into(),
            )
        }
        Err(Errno::EOPNOTSUPP) => Check::missing(
            LAYER,
            format!("built into the kernel but not enabled at boot; {lsm_text}"),
            boot_fix(),
        ),
        Err(Errno::ENOSYS | Errno::EPERM) if hidden_by_seccomp => Check::missing(
            LAYER,
            format!(
                "the version query fails, but the kernel (5.13+) has Landlock: a seccomp filter around this process \
                 (a container runtime's profile?) hides it; {lsm_text}"
            ),
            remedies::landlock_seccomp(),
        ),
        Err(Errno::ENOSYS) => Check::missing(
            LAYER,
            format!(
                "the kernel has no Landlock (< 5.13 or CONFIG_SECURITY_LANDLOCK=n); {lsm_text}"
            ),
            format!(
                "use Linux 6.12+ built with CONFIG_SECURITY_LANDLOCK=y, then {}",
                boot_fix()
            ),
        ),
        Err(e) => Check::missing(
            LAYER,
            format!("landlock_create_ruleset version query failed: {e}; {lsm_text}"),
            format!(
                "use Linux 6.12+ built with CONFIG_SECURITY_LANDLOCK=y; {}",
                boot_fix()
            ),
        ),
    }
}

fn check_seccomp(actions: Option<&str>, mode: Result<i32, Errno>) -> Check {
    const LAYER: &str = "seccomp";
    const KERNEL_FIX: &str = "use a kernel built with CONFIG_SECCOMP=y and CONFIG_SECCOMP_FILTER=y (Linux 5.0+; every distribution kernel has them)";
    let current = match mode {
        Ok(0) => "this process has no filter".to_string(),
        Ok(2) => "this process already runs under a filter (new filters stack; the strictest verdict wins)".to_string(),
        Ok(m) => format!("this process is in seccomp mode {m}"),
        Err(e) => {
            return Check::missing(
                LAYER,
                format!("prctl(PR_GET_SECCOMP) failed: {e}: no seccomp in this kernel"),
                KERNEL_FIX.into(),
            )
        }
    };
    let Some(actions) = actions.map(parse::parse_word_list) else {
        return Check::missing(
            LAYER,
            format!("/proc/sys/kernel/seccomp/actions_avail is missing (kernel < 4.14); {current}"),
            KERNEL_FIX.into(),
        );
    };
    let lacking = |wanted: &[&str]| -> Vec<String> {
        wanted
            .iter()
            .filter(|w| !actions.iter().any(|a| a == *w))
            .map(|w| w.to_string())
            .collect()
    };
    let detail = format!("actions: {}; {current}", actions.join(" "));
    let required = lacking(&["kill_process", "errno"]);
    if !required.is_empty() {
        return Check::missing(
            LAYER,
            format!("{detail}; lacks {}", required.join(", ")),
            KERNEL_FIX.into(),
        );
    }
    if !lacking(&["user_notif"]).is_empty() {
        return Check::limited(
            LAYER,
            format!("{detail}; lacks user_notif (Linux 5.0)"),
            KERNEL_FIX.into(),
        );
    }
    Check::ok(LAYER, format!("filters available ({detail})"))
}

fn check_no_new_privs(current: Result<bool, Errno>) -> Check {
    const LAYER: &str = "no-new-privs";
    match current {
        Ok(set) => Check::ok(
            LAYER,
            format!(
                "PR_SET_NO_NEW_PRIVS available (Linux 3.5+); currently {} on this process",
                if set { "set" } else { "not set" }
            ),
        ),
        Err(e) => Check::missing(
            LAYER,
            format!("prctl(PR_GET_NO_NEW_PRIVS) failed: {e}"),
            "use Linux 3.5 or newer".into(),
        ),
    }
}

/// Whether refused syscalls can be recorded ([`crate::events`]): seccomp user
/// notification. Without it they are still refused, in the kernel.
fn check_syscall_events(user_notif: bool) -> Check {
    const LAYER: &str = "syscall-events";
    if user_notif {
        Check::ok(
            LAYER,
            "refused syscalls are recorded as events (seccomp user notification, answered by the host)".into(),
        )
    } else {
        Check::limited(
            LAYER,
            "this kernel lacks seccomp user notification: refused syscalls are still refused, but not recorded".into(),
            "run on Linux 5.0 or later (SECCOMP_FILTER_FLAG_NEW_LISTENER) to get them on the record".into(),
        )
    }
}

/// Whether Landlock's denials reach the event stream: only through the
/// kernel's audit log ([`crate::audit`]). Limited, not missing, without it:
/// Landlock still enforces; its refusals are just not on the record.
fn check_landlock_events(availability: Result<(), crate::audit::Unavailable>) -> Check {
    const LAYER: &str = "landlock-events";
    match availability {
        Ok(()) => Check::ok(
            LAYER,
            "Landlock's denials are recorded as events (kernel audit log)".into(),
        ),
        Err(u) => Check::limited(
            LAYER,
            format!(
                "Landlock's denials are enforced but not recorded: {}",
                u.reason
            ),
            u.remedy,
        ),
    }
}

/// The caller's real sandbox run; `missing` names the static checks that already failed.
/// The level `--memory/--pids/--cpu` are enforced at, from the same detection the
/// launcher uses: `cgroup v1`, `cgroup v2`, or `none` (each limit then fails closed).
fn check_limits(avail: &crate::cgroup::Available) -> Check {
    use crate::cgroup::{Available, Controller};
    let unusable: Vec<_> = [Controller::Memory, Controller::Pids, Controller::Cpu]
        .into_iter()
        .filter_map(|c| avail.unusable(c))
        .collect();
    let level = match avail {
        Available::V2(_) => "cgroup v2",
        Available::V1(_) => "cgroup v1",
        Available::None { .. } => "none",
    };
    if unusable.is_empty() {
        return Check::ok(
            "limits",
            format!(
                "level {level}: --memory, --pids and --cpu are enforced by a cgroup per sandbox"
            ),
        );
    }
    let rlimit = crate::sandbox::nproc_counts_per_user_namespace();
    let names: Vec<_> = unusable.iter().map(|u| u.controller.name()).collect();
    let pids = if rlimit && unusable.iter().any(|u| u.controller == Controller::Pids) {
        "; --pids alone falls back to RLIMIT_NPROC (level rlimit, counted per user namespace)"
    } else {
        ""
    };
    Check::limited(
        "limits",
        format!(
            "level {level}: {} cannot be enforced by a cgroup ({}); asking for them fails closed (exit 125){pids}",
            names.join(", "),
            unusable[0].why
        ),
        unusable[0].fix.clone(),
    )
}

fn check_end_to_end(result: Result<(), String>, missing: &[&str]) -> Check {
    const LAYER: &str = "end-to-end";
    let Err(message) = result else {
        return Check::ok(LAYER, "a command ran inside a sandbox with every layer this version enforces (namespaces, minimal root, no capabilities, no_new_privs)".into());
    };
    // A diagnosed setup error carries its own fix: show it on the fix line.
    if let Some((what, fix)) = message.split_once(crate::error::FIX_SEPARATOR) {
        return Check::missing(LAYER, what.to_string(), fix.to_string());
    }
    let remedy = if missing.is_empty() {
        "no static check predicts this failure; the message names the failing layer. Look for confinement of this \
         process (`grep -E 'Seccomp|NoNewPrivs|CapEff' /proc/self/status`, `cat /proc/self/attr/current`) and report \
         the failure with this output"
            .to_string()
    } else {
        format!(
            "fix the missing layers first: {}; the message names the layer that failed",
            missing.join(", ")
        )
    };
    Check::missing(LAYER, message, remedy)
}

fn opt(v: Option<u64>) -> String {
    v.map_or_else(|| "absent".to_string(), |v| v.to_string())
}

#[cfg(test)]
mod tests {
    use super::samples::*;
    use super::*;

    fn v(s: &str) -> Option<KernelVersion> {
        KernelVersion::parse(s)
    }

    #[test]
    fn kernel_check_thresholds() {
        assert_eq!(
            check_kernel("6.18.44-fc-v669", v("6.18.44")).status,
            Status::Ok
        );
        assert_eq!(check_kernel("5.12.0", v("5.12.0")).status, Status::Ok);
        let c = check_kernel("5.10.0-28-amd64", v("5.10.0"));
        assert_eq!(c.status, Status::Limited);
        assert_eq!(
            c.detail,
            "5.10.0-28-amd64: < 5.12, lacks overlayfs in a user namespace, idmapped mounts (mount_setattr)"
        );
        let c = check_kernel("5.4.0-150-generic", v("5.4.0"));
        assert_eq!(c.status, Status::Missing);
        assert!(c.detail.contains("time namespace"));
        assert_eq!(check_kernel("weird", None).status, Status::Limited);
    }

    fn sysctls(max: Option<u64>, clone: Option<u64>, aa: Option<u64>) -> UsernsSysctls {
        UsernsSysctls {
            max_user_namespaces: max,
            unprivileged_userns_clone: clone,
            apparmor_restrict: aa,
            apparmor_profile_installed: false,
        }
    }

    #[test]
    fn userns_check_cases() {
        let target = ProfileTarget::with_problem("/opt/stockade/stockade-init", None);
        let h = &target;
        // This machine: no Debian or AppArmor sysctls, a large limit.
        assert_eq!(
            check_userns(&sysctls(Some(96365), None, None), false, true, h).status,
            Status::Ok
        );
        // max_user_namespaces = 0 stops root too.
        let c = check_userns(&sysctls(Some(0), None, None), true, true, h);
        assert_eq!(c.status, Status::Missing);
        assert!(c
            .remedy
            .unwrap()
            .starts_with("`sudo sysctl -w user.max_user_namespaces=15000`"));
        // Debian's switch only stops non-root.
        assert_eq!(
            check_userns(&sysctls(Some(9), Some(0), None), true, true, h).status,
            Status::Ok
        );
        let c = check_userns(&sysctls(Some(9), Some(0), None), false, true, h);
        assert_eq!(c.status, Status::Missing);
        assert!(c
            .remedy
            .unwrap()
            .contains("sudo sysctl -w kernel.unprivileged_userns_clone=1"));
        // Ubuntu's AppArmor restriction: the remedy is the exact profile.
        let c = check_userns(&sysctls(Some(9), None, Some(1)), false, true, h);
        assert_eq!(c.status, Status::Missing);
        let remedy = c.remedy.unwrap();
        assert!(
            remedy.contains("'profile stockade-init /opt/stockade/stockade-init flags=(unconfined) {' '  userns,' '}'"),
            "{remedy}"
        );
        assert!(remedy.contains("sudo apparmor_parser -r /etc/apparmor.d/stockade-init"));
        assert!(remedy.contains("kernel.apparmor_restrict_unprivileged_userns=0"));
        let mut s = sysctls(Some(9), None, Some(1));
        s.apparmor_profile_installed = true;
        assert_eq!(check_userns(&s, false, true, h).status, Status::Ok);
        // Root inside a container's user namespace is not privileged for these sysctls.
        assert!(check_userns(&sysctls(Some(9), None, None), false, false, h)
            .detail
            .contains("already inside a user namespace"));
    }

    #[test]
    fn namespaces_check() {
        let all: Vec<(&str, bool)> = NAMESPACES.iter().map(|(n, _)| (*n, true)).collect();
        let c = check_namespaces(&all);
        assert_eq!(c.status, Status::Ok);
        assert_eq!(
            c.detail,
            "all present in /proc/self/ns: user pid net mnt uts ipc cgroup time"
        );
        let mut some = all.clone();
        some[7].1 = false;
        let c = check_namespaces(&some);
        assert_eq!(c.status, Status::Missing);
        assert_eq!(c.detail, "missing from /proc/self/ns: time");
        assert!(c
            .remedy
            .unwrap()
            .contains("time (CONFIG_TIME_NS, Linux 5.6)"));
    }

    #[test]
    fn namespace_limits_check() {
        let limits = |vals: [u64; 2]| {
            vec![
                ("max_user_namespaces".to_string(), Some(vals[0])),
                ("max_pid_namespaces".to_string(), Some(vals[1])),
            ]
        };
        assert_eq!(
            check_namespace_limits(&limits([96365, 96365])).status,
            Status::Ok
        );
        let c = check_namespace_limits(&limits([96365, 10]));
        assert_eq!(c.status, Status::Limited);
        assert!(c.detail.starts_with("lowest: user.max_pid_namespaces = 10"));
        assert!(c
            .remedy
            .unwrap()
            .contains("sudo sysctl -w user.max_pid_namespaces=15000"));
        assert_eq!(
            check_namespace_limits(&limits([0, 10])).status,
            Status::Missing
        );
        assert_eq!(
            check_namespace_limits(&[("max_user_namespaces".to_string(), None)]).status,
            Status::Ok
        );
    }

    #[test]
    fn proc_view_of_samples() {
        assert_eq!(
            proc_view(&parse::parse_mountinfo(HYBRID_MOUNTINFO)),
            ProcView::Full
        );
        assert_eq!(
            proc_view(&parse::parse_mountinfo(V2_MOUNTINFO)),
            ProcView::Full,
            "binfmt_misc is allowed"
        );
        assert_eq!(
            proc_view(&parse::parse_mountinfo(DOCKER_MOUNTINFO)),
            ProcView::Masked(vec![
                "/proc/bus".into(),
                "/proc/sys".into(),
                "/proc/acpi".into(),
                "/proc/kcore".into()
            ])
        );
        assert_eq!(
            proc_view(&parse::parse_mountinfo(V1_MOUNTINFO)),
            ProcView::Full
        );
        assert_eq!(proc_view(&[]), ProcView::NoProc);
    }

    #[test]
    fn container_check_cases() {
        let docker = parse::parse_mountinfo(DOCKER_MOUNTINFO);
        let hints = container_hints(true, false, None, "0::/\n", &docker);
        assert_eq!(hints, ["/.dockerenv", "/ is an overlay"]);
        let facts = ContainerFacts {
            hints,
            apparmor_label: Some("docker-default (enforce)".into()),
        };
        let c = check_container(&facts, &proc_view(&docker), false, true);
        assert_eq!(c.status, Status::Missing);
        let remedy = c.remedy.unwrap();
        assert_eq!(remedy.lines().count(), 3, "{remedy}");
        assert!(remedy.contains("--security-opt systempaths=unconfined"));
        assert!(remedy.contains("procMount: Unmasked"));
        assert!(remedy.contains("apparmor=unconfined"));
        assert!(remedy.contains("seccomp=unconfined"));

        // This machine: a /.dockerenv but an unmasked /proc and no confinement.
        let hybrid = parse::parse_mountinfo(HYBRID_MOUNTINFO);
        let hints = container_hints(true, false, None, HYBRID_PROC_CGROUP, &hybrid);
        assert_eq!(hints, ["/.dockerenv"]);
        let c = check_container(
            &ContainerFacts {
                hints,
                apparmor_label: None,
            },
            &proc_view(&hybrid),
            false,
            false,
        );
        assert_eq!(c.status, Status::Ok);
        assert_eq!(c.detail, "in a container (/.dockerenv); /proc is fully visible, so a private /proc can be mounted");

        let hints = container_hints(
            false,
            true,
            Some("podman"),
            "0::/machine.slice/libpod-abc.scope\n",
            &[],
        );
        assert_eq!(
            hints,
            [
                "/run/.containerenv",
                "container=podman",
                "/proc/1/cgroup mentions libpod"
            ]
        );
        let none = check_container(&ContainerFacts::default(), &ProcView::Full, false, true);
        assert_eq!(
            (none.status, none.remedy),
            (Status::Ok, None),
            "a host seccomp filter alone is not flagged here"
        );
    }

    #[test]
    fn overlay_and_idmap_checks() {
        let fsys = "nodev\tproc\nnodev\toverlay\n";
        assert_eq!(
            check_overlayfs(Some(fsys), v("6.1.0"), false).status,
            Status::Ok
        );
        assert_eq!(
            check_overlayfs(Some(fsys), v("5.10.0"), false).status,
            Status::Limited
        );
        assert_eq!(
            check_overlayfs(Some(fsys), v("5.10.0"), true).status,
            Status::Ok
        );
        let c = check_overlayfs(Some("nodev\tproc\n"), v("6.1.0"), true);
        assert_eq!(c.status, Status::Limited);
        assert!(c.remedy.unwrap().starts_with("`sudo modprobe overlay`"));

        assert_eq!(check_idmapped_mounts(v("5.12.0"), true).status, Status::Ok);
        assert_eq!(check_idmapped_mounts(v("5.10.0"), false).status, Status::Ok);
        assert_eq!(
            check_idmapped_mounts(v("5.10.0"), true).status,
            Status::Limited
        );
    }

    #[test]
    fn landlock_check_cases() {
        let lsm = Some("lockdown,capability,landlock,yama,apparmor");
        let c = check_landlock(Ok(7), lsm, false);
        assert_eq!(c.status, Status::Ok);
        assert!(c
            .detail
            .ends_with("LSMs: lockdown,capability,landlock,yama,apparmor"));
        assert!(c
            .detail
            .starts_with("ABI 7: sandboxes are restricted at ABI 7"));
        let c = check_landlock(Ok(9), lsm, false);
        assert!(c
            .detail
            .starts_with("ABI 9: sandboxes are restricted at ABI 7"));
        let c = check_landlock(Ok(3), lsm, false);
        assert_eq!(c.status, Status::Limited);
        assert!(c.detail.starts_with(
            "ABI 3: sandboxes are restricted at ABI 3, which lacks TCP bind/connect rules (6.7), device ioctl (6.10), abstract unix socket and signal scoping (6.12)"
        ));
        let c = check_landlock(
            Err(Errno::EOPNOTSUPP),
            Some("lockdown,capability,yama,apparmor\n"),
            false,
        );
        assert_eq!(c.status, Status::Missing);
        assert!(c
            .remedy
            .unwrap()
            .contains("`lsm=landlock,lockdown,capability,yama,apparmor`"));
        let c = check_landlock(Err(Errno::ENOSYS), None, false);
        assert_eq!(c.status, Status::Missing);
        assert!(c.detail.contains("LSM list unreadable"));
        assert!(c
            .remedy
            .unwrap()
            .contains("`lsm=landlock,lockdown,yama,integrity,apparmor,bpf`"));
        // A container's filter answering ENOSYS on a kernel that has Landlock.
        let c = check_landlock(Err(Errno::ENOSYS), None, true);
        assert_eq!(c.status, Status::Missing);
        assert!(
            c.detail.contains("a seccomp filter around this process"),
            "{c:?}"
        );
        let remedy = c.remedy.unwrap();
        assert!(remedy.starts_with(
            "allow landlock_create_ruleset, landlock_add_rule and landlock_restrict_self"
        ));
        assert!(remedy.contains("--allow-no-landlock"));
    }

    #[test]
    fn read_only_proc_and_nested_stockade() {
        let ro = parse::parse_mountinfo(&HYBRID_MOUNTINFO.replace(
            "22 27 0:21 / /proc rw,relatime",
            "22 27 0:21 / /proc ro,relatime",
        ));
        assert!(proc_read_only(&ro));
        assert!(!proc_read_only(&parse::parse_mountinfo(HYBRID_MOUNTINFO)));
        let c = check_container(&ContainerFacts::default(), &proc_view(&ro), true, false);
        assert_eq!(c.status, Status::Missing);
        assert!(c
            .detail
            .ends_with("; /proc is read-only: the id maps and /proc/sys cannot be written"));
        assert!(c.remedy.unwrap().contains("systempaths=unconfined"));
        let c = check_in_stockade();
        assert_eq!(
            (c.layer.as_str(), c.status),
            ("user-namespaces", Status::Missing)
        );
    }

    #[test]
    fn apparmor_remedy_names_the_binary_and_the_commands() {
        let mut s = sysctls(Some(9), None, Some(1));
        let target = ProfileTarget::with_problem("/usr/local/bin/stockade", None);
        let c = check_userns(&s, false, true, &target);
        assert_eq!(c.status, Status::Missing);
        let lines: Vec<String> = c.remedy.unwrap().lines().map(String::from).collect();
        assert_eq!(
            lines,
            [
                "install an AppArmor profile that lets /usr/local/bin/stockade create user namespaces (packaging/apparmor/stockade-init covers /usr/bin and /usr/local/bin; this one names the binary in use):",
                "printf '%s\\n' 'abi <abi/4.0>,' 'include <tunables/global>' 'profile stockade-init /usr/local/bin/stockade flags=(unconfined) {' '  userns,' '}' | sudo tee /etc/apparmor.d/stockade-init >/dev/null && sudo apparmor_parser -r /etc/apparmor.d/stockade-init",
                "or lift the restriction for every program (weaker): `sudo sysctl -w kernel.apparmor_restrict_unprivileged_userns=0` (persist: `echo kernel.apparmor_restrict_unprivileged_userns=0 | sudo tee -a /etc/sysctl.d/60-stockade.conf`)",
            ]
        );
        // Root in the initial namespace is exempt; the profile, once installed, lifts it.
        assert_eq!(check_userns(&s, true, true, &target).status, Status::Ok);
        s.apparmor_profile_installed = true;
        assert_eq!(check_userns(&s, false, true, &target).status, Status::Ok);
    }

    #[test]
    fn seccomp_and_nnp_checks() {
        let all = "kill_process kill_thread trap errno user_notif trace log allow\n";
        assert_eq!(check_seccomp(Some(all), Ok(0)).status, Status::Ok);
        assert!(check_seccomp(Some(all), Ok(2))
            .detail
            .contains("already runs under a filter"));
        assert_eq!(
            check_seccomp(
                Some("kill_process kill_thread trap errno trace log allow"),
                Ok(0)
            )
            .status,
            Status::Limited
        );
        assert_eq!(
            check_seccomp(Some("kill_thread trap errno trace allow"), Ok(0)).status,
            Status::Missing
        );
        assert_eq!(check_seccomp(None, Ok(0)).status, Status::Missing);
        assert_eq!(
            check_seccomp(Some(all), Err(Errno::EINVAL)).status,
            Status::Missing
        );
        assert_eq!(check_no_new_privs(Ok(false)).status, Status::Ok);
        assert_eq!(
            check_no_new_privs(Err(Errno::EINVAL)).status,
            Status::Missing
        );
    }

    #[test]
    fn end_to_end_maps_errors_to_missing() {
        assert_eq!(check_end_to_end(Ok(()), &["landlock"]).status, Status::Ok);
        let c = check_end_to_end(
            Err("mount namespace: EPERM".into()),
            &["container", "landlock"],
        );
        assert_eq!(
            (c.layer.as_str(), c.status, c.detail.as_str()),
            ("end-to-end", Status::Missing, "mount namespace: EPERM")
        );
        assert_eq!(
            c.remedy.as_deref(),
            Some("fix the missing layers first: container, landlock; the message names the layer that failed")
        );
        let c = check_end_to_end(
            Err("user namespace layer: clone failed: ENOSPC: it is 0. Fix: raise it".into()),
            &["user-namespaces"],
        );
        assert_eq!(
            (c.detail.as_str(), c.remedy.as_deref()),
            (
                "user namespace layer: clone failed: ENOSPC: it is 0",
                Some("raise it")
            ),
            "a diagnosed error's own fix goes on the fix line"
        );
        let c = check_end_to_end(Err("seccomp: EACCES".into()), &[]);
        assert!(c
            .remedy
            .unwrap()
            .starts_with("no static check predicts this failure"));
    }

    #[test]
    fn report_ok_display_and_json() {
        let report = Report {
            kernel: "6.18.44".into(),
            caller: "uid 1001".into(),
            checks: vec![
                Check::ok("kernel", "fine".into()),
                Check::limited(
                    "cgroups",
                    "not writable".into(),
                    "line one\nline two".into(),
                ),
            ],
        };
        assert!(report.ok());
        assert_eq!(
            report.to_string(),
            "stockade doctor: kernel 6.18.44, caller uid 1001\n\
             kernel   ok       fine\n\
             cgroups  limited  not writable\n\
             \x20        fix: line one\n\
             \x20             line two\n\
             result: ok, limited: cgroups\n"
        );
        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(json["checks"][0]["status"], "ok");
        assert_eq!(json["checks"][0]["remedy"], serde_json::Value::Null);
        assert_eq!(json["checks"][1]["status"], "limited");
        assert_eq!(json["caller"], "uid 1001");
        let mut bad = report.clone();
        bad.checks.push(check_end_to_end(Err("boom".into()), &[]));
        assert!(!bad.ok());
        assert!(bad
            .to_string()
            .ends_with("result: NOT OK, missing: end-to-end\n"));
    }

    #[test]
    fn report_on_this_host_covers_every_layer() {
        // Static probes are harmless, so run them for real.
        let mut called = false;
        let r = report(|| {
            called = true;
            Err("not run in unit tests".into())
        });
        assert!(called);
        let layers: Vec<&str> = r.checks.iter().map(|c| c.layer.as_str()).collect();
        assert_eq!(
            layers,
            [
                "kernel",
                "user-namespaces",
                "namespaces",
                "namespace-limits",
                "container",
                "overlayfs",
                "idmapped-mounts",
                "landlock",
                "seccomp",
                "no-new-privs",
                "cgroups",
                "limits",
                "syscall-events",
                "landlock-events",
                "end-to-end"
            ]
        );
        let limited = check_syscall_events(false);
        assert_eq!(limited.status, Status::Limited);
        assert!(limited.detail.contains("still refused"), "{limited:?}");
        assert!(limited.remedy.unwrap().contains("Linux 5.0"));
        assert_eq!(check_syscall_events(true).status, Status::Ok);
        let off = check_landlock_events(Err(crate::audit::Unavailable {
            kind: crate::audit::Reason::AuditDisabled,
            reason: "audit is off".into(),
            remedy: "auditctl -e 1".into(),
        }));
        assert_eq!(off.status, Status::Limited);
        assert!(
            off.detail.ends_with("not recorded: audit is off"),
            "{off:?}"
        );
        assert_eq!(off.remedy.as_deref(), Some("auditctl -e 1"));
        assert_eq!(check_landlock_events(Ok(())).status, Status::Ok);
        assert!(!r.ok(), "the failed end-to-end check is Missing");
        for c in &r.checks {
            assert_eq!(c.remedy.is_some(), c.status != Status::Ok, "{c:?}");
        }
        assert!(!r.kernel.is_empty());
        assert!(r.caller == "root" || r.caller.starts_with("uid "));
    }

    /// Prints this host's report: `cargo test -p stockade doctor::tests::print_host_report -- --ignored --nocapture`.
    #[test]
    #[ignore]
    fn print_host_report() {
        let r = report(|| Err("skipped: no end-to-end test in this run".into()));
        println!("{r}");
        println!("{}", serde_json::to_string_pretty(&r).unwrap());
    }
}
