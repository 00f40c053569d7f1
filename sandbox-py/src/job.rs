//! A run on a thread of its own that reports to a Python callback: the base
//! of `run_async`, which must never block the event loop and must be able
//! to kill the sandboxed tree when the awaiting task is cancelled.

use std::sync::{Arc, Mutex};

use pyo3::prelude::*;

use stockade::KillHandle;

use crate::child::{run_captured, to_result};
use crate::errors::to_py;
use crate::launch::{Call, Target};

#[derive(Default)]
struct State {
    /// Set once the command has started.
    handle: Option<KillHandle>,
    /// `kill` was called (perhaps before the command started).
    killed: bool,
}

/// A run in progress; `kill()` ends its whole tree, even before it started.
#[pyclass(module = "stockade._native", frozen)]
pub struct Job {
    state: Arc<Mutex<State>>,
}

#[pymethods]
impl Job {
    /// SIGKILL everything the run started (a no-op once it has ended).
    fn kill(&self) -> PyResult<()> {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        s.killed = true;
        if let Some(h) = &s.handle {
            h.kill().map_err(to_py)?;
        }
        Ok(())
    }
}

/// Start `call` on a new thread. When it ends, `done(result, None)` or
/// `done(None, exception)` is called with the GIL held, on that thread.
pub fn start(
    target: Target,
    call: Call,
    input: Option<Vec<u8>>,
    cap: usize,
    done: PyObject,
) -> PyResult<Job> {
    let state = Arc::new(Mutex::new(State::default()));
    let shared = Arc::clone(&state);
    std::thread::Builder::new()
        .name("stockade-run".into())
        .spawn(move || {
            let out = target.launch(call).and_then(|child| {
                {
                    let mut s = shared.lock().unwrap_or_else(|e| e.into_inner());
                    let handle = child.kill_handle();
                    if s.killed {
                        // Cancelled while the sandbox was being built.
                        let _ = handle.kill();
                    }
                    s.handle = Some(handle);
                }
                run_captured(child, input, cap)
            });
            Python::with_gil(|py| {
                let args = match out {
                    Ok(captured) => match to_result(py, captured) {
                        Ok(r) => (Some(r), None),
                        Err(e) => (None, Some(e.into_value(py))),
                    },
                    Err(e) => (None, Some(to_py(e).into_value(py))),
                };
                if let Err(e) = done.call1(py, args) {
                    e.write_unraisable(py, Some(done.bind(py)));
                }
            });
        })
        .map_err(|e| crate::errors::SandboxIOError::new_err(format!("starting a thread: {e}")))?;
    Ok(Job { state })
}
