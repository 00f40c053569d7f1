//! The egress proxy: the only way out of a `Net::Proxy` sandbox. Sockets
//! created inside the sandbox's network namespace during setup are handed to
//! the host, where this module serves them (DESIGN.md, Network).
//!
//! Two front doors, both always on in `Net::Proxy` mode, one path behind
//! them (policy before any lookup, one lookup, checked address, relay):
//!
//! - **explicit**: `127.0.0.1:3128` (HTTP `CONNECT` and absolute-form) and
//!   `127.0.0.1:1080` (SOCKS5), named by the proxy environment variables
//!   (`HTTP_PROXY`, `ALL_PROXY`, … all set) for clients that honour them;
//! - **transparent**, for clients that do not (Node's `fetch` before Node 24,
//!   Go binaries, tools that resolve first): the sandbox's DNS server on
//!   `127.0.0.1:53` answers allowed names with stand-in addresses from
//!   `198.18.0.0/15`, local on the sandbox's `lo`, and connections to them on
//!   ports 80 and 443 are captured and proxied to the name they stand for.
//!   See [`dns`] (with the paragraph for README) and `transparent`.
//!
//! Modules:
//!
//! - [`policy`]: the domain allowlist as data and its decisions (pure).
//! - [`http`]: HTTP proxy requests (`CONNECT host:port`, absolute-form).
//! - [`socks5`]: the SOCKS5 handshake (domain names, `socks5h`).
//! - [`dns`]: the sandbox's DNS server and its stand-in address pool.
//! - [`listen`]: the sockets, made inside the sandbox's netns, and the pool
//!   made local there.
//! - `server`: the host side, serving those sockets on a tokio runtime.
//! - `transparent`: captured connections, mapped back to their names.

pub mod dns;
pub mod http;
pub mod listen;
pub mod policy;
mod server;
pub mod socks5;
mod splice;
mod transparent;

pub(crate) use server::{serve, serve_kinds, Served};
pub use server::{EventSink, ProxyEvent};
