//! One UDP payload as it reaches port 137: the name-service codec must
//! never panic, and whatever it accepts must re-emit and parse back equal.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mailslotfs::wire::NamePacket;

fuzz_target!(|payload: &[u8]| {
    if let Ok(parsed) = NamePacket::parse(payload) {
        let emitted = parsed.emit().expect("a parsed packet re-emits");
        assert_eq!(NamePacket::parse(&emitted).as_ref(), Ok(&parsed));
    }
});
