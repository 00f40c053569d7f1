//! Reading one process's containment facts from `/proc`, as text and numbers,
//! with no judgement: [`super::properties`] decides.
//!
//! Processes may exit while we read. A process is read as a whole and then its
//! start time is compared with the one read first: if `/proc/PID` is gone or
//! now belongs to another process (pid reuse), the read is [`Read::Vanished`].

use std::collections::BTreeMap;
use std::io;
use std::path::PathBuf;

use crate::doctor::parse::status_field;

/// The eight namespace types, in report order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum NsType {
    User,
    Pid,
    Net,
    Mnt,
    Uts,
    Ipc,
    Cgroup,
    Time,
}

impl NsType {
    pub(crate) const ALL: [NsType; 8] = [
        NsType::User,
        NsType::Pid,
        NsType::Net,
        NsType::Mnt,
        NsType::Uts,
        NsType::Ipc,
        NsType::Cgroup,
        NsType::Time,
    ];

    /// The file name under `/proc/PID/ns/` (and the link text's prefix).
    pub(crate) fn file(self) -> &'static str {
        match self {
            NsType::User => "user",
            NsType::Pid => "pid",
            NsType::Net => "net",
            NsType::Mnt => "mnt",
            NsType::Uts => "uts",
            NsType::Ipc => "ipc",
            NsType::Cgroup => "cgroup",
            NsType::Time => "time",
        }
    }
}

/// One `/proc/PID/ns/*` link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Link {
    /// The namespace's inode number (`net:[4026531833]`).
    Ns(u64),
    /// Not readable by us: the kernel asks for ptrace read access (a
    /// non-dumpable process, like the sandbox init, needs `CAP_SYS_PTRACE`).
    Denied,
    /// No such link: a namespace type this kernel lacks, or, for `mnt` (always
    /// built in), a process that is exiting (the kernel drops its namespaces in
    /// `do_exit`, before it becomes a zombie).
    Gone,
    /// Could not be read for another reason (e.g. a kernel without that type).
    Error(String),
}

impl Link {
    pub(crate) fn inode(&self) -> Option<u64> {
        match self {
            Link::Ns(i) => Some(*i),
            _ => None,
        }
    }
}

/// The capability sets, Seccomp and no_new_privs of one thread
/// (`/proc/PID/task/TID/status`). None: the field was missing.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct Task {
    pub tid: u32,
    /// CapInh, CapPrm, CapEff, CapBnd, CapAmb.
    pub caps: [Option<u64>; 5],
    /// 0 disabled, 1 strict, 2 filter.
    pub seccomp: Option<u32>,
    pub seccomp_filters: Option<u32>,
    pub no_new_privs: Option<u32>,
}

/// The names of [`Task::caps`], as in `/proc/PID/status`.
pub(crate) const CAP_FIELDS: [&str; 5] = ["CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"];

/// What a process shows in `/proc`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct Proc {
    pub pid: u32,
    /// Field 22 of `/proc/PID/stat` (clock ticks since boot): tells a process
    /// from a later one with the same pid.
    pub start_time: u64,
    pub comm: String,
    pub ppid: u32,
    /// `NSpid`: the pid in each pid namespace, from ours (as mounted at /proc)
    /// down to the process's own.
    pub nspid: Vec<u32>,
    /// The thread group leader first.
    pub tasks: Vec<Task>,
    /// Own namespaces.
    pub ns: BTreeMap<NsType, Link>,
    /// The namespaces its future children get (`pid_for_children`, `time_for_children`).
    pub pid_for_children: Option<Link>,
    pub time_for_children: Option<Link>,
    pub uid_map: Option<String>,
    pub gid_map: Option<String>,
    pub setgroups: Option<String>,
    /// `/proc/PID/cgroup`.
    pub cgroup: String,
    /// `/proc/PID/net/{dev,route,ipv6_route}` (the process's network namespace).
    pub net: Option<NetView>,
    /// `Max processes` soft and hard limits from `/proc/PID/limits` (None: unlimited).
    pub max_processes: Option<(Option<u64>, Option<u64>)>,
    /// uid owning the process's user namespace (`NS_GET_OWNER_UID`), when readable.
    pub userns_owner: Option<u32>,
    /// The mount ids of `/proc/PID/mountinfo` (its mount namespace).
    pub mount_ids: Option<Vec<u32>>,
}

/// The network namespace as the process sees it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct NetView {
    pub interfaces: Vec<String>,
    /// Device of each IPv4 route (main table).
    pub ipv4_routes: Vec<String>,
    /// (destination/prefix, device) of each IPv6 route (all tables).
    pub ipv6_routes: Vec<(String, String)>,
}

/// The outcome of reading a process.
#[derive(Debug)]
pub(crate) enum Read {
    Alive(Box<Proc>),
    /// It exited (or its pid was reused) while we read.
    Vanished,
}

/// Read everything about `pid`. An error only when `/proc` itself misbehaves.
pub(crate) fn read(pid: u32) -> io::Result<Read> {
    let Some(Stat {
        start_time,
        ppid,
        comm,
        ..
    }) = running(pid)?
    else {
        return Ok(Read::Vanished);
    };
    let base = PathBuf::from(format!("/proc/{pid}"));
    let Some(status) = optional(std::fs::read_to_string(base.join("status")))? else {
        return Ok(Read::Vanished);
    };
    let nspid = status_field(&status, "NSpid")
        .map(|v| {
            v.split_whitespace()
                .filter_map(|n| n.parse().ok())
                .collect()
        })
        .unwrap_or_default();
    let mut p = Proc {
        pid,
        start_time,
        comm,
        ppid,
        nspid,
        tasks: tasks(pid)?,
        ..Proc::default()
    };
    for t in NsType::ALL {
        p.ns.insert(t, link(pid, t.file()));
    }
    if p.ns.get(&NsType::Mnt) == Some(&Link::Gone) {
        return Ok(Read::Vanished);
    }
    p.pid_for_children = Some(link(pid, "pid_for_children"));
    p.time_for_children = Some(link(pid, "time_for_children"));
    p.uid_map = text(pid, "uid_map");
    p.gid_map = text(pid, "gid_map");
    p.setgroups = text(pid, "setgroups").map(|s| s.trim().to_string());
    p.cgroup = text(pid, "cgroup").unwrap_or_default();
    p.net = net(pid);
    p.max_processes = text(pid, "limits").and_then(|l| max_processes(&l));
    p.userns_owner = userns_owner(pid);
    p.mount_ids = mount_ids(pid);
    // Read as a whole only if it is still the same process and not exiting:
    // one that began to exit meanwhile may have lost its namespaces (and with
    // them its net files) while we read.
    if link(pid, "mnt") == Link::Gone {
        return Ok(Read::Vanished);
    }
    match running(pid)? {
        Some(st) if st.start_time == start_time => Ok(Read::Alive(Box::new(p))),
        _ => Ok(Read::Vanished),
    }
}

/// `Ok(None)` for the errors of a process that is gone.
fn optional<T>(r: io::Result<T>) -> io::Result<Option<T>> {
    match r {
        Ok(v) => Ok(Some(v)),
        Err(e) if gone(&e) => Ok(None),
        Err(e) => Err(e),
    }
}

fn gone(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::ENOENT) | Some(libc::ESRCH))
}

/// The fields of `/proc/PID/stat` we use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Stat {
    pub start_time: u64,
    pub ppid: u32,
    pub comm: String,
    /// `R`, `S`, `D`, ..., `Z` (zombie), `X` (dead).
    pub state: char,
}

/// `/proc/PID/stat`; None if the process is gone.
pub(crate) fn stat(pid: u32) -> io::Result<Option<Stat>> {
    let Some(text) = optional(std::fs::read_to_string(format!("/proc/{pid}/stat")))? else {
        return Ok(None);
    };
    Ok(parse_stat(&text))
}

/// [`stat`], but None for a process that has exited and is not yet reaped.
pub(crate) fn running(pid: u32) -> io::Result<Option<Stat>> {
    Ok(stat(pid)?.filter(|s| !matches!(s.state, 'Z' | 'X' | 'x')))
}

/// `PID (COMM) STATE PPID ...`: comm may hold spaces and parentheses, so the
/// fields start after the last `)`.
pub(crate) fn parse_stat(text: &str) -> Option<Stat> {
    let open = text.find('(')?;
    let close = text.rfind(')')?;
    let comm = text.get(open + 1..close)?.to_string();
    let fields: Vec<&str> = text.get(close + 1..)?.split_whitespace().collect();
    // fields[0] is field 3 (state): ppid is field 4, starttime field 22.
    Some(Stat {
        state: fields.first()?.chars().next()?,
        ppid: fields.get(1)?.parse().ok()?,
        start_time: fields.get(19)?.parse().ok()?,
        comm,
    })
}

fn text(pid: u32, file: &str) -> Option<String> {
    std::fs::read_to_string(format!("/proc/{pid}/{file}")).ok()
}

fn link(pid: u32, file: &str) -> Link {
    match std::fs::read_link(format!("/proc/{pid}/ns/{file}")) {
        Ok(target) => {
            let target = target.to_string_lossy();
            match parse_ns_link(&target) {
                Some(inode) => Link::Ns(inode),
                None => Link::Error(format!("unexpected link {target:?}")),
            }
        }
        Err(e) if matches!(e.raw_os_error(), Some(libc::EACCES) | Some(libc::EPERM)) => {
            Link::Denied
        }
        Err(e) if gone(&e) => Link::Gone,
        Err(e) => Link::Error(e.to_string()),
    }
}

/// `net:[4026531833]` -> 4026531833.
pub(crate) fn parse_ns_link(target: &str) -> Option<u64> {
    let (_, rest) = target.split_once(":[")?;
    rest.strip_suffix(']')?.parse().ok()
}

/// Every thread's status; threads that exit meanwhile are skipped.
fn tasks(pid: u32) -> io::Result<Vec<Task>> {
    let mut tids: Vec<u32> = match optional(std::fs::read_dir(format!("/proc/{pid}/task")))? {
        None => return Ok(Vec::new()),
        Some(dir) => dir
            .flatten()
            .filter_map(|e| e.file_name().to_str()?.parse().ok())
            .collect(),
    };
    tids.sort_unstable_by_key(|&t| (t != pid, t));
    let mut out = Vec::new();
    for tid in tids {
        let path = format!("/proc/{pid}/task/{tid}/status");
        if let Some(status) = optional(std::fs::read_to_string(path))? {
            out.push(parse_task(tid, &status));
        }
    }
    Ok(out)
}

pub(crate) fn parse_task(tid: u32, status: &str) -> Task {
    let hex = |k: &str| status_field(status, k).and_then(|v| u64::from_str_radix(v, 16).ok());
    let num = |k: &str| status_field(status, k).and_then(|v| v.parse().ok());
    Task {
        tid,
        caps: CAP_FIELDS.map(hex),
        seccomp: num("Seccomp"),
        seccomp_filters: num("Seccomp_filters"),
        no_new_privs: num("NoNewPrivs"),
    }
}

fn net(pid: u32) -> Option<NetView> {
    let dev = text(pid, "net/dev")?;
    Some(NetView {
        interfaces: parse_net_dev(&dev),
        ipv4_routes: text(pid, "net/route")
            .map(|r| parse_ipv4_routes(&r))
            .unwrap_or_default(),
        ipv6_routes: text(pid, "net/ipv6_route")
            .map(|r| parse_ipv6_routes(&r))
            .unwrap_or_default(),
    })
}

/// An interface name, escaped: names come from whoever controls the network
/// namespace and are printed in the report.
fn ifname(name: &str) -> String {
    name.escape_debug().to_string()
}

/// Interface names of `/proc/net/dev` (two header lines, then `name: counters`).
pub(crate) fn parse_net_dev(text: &str) -> Vec<String> {
    text.lines()
        .skip(2)
        .filter_map(|l| Some(ifname(l.split_once(':')?.0.trim())))
        .collect()
}

/// The device of each route of `/proc/net/route` (a header line, then `Iface ...`).
pub(crate) fn parse_ipv4_routes(text: &str) -> Vec<String> {
    text.lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().next().map(ifname))
        .collect()
}

/// `/proc/net/ipv6_route`: `DEST PLEN SRC SLEN NEXTHOP METRIC REF USE FLAGS DEV`,
/// addresses as 32 hex digits, no header.
pub(crate) fn parse_ipv6_routes(text: &str) -> Vec<(String, String)> {
    text.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            if f.len() < 10 {
                return None;
            }
            let plen = u8::from_str_radix(f[1], 16).ok()?;
            Some((format!("{}/{plen}", ipv6(f[0])?), ifname(f[9])))
        })
        .collect()
}

fn ipv6(hex: &str) -> Option<std::net::Ipv6Addr> {
    u128::from_str_radix(hex, 16)
        .ok()
        .filter(|_| hex.len() == 32)
        .map(std::net::Ipv6Addr::from)
}

/// `Max processes  SOFT  HARD  processes` of `/proc/PID/limits`.
pub(crate) fn max_processes(limits: &str) -> Option<(Option<u64>, Option<u64>)> {
    let rest = limits
        .lines()
        .find_map(|l| l.strip_prefix("Max processes"))?;
    let f: Vec<&str> = rest.split_whitespace().collect();
    let value = |s: &str| s.parse().ok();
    Some((value(f.first()?), value(f.get(1)?)))
}

/// The uid that created the user namespace of `pid`, if we may open it.
fn userns_owner(pid: u32) -> Option<u32> {
    let f = std::fs::File::open(format!("/proc/{pid}/ns/user")).ok()?;
    crate::sys::ns_owner_uid(std::os::fd::AsFd::as_fd(&f)).ok()
}

/// The first field (mount id) of each line of `/proc/PID/mountinfo`.
pub(crate) fn mount_ids(pid: u32) -> Option<Vec<u32>> {
    let text = text(pid, "mountinfo")?;
    Some(
        text.lines()
            .filter_map(|l| l.split_whitespace().next()?.parse().ok())
            .collect(),
    )
}

/// Every pid in `/proc` with its parent (processes that exit meanwhile are skipped).
pub(crate) fn all_parents() -> io::Result<Vec<(u32, u32)>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/proc")?.flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|s| s.parse().ok()) else {
            continue;
        };
        if let Some(st) = stat(pid)? {
            out.push((pid, st.ppid));
        }
    }
    Ok(out)
}

/// The inode of `/proc/PID/ns/pid`, when readable.
pub(crate) fn pid_ns(pid: u32) -> Option<u64> {
    link(pid, "pid").inode()
}
