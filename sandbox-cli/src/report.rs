//! `--report FILE`: the run's result as JSON.

use std::path::Path;

use serde::Serialize;
use stockade::{Error, Event, ExitStatus, Limits};

#[derive(Serialize)]
struct Report<'a> {
    /// The CLI's own exit status for this run.
    exit_code: i32,
    /// Terminating signal of the command, if any.
    signal: Option<i32>,
    timed_out: bool,
    /// From the sandbox cgroup's OOM counter; null when there was no cgroup
    /// (no limits set).
    oom_killed: Option<bool>,
    /// Peak memory of the sandbox in bytes (cgroup; null without limits).
    peak_memory: Option<u64>,
    /// CPU seconds of the whole sandbox (cgroup; null without limits).
    cpu_time: Option<f64>,
    /// What enforced `--memory/--pids/--cpu` (null when nothing ran).
    limits: Option<LimitsInfo>,
    /// Seconds from spawn to the end of the whole process tree.
    duration: f64,
    /// The layers the command ran under (null when nothing ran).
    layers: Option<Layers>,
    events: Vec<Entry<'a>>,
    /// The refusals in words, for an LLM's tool result (empty: none).
    summary: String,
    /// Set when the sandbox could not be set up or the program not started.
    error: Option<ErrorInfo>,
}

#[derive(Serialize)]
struct LimitsInfo {
    /// `none` (no limits asked for), `cgroup v1` or `cgroup v2`.
    level: &'static str,
    /// The limits asked for, as given on the command line.
    memory: Option<u64>,
    pids: Option<u64>,
    /// Cores.
    cpu: Option<f64>,
}

#[derive(Serialize)]
struct Layers {
    /// The Landlock ABI enforced; 0 only with --allow-no-landlock on a host
    /// without Landlock.
    landlock_abi: u32,
    /// The seccomp allowlist is always attached.
    seccomp: bool,
    /// `full`, or `reduced` (--allow-reduced on a host without user namespaces).
    mode: stockade::reduced::Mode,
    /// The full mode's layers the run went without (empty in full mode).
    missing: &'static [&'static str],
    /// What this mode does not contain, in words (empty in full mode).
    not_contained: &'static [&'static str],
}

/// One line of `--events` and one entry of the report's `events`: the
/// core's event (`kind` and its fields) plus `detail`, the same in words.
#[derive(Serialize)]
pub struct Line<'a> {
    #[serde(flatten)]
    event: &'a Event,
    detail: String,
}

impl<'a> Line<'a> {
    pub fn new(event: &'a Event) -> Self {
        Line {
            event,
            detail: event.to_string(),
        }
    }
}

/// The event of a sandbox that could not be set up (nothing ran).
#[derive(Serialize)]
pub struct SetupFailed {
    kind: &'static str,
    detail: String,
}

impl SetupFailed {
    pub fn new(e: &Error) -> Self {
        SetupFailed {
            kind: "setup_failed",
            detail: e.to_string(),
        }
    }
}

#[derive(Serialize)]
#[serde(untagged)]
enum Entry<'a> {
    Event(Line<'a>),
    SetupFailed(SetupFailed),
}

#[derive(Serialize)]
struct ErrorInfo {
    layer: String,
    message: String,
}

/// Write the report for `outcome` to `path`.
pub fn write(
    path: &Path,
    outcome: &Result<ExitStatus, Error>,
    events: &[Event],
    limits: &Limits,
) -> std::io::Result<()> {
    let r = match outcome {
        Ok(s) => {
            let summary = stockade::events::summary(events);
            let events = events.iter().map(|e| Entry::Event(Line::new(e))).collect();
            Report {
                exit_code: s.exit_code(),
                signal: s.signal(),
                timed_out: s.timed_out(),
                oom_killed: s.oom_killed(),
                peak_memory: s.peak_memory(),
                cpu_time: s.cpu_time().map(|d| d.as_secs_f64()),
                limits: Some(LimitsInfo {
                    level: s.limits_level().name(),
                    memory: limits.memory,
                    pids: limits.pids,
                    cpu: limits.cpu_millis.map(|m| m as f64 / 1000.0),
                }),
                duration: s.duration().as_secs_f64(),
                layers: Some(Layers {
                    landlock_abi: s.landlock_abi(),
                    seccomp: true,
                    mode: s.mode(),
                    missing: s.missing_layers(),
                    not_contained: s.mode().not_contained(),
                }),
                events,
                summary,
                error: None,
            }
        }
        Err(e) => Report {
            exit_code: e.exit_code(),
            signal: None,
            timed_out: false,
            oom_killed: None,
            peak_memory: None,
            cpu_time: None,
            limits: None,
            duration: 0.0,
            layers: None,
            events: vec![Entry::SetupFailed(SetupFailed::new(e))],
            summary: String::new(),
            error: Some(ErrorInfo {
                layer: e.layer().to_string(),
                message: e.to_string(),
            }),
        },
    };
    let text = serde_json::to_string_pretty(&r).map_err(std::io::Error::other)?;
    std::fs::write(path, text + "\n")
}
