//! Reduced mode's connect gate: the host decides every `connect` of the
//! command.
//!
//! Landlock's TCP rule names ports, not addresses: allowing the proxy's
//! port would let the command reach that port number on any host of the
//! internet, where anyone can listen. Without a network namespace the
//! address has to be checked too, and the seccomp filter cannot read it
//! (it is behind a pointer). So reduced mode's filter sends `connect` to
//! the host (`SECCOMP_RET_USER_NOTIF`, see
//! [`crate::seccomp::table::REDUCED_GATED`]), and here:
//!
//! 1. the address is copied out of the caller's memory
//!    (`process_vm_readv`) and parsed;
//! 2. anything but `127.0.0.1` (or `::ffff:127.0.0.1`) on one of the
//!    proxy's ports is refused with `EACCES` and recorded as a refused
//!    syscall;
//! 3. an allowed one is carried out **by the host** on the caller's own
//!    socket (`pidfd_getfd` gives us the same open socket) with the address
//!    we checked, and the result is the caller's answer. The caller's
//!    memory is never read twice, so rewriting it after the check (another
//!    thread racing us) changes nothing; the call itself never runs in the
//!    kernel for the caller (no "continue").
//!
//! A non-blocking socket gets `EINPROGRESS` like any other and completes
//! on its own. The host's connect runs on a short-lived thread (at most
//! [`MAX_IN_FLIGHT`] at once) so a slow one cannot hold up other refusals.

use std::net::{Ipv4Addr, Ipv6Addr};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use nix::errno::Errno;

use crate::events::{EventKind, Log};
use crate::sys;

/// Host connects in flight at once, over every sandbox of this process;
/// beyond it a connect is refused with `EAGAIN`.
pub(crate) const MAX_IN_FLIGHT: usize = 64;

/// `PIDFD_THREAD` (Linux 6.9): a pidfd for a thread that is not its
/// group's leader (the notification names the calling thread).
const PIDFD_THREAD: libc::c_int = libc::O_EXCL;

/// The largest address `connect` accepts (`sizeof(struct sockaddr_storage)`).
const MAX_ADDR: usize = 128;

/// One sandbox's gate: the loopback ports its command may connect to.
#[derive(Debug)]
pub(crate) struct Gate {
    ports: Vec<u16>,
}

/// Where a checked `connect` goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    V4(u16),
    /// `::ffff:127.0.0.1` on an IPv6 socket.
    Mapped(u16),
}

static IN_FLIGHT: AtomicUsize = AtomicUsize::new(0);

impl Gate {
    /// A gate letting through `127.0.0.1` on `ports` only.
    pub(crate) fn new(ports: &[u16]) -> Arc<Gate> {
        Arc::new(Gate {
            ports: ports.to_vec(),
        })
    }

    /// Decide and answer one `connect` notification.
    pub(crate) fn answer(
        &self,
        listener: &OwnedFd,
        notif: &libc::seccomp_notif,
        log: &Arc<Log>,
        command: Option<u64>,
    ) {
        let args = notif.data.args;
        let target = read_address(notif.pid as libc::pid_t, args[1], args[2])
            .and_then(|bytes| self.check(&bytes));
        // The memory we read was the caller's only if it is still waiting.
        if !sys::notif_id_valid(listener.as_fd(), notif.id) {
            return;
        }
        let target = match target {
            Ok(t) => t,
            Err(errno) => {
                refused(log, command, notif, errno);
                let _ = sys::notif_refuse(listener.as_fd(), notif.id, errno);
                return;
            }
        };
        let socket = match caller_socket(listener.as_fd(), notif) {
            Ok(s) => s,
            Err(errno) => {
                let _ = sys::notif_refuse(listener.as_fd(), notif.id, errno as i32);
                return;
            }
        };
        if IN_FLIGHT.fetch_add(1, Ordering::AcqRel) >= MAX_IN_FLIGHT {
            IN_FLIGHT.fetch_sub(1, Ordering::AcqRel);
            let _ = sys::notif_refuse(listener.as_fd(), notif.id, libc::EAGAIN);
            return;
        }
        let (id, listener) = match listener.try_clone() {
            Ok(l) => (notif.id, l),
            Err(_) => {
                IN_FLIGHT.fetch_sub(1, Ordering::AcqRel);
                let _ = sys::notif_refuse(listener.as_fd(), notif.id, libc::EMFILE);
                return;
            }
        };
        let spawned = std::thread::Builder::new()
            .name("stockade-connect".into())
            .spawn(move || {
                let errno = connect(&socket, target);
                let _ = sys::notif_answer(listener.as_fd(), id, 0, errno);
                IN_FLIGHT.fetch_sub(1, Ordering::AcqRel);
            });
        if spawned.is_err() {
            IN_FLIGHT.fetch_sub(1, Ordering::AcqRel);
        }
    }

    /// The allowed target `bytes` (a `sockaddr`) names, or the errno.
    fn check(&self, bytes: &[u8]) -> Result<Target, i32> {
        let target = parse(bytes)?;
        let port = match target {
            Target::V4(p) | Target::Mapped(p) => p,
        };
        if self.ports.contains(&port) {
            Ok(target)
        } else {
            Err(libc::EACCES)
        }
    }
}

/// Copy the caller's `sockaddr` (`len` bytes at `addr`) out of its memory.
fn read_address(pid: libc::pid_t, addr: u64, len: u64) -> Result<Vec<u8>, i32> {
    let len = usize::try_from(len).map_err(|_| libc::EINVAL)?;
    if !(2..=MAX_ADDR).contains(&len) {
        return Err(libc::EINVAL);
    }
    let mut buf = vec![0u8; len];
    let remote = [nix::sys::uio::RemoteIoVec {
        base: addr as usize,
        len,
    }];
    let mut local = [std::io::IoSliceMut::new(&mut buf)];
    match nix::sys::uio::process_vm_readv(nix::unistd::Pid::from_raw(pid), &mut local, &remote) {
        Ok(n) if n == len => Ok(buf),
        Ok(_) | Err(Errno::EFAULT) => Err(libc::EFAULT),
        // The caller is gone, or we may not read it: refuse.
        Err(_) => Err(libc::EACCES),
    }
}

/// Parse a `sockaddr`: only `127.0.0.1` (or `::ffff:127.0.0.1`) is a
/// target at all; everything else is `EACCES`, a short address `EINVAL`.
fn parse(bytes: &[u8]) -> Result<Target, i32> {
    let family = u16::from_ne_bytes([bytes[0], bytes[1]]);
    let port = |b: &[u8]| u16::from_be_bytes([b[2], b[3]]);
    match libc::c_int::from(family) {
        libc::AF_INET => {
            if bytes.len() < std::mem::size_of::<libc::sockaddr_in>() {
                return Err(libc::EINVAL);
            }
            let ip = Ipv4Addr::new(bytes[4], bytes[5], bytes[6], bytes[7]);
            if ip == Ipv4Addr::LOCALHOST {
                Ok(Target::V4(port(bytes)))
            } else {
                Err(libc::EACCES)
            }
        }
        libc::AF_INET6 => {
            // The kernel accepts the RFC 2133 size (no scope id) too.
            if bytes.len() < 24 {
                return Err(libc::EINVAL);
            }
            let mut octets = [0u8; 16];
            octets.copy_from_slice(&bytes[8..24]);
            if Ipv6Addr::from(octets).to_ipv4_mapped() == Some(Ipv4Addr::LOCALHOST) {
                Ok(Target::Mapped(port(bytes)))
            } else {
                Err(libc::EACCES)
            }
        }
        _ => Err(libc::EACCES),
    }
}

/// Our own copy of the socket the caller named (the same open socket).
fn caller_socket(listener: BorrowedFd<'_>, notif: &libc::seccomp_notif) -> Result<OwnedFd, Errno> {
    let pid = notif.pid as libc::pid_t;
    let pidfd = sys::pidfd::open_flags(pid, PIDFD_THREAD).or_else(|_| sys::pidfd::open(pid))?;
    // The pidfd names the caller only if the notification is still pending.
    if !sys::notif_id_valid(listener, notif.id) {
        return Err(Errno::ESRCH);
    }
    // The kernel reads the descriptor as an int: the low 32 bits.
    sys::pidfd::get_fd(pidfd.as_fd(), notif.data.args[0] as u32 as i32)
}

/// `connect` `socket` to the checked target; 0 or the errno.
fn connect(socket: &OwnedFd, target: Target) -> i32 {
    let port = match target {
        Target::V4(p) | Target::Mapped(p) => p,
    };
    let result = match target {
        Target::V4(_) => {
            let sa = nix::sys::socket::SockaddrIn::new(127, 0, 0, 1, port);
            nix::sys::socket::connect(socket.as_raw_fd(), &sa)
        }
        Target::Mapped(_) => {
            let ip = Ipv4Addr::LOCALHOST.to_ipv6_mapped();
            let sa =
                nix::sys::socket::SockaddrIn6::from(std::net::SocketAddrV6::new(ip, port, 0, 0));
            nix::sys::socket::connect(socket.as_raw_fd(), &sa)
        }
    };
    match result {
        Ok(()) => 0,
        // A connect interrupted and restarted in the caller comes back here
        // after we already connected: to the same place, that is success.
        Err(Errno::EISCONN) if peer_port(socket) == Some(port) => 0,
        Err(e) => e as i32,
    }
}

fn peer_port(socket: &OwnedFd) -> Option<u16> {
    use nix::sys::socket::{getpeername, SockaddrStorage};
    let peer: SockaddrStorage = getpeername(socket.as_raw_fd()).ok()?;
    peer.as_sockaddr_in()
        .map(|s| s.port())
        .or_else(|| peer.as_sockaddr_in6().map(|s| s.port()))
}

/// Record a refused `connect` like any refused syscall.
fn refused(log: &Arc<Log>, command: Option<u64>, notif: &libc::seccomp_notif, errno: i32) {
    log.push(
        command,
        EventKind::SyscallDenied {
            syscall: "connect".into(),
            nr: libc::SYS_connect,
            args: notif.data.args,
            pid: notif.pid,
            errno,
            errno_name: format!("{:?}", Errno::from_raw(errno)),
        },
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v4(ip: [u8; 4], port: u16) -> Vec<u8> {
        let mut b = vec![0u8; 16];
        b[..2].copy_from_slice(&(libc::AF_INET as u16).to_ne_bytes());
        b[2..4].copy_from_slice(&port.to_be_bytes());
        b[4..8].copy_from_slice(&ip);
        b
    }

    fn v6(ip: Ipv6Addr, port: u16, len: usize) -> Vec<u8> {
        let mut b = vec![0u8; 28];
        b[..2].copy_from_slice(&(libc::AF_INET6 as u16).to_ne_bytes());
        b[2..4].copy_from_slice(&port.to_be_bytes());
        b[8..24].copy_from_slice(&ip.octets());
        b.truncate(len);
        b
    }

    #[test]
    fn only_loopback_on_the_proxy_ports_passes() {
        let g = Gate::new(&[40001, 40002]);
        assert_eq!(g.check(&v4([127, 0, 0, 1], 40001)), Ok(Target::V4(40001)));
        assert_eq!(g.check(&v4([127, 0, 0, 1], 40003)), Err(libc::EACCES));
        // The proxy's port on any other address: the hole a port-only rule leaves.
        assert_eq!(g.check(&v4([93, 184, 216, 34], 40001)), Err(libc::EACCES));
        assert_eq!(g.check(&v4([127, 0, 0, 2], 40001)), Err(libc::EACCES));
        assert_eq!(g.check(&v4([0, 0, 0, 0], 40001)), Err(libc::EACCES));
        let mapped = Ipv4Addr::LOCALHOST.to_ipv6_mapped();
        assert_eq!(g.check(&v6(mapped, 40002, 28)), Ok(Target::Mapped(40002)));
        assert_eq!(g.check(&v6(mapped, 40002, 24)), Ok(Target::Mapped(40002)));
        assert_eq!(
            g.check(&v6(Ipv6Addr::LOCALHOST, 40002, 28)),
            Err(libc::EACCES)
        );
        assert_eq!(
            g.check(&v6("2001:db8::1".parse().unwrap(), 40002, 28)),
            Err(libc::EACCES)
        );
        // Short, unix and unspecified addresses.
        assert_eq!(g.check(&v4([127, 0, 0, 1], 40001)[..8]), Err(libc::EINVAL));
        assert_eq!(g.check(&v6(mapped, 40002, 20)), Err(libc::EINVAL));
        let mut unix = vec![0u8; 20];
        unix[..2].copy_from_slice(&(libc::AF_UNIX as u16).to_ne_bytes());
        assert_eq!(g.check(&unix), Err(libc::EACCES));
        let unspec = vec![0u8; 16];
        assert_eq!(g.check(&unspec), Err(libc::EACCES));
    }

    #[test]
    fn addresses_are_read_from_the_caller_once_and_checked_for_size() {
        let me = std::process::id() as libc::pid_t;
        let sa = v4([127, 0, 0, 1], 5);
        let got = read_address(me, sa.as_ptr() as u64, sa.len() as u64).unwrap();
        assert_eq!(got, sa);
        assert_eq!(read_address(me, sa.as_ptr() as u64, 1), Err(libc::EINVAL));
        assert_eq!(
            read_address(me, sa.as_ptr() as u64, 4096),
            Err(libc::EINVAL)
        );
        assert_eq!(read_address(me, 8, 16), Err(libc::EFAULT));
    }
}
