//! Egress proxy cost, side by side in one run:
//!
//! - throughput of one large download (default 1 GiB) from an upstream on the
//!   host's loopback: direct, and from inside a sandbox through HTTP CONNECT
//!   and through SOCKS5;
//! - connection setup latency (connect, tunnel set up, one byte echoed):
//!   direct vs through each proxy front end.
//!
//! The same executable is the client inside the sandbox (`client` mode),
//! granted read-only; the proxy runs in this process, as it would in an agent.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

use stockade::{Fs, Net, ProxyPolicy, Sandbox};

const CHUNK: usize = 1 << 20;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("client") {
        return client(&args[2..]);
    }
    let bytes: u64 = std::env::var("PROXY_BENCH_BYTES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1 << 30);
    let conns: usize = std::env::var("PROXY_BENCH_CONNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    let port = upstream();
    let exe = std::env::current_exe().expect("own path");
    let dir = exe.parent().unwrap().to_path_buf();

    println!(
        "egress proxy benchmark: {} MiB download, {conns} connections per round, {ROUNDS} rounds interleaved",
        bytes >> 20
    );
    let modes = ["http-connect", "socks5"];
    // samples[0] = direct, then one per mode: (MB/s per round, ms per connection).
    let mut tput: Vec<Vec<f64>> = vec![Vec::new(); modes.len() + 1];
    let mut lat: Vec<Vec<f64>> = vec![Vec::new(); modes.len() + 1];
    for _ in 0..ROUNDS {
        tput[0].push(throughput_direct(port, bytes));
        lat[0].extend(latency_direct(port, conns));
        for (i, mode) in modes.iter().enumerate() {
            let (tp, l) = sandboxed(&exe, &dir, mode, port, bytes, conns);
            tput[i + 1].push(tp);
            lat[i + 1].extend(l);
        }
    }
    let med = |v: &mut Vec<f64>| {
        v.sort_by(|a, b| a.total_cmp(b));
        v[v.len() / 2]
    };
    let (dt, dl) = (med(&mut tput[0]), med(&mut lat[0]));
    println!("{:<22} {:>10} {:>16}", "path", "MB/s p50", "ms/conn p50");
    println!("{:<22} {:>10.0} {:>16.3}", "direct loopback", dt, dl);
    for (i, mode) in modes.iter().enumerate() {
        let (t, l) = (med(&mut tput[i + 1]), med(&mut lat[i + 1]));
        println!(
            "{:<22} {:>10.0} {:>16.3}   {:.2}x throughput, {:+.3} ms/connection",
            format!("proxy {mode}"),
            t,
            l,
            t / dt,
            l - dl
        );
    }
}

const ROUNDS: usize = 5;

/// One sandboxed client run through `mode`: (MB/s, per-connection ms).
fn sandboxed(
    exe: &std::path::Path,
    dir: &std::path::Path,
    mode: &str,
    port: u16,
    bytes: u64,
    conns: usize,
) -> (f64, Vec<f64>) {
    let out = Sandbox::new()
        .fs(Fs::minimal().ro(dir))
        .net(Net::Proxy(ProxyPolicy {
            allow: vec![format!("upstream.test:{port}")],
            allow_private: vec!["127.0.0.1/32".into()],
            resolve: vec!["upstream.test:127.0.0.1".into()],
            ..ProxyPolicy::default()
        }))
        .command([
            exe.to_str().unwrap().to_string(),
            "client".into(),
            mode.into(),
            port.to_string(),
            bytes.to_string(),
            conns.to_string(),
        ])
        .output()
        .expect("sandboxed client");
    if !out.status.success() {
        panic!("{mode}: {}", String::from_utf8_lossy(&out.stderr));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let mut it = text.split_whitespace().map(|v| v.parse::<f64>().unwrap());
    let tp = it.next().unwrap();
    (tp, it.collect())
}

/// Upstream on the host's loopback: first byte `d` = stream the requested
/// number of bytes; `e` = echo one byte.
fn upstream() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for conn in l.incoming().flatten() {
            std::thread::spawn(move || serve(conn));
        }
    });
    port
}

fn serve(mut c: TcpStream) {
    let _ = c.set_nodelay(true);
    let mut cmd = [0u8; 9];
    if c.read_exact(&mut cmd[..1]).is_err() {
        return;
    }
    if cmd[0] == b'e' {
        let _ = c.write_all(b"e");
        return;
    }
    if c.read_exact(&mut cmd[1..]).is_err() {
        return;
    }
    let mut left = u64::from_le_bytes(cmd[1..].try_into().unwrap());
    let buf = vec![0x5au8; CHUNK];
    while left > 0 {
        let n = left.min(CHUNK as u64) as usize;
        if c.write_all(&buf[..n]).is_err() {
            return;
        }
        left -= n as u64;
    }
}

fn download(mut s: TcpStream, bytes: u64) -> f64 {
    let t = Instant::now();
    let mut req = vec![b'd'];
    req.extend_from_slice(&bytes.to_le_bytes());
    s.write_all(&req).unwrap();
    let mut buf = vec![0u8; CHUNK];
    let mut got = 0u64;
    while got < bytes {
        let n = s.read(&mut buf).unwrap();
        assert!(n > 0, "upstream closed early at {got}");
        got += n as u64;
    }
    got as f64 / t.elapsed().as_secs_f64() / 1e6
}

fn echo(mut s: TcpStream) {
    s.write_all(b"e").unwrap();
    let mut b = [0u8; 1];
    s.read_exact(&mut b).unwrap();
}

fn throughput_direct(port: u16, bytes: u64) -> f64 {
    download(TcpStream::connect(("127.0.0.1", port)).unwrap(), bytes)
}

fn latency_direct(port: u16, conns: usize) -> Vec<f64> {
    (0..conns)
        .map(|_| {
            let t = Instant::now();
            let s = TcpStream::connect(("127.0.0.1", port)).unwrap();
            s.set_nodelay(true).unwrap();
            echo(s);
            ms(t.elapsed())
        })
        .collect()
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// Inside the sandbox: open a tunnel to upstream.test:PORT through one of
/// the proxy front ends.
fn tunnel(mode: &str, port: u16) -> TcpStream {
    match mode {
        "http-connect" => {
            let mut s = TcpStream::connect("127.0.0.1:3128").unwrap();
            s.set_nodelay(true).unwrap();
            write!(s, "CONNECT upstream.test:{port} HTTP/1.1\r\nHost: upstream.test:{port}\r\n\r\n").unwrap();
            // Read the response head byte by byte up to the blank line.
            let mut head = Vec::new();
            let mut b = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") {
                s.read_exact(&mut b).unwrap();
                head.push(b[0]);
            }
            assert!(head.starts_with(b"HTTP/1.1 200"), "{}", String::from_utf8_lossy(&head));
            s
        }
        _ => {
            let mut s = TcpStream::connect("127.0.0.1:1080").unwrap();
            s.set_nodelay(true).unwrap();
            s.write_all(&[5, 1, 0]).unwrap();
            let mut r = [0u8; 2];
            s.read_exact(&mut r).unwrap();
            let name = b"upstream.test";
            let mut req = vec![5, 1, 0, 3, name.len() as u8];
            req.extend_from_slice(name);
            req.extend_from_slice(&port.to_be_bytes());
            s.write_all(&req).unwrap();
            let mut rep = [0u8; 10];
            s.read_exact(&mut rep).unwrap();
            assert_eq!(rep[1], 0, "SOCKS5 reply {}", rep[1]);
            s
        }
    }
}

fn client(args: &[String]) {
    let mode = args[0].as_str();
    let port: u16 = args[1].parse().unwrap();
    let bytes: u64 = args[2].parse().unwrap();
    let conns: usize = args[3].parse().unwrap();
    let tp = download(tunnel(mode, port), bytes);
    let v: Vec<String> = (0..conns)
        .map(|_| {
            let t = Instant::now();
            echo(tunnel(mode, port));
            ms(t.elapsed()).to_string()
        })
        .collect();
    println!("{tp} {}", v.join(" "));
}
