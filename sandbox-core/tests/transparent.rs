//! Transparent mode of the egress proxy, through the Rust API: clients that
//! ignore the proxy environment (Node 20's `fetch`, raw sockets, glibc's
//! resolver as Go and `getent` use it) reach an allowed name through the
//! sandbox's DNS and the captured ports 80/443, and nothing else.
//!
//! The upstream is a recorder on the host's `127.0.0.1:80` and `:443`
//! (transparent mode captures exactly those ports), reached as
//! `allowed.test` through `--resolve allowed.test:127.0.0.1` and
//! `--allow-private 127.0.0.1/32`. If another process holds one of those
//! ports, the tests say so and pass without running. The tests share the
//! recorder, so they run one at a time.

mod common;

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use common::{require_root, text};
use stockade::proxy::ProxyEvent;
use stockade::{Net, Output, ProxyPolicy, Sandbox};

const BODY: &str = "hello from the upstream\n";

/// What the recorder saw: one entry per connection, its port and first bytes.
#[derive(Debug, Clone)]
struct Seen {
    port: u16,
    first: Vec<u8>,
}

struct Upstream {
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Upstream {
    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

/// The recorder, started once; `None` if port 80 or 443 is taken.
fn upstream() -> Option<&'static Upstream> {
    static UP: OnceLock<Option<Upstream>> = OnceLock::new();
    UP.get_or_init(|| {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let mut listeners = Vec::new();
        for port in [80, 443] {
            match TcpListener::bind((Ipv4Addr::LOCALHOST, port)) {
                Ok(l) => listeners.push((port, l)),
                Err(e) => {
                    eprintln!(
                        "note: cannot bind 127.0.0.1:{port} ({e}); transparent-mode tests skipped"
                    );
                    return None;
                }
            }
        }
        for (port, listener) in listeners {
            let seen = seen.clone();
            std::thread::spawn(move || {
                for conn in listener.incoming().flatten() {
                    let seen = seen.clone();
                    std::thread::spawn(move || record(conn, port, &seen));
                }
            });
        }
        Some(Upstream { seen })
    })
    .as_ref()
}

/// Read the first bytes (a request head, or whatever arrives first), record
/// them, answer: an HTTP response to `GET`, an echo of anything else.
fn record(mut conn: TcpStream, port: u16, seen: &Mutex<Vec<Seen>>) {
    let _ = conn.set_read_timeout(Some(Duration::from_secs(5)));
    let mut first = Vec::new();
    let mut buf = [0u8; 4096];
    while let Ok(n) = conn.read(&mut buf) {
        if n == 0 {
            break;
        }
        first.extend_from_slice(&buf[..n]);
        if !first.starts_with(b"GET") || first.windows(4).any(|w| w == b"\r\n\r\n") {
            break;
        }
    }
    seen.lock().unwrap().push(Seen {
        port,
        first: first.clone(),
    });
    let reply = if first.starts_with(b"GET") {
        format!(
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{BODY}",
            BODY.len()
        )
        .into_bytes()
    } else {
        [b"echo:".as_slice(), &first].concat()
    };
    let _ = conn.write_all(&reply);
}

/// One test at a time: they share the recorder's log.
fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

fn sandbox() -> Sandbox {
    Sandbox::new()
        .net(Net::Proxy(ProxyPolicy {
            allow: vec!["allowed.test".into()],
            resolve: vec!["allowed.test:127.0.0.1".into()],
            allow_private: vec!["127.0.0.1/32".into()],
            ..ProxyPolicy::default()
        }))
        .timeout(Duration::from_secs(60))
}

/// Run `argv` with no environment at all (`env -i`): no proxy variables.
fn run_without_env(argv: &[&str]) -> Output {
    let mut full = vec!["env", "-i", "PATH=/usr/bin:/bin", "HOME=/tmp"];
    full.extend_from_slice(argv);
    sandbox().command(full).output().expect("run the sandbox")
}

fn python(script: &str) -> Output {
    run_without_env(&["python3", "-c", script])
}

fn events_for<'a>(out: &'a Output, protocol: &str, host: &str) -> Vec<&'a ProxyEvent> {
    out.proxy_events
        .iter()
        .filter(|e| e.protocol == protocol && e.host == host)
        .collect()
}

fn assert_ok(out: &Output) {
    assert!(
        out.status.success(),
        "{}\nstdout: {}\nstderr: {}\nevents: {:#?}",
        out.status,
        text(&out.stdout),
        text(&out.stderr),
        out.proxy_events
    );
}

/// The transparent connection to `allowed.test:port` went to the upstream's
/// checked address, and was closed.
fn assert_relayed(out: &Output, port: u16) {
    let ev = events_for(out, "transparent", "allowed.test");
    let decisions: Vec<_> = ev.iter().map(|e| (e.decision, e.port)).collect();
    assert_eq!(decisions, [("allowed", port), ("closed", port)], "{ev:#?}");
    assert_eq!(
        ev[0].address,
        Some(SocketAddr::from((Ipv4Addr::LOCALHOST, port)))
    );
    assert!(ev[1].bytes_up > 0 && ev[1].bytes_down > 0, "{ev:#?}");
}

#[test]
fn node_fetch_without_proxy_support_reaches_an_allowed_name() {
    require_root();
    let _serial = serial();
    let Some(up) = upstream() else { return };
    let before = up.seen().len();
    // Node 20's fetch ignores HTTP_PROXY and NODE_USE_ENV_PROXY; with no
    // environment at all it certainly resolves and connects by itself.
    let out = run_without_env(&[
        "node",
        "-e",
        r#"fetch("http://allowed.test/via-node")
             .then(async r => { process.stdout.write(r.status + " " + await r.text()); })
             .catch(e => { console.error(e, e.cause); process.exit(1); });"#,
    ]);
    assert_ok(&out);
    assert_eq!(text(&out.stdout), format!("200 {BODY}"));
    let seen = &up.seen()[before..];
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(seen[0].port, 80);
    let head = text(&seen[0].first);
    assert!(head.starts_with("GET /via-node HTTP/1.1\r\n"), "{head}");
    assert!(
        head.to_ascii_lowercase().contains("host: allowed.test\r\n"),
        "{head}"
    );
    // Resolved through the sandbox's DNS (an A answer from the pool), then
    // captured on port 80 and relayed to the checked address.
    let dns = events_for(&out, "dns", "allowed.test");
    assert!(
        dns.iter().any(|e| e.decision == "allowed"
            && e.detail
                .as_deref()
                .is_some_and(|d| d.starts_with("A 198.18."))),
        "{dns:#?}"
    );
    assert_relayed(&out, 80);
}

#[test]
fn getaddrinfo_answers_allowed_names_from_the_pool_and_denies_others_without_lookup() {
    require_root();
    let _serial = serial();
    let Some(up) = upstream() else { return };
    let before = up.seen().len();
    let out = python(
        r#"
import socket
a = socket.getaddrinfo("allowed.test", 80, socket.AF_INET, socket.SOCK_STREAM)
b = socket.getaddrinfo("Allowed.Test", 443, socket.AF_INET, socket.SOCK_STREAM)
print(a[0][4][0], b[0][4][0])
try:
    socket.getaddrinfo("evil.test", 80)
    print("evil.test resolved")
except socket.gaierror as e:
    print("evil.test", e.errno == socket.EAI_NONAME)
"#,
    );
    assert_ok(&out);
    let stdout = text(&out.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{stdout}");
    let addrs: Vec<&str> = lines[0].split(' ').collect();
    let addr: Ipv4Addr = addrs[0].parse().expect("an IPv4 address");
    assert_eq!(&addr.octets()[..2], &[198, 18], "{addr}");
    assert_eq!(
        addrs[1], addrs[0],
        "one stable address per name, whatever its case"
    );
    assert_eq!(
        lines[1], "evil.test True",
        "NXDOMAIN, not a temporary failure"
    );

    let evil: Vec<_> = out
        .proxy_events
        .iter()
        .filter(|e| e.host == "evil.test")
        .collect();
    assert!(!evil.is_empty());
    for e in &evil {
        // Only DNS decisions: no lookup, no connection, nothing else.
        assert_eq!((e.protocol, e.decision), ("dns", "denied"), "{e:#?}");
        assert_eq!(e.reason.as_deref(), Some("not-allowed"), "{e:#?}");
        assert!(
            e.detail.as_deref().is_some_and(|d| d.contains("NXDOMAIN")),
            "{e:#?}"
        );
        assert!(e.address.is_none());
    }
    assert!(events_for(&out, "transparent", "allowed.test").is_empty());
    assert_eq!(up.seen().len(), before, "resolving connects nowhere");
}

#[test]
fn raw_sockets_reach_an_allowed_name_on_80_and_443() {
    require_root();
    let _serial = serial();
    let Some(up) = upstream() else { return };
    let before = up.seen().len();
    let out = python(
        r#"
import socket
s = socket.create_connection(("allowed.test", 80), timeout=20)
s.sendall(b"GET /raw HTTP/1.0\r\nHost: allowed.test\r\n\r\n")
got = b""
while True:
    chunk = s.recv(65536)
    if not chunk:
        break
    got += chunk
print(got.split(b"\r\n\r\n", 1)[1].decode(), end="")
# Port 443: whatever the client sends (TLS or not) is relayed untouched.
t = socket.create_connection(("allowed.test", 443), timeout=20)
t.sendall(b"\x16\x03\x01 not really a ClientHello")
print(t.recv(65536))
"#,
    );
    assert_ok(&out);
    assert_eq!(
        text(&out.stdout),
        format!("{BODY}b'echo:\\x16\\x03\\x01 not really a ClientHello'\n")
    );
    let seen = &up.seen()[before..];
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert_eq!(seen[0].port, 80);
    assert!(seen[0].first.starts_with(b"GET /raw HTTP/1.0\r\n"));
    assert_eq!(seen[1].port, 443);
    assert_eq!(seen[1].first, b"\x16\x03\x01 not really a ClientHello");
    // Each connection: allowed, then closed (the two may interleave).
    let ev = events_for(&out, "transparent", "allowed.test");
    for port in [80, 443] {
        let decisions: Vec<_> = ev
            .iter()
            .filter(|e| e.port == port)
            .map(|e| e.decision)
            .collect();
        assert_eq!(decisions, ["allowed", "closed"], "{ev:#?}");
    }
}

#[test]
fn addresses_the_dns_never_handed_out_are_refused() {
    require_root();
    let _serial = serial();
    let Some(up) = upstream() else { return };
    let before = up.seen().len();
    // An unmapped pool address, the pool's own, and the sandbox's loopback
    // on a captured port: accepted by the kernel, then reset by the proxy.
    let out = python(
        r#"
import socket
for host, port in [("198.18.200.200", 80), ("198.18.0.1", 443), ("127.0.0.1", 443)]:
    try:
        s = socket.create_connection((host, port), timeout=20)
        s.sendall(b"GET / HTTP/1.0\r\n\r\n")
        data = s.recv(100)
        print(host, "eof" if data == b"" else repr(data))
    except OSError as e:
        print(host, type(e).__name__)
"#,
    );
    assert_ok(&out);
    let stdout = text(&out.stdout);
    for host in ["198.18.200.200", "198.18.0.1", "127.0.0.1"] {
        let line = stdout
            .lines()
            .find(|l| l.starts_with(&format!("{host} ")))
            .unwrap_or_else(|| panic!("no line for {host}: {stdout}"));
        // Reset, not a clean end of stream (the send may already meet it).
        assert!(
            line.ends_with("ConnectionResetError") || line.ends_with("BrokenPipeError"),
            "{line}"
        );
        let ev: Vec<_> = out.proxy_events.iter().filter(|e| e.host == host).collect();
        assert_eq!(ev.len(), 1, "{ev:#?}");
        assert_eq!(ev[0].protocol, "transparent");
        assert_eq!(ev[0].decision, "denied");
        assert_eq!(ev[0].reason.as_deref(), Some("not-intercepted"));
    }
    assert_eq!(up.seen().len(), before, "nothing may reach the upstream");
}

#[test]
fn getent_resolves_through_resolv_conf() {
    require_root();
    let _serial = serial();
    let Some(up) = upstream() else { return };
    let before = up.seen().len();
    // glibc's resolver reading /etc/resolv.conf, as Go's pure resolver does.
    let out = run_without_env(&[
        "sh",
        "-c",
        "getent hosts allowed.test; echo allowed=$?; getent hosts evil.test; echo evil=$?",
    ]);
    assert_ok(&out);
    let stdout = text(&out.stdout);
    let first = stdout.lines().next().unwrap_or_default();
    let mut fields = first.split_whitespace();
    let addr: Ipv4Addr = fields
        .next()
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("{stdout}"));
    assert_eq!(&addr.octets()[..2], &[198, 18], "{stdout}");
    assert_eq!(fields.next(), Some("allowed.test"), "{stdout}");
    assert!(stdout.contains("allowed=0\n"), "{stdout}");
    assert!(
        stdout.contains("evil=2\n"),
        "getent's 'not found': {stdout}"
    );
    assert_eq!(up.seen().len(), before);
}

#[test]
fn the_explicit_proxy_still_serves_well_behaved_clients() {
    require_root();
    let _serial = serial();
    let Some(up) = upstream() else { return };
    let before = up.seen().len();
    // With the default environment the proxy variables are set; Python's
    // urllib honours them and never resolves the name itself.
    let out = sandbox()
        .command([
            "python3",
            "-c",
            "import os, urllib.request; print(os.environ['HTTP_PROXY']); \
             print(urllib.request.urlopen('http://allowed.test/explicit', timeout=20).read().decode(), end='')",
        ])
        .output()
        .expect("run the sandbox");
    assert_ok(&out);
    assert_eq!(text(&out.stdout), format!("http://127.0.0.1:3128\n{BODY}"));
    assert_eq!(up.seen().len(), before + 1);
    let http = events_for(&out, "http", "allowed.test");
    assert_eq!(
        http.first().map(|e| e.decision),
        Some("allowed"),
        "{http:#?}"
    );
    assert!(
        out.proxy_events.iter().all(|e| e.protocol != "dns"),
        "{:#?}",
        out.proxy_events
    );
}
