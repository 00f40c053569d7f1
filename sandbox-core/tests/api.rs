//! The Rust API as a user would use it: `output`, `status`, `spawn` with pipes,
//! `try_wait`, `kill`, timeouts, drop semantics, errors, identity, and size caps.
//! Every assertion is on an exact outcome.

mod common;

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use common::{host_pids_with_cmdline, require_root, text, Workspace};
use stockade::{Error, Fs, Layer, Limits, Net, ProxyPolicy, Sandbox, Stdio};

fn sh(script: &str) -> Sandbox {
    Sandbox::new().command(["sh", "-c", script])
}

// ---------------------------------------------------------------- running

#[test]
fn output_captures_stdout_stderr_and_exit_code() {
    require_root();
    let out = sh("echo out; echo err >&2; printf 'no newline'; exit 3")
        .output()
        .expect("output");
    assert_eq!(text(&out.stdout), "out\nno newline");
    assert_eq!(text(&out.stderr), "err\n");
    assert_eq!(out.status.code(), Some(3));
    assert_eq!(out.status.signal(), None);
    assert!(!out.status.timed_out());
    assert!(!out.status.success());
    assert_eq!(out.status.exit_code(), 3);
}

#[test]
fn output_success_and_empty_stdin() {
    require_root();
    // output() gives the command /dev/null as stdin: `cat` sees EOF at once.
    let out = Sandbox::new().command(["cat"]).output().expect("output");
    assert!(
        out.status.success(),
        "{}: {}",
        out.status,
        text(&out.stderr)
    );
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(out.status.exit_code(), 0);
    assert!(out.stdout.is_empty());
    assert!(out.stderr.is_empty());
}

#[test]
fn output_captures_large_stdout() {
    require_root();
    // More than a pipe buffer on both streams at once: no deadlock, nothing lost.
    let out =
        sh("head -c 1000000 /dev/zero | tr '\\0' a; head -c 300000 /dev/zero | tr '\\0' b >&2")
            .output()
            .expect("output");
    assert!(out.status.success(), "{}", out.status);
    assert_eq!(out.stdout.len(), 1_000_000);
    assert!(out.stdout.iter().all(|&b| b == b'a'));
    assert_eq!(out.stderr.len(), 300_000);
    assert!(out.stderr.iter().all(|&b| b == b'b'));
}

#[test]
fn status_returns_exit_code() {
    require_root();
    let st = sh("exit 7")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("status");
    assert_eq!(st.code(), Some(7));
    assert_eq!(st.exit_code(), 7);
    assert!(!st.success());
    let ok = Sandbox::new()
        .command(["/bin/true"])
        .status()
        .expect("status");
    assert!(ok.success());
    assert_eq!(ok.code(), Some(0));
}

#[test]
fn spawn_with_piped_stdin_and_stdout() {
    require_root();
    let mut child = Sandbox::new()
        .command(["tr", "a-z", "A-Z"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    assert!(child.pid() > 1, "host pid of the sandbox init");
    assert_eq!(child.id(), child.pid());
    {
        let mut stdin = child.stdin.take().expect("piped stdin");
        stdin.write_all(b"hello sandbox\n").expect("write stdin");
        // Dropping closes the pipe: tr sees EOF.
    }
    let mut got = String::new();
    child
        .stdout
        .take()
        .expect("piped stdout")
        .read_to_string(&mut got)
        .expect("read stdout");
    let mut err = String::new();
    child
        .stderr
        .take()
        .expect("piped stderr")
        .read_to_string(&mut err)
        .expect("read stderr");
    let st = child.wait().expect("wait");
    assert_eq!(got, "HELLO SANDBOX\n");
    assert_eq!(err, "");
    assert!(st.success(), "{st}");
    // wait() again returns the same status.
    assert_eq!(child.wait().expect("second wait").code(), Some(0));
}

#[test]
fn spawn_interactive_round_trips() {
    require_root();
    // A line-at-a-time conversation: the pipes are not buffered to EOF.
    let mut child = sh("while read l; do echo \"got:$l\"; done")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut stdin = child.stdin.take().unwrap();
    let mut stdout = child.stdout.take().unwrap();
    for word in ["one", "two", "three"] {
        writeln!(stdin, "{word}").unwrap();
        stdin.flush().unwrap();
        let want = format!("got:{word}\n");
        let mut buf = vec![0u8; want.len()];
        stdout.read_exact(&mut buf).expect("read reply");
        assert_eq!(text(&buf), want);
    }
    drop(stdin);
    let st = child.wait().expect("wait");
    assert!(st.success(), "{st}");
}

#[test]
fn try_wait_is_none_while_running_and_some_after() {
    require_root();
    let mut child = Sandbox::new()
        .command(["sleep", "0.5"])
        .spawn()
        .expect("spawn");
    assert_eq!(
        child.try_wait().expect("try_wait"),
        None,
        "still running right after spawn"
    );
    assert_eq!(child.try_wait().expect("try_wait"), None, "repeatable");
    let deadline = Instant::now() + Duration::from_secs(10);
    let st = loop {
        if let Some(st) = child.try_wait().expect("try_wait") {
            break st;
        }
        assert!(
            Instant::now() < deadline,
            "sleep 0.5 still running after 10 s"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(st.success(), "{st}");
    assert!(
        st.duration() >= Duration::from_millis(450),
        "duration {:?}",
        st.duration()
    );
    // Once known, the status stays.
    assert_eq!(child.try_wait().expect("try_wait after end"), Some(st));
    assert_eq!(child.wait().expect("wait after end"), st);
}

#[test]
fn kill_running_sleep_reports_sigkill() {
    require_root();
    let mut child = Sandbox::new()
        .command(["sleep", "100"])
        .spawn()
        .expect("spawn");
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(child.try_wait().expect("try_wait"), None);
    let t = Instant::now();
    child.kill().expect("kill");
    let st = child.wait().expect("wait");
    let took = t.elapsed();
    assert!(
        took < Duration::from_secs(2),
        "wait after kill took {took:?}"
    );
    assert_eq!(st.signal(), Some(9), "{st:?}");
    assert_eq!(st.code(), None);
    assert!(!st.timed_out());
    assert!(!st.success());
    assert_eq!(st.exit_code(), 137);
    // kill after the end is harmless.
    child.kill().expect("kill after end");
}

#[test]
fn timeout_kills_and_reports_124() {
    require_root();
    let t = Instant::now();
    let out = Sandbox::new()
        .command(["sleep", "100"])
        .timeout(Duration::from_millis(500))
        .output()
        .expect("output");
    let took = t.elapsed();
    assert!(out.status.timed_out(), "{:?}", out.status);
    assert!(!out.status.success());
    assert_eq!(out.status.exit_code(), 124);
    assert!(
        took >= Duration::from_millis(500),
        "returned before the timeout: {took:?}"
    );
    assert!(took < Duration::from_secs(3), "took {took:?}");
}

#[test]
fn timeout_kills_a_term_ignoring_tree() {
    require_root();
    // The command ignores SIGTERM and leaves a grandchild: the grace period
    // ends in SIGKILL for the whole tree.
    let t = Instant::now();
    let out = sh("trap '' TERM; sleep 100 & sleep 100; wait")
        .timeout(Duration::from_millis(300))
        .kill_grace(Duration::from_millis(200))
        .output()
        .expect("output");
    let took = t.elapsed();
    assert!(out.status.timed_out(), "{:?}", out.status);
    assert_eq!(out.status.exit_code(), 124);
    assert!(took < Duration::from_secs(3), "took {took:?}");
}

#[test]
fn signal_death_is_reported_as_128_plus_n() {
    require_root();
    let out = sh("kill -TERM $$; sleep 5").output().expect("output");
    assert_eq!(out.status.signal(), Some(15), "{:?}", out.status);
    assert_eq!(out.status.code(), None);
    assert_eq!(out.status.exit_code(), 143);
    assert!(!out.status.success());
}

#[test]
fn background_processes_end_with_the_command() {
    require_root();
    // The sandbox does not outlive its command: a background child (even one
    // that detached into its own session) is killed when the command exits,
    // and output() does not wait for it to close the inherited stdout.
    let marker = format!("1001.{}", std::process::id());
    let t = Instant::now();
    let out = sh(&format!(
        "sleep {marker} & setsid sleep {marker} & echo started"
    ))
    .output()
    .expect("output");
    let took = t.elapsed();
    assert!(out.status.success(), "{}", out.status);
    assert_eq!(text(&out.stdout), "started\n");
    assert!(
        took < Duration::from_secs(3),
        "output() waited {took:?} for background processes"
    );
    let deadline = Instant::now() + Duration::from_secs(2);
    while !host_pids_with_cmdline(&marker).is_empty() {
        assert!(
            Instant::now() < deadline,
            "background processes outlived the sandbox: {:?}",
            host_pids_with_cmdline(&marker)
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn dropping_a_child_kills_the_tree() {
    require_root();
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    let marker = format!("1000.{}{:09}", std::process::id(), nanos);
    let script = format!("sleep {marker} & sleep {marker}; wait");
    let child = sh(&script)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");

    // Positive control: the sandboxed processes are host processes, visible
    // in the host's /proc with the marker.
    let deadline = Instant::now() + Duration::from_secs(5);
    let seen = loop {
        let pids = host_pids_with_cmdline(&marker);
        // sh plus two sleeps.
        if pids.len() >= 3 {
            break pids;
        }
        assert!(
            Instant::now() < deadline,
            "marker {marker} never showed up in host /proc: {pids:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(seen.len() >= 3, "{seen:?}");

    let t = Instant::now();
    drop(child);
    let dropped_in = t.elapsed();
    assert!(
        dropped_in < Duration::from_secs(3),
        "drop took {dropped_in:?}"
    );

    // After the drop, nothing with the marker is left (allow a moment for
    // the kernel to reap the killed pid namespace).
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        let left = host_pids_with_cmdline(&marker);
        if left.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "processes survived dropping the Child: {left:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

// ---------------------------------------------------------------- errors

#[test]
fn missing_program_is_not_found_127() {
    require_root();
    for prog in [
        "no-such-program-stockade",
        "/usr/bin/no-such-program-stockade",
    ] {
        let err = Sandbox::new()
            .command([prog])
            .output()
            .expect_err("missing program must fail");
        assert!(
            matches!(err, Error::NotFound(ref p) if p == prog),
            "{prog}: {err:?}"
        );
        assert_eq!(err.exit_code(), 127);
        assert_eq!(err.layer(), Layer::Exec);
        assert!(err.to_string().contains(prog), "{err}");
    }
}

#[test]
fn non_executable_program_is_126() {
    require_root();
    let ws = Workspace::new("noexec");
    let script = ws.path().join("script.sh");
    std::fs::write(&script, "#!/bin/sh\necho hi\n").unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o644)).unwrap();
    let err = Sandbox::new()
        .fs(Fs::minimal().ro(ws.path()))
        .command([script.to_str().unwrap()])
        .output()
        .expect_err("a non-executable file must not run");
    assert!(matches!(err, Error::NotExecutable { .. }), "{err:?}");
    assert_eq!(err.exit_code(), 126);
    assert_eq!(err.layer(), Layer::Exec);
    // A directory cannot be executed either.
    let err = Sandbox::new()
        .command(["/usr"])
        .output()
        .expect_err("a directory must not run");
    assert!(matches!(err, Error::NotExecutable { .. }), "{err:?}");
    assert_eq!(err.exit_code(), 126);
}

#[test]
fn relative_cwd_is_a_policy_error_125() {
    require_root();
    let err = Sandbox::new()
        .command(["/bin/true"])
        .cwd("relative/dir")
        .output()
        .expect_err("relative cwd");
    assert!(matches!(err, Error::Policy(_)), "{err:?}");
    assert_eq!(err.layer(), Layer::Policy);
    assert_eq!(err.exit_code(), 125);
    let err = Sandbox::new()
        .command(["/bin/true"])
        .cwd("/usr/../etc")
        .output()
        .expect_err("cwd with ..");
    assert!(matches!(err, Error::Policy(_)), "{err:?}");
    let err = Sandbox::new().output().expect_err("no command");
    assert!(matches!(err, Error::Policy(_)), "{err:?}");
    assert_eq!(err.exit_code(), 125);
}

#[test]
fn invalid_proxy_patterns_are_policy_errors_before_anything_runs() {
    require_root();
    for (allow, needle) in [("*", "\"*\""), ("evil..example", "evil..example")] {
        let policy = ProxyPolicy {
            allow: vec![allow.into()],
            ..ProxyPolicy::default()
        };
        let err = Sandbox::new()
            .net(Net::Proxy(policy))
            .command(["/bin/true"])
            .output()
            .expect_err("an invalid pattern must be refused");
        assert!(matches!(err, Error::Policy(_)), "{err:?}");
        assert_eq!(err.exit_code(), 125);
        assert!(err.to_string().contains(needle), "{err}");
    }
}

/// Limits through the helper (the library path; the CLI tests cover the
/// in-process one): a cgroup is used, its counters are reported, a memory
/// bomb is OOM-killed and said so, and nothing is left behind.
#[test]
fn limits_use_a_cgroup_through_the_helper() {
    require_root();
    let out = Sandbox::new()
        .limits(Limits::new().memory(64 << 20).pids(64).cpu(1.0))
        .command(["/bin/true"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{:?}", out.status);
    assert_ne!(out.status.limits_level(), stockade::LimitsLevel::None);
    assert_eq!(out.status.oom_killed(), Some(false));
    assert!(out.status.cpu_time().is_some());
    assert!(out.status.peak_memory().is_some_and(|p| p > 0));

    let out = Sandbox::new()
        .limits(Limits::new().memory(32 << 20))
        .command(["python3", "-c", "b = bytearray(200 << 20)"])
        .output()
        .unwrap();
    assert_eq!(out.status.oom_killed(), Some(true), "{:?}", out.status);
    assert_eq!(out.status.exit_code(), 137);

    // Without limits: no cgroup, nothing known.
    let out = Sandbox::new().command(["/bin/true"]).output().unwrap();
    assert_eq!(out.status.oom_killed(), None);
    assert_eq!(out.status.limits_level(), stockade::LimitsLevel::None);
    let left = std::fs::read_to_string("/proc/self/cgroup").unwrap();
    for line in left.lines() {
        let rel = line.splitn(3, ':').nth(2).unwrap_or("");
        let name = line.split(':').nth(1).unwrap_or("");
        if name.contains("memory") {
            let dir = format!("/sys/fs/cgroup/memory{rel}");
            let stale: Vec<_> = std::fs::read_dir(&dir)
                .unwrap()
                .flatten()
                .filter(|e| {
                    e.file_name()
                        .to_string_lossy()
                        .starts_with(&format!("stockade-{}-", std::process::id()))
                })
                .collect();
            assert!(stale.is_empty(), "left behind: {stale:?}");
        }
    }
}

/// A session's limits bound the whole session (one cgroup), and closing it
/// removes the cgroup.
#[test]
fn session_limits_bound_all_commands_and_close_removes_the_cgroup() {
    require_root();
    let session = Sandbox::new()
        .limits(Limits::new().pids(16))
        .session()
        .unwrap();
    let out = session
        .command(["sh", "-c", "cat /proc/self/cgroup | grep pids"])
        .output()
        .unwrap();
    let line = text(&out.stdout);
    assert!(line.contains(":pids:/stockade-"), "{line}");
    let name = line.trim().rsplit('/').next().unwrap().to_string();
    let ours = std::fs::read_to_string("/proc/self/cgroup").unwrap();
    let rel = ours
        .lines()
        .find(|l| l.split(':').nth(1) == Some("pids"))
        .and_then(|l| l.splitn(3, ':').nth(2))
        .unwrap()
        .to_string();
    let dir = format!("/sys/fs/cgroup/pids{rel}/{name}");
    assert!(std::path::Path::new(&dir).exists(), "{dir}");
    let bomb = "n=0; while [ $n -lt 40 ]; do sleep 5 & n=$((n+1)); done";
    let out = session.command(["sh", "-c", bomb]).output().unwrap();
    assert!(!out.status.success(), "pids 16 must stop 40 sleeps");
    session.close().unwrap();
    assert!(!std::path::Path::new(&dir).exists(), "{dir} left behind");
}

#[test]
fn missing_helper_is_a_helper_error_125() {
    require_root();
    let err = Sandbox::new()
        .helper("/nonexistent/stockade-init")
        .command(["/bin/true"])
        .output()
        .expect_err("missing helper");
    assert!(matches!(err, Error::Helper(_)), "{err:?}");
    assert_eq!(err.layer(), Layer::Helper);
    assert_eq!(err.exit_code(), 125);
}

// ---------------------------------------------------------------- identity

#[test]
fn uid_and_gid_inside() {
    require_root();
    let out = Sandbox::new()
        .uid(1000)
        .gid(1000)
        .command(["sh", "-c", "id -u; id -g"])
        .output()
        .expect("output");
    assert!(
        out.status.success(),
        "{}: {}",
        out.status,
        text(&out.stderr)
    );
    assert_eq!(text(&out.stdout), "1000\n1000\n");
}

#[test]
fn default_uid_of_a_root_caller_is_root_inside_but_nobody_outside() {
    require_root();
    let out = Sandbox::new()
        .command(["id", "-u"])
        .output()
        .expect("output");
    assert_eq!(text(&out.stdout), "0\n");
    // On the host, the sandbox's processes run as the unprivileged id.
    let marker = format!("77.{}", std::process::id());
    let child = sh(&format!("sleep {marker}")).spawn().expect("spawn");
    let deadline = Instant::now() + Duration::from_secs(5);
    let pid = loop {
        if let Some(p) = host_pids_with_cmdline(&marker).into_iter().next() {
            break p;
        }
        assert!(Instant::now() < deadline, "never saw {marker}");
        std::thread::sleep(Duration::from_millis(20));
    };
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let uid_line = status.lines().find(|l| l.starts_with("Uid:")).unwrap();
    assert!(
        uid_line.split_whitespace().skip(1).all(|id| id == "65534"),
        "sandbox process runs as {uid_line} on the host"
    );
    drop(child);
}

#[test]
fn hostname_inside() {
    require_root();
    let out = Sandbox::new()
        .hostname("agent")
        .command(["hostname"])
        .output()
        .expect("output");
    assert!(
        out.status.success(),
        "{}: {}",
        out.status,
        text(&out.stderr)
    );
    assert_eq!(text(&out.stdout), "agent\n");
    let out = Sandbox::new()
        .command(["cat", "/proc/sys/kernel/hostname"])
        .output()
        .expect("output");
    assert_eq!(text(&out.stdout), "stockade\n");
}

#[test]
fn env_is_cleared_and_settable() {
    require_root();
    std::env::set_var("STOCKADE_TEST_SECRET", "leak");
    let out = Sandbox::new()
        .env("FOO", "bar")
        .command([
            "sh",
            "-c",
            "echo \"$FOO|$HOME|${STOCKADE_TEST_SECRET-unset}\"",
        ])
        .output()
        .expect("output");
    assert_eq!(text(&out.stdout), "bar|/tmp|unset\n");
}

// ---------------------------------------------------------------- size caps

const DD_2M: &str = "dd if=/dev/zero of={dir}/big bs=1024 count=2048";
const DD_100K: &str = "dd if=/dev/zero of={dir}/small bs=1024 count=100 && wc -c < {dir}/small";

fn assert_capped(fs: Fs, dir: &str) {
    // Positive control: 100 KiB fits.
    let small = Sandbox::new()
        .fs(fs.clone())
        .command(["sh", "-c", &DD_100K.replace("{dir}", dir)])
        .output()
        .unwrap();
    assert!(
        small.status.success(),
        "100 KiB into {dir}: {}: {}",
        small.status,
        text(&small.stderr)
    );
    assert_eq!(text(&small.stdout).trim(), "102400");
    // 2 MiB does not.
    let big = Sandbox::new()
        .fs(fs)
        .command(["sh", "-c", &DD_2M.replace("{dir}", dir)])
        .output()
        .unwrap();
    assert!(!big.status.success(), "2 MiB into a 1 MiB {dir} succeeded");
    assert!(
        text(&big.stderr).contains("No space left on device"),
        "2 MiB into {dir}: {}",
        text(&big.stderr)
    );
}

#[test]
fn tmpfs_is_size_capped() {
    require_root();
    assert_capped(Fs::minimal().tmpfs("/scratch", 1 << 20), "/scratch");
}

#[test]
fn tmp_size_caps_tmp() {
    require_root();
    assert_capped(Fs::minimal().tmp_size(1 << 20), "/tmp");
}

#[test]
fn default_tmp_is_private() {
    require_root();
    let name = format!("stockade-private-{}", std::process::id());
    let host = std::path::Path::new("/tmp").join(&name);
    std::fs::write(&host, "host").unwrap();
    let out = sh(&format!(
        "ls /tmp/{name} 2>&1; echo inside > /tmp/{name}-in; cat /tmp/{name}-in"
    ))
    .output()
    .unwrap();
    let _ = std::fs::remove_file(&host);
    assert!(
        text(&out.stdout).contains("No such file"),
        "host /tmp visible: {}",
        text(&out.stdout)
    );
    assert!(
        text(&out.stdout).ends_with("inside\n"),
        "{}",
        text(&out.stdout)
    );
    assert!(
        !std::path::Path::new(&format!("/tmp/{name}-in")).exists(),
        "sandbox /tmp write reached host"
    );
}

#[test]
fn rw_grant_writes_reach_the_host() {
    require_root();
    let ws = Workspace::new("rw");
    let out = Sandbox::new()
        .fs(Fs::minimal().rw(ws.path()))
        .command(["sh", "-c", "pwd; echo data > out.txt"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}: {}",
        out.status,
        text(&out.stderr)
    );
    // The default cwd is the first rw grant.
    assert_eq!(text(&out.stdout), format!("{}\n", ws.str()));
    assert_eq!(
        std::fs::read_to_string(ws.path().join("out.txt")).unwrap(),
        "data\n"
    );
    // Files the sandbox creates belong to the caller (root) on the host, not
    // to the unprivileged id the sandbox runs as.
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(ws.path().join("out.txt")).unwrap();
    assert_eq!((meta.uid(), meta.gid()), (0, 0));
}

/// A declared pass-through arrives at its target number and works; nothing else
/// beyond 0-2 is open in the command (the descriptor `ls` opens for the listing
/// itself aside); invalid targets are refused before anything runs.
#[test]
fn declared_pass_through_fd_reaches_its_target_and_nothing_else_does() {
    require_root();
    use std::io::Read;
    let (mut rd, wr) = std::io::pipe().unwrap();
    let out = Sandbox::new()
        .pass_fd(wr, 7)
        .command([
            "sh",
            "-c",
            "echo through-fd-7 >&7; ls /proc/self/fd | tr '\\n' ' '",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut got = String::new();
    rd.read_to_string(&mut got).unwrap();
    assert_eq!(
        got, "through-fd-7\n",
        "the pass-through reaches the host's pipe"
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "0 1 2 3 7",
        "only stdio, ls's own dir fd and fd 7"
    );

    for bad in [2, 256, -1] {
        let (_r, w) = std::io::pipe().unwrap();
        let err = Sandbox::new()
            .pass_fd(w, bad)
            .command(["true"])
            .status()
            .unwrap_err();
        assert!(
            matches!(err, stockade::Error::Policy(_)),
            "target {bad}: {err}"
        );
    }
    let (_r1, w1) = std::io::pipe().unwrap();
    let (_r2, w2) = std::io::pipe().unwrap();
    let err = Sandbox::new()
        .pass_fd(w1, 9)
        .pass_fd(w2, 9)
        .command(["true"])
        .status()
        .unwrap_err();
    assert!(
        matches!(err, stockade::Error::Policy(_)),
        "duplicate target: {err}"
    );
}

// ---------------------------------------------------------------- rings

/// The seccomp policy through the API: `.deny` turns an allowed call into
/// EPERM, `.allow` lifts a refused one, and an unknown name is a policy error
/// before anything runs. The command reads its own status: filter attached,
/// `no_new_privs` set, Landlock at the kernel's ABI.
#[test]
fn syscall_overrides_and_status_through_the_api() {
    require_root();
    let probe = r#"python3 -c '
import ctypes, os
libc = ctypes.CDLL(None, use_errno=True)
def call(nr, *a):
    r = libc.syscall(nr, *a)
    return "ok" if r >= 0 else os.strerror(ctypes.get_errno())
st = open("/proc/self/status").read()
print([l.split(":")[1].strip() for l in st.splitlines() if l.startswith(("Seccomp:", "NoNewPrivs:"))])
print("getppid", call(110))
print("ptrace", call(101, 0x4202, 0, 0, 0))
'"#;
    let out = sh(probe).output().unwrap();
    assert_eq!(
        text(&out.stdout),
        "['1', '2']\ngetppid ok\nptrace Operation not permitted\n",
        "{}",
        text(&out.stderr)
    );
    assert!(out.status.landlock_abi() >= 1);

    let out = sh(probe)
        .syscalls(
            stockade::Syscalls::default()
                .deny(["getppid"])
                .allow(["ptrace"]),
        )
        .output()
        .unwrap();
    // PTRACE_INTERRUPT (0x4202) of pid 0 is refused by the kernel itself:
    // the filter let the call through.
    assert_eq!(
        text(&out.stdout),
        "['1', '2']\ngetppid Operation not permitted\nptrace No such process\n",
        "{}",
        text(&out.stderr)
    );

    let err = sh("true")
        .syscalls(stockade::Syscalls::default().allow(["no_such_call"]))
        .output()
        .unwrap_err();
    assert_eq!(err.layer(), Layer::Policy);
    assert_eq!(err.exit_code(), 125);
    assert!(err.to_string().contains("`no_such_call`"), "{err}");
}

/// Landlock through the API: TCP bind is refused by default and allowed with
/// `allow_loopback_tcp(true)`; a writable `/tmp` stays writable (positive
/// control) while `/dev` takes no new files.
#[test]
fn landlock_defaults_and_loopback_opt_in_through_the_api() {
    require_root();
    let probe = r#"python3 -c '
import socket
try:
    socket.socket().bind(("127.0.0.1", 0)); print("bind ok")
except OSError as e:
    print("bind", e.errno)
open("/tmp/x", "w").write("x"); print("tmp ok")
try:
    open("/dev/x", "w")
except OSError as e:
    print("dev", e.errno)
'"#;
    let out = sh(probe).output().unwrap();
    assert_eq!(
        text(&out.stdout),
        "bind 13\ntmp ok\ndev 13\n",
        "{}",
        text(&out.stderr)
    );
    let out = sh(probe).allow_loopback_tcp(true).output().unwrap();
    assert_eq!(
        text(&out.stdout),
        "bind ok\ntmp ok\ndev 13\n",
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn validate_reports_policy_errors_before_anything_runs() {
    use stockade::{Fs, Net, ProxyPolicy};
    let missing = Sandbox::new().fs(Fs::minimal().ro("/nonexistent/stockade/validate"));
    match missing.validate() {
        Err(Error::Policy(m)) => assert!(m.contains("/nonexistent/stockade/validate"), "{m}"),
        other => panic!("a missing path validated: {other:?}"),
    }
    let star = Sandbox::new().net(Net::Proxy(ProxyPolicy {
        allow: vec!["*".into()],
        ..Default::default()
    }));
    assert!(matches!(star.validate(), Err(Error::Policy(_))));
    // Positive control: a good policy validates without a command.
    Sandbox::new()
        .fs(Fs::minimal().ro("/usr"))
        .validate()
        .expect("a good policy");
}
