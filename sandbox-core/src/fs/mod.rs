//! The sandbox's filesystem: a plan computed on the host ([`plan`]) and carried
//! out inside the new mount namespace ([`apply`]).

pub(crate) mod apply;
pub mod git;
pub mod plan;

use std::os::fd::OwnedFd;
use std::path::PathBuf;
use std::sync::Arc;

/// An overlay's upper directory (its writes), kept open by the host after
/// the sandbox's mount namespace is gone, for the workspace diff.
#[derive(Debug, Clone)]
pub(crate) struct Upper {
    /// The host directory under the overlay (`--overlay SRC`).
    pub src: PathBuf,
    /// Where the sandbox saw it.
    pub dst: PathBuf,
    /// The upper directory.
    pub dir: Arc<OwnedFd>,
}

/// Pair the uppers the init sent (plan order) with the plan's overlays.
pub(crate) fn uppers(mounts: &[plan::MountOp], dirs: Vec<OwnedFd>) -> Vec<Upper> {
    mounts
        .iter()
        .filter_map(|m| match m {
            plan::MountOp::Overlay { src, dst, .. } => Some((src.clone(), dst.clone())),
            _ => None,
        })
        .zip(dirs)
        .map(|((src, dst), dir)| Upper {
            src,
            dst,
            dir: Arc::new(dir),
        })
        .collect()
}

/// Scan every overlay's upper against its host copy.
pub(crate) fn diff_uppers(
    uppers: &[Upper],
) -> Result<Vec<crate::workspace::WorkspaceDiff>, crate::workspace::WorkspaceError> {
    uppers
        .iter()
        .map(|u| crate::workspace::WorkspaceDiff::scan(u.dir.clone(), &u.src, &u.dst))
        .collect()
}
