//! gpsd's regression captures: for every capture, the valid times skytime
//! decodes must contain every time gpsd reported with a fix (TPV `mode >= 2`
//! with a `time`), except for the documented differences below.

use chrono::{DateTime, Duration, Utc};
use skytime_gnss::capture::{self, CaptureOptions};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// Where skytime and gpsd legitimately disagree, with the reason.
struct Difference {
    file: &'static str,
    reason: &'static str,
    /// Each gpsd time missing from skytime's must be found shifted by this many
    /// 1024-week GPS rollovers.
    rollovers: i64,
}

const DIFFERENCES: &[Difference] = &[
    Difference {
        file: "april6_2019.log",
        reason: "gpsd keeps the receiver's 1999-08-22; the capture was recorded in 2019 \
                 (# Date), so skytime applies the 1024-week rollover: 2019-04-07",
        rollovers: 1,
    },
    Difference {
        file: "rst39.log",
        reason: "gpsd moves the receiver's 2014-02-19 forward 1024 weeks to 2033-10-05 \
                 (its own rollover choice); 2014 is within 512 weeks of the capture's \
                 # Date 2015-03-10, so skytime keeps it",
        rollovers: -1,
    },
];

/// Facts about a capture worth a line in the table (no effect on containment).
const NOTES: &[(&str, &str)] = &[
    (
        "firefly-II.log",
        "its GGA lines carry wrong checksums (an edited capture): dropped and counted; RMC/ZDA give the times",
    ),
    (
        "GPSmap-76S.log",
        "Garmin in simulator mode: RMC status V throughout, no fix",
    ),
];

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus/nmea-gpsd")
}

fn gpsd_fix_times(chk: &Path) -> BTreeSet<String> {
    let text = std::fs::read_to_string(chk).expect("corpus .chk is readable");
    text.lines()
        .filter(|l| l.starts_with('{'))
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["class"] == "TPV" && v["mode"].as_u64().is_some_and(|m| m >= 2))
        .filter_map(|v| v["time"].as_str().map(str::to_owned))
        .collect()
}

fn shift(time: &str, rollovers: i64) -> Option<String> {
    let t: DateTime<Utc> = time.parse().ok()?;
    let t = t + Duration::days(rollovers * 1024 * 7);
    Some(t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string())
}

#[test]
fn skytime_contains_every_gpsd_fix_time() {
    let mut logs: Vec<PathBuf> = std::fs::read_dir(corpus_dir())
        .expect("corpus directory")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "log"))
        .collect();
    logs.sort();
    assert!(logs.len() >= 15, "corpus has {} captures", logs.len());

    let mut failures = Vec::new();
    let mut table = vec![format!(
        "| {:<32} | {:>6} | {:>5} | {:>14} | {:>9} | notes",
        "file", "epochs", "valid", "gpsd fix times", "contained"
    )];
    for log in &logs {
        let name = log.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        let file = std::fs::File::open(log).expect("corpus capture is readable");
        let mut epochs = Vec::new();
        let summary = capture::decode_reader(file, &CaptureOptions::default(), |e| {
            epochs.push(e.clone());
            Ok(())
        })
        .expect("decoding never fails on a readable file");
        let ours: BTreeSet<String> = epochs
            .iter()
            .filter(|e| e.valid)
            .map(capture::iso_millis)
            .collect();
        let gpsd = gpsd_fix_times(&log.with_extension("log.chk"));
        let missing: Vec<&String> = gpsd.iter().filter(|t| !ours.contains(*t)).collect();
        let documented = DIFFERENCES.iter().find(|d| d.file == name);
        let mut note = String::new();
        match documented {
            Some(d) => {
                let unexplained: Vec<&&String> = missing
                    .iter()
                    .filter(|t| shift(t, d.rollovers).is_none_or(|s| !ours.contains(&s)))
                    .collect();
                if !unexplained.is_empty() {
                    failures.push(format!(
                        "{name}: not contained even shifted: {unexplained:?}"
                    ));
                }
                if missing.is_empty() {
                    failures.push(format!("{name}: documented difference no longer occurs"));
                }
                note = format!(
                    "{} differ by {:+} rollover: {}",
                    missing.len(),
                    d.rollovers,
                    d.reason
                );
            }
            None if !missing.is_empty() => {
                failures.push(format!("{name}: gpsd times missing: {missing:?}"));
            }
            None => {}
        }
        if let Some((_, n)) = NOTES.iter().find(|(f, _)| *f == name) {
            note.push_str(n);
        }
        if summary.stats.checksum_errors > 0 {
            note.push_str(&format!(
                " [{} checksum errors]",
                summary.stats.checksum_errors
            ));
        }
        table.push(format!(
            "| {:<32} | {:>6} | {:>5} | {:>14} | {:>9} | {}",
            name,
            epochs.len(),
            ours.len(),
            gpsd.len(),
            if missing.is_empty() {
                "all".to_owned()
            } else {
                format!("{}/{}", gpsd.len() - missing.len(), gpsd.len())
            },
            note
        ));
    }
    println!("{}", table.join("\n"));
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
