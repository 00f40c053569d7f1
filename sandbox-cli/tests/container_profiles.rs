//! The container settings stockade ships (examples/kubernetes/, packaging/apparmor/),
//! checked offline: the Kubernetes manifest against the API schemas
//! (`kubernetes-validate`, from PyPI), the AppArmor profiles with
//! `apparmor_parser` (Debian's `apparmor`), and the worker seccomp profile
//! against stockade's syscall table. A validator that is not installed makes
//! its test print why and pass without checking; `.ci/run` installs both.
//! That the seccomp profile lets the full sandbox run is tested in
//! `host_conditions.rs` (it is compiled to a filter there).

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// `name` on PATH (or at `$env_var`), else None.
fn tool(name: &str, env_var: &str) -> Option<PathBuf> {
    if let Some(p) = std::env::var_os(env_var) {
        return Some(PathBuf::from(p));
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .chain(["/usr/sbin".into(), "/sbin".into()])
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

fn skip(what: &str, how: &str) {
    eprintln!("SKIPPED: {what} not installed, nothing validated ({how})");
}

#[test]
fn kubernetes_manifest_validates_against_the_api_schemas() {
    let Some(validator) = tool("kubernetes-validate", "STOCKADE_KUBERNETES_VALIDATE") else {
        return skip(
            "kubernetes-validate",
            "pip install kubernetes-validate, or set STOCKADE_KUBERNETES_VALIDATE",
        );
    };
    let manifest = repo().join("examples/kubernetes/agent-worker.yaml");
    // 1.30 is the first release with securityContext.appArmorProfile; the
    // validator's default is the newest it knows.
    for version in [None, Some("1.30.0")] {
        let mut cmd = Command::new(&validator);
        cmd.arg("--strict");
        if let Some(v) = version {
            cmd.args(["-k", v]);
        }
        let out = cmd
            .arg(&manifest)
            .output()
            .expect("run kubernetes-validate");
        let text = String::from_utf8_lossy(&out.stdout).into_owned()
            + &String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success() && text.contains("passed"),
            "{version:?}: {text}"
        );
    }

    // Negative control: the validator rejects a field the schema lacks.
    let dir = std::env::temp_dir().join(format!("stockade-kv-{}", std::process::id()));
    fs::create_dir_all(&dir).unwrap();
    let bad = dir.join("bad.yaml");
    let text = fs::read_to_string(&manifest).unwrap();
    assert!(text.contains("            procMount: Unmasked\n"));
    fs::write(
        &bad,
        text.replace(
            "            procMount: Unmasked\n",
            "            procMount: Unmasked\n            unmaskEverything: true\n",
        ),
    )
    .unwrap();
    let out = Command::new(&validator)
        .args(["--strict"])
        .arg(&bad)
        .output()
        .unwrap();
    let _ = fs::remove_dir_all(&dir);
    assert!(
        !out.status.success(),
        "an unknown field passed validation: {out:?}"
    );
}

/// The parser's major version (`AppArmor parser version 3.0.8`).
fn parser_major(parser: &Path) -> u32 {
    let out = Command::new(parser).arg("--version").output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    text.split_whitespace()
        .find_map(|w| {
            w.split('.')
                .next()?
                .parse()
                .ok()
                .filter(|_| w.contains('.'))
        })
        .expect("parser version")
}

/// Parse `profile` offline (`-Q`: no kernel load, `-K`: no cache). A parser
/// older than AppArmor 4.0 knows neither `abi/4.0` nor the `userns` rule: it
/// checks the rest of the profile, with those two parts checked as text.
fn parses(parser: &Path, profile: &str) -> Result<(), String> {
    let text = if parser_major(parser) >= 4 {
        profile.to_string()
    } else {
        assert!(profile.contains("abi <abi/4.0>,\n"), "{profile}");
        assert!(profile.contains("\n  userns,\n"), "{profile}");
        profile
            .replace("abi <abi/4.0>,", "abi <abi/3.0>,")
            .replace("\n  userns,\n", "\n")
    };
    let dir =
        std::env::temp_dir().join(format!("stockade-aa-{}-{}", std::process::id(), text.len()));
    fs::create_dir_all(&dir).unwrap();
    let file = dir.join("profile");
    fs::write(&file, &text).unwrap();
    let out = Command::new(parser)
        .args(["-Q", "-K"])
        .arg(&file)
        .output()
        .unwrap();
    let _ = fs::remove_dir_all(&dir);
    if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

#[test]
fn apparmor_profiles_parse() {
    let Some(parser) = tool("apparmor_parser", "STOCKADE_APPARMOR_PARSER") else {
        return skip("apparmor_parser", "apt-get install apparmor");
    };
    if parser_major(&parser) < 4 {
        eprintln!(
            "NOTE: apparmor_parser {} < 4.0 cannot parse `abi <abi/4.0>` or `userns,`: \
             the rest of each profile is parsed, those two lines are checked as text",
            parser_major(&parser)
        );
    }
    for rel in [
        "packaging/apparmor/stockade-init",
        "examples/kubernetes/apparmor/stockade-worker",
    ] {
        let text = fs::read_to_string(repo().join(rel)).unwrap();
        parses(&parser, &text).unwrap_or_else(|e| panic!("{rel}: {e}"));
    }
    let shipped = fs::read_to_string(repo().join("packaging/apparmor/stockade-init")).unwrap();
    assert!(shipped.contains(
        "profile stockade-init /usr/{,local/}bin/stockade{,-init} flags=(unconfined) {\n  userns,\n"
    ));
    // Negative control: the parser does reject a broken profile.
    let broken = shipped.replace(
        "flags=(unconfined) {",
        "flags=(unconfined) {\n  frobnicate /x,",
    );
    assert!(parses(&parser, &broken).is_err());
}

#[test]
fn worker_seccomp_profile_decides_every_known_syscall() {
    let path = repo().join("examples/kubernetes/seccomp/stockade-worker.json");
    let json: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(path).unwrap()).expect("valid JSON");
    assert_eq!(json["defaultAction"], "SCMP_ACT_ERRNO");
    assert_eq!(
        json["defaultErrnoRet"],
        libc::ENOSYS,
        "syscalls newer than the profile: ENOSYS, so runtimes fall back"
    );
    assert_eq!(
        json["architectures"],
        serde_json::json!(["SCMP_ARCH_X86_64"])
    );
    let group = |action: &str| -> BTreeSet<String> {
        json["syscalls"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|g| g["action"] == action)
            .flat_map(|g| g["names"].as_array().unwrap().iter())
            .map(|n| n.as_str().unwrap().to_string())
            .collect()
    };
    let (allowed, denied) = (group("SCMP_ACT_ALLOW"), group("SCMP_ACT_ERRNO"));
    assert_eq!(json["syscalls"].as_array().unwrap().len(), 2);
    assert!(allowed.is_disjoint(&denied));
    let known: BTreeSet<String> = stockade::seccomp::known()
        .map(|(n, _)| n.to_string())
        .collect();
    let decided: BTreeSet<String> = allowed.union(&denied).cloned().collect();
    assert_eq!(
        decided, known,
        "every syscall stockade's table knows is decided explicitly"
    );
    // What stockade needs to build a sandbox inside the container.
    for name in [
        "clone",
        "clone3",
        "unshare",
        "setns",
        "mount",
        "umount2",
        "pivot_root",
        "open_tree",
        "move_mount",
        "mount_setattr",
        "fsopen",
        "fsconfig",
        "fsmount",
        "sethostname",
        "landlock_create_ruleset",
        "landlock_add_rule",
        "landlock_restrict_self",
        "seccomp",
        "prctl",
        "capset",
        "setresuid",
        "setresgid",
        "pidfd_open",
        "pidfd_send_signal",
        "close_range",
        "signalfd4",
    ] {
        assert!(allowed.contains(name), "{name} must be allowed");
    }
    // Kernel-wide state and escape primitives a worker never needs.
    for name in [
        "kexec_load",
        "init_module",
        "finit_module",
        "bpf",
        "perf_event_open",
        "userfaultfd",
        "ptrace",
        "process_vm_writev",
        "open_by_handle_at",
        "keyctl",
        "io_uring_setup",
        "reboot",
        "swapon",
        "syslog",
    ] {
        assert!(denied.contains(name), "{name} must be denied");
    }
}
