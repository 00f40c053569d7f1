//! `stockade._native`: the PyO3 half of `import stockade`.
//!
//! Thin on purpose: policies go through [`stockade::PolicyFile`] (the same
//! parsing and validation as the CLI and TOML files), running goes through
//! [`stockade::Sandbox`] and [`stockade::Session`]. This crate converts
//! arguments, captures output with an optional cap, runs calls on threads
//! for asyncio, and maps errors onto exceptions. The Pythonic surface
//! (`Process`, `run_async`, context managers) is in `python/stockade/`.

mod args;
mod child;
mod errors;
mod job;
mod launch;
mod process;
mod sandbox;
mod session;

use std::path::PathBuf;

use pyo3::prelude::*;
use pyo3::types::PyDict;

/// Check every layer on this host; the core's structured report as a dict
/// (plus `"ok"`).
#[pyfunction]
fn doctor(py: Python<'_>) -> PyResult<PyObject> {
    let report = py.allow_threads(stockade::doctor);
    let text = serde_json::to_string(&report)
        .map_err(|e| errors::SandboxIOError::new_err(e.to_string()))?;
    let obj = child::json_to_py(py, &text)?;
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
    m.add_class::<sandbox::Sandbox>()?;
    m.add_class::<session::Session>()?;
    m.add_class::<child::RunResult>()?;
    m.add_class::<process::Process>()?;
    m.add_class::<job::Job>()?;
    m.add_function(wrap_pyfunction!(doctor, m)?)?;
    m.add_function(wrap_pyfunction!(set_helper_path, m)?)?;
    m.add("PIPE", args::PIPE)?;
    m.add("DEVNULL", args::DEVNULL)?;
    errors::register(m)?;
    Ok(())
}
