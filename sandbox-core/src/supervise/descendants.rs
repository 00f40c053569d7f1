//! Ending a process tree without a pid namespace (reduced mode).
//!
//! The reduced-mode supervisor is not PID 1 of anything: `kill(-1)` would
//! reach every process of its uid on the host. It is a child subreaper
//! instead (`PR_SET_CHILD_SUBREAPER`), so every process the command starts
//! stays below it for good: an orphan (a double-forked daemon, a process
//! that called `setsid`) is reparented to it, never to the host's init.
//! "The sandbox" is then exactly the supervisor's descendants, found by
//! their parent links in `/proc`.
//!
//! Each is signalled through a pidfd opened after it was found and checked
//! again to still descend from us, so a pid freed and reused by an unrelated
//! host process between the scan and the signal is never hit. A fork bomb
//! racing the scan is caught by the next pass: [`reap_all`] repeats until
//! no child is left, and since orphans come back to us, no child means no
//! descendant.

use std::collections::HashMap;
use std::time::Duration;

use nix::errno::Errno;
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};

use crate::sys;

/// Deepest parent chain followed when checking that a process descends
/// from us (a real tree is far shallower; `pid_max` bounds it anyway).
const MAX_DEPTH: usize = 1 << 16;

/// Parent pid of `pid` from `/proc/PID/stat` (field 4, after the command
/// name in parentheses, which may itself contain `)` and spaces).
fn parent_of(pid: i32) -> Option<i32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(1)?.parse().ok()
}

/// Every process's parent, from one scan of `/proc` (thread-group leaders
/// only; threads die with them).
fn parents() -> Vec<(i32, i32)> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter_map(|pid| Some((pid, parent_of(pid)?)))
        .collect()
}

/// The descendants of `root` in a snapshot of parent links, parents first.
fn below(root: i32, links: &[(i32, i32)]) -> Vec<i32> {
    let mut children: HashMap<i32, Vec<i32>> = HashMap::new();
    for &(pid, ppid) in links {
        children.entry(ppid).or_default().push(pid);
    }
    let mut out = Vec::new();
    let mut queue = vec![root];
    while let Some(p) = queue.pop() {
        for &c in children.get(&p).into_iter().flatten() {
            if c != root && !out.contains(&c) {
                out.push(c);
                queue.push(c);
            }
        }
    }
    out
}

/// Whether `pid` (now) descends from `root`, following live parent links.
fn descends_from(pid: i32, root: i32) -> bool {
    let mut cur = pid;
    for _ in 0..MAX_DEPTH {
        match parent_of(cur) {
            Some(p) if p == root => return true,
            Some(p) if p > 1 => cur = p,
            _ => return false,
        }
    }
    false
}

/// Send `sig` to every current descendant of this process. Returns how
/// many were signalled.
pub(crate) fn kill(sig: libc::c_int) -> usize {
    let me = nix::unistd::getpid().as_raw();
    let mut hit = 0;
    for pid in below(me, &parents()) {
        let Ok(fd) = sys::pidfd::open(pid) else {
            continue; // already gone
        };
        // The pidfd pins the process: if it still descends from us now, it
        // is the one we found (or a newer descendant), never a stranger.
        if descends_from(pid, me)
            && sys::pidfd::send_signal(std::os::fd::AsFd::as_fd(&fd), sig).is_ok()
        {
            hit += 1;
        }
    }
    hit
}

/// SIGKILL every descendant and reap until no child is left.
pub(crate) fn reap_all() {
    loop {
        kill(libc::SIGKILL);
        loop {
            match waitpid(None, Some(WaitPidFlag::WNOHANG | WaitPidFlag::__WALL)) {
                Err(Errno::ECHILD) => return,
                Ok(WaitStatus::StillAlive) => break,
                Err(Errno::EINTR) | Ok(_) => continue,
                Err(_) => return,
            }
        }
        // Some are still dying (or were just reparented to us): give them a
        // moment, then scan again.
        std::thread::sleep(Duration::from_millis(2));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn below_follows_links_parents_first() {
        let links = [(10, 1), (11, 10), (12, 11), (13, 10), (20, 1), (21, 20)];
        let mut got = below(10, &links);
        got.sort_unstable();
        assert_eq!(got, vec![11, 12, 13]);
        assert!(below(21, &links).is_empty());
        // A cycle (impossible in the kernel) does not loop.
        assert_eq!(below(5, &[(6, 5), (5, 6)]), vec![6]);
    }

    #[test]
    fn parent_of_reads_stat_with_odd_names() {
        let me = std::process::id() as i32;
        assert_eq!(parent_of(me), Some(nix::unistd::getppid().as_raw()));
        assert!(descends_from(me, nix::unistd::getppid().as_raw()));
        assert!(!descends_from(me, me));
        assert_eq!(parent_of(-5), None);
    }
}
