//! The TOML policy loader on arbitrary text: parsing never panics, and a
//! policy that parses either builds a sandbox or is refused with an error.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(policy) = stockade::PolicyFile::from_toml_str(text, "fuzz.toml") {
        let _ = policy.to_sandbox();
    }
});
