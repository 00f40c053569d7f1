//! [`Rules`] -> a created Landlock ruleset, ready for the last hop.

use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::path::Path;

use ::landlock::{
    Access, AccessFs, AccessNet, BitFlags, CompatLevel, Compatible, NetPort, PathBeneath, Ruleset,
    RulesetAttr, RulesetCreated, RulesetCreatedAttr, RulesetError, Scope, ABI,
};
use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sys::stat::{Mode, SFlag};

use super::error::LandlockError;
use super::rules::{Category, Rules};
use super::sys;

/// The newest Landlock ABI whose rights this layer has vetted. A newer kernel
/// is used at this ABI: later ABIs add rights (UDP, pathname unix sockets) that
/// would deny what the sandbox must allow until they are mapped deliberately.
pub const MAX_ABI: u32 = 7;

/// What to do on a host without a usable Landlock.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum IfUnsupported {
    /// Refuse: [`LandlockError::Unsupported`] (the default).
    #[default]
    Fail,
    /// The caller explicitly accepts running without Landlock; the prepared
    /// ruleset is empty and [`PreparedRuleset::abi`] reports 0.
    RunWithout,
}

/// A created ruleset holding only its descriptor (every rule-path descriptor
/// is closed again), built by the init before it forks the command.
///
/// ```text
/// init, after pivot_root:  let ll = PreparedRuleset::prepare(&rules, IfUnsupported::Fail)?;
/// forked child, last hop:  prctl(PR_SET_NO_NEW_PRIVS); ll.restrict_raw()?; ...; execve
/// ```
#[derive(Debug)]
pub struct PreparedRuleset {
    fd: Option<OwnedFd>,
    abi: u32,
    kernel_abi: u32,
}

/// The ABI the ruleset is built at for a kernel reporting `kernel`.
fn effective_abi(kernel: u32) -> u32 {
    kernel.min(MAX_ABI)
}

fn step(step: &'static str) -> impl Fn(RulesetError) -> LandlockError {
    move |source| LandlockError::Ruleset { step, source }
}

impl PreparedRuleset {
    /// Detect the kernel's ABI and build the ruleset for `rules` at the best
    /// ABI available (capped at [`MAX_ABI`]), every right a hard requirement:
    /// filesystem rights always; TCP bind/connect from ABI 4; abstract unix
    /// socket and signal scoping from ABI 6. Rule paths are opened `O_PATH`
    /// relative to the current root and must exist. A host without Landlock
    /// is an error unless `if_unsupported` is [`IfUnsupported::RunWithout`].
    pub fn prepare(rules: &Rules, if_unsupported: IfUnsupported) -> Result<Self, LandlockError> {
        Self::build(rules, &[], sys::abi_version(), if_unsupported)
    }

    /// [`PreparedRuleset::prepare`] plus a rule for each file the command
    /// inherits (its stdio and pass-through descriptors) that is a regular
    /// file or a device: reopening it by path (`/dev/stdout` is
    /// `/proc/self/fd/1`) is checked by Landlock against the file itself,
    /// which may live outside the sandbox (a host tty, a redirect target).
    /// The rule grants what the descriptor's open mode already allows, so it
    /// adds no power the command does not hold; pipes and sockets need none.
    pub fn prepare_with_inherited(
        rules: &Rules,
        inherited: &[BorrowedFd<'_>],
        if_unsupported: IfUnsupported,
    ) -> Result<Self, LandlockError> {
        Self::build(rules, inherited, sys::abi_version(), if_unsupported)
    }

    fn build(
        rules: &Rules,
        inherited: &[BorrowedFd<'_>],
        kernel: Result<u32, Errno>,
        if_unsupported: IfUnsupported,
    ) -> Result<Self, LandlockError> {
        let kernel_abi = match kernel {
            Ok(v) if v >= 1 => v,
            Ok(_) | Err(_) if if_unsupported == IfUnsupported::RunWithout => {
                return Ok(PreparedRuleset {
                    fd: None,
                    abi: 0,
                    kernel_abi: 0,
                })
            }
            Ok(_) => {
                return Err(LandlockError::Unsupported {
                    errno: Errno::EOPNOTSUPP,
                })
            }
            Err(errno) => return Err(LandlockError::Unsupported { errno }),
        };
        let abi = effective_abi(kernel_abi);
        let level = ABI::from(abi as i32);

        let mut ruleset = Ruleset::default()
            .set_compatibility(CompatLevel::HardRequirement)
            .handle_access(AccessFs::from_all(level))
            .map_err(step("handle filesystem access"))?;
        let restrict_tcp = abi >= 4 && !rules.tcp_unrestricted;
        if restrict_tcp {
            ruleset = ruleset
                .handle_access(AccessNet::BindTcp | AccessNet::ConnectTcp)
                .map_err(step("handle TCP bind and connect"))?;
        }
        if abi >= 6 {
            ruleset = ruleset
                .scope(Scope::AbstractUnixSocket | Scope::Signal)
                .map_err(step("scope abstract unix sockets and signals"))?;
        }
        let mut created = ruleset.create().map_err(step("create the ruleset"))?;

        for (path, category) in rules.paths() {
            created = add_path(created, path, category, level)?;
        }
        for &fd in inherited {
            created = add_inherited(created, fd, level)?;
        }
        if restrict_tcp {
            for &port in &rules.tcp_connect {
                created = created
                    .add_rule(NetPort::new(port, AccessNet::ConnectTcp))
                    .map_err(step("allow a TCP connect port"))?;
            }
        }

        let fd: Option<OwnedFd> = created.into();
        match fd {
            Some(fd) => Ok(PreparedRuleset {
                fd: Some(fd),
                abi,
                kernel_abi,
            }),
            None => Err(LandlockError::NoRulesetFd { abi }),
        }
    }

    /// The Landlock ABI the ruleset enforces, 0 when running without Landlock
    /// (for `doctor` and the run report).
    pub fn abi(&self) -> u32 {
        self.abi
    }

    /// The ABI the kernel reported (may exceed [`PreparedRuleset::abi`]).
    pub fn kernel_abi(&self) -> u32 {
        self.kernel_abi
    }

    /// Whether [`PreparedRuleset::restrict_raw`] enforces anything.
    pub fn is_enforcing(&self) -> bool {
        self.fd.is_some()
    }

    /// The ruleset descriptor (`O_CLOEXEC`), which must survive until the last
    /// hop's `restrict_raw` (keep it out of any `close_range`).
    pub fn raw_fd(&self) -> Option<RawFd> {
        self.fd.as_ref().map(AsRawFd::as_raw_fd)
    }

    /// Replace the descriptor, e.g. to move it above the last hop's `dup2`
    /// targets.
    pub fn map_fd<E>(self, f: impl FnOnce(OwnedFd) -> Result<OwnedFd, E>) -> Result<Self, E> {
        Ok(PreparedRuleset {
            fd: self.fd.map(f).transpose()?,
            ..self
        })
    }

    /// Enforce the ruleset on the calling thread: only the raw
    /// `landlock_restrict_self(fd, flags)` (a no-op when running without
    /// Landlock). Allocation-free, for the forked child. The caller must have
    /// set `no_new_privs` first (or hold `CAP_SYS_ADMIN`), else `EPERM`.
    pub fn restrict_raw(&self) -> Result<(), Errno> {
        match &self.fd {
            Some(fd) => sys::restrict_self(fd.as_raw_fd(), sys::restrict_flags(self.kernel_abi)),
            None => Ok(()),
        }
    }
}

/// Open `path` `O_PATH` and add its rule, with only the file rights when it
/// is not a directory (the kernel refuses directory rights on a file).
fn add_path(
    created: RulesetCreated,
    path: &Path,
    category: Category,
    abi: ABI,
) -> Result<RulesetCreated, LandlockError> {
    let open_err = |errno| LandlockError::OpenPath {
        path: path.to_path_buf(),
        errno,
    };
    let fd = nix::fcntl::open(path, OFlag::O_PATH | OFlag::O_CLOEXEC, Mode::empty())
        .map_err(open_err)?;
    let st = nix::sys::stat::fstat(&fd).map_err(open_err)?;
    let is_dir = SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFDIR;
    let rights = if is_dir {
        category.rights(abi)
    } else {
        category.file_rights(abi)
    };
    created
        .add_rule(PathBeneath::new(fd, rights))
        .map_err(step("add a path rule"))
}

/// The rule for one inherited descriptor (see
/// [`PreparedRuleset::prepare_with_inherited`]); nothing for pipes, sockets
/// and directories.
fn add_inherited(
    created: RulesetCreated,
    fd: BorrowedFd<'_>,
    abi: ABI,
) -> Result<RulesetCreated, LandlockError> {
    let open_err = |errno| LandlockError::OpenPath {
        path: format!("/proc/self/fd/{}", fd.as_raw_fd()).into(),
        errno,
    };
    let st = nix::sys::stat::fstat(fd).map_err(open_err)?;
    let kind = SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT;
    if kind != SFlag::S_IFREG && kind != SFlag::S_IFCHR {
        return Ok(created);
    }
    let mode = nix::fcntl::fcntl(fd, nix::fcntl::FcntlArg::F_GETFL).map_err(open_err)?;
    let mut rights = match OFlag::from_bits_truncate(mode) & OFlag::O_ACCMODE {
        OFlag::O_RDONLY => BitFlags::from(AccessFs::ReadFile),
        OFlag::O_WRONLY => AccessFs::WriteFile | AccessFs::Truncate,
        _ => AccessFs::ReadFile | AccessFs::WriteFile | AccessFs::Truncate,
    };
    if kind == SFlag::S_IFCHR {
        rights |= AccessFs::IoctlDev;
    }
    rights &= AccessFs::from_all(abi);
    created
        .add_rule(PathBeneath::new(fd, rights))
        .map_err(step("add a rule for an inherited file"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::CString;
    use std::net::TcpListener;
    use std::os::unix::ffi::OsStrExt;
    use std::path::PathBuf;
    use std::sync::atomic::{AtomicU32, Ordering};

    /// The host's ABI, or `None` (tests that need the kernel then skip loudly).
    fn host_abi() -> Option<u32> {
        match sys::abi_version() {
            Ok(v) => Some(v),
            Err(e) => {
                eprintln!("SKIP: no Landlock on this host ({e})");
                None
            }
        }
    }

    fn scratch(name: &str) -> PathBuf {
        static N: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "stockade-landlock-{}-{}-{name}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn abi_is_capped_at_the_vetted_one() {
        assert_eq!(effective_abi(1), 1);
        assert_eq!(effective_abi(7), 7);
        assert_eq!(effective_abi(9), MAX_ABI);
    }

    #[test]
    fn no_landlock_is_an_error_unless_opted_out() {
        for errno in [Errno::ENOSYS, Errno::EOPNOTSUPP] {
            let e = PreparedRuleset::build(&Rules::default(), &[], Err(errno), IfUnsupported::Fail)
                .unwrap_err();
            assert!(
                matches!(e, LandlockError::Unsupported { errno: got } if got == errno),
                "{e}"
            );
        }
        let p = PreparedRuleset::build(
            &Rules::default(),
            &[],
            Err(Errno::ENOSYS),
            IfUnsupported::RunWithout,
        )
        .unwrap();
        assert_eq!(p.abi(), 0);
        assert!(!p.is_enforcing());
        assert_eq!(p.raw_fd(), None);
        assert_eq!(p.restrict_raw(), Ok(()));
    }

    #[test]
    fn host_ruleset_is_built_at_the_detected_abi() {
        let Some(kernel) = host_abi() else { return };
        let dir = scratch("abi");
        let file = dir.join("f");
        std::fs::write(&file, b"x").unwrap();
        // Files in every category: directory rights must be dropped for them.
        let rules = Rules {
            read_exec: vec![file.clone()],
            read_only: vec![file.clone()],
            list: vec![dir.clone()],
            read_write: vec![dir.clone(), file.clone()],
            devices: vec!["/dev/null".into()],
            tcp_connect: vec![1, 65535],
            tcp_unrestricted: false,
        };
        let p = PreparedRuleset::prepare(&rules, IfUnsupported::Fail).unwrap();
        eprintln!("landlock: kernel ABI {kernel}, enforced ABI {}", p.abi());
        assert_eq!(p.kernel_abi(), kernel);
        assert_eq!(p.abi(), effective_abi(kernel));
        assert!(p.is_enforcing());
        let fd = p.raw_fd().unwrap();
        // SAFETY: F_GETFD on a descriptor we own reads its flags; no memory.
        let flags = unsafe { libc::fcntl(fd, libc::F_GETFD) };
        assert_eq!(flags & libc::FD_CLOEXEC, libc::FD_CLOEXEC);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn missing_rule_path_is_an_error_naming_it() {
        if host_abi().is_none() {
            return;
        }
        let rules = Rules {
            read_write: vec!["/nonexistent/stockade".into()],
            ..Rules::default()
        };
        let e = PreparedRuleset::prepare(&rules, IfUnsupported::Fail).unwrap_err();
        assert!(
            matches!(&e, LandlockError::OpenPath { path, errno: Errno::ENOENT }
                if path == Path::new("/nonexistent/stockade")),
            "{e}"
        );
    }

    fn sockaddr(port: u16) -> libc::sockaddr_in {
        libc::sockaddr_in {
            sin_family: libc::AF_INET as libc::sa_family_t,
            sin_port: port.to_be(),
            sin_addr: libc::in_addr {
                s_addr: u32::from(std::net::Ipv4Addr::LOCALHOST).to_be(),
            },
            sin_zero: [0; 8],
        }
    }

    /// In the forked child: a fresh TCP socket, then `bind` or `connect`;
    /// 0 or the errno. Raw syscalls only.
    fn tcp(addr: &libc::sockaddr_in, bind: bool) -> i32 {
        let len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
        // SAFETY: plain socket creation; no memory passed.
        let s = unsafe { libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0) };
        if s < 0 {
            return Errno::last_raw();
        }
        let sa = (addr as *const libc::sockaddr_in).cast::<libc::sockaddr>();
        // SAFETY: `sa` points to a live sockaddr_in of `len` bytes.
        let ret = unsafe {
            if bind {
                libc::bind(s, sa, len)
            } else {
                libc::connect(s, sa, len)
            }
        };
        let res = if ret == 0 { 0 } else { Errno::last_raw() };
        // SAFETY: closing the socket this function opened.
        unsafe { libc::close(s) };
        res
    }

    /// In the forked child: create `path` for writing; 0 or the errno.
    fn create(path: &CString) -> i32 {
        // SAFETY: `path` is NUL-terminated and outlives the call.
        let fd = unsafe {
            libc::open(
                path.as_ptr(),
                libc::O_WRONLY | libc::O_CREAT | libc::O_CLOEXEC,
                0o600 as libc::c_uint,
            )
        };
        if fd < 0 {
            return Errno::last_raw();
        }
        // SAFETY: closing the descriptor just opened.
        unsafe { libc::close(fd) };
        0
    }

    /// The real thing: a forked child restricts itself with a prepared
    /// ruleset, then probes. Everything the child touches is prepared here.
    #[test]
    fn restricted_child_writes_only_where_granted_and_connects_only_to_allowed_ports() {
        if let Some(kernel) = host_abi() {
            probe_restricted_child(effective_abi(kernel));
        }
    }

    /// Every older ABI the kernel also supports, built as if the kernel
    /// reported it: filesystem rules always hold; TCP rules from ABI 4 and
    /// signal scoping from ABI 6, exactly as `build` promises.
    #[test]
    fn each_older_abi_enforces_what_it_has() {
        let Some(kernel) = host_abi() else { return };
        for abi in 1..effective_abi(kernel) {
            probe_restricted_child(abi);
        }
    }

    fn probe_restricted_child(abi: u32) {
        let base = scratch(&format!("fork-abi{abi}"));
        let granted = base.join("granted");
        let denied = base.join("denied");
        std::fs::create_dir(&granted).unwrap();
        std::fs::create_dir(&denied).unwrap();
        let allowed = TcpListener::bind("127.0.0.1:0").unwrap();
        let other = TcpListener::bind("127.0.0.1:0").unwrap();
        let allowed_port = allowed.local_addr().unwrap().port();
        let other_port = other.local_addr().unwrap().port();

        // Ablation: unrestricted, every probe below succeeds.
        let denied_file = CString::new(denied.join("f").as_os_str().as_bytes()).unwrap();
        let granted_file = CString::new(granted.join("f").as_os_str().as_bytes()).unwrap();
        assert_eq!(create(&denied_file), 0);
        std::fs::remove_file(denied.join("f")).unwrap();
        assert_eq!(tcp(&sockaddr(other_port), false), 0);
        assert_eq!(tcp(&sockaddr(0), true), 0);

        let rules = Rules {
            read_write: vec![granted.clone()],
            tcp_connect: vec![allowed_port],
            ..Rules::default()
        };
        let prepared = PreparedRuleset::build(&rules, &[], Ok(abi), IfUnsupported::Fail).unwrap();
        assert_eq!(prepared.abi(), abi);
        let (allowed_sa, other_sa, any_sa) =
            (sockaddr(allowed_port), sockaddr(other_port), sockaddr(0));
        let mut pipe = [0 as RawFd; 2];
        // SAFETY: `pipe` is a valid array of two descriptors for the kernel to fill.
        let ret = unsafe { libc::pipe2(pipe.as_mut_ptr(), libc::O_CLOEXEC) };
        assert_eq!(ret, 0, "pipe2: {}", Errno::last());
        const N: usize = 7;

        // SAFETY: the child runs only raw, async-signal-safe syscalls on data
        // prepared above (no allocation, no locks, no panics) and `_exit`s.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0, "fork: {}", Errno::last());
        if pid == 0 {
            let mut res = [0i32; N];
            // SAFETY: prctl with integer arguments only.
            res[0] = unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) };
            res[1] = match prepared.restrict_raw() {
                Ok(()) => 0,
                Err(e) => e as i32,
            };
            res[2] = create(&denied_file);
            res[3] = create(&granted_file);
            res[4] = tcp(&any_sa, true);
            res[5] = tcp(&allowed_sa, false);
            res[6] = tcp(&other_sa, false);
            // Signal scoping: the parent is outside the child's domain.
            // SAFETY: signal 0 only checks permission; integer arguments.
            let k = unsafe { libc::kill(libc::getppid(), 0) };
            let scoped = if k == 0 { 0 } else { Errno::last_raw() };
            let mut out = [0i32; N + 1];
            out[..N].copy_from_slice(&res);
            out[N] = scoped;
            // SAFETY: `out` is a live buffer of exactly the length given; then
            // the child ends without running any destructor or atexit handler.
            unsafe {
                libc::write(pipe[1], out.as_ptr().cast(), std::mem::size_of_val(&out));
                libc::_exit(0)
            }
        }
        // SAFETY: closing our copy of the write end, which we own.
        unsafe { libc::close(pipe[1]) };
        let mut out = [0i32; N + 1];
        // SAFETY: reading at most `size_of_val(&out)` bytes into `out`.
        let n = unsafe {
            libc::read(
                pipe[0],
                out.as_mut_ptr().cast(),
                std::mem::size_of_val(&out),
            )
        };
        let mut status = 0;
        // SAFETY: waiting for our own child; `status` is a valid out-pointer.
        unsafe {
            libc::waitpid(pid, &mut status, 0);
            libc::close(pipe[0]);
        }
        assert_eq!(
            n as usize,
            std::mem::size_of_val(&out),
            "child wrote {n} bytes"
        );
        assert!(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0);

        let eacces = libc::EACCES;
        let expect_net = |restricted: i32| if abi >= 4 { restricted } else { 0 };
        let expected = [
            0,                                      // no_new_privs
            0,                                      // restrict
            eacces,                                 // write outside the grant
            0,                                      // write inside the grant (positive control)
            expect_net(eacces),                     // TCP bind
            0,                                      // TCP connect to the allowed port
            expect_net(eacces),                     // TCP connect to another listening port
            if abi >= 6 { libc::EPERM } else { 0 }, // signal to the parent
        ];
        assert_eq!(out, expected, "landlock ABI {abi}");
        assert!(granted.join("f").exists());
        assert!(!denied.join("f").exists());
        drop((allowed, other));
        std::fs::remove_dir_all(&base).unwrap();
    }
}
