//! What the SD image's hat detection found or tried
//! (`/var/lib/skytime-image/hat-detection.txt`, written by
//! `image/rootfs/usr/lib/skytime-image/detect-hat`): a box that found no
//! receiver serves LI=3, and its owner needs to see why on the status page.

use crate::ctl::protocol::HardwareDetectionReport;
use std::io::Read;
use std::path::Path;

/// More than detection ever writes; a larger file is cut, never read whole.
const MAX_REPORT_BYTES: u64 = 64 * 1024;
/// The prefix of each attempt's line in the file.
const TRIED_PREFIX: &str = "tried: ";

/// The report in `path`; `None` where there is none (a box not made from the
/// image). A file that cannot be read says so in the outcome.
pub fn read_detection_report(path: &Path) -> Option<HardwareDetectionReport> {
    let file = path.display().to_string();
    let mut text = String::new();
    let read = std::fs::File::open(path).and_then(|f| {
        f.take(MAX_REPORT_BYTES)
            .read_to_string(&mut text)
            .map(|_| ())
    });
    match read {
        Ok(()) => Some(parse_detection_report(file, &text)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => Some(HardwareDetectionReport {
            file,
            outcome: format!("cannot read the hat detection report: {e}"),
            tried: Vec::new(),
        }),
    }
}

/// `tried: ...` lines are the attempts, in order; the other lines, joined,
/// are the outcome.
pub fn parse_detection_report(file: String, text: &str) -> HardwareDetectionReport {
    let mut outcome = Vec::new();
    let mut tried = Vec::new();
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        match line.strip_prefix(TRIED_PREFIX) {
            Some(attempt) => tried.push(attempt.to_string()),
            None => outcome.push(line),
        }
    }
    HardwareDetectionReport {
        file,
        outcome: outcome.join(" "),
        tried,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const UNKNOWN_HAT: &str = "skytime hat detection, 2026-12-02T01:00:00Z: no GNSS receiver found.\n\
        tried: EEPROM: none\n\
        tried: /dev/ttyAMA0 at 9600: no NMEA\n\
        tried: PPS GPIO 18 (/dev/pps1): no pulses\n\
        skytimed keeps serving unsynchronised (LI=3, stratum 16) with /etc/skytime/skytime.toml;\n\
        detection runs again at the next boot.\n";

    #[test]
    fn attempts_and_outcome_are_split() {
        let r = parse_detection_report("f".into(), UNKNOWN_HAT);
        assert_eq!(
            r.tried,
            [
                "EEPROM: none",
                "/dev/ttyAMA0 at 9600: no NMEA",
                "PPS GPIO 18 (/dev/pps1): no pulses"
            ]
        );
        assert!(
            r.outcome.starts_with("skytime hat detection"),
            "{}",
            r.outcome
        );
        assert!(r.outcome.contains("no GNSS receiver found."));
        assert!(
            r.outcome
                .ends_with("detection runs again at the next boot.")
        );
    }

    #[test]
    fn a_missing_file_is_no_report_and_an_unreadable_one_says_so() {
        let dir = std::env::temp_dir().join(format!("skytime-detection-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        assert_eq!(read_detection_report(&dir.join("absent")), None);
        // A directory where the file should be: open works, read fails.
        let r = read_detection_report(&dir).expect("a report");
        assert!(r.outcome.starts_with("cannot read"), "{}", r.outcome);
        let file = dir.join("hat-detection.txt");
        std::fs::write(&file, UNKNOWN_HAT).expect("write");
        let r = read_detection_report(&file).expect("a report");
        std::fs::remove_dir_all(&dir).expect("clean up");
        assert_eq!(r, parse_detection_report(r.file.clone(), UNKNOWN_HAT));
        assert_eq!(r.file, file.display().to_string());
    }
}
