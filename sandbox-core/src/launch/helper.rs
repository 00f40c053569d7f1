//! Finding the `stockade-init` helper with no install step.
//!
//! Order: an explicit path ([`crate::Sandbox::helper`] or [`set_helper_path`]),
//! `STOCKADE_INIT`, then the running executable itself when this library is
//! linked into it (every such binary carries the helper's entry point, see
//! `hook` in lib.rs, so a Rust user needs nothing else and can never meet a
//! stale helper), and last a `stockade-init` next to the running executable
//! (or one directory up, for Cargo's `deps/` test binaries).

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use crate::error::Error;

/// `argv[1]` that turns a process into the helper.
pub const HELPER_ARG: &str = "--stockade-init-v1";

static DEFAULT_HELPER: OnceLock<PathBuf> = OnceLock::new();
static SELF_EXEC: OnceLock<Option<PathBuf>> = OnceLock::new();

/// Set the process-wide helper path (used by the Python and Node packages,
/// which ship the helper next to their native module). First call wins.
pub fn set_helper_path(path: impl Into<PathBuf>) -> bool {
    DEFAULT_HELPER.set(path.into()).is_ok()
}

fn executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p)
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

/// Resolve the helper to run.
pub fn find_helper(explicit: Option<&Path>) -> Result<PathBuf, Error> {
    let named = explicit
        .map(|p| (p.to_path_buf(), "the configured helper path"))
        .or_else(|| {
            DEFAULT_HELPER
                .get()
                .map(|p| (p.clone(), "the process-wide helper path"))
        })
        .or_else(|| std::env::var_os("STOCKADE_INIT").map(|p| (PathBuf::from(p), "STOCKADE_INIT")));
    if let Some((p, what)) = named {
        return if executable(&p) {
            Ok(p)
        } else {
            Err(Error::Helper(format!(
                "{what} {} is not an executable file",
                p.display()
            )))
        };
    }
    // The running executable first: it is always the same build as this
    // library, while a `stockade-init` lying next to it may be stale.
    if let Some(p) = SELF_EXEC.get_or_init(self_exec_path) {
        return Ok(p.clone());
    }
    if let Ok(exe) = std::env::current_exe() {
        for dir in exe
            .parent()
            .into_iter()
            .chain(exe.parent().and_then(Path::parent))
        {
            let candidate = dir.join("stockade-init");
            if executable(&candidate) {
                return Ok(candidate);
            }
        }
    }
    Err(Error::Helper(
        "no stockade-init helper found (looked at STOCKADE_INIT and next to the executable, and this \
         library is not linked into the executable itself)"
            .into(),
    ))
}

/// The running executable, if the helper's entry point lives in it (and not in
/// a shared library loaded by, say, a Python interpreter).
fn self_exec_path() -> Option<PathBuf> {
    let exe = std::fs::canonicalize("/proc/self/exe").ok()?;
    let here = crate::hook_address();
    let maps = std::fs::read_to_string("/proc/self/maps").ok()?;
    for line in maps.lines() {
        let mut cols = line.split_whitespace();
        let range = cols.next()?;
        let (lo, hi) = range.split_once('-')?;
        let (lo, hi) = (
            usize::from_str_radix(lo, 16).ok()?,
            usize::from_str_radix(hi, 16).ok()?,
        );
        if (lo..hi).contains(&here) {
            let file = cols.nth(4).map(PathBuf::from)?;
            return (file == exe).then_some(exe);
        }
    }
    None
}
