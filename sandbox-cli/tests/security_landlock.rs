//! The Landlock layer on its own, for root and for an unprivileged caller:
//! writes to a path that is mounted writable but not granted to Landlock fail
//! with EACCES and leave the host bytes alone (ablation: the mount would let
//! them through), `/dev` and `/proc` take no writes, TCP bind and connect are
//! refused unless `--loopback-tcp`, and inherited files stay usable through
//! `/dev/stdout`. Every denial has a positive control in the same setup.

#[macro_use]
mod common;

use std::fs;
use std::path::Path;

use common::*;

for_each_caller! {
    root_writable_mount_withheld_from_landlock_stays_unwritable,
    user_writable_mount_withheld_from_landlock_stays_unwritable
        => withheld_mount_unwritable;
    root_dev_and_proc_are_writable_mounts_but_landlock_refuses_writes,
    user_dev_and_proc_are_writable_mounts_but_landlock_refuses_writes
        => dev_and_proc_refuse_writes;
    root_tcp_bind_and_connect_refused_unless_loopback_tcp,
    user_tcp_bind_and_connect_refused_unless_loopback_tcp
        => tcp_refused_by_default;
    root_report_names_the_landlock_abi,
    user_report_names_the_landlock_abi
        => report_names_abi;
    root_host_without_landlock_fails_closed_unless_accepted,
    user_host_without_landlock_fails_closed_unless_accepted
        => no_landlock_fails_closed;
    root_host_refusing_seccomp_filters_fails_closed,
    user_host_refusing_seccomp_filters_fails_closed
        => no_seccomp_fails_closed;
}

/// The workspace is bind-mounted read-write in both runs; in the second, the
/// hidden `--landlock-withhold` gives it no Landlock rule. The mount table
/// inside shows it `rw` both times, so only Landlock refuses the writes.
fn withheld_mount_unwritable(caller: Caller) {
    let t = TestDir::new("ll-withhold");
    let src = t.mkdir("rw");
    let f = t.write("rw/data.txt", b"original bytes\n");
    caller.own(Path::new(&src));
    let before = fs::read(&f).unwrap();
    let listing_before = listing(Path::new(&src));
    // Mounted outside /tmp: Landlock rights add up along a path, so beneath
    // /tmp (read-write for Landlock) a withheld mount would still be writable.
    let dst = "/ll-ablation";
    let bind = format!("{src}:{dst}");

    let script = |tag: &str| {
        Script::new()
            .probe(
                "mount_rw",
                &format!(
                    "awk '$2 == \"{dst}\" {{ split($4, o, \",\"); print o[1] }}' /proc/self/mounts"
                ),
            )
            .probe("read", &format!("cat {dst}/data.txt"))
            .probe(
                "overwrite",
                &format!("echo {tag} > {dst}/data.txt && echo ok"),
            )
            .probe(
                "create",
                &format!("echo {tag} > {dst}/new-{tag}.txt && echo ok"),
            )
            .probe("mkdir", &format!("mkdir {dst}/dir-{tag} && echo ok"))
            .build()
    };

    // Positive control: granted to Landlock, the writes land.
    let out = sh(caller, &["--rw", &bind], &script("granted"));
    assert_code(&out, 0);
    let p = probes(&out);
    p.ok("mount_rw", "rw");
    p.ok("read", "original bytes");
    p.ok("overwrite", "ok");
    p.ok("create", "ok");
    p.ok("mkdir", "ok");
    assert_eq!(fs::read_to_string(&f).unwrap(), "granted\n");
    assert!(Path::new(&format!("{src}/new-granted.txt")).exists());
    fs::write(&f, &before).unwrap();
    fs::remove_file(format!("{src}/new-granted.txt")).unwrap();
    fs::remove_dir(format!("{src}/dir-granted")).unwrap();
    caller.own(Path::new(&src));

    // Ablation: the same writable mount, no Landlock rule.
    let out = sh(
        caller,
        &["--rw", &bind, "--landlock-withhold", dst],
        &script("withheld"),
    );
    assert_code(&out, 0);
    let p = probes(&out);
    p.ok("mount_rw", "rw");
    p.fails_with("read", "Permission denied");
    p.fails_with("overwrite", "Permission denied");
    p.fails_with("create", "Permission denied");
    p.fails_with("mkdir", "Permission denied");
    assert_eq!(fs::read(&f).unwrap(), before, "host bytes changed");
    assert_eq!(
        listing(Path::new(&src)),
        listing_before,
        "host listing changed"
    );
}

/// `/dev` is a tmpfs the sandbox's root user owns and `/proc/self` belongs to
/// the command, so without Landlock both would take writes; Landlock grants
/// `/dev` nothing but its device nodes and `/proc` read-only.
fn dev_and_proc_refuse_writes(caller: Caller) {
    let script = Script::new()
        .probe(
            "dev_mount",
            "awk '$2 == \"/dev\" { split($4, o, \",\"); print o[1] }' /proc/self/mounts",
        )
        .probe("dev_mkdir", "mkdir /dev/stockade-x")
        .probe("dev_create", "echo x > /dev/stockade-y")
        .probe("dev_null", "echo x > /dev/null && echo ok")
        .probe("shm_create", "echo x > /dev/shm/ok && cat /dev/shm/ok")
        .probe("proc_read", "grep -c Seccomp /proc/self/status")
        .probe("proc_comm", "echo pwned > /proc/self/comm")
        .probe("proc_oom", "echo 500 > /proc/self/oom_score_adj")
        .build();
    // The default uid inside: 0 for the root caller, the caller's own otherwise.
    let out = sh(caller, &[] as &[&str], &script);
    assert_code(&out, 0);
    let p = probes(&out);
    p.ok("dev_mount", "rw");
    p.fails_with("dev_mkdir", "Permission denied");
    p.fails_with("dev_create", "Permission denied");
    p.ok("dev_null", "ok");
    p.ok("shm_create", "x");
    p.ok("proc_read", "2");
    p.fails_with("proc_comm", "Permission denied");
    p.fails_with("proc_oom", "Permission denied");
}

/// By default Landlock refuses TCP bind (EACCES) and connect (EACCES, where an
/// unrestricted connect to a closed loopback port would be ECONNREFUSED); with
/// `--loopback-tcp` a server on the sandbox's loopback works and the same
/// connect is refused by the kernel instead. The network namespace has only
/// `lo` either way.
fn tcp_refused_by_default(caller: Caller) {
    let py = r#"python3 -c '
import socket
def tryit(f):
    try:
        f(); return "ok"
    except OSError as e:
        return "errno=%d" % e.errno
s = socket.socket(); b = tryit(lambda: s.bind(("127.0.0.1", 0)))
c = tryit(lambda: socket.create_connection(("127.0.0.1", 9), timeout=2))
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); ub = tryit(lambda: u.bind(("127.0.0.1", 0)))
x = tryit(lambda: socket.create_connection(("192.0.2.1", 80), timeout=2))
print("bind", b, "connect", c, "udp", ub, "outside", x)
'"#;
    let out = sh(caller, &[] as &[&str], py);
    assert_code(&out, 0);
    assert_eq!(
        stdout(&out).trim(),
        "bind errno=13 connect errno=13 udp ok outside errno=13",
        "{}",
        describe(&out)
    );

    let out = sh(caller, &["--loopback-tcp"], py);
    assert_code(&out, 0);
    // Bind works, the closed port refuses, the outside is unreachable.
    assert_eq!(
        stdout(&out).trim(),
        "bind ok connect errno=111 udp ok outside errno=101",
        "{}",
        describe(&out)
    );
}

/// `--report` states the Landlock ABI the command ran under (the kernel's, up
/// to the newest we vetted) and that the seccomp filter was attached.
fn report_names_abi(caller: Caller) {
    let t = TestDir::new("ll-report");
    let dir = t.mkdir("out");
    caller.own(Path::new(&dir));
    let report = format!("{dir}/report.json");
    let out = run(caller, &["--report", &report, "--", "true"]);
    assert_code(&out, 0);
    let json: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(&report).unwrap()).unwrap();
    let abi = json["layers"]["landlock_abi"].as_u64().unwrap();
    let kernel = kernel_landlock_abi();
    assert_eq!(abi, kernel.min(7), "{json}");
    assert!(abi >= 1, "this host has Landlock: {json}");
    assert_eq!(json["layers"]["seccomp"], true);
}

/// A host without Landlock, simulated the way a container runtime's seccomp
/// profile hides it: the CLI (and so its helper and the init) runs under a
/// filter that answers the three Landlock calls with ENOSYS. The sandbox must
/// refuse to start (125, one line naming the layer, the errno and both fixes)
/// and run nothing; with `--allow-no-landlock` the same command runs and the
/// report says `landlock_abi: 0` (the other layers still hold: seccomp is on).
fn no_landlock_fails_closed(caller: Caller) {
    let t = TestDir::new("ll-none");
    let dir = t.mkdir("out");
    caller.own(Path::new(&dir));
    let marker = format!("{dir}/ran");
    let report = format!("{dir}/report.json");
    let script = format!("touch {marker}; grep Seccomp: /proc/self/status");

    let out = without_landlock(caller, &["--rw", &dir], &script);
    let line = assert_refused(&out);
    assert!(line.contains("landlock layer"), "{line}");
    assert!(line.contains("ENOSYS"), "{line}");
    // The cause as the host shows it: a seccomp filter hides Landlock
    // (the kernel has it), and the fix names what to allow.
    assert!(line.contains("seccomp filter"), "{line}");
    assert!(line.contains("allow landlock_create_ruleset"), "{line}");
    assert!(line.contains("--allow-no-landlock"), "{line}");
    assert!(
        !Path::new(&marker).exists(),
        "the command ran without Landlock"
    );

    let out = without_landlock(
        caller,
        &["--rw", &dir, "--allow-no-landlock", "--report", &report],
        &script,
    );
    assert_code(&out, 0);
    assert!(stdout(&out).contains("Seccomp:\t2"), "{}", describe(&out));
    assert!(Path::new(&marker).exists());
    let json: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(&report).unwrap()).unwrap();
    assert_eq!(json["layers"]["landlock_abi"], 0, "{json}");
    assert_eq!(json["layers"]["seccomp"], true, "{json}");

    // Positive control: the same CLI without the hiding filter uses Landlock.
    let out = sh(caller, &["--rw", &dir, "--report", &report], "true");
    assert_code(&out, 0);
    let json: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(&report).unwrap()).unwrap();
    assert!(
        json["layers"]["landlock_abi"].as_u64().unwrap() >= 1,
        "{json}"
    );
}

/// `stockade run OPTS -- sh -c SCRIPT` as `caller`, under a seccomp filter
/// that makes `landlock_create_ruleset`, `landlock_add_rule` and
/// `landlock_restrict_self` (444-446) fail with ENOSYS.
fn without_landlock(caller: Caller, opts: &[&str], script: &str) -> std::process::Output {
    under_host_filter(caller, (444, 446), libc::ENOSYS, opts, script)
}

/// A host whose policy refuses new seccomp filters (as a container profile
/// might): the CLI runs under a filter answering `seccomp(2)` (317) with
/// EPERM. The last hop cannot attach the allowlist, so nothing runs: 125 and
/// one line naming the seccomp layer, the step, the errno and the fix.
/// Positive control: the same command without that host filter runs.
fn no_seccomp_fails_closed(caller: Caller) {
    let t = TestDir::new("sc-none");
    let dir = t.mkdir("out");
    caller.own(Path::new(&dir));
    let marker = format!("{dir}/ran");
    let script = format!("touch {marker}");
    let out = under_host_filter(caller, (317, 317), libc::EPERM, &["--rw", &dir], &script);
    let line = assert_refused(&out);
    assert!(line.contains("seccomp layer"), "{line}");
    assert!(line.contains("attach the seccomp filter"), "{line}");
    assert!(line.contains("EPERM"), "{line}");
    assert!(line.contains("Fix: "), "{line}");
    assert!(
        !Path::new(&marker).exists(),
        "the command ran without its filter"
    );

    let out = sh(caller, &["--rw", &dir], &script);
    assert_code(&out, 0);
    assert!(Path::new(&marker).exists());
}

/// `stockade run OPTS -- sh -c SCRIPT` as `caller`, under a seccomp filter
/// that answers syscall numbers `lo..=hi` with `errno` and allows the rest.
fn under_host_filter(
    caller: Caller,
    (lo, hi): (u32, u32),
    errno: i32,
    opts: &[&str],
    script: &str,
) -> std::process::Output {
    use std::os::unix::process::CommandExt;
    let filter = [
        libc::sock_filter {
            code: 0x20,
            jt: 0,
            jf: 0,
            k: 0,
        }, // A = nr
        libc::sock_filter {
            code: 0x35,
            jt: 0,
            jf: 2,
            k: lo,
        }, // nr >= lo?
        libc::sock_filter {
            code: 0x25,
            jt: 1,
            jf: 0,
            k: hi,
        }, // nr > hi?
        libc::sock_filter {
            code: 0x06,
            jt: 0,
            jf: 0,
            k: 0x0005_0000 | errno as u32,
        },
        libc::sock_filter {
            code: 0x06,
            jt: 0,
            jf: 0,
            k: 0x7fff_0000,
        }, // allow
    ];
    let mut cmd = command(caller);
    cmd.args(opts).args(["--", "sh", "-c", script]);
    // SAFETY: runs in the forked child before exec; prctl and seccomp are
    // async-signal-safe raw syscalls on memory (`filter`) that outlives them.
    unsafe {
        cmd.pre_exec(move || {
            let prog = libc::sock_fprog {
                len: filter.len() as u16,
                filter: filter.as_ptr().cast_mut(),
            };
            if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0
                || libc::syscall(libc::SYS_seccomp, libc::SECCOMP_SET_MODE_FILTER, 0, &prog) != 0
            {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    cmd.output().expect("cannot spawn the stockade CLI")
}

/// The kernel's Landlock ABI, straight from the version query.
fn kernel_landlock_abi() -> u64 {
    // SAFETY: the documented version query: NULL attr, size 0, flag VERSION;
    // no memory is read or written.
    let v = unsafe {
        libc::syscall(
            libc::SYS_landlock_create_ruleset,
            std::ptr::null::<libc::c_void>(),
            0usize,
            1u32,
        )
    };
    u64::try_from(v).unwrap_or(0)
}
