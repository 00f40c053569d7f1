//! The creation storm (issue 6, "No leftovers"): 2,000 sandboxes through the
//! Rust API in this one process, mixing successes, setup failures, timeouts,
//! kills mid-run, dropped handles, leftover background processes, concurrent
//! spawns, warm sessions and the egress proxy; then the caller and the host
//! must look exactly as before:
//!
//! - no extra descriptors in this process (count and the set of targets);
//! - no child processes of this process (alive or zombie);
//! - no host process left from a sandbox (every sandboxed argv carries a
//!   marker unique to this run; helpers and sandbox inits (`stockade-init`)
//!   are found as processes of this test binary);
//! - no extra mounts in this process's mount namespace, no new stockade
//!   entries in `/tmp`;
//! - no new cgroups under this process's own cgroups (v1 hierarchies and the
//!   v2/unified one).
//!
//! Run alone, as root:
//! `cargo test -p stockade --test storm -- --nocapture`.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use common::{host_pids_with_cmdline, require_root, text, Workspace};
use stockade::{Error, Fs, Layer, Limits, Net, ProxyPolicy, Sandbox, Session, Stdio};

/// One-shot sandboxes (sessions come on top, see `SESSIONS`).
const TOTAL: usize = 2000;
/// Of those, the first run one after another on one thread ...
const SEQUENTIAL: usize = 400;
/// ... and the rest on this many threads at once.
const THREADS: usize = 8;
/// Warm sessions, each running several commands; half closed, half dropped.
const SESSIONS: usize = 16;
/// Threads running the sessions, alongside the concurrent one-shot ones.
const SESSION_THREADS: usize = 2;
/// The whole storm must end within this (a hang is a failure, not a wait).
const WATCHDOG: Duration = Duration::from_secs(300);
/// Reaping (the helper's owner, namespace teardown, the proxy's tasks) is
/// asynchronous: the "after" checks retry for this long.
const SETTLE: Duration = Duration::from_secs(5);

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
enum Kind {
    /// `/bin/true`, output captured.
    True,
    /// `sh -c 'echo x'`, output captured and checked.
    Echo,
    /// A `--ro` source that does not exist: a policy error before launch.
    BadRo,
    /// An invalid hostname: a policy error before launch.
    BadHostname,
    /// A program that does not exist inside: 127 after launch.
    NotFound,
    /// A program that is not executable: 126 after launch.
    NotExec,
    /// `sleep 5` with a 50-100 ms timeout.
    Timeout,
    /// `spawn()`, a few ms, `kill()`, `wait()`.
    Kill,
    /// `spawn()`, a few ms, drop the handle without waiting.
    Drop,
    /// `sleep 100 &` left behind by a command that exits at once.
    Background,
    /// `Net::Proxy`: python urllib to a host the policy denies.
    Proxy,
    /// cgroup limits (pids, memory), when this version enforces them.
    Limited,
    /// cgroup limits that the command runs into: alternately a memory
    /// hog (OOM-killed inside its cgroup) and more processes than `pids`
    /// allows.
    LimitHit,
}

/// The mix, per 100 one-shot sandboxes. `Limited` and `LimitHit` fall back
/// to `Echo` (and are counted as such) when limits are unsupported.
const MIX: &[(Kind, usize)] = &[
    (Kind::True, 17),
    (Kind::Echo, 18),
    (Kind::BadRo, 6),
    (Kind::BadHostname, 5),
    (Kind::NotFound, 6),
    (Kind::NotExec, 5),
    (Kind::Timeout, 8),
    (Kind::Kill, 8),
    (Kind::Drop, 8),
    (Kind::Background, 8),
    (Kind::Proxy, 3),
    (Kind::Limited, 5),
    (Kind::LimitHit, 3),
];

/// Everything every job needs: the run's marker, a non-executable file,
/// whether limits work.
struct Ctx {
    /// Digits unique to this run; every sandboxed argv contains them.
    mark: String,
    noexec_dir: PathBuf,
    noexec_file: String,
    limits: bool,
}

impl Ctx {
    /// `sleep` of `secs` seconds whose argument carries the marker (so the
    /// sleep itself, not only its shell, is found on the host).
    fn sleep_arg(&self, secs: u32) -> String {
        format!("{secs}.{}", self.mark)
    }
    /// `$0` for `sh -c` scripts: carries the marker.
    fn argv0(&self) -> String {
        format!("storm-{}", self.mark)
    }
    fn sh(&self, script: &str) -> Sandbox {
        Sandbox::new().command(["sh", "-c", script, &self.argv0()])
    }
}

fn proxy_policy() -> ProxyPolicy {
    ProxyPolicy {
        allow: vec!["allowed.invalid".into()],
        ..ProxyPolicy::default()
    }
}

/// python urllib through the proxy (from the environment) to a host the
/// policy does not allow: the proxy answers 403 itself, no network needed.
const URLLIB: &str = "import sys, urllib.request\n\
try:\n    urllib.request.urlopen('http://denied.invalid/', timeout=10)\n    print('fetched')\n\
except Exception as e:\n    print('refused', e)\n";

fn limits() -> Limits {
    Limits::new().pids(64).memory(256 << 20)
}

/// What happened, for the summary.
#[derive(Default)]
struct Tally {
    counts: BTreeMap<String, usize>,
}

impl Tally {
    fn add(&mut self, k: impl Into<String>) {
        *self.counts.entry(k.into()).or_default() += 1;
    }
}

fn ms(r: std::ops::Range<u64>, i: usize) -> Duration {
    Duration::from_millis(r.start + (i as u64 * 7919) % (r.end - r.start))
}

/// Run one job; panics (with `i` and the kind) on anything unexpected.
fn run_one(ctx: &Ctx, i: usize, kind: Kind, tally: &Mutex<Tally>) {
    let note = |s: &str| tally.lock().unwrap().add(s);
    match kind {
        Kind::True => {
            let out = Sandbox::new()
                .command(["/bin/true", &ctx.argv0()])
                .output()
                .unwrap_or_else(|e| panic!("#{i} true: {e}"));
            assert!(out.status.success(), "#{i} true: {}", out.status);
            note("true");
        }
        Kind::Echo => {
            let out = ctx
                .sh("echo x")
                .output()
                .unwrap_or_else(|e| panic!("#{i} echo: {e}"));
            assert!(out.status.success(), "#{i} echo: {}", out.status);
            assert_eq!(text(&out.stdout), "x\n", "#{i} echo");
            note("echo");
        }
        Kind::BadRo => {
            let err = ctx
                .sh("echo should-not-run")
                .fs(Fs::minimal().ro(format!("/nonexistent-storm-{}-{i}", ctx.mark)))
                .output()
                .expect_err("a missing --ro source must fail");
            assert_eq!(err.exit_code(), 125, "#{i} bad ro: {err:?}");
            note("setup failure: missing --ro source");
        }
        Kind::BadHostname => {
            let err = ctx
                .sh("echo should-not-run")
                .hostname("not a hostname!")
                .output()
                .expect_err("an invalid hostname must fail");
            assert!(matches!(err, Error::Policy(_)), "#{i} hostname: {err:?}");
            note("setup failure: invalid hostname");
        }
        Kind::NotFound => {
            let err = Sandbox::new()
                .command([format!("no-such-program-{}", ctx.mark)])
                .output()
                .expect_err("a missing program must fail");
            assert_eq!(err.exit_code(), 127, "#{i} not found: {err:?}");
            note("setup failure: not found (127)");
        }
        Kind::NotExec => {
            let err = Sandbox::new()
                .fs(Fs::minimal().ro(&ctx.noexec_dir))
                .command([ctx.noexec_file.as_str(), &ctx.argv0()])
                .output()
                .expect_err("a non-executable program must fail");
            assert_eq!(err.exit_code(), 126, "#{i} not executable: {err:?}");
            note("setup failure: not executable (126)");
        }
        Kind::Timeout => {
            let t = Instant::now();
            let out = Sandbox::new()
                .command(["sleep".to_string(), ctx.sleep_arg(5)])
                .timeout(ms(50..100, i))
                .output()
                .unwrap_or_else(|e| panic!("#{i} timeout: {e}"));
            assert!(out.status.timed_out(), "#{i} timeout: {}", out.status);
            assert!(
                t.elapsed() < Duration::from_secs(3),
                "#{i}: a 100 ms timeout took {:?}",
                t.elapsed()
            );
            note("timeout");
        }
        Kind::Kill => {
            let mut child = Sandbox::new()
                .command(["sleep".to_string(), ctx.sleep_arg(5)])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap_or_else(|e| panic!("#{i} kill: spawn: {e}"));
            std::thread::sleep(ms(1..10, i));
            let t = Instant::now();
            child.kill().unwrap_or_else(|e| panic!("#{i} kill: {e}"));
            let status = child
                .wait()
                .unwrap_or_else(|e| panic!("#{i} kill: wait: {e}"));
            assert!(
                t.elapsed() < Duration::from_secs(3),
                "#{i}: wait after kill took {:?}",
                t.elapsed()
            );
            assert!(!status.success(), "#{i} kill: {status}");
            note("killed mid-run");
        }
        Kind::Drop => {
            let child = ctx
                .sh(&format!(
                    "sleep {} & sleep {}; wait",
                    ctx.sleep_arg(5),
                    ctx.sleep_arg(5)
                ))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap_or_else(|e| panic!("#{i} drop: spawn: {e}"));
            std::thread::sleep(ms(0..5, i));
            let t = Instant::now();
            drop(child);
            assert!(
                t.elapsed() < Duration::from_secs(3),
                "#{i}: drop took {:?}",
                t.elapsed()
            );
            note("dropped without waiting");
        }
        Kind::Background => {
            let out = ctx
                .sh(&format!(
                    "sleep {} & setsid sleep {} & echo started",
                    ctx.sleep_arg(100),
                    ctx.sleep_arg(100)
                ))
                .output()
                .unwrap_or_else(|e| panic!("#{i} background: {e}"));
            assert!(out.status.success(), "#{i} background: {}", out.status);
            assert_eq!(text(&out.stdout), "started\n", "#{i} background");
            note("left background processes");
        }
        Kind::Proxy => {
            let out = Sandbox::new()
                .net(Net::Proxy(proxy_policy()))
                .command(["python3", "-c", URLLIB, &ctx.argv0()])
                .timeout(Duration::from_secs(30))
                .output()
                .unwrap_or_else(|e| panic!("#{i} proxy: {e}"));
            assert!(
                out.status.success() && text(&out.stdout).starts_with("refused"),
                "#{i} proxy: {}: {} {}",
                out.status,
                text(&out.stdout),
                text(&out.stderr)
            );
            assert!(
                out.proxy_events.iter().any(|e| e.host == "denied.invalid"),
                "#{i} proxy: no event for the denied host: {:?}",
                out.proxy_events
            );
            note("proxy: denied request");
        }
        Kind::Limited if ctx.limits => {
            let out = ctx
                .sh("echo x")
                .limits(limits())
                .output()
                .unwrap_or_else(|e| panic!("#{i} limited: {e}"));
            assert!(out.status.success(), "#{i} limited: {}", out.status);
            assert_eq!(text(&out.stdout), "x\n", "#{i} limited");
            note("with cgroup limits");
        }
        Kind::Limited => run_one(ctx, i, Kind::Echo, tally),
        Kind::LimitHit if ctx.limits && (i / 100 + i) % 2 == 0 => {
            // A 256 MiB buffer under a 32 MiB limit.
            let out = ctx
                .sh("dd if=/dev/zero of=/dev/null bs=256M count=1 2>/dev/null; echo dd=$?")
                .limits(Limits::new().memory(32 << 20).pids(64))
                .timeout(Duration::from_secs(20))
                .output()
                .unwrap_or_else(|e| panic!("#{i} memory hog: {e}"));
            // dd is OOM-killed (the shell reports 137), or the whole tree is.
            assert!(
                !out.status.timed_out() && !text(&out.stdout).contains("dd=0"),
                "#{i} memory hog was not stopped: {}: {}",
                out.status,
                text(&out.stdout)
            );
            note("limit hit: memory");
        }
        Kind::LimitHit if ctx.limits => {
            let script = format!(
                "for i in $(seq 40); do sleep {} & done; wait",
                ctx.sleep_arg(5)
            );
            let out = ctx
                .sh(&script)
                .limits(Limits::new().pids(16))
                .timeout(Duration::from_millis(300))
                .output()
                .unwrap_or_else(|e| panic!("#{i} pids: {e}"));
            assert!(
                text(&out.stderr).contains("fork") || text(&out.stderr).contains("resource"),
                "#{i} pids: the limit was not hit: {}: {}",
                out.status,
                text(&out.stderr)
            );
            // The shell gives up at the failed fork (dash exits 2) or the
            // timeout ends it; the sleeps it started go with the sandbox.
            assert!(!out.status.success(), "#{i} pids: {}", out.status);
            note("limit hit: pids");
        }
        Kind::LimitHit => run_one(ctx, i, Kind::Echo, tally),
    }
}

/// A warm session running several commands of every kind; closed or
/// dropped at the end. Every fourth session uses the proxy, every third
/// has cgroup limits (when supported).
fn run_session(ctx: &Ctx, s: usize, tally: &Mutex<Tally>) {
    let note = |k: &str| tally.lock().unwrap().add(k);
    let mut sb = Sandbox::new();
    if s % 4 == 0 {
        sb = sb.net(Net::Proxy(proxy_policy()));
        note("session: with proxy");
    }
    if ctx.limits && s % 3 == 0 {
        sb = sb.limits(limits());
        note("session: with limits");
    }
    let session: Session = sb.session().unwrap_or_else(|e| panic!("session {s}: {e}"));
    let a0 = ctx.argv0();
    for round in 0..2 {
        let out = session
            .command(["sh", "-c", "echo x", &a0])
            .output()
            .unwrap_or_else(|e| panic!("session {s}: echo: {e}"));
        assert_eq!(text(&out.stdout), "x\n", "session {s}");
        let st = session
            .command(["/bin/true", &a0])
            .status()
            .unwrap_or_else(|e| panic!("session {s}: true: {e}"));
        assert!(st.success(), "session {s}: {st}");
        // Left running until the session ends.
        let out = session
            .command([
                "sh".to_string(),
                "-c".into(),
                format!("sleep {} & echo started", ctx.sleep_arg(100)),
                a0.clone(),
            ])
            .output()
            .unwrap_or_else(|e| panic!("session {s}: background: {e}"));
        assert_eq!(text(&out.stdout), "started\n", "session {s}");
        let out = session
            .command(["sleep".to_string(), ctx.sleep_arg(5)])
            .timeout(ms(50..100, s + round))
            .output()
            .unwrap_or_else(|e| panic!("session {s}: timeout: {e}"));
        assert!(out.status.timed_out(), "session {s}: {}", out.status);
        let mut c = session
            .command(["sleep".to_string(), ctx.sleep_arg(5)])
            .stdout(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("session {s}: spawn: {e}"));
        std::thread::sleep(ms(1..10, s));
        c.kill().unwrap();
        assert!(!c.wait().unwrap().success(), "session {s}: killed");
        // Dropped while running: killed at the latest when the session ends.
        let _dropped = session
            .command(["sleep".to_string(), ctx.sleep_arg(5)])
            .stdout(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("session {s}: spawn: {e}"));
        let missing = session
            .command([format!("no-such-program-{}", ctx.mark)])
            .output();
        assert!(missing.is_err(), "session {s}: {missing:?}");
        if s % 4 == 0 {
            let out = session
                .command(["python3", "-c", URLLIB, &a0])
                .output()
                .unwrap_or_else(|e| panic!("session {s}: proxy: {e}"));
            assert!(
                text(&out.stdout).starts_with("refused"),
                "session {s}: proxy: {} {}",
                text(&out.stdout),
                text(&out.stderr)
            );
        }
        note("session commands");
    }
    // Still running in the session: a background sleep, a dropped sleep.
    if s % 2 == 0 {
        session
            .close()
            .unwrap_or_else(|e| panic!("session {s}: close: {e}"));
        note("session: closed");
    } else {
        drop(session);
        note("session: dropped");
    }
}

// ---------------------------------------------------------------- snapshots

/// What a storm could leave behind, in the caller and on the host.
#[derive(Debug, PartialEq, Eq)]
struct Snapshot {
    /// Our descriptors' targets, pipe and socket inode numbers dropped.
    fds: BTreeMap<String, usize>,
    fd_count: usize,
    /// Our child processes: (pid, state, comm).
    children: Vec<(u32, char, String)>,
    /// Host processes whose argv has the run's marker, or which are a
    /// helper started from this test binary.
    host: Vec<(u32, String)>,
    mounts: usize,
    tmp: BTreeSet<String>,
    cgroups: BTreeSet<PathBuf>,
}

fn fd_targets() -> (BTreeMap<String, usize>, usize) {
    let mut map = BTreeMap::new();
    let mut n = 0;
    for e in std::fs::read_dir("/proc/self/fd").unwrap().flatten() {
        // The read_dir handle itself shows up as one more directory fd,
        // the same before and after.
        let target = std::fs::read_link(e.path())
            .map(|t| t.to_string_lossy().into_owned())
            .unwrap_or_else(|_| "?".into());
        let kind = match target.split_once(":[") {
            Some((k, _)) if k == "pipe" || k == "socket" => k.to_string(),
            _ => target,
        };
        *map.entry(kind).or_default() += 1;
        n += 1;
    }
    (map, n)
}

/// Processes whose parent is us (/proc lists thread-group leaders only, so
/// threads are not counted); zombies count.
fn children() -> Vec<(u32, char, String)> {
    let me = std::process::id();
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // pid (comm) state ppid ...: comm may contain spaces and ')'.
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
            continue;
        };
        let comm = stat[open + 1..close].to_string();
        let mut rest = stat[close + 1..].split_whitespace();
        let state = rest.next().and_then(|s| s.chars().next()).unwrap_or('?');
        if rest.next().and_then(|p| p.parse::<u32>().ok()) == Some(me) {
            out.push((pid, state, comm));
        }
    }
    out
}

/// This run's helper executable: a hard link to this test binary under a
/// name unique to the run, set as the process-wide helper path, so that
/// `/proc/<pid>/exe` tells this run's helpers and inits from everyone
/// else's. (The helper is the same program as with the default lookup,
/// which execs this test binary itself; only its path differs.)
static HELPER: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();

fn host_leftovers(mark: &str) -> Vec<(u32, String)> {
    // A helper or sandbox init runs the helper executable: this run's own
    // link to this test binary (see `HELPER`), so neither other stockade
    // users nor another run of this same test are counted. The init
    // retitles its command line to `stockade-init`, so it is found by its
    // executable, not its argv.
    let helper = HELPER.get().expect("the helper link is set up first");
    let mut pids = host_pids_with_cmdline(mark);
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        // A removed executable shows as "<path> (deleted)".
        if std::fs::read_link(format!("/proc/{pid}/exe"))
            .is_ok_and(|x| x.to_string_lossy().starts_with(&*helper.to_string_lossy()))
        {
            pids.push(pid);
        }
    }
    pids.sort_unstable();
    pids.dedup();
    pids.into_iter()
        .map(|pid| {
            let cmd = std::fs::read(format!("/proc/{pid}/cmdline"))
                .map(|c| String::from_utf8_lossy(&c).replace('\0', " "))
                .unwrap_or_default();
            (pid, cmd)
        })
        .collect()
}

fn mount_count() -> usize {
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .count()
}

/// `/tmp` entries stockade (or this test) could have created.
fn tmp_entries() -> BTreeSet<String> {
    std::fs::read_dir("/tmp")
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| {
                    let n = n.to_ascii_lowercase();
                    n.contains("stockade") || n.contains("storm") || n.contains("sandbox")
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Why a `/tmp` entry or cgroup named `name` was made by another program
/// on this host, not by this process's sandboxes; `None` if it may be ours.
/// This host is shared with people working on stockade: its unit tests and
/// benchmark scripts use names of their own, which the library never uses,
/// and a sandbox cgroup is named `stockade-<pid of the caller>-...`, so one
/// named after another process is not ours.
fn foreign(name: &str) -> Option<String> {
    for (prefix, who) in [
        ("stockade-test-", "the cgroup module's unit tests"),
        ("stockade-cgfix-", "the cgroup module's unit tests"),
        ("stockade-session-bench.", "benches/session.sh"),
        ("stockade-demo-", "the compat tests' Python package"),
    ] {
        if name.starts_with(prefix) {
            return Some(who.to_string());
        }
    }
    // A sandbox's cgroup is named after the process that asked for the
    // sandbox (the positive control checks that ours are recognized).
    let pid: u32 = name
        .strip_prefix("stockade-")?
        .split('-')
        .next()?
        .parse()
        .ok()?;
    (pid != std::process::id()).then(|| format!("a sandbox cgroup of process {pid}, not this one"))
}

/// The directories of our own cgroups (each v1 hierarchy and the v2 or
/// unified one), from `/proc/self/cgroup`.
fn own_cgroup_dirs() -> Vec<PathBuf> {
    let root = Path::new("/sys/fs/cgroup");
    let mut dirs = Vec::new();
    let text = std::fs::read_to_string("/proc/self/cgroup").unwrap();
    for line in text.lines() {
        let mut parts = line.splitn(3, ':');
        let (Some(_), Some(ctrl), Some(path)) = (parts.next(), parts.next(), parts.next()) else {
            continue;
        };
        let rel = path.trim_start_matches('/');
        let mounts: Vec<PathBuf> = if ctrl.is_empty() {
            // v2: pure (at the root) or hybrid (`unified`).
            if root.join("cgroup.controllers").exists() {
                vec![root.to_path_buf()]
            } else {
                vec![root.join("unified")]
            }
        } else {
            let mut m = vec![root.join(ctrl.trim_start_matches("name="))];
            m.extend(
                ctrl.split(',')
                    .map(|c| root.join(c.trim_start_matches("name="))),
            );
            m
        };
        for m in mounts {
            let d = m.join(rel);
            if d.is_dir() && !dirs.contains(&d) {
                dirs.push(d);
            }
        }
    }
    dirs
}

/// Every cgroup below our own ones (the whole subtree).
fn cgroups() -> BTreeSet<PathBuf> {
    fn walk(d: &Path, out: &mut BTreeSet<PathBuf>) {
        let Ok(rd) = std::fs::read_dir(d) else { return };
        for e in rd.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                out.insert(e.path());
                walk(&e.path(), out);
            }
        }
    }
    let mut out = BTreeSet::new();
    for d in own_cgroup_dirs() {
        walk(&d, &mut out);
    }
    out
}

impl Snapshot {
    fn take(mark: &str) -> Self {
        let (fds, fd_count) = fd_targets();
        Snapshot {
            fds,
            fd_count,
            children: children(),
            host: host_leftovers(mark),
            mounts: mount_count(),
            tmp: tmp_entries(),
            cgroups: cgroups(),
        }
    }

    /// What differs from `before`, one line per kind of leftover.
    fn leftovers(&self, before: &Snapshot) -> Vec<String> {
        let mut out = Vec::new();
        if self.fd_count != before.fd_count || self.fds != before.fds {
            out.push(format!(
                "fds: {} -> {}; before {:?}, after {:?}",
                before.fd_count, self.fd_count, before.fds, self.fds
            ));
        }
        if !self.children.is_empty() {
            out.push(format!(
                "child processes (pid, state, comm): {:?}",
                self.children
            ));
        }
        if !self.host.is_empty() {
            out.push(format!("host processes: {:?}", self.host));
        }
        if self.mounts != before.mounts {
            out.push(format!("mounts: {} -> {}", before.mounts, self.mounts));
        }
        // Only new entries are leftovers (another program removing its own
        // is none of ours), and only those no other program made.
        let tmp: Vec<_> = self
            .tmp
            .difference(&before.tmp)
            .filter(|n| foreign(n).is_none())
            .collect();
        if !tmp.is_empty() {
            out.push(format!("/tmp: new {tmp:?}"));
        }
        let cgroups: Vec<_> = self
            .cgroups
            .difference(&before.cgroups)
            .filter(|c| foreign(&c.file_name().unwrap().to_string_lossy()).is_none())
            .collect();
        if !cgroups.is_empty() {
            out.push(format!(
                "cgroups: new {cgroups:?} (if another stockade program ran sandboxes with \
                 limits on this host at the same time, rerun this test alone)"
            ));
        }
        out
    }

    /// New `/tmp` entries and cgroups that other programs made during the
    /// storm, and why they are not ours.
    fn foreign_since(&self, before: &Snapshot) -> Vec<String> {
        let tmp = self.tmp.difference(&before.tmp).cloned();
        let cg = self
            .cgroups
            .difference(&before.cgroups)
            .map(|c| c.file_name().unwrap().to_string_lossy().into_owned());
        tmp.chain(cg)
            .filter_map(|n| foreign(&n).map(|why| format!("{n}: {why}")))
            .collect()
    }
}

// ---------------------------------------------------------------- the test

fn schedule() -> Vec<Kind> {
    let per: usize = MIX.iter().map(|&(_, n)| n).sum();
    assert_eq!(per, 100);
    // Interleave the kinds so every stretch of the run has all of them.
    let mut cycle = Vec::with_capacity(per);
    let mut left: Vec<(Kind, usize)> = MIX.to_vec();
    while cycle.len() < per {
        for (k, n) in left.iter_mut() {
            if *n > 0 {
                cycle.push(*k);
                *n -= 1;
            }
        }
    }
    (0..TOTAL).map(|i| cycle[i % per]).collect()
}

/// Run `work` on its own thread; panic if it takes longer than the watchdog.
fn with_watchdog<F: FnOnce() + Send + 'static>(work: F) {
    let (tx, rx) = mpsc::channel();
    let handle = std::thread::spawn(move || {
        work();
        let _ = tx.send(());
    });
    match rx.recv_timeout(WATCHDOG) {
        Ok(()) => handle.join().unwrap(),
        Err(mpsc::RecvTimeoutError::Disconnected) => {
            if let Err(p) = handle.join() {
                std::panic::resume_unwind(p);
            }
        }
        Err(mpsc::RecvTimeoutError::Timeout) => {
            panic!("the storm still runs after {WATCHDOG:?}: a hang")
        }
    }
}

#[test]
fn two_thousand_sandboxes_leave_nothing_behind() {
    require_root();
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    let mark = format!("{:05}{:09}", std::process::id() % 100_000, nanos);
    let ws = Workspace::new("storm");
    let helper = ws.path().join(format!("helper-{mark}"));
    let exe = std::env::current_exe().unwrap();
    if std::fs::hard_link(&exe, &helper).is_err() {
        std::fs::copy(&exe, &helper).expect("copy the test binary as the helper");
    }
    assert!(
        stockade::set_helper_path(&helper),
        "the helper path was already set"
    );
    HELPER.set(helper).unwrap();
    let noexec = ws.path().join("not-executable.sh");
    std::fs::write(&noexec, "#!/bin/sh\necho ran\n").unwrap();

    // Warm-up, before the "before" snapshot: the first proxy sandbox starts
    // the proxy's process-wide tokio runtime, whose epoll and eventfd (and
    // worker threads) live as long as the process; the first spawns start
    // the background reaper. Those are created once, not per sandbox, so
    // they belong to the baseline. A session warms the session machinery.
    let probe = Sandbox::new()
        .limits(limits())
        .command(["/bin/true"])
        .output();
    let limits_supported = match &probe {
        Ok(out) => {
            assert!(out.status.success(), "limits probe: {}", out.status);
            true
        }
        Err(Error::Unsupported {
            layer: Layer::Cgroup,
            ..
        }) => {
            eprintln!(
                "note: cgroup limits are not supported by this version ({}); \
                 the `Limited` share runs as plain echo sandboxes",
                probe.as_ref().unwrap_err()
            );
            false
        }
        Err(e) => panic!("limits probe: unexpected error {e:?}"),
    };
    let ctx = Arc::new(Ctx {
        mark: mark.clone(),
        noexec_dir: ws.path().to_path_buf(),
        noexec_file: noexec.to_str().unwrap().to_string(),
        limits: limits_supported,
    });
    {
        let warm = Mutex::new(Tally::default());
        for (i, k) in [
            Kind::True,
            Kind::Proxy,
            Kind::Timeout,
            Kind::Kill,
            Kind::Drop,
        ]
        .into_iter()
        .enumerate()
        {
            run_one(&ctx, i, k, &warm);
        }
        Sandbox::new().session().unwrap().close().unwrap();
    }
    let before = settle(&mark, None);
    positive_control(&ctx, &before);
    let before = settle(&mark, None);
    assert!(
        before.children.is_empty() && before.host.is_empty(),
        "leftovers already before the storm (warm-up): {before:?}"
    );

    let tally = Arc::new(Mutex::new(Tally::default()));
    let started = Instant::now();
    let (seq_time, conc_time, sess_time) = {
        let ctx = ctx.clone();
        let tally = tally.clone();
        let times = Arc::new(Mutex::new((Duration::ZERO, Duration::ZERO, Duration::ZERO)));
        let t2 = times.clone();
        with_watchdog(move || {
            let jobs = Arc::new(schedule());
            // One after another.
            let t = Instant::now();
            for i in 0..SEQUENTIAL {
                run_one(&ctx, i, jobs[i], &tally);
            }
            let seq = t.elapsed();
            // Concurrently: THREADS workers take the next job; one more
            // thread runs the sessions alongside.
            let t = Instant::now();
            let next = Arc::new(AtomicUsize::new(SEQUENTIAL));
            let mut workers: Vec<_> = (0..THREADS)
                .map(|_| {
                    let (ctx, tally, jobs, next) =
                        (ctx.clone(), tally.clone(), jobs.clone(), next.clone());
                    std::thread::spawn(move || loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        if i >= TOTAL {
                            break;
                        }
                        run_one(&ctx, i, jobs[i], &tally);
                    })
                })
                .collect();
            let sess_started = Arc::new(Mutex::new(Duration::ZERO));
            for st in 0..SESSION_THREADS {
                let (ctx, tally, sess_started) = (ctx.clone(), tally.clone(), sess_started.clone());
                workers.push(std::thread::spawn(move || {
                    let t = Instant::now();
                    for s in (st..SESSIONS).step_by(SESSION_THREADS) {
                        run_session(&ctx, s, &tally);
                    }
                    let mut longest = sess_started.lock().unwrap();
                    *longest = (*longest).max(t.elapsed());
                }));
            }
            let mut panic = None;
            for w in workers {
                if let Err(p) = w.join() {
                    panic.get_or_insert(p);
                }
            }
            if let Some(p) = panic {
                std::panic::resume_unwind(p);
            }
            *t2.lock().unwrap() = (seq, t.elapsed(), *sess_started.lock().unwrap());
        });
        let t = *times.lock().unwrap();
        t
    };
    let storm_time = started.elapsed();

    let t = Instant::now();
    let after = settle(&mark, Some(&before));
    let settled_in = t.elapsed();

    let tally = tally.lock().unwrap();
    let one_shot: usize = tally
        .counts
        .iter()
        .filter(|(k, _)| !k.starts_with("session"))
        .map(|(_, n)| n)
        .sum();
    eprintln!("storm summary (marker {mark}):");
    for (k, n) in &tally.counts {
        eprintln!("  {n:>5}  {k}");
    }
    eprintln!(
        "  {one_shot} one-shot sandboxes + {SESSIONS} sessions; {SEQUENTIAL} sequential, \
         the rest on {THREADS} threads, sessions on {SESSION_THREADS} more; limits {}",
        if limits_supported {
            "on"
        } else {
            "unsupported (skipped)"
        }
    );
    eprintln!(
        "  storm {storm_time:.1?} (sequential {seq_time:.1?}, concurrent {conc_time:.1?}, \
         sessions {sess_time:.1?} alongside), settled in {settled_in:.1?}"
    );
    eprintln!(
        "  baseline: {} fds {:?}, {} mounts, {} cgroups below our own",
        before.fd_count,
        before.fds,
        before.mounts,
        before.cgroups.len()
    );
    assert_eq!(one_shot, TOTAL);

    for f in after.foreign_since(&before) {
        eprintln!("  not ours (ignored): {f}");
    }
    let left = after.leftovers(&before);
    assert!(
        left.is_empty(),
        "the storm left things behind after {SETTLE:?}:\n  {}",
        left.join("\n  ")
    );
}

/// A snapshot once nothing is left compared to `before` (or, for the
/// baseline, once no child or marked process remains), retrying for up to
/// `SETTLE` since reaping is asynchronous; the last one either way.
fn settle(mark: &str, before: Option<&Snapshot>) -> Snapshot {
    let deadline = Instant::now() + SETTLE;
    loop {
        let s = Snapshot::take(mark);
        let clean = match before {
            Some(b) => s.leftovers(b).is_empty(),
            // The warm-up's own cgroups (named `stockade-*`) are removed
            // in the background too: wait for them, so that the baseline
            // has none (if another stockade user on the host keeps some,
            // go on after `SETTLE`; the comparison then still holds).
            None => {
                s.children.is_empty()
                    && s.host.is_empty()
                    && !s.cgroups.iter().any(|c| {
                        c.file_name()
                            .is_some_and(|n| n.to_string_lossy().starts_with("stockade"))
                    })
            }
        };
        if clean || Instant::now() >= deadline {
            return s;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The probes can see what they look for: while one sandbox runs (with
/// limits when supported), the snapshot shows more fds, a child process, the
/// marked host processes and (with limits) a new cgroup; after it is
/// killed and waited, the snapshot is back to `before`.
fn positive_control(ctx: &Ctx, before: &Snapshot) {
    let mut sb = ctx.sh(&format!("sleep {} & wait", ctx.sleep_arg(7)));
    if ctx.limits {
        sb = sb.limits(limits());
    }
    let mut child = sb
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("positive control: spawn");
    let deadline = Instant::now() + SETTLE;
    let mut during;
    loop {
        during = Snapshot::take(&ctx.mark);
        let seen = during.fd_count > before.fd_count
            && !during.children.is_empty()
            // The helper, the shell, the sleep.
            && during.host.len() >= 3
            && (!ctx.limits || during.cgroups.len() > before.cgroups.len());
        if seen || Instant::now() >= deadline {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
    drop(child);
    assert!(
        during.fd_count > before.fd_count,
        "positive control: a running sandbox's fds not seen: {:?}",
        during.fds
    );
    assert!(
        !during.children.is_empty(),
        "positive control: the running sandbox is not seen as our child"
    );
    assert!(
        during.host.len() >= 3,
        "positive control: the running sandbox's processes are not found on the host: {:?}",
        during.host
    );
    if ctx.limits {
        assert!(
            during.cgroups.len() > before.cgroups.len(),
            "positive control: the running limited sandbox's cgroup is not seen: {:?}",
            during.cgroups
        );
        assert!(
            during.foreign_since(before).is_empty(),
            "positive control: the running sandbox's cgroup is taken for another program's: {:?}",
            during.foreign_since(before)
        );
    }
    eprintln!(
        "positive control: while running, {} fds (+{}), children {:?}, {} host processes, \
         {} new cgroups",
        during.fd_count,
        during.fd_count - before.fd_count,
        during.children,
        during.host.len(),
        during.cgroups.len() - before.cgroups.len()
    );
}
