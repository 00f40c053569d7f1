//! Serving one sandbox's proxy listeners in the host process.
//!
//! One process-wide tokio runtime (two worker threads, started on first use)
//! serves every sandbox; each sandbox gets a [`Served`] handle whose drop
//! stops its listeners and cuts its connections. Per connection:
//!
//! 1. the front end reads the request ([`super::http`] or [`super::socks5`])
//!    under a head timeout and size limits; a captured connection
//!    ([`super::transparent`]) names its destination by the fake address it
//!    went to, which the sandbox's DNS ([`super::dns`]) handed out;
//! 2. the policy checks the requested host and port **before any lookup**;
//! 3. the name is resolved once (static `--resolve` entries first), every
//!    address is checked (internal ranges, the host's own addresses), and the
//!    proxy connects to the first address that passed: the one it checked;
//! 4. bytes are relayed with an idle timeout; the sandbox's connections share
//!    a small pool of I/O slots, so a sandbox that opens many connections gets
//!    the same share of the proxy as one that opens a few.
//!
//! Every decision is a [`ProxyEvent`]. [`decide`] and [`relay`] are the one
//! path every front end goes through.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, SystemTime};

use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Semaphore};

use super::dns::Pool;
use super::listen::{Kind, ORDER};
use super::policy::{Denial, Policy, Target};
use super::{dns, http, socks5, splice, transparent};

/// Time a client has to send its whole request head or SOCKS handshake.
const HEAD_TIMEOUT: Duration = Duration::from_secs(10);
/// Time allowed for the name lookup.
const RESOLVE_TIMEOUT: Duration = Duration::from_secs(10);
/// Time allowed to connect upstream.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);
/// A relayed connection with no bytes either way for this long is closed.
const IDLE_TIMEOUT: Duration = Duration::from_secs(300);
/// Concurrent connections per sandbox.
const MAX_CONNECTIONS: usize = 256;
/// Reads in flight at once per sandbox, across all its connections.
const IO_SLOTS: usize = 8;
/// Name lookups in flight at once per sandbox: `getaddrinfo` runs on the
/// runtime's shared blocking pool, and a slow resolver must not let one
/// sandbox take all of it.
const LOOKUPS: usize = 4;
/// Events kept per sandbox. The events live in the host process, which a
/// sandbox must not be able to grow without bound; beyond this, events are
/// counted and reported once as `dropped`.
pub(super) const MAX_EVENTS: usize = 10_000;
/// DNS queries answered per second per sandbox (token bucket), and the burst.
const DNS_RATE: f64 = 500.0;
const DNS_BURST: f64 = 1000.0;

/// One proxy decision, delivered to the caller.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ProxyEvent {
    /// When the decision was made.
    #[serde(serialize_with = "crate::events::unix_seconds")]
    pub at: SystemTime,
    /// `http-connect`, `http` (absolute-form), `socks5`, `dns` (a query to
    /// the sandbox's DNS server) or `transparent` (a connection captured on
    /// port 80 or 443).
    pub protocol: &'static str,
    /// The host as the client asked for it (empty if the request was
    /// malformed; for `transparent`, the name the fake address stands for, or
    /// the address itself if it stands for none).
    pub host: String,
    /// The port the client asked for (0 for `dns`).
    pub port: u16,
    /// `allowed`, `denied` or `closed` (an allowed connection ended; see the
    /// byte counts). For `dns`: `allowed` (the name was answered) or
    /// `denied` (NXDOMAIN, or a refused or malformed query).
    pub decision: &'static str,
    /// Why it was denied (a stable kebab-case name such as `not-allowed`).
    pub reason: Option<String>,
    /// Human detail: for a denial, why; for an allowed `dns` query, the
    /// answer (`A 198.18.0.2`).
    pub detail: Option<String>,
    /// The address the proxy connected to.
    pub address: Option<SocketAddr>,
    /// Bytes from the sandbox to the upstream (for `closed`).
    pub bytes_up: u64,
    /// Bytes from the upstream to the sandbox (for `closed`).
    pub bytes_down: u64,
}

/// Receives every event of a sandbox as it happens.
pub type EventSink = Arc<dyn Fn(&ProxyEvent) + Send + Sync>;

/// A sandbox's proxy while it is being served; dropping it stops the
/// listeners and every connection.
pub(crate) struct Served {
    stop: watch::Sender<bool>,
    shared: Arc<Shared>,
    tasks: Arc<AtomicUsize>,
}

impl Served {
    /// The events so far.
    pub fn events(&self) -> Vec<ProxyEvent> {
        self.shared.log.snapshot()
    }

    /// Stop the listeners and every connection, and wait (briefly) until
    /// their tasks have ended, so the events are complete.
    pub fn stop(&self) {
        let _ = self.stop.send(true);
        let deadline = std::time::Instant::now() + Duration::from_millis(500);
        while self.tasks.load(Ordering::Acquire) > 0 && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(1));
        }
        self.shared.log.summarize();
    }
}

/// Counts a running task of one sandbox's proxy until dropped.
struct TaskGuard(Arc<AtomicUsize>);

impl TaskGuard {
    fn new(count: &Arc<AtomicUsize>) -> Self {
        count.fetch_add(1, Ordering::AcqRel);
        TaskGuard(count.clone())
    }
}

impl Drop for TaskGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

impl std::fmt::Debug for Served {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Served").finish_non_exhaustive()
    }
}

fn runtime() -> io::Result<&'static tokio::runtime::Runtime> {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    if let Some(rt) = RT.get() {
        return Ok(rt);
    }
    raise_fd_limit();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .max_blocking_threads(8)
        .thread_name("stockade-proxy")
        .enable_all()
        .build()?;
    Ok(RT.get_or_init(|| rt))
}

/// A relayed connection holds six descriptors (two sockets, two pipes), so
/// the common soft limit of 1024 would cap the whole process at a few
/// hundred connections: lift the soft limit to the hard one, once.
fn raise_fd_limit() {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    if let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE) {
        if soft < hard {
            let _ = setrlimit(Resource::RLIMIT_NOFILE, hard, hard);
        }
    }
}

/// What every connection of one sandbox shares.
pub(super) struct Shared {
    pub(super) policy: Arc<Policy>,
    /// The sandbox's fake addresses and the names they stand for.
    pub(super) pool: Pool,
    own: Vec<IpAddr>,
    connections: Semaphore,
    io_slots: Semaphore,
    lookups: Semaphore,
    log: EventLog,
    dns_budget: Mutex<(f64, std::time::Instant)>,
    pub(super) stop: watch::Receiver<bool>,
    tasks: Arc<AtomicUsize>,
}

/// A sandbox's proxy events: kept for `Child::proxy_events` and passed to the
/// caller's sink as they happen, up to [`MAX_EVENTS`]; beyond that only
/// counted, and reported once as a `dropped` event when the proxy stops.
struct EventLog {
    events: Mutex<Vec<ProxyEvent>>,
    dropped: AtomicU64,
    limit: usize,
    sink: Option<EventSink>,
}

impl EventLog {
    fn new(limit: usize, sink: Option<EventSink>) -> Self {
        EventLog {
            events: Mutex::new(Vec::new()),
            dropped: AtomicU64::new(0),
            limit,
            sink,
        }
    }

    fn emit(&self, ev: ProxyEvent) {
        {
            let Ok(mut v) = self.events.lock() else {
                return;
            };
            if v.len() >= self.limit {
                self.dropped.fetch_add(1, Ordering::Relaxed);
                return;
            }
            v.push(ev.clone());
        }
        if let Some(sink) = &self.sink {
            sink(&ev);
        }
    }

    /// Append one `dropped` event if any were not recorded (always kept,
    /// even at the limit).
    fn summarize(&self) {
        let n = self.dropped.swap(0, Ordering::Relaxed);
        if n == 0 {
            return;
        }
        let ev = ProxyEvent {
            decision: "dropped",
            reason: Some("too-many-events".into()),
            detail: Some(format!(
                "{n} more events were not recorded (limit {})",
                self.limit
            )),
            ..event("proxy", "", 0)
        };
        if let Ok(mut v) = self.events.lock() {
            v.push(ev.clone());
        }
        if let Some(sink) = &self.sink {
            sink(&ev);
        }
    }

    fn snapshot(&self) -> Vec<ProxyEvent> {
        self.events.lock().map(|e| e.clone()).unwrap_or_default()
    }
}

impl Shared {
    /// Record `ev` and hand it to the caller's sink (see [`EventLog`]).
    pub(super) fn emit(&self, ev: ProxyEvent) {
        self.log.emit(ev);
    }

    /// Whether a DNS query may be answered now (token bucket per sandbox);
    /// a flood is dropped, as UDP allows, instead of costing the host.
    pub(super) fn take_dns_token(&self) -> bool {
        let Ok(mut b) = self.dns_budget.lock() else {
            return false;
        };
        let now = std::time::Instant::now();
        let (tokens, last) = *b;
        let tokens = (tokens + now.duration_since(last).as_secs_f64() * DNS_RATE).min(DNS_BURST);
        if tokens < 1.0 {
            *b = (tokens, now);
            return false;
        }
        *b = (tokens - 1.0, now);
        true
    }
}

/// Serve `listeners` (in [`ORDER`]) for one sandbox under `policy`.
pub(crate) fn serve(
    listeners: Vec<OwnedFd>,
    policy: Arc<Policy>,
    sink: Option<EventSink>,
) -> io::Result<Served> {
    if listeners.len() != ORDER.len() {
        return Err(io::Error::other(format!(
            "expected {} proxy listeners from the sandbox, got {}",
            ORDER.len(),
            listeners.len()
        )));
    }
    serve_kinds(listeners.into_iter().zip(ORDER).collect(), policy, sink)
}

/// Serve `listeners`, each the front door it is paired with (reduced mode
/// has only some of them, see `crate::reduced::proxy`).
pub(crate) fn serve_kinds(
    listeners: Vec<(OwnedFd, Kind)>,
    policy: Arc<Policy>,
    sink: Option<EventSink>,
) -> io::Result<Served> {
    let rt = runtime()?;
    let (stop_tx, stop_rx) = watch::channel(false);
    let tasks = Arc::new(AtomicUsize::new(0));
    let shared = Arc::new(Shared {
        policy,
        pool: Pool::new(dns::MAX_NAMES),
        own: own_addresses(),
        connections: Semaphore::new(MAX_CONNECTIONS),
        io_slots: Semaphore::new(IO_SLOTS),
        lookups: Semaphore::new(LOOKUPS),
        log: EventLog::new(MAX_EVENTS, sink),
        dns_budget: Mutex::new((DNS_BURST, std::time::Instant::now())),
        stop: stop_rx,
        tasks: tasks.clone(),
    });
    let _guard = rt.enter();
    for (fd, kind) in listeners {
        let shared = shared.clone();
        if kind == Kind::Dns {
            let std_socket = std::net::UdpSocket::from(fd);
            std_socket.set_nonblocking(true)?;
            let socket = tokio::net::UdpSocket::from_std(std_socket)?;
            let guard = TaskGuard::new(&tasks);
            rt.spawn(async move {
                let _guard = guard;
                dns::serve(socket, shared).await
            });
            continue;
        }
        let std_listener = std::net::TcpListener::from(fd);
        std_listener.set_nonblocking(true)?;
        let listener = TcpListener::from_std(std_listener)?;
        let guard = TaskGuard::new(&tasks);
        rt.spawn(async move {
            let _guard = guard;
            accept_loop(listener, kind, shared).await
        });
    }
    Ok(Served {
        stop: stop_tx,
        shared,
        tasks,
    })
}

/// The host's own interface addresses: an allowed name resolving to one of
/// them would reach the host's services, so they count as internal.
fn own_addresses() -> Vec<IpAddr> {
    let Ok(addrs) = nix::ifaddrs::getifaddrs() else {
        return Vec::new();
    };
    addrs
        .filter_map(|a| a.address)
        .filter_map(|a| {
            if let Some(v4) = a.as_sockaddr_in() {
                Some(IpAddr::V4(v4.ip()))
            } else {
                a.as_sockaddr_in6().map(|v6| IpAddr::V6(v6.ip()))
            }
        })
        .collect()
}

async fn accept_loop(listener: TcpListener, kind: Kind, shared: Arc<Shared>) {
    let mut stop = shared.stop.clone();
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = stop.wait_for(|s| *s) => return,
        };
        let conn = match accepted {
            Ok((conn, _)) => conn,
            Err(e) => {
                // Out of descriptors (EMFILE/ENFILE) or a transient error:
                // the listener stays readable, so back off instead of
                // spinning until the sandbox ends.
                let out_of_fds = matches!(e.raw_os_error(), Some(libc::EMFILE | libc::ENFILE));
                let pause = Duration::from_millis(if out_of_fds { 100 } else { 5 });
                tokio::time::sleep(pause).await;
                continue;
            }
        };
        let shared = shared.clone();
        let guard = TaskGuard::new(&shared.tasks);
        tokio::spawn(async move {
            let _guard = guard;
            let mut stop = shared.stop.clone();
            tokio::select! {
                _ = handle(conn, kind, &shared) => {}
                _ = stop.wait_for(|s| *s) => {}
            }
        });
    }
}

/// A `denied` event for `host:port`, to be filled in.
pub(super) fn event(protocol: &'static str, host: &str, port: u16) -> ProxyEvent {
    ProxyEvent {
        at: SystemTime::now(),
        protocol,
        host: host.to_string(),
        port,
        decision: "denied",
        reason: None,
        detail: None,
        address: None,
        bytes_up: 0,
        bytes_down: 0,
    }
}

pub(super) fn denied(mut ev: ProxyEvent, d: &Denial) -> ProxyEvent {
    ev.decision = "denied";
    ev.reason = Some(d.reason_name().to_string());
    ev.detail = Some(d.to_string());
    ev
}

async fn handle(mut conn: TcpStream, kind: Kind, shared: &Shared) {
    let _ = conn.set_nodelay(true);
    let protocol = match kind {
        Kind::Http => "http",
        Kind::Socks5 => "socks5",
        Kind::Captured(_) => "transparent",
        Kind::Dns => return,
    };
    let Ok(_permit) = shared.connections.try_acquire() else {
        let ev = event(protocol, "", 0);
        shared.emit(ProxyEvent {
            reason: Some("too-many-connections".into()),
            detail: Some(format!("more than {MAX_CONNECTIONS} open connections")),
            ..ev
        });
        let _ = match kind {
            Kind::Http => {
                conn.write_all(&http::response(
                    503,
                    Some("too-many-connections"),
                    "too many connections\n",
                ))
                .await
            }
            Kind::Socks5 | Kind::Captured(_) | Kind::Dns => Ok(()),
        };
        return;
    };
    match kind {
        Kind::Http => serve_http(conn, shared).await,
        Kind::Socks5 => serve_socks5(conn, shared).await,
        Kind::Captured(_) => transparent::serve(conn, shared).await,
        Kind::Dns => {}
    }
}

/// The event for a request that could not be read (nothing was decided).
fn malformed(protocol: &'static str, reason: &str, e: &dyn std::fmt::Display) -> ProxyEvent {
    ProxyEvent {
        reason: Some(reason.to_string()),
        detail: Some(e.to_string()),
        ..event(protocol, "", 0)
    }
}

async fn serve_http(mut conn: TcpStream, shared: &Shared) {
    let limits = http::Limits {
        head_timeout: HEAD_TIMEOUT,
        ..http::Limits::default()
    };
    let req = match http::read_request(&mut conn, &limits).await {
        Ok(r) => r,
        Err(e) => {
            shared.emit(malformed("http", e.reason_name(), &e));
            if let Some(response) = e.response() {
                let _ = conn.write_all(&response).await;
            }
            return;
        }
    };
    let (protocol, host, port, head) = match req.kind {
        http::RequestKind::Connect { host, port } => ("http-connect", host, port, None),
        http::RequestKind::Forward {
            host, port, head, ..
        } => ("http", host, port, Some(head)),
    };
    let ev = event(protocol, &host, port);
    match decide(&host, port, shared).await {
        Ok((mut upstream, addr)) => {
            let reply = match &head {
                None => conn.write_all(http::CONNECT_OK).await,
                Some(head) => upstream.write_all(head).await,
            };
            if reply.is_err() || upstream.write_all(&req.leftover).await.is_err() {
                return;
            }
            relay(conn, upstream, addr, ev, shared).await;
        }
        Err(d) => {
            let status = d.http_status();
            let body = format!("stockade proxy: {d}\n");
            shared.emit(denied(ev, &d));
            let _ = conn
                .write_all(&http::response(status, Some(d.reason_name()), &body))
                .await;
        }
    }
}

async fn serve_socks5(mut conn: TcpStream, shared: &Shared) {
    let req = match socks5::handshake(&mut conn, HEAD_TIMEOUT).await {
        Ok(r) => r,
        Err(e) => {
            shared.emit(malformed("socks5", e.reason_name(), &e));
            if let Some(code) = e.reply_code() {
                let _ = socks5::reply(&mut conn, code, None).await;
            }
            return;
        }
    };
    let host = req.host.to_string();
    let ev = event("socks5", &host, req.port);
    match decide(&host, req.port, shared).await {
        Ok((upstream, addr)) => {
            let bound = upstream.local_addr().ok();
            if socks5::reply(&mut conn, socks5::SUCCEEDED, bound)
                .await
                .is_err()
            {
                return;
            }
            relay(conn, upstream, addr, ev, shared).await;
        }
        Err(d) => {
            shared.emit(denied(ev, &d));
            let _ = socks5::reply(&mut conn, d.socks5_reply(), None).await;
        }
    }
}

/// Policy check, one lookup, address checks, connect: the upstream stream
/// and the address it goes to.
pub(super) async fn decide(
    host: &str,
    port: u16,
    shared: &Shared,
) -> Result<(TcpStream, SocketAddr), Denial> {
    let target = shared.policy.check_request(host, port)?;
    let candidates: Vec<IpAddr> = match &target {
        Target::Ip { addr, .. } => vec![*addr],
        Target::Name { host, .. } => match shared.policy.static_addresses(host) {
            Some(addrs) => addrs.to_vec(),
            None => {
                let _lookup = shared
                    .lookups
                    .acquire()
                    .await
                    .map_err(|_| Denial::unreachable(host, "the proxy is shutting down"))?;
                lookup(host, port).await?
            }
        },
    };
    let mut first_refusal = None;
    let mut checked = Vec::new();
    for addr in candidates {
        match shared.policy.check_address(&target, addr, &shared.own) {
            Ok(()) => checked.push(addr),
            Err(d) => {
                first_refusal.get_or_insert(d);
            }
        }
    }
    if checked.is_empty() {
        return Err(
            first_refusal.unwrap_or_else(|| Denial::unreachable(host, "the name has no address"))
        );
    }
    let mut last_err = None;
    for addr in checked {
        let sa = SocketAddr::new(addr, port);
        match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(sa)).await {
            Ok(Ok(s)) => {
                let _ = s.set_nodelay(true);
                return Ok((s, sa));
            }
            Ok(Err(e)) => last_err = Some(e.to_string()),
            Err(_) => last_err = Some("connect timed out".into()),
        }
    }
    Err(Denial::unreachable(host, &last_err.unwrap_or_default()))
}

/// Resolve `host` once, with a deadline.
async fn lookup(host: &str, port: u16) -> Result<Vec<IpAddr>, Denial> {
    match tokio::time::timeout(RESOLVE_TIMEOUT, tokio::net::lookup_host((host, port))).await {
        Ok(Ok(addrs)) => Ok(addrs.map(|a| a.ip()).collect()),
        Ok(Err(e)) => Err(Denial::unreachable(host, &format!("lookup failed: {e}"))),
        Err(_) => Err(Denial::unreachable(host, "lookup timed out")),
    }
}

/// Relay both directions until either side closes or the connection idles
/// out. The `closed` event with the byte counts is emitted on drop, so it is
/// also reported when the sandbox ends and the relay is cut.
pub(super) async fn relay(
    conn: TcpStream,
    upstream: TcpStream,
    addr: SocketAddr,
    ev: ProxyEvent,
    shared: &Shared,
) {
    shared.emit(ProxyEvent {
        decision: "allowed",
        address: Some(addr),
        ..ev.clone()
    });
    let closed = Closed {
        shared,
        ev: ProxyEvent {
            decision: "closed",
            address: Some(addr),
            ..ev
        },
        up: AtomicU64::new(0),
        down: AtomicU64::new(0),
    };
    let slots = &shared.io_slots;
    tokio::join!(
        splice::pump(&conn, &upstream, &closed.up, slots, IDLE_TIMEOUT),
        splice::pump(&upstream, &conn, &closed.down, slots, IDLE_TIMEOUT),
    );
}

/// The `closed` event of a relayed connection, emitted when dropped.
struct Closed<'a> {
    shared: &'a Shared,
    ev: ProxyEvent,
    up: AtomicU64,
    down: AtomicU64,
}

impl Drop for Closed<'_> {
    fn drop(&mut self) {
        let mut ev = self.ev.clone();
        ev.at = SystemTime::now();
        ev.bytes_up = self.up.load(Ordering::Relaxed);
        ev.bytes_down = self.down.load(Ordering::Relaxed);
        self.shared.emit(ev);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_log_is_bounded_and_reports_what_it_dropped() {
        let seen = Arc::new(AtomicUsize::new(0));
        let counter = seen.clone();
        let sink: EventSink = Arc::new(move |_| {
            counter.fetch_add(1, Ordering::Relaxed);
        });
        let log = EventLog::new(3, Some(sink));
        for i in 0..10 {
            log.emit(event("dns", &format!("n{i}.test"), 0));
        }
        assert_eq!(log.snapshot().len(), 3);
        assert_eq!(seen.load(Ordering::Relaxed), 3);
        log.summarize();
        let all = log.snapshot();
        assert_eq!(all.len(), 4);
        assert_eq!(all[3].decision, "dropped");
        assert_eq!(all[3].reason.as_deref(), Some("too-many-events"));
        assert!(all[3]
            .detail
            .as_deref()
            .unwrap()
            .starts_with("7 more events"));
        assert_eq!(seen.load(Ordering::Relaxed), 4);
        // A second stop adds nothing.
        log.summarize();
        assert_eq!(log.snapshot().len(), 4);
    }
}
