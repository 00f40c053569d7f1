//! Warm sessions through the Rust API, as root: one sandbox, many commands.
//!
//! Every test but `no_leftovers_in_the_caller` holds `SHARED` for reading;
//! that one holds it for writing, since it compares the process's fds and
//! children before and after.
//!
//! The latency comparison is `#[ignore]`d; run it with
//! `cargo test -p stockade --release --test session -- --ignored --nocapture`.

mod common;

use std::io::{Read, Write};
use std::sync::RwLock;
use std::time::{Duration, Instant};

use common::{
    host_pids_with_cmdline, in_test_user_run, open_fd_count, our_children, require_root,
    run_as_test_user, text, Workspace,
};
use stockade::{Error, Fs, Net, ProxyPolicy, Sandbox, Session, Stdio};

static SHARED: RwLock<()> = RwLock::new(());

fn shared() -> std::sync::RwLockReadGuard<'static, ()> {
    SHARED.read().unwrap_or_else(|p| p.into_inner())
}

fn session_in(ws: &Workspace) -> Session {
    Sandbox::new()
        .fs(Fs::minimal().rw(ws.path()))
        .session()
        .expect("start a session")
}

/// A marker no other process on the host has: a `sleep` of an odd length.
fn marker_sleep(tag: u32) -> String {
    format!("{}.{:06}", 900 + tag, std::process::id() % 1_000_000)
}

/// Host processes running exactly `sleep <length>` (not the shells whose
/// scripts mention it).
fn sleeping(length: &str) -> usize {
    host_pids_with_cmdline(&format!("sleep {length}"))
        .into_iter()
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .is_ok_and(|c| c == format!("sleep\0{length}\0").as_bytes())
        })
        .count()
}

/// Wait (a little) until exactly `n` processes run `sleep <length>`.
fn assert_sleeping(length: &str, n: usize, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while sleeping(length) != n {
        assert!(
            Instant::now() < deadline,
            "{what}: {} processes run `sleep {length}`, expected {n}",
            sleeping(length)
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn assert_gone(length: &str, what: &str) {
    assert_sleeping(length, 0, what)
}

fn sh(session: &Session, script: &str) -> stockade::Output {
    session
        .command(["sh", "-c", script])
        .output()
        .expect("run a command")
}

#[test]
fn sequential_commands_share_files() {
    require_root();
    let _g = shared();
    let ws = Workspace::new("session-files");
    let session = session_in(&ws);
    let out = sh(&session, "echo one > note && echo two > /tmp/scratch");
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = sh(&session, "cat note /tmp/scratch");
    assert_eq!(text(&out.stdout), "one\ntwo\n", "{}", text(&out.stderr));
    // The grant is the host's directory; the sandbox's /tmp is its own.
    assert_eq!(
        std::fs::read_to_string(ws.path().join("note")).unwrap(),
        "one\n"
    );
    session.close().unwrap();
}

#[test]
fn env_and_cwd_per_command() {
    require_root();
    let _g = shared();
    let ws = Workspace::new("session-env");
    let session = Sandbox::new()
        .fs(Fs::minimal().rw(ws.path()))
        .env("BASE", "sandbox")
        .env("OVER", "sandbox")
        .session()
        .unwrap();
    let script = "echo $BASE $OVER ${ONLY:-unset}; pwd";
    let out = session
        .command(["sh", "-c", script])
        .env("OVER", "command")
        .env("ONLY", "here")
        .cwd("/tmp")
        .output()
        .unwrap();
    assert_eq!(text(&out.stdout), "sandbox command here\n/tmp\n");
    // The next command starts from the sandbox's defaults again.
    let out = sh(&session, script);
    assert_eq!(
        text(&out.stdout),
        format!("sandbox sandbox unset\n{}\n", ws.str())
    );
}

#[test]
fn exit_codes_and_exec_failures() {
    require_root();
    let _g = shared();
    let ws = Workspace::new("session-exit");
    std::fs::write(ws.path().join("plain"), "not a program").unwrap();
    let session = session_in(&ws);
    assert_eq!(sh(&session, "true").status.code(), Some(0));
    let st = sh(&session, "exit 3").status;
    assert_eq!(
        (st.code(), st.exit_code(), st.success()),
        (Some(3), 3, false)
    );
    let st = sh(&session, "kill -TERM $$").status;
    assert_eq!((st.signal(), st.exit_code()), (Some(libc::SIGTERM), 143));

    let err = session
        .command(["no-such-program-xyz"])
        .output()
        .expect_err("not found");
    assert!(matches!(err, Error::NotFound(_)), "{err:?}");
    assert_eq!(err.exit_code(), 127);
    let plain = ws.path().join("plain");
    let err = session
        .command([plain.to_str().unwrap()])
        .output()
        .expect_err("not executable");
    assert!(matches!(err, Error::NotExecutable { .. }), "{err:?}");
    assert_eq!(err.exit_code(), 126);
    let err = session.command(Vec::<String>::new()).output().unwrap_err();
    assert!(matches!(err, Error::Policy(_)), "{err:?}");
    // A failed command leaves the session usable.
    assert!(sh(&session, "true").status.success());
}

#[test]
fn concurrent_commands_keep_their_own_output() {
    require_root();
    let _g = shared();
    let ws = Workspace::new("session-concurrent");
    let session = session_in(&ws);
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..8)
            .map(|i| {
                let session = &session;
                s.spawn(move || {
                    let out = session
                        .command([
                            "sh",
                            "-c",
                            "sleep 0.2; echo out $N; echo err $N >&2; exit $N",
                        ])
                        .env("N", i.to_string())
                        .output()
                        .unwrap();
                    assert_eq!(text(&out.stdout), format!("out {i}\n"));
                    assert_eq!(text(&out.stderr), format!("err {i}\n"));
                    assert_eq!(out.status.code(), Some(i));
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
    });
}

#[test]
fn a_timeout_kills_only_its_own_command() {
    require_root();
    let _g = shared();
    let ws = Workspace::new("session-timeout");
    let session = session_in(&ws);
    let (child_sleep, own_group, escaped) = (marker_sleep(1), marker_sleep(6), marker_sleep(7));
    // One child in the command's group, one moved to a group of its own
    // (still in the command's session), one escaped with setsid.
    let script = format!(
        "sleep {child_sleep} & \
         python3 -c 'import os; os.setpgid(0, 0); os.execvp(\"sleep\", [\"sleep\", \"{own_group}\"])' & \
         setsid sleep {escaped} & sleep 60"
    );
    let slow = session
        .command(["sh", "-c", &script])
        .timeout(Duration::from_millis(500))
        .stdout(Stdio::Null)
        .spawn()
        .unwrap();
    let started = Instant::now();
    let other = session
        .command(["sh", "-c", "sleep 1.5; echo finished"])
        .output()
        .unwrap();
    let mut slow = slow;
    let st = slow.wait().unwrap();
    assert!(st.timed_out(), "{st}");
    assert_eq!(st.exit_code(), 124);
    assert!(
        st.duration() < Duration::from_secs(5),
        "{:?}",
        st.duration()
    );
    // The timed-out command's children went with it, unless escaped ...
    assert_gone(&child_sleep, "the timed-out command's child");
    assert_gone(&own_group, "the timed-out command's child in another group");
    assert_sleeping(&escaped, 1, "a child that called setsid");
    // ... while the concurrent command ran to its end.
    assert!(other.status.success(), "{}", other.status);
    assert_eq!(text(&other.stdout), "finished\n");
    assert!(started.elapsed() >= Duration::from_millis(1500));
    assert!(sh(&session, "true").status.success());
    session.close().unwrap();
    assert_eq!(
        sleeping(&escaped),
        0,
        "the escaped child outlived the session"
    );
}

#[test]
fn kill_stops_one_command() {
    require_root();
    let _g = shared();
    let ws = Workspace::new("session-kill");
    let session = session_in(&ws);
    let victim_sleep = marker_sleep(2);
    let mut victim = session
        .command(["sh", "-c", &format!("sleep {victim_sleep}; true")])
        .spawn()
        .unwrap();
    let bystander = session
        .command(["sh", "-c", "sleep 0.5; echo alive"])
        .stdout(Stdio::Piped)
        .spawn()
        .unwrap();
    assert!(victim.pid() > 1);
    assert!(victim.try_wait().unwrap().is_none());
    victim.kill().unwrap();
    let st = victim.wait().unwrap();
    assert_eq!((st.signal(), st.timed_out()), (Some(libc::SIGKILL), false));
    assert_gone(&victim_sleep, "the killed command's child");
    victim.kill().expect("killing an ended command is harmless");
    let out = bystander.wait_with_output().unwrap();
    assert!(out.status.success());
    assert_eq!(text(&out.stdout), "alive\n");
}

#[test]
fn stdin_can_be_piped() {
    require_root();
    let _g = shared();
    let ws = Workspace::new("session-stdin");
    let session = session_in(&ws);
    let mut child = session
        .command(["tr", "a-z", "A-Z"])
        .stdin(Stdio::Piped)
        .stdout(Stdio::Piped)
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"hello\n").unwrap();
    let mut got = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut got)
        .unwrap();
    assert_eq!(got, "HELLO\n");
    assert!(child.wait().unwrap().success());
}

/// A host file as stdout needs a Landlock rule of its own (reopening it as
/// `/dev/stdout`); `/dev/null` is covered by the session's rules.
#[test]
fn inherited_files_can_be_reopened() {
    require_root();
    let _g = shared();
    let ws = Workspace::new("session-inherit");
    let session = session_in(&ws);
    let outside = Workspace::new("session-inherit-out");
    let log = outside.path().join("log");
    let file = std::fs::File::create(&log).unwrap();
    // The sandbox's host id is `nobody`: the reopen needs the mode to allow
    // it; Landlock is what this is about.
    std::fs::set_permissions(&log, std::os::unix::fs::PermissionsExt::from_mode(0o666)).unwrap();
    let st = session
        .command(["sh", "-c", "echo via-path > /dev/stdout; cat /dev/stdin"])
        .stdin(Stdio::Null)
        .stdout(Stdio::from(file))
        .status()
        .unwrap();
    assert!(st.success(), "{st}");
    assert_eq!(std::fs::read_to_string(&log).unwrap(), "via-path\n");
    // Only pipes and /dev/null: the session's own ruleset serves.
    let out = sh(&session, "cat /dev/stdin && echo ok");
    assert_eq!(text(&out.stdout), "ok\n", "{}", text(&out.stderr));
}

#[test]
fn a_background_process_lives_until_the_session_closes() {
    require_root();
    let _g = shared();
    let ws = Workspace::new("session-background");
    let session = session_in(&ws);
    let (bg, escaped) = (marker_sleep(3), marker_sleep(4));
    let t = Instant::now();
    // Both keep the stdout pipe open: output() must still return at the
    // leader's exit.
    let out = sh(
        &session,
        &format!("sleep {bg} & setsid sleep {escaped} & echo started"),
    );
    assert!(out.status.success());
    assert_eq!(text(&out.stdout), "started\n");
    assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
    for m in [&bg, &escaped] {
        assert_sleeping(m, 1, "a background process after its command");
    }
    // Visible to the next command, like a container's.
    let out = sh(
        &session,
        &format!("pgrep -f 'sleep {bg}' >/dev/null && echo seen"),
    );
    assert_eq!(text(&out.stdout), "seen\n", "{}", text(&out.stderr));
    session.close().unwrap();
    for m in [&bg, &escaped] {
        assert_eq!(sleeping(m), 0, "{m} outlived the session");
    }
}

/// A background process that never stops writing to the captured stdout
/// does not keep `output()` from returning at the leader's exit.
#[test]
fn output_returns_despite_an_endless_background_writer() {
    require_root();
    let _g = shared();
    let ws = Workspace::new("session-writer");
    let session = session_in(&ws);
    let t = Instant::now();
    let out = sh(&session, "yes & echo leader done >&2");
    assert!(out.status.success());
    assert_eq!(text(&out.stderr), "leader done\n");
    // Whatever `yes` wrote until shortly after the leader's end.
    assert!(out.stdout.iter().all(|&b| b == b'y' || b == b'\n'));
    assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
    session.close().unwrap();
}

#[test]
fn dropping_the_session_kills_a_running_command() {
    require_root();
    let _g = shared();
    let ws = Workspace::new("session-drop");
    let session = session_in(&ws);
    let m = marker_sleep(5);
    let mut child = session
        .command(["sh", "-c", &format!("sleep {m}; true")])
        .spawn()
        .unwrap();
    assert_sleeping(&m, 1, "a running command");
    drop(session);
    assert_gone(&m, "after dropping the session");
    let err = child.wait().expect_err("the session has ended");
    assert!(err.to_string().contains("session has ended"), "{err}");
}

/// The caller dying ends the session too: its end of the control channel
/// closes with it. The caller here is this test binary, re-run to own a
/// session (`a_session_owner_to_kill`) and then SIGKILLed.
#[test]
fn the_callers_death_ends_the_session() {
    require_root();
    let _g = shared();
    let m = marker_sleep(8);
    let mut owner = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "a_session_owner_to_kill",
            "--ignored",
            "--nocapture",
        ])
        .env("STOCKADE_SESSION_OWNER_SLEEP", &m)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufReader::new(owner.stdout.take().unwrap());
    let mut line = String::new();
    while !line.contains("session owner ready") {
        line.clear();
        let n = std::io::BufRead::read_line(&mut lines, &mut line).unwrap();
        assert!(n > 0, "the owner ended before it was ready");
    }
    assert_sleeping(&m, 1, "the owner's command");
    owner.kill().unwrap();
    owner.wait().unwrap();
    assert_gone(&m, "after the session's owner died");
}

/// Body of the test above; does nothing unless run by it.
#[test]
#[ignore]
fn a_session_owner_to_kill() {
    let Some(m) = std::env::var_os("STOCKADE_SESSION_OWNER_SLEEP") else {
        return;
    };
    let session = Sandbox::new().session().unwrap();
    let _child = session
        .command(["sleep", m.to_str().unwrap()])
        .stdout(Stdio::Null)
        .spawn()
        .unwrap();
    println!("session owner ready");
    std::thread::sleep(Duration::from_secs(60));
}

/// No new namespaces per command: the same PID 1 and the same namespaces
/// serve every command; a separate sandbox has its own.
#[test]
fn every_command_runs_under_the_same_init() {
    require_root();
    let _g = shared();
    let ws = Workspace::new("session-pid1");
    let session = session_in(&ws);
    let probe =
        "cat /proc/1/comm; readlink /proc/self/ns/pid /proc/self/ns/mnt /proc/self/ns/net; \
                 cut -d' ' -f22 /proc/1/stat";
    let first = text(&sh(&session, probe).stdout);
    assert!(first.starts_with("stockade-init\npid:["), "{first}");
    for _ in 0..3 {
        assert_eq!(text(&sh(&session, probe).stdout), first);
    }
    let cold = Sandbox::new()
        .command(["sh", "-c", probe])
        .output()
        .unwrap();
    assert_ne!(text(&cold.stdout), first);
    assert!(session.pid() > 1);
}

#[test]
fn the_rings_hold_for_every_command() {
    require_root();
    let _g = shared();
    let ws = Workspace::new("session-rings");
    let fenced = Workspace::new("session-rings-fenced");
    // Mounted outside /tmp: Landlock rights add up along a path, and the
    // workspaces may live under /tmp (read-write for Landlock) when the
    // checkout does.
    let session = Sandbox::new()
        .fs(Fs::minimal().rw(ws.path()).rw_at(fenced.path(), "/fenced"))
        .landlock_withhold("/fenced")
        .session()
        .unwrap();
    assert!(session.landlock_abi() >= 1);
    let script = "grep -E '^(Seccomp|NoNewPrivs|CapEff):' /proc/self/status; \
         echo x > /fenced/file 2>&1 || true; echo y > ok && echo wrote"
        .to_string();
    for _ in 0..3 {
        let out = sh(&session, &script);
        let got = text(&out.stdout);
        assert!(got.contains("Seccomp:\t2\n"), "{got}");
        assert!(got.contains("NoNewPrivs:\t1\n"), "{got}");
        assert!(got.contains("CapEff:\t0000000000000000\n"), "{got}");
        assert!(
            text(&out.stderr).contains("Permission denied"),
            "{}",
            text(&out.stderr)
        );
        assert!(got.ends_with("wrote\n"), "{got}");
    }
    assert!(!fenced.path().join("file").exists());
}

/// Each command is its own Landlock domain, and Landlock's signal scoping
/// (ABI 6) keeps a domain from signalling outside itself: a command cannot
/// signal what another command started, not even the background process of
/// an earlier command. Only the command's own kill, its timeout or the
/// session's end reach it.
#[test]
fn commands_cannot_signal_each_other() {
    require_root();
    let _g = shared();
    let ws = Workspace::new("session-signals");
    let session = session_in(&ws);
    if session.landlock_abi() < 6 {
        eprintln!(
            "Landlock ABI {} has no signal scoping: skipped",
            session.landlock_abi()
        );
        return;
    }
    let m = marker_sleep(9);
    let out = sh(&session, &format!("sleep {m} & echo $!"));
    let pid = text(&out.stdout).trim().to_string();
    let out = sh(&session, &format!("kill {pid}"));
    assert!(
        text(&out.stderr).contains("Operation not permitted"),
        "{}",
        text(&out.stderr)
    );
    assert_sleeping(&m, 1, "a process another command tried to kill");
    session.close().unwrap();
    assert_eq!(sleeping(&m), 0);
}

#[test]
fn a_proxy_session_serves_every_command() {
    require_root();
    let _g = shared();
    let ws = Workspace::new("session-proxy");
    let session = Sandbox::new()
        .fs(Fs::minimal().rw(ws.path()))
        .net(Net::Proxy(ProxyPolicy {
            allow: vec!["example.invalid".into()],
            ..ProxyPolicy::default()
        }))
        .session()
        .unwrap();
    for _ in 0..2 {
        // The explicit proxy answers a denied CONNECT itself (403), so
        // this needs no network.
        let out = sh(
            &session,
            "printf 'CONNECT denied.invalid:443 HTTP/1.1\\r\\nHost: denied.invalid:443\\r\\n\\r\\n' \
             | timeout 5 python3 -c 'import socket,sys; s=socket.create_connection((\"127.0.0.1\",3128)); \
             s.sendall(sys.stdin.buffer.read()); print(s.recv(100).split(b\"\\r\\n\")[0].decode())'",
        );
        assert!(
            text(&out.stdout).contains("403"),
            "{} {}",
            text(&out.stdout),
            text(&out.stderr)
        );
        assert!(
            out.proxy_events.iter().any(|e| e.host == "denied.invalid"),
            "{:?}",
            out.proxy_events
        );
    }
    assert_eq!(
        session
            .proxy_events()
            .iter()
            .filter(|e| e.host == "denied.invalid")
            .count(),
        2
    );
}

/// Closing a session leaves no descriptor, child or zombie in the caller.
#[test]
fn no_leftovers_in_the_caller() {
    require_root();
    let _g = SHARED.write().unwrap_or_else(|p| p.into_inner());
    let ws = Workspace::new("session-leaks");
    // Warm up lazily created things (the background worker, runtimes).
    session_in(&ws).close().unwrap();
    let fds = open_fd_count();
    for _ in 0..3 {
        let session = session_in(&ws);
        let _ = sh(&session, "sleep 100 & echo x");
        let mut c = session.command(["sleep", "100"]).spawn().unwrap();
        c.kill().unwrap();
        c.wait().unwrap();
        let _keep_running = session.command(["sleep", "100"]).spawn().unwrap();
        session.close().unwrap();
    }
    assert_eq!(open_fd_count(), fds);
    let deadline = Instant::now() + Duration::from_secs(2);
    while !our_children().is_empty() {
        assert!(
            Instant::now() < deadline,
            "children left: {:?}",
            our_children()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The same session life as an unprivileged caller:
/// `session_as_the_current_user`, run as the test user.
#[test]
fn an_unprivileged_caller_gets_a_session_too() {
    let _g = shared();
    run_as_test_user(
        "session_as_the_current_user",
        &[],
        "unprivileged session ok",
    );
}

/// Body of the test above; does nothing unless run by it.
#[test]
#[ignore]
fn session_as_the_current_user() {
    if !in_test_user_run() {
        return;
    }
    // SAFETY: getuid has no preconditions and cannot fail.
    let uid = unsafe { libc::getuid() };
    let session = Sandbox::new().session().unwrap();
    let out = sh(
        &session,
        "id -u; echo kept > /tmp/f; readlink /proc/self/ns/pid",
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let first = text(&out.stdout);
    assert!(first.starts_with(&format!("{uid}\n")), "{first}");
    let out = sh(
        &session,
        "id -u; cat /tmp/f >&2; readlink /proc/self/ns/pid",
    );
    assert_eq!(text(&out.stdout), first);
    assert_eq!(text(&out.stderr), "kept\n");
    assert_eq!(sh(&session, "exit 7").status.code(), Some(7));
    let st = session
        .command(["sleep", "30"])
        .timeout(Duration::from_millis(200))
        .status()
        .unwrap();
    assert!(st.timed_out());
    session.close().unwrap();
    println!("unprivileged session ok");
}

fn p50(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// Measures, does not assert. See the file's header for how to run it.
#[test]
#[ignore]
fn session_exec_vs_cold_spawn_p50() {
    require_root();
    let _g = SHARED.write().unwrap_or_else(|p| p.into_inner());
    const N: usize = 200;
    let sandbox = Sandbox::new()
        .stdin(Stdio::Null)
        .stdout(Stdio::Null)
        .stderr(Stdio::Null);
    let session = sandbox.session().unwrap();
    let cold = sandbox.clone().command(["/bin/true"]);
    for _ in 0..20 {
        session.command(["/bin/true"]).status().unwrap();
        cold.status().unwrap();
    }
    let (mut warm, mut cold_t, mut bare, mut started) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for _ in 0..N {
        let t = Instant::now();
        assert!(session.command(["/bin/true"]).status().unwrap().success());
        warm.push(t.elapsed());
        let t = Instant::now();
        assert!(cold.status().unwrap().success());
        cold_t.push(t.elapsed());
        let t = Instant::now();
        assert!(std::process::Command::new("/bin/true")
            .status()
            .unwrap()
            .success());
        bare.push(t.elapsed());
        let t = Instant::now();
        let mut c = session.command(["/bin/true"]).spawn().unwrap();
        started.push(t.elapsed());
        c.wait().unwrap();
    }
    eprintln!(
        "p50 of {N}, interleaved: session exec {:?} (of which spawn until exec'd {:?}), \
         cold spawn {:?}, bare std::process exec {:?}",
        p50(warm),
        p50(started),
        p50(cold_t),
        p50(bare)
    );
    // Rss counts the shared pages of the (large) test binary in full; Pss
    // shares them out.
    let rss = |pid: u32| {
        let rollup = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).unwrap();
        let field = |k: &str| {
            rollup
                .lines()
                .find_map(|l| l.strip_prefix(k).map(|v| v.trim().to_string()))
                .unwrap()
        };
        format!("Rss {}, Pss {}", field("Rss:"), field("Pss:"))
    };
    let helper = std::fs::read_to_string(format!("/proc/{}/stat", session.pid())).unwrap();
    let helper: u32 = helper[helper.rfind(')').unwrap() + 2..]
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    eprintln!(
        "idle session: init {}; helper {}",
        rss(session.pid()),
        rss(helper)
    );
}
