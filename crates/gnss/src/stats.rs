//! Counters of what the parser saw: the evidence behind "wrong baud rate",
//! "noisy line" and "receiver has no fix" diagnoses.

use serde::Serialize;

/// Cumulative counts since the assembler was created.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ParserStats {
    /// Bytes fed in.
    pub bytes: u64,
    /// NMEA lines framed (`$` to line end), whatever became of them.
    pub lines: u64,
    /// Sentences accepted: checksum good (or absent and allowed) and well formed.
    pub sentences: u64,
    /// Sentences dropped for a wrong or malformed checksum.
    pub checksum_errors: u64,
    /// Sentences dropped because they had no checksum and the config requires one.
    pub missing_checksums: u64,
    /// Checksummed sentences whose fields did not parse (bad time, unknown talker...).
    pub malformed_sentences: u64,
    /// Bytes that belonged to no sentence or frame (noise, wrong baud rate).
    pub garbage_bytes: u64,
    /// Lines cut short by a new `$` or a binary byte.
    pub truncated_lines: u64,
    /// Lines longer than the framer keeps.
    pub overlong_lines: u64,
    /// UBX frames with a good checksum.
    pub ubx_frames: u64,
    /// SiRF binary frames with a good checksum.
    pub sirf_frames: u64,
    /// Binary syncs that led to a bad length or checksum.
    pub binary_errors: u64,
    /// UBX-NAV-TIMELS leap-second reports decoded.
    pub leap_reports: u64,
    /// Epochs emitted.
    pub epochs: u64,
    /// Epochs emitted as valid (a real fix).
    pub valid_epochs: u64,
    /// Bursts dropped because no date was known for their time of day.
    pub undated_epochs: u64,
    /// Bursts dropped because they had no time-bearing sentence.
    pub untimed_bursts: u64,
    /// Time sentences for a second already emitted (a burst split by a pause).
    pub late_sentences: u64,
    /// Receiver dates moved forward by 1024-week multiples.
    pub rollover_corrections: u64,
}
