//! `stockade attest PID`, driven as an auditor would, as root and as the
//! unprivileged `stockade-test`: 0 on a real sandbox (with and without limits),
//! 1 with the exact failing properties on processes started without a layer,
//! 125 when there is nothing to attest.

#[macro_use]
mod common;
// The process-tree helpers of stockade's own attest tests.
#[path = "../../sandbox-core/tests/common/procs.rs"]
mod procs;

use std::collections::BTreeSet;
use std::process::{Command, Output, Stdio};

use common::{
    assert_code, describe, find_tool, stdout, stockade_bin, test_user, user_stockade_bin, Caller,
    TEST_USER,
};
use procs::{free_pid, host_net_beyond_lo, stat, wait_for, Group, HALF_SANDBOX};

for_each_caller! {
    root_a_running_sandbox_attests_clean, user_a_running_sandbox_attests_clean
        => running_sandbox;
    root_limits_are_reported, user_limits_are_reported
        => limits_reported;
    root_a_plain_process_fails_every_layer, user_a_plain_process_fails_every_layer
        => plain_process;
    root_a_half_sandbox_fails_exactly_the_missing_layers,
    user_a_half_sandbox_fails_exactly_the_missing_layers
        => half_sandbox;
}

/// `stockade attest ARGS...` as `caller`.
fn attest(caller: Caller, args: &[&str]) -> Output {
    let mut cmd = match caller {
        Caller::Root => Command::new(stockade_bin()),
        Caller::User => {
            test_user();
            let mut c = Command::new(find_tool("runuser"));
            c.args(["-u", TEST_USER, "--"]).arg(user_stockade_bin());
            c
        }
    };
    cmd.current_dir("/").arg("attest").args(args);
    cmd.output().expect("cannot run stockade attest")
}

/// `stockade attest --json PID`: the exit code and the report.
fn attest_json(caller: Caller, pid: u32) -> (Output, serde_json::Value) {
    let out = attest(caller, &["--json", &pid.to_string()]);
    let json = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e})\n{}", describe(&out)));
    (out, json)
}

/// Property names with `result`.
fn with(report: &serde_json::Value, result: &str) -> BTreeSet<String> {
    report["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .filter(|c| c["result"] == result)
        .map(|c| c["property"].as_str().unwrap().to_string())
        .collect()
}

fn set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|s| s.to_string()).collect()
}

fn evidence(report: &serde_json::Value, property: &str) -> String {
    let check = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["property"] == property)
        .unwrap_or_else(|| panic!("no {property}"));
    check["evidence"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e.as_str().unwrap())
        .collect::<Vec<_>>()
        .join("\n")
}

/// `cmd` in the background, in `/`, with no stdio of ours.
fn spawn(cmd: &mut Command) -> Group {
    Group::spawn(
        cmd.current_dir("/")
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    )
}

/// `stockade run OPTS... -- sleep 30` as `caller`, in the background.
fn sandbox(caller: Caller, opts: &[&str]) -> Group {
    let mut cmd = common::command(caller);
    cmd.args(opts).args(["--", "sleep", "30"]);
    spawn(&mut cmd)
}

/// `args` as `caller`: root directly, the test user through `setpriv` (which
/// execs, so the program is the process started).
fn as_caller(caller: Caller, args: &[&str]) -> Command {
    let mut cmd = match caller {
        Caller::Root => Command::new(args[0]),
        Caller::User => {
            let u = test_user();
            let mut c = Command::new(find_tool("setpriv"));
            c.arg(format!("--reuid={}", u.uid))
                .arg(format!("--regid={}", u.gid))
                .arg("--clear-groups")
                .arg(args[0]);
            c
        }
    };
    cmd.args(&args[1..]);
    cmd
}

fn running_sandbox(caller: Caller) {
    let run = sandbox(caller, &[]);
    let sleep = wait_for(run.pid(), "sleep");
    // The table: one row per property, exit 0.
    let out = attest(caller, &[&sleep.to_string()]);
    assert_code(&out, 0);
    let table = stdout(&out);
    for p in [
        "user-ns",
        "net-ns",
        "time-ns",
        "loopback-only",
        "seccomp",
        "id-maps",
        "landlock",
    ] {
        assert!(table.lines().any(|l| l.starts_with(p)), "{p}\n{table}");
    }
    assert!(
        table.lines().any(|l| l.starts_with("result: pass")),
        "{table}"
    );
    // JSON: the same verdicts, nothing failed.
    let (out, report) = attest_json(caller, sleep);
    assert_code(&out, 0);
    assert!(with(&report, "fail").is_empty(), "{report:#}");
    assert_eq!(report["processes"][0]["role"], "init", "{report:#}");
    let init = report["init"].as_u64().unwrap() as u32;
    assert_eq!(stat(sleep).unwrap().0, init);
    let host = caller.host_uid();
    let host = if host == 0 { 65534 } else { host };
    assert!(
        evidence(&report, "id-maps").contains(&format!("uid_map `{} {host} 1`", caller.host_uid())),
        "{report:#}"
    );
    match caller {
        Caller::Root => assert_eq!(with(&report, "unknown"), set(&["landlock"]), "{report:#}"),
        // The non-dumpable init hides some namespace links from its own user;
        // the evidence says so, and root sees them all.
        Caller::User => {
            for p in with(&report, "unknown") {
                assert!(
                    p == "landlock" || evidence(&report, &p).contains("attest as root"),
                    "{p}: {report:#}"
                );
            }
            let (out, by_root) = attest_json(Caller::Root, sleep);
            assert_code(&out, 0);
            assert_eq!(with(&by_root, "unknown"), set(&["landlock"]), "{by_root:#}");
        }
    }
}

fn limits_reported(caller: Caller) {
    // Unprivileged on a v1 host, `--memory` fails closed and `--pids` is an rlimit.
    let opts: &[&str] = match caller {
        Caller::Root => &["--memory", "64M", "--pids", "32"],
        Caller::User => &["--pids", "16"],
    };
    let run = sandbox(caller, opts);
    let sleep = wait_for(run.pid(), "sleep");
    let (out, report) = attest_json(caller, sleep);
    assert_code(&out, 0);
    let limits = evidence(&report, "cgroup-limits");
    match caller {
        Caller::Root => {
            assert!(limits.contains("pids.max 32"), "{limits}");
            assert!(
                limits.contains("memory.limit_in_bytes 67108864")
                    || limits.contains("memory.max 67108864"),
                "{limits}"
            );
        }
        Caller::User => assert!(limits.contains("RLIMIT_NPROC 16"), "{limits}"),
    }
    // Positive control: without limits there is no cgroup of its own.
    let plain = sandbox(caller, &[]);
    let (out, report) = attest_json(caller, wait_for(plain.pid(), "sleep"));
    assert_code(&out, 0);
    assert!(
        evidence(&report, "cgroup-limits").contains("no limits set"),
        "{report:#}"
    );
}

fn plain_process(caller: Caller) {
    let plain = spawn(&mut as_caller(caller, &["sleep", "30"]));
    let (out, report) = attest_json(caller, plain.pid());
    assert_code(&out, 1);
    assert!(report["init"].is_null(), "{report:#}");
    let mut want = set(&[
        "user-ns",
        "pid-ns",
        "net-ns",
        "mnt-ns",
        "uts-ns",
        "ipc-ns",
        "cgroup-ns",
        "time-ns",
        "loopback-only",
        "seccomp",
        "no-new-privs",
        // Root's sets are full; a user's bounding set still is.
        "capabilities",
        "id-maps",
        "pid-ns-containment",
    ]);
    if !host_net_beyond_lo() {
        want.remove("loopback-only");
    }
    assert_eq!(with(&report, "fail"), want, "{report:#}");
    // The table says FAIL with the same exit code.
    let out = attest(caller, &[&plain.pid().to_string()]);
    assert_code(&out, 1);
    assert!(
        stdout(&out).contains("result: FAIL: user-ns, pid-ns"),
        "{}",
        describe(&out)
    );
}

/// [`HALF_SANDBOX`] fails exactly the layers it lacks.
fn half_sandbox(caller: Caller) {
    let half = spawn(&mut as_caller(caller, HALF_SANDBOX));
    let sleep = wait_for(half.pid(), "sleep");
    let (out, report) = attest_json(caller, sleep);
    assert_code(&out, 1);
    assert_eq!(report["init"].as_u64(), Some(stat(sleep).unwrap().0 as u64));
    let mut want = set(&["net-ns", "loopback-only", "seccomp", "capabilities"]);
    if caller == Caller::Root {
        // `--map-root-user` as root maps root to host root.
        want.insert("id-maps".into());
    }
    if !host_net_beyond_lo() {
        want.remove("loopback-only");
    }
    assert_eq!(with(&report, "fail"), want, "{report:#}");
    for p in [
        "user-ns",
        "pid-ns",
        "mnt-ns",
        "uts-ns",
        "ipc-ns",
        "cgroup-ns",
        "time-ns",
        "no-new-privs",
        "pid-ns-containment",
    ] {
        assert!(with(&report, "pass").contains(p), "{p}: {report:#}");
    }
}

#[test]
fn a_pid_that_does_not_exist_cannot_be_attested() {
    common::require_root();
    let free = free_pid();
    for json in [false, true] {
        let pid = free.to_string();
        let args: Vec<&str> = if json {
            vec!["--json", &pid]
        } else {
            vec![&pid]
        };
        let out = attest(Caller::Root, &args);
        assert_code(&out, 125);
        assert!(out.stdout.is_empty(), "{}", describe(&out));
        assert_eq!(
            common::stderr(&out),
            format!("stockade: cannot attest pid {free}: no process with pid {free}: nothing to attest\n")
        );
    }
    // Not a pid at all: the usage error code.
    assert_code(&attest(Caller::Root, &["init"]), 125);
}
