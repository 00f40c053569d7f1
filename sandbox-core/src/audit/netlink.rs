//! The kernel audit netlink protocol (`NETLINK_AUDIT`), as far as this layer
//! needs it: read the audit status (`AUDIT_GET`), set `enabled`
//! (`AUDIT_SET`, for tests), and read records from the `AUDIT_NLGRP_READLOG`
//! multicast group, the read-only copy of every record the kernel emits.
//!
//! Rules the kernel applies (kernel/audit.c):
//! - `AUDIT_GET`/`AUDIT_SET` need the initial user namespace (else
//!   `ECONNREFUSED`), the initial PID namespace and `CAP_AUDIT_CONTROL`
//!   (else `EPERM`). `AUDIT_GET` changes nothing.
//! - Joining the READLOG group needs `CAP_AUDIT_READ` in the initial user
//!   namespace (else `EPERM`); when audit is enabled the join itself is
//!   logged (an `AUDIT_EVENT_LISTENER` record).
//! - Records are multicast only to sockets of the initial network namespace.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

use nix::errno::Errno;
use nix::sys::socket::{
    bind, recv, sendto, setsockopt, socket, sockopt, AddressFamily, MsgFlags, NetlinkAddr,
    SockFlag, SockProtocol, SockType,
};
use nix::sys::time::TimeVal;

/// `AUDIT_GET`: read `struct audit_status`.
const AUDIT_GET: u16 = 1000;
/// `AUDIT_SET`: write the fields selected by `audit_status.mask`.
const AUDIT_SET: u16 = 1001;
/// `AUDIT_STATUS_ENABLED`: the `mask` bit for `enabled`.
const AUDIT_STATUS_ENABLED: u32 = 0x1;
/// `AUDIT_NLGRP_READLOG`: the read-only multicast group (group 1, bit 0).
const AUDIT_NLGRP_READLOG: u32 = 1;
const NLMSG_HDRLEN: usize = 16;
const NLMSG_ERROR: u16 = 2;
/// The fields of `struct audit_status` we send and read: `mask` to
/// `backlog_wait_time`, ten `u32`s (newer kernels append more; the kernel
/// accepts a shorter request).
const STATUS_LEN: usize = 40;
/// Receive buffer asked for the READLOG socket (best effort): a burst of
/// records waits here while the subscriber parses.
const READLOG_RCVBUF: usize = 4 << 20;

/// The parts of the kernel's `struct audit_status` this layer uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Status {
    /// 0 off, 1 on, 2 on and locked until reboot.
    pub enabled: u32,
    /// Pid of the registered audit daemon (0: none, records also go to the
    /// kernel log).
    pub pid: u32,
    /// Records the kernel lost since boot.
    pub lost: u32,
    /// Records queued in the kernel, not yet handed to readers.
    pub backlog: u32,
}

/// Read the audit status (`AUDIT_GET`). Changes nothing.
pub fn status() -> Result<Status, Errno> {
    let reply = request(AUDIT_GET, &[])?.ok_or(Errno::EPROTO)?;
    if reply.len() < 32 {
        return Err(Errno::EPROTO);
    }
    let word = |i: usize| u32::from_ne_bytes(reply[i * 4..i * 4 + 4].try_into().unwrap_or([0; 4]));
    Ok(Status {
        enabled: word(1),
        pid: word(3),
        lost: word(6),
        backlog: word(7),
    })
}

/// Set audit's `enabled` (0 or 1; 2 locks it on until reboot). Needs
/// `CAP_AUDIT_CONTROL`; `EPERM` once locked.
pub fn set_enabled(value: u32) -> Result<(), Errno> {
    let mut payload = [0u8; STATUS_LEN];
    payload[0..4].copy_from_slice(&AUDIT_STATUS_ENABLED.to_ne_bytes());
    payload[4..8].copy_from_slice(&value.to_ne_bytes());
    request(AUDIT_SET, &payload).map(|_| ())
}

/// A fresh `NETLINK_AUDIT` socket; `EPROTONOSUPPORT` on a kernel built
/// without audit.
fn audit_socket() -> Result<OwnedFd, Errno> {
    socket(
        AddressFamily::Netlink,
        SockType::Raw,
        SockFlag::SOCK_CLOEXEC,
        SockProtocol::NetlinkAudit,
    )
}

/// Send one request with `NLM_F_ACK` and wait for the acknowledgement and,
/// for `AUDIT_GET`, the reply of the same type. Errors are the kernel's.
fn request(msg_type: u16, payload: &[u8]) -> Result<Option<Vec<u8>>, Errno> {
    let sock = audit_socket()?;
    setsockopt(
        &sock,
        sockopt::ReceiveTimeout,
        &TimeVal::from(libc::timeval {
            tv_sec: 2,
            tv_usec: 0,
        }),
    )?;
    let seq = 1u32;
    let msg = encode_request(msg_type, seq, payload);
    sendto(
        sock.as_raw_fd(),
        &msg,
        &NetlinkAddr::new(0, 0),
        MsgFlags::empty(),
    )?;
    let wants_reply = msg_type == AUDIT_GET;
    let (mut acked, mut reply) = (false, None);
    let mut buf = vec![0u8; 8192];
    while !(acked && (reply.is_some() || !wants_reply)) {
        let n = recv_datagram(sock.as_fd(), &mut buf, MsgFlags::empty())?;
        for (t, body) in messages(&buf[..n]) {
            if t == NLMSG_ERROR {
                let code = body
                    .get(0..4)
                    .map(|b| i32::from_ne_bytes([b[0], b[1], b[2], b[3]]))
                    .ok_or(Errno::EPROTO)?;
                if code != 0 {
                    return Err(Errno::from_raw(-code));
                }
                acked = true;
            } else if t == msg_type && wants_reply {
                reply = Some(body.to_vec());
            }
        }
    }
    Ok(reply)
}

/// `nlmsghdr` + payload with `NLM_F_REQUEST | NLM_F_ACK`.
fn encode_request(msg_type: u16, seq: u32, payload: &[u8]) -> Vec<u8> {
    let len = NLMSG_HDRLEN + payload.len();
    let flags = (libc::NLM_F_REQUEST | libc::NLM_F_ACK) as u16;
    let mut m = Vec::with_capacity(len);
    m.extend_from_slice(&(len as u32).to_ne_bytes());
    m.extend_from_slice(&msg_type.to_ne_bytes());
    m.extend_from_slice(&flags.to_ne_bytes());
    m.extend_from_slice(&seq.to_ne_bytes());
    // nlmsg_pid 0: the kernel fills in our port id.
    m.extend_from_slice(&0u32.to_ne_bytes());
    m.extend_from_slice(payload);
    m
}

/// One datagram; a datagram larger than `buf` is `EMSGSIZE`, never a
/// silently cut record.
fn recv_datagram(fd: BorrowedFd<'_>, buf: &mut [u8], flags: MsgFlags) -> Result<usize, Errno> {
    loop {
        match recv(fd.as_raw_fd(), buf, flags | MsgFlags::MSG_TRUNC) {
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(e),
            // With MSG_TRUNC the kernel returns the datagram's real length.
            Ok(n) if n > buf.len() => return Err(Errno::EMSGSIZE),
            Ok(n) => return Ok(n),
        }
    }
}

/// The netlink messages of one datagram as `(type, payload)`; stops at the
/// first malformed header.
pub fn messages(datagram: &[u8]) -> impl Iterator<Item = (u16, &[u8])> {
    let mut rest = datagram;
    std::iter::from_fn(move || {
        if rest.len() < NLMSG_HDRLEN {
            return None;
        }
        let len = u32::from_ne_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
        let msg_type = u16::from_ne_bytes([rest[4], rest[5]]);
        if len < NLMSG_HDRLEN || len > rest.len() {
            rest = &[];
            return None;
        }
        let body = &rest[NLMSG_HDRLEN..len];
        let aligned = (len + 3) & !3;
        rest = rest.get(aligned..).unwrap_or(&[]);
        Some((msg_type, body))
    })
}

/// A record's text: the payload without the trailing NULs some kernels add.
pub fn record_text(payload: &[u8]) -> std::borrow::Cow<'_, str> {
    let end = payload.iter().rposition(|b| *b != 0).map_or(0, |i| i + 1);
    String::from_utf8_lossy(&payload[..end])
}

/// What one non-blocking read of the READLOG socket found.
#[derive(Debug, PartialEq, Eq)]
pub enum Read {
    /// A datagram of this many bytes is in the buffer.
    Datagram(usize),
    /// Nothing queued.
    Empty,
    /// The socket's receive queue overflowed: the kernel dropped records
    /// for us (the socket goes on working).
    Overrun,
}

/// A socket in the READLOG multicast group: every audit record, read-only.
#[derive(Debug)]
pub struct ReadlogSocket {
    fd: OwnedFd,
}

impl ReadlogSocket {
    /// Join the group. `EPERM` without `CAP_AUDIT_READ` in the initial user
    /// namespace; `EPROTONOSUPPORT` on a kernel without audit.
    pub fn open() -> Result<Self, Errno> {
        let fd = audit_socket()?;
        // Best effort: root may exceed rmem_max (SO_RCVBUFFORCE needs
        // CAP_NET_ADMIN); otherwise keep what SO_RCVBUF grants.
        if setsockopt(&fd, sockopt::RcvBufForce, &READLOG_RCVBUF).is_err() {
            let _ = setsockopt(&fd, sockopt::RcvBuf, &READLOG_RCVBUF);
        }
        bind(fd.as_raw_fd(), &NetlinkAddr::new(0, AUDIT_NLGRP_READLOG))?;
        Ok(ReadlogSocket { fd })
    }

    /// Read one datagram without blocking.
    pub fn read(&self, buf: &mut [u8]) -> Result<Read, Errno> {
        match recv_datagram(self.fd.as_fd(), buf, MsgFlags::MSG_DONTWAIT) {
            Ok(n) => Ok(Read::Datagram(n)),
            Err(Errno::EAGAIN) => Ok(Read::Empty),
            Err(Errno::ENOBUFS) => Ok(Read::Overrun),
            Err(e) => Err(e),
        }
    }

    /// The descriptor, for `poll`.
    pub fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(t: u16, body: &[u8]) -> Vec<u8> {
        let mut m = encode_request(t, 7, body);
        // encode_request sets REQUEST|ACK flags; irrelevant to parsing.
        while m.len() % 4 != 0 {
            m.push(0);
        }
        m
    }

    #[test]
    fn request_header_layout() {
        let m = encode_request(AUDIT_GET, 9, &[]);
        assert_eq!(m.len(), 16);
        assert_eq!(u32::from_ne_bytes(m[0..4].try_into().unwrap()), 16);
        assert_eq!(u16::from_ne_bytes(m[4..6].try_into().unwrap()), 1000);
        assert_eq!(u16::from_ne_bytes(m[6..8].try_into().unwrap()), 0x5);
        assert_eq!(u32::from_ne_bytes(m[8..12].try_into().unwrap()), 9);
        let set = encode_request(AUDIT_SET, 1, &[0u8; STATUS_LEN]);
        assert_eq!(u32::from_ne_bytes(set[0..4].try_into().unwrap()), 56);
    }

    #[test]
    fn messages_walks_aligned_records_and_stops_at_garbage() {
        let mut d = msg(1423, b"audit(1.0:1): a=b");
        d.extend(msg(1320, b"audit(1.0:1): "));
        let got: Vec<_> = messages(&d).collect();
        assert_eq!(
            got,
            [
                (1423, &b"audit(1.0:1): a=b"[..]),
                (1320, &b"audit(1.0:1): "[..])
            ]
        );
        // A length beyond the datagram, or below the header: stop.
        let mut bad = msg(1423, b"x");
        bad[0..4].copy_from_slice(&999u32.to_ne_bytes());
        assert_eq!(messages(&bad).count(), 0);
        let mut bad = msg(1423, b"x");
        bad[0..4].copy_from_slice(&3u32.to_ne_bytes());
        assert_eq!(messages(&bad).count(), 0);
        assert_eq!(messages(&[1, 2, 3]).count(), 0);
    }

    #[test]
    fn record_text_drops_trailing_nuls_only() {
        assert_eq!(record_text(b"audit(1.0:1): a=b\0\0"), "audit(1.0:1): a=b");
        assert_eq!(record_text(b""), "");
        assert_eq!(record_text(b"\0"), "");
        assert_eq!(record_text(b"a\xffb"), "a\u{FFFD}b");
    }
}
