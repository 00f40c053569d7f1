//! Fuzz target: arbitrary bytes as a client's request to the HTTP proxy.
//!
//! The bytes arrive through an in-memory stream that then closes, so every
//! input ends in a result. Checked beyond "no panic, no hang": an accepted
//! forward request's rewritten head is one well-formed HTTP/1.x head (no
//! header injected through the client's bytes), and accepted targets have a
//! host and a non-zero port.
#![no_main]

use std::sync::OnceLock;
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use stockade::proxy::http::{read_request, Limits, RequestKind};
use tokio::io::AsyncWriteExt;
use tokio::runtime::Runtime;

fn runtime() -> &'static Runtime {
    static RUNTIME: OnceLock<Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .expect("current-thread runtime")
    })
}

fuzz_target!(|data: &[u8]| {
    runtime().block_on(async {
        let (mut client, mut server) = tokio::io::duplex(data.len().max(1));
        client.write_all(data).await.expect("duplex write");
        client.shutdown().await.expect("duplex shutdown");
        let limits = Limits {
            head_timeout: Duration::from_secs(10),
            ..Limits::default()
        };
        let Ok(request) = read_request(&mut server, &limits).await else {
            return;
        };

        assert!(!request.host().is_empty());
        assert_ne!(request.port(), 0);
        assert!(request.leftover.len() < data.len());
        if let RequestKind::Forward { head, .. } = &request.kind {
            assert!(head.ends_with(b"\r\n\r\n"));
            let blank_lines = head.windows(4).filter(|w| *w == b"\r\n\r\n").count();
            assert_eq!(blank_lines, 1, "one head, ending at its only blank line");
            let mut headers = [httparse::EMPTY_HEADER; 128];
            let mut reparsed = httparse::Request::new(&mut headers);
            assert_eq!(
                reparsed.parse(head),
                Ok(httparse::Status::Complete(head.len())),
                "the rewritten head is valid HTTP"
            );
            assert!(reparsed.path.is_some_and(|path| path.starts_with('/')));
        }
    });
});
