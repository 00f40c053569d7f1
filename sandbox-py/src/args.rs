//! Converting the arguments every run-like method shares (argv or a shell
//! string, input, timeout, stdio choices).

use std::os::fd::{BorrowedFd, OwnedFd, RawFd};
use std::time::Duration;

use pyo3::prelude::*;
use pyo3::types::PyString;

use stockade::Stdio;

use crate::errors::bad_argument;

/// `subprocess.PIPE` and `subprocess.DEVNULL`, which `spawn` accepts too.
pub const PIPE: i64 = -1;
pub const DEVNULL: i64 = -3;

/// The command, its stdin bytes and its timeout.
pub struct RunArgs {
    pub argv: Vec<String>,
    pub input: Option<Vec<u8>>,
    pub timeout: Option<Duration>,
}

impl RunArgs {
    pub fn parse(
        argv: &Bound<'_, PyAny>,
        input: Option<&Bound<'_, PyAny>>,
        timeout: Option<f64>,
        shell: bool,
    ) -> PyResult<Self> {
        Ok(RunArgs {
            argv: parse_argv(argv, shell)?,
            input: input.map(parse_input).transpose()?,
            timeout: parse_timeout(timeout)?,
        })
    }
}

pub fn parse_argv(argv: &Bound<'_, PyAny>, shell: bool) -> PyResult<Vec<String>> {
    let argv: Vec<String> = if shell {
        let cmd: String = argv
            .extract()
            .map_err(|_| bad_argument("with shell=True, argv must be a single string"))?;
        vec!["/bin/sh".into(), "-c".into(), cmd]
    } else {
        if argv.is_instance_of::<PyString>() {
            return Err(bad_argument(
                "argv must be a list of strings (or pass shell=True to run a string)",
            ));
        }
        argv.extract()
            .map_err(|_| bad_argument("argv must be a list of strings"))?
    };
    if argv.is_empty() {
        return Err(bad_argument("argv must not be empty"));
    }
    Ok(argv)
}

fn parse_input(o: &Bound<'_, PyAny>) -> PyResult<Vec<u8>> {
    if let Ok(s) = o.extract::<String>() {
        return Ok(s.into_bytes());
    }
    if let Ok(b) = o.extract::<Vec<u8>>() {
        return Ok(b);
    }
    Err(bad_argument("input must be bytes or str"))
}

pub fn parse_timeout(timeout: Option<f64>) -> PyResult<Option<Duration>> {
    match timeout {
        None => Ok(None),
        Some(t) if t.is_finite() && t > 0.0 && t < 1e9 => Ok(Some(Duration::from_secs_f64(t))),
        Some(t) => Err(bad_argument(format!(
            "invalid timeout {t}: expected seconds greater than 0"
        ))),
    }
}

/// One of `spawn`'s `stdin`/`stdout`/`stderr`: `PIPE`, `DEVNULL`, `None`
/// (the caller's own), a descriptor number or an object with `fileno()`
/// (duplicated, so the caller keeps its own).
pub fn parse_stdio(name: &str, o: Option<&Bound<'_, PyAny>>) -> PyResult<Stdio> {
    let Some(o) = o else {
        return Ok(Stdio::inherit());
    };
    let fd: i64 = if let Ok(n) = o.extract::<i64>() {
        n
    } else if let Ok(f) = o.call_method0("fileno") {
        f.extract()?
    } else {
        return Err(bad_argument(format!(
            "{name} must be stockade.PIPE, stockade.DEVNULL, None, a file descriptor or a file"
        )));
    };
    match fd {
        PIPE => Ok(Stdio::piped()),
        DEVNULL => Ok(Stdio::null()),
        n if (0..=i64::from(i32::MAX)).contains(&n) => Ok(Stdio::from(dup(n as RawFd, name)?)),
        n => Err(bad_argument(format!("{name}: invalid file descriptor {n}"))),
    }
}

fn dup(fd: RawFd, name: &str) -> PyResult<OwnedFd> {
    // SAFETY: the number is only borrowed for one `fcntl(F_DUPFD_CLOEXEC)`
    // and never closed through this borrow; a number that is not open makes
    // that call fail with EBADF (reported) without touching anything.
    let borrowed = unsafe { BorrowedFd::borrow_raw(fd) };
    borrowed
        .try_clone_to_owned()
        .map_err(|e| bad_argument(format!("{name}: file descriptor {fd}: {e}")))
}
