//! `stockade attest PID`: check a running sandbox's containment from the host
//! side, reading only kernel state (see `stockade::attest`).

use std::process::ExitCode;

/// Exit status when a property failed.
const FAILED: u8 = 1;
/// Exit status when there is nothing to attest (no such pid, the sandbox ended).
const CANNOT_ATTEST: u8 = 125;

pub fn attest(pid: u32, json: bool) -> ExitCode {
    let report = match stockade::attest::attest_pid(pid) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("stockade: cannot attest pid {pid}: {e}");
            return ExitCode::from(CANNOT_ATTEST);
        }
    };
    if json {
        match serde_json::to_string_pretty(&report) {
            Ok(text) => println!("{text}"),
            Err(e) => {
                eprintln!("stockade: cannot encode the report: {e}");
                return ExitCode::from(CANNOT_ATTEST);
            }
        }
    } else {
        print!("{report}");
    }
    if report.passed() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(FAILED)
    }
}
