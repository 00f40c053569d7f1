//! `TMPDIR` always names a directory the sandbox can write.
//!
//! The environment starts with `TMPDIR=/tmp` (the private tmpfs). A caller
//! may set or pass through another value; it is kept only when it names a
//! directory that exists and is writable inside: `/tmp`, `/dev/shm`, a
//! `--tmpfs` mount point, or an existing directory at or under a `--rw` or
//! `--overlay` grant (and not under a deeper read-only grant) whose mode
//! lets the sandbox's user write. Anything else (a host path that is not
//! granted, a relative path, `/tmp/x`, which does not exist in the fresh
//! `/tmp`, a granted directory owned by someone else) becomes `/tmp`.
//!
//! Why not mount a tmpfs at the caller's path instead: it could hide a grant
//! (`TMPDIR` inside a `--rw` repo) and would add mount points the policy never
//! asked for. Overriding keeps the view exactly what the grants say.

use std::path::{Component, Path, PathBuf};

use crate::fs::plan::MountOp;

/// The default, and the fallback.
pub(crate) const DEFAULT_TMPDIR: &str = "/tmp";

/// The places inside where a `TMPDIR` may point: enough of the filesystem
/// view to answer "is this directory writable inside".
#[derive(Debug, Clone, Default)]
pub(crate) struct WritableDirs {
    /// (inside path, kind), in plan order.
    mounts: Vec<(PathBuf, Kind)>,
    /// The on-disk uid and gid that appear as the sandbox's own user and
    /// group in granted directories.
    owner: (u32, u32),
}

#[derive(Debug, Clone)]
enum Kind {
    /// Only the mount point itself exists.
    Tmpfs,
    /// A host directory shown writable: its existing subdirectories are too.
    Host(PathBuf),
    ReadOnly,
}

impl WritableDirs {
    /// From a mount plan (host sources canonical, as validation leaves them)
    /// and the on-disk ids that are the sandbox's own: the caller's for an
    /// unprivileged caller, the inside ids for a root caller (idmapped grants).
    pub(crate) fn of<'a>(ops: impl IntoIterator<Item = &'a MountOp>, owner: (u32, u32)) -> Self {
        let mounts = ops
            .into_iter()
            .filter_map(|op| {
                let (dst, kind) = match op {
                    MountOp::Bind { dst, ro: true, .. } => (dst, Kind::ReadOnly),
                    MountOp::Bind { src, dst, .. } | MountOp::Overlay { src, dst, .. } => {
                        (dst, Kind::Host(src.clone()))
                    }
                    MountOp::Tmpfs { dst, .. } => (dst, Kind::Tmpfs),
                    _ => return None,
                };
                Some((dst.clone(), kind))
            })
            .collect();
        WritableDirs { mounts, owner }
    }

    /// Whether `dir` exists inside and the deepest mount holding it is
    /// writable.
    pub(crate) fn contains(&self, dir: &Path) -> bool {
        let clean = dir.is_absolute()
            && dir
                .components()
                .all(|c| matches!(c, Component::RootDir | Component::Normal(_)));
        if !clean {
            return false;
        }
        // The deepest mount wins; among equals, the last one (mounted on top).
        let Some((dst, kind)) = self
            .mounts
            .iter()
            .filter(|(dst, _)| dir.starts_with(dst))
            .max_by_key(|(dst, _)| dst.components().count())
        else {
            return false;
        };
        let rest = dir.strip_prefix(dst).unwrap_or(Path::new(""));
        match kind {
            Kind::ReadOnly => false,
            Kind::Tmpfs => rest.as_os_str().is_empty(),
            // Only a real directory, not one reached through a host symlink
            // (inside, a symlink resolves in the sandbox's own view).
            Kind::Host(src) => {
                let host = src.join(rest);
                let real = std::fs::canonicalize(&host).is_ok_and(|real| real == host);
                real && std::fs::metadata(&host).is_ok_and(|m| m.is_dir() && self.may_write(&m))
            }
        }
    }

    /// The mode bits that apply to the sandbox's user allow writing.
    fn may_write(&self, m: &std::fs::Metadata) -> bool {
        use std::os::unix::fs::MetadataExt;
        let (uid, gid) = self.owner;
        let bits = if m.uid() == uid {
            0o200
        } else if m.gid() == gid {
            0o020
        } else {
            0o002
        };
        m.mode() & bits != 0
    }

    /// Replace an unusable `TMPDIR` in `env` with `/tmp`.
    pub(crate) fn fix(&self, env: &mut [(String, String)]) {
        for (k, v) in env.iter_mut() {
            if k == "TMPDIR" && !self.contains(Path::new(v.as_str())) {
                *v = DEFAULT_TMPDIR.into();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fs::plan;
    use crate::policy::Fs;

    #[test]
    fn only_writable_existing_directories_are_kept() {
        use std::os::unix::fs::{MetadataExt, PermissionsExt};
        let host = std::env::temp_dir().join(format!("stockade-tmpdir-{}", std::process::id()));
        std::fs::create_dir_all(host.join("repo/tmp")).unwrap();
        std::fs::create_dir_all(host.join("repo/.git")).unwrap();
        std::fs::create_dir_all(host.join("repo/locked")).unwrap();
        let mode = |p: &str, m: u32| {
            std::fs::set_permissions(host.join(p), std::fs::Permissions::from_mode(m)).unwrap()
        };
        mode("repo", 0o755);
        mode("repo/tmp", 0o700);
        mode("repo/locked", 0o555);
        let meta = std::fs::metadata(&host).unwrap();
        let owner = (meta.uid(), meta.gid());
        std::os::unix::fs::symlink("/etc", host.join("repo/etc")).unwrap_or(());
        let repo = std::fs::canonicalize(host.join("repo")).unwrap();
        let fs = Fs::minimal()
            .rw_at(&repo, "/work/repo")
            .ro_at(repo.join(".git"), "/work/repo/.git")
            .tmpfs("/scratch", 1 << 20)
            .ro("/opt");
        let shm = MountOp::Tmpfs {
            dst: "/dev/shm".into(),
            size: 1,
            mode: 0o1777,
        };
        let ops = plan::rest(&fs, "h");
        let w = WritableDirs::of(ops.iter().chain([&shm]), owner);
        for ok in [
            "/tmp",
            "/dev/shm",
            "/scratch",
            "/work/repo",
            "/work/repo/tmp",
        ] {
            assert!(w.contains(Path::new(ok)), "{ok}");
        }
        for bad in [
            "/tmp/x",
            "/scratch/x",
            "/work/repo/missing",
            "/work/repo/locked",
            "/work/repo/.git",
            "/work/repo/etc",
            "/work/repo/tmp/../..",
            "/opt",
            "/usr",
            "/home/alice/tmp",
            "tmp",
            "",
        ] {
            assert!(!w.contains(Path::new(bad)), "{bad}");
        }
        let mut env = vec![
            ("TMPDIR".to_string(), "/var/folders/T".to_string()),
            ("X".to_string(), "/var/folders/T".to_string()),
        ];
        w.fix(&mut env);
        assert_eq!(env[0].1, "/tmp");
        assert_eq!(env[1].1, "/var/folders/T");
        let mut env = vec![("TMPDIR".to_string(), "/work/repo/tmp".to_string())];
        w.fix(&mut env);
        assert_eq!(env[0].1, "/work/repo/tmp");
        // The same directories, seen by a sandbox whose user owns none of them.
        let stranger = WritableDirs::of(ops.iter(), (owner.0 + 1, owner.1 + 1));
        assert!(!stranger.contains(Path::new("/work/repo/tmp")));
        assert!(stranger.contains(Path::new("/tmp")));
        mode("repo/tmp", 0o777);
        assert!(stranger.contains(Path::new("/work/repo/tmp")));
        let _ = std::fs::remove_dir_all(&host);
    }
}
