//! `Sandbox` (native half): a validated policy, and the run, start and
//! spawn calls shared with sessions.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use pyo3::prelude::*;

use stockade::{PolicyFile, Stdio};

use crate::args::{parse_argv, parse_stdio, parse_timeout, RunArgs};
use crate::child::{run_captured, to_result, RunResult};
use crate::errors::{bad_argument, to_py};
use crate::job::{self, Job};
use crate::launch::{Call, Target};
use crate::process::Process;
use crate::session::Session;

/// A sandbox policy. Build once, run many commands; each gets a fresh sandbox.
#[pyclass(module = "stockade._native", frozen)]
pub struct Sandbox {
    inner: stockade::Sandbox,
}

#[pymethods]
impl Sandbox {
    #[new]
    #[pyo3(signature = (*, net=None, ro=Vec::new(), rw=Vec::new(), overlay=Vec::new(),
        tmpfs=Vec::new(), allow_domain=Vec::new(), deny_domain=Vec::new(), memory=None,
        pids=None, cpu=None, timeout=None, env=None, pass_env=Vec::new(), cwd=None,
        hostname=None, uid=None, gid=None, tmp_size=None, syscalls_allow=Vec::new(),
        syscalls_deny=Vec::new(), loopback_tcp=None, allow_no_landlock=None,
        allow_private=Vec::new(), resolve=Vec::new()))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        net: Option<String>,
        ro: Vec<String>,
        rw: Vec<String>,
        overlay: Vec<String>,
        tmpfs: Vec<String>,
        allow_domain: Vec<String>,
        deny_domain: Vec<String>,
        memory: Option<String>,
        pids: Option<u64>,
        cpu: Option<f64>,
        timeout: Option<f64>,
        env: Option<BTreeMap<String, String>>,
        pass_env: Vec<String>,
        cwd: Option<PathBuf>,
        hostname: Option<String>,
        uid: Option<u32>,
        gid: Option<u32>,
        tmp_size: Option<String>,
        syscalls_allow: Vec<String>,
        syscalls_deny: Vec<String>,
        loopback_tcp: Option<bool>,
        allow_no_landlock: Option<bool>,
        allow_private: Vec<String>,
        resolve: Vec<String>,
    ) -> PyResult<Self> {
        let mut pf = PolicyFile {
            ro,
            rw,
            overlay,
            tmpfs,
            cwd,
            net,
            allow_domain,
            deny_domain,
            allow_private,
            resolve,
            memory,
            pids,
            cpu,
            timeout,
            pass_env,
            hostname,
            uid,
            gid,
            tmp_size,
            syscalls_allow,
            syscalls_deny,
            loopback_tcp,
            allow_no_landlock,
            ..PolicyFile::default()
        };
        for (k, v) in env.unwrap_or_default() {
            if k.is_empty() || k.contains('=') || k.contains('\0') {
                return Err(bad_argument(format!(
                    "invalid environment variable name `{k}`"
                )));
            }
            pf.env.push(format!("{k}={v}"));
        }
        let inner = pf.to_sandbox().map_err(to_py)?;
        inner.validate().map_err(to_py)?;
        Ok(Sandbox { inner })
    }

    /// Load a policy from a TOML file (the CLI's `--policy` format).
    #[staticmethod]
    fn from_toml(path: PathBuf) -> PyResult<Self> {
        let inner = stockade::Sandbox::from_toml(path).map_err(to_py)?;
        inner.validate().map_err(to_py)?;
        Ok(Sandbox { inner })
    }

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
            self.target(),
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
            self.target(),
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
            self.target(),
            argv,
            [stdin, stdout, stderr],
            cwd,
            timeout,
            shell,
        )
    }

    /// Start a warm session with this policy (blocks for the setup; the GIL
    /// is released).
    fn session(&self, py: Python<'_>) -> PyResult<Session> {
        let inner = self.inner.clone();
        let s = py.allow_threads(move || inner.session()).map_err(to_py)?;
        Ok(Session::new(Arc::new(s)))
    }

    /// Keep one sandbox for this policy pre-built in the background, so the
    /// next run skips the helper's start and the namespace creation.
    fn prewarm(&self, py: Python<'_>) -> PyResult<()> {
        py.allow_threads(|| self.inner.prewarm()).map_err(to_py)
    }

    fn __repr__(&self) -> String {
        format!("<stockade.Sandbox {:?}>", self.inner.limit_settings())
    }
}

impl Sandbox {
    fn target(&self) -> Target {
        Target::Sandbox(Box::new(self.inner.clone()))
    }
}

/// The call `run` and `start` make, and the input to feed it: stdin is a
/// pipe only when there is input (else /dev/null); output is piped.
fn run_call(
    argv: &Bound<'_, PyAny>,
    cwd: Option<PathBuf>,
    input: Option<&Bound<'_, PyAny>>,
    timeout: Option<f64>,
    shell: bool,
) -> PyResult<(Call, Option<Vec<u8>>)> {
    let a = RunArgs::parse(argv, input, timeout, shell)?;
    let stdin = if a.input.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    };
    let call = Call {
        argv: a.argv,
        cwd,
        timeout: a.timeout,
        stdio: [stdin, Stdio::piped(), Stdio::piped()],
    };
    Ok((call, a.input))
}

/// `run` for a sandbox or a session: start, feed, capture, wait, without
/// the GIL.
#[allow(clippy::too_many_arguments)]
pub fn run_on(
    py: Python<'_>,
    target: Target,
    argv: &Bound<'_, PyAny>,
    cwd: Option<PathBuf>,
    input: Option<&Bound<'_, PyAny>>,
    timeout: Option<f64>,
    shell: bool,
    max_output: Option<usize>,
) -> PyResult<RunResult> {
    let (call, input) = run_call(argv, cwd, input, timeout, shell)?;
    let cap = max_output.unwrap_or(usize::MAX);
    let out = py.allow_threads(move || {
        let child = target.launch(call)?;
        run_captured(child, input, cap)
    });
    to_result(py, out.map_err(to_py)?)
}

/// `start` (the base of `run_async`) for a sandbox or a session.
#[allow(clippy::too_many_arguments)]
pub fn start_on(
    target: Target,
    argv: &Bound<'_, PyAny>,
    done: PyObject,
    cwd: Option<PathBuf>,
    input: Option<&Bound<'_, PyAny>>,
    timeout: Option<f64>,
    shell: bool,
    max_output: Option<usize>,
) -> PyResult<Job> {
    let (call, input) = run_call(argv, cwd, input, timeout, shell)?;
    job::start(target, call, input, max_output.unwrap_or(usize::MAX), done)
}

/// `spawn` for a sandbox or a session.
pub fn spawn_on(
    py: Python<'_>,
    target: Target,
    argv: &Bound<'_, PyAny>,
    stdio: [Option<&Bound<'_, PyAny>>; 3],
    cwd: Option<PathBuf>,
    timeout: Option<f64>,
    shell: bool,
) -> PyResult<Process> {
    let call = Call {
        argv: parse_argv(argv, shell)?,
        cwd,
        timeout: parse_timeout(timeout)?,
        stdio: [
            parse_stdio("stdin", stdio[0])?,
            parse_stdio("stdout", stdio[1])?,
            parse_stdio("stderr", stdio[2])?,
        ],
    };
    let child = py
        .allow_threads(move || target.launch(call))
        .map_err(to_py)?;
    Ok(Process::new(child))
}
