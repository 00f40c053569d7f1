//! The `Sandbox` builder: a policy plus a command, spawned like
//! `std::process::Command`.

mod reduced;

use std::fs::File;
use std::os::fd::{OwnedFd, RawFd};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::attest;
use crate::child::{Child, ExitStatus, Output, Stdio};
use crate::error::{Error, Layer};
use crate::fs::git::GitMode;
use crate::fs::plan::{self, RealHost};
use crate::launch::{self, helper, wire};
use crate::policy::{self, CacheMode, Fs, Limits, Net, Preset, Syscalls};
use crate::session::{self, Session};

/// Host id that a root caller's sandbox ids map to: `nobody`.
pub const DEFAULT_ROOT_HOST_ID: u32 = 65534;
/// Time between SIGTERM and SIGKILL when the timeout fires.
pub const DEFAULT_KILL_GRACE: Duration = Duration::from_millis(500);

/// Host variables passed through by default: locale and terminal only.
const SAFE_ENV: &[&str] = &[
    "LANG",
    "LANGUAGE",
    "LC_ALL",
    "LC_CTYPE",
    "LC_MESSAGES",
    "TERM",
    "TZ",
    "NO_COLOR",
    "COLORTERM",
];
const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// A sandboxed command: what it may see and do, and what to run.
///
/// Every layer is on by default: user, pid, net (loopback only), mount, uts,
/// ipc, cgroup and time namespaces; a minimal read-only root; no capabilities;
/// `no_new_privs`; a cleared environment. Anything that cannot be enforced is
/// an error, never a silent downgrade.
///
/// ```
/// use stockade::{Fs, Net, Sandbox};
/// # fn main() -> Result<(), stockade::Error> {
/// let out = Sandbox::new()
///     .net(Net::None)
///     .fs(Fs::minimal())
///     .command(["sh", "-c", "echo hello from $(hostname); ls /home 2>&1"])
///     .output()?;
/// assert!(out.status.success() == false); // /home does not exist inside
/// assert!(String::from_utf8_lossy(&out.stdout).contains("hello from stockade"));
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct Sandbox {
    net: Net,
    fs: Fs,
    syscalls: Syscalls,
    limits: Limits,
    timeout: Option<Duration>,
    kill_grace: Duration,
    env: Vec<(String, String)>,
    pass_env: Vec<String>,
    uid: Option<u32>,
    gid: Option<u32>,
    root_host_id: u32,
    hostname: String,
    argv: Vec<String>,
    cwd: Option<PathBuf>,
    stdio: [Option<Stdio>; 3],
    passes: Vec<(Arc<OwnedFd>, RawFd)>,
    helper: Option<PathBuf>,
    require_landlock: bool,
    loopback_tcp: bool,
    landlock_withhold: Vec<PathBuf>,
    proxy_sink: Option<ProxySink>,
    event_sink: Option<Sink>,
    syscall_events: bool,
    landlock_events: bool,
    presets: Vec<Preset>,
    cache: CacheMode,
    preset_home: Option<PathBuf>,
    ssh_agent: bool,
    git: GitMode,
    allow_reduced: bool,
}

/// The caller's event callback.
#[derive(Clone)]
struct Sink(crate::events::EventSink);

impl std::fmt::Debug for Sink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sink(..)")
    }
}

/// The caller's proxy-event callback.
#[derive(Clone)]
struct ProxySink(crate::proxy::EventSink);

impl std::fmt::Debug for ProxySink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ProxySink(..)")
    }
}

impl Default for Sandbox {
    fn default() -> Self {
        Sandbox::new()
    }
}

impl Sandbox {
    /// A sandbox with the default policy and no command yet.
    pub fn new() -> Self {
        Sandbox {
            net: Net::None,
            fs: Fs::minimal(),
            syscalls: Syscalls::default(),
            limits: Limits::default(),
            timeout: None,
            kill_grace: DEFAULT_KILL_GRACE,
            env: Vec::new(),
            pass_env: Vec::new(),
            uid: None,
            gid: None,
            root_host_id: DEFAULT_ROOT_HOST_ID,
            hostname: "stockade".into(),
            argv: Vec::new(),
            cwd: None,
            stdio: [None, None, None],
            passes: Vec::new(),
            helper: None,
            require_landlock: true,
            loopback_tcp: false,
            landlock_withhold: Vec::new(),
            proxy_sink: None,
            event_sink: None,
            syscall_events: true,
            landlock_events: true,
            presets: Vec::new(),
            cache: CacheMode::default(),
            preset_home: None,
            ssh_agent: false,
            git: GitMode::default(),
            allow_reduced: false,
        }
    }

    /// Show a toolchain installed in the caller's home, read-only, at its
    /// host path, and set the variables that find it (see [`Preset`]);
    /// repeatable. What is not installed is skipped; nothing else of the
    /// home becomes visible. `HOME` stays `/tmp`.
    pub fn preset(mut self, preset: Preset) -> Self {
        self.presets.push(preset);
        self
    }

    /// How the presets' caches are shown (default [`CacheMode::Overlay`]:
    /// writable, discarded at exit).
    pub fn cache(mut self, mode: CacheMode) -> Self {
        self.cache = mode;
        self
    }

    /// The home whose toolchains the presets show (default: the caller's
    /// `$HOME` when the sandbox is spawned).
    pub fn preset_home(mut self, home: impl Into<PathBuf>) -> Self {
        self.preset_home = Some(home.into());
        self
    }

    /// Bind the caller's ssh-agent socket (`$SSH_AUTH_SOCK`, read when the
    /// sandbox is spawned) at `/run/ssh-agent.sock` and point
    /// `SSH_AUTH_SOCK` there; nothing else of `~/.ssh`. The command can make
    /// the agent sign with the caller's keys while it runs (authenticate as
    /// the caller wherever the sandbox's network reaches), not read them.
    /// Without a usable `SSH_AUTH_SOCK` this is a policy error.
    pub fn ssh_agent(mut self, on: bool) -> Self {
        self.ssh_agent = on;
        self
    }

    /// On a host without user namespaces (disabled, `max_user_namespaces`
    /// 0, refused by a container's seccomp profile or an LSM), run in
    /// reduced mode instead of failing (`false`, the default: such a host
    /// is an error naming this option). Reduced mode keeps Landlock
    /// (mandatory, ABI 6+), seccomp (plus no UDP/raw/unix sockets and a
    /// host-checked `connect`), no capabilities, `no_new_privs` and limits,
    /// and gives up every namespace and `pivot_root`: see
    /// [`crate::reduced`] for exactly what is and is not contained, and
    /// [`Child::mode`] / [`ExitStatus::mode`] for what a run got. On a host
    /// with user namespaces this changes nothing.
    pub fn allow_reduced(mut self, allow: bool) -> Self {
        self.allow_reduced = allow;
        self
    }

    /// Call `sink` with every [`crate::Event`] of each sandbox spawned from
    /// this policy as it happens (command start and exit, proxy decisions,
    /// refused syscalls, limit hits). It runs on the thread that saw the
    /// event, possibly one of the library's: keep it short. The events are
    /// also kept on the [`Child`] and in [`Output::events`].
    pub fn on_event(mut self, sink: impl Fn(&crate::Event) + Send + Sync + 'static) -> Self {
        self.event_sink = Some(Sink(Arc::new(sink)));
        self
    }

    /// Record refused syscalls (default on): each refusal goes to the host
    /// through seccomp user notification, is answered there with the
    /// errno the filter gives, and becomes an event. Allowed syscalls are
    /// not affected. Off: refusals are answered in the kernel and not seen.
    pub fn syscall_events(mut self, on: bool) -> Self {
        self.syscall_events = on;
        self
    }

    /// Record Landlock's denials where the kernel reports them (default on;
    /// see [`crate::events`]). Off: the per-spawn check whether this host
    /// reports them (a netlink query for a root caller) is skipped too.
    pub fn landlock_events(mut self, on: bool) -> Self {
        self.landlock_events = on;
        self
    }

    /// How the git repository at the root of each writable grant is
    /// handled (default [`GitMode::Protect`]: hooks and config read-only,
    /// commits work; a linked worktree's common git directory is found and
    /// granted). See the README, "git in writable workspaces".
    pub fn git(mut self, mode: GitMode) -> Self {
        self.git = mode;
        self
    }

    /// Network policy (default [`Net::None`]: loopback only).
    ///
    /// [`Net::Proxy`] opens the egress proxy, with two front doors that are
    /// always both on: the explicit proxy (`127.0.0.1:3128` HTTP,
    /// `127.0.0.1:1080` SOCKS5, named by the proxy environment variables), and
    /// transparent mode for clients that ignore those variables: the
    /// sandbox's DNS (`127.0.0.1:53`) answers allowed names with stand-in
    /// addresses from `198.18.0.0/15`, and connections to them on ports 80
    /// and 443 are captured and proxied under the same policy (see
    /// [`crate::proxy::dns`]). Landlock then allows TCP connect to exactly
    /// those four ports; the namespace still has only `lo`. The proxy's
    /// sockets occupy their ports inside (TCP 3128 and 1080 and UDP 53 on
    /// `127.0.0.1`, TCP 80 and 443 on every local address), so a
    /// command's own server (with [`Sandbox::allow_loopback_tcp`]) must use
    /// other ports.
    pub fn net(mut self, net: Net) -> Self {
        self.net = net;
        self
    }
    /// Whether a host without Landlock is an error (`true`, the default) or
    /// the caller accepts running without that layer (`false`; namespaces,
    /// seccomp and the dropped capabilities still apply, and
    /// [`ExitStatus::landlock_abi`] then reports 0). On a host with Landlock
    /// this changes nothing: Landlock is always used when available.
    pub fn require_landlock(mut self, required: bool) -> Self {
        self.require_landlock = required;
        self
    }
    /// Let the command use TCP on the sandbox's own loopback (test servers,
    /// dev servers). By default Landlock denies every TCP bind and every TCP
    /// connect (except, in proxy mode, to the proxy); with this set, Landlock
    /// leaves TCP alone and the network namespace, which has only `lo`, is
    /// the fence: still no way out.
    pub fn allow_loopback_tcp(mut self, allow: bool) -> Self {
        self.loopback_tcp = allow;
        self
    }
    /// Call `f` for every decision of the egress proxy (`Net::Proxy`), as it
    /// happens, on the proxy's own thread: keep it short. The same events are
    /// also available from [`Child::proxy_events`] and [`Output::proxy_events`].
    pub fn on_proxy_event(
        mut self,
        f: impl Fn(&crate::proxy::ProxyEvent) + Send + Sync + 'static,
    ) -> Self {
        self.proxy_sink = Some(ProxySink(Arc::new(f)));
        self
    }
    /// Give the mounted path `dst` no Landlock rule: only stricter, never
    /// looser. Exists to prove in tests that Landlock holds on its own (a
    /// path mounted writable but withheld from Landlock stays unwritable).
    #[doc(hidden)]
    pub fn landlock_withhold(mut self, dst: impl Into<PathBuf>) -> Self {
        self.landlock_withhold.push(dst.into());
        self
    }
    /// Filesystem view (default [`Fs::minimal`]).
    pub fn fs(mut self, fs: Fs) -> Self {
        self.fs = fs;
        self
    }
    /// System-call policy.
    pub fn syscalls(mut self, s: Syscalls) -> Self {
        self.syscalls = s;
        self
    }
    /// Resource limits.
    pub fn limits(mut self, l: Limits) -> Self {
        self.limits = l;
        self
    }

    /// The limits set with [`Sandbox::limits`].
    pub fn limit_settings(&self) -> &Limits {
        &self.limits
    }
    /// Wall-clock limit: SIGTERM to the whole tree, then SIGKILL after a short grace.
    pub fn timeout(mut self, t: Duration) -> Self {
        self.timeout = Some(t);
        self
    }
    /// Time between SIGTERM and SIGKILL on timeout (default 500 ms).
    pub fn kill_grace(mut self, t: Duration) -> Self {
        self.kill_grace = t;
        self
    }
    /// Set one environment variable (the environment starts nearly empty).
    pub fn env(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }
    /// Pass the caller's value of `key` through, if set.
    pub fn pass_env(mut self, key: impl Into<String>) -> Self {
        self.pass_env.push(key.into());
        self
    }
    /// User id inside (default: the caller's uid).
    pub fn uid(mut self, uid: u32) -> Self {
        self.uid = Some(uid);
        self
    }
    /// Group id inside (default: the caller's gid).
    pub fn gid(mut self, gid: u32) -> Self {
        self.gid = Some(gid);
        self
    }
    /// For a root caller: the unprivileged host id the sandbox's ids map to
    /// (default 65534, `nobody`). Ignored for unprivileged callers, whose
    /// sandbox ids always map to their own.
    pub fn root_host_id(mut self, id: u32) -> Self {
        self.root_host_id = id;
        self
    }
    /// Hostname inside (default `stockade`).
    pub fn hostname(mut self, name: impl Into<String>) -> Self {
        self.hostname = name.into();
        self
    }
    /// The program and its arguments; `argv[0]` is looked up in the sandbox's `PATH`.
    pub fn command<I: IntoIterator<Item = S>, S: Into<String>>(mut self, argv: I) -> Self {
        self.argv = argv.into_iter().map(Into::into).collect();
        self
    }
    /// Working directory inside (default: the first read-write grant, else `/`).
    pub fn cwd(mut self, dir: impl Into<PathBuf>) -> Self {
        self.cwd = Some(dir.into());
        self
    }
    /// The command's stdin.
    pub fn stdin(mut self, s: Stdio) -> Self {
        self.stdio[0] = Some(s);
        self
    }
    /// The command's stdout.
    pub fn stdout(mut self, s: Stdio) -> Self {
        self.stdio[1] = Some(s);
        self
    }
    /// The command's stderr.
    pub fn stderr(mut self, s: Stdio) -> Self {
        self.stdio[2] = Some(s);
        self
    }
    /// Hand `fd` to the command as descriptor `target` (3 to 255). Every
    /// other descriptor beyond 0-2 is closed before the command starts.
    pub fn pass_fd(mut self, fd: impl Into<OwnedFd>, target: RawFd) -> Self {
        self.passes.push((Arc::new(fd.into()), target));
        self
    }

    /// Use this `stockade-init` helper instead of looking for one.
    pub fn helper(mut self, path: impl Into<PathBuf>) -> Self {
        self.helper = Some(path.into());
        self
    }

    /// Build from a TOML policy file (see [`crate::PolicyFile`]).
    pub fn from_toml(path: impl AsRef<Path>) -> Result<Self, Error> {
        policy::PolicyFile::from_toml_file(path.as_ref())?.to_sandbox()
    }

    /// Start the command; stdio defaults to inherit.
    pub fn spawn(&self) -> Result<Child, Error> {
        self.spawn_with([Stdio::Inherit, Stdio::Inherit, Stdio::Inherit])
    }

    /// Run to completion with stdin from `/dev/null` and stdout/stderr captured.
    pub fn output(&self) -> Result<Output, Error> {
        self.spawn_with([Stdio::Null, Stdio::Piped, Stdio::Piped])?
            .wait_with_output()
    }

    /// Run to completion with inherited stdio.
    pub fn status(&self) -> Result<ExitStatus, Error> {
        self.spawn_with([Stdio::Inherit, Stdio::Inherit, Stdio::Inherit])?
            .wait()
    }

    /// Like [`Sandbox::status`], for small single-threaded programs such as
    /// the `stockade` CLI: the helper's outer half (clone into new namespaces,
    /// id maps) runs in this process instead of a freshly started helper,
    /// saving one program start. A process with more than one thread gets the
    /// helper as usual, since cloning a threaded process is unsafe.
    pub fn status_in_this_process(&self) -> Result<ExitStatus, Error> {
        self.spawn_in_this_process()?.wait()
    }

    /// [`Sandbox::spawn`] done as [`Sandbox::status_in_this_process`] does
    /// it, for a caller that needs the [`Child`] afterwards (its events or
    /// workspace diff).
    pub fn spawn_in_this_process(&self) -> Result<Child, Error> {
        self.spawn_mode([Stdio::Inherit, Stdio::Inherit, Stdio::Inherit], true)
    }

    /// Keep one sandbox for this policy's identity (inside and host ids)
    /// pre-warmed: a helper already started, its init already in fresh
    /// namespaces with its id maps written. The next spawn with the same
    /// identity takes it and another is prepared in the background, so the
    /// helper's start and the namespace creation leave the caller's path.
    /// Every sandbox is still used for one command only. Costs one idle
    /// helper process and one set of empty namespaces while the host lives.
    pub fn prewarm(&self) -> Result<(), Error> {
        let identity = self.identity()?;
        let helper = helper::find_helper(self.helper.as_deref())?;
        launch::prewarm::enable(&helper, &identity)
    }

    /// Build this sandbox once and keep it as a warm [`Session`]: namespaces,
    /// root, Landlock ruleset, seccomp program and (with [`Net::Proxy`]) the
    /// proxy are set up now, and the sandbox's init stays as the session's
    /// PID 1, forking each [`Session::command`] inside the same sandbox.
    ///
    /// The sandbox's command (if any) is ignored; its environment, working
    /// directory, timeout, kill grace, stdio and pass-throughs become every
    /// command's defaults. A pre-warmed helper ([`Sandbox::prewarm`]) is
    /// used when one is ready. See [`crate::session`] for what commands
    /// share and how a session ends.
    ///
    /// ```
    /// use std::time::Duration;
    /// use stockade::{Fs, Sandbox};
    /// # fn main() -> Result<(), stockade::Error> {
    /// let session = Sandbox::new().fs(Fs::minimal()).session()?;
    /// let out = session
    ///     .command(["sh", "-c", "echo $GREETING; cat /proc/1/comm"])
    ///     .env("GREETING", "hello")
    ///     .cwd("/tmp")
    ///     .timeout(Duration::from_secs(30))
    ///     .output()?;
    /// assert!(out.status.success());
    /// assert_eq!(out.stdout, b"hello\nstockade-init\n");
    /// # Ok(()) }
    /// ```
    pub fn session(&self) -> Result<Session, Error> {
        let relay = self.agent_relay()?;
        let mut plan = self.plan_to_start(true, relay.as_ref().map(|r| r.path()))?;
        // Pass-throughs travel with each command, not with the sandbox.
        plan.pass_fds.clear();
        let mut defaults = session::Defaults {
            env: plan.env.clone(),
            cwd: plan.cwd.clone(),
            timeout: self.timeout,
            grace: self.kill_grace,
            stdio: self.stdio.clone(),
            passes: self.passes.clone(),
            pipe_owner: plan
                .idmap_grants
                .then_some((plan.identity.host_uid, plan.identity.host_gid)),
            attest: Default::default(),
            tmpdirs: policy::tmpdir::WritableDirs::of(
                plan.base.iter().chain(&plan.mounts),
                disk_owner(&plan.identity, plan.idmap_grants),
            ),
        };
        let proxy_policy = self.proxy_policy()?;
        // The init ignores a session's own stdio: /dev/null fills the slots.
        let mut stdio = (0..3).map(dev_null).collect::<Result<Vec<_>, _>>()?;
        let (cgroup, limits_level) = self.limit_cgroup(&mut plan, &mut stdio)?;
        defaults.attest = self.attest_expected(&plan, limits_level);
        let mut launched =
            launch::launch(&plan, &helper::find_helper(self.helper.as_deref())?, stdio)
                .map_err(|e| self.session_error(e))?;
        launched.cgroup = cgroup;
        launched.limits_level = limits_level;
        let log = self.event_log(&plan);
        let events = session::SessionEvents {
            log: log.clone(),
            refusals: plan.refusals.clone().filter(|_| plan.notify),
            overlays: crate::fs::uppers(&plan.mounts, std::mem::take(&mut launched.uppers)),
        };
        let served = match proxy_policy {
            None => None,
            Some(policy) => {
                let listeners = std::mem::take(&mut launched.listeners);
                match crate::proxy::serve(listeners, policy, Some(self.proxy_sink_into(&log))) {
                    Ok(served) => Some(served),
                    Err(e) => {
                        // Closing the channel ends the sandbox.
                        drop(launched.control);
                        launched.keeper.reap_soon();
                        return Err(proxy_error(e));
                    }
                }
            }
        };
        let mut session = Session::new(launched, defaults, served, events)?;
        if let Some(mut relay) = relay {
            relay.serve()?;
            session.keep_agent_relay(relay);
        }
        Ok(session)
    }

    fn identity(&self) -> Result<wire::Identity, Error> {
        let caller_uid = nix::unistd::geteuid().as_raw();
        let caller_gid = nix::unistd::getegid().as_raw();
        let root = caller_uid == 0;
        if root && self.root_host_id == 0 {
            return Err(Error::policy(
                "root_host_id 0 would make the sandbox root on the host",
            ));
        }
        let (host_uid, host_gid) = if root {
            (self.root_host_id, self.root_host_id)
        } else {
            (caller_uid, caller_gid)
        };
        Ok(wire::Identity {
            uid: self.uid.unwrap_or(caller_uid),
            gid: self.gid.unwrap_or(caller_gid),
            host_uid,
            host_gid,
        })
    }

    /// The host's record of a sandbox, for [`Child::attest`] and [`Session::attest`].
    fn attest_expected(&self, plan: &wire::Plan, level: crate::LimitsLevel) -> attest::Expected {
        let id = &plan.identity;
        let ids = attest::Ids {
            uid: id.uid,
            gid: id.gid,
            host_uid: id.host_uid,
            host_gid: id.host_gid,
        };
        attest::Expected::new(ids, &self.limits, level)
    }

    fn spawn_with(&self, defaults: [Stdio; 3]) -> Result<Child, Error> {
        self.spawn_mode(defaults, false)
    }

    /// The full mode, or (opted in, and without user namespaces) reduced mode.
    fn spawn_mode(&self, defaults: [Stdio; 3], in_process: bool) -> Result<Child, Error> {
        use crate::reduced::detect;
        if self.allow_reduced && detect::known_unavailable() {
            return self.spawn_reduced(defaults);
        }
        match self.spawn_full(defaults.clone(), in_process) {
            Err(e) if detect::is_unavailable(&e) => {
                if !self.allow_reduced {
                    return Err(detect::with_hint(e));
                }
                detect::remember_unavailable();
                self.spawn_reduced(defaults)
            }
            other => other,
        }
    }

    fn spawn_full(&self, defaults: [Stdio; 3], in_process: bool) -> Result<Child, Error> {
        let started = Instant::now();
        let mut relay = self.agent_relay()?;
        let mut plan = self.plan_to_start(false, relay.as_ref().map(|r| r.path()))?;
        // Landlock's denials, where the kernel reports them: the reader
        // must listen before the command runs.
        plan.hold_reaping = self.landlock_events && crate::events::landlock::visible();
        let owner = plan
            .idmap_grants
            .then_some((plan.identity.host_uid, plan.identity.host_gid));
        let (mut stdio, pipes) = self.stdio_fds(defaults, owner)?;
        let proxy_policy = self.proxy_policy()?;
        let (cgroup, limits_level) = self.limit_cgroup(&mut plan, &mut stdio)?;
        let mut launched = if in_process && self.helper.is_none() && launch::single_threaded() {
            launch::launch_in_process(&plan, stdio)?
        } else {
            launch::launch(&plan, &helper::find_helper(self.helper.as_deref())?, stdio)?
        };
        launched.cgroup = cgroup;
        launched.limits_level = limits_level;
        let listeners = std::mem::take(&mut launched.listeners);
        let uppers = crate::fs::uppers(&plan.mounts, std::mem::take(&mut launched.uppers));
        let syscall_listener = launched.syscall_listener.take();
        let (mut child, log) = self.new_child(&plan, launched, pipes, started, uppers);
        child.expect(self.attest_expected(&plan, limits_level));
        if let Some(mut relay) = relay.take() {
            relay.serve()?;
            child.keep_agent_relay(relay);
        }
        if let Some(listener) = syscall_listener {
            watch_refusals(listener, &plan, &log, None)?;
        }
        if plan.hold_reaping {
            // The init holds the command unreaped until our ack.
            let creator = crate::events::landlock::child_host_pid(child.pid(), None);
            let watch = creator.and_then(|pid| crate::events::landlock::watch(pid, &log, None));
            child.ack_start(watch)?;
        }
        if let Some(policy) = proxy_policy {
            let served = crate::proxy::serve(listeners, policy, Some(self.proxy_sink_into(&log)))
                .map_err(proxy_error)?;
            child.attach_proxy(served);
        }
        Ok(child)
    }

    /// The command's stdin, stdout and stderr (this sandbox's choice, else
    /// `defaults`) and the pass-throughs, as the descriptors the init
    /// installs, and the caller's ends of the pipes. `owner`: the host ids
    /// anonymous pipes are handed to (see `hand_pipe_to`).
    fn stdio_fds(
        &self,
        defaults: [Stdio; 3],
        owner: Option<(u32, u32)>,
    ) -> Result<(Vec<OwnedFd>, [Option<File>; 3]), Error> {
        let [d0, d1, d2] = defaults;
        let choose = |i: usize, d: Stdio| self.stdio[i].clone().unwrap_or(d);
        let (in_child, in_host) = connect(choose(0, d0), 0)?;
        let (out_child, out_host) = connect(choose(1, d1), 1)?;
        let (err_child, err_host) = connect(choose(2, d2), 2)?;
        let mut fds = vec![in_child, out_child, err_child];
        if let Some((uid, gid)) = owner {
            for fd in &fds {
                hand_pipe_to(fd, uid, gid);
            }
        }
        for (fd, _) in &self.passes {
            fds.push(fd.try_clone()?);
        }
        Ok((fds, [in_host, out_host, err_host]))
    }

    /// The handle on a started sandbox, and its event log with the start
    /// recorded. From here on, an error drops the child, which kills the
    /// sandbox.
    fn new_child(
        &self,
        plan: &wire::Plan,
        launched: launch::Launched,
        pipes: [Option<File>; 3],
        started: Instant,
        uppers: Vec<crate::fs::Upper>,
    ) -> (Child, Arc<crate::events::Log>) {
        let log = self.event_log(plan);
        log.push(
            None,
            crate::EventKind::Start {
                argv: plan.argv.clone(),
            },
        );
        let child = Child::new(launched, pipes, started, log.clone(), uppers);
        (child, log)
    }

    /// A new sandbox's event log; notes it when refused syscalls cannot be
    /// recorded.
    fn event_log(&self, plan: &wire::Plan) -> Arc<crate::events::Log> {
        let log = crate::events::Log::new(self.event_sink.clone().map(|s| s.0));
        if self.syscall_events && !plan.notify {
            if let Some(Err(why)) = plan
                .refusals
                .as_deref()
                .map(crate::events::syscalls::usable)
            {
                log.push(None, crate::EventKind::Notice { detail: why });
            }
        }
        log
    }

    /// The proxy's event sink: into the sandbox's log, and to the caller's
    /// proxy callback if there is one.
    fn proxy_sink_into(&self, log: &Arc<crate::events::Log>) -> crate::proxy::EventSink {
        let log = log.clone();
        let user = self.proxy_sink.clone();
        Arc::new(move |e: &crate::proxy::ProxyEvent| {
            log.push(None, crate::EventKind::Proxy { proxy: e.clone() });
            if let Some(u) = &user {
                (u.0)(e);
            }
        })
    }

    /// Check the whole policy now, as `spawn` would (paths exist, patterns,
    /// limits, identity), without starting anything; the command itself
    /// is not required. Bindings call it when a policy is built, so a bad
    /// argument fails there rather than at the first run.
    pub fn validate(&self) -> Result<(), Error> {
        self.plan_for(true).map(|_| ())
    }

    /// Validate the policy and compute everything the helper needs, for a
    /// command or for a session (no command; see [`wire::Plan::session`]),
    /// without creating anything on the host.
    pub(crate) fn plan_for(&self, session: bool) -> Result<wire::Plan, Error> {
        self.plan_with(session, None, false)
    }

    /// The plan of a sandbox about to start: the ssh-agent socket to bind is
    /// `agent_src` when given (a root caller's relay), and presets create
    /// missing caches in persist mode.
    fn plan_to_start(&self, session: bool, agent_src: Option<&Path>) -> Result<wire::Plan, Error> {
        self.plan_with(session, agent_src, true)
    }

    fn plan_with(
        &self,
        session: bool,
        agent_src: Option<&Path>,
        create_caches: bool,
    ) -> Result<wire::Plan, Error> {
        self.proxy_policy()?;
        if !session && (self.argv.is_empty() || self.argv[0].is_empty()) {
            return Err(Error::policy("no command given"));
        }
        let additions = self.additions(agent_src, create_caches)?;
        let mut fs = self.fs.clone();
        for m in additions.mounts.iter().cloned() {
            // The caller's own grant of the same path wins, and a fresh
            // cache is not made inside one: its mount point would be created
            // in the host directory behind the grant.
            let fresh = matches!(m, policy::Mount::Tmpfs { .. });
            let covered = fs
                .mounts()
                .iter()
                .any(|g| g.dst() == m.dst() || (fresh && m.dst().starts_with(g.dst())));
            if !covered {
                fs = fs.mount(m);
            }
        }
        let fs = fs.validated()?;
        let git = crate::fs::git::plan(&fs, self.git)?;
        let fs = git.grants.into_iter().fold(fs, Fs::mount).validated()?;
        let identity = self.identity()?;
        let root = nix::unistd::geteuid().is_root();
        let (uid, gid) = (identity.uid, identity.gid);
        check_hostname(&self.hostname)?;
        check_pass_targets(&self.passes)?;
        let cwd = self
            .cwd
            .clone()
            .or_else(|| fs.first_rw_dst().map(Path::to_path_buf))
            .unwrap_or_else(|| "/".into());
        policy::check_cwd(&cwd)?;
        if let Some(t) = self.timeout {
            policy::check_timeout(t)?;
        }
        let base = plan::base(uid, gid, &RealHost);
        check_no_grant_through_symlink(&fs, &base)?;
        let mut mounts = plan::rest(&fs, &self.hostname);
        mounts.extend(git.pins);
        let programs = crate::seccomp::programs_cached(&self.syscalls).map_err(|e| match e {
            crate::seccomp::Error::UnknownSyscall(_) => Error::policy(e.to_string()),
            _ => Error::Setup(crate::error::SetupFailure {
                layer: Layer::Seccomp,
                step: "compile the filter".into(),
                errno: 0,
                detail: e.to_string(),
            }),
        })?;
        let notify =
            self.syscall_events && crate::events::syscalls::usable(&programs.errno).is_ok();
        let filter = if notify {
            &programs.notify
        } else {
            &programs.errno
        };
        let proxy = matches!(self.net, Net::Proxy(_));
        let landlock = crate::landlock::Settings {
            required: self.require_landlock,
            // Only the proxy's ports, explicit and captured (proxy mode), or
            // nothing at all.
            tcp_connect: (!self.loopback_tcp).then(|| {
                if proxy {
                    crate::proxy::listen::PORTS.to_vec()
                } else {
                    Vec::new()
                }
            }),
            withhold: self.landlock_withhold.clone(),
        };
        let plan = wire::Plan {
            argv: self.argv.clone(),
            env: self.environment(
                uid,
                &additions,
                policy::tmpdir::WritableDirs::of(
                    base.iter().chain(&mounts),
                    disk_owner(&identity, root),
                ),
            ),
            cwd: cwd.to_string_lossy().into_owned(),
            hostname: self.hostname.clone(),
            identity,
            base,
            idmap_grants: root,
            mounts,
            timeout_ms: self.timeout.map(|t| t.as_millis().max(1) as u64),
            grace_ms: self.kill_grace.as_millis() as u64,
            pass_fds: self.passes.iter().map(|&(_, target)| target).collect(),
            filter: filter.iter().map(crate::seccomp::pack).collect(),
            notify,
            refusals: Some(programs.errno.clone()),
            // Decided at spawn (`spawn_mode`), where the audit reader starts.
            hold_reaping: false,
            landlock,
            proxy_listeners: proxy,
            session,
            cgroup_procs: 0,
            nproc: None,
            reduced: None,
        };
        let size = serde_json::to_vec(&plan)
            .map(|b| b.len())
            .unwrap_or(usize::MAX);
        if size > wire::MAX_MESSAGE {
            return Err(Error::policy(format!(
                "the policy is too large ({size} bytes encoded, limit {} KiB): grant fewer paths or set fewer variables",
                wire::MAX_MESSAGE >> 10
            )));
        }
        Ok(plan)
    }

    /// The compiled proxy policy in proxy mode; invalid patterns are policy
    /// errors before anything starts.
    fn proxy_policy(&self) -> Result<Option<Arc<crate::proxy::policy::Policy>>, Error> {
        match &self.net {
            Net::None => Ok(None),
            Net::Proxy(p) => crate::proxy::policy::Policy::new(p)
                .map(|p| Some(Arc::new(p)))
                .map_err(|e| Error::policy(e.to_string())),
        }
    }

    /// The sandbox's cgroup when limits are set (None without: no cgroup, no
    /// cost), with its `cgroup.procs` files appended to `fds` and counted in
    /// `plan` so the outer half moves the init in before releasing it. When
    /// no cgroup can be made and only `pids` is asked for, `RLIMIT_NPROC` in
    /// the last hop enforces it instead (per user namespace since Linux 5.14,
    /// so it counts only the sandbox's processes); any other limit fails closed.
    fn limit_cgroup(
        &self,
        plan: &mut wire::Plan,
        fds: &mut Vec<OwnedFd>,
    ) -> Result<(Option<crate::cgroup::SandboxCgroup>, crate::LimitsLevel), Error> {
        if self.limits.is_empty() {
            return Ok((None, crate::LimitsLevel::None));
        }
        let cg = match crate::cgroup::create_for(&self.limits) {
            Ok(cg) => cg,
            Err(Error::Unsupported { .. })
                if self.limits.memory.is_none()
                    && self.limits.cpu_millis.is_none()
                    && nproc_counts_per_user_namespace() =>
            {
                plan.nproc = self.limits.pids;
                return Ok((None, crate::LimitsLevel::Rlimit));
            }
            Err(e) => return Err(e),
        };
        let level = cg.level();
        for dir in cg.paths() {
            let procs = dir.join("cgroup.procs");
            let f = std::fs::OpenOptions::new()
                .write(true)
                .open(&procs)
                .map_err(|e| {
                    Error::Setup(crate::error::SetupFailure {
                        layer: Layer::Cgroup,
                        step: format!("open {}", procs.display()),
                        errno: e.raw_os_error().unwrap_or(0),
                        detail: e.to_string(),
                    })
                })?;
            fds.push(f.into());
            plan.cgroup_procs += 1;
        }
        Ok((Some(cg), level))
    }

    /// What the presets and the ssh-agent passthrough add to the caller's
    /// own grants and variables.
    fn additions(&self, agent_src: Option<&Path>, create_caches: bool) -> Result<Additions, Error> {
        let mut add = Additions::default();
        let home = self.preset_home.clone().or_else(|| {
            std::env::var_os("HOME")
                .map(PathBuf::from)
                .filter(|h| h.is_absolute())
        });
        if let (false, Some(home)) = (self.presets.is_empty(), home) {
            let caller_path = std::env::var("PATH").ok();
            let var = |k: &str| std::env::var(k).ok();
            let caller = policy::preset::Caller {
                home: &home,
                path: caller_path.as_deref(),
                var: &var,
                create_caches,
            };
            let x = policy::preset::expand(&self.presets, self.cache, &caller)?;
            add.mounts = x.mounts;
            add.env = x.env;
            add.path = x.path;
        }
        if self.ssh_agent {
            let src = match agent_src {
                Some(p) => p.to_path_buf(),
                None => crate::ssh_agent::caller_socket()?,
            };
            add.mounts.push(policy::Mount::ReadOnly {
                src,
                dst: crate::ssh_agent::INSIDE_SOCKET.into(),
            });
        }
        Ok(add)
    }

    /// For a root caller with [`Sandbox::ssh_agent`]: the relay whose socket
    /// is bound in (see [`crate::ssh_agent`]).
    fn agent_relay(&self) -> Result<Option<crate::ssh_agent::Relay>, Error> {
        if !self.ssh_agent || !nix::unistd::geteuid().is_root() {
            return Ok(None);
        }
        let upstream = crate::ssh_agent::caller_socket()?;
        crate::ssh_agent::Relay::bind(&upstream).map(Some)
    }

    /// A safe base set, then the presets' variables, then pass-throughs,
    /// the ssh-agent's socket, and explicit values. `TMPDIR` always ends up
    /// naming a directory writable inside (see [`policy::tmpdir`]).
    fn environment(
        &self,
        uid: u32,
        add: &Additions,
        tmpdirs: policy::tmpdir::WritableDirs,
    ) -> Vec<(String, String)> {
        let user = if uid == 0 { "root" } else { "sandbox" };
        let path = add
            .path
            .iter()
            .map(|p| p.to_string_lossy().into_owned())
            .chain([DEFAULT_PATH.to_string()])
            .collect::<Vec<_>>()
            .join(":");
        let mut env: Vec<(String, String)> = vec![
            ("PATH".into(), path),
            ("HOME".into(), "/tmp".into()),
            ("TMPDIR".into(), "/tmp".into()),
            ("USER".into(), user.into()),
            ("LOGNAME".into(), user.into()),
            ("SHELL".into(), "/bin/sh".into()),
        ];
        if matches!(self.net, Net::Proxy(_)) {
            env.extend(
                proxy_environment()
                    .into_iter()
                    .map(|(k, v)| (k.to_string(), v)),
            );
        }
        let mut set = |k: &str, v: String| {
            env.retain(|(ek, _)| ek != k);
            env.push((k.to_string(), v));
        };
        for (k, v) in &add.env {
            set(k, v.clone());
        }
        for k in SAFE_ENV
            .iter()
            .copied()
            .chain(self.pass_env.iter().map(String::as_str))
        {
            if let Ok(v) = std::env::var(k) {
                set(k, v);
            }
        }
        if self.ssh_agent {
            set("SSH_AUTH_SOCK", crate::ssh_agent::INSIDE_SOCKET.into());
        }
        for (k, v) in &self.env {
            set(k, v.clone());
        }
        tmpdirs.fix(&mut env);
        env
    }
}

/// The on-disk ids that appear as the sandbox's own user and group in its
/// grants: the inside ids through a root caller's idmapped grants, the
/// caller's own ids otherwise.
fn disk_owner(id: &wire::Identity, idmapped: bool) -> (u32, u32) {
    if idmapped {
        (id.uid, id.gid)
    } else {
        (id.host_uid, id.host_gid)
    }
}

/// Grants and variables added to the caller's own by presets and the
/// ssh-agent passthrough.
#[derive(Debug, Default)]
struct Additions {
    mounts: Vec<policy::Mount>,
    env: Vec<(String, String)>,
    /// Directories put on `PATH` before the system ones.
    path: Vec<PathBuf>,
}

/// Linux 5.14+ counts `RLIMIT_NPROC` per user namespace (ucounts): a limit
/// set inside the sandbox counts its processes, not all of the caller's.
pub(crate) fn nproc_counts_per_user_namespace() -> bool {
    let uts = nix::sys::utsname::uname();
    let release = uts
        .as_ref()
        .map(|u| u.release().to_string_lossy().into_owned());
    let mut parts = release.as_deref().unwrap_or("").split(['.', '-']);
    let major: u32 = parts.next().and_then(|p| p.parse().ok()).unwrap_or(0);
    let minor: u32 = parts.next().and_then(|p| p.parse().ok()).unwrap_or(0);
    (major, minor) >= (5, 14)
}

fn proxy_error(e: std::io::Error) -> Error {
    Error::Setup(crate::error::SetupFailure {
        layer: Layer::Proxy,
        step: "serve the proxy listeners".into(),
        errno: e.raw_os_error().unwrap_or(0),
        detail: e.to_string(),
    })
}

/// What points tools at the proxy in proxy mode. Advisory only: the network
/// namespace (loopback only) and Landlock (only the proxy's ports) are what
/// enforce; these just make well-behaved clients work without configuration.
fn proxy_environment() -> Vec<(&'static str, String)> {
    use crate::proxy::listen::{HTTP_PORT, SOCKS_PORT};
    proxy_environment_at(HTTP_PORT, SOCKS_PORT)
}

/// [`proxy_environment`] for a proxy on `127.0.0.1` at these ports.
fn proxy_environment_at(http_port: u16, socks_port: u16) -> Vec<(&'static str, String)> {
    let http = format!("http://127.0.0.1:{http_port}");
    let socks = format!("socks5h://127.0.0.1:{socks_port}");
    let no_proxy = "localhost,127.0.0.1,::1".to_string();
    let mut env = Vec::new();
    for (upper, lower, value) in [
        ("HTTP_PROXY", "http_proxy", &http),
        ("HTTPS_PROXY", "https_proxy", &http),
        ("ALL_PROXY", "all_proxy", &socks),
        ("NO_PROXY", "no_proxy", &no_proxy),
    ] {
        env.push((upper, value.clone()));
        env.push((lower, value.clone()));
    }
    // npm, yarn (classic and berry), pip, and Node's built-in fetch (Node 24+).
    for k in [
        "npm_config_proxy",
        "npm_config_https_proxy",
        "YARN_HTTP_PROXY",
        "YARN_HTTPS_PROXY",
    ] {
        env.push((k, http.clone()));
    }
    env.push(("npm_config_noproxy", no_proxy.clone()));
    env.push(("PIP_PROXY", http.clone()));
    env.push(("NODE_USE_ENV_PROXY", "1".into()));
    env
}

/// `/lib` and friends are symlinks inside (merged-/usr hosts): a grant there
/// would be mounted through the link, so it is refused with the real path.
fn check_no_grant_through_symlink(fs: &Fs, ops: &[plan::MountOp]) -> Result<(), Error> {
    for op in ops {
        if let plan::MountOp::Symlink { target, dst } = op {
            if let Some(m) = fs.mounts().iter().find(|m| m.dst().starts_with(dst)) {
                return Err(Error::policy(format!(
                    "mount destination {} goes through {}, a symlink to {} inside the sandbox; use the real path",
                    m.dst().display(),
                    dst.display(),
                    target.display()
                )));
            }
        }
    }
    Ok(())
}

/// Targets are distinct and in `3..HIGH_FD` (0-2 are stdio; sources are moved
/// above `HIGH_FD` inside so the last hop's `dup2`s cannot clobber them).
pub(crate) fn check_pass_targets(passes: &[(Arc<OwnedFd>, RawFd)]) -> Result<(), Error> {
    let high = launch::exec::HIGH_FD;
    let mut seen = std::collections::HashSet::new();
    for &(_, t) in passes {
        if !(3..high).contains(&t) || !seen.insert(t) {
            return Err(Error::policy(format!(
                "pass-through descriptor {t}: targets must be distinct and between 3 and {}",
                high - 1
            )));
        }
    }
    Ok(())
}

fn check_hostname(h: &str) -> Result<(), Error> {
    let ok = !h.is_empty()
        && h.len() <= 64
        && h.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
    if ok {
        Ok(())
    } else {
        Err(Error::policy(format!(
            "invalid hostname `{h}`: use 1-64 letters, digits, `-` or `.`"
        )))
    }
}

/// Turn a [`Stdio`] choice into (descriptor for the command, host end if piped).
pub(crate) fn connect(s: Stdio, which: i32) -> Result<(OwnedFd, Option<File>), Error> {
    Ok(match s {
        // A closed standard descriptor in the caller becomes /dev/null inside.
        Stdio::Inherit => (dup_std(which).or_else(|_| dev_null(which))?, None),
        Stdio::Null => (dev_null(which)?, None),
        Stdio::Piped => {
            let (r, w) =
                nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(std::io::Error::from)?;
            if which == 0 {
                (r, Some(File::from(w)))
            } else {
                (w, Some(File::from(r)))
            }
        }
        Stdio::Fd(fd) => (fd.try_clone()?, None),
    })
}

fn dup_std(which: i32) -> std::io::Result<OwnedFd> {
    // SAFETY: 0, 1 and 2 are the process's standard descriptors; we only borrow
    // them long enough to duplicate.
    let fd = unsafe { std::os::fd::BorrowedFd::borrow_raw(which) };
    fd.try_clone_to_owned()
}

fn dev_null(which: i32) -> std::io::Result<OwnedFd> {
    let f = std::fs::OpenOptions::new()
        .read(which == 0)
        .write(which != 0)
        .open("/dev/null")?;
    Ok(f.into())
}

/// For a root caller the sandbox runs as an unprivileged host id, so reopening
/// its stdio through `/dev/stdout` (`/proc/self/fd/1`) would fail on a pipe
/// owned by root with mode 0600. Anonymous pipes are handed to the sandbox's
/// host id; ttys and files are left alone (changing them would alter host state).
pub(crate) fn hand_pipe_to(fd: &OwnedFd, uid: u32, gid: u32) {
    use std::os::fd::AsRawFd;
    let link = std::fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd()));
    if link.is_ok_and(|l| l.to_string_lossy().starts_with("pipe:")) {
        let _ = std::os::unix::fs::fchown(fd, Some(uid), Some(gid));
    }
}

/// Hand a command's seccomp listener to the host's syscall supervisor. If
/// that fails, the command's refused syscalls would wait forever: an error
/// (the caller kills the sandbox).
pub(crate) fn watch_refusals(
    listener: OwnedFd,
    plan: &wire::Plan,
    log: &Arc<crate::events::Log>,
    command: Option<u64>,
) -> Result<(), Error> {
    let answers = plan.refusals.clone().ok_or_else(|| {
        Error::Helper("a seccomp listener came for a plan without its errno program".into())
    })?;
    crate::events::syscalls::watch(listener, answers, log.clone(), command).map_err(|e| {
        Error::Setup(crate::error::SetupFailure {
            layer: Layer::Seccomp,
            step: "supervise refused syscalls (epoll, thread)".into(),
            errno: e.raw_os_error().unwrap_or(0),
            detail: e.to_string(),
        })
    })
}
