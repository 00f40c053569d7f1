//! Shared steps of the binding suites in `tests/`: find the repository,
//! run a build or test tool with its output shown, and fail with the tool's
//! own words when it fails.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The repository root (the parent of this crate).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("bindings-tests sits in the repository root")
        .to_path_buf()
}

/// Run `cmd` to completion, its output going to ours (cargo shows it for
/// a failing test); panic naming the command if it fails to start or exit 0.
pub fn run(what: &str, cmd: &mut Command) {
    // The outer cargo's settings must not leak into the nested builds (they
    // would share its target dir and lock, or its flags).
    for var in [
        "CARGO_TARGET_DIR",
        "CARGO_BUILD_TARGET",
        "CARGO_ENCODED_RUSTFLAGS",
        "RUSTFLAGS",
        "CARGO_MAKEFLAGS",
        "RUST_TEST_THREADS",
    ] {
        cmd.env_remove(var);
    }
    eprintln!("+ {what}: {cmd:?}");
    let status = cmd
        .status()
        .unwrap_or_else(|e| panic!("{what}: cannot start {cmd:?}: {e}"));
    assert!(status.success(), "{what} failed ({status}): {cmd:?}");
}
