//! The event stream: refused syscalls recorded by the host with the errno
//! the filter gives, command start/exit, limit hits, and the LLM summary.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::require_root;
use stockade::{Event, EventKind, Sandbox, Syscalls};

fn denied(events: &[Event]) -> Vec<(String, i32)> {
    events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::SyscallDenied { syscall, errno, .. } => Some((syscall.clone(), *errno)),
            _ => None,
        })
        .collect()
}

#[test]
fn refused_syscalls_are_recorded_with_the_filters_errno() {
    require_root();
    let out = Sandbox::new()
        .command([
            "sh",
            "-c",
            "mount -t tmpfs none /tmp 2>/dev/null; echo mount=$?; \
             unshare -U true 2>/dev/null; echo unshare=$?; echo done",
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("mount=") && text.ends_with("done\n"),
        "{text}"
    );
    let d = denied(&out.events);
    assert!(d.contains(&("mount".into(), libc::EPERM)), "{d:?}");
    assert!(d.contains(&("unshare".into(), libc::EPERM)), "{d:?}");
    // First the start, last the exit, all of one sandbox.
    assert!(matches!(out.events[0].kind, EventKind::Start { .. }));
    assert!(matches!(
        out.events.last().unwrap().kind,
        EventKind::Exit { code: Some(0), .. }
    ));
    let id = &out.events[0].sandbox;
    assert_eq!(id.len(), 16);
    assert!(out.events.iter().all(|e| &e.sandbox == id));
    println!("{}", stockade::events::summary(&out.events));
}
