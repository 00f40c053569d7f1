//! One sample: fork a child that sets `PR_SET_NO_NEW_PRIVS`, then times only
//! `seccomp(SECCOMP_SET_MODE_FILTER, 0, &prog)` and sends the nanoseconds
//! back over a pipe. A fresh child per sample, so every attach is the first
//! filter of its task, as in a sandbox's last hop.

use std::io;

use stockade::seccomp::sock_filter;

/// `struct sock_fprog`, with `stockade::seccomp::sock_filter` (seccompiler's
/// type, layout-identical to the kernel's) instead of libc's.
#[repr(C)]
struct SockFprog {
    len: u16,
    filter: *const sock_filter,
}

/// What the child writes when the attach failed.
const FAILED: u64 = u64::MAX;

/// A pipe whose read end the parent keeps for all samples.
pub struct Sampler {
    rd: libc::c_int,
    wr: libc::c_int,
}

fn now_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; CLOCK_MONOTONIC always exists.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// The child's whole life: async-signal-safe calls only, then `_exit`.
fn child(wr: libc::c_int, fprog: &SockFprog) -> ! {
    // SAFETY: plain prctl with integer arguments.
    let nnp = unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) };
    let t0 = now_ns();
    // SAFETY: `fprog` points to a live program of `len` instructions (the
    // parent's memory, copied into this child by fork); the kernel only reads it.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_SET_MODE_FILTER,
            0,
            fprog as *const SockFprog,
        )
    };
    let dt = now_ns() - t0;
    let out = if nnp == 0 && rc == 0 { dt } else { FAILED };
    // Every filter under test allows write and exit_group.
    // SAFETY: writes 8 bytes from a live u64 to our own pipe, then exits
    // without running the parent's atexit handlers or destructors.
    unsafe {
        libc::write(wr, (&out as *const u64).cast(), 8);
        libc::_exit(0)
    }
}

impl Sampler {
    pub fn new() -> io::Result<Self> {
        let mut fds = [0; 2];
        // SAFETY: `fds` has room for the two descriptors pipe2 writes.
        if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(Sampler {
            rd: fds[0],
            wr: fds[1],
        })
    }

    /// Attach `prog` in a fresh child; the attach time in ns.
    pub fn sample(&self, prog: &[sock_filter]) -> io::Result<u64> {
        let fprog = SockFprog {
            len: u16::try_from(prog.len()).expect("a seccomp program fits in u16"),
            filter: prog.as_ptr(),
        };
        // SAFETY: this process is single-threaded, so the child may run Rust
        // code; it only calls `child`, which never returns.
        let pid = unsafe { libc::fork() };
        match pid {
            -1 => return Err(io::Error::last_os_error()),
            0 => child(self.wr, &fprog),
            _ => {}
        }
        let mut ns = 0u64;
        // SAFETY: reads at most 8 bytes into a live u64.
        let n = unsafe { libc::read(self.rd, (&mut ns as *mut u64).cast(), 8) };
        let mut status = 0;
        // SAFETY: reaps the child we just forked; `status` is writable.
        unsafe { libc::waitpid(pid, &mut status, 0) };
        if n != 8 || ns == FAILED {
            return Err(io::Error::other("the child could not attach the filter"));
        }
        Ok(ns)
    }
}

impl Drop for Sampler {
    fn drop(&mut self) {
        // SAFETY: closes the two descriptors this Sampler owns.
        unsafe {
            libc::close(self.rd);
            libc::close(self.wr);
        }
    }
}
