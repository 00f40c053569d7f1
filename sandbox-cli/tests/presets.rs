//! Toolchains, caches, `TMPDIR` and the ssh-agent, for root and an
//! unprivileged caller, through the CLI as a user would run it:
//!
//! - `--preset python|node|rust` shows the toolchains of the caller's home
//!   (fake homes with small fake toolchains here) runnable and read-only, and
//!   nothing else of the home: keys, cloud and registry credentials stay
//!   invisible with every preset and cache mode.
//! - `--cache ro|overlay|persist`: read-only refuses writes, overlay takes
//!   them and leaves the host byte-for-byte unchanged, persist writes through.
//! - `TMPDIR` always names a writable directory inside.
//! - `--ssh-agent` binds only the agent socket: a real `ssh-agent` lists and
//!   signs from inside; without the flag the socket is unreachable.
//! - The README's workflows, offline: `pip install` into a venv, `npm
//!   install` of a local tarball, `cargo build --offline` with vendored deps.

#[macro_use]
mod common;

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

use common::*;

for_each_caller! {
    root_toolchains_are_visible_runnable_and_read_only,
    user_toolchains_are_visible_runnable_and_read_only
        => toolchains_visible_and_read_only;
    root_home_secrets_stay_invisible_with_every_preset,
    user_home_secrets_stay_invisible_with_every_preset
        => secrets_invisible;
    root_cache_modes_ro_overlay_persist,
    user_cache_modes_ro_overlay_persist
        => cache_modes;
    root_missing_caches_fresh_in_overlay_created_in_persist,
    user_missing_caches_fresh_in_overlay_created_in_persist
        => missing_caches;
    root_tmpdir_always_names_a_writable_directory,
    user_tmpdir_always_names_a_writable_directory
        => tmpdir_cases;
    root_ssh_agent_socket_only_with_the_flag,
    user_ssh_agent_socket_only_with_the_flag
        => ssh_agent;
    root_pip_install_into_a_venv_offline,
    user_pip_install_into_a_venv_offline
        => pip_venv;
    root_npm_install_of_a_local_tarball_offline,
    user_npm_install_of_a_local_tarball_offline
        => npm_tarball;
    root_cargo_build_offline_with_vendored_deps,
    user_cargo_build_offline_with_vendored_deps
        => cargo_vendored;
}

const SYSTEM_PATH: &str = "/usr/local/bin:/usr/bin:/bin";

/// Every preset.
const ALL: [&str; 3] = ["python", "node", "rust"];

/// `stockade run` as `caller` with exactly `env` (and a system `PATH`),
/// nothing inherited from the test process.
fn cli(caller: Caller, env: &[(&str, &str)]) -> Command {
    require_root();
    let mut vars: Vec<(String, String)> = vec![("PATH".into(), SYSTEM_PATH.into())];
    for (k, v) in env {
        vars.retain(|(ek, _)| ek != k);
        vars.push((k.to_string(), v.to_string()));
    }
    let mut cmd = match caller {
        Caller::Root => {
            let mut c = Command::new(stockade_bin());
            c.env_clear().envs(vars);
            c
        }
        // runuser resets HOME and PATH: `env -i` sets them after it.
        Caller::User => {
            test_user();
            let mut c = Command::new(find_tool("runuser"));
            c.args(["-u", TEST_USER, "--", "env", "-i"]);
            c.args(vars.iter().map(|(k, v)| format!("{k}={v}")));
            c.arg(user_stockade_bin());
            c
        }
    };
    cmd.current_dir("/").arg("run").stdin(Stdio::null());
    cmd
}

fn run_sh(caller: Caller, env: &[(&str, &str)], opts: &[&str], script: &str) -> Output {
    cli(caller, env)
        .args(opts)
        .args(["--", "sh", "-c", script])
        .output()
        .expect("spawn the stockade CLI")
}

/// Every file, directory and symlink under `root` with its contents: two
/// equal snapshots mean nothing was created, changed or removed.
fn snapshot(root: &Path) -> BTreeMap<PathBuf, String> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for e in fs::read_dir(&dir).unwrap_or_else(|e| panic!("read {}: {e}", dir.display())) {
            let p = e.unwrap().path();
            let meta = fs::symlink_metadata(&p).unwrap();
            let what = if meta.is_symlink() {
                format!("-> {}", fs::read_link(&p).unwrap().display())
            } else if meta.is_dir() {
                stack.push(p.clone());
                "dir".into()
            } else {
                format!("{:?}", fs::read(&p).unwrap())
            };
            out.insert(p.strip_prefix(root).unwrap().to_path_buf(), what);
        }
    }
    out
}

fn write_exec(path: &Path, text: &str) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, text).unwrap();
    fs::set_permissions(path, fs::Permissions::from_mode(0o755)).unwrap();
}

/// Credentials a home typically holds: none may be visible inside.
const SECRETS: &[&str] = &[
    ".ssh/id_ed25519",
    ".ssh/config",
    ".aws/credentials",
    ".config/gh/hosts.yml",
    ".gitconfig",
    ".git-credentials",
    ".netrc",
    ".npmrc",
    ".pypirc",
    ".cargo/credentials.toml",
    ".cargo/config.toml",
    ".local/share/keyrings/login.keyring",
    ".docker/config.json",
];

/// A home with a small fake toolchain of every preset, their caches, and
/// the usual secrets, owned by `caller`.
fn fake_home(caller: Caller, t: &TestDir) -> PathBuf {
    let home = PathBuf::from(t.mkdir("home"));
    for (rel, name) in [
        (".cargo/bin/fakecargo", "fakecargo"),
        (".pyenv/bin/fakepyenv", "fakepyenv"),
        (".pyenv/shims/fakepython", "fakepython"),
        (".local/bin/fakepipx", "fakepipx"),
        (".nvm/versions/node/v20.1.0/bin/fakenode", "fakenode"),
    ] {
        write_exec(&home.join(rel), &format!("#!/bin/sh\necho {name}-ok\n"));
    }
    for (rel, text) in [
        (".rustup/settings.toml", "version = \"12\"\n"),
        (".local/lib/python3.11/site-packages/fakemod.py", "X = 1\n"),
        (".local/share/pipx/venvs/.keep", ""),
        (".cache/pip/http/marker", "pip-cache\n"),
        (".npm/_cacache/marker", "npm-cache\n"),
        (".cargo/registry/index/marker", "registry\n"),
        (".cargo/git/db/marker", "git\n"),
    ] {
        let p = home.join(rel);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, text).unwrap();
    }
    for rel in SECRETS {
        let p = home.join(rel);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, format!("SECRET {rel}\n")).unwrap();
    }
    caller.own(&home);
    home
}

/// `stockade run --preset P... [--cache MODE] -- sh -c SCRIPT` with `HOME`.
fn run_presets(
    caller: Caller,
    home: &str,
    presets: &[&str],
    cache: Option<&str>,
    script: &str,
) -> Output {
    let mut opts: Vec<&str> = presets.iter().flat_map(|p| ["--preset", p]).collect();
    if let Some(mode) = cache {
        opts.extend(["--cache", mode]);
    }
    run_sh(caller, &[("HOME", home)], &opts, script)
}

// ---------------------------------------------------------------------------------------------
// Toolchains and secrets
// ---------------------------------------------------------------------------------------------

/// All three presets on a fake home: each fake tool runs from `PATH`, the
/// locating variables point at the host paths, `HOME` stays `/tmp`, and
/// every write into a toolchain fails with EROFS; the host home is unchanged.
fn toolchains_visible_and_read_only(caller: Caller) {
    let t = TestDir::new("preset-tools");
    let home = fake_home(caller, &t);
    let h = home.to_str().unwrap();
    let before = snapshot(&home);
    let mut script = Script::new();
    for tool in [
        "fakecargo",
        "fakepyenv",
        "fakepython",
        "fakepipx",
        "fakenode",
    ] {
        script = script.probe(tool, tool);
    }
    script = script
        .probe(
            "vars",
            "echo $HOME $CARGO_HOME $RUSTUP_HOME $PYENV_ROOT $NVM_DIR $PYTHONUSERBASE",
        )
        .probe(
            "userbase_file",
            &format!("cat {h}/.local/lib/python3.11/site-packages/fakemod.py"),
        );
    for (name, path) in [
        ("w_cargo_bin", ".cargo/bin/new"),
        ("w_rustup", ".rustup/new"),
        ("w_pyenv", ".pyenv/new"),
        ("w_local_bin", ".local/bin/new"),
        ("w_nvm", ".nvm/new"),
    ] {
        script = script.probe(name, &format!("echo x > {h}/{path}"));
    }
    script = script.probe("w_tool", &format!("echo x >> {h}/.cargo/bin/fakecargo"));
    let out = run_presets(caller, h, &ALL, None, &script.build());
    assert_code(&out, 0);
    let p = probes(&out);
    for tool in [
        "fakecargo",
        "fakepyenv",
        "fakepython",
        "fakepipx",
        "fakenode",
    ] {
        p.ok(tool, &format!("{tool}-ok"));
    }
    p.ok(
        "vars",
        &format!("/tmp {h}/.cargo {h}/.rustup {h}/.pyenv {h}/.nvm {h}/.local"),
    );
    p.ok("userbase_file", "X = 1");
    for name in [
        "w_cargo_bin",
        "w_rustup",
        "w_pyenv",
        "w_local_bin",
        "w_nvm",
        "w_tool",
    ] {
        p.fails_with(name, "Read-only file system");
    }
    assert_eq!(before, snapshot(&home), "the host home changed");

    // Positive control for the PATH: without a preset none of it exists.
    let out = run_sh(caller, &[("HOME", h)], &[], "fakecargo");
    assert_code(&out, 127);
}

/// Each preset alone and all together, in every cache mode: the home shows
/// exactly the toolchain and cache entries, and no secret is reachable.
fn secrets_invisible(caller: Caller) {
    let t = TestDir::new("preset-secrets");
    let home = fake_home(caller, &t);
    let h = home.to_str().unwrap();
    // What `ls -A` shows of the home, ~/.cache, ~/.local, ~/.local/share and
    // ~/.cargo (None: the directory does not exist inside).
    type Listings = [Option<&'static str>; 5];
    let python = [Some("pip"), Some("bin lib share"), Some("pipx")];
    let cases: [(&[&str], Listings); 4] = [
        (
            &["python"],
            [
                Some(".cache .local .pyenv"),
                python[0],
                python[1],
                python[2],
                None,
            ],
        ),
        (&["node"], [Some(".npm .nvm"), None, None, None, None]),
        (
            &["rust"],
            [
                Some(".cargo .rustup"),
                None,
                None,
                None,
                Some("bin git registry"),
            ],
        ),
        (
            &["python", "node", "rust"],
            [
                Some(".cache .cargo .local .npm .nvm .pyenv .rustup"),
                python[0],
                python[1],
                python[2],
                Some("bin git registry"),
            ],
        ),
    ];
    let dirs = ["", "/.cache", "/.local", "/.local/share", "/.cargo"];
    for mode in ["ro", "overlay", "persist"] {
        for (presets, listings) in cases {
            let mut script = Script::new();
            for (i, d) in dirs.iter().enumerate() {
                script = script.probe(&format!("ls{i}"), &format!("ls -A {h}{d}"));
            }
            for (i, secret) in SECRETS.iter().enumerate() {
                script = script.probe(&format!("s{i}"), &format!("cat {h}/{secret}"));
            }
            let out = run_presets(caller, h, presets, Some(mode), &script.build());
            assert_code(&out, 0);
            let p = probes(&out);
            for (i, want) in listings.iter().enumerate() {
                match want {
                    Some(names) => p.ok(&format!("ls{i}"), names),
                    None => p.fails_with(&format!("ls{i}"), "No such file or directory"),
                }
            }
            for (i, secret) in SECRETS.iter().enumerate() {
                let probe = p.get(&format!("s{i}"));
                assert!(
                    probe.rc != 0 && probe.out.contains("No such file or directory"),
                    "{secret} is reachable with {presets:?} --cache {mode}: {probe:?}"
                );
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Caches
// ---------------------------------------------------------------------------------------------

/// The three cache modes on existing caches. ro: writes fail with EROFS and
/// what is cached is readable; overlay: writes work inside and the host
/// caches are unchanged afterwards; persist: the writes are on the host.
fn cache_modes(caller: Caller) {
    let t = TestDir::new("preset-cache");
    let home = fake_home(caller, &t);
    let h = home.to_str().unwrap();
    let caches = [
        ".cache/pip/http",
        ".npm/_cacache",
        ".cargo/registry/index",
        ".cargo/git/db",
    ];
    let mut script = Script::new();
    for (i, c) in caches.iter().enumerate() {
        script = script
            .probe(&format!("read{i}"), &format!("cat {h}/{c}/marker"))
            .probe(
                &format!("new{i}"),
                &format!("echo fresh > {h}/{c}/new && cat {h}/{c}/new"),
            )
            .probe(&format!("edit{i}"), &format!("echo more >> {h}/{c}/marker"));
    }
    let script = script.build();
    let markers = ["pip-cache", "npm-cache", "registry", "git"];

    let before = snapshot(&home);
    let out = run_presets(caller, h, &ALL, Some("ro"), &script);
    assert_code(&out, 0);
    let p = probes(&out);
    for (i, marker) in markers.iter().enumerate() {
        p.ok(&format!("read{i}"), marker);
        p.fails_with(&format!("new{i}"), "Read-only file system");
        p.fails_with(&format!("edit{i}"), "Read-only file system");
    }
    assert_eq!(before, snapshot(&home), "--cache ro changed the host");

    let out = run_presets(caller, h, &ALL, Some("overlay"), &script);
    assert_code(&out, 0);
    let p = probes(&out);
    for i in 0..caches.len() {
        p.ok(&format!("new{i}"), "fresh");
        p.ok(&format!("edit{i}"), "");
    }
    assert_eq!(before, snapshot(&home), "--cache overlay changed the host");

    let out = run_presets(caller, h, &ALL, Some("persist"), &script);
    assert_code(&out, 0);
    let p = probes(&out);
    for (i, c) in caches.iter().enumerate() {
        p.ok(&format!("new{i}"), "fresh");
        let dir = home.join(c);
        assert_eq!(fs::read_to_string(dir.join("new")).unwrap(), "fresh\n");
        assert_eq!(
            fs::read_to_string(dir.join("marker")).unwrap(),
            format!("{}\nmore\n", markers[i])
        );
        assert_eq!(
            owner(&dir.join("new")),
            (caller.host_uid(), caller.host_gid())
        );
    }
}

/// Caches that do not exist yet: overlay gives a writable empty one and the
/// host gets nothing; ro leaves them out (nothing to read); persist creates
/// them on the host (0700, the caller's) and the writes land there.
fn missing_caches(caller: Caller) {
    let t = TestDir::new("preset-nocache");
    let home = PathBuf::from(t.mkdir("home"));
    write_exec(&home.join(".cargo/bin/fakecargo"), "#!/bin/sh\necho ok\n");
    caller.own(&home);
    let h = home.to_str().unwrap();
    let caches = [".cache/pip", ".npm", ".cargo/registry", ".cargo/git"];
    let mut script = Script::new();
    for (i, c) in caches.iter().enumerate() {
        script = script.probe(
            &format!("w{i}"),
            &format!("echo x > {h}/{c}/f && cat {h}/{c}/f"),
        );
    }
    let script = script
        .probe(
            "vars",
            "echo ${PIP_CACHE_DIR:-unset} ${npm_config_cache:-unset}",
        )
        .build();
    let with = |mode| run_presets(caller, h, &ALL, Some(mode), &script);
    let before = snapshot(&home);

    let out = with("overlay");
    assert_code(&out, 0);
    let p = probes(&out);
    for i in 0..caches.len() {
        p.ok(&format!("w{i}"), "x");
    }
    p.ok("vars", &format!("{h}/.cache/pip {h}/.npm"));
    assert_eq!(
        before,
        snapshot(&home),
        "overlay mode created caches on the host"
    );

    let out = with("ro");
    assert_code(&out, 0);
    let p = probes(&out);
    for i in 0..caches.len() {
        p.fails_with_one_of(&format!("w{i}"), &["Directory nonexistent", "No such file"]);
    }
    p.ok("vars", "unset unset");
    assert_eq!(
        before,
        snapshot(&home),
        "ro mode created caches on the host"
    );

    let out = with("persist");
    assert_code(&out, 0);
    let p = probes(&out);
    for (i, c) in caches.iter().enumerate() {
        p.ok(&format!("w{i}"), "x");
        let dir = home.join(c);
        assert_eq!(fs::read_to_string(dir.join("f")).unwrap(), "x\n");
        let mode = fs::metadata(&dir).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700, "{c}");
        assert_eq!(owner(&dir), (caller.host_uid(), caller.host_gid()), "{c}");
    }
}

// ---------------------------------------------------------------------------------------------
// TMPDIR
// ---------------------------------------------------------------------------------------------

/// Whatever the caller sets or passes through, `TMPDIR` inside names a
/// directory where `mktemp` works: kept when it is writable inside (a
/// `--tmpfs` mount point, a `--rw` directory the caller owns), `/tmp`
/// otherwise (an ungranted host path, a read-only grant, a missing or
/// foreign-owned directory, a relative path).
fn tmpdir_cases(caller: Caller) {
    let t = TestDir::new("tmpdir");
    let mine = t.mkdir("mine");
    caller.own(Path::new(&mine));
    let theirs = t.mkdir("theirs");
    // Owned by someone the sandbox's user never is.
    chown_tree(Path::new(&theirs), 4242, 4242);
    let ro = t.mkdir("ro");
    let script = "echo $TMPDIR; f=$(mktemp) && echo made ${f%/*}";
    let cases: Vec<(Vec<&str>, &str, &str)> = vec![
        // (options, TMPDIR asked for, TMPDIR expected)
        (vec![], "", "/tmp"),
        (vec!["--pass-env", "TMPDIR"], "/var/folders/xy/T", "/tmp"),
        (vec!["--pass-env", "TMPDIR"], "relative/tmp", "/tmp"),
        (vec!["--tmpfs", "/scratch"], "/scratch", "/scratch"),
        (vec!["--tmpfs", "/scratch"], "/scratch/sub", "/tmp"),
        (vec!["--rw", &mine], &mine, &mine),
        (vec!["--rw", &mine], "/tmp/not-there", "/tmp"),
        (vec!["--ro", &ro], &ro, "/tmp"),
        (vec!["--rw", &theirs], &theirs, "/tmp"),
        (vec![], "/dev/shm", "/dev/shm"),
    ];
    for (opts, asked, want) in cases {
        let mut o: Vec<String> = opts.iter().map(|s| s.to_string()).collect();
        let mut env = Vec::new();
        if o.iter().any(|s| s == "--pass-env") {
            env.push(("TMPDIR", asked));
        } else if !asked.is_empty() {
            o.extend(["--env".into(), format!("TMPDIR={asked}")]);
        }
        let o: Vec<&str> = o.iter().map(String::as_str).collect();
        let out = run_sh(caller, &env, &o, script);
        assert_code(&out, 0);
        assert_eq!(
            stdout(&out),
            format!("{want}\nmade {want}\n"),
            "TMPDIR={asked} with {opts:?}\n{}",
            describe(&out)
        );
    }
    assert!(listing(Path::new(&theirs)).is_empty());
    assert_eq!(
        listing(Path::new(&mine)).len(),
        1,
        "mktemp wrote through --rw"
    );
}

// ---------------------------------------------------------------------------------------------
// ssh-agent
// ---------------------------------------------------------------------------------------------

/// A real `ssh-agent` run by the caller, with one key loaded; killed on drop.
struct Agent {
    child: Child,
    socket: String,
    public_key: String,
    fingerprint: String,
}

impl Agent {
    fn start(caller: Caller, t: &TestDir) -> Agent {
        let dir = t.mkdir("agent");
        let key = format!("{dir}/id_ed25519");
        let keygen = Command::new("ssh-keygen")
            .args([
                "-q",
                "-t",
                "ed25519",
                "-N",
                "",
                "-C",
                "stockade-test-key",
                "-f",
                &key,
            ])
            .output()
            .unwrap();
        assert!(keygen.status.success(), "{}", describe(&keygen));
        caller.own(Path::new(&dir));
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o700)).unwrap();
        let socket = format!("{dir}/agent.sock");
        // setpriv execs the agent itself, so the pid we hold is the agent's.
        let mut cmd = Command::new(find_tool("setpriv"));
        cmd.arg(format!("--reuid={}", caller.host_uid()))
            .arg(format!("--regid={}", caller.host_gid()))
            .arg("--clear-groups")
            .args(["ssh-agent", "-D", "-a", &socket])
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let child = cmd.spawn().expect("start ssh-agent");
        let mut agent = Agent {
            child,
            socket,
            public_key: format!("{key}.pub"),
            fingerprint: String::new(),
        };
        for _ in 0..200 {
            if Path::new(&agent.socket).exists() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        let add = agent.as_caller(caller, &["ssh-add", &key]);
        assert!(add.status.success(), "ssh-add: {}", describe(&add));
        let fp = Command::new("ssh-keygen")
            .args(["-lf", &agent.public_key])
            .output()
            .unwrap();
        agent.fingerprint = stdout(&fp).trim().to_string();
        assert!(
            agent.fingerprint.contains("stockade-test-key"),
            "{}",
            agent.fingerprint
        );
        agent
    }

    /// Run a host command as `caller` talking to this agent.
    fn as_caller(&self, caller: Caller, argv: &[&str]) -> Output {
        Command::new(find_tool("setpriv"))
            .arg(format!("--reuid={}", caller.host_uid()))
            .arg(format!("--regid={}", caller.host_gid()))
            .arg("--clear-groups")
            .args(argv)
            .env("SSH_AUTH_SOCK", &self.socket)
            .output()
            .unwrap()
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// With `--ssh-agent`, `ssh-add -l` inside lists the caller's key through
/// `/run/ssh-agent.sock` (with Landlock on), and `ssh-keygen -Y sign` signs
/// with it (the documented risk: the agent signs for the sandbox); the
/// private key, the socket's directory and `~/.ssh` stay invisible. Without
/// the flag the socket is unreachable even with `SSH_AUTH_SOCK` passed
/// through. A missing or non-socket `SSH_AUTH_SOCK` is refused (125).
fn ssh_agent(caller: Caller) {
    let t = TestDir::new("ssh-agent");
    let agent = Agent::start(caller, &t);
    let out_dir = t.mkdir("out");
    caller.own(Path::new(&out_dir));
    let report = format!("{out_dir}/report.json");
    let agent_dir = Path::new(&agent.socket)
        .parent()
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    let script = Script::new()
        .probe("sock", "echo $SSH_AUTH_SOCK; ls -A /run")
        .probe("list", "ssh-add -l")
        .probe(
            "sign",
            &format!(
                "cd /tmp && echo payload > msg && ssh-keygen -q -Y sign -n file -f {} msg \
                 && cp msg.sig {out_dir}/msg.sig && cp msg {out_dir}/msg",
                agent.public_key.replace(&agent_dir, "/key")
            ),
        )
        .probe("private", "cat /key/id_ed25519")
        .probe("dir", &format!("ls {agent_dir}"))
        .build();
    let env = [("SSH_AUTH_SOCK", agent.socket.as_str())];
    let pub_grant = format!("{}:/key/id_ed25519.pub", agent.public_key);
    let opts = [
        "--ssh-agent",
        "--ro",
        &pub_grant,
        "--rw",
        &out_dir,
        "--report",
        &report,
    ];
    let mut cmd = cli(caller, &env);
    let child = cmd
        .args(opts)
        .args(["--", "sh", "-c", &script])
        .stdout(Stdio::piped());
    let child = child.stderr(Stdio::piped()).spawn().unwrap();
    let cli_pid = child.id();
    let out = child.wait_with_output().unwrap();
    assert_code(&out, 0);
    let p = probes(&out);
    p.ok("sock", "/run/ssh-agent.sock ssh-agent.sock");
    p.ok("list", &agent.fingerprint);
    p.ok_any("sign");
    p.fails_with("private", "No such file or directory");
    p.fails_with("dir", "No such file or directory");
    let json: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(&report).unwrap()).unwrap();
    assert!(
        json["layers"]["landlock_abi"].as_u64().unwrap() >= 1,
        "{json}"
    );
    // The signature made inside verifies with the caller's public key.
    let verify = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "ssh-keygen -Y check-novalidate -n file -f {} -s {out_dir}/msg.sig < {out_dir}/msg",
            agent.public_key
        ))
        .output()
        .unwrap();
    assert!(verify.status.success(), "{}", describe(&verify));
    if caller == Caller::Root {
        // The relay's private directory is gone with the CLI.
        let leftovers: Vec<String> = listing(Path::new("/tmp"))
            .into_iter()
            .filter(|n| n.starts_with(&format!("stockade-agent-{cli_pid}-")))
            .collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");
    }

    // Without the flag: same variable passed through, nothing to reach.
    let script = Script::new()
        .probe("list", "ssh-add -l")
        .probe("run", "ls -A /run")
        .build();
    let out = run_sh(caller, &env, &["--pass-env", "SSH_AUTH_SOCK"], &script);
    assert_code(&out, 0);
    let p = probes(&out);
    p.fails_with("list", "No such file or directory");
    p.fails_with("run", "No such file or directory");

    // Refusals: no variable, or not a socket.
    let out = run_sh(caller, &[], &["--ssh-agent"], "echo ran");
    let line = assert_refused(&out);
    assert!(
        line.contains("SSH_AUTH_SOCK") && line.contains("not set"),
        "{line}"
    );
    let out = run_sh(
        caller,
        &[("SSH_AUTH_SOCK", &agent.public_key)],
        &["--ssh-agent"],
        "echo ran",
    );
    let line = assert_refused(&out);
    assert!(
        line.contains("SSH_AUTH_SOCK") && line.contains("not a socket"),
        "{line}"
    );
}

#[test]
fn unknown_preset_and_cache_mode_are_refused() {
    let out = run_sh(Caller::Root, &[], &["--preset", "ruby"], "echo ran");
    let line = assert_refused(&out);
    assert!(
        line.contains("`ruby`") && line.contains("python, node, rust"),
        "{line}"
    );
    let out = run_sh(
        Caller::Root,
        &[],
        &["--preset", "rust", "--cache", "rw"],
        "echo ran",
    );
    let line = assert_refused(&out);
    assert!(line.contains("ro, overlay or persist"), "{line}");
    let out = run_sh(Caller::Root, &[], &["--cache", "ro"], "echo ran");
    let line = assert_refused(&out);
    assert!(line.contains("--preset"), "{line}");
}

// ---------------------------------------------------------------------------------------------
// The README's workflows, offline
// ---------------------------------------------------------------------------------------------

/// The home a caller's workflow runs with: root's own (where CI installs
/// its toolchains), or a fresh one for the test user.
fn workflow_home(caller: Caller, t: &TestDir) -> String {
    match caller {
        Caller::Root => std::env::var("HOME").unwrap_or_else(|_| "/root".into()),
        Caller::User => {
            let h = t.mkdir("home");
            caller.own(Path::new(&h));
            h
        }
    }
}

/// A tiny Python package with an in-tree PEP 517 backend, so `pip install
/// --no-index --no-build-isolation` needs neither network nor setuptools.
fn python_package(dir: &Path) {
    let files = [
        (
            "pyproject.toml",
            "[build-system]\nrequires = []\nbuild-backend = \"tinybuild\"\nbackend-path = [\".\"]\n\n\
             [project]\nname = \"hello\"\nversion = \"0.1\"\n",
        ),
        ("hello/__init__.py", "def hi():\n    return \"hi from hello\"\n"),
        (
            "tinybuild.py",
            r#"import base64, hashlib, os, zipfile

NAME, VERSION = "hello", "0.1"


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    dist = f"{NAME}-{VERSION}.dist-info"
    with open(os.path.join(NAME, "__init__.py"), "rb") as f:
        files = {f"{NAME}/__init__.py": f.read()}
    files[f"{dist}/METADATA"] = f"Metadata-Version: 2.1\nName: {NAME}\nVersion: {VERSION}\n".encode()
    files[f"{dist}/WHEEL"] = b"Wheel-Version: 1.0\nGenerator: tinybuild\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
    record = []
    for path, data in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record.append(f"{path},sha256={digest},{len(data)}")
    files[f"{dist}/RECORD"] = ("\n".join(record + [f"{dist}/RECORD,,"]) + "\n").encode()
    name = f"{NAME}-{VERSION}-py3-none-any.whl"
    with zipfile.ZipFile(os.path.join(wheel_directory, name), "w") as z:
        for path, data in files.items():
            z.writestr(path, data)
    return name


def build_sdist(sdist_directory, config_settings=None):
    raise NotImplementedError("wheels only")
"#,
        ),
    ];
    for (rel, text) in files {
        let p = dir.join(rel);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, text).unwrap();
    }
}

/// README: `stockade run --preset python --rw . -- sh -c 'python3 -m venv
/// .venv && .venv/bin/pip install ...'`. The venv is made inside the
/// sandbox (with the interpreter's own pip, for speed) and the package
/// installed from a local directory.
fn pip_venv(caller: Caller) {
    let t = TestDir::new("pip-venv");
    let home = workflow_home(caller, &t);
    let project = t.mkdir("project");
    python_package(Path::new(&project).join("pkg").as_path());
    caller.own(Path::new(&project));
    let script = "python3 -m venv --system-site-packages --without-pip .venv \
                  && .venv/bin/python -m pip install -q --no-index --no-build-isolation ./pkg \
                  && .venv/bin/python -c 'import hello; print(hello.hi(), hello.__file__)'";
    let out = run_sh(
        caller,
        &[("HOME", &home)],
        &["--preset", "python", "--rw", &project],
        script,
    );
    assert_code(&out, 0);
    let site = format!(
        "{project}/.venv/lib/{}/site-packages",
        venv_python_dir(&project)
    );
    assert_eq!(
        stdout(&out),
        format!("hi from hello {site}/hello/__init__.py\n"),
        "{}",
        describe(&out)
    );
}

/// `pythonX.Y` of the venv made inside.
fn venv_python_dir(project: &str) -> String {
    listing(&Path::new(project).join(".venv/lib"))
        .into_iter()
        .find(|n| n.starts_with("python"))
        .expect("the venv exists on the host (--rw)")
}

/// README: `stockade run --preset node --rw . -- npm install`, with a
/// dependency on a local tarball (it goes through npm's cache, an overlay
/// here: the host cache is not touched).
fn npm_tarball(caller: Caller) {
    let t = TestDir::new("npm");
    let home = workflow_home(caller, &t);
    let project = t.mkdir("project");
    let root = Path::new(&project);
    fs::create_dir_all(root.join("app/vendor/package")).unwrap();
    fs::write(
        root.join("app/vendor/package/package.json"),
        r#"{"name":"greet-lib","version":"1.0.0","main":"index.js"}"#,
    )
    .unwrap();
    fs::write(
        root.join("app/vendor/package/index.js"),
        "module.exports = () => 'hi from greet-lib';\n",
    )
    .unwrap();
    let tar = Command::new("tar")
        .args(["czf", "greet-lib-1.0.0.tgz", "package"])
        .current_dir(root.join("app/vendor"))
        .output()
        .unwrap();
    assert!(tar.status.success(), "{}", describe(&tar));
    fs::remove_dir_all(root.join("app/vendor/package")).unwrap();
    fs::write(
        root.join("app/package.json"),
        r#"{"name":"app","version":"1.0.0","dependencies":{"greet-lib":"file:vendor/greet-lib-1.0.0.tgz"}}"#,
    )
    .unwrap();
    caller.own(root);
    let app = format!("{project}/app");
    let script = "npm install --offline --no-audit --no-fund --loglevel=error \
                  && node -e 'console.log(require(\"greet-lib\")())'";
    let out = run_sh(
        caller,
        &[("HOME", &home)],
        &["--preset", "node", "--rw", &app],
        script,
    );
    assert_code(&out, 0);
    assert!(
        stdout(&out).ends_with("hi from greet-lib\n"),
        "{}",
        describe(&out)
    );
    assert!(root.join("app/node_modules/greet-lib/index.js").is_file());
}

/// README: `stockade run --preset rust --rw . -- cargo build --offline`,
/// for a crate whose dependency is vendored (`[source]` replacement). The
/// test user gets the host's rustup read-only at its own home's paths.
fn cargo_vendored(caller: Caller) {
    let t = TestDir::new("cargo");
    let project = t.mkdir("project");
    let root = Path::new(&project);
    for (rel, text) in [
        (
            "app/vendor/greet/Cargo.toml",
            "[package]\nname = \"greet\"\nversion = \"1.0.0\"\nedition = \"2021\"\n",
        ),
        ("app/vendor/greet/src/lib.rs", "pub fn hi() -> &'static str { \"hi from greet\" }\n"),
        ("app/vendor/greet/.cargo-checksum.json", "{\"files\":{},\"package\":null}\n"),
        (
            "app/Cargo.toml",
            "[package]\nname = \"app\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n\
             [dependencies]\ngreet = \"1.0\"\n",
        ),
        ("app/src/main.rs", "fn main() { println!(\"{}\", greet::hi()); }\n"),
        (
            "app/.cargo/config.toml",
            "[source.crates-io]\nreplace-with = \"vendored\"\n\n[source.vendored]\ndirectory = \"vendor\"\n",
        ),
    ] {
        let p = root.join(rel);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, text).unwrap();
    }
    caller.own(root);
    let app = format!("{project}/app");
    let script = "cargo build --offline -q && ./target/debug/app";
    let opts = ["--preset", "rust", "--rw", &app];
    let out = match caller {
        Caller::Root => {
            let home = workflow_home(caller, &t);
            run_sh(caller, &[("HOME", &home)], &opts, script)
        }
        Caller::User => {
            // The host's rustup lives under root's 0700 home: show it at the
            // user's home's paths, in a mount namespace of this run only.
            let real = std::env::var("HOME").unwrap_or_else(|_| "/root".into());
            let home = PathBuf::from(workflow_home(caller, &t));
            let mut binds = String::new();
            for rel in [".rustup", ".cargo/bin"] {
                fs::create_dir_all(home.join(rel)).unwrap();
                binds.push_str(&format!(
                    "mount --bind {real}/{rel} {h}/{rel} && ",
                    h = home.display()
                ));
            }
            caller.own(&home);
            let inner = cli(caller, &[("HOME", home.to_str().unwrap())]);
            let argv: Vec<String> = std::iter::once(inner.get_program())
                .chain(inner.get_args())
                .map(|a| shq(a.to_str().unwrap()))
                .chain(opts.iter().map(|a| shq(a)))
                .chain(["--", "sh", "-c", script].iter().map(|a| shq(a)))
                .collect();
            Command::new(find_tool("unshare"))
                .args(["-m", "--propagation", "private", "--", "sh", "-c"])
                .arg(format!("{binds}cd / && exec {}", argv.join(" ")))
                .stdin(Stdio::null())
                .output()
                .unwrap()
        }
    };
    assert_code(&out, 0);
    assert_eq!(stdout(&out), "hi from greet\n", "{}", describe(&out));
}
