//! `spawn`: a command running in the background, driven from Python like
//! `subprocess.Popen` (the Python class `stockade.Process` wraps this one).

use std::os::fd::{IntoRawFd, OwnedFd};
use std::sync::{Mutex, OnceLock, TryLockError};
use std::time::Duration;

use pyo3::prelude::*;

use stockade::{ExitStatus, KillHandle};

use crate::child::{events_to_py, AnyChild};
use crate::errors::{bad_argument, to_py};

/// How a spawned command ended: (exit_code, signal, timed_out, duration).
type Status = (i32, Option<i32>, bool, f64);

fn status_tuple(s: &ExitStatus) -> Status {
    (
        s.exit_code(),
        s.signal(),
        s.timed_out(),
        s.duration().as_secs_f64(),
    )
}

#[pyclass(module = "stockade._native", name = "Process", frozen)]
pub struct Process {
    /// Held while one thread waits; `poll` only tries it.
    child: Mutex<AnyChild>,
    handle: KillHandle,
    pid: u32,
    status: OnceLock<ExitStatus>,
    pipes: Mutex<[Option<OwnedFd>; 3]>,
}

impl Process {
    pub fn new(mut child: AnyChild) -> Self {
        let (i, o, e) = child.take_pipes();
        Process {
            handle: child.kill_handle(),
            pid: child.pid(),
            child: Mutex::new(child),
            status: OnceLock::new(),
            pipes: Mutex::new([i.map(Into::into), o.map(Into::into), e.map(Into::into)]),
        }
    }

    fn record(&self, s: Option<ExitStatus>) -> Option<Status> {
        s.map(|s| status_tuple(self.status.get_or_init(|| s)))
    }
}

#[pymethods]
impl Process {
    /// Host pid of the sandbox's init, or, in a session, the command's pid
    /// inside the sandbox.
    #[getter]
    fn pid(&self) -> u32 {
        self.pid
    }

    /// Hand the pipe descriptors (stdin, stdout, stderr; None where not
    /// piped) to Python, once. The caller owns them from then on.
    fn take_pipes(&self) -> (Option<i32>, Option<i32>, Option<i32>) {
        let mut p = self.pipes.lock().unwrap_or_else(|e| e.into_inner());
        let [i, o, e] = std::mem::take(&mut *p);
        (
            i.map(IntoRawFd::into_raw_fd),
            o.map(IntoRawFd::into_raw_fd),
            e.map(IntoRawFd::into_raw_fd),
        )
    }

    /// Wait for the end (at most `timeout` seconds); None if still running.
    /// The GIL is released while waiting.
    #[pyo3(signature = (timeout=None))]
    fn wait(&self, py: Python<'_>, timeout: Option<f64>) -> PyResult<Option<Status>> {
        if let Some(s) = self.status.get() {
            return Ok(Some(status_tuple(s)));
        }
        let limit = match timeout {
            None => None,
            Some(t) if t.is_finite() && t >= 0.0 => Some(Duration::from_secs_f64(t)),
            Some(t) => return Err(bad_argument(format!("invalid timeout {t}"))),
        };
        let got = py.allow_threads(|| {
            let mut c = self.child.lock().unwrap_or_else(|e| e.into_inner());
            match limit {
                None => c.wait().map(Some),
                Some(t) => c.wait_timeout(t),
            }
        });
        Ok(self.record(got.map_err(to_py)?))
    }

    /// The status if the command has ended, without blocking.
    fn poll(&self) -> PyResult<Option<Status>> {
        if let Some(s) = self.status.get() {
            return Ok(Some(status_tuple(s)));
        }
        let got = match self.child.try_lock() {
            Ok(mut c) => c.try_wait(),
            Err(TryLockError::Poisoned(p)) => p.into_inner().try_wait(),
            // Another thread is waiting: it will record the status.
            Err(TryLockError::WouldBlock) => Ok(None),
        };
        Ok(self.record(got.map_err(to_py)?))
    }

    /// SIGKILL the whole tree (a session command: its process groups).
    fn kill(&self) -> PyResult<()> {
        if self.status.get().is_some() {
            return Ok(());
        }
        self.handle.kill().map_err(to_py)
    }

    /// Send `signal` to the command's processes.
    fn send_signal(&self, signal: i32) -> PyResult<()> {
        if self.status.get().is_some() {
            return Ok(());
        }
        self.handle.signal(signal).map_err(to_py)
    }

    /// The egress proxy's decisions so far (list of dicts).
    fn events(&self, py: Python<'_>) -> PyResult<PyObject> {
        let events = match self.child.try_lock() {
            Ok(c) => c.proxy_events(),
            Err(TryLockError::Poisoned(p)) => p.into_inner().proxy_events(),
            Err(TryLockError::WouldBlock) => Vec::new(),
        };
        events_to_py(py, &events)
    }
}
