//! One running command, whether a sandbox of its own or a command of a
//! session, and collecting its output with a cap.

use std::io::{Read, Write};

use std::time::Duration;

use pyo3::prelude::*;
use pyo3::types::PyBytes;

use stockade::proxy::ProxyEvent;
use stockade::{ChildStderr, ChildStdin, ChildStdout, Error, ExitStatus, KillHandle};

pub enum AnyChild {
    Plain(stockade::Child),
    Session(stockade::SessionChild),
}

impl AnyChild {
    pub fn pid(&self) -> u32 {
        match self {
            AnyChild::Plain(c) => c.pid(),
            AnyChild::Session(c) => c.pid(),
        }
    }

    pub fn kill_handle(&self) -> KillHandle {
        match self {
            AnyChild::Plain(c) => c.kill_handle(),
            AnyChild::Session(c) => c.kill_handle(),
        }
    }

    pub fn take_pipes(&mut self) -> (Option<ChildStdin>, Option<ChildStdout>, Option<ChildStderr>) {
        match self {
            AnyChild::Plain(c) => (c.stdin.take(), c.stdout.take(), c.stderr.take()),
            AnyChild::Session(c) => (c.stdin.take(), c.stdout.take(), c.stderr.take()),
        }
    }

    pub fn wait(&mut self) -> Result<ExitStatus, Error> {
        match self {
            AnyChild::Plain(c) => c.wait(),
            AnyChild::Session(c) => c.wait(),
        }
    }

    pub fn wait_timeout(&mut self, t: Duration) -> Result<Option<ExitStatus>, Error> {
        match self {
            AnyChild::Plain(c) => c.wait_timeout(t),
            AnyChild::Session(c) => c.wait_timeout(t),
        }
    }

    pub fn try_wait(&mut self) -> Result<Option<ExitStatus>, Error> {
        match self {
            AnyChild::Plain(c) => c.try_wait(),
            AnyChild::Session(c) => c.try_wait(),
        }
    }

    pub fn proxy_events(&self) -> Vec<ProxyEvent> {
        match self {
            AnyChild::Plain(c) => c.proxy_events(),
            AnyChild::Session(c) => c.proxy_events(),
        }
    }
}

/// What a finished run produced, before conversion to Python objects.
pub struct Captured {
    pub status: ExitStatus,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    pub truncated: bool,
    pub events: Vec<ProxyEvent>,
}

/// The most read from a pipe once a session command's leader has ended: a
/// background process it left may hold the pipe open and write on.
const AFTER_END_CAP: usize = 1 << 20;

/// One stream being collected, keeping at most `cap` bytes (the rest is read
/// and dropped, so the command never blocks on a full pipe).
struct Sink {
    pipe: Option<std::fs::File>,
    kept: Vec<u8>,
    truncated: bool,
}

impl Sink {
    fn new(pipe: Option<std::fs::File>) -> Self {
        Sink {
            pipe,
            kept: Vec::new(),
            truncated: false,
        }
    }

    /// Read once; false at end of file (or when nothing is there to read
    /// on a non-blocking pipe).
    fn read_once(&mut self, cap: usize, buf: &mut [u8]) -> bool {
        let Some(p) = self.pipe.as_mut() else {
            return false;
        };
        loop {
            match p.read(buf) {
                Ok(0) => return false,
                Ok(n) => {
                    let room = cap.saturating_sub(self.kept.len());
                    self.truncated |= n > room;
                    self.kept.extend_from_slice(&buf[..n.min(room)]);
                    return true;
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(_) => return false,
            }
        }
    }
}

/// Collect stdout and stderr in this thread until both end, or, for a
/// session command, until its leader has ended (what it left behind may
/// keep the pipes open; what is already in them is still read).
fn collect(child: &mut AnyChild, sinks: &mut [Sink; 2], cap: usize) -> Result<(), Error> {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    use std::os::fd::AsFd;

    let session = matches!(child, AnyChild::Session(_));
    let mut buf = vec![0u8; 64 * 1024];
    while sinks.iter().any(|s| s.pipe.is_some()) {
        let ready: Vec<bool> = {
            let mut fds: Vec<PollFd<'_>> = sinks
                .iter()
                .filter_map(|s| s.pipe.as_ref())
                .map(|p| PollFd::new(p.as_fd(), PollFlags::POLLIN))
                .collect();
            let timeout = if session {
                PollTimeout::from(20u16)
            } else {
                PollTimeout::NONE
            };
            match poll(&mut fds, timeout) {
                Ok(_) | Err(nix::errno::Errno::EINTR) => {}
                Err(e) => return Err(std::io::Error::from(e).into()),
            }
            fds.iter()
                .map(|f| f.revents().is_some_and(|r| !r.is_empty()))
                .collect()
        };
        let mut k = 0;
        for s in sinks.iter_mut() {
            if s.pipe.is_some() {
                if ready[k] && !s.read_once(cap, &mut buf) {
                    s.pipe = None;
                }
                k += 1;
            }
        }
        if session && sinks.iter().any(|s| s.pipe.is_some()) && child.try_wait()?.is_some() {
            for s in sinks.iter_mut() {
                if let Some(p) = &s.pipe {
                    nix::fcntl::fcntl(
                        p,
                        nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK),
                    )
                    .map_err(std::io::Error::from)?;
                    let start = s.kept.len();
                    while s.kept.len() - start < AFTER_END_CAP && s.read_once(cap, &mut buf) {}
                }
                s.pipe = None;
            }
        }
    }
    Ok(())
}

/// Feed `input`, collect stdout and stderr (each capped at `cap` bytes) and
/// wait for the end. Blocks: call it without the GIL.
pub fn run_captured(
    mut child: AnyChild,
    input: Option<Vec<u8>>,
    cap: usize,
) -> Result<Captured, Error> {
    let (stdin, stdout, stderr) = child.take_pipes();
    // Only input needs a second thread (a full stdin pipe while we wait for
    // output would deadlock); drop stdin at once otherwise.
    let writer = match (stdin, input) {
        (Some(mut w), Some(data)) => Some(std::thread::spawn(move || {
            // A command that exits without reading its input is not an error.
            let _ = w.write_all(&data);
        })),
        _ => None,
    };
    let mut sinks = [
        Sink::new(stdout.map(|p| std::fs::File::from(std::os::fd::OwnedFd::from(p)))),
        Sink::new(stderr.map(|p| std::fs::File::from(std::os::fd::OwnedFd::from(p)))),
    ];
    let collected = collect(&mut child, &mut sinks, cap);
    // Not joined: a process left behind by a session command may hold stdin
    // without reading; the writer then ends with the session.
    drop(writer);
    collected?;
    let status = child.wait()?;
    let [out, err] = sinks;
    Ok(Captured {
        status,
        truncated: out.truncated || err.truncated,
        stdout: out.kept,
        stderr: err.kept,
        events: child.proxy_events(),
    })
}

/// The outcome of `run`: how the command ended and what it wrote.
#[pyclass(module = "stockade", name = "Result", frozen, get_all)]
pub struct RunResult {
    /// The program's exit code; 128+N when killed by signal N; 124 on timeout.
    exit_code: i32,
    /// The signal that killed the program, if any.
    signal: Option<i32>,
    /// Captured stdout (bytes).
    stdout: Py<PyBytes>,
    /// Captured stderr (bytes).
    stderr: Py<PyBytes>,
    /// stdout followed by stderr (not interleaved in time order).
    output: Py<PyBytes>,
    /// Whether the timeout fired and the whole tree was killed.
    timed_out: bool,
    /// Whether the OOM killer fired (None when no memory cgroup was used).
    oom_killed: Option<bool>,
    /// Whether stdout or stderr was cut at `max_output`.
    truncated: bool,
    /// Wall-clock seconds from spawn to the end of the whole tree.
    duration: f64,
    /// Peak memory in bytes (None without a memory cgroup).
    peak_memory: Option<u64>,
    /// The egress proxy's decisions (a list of dicts); empty with net="none".
    events: PyObject,
}

#[pymethods]
impl RunResult {
    /// Whether the command exited 0 and did not time out.
    #[getter]
    fn ok(&self) -> bool {
        self.exit_code == 0 && !self.timed_out
    }

    fn __repr__(&self) -> String {
        let b = |v: bool| if v { "True" } else { "False" };
        format!(
            "<stockade.Result exit_code={} timed_out={} truncated={} duration={:.3}>",
            self.exit_code,
            b(self.timed_out),
            b(self.truncated),
            self.duration
        )
    }
}

pub fn events_to_py(py: Python<'_>, events: &[ProxyEvent]) -> PyResult<PyObject> {
    let text = serde_json::to_string(events)
        .map_err(|e| crate::errors::SandboxIOError::new_err(e.to_string()))?;
    json_to_py(py, &text)
}

pub fn json_to_py(py: Python<'_>, text: &str) -> PyResult<PyObject> {
    let json = py.import("json")?;
    Ok(json.call_method1("loads", (text,))?.unbind())
}

pub fn to_result(py: Python<'_>, out: Captured) -> PyResult<RunResult> {
    let mut output = Vec::with_capacity(out.stdout.len() + out.stderr.len());
    output.extend_from_slice(&out.stdout);
    output.extend_from_slice(&out.stderr);
    Ok(RunResult {
        exit_code: out.status.exit_code(),
        signal: out.status.signal(),
        stdout: PyBytes::new(py, &out.stdout).unbind(),
        stderr: PyBytes::new(py, &out.stderr).unbind(),
        output: PyBytes::new(py, &output).unbind(),
        timed_out: out.status.timed_out(),
        oom_killed: out.status.oom_killed(),
        truncated: out.truncated,
        duration: out.status.duration().as_secs_f64(),
        peak_memory: out.status.peak_memory(),
        events: if out.events.is_empty() {
            pyo3::types::PyList::empty(py).into_any().unbind()
        } else {
            events_to_py(py, &out.events)?
        },
    })
}
