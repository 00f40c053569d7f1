//! Process, network, identity and privilege containment, for root and for an unprivileged
//! caller: private pid/net/uts namespaces, no capabilities, a scrubbed environment, no leaked
//! fds, nothing outliving the run or its timeout, and setuid binaries that grant nothing.

#[macro_use]
mod common;

use std::collections::BTreeSet;
use std::fs;
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

use common::*;

for_each_caller! {
    root_proc_shows_only_sandbox_pids_with_init_as_pid1,
    user_proc_shows_only_sandbox_pids_with_init_as_pid1
        => proc_only_sandbox_pids;
    root_network_has_only_loopback_and_no_sys,
    user_network_has_only_loopback_and_no_sys
        => only_loopback;
    root_all_capability_sets_empty_and_no_new_privs,
    user_all_capability_sets_empty_and_no_new_privs
        => no_capabilities;
    root_hostname_is_private_default_and_settable_host_unchanged,
    user_hostname_is_private_default_and_settable_host_unchanged
        => private_hostname;
    root_env_canaries_scrubbed_while_env_and_pass_env_pass,
    user_env_canaries_scrubbed_while_env_and_pass_env_pass
        => env_scrubbed;
    root_inherited_non_cloexec_fd_not_visible_inside,
    user_inherited_non_cloexec_fd_not_visible_inside
        => no_fd_leak;
    root_double_forked_setsid_sleep_gone_after_return,
    user_double_forked_setsid_sleep_gone_after_return
        => nothing_outlives_run;
    root_timeout_kills_plain_sleep_with_124_within_3s,
    user_timeout_kills_plain_sleep_with_124_within_3s
        => timeout_plain;
    root_timeout_kills_term_ignoring_stopped_tree_with_124_leaving_nothing,
    user_timeout_kills_term_ignoring_stopped_tree_with_124_leaving_nothing
        => timeout_hostile_tree;
    root_sigkill_of_cli_takes_whole_sandbox_tree_down,
    user_sigkill_of_cli_takes_whole_sandbox_tree_down
        => cli_death_kills_tree;
    root_setuid_binaries_and_mount_grant_no_privilege,
    user_setuid_binaries_and_mount_grant_no_privilege
        => setuid_grants_nothing;
}

/// Case 5: /proc lists only the sandbox's few pids, PID 1 is stockade-init and the command's parent;
/// a host `sleep` and the test process are neither listed nor signalable.
fn proc_only_sandbox_pids(caller: Caller) {
    let mut host_sleep = Command::new("sleep")
        .arg("30")
        .spawn()
        .expect("spawn host sleep");
    let host_pid = host_sleep.id();
    let me = std::process::id();
    assert!(
        host_pid > 10 && me > 10,
        "host pids too small to be distinguishable: {host_pid} {me}"
    );
    assert!(
        fs::metadata(format!("/proc/{host_pid}")).is_ok(),
        "positive control: the host sleep runs"
    );

    let script = Script::new()
        .raw("echo \"@shpid rc=0 out=$$\"")
        .probe("pids", "ls /proc | grep -E '^[0-9]+$' | sort -n")
        .probe("init_cmdline", "tr '\\0' ' ' < /proc/1/cmdline")
        // Field 4 of the command's (this sh's) stat is its parent pid.
        .raw("echo \"@ppid rc=0 out=$(cut -d' ' -f4 /proc/$$/stat)\"")
        .probe("host_pid_dir", &format!("ls /proc/{host_pid}/"))
        .probe("host_pid_kill", &format!("kill -0 {host_pid}"))
        .probe("test_pid_dir", &format!("cat /proc/{me}/cmdline"))
        .probe("init_kill", "kill -0 1 && echo ok")
        .probe(
            "own_kill",
            "(sleep 30 & kill $!; wait $!; echo $?) 2>/dev/null",
        )
        .build();
    let out = sh(caller, &[] as &[&str], &script);
    let _ = host_sleep.kill();
    let _ = host_sleep.wait();
    assert_code(&out, 0);
    let p = probes(&out);

    let pids: Vec<u32> = p
        .ok_any("pids")
        .split_whitespace()
        .map(|s| s.parse().unwrap())
        .collect();
    assert!(
        pids.contains(&1),
        "PID 1 missing from /proc inside: {pids:?}\n{}",
        p.all()
    );
    assert!(
        pids.len() < 10,
        "too many pids visible inside: {pids:?}\n{}",
        p.all()
    );
    assert!(
        !pids.contains(&host_pid) && !pids.contains(&me),
        "host pid visible: {pids:?}"
    );
    let shpid: u32 = p.ok_any("shpid").parse().unwrap();
    assert!(
        pids.contains(&shpid),
        "the command's own pid {shpid} is listed"
    );
    assert!(
        p.ok_any("init_cmdline").contains("stockade-init"),
        "{}",
        p.all()
    );
    p.ok("ppid", "1");
    // Landlock's signal scoping (ABI 6): the command may signal its own tree
    // but not the init, which is outside its Landlock domain.
    p.fails_with("init_kill", "Operation not permitted");
    // Positive control: a process of the command's own tree can be signalled
    // (143 = killed by SIGTERM).
    p.ok("own_kill", "143");
    p.fails_with("host_pid_dir", "No such file or directory");
    p.fails_with("host_pid_kill", "No such process");
    p.fails_with("test_pid_dir", "No such file or directory");
}

/// Case 6: /proc/net/dev lists only `lo`; /sys/class/net does not exist (no /sys).
fn only_loopback(caller: Caller) {
    let script = Script::new()
        .probe(
            "ifaces",
            "tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' '",
        )
        .probe("lo_up", "grep -c 'lo:' /proc/net/dev")
        .probe("sys_class_net", "ls /sys/class/net")
        .build();
    let out = sh(caller, &[] as &[&str], &script);
    assert_code(&out, 0);
    let p = probes(&out);
    p.ok("ifaces", "lo");
    p.ok("lo_up", "1");
    p.fails_with("sys_class_net", "No such file or directory");
}

/// Case 7: Every capability set is empty and no_new_privs is set inside; the root caller itself
/// does hold capabilities (so the empty sets are the sandbox's doing).
fn no_capabilities(caller: Caller) {
    if caller == Caller::Root {
        let mine = fs::read_to_string("/proc/self/status").unwrap();
        let eff = mine.lines().find(|l| l.starts_with("CapEff:")).unwrap();
        assert!(
            !eff.ends_with("0000000000000000"),
            "positive control: the root caller has caps: {eff}"
        );
    }
    let script = Script::new()
        .probe(
            "status",
            "grep -E '^(Cap(Inh|Prm|Eff|Bnd|Amb)|NoNewPrivs):' /proc/self/status | tr -d '\\t'",
        )
        .probe("uid", "id -u")
        .build();
    let out = sh(caller, &[] as &[&str], &script);
    assert_code(&out, 0);
    let p = probes(&out);
    p.ok(
        "status",
        "CapInh:0000000000000000 CapPrm:0000000000000000 CapEff:0000000000000000 \
         CapBnd:0000000000000000 CapAmb:0000000000000000 NoNewPrivs:1",
    );
    p.ok("uid", &caller.host_uid().to_string());
}

/// Case 8: The hostname is `stockade` by default and `--hostname` sets it; the host's is unchanged.
fn private_hostname(caller: Caller) {
    let host_before = host_hostname();
    let custom = format!("sbx-{}", random_hex(4));
    assert_ne!(host_before, "stockade");

    let script = Script::new()
        .probe("uname", "uname -n")
        .probe("kernel", "cat /proc/sys/kernel/hostname")
        .build();
    let out = sh(caller, &[] as &[&str], &script);
    assert_code(&out, 0);
    let p = probes(&out);
    p.ok("uname", "stockade");
    p.ok("kernel", "stockade");

    let script = Script::new()
        .probe("uname", "uname -n")
        .probe("set", "hostname pwned-host")
        .probe("after", "uname -n")
        .build();
    let out = sh(caller, &["--hostname", &custom], &script);
    assert_code(&out, 0);
    let p = probes(&out);
    p.ok("uname", &custom);
    // Debian's hostname(1) prints this exact text for EPERM from sethostname(2).
    p.fails_with("set", "you must be root to change the host name");
    p.ok("after", &custom);

    assert_eq!(host_hostname(), host_before, "the host's hostname changed");
}

/// Case 9: Secrets in the CLI's environment do not reach the command; `--env` and `--pass-env` do.
fn env_scrubbed(caller: Caller) {
    let mut cmd = command(caller);
    cmd.env("AWS_SECRET_ACCESS_KEY", "canary-aws-secret")
        .env("SSH_AUTH_SOCK", "/tmp/canary-agent.sock")
        .env("LD_PRELOAD", "/nonexistent/stockade-canary-preload.so")
        .env("STOCKADE_PASS_CANARY", "passed-through")
        .args([
            "--env",
            "FOO=bar",
            "--pass-env",
            "STOCKADE_PASS_CANARY",
            "--",
            "env",
        ]);
    let out = cmd.output().unwrap();
    assert_code(&out, 0);
    let text = stdout(&out);
    let vars: BTreeSet<&str> = text.lines().collect();
    assert!(
        vars.contains("FOO=bar"),
        "--env FOO=bar missing\n{}",
        describe(&out)
    );
    assert!(
        vars.contains("STOCKADE_PASS_CANARY=passed-through"),
        "--pass-env missing\n{}",
        describe(&out)
    );
    assert!(
        vars.iter().any(|v| v.starts_with("PATH=")),
        "no PATH inside\n{}",
        describe(&out)
    );
    for canary in ["AWS_SECRET_ACCESS_KEY", "SSH_AUTH_SOCK", "LD_PRELOAD"] {
        assert!(
            !vars.iter().any(|v| v.starts_with(&format!("{canary}="))),
            "{canary} leaked into the sandbox\n{}",
            describe(&out)
        );
    }
    assert!(
        !text.contains("canary-aws-secret") && !text.contains("canary-agent.sock"),
        "{}",
        describe(&out)
    );
}

/// Case 10: A non-CLOEXEC fd the CLI inherits (fd 57) is not open inside; the same setup without the
/// sandbox does show it (positive control for the harness).
fn no_fd_leak(caller: Caller) {
    const LEAK_FD: i32 = 57;
    let t = TestDir::new("fd");
    let secret = t.write("leaky.txt", b"leaked fd content\n");
    let file = fs::File::open(&secret).unwrap(); // CLOEXEC, as std opens it
    let src = file.as_raw_fd();

    let with_leak = |mut cmd: Command| {
        // SAFETY: the closure runs in the forked child before exec and only calls dup2 and
        // fcntl, which are async-signal-safe; dup2 yields a descriptor without FD_CLOEXEC.
        unsafe {
            cmd.pre_exec(move || {
                if libc::dup2(src, LEAK_FD) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                let flags = libc::fcntl(LEAK_FD, libc::F_GETFD);
                if flags < 0 || libc::fcntl(LEAK_FD, libc::F_SETFD, flags & !libc::FD_CLOEXEC) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        cmd.output().unwrap()
    };

    // Positive control: the same caller chain without the sandbox inherits fd 57.
    let mut plain = match caller {
        Caller::Root => Command::new("ls"),
        Caller::User => {
            let mut c = Command::new(find_tool("runuser"));
            c.args(["-u", TEST_USER, "--", "ls"]);
            c
        }
    };
    plain.args(["/proc/self/fd"]).current_dir("/");
    let out = with_leak(plain);
    assert!(
        stdout(&out)
            .split_whitespace()
            .any(|f| f == LEAK_FD.to_string()),
        "positive control: fd {LEAK_FD} should be inherited outside the sandbox\n{}",
        describe(&out)
    );

    let mut cmd = command(caller);
    let script = Script::new()
        .probe("fds", "ls /proc/self/fd | sort -n")
        .probe("leak", &format!("cat /proc/self/fd/{LEAK_FD}"))
        .probe("leak_dev_fd", &format!("cat /dev/fd/{LEAK_FD}"))
        .build();
    cmd.args(["--", "sh", "-c", &script]);
    let out = with_leak(cmd);
    drop(file);
    assert_code(&out, 0);
    let p = probes(&out);
    let fds: BTreeSet<i32> = p
        .ok_any("fds")
        .split_whitespace()
        .map(|s| s.parse().unwrap())
        .collect();
    assert!(
        fds.is_superset(&BTreeSet::from([0, 1, 2])),
        "stdio missing: {fds:?}"
    );
    assert!(
        fds.is_subset(&BTreeSet::from([0, 1, 2, 3])),
        "unexpected fds inside: {fds:?}\n{}",
        p.all()
    );
    assert!(!fds.contains(&LEAK_FD));
    p.fails_with("leak", "No such file or directory");
    p.fails_with("leak_dev_fd", "No such file or directory");
    assert!(!stdout(&out).contains("leaked fd content"));
}

/// Case 11: A double-forked, setsid'd `sleep` does not outlive the run. Positive control: the
/// sandbox saw it running before the command returned.
fn nothing_outlives_run(caller: Caller) {
    let n = random_digits();
    let marker = format!("1000.{n}");
    // The marker never appears literally in this script (so only the sleep carries it), and
    // `[.]` keeps the grep from matching its own command line.
    let script = format!(
        "m=1000.; (setsid sleep \"${{m}}{n}\" &)\n\
         i=0; while [ $i -lt 50 ]; do\n\
           if grep -q -s -a '1000[.]{n}' /proc/[0-9]*/cmdline; then echo started-{n}; break; fi\n\
           i=$((i+1)); sleep 0.05\n\
         done\n\
         echo returned"
    );
    let t0 = Instant::now();
    let out = sh(caller, &[] as &[&str], &script);
    let elapsed = t0.elapsed();
    assert_code(&out, 0);
    assert!(
        stdout(&out).contains(&format!("started-{n}")),
        "the daemon never started\n{}",
        describe(&out)
    );
    assert!(
        elapsed < Duration::from_secs(10),
        "the CLI waited for the daemon: {elapsed:?}"
    );
    let left = procs_with(&marker);
    assert!(left.is_empty(), "processes outlived the sandbox: {left:?}");
}

/// Spawn the CLI and watch the host's process table while it runs: returns the output, the
/// elapsed time, and every (pid, state, cmdline) containing `marker` seen meanwhile (the
/// CLI/runuser processes themselves excluded).
fn watch(
    mut cmd: Command,
    marker: &str,
) -> (std::process::Output, Duration, Vec<(i32, char, String)>) {
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let t0 = Instant::now();
    let mut child = cmd.spawn().expect("spawn the CLI");
    let mut seen = Vec::new();
    loop {
        for (pid, state, cl) in procs_with(marker) {
            let first = cl.split_whitespace().next().unwrap_or("");
            if pid as u32 == child.id() || first.ends_with("runuser") || first.ends_with("stockade")
            {
                continue;
            }
            seen.push((pid, state, cl));
        }
        if child.try_wait().expect("try_wait").is_some() {
            break;
        }
        if t0.elapsed() > Duration::from_secs(20) {
            let _ = child.kill();
            break;
        }
        sleep(Duration::from_millis(20));
    }
    let elapsed = t0.elapsed();
    (
        child.wait_with_output().expect("collect output"),
        elapsed,
        seen,
    )
}

/// Case 12a: `--timeout 1 sleep 100` returns 124 within 3 s, and the sleep is gone.
fn timeout_plain(caller: Caller) {
    let marker = format!("100.{}", random_digits());
    let mut cmd = command(caller);
    cmd.args(["--timeout", "1", "--", "sleep", &marker]);
    let (out, elapsed, seen) = watch(cmd, &marker);
    assert_code(&out, 124);
    assert!(elapsed < Duration::from_secs(3), "timeout took {elapsed:?}");
    assert!(
        elapsed >= Duration::from_millis(900),
        "returned before the timeout: {elapsed:?}"
    );
    assert!(
        seen.iter().any(|(_, _, cl)| cl.starts_with("sleep ")),
        "positive control: sleep was running: {seen:?}"
    );
    assert!(
        procs_with(&marker).is_empty(),
        "left behind: {:?}",
        procs_with(&marker)
    );

    // Positive control: a quick command under the same timeout keeps its own status.
    let out = run(caller, &["--timeout", "1", "--", "sh", "-c", "exit 3"]);
    assert_code(&out, 3);
}

/// Case 12b: A tree that ignores SIGTERM, has a stopped member and a setsid'd grandchild: 124 within
/// 3 s, and nothing of it remains on the host.
fn timeout_hostile_tree(caller: Caller) {
    let n = random_digits();
    let t = TestDir::new("hostile");
    let script = t.write(
        "tree.sh",
        format!(
            "trap '' TERM\n\
             sh -c 'trap \"\" TERM; kill -STOP $$; exec sleep 100.{n}' &\n\
             (trap '' TERM; setsid sleep 200.{n} &)\n\
             echo started\n\
             exec sleep 300.{n}\n"
        )
        .as_bytes(),
    );
    let mut cmd = command(caller);
    cmd.args([
        "--ro",
        t.path().to_str().unwrap(),
        "--timeout",
        "1",
        "--",
        "sh",
        &script,
    ]);
    let (out, elapsed, seen) = watch(cmd, &n);
    assert_code(&out, 124);
    assert!(elapsed < Duration::from_secs(3), "timeout took {elapsed:?}");
    assert!(stdout(&out).contains("started"), "{}", describe(&out));
    // Positive control: every member of the tree existed, and the first one was stopped.
    assert!(
        seen.iter()
            .any(|(_, st, cl)| cl.contains(&format!("sleep 100.{n}")) && *st == 'T'),
        "no stopped member seen: {seen:?}"
    );
    assert!(
        seen.iter()
            .any(|(_, _, cl)| cl.starts_with(&format!("sleep 200.{n}"))),
        "no setsid member seen: {seen:?}"
    );
    assert!(
        seen.iter()
            .any(|(_, _, cl)| cl.starts_with(&format!("sleep 300.{n}"))),
        "no main sleep seen: {seen:?}"
    );
    let left = procs_with(&n);
    assert!(left.is_empty(), "processes outlived the timeout: {left:?}");
}

/// The `stockade` process (not runuser) among `root` and its descendants.
fn find_stockade_pid(root: u32) -> Option<i32> {
    let mut frontier = vec![root as i32];
    let mut all = Vec::new();
    for _ in 0..4 {
        let mut next = Vec::new();
        for e in fs::read_dir("/proc").ok()?.flatten() {
            let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
                continue;
            };
            let Ok(stat) = fs::read_to_string(e.path().join("stat")) else {
                continue;
            };
            let ppid: i32 = stat
                .rsplit_once(") ")
                .and_then(|(_, r)| r.split(' ').nth(1)?.parse().ok())
                .unwrap_or(0);
            if frontier.contains(&ppid) {
                next.push(pid);
            }
        }
        all.extend(next.iter().copied());
        frontier = next;
    }
    all.insert(0, root as i32);
    all.into_iter().find(|pid| {
        fs::read(format!("/proc/{pid}/cmdline"))
            .map(|c| {
                c.split(|b| *b == 0)
                    .next()
                    .unwrap_or(&[])
                    .ends_with(b"/stockade")
            })
            .unwrap_or(false)
    })
}

/// If the CLI itself is SIGKILLed mid-run, the sandbox's whole tree (including a setsid'd,
/// TERM-ignoring daemon) dies with it. Positive control: the tree was running before the kill.
fn cli_death_kills_tree(caller: Caller) {
    let n = random_digits();
    let t = TestDir::new("clikill");
    let script = t.write(
        "tree.sh",
        format!(
            "trap '' TERM HUP\n(trap '' TERM HUP; setsid sleep 500.{n} &)\nexec sleep 400.{n}\n"
        )
        .as_bytes(),
    );
    let mut cmd = command(caller);
    cmd.args(["--ro", t.path().to_str().unwrap(), "--", "sh", &script]);
    cmd.stdout(Stdio::null()).stderr(Stdio::null());
    let mut child = cmd.spawn().expect("spawn the CLI");
    let deadline = Instant::now() + Duration::from_secs(5);
    while procs_with(&n).len() < 2 && Instant::now() < deadline {
        sleep(Duration::from_millis(20));
    }
    let running = procs_with(&n);
    let cli = find_stockade_pid(child.id());
    assert_eq!(
        running.len(),
        2,
        "positive control: both sleeps should run: {running:?}"
    );
    let cli = cli.expect("the stockade process");
    // SAFETY: plain kill(2) of a pid we just found as our descendant.
    assert_eq!(unsafe { libc::kill(cli, libc::SIGKILL) }, 0);
    let _ = child.wait();
    let deadline = Instant::now() + Duration::from_secs(2);
    while !procs_with(&n).is_empty() && Instant::now() < deadline {
        sleep(Duration::from_millis(20));
    }
    let left = procs_with(&n);
    assert!(left.is_empty(), "the sandbox outlived its CLI: {left:?}");
}

/// Case 20: Setuid-root binaries grant nothing: `mount` fails and /tmp is unchanged, `su` fails, and
/// the system dirs are mounted nosuid. Positive control: the setuid bit is there in the view and
/// ordinary commands run.
fn setuid_grants_nothing(caller: Caller) {
    let script = Script::new()
        .probe(
            "suid_bit",
            "stat -c %A /usr/bin/mount /usr/bin/su | cut -c4 | tr -d '\\n'",
        )
        .probe("plain", "true && echo ok")
        .probe("touch", "echo marker > /tmp/before-mount && echo ok")
        .probe("mount", "mount -t tmpfs x /tmp")
        .probe("tmp_after", "cat /tmp/before-mount")
        .probe("su", "su -c 'echo escalated' root")
        .probe(
            "usr_nosuid",
            "grep ' /usr ' /proc/self/mounts | grep -c nosuid",
        )
        .probe("caps_after", "grep CapEff /proc/self/status | tr -d '\\t'")
        // Nested user namespaces (a fresh capability set) are refused by the
        // sandbox's own namespace limit; positive control: the limit reads 0 and
        // a plain process can still be created.
        .probe("userns_limit", "cat /proc/sys/user/max_user_namespaces")
        .probe("unshare_user", "unshare -U true")
        .probe("unshare_user_map_root", "unshare -Ur true")
        .build();
    let out = sh(caller, &[] as &[&str], &script);
    assert_code(&out, 0);
    let p = probes(&out);
    p.ok("suid_bit", "ss");
    p.ok("plain", "ok");
    p.ok("touch", "ok");
    match caller {
        // uid 0 without capabilities: the syscall itself is refused (EPERM).
        Caller::Root => p.fails_with("mount", "permission denied"),
        // The setuid bit did not make mount run as root.
        Caller::User => p.fails_with("mount", "must be superuser"),
    }
    p.ok("tmp_after", "marker");
    let su = p.get("su");
    assert!(
        su.rc != 0 && !su.out.contains("escalated"),
        "su must fail: {su:?}\n{}",
        p.all()
    );
    p.ok("usr_nosuid", "1");
    p.ok("caps_after", "CapEff:0000000000000000");
    p.ok("userns_limit", "0");
    // The seccomp filter refuses unshare(2) first (EPERM)...
    p.fails_with("unshare_user", "Operation not permitted");
    p.fails_with("unshare_user_map_root", "Operation not permitted");

    // ...and with the filter lifted for unshare (ablation), the namespace
    // limit alone still refuses (ENOSPC): each layer holds on its own.
    let script = Script::new()
        .probe("unshare_user", "unshare -U true")
        .probe("unshare_user_map_root", "unshare -Ur true")
        .build();
    let out = sh(caller, &["--syscalls-allow", "unshare"], &script);
    assert_code(&out, 0);
    let p = probes(&out);
    p.fails_with("unshare_user", "No space left on device");
    p.fails_with("unshare_user_map_root", "No space left on device");
}
