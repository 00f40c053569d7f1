//! Fuzz target: arbitrary bytes as a client's SOCKS5 handshake.
//!
//! The bytes arrive through an in-memory stream that then closes, so every
//! input ends in a result. Checked beyond "no panic, no hang": an accepted
//! request has a non-zero port and a usable domain name, and a failure's
//! reply code is a defined SOCKS5 code.
#![no_main]

use std::sync::OnceLock;
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use stockade::proxy::socks5::{handshake, Host};
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
        // Room for the input and for the handshake's own replies.
        let (mut client, mut server) = tokio::io::duplex(data.len() + 64);
        client.write_all(data).await.expect("duplex write");
        client.shutdown().await.expect("duplex shutdown");
        match handshake(&mut server, Duration::from_secs(10)).await {
            Ok(request) => {
                assert_ne!(request.port, 0);
                if let Host::Domain(name) = &request.host {
                    assert!(!name.is_empty() && name.len() <= 255);
                    assert!(!name.bytes().any(|b| b.is_ascii_control()));
                }
            }
            Err(e) => {
                if let Some(code) = e.reply_code() {
                    assert!((0x01..=0x08).contains(&code));
                }
            }
        }
    });
});
