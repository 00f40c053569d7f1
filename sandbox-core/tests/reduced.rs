//! Reduced mode through the Rust API, on a host made to lack user
//! namespaces: this test process installs (once, on every thread) a seccomp
//! filter that refuses `clone`/`unshare` with `CLONE_NEWUSER` with `EPERM`,
//! as Docker's default profile does, and `clone3` with `ENOSYS`. Every
//! helper the library starts inherits it, so the library's real detection
//! path (its `clone` failing) decides. Root only; the CLI suite
//! (`sandbox-cli/tests/reduced.rs`) covers the unprivileged caller.

mod common;

use std::sync::Once;
use std::time::{Duration, Instant};

use common::{host_pids_with_cmdline, require_root};
use stockade::reduced::Mode;
use stockade::{Layer, Sandbox, Stdio};

/// Make user namespaces unavailable to this process and everything it
/// starts (all threads: `SECCOMP_FILTER_FLAG_TSYNC`).
fn without_user_namespaces() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        require_root();
        const NR: u32 = 0;
        const ARG0: u32 = 16;
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
            ld(NR),
            jeq(libc::SYS_clone3 as u32, 0, 1),
            ret(libc::SECCOMP_RET_ERRNO | libc::ENOSYS as u32),
            jeq(libc::SYS_clone as u32, 1, 0),
            jeq(libc::SYS_unshare as u32, 0, 3),
            ld(ARG0),
            jset(libc::CLONE_NEWUSER as u32, 0, 1),
            ret(libc::SECCOMP_RET_ERRNO | libc::EPERM as u32),
            ret(libc::SECCOMP_RET_ALLOW),
        ];
        let prog = libc::sock_fprog {
            len: filter.len() as u16,
            filter: filter.as_ptr().cast_mut(),
        };
        // SAFETY: `prog` points at `filter`, alive for the call; the kernel
        // copies the program. TSYNC puts every thread of the process under it.
        let rc = unsafe {
            libc::syscall(
                libc::SYS_seccomp,
                libc::SECCOMP_SET_MODE_FILTER,
                libc::SECCOMP_FILTER_FLAG_TSYNC,
                &prog as *const libc::sock_fprog,
            )
        };
        assert_eq!(rc, 0, "seccomp: {}", std::io::Error::last_os_error());
        // Positive control: the condition holds for this process.
        // SAFETY: unshare with an integer flag; fails without side effects here.
        let rc = unsafe { libc::unshare(libc::CLONE_NEWUSER) };
        assert_eq!(
            std::io::Error::last_os_error().raw_os_error(),
            Some(libc::EPERM)
        );
        assert_eq!(rc, -1);
    });
}

fn marker() -> String {
    let mut b = [0u8; 6];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut b))
        .unwrap();
    format!(
        "{}",
        u64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], 0, 0]) % 1_000_000_000
    )
}

/// Wait (at most 5 s) until no host process has `needle` in its command line.
fn gone(needle: &str) -> bool {
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if host_pids_with_cmdline(needle).is_empty() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

#[test]
fn without_the_opt_in_it_is_an_error_naming_the_opt_in() {
    without_user_namespaces();
    let e = Sandbox::new()
        .command(["true"])
        .output()
        .expect_err("a host without user namespaces must fail closed");
    assert_eq!(e.layer(), Layer::UserNamespace, "{e}");
    assert_eq!(e.exit_code(), 125);
    let text = e.to_string();
    assert!(
        text.contains("EPERM") && text.contains("allow_reduced(true)"),
        "{text}"
    );
    assert!(
        text.contains("--allow-reduced") && text.contains("pivot_root"),
        "{text}"
    );
}

#[test]
fn opted_in_the_command_runs_and_says_what_is_missing() {
    without_user_namespaces();
    let out = Sandbox::new()
        .allow_reduced(true)
        .command([
            "sh",
            "-c",
            "id -u; echo $HOME; cat /proc/self/status | grep -E '^(NoNewPrivs|Seccomp|CapEff):'",
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{out:?}");
    assert_eq!(out.status.mode(), Mode::Reduced);
    assert_eq!(
        out.status.missing_layers(),
        Mode::Reduced.missing_layers(true)
    );
    assert!(out.status.missing_layers().contains(&"pid-ns"));
    assert!(out.status.landlock_abi() >= stockade::reduced::MIN_LANDLOCK_ABI);
    let lines: Vec<&str> = stdout.lines().collect();
    // A root caller's command runs as its unprivileged host id.
    assert_eq!(lines[0], "65534", "{stdout}");
    assert!(lines[1].starts_with("/tmp/stockade-"), "{stdout}");
    assert!(
        !std::path::Path::new(lines[1]).exists(),
        "the private temp dir must be removed"
    );
    assert!(stdout.contains("NoNewPrivs:\t1"), "{stdout}");
    assert!(stdout.contains("Seccomp:\t2"), "{stdout}");
    assert!(stdout.contains("CapEff:\t0000000000000000"), "{stdout}");
}

#[test]
fn attest_reports_reduced_mode_and_kill_ends_the_whole_tree() {
    without_user_namespaces();
    let m = marker();
    let script = format!("setsid sleep 300.{m} & (sleep 301.{m} &); exec sleep 302.{m}");
    let mut child = Sandbox::new()
        .allow_reduced(true)
        .stdout(Stdio::null())
        .command(["sh", "-c", &script])
        .spawn()
        .unwrap();
    assert_eq!(child.mode(), Mode::Reduced);
    let deadline = Instant::now() + Duration::from_secs(5);
    while host_pids_with_cmdline(&format!(".{m}")).len() < 3 {
        assert!(Instant::now() < deadline, "the tree did not start");
        std::thread::sleep(Duration::from_millis(10));
    }
    let report = child.attest().unwrap();
    assert_eq!(report.mode, Mode::Reduced, "{report}");
    assert!(report.passed(), "{report}");
    assert_eq!(report.init, Some(child.pid()), "{report}");
    for layer in ["user-ns", "pid-ns", "net-ns", "mnt-ns", "pivot-root"] {
        assert!(
            report.missing.iter().any(|m| m == layer),
            "{layer}: {report}"
        );
    }
    use stockade::attest::{Outcome, Property};
    for p in [
        Property::Seccomp,
        Property::NoNewPrivs,
        Property::Capabilities,
    ] {
        assert_eq!(
            report.check(p).unwrap().result,
            Outcome::Pass,
            "{p}: {report}"
        );
    }
    // Four processes: the supervisor and the three sleeps (one setsid'd,
    // one orphaned to the supervisor).
    assert_eq!(report.processes.len(), 4, "{report}");
    child.kill().unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.signal(), Some(libc::SIGKILL));
    assert!(
        host_pids_with_cmdline(&format!(".{m}")).is_empty(),
        "the tree outlived kill()"
    );
}

#[test]
fn dropping_the_child_and_the_timeout_end_daemons_too() {
    without_user_namespaces();
    let m = marker();
    let daemonize = |tag: &str| {
        format!("setsid sleep 400.{tag}{m} & (sleep 401.{tag}{m} &); sleep 402.{tag}{m}")
    };
    // Timeout: reported only once every process is gone.
    let out = Sandbox::new()
        .allow_reduced(true)
        .timeout(Duration::from_millis(500))
        .command(["sh", "-c", &daemonize("1")])
        .output()
        .unwrap();
    assert!(out.status.timed_out(), "{out:?}");
    assert_eq!(out.status.exit_code(), 124);
    assert!(
        host_pids_with_cmdline(&format!("1{m}")).is_empty(),
        "daemons outlived the timeout"
    );
    // Drop: the supervisor sees its channel close and kills everything.
    let child = Sandbox::new()
        .allow_reduced(true)
        .command(["sh", "-c", &daemonize("2")])
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while host_pids_with_cmdline(&format!("2{m}")).len() < 3 {
        assert!(Instant::now() < deadline, "the tree did not start");
        std::thread::sleep(Duration::from_millis(10));
    }
    drop(child);
    assert!(gone(&format!("2{m}")), "daemons outlived the dropped Child");
}

#[test]
fn options_reduced_mode_cannot_honour_fail_closed() {
    without_user_namespaces();
    let base = || Sandbox::new().allow_reduced(true).command(["true"]);
    let here = std::fs::canonicalize(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let cases: Vec<(Sandbox, &str)> = vec![
        (base().require_landlock(false), "needs Landlock"),
        (base().allow_loopback_tcp(true), "--loopback-tcp"),
        (base().uid(4242), "--uid/--gid"),
        (
            base().fs(stockade::Fs::minimal().overlay(&here)),
            "--overlay",
        ),
        (
            base().fs(stockade::Fs::minimal().tmpfs("/scratch", 1 << 20)),
            "--tmpfs",
        ),
        (
            base().fs(stockade::Fs::minimal().rw_at(&here, "/work")),
            "host path",
        ),
        (
            base().limits(stockade::Limits::new().cpu(0.5)).uid(4242),
            "--uid/--gid",
        ),
    ];
    for (sb, want) in cases {
        let e = sb.output().expect_err(want);
        assert_eq!(e.exit_code(), 125);
        assert!(e.to_string().contains(want), "{want}: {e}");
    }
    // Sessions need the full mode's init.
    let s = Sandbox::new().allow_reduced(true).session();
    assert!(s.is_err());
}

#[test]
fn last_hop_failures_come_back_as_step_and_errno() {
    without_user_namespaces();
    let e = Sandbox::new()
        .allow_reduced(true)
        .cwd("/nonexistent-stockade-dir")
        .command(["true"])
        .output()
        .expect_err("chdir must fail");
    match &e {
        stockade::Error::Setup(f) => {
            assert_eq!(f.step, "chdir to the working directory", "{e}");
            assert_eq!(f.errno, libc::ENOENT, "{e}");
        }
        other => panic!("not a setup failure: {other}"),
    }
    assert_eq!(e.exit_code(), 125);
    // Control: the same sandbox with an existing cwd runs.
    let out = Sandbox::new()
        .allow_reduced(true)
        .cwd("/")
        .command(["true"])
        .output()
        .unwrap();
    assert!(out.status.success());
    // A missing program is 127, as in the full mode.
    let e = Sandbox::new()
        .allow_reduced(true)
        .command(["no-such-program-stockade"])
        .output()
        .expect_err("not found");
    assert_eq!(e.exit_code(), 127, "{e}");
}
