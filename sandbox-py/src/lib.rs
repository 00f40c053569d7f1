//! `stockade._native`: the PyO3 wrapper behind `import stockade`.
//!
//! Thin on purpose: policies go through [`stockade::PolicyFile`] (the same
//! parsing and validation as the CLI and TOML files), running goes through
//! [`stockade::Sandbox`]. The only logic here is argument conversion, output
//! capture with an optional cap, and mapping errors onto Python exceptions.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::PathBuf;
use std::time::Duration;

use pyo3::create_exception;
use pyo3::exceptions::PyException;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict};

use stockade::{Error, Layer, PolicyFile, Stdio};

create_exception!(stockade, SandboxError, PyException, "Base class of every stockade error.");
create_exception!(stockade, PolicyError, SandboxError, "The policy is invalid; nothing was started.");
create_exception!(stockade, UnsupportedError, SandboxError, "The policy asks for something this host or build cannot enforce.");
create_exception!(stockade, HelperError, SandboxError, "The stockade-init helper is missing, not runnable, or from another version.");
create_exception!(stockade, SetupError, SandboxError, "A sandbox layer could not be set up; nothing ran (see `.layer`).");
create_exception!(stockade, NotFoundError, SandboxError, "The program does not exist inside the sandbox.");
create_exception!(stockade, NotExecutableError, SandboxError, "The program exists inside the sandbox but cannot be executed.");
create_exception!(stockade, SandboxIOError, SandboxError, "Talking to the sandbox failed.");

fn layer_name(l: Layer) -> &'static str {
    l.name()
}

/// Map a core error onto the Python exception hierarchy, keeping its message
/// and setting `.layer` (plus `.step`/`.errno` for setup failures).
fn to_py(e: Error) -> PyErr {
    let msg = e.to_string();
    let layer = layer_name(e.layer());
    let err = match &e {
        Error::Policy(_) => PolicyError::new_err(msg),
        Error::Unsupported { .. } => UnsupportedError::new_err(msg),
        Error::Helper(_) => HelperError::new_err(msg),
        Error::Setup(_) => SetupError::new_err(msg),
        Error::NotFound(_) => NotFoundError::new_err(msg),
        Error::NotExecutable { .. } => NotExecutableError::new_err(msg),
        _ => SandboxIOError::new_err(msg),
    };
    Python::with_gil(|py| {
        let v = err.value(py);
        let _ = v.setattr("layer", layer);
        if let Error::Setup(f) = &e {
            let _ = v.setattr("step", f.step.clone());
            let _ = v.setattr("errno", f.errno);
        }
    });
    err
}

fn json_to_py(py: Python<'_>, text: &str) -> PyResult<PyObject> {
    let json = py.import("json")?;
    Ok(json.call_method1("loads", (text,))?.unbind())
}

/// A sandbox policy. Construct once, `run` many times.
#[pyclass(module = "stockade", frozen)]
struct Sandbox {
    inner: stockade::Sandbox,
}

#[pymethods]
impl Sandbox {
    #[new]
    #[pyo3(signature = (*, net=None, ro=Vec::new(), rw=Vec::new(), overlay=Vec::new(),
        tmpfs=Vec::new(), allow_domain=Vec::new(), deny_domain=Vec::new(), memory=None,
        pids=None, cpu=None, timeout=None, env=None, pass_env=Vec::new(), cwd=None,
        hostname=None, uid=None, gid=None, tmp_size=None, syscalls_allow=Vec::new(),
        syscalls_deny=Vec::new(), loopback_tcp=None, allow_no_landlock=None))]
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
            if k.is_empty() || k.contains('=') {
                return Err(PolicyError::new_err(format!(
                    "invalid environment variable name `{k}`"
                )));
            }
            pf.env.push(format!("{k}={v}"));
        }
        let inner = pf.to_sandbox().map_err(to_py)?;
        Ok(Sandbox { inner })
    }

    /// Load a policy from a TOML file (the CLI's `--policy` format).
    #[staticmethod]
    fn from_toml(path: PathBuf) -> PyResult<Self> {
        let inner = stockade::Sandbox::from_toml(path).map_err(to_py)?;
        Ok(Sandbox { inner })
    }

    /// Run `argv` to completion and capture its output.
    ///
    /// `argv` is a list of strings, or a string with `shell=True` (run by
    /// `/bin/sh -c`). `input` is bytes/str fed to stdin (else /dev/null).
    /// `timeout` (seconds) overrides the policy's. `max_output` caps each of
    /// stdout and stderr in bytes; the rest is drained and dropped and
    /// `truncated` is set. The GIL is released while the command runs.
    #[pyo3(signature = (argv, *, cwd=None, input=None, timeout=None, shell=false, max_output=None))]
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
        let a = RunArgs::parse(argv, input, timeout, shell)?;
        let mut sb = self.inner.clone().command(a.argv);
        if let Some(c) = cwd {
            sb = sb.cwd(c);
        }
        if let Some(t) = a.timeout {
            sb = sb.timeout(t);
        }
        sb = sb
            .stdin(if a.input.is_some() { Stdio::piped() } else { Stdio::null() })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let cap = max_output.unwrap_or(usize::MAX);
        let input = a.input;
        let out = py.allow_threads(move || {
            let child = sb.spawn()?;
            run_captured(AnyChild::Plain(child), input, cap)
        });
        to_result(py, out.map_err(to_py)?)
    }

    /// Start a warm session with this policy: one sandbox, many commands.
    /// Use as a context manager (`with sb.session() as s: s.run([...])`).
    fn session(&self, py: Python<'_>) -> PyResult<Session> {
        let inner = self.inner.clone();
        let s = py.allow_threads(move || inner.session()).map_err(to_py)?;
        Ok(Session {
            inner: std::sync::RwLock::new(Some(std::sync::Arc::new(s))),
        })
    }

    fn __repr__(&self) -> String {
        format!("<stockade.Sandbox {:?}>", self.inner.limit_settings())
    }
}
struct RunArgs {
    argv: Vec<String>,
    input: Option<Vec<u8>>,
    timeout: Option<Duration>,
}

impl RunArgs {
    fn parse(
        argv: &Bound<'_, PyAny>,
        input: Option<&Bound<'_, PyAny>>,
        timeout: Option<f64>,
        shell: bool,
    ) -> PyResult<Self> {
        let argv: Vec<String> = if shell {
            let cmd: String = argv.extract().map_err(|_| {
                PolicyError::new_err("with shell=True, argv must be a single string")
            })?;
            vec!["/bin/sh".into(), "-c".into(), cmd]
        } else {
            if argv.is_instance_of::<pyo3::types::PyString>() {
                return Err(PolicyError::new_err(
                    "argv must be a list of strings (or pass shell=True to run a string)",
                ));
            }
            argv.extract()?
        };
        if argv.is_empty() {
            return Err(PolicyError::new_err("argv must not be empty"));
        }
        let input: Option<Vec<u8>> = match input {
            None => None,
            Some(o) => {
                if let Ok(s) = o.extract::<String>() {
                    Some(s.into_bytes())
                } else {
                    Some(o.extract::<Vec<u8>>()?)
                }
            }
        };
        let timeout = match timeout {
            None => None,
            Some(t) if t.is_finite() && t > 0.0 => Some(Duration::from_secs_f64(t)),
            Some(t) => {
                return Err(PolicyError::new_err(format!(
                    "invalid timeout {t}: expected seconds greater than 0"
                )))
            }
        };
        Ok(RunArgs { argv, input, timeout })
    }
}

enum AnyChild {
    Plain(stockade::Child),
    Session(stockade::SessionChild),
}

fn to_result(py: Python<'_>, out: Captured) -> PyResult<RunResult> {
    let events_json = serde_json::to_string(&out.events)
        .map_err(|e| SandboxIOError::new_err(e.to_string()))?;
    let mut output = out.stdout.clone();
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
        events: json_to_py(py, &events_json)?,
    })
}

/// A warm session: one sandbox whose init stays up; `run` starts each command
/// inside it. Close it (or leave the `with` block) to end every process.
#[pyclass(module = "stockade", frozen)]
struct Session {
    inner: std::sync::RwLock<Option<std::sync::Arc<stockade::Session>>>,
}

impl Session {
    fn get(&self) -> PyResult<std::sync::Arc<stockade::Session>> {
        self.inner
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
            .ok_or_else(|| SandboxIOError::new_err("the session is closed"))
    }
}

#[pymethods]
impl Session {
    /// Run `argv` in the session; same arguments and result as `Sandbox.run`
    /// (the session's policy applies; `timeout` is per command).
    #[pyo3(signature = (argv, *, cwd=None, input=None, timeout=None, shell=false, max_output=None))]
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
        let a = RunArgs::parse(argv, input, timeout, shell)?;
        let session = self.get()?;
        let cap = max_output.unwrap_or(usize::MAX);
        let out = py.allow_threads(move || {
            let mut cmd = session
                .command(a.argv)
                .stdin(if a.input.is_some() { Stdio::piped() } else { Stdio::null() })
                .stdout(Stdio::piped())
                .stderr(Stdio::piped());
            if let Some(c) = cwd {
                cmd = cmd.cwd(c);
            }
            if let Some(t) = a.timeout {
                cmd = cmd.timeout(t);
            }
            let child = cmd.spawn()?;
            run_captured(AnyChild::Session(child), a.input, cap)
        });
        to_result(py, out.map_err(to_py)?)
    }

    /// Host pid of the session's init.
    #[getter]
    fn pid(&self) -> PyResult<u32> {
        Ok(self.get()?.pid())
    }

    /// End the session and wait until every process is gone (idempotent).
    fn close(&self, py: Python<'_>) -> PyResult<()> {
        let taken = self.inner.write().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(arc) = taken {
            py.allow_threads(move || match std::sync::Arc::try_unwrap(arc) {
                Ok(s) => s.close().map_err(to_py),
                // Still in use by a running `run`: it ends when that drops it.
                Err(_) => Ok(()),
            })?;
        }
        Ok(())
    }

    fn __enter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    #[pyo3(signature = (*_args))]
    fn __exit__(&self, py: Python<'_>, _args: &Bound<'_, pyo3::types::PyTuple>) -> PyResult<bool> {
        self.close(py)?;
        Ok(false)
    }
}

struct Captured {
    status: stockade::ExitStatus,
    stdout: Vec<u8>,
    stderr: Vec<u8>,
    truncated: bool,
    events: Vec<stockade::proxy::ProxyEvent>,
}

/// Read a pipe to its end, keeping at most `cap` bytes.
fn drain(mut r: impl Read, cap: usize) -> (Vec<u8>, bool) {
    let mut kept = Vec::new();
    let mut truncated = false;
    let mut buf = [0u8; 64 * 1024];
    loop {
        match r.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                let room = cap.saturating_sub(kept.len());
                if n > room {
                    truncated = true;
                }
                kept.extend_from_slice(&buf[..n.min(room)]);
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => break,
        }
    }
    (kept, truncated)
}

fn run_captured(
    mut child: AnyChild,
    input: Option<Vec<u8>>,
    cap: usize,
) -> Result<Captured, Error> {
    let (stdin, stdout, stderr) = match &mut child {
        AnyChild::Plain(c) => (c.stdin.take(), c.stdout.take(), c.stderr.take()),
        AnyChild::Session(c) => (c.stdin.take(), c.stdout.take(), c.stderr.take()),
    };
    let writer = std::thread::spawn(move || {
        if let (Some(mut w), Some(data)) = (stdin, input) {
            // A command that exits without reading its input is not an error.
            let _ = w.write_all(&data);
        }
    });
    let err_reader = std::thread::spawn(move || match stderr {
        Some(r) => drain(r, cap),
        None => (Vec::new(), false),
    });
    let (out, t1) = match stdout {
        Some(r) => drain(r, cap),
        None => (Vec::new(), false),
    };
    let (err, t2) = err_reader.join().unwrap_or_default();
    let _ = writer.join();
    let (status, events) = match &mut child {
        AnyChild::Plain(c) => (c.wait()?, c.proxy_events()),
        AnyChild::Session(c) => (c.wait()?, c.proxy_events()),
    };
    Ok(Captured {
        status,
        stdout: out,
        stderr: err,
        truncated: t1 || t2,
        events,
    })
}

/// The outcome of `Sandbox.run`.
#[pyclass(module = "stockade", frozen, get_all)]
struct RunResult {
    /// The program's exit code; 128+N when killed by signal N; 124 on timeout.
    exit_code: i32,
    /// The signal that killed the program, if any.
    signal: Option<i32>,
    /// Captured stdout (bytes).
    stdout: Py<PyBytes>,
    /// Captured stderr (bytes).
    stderr: Py<PyBytes>,
    /// stdout followed by stderr (NOT interleaved in time order).
    output: Py<PyBytes>,
    /// Whether the timeout fired and the whole tree was killed.
    timed_out: bool,
    /// Whether the OOM killer fired (None when no memory cgroup was used).
    oom_killed: Option<bool>,
    /// Whether stdout or stderr was cut at `max_output`.
    truncated: bool,
    /// Wall-clock seconds from spawn to the end of the whole tree.
    duration: f64,
    /// Peak memory in bytes (None without limits).
    peak_memory: Option<u64>,
    /// Egress proxy events (list of dicts), empty with net="none".
    events: PyObject,
}

#[pymethods]
impl RunResult {
    fn __repr__(&self) -> String {
        format!(
            "<stockade.Result exit_code={} timed_out={} truncated={} duration={:.3}>",
            self.exit_code,
            if self.timed_out { "True" } else { "False" },
            if self.truncated { "True" } else { "False" },
            self.duration
        )
    }
}

/// Check every layer on this host; returns the core's structured report as a dict.
#[pyfunction]
fn doctor(py: Python<'_>) -> PyResult<PyObject> {
    let report = py.allow_threads(stockade::doctor);
    let text =
        serde_json::to_string(&report).map_err(|e| SandboxIOError::new_err(e.to_string()))?;
    let obj = json_to_py(py, &text)?;
    if let Ok(d) = obj.downcast_bound::<PyDict>(py) {
        d.set_item("ok", report.ok())?;
    }
    Ok(obj)
}

/// Set the process-wide `stockade-init` helper path (first call wins).
#[pyfunction]
fn set_helper_path(path: PathBuf) -> bool {
    stockade::set_helper_path(path)
}

#[pymodule(gil_used = false)]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add_class::<Sandbox>()?;
    m.add_class::<RunResult>()?;
    m.add_class::<Session>()?;
    m.add_function(wrap_pyfunction!(doctor, m)?)?;
    m.add_function(wrap_pyfunction!(set_helper_path, m)?)?;
    m.add("SandboxError", py.get_type::<SandboxError>())?;
    m.add("PolicyError", py.get_type::<PolicyError>())?;
    m.add("UnsupportedError", py.get_type::<UnsupportedError>())?;
    m.add("HelperError", py.get_type::<HelperError>())?;
    m.add("SetupError", py.get_type::<SetupError>())?;
    m.add("NotFoundError", py.get_type::<NotFoundError>())?;
    m.add("NotExecutableError", py.get_type::<NotExecutableError>())?;
    m.add("SandboxIOError", py.get_type::<SandboxIOError>())?;
    Ok(())
}
