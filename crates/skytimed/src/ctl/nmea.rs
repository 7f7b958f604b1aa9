//! `skytimectl nmea decode FILE`: the GNSS engineer replaces this placeholder.

use std::path::Path;
use std::process::ExitCode;

/// Options for decoding a capture.
#[derive(Debug, Default, Clone)]
pub struct DecodeOptions {}

/// Decodes a capture file (or `-` for stdin) into one JSON object per epoch.
pub fn decode(path: &Path, _options: &DecodeOptions) -> anyhow::Result<ExitCode> {
    anyhow::bail!("nmea decode of {} is not built yet", path.display())
}
