//! cgroup v1: one directory per controller hierarchy (memory, pids, cpu, cpuacct),
//! each directly under the caller's cgroup in that hierarchy.

use std::path::PathBuf;

use super::detect::V1Dirs;
use super::{
    keyed, kill_loop, make_dir, parse_u64, read_optional, remove_dir, write_file, CgroupError,
    CgroupLimits, CgroupStats, CPU_PERIOD_US, KILL_DEADLINE,
};

#[derive(Debug)]
pub(super) struct V1Cgroup {
    /// (hierarchy, directory) for each created directory; `cpu` and `cpuacct` share
    /// one entry when they share a hierarchy.
    pub(super) dirs: Vec<(&'static str, PathBuf)>,
    /// Every hierarchy with its directory (entries may share a directory).
    by_hierarchy: Vec<(&'static str, PathBuf)>,
    pub(super) swap_capped: bool,
}

impl V1Cgroup {
    pub(super) fn create(
        parents: &V1Dirs,
        name: &str,
        limits: &CgroupLimits,
    ) -> Result<V1Cgroup, CgroupError> {
        let mut cg = V1Cgroup {
            dirs: Vec::new(),
            by_hierarchy: Vec::new(),
            swap_capped: false,
        };
        // Pids first: kill() and pids() read the pids hierarchy, which bounds forks.
        for (hierarchy, parent) in [
            ("pids", &parents.pids),
            ("memory", &parents.memory),
            ("cpu", &parents.cpu),
            ("cpuacct", &parents.cpuacct),
        ] {
            let Some(parent) = parent else { continue };
            let dir = parent.join(name);
            cg.by_hierarchy.push((hierarchy, dir.clone()));
            if cg.dirs.iter().any(|(_, d)| *d == dir) {
                continue; // cpu,cpuacct mounted together
            }
            if let Err(e) = make_dir(hierarchy, &dir) {
                cg.remove_all();
                return Err(e);
            }
            cg.dirs.push((hierarchy, dir));
        }
        if let Err(e) = cg.apply(parents, limits) {
            cg.remove_all();
            return Err(e);
        }
        Ok(cg)
    }

    /// The directory serving `hierarchy` (`cpu` and `cpuacct` may share one).
    fn dir(&self, hierarchy: &str) -> Option<&PathBuf> {
        self.by_hierarchy
            .iter()
            .find(|(h, _)| *h == hierarchy)
            .map(|(_, d)| d)
    }

    fn need(&self, hierarchy: &str) -> Result<PathBuf, CgroupError> {
        self.dir(hierarchy).cloned().ok_or_else(|| {
            CgroupError::Invalid(format!("no {hierarchy} hierarchy for this cgroup"))
        })
    }

    fn apply(&mut self, parents: &V1Dirs, limits: &CgroupLimits) -> Result<(), CgroupError> {
        if let Some(bytes) = limits.memory {
            let d = self.need("memory")?;
            write_file(
                "memory",
                &d.join("memory.limit_in_bytes"),
                &bytes.to_string(),
            )?;
            if parents.memsw {
                // memsw >= limit; equal means no swap at all.
                write_file(
                    "memory",
                    &d.join("memory.memsw.limit_in_bytes"),
                    &bytes.to_string(),
                )?;
                self.swap_capped = true;
            }
        }
        if let Some(n) = limits.pids {
            let d = self.need("pids")?;
            write_file("pids", &d.join("pids.max"), &n.to_string())?;
        }
        if let Some(m) = limits.cpu_millis {
            let d = self.need("cpu")?;
            write_file(
                "cpu",
                &d.join("cpu.cfs_period_us"),
                &CPU_PERIOD_US.to_string(),
            )?;
            write_file(
                "cpu",
                &d.join("cpu.cfs_quota_us"),
                &CgroupLimits::cpu_quota_us(m).to_string(),
            )?;
        }
        Ok(())
    }

    pub(super) fn attach(&self, pid: u32) -> Result<(), CgroupError> {
        for (h, d) in &self.dirs {
            write_file(h, &d.join("cgroup.procs"), &pid.to_string())?;
        }
        Ok(())
    }

    pub(super) fn kill(&self) -> Result<(), CgroupError> {
        // Every process was attached to every hierarchy; the first one (pids when
        // present) lists them all. The others are checked too in case a process was
        // attached to only some (an attach that failed half-way).
        for (_, d) in &self.dirs {
            kill_loop(d, KILL_DEADLINE)?;
        }
        Ok(())
    }

    pub(super) fn stats(&self) -> Result<CgroupStats, CgroupError> {
        let mut s = CgroupStats::default();
        if let Some(d) = self.dir("memory") {
            s.oom_kills = read_optional("memory", &d.join("memory.oom_control"))?
                .and_then(|t| keyed(&t, "oom_kill"));
            s.oom_killed = s.oom_kills.is_some_and(|n| n > 0);
            s.peak_memory = read_optional("memory", &d.join("memory.max_usage_in_bytes"))?
                .as_deref()
                .and_then(parse_u64);
        }
        if let Some(d) = self.dir("cpuacct") {
            s.cpu_time = read_optional("cpuacct", &d.join("cpuacct.usage"))?
                .as_deref()
                .and_then(parse_u64)
                .map(std::time::Duration::from_nanos);
        }
        if let Some(d) = self.dir("cpu") {
            s.cpu_throttled =
                read_optional("cpu", &d.join("cpu.stat"))?.and_then(|t| keyed(&t, "nr_throttled"));
        }
        if let Some(d) = self.dir("pids") {
            s.pids_max_hits =
                read_optional("pids", &d.join("pids.events"))?.and_then(|t| keyed(&t, "max"));
        }
        Ok(s)
    }

    fn remove_all(&mut self) {
        for (h, d) in self.dirs.drain(..) {
            let _ = remove_dir(h, &d, KILL_DEADLINE);
        }
    }
}
