//! Arbitrary 16-byte payloads through the TIM-TP decoder and back: the decoder
//! takes every payload of the right length, and encoding what it read gives the
//! same payload (every bit has a meaning or a place).
#![no_main]

use libfuzzer_sys::fuzz_target;
use skytime_gnss::ubx::messages::{decode_tim_tp, encode_tim_tp};

fuzz_target!(|data: &[u8]| {
    let Some(report) = decode_tim_tp(data) else {
        assert_ne!(data.len(), 16, "a 16-byte payload always decodes");
        return;
    };
    let frame = encode_tim_tp(&report);
    let mut expected = data.to_vec();
    expected[14] &= 0b0001_1111; // flags bits 5..7 are reserved and not kept
    assert_eq!(&frame[6..22], expected.as_slice());
    let _ = report.tow_ns();
});
