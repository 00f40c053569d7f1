//! The sandbox's DNS server on arbitrary queries
//! (`cargo +nightly fuzz run dns_query`): no panics; a reply, when there is
//! one, is a parseable response carrying the query's id; only allowed names
//! get an address, and it is the pool's, stable for the name.
#![no_main]

use std::net::Ipv4Addr;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use stockade::proxy::dns::{answer, Pool, MAX_NAMES};
use stockade::proxy::policy::Policy;
use stockade::ProxyPolicy;

fn policy() -> &'static Policy {
    static POLICY: OnceLock<Policy> = OnceLock::new();
    POLICY.get_or_init(|| {
        let list = |l: &[&str]| l.iter().map(|s| s.to_string()).collect();
        let p = ProxyPolicy {
            allow: list(&["allowed.test", "*.wild.test", "port.test:8443", "8.8.8.8"]),
            deny: list(&["deny.wild.test"]),
            ..ProxyPolicy::default()
        };
        Policy::new(&p).expect("the fuzz policy is valid")
    })
}

fn pool() -> &'static Pool {
    static POOL: OnceLock<Pool> = OnceLock::new();
    POOL.get_or_init(|| Pool::new(MAX_NAMES))
}

fuzz_target!(|data: &[u8]| {
    let a = answer(data, policy(), pool());
    assert_eq!(a.event.protocol, "dns");
    let Some(reply) = a.reply else {
        assert_eq!(a.event.decision, "denied");
        return;
    };
    assert!(reply.len() >= 12 && data.len() >= 12);
    assert_eq!(reply[..2], data[..2], "the reply carries the query's id");
    assert!(reply[2] & 0x80 != 0, "the reply is a response");
    if a.event.decision != "allowed" {
        assert!(a.event.reason.is_some());
        return;
    }
    assert!(
        policy().check_request(&a.event.host, 443).is_ok()
            || policy().check_request(&a.event.host, 80).is_ok()
    );
    if let Some(addr) = a.event.detail.as_deref().and_then(|d| d.strip_prefix("A ")) {
        let addr: Ipv4Addr = addr.parse().expect("an address");
        assert_eq!(&addr.octets()[..1], &[198]);
        assert_eq!(pool().name_of(addr).as_deref(), Some(a.event.host.as_str()));
        assert_eq!(pool().address_for(&a.event.host), Some(addr));
    }
});
