//! The sandbox's filesystem: a plan computed on the host ([`plan`]) and carried
//! out inside the new mount namespace ([`apply`]).

pub(crate) mod apply;
pub mod plan;
