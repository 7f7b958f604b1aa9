//! Feeds arbitrary bytes, split into chunks at fuzzer-chosen points and with
//! idle gaps between them, through the sans-IO assembler.
#![no_main]

use libfuzzer_sys::fuzz_target;
use skytime_gnss::{EpochAssembler, ParserConfig};
use skytime_timebase::{Arrival, MonoNanos};

fuzz_target!(|data: &[u8]| {
    let Some((&split, rest)) = data.split_first() else {
        return;
    };
    let pivot = chrono::NaiveDate::from_ymd_opt(2000, 1, 1).unwrap_or(chrono::NaiveDate::MIN);
    let config = ParserConfig { allow_missing_checksum: split & 1 == 1, ..ParserConfig::default() };
    let mut asm = EpochAssembler::with_pivot(&config, pivot);
    let mut out = Vec::new();
    let chunk = usize::from(split >> 1).max(1);
    for (i, c) in rest.chunks(chunk).enumerate() {
        let t = Arrival { monotonic: MonoNanos(i as i64 * 40_000_000), ..Arrival::default() };
        asm.push(c, t, &mut out);
        asm.flush_idle(t, &mut out);
    }
    asm.finish(&mut out);
    assert!(out.len() <= rest.len() / 16 + 1);
});
