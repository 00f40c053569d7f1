//! # stockade
//!
//! Run untrusted AI-agent tool calls on Linux inside a kernel-enforced sandbox:
//! user, pid, net, mount, uts, ipc, cgroup and time namespaces, `pivot_root`
//! into a minimal read-only root, no capabilities, `no_new_privs`, and a
//! supervisor that leaves nothing behind. See [`Sandbox`].
//!
//! The host process never forks itself: it spawns the small `stockade-init`
//! helper, which builds the sandbox and stays its PID 1. Every binary that links
//! this crate can act as that helper, so nothing needs installing.
#![warn(missing_docs)]

// Landlock denials from the kernel's audit log. Internal: the crate wires it
// into runs; public (hidden) only for the integration tests and fuzzing.
pub mod attest;
#[doc(hidden)]
pub mod audit;
mod capture;
mod cgroup;
mod child;
pub mod doctor;
mod error;
pub mod events;
mod fs;
mod kill_handle;
/// Landlock: filesystem, TCP and scoping rules from the mount plan.
pub mod landlock;
mod launch;
mod policy;
/// The egress proxy: domain-allowlist policy and the HTTP/SOCKS5 front ends.
pub mod proxy;
pub mod reduced;
mod sandbox;
/// The seccomp-BPF syscall filter: policy table, compiler and test interpreter.
pub mod seccomp;
pub mod session;
mod ssh_agent;
mod supervise;
mod sys;
/// What a sandbox changed in an `--overlay` workspace: scan, review, apply.
pub mod workspace;

pub use audit::LandlockDenial;
pub use child::{
    Child, ChildStderr, ChildStdin, ChildStdout, ExitStatus, LimitsLevel, Output, Stdio,
};
pub use error::{Error, Layer, SetupFailure};
pub use events::{Event, EventKind, EventSink};
pub use fs::git::GitMode;
pub use kill_handle::KillHandle;
pub use launch::helper::set_helper_path;
pub use policy::{
    parse_size, CacheMode, Fs, Limits, Mount, Net, PolicyFile, Preset, ProxyPolicy, Syscalls,
};
pub use sandbox::Sandbox;
pub use session::{Session, SessionChild, SessionCommand};

/// Run the `stockade-init` helper in this process (the helper binary's `main`).
/// Reads its plan from stdin; never returns.
pub fn helper_main() -> ! {
    launch::outer::helper_main()
}

/// The helper's entry point inside every executable that links this crate:
/// glibc calls `.init_array` functions with `(argc, argv, envp)` before `main`,
/// so a binary started as `<exe> --stockade-init-v1` becomes the helper without
/// running any of its own code.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
mod hook {
    use std::ffi::{c_char, c_int, CStr};

    #[used]
    #[link_section = ".init_array"]
    pub(crate) static HELPER_HOOK: extern "C" fn(
        c_int,
        *const *const c_char,
        *const *const c_char,
    ) = helper_hook;

    extern "C" fn helper_hook(
        argc: c_int,
        argv: *const *const c_char,
        _envp: *const *const c_char,
    ) {
        crate::sys::remember_argv(argc, argv);
        if argc != 2 || argv.is_null() {
            return;
        }
        // SAFETY: glibc passes the process's argv, an array of `argc` valid
        // NUL-terminated strings; argc == 2 so index 1 exists.
        let arg = unsafe { *argv.add(1) };
        if arg.is_null() {
            return;
        }
        // SAFETY: `arg` is a valid NUL-terminated string from the kernel.
        let arg = unsafe { CStr::from_ptr(arg) };
        if arg.to_bytes() == crate::launch::helper::HELPER_ARG.as_bytes() {
            crate::helper_main();
        }
    }
}

/// Address of the helper hook, which also keeps it linked into every binary
/// that spawns sandboxes.
pub(crate) fn hook_address() -> usize {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        let f = std::hint::black_box(&hook::HELPER_HOOK);
        *f as usize
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    {
        0
    }
}

/// Check every layer on this host: static probes plus one real sandbox.
pub fn doctor() -> doctor::Report {
    doctor::report(|| {
        let out = Sandbox::new()
            .command(["/bin/true"])
            .output()
            .map_err(|e| e.to_string())?;
        if out.status.success() {
            Ok(())
        } else {
            Err(format!("a sandboxed /bin/true ended with {}", out.status))
        }
    })
}
