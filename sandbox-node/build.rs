//! Sets up the napi addon link flags, then builds the `stockade-init` helper
//! and copies it next to the package (`./stockade-init`), where `index.js`
//! finds it and hands it to the core at load (see helper-build).
//! Set `STOCKADE_NODE_SKIP_HELPER=1` to skip (then set STOCKADE_INIT at runtime).

fn main() {
    napi_build::setup();
    stockade_helper_build::build_helper_into("stockade-init", "STOCKADE_NODE_SKIP_HELPER");
}
