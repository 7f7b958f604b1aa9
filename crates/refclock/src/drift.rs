//! The drift file: the oscillator's learned frequency, kept across restarts so
//! that a rebooted box locks in seconds instead of minutes.
//!
//! Format: one line, `frequency_ppm skew_ppm` (as chrony's driftfile), where
//! `frequency_ppm` is the correction that cancels the oscillator's own error
//! (what [`crate::Clock::set_frequency_ppb`] applies, in ppm) and `skew_ppm`
//! its one-sigma uncertainty. Written to a temporary file and renamed, so a
//! crash never leaves half a file.

use serde::Serialize;
use std::io::Write;
use std::path::{Path, PathBuf};

/// The most a real oscillator is off; anything larger in a file is corruption.
const MAX_PLAUSIBLE_PPM: f64 = 500.0;

/// What is persisted: the frequency correction and how sure we were of it.
#[derive(Copy, Clone, Debug, PartialEq, Serialize)]
pub struct DriftRecord {
    /// Frequency correction that cancels the oscillator's error, ppm.
    pub frequency_ppm: f64,
    /// One-sigma uncertainty of `frequency_ppm`, ppm.
    pub skew_ppm: f64,
}

/// Why a drift file could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum DriftError {
    /// Reading or writing failed.
    #[error("drift file {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The file exists but does not hold two plausible numbers.
    #[error("drift file {path} is malformed: {reason}")]
    Malformed {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
}

impl DriftRecord {
    /// Parses the file's contents; `path` is only for the error message.
    pub fn parse(text: &str, path: &Path) -> Result<DriftRecord, DriftError> {
        let malformed = |reason: String| DriftError::Malformed {
            path: path.to_path_buf(),
            reason,
        };
        let mut fields = text.split_whitespace();
        let freq = fields.next().ok_or_else(|| malformed("empty".into()))?;
        let frequency_ppm: f64 = freq
            .parse()
            .map_err(|_| malformed(format!("frequency {freq:?} is not a number")))?;
        let skew_ppm: f64 = match fields.next() {
            Some(s) => s
                .parse()
                .map_err(|_| malformed(format!("skew {s:?} is not a number")))?,
            None => 1.0,
        };
        if !frequency_ppm.is_finite() || frequency_ppm.abs() > MAX_PLAUSIBLE_PPM {
            return Err(malformed(format!(
                "frequency {frequency_ppm} ppm is implausible"
            )));
        }
        if !skew_ppm.is_finite() || !(0.0..=MAX_PLAUSIBLE_PPM).contains(&skew_ppm) {
            return Err(malformed(format!("skew {skew_ppm} ppm is implausible")));
        }
        Ok(DriftRecord {
            frequency_ppm,
            skew_ppm,
        })
    }
}

/// Reads the drift file. A missing file is `Ok(None)` (first boot), not an error.
pub fn load(path: &Path) -> Result<Option<DriftRecord>, DriftError> {
    match std::fs::read_to_string(path) {
        Ok(text) => DriftRecord::parse(&text, path).map(Some),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(DriftError::Io {
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// Writes the drift file atomically: a temporary file in the same directory,
/// flushed to disk, then renamed over the old one.
pub fn save(path: &Path, record: &DriftRecord) -> Result<(), DriftError> {
    let io = |source| DriftError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut tmp_name = path
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_else(|| "drift".into());
    tmp_name.push(format!(".tmp{}", std::process::id()));
    let tmp = path.with_file_name(tmp_name);
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        writeln!(f, "{:.6} {:.6}", record.frequency_ppm, record.skew_ppm)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.map_err(io)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "skytime-refclock-drift-{}-{name}",
            std::process::id()
        ));
        let _ = std::fs::create_dir_all(&dir);
        dir.join("drift")
    }

    #[test]
    fn save_then_load_round_trips_and_leaves_no_temp_file() {
        let path = scratch("roundtrip");
        let rec = DriftRecord {
            frequency_ppm: -23.456789,
            skew_ppm: 0.012,
        };
        save(&path, &rec).expect("save");
        let back = load(&path).expect("load").expect("present");
        assert!((back.frequency_ppm - rec.frequency_ppm).abs() < 1e-6);
        assert!((back.skew_ppm - rec.skew_ppm).abs() < 1e-6);
        let entries: Vec<_> = std::fs::read_dir(path.parent().expect("dir"))
            .expect("readdir")
            .collect();
        assert_eq!(entries.len(), 1, "temporary file left behind");
        let _ = std::fs::remove_dir_all(path.parent().expect("dir"));
    }

    #[test]
    fn missing_file_is_none_and_garbage_is_an_error() {
        let path = scratch("missing");
        let _ = std::fs::remove_file(&path);
        assert!(load(&path).expect("missing is fine").is_none());
        for bad in ["", "abc 1", "12.0 x", "9999 0.1", "NaN 0.1", "1.0 -2"] {
            std::fs::write(&path, bad).expect("write");
            assert!(
                matches!(load(&path), Err(DriftError::Malformed { .. })),
                "{bad:?} accepted"
            );
        }
        std::fs::write(&path, "3.5\n").expect("write");
        assert_eq!(load(&path).expect("ok").map(|r| r.frequency_ppm), Some(3.5));
        let _ = std::fs::remove_dir_all(path.parent().expect("dir"));
    }

    #[test]
    fn chrony_style_file_parses() {
        let r = DriftRecord::parse("          -1.234567             0.045678\n", Path::new("x"))
            .expect("parses");
        assert!((r.frequency_ppm + 1.234567).abs() < 1e-12, "{r:?}");
        assert!((r.skew_ppm - 0.045678).abs() < 1e-12, "{r:?}");
    }
}
