//! Arbitrary bytes through the UBX frame scanner and every message decoder
//! (CFG-VALSET's too): no panic, every frame found re-encodes to the bytes it
//! came from, and every VALSET that decodes re-encodes to its payload.
#![no_main]

use libfuzzer_sys::fuzz_target;
use skytime_gnss::ubx::{self, messages, valset};

fuzz_target!(|data: &[u8]| {
    for frame in ubx::frames(data) {
        let _ = messages::decode(&frame);
        let again = ubx::encode(frame.class, frame.id, frame.payload);
        let (parsed, used) = ubx::Frame::parse(&again).expect("a re-encoded frame parses");
        assert_eq!(parsed, frame);
        assert_eq!(used, again.len());
        if let Ok(v) = valset::decode_valset(frame.payload) {
            let built = valset::encode_valset(v.layers, v.transaction, &v.items);
            let (f, _) = ubx::Frame::parse(&built).expect("a built VALSET parses");
            assert_eq!(valset::decode_valset(f.payload), Ok(v));
        }
    }
    let _ = valset::decode_valset(data);
    let _ = ubx::Frame::parse(data);
});
