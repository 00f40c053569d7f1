//! Which processes make up the sandbox of a given pid: its init (PID 1 of the
//! outermost pid namespace below ours on the way up) and every process that
//! descends from it, sits in its own cgroup, or is in its pid namespace.

use std::collections::{BTreeMap, BTreeSet};
use std::io;

use super::procfs::{self, stat};

/// How a process was found.
pub(crate) const ASKED: &str = "asked";
pub(crate) const INIT: &str = "init";
pub(crate) const DESCENDANT: &str = "descendant";
pub(crate) const CGROUP: &str = "cgroup";
pub(crate) const PID_NS: &str = "pid-ns";

/// `NSpid` of a process: one entry per pid namespace from ours down to its own.
pub(crate) fn nspid(pid: u32) -> Option<Vec<u32>> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let v = crate::doctor::parse::status_field(&status, "NSpid")?;
    Some(
        v.split_whitespace()
            .filter_map(|n| n.parse().ok())
            .collect(),
    )
}

/// The root of the attested tree for `pid` (whose `NSpid` is `depth` entries
/// long, ours `ours`): walking up through parents while they are still in a pid
/// namespace below ours. Returns the root and whether it is a pid-namespace
/// init (`NSpid ... 1`). A process in our own pid namespace is its own root.
/// None: `pid` exited meanwhile.
pub(crate) fn root(pid: u32, depth: usize, ours: usize) -> io::Result<Option<(u32, bool)>> {
    if depth <= ours {
        return Ok(Some((pid, false)));
    }
    let mut cur = pid;
    loop {
        let Some(ppid) = stat(cur)?.map(|s| s.ppid) else {
            return Ok(None);
        };
        match nspid(ppid) {
            Some(p) if ppid != 0 && p.len() > ours => cur = ppid,
            _ => break,
        }
    }
    if nspid(cur).and_then(|v| v.last().copied()) == Some(1) {
        return Ok(Some((cur, true)));
    }
    // Entered from outside (setns) rather than forked inside: look for the
    // init of that pid namespace among every process we may inspect.
    if let Some(ns) = procfs::pid_ns(cur) {
        for (p, _) in procfs::all_parents()? {
            if procfs::pid_ns(p) == Some(ns) && nspid(p).and_then(|v| v.last().copied()) == Some(1)
            {
                return Ok(Some((p, true)));
            }
        }
    }
    Ok(Some((cur, false)))
}

/// Every process of the sandbox rooted at `root`, with how it was found (the
/// root first): its descendants, the pids in `cgroup_procs`, and when the root
/// is an init, every process we can see in its pid namespace.
pub(crate) fn members(
    root: u32,
    is_init: bool,
    asked: u32,
    cgroup_procs: &[u32],
) -> io::Result<Vec<(u32, &'static str)>> {
    let parents = procfs::all_parents()?;
    let mut children: BTreeMap<u32, Vec<u32>> = BTreeMap::new();
    for &(pid, ppid) in &parents {
        children.entry(ppid).or_default().push(pid);
    }
    let root_label = if is_init { INIT } else { ASKED };
    let mut out = vec![(root, root_label)];
    let mut seen = BTreeSet::from([root]);
    let mut queue = vec![root];
    while let Some(p) = queue.pop() {
        for &c in children.get(&p).into_iter().flatten() {
            if seen.insert(c) {
                out.push((c, DESCENDANT));
                queue.push(c);
            }
        }
    }
    for &p in cgroup_procs {
        if seen.insert(p) {
            out.push((p, CGROUP));
        }
    }
    if is_init {
        if let Some(ns) = procfs::pid_ns(root) {
            for &(p, _) in &parents {
                if !seen.contains(&p) && procfs::pid_ns(p) == Some(ns) {
                    seen.insert(p);
                    out.push((p, PID_NS));
                }
            }
        }
    }
    if seen.insert(asked) {
        out.push((asked, ASKED));
    }
    Ok(out)
}

/// The reduced-mode supervisor (`crate::reduced`) `pid` runs under, if any:
/// `pid` itself or its nearest ancestor named `stockade-init` in our own pid
/// namespace (`ours` entries of `NSpid`) with no child in a pid namespace
/// below ours (which would make it the full mode's outer helper). Only
/// asked about processes in our pid namespace.
pub(crate) fn reduced_supervisor(pid: u32, ours: usize) -> io::Result<Option<u32>> {
    let mut cur = pid;
    for _ in 0..64 {
        let Some(st) = stat(cur)? else {
            return Ok(None);
        };
        if st.comm == "stockade-init" && nspid(cur).is_some_and(|v| v.len() == ours) {
            let children = std::fs::read_to_string(format!("/proc/{cur}/task/{cur}/children"))
                .unwrap_or_default();
            let nested = children
                .split_whitespace()
                .filter_map(|c| c.parse::<u32>().ok())
                .any(|c| nspid(c).is_some_and(|v| v.len() > ours));
            return Ok((!nested).then_some(cur));
        }
        if st.ppid <= 1 {
            return Ok(None);
        }
        cur = st.ppid;
    }
    Ok(None)
}
