//! `Session` (native half): one warm sandbox whose init stays up, running
//! many commands.

use std::path::PathBuf;
use std::sync::{Arc, RwLock};

use pyo3::prelude::*;

use crate::child::RunResult;
use crate::errors::{to_py, SandboxIOError};
use crate::job::Job;
use crate::launch::Target;
use crate::process::Process;
use crate::sandbox::{run_on, spawn_on, start_on};

#[pyclass(module = "stockade._native", frozen)]
pub struct Session {
    inner: RwLock<Option<Arc<stockade::Session>>>,
}

impl Session {
    pub fn new(s: Arc<stockade::Session>) -> Self {
        Session {
            inner: RwLock::new(Some(s)),
        }
    }

    fn session(&self) -> PyResult<Arc<stockade::Session>> {
        self.inner
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
            .ok_or_else(|| SandboxIOError::new_err("the session is closed"))
    }

    fn target(&self) -> PyResult<Target> {
        self.session().map(Target::Session)
    }
}

#[pymethods]
impl Session {
    #[pyo3(signature = (argv, *, cwd=None, input=None, timeout=None, shell=false, max_output=None))]
    #[allow(clippy::too_many_arguments)]
    fn run(
        &self,
        py: Python<'_>,
        argv: &Bound<'_, PyAny>,
        cwd: Option<PathBuf>,
        input: Option<&Bound<'_, PyAny>>,
        timeout: Option<f64>,
        shell: bool,
        max_output: Option<usize>,
    ) -> PyResult<RunResult> {
        run_on(
            py,
            self.target()?,
            argv,
            cwd,
            input,
            timeout,
            shell,
            max_output,
        )
    }

    #[pyo3(signature = (argv, done, *, cwd=None, input=None, timeout=None, shell=false, max_output=None))]
    #[allow(clippy::too_many_arguments)]
    fn start(
        &self,
        argv: &Bound<'_, PyAny>,
        done: PyObject,
        cwd: Option<PathBuf>,
        input: Option<&Bound<'_, PyAny>>,
        timeout: Option<f64>,
        shell: bool,
        max_output: Option<usize>,
    ) -> PyResult<Job> {
        start_on(
            self.target()?,
            argv,
            done,
            cwd,
            input,
            timeout,
            shell,
            max_output,
        )
    }

    #[pyo3(signature = (argv, *, stdin=None, stdout=None, stderr=None, cwd=None, timeout=None, shell=false))]
    #[allow(clippy::too_many_arguments)]
    fn spawn(
        &self,
        py: Python<'_>,
        argv: &Bound<'_, PyAny>,
        stdin: Option<&Bound<'_, PyAny>>,
        stdout: Option<&Bound<'_, PyAny>>,
        stderr: Option<&Bound<'_, PyAny>>,
        cwd: Option<PathBuf>,
        timeout: Option<f64>,
        shell: bool,
    ) -> PyResult<Process> {
        spawn_on(
            py,
            self.target()?,
            argv,
            [stdin, stdout, stderr],
            cwd,
            timeout,
            shell,
        )
    }

    /// Host pid of the session's init.
    #[getter]
    fn pid(&self) -> PyResult<u32> {
        Ok(self.session()?.pid())
    }

    /// Whether `close` has been called.
    #[getter]
    fn closed(&self) -> bool {
        self.inner
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .is_none()
    }

    /// End the session and wait until every process is gone (idempotent).
    /// Commands still running are killed. If another thread is inside a
    /// call on this session, the end comes when that call returns.
    fn close(&self, py: Python<'_>) -> PyResult<()> {
        let taken = self.inner.write().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(arc) = taken {
            py.allow_threads(move || match Arc::try_unwrap(arc) {
                Ok(s) => s.close().map_err(to_py),
                Err(_) => Ok(()),
            })?;
        }
        Ok(())
    }
}
