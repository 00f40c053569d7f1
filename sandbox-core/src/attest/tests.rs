//! Unit tests of the attestation on made-up snapshots: each property is
//! broken on its own and must be the only one that fails.

use std::collections::BTreeMap;
use std::path::PathBuf;

use super::cgroup::{Dir, View};
use super::procfs::{self, Link, NetView, NsType, Proc, Task};
use super::properties::evaluate;
use super::{tree, Expected, Ids, Member, Outcome, Property, Role, Snapshot};
use crate::{Limits, LimitsLevel};

const OURS: u64 = 4026531000;
const SANDBOX: u64 = 4026532000;

fn ns(base: u64) -> BTreeMap<NsType, Link> {
    NsType::ALL
        .iter()
        .enumerate()
        .map(|(i, &t)| (t, Link::Ns(base + i as u64)))
        .collect()
}

fn task(tid: u32, seccomp: u32, filters: u32, nnp: u32, caps: u64) -> Task {
    Task {
        tid,
        caps: [Some(caps); 5],
        seccomp: Some(seccomp),
        seccomp_filters: Some(filters),
        no_new_privs: Some(nnp),
    }
}

fn net(interfaces: &[&str]) -> Option<NetView> {
    Some(NetView {
        interfaces: interfaces.iter().map(|s| s.to_string()).collect(),
        ipv4_routes: Vec::new(),
        ipv6_routes: vec![("::1/128".into(), "lo".into())],
    })
}

const SANDBOX_CGROUP: &str = "8:pids:/stockade-1-0-a\n4:memory:/stockade-1-0-a\n1:cpu:/\n0::/\n";

/// The attesting process: root on the host.
fn caller() -> Proc {
    Proc {
        pid: 50,
        comm: "auditor".into(),
        nspid: vec![50],
        tasks: vec![task(50, 0, 0, 0, 0x1ff_ffff_ffff)],
        ns: ns(OURS),
        pid_for_children: Some(Link::Ns(OURS + 1)),
        time_for_children: Some(Link::Ns(OURS + 7)),
        uid_map: Some("0 0 4294967295\n".into()),
        gid_map: Some("0 0 4294967295\n".into()),
        setgroups: Some("allow".into()),
        cgroup: "8:pids:/\n4:memory:/\n1:cpu:/\n0::/\n".into(),
        net: net(&["lo", "eth0"]),
        mount_ids: Some(vec![1, 2, 3]),
        ..Proc::default()
    }
}

/// A sandbox as stockade builds it: the init (own time namespace still ours)
/// and one command.
fn good() -> Snapshot {
    let mut init_ns = ns(SANDBOX);
    init_ns.insert(NsType::Time, Link::Ns(OURS + 7));
    let common = Proc {
        uid_map: Some("         0      65534          1\n".into()),
        gid_map: Some("         0      65534          1\n".into()),
        setgroups: Some("deny".into()),
        cgroup: SANDBOX_CGROUP.into(),
        net: net(&["lo"]),
        userns_owner: Some(0),
        mount_ids: Some(vec![90, 91]),
        pid_for_children: Some(Link::Ns(SANDBOX + 1)),
        time_for_children: Some(Link::Ns(SANDBOX + 7)),
        ..Proc::default()
    };
    let init = Proc {
        pid: 100,
        comm: "stockade-init".into(),
        ppid: 99,
        nspid: vec![100, 1],
        tasks: vec![task(100, 0, 0, 0, 0)],
        ns: init_ns,
        ..common.clone()
    };
    let command = Proc {
        pid: 101,
        comm: "sleep".into(),
        ppid: 100,
        nspid: vec![101, 2],
        tasks: vec![task(101, 2, 1, 1, 0)],
        ns: ns(SANDBOX),
        max_processes: Some((None, None)),
        ..common
    };
    Snapshot {
        asked: 100,
        caller: caller(),
        init: Some(100),
        members: vec![
            Member {
                proc: init,
                role: Role::Init,
                found_by: tree::INIT,
            },
            Member {
                proc: command,
                role: Role::Command,
                found_by: tree::DESCENDANT,
            },
        ],
        cgroup: View::default(),
        reduced: false,
    }
}

fn expected() -> Expected {
    Expected::new(
        Ids {
            uid: 0,
            gid: 0,
            host_uid: 65534,
            host_gid: 65534,
        },
        &Limits::default(),
        LimitsLevel::None,
    )
}

fn failed(s: &Snapshot, e: &Expected) -> Vec<Property> {
    evaluate(s, e).failed()
}

fn evidence(s: &Snapshot, e: &Expected, p: Property) -> String {
    evaluate(s, e).check(p).unwrap().evidence.join("\n")
}

fn command(s: &mut Snapshot) -> &mut Proc {
    &mut s.members[1].proc
}

#[test]
fn a_sandbox_as_built_passes_everything_but_landlock_which_is_unknown() {
    for e in [expected(), Expected::default()] {
        let r = evaluate(&good(), &e);
        assert!(r.passed(), "{r}");
        assert_eq!(r.with(Outcome::Unknown), vec![Property::Landlock], "{r}");
        assert_eq!(r.checks.len(), Property::ALL.len());
        let order: Vec<Property> = r.checks.iter().map(|c| c.property).collect();
        assert_eq!(order, Property::ALL);
    }
    let text = evidence(&good(), &expected(), Property::TimeNs);
    assert!(
        text.contains("time_for_children time:[4026532007]"),
        "{text}"
    );
}

/// Each change breaks exactly one property (and the control above passes).
#[test]
fn each_broken_layer_fails_exactly_its_own_property() {
    type Break = fn(&mut Snapshot);
    let cases: Vec<(Property, Break)> = vec![
        (Property::UserNs, |s| {
            command(s).ns.insert(NsType::User, Link::Ns(OURS));
        }),
        (Property::PidNs, |s| {
            command(s).ns.insert(NsType::Pid, Link::Ns(OURS + 1));
            // pid-ns-containment sees it too: that is the point of it.
        }),
        (Property::NetNs, |s| {
            command(s).ns.insert(NsType::Net, Link::Ns(OURS + 2));
        }),
        (Property::MntNs, |s| {
            command(s).ns.insert(NsType::Mnt, Link::Ns(OURS + 3));
        }),
        (Property::UtsNs, |s| {
            s.members[0].proc.ns.insert(NsType::Uts, Link::Ns(OURS + 4));
        }),
        (Property::IpcNs, |s| {
            command(s).ns.insert(NsType::Ipc, Link::Ns(OURS + 5));
        }),
        (Property::CgroupNs, |s| {
            command(s).ns.insert(NsType::Cgroup, Link::Ns(OURS + 6));
        }),
        (Property::TimeNs, |s| {
            s.members[0].proc.time_for_children = Some(Link::Ns(OURS + 7));
        }),
        (Property::LoopbackOnly, |s| {
            command(s).net = net(&["lo", "veth0"]);
        }),
        (Property::Seccomp, |s| {
            command(s).tasks[0].seccomp_filters = Some(0);
        }),
        (Property::NoNewPrivs, |s| {
            command(s).tasks[0].no_new_privs = Some(0);
        }),
        (Property::Capabilities, |s| {
            s.members[0].proc.tasks[0].caps[3] = Some(1 << 21);
        }),
        (Property::IdMaps, |s| {
            command(s).setgroups = Some("allow".into());
        }),
        (Property::PidNsContainment, |s| {
            // A process in the sandbox's cgroup but in another pid namespace.
            let mut stray = s.members[1].clone();
            stray.proc.pid = 300;
            stray.proc.ns.insert(NsType::Pid, Link::Ns(SANDBOX + 100));
            stray.found_by = tree::CGROUP;
            s.members.push(stray);
        }),
    ];
    for (property, break_it) in cases {
        let mut s = good();
        break_it(&mut s);
        let mut want = vec![property];
        if property == Property::PidNs {
            want.push(Property::PidNsContainment);
        }
        assert_eq!(failed(&s, &expected()), want, "breaking {property}");
    }
}

#[test]
fn seccomp_count_is_the_inits_plus_one_and_stacking_more_is_allowed() {
    let e = expected();
    // The creator (and so the init) under 2 filters: a command needs 3.
    let mut s = good();
    s.members[0].proc.tasks[0].seccomp = Some(2);
    s.members[0].proc.tasks[0].seccomp_filters = Some(2);
    command(&mut s).tasks[0].seccomp_filters = Some(2);
    assert_eq!(failed(&s, &e), vec![Property::Seccomp]);
    assert!(evidence(&s, &e, Property::Seccomp).contains("2 filter(s), expected 3"));
    command(&mut s).tasks[0].seccomp_filters = Some(3);
    assert!(failed(&s, &e).is_empty());
    command(&mut s).tasks[0].seccomp_filters = Some(5);
    assert!(failed(&s, &e).is_empty());
    assert!(evidence(&s, &e, Property::Seccomp).contains("2 stacked by the process itself"));
    // Strict mode or none at all.
    for mode in [0, 1] {
        command(&mut s).tasks[0].seccomp = Some(mode);
        assert_eq!(failed(&s, &e), vec![Property::Seccomp]);
    }
}

#[test]
fn every_thread_is_checked() {
    let mut s = good();
    let mut t = command(&mut s).tasks[0].clone();
    t.tid = 102;
    t.caps[2] = Some(1);
    t.no_new_privs = Some(0);
    command(&mut s).tasks.push(t);
    assert_eq!(
        failed(&s, &expected()),
        vec![Property::NoNewPrivs, Property::Capabilities]
    );
    assert!(
        evidence(&s, &expected(), Property::Capabilities).starts_with("101/102 (sleep): CapEff")
    );
}

#[test]
fn id_maps_must_have_exactly_the_launchers_shape() {
    let e = expected();
    let cases = [
        ("0 65534 2\n", "uid_map grants 2 ids"),
        ("0 65534 1\n1 100000 1\n", "uid_map has 2 ranges"),
        ("0 0 1\n", "uid_map maps to host root"),
        ("0 1000 1\n", "uid_map is not `0 65534 1`"),
        ("5 65534 1\n", "uid_map is not `0 65534 1`"),
    ];
    for (map, why) in cases {
        let mut s = good();
        command(&mut s).uid_map = Some(map.into());
        assert_eq!(failed(&s, &e), vec![Property::IdMaps], "{map}");
        assert!(
            evidence(&s, &e, Property::IdMaps).contains(why),
            "{map}: {why}"
        );
    }
    // Without the host's record: an unprivileged creator maps its own uid only.
    let mut s = good();
    for m in &mut s.members {
        m.proc.userns_owner = Some(1000);
        m.proc.uid_map = Some("0 1000 1\n".into());
    }
    assert!(failed(&s, &Expected::default()).is_empty());
    command(&mut s).uid_map = Some("0 1001 1\n".into());
    assert_eq!(failed(&s, &Expected::default()), vec![Property::IdMaps]);
}

#[test]
fn unreadable_links_are_decided_by_other_kernel_state_or_unknown() {
    let e = expected();
    let mut s = good();
    for t in NsType::ALL {
        s.members[0].proc.ns.insert(t, Link::Denied);
    }
    s.members[0].proc.time_for_children = Some(Link::Denied);
    let r = evaluate(&s, &e);
    assert!(r.passed(), "{r}");
    // NSpid depth, uid_map, the interface list and the mount ids prove these.
    for p in [
        Property::PidNs,
        Property::UserNs,
        Property::NetNs,
        Property::MntNs,
    ] {
        assert_eq!(r.check(p).unwrap().result, Outcome::Pass, "{p}: {r}");
    }
    for p in [
        Property::UtsNs,
        Property::IpcNs,
        Property::CgroupNs,
        Property::TimeNs,
    ] {
        let c = r.check(p).unwrap();
        assert_eq!(c.result, Outcome::Unknown, "{p}");
        assert!(c.evidence[0].contains("attest as root"), "{p}: {c:?}");
    }
    // The same proofs refute when the kernel state is ours.
    let mut s2 = s.clone();
    s2.members[0].proc.nspid = vec![100];
    assert!(failed(&s2, &e).contains(&Property::PidNs));
    let mut s3 = s.clone();
    s3.members[0].proc.uid_map = s3.caller.uid_map.clone();
    s3.members[0].proc.net = s3.caller.net.clone();
    s3.members[0].proc.mount_ids = Some(vec![2, 3]);
    let r3 = evaluate(&s3, &e);
    for p in [Property::UserNs, Property::NetNs, Property::MntNs] {
        assert_eq!(r3.check(p).unwrap().result, Outcome::Unknown, "{p}: {r3}");
    }
}

#[test]
fn a_process_that_is_not_in_a_sandbox_fails_every_namespace_property() {
    let mut plain = caller();
    plain.pid = 70;
    plain.comm = "sleep".into();
    plain.nspid = vec![70];
    let s = Snapshot {
        asked: 70,
        caller: caller(),
        init: None,
        members: vec![Member {
            proc: plain,
            role: Role::Command,
            found_by: tree::ASKED,
        }],
        cgroup: View::default(),
        reduced: false,
    };
    let r = evaluate(&s, &Expected::default());
    let mut want: Vec<Property> = Property::ALL.to_vec();
    want.retain(|p| !matches!(p, Property::CgroupLimits | Property::Landlock));
    assert_eq!(r.failed(), want, "{r}");
    assert!(r.notes[0].contains("no sandbox init"), "{r}");
}

#[test]
fn an_idle_sandbox_attests_its_init_and_says_so() {
    let mut s = good();
    s.members.truncate(1);
    let r = evaluate(&s, &expected());
    assert!(r.passed(), "{r}");
    assert!(r.notes[0].contains("idle"), "{r}");
    for p in [Property::Seccomp, Property::NoNewPrivs] {
        assert_eq!(r.check(p).unwrap().result, Outcome::Unknown, "{p}");
    }
    assert_eq!(
        r.check(Property::PidNsContainment).unwrap().result,
        Outcome::Pass
    );
}

fn limited_view() -> View {
    let dir = |h: &'static str, files: &[(&str, &str)]| Dir {
        hierarchy: h,
        path: "/stockade-1-0-a".into(),
        dir: Some(PathBuf::from(format!("/sys/fs/cgroup/{h}/stockade-1-0-a"))),
        own: true,
        files: files
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect(),
    };
    View {
        dirs: vec![
            dir("memory", &[("memory.limit_in_bytes", "1998848")]),
            dir("pids", &[("pids.max", "32")]),
            dir(
                "cpu",
                &[
                    ("cpu.cfs_quota_us", "50000"),
                    ("cpu.cfs_period_us", "100000"),
                ],
            ),
        ],
        procs: vec![100, 101],
    }
}

fn limited() -> Expected {
    let mut e = Expected::new(
        expected().ids.unwrap(),
        // Not a whole number of pages: the kernel keeps 488 pages.
        &Limits::new().memory(2_000_000).pids(32).cpu(0.5),
        LimitsLevel::CgroupV1,
    );
    e.cgroup_dirs = limited_view()
        .dirs
        .iter()
        .filter_map(|d| d.dir.clone())
        .collect();
    e
}

#[test]
fn limits_are_compared_with_what_was_asked() {
    let mut s = good();
    s.members[1].proc.cgroup =
        "8:pids:/stockade-1-0-a\n4:memory:/stockade-1-0-a\n1:cpu:/stockade-1-0-a\n0::/\n".into();
    s.cgroup = limited_view();
    let r = evaluate(&s, &limited());
    assert!(r.passed(), "{r}");
    let text = evidence(&s, &limited(), Property::CgroupLimits);
    assert!(text.contains("pids.max 32"), "{text}");
    // One limit loosened on the host.
    let mut loose = s.clone();
    loose.cgroup.dirs[1].files[0].1 = "64".into();
    assert_eq!(failed(&loose, &limited()), vec![Property::CgroupLimits]);
    assert!(evidence(&loose, &limited(), Property::CgroupLimits)
        .contains("pids.max 64, but pids 32 was asked"));
    // A limit file missing.
    let mut gone = s.clone();
    gone.cgroup.dirs[2].files.clear();
    assert_eq!(failed(&gone, &limited()), vec![Property::CgroupLimits]);
    // A process moved out of the sandbox's cgroup.
    let mut escaped = s.clone();
    escaped.members[1].proc.cgroup =
        "8:pids:/\n4:memory:/stockade-1-0-a\n1:cpu:/stockade-1-0-a\n".into();
    assert_eq!(failed(&escaped, &limited()), vec![Property::CgroupLimits]);
    assert!(evidence(&escaped, &limited(), Property::CgroupLimits)
        .contains("outside the sandbox's pids"));
    // The init is not in the cgroup made for it.
    let mut elsewhere = s.clone();
    elsewhere.cgroup.dirs[0].own = false;
    assert_eq!(failed(&elsewhere, &limited()), vec![Property::CgroupLimits]);
}

#[test]
fn a_pids_limit_without_a_cgroup_is_the_commands_rlimit() {
    let e = Expected::new(
        expected().ids.unwrap(),
        &Limits::new().pids(16),
        LimitsLevel::Rlimit,
    );
    let mut s = good();
    command(&mut s).max_processes = Some((Some(16), Some(16)));
    assert!(failed(&s, &e).is_empty());
    command(&mut s).max_processes = Some((None, None));
    assert_eq!(failed(&s, &e), vec![Property::CgroupLimits]);
}

#[test]
fn parsers_read_the_kernels_formats() {
    let stat =
        "4242 (a (b) c) S 17 4242 4242 0 -1 4194560 99 0 0 0 0 0 0 0 20 0 1 0 123456 2453504 \
                203 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0";
    let st = procfs::parse_stat(stat).unwrap();
    assert_eq!(
        (st.start_time, st.ppid, st.comm.as_str(), st.state),
        (123456, 17, "a (b) c", 'S')
    );
    assert_eq!(procfs::parse_ns_link("net:[4026531833]"), Some(4026531833));
    assert_eq!(procfs::parse_ns_link("net:4026531833"), None);
    let dev = "Inter-|   Receive |  Transmit\n face |bytes packets\n    lo: 0 0\n  eth0: 1 2\n";
    assert_eq!(procfs::parse_net_dev(dev), ["lo", "eth0"]);
    let route = "Iface\tDestination\tGateway\n eth0\t00000000\t010200C0\n";
    assert_eq!(procfs::parse_ipv4_routes(route), ["eth0"]);
    let v6 = "00000000000000000000000000000001 80 00000000000000000000000000000000 00 \
              00000000000000000000000000000000 00000000 00000002 00000000 80200001       lo\n\
              fd000000000000000000000000000000 40 00000000000000000000000000000000 00 \
              00000000000000000000000000000000 00000100 00000001 00000000 00000001     eth0\n";
    assert_eq!(
        procfs::parse_ipv6_routes(v6),
        [
            ("::1/128".to_string(), "lo".to_string()),
            ("fd00::/64".into(), "eth0".into())
        ]
    );
    let limits = "Limit                     Soft Limit           Hard Limit           Units\n\
                  Max processes             16                   unlimited            processes\n";
    assert_eq!(procfs::max_processes(limits), Some((Some(16), None)));
    let t = procfs::parse_task(
        7,
        "Name:\tx\nCapInh:\t0000000000000000\nCapPrm:\t0000000000000000\nCapEff:\t0000000000000000\n\
         CapBnd:\t000001ffffffffff\nCapAmb:\t0000000000000000\nNoNewPrivs:\t1\nSeccomp:\t2\n\
         Seccomp_filters:\t3\n",
    );
    assert_eq!(
        t.caps,
        [Some(0), Some(0), Some(0), Some(0x1ff_ffff_ffff), Some(0)]
    );
    assert_eq!(
        (t.seccomp, t.seccomp_filters, t.no_new_privs),
        (Some(2), Some(3), Some(1))
    );
}

#[test]
fn the_table_has_one_row_per_property_and_a_verdict() {
    let mut s = good();
    command(&mut s).net = net(&["lo", "eth0"]);
    let text = evaluate(&s, &expected()).to_string();
    for p in Property::ALL {
        assert!(text.lines().any(|l| l.starts_with(p.name())), "{p}: {text}");
    }
    assert!(text.contains("loopback-only       FAIL"), "{text}");
    assert!(
        text.ends_with("result: FAIL: loopback-only (unknown: landlock)\n"),
        "{text}"
    );
    let json = serde_json::to_value(evaluate(&good(), &expected())).unwrap();
    assert_eq!(json["checks"][9]["property"], "seccomp");
    assert_eq!(json["checks"][9]["result"], "pass");
    assert_eq!(json["processes"][0]["role"], "init");
}

#[test]
fn without_the_hosts_record_only_an_rlimit_the_sandbox_set_counts() {
    let e = Expected::default();
    let mut s = good();
    command(&mut s).max_processes = Some((Some(16), Some(16)));
    s.members[0].proc.max_processes = Some((Some(96365), Some(96365)));
    let text = evidence(&s, &e, Property::CgroupLimits);
    assert!(
        text.contains("RLIMIT_NPROC 16 (hard 16), set for the sandbox"),
        "{text}"
    );
    assert!(!text.contains("no limits set"), "{text}");
    // Inherited from the creator like the init's: not a limit of the sandbox.
    command(&mut s).max_processes = Some((Some(96365), Some(96365)));
    let text = evidence(&s, &e, Property::CgroupLimits);
    assert!(text.contains("no limits set"), "{text}");
    assert!(!text.contains("RLIMIT_NPROC"), "{text}");
}

#[test]
fn names_the_sandbox_chose_cannot_forge_table_rows() {
    let mut s = good();
    command(&mut s).comm = "x\nseccomp             pass".into();
    command(&mut s).tasks[0].seccomp = Some(0);
    let text = evaluate(&s, &expected()).to_string();
    assert!(!text.contains("\nseccomp             pass"), "{text}");
    assert!(text.contains("101 (x\\nseccomp"), "{text}");
    assert_eq!(
        procfs::parse_net_dev("h\nh\n  e\x1b[2K: 0 0\n"),
        ["e\\u{1b}[2K"]
    );
}

/// A reduced-mode sandbox as an unprivileged caller gets it: supervisor and
/// command in all our namespaces, the command under one filter more than
/// the supervisor, `no_new_privs`, every capability set empty but the
/// bounding set.
fn reduced() -> Snapshot {
    let bounding_only = |tid, seccomp, filters, nnp| {
        let mut t = task(tid, seccomp, filters, nnp, 0);
        t.caps[3] = Some(0x1ff_ffff_ffff);
        t
    };
    let host = Proc {
        ns: ns(OURS),
        pid_for_children: Some(Link::Ns(OURS + 1)),
        time_for_children: Some(Link::Ns(OURS + 7)),
        uid_map: Some("0 0 4294967295\n".into()),
        gid_map: Some("0 0 4294967295\n".into()),
        setgroups: Some("allow".into()),
        cgroup: "8:pids:/\n4:memory:/\n1:cpu:/\n0::/\n".into(),
        net: net(&["lo", "eth0"]),
        mount_ids: Some(vec![1, 2, 3]),
        ..Proc::default()
    };
    let supervisor = Proc {
        pid: 200,
        comm: "stockade-init".into(),
        ppid: 50,
        nspid: vec![200],
        tasks: vec![bounding_only(200, 0, 0, 0)],
        ..host.clone()
    };
    let command = Proc {
        pid: 201,
        comm: "sleep".into(),
        ppid: 200,
        nspid: vec![201],
        tasks: vec![bounding_only(201, 2, 1, 1)],
        ..host
    };
    Snapshot {
        asked: 200,
        caller: caller(),
        init: Some(200),
        members: vec![
            Member {
                proc: supervisor,
                role: Role::Init,
                found_by: tree::ASKED,
            },
            Member {
                proc: command,
                role: Role::Command,
                found_by: tree::DESCENDANT,
            },
        ],
        cgroup: View::default(),
        reduced: true,
    }
}

#[test]
fn reduced_mode_reports_its_missing_layers_and_still_checks_the_rest() {
    let r = evaluate(&reduced(), &Expected::default());
    assert!(r.passed(), "{r}");
    assert_eq!(r.mode, crate::reduced::Mode::Reduced);
    let want: Vec<String> = crate::reduced::Mode::Reduced
        .missing_layers(false)
        .iter()
        .map(|s| s.to_string())
        .collect();
    let mut got = r.missing.clone();
    let mut want_plus = want.clone();
    // Attest also names what follows from them.
    want_plus.extend(["loopback-only", "id-maps", "pid-ns-containment"].map(String::from));
    got.sort();
    want_plus.sort();
    assert_eq!(got, want_plus, "{r}");
    for p in [Property::Seccomp, Property::NoNewPrivs] {
        assert_eq!(r.check(p).unwrap().result, Outcome::Pass, "{p}: {r}");
    }
    let text = r.to_string();
    assert!(text.contains("reduced-mode supervisor 200"), "{text}");
    assert!(
        text.contains("result: pass (reduced mode, missing: user-ns"),
        "{text}"
    );
    let json = serde_json::to_value(&r).unwrap();
    assert_eq!(json["mode"], "reduced");
    assert_eq!(json["checks"][0]["result"], "missing");

    // A real breach still fails: a command without no_new_privs, or with
    // an effective capability.
    let mut s = reduced();
    s.members[1].proc.tasks[0].no_new_privs = Some(0);
    s.members[1].proc.tasks[0].caps[2] = Some(1 << 21);
    let r = evaluate(&s, &Expected::default());
    assert_eq!(
        r.failed(),
        vec![Property::NoNewPrivs, Property::Capabilities],
        "{r}"
    );
    // The full mode's snapshot has no missing layers.
    let full = evaluate(&good(), &expected());
    assert!(full.missing.is_empty() && full.mode == crate::reduced::Mode::Full);
}
