//! The egress proxy's decisions, as pure functions of the policy.
//!
//! The proxy asks two questions per connection:
//!
//! 1. [`Policy::check_request`], **before any lookup**: may this `host:port`
//!    be contacted at all? The answer is a normalised [`Target`] or a
//!    [`Denial`].
//! 2. [`Policy::check_address`], after resolving the name once (static
//!    `--resolve` entries first, [`Policy::static_addresses`]): is this
//!    address acceptable? The proxy then connects to exactly that address.
//!
//! Nothing here does IO, and no input makes it panic.
//!
//! # Host names
//!
//! A requested host is normalised before anything is compared: UTS 46
//! (IDNA) mapping to ASCII, which also folds case and maps full-width forms
//! (`ａｌｌｏｗｅｄ.test` *is* `allowed.test`, and the proxy resolves the
//! normalised name, so what is checked is what is reached), then one trailing
//! dot is removed. Refused as `bad-hostname`: empty names or labels, labels
//! over 63 and names over 253 bytes, input over 1024 bytes, and any ASCII
//! character other than letters, digits, `-`, `_` and `.` (so `@`, `%`, `/`,
//! `\`, `:`, whitespace and NUL), before or after mapping.
//!
//! - `_` is accepted: it appears in real host names, and matching is exact,
//!   so it cannot widen a pattern.
//! - Hyphens are not position-checked (as in browsers): `r3---sn-x.example`
//!   and `-x-.example` exist in the wild and cannot confuse the matcher.
//! - A Cyrillic `а` in `аllowed.test` maps to `xn--llowed-2nf.test`, a
//!   different name, so confusables never match an ASCII pattern.
//!
//! # IP literals
//!
//! `1.2.3.4`, `[2001:db8::1]` and (from SOCKS5) bare `2001:db8::1` are IP
//! literals: destinations like any other, refused (`ip-literal-not-allowed`)
//! unless an allow pattern names the address or a CIDR containing it.
//!
//! Any valid IPv6 text form is accepted (`[2606:4700:0:0:0:0:0:1111]` is
//! `[2606:4700::1111]`): IPv6 text has no octal or short forms to confuse a
//! matcher. Full-width digits map to ASCII under UTS 46, so `８.８.８.８` is
//! the address `8.8.8.8` (what is matched is what is reached).
//!
//! A host whose last label is numeric (all digits, or `0x` plus hex digits)
//! is read by URL parsers (WHATWG) as an IPv4 address, so it must be exactly a
//! canonical dotted quad: four decimal parts, no leading zeros, no trailing
//! dot. Everything else of that shape (`2130706433`, `0x7f.1`, `127.1`,
//! `0177.0.0.1`, `127.0.0.01`, `127.0.0.1.`, `1.2.3.4.5`, `foo.123`) is refused
//! as `non-canonical-ip`, whatever the patterns say: a second spelling of an
//! address is a way around a deny pattern. For the same reason an
//! IPv4-mapped IPv6 literal (`[::ffff:127.0.0.1]`) is `non-canonical-ip`
//! (write the IPv4 address), and IPv6 zone ids (`fe80::1%eth0`) are refused.
//!
//! # Patterns (`--allow-domain`, `--deny-domain`)
//!
//! `example.com` (exactly that name), `*.example.com` (names ending in
//! `.example.com`: never `example.com` itself, never `evilexample.com`), IP
//! addresses (`10.1.2.3`, `[2001:db8::1]`) and CIDRs (`192.0.2.0/24`,
//! `2001:db8::/32`, `[2001:db8::/32]`), each optionally with `:PORT`
//! (`*.x.com:8443`, `[2001:db8::1]:443`, `[2001:db8::/32]:443`). Patterns are
//! normalised like hosts. Construction fails ([`PolicyError`], naming the
//! option and the pattern) on: `*` alone (allow-everything must not be a typo
//! away), `*` anywhere but a whole first label, a wildcard over an address, a
//! leading dot (`.x.com`: write `*.x.com`), URLs, port 0, CIDRs with host bits
//! set (`10.0.0.1/8`: a typo for `10.0.0.0/8`?), non-canonical addresses, and
//! IPv6 addresses without brackets (`2001:db8::1:443` is an address, not a
//! port). `*.com` is accepted: broad, but not a typo.
//!
//! Decision order: deny patterns first (a deny pattern without a port denies
//! every port), then allow patterns (without a port they allow 80 and 443);
//! nothing matched is `not-allowed`. A name that an allow pattern matches on
//! another port is `port-not-allowed`. Deny IP/CIDR patterns also refuse
//! *resolved* addresses in [`Policy::check_address`]: deny wins everywhere.
//! Name patterns never match IP literals, nor IP patterns names.
//!
//! # Addresses
//!
//! [`Policy::check_address`] refuses, whether the address came from DNS, from
//! `--resolve`, or is an allowed IP literal (literals are checked in
//! [`Policy::check_request`] too, so the refusal comes before any connect):
//!
//! - `metadata-address`: cloud metadata endpoints (`169.254.169.254`,
//!   `169.254.170.2`, `169.254.170.23`, `169.254.0.23`, `169.254.42.42`,
//!   `100.100.100.200`, `168.63.129.16`, `fd00:ec2::254`, `fd00:ec2::23`,
//!   `fd20:ce::254`);
//! - `internal-address`: loopback, unspecified (`0.0.0.0/8` reaches the host
//!   on Linux, `::`), private, CGNAT, link-local, ULA, site-local, local-use
//!   NAT64, and the host's own interface addresses (passed in);
//! - `reserved-address`: what cannot be a real public server: documentation
//!   and benchmarking ranges, IETF protocol assignments, multicast, broadcast,
//!   `240.0.0.0/4`, deprecated IPv4-compatible IPv6, Teredo (its embedded
//!   client address is obfuscated, and the protocol is dead), ORCHID, and any
//!   IPv6 outside global unicast `2000::/3`.
//!
//! IPv4-mapped (`::ffff:a.b.c.d`), NAT64 (`64:ff9b::/96`) and 6to4
//! (`2002::/16`) addresses are judged by the IPv4 address they lead to, so
//! `64:ff9b::7f00:1` is loopback and `2002:0808:0808::1` is fine.
//!
//! `--allow-private CIDR` lifts these refusals for addresses inside CIDR,
//! with one safeguard: loopback, unspecified, metadata and own addresses are
//! lifted only by a CIDR lying wholly inside them (`127.0.0.1/32` or
//! `127.0.0.0/8` for loopback; exactly `169.254.169.254/32` for that
//! endpoint), so `--allow-private 10.0.0.0/8` or `0.0.0.0/0` does not open the
//! host's own services or the metadata server. It never allows an IP literal
//! by itself: `--allow-domain 10.0.0.5 --allow-private 10.0.0.0/8` is how an
//! internal literal is reached. CIDRs are validated like patterns; a bare
//! address means that one address.
//!
//! # Static resolver (`--resolve HOST:ADDR[,ADDR...]`)
//!
//! Like curl's, without the port: the addresses apply to every port, and
//! curl's `HOST:PORT:ADDR` is refused with a message saying so. IPv6 in
//! brackets. Entries for the same host accumulate. A static address is
//! checked like a resolved one: `--resolve` neither allows the name nor
//! makes an internal address acceptable.

use std::collections::HashMap;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use idna::uts46::{AsciiDenyList, DnsLength, Hyphens, Uts46};
use ipnet::{IpNet, Ipv4Net, Ipv6Net};

use crate::ProxyPolicy;

// ---------------------------------------------------------------------------
// Decisions
// ---------------------------------------------------------------------------

/// Why a connection was refused. [`Reason::name`] is stable: it is the
/// `X-Proxy-Error` header and the events' `reason`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Reason {
    /// The host matches no allow pattern.
    NotAllowed,
    /// The host matches a deny pattern.
    DeniedByPattern,
    /// The host is not a valid host name.
    BadHostname,
    /// A numeric host that is not a canonical IP address (`0x7f.1`, `127.1`).
    NonCanonicalIp,
    /// An IP literal that no allow pattern names.
    IpLiteralNotAllowed,
    /// The host is allowed, but not on this port.
    PortNotAllowed,
    /// Loopback, private, link-local, CGNAT, or the host's own address.
    InternalAddress,
    /// A cloud metadata endpoint.
    MetadataAddress,
    /// An address that cannot be a public server (documentation, multicast…).
    ReservedAddress,
    /// Allowed, but the name did not resolve or the connect failed.
    Unreachable,
}

impl Reason {
    /// The stable kebab-case name.
    pub const fn name(self) -> &'static str {
        match self {
            Reason::NotAllowed => "not-allowed",
            Reason::DeniedByPattern => "denied-by-pattern",
            Reason::BadHostname => "bad-hostname",
            Reason::NonCanonicalIp => "non-canonical-ip",
            Reason::IpLiteralNotAllowed => "ip-literal-not-allowed",
            Reason::PortNotAllowed => "port-not-allowed",
            Reason::InternalAddress => "internal-address",
            Reason::MetadataAddress => "metadata-address",
            Reason::ReservedAddress => "reserved-address",
            Reason::Unreachable => "unreachable",
        }
    }

    /// The SOCKS5 reply code (RFC 1928): `0x02` (not allowed by ruleset) for
    /// policy refusals, `0x04` (host unreachable) for names that cannot be
    /// resolved or reached, `0x08` (address type not supported) for numeric
    /// forms we do not accept.
    pub const fn socks5_reply(self) -> u8 {
        match self {
            Reason::BadHostname | Reason::Unreachable => 0x04,
            Reason::NonCanonicalIp => 0x08,
            _ => 0x02,
        }
    }

    /// The HTTP status: 400 for a malformed host, 502 for an unreachable
    /// one, 403 for every policy refusal.
    pub const fn http_status(self) -> u16 {
        match self {
            Reason::BadHostname | Reason::NonCanonicalIp => 400,
            Reason::Unreachable => 502,
            _ => 403,
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A refusal: a stable [`Reason`] and a sentence for people.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Denial {
    /// What kind of refusal.
    pub reason: Reason,
    /// Which host, pattern or range, for the event and the error body.
    pub detail: String,
}

impl Denial {
    fn new(reason: Reason, detail: impl Into<String>) -> Self {
        Denial {
            reason,
            detail: detail.into(),
        }
    }

    /// An allowed host that could not be resolved or connected to.
    pub fn unreachable(host: &str, detail: &str) -> Self {
        Denial::new(Reason::Unreachable, format!("{}: {detail}", shown(host)))
    }

    /// [`Reason::name`] of the reason.
    pub fn reason_name(&self) -> &'static str {
        self.reason.name()
    }

    /// [`Reason::socks5_reply`] of the reason.
    pub fn socks5_reply(&self) -> u8 {
        self.reason.socks5_reply()
    }

    /// [`Reason::http_status`] of the reason.
    pub fn http_status(&self) -> u16 {
        self.reason.http_status()
    }
}

impl fmt::Display for Denial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.reason, self.detail)
    }
}

impl std::error::Error for Denial {}

/// An allowed destination, normalised: what the proxy resolves and reports.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Target {
    /// A host name: lower-case ASCII (IDNA applied), no trailing dot.
    Name {
        /// The normalised name.
        host: String,
        /// The requested port.
        port: u16,
    },
    /// An IP literal, allowed by an IP or CIDR pattern.
    Ip {
        /// The address.
        addr: IpAddr,
        /// The requested port.
        port: u16,
    },
}

impl Target {
    /// The requested port.
    pub fn port(&self) -> u16 {
        match self {
            Target::Name { port, .. } | Target::Ip { port, .. } => *port,
        }
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Name { host, port } => write!(f, "{host}:{port}"),
            Target::Ip {
                addr: IpAddr::V4(a),
                port,
            } => write!(f, "{a}:{port}"),
            Target::Ip {
                addr: IpAddr::V6(a),
                port,
            } => write!(f, "[{a}]:{port}"),
        }
    }
}

/// An invalid `--allow-domain`, `--deny-domain`, `--allow-private` or
/// `--resolve` entry.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{option} {value:?}: {message}")]
pub struct PolicyError {
    /// The option the entry came from, e.g. `--allow-domain`.
    pub option: &'static str,
    /// The entry as given.
    pub value: String,
    /// What is wrong with it.
    pub message: String,
}

// ---------------------------------------------------------------------------
// The policy
// ---------------------------------------------------------------------------

/// Ports an allow pattern without `:PORT` admits.
const DEFAULT_PORTS: [u16; 2] = [80, 443];

/// [`ProxyPolicy`], validated and ready to answer. `Send + Sync`; share it.
#[derive(Debug, Clone)]
pub struct Policy {
    allow: Vec<Pattern>,
    deny: Vec<Pattern>,
    allow_private: Vec<IpNet>,
    resolve: HashMap<String, Vec<IpAddr>>,
}

impl Policy {
    /// Validate every entry; the first invalid one is the error.
    pub fn new(p: &ProxyPolicy) -> Result<Policy, PolicyError> {
        let patterns = |option, list: &[String]| {
            list.iter()
                .map(|text| Pattern::parse(text).map_err(|m| PolicyError::new(option, text, m)))
                .collect::<Result<Vec<_>, _>>()
        };
        let allow = patterns("--allow-domain", &p.allow)?;
        let deny = patterns("--deny-domain", &p.deny)?;
        let allow_private = p
            .allow_private
            .iter()
            .map(|text| parse_net(text).map_err(|m| PolicyError::new("--allow-private", text, m)))
            .collect::<Result<Vec<_>, _>>()?;
        let mut resolve: HashMap<String, Vec<IpAddr>> = HashMap::new();
        for text in &p.resolve {
            let (host, addrs) =
                parse_resolve(text).map_err(|m| PolicyError::new("--resolve", text, m))?;
            let entry = resolve.entry(host).or_default();
            for a in addrs {
                if !entry.contains(&a) {
                    entry.push(a);
                }
            }
        }
        Ok(Policy {
            allow,
            deny,
            allow_private,
            resolve,
        })
    }

    /// Question 1, before any lookup: may `host:port` be contacted?
    ///
    /// `host` is as the client sent it (a name, `[v6]`, bare v6 from SOCKS5).
    pub fn check_request(&self, host: &str, port: u16) -> Result<Target, Denial> {
        let h = parse_host(host)
            .map_err(|b| Denial::new(b.reason, format!("{}: {}", shown(host), b.why)))?;
        let target = match &h {
            Host::Name(n) => Target::Name {
                host: n.clone(),
                port,
            },
            Host::Ip(a) => Target::Ip { addr: *a, port },
        };
        if port == 0 {
            return Err(Denial::new(
                Reason::PortNotAllowed,
                format!("{target}: port 0"),
            ));
        }
        if let Some(p) = self
            .deny
            .iter()
            .find(|p| p.host.matches(&h) && p.port.map_or(true, |q| q == port))
        {
            return Err(Denial::new(
                Reason::DeniedByPattern,
                format!("{target} matches --deny-domain {:?}", p.text),
            ));
        }
        let matching: Vec<&Pattern> = self.allow.iter().filter(|p| p.host.matches(&h)).collect();
        if matching.iter().any(|p| p.admits_port(port)) {
            if let Host::Ip(addr) = h {
                // An allowed literal is still an address: refuse internal ones now.
                self.address_refusal(addr, port, &[])?;
            }
            return Ok(target);
        }
        if !matching.is_empty() {
            let mut ports: Vec<u16> = matching
                .iter()
                .flat_map(|p| p.port.map_or(DEFAULT_PORTS.to_vec(), |q| vec![q]))
                .collect();
            ports.sort_unstable();
            ports.dedup();
            let ports: Vec<String> = ports.iter().map(u16::to_string).collect();
            return Err(Denial::new(
                Reason::PortNotAllowed,
                format!(
                    "{target}: the host is allowed on port {} only",
                    ports.join(", ")
                ),
            ));
        }
        Err(match h {
            Host::Name(_) => Denial::new(
                Reason::NotAllowed,
                format!("{target} matches no --allow-domain pattern"),
            ),
            Host::Ip(_) => Denial::new(
                Reason::IpLiteralNotAllowed,
                format!("{target} is an IP address that no --allow-domain pattern names"),
            ),
        })
    }

    /// Question 2, after the one lookup: may the proxy connect to `addr` for
    /// `target` (which came from [`Policy::check_request`])?
    /// `own_addresses` are the host's interface addresses.
    pub fn check_address(
        &self,
        target: &Target,
        addr: IpAddr,
        own_addresses: &[IpAddr],
    ) -> Result<(), Denial> {
        if let Target::Ip { addr: literal, .. } = target {
            // A literal resolves to itself; anything else is a caller bug.
            if literal.to_canonical() != addr.to_canonical() {
                return Err(Denial::new(
                    Reason::NotAllowed,
                    format!("{addr} is not the requested address {literal}"),
                ));
            }
        }
        self.address_refusal(addr, target.port(), own_addresses)
    }

    /// The `--resolve` addresses for `name` (normalised like a request host;
    /// pass [`Target::Name`]'s `host`), in the order given.
    pub fn static_addresses(&self, name: &str) -> Option<&[IpAddr]> {
        if let Some(a) = self.resolve.get(name) {
            return Some(a);
        }
        match parse_host(name) {
            Ok(Host::Name(n)) => self.resolve.get(&n).map(Vec::as_slice),
            _ => None,
        }
    }

    /// The address checks shared by literals and resolved names.
    fn address_refusal(&self, addr: IpAddr, port: u16, own: &[IpAddr]) -> Result<(), Denial> {
        let (eff, via) = effective(addr);
        let shown_addr = match via {
            Some(via) => format!("{addr} ({via} {eff})"),
            None => addr.to_string(),
        };
        let denied_ip = Host::Ip(addr);
        let denied_eff = Host::Ip(eff);
        if let Some(p) = self.deny.iter().find(|p| {
            (p.host.matches(&denied_ip) || p.host.matches(&denied_eff))
                && p.port.map_or(true, |q| q == port)
        }) {
            return Err(Denial::new(
                Reason::DeniedByPattern,
                format!("{shown_addr} matches --deny-domain {:?}", p.text),
            ));
        }
        let own = own.iter().any(|o| o.to_canonical() == eff || *o == addr);
        let Some(class) = classify(eff, own) else {
            return Ok(());
        };
        let lifted = self
            .allow_private
            .iter()
            .any(|net| net.contains(&eff) && (!class.narrow || class.range.contains(net)));
        if lifted {
            return Ok(());
        }
        let hint = if class.narrow {
            format!(
                "only an --allow-private CIDR inside {} lifts this",
                class.range
            )
        } else {
            "--allow-private with a CIDR containing it lifts this".to_string()
        };
        Err(Denial::new(
            class.reason,
            format!("{shown_addr} is {} ({hint})", class.what),
        ))
    }
}

impl PolicyError {
    fn new(option: &'static str, value: &str, message: impl Into<String>) -> Self {
        PolicyError {
            option,
            value: value.to_string(),
            message: message.into(),
        }
    }
}

/// A host for error messages: quoted, control characters escaped, cut short.
fn shown(s: &str) -> String {
    const MAX: usize = 80;
    let mut t: String = s.chars().take(MAX).collect();
    if s.chars().nth(MAX).is_some() {
        t.push('…');
    }
    format!("{t:?}")
}

// ---------------------------------------------------------------------------
// Host normalisation
// ---------------------------------------------------------------------------

/// A normalised requested host.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Host {
    Name(String),
    Ip(IpAddr),
}

/// Why a host was refused (becomes a [`Denial`] or a [`PolicyError`]).
#[derive(Debug)]
struct BadHost {
    reason: Reason,
    why: String,
}

fn bad(why: impl Into<String>) -> BadHost {
    BadHost {
        reason: Reason::BadHostname,
        why: why.into(),
    }
}

fn non_canonical(why: impl Into<String>) -> BadHost {
    BadHost {
        reason: Reason::NonCanonicalIp,
        why: why.into(),
    }
}

/// Longest input looked at; a valid name is at most 253 bytes even before
/// mapping removes ignorable characters, so this is generous.
const MAX_INPUT: usize = 1024;

fn parse_host(raw: &str) -> Result<Host, BadHost> {
    if raw.is_empty() {
        return Err(bad("empty host"));
    }
    if raw.len() > MAX_INPUT {
        return Err(bad(format!("longer than {MAX_INPUT} bytes")));
    }
    if let Some(inner) = raw.strip_prefix('[') {
        let inner = inner
            .strip_suffix(']')
            .ok_or_else(|| bad("unbalanced '['"))?;
        return parse_v6(inner);
    }
    if raw.contains(':') {
        // ':' has no place in a name: this is a bare IPv6 literal or nothing.
        return parse_v6(raw);
    }
    if let Some(c) = raw
        .chars()
        .find(|&c| c.is_ascii() && !is_name_char(c.to_ascii_lowercase()))
    {
        return Err(bad(format!("{c:?} is not allowed in a host name")));
    }
    let ascii = Uts46::new()
        .to_ascii(
            raw.as_bytes(),
            AsciiDenyList::URL,
            Hyphens::Allow,
            DnsLength::Ignore,
        )
        .map_err(|_| bad("not a valid internationalised domain name (UTS 46)"))?;
    // Mapping can produce ASCII from non-ASCII (full-width forms): check again.
    if let Some(c) = ascii.chars().find(|&c| !is_name_char(c)) {
        return Err(bad(format!(
            "{c:?} is not allowed in a host name (after IDNA mapping)"
        )));
    }
    let (name, trailing_dot) = match ascii.strip_suffix('.') {
        Some(n) => (n, true),
        None => (&*ascii, false),
    };
    if name.is_empty() {
        return Err(bad("empty host"));
    }
    if ends_in_number(name) {
        return match parse_ipv4_canonical(name) {
            Some(a) if !trailing_dot => Ok(Host::Ip(IpAddr::V4(a))),
            Some(_) => Err(non_canonical("an IPv4 address with a trailing dot")),
            None => Err(non_canonical(
                "the last label is numeric, so this would be read as an IPv4 address, \
                 but it is not a canonical dotted quad (a.b.c.d, decimal, no leading zeros)",
            )),
        };
    }
    for label in name.split('.') {
        if label.is_empty() {
            return Err(bad("empty label"));
        }
        if label.len() > 63 {
            return Err(bad("a label is longer than 63 bytes"));
        }
    }
    if name.len() > 253 {
        return Err(bad("longer than 253 bytes"));
    }
    Ok(Host::Name(name.to_string()))
}

/// Lower-case LDH, `_` and the dot.
fn is_name_char(c: char) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '_' | '.')
}

fn parse_v6(s: &str) -> Result<Host, BadHost> {
    if s.contains('%') {
        return Err(bad("IPv6 zone identifiers are not allowed"));
    }
    let a: Ipv6Addr = s
        .parse()
        .map_err(|_| bad("not a host name or an IPv6 address"))?;
    if let Some(v4) = a.to_ipv4_mapped() {
        return Err(non_canonical(format!(
            "an IPv4-mapped IPv6 address: write {v4}"
        )));
    }
    Ok(Host::Ip(IpAddr::V6(a)))
}

// ---------------------------------------------------------------------------
// Numeric hosts
// ---------------------------------------------------------------------------

/// WHATWG URL's "ends in a number": the last label is all digits, or `0x`
/// followed by hex digits. Such hosts are IPv4 addresses to a URL parser.
fn ends_in_number(name: &str) -> bool {
    let last = name.rsplit('.').next().unwrap_or("");
    if !last.is_empty() && last.bytes().all(|b| b.is_ascii_digit()) {
        return true;
    }
    last.strip_prefix("0x")
        .is_some_and(|hex| hex.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// Exactly `a.b.c.d`, decimal, 0..=255, no leading zeros.
fn parse_ipv4_canonical(s: &str) -> Option<Ipv4Addr> {
    let mut octets = [0u8; 4];
    let mut parts = s.split('.');
    for o in &mut octets {
        let p = parts.next()?;
        let ok = (1..=3).contains(&p.len())
            && p.bytes().all(|b| b.is_ascii_digit())
            && (p == "0" || !p.starts_with('0'));
        if !ok {
            return None;
        }
        *o = p.parse().ok()?;
    }
    if parts.next().is_some() {
        return None;
    }
    Some(Ipv4Addr::from(octets))
}

// ---------------------------------------------------------------------------
// Patterns
// ---------------------------------------------------------------------------

#[derive(Debug, Clone)]
struct Pattern {
    /// As given, for messages.
    text: String,
    host: HostPattern,
    /// `None`: deny patterns match every port, allow patterns 80 and 443.
    port: Option<u16>,
}

#[derive(Debug, Clone)]
enum HostPattern {
    /// Exactly this name.
    Exact(String),
    /// Strict subdomains of this name (`*.name`).
    Subdomains(String),
    /// Addresses in this network (an address is a /32 or /128).
    Net(IpNet),
}

impl HostPattern {
    fn matches(&self, host: &Host) -> bool {
        match (self, host) {
            (HostPattern::Exact(p), Host::Name(n)) => p == n,
            // "a.example.com" ends with ".example.com": a dot boundary, and a
            // non-empty label before it (names have no empty labels).
            (HostPattern::Subdomains(p), Host::Name(n)) => n
                .strip_suffix(p.as_str())
                .and_then(|rest| rest.strip_suffix('.'))
                .is_some_and(|sub| !sub.is_empty()),
            (HostPattern::Net(net), Host::Ip(a)) => net.contains(a),
            _ => false,
        }
    }
}

impl Pattern {
    fn admits_port(&self, port: u16) -> bool {
        match self.port {
            Some(p) => p == port,
            None => DEFAULT_PORTS.contains(&port),
        }
    }

    fn parse(text: &str) -> Result<Pattern, String> {
        if text.is_empty() {
            return Err("empty pattern".into());
        }
        if text.contains("://") {
            return Err("a pattern is a host name (example.com), not a URL".into());
        }
        let (host, port) = split_port(text)?;
        if host == "*" {
            return Err(
                "'*' alone would allow every host; name the domains (or *.example.com)".into(),
            );
        }
        let (wild, host) = match host.strip_prefix("*.") {
            Some(rest) => (true, rest),
            None => (false, host),
        };
        if host.contains('*') {
            return Err("'*' may only be the whole first label, as in *.example.com".into());
        }
        if host.starts_with('.') {
            return Err(
                "a leading dot is not a pattern; write *.example.com for subdomains".into(),
            );
        }
        let host = if host.contains('/') {
            if wild {
                return Err("a wildcard cannot apply to a CIDR".into());
            }
            HostPattern::Net(parse_cidr(host)?)
        } else {
            match parse_host(host).map_err(|b| b.why)? {
                Host::Name(n) if wild => HostPattern::Subdomains(n),
                Host::Name(n) => HostPattern::Exact(n),
                Host::Ip(_) if wild => {
                    return Err("a wildcard cannot apply to an IP address".into())
                }
                Host::Ip(a) => HostPattern::Net(IpNet::from(a)),
            }
        };
        Ok(Pattern {
            text: text.to_string(),
            host,
            port,
        })
    }
}

/// `host`, `host:port`, `[v6]`, `[v6]:port`, `[v6/len]:port`, or a bare IPv6
/// CIDR (no port).
fn split_port(text: &str) -> Result<(&str, Option<u16>), String> {
    if text.starts_with('[') {
        let close = text.find(']').ok_or("unbalanced '['")?;
        let (host, after) = text.split_at(close + 1);
        if !host.contains(':') {
            return Err("brackets are for IPv6 addresses".into());
        }
        let port = match after {
            "" => None,
            _ => Some(parse_port(
                after.strip_prefix(':').ok_or("expected :PORT after ']'")?,
            )?),
        };
        // parse_host takes "[v6]"; a bracketed CIDR goes without brackets.
        let host = match host.contains('/') {
            true => host
                .strip_prefix('[')
                .and_then(|h| h.strip_suffix(']'))
                .unwrap_or(host),
            false => host,
        };
        return Ok((host, port));
    }
    if text.matches(':').count() >= 2 {
        // A bare IPv6 CIDR is unambiguous; a bare address is not:
        // `2001:db8::1:443` is an address, not `[2001:db8::1]:443`.
        if !text.contains('/') {
            return Err(
                "write IPv6 addresses in brackets: [2001:db8::1] or [2001:db8::1]:443".into(),
            );
        }
        return Ok((text, None));
    }
    match text.split_once(':') {
        Some((host, port)) => Ok((host, Some(parse_port(port)?))),
        None => Ok((text, None)),
    }
}

fn parse_port(s: &str) -> Result<u16, String> {
    let ok = (1..=5).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_digit());
    match s.parse::<u16>() {
        Ok(p) if ok && p != 0 => Ok(p),
        _ => Err(format!("{s:?} is not a port (1-65535)")),
    }
}

/// `addr/len`: a canonical address, no host bits set.
fn parse_cidr(s: &str) -> Result<IpNet, String> {
    let (addr, len) = s.split_once('/').ok_or("not a CIDR")?;
    let addr = match parse_host(addr).map_err(|b| b.why)? {
        Host::Ip(a) => a,
        Host::Name(_) => {
            return Err(
                "'/' belongs only in a CIDR (192.0.2.0/24); a pattern is a host, not a URL".into(),
            )
        }
    };
    let len_ok = (1..=3).contains(&len.len()) && len.bytes().all(|b| b.is_ascii_digit());
    let net = len
        .parse::<u8>()
        .ok()
        .filter(|_| len_ok)
        .and_then(|l| IpNet::new(addr, l).ok())
        .ok_or_else(|| format!("{len:?} is not a prefix length for {addr}"))?;
    if net.network() != addr {
        return Err(format!("host bits are set; did you mean {}?", net.trunc()));
    }
    Ok(net)
}

/// An `--allow-private` entry: a CIDR, or one address (bracketed or bare).
fn parse_net(text: &str) -> Result<IpNet, String> {
    let unbracketed = text
        .strip_prefix('[')
        .and_then(|t| t.strip_suffix(']'))
        .filter(|t| t.contains('/'));
    if let Some(t) = unbracketed {
        return parse_cidr(t);
    }
    if text.contains('/') {
        return parse_cidr(text);
    }
    match parse_host(text).map_err(|b| b.why)? {
        Host::Ip(a) => Ok(IpNet::from(a)),
        Host::Name(_) => Err("expected a CIDR (10.0.0.0/8) or an IP address, not a name".into()),
    }
}

/// `HOST:ADDR[,ADDR...]`.
fn parse_resolve(text: &str) -> Result<(String, Vec<IpAddr>), String> {
    let (host, addrs) = text.split_once(':').ok_or("expected HOST:ADDR")?;
    let host = match parse_host(host).map_err(|b| b.why)? {
        Host::Name(n) => n,
        Host::Ip(_) => return Err("HOST must be a name, not an address".into()),
    };
    let mut out = Vec::new();
    for a in addrs.split(',') {
        let bracketed = a.starts_with('[');
        if !bracketed && a.contains(':') {
            let first = a.split(':').next().unwrap_or("");
            if !first.is_empty() && first.bytes().all(|b| b.is_ascii_digit()) {
                return Err(
                    "curl's HOST:PORT:ADDR is not supported: the address applies to every port; \
                            write HOST:ADDR"
                        .into(),
                );
            }
            return Err("write IPv6 addresses in brackets: HOST:[2001:db8::1]".into());
        }
        if a.contains('/') {
            return Err(format!("{a:?} is not an IP address"));
        }
        match parse_host(a) {
            Ok(Host::Ip(ip)) => out.push(ip),
            Ok(Host::Name(_)) => return Err(format!("{a:?} is not an IP address")),
            Err(b) => return Err(format!("{a:?}: {}", b.why)),
        }
    }
    Ok((host, out))
}

// ---------------------------------------------------------------------------
// Address classes
// ---------------------------------------------------------------------------

/// Why an address is refused, and what `--allow-private` CIDR lifts it.
struct Class {
    reason: Reason,
    what: &'static str,
    /// The range that made it so.
    range: IpNet,
    /// Only a CIDR inside `range` lifts it (loopback, metadata, own).
    narrow: bool,
}

/// The IPv4 address an IPv6 address leads to, if it embeds one: IPv4-mapped,
/// NAT64 (well-known prefix), 6to4.
fn effective(addr: IpAddr) -> (IpAddr, Option<&'static str>) {
    let IpAddr::V6(v6) = addr else {
        return (addr, None);
    };
    if let Some(v4) = v6.to_ipv4_mapped() {
        return (IpAddr::V4(v4), Some("IPv4-mapped"));
    }
    let bits = u128::from(v6);
    if NAT64.contains(&v6) {
        return (IpAddr::V4(Ipv4Addr::from(bits as u32)), Some("NAT64 for"));
    }
    if SIX_TO_FOUR.contains(&v6) {
        return (
            IpAddr::V4(Ipv4Addr::from((bits >> 80) as u32)),
            Some("6to4 for"),
        );
    }
    (addr, None)
}

const NAT64: Ipv6Net = v6net(0x0064, 0xff9b, 0, 96);
const SIX_TO_FOUR: Ipv6Net = v6net(0x2002, 0, 0, 16);

const fn v4net(a: u8, b: u8, c: u8, d: u8, len: u8) -> IpNet {
    IpNet::V4(Ipv4Net::new_assert(Ipv4Addr::new(a, b, c, d), len))
}

/// A prefix from its first three 16-bit groups (all our prefixes fit).
const fn v6net(a: u16, b: u16, c: u16, len: u8) -> Ipv6Net {
    Ipv6Net::new_assert(Ipv6Addr::new(a, b, c, 0, 0, 0, 0, 0), len)
}

const fn v6(a: u16, b: u16, c: u16, len: u8) -> IpNet {
    IpNet::V6(v6net(a, b, c, len))
}

/// Cloud metadata endpoints: AWS/GCP/Azure/OpenStack/Oracle/DigitalOcean,
/// AWS ECS task metadata, EKS Pod Identity, Tencent, Scaleway, Alibaba,
/// Azure WireServer; AWS and GCP over IPv6.
const METADATA: &[IpAddr] = &[
    IpAddr::V4(Ipv4Addr::new(169, 254, 169, 254)),
    IpAddr::V4(Ipv4Addr::new(169, 254, 170, 2)),
    IpAddr::V4(Ipv4Addr::new(169, 254, 170, 23)),
    IpAddr::V4(Ipv4Addr::new(169, 254, 0, 23)),
    IpAddr::V4(Ipv4Addr::new(169, 254, 42, 42)),
    IpAddr::V4(Ipv4Addr::new(100, 100, 100, 200)),
    IpAddr::V4(Ipv4Addr::new(168, 63, 129, 16)),
    IpAddr::V6(Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254)),
    IpAddr::V6(Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x23)),
    IpAddr::V6(Ipv6Addr::new(0xfd20, 0xce, 0, 0, 0, 0, 0, 0x254)),
];

use Reason::{InternalAddress as Internal, ReservedAddress as Reserved};

/// Refused ranges, most specific first: (range, reason, what, narrow).
#[rustfmt::skip]
const RANGES: &[(IpNet, Reason, &str, bool)] = &[
    (v4net(0, 0, 0, 0, 8), Internal, "the unspecified range 0.0.0.0/8 (the host itself)", true),
    (v4net(127, 0, 0, 0, 8), Internal, "loopback", true),
    (v4net(10, 0, 0, 0, 8), Internal, "private (10.0.0.0/8)", false),
    (v4net(100, 64, 0, 0, 10), Internal, "carrier-grade NAT space (100.64.0.0/10)", false),
    (v4net(169, 254, 0, 0, 16), Internal, "link-local", false),
    (v4net(172, 16, 0, 0, 12), Internal, "private (172.16.0.0/12)", false),
    (v4net(192, 0, 0, 0, 24), Reserved, "IETF protocol assignments (192.0.0.0/24)", false),
    (v4net(192, 0, 2, 0, 24), Reserved, "documentation (192.0.2.0/24)", false),
    (v4net(192, 88, 99, 0, 24), Reserved, "the deprecated 6to4 relay range", false),
    (v4net(192, 168, 0, 0, 16), Internal, "private (192.168.0.0/16)", false),
    (v4net(198, 18, 0, 0, 15), Reserved, "benchmarking (198.18.0.0/15)", false),
    (v4net(198, 51, 100, 0, 24), Reserved, "documentation (198.51.100.0/24)", false),
    (v4net(203, 0, 113, 0, 24), Reserved, "documentation (203.0.113.0/24)", false),
    (v4net(224, 0, 0, 0, 4), Reserved, "multicast", false),
    (v4net(255, 255, 255, 255, 32), Reserved, "broadcast", false),
    (v4net(240, 0, 0, 0, 4), Reserved, "reserved (240.0.0.0/4)", false),
    (IpNet::V6(Ipv6Net::new_assert(Ipv6Addr::UNSPECIFIED, 128)), Internal, "unspecified (the host itself)", true),
    (IpNet::V6(Ipv6Net::new_assert(Ipv6Addr::LOCALHOST, 128)), Internal, "loopback", true),
    (v6(0, 0, 0, 96), Reserved, "IPv4-compatible IPv6 (deprecated)", false),
    (v6(0x64, 0xff9b, 1, 48), Internal, "local-use NAT64 (64:ff9b:1::/48)", false),
    (v6(0x100, 0, 0, 64), Reserved, "discard-only (100::/64)", false),
    (v6(0x2001, 0, 0, 32), Reserved, "Teredo (2001::/32)", false),
    (v6(0x2001, 2, 0, 48), Reserved, "benchmarking (2001:2::/48)", false),
    (v6(0x2001, 0x10, 0, 28), Reserved, "ORCHID (2001:10::/28)", false),
    (v6(0x2001, 0x20, 0, 28), Reserved, "ORCHIDv2 (2001:20::/28)", false),
    (v6(0x2001, 0xdb8, 0, 32), Reserved, "documentation (2001:db8::/32)", false),
    (v6(0x3fff, 0, 0, 20), Reserved, "documentation (3fff::/20)", false),
    (v6(0xfc00, 0, 0, 7), Internal, "unique local (fc00::/7)", false),
    (v6(0xfe80, 0, 0, 10), Internal, "link-local (fe80::/10)", false),
    (v6(0xfec0, 0, 0, 10), Internal, "site-local (fec0::/10, deprecated)", false),
    (v6(0xff00, 0, 0, 8), Reserved, "multicast", false),
];

/// Everything public in IPv6 is inside global unicast.
const GLOBAL_UNICAST: IpNet = v6(0x2000, 0, 0, 3);

/// The refusal class of `addr` (already reduced by [`effective`]), if any.
fn classify(addr: IpAddr, own: bool) -> Option<Class> {
    if METADATA.contains(&addr) {
        let what = "a cloud metadata endpoint";
        return Some(Class {
            reason: Reason::MetadataAddress,
            what,
            range: IpNet::from(addr),
            narrow: true,
        });
    }
    if own {
        let what = "one of this host's own addresses";
        return Some(Class {
            reason: Internal,
            what,
            range: IpNet::from(addr),
            narrow: true,
        });
    }
    if let Some(&(range, reason, what, narrow)) = RANGES.iter().find(|r| r.0.contains(&addr)) {
        return Some(Class {
            reason,
            what,
            range,
            narrow,
        });
    }
    if addr.is_ipv6() && !GLOBAL_UNICAST.contains(&addr) {
        let what = "outside IPv6 global unicast (2000::/3)";
        return Some(Class {
            reason: Reserved,
            what,
            range: GLOBAL_UNICAST,
            narrow: false,
        });
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use Reason::*;

    fn policy(allow: &[&str], deny: &[&str], private: &[&str], resolve: &[&str]) -> Policy {
        let owned = |l: &[&str]| l.iter().map(|s| s.to_string()).collect();
        let p = ProxyPolicy {
            allow: owned(allow),
            deny: owned(deny),
            allow_private: owned(private),
            resolve: owned(resolve),
        };
        match Policy::new(&p) {
            Ok(p) => p,
            Err(e) => panic!("{e}"),
        }
    }

    fn outcome(r: Result<Target, Denial>) -> Result<String, Reason> {
        r.map(|t| t.to_string()).map_err(|d| d.reason)
    }

    // -----------------------------------------------------------------------
    // The matcher: (allow, deny, host, port) → target or reason.
    // -----------------------------------------------------------------------

    type Row = (
        &'static [&'static str],
        &'static [&'static str],
        &'static str,
        u16,
        Result<&'static str, Reason>,
    );

    const A: &[&str] = &["allowed.test"];
    const W: &[&str] = &["*.wild.test"];
    const NONE: &[&str] = &[];
    const IP4: &[&str] = &["8.8.8.8"];
    const IP6: &[&str] = &[
        "[2606:4700::1111]",
        "2606:4700:4700::/48",
        "[2001:4860:4860::8888]:853",
    ];
    const CORP: &[&str] = &["corp.test", "*.corp.test"];
    const IDN: &[&str] = &["bücher.example"];

    #[rustfmt::skip]
    const MATCHER: &[Row] = &[
        // Exact names, case, trailing dot.
        (A, NONE, "allowed.test", 443, Ok("allowed.test:443")),
        (A, NONE, "allowed.test", 80, Ok("allowed.test:80")),
        (A, NONE, "ALLOWED.TEST", 443, Ok("allowed.test:443")),
        (A, NONE, "Allowed.Test.", 443, Ok("allowed.test:443")),
        (A, NONE, "allowed.test..", 443, Err(BadHostname)),
        (A, NONE, "sub.allowed.test", 443, Err(NotAllowed)),
        (A, NONE, "localhost", 80, Err(NotAllowed)),
        (A, NONE, "allowed_test", 443, Err(NotAllowed)),
        // Lookalikes.
        (A, NONE, "allowed.test.evil", 443, Err(NotAllowed)),
        (A, NONE, "evilallowed.test", 443, Err(NotAllowed)),
        (A, NONE, "allowed.tes", 443, Err(NotAllowed)),
        (A, NONE, "allowed.test@evil", 443, Err(BadHostname)),
        (A, NONE, "evil@allowed.test", 443, Err(BadHostname)),
        (A, NONE, "allowed.test%2f", 443, Err(BadHostname)),
        (A, NONE, "allowed.test%00", 443, Err(BadHostname)),
        (A, NONE, "allowed.test/", 443, Err(BadHostname)),
        (A, NONE, "allowed.test\\evil", 443, Err(BadHostname)),
        (A, NONE, "allowed.test#x", 443, Err(BadHostname)),
        (A, NONE, "allowed.test?x", 443, Err(BadHostname)),
        (A, NONE, "allowed.test:443", 443, Err(BadHostname)),
        (A, NONE, "allowed.test ", 443, Err(BadHostname)),
        (A, NONE, " allowed.test", 443, Err(BadHostname)),
        (A, NONE, "allowed.test\t", 443, Err(BadHostname)),
        (A, NONE, "allowed.test\r\n", 443, Err(BadHostname)),
        (A, NONE, "allowed.test\0", 443, Err(BadHostname)),
        (A, NONE, "allowed.test\0.evil", 443, Err(BadHostname)),
        (A, NONE, "*.allowed.test", 443, Err(BadHostname)),
        // Unicode: confusables are other names; width variants are the same name.
        (A, NONE, "\u{430}llowed.test", 443, Err(NotAllowed)),
        (A, NONE, "allowed.t\u{435}st", 443, Err(NotAllowed)),
        (A, NONE, "ａｌｌｏｗｅｄ.ｔｅｓｔ", 443, Ok("allowed.test:443")),
        (A, NONE, "allowed.test\u{3002}", 443, Ok("allowed.test:443")),
        (A, NONE, "allowed\u{ff0e}test", 443, Ok("allowed.test:443")),
        (A, NONE, "allowed.test\u{ff20}evil", 443, Err(BadHostname)),
        (A, NONE, "allowed.test\u{ff0f}", 443, Err(BadHostname)),
        (A, NONE, "allowed.test\u{202e}", 443, Err(BadHostname)),
        (A, NONE, "allowed.test\u{3000}", 443, Err(BadHostname)),
        (A, NONE, "xn--zz.test", 443, Err(BadHostname)),
        (A, NONE, "xn--.test", 443, Err(BadHostname)),
        // Shape.
        (A, NONE, "", 443, Err(BadHostname)),
        (A, NONE, ".", 443, Err(BadHostname)),
        (A, NONE, ".allowed.test", 443, Err(BadHostname)),
        (A, NONE, "allowed..test", 443, Err(BadHostname)),
        (A, NONE, "a.\u{ff0e}", 443, Err(BadHostname)),
        // Ports: default 80 and 443; port 0 never.
        (A, NONE, "allowed.test", 8080, Err(PortNotAllowed)),
        (A, NONE, "allowed.test", 22, Err(PortNotAllowed)),
        (A, NONE, "allowed.test", 0, Err(PortNotAllowed)),
        (A, NONE, "allowed.test", 65535, Err(PortNotAllowed)),
        (&["port.test:8443", "port.test:22"], NONE, "port.test", 8443, Ok("port.test:8443")),
        (&["port.test:8443", "port.test:22"], NONE, "port.test", 22, Ok("port.test:22")),
        (&["port.test:8443", "port.test:22"], NONE, "port.test", 443, Err(PortNotAllowed)),
        (&["port.test:8443", "port.test"], NONE, "port.test", 443, Ok("port.test:443")),
        (&["port.test:8443"], NONE, "other.test", 8443, Err(NotAllowed)),
        // Wildcards: subdomains at a dot boundary only.
        (W, NONE, "a.wild.test", 443, Ok("a.wild.test:443")),
        (W, NONE, "a.b.wild.test", 443, Ok("a.b.wild.test:443")),
        (W, NONE, "A.WILD.TEST.", 443, Ok("a.wild.test:443")),
        (W, NONE, "_acme.wild.test", 443, Ok("_acme.wild.test:443")),
        (W, NONE, "-.wild.test", 443, Ok("-.wild.test:443")),
        (W, NONE, "wild.test", 443, Err(NotAllowed)),
        (W, NONE, "wild.test.", 443, Err(NotAllowed)),
        (W, NONE, "evilwild.test", 443, Err(NotAllowed)),
        (W, NONE, "a.evilwild.test", 443, Err(NotAllowed)),
        (W, NONE, "wild.test.evil", 443, Err(NotAllowed)),
        (W, NONE, "a.wild.test.evil", 443, Err(NotAllowed)),
        (W, NONE, ".wild.test", 443, Err(BadHostname)),
        (W, NONE, "a.wild.test", 8443, Err(PortNotAllowed)),
        (&["*.wild.test:8443"], NONE, "a.wild.test", 8443, Ok("a.wild.test:8443")),
        (&["*.wild.test:8443"], NONE, "a.wild.test", 443, Err(PortNotAllowed)),
        (&["*.wild.test:8443"], NONE, "wild.test", 8443, Err(NotAllowed)),
        // Deny wins; a deny without a port denies every port.
        (CORP, &["secret.corp.test"], "secret.corp.test", 443, Err(DeniedByPattern)),
        (CORP, &["secret.corp.test"], "SECRET.corp.test.", 443, Err(DeniedByPattern)),
        (CORP, &["secret.corp.test"], "secret.corp.test", 8443, Err(DeniedByPattern)),
        (CORP, &["secret.corp.test"], "a.secret.corp.test", 443, Ok("a.secret.corp.test:443")),
        (CORP, &["secret.corp.test"], "corp.test", 443, Ok("corp.test:443")),
        (CORP, &["*.secret.corp.test"], "x.secret.corp.test", 443, Err(DeniedByPattern)),
        (CORP, &["*.secret.corp.test"], "secret.corp.test", 443, Ok("secret.corp.test:443")),
        (CORP, &["*.corp.test"], "corp.test", 443, Ok("corp.test:443")),
        (CORP, &["*.corp.test"], "www.corp.test", 443, Err(DeniedByPattern)),
        (&["corp.test", "corp.test:8080"], &["corp.test:80"], "corp.test", 80, Err(DeniedByPattern)),
        (&["corp.test", "corp.test:8080"], &["corp.test:80"], "corp.test", 443, Ok("corp.test:443")),
        (&["corp.test", "corp.test:8080"], &["corp.test:80"], "corp.test", 8080, Ok("corp.test:8080")),
        (NONE, &["x.test"], "x.test", 443, Err(DeniedByPattern)),
        (NONE, NONE, "x.test", 443, Err(NotAllowed)),
        // IDNA patterns match every spelling of the name.
        (IDN, NONE, "bücher.example", 443, Ok("xn--bcher-kva.example:443")),
        (IDN, NONE, "BÜCHER.EXAMPLE", 443, Ok("xn--bcher-kva.example:443")),
        (IDN, NONE, "xn--bcher-kva.example", 443, Ok("xn--bcher-kva.example:443")),
        (IDN, NONE, "XN--BCHER-KVA.example", 443, Ok("xn--bcher-kva.example:443")),
        (IDN, NONE, "bucher.example", 443, Err(NotAllowed)),
        (&["xn--bcher-kva.example"], NONE, "bücher.example", 443, Ok("xn--bcher-kva.example:443")),
        // IPv4 literals: canonical only.
        (IP4, NONE, "8.8.8.8", 443, Ok("8.8.8.8:443")),
        (IP4, NONE, "8.8.8.8", 53, Err(PortNotAllowed)),
        (IP4, NONE, "８.８.８.８", 443, Ok("8.8.8.8:443")),
        (IP4, NONE, "8.8.8.9", 443, Err(IpLiteralNotAllowed)),
        (IP4, NONE, "134744072", 443, Err(NonCanonicalIp)),
        (IP4, NONE, "0x08080808", 443, Err(NonCanonicalIp)),
        (IP4, NONE, "0x8.8.8.8", 443, Err(NonCanonicalIp)),
        (IP4, NONE, "8.8.2056", 443, Err(NonCanonicalIp)),
        (IP4, NONE, "8.526344", 443, Err(NonCanonicalIp)),
        (IP4, NONE, "010.8.8.8", 443, Err(NonCanonicalIp)),
        (IP4, NONE, "8.8.8.08", 443, Err(NonCanonicalIp)),
        (IP4, NONE, "8.8.8.8.", 443, Err(NonCanonicalIp)),
        (IP4, NONE, "8.8.8", 443, Err(NonCanonicalIp)),
        (IP4, NONE, "8.8.8.8.8", 443, Err(NonCanonicalIp)),
        (IP4, NONE, "8.8.8.256", 443, Err(NonCanonicalIp)),
        (IP4, NONE, "8.8.8.0008", 443, Err(NonCanonicalIp)),
        (IP4, NONE, "x.8.8.8", 443, Err(NonCanonicalIp)),
        (IP4, NONE, "8.8.8.0X8", 443, Err(NonCanonicalIp)),
        (IP4, NONE, "2130706433", 443, Err(NonCanonicalIp)),
        (IP4, NONE, "0x7f.1", 443, Err(NonCanonicalIp)),
        (IP4, NONE, "0x7f000001", 443, Err(NonCanonicalIp)),
        (IP4, NONE, "127.1", 443, Err(NonCanonicalIp)),
        (IP4, NONE, "127.0.0.01", 443, Err(NonCanonicalIp)),
        (IP4, NONE, "0177.0.0.1", 443, Err(NonCanonicalIp)),
        (IP4, NONE, "127.0.0.1.", 443, Err(NonCanonicalIp)),
        (IP4, NONE, "1.2.3.4.5", 443, Err(NonCanonicalIp)),
        (IP4, NONE, "foo.123", 443, Err(NonCanonicalIp)),
        (IP4, NONE, "foo.0x1f", 443, Err(NonCanonicalIp)),
        (IP4, NONE, "foo.0x", 443, Err(NonCanonicalIp)),
        (IP4, NONE, "123.example", 443, Err(NotAllowed)),
        (IP4, NONE, "foo.0xg", 443, Err(NotAllowed)),
        (IP4, NONE, "127.0.0.1", 443, Err(IpLiteralNotAllowed)),
        (IP4, NONE, "0.0.0.0", 443, Err(IpLiteralNotAllowed)),
        (IP4, NONE, "dns.google", 443, Err(NotAllowed)),
        (A, NONE, "8.8.8.8", 443, Err(IpLiteralNotAllowed)),
        // Allowed literals are still checked as addresses.
        (&["127.0.0.1"], NONE, "127.0.0.1", 443, Err(InternalAddress)),
        (&["10.0.0.5"], NONE, "10.0.0.5", 443, Err(InternalAddress)),
        (&["169.254.169.254"], NONE, "169.254.169.254", 80, Err(MetadataAddress)),
        (&["192.0.2.1"], NONE, "192.0.2.1", 443, Err(ReservedAddress)),
        (&["[::1]"], NONE, "[::1]", 443, Err(InternalAddress)),
        (&["[64:ff9b::7f00:1]"], NONE, "[64:ff9b::7f00:1]", 443, Err(InternalAddress)),
        (&["[64:ff9b::808:808]"], NONE, "[64:ff9b::808:808]", 443, Ok("[64:ff9b::808:808]:443")),
        // CIDRs, with and without ports; deny CIDRs.
        (&["8.8.4.0/24"], NONE, "8.8.4.4", 443, Ok("8.8.4.4:443")),
        (&["8.8.4.0/24"], NONE, "8.8.5.4", 443, Err(IpLiteralNotAllowed)),
        (&["8.8.4.0/24"], NONE, "8.8.4.4", 22, Err(PortNotAllowed)),
        (&["8.8.4.0/24:53"], NONE, "8.8.4.4", 53, Ok("8.8.4.4:53")),
        (&["8.8.0.0/16"], &["8.8.8.0/24"], "8.8.8.8", 443, Err(DeniedByPattern)),
        (&["8.8.0.0/16"], &["8.8.8.0/24"], "8.8.4.4", 443, Ok("8.8.4.4:443")),
        (&["8.8.0.0/16"], &["8.8.8.8:80"], "8.8.8.8", 443, Ok("8.8.8.8:443")),
        // IPv6 literals.
        (IP6, NONE, "[2606:4700::1111]", 443, Ok("[2606:4700::1111]:443")),
        (IP6, NONE, "2606:4700::1111", 443, Ok("[2606:4700::1111]:443")),
        (IP6, NONE, "[2606:4700:0:0:0:0:0:1111]", 443, Ok("[2606:4700::1111]:443")),
        (IP6, NONE, "[2606:4700::1112]", 443, Err(IpLiteralNotAllowed)),
        (IP6, NONE, "[2606:4700:4700::64]", 80, Ok("[2606:4700:4700::64]:80")),
        (IP6, NONE, "[2001:4860:4860::8888]", 853, Ok("[2001:4860:4860::8888]:853")),
        (IP6, NONE, "[2001:4860:4860::8888]", 443, Err(PortNotAllowed)),
        (IP6, &["[2606:4700::1111]"], "[2606:4700::1111]", 443, Err(DeniedByPattern)),
        (IP6, NONE, "[::1]", 443, Err(IpLiteralNotAllowed)),
        (IP6, NONE, "::1", 443, Err(IpLiteralNotAllowed)),
        (IP6, NONE, "[::]", 443, Err(IpLiteralNotAllowed)),
        (IP6, NONE, "[::ffff:127.0.0.1]", 443, Err(NonCanonicalIp)),
        (IP6, NONE, "[::ffff:7f00:1]", 443, Err(NonCanonicalIp)),
        (IP6, NONE, "[::FFFF:8.8.8.8]", 443, Err(NonCanonicalIp)),
        (IP6, NONE, "[::ffff:127.0.0.01]", 443, Err(BadHostname)),
        (IP6, NONE, "fe80::1%eth0", 443, Err(BadHostname)),
        (IP6, NONE, "[fe80::1%25eth0]", 443, Err(BadHostname)),
        (IP6, NONE, "[fe80::1%eth0]", 443, Err(BadHostname)),
        (IP6, NONE, "[2606:4700::1111]:443", 443, Err(BadHostname)),
        (IP6, NONE, "[2606:4700::1111", 443, Err(BadHostname)),
        (IP6, NONE, "2606:4700::1111]", 443, Err(BadHostname)),
        (IP6, NONE, "[127.0.0.1]", 443, Err(BadHostname)),
        (IP6, NONE, "[allowed.test]", 443, Err(BadHostname)),
        (IP6, NONE, "[]", 443, Err(BadHostname)),
        (IP6, NONE, "[[::1]]", 443, Err(BadHostname)),
        (IP6, NONE, "2606:4700::1111::1", 443, Err(BadHostname)),
    ];

    #[test]
    fn matcher_truth_table() {
        assert!(MATCHER.len() >= 80);
        let mut failures = Vec::new();
        for (i, &(allow, deny, host, port, want)) in MATCHER.iter().enumerate() {
            let got = outcome(policy(allow, deny, &[], &[]).check_request(host, port));
            if got.as_deref().map_err(|r| *r) != want {
                failures.push(format!(
                    "row {i}: {allow:?} -{deny:?} {host:?}:{port}: want {want:?}, got {got:?}"
                ));
            }
        }
        assert!(
            failures.is_empty(),
            "{} failures:\n{}",
            failures.len(),
            failures.join("\n")
        );
    }

    #[test]
    fn length_limits() {
        let p = policy(&["*.test"], &[], &[], &[]);
        let label63 = "a".repeat(63);
        let label64 = "a".repeat(64);
        assert!(p.check_request(&format!("{label63}.test"), 443).is_ok());
        assert_eq!(
            p.check_request(&format!("{label64}.test"), 443)
                .unwrap_err()
                .reason,
            BadHostname
        );
        // 253 bytes is the longest name; 254 is refused, with or without a trailing dot.
        let name = |last: usize| {
            let l = |c: &str, n| c.repeat(n);
            format!(
                "{}.{}.{}.{}.test",
                l("a", 63),
                l("b", 63),
                l("c", 63),
                l("d", last)
            )
        };
        let n253 = name(56);
        assert_eq!(n253.len(), 253);
        assert!(p.check_request(&n253, 443).is_ok());
        assert!(p.check_request(&format!("{n253}."), 443).is_ok());
        let n254 = name(57);
        assert_eq!(p.check_request(&n254, 443).unwrap_err().reason, BadHostname);
        assert_eq!(
            p.check_request(&"a".repeat(100_000), 443)
                .unwrap_err()
                .reason,
            BadHostname
        );
    }

    // -----------------------------------------------------------------------
    // Literals and --allow-private: (allow, allow-private, host) → outcome.
    // -----------------------------------------------------------------------

    #[test]
    fn literals_and_allow_private() {
        type Lit = (
            &'static [&'static str],
            &'static [&'static str],
            &'static str,
            Result<&'static str, Reason>,
        );
        #[rustfmt::skip]
        const ROWS: &[Lit] = &[
            (&["10.0.0.5"], &[], "10.0.0.5", Err(InternalAddress)),
            (&["10.0.0.5"], &["10.0.0.0/8"], "10.0.0.5", Ok("10.0.0.5:443")),
            (&[], &["10.0.0.0/8"], "10.0.0.5", Err(IpLiteralNotAllowed)),
            (&["allowed.test"], &["10.0.0.0/8"], "10.0.0.5", Err(IpLiteralNotAllowed)),
            (&["10.0.0.0/8"], &["10.0.0.0/16"], "10.1.0.5", Err(InternalAddress)),
            (&["10.0.0.0/8"], &["10.0.0.0/16"], "10.0.9.5", Ok("10.0.9.5:443")),
            (&["127.0.0.1"], &["0.0.0.0/0"], "127.0.0.1", Err(InternalAddress)),
            (&["127.0.0.1"], &["127.0.0.1"], "127.0.0.1", Ok("127.0.0.1:443")),
            (&["127.0.0.1"], &["127.0.0.0/8"], "127.0.0.1", Ok("127.0.0.1:443")),
            (&["0.0.0.0"], &["0.0.0.0/0"], "0.0.0.0", Err(InternalAddress)),
            (&["169.254.169.254"], &["169.254.0.0/16"], "169.254.169.254", Err(MetadataAddress)),
            (&["169.254.169.254"], &["169.254.169.254/32"], "169.254.169.254", Ok("169.254.169.254:443")),
            (&["169.254.1.1"], &["169.254.0.0/16"], "169.254.1.1", Ok("169.254.1.1:443")),
            (&["[fd00:ec2::254]"], &["fc00::/7"], "[fd00:ec2::254]", Err(MetadataAddress)),
            (&["[fd12::1]"], &["fc00::/7"], "[fd12::1]", Ok("[fd12::1]:443")),
            (&["[fd12::1]"], &["[fd12::/16]"], "[fd12::1]", Ok("[fd12::1]:443")),
            (&["[::1]"], &["::/0"], "[::1]", Err(InternalAddress)),
            (&["[::1]"], &["[::1]"], "[::1]", Ok("[::1]:443")),
            (&["192.0.2.7"], &["192.0.2.0/24"], "192.0.2.7", Ok("192.0.2.7:443")),
        ];
        for &(allow, private, host, want) in ROWS {
            let got = outcome(policy(allow, &[], private, &[]).check_request(host, 443));
            assert_eq!(
                got.as_deref().map_err(|r| *r),
                want,
                "{allow:?} private {private:?} {host}"
            );
        }
    }

    // -----------------------------------------------------------------------
    // Addresses after resolution: (address, own, allow-private) → outcome.
    // -----------------------------------------------------------------------

    const OWN: &[&str] = &["93.184.216.34", "10.0.0.5", "2a01:4f8::5"];

    type AddrRow = (
        &'static str,
        &'static [&'static str],
        &'static [&'static str],
        Result<(), Reason>,
    );

    #[rustfmt::skip]
    const ADDRESSES: &[AddrRow] = &[
        // Public: fine.
        ("8.8.8.8", &[], &[], Ok(())),
        ("1.1.1.1", OWN, &[], Ok(())),
        ("2606:4700::1111", OWN, &[], Ok(())),
        ("::ffff:8.8.8.8", &[], &[], Ok(())),
        ("64:ff9b::808:808", &[], &[], Ok(())),
        ("2002:808:808::1", &[], &[], Ok(())),
        ("100.63.255.255", &[], &[], Ok(())),
        ("100.128.0.0", &[], &[], Ok(())),
        ("172.32.0.1", &[], &[], Ok(())),
        ("172.15.255.255", &[], &[], Ok(())),
        ("192.169.0.1", &[], &[], Ok(())),
        ("223.255.255.255", &[], &[], Ok(())),
        // Loopback and unspecified.
        ("127.0.0.1", &[], &[], Err(InternalAddress)),
        ("127.255.255.254", &[], &[], Err(InternalAddress)),
        ("::1", &[], &[], Err(InternalAddress)),
        ("::ffff:127.0.0.1", &[], &[], Err(InternalAddress)),
        ("64:ff9b::7f00:1", &[], &[], Err(InternalAddress)),
        ("2002:7f00:1::1", &[], &[], Err(InternalAddress)),
        ("0.0.0.0", &[], &[], Err(InternalAddress)),
        ("0.1.2.3", &[], &[], Err(InternalAddress)),
        ("::", &[], &[], Err(InternalAddress)),
        ("::ffff:0.0.0.0", &[], &[], Err(InternalAddress)),
        ("127.0.0.1", &[], &["0.0.0.0/0"], Err(InternalAddress)),
        ("127.0.0.1", &[], &["127.0.0.0/8"], Ok(())),
        ("::ffff:127.0.0.1", &[], &["127.0.0.1/32"], Ok(())),
        ("::1", &[], &["::/0"], Err(InternalAddress)),
        ("::1", &[], &["::1/128"], Ok(())),
        ("0.0.0.0", &[], &["0.0.0.0/0"], Err(InternalAddress)),
        // Private and ULA.
        ("10.1.2.3", &[], &[], Err(InternalAddress)),
        ("172.16.0.1", &[], &[], Err(InternalAddress)),
        ("172.31.255.255", &[], &[], Err(InternalAddress)),
        ("192.168.1.1", &[], &[], Err(InternalAddress)),
        ("::ffff:10.1.2.3", &[], &[], Err(InternalAddress)),
        ("::ffff:192.168.1.1", &[], &[], Err(InternalAddress)),
        ("64:ff9b::a01:203", &[], &[], Err(InternalAddress)),
        ("2002:c0a8:101::1", &[], &[], Err(InternalAddress)),
        ("fc00::1", &[], &[], Err(InternalAddress)),
        ("fd12:3456::1", &[], &[], Err(InternalAddress)),
        ("fec0::1", &[], &[], Err(InternalAddress)),
        ("64:ff9b:1::1", &[], &[], Err(InternalAddress)),
        ("10.1.2.3", &[], &["10.0.0.0/8"], Ok(())),
        ("10.1.2.3", &[], &["10.1.2.3"], Ok(())),
        ("10.1.2.3", &[], &["10.2.0.0/16"], Err(InternalAddress)),
        ("10.1.2.3", &[], &["0.0.0.0/0"], Ok(())),
        ("::ffff:10.1.2.3", &[], &["10.0.0.0/8"], Ok(())),
        ("64:ff9b::a01:203", &[], &["10.0.0.0/8"], Ok(())),
        ("172.16.0.1", &[], &["172.16.0.0/12"], Ok(())),
        ("192.168.1.1", &[], &["192.168.0.0/24"], Err(InternalAddress)),
        ("fd12:3456::1", &[], &["fd12::/16"], Ok(())),
        ("fd12:3456::1", &[], &["fd13::/16"], Err(InternalAddress)),
        // Link-local and CGNAT.
        ("169.254.1.1", &[], &[], Err(InternalAddress)),
        ("fe80::1", &[], &[], Err(InternalAddress)),
        ("febf::1", &[], &[], Err(InternalAddress)),
        ("100.64.0.1", &[], &[], Err(InternalAddress)),
        ("100.127.255.255", &[], &[], Err(InternalAddress)),
        ("::ffff:169.254.1.1", &[], &[], Err(InternalAddress)),
        ("169.254.1.1", &[], &["169.254.0.0/16"], Ok(())),
        ("100.64.0.1", &[], &["100.64.0.0/10"], Ok(())),
        ("fe80::1", &[], &["fe80::/10"], Ok(())),
        // Cloud metadata: only the exact /32 (or /128) lifts it.
        ("169.254.169.254", &[], &[], Err(MetadataAddress)),
        ("169.254.170.2", &[], &[], Err(MetadataAddress)),
        ("169.254.170.23", &[], &[], Err(MetadataAddress)),
        ("169.254.0.23", &[], &[], Err(MetadataAddress)),
        ("169.254.42.42", &[], &[], Err(MetadataAddress)),
        ("100.100.100.200", &[], &[], Err(MetadataAddress)),
        ("168.63.129.16", &[], &[], Err(MetadataAddress)),
        ("fd00:ec2::254", &[], &[], Err(MetadataAddress)),
        ("fd00:ec2::23", &[], &[], Err(MetadataAddress)),
        ("fd20:ce::254", &[], &[], Err(MetadataAddress)),
        ("::ffff:169.254.169.254", &[], &[], Err(MetadataAddress)),
        ("::ffff:a9fe:a9fe", &[], &[], Err(MetadataAddress)),
        ("64:ff9b::a9fe:a9fe", &[], &[], Err(MetadataAddress)),
        ("2002:a9fe:a9fe::1", &[], &[], Err(MetadataAddress)),
        ("169.254.169.254", &[], &["169.254.0.0/16"], Err(MetadataAddress)),
        ("169.254.169.254", &[], &["0.0.0.0/0"], Err(MetadataAddress)),
        ("100.100.100.200", &[], &["100.64.0.0/10"], Err(MetadataAddress)),
        ("fd00:ec2::254", &[], &["fc00::/7"], Err(MetadataAddress)),
        ("169.254.169.254", &[], &["169.254.169.254/32"], Ok(())),
        ("::ffff:169.254.169.254", &[], &["169.254.169.254"], Ok(())),
        ("fd00:ec2::254", &[], &["[fd00:ec2::254]"], Ok(())),
        // What cannot be a public server.
        ("192.0.0.8", &[], &[], Err(ReservedAddress)),
        ("192.0.2.1", &[], &[], Err(ReservedAddress)),
        ("198.51.100.1", &[], &[], Err(ReservedAddress)),
        ("203.0.113.1", &[], &[], Err(ReservedAddress)),
        ("198.18.0.1", &[], &[], Err(ReservedAddress)),
        ("198.19.255.255", &[], &[], Err(ReservedAddress)),
        ("192.88.99.1", &[], &[], Err(ReservedAddress)),
        ("224.0.0.1", &[], &[], Err(ReservedAddress)),
        ("239.255.255.250", &[], &[], Err(ReservedAddress)),
        ("240.0.0.1", &[], &[], Err(ReservedAddress)),
        ("255.255.255.255", &[], &[], Err(ReservedAddress)),
        ("::ffff:224.0.0.1", &[], &[], Err(ReservedAddress)),
        ("ff02::1", &[], &[], Err(ReservedAddress)),
        ("ff0e::1", &[], &[], Err(ReservedAddress)),
        ("2001:db8::1", &[], &[], Err(ReservedAddress)),
        ("3fff::1", &[], &[], Err(ReservedAddress)),
        ("2001::1", &[], &[], Err(ReservedAddress)),
        ("2001:0:4136:e378:8000:63bf:3fff:fdd2", &[], &[], Err(ReservedAddress)),
        ("2001:2::1", &[], &[], Err(ReservedAddress)),
        ("2001:10::1", &[], &[], Err(ReservedAddress)),
        ("2001:20::1", &[], &[], Err(ReservedAddress)),
        ("100::1", &[], &[], Err(ReservedAddress)),
        ("::7f00:1", &[], &[], Err(ReservedAddress)),
        ("::8.8.8.8", &[], &[], Err(ReservedAddress)),
        ("::ffff:0:808:808", &[], &[], Err(ReservedAddress)),
        ("4000::1", &[], &[], Err(ReservedAddress)),
        ("1::1", &[], &[], Err(ReservedAddress)),
        ("192.0.2.1", &[], &["192.0.2.0/24"], Ok(())),
        ("198.18.0.1", &[], &["198.18.0.0/15"], Ok(())),
        ("2001:db8::1", &[], &["2001:db8::/32"], Ok(())),
        // The host's own addresses: only the exact address lifts it.
        ("93.184.216.34", OWN, &[], Err(InternalAddress)),
        ("::ffff:93.184.216.34", OWN, &[], Err(InternalAddress)),
        ("2002:5db8:d822::1", OWN, &[], Err(InternalAddress)),
        ("93.184.216.35", OWN, &[], Ok(())),
        ("2a01:4f8::5", OWN, &[], Err(InternalAddress)),
        ("2a01:4f8::6", OWN, &[], Ok(())),
        ("93.184.216.34", &["::ffff:93.184.216.34"], &[], Err(InternalAddress)),
        ("93.184.216.34", OWN, &["93.184.216.0/24"], Err(InternalAddress)),
        ("93.184.216.34", OWN, &["0.0.0.0/0"], Err(InternalAddress)),
        ("93.184.216.34", OWN, &["93.184.216.34/32"], Ok(())),
        ("10.0.0.5", OWN, &["10.0.0.0/8"], Err(InternalAddress)),
        ("10.0.0.6", OWN, &["10.0.0.0/8"], Ok(())),
        ("10.0.0.5", OWN, &["10.0.0.5"], Ok(())),
        ("2a01:4f8::5", OWN, &["2a01:4f8::/32"], Err(InternalAddress)),
        ("2a01:4f8::5", OWN, &["[2a01:4f8::5]"], Ok(())),
    ];

    fn ip(s: &str) -> IpAddr {
        match s.parse() {
            Ok(a) => a,
            Err(e) => panic!("{s}: {e}"),
        }
    }

    #[test]
    fn address_table() {
        let target = Target::Name {
            host: "allowed.test".into(),
            port: 443,
        };
        let mut failures = Vec::new();
        for &(addr, own, private, want) in ADDRESSES {
            let p = policy(&["allowed.test"], &[], private, &[]);
            let own: Vec<IpAddr> = own.iter().map(|s| ip(s)).collect();
            let got = p
                .check_address(&target, ip(addr), &own)
                .map_err(|d| d.reason);
            if got != want {
                failures.push(format!(
                    "{addr} own {own:?} private {private:?}: want {want:?}, got {got:?}"
                ));
            }
        }
        assert!(
            failures.is_empty(),
            "{} failures:\n{}",
            failures.len(),
            failures.join("\n")
        );
    }

    #[test]
    fn deny_patterns_apply_to_resolved_addresses() {
        let p = policy(
            &["*.corp.test"],
            &["10.9.0.0/16", "8.8.8.8:443"],
            &["10.0.0.0/8"],
            &[],
        );
        let t = |port| Target::Name {
            host: "a.corp.test".into(),
            port,
        };
        assert_eq!(
            p.check_address(&t(443), ip("10.9.1.1"), &[])
                .unwrap_err()
                .reason,
            DeniedByPattern
        );
        assert_eq!(
            p.check_address(&t(443), ip("::ffff:10.9.1.1"), &[])
                .unwrap_err()
                .reason,
            DeniedByPattern
        );
        assert_eq!(p.check_address(&t(443), ip("10.8.1.1"), &[]), Ok(()));
        assert_eq!(
            p.check_address(&t(443), ip("8.8.8.8"), &[])
                .unwrap_err()
                .reason,
            DeniedByPattern
        );
        assert_eq!(p.check_address(&t(80), ip("8.8.8.8"), &[]), Ok(()));
    }

    #[test]
    fn literal_target_checks_its_own_address() {
        let p = policy(&["8.8.8.8", "[2606:4700::1111]"], &[], &[], &[]);
        let t = p.check_request("8.8.8.8", 443).unwrap();
        assert_eq!(
            t,
            Target::Ip {
                addr: ip("8.8.8.8"),
                port: 443
            }
        );
        assert_eq!(p.check_address(&t, ip("8.8.8.8"), &[]), Ok(()));
        assert_eq!(p.check_address(&t, ip("::ffff:8.8.8.8"), &[]), Ok(()));
        assert_eq!(
            p.check_address(&t, ip("8.8.4.4"), &[]).unwrap_err().reason,
            NotAllowed
        );
        assert_eq!(
            p.check_address(&t, ip("8.8.8.8"), &[ip("8.8.8.8")])
                .unwrap_err()
                .reason,
            InternalAddress
        );
        let t6 = p.check_request("2606:4700::1111", 443).unwrap();
        assert_eq!(t6.to_string(), "[2606:4700::1111]:443");
        assert_eq!(p.check_address(&t6, ip("2606:4700::1111"), &[]), Ok(()));
    }

    // -----------------------------------------------------------------------
    // Construction: every error names the option and the entry.
    // -----------------------------------------------------------------------

    #[test]
    fn construction_errors_name_the_entry() {
        #[rustfmt::skip]
        const BAD: &[(&str, &str, &str)] = &[
            ("--allow-domain", "", "empty"),
            ("--allow-domain", "*", "every host"),
            ("--allow-domain", "*:443", "every host"),
            ("--allow-domain", "*.*.x.test", "first label"),
            ("--allow-domain", "x.*.test", "first label"),
            ("--allow-domain", "*x.test", "first label"),
            ("--allow-domain", "**.x.test", "first label"),
            ("--allow-domain", "*.", "empty"),
            ("--allow-domain", ".x.test", "leading dot"),
            ("--allow-domain", "http://x.test", "URL"),
            ("--allow-domain", "x.test/path", "CIDR"),
            ("--allow-domain", "x.test:0", "port"),
            ("--allow-domain", "x.test:65536", "port"),
            ("--allow-domain", "x.test:+443", "port"),
            ("--allow-domain", "x.test:", "port"),
            ("--allow-domain", "x.test:https", "port"),
            ("--allow-domain", ":443", "empty"),
            ("--allow-domain", "x..test", "empty label"),
            ("--allow-domain", "x test", "not allowed"),
            ("--allow-domain", "x@test", "not allowed"),
            ("--allow-domain", "xn--zz.test", "UTS 46"),
            ("--allow-domain", "0x7f.1", "canonical"),
            ("--allow-domain", "127.1", "canonical"),
            ("--allow-domain", "10.0.0.1.", "trailing dot"),
            ("--allow-domain", "10.0.0.1/8", "did you mean 10.0.0.0/8"),
            ("--allow-domain", "10.0.0.0/33", "prefix length"),
            ("--allow-domain", "10.0.0.0/", "prefix length"),
            ("--allow-domain", "10.0.0.0/08x", "prefix length"),
            ("--allow-domain", "2001:db8::/129", "prefix length"),
            ("--allow-domain", "2001:db8::1/32", "did you mean 2001:db8::/32"),
            ("--allow-domain", "*.10.0.0.1", "wildcard"),
            ("--allow-domain", "*.10.0.0.0/8", "wildcard"),
            ("--allow-domain", "[x.test]", "brackets"),
            ("--allow-domain", "[::1", "unbalanced"),
            ("--allow-domain", "[::1]443", ":PORT"),
            ("--allow-domain", "[::ffff:1.2.3.4]", "IPv4-mapped"),
            ("--allow-domain", "[fe80::1%eth0]", "zone"),
            ("--allow-domain", "fe80::1%eth0", "brackets"),
            ("--allow-domain", "2001:db8::1", "brackets"),
            ("--allow-domain", "2001:db8::1:443", "brackets"),
            ("--allow-domain", "2001:db8::/32:443", "prefix length"),
            ("--allow-domain", "x.test:443:1", "IPv6"),
            ("--deny-domain", "*", "every host"),
            ("--deny-domain", "bad..test", "empty label"),
            ("--allow-private", "10.0.0.1/8", "did you mean"),
            ("--allow-private", "example.com", "not a name"),
            ("--allow-private", "0x0a.0.0.0/8", "canonical"),
            ("--allow-private", "::ffff:0:0/96", "IPv4-mapped"),
            ("--allow-private", "", "empty"),
            ("--resolve", "x.test", "HOST:ADDR"),
            ("--resolve", "x.test:443:1.2.3.4", "HOST:PORT:ADDR"),
            ("--resolve", "x.test:443:[::1]", "HOST:PORT:ADDR"),
            ("--resolve", "x.test:::1", "brackets"),
            ("--resolve", "x.test:", "empty"),
            ("--resolve", "x.test:1.2.3.4,", "empty"),
            ("--resolve", "1.2.3.4:5.6.7.8", "must be a name"),
            ("--resolve", "x.test:foo", "not an IP address"),
            ("--resolve", "x.test:1.2.3", "canonical"),
            ("--resolve", "x.test:10.0.0.0/8", "not an IP address"),
            ("--resolve", "*.x.test:1.2.3.4", "not allowed"),
            ("--resolve", "x.test:[::1", "unbalanced"),
            ("--resolve", "x.test:[fe80::1%eth0]", "zone"),
        ];
        for &(option, value, fragment) in BAD {
            let mut p = ProxyPolicy::default();
            let list = match option {
                "--allow-domain" => &mut p.allow,
                "--deny-domain" => &mut p.deny,
                "--allow-private" => &mut p.allow_private,
                _ => &mut p.resolve,
            };
            // A valid entry first: the error must be about the bad one.
            list.push(match option {
                "--allow-private" => "10.0.0.0/8".into(),
                "--resolve" => "ok.test:1.2.3.4".into(),
                _ => "ok.test".into(),
            });
            list.push(value.to_string());
            let err = match Policy::new(&p) {
                Ok(_) => panic!("{option} {value:?} was accepted"),
                Err(e) => e,
            };
            assert_eq!((err.option, err.value.as_str()), (option, value));
            let msg = err.to_string();
            assert!(msg.starts_with(&format!("{option} {value:?}: ")), "{msg}");
            assert!(
                msg.contains(fragment),
                "{option} {value:?}: {msg:?} lacks {fragment:?}"
            );
        }
    }

    #[test]
    fn valid_entries_construct() {
        policy(
            &[
                "example.com",
                "*.example.com",
                "EXAMPLE.com.",
                "example.com:8443",
                "*.x.com:8443",
                "bücher.example",
                "_dmarc.example.com",
                "*.com",
                "intranet",
                "10.1.2.3",
                "10.1.2.3:22",
                "192.0.2.0/24",
                "192.0.2.0/24:443",
                "0.0.0.0/0",
                "[2001:db8::1]",
                "[2001:db8::1]:443",
                "2001:db8::/32",
                "[2001:db8::/32]",
                "[2001:db8::/32]:443",
                "x.test:00443",
            ],
            &["*.ads.example.com", "192.0.2.128/25", "tracker.test:80"],
            &[
                "10.0.0.0/8",
                "10.0.0.5",
                "fc00::/7",
                "[fd00::/8]",
                "[fd00::1]",
                "fd00::2",
                "0.0.0.0/0",
            ],
            &[
                "x.test:1.2.3.4",
                "X.TEST.:[2001:db8::1],5.6.7.8",
                "bücher.example:[::1]",
            ],
        );
    }

    // -----------------------------------------------------------------------
    // The static resolver.
    // -----------------------------------------------------------------------

    #[test]
    fn static_resolver() {
        let p = policy(
            &["example.test", "bücher.example"],
            &[],
            &[],
            &[
                "Example.TEST:1.2.3.4,[2001:db8::1]",
                "example.test.:5.6.7.8",
                "example.test:1.2.3.4",
                "bücher.example:10.0.0.1",
            ],
        );
        let want = [ip("1.2.3.4"), ip("2001:db8::1"), ip("5.6.7.8")];
        assert_eq!(p.static_addresses("example.test"), Some(&want[..]));
        assert_eq!(p.static_addresses("EXAMPLE.test."), Some(&want[..]));
        assert_eq!(
            p.static_addresses("xn--bcher-kva.example"),
            Some(&[ip("10.0.0.1")][..])
        );
        assert_eq!(
            p.static_addresses("BÜCHER.example"),
            Some(&[ip("10.0.0.1")][..])
        );
        assert_eq!(p.static_addresses("other.test"), None);
        assert_eq!(p.static_addresses("1.2.3.4"), None);
        assert_eq!(p.static_addresses("bad@name"), None);
        assert_eq!(p.static_addresses(""), None);
        // A static address is checked like any other: --resolve allows nothing.
        let t = p.check_request("bücher.example", 443).unwrap();
        assert_eq!(
            p.check_address(&t, ip("10.0.0.1"), &[]).unwrap_err().reason,
            InternalAddress
        );
        assert_eq!(
            p.check_request("unlisted.test", 443).unwrap_err().reason,
            NotAllowed
        );
    }

    // -----------------------------------------------------------------------
    // Reasons: names, HTTP statuses, SOCKS5 replies, messages.
    // -----------------------------------------------------------------------

    #[test]
    fn reasons_are_stable() {
        #[rustfmt::skip]
        const ROWS: &[(Reason, &str, u16, u8)] = &[
            (NotAllowed, "not-allowed", 403, 0x02),
            (DeniedByPattern, "denied-by-pattern", 403, 0x02),
            (BadHostname, "bad-hostname", 400, 0x04),
            (NonCanonicalIp, "non-canonical-ip", 400, 0x08),
            (IpLiteralNotAllowed, "ip-literal-not-allowed", 403, 0x02),
            (PortNotAllowed, "port-not-allowed", 403, 0x02),
            (InternalAddress, "internal-address", 403, 0x02),
            (MetadataAddress, "metadata-address", 403, 0x02),
            (ReservedAddress, "reserved-address", 403, 0x02),
            (Unreachable, "unreachable", 502, 0x04),
        ];
        for &(r, name, status, socks) in ROWS {
            assert_eq!(r.name(), name);
            assert_eq!(r.to_string(), name);
            assert_eq!(serde_json::to_value(r).unwrap(), serde_json::json!(name));
            assert_eq!(r.http_status(), status, "{name}");
            assert_eq!(r.socks5_reply(), socks, "{name}");
            let d = Denial::new(r, "x");
            assert_eq!(
                (d.reason_name(), d.http_status(), d.socks5_reply()),
                (name, status, socks)
            );
        }
    }

    #[test]
    fn details_explain() {
        let p = policy(
            &["allowed.test", "port.test:8443", "*.port.test"],
            &["bad.allowed.test"],
            &[],
            &[],
        );
        let detail = |h: &str, port| p.check_request(h, port).unwrap_err().to_string();
        assert_eq!(
            detail("other.test", 443),
            "not-allowed: other.test:443 matches no --allow-domain pattern"
        );
        assert_eq!(
            detail("allowed.test", 22),
            "port-not-allowed: allowed.test:22: the host is allowed on port 80, 443 only"
        );
        assert!(
            detail("port.test", 443).ends_with("on port 8443 only"),
            "{}",
            detail("port.test", 443)
        );
        assert!(detail("a.port.test", 8443).ends_with("on port 80, 443 only"));
        assert!(detail("bad.allowed.test", 443).contains("--deny-domain \"bad.allowed.test\""));
        assert!(
            detail("a@b\r\nX-Evil: 1", 443).starts_with("bad-hostname: \"a@b\\r\\nX-Evil: 1\": ")
        );
        assert!(detail("127.1", 443).contains("canonical"));
        let long = detail(&"a".repeat(5000), 443);
        assert!(long.len() < 300 && long.contains('…'), "{long}");
        let internal = policy(&["10.0.0.5"], &[], &[], &[])
            .check_request("10.0.0.5", 443)
            .unwrap_err();
        assert!(
            internal.detail.contains("private (10.0.0.0/8)"),
            "{internal}"
        );
        let t = Target::Name {
            host: "x.test".into(),
            port: 443,
        };
        let meta = p
            .check_address(&t, ip("::ffff:169.254.169.254"), &[])
            .unwrap_err();
        assert!(
            meta.detail.contains("IPv4-mapped 169.254.169.254"),
            "{meta}"
        );
        assert!(meta.detail.contains("inside 169.254.169.254/32"), "{meta}");
        let u = Denial::unreachable("x.test", "lookup failed");
        assert_eq!(u.to_string(), "unreachable: \"x.test\": lookup failed");
    }

    #[test]
    fn policy_is_send_and_sync() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<Policy>();
        assert_send_sync::<Target>();
        assert_send_sync::<Denial>();
        assert_send_sync::<PolicyError>();
    }

    // -----------------------------------------------------------------------
    // A small deterministic fuzz (the cargo-fuzz target does this at length).
    // -----------------------------------------------------------------------

    /// xorshift64*: reproducible, no dependency.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }
        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
    }

    #[rustfmt::skip]
    const TOKENS: &[&str] = &[
        "a", "b", "x", "-", "_", ".", "..", "0", "1", "7", "9", "0x", "f", "[", "]", ":", "::", "%", "@", "/",
        "\\", " ", "\0", "ä", "ß", "ａ", "。", "\u{ad}", "\u{200d}", "xn--", "255", "256", "127", "*", "ffff",
        "allowed", "test", "wild", "\u{130}", "\u{fb01}", "\u{ff0e}", "\u{1f600}", "::ffff:", "64:ff9b::", "%25",
    ];

    #[test]
    fn pseudo_fuzz_invariants() {
        let p = policy(
            &[
                "allowed.test",
                "*.wild.test",
                "8.8.8.8",
                "2606:4700::/32",
                "a.b",
                "*.0.a",
            ],
            &["deny.wild.test"],
            &["10.0.0.0/8"],
            &["allowed.test:1.2.3.4"],
        );
        let mut rng = Rng(0x5eed_1234_abcd_ef01);
        for _ in 0..40_000 {
            let mut s = String::new();
            for _ in 0..rng.below(10) {
                s.push_str(TOKENS[rng.below(TOKENS.len())]);
            }
            let port = [0, 80, 443, 8443][rng.below(4)];
            match p.check_request(&s, port) {
                Ok(t) => {
                    // Normalised output is a fixed point.
                    let again = match &t {
                        Target::Name { host, .. } => {
                            assert!(
                                host.len() <= 253 && host.chars().all(is_name_char),
                                "{s:?} -> {host:?}"
                            );
                            p.check_request(host, port)
                        }
                        Target::Ip { addr, .. } => p.check_request(&addr.to_string(), port),
                    };
                    assert_eq!(again.as_ref(), Ok(&t), "{s:?}");
                    let a = IpAddr::from(
                        rng.next().to_be_bytes().map(|b| b & 0x7f)[..4]
                            .try_into()
                            .map(|b: [u8; 4]| b)
                            .unwrap(),
                    );
                    let _ = p.check_address(&t, a, &[a]);
                }
                Err(d) => {
                    assert!(!d.detail.is_empty());
                    assert!(!d.to_string().contains(['\r', '\n']), "{s:?}: {d}");
                }
            }
            // The same string as a pattern or an --allow-private entry.
            for field in 0..3 {
                let mut pp = ProxyPolicy::default();
                [&mut pp.allow, &mut pp.allow_private, &mut pp.resolve][field].push(s.clone());
                if let Err(e) = Policy::new(&pp) {
                    assert!(!e.to_string().contains(['\r', '\n']) || s.contains(['\r', '\n']));
                }
            }
        }
        for _ in 0..10_000 {
            let bits = (u128::from(rng.next()) << 64) | u128::from(rng.next());
            let t = Target::Name {
                host: "allowed.test".into(),
                port: 443,
            };
            let _ = p.check_address(&t, IpAddr::V6(Ipv6Addr::from(bits)), &[]);
            let _ = p.check_address(&t, IpAddr::V4(Ipv4Addr::from(bits as u32)), &[]);
        }
    }
}
