//! Reduced mode: a sandbox for hosts without user namespaces, used only when
//! the caller opts in ([`crate::Sandbox::allow_reduced`], CLI
//! `--allow-reduced`, TOML `allow-reduced = true`).
//!
//! Without a user namespace nothing else can be created unprivileged: no
//! pid, network, mount, UTS, IPC, cgroup or time namespace, no `pivot_root`.
//! What stays is what a process may impose on itself:
//!
//! | layer | reduced mode |
//! |---|---|
//! | Landlock (ABI [`MIN_LANDLOCK_ABI`]+, mandatory) | the full mode's rules at host paths ([`rules`]); a private host directory as `TMPDIR`/`HOME` instead of `/tmp`; TCP connect only to the proxy's ports, no TCP bind; signal and abstract-socket scoping |
//! | seccomp | the same allowlist plus [`crate::seccomp::table::REDUCED_EPERM`]: only TCP and route-netlink sockets (no UDP, raw, SCTP, MPTCP or unix sockets), no `listen`, no TCP Fast Open, no SysV/POSIX IPC; `connect` goes to the host's [`gate`], which lets only the proxy's loopback address through |
//! | privileges | no capabilities, `no_new_privs`; a root caller's command runs as its unprivileged host id (`root_host_id`, 65534), an unprivileged caller's as itself |
//! | limits | a cgroup where one can be made; else `--pids` as `RLIMIT_NPROC` (counted over the whole host uid), and `--memory`/`--cpu` fail closed |
//! | supervision | a child subreaper (not PID 1) kills every descendant on timeout, kill and drop (`supervise::descendants`); the cgroup too, where there is one |
//!
//! What it gives up is [`Mode::missing_layers`]; what that leaves
//! uncontained is [`Mode::not_contained`] (also in the README and in the
//! CLI's `--report`).

pub(crate) mod detect;
pub(crate) mod gate;
pub(crate) mod proxy;
pub(crate) mod rules;
pub(crate) mod tmp;

use serde::Serialize;

/// The Landlock ABI reduced mode needs: 6 (Linux 6.12) for signal and
/// abstract-unix-socket scoping. Without a pid namespace, signal scoping is
/// the only thing between the command and the caller's other processes, so
/// an older Landlock (even one with TCP rules, ABI 4) is refused.
pub const MIN_LANDLOCK_ABI: u32 = 6;

/// How a sandbox was built.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Every layer (namespaces, `pivot_root`, Landlock, seccomp, ...).
    #[default]
    Full,
    /// Reduced mode: no namespaces and no `pivot_root` (see [`crate::reduced`]).
    Reduced,
}

/// The layers of the full mode a reduced sandbox of an unprivileged caller
/// runs without. The last one, the capability bounding set, cannot be
/// emptied without `CAP_SETPCAP` (inert: `no_new_privs` keeps any `execve`
/// from gaining a capability).
const MISSING_UNPRIVILEGED: &[&str] = &[
    "user-ns",
    "pid-ns",
    "net-ns",
    "mnt-ns",
    "uts-ns",
    "ipc-ns",
    "cgroup-ns",
    "time-ns",
    "pivot-root",
    "capability-bounding-set",
];

/// The same for a root caller, who can empty the bounding set: all but the
/// last.
const MISSING: &[&str] = match MISSING_UNPRIVILEGED.split_last() {
    Some((_, rest)) => rest,
    None => &[],
};

/// What reduced mode does not contain, in words (README "Reduced mode").
const NOT_CONTAINED: &[&str] = &[
    "host processes are visible: /proc lists every process of the host with its command line and status (Landlock's ptrace rule still hides environ, mem, fd and maps of processes outside the sandbox)",
    "the host's hostname, kernel, clock and cgroup paths are the host's (no UTS, time or cgroup namespace)",
    "the host's network interfaces, addresses and routes are visible (/proc/net, route netlink); no network namespace",
    "the proxy listens on the host's loopback (127.0.0.1, ephemeral ports): the sandbox reaches the host's loopback on those ports only, and other local processes can reach the proxy too",
    "/proc paths the full mode masks (kallsyms, keys, sched_debug, timer_list, ...) are readable as far as the kernel shows them to the host uid; /proc is read-only",
    "the command runs with real host ids: an unprivileged caller's own uid, groups and (inert) capability bounding set; a root caller's root_host_id (65534)",
    "system directories and the granted paths are the host's own, protected by Landlock and file permissions only (no read-only bind mounts); of /etc only the files the full mode copies are readable, and they are the host's own (passwd, group, hosts, resolv.conf)",
    "names and metadata of host paths: stat, access and path lookups work anywhere (Landlock limits opening, listing and changing files, not looking them up), so the command can tell whether a host path exists",
    "no private /tmp, /dev/shm or /dev/pts: a private directory under the host's temp dir is TMPDIR and HOME (removed at the end); POSIX shared memory and new ptys are unavailable; disk use there and in --rw grants is not capped",
    "--pids without a cgroup is RLIMIT_NPROC, which counts every process of the host uid, not just the sandbox's",
    "fewer layers per threat: file access is held by Landlock (and file permissions), egress by the seccomp socket rules and the host's connect gate plus Landlock's port rule, signals to the caller's own processes by Landlock alone",
    "a supervisor killed from outside (SIGKILL by the caller's uid or root) cannot end the sandbox; without a cgroup its processes then outlive it",
];

impl Mode {
    /// `full` or `reduced`.
    pub fn name(self) -> &'static str {
        match self {
            Mode::Full => "full",
            Mode::Reduced => "reduced",
        }
    }

    /// The full mode's layers this mode runs without (empty for
    /// [`Mode::Full`]), named like [`crate::attest::Property`]: `user-ns`
    /// ... `time-ns`, `pivot-root`; for an unprivileged caller also
    /// `capability-bounding-set`.
    pub fn missing_layers(self, root_caller: bool) -> &'static [&'static str] {
        match (self, root_caller) {
            (Mode::Full, _) => &[],
            (Mode::Reduced, true) => MISSING,
            (Mode::Reduced, false) => MISSING_UNPRIVILEGED,
        }
    }

    /// What this mode does not contain that the full mode does, in words
    /// (empty for [`Mode::Full`]).
    pub fn not_contained(self) -> &'static [&'static str] {
        match self {
            Mode::Full => &[],
            Mode::Reduced => NOT_CONTAINED,
        }
    }
}

impl std::fmt::Display for Mode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readme_lists_everything_not_contained() {
        let readme = include_str!("../../../README.md");
        let section = readme
            .split("## Reduced mode (no user namespaces)")
            .nth(1)
            .expect("README has a reduced-mode section");
        for item in Mode::Reduced.not_contained() {
            assert!(
                section.contains(item),
                "README's reduced-mode section lacks: {item}"
            );
        }
        for layer in Mode::Reduced.missing_layers(false) {
            assert!(
                section.contains(&format!("`{layer}`")),
                "README lacks {layer}"
            );
        }
    }

    #[test]
    fn missing_layers_name_attest_properties() {
        use crate::attest::Property;
        assert!(Mode::Full.missing_layers(true).is_empty());
        assert!(Mode::Full.not_contained().is_empty());
        let names: Vec<&str> = Property::ALL.iter().map(|p| p.name()).collect();
        for layer in Mode::Reduced.missing_layers(false) {
            assert!(
                names.contains(layer) || ["pivot-root", "capability-bounding-set"].contains(layer),
                "{layer}"
            );
        }
        assert_eq!(
            Mode::Reduced.missing_layers(false).len(),
            Mode::Reduced.missing_layers(true).len() + 1
        );
        assert_eq!(
            serde_json::to_string(&Mode::Reduced).unwrap(),
            "\"reduced\""
        );
    }
}
