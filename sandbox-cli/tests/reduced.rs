//! Reduced mode (`--allow-reduced`) on a host without user namespaces, for root and for the
//! unprivileged `stockade-test`, driven through the CLI.
//!
//! The host condition is simulated, not assumed: the CLI runs under a seccomp filter installed
//! between fork and exec (inherited by everything it starts) that refuses `clone`/`unshare`
//! with `CLONE_NEWUSER` with `EPERM`, as Docker's default profile does, and `clone3` with
//! `ENOSYS`. So the library's real detection path decides: its helper's `clone` fails. One
//! case instead builds a user namespace whose `user.max_user_namespaces` is 0 (the `ENOSPC`
//! and up-front paths).
//!
//! Each escape attempt is made by a C probe (`tests/probes/reduced_probe.c`) with raw calls
//! and exact errnos, and has a positive control: the same call on the host, as the same uid
//! the sandbox runs as, succeeds. What reduced mode does not contain is asserted as visible
//! (host processes in `/proc`), since the README lists it.

#[macro_use]
mod common;
mod egress_support;

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use common::*;
use egress_support::Upstream;

// ---------------------------------------------------------------------------------------------
// The simulated host, the probe, the callers' host ids
// ---------------------------------------------------------------------------------------------

/// Between fork and exec: `no_new_privs`, then a filter refusing new user namespaces with
/// EPERM (clone, unshare) and clone3 with ENOSYS. Async-signal-safe: two prctl calls on a
/// program on the stack.
fn deny_user_namespaces() -> std::io::Result<()> {
    let ld = |k| libc::sock_filter {
        code: 0x20,
        jt: 0,
        jf: 0,
        k,
    };
    let jeq = |k, jt, jf| libc::sock_filter {
        code: 0x15,
        jt,
        jf,
        k,
    };
    let jset = |k, jt, jf| libc::sock_filter {
        code: 0x45,
        jt,
        jf,
        k,
    };
    let ret = |k| libc::sock_filter {
        code: 0x06,
        jt: 0,
        jf: 0,
        k,
    };
    let filter = [
        ld(0), // nr
        jeq(libc::SYS_clone3 as u32, 0, 1),
        ret(libc::SECCOMP_RET_ERRNO | libc::ENOSYS as u32),
        jeq(libc::SYS_clone as u32, 1, 0),
        jeq(libc::SYS_unshare as u32, 0, 3),
        ld(16), // args[0], low half
        jset(libc::CLONE_NEWUSER as u32, 0, 1),
        ret(libc::SECCOMP_RET_ERRNO | libc::EPERM as u32),
        ret(libc::SECCOMP_RET_ALLOW),
    ];
    let prog = libc::sock_fprog {
        len: filter.len() as u16,
        filter: filter.as_ptr().cast_mut(),
    };
    // SAFETY: prctl with integer arguments, then with a pointer to `prog`, which points at
    // `filter`; both live on this stack frame for the duration of the calls.
    unsafe {
        if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0
            || libc::prctl(libc::PR_SET_SECCOMP, libc::SECCOMP_MODE_FILTER, &prog) != 0
        {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

/// `stockade run` as `caller` on the simulated host (arguments still to add).
fn no_userns(caller: Caller) -> Command {
    let mut cmd = command(caller);
    // SAFETY: the hook only makes async-signal-safe calls (see `deny_user_namespaces`).
    unsafe { cmd.pre_exec(deny_user_namespaces) };
    cmd
}

/// `stockade run --allow-reduced OPTS...` as `caller` on the simulated host.
fn reduced(caller: Caller, opts: &[&str]) -> Command {
    let mut cmd = no_userns(caller);
    cmd.arg("--allow-reduced").args(opts);
    cmd
}

fn output(mut cmd: Command) -> Output {
    cmd.output().expect("cannot spawn the stockade CLI")
}

/// The host uid:gid a caller's reduced sandbox runs as: root's `root_host_id` (65534), the
/// user's own.
fn sandbox_ids(caller: Caller) -> (u32, u32) {
    match caller {
        Caller::Root => (65534, 65534),
        Caller::User => (caller.host_uid(), caller.host_gid()),
    }
}

/// A host command as the uid the sandbox runs as (positive controls, host victims).
fn as_sandbox_uid(caller: Caller, argv: &[&str]) -> Command {
    let (uid, gid) = sandbox_ids(caller);
    let mut c = Command::new(find_tool("setpriv"));
    c.args([
        &format!("--reuid={uid}"),
        &format!("--regid={gid}"),
        "--clear-groups",
        "--",
    ])
    .args(argv)
    .current_dir("/")
    .stdin(Stdio::null());
    c
}

static PROBE_DIR: OnceLock<PathBuf> = OnceLock::new();

extern "C" fn remove_probe_dir() {
    if let Some(dir) = PROBE_DIR.get() {
        let _ = fs::remove_dir_all(dir);
    }
}

/// `reduced_probe`, compiled once into a 0755 dir under /tmp.
fn probe_dir() -> &'static Path {
    PROBE_DIR.get_or_init(|| {
        require_root();
        let dir = PathBuf::from(format!(
            "/tmp/stockade-it-reduced-{}-{}",
            std::process::id(),
            random_hex(4)
        ));
        fs::create_dir(&dir).expect("create probe dir");
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).expect("chmod probe dir");
        // SAFETY: registering a plain extern "C" fn without captured state.
        unsafe { libc::atexit(remove_probe_dir) };
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/probes/reduced_probe.c");
        let bin = dir.join("reduced_probe");
        let out = Command::new("gcc")
            .args(["-O1", "-Wall", "-o"])
            .args([&bin, &src])
            .output()
            .expect("gcc not found: the reduced-mode probes need a C compiler");
        assert!(
            out.status.success(),
            "gcc: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        dir
    })
}

fn probe_bin() -> String {
    probe_dir()
        .join("reduced_probe")
        .to_str()
        .unwrap()
        .to_string()
}

/// Probe lines `LABEL ok` / `LABEL err ENAME`, by label (a repeated label: the last).
fn results(out: &Output) -> BTreeMap<String, String> {
    stdout(out)
        .lines()
        .filter_map(|l| l.split_once(' '))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[track_caller]
fn expect(out: &Output, want: &[(&str, &str)]) {
    let got = results(out);
    for (label, result) in want {
        assert_eq!(
            got.get(*label).map(String::as_str),
            Some(*result),
            "probe {label}\n{}",
            describe(out)
        );
    }
}

/// The probe in a reduced sandbox: `--ro PROBE_DIR OPTS -- reduced_probe ARGS`.
fn probe_in_sandbox(caller: Caller, opts: &[&str], args: &[&str]) -> Output {
    let dir = probe_dir().to_str().unwrap().to_string();
    let mut cmd = reduced(caller, &["--ro", &dir]);
    cmd.args(opts).arg("--").arg(probe_bin()).args(args);
    output(cmd)
}

/// The probe on the host as the sandbox's uid (the positive control).
fn probe_on_host(caller: Caller, args: &[&str]) -> Output {
    let bin = probe_bin();
    let mut argv = vec![bin.as_str()];
    argv.extend_from_slice(args);
    output(as_sandbox_uid(caller, &argv))
}

/// A host process `sleep N.MARKER` as the sandbox's uid, with a secret in its environment;
/// killed on drop.
struct Victim(std::process::Child);

impl Victim {
    fn start(caller: Caller, marker: &str) -> Victim {
        let mut c = as_sandbox_uid(caller, &["sleep", &format!("600.{marker}")]);
        c.env("VICTIM_SECRET", "s3cr3t-token");
        Victim(c.spawn().expect("start the victim"))
    }

    fn pid(&self) -> String {
        self.0.id().to_string()
    }

    fn alive(&mut self) -> bool {
        matches!(self.0.try_wait(), Ok(None))
    }
}

impl Drop for Victim {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Host pids named `comm` whose command line contains `needle`.
fn pids_with(comm: &str, needle: &str) -> Vec<u32> {
    let me = std::process::id();
    fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&p| p != me)
        .filter(|p| fs::read_to_string(format!("/proc/{p}/comm")).is_ok_and(|c| c.trim() == comm))
        .filter(|p| {
            fs::read(format!("/proc/{p}/cmdline"))
                .map(|c| {
                    String::from_utf8_lossy(&c)
                        .replace('\0', " ")
                        .contains(needle)
                })
                .unwrap_or(false)
        })
        .collect()
}

fn wait_until(what: &str, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !ok() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn report_json(path: &str) -> serde_json::Value {
    let text = fs::read_to_string(path).unwrap_or_else(|e| panic!("read {path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("parse {path}: {e}\n{text}"))
}

/// A test dir whose `rel` subdir belongs to the sandbox's host uid (writable by it).
fn owned_dir(t: &TestDir, caller: Caller, rel: &str) -> String {
    let p = t.mkdir(rel);
    let (uid, gid) = sandbox_ids(caller);
    chown_tree(Path::new(&p), uid, gid);
    p
}

// ---------------------------------------------------------------------------------------------
// Opt-in, and what a run reports
// ---------------------------------------------------------------------------------------------

for_each_caller! {
    root_without_the_opt_in_nothing_runs, user_without_the_opt_in_nothing_runs
        => without_the_opt_in_nothing_runs;
    root_reduced_run_reports_mode_and_missing_layers,
    user_reduced_run_reports_mode_and_missing_layers
        => reduced_run_reports_mode_and_missing_layers;
}

/// Without `--allow-reduced` a host without user namespaces is exit 125, nothing ran, and
/// the message names the opt-in and what it gives up. Controls: the same command runs with
/// the opt-in, and without the simulated condition (the full mode).
fn without_the_opt_in_nothing_runs(caller: Caller) {
    let t = TestDir::new("reduced-optin");
    let work = owned_dir(&t, caller, "work");
    let marker = format!("{work}/ran");
    let script = format!("touch {marker}");
    let mut cmd = no_userns(caller);
    cmd.args(["--rw", &work, "--", "sh", "-c", &script]);
    let out = output(cmd);
    let line = assert_refused(&out);
    for want in [
        "user namespace",
        "EPERM",
        "--allow-reduced",
        "pid, network, mount",
    ] {
        assert!(line.contains(want), "{want}: {line}");
    }
    assert!(!Path::new(&marker).exists(), "something ran: {line}");

    let mut cmd = reduced(caller, &["--rw", &work]);
    cmd.args(["--", "sh", "-c", &script]);
    let out = output(cmd);
    assert_code(&out, 0);
    assert!(Path::new(&marker).exists(), "{}", describe(&out));
    assert_eq!(owner(Path::new(&marker)), sandbox_ids(caller));
    fs::remove_file(&marker).unwrap();

    // The full mode where user namespaces work: no refusal, the opt-in changes nothing.
    let full = t.mkdir("full");
    caller.own(Path::new(&full));
    let marker = format!("{full}/ran");
    let script = format!("touch {marker}");
    let out = run(
        caller,
        &["--allow-reduced", "--rw", &full, "--", "sh", "-c", &script],
    );
    assert_code(&out, 0);
    assert!(Path::new(&marker).exists());
}

/// The run works, and `--report` says `mode: reduced` with the missing layers and what is not
/// contained; the private temp dir is TMPDIR and HOME, writable, and gone afterwards.
fn reduced_run_reports_mode_and_missing_layers(caller: Caller) {
    let t = TestDir::new("reduced-report");
    let reports = owned_dir(&t, caller, "reports");
    let report = format!("{reports}/r.json");
    let mut cmd = reduced(caller, &["--report", &report]);
    cmd.args([
        "--",
        "sh",
        "-c",
        "id -u; echo \"$HOME|$TMPDIR\"; echo x > \"$TMPDIR/f\" && cat \"$TMPDIR/f\"; hostname",
    ]);
    let out = output(cmd);
    assert_code(&out, 0);
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], sandbox_ids(caller).0.to_string(), "{text}");
    let (home, tmp) = lines[1].split_once('|').unwrap();
    assert_eq!(home, tmp, "{text}");
    assert!(tmp.starts_with("/tmp/stockade-"), "{text}");
    assert!(
        !Path::new(tmp).exists(),
        "the private temp dir {tmp} outlived the run"
    );
    assert_eq!(lines[2], "x", "{text}");
    // Not contained: the host's own hostname (no UTS namespace).
    let host = fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    assert_eq!(lines[3], host.trim(), "{text}");

    let r = report_json(&report);
    let layers = &r["layers"];
    assert_eq!(layers["mode"], "reduced", "{r}");
    let missing: Vec<&str> = layers["missing"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    let want = stockade::reduced::Mode::Reduced.missing_layers(caller == Caller::Root);
    assert_eq!(missing, want, "{r}");
    for layer in [
        "user-ns",
        "pid-ns",
        "net-ns",
        "mnt-ns",
        "uts-ns",
        "ipc-ns",
        "cgroup-ns",
        "time-ns",
        "pivot-root",
    ] {
        assert!(missing.contains(&layer), "{layer}: {r}");
    }
    assert_eq!(
        missing.contains(&"capability-bounding-set"),
        caller == Caller::User,
        "{r}"
    );
    let not_contained = layers["not_contained"].as_array().unwrap();
    assert!(not_contained.len() >= 5, "{r}");
    assert!(
        not_contained
            .iter()
            .any(|v| v.as_str().unwrap().contains("/proc")),
        "{r}"
    );
    assert!(layers["landlock_abi"].as_u64().unwrap() >= 6, "{r}");

    // The full mode's report says so too.
    let full = format!("{reports}/full.json");
    let out = run(caller, &["--report", &full, "--", "true"]);
    assert_code(&out, 0);
    let r = report_json(&full);
    assert_eq!(r["layers"]["mode"], "full", "{r}");
    assert_eq!(r["layers"]["missing"].as_array().unwrap().len(), 0, "{r}");
}

// ---------------------------------------------------------------------------------------------
// Escapes that reduced mode still contains
// ---------------------------------------------------------------------------------------------

for_each_caller! {
    root_files_outside_the_grants_stay_out_of_reach,
    user_files_outside_the_grants_stay_out_of_reach => files_outside_the_grants;
    root_network_only_through_the_proxy, user_network_only_through_the_proxy
        => network_only_through_the_proxy;
    root_host_processes_cannot_be_touched, user_host_processes_cannot_be_touched
        => host_processes_cannot_be_touched;
    root_egress_through_the_proxy_to_an_allowed_upstream,
    user_egress_through_the_proxy_to_an_allowed_upstream => egress_through_the_proxy;
    root_timeout_and_a_dead_cli_end_the_whole_tree,
    user_timeout_and_a_dead_cli_end_the_whole_tree => the_tree_never_outlives_the_run;
}

/// Reading `~/.ssh`-like and `/etc/shadow`-like files outside the grants: EACCES from
/// Landlock (the files are world-readable: the control reads them on the host as the same
/// uid); writing outside the grants: EACCES, host file unchanged; inside a `--rw` grant and
/// a `--ro` grant: allowed.
fn files_outside_the_grants(caller: Caller) {
    let t = TestDir::new("reduced-files");
    let ssh_key = t.write("home/.ssh/id_ed25519", b"PRIVATE KEY");
    let shadow = t.write("etc/shadow", b"root:$6$hash:19000::::::\n");
    let ro_file = t.write("ro/data.txt", b"granted");
    let ro = t.join("ro");
    let open = t.mkdir("open");
    fs::set_permissions(&open, fs::Permissions::from_mode(0o777)).unwrap();
    let victim = t.write("open/victim.txt", b"original");
    fs::set_permissions(&victim, fs::Permissions::from_mode(0o666)).unwrap();
    let work = owned_dir(&t, caller, "work");
    let out = probe_in_sandbox(caller, &["--ro", &ro, "--rw", &work], &["read", &ssh_key]);
    expect(&out, &[("read", "err EACCES")]);
    let out = probe_in_sandbox(caller, &["--ro", &ro, "--rw", &work], &["read", &shadow]);
    expect(&out, &[("read", "err EACCES")]);
    let out = probe_in_sandbox(caller, &["--ro", &ro, "--rw", &work], &["read", &ro_file]);
    expect(&out, &[("read", "ok")]);
    let new_outside = format!("{open}/new.txt");
    let out = probe_in_sandbox(caller, &["--rw", &work], &["write", &victim]);
    expect(&out, &[("write", "err EACCES")]);
    let out = probe_in_sandbox(caller, &["--rw", &work], &["write", &new_outside]);
    expect(&out, &[("write", "err EACCES")]);
    let out = probe_in_sandbox(caller, &["--ro", &ro], &["write", &ro_file]);
    expect(&out, &[("write", "err EACCES")]);
    let inside = format!("{work}/new.txt");
    let out = probe_in_sandbox(caller, &["--rw", &work], &["write", &inside]);
    expect(&out, &[("write", "ok")]);
    assert_eq!(fs::read(&inside).unwrap(), b"x");
    assert_eq!(fs::read(&victim).unwrap(), b"original");
    assert!(!Path::new(&new_outside).exists());
    assert_eq!(fs::read(&ro_file).unwrap(), b"granted");

    // Controls: the same uid reads and writes them all on the host.
    for (action, path) in [("read", &ssh_key), ("read", &shadow)] {
        expect(&probe_on_host(caller, &[action, path]), &[(action, "ok")]);
    }
    expect(
        &probe_on_host(caller, &["write", &new_outside]),
        &[("write", "ok")],
    );
}

/// TCP to a host port other than the proxy's: EACCES (Landlock); the proxy's port on any
/// address but 127.0.0.1: EACCES (the host's connect gate); UDP, raw, SCTP, MPTCP and unix
/// sockets, `listen` and TCP Fast Open: EPERM (seccomp); TCP bind: EACCES. The host's
/// listeners saw nothing. Controls: the same connects work on the host, and the proxy's port
/// on 127.0.0.1 is reachable from inside.
fn network_only_through_the_proxy(caller: Caller) {
    let t = TestDir::new("reduced-net");
    let host_tcp = Upstream::raw();
    let port = host_tcp.port().to_string();
    let sock_path = t.join("host.sock");
    let unix = std::os::unix::net::UnixListener::bind(&sock_path).unwrap();
    unix.set_nonblocking(true).unwrap();
    fs::set_permissions(&sock_path, fs::Permissions::from_mode(0o777)).unwrap();

    let probes = [
        "tcp",
        "127.0.0.1",
        &port,
        "fastopen",
        "127.0.0.1",
        &port,
        "listen",
        "bind",
        "0",
        "udp",
        "127.0.0.1",
        "53",
        "udp6",
        "raw",
        "sctp",
        "mptcp",
        "unix",
        &sock_path,
        "socketpair",
    ];
    let out = probe_in_sandbox(caller, &[], &probes);
    expect(
        &out,
        &[
            ("tcp", "err EACCES"),
            ("fastopen", "err EPERM"),
            ("listen", "err EPERM"),
            ("bind", "err EACCES"),
            ("udp", "err EPERM"),
            ("udp6", "err EPERM"),
            ("raw", "err EPERM"),
            ("sctp", "err EPERM"),
            ("mptcp", "err EPERM"),
            ("unix", "err EPERM"),
            ("socketpair", "ok"),
        ],
    );
    host_tcp.assert_untouched("a reduced sandbox connected around the proxy");
    assert!(unix.accept().is_err(), "the host's unix socket was reached");

    // With the proxy: its port on 127.0.0.1 connects; the same port on another loopback
    // address, on a routable address, and the other host port do not.
    let script = format!(
        "p=${{HTTP_PROXY##*:}}; {probe} tcp 127.0.0.1 $p; {probe} tcp 127.0.0.2 $p | sed s/^tcp/tcp2/; \
         {probe} tcp 192.0.2.1 $p | sed s/^tcp/tcp3/; {probe} tcp 127.0.0.1 {port} | sed s/^tcp/tcp4/",
        probe = probe_bin()
    );
    let dir = probe_dir().to_str().unwrap().to_string();
    let mut cmd = reduced(caller, &["--ro", &dir, "--allow-domain", "example.test"]);
    cmd.args(["--", "sh", "-c", &script]);
    let out = output(cmd);
    expect(
        &out,
        &[
            ("tcp", "ok"),
            ("tcp2", "err EACCES"),
            ("tcp3", "err EACCES"),
            ("tcp4", "err EACCES"),
        ],
    );
    host_tcp.assert_untouched("a reduced sandbox with a proxy connected around it");

    // Controls on the host, as the same uid.
    let out = probe_on_host(
        caller,
        &["tcp", "127.0.0.1", &port, "unix", &sock_path, "udp6"],
    );
    expect(&out, &[("tcp", "ok"), ("unix", "ok"), ("udp6", "ok")]);
}

/// A host process of the same uid: signalling it is EPERM (Landlock's signal scope), its
/// environ is EACCES (Landlock's ptrace rule), ptrace is EPERM; mount, unshare, SysV and
/// POSIX IPC are EPERM; a setuid-root binary gains nothing. Not contained (listed in the
/// README): the process is visible, its command line readable. Controls: the same uid
/// signals it and reads its environ on the host; the setuid binary works on the host.
fn host_processes_cannot_be_touched(caller: Caller) {
    let marker = random_digits();
    let mut victim = Victim::start(caller, &marker);
    let pid = victim.pid();
    wait_until("the victim runs", || {
        fs::read_to_string(format!("/proc/{pid}/cmdline")).is_ok_and(|c| c.contains(&marker))
    });
    let environ = format!("/proc/{pid}/environ");
    let cmdline = format!("/proc/{pid}/cmdline");
    let out = probe_in_sandbox(
        caller,
        &[],
        &[
            "kill",
            &pid,
            "killparent",
            "ptrace",
            &pid,
            "mount",
            "unshare",
            "shmget",
            "mqopen",
        ],
    );
    expect(
        &out,
        &[
            ("kill", "err EPERM"),
            ("killparent", "err EPERM"),
            ("ptrace", "err EPERM"),
            ("mount", "err EPERM"),
            ("unshare", "err EPERM"),
            ("shmget", "err EPERM"),
            ("mqopen", "err EPERM"),
        ],
    );
    let out = probe_in_sandbox(caller, &[], &["read", &environ]);
    expect(&out, &[("read", "err EACCES")]);
    // Not contained: host processes are visible.
    let out = probe_in_sandbox(caller, &[], &["read", &cmdline]);
    expect(&out, &[("read", "ok")]);
    assert!(victim.alive());
    let on_host = probe_on_host(caller, &["kill", &pid, "read", &environ]);
    expect(&on_host, &[("kill", "ok"), ("read", "ok")]);

    // setuid: a root-owned 4755 copy of `id` in a granted dir.
    let t = TestDir::new("reduced-suid");
    let dir = t.mkdir("bin");
    let suid = format!("{dir}/id");
    fs::copy(find_tool("id"), &suid).unwrap();
    chown_tree(Path::new(&suid), 0, 0);
    fs::set_permissions(&suid, fs::Permissions::from_mode(0o4755)).unwrap();
    let host = output(as_sandbox_uid(caller, &[&suid, "-u"]));
    assert_eq!(
        stdout(&host).trim(),
        "0",
        "control: the copy is setuid root on the host"
    );
    let mut cmd = reduced(caller, &["--ro", &dir]);
    cmd.args(["--", &suid, "-u"]);
    let out = output(cmd);
    assert_code(&out, 0);
    assert_eq!(
        stdout(&out).trim(),
        sandbox_ids(caller).0.to_string(),
        "{}",
        describe(&out)
    );
}

/// Through the proxy to an allowed upstream on the host's loopback: works; a denied name is
/// refused by the proxy and recorded; going to the upstream directly fails and it sees only
/// the proxied request.
fn egress_through_the_proxy(caller: Caller) {
    let t = TestDir::new("reduced-egress");
    let reports = owned_dir(&t, caller, "reports");
    let report = format!("{reports}/r.json");
    let up = Upstream::http(&[("/hello", "text/plain", b"hello from upstream\n".to_vec())]);
    let port = up.port();
    let allow = format!("allowed.test:{port}");
    let script = format!(
        "curl -sS http://allowed.test:{port}/hello; \
         curl -sS -o /dev/null -w 'denied %{{http_code}}\\n' http://denied.test/; \
         curl -sS -m 5 --noproxy '*' http://127.0.0.1:{port}/hello; echo direct rc=$?"
    );
    let mut cmd = reduced(
        caller,
        &[
            "--allow-domain",
            &allow,
            "--resolve",
            "allowed.test:127.0.0.1",
            "--allow-private",
            "127.0.0.1/32",
            "--report",
            &report,
        ],
    );
    cmd.args(["--", "sh", "-c", &script]);
    let out = output(cmd);
    assert_code(&out, 0);
    let text = stdout(&out);
    assert!(text.contains("hello from upstream"), "{}", describe(&out));
    assert!(text.contains("denied 403"), "{}", describe(&out));
    assert!(text.contains("direct rc=7"), "{}", describe(&out));
    assert_eq!(up.log().request_lines(), ["GET /hello HTTP/1.1"]);
    let r = report_json(&report);
    let events = r["events"].as_array().unwrap();
    let proxy = |decision: &str, host: &str| {
        events.iter().any(|e| {
            e["kind"] == "proxy" && e["proxy"]["decision"] == decision && e["proxy"]["host"] == host
        })
    };
    assert!(proxy("allowed", "allowed.test"), "{r}");
    assert!(proxy("denied", "denied.test"), "{r}");
    let gate = events.iter().any(|e| {
        e["kind"] == "syscall_denied" && e["syscall"] == "connect" && e["errno_name"] == "EACCES"
    });
    assert!(gate, "the direct connect is not recorded: {r}");
}

/// `--timeout` ends the command and what it daemonized (a `setsid` child and an orphan) before
/// the exit status comes; a CLI killed with SIGKILL takes the whole tree with it.
fn the_tree_never_outlives_the_run(caller: Caller) {
    let m = random_digits();
    let tree = |tag: &str| {
        format!("setsid sleep 700.{tag}{m} & (sleep 701.{tag}{m} &); sleep 702.{tag}{m}")
    };
    let mut cmd = reduced(caller, &["--timeout", "1"]);
    cmd.args(["--", "sh", "-c", &tree("1")]);
    let out = output(cmd);
    assert_code(&out, 124);
    assert!(
        pids_with("sleep", &format!("1{m}")).is_empty(),
        "the tree outlived --timeout"
    );

    let mut cmd = reduced(caller, &[]);
    cmd.args(["--", "sh", "-c", &tree("2")])
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let mut cli = cmd.spawn().unwrap();
    wait_until("the tree runs", || {
        pids_with("sleep", &format!("2{m}")).len() == 3
    });
    // The CLI itself (below runuser for the user): SIGKILL, no cleanup of its own.
    let stockade = pids_with("stockade", &format!("2{m}"));
    assert_eq!(stockade.len(), 1, "the CLI process: {stockade:?}");
    // SAFETY: kill with integer arguments, on the CLI this test started.
    assert_eq!(unsafe { libc::kill(stockade[0] as i32, libc::SIGKILL) }, 0);
    let _ = cli.wait();
    wait_until("the tree is gone", || {
        pids_with("sleep", &format!("2{m}")).is_empty()
    });
}

// ---------------------------------------------------------------------------------------------
// Limits, refusals, attest, the other host condition
// ---------------------------------------------------------------------------------------------

for_each_caller! {
    root_limits_are_enforced_or_refused, user_limits_are_enforced_or_refused
        => limits_are_enforced_or_refused;
}

/// `--pids`: a cgroup for root, `RLIMIT_NPROC` (over the uid) for the user; a fork storm
/// stops either way. `--memory`: a cgroup for root (a memory hog is OOM-killed), refused with
/// exit 125 for the user, who has no cgroup here.
fn limits_are_enforced_or_refused(caller: Caller) {
    let t = TestDir::new("reduced-limits");
    let reports = owned_dir(&t, caller, "reports");
    let report = format!("{reports}/pids.json");
    let storm = "i=0; while [ $i -lt 60 ]; do sleep 1 & i=$((i+1)); done; wait; echo storm-done";
    let mut cmd = reduced(caller, &["--pids", "10", "--report", &report]);
    cmd.args(["--", "sh", "-c", storm]);
    let out = output(cmd);
    // dash gives up at the first refused fork.
    assert_code(&out, 2);
    assert!(stderr(&out).contains("Cannot fork"), "{}", describe(&out));
    assert!(!stdout(&out).contains("storm-done"), "{}", describe(&out));
    // Control: the same storm without --pids.
    let mut cmd = reduced(caller, &[]);
    cmd.args(["--", "sh", "-c", storm]);
    let control = output(cmd);
    assert_code(&control, 0);
    assert_eq!(stdout(&control), "storm-done\n");
    let r = report_json(&report);
    let level = r["limits"]["level"].as_str().unwrap().to_string();
    match caller {
        Caller::Root => assert!(level.starts_with("cgroup"), "{r}"),
        Caller::User => assert_eq!(level, "rlimit", "{r}"),
    }
    assert_eq!(r["layers"]["mode"], "reduced", "{r}");

    let report = format!("{reports}/mem.json");
    let mut cmd = reduced(caller, &["--memory", "32M", "--report", &report]);
    cmd.args(["--", "sh", "-c", "tail /dev/zero"]);
    let out = output(cmd);
    match caller {
        Caller::Root => {
            assert_code(&out, 128 + libc::SIGKILL);
            assert_eq!(report_json(&report)["oom_killed"], true);
        }
        Caller::User => {
            let line = assert_refused(&out);
            assert!(line.contains("--memory"), "{line}");
        }
    }
}

/// What reduced mode cannot honour is refused (exit 125, nothing ran), never dropped:
/// `--allow-no-landlock`, `--loopback-tcp`, `--overlay`, `--tmpfs`, a grant moved elsewhere,
/// `--uid`. Control: each runs in the full mode.
#[test]
fn root_options_reduced_mode_cannot_honour_are_refused() {
    require_root();
    let t = TestDir::new("reduced-refuse");
    let src = t.mkdir("src");
    let moved = format!("{src}:/elsewhere");
    let cases: [(&[&str], &str); 6] = [
        (&["--allow-no-landlock"], "needs Landlock"),
        (&["--loopback-tcp"], "--loopback-tcp"),
        (&["--overlay", &src], "--overlay"),
        (&["--tmpfs", "/scratch"], "--tmpfs"),
        (&["--rw", &moved], "host path"),
        (&["--uid", "4242"], "--uid"),
    ];
    let marker = t.join("ran");
    let script = format!("touch {marker} 2>/dev/null; true");
    for (opts, want) in cases {
        let mut cmd = reduced(Caller::Root, opts);
        cmd.args(["--", "sh", "-c", &script]);
        let out = output(cmd);
        let line = assert_refused(&out);
        assert!(line.contains(want), "{opts:?}: {line}");
        assert!(!Path::new(&marker).exists(), "{opts:?} ran something");
        let mut full = command(Caller::Root);
        full.args(opts).args(["--", "true"]);
        assert_code(&output(full), 0);
    }
}

/// `stockade attest` on a running reduced sandbox: `mode: reduced`, the missing layers as
/// `missing` (not FAIL), the supervisor and its command found, seccomp and no_new_privs
/// checked; exit 0.
#[test]
fn root_attest_names_reduced_mode_and_its_missing_layers() {
    require_root();
    let m = random_digits();
    let mut cmd = reduced(Caller::Root, &[]);
    cmd.args(["--", "sleep", &format!("60.{m}")])
        .stdout(Stdio::null());
    let mut cli = cmd.spawn().unwrap();
    let mut sleep = Vec::new();
    wait_until("the command runs", || {
        sleep = pids_with("sleep", &format!("60.{m}"));
        sleep.len() == 1
    });
    let out = Command::new(stockade_bin())
        .args(["attest", &sleep[0].to_string(), "--json"])
        .output()
        .unwrap();
    let _ = cli.kill();
    let _ = cli.wait();
    assert_code(&out, 0);
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r["mode"], "reduced", "{r}");
    let missing: Vec<&str> = r["missing"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    for layer in [
        "user-ns",
        "pid-ns",
        "net-ns",
        "mnt-ns",
        "uts-ns",
        "ipc-ns",
        "cgroup-ns",
        "time-ns",
        "pivot-root",
    ] {
        assert!(missing.contains(&layer), "{layer}: {r}");
    }
    let result = |p: &str| {
        r["checks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["property"] == p)
            .map(|c| c["result"].as_str().unwrap().to_string())
    };
    assert_eq!(result("seccomp").as_deref(), Some("pass"), "{r}");
    assert_eq!(result("no-new-privs").as_deref(), Some("pass"), "{r}");
    assert_eq!(result("capabilities").as_deref(), Some("pass"), "{r}");
    assert_eq!(result("pid-ns").as_deref(), Some("missing"), "{r}");
    assert_eq!(r["processes"].as_array().unwrap().len(), 2, "{r}");
}

/// The other host condition: a user namespace whose `user.max_user_namespaces` is 0. The CLI
/// runs as root inside it (ids 0 and 65534 mapped to the same host ids). Without the opt-in
/// the clone fails with ENOSPC and the message names the opt-in; with it, the limit is seen up
/// front and the command runs reduced.
#[test]
fn root_max_user_namespaces_zero_is_detected() {
    require_root();
    let run_nested = |args: &[&str]| -> Output {
        let (go_r, go_w) = pipe();
        let (ready_r, ready_w) = pipe();
        let mut cmd = Command::new(stockade_bin());
        cmd.arg("run")
            .args(args)
            .current_dir("/")
            .stdin(Stdio::null());
        // SAFETY: the hook makes only async-signal-safe calls (unshare, write, read, open,
        // close) on data prepared before the fork.
        unsafe {
            cmd.pre_exec(move || {
                if libc::unshare(libc::CLONE_NEWUSER) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                // Tell the test we are in the new namespace; wait for our id maps.
                libc::write(ready_w, b"r".as_ptr().cast(), 1);
                let mut b = 0u8;
                if libc::read(go_r, (&mut b as *mut u8).cast(), 1) != 1 {
                    return Err(std::io::Error::other("no id maps"));
                }
                let fd = libc::open(
                    c"/proc/sys/user/max_user_namespaces".as_ptr(),
                    libc::O_WRONLY,
                );
                if fd < 0 || libc::write(fd, b"0\n".as_ptr().cast(), 2) != 2 {
                    return Err(std::io::Error::last_os_error());
                }
                libc::close(fd);
                Ok(())
            });
        }
        let child = std::thread::spawn(move || cmd.output());
        let mut b = 0u8;
        // SAFETY: reading one byte into a local from a pipe we own.
        let got = unsafe { libc::read(ready_r, (&mut b as *mut u8).cast(), 1) };
        assert_eq!(
            got, 1,
            "the nested CLI did not reach its new user namespace"
        );
        let pid = newest_child_in_new_userns();
        for (file, map) in [
            ("uid_map", "0 0 1\n65534 65534 1\n"),
            ("gid_map", "0 0 1\n65534 65534 1\n"),
        ] {
            fs::write(format!("/proc/{pid}/{file}"), map).unwrap_or_else(|e| panic!("{file}: {e}"));
        }
        // SAFETY: writing one byte from a constant to a pipe we own.
        assert_eq!(unsafe { libc::write(go_w, b"g".as_ptr().cast(), 1) }, 1);
        let out = child.join().unwrap().expect("spawn the nested CLI");
        // SAFETY: closing our pipe ends.
        unsafe {
            for fd in [go_r, go_w, ready_r, ready_w] {
                libc::close(fd);
            }
        }
        out
    };
    let out = run_nested(&["--", "true"]);
    let line = assert_refused(&out);
    assert!(
        line.contains("ENOSPC") && line.contains("--allow-reduced"),
        "{line}"
    );
    let out = run_nested(&[
        "--allow-reduced",
        "--",
        "sh",
        "-c",
        "id -u; cat /proc/sys/user/max_user_namespaces",
    ]);
    assert_code(&out, 0);
    assert_eq!(stdout(&out), "65534\n0\n", "{}", describe(&out));
}

fn pipe() -> (i32, i32) {
    let mut fds = [0; 2];
    // SAFETY: `fds` is a valid array for the kernel to fill. Close-on-exec: open in the
    // fork's hook, gone from the CLI.
    assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
    (fds[0], fds[1])
}

/// The process of ours that is in another user namespace than us and has no id map yet.
fn newest_child_in_new_userns() -> u32 {
    let ours = fs::read_link("/proc/self/ns/user").unwrap();
    let me = std::process::id();
    fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|p| {
            fs::read_to_string(format!("/proc/{p}/status"))
                .is_ok_and(|s| s.lines().any(|l| l == format!("PPid:\t{me}")))
        })
        .filter(|p| fs::read_link(format!("/proc/{p}/ns/user")).is_ok_and(|n| n != ours))
        .filter(|p| {
            fs::read_to_string(format!("/proc/{p}/uid_map")).is_ok_and(|m| m.trim().is_empty())
        })
        .max()
        .expect("the child in its new user namespace")
}
