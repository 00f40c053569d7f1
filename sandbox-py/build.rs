//! Builds the `stockade-init` helper from ../sandbox-core and copies it into
//! the Python package (`python/stockade/stockade-init`), so maturin puts it in
//! the wheel and `import stockade` finds it next to `__init__.py`.
//!
//! The helper cannot be this cdylib: the core's `.init_array` hook only turns
//! an *executable* into the helper, and the host executable here is python.
//!
//! Set `STOCKADE_PY_SKIP_HELPER=1` to skip (then set STOCKADE_INIT at runtime).

use std::path::PathBuf;
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=../sandbox-core/src");
    println!("cargo:rerun-if-changed=../sandbox-core/Cargo.toml");
    println!("cargo:rerun-if-env-changed=STOCKADE_PY_SKIP_HELPER");
    // Rebuild/copy again when the copy is missing (e.g. after `git clean`).
    println!("cargo:rerun-if-changed=python/stockade/stockade-init");
    if std::env::var_os("STOCKADE_PY_SKIP_HELPER").is_some() {
        return;
    }
    let manifest_dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
    let core = manifest_dir.join("../sandbox-core/Cargo.toml");
    let out_dir = PathBuf::from(std::env::var("OUT_DIR").unwrap());
    let target_dir = out_dir.join("helper-target");
    let release = std::env::var("PROFILE")
        .map(|p| p == "release")
        .unwrap_or(false);
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());

    let mut cmd = Command::new(cargo);
    cmd.arg("build")
        .arg("--manifest-path")
        .arg(&core)
        .args(["--bin", "stockade-init", "--target-dir"])
        .arg(&target_dir);
    if release {
        cmd.arg("--release");
    }
    let target = std::env::var("TARGET").unwrap();
    let host = std::env::var("HOST").unwrap();
    if target != host {
        cmd.args(["--target", &target]);
    }
    // Do not leak the outer build's flags (maturin sets cdylib link args).
    for var in [
        "CARGO_ENCODED_RUSTFLAGS",
        "RUSTFLAGS",
        "CARGO_TARGET_DIR",
        "CARGO_BUILD_TARGET",
        "CARGO_MAKEFLAGS",
    ] {
        cmd.env_remove(var);
    }
    let status = cmd.status().expect("running cargo to build stockade-init");
    assert!(status.success(), "building stockade-init failed");

    let mut built = target_dir.clone();
    if target != host {
        built.push(&target);
    }
    built.push(if release { "release" } else { "debug" });
    built.push("stockade-init");
    let dest = manifest_dir.join("python/stockade/stockade-init");
    // Replace atomically: the old file may be running as a helper right now.
    let tmp = dest.with_extension("tmp");
    std::fs::copy(&built, &tmp).expect("copying stockade-init");
    std::fs::rename(&tmp, &dest).expect("installing stockade-init");
}
