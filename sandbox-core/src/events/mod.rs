//! One typed stream of events per sandbox: what ran, how it ended, and
//! every attempt to leave that the host can see.
//!
//! - command start and exit (a session's carry the command id);
//! - the egress proxy's decisions ([`crate::proxy::ProxyEvent`]);
//! - limit hits: timeout, OOM kill, forks refused at the pids limit;
//! - refused syscalls ([`syscalls`]): the filter hands each refusal to the
//!   host with seccomp user notification, which answers it with the errno
//!   the filter would have given and records it. Allowed syscalls never
//!   leave the kernel.
//!
//! - Landlock's denials (files, TCP ports, signals), where the kernel
//!   reports them: its audit log, readable by a root caller with audit
//!   enabled ([`landlock`], [`crate::audit`]). Elsewhere they are not in the
//!   stream (`doctor` says why). A path outside the sandbox's root is not a
//!   denial at all: it does not exist inside (`ENOENT`), which no kernel
//!   interface reports.
//!
//! Events are delivered to the caller's callback as they happen
//! ([`crate::Sandbox::on_event`]) and kept (bounded) for
//! [`crate::Child::events`] and [`crate::Output::events`]. [`summary`]
//! turns them into a short text block for an LLM's tool result.

pub(crate) mod landlock;
mod summary;
pub(crate) mod syscalls;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use serde::Serialize;

use crate::proxy::ProxyEvent;
pub use summary::summary;

/// Events kept per sandbox. They live in the host process, which a sandbox
/// must not be able to grow without bound; beyond this they are counted and
/// reported once as [`EventKind::Dropped`].
pub const MAX_EVENTS: usize = 10_000;

/// Something that happened in or to a sandbox.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Event {
    /// When the host saw it.
    #[serde(serialize_with = "unix_seconds")]
    pub at: SystemTime,
    /// The sandbox's id ([`crate::Child::sandbox_id`]).
    pub sandbox: String,
    /// The session command it belongs to (none outside sessions, and for
    /// events of the sandbox as a whole).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub command: Option<u64>,
    /// What happened.
    #[serde(flatten)]
    pub kind: EventKind,
}

/// What happened, with its details. Serialized with a `kind` field
/// (`start`, `exit`, `proxy`, `syscall_denied`, `limit`, `dropped`,
/// `notice`).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum EventKind {
    /// The command is running.
    Start {
        /// Its program and arguments.
        argv: Vec<String>,
    },
    /// The command ended (for a one-command sandbox: with everything it
    /// started).
    Exit {
        /// Exit code, if it exited.
        code: Option<i32>,
        /// The signal that killed it.
        signal: Option<i32>,
        /// Whether its timeout fired.
        timed_out: bool,
    },
    /// A decision of the egress proxy.
    Proxy {
        /// The decision in full.
        proxy: ProxyEvent,
    },
    /// Landlock refused an access (from the kernel's audit log).
    LandlockDenied {
        /// The denial as the kernel logged it.
        landlock: crate::audit::LandlockDenial,
    },
    /// The seccomp filter refused a syscall.
    SyscallDenied {
        /// Its x86_64 name (`syscall_<nr>` if the table does not know it).
        syscall: String,
        /// Its number.
        nr: i64,
        /// The argument registers as numbers. Pointers are shown, never
        /// followed: nothing is read from the sandbox's memory.
        args: [u64; 6],
        /// Host pid of the calling thread.
        pid: u32,
        /// The errno it got (the filter's own answer).
        errno: i32,
        /// Its name (`EPERM`).
        errno_name: String,
    },
    /// A limit was hit.
    Limit {
        /// `timeout`, `memory` (the OOM killer killed a process) or `pids`
        /// (forks refused at the limit).
        limit: String,
        /// What happened, in words.
        detail: String,
    },
    /// Events not recorded beyond [`MAX_EVENTS`].
    Dropped {
        /// How many.
        count: u64,
    },
    /// Something the reader of the record should know about it, e.g. that
    /// refused syscalls could not be recorded on this host.
    Notice {
        /// In words.
        detail: String,
    },
}

/// A time as float seconds since the Unix epoch (0 before it), for JSON.
pub(crate) fn unix_seconds<S: serde::Serializer>(t: &SystemTime, s: S) -> Result<S::Ok, S::Error> {
    let secs = t
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0);
    s.serialize_f64(secs)
}

impl std::fmt::Display for Event {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.kind {
            EventKind::Start { argv } => write!(f, "started {}", argv.join(" ")),
            EventKind::Exit {
                code,
                signal,
                timed_out,
            } => match (timed_out, code, signal) {
                (true, _, _) => write!(f, "timed out"),
                (_, Some(c), _) => write!(f, "exit status: {c}"),
                (_, _, Some(s)) => write!(f, "killed by signal {s}"),
                _ => write!(f, "ended"),
            },
            EventKind::Proxy { proxy: e } => {
                write!(f, "{} ", e.protocol)?;
                match (e.decision, &e.reason, &e.address) {
                    ("denied", Some(r), _) => write!(f, "denied {}:{} ({r})", e.host, e.port),
                    ("allowed", _, Some(a)) => write!(f, "allowed {}:{} via {a}", e.host, e.port),
                    ("closed", _, _) => write!(
                        f,
                        "closed {}:{} ({} bytes up, {} down)",
                        e.host, e.port, e.bytes_up, e.bytes_down
                    ),
                    (d, _, _) => write!(f, "{d} {}:{}", e.host, e.port),
                }
            }
            EventKind::SyscallDenied {
                syscall,
                errno_name,
                pid,
                ..
            } => write!(f, "syscall {syscall} denied ({errno_name}) to pid {pid}"),
            EventKind::LandlockDenied { landlock: d } => {
                write!(f, "landlock denied {}", d.blockers.join(","))?;
                if let Some(p) = &d.path {
                    write!(f, " on {p}")?;
                }
                Ok(())
            }
            EventKind::Limit { detail, .. } => f.write_str(detail),
            EventKind::Dropped { count } => write!(f, "{count} more events not recorded"),
            EventKind::Notice { detail } => f.write_str(detail),
        }
    }
}

/// Receives every event of a sandbox as it happens, on the thread that saw
/// it (the caller's, the proxy's or the syscall supervisor's): keep it short.
pub type EventSink = Arc<dyn Fn(&Event) + Send + Sync>;

/// The events of one sandbox: kept (bounded) and passed to the sink.
pub(crate) struct Log {
    sandbox: String,
    sink: Option<EventSink>,
    events: Mutex<Vec<Event>>,
    dropped: AtomicU64,
}

impl std::fmt::Debug for Log {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Log({})", self.sandbox)
    }
}

impl Log {
    /// A log for a new sandbox with a fresh random id.
    pub fn new(sink: Option<EventSink>) -> Arc<Log> {
        Arc::new(Log {
            sandbox: new_id(),
            sink,
            events: Mutex::new(Vec::new()),
            dropped: AtomicU64::new(0),
        })
    }

    /// The sandbox's id.
    pub fn sandbox(&self) -> &str {
        &self.sandbox
    }

    /// Record `kind` now.
    pub fn push(&self, command: Option<u64>, kind: EventKind) {
        let event = Event {
            at: SystemTime::now(),
            sandbox: self.sandbox.clone(),
            command,
            kind,
        };
        if let Some(sink) = &self.sink {
            sink(&event);
        }
        let Ok(mut events) = self.events.lock() else {
            return;
        };
        if events.len() < MAX_EVENTS {
            events.push(event);
        } else {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Every event so far (with the count of dropped ones last), or those
    /// of `command` only.
    pub fn snapshot(&self, command: Option<u64>) -> Vec<Event> {
        let mut out: Vec<Event> = self
            .events
            .lock()
            .map(|v| {
                v.iter()
                    .filter(|e| command.is_none() || e.command == command)
                    .cloned()
                    .collect()
            })
            .unwrap_or_default();
        let dropped = self.dropped.load(Ordering::Relaxed);
        if dropped > 0 {
            out.push(Event {
                at: SystemTime::now(),
                sandbox: self.sandbox.clone(),
                command: None,
                kind: EventKind::Dropped { count: dropped },
            });
        }
        out
    }
}

/// 16 hex digits from the kernel's random pool: unique enough to join the
/// records of one sandbox across logs, and guessable by nobody.
fn new_id() -> String {
    let mut bytes = [0u8; 8];
    // SAFETY: `bytes` is a valid writable buffer of its length.
    let n = unsafe { libc::getrandom(bytes.as_mut_ptr().cast(), bytes.len(), 0) };
    if n != bytes.len() as isize {
        // getrandom cannot fail for 8 bytes once the pool is ready; fall
        // back to something still unique within this host.
        static NEXT: AtomicU64 = AtomicU64::new(1);
        let t = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        return format!(
            "{:08x}{:08x}",
            std::process::id() ^ (t as u32),
            NEXT.fetch_add(1, Ordering::Relaxed) as u32
        );
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The limit events a finished run's status implies.
pub(crate) fn limit_events(log: &Log, command: Option<u64>, status: &crate::ExitStatus) {
    if status.timed_out() {
        log.push(
            command,
            EventKind::Limit {
                limit: "timeout".into(),
                detail: format!(
                    "timeout: the wall-clock limit was reached after {:.1}s; the whole tree was killed",
                    status.duration().as_secs_f64()
                ),
            },
        );
    }
    if status.oom_killed() == Some(true) {
        log.push(
            command,
            EventKind::Limit {
                limit: "memory".into(),
                detail:
                    "memory: the limit was reached and the kernel's OOM killer killed a process"
                        .into(),
            },
        );
    }
    if let Some(n) = status.pids_max_hits().filter(|&n| n > 0) {
        log.push(
            command,
            EventKind::Limit {
                limit: "pids".into(),
                detail: format!("pids: {n} process creations were refused at the limit"),
            },
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_distinct_hex() {
        let (a, b) = (new_id(), new_id());
        assert_eq!(a.len(), 16);
        assert!(a.chars().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
    }

    #[test]
    fn the_log_is_bounded_and_says_so() {
        let seen = Arc::new(AtomicU64::new(0));
        let counter = seen.clone();
        let log = Log::new(Some(Arc::new(move |_: &Event| {
            counter.fetch_add(1, Ordering::Relaxed);
        })));
        for i in 0..MAX_EVENTS + 5 {
            log.push(Some(i as u64 % 2), EventKind::Notice { detail: "x".into() });
        }
        let all = log.snapshot(None);
        assert_eq!(all.len(), MAX_EVENTS + 1);
        assert_eq!(all.last().unwrap().kind, EventKind::Dropped { count: 5 });
        // The sink saw every one, dropped or not.
        assert_eq!(seen.load(Ordering::Relaxed), (MAX_EVENTS + 5) as u64);
        // A command's view holds its own events only.
        let one = log.snapshot(Some(1));
        assert!(one[..one.len() - 1].iter().all(|e| e.command == Some(1)));
    }

    #[test]
    fn serializes_with_a_kind_tag() {
        let log = Log::new(None);
        log.push(
            Some(3),
            EventKind::SyscallDenied {
                syscall: "mount".into(),
                nr: 165,
                args: [0; 6],
                pid: 42,
                errno: 1,
                errno_name: "EPERM".into(),
            },
        );
        let v = serde_json::to_value(&log.snapshot(None)[0]).unwrap();
        assert_eq!(v["kind"], "syscall_denied");
        assert_eq!(v["syscall"], "mount");
        assert_eq!(v["command"], 3);
        assert_eq!(v["sandbox"], log.sandbox());
        assert!(v["at"].as_f64().unwrap() > 1.6e9);
    }
}
