//! One request as the kernel hands it over on `/dev/fuse` or a ring entry:
//! the decoder must never panic or read past the buffer, whatever the
//! length fields claim.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mailslotfs::kernel::request::{Operation, decode};

fuzz_target!(|data: &[u8]| {
    if let Ok(request) = decode(data) {
        // Every name and payload it hands out lies inside the buffer.
        let _ = format!("{request:?}");
        if let Operation::Forget(nodes) = request.op {
            nodes.iter().for_each(drop);
        }
    }
});
