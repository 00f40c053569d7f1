//! The private temporary directory that stands in for the full mode's
//! `/tmp` tmpfs: made by the host under its temp dir (mode 0700, owned by
//! the id the command runs as), named in `TMPDIR` and `HOME`, writable by
//! Landlock, and removed once the sandbox's supervisor is gone.

use std::io;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// A private temp dir, removed (with everything in it, never following a
/// symlink out of it) when dropped.
#[derive(Debug)]
pub(crate) struct PrivateTmp {
    path: PathBuf,
}

impl PrivateTmp {
    /// Create `<temp dir>/stockade-<random>` for `uid:gid`.
    pub(crate) fn create(uid: u32, gid: u32) -> io::Result<PrivateTmp> {
        let base = std::fs::canonicalize(std::env::temp_dir())?;
        let mut last = None;
        for _ in 0..8 {
            let path = base.join(format!("stockade-{}", random_hex()?));
            match std::fs::DirBuilder::new().mode(0o700).create(&path) {
                Ok(()) => {
                    let tmp = PrivateTmp { path };
                    std::fs::set_permissions(&tmp.path, std::fs::Permissions::from_mode(0o700))?;
                    if (uid, gid)
                        != (
                            nix::unistd::geteuid().as_raw(),
                            nix::unistd::getegid().as_raw(),
                        )
                    {
                        std::os::unix::fs::chown(&tmp.path, Some(uid), Some(gid))?;
                    }
                    return Ok(tmp);
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => last = Some(e),
                Err(e) => return Err(e),
            }
        }
        Err(last.unwrap_or_else(|| io::Error::other("no free temp dir name")))
    }

    /// Its path.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for PrivateTmp {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

fn random_hex() -> io::Result<String> {
    use std::io::Read;
    let mut buf = [0u8; 8];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut buf)?;
    Ok(buf.iter().map(|b| format!("{b:02x}")).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn created_private_and_removed_with_contents() {
        let me = (
            nix::unistd::geteuid().as_raw(),
            nix::unistd::getegid().as_raw(),
        );
        let t = PrivateTmp::create(me.0, me.1).unwrap();
        let p = t.path().to_path_buf();
        let meta = std::fs::metadata(&p).unwrap();
        assert!(meta.is_dir());
        assert_eq!(meta.permissions().mode() & 0o777, 0o700);
        std::fs::create_dir_all(p.join("a/b")).unwrap();
        std::fs::write(p.join("a/b/f"), b"x").unwrap();
        // A symlink out of it is removed, never followed.
        let outside = std::env::temp_dir().join(format!("stockade-keep-{}", random_hex().unwrap()));
        std::fs::write(&outside, b"keep").unwrap();
        std::os::unix::fs::symlink(&outside, p.join("a/link")).unwrap();
        drop(t);
        assert!(!p.exists());
        assert_eq!(std::fs::read(&outside).unwrap(), b"keep");
        std::fs::remove_file(&outside).unwrap();
    }
}
