//! Pre-warmed sandboxes are single-use like cold ones: nothing written by one
//! command is seen by the next, each gets a fresh PID 1 and namespaces, and a
//! spawn with another identity does not get the warm one. Own file: an idle
//! warm helper is a child of this process.

mod common;

use std::path::Path;
use std::time::Duration;

use common::require_root;
use stockade::{Sandbox, Stdio};

/// Our child processes started as the stockade helper.
fn warm_helpers() -> Vec<u32> {
    let me = std::process::id().to_string();
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        let ppid = status
            .lines()
            .find_map(|l| l.strip_prefix("PPid:"))
            .map(str::trim)
            .unwrap_or("");
        let cmd = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        if ppid == me && cmd.starts_with(b"stockade-init\0") {
            out.push(pid);
        }
    }
    out
}

#[test]
fn prewarmed_sandboxes_are_fresh_and_single_use() {
    require_root();
    // Each run: print its network namespace, whether the previous run's file
    // is visible in /tmp, then leave a file behind for the next one.
    let sb = Sandbox::new().command([
        "sh",
        "-c",
        "readlink /proc/self/ns/net; ls /tmp/left-behind 2>/dev/null || echo clean; \
         echo x > /tmp/left-behind; echo $$ > /dev/null",
    ]);
    sb.prewarm().expect("prewarm");
    for i in 0..5 {
        // Positive control: a warm helper is waiting, and the spawn consumes it.
        // The helper shows up before it has cloned its init: wait for both.
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        let (before, children) = loop {
            let helpers = warm_helpers();
            let children = helpers
                .first()
                .map(|h| std::fs::read_to_string(format!("/proc/{h}/task/{h}/children")))
                .and_then(Result::ok)
                .unwrap_or_default();
            if !children.trim().is_empty() || std::time::Instant::now() > deadline {
                break (helpers, children);
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        assert_eq!(
            before.len(),
            1,
            "run {i}: one idle warm helper expected: {before:?}"
        );
        let warm_init: u32 = children
            .trim()
            .parse()
            .expect("the warm helper has created its init");
        let warm_net = std::fs::read_link(format!("/proc/{warm_init}/ns/net")).unwrap();
        let child = sb
            .clone()
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        assert_eq!(
            child.pid(),
            warm_init,
            "run {i}: the spawn must use the pre-warmed init"
        );
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{:?}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8(out.stdout).unwrap();
        let mut lines = text.lines();
        let (ns, marker) = (
            lines.next().unwrap_or_default().to_string(),
            lines.next().unwrap_or_default().to_string(),
        );
        assert_eq!(marker, "clean", "run {i} saw a previous run's /tmp");
        assert!(ns.starts_with("net:["), "{ns}");
        // The command runs in the namespaces prepared ahead of time (inode
        // numbers are recycled by the kernel once a namespace is freed, so the
        // freshness proof is the clean /tmp above, not the number).
        assert_eq!(
            Path::new(&ns),
            warm_net,
            "run {i}: not in the pre-warmed network namespace"
        );
        // Let the background worker prepare the next warm one.
        std::thread::sleep(Duration::from_millis(20));
    }

    // Another identity never takes the warm sandbox; it still works (cold).
    let other = Sandbox::new().uid(1234).gid(1234).command(["id", "-u"]);
    let out = other.output().expect("cold spawn with another identity");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "1234");

    // Timeouts and errors behave as for a cold sandbox.
    let st = Sandbox::new()
        .timeout(Duration::from_millis(300))
        .command(["sleep", "10"])
        .status()
        .unwrap();
    assert!(st.timed_out() && st.exit_code() == 124, "{st}");
    let err = Sandbox::new()
        .command(["no-such-program-prewarm"])
        .status()
        .unwrap_err();
    assert_eq!(err.exit_code(), 127, "{err}");
}
