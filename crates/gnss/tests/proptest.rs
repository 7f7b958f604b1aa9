//! Property tests: no input panics the parser or grows its output without
//! bound, and garbage mixed into a stream never invents a time.

use chrono::NaiveDate;
use proptest::prelude::*;
use skytime_gnss::capture::{CaptureDecoder, CaptureOptions, iso_millis};
use skytime_gnss::{EpochAssembler, ParserConfig};
use skytime_timebase::{Arrival, MonoNanos};
use std::collections::BTreeSet;

fn nmea(body: &str) -> String {
    let sum = body.bytes().fold(0u8, |c, b| c ^ b);
    format!("${body}*{sum:02X}\r\n")
}

fn assembler() -> EpochAssembler {
    let pivot = NaiveDate::from_ymd_opt(2000, 1, 1).unwrap_or(NaiveDate::MIN);
    EpochAssembler::with_pivot(&ParserConfig::default(), pivot)
}

/// Bytes biased towards NMEA's alphabet and the binary sync bytes, so the
/// fuzzing reaches deep states rather than only "garbage".
fn nmea_ish_byte() -> impl Strategy<Value = u8> {
    prop_oneof![
        4 => any::<u8>(),
        4 => prop::sample::select(b"$*,.0123456789ABCDEFGPRMCZDAVNSWE\r\n".to_vec()),
        1 => prop::sample::select(vec![0xB5u8, 0x62, 0xA0, 0xA2, 0xB0, 0xB3, 0x01, 0x26, 0x18]),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_chunks_never_panic_and_output_is_bounded(
        chunks in prop::collection::vec(prop::collection::vec(nmea_ish_byte(), 0..400), 0..20),
        idle_every in 1usize..5,
    ) {
        let mut asm = assembler();
        let mut out = Vec::new();
        let mut total = 0usize;
        for (i, c) in chunks.iter().enumerate() {
            total += c.len();
            let t = Arrival { monotonic: MonoNanos(i64::try_from(i).unwrap() * 30_000_000), ..Arrival::default() };
            asm.push(c, t, &mut out);
            if i % idle_every == 0 {
                asm.flush_idle(t, &mut out);
            }
        }
        asm.finish(&mut out);
        // Every epoch needs at least one sentence of at least "$GPZDA,hhmmss*hh".
        prop_assert!(out.len() <= total / 16 + 1);
        prop_assert_eq!(asm.stats().bytes, u64::try_from(total).unwrap());
        for e in &out {
            prop_assert!(e.sentences.len() <= 64);
            prop_assert!(e.satellites.len() <= 256);
        }
    }

    #[test]
    fn capture_decoder_never_panics(bytes in prop::collection::vec(nmea_ish_byte(), 0..2000)) {
        let mut d = CaptureDecoder::new(&CaptureOptions::default());
        let mut out = Vec::new();
        for chunk in bytes.chunks(7) {
            d.push(chunk, &mut out);
        }
        d.finish(&mut out);
        prop_assert!(out.len() <= bytes.len() / 16 + 1);
    }

    /// Good sentences with garbage spliced between (and into) them: every valid
    /// epoch must carry a time that one of the good sentences really sent.
    #[test]
    fn garbage_never_invents_a_valid_time(
        secs in prop::collection::vec(0u32..86_400, 1..12),
        noise in prop::collection::vec(prop::collection::vec(nmea_ish_byte(), 0..40), 12),
        cut in prop::collection::vec(any::<bool>(), 12),
    ) {
        let mut stream = Vec::new();
        let mut sent = BTreeSet::new();
        for (i, s) in secs.iter().enumerate() {
            let hms = format!("{:02}{:02}{:02}", s / 3600, s / 60 % 60, s % 60);
            let sentence = nmea(&format!(
                "GPRMC,{hms},A,4404.1306,N,12118.8515,W,0.03,225.97,130415,,,A"
            ));
            if cut[i] {
                // A sentence truncated by the noise that follows it.
                stream.extend_from_slice(&sentence.as_bytes()[..sentence.len() / 2]);
            } else {
                stream.extend_from_slice(sentence.as_bytes());
                sent.insert(format!("2015-04-13T{}:{}:{}.000Z", &hms[0..2], &hms[2..4], &hms[4..6]));
            }
            stream.extend_from_slice(&noise[i]);
        }
        let mut asm = assembler();
        let mut out = Vec::new();
        asm.push(&stream, Arrival::default(), &mut out);
        asm.finish(&mut out);
        for e in out.iter().filter(|e| e.valid) {
            // Carried dates may move a label to the next day after a backwards
            // step in time of day; the time of day itself must have been sent.
            let t = iso_millis(e);
            prop_assert!(
                sent.iter().any(|s| s[10..] == t[10..]),
                "valid epoch {} was never sent (sent {:?})", t, sent
            );
        }
    }
}

/// One piece of what a receiver sends back while being configured.
fn reply_piece() -> impl Strategy<Value = Vec<u8>> {
    use skytime_gnss::pmtk;
    use skytime_gnss::ubx::messages;
    prop_oneof![
        (any::<bool>(), any::<u8>()).prop_map(|(ok, id)| messages::encode_ack(ok, 0x06, id)),
        (0u16..1000, 0u8..4)
            .prop_map(|(cmd, flag)| pmtk::sentence(&format!("PMTK001,{cmd},{flag}"))),
        Just(pmtk::sentence(
            "PMTK705,AXN_3.8_3333_16042118,0000,V3.8.1 GP+GL,"
        )),
        Just(nmea("GPRMC,120000,A,4404.1306,N,12118.8515,W,0.03,225.97,130415,,,A").into_bytes()),
        prop::collection::vec(nmea_ish_byte(), 0..40),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Replies are found the same however the reads cut the stream: a frame or
    /// sentence split between two reads is never lost or doubled.
    #[test]
    fn replies_do_not_depend_on_where_reads_cut(
        pieces in prop::collection::vec(reply_piece(), 0..30),
        cuts in prop::collection::vec(1usize..64, 1..40),
    ) {
        use skytime_gnss::configure::ReplyReader;
        // Garbage may end in a half sentence that swallows the next piece in
        // both readings alike; only the split must not matter.
        let stream: Vec<u8> = pieces.concat();
        let whole = ReplyReader::default().push(&stream);
        let mut reader = ReplyReader::default();
        let mut split = Vec::new();
        let mut at = 0;
        for cut in cuts.iter().cycle() {
            if at >= stream.len() {
                break;
            }
            let end = (at + cut).min(stream.len());
            split.extend(reader.push(&stream[at..end]));
            at = end;
        }
        prop_assert_eq!(split, whole);
    }
}
