//! Policy -> mount plan. Pure: reads a few host facts (which system paths are
//! symlinks, which `/etc` files exist) through [`HostView`] so it can be tested
//! with a fake host and no privileges.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::policy::{Fs, Mount};

/// System directories bound read-only (or recreated as the same symlink).
const SYSTEM_DIRS: &[&str] = &[
    "/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32",
];

/// Host `/etc` entries copied into the synthetic `/etc` (small files, symlinks kept).
const ETC_COPIES: &[&str] = &[
    "/etc/ld.so.cache",
    "/etc/ld.so.conf",
    "/etc/nsswitch.conf",
    "/etc/host.conf",
    "/etc/gai.conf",
    "/etc/protocols",
    "/etc/services",
    "/etc/localtime",
    "/etc/timezone",
    "/etc/os-release",
];

/// Host `/etc` directories bound read-only: certificates and Debian's alternatives
/// (`/usr/bin/awk -> /etc/alternatives/awk`).
const ETC_DIRS: &[&str] = &[
    "/etc/ssl",
    "/etc/pki",
    "/etc/ca-certificates",
    "/etc/crypto-policies",
    "/etc/alternatives",
];

/// Host device nodes bound into the minimal `/dev`.
const DEVICES: &[&str] = &["null", "zero", "full", "random", "urandom", "tty"];

/// `/proc` paths hidden behind an empty file or directory (as OCI's MaskedPaths),
/// plus the kernel log and symbol table.
const PROC_MASKED: &[&str] = &[
    "/proc/acpi",
    "/proc/asound",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/proc/kmsg",
    "/proc/kallsyms",
    "/proc/sysrq-trigger",
];

/// `/proc` paths made read-only (as OCI's ReadonlyPaths).
const PROC_READONLY: &[&str] = &["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys"];

/// What the plan needs to know about the host.
pub trait HostView {
    /// `Some(target)` if `path` is a symlink.
    fn symlink(&self, path: &Path) -> Option<PathBuf>;
    /// Whether `path` exists (without following a final symlink).
    fn exists(&self, path: &Path) -> bool;
    /// Whether `path` is a directory (following symlinks).
    fn is_dir(&self, path: &Path) -> bool;
}

/// The real host.
pub struct RealHost;

impl HostView for RealHost {
    fn symlink(&self, path: &Path) -> Option<PathBuf> {
        std::fs::read_link(path).ok()
    }
    fn exists(&self, path: &Path) -> bool {
        std::fs::symlink_metadata(path).is_ok()
    }
    fn is_dir(&self, path: &Path) -> bool {
        path.is_dir()
    }
}

/// One step of building the root. Paths in `dst` are inside the sandbox.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum MountOp {
    /// Create a directory (and parents) in the new root.
    Dir { dst: PathBuf, mode: u32 },
    /// Create a symlink.
    Symlink { target: PathBuf, dst: PathBuf },
    /// Write a synthetic file.
    File {
        dst: PathBuf,
        contents: String,
        mode: u32,
    },
    /// Copy a small host file (or recreate a host symlink) if it exists.
    Copy { src: PathBuf, dst: PathBuf },
    /// Bind a host path. `granted` marks the caller's own grants: for a root
    /// caller those are prepared outside (idmapped), see `launch::outer`.
    Bind {
        src: PathBuf,
        dst: PathBuf,
        ro: bool,
        granted: bool,
    },
    /// A tmpfs of `size` bytes.
    Tmpfs { dst: PathBuf, size: u64, mode: u32 },
    /// Writable view of a host dir whose writes land in a `size`-capped tmpfs.
    Overlay {
        src: PathBuf,
        dst: PathBuf,
        size: u64,
    },
    /// A private devpts instance with `/dev/ptmx` pointing into it.
    Devpts { dst: PathBuf },
    /// A fresh procfs for the sandbox's pid namespace.
    Proc { dst: PathBuf },
    /// Hide a `/proc` path (file: bind `/dev/null`; dir: empty read-only tmpfs).
    Mask { dst: PathBuf, dir: bool },
    /// Make an existing path read-only (bind onto itself).
    ReadOnly { dst: PathBuf },
    /// Make `dst` (inside a grant) a mount of itself, found without following
    /// any symlink, the last component's included: the command can then
    /// neither rename, remove nor replace it (`EBUSY`), and nothing beneath it
    /// is writable when `ro` (`EROFS`). See [`super::git`].
    Pin {
        dst: PathBuf,
        ro: bool,
        missing: Missing,
    },
}

/// What [`MountOp::Pin`] does when its path does not exist.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Missing {
    /// Nothing: there is nothing to pin.
    Skip,
    /// Create an empty directory, then pin it.
    EmptyDir,
    /// Create a file with these contents (atomically: it never exists
    /// half-written), then pin it.
    File(String),
}

impl MountOp {
    /// The host path this op clones before the root is built, if any.
    pub fn host_source(&self) -> Option<&Path> {
        match self {
            MountOp::Bind { src, .. } | MountOp::Overlay { src, .. } => Some(src),
            _ => None,
        }
    }
}

/// Identity details the synthetic `/etc` files need (tests build whole plans).
#[cfg(test)]
#[derive(Debug, Clone)]
pub struct Identity {
    /// uid inside.
    pub uid: u32,
    /// gid inside.
    pub gid: u32,
    /// hostname inside.
    pub hostname: String,
}

/// The whole ordered plan for `fs`: [`base`] then [`rest`].
#[cfg(test)]
pub fn plan(fs: &Fs, id: &Identity, host: &dyn HostView) -> Vec<MountOp> {
    let mut ops = base(id.uid, id.gid, host);
    ops.extend(rest(fs, &id.hostname));
    ops
}

/// The part of the root that depends only on the host and the inside ids:
/// system directories, `/etc`, `/dev`, `/proc`. A pre-warmed sandbox builds it
/// before its command is known.
pub fn base(uid: u32, gid: u32, host: &dyn HostView) -> Vec<MountOp> {
    let mut ops = Vec::with_capacity(64);
    let p = |s: &str| PathBuf::from(s);

    for dir in SYSTEM_DIRS {
        let path = Path::new(dir);
        if let Some(target) = host.symlink(path) {
            ops.push(MountOp::Symlink {
                target,
                dst: p(dir),
            });
        } else if host.is_dir(path) {
            ops.push(MountOp::Bind {
                src: p(dir),
                dst: p(dir),
                ro: true,
                granted: false,
            });
        }
    }

    ops.push(MountOp::Dir {
        dst: p("/etc"),
        mode: 0o755,
    });
    for f in ETC_COPIES {
        if host.exists(Path::new(f)) {
            ops.push(MountOp::Copy {
                src: p(f),
                dst: p(f),
            });
        }
    }
    for d in ETC_DIRS {
        if host.is_dir(Path::new(d)) {
            ops.push(MountOp::Bind {
                src: p(d),
                dst: p(d),
                ro: true,
                granted: false,
            });
        }
    }
    ops.extend(users(uid, gid));

    ops.push(MountOp::Tmpfs {
        dst: p("/dev"),
        size: 1 << 20,
        mode: 0o755,
    });
    for d in DEVICES {
        let src = Path::new("/dev").join(d);
        if host.exists(&src) {
            ops.push(MountOp::Bind {
                src: src.clone(),
                dst: src,
                ro: false,
                granted: false,
            });
        }
    }
    ops.push(MountOp::Devpts { dst: p("/dev/pts") });
    ops.push(MountOp::Tmpfs {
        dst: p("/dev/shm"),
        size: 64 << 20,
        mode: 0o1777,
    });
    for (name, target) in [
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
    ] {
        ops.push(MountOp::Symlink {
            target: p(target),
            dst: Path::new("/dev").join(name),
        });
    }

    ops.push(MountOp::Proc { dst: p("/proc") });
    for m in PROC_MASKED {
        let path = Path::new(m);
        if host.exists(path) {
            ops.push(MountOp::Mask {
                dst: p(m),
                dir: host.is_dir(path),
            });
        }
    }
    for r in PROC_READONLY {
        if host.exists(Path::new(r)) {
            ops.push(MountOp::ReadOnly { dst: p(r) });
        }
    }

    ops
}

/// The rest: hostname files, `/tmp`, and the caller's grants.
pub fn rest(fs: &Fs, hostname: &str) -> Vec<MountOp> {
    let mut ops = host_names(hostname);
    ops.push(MountOp::Tmpfs {
        dst: "/tmp".into(),
        size: fs.tmp_size_bytes(),
        mode: 0o1777,
    });

    // Parents before children: a grant nested inside another (`--ro repo/.git`
    // inside `--rw repo`) must be mounted on top of it, never covered by it.
    // The sort is stable, so grants at the same depth keep the caller's order.
    let mut grants: Vec<&Mount> = fs.mounts().iter().collect();
    grants.sort_by_key(|m| m.dst().components().count());
    for m in grants {
        ops.push(match m {
            Mount::ReadOnly { src, dst } => MountOp::Bind {
                src: src.clone(),
                dst: dst.clone(),
                ro: true,
                granted: true,
            },
            Mount::ReadWrite { src, dst } => MountOp::Bind {
                src: src.clone(),
                dst: dst.clone(),
                ro: false,
                granted: true,
            },
            Mount::Overlay { src, dst, size } => MountOp::Overlay {
                src: src.clone(),
                dst: dst.clone(),
                size: *size,
            },
            Mount::Tmpfs { dst, size } => MountOp::Tmpfs {
                dst: dst.clone(),
                size: *size,
                mode: 0o1777,
            },
        });
    }
    ops
}

fn file(dst: &str, contents: String) -> MountOp {
    MountOp::File {
        dst: dst.into(),
        contents,
        mode: 0o644,
    }
}

/// `passwd`, `group`, `resolv.conf`: nothing of the host's users.
fn users(uid: u32, gid: u32) -> Vec<MountOp> {
    let mut passwd = String::from("root:x:0:0:root:/tmp:/bin/sh\n");
    let mut group = String::from("root:x:0:\n");
    if uid != 0 && uid != 65534 {
        passwd.push_str(&format!("sandbox:x:{uid}:{gid}:sandbox:/tmp:/bin/sh\n"));
    }
    if gid != 0 && gid != 65534 {
        group.push_str(&format!("sandbox:x:{gid}:\n"));
    }
    passwd.push_str("nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n");
    group.push_str("nogroup:x:65534:\n");
    vec![
        file("/etc/passwd", passwd),
        file("/etc/group", group),
        file(
            "/etc/resolv.conf",
            "# stockade: the sandbox has no DNS of its own; names resolve through the proxy when one is granted\nnameserver 127.0.0.1\noptions timeout:1 attempts:1\n".into(),
        ),
    ]
}

/// `hosts` and `hostname`.
fn host_names(hostname: &str) -> Vec<MountOp> {
    let hosts = format!(
        "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n127.0.1.1\t{hostname}\n"
    );
    vec![
        file("/etc/hosts", hosts),
        file("/etc/hostname", format!("{hostname}\n")),
    ]
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::collections::HashMap;

    pub(crate) struct FakeHost {
        links: HashMap<&'static str, &'static str>,
        dirs: Vec<&'static str>,
        files: Vec<&'static str>,
    }

    impl HostView for FakeHost {
        fn symlink(&self, path: &Path) -> Option<PathBuf> {
            self.links.get(path.to_str().unwrap()).map(PathBuf::from)
        }
        fn exists(&self, path: &Path) -> bool {
            let s = path.to_str().unwrap();
            self.links.contains_key(s) || self.dirs.contains(&s) || self.files.contains(&s)
        }
        fn is_dir(&self, path: &Path) -> bool {
            self.dirs.contains(&path.to_str().unwrap())
        }
    }

    pub(crate) fn merged_usr_host() -> FakeHost {
        FakeHost {
            links: [
                ("/bin", "usr/bin"),
                ("/lib", "usr/lib"),
                ("/lib64", "usr/lib64"),
                ("/sbin", "usr/sbin"),
            ]
            .into_iter()
            .collect(),
            dirs: vec![
                "/usr",
                "/etc/ssl",
                "/etc/alternatives",
                "/proc/sys",
                "/proc/acpi",
            ],
            files: vec![
                "/etc/ld.so.cache",
                "/dev/null",
                "/dev/zero",
                "/proc/kcore",
                "/proc/keys",
            ],
        }
    }

    fn id() -> Identity {
        Identity {
            uid: 1000,
            gid: 1000,
            hostname: "stockade".into(),
        }
    }

    #[test]
    fn merged_usr_layout_keeps_symlinks_and_binds_usr_readonly() {
        let ops = plan(&Fs::minimal(), &id(), &merged_usr_host());
        assert!(ops.contains(&MountOp::Symlink {
            target: "usr/bin".into(),
            dst: "/bin".into()
        }));
        assert!(ops.contains(&MountOp::Bind {
            src: "/usr".into(),
            dst: "/usr".into(),
            ro: true,
            granted: false
        }));
        assert!(!ops
            .iter()
            .any(|o| matches!(o, MountOp::Bind { src, .. } if src == Path::new("/lib32"))));
    }

    #[test]
    fn no_home_root_run_var_or_sys_in_default_view() {
        let ops = plan(&Fs::minimal(), &id(), &merged_usr_host());
        for op in &ops {
            let dst = match op {
                MountOp::Dir { dst, .. }
                | MountOp::Symlink { dst, .. }
                | MountOp::File { dst, .. }
                | MountOp::Copy { dst, .. }
                | MountOp::Bind { dst, .. }
                | MountOp::Tmpfs { dst, .. }
                | MountOp::Overlay { dst, .. }
                | MountOp::Devpts { dst }
                | MountOp::Proc { dst }
                | MountOp::Mask { dst, .. }
                | MountOp::ReadOnly { dst }
                | MountOp::Pin { dst, .. } => dst,
            };
            for banned in ["/home", "/root", "/run", "/var", "/sys"] {
                assert!(!dst.starts_with(banned), "{op:?} exposes {banned}");
            }
        }
    }

    #[test]
    fn proc_is_masked_after_it_is_mounted_and_only_existing_paths() {
        let ops = plan(&Fs::minimal(), &id(), &merged_usr_host());
        let proc_at = ops
            .iter()
            .position(|o| matches!(o, MountOp::Proc { .. }))
            .unwrap();
        let kcore = ops
            .iter()
            .position(|o| {
                *o == MountOp::Mask {
                    dst: "/proc/kcore".into(),
                    dir: false,
                }
            })
            .unwrap();
        assert!(kcore > proc_at);
        assert!(ops.contains(&MountOp::Mask {
            dst: "/proc/acpi".into(),
            dir: true
        }));
        assert!(ops.contains(&MountOp::ReadOnly {
            dst: "/proc/sys".into()
        }));
        assert!(!ops
            .iter()
            .any(|o| matches!(o, MountOp::Mask { dst, .. } if dst == Path::new("/proc/scsi"))));
    }

    #[test]
    fn grants_come_last_in_order_and_are_marked() {
        let fs = Fs::minimal()
            .ro_at("/data", "/d")
            .rw("/w")
            .overlay("/o")
            .tmpfs("/s", 1 << 20);
        let ops = plan(&fs, &id(), &merged_usr_host());
        let n = ops.len();
        assert_eq!(
            ops[n - 4],
            MountOp::Bind {
                src: "/data".into(),
                dst: "/d".into(),
                ro: true,
                granted: true
            }
        );
        assert_eq!(
            ops[n - 3],
            MountOp::Bind {
                src: "/w".into(),
                dst: "/w".into(),
                ro: false,
                granted: true
            }
        );
        assert!(matches!(&ops[n - 2], MountOp::Overlay { dst, .. } if dst == Path::new("/o")));
        assert_eq!(
            ops[n - 1],
            MountOp::Tmpfs {
                dst: "/s".into(),
                size: 1 << 20,
                mode: 0o1777
            }
        );
        assert!(matches!(&ops[n - 5], MountOp::Tmpfs { dst, .. } if dst == Path::new("/tmp")));
    }

    #[test]
    fn nested_grants_mount_parents_first_whatever_the_order_given() {
        let fs = Fs::minimal()
            .ro("/w/repo/.git")
            .tmpfs("/w/repo/tmp", 1 << 20)
            .rw("/w/repo")
            .overlay("/w");
        let ops = plan(&fs, &id(), &merged_usr_host());
        let pos = |dst: &str| {
            ops.iter()
                .position(|o| match o {
                    MountOp::Bind {
                        dst: d,
                        granted: true,
                        ..
                    }
                    | MountOp::Overlay { dst: d, .. } => d == Path::new(dst),
                    MountOp::Tmpfs { dst: d, .. } => d == Path::new(dst),
                    _ => false,
                })
                .unwrap()
        };
        assert!(pos("/w") < pos("/w/repo"));
        assert!(pos("/w/repo") < pos("/w/repo/.git"));
        assert!(pos("/w/repo") < pos("/w/repo/tmp"));
        assert!(
            pos("/w/repo/.git") < pos("/w/repo/tmp"),
            "same depth keeps the given order"
        );
    }

    #[test]
    fn synthetic_passwd_has_the_inside_user_and_no_host_users() {
        let ops = plan(&Fs::minimal(), &id(), &merged_usr_host());
        let passwd = ops
            .iter()
            .find_map(|o| match o {
                MountOp::File { dst, contents, .. } if dst == Path::new("/etc/passwd") => {
                    Some(contents.clone())
                }
                _ => None,
            })
            .unwrap();
        assert!(passwd.contains("sandbox:x:1000:1000"));
        assert_eq!(passwd.lines().count(), 3);
    }
}
