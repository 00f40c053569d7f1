//! The judgement: each property decided from a [`Snapshot`], with the values
//! it was decided on. Pure functions of what was read (unit-tested on made-up
//! snapshots in `tests.rs`).

use std::collections::BTreeMap;

use super::procfs::{Link, NsType, Proc, Task, CAP_FIELDS};
use super::report::{Check, Outcome, Process, Property, Report, Role};
use super::{tree, Expected, Member, Snapshot};
use crate::LimitsLevel;

/// Decide every property.
pub(crate) fn evaluate(s: &Snapshot, expected: &Expected) -> Report {
    let mut checks: Vec<Check> = NsType::ALL.iter().map(|&t| namespace(s, t)).collect();
    checks.push(loopback_only(s));
    checks.push(seccomp(s));
    checks.push(no_new_privs(s));
    checks.push(capabilities(s));
    checks.push(id_maps(s, expected));
    checks.push(cgroup_limits(s, expected));
    checks.push(landlock());
    checks.push(pid_ns_containment(s));
    let mut notes = Vec::new();
    let mut missing = Vec::new();
    if s.reduced {
        mark_missing(&mut checks, s);
        missing = checks
            .iter()
            .filter(|c| c.result == Outcome::Missing)
            .map(|c| match c.property {
                Property::Capabilities => "capability-bounding-set".to_string(),
                p => p.name().to_string(),
            })
            .collect();
        if missing.iter().any(|m| m == Property::MntNs.name()) {
            missing.push("pivot-root".into());
        }
        notes.push(
            "reduced mode: no namespaces and no pivot_root; the sandbox is the supervisor's \
             descendants, contained by Landlock, seccomp, no capabilities and no_new_privs only"
                .into(),
        );
    }
    match s.init {
        None => notes.push(format!(
            "pid {} is in our own pid namespace: there is no sandbox init, so every process \
             is checked as a command",
            s.asked
        )),
        Some(_) if commands(s).next().is_none() => notes.push(
            "no command process is running (an idle sandbox): only the init was attested".into(),
        ),
        Some(_) => {}
    }
    Report {
        pid: s.asked,
        init: s.init,
        mode: if s.reduced {
            crate::reduced::Mode::Reduced
        } else {
            crate::reduced::Mode::Full
        },
        missing,
        processes: s
            .members
            .iter()
            .map(|m| Process {
                pid: m.proc.pid,
                role: m.role,
                comm: m.proc.comm.clone(),
                found_by: m.found_by,
            })
            .collect(),
        notes,
        checks,
    }
}

/// The properties reduced mode runs without: their failure is the mode.
const ABSENT_IN_REDUCED: [Property; 11] = [
    Property::UserNs,
    Property::PidNs,
    Property::NetNs,
    Property::MntNs,
    Property::UtsNs,
    Property::IpcNs,
    Property::CgroupNs,
    Property::TimeNs,
    Property::LoopbackOnly,
    Property::IdMaps,
    Property::PidNsContainment,
];

/// Reduced mode: what it runs without is `missing`, not `FAIL`. That covers
/// a capability bounding set left full (an unprivileged caller cannot empty
/// it) only when every other set is empty.
fn mark_missing(checks: &mut [Check], s: &Snapshot) {
    for c in checks.iter_mut() {
        let absent = match c.property {
            // Same pid namespace as ours by construction: nothing to contain.
            Property::PidNsContainment => true,
            Property::Capabilities => c.result == Outcome::Fail && only_bounding_set(s),
            p => ABSENT_IN_REDUCED.contains(&p) && c.result == Outcome::Fail,
        };
        if absent {
            c.result = Outcome::Missing;
            c.evidence
                .insert(0, format!("reduced mode: {}", absent_because(c.property)));
        }
    }
}

fn absent_because(p: Property) -> &'static str {
    match p {
        Property::LoopbackOnly => "no network namespace, the host's interfaces",
        Property::IdMaps => "no user namespace, real host ids",
        Property::PidNsContainment => "no pid namespace of its own",
        Property::Capabilities => {
            "the bounding set is kept (emptying it needs CAP_SETPCAP, which an unprivileged \
             caller lacks); no_new_privs keeps any execve from gaining from it"
        }
        _ => "no namespace of this kind, ours is shared",
    }
}

/// Every task has every capability set empty except possibly the bounding set.
fn only_bounding_set(s: &Snapshot) -> bool {
    s.members.iter().flat_map(|m| &m.proc.tasks).all(|t| {
        CAP_FIELDS
            .iter()
            .zip(t.caps)
            .all(|(name, v)| *name == "CapBnd" || v == Some(0))
    })
}

fn property(t: NsType) -> Property {
    match t {
        NsType::User => Property::UserNs,
        NsType::Pid => Property::PidNs,
        NsType::Net => Property::NetNs,
        NsType::Mnt => Property::MntNs,
        NsType::Uts => Property::UtsNs,
        NsType::Ipc => Property::IpcNs,
        NsType::Cgroup => Property::CgroupNs,
        NsType::Time => Property::TimeNs,
    }
}

fn commands(s: &Snapshot) -> impl Iterator<Item = &Member> {
    s.members.iter().filter(|m| m.role == Role::Command)
}

fn init(s: &Snapshot) -> Option<&Member> {
    s.members.iter().find(|m| m.role == Role::Init)
}

/// Text the sandbox chose (a process name), safe to print: an agent may name
/// itself with control characters or a newline to forge table rows.
fn printable(text: &str) -> String {
    text.escape_debug().to_string()
}

/// `1234 (sleep)`, `1233 (init)`, `1234/1240` for a thread.
fn who(m: &Member, tid: Option<u32>) -> String {
    let name = match m.role {
        Role::Init => "init".to_string(),
        Role::Command => printable(&m.proc.comm),
    };
    match tid {
        Some(t) if t != m.proc.pid => format!("{}/{t} ({name})", m.proc.pid),
        _ => format!("{} ({name})", m.proc.pid),
    }
}

/// Findings of one property, merged into evidence lines: failures first,
/// processes with the same finding on one line.
#[derive(Default)]
struct Findings {
    items: BTreeMap<(Outcome, String), Vec<String>>,
    trailer: Vec<String>,
}

impl Findings {
    fn add(&mut self, outcome: Outcome, who: String, what: impl Into<String>) {
        self.items
            .entry((outcome, what.into()))
            .or_default()
            .push(who);
    }

    /// A line after the findings (context, not a finding).
    fn note(&mut self, line: impl Into<String>) {
        self.trailer.push(line.into());
    }

    /// The check: its worst finding decides; with no findings, `empty`.
    fn check(self, property: Property, empty: (Outcome, &str)) -> Check {
        const SHOWN: usize = 6;
        let result = self.items.keys().map(|(o, _)| *o).max().unwrap_or(empty.0);
        let mut evidence: Vec<(Outcome, String)> = self
            .items
            .into_iter()
            .map(|((o, what), whos)| {
                let mut names = whos[..whos.len().min(SHOWN)].join(", ");
                if whos.len() > SHOWN {
                    names.push_str(&format!(" and {} more", whos.len() - SHOWN));
                }
                (o, format!("{names}: {what}"))
            })
            .collect();
        evidence.sort_by_key(|e| std::cmp::Reverse(e.0));
        let mut evidence: Vec<String> = evidence.into_iter().map(|(_, e)| e).collect();
        if evidence.is_empty() {
            evidence.push(empty.1.to_string());
        }
        evidence.extend(self.trailer);
        Check {
            property,
            result,
            evidence,
        }
    }
}

fn show(t: NsType, inode: u64) -> String {
    format!("{}:[{inode}]", t.file())
}

const RUN_AS_ROOT: &str = "not readable by this user (the kernel requires ptrace read access; \
                           the init is non-dumpable, so only CAP_SYS_PTRACE may): attest as root";

/// `user-ns` ... `time-ns`: each process's own namespace differs from ours.
fn namespace(s: &Snapshot, t: NsType) -> Check {
    let mut f = Findings::default();
    let ours = s.caller.ns.get(&t).and_then(Link::inode);
    let Some(ours) = ours else {
        f.note(format!(
            "our own /proc/self/ns/{} is unreadable: this kernel may lack {} namespaces",
            t.file(),
            t.file()
        ));
        return f.check(property(t), (Outcome::Unknown, "cannot compare"));
    };
    for m in &s.members {
        let (outcome, what) = namespace_of(s, m, t, ours);
        f.add(outcome, who(m, None), what);
    }
    f.note(format!("ours (the attesting process's): {}", show(t, ours)));
    f.check(property(t), (Outcome::Unknown, "no process"))
}

fn namespace_of(s: &Snapshot, m: &Member, t: NsType, ours: u64) -> (Outcome, String) {
    let own = m
        .proc
        .ns
        .get(&t)
        .cloned()
        .unwrap_or(Link::Error("not read".into()));
    // The init's own time namespace is the creator's by construction: what it
    // hands its children is what counts (see the module doc).
    if t == NsType::Time && m.role == Role::Init && own == Link::Ns(ours) {
        return match m.proc.time_for_children.clone() {
            Some(Link::Ns(c)) if c != ours => (
                Outcome::Pass,
                format!(
                    "time_for_children {} (its own {} is ours: unshare(CLONE_NEWTIME) moves only its children)",
                    show(t, c),
                    show(t, ours)
                ),
            ),
            Some(Link::Ns(c)) => (
                Outcome::Fail,
                format!("time and time_for_children {}, the same as ours", show(t, c)),
            ),
            _ => (Outcome::Unknown, format!("time_for_children {RUN_AS_ROOT}")),
        };
    }
    match own {
        Link::Ns(i) if i == ours => (Outcome::Fail, format!("{}, the same as ours", show(t, i))),
        Link::Ns(i) => (Outcome::Pass, show(t, i)),
        Link::Denied => denied_namespace(s, m, t),
        Link::Gone => (
            Outcome::Unknown,
            format!(
                "no ns/{} (a kernel without {} namespaces?)",
                t.file(),
                t.file()
            ),
        ),
        Link::Error(e) => (Outcome::Unknown, format!("ns/{}: {e}", t.file())),
    }
}

/// A namespace link we may not read: what other kernel state still proves.
fn denied_namespace(s: &Snapshot, m: &Member, t: NsType) -> (Outcome, String) {
    let nspid = |p: &Proc| {
        p.nspid
            .iter()
            .map(u32::to_string)
            .collect::<Vec<_>>()
            .join(" ")
    };
    match t {
        NsType::Pid if m.proc.nspid.len() > s.caller.nspid.len() => (
            Outcome::Pass,
            format!(
                "link unreadable; NSpid {}: a pid namespace nested below ours",
                nspid(&m.proc)
            ),
        ),
        NsType::Pid => (
            Outcome::Fail,
            format!("link unreadable; NSpid {}: our own pid namespace", nspid(&m.proc)),
        ),
        NsType::User if m.proc.uid_map.is_some() && m.proc.uid_map != s.caller.uid_map => (
            Outcome::Pass,
            format!(
                "link unreadable; uid_map `{}` differs from ours, so the namespace does",
                one_line(m.proc.uid_map.as_deref().unwrap_or(""))
            ),
        ),
        NsType::Net => match (&m.proc.net, &s.caller.net) {
            (Some(theirs), Some(ours)) if sorted(&theirs.interfaces) != sorted(&ours.interfaces) => (
                Outcome::Pass,
                format!(
                    "link unreadable; its /proc/PID/net/dev lists {}, ours {}: another network namespace",
                    theirs.interfaces.join(", "),
                    ours.interfaces.join(", ")
                ),
            ),
            _ => (Outcome::Unknown, format!("ns/net {RUN_AS_ROOT}")),
        },
        NsType::Mnt => {
            let foreign = m.proc.mount_ids.as_ref().and_then(|theirs| {
                let ours = s.caller.mount_ids.as_ref()?;
                theirs.iter().find(|id| !ours.contains(id))
            });
            match foreign {
                Some(id) => (
                    Outcome::Pass,
                    format!(
                        "link unreadable; its /proc/PID/mountinfo shows mount {id}, which ours does \
                         not: another mount namespace"
                    ),
                ),
                None => (Outcome::Unknown, format!("ns/mnt {RUN_AS_ROOT}")),
            }
        }
        _ => (Outcome::Unknown, format!("ns/{} {RUN_AS_ROOT}", t.file())),
    }
}

fn sorted(v: &[String]) -> Vec<&str> {
    let mut out: Vec<&str> = v.iter().map(String::as_str).collect();
    out.sort_unstable();
    out
}

/// A map's lines joined with `; `, columns single-spaced.
fn one_line(map: &str) -> String {
    map.lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("; ")
}

/// `loopback-only`: only `lo`, and every route on `lo`.
fn loopback_only(s: &Snapshot) -> Check {
    let mut f = Findings::default();
    for m in &s.members {
        let Some(net) = &m.proc.net else {
            f.add(
                Outcome::Unknown,
                who(m, None),
                "/proc/PID/net/dev is unreadable",
            );
            continue;
        };
        let others: Vec<&str> = net
            .interfaces
            .iter()
            .map(String::as_str)
            .filter(|i| *i != "lo")
            .collect();
        let v4_off: Vec<&str> = net
            .ipv4_routes
            .iter()
            .map(String::as_str)
            .filter(|d| *d != "lo")
            .collect();
        let v6_off: Vec<String> = net
            .ipv6_routes
            .iter()
            .filter(|(_, d)| d != "lo")
            .map(|(dst, d)| format!("{dst} via {d}"))
            .collect();
        if others.is_empty() && v4_off.is_empty() && v6_off.is_empty() {
            f.add(
                Outcome::Pass,
                who(m, None),
                format!(
                    "interfaces: {}; {} IPv4 and {} IPv6 routes, all on lo",
                    if net.interfaces.is_empty() {
                        "none".to_string()
                    } else {
                        net.interfaces.join(", ")
                    },
                    net.ipv4_routes.len(),
                    net.ipv6_routes.len()
                ),
            );
            continue;
        }
        let mut what = vec![format!("interfaces: {}", net.interfaces.join(", "))];
        if !v4_off.is_empty() {
            what.push(format!("IPv4 routes via {}", dedup(&v4_off).join(", ")));
        }
        if !v6_off.is_empty() {
            what.push(format!(
                "{} IPv6 routes off lo (e.g. {})",
                v6_off.len(),
                v6_off[0]
            ));
        }
        f.add(Outcome::Fail, who(m, None), what.join("; "));
    }
    f.check(Property::LoopbackOnly, (Outcome::Unknown, "no process"))
}

fn dedup<'a>(v: &[&'a str]) -> Vec<&'a str> {
    let mut out: Vec<&str> = v.to_vec();
    out.sort_unstable();
    out.dedup();
    out
}

/// The filter count every command must reach: the init's + 1 (the last hop's).
/// Without an init, at least one filter.
fn filter_base(s: &Snapshot) -> (u32, String) {
    match init(s).and_then(|i| i.proc.tasks.first().map(|t| (i, t))) {
        Some((i, t)) => {
            let n = t.seccomp_filters.unwrap_or(0);
            (
                n,
                format!(
                    "{} is not under the sandbox's filter by design: Seccomp {}, {n} filter(s) \
                     inherited from its creator, so a command needs {} (ours is the one more)",
                    who(i, None),
                    t.seccomp.unwrap_or(0),
                    n + 1
                ),
            )
        }
        None => (
            0,
            "no sandbox init to count from: a command needs at least one filter".into(),
        ),
    }
}

/// `seccomp`: every thread of every command in filter mode with enough filters.
fn seccomp(s: &Snapshot) -> Check {
    let mut f = Findings::default();
    let (base, why) = filter_base(s);
    for m in commands(s) {
        for t in &m.proc.tasks {
            let (o, what) = seccomp_of(t, base);
            f.add(o, who(m, Some(t.tid)), what);
        }
    }
    f.note(why);
    f.check(
        Property::Seccomp,
        (
            Outcome::Unknown,
            "no command process is running: nothing under the sandbox's filter to check",
        ),
    )
}

fn seccomp_of(t: &Task, base: u32) -> (Outcome, String) {
    let want = base + 1;
    match (t.seccomp, t.seccomp_filters) {
        (Some(2), Some(n)) if n == want => (Outcome::Pass, format!("Seccomp 2, {n} filter(s)")),
        (Some(2), Some(n)) if n > want => (
            Outcome::Pass,
            format!(
                "Seccomp 2, {n} filters: {} stacked by the process itself on top of ours \
                 (filters only narrow)",
                n - want
            ),
        ),
        (Some(2), Some(n)) => (
            Outcome::Fail,
            format!("Seccomp 2 but {n} filter(s), expected {want}"),
        ),
        (Some(2), None) => (
            Outcome::Unknown,
            "Seccomp 2, no Seccomp_filters field".into(),
        ),
        (Some(mode), _) => (
            Outcome::Fail,
            format!(
                "Seccomp {mode} ({}), expected 2 (filter)",
                if mode == 0 { "disabled" } else { "strict" }
            ),
        ),
        (None, _) => (Outcome::Unknown, "no Seccomp field in status".into()),
    }
}

/// `no-new-privs`: every thread of every command.
fn no_new_privs(s: &Snapshot) -> Check {
    let mut f = Findings::default();
    for m in commands(s) {
        for t in &m.proc.tasks {
            match t.no_new_privs {
                Some(1) => f.add(Outcome::Pass, who(m, Some(t.tid)), "NoNewPrivs 1"),
                Some(n) => f.add(
                    Outcome::Fail,
                    who(m, Some(t.tid)),
                    format!("NoNewPrivs {n}"),
                ),
                None => f.add(
                    Outcome::Unknown,
                    who(m, Some(t.tid)),
                    "no NoNewPrivs field in status",
                ),
            }
        }
    }
    f.check(
        Property::NoNewPrivs,
        (
            Outcome::Unknown,
            "no command process is running: nothing to check",
        ),
    )
}

/// `capabilities`: all five sets empty in every thread of every process.
fn capabilities(s: &Snapshot) -> Check {
    let mut f = Findings::default();
    for m in &s.members {
        for t in &m.proc.tasks {
            let set: Vec<String> = CAP_FIELDS
                .iter()
                .zip(t.caps)
                .filter(|(_, v)| *v != Some(0))
                .map(|(name, v)| match v {
                    Some(v) => format!("{name} {v:016x}"),
                    None => format!("{name} missing"),
                })
                .collect();
            if set.is_empty() {
                f.add(Outcome::Pass, who(m, Some(t.tid)), "all five sets empty");
            } else {
                f.add(Outcome::Fail, who(m, Some(t.tid)), set.join(", "));
            }
        }
    }
    f.check(Property::Capabilities, (Outcome::Unknown, "no process"))
}

/// One line of an id map: (inside, outside, count).
fn map_lines(map: &str) -> Vec<(u64, u64, u64)> {
    map.lines()
        .filter_map(|l| {
            let v: Vec<u64> = l
                .split_whitespace()
                .filter_map(|x| x.parse().ok())
                .collect();
            (v.len() == 3).then(|| (v[0], v[1], v[2]))
        })
        .collect()
}

/// `id-maps`: exactly the shape the launcher writes (one id each, setgroups
/// deny) to the host ids the host chose; never host root.
fn id_maps(s: &Snapshot, expected: &Expected) -> Check {
    let mut f = Findings::default();
    let owner = s.members.iter().find_map(|m| m.proc.userns_owner);
    for m in &s.members {
        let (o, what) = id_maps_of(&m.proc, expected, owner);
        f.add(o, who(m, None), what);
    }
    match (expected.ids, owner) {
        (Some(ids), _) => f.note(format!(
            "expected (the host's record): uid {} -> host {}, gid {} -> host {}",
            ids.uid, ids.host_uid, ids.gid, ids.host_gid
        )),
        (None, Some(0)) => f.note(
            "the user namespace's creator is root: stockade then maps to an unprivileged host \
             id (never 0)",
        ),
        (None, Some(o)) => f.note(format!(
            "the user namespace's creator is uid {o}: an unprivileged creator maps its own uid"
        )),
        (None, None) => f.note(
            "the user namespace's creator is unknown (ns/user unreadable): judged by shape only",
        ),
    }
    f.check(Property::IdMaps, (Outcome::Unknown, "no process"))
}

fn id_maps_of(p: &Proc, expected: &Expected, owner: Option<u32>) -> (Outcome, String) {
    let (Some(uid_map), Some(gid_map)) = (&p.uid_map, &p.gid_map) else {
        return (Outcome::Unknown, "uid_map or gid_map unreadable".into());
    };
    let shown = format!(
        "uid_map `{}`, gid_map `{}`, setgroups {}",
        one_line(uid_map),
        one_line(gid_map),
        p.setgroups.as_deref().unwrap_or("?")
    );
    let mut wrong = Vec::new();
    for (name, map, want) in [
        (
            "uid_map",
            uid_map,
            expected.ids.map(|i| (i.uid, i.host_uid)),
        ),
        (
            "gid_map",
            gid_map,
            expected.ids.map(|i| (i.gid, i.host_gid)),
        ),
    ] {
        let lines = map_lines(map);
        match lines.as_slice() {
            [(inside, outside, 1)] => {
                if *outside == 0 {
                    wrong.push(format!("{name} maps to host root"));
                }
                if let Some((wi, wo)) = want {
                    if (*inside, *outside) != (u64::from(wi), u64::from(wo)) {
                        wrong.push(format!("{name} is not `{wi} {wo} 1`"));
                    }
                } else if name == "uid_map" {
                    if let Some(o) = owner.filter(|&o| o != 0) {
                        if *outside != u64::from(o) {
                            wrong.push(format!("uid_map maps to {outside}, not its creator {o}"));
                        }
                    }
                }
            }
            [(_, _, n)] => wrong.push(format!("{name} grants {n} ids")),
            l => wrong.push(format!("{name} has {} ranges", l.len())),
        }
    }
    if p.setgroups.as_deref() != Some("deny") {
        wrong.push("setgroups is not deny".into());
    }
    if wrong.is_empty() {
        (Outcome::Pass, shown)
    } else {
        (Outcome::Fail, format!("{}: {shown}", wrong.join(", ")))
    }
}

/// `cgroup-limits`: the sandbox's own cgroup holds every process and has the
/// limits asked for; a sandbox without limits has no cgroup of its own.
fn cgroup_limits(s: &Snapshot, expected: &Expected) -> Check {
    let mut f = Findings::default();
    stayed_in_own_cgroup(s, &mut f);
    let root = who(&s.members[0], None);
    match &expected.limits {
        None => shown_limits(s, &mut f),
        Some((_, LimitsLevel::None)) => f.add(
            Outcome::Pass,
            root,
            "no limits set (none were asked for): no cgroup of its own",
        ),
        Some((limits, LimitsLevel::Rlimit)) => rlimit_matches(s, limits, &mut f),
        Some((limits, _)) => {
            for dir in &expected.cgroup_dirs {
                if !s.cgroup.own().any(|d| d.dir.as_ref() == Some(dir)) {
                    let what = format!("not in {}, the cgroup made for it", dir.display());
                    f.add(Outcome::Fail, root.clone(), what);
                }
            }
            for (o, what) in limit_matches(&s.cgroup, limits) {
                f.add(o, root.clone(), what);
            }
        }
    }
    f.check(
        Property::CgroupLimits,
        (Outcome::Unknown, "nothing to check"),
    )
}

/// Every process is where the init is in each of the sandbox's own cgroups.
fn stayed_in_own_cgroup(s: &Snapshot, f: &mut Findings) {
    for d in s.cgroup.own() {
        for m in &s.members[1..] {
            match super::cgroup::path_in(&m.proc.cgroup, d.hierarchy) {
                Some(p) if p != d.path => f.add(
                    Outcome::Fail,
                    who(m, None),
                    format!(
                        "in {h}:{p}, outside the sandbox's {h}:{}",
                        d.path,
                        h = d.hierarchy
                    ),
                ),
                _ => {}
            }
        }
    }
}

/// Without the host's record: the own cgroups and their limit files, or the
/// commands' RLIMIT_NPROC when the sandbox set one (it differs from the one
/// the init inherited), or that there are no limits.
fn shown_limits(s: &Snapshot, f: &mut Findings) {
    let root = who(&s.members[0], None);
    let mut any = false;
    for d in s.cgroup.own() {
        let files: Vec<String> = d.files.iter().map(|(n, v)| format!("{n} {v}")).collect();
        let files = if files.is_empty() {
            String::new()
        } else {
            format!(" ({})", files.join(", "))
        };
        let what = format!("own cgroup {}:{}{files}", d.hierarchy, d.path);
        f.add(Outcome::Pass, root.clone(), what);
        any = true;
    }
    let inherited = init(s).and_then(|i| i.proc.max_processes);
    for m in commands(s).filter(|_| s.init.is_some()) {
        if let Some((Some(soft), hard)) = m.proc.max_processes.filter(|&l| Some(l) != inherited) {
            let hard = hard.map_or("unlimited".to_string(), |h| h.to_string());
            let what = format!("RLIMIT_NPROC {soft} (hard {hard}), set for the sandbox");
            f.add(Outcome::Pass, who(m, None), what);
            any = true;
        }
    }
    if !any {
        let what = "no limits set: no cgroup of its own (it shares its creator's)";
        f.add(Outcome::Pass, root, what);
    } else if s.cgroup.own().next().is_none() {
        f.add(Outcome::Pass, root, "no cgroup of its own");
    }
}

/// `--pids` without a usable cgroup: every command's RLIMIT_NPROC.
fn rlimit_matches(s: &Snapshot, limits: &crate::Limits, f: &mut Findings) {
    let n = limits.pids.unwrap_or(0);
    for m in commands(s) {
        match m.proc.max_processes {
            Some((Some(a), Some(b))) if a == n && b == n => f.add(
                Outcome::Pass,
                who(m, None),
                format!("RLIMIT_NPROC {n} (pids asked; no usable cgroup)"),
            ),
            other => f.add(
                Outcome::Fail,
                who(m, None),
                format!("RLIMIT_NPROC {other:?}, but pids {n} was asked"),
            ),
        }
    }
    if commands(s).next().is_none() {
        f.note("no command process is running: RLIMIT_NPROC is set on commands only");
    }
}

/// Each asked limit against the files of the sandbox's own cgroups.
fn limit_matches(view: &super::cgroup::View, limits: &crate::Limits) -> Vec<(Outcome, String)> {
    let mut out = Vec::new();
    if let Some(bytes) = limits.memory {
        // The kernel keeps whole pages.
        let page = nix::unistd::sysconf(nix::unistd::SysconfVar::PAGE_SIZE)
            .ok()
            .flatten()
            .map_or(4096, |p| p as u64);
        let want = bytes / page * page;
        let found = limit_file(view, "memory", "memory.limit_in_bytes")
            .or_else(|| limit_file(view, "unified", "memory.max"));
        let asked = bytes.to_string();
        out.push(compare("memory", &asked, found, |v| v.parse() == Ok(want)));
    }
    if let Some(n) = limits.pids {
        let found = limit_file(view, "pids", "pids.max")
            .or_else(|| limit_file(view, "unified", "pids.max"));
        out.push(compare("pids", &n.to_string(), found, |v| {
            v.parse() == Ok(n)
        }));
    }
    if let Some(millis) = limits.cpu_millis {
        let period = crate::cgroup::CPU_PERIOD_US;
        let want = format!("{} {period}", millis.saturating_mul(period) / 1000);
        // v1 keeps quota and period in two files; v2 `cpu.max` is "quota period".
        let v1 = limit_file(view, "cpu", "cpu.cfs_quota_us")
            .zip(limit_file(view, "cpu", "cpu.cfs_period_us"))
            .map(|((q, qv), (_, pv))| (format!("{q} and cpu.cfs_period_us"), format!("{qv} {pv}")));
        let found = v1.or_else(|| limit_file(view, "unified", "cpu.max"));
        let asked = format!("{millis} milli-cores");
        out.push(compare("cpu", &asked, found, |v| v == want));
    }
    out
}

/// (`path/file`, contents) of a limit file in the sandbox's own cgroup.
fn limit_file(view: &super::cgroup::View, hierarchy: &str, name: &str) -> Option<(String, String)> {
    let d = view.get(hierarchy).filter(|d| d.own)?;
    let path = format!("{}/{name}", d.path.trim_end_matches('/'));
    Some((path, d.file(name)?.to_string()))
}

fn compare(
    what: &str,
    asked: &str,
    found: Option<(String, String)>,
    ok: impl Fn(&str) -> bool,
) -> (Outcome, String) {
    match found {
        Some((file, v)) if ok(&v) => (Outcome::Pass, format!("{file} {v} ({what} asked: {asked})")),
        Some((file, v)) => (
            Outcome::Fail,
            format!("{file} {v}, but {what} {asked} was asked"),
        ),
        None => (
            Outcome::Fail,
            format!("{what} {asked} was asked but the sandbox's cgroup has no {what} limit file"),
        ),
    }
}

/// `landlock`: not exposed by the kernel.
fn landlock() -> Check {
    Check {
        property: Property::Landlock,
        result: Outcome::Unknown,
        evidence: vec![
            "the kernel exposes no task's Landlock domain: no /proc/PID/attr/landlock (proposed, \
             never merged), no status field; audit logs (6.15+) name a domain only when it \
             denies an access"
                .into(),
        ],
    }
}

/// `pid-ns-containment`: every process is in the init's pid namespace.
fn pid_ns_containment(s: &Snapshot) -> Check {
    let mut f = Findings::default();
    let Some(init) = init(s) else {
        let root = &s.members[0];
        f.add(
            Outcome::Fail,
            who(root, None),
            "in our own pid namespace: there is no sandbox pid namespace to be inside",
        );
        return f.check(Property::PidNsContainment, (Outcome::Fail, ""));
    };
    let init_ns = init.proc.ns.get(&NsType::Pid).and_then(Link::inode);
    let depth = init.proc.nspid.len();
    match init_ns {
        Some(ns) => f.note(format!("the sandbox's: {}", show(NsType::Pid, ns))),
        None => f.note(format!(
            "the sandbox's pid namespace: the init's ({} of NSpid depth {depth}; link {RUN_AS_ROOT})",
            who(init, None)
        )),
    }
    for m in commands(s) {
        let mine = m.proc.ns.get(&NsType::Pid).and_then(Link::inode);
        let same_depth = m.proc.nspid.len() == depth;
        let (o, what) = match (mine, init_ns) {
            (Some(a), Some(b)) if a == b => (Outcome::Pass, show(NsType::Pid, a)),
            (Some(a), Some(_)) => (
                Outcome::Fail,
                format!("{}: not the sandbox's", show(NsType::Pid, a)),
            ),
            // A descendant's pid namespace is its parent's or below it; at the
            // same depth it is the same.
            _ if m.found_by == tree::DESCENDANT && same_depth => (
                Outcome::Pass,
                format!("a descendant of the init at its NSpid depth {depth}"),
            ),
            _ if !same_depth => (
                Outcome::Fail,
                format!("NSpid depth {}, the init's is {depth}", m.proc.nspid.len()),
            ),
            _ => (Outcome::Unknown, format!("ns/pid {RUN_AS_ROOT}")),
        };
        f.add(o, who(m, None), what);
    }
    f.check(
        Property::PidNsContainment,
        (Outcome::Pass, "only the init is running"),
    )
}
