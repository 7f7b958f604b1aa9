//! The `[gnss.receiver]` section: opt-in configuration of the receiver itself.
//! With `protocol = "none"` (the default) the receiver is used exactly as it comes.

use crate::ubx::config::FixedPosition;
use serde::Deserialize;

/// The command language of the receiver.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ReceiverProtocol {
    /// Leave the receiver alone.
    #[default]
    None,
    /// u-blox (UBX binary).
    Ubx,
    /// MediaTek and its derivatives (PMTK sentences).
    Pmtk,
}

/// How a u-blox timing receiver learns its position.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TimingModeSetting {
    /// Leave it as the receiver has it (the only choice a navigation-only
    /// receiver accepts: it refuses CFG-TMODE3).
    #[default]
    Keep,
    /// Navigate as usual.
    Navigation,
    /// Survey the antenna position, then hold it.
    SurveyIn,
    /// Use `fixed_lat_deg`, `fixed_lon_deg`, `fixed_height_m`.
    Fixed,
}

/// Which u-blox configuration messages to send: generation 9 receivers
/// take both, M10-class ones only CFG-VALSET, older ones only the legacy set.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UbxConfigInterface {
    /// Chosen from MON-VER: CFG-VALSET where the legacy messages are gone
    /// (protocol 34+, M10), the legacy messages otherwise.
    #[default]
    Auto,
    /// CFG-PRT, CFG-MSG, CFG-TP5, CFG-TMODE3 (protocol below 34).
    Legacy,
    /// CFG-VALSET key/value pairs (protocol 27+).
    Valset,
}

/// `[gnss.receiver]`: what to set on the receiver at start-up.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(default)]
pub struct ReceiverSetup {
    /// `"none"` (leave it alone), `"ubx"` (u-blox) or `"pmtk"` (MediaTek).
    pub protocol: ReceiverProtocol,
    /// u-blox: `"auto"`, `"legacy"` (CFG-PRT/MSG/TP5/TMODE3) or `"valset"` (CFG-VALSET).
    pub ubx_config_interface: UbxConfigInterface,
    /// Move the line to this rate (last, confirmed at the new rate); absent: keep it.
    pub baud: Option<u32>,
    /// Width of the 1 PPS pulse, ms.
    pub pulse_width_ms: u32,
    /// Antenna cable delay the receiver should take off its pulse, ns (u-blox).
    pub antenna_cable_delay_ns: i16,
    /// `"keep"`, `"navigation"`, `"survey-in"` or `"fixed"` (u-blox timing receivers).
    pub timing_mode: TimingModeSetting,
    /// Survey-in: shortest survey, s.
    pub survey_in_min_duration_s: u32,
    /// Survey-in: required 3-D accuracy of the mean position, mm.
    pub survey_in_accuracy_mm: u32,
    /// Fixed mode: antenna latitude, degrees north.
    pub fixed_lat_deg: Option<f64>,
    /// Fixed mode: antenna longitude, degrees east.
    pub fixed_lon_deg: Option<f64>,
    /// Fixed mode: antenna height above the WGS84 ellipsoid, m.
    pub fixed_height_m: Option<f64>,
    /// Fixed mode: accuracy of that position, mm.
    pub fixed_accuracy_mm: u32,
    /// How long to wait for each acknowledgement, ms.
    pub reply_timeout_ms: u32,
    /// Sends of each message before the receiver counts as silent.
    pub attempts: u8,
}

impl Default for ReceiverSetup {
    fn default() -> Self {
        ReceiverSetup {
            protocol: ReceiverProtocol::None,
            ubx_config_interface: UbxConfigInterface::Auto,
            baud: None,
            pulse_width_ms: 100,
            antenna_cable_delay_ns: 0,
            timing_mode: TimingModeSetting::Keep,
            survey_in_min_duration_s: 3600,
            survey_in_accuracy_mm: 2000,
            fixed_lat_deg: None,
            fixed_lon_deg: None,
            fixed_height_m: None,
            fixed_accuracy_mm: 1000,
            reply_timeout_ms: 1000,
            attempts: 3,
        }
    }
}

/// Rates a receiver may be moved to.
const RECEIVER_BAUDS: [u32; 6] = [9600, 19_200, 38_400, 57_600, 115_200, 230_400];

impl ReceiverSetup {
    /// Whether the receiver is to be configured at all.
    pub fn enabled(&self) -> bool {
        self.protocol != ReceiverProtocol::None
    }

    /// Pulse width in µs, as CFG-TP5 takes it.
    pub fn pulse_width_us(&self) -> u32 {
        self.pulse_width_ms.saturating_mul(1000)
    }

    /// The fixed position in CFG-TMODE3's units, when all three coordinates are set.
    #[expect(
        clippy::cast_possible_truncation,
        reason = "checked just above: |lat| <= 90, |lon| <= 180, |h| <= 20 km, so each scaled value is under 2e11"
    )]
    pub fn fixed_position(&self) -> Option<FixedPosition> {
        let (lat, lon, h) = (
            self.fixed_lat_deg?,
            self.fixed_lon_deg?,
            self.fixed_height_m?,
        );
        let valid =
            (-90.0..=90.0).contains(&lat) && (-180.0..=180.0).contains(&lon) && h.abs() <= 20_000.0;
        valid.then(|| FixedPosition {
            lat_nanodeg: (lat * 1e9).round() as i64,
            lon_nanodeg: (lon * 1e9).round() as i64,
            height_tenth_mm: (h * 1e4).round() as i64,
            accuracy_tenth_mm: self.fixed_accuracy_mm.saturating_mul(10),
        })
    }

    /// Semantic problems, as (key, message) pairs relative to `[gnss.receiver]`.
    pub fn validate(&self) -> Vec<(String, String)> {
        let mut errors = Vec::new();
        let mut bad = |key: &str, msg: String| errors.push((key.to_owned(), msg));
        if let Some(b) = self.baud
            && !RECEIVER_BAUDS.contains(&b)
        {
            bad("baud", format!("{b} is not one of {RECEIVER_BAUDS:?}"));
        }
        if !(1..=900).contains(&self.pulse_width_ms) {
            bad(
                "pulse_width_ms",
                format!("{} is out of range 1..=900", self.pulse_width_ms),
            );
        }
        if !(1..=604_800).contains(&self.survey_in_min_duration_s) {
            bad(
                "survey_in_min_duration_s",
                format!(
                    "{} is out of range 1..=604800",
                    self.survey_in_min_duration_s
                ),
            );
        }
        if !(10..=100_000).contains(&self.survey_in_accuracy_mm) {
            bad(
                "survey_in_accuracy_mm",
                format!("{} is out of range 10..=100000", self.survey_in_accuracy_mm),
            );
        }
        if self.timing_mode == TimingModeSetting::Fixed && self.fixed_position().is_none() {
            bad(
                "timing_mode",
                "\"fixed\" needs fixed_lat_deg (-90..90), fixed_lon_deg (-180..180) and fixed_height_m"
                    .to_owned(),
            );
        }
        if self.protocol == ReceiverProtocol::Pmtk && self.timing_mode != TimingModeSetting::Keep {
            bad(
                "timing_mode",
                "MediaTek receivers have no timing mode: use \"keep\"".to_owned(),
            );
        }
        if self.protocol == ReceiverProtocol::Pmtk
            && self.ubx_config_interface != UbxConfigInterface::Auto
        {
            bad(
                "ubx_config_interface",
                "applies to u-blox receivers only: leave it \"auto\" with protocol = \"pmtk\""
                    .to_owned(),
            );
        }
        if !(200..=10_000).contains(&self.reply_timeout_ms) {
            bad(
                "reply_timeout_ms",
                format!("{} is out of range 200..=10000", self.reply_timeout_ms),
            );
        }
        if !(1..=10).contains(&self.attempts) {
            bad(
                "attempts",
                format!("{} is out of range 1..=10", self.attempts),
            );
        }
        errors
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize)]
    struct File {
        gnss: Gnss,
    }
    #[derive(Deserialize)]
    struct Gnss {
        receiver: ReceiverSetup,
    }

    #[test]
    fn a_survey_in_section_parses_and_validates() {
        let f: File = toml::from_str(
            "[gnss.receiver]\nprotocol = \"ubx\"\nbaud = 115200\ntiming_mode = \"survey-in\"\nsurvey_in_accuracy_mm = 1500\n",
        )
        .expect("parses");
        let r = f.gnss.receiver;
        assert_eq!(r.timing_mode, TimingModeSetting::SurveyIn);
        assert_eq!(r.baud, Some(115_200));
        assert!(r.validate().is_empty(), "{:?}", r.validate());
    }

    #[test]
    fn fixed_mode_needs_a_position_and_converts_it() {
        let f: File = toml::from_str(
            "[gnss.receiver]\ntiming_mode = \"fixed\"\nfixed_lat_deg = 47.123456789\nfixed_lon_deg = -122.5\nfixed_height_m = 30.25\n",
        )
        .expect("parses");
        let p = f.gnss.receiver.fixed_position().expect("complete");
        assert_eq!(
            (
                p.lat_nanodeg,
                p.lon_nanodeg,
                p.height_tenth_mm,
                p.accuracy_tenth_mm
            ),
            (47_123_456_789, -122_500_000_000, 302_500, 10_000)
        );
        let f: File =
            toml::from_str("[gnss.receiver]\ntiming_mode = \"fixed\"\nfixed_lat_deg = 95.0\n")
                .expect("parses");
        let keys: Vec<String> = f
            .gnss
            .receiver
            .validate()
            .into_iter()
            .map(|(k, _)| k)
            .collect();
        assert_eq!(keys, ["timing_mode"]);
    }

    #[test]
    fn every_bad_key_is_named() {
        let f: File = toml::from_str(
            "[gnss.receiver]\nprotocol = \"pmtk\"\nbaud = 12345\npulse_width_ms = 0\ntiming_mode = \"survey-in\"\nreply_timeout_ms = 5\nattempts = 0\nubx_config_interface = \"valset\"\n",
        )
        .expect("parses");
        let keys: Vec<String> = f
            .gnss
            .receiver
            .validate()
            .into_iter()
            .map(|(k, _)| k)
            .collect();
        for k in [
            "baud",
            "pulse_width_ms",
            "timing_mode",
            "reply_timeout_ms",
            "attempts",
            "ubx_config_interface",
        ] {
            assert!(keys.iter().any(|x| x == k), "{k} missing from {keys:?}");
        }
        assert!(toml::from_str::<File>("[gnss.receiver]\nprotocol = \"sirf\"\n").is_err());
        assert!(
            toml::from_str::<File>("[gnss.receiver]\nubx_config_interface = \"cfg\"\n").is_err()
        );
    }
}
