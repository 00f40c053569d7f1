//! The full mode's Landlock policy, carried over to host paths.
//!
//! There is no mount namespace, so the command sees the host's own tree and
//! Landlock is what limits it to the plan. Each op of the mount plan
//! (`fs::plan::base` then `rest`) maps as follows:
//!
//! | plan op | reduced mode |
//! |---|---|
//! | `Bind` of a system directory, `/etc/ssl`..., `--ro` grant | read + execute on the host path |
//! | `Bind` of a `--rw` grant | read-write on the host path |
//! | `Bind` of a device node (`/dev/null`...) | device rights on the host node |
//! | `Copy`, `File` in `/etc` | read on the host's own file, if it exists |
//! | `Dir /etc` | nothing: the host's `/etc` holds far more than the copies |
//! | `Tmpfs /tmp` | read-write on the private temp dir instead |
//! | `Proc` | read-only `/proc` (the host's) |
//! | `Devpts`, `Tmpfs /dev/shm`, `Tmpfs /dev` | nothing: they would be the host's ptys and shared memory |
//! | `Overlay`, `--tmpfs`, a grant whose destination differs from its source | refused before this ([`check_grants`]) |
//! | `Symlink`, `Mask`, `ReadOnly` | nothing (symlink targets carry their own rules; `/proc` is read-only anyway) |
//!
//! No list right on `/` (the full mode has one): a Landlock right holds for
//! the whole tree below its path, and below the host's `/` that would let
//! the command list every directory of the host. So `ls /` fails here.
//! TCP connect only to the given ports, no bind.

use std::path::{Path, PathBuf};

use crate::error::Error;
use crate::fs::plan::MountOp;
use crate::landlock::{Rules, Settings};
use crate::policy::{Fs, Mount};

/// Refuse what reduced mode cannot give: overlays and private tmpfs mounts
/// need a mount namespace, and a grant can only appear where it is.
pub(crate) fn check_grants(fs: &Fs) -> Result<(), Error> {
    for m in fs.mounts() {
        let (opt, src) = match m {
            Mount::Overlay { .. } => {
                return Err(Error::policy(format!(
                    "--overlay {} needs a mount namespace, which reduced mode does not have",
                    m.dst().display()
                )))
            }
            Mount::Tmpfs { .. } => {
                return Err(Error::policy(format!(
                    "--tmpfs {} needs a mount namespace, which reduced mode does not have",
                    m.dst().display()
                )))
            }
            Mount::ReadOnly { src, .. } => ("--ro", src),
            Mount::ReadWrite { src, .. } => ("--rw", src),
        };
        let dst = m.dst();
        let same = dst == src.as_path() || std::fs::canonicalize(dst).is_ok_and(|d| d == *src);
        if !same {
            return Err(Error::policy(format!(
                "{opt} {}:{}: reduced mode has no mount namespace, so a grant is seen at its host \
                 path; use {opt} {}",
                src.display(),
                dst.display(),
                src.display()
            )));
        }
    }
    Ok(())
}

/// Refuse a plan whose additions (presets, ssh-agent, git protection) need
/// mounts reduced mode does not have: it has no mount namespace, so a pin
/// (git's read-only hooks and config), an overlay (a preset cache) or a
/// grant shown at another path (the ssh-agent socket) would silently not
/// exist, and a git directory under a writable grant would be writable.
pub(crate) fn check_plan(ops: &[MountOp]) -> Result<(), Error> {
    for op in ops {
        let why = match op {
            MountOp::Pin { dst, .. } => format!(
                "the git directory protection of {} needs a mount namespace; grant the repository \
                 read-only, or pass --git off (Sandbox::git(GitMode::Off)) to accept that the \
                 command can plant hooks",
                dst.display()
            ),
            MountOp::Overlay { dst, .. } => format!(
                "{} would be an overlay, which needs a mount namespace; use --cache ro or \
                 --cache persist",
                dst.display()
            ),
            MountOp::Bind {
                src,
                dst,
                granted: true,
                ..
            } if src != dst => format!(
                "{} would be shown at {}, which needs a mount namespace (--ssh-agent is not \
                 available in reduced mode)",
                src.display(),
                dst.display()
            ),
            _ => continue,
        };
        return Err(Error::policy(format!("reduced mode: {why}")));
    }
    Ok(())
}

/// The Landlock rules for a plan (`base` then `rest`, already checked by
/// [`check_grants`]) at host paths, with `tmp` as the writable temp dir.
/// `exists` filters the host files the plan only copies when present.
pub(crate) fn host_rules<'a>(
    ops: impl IntoIterator<Item = &'a MountOp>,
    tmp: &Path,
    settings: &Settings,
    exists: &dyn Fn(&Path) -> bool,
) -> Rules {
    let mut r = Rules::default();
    for op in ops {
        match op {
            MountOp::Bind { src, ro: true, .. } => push(&mut r.read_exec, src),
            MountOp::Bind {
                src,
                ro: false,
                granted: true,
                ..
            } => push(&mut r.read_write, src),
            MountOp::Bind {
                src,
                ro: false,
                granted: false,
                ..
            } => push(&mut r.devices, src),
            MountOp::Copy { src, .. } if exists(src) => push(&mut r.read_exec, src),
            MountOp::File { dst, .. } if exists(dst) => push(&mut r.read_exec, dst),
            MountOp::Tmpfs { dst, .. } if dst == Path::new("/tmp") => push(&mut r.read_write, tmp),
            MountOp::Proc { dst } => push(&mut r.read_only, dst),
            _ => {}
        }
    }
    r.tcp_connect = settings.tcp_connect.clone().unwrap_or_default();
    r.tcp_connect.sort_unstable();
    r.tcp_connect.dedup();
    for w in &settings.withhold {
        for v in [
            &mut r.read_exec,
            &mut r.read_only,
            &mut r.read_write,
            &mut r.devices,
        ] {
            v.retain(|p| p != w);
        }
    }
    r
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

    #[test]
    fn plans_needing_mounts_are_refused() {
        let pin = MountOp::Pin {
            dst: "/w/repo/.git/hooks".into(),
            ro: true,
            missing: plan::Missing::Skip,
        };
        let overlay = MountOp::Overlay {
            src: "/h/.npm".into(),
            dst: "/h/.npm".into(),
            size: 1,
        };
        let moved = MountOp::Bind {
            src: "/run/user/1/agent.sock".into(),
            dst: "/run/ssh-agent.sock".into(),
            ro: true,
            granted: true,
        };
        for (op, says) in [
            (pin, "--git off"),
            (overlay, "--cache ro"),
            (moved, "--ssh-agent"),
        ] {
            let err = check_plan(std::slice::from_ref(&op)).unwrap_err();
            assert!(matches!(err, Error::Policy(_)), "{err:?}");
            assert!(err.to_string().contains(says), "{err}");
        }
        // Positive control: a grant at its own path is fine.
        let grant = MountOp::Bind {
            src: "/w/repo".into(),
            dst: "/w/repo".into(),
            ro: false,
            granted: true,
        };
        assert!(check_plan(&[grant]).is_ok());
    }

    fn paths(v: &[&str]) -> Vec<PathBuf> {
        v.iter().map(PathBuf::from).collect()
    }

    fn settings(ports: &[u16]) -> Settings {
        Settings {
            required: true,
            tcp_connect: Some(ports.to_vec()),
            withhold: Vec::new(),
        }
    }

    #[test]
    fn minimal_plan_maps_to_host_paths() {
        let mut ops = plan::base(1000, 1000, &merged_usr_host());
        ops.extend(plan::rest(&Fs::minimal(), "stockade"));
        let everything = |_: &Path| true;
        let r = host_rules(
            &ops,
            Path::new("/tmp/stockade-x"),
            &settings(&[40000, 40001, 40000]),
            &everything,
        );
        assert!(
            r.list.is_empty(),
            "listing the host's / would list every host directory"
        );
        // No /etc as a whole, no /dev/pts, no /dev/shm, no /tmp.
        assert!(!r.paths().any(|(p, _)| [
            "/etc",
            "/dev",
            "/dev/pts",
            "/dev/ptmx",
            "/dev/shm",
            "/tmp"
        ]
        .iter()
        .any(|x| p == Path::new(x))));
        assert_eq!(r.read_write, paths(&["/tmp/stockade-x"]));
        assert_eq!(r.read_only, paths(&["/proc"]));
        assert!(r.read_exec.contains(&PathBuf::from("/usr")));
        assert!(r.read_exec.contains(&PathBuf::from("/etc/passwd")));
        assert!(r.read_exec.contains(&PathBuf::from("/etc/ssl")));
        assert_eq!(r.devices, paths(&["/dev/null", "/dev/zero"]));
        assert_eq!(r.tcp_connect, vec![40000, 40001]);
        assert!(!r.tcp_unrestricted);
        // Files the host lacks get no rule (the rule would fail to open).
        let nothing = |_: &Path| false;
        let r = host_rules(&ops, Path::new("/t"), &settings(&[]), &nothing);
        assert!(!r.read_exec.iter().any(|p| p.starts_with("/etc/passwd")));
        assert!(r.tcp_connect.is_empty());
    }

    #[test]
    fn grants_keep_their_kind_and_withheld_paths_go() {
        let fs = Fs::minimal().ro("/data").rw("/work");
        let ops = plan::rest(&fs, "stockade");
        let mut s = settings(&[]);
        s.withhold = paths(&["/data"]);
        let r = host_rules(&ops, Path::new("/t"), &s, &|_| true);
        assert_eq!(r.read_write, paths(&["/t", "/work"]));
        assert!(r.read_exec.iter().all(|p| p != Path::new("/data")));
    }

    #[test]
    fn grants_must_sit_at_their_host_path() {
        let here = std::env::temp_dir();
        let real = std::fs::canonicalize(&here).unwrap();
        let ok = Fs::minimal().rw(&real).ro(&real).validated().unwrap();
        check_grants(&ok).unwrap();
        let moved = Fs::minimal().rw_at(&real, "/work").validated().unwrap();
        let e = check_grants(&moved).unwrap_err().to_string();
        assert!(e.contains("--rw") && e.contains("host path"), "{e}");
        let overlay = Fs::minimal().overlay(&real).validated().unwrap();
        assert!(check_grants(&overlay)
            .unwrap_err()
            .to_string()
            .contains("--overlay"));
        let tmpfs = Fs::minimal().tmpfs("/scratch", 1 << 20);
        assert!(check_grants(&tmpfs)
            .unwrap_err()
            .to_string()
            .contains("--tmpfs"));
    }
}
