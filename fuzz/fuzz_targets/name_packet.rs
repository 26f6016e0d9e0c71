//! One UDP payload as it reaches port 137: the name-service codec must
//! never panic, and whatever it accepts must re-emit and parse back equal;
//! the name service, which sees every packet, must not panic either, and
//! everything it sends in answer must be a well-formed packet.
#![no_main]

use std::net::SocketAddrV4;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use mailslotfs::bridge::names::{NameConfig, NameService};
use mailslotfs::wire::NamePacket;

/// A service holding MSLPDC<00>, <03> and MSLDOM<00> (the golden packets'
/// names), so mutated captures reach the answers and defences.
fn service() -> &'static Mutex<(NameService<()>, Instant)> {
    static SERVICE: OnceLock<Mutex<(NameService<()>, Instant)>> = OnceLock::new();
    SERVICE.get_or_init(|| {
        let config = NameConfig {
            computer: "MSLPDC".into(),
            domain: "MSLDOM".into(),
            address: "10.99.0.9".parse().unwrap(),
            port: 137,
            broadcast: "10.99.0.255:137".parse().unwrap(),
            wins: Some("10.99.0.1:137".parse().unwrap()),
            allow: Vec::new(),
            first_transaction_id: 1,
        };
        let start = Instant::now();
        let mut service = NameService::new(config, start).unwrap();
        let mut now = start;
        for _ in 0..8 {
            service.poll(now);
            now += Duration::from_millis(250);
        }
        service.drain_transmits();
        Mutex::new((service, now))
    })
}

fuzz_target!(|payload: &[u8]| {
    if let Ok(parsed) = NamePacket::parse(payload) {
        let emitted = parsed.emit().expect("a parsed packet re-emits");
        assert_eq!(NamePacket::parse(&emitted).as_ref(), Ok(&parsed));
    }
    let mut guard = service().lock().unwrap();
    let (service, now) = &mut *guard;
    // From the WINS server when the first byte is odd, else a neighbour.
    let from: SocketAddrV4 = match payload.first() {
        Some(b) if b % 2 == 1 => "10.99.0.1:137",
        _ => "10.99.0.2:137",
    }
    .parse()
    .unwrap();
    *now += Duration::from_millis(10);
    service.on_packet(*now, from, payload);
    service.poll(*now);
    for transmit in service.drain_transmits() {
        assert!(NamePacket::parse(&transmit.payload).is_ok());
    }
    service.drain_events();
});
