//! The Python binding's pytest suite (`sandbox-py/tests`), built and run the
//! way its README tells a new user: a virtualenv, `pip install ./sandbox-py`
//! (which builds the abi3 wheel and the `stockade-init` helper it carries),
//! then pytest. Needs `python3` with `venv` and PyPI for maturin and pytest.

use std::process::Command;

use stockade_bindings_tests::{repo_root, run};

#[test]
fn python_binding_suite() {
    let root = repo_root();
    let venv = root.join("target/bindings/py-venv");
    let python = venv.join("bin/python");
    if !python.exists() {
        run(
            "create the virtualenv",
            Command::new("python3").args(["-m", "venv"]).arg(&venv),
        );
    }
    // maturin's build backend runs `maturin` from PATH.
    let path = format!(
        "{}:{}",
        venv.join("bin").display(),
        std::env::var("PATH").unwrap_or_default()
    );
    run(
        "install the build and test tools",
        Command::new(&python).args([
            "-m",
            "pip",
            "install",
            "-q",
            "--disable-pip-version-check",
            "maturin>=1.5,<2",
            "pytest",
        ]),
    );
    run(
        "pip install ./sandbox-py",
        Command::new(&python)
            .args([
                "-m",
                "pip",
                "install",
                "-q",
                "--disable-pip-version-check",
                "--no-build-isolation",
                "--force-reinstall",
                "--no-deps",
                "./sandbox-py",
            ])
            .env("PATH", &path)
            .current_dir(&root),
    );
    let cli = root.join("target/debug/stockade");
    assert!(
        cli.exists(),
        "the adapter tests run the CLI: build it first (`cargo build --workspace`)"
    );
    run(
        "pytest sandbox-py/tests",
        Command::new(&python)
            .args(["-m", "pytest", "-q", "-p", "no:cacheprovider", "tests"])
            .current_dir(root.join("sandbox-py"))
            .env("PATH", &path)
            .env("STOCKADE_CLI", &cli)
            .env_remove("STOCKADE_INIT")
            .env("PYTHONDONTWRITEBYTECODE", "1"),
    );
}
