//! For the bindings' `build.rs`: build the `stockade-init` helper from
//! `../sandbox-core` and copy it into the package being built.
//!
//! The helper cannot be the binding's own library: the core's `.init_array`
//! hook only turns an *executable* that links it into the helper, and the
//! executable there is python or node. So each package carries a separate
//! `stockade-init`, built here with a nested cargo in its own target
//! directory (same profile and target as the outer build).

use std::path::{Path, PathBuf};
use std::process::Command;

/// Build `stockade-init` and install it at `dest` (relative to the calling
/// package's manifest directory). Does nothing when the environment
/// variable `skip_var` is set (the caller then sets `STOCKADE_INIT` at run
/// time). Panics with the reason on failure, as build scripts do.
pub fn build_helper_into(dest: &str, skip_var: &str) {
    println!("cargo:rerun-if-changed=../sandbox-core/src");
    println!("cargo:rerun-if-changed=../sandbox-core/Cargo.toml");
    println!("cargo:rerun-if-env-changed={skip_var}");
    // Build and copy again when the copy is missing (e.g. after `git clean`).
    println!("cargo:rerun-if-changed={dest}");
    if std::env::var_os(skip_var).is_some() {
        return;
    }
    let var = |name: &str| std::env::var(name).unwrap_or_else(|_| panic!("cargo sets {name}"));
    let manifest_dir = PathBuf::from(var("CARGO_MANIFEST_DIR"));
    let target_dir = PathBuf::from(var("OUT_DIR")).join("helper-target");
    let release = var("PROFILE") == "release";
    let (target, host) = (var("TARGET"), var("HOST"));

    let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    cmd.arg("build")
        .arg("--manifest-path")
        .arg(manifest_dir.join("../sandbox-core/Cargo.toml"))
        .args(["--bin", "stockade-init", "--target-dir"])
        .arg(&target_dir);
    if release {
        cmd.arg("--release");
    }
    if target != host {
        cmd.args(["--target", &target]);
    }
    // The outer build's flags (a cdylib's link arguments) are not the helper's.
    for name in [
        "CARGO_ENCODED_RUSTFLAGS",
        "RUSTFLAGS",
        "CARGO_TARGET_DIR",
        "CARGO_BUILD_TARGET",
        "CARGO_MAKEFLAGS",
    ] {
        cmd.env_remove(name);
    }
    let status = cmd.status().expect("running cargo to build stockade-init");
    assert!(status.success(), "building stockade-init failed");

    let mut built = target_dir;
    if target != host {
        built.push(&target);
    }
    built.push(if release { "release" } else { "debug" });
    built.push("stockade-init");
    install(&built, &manifest_dir.join(dest));
}

/// Replace atomically: the old file may be running as a helper right now.
fn install(built: &Path, dest: &Path) {
    let tmp = dest.with_extension("tmp");
    std::fs::copy(built, &tmp).expect("copying stockade-init");
    std::fs::rename(&tmp, dest).expect("installing stockade-init");
}
