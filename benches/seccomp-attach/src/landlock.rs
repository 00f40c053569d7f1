//! Landlock's share of a spawn, measured like the filter attach: the init's
//! `PreparedRuleset::prepare` (create the ruleset, open and add each rule
//! path) timed in this process, and the last hop's `landlock_restrict_self`
//! timed in a fresh child per sample. The rule set is the default sandbox's
//! (system dirs, /etc, /proc, /, /tmp, /dev/shm and the device nodes), on the
//! host's own paths.

use std::io;
use std::time::Instant;

use stockade::landlock::{IfUnsupported, PreparedRuleset, Rules};

/// The default sandbox's rules, as `Rules::from_plan` derives them.
pub fn default_rules() -> Rules {
    let p = |v: &[&str]| v.iter().map(Into::into).collect();
    Rules {
        read_exec: p(&["/usr", "/etc", "/etc/ssl", "/etc/alternatives"]),
        read_only: p(&["/proc"]),
        list: p(&["/"]),
        read_write: p(&["/dev/shm", "/tmp"]),
        devices: p(&[
            "/dev/null",
            "/dev/zero",
            "/dev/full",
            "/dev/random",
            "/dev/urandom",
            "/dev/tty",
            "/dev/pts",
            "/dev/ptmx",
        ]),
        ..Rules::default()
    }
}

/// Time one `prepare` of `rules` in this process, in ns.
pub fn prepare_ns(rules: &Rules) -> io::Result<u64> {
    let t = Instant::now();
    let prepared =
        PreparedRuleset::prepare(rules, IfUnsupported::Fail).map_err(io::Error::other)?;
    let ns = t.elapsed().as_nanos() as u64;
    drop(prepared);
    Ok(ns)
}

/// Time `restrict_raw` (after `no_new_privs`) in a fresh child, in ns.
pub fn restrict_ns(
    prepared: &PreparedRuleset,
    rd: libc::c_int,
    wr: libc::c_int,
) -> io::Result<u64> {
    // SAFETY: this process is single-threaded; the child only makes raw
    // syscalls on memory that fork copied, writes to its pipe and `_exit`s.
    let pid = unsafe { libc::fork() };
    if pid == -1 {
        return Err(io::Error::last_os_error());
    }
    if pid == 0 {
        // SAFETY: plain prctl with integer arguments.
        let nnp = unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) };
        let t = Instant::now();
        let ok = prepared.restrict_raw().is_ok();
        let out: u64 = if nnp == 0 && ok {
            t.elapsed().as_nanos() as u64
        } else {
            u64::MAX
        };
        // SAFETY: writes 8 bytes from a live u64 to our pipe, then exits
        // without running destructors or atexit handlers.
        unsafe {
            libc::write(wr, (&out as *const u64).cast(), 8);
            libc::_exit(0)
        }
    }
    let mut ns = 0u64;
    // SAFETY: reads at most 8 bytes into a live u64.
    let n = unsafe { libc::read(rd, (&mut ns as *mut u64).cast(), 8) };
    let mut status = 0;
    // SAFETY: reaps the child we forked; `status` is writable.
    unsafe { libc::waitpid(pid, &mut status, 0) };
    if n != 8 || ns == u64::MAX {
        return Err(io::Error::other("the child could not restrict itself"));
    }
    Ok(ns)
}
