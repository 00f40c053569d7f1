//! The "access" ring's Landlock layer (DESIGN.md): filesystem rights that mirror
//! the mount plan, TCP limited to the proxy ports, abstract-unix and signal
//! scoping.
//!
//! Three parts, split along the sandbox's process boundaries:
//!
//! - [`Rules`] (policy as data): computed from the mount plan by
//!   [`Rules::from_plan`]; pure, unit-tested without a kernel.
//! - [`PreparedRuleset::prepare`]: run by the sandbox init *after* `pivot_root`
//!   (rule paths are inside paths). Detects the best Landlock ABI the kernel
//!   has (capped at [`MAX_ABI`], the newest one whose rights we vetted), builds
//!   the ruleset with the `landlock` crate with every right a **hard
//!   requirement** (the crate's default best-effort mode silently drops rights,
//!   a fail-open we do not accept), opens each rule path `O_PATH`, and keeps
//!   only the ruleset descriptor.
//! - [`PreparedRuleset::restrict_raw`]: run by the last hop in the forked
//!   child; one raw `landlock_restrict_self(fd, flags)`, allocation-free.
//!
//! The sandbox init calls [`PreparedRuleset::prepare`] with
//! [`Rules::for_sandbox`] right after `pivot_root`; the last hop calls
//! [`PreparedRuleset::restrict_raw`] after `no_new_privs`.

mod error;
mod rules;
mod ruleset;
mod sys;

pub use error::LandlockError;
pub use rules::{Category, Rules, Settings};
pub use ruleset::{IfUnsupported, PreparedRuleset, MAX_ABI};
pub(crate) use sys::abi_version;
