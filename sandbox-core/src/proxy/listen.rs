//! The proxy's listening sockets, created by the sandbox init inside the
//! sandbox's network namespace and handed to the host over the control socket
//! (SCM_RIGHTS). They listen before the command starts, so its first request
//! waits in the backlog rather than racing the host: no helper process, no
//! relay, no first-request failure.

use std::net::{Ipv4Addr, SocketAddrV4};
use std::os::fd::OwnedFd;

use nix::errno::Errno;
use nix::sys::socket::{
    bind, listen, setsockopt, socket, sockopt, AddressFamily, Backlog, SockFlag, SockType,
    SockaddrIn,
};

/// The HTTP proxy's port on the sandbox's loopback.
pub const HTTP_PORT: u16 = 3128;
/// The SOCKS5 proxy's port on the sandbox's loopback.
pub const SOCKS_PORT: u16 = 1080;

/// The ports the command may connect to in proxy mode (Landlock's TCP rule).
pub const PORTS: [u16; 2] = [HTTP_PORT, SOCKS_PORT];

/// Which listener a descriptor is, in the order [`create`] returns them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// HTTP proxy (`CONNECT` and absolute-form requests).
    Http,
    /// SOCKS5.
    Socks5,
}

/// The listeners in the order they travel: HTTP, then SOCKS5.
pub const ORDER: [Kind; 2] = [Kind::Http, Kind::Socks5];

/// Create the listeners on `127.0.0.1` (the namespace's loopback must be up).
/// Non-blocking and close-on-exec: the host serves them, the command never
/// inherits them.
pub fn create() -> Result<Vec<OwnedFd>, Errno> {
    [HTTP_PORT, SOCKS_PORT]
        .into_iter()
        .map(|port| {
            let fd = socket(
                AddressFamily::Inet,
                SockType::Stream,
                SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK,
                None,
            )?;
            setsockopt(&fd, sockopt::ReuseAddr, &true)?;
            bind(
                std::os::fd::AsRawFd::as_raw_fd(&fd),
                &SockaddrIn::from(SocketAddrV4::new(Ipv4Addr::LOCALHOST, port)),
            )?;
            listen(&fd, Backlog::new(1024).unwrap_or(Backlog::MAXCONN))?;
            Ok(fd)
        })
        .collect()
}
