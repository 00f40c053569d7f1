//! One running command, whether a sandbox of its own or a command of a
//! session, and collecting its output with a cap.

use std::time::Duration;

use pyo3::prelude::*;
use pyo3::types::PyBytes;

use stockade::proxy::ProxyEvent;
use stockade::{ChildStderr, ChildStdin, ChildStdout, Error, ExitStatus, KillHandle, Output};

pub enum AnyChild {
    Plain(Box<stockade::Child>),
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

/// Feed `input`, collect stdout and stderr (each capped at `cap` bytes) and
/// wait: the core's `communicate`. Blocks: call it without the GIL.
pub fn run_captured(child: AnyChild, input: Option<Vec<u8>>, cap: usize) -> Result<Output, Error> {
    let input = input.unwrap_or_default();
    match child {
        AnyChild::Plain(c) => c.communicate(&input, cap),
        AnyChild::Session(c) => c.communicate(&input, cap),
    }
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

pub fn to_result(py: Python<'_>, out: Output) -> PyResult<RunResult> {
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
        events: if out.proxy_events.is_empty() {
            pyo3::types::PyList::empty(py).into_any().unbind()
        } else {
            events_to_py(py, &out.proxy_events)?
        },
    })
}
