//! Attestation from outside through the Rust API, as root and as an
//! unprivileged caller: real sandboxes pass; processes started without a
//! layer fail exactly the properties of the missing layers.

mod common;

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio as StdStdio};
use std::time::{Duration, Instant};

use common::{require_root, text};
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

/// The first process under `ancestor` (at any depth) whose comm is `comm`,
/// once it has exec'd; panics after 10 s.
fn wait_for(ancestor: u32, comm: &str) -> u32 {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(p) = descendants(ancestor)
            .into_iter()
            .find(|&p| stat(p).is_some_and(|(_, c)| c == comm))
        {
            return p;
        }
        assert!(Instant::now() < deadline, "no `{comm}` under {ancestor}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// (ppid, comm) of a process.
fn stat(pid: u32) -> Option<(u32, String)> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (open, close) = (s.find('(')?, s.rfind(')')?);
    let ppid = s[close + 1..].split_whitespace().nth(1)?.parse().ok()?;
    Some((ppid, s[open + 1..close].to_string()))
}

fn descendants(root: u32) -> Vec<u32> {
    let all: Vec<(u32, u32)> = std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse().ok())
        .filter_map(|p| Some((p, stat(p)?.0)))
        .collect();
    let mut out = vec![root];
    let mut i = 0;
    while i < out.len() {
        let parent = out[i];
        out.extend(all.iter().filter(|(_, pp)| *pp == parent).map(|(p, _)| *p));
        i += 1;
    }
    out.remove(0);
    out
}

fn status_field(pid: &str, key: &str) -> String {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    s.lines()
        .find_map(|l| l.strip_prefix(&format!("{key}:")))
        .unwrap()
        .trim()
        .to_string()
}

/// Whether our own network namespace has anything besides `lo` (then a
/// process sharing it must fail `loopback-only`).
fn host_net_beyond_lo() -> bool {
    let dev = std::fs::read_to_string("/proc/self/net/dev").unwrap();
    dev.lines()
        .skip(2)
        .filter_map(|l| l.split_once(':'))
        .any(|(name, _)| name.trim() != "lo")
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

/// Kills the whole process group of a test's helper process on drop.
struct Group(std::process::Child);

impl Group {
    fn spawn(cmd: &mut Command) -> Group {
        Group(
            cmd.process_group(0)
                .stdin(StdStdio::null())
                .spawn()
                .expect("spawn"),
        )
    }
    fn pid(&self) -> u32 {
        self.0.id()
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        // SAFETY: kill(2) on our own child's process group; no memory involved.
        unsafe { libc::kill(-(self.0.id() as i32), libc::SIGKILL) };
        let _ = self.0.wait();
    }
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
    let mut want = vec![
        Property::UserNs,
        Property::PidNs,
        Property::NetNs,
        Property::MntNs,
        Property::UtsNs,
        Property::IpcNs,
        Property::CgroupNs,
        Property::TimeNs,
        Property::LoopbackOnly,
        Property::Seccomp,
        Property::NoNewPrivs,
        Property::Capabilities,
        Property::IdMaps,
        Property::PidNsContainment,
    ];
    if !host_net_beyond_lo() {
        want.retain(|p| *p != Property::LoopbackOnly);
    }
    assert_eq!(r.failed(), want, "{r}");
    assert_eq!(result(&r, Property::CgroupLimits), Outcome::Pass);
    assert!(evidence(&r, Property::NetNs).contains("the same as ours"));
}

/// Every namespace but the network one, no seccomp, no_new_privs set, root
/// mapped to host root: the shape of a hand-made half sandbox.
fn unshare_without_net() -> Command {
    let mut cmd = Command::new("unshare");
    cmd.args([
        "--user",
        "--map-root-user",
        "--pid",
        "--mount",
        "--uts",
        "--ipc",
        "--cgroup",
        "--time",
        "--fork",
        "sh",
        "-c",
        "setpriv --no-new-privs sleep 30 & wait",
    ]);
    cmd
}

#[test]
fn a_half_sandbox_sharing_our_network_fails_exactly_the_missing_layers() {
    require_root();
    let group = Group::spawn(&mut unshare_without_net());
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
    let max: u32 = std::fs::read_to_string("/proc/sys/kernel/pid_max")
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let free = (2..max)
        .rev()
        .find(|p| !Path::new(&format!("/proc/{p}")).exists())
        .unwrap();
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

/// The same as an unprivileged caller: this test binary, copied where the
/// test user can run it, re-runs `attest_as_the_current_user` under `runuser`.
#[test]
fn an_unprivileged_caller_attests_its_own_sandbox() {
    require_root();
    let bin = Path::new("/tmp").join(format!("stockade-attest-test-{}", std::process::id()));
    std::fs::copy(std::env::current_exe().unwrap(), &bin).unwrap();
    std::fs::set_permissions(&bin, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let out = Command::new("/usr/sbin/runuser")
        .args(["-u", "stockade-test", "--"])
        .arg(&bin)
        .args([
            "--exact",
            "attest_as_the_current_user",
            "--ignored",
            "--nocapture",
        ])
        .env("STOCKADE_ATTEST_USER_RUN", "1")
        .current_dir("/")
        .output()
        .unwrap();
    let _ = std::fs::remove_file(&bin);
    let all = format!("{}{}", text(&out.stdout), text(&out.stderr));
    assert!(out.status.success(), "{all}");
    assert!(all.contains("unprivileged attest ok"), "{all}");
}

/// Body of the test above; does nothing unless run by it.
#[test]
#[ignore]
fn attest_as_the_current_user() {
    if std::env::var_os("STOCKADE_ATTEST_USER_RUN").is_none() {
        return;
    }
    // SAFETY: getuid and getgid have no preconditions and cannot fail.
    let (uid, gid) = unsafe { (libc::getuid(), libc::getgid()) };
    assert_ne!(uid, 0, "must run as the unprivileged test user");
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
