//! Captured connections: the transparent half of the proxy, for clients that
//! ignore the proxy environment (Node's `fetch` before Node 24, Go binaries,
//! anything that resolves a name and connects to the address).
//!
//! Such a client asks the sandbox's DNS ([`super::dns`]) for an allowed name
//! and gets a fake address from `198.18.0.0/15`; that range is local on the
//! sandbox's `lo`, so its connection to port 80 or 443 lands on the listener
//! bound to `0.0.0.0` there, and the accepted socket's local address *is* the
//! original destination. The fake address is mapped back to the name, and
//! from there the connection takes exactly the explicit proxy's path
//! ([`super::server::decide`], [`super::server::relay`]): the policy checks
//! `name:port` again, the name is resolved once on the host (`--resolve`
//! first), the address is checked, and the bytes are relayed untouched (TLS
//! passes through end to end; plain HTTP on port 80 is relayed raw too).
//!
//! A connection to an address the DNS never handed out (an unmapped pool
//! address, or `127.0.0.1:443`) is refused: reset, with a `not-intercepted`
//! event. So is one to an allowed name whose policy has no room for the port
//! (a name allowed only on 443, reached on 80).

use std::net::IpAddr;

use tokio::net::TcpStream;

use super::server::{decide, denied, event, relay, Shared};

/// The event protocol of captured connections.
const PROTOCOL: &str = "transparent";

/// Serve one captured connection.
pub(super) async fn serve(conn: TcpStream, shared: &Shared) {
    let Ok(dest) = conn.local_addr() else {
        return;
    };
    let port = dest.port();
    let name = match dest.ip() {
        IpAddr::V4(v4) => shared.pool.name_of(v4),
        IpAddr::V6(_) => None,
    };
    let Some(name) = name else {
        let mut ev = event(PROTOCOL, &dest.ip().to_string(), port);
        ev.reason = Some("not-intercepted".into());
        ev.detail = Some(format!(
            "{dest} is not an address the sandbox's DNS handed out for an allowed name"
        ));
        shared.emit(ev);
        refuse(conn);
        return;
    };
    let ev = event(PROTOCOL, &name, port);
    match decide(&name, port, shared).await {
        Ok((upstream, addr)) => relay(conn, upstream, addr, ev, shared).await,
        Err(d) => {
            shared.emit(denied(ev, &d));
            refuse(conn);
        }
    }
}

/// Close with a reset (`SO_LINGER` 0), so the client sees a refusal rather
/// than a clean end of stream that could pass for an empty answer.
fn refuse(conn: TcpStream) {
    let zero = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    let _ = nix::sys::socket::setsockopt(&conn, nix::sys::socket::sockopt::Linger, &zero);
    drop(conn);
}
