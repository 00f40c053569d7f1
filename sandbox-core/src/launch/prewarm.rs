//! Pre-warmed sandboxes: a helper started ahead of time whose init already
//! sits in fresh namespaces with its id maps written, waiting for a plan.
//!
//! Opt-in through [`crate::Sandbox::prewarm`]. Each pre-warmed sandbox is used
//! once, exactly like a cold one (nothing is shared between tool calls); only
//! the helper's start and the namespace creation move off the caller's path.
//! After one is used, the next is started on the background worker.

use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use super::wire::Identity;
use crate::error::Error;

/// A helper waiting for its plan.
pub(crate) struct Warm {
    pub child: std::process::Child,
    pub host_end: OwnedFd,
}

struct Slot {
    helper: PathBuf,
    identity: Identity,
    ready: Option<Warm>,
}

/// What to keep warm (set by `prewarm`) and the one that is ready, if any.
static SLOT: Mutex<Option<Slot>> = Mutex::new(None);

fn slot() -> std::sync::MutexGuard<'static, Option<Slot>> {
    SLOT.lock().unwrap_or_else(|p| p.into_inner())
}

/// Keep one sandbox for (`helper`, `identity`) warm from now on, starting the
/// first one now.
pub(crate) fn enable(helper: &Path, identity: &Identity) -> Result<(), Error> {
    let (child, host_end) = super::start_helper(helper, identity, super::base_root(identity))?;
    let old = slot().replace(Slot {
        helper: helper.to_path_buf(),
        identity: identity.clone(),
        ready: Some(Warm { child, host_end }),
    });
    retire(old.and_then(|s| s.ready));
    Ok(())
}

/// Take the ready sandbox if it was prepared for this helper and identity.
pub(crate) fn take(helper: &Path, identity: &Identity) -> Option<Warm> {
    let mut g = slot();
    let s = g.as_mut()?;
    if s.helper != helper || s.identity != *identity {
        return None;
    }
    s.ready.take()
}

/// Start the next warm sandbox on the background worker.
pub(crate) fn refill_soon() {
    super::background::run(Box::new(|| {
        let Some((helper, identity)) = slot()
            .as_ref()
            .filter(|s| s.ready.is_none())
            .map(|s| (s.helper.clone(), s.identity.clone()))
        else {
            return;
        };
        if let Ok((child, host_end)) =
            super::start_helper(&helper, &identity, super::base_root(&identity))
        {
            let mut g = slot();
            match g.as_mut() {
                Some(s) if s.ready.is_none() && s.helper == helper && s.identity == identity => {
                    s.ready = Some(Warm { child, host_end })
                }
                _ => {
                    drop(g);
                    retire(Some(Warm { child, host_end }));
                }
            }
        }
    }));
}

/// An unused warm sandbox: closing its channel makes the helper tear it down.
fn retire(w: Option<Warm>) {
    if let Some(w) = w {
        drop(w.host_end);
        super::Keeper::Helper(w.child).reap_soon();
    }
}
