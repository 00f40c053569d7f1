//! The proxy's listening sockets, created by the sandbox init inside the
//! sandbox's network namespace and handed to the host over the control socket
//! (SCM_RIGHTS). They listen before the command starts, so its first request
//! waits in the backlog rather than racing the host: no helper process, no
//! relay, no first-request failure.
//!
//! Two front doors, both always on in `Net::Proxy` mode:
//!
//! - **explicit**: `127.0.0.1:3128` (HTTP) and `127.0.0.1:1080` (SOCKS5), for
//!   clients that honour the proxy environment;
//! - **transparent** (see [`super::dns`]): a DNS server on `127.0.0.1:53`
//!   (the sandbox's `/etc/resolv.conf` names it) that answers allowed names
//!   with addresses from [`FAKE_POOL`], made local on `lo` by
//!   [`add_fake_pool`], and TCP listeners on `0.0.0.0:80` and `0.0.0.0:443`
//!   that accept every connection to those ports on any local address,
//!   fake-pool addresses included.

use std::net::{Ipv4Addr, SocketAddrV4};
use std::os::fd::{AsRawFd, OwnedFd};

use nix::errno::Errno;
use nix::sys::socket::{
    bind, listen, setsockopt, socket, sockopt, AddressFamily, Backlog, SockFlag, SockType,
    SockaddrIn,
};

/// The HTTP proxy's port on the sandbox's loopback.
pub const HTTP_PORT: u16 = 3128;
/// The SOCKS5 proxy's port on the sandbox's loopback.
pub const SOCKS_PORT: u16 = 1080;
/// The DNS server's port on the sandbox's loopback (UDP).
pub const DNS_PORT: u16 = 53;
/// The TCP ports captured on every local address (transparent mode).
pub const CAPTURED_PORTS: [u16; 2] = [80, 443];

/// The ports the command may connect to in proxy mode (Landlock's TCP rule):
/// the explicit proxy's and the captured ones. Connecting to any real outside
/// address on 80 or 443 still fails (`ENETUNREACH`): the namespace has only
/// `lo`, so what answers there is always the proxy.
pub const PORTS: [u16; 4] = [HTTP_PORT, SOCKS_PORT, CAPTURED_PORTS[0], CAPTURED_PORTS[1]];

/// The fake address pool, `198.18.0.0/15` (RFC 2544 benchmarking): the
/// policy refuses it as a real destination (`reserved-address`), so a fake
/// address never collides with a real upstream.
pub const FAKE_POOL: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 0);
/// [`FAKE_POOL`]'s prefix length.
pub const FAKE_POOL_PREFIX: u8 = 15;
/// The address put on `lo` to make the pool local; never handed out.
pub const FAKE_POOL_OWN: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);

/// Which listener a descriptor is, in the order [`create`] returns them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// HTTP proxy (`CONNECT` and absolute-form requests).
    Http,
    /// SOCKS5.
    Socks5,
    /// The DNS server (a UDP socket, not a listener).
    Dns,
    /// Connections captured on this port, any local address.
    Captured(u16),
}

/// The sockets in the order they travel.
pub const ORDER: [Kind; 5] = [
    Kind::Http,
    Kind::Socks5,
    Kind::Dns,
    Kind::Captured(CAPTURED_PORTS[0]),
    Kind::Captured(CAPTURED_PORTS[1]),
];

/// A socket that could not be made: which step, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenError {
    /// What was being done, e.g. `bind the DNS socket to 127.0.0.1:53`.
    pub step: String,
    /// The error.
    pub errno: Errno,
}

/// Make [`FAKE_POOL`] local on `lo`: add [`FAKE_POOL_OWN`]`/15` to it (see
/// `sys::netlink::add_address_v4`). Needs `CAP_NET_ADMIN` over the
/// sandbox's network namespace, so the init does it before dropping its
/// capabilities.
pub fn add_fake_pool() -> Result<(), Errno> {
    crate::sys::netlink::add_address_v4(c"lo", FAKE_POOL_OWN, FAKE_POOL_PREFIX)
}

/// Create every socket of [`ORDER`] (the namespace's loopback must be up and,
/// for the captured ports to see fake-pool connections, [`add_fake_pool`]
/// done). Non-blocking and close-on-exec: the host serves them, the command
/// never inherits them. Ports below 1024 need `CAP_NET_BIND_SERVICE` over the
/// namespace, which the init still has.
pub fn create() -> Result<Vec<OwnedFd>, ListenError> {
    ORDER.into_iter().map(create_one).collect()
}

fn create_one(kind: Kind) -> Result<OwnedFd, ListenError> {
    let (what, ty, addr) = match kind {
        Kind::Http => (
            "HTTP proxy listener",
            SockType::Stream,
            (Ipv4Addr::LOCALHOST, HTTP_PORT),
        ),
        Kind::Socks5 => (
            "SOCKS5 listener",
            SockType::Stream,
            (Ipv4Addr::LOCALHOST, SOCKS_PORT),
        ),
        Kind::Dns => (
            "DNS socket",
            SockType::Datagram,
            (Ipv4Addr::LOCALHOST, DNS_PORT),
        ),
        Kind::Captured(port) => (
            "transparent listener",
            SockType::Stream,
            (Ipv4Addr::UNSPECIFIED, port),
        ),
    };
    let addr = SocketAddrV4::new(addr.0, addr.1);
    let err = |step: &'static str| {
        move |errno| ListenError {
            step: format!("{step} the {what} on {addr}"),
            errno,
        }
    };
    let fd = socket(
        AddressFamily::Inet,
        ty,
        SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK,
        None,
    )
    .map_err(err("create"))?;
    if ty == SockType::Stream {
        setsockopt(&fd, sockopt::ReuseAddr, &true).map_err(err("set SO_REUSEADDR on"))?;
    }
    bind(fd.as_raw_fd(), &SockaddrIn::from(addr)).map_err(err("bind"))?;
    if ty == SockType::Stream {
        listen(&fd, Backlog::new(1024).unwrap_or(Backlog::MAXCONN)).map_err(err("listen on"))?;
    }
    Ok(fd)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_and_order_agree() {
        for port in CAPTURED_PORTS {
            assert!(ORDER.contains(&Kind::Captured(port)));
            assert!(PORTS.contains(&port));
        }
        assert!(PORTS.contains(&HTTP_PORT) && PORTS.contains(&SOCKS_PORT));
        assert!(
            !PORTS.contains(&DNS_PORT),
            "DNS is UDP: no TCP connect rule"
        );
        let pool = ipnet::Ipv4Net::new(FAKE_POOL, FAKE_POOL_PREFIX).unwrap();
        assert_eq!(pool.network(), FAKE_POOL);
        assert!(pool.contains(&FAKE_POOL_OWN));
    }
}
