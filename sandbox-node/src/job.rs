//! One command: spawned in a sandbox or a session, captured (`run`) or
//! streamed (`start`), and killable from the JS thread at any time through
//! [`Job::kill`] (what `AbortSignal` and `Process.kill()` call).

use std::collections::HashMap;
use std::os::fd::{IntoRawFd, OwnedFd};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use napi::bindgen_prelude::*;
use napi_derive::napi;
use stockade::{Error, KillHandle, Stdio};

use crate::{blocking, policy_error, to_napi};

/// Per-call options (`index.js` has checked the key names already).
#[napi(object)]
pub struct RunOptions {
    pub cwd: Option<String>,
    pub timeout_ms: Option<f64>,
    pub max_output: Option<f64>,
    pub env: Option<HashMap<String, String>>,
    /// `start` only: "pipe" (default), "ignore" or "inherit" for each stream.
    pub stdin: Option<String>,
    pub stdout: Option<String>,
    pub stderr: Option<String>,
}

/// How a command ended (`Process.wait()`).
#[napi(object)]
pub struct ExitInfo {
    pub exit_code: i32,
    pub signal: Option<i32>,
    pub timed_out: bool,
    pub oom_killed: Option<bool>,
    pub duration_ms: f64,
    pub peak_memory: Option<f64>,
    pub events_json: String,
}

/// A captured run (`Sandbox.run()`).
#[napi(object)]
pub struct RunOutput {
    pub exit_code: i32,
    pub signal: Option<i32>,
    pub timed_out: bool,
    pub oom_killed: Option<bool>,
    pub duration_ms: f64,
    pub peak_memory: Option<f64>,
    pub events_json: String,
    pub stdout: Buffer,
    pub stderr: Buffer,
    pub truncated: bool,
}

/// The parent ends of a started command's pipes, adopted by `index.js`.
#[napi(object)]
pub struct Fds {
    pub stdin: Option<i32>,
    pub stdout: Option<i32>,
    pub stderr: Option<i32>,
}

/// Where a command runs.
pub enum Spawner {
    Sandbox(Box<stockade::Sandbox>),
    Session(Arc<RwLock<Option<stockade::Session>>>),
}

enum AnyChild {
    Plain(Box<stockade::Child>),
    Session(stockade::SessionChild),
}

impl AnyChild {
    fn kill_handle(&self) -> KillHandle {
        match self {
            AnyChild::Plain(c) => c.kill_handle(),
            AnyChild::Session(c) => c.kill_handle(),
        }
    }

    fn pid(&self) -> u32 {
        match self {
            AnyChild::Plain(c) => c.pid(),
            AnyChild::Session(c) => c.pid(),
        }
    }

    fn wait(&mut self) -> std::result::Result<ExitInfo, Error> {
        let (status, events) = match self {
            AnyChild::Plain(c) => (c.wait()?, c.proxy_events()),
            AnyChild::Session(c) => (c.wait()?, c.proxy_events()),
        };
        Ok(ExitInfo::of(&status, &events))
    }
}

impl ExitInfo {
    fn of(status: &stockade::ExitStatus, events: &[stockade::proxy::ProxyEvent]) -> Self {
        ExitInfo {
            exit_code: status.exit_code(),
            signal: status.signal(),
            timed_out: status.timed_out(),
            oom_killed: status.oom_killed(),
            duration_ms: status.duration().as_secs_f64() * 1000.0,
            peak_memory: status.peak_memory().map(|b| b as f64),
            events_json: serde_json::to_string(events).unwrap_or_else(|_| "[]".into()),
        }
    }
}

/// What a command needs besides where it runs.
struct Request {
    argv: Vec<String>,
    cwd: Option<String>,
    timeout: Option<Duration>,
    env: Vec<(String, String)>,
}

impl Request {
    fn new(argv: Vec<String>, opts: &RunOptions) -> Result<Self> {
        if argv.is_empty() {
            return Err(policy_error("the command must not be empty"));
        }
        let timeout = match opts.timeout_ms {
            None => None,
            Some(ms) if ms.is_finite() && ms > 0.0 => Some(Duration::from_secs_f64(ms / 1000.0)),
            Some(ms) => {
                return Err(policy_error(format!(
                    "invalid timeoutMs {ms}: expected milliseconds greater than 0"
                )))
            }
        };
        let mut env = Vec::new();
        for (k, v) in opts.env.iter().flatten() {
            if k.is_empty() || k.contains('=') || k.contains('\0') {
                return Err(policy_error(format!(
                    "invalid environment variable name `{k}`"
                )));
            }
            env.push((k.clone(), v.clone()));
        }
        Ok(Request {
            argv,
            cwd: opts.cwd.clone(),
            timeout,
            env,
        })
    }
}

fn spawn_any(
    spawner: Spawner,
    req: Request,
    stdio: [Stdio; 3],
) -> std::result::Result<AnyChild, Error> {
    let [i, o, e] = stdio;
    match spawner {
        Spawner::Sandbox(sb) => {
            let mut sb = sb.command(req.argv).stdin(i).stdout(o).stderr(e);
            if let Some(c) = req.cwd {
                sb = sb.cwd(c);
            }
            if let Some(t) = req.timeout {
                sb = sb.timeout(t);
            }
            for (k, v) in req.env {
                sb = sb.env(k, v);
            }
            // `sb` (and with it our copies of passed pipe ends) drops here.
            sb.spawn().map(|c| AnyChild::Plain(Box::new(c)))
        }
        Spawner::Session(slot) => {
            let guard = slot.read().unwrap_or_else(|p| p.into_inner());
            let session = guard
                .as_ref()
                .ok_or_else(|| Error::Io(std::io::Error::other("the session is closed")))?;
            let mut cmd = session.command(req.argv).stdin(i).stdout(o).stderr(e);
            if let Some(c) = req.cwd {
                cmd = cmd.cwd(c);
            }
            if let Some(t) = req.timeout {
                cmd = cmd.timeout(t);
            }
            for (k, v) in req.env {
                cmd = cmd.env(k, v);
            }
            cmd.spawn().map(AnyChild::Session)
        }
    }
}

/// The kill switch: a signal asked for before the command runs is delivered
/// as soon as it does (SIGKILL before the spawn means: do not start).
#[derive(Default)]
struct KillSlot {
    handle: Option<KillHandle>,
    pending: Option<i32>,
}

const SIGKILL: i32 = 9;

fn deliver(h: &KillHandle, signal: i32) -> std::result::Result<(), Error> {
    if signal == SIGKILL {
        h.kill()
    } else {
        h.signal(signal)
    }
}

#[derive(Default)]
struct State {
    kill: Mutex<KillSlot>,
    child: Mutex<Option<AnyChild>>,
    fds: Mutex<Option<Fds>>,
}

impl State {
    fn killed_before_start(&self) -> bool {
        self.kill.lock().unwrap_or_else(|p| p.into_inner()).pending == Some(SIGKILL)
    }

    /// Arm the kill switch with the running command's handle.
    fn register(&self, child: &AnyChild) -> std::result::Result<(), Error> {
        let handle = child.kill_handle();
        let mut slot = self.kill.lock().unwrap_or_else(|p| p.into_inner());
        let pending = slot.pending.take();
        slot.handle = Some(handle.clone());
        drop(slot);
        match pending {
            Some(sig) => deliver(&handle, sig),
            None => Ok(()),
        }
    }
}

fn not_started() -> Error {
    Error::Io(std::io::Error::other(
        "the command was killed before it started",
    ))
}

/// One command's handle on the JS side.
#[napi]
#[derive(Default)]
pub struct Job {
    state: Arc<State>,
}

#[napi]
impl Job {
    #[napi(constructor)]
    pub fn new() -> Self {
        Job::default()
    }

    /// Send `signal` (default SIGKILL: the whole tree) now, or as soon as the
    /// command runs. Harmless once it has ended.
    #[napi]
    pub fn kill(&self, signal: Option<i32>) -> Result<()> {
        let sig = signal.unwrap_or(SIGKILL);
        if !(1..=64).contains(&sig) {
            return Err(policy_error(format!(
                "invalid signal {sig}: expected a number from 1 to 64"
            )));
        }
        let mut slot = self.state.kill.lock().unwrap_or_else(|p| p.into_inner());
        match &slot.handle {
            Some(h) => {
                let h = h.clone();
                drop(slot);
                deliver(&h, sig).map_err(to_napi)
            }
            None => {
                // SIGKILL is final: a later, milder signal does not undo it.
                if slot.pending != Some(SIGKILL) {
                    slot.pending = Some(sig);
                }
                Ok(())
            }
        }
    }

    /// The parent ends of the pipes made by `start` (once; ownership passes
    /// to the caller, which must adopt or close them).
    #[napi]
    pub fn take_fds(&self) -> Option<Fds> {
        self.state
            .fds
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
    }

    /// Wait for a started command to end.
    #[napi]
    pub fn wait<'env>(&self, env: &'env Env) -> Result<PromiseRaw<'env, ExitInfo>> {
        let state = self.state.clone();
        blocking(env, move || {
            let child = state.child.lock().unwrap_or_else(|p| p.into_inner()).take();
            let Some(mut child) = child else {
                return Err(to_napi(Error::Io(std::io::Error::other(
                    "the command is not running (not started, or waited for already)",
                ))));
            };
            child.wait().map_err(to_napi)
        })
    }
}

impl Job {
    pub(crate) fn run<'env>(
        &self,
        env: &'env Env,
        spawner: Spawner,
        argv: Vec<String>,
        opts: RunOptions,
        input: Option<Buffer>,
    ) -> Result<PromiseRaw<'env, RunOutput>> {
        let req = Request::new(argv, &opts)?;
        let cap = match opts.max_output {
            None => usize::MAX,
            Some(n) if n.is_finite() && n >= 0.0 && n.fract() == 0.0 => n as usize,
            Some(n) => {
                return Err(policy_error(format!(
                    "invalid maxOutput {n}: expected a whole number of bytes"
                )))
            }
        };
        let input: Option<Vec<u8>> = input.map(|b| b.to_vec());
        let state = self.state.clone();
        blocking(env, move || {
            if state.killed_before_start() {
                return Err(to_napi(not_started()));
            }
            let stdin = if input.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            };
            let child = spawn_any(spawner, req, [stdin, Stdio::piped(), Stdio::piped()])
                .map_err(to_napi)?;
            state.register(&child).map_err(to_napi)?;
            capture(child, input, cap).map_err(to_napi)
        })
    }

    pub(crate) fn start<'env>(
        &self,
        env: &'env Env,
        spawner: Spawner,
        argv: Vec<String>,
        opts: RunOptions,
    ) -> Result<PromiseRaw<'env, u32>> {
        let req = Request::new(argv, &opts)?;
        // Our ends stay owned until every option has been checked, so a bad
        // one leaks nothing.
        let (stdin, ours_in) = stream("stdin", &opts.stdin, true)?;
        let (stdout, ours_out) = stream("stdout", &opts.stdout, false)?;
        let (stderr, ours_err) = stream("stderr", &opts.stderr, false)?;
        let fds = Fds {
            stdin: ours_in.map(IntoRawFd::into_raw_fd),
            stdout: ours_out.map(IntoRawFd::into_raw_fd),
            stderr: ours_err.map(IntoRawFd::into_raw_fd),
        };
        *self.state.fds.lock().unwrap_or_else(|p| p.into_inner()) = Some(fds);
        let state = self.state.clone();
        blocking(env, move || {
            if state.killed_before_start() {
                return Err(to_napi(not_started()));
            }
            let child = spawn_any(spawner, req, [stdin, stdout, stderr]).map_err(to_napi)?;
            let pid = child.pid();
            state.register(&child).map_err(to_napi)?;
            *state.child.lock().unwrap_or_else(|p| p.into_inner()) = Some(child);
            Ok(pid)
        })
    }
}

enum Mode {
    Pipe,
    Ignore,
    Inherit,
}

impl Mode {
    fn stdio(self) -> Stdio {
        match self {
            Mode::Pipe => Stdio::piped(),
            Mode::Ignore => Stdio::null(),
            Mode::Inherit => Stdio::inherit(),
        }
    }
}

/// The sandbox's end of one stream, and ours when it is a pipe (we write
/// into stdin, read from stdout and stderr).
fn stream(name: &str, m: &Option<String>, we_write: bool) -> Result<(Stdio, Option<OwnedFd>)> {
    Ok(match mode(name, m)? {
        Mode::Pipe => {
            let (r, w) = std::io::pipe()?;
            let (r, w) = (OwnedFd::from(r), OwnedFd::from(w));
            let (theirs, ours) = if we_write { (r, w) } else { (w, r) };
            (Stdio::from(theirs), Some(ours))
        }
        m => (m.stdio(), None),
    })
}

fn mode(name: &str, m: &Option<String>) -> Result<Mode> {
    match m.as_deref() {
        None | Some("pipe") => Ok(Mode::Pipe),
        Some("ignore") => Ok(Mode::Ignore),
        Some("inherit") => Ok(Mode::Inherit),
        Some(other) => Err(policy_error(format!(
            "invalid {name} `{other}`: expected \"pipe\", \"ignore\" or \"inherit\""
        ))),
    }
}

/// Feed `input`, collect stdout and stderr (each capped at `cap` bytes) and
/// wait: the core's `communicate`, on this (blocking-pool) thread.
fn capture(
    child: AnyChild,
    input: Option<Vec<u8>>,
    cap: usize,
) -> std::result::Result<RunOutput, Error> {
    let input = input.unwrap_or_default();
    let out = match child {
        AnyChild::Plain(c) => c.communicate(&input, cap)?,
        AnyChild::Session(c) => c.communicate(&input, cap)?,
    };
    let info = ExitInfo::of(&out.status, &out.proxy_events);
    Ok(RunOutput {
        exit_code: info.exit_code,
        signal: info.signal,
        timed_out: info.timed_out,
        oom_killed: info.oom_killed,
        duration_ms: info.duration_ms,
        peak_memory: info.peak_memory,
        events_json: info.events_json,
        stdout: out.stdout.into(),
        stderr: out.stderr.into(),
        truncated: out.truncated,
    })
}
