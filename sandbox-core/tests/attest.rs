//! Attestation from outside through the Rust API, as root and as an
//! unprivileged caller: real sandboxes pass; processes started without a
//! layer fail exactly the properties of the missing layers.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::procs::{free_pid, host_net_beyond_lo, stat, wait_for, Group, HALF_SANDBOX};
use common::{in_test_user_run, require_root, run_as_test_user};
use stockade::attest::{attest_pid, AttestError, Outcome, Property, Report, Role};
use stockade::{Limits, Sandbox, Stdio};

/// A sandbox running `sleep 30` with no stdio of ours.
fn sleeping_sandbox() -> Sandbox {
    Sandbox::new()
        .stdin(Stdio::Null)
        .stdout(Stdio::Null)
        .stderr(Stdio::Null)
        .command(["sleep", "30"])
}

fn status_field(pid: &str, key: &str) -> String {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    s.lines()
        .find_map(|l| l.strip_prefix(&format!("{key}:")))
        .unwrap()
        .trim()
        .to_string()
}

fn result(r: &Report, p: Property) -> Outcome {
    r.check(p).unwrap().result
}

fn evidence(r: &Report, p: Property) -> String {
    r.check(p).unwrap().evidence.join("\n")
}

/// Every property passes but Landlock, which the kernel does not show.
#[track_caller]
fn assert_all_pass(r: &Report) {
    assert!(r.passed(), "{r}");
    assert_eq!(r.with(Outcome::Unknown), [Property::Landlock], "{r}");
}

#[test]
fn a_running_sandbox_passes_and_any_of_its_pids_finds_the_init() {
    require_root();
    let mut child = sleeping_sandbox().spawn().unwrap();
    let sleep = wait_for(child.pid(), "sleep");
    let r = child.attest().unwrap();
    assert_all_pass(&r);
    assert_eq!(r.init, Some(child.pid()));
    assert_eq!(r.processes[0].role, Role::Init);
    assert!(
        r.processes
            .iter()
            .any(|p| p.pid == sleep && p.role == Role::Command),
        "{r}"
    );
    // The filter count comes from the kernel: ours (inherited by the init) + 1.
    let ours: u32 = status_field("self", "Seccomp_filters").parse().unwrap();
    let seccomp = evidence(&r, Property::Seccomp);
    assert!(
        seccomp.contains(&format!(
            "{sleep} (sleep): Seccomp 2, {} filter(s)",
            ours + 1
        )),
        "{seccomp}"
    );
    // A root caller's sandbox maps root inside to nobody outside.
    assert!(
        evidence(&r, Property::IdMaps)
            .contains("uid_map `0 65534 1`, gid_map `0 65534 1`, setgroups deny"),
        "{r}"
    );
    assert!(evidence(&r, Property::CgroupLimits).contains("none were asked for"));
    // The command's pid leads to the same sandbox and the same verdicts.
    let by_command = attest_pid(sleep).unwrap();
    assert_eq!(by_command.init, Some(child.pid()));
    assert_eq!(by_command.pid, sleep);
    assert_all_pass(&by_command);
    // Once the sandbox has ended there is nothing to attest.
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(matches!(child.attest(), Err(AttestError::Vanished(p)) if p == child.pid()));
}

/// The pids cgroup directory of process `pid` (v1 `pids` hierarchy or v2).
fn pids_dir(pid: u32) -> PathBuf {
    let cg = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    for line in cg.lines() {
        let mut f = line.splitn(3, ':');
        let (_, controllers, path) = (f.next(), f.next().unwrap(), f.next().unwrap());
        let base = if controllers.split(',').any(|c| c == "pids") {
            Path::new("/sys/fs/cgroup/pids").to_path_buf()
        } else if controllers.is_empty() {
            Path::new("/sys/fs/cgroup").to_path_buf()
        } else {
            continue;
        };
        let dir = base.join(path.trim_start_matches('/'));
        if dir.join("pids.max").exists() {
            return dir;
        }
    }
    panic!("no pids cgroup for {pid}: {cg}");
}

#[test]
fn limits_are_attested_against_what_was_asked_and_tampering_fails() {
    require_root();
    let child = sleeping_sandbox()
        .limits(Limits::new().memory(64 << 20).pids(32).cpu(0.5))
        .spawn()
        .unwrap();
    let sleep = wait_for(child.pid(), "sleep");
    let r = child.attest().unwrap();
    assert_all_pass(&r);
    let limits = evidence(&r, Property::CgroupLimits);
    for want in [
        "pids.max 32 (pids asked: 32)",
        "67108864 (memory asked: 67108864)",
        "(cpu asked: 500 milli-cores)",
    ] {
        assert!(limits.contains(want), "{want} missing from\n{limits}");
    }
    // Loosen the pids limit behind the host's back: the attestation sees it.
    let dir = pids_dir(child.pid());
    std::fs::write(dir.join("pids.max"), "64").unwrap();
    let r = child.attest().unwrap();
    assert_eq!(r.failed(), [Property::CgroupLimits], "{r}");
    assert!(evidence(&r, Property::CgroupLimits).contains("pids.max 64, but pids 32 was asked"));
    std::fs::write(dir.join("pids.max"), "32").unwrap();
    assert_all_pass(&child.attest().unwrap());
    // Move the command out of the sandbox's cgroup.
    let parent = dir.parent().unwrap().join("cgroup.procs");
    std::fs::write(parent, sleep.to_string()).unwrap();
    let r = child.attest().unwrap();
    assert_eq!(r.failed(), [Property::CgroupLimits], "{r}");
    assert!(
        evidence(&r, Property::CgroupLimits).contains(&format!("{sleep} (sleep): in ")),
        "{r}"
    );
}

#[test]
fn an_idle_session_attests_its_init_then_its_commands() {
    require_root();
    let session = Sandbox::new().session().unwrap();
    let r = session.attest().unwrap();
    assert!(r.passed(), "{r}");
    assert_eq!(r.processes.len(), 1, "{r}");
    assert!(r.notes.iter().any(|n| n.contains("idle")), "{r}");
    assert_eq!(
        r.with(Outcome::Unknown),
        [Property::Seccomp, Property::NoNewPrivs, Property::Landlock]
    );
    let _running = session
        .command(["sleep", "30"])
        .stdout(Stdio::Null)
        .spawn()
        .unwrap();
    let sleep = wait_for(session.pid(), "sleep");
    let r = session.attest().unwrap();
    assert_all_pass(&r);
    assert!(evidence(&r, Property::NoNewPrivs).contains(&format!("{sleep} (sleep): NoNewPrivs 1")));
}

/// Processes that exit while they are read are left out, never a failure.
#[test]
fn processes_exiting_during_the_attestation_are_skipped() {
    require_root();
    let child = Sandbox::new()
        .stdin(Stdio::Null)
        .stdout(Stdio::Null)
        .stderr(Stdio::Null)
        .command([
            "sh",
            "-c",
            "while :; do for i in 1 2 3 4 5 6 7 8; do /bin/true & done; wait; done",
        ])
        .spawn()
        .unwrap();
    wait_for(child.pid(), "sh");
    let (mut rounds, mut seen_more) = (0, false);
    let deadline = Instant::now() + Duration::from_secs(20);
    while (rounds < 50 || !seen_more) && Instant::now() < deadline {
        let r = child.attest().unwrap();
        assert_all_pass(&r);
        seen_more |= r.processes.len() > 2;
        rounds += 1;
    }
    // Positive control: the churn was there to be raced with.
    assert!(seen_more, "no short-lived process was ever caught");
}

#[test]
fn a_plain_child_fails_every_layer_it_lacks() {
    require_root();
    let plain = Group::spawn(Command::new("sleep").arg("30"));
    let r = attest_pid(plain.pid()).unwrap();
    assert_eq!(r.init, None);
    // Every property fails but `cgroup-limits` (none were asked for) and
    // `landlock` (never shown); `loopback-only` when our network has more than `lo`.
    let want: Vec<Property> = Property::ALL
        .into_iter()
        .filter(|p| !matches!(p, Property::CgroupLimits | Property::Landlock))
        .filter(|p| *p != Property::LoopbackOnly || host_net_beyond_lo())
        .collect();
    assert_eq!(r.failed(), want, "{r}");
    assert_eq!(result(&r, Property::CgroupLimits), Outcome::Pass);
    assert!(evidence(&r, Property::NetNs).contains("the same as ours"));
}

#[test]
fn a_half_sandbox_sharing_our_network_fails_exactly_the_missing_layers() {
    require_root();
    // As root, `--map-root-user` maps root to host root.
    let group = Group::spawn(Command::new(HALF_SANDBOX[0]).args(&HALF_SANDBOX[1..]));
    let sleep = wait_for(group.pid(), "sleep");
    let r = attest_pid(sleep).unwrap();
    // sh is PID 1 of the new pid namespace.
    let sh = stat(sleep).unwrap().0;
    assert_eq!(r.init, Some(sh), "{r}");
    let mut want = vec![
        Property::NetNs,
        Property::LoopbackOnly,
        Property::Seccomp,
        Property::Capabilities,
        Property::IdMaps,
    ];
    if !host_net_beyond_lo() {
        want.retain(|p| *p != Property::LoopbackOnly);
    }
    assert_eq!(r.failed(), want, "{r}");
    for p in [
        Property::UserNs,
        Property::PidNs,
        Property::MntNs,
        Property::UtsNs,
        Property::IpcNs,
        Property::CgroupNs,
        Property::TimeNs,
        Property::NoNewPrivs,
        Property::PidNsContainment,
    ] {
        assert_eq!(result(&r, p), Outcome::Pass, "{p}: {r}");
    }
    assert!(
        evidence(&r, Property::IdMaps).contains("maps to host root"),
        "{r}"
    );
    assert!(
        evidence(&r, Property::Seccomp).contains("Seccomp 0 (disabled)"),
        "{r}"
    );
}

#[test]
fn a_pid_that_does_not_exist_cannot_be_attested() {
    require_root();
    let free = free_pid();
    match attest_pid(free) {
        Err(e @ AttestError::NoSuchProcess(p)) if p == free => {
            assert_eq!(
                e.to_string(),
                format!("no process with pid {free}: nothing to attest")
            )
        }
        other => panic!("{other:?}"),
    }
}

/// The same as an unprivileged caller: `attest_as_the_current_user`, run as
/// the test user.
#[test]
fn an_unprivileged_caller_attests_its_own_sandbox() {
    run_as_test_user("attest_as_the_current_user", &[], "unprivileged attest ok");
}

/// Body of the test above; does nothing unless run by it.
#[test]
#[ignore]
fn attest_as_the_current_user() {
    if !in_test_user_run() {
        return;
    }
    // SAFETY: getuid and getgid have no preconditions and cannot fail.
    let (uid, gid) = unsafe { (libc::getuid(), libc::getgid()) };
    let child = sleeping_sandbox()
        .limits(Limits::new().pids(16))
        .spawn()
        .unwrap();
    let sleep = wait_for(child.pid(), "sleep");
    let r = child.attest().unwrap();
    assert!(r.passed(), "{r}");
    // The command is fully readable; the non-dumpable init only partly.
    for p in [
        Property::UserNs,
        Property::PidNs,
        Property::Seccomp,
        Property::NoNewPrivs,
        Property::Capabilities,
        Property::IdMaps,
        Property::CgroupLimits,
        Property::LoopbackOnly,
        Property::PidNsContainment,
    ] {
        assert_eq!(result(&r, p), Outcome::Pass, "{p}: {r}");
    }
    for c in &r.checks {
        if c.result == Outcome::Unknown && c.property != Property::Landlock {
            let e = c.evidence.join("\n");
            assert!(e.contains("attest as root"), "{}: {e}", c.property);
            assert!(
                e.contains(&format!("{sleep} (sleep): ")),
                "{}: {e}",
                c.property
            );
        }
    }
    assert!(
        evidence(&r, Property::IdMaps)
            .contains(&format!("uid_map `{uid} {uid} 1`, gid_map `{gid} {gid} 1`")),
        "{r}"
    );
    // The negative control, as this user: a plain process fails.
    let plain = Group::spawn(Command::new("sleep").arg("30"));
    let r = attest_pid(plain.pid()).unwrap();
    for p in [
        Property::UserNs,
        Property::NetNs,
        Property::Seccomp,
        Property::IdMaps,
    ] {
        assert_eq!(result(&r, p), Outcome::Fail, "{p}: {r}");
    }
    println!("unprivileged attest ok");
}
