//! cgroup v2: one directory under the detected base.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;

use super::detect::V2Base;
use super::{
    io_err, keyed, kill_loop, make_dir, parse_u64, read_optional, remove_dir, write_file,
    CgroupError, CgroupLimits, CgroupStats, CPU_PERIOD_US, KILL_DEADLINE,
};

#[derive(Debug)]
pub(super) struct V2Cgroup {
    pub(super) dir: PathBuf,
    /// The directory, open (`O_RDONLY | O_DIRECTORY`), for `CLONE_INTO_CGROUP`.
    fd: OwnedFd,
    pub(super) swap_capped: bool,
}

impl V2Cgroup {
    pub(super) fn create(
        base: &V2Base,
        name: &str,
        limits: &CgroupLimits,
    ) -> Result<V2Cgroup, CgroupError> {
        if !base.enable.is_empty() {
            // Only offered by detection where the kernel allows it: the real root cgroup
            // or a delegated cgroup without processes.
            let value = base
                .enable
                .iter()
                .map(|c| format!("+{}", c.name()))
                .collect::<Vec<_>>()
                .join(" ");
            write_file("cgroup", &base.base.join("cgroup.subtree_control"), &value)?;
        }
        let dir = base.base.join(name);
        make_dir("cgroup", &dir)?;
        // From here on, any error removes the directory again.
        let opened = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_DIRECTORY | libc::O_CLOEXEC)
            .open(&dir);
        let fd = match opened {
            Ok(f) => OwnedFd::from(f),
            Err(e) => {
                let _ = std::fs::remove_dir(&dir);
                return Err(io_err("cgroup", "open".into(), &dir, e));
            }
        };
        let mut cg = V2Cgroup {
            dir,
            fd,
            swap_capped: false,
        };
        if let Err(e) = cg.apply(limits) {
            let _ = remove_dir("cgroup", &cg.dir, KILL_DEADLINE);
            return Err(e);
        }
        Ok(cg)
    }

    fn apply(&mut self, limits: &CgroupLimits) -> Result<(), CgroupError> {
        let d = &self.dir;
        if let Some(bytes) = limits.memory {
            write_file("memory", &d.join("memory.max"), &bytes.to_string())?;
            let swap = d.join("memory.swap.max");
            if swap.exists() {
                write_file("memory", &swap, "0")?;
                self.swap_capped = true;
            }
        }
        if let Some(n) = limits.pids {
            write_file("pids", &d.join("pids.max"), &n.to_string())?;
        }
        if let Some(m) = limits.cpu_millis {
            let quota = CgroupLimits::cpu_quota_us(m);
            write_file(
                "cpu",
                &d.join("cpu.max"),
                &format!("{quota} {CPU_PERIOD_US}"),
            )?;
        }
        if let Some(w) = limits.io_weight {
            write_file("io", &d.join("io.weight"), &format!("default {w}"))?;
        }
        Ok(())
    }

    pub(super) fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    pub(super) fn attach(&self, pid: u32) -> Result<(), CgroupError> {
        write_file("cgroup", &self.dir.join("cgroup.procs"), &pid.to_string())
    }

    pub(super) fn kill(&self) -> Result<(), CgroupError> {
        let file = self.dir.join("cgroup.kill");
        if file.exists() {
            // Atomic for the whole subtree, forks included (5.14+); then wait for exit.
            write_file("cgroup", &file, "1")?;
        }
        kill_loop(&self.dir, KILL_DEADLINE)
    }

    pub(super) fn stats(&self) -> Result<CgroupStats, CgroupError> {
        let d = &self.dir;
        let oom_kills =
            read_optional("memory", &d.join("memory.events"))?.and_then(|t| keyed(&t, "oom_kill"));
        let cpu = read_optional("cpu", &d.join("cpu.stat"))?;
        Ok(CgroupStats {
            oom_killed: oom_kills.is_some_and(|n| n > 0),
            oom_kills,
            peak_memory: read_optional("memory", &d.join("memory.peak"))?
                .as_deref()
                .and_then(parse_u64),
            cpu_time: cpu
                .as_deref()
                .and_then(|t| keyed(t, "usage_usec"))
                .map(std::time::Duration::from_micros),
            cpu_throttled: cpu.as_deref().and_then(|t| keyed(t, "nr_throttled")),
            pids_max_hits: read_optional("pids", &d.join("pids.events"))?
                .and_then(|t| keyed(&t, "max")),
        })
    }
}
