//! The Node binding's own suite (`node --test` in sandbox-node), built the
//! way its README tells a new user: `npm ci`, a build, then the tests. The
//! build is `npm run build:debug` (the same as `npm run build` without
//! `--release`: quicker to compile; the benchmark uses the release build).
//! Needs Node 20+ with npm and the npm registry.

use std::process::Command;

use stockade_bindings_tests::{repo_root, run};

#[test]
fn node_binding_suite() {
    let pkg = repo_root().join("sandbox-node");
    let install = if pkg.join("package-lock.json").exists() {
        "ci"
    } else {
        "install"
    };
    run(
        "npm install",
        Command::new("npm")
            .arg(install)
            .args(["--no-audit", "--no-fund"])
            .current_dir(&pkg),
    );
    run(
        "build the addon and the helper",
        Command::new("npm")
            .args(["run", "build:debug"])
            .current_dir(&pkg),
    );
    run(
        "node --test",
        Command::new("node")
            .args(["--test", "--test-concurrency=1", "test/"])
            .current_dir(&pkg),
    );
}
