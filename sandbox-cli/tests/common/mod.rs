//! Shared machinery of the security suite: it drives the `stockade` binary exactly as an
//! outside test suite would, as root and as the unprivileged user `stockade-test`.
//!
//! Everything here panics loudly when the suite is not run as root: CI runs it as root, and a
//! suite that quietly skipped its containment checks would be worse than none.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::ffi::{CString, OsStr};
use std::fs;
use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

/// Name of the unprivileged account the `User` cases run as.
pub const TEST_USER: &str = "stockade-test";

/// Who invokes the CLI.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Caller {
    /// The test process itself (root in CI).
    Root,
    /// `runuser -u stockade-test -- <copy of stockade> run ...`.
    User,
}

impl Caller {
    /// Host uid the caller runs as.
    pub fn host_uid(self) -> u32 {
        match self {
            Caller::Root => 0,
            Caller::User => test_user().uid,
        }
    }

    /// Host gid the caller runs as.
    pub fn host_gid(self) -> u32 {
        match self {
            Caller::Root => 0,
            Caller::User => test_user().gid,
        }
    }

    /// Make `path` (and everything under it) belong to the caller, so it can write there.
    /// A no-op for root.
    pub fn own(self, path: &Path) {
        if self == Caller::User {
            chown_tree(path, self.host_uid(), self.host_gid());
        }
    }
}

/// Generate one `#[test]` per caller for a body `fn(Caller)`, with explicit names:
/// `for_each_caller! { root_x, user_x => x; }` (needs `#[macro_use] mod common;`).
macro_rules! for_each_caller {
    ($( $root:ident, $user:ident => $body:ident; )*) => { $(
        #[test]
        fn $root() {
            crate::common::require_root();
            $body(crate::common::Caller::Root)
        }
        #[test]
        fn $user() {
            crate::common::require_root();
            $body(crate::common::Caller::User)
        }
    )* };
}

/// Panic unless the tests run as root.
pub fn require_root() {
    // SAFETY: geteuid has no preconditions and cannot fail.
    let euid = unsafe { libc::geteuid() };
    assert_eq!(
        euid, 0,
        "the stockade security suite must run as root (CI runs it as root; it creates the \
         user `{TEST_USER}`, files in /root and chowns test dirs). Refusing to pass silently: \
         run `sudo -E cargo test -p stockade-cli` or run it in the CI container."
    );
}

// ---------------------------------------------------------------------------------------------
// The unprivileged user and its copy of the binaries
// ---------------------------------------------------------------------------------------------

/// uid/gid of the test user.
#[derive(Debug, Clone, Copy)]
pub struct TestUser {
    pub uid: u32,
    pub gid: u32,
}

/// The test user, created (`useradd -M`) if missing.
pub fn test_user() -> TestUser {
    static USER: OnceLock<TestUser> = OnceLock::new();
    *USER.get_or_init(|| {
        require_root();
        let out = Command::new(find_tool("useradd"))
            .args(["-M", "-s", "/bin/sh", TEST_USER])
            .output()
            .expect("cannot run useradd");
        // 9 = "username already in use": fine.
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success()
                || out.status.code() == Some(9)
                || stderr.contains("already exists"),
            "useradd -M {TEST_USER} failed: {:?} {stderr}",
            out.status
        );
        let id = |flag: &str| -> u32 {
            let o = Command::new("id")
                .args([flag, TEST_USER])
                .output()
                .expect("cannot run id");
            assert!(
                o.status.success(),
                "id {flag} {TEST_USER} failed: {}",
                String::from_utf8_lossy(&o.stderr)
            );
            String::from_utf8_lossy(&o.stdout)
                .trim()
                .parse()
                .expect("id printed a number")
        };
        let user = TestUser {
            uid: id("-u"),
            gid: id("-g"),
        };
        assert_ne!(user.uid, 0, "{TEST_USER} must not be root");
        user
    })
}

static BIN_DIR: OnceLock<PathBuf> = OnceLock::new();

extern "C" fn remove_bin_dir() {
    if let Some(dir) = BIN_DIR.get() {
        let _ = fs::remove_dir_all(dir);
    }
}

/// The CLI under test, as built by cargo.
pub fn stockade_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_stockade"))
}

/// A copy of `stockade` and `stockade-init` in a fresh 0755 dir under /tmp that the test user
/// can execute (target/ usually sits under a dir it cannot traverse).
pub fn user_stockade_bin() -> PathBuf {
    BIN_DIR
        .get_or_init(|| {
            let src = stockade_bin();
            let init = src.with_file_name("stockade-init");
            assert!(
                init.is_file(),
                "stockade-init not found next to {} (run `cargo build` first)",
                src.display()
            );
            let dir = PathBuf::from(format!(
                "/tmp/stockade-it-bin-{}-{}",
                std::process::id(),
                random_hex(8)
            ));
            fs::create_dir(&dir).expect("create bin dir");
            fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).expect("chmod bin dir");
            for (from, name) in [(&src, "stockade"), (&init, "stockade-init")] {
                let to = dir.join(name);
                fs::copy(from, &to)
                    .unwrap_or_else(|e| panic!("copy {} -> {}: {e}", from.display(), to.display()));
                fs::set_permissions(&to, fs::Permissions::from_mode(0o755)).expect("chmod binary");
            }
            // SAFETY: registering a plain extern "C" fn without captured state.
            unsafe { libc::atexit(remove_bin_dir) };
            dir
        })
        .join("stockade")
}

/// Full path of a host tool (sbin is not always on the test's PATH).
pub fn find_tool(name: &str) -> PathBuf {
    for dir in [
        "/usr/sbin",
        "/sbin",
        "/usr/bin",
        "/bin",
        "/usr/local/sbin",
        "/usr/local/bin",
    ] {
        let p = Path::new(dir).join(name);
        if p.is_file() {
            return p;
        }
    }
    panic!("{name} not found on this host: the security suite needs it");
}

// ---------------------------------------------------------------------------------------------
// Running the CLI
// ---------------------------------------------------------------------------------------------

/// `stockade run` for `caller`, without arguments yet: add them, environment, fds, then spawn.
pub fn command(caller: Caller) -> Command {
    require_root();
    let mut cmd = match caller {
        Caller::Root => Command::new(stockade_bin()),
        Caller::User => {
            test_user();
            let bin = user_stockade_bin();
            let mut c = Command::new(find_tool("runuser"));
            c.args(["-u", TEST_USER, "--"]).arg(bin);
            c
        }
    };
    // A host cwd every caller can enter; the CLI must not depend on it.
    cmd.current_dir("/").arg("run").stdin(Stdio::null());
    cmd
}

/// Run `stockade run ARGS...` as `caller` and collect its output.
pub fn run<S: AsRef<OsStr>>(caller: Caller, args: &[S]) -> Output {
    let mut cmd = command(caller);
    cmd.args(args);
    cmd.output().expect("cannot spawn the stockade CLI")
}

/// `stockade run OPTS... -- sh -c SCRIPT` as `caller`.
pub fn sh<S: AsRef<OsStr>>(caller: Caller, opts: &[S], script: &str) -> Output {
    let mut cmd = command(caller);
    cmd.args(opts).args(["--", "sh", "-c", script]);
    cmd.output().expect("cannot spawn the stockade CLI")
}

/// The exit code (None when the CLI itself died of a signal).
pub fn code(out: &Output) -> Option<i32> {
    out.status.code()
}

pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Everything about a run, for assertion messages.
pub fn describe(out: &Output) -> String {
    format!(
        "status={:?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
        out.status,
        stdout(out),
        stderr(out)
    )
}

/// Assert the CLI exited with `expected`.
#[track_caller]
pub fn assert_code(out: &Output, expected: i32) {
    assert_eq!(
        code(out),
        Some(expected),
        "unexpected exit status\n{}",
        describe(out)
    );
}

/// Assert a setup refusal: exit 125 and exactly one non-empty line on stderr, naming stockade.
#[track_caller]
pub fn assert_refused(out: &Output) -> String {
    assert_code(out, 125);
    let err = stderr(out);
    let lines: Vec<&str> = err.trim_end_matches('\n').lines().collect();
    assert_eq!(
        lines.len(),
        1,
        "a refusal must be a single stderr line\n{}",
        describe(out)
    );
    assert!(
        lines[0].starts_with("stockade: ") && lines[0].len() > "stockade: ".len(),
        "{}",
        describe(out)
    );
    lines[0].to_string()
}

// ---------------------------------------------------------------------------------------------
// Probing scripts: `@name rc=N out=...` lines
// ---------------------------------------------------------------------------------------------

/// Quote `s` for sh as one word.
pub fn shq(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// Builds a `sh -c` script of probes; each probe runs `CMD` in a child `sh -c` and prints one
/// machine-checkable line `@NAME rc=RC out=STDOUT+STDERR (newlines as spaces)`.
#[derive(Default)]
pub struct Script {
    body: String,
}

impl Script {
    pub fn new() -> Self {
        let mut s = Script::default();
        s.body.push_str(
            "probe() { __o=$(sh -c \"$2\" 2>&1); __r=$?; \
             printf '@%s rc=%s out=%s\\n' \"$1\" \"$__r\" \"$(printf %s \"$__o\" | tr '\\n' ' ')\"; }\n",
        );
        s
    }

    /// Run `cmd` and record its status and combined output under `name`.
    pub fn probe(mut self, name: &str, cmd: &str) -> Self {
        assert!(!name.contains(' '), "probe names are single words");
        self.body
            .push_str(&format!("probe {} {}\n", name, shq(cmd)));
        self
    }

    /// A raw line of shell.
    pub fn raw(mut self, line: &str) -> Self {
        self.body.push_str(line);
        self.body.push('\n');
        self
    }

    pub fn build(mut self) -> String {
        self.body.push_str("echo @done\n");
        self.body
    }
}

/// One probe's result.
#[derive(Debug, Clone)]
pub struct Probe {
    pub rc: i32,
    pub out: String,
}

/// Parse the probe lines of a run; panics (with the whole output) unless the script reached its
/// end, so a sandbox that never ran the script cannot pass.
#[track_caller]
pub fn probes(out: &Output) -> Probes {
    let text = stdout(out);
    assert!(
        text.lines().any(|l| l == "@done"),
        "the probe script did not run to its end\n{}",
        describe(out)
    );
    let mut map = BTreeMap::new();
    for line in text.lines() {
        let Some(rest) = line.strip_prefix('@') else {
            continue;
        };
        let Some((name, rest)) = rest.split_once(" rc=") else {
            continue;
        };
        let (rc, o) = rest.split_once(" out=").unwrap_or((rest, ""));
        map.insert(
            name.to_string(),
            Probe {
                rc: rc.parse().unwrap_or(-1),
                out: o.trim_end().to_string(),
            },
        );
    }
    Probes {
        map,
        all: describe(out),
    }
}

pub struct Probes {
    map: BTreeMap<String, Probe>,
    all: String,
}

impl Probes {
    #[track_caller]
    pub fn get(&self, name: &str) -> &Probe {
        self.map
            .get(name)
            .unwrap_or_else(|| panic!("probe {name} missing\n{}", self.all))
    }

    /// Assert the probe succeeded and printed exactly `expected` (trailing space trimmed).
    #[track_caller]
    pub fn ok(&self, name: &str, expected: &str) {
        let p = self.get(name);
        assert!(
            p.rc == 0 && p.out == expected,
            "probe {name}: want rc=0 out={expected:?}, got {p:?}\n{}",
            self.all
        );
    }

    /// Assert the probe succeeded; return its output.
    #[track_caller]
    pub fn ok_any(&self, name: &str) -> String {
        let p = self.get(name);
        assert!(
            p.rc == 0,
            "probe {name}: want rc=0, got {p:?}\n{}",
            self.all
        );
        p.out.clone()
    }

    /// Assert the probe failed (rc != 0) and its output names `errno_text`.
    #[track_caller]
    pub fn fails_with(&self, name: &str, errno_text: &str) {
        let p = self.get(name);
        assert!(
            p.rc != 0 && p.out.contains(errno_text),
            "probe {name}: want failure with {errno_text:?}, got {p:?}\n{}",
            self.all
        );
    }

    /// Assert the probe failed with any one of `errno_texts`.
    #[track_caller]
    pub fn fails_with_one_of(&self, name: &str, errno_texts: &[&str]) {
        let p = self.get(name);
        assert!(
            p.rc != 0 && errno_texts.iter().any(|t| p.out.contains(t)),
            "probe {name}: want failure with one of {errno_texts:?}, got {p:?}\n{}",
            self.all
        );
    }

    pub fn all(&self) -> &str {
        &self.all
    }
}

// ---------------------------------------------------------------------------------------------
// Temp dirs, randomness, host inspection
// ---------------------------------------------------------------------------------------------

/// Hex string of `bytes` random bytes.
pub fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut buf))
        .expect("read /dev/urandom");
    buf.iter().map(|b| format!("{b:02x}")).collect()
}

/// A random decimal number usable as the fraction of `sleep N.FRACTION` (GNU sleep accepts it),
/// so the marker is both a valid argument and unique on the host.
pub fn random_digits() -> String {
    let mut buf = [0u8; 8];
    fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut buf))
        .expect("read /dev/urandom");
    format!("{:012}", u64::from_le_bytes(buf) % 1_000_000_000_000)
}

/// A per-test dir under /tmp, mode 0755 (the test user can traverse it), removed on drop.
pub struct TestDir {
    path: PathBuf,
}

impl TestDir {
    pub fn new(tag: &str) -> Self {
        static N: AtomicU64 = AtomicU64::new(0);
        require_root();
        let path = PathBuf::from(format!(
            "/tmp/stockade-it-{tag}-{}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed),
            random_hex(4)
        ));
        fs::create_dir(&path).unwrap_or_else(|e| panic!("create {}: {e}", path.display()));
        fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).expect("chmod test dir");
        TestDir { path }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// `self/rel` as a string (paths here are plain ASCII).
    pub fn join(&self, rel: &str) -> String {
        self.path
            .join(rel)
            .to_str()
            .expect("ascii path")
            .to_string()
    }

    /// Create a 0755 subdir (with parents).
    pub fn mkdir(&self, rel: &str) -> String {
        let p = self.path.join(rel);
        fs::create_dir_all(&p).expect("mkdir");
        fs::set_permissions(&p, fs::Permissions::from_mode(0o755)).expect("chmod dir");
        p.to_str().unwrap().to_string()
    }

    /// Write a 0644 file (parents created).
    pub fn write(&self, rel: &str, content: &[u8]) -> String {
        let p = self.path.join(rel);
        if let Some(parent) = p.parent() {
            fs::create_dir_all(parent).expect("mkdir parent");
        }
        fs::write(&p, content).expect("write file");
        fs::set_permissions(&p, fs::Permissions::from_mode(0o644)).expect("chmod file");
        p.to_str().unwrap().to_string()
    }
}

impl Drop for TestDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.path);
    }
}

/// A file that exists on the host for the duration of a test and is removed on drop.
pub struct HostFile {
    pub path: PathBuf,
}

impl HostFile {
    pub fn create(path: PathBuf, content: &[u8], mode: u32) -> Self {
        fs::write(&path, content).unwrap_or_else(|e| panic!("create {}: {e}", path.display()));
        fs::set_permissions(&path, fs::Permissions::from_mode(mode)).expect("chmod");
        HostFile { path }
    }
}

impl Drop for HostFile {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.path);
    }
}

/// lchown every entry under `root` (and `root` itself).
pub fn chown_tree(root: &Path, uid: u32, gid: u32) {
    let c = CString::new(root.as_os_str().as_bytes()).expect("path without NUL");
    // SAFETY: `c` is a valid NUL-terminated path for the duration of the call.
    let rc = unsafe { libc::lchown(c.as_ptr(), uid, gid) };
    assert_eq!(
        rc,
        0,
        "lchown {}: {}",
        root.display(),
        std::io::Error::last_os_error()
    );
    if fs::symlink_metadata(root)
        .map(|m| m.is_dir())
        .unwrap_or(false)
    {
        for e in fs::read_dir(root).expect("read_dir") {
            chown_tree(&e.expect("dir entry").path(), uid, gid);
        }
    }
}

/// (uid, gid) of a host path.
pub fn owner(path: &Path) -> (u32, u32) {
    let m = fs::symlink_metadata(path).unwrap_or_else(|e| panic!("stat {}: {e}", path.display()));
    (m.uid(), m.gid())
}

/// Sorted names in a host dir.
pub fn listing(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("read_dir {}: {e}", dir.display()))
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// Set an extended attribute (no symlink following).
pub fn set_xattr(path: &Path, name: &str, value: &[u8]) {
    let p = CString::new(path.as_os_str().as_bytes()).unwrap();
    let n = CString::new(name).unwrap();
    // SAFETY: valid NUL-terminated strings and a buffer of value.len() bytes.
    let rc = unsafe {
        libc::lsetxattr(
            p.as_ptr(),
            n.as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            0,
        )
    };
    assert_eq!(
        rc,
        0,
        "lsetxattr {} {name}: {}",
        path.display(),
        std::io::Error::last_os_error()
    );
}

/// All extended attributes of `path` (names via llistxattr, values via lgetxattr), sorted.
pub fn xattrs(path: &Path) -> BTreeMap<String, Vec<u8>> {
    let p = CString::new(path.as_os_str().as_bytes()).unwrap();
    // SAFETY: a NULL buffer of size 0 asks for the needed size.
    let size = unsafe { libc::llistxattr(p.as_ptr(), std::ptr::null_mut(), 0) };
    assert!(
        size >= 0,
        "llistxattr {}: {}",
        path.display(),
        std::io::Error::last_os_error()
    );
    let mut names = vec![0u8; size as usize];
    // SAFETY: `names` has `names.len()` writable bytes.
    let got = unsafe { libc::llistxattr(p.as_ptr(), names.as_mut_ptr().cast(), names.len()) };
    assert!(
        got >= 0,
        "llistxattr {}: {}",
        path.display(),
        std::io::Error::last_os_error()
    );
    names.truncate(got as usize);
    let mut map = BTreeMap::new();
    for name in names.split(|b| *b == 0).filter(|n| !n.is_empty()) {
        let n = CString::new(name).unwrap();
        // SAFETY: size query with a NULL buffer.
        let vsize = unsafe { libc::lgetxattr(p.as_ptr(), n.as_ptr(), std::ptr::null_mut(), 0) };
        assert!(vsize >= 0, "lgetxattr: {}", std::io::Error::last_os_error());
        let mut v = vec![0u8; vsize as usize];
        // SAFETY: `v` has `v.len()` writable bytes.
        let g = unsafe { libc::lgetxattr(p.as_ptr(), n.as_ptr(), v.as_mut_ptr().cast(), v.len()) };
        assert!(g >= 0, "lgetxattr: {}", std::io::Error::last_os_error());
        v.truncate(g as usize);
        map.insert(String::from_utf8_lossy(name).into_owned(), v);
    }
    map
}

/// Host processes whose command line contains `marker`: (pid, state, cmdline with spaces).
/// The test process itself is never included.
pub fn procs_with(marker: &str) -> Vec<(i32, char, String)> {
    let me = std::process::id() as i32;
    let mut found = Vec::new();
    let Ok(entries) = fs::read_dir("/proc") else {
        return found;
    };
    for e in entries.flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        if pid == me {
            continue;
        }
        let Ok(raw) = fs::read(e.path().join("cmdline")) else {
            continue;
        };
        let cmdline = String::from_utf8_lossy(&raw).replace('\0', " ");
        if !cmdline.contains(marker) {
            continue;
        }
        let state = fs::read_to_string(e.path().join("stat"))
            .ok()
            .and_then(|s| {
                s.rsplit_once(") ")
                    .map(|(_, rest)| rest.chars().next().unwrap_or('?'))
            })
            .unwrap_or('?');
        found.push((pid, state, cmdline.trim_end().to_string()));
    }
    found
}

/// The host's hostname, from the kernel.
pub fn host_hostname() -> String {
    fs::read_to_string("/proc/sys/kernel/hostname")
        .expect("read hostname")
        .trim()
        .to_string()
}
