//! The egress proxy seen from inside real sandboxes, for root and for an
//! unprivileged caller: real clients (curl, wget, Python's urllib, pip, node)
//! reach an allowed host through the proxy; every kind of refusal (names,
//! lookalikes, userinfo, IP literals and their numeric spellings, ports,
//! internal and metadata addresses, deny patterns, oversized and slow heads)
//! is seen by the client as the documented status and `X-Proxy-Error` (or
//! SOCKS5 reply), is recorded in `--report`, and never reaches the upstream;
//! going around the proxy fails with exact errnos; `--net none` has no proxy.
//!
//! The upstreams run in this test process on the host's loopback and are
//! reached as `allowed.test` through `--resolve allowed.test:127.0.0.1
//! --allow-private 127.0.0.1/32`. They record every connection they accept,
//! so "the upstream saw nothing" is checked, not assumed. Every denial has a
//! positive control: the same policy and upstream, a permitted request.

#[macro_use]
mod common;
mod egress_support;

use std::fs;
use std::net::{IpAddr, Ipv6Addr};
use std::path::Path;

use common::*;
use egress_support::*;

for_each_caller! {
    root_clients_reach_an_allowed_host_through_the_proxy,
    user_clients_reach_an_allowed_host_through_the_proxy
        => positive_controls;
    root_refused_requests_never_reach_the_upstream,
    user_refused_requests_never_reach_the_upstream
        => denials;
    root_going_around_the_proxy_fails_with_exact_errnos,
    user_going_around_the_proxy_fails_with_exact_errnos
        => bypasses;
    root_net_none_has_no_proxy_listeners_and_no_proxy_env,
    user_net_none_has_no_proxy_listeners_and_no_proxy_env
        => net_none;
    root_report_records_allowed_then_closed_with_byte_counts,
    user_report_records_allowed_then_closed_with_byte_counts
        => report_events;
    root_invalid_proxy_options_are_refused_before_anything_runs,
    user_invalid_proxy_options_are_refused_before_anything_runs
        => invalid_options;
    root_slow_clients_are_cut_off_by_the_head_timeout,
    user_slow_clients_are_cut_off_by_the_head_timeout
        => slowloris;
}

const BODY: &str = "hello from the allowed upstream\n";

/// A test dir with the Python probe and a report dir the caller can write.
struct Fixture {
    t: TestDir,
    probe: String,
}

impl Fixture {
    fn new(caller: Caller, tag: &str) -> Self {
        let t = TestDir::new(tag);
        let probe = t.write("probe.py", PROBE_PY.as_bytes());
        let reports = t.mkdir("reports");
        caller.own(Path::new(&reports));
        Fixture { t, probe }
    }

    /// `--ro probe.py:/probe.py --report reports/NAME.json` and the report's path.
    fn opts(&self, report: &str) -> (Vec<String>, String) {
        let path = self.t.join(&format!("reports/{report}.json"));
        (
            vec![
                "--ro".into(),
                format!("{}:{PROBE}", self.probe),
                "--report".into(),
                path.clone(),
            ],
            path,
        )
    }
}

/// `--allow-domain allowed.test:PORT` reaching the host's 127.0.0.1.
fn allow_loopback(port: u16) -> Vec<String> {
    [
        "--allow-domain",
        &format!("allowed.test:{port}"),
        "--resolve",
        "allowed.test:127.0.0.1",
        "--allow-private",
        "127.0.0.1/32",
    ]
    .map(String::from)
    .to_vec()
}

fn hello_upstream() -> Upstream {
    Upstream::http(&[("/hello.txt", "text/plain", BODY.as_bytes().to_vec())])
}

/// `curl` printing `STATUS X-PROXY-ERROR` of the response to `url` (through
/// the proxy of the environment).
fn curl_status(url: &str) -> String {
    format!(
        "curl -s -o /dev/null -w '%{{http_code}} %header{{x-proxy-error}}' {}",
        shq(url)
    )
}

#[track_caller]
fn assert_rc_contains(p: &Probes, name: &str, rc: i32, text: &str) {
    let got = p.get(name);
    assert!(
        got.rc == rc && got.out.contains(text),
        "probe {name}: want rc={rc} and output containing {text:?}, got {got:?}\n{}",
        p.all()
    );
}

// ---------------------------------------------------------------------------------------------
// 1. Positive controls: real clients through the proxy
// ---------------------------------------------------------------------------------------------

/// curl (absolute-form and CONNECT), curl over SOCKS5 (explicit and through
/// `ALL_PROXY`), wget, Python's urllib, node and pip all reach the allowed
/// upstream through the environment the sandbox sets, and the upstream sees
/// exactly their requests, each with `Host` naming the allowed authority.
///
/// Node 20's global `fetch` ignores the proxy environment (`NODE_USE_ENV_PROXY`
/// is Node 24+), so the node control is `http.get` with the proxy named
/// explicitly (absolute-form). Proxy-unaware clients such as Node 20's fetch
/// need the transparent mode, which is a separate layer.
fn positive_controls(caller: Caller) {
    let wheel = build_wheel();
    let routes = [
        ("/hello.txt", "text/plain", BODY.as_bytes().to_vec()),
        ("/simple/stockade-probe/", "text/html", index_page()),
        (
            "/files/stockade_probe-1.0-py3-none-any.whl",
            "application/octet-stream",
            wheel.clone(),
        ),
    ];
    let up = Upstream::http(&routes);
    let port = up.port();
    // An upstream on the host's ::1 as well, where the host has IPv6 loopback.
    let up6 = Upstream::http_on(IpAddr::V6(Ipv6Addr::LOCALHOST), &routes[..1]).ok();
    if up6.is_none() {
        eprintln!("note: this host cannot bind [::1]; the IPv6 upstream case is not exercised");
    }

    let fx = Fixture::new(caller, "egress-pos");
    let out_dir = fx.t.mkdir("out");
    caller.own(Path::new(&out_dir));
    let (mut opts, report) = fx.opts("pos");
    opts.extend(allow_loopback(port));
    opts.extend(["--rw".to_string(), format!("{out_dir}:/out")]);
    if let Some(u6) = &up6 {
        opts.extend(
            [
                "--allow-domain",
                &format!("allowed6.test:{}", u6.port()),
                "--resolve",
                "allowed6.test:[::1]",
                "--allow-private",
                "::1/128",
            ]
            .map(String::from),
        );
    }

    let url = format!("http://allowed.test:{port}/hello.txt");
    let q = shq(&url);
    let mut script = Script::new()
        .probe("curl_absolute_form", &format!("curl -sS -f {q}"))
        .probe("curl_connect", &format!("curl -sS -f -p {q}"))
        .probe(
            "curl_socks5h",
            &format!("curl -sS -f --socks5-hostname 127.0.0.1:1080 {q}"),
        )
        // curl reads only lower-case http_proxy; without it ALL_PROXY
        // (socks5h://127.0.0.1:1080) applies.
        .probe(
            "curl_all_proxy",
            &format!("env -u http_proxy -u HTTP_PROXY curl -sS -f {q}"),
        )
        .probe("wget", &format!("wget -q -O - {q}"))
        .probe(
            "python_urllib",
            &format!(
                "python3 -c 'import sys, urllib.request; \
                 sys.stdout.write(urllib.request.urlopen(sys.argv[1], timeout=10).read().decode())' {q}"
            ),
        )
        .probe(
            "node_http_explicit_proxy",
            &format!(
                "node -e 'require(\"http\").get({{host: \"127.0.0.1\", port: 3128, path: process.argv[1]}}, \
                 r => {{ let b = \"\"; r.on(\"data\", d => b += d); \
                 r.on(\"end\", () => process.stdout.write(r.statusCode + \" \" + b)); }})\
                 .on(\"error\", e => {{ console.log(e.code); process.exit(1); }})' {q}"
            ),
        )
        .probe(
            "pip_download",
            &format!(
                "python3 -m pip download -q --no-deps --disable-pip-version-check --no-cache-dir \
                 --progress-bar off --index-url http://allowed.test:{port}/simple/ \
                 --trusted-host allowed.test -d /out \
                 {WHEEL_PROJECT} && ls /out"
            ),
        );
    if let Some(u6) = &up6 {
        script = script.probe(
            "curl_ipv6_upstream",
            &format!("curl -sS -f http://allowed6.test:{}/hello.txt", u6.port()),
        );
    }
    let out = sh(caller, &opts, &script.build());
    assert_code(&out, 0);
    let p = probes(&out);
    let body = BODY.trim_end();
    for name in [
        "curl_absolute_form",
        "curl_connect",
        "curl_socks5h",
        "curl_all_proxy",
        "wget",
        "python_urllib",
    ] {
        p.ok(name, body);
    }
    p.ok("node_http_explicit_proxy", &format!("200 {body}"));
    p.ok("pip_download", WHEEL_FILE);
    assert_eq!(
        fs::read(format!("{out_dir}/{WHEEL_FILE}")).expect("the wheel landed on the host"),
        wheel,
        "pip saved different bytes"
    );

    // The upstream saw exactly these requests, each for the allowed authority
    // (node sent `Host: 127.0.0.1:3128`; the proxy sets it from the URI).
    let log = up.log();
    let mut lines = log.request_lines();
    lines.sort();
    let hello = "GET /hello.txt HTTP/1.1".to_string();
    let mut want = vec![hello.clone(); 7];
    want.push(format!("GET /files/{WHEEL_FILE} HTTP/1.1"));
    want.push(format!("GET /simple/{WHEEL_PROJECT}/ HTTP/1.1"));
    want.sort();
    assert_eq!(lines, want, "upstream requests: {log:#?}");
    assert_eq!(log.connections.len(), 9, "{log:#?}");
    for head in &log.heads {
        let host = head
            .lines()
            .find(|l| l.to_ascii_lowercase().starts_with("host:"))
            .map(|l| l[5..].trim().to_string());
        assert_eq!(
            host.as_deref(),
            Some(&*format!("allowed.test:{port}")),
            "{head}"
        );
    }
    if let Some(u6) = &up6 {
        p.ok("curl_ipv6_upstream", body);
        let l6 = u6.log();
        assert_eq!(l6.request_lines(), vec![hello], "{l6:#?}");
    }

    // The report: every connection allowed and closed, none denied, and the
    // protocols the clients used.
    let events = proxy_events(&report);
    let count = |decision: &str, protocol: &str| {
        events
            .iter()
            .filter(|e| {
                e["decision"] == decision
                    && e["protocol"] == protocol
                    && e["host"] == "allowed.test"
            })
            .count()
    };
    assert!(
        events.iter().all(|e| e["decision"] != "denied"),
        "nothing was to be denied: {events:#?}"
    );
    // http: curl, wget, urllib, node, pip x2; CONNECT: curl -p; SOCKS5: two curls.
    for (protocol, n) in [("http", 6), ("http-connect", 1), ("socks5", 2)] {
        assert_eq!(
            count("allowed", protocol),
            n,
            "{protocol} allowed: {events:#?}"
        );
        assert_eq!(
            count("closed", protocol),
            n,
            "{protocol} closed: {events:#?}"
        );
    }
    for e in events.iter().filter(|e| e["host"] == "allowed.test") {
        assert_eq!(e["address"], format!("127.0.0.1:{port}"), "{e}");
    }
    if let Some(u6) = &up6 {
        let v6: Vec<_> = events
            .iter()
            .filter(|e| e["host"] == "allowed6.test")
            .collect();
        assert_eq!(v6.len(), 2, "{events:#?}");
        for e in v6 {
            assert_eq!(e["address"], format!("[::1]:{}", u6.port()), "{e}");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// 2. Denials
// ---------------------------------------------------------------------------------------------

/// One probe of the denial table: what the client sees, and the event.
struct Denied {
    name: &'static str,
    cmd: String,
    rc: i32,
    out: String,
    /// (protocol, host as the client sent it, port, reason) of the event.
    event: (&'static str, String, u16, &'static str),
}

fn denied(
    name: &'static str,
    cmd: String,
    rc: i32,
    out: &str,
    event: (&'static str, &str, u16, &'static str),
) -> Denied {
    Denied {
        name,
        cmd,
        rc,
        out: out.to_string(),
        event: (event.0, event.1.to_string(), event.2, event.3),
    }
}

/// Every refusal the policy documents, through every front end that can ask
/// for it: the client sees the status and reason (or SOCKS5 reply), the
/// report has the event, and neither upstream accepted a single connection.
/// The positive control afterwards is the same policy reaching the same
/// upstream.
fn denials(caller: Caller) {
    let up = hello_upstream();
    let raw = Upstream::raw();
    let (p, q) = (up.port(), raw.port());
    let fx = Fixture::new(caller, "egress-deny");

    // Every name below resolves to the upstream, so only the policy stands
    // between the request and a connection.
    let mut policy: Vec<String> = vec![
        "--allow-domain".into(),
        format!("allowed.test:{p}"),
        "--allow-domain".into(),
        format!("*.corp.test:{p}"),
        "--deny-domain".into(),
        "secret.corp.test".into(),
        "--allow-domain".into(),
        format!("denied.test:{p}"),
        "--deny-domain".into(),
        "denied.test".into(),
        // Allowed on 80/443, but metadata: by name and as an allowed literal,
        // and a link-local --allow-private does not lift the endpoint.
        "--allow-domain".into(),
        "meta.test".into(),
        "--allow-domain".into(),
        "169.254.169.254".into(),
        "--resolve".into(),
        "meta.test:169.254.169.254".into(),
        "--allow-private".into(),
        "169.254.0.0/16".into(),
    ];
    for name in [
        "allowed.test",
        "other.test",
        "allowed.test.evil",
        "evilallowed.test",
        "evil",
        "evil.test",
        "secret.corp.test",
        "ok.corp.test",
        "denied.test",
    ] {
        policy.extend(["--resolve".into(), format!("{name}:127.0.0.1")]);
    }
    let private = ["--allow-private".to_string(), "127.0.0.1/32".to_string()];

    let trap = |host: &str| format!("http://{host}:{p}/trap");
    let table = vec![
        // Not allowed at all, through each front end.
        denied(
            "name_http",
            curl_status(&trap("other.test")),
            0,
            "403 not-allowed",
            ("http", "other.test", p, "not-allowed"),
        ),
        denied(
            "name_connect",
            format!(
                "curl -s -p -o /dev/null -w '%{{http_connect}}' {}",
                shq(&trap("other.test"))
            ),
            56,
            "403",
            ("http-connect", "other.test", p, "not-allowed"),
        ),
        denied(
            "name_socks_curl",
            format!(
                "curl -sS --socks5-hostname 127.0.0.1:1080 {}",
                shq(&trap("other.test"))
            ),
            97,
            "curl: (97) Can't complete SOCKS5 connection to other.test. (2)",
            ("socks5", "other.test", p, "not-allowed"),
        ),
        // Lookalikes.
        denied(
            "lookalike_suffix",
            curl_status(&trap("allowed.test.evil")),
            0,
            "403 not-allowed",
            ("http", "allowed.test.evil", p, "not-allowed"),
        ),
        denied(
            "lookalike_prefix",
            curl_status(&trap("evilallowed.test")),
            0,
            "403 not-allowed",
            ("http", "evilallowed.test", p, "not-allowed"),
        ),
        // curl takes `allowed.test@` as credentials: what reaches the proxy
        // is the host `evil` (the userinfo becomes an Authorization header).
        denied(
            "lookalike_userinfo",
            curl_status(&format!("http://allowed.test@evil:{p}/trap")),
            0,
            "403 not-allowed",
            ("http", "evil", p, "not-allowed"),
        ),
        denied(
            "lookalike_userinfo_port",
            curl_status(&format!("http://allowed.test:{p}@evil:{p}/trap")),
            0,
            "403 not-allowed",
            ("http", "evil", p, "not-allowed"),
        ),
        denied(
            "lookalike_fragment",
            curl_status(&format!("http://evil.test#@allowed.test:{p}/trap")),
            0,
            "403 not-allowed",
            ("http", "evil.test", 80, "not-allowed"),
        ),
        // Userinfo sent as is: refused by the front end, before the policy.
        denied(
            "userinfo_raw",
            py(&["get", &format!("http://allowed.test@evil:{p}/trap")]),
            0,
            "400 userinfo",
            ("http", "", 0, "userinfo"),
        ),
        denied(
            "userinfo_connect",
            py(&["connect", &format!("allowed.test@evil:{p}")]),
            0,
            "400 userinfo",
            ("http", "", 0, "userinfo"),
        ),
        denied(
            "userinfo_socks",
            py(&["socks", "allowed.test@evil", &p.to_string()]),
            0,
            "reply=4",
            ("socks5", "allowed.test@evil", p, "bad-hostname"),
        ),
        // IP literals (the upstream's own address), even with --allow-private.
        denied(
            "ip_literal_http",
            format!(
                "curl --noproxy '' -s -o /dev/null -w '%{{http_code}} %header{{x-proxy-error}}' {}",
                shq(&trap("127.0.0.1"))
            ),
            0,
            "403 ip-literal-not-allowed",
            ("http", "127.0.0.1", p, "ip-literal-not-allowed"),
        ),
        denied(
            "ip_literal_connect",
            py(&["connect", &format!("127.0.0.1:{p}")]),
            0,
            "403 ip-literal-not-allowed",
            ("http-connect", "127.0.0.1", p, "ip-literal-not-allowed"),
        ),
        denied(
            "ip_literal_socks",
            py(&["socks", "ip4:127.0.0.1", &p.to_string()]),
            0,
            "reply=2",
            ("socks5", "127.0.0.1", p, "ip-literal-not-allowed"),
        ),
        denied(
            "ip6_literal_http",
            py(&["get", &format!("http://[::1]:{p}/trap")]),
            0,
            "403 ip-literal-not-allowed",
            ("http", "::1", p, "ip-literal-not-allowed"),
        ),
        // Numeric spellings of 127.0.0.1 (status 400: not a policy question).
        denied(
            "numeric_decimal",
            py(&["get", &trap("2130706433")]),
            0,
            "400 non-canonical-ip",
            ("http", "2130706433", p, "non-canonical-ip"),
        ),
        denied(
            "numeric_hex",
            py(&["get", &trap("0x7f.1")]),
            0,
            "400 non-canonical-ip",
            ("http", "0x7f.1", p, "non-canonical-ip"),
        ),
        denied(
            "numeric_short",
            py(&["get", &trap("127.1")]),
            0,
            "400 non-canonical-ip",
            ("http", "127.1", p, "non-canonical-ip"),
        ),
        denied(
            "numeric_connect",
            py(&["connect", &format!("0x7f.1:{p}")]),
            0,
            "400 non-canonical-ip",
            ("http-connect", "0x7f.1", p, "non-canonical-ip"),
        ),
        denied(
            "numeric_socks",
            py(&["socks", "2130706433", &p.to_string()]),
            0,
            "reply=8",
            ("socks5", "2130706433", p, "non-canonical-ip"),
        ),
        // curl canonicalises the spelling itself before asking the proxy.
        denied(
            "numeric_curl",
            format!(
                "curl --noproxy '' -s -o /dev/null -w '%{{http_code}} %header{{x-proxy-error}}' {}",
                shq(&trap("0x7f.1"))
            ),
            0,
            "403 ip-literal-not-allowed",
            ("http", "127.0.0.1", p, "ip-literal-not-allowed"),
        ),
        // The allowed host on another port (the raw recorder's).
        denied(
            "port_http",
            curl_status(&format!("http://allowed.test:{q}/trap")),
            0,
            "403 port-not-allowed",
            ("http", "allowed.test", q, "port-not-allowed"),
        ),
        denied(
            "port_connect",
            py(&["connect", &format!("allowed.test:{q}")]),
            0,
            "403 port-not-allowed",
            ("http-connect", "allowed.test", q, "port-not-allowed"),
        ),
        denied(
            "port_socks",
            py(&["socks", "allowed.test", &q.to_string()]),
            0,
            "reply=2",
            ("socks5", "allowed.test", q, "port-not-allowed"),
        ),
        // Cloud metadata: an allowed literal, and an allowed name resolving to it.
        denied(
            "metadata_literal",
            curl_status("http://169.254.169.254/latest/meta-data/"),
            0,
            "403 metadata-address",
            ("http", "169.254.169.254", 80, "metadata-address"),
        ),
        denied(
            "metadata_name",
            curl_status("http://meta.test/latest/meta-data/"),
            0,
            "403 metadata-address",
            ("http", "meta.test", 80, "metadata-address"),
        ),
        denied(
            "metadata_socks",
            py(&["socks", "meta.test", "80"]),
            0,
            "reply=2",
            ("socks5", "meta.test", 80, "metadata-address"),
        ),
        // Deny beats allow (wildcard allow, exact allow; case and trailing dot
        // are normalised first).
        denied(
            "deny_over_wildcard",
            curl_status(&trap("secret.corp.test")),
            0,
            "403 denied-by-pattern",
            ("http", "secret.corp.test", p, "denied-by-pattern"),
        ),
        denied(
            "deny_over_exact",
            curl_status(&trap("denied.test")),
            0,
            "403 denied-by-pattern",
            ("http", "denied.test", p, "denied-by-pattern"),
        ),
        denied(
            "deny_case_dot",
            py(&["get", &trap("SECRET.Corp.Test.")]),
            0,
            "403 denied-by-pattern",
            ("http", "SECRET.Corp.Test.", p, "denied-by-pattern"),
        ),
        denied(
            "deny_socks",
            py(&["socks", "secret.corp.test", &p.to_string()]),
            0,
            "reply=2",
            ("socks5", "secret.corp.test", p, "denied-by-pattern"),
        ),
        // Oversized heads.
        denied(
            "head_too_large",
            py(&["bighead", &format!("allowed.test:{p}")]),
            0,
            "431 head-too-large",
            ("http", "", 0, "head-too-large"),
        ),
        denied(
            "too_many_headers",
            py(&["manyheaders", &format!("allowed.test:{p}")]),
            0,
            "431 too-many-headers",
            ("http", "", 0, "too-many-headers"),
        ),
    ];

    let (mut opts, report) = fx.opts("deny");
    opts.extend(policy.iter().cloned());
    opts.extend(private.iter().cloned());
    let mut script = Script::new();
    for d in &table {
        script = script.probe(d.name, &d.cmd);
    }
    let out = sh(caller, &opts, &script.build());
    assert_code(&out, 0);
    let pr = probes(&out);
    for d in &table {
        expect(&pr, d.name, d.rc, &d.out);
    }
    let events = proxy_events(&report);
    assert_none_allowed(&events);
    for d in &table {
        let (protocol, host, port, reason) = &d.event;
        assert_denied_event(&events, protocol, host, *port, reason);
    }
    assert_eq!(
        events.len(),
        table.len(),
        "one event per request: {events:#?}"
    );
    up.assert_untouched("every request of the denial run was refused");
    raw.assert_untouched("allowed.test on a port no pattern allows");

    // Without --allow-private the same allowed name is an internal address;
    // neither a CIDR around it nor 0.0.0.0/0 opens the host's loopback.
    let (mut opts, report) = fx.opts("internal");
    opts.extend(policy.iter().cloned());
    opts.extend(
        [
            "--allow-private",
            "10.0.0.0/8",
            "--allow-private",
            "0.0.0.0/0",
        ]
        .map(String::from),
    );
    let script = Script::new()
        .probe("internal_http", &curl_status(&trap("allowed.test")))
        .probe(
            "internal_connect",
            &py(&["connect", &format!("allowed.test:{p}")]),
        )
        .probe(
            "internal_socks",
            &py(&["socks", "allowed.test", &p.to_string()]),
        )
        .probe("internal_wildcard", &curl_status(&trap("ok.corp.test")))
        .build();
    let out = sh(caller, &opts, &script);
    assert_code(&out, 0);
    let pr = probes(&out);
    pr.ok("internal_http", "403 internal-address");
    pr.ok("internal_connect", "403 internal-address");
    pr.ok("internal_socks", "reply=2");
    pr.ok("internal_wildcard", "403 internal-address");
    let events = proxy_events(&report);
    assert_none_allowed(&events);
    assert_denied_event(&events, "http", "allowed.test", p, "internal-address");
    assert_denied_event(
        &events,
        "http-connect",
        "allowed.test",
        p,
        "internal-address",
    );
    assert_denied_event(&events, "socks5", "allowed.test", p, "internal-address");
    assert_denied_event(&events, "http", "ok.corp.test", p, "internal-address");
    up.assert_untouched("allowed.test without --allow-private");

    // Positive control: the first policy, permitted requests, same upstream.
    let (mut opts, report) = fx.opts("control");
    opts.extend(policy.iter().cloned());
    opts.extend(private.iter().cloned());
    let url = |host: &str| shq(&format!("http://{host}:{p}/hello.txt"));
    let script = Script::new()
        .probe("allowed", &format!("curl -sS -f {}", url("allowed.test")))
        .probe(
            "allowed_connect",
            &format!("curl -sS -f -p {}", url("allowed.test")),
        )
        .probe(
            "allowed_socks",
            &format!(
                "curl -sS -f --socks5-hostname 127.0.0.1:1080 {}",
                url("allowed.test")
            ),
        )
        .probe("wildcard", &format!("curl -sS -f {}", url("ok.corp.test")))
        .build();
    let out = sh(caller, &opts, &script);
    assert_code(&out, 0);
    let pr = probes(&out);
    let body = BODY.trim_end();
    for name in ["allowed", "allowed_connect", "allowed_socks", "wildcard"] {
        pr.ok(name, body);
    }
    let log = up.log();
    assert_eq!(log.connections.len(), 4, "{log:#?}");
    assert_eq!(
        log.request_lines(),
        vec!["GET /hello.txt HTTP/1.1"; 4],
        "{log:#?}"
    );
    let events = proxy_events(&report);
    assert_eq!(
        events.iter().filter(|e| e["decision"] == "allowed").count(),
        4,
        "{events:#?}"
    );
    raw.assert_untouched("the positive control uses the allowed port only");
}

// ---------------------------------------------------------------------------------------------
// 3. Bypasses
// ---------------------------------------------------------------------------------------------

/// Going around the proxy: without the proxy environment curl cannot
/// connect or resolve; raw sockets get exact errnos (Landlock's EACCES for
/// every TCP connect but 3128/1080, the empty namespace's ENETUNREACH for
/// UDP and for TCP to the proxy ports elsewhere); DNS has nowhere to go; the
/// host's loopback services are another loopback. With `--loopback-tcp`
/// (Landlock's TCP rule lifted) the namespace alone still keeps everything
/// in. The upstreams and the UDP recorder on the host saw nothing but the
/// positive controls.
///
/// These errnos pin the design (DESIGN.md, Network): Landlock allows TCP
/// connect to the proxy's ports only (3128, 1080, and 80/443 for the
/// transparent mode, so a connect to an outside address on 443 is the
/// namespace's ENETUNREACH), and the sandbox's own DNS on 127.0.0.1:53
/// answers only allowed names (NXDOMAIN for the rest, without a real lookup).
fn bypasses(caller: Caller) {
    let up = hello_upstream();
    let raw = Upstream::raw();
    let udp = UdpRecorder::start();
    let (p, q, u) = (up.port(), raw.port(), udp.port());
    let fx = Fixture::new(caller, "egress-bypass");

    let ps = p.to_string();
    let qs = q.to_string();
    let us = u.to_string();
    let script = Script::new()
        .probe("control", &format!("curl -sS -f http://allowed.test:{p}/hello.txt"))
        .probe(
            "curl_without_proxy_env",
            &format!(
                "env -u http_proxy -u HTTP_PROXY -u https_proxy -u HTTPS_PROXY -u all_proxy -u ALL_PROXY \
                 curl -sS http://127.0.0.1:{p}/hello.txt"
            ),
        )
        .probe(
            "curl_noproxy_name",
            &format!("curl -sS --noproxy '*' http://allowed.test:{p}/hello.txt"),
        )
        .probe(
            "curl_noproxy_resolved",
            &format!(
                "curl -sS --noproxy '*' --resolve allowed.test:{p}:127.0.0.1 http://allowed.test:{p}/hello.txt"
            ),
        )
        .probe("tcp_host_upstream", &py(&["tcp", "127.0.0.1", &ps]))
        .probe("tcp6_host_upstream", &py(&["tcp6", "::1", &ps]))
        .probe("tcp_host_recorder", &py(&["tcp", "127.0.0.1", &qs]))
        .probe("tcp_dns_server", &py(&["tcp", "8.8.8.8", "53"]))
        .probe("udp_dns_server", &py(&["udp", "8.8.8.8", "53"]))
        // Port 443 is a transparent-mode port for Landlock: no route, though.
        .probe("tcp6_public", &py(&["tcp6", "2001:4860:4860::8888", "443"]))
        .probe("tcp6_public_ssh", &py(&["tcp6", "2001:4860:4860::8888", "22"]))
        .probe("udp6_public", &py(&["udp6", "2001:4860:4860::8888", "443"]))
        .probe("udp_quic", &py(&["udp", "1.1.1.1", "443"]))
        .probe("dns_query_public", &py(&["dns", "8.8.8.8", "53"]))
        // The sandbox's own DNS (transparent mode) answers, with NXDOMAIN.
        .probe("dns_query_resolv_conf", &py(&["dns", "127.0.0.1", "53"]))
        .probe("dns_query_host_recorder", &py(&["dns", "127.0.0.1", &us]))
        .probe("udp_host_recorder", &py(&["udp", "127.0.0.1", &us]))
        // Refused by the sandbox's own DNS: not an allowed name.
        .probe(
            "getaddrinfo",
            "python3 -c 'import socket; socket.getaddrinfo(\"example.com\", 80)'",
        )
        // Landlock lets the proxy ports through on any address: the namespace
        // has no route for them.
        .probe("tcp_proxy_port_elsewhere", &py(&["tcp", "8.8.8.8", "1080"]))
        .probe("tcp6_proxy_port_elsewhere", &py(&["tcp6", "2001:4860:4860::8888", "3128"]))
        .build();

    let mut base = allow_loopback(p);
    base.extend(["--timeout".to_string(), "60".to_string()]);

    for loopback_tcp in [false, true] {
        let (mut opts, report) = fx.opts(if loopback_tcp { "bypass-lo" } else { "bypass" });
        opts.extend(base.iter().cloned());
        if loopback_tcp {
            opts.push("--loopback-tcp".into());
        }
        let out = sh(caller, &opts, &script);
        assert_code(&out, 0);
        let pr = probes(&out);
        pr.ok("control", BODY.trim_end());
        let (lo_refusal, out_refusal) = if loopback_tcp {
            // Own loopback: nothing listens there. Outside: no route.
            ("ECONNREFUSED", "ENETUNREACH")
        } else {
            ("EACCES", "EACCES")
        };
        assert_rc_contains(
            &pr,
            "curl_without_proxy_env",
            7,
            "Couldn't connect to server",
        );
        assert_rc_contains(
            &pr,
            "curl_noproxy_name",
            6,
            "Could not resolve host: allowed.test",
        );
        assert_rc_contains(
            &pr,
            "curl_noproxy_resolved",
            7,
            "Couldn't connect to server",
        );
        pr.ok("tcp_host_upstream", lo_refusal);
        pr.ok("tcp6_host_upstream", lo_refusal);
        pr.ok("tcp_host_recorder", lo_refusal);
        pr.ok("tcp_dns_server", out_refusal);
        pr.ok("udp_dns_server", "ENETUNREACH");
        pr.ok("tcp6_public", "ENETUNREACH");
        pr.ok("tcp6_public_ssh", out_refusal);
        pr.ok("udp6_public", "ENETUNREACH");
        pr.ok("udp_quic", "ENETUNREACH");
        pr.ok("dns_query_public", "ENETUNREACH");
        // The sandbox's resolv.conf names its own 127.0.0.1, where the
        // transparent mode's DNS answers (NXDOMAIN for example.com); the
        // host's recorder on "127.0.0.1" is another loopback.
        pr.ok("dns_query_resolv_conf", "ok");
        pr.ok("dns_query_host_recorder", "ECONNREFUSED");
        pr.ok("udp_host_recorder", "ok");
        assert_rc_contains(&pr, "getaddrinfo", 1, "Name or service not known");
        pr.ok("tcp_proxy_port_elsewhere", "ENETUNREACH");
        pr.ok("tcp6_proxy_port_elsewhere", "ENETUNREACH");

        // Only the control went through the proxy; the DNS refused every
        // name it was asked for (example.com is not allowed; allowed.test
        // is allowed only on the upstream's port, not 80/443).
        let events = proxy_events(&report);
        let (dns, events): (Vec<_>, Vec<_>) =
            events.into_iter().partition(|e| e["protocol"] == "dns");
        assert!(
            dns.iter()
                .any(|e| e["host"] == "example.com" && e["decision"] == "denied"),
            "{dns:#?}"
        );
        assert!(dns.iter().all(|e| e["decision"] == "denied"), "{dns:#?}");
        let summary: Vec<(String, String)> = events
            .iter()
            .map(|e| {
                (
                    e["decision"].as_str().unwrap_or("").to_string(),
                    e["host"].as_str().unwrap_or("").to_string(),
                )
            })
            .collect();
        assert_eq!(
            summary,
            [("allowed", "allowed.test"), ("closed", "allowed.test")]
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .to_vec(),
            "{events:#?}"
        );
    }
    let log = up.log();
    assert_eq!(
        log.request_lines(),
        vec!["GET /hello.txt HTTP/1.1"; 2],
        "only the two controls may reach the upstream: {log:#?}"
    );
    assert_eq!(log.connections.len(), 2, "{log:#?}");
    raw.assert_untouched("direct connects from inside");
    let dgrams = udp.datagrams();
    assert!(
        dgrams.is_empty(),
        "the host's UDP recorder got datagrams: {dgrams:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// 4. --net none
// ---------------------------------------------------------------------------------------------

/// The proxy environment as the sandbox sets it (DESIGN.md, Network).
const PROXY_VARS: [&str; 15] = [
    "ALL_PROXY",
    "HTTPS_PROXY",
    "HTTP_PROXY",
    "NODE_USE_ENV_PROXY",
    "NO_PROXY",
    "PIP_PROXY",
    "YARN_HTTPS_PROXY",
    "YARN_HTTP_PROXY",
    "all_proxy",
    "http_proxy",
    "https_proxy",
    "no_proxy",
    "npm_config_https_proxy",
    "npm_config_noproxy",
    "npm_config_proxy",
];

/// `--net none` (the default): nothing listens on 3128/1080 inside (Landlock
/// refuses the connect with EACCES; with `--loopback-tcp` the kernel answers
/// ECONNREFUSED) and no proxy variable is set. Positive control: in proxy
/// mode the same connects succeed and the variables are there.
fn net_none(caller: Caller) {
    let fx = Fixture::new(caller, "egress-none");
    let script = Script::new()
        .probe("http_proxy_port", &py(&["tcp", "127.0.0.1", "3128"]))
        .probe("socks_port", &py(&["tcp", "127.0.0.1", "1080"]))
        .probe(
            "env",
            "env | grep -i proxy | cut -d= -f1 | LC_ALL=C sort | tr '\\n' ' '",
        )
        .probe(
            "values",
            "printf '%s|%s|%s' \"$http_proxy\" \"$ALL_PROXY\" \"$NO_PROXY\"",
        )
        .build();
    for (extra, refusal) in [
        (&[][..], "EACCES"),
        (&["--net", "none"][..], "EACCES"),
        (&["--loopback-tcp"][..], "ECONNREFUSED"),
    ] {
        let (mut opts, _) = fx.opts("none");
        opts.extend(extra.iter().map(|s| s.to_string()));
        let out = sh(caller, &opts, &script);
        assert_code(&out, 0);
        let pr = probes(&out);
        pr.ok("http_proxy_port", refusal);
        pr.ok("socks_port", refusal);
        pr.ok("env", "");
        pr.ok("values", "||");
    }

    let (mut opts, report) = fx.opts("proxy");
    opts.extend(["--allow-domain", "allowed.test"].map(String::from));
    let out = sh(caller, &opts, &script);
    assert_code(&out, 0);
    let pr = probes(&out);
    pr.ok("http_proxy_port", "ok");
    pr.ok("socks_port", "ok");
    pr.ok("env", &PROXY_VARS.join(" "));
    pr.ok(
        "values",
        "http://127.0.0.1:3128|socks5h://127.0.0.1:1080|localhost,127.0.0.1,::1",
    );
    // The two bare connects sent nothing: nothing was allowed.
    assert_none_allowed(&proxy_events(&report));
}

// ---------------------------------------------------------------------------------------------
// 5. Report
// ---------------------------------------------------------------------------------------------

/// One allowed download: the report has exactly `allowed` then `closed`, the
/// address the proxy connected to, and `bytes_down` covering the body.
fn report_events(caller: Caller) {
    const SIZE: usize = 200_000;
    let big: Vec<u8> = (0..SIZE).map(|i| b'a' + (i % 26) as u8).collect();
    let up = Upstream::http(&[("/big.bin", "application/octet-stream", big)]);
    let p = up.port();
    let fx = Fixture::new(caller, "egress-report");
    let (mut opts, report) = fx.opts("report");
    opts.extend(allow_loopback(p));
    let script = Script::new()
        .probe(
            "download",
            &format!(
                "curl -sS -f -o /tmp/big.bin -w '%{{size_download}}' http://allowed.test:{p}/big.bin \
                 && cksum < /tmp/big.bin | cut -d' ' -f2"
            ),
        )
        .build();
    let out = sh(caller, &opts, &script);
    assert_code(&out, 0);
    probes(&out).ok("download", &format!("{SIZE}{SIZE}"));

    let events = proxy_events(&report);
    assert_eq!(events.len(), 2, "{events:#?}");
    let (a, c) = (&events[0], &events[1]);
    let addr = format!("127.0.0.1:{p}");
    for (e, decision) in [(a, "allowed"), (c, "closed")] {
        assert_eq!(e["decision"], decision, "{events:#?}");
        assert_eq!(e["protocol"], "http", "{e}");
        assert_eq!(e["host"], "allowed.test", "{e}");
        assert_eq!(e["port"], p, "{e}");
        assert_eq!(e["address"], addr, "{e}");
        assert!(e["reason"].is_null(), "{e}");
    }
    let down = c["bytes_down"].as_u64().expect("bytes_down");
    assert!(
        down >= SIZE as u64 && down < SIZE as u64 + 1024,
        "bytes_down {down} should be the body ({SIZE}) plus a response head: {c}"
    );
    assert!(c["at"].as_f64() >= a["at"].as_f64(), "{events:#?}");
    assert_eq!(up.log().connections.len(), 1);
}

// ---------------------------------------------------------------------------------------------
// 6. Invalid options
// ---------------------------------------------------------------------------------------------

/// Invalid proxy options: exit 125, one stderr line naming the bad value,
/// nothing runs (the command would leave a file behind).
fn invalid_options(caller: Caller) {
    let t = TestDir::new("egress-invalid");
    let dir = t.mkdir("w");
    caller.own(Path::new(&dir));
    let bind = format!("{dir}:/w");
    for (args, named) in [
        (&["--allow-domain", "*"][..], "\"*\""),
        (
            &[
                "--allow-domain",
                "allowed.test",
                "--allow-private",
                "10.0.0.0/33",
            ][..],
            "\"10.0.0.0/33\"",
        ),
        (
            &["--allow-domain", "allowed.test", "--resolve", "bad"][..],
            "\"bad\"",
        ),
        (
            &[
                "--allow-domain",
                "allowed.test",
                "--deny-domain",
                "*.*.test",
            ][..],
            "\"*.*.test\"",
        ),
        (
            &[
                "--allow-domain",
                "allowed.test",
                "--resolve",
                "allowed.test:80:127.0.0.1",
            ][..],
            "\"allowed.test:80:127.0.0.1\"",
        ),
    ] {
        let mut opts: Vec<&str> = vec!["--rw", &bind];
        opts.extend(args);
        let out = sh(caller, &opts, "touch /w/ran");
        let line = assert_refused(&out);
        assert!(
            line.contains(named),
            "{args:?}: the error must name {named}: {line}"
        );
        assert!(
            listing(Path::new(&dir)).is_empty(),
            "{args:?}: the command ran: {:?}",
            listing(Path::new(&dir))
        );
    }
    // Positive control: the same command with a valid policy runs.
    let out = sh(
        caller,
        &["--rw", &bind, "--allow-domain", "allowed.test"],
        "touch /w/ran",
    );
    assert_code(&out, 0);
    assert_eq!(listing(Path::new(&dir)), vec!["ran"]);
}

// ---------------------------------------------------------------------------------------------
// 7. Robustness
// ---------------------------------------------------------------------------------------------

/// A client that sends part of a request head (HTTP) or of a SOCKS5 greeting
/// and then nothing is cut off by the proxy's 10 s head deadline: HTTP gets
/// 408 `head-timeout`, SOCKS5 is closed without a reply. Meanwhile a normal
/// request goes through (the stalled clients block nobody). ~11 s.
fn slowloris(caller: Caller) {
    let up = hello_upstream();
    let p = up.port();
    let fx = Fixture::new(caller, "egress-slow");
    let (mut opts, report) = fx.opts("slow");
    opts.extend(allow_loopback(p));
    opts.extend(["--timeout", "40"].map(String::from));
    let script = Script::new()
        .raw(&format!(
            "{} > /tmp/slow.txt 2>&1 & slow=$!",
            py(&["slow", "15"])
        ))
        .raw("sleep 0.5")
        .probe(
            "control",
            &format!("curl -sS -f --max-time 5 http://allowed.test:{p}/hello.txt"),
        )
        .raw("wait $slow")
        .probe("slow", "cat /tmp/slow.txt")
        .build();
    let started = std::time::Instant::now();
    let out = sh(caller, &opts, &script);
    let took = started.elapsed();
    assert_code(&out, 0);
    let pr = probes(&out);
    pr.ok("control", BODY.trim_end());
    let slow = pr.ok_any("slow");
    // "http=408 head-timeout after 10.0 socks=b'' after 10.0"
    let after = |tag: &str| -> f64 {
        let rest = slow
            .split(&format!("{tag}="))
            .nth(1)
            .unwrap_or_else(|| panic!("no {tag}= in {slow:?}"));
        let (what, t) = rest
            .split_once(" after ")
            .unwrap_or_else(|| panic!("no 'after' in {slow:?}"));
        let t: f64 = t.split(' ').next().unwrap().parse().expect("seconds");
        match tag {
            "http" => assert_eq!(what, "408 head-timeout", "{slow}"),
            _ => assert_eq!(what, "b''", "SOCKS5: closed without a reply: {slow}"),
        }
        t
    };
    for tag in ["http", "socks"] {
        let t = after(tag);
        assert!(
            (9.0..=13.0).contains(&t),
            "{tag}: cut off after {t} s, the head deadline is 10 s: {slow}"
        );
    }
    assert!(took.as_secs() < 30, "the run took {took:?}");

    let events = proxy_events(&report);
    assert_denied_event(&events, "http", "", 0, "head-timeout");
    assert_denied_event(&events, "socks5", "", 0, "handshake-timeout");
    let log = up.log();
    assert_eq!(
        log.request_lines(),
        vec!["GET /hello.txt HTTP/1.1"],
        "only the control reaches the upstream: {log:#?}"
    );
}
