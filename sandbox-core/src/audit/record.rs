//! One audit record's text -> typed fields. Pure functions, no kernel.
//!
//! A record read from the audit netlink socket is a message type (the
//! netlink `nlmsg_type`, e.g. 1423) and a text such as
//!
//! ```text
//! audit(1700000000.123:42): domain=1a2b3c4d5 blockers=fs.read_file path="/etc/shadow" dev="vda" ino=737
//! ```
//!
//! The header carries the event's time (seconds and milliseconds since the
//! epoch) and its serial: every record of one event shares the serial. The
//! body is `key=value` fields separated by single spaces. A string the
//! kernel does not trust (a path, a command name, a device name) is written
//! quoted when it is plain printable ASCII without spaces or quotes, and
//! otherwise as bare upper-case hex of its bytes (`audit_log_untrustedstring`),
//! which [`fields`] decodes for the keys that carry such strings.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// `AUDIT_SYSCALL`: the system call an event happened in.
pub const AUDIT_SYSCALL: u16 = 1300;
/// `AUDIT_EOE`: the end of a multi-record event.
pub const AUDIT_EOE: u16 = 1320;
/// `AUDIT_LANDLOCK_ACCESS`: one access a Landlock domain denied.
pub const AUDIT_LANDLOCK_ACCESS: u16 = 1423;
/// `AUDIT_LANDLOCK_DOMAIN`: a Landlock domain's creation details (logged
/// with its first logged denial) or its release.
pub const AUDIT_LANDLOCK_DOMAIN: u16 = 1424;

/// Keys whose values the kernel writes with `audit_log_untrustedstring`
/// (or the same quoting rules): a bare value of one of these is hex.
const UNTRUSTED_KEYS: &[&str] = &[
    "path",
    "name",
    "comm",
    "ocomm",
    "exe",
    "dev",
    "proctitle",
    "cwd",
];

/// The `audit(SECS.MSEC:SERIAL): ` prefix of every record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// When the kernel started the event (its coarse real-time clock).
    pub at: SystemTime,
    /// The event's serial number, shared by all its records.
    pub serial: u64,
}

/// The records this layer uses, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Record {
    /// `AUDIT_LANDLOCK_ACCESS`: `domain=<hex> blockers=<a,b> <object fields>`.
    Access {
        /// Time and serial.
        header: Header,
        /// The youngest domain that denied the access.
        domain: u64,
        /// What was missing, e.g. `fs.read_file`, `net.connect_tcp`, `scope.signal`.
        blockers: Vec<String>,
        /// The object's fields in the kernel's order (`path`, `dev`, `ino`,
        /// `name`, `opid`, `ocomm`, `dest`, ...), untrusted strings decoded.
        object: Vec<(String, String)>,
    },
    /// `AUDIT_LANDLOCK_DOMAIN` with `status=allocated`: who created the domain.
    DomainAllocated {
        /// Time and serial (the event of the domain's first logged denial).
        header: Header,
        /// The domain.
        domain: u64,
        /// Host (initial PID namespace) pid of the process that called
        /// `landlock_restrict_self`.
        creator_pid: u32,
    },
    /// `AUDIT_LANDLOCK_DOMAIN` with `status=deallocated`: the domain is gone
    /// and its id will never be logged again.
    DomainReleased {
        /// Time and serial.
        header: Header,
        /// The domain.
        domain: u64,
        /// Every access the domain denied, logged or not.
        denials: u64,
    },
    /// `AUDIT_SYSCALL`: the process the event happened in.
    Syscall {
        /// Time and serial.
        header: Header,
        /// Host pid of the calling process.
        pid: Option<u32>,
        /// Its command name.
        comm: Option<String>,
        /// Its executable.
        exe: Option<String>,
    },
    /// `AUDIT_EOE`: no more records for this serial.
    EndOfEvent {
        /// Time and serial.
        header: Header,
    },
}

/// Parse one record; `None` for types this layer ignores and for text that
/// does not have the shape the kernel writes.
pub fn parse(msg_type: u16, text: &str) -> Option<Record> {
    let (header, body) = split_header(text)?;
    let f = fields(body);
    let get = |k: &str| f.iter().find(|(key, _)| key == k).map(|(_, v)| v.as_str());
    match msg_type {
        AUDIT_LANDLOCK_ACCESS => {
            let domain = u64::from_str_radix(get("domain")?, 16).ok()?;
            let blockers = get("blockers")?
                .split(',')
                .filter(|b| !b.is_empty())
                .map(str::to_string)
                .collect();
            let object = f
                .iter()
                .filter(|(k, _)| k != "domain" && k != "blockers")
                .cloned()
                .collect();
            Some(Record::Access {
                header,
                domain,
                blockers,
                object,
            })
        }
        AUDIT_LANDLOCK_DOMAIN => {
            let domain = u64::from_str_radix(get("domain")?, 16).ok()?;
            match get("status")? {
                "allocated" => Some(Record::DomainAllocated {
                    header,
                    domain,
                    creator_pid: get("pid")?.parse().ok()?,
                }),
                "deallocated" => Some(Record::DomainReleased {
                    header,
                    domain,
                    denials: get("denials")?.parse().ok()?,
                }),
                _ => None,
            }
        }
        AUDIT_SYSCALL => Some(Record::Syscall {
            header,
            pid: get("pid").and_then(|p| p.parse().ok()),
            comm: get("comm").map(str::to_string),
            exe: get("exe").map(str::to_string),
        }),
        AUDIT_EOE => Some(Record::EndOfEvent { header }),
        _ => None,
    }
}

/// Split `audit(SECS.MSEC:SERIAL): BODY` into the header and the body.
pub fn split_header(text: &str) -> Option<(Header, &str)> {
    let rest = text.strip_prefix("audit(")?;
    let close = rest.find(')')?;
    let (stamp, after) = rest.split_at(close);
    let body = after.strip_prefix("):")?;
    let body = body.strip_prefix(' ').unwrap_or(body);
    let (time, serial) = stamp.split_once(':')?;
    let (secs, millis) = time.split_once('.')?;
    let secs: u64 = secs.parse().ok()?;
    let millis: u64 = millis.parse().ok()?;
    if millis >= 1000 {
        return None;
    }
    let at = UNIX_EPOCH
        .checked_add(Duration::from_secs(secs))?
        .checked_add(Duration::from_millis(millis))?;
    Some((
        Header {
            at,
            serial: serial.parse().ok()?,
        },
        body,
    ))
}

/// The `key=value` fields of a record body, in order. A quoted value loses
/// its quotes; a bare value of an untrusted-string key that is hex is
/// decoded (bytes that are not UTF-8 become U+FFFD). Anything that is not
/// `key=value` is skipped.
pub fn fields(body: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = body.trim_end_matches(['\0', '\n']);
    loop {
        rest = rest.trim_start_matches(' ');
        if rest.is_empty() {
            return out;
        }
        // A key runs to '=' or to the next space (a word without '=').
        let key_end = rest.find([' ', '=']).unwrap_or(rest.len());
        let key = &rest[..key_end];
        rest = &rest[key_end..];
        let Some(after_eq) = rest.strip_prefix('=') else {
            continue;
        };
        let (value, quoted, next) = match after_eq.strip_prefix('"') {
            Some(q) => match q.find('"') {
                Some(end) => (&q[..end], true, &q[end + 1..]),
                // Unterminated quote: take the rest as the value.
                None => (q, true, ""),
            },
            None => {
                let end = after_eq.find(' ').unwrap_or(after_eq.len());
                (&after_eq[..end], false, &after_eq[end..])
            }
        };
        rest = next;
        if key.is_empty() {
            continue;
        }
        let value = if !quoted && UNTRUSTED_KEYS.contains(&key) {
            decode_hex(value).unwrap_or_else(|| value.to_string())
        } else {
            value.to_string()
        };
        out.push((key.to_string(), value));
    }
}

/// Bytes written as hex (`2F746D70` -> `/tmp`), or `None` if `s` is not an
/// even-length run of hex digits.
fn decode_hex(s: &str) -> Option<String> {
    if s.is_empty() || s.len() % 2 != 0 {
        return None;
    }
    let digit = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    let bytes = s
        .as_bytes()
        .chunks(2)
        .map(|pair| Some(digit(pair[0])? << 4 | digit(pair[1])?))
        .collect::<Option<Vec<u8>>>()?;
    Some(String::from_utf8_lossy(&bytes).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(secs: u64, millis: u64, serial: u64) -> Header {
        Header {
            at: UNIX_EPOCH + Duration::from_secs(secs) + Duration::from_millis(millis),
            serial,
        }
    }

    #[test]
    fn header_has_time_and_serial() {
        let (h, body) = split_header("audit(1700000123.045:9876): a=b").unwrap();
        assert_eq!(h, header(1_700_000_123, 45, 9876));
        assert_eq!(body, "a=b");
        // An end-of-event record has an empty body.
        let (h, body) = split_header("audit(5.999:1): ").unwrap();
        assert_eq!((h, body), (header(5, 999, 1), ""));
    }

    #[test]
    fn malformed_headers_are_refused() {
        for bad in [
            "",
            "audit(",
            "audit(1.2): x=y",
            "audit(1:2): x=y",
            "audit(a.1:2): x=y",
            "audit(1.1000:2): x=y",
            "audit(1.5:-2): x=y",
            "type=1423 audit(1.5:2): x=y",
            "audit(18446744073709551615.999:1): x",
        ] {
            assert_eq!(split_header(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn quoted_bare_and_hex_values() {
        // "/tmp/a b" has a space, so the kernel writes it as hex.
        let f = fields(
            "path=2F746D702F612062 dev=\"sda1\" ino=12 comm=\"sh\" exe=2F7573722F62696E2F6 C3A9 x=1",
        );
        assert_eq!(
            f,
            [
                ("path", "/tmp/a b"),
                ("dev", "sda1"),
                ("ino", "12"),
                ("comm", "sh"),
                // An odd-length bare value is not hex: kept as written.
                ("exe", "2F7573722F62696E2F6"),
                ("x", "1"),
            ]
            .map(|(k, v)| (k.to_string(), v.to_string()))
        );
        // Only untrusted-string keys are decoded: a hex-looking id stays.
        assert_eq!(fields("domain=1ABC")[0].1, "1ABC");
        // A decoded value with bytes that are not UTF-8 is lossy, not lost.
        assert_eq!(fields("name=41FF42")[0].1, "A\u{FFFD}B");
        // A quoted value is never hex-decoded.
        assert_eq!(fields("path=\"4142\"")[0].1, "4142");
    }

    #[test]
    fn odd_bodies_do_not_panic_and_keep_what_is_well_formed() {
        assert_eq!(fields(""), []);
        assert_eq!(fields("   "), []);
        assert_eq!(fields("word other=1"), [("other".into(), "1".into())]);
        assert_eq!(fields("=x a=1"), [("a".into(), "1".into())]);
        assert_eq!(
            fields("a=\"unterminated b=2"),
            [("a".into(), "unterminated b=2".into())]
        );
        assert_eq!(
            fields("a= b=2"),
            [("a".into(), "".into()), ("b".into(), "2".into())]
        );
        assert_eq!(fields("k=v\0\0"), [("k".into(), "v".into())]);
        assert_eq!(fields("é=ü ß"), [("é".into(), "ü".into())]);
    }

    #[test]
    fn a_filesystem_denial() {
        let r = parse(
            AUDIT_LANDLOCK_ACCESS,
            "audit(1700000000.010:77): domain=2f0c3a11b blockers=fs.read_file path=\"/etc/shadow\" dev=\"vda\" ino=737",
        )
        .unwrap();
        assert_eq!(
            r,
            Record::Access {
                header: header(1_700_000_000, 10, 77),
                domain: 0x2f0c3a11b,
                blockers: vec!["fs.read_file".into()],
                object: vec![
                    ("path".into(), "/etc/shadow".into()),
                    ("dev".into(), "vda".into()),
                    ("ino".into(), "737".into()),
                ],
            }
        );
    }

    #[test]
    fn several_blockers_and_a_hex_path() {
        // mkdir "/srv/new dir" denied for make_dir and refer.
        let r = parse(
            AUDIT_LANDLOCK_ACCESS,
            "audit(1.000:2): domain=10 blockers=fs.make_dir,fs.refer path=2F7372762F6E657720646972 dev=\"nvme0n1p2\" ino=4",
        )
        .unwrap();
        let Record::Access {
            blockers, object, ..
        } = r
        else {
            panic!("not an access record: {r:?}");
        };
        assert_eq!(blockers, ["fs.make_dir", "fs.refer"]);
        assert_eq!(object[0], ("path".into(), "/srv/new dir".into()));
    }

    #[test]
    fn network_and_scope_denials_keep_their_object_fields() {
        let r = parse(
            AUDIT_LANDLOCK_ACCESS,
            "audit(1.000:3): domain=ab blockers=net.connect_tcp daddr=10.0.0.9 dest=443",
        )
        .unwrap();
        let Record::Access {
            blockers, object, ..
        } = r
        else {
            panic!("not an access record");
        };
        assert_eq!(blockers, ["net.connect_tcp"]);
        assert_eq!(
            object,
            [("daddr", "10.0.0.9"), ("dest", "443")].map(|(k, v)| (k.into(), v.into()))
        );
        let r = parse(
            AUDIT_LANDLOCK_ACCESS,
            "audit(1.000:4): domain=ab blockers=scope.signal opid=1 ocomm=\"init\"",
        )
        .unwrap();
        let Record::Access { object, .. } = r else {
            panic!("not an access record");
        };
        assert_eq!(object[1], ("ocomm".into(), "init".into()));
    }

    #[test]
    fn domain_records() {
        assert_eq!(
            parse(
                AUDIT_LANDLOCK_DOMAIN,
                "audit(9.500:10): domain=2f0c3a11b status=allocated mode=enforcing pid=4242 uid=0 exe=\"/opt/x/stockade-init\" comm=\"stockade-init\"",
            ),
            Some(Record::DomainAllocated {
                header: header(9, 500, 10),
                domain: 0x2f0c3a11b,
                creator_pid: 4242,
            })
        );
        assert_eq!(
            parse(
                AUDIT_LANDLOCK_DOMAIN,
                "audit(9.600:11): domain=2f0c3a11b status=deallocated denials=3",
            ),
            Some(Record::DomainReleased {
                header: header(9, 600, 11),
                domain: 0x2f0c3a11b,
                denials: 3,
            })
        );
        // Missing or malformed required fields: ignored, not guessed.
        for bad in [
            "audit(1.0:1): domain=zz status=allocated pid=1",
            "audit(1.0:1): domain=1 status=allocated pid=-1",
            "audit(1.0:1): domain=1 status=allocated",
            "audit(1.0:1): domain=1 status=other pid=1",
            "audit(1.0:1): status=deallocated denials=1",
        ] {
            assert_eq!(parse(AUDIT_LANDLOCK_DOMAIN, bad), None, "{bad}");
        }
        assert_eq!(
            parse(AUDIT_LANDLOCK_ACCESS, "audit(1.0:1): blockers=fs.execute"),
            None
        );
    }

    #[test]
    fn syscall_and_end_of_event() {
        let r = parse(
            AUDIT_SYSCALL,
            "audit(1.000:5): arch=c000003e syscall=257 success=no exit=-13 ppid=10 pid=11 auid=4294967295 uid=0 comm=\"cat\" exe=\"/usr/bin/cat\" key=(null)",
        );
        assert_eq!(
            r,
            Some(Record::Syscall {
                header: header(1, 0, 5),
                pid: Some(11),
                comm: Some("cat".into()),
                exe: Some("/usr/bin/cat".into()),
            })
        );
        assert_eq!(
            parse(AUDIT_EOE, "audit(1.000:5): "),
            Some(Record::EndOfEvent {
                header: header(1, 0, 5)
            })
        );
        // Other types are not this layer's business.
        assert_eq!(parse(1327, "audit(1.000:5): proctitle=6361740"), None);
    }
}
