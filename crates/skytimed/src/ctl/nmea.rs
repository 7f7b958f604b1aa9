//! `skytimectl nmea decode FILE`: replays a receiver capture through the same
//! parser as the live serial line and prints one JSON object per epoch.
//!
//! The work is in [`skytime_gnss::capture`]; this is the command-line shell.

use anyhow::Context as _;
use skytime_gnss::NaiveDate;
use skytime_gnss::capture::{self, CaptureOptions, EpochLine};
use std::io::{self, BufWriter, Read, Write};
use std::path::Path;
use std::process::ExitCode;

/// Options for decoding a capture.
#[derive(Debug, Default, Clone)]
pub struct DecodeOptions {
    /// GPS week-rollover pivot; default: the capture's `# Date:` header minus
    /// 512 weeks, or no correction without a header.
    pub pivot: Option<NaiveDate>,
    /// Date for captures that send none (GGA-only), overriding `# Date:`.
    pub date: Option<NaiveDate>,
    /// Accept sentences without a checksum.
    pub allow_missing_checksum: bool,
}

/// Decodes a capture file (or `-` for stdin) into one JSON object per epoch on
/// stdout, and a summary on stderr.
pub fn decode(path: &Path, options: &DecodeOptions) -> anyhow::Result<ExitCode> {
    let input: Box<dyn Read> = if path.as_os_str() == "-" {
        Box::new(io::stdin().lock())
    } else {
        Box::new(
            std::fs::File::open(path)
                .with_context(|| format!("cannot open capture {}", path.display()))?,
        )
    };
    let mut capture_options = CaptureOptions {
        pivot: options.pivot,
        date: options.date,
        ..CaptureOptions::default()
    };
    capture_options.parser.allow_missing_checksum = options.allow_missing_checksum;

    let mut out = BufWriter::new(io::stdout().lock());
    let result = capture::decode_reader(input, &capture_options, |epoch| {
        serde_json::to_writer(&mut out, &EpochLine::from(epoch)).map_err(io::Error::other)?;
        out.write_all(b"\n")
    });
    let summary = match result.and_then(|s| out.flush().map(|()| s)) {
        Ok(s) => s,
        // `skytimectl nmea decode big.log | head`: the reader left, not an error.
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => return Ok(ExitCode::SUCCESS),
        Err(e) => {
            return Err(e).with_context(|| format!("decoding {}", path.display()));
        }
    };
    let s = &summary.stats;
    eprintln!(
        "summary: lines={} sentences={} checksum_errors={} garbage_bytes={} epochs={} valid_epochs={} \
         missing_checksums={} malformed={} truncated_lines={} overlong_lines={} ubx_frames={} \
         undated_epochs={} rollover_corrections={} comment_lines={} pivot={}{}",
        s.lines,
        s.sentences,
        s.checksum_errors,
        s.garbage_bytes,
        s.epochs,
        s.valid_epochs,
        s.missing_checksums,
        s.malformed_sentences,
        s.truncated_lines,
        s.overlong_lines,
        s.ubx_frames,
        s.undated_epochs,
        s.rollover_corrections,
        summary.comment_lines,
        summary.pivot,
        summary
            .header_date
            .map(|d| format!(" header_date={d}"))
            .unwrap_or_default(),
    );
    Ok(ExitCode::SUCCESS)
}
