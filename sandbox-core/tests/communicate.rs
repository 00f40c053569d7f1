//! `communicate`: stdin fed, stdout and stderr collected with a cap, all on
//! the caller's thread, for a sandbox and for a session command.

mod common;

use common::require_root;
use stockade::{Error, Sandbox, Stdio};

fn piped(sb: Sandbox) -> Sandbox {
    sb.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
}

#[test]
fn input_goes_in_and_output_is_capped_per_stream() {
    require_root();
    let input = vec![b'x'; 1 << 20];
    let out =
        piped(Sandbox::new().command(["sh", "-c", "wc -c; head -c 100000 /dev/zero; echo e >&2"]))
            .spawn()
            .unwrap()
            .communicate(&input, 1000)
            .unwrap();
    assert!(out.status.success(), "{:?}", out.status);
    assert_eq!(out.stdout.len(), 1000);
    assert_eq!(&out.stdout[..8], b"1048576\n");
    assert_eq!(out.stderr, b"e\n");
    assert!(out.truncated);
    // Positive control: under the cap nothing is cut.
    let out = piped(Sandbox::new().command(["cat"]))
        .spawn()
        .unwrap()
        .communicate(b"short", 1000)
        .unwrap();
    assert_eq!(out.stdout, b"short");
    assert!(!out.truncated);
}

#[test]
fn a_command_that_never_reads_its_input_is_not_an_error() {
    require_root();
    let out = piped(Sandbox::new().command(["sh", "-c", "echo ignored"]))
        .spawn()
        .unwrap()
        .communicate(&vec![0u8; 8 << 20], usize::MAX)
        .unwrap();
    assert_eq!(out.stdout, b"ignored\n");
    assert!(out.status.success());
}

#[test]
fn input_without_a_stdin_pipe_is_refused() {
    require_root();
    let child = Sandbox::new()
        .command(["true"])
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    match child.communicate(b"data", usize::MAX) {
        Err(Error::Policy(m)) => assert!(m.contains("stdin is not piped"), "{m}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_session_command_returns_when_its_leader_ends() {
    require_root();
    let session = Sandbox::new().session().unwrap();
    // The background `sleep` keeps stdout and stderr open for a minute.
    let out = session
        .command(["sh", "-c", "sleep 60 & cat; echo leader-done"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
        .communicate(b"in:", 4)
        .unwrap();
    assert!(out.status.success(), "{:?}", out.status);
    assert_eq!(out.stdout, b"in:l");
    assert!(out.truncated);
    assert!(!out.status.timed_out());
    session.close().unwrap();
}
