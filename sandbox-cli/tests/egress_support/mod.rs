//! Host-side fixtures of the egress suite: upstream servers that record every
//! connection they accept (so a test can say "the upstream saw nothing"), a
//! tiny PEP 503 index with a wheel built here, the Python probe the sandboxes
//! run, and `--report` helpers.
//!
//! Every recorder binds port 0 on the host's loopback, so tests running in
//! parallel never share one. [`Upstream::log`] and [`UdpRecorder::datagrams`]
//! are exact, not "after a sleep": they send a sentinel of their own and wait
//! until it arrives, so everything queued before it (the proxy's connection
//! completed before the sandbox exited) has been recorded.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, Shutdown, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::common::Probes;

// ---------------------------------------------------------------------------------------------
// TCP upstreams
// ---------------------------------------------------------------------------------------------

/// What an upstream saw.
#[derive(Debug, Clone, Default)]
pub struct Log {
    /// Peer address of every accepted connection, in accept order.
    pub connections: Vec<SocketAddr>,
    /// Every request head received (HTTP upstreams), text up to the blank line.
    pub heads: Vec<String>,
    /// Raw bytes received per connection (raw TCP recorders).
    pub bytes: usize,
}

impl Log {
    /// The request lines (`GET /x HTTP/1.1`), in order.
    pub fn request_lines(&self) -> Vec<String> {
        self.heads
            .iter()
            .map(|h| h.lines().next().unwrap_or("").to_string())
            .collect()
    }
}

/// How an upstream answers.
#[derive(Clone)]
enum Mode {
    /// HTTP/1.1: serve `routes` (path → content type, body), 404 otherwise.
    Http(Arc<BTreeMap<String, (String, Vec<u8>)>>),
    /// Read and count bytes, never answer.
    Raw,
}

/// A TCP server on the host's loopback that records every connection.
pub struct Upstream {
    addr: SocketAddr,
    log: Arc<Mutex<Log>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Upstream {
    /// An HTTP server on `127.0.0.1:0` serving `routes` (path, content type, body).
    pub fn http(routes: &[(&str, &str, Vec<u8>)]) -> Self {
        Self::http_on(IpAddr::V4(Ipv4Addr::LOCALHOST), routes).expect("bind 127.0.0.1:0")
    }

    /// The same on `bind` (e.g. `::1`); `Err` when the host cannot bind there.
    pub fn http_on(bind: IpAddr, routes: &[(&str, &str, Vec<u8>)]) -> std::io::Result<Self> {
        let map = routes
            .iter()
            .map(|(p, t, b)| (p.to_string(), (t.to_string(), b.clone())))
            .collect();
        Self::start(bind, Mode::Http(Arc::new(map)))
    }

    /// A raw TCP recorder on `127.0.0.1:0`: accepts, reads, never answers.
    pub fn raw() -> Self {
        Self::start(IpAddr::V4(Ipv4Addr::LOCALHOST), Mode::Raw).expect("bind 127.0.0.1:0")
    }

    fn start(bind: IpAddr, mode: Mode) -> std::io::Result<Self> {
        let listener = TcpListener::bind(SocketAddr::new(bind, 0))?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let log = Arc::new(Mutex::new(Log::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (log, stop) = (log.clone(), stop.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Acquire) {
                    match listener.accept() {
                        Ok((conn, peer)) => {
                            log.lock().unwrap().connections.push(peer);
                            let (log, mode) = (log.clone(), mode.clone());
                            std::thread::spawn(move || serve(conn, &mode, &log));
                        }
                        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                            std::thread::sleep(Duration::from_millis(2));
                        }
                        Err(_) => std::thread::sleep(Duration::from_millis(2)),
                    }
                }
            })
        };
        Ok(Upstream {
            addr,
            log,
            stop,
            thread: Some(thread),
        })
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Everything seen so far, exactly: a sentinel connection of our own is
    /// queued behind whatever the proxy opened, and once it is accepted every
    /// earlier connection has been recorded. The sentinel is left out, and
    /// the heads of connections still being read are given time to arrive.
    pub fn log(&self) -> Log {
        let sentinel = TcpStream::connect(self.addr).expect("connect sentinel");
        let me = sentinel.local_addr().expect("sentinel addr");
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if self.log.lock().unwrap().connections.contains(&me) {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "upstream never accepted the sentinel"
            );
            std::thread::sleep(Duration::from_millis(1));
        }
        drop(sentinel);
        // Connections are served on their own threads: give a head that is in
        // flight a moment (a well-behaved sandbox has finished by now).
        std::thread::sleep(Duration::from_millis(50));
        let mut log = self.log.lock().unwrap();
        log.connections.retain(|c| *c != me);
        log.clone()
    }

    /// Assert this upstream saw no connection at all.
    #[track_caller]
    pub fn assert_untouched(&self, context: &str) {
        let log = self.log();
        assert!(
            log.connections.is_empty() && log.heads.is_empty() && log.bytes == 0,
            "the upstream on {} must not have been reached ({context}), but saw {log:?}",
            self.addr
        );
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn serve(mut conn: TcpStream, mode: &Mode, log: &Mutex<Log>) {
    let _ = conn.set_read_timeout(Some(Duration::from_secs(5)));
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    match mode {
        Mode::Raw => {
            while let Ok(n) = conn.read(&mut chunk) {
                if n == 0 {
                    break;
                }
                log.lock().unwrap().bytes += n;
            }
        }
        Mode::Http(routes) => {
            let head_end = loop {
                if let Some(i) = find(&buf, b"\r\n\r\n") {
                    break Some(i);
                }
                match conn.read(&mut chunk) {
                    Ok(0) | Err(_) => break None,
                    Ok(n) => buf.extend_from_slice(&chunk[..n]),
                }
                if buf.len() > 64 * 1024 {
                    break None;
                }
            };
            if !buf.is_empty() {
                let end = head_end.unwrap_or(buf.len());
                log.lock()
                    .unwrap()
                    .heads
                    .push(String::from_utf8_lossy(&buf[..end]).into_owned());
            }
            if head_end.is_none() {
                return;
            }
            let line =
                String::from_utf8_lossy(&buf[..find(&buf, b"\r\n").unwrap_or(0)]).into_owned();
            let path = line.split(' ').nth(1).unwrap_or("");
            let (status, ctype, body) = match routes.get(path) {
                Some((t, b)) => ("200 OK", t.as_str(), b.as_slice()),
                None => ("404 Not Found", "text/plain", &b"not found\n"[..]),
            };
            let head = format!(
                "HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = conn.write_all(head.as_bytes());
            let _ = conn.write_all(body);
            let _ = conn.shutdown(Shutdown::Write);
            // Drain until the client closes, so closing never resets.
            let _ = conn.set_read_timeout(Some(Duration::from_secs(2)));
            while let Ok(n) = conn.read(&mut chunk) {
                if n == 0 {
                    break;
                }
            }
        }
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

// ---------------------------------------------------------------------------------------------
// UDP ("DNS") recorder
// ---------------------------------------------------------------------------------------------

/// A received datagram: sender and bytes.
pub type Datagram = (SocketAddr, Vec<u8>);

/// A UDP socket on the host's `127.0.0.1:0` recording every datagram.
pub struct UdpRecorder {
    addr: SocketAddr,
    seen: Arc<Mutex<Vec<Datagram>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl UdpRecorder {
    pub fn start() -> Self {
        let sock = UdpSocket::bind("127.0.0.1:0").expect("bind udp 127.0.0.1:0");
        sock.set_read_timeout(Some(Duration::from_millis(20)))
            .expect("udp timeout");
        let addr = sock.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (seen, stop) = (seen.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut buf = [0u8; 65536];
                while !stop.load(Ordering::Acquire) {
                    if let Ok((n, from)) = sock.recv_from(&mut buf) {
                        seen.lock().unwrap().push((from, buf[..n].to_vec()));
                    }
                }
            })
        };
        UdpRecorder {
            addr,
            seen,
            stop,
            thread: Some(thread),
        }
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Every datagram received so far (a sentinel datagram of our own marks
    /// the point where the queue has been read; it is left out).
    pub fn datagrams(&self) -> Vec<Datagram> {
        let s = UdpSocket::bind("127.0.0.1:0").unwrap();
        let me = s.local_addr().unwrap();
        s.send_to(b"stockade-sentinel", self.addr).unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if self.seen.lock().unwrap().iter().any(|(f, _)| *f == me) {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "UDP recorder never saw the sentinel"
            );
            std::thread::sleep(Duration::from_millis(1));
        }
        let mut seen = self.seen.lock().unwrap();
        seen.retain(|(f, _)| *f != me);
        seen.clone()
    }
}

impl Drop for UdpRecorder {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

// ---------------------------------------------------------------------------------------------
// A pure wheel and its PEP 503 index
// ---------------------------------------------------------------------------------------------

/// Distribution name of the test wheel (PEP 503 normalised form).
pub const WHEEL_PROJECT: &str = "stockade-probe";
/// File name of the test wheel.
pub const WHEEL_FILE: &str = "stockade_probe-1.0-py3-none-any.whl";

/// A minimal pure-Python wheel: one module, METADATA, WHEEL, RECORD.
pub fn build_wheel() -> Vec<u8> {
    let di = "stockade_probe-1.0.dist-info";
    let files: Vec<(String, Vec<u8>)> = vec![
        (
            "stockade_probe/__init__.py".into(),
            b"MARKER = 'stockade egress test'\n".to_vec(),
        ),
        (
            format!("{di}/METADATA"),
            b"Metadata-Version: 2.1\nName: stockade-probe\nVersion: 1.0\nSummary: egress test\n\n"
                .to_vec(),
        ),
        (
            format!("{di}/WHEEL"),
            b"Wheel-Version: 1.0\nGenerator: stockade-tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
                .to_vec(),
        ),
        (
            format!("{di}/RECORD"),
            format!(
                "stockade_probe/__init__.py,,\n{di}/METADATA,,\n{di}/WHEEL,,\n{di}/RECORD,,\n"
            )
            .into_bytes(),
        ),
    ];
    zip_stored(&files)
}

/// The PEP 503 project page listing the wheel.
pub fn index_page() -> Vec<u8> {
    format!(
        "<!DOCTYPE html>\n<html><body>\n<a href=\"/files/{WHEEL_FILE}\">{WHEEL_FILE}</a>\n</body></html>\n"
    )
    .into_bytes()
}

/// An uncompressed ("stored") zip archive.
fn zip_stored(files: &[(String, Vec<u8>)]) -> Vec<u8> {
    const DOS_DATE: u16 = (1 << 5) | 1; // 1980-01-01
    let mut out = Vec::new();
    let mut central = Vec::new();
    for (name, data) in files {
        let crc = crc32(data);
        let offset = out.len() as u32;
        let mut local = Vec::new();
        local.extend(0x0403_4b50u32.to_le_bytes());
        local.extend(20u16.to_le_bytes()); // version needed
        local.extend(0u16.to_le_bytes()); // flags
        local.extend(0u16.to_le_bytes()); // stored
        local.extend(0u16.to_le_bytes()); // time
        local.extend(DOS_DATE.to_le_bytes());
        local.extend(crc.to_le_bytes());
        local.extend((data.len() as u32).to_le_bytes());
        local.extend((data.len() as u32).to_le_bytes());
        local.extend((name.len() as u16).to_le_bytes());
        local.extend(0u16.to_le_bytes()); // extra
        local.extend(name.as_bytes());
        out.extend(local);
        out.extend(data);

        central.extend(0x0201_4b50u32.to_le_bytes());
        central.extend(0x0314u16.to_le_bytes()); // made by: unix, 2.0
        central.extend(20u16.to_le_bytes());
        central.extend(0u16.to_le_bytes());
        central.extend(0u16.to_le_bytes());
        central.extend(0u16.to_le_bytes());
        central.extend(DOS_DATE.to_le_bytes());
        central.extend(crc.to_le_bytes());
        central.extend((data.len() as u32).to_le_bytes());
        central.extend((data.len() as u32).to_le_bytes());
        central.extend((name.len() as u16).to_le_bytes());
        central.extend(0u16.to_le_bytes()); // extra
        central.extend(0u16.to_le_bytes()); // comment
        central.extend(0u16.to_le_bytes()); // disk
        central.extend(0u16.to_le_bytes()); // internal attributes
        central.extend(((0o100644u32) << 16).to_le_bytes());
        central.extend(offset.to_le_bytes());
        central.extend(name.as_bytes());
    }
    let cd_offset = out.len() as u32;
    let cd_size = central.len() as u32;
    out.extend(central);
    out.extend(0x0605_4b50u32.to_le_bytes());
    out.extend(0u16.to_le_bytes());
    out.extend(0u16.to_le_bytes());
    out.extend((files.len() as u16).to_le_bytes());
    out.extend((files.len() as u16).to_le_bytes());
    out.extend(cd_size.to_le_bytes());
    out.extend(cd_offset.to_le_bytes());
    out.extend(0u16.to_le_bytes());
    out
}

fn crc32(data: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

// ---------------------------------------------------------------------------------------------
// The probe the sandboxes run
// ---------------------------------------------------------------------------------------------

/// Where [`PROBE_PY`] is mounted inside (`--ro HOSTFILE:/probe.py`).
pub const PROBE: &str = "/probe.py";

/// A Python probe run inside the sandboxes (Debian's /usr/bin/python3). Each
/// subcommand prints one line and exits 0, so a probe's output is its result:
///
/// - `http RAW`: send RAW (`\r\n` escapes allowed) to the HTTP proxy; print
///   `STATUS X-PROXY-ERROR` (`-` when absent) or `no-response ...`;
/// - `get TARGET` / `connect AUTHORITY`: the same for one request line;
/// - `socks HOST PORT`: SOCKS5 CONNECT (`ip4:`/`ip6:` prefixes send an
///   address, anything else a domain name); print `reply=N`;
/// - `tcp|tcp6|udp|udp6 HOST PORT`: connect (TCP) or send (UDP); print `ok`
///   or the errno's name;
/// - `dns HOST PORT`: a DNS query for example.com over UDP; print `ok`
///   (an answer came), or the errno's name of the send or the receive;
/// - `bighead AUTHORITY` / `manyheaders AUTHORITY`: oversized requests;
/// - `slow SECS`: one HTTP and one SOCKS5 client that send a partial head and
///   then nothing; print how each connection ended and after how long.
pub const PROBE_PY: &str = r#"
import errno, socket, sys, threading, time

PROXY = ("127.0.0.1", 3128)
SOCKS = ("127.0.0.1", 1080)

def ename(e):
    return errno.errorcode.get(e.errno, str(e.errno)) if isinstance(e.errno, int) else str(e)

def recv_all(s):
    data = b""
    while True:
        try:
            b = s.recv(65536)
        except socket.timeout:
            return data + b"<timeout>"
        except OSError as e:
            return data + ("<%s>" % ename(e)).encode()
        if not b:
            return data
        data += b

def status(data):
    head = data.split(b"\r\n\r\n", 1)[0].decode("latin-1")
    lines = head.split("\r\n")
    if not lines[0].startswith("HTTP/"):
        return "no-response %r" % data[:80]
    code = lines[0].split(" ")[1]
    err = "-"
    for l in lines[1:]:
        k, _, v = l.partition(":")
        if k.strip().lower() == "x-proxy-error":
            err = v.strip()
    return code + " " + err

def http(raw):
    s = socket.create_connection(PROXY, timeout=10)
    s.sendall(raw)
    print(status(recv_all(s)))

def socks(host, port):
    s = socket.create_connection(SOCKS, timeout=10)
    s.sendall(b"\x05\x01\x00")
    if s.recv(2) != b"\x05\x00":
        print("no-method"); return
    if host.startswith("ip4:"):
        addr = b"\x01" + socket.inet_pton(socket.AF_INET, host[4:])
    elif host.startswith("ip6:"):
        addr = b"\x04" + socket.inet_pton(socket.AF_INET6, host[4:])
    else:
        h = host.encode()
        addr = b"\x03" + bytes([len(h)]) + h
    s.sendall(b"\x05\x01\x00" + addr + int(port).to_bytes(2, "big"))
    r = s.recv(2)
    print("reply=%d" % r[1] if len(r) == 2 else "no-reply %r" % r)

def sock(kind, host, port):
    fam = socket.AF_INET6 if kind.endswith("6") else socket.AF_INET
    typ = socket.SOCK_STREAM if kind.startswith("tcp") else socket.SOCK_DGRAM
    s = socket.socket(fam, typ)
    s.settimeout(5)
    try:
        if typ == socket.SOCK_STREAM:
            s.connect((host, int(port)))
        else:
            s.sendto(b"\x00" * 32, (host, int(port)))
        print("ok")
    except OSError as e:
        print(ename(e))

def dns(host, port):
    q = b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x07example\x03com\x00\x00\x01\x00\x01"
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(2)
    try:
        s.connect((host, int(port)))
        s.send(q)
        s.recv(512)
        print("ok")
    except socket.timeout:
        print("timeout")
    except OSError as e:
        print(ename(e))

def slow(limit):
    res = {}
    def one(name, addr, partial):
        s = socket.create_connection(addr, timeout=limit)
        t0 = time.monotonic()
        s.sendall(partial)
        data = recv_all(s)
        took = time.monotonic() - t0
        if name == "http":
            res[name] = "%s after %.1f" % (status(data) if data.startswith(b"HTTP/") else repr(data), took)
        else:
            res[name] = "%r after %.1f" % (data, took)
    ts = [threading.Thread(target=one, args=a) for a in (
        ("http", PROXY, b"GET http://allowed.test/ HTTP/1.1\r\nHost: allowed.test\r\nX-Slow: "),
        ("socks", SOCKS, b"\x05"),
    )]
    for t in ts: t.start()
    for t in ts: t.join()
    print("http=%s socks=%s" % (res.get("http"), res.get("socks")))

cmd, args = sys.argv[1], sys.argv[2:]
if cmd == "http":
    http(args[0].encode().decode("unicode_escape").encode("latin-1"))
elif cmd == "get":
    http(("GET %s HTTP/1.1\r\nHost: allowed.test\r\n\r\n" % args[0]).encode())
elif cmd == "connect":
    http(("CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n" % (args[0], args[0])).encode())
elif cmd == "socks":
    socks(args[0], args[1])
elif cmd in ("tcp", "tcp6", "udp", "udp6"):
    sock(cmd, args[0], args[1])
elif cmd == "dns":
    dns(args[0], args[1])
elif cmd == "bighead":
    # Exactly the proxy's 16 KiB head limit and no blank line: the proxy reads
    # every byte before it refuses, so its close cannot reset the reply away.
    start = ("GET http://%s/ HTTP/1.1\r\nHost: x\r\nX-Big: " % args[0]).encode()
    http(start + b"a" * (16 * 1024 - len(start)))
elif cmd == "manyheaders":
    hs = "".join("X-H%d: v\r\n" % i for i in range(101))
    http(("GET http://%s/ HTTP/1.1\r\nHost: x\r\n%s\r\n" % (args[0], hs)).encode())
elif cmd == "slow":
    slow(float(args[0]))
else:
    print("unknown probe command", cmd); sys.exit(2)
"#;

/// `python3 /probe.py ARGS` as a shell command (arguments quoted).
pub fn py(args: &[&str]) -> String {
    let mut s = format!("python3 {PROBE}");
    for a in args {
        s.push(' ');
        s.push_str(&crate::common::shq(a));
    }
    s
}

// ---------------------------------------------------------------------------------------------
// Assertions
// ---------------------------------------------------------------------------------------------

/// Assert probe `name` exited `rc` and printed exactly `out`.
#[track_caller]
pub fn expect(p: &Probes, name: &str, rc: i32, out: &str) {
    let got = p.get(name);
    assert!(
        got.rc == rc && got.out == out,
        "probe {name}: want rc={rc} out={out:?}, got {got:?}\n{}",
        p.all()
    );
}

/// The `proxy` objects of a `--report` file's events, in order.
pub fn proxy_events(report: &str) -> Vec<serde_json::Value> {
    let text = std::fs::read_to_string(report).unwrap_or_else(|e| panic!("read {report}: {e}"));
    let json: serde_json::Value =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("parse {report}: {e}\n{text}"));
    json["events"]
        .as_array()
        .unwrap_or_else(|| panic!("no events array in {report}: {json}"))
        .iter()
        .filter(|e| e["kind"] == "proxy")
        .map(|e| e["proxy"].clone())
        .collect()
}

/// Assert there is a `denied` event for `host:port` (as the client named it)
/// with `reason`.
#[track_caller]
pub fn assert_denied_event(
    events: &[serde_json::Value],
    protocol: &str,
    host: &str,
    port: u16,
    reason: &str,
) {
    let found = events.iter().any(|e| {
        e["decision"] == "denied"
            && e["protocol"] == protocol
            && e["host"] == host
            && e["port"] == port
            && e["reason"] == reason
    });
    assert!(
        found,
        "no denied {protocol} event for {host}:{port} with reason {reason}; events:\n{}",
        serde_json::to_string_pretty(events).unwrap()
    );
}

/// Assert no event says `allowed` (nothing was let through).
#[track_caller]
pub fn assert_none_allowed(events: &[serde_json::Value]) {
    let allowed: Vec<_> = events
        .iter()
        .filter(|e| e["decision"] != "denied")
        .collect();
    assert!(
        allowed.is_empty(),
        "a denial run let connections through: {}",
        serde_json::to_string_pretty(&allowed).unwrap()
    );
}
