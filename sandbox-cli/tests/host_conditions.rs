//! The host conditions stockade meets where agents run (issue 10), simulated on
//! this host: each must give a working sandbox, or exit 125 with one stderr line
//! naming the cause and the fix, and never an unsandboxed run.
//!
//! | condition | simulated by | expected |
//! |---|---|---|
//! | `user.max_user_namespaces = 0` | a user namespace of the test's, its limit set to 0 | 125 |
//! | root in a user namespace lacking id 65534 | `unshare --user --map-root-user` | 125 |
//! | a container's seccomp profile (Docker's default) | a filter set up before exec: clone/unshare/setns with namespace flags EPERM, clone3 ENOSYS | 125 |
//! | the shipped worker seccomp profile | `examples/kubernetes/seccomp/stockade-worker.json` compiled to BPF | runs |
//! | masked `/proc` (nested containers) | a mount namespace: tmpfs over `/proc/sys`, `/dev/null` over `/proc/kcore` | 125 |
//! | read-only `/proc` | `/proc/sys` bound read-only (Docker's read-only paths); `/proc` bind-remounted read-only | 125 |
//! | no Landlock | a filter answering ENOSYS to `landlock_create_ruleset` | 125; `--allow-no-landlock` runs |
//! | an old Landlock ABI | seccomp user notification answers the version query with 3 | runs at ABI 3 |
//! | a container's root without CAP_SYS_ADMIN | `setpriv` drops it from the bounding set | 125 with grants |
//! | inside a stockade sandbox | `stockade run` run by `stockade run` | 125 |
//!
//! "Nothing ran" is checked with a marker: the command prints a random token to
//! its stdout, which is a host file; a refused run leaves the file without it.
//! Each refusal has a positive control, the same setup without the condition,
//! in which the token arrives. The conditions `stockade doctor` can see are
//! checked there too. Ubuntu's AppArmor restriction and cgroup delegation are
//! not simulable here (no AppArmor in this kernel; cgroups are the host's):
//! they are unit-tested on made-up sysctl and mountinfo values in
//! `stockade::doctor`.

#[macro_use]
mod common;

use std::ffi::OsString;
use std::fs;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixDatagram;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;

for_each_caller! {
    root_user_namespaces_disabled_by_limit_zero,
    user_user_namespaces_disabled_by_limit_zero
        => user_namespace_limit_zero;
    root_docker_default_seccomp_blocks_namespaces,
    user_docker_default_seccomp_blocks_namespaces
        => docker_like_seccomp;
    root_shipped_worker_seccomp_profile_runs_the_full_mode,
    user_shipped_worker_seccomp_profile_runs_the_full_mode
        => worker_seccomp_profile;
    root_masked_or_read_only_proc_refused_with_remedy,
    user_masked_or_read_only_proc_refused_with_remedy
        => masked_proc;
    root_no_landlock_refused_unless_allowed,
    user_no_landlock_refused_unless_allowed
        => no_landlock;
    root_old_landlock_abi_runs_at_that_abi,
    user_old_landlock_abi_runs_at_that_abi
        => old_landlock_abi;
}

// ---------------------------------------------------------------------------------------------
// Running the CLI under a condition
// ---------------------------------------------------------------------------------------------

/// One CLI run: its exit code, stderr, and whether the sandboxed command ran.
#[derive(Debug)]
struct Attempt {
    code: Option<i32>,
    stderr: String,
    ran: bool,
    stdout: String,
}

impl Attempt {
    /// Exit 125, one stderr line containing each of `parts`, nothing ran.
    #[track_caller]
    fn refused(&self, parts: &[&str]) {
        assert_eq!(self.code, Some(125), "{self:#?}");
        assert!(
            !self.ran,
            "the command ran although setup failed: {self:#?}"
        );
        let lines: Vec<&str> = self.stderr.trim_end().lines().collect();
        assert_eq!(lines.len(), 1, "one stderr line: {self:#?}");
        assert!(lines[0].starts_with("stockade: "), "{self:#?}");
        for p in parts {
            assert!(lines[0].contains(p), "missing {p:?} in: {}", lines[0]);
        }
    }

    /// Exit 0 and the command ran.
    #[track_caller]
    fn worked(&self) {
        assert_eq!(self.code, Some(0), "{self:#?}");
        assert!(self.ran, "{self:#?}");
    }
}

/// `stockade` (as `caller`) with `args`, as an argv to put after wrappers.
fn cli_argv(caller: Caller, args: &[&str]) -> Vec<OsString> {
    let mut argv: Vec<OsString> = match caller {
        Caller::Root => vec![stockade_bin().into()],
        Caller::User => {
            test_user();
            vec![
                find_tool("runuser").into(),
                "-u".into(),
                TEST_USER.into(),
                "--".into(),
                user_stockade_bin().into(),
            ]
        }
    };
    argv.extend(args.iter().map(OsString::from));
    argv
}

/// `cmd` with the command's stdout going to a host file; `token` in it means it ran.
fn attempt(mut cmd: Command, token: &str) -> Attempt {
    let dir = TestDir::new("hostcond");
    let out_path = dir.path().join("stdout");
    let file = fs::File::create(&out_path).expect("create stdout file");
    let out = cmd
        .current_dir("/")
        .stdin(Stdio::null())
        .stdout(file)
        .stderr(Stdio::piped())
        .output()
        .expect("spawn");
    let stdout = fs::read_to_string(&out_path).unwrap_or_default();
    Attempt {
        code: out.status.code(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        ran: stdout.contains(token),
        stdout,
    }
}

/// A fresh token and `run [opts] -- sh -c 'echo TOKEN'`.
fn marked_run(opts: &[&str]) -> (String, Vec<String>) {
    let token = format!("ran-{}", random_hex(8));
    let mut args: Vec<String> = vec!["run".into()];
    args.extend(opts.iter().map(|s| s.to_string()));
    args.extend([
        "--".into(),
        "sh".into(),
        "-c".into(),
        format!("echo {token}"),
    ]);
    (token, args)
}

fn strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

/// `argv` as a Command.
fn command_of(argv: Vec<OsString>) -> Command {
    let mut cmd = Command::new(&argv[0]);
    cmd.args(&argv[1..]);
    cmd
}

// ---------------------------------------------------------------------------------------------
// Seccomp filters simulating container runtimes (raw classic BPF: these stand
// for someone else's profile, not stockade's own filter)
// ---------------------------------------------------------------------------------------------

mod bpf {
    pub type Prog = Vec<libc::sock_filter>;

    const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;
    const LD_ABS: u16 = (libc::BPF_LD | libc::BPF_W | libc::BPF_ABS) as u16;
    const JEQ: u16 = (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16;
    const JSET: u16 = (libc::BPF_JMP | libc::BPF_JSET | libc::BPF_K) as u16;
    const RET: u16 = (libc::BPF_RET | libc::BPF_K) as u16;

    pub const ALLOW: u32 = libc::SECCOMP_RET_ALLOW;
    pub const NOTIFY: u32 = libc::SECCOMP_RET_USER_NOTIF;

    pub fn errno(e: i32) -> u32 {
        libc::SECCOMP_RET_ERRNO | (e as u32 & libc::SECCOMP_RET_DATA)
    }

    /// What the filter does with one syscall number.
    pub enum Rule {
        Always(u32),
        /// `action` when the low 32 bits of argument `arg` share a bit with `mask`, else allow.
        AnyBit {
            arg: u32,
            mask: u32,
            action: u32,
        },
        /// `action` when the low 32 bits of argument `arg` equal `value`, else allow.
        Equals {
            arg: u32,
            value: u32,
            action: u32,
        },
    }

    fn ins(code: u16, jt: u8, jf: u8, k: u32) -> libc::sock_filter {
        libc::sock_filter { code, jt, jf, k }
    }

    /// Decide by syscall number (x86_64 only; other architectures pass), `default` otherwise.
    pub fn by_number(rules: &[(i64, Rule)], default: u32) -> Prog {
        let mut p = vec![
            ins(LD_ABS, 0, 0, 4),
            ins(JEQ, 1, 0, AUDIT_ARCH_X86_64),
            ins(RET, 0, 0, ALLOW),
            ins(LD_ABS, 0, 0, 0),
        ];
        for (nr, rule) in rules {
            let body: Vec<libc::sock_filter> = match *rule {
                Rule::Always(action) => vec![ins(RET, 0, 0, action)],
                Rule::AnyBit { arg, mask, action } => vec![
                    ins(LD_ABS, 0, 0, 16 + 8 * arg),
                    ins(JSET, 0, 1, mask),
                    ins(RET, 0, 0, action),
                    ins(RET, 0, 0, ALLOW),
                ],
                Rule::Equals { arg, value, action } => vec![
                    ins(LD_ABS, 0, 0, 16 + 8 * arg),
                    ins(JEQ, 0, 1, value),
                    ins(RET, 0, 0, action),
                    ins(RET, 0, 0, ALLOW),
                ],
            };
            p.push(ins(JEQ, 0, body.len() as u8, *nr as u32));
            p.extend(body);
        }
        p.push(ins(RET, 0, 0, default));
        p
    }
}

/// The namespace flags Docker's default profile refuses in `clone` without
/// CAP_SYS_ADMIN (every `CLONE_NEW*` but `CLONE_NEWTIME`).
const DOCKER_NS_MASK: u32 = 0x7E02_0000;

/// Like Docker's default profile towards a container without CAP_SYS_ADMIN:
/// `clone` with namespace flags, `unshare` and `setns` fail with EPERM, `clone3`
/// with ENOSYS (so glibc falls back to `clone`).
fn docker_like_filter() -> bpf::Prog {
    use bpf::Rule::*;
    bpf::by_number(
        &[
            (
                libc::SYS_clone,
                AnyBit {
                    arg: 0,
                    mask: DOCKER_NS_MASK,
                    action: bpf::errno(libc::EPERM),
                },
            ),
            (libc::SYS_clone3, Always(bpf::errno(libc::ENOSYS))),
            (libc::SYS_unshare, Always(bpf::errno(libc::EPERM))),
            (libc::SYS_setns, Always(bpf::errno(libc::EPERM))),
        ],
        bpf::ALLOW,
    )
}

/// A profile that predates Landlock: its three calls are unknown (ENOSYS).
fn no_landlock_filter() -> bpf::Prog {
    use bpf::Rule::*;
    bpf::by_number(
        &[
            (
                libc::SYS_landlock_create_ruleset,
                Always(bpf::errno(libc::ENOSYS)),
            ),
            (
                libc::SYS_landlock_add_rule,
                Always(bpf::errno(libc::ENOSYS)),
            ),
            (
                libc::SYS_landlock_restrict_self,
                Always(bpf::errno(libc::ENOSYS)),
            ),
        ],
        bpf::ALLOW,
    )
}

/// Hands the Landlock version query (`flags == LANDLOCK_CREATE_RULESET_VERSION`)
/// to a user-space listener.
fn landlock_version_notify_filter() -> bpf::Prog {
    bpf::by_number(
        &[(
            libc::SYS_landlock_create_ruleset,
            bpf::Rule::Equals {
                arg: 2,
                value: 1,
                action: bpf::NOTIFY,
            },
        )],
        bpf::ALLOW,
    )
}

/// A Docker/OCI seccomp profile (the JSON format runc, containerd and CRI-O
/// read) as a filter: its named syscalls get their group's action, everything
/// else its default. Only the subset of the format the shipped profile uses.
fn compile_profile(json: &serde_json::Value) -> bpf::Prog {
    let action = |name: &str, errno: Option<i64>| match name {
        "SCMP_ACT_ALLOW" => bpf::ALLOW,
        "SCMP_ACT_ERRNO" => bpf::errno(errno.expect("errnoRet") as i32),
        other => panic!("action {other} is not used by the shipped profile"),
    };
    let default = action(
        json["defaultAction"].as_str().expect("defaultAction"),
        json["defaultErrnoRet"].as_i64(),
    );
    let mut rules = Vec::new();
    for group in json["syscalls"].as_array().expect("syscalls") {
        let act = action(
            group["action"].as_str().expect("action"),
            group["errnoRet"].as_i64(),
        );
        for name in group["names"].as_array().expect("names") {
            let name = name.as_str().expect("name");
            let (_, nr) = stockade::seccomp::lookup(name)
                .unwrap_or_else(|| panic!("{name} is not an x86_64 syscall stockade knows"));
            rules.push((nr, bpf::Rule::Always(act)));
        }
    }
    bpf::by_number(&rules, default)
}

/// Install `prog` in the child just before it execs (root needs no `no_new_privs`).
fn with_filter(cmd: &mut Command, prog: bpf::Prog) {
    // SAFETY: the closure runs in the forked child before exec; it makes one
    // syscall on memory it owns (no allocation, no locks).
    unsafe {
        cmd.pre_exec(move || {
            let fprog = libc::sock_fprog {
                len: prog.len() as u16,
                filter: prog.as_ptr() as *mut libc::sock_filter,
            };
            let ret = libc::syscall(
                libc::SYS_seccomp,
                libc::SECCOMP_SET_MODE_FILTER,
                0,
                &fprog as *const libc::sock_fprog,
            );
            if ret != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        })
    };
}

// ---------------------------------------------------------------------------------------------
// (a) user namespaces disabled: user.max_user_namespaces = 0
// ---------------------------------------------------------------------------------------------

/// `argv` inside a fresh user namespace whose `max_user_namespaces` is `limit`.
/// The test writes the id maps from outside: 0, the test user and 65534 (the
/// id stockade maps a root caller's sandbox to); a user caller switches to its
/// own id in there with `setpriv` first.
fn in_user_namespace(limit: u64, caller: Caller, argv: Vec<OsString>, token: &str) -> Attempt {
    let (uid, gid) = (test_user().uid, test_user().gid);
    let become_user = match caller {
        Caller::Root => String::new(),
        Caller::User => format!(
            "{} --reuid={uid} --regid={gid} --clear-groups -- ",
            find_tool("setpriv").display()
        ),
    };
    // Capabilities in the namespace survive exec only for a mapped root: wait
    // for the maps, then exec the stage that sets the limit.
    let wait = "while [ -z \"$(cat /proc/self/gid_map)\" ]; do sleep 0.01; done; \
                exec /bin/sh -c \"$STAGE2\" sh \"$@\"";
    let stage2 = format!(
        "echo {limit} > /proc/sys/user/max_user_namespaces || exit 99; exec {become_user}\"$@\""
    );
    let mut cmd = Command::new(find_tool("unshare"));
    cmd.args(["--user", "--", "/bin/sh", "-c", wait, "sh"])
        .args(&argv)
        .env("STAGE2", stage2);
    let dir = TestDir::new("userns");
    let out_path = dir.path().join("stdout");
    let file = fs::File::create(&out_path).expect("create stdout file");
    let child = cmd
        .current_dir("/")
        .stdin(Stdio::null())
        .stdout(file)
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn unshare");
    let pid = child.id();
    let ours = fs::read_link("/proc/self/ns/user").expect("own user namespace");
    let deadline = Instant::now() + Duration::from_secs(10);
    while fs::read_link(format!("/proc/{pid}/ns/user")).ok().as_ref() == Some(&ours) {
        assert!(
            Instant::now() < deadline,
            "unshare never entered a user namespace"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    let map = |inner: u32| format!("0 0 1\n{inner} {inner} 1\n65534 65534 1\n");
    fs::write(format!("/proc/{pid}/uid_map"), map(uid)).expect("write uid_map");
    fs::write(format!("/proc/{pid}/gid_map"), map(gid)).expect("write gid_map");
    let out = child.wait_with_output().expect("wait");
    let stdout = fs::read_to_string(&out_path).unwrap_or_default();
    Attempt {
        code: out.status.code(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        ran: stdout.contains(token),
        stdout,
    }
}

fn user_namespace_limit_zero(caller: Caller) {
    let (token, args) = marked_run(&[]);
    let bin = match caller {
        Caller::Root => stockade_bin(),
        Caller::User => user_stockade_bin(),
    };
    let argv = |args: &[String]| -> Vec<OsString> {
        std::iter::once(bin.clone().into_os_string())
            .chain(args.iter().map(OsString::from))
            .collect()
    };
    // Positive control: the same namespace with a limit of 50 runs the sandbox.
    in_user_namespace(50, caller, argv(&args), &token).worked();

    let (token, args) = marked_run(&[]);
    in_user_namespace(0, caller, argv(&args), &token).refused(&[
        "user namespace layer: clone into new user, pid, mount, net, uts, ipc and cgroup namespaces failed: ENOSPC",
        ": user.max_user_namespaces is 0, which disables user namespaces for every user, root included",
        ". Fix: `sudo sysctl -w user.max_user_namespaces=15000`",
    ]);

    // doctor names it too.
    let doctor = in_user_namespace(0, caller, argv(&["doctor".into()]), "user-namespaces");
    assert_eq!(doctor.code, Some(1), "{doctor:#?}");
    assert!(
        doctor
            .stdout
            .lines()
            .any(|l| l.starts_with("user-namespaces")
                && l.contains("missing")
                && l.contains("user.max_user_namespaces = 0")),
        "{doctor:#?}"
    );
}

#[test]
fn root_in_user_namespace_without_nobody_refused_with_remedy() {
    require_root();
    let (token, args) = marked_run(&[]);
    let mut cmd = Command::new(find_tool("unshare"));
    cmd.args(["--user", "--map-root-user", "--"])
        .arg(stockade_bin())
        .args(&args);
    attempt(cmd, &token).refused(&[
        "user namespace layer: write uid_map failed: EPERM",
        "this process is root in a user namespace whose uid map (/proc/self/uid_map) lacks 65534",
        "run stockade as a non-root user",
    ]);
    // Positive control: with 65534 mapped, root in a user namespace runs sandboxes.
    let (token, args) = marked_run(&[]);
    let argv: Vec<OsString> = std::iter::once(stockade_bin().into_os_string())
        .chain(args.iter().map(OsString::from))
        .collect();
    in_user_namespace(50, Caller::Root, argv, &token).worked();
}

// ---------------------------------------------------------------------------------------------
// (b) a container's seccomp profile
// ---------------------------------------------------------------------------------------------

fn docker_like_seccomp(caller: Caller) {
    let (token, args) = marked_run(&[]);
    let mut cmd = command_of(cli_argv(caller, &strs(&args)));
    with_filter(&mut cmd, docker_like_filter());
    attempt(cmd, &token).refused(&[
        "user namespace layer: clone into new user, pid, mount, net, uts, ipc and cgroup namespaces failed: EPERM",
        ": this process runs under a seccomp filter (Seccomp: 2 in /proc/self/status) that refuses creating namespaces",
        ". Fix: give the container a seccomp profile that allows clone, clone3 and unshare with namespace flags",
        "`--security-opt seccomp=stockade-worker.json`",
        "`securityContext.seccompProfile: {type: Localhost, localhostProfile: stockade-worker.json}`",
    ]);

    let mut doctor = command_of(cli_argv(caller, &["doctor"]));
    with_filter(&mut doctor, docker_like_filter());
    let d = attempt(doctor, "end-to-end");
    assert_eq!(d.code, Some(1), "{d:#?}");
    let e2e = d
        .stdout
        .lines()
        .position(|l| l.starts_with("end-to-end"))
        .expect("end-to-end row");
    let lines: Vec<&str> = d.stdout.lines().collect();
    assert!(
        lines[e2e].contains("missing") && lines[e2e].contains("seccomp filter"),
        "{d:#?}"
    );
    assert!(
        lines[e2e + 1]
            .trim_start()
            .starts_with("fix: give the container a seccomp profile"),
        "{d:#?}"
    );

    // Positive control: no filter, same command.
    let (token, args) = marked_run(&[]);
    attempt(command_of(cli_argv(caller, &strs(&args))), &token).worked();
}

/// The documented container setting: the shipped profile lets the full mode run.
fn worker_seccomp_profile(caller: Caller) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../examples/kubernetes/seccomp/stockade-worker.json");
    let json: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(&path).expect("read profile")).expect("JSON");
    let (token, args) = marked_run(&[]);
    let mut cmd = command_of(cli_argv(caller, &strs(&args)));
    with_filter(&mut cmd, compile_profile(&json));
    attempt(cmd, &token).worked();

    // It is a real filter: a call it denies stays denied (bpf is refused with EPERM
    // by it, where a plain root shell without it gets EINVAL for a bad command).
    let probe = "import ctypes; l = ctypes.CDLL(None, use_errno=True); print(l.syscall(321, 9999, 0, 0), ctypes.get_errno())";
    let bpf_errno = |filtered: bool| {
        let mut cmd = Command::new(find_tool("python3"));
        cmd.args(["-c", probe]);
        if filtered {
            with_filter(&mut cmd, compile_profile(&json));
        }
        let out = cmd.output().expect("python3");
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    assert_eq!(bpf_errno(false), "-1 22");
    assert_eq!(bpf_errno(true), "-1 1");
}

// ---------------------------------------------------------------------------------------------
// (c) masked or read-only /proc, in a mount namespace of the test's
// ---------------------------------------------------------------------------------------------

/// `argv` in a private mount namespace after `setup` (sh). Only per-mount
/// changes: a remount of procfs itself would change the host's superblock.
fn in_mount_namespace(setup: &str, argv: Vec<OsString>) -> Command {
    let mut cmd = Command::new(find_tool("unshare"));
    cmd.args(["--mount", "--propagation", "private", "--", "sh", "-c"])
        .arg(format!("{setup} || exit 99; exec \"$@\""))
        .arg("sh")
        .args(argv);
    cmd
}

fn masked_proc(caller: Caller) {
    let host_proc_rw = || {
        let mi = fs::read_to_string("/proc/self/mountinfo").unwrap();
        let line = mi
            .lines()
            .find(|l| l.split(' ').nth(4) == Some("/proc"))
            .unwrap()
            .to_string();
        assert!(
            line.ends_with(" rw") && line.split(' ').nth(5).unwrap().starts_with("rw"),
            "host /proc changed: {line}"
        );
    };
    let (token, args) = marked_run(&[]);
    attempt(
        in_mount_namespace("true", cli_argv(caller, &strs(&args))),
        &token,
    )
    .worked();

    let fix = ". Fix: give the sandbox an unmasked, writable /proc: Docker `--security-opt systempaths=unconfined`";
    // A file Docker masks with /dev/null that this kernel has.
    let masked_file = ["/proc/kcore", "/proc/timer_list", "/proc/keys"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .expect("one of /proc/kcore, /proc/timer_list, /proc/keys");
    let bind_null = format!("mount --bind /dev/null {masked_file}");
    let masked_file_msg = format!(": /proc is masked: {masked_file} is mounted over it");
    let cases: [(&str, &[&str]); 4] = [
        (
            "mount -t tmpfs -o size=1m none /proc/sys",
            &[
                "limit nested user namespaces to 0 failed: ENOENT",
                ": /proc is masked: /proc/sys is mounted over it (as in containers)",
                fix,
                "procMount: Unmasked",
            ],
        ),
        (
            "mount --bind -o ro /proc/sys /proc/sys",
            &[
                "limit nested user namespaces to 0 failed: EROFS",
                ": /proc is masked: /proc/sys is mounted over it",
                fix,
            ],
        ),
        (
            &bind_null,
            &[
                "filesystem layer: mount /proc failed: EPERM",
                &masked_file_msg,
                fix,
            ],
        ),
        (
            "mount -o remount,bind,ro /proc",
            &[
                "write setgroups failed: EROFS",
                ": /proc is mounted read-only",
                fix,
            ],
        ),
    ];
    for (setup, parts) in cases {
        let (token, args) = marked_run(&[]);
        let a = attempt(
            in_mount_namespace(setup, cli_argv(caller, &strs(&args))),
            &token,
        );
        assert_ne!(a.code, Some(99), "setup {setup} failed: {a:#?}");
        a.refused(parts);
        host_proc_rw();
    }

    let d = attempt(
        in_mount_namespace(
            "mount -t tmpfs -o size=1m none /proc/sys",
            cli_argv(caller, &["doctor"]),
        ),
        "container",
    );
    assert_eq!(d.code, Some(1), "{d:#?}");
    assert!(
        d.stdout.lines().any(|l| l.starts_with("container")
            && l.contains("missing")
            && l.contains("/proc is masked by over-mounts (/proc/sys)")),
        "{d:#?}"
    );
}

// ---------------------------------------------------------------------------------------------
// (d) no Landlock; (e) an old Landlock ABI
// ---------------------------------------------------------------------------------------------

fn no_landlock(caller: Caller) {
    let (token, args) = marked_run(&[]);
    let mut cmd = command_of(cli_argv(caller, &strs(&args)));
    with_filter(&mut cmd, no_landlock_filter());
    attempt(cmd, &token).refused(&[
        "landlock layer: build the ruleset failed: ENOSYS (Function not implemented): Landlock is unavailable: this process runs under a seccomp filter",
        "(the kernel, 5.13+, has Landlock)",
        ". Fix: allow landlock_create_ruleset, landlock_add_rule and landlock_restrict_self in the container's seccomp profile",
        "--allow-no-landlock",
    ]);

    // The documented opt-out runs, and the report says Landlock is absent.
    let dir = TestDir::new("nolandlock");
    let report = dir.join("report.json");
    caller.own(dir.path());
    let (token, args) = marked_run(&["--allow-no-landlock", "--report", &report]);
    let mut cmd = command_of(cli_argv(caller, &strs(&args)));
    with_filter(&mut cmd, no_landlock_filter());
    attempt(cmd, &token).worked();
    let r: serde_json::Value = serde_json::from_str(&fs::read_to_string(&report).unwrap()).unwrap();
    assert_eq!(r["layers"]["landlock_abi"], 0, "{r}");

    let mut doctor = command_of(cli_argv(caller, &["doctor"]));
    with_filter(&mut doctor, no_landlock_filter());
    let d = attempt(doctor, "landlock");
    assert_eq!(d.code, Some(1), "{d:#?}");
    assert!(
        d.stdout.lines().any(|l| l.starts_with("landlock ")
            && l.contains("missing")
            && l.contains("a seccomp filter around this process")),
        "{d:#?}"
    );
}

/// The listener of a user-notification filter, received from the child that
/// installed it, answering each Landlock version query with `abi`.
struct VersionFaker {
    stop: Arc<AtomicBool>,
    answered: Arc<AtomicUsize>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl VersionFaker {
    /// Set `cmd` up to install the notify filter and send its listener here.
    fn attach(cmd: &mut Command, abi: i64) -> impl FnOnce() -> VersionFaker {
        let (ours, theirs) = UnixDatagram::pair().expect("socketpair");
        let theirs_fd: RawFd = theirs.as_raw_fd();
        let prog = landlock_version_notify_filter();
        // SAFETY: runs in the forked child before exec: syscalls on memory it
        // owns and on stack buffers only (no allocation, no locks).
        unsafe {
            cmd.pre_exec(move || {
                let fprog = libc::sock_fprog {
                    len: prog.len() as u16,
                    filter: prog.as_ptr() as *mut libc::sock_filter,
                };
                let listener = libc::syscall(
                    libc::SYS_seccomp,
                    libc::SECCOMP_SET_MODE_FILTER,
                    libc::SECCOMP_FILTER_FLAG_NEW_LISTENER,
                    &fprog as *const libc::sock_fprog,
                );
                if listener < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                send_fd(theirs_fd, listener as RawFd)?;
                libc::close(listener as RawFd);
                Ok(())
            })
        };
        move || {
            let listener = recv_fd(&ours);
            drop(theirs);
            let stop = Arc::new(AtomicBool::new(false));
            let answered = Arc::new(AtomicUsize::new(0));
            let (s, a) = (stop.clone(), answered.clone());
            let thread = std::thread::spawn(move || serve_version(listener, abi, &s, &a));
            VersionFaker {
                stop,
                answered,
                thread: Some(thread),
            }
        }
    }

    fn finish(mut self) -> usize {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            t.join().expect("notifier thread");
        }
        self.answered.load(Ordering::SeqCst)
    }
}

/// `sendmsg` one descriptor (SCM_RIGHTS); async-signal-safe.
fn send_fd(sock: RawFd, fd: RawFd) -> std::io::Result<()> {
    let mut byte = [0u8; 1];
    let mut iov = libc::iovec {
        iov_base: byte.as_mut_ptr().cast(),
        iov_len: 1,
    };
    let mut cbuf = [0u64; 4];
    // SAFETY: msghdr is plain data; the pointers set below point at live stack
    // buffers large enough for one SCM_RIGHTS descriptor (CMSG_SPACE(4) = 24 bytes).
    unsafe {
        let mut msg: libc::msghdr = std::mem::zeroed();
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = cbuf.as_mut_ptr().cast();
        msg.msg_controllen = libc::CMSG_SPACE(4) as usize;
        let c = libc::CMSG_FIRSTHDR(&msg);
        (*c).cmsg_level = libc::SOL_SOCKET;
        (*c).cmsg_type = libc::SCM_RIGHTS;
        (*c).cmsg_len = libc::CMSG_LEN(4) as usize;
        std::ptr::write_unaligned(libc::CMSG_DATA(c) as *mut libc::c_int, fd);
        if libc::sendmsg(sock, &msg, 0) < 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

fn recv_fd(sock: &UnixDatagram) -> OwnedFd {
    let mut byte = [0u8; 1];
    let mut iov = libc::iovec {
        iov_base: byte.as_mut_ptr().cast(),
        iov_len: 1,
    };
    let mut cbuf = [0u64; 4];
    // SAFETY: as in send_fd; the received descriptor is new and owned by us.
    unsafe {
        let mut msg: libc::msghdr = std::mem::zeroed();
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = cbuf.as_mut_ptr().cast();
        msg.msg_controllen = std::mem::size_of_val(&cbuf);
        let n = libc::recvmsg(sock.as_raw_fd(), &mut msg, libc::MSG_CMSG_CLOEXEC);
        assert!(n >= 0, "recvmsg: {}", std::io::Error::last_os_error());
        let c = libc::CMSG_FIRSTHDR(&msg);
        assert!(
            !c.is_null() && (*c).cmsg_type == libc::SCM_RIGHTS,
            "no descriptor came"
        );
        OwnedFd::from_raw_fd(std::ptr::read_unaligned(
            libc::CMSG_DATA(c) as *const libc::c_int
        ))
    }
}

/// Answer every notification (only version queries are sent) with `abi`.
fn serve_version(listener: OwnedFd, abi: i64, stop: &AtomicBool, answered: &AtomicUsize) {
    loop {
        let mut pfd = libc::pollfd {
            fd: listener.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd.
        let n = unsafe { libc::poll(&mut pfd, 1, 50) };
        if n == 0 {
            if stop.load(Ordering::SeqCst) {
                return;
            }
            continue;
        }
        if n < 0
            || pfd.revents & (libc::POLLHUP | libc::POLLERR) != 0 && pfd.revents & libc::POLLIN == 0
        {
            return;
        }
        // SAFETY: a zeroed seccomp_notif is what NOTIF_RECV requires.
        let mut req: libc::seccomp_notif = unsafe { std::mem::zeroed() };
        // SAFETY: the ioctl fills `req`, a valid struct of the right size.
        if unsafe {
            libc::ioctl(
                listener.as_raw_fd(),
                libc::SECCOMP_IOCTL_NOTIF_RECV,
                &mut req,
            )
        } != 0
        {
            continue; // the caller died meanwhile
        }
        let mut resp = libc::seccomp_notif_resp {
            id: req.id,
            val: abi,
            error: 0,
            flags: 0,
        };
        // SAFETY: `resp` is a valid response for this notification.
        if unsafe {
            libc::ioctl(
                listener.as_raw_fd(),
                libc::SECCOMP_IOCTL_NOTIF_SEND,
                &mut resp,
            )
        } == 0
        {
            answered.fetch_add(1, Ordering::SeqCst);
        }
    }
}

fn old_landlock_abi(caller: Caller) {
    let dir = TestDir::new("oldabi");
    let report = dir.join("report.json");
    caller.own(dir.path());
    // A filter with a listener already in the chain refuses a second one
    // (EBUSY), so the run records no syscall events here.
    let (token, args) = marked_run(&["--no-syscall-events", "--report", &report]);
    let mut cmd = command_of(cli_argv(caller, &strs(&args)));
    let start = VersionFaker::attach(&mut cmd, 3);
    let run = std::thread::spawn(move || attempt(cmd, &token));
    // The child has sent its listener once it reached exec.
    let faker = start();
    let a = run.join().unwrap();
    let answered = faker.finish();
    a.worked();
    assert!(answered >= 1, "the version query was never asked: {a:#?}");
    let r: serde_json::Value = serde_json::from_str(&fs::read_to_string(&report).unwrap()).unwrap();
    assert_eq!(r["layers"]["landlock_abi"], 3, "{r}");

    let mut doctor = command_of(cli_argv(caller, &["doctor"]));
    let start = VersionFaker::attach(&mut doctor, 3);
    let run = std::thread::spawn(move || attempt(doctor, "landlock"));
    let faker = start();
    let d = run.join().unwrap();
    faker.finish();
    assert!(
        d.stdout.lines().any(|l| l.starts_with("landlock ")
            && l.contains("limited")
            && l.contains("ABI 3: sandboxes are restricted at ABI 3")),
        "{d:#?}"
    );
}

// ---------------------------------------------------------------------------------------------
// A container's root: uid 0 without CAP_SYS_ADMIN
// ---------------------------------------------------------------------------------------------

#[test]
fn container_root_without_cap_sys_admin_refused_for_grants() {
    require_root();
    let dir = TestDir::new("noadmin");
    let setpriv = |args: &[String]| {
        let mut cmd = Command::new(find_tool("setpriv"));
        cmd.args(["--inh-caps=-sys_admin", "--bounding-set=-sys_admin", "--"])
            .arg(stockade_bin())
            .args(args);
        cmd
    };
    let (token, args) = marked_run(&["--rw", dir.path().to_str().unwrap()]);
    attempt(setpriv(&args), &token).refused(&[
        "filesystem layer: open_tree",
        ": this process is uid 0 without CAP_SYS_ADMIN in the initial user namespace, as a container's root is",
        ". Fix: run stockade as a non-root user, whose grants need no idmapping: Docker `--user 1000:1000`",
    ]);
    // Positive control: without a grant the same caller runs sandboxes.
    let (token, args) = marked_run(&[]);
    attempt(setpriv(&args), &token).worked();
}

// ---------------------------------------------------------------------------------------------
// Inside a stockade sandbox (user.max_user_namespaces = 0 and its seccomp filter)
// ---------------------------------------------------------------------------------------------

#[test]
fn nested_stockade_refused_by_design() {
    require_root();
    let bin = stockade_bin();
    let bin_dir = bin.parent().unwrap().to_str().unwrap().to_string();
    let bin = bin.to_str().unwrap().to_string();
    let (token, inner) = marked_run(&[]);
    let mut outer = vec![
        "run".to_string(),
        "--ro".into(),
        bin_dir.clone(),
        "--".into(),
        bin.clone(),
    ];
    outer.extend(inner);
    attempt(command_of(cli_argv(Caller::Root, &strs(&outer)[..])), &token).refused(&[
        "user namespace layer: clone into new user, pid, mount, net, uts, ipc and cgroup namespaces failed: EPERM",
        ": this process runs inside a stockade sandbox, which forbids nested user namespaces by design",
        ". Fix: run stockade outside the sandbox: nested sandboxes are not supported",
    ]);
    // Positive control: the same outer sandbox runs a plain command.
    let (token, inner) = marked_run(&[]);
    let mut outer = vec!["run".to_string(), "--ro".into(), bin_dir, "--".into()];
    outer.extend(inner.into_iter().skip(2)); // after `run --`
    attempt(command_of(cli_argv(Caller::Root, &strs(&outer))), &token).worked();
}
