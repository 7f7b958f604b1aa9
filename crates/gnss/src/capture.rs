//! Replays gpsd-style capture files through the same core as the live line:
//! for `skytimectl nmea decode`, the corpus tests and the benchmark.
//!
//! A capture is the receiver's raw output with `#` comment lines. A
//! `# Date: YYYY-MM-DD` header says when it was recorded: it supplies the date
//! for captures that never send one (GGA-only), and centres the rollover window.

use crate::assembler::{EpochAssembler, ROLLOVER_DAYS};
use crate::config::{ParserConfig, parse_date};
use crate::epoch::{Epoch, FixMode};
use crate::stats::ParserStats;
use chrono::{Days, NaiveDate};
use serde::Serialize;
use skytime_timebase::{Arrival, LeapChange};
use std::io::{self, Read};

/// Longest comment line kept for header parsing; the rest is skipped.
const MAX_COMMENT_BYTES: usize = 256;

/// How to replay a capture.
#[derive(Clone, Debug, Default)]
pub struct CaptureOptions {
    /// Checksum policy and the like (the pivot there is ignored: see `pivot`).
    pub parser: ParserConfig,
    /// Rollover pivot. Unset: the capture's `# Date:` minus 512 weeks (so dates
    /// within half a rollover period of the recording stand), or no correction
    /// at all without a header. A live line never does this (see [`EpochAssembler::new`]).
    pub pivot: Option<NaiveDate>,
    /// Date for time-only captures, overriding the `# Date:` header.
    pub date: Option<NaiveDate>,
}

/// What a replay saw, for the summary line.
#[derive(Clone, Debug, Default, Serialize)]
pub struct CaptureSummary {
    /// Parser counters.
    #[serde(flatten)]
    pub stats: ParserStats,
    /// `#` lines skipped.
    pub comment_lines: u64,
    /// The `# Date:` header, if any.
    pub header_date: Option<String>,
    /// The rollover pivot used.
    pub pivot: String,
}

/// Splits comments from data and feeds the data to an [`EpochAssembler`].
#[derive(Debug)]
pub struct CaptureDecoder {
    assembler: EpochAssembler,
    explicit_pivot: bool,
    explicit_date: bool,
    at_line_start: bool,
    in_comment: bool,
    comment: Vec<u8>,
    comment_lines: u64,
    header_date: Option<NaiveDate>,
}

/// The GPS epoch: a pivot here corrects nothing a receiver can send.
fn gps_epoch() -> NaiveDate {
    NaiveDate::from_ymd_opt(1980, 1, 6).unwrap_or(NaiveDate::MIN)
}

impl CaptureDecoder {
    /// A decoder for one capture.
    pub fn new(options: &CaptureOptions) -> Self {
        let pivot = options.pivot.unwrap_or_else(gps_epoch);
        let mut assembler = EpochAssembler::with_pivot(&options.parser, pivot);
        assembler.set_date_hint(options.date);
        Self {
            assembler,
            explicit_pivot: options.pivot.is_some(),
            explicit_date: options.date.is_some(),
            at_line_start: true,
            in_comment: false,
            comment: Vec::new(),
            comment_lines: 0,
            header_date: None,
        }
    }

    /// Feeds a chunk of the file; completed epochs are appended to `out`.
    pub fn push(&mut self, bytes: &[u8], out: &mut Vec<Epoch>) {
        let mut i = 0;
        while i < bytes.len() {
            let rest = &bytes[i..];
            let eol = rest.iter().position(|&b| b == b'\n' || b == b'\r');
            if self.in_comment {
                let end = eol.unwrap_or(rest.len());
                let room = MAX_COMMENT_BYTES.saturating_sub(self.comment.len());
                self.comment.extend_from_slice(&rest[..end.min(room)]);
                if eol.is_some() {
                    self.end_comment();
                    self.in_comment = false;
                    self.at_line_start = true;
                }
                i += end + usize::from(eol.is_some());
            } else if self.at_line_start && rest[0] == b'#' {
                self.in_comment = true;
                self.comment.clear();
                i += 1;
            } else {
                let end = eol.map_or(rest.len(), |e| e + 1);
                self.assembler.push(&rest[..end], Arrival::default(), out);
                self.at_line_start = eol.is_some();
                i += end;
            }
        }
    }

    /// End of the capture: closes the last epoch.
    pub fn finish(&mut self, out: &mut Vec<Epoch>) {
        if self.in_comment {
            self.end_comment();
            self.in_comment = false;
        }
        self.assembler.finish(out);
    }

    /// Counters and header facts so far.
    pub fn summary(&self) -> CaptureSummary {
        CaptureSummary {
            stats: self.assembler.stats().clone(),
            comment_lines: self.comment_lines,
            header_date: self.header_date.map(|d| d.to_string()),
            pivot: self.assembler.pivot().to_string(),
        }
    }

    fn end_comment(&mut self) {
        self.comment_lines += 1;
        if self.header_date.is_some() {
            return;
        }
        let Some(date) = header_date(&self.comment) else {
            return;
        };
        self.header_date = Some(date);
        if !self.explicit_date {
            self.assembler.set_date_hint(Some(date));
        }
        if !self.explicit_pivot {
            let half = Days::new(ROLLOVER_DAYS / 2);
            self.assembler
                .set_capture_pivot(date.checked_sub_days(half).unwrap_or(date));
        }
    }
}

/// Parses a `YYYY-MM-DD` command-line argument (for clap's `value_parser`).
pub fn parse_date_arg(s: &str) -> Result<NaiveDate, String> {
    parse_date(s).ok_or_else(|| format!("{s:?} is not a date in YYYY-MM-DD form"))
}

/// `Date: 2015-04-13` (also `Date = ...`, as some gpsd captures write it).
fn header_date(comment: &[u8]) -> Option<NaiveDate> {
    let text = std::str::from_utf8(comment).ok()?.trim();
    let rest = text
        .get(..4)
        .filter(|k| k.eq_ignore_ascii_case("date"))
        .map(|_| &text[4..])?;
    let rest = rest.trim_start();
    let value = rest.strip_prefix(':').or_else(|| rest.strip_prefix('='))?;
    parse_date(value)
}

/// Replays a whole capture from `reader`, calling `sink` for each epoch.
pub fn decode_reader(
    mut reader: impl Read,
    options: &CaptureOptions,
    mut sink: impl FnMut(&Epoch) -> io::Result<()>,
) -> io::Result<CaptureSummary> {
    let mut decoder = CaptureDecoder::new(options);
    let mut buf = vec![0u8; 64 * 1024];
    let mut epochs = Vec::new();
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        decoder.push(&buf[..n], &mut epochs);
        for e in epochs.drain(..) {
            sink(&e)?;
        }
    }
    decoder.finish(&mut epochs);
    for e in epochs.drain(..) {
        sink(&e)?;
    }
    Ok(decoder.summary())
}

/// One line of `nmea decode` output, shaped like gpsd's JSON.
#[derive(Debug, Serialize)]
pub struct EpochLine<'a> {
    /// ISO-8601 UTC to the millisecond; a leap second prints as `23:59:60.000Z`.
    pub time: String,
    /// A real fix.
    pub valid: bool,
    /// gpsd's mode: 0 unknown (no GSA), 1 no fix, 2 2-D, 3 3-D.
    pub mode: u8,
    /// Satellites used.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sats_used: Option<u8>,
    /// Satellites in view.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sats_visible: Option<u8>,
    /// Horizontal dilution of precision.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hdop: Option<f32>,
    /// An announced leap second (`insert`/`delete`), only when there is one.
    #[serde(skip_serializing_if = "is_no_leap")]
    pub leap: LeapChange,
    /// Talker of the time-bearing sentence.
    pub talker: &'a str,
    /// Sentence types of the epoch, in order.
    pub sentences: &'a [String],
}

fn is_no_leap(l: &LeapChange) -> bool {
    *l == LeapChange::None
}

/// The epoch's time as gpsd prints it: `2014-12-31T03:07:19.000Z`.
pub fn iso_millis(e: &Epoch) -> String {
    let (h, m, s) = e.utc.hms();
    format!(
        "{}T{h:02}:{m:02}:{s:02}.{:03}Z",
        e.utc.date().format("%Y-%m-%d"),
        e.millis
    )
}

impl<'a> From<&'a Epoch> for EpochLine<'a> {
    fn from(e: &'a Epoch) -> Self {
        Self {
            time: iso_millis(e),
            valid: e.valid,
            mode: match e.fix_mode {
                FixMode::Unknown => 0,
                FixMode::NoFix => 1,
                FixMode::Fix2D => 2,
                FixMode::Fix3D => 3,
            },
            sats_used: e.sats_used,
            sats_visible: e.sats_visible,
            hdop: e.hdop,
            leap: e.leap,
            talker: &e.talker,
            sentences: &e.sentences,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_variants() {
        let d = |y, m, dd| NaiveDate::from_ymd_opt(y, m, dd);
        assert_eq!(header_date(b" Date: 2015-04-13"), d(2015, 4, 13));
        assert_eq!(header_date(b" Date = 2015-03-10"), d(2015, 3, 10));
        assert_eq!(header_date(b" Date: 2019-3-14"), d(2019, 3, 14));
        assert_eq!(header_date(b" Date: 2021-12-18T"), d(2021, 12, 18));
        assert_eq!(header_date(b" Dated: 2021-12-18"), None);
        assert_eq!(header_date(b" Name: x"), None);
    }

    #[test]
    fn header_date_labels_gga_only_captures() {
        let capture = "# Date: 2015-04-13\n\
            $GPGGA,202640.000,4404.1306,N,12118.8515,W,2,10,0.98,1127.7,M,-19.6,M,0000,0000*6C\n";
        let mut out = Vec::new();
        let summary = decode_reader(capture.as_bytes(), &CaptureOptions::default(), |e| {
            out.push(e.clone());
            Ok(())
        })
        .expect("in-memory read");
        assert_eq!(out.len(), 1);
        assert_eq!(iso_millis(&out[0]), "2015-04-13T20:26:40.000Z");
        assert!(out[0].valid);
        assert_eq!(summary.comment_lines, 1);
        assert_eq!(summary.header_date.as_deref(), Some("2015-04-13"));
    }

    #[test]
    fn without_header_or_date_a_gga_only_capture_yields_nothing() {
        let capture =
            "$GPGGA,202640.000,4404.1306,N,12118.8515,W,2,10,0.98,1127.7,M,-19.6,M,0000,0000*6C\n";
        let mut n = 0;
        let summary = decode_reader(capture.as_bytes(), &CaptureOptions::default(), |_| {
            n += 1;
            Ok(())
        })
        .expect("in-memory read");
        assert_eq!(n, 0);
        assert_eq!(summary.stats.undated_epochs, 1);
    }

    #[test]
    fn json_line_matches_the_documented_shape() {
        let capture = "$GPRMC,030719.000,A,3749.6177,S,17517.6396,E,0.21,67.27,311214,,,A*4D\n";
        let mut lines = Vec::new();
        decode_reader(capture.as_bytes(), &CaptureOptions::default(), |e| {
            lines.push(serde_json::to_string(&EpochLine::from(e)).map_err(io::Error::other)?);
            Ok(())
        })
        .expect("in-memory read");
        assert_eq!(
            lines,
            [
                r#"{"time":"2014-12-31T03:07:19.000Z","valid":true,"mode":0,"talker":"GP","sentences":["RMC"]}"#
            ]
        );
    }
}
