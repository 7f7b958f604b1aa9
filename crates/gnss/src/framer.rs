//! Byte-level framing: splits a raw serial stream into NMEA lines and binary
//! (UBX, SiRF) frames, resynchronising after garbage, truncation and overlong lines.
//!
//! Memory is bounded: a line is cut at [`MAX_SENTENCE_BYTES`] and a binary frame at
//! [`MAX_BINARY_PAYLOAD`]; everything else is counted and dropped.

use crate::stats::ParserStats;
use skytime_timebase::Arrival;

/// Longest NMEA line kept. NMEA says 82 bytes; real receivers reach ~100 (Skytraq
/// PSTI), so twice that leaves room while bounding memory.
pub const MAX_SENTENCE_BYTES: usize = 200;

/// Largest binary payload accepted before a sync is taken as a false alarm.
/// UBX-NAV-SAT for 100+ satellites is about 1.2 KiB.
pub const MAX_BINARY_PAYLOAD: usize = 2048;

const UBX_SYNC: [u8; 2] = [0xB5, 0x62];
const SIRF_SYNC: [u8; 2] = [0xA0, 0xA2];
const SIRF_END: [u8; 2] = [0xB0, 0xB3];

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
enum State {
    /// Between frames: looking for `$` or a binary sync.
    Hunt,
    /// Saw 0xB5, the first UBX sync byte.
    UbxSync,
    /// Saw 0xA0, the first SiRF sync byte.
    SirfSync,
    /// Inside an NMEA sentence (bytes after `$`).
    Sentence,
    /// Inside a sentence that grew past the limit: skipping to its end.
    Overlong,
    /// Inside a UBX frame.
    Ubx,
    /// Inside a SiRF binary frame.
    Sirf,
}

/// What one byte completed.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(crate) enum Framed {
    Nothing,
    /// [`Framer::line`] holds a sentence (without `$` and line end).
    Sentence,
    /// [`Framer::binary`] holds a whole, checksum-verified UBX frame.
    Ubx,
    /// [`Framer::binary`] holds a whole, checksum-verified SiRF frame.
    Sirf,
}

/// The framing state machine. Bytes of a binary frame that turns out to be
/// false (bad length or checksum) are replayed, so an NMEA sentence that
/// followed a stray sync byte is not lost.
#[derive(Debug)]
pub(crate) struct Framer {
    state: State,
    /// Current sentence, after the `$`.
    pub line: Vec<u8>,
    /// Current binary frame, sync bytes included.
    pub binary: Vec<u8>,
    /// Arrival of the chunk holding the current sentence's `$` or frame's sync.
    pub frame_start: Arrival,
    /// Bytes to process again, in reverse order (a stack).
    pub replay: Vec<u8>,
}

impl Framer {
    pub fn new() -> Self {
        Self {
            state: State::Hunt,
            line: Vec::with_capacity(MAX_SENTENCE_BYTES),
            binary: Vec::new(),
            frame_start: Arrival::default(),
            replay: Vec::new(),
        }
    }

    /// Forgets any partial frame (the device was reopened or changed speed).
    pub fn reset(&mut self) {
        self.state = State::Hunt;
        self.line.clear();
        self.binary.clear();
        self.replay.clear();
    }

    /// True while a sentence has started but not ended.
    pub fn in_sentence(&self) -> bool {
        self.state == State::Sentence
    }

    /// Consumes one byte.
    #[inline]
    pub fn push(&mut self, b: u8, arrival: Arrival, stats: &mut ParserStats) -> Framed {
        match self.state {
            State::Hunt => self.hunt(b, arrival, stats),
            State::UbxSync => {
                if b == UBX_SYNC[1] {
                    self.state = State::Ubx;
                    self.binary.clear();
                    self.binary.extend_from_slice(&UBX_SYNC);
                } else {
                    stats.garbage_bytes += 1;
                    self.state = State::Hunt;
                    return self.hunt(b, arrival, stats);
                }
                Framed::Nothing
            }
            State::SirfSync => {
                if b == SIRF_SYNC[1] {
                    self.state = State::Sirf;
                    self.binary.clear();
                    self.binary.extend_from_slice(&SIRF_SYNC);
                } else {
                    stats.garbage_bytes += 1;
                    self.state = State::Hunt;
                    return self.hunt(b, arrival, stats);
                }
                Framed::Nothing
            }
            State::Sentence => match b {
                b'\r' | b'\n' => {
                    self.state = State::Hunt;
                    Framed::Sentence
                }
                b'$' => {
                    // `$$GPRMC` is one sentence; anything else means the previous
                    // line was cut off without its end.
                    if !self.line.is_empty() {
                        stats.truncated_lines += 1;
                        self.line.clear();
                    }
                    self.frame_start = arrival;
                    Framed::Nothing
                }
                0x20..=0x7e => {
                    if self.line.len() >= MAX_SENTENCE_BYTES {
                        stats.overlong_lines += 1;
                        stats.garbage_bytes += self.line.len() as u64 + 2;
                        self.line.clear();
                        self.state = State::Overlong;
                    } else {
                        self.line.push(b);
                    }
                    Framed::Nothing
                }
                _ => {
                    // Binary inside a sentence: it was truncated (or the baud is wrong).
                    stats.truncated_lines += 1;
                    stats.garbage_bytes += self.line.len() as u64 + 1;
                    self.line.clear();
                    self.state = State::Hunt;
                    self.hunt(b, arrival, stats)
                }
            },
            State::Overlong => match b {
                b'\r' | b'\n' => {
                    self.state = State::Hunt;
                    Framed::Nothing
                }
                b'$' => self.hunt(b, arrival, stats),
                0x20..=0x7e => {
                    stats.garbage_bytes += 1;
                    Framed::Nothing
                }
                _ => {
                    self.state = State::Hunt;
                    self.hunt(b, arrival, stats)
                }
            },
            State::Ubx => self.ubx(b, stats),
            State::Sirf => self.sirf(b, stats),
        }
    }

    #[inline]
    fn hunt(&mut self, b: u8, arrival: Arrival, stats: &mut ParserStats) -> Framed {
        match b {
            b'$' => {
                self.state = State::Sentence;
                self.line.clear();
                self.frame_start = arrival;
            }
            b'\r' | b'\n' => {}
            0xB5 => {
                self.state = State::UbxSync;
                self.frame_start = arrival;
            }
            0xA0 => {
                self.state = State::SirfSync;
                self.frame_start = arrival;
            }
            _ => stats.garbage_bytes += 1,
        }
        Framed::Nothing
    }

    fn ubx(&mut self, b: u8, stats: &mut ParserStats) -> Framed {
        self.binary.push(b);
        let n = self.binary.len();
        if n < 6 {
            return Framed::Nothing;
        }
        let len = usize::from(u16::from_le_bytes([self.binary[4], self.binary[5]]));
        if len > MAX_BINARY_PAYLOAD {
            return self.false_frame(stats);
        }
        if n < 6 + len + 2 {
            return Framed::Nothing;
        }
        let (ck_a, ck_b) = ubx_checksum(&self.binary[2..6 + len]);
        if self.binary[6 + len] == ck_a && self.binary[7 + len] == ck_b {
            self.state = State::Hunt;
            stats.ubx_frames += 1;
            Framed::Ubx
        } else {
            self.false_frame(stats)
        }
    }

    fn sirf(&mut self, b: u8, stats: &mut ParserStats) -> Framed {
        self.binary.push(b);
        let n = self.binary.len();
        if n < 4 {
            return Framed::Nothing;
        }
        let len = usize::from(u16::from_be_bytes([self.binary[2], self.binary[3]]) & 0x7fff);
        if len > MAX_BINARY_PAYLOAD {
            return self.false_frame(stats);
        }
        if n < 4 + len + 4 {
            return Framed::Nothing;
        }
        let payload = &self.binary[4..4 + len];
        let sum = payload
            .iter()
            .fold(0u16, |s, &x| s.wrapping_add(u16::from(x)))
            & 0x7fff;
        let got = u16::from_be_bytes([self.binary[4 + len], self.binary[5 + len]]);
        if got == sum && self.binary[6 + len..8 + len] == SIRF_END {
            self.state = State::Hunt;
            stats.sirf_frames += 1;
            Framed::Sirf
        } else {
            self.false_frame(stats)
        }
    }

    /// A sync that led nowhere: count its first byte as garbage and replay the rest.
    fn false_frame(&mut self, stats: &mut ParserStats) -> Framed {
        stats.binary_errors += 1;
        stats.garbage_bytes += 1;
        self.replay.extend(self.binary[1..].iter().rev());
        self.binary.clear();
        self.state = State::Hunt;
        Framed::Nothing
    }
}

/// The 8-bit Fletcher checksum UBX frames carry over class, id, length and payload.
pub fn ubx_checksum(bytes: &[u8]) -> (u8, u8) {
    bytes.iter().fold((0u8, 0u8), |(a, b), &x| {
        let a = a.wrapping_add(x);
        (a, b.wrapping_add(a))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame_all(bytes: &[u8]) -> (Vec<(Framed, Vec<u8>)>, ParserStats) {
        let mut f = Framer::new();
        let mut st = ParserStats::default();
        let mut out = Vec::new();
        let mut step =
            |f: &mut Framer, b: u8, st: &mut ParserStats| match f.push(b, Arrival::default(), st) {
                Framed::Nothing => {}
                Framed::Sentence => out.push((Framed::Sentence, f.line.clone())),
                k => out.push((k, f.binary.clone())),
            };
        for &b in bytes {
            step(&mut f, b, &mut st);
            while let Some(r) = f.replay.pop() {
                step(&mut f, r, &mut st);
            }
        }
        (out, st)
    }

    #[test]
    fn lines_end_on_cr_lf_or_crlf_and_dollar_dollar_is_one_sentence() {
        let (out, st) = frame_all(b"$A*00\r$B*00\n$C*00\r\n$$D*00\n");
        let lines: Vec<&[u8]> = out.iter().map(|(_, l)| l.as_slice()).collect();
        assert_eq!(lines, [&b"A*00"[..], b"B*00", b"C*00", b"D*00"]);
        assert_eq!(st.garbage_bytes, 0);
        assert_eq!(st.truncated_lines, 0);
    }

    #[test]
    fn mid_sentence_start_and_truncation_resync_at_next_dollar() {
        let (out, st) = frame_all(b"PRMC,1,2*00\r\n$GPGGA,12$GPRMC,x*00\r\n");
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].1, b"GPRMC,x*00");
        assert_eq!(st.truncated_lines, 1);
        assert!(st.garbage_bytes >= 11);
    }

    #[test]
    fn overlong_lines_are_dropped_and_the_next_line_survives() {
        let mut input = b"$GP".to_vec();
        input.extend(std::iter::repeat_n(b'A', 5000));
        input.extend_from_slice(b"\r\n$OK*00\r\n");
        let (out, st) = frame_all(&input);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].1, b"OK*00");
        assert_eq!(st.overlong_lines, 1);
    }

    #[test]
    fn ubx_frame_between_sentences() {
        let mut input = b"$A*00\r\n".to_vec();
        let payload = [1u8, 2, 3];
        let mut frame = vec![0xB5, 0x62, 0x01, 0x26, 3, 0];
        frame.extend_from_slice(&payload);
        let (a, b) = ubx_checksum(&frame[2..]);
        frame.extend_from_slice(&[a, b]);
        input.extend_from_slice(&frame);
        input.extend_from_slice(b"$B*00\r\n");
        let (out, st) = frame_all(&input);
        assert_eq!(out.len(), 3);
        assert_eq!(out[1], (Framed::Ubx, frame));
        assert_eq!(st.garbage_bytes, 0);
    }

    #[test]
    fn false_ubx_sync_replays_the_sentence_it_swallowed() {
        // A stray sync with a plausible length would swallow the next sentence;
        // the checksum fails and the bytes are replayed.
        let mut input = vec![0xB5, 0x62, 0x01, 0x02, 12, 0];
        input.extend_from_slice(b"$GPZDA*00\r\n$X*00\r\n");
        let (out, st) = frame_all(&input);
        let lines: Vec<&[u8]> = out.iter().map(|(_, l)| l.as_slice()).collect();
        assert_eq!(lines, [&b"GPZDA*00"[..], b"X*00"]);
        assert_eq!(st.binary_errors, 1);
    }

    #[test]
    fn sirf_frame_is_skipped_cleanly() {
        let payload = [0x02u8, 0x10, 0x20];
        let sum: u16 = payload.iter().map(|&x| u16::from(x)).sum();
        let mut input = vec![0xA0, 0xA2, 0, 3];
        input.extend_from_slice(&payload);
        input.extend_from_slice(&sum.to_be_bytes());
        input.extend_from_slice(&[0xB0, 0xB3]);
        input.extend_from_slice(b"$A*00\n");
        let (out, st) = frame_all(&input);
        assert_eq!(out.len(), 2);
        assert_eq!(out[0].0, Framed::Sirf);
        assert_eq!(st.sirf_frames, 1);
        assert_eq!(st.garbage_bytes, 0);
    }
}
