//! One UDP payload as it reaches port 138: the codec must never panic, and
//! whatever it accepts must re-emit and parse back to the same value; the
//! bridge's receive decision, which runs on every datagram, must not panic
//! either.
#![no_main]

use std::net::SocketAddrV4;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use mailslotfs::bridge::{Bridge, Config};
use mailslotfs::wire::MailslotDatagram;

/// A bridge whose names match the golden datagrams (MSLDOM, MSLPDC), so
/// mutated captures get past the "not for us" check into path handling.
fn bridge() -> &'static Bridge {
    static BRIDGE: OnceLock<Bridge> = OnceLock::new();
    BRIDGE.get_or_init(|| {
        Bridge::new(Config {
            computer: "MSLPDC".into(),
            domain: "MSLDOM".into(),
            address: "10.99.0.9:138".parse().unwrap(),
            group: "10.99.0.255:138".parse().unwrap(),
            peers: Vec::new(),
            allow: Vec::new(),
            keep_empty: false,
            first_dgm_id: 1,
        })
        .unwrap()
    })
}

fuzz_target!(|payload: &[u8]| {
    if let Ok(parsed) = MailslotDatagram::parse(payload) {
        let emitted = parsed.emit().expect("a parsed datagram re-emits");
        assert_eq!(emitted.len(), parsed.buffer_len());
        assert_eq!(MailslotDatagram::parse(&emitted).as_ref(), Ok(&parsed));
    }
    // Sent from the address the header claims (SOURCE_IP at bytes 4..8),
    // so the spoofing check lets the datagram through to the deeper checks.
    let claimed = payload.get(4..8).and_then(|b| <[u8; 4]>::try_from(b).ok());
    let from = SocketAddrV4::new(claimed.unwrap_or([10, 99, 0, 1]).into(), 138);
    let _ = bridge().on_datagram(from, payload);
});
