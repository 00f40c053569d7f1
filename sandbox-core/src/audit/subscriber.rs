//! The process-wide subscriber: one thread that reads the READLOG socket,
//! feeds the [`Correlator`] and calls the watches' sinks.
//!
//! Locks: `state` guards the correlator and the watches; `delivery` is held
//! while sinks run. The thread takes `delivery` before it lets go of
//! `state`, so a [`Watch`] that unregisters (under `state`) and then passes
//! through `delivery` knows no call to its sink is still under way or yet to
//! come. A sink must therefore not call back into this module.

use std::collections::HashMap;
use std::io::{Read as _, Write as _};
use std::os::fd::AsFd;
use std::os::unix::net::UnixStream;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};

use super::landlock::{Correlator, Counters, Output, WatchId};
use super::netlink::{self, messages, record_text, Read, ReadlogSocket};
use super::probe::{Reason, Unavailable};
use super::record;
use super::{LandlockDenial, Sink};

/// Denials delivered to one watch at most; beyond, they are only counted.
pub const MAX_DENIALS_PER_WATCH: u64 = 10_000;
/// An event whose `AUDIT_EOE` has not come after this is finished as is.
const EVENT_LINGER: Duration = Duration::from_millis(100);
/// After the kernel's queue was seen empty, how long kauditd may still be
/// between taking a record off it and multicasting it.
const SETTLE: Duration = Duration::from_millis(5);
/// How often a flush asks the kernel whether its queue is empty.
const QUEUE_POLL: Duration = Duration::from_millis(1);
/// Records parsed per batch before they are handed to the correlator.
const BATCH: usize = 256;
/// A netlink audit message is at most 8970 bytes (`MAX_AUDIT_MESSAGE_LENGTH`).
const DATAGRAM_BUF: usize = 16 * 1024;

/// What a watch has received so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct WatchStats {
    /// Denials handed to the sink.
    pub delivered: u64,
    /// Denials not handed over because the watch reached
    /// [`MAX_DENIALS_PER_WATCH`].
    pub dropped: u64,
    /// The kernel's own count of denials for the watched domains, known once
    /// the kernel has freed them (shortly after the sandbox's last process
    /// ended); it includes denials that were not logged.
    pub kernel_denials: Option<u64>,
}

struct Slot {
    sink: Sink,
    stats: WatchStats,
}

/// A flush waiting for a read pass that starts at or after `barrier`.
struct FlushRequest {
    id: u64,
    barrier: Instant,
    /// Events the kernel stamped at or before this are complete.
    wall: SystemTime,
}

struct State {
    correlator: Correlator,
    slots: HashMap<WatchId, Slot>,
    next_id: u64,
    flushes: Vec<FlushRequest>,
    /// Times the socket's receive queue overflowed (records lost to us).
    overruns: u64,
    /// Set when the reading thread stopped on an error.
    failed: Option<Errno>,
}

/// The subscriber's shared half.
pub struct Hub {
    state: Mutex<State>,
    changed: Condvar,
    delivery: Mutex<()>,
    wake: UnixStream,
}

/// Interest in the Landlock domains of one creator pid; dropping it
/// unregisters (no sink call happens after the drop returns).
pub struct Watch {
    hub: Arc<Hub>,
    id: WatchId,
}

impl Watch {
    /// What this watch received so far.
    pub fn stats(&self) -> WatchStats {
        self.hub
            .lock()
            .slots
            .get(&self.id)
            .map(|s| s.stats)
            .unwrap_or_default()
    }

    /// Wait until every record the kernel produced before this call has been
    /// read and delivered (see [`Hub::flush`]); `false` on timeout.
    pub fn flush(&self, timeout: Duration) -> bool {
        self.hub.flush(timeout)
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        {
            let mut s = self.hub.lock();
            s.correlator.unregister(self.id);
            s.slots.remove(&self.id);
        }
        // Wait out a delivery that may still hold a clone of our sink.
        drop(
            self.hub
                .delivery
                .lock()
                .unwrap_or_else(PoisonError::into_inner),
        );
    }
}

/// The running subscriber, if any.
static SUBSCRIBER: Mutex<Option<Arc<Hub>>> = Mutex::new(None);

/// The running subscriber, started if needed. Checks availability each time,
/// so a host that turned audit off is reported rather than silently empty.
pub fn hub() -> Result<Arc<Hub>, Unavailable> {
    super::availability()?;
    let mut current = SUBSCRIBER.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(h) = current.as_ref() {
        if h.lock().failed.is_none() {
            return Ok(Arc::clone(h));
        }
    }
    let hub = Hub::start()?;
    *current = Some(Arc::clone(&hub));
    Ok(hub)
}

/// The running subscriber without starting one.
pub fn running() -> Option<Arc<Hub>> {
    SUBSCRIBER
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .clone()
}

impl Hub {
    fn start() -> Result<Arc<Hub>, Unavailable> {
        let failed = |what: &str, e: &dyn std::fmt::Display| {
            Unavailable::new(
                Reason::ProbeFailed,
                format!("Starting the audit reader failed: {what}: {e}."),
                "Check that `auditctl -s` works here; netlink audit may be blocked in this container.",
            )
        };
        let sock = ReadlogSocket::open().map_err(|e| match e {
            Errno::EPERM => Unavailable::new(
                Reason::NotPermitted,
                "The kernel refused to let this process join the audit log's read-only group (it needs CAP_AUDIT_READ in the initial user namespace).",
                "Run stockade as root on the host.",
            ),
            e => failed("joining the audit read-only group", &e),
        })?;
        let (hub, wake_rx) = Hub::new().map_err(|e| failed("creating the wake-up channel", &e))?;
        let reader = Arc::clone(&hub);
        std::thread::Builder::new()
            .name("stockade-audit".into())
            .spawn(move || reader.run(sock, wake_rx))
            .map_err(|e| failed("spawning the reader thread", &e))?;
        Ok(hub)
    }

    /// A hub and the reading end of its wake-up channel; no thread yet.
    fn new() -> std::io::Result<(Arc<Hub>, UnixStream)> {
        let (wake_rx, wake_tx) = UnixStream::pair()?;
        wake_rx.set_nonblocking(true)?;
        wake_tx.set_nonblocking(true)?;
        let hub = Arc::new(Hub {
            state: Mutex::new(State {
                correlator: Correlator::new(),
                slots: HashMap::new(),
                next_id: 1,
                flushes: Vec::new(),
                overruns: 0,
                failed: None,
            }),
            changed: Condvar::new(),
            delivery: Mutex::new(()),
            wake: wake_tx,
        });
        Ok((hub, wake_rx))
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Register a watch on the domains created by host pid `creator_pid`.
    pub fn watch(self: &Arc<Self>, creator_pid: u32, sink: Sink) -> Watch {
        let mut s = self.lock();
        let id = s.next_id;
        s.next_id += 1;
        s.slots.insert(
            id,
            Slot {
                sink,
                stats: WatchStats::default(),
            },
        );
        let mut out = Vec::new();
        s.correlator
            .register(id, creator_pid, Instant::now(), &mut out);
        self.dispatch(s, out);
        Watch {
            hub: Arc::clone(self),
            id,
        }
    }

    /// Counters of records that could not be attributed or were lost.
    pub fn counters(&self) -> (Counters, u64) {
        let s = self.lock();
        (s.correlator.counters(), s.overruns)
    }

    /// Wait until every record the kernel produced before this call has been
    /// read, its event finished, and its sink calls returned; `false` if
    /// that took longer than `timeout` or the reader failed.
    ///
    /// How: wait for the kernel's audit queue to be empty (`AUDIT_GET`
    /// backlog 0; every older record has then been multicast), give kauditd
    /// [`SETTLE`] to finish the send in hand, then wait for a complete read
    /// pass of our socket that started after that. Busy audit traffic from
    /// other processes does not keep it waiting: no quiet period is needed.
    pub fn flush(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let wall = SystemTime::now();
        loop {
            match netlink::status() {
                Ok(st) if st.backlog > 0 => {
                    if Instant::now() >= deadline {
                        return false;
                    }
                    std::thread::sleep(QUEUE_POLL);
                }
                // Unreadable status: fall back on the settle time alone.
                _ => break,
            }
        }
        let id = {
            let mut s = self.lock();
            if s.failed.is_some() {
                return false;
            }
            let id = s.next_id;
            s.next_id += 1;
            s.flushes.push(FlushRequest {
                id,
                barrier: Instant::now() + SETTLE,
                wall,
            });
            id
        };
        self.wake_reader();
        let mut s = self.lock();
        while s.flushes.iter().any(|f| f.id == id) {
            let left = deadline.saturating_duration_since(Instant::now());
            if s.failed.is_some() || left.is_zero() {
                s.flushes.retain(|f| f.id != id);
                return false;
            }
            s = self
                .changed
                .wait_timeout(s, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        drop(s);
        // The pass's sink calls run under `delivery`: wait for them.
        drop(self.delivery.lock().unwrap_or_else(PoisonError::into_inner));
        true
    }

    fn wake_reader(&self) {
        // A full channel already holds a wake-up: nothing to add.
        let _ = (&self.wake).write(&[1]);
    }

    /// The reading thread.
    fn run(self: Arc<Self>, sock: ReadlogSocket, mut wake: UnixStream) {
        let mut buf = vec![0u8; DATAGRAM_BUF];
        let mut records = Vec::with_capacity(BATCH);
        loop {
            let timeout = self.poll_timeout();
            let mut fds = [
                PollFd::new(sock.as_fd(), PollFlags::POLLIN),
                PollFd::new(wake.as_fd(), PollFlags::POLLIN),
            ];
            match poll(&mut fds, timeout) {
                Ok(_) | Err(Errno::EINTR) => {}
                Err(e) => return self.fail(e),
            }
            let mut sink = [0u8; 64];
            while matches!(wake.read(&mut sink), Ok(n) if n > 0) {}
            // One pass: read until the socket is empty.
            let pass_start = Instant::now();
            let mut overruns = 0;
            loop {
                match sock.read(&mut buf) {
                    Ok(Read::Datagram(n)) => {
                        for (t, payload) in messages(&buf[..n]) {
                            if let Some(r) = record::parse(t, &record_text(payload)) {
                                records.push(r);
                            }
                        }
                    }
                    Ok(Read::Empty) => break,
                    Ok(Read::Overrun) => overruns += 1,
                    Err(e) => return self.fail(e),
                }
                if records.len() >= BATCH {
                    self.take(&mut records, 0, None);
                }
            }
            self.take(&mut records, overruns, Some(pass_start));
        }
    }

    /// How long the reader may sleep: until the earliest flush barrier,
    /// a pending event's linger, or a wake-up.
    fn poll_timeout(&self) -> PollTimeout {
        let s = self.lock();
        let now = Instant::now();
        let wait = match s.flushes.iter().map(|f| f.barrier).min() {
            Some(b) => Some(b.saturating_duration_since(now)),
            None if s.correlator.has_pending() => Some(EVENT_LINGER),
            None => None,
        };
        match wait {
            // Round up so a barrier is never missed by a millisecond.
            Some(d) => {
                PollTimeout::try_from(d + Duration::from_micros(999)).unwrap_or(PollTimeout::MAX)
            }
            None => PollTimeout::NONE,
        }
    }

    /// Feed parsed records; after a complete pass, finish aged events and
    /// the flushes whose barrier the pass started after.
    fn take(&self, records: &mut Vec<record::Record>, overruns: u64, pass: Option<Instant>) {
        let now = Instant::now();
        let mut s = self.lock();
        s.overruns += overruns;
        let mut out = Vec::new();
        for r in records.drain(..) {
            s.correlator.feed(r, now, &mut out);
        }
        if let Some(pass_start) = pass {
            s.correlator.finish_aged(now, EVENT_LINGER, &mut out);
            let done: Vec<SystemTime> = s
                .flushes
                .iter()
                .filter(|f| f.barrier <= pass_start)
                .map(|f| f.wall)
                .collect();
            if let Some(wall) = done.into_iter().max() {
                s.correlator.finish_stamped_by(wall, now, &mut out);
                s.flushes.retain(|f| f.barrier > pass_start);
            }
        }
        self.dispatch(s, out);
    }

    /// Hand outputs to sinks: counted under `state`, called under `delivery`
    /// only (taken before `state` is released, see the module docs).
    fn dispatch(&self, mut s: MutexGuard<'_, State>, out: Vec<Output>) {
        let mut calls: Vec<(Sink, LandlockDenial)> = Vec::new();
        for o in out {
            match o {
                Output::Denial { watch, denial } => {
                    if let Some(slot) = s.slots.get_mut(&watch) {
                        if slot.stats.delivered >= MAX_DENIALS_PER_WATCH {
                            slot.stats.dropped += 1;
                        } else {
                            slot.stats.delivered += 1;
                            calls.push((Arc::clone(&slot.sink), denial));
                        }
                    }
                }
                Output::Released { watch, denials, .. } => {
                    if let Some(slot) = s.slots.get_mut(&watch) {
                        let k = slot.stats.kernel_denials.get_or_insert(0);
                        *k = k.saturating_add(denials);
                    }
                }
            }
        }
        let delivering = self.delivery.lock().unwrap_or_else(PoisonError::into_inner);
        drop(s);
        self.changed.notify_all();
        for (sink, denial) in calls {
            sink(denial);
        }
        drop(delivering);
    }

    fn fail(&self, e: Errno) {
        self.lock().failed = Some(e);
        self.changed.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::record::{parse, AUDIT_EOE, AUDIT_LANDLOCK_ACCESS, AUDIT_LANDLOCK_DOMAIN};
    use std::sync::atomic::{AtomicU64, Ordering};

    fn records(first_serial: u64, n: u64) -> Vec<record::Record> {
        let mut v = vec![parse(
            AUDIT_LANDLOCK_DOMAIN,
            "audit(1.000:1): domain=aa status=allocated mode=enforcing pid=77 uid=0 exe=\"/x\" comm=\"x\"",
        )
        .unwrap()];
        for s in first_serial..first_serial + n {
            let text = format!(
                "audit(1.000:{s}): domain=aa blockers=fs.read_file path=\"/f\" dev=\"vda\" ino=1"
            );
            v.push(parse(AUDIT_LANDLOCK_ACCESS, &text).unwrap());
            v.push(parse(AUDIT_EOE, &format!("audit(1.000:{s}): ")).unwrap());
        }
        v
    }

    /// A watch of the creator in [`records`] whose sink only counts its calls.
    fn counting_watch(hub: &Arc<Hub>) -> (Watch, Arc<AtomicU64>) {
        let calls = Arc::new(AtomicU64::new(0));
        let c = Arc::clone(&calls);
        let sink: Sink = Arc::new(move |_| {
            c.fetch_add(1, Ordering::Relaxed);
        });
        (hub.watch(77, sink), calls)
    }

    #[test]
    fn a_flood_is_capped_per_watch_and_counted() {
        let (hub, _wake) = Hub::new().unwrap();
        let (watch, calls) = counting_watch(&hub);
        let extra = 25;
        let mut recs = records(2, MAX_DENIALS_PER_WATCH + extra);
        hub.take(&mut recs, 0, None);
        assert_eq!(calls.load(Ordering::Relaxed), MAX_DENIALS_PER_WATCH);
        assert_eq!(
            watch.stats(),
            WatchStats {
                delivered: MAX_DENIALS_PER_WATCH,
                dropped: extra,
                kernel_denials: None
            }
        );
    }

    #[test]
    fn no_sink_call_after_the_watch_is_dropped() {
        let (hub, _wake) = Hub::new().unwrap();
        let (watch, calls) = counting_watch(&hub);
        hub.take(&mut records(2, 1), 0, None);
        assert_eq!(calls.load(Ordering::Relaxed), 1);
        drop(watch);
        hub.take(&mut records(3, 1), 0, None);
        assert_eq!(calls.load(Ordering::Relaxed), 1);
    }

    #[test]
    fn a_flush_is_answered_by_the_first_pass_after_its_barrier() {
        let (hub, _wake) = Hub::new().unwrap();
        let (_watch, calls) = counting_watch(&hub);
        // An event without its end: held until a flush's pass finishes it.
        let mut recs = records(2, 1);
        recs.pop();
        hub.take(&mut recs, 0, Some(Instant::now()));
        assert_eq!(calls.load(Ordering::Relaxed), 0);
        let flusher = {
            let hub = Arc::clone(&hub);
            std::thread::spawn(move || hub.flush(Duration::from_secs(10)))
        };
        // Play the reader: passes until the flush is answered.
        while !flusher.is_finished() {
            std::thread::sleep(Duration::from_millis(2));
            hub.take(&mut Vec::new(), 0, Some(Instant::now()));
        }
        assert!(flusher.join().unwrap());
        assert_eq!(calls.load(Ordering::Relaxed), 1);
    }
}
