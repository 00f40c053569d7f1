//! Stopping a command from another thread: `KillHandle`, `signal` and
//! `wait_timeout`, on a whole sandbox and on one command of a session. The
//! bindings build cancellation (asyncio, AbortSignal) on these.

mod common;

use std::io::Read;
use std::time::Duration;

use common::require_root;
use stockade::{Error, Sandbox, Stdio};

/// A shell that says which signal reached it, then exits 7.
const TRAP_TERM: &str =
    "trap 'echo got-term; exit 7' TERM; echo ready; while :; do sleep 0.05; done";

fn read_line(r: &mut impl Read) -> String {
    let mut line = Vec::new();
    let mut b = [0u8; 1];
    while r.read(&mut b).unwrap_or(0) == 1 && b[0] != b'\n' {
        line.push(b[0]);
    }
    String::from_utf8_lossy(&line).into_owned()
}

#[test]
fn kill_handle_ends_a_sandbox_that_another_thread_waits_on() {
    require_root();
    let mut child = Sandbox::new()
        .command(["sleep", "60"])
        .spawn()
        .expect("spawn");
    let handle = child.kill_handle();
    let killer = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(200));
        handle.kill().expect("kill through the handle");
    });
    let status = child.wait().expect("wait");
    killer.join().unwrap();
    assert_eq!(status.signal(), Some(libc::SIGKILL), "{status:?}");
    assert!(!status.timed_out());
    assert_eq!(status.exit_code(), 128 + libc::SIGKILL);
}

#[test]
fn wait_timeout_returns_none_while_running_and_the_status_after() {
    require_root();
    let mut child = Sandbox::new()
        .command(["sleep", "60"])
        .spawn()
        .expect("spawn");
    assert!(child
        .wait_timeout(Duration::from_millis(100))
        .expect("wait_timeout")
        .is_none());
    child.kill().unwrap();
    let status = child
        .wait_timeout(Duration::from_secs(30))
        .expect("wait_timeout")
        .expect("ended after the kill");
    assert_eq!(status.signal(), Some(libc::SIGKILL));
    // Positive control: a command that ends by itself is reported too.
    let mut quick = Sandbox::new().command(["true"]).spawn().unwrap();
    let s = quick
        .wait_timeout(Duration::from_secs(30))
        .unwrap()
        .unwrap();
    assert_eq!(s.code(), Some(0));
}

#[test]
fn signal_delivers_sigterm_so_the_command_can_clean_up() {
    require_root();
    let mut child = Sandbox::new()
        .command(["sh", "-c", TRAP_TERM])
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut out = child.stdout.take().unwrap();
    assert_eq!(read_line(&mut out), "ready");
    child.signal(libc::SIGTERM).expect("signal");
    assert_eq!(read_line(&mut out), "got-term");
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(7), "{status:?}");
}

#[test]
fn invalid_signal_numbers_are_refused() {
    require_root();
    let mut child = Sandbox::new().command(["sleep", "60"]).spawn().unwrap();
    for bad in [0, -9, 65, 1000] {
        match child.signal(bad) {
            Err(Error::Policy(m)) => assert!(m.contains("invalid signal"), "{m}"),
            other => panic!("signal({bad}) gave {other:?}"),
        }
    }
    // The sandbox is untouched by the refused numbers.
    assert!(child.try_wait().unwrap().is_none());
    child.kill().unwrap();
    assert_eq!(child.wait().unwrap().signal(), Some(libc::SIGKILL));
}

#[test]
fn a_handle_outliving_its_sandbox_does_nothing() {
    require_root();
    let child = Sandbox::new().command(["true"]).spawn().unwrap();
    let handle = child.kill_handle();
    drop(child);
    handle.kill().expect("kill after the end is harmless");
    handle
        .signal(libc::SIGTERM)
        .expect("signal after the end is harmless");
}

#[test]
fn session_kill_handle_stops_one_command_and_the_session_lives_on() {
    require_root();
    let session = Sandbox::new().session().expect("session");
    let mut long = session.command(["sleep", "60"]).spawn().expect("spawn");
    let handle = long.kill_handle();
    let killer = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(200));
        handle.kill().unwrap();
    });
    assert!(long
        .wait_timeout(Duration::from_millis(50))
        .unwrap()
        .is_none());
    let status = long.wait().unwrap();
    killer.join().unwrap();
    assert_eq!(status.signal(), Some(libc::SIGKILL), "{status:?}");

    // SIGTERM reaches the command's trap.
    let mut trap = session
        .command(["sh", "-c", TRAP_TERM])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = trap.stdout.take().unwrap();
    assert_eq!(read_line(&mut out), "ready");
    trap.signal(libc::SIGTERM).unwrap();
    assert_eq!(read_line(&mut out), "got-term");
    assert_eq!(trap.wait().unwrap().code(), Some(7));

    // Positive control: the session still runs commands.
    let out = session.command(["echo", "alive"]).output().unwrap();
    assert_eq!(out.stdout, b"alive\n");
    session.close().unwrap();
}
