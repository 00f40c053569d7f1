//! Builds the `stockade-init` helper and copies it into the Python package
//! (`python/stockade/stockade-init`), so maturin puts it in the wheel and
//! `import stockade` finds it next to `__init__.py` (see helper-build).
//! Set `STOCKADE_PY_SKIP_HELPER=1` to skip (then set STOCKADE_INIT at runtime).

fn main() {
    stockade_helper_build::build_helper_into(
        "python/stockade/stockade-init",
        "STOCKADE_PY_SKIP_HELPER",
    );
}
