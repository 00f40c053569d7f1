//! A minimal `NETLINK_ROUTE` client: one request, one acknowledgement. Used
//! by the sandbox init to give the network namespace's loopback the egress
//! proxy's fake address pool (see `proxy::listen::add_fake_pool`).
//!
//! The message is built by hand in a fixed buffer (no allocation); the
//! kernel's answer must be `NLMSG_ERROR` carrying our sequence number, with
//! error 0 for success or a negative errno.

use std::ffi::CStr;
use std::net::Ipv4Addr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use libc::{c_int, c_void};
use nix::errno::Errno;

const NLMSG_HDRLEN: usize = 16;
const IFADDRMSG_LEN: usize = 8;
const RTA_V4_LEN: usize = 4 + 4;
/// `RTM_NEWADDR` for one IPv4 address: header, `ifaddrmsg`, `IFA_LOCAL`,
/// `IFA_ADDRESS` (every part is already 4-byte aligned).
pub(crate) const NEWADDR_V4_LEN: usize = NLMSG_HDRLEN + IFADDRMSG_LEN + 2 * RTA_V4_LEN;

/// Add `addr/prefix_len` to the interface `ifname` of the current network
/// namespace (`ip addr add ADDR/PREFIX dev IFNAME scope host`). Needs
/// `CAP_NET_ADMIN` over the namespace. An existing address is `EEXIST`.
///
/// On a loopback device the kernel makes the whole prefix local
/// (`fib_add_ifaddr` adds an `RTN_LOCAL` route for it), exactly as
/// `127.0.0.1/8` makes all of `127.0.0.0/8` reachable.
pub fn add_address_v4(ifname: &CStr, addr: Ipv4Addr, prefix_len: u8) -> Result<(), Errno> {
    if prefix_len > 32 {
        return Err(Errno::EINVAL);
    }
    // SAFETY: `ifname` is a valid NUL-terminated string for the call.
    let index = unsafe { libc::if_nametoindex(ifname.as_ptr()) };
    if index == 0 {
        return Err(Errno::last());
    }
    let sock = route_socket()?;
    let seq = 1;
    let request = newaddr_v4(seq, index, addr, prefix_len);
    send_to_kernel(sock.as_raw_fd(), &request)?;
    let mut buf = [0u8; 512];
    loop {
        let n = recv(sock.as_raw_fd(), &mut buf)?;
        match parse_ack(&buf[..n], seq) {
            Some(result) => return result,
            // Not our acknowledgement (nothing else should arrive on a fresh
            // socket with no multicast groups): keep reading.
            None => continue,
        }
    }
}

/// A fresh `AF_NETLINK`/`NETLINK_ROUTE` socket.
fn route_socket() -> Result<OwnedFd, Errno> {
    // SAFETY: plain socket creation with integer arguments.
    let fd = unsafe {
        libc::socket(
            libc::AF_NETLINK,
            libc::SOCK_RAW | libc::SOCK_CLOEXEC,
            libc::NETLINK_ROUTE,
        )
    };
    if fd < 0 {
        return Err(Errno::last());
    }
    // SAFETY: `fd` was just returned by the kernel and is owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

/// Send `msg` to the kernel (netlink port id 0).
fn send_to_kernel(fd: RawFd, msg: &[u8]) -> Result<(), Errno> {
    // SAFETY: sockaddr_nl is plain data; all-zero is a valid value (family set below).
    let mut kernel: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
    kernel.nl_family = libc::AF_NETLINK as libc::sa_family_t;
    loop {
        // SAFETY: `msg` is readable for `msg.len()` bytes and `kernel` is a
        // valid sockaddr_nl whose exact size is passed; both outlive the call.
        let n = unsafe {
            libc::sendto(
                fd,
                msg.as_ptr().cast::<c_void>(),
                msg.len(),
                0,
                (&kernel as *const libc::sockaddr_nl).cast::<libc::sockaddr>(),
                std::mem::size_of::<libc::sockaddr_nl>() as libc::socklen_t,
            )
        };
        if n < 0 {
            match Errno::last() {
                Errno::EINTR => continue,
                e => return Err(e),
            }
        }
        return if n as usize == msg.len() {
            Ok(())
        } else {
            Err(Errno::EMSGSIZE)
        };
    }
}

/// One datagram from the socket; a truncated one is `EMSGSIZE`.
fn recv(fd: RawFd, buf: &mut [u8]) -> Result<usize, Errno> {
    loop {
        // SAFETY: `buf` is writable for `buf.len()` bytes for the call.
        let n = unsafe {
            libc::recv(
                fd,
                buf.as_mut_ptr().cast::<c_void>(),
                buf.len(),
                libc::MSG_TRUNC as c_int,
            )
        };
        if n < 0 {
            match Errno::last() {
                Errno::EINTR => continue,
                e => return Err(e),
            }
        }
        // With MSG_TRUNC the kernel returns the datagram's real length.
        let n = n as usize;
        return if n > buf.len() {
            Err(Errno::EMSGSIZE)
        } else {
            Ok(n)
        };
    }
}

/// The `RTM_NEWADDR` request (`NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE |
/// NLM_F_EXCL`) for `addr/prefix_len` on interface `index`, scope host.
pub(crate) fn newaddr_v4(
    seq: u32,
    index: u32,
    addr: Ipv4Addr,
    prefix_len: u8,
) -> [u8; NEWADDR_V4_LEN] {
    let mut m = [0u8; NEWADDR_V4_LEN];
    let flags =
        (libc::NLM_F_REQUEST | libc::NLM_F_ACK | libc::NLM_F_CREATE | libc::NLM_F_EXCL) as u16;
    // struct nlmsghdr
    m[0..4].copy_from_slice(&(NEWADDR_V4_LEN as u32).to_ne_bytes());
    m[4..6].copy_from_slice(&libc::RTM_NEWADDR.to_ne_bytes());
    m[6..8].copy_from_slice(&flags.to_ne_bytes());
    m[8..12].copy_from_slice(&seq.to_ne_bytes());
    // nlmsg_pid 0: the kernel fills in our port id.
    // struct ifaddrmsg
    let ifa = NLMSG_HDRLEN;
    m[ifa] = libc::AF_INET as u8; // ifa_family
    m[ifa + 1] = prefix_len; // ifa_prefixlen
    m[ifa + 2] = 0; // ifa_flags
    m[ifa + 3] = libc::RT_SCOPE_HOST; // ifa_scope
    m[ifa + 4..ifa + 8].copy_from_slice(&index.to_ne_bytes());
    // struct rtattr + address, twice: IFA_LOCAL (the interface's address)
    // and IFA_ADDRESS (the same on a non-point-to-point link).
    let mut at = ifa + IFADDRMSG_LEN;
    for kind in [libc::IFA_LOCAL, libc::IFA_ADDRESS] {
        m[at..at + 2].copy_from_slice(&(RTA_V4_LEN as u16).to_ne_bytes());
        m[at + 2..at + 4].copy_from_slice(&kind.to_ne_bytes());
        m[at + 4..at + 8].copy_from_slice(&addr.octets());
        at += RTA_V4_LEN;
    }
    m
}

/// The outcome carried by the first `NLMSG_ERROR` for `seq` in `buf`:
/// `Ok` for error 0, the errno otherwise, a malformed acknowledgement is
/// `EBADMSG`. `None` if `buf` holds no answer to `seq`.
pub(crate) fn parse_ack(mut buf: &[u8], seq: u32) -> Option<Result<(), Errno>> {
    let u32_at = |b: &[u8], at: usize| -> Option<u32> {
        Some(u32::from_ne_bytes(b.get(at..at + 4)?.try_into().ok()?))
    };
    while buf.len() >= NLMSG_HDRLEN {
        let len = u32_at(buf, 0)? as usize;
        let kind = u16::from_ne_bytes([buf[4], buf[5]]);
        let msg_seq = u32_at(buf, 8)?;
        if len < NLMSG_HDRLEN || len > buf.len() {
            return Some(Err(Errno::EBADMSG));
        }
        if kind == libc::NLMSG_ERROR as u16 && msg_seq == seq {
            let Some(error) = u32_at(&buf[..len], NLMSG_HDRLEN) else {
                return Some(Err(Errno::EBADMSG));
            };
            let error = error as i32;
            return Some(match error {
                0 => Ok(()),
                e if e < 0 => Err(Errno::from_raw(-e)),
                _ => Err(Errno::EBADMSG),
            });
        }
        // NLMSG_ALIGN(len)
        let next = (len + 3) & !3;
        buf = buf.get(next..).unwrap_or(&[]);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ack(seq: u32, error: i32) -> Vec<u8> {
        let mut m = Vec::new();
        m.extend_from_slice(&36u32.to_ne_bytes());
        m.extend_from_slice(&(libc::NLMSG_ERROR as u16).to_ne_bytes());
        m.extend_from_slice(&0u16.to_ne_bytes());
        m.extend_from_slice(&seq.to_ne_bytes());
        m.extend_from_slice(&1234u32.to_ne_bytes());
        m.extend_from_slice(&error.to_ne_bytes());
        m.extend_from_slice(&[0u8; 16]); // the echoed request header
        m
    }

    #[test]
    fn request_layout() {
        let m = newaddr_v4(7, 1, Ipv4Addr::new(198, 18, 0, 1), 15);
        assert_eq!(m.len(), 40);
        assert_eq!(u32::from_ne_bytes(m[0..4].try_into().unwrap()), 40);
        assert_eq!(u16::from_ne_bytes([m[4], m[5]]), libc::RTM_NEWADDR);
        assert_eq!(u16::from_ne_bytes([m[6], m[7]]), 0x1 | 0x4 | 0x400 | 0x200);
        assert_eq!(u32::from_ne_bytes(m[8..12].try_into().unwrap()), 7);
        assert_eq!(&m[16..20], &[libc::AF_INET as u8, 15, 0, 254]);
        assert_eq!(u32::from_ne_bytes(m[20..24].try_into().unwrap()), 1);
        assert_eq!(u16::from_ne_bytes([m[24], m[25]]), 8);
        assert_eq!(u16::from_ne_bytes([m[26], m[27]]), libc::IFA_LOCAL);
        assert_eq!(&m[28..32], &[198, 18, 0, 1]);
        assert_eq!(u16::from_ne_bytes([m[34], m[35]]), libc::IFA_ADDRESS);
        assert_eq!(&m[36..40], &[198, 18, 0, 1]);
    }

    #[test]
    fn acknowledgements() {
        assert_eq!(parse_ack(&ack(1, 0), 1), Some(Ok(())));
        assert_eq!(
            parse_ack(&ack(1, -libc::EEXIST), 1),
            Some(Err(Errno::EEXIST))
        );
        assert_eq!(parse_ack(&ack(1, -libc::EPERM), 1), Some(Err(Errno::EPERM)));
        assert_eq!(parse_ack(&ack(2, 0), 1), None);
        assert_eq!(parse_ack(&[], 1), None);
        assert_eq!(parse_ack(&ack(1, 0)[..10], 1), None);
        // A header claiming more than was received, or less than a header.
        let mut bad = ack(1, 0);
        bad[0..4].copy_from_slice(&100u32.to_ne_bytes());
        assert_eq!(parse_ack(&bad, 1), Some(Err(Errno::EBADMSG)));
        bad[0..4].copy_from_slice(&3u32.to_ne_bytes());
        assert_eq!(parse_ack(&bad, 1), Some(Err(Errno::EBADMSG)));
        // An error header cut before its error field.
        let mut short = ack(1, 0);
        short[0..4].copy_from_slice(&16u32.to_ne_bytes());
        short.truncate(16);
        assert_eq!(parse_ack(&short, 1), Some(Err(Errno::EBADMSG)));
        // Another message first, then ours.
        let mut two = ack(9, -1);
        two.extend(ack(1, 0));
        assert_eq!(parse_ack(&two, 1), Some(Ok(())));
    }
}
