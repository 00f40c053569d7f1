//! `--events FILE` and the report's events, for root and an unprivileged
//! caller: refused syscalls are on the record with the errno the program
//! got, `--no-syscall-events` takes them off (still refused), and a setup
//! refusal is one `setup_failed` line.

#[macro_use]
mod common;

use std::path::Path;

use common::*;

for_each_caller! {
    root_events_file_records_start_refusals_and_exit,
    user_events_file_records_start_refusals_and_exit
        => events_file;
    root_no_syscall_events_still_refuses_and_records_nothing,
    user_no_syscall_events_still_refuses_and_records_nothing
        => no_syscall_events;
    root_setup_refusal_is_one_setup_failed_line,
    user_setup_refusal_is_one_setup_failed_line
        => setup_failed_line;
}

fn out_dir(caller: Caller, t: &TestDir) -> String {
    let d = t.mkdir("out");
    caller.own(Path::new(&d));
    d
}

fn lines(path: &str) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("read {path}: {e}"))
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

fn kinds(events: &[serde_json::Value]) -> Vec<String> {
    events
        .iter()
        .map(|e| e["kind"].as_str().unwrap().to_string())
        .collect()
}

const SCRIPT: &str = "mount -t tmpfs none /tmp 2>/dev/null; echo mount=$?; \
    python3 -c 'import ctypes; l = ctypes.CDLL(None, use_errno=True); \
    print(\"unknown\", l.syscall(1000), ctypes.get_errno())'; exit 3";

fn events_file(caller: Caller) {
    let t = TestDir::new("events");
    let d = out_dir(caller, &t);
    let (events, report) = (format!("{d}/events.jsonl"), format!("{d}/report.json"));
    let out = run(
        caller,
        &[
            "--events", &events, "--report", &report, "--", "sh", "-c", SCRIPT,
        ],
    );
    assert_code(&out, 3);
    assert_eq!(
        stdout(&out),
        "mount=32\nunknown -1 38\n",
        "{}",
        describe(&out)
    );
    let ev = lines(&events);
    assert_eq!(
        kinds(&ev),
        ["start", "syscall_denied", "syscall_denied", "exit"],
        "{ev:#?}"
    );
    assert_eq!(ev[0]["argv"][0], "sh");
    assert_eq!(ev[1]["syscall"], "mount");
    assert_eq!(ev[1]["errno"], libc::EPERM);
    assert_eq!(ev[1]["errno_name"], "EPERM");
    assert_eq!(ev[2]["syscall"], "syscall_1000");
    assert_eq!(
        ev[2]["errno"],
        libc::ENOSYS,
        "the errno the program printed"
    );
    assert_eq!(ev[3]["code"], 3);
    let id = ev[0]["sandbox"].as_str().unwrap();
    assert!(ev
        .iter()
        .all(|e| e["sandbox"] == id && e["detail"].is_string()));
    // The report holds the same events and the summary for an LLM.
    let r: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    assert_eq!(r["events"].as_array().unwrap().len(), 4);
    assert_eq!(
        r["summary"],
        "[stockade] blocked during this command:\n\
         - syscall: mount refused (EPERM)\n\
         - syscall: syscall_1000 refused (ENOSYS)\n"
    );
}

fn no_syscall_events(caller: Caller) {
    let t = TestDir::new("noevents");
    let d = out_dir(caller, &t);
    let events = format!("{d}/events.jsonl");
    let out = run(
        caller,
        &[
            "--no-syscall-events",
            "--events",
            &events,
            "--",
            "sh",
            "-c",
            SCRIPT,
        ],
    );
    assert_code(&out, 3);
    // Same answers, now from the kernel.
    assert_eq!(
        stdout(&out),
        "mount=32\nunknown -1 38\n",
        "{}",
        describe(&out)
    );
    assert_eq!(kinds(&lines(&events)), ["start", "exit"]);
}

fn setup_failed_line(caller: Caller) {
    let t = TestDir::new("evsetup");
    let d = out_dir(caller, &t);
    let events = format!("{d}/events.jsonl");
    let out = run(
        caller,
        &[
            "--events",
            &events,
            "--ro",
            "/nonexistent-stockade-path",
            "--",
            "true",
        ],
    );
    assert_code(&out, 125);
    let ev = lines(&events);
    assert_eq!(ev.len(), 1, "{ev:#?}");
    assert_eq!(ev[0]["kind"], "setup_failed");
    assert!(ev[0]["detail"]
        .as_str()
        .unwrap()
        .contains("/nonexistent-stockade-path"));
    // An events file that cannot be written is a refusal before anything runs.
    let out = run(caller, &["--events", "/proc/no/such/file", "--", "true"]);
    assert_code(&out, 125);
    assert!(
        stderr(&out).contains("cannot write events file"),
        "{}",
        describe(&out)
    );
}
