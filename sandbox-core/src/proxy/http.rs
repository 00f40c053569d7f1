//! HTTP proxy requests: the protocol front end of the sandbox's `127.0.0.1:3128`.
//!
//! [`read_request`] reads one request head from a client connection and
//! returns either a tunnel request (`CONNECT host:port`) or a plain-HTTP
//! request in absolute form (`GET http://host/path`) already rewritten for the
//! origin server. It does no policy and no networking. The caller checks the
//! host against the policy, connects, writes [`CONNECT_OK`] (tunnel) or the
//! rewritten head (forward), then relays bytes both ways, starting with the
//! request's [`leftover`](Request::leftover) bytes. Refusals are written with
//! [`response`] or [`HttpError::response`].
//!
//! # Decisions
//!
//! - **One request per connection.** A forwarded request is sent upstream with
//!   `Connection: close`, and the client connection becomes a byte pipe to
//!   that one origin: the proxy never reads a second request from it. So the
//!   proxy needs no body framing, no response parsing and no connection pool.
//! - **Framing is still checked.** Because bodies are relayed as raw bytes
//!   over a connection no other client shares, a request with ambiguous
//!   framing cannot smuggle anything past the policy: whatever follows the
//!   head goes to the same, already-checked origin the client could reach
//!   anyway. It is refused (400) all the same — `Transfer-Encoding` together
//!   with `Content-Length`, conflicting `Content-Length`s, a
//!   `Transfer-Encoding` whose last coding is not `chunked`, or one in
//!   HTTP/1.0 — so the proxy never hands an origin a request that origin may
//!   frame differently from what the client meant. A repeated but equal
//!   `Content-Length` is sent upstream once.
//! - **The URI names the target.** In absolute form the URI's authority is
//!   what the policy checks and where the proxy connects, so `Host` is
//!   replaced by that authority, so the request line and `Host` agree. This
//!   keeps the absolute form honest; it is not a virtual-host fence: a
//!   `CONNECT` tunnel (or a captured connection) to an allowed name carries
//!   whatever `Host` and TLS SNI the client writes, so an allowed name means
//!   every virtual host and CDN tenant served from its addresses.
//! - **Hop-by-hop headers are removed**: `Connection` and every header it
//!   names, `Proxy-Connection`, `Keep-Alive`, `Proxy-Authorization` (never
//!   leaks proxy credentials to the origin), `Proxy-Authenticate`, `TE` and
//!   `Upgrade`. Without `Upgrade`, plain-HTTP protocol upgrades (`ws://`) are
//!   not forwarded; WebSocket clients use `CONNECT`. `Trailer` is end-to-end
//!   (RFC 9110 §6.6.2) and kept. A `Connection` header naming `Host`,
//!   `Content-Length` or `Transfer-Encoding` is refused: those are never
//!   per-hop.
//! - **Refused shapes**: `https://` in absolute form (501: the proxy does not
//!   terminate TLS, clients must `CONNECT`); other schemes (501); userinfo
//!   in the URI (`http://a@b/`, 400: credentials in a URI are a classic
//!   "which host is it" confusion); origin-form `GET /` (400: this is a
//!   forward proxy, transparent interception would be a separate mode);
//!   asterisk-form (400); unbracketed IPv6, IPv6 zone ids (400).
//! - **Hosts are returned raw** (case, IDNA and IP-literal checks are the
//!   policy's): an IPv6 literal without its brackets, a port of 1 to 65535
//!   written in 1 to 5 digits. `CONNECT` requires a port; `http://` defaults
//!   to 80. An empty port (`host:`) is refused rather than defaulted.
//! - **Line endings**: bare LF is accepted as httparse does (RFC 9112 §2.2
//!   allows a recipient to); a bare CR is refused. The head sent upstream is
//!   re-serialised with CRLF, so the origin never sees the client's line
//!   endings and cannot disagree with the proxy over where the head ends.
//!   Whitespace before a header's colon and obsolete line folding are
//!   refused (httparse).
//! - **Header values are bytes**: non-UTF-8 values (obs-text) pass through
//!   unchanged.
//! - **Limits** ([`Limits`]): head of at most 16 KiB and 100 header fields,
//!   received within 10 s. The deadline covers the whole head, so a client
//!   dripping one byte at a time (slowloris) holds a connection for at most
//!   that long; the head is parsed only once a blank line has arrived, so
//!   dripping costs no repeated parsing either.

use std::net::Ipv6Addr;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt};

// ---------------------------------------------------------------------------
// Limits
// ---------------------------------------------------------------------------

/// Bounds on one request head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Largest request head in bytes, request line and final blank line
    /// included (default 16 KiB). Larger heads are refused with 431.
    pub max_head: usize,
    /// Most header fields (default 100). More are refused with 431.
    pub max_headers: usize,
    /// Time allowed for the whole head to arrive (default 10 s). Slower
    /// heads are refused with 408.
    pub head_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_head: 16 * 1024,
            max_headers: 100,
            head_timeout: Duration::from_secs(10),
        }
    }
}

// ---------------------------------------------------------------------------
// Requests
// ---------------------------------------------------------------------------

/// One proxy request, as read by [`read_request`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// What the client asks for.
    pub kind: RequestKind,
    /// Bytes the client sent after the head: an early TLS ClientHello after
    /// `CONNECT`, the start of the body (or anything pipelined) after a
    /// forward request. To be relayed to the target first (after `head`).
    pub leftover: Vec<u8>,
}

/// The two kinds of proxy request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RequestKind {
    /// `CONNECT host:port`: open a tunnel, answer [`CONNECT_OK`], relay.
    Connect {
        /// The target host as written: a name, an IPv4 literal, or an IPv6
        /// literal without its brackets. Not normalised.
        host: String,
        /// The target port (1 to 65535).
        port: u16,
    },
    /// An absolute-form request (`GET http://host/path`) to forward.
    Forward {
        /// The request method, as sent (`GET`, `POST`, ...).
        method: String,
        /// The target host, raw as for `Connect`.
        host: String,
        /// The target port (80 unless the URI names one).
        port: u16,
        /// The request head to send to the origin server: origin-form
        /// request line, `Host` set to the URI's authority, hop-by-hop
        /// headers removed, `Connection: close`, final blank line.
        head: Vec<u8>,
    },
}

impl Request {
    /// The target host, raw (an IPv6 literal without brackets).
    pub fn host(&self) -> &str {
        match &self.kind {
            RequestKind::Connect { host, .. } | RequestKind::Forward { host, .. } => host,
        }
    }

    /// The target port.
    pub fn port(&self) -> u16 {
        match &self.kind {
            RequestKind::Connect { port, .. } | RequestKind::Forward { port, .. } => *port,
        }
    }
}

// ---------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------

/// Why a request was not accepted. [`HttpError::status`] is the response
/// status, [`HttpError::reason_name`] a stable name for events and the
/// `X-Proxy-Error` header.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// The client closed the connection before sending anything.
    #[error("client closed the connection before sending a request")]
    Closed,
    /// The client closed its side in the middle of the head.
    #[error("connection closed in the middle of the request head")]
    Truncated,
    /// Reading from the client failed.
    #[error("reading the request: {0}")]
    Io(#[from] std::io::Error),
    /// The head did not arrive within [`Limits::head_timeout`].
    #[error("request head not received within {0:?}")]
    HeadTimeout(Duration),
    /// The head is larger than [`Limits::max_head`] bytes.
    #[error("request head larger than {0} bytes")]
    HeadTooLarge(usize),
    /// The head has more than [`Limits::max_headers`] fields.
    #[error("more than {0} header fields")]
    TooManyHeaders(usize),
    /// The head is not valid HTTP/1.x.
    #[error("malformed request head: {0}")]
    Parse(httparse::Error),
    /// The head parses but is not a proxy request we serve.
    #[error("malformed request: {0}")]
    Malformed(&'static str),
    /// An origin-form request (`GET /path`): the client does not know it
    /// talks to a proxy.
    #[error(
        "origin-form request (GET /path): this is a forward proxy, \
         send absolute-form (GET http://host/path) or CONNECT host:port"
    )]
    OriginForm,
    /// `https://` in absolute form.
    #[error("https:// URI in a forwarded request: use CONNECT host:443 for TLS")]
    HttpsNeedsConnect,
    /// A scheme other than `http` or `https`.
    #[error("unsupported URI scheme: only http:// is forwarded (and CONNECT for the rest)")]
    UnsupportedScheme,
    /// Userinfo (`user@`) in the URI or `CONNECT` authority.
    #[error("credentials (userinfo@) in the request target are refused")]
    Userinfo,
    /// The target's host or port is unusable.
    #[error("bad request target: {0}")]
    BadAuthority(&'static str),
    /// The body's length is ambiguous (see the module docs).
    #[error("ambiguous request framing: {0}")]
    AmbiguousFraming(&'static str),
}

impl HttpError {
    /// The HTTP status to answer with: 400, 408, 431 or 501.
    pub fn status(&self) -> u16 {
        match self {
            HttpError::HeadTimeout(_) => 408,
            HttpError::HeadTooLarge(_) | HttpError::TooManyHeaders(_) => 431,
            HttpError::HttpsNeedsConnect | HttpError::UnsupportedScheme => 501,
            HttpError::Closed
            | HttpError::Truncated
            | HttpError::Io(_)
            | HttpError::Parse(_)
            | HttpError::Malformed(_)
            | HttpError::OriginForm
            | HttpError::Userinfo
            | HttpError::BadAuthority(_)
            | HttpError::AmbiguousFraming(_) => 400,
        }
    }

    /// A stable, kebab-case name for this refusal.
    pub fn reason_name(&self) -> &'static str {
        match self {
            HttpError::Closed => "closed",
            HttpError::Truncated => "truncated",
            HttpError::Io(_) => "io",
            HttpError::HeadTimeout(_) => "head-timeout",
            HttpError::HeadTooLarge(_) => "head-too-large",
            HttpError::TooManyHeaders(_) => "too-many-headers",
            HttpError::Parse(_) | HttpError::Malformed(_) => "malformed-request",
            HttpError::OriginForm => "origin-form",
            HttpError::HttpsNeedsConnect => "https-needs-connect",
            HttpError::UnsupportedScheme => "unsupported-scheme",
            HttpError::Userinfo => "userinfo",
            HttpError::BadAuthority(_) => "bad-target",
            HttpError::AmbiguousFraming(_) => "ambiguous-framing",
        }
    }

    /// The complete response to write to the client, or `None` when there is
    /// nobody to answer (the client closed first, or the connection failed).
    pub fn response(&self) -> Option<Vec<u8>> {
        match self {
            HttpError::Closed | HttpError::Io(_) => None,
            _ => Some(response(
                self.status(),
                Some(self.reason_name()),
                &format!("{self}\n"),
            )),
        }
    }
}

// ---------------------------------------------------------------------------
// Responses
// ---------------------------------------------------------------------------

/// The answer to an accepted `CONNECT`, after which the connection is a tunnel.
pub const CONNECT_OK: &[u8] = b"HTTP/1.1 200 Connection established\r\n\r\n";

/// A complete plain-text response that closes the connection, such as
///
/// ```text
/// HTTP/1.1 403 Forbidden
/// X-Proxy-Error: not-allowed
/// Content-Type: text/plain; charset=utf-8
/// Content-Length: 26
/// Connection: close
///
/// example.com is not allowed
/// ```
///
/// `reason_header` becomes `X-Proxy-Error`; characters that cannot appear in
/// a header value (control characters, non-ASCII) are dropped from it.
pub fn response(status: u16, reason_header: Option<&str>, body: &str) -> Vec<u8> {
    let mut head = format!("HTTP/1.1 {status} {}\r\n", reason_phrase(status));
    if let Some(reason) = reason_header {
        let clean: String = reason
            .chars()
            .filter(|c| c.is_ascii_graphic() || *c == ' ')
            .collect();
        head.push_str(&format!("X-Proxy-Error: {clean}\r\n"));
    }
    head.push_str("Content-Type: text/plain; charset=utf-8\r\n");
    head.push_str(&format!("Content-Length: {}\r\n", body.len()));
    head.push_str("Connection: close\r\n\r\n");
    let mut out = head.into_bytes();
    out.extend_from_slice(body.as_bytes());
    out
}

/// The standard reason phrase for the statuses a proxy sends.
fn reason_phrase(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        407 => "Proxy Authentication Required",
        408 => "Request Timeout",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        505 => "HTTP Version Not Supported",
        _ => "Error",
    }
}

// ---------------------------------------------------------------------------
// Reading the head
// ---------------------------------------------------------------------------

/// Reads one request head from `stream` within `limits` and returns it
/// parsed, with any bytes read past the head kept in the request.
pub async fn read_request<S>(stream: &mut S, limits: &Limits) -> Result<Request, HttpError>
where
    S: AsyncRead + Unpin,
{
    match tokio::time::timeout(limits.head_timeout, read_head(stream, limits)).await {
        Ok(result) => result,
        Err(_elapsed) => Err(HttpError::HeadTimeout(limits.head_timeout)),
    }
}

/// The read loop: at most `max_head` bytes, parsed only once a blank line
/// (the end of a head) has arrived.
async fn read_head<S>(stream: &mut S, limits: &Limits) -> Result<Request, HttpError>
where
    S: AsyncRead + Unpin,
{
    let mut buf: Vec<u8> = Vec::with_capacity(limits.max_head.min(4096));
    let mut chunk = [0u8; 4096];
    // Where the request line starts: RFC 9112 §2.2 lets empty lines precede
    // it, and they must not count as the blank line that ends the head.
    let mut content_start: Option<usize> = None;
    loop {
        let room = limits.max_head - buf.len().min(limits.max_head);
        if room == 0 {
            return Err(HttpError::HeadTooLarge(limits.max_head));
        }
        let want = room.min(chunk.len());
        let n = stream.read(&mut chunk[..want]).await?;
        if n == 0 {
            return Err(if buf.is_empty() {
                HttpError::Closed
            } else {
                HttpError::Truncated
            });
        }
        let scan_from = buf.len().saturating_sub(3);
        buf.extend_from_slice(&chunk[..n]);

        if content_start.is_none() {
            content_start = buf.iter().position(|b| *b != b'\r' && *b != b'\n');
        }
        let Some(start) = content_start else { continue };
        if !has_blank_line(&buf[scan_from.max(start)..]) {
            continue;
        }
        if let Some((head_len, kind)) = parse_head(&buf, limits)? {
            let leftover = buf.split_off(head_len);
            return Ok(Request { kind, leftover });
        }
    }
}

/// Whether `bytes` holds the end of a head: an empty line after a line end.
fn has_blank_line(bytes: &[u8]) -> bool {
    bytes.windows(2).any(|w| w == b"\n\n") || bytes.windows(3).any(|w| w == b"\n\r\n")
}

// ---------------------------------------------------------------------------
// Parsing: request line and dispatch
// ---------------------------------------------------------------------------

/// Parses the head at the start of `buf`: `Ok(None)` if it is incomplete,
/// else its length and the request.
fn parse_head(buf: &[u8], limits: &Limits) -> Result<Option<(usize, RequestKind)>, HttpError> {
    let mut headers = vec![httparse::EMPTY_HEADER; limits.max_headers];
    let mut req = httparse::Request::new(&mut headers);
    let head_len = match req.parse(buf) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => {
            return Err(HttpError::TooManyHeaders(limits.max_headers))
        }
        Err(e) => return Err(HttpError::Parse(e)),
    };
    let (Some(method), Some(target), Some(version)) = (req.method, req.path, req.version) else {
        return Err(HttpError::Malformed("incomplete request line"));
    };

    let parsed = if method == "CONNECT" {
        let (host, port) = parse_authority(target, None)?;
        RequestKind::Connect { host, port }
    } else {
        parse_absolute_form(method, target, version, req.headers)?
    };
    Ok(Some((head_len, parsed)))
}

/// An absolute-form request (`GET http://host[:port]/path?q`), rewritten.
fn parse_absolute_form(
    method: &str,
    target: &str,
    version: u8,
    headers: &[httparse::Header<'_>],
) -> Result<RequestKind, HttpError> {
    if target.starts_with('/') {
        return Err(HttpError::OriginForm);
    }
    if target == "*" {
        return Err(HttpError::Malformed(
            "asterisk-form (OPTIONS *) is not proxied",
        ));
    }
    let Some((scheme, rest)) = target.split_once("://") else {
        return Err(HttpError::Malformed(
            "request target is not absolute-form (http://host/path)",
        ));
    };
    if scheme.eq_ignore_ascii_case("https") {
        return Err(HttpError::HttpsNeedsConnect);
    }
    if !scheme.eq_ignore_ascii_case("http") {
        return Err(HttpError::UnsupportedScheme);
    }

    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(authority_end);
    let (host, port) = parse_authority(authority, Some(80))?;

    // The fragment is the client's business, never sent.
    let path = path.split('#').next().unwrap_or("");
    let head = forward_head(method, authority, path, version, headers)?;
    Ok(RequestKind::Forward {
        method: method.to_owned(),
        host,
        port,
        head,
    })
}

// ---------------------------------------------------------------------------
// Parsing: the authority (`host:port`)
// ---------------------------------------------------------------------------

/// Splits `host[:port]` or `[v6][:port]` into the raw host (IPv6 without
/// brackets) and the port; `default_port` applies when none is written.
fn parse_authority(authority: &str, default_port: Option<u16>) -> Result<(String, u16), HttpError> {
    if authority.contains('@') {
        return Err(HttpError::Userinfo);
    }
    let (host, port) = if let Some(bracketed) = authority.strip_prefix('[') {
        let Some((v6, after)) = bracketed.split_once(']') else {
            return Err(HttpError::BadAuthority("unclosed '[' in the host"));
        };
        if v6.parse::<Ipv6Addr>().is_err() {
            return Err(HttpError::BadAuthority("not an IPv6 address in brackets"));
        }
        let port = match after {
            "" => None,
            _ => match after.strip_prefix(':') {
                Some(port) => Some(port),
                None => return Err(HttpError::BadAuthority("junk after ']' in the host")),
            },
        };
        (v6, port)
    } else {
        match authority.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        }
    };

    if host.is_empty() {
        return Err(HttpError::BadAuthority("empty host"));
    }
    if host.contains(['[', ']', '/', '?', '#', '\\']) {
        return Err(HttpError::BadAuthority("delimiter characters in the host"));
    }
    let port = match (port, default_port) {
        (Some(port), _) => parse_port(port)?,
        (None, Some(default)) => default,
        (None, None) => return Err(HttpError::BadAuthority("CONNECT needs host:port")),
    };
    Ok((host.to_owned(), port))
}

/// A port: 1 to 5 ASCII digits, 1 to 65535.
fn parse_port(port: &str) -> Result<u16, HttpError> {
    const BAD: HttpError = HttpError::BadAuthority("port must be a number from 1 to 65535");
    if port.is_empty() || port.len() > 5 || !port.bytes().all(|b| b.is_ascii_digit()) {
        return Err(BAD);
    }
    match port.parse::<u16>() {
        Ok(0) | Err(_) => Err(BAD),
        Ok(port) => Ok(port),
    }
}

// ---------------------------------------------------------------------------
// The head sent to the origin
// ---------------------------------------------------------------------------

/// Headers never forwarded (compared lowercase): hop-by-hop ones, plus `Host`
/// and `Content-Length`, which are written afresh.
const DROPPED: &[&str] = &[
    "connection",
    "proxy-connection",
    "keep-alive",
    "proxy-authorization",
    "proxy-authenticate",
    "te",
    "upgrade",
    "host",
    "content-length",
];

/// Headers a `Connection` header may not name: they are never per-hop.
const END_TO_END: &[&str] = &["host", "content-length", "transfer-encoding"];

/// The origin-form head: request line, `Host`, the end-to-end headers,
/// `Content-Length` if any, `Connection: close`, blank line.
fn forward_head(
    method: &str,
    authority: &str,
    path: &str,
    version: u8,
    headers: &[httparse::Header<'_>],
) -> Result<Vec<u8>, HttpError> {
    let content_length = check_framing(headers, version)?;
    let nominated = connection_options(headers)?;

    let mut head = Vec::with_capacity(256);
    head.extend_from_slice(method.as_bytes());
    head.push(b' ');
    if !path.starts_with('/') {
        head.push(b'/');
    }
    head.extend_from_slice(path.as_bytes());
    head.extend_from_slice(format!(" HTTP/1.{version}\r\n").as_bytes());
    head.extend_from_slice(format!("Host: {authority}\r\n").as_bytes());
    for header in headers {
        let name = header.name.to_ascii_lowercase();
        if DROPPED.contains(&name.as_str()) || nominated.contains(&name) {
            continue;
        }
        head.extend_from_slice(header.name.as_bytes());
        head.extend_from_slice(b": ");
        head.extend_from_slice(header.value);
        head.extend_from_slice(b"\r\n");
    }
    if let Some(length) = content_length {
        head.extend_from_slice(format!("Content-Length: {length}\r\n").as_bytes());
    }
    head.extend_from_slice(b"Connection: close\r\n\r\n");
    Ok(head)
}

/// The header names listed in `Connection` headers, lowercase.
fn connection_options(headers: &[httparse::Header<'_>]) -> Result<Vec<String>, HttpError> {
    let mut names = Vec::new();
    for header in headers {
        if !header.name.eq_ignore_ascii_case("connection") {
            continue;
        }
        for option in list_items(header.value) {
            // A non-UTF-8 option cannot name a header (names are ASCII tokens).
            let Ok(option) = std::str::from_utf8(option) else {
                continue;
            };
            let option = option.to_ascii_lowercase();
            if END_TO_END.contains(&option.as_str()) {
                return Err(HttpError::Malformed(
                    "Connection names Host, Content-Length or Transfer-Encoding",
                ));
            }
            names.push(option);
        }
    }
    Ok(names)
}

/// Checks that the body's length is unambiguous (module docs, "Framing") and
/// returns the `Content-Length`, if any.
fn check_framing(headers: &[httparse::Header<'_>], version: u8) -> Result<Option<u64>, HttpError> {
    let mut content_length: Option<u64> = None;
    let mut transfer_encoding = false;
    let mut last_coding: &[u8] = b"";
    for header in headers {
        if header.name.eq_ignore_ascii_case("content-length") {
            let mut items = list_items(header.value).peekable();
            if items.peek().is_none() {
                return Err(HttpError::AmbiguousFraming("empty Content-Length"));
            }
            for item in items {
                let length = parse_content_length(item)?;
                if content_length.is_some_and(|seen| seen != length) {
                    return Err(HttpError::AmbiguousFraming(
                        "conflicting Content-Length values",
                    ));
                }
                content_length = Some(length);
            }
        } else if header.name.eq_ignore_ascii_case("transfer-encoding") {
            transfer_encoding = true;
            if let Some(coding) = list_items(header.value).last() {
                last_coding = coding;
            }
        }
    }
    if transfer_encoding {
        if content_length.is_some() {
            return Err(HttpError::AmbiguousFraming(
                "both Transfer-Encoding and Content-Length",
            ));
        }
        if version == 0 {
            return Err(HttpError::AmbiguousFraming("Transfer-Encoding in HTTP/1.0"));
        }
        if !last_coding.eq_ignore_ascii_case(b"chunked") {
            return Err(HttpError::AmbiguousFraming(
                "Transfer-Encoding does not end in chunked",
            ));
        }
    }
    Ok(content_length)
}

/// A `Content-Length` value: 1 to 18 ASCII digits (no sign, no spaces).
fn parse_content_length(value: &[u8]) -> Result<u64, HttpError> {
    const BAD: HttpError = HttpError::AmbiguousFraming("Content-Length is not a number");
    if value.is_empty() || value.len() > 18 || !value.iter().all(u8::is_ascii_digit) {
        return Err(BAD);
    }
    value
        .iter()
        .try_fold(0u64, |n, d| {
            n.checked_mul(10)?.checked_add(u64::from(d - b'0'))
        })
        .ok_or(BAD)
}

/// The non-empty items of a comma-separated header value, trimmed of
/// spaces and tabs.
fn list_items(value: &[u8]) -> impl Iterator<Item = &[u8]> {
    value
        .split(|b| *b == b',')
        .map(|item| item.trim_ascii())
        .filter(|item| !item.is_empty())
}

// ---------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;

    /// Writes `input`, closes the client's side, reads one request.
    async fn read_with(input: &[u8], limits: &Limits) -> Result<Request, HttpError> {
        let (mut client, mut server) = tokio::io::duplex(64 * 1024);
        client.write_all(input).await.unwrap();
        client.shutdown().await.unwrap();
        read_request(&mut server, limits).await
    }

    async fn read(input: &[u8]) -> Result<Request, HttpError> {
        read_with(input, &Limits::default()).await
    }

    /// The forwarded head of an accepted request, as text.
    async fn forwarded(input: &[u8]) -> String {
        match read(input).await {
            Ok(Request {
                kind: RequestKind::Forward { head, .. },
                ..
            }) => String::from_utf8(head).unwrap(),
            other => panic!("expected a forward request, got {other:?}"),
        }
    }

    fn connect(host: &str, port: u16) -> Request {
        Request {
            kind: RequestKind::Connect {
                host: host.into(),
                port,
            },
            leftover: vec![],
        }
    }

    // -- CONNECT ------------------------------------------------------------

    #[tokio::test]
    async fn connect_name_ipv4_ipv6() {
        let cases: [(&[u8], Request); 4] = [
            (
                b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n",
                connect("example.com", 443),
            ),
            (
                b"CONNECT 192.0.2.7:8443 HTTP/1.1\r\n\r\n",
                connect("192.0.2.7", 8443),
            ),
            (
                b"CONNECT [2001:db8::1]:443 HTTP/1.1\r\n\r\n",
                connect("2001:db8::1", 443),
            ),
            (
                b"CONNECT Example.COM:1 HTTP/1.0\r\n\r\n",
                connect("Example.COM", 1),
            ),
        ];
        for (input, want) in cases {
            assert_eq!(read(input).await.unwrap(), want);
        }
    }

    #[tokio::test]
    async fn connect_keeps_early_bytes() {
        let req = read(b"CONNECT example.com:443 HTTP/1.1\r\n\r\n\x16\x03\x01hello")
            .await
            .unwrap();
        assert_eq!(req.host(), "example.com");
        assert_eq!(req.port(), 443);
        assert_eq!(req.leftover, b"\x16\x03\x01hello");
    }

    #[tokio::test]
    async fn connect_needs_a_valid_port() {
        for target in [
            "example.com",
            "example.com:",
            "example.com:0",
            "example.com:65536",
            "example.com:99999",
            "example.com:https",
            "example.com:-1",
            "example.com:+443",
            "example.com:000443",
            "example.com:44 3",
            "[::1]",
            "[::1]:",
            "[::1]x443",
        ] {
            let input = format!("CONNECT {target} HTTP/1.1\r\n\r\n");
            let err = read(input.as_bytes()).await.unwrap_err();
            assert_eq!(err.status(), 400, "{target}: {err}");
        }
    }

    #[tokio::test]
    async fn connect_refuses_bad_hosts() {
        for (target, reason) in [
            ("::1:443", "bad-target"),
            ("[::1:443", "bad-target"),
            ("[not-v6]:443", "bad-target"),
            ("[fe80::1%25eth0]:443", "bad-target"),
            (":443", "bad-target"),
            ("user@example.com:443", "userinfo"),
            ("http://example.com:443", "bad-target"),
            ("example.com/x:443", "bad-target"),
        ] {
            let input = format!("CONNECT {target} HTTP/1.1\r\n\r\n");
            let err = read(input.as_bytes()).await.unwrap_err();
            assert_eq!(err.reason_name(), reason, "{target}: {err}");
            assert_eq!(err.status(), 400);
        }
    }

    // -- Absolute-form forwarding ---------------------------------------------

    #[tokio::test]
    async fn forward_path_query_default_port() {
        let req = read(b"GET http://example.com/a/b?x=1&y=%20 HTTP/1.1\r\nAccept: */*\r\n\r\n")
            .await
            .unwrap();
        let Request {
            kind:
                RequestKind::Forward {
                    method,
                    host,
                    port,
                    head,
                },
            leftover,
        } = req
        else {
            panic!("not a forward request")
        };
        assert_eq!(
            (method.as_str(), host.as_str(), port),
            ("GET", "example.com", 80)
        );
        assert_eq!(
            String::from_utf8(head).unwrap(),
            "GET /a/b?x=1&y=%20 HTTP/1.1\r\nHost: example.com\r\nAccept: */*\r\n\
             Connection: close\r\n\r\n"
        );
        assert!(leftover.is_empty());
    }

    #[tokio::test]
    async fn forward_explicit_port_and_ipv6() {
        let req = read(b"HEAD http://example.com:8080 HTTP/1.1\r\n\r\n")
            .await
            .unwrap();
        assert_eq!((req.host(), req.port()), ("example.com", 8080));
        assert_eq!(
            forwarded(b"HEAD http://example.com:8080 HTTP/1.1\r\n\r\n").await,
            "HEAD / HTTP/1.1\r\nHost: example.com:8080\r\nConnection: close\r\n\r\n"
        );
        let req = read(b"GET http://[2001:db8::2]:81/ HTTP/1.1\r\n\r\n")
            .await
            .unwrap();
        assert_eq!((req.host(), req.port()), ("2001:db8::2", 81));
        assert_eq!(
            forwarded(b"GET http://[2001:db8::2]/ HTTP/1.1\r\n\r\n").await,
            "GET / HTTP/1.1\r\nHost: [2001:db8::2]\r\nConnection: close\r\n\r\n"
        );
    }

    #[tokio::test]
    async fn forward_scheme_is_case_insensitive_and_query_only_paths_work() {
        assert_eq!(
            forwarded(b"GET HTTP://example.com?q=1#frag HTTP/1.0\r\n\r\n").await,
            "GET /?q=1 HTTP/1.0\r\nHost: example.com\r\nConnection: close\r\n\r\n"
        );
        assert_eq!(
            forwarded(b"GET http://example.com/p#frag?not-a-query HTTP/1.1\r\n\r\n").await,
            "GET /p HTTP/1.1\r\nHost: example.com\r\nConnection: close\r\n\r\n"
        );
    }

    #[tokio::test]
    async fn forward_rewrites_a_disagreeing_host() {
        let head = forwarded(
            b"GET http://allowed.example/ HTTP/1.1\r\nHost: evil.example\r\n\
              X-A: 1\r\nhost: evil2.example\r\n\r\n",
        )
        .await;
        assert_eq!(
            head,
            "GET / HTTP/1.1\r\nHost: allowed.example\r\nX-A: 1\r\nConnection: close\r\n\r\n"
        );
    }

    #[tokio::test]
    async fn forward_removes_hop_by_hop_headers() {
        let head = forwarded(
            b"POST http://example.com/up HTTP/1.1\r\n\
              Connection: keep-alive, X-Secret\r\n\
              Proxy-Connection: keep-alive\r\n\
              Keep-Alive: timeout=5\r\n\
              Proxy-Authorization: Basic dXNlcjpwYXNz\r\n\
              TE: trailers\r\n\
              Upgrade: websocket\r\n\
              x-secret: hop only\r\n\
              Trailer: X-Checksum\r\n\
              Transfer-Encoding: chunked\r\n\
              User-Agent: curl/8\r\n\r\n",
        )
        .await;
        assert_eq!(
            head,
            "POST /up HTTP/1.1\r\nHost: example.com\r\nTrailer: X-Checksum\r\n\
             Transfer-Encoding: chunked\r\nUser-Agent: curl/8\r\nConnection: close\r\n\r\n"
        );
    }

    #[tokio::test]
    async fn forward_keeps_body_and_pipelined_bytes() {
        let input = b"POST http://example.com/ HTTP/1.1\r\nContent-Length: 5\r\n\r\n\
                      helloGET http://other.example/ HTTP/1.1\r\n\r\n";
        let req = read(input).await.unwrap();
        assert_eq!(
            req.leftover,
            b"helloGET http://other.example/ HTTP/1.1\r\n\r\n"
        );
        let RequestKind::Forward { head, .. } = req.kind else {
            panic!()
        };
        assert!(head.ends_with(b"Content-Length: 5\r\nConnection: close\r\n\r\n"));
    }

    #[tokio::test]
    async fn forward_passes_non_utf8_header_values_through() {
        let req = read(b"GET http://example.com/ HTTP/1.1\r\nX-Name: caf\xe9 \xff\r\n\r\n")
            .await
            .unwrap();
        let RequestKind::Forward { head, .. } = req.kind else {
            panic!()
        };
        let needle = b"\r\nX-Name: caf\xe9 \xff\r\n";
        assert!(head.windows(needle.len()).any(|w| w == needle));
    }

    #[tokio::test]
    async fn forward_accepts_lf_only_and_reserialises_with_crlf() {
        assert_eq!(
            forwarded(b"GET http://example.com/ HTTP/1.1\nAccept: */*\n\n").await,
            "GET / HTTP/1.1\r\nHost: example.com\r\nAccept: */*\r\nConnection: close\r\n\r\n"
        );
        // Empty lines before the request line are ignored (RFC 9112 §2.2).
        let req = read(b"\r\n\r\n\nGET http://example.com/ HTTP/1.1\r\n\r\n")
            .await
            .unwrap();
        assert_eq!(req.host(), "example.com");
    }

    #[tokio::test]
    async fn forward_normalises_repeated_equal_content_length() {
        let head = forwarded(
            b"PUT http://example.com/ HTTP/1.1\r\nContent-Length: 3, 3\r\ncontent-length: 3\r\n\r\n",
        )
        .await;
        assert_eq!(
            head,
            "PUT / HTTP/1.1\r\nHost: example.com\r\nContent-Length: 3\r\nConnection: close\r\n\r\n"
        );
    }

    // -- Refusals ---------------------------------------------------------------

    async fn refusal(input: &[u8]) -> HttpError {
        match read(input).await {
            Ok(req) => panic!("accepted {req:?}"),
            Err(e) => e,
        }
    }

    #[tokio::test]
    async fn refuses_https_other_schemes_userinfo() {
        let e = refusal(b"GET https://example.com/ HTTP/1.1\r\n\r\n").await;
        assert_eq!((e.status(), e.reason_name()), (501, "https-needs-connect"));
        let e = refusal(b"GET ftp://example.com/ HTTP/1.1\r\n\r\n").await;
        assert_eq!((e.status(), e.reason_name()), (501, "unsupported-scheme"));
        for uri in [
            "http://user@example.com/",
            "http://user:pw@example.com/",
            "http://allowed.example\\@evil.example/",
            "http://@example.com/",
        ] {
            let input = format!("GET {uri} HTTP/1.1\r\n\r\n");
            let e = refusal(input.as_bytes()).await;
            assert_eq!((e.status(), e.reason_name()), (400, "userinfo"), "{uri}");
        }
    }

    #[tokio::test]
    async fn refuses_origin_and_asterisk_form() {
        let e = refusal(b"GET / HTTP/1.1\r\nHost: example.com\r\n\r\n").await;
        assert_eq!((e.status(), e.reason_name()), (400, "origin-form"));
        assert!(e.to_string().contains("forward proxy"));
        let e = refusal(b"OPTIONS * HTTP/1.1\r\nHost: example.com\r\n\r\n").await;
        assert_eq!(e.status(), 400);
        let e = refusal(b"GET example.com:80 HTTP/1.1\r\n\r\n").await;
        assert_eq!(e.status(), 400);
    }

    #[tokio::test]
    async fn refuses_bad_forward_ports_and_hosts() {
        for uri in [
            "http://example.com:0/",
            "http://example.com:65536/",
            "http://example.com:http/",
            "http://example.com:/",
            "http:///path",
            "http://:80/",
            "http://2001:db8::1/",
            "http://[2001:db8::1/",
        ] {
            let input = format!("GET {uri} HTTP/1.1\r\n\r\n");
            let e = refusal(input.as_bytes()).await;
            assert_eq!((e.status(), e.reason_name()), (400, "bad-target"), "{uri}");
        }
    }

    #[tokio::test]
    async fn refuses_ambiguous_framing() {
        for (headers, why) in [
            ("Content-Length: 5\r\nTransfer-Encoding: chunked", "both"),
            ("Transfer-Encoding: chunked\r\nContent-Length: 5", "both"),
            ("Content-Length: 5\r\nContent-Length: 6", "conflicting"),
            ("Content-Length: 5, 6", "conflicting"),
            ("Content-Length: +5", "not a number"),
            ("Content-Length: 0x5", "not a number"),
            ("Content-Length: 99999999999999999999", "not a number"),
            ("Content-Length: ", "empty"),
            ("Transfer-Encoding: gzip", "does not end in chunked"),
            (
                "Transfer-Encoding: chunked, gzip",
                "does not end in chunked",
            ),
            (
                "Transfer-Encoding: chunked\r\nTransfer-Encoding: identity",
                "does not end",
            ),
        ] {
            let input = format!("POST http://example.com/ HTTP/1.1\r\n{headers}\r\n\r\n");
            let e = refusal(input.as_bytes()).await;
            assert_eq!(
                (e.status(), e.reason_name()),
                (400, "ambiguous-framing"),
                "{headers}"
            );
            assert!(e.to_string().contains(why), "{headers}: {e}");
        }
        let e = refusal(b"POST http://example.com/ HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n")
            .await;
        assert!(e.to_string().contains("HTTP/1.0"));
        // Hiding the framing behind Connection is refused too.
        let e = refusal(
            b"POST http://example.com/ HTTP/1.1\r\nConnection: Content-Length\r\n\
              Content-Length: 5\r\n\r\nhello",
        )
        .await;
        assert_eq!(e.status(), 400);
    }

    #[tokio::test]
    async fn refuses_garbage_and_smuggling_syntax() {
        for input in [
            &b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n"[..],
            b"hello\r\n\r\n",
            b"GET http://example.com/ HTTP/2.0\r\n\r\n",
            b"GET http://example.com/ HTTP/1.1\r\nContent-Length : 5\r\n\r\n",
            b"GET http://example.com/ HTTP/1.1\r\nX-A: 1\r\n folded\r\n\r\n",
            b"GET http://example.com/ HTTP/1.1\r\n Host: x\r\n\r\n",
            b"GET http://example.com/ HTTP/1.1\rX-A: 1\r\n\r\n",
            b"GET http://example.com/ HTTP/1.1\r\nX-A: 1\r2\r\n\r\n",
            b"GET http://example.com/ HTTP/1.1\r\nX-A: a\x00b\r\n\r\n",
            b"GET http://exa\xffmple.com/ HTTP/1.1\r\n\r\n",
            b"GET  http://example.com/ HTTP/1.1\r\n\r\n",
        ] {
            let e = refusal(input).await;
            assert_eq!(e.status(), 400, "{:?}: {e}", String::from_utf8_lossy(input));
        }
    }

    #[tokio::test]
    async fn refuses_oversized_heads() {
        // No end of head within the limit.
        let mut input = b"GET http://example.com/ HTTP/1.1\r\nX-Big: ".to_vec();
        input.resize(20 * 1024, b'a');
        let e = refusal(&input).await;
        assert_eq!((e.status(), e.reason_name()), (431, "head-too-large"));

        // A complete head one byte over a small limit, and one that fits.
        let head = b"GET http://example.com/ HTTP/1.1\r\nX-A: 1\r\n\r\n";
        let limits = |max_head| Limits {
            max_head,
            ..Limits::default()
        };
        let e = read_with(head, &limits(head.len() - 1)).await.unwrap_err();
        assert_eq!(e.status(), 431);
        assert!(read_with(head, &limits(head.len())).await.is_ok());
    }

    #[tokio::test]
    async fn refuses_too_many_headers() {
        let mut input = b"GET http://example.com/ HTTP/1.1\r\n".to_vec();
        for i in 0..100 {
            input.extend_from_slice(format!("X-{i}: v\r\n").as_bytes());
        }
        let mut too_many = input.clone();
        input.extend_from_slice(b"\r\n");
        assert!(read(&input).await.is_ok(), "100 headers are fine");
        too_many.extend_from_slice(b"X-100: v\r\n\r\n");
        let e = refusal(&too_many).await;
        assert_eq!((e.status(), e.reason_name()), (431, "too-many-headers"));
    }

    #[tokio::test]
    async fn times_out_a_slow_head() {
        let (mut client, mut server) = tokio::io::duplex(1024);
        client
            .write_all(b"GET http://example.com/ HTTP/1.1\r\nX-A: 1\r\n")
            .await
            .unwrap();
        let limits = Limits {
            head_timeout: Duration::from_millis(50),
            ..Limits::default()
        };
        let started = std::time::Instant::now();
        let e = read_request(&mut server, &limits).await.unwrap_err();
        assert_eq!((e.status(), e.reason_name()), (408, "head-timeout"));
        assert!(started.elapsed() < Duration::from_secs(5));
        drop(client);
    }

    #[tokio::test]
    async fn closed_and_truncated_connections() {
        let e = refusal(b"").await;
        assert!(matches!(e, HttpError::Closed));
        assert!(e.response().is_none(), "nobody to answer");
        let e = refusal(b"GET http://example.com/ HTTP/1.1\r\nX-A: 1").await;
        assert!(matches!(e, HttpError::Truncated));
        let e = refusal(b"\r\n\r\n").await;
        assert!(matches!(e, HttpError::Truncated));
    }

    // -- Reading -------------------------------------------------------------

    #[tokio::test]
    async fn reads_a_head_dripped_byte_by_byte() {
        let input = b"GET http://example.com/x HTTP/1.1\r\nAccept: */*\r\n\r\n";
        let (mut client, mut server) = tokio::io::duplex(1);
        let writer = async move {
            for byte in input {
                client.write_all(&[*byte]).await.unwrap();
            }
            client
        };
        let limits = Limits::default();
        let (result, _client) = tokio::join!(read_request(&mut server, &limits), writer);
        let req = result.unwrap();
        assert_eq!(req.host(), "example.com");
        // With one-byte reads, the head ends exactly at the blank line.
        assert!(req.leftover.is_empty());
    }

    // -- Responses ------------------------------------------------------------

    #[test]
    fn response_format() {
        let out = response(403, Some("not-allowed"), "example.com is not allowed\n");
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "HTTP/1.1 403 Forbidden\r\nX-Proxy-Error: not-allowed\r\n\
             Content-Type: text/plain; charset=utf-8\r\nContent-Length: 27\r\n\
             Connection: close\r\n\r\nexample.com is not allowed\n"
        );
        let out = response(502, None, "");
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "HTTP/1.1 502 Bad Gateway\r\nContent-Type: text/plain; charset=utf-8\r\n\
             Content-Length: 0\r\nConnection: close\r\n\r\n"
        );
        let injected = response(400, Some("x\r\nSet-Cookie: a=b"), "");
        let text = String::from_utf8(injected).unwrap();
        assert!(text.contains("X-Proxy-Error: xSet-Cookie: a=b\r\n"));
        assert_eq!(CONNECT_OK, b"HTTP/1.1 200 Connection established\r\n\r\n");
    }

    #[tokio::test]
    async fn error_responses_carry_status_and_reason() {
        let e = refusal(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").await;
        let text = String::from_utf8(e.response().unwrap()).unwrap();
        assert!(text.starts_with("HTTP/1.1 400 Bad Request\r\nX-Proxy-Error: origin-form\r\n"));
        let e = HttpError::HeadTimeout(Duration::from_secs(10));
        let text = String::from_utf8(e.response().unwrap()).unwrap();
        assert!(text.starts_with("HTTP/1.1 408 Request Timeout\r\n"));
        let e = HttpError::TooManyHeaders(100);
        let text = String::from_utf8(e.response().unwrap()).unwrap();
        assert!(text.starts_with("HTTP/1.1 431 Request Header Fields Too Large\r\n"));
    }

    // -- Robustness --------------------------------------------------------------

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

    /// Random bytes, and valid requests with random bytes overwritten,
    /// truncated or spliced: every one ends in a result, never a panic.
    #[tokio::test]
    async fn arbitrary_input_never_panics() {
        let seeds: [&[u8]; 4] = [
            b"GET http://example.com:8080/a?b HTTP/1.1\r\nHost: x\r\nConnection: a, b\r\n\
              Content-Length: 2\r\n\r\nhi",
            b"CONNECT [::1]:443 HTTP/1.1\r\n\r\n",
            b"POST http://e/ HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n",
            b"\r\n\nGET http://a@b/ HTTP/1.0\nX: \xff\n\n",
        ];
        let limits = Limits {
            max_head: 256,
            max_headers: 8,
            head_timeout: Duration::from_secs(5),
        };
        let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
        for round in 0..3000 {
            let mut input = seeds[round % seeds.len()].to_vec();
            match rng.next() % 4 {
                0 => {
                    let len = (rng.next() % 300) as usize;
                    input = (0..len).map(|_| rng.next() as u8).collect();
                }
                1 => {
                    for _ in 0..1 + rng.next() % 4 {
                        let i = (rng.next() as usize) % input.len();
                        input[i] = rng.next() as u8;
                    }
                }
                2 => input.truncate((rng.next() as usize) % input.len()),
                _ => {
                    let i = (rng.next() as usize) % input.len();
                    let splices: [&[u8]; 6] = [b"\r\n", b":", b"[", b"@", b"\n\n", b" "];
                    let bytes = splices[(rng.next() % 6) as usize];
                    input.splice(i..i, bytes.iter().copied());
                }
            }
            let _ = read_with(&input, &limits).await;
        }
    }
}
