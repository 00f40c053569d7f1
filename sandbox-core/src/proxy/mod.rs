//! The egress proxy: the only way out of a `Net::Proxy` sandbox. Listening
//! sockets created inside the sandbox's network namespace during setup are
//! handed to the host, where this module serves them (DESIGN.md, Network).
//!
//! - [`policy`]: the domain allowlist as data and its decisions (pure).
//! - [`http`]: HTTP proxy requests (`CONNECT host:port`, absolute-form).
//! - [`socks5`]: the SOCKS5 handshake (domain names, `socks5h`).
//! - [`listen`]: the listening sockets, made inside the sandbox's netns.
//! - `server`: the host side, serving those sockets on a tokio runtime.

pub mod http;
pub mod listen;
pub mod policy;
mod server;
pub mod socks5;

pub(crate) use server::{serve, Served};
pub use server::{EventSink, ProxyEvent};
