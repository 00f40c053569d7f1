//! The CLI's stable contract (DESIGN.md), for root and for an unprivileged caller: refusals are
//! exit 125 with one stderr line and nothing run, exit statuses follow the program, `--report`
//! writes the documented JSON, and `--policy` files are applied or refused with the key and line.

#[macro_use]
mod common;

use std::fs;
use std::path::Path;

use common::*;

for_each_caller! {
    root_cwd_under_proc_or_relative_refused_with_125_and_nothing_runs,
    user_cwd_under_proc_or_relative_refused_with_125_and_nothing_runs
        => cwd_refused;
    root_bad_input_refused_with_125_one_stderr_line_and_nothing_runs,
    user_bad_input_refused_with_125_one_stderr_line_and_nothing_runs
        => bad_input_refused;
    root_exit_status_follows_program_signal_notfound_notexec,
    user_exit_status_follows_program_signal_notfound_notexec
        => exit_statuses;
    root_report_file_has_exit_code_signal_timed_out_duration_events,
    user_report_file_has_exit_code_signal_timed_out_duration_events
        => report_json;
    root_policy_file_grants_ro_and_unknown_key_is_refused_with_key_and_line,
    user_policy_file_grants_ro_and_unknown_key_is_refused_with_key_and_line
        => policy_file;
    root_layer_that_cannot_be_built_fails_closed_with_layer_and_remedy,
    user_layer_that_cannot_be_built_fails_closed_with_layer_and_remedy
        => fails_closed;
}

/// A sandbox cannot be built inside a sandbox (the user-namespace limit there is 0): the inner
/// `stockade run` must fail closed, exit 125, name the layer, the errno and a fix, and run
/// nothing. Positive control: the outer sandbox ran its own part of the script.
fn fails_closed(caller: Caller) {
    let t = TestDir::new("failclosed");
    let rw = marker_dir(caller, &t);
    let bin = user_stockade_bin();
    let bindir = bin.parent().unwrap().to_str().unwrap().to_string();
    let marker = format!("{rw}/inner-ran");
    let script = format!(
        "echo outer-ran; {} run --rw {rw} -- touch {marker}; echo inner-exit=$?",
        bin.display()
    );
    let out = sh(caller, &["--rw", &rw, "--ro", &bindir], &script);
    assert_code(&out, 0);
    let so = stdout(&out);
    assert!(
        so.contains("outer-ran"),
        "positive control: the outer sandbox ran: {}",
        describe(&out)
    );
    assert!(
        so.contains("inner-exit=125"),
        "inner setup must fail with 125: {}",
        describe(&out)
    );
    let err = stderr(&out);
    assert_eq!(err.lines().count(), 1, "one line: {}", describe(&out));
    assert!(
        err.contains("user namespace layer"),
        "names the layer: {err}"
    );
    // EPERM from the outer sandbox's seccomp filter (clone with CLONE_NEWUSER);
    // with the filter lifted, ENOSPC from max_user_namespaces = 0.
    assert!(err.contains("EPERM"), "names the errno: {err}");
    assert!(err.contains("Fix: "), "gives a remedy: {err}");
    assert!(
        !Path::new(&marker).exists(),
        "the inner command must not have run"
    );
}

/// A `--rw` dir the caller can write, for markers that prove whether anything ran.
fn marker_dir(caller: Caller, t: &TestDir) -> String {
    let rw = t.mkdir("rw");
    caller.own(Path::new(&rw));
    rw
}

/// Case 14: `--cwd /proc/self/fd/3` and `--cwd ../..` are refused (125, one line) before anything
/// runs; a valid `--cwd` runs the same command (positive control).
fn cwd_refused(caller: Caller) {
    let t = TestDir::new("cwd");
    let rw = marker_dir(caller, &t);
    for (i, cwd) in ["/proc/self/fd/3", "../..", "/proc/self/cwd", "relative/dir"]
        .iter()
        .enumerate()
    {
        let marker = format!("{rw}/ran-{i}");
        let out = sh(
            caller,
            &["--rw", &rw, "--cwd", cwd],
            &format!("touch {marker}; pwd"),
        );
        let line = assert_refused(&out);
        assert!(
            line.contains(cwd),
            "the refusal should name the cwd {cwd}: {line}"
        );
        assert!(
            stdout(&out).is_empty(),
            "nothing may run: {}",
            describe(&out)
        );
        assert!(
            !Path::new(&marker).exists(),
            "--cwd {cwd} was refused but the command ran"
        );
    }
    // A granted symlink into /proc/self/fd passes the textual check but must still never put
    // the command's cwd on an inherited host fd: setup fails closed, nothing runs.
    let links = t.mkdir("links");
    std::os::unix::fs::symlink("/proc/self/fd", format!("{links}/fd")).unwrap();
    for fd in ["3", "4", "5"] {
        let marker = format!("{rw}/ran-link-{fd}");
        let cwd = format!("{links}/fd/{fd}");
        let out = sh(
            caller,
            &["--rw", &rw, "--ro", &links, "--cwd", &cwd],
            &format!("touch {marker}; pwd"),
        );
        assert_refused(&out);
        assert!(
            stdout(&out).is_empty(),
            "nothing may run: {}",
            describe(&out)
        );
        assert!(
            !Path::new(&marker).exists(),
            "--cwd {cwd} was refused but the command ran"
        );
    }

    let marker = format!("{rw}/ran-ok");
    let out = sh(
        caller,
        &["--rw", &rw, "--cwd", &rw],
        &format!("touch {marker}; pwd"),
    );
    assert_code(&out, 0);
    assert_eq!(stdout(&out).trim(), rw);
    assert!(
        Path::new(&marker).exists(),
        "positive control: a valid --cwd runs the command"
    );
}

/// Case 15: Unknown option, missing source, relative destination, `--rw /`, bad size: each 125, one
/// stderr line, nothing run. The same command line without the bad option runs (control).
fn bad_input_refused(caller: Caller) {
    let t = TestDir::new("badinput");
    let rw = marker_dir(caller, &t);
    let cases: &[(&str, &[&str])] = &[
        ("unknown_option", &["--no-such-option"]),
        ("unknown_option_value", &["--frobnicate", "1"]),
        ("missing_ro_source", &["--ro", "/nonexistent-stockade-src"]),
        ("missing_rw_source", &["--rw", "/nonexistent-stockade-src"]),
        ("relative_dst", &["--rw", "/tmp:rel"]),
        ("rw_root", &["--rw", "/"]),
        ("bad_tmpfs_size", &["--tmpfs", "/x:12Q"]),
        ("bad_tmp_size", &["--tmp-size", "lots"]),
        ("bad_timeout", &["--timeout", "soon"]),
    ];
    for (name, bad) in cases {
        let marker = format!("{rw}/ran-{name}");
        let mut args: Vec<&str> = vec!["--rw", &rw];
        args.extend_from_slice(bad);
        let script = format!("touch {marker}; echo ran");
        let out = sh(caller, &args, &script);
        assert_refused(&out);
        assert!(
            stdout(&out).is_empty(),
            "{name}: nothing may run\n{}",
            describe(&out)
        );
        assert!(
            !Path::new(&marker).exists(),
            "{name}: refused but the command ran"
        );
    }
    // Positive control: the same invocation minus the bad option runs and leaves its marker.
    let marker = format!("{rw}/ran-control");
    let out = sh(
        caller,
        &["--rw", &rw, "--tmpfs", "/x:1M"],
        &format!("touch {marker}; echo ran"),
    );
    assert_code(&out, 0);
    assert_eq!(stdout(&out), "ran\n");
    assert!(Path::new(&marker).exists());
}

/// Case 16: The program's own code, 128+N on a signal, 127 not found, 126 not executable.
fn exit_statuses(caller: Caller) {
    assert_code(&run(caller, &["--", "sh", "-c", "exit 0"]), 0);
    assert_code(&run(caller, &["--", "sh", "-c", "exit 7"]), 7);
    assert_code(&run(caller, &["--", "sh", "-c", "exit 255"]), 255);
    assert_code(&run(caller, &["--", "sh", "-c", "kill -9 $$"]), 137);
    assert_code(&run(caller, &["--", "sh", "-c", "kill -TERM $$"]), 143);
    let out = run(caller, &["--", "stockade-no-such-program"]);
    assert_code(&out, 127);
    assert!(
        stderr(&out).contains("stockade-no-such-program"),
        "{}",
        describe(&out)
    );
    assert_code(&run(caller, &["--", "/no/such/path/prog"]), 127);
    let out = run(caller, &["--", "/etc/passwd"]);
    assert_code(&out, 126);
    assert!(stderr(&out).contains("/etc/passwd"), "{}", describe(&out));
}

fn read_report(path: &str) -> serde_json::Value {
    let text =
        fs::read_to_string(path).unwrap_or_else(|e| panic!("report {path} not written: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("report is not JSON ({e}): {text}"))
}

#[track_caller]
fn assert_report_shape(r: &serde_json::Value) {
    for key in ["exit_code", "signal", "timed_out", "duration", "events"] {
        assert!(r.get(key).is_some(), "report lacks {key}: {r}");
    }
    let d = r["duration"]
        .as_f64()
        .unwrap_or_else(|| panic!("duration is not a number: {r}"));
    assert!((0.0..30.0).contains(&d), "implausible duration {d}: {r}");
    let events = r["events"]
        .as_array()
        .unwrap_or_else(|| panic!("events is not an array: {r}"));
    assert!(!events.is_empty(), "no events: {r}");
}

/// Case 17: `--report FILE`: JSON with exit_code, signal, timed_out, duration and events, for a normal
/// exit, a signal death, a timeout and a setup refusal.
fn report_json(caller: Caller) {
    let t = TestDir::new("report");
    let dir = marker_dir(caller, &t);

    let path = format!("{dir}/exit.json");
    assert_code(
        &run(caller, &["--report", &path, "--", "sh", "-c", "exit 7"]),
        7,
    );
    let r = read_report(&path);
    assert_report_shape(&r);
    assert_eq!(r["exit_code"], 7, "{r}");
    assert!(r["signal"].is_null(), "{r}");
    assert_eq!(r["timed_out"], false, "{r}");

    let path = format!("{dir}/signal.json");
    assert_code(
        &run(caller, &["--report", &path, "--", "sh", "-c", "kill -9 $$"]),
        137,
    );
    let r = read_report(&path);
    assert_report_shape(&r);
    assert_eq!(r["exit_code"], 137, "{r}");
    assert_eq!(r["signal"], 9, "{r}");
    assert_eq!(r["timed_out"], false, "{r}");

    let path = format!("{dir}/timeout.json");
    assert_code(
        &run(
            caller,
            &["--report", &path, "--timeout", "1", "--", "sleep", "100"],
        ),
        124,
    );
    let r = read_report(&path);
    assert_report_shape(&r);
    assert_eq!(r["exit_code"], 124, "{r}");
    assert_eq!(r["timed_out"], true, "{r}");
    let d = r["duration"].as_f64().unwrap();
    assert!((0.9..3.0).contains(&d), "timeout duration {d}: {r}");

    let path = format!("{dir}/refused.json");
    assert_refused(&run(
        caller,
        &[
            "--report",
            &path,
            "--ro",
            "/nonexistent-stockade-src",
            "--",
            "true",
        ],
    ));
    let r = read_report(&path);
    assert_report_shape(&r);
    assert_eq!(r["exit_code"], 125, "{r}");
    assert_eq!(r["timed_out"], false, "{r}");
}

/// Case 18: A TOML policy granting `ro` of a dir makes its file readable (and without the policy it is
/// not); an unknown key is refused with 125 naming the key and `:LINE`.
fn policy_file(caller: Caller) {
    let t = TestDir::new("policy");
    let data = t.mkdir("data");
    let file = t.write("data/f.txt", b"from-policy\n");
    let good = t.write(
        "good.toml",
        format!("# grants\nro = [\"{data}\"]\nhostname = \"pol\"\n").as_bytes(),
    );
    let script = Script::new()
        .probe("read", &format!("cat {file}"))
        .probe("write", &format!("echo x > {file}"))
        .probe("host", "uname -n")
        .build();

    let out = sh(caller, &["--policy", &good], &script);
    assert_code(&out, 0);
    let p = probes(&out);
    p.ok("read", "from-policy");
    p.fails_with("write", "Read-only file system");
    p.ok("host", "pol");

    // Control: without the policy the file is not there, so the policy made the difference.
    let out = sh(caller, &[] as &[&str], &script);
    assert_code(&out, 0);
    probes(&out).fails_with("read", "No such file or directory");

    // Command-line options add to the policy.
    let extra = t.mkdir("extra");
    t.write("extra/e.txt", b"from-cli\n");
    let out = sh(
        caller,
        &["--policy", &good, "--ro", &extra],
        &format!("cat {file} {extra}/e.txt"),
    );
    assert_code(&out, 0);
    assert_eq!(stdout(&out), "from-policy\nfrom-cli\n");

    let rw = marker_dir(caller, &t);
    let marker = format!("{rw}/ran");
    let bad = t.write(
        "bad.toml",
        format!("ro = [\"{data}\"]\n\nstockade_bogus_key = 1\n").as_bytes(),
    );
    let out = sh(
        caller,
        &["--policy", &bad, "--rw", &rw],
        &format!("touch {marker}"),
    );
    let line = assert_refused(&out);
    assert!(
        line.contains("stockade_bogus_key"),
        "refusal must name the key: {line}"
    );
    assert!(
        line.contains(":3"),
        "refusal must name the line (:3): {line}"
    );
    assert!(
        !Path::new(&marker).exists(),
        "refused policy but the command ran"
    );
}
