//! Mount plan -> Landlock policy, as data. Pure: no kernel, no host.
//!
//! | plan op                                   | category                   |
//! |-------------------------------------------|----------------------------|
//! | `Bind { ro: true }` (system dirs, `/etc/ssl`…, `--ro` grants) | [`Category::ReadExec`] |
//! | `Bind { ro: false, granted: true }` (`--rw`) | [`Category::ReadWrite`] |
//! | `Bind { ro: false, granted: false }` (`/dev/null`…) | [`Category::Device`] |
//! | `Overlay`, `Tmpfs` (`/tmp`, `/dev/shm`, `--tmpfs`), except `/dev` | [`Category::ReadWrite`] |
//! | `Devpts` (`/dev/pts` and its `/dev/ptmx`) | [`Category::Device`]       |
//! | `Proc`                                    | [`Category::ReadOnly`]     |
//! | `Dir` (`/etc`)                            | [`Category::ReadExec`]     |
//! | `File`, `Copy` not beneath a readable rule | [`Category::ReadExec`]    |
//! | `Symlink`, `Mask`, `ReadOnly`, `Tmpfs /dev` | none                     |
//! | always: `/`                               | [`Category::List`]         |
//!
//! Decisions, and why:
//!
//! - **`--ro` grants are read + execute**, like the system directories: the
//!   mount is `nosuid` but not `noexec`, so running a granted toolchain is part
//!   of what the caller granted; Landlock still refuses every write.
//! - **`/proc` is read-only**, no writes anywhere, `/proc/self` included. A
//!   Landlock rule is tied to an inode, and `/proc/self` resolves to one pid's
//!   directory at build time, so a rule there could not follow the command's
//!   own pid anyway; the alternative, write on all of `/proc`, is far too
//!   broad. What this costs: writes to `/proc/self/oom_score_adj` (Chromium
//!   ignores the failure), `/proc/self/attr/*`, `/proc/self/task/*/comm` of
//!   *another* thread (naming the calling thread uses `prctl`), and
//!   `/proc/self/coredump_filter` fail with `EACCES`. Opening
//!   `/proc/self/fd/N` (so `/dev/stdout`) still works: Landlock checks the
//!   file it resolves to (a pipe or socket is never restricted; a tty under
//!   `/dev/pts` is a [`Category::Device`]). Executing `/proc/self/exe` is
//!   checked on the binary itself.
//! - **`/` is list-only** (`ReadDir`): `ls /`, `find /`, shells' globbing and
//!   `opendir` of `/` or `/dev` work; a list right is inherited by every
//!   directory below, which only exposes names of what the plan put there.
//! - **`/dev` itself gets nothing** beyond that listing: its nodes are granted
//!   one by one, so nothing can be created in it.
//! - **Symlinks get no rule**: path resolution reaches the target, which
//!   carries its own (`/bin -> usr/bin` is covered by `/usr`).
//! - **Nested grants are a union**: Landlock rights only add up along a path, so
//!   `--ro repo/.git` inside `--rw repo` is writable as far as Landlock is
//!   concerned; the read-only mount is what holds there.
//! - **TCP**: binding is always denied (no bind rules at all); connect only to
//!   [`Rules::tcp_connect`] (empty for `Net::None`, the proxy ports in proxy
//!   mode). So servers on loopback inside the sandbox cannot listen, unless
//!   the caller opts in ([`Settings::tcp_connect`] `None`, the CLI's
//!   `--loopback-tcp`): then Landlock leaves TCP alone and the network
//!   namespace (loopback only) is the fence.

use std::path::{Path, PathBuf};

use ::landlock::{make_bitflags, Access, AccessFs, BitFlags, ABI};

use crate::fs::plan::MountOp;

/// What a rule allows beneath its path. The exact rights at a given ABI are
/// [`Category::rights`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Category {
    /// Read files, list directories, execute.
    ReadExec,
    /// Read files and list directories.
    ReadOnly,
    /// List directories only.
    List,
    /// Everything the ABI has (read, write, execute, create, remove, `refer`,
    /// `truncate`, `ioctl_dev`) except creating character and block devices,
    /// which needs capabilities the sandbox never has.
    ReadWrite,
    /// A device node (or devpts): read, write, `truncate`, `ioctl_dev`; nothing
    /// that creates or removes.
    Device,
}

/// Rights that apply to a non-directory (the kernel refuses the others on a
/// file rule).
fn file_rights() -> BitFlags<AccessFs> {
    make_bitflags!(AccessFs::{ReadFile | WriteFile | Execute | Truncate | IoctlDev})
}

impl Category {
    /// The filesystem rights of this category at `abi`, always a subset of
    /// the rights the ruleset handles at that ABI (`AccessFs::from_all(abi)`).
    pub fn rights(self, abi: ABI) -> BitFlags<AccessFs> {
        let all = AccessFs::from_all(abi);
        let r = match self {
            Category::ReadExec => make_bitflags!(AccessFs::{Execute | ReadFile | ReadDir}),
            Category::ReadOnly => make_bitflags!(AccessFs::{ReadFile | ReadDir}),
            Category::List => make_bitflags!(AccessFs::{ReadDir}),
            Category::ReadWrite => all & !(AccessFs::MakeChar | AccessFs::MakeBlock),
            Category::Device => {
                make_bitflags!(AccessFs::{ReadFile | WriteFile | Truncate | IoctlDev})
            }
        };
        r & all
    }

    /// [`Category::rights`] restricted to what a rule on a non-directory may
    /// carry.
    pub fn file_rights(self, abi: ABI) -> BitFlags<AccessFs> {
        self.rights(abi) & file_rights()
    }
}

/// A Landlock policy as data: paths inside the sandbox, grouped by
/// [`Category`], and the TCP ports `connect` may reach.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Rules {
    /// [`Category::ReadExec`]: system directories, `/etc`, `--ro` grants.
    pub read_exec: Vec<PathBuf>,
    /// [`Category::ReadOnly`]: `/proc`.
    pub read_only: Vec<PathBuf>,
    /// [`Category::List`]: `/`.
    pub list: Vec<PathBuf>,
    /// [`Category::ReadWrite`]: `--rw` grants, overlays, tmpfs (`/tmp`,
    /// `/dev/shm`, `--tmpfs`).
    pub read_write: Vec<PathBuf>,
    /// [`Category::Device`]: the bound `/dev` nodes, `/dev/pts`, `/dev/ptmx`.
    pub devices: Vec<PathBuf>,
    /// TCP ports `connect` may reach (ABI 4); binding is always denied.
    pub tcp_connect: Vec<u16>,
    /// Leave TCP to the network namespace alone: no Landlock TCP rules at all
    /// (the caller opted into servers on the sandbox's own loopback).
    pub tcp_unrestricted: bool,
}

/// What the caller decided about Landlock, carried from the host to the init.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Settings {
    /// A host without Landlock is an error (the default) rather than a run
    /// without this layer.
    pub required: bool,
    /// TCP ports `connect` may reach; bind is denied. `None`: TCP is not
    /// restricted by Landlock (loopback servers opted in).
    pub tcp_connect: Option<Vec<u16>>,
    /// Mounted paths that get no Landlock rule anyway (stricter, never
    /// looser; used to prove that Landlock holds on its own).
    pub withhold: Vec<PathBuf>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            required: true,
            tcp_connect: Some(Vec::new()),
            withhold: Vec::new(),
        }
    }
}

impl Rules {
    /// The policy for a mount plan (`plan::base` followed by `plan::rest`,
    /// destinations inside the sandbox) and the TCP ports the command may
    /// connect to: none for `Net::None`, the proxy's ports in proxy mode.
    /// Paths keep the plan's order; duplicates are dropped.
    pub fn from_plan<'a>(ops: impl IntoIterator<Item = &'a MountOp>, tcp_connect: &[u16]) -> Rules {
        let mut r = Rules {
            list: vec![PathBuf::from("/")],
            ..Rules::default()
        };
        for op in ops {
            match op {
                MountOp::Bind { dst, ro: true, .. } | MountOp::Dir { dst, .. } => {
                    push(&mut r.read_exec, dst)
                }
                MountOp::Bind {
                    dst,
                    ro: false,
                    granted: true,
                    ..
                }
                | MountOp::Overlay { dst, .. } => push(&mut r.read_write, dst),
                MountOp::Bind {
                    dst,
                    ro: false,
                    granted: false,
                    ..
                } => push(&mut r.devices, dst),
                MountOp::Tmpfs { dst, .. } if dst == Path::new("/dev") => {}
                MountOp::Tmpfs { dst, .. } => push(&mut r.read_write, dst),
                MountOp::Devpts { dst } => {
                    push(&mut r.devices, dst);
                    // `apply` makes `<parent>/ptmx` a symlink into the instance;
                    // the rule follows it, and still holds if it ever becomes a node.
                    let ptmx = dst.parent().unwrap_or(Path::new("/")).join("ptmx");
                    push(&mut r.devices, &ptmx);
                }
                MountOp::Proc { dst } => push(&mut r.read_only, dst),
                MountOp::File { dst, .. } | MountOp::Copy { dst, .. } => {
                    if !r.readable(dst) {
                        push(&mut r.read_exec, dst)
                    }
                }
                // A pin adds no rights: its path is inside a grant that has them.
                MountOp::Symlink { .. }
                | MountOp::Mask { .. }
                | MountOp::ReadOnly { .. }
                | MountOp::Pin { .. } => {}
            }
        }
        r.tcp_connect = tcp_connect.to_vec();
        r.tcp_connect.sort_unstable();
        r.tcp_connect.dedup();
        r
    }

    /// The policy for a sandbox: [`Rules::from_plan`] with the caller's
    /// [`Settings`] applied.
    pub fn for_sandbox<'a>(
        ops: impl IntoIterator<Item = &'a MountOp>,
        settings: &Settings,
    ) -> Rules {
        let ports = settings.tcp_connect.as_deref().unwrap_or(&[]);
        let mut r = Rules::from_plan(ops, ports);
        r.tcp_unrestricted = settings.tcp_connect.is_none();
        for w in &settings.withhold {
            for v in [
                &mut r.read_exec,
                &mut r.read_only,
                &mut r.list,
                &mut r.read_write,
                &mut r.devices,
            ] {
                v.retain(|p| p != w);
            }
        }
        r
    }

    /// Every path rule with its category, in a fixed order.
    pub fn paths(&self) -> impl Iterator<Item = (&Path, Category)> {
        [
            (&self.list, Category::List),
            (&self.read_exec, Category::ReadExec),
            (&self.read_only, Category::ReadOnly),
            (&self.read_write, Category::ReadWrite),
            (&self.devices, Category::Device),
        ]
        .into_iter()
        .flat_map(|(v, c)| v.iter().map(move |p| (p.as_path(), c)))
    }

    /// Whether files can already be read at `path` through an ancestor's rule.
    fn readable(&self, path: &Path) -> bool {
        self.read_exec
            .iter()
            .chain(&self.read_only)
            .chain(&self.read_write)
            .any(|p| path.starts_with(p))
    }
}

fn push(v: &mut Vec<PathBuf>, p: &Path) {
    if !v.iter().any(|q| q == p) {
        v.push(p.to_path_buf());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fs::plan::{self, tests::merged_usr_host};
    use crate::policy::Fs;

    fn paths(v: &[&str]) -> Vec<PathBuf> {
        v.iter().map(PathBuf::from).collect()
    }

    fn full_plan(fs: &Fs) -> Vec<MountOp> {
        let mut ops = plan::base(1000, 1000, &merged_usr_host());
        ops.extend(plan::rest(fs, "stockade"));
        ops
    }

    #[test]
    fn minimal_plan_maps_exactly() {
        let rules = Rules::from_plan(&full_plan(&Fs::minimal()), &[]);
        assert_eq!(
            rules,
            Rules {
                // /bin, /lib, /lib64, /sbin are symlinks on this host: no rules.
                read_exec: paths(&["/usr", "/etc", "/etc/ssl", "/etc/alternatives"]),
                read_only: paths(&["/proc"]),
                list: paths(&["/"]),
                read_write: paths(&["/dev/shm", "/tmp"]),
                // The fake host has only /dev/null and /dev/zero.
                devices: paths(&["/dev/null", "/dev/zero", "/dev/pts", "/dev/ptmx"]),
                tcp_connect: vec![],
                tcp_unrestricted: false,
            }
        );
    }

    #[test]
    fn settings_withhold_paths_and_lift_tcp() {
        let fs = Fs::minimal().rw("/w").rw("/v");
        let settings = Settings {
            required: true,
            tcp_connect: None,
            withhold: paths(&["/w", "/not-mounted"]),
        };
        let r = Rules::for_sandbox(&full_plan(&fs), &settings);
        assert_eq!(r.read_write, paths(&["/dev/shm", "/tmp", "/v"]));
        assert!(r.tcp_unrestricted);
        assert!(r.tcp_connect.is_empty());
        let r = Rules::for_sandbox(&full_plan(&fs), &Settings::default());
        assert_eq!(r.read_write, paths(&["/dev/shm", "/tmp", "/w", "/v"]));
        assert!(!r.tcp_unrestricted);
    }

    #[test]
    fn grants_map_by_kind_in_plan_order() {
        let fs = Fs::minimal()
            .ro_at("/data", "/d")
            .rw("/w")
            .overlay("/o")
            .tmpfs("/s", 1 << 20);
        let rules = Rules::from_plan(&full_plan(&fs), &[3128, 1080, 3128]);
        assert_eq!(
            rules.read_exec,
            paths(&["/usr", "/etc", "/etc/ssl", "/etc/alternatives", "/d"])
        );
        assert_eq!(
            rules.read_write,
            paths(&["/dev/shm", "/tmp", "/w", "/o", "/s"])
        );
        assert_eq!(rules.read_only, paths(&["/proc"]));
        assert_eq!(rules.tcp_connect, vec![1080, 3128]);
    }

    #[test]
    fn nested_grants_are_both_listed() {
        let fs = Fs::minimal().ro("/w/repo/.git").rw("/w/repo");
        let rules = Rules::from_plan(&full_plan(&fs), &[]);
        assert!(rules.read_exec.contains(&PathBuf::from("/w/repo/.git")));
        assert!(rules.read_write.contains(&PathBuf::from("/w/repo")));
    }

    #[test]
    fn nothing_in_dev_proc_or_root_is_writable_except_granted_nodes() {
        let rules = Rules::from_plan(&full_plan(&Fs::minimal()), &[]);
        for p in &rules.read_write {
            assert!(
                !matches!(p.to_str(), Some("/" | "/dev" | "/proc" | "/etc")),
                "{p:?} must not be writable"
            );
        }
        assert!(!rules.paths().any(|(p, _)| p == Path::new("/dev")));
        assert!(!rules
            .paths()
            .any(|(p, _)| p.starts_with("/proc") && p != Path::new("/proc")));
    }

    #[test]
    fn files_outside_readable_dirs_get_their_own_rule() {
        let ops = [
            MountOp::File {
                dst: "/etc/hosts".into(),
                contents: String::new(),
                mode: 0o644,
            },
            MountOp::Dir {
                dst: "/etc".into(),
                mode: 0o755,
            },
            MountOp::Copy {
                src: "/etc/ld.so.cache".into(),
                dst: "/etc/ld.so.cache".into(),
            },
        ];
        let rules = Rules::from_plan(&ops, &[]);
        assert_eq!(rules.read_exec, paths(&["/etc/hosts", "/etc"]));
    }

    #[test]
    fn rights_per_category_and_abi() {
        use AccessFs::*;
        assert_eq!(
            Category::ReadExec.rights(ABI::V7),
            Execute | ReadFile | ReadDir
        );
        assert_eq!(Category::ReadOnly.rights(ABI::V1), ReadFile | ReadDir);
        assert_eq!(Category::List.rights(ABI::V7), BitFlags::from(ReadDir));
        assert_eq!(Category::Device.rights(ABI::V1), ReadFile | WriteFile);
        assert_eq!(
            Category::Device.rights(ABI::V3),
            ReadFile | WriteFile | Truncate
        );
        assert_eq!(
            Category::Device.rights(ABI::V7),
            ReadFile | WriteFile | Truncate | IoctlDev
        );
        let rw7 = Category::ReadWrite.rights(ABI::V7);
        assert_eq!(
            rw7,
            Execute
                | ReadFile
                | ReadDir
                | WriteFile
                | RemoveDir
                | RemoveFile
                | MakeDir
                | MakeReg
                | MakeSock
                | MakeFifo
                | MakeSym
                | Refer
                | Truncate
                | IoctlDev
        );
        assert!(!Category::ReadWrite.rights(ABI::V1).contains(Refer));
        assert!(!Category::ReadWrite.rights(ABI::V2).contains(Truncate));
        assert_eq!(
            Category::ReadWrite.file_rights(ABI::V7),
            Execute | ReadFile | WriteFile | Truncate | IoctlDev
        );
        assert_eq!(Category::ReadExec.file_rights(ABI::V7), Execute | ReadFile);
        for abi in [
            ABI::V1,
            ABI::V2,
            ABI::V3,
            ABI::V4,
            ABI::V5,
            ABI::V6,
            ABI::V7,
        ] {
            for c in [
                Category::ReadExec,
                Category::ReadOnly,
                Category::List,
                Category::ReadWrite,
                Category::Device,
            ] {
                assert!(AccessFs::from_all(abi).contains(c.rights(abi)));
                assert!(!c.rights(abi).is_empty());
            }
        }
    }
}
