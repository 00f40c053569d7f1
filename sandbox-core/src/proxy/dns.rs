//! The sandbox's DNS server: the front half of transparent mode.
//!
//! Always on in `Net::Proxy` mode, next to the explicit proxy (whose
//! environment variables stay set, so well-behaved clients keep using it).
//! For README's network section:
//!
//! > **Clients that ignore the proxy settings** (Node's `fetch` before Node
//! > 24, Go binaries, tools that resolve a name and connect to the address)
//! > work too. The sandbox's resolver (`nameserver 127.0.0.1`) is stockade's
//! > own: it answers every name the policy allows with a stand-in address
//! > from `198.18.0.0/15`, stable for the sandbox's lifetime, and every other
//! > name with NXDOMAIN, without any real lookup (so a denied name never
//! > reaches a DNS server). Connections to a stand-in address on port 80 or
//! > 443 are captured inside the sandbox and go through the same proxy as
//! > explicit requests: the name is checked again with the port, resolved on
//! > the host, its address checked, and the bytes relayed untouched (TLS is
//! > end to end; stockade never sees plaintext HTTPS). Other ports, IPv6 and
//! > IP-address destinations need the explicit proxy (`HTTP_PROXY`,
//! > `ALL_PROXY`). Every answer is an event (`protocol: "dns"`), and so is
//! > every captured connection (`protocol: "transparent"`).
//!
//! # Answers
//!
//! One question per query, class IN. The name is checked with
//! [`Policy::check_request`] on port 443 and on port 80 — the two ports
//! captured — and counts as allowed if either is; no lookup happens (the
//! host resolves the name only when a connection to it is captured, and
//! checks the port then). So:
//!
//! | query | allowed name | denied name |
//! |---|---|---|
//! | `A` | NOERROR, one address from the pool, TTL [`TTL`] | NXDOMAIN |
//! | `AAAA`, any other type | NOERROR, no answer (clients fall back to IPv4) | NXDOMAIN |
//!
//! - A name allowed only on other ports (`--allow-domain x.com:8443`) is
//!   NXDOMAIN here (`port-not-allowed`): such ports are reached through the
//!   explicit proxy.
//! - A name that is an IP literal (`1.2.3.4`) is not a name: NXDOMAIN.
//! - The pool hands out addresses in order from `198.18.0.2`, one per
//!   normalised name (`Allowed.Test` and `allowed.test` share one), and
//!   never reuses one; after [`MAX_NAMES`] names, new names are REFUSED
//!   (`pool-exhausted`) while known ones keep their address.
//! - The TTL is long ([`TTL`]) because the mapping never changes while the
//!   sandbox lives; the real address is looked up afresh for every captured
//!   connection.
//! - A query that cannot be parsed (including record types unknown to the
//!   parser), or has no or several questions, is FORMERR; other opcodes and
//!   classes are NOTIMP; a packet that is not a query (too short for a
//!   header, or a response) gets no reply.
//!
//! Parsing is `simple-dns`'s (bounds-checked, fuzzed by its authors and by
//! our `dns_query` target through [`answer`]).

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::sync::{Arc, Mutex};

use simple_dns::rdata::{RData, A};
use simple_dns::{
    Name, Packet, PacketFlag, Question, ResourceRecord, CLASS, OPCODE, QCLASS, QTYPE, RCODE, TYPE,
};
use tokio::net::UdpSocket;

use super::listen::{FAKE_POOL, FAKE_POOL_OWN, FAKE_POOL_PREFIX};
use super::policy::{Denial, Policy, Reason, Target};
use super::server::{denied, event, ProxyEvent, Shared};

/// Names one sandbox may have addresses for.
pub const MAX_NAMES: usize = 4096;
/// TTL of an answer, in seconds.
pub const TTL: u32 = 300;
/// The first address handed out.
pub const FIRST: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 2);
/// The event protocol of DNS queries.
const PROTOCOL: &str = "dns";
/// Largest query read (a classic UDP query fits in 512 bytes; EDNS ones are
/// bigger only by options we ignore).
const MAX_QUERY: usize = 4096;

/// One sandbox's fake addresses: a stable two-way map between normalised
/// names and addresses of the pool.
#[derive(Debug)]
pub struct Pool {
    cap: usize,
    inner: Mutex<Maps>,
}

#[derive(Debug, Default)]
struct Maps {
    by_name: HashMap<String, Ipv4Addr>,
    by_addr: HashMap<Ipv4Addr, String>,
}

impl Pool {
    /// A pool for at most `cap` names (at most what the range holds after
    /// [`FIRST`], less the broadcast address).
    pub fn new(cap: usize) -> Pool {
        let range = (1usize << (32 - FAKE_POOL_PREFIX)) - pool_offset(FIRST) - 1;
        Pool {
            cap: cap.min(range),
            inner: Mutex::new(Maps::default()),
        }
    }

    /// The address of `name` (normalised: [`Target::Name`]'s `host`), given
    /// out now if it has none; `None` when the pool is full.
    pub fn address_for(&self, name: &str) -> Option<Ipv4Addr> {
        let mut maps = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(a) = maps.by_name.get(name) {
            return Some(*a);
        }
        let n = maps.by_name.len();
        if n >= self.cap {
            return None;
        }
        let addr = Ipv4Addr::from(u32::from(FIRST) + n as u32);
        maps.by_name.insert(name.to_string(), addr);
        maps.by_addr.insert(addr, name.to_string());
        Some(addr)
    }

    /// The name `addr` was given out for.
    pub fn name_of(&self, addr: Ipv4Addr) -> Option<String> {
        let maps = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        maps.by_addr.get(&addr).cloned()
    }

    /// Names with an address.
    pub fn len(&self) -> usize {
        self.inner
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .by_name
            .len()
    }

    /// Whether no name has an address yet.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

fn pool_offset(addr: Ipv4Addr) -> usize {
    (u32::from(addr) - u32::from(FAKE_POOL)) as usize
}

// The pool's own address is never handed out.
const _: () =
    assert!(u32::from_be_bytes(FIRST.octets()) > u32::from_be_bytes(FAKE_POOL_OWN.octets()));

/// One query's outcome.
#[derive(Debug, Clone)]
pub struct Answer {
    /// The reply to send back, if any.
    pub reply: Option<Vec<u8>>,
    /// The decision.
    pub event: ProxyEvent,
}

/// Answer one query under `policy`, giving out addresses from `pool`. Pure
/// apart from the pool: no lookup, no IO. Never panics.
pub fn answer(query: &[u8], policy: &Policy, pool: &Pool) -> Answer {
    let packet = match Packet::parse(query) {
        Ok(p) => p,
        Err(e) => return malformed(query, &format!("unparsable query: {e}")),
    };
    if packet.has_flags(PacketFlag::RESPONSE) {
        return refused_event(None, "malformed-query", "a response, not a query");
    }
    if packet.opcode() != OPCODE::StandardQuery {
        let reply = reply(&packet, RCODE::NotImplemented, None);
        return refused_event(
            reply,
            "not-implemented",
            &format!("opcode {:?}", packet.opcode()),
        );
    }
    let [question] = packet.questions.as_slice() else {
        let reply = reply(&packet, RCODE::FormatError, None);
        return refused_event(
            reply,
            "malformed-query",
            &format!("{} questions (one expected)", packet.questions.len()),
        );
    };
    let qtype = type_name(question.qtype);
    if question.qclass != QCLASS::CLASS(CLASS::IN) {
        let reply = reply(&packet, RCODE::NotImplemented, Some(question));
        let mut a = refused_event(
            reply,
            "not-implemented",
            &format!("{qtype} query of class {:?}", question.qclass),
        );
        a.event.host = shown_name(&question.qname);
        return a;
    }
    let asked = shown_name(&question.qname);
    let name = match name_text(&question.qname)
        .ok_or_else(|| Denial {
            reason: Reason::BadHostname,
            detail: format!("{asked:?}: a label holds a dot or is not UTF-8"),
        })
        .and_then(|n| check_name(policy, &n))
    {
        Ok(name) => name,
        Err(d) => {
            let reply = reply(&packet, RCODE::NameError, Some(question));
            let ev = denied(event(PROTOCOL, &asked, 0), &d);
            return Answer {
                reply,
                event: ProxyEvent {
                    detail: Some(format!("{qtype}: NXDOMAIN: {}", d.detail)),
                    ..ev
                },
            };
        }
    };
    let mut ev = event(PROTOCOL, &name, 0);
    ev.decision = "allowed";
    if question.qtype != QTYPE::TYPE(TYPE::A) {
        ev.detail = Some(format!(
            "{qtype}: no records (only A queries are answered, with an IPv4 stand-in)"
        ));
        return Answer {
            reply: reply(&packet, RCODE::NoError, Some(question)),
            event: ev,
        };
    }
    let Some(addr) = pool.address_for(&name) else {
        let reply = reply(&packet, RCODE::Refused, Some(question));
        let mut a = refused_event(
            reply,
            "pool-exhausted",
            &format!(
                "the sandbox already has stand-in addresses for {} names, the limit",
                pool.cap
            ),
        );
        a.event.host = name;
        return a;
    };
    let mut out = packet_reply(&packet, RCODE::NoError, Some(question));
    out.answers.push(ResourceRecord::new(
        question.qname.clone(),
        CLASS::IN,
        TTL,
        RData::A(A::from(addr)),
    ));
    ev.detail = Some(format!("A {addr}"));
    Answer {
        reply: out.build_bytes_vec().ok(),
        event: ev,
    }
}

/// The name, checked on the captured ports: normalised if either admits it.
fn check_name(policy: &Policy, name: &str) -> Result<String, Denial> {
    let on_443 = policy.check_request(name, 443);
    let on_80 = policy.check_request(name, 80);
    match (on_443, on_80) {
        (Ok(Target::Name { host, .. }), _) | (_, Ok(Target::Name { host, .. })) => Ok(host),
        (Ok(Target::Ip { addr, .. }), _) | (_, Ok(Target::Ip { addr, .. })) => Err(Denial {
            reason: Reason::IpLiteralNotAllowed,
            detail: format!("{addr} is an IP address, not a name"),
        }),
        (Err(d), _) => Err(d),
    }
}

/// The labels joined with dots; `None` if one holds a dot (a different name
/// on the wire than its text) or is not UTF-8.
fn name_text(name: &Name<'_>) -> Option<String> {
    let mut out = String::new();
    for label in name.get_labels() {
        let text = std::str::from_utf8(label.as_ref()).ok()?;
        if text.contains('.') {
            return None;
        }
        if !out.is_empty() {
            out.push('.');
        }
        out.push_str(text);
    }
    Some(out)
}

/// The name for events, whatever its bytes.
fn shown_name(name: &Name<'_>) -> String {
    let text = name.to_string();
    text.chars().take(300).collect()
}

fn type_name(t: QTYPE) -> String {
    match t {
        QTYPE::TYPE(TYPE::A) => "A".into(),
        QTYPE::TYPE(TYPE::AAAA) => "AAAA".into(),
        QTYPE::TYPE(other) => format!("{other:?}"),
        other => format!("{other:?}"),
    }
}

/// A reply to `query` with `rcode`, echoing `question`.
fn packet_reply<'a>(
    query: &Packet<'_>,
    rcode: RCODE,
    question: Option<&Question<'a>>,
) -> Packet<'a> {
    let mut out = Packet::new_reply(query.id());
    if query.has_flags(PacketFlag::RECURSION_DESIRED) {
        out.set_flags(PacketFlag::RECURSION_DESIRED);
    }
    out.set_flags(PacketFlag::RECURSION_AVAILABLE);
    *out.rcode_mut() = rcode;
    if let Some(q) = question {
        out.questions.push(q.clone());
    }
    out
}

fn reply(query: &Packet<'_>, rcode: RCODE, question: Option<&Question<'_>>) -> Option<Vec<u8>> {
    packet_reply(query, rcode, question).build_bytes_vec().ok()
}

/// FORMERR for anything with a query header; nothing otherwise.
fn malformed(query: &[u8], why: &str) -> Answer {
    let reply = match query {
        [id0, id1, flags, ..] if query.len() >= 12 && flags & 0x80 == 0 => {
            let mut out = Packet::new_reply(u16::from_be_bytes([*id0, *id1]));
            *out.rcode_mut() = RCODE::FormatError;
            out.build_bytes_vec().ok()
        }
        _ => None,
    };
    refused_event(reply, "malformed-query", why)
}

fn refused_event(reply: Option<Vec<u8>>, reason: &str, detail: &str) -> Answer {
    let mut ev = event(PROTOCOL, "", 0);
    ev.reason = Some(reason.to_string());
    ev.detail = Some(detail.to_string());
    Answer { reply, event: ev }
}

/// Serve the sandbox's DNS socket until the sandbox's proxy stops.
pub(super) async fn serve(socket: UdpSocket, shared: Arc<Shared>) {
    let mut stop = shared.stop.clone();
    let mut buf = vec![0u8; MAX_QUERY];
    loop {
        let got = tokio::select! {
            got = socket.recv_from(&mut buf) => got,
            _ = stop.wait_for(|s| *s) => return,
        };
        let Ok((n, peer)) = got else { continue };
        if !shared.take_dns_token() {
            continue;
        }
        let out = answer(&buf[..n], &shared.policy, &shared.pool);
        shared.emit(out.event);
        if let Some(reply) = out.reply {
            // Non-blocking: a full socket buffer drops the reply, as UDP may.
            let _ = socket.try_send_to(&reply, peer);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ProxyPolicy;

    fn policy(allow: &[&str], deny: &[&str]) -> Policy {
        Policy::new(&ProxyPolicy {
            allow: allow.iter().map(|s| s.to_string()).collect(),
            deny: deny.iter().map(|s| s.to_string()).collect(),
            ..ProxyPolicy::default()
        })
        .unwrap()
    }

    fn query(id: u16, name: &str, qtype: TYPE) -> Vec<u8> {
        let mut q = Packet::new_query(id);
        q.set_flags(PacketFlag::RECURSION_DESIRED);
        q.questions.push(Question::new(
            Name::new_unchecked(name),
            qtype.into(),
            CLASS::IN.into(),
            false,
        ));
        q.build_bytes_vec().unwrap()
    }

    /// (rcode, A addresses, AAAA count) of a reply.
    fn read(reply: &[u8]) -> (RCODE, Vec<Ipv4Addr>, usize) {
        let p = Packet::parse(reply).unwrap();
        assert!(p.has_flags(PacketFlag::RESPONSE));
        let a = p
            .answers
            .iter()
            .filter_map(|rr| match &rr.rdata {
                RData::A(a) => Some(Ipv4Addr::from(a.address)),
                _ => None,
            })
            .collect();
        let aaaa = p
            .answers
            .iter()
            .filter(|rr| matches!(rr.rdata, RData::AAAA(_)))
            .count();
        (p.rcode(), a, aaaa)
    }

    #[test]
    fn allowed_names_get_stable_pool_addresses() {
        let p = policy(&["allowed.test", "*.example.com"], &[]);
        let pool = Pool::new(MAX_NAMES);
        let a = answer(&query(7, "allowed.test", TYPE::A), &p, &pool);
        let reply = a.reply.unwrap();
        assert_eq!(u16::from_be_bytes([reply[0], reply[1]]), 7);
        assert_eq!(read(&reply), (RCODE::NoError, vec![FIRST], 0));
        assert_eq!(a.event.protocol, "dns");
        assert_eq!(a.event.decision, "allowed");
        assert_eq!(a.event.host, "allowed.test");
        assert_eq!(a.event.detail.as_deref(), Some("A 198.18.0.2"));
        // Stable, case-folded, one per name, in order.
        let again = answer(&query(8, "ALLOWED.test.", TYPE::A), &p, &pool);
        assert_eq!(read(&again.reply.unwrap()).1, vec![FIRST]);
        let other = answer(&query(9, "api.example.com", TYPE::A), &p, &pool);
        assert_eq!(
            read(&other.reply.unwrap()).1,
            vec![Ipv4Addr::new(198, 18, 0, 3)]
        );
        assert_eq!(pool.name_of(FIRST).as_deref(), Some("allowed.test"));
        assert_eq!(
            pool.name_of(Ipv4Addr::new(198, 18, 0, 3)).as_deref(),
            Some("api.example.com")
        );
        assert_eq!(pool.name_of(Ipv4Addr::new(198, 18, 0, 4)), None);
        assert_eq!(pool.name_of(FAKE_POOL_OWN), None);
        assert_eq!(pool.len(), 2);
    }

    #[test]
    fn the_answer_echoes_the_question() {
        let p = policy(&["allowed.test"], &[]);
        let pool = Pool::new(MAX_NAMES);
        let reply = answer(&query(1, "Allowed.Test", TYPE::A), &p, &pool)
            .reply
            .unwrap();
        let r = Packet::parse(&reply).unwrap();
        assert_eq!(r.questions.len(), 1);
        assert_eq!(r.questions[0].qname.to_string(), "Allowed.Test");
        assert_eq!(r.answers[0].name.to_string(), "Allowed.Test");
        assert_eq!(r.answers[0].ttl, TTL);
        assert!(r.has_flags(PacketFlag::RECURSION_DESIRED | PacketFlag::RECURSION_AVAILABLE));
    }

    #[test]
    fn denied_names_are_nxdomain_without_lookup() {
        // A name that resolves nowhere: a lookup would fail or hang, and the
        // answer must not depend on one.
        let p = policy(&["allowed.test"], &["bad.allowed.test"]);
        let pool = Pool::new(MAX_NAMES);
        for (name, reason) in [
            ("evil.test", "not-allowed"),
            ("bad.allowed.test", "denied-by-pattern"),
            ("1.2.3.4", "ip-literal-not-allowed"),
            ("0x7f.1", "non-canonical-ip"),
        ] {
            for t in [TYPE::A, TYPE::AAAA, TYPE::HTTPS] {
                let a = answer(&query(3, name, t), &p, &pool);
                assert_eq!(
                    read(&a.reply.unwrap()),
                    (RCODE::NameError, vec![], 0),
                    "{name}"
                );
                assert_eq!(a.event.decision, "denied");
                assert_eq!(a.event.reason.as_deref(), Some(reason), "{name}");
                assert_eq!(a.event.host, name);
            }
        }
        let p = policy(&["allowed.test"], &["*.allowed.test"]);
        let a = answer(&query(3, "x.allowed.test", TYPE::A), &p, &pool);
        assert_eq!(a.event.reason.as_deref(), Some("denied-by-pattern"));
        assert!(pool.is_empty(), "denied names get no address");
    }

    #[test]
    fn ports_decide_like_the_captured_listeners() {
        let p = policy(
            &["only80.test:80", "only443.test:443", "other.test:8443"],
            &[],
        );
        let pool = Pool::new(MAX_NAMES);
        for name in ["only80.test", "only443.test"] {
            let a = answer(&query(1, name, TYPE::A), &p, &pool);
            assert_eq!(read(&a.reply.unwrap()).0, RCODE::NoError, "{name}");
        }
        let a = answer(&query(1, "other.test", TYPE::A), &p, &pool);
        assert_eq!(read(&a.reply.unwrap()).0, RCODE::NameError);
        assert_eq!(a.event.reason.as_deref(), Some("port-not-allowed"));
        // An allowed IP literal is still not a name.
        let p = policy(&["8.8.8.8"], &[]);
        let a = answer(&query(1, "8.8.8.8", TYPE::A), &p, &pool);
        assert_eq!(a.event.reason.as_deref(), Some("ip-literal-not-allowed"));
    }

    #[test]
    fn other_types_of_allowed_names_are_empty() {
        let p = policy(&["allowed.test"], &[]);
        let pool = Pool::new(MAX_NAMES);
        for t in [TYPE::AAAA, TYPE::HTTPS, TYPE::MX, TYPE::TXT] {
            let a = answer(&query(4, "allowed.test", t), &p, &pool);
            assert_eq!(read(&a.reply.unwrap()), (RCODE::NoError, vec![], 0));
            assert_eq!(a.event.decision, "allowed");
        }
        assert!(pool.is_empty(), "only A queries give out addresses");
    }

    #[test]
    fn exhaustion_is_refused_and_known_names_stay() {
        let p = policy(&["*.test"], &[]);
        let pool = Pool::new(2);
        for (i, name) in ["a.test", "b.test"].iter().enumerate() {
            let a = answer(&query(1, name, TYPE::A), &p, &pool);
            assert_eq!(
                read(&a.reply.unwrap()).1,
                vec![Ipv4Addr::from(u32::from(FIRST) + i as u32)]
            );
        }
        let a = answer(&query(1, "c.test", TYPE::A), &p, &pool);
        assert_eq!(read(&a.reply.unwrap()).0, RCODE::Refused);
        assert_eq!(a.event.decision, "denied");
        assert_eq!(a.event.reason.as_deref(), Some("pool-exhausted"));
        assert_eq!(a.event.host, "c.test");
        let a = answer(&query(1, "a.test", TYPE::A), &p, &pool);
        assert_eq!(read(&a.reply.unwrap()).1, vec![FIRST]);
        // The cap never exceeds the range.
        let huge = Pool::new(usize::MAX);
        assert_eq!(huge.cap, (1 << 17) - 3);
        let last = Ipv4Addr::from(u32::from(FIRST) + huge.cap as u32 - 1);
        assert_eq!(last, Ipv4Addr::new(198, 19, 255, 254));
    }

    #[test]
    fn malformed_queries() {
        let p = policy(&["allowed.test"], &[]);
        let pool = Pool::new(MAX_NAMES);
        // Too short for a header: dropped.
        for q in [&b""[..], b"\x00", b"\x12\x34\x01\x00\x00\x01"] {
            let a = answer(q, &p, &pool);
            assert!(a.reply.is_none());
            assert_eq!(a.event.reason.as_deref(), Some("malformed-query"));
        }
        // A header promising a question that is not there: FORMERR.
        let a = answer(
            b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00",
            &p,
            &pool,
        );
        let r = a.reply.unwrap();
        assert_eq!(&r[..2], b"\x12\x34");
        assert_eq!(Packet::parse(&r).unwrap().rcode(), RCODE::FormatError);
        // No question: FORMERR.
        let empty = Packet::new_query(5).build_bytes_vec().unwrap();
        let a = answer(&empty, &p, &pool);
        assert_eq!(read(&a.reply.unwrap()).0, RCODE::FormatError);
        // A response: dropped (no reflection).
        let mut resp = query(6, "allowed.test", TYPE::A);
        resp[2] |= 0x80;
        assert!(answer(&resp, &p, &pool).reply.is_none());
        // Another opcode: NOTIMP.
        let mut notify = query(6, "allowed.test", TYPE::A);
        notify[2] |= 4 << 3;
        assert_eq!(
            read(&answer(&notify, &p, &pool).reply.unwrap()).0,
            RCODE::NotImplemented
        );
        // A label holding a dot is not the name its text spells.
        let mut dotted = b"\x00\x07\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00".to_vec();
        dotted.extend_from_slice(b"\x0callowed.test\x00\x00\x01\x00\x01");
        let a = answer(&dotted, &p, &pool);
        assert_eq!(read(&a.reply.unwrap()).0, RCODE::NameError);
        assert_eq!(a.event.reason.as_deref(), Some("bad-hostname"));
        // A compression loop in the question.
        let mut looped = b"\x00\x08\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00".to_vec();
        looped.extend_from_slice(b"\xc0\x0c\x00\x01\x00\x01");
        let a = answer(&looped, &p, &pool);
        assert_eq!(read(&a.reply.unwrap()).0, RCODE::FormatError);
        assert!(pool.is_empty());
    }

    #[test]
    fn arbitrary_bytes_never_panic() {
        let p = policy(&["allowed.test"], &[]);
        let pool = Pool::new(8);
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let base = query(1, "allowed.test", TYPE::A);
        for _ in 0..20_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let mut q = base.clone();
            let i = (x as usize) % q.len();
            q[i] = (x >> 32) as u8;
            q.truncate(((x >> 40) as usize) % (q.len() + 1));
            let _ = answer(&q, &p, &pool);
        }
    }
}
