//! Host process trees seen through /proc, for the attestation tests: start a
//! tree in a process group of its own, find a process in it, kill it all.
//!
//! Shared by both attest test binaries: `stockade`'s (through `common`) and
//! `stockade-cli`'s (which includes this file by path). std + libc only.

use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A hand-made half sandbox: every namespace but the network one, no
/// seccomp, `no_new_privs` set, root inside (mapped to the caller), and
/// `sleep` below a `sh` that is PID 1 of the new pid namespace.
pub const HALF_SANDBOX: &[&str] = &[
    "unshare",
    "--user",
    "--map-root-user",
    "--pid",
    "--mount",
    "--uts",
    "--ipc",
    "--cgroup",
    "--time",
    "--fork",
    "sh",
    "-c",
    "setpriv --no-new-privs sleep 30 & wait",
];

/// (ppid, comm) of a process.
pub fn stat(pid: u32) -> Option<(u32, String)> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (open, close) = (s.find('(')?, s.rfind(')')?);
    let ppid = s[close + 1..].split_whitespace().nth(1)?.parse().ok()?;
    Some((ppid, s[open + 1..close].to_string()))
}

/// Every process below `root`, at any depth.
pub fn descendants(root: u32) -> Vec<u32> {
    let all: Vec<(u32, u32)> = std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse().ok())
        .filter_map(|p| Some((p, stat(p)?.0)))
        .collect();
    let mut out = vec![root];
    let mut i = 0;
    while i < out.len() {
        let parent = out[i];
        out.extend(all.iter().filter(|(_, pp)| *pp == parent).map(|(p, _)| *p));
        i += 1;
    }
    out.remove(0);
    out
}

/// The first process under `ancestor` (at any depth) whose comm is `comm`,
/// once it has exec'd; panics after 10 s.
pub fn wait_for(ancestor: u32, comm: &str) -> u32 {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(p) = descendants(ancestor)
            .into_iter()
            .find(|&p| stat(p).is_some_and(|(_, c)| c == comm))
        {
            return p;
        }
        assert!(Instant::now() < deadline, "no `{comm}` under {ancestor}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A pid that no process has right now (the highest free one).
pub fn free_pid() -> u32 {
    let max: u32 = std::fs::read_to_string("/proc/sys/kernel/pid_max")
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    (2..max)
        .rev()
        .find(|p| !std::path::Path::new(&format!("/proc/{p}")).exists())
        .unwrap()
}

/// Whether our own network namespace has anything besides `lo` (then a
/// process sharing it must fail `loopback-only`).
pub fn host_net_beyond_lo() -> bool {
    let dev = std::fs::read_to_string("/proc/self/net/dev").unwrap();
    dev.lines()
        .skip(2)
        .filter_map(|l| l.split_once(':'))
        .any(|(name, _)| name.trim() != "lo")
}

/// A test's helper process, leader of its own process group, all of which
/// is killed on drop.
pub struct Group(std::process::Child);

impl Group {
    pub fn spawn(cmd: &mut Command) -> Group {
        Group(
            cmd.process_group(0)
                .stdin(Stdio::null())
                .spawn()
                .expect("spawn"),
        )
    }

    pub fn pid(&self) -> u32 {
        self.0.id()
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        // SAFETY: kill(2) on our own child's process group; no memory involved.
        unsafe { libc::kill(-(self.0.id() as i32), libc::SIGKILL) };
        let _ = self.0.wait();
    }
}
