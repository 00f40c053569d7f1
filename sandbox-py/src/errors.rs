//! The exception hierarchy: one class per kind of core error, each carrying
//! the core's message and the layer it names.

use pyo3::create_exception;
use pyo3::exceptions::PyException;
use pyo3::prelude::*;

use stockade::Error;

create_exception!(
    stockade,
    SandboxError,
    PyException,
    "Base class of every stockade error."
);
create_exception!(
    stockade,
    PolicyError,
    SandboxError,
    "The policy is invalid; nothing was started."
);
create_exception!(
    stockade,
    UnsupportedError,
    SandboxError,
    "The policy asks for something this host or build cannot enforce."
);
create_exception!(
    stockade,
    HelperError,
    SandboxError,
    "The stockade-init helper is missing, not runnable, or from another version."
);
create_exception!(
    stockade,
    SetupError,
    SandboxError,
    "A sandbox layer could not be set up; nothing ran (see `.layer`)."
);
create_exception!(
    stockade,
    NotFoundError,
    SandboxError,
    "The program does not exist inside the sandbox."
);
create_exception!(
    stockade,
    NotExecutableError,
    SandboxError,
    "The program exists inside the sandbox but cannot be executed."
);
create_exception!(
    stockade,
    SandboxIOError,
    SandboxError,
    "Talking to the sandbox failed."
);

/// Map a core error onto the hierarchy, keeping its message and setting
/// `.layer` (plus `.step`/`.errno` for setup failures).
pub fn to_py(e: Error) -> PyErr {
    let msg = e.to_string();
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
        let _ = v.setattr("layer", e.layer().name());
        if let Error::Setup(f) = &e {
            let _ = v.setattr("step", f.step.clone());
            let _ = v.setattr("errno", f.errno);
        }
    });
    err
}

/// A `PolicyError` for a bad argument of the binding itself (layer `policy`).
pub fn bad_argument(msg: impl Into<String>) -> PyErr {
    to_py(Error::Policy(msg.into()))
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
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
