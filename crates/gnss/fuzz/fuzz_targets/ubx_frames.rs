//! Arbitrary bytes through the UBX frame scanner and every message decoder:
//! no panic, and every frame found re-encodes to the bytes it came from.
#![no_main]

use libfuzzer_sys::fuzz_target;
use skytime_gnss::ubx::{self, messages};

fuzz_target!(|data: &[u8]| {
    for frame in ubx::frames(data) {
        let _ = messages::decode(&frame);
        let again = ubx::encode(frame.class, frame.id, frame.payload);
        let (parsed, used) = ubx::Frame::parse(&again).expect("a re-encoded frame parses");
        assert_eq!(parsed, frame);
        assert_eq!(used, again.len());
    }
    let _ = ubx::Frame::parse(data);
});
