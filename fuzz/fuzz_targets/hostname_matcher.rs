//! The egress proxy's host checks on arbitrary input
//! (`cargo +nightly fuzz run hostname_matcher`): no panics, and whatever
//! `check_request` accepts is a fixed point of its normalisation.
//!
//! Input: two bytes of port (big-endian), then the host (lossy UTF-8).
#![no_main]

use std::net::IpAddr;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use stockade::proxy::policy::{Policy, Target};
use stockade::ProxyPolicy;

fn policy() -> &'static Policy {
    static POLICY: OnceLock<Policy> = OnceLock::new();
    POLICY.get_or_init(|| {
        let list = |l: &[&str]| l.iter().map(|s| s.to_string()).collect();
        let p = ProxyPolicy {
            allow: list(&[
                "allowed.test",
                "*.wild.test",
                "port.test:8443",
                "bücher.example",
                "8.8.8.8",
                "10.0.0.5",
                "2606:4700::/32",
                "[2001:4860:4860::8888]:853",
            ]),
            deny: list(&["deny.wild.test", "8.8.4.0/24"]),
            allow_private: list(&["10.0.0.0/8"]),
            resolve: list(&["allowed.test:1.2.3.4,[2606:4700::1]"]),
        };
        Policy::new(&p).expect("the fuzz policy is valid")
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((port, rest)) = data.split_first_chunk::<2>() else {
        return;
    };
    let port = u16::from_be_bytes(*port);
    let text = String::from_utf8_lossy(rest);
    let p = policy();

    match p.check_request(&text, port) {
        Ok(target) => {
            let (again, addr) = match &target {
                Target::Name { host, .. } => {
                    assert!(host.len() <= 253 && host.is_ascii(), "{text:?} -> {host:?}");
                    let _ = p.static_addresses(host);
                    // Any address will do: the check must not panic.
                    let octets: [u8; 16] =
                        std::array::from_fn(|i| rest.get(i).copied().unwrap_or(0));
                    (p.check_request(host, port), IpAddr::from(octets))
                }
                Target::Ip { addr, .. } => (p.check_request(&addr.to_string(), port), *addr),
            };
            assert_eq!(again.as_ref(), Ok(&target), "not a fixed point: {text:?}");
            let _ = p.check_address(&target, addr, &[addr]);
            let _ = p.check_address(&target, addr.to_canonical(), &[]);
        }
        Err(denial) => {
            // The detail goes into events and response bodies: one line.
            assert!(
                !denial.to_string().contains(['\r', '\n']),
                "{text:?}: {denial}"
            );
        }
    }

    // The same text as each kind of policy entry: errors are fine, panics not.
    for field in 0..4 {
        let mut pp = ProxyPolicy::default();
        let list = [
            &mut pp.allow,
            &mut pp.deny,
            &mut pp.allow_private,
            &mut pp.resolve,
        ];
        list.into_iter()
            .nth(field)
            .into_iter()
            .for_each(|l| l.push(text.to_string()));
        let _ = Policy::new(&pp);
    }
});
