//! Issue 6, limits and attacks held: `--memory`, `--pids`, `--cpu` through the sandbox's
//! cgroup (root on this hybrid host: cgroup v1), the run report's `limits`, `oom_killed`,
//! `peak_memory` and `cpu_time`, and the attacks that need no cgroup (tmp fill, rlimits,
//! priorities, a stopped signal-blocking tree). An unprivileged caller gets no cgroup
//! here (v1 has no delegation): `--pids` falls back to `RLIMIT_NPROC` (per user
//! namespace), `--memory` and `--cpu` fail closed with 125 and the remedy.

#[macro_use]
mod common;

use std::time::{Duration, Instant};

use common::{assert_code, describe, run, sh, stderr, stdout, Caller, TestDir};

for_each_caller! {
    root_fork_bomb_stops_at_pids_and_the_caller_can_still_fork,
    user_fork_bomb_stops_at_pids_and_the_caller_can_still_fork
        => fork_bomb;
    root_memory_bombs_are_oom_killed_and_reported,
    user_memory_bombs_are_oom_killed_and_reported
        => memory_bombs;
    root_cpu_hog_is_throttled_to_the_quota,
    user_cpu_hog_is_throttled_to_the_quota
        => cpu_hog;
    root_tmp_fill_gets_enospc,
    user_tmp_fill_gets_enospc
        => tmp_fill;
    root_rlimit_priority_and_realtime_raises_fail,
    user_rlimit_priority_and_realtime_raises_fail
        => raises_fail;
    root_stopped_signal_blocking_tree_is_killed_at_its_timeout,
    user_stopped_signal_blocking_tree_is_killed_at_its_timeout
        => stopped_tree_times_out;
}

/// The run report of `args` (written to a file the caller owns) and the output.
fn with_report(caller: Caller, args: &[&str]) -> (std::process::Output, serde_json::Value) {
    let dir = TestDir::new("limits");
    caller.own(dir.path());
    let report = dir.join("report.json");
    let mut all = vec!["--report", report.as_str()];
    all.extend_from_slice(args);
    let out = run(caller, &all);
    let text = std::fs::read_to_string(&report)
        .unwrap_or_else(|e| panic!("no report ({e})\n{}", describe(&out)));
    (out, serde_json::from_str(&text).expect("report is JSON"))
}

/// An unprivileged caller on this host: the limit fails closed, naming the layer, why,
/// and the remedy; the report says so and nothing ran.
fn assert_fails_closed(out: &std::process::Output, report: &serde_json::Value, option: &str) {
    let line = common::assert_refused(out);
    assert!(
        line.contains(&format!("{option} cannot be enforced (cgroup layer)")),
        "{line}"
    );
    assert!(line.contains("fix: run stockade as root"), "{line}");
    assert_eq!(report["error"]["layer"], "cgroup", "{report}");
    assert!(report["oom_killed"].is_null(), "{report}");
}

const FORK_BOMB: &str = r#"
import errno, os, signal
n = 0
kids = []
try:
    while n < 1000:
        pid = os.fork()
        if pid == 0:
            signal.pause()
            os._exit(0)
        kids.append(pid)
        n += 1
    print("no limit", n)
except OSError as e:
    print("forked", n, errno.errorcode[e.errno])
for k in kids:
    os.kill(k, signal.SIGKILL)
"#;

fn fork_bomb(caller: Caller) {
    // The unprivileged caller has other processes running outside: with the
    // RLIMIT_NPROC fallback they must not count (ucounts are per user namespace).
    let outside: Vec<std::process::Child> = (0..8)
        .map(|_| {
            let mut c = std::process::Command::new("runuser");
            c.args(["-u", common::TEST_USER, "--", "sleep", "30"]);
            c.spawn().unwrap()
        })
        .collect();
    let (out, report) = with_report(caller, &["--pids", "32", "--", "python3", "-c", FORK_BOMB]);
    for mut c in outside {
        let _ = c.kill();
        let _ = c.wait();
    }
    assert_code(&out, 0);
    let text = stdout(&out);
    let words: Vec<&str> = text.split_whitespace().collect();
    assert_eq!(words.first(), Some(&"forked"), "{}", describe(&out));
    let n: u32 = words[1].parse().unwrap();
    // 32 tasks: the init and python itself, so at most 30 children.
    assert!((20..=30).contains(&n), "forked {n}\n{}", describe(&out));
    assert_eq!(words[2], "EAGAIN", "{}", describe(&out));
    assert_eq!(report["limits"]["pids"], 32, "{report}");
    let level = report["limits"]["level"].as_str().unwrap();
    match caller {
        // A pids cgroup (v1 on this host).
        Caller::Root => assert!(level.starts_with("cgroup"), "{report}"),
        // No cgroup for an unprivileged caller here: RLIMIT_NPROC in the last hop.
        Caller::User => assert_eq!(level, "rlimit", "{report}"),
    }
    // The caller is not affected: it can still fork.
    let st = match caller {
        Caller::Root => std::process::Command::new("sh")
            .args(["-c", "true & wait"])
            .status(),
        Caller::User => std::process::Command::new("runuser")
            .args(["-u", common::TEST_USER, "--", "sh", "-c", "true & wait"])
            .status(),
    };
    assert!(st.unwrap().success());
    eprintln!("fork bomb ({caller:?}, {level}): {n} children, then EAGAIN");
}

/// Compile a SysV shm bomb (python has no shmget) into `dir`.
fn sysv_bomb(dir: &TestDir) -> String {
    let src = dir.write(
        "shm.c",
        br#"#include <string.h>
#include <sys/ipc.h>
#include <sys/shm.h>
#include <stdio.h>
int main(void) {
    size_t size = 300u << 20;
    int id = shmget(IPC_PRIVATE, size, IPC_CREAT | 0600);
    if (id < 0) { perror("shmget"); return 2; }
    char *p = shmat(id, NULL, 0);
    if (p == (void *)-1) { perror("shmat"); return 3; }
    memset(p, 1, size);
    puts("survived");
    return 0;
}
"#,
    );
    let bin = dir.join("shm");
    let st = std::process::Command::new("gcc")
        .args(["-O1", "-o", &bin, &src])
        .status()
        .expect("gcc");
    assert!(st.success(), "gcc failed");
    bin
}

fn memory_bombs(caller: Caller) {
    let dir = TestDir::new("shm");
    let shm = sysv_bomb(&dir);
    let bombs: [(&str, Vec<&str>); 4] = [
        (
            "malloc",
            vec![
                "--memory",
                "128M",
                "--",
                "python3",
                "-c",
                "b = bytearray(400 << 20); print('survived')",
            ],
        ),
        (
            "tmpfs",
            vec![
                "--memory",
                "128M",
                "--tmpfs",
                "/big:2G",
                "--",
                "sh",
                "-c",
                "head -c 300M /dev/zero > /big/x && echo survived",
            ],
        ),
        (
            // /dev/shm is a 64 MiB tmpfs: fill 60 MiB under a 32 MiB limit.
            "/dev/shm",
            vec![
                "--memory",
                "32M",
                "--",
                "sh",
                "-c",
                "head -c 60M /dev/zero > /dev/shm/x && echo survived",
            ],
        ),
        (
            "sysv shm",
            vec![
                "--memory",
                "128M",
                "--ro",
                dir.path().to_str().unwrap(),
                "--",
                &shm,
            ],
        ),
    ];
    for (what, args) in &bombs {
        let (out, report) = with_report(caller, args);
        if caller == Caller::User {
            assert_fails_closed(&out, &report, "--memory");
            continue;
        }
        assert_code(&out, 137);
        assert!(
            !stdout(&out).contains("survived"),
            "{what}: {}",
            describe(&out)
        );
        assert_eq!(report["oom_killed"], true, "{what}: {report}");
        assert_eq!(report["exit_code"], 137, "{what}: {report}");
        eprintln!(
            "{what}: exit 137, oom_killed true, peak {}",
            report["peak_memory"]
        );
    }
    // Positive control: a small allocation under the same limit.
    let (out, report) = with_report(
        caller,
        &[
            "--memory",
            "128M",
            "--",
            "python3",
            "-c",
            "b = bytearray(16 << 20); print('fine')",
        ],
    );
    if caller == Caller::User {
        return assert_fails_closed(&out, &report, "--memory");
    }
    assert_code(&out, 0);
    assert_eq!(report["oom_killed"], false, "{report}");
    assert!(
        report["peak_memory"].as_u64().unwrap() > 16 << 20,
        "{report}"
    );
    assert_eq!(report["limits"]["memory"], 128u64 << 20, "{report}");
}

const BUSY: &str = r#"
import time
end = time.time() + 2.0
while time.time() < end:
    pass
"#;

fn cpu_hog(caller: Caller) {
    let (out, report) = with_report(caller, &["--cpu", "0.5", "--", "python3", "-c", BUSY]);
    if caller == Caller::User {
        return assert_fails_closed(&out, &report, "--cpu");
    }
    assert_code(&out, 0);
    let cpu = report["cpu_time"].as_f64().unwrap();
    let wall = report["duration"].as_f64().unwrap();
    eprintln!("cpu hog: {cpu:.3} s cpu in {wall:.3} s wall");
    assert!(wall >= 2.0, "{report}");
    assert!(cpu / wall <= 0.6, "throttled to 0.5 core: {report}");
    assert!(cpu >= 0.5, "it did run: {report}");
    // Without a limit no cgroup is made and nothing is known.
    let (out, report) = with_report(caller, &["--", "true"]);
    assert_code(&out, 0);
    assert!(report["oom_killed"].is_null(), "{report}");
    assert!(report["cpu_time"].is_null(), "{report}");
    assert_eq!(report["limits"]["level"], "none", "{report}");
}

fn tmp_fill(caller: Caller) {
    let out = sh(
        caller,
        &["--tmp-size", "16M"],
        "head -c 32M /dev/zero > /tmp/x; echo rc=$?; ls -s /tmp/x",
    );
    assert_code(&out, 0);
    assert!(
        stderr(&out).contains("No space left on device"),
        "{}",
        describe(&out)
    );
    assert!(stdout(&out).contains("rc=1"), "{}", describe(&out));
}

const RAISES: &str = r#"
import os, resource
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
try:
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard + 1, hard + 1))
    print("rlimit raised")
except (ValueError, OSError) as e:
    print("rlimit refused", type(e).__name__)
try:
    os.setpriority(os.PRIO_PROCESS, 0, -20)
    print("priority raised")
except OSError as e:
    print("priority refused", e.errno)
"#;

fn raises_fail(caller: Caller) {
    let out = run(caller, &["--", "python3", "-c", RAISES]);
    assert_code(&out, 0);
    let text = stdout(&out);
    assert!(text.contains("rlimit refused"), "{}", describe(&out));
    assert!(
        text.contains(&format!("priority refused {}", libc::EACCES))
            || text.contains(&format!("priority refused {}", libc::EPERM)),
        "{}",
        describe(&out)
    );
    // RLIMIT_NOFILE: capped at 65536, never raised: a caller's lower limits stay.
    if caller == Caller::Root {
        let out = std::process::Command::new("prlimit")
            .args(["--nofile=1000:2000"])
            .arg(common::stockade_bin())
            .args(["run", "--", "sh", "-c", "ulimit -Sn; ulimit -Hn"])
            .output()
            .unwrap();
        assert_code(&out, 0);
        assert_eq!(stdout(&out), "1000\n2000\n", "{}", describe(&out));
    }
    let out = run(caller, &["--", "chrt", "-f", "10", "true"]);
    assert_ne!(common::code(&out), Some(0), "{}", describe(&out));
    assert!(
        stderr(&out).contains("Operation not permitted"),
        "{}",
        describe(&out)
    );
}

const STOP_AND_BLOCK: &str = r#"
import os, signal
signal.pthread_sigmask(signal.SIG_BLOCK, set(signal.Signals) - {signal.SIGKILL, signal.SIGSTOP})
if os.fork() == 0:
    os.kill(os.getpid(), signal.SIGSTOP)
os.kill(os.getpid(), signal.SIGSTOP)
"#;

fn stopped_tree_times_out(caller: Caller) {
    let start = Instant::now();
    let out = run(
        caller,
        &["--timeout", "1", "--", "python3", "-c", STOP_AND_BLOCK],
    );
    let took = start.elapsed();
    assert_code(&out, 124);
    // timeout 1 s + grace + slack.
    assert!(took < Duration::from_secs(6), "took {took:?}");
}
