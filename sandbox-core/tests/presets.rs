//! Presets, `TMPDIR` and the ssh-agent relay through the Rust API, as root
//! (the CLI's `tests/presets.rs` covers the unprivileged caller).

mod common;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};

use common::{require_root, text, Workspace};
use stockade::{CacheMode, Error, Fs, Preset, Sandbox};

/// A home (outside `/tmp`, as real ones are) with a fake cargo and no caches.
fn fake_rust_home(ws: &Workspace) -> std::path::PathBuf {
    let home = ws.path().join("home");
    let bin = home.join(".cargo/bin");
    fs::create_dir_all(&bin).unwrap();
    fs::create_dir_all(home.join(".rustup")).unwrap();
    fs::write(bin.join("fakecargo"), "#!/bin/sh\necho fakecargo-ok\n").unwrap();
    fs::set_permissions(bin.join("fakecargo"), fs::Permissions::from_mode(0o755)).unwrap();
    fs::create_dir_all(home.join(".ssh")).unwrap();
    fs::write(home.join(".ssh/id_rsa"), "SECRET\n").unwrap();
    home
}

fn sh(sb: Sandbox, script: &str) -> (i32, String, String) {
    let out = sb.command(["sh", "-c", script]).output().expect("spawn");
    (
        out.status.code().unwrap_or(-1),
        text(&out.stdout),
        text(&out.stderr),
    )
}

/// `Sandbox::preset` with `preset_home`: the fake cargo runs from `PATH`,
/// its directory is read-only, `~/.ssh` is absent. `validate` does not
/// create a persist-mode cache; a spawn does, and writes land in it.
#[test]
fn preset_through_the_api_and_persist_caches_only_on_spawn() {
    require_root();
    let ws = Workspace::new("preset-api");
    let home = fake_rust_home(&ws);
    let h = home.to_str().unwrap();
    let sb = || {
        Sandbox::new()
            .preset(Preset::Rust)
            .preset_home(&home)
            .cache(CacheMode::Persist)
    };
    sb().validate().unwrap();
    assert!(
        !home.join(".cargo/registry").exists(),
        "validate created a cache"
    );

    let script = format!(
        "fakecargo; echo $CARGO_HOME; touch {h}/.cargo/bin/x 2>&1; cat {h}/.ssh/id_rsa 2>&1; \
         echo cached > {h}/.cargo/registry/f"
    );
    let (code, out, err) = sh(sb(), &script);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(
        out,
        format!(
            "fakecargo-ok\n{h}/.cargo\ntouch: cannot touch '{h}/.cargo/bin/x': Read-only file system\n\
             cat: {h}/.ssh/id_rsa: No such file or directory\n"
        )
    );
    assert_eq!(
        fs::read_to_string(home.join(".cargo/registry/f")).unwrap(),
        "cached\n"
    );
    assert!(!home.join(".cargo/bin/x").exists());

    // Positive control: without the preset, nothing of it.
    let (code, _, err) = sh(Sandbox::new().preset_home(&home), "fakecargo");
    assert_eq!(code, 127, "{err}");
}

/// A session command's own `TMPDIR` is checked like the sandbox's: kept when
/// writable inside, `/tmp` otherwise.
#[test]
fn session_commands_get_a_writable_tmpdir() {
    require_root();
    let session = Sandbox::new()
        .fs(Fs::minimal().tmpfs("/scratch", 1 << 20))
        .env("TMPDIR", "/nowhere")
        .session()
        .unwrap();
    let run = |tmpdir: Option<&str>| {
        let mut c = session.command(["sh", "-c", "echo $TMPDIR; mktemp >/dev/null && echo ok"]);
        if let Some(t) = tmpdir {
            c = c.env("TMPDIR", t);
        }
        text(&c.output().unwrap().stdout)
    };
    assert_eq!(run(None), "/tmp\nok\n");
    assert_eq!(run(Some("/scratch")), "/scratch\nok\n");
    assert_eq!(run(Some("/home/me/tmp")), "/tmp\nok\n");
    session.close().unwrap();
}

/// Body of [`session_relays_the_agent_for_every_command`], run in a child
/// process whose environment has `SSH_AUTH_SOCK` (the library reads it at
/// spawn; setting it in this multi-threaded process would race).
#[test]
#[ignore]
fn session_relay_body() {
    if std::env::var_os("STOCKADE_RELAY_BODY").is_none() {
        return;
    }
    let session = Sandbox::new().ssh_agent(true).session().unwrap();
    for _ in 0..2 {
        let out = session.command(["ssh-add", "-l"]).output().unwrap();
        assert!(out.status.success(), "{}", text(&out.stderr));
        print!("{}", text(&out.stdout));
    }
    let relays = || {
        fs::read_dir(std::env::temp_dir())
            .unwrap()
            .flatten()
            .filter(|e| {
                let name = e.file_name().to_string_lossy().into_owned();
                name.starts_with(&format!("stockade-agent-{}-", std::process::id()))
            })
            .count()
    };
    assert_eq!(relays(), 1);
    session.close().unwrap();
    assert_eq!(relays(), 0, "the relay outlived its session");
    println!("relay-done");
}

/// A root caller's session relays its agent (OpenSSH's agent refuses the
/// sandbox's unprivileged uid directly) to every command, and the relay's
/// directory goes with the session. Without `SSH_AUTH_SOCK`: a policy error.
#[test]
fn session_relays_the_agent_for_every_command() {
    require_root();
    // The CLI tests check this with a cleared environment; here only when
    // the test process itself has no agent.
    if std::env::var_os("SSH_AUTH_SOCK").is_none() {
        let err = Sandbox::new()
            .ssh_agent(true)
            .command(["true"])
            .output()
            .unwrap_err();
        assert!(
            matches!(&err, Error::Policy(m) if m.contains("SSH_AUTH_SOCK")),
            "{err:?}"
        );
    }

    let ws = Workspace::new("relay");
    let key = ws.path().join("key");
    let socket = ws.path().join("agent.sock");
    let ok = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "relay-key", "-f"])
        .arg(&key)
        .status()
        .unwrap();
    assert!(ok.success());
    let mut agent = Command::new("ssh-agent")
        .args(["-D", "-a"])
        .arg(&socket)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    for _ in 0..200 {
        if socket.exists() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let add = Command::new("ssh-add")
        .arg(&key)
        .env("SSH_AUTH_SOCK", &socket)
        .output()
        .unwrap();
    assert!(add.status.success(), "{}", text(&add.stderr));
    let out = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "session_relay_body", "--ignored", "--nocapture"])
        .env("STOCKADE_RELAY_BODY", "1")
        .env("SSH_AUTH_SOCK", &socket)
        .output()
        .unwrap();
    let _ = agent.kill();
    let _ = agent.wait();
    let all = format!("{}{}", text(&out.stdout), text(&out.stderr));
    assert!(out.status.success(), "{all}");
    assert_eq!(all.matches("relay-key (ED25519)").count(), 2, "{all}");
    assert!(all.contains("relay-done"), "{all}");
    assert!(Path::new(&socket).exists());
}
