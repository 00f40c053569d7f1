//! Feeding a command's stdin and collecting its stdout and stderr on the
//! caller's thread: one `poll` loop, no helper threads, with an optional
//! cap on what is kept. `wait_with_output` and `communicate` of a sandbox
//! and of a session command use it, and through them the bindings.

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, BorrowedFd};

use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};

use crate::child::{ChildStderr, ChildStdin, ChildStdout, ExitStatus, Output};
use crate::error::Error;
use crate::proxy::ProxyEvent;

/// The most read from each pipe once a session command's leader has ended:
/// the largest pipe an unprivileged process can have by default
/// (`/proc/sys/fs/pipe-max-size`). A background process the command left
/// may hold the pipe open and write on; it must not hold the caller.
const DRAIN_CAP: usize = 1 << 20;

/// What [`communicate`] collected.
pub(crate) struct Collected {
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    /// Whether either stream was cut at the cap.
    pub truncated: bool,
}

/// One output stream: at most `cap` bytes kept, the rest read and dropped
/// so the command never blocks on a full pipe.
struct Sink {
    pipe: Option<File>,
    kept: Vec<u8>,
    truncated: bool,
}

impl Sink {
    /// One `read`: the bytes read, 0 at end of file (the pipe is closed
    /// then) or when a non-blocking pipe is empty.
    fn read_once(&mut self, cap: usize, buf: &mut [u8]) -> Result<usize, Error> {
        let Some(p) = self.pipe.as_mut() else {
            return Ok(0);
        };
        let n = loop {
            match p.read(buf) {
                Ok(n) => break n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(0),
                Err(e) => return Err(e.into()),
            }
        };
        if n == 0 {
            self.pipe = None;
        }
        let room = cap.saturating_sub(self.kept.len());
        self.truncated |= n > room;
        self.kept.extend_from_slice(&buf[..n.min(room)]);
        Ok(n)
    }
}

/// Where a polled descriptor came from.
#[derive(Clone, Copy)]
enum Slot {
    Done,
    Stdin,
    Out(usize),
}

/// The pipes of a command, as the caller holds them.
pub(crate) type Pipes = (Option<ChildStdin>, Option<ChildStdout>, Option<ChildStderr>);

impl Collected {
    /// With how the command ended: the [`Output`] of `communicate`.
    pub fn into_output(
        self,
        status: ExitStatus,
        proxy_events: Vec<ProxyEvent>,
        events: Vec<crate::Event>,
    ) -> Output {
        Output {
            status,
            stdout: self.stdout,
            stderr: self.stderr,
            truncated: self.truncated,
            proxy_events,
            events,
        }
    }
}

/// Write `input` to stdin (then close it) and read stdout and stderr until
/// they end, keeping at most `cap` bytes of each. `done`, for
/// a session command, becomes readable when its leader has ended: what is
/// in the pipes then is still read (up to [`DRAIN_CAP`]), then collection
/// stops. Without `done` the pipes end when the sandbox does.
pub(crate) fn communicate(
    (stdin, stdout, stderr): Pipes,
    input: &[u8],
    done: Option<BorrowedFd<'_>>,
    cap: usize,
) -> Result<Collected, Error> {
    if !input.is_empty() && stdin.is_none() {
        return Err(Error::policy("input given, but stdin is not piped"));
    }
    // Nothing to write: close stdin now, so the command sees end of file.
    let mut stdin = stdin.map(|p| p.0).filter(|_| !input.is_empty());
    let outs = [stdout.map(|p| p.0), stderr.map(|p| p.0)];
    if let Some(f) = &stdin {
        set_nonblocking(f)?;
    }
    let mut written = 0;
    let mut sinks = outs.map(|pipe| Sink {
        pipe,
        kept: Vec::new(),
        truncated: false,
    });
    let mut buf = vec![0u8; 64 << 10];
    let mut leader_ended = false;
    while !leader_ended && (stdin.is_some() || sinks.iter().any(|s| s.pipe.is_some())) {
        let mut slots = Vec::with_capacity(4);
        let mut fds = Vec::with_capacity(4);
        if let Some(d) = done {
            slots.push(Slot::Done);
            fds.push(PollFd::new(d, PollFlags::POLLIN));
        }
        if let Some(f) = &stdin {
            slots.push(Slot::Stdin);
            fds.push(PollFd::new(f.as_fd(), PollFlags::POLLOUT));
        }
        for (i, s) in sinks.iter().enumerate() {
            if let Some(p) = &s.pipe {
                slots.push(Slot::Out(i));
                fds.push(PollFd::new(p.as_fd(), PollFlags::POLLIN));
            }
        }
        match poll(&mut fds, PollTimeout::NONE) {
            Ok(_) | Err(Errno::EINTR) => {}
            Err(e) => return Err(io::Error::from(e).into()),
        }
        let ready: Vec<Slot> = slots
            .into_iter()
            .zip(
                fds.iter()
                    .map(|f| f.revents().is_some_and(|r| !r.is_empty())),
            )
            .filter_map(|(slot, ready)| ready.then_some(slot))
            .collect();
        drop(fds);
        for slot in ready {
            match slot {
                Slot::Done => leader_ended = true,
                Slot::Stdin => {
                    let Some(f) = stdin.as_mut() else { continue };
                    match f.write(&input[written..]) {
                        Ok(n) => written += n,
                        Err(e)
                            if e.kind() == io::ErrorKind::Interrupted
                                || e.kind() == io::ErrorKind::WouldBlock => {}
                        // EPIPE: the command stopped reading; not an error.
                        Err(_) => written = input.len(),
                    }
                    if written == input.len() {
                        stdin = None;
                    }
                }
                Slot::Out(i) => {
                    sinks[i].read_once(cap, &mut buf)?;
                }
            }
        }
    }
    if leader_ended {
        for s in &mut sinks {
            if let Some(p) = &s.pipe {
                set_nonblocking(p)?;
            }
            let mut drained = 0;
            while s.pipe.is_some() && drained < DRAIN_CAP {
                match s.read_once(cap, &mut buf)? {
                    0 => break,
                    n => drained += n,
                }
            }
        }
    }
    let [out, err] = sinks;
    Ok(Collected {
        truncated: out.truncated || err.truncated,
        stdout: out.kept,
        stderr: err.kept,
    })
}

fn set_nonblocking(f: &File) -> Result<(), Error> {
    use nix::fcntl::{fcntl, FcntlArg, OFlag};
    let flags = fcntl(f, FcntlArg::F_GETFL).map_err(io::Error::from)?;
    let flags = OFlag::from_bits_retain(flags) | OFlag::O_NONBLOCK;
    fcntl(f, FcntlArg::F_SETFL(flags)).map_err(io::Error::from)?;
    Ok(())
}
