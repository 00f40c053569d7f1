//! Landlock denials from the kernel's audit log, end to end, as root.
//!
//! Each test turns audit on or off for its duration (AUDIT_SET over netlink)
//! and restores the previous value on drop, even when an assertion fails.
//! The audit state is host-wide, so the tests of this binary run one at a
//! time. A Landlock-restricted process is made here with the `landlock`
//! crate and raw syscalls in a cloned child (in its own PID namespace, like
//! the sandbox's command), independently of the sandbox's own last hop.

mod common;

use std::ffi::CString;
use std::io::Read as _;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use ::landlock::{
    AccessFs, BitFlags, CompatLevel, Compatible, PathBeneath, PathFd, Ruleset, RulesetAttr,
    RulesetCreatedAttr,
};
use common::{in_test_user_run, require_root, run_as_test_user, Workspace};
use nix::errno::Errno;
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::Pid;
use stockade::audit::{self, netlink, probe::Reason, LandlockDenial};

/// `LANDLOCK_RESTRICT_SELF_LOG_NEW_EXEC_ON` (uapi linux/landlock.h, ABI 7).
const LOG_NEW_EXEC_ON: u32 = 1 << 1;
const ALLOWED_TEXT: &str = "positive-control\n";

/// Serializes the tests of this binary: audit's `enabled` is host-wide.
fn exclusive() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Audit's `enabled` set for the guard's life, then restored.
struct AuditEnabled {
    previous: u32,
}

impl AuditEnabled {
    /// `None` when audit is locked on (`enabled=2`) and cannot be changed.
    fn set(value: u32) -> Option<Self> {
        let previous = netlink::status().expect("AUDIT_GET").enabled;
        if previous == 2 {
            eprintln!("audit is locked on (enabled=2): cannot set enabled={value}");
            return None;
        }
        netlink::set_enabled(value).expect("AUDIT_SET enabled");
        assert_eq!(netlink::status().unwrap().enabled, value);
        Some(AuditEnabled { previous })
    }
}

impl Drop for AuditEnabled {
    fn drop(&mut self) {
        let restored = netlink::set_enabled(self.previous);
        if !std::thread::panicking() {
            restored.expect("restore audit enabled");
        }
    }
}

/// Denials collected by a sink, with the time each arrived.
#[derive(Default, Clone)]
struct Collected(Arc<Mutex<Vec<(Instant, SystemTime, LandlockDenial)>>>);

impl Collected {
    fn sink(&self) -> audit::Sink {
        let inner = Arc::clone(&self.0);
        Arc::new(move |d| {
            inner
                .lock()
                .unwrap()
                .push((Instant::now(), SystemTime::now(), d))
        })
    }
    fn all(&self) -> Vec<(Instant, SystemTime, LandlockDenial)> {
        self.0.lock().unwrap().clone()
    }
    fn paths(&self) -> Vec<String> {
        self.all()
            .iter()
            .map(|(_, _, d)| d.path.clone().unwrap_or_default())
            .collect()
    }
}

/// A ruleset handling execute, read-file and read-dir that allows them on
/// the system's program and library trees, the loader cache, and `extra`.
fn ruleset(extra: &Path) -> OwnedFd {
    let handled: BitFlags<AccessFs> = AccessFs::Execute | AccessFs::ReadFile | AccessFs::ReadDir;
    let mut created = Ruleset::default()
        .set_compatibility(CompatLevel::HardRequirement)
        .handle_access(handled)
        .unwrap()
        .create()
        .unwrap();
    for dir in ["/usr", "/bin", "/lib", "/lib64"]
        .iter()
        .map(Path::new)
        .chain([extra])
    {
        if dir.exists() {
            created = created
                .add_rule(PathBeneath::new(PathFd::new(dir).unwrap(), handled))
                .unwrap();
        }
    }
    created = created
        .add_rule(PathBeneath::new(
            PathFd::new("/etc/ld.so.cache").unwrap(),
            AccessFs::ReadFile,
        ))
        .unwrap();
    Option::<OwnedFd>::from(created).expect("an enforced ruleset has a descriptor")
}

/// A child in a new PID namespace (so it is PID 1 there, as the sandbox's
/// command is in its own). Once let [`go`](Restricted::go), it restricts
/// itself with `flags`, tries to open /etc/shadow itself
/// `opens_before_exec` times, then runs `sh -c script` with its stdout on a
/// pipe.
struct Restricted {
    pid: Pid,
    out: OwnedFd,
    gate: Option<OwnedFd>,
}

impl Restricted {
    fn spawn(ruleset: &OwnedFd, flags: u32, opens_before_exec: usize, script: &str) -> Self {
        // Everything the child touches is prepared here: after clone it only
        // makes raw system calls (this process has other threads).
        let sh = CString::new("/bin/sh").unwrap();
        let args = [
            CString::new("sh").unwrap(),
            CString::new("-c").unwrap(),
            CString::new(script).unwrap(),
        ];
        let env = [CString::new("PATH=/usr/bin:/bin").unwrap()];
        let argv: Vec<*const libc::c_char> = args
            .iter()
            .map(|a| a.as_ptr())
            .chain([std::ptr::null()])
            .collect();
        let envp: Vec<*const libc::c_char> = env
            .iter()
            .map(|a| a.as_ptr())
            .chain([std::ptr::null()])
            .collect();
        let shadow = CString::new("/etc/shadow").unwrap();
        let (out_r, out_w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).unwrap();
        let (gate_r, gate_w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).unwrap();
        let (ruleset_fd, out_fd, gate_fd) =
            (ruleset.as_raw_fd(), out_w.as_raw_fd(), gate_r.as_raw_fd());
        // SAFETY: fork-style clone (no CLONE_VM, no new stack): the child
        // gets a copy of this address space and, below, only makes raw
        // system calls on data prepared above before exec or _exit.
        let pid = unsafe {
            libc::syscall(
                libc::SYS_clone,
                (libc::CLONE_NEWPID | libc::SIGCHLD) as libc::c_ulong,
                0usize,
                0usize,
                0usize,
                0usize,
            )
        };
        if pid == 0 {
            // SAFETY: raw system calls on descriptors and strings that stay
            // valid in the child's copy of memory; every path ends in execve
            // or _exit.
            unsafe {
                let mut go = 0u8;
                if libc::read(gate_fd, (&mut go as *mut u8).cast(), 1) != 1 {
                    libc::_exit(119);
                }
                if libc::dup2(out_fd, 1) < 0 {
                    libc::_exit(120);
                }
                if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 {
                    libc::_exit(121);
                }
                if libc::syscall(libc::SYS_landlock_restrict_self, ruleset_fd, flags) != 0 {
                    libc::_exit(122);
                }
                if opens_before_exec > 0 {
                    // The time just before the first denied open, for the
                    // parent to measure the delivery delay: 16 bytes ahead of
                    // sh's output.
                    let mut ts: libc::timespec = std::mem::zeroed();
                    libc::clock_gettime(libc::CLOCK_REALTIME, &mut ts);
                    for _ in 0..opens_before_exec {
                        let fd = libc::open(shadow.as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC);
                        if fd >= 0 || *libc::__errno_location() != libc::EACCES {
                            libc::_exit(123);
                        }
                    }
                    let stamp = [ts.tv_sec, ts.tv_nsec];
                    if libc::write(1, stamp.as_ptr().cast(), 16) != 16 {
                        libc::_exit(125);
                    }
                }
                libc::execve(sh.as_ptr(), argv.as_ptr(), envp.as_ptr());
                libc::_exit(124);
            }
        }
        assert!(pid > 0, "clone: {}", Errno::last());
        Restricted {
            pid: Pid::from_raw(pid as i32),
            out: out_r,
            gate: Some(gate_w),
        }
    }

    /// The child's host pid: the creator of its Landlock domain.
    fn creator(&self) -> u32 {
        self.pid.as_raw() as u32
    }

    /// Let the child restrict itself and run.
    fn go(&mut self) {
        let gate = self.gate.take().expect("started once");
        assert_eq!(nix::unistd::write(&gate, &[1]).unwrap(), 1);
    }

    /// Wait for the child; its exit code and stdout.
    fn finish(mut self) -> (i32, Vec<u8>) {
        if self.gate.is_some() {
            self.go();
        }
        let mut bytes = Vec::new();
        std::fs::File::from(self.out)
            .read_to_end(&mut bytes)
            .unwrap();
        match waitpid(self.pid, None).unwrap() {
            WaitStatus::Exited(_, code) => (code, bytes),
            other => panic!("child ended with {other:?}"),
        }
    }
}

/// The child's time stamp ahead of its output, and the rest.
fn split_stamp(stdout: &[u8]) -> (SystemTime, &[u8]) {
    let (stamp, rest) = stdout.split_at(16);
    let secs = i64::from_ne_bytes(stamp[..8].try_into().unwrap());
    let nanos = i64::from_ne_bytes(stamp[8..].try_into().unwrap());
    (
        SystemTime::UNIX_EPOCH + Duration::new(secs as u64, nanos as u32),
        rest,
    )
}

/// The script: the denied read must fail, the allowed one print its text.
fn script(allowed: &Path) -> String {
    format!(
        "cat /etc/shadow >/dev/null 2>&1 && exit 10; cat '{}'",
        allowed.display()
    )
}

#[test]
fn availability_reports_disabled_audit_with_its_remedy() {
    require_root();
    let _x = exclusive();
    let Some(off) = AuditEnabled::set(0) else {
        return;
    };
    let u = audit::availability().expect_err("audit is off");
    assert_eq!(u.kind, Reason::AuditDisabled, "{u}");
    assert!(u.reason.contains("disabled"), "{u}");
    assert!(
        u.remedy.contains("auditctl -e 1") && u.remedy.contains("audit=1"),
        "{u}"
    );
    assert!(audit::start().is_err());
    assert!(audit::watch(std::process::id(), Collected::default().sink()).is_none());
    drop(off);

    // Positive control: with audit on, nothing else is missing on this host.
    let _on = AuditEnabled::set(1).unwrap();
    assert_eq!(audit::availability(), Ok(()));
}

#[test]
fn a_read_denied_after_exec_is_delivered_exactly_once() {
    require_root();
    let _x = exclusive();
    let Some(_on) = AuditEnabled::set(1) else {
        return;
    };
    audit::start().expect("the subscriber starts");
    let ws = Workspace::new("audit");
    let allowed = ws.path().join("allowed.txt");
    std::fs::write(&allowed, ALLOWED_TEXT).unwrap();
    let rules = ruleset(ws.path());

    let mut child = Restricted::spawn(&rules, LOG_NEW_EXEC_ON, 0, &script(&allowed));
    let creator = child.creator();
    let got = Collected::default();
    let watch = audit::watch(creator, got.sink()).expect("available");
    // An unrelated creator's watch: must stay empty.
    let other = Collected::default();
    let other_watch = audit::watch(std::process::id(), other.sink()).unwrap();
    child.go();
    let (code, stdout) = child.finish();
    let ended = Instant::now();
    assert_eq!(
        code, 0,
        "the denied read succeeded (10) or the child failed"
    );
    assert_eq!(
        stdout,
        ALLOWED_TEXT.as_bytes(),
        "the allowed read (positive control)"
    );
    assert!(watch.flush(Duration::from_secs(5)), "flush timed out");

    let all = got.all();
    let shadow: Vec<_> = all
        .iter()
        .filter(|(_, _, d)| d.path.as_deref() == Some("/etc/shadow"))
        .collect();
    assert_eq!(shadow.len(), 1, "denials: {:?}", got.paths());
    let (arrived, arrived_wall, d) = shadow[0];
    assert_eq!(d.blockers, ["fs.read_file"]);
    // The domain's creator is named by its host pid, not its pid (1) in the
    // namespace it restricted itself in.
    assert_eq!(d.creator_pid, creator);
    assert_eq!(d.comm.as_deref(), Some("cat"));
    let actor = d.pid.expect("the event has a SYSCALL record");
    assert_ne!(actor, creator, "cat is a child of the creator (sh)");
    assert_eq!(d.object.get("dev").map(String::is_empty), Some(false));
    assert!(d
        .object
        .get("ino")
        .and_then(|i| i.parse::<u64>().ok())
        .is_some());
    let allowed_str = allowed.to_str().unwrap();
    assert!(
        !got.paths().iter().any(|p| p == allowed_str),
        "the allowed file was reported denied: {:?}",
        got.paths()
    );
    assert!(all.iter().all(|(_, _, d)| d.creator_pid == creator));
    assert_eq!(watch.stats().delivered, all.len() as u64);
    assert_eq!(watch.stats().dropped, 0);
    assert!(other.all().is_empty(), "{:?}", other.paths());
    drop(other_watch);

    let after_exit = arrived.saturating_duration_since(ended);
    let since_logged = arrived_wall.duration_since(d.at).unwrap_or_default();
    eprintln!(
        "delay from the kernel's stamp to the sink: {since_logged:?} (stamp has 1 ms resolution, coarse clock); \
         delivered {after_exit:?} after waitpid returned (0 = before)"
    );
    assert!(since_logged < Duration::from_secs(2), "{since_logged:?}");

    // The kernel's own count arrives when it frees the domain; it counts
    // every denial of the domain, so it equals what was delivered.
    let deadline = Instant::now() + Duration::from_secs(5);
    while watch.stats().kernel_denials.is_none() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
        watch.flush(Duration::from_secs(1));
    }
    assert_eq!(watch.stats().kernel_denials, Some(all.len() as u64));
}

/// Without LOG_NEW_EXEC_ON only denials before the exec are logged: the
/// child's own pre-exec open of /etc/shadow is, cat's after exec is not.
/// The watch is registered only after the child ended and everything was
/// read: the denial comes from the backlog.
#[test]
fn without_log_new_exec_on_denials_after_exec_are_invisible() {
    require_root();
    let _x = exclusive();
    let Some(_on) = AuditEnabled::set(1) else {
        return;
    };
    audit::start().unwrap();
    let ws = Workspace::new("audit-noexec");
    let allowed = ws.path().join("allowed.txt");
    std::fs::write(&allowed, ALLOWED_TEXT).unwrap();
    let rules = ruleset(ws.path());

    let child = Restricted::spawn(&rules, 0, 1, &script(&allowed));
    let creator = child.creator();
    let (code, stdout) = child.finish();
    assert!(audit::flush(Duration::from_secs(5)));
    let got = Collected::default();
    let watch = audit::watch(creator, got.sink()).unwrap();
    // Delivered on registration, before any flush of this watch.
    assert_eq!(got.all().len(), 1, "denials: {:?}", got.paths());
    assert_eq!(
        code, 0,
        "the denied read succeeded (10) or the child failed"
    );
    let (_, text) = split_stamp(&stdout);
    assert_eq!(text, ALLOWED_TEXT.as_bytes());
    assert!(watch.flush(Duration::from_secs(5)));

    let all = got.all();
    assert_eq!(all.len(), 1, "denials: {:?}", got.paths());
    let d = &all[0].2;
    assert_eq!(d.path.as_deref(), Some("/etc/shadow"));
    // The pre-exec open, made by the creator itself, not by cat.
    assert_eq!(d.pid, Some(creator));
    assert_ne!(d.comm.as_deref(), Some("cat"));
}

/// A burst of denials: every one is delivered unless the kernel or the
/// socket reports losing records, and the kernel's own count matches.
#[test]
fn a_burst_of_denials_is_delivered_or_accounted_for() {
    const N: usize = 2000;
    require_root();
    let _x = exclusive();
    let Some(_on) = AuditEnabled::set(1) else {
        return;
    };
    audit::start().unwrap();
    let hub = audit::subscriber::running().expect("started");
    let (_, overruns_before) = hub.counters();
    let lost_before = netlink::status().unwrap().lost;
    let ws = Workspace::new("audit-burst");
    let rules = ruleset(ws.path());
    let got = Collected::default();
    let mut child = Restricted::spawn(&rules, 0, N, "exit 0");
    let creator = child.creator();
    let watch = audit::watch(creator, got.sink()).unwrap();
    child.go();
    let (code, stdout) = child.finish();
    assert_eq!(code, 0);
    let (started, _) = split_stamp(&stdout);
    assert!(watch.flush(Duration::from_secs(10)));
    let done = SystemTime::now();
    let all = got.all();
    assert!(all
        .iter()
        .all(|(_, _, d)| d.path.as_deref() == Some("/etc/shadow") && d.pid == Some(creator)));
    let serials: std::collections::BTreeSet<u64> = all.iter().map(|(_, _, d)| d.serial).collect();
    assert_eq!(serials.len(), all.len(), "a denial was delivered twice");
    let lost = netlink::status().unwrap().lost - lost_before;
    let (_, overruns_after) = hub.counters();
    let overruns = overruns_after - overruns_before;
    eprintln!(
        "burst: {N} denied opens, {} delivered, kernel lost {lost} records, socket overruns {overruns}, \
         {:?} from the first open to the flush's end",
        all.len(),
        done.duration_since(started).unwrap_or_default()
    );
    // Every denial is delivered or counted lost by the kernel (when our
    // socket overflowed, the number lost there is unknown).
    if overruns == 0 {
        assert!(
            all.len() + lost as usize >= N,
            "{} + {lost} < {N}",
            all.len()
        );
    }
    // The kernel counts every denial, logged or not, once it frees the domain.
    let deadline = Instant::now() + Duration::from_secs(5);
    while watch.stats().kernel_denials.is_none() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
        watch.flush(Duration::from_secs(1));
    }
    assert_eq!(watch.stats().kernel_denials, Some(N as u64));
}

/// An unprivileged caller learns why, and the kernel agrees: joining the
/// READLOG group is EPERM. This binary, copied where the test user can run
/// it, re-runs `unprivileged_caller_body` under runuser, with audit on.
#[test]
fn an_unprivileged_caller_is_told_it_cannot_read_audit() {
    require_root();
    let _x = exclusive();
    let Some(_on) = AuditEnabled::set(1) else {
        return;
    };
    run_as_test_user(
        "unprivileged_caller_body",
        &[],
        "unprivileged audit check ok",
    );
    // Positive control: root, at the same moment, can read.
    assert_eq!(audit::availability(), Ok(()));
}

/// Body of the test above; does nothing unless run by it.
#[test]
#[ignore]
fn unprivileged_caller_body() {
    if !in_test_user_run() {
        return;
    }
    let u = audit::availability().expect_err("an unprivileged caller cannot read audit");
    assert_eq!(u.kind, Reason::NotPermitted, "{u}");
    assert!(
        u.reason.contains("CAP_AUDIT_READ") && u.reason.contains("unprivileged"),
        "{u}"
    );
    assert!(u.remedy.contains("root"), "{u}");
    assert_eq!(netlink::ReadlogSocket::open().err(), Some(Errno::EPERM));
    assert_eq!(netlink::status().err(), Some(Errno::EPERM));
    assert!(audit::watch(1, Collected::default().sink()).is_none());
    println!("unprivileged audit check ok");
}

/// The time from a denied open(2) to its sink call, with the watch
/// registered beforehand, over several runs.
#[test]
fn delivery_delay() {
    const RUNS: usize = 20;
    require_root();
    let _x = exclusive();
    let Some(_on) = AuditEnabled::set(1) else {
        return;
    };
    audit::start().unwrap();
    let ws = Workspace::new("audit-delay");
    let rules = ruleset(ws.path());
    let mut delays = Vec::new();
    for _ in 0..RUNS {
        let got = Collected::default();
        let mut child = Restricted::spawn(&rules, 0, 1, "exit 0");
        let watch = audit::watch(child.creator(), got.sink()).unwrap();
        child.go();
        let (code, stdout) = child.finish();
        assert_eq!(code, 0);
        let (denied_at, _) = split_stamp(&stdout);
        assert!(watch.flush(Duration::from_secs(5)));
        let all = got.all();
        assert_eq!(all.len(), 1, "{:?}", got.paths());
        delays.push(all[0].1.duration_since(denied_at).unwrap_or_default());
    }
    delays.sort();
    eprintln!(
        "delay from a denied open(2) to the sink over {RUNS} runs: min {:?}, median {:?}, max {:?}",
        delays[0],
        delays[RUNS / 2],
        delays[RUNS - 1]
    );
    assert!(delays[RUNS / 2] < Duration::from_millis(500), "{delays:?}");
}

/// End to end: a real sandbox's Landlock denials reach its event stream and
/// the LLM summary, attributed to the sandbox (the host finds the command's
/// host pid while the init holds reaping). A file under a path mounted but
/// withheld from Landlock, and a TCP connect to a port Landlock refuses;
/// positive control: a granted file is read, and is not reported.
#[test]
fn a_sandbox_records_its_landlock_denials() {
    let _one = exclusive();
    if audit::availability().err().map(|u| u.kind) == Some(Reason::NotPermitted) {
        panic!("run as root");
    }
    let Some(_on) = AuditEnabled::set(1) else {
        return;
    };
    // The verdict of the last second may predate enabling.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    // Not under /tmp, whose own Landlock grant would cover it.
    let dir =
        std::path::Path::new("/var/tmp").join(format!("stockade-llaudit-{}", std::process::id()));
    let (granted, withheld) = (dir.join("granted"), dir.join("withheld"));
    std::fs::create_dir_all(&granted).unwrap();
    std::fs::create_dir_all(&withheld).unwrap();
    std::fs::write(granted.join("ok.txt"), ALLOWED_TEXT).unwrap();
    std::fs::write(withheld.join("secret.txt"), "secret\n").unwrap();
    let script = format!(
        "cat {g}/ok.txt; cat {w}/secret.txt; \
         python3 -c 'import socket; socket.create_connection((\"127.0.0.1\", 22))' 2>/dev/null; exit 0",
        g = granted.display(),
        w = withheld.display()
    );
    let out = stockade::Sandbox::new()
        .fs(stockade::Fs::minimal().ro(&granted).ro(&withheld))
        .landlock_withhold(&withheld)
        .command(["sh", "-c", &script])
        .output()
        .unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(String::from_utf8_lossy(&out.stdout), ALLOWED_TEXT);
    let denials: Vec<&LandlockDenial> = out
        .events
        .iter()
        .filter_map(|e| match &e.kind {
            stockade::EventKind::LandlockDenied { landlock } => Some(landlock),
            _ => None,
        })
        .collect();
    let secret = withheld.join("secret.txt").display().to_string();
    assert!(
        denials
            .iter()
            .any(|d| d.blockers == ["fs.read_file"] && d.path.as_deref() == Some(&secret)),
        "{denials:#?}"
    );
    assert!(
        denials.iter().any(|d| d.blockers == ["net.connect_tcp"]
            && d.object.get("dest").map(String::as_str) == Some("22")),
        "{denials:#?}"
    );
    assert!(
        !denials
            .iter()
            .any(|d| d.path.as_deref().is_some_and(|p| p.contains("ok.txt"))),
        "{denials:#?}"
    );
    // Before the exit event: the run's record is complete when it ends.
    assert!(matches!(
        out.events.last().unwrap().kind,
        stockade::EventKind::Exit { .. }
    ));
    let summary = stockade::events::summary(&out.events);
    assert!(
        summary.contains(&format!("- file: read of {secret} refused (Landlock)")),
        "{summary}"
    );
    assert!(
        summary.contains("- network: TCP connect to port 22 refused (Landlock)"),
        "{summary}"
    );
}
