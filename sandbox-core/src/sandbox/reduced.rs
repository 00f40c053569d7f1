//! Spawning in reduced mode (`crate::reduced`): the host's half.
//!
//! The full mode's plan is computed as usual (it validates the policy and
//! yields the mount plan Landlock's rules come from), then adapted: the
//! reduced seccomp program, Landlock rules at host paths, a private temp
//! dir for `TMPDIR`/`HOME`, the proxy on the host's loopback, no mounts.

use std::time::Instant;

use super::{proxy_environment, proxy_environment_at, proxy_error, Sandbox};
use crate::child::{Child, Stdio};
use crate::error::{Error, Layer, SetupFailure};
use crate::launch::{self, helper, wire};
use crate::reduced::{self, gate::Gate, proxy::Listeners, rules, tmp::PrivateTmp, Mode};

fn setup(layer: Layer, step: &str, errno: i32, detail: impl Into<String>) -> Error {
    Error::Setup(SetupFailure {
        layer,
        step: step.into(),
        errno,
        detail: detail.into(),
    })
}

impl Sandbox {
    /// Start the command in reduced mode (the caller opted in and this host
    /// has no user namespaces).
    pub(super) fn spawn_reduced(&self, defaults: [Stdio; 3]) -> Result<Child, Error> {
        let started = Instant::now();
        let mut plan = self.plan_to_start(false, None)?;
        self.check_reduced(&plan.identity)?;
        rules::check_plan(&plan.mounts)?;
        let root = nix::unistd::geteuid().is_root();
        let (uid, gid) = (plan.identity.host_uid, plan.identity.host_gid);
        let tmp = PrivateTmp::create(uid, gid).map_err(|e| {
            let step = "create the private temp dir (reduced mode's /tmp)";
            setup(
                Layer::Filesystem,
                step,
                e.raw_os_error().unwrap_or(0),
                e.to_string(),
            )
        })?;
        let proxy_policy = self.proxy_policy()?;
        let listeners = match proxy_policy {
            Some(_) => Some(Listeners::bind().map_err(proxy_error)?),
            None => None,
        };
        let ports: Vec<u16> = listeners.iter().flat_map(Listeners::ports).collect();

        plan.landlock.required = true;
        plan.landlock.tcp_connect = Some(ports.clone());
        let ops = plan.base.iter().chain(&plan.mounts);
        let rules = rules::host_rules(ops, tmp.path(), &plan.landlock, &|p| p.exists());
        plan.reduced = Some(wire::ReducedPlan { rules });
        let programs =
            crate::seccomp::programs_cached(&self.syscalls.clone().reduced()).map_err(|e| {
                setup(
                    Layer::Seccomp,
                    "compile the reduced-mode filter",
                    0,
                    e.to_string(),
                )
            })?;
        // Always with a listener: `connect` goes to the host's gate. Other
        // refusals too when they are recorded (the notify program).
        let filter = if self.syscall_events {
            &programs.notify
        } else {
            &programs.errno
        };
        plan.filter = filter.iter().map(crate::seccomp::pack).collect();
        plan.notify = true;
        plan.refusals = Some(programs.errno.clone());
        plan.idmap_grants = false;
        plan.proxy_listeners = false;
        plan.mounts.clear();
        reduced_environment(&mut plan.env, tmp.path(), listeners.as_ref(), uid);
        plan.hold_reaping = self.landlock_events && crate::events::landlock::visible();

        // A root caller's command runs as an unprivileged id that must
        // reopen its pipes.
        let (mut fds, pipes) = self.stdio_fds(defaults, root.then_some((uid, gid)))?;
        let (cgroup, limits_level) = self.limit_cgroup(&mut plan, &mut fds)?;
        if limits_level == crate::LimitsLevel::Rlimit {
            // No user namespace: RLIMIT_NPROC counts every process of the
            // uid, so the sandbox gets `pids` on top of what runs already.
            let pids = self.limits.pids.unwrap_or(0);
            plan.nproc = Some(tasks_of(uid).saturating_add(pids));
        }

        let helper = helper::find_helper(self.helper.as_deref())?;
        let mut launched = launch::launch_reduced(&plan, &helper, fds, tmp)?;
        launched.cgroup = cgroup;
        launched.limits_level = limits_level;
        let Some(listener) = launched.syscall_listener.take() else {
            return Err(Error::Helper(
                "the reduced-mode helper did not hand over the command's seccomp listener".into(),
            ));
        };
        let (mut child, log) = self.new_child(&plan, launched, pipes, started, Vec::new());
        child.set_missing(Mode::Reduced.missing_layers(root));
        child.expect(self.attest_expected(&plan, limits_level).reduced());
        crate::events::syscalls::watch_gated(
            listener,
            programs.errno.clone(),
            log.clone(),
            None,
            Some(Gate::new(&ports)),
        )
        .map_err(|e| {
            let step = "supervise the command's connect calls (epoll, thread)";
            setup(
                Layer::Seccomp,
                step,
                e.raw_os_error().unwrap_or(0),
                e.to_string(),
            )
        })?;
        if plan.hold_reaping {
            let creator = crate::events::landlock::child_host_pid(child.pid(), None);
            let watch = creator.and_then(|pid| crate::events::landlock::watch(pid, &log, None));
            child.ack_start(watch)?;
        }
        if let (Some(policy), Some(l)) = (proxy_policy, listeners) {
            let served = crate::proxy::serve_kinds(l.fds, policy, Some(self.proxy_sink_into(&log)))
                .map_err(proxy_error)?;
            child.attach_proxy(served);
        }
        Ok(child)
    }

    /// A session's launch failure: without user namespaces it says so, and
    /// that reduced mode has no sessions (its supervisor is no zygote).
    pub(super) fn session_error(&self, e: Error) -> Error {
        use crate::reduced::detect;
        match e {
            Error::Setup(mut f)
                if self.allow_reduced && detect::is_unavailable(&Error::Setup(f.clone())) =>
            {
                f.detail.push_str(
                    "; reduced mode (allow_reduced) runs one command per sandbox and has no \
                     sessions: use Sandbox::spawn/output for each command",
                );
                Error::Setup(f)
            }
            e => detect::with_hint(e),
        }
    }

    /// What reduced mode refuses up front (nothing has started yet).
    fn check_reduced(&self, id: &wire::Identity) -> Result<(), Error> {
        if !self.require_landlock {
            return Err(Error::policy(
                "reduced mode needs Landlock: it cannot be combined with --allow-no-landlock \
                 (Sandbox::require_landlock(false))",
            ));
        }
        if self.loopback_tcp {
            return Err(Error::policy(
                "--loopback-tcp leaves TCP to the sandbox's network namespace, which reduced mode \
                 does not have (its loopback is the host's)",
            ));
        }
        if self.uid.is_some_and(|u| u != id.host_uid) || self.gid.is_some_and(|g| g != id.host_gid)
        {
            return Err(Error::policy(format!(
                "--uid/--gid need a user namespace: in reduced mode the command runs as host id \
                 {}:{}",
                id.host_uid, id.host_gid
            )));
        }
        rules::check_grants(&self.fs.clone().validated()?)?;
        let abi = crate::landlock::abi_version().unwrap_or(0);
        if abi < reduced::MIN_LANDLOCK_ABI {
            return Err(setup(
                Layer::Landlock,
                "check the Landlock ABI for reduced mode",
                libc::EOPNOTSUPP,
                format!(
                    "reduced mode needs Landlock ABI {} (Linux 6.12+) for signal and \
                     abstract-socket scoping, and this kernel has {abi}: without user namespaces \
                     there is nothing else to keep the command from your other processes",
                    reduced::MIN_LANDLOCK_ABI
                ),
            ));
        }
        if !crate::sys::seccomp_user_notif_available() {
            return Err(setup(
                Layer::Seccomp,
                "check seccomp user notification for reduced mode",
                libc::ENOSYS,
                "reduced mode checks every connect on the host, which needs seccomp user \
                 notification (Linux 5.9+)",
            ));
        }
        Ok(())
    }
}

/// The plan's environment for reduced mode: the private dir as `TMPDIR` and
/// `HOME` (where they still hold the full mode's `/tmp`), the proxy
/// variables at the host-side ports, and a root caller's `USER`/`LOGNAME`
/// for the id the command runs as. Values the caller set stay.
fn reduced_environment(
    env: &mut [(String, String)],
    tmp: &std::path::Path,
    proxy: Option<&Listeners>,
    uid: u32,
) {
    let tmp = tmp.to_string_lossy().into_owned();
    let defaults = proxy_environment();
    let moved = proxy.map(|l| proxy_environment_at(l.http, l.socks));
    let user = if uid == 65534 { "nobody" } else { "sandbox" };
    for (k, v) in env.iter_mut() {
        if (k == "HOME" || k == "TMPDIR") && v == "/tmp" {
            *v = tmp.clone();
        } else if (k == "USER" || k == "LOGNAME") && v == "root" && uid != 0 {
            *v = user.into();
        } else if let Some(moved) = &moved {
            let was_default = defaults.iter().any(|(dk, dv)| dk == k && dv == v);
            if let Some((_, new)) = moved.iter().find(|(mk, _)| mk == k).filter(|_| was_default) {
                *v = new.clone();
            }
        }
    }
}

/// How many tasks (threads count: `RLIMIT_NPROC` counts them) host uid
/// `uid` runs now, from `/proc`.
fn tasks_of(uid: u32) -> u64 {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return 0;
    };
    dir.filter_map(|e| {
        let name = e.ok()?.file_name();
        name.to_str()?.parse::<u32>().ok()?;
        let status = std::fs::read_to_string(format!("/proc/{}/status", name.to_str()?)).ok()?;
        let field = |key: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(key))
                .map(|v| v.split_whitespace().collect::<Vec<_>>())
        };
        let real_uid: u32 = field("Uid:")?.first()?.parse().ok()?;
        let threads: u64 = field("Threads:")?.first()?.parse().ok()?;
        (real_uid == uid).then_some(threads)
    })
    .sum()
}

impl crate::attest::Expected {
    /// The same record, for a reduced-mode sandbox.
    pub(crate) fn reduced(mut self) -> Self {
        self.reduced = true;
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn environment_points_at_the_private_dir_and_the_moved_proxy() {
        let mut env: Vec<(String, String)> = vec![
            ("HOME".into(), "/tmp".into()),
            ("TMPDIR".into(), "/my/own".into()),
            ("USER".into(), "root".into()),
            ("HTTP_PROXY".into(), "http://127.0.0.1:3128".into()),
            ("ALL_PROXY".into(), "socks5h://127.0.0.1:1080".into()),
            ("https_proxy".into(), "http://mine.example:8080".into()),
        ];
        let l = Listeners::bind().unwrap();
        reduced_environment(
            &mut env,
            std::path::Path::new("/tmp/stockade-x"),
            Some(&l),
            65534,
        );
        let get = |k: &str| env.iter().find(|(ek, _)| ek == k).unwrap().1.clone();
        assert_eq!(get("HOME"), "/tmp/stockade-x");
        assert_eq!(get("TMPDIR"), "/my/own");
        assert_eq!(get("USER"), "nobody");
        assert_eq!(get("HTTP_PROXY"), format!("http://127.0.0.1:{}", l.http));
        assert_eq!(get("ALL_PROXY"), format!("socks5h://127.0.0.1:{}", l.socks));
        assert_eq!(get("https_proxy"), "http://mine.example:8080");
    }

    #[test]
    fn tasks_of_counts_our_own_threads() {
        let me = nix::unistd::getuid().as_raw();
        assert!(tasks_of(me) >= 1);
        assert_eq!(tasks_of(4_000_000_000), 0);
    }
}
