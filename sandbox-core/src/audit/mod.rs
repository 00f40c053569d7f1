//! Landlock denials from the kernel's audit log: which accesses the sandbox's
//! Landlock domain refused (`fs.read_file` on `/etc/shadow`, ...), as events.
//!
//! # Where the kernel reports them
//!
//! Since Landlock ABI 7 (Linux 6.15) a denial is logged through the audit
//! subsystem (security/landlock/audit.c) as an `AUDIT_LANDLOCK_ACCESS`
//! record (type 1423: `domain=<hex> blockers=<list> <object fields>`); the
//! first logged denial of a domain also carries an `AUDIT_LANDLOCK_DOMAIN`
//! record (1424: `domain=<hex> status=allocated mode=enforcing pid=<host pid
//! of the process that called landlock_restrict_self> uid= exe= comm=`), and
//! the domain's release a `status=deallocated denials=<N>` one. A denial is
//! logged only when all of these hold:
//!
//! - audit is enabled (`audit_enabled`, `auditctl -e 1` or `audit=1`);
//! - the denial happened before the domain's creator called `execve`, unless
//!   the domain was created with `LANDLOCK_RESTRICT_SELF_LOG_NEW_EXEC_ON`
//!   (`1 << 1`), which a sandbox that execs its command must set (and not
//!   `LANDLOCK_RESTRICT_SELF_LOG_SAME_EXEC_OFF`, `1 << 0`, which would keep
//!   the pre-exec denials quiet and, alone, disable the domain's logs);
//! - no enclosing domain was created with
//!   `LANDLOCK_RESTRICT_SELF_LOG_SUBDOMAINS_OFF` (`1 << 2`);
//! - the youngest domain denying the access is the one that logs: a program
//!   that stacks its own domain inside the sandbox gets its own domain id
//!   (and may silence it), so these events are observability, not a
//!   security boundary;
//! - no audit rule excludes the record types, and the kernel did not drop
//!   the record (rate limit, backlog limit).
//!
//! Reading them takes a `NETLINK_AUDIT` socket in the `AUDIT_NLGRP_READLOG`
//! multicast group: `CAP_AUDIT_READ` in the initial user namespace, a socket
//! in the initial network namespace; the audit status query needs
//! `CAP_AUDIT_CONTROL` in the initial PID namespace. In short: root on the
//! host. [`availability`] checks all this without changing anything.
//!
//! With audit enabled and no audit daemon, the kernel also copies every
//! record to its own log (rate-limited); joining the READLOG group is itself
//! logged (an `AUDIT_EVENT_LISTENER` record).
//!
//! # How a run uses it
//!
//! 1. [`start`] before the command can run: records are multicast only to
//!    readers already listening, and the domain's creator pid appears only
//!    in its *first* logged denial.
//! 2. [`watch`] with the command's host pid (the process that called
//!    `landlock_restrict_self`) once known; denials that came before are
//!    kept for a few seconds and delivered on registration.
//! 3. [`Watch::flush`] when the run ends, so its events are complete;
//!    [`Watch::stats`] for what was delivered and dropped.
//!
//! Module map: [`record`] parses record text; [`netlink`] speaks the audit
//! protocol; [`landlock`] turns records into [`LandlockDenial`]s and matches
//! them to watches; [`probe`] decides availability; [`subscriber`] is the
//! reading thread.
//!
//! Attribution is by creator pid, which is unique while the creator lives:
//! a domain created by an earlier process whose pid the command later
//! reuses would be attributed to the command. The backlog's five-second
//! window and the domain's release record (which forgets it) keep this
//! unlikely; nothing here grants or withholds access either way.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

pub mod landlock;
pub mod netlink;
pub mod probe;
pub mod record;
pub mod subscriber;

pub use probe::{Reason, Unavailable};
pub use subscriber::{Watch, WatchStats, MAX_DENIALS_PER_WATCH};

/// One access a sandbox's Landlock domain denied, from the kernel's audit
/// log.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct LandlockDenial {
    /// When the kernel logged it (its coarse clock; millisecond resolution).
    #[serde(serialize_with = "crate::events::unix_seconds")]
    pub at: SystemTime,
    /// The audit event's serial, to find it with `ausearch -a`.
    pub serial: u64,
    /// The Landlock domain that denied it (hex in JSON, as in the audit log).
    #[serde(serialize_with = "hex")]
    pub domain: u64,
    /// Host pid of the process that created the domain: the sandbox's
    /// command process.
    pub creator_pid: u32,
    /// Host pid of the process that was denied (`None` when the kernel wrote
    /// no `AUDIT_SYSCALL` record for the event, e.g. for a process that
    /// started before audit was first enabled).
    pub pid: Option<u32>,
    /// That process's command name.
    pub comm: Option<String>,
    /// That process's executable, as the kernel names it.
    pub exe: Option<String>,
    /// The missing rights: `fs.read_file`, `fs.write_file`, `fs.execute`,
    /// `fs.make_reg`, `fs.refer`, `fs.ioctl_dev`, `net.bind_tcp`,
    /// `net.connect_tcp`, `scope.abstract_unix_socket`, `scope.signal`,
    /// `ptrace`, `fs.change_topology`...
    pub blockers: Vec<String>,
    /// The object's path, for filesystem denials: as seen from the denied
    /// process's root, so inside the sandbox.
    pub path: Option<String>,
    /// The object's other fields as the kernel names them: `dev` and `ino`
    /// for files, `name` for a directory entry, `opid`/`ocomm` for a signal
    /// or ptrace target, `daddr`/`dest`/`saddr`/`src` for a TCP port,
    /// `ioctlcmd`. Strings are decoded.
    pub object: BTreeMap<String, String>,
}

fn hex<S: serde::Serializer>(v: &u64, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&format!("{v:x}"))
}

/// Receives a watch's denials, on the subscriber's thread: keep it short,
/// and do not call back into this module from it.
pub type Sink = Arc<dyn Fn(LandlockDenial) + Send + Sync>;

/// Whether this process can see Landlock denials now, and if not, why and
/// how to fix it. Read-only: changes nothing on the host.
pub fn availability() -> Result<(), Unavailable> {
    probe::judge(&probe::gather())
}

/// Start the subscriber (idempotent; checks [`availability`] each call).
/// Call it before the command can run, or its first denial, which alone
/// names the domain's creator, is missed.
pub fn start() -> Result<(), Unavailable> {
    subscriber::hub().map(|_| ())
}

/// Deliver to `sink` every denial of the Landlock domain(s) created by host
/// pid `creator_pid`, including those of the last few seconds. `None` when
/// denials are not visible here (see [`availability`]). Dropping the
/// [`Watch`] stops delivery.
pub fn watch(creator_pid: u32, sink: Sink) -> Option<Watch> {
    let hub = subscriber::hub().ok()?;
    Some(hub.watch(creator_pid, sink))
}

/// Wait until every denial the kernel logged before this call has been
/// delivered (at most `timeout`); `true` if so or if no subscriber runs.
pub fn flush(timeout: Duration) -> bool {
    match subscriber::running() {
        Some(hub) => hub.flush(timeout),
        None => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_denial_serializes_with_hex_domain_and_float_time() {
        let d = LandlockDenial {
            at: SystemTime::UNIX_EPOCH + Duration::from_millis(1_700_000_000_250),
            serial: 9,
            domain: 0x1a2b3c4d5,
            creator_pid: 40,
            pid: Some(41),
            comm: Some("cat".into()),
            exe: Some("/usr/bin/cat".into()),
            blockers: vec!["fs.read_file".into()],
            path: Some("/etc/shadow".into()),
            object: BTreeMap::from([("dev".into(), "vda".into()), ("ino".into(), "7".into())]),
        };
        let v: serde_json::Value = serde_json::to_value(&d).unwrap();
        assert_eq!(v["domain"], "1a2b3c4d5");
        assert_eq!(v["at"], 1_700_000_000.25);
        assert_eq!(v["blockers"][0], "fs.read_file");
        assert_eq!(v["object"]["ino"], "7");
        assert_eq!(v["pid"], 41);
    }
}
