//! The SOCKS5 handshake (RFC 1928): the protocol front end of the sandbox's
//! `127.0.0.1:1080`.
//!
//! [`handshake`] negotiates the method and reads the request; it does no
//! policy and no networking. The caller then checks the target against the
//! policy, connects, and answers with [`reply`]: [`SUCCEEDED`] and the
//! bound address, a policy refusal's code, or — when the handshake itself
//! fails — [`Socks5Error::reply_code`]. After a success the connection is a
//! byte pipe.
//!
//! # Decisions
//!
//! - **No authentication only** (method `0x00`). A client that does not offer
//!   it gets `05 FF` and the connection fails; the handshake writes that
//!   itself, as it belongs to the method negotiation. Every reply to the
//!   request proper is written by the caller with [`reply`].
//! - **`CONNECT` only.** `BIND` and `UDP ASSOCIATE` (and unknown commands)
//!   get [`COMMAND_NOT_SUPPORTED`].
//! - **Whole request read before refusing**: the address and port are read
//!   even when the command is refused, so the client's bytes are consumed
//!   and closing the socket does not reset the connection before the client
//!   has read the reply. Only an unknown address type (whose length is
//!   unknowable) stops reading early.
//! - **Domain names** (`ATYP 3`, `socks5h`) are returned raw for the policy
//!   to check: 1 to 255 bytes of UTF-8 (IDNA is the policy's) with no
//!   control characters (NUL included). An empty, non-UTF-8 or
//!   control-character name gets [`HOST_UNREACHABLE`]: such a name has
//!   no host to reach, and the address type itself is supported. IP literals
//!   (`ATYP 1`, `4`) are returned as addresses; the policy decides.
//! - **Port 0** is refused with [`GENERAL_FAILURE`], as the HTTP front
//!   end refuses it.
//! - **SOCKS4 and 4a** clients get a SOCKS4 "request rejected" reply (after
//!   their request is read), so they fail with a clear error instead of a
//!   reset; any other version gets no reply.
//! - **One deadline** covers the whole handshake, so a client sending one
//!   byte at a time holds a connection for at most that long.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

// ---------------------------------------------------------------------------
// Protocol constants
// ---------------------------------------------------------------------------

// Reply codes (RFC 1928 §6, field `REP`).

/// Reply code: succeeded.
pub const SUCCEEDED: u8 = 0x00;
/// Reply code: general SOCKS server failure.
pub const GENERAL_FAILURE: u8 = 0x01;
/// Reply code: connection not allowed by ruleset (a policy refusal).
pub const NOT_ALLOWED: u8 = 0x02;
/// Reply code: network unreachable.
pub const NETWORK_UNREACHABLE: u8 = 0x03;
/// Reply code: host unreachable.
pub const HOST_UNREACHABLE: u8 = 0x04;
/// Reply code: connection refused.
pub const CONNECTION_REFUSED: u8 = 0x05;
/// Reply code: TTL expired (the usual answer to a connect timeout).
pub const TTL_EXPIRED: u8 = 0x06;
/// Reply code: command not supported.
pub const COMMAND_NOT_SUPPORTED: u8 = 0x07;
/// Reply code: address type not supported.
pub const ADDRESS_TYPE_NOT_SUPPORTED: u8 = 0x08;

const VERSION: u8 = 0x05;
const SOCKS4_VERSION: u8 = 0x04;
const NO_AUTH: u8 = 0x00;
const NO_ACCEPTABLE_METHOD: u8 = 0xFF;
const CMD_CONNECT: u8 = 0x01;
const ATYP_IPV4: u8 = 0x01;
const ATYP_DOMAIN: u8 = 0x03;
const ATYP_IPV6: u8 = 0x04;
/// SOCKS4 reply: version 0, code 91 "request rejected or failed".
const SOCKS4_REJECTED: [u8; 8] = [0x00, 0x5B, 0, 0, 0, 0, 0, 0];

// ---------------------------------------------------------------------------
// Requests
// ---------------------------------------------------------------------------

/// The target of a SOCKS5 `CONNECT`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// The host, as the client named it.
    pub host: Host,
    /// The port (1 to 65535).
    pub port: u16,
}

/// How the client named the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Host {
    /// A domain name (`ATYP 3`), raw: not lowercased, not IDNA-checked. It
    /// may also spell an IP literal; the policy decides.
    Domain(String),
    /// An IPv4 (`ATYP 1`) or IPv6 (`ATYP 4`) address.
    Ip(IpAddr),
}

impl std::fmt::Display for Host {
    /// The name as sent, or the address without brackets (`2001:db8::1`), as
    /// the HTTP front end returns hosts.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Host::Domain(name) => f.write_str(name),
            Host::Ip(ip) => ip.fmt(f),
        }
    }
}

// ---------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------

/// Why a handshake failed. [`Socks5Error::reply_code`] says what to answer.
#[derive(Debug, thiserror::Error)]
pub enum Socks5Error {
    /// The client closed the connection before the handshake was complete.
    #[error("client closed the connection in the middle of the SOCKS5 handshake")]
    Truncated,
    /// Reading from or writing to the client failed.
    #[error("SOCKS5 handshake I/O: {0}")]
    Io(std::io::Error),
    /// The handshake did not complete within the deadline.
    #[error("SOCKS5 handshake not completed within {0:?}")]
    Timeout(Duration),
    /// The greeting's version is neither 5 nor 4: not a SOCKS client.
    #[error("not a SOCKS5 client (version byte {0:#04x})")]
    BadVersion(u8),
    /// A SOCKS4 or 4a client (refused with a SOCKS4 reply).
    #[error("SOCKS4 is not supported: use SOCKS5 (socks5h:// for names)")]
    Socks4,
    /// The client does not offer "no authentication" (answered `05 FF`).
    #[error("client offers no acceptable authentication method (only no-auth is supported)")]
    NoAcceptableMethod,
    /// The request is malformed (bad version, reserved byte, port 0).
    #[error("malformed SOCKS5 request: {0}")]
    Malformed(&'static str),
    /// A command other than `CONNECT`.
    #[error("SOCKS5 command {0:#04x} not supported (only CONNECT)")]
    CommandNotSupported(u8),
    /// An address type other than IPv4, domain name or IPv6.
    #[error("SOCKS5 address type {0:#04x} not supported")]
    AddressTypeNotSupported(u8),
    /// The domain name is unusable.
    #[error("bad domain name in SOCKS5 request: {0}")]
    BadDomain(&'static str),
}

impl From<std::io::Error> for Socks5Error {
    fn from(e: std::io::Error) -> Self {
        if e.kind() == std::io::ErrorKind::UnexpectedEof {
            Socks5Error::Truncated
        } else {
            Socks5Error::Io(e)
        }
    }
}

impl Socks5Error {
    /// The reply code to send with [`reply`], or `None` when none is due:
    /// before the request was read (the greeting's answer, if any, was sent
    /// by [`handshake`]), or when the client is gone.
    pub fn reply_code(&self) -> Option<u8> {
        match self {
            Socks5Error::Truncated
            | Socks5Error::Io(_)
            | Socks5Error::Timeout(_)
            | Socks5Error::BadVersion(_)
            | Socks5Error::Socks4
            | Socks5Error::NoAcceptableMethod => None,
            Socks5Error::Malformed(_) => Some(GENERAL_FAILURE),
            Socks5Error::CommandNotSupported(_) => Some(COMMAND_NOT_SUPPORTED),
            Socks5Error::AddressTypeNotSupported(_) => Some(ADDRESS_TYPE_NOT_SUPPORTED),
            Socks5Error::BadDomain(_) => Some(HOST_UNREACHABLE),
        }
    }

    /// A stable, kebab-case name for this failure, for events.
    pub fn reason_name(&self) -> &'static str {
        match self {
            Socks5Error::Truncated => "truncated",
            Socks5Error::Io(_) => "io",
            Socks5Error::Timeout(_) => "handshake-timeout",
            Socks5Error::BadVersion(_) => "bad-version",
            Socks5Error::Socks4 => "socks4",
            Socks5Error::NoAcceptableMethod => "no-acceptable-method",
            Socks5Error::Malformed(_) => "malformed-request",
            Socks5Error::CommandNotSupported(_) => "command-not-supported",
            Socks5Error::AddressTypeNotSupported(_) => "address-type-not-supported",
            Socks5Error::BadDomain(_) => "bad-domain",
        }
    }
}

// ---------------------------------------------------------------------------
// The handshake
// ---------------------------------------------------------------------------

/// Runs the server side of the SOCKS5 handshake within `timeout`: method
/// negotiation (answered here), then the request (answered by the caller
/// with [`reply`]).
pub async fn handshake<S>(stream: &mut S, timeout: Duration) -> Result<Request, Socks5Error>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let exchange = async {
        negotiate_method(stream).await?;
        read_request(stream).await
    };
    match tokio::time::timeout(timeout, exchange).await {
        Ok(result) => result,
        Err(_elapsed) => Err(Socks5Error::Timeout(timeout)),
    }
}

/// The greeting: `VER NMETHODS METHODS...`, answered `05 00` or `05 FF`.
async fn negotiate_method<S>(stream: &mut S) -> Result<(), Socks5Error>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    match stream.read_u8().await? {
        VERSION => {}
        SOCKS4_VERSION => return refuse_socks4(stream).await,
        other => return Err(Socks5Error::BadVersion(other)),
    }
    let count = usize::from(stream.read_u8().await?);
    let mut methods = [0u8; 255];
    stream.read_exact(&mut methods[..count]).await?;

    let offered = methods[..count].contains(&NO_AUTH);
    let chosen = if offered {
        NO_AUTH
    } else {
        NO_ACCEPTABLE_METHOD
    };
    stream.write_all(&[VERSION, chosen]).await?;
    stream.flush().await?;
    if offered {
        Ok(())
    } else {
        Err(Socks5Error::NoAcceptableMethod)
    }
}

/// The request: `VER CMD RSV ATYP DST.ADDR DST.PORT`.
async fn read_request<S>(stream: &mut S) -> Result<Request, Socks5Error>
where
    S: AsyncRead + Unpin,
{
    let mut fixed = [0u8; 4];
    stream.read_exact(&mut fixed).await?;
    let [version, command, reserved, address_type] = fixed;
    if version != VERSION {
        return Err(Socks5Error::Malformed("request version is not 5"));
    }
    if reserved != 0 {
        return Err(Socks5Error::Malformed("reserved byte is not 0"));
    }

    let address = read_address(stream, address_type).await?;
    let port = stream.read_u16().await?;

    if command != CMD_CONNECT {
        return Err(Socks5Error::CommandNotSupported(command));
    }
    let host = match address {
        RawAddress::Ip(ip) => Host::Ip(ip),
        RawAddress::Domain(name) => Host::Domain(check_domain(name)?),
    };
    if port == 0 {
        return Err(Socks5Error::Malformed("port 0"));
    }
    Ok(Request { host, port })
}

/// `DST.ADDR` as read, before the domain name is checked.
enum RawAddress {
    Ip(IpAddr),
    Domain(Vec<u8>),
}

async fn read_address<S>(stream: &mut S, address_type: u8) -> Result<RawAddress, Socks5Error>
where
    S: AsyncRead + Unpin,
{
    match address_type {
        ATYP_IPV4 => {
            let mut octets = [0u8; 4];
            stream.read_exact(&mut octets).await?;
            Ok(RawAddress::Ip(Ipv4Addr::from(octets).into()))
        }
        ATYP_IPV6 => {
            let mut octets = [0u8; 16];
            stream.read_exact(&mut octets).await?;
            Ok(RawAddress::Ip(Ipv6Addr::from(octets).into()))
        }
        ATYP_DOMAIN => {
            let len = usize::from(stream.read_u8().await?);
            let mut name = vec![0u8; len];
            stream.read_exact(&mut name).await?;
            Ok(RawAddress::Domain(name))
        }
        other => Err(Socks5Error::AddressTypeNotSupported(other)),
    }
}

/// A domain name as the policy receives it: non-empty UTF-8, no control
/// characters.
fn check_domain(name: Vec<u8>) -> Result<String, Socks5Error> {
    if name.is_empty() {
        return Err(Socks5Error::BadDomain("empty"));
    }
    if name.contains(&0) {
        return Err(Socks5Error::BadDomain("embedded NUL"));
    }
    if name.iter().any(u8::is_ascii_control) {
        return Err(Socks5Error::BadDomain("control character"));
    }
    String::from_utf8(name).map_err(|_| Socks5Error::BadDomain("not UTF-8"))
}

// ---------------------------------------------------------------------------
// SOCKS4 refusal
// ---------------------------------------------------------------------------

/// Reads the rest of a SOCKS4/4a request (`CD DSTPORT DSTIP USERID NUL
/// [DOMAIN NUL]`) and rejects it.
async fn refuse_socks4<S>(stream: &mut S) -> Result<(), Socks5Error>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut fixed = [0u8; 7];
    stream.read_exact(&mut fixed).await?;
    skip_to_nul(stream).await?; // USERID
    let ip = &fixed[3..7];
    if ip[..3] == [0, 0, 0] && ip[3] != 0 {
        skip_to_nul(stream).await?; // SOCKS4a: the domain name
    }
    stream.write_all(&SOCKS4_REJECTED).await?;
    stream.flush().await?;
    Err(Socks5Error::Socks4)
}

/// Consumes a NUL-terminated field of at most 255 bytes.
async fn skip_to_nul<S>(stream: &mut S) -> Result<(), Socks5Error>
where
    S: AsyncRead + Unpin,
{
    for _ in 0..=255 {
        if stream.read_u8().await? == 0 {
            return Ok(());
        }
    }
    Err(Socks5Error::Socks4)
}

// ---------------------------------------------------------------------------
// Replies
// ---------------------------------------------------------------------------

/// Writes the reply to the request: `05 code 00 ATYP BND.ADDR BND.PORT`,
/// with `0.0.0.0:0` when `bound` is `None`.
pub async fn reply<S>(stream: &mut S, code: u8, bound: Option<SocketAddr>) -> std::io::Result<()>
where
    S: AsyncWrite + Unpin,
{
    stream.write_all(&encode_reply(code, bound)).await?;
    stream.flush().await
}

fn encode_reply(code: u8, bound: Option<SocketAddr>) -> Vec<u8> {
    let bound = bound.unwrap_or(SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0)));
    let mut out = Vec::with_capacity(22);
    out.extend_from_slice(&[VERSION, code, 0x00]);
    match bound.ip() {
        IpAddr::V4(ip) => {
            out.push(ATYP_IPV4);
            out.extend_from_slice(&ip.octets());
        }
        IpAddr::V6(ip) => {
            out.push(ATYP_IPV6);
            out.extend_from_slice(&ip.octets());
        }
    }
    out.extend_from_slice(&bound.port().to_be_bytes());
    out
}

// ---------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::DuplexStream;

    const TIMEOUT: Duration = Duration::from_secs(5);
    const GREETING: &[u8] = &[5, 1, 0];

    /// A domain `CONNECT` to example.com:443 after the greeting.
    fn domain_handshake() -> Vec<u8> {
        let mut input = GREETING.to_vec();
        input.extend_from_slice(&[5, 1, 0, 3, 11]);
        input.extend_from_slice(b"example.com");
        input.extend_from_slice(&443u16.to_be_bytes());
        input
    }

    /// Sends `input`, closes the client's writing side, runs the handshake;
    /// returns its result, what the server wrote, and what it left unread.
    async fn run(input: &[u8]) -> (Result<Request, Socks5Error>, Vec<u8>, Vec<u8>) {
        let (mut client, mut server) = tokio::io::duplex(4096);
        client.write_all(input).await.unwrap();
        client.shutdown().await.unwrap();
        let result = handshake(&mut server, TIMEOUT).await;
        let unread = read_all(&mut server).await;
        drop(server);
        let written = read_all(&mut client).await;
        (result, written, unread)
    }

    async fn read_all(stream: &mut DuplexStream) -> Vec<u8> {
        let mut out = Vec::new();
        stream.read_to_end(&mut out).await.unwrap();
        out
    }

    // -- Success -------------------------------------------------------------

    #[tokio::test]
    async fn connect_to_a_domain() {
        let (result, written, unread) = run(&domain_handshake()).await;
        let want = Request {
            host: Host::Domain("example.com".into()),
            port: 443,
        };
        assert_eq!(result.unwrap(), want);
        assert_eq!(written, [5, 0]);
        assert!(unread.is_empty());
    }

    #[tokio::test]
    async fn connect_to_ipv4_and_ipv6() {
        let (result, written, _) = run(&[5, 1, 0, 5, 1, 0, 1, 192, 0, 2, 7, 0x1F, 0x90]).await;
        assert_eq!(written, [5, 0]);
        assert_eq!(
            result.unwrap(),
            Request {
                host: Host::Ip("192.0.2.7".parse().unwrap()),
                port: 8080,
            }
        );

        let v6: Ipv6Addr = "2001:db8::1".parse().unwrap();
        let mut input = vec![5, 1, 0, 5, 1, 0, 4];
        input.extend_from_slice(&v6.octets());
        input.extend_from_slice(&[0x01, 0xBB]);
        let (result, _, _) = run(&input).await;
        assert_eq!(
            result.unwrap(),
            Request {
                host: Host::Ip(v6.into()),
                port: 443,
            }
        );
    }

    #[test]
    fn hosts_display_raw() {
        assert_eq!(
            Host::Domain("Example.COM".into()).to_string(),
            "Example.COM"
        );
        let v6: IpAddr = "2001:db8::1".parse().unwrap();
        assert_eq!(Host::Ip(v6).to_string(), "2001:db8::1");
        assert_eq!(Host::Ip([192, 0, 2, 7].into()).to_string(), "192.0.2.7");
    }

    #[tokio::test]
    async fn no_auth_among_other_methods() {
        let mut input = vec![5, 3, 2, 1, 0];
        input.extend_from_slice(&domain_handshake()[GREETING.len()..]);
        let (result, written, _) = run(&input).await;
        assert!(result.is_ok());
        assert_eq!(written, [5, 0]);
    }

    #[tokio::test]
    async fn keeps_bytes_after_the_request() {
        let mut input = domain_handshake();
        input.extend_from_slice(b"early data");
        let (result, _, unread) = run(&input).await;
        assert!(result.is_ok());
        assert_eq!(unread, b"early data");
    }

    #[tokio::test]
    async fn utf8_names_pass_raw() {
        let name = "Bücher.Example";
        let mut input = vec![5, 1, 0, 5, 1, 0, 3, name.len() as u8];
        input.extend_from_slice(name.as_bytes());
        input.extend_from_slice(&[0, 80]);
        let (result, _, _) = run(&input).await;
        assert_eq!(result.unwrap().host, Host::Domain(name.into()));
    }

    // -- Refusals -------------------------------------------------------------

    #[tokio::test]
    async fn refuses_without_no_auth() {
        for greeting in [&[5, 1, 2][..], &[5, 2, 1, 2], &[5, 0]] {
            let mut input = greeting.to_vec();
            input.extend_from_slice(&domain_handshake()[GREETING.len()..]);
            let (result, written, _) = run(&input).await;
            let e = result.unwrap_err();
            assert!(
                matches!(e, Socks5Error::NoAcceptableMethod),
                "{greeting:?}: {e}"
            );
            assert_eq!(e.reply_code(), None);
            assert_eq!(written, [5, 0xFF]);
        }
    }

    #[tokio::test]
    async fn refuses_bind_and_udp_after_reading_the_request() {
        for command in [2, 3, 0, 9] {
            let mut input = domain_handshake();
            input[GREETING.len() + 1] = command;
            input.push(b'!');
            let (result, written, unread) = run(&input).await;
            let e = result.unwrap_err();
            assert!(matches!(e, Socks5Error::CommandNotSupported(c) if c == command));
            assert_eq!(e.reply_code(), Some(COMMAND_NOT_SUPPORTED));
            assert_eq!(written, [5, 0], "the caller sends the request's reply");
            assert_eq!(unread, b"!", "the whole request was consumed");
        }
    }

    #[tokio::test]
    async fn refuses_bad_versions() {
        let (result, written, _) = run(&[6, 1, 0]).await;
        assert!(matches!(result, Err(Socks5Error::BadVersion(6))));
        assert!(written.is_empty());
        let (result, written, _) = run(b"GET / HTTP/1.1\r\n\r\n").await;
        assert!(matches!(result, Err(Socks5Error::BadVersion(b'G'))));
        assert!(written.is_empty());

        let mut input = domain_handshake();
        input[GREETING.len()] = 4;
        let (result, written, _) = run(&input).await;
        let e = result.unwrap_err();
        assert!(matches!(e, Socks5Error::Malformed(_)));
        assert_eq!(e.reply_code(), Some(GENERAL_FAILURE));
        assert_eq!(written, [5, 0]);

        let mut input = domain_handshake();
        input[GREETING.len() + 2] = 1;
        let (result, _, _) = run(&input).await;
        assert_eq!(result.unwrap_err().reply_code(), Some(GENERAL_FAILURE));
    }

    #[tokio::test]
    async fn refuses_socks4_and_4a_with_a_socks4_reply() {
        // SOCKS4: CONNECT 192.0.2.7:80, user "u".
        let socks4 = [4, 1, 0, 80, 192, 0, 2, 7, b'u', 0];
        // SOCKS4a: CONNECT example.com:80 (DSTIP 0.0.0.1), empty user.
        let mut socks4a = vec![4, 1, 0, 80, 0, 0, 0, 1, 0];
        socks4a.extend_from_slice(b"example.com\0");
        for input in [&socks4[..], &socks4a] {
            let mut input = input.to_vec();
            input.push(b'!');
            let (result, written, unread) = run(&input).await;
            let e = result.unwrap_err();
            assert!(matches!(e, Socks5Error::Socks4), "{e}");
            assert_eq!(e.reply_code(), None);
            assert_eq!(written, SOCKS4_REJECTED);
            assert_eq!(unread, b"!");
        }
    }

    #[tokio::test]
    async fn refuses_bad_domains() {
        for name in [
            &b""[..],
            b"exa\0mple.com",
            b"example.com\0",
            b"a\r\nb",
            b"caf\xe9.com",
        ] {
            let mut input = vec![5, 1, 0, 5, 1, 0, 3, name.len() as u8];
            input.extend_from_slice(name);
            input.extend_from_slice(&[1, 187]);
            let (result, _, unread) = run(&input).await;
            let e = result.unwrap_err();
            assert!(matches!(e, Socks5Error::BadDomain(_)), "{name:?}: {e}");
            assert_eq!(e.reply_code(), Some(HOST_UNREACHABLE));
            assert!(unread.is_empty());
        }
    }

    #[tokio::test]
    async fn refuses_unknown_address_types_and_port_zero() {
        let (result, _, _) = run(&[5, 1, 0, 5, 1, 0, 2, 1, 2, 3, 4, 0, 80]).await;
        let e = result.unwrap_err();
        assert!(matches!(e, Socks5Error::AddressTypeNotSupported(2)));
        assert_eq!(e.reply_code(), Some(ADDRESS_TYPE_NOT_SUPPORTED));

        let (result, _, _) = run(&[5, 1, 0, 5, 1, 0, 1, 192, 0, 2, 7, 0, 0]).await;
        let e = result.unwrap_err();
        assert!(matches!(e, Socks5Error::Malformed("port 0")));
        assert_eq!(e.reply_code(), Some(GENERAL_FAILURE));
    }

    // -- Truncation and deadlines -----------------------------------------------

    fn valid_handshakes() -> Vec<Vec<u8>> {
        let v4 = vec![5, 2, 2, 0, 5, 1, 0, 1, 10, 0, 0, 1, 0, 80];
        let mut v6 = vec![5, 1, 0, 5, 1, 0, 4];
        v6.extend_from_slice(&[0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
        v6.extend_from_slice(&[0, 80]);
        vec![domain_handshake(), v4, v6]
    }

    #[tokio::test]
    async fn every_prefix_closed_early_is_an_error() {
        for full in valid_handshakes() {
            assert!(run(&full).await.0.is_ok());
            for len in 0..full.len() {
                let (result, _, _) = run(&full[..len]).await;
                let e = result.unwrap_err();
                assert!(matches!(e, Socks5Error::Truncated), "prefix {len}: {e}");
                assert_eq!(e.reply_code(), None);
            }
        }
    }

    #[tokio::test]
    async fn every_prefix_left_hanging_times_out() {
        let timeout = Duration::from_millis(20);
        let started = std::time::Instant::now();
        let mut runs = 0u32;
        for full in valid_handshakes() {
            for len in 0..full.len() {
                let (mut client, mut server) = tokio::io::duplex(4096);
                client.write_all(&full[..len]).await.unwrap();
                let result = handshake(&mut server, timeout).await;
                assert!(
                    matches!(result, Err(Socks5Error::Timeout(_))),
                    "prefix {len}"
                );
                runs += 1;
            }
        }
        // Each run is bounded by its deadline (generously, for slow machines).
        assert!(started.elapsed() < timeout * runs * 10);
    }

    // -- Replies ------------------------------------------------------------------

    #[tokio::test]
    async fn reply_encoding() {
        let cases: [(u8, Option<SocketAddr>, &[u8]); 3] = [
            (SUCCEEDED, None, &[5, 0, 0, 1, 0, 0, 0, 0, 0, 0]),
            (
                SUCCEEDED,
                Some("192.0.2.7:8080".parse().unwrap()),
                &[5, 0, 0, 1, 192, 0, 2, 7, 0x1F, 0x90],
            ),
            (
                NOT_ALLOWED,
                Some("[2001:db8::1]:443".parse().unwrap()),
                &[
                    5, 2, 0, 4, 0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0x01, 0xBB,
                ],
            ),
        ];
        for (code, bound, want) in cases {
            let (mut client, mut server) = tokio::io::duplex(64);
            reply(&mut server, code, bound).await.unwrap();
            drop(server);
            assert_eq!(read_all(&mut client).await, want);
        }
    }

    // -- Robustness ---------------------------------------------------------------

    /// A small deterministic generator, so the no-panic sweep needs no crate.
    struct XorShift(u64);

    impl XorShift {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
    }

    /// Random bytes and mutated valid handshakes: every one ends in a result,
    /// never a panic.
    #[tokio::test]
    async fn arbitrary_input_never_panics() {
        let seeds = valid_handshakes();
        let mut rng = XorShift(0x2545_f491_4f6c_dd1d);
        for round in 0..3000 {
            let mut input = seeds[round % seeds.len()].clone();
            match rng.next() % 3 {
                0 => {
                    let len = (rng.next() % 64) as usize;
                    input = (0..len).map(|_| rng.next() as u8).collect();
                    // Mostly speak SOCKS5 so the request phase is reached.
                    if let Some(first) = input.first_mut() {
                        *first = [5, 5, 5, 4][(rng.next() % 4) as usize];
                    }
                }
                1 => {
                    for _ in 0..1 + rng.next() % 3 {
                        let i = (rng.next() as usize) % input.len();
                        input[i] = rng.next() as u8;
                    }
                }
                _ => input.truncate((rng.next() as usize) % input.len()),
            }
            let _ = run(&input).await;
        }
    }
}
