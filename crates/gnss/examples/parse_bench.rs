//! Parse throughput, printed: `cargo run --release -p skytime-gnss --example parse_bench`.
//!
//! Replays every capture of the gpsd corpus (comments stripped) through the
//! sans-IO assembler for about two seconds, then random bytes (a wrong baud
//! rate) for one, and prints sentences/s and MB/s.

use chrono::NaiveDate;
use skytime_gnss::{EpochAssembler, ParserConfig};
use skytime_timebase::Arrival;
use std::path::Path;
use std::time::{Duration, Instant};

fn main() -> std::io::Result<()> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus/nmea-gpsd");
    let mut stream = Vec::new();
    let mut entries: Vec<_> = std::fs::read_dir(&dir)?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .collect();
    entries.sort();
    for p in entries
        .iter()
        .filter(|p| p.extension().is_some_and(|x| x == "log"))
    {
        let text = std::fs::read(p)?;
        for line in text.split_inclusive(|&b| b == b'\n') {
            if !line.starts_with(b"#") {
                stream.extend_from_slice(line);
            }
        }
    }
    let pivot = NaiveDate::from_ymd_opt(2000, 1, 1).unwrap_or(NaiveDate::MIN);
    let config = ParserConfig::default();

    // Corpus: realistic sentence mix, fed in 64-byte chunks like a serial read.
    let (passes, elapsed, sentences, epochs) = measure(Duration::from_secs(2), || {
        let mut asm = EpochAssembler::with_pivot(&config, pivot);
        let mut out = Vec::new();
        for chunk in stream.chunks(64) {
            asm.push(chunk, Arrival::default(), &mut out);
        }
        asm.finish(&mut out);
        (asm.stats().sentences, out.len() as u64)
    });
    let secs = elapsed.as_secs_f64();
    println!(
        "corpus: {} bytes x {passes} passes in {secs:.2} s: {:.0} sentences/s, {:.1} MB/s, {:.0} epochs/s",
        stream.len(),
        sentences as f64 / secs,
        (stream.len() as u64 * passes) as f64 / secs / 1e6,
        epochs as f64 / secs,
    );

    // Garbage: what a wrong baud rate delivers.
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let noise: Vec<u8> = (0..1 << 20)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 56) as u8
        })
        .collect();
    let (passes, elapsed, _, valid) = measure(Duration::from_secs(1), || {
        let mut asm = EpochAssembler::with_pivot(&config, pivot);
        let mut out = Vec::new();
        for chunk in noise.chunks(64) {
            asm.push(chunk, Arrival::default(), &mut out);
        }
        asm.finish(&mut out);
        (0, out.iter().filter(|e| e.valid).count() as u64)
    });
    println!(
        "garbage: {:.1} MB/s, valid epochs from {} MiB of noise: {valid}",
        (noise.len() as u64 * passes) as f64 / elapsed.as_secs_f64() / 1e6,
        passes
    );
    Ok(())
}

/// Repeats `f` for at least `budget`; returns (passes, elapsed, summed counters).
fn measure(budget: Duration, mut f: impl FnMut() -> (u64, u64)) -> (u64, Duration, u64, u64) {
    let start = Instant::now();
    let (mut passes, mut a, mut b) = (0u64, 0u64, 0u64);
    while passes == 0 || start.elapsed() < budget {
        let (x, y) = f();
        a += x;
        b += y;
        passes += 1;
    }
    (passes, start.elapsed(), a, b)
}
