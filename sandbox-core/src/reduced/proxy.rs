//! Reduced mode's egress proxy: the same host-side proxy and policy, with
//! its two explicit front doors (HTTP `CONNECT`/absolute-form and SOCKS5)
//! listening on the host's loopback at ephemeral ports, since there is no
//! network namespace to create them in. Transparent mode (the sandbox's own
//! DNS and captured ports 80/443) needs that namespace and is absent:
//! clients must honour the proxy variables, which point at these ports.

use std::net::{Ipv4Addr, SocketAddrV4, TcpListener};
use std::os::fd::OwnedFd;

use crate::proxy::listen::Kind;

/// The host-side listeners of one reduced sandbox.
#[derive(Debug)]
pub(crate) struct Listeners {
    /// Each listener with the front door it is.
    pub fds: Vec<(OwnedFd, Kind)>,
    /// The HTTP proxy's port on 127.0.0.1.
    pub http: u16,
    /// The SOCKS5 proxy's port on 127.0.0.1.
    pub socks: u16,
}

impl Listeners {
    /// Bind both on `127.0.0.1`, ephemeral ports, close-on-exec.
    pub(crate) fn bind() -> std::io::Result<Listeners> {
        let any = SocketAddrV4::new(Ipv4Addr::LOCALHOST, 0);
        let http = TcpListener::bind(any)?;
        let socks = TcpListener::bind(any)?;
        let (hp, sp) = (http.local_addr()?.port(), socks.local_addr()?.port());
        Ok(Listeners {
            fds: vec![(http.into(), Kind::Http), (socks.into(), Kind::Socks5)],
            http: hp,
            socks: sp,
        })
    }

    /// The ports the command may connect to.
    pub(crate) fn ports(&self) -> [u16; 2] {
        [self.http, self.socks]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binds_two_loopback_ports() {
        let l = Listeners::bind().unwrap();
        assert_ne!(l.http, l.socks);
        assert!(l.http != 0 && l.socks != 0);
        assert_eq!(l.fds.len(), 2);
        // They listen: a client connects without anyone accepting yet.
        std::net::TcpStream::connect((Ipv4Addr::LOCALHOST, l.http)).unwrap();
        std::net::TcpStream::connect((Ipv4Addr::LOCALHOST, l.socks)).unwrap();
    }
}
