//! Many sandboxes at once from one multi-threaded host: all succeed, nothing
//! deadlocks, and nothing leaks (descriptors, child processes, zombies).
//!
//! The tests in this file share one lock: each compares the process's fds and
//! children before and after, which only means something if no other sandbox
//! work runs in the process at the same time.

mod common;

use std::io::{Read, Write};
use std::sync::mpsc;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use common::{open_fd_count, our_children, require_root, text, Workspace};
use stockade::{Error, Fs, Sandbox, Stdio};

static SERIAL: Mutex<()> = Mutex::new(());

const WATCHDOG: Duration = Duration::from_secs(120);

/// Run `work` on its own thread; panic if it takes longer than the watchdog.
fn with_watchdog<F: FnOnce() + Send + 'static>(name: &str, work: F) {
    let (tx, rx) = mpsc::channel();
    let handle = std::thread::Builder::new()
        .name(name.into())
        .spawn(move || {
            work();
            let _ = tx.send(());
        })
        .unwrap();
    match rx.recv_timeout(WATCHDOG) {
        Ok(()) => handle.join().unwrap(),
        // The worker panicked (sender dropped): re-raise its panic.
        Err(mpsc::RecvTimeoutError::Disconnected) => {
            if let Err(p) = handle.join() {
                std::panic::resume_unwind(p);
            }
        }
        Err(mpsc::RecvTimeoutError::Timeout) => {
            panic!(
                "{name}: still running after {WATCHDOG:?}: deadlock or hang in concurrent spawns"
            )
        }
    }
}

/// Snapshot of what a sandbox could leak in the host process.
struct Baseline {
    fds: usize,
}

/// No child process may remain, zombie or alive, once every handle is waited
/// or dropped. A sandbox's owner is reaped in the background while the kernel
/// tears its namespaces down, so allow a moment for that.
fn assert_no_children(what: &str) {
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        let kids = our_children();
        if kids.is_empty() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: child processes left behind (pid, state, name): {kids:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

impl Baseline {
    fn take() -> Self {
        assert_no_children("before the test");
        Baseline {
            fds: open_fd_count(),
        }
    }

    fn check(&self, what: &str) {
        assert_no_children(what);
        let fds = open_fd_count();
        if fds != self.fds {
            let list: Vec<String> = std::fs::read_dir("/proc/self/fd")
                .unwrap()
                .flatten()
                .map(|e| {
                    format!(
                        "{} -> {:?}",
                        e.file_name().to_string_lossy(),
                        std::fs::read_link(e.path()).ok()
                    )
                })
                .collect();
            panic!(
                "{what}: open fds went from {} to {fds}: {list:#?}",
                self.fds
            );
        }
    }
}

#[test]
fn two_hundred_concurrent_sandboxes() {
    require_root();
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    // Warm up once so lazily opened process-wide state (if any) is not counted
    // as a leak.
    let warm = Sandbox::new()
        .command(["/bin/true"])
        .output()
        .expect("warm-up sandbox");
    assert!(warm.status.success());
    let base = Baseline::take();
    let started = Instant::now();

    with_watchdog("200 sandboxes", || {
        const THREADS: usize = 8;
        const EACH: usize = 25;
        let barrier = std::sync::Arc::new(std::sync::Barrier::new(THREADS));
        let workers: Vec<_> = (0..THREADS)
            .map(|t| {
                let barrier = barrier.clone();
                std::thread::spawn(move || {
                    barrier.wait();
                    for i in 0..EACH {
                        let out = Sandbox::new()
                            .command(["sh", "-c", "echo $$; echo \"$0\" >&2", &format!("t{t}-{i}")])
                            .output()
                            .unwrap_or_else(|e| panic!("sandbox t{t}-{i} failed to run: {e}"));
                        assert!(
                            out.status.success(),
                            "t{t}-{i}: {}: {}",
                            out.status,
                            text(&out.stderr)
                        );
                        // Each sandbox has its own pid namespace: the command is
                        // PID 2 under the sandbox's init, whatever the host does.
                        assert_eq!(text(&out.stdout), "2\n", "t{t}-{i}");
                        // Output never crosses between concurrent sandboxes.
                        assert_eq!(text(&out.stderr), format!("t{t}-{i}\n"));
                    }
                })
            })
            .collect();
        for w in workers {
            w.join().expect("worker thread panicked");
        }
    });

    let took = started.elapsed();
    println!("200 concurrent sandboxes (8 threads x 25) took {took:?}");
    base.check("after 200 concurrent sandboxes");
}

/// Every way a sandbox can end, concurrently: piped round trips, kill, drop
/// while running, timeouts, setup errors, and `try_wait` polling.
#[test]
fn concurrent_mixed_lifecycles() {
    require_root();
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let warm = Sandbox::new()
        .command(["/bin/true"])
        .output()
        .expect("warm-up sandbox");
    assert!(warm.status.success());
    let ws = Workspace::new("mixed");
    let base = Baseline::take();
    let root = ws.path().to_path_buf();

    with_watchdog("mixed lifecycles", move || {
        // Long-running sandboxes spawned from other threads at the same time as
        // the workers: if a pipe end of one sandbox leaked into another's helper,
        // a worker's output() would block until a holder ends (60 s).
        let barrier = std::sync::Arc::new(std::sync::Barrier::new(6 + 2));
        let holders: Vec<_> = (0..2)
            .map(|_| {
                let barrier = barrier.clone();
                std::thread::spawn(move || {
                    barrier.wait();
                    Sandbox::new()
                        .command(["sleep", "100"])
                        .timeout(Duration::from_secs(60))
                        .stdout(Stdio::piped())
                        .stderr(Stdio::piped())
                        .spawn()
                        .unwrap()
                })
            })
            .collect();
        let phase = Instant::now();
        let workers: Vec<_> = (0..6)
            .map(|t| {
                let root = root.clone();
                let barrier = barrier.clone();
                std::thread::spawn(move || {
                    barrier.wait();
                    for i in 0..5 {
                        let tag = format!("t{t}-{i}");
                        match (t + i) % 6 {
                            0 => {
                                let mut c = Sandbox::new()
                                    .command(["cat"])
                                    .stdin(Stdio::piped())
                                    .stdout(Stdio::piped())
                                    .spawn()
                                    .unwrap();
                                c.stdin.take().unwrap().write_all(tag.as_bytes()).unwrap();
                                let mut got = String::new();
                                c.stdout.take().unwrap().read_to_string(&mut got).unwrap();
                                assert_eq!(got, tag);
                                assert!(c.wait().unwrap().success());
                            }
                            1 => {
                                let mut c = Sandbox::new()
                                    .command(["sleep", "100"])
                                    .stdout(Stdio::null())
                                    .stderr(Stdio::null())
                                    .spawn()
                                    .unwrap();
                                assert_eq!(c.try_wait().unwrap(), None);
                                c.kill().unwrap();
                                assert_eq!(c.wait().unwrap().signal(), Some(9), "{tag}");
                            }
                            2 => {
                                let c = Sandbox::new()
                                    .command(["sh", "-c", "sleep 100 & sleep 100"])
                                    .stdout(Stdio::piped())
                                    .stderr(Stdio::piped())
                                    .spawn()
                                    .unwrap();
                                std::thread::sleep(Duration::from_millis(20));
                                drop(c);
                            }
                            3 => {
                                let out = Sandbox::new()
                                    .command(["sleep", "100"])
                                    .timeout(Duration::from_millis(200))
                                    .output()
                                    .unwrap();
                                assert!(out.status.timed_out(), "{tag}: {:?}", out.status);
                            }
                            4 => {
                                let e = Sandbox::new()
                                    .command(["no-such-program"])
                                    .output()
                                    .unwrap_err();
                                assert!(matches!(e, Error::NotFound(_)), "{tag}: {e:?}");
                            }
                            _ => {
                                let out = Sandbox::new()
                                    .fs(Fs::minimal().rw(&root))
                                    .command([
                                        "sh",
                                        "-c",
                                        &format!("echo {tag} > {tag}.txt && cat {tag}.txt"),
                                    ])
                                    .output()
                                    .unwrap();
                                assert_eq!(
                                    text(&out.stdout),
                                    format!("{tag}\n"),
                                    "{}",
                                    text(&out.stderr)
                                );
                            }
                        }
                    }
                })
            })
            .collect();
        let mut holders: Vec<_> = holders
            .into_iter()
            .map(|h| h.join().expect("holder spawn"))
            .collect();
        for w in workers {
            w.join().expect("worker thread panicked");
        }
        let took = phase.elapsed();
        assert!(
            took < Duration::from_secs(30),
            "workers took {took:?}: blocked on a concurrent sandbox?"
        );
        for h in &mut holders {
            assert_eq!(h.try_wait().unwrap(), None, "holder ended early");
            h.kill().unwrap();
            let mut rest = Vec::new();
            // EOF right after the kill: no other process holds the write end.
            h.stdout.take().unwrap().read_to_end(&mut rest).unwrap();
            assert!(rest.is_empty());
            assert_eq!(h.wait().unwrap().signal(), Some(9));
        }
    });

    base.check("after mixed lifecycles");
    drop(ws);
}
