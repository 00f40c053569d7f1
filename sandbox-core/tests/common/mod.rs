//! Shared helpers for the integration tests: root check, scratch workspaces,
//! host /proc scans, and re-running a test as the unprivileged test user.
//! std + libc only.
#![allow(dead_code)]

pub mod procs;

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};

/// Every test here needs root (CI runs them as root): fail loudly otherwise.
pub fn require_root() {
    // SAFETY: geteuid has no preconditions and cannot fail.
    let euid = unsafe { libc::geteuid() };
    assert_eq!(
        euid, 0,
        "the stockade integration tests must run as root (euid is {euid})"
    );
}

/// The unprivileged account the tests run as.
pub const TEST_USER: &str = "stockade-test";

/// Set for the body run by [`run_as_test_user`].
const TEST_USER_RUN: &str = "STOCKADE_TEST_USER_RUN";

/// Runs the `#[ignore]`d test `body` of this test binary as [`TEST_USER`]
/// (created if missing), with `envs` set; asserts that it succeeded and
/// printed `done`. The binary is run from a copy in /tmp: Cargo's target
/// dir may sit where the test user cannot traverse.
pub fn run_as_test_user(body: &str, envs: &[(&str, &OsStr)], done: &str) {
    require_root();
    ensure_test_user();
    let bin = Path::new("/tmp").join(format!("stockade-{body}-{}", std::process::id()));
    std::fs::copy(std::env::current_exe().unwrap(), &bin).unwrap();
    std::fs::set_permissions(&bin, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let out = Command::new("/usr/sbin/runuser")
        .args(["-u", TEST_USER, "--"])
        .arg(&bin)
        .args(["--exact", body, "--ignored", "--nocapture"])
        .env(TEST_USER_RUN, "1")
        .envs(envs.iter().copied())
        .current_dir("/")
        .output()
        .unwrap();
    let _ = std::fs::remove_file(&bin);
    let all = format!("{}{}", text(&out.stdout), text(&out.stderr));
    assert!(out.status.success(), "{all}");
    assert!(all.contains(done), "{all}");
}

/// True in the body run by [`run_as_test_user`], which then must not be
/// root; false when the body is run any other way (it should then return).
pub fn in_test_user_run() -> bool {
    if std::env::var_os(TEST_USER_RUN).is_none() {
        return false;
    }
    // SAFETY: geteuid has no preconditions and cannot fail.
    let euid = unsafe { libc::geteuid() };
    assert_ne!(euid, 0, "must run as the unprivileged test user");
    true
}

/// [`TEST_USER`] (`useradd -M`), created if missing.
fn ensure_test_user() {
    let out = Command::new("useradd")
        .args(["-M", "-s", "/bin/sh", TEST_USER])
        .output()
        .expect("run useradd");
    // 9: the user exists already.
    assert!(
        out.status.success() || out.status.code() == Some(9),
        "useradd: {}",
        text(&out.stderr)
    );
}

/// A scratch directory under Cargo's per-target tmp dir, removed on drop.
///
/// It lives outside `/tmp` on purpose: inside the sandbox `/tmp` is a private
/// tmpfs, and the tests should see the grant at the same path as the host.
pub struct Workspace {
    path: PathBuf,
}

impl Workspace {
    pub fn new(tag: &str) -> Self {
        static N: AtomicU64 = AtomicU64::new(0);
        let base = Path::new(env!("CARGO_TARGET_TMPDIR"));
        let path = base.join(format!(
            "stockade-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).expect("create workspace");
        Workspace { path }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn str(&self) -> &str {
        self.path.to_str().expect("utf-8 workspace path")
    }
}

impl Drop for Workspace {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// Host pids whose command line contains `needle`.
pub fn host_pids_with_cmdline(needle: &str) -> Vec<u32> {
    let me = std::process::id();
    let mut out = Vec::new();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return out;
    };
    for e in dir.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        if pid == me {
            continue;
        }
        if let Ok(raw) = std::fs::read(format!("/proc/{pid}/cmdline")) {
            let text = String::from_utf8_lossy(&raw).replace('\0', " ");
            if text.contains(needle) {
                out.push(pid);
            }
        }
    }
    out
}

/// Number of open descriptors of this process.
pub fn open_fd_count() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .expect("read /proc/self/fd")
        .count()
}

/// Processes whose parent is this process: (pid, state, comm).
pub fn our_children() -> Vec<(u32, String, String)> {
    let me = std::process::id();
    let mut out = Vec::new();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return out;
    };
    for e in dir.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) else {
            continue;
        };
        let field = |k: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(k).map(|v| v.trim().to_string()))
                .unwrap_or_default()
        };
        if field("PPid:").parse::<u32>().ok() == Some(me) {
            out.push((pid, field("State:"), field("Name:")));
        }
    }
    out
}

/// Lossy UTF-8 of captured output.
pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Write `files` (relative path, contents) under `root`, creating parent
/// directories as needed.
pub fn write_tree(root: &Path, files: &[(&str, &str)]) {
    for (rel, contents) in files {
        let p = root.join(rel);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent)
                .unwrap_or_else(|e| panic!("create {}: {e}", parent.display()));
        }
        std::fs::write(&p, contents).unwrap_or_else(|e| panic!("write {}: {e}", p.display()));
    }
}
