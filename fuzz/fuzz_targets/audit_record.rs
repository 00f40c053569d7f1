//! The audit record parser and the netlink message walker on arbitrary
//! bytes (`cargo +nightly fuzz run audit_record`): no panics; only an
//! access record type yields an access record, with non-empty blockers.
#![no_main]

use libfuzzer_sys::fuzz_target;
use stockade::audit::netlink::{messages, record_text};
use stockade::audit::record::{parse, Record, AUDIT_LANDLOCK_ACCESS};

fuzz_target!(|data: &[u8]| {
    // The whole input as one datagram of netlink messages.
    for (t, payload) in messages(data) {
        let _ = parse(t, &record_text(payload));
    }
    // The whole input as the text of each record type this layer reads.
    let text = record_text(data);
    for t in [1300, 1320, 1423, 1424] {
        if let Some(Record::Access { blockers, .. }) = parse(t, &text) {
            assert_eq!(t, AUDIT_LANDLOCK_ACCESS);
            assert!(blockers.iter().all(|b| !b.is_empty() && !b.contains(',')));
        }
    }
});
