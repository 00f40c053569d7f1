//! Landlock audit records -> denials, matched to the sandboxes that watch
//! them. Pure state machine: records and times in, [`Output`]s out; no
//! kernel, no threads, so every rule is unit-tested.
//!
//! How the kernel writes a denial (security/landlock/audit.c): each denied
//! request is one audit *event* (one serial) holding an
//! `AUDIT_LANDLOCK_ACCESS` record (`domain=`, `blockers=`, the object), then,
//! only in the first logged event of that domain, an `AUDIT_LANDLOCK_DOMAIN`
//! `status=allocated` record naming the host pid that created the domain,
//! then (when the task has an audit context) `AUDIT_SYSCALL`,
//! `AUDIT_PROCTITLE` and `AUDIT_EOE`. When the domain is freed a separate
//! `status=deallocated denials=N` event follows, after which its id is
//! never used again.
//!
//! So the correlator remembers domain -> creator pid from the allocation
//! records it has seen, gathers each event's records until its `AUDIT_EOE`
//! (or until it is old enough, for events without one), and routes each
//! denial to the watches of its domain's creator pid. A denial nobody watches
//! yet waits in a small backlog, because a run registers its watch only once
//! it knows its command's pid, which may be after the first denials.
//!
//! Everything is bounded: pending events, records per event, remembered
//! domains and the backlog; what overflows is counted, never kept.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::time::{Duration, Instant, SystemTime};

use super::record::{Header, Record};
use super::LandlockDenial;

/// Identifies one registered watch.
pub type WatchId = u64;

/// Events gathered at once; beyond this the oldest is finished early.
const MAX_PENDING_EVENTS: usize = 256;
/// Access records kept per event (the kernel writes one or two).
const MAX_ACCESS_PER_EVENT: usize = 8;
/// Domains remembered; beyond this the least recently seen is forgotten.
const MAX_DOMAINS: usize = 4096;
/// Unwatched denials kept for a late registration, and for how long.
const MAX_BACKLOG: usize = 512;
const BACKLOG_AGE: Duration = Duration::from_secs(5);

/// What the correlator asks its owner to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// Deliver a denial to a watch.
    Denial {
        /// The watch.
        watch: WatchId,
        /// The denial.
        denial: LandlockDenial,
    },
    /// A domain of a watch's creator was freed; the kernel counted this
    /// many denials for it over its life, logged or not.
    Released {
        /// The watch.
        watch: WatchId,
        /// The freed domain.
        domain: u64,
        /// Its denial count.
        denials: u64,
    },
}

/// Counters of what could not be attributed or kept.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    /// Denials of domains whose creator is unknown (their allocation record
    /// was logged before the subscriber started, or lost).
    pub unattributed: u64,
    /// Unwatched denials pushed out of the backlog by newer ones.
    pub backlog_overflow: u64,
    /// Access records beyond the per-event limit (8) in one event.
    pub oversized_events: u64,
}

struct PendingEvent {
    first_seen: Instant,
    at: SystemTime,
    access: Vec<Access>,
    syscall: Option<(Option<u32>, Option<String>, Option<String>)>,
}

struct Access {
    header: Header,
    domain: u64,
    blockers: Vec<String>,
    object: Vec<(String, String)>,
}

struct Domain {
    creator_pid: u32,
    last_seen: Instant,
}

/// See the module documentation.
#[derive(Default)]
pub struct Correlator {
    pending: BTreeMap<u64, PendingEvent>,
    domains: HashMap<u64, Domain>,
    watches: HashMap<WatchId, u32>,
    backlog: VecDeque<(Instant, LandlockDenial)>,
    counters: Counters,
}

impl Correlator {
    /// An empty correlator.
    pub fn new() -> Self {
        Self::default()
    }

    /// What could not be attributed or kept so far.
    pub fn counters(&self) -> Counters {
        self.counters
    }

    /// Whether an event is still waiting for more records.
    pub fn has_pending(&self) -> bool {
        !self.pending.is_empty()
    }

    /// Take one record received at `now`.
    pub fn feed(&mut self, record: Record, now: Instant, out: &mut Vec<Output>) {
        match record {
            Record::Access {
                header,
                domain,
                blockers,
                object,
            } => {
                if !self.pending.contains_key(&header.serial)
                    && self.pending.len() >= MAX_PENDING_EVENTS
                {
                    if let Some((&oldest, _)) = self.pending.iter().next() {
                        self.finish(oldest, now, out);
                    }
                }
                let event = self
                    .pending
                    .entry(header.serial)
                    .or_insert_with(|| PendingEvent {
                        first_seen: now,
                        at: header.at,
                        access: Vec::new(),
                        syscall: None,
                    });
                if event.access.len() < MAX_ACCESS_PER_EVENT {
                    event.access.push(Access {
                        header,
                        domain,
                        blockers,
                        object,
                    });
                } else {
                    self.counters.oversized_events += 1;
                }
            }
            Record::DomainAllocated {
                domain,
                creator_pid,
                ..
            } => self.remember_domain(domain, creator_pid, now),
            Record::DomainReleased {
                domain, denials, ..
            } => {
                // Earlier denials of this domain are complete by now: finish
                // them while the domain is still known.
                let serials: Vec<u64> = self
                    .pending
                    .iter()
                    .filter(|(_, e)| e.access.iter().any(|a| a.domain == domain))
                    .map(|(s, _)| *s)
                    .collect();
                for s in serials {
                    self.finish(s, now, out);
                }
                if let Some(d) = self.domains.remove(&domain) {
                    for (&watch, &pid) in &self.watches {
                        if pid == d.creator_pid {
                            out.push(Output::Released {
                                watch,
                                domain,
                                denials,
                            });
                        }
                    }
                }
            }
            Record::Syscall {
                header,
                pid,
                comm,
                exe,
            } => {
                if let Some(e) = self.pending.get_mut(&header.serial) {
                    e.syscall = Some((pid, comm, exe));
                }
            }
            Record::EndOfEvent { header } => self.finish(header.serial, now, out),
        }
    }

    /// Finish the events first seen at least `linger` before `now` (events
    /// of tasks without an audit context never get an `AUDIT_EOE`).
    pub fn finish_aged(&mut self, now: Instant, linger: Duration, out: &mut Vec<Output>) {
        let old: Vec<u64> = self
            .pending
            .iter()
            .filter(|(_, e)| now.saturating_duration_since(e.first_seen) >= linger)
            .map(|(s, _)| *s)
            .collect();
        for s in old {
            self.finish(s, now, out);
        }
    }

    /// Finish the events the kernel stamped at or before `wall`: a flush
    /// knows all their records have arrived.
    pub fn finish_stamped_by(&mut self, wall: SystemTime, now: Instant, out: &mut Vec<Output>) {
        let done: Vec<u64> = self
            .pending
            .iter()
            .filter(|(_, e)| e.at <= wall)
            .map(|(s, _)| *s)
            .collect();
        for s in done {
            self.finish(s, now, out);
        }
    }

    /// Watch the domains created by host pid `creator_pid`; the backlog's
    /// denials of those domains are delivered at once.
    pub fn register(
        &mut self,
        watch: WatchId,
        creator_pid: u32,
        now: Instant,
        out: &mut Vec<Output>,
    ) {
        self.watches.insert(watch, creator_pid);
        self.expire_backlog(now);
        let mut kept = VecDeque::with_capacity(self.backlog.len());
        for (t, denial) in self.backlog.drain(..) {
            if denial.creator_pid == creator_pid {
                out.push(Output::Denial { watch, denial });
            } else {
                kept.push_back((t, denial));
            }
        }
        self.backlog = kept;
    }

    /// Stop watching.
    pub fn unregister(&mut self, watch: WatchId) {
        self.watches.remove(&watch);
    }

    fn remember_domain(&mut self, domain: u64, creator_pid: u32, now: Instant) {
        if !self.domains.contains_key(&domain) && self.domains.len() >= MAX_DOMAINS {
            if let Some(stale) = self
                .domains
                .iter()
                .min_by_key(|(_, d)| d.last_seen)
                .map(|(id, _)| *id)
            {
                self.domains.remove(&stale);
            }
        }
        self.domains.insert(
            domain,
            Domain {
                creator_pid,
                last_seen: now,
            },
        );
    }

    fn finish(&mut self, serial: u64, now: Instant, out: &mut Vec<Output>) {
        let Some(event) = self.pending.remove(&serial) else {
            return;
        };
        let (pid, comm, exe) = event.syscall.unwrap_or((None, None, None));
        for a in event.access {
            let Some(domain) = self.domains.get_mut(&a.domain) else {
                self.counters.unattributed += 1;
                continue;
            };
            domain.last_seen = now;
            let mut object = BTreeMap::new();
            let mut path = None;
            for (k, v) in a.object {
                if k == "path" && path.is_none() {
                    path = Some(v);
                } else {
                    object.entry(k).or_insert(v);
                }
            }
            let denial = LandlockDenial {
                at: a.header.at,
                serial: a.header.serial,
                domain: a.domain,
                creator_pid: domain.creator_pid,
                pid,
                comm: comm.clone(),
                exe: exe.clone(),
                blockers: a.blockers,
                path,
                object,
            };
            self.route(denial, now, out);
        }
    }

    fn route(&mut self, denial: LandlockDenial, now: Instant, out: &mut Vec<Output>) {
        let watchers: Vec<WatchId> = self
            .watches
            .iter()
            .filter(|(_, pid)| **pid == denial.creator_pid)
            .map(|(w, _)| *w)
            .collect();
        if watchers.is_empty() {
            self.expire_backlog(now);
            if self.backlog.len() >= MAX_BACKLOG {
                self.backlog.pop_front();
                self.counters.backlog_overflow += 1;
            }
            self.backlog.push_back((now, denial));
            return;
        }
        for watch in watchers {
            out.push(Output::Denial {
                watch,
                denial: denial.clone(),
            });
        }
    }

    fn expire_backlog(&mut self, now: Instant) {
        while let Some((t, _)) = self.backlog.front() {
            if now.saturating_duration_since(*t) < BACKLOG_AGE {
                break;
            }
            self.backlog.pop_front();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::record::{
        parse, AUDIT_EOE, AUDIT_LANDLOCK_ACCESS, AUDIT_LANDLOCK_DOMAIN, AUDIT_SYSCALL,
    };

    /// Feed raw `(type, text)` records at `now`.
    fn feed(c: &mut Correlator, now: Instant, records: &[(u16, &str)]) -> Vec<Output> {
        let mut out = Vec::new();
        for (t, text) in records {
            let r = parse(*t, text).unwrap_or_else(|| panic!("unparsed: {text}"));
            c.feed(r, now, &mut out);
        }
        out
    }

    /// A first denial of domain `dom` created by `pid`, as one event with a
    /// SYSCALL record from process `actor`.
    fn first_denial(
        serial: u64,
        dom: &str,
        pid: u32,
        actor: u32,
        path: &str,
    ) -> Vec<(u16, String)> {
        vec![
            (AUDIT_LANDLOCK_ACCESS, format!("audit(100.000:{serial}): domain={dom} blockers=fs.read_file path=\"{path}\" dev=\"vda\" ino=9")),
            (AUDIT_LANDLOCK_DOMAIN, format!("audit(100.000:{serial}): domain={dom} status=allocated mode=enforcing pid={pid} uid=0 exe=\"/x\" comm=\"x\"")),
            (AUDIT_SYSCALL, format!("audit(100.000:{serial}): arch=c000003e syscall=257 success=no exit=-13 ppid={pid} pid={actor} comm=\"cat\" exe=\"/usr/bin/cat\"")),
            (1327, format!("audit(100.000:{serial}): proctitle=636174")),
            (AUDIT_EOE, format!("audit(100.000:{serial}): ")),
        ]
    }

    fn later_denial(serial: u64, dom: &str, path: &str) -> Vec<(u16, String)> {
        vec![
            (AUDIT_LANDLOCK_ACCESS, format!("audit(101.000:{serial}): domain={dom} blockers=fs.write_file path=\"{path}\" dev=\"vda\" ino=10")),
            (AUDIT_EOE, format!("audit(101.000:{serial}): ")),
        ]
    }

    fn feed_owned(c: &mut Correlator, now: Instant, records: &[(u16, String)]) -> Vec<Output> {
        let mut out = Vec::new();
        for (t, text) in records {
            if let Some(r) = parse(*t, text) {
                c.feed(r, now, &mut out);
            }
        }
        out
    }

    fn denials(out: &[Output]) -> Vec<(WatchId, String, u32)> {
        out.iter()
            .filter_map(|o| match o {
                Output::Denial { watch, denial } => Some((
                    *watch,
                    denial.path.clone().unwrap_or_default(),
                    denial.creator_pid,
                )),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn a_watched_denial_is_delivered_whole_at_its_end_of_event() {
        let now = Instant::now();
        let mut c = Correlator::new();
        let mut out = Vec::new();
        c.register(1, 500, now, &mut out);
        let recs = first_denial(7, "aa", 500, 501, "/etc/shadow");
        // Nothing is delivered before the event's end...
        let out = feed_owned(&mut c, now, &recs[..4]);
        assert!(out.is_empty(), "{out:?}");
        // ...and everything at it.
        let out = feed_owned(&mut c, now, &recs[4..]);
        assert_eq!(out.len(), 1);
        let Output::Denial { watch, denial } = &out[0] else {
            panic!("{out:?}")
        };
        assert_eq!(*watch, 1);
        assert_eq!(denial.domain, 0xaa);
        assert_eq!(denial.serial, 7);
        assert_eq!(denial.creator_pid, 500);
        assert_eq!(denial.pid, Some(501));
        assert_eq!(denial.comm.as_deref(), Some("cat"));
        assert_eq!(denial.exe.as_deref(), Some("/usr/bin/cat"));
        assert_eq!(denial.blockers, ["fs.read_file"]);
        assert_eq!(denial.path.as_deref(), Some("/etc/shadow"));
        assert_eq!(
            denial.object,
            BTreeMap::from([("dev".into(), "vda".into()), ("ino".into(), "9".into())])
        );
        assert!(!c.has_pending());
    }

    #[test]
    fn later_denials_of_a_known_domain_need_no_allocation_record() {
        let now = Instant::now();
        let mut c = Correlator::new();
        let mut out = Vec::new();
        c.register(1, 500, now, &mut out);
        feed_owned(&mut c, now, &first_denial(7, "aa", 500, 501, "/a"));
        let out = feed_owned(&mut c, now, &later_denial(8, "aa", "/b"));
        assert_eq!(denials(&out), [(1, "/b".to_string(), 500)]);
        let Output::Denial { denial, .. } = &out[0] else {
            panic!()
        };
        // No SYSCALL record in that event: no actor pid, not a guessed one.
        assert_eq!(denial.pid, None);
        assert_eq!(denial.blockers, ["fs.write_file"]);
    }

    #[test]
    fn other_creators_denials_are_not_delivered_to_a_watch() {
        let now = Instant::now();
        let mut c = Correlator::new();
        let mut out = Vec::new();
        c.register(1, 500, now, &mut out);
        let out = feed_owned(&mut c, now, &first_denial(7, "bb", 600, 601, "/x"));
        assert_eq!(denials(&out), []);
        // A second watch for the other creator gets it from the backlog.
        let mut out = Vec::new();
        c.register(2, 600, now, &mut out);
        assert_eq!(denials(&out), [(2, "/x".to_string(), 600)]);
    }

    #[test]
    fn a_late_watch_gets_the_backlog_once_and_only_recent_entries() {
        let t0 = Instant::now();
        let mut c = Correlator::new();
        feed_owned(&mut c, t0, &first_denial(1, "aa", 500, 501, "/old"));
        let t1 = t0 + BACKLOG_AGE + Duration::from_millis(1);
        feed_owned(&mut c, t1, &later_denial(2, "aa", "/new"));
        let mut out = Vec::new();
        c.register(1, 500, t1, &mut out);
        // "/old" aged out; "/new" is delivered.
        assert_eq!(denials(&out), [(1, "/new".to_string(), 500)]);
        // Delivered from the backlog means gone from it.
        let mut again = Vec::new();
        c.register(2, 500, t1, &mut again);
        assert_eq!(denials(&again), []);
    }

    #[test]
    fn the_backlog_is_bounded() {
        let now = Instant::now();
        let mut c = Correlator::new();
        feed_owned(&mut c, now, &first_denial(1, "aa", 500, 501, "/0"));
        for i in 0..(MAX_BACKLOG as u64 + 10) {
            feed_owned(
                &mut c,
                now,
                &later_denial(2 + i, "aa", &format!("/{}", i + 1)),
            );
        }
        assert_eq!(c.counters().backlog_overflow, 11);
        let mut out = Vec::new();
        c.register(1, 500, now, &mut out);
        assert_eq!(out.len(), MAX_BACKLOG);
        // The newest ones were kept.
        assert_eq!(
            denials(&out).last().unwrap().1,
            format!("/{}", MAX_BACKLOG + 10)
        );
    }

    #[test]
    fn a_denial_of_an_unknown_domain_is_counted_not_guessed() {
        let now = Instant::now();
        let mut c = Correlator::new();
        let mut out = Vec::new();
        c.register(1, 500, now, &mut out);
        let out = feed_owned(&mut c, now, &later_denial(3, "cc", "/z"));
        assert!(out.is_empty());
        assert_eq!(c.counters().unattributed, 1);
    }

    #[test]
    fn release_finishes_pending_events_first_and_reports_the_kernel_count() {
        let now = Instant::now();
        let mut c = Correlator::new();
        let mut out = Vec::new();
        c.register(1, 500, now, &mut out);
        let recs = first_denial(7, "aa", 500, 501, "/p");
        // The event's end never came (no audit context); then the release.
        let mut out = feed_owned(&mut c, now, &recs[..2]);
        out.extend(feed(
            &mut c,
            now,
            &[(
                AUDIT_LANDLOCK_DOMAIN,
                "audit(102.000:9): domain=aa status=deallocated denials=4",
            )],
        ));
        assert_eq!(denials(&out), [(1, "/p".to_string(), 500)]);
        assert_eq!(
            out.last(),
            Some(&Output::Released {
                watch: 1,
                domain: 0xaa,
                denials: 4
            })
        );
        // The domain is forgotten: a (bogus) later record is unattributed.
        feed_owned(&mut c, now, &later_denial(10, "aa", "/q"));
        assert_eq!(c.counters().unattributed, 1);
    }

    #[test]
    fn events_without_an_end_are_finished_by_age_or_by_a_flush() {
        let t0 = Instant::now();
        let mut c = Correlator::new();
        let mut out = Vec::new();
        c.register(1, 500, t0, &mut out);
        let recs = first_denial(7, "aa", 500, 501, "/p");
        feed_owned(&mut c, t0, &recs[..2]);
        let mut out = Vec::new();
        c.finish_aged(
            t0 + Duration::from_millis(5),
            Duration::from_millis(50),
            &mut out,
        );
        assert!(out.is_empty() && c.has_pending());
        c.finish_aged(
            t0 + Duration::from_millis(50),
            Duration::from_millis(50),
            &mut out,
        );
        assert_eq!(denials(&out).len(), 1);
        // By stamp: only events stamped at or before the flush's wall time.
        feed_owned(&mut c, t0, &later_denial(8, "aa", "/q")[..1]);
        let mut out = Vec::new();
        c.finish_stamped_by(
            std::time::UNIX_EPOCH + Duration::from_secs(100),
            t0,
            &mut out,
        );
        assert!(out.is_empty() && c.has_pending());
        c.finish_stamped_by(
            std::time::UNIX_EPOCH + Duration::from_secs(101),
            t0,
            &mut out,
        );
        assert_eq!(denials(&out), [(1, "/q".to_string(), 500)]);
    }

    #[test]
    fn pending_events_are_bounded() {
        let now = Instant::now();
        let mut c = Correlator::new();
        let mut out = Vec::new();
        c.register(1, 500, now, &mut out);
        feed_owned(&mut c, now, &first_denial(1, "aa", 500, 501, "/0"));
        let mut out = Vec::new();
        for i in 0..(MAX_PENDING_EVENTS as u64 + 3) {
            // Access records only: no end of event.
            let recs = later_denial(10 + i, "aa", &format!("/{i}"));
            out.extend(feed_owned(&mut c, now, &recs[..1]));
        }
        // The three oldest were finished early to make room.
        assert_eq!(
            denials(&out)
                .iter()
                .map(|d| d.1.clone())
                .collect::<Vec<_>>(),
            ["/0", "/1", "/2"]
        );
        assert_eq!(c.pending.len(), MAX_PENDING_EVENTS);
    }

    #[test]
    fn one_event_with_two_access_records_gives_two_denials() {
        let now = Instant::now();
        let mut c = Correlator::new();
        let mut out = Vec::new();
        c.register(1, 500, now, &mut out);
        let out = feed(
            &mut c,
            now,
            &[
                (AUDIT_LANDLOCK_ACCESS, "audit(1.000:5): domain=aa blockers=fs.refer path=\"/usr/bin\" dev=\"vda\" ino=3"),
                (AUDIT_LANDLOCK_ACCESS, "audit(1.000:5): domain=aa blockers=fs.make_reg,fs.refer path=\"/usr/local\" dev=\"vda\" ino=4"),
                (AUDIT_LANDLOCK_DOMAIN, "audit(1.000:5): domain=aa status=allocated mode=enforcing pid=500 uid=0 exe=\"/x\" comm=\"x\""),
                (AUDIT_EOE, "audit(1.000:5): "),
            ],
        );
        assert_eq!(
            denials(&out),
            [
                (1, "/usr/bin".to_string(), 500),
                (1, "/usr/local".to_string(), 500)
            ]
        );
    }

    #[test]
    fn an_unregistered_watch_gets_nothing_more() {
        let now = Instant::now();
        let mut c = Correlator::new();
        let mut out = Vec::new();
        c.register(1, 500, now, &mut out);
        feed_owned(&mut c, now, &first_denial(1, "aa", 500, 501, "/a"));
        c.unregister(1);
        let out = feed_owned(&mut c, now, &later_denial(2, "aa", "/b"));
        assert!(out.is_empty());
    }
}
