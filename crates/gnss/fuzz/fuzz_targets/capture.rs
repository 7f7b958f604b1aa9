//! Arbitrary capture files (comments, `# Date:` headers, data) through the
//! `nmea decode` path.
#![no_main]

use libfuzzer_sys::fuzz_target;
use skytime_gnss::capture::{CaptureOptions, decode_reader};

fuzz_target!(|data: &[u8]| {
    let mut n = 0usize;
    let _ = decode_reader(data, &CaptureOptions::default(), |_| {
        n += 1;
        Ok(())
    });
    assert!(n <= data.len() / 16 + 1);
});
