//! The `[gnss]` section of the configuration file and the parser's options.

use crate::configure::ReceiverSetup;
use chrono::NaiveDate;
use serde::{Deserialize, Deserializer, de::Error as _};
use std::path::PathBuf;

/// The date this crate was built (UTC, or `SOURCE_DATE_EPOCH`): the earliest
/// rollover pivot, because no receiver can be running before its firmware's
/// host software was built.
pub fn build_date() -> NaiveDate {
    NaiveDate::parse_from_str(env!("SKYTIME_BUILD_DATE"), "%Y-%m-%d")
        .ok()
        .or_else(|| NaiveDate::from_ymd_opt(2026, 1, 1))
        .unwrap_or(NaiveDate::MIN)
}

/// Baud rates that auto-baud tries, in order: the rates GNSS receivers ship with.
pub const AUTOBAUD_RATES: [u32; 4] = [4800, 9600, 38400, 115_200];

/// Standard serial rates accepted as a fixed `baud`.
const STANDARD_BAUDS: [u32; 11] = [
    1200, 2400, 4800, 9600, 19_200, 38_400, 57_600, 115_200, 230_400, 460_800, 921_600,
];

/// Options of the sans-IO parser, shared by the serial reader and `nmea decode`.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(default)]
pub struct ParserConfig {
    /// Accept sentences without a `*hh` checksum (some old receivers omit it).
    /// Off by default: an unchecked sentence from a noisy line could carry a wrong time.
    pub allow_missing_checksum: bool,
    /// GPS week-rollover pivot (`"YYYY-MM-DD"`): receiver dates before it are moved
    /// forward by 1024 weeks. Never earlier than the build date, which is the default.
    #[serde(deserialize_with = "de_opt_date")]
    pub rollover_pivot: Option<NaiveDate>,
    /// A gap on the line this long ends the current burst, and so the epoch.
    /// Receivers pause for hundreds of ms between bursts and only a few ms within one.
    pub idle_gap_ms: u32,
}

impl Default for ParserConfig {
    fn default() -> Self {
        Self {
            allow_missing_checksum: false,
            rollover_pivot: None,
            idle_gap_ms: 50,
        }
    }
}

impl ParserConfig {
    /// The pivot actually used on a live line: the configured one, but never
    /// before the build date.
    pub fn effective_pivot(&self) -> NaiveDate {
        let build = build_date();
        self.rollover_pivot.map_or(build, |p| p.max(build))
    }

    /// Semantic problems, as (key, message) pairs relative to the section.
    pub fn validate(&self) -> Vec<(String, String)> {
        let mut errors = Vec::new();
        if !(5..=900).contains(&self.idle_gap_ms) {
            errors.push((
                "idle_gap_ms".to_owned(),
                format!(
                    "{} is out of range 5..=900: a burst must end well within one second",
                    self.idle_gap_ms
                ),
            ));
        }
        if let Some(p) = self.rollover_pivot {
            let build = build_date();
            if p < build {
                errors.push((
                    "rollover_pivot".to_owned(),
                    format!("{p} is before the build date {build}; the build date is used instead"),
                ));
            }
        }
        errors
    }
}

/// How the serial line's speed is chosen.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Baud {
    /// Try [`AUTOBAUD_RATES`] until checksummed sentences appear (TOML `"auto"`).
    Auto,
    /// One fixed rate (TOML: a number).
    Fixed(u32),
}

impl Default for Baud {
    fn default() -> Self {
        Baud::Fixed(9600)
    }
}

impl<'de> Deserialize<'de> for Baud {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Number(u32),
            Text(String),
        }
        match Raw::deserialize(d)? {
            Raw::Number(n) => Ok(Baud::Fixed(n)),
            Raw::Text(s) if s.eq_ignore_ascii_case("auto") => Ok(Baud::Auto),
            Raw::Text(s) => s.trim().parse::<u32>().map(Baud::Fixed).map_err(|_| {
                D::Error::custom(format!("baud must be a number or \"auto\", not {s:?}"))
            }),
        }
    }
}

impl std::fmt::Display for Baud {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Baud::Auto => f.write_str("auto"),
            Baud::Fixed(b) => write!(f, "{b}"),
        }
    }
}

/// The `[gnss]` section: which serial device to read, how fast, and how
/// patient to be with it.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(default)]
pub struct GnssConfig {
    /// Serial device of the receiver (`/dev/ttyAMA0` on a Pi hat, `/dev/ttyACM0` for USB).
    pub device: PathBuf,
    /// `9600`, or `"auto"` to probe 4800/9600/38400/115200.
    pub baud: Baud,
    /// See [`ParserConfig::allow_missing_checksum`].
    pub allow_missing_checksum: bool,
    /// See [`ParserConfig::rollover_pivot`].
    #[serde(deserialize_with = "de_opt_date")]
    pub rollover_pivot: Option<NaiveDate>,
    /// See [`ParserConfig::idle_gap_ms`].
    pub idle_gap_ms: u32,
    /// No byte for this long means the receiver went quiet: say so and reopen the device.
    pub silence_timeout_ms: u32,
    /// Longest wait between attempts to reopen a lost device (back-off doubles up to it).
    pub reopen_backoff_max_ms: u32,
    /// How long auto-baud listens at each rate, and how long a fixed rate may
    /// produce only garbage before a wrong-baud warning.
    pub autobaud_window_ms: u32,
    /// `[gnss.receiver]`: configure the receiver at start-up (opt-in: with
    /// `protocol = "none"`, the default, it is used as it comes).
    pub receiver: ReceiverSetup,
}

impl Default for GnssConfig {
    fn default() -> Self {
        let parser = ParserConfig::default();
        Self {
            device: PathBuf::from("/dev/ttyAMA0"),
            baud: Baud::default(),
            allow_missing_checksum: parser.allow_missing_checksum,
            rollover_pivot: parser.rollover_pivot,
            idle_gap_ms: parser.idle_gap_ms,
            silence_timeout_ms: 5000,
            reopen_backoff_max_ms: 30_000,
            autobaud_window_ms: 3000,
            receiver: ReceiverSetup::default(),
        }
    }
}

impl GnssConfig {
    /// The parser options of this section.
    pub fn parser(&self) -> ParserConfig {
        ParserConfig {
            allow_missing_checksum: self.allow_missing_checksum,
            rollover_pivot: self.rollover_pivot,
            idle_gap_ms: self.idle_gap_ms,
        }
    }

    /// Semantic problems, as (key, message) pairs relative to `[gnss]`.
    pub fn validate(&self) -> Vec<(String, String)> {
        let mut errors = self.parser().validate();
        if self.device.as_os_str().is_empty() || !self.device.is_absolute() {
            errors.push((
                "device".to_owned(),
                format!(
                    "{:?} must be an absolute path such as /dev/ttyAMA0",
                    self.device
                ),
            ));
        }
        if let Baud::Fixed(b) = self.baud
            && !STANDARD_BAUDS.contains(&b)
        {
            errors.push((
                "baud".to_owned(),
                format!("{b} is not a standard rate ({STANDARD_BAUDS:?}) or \"auto\""),
            ));
        }
        if !(1000..=600_000).contains(&self.silence_timeout_ms) {
            errors.push((
                "silence_timeout_ms".to_owned(),
                format!(
                    "{} is out of range 1000..=600000: receivers talk at least once a second",
                    self.silence_timeout_ms
                ),
            ));
        }
        if !(100..=3_600_000).contains(&self.reopen_backoff_max_ms) {
            errors.push((
                "reopen_backoff_max_ms".to_owned(),
                format!(
                    "{} is out of range 100..=3600000",
                    self.reopen_backoff_max_ms
                ),
            ));
        }
        errors.extend(
            self.receiver
                .validate()
                .into_iter()
                .map(|(k, m)| (format!("receiver.{k}"), m)),
        );
        if !(1100..=60_000).contains(&self.autobaud_window_ms) {
            errors.push((
                "autobaud_window_ms".to_owned(),
                format!(
                    "{} is out of range 1100..=60000: a window must span at least one 1 Hz burst",
                    self.autobaud_window_ms
                ),
            ));
        }
        errors
    }
}

/// Parses a lenient `YYYY-MM-DD` (one-digit month/day allowed).
pub(crate) fn parse_date(s: &str) -> Option<NaiveDate> {
    let mut parts = s.trim().splitn(3, '-');
    let y: i32 = parts.next()?.trim().parse().ok()?;
    let m: u32 = parts.next()?.trim().parse().ok()?;
    let rest = parts.next()?.trim();
    let digits = rest
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(rest.len());
    let d: u32 = rest[..digits].parse().ok()?;
    NaiveDate::from_ymd_opt(y, m, d)
}

fn de_opt_date<'de, D: Deserializer<'de>>(d: D) -> Result<Option<NaiveDate>, D::Error> {
    match Option::<String>::deserialize(d)? {
        None => Ok(None),
        Some(s) => parse_date(&s)
            .map(Some)
            .ok_or_else(|| D::Error::custom(format!("{s:?} is not a date in YYYY-MM-DD form"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize)]
    struct File {
        gnss: GnssConfig,
    }

    #[test]
    fn defaults_are_a_pi_hat_at_9600_and_valid() {
        let c = GnssConfig::default();
        assert_eq!(c.device, PathBuf::from("/dev/ttyAMA0"));
        assert_eq!(c.baud, Baud::Fixed(9600));
        assert!(c.validate().is_empty(), "{:?}", c.validate());
    }

    #[test]
    fn baud_accepts_numbers_and_auto() {
        let f: File = toml::from_str("[gnss]\nbaud = \"auto\"\n").expect("parses");
        assert_eq!(f.gnss.baud, Baud::Auto);
        let f: File =
            toml::from_str("[gnss]\nbaud = 38400\ndevice = \"/dev/ttyACM0\"\n").expect("parses");
        assert_eq!(f.gnss.baud, Baud::Fixed(38400));
        assert!(toml::from_str::<File>("[gnss]\nbaud = \"fast\"\n").is_err());
    }

    #[test]
    fn validate_names_each_bad_key() {
        let f: File = toml::from_str(
            "[gnss]\nbaud = 12345\ndevice = \"ttyS0\"\nidle_gap_ms = 2000\nrollover_pivot = \"2001-01-01\"\n",
        )
        .expect("parses");
        let keys: Vec<String> = f.gnss.validate().into_iter().map(|(k, _)| k).collect();
        for k in ["baud", "device", "idle_gap_ms", "rollover_pivot"] {
            assert!(keys.iter().any(|x| x == k), "{k} missing from {keys:?}");
        }
        assert_eq!(f.gnss.parser().effective_pivot(), build_date());
    }

    #[test]
    fn the_receiver_section_is_off_unless_asked_for() {
        assert!(!GnssConfig::default().receiver.enabled());
        let f: File = toml::from_str("[gnss]\nbaud = \"auto\"\n[gnss.receiver]\nprotocol = \"ubx\"\nbaud = 57600\npulse_width_ms = 0\n")
            .expect("parses");
        assert!(f.gnss.receiver.enabled());
        let keys: Vec<String> = f.gnss.validate().into_iter().map(|(k, _)| k).collect();
        assert_eq!(keys, ["receiver.pulse_width_ms"]);
    }

    #[test]
    fn lenient_dates() {
        assert_eq!(
            parse_date("2019-3-14"),
            NaiveDate::from_ymd_opt(2019, 3, 14)
        );
        assert_eq!(
            parse_date("2021-12-18T"),
            NaiveDate::from_ymd_opt(2021, 12, 18)
        );
        assert_eq!(parse_date("2021-13-18"), None);
        assert_eq!(parse_date("yesterday"), None);
    }
}
