//! Landlock's own denials, where the kernel reports them: its audit log
//! (Landlock ABI 7, audit enabled, a root caller; see [`crate::audit`]).
//! Elsewhere they are not visible, and `doctor` says why.
//!
//! The kernel names a denial by its Landlock domain, and a domain by the
//! host pid of the process that created it: the command's last hop. The
//! host learns that pid from the init's children list right after the start
//! report, while the init holds off reaping ([`wire::Plan::hold_reaping`]),
//! so a command that ends at once is still found. Session commands are
//! looked up the same way without the hold: one that ends within moments of
//! its start may go unattributed.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::{EventKind, Log};
use crate::audit;

/// How long a verdict of [`visible`] is reused: probing costs a netlink
/// round trip and a few `/proc` reads (~50 µs), too much for every spawn.
const VERDICT_TTL: Duration = Duration::from_secs(1);
/// How long the end of a run waits for the kernel's last records.
const FLUSH: Duration = Duration::from_millis(200);

/// Whether Landlock denials are visible to this process now; starts the
/// audit reader when they are (it must listen before the command runs).
pub(crate) fn visible() -> bool {
    static VERDICT: Mutex<Option<(Instant, bool)>> = Mutex::new(None);
    let mut v = VERDICT.lock().unwrap_or_else(|p| p.into_inner());
    if let Some((at, ok)) = *v {
        if at.elapsed() < VERDICT_TTL {
            return ok;
        }
    }
    let ok = audit::start().is_ok();
    *v = Some((Instant::now(), ok));
    ok
}

/// Host pid of the init's child whose pid inside the sandbox is `inside`
/// (any child if `None`), from `/proc`.
pub(crate) fn child_host_pid(init: u32, inside: Option<i32>) -> Option<u32> {
    let children = std::fs::read_to_string(format!("/proc/{init}/task/{init}/children")).ok()?;
    children
        .split_whitespace()
        .filter_map(|c| c.parse::<u32>().ok())
        .find(|&c| match inside {
            None => true,
            Some(want) => inside_pid(c) == Some(want),
        })
}

/// The last `NSpid` entry of `pid`: its pid in its own pid namespace.
fn inside_pid(pid: u32) -> Option<i32> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("NSpid:"))?
        .split_whitespace()
        .last()?
        .parse()
        .ok()
}

/// Record the Landlock denials of the domain created by host pid `creator`
/// in `log`, until the returned watch is finished or dropped.
pub(crate) fn watch(creator: u32, log: &Arc<Log>, command: Option<u64>) -> Option<Watch> {
    let log = log.clone();
    let sink: audit::Sink = Arc::new(move |denial| {
        log.push(command, EventKind::LandlockDenied { landlock: denial });
    });
    audit::watch(creator, sink).map(Watch)
}

/// A command's Landlock denials being recorded.
pub(crate) struct Watch(audit::Watch);

impl std::fmt::Debug for Watch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Watch(..)")
    }
}

impl Watch {
    /// The command has ended: wait (briefly) for the kernel's last records,
    /// then stop.
    pub fn finish(self) {
        self.0.flush(FLUSH);
    }
}
