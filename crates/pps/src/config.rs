//! The `[pps]` section of skytime.toml.

use crate::source::PpsEdgeKind;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Where pulses are timestamped: by the kernel at interrupt time (GPIO,
/// ~1 µs latency jitter), or in hardware by a PTP hardware clock (ns-level).
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PpsSourceKind {
    /// RFC 2783 `/dev/ppsN` (pps-gpio, pps-ldisc).
    #[default]
    Kernel,
    /// A PHC's external-timestamp input (`/dev/ptpN`: i210/i226 SDP pins,
    /// CM4/CM5 SYNC_IN, OCP Time Card).
    Phc,
}

/// Which PPS device to read and which edge marks the second.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct PpsConfig {
    /// `kernel` (the default) or `phc`.
    pub source: PpsSourceKind,
    /// RFC 2783 device node; `/dev/pps0` is the first pps-gpio source on a Pi
    /// (the udev rule also links it as `/dev/gnsspps0`).
    pub device: PathBuf,
    /// `assert` (the usual rising edge) or `clear`; for a PHC, rising or falling.
    pub edge: PpsEdgeKind,
    /// The PTP hardware clock whose pin the PPS is wired to (`source = "phc"`).
    pub phc_device: PathBuf,
    /// The PHC's programmable pin (i210: SDP0..3 are pins 0..3). Unset: the
    /// pin whose index equals `phc_channel`, when the PHC has programmable pins.
    pub phc_pin: Option<u32>,
    /// The external-timestamp channel the pin is routed to.
    pub phc_channel: u32,
}

impl Default for PpsConfig {
    fn default() -> Self {
        Self {
            source: PpsSourceKind::Kernel,
            device: PathBuf::from("/dev/pps0"),
            edge: PpsEdgeKind::Assert,
            phc_device: PathBuf::from("/dev/ptp0"),
            phc_pin: None,
            phc_channel: 0,
        }
    }
}

impl PpsConfig {
    /// Every semantic problem as (key relative to `[pps]`, message).
    pub fn validate(&self) -> Vec<(String, String)> {
        let mut problems = Vec::new();
        match self.source {
            PpsSourceKind::Kernel => check_path(&mut problems, "device", &self.device, "/dev/pps0"),
            PpsSourceKind::Phc => {
                check_path(&mut problems, "phc_device", &self.phc_device, "/dev/ptp0")
            }
        }
        problems
    }
}

fn check_path(problems: &mut Vec<(String, String)>, key: &str, path: &Path, example: &str) {
    if path.as_os_str().is_empty() {
        problems.push((
            key.to_string(),
            format!("must name a device, e.g. {example}"),
        ));
    } else if !path.is_absolute() {
        problems.push((
            key.to_string(),
            format!(
                "`{}` is not an absolute path; use e.g. {example}",
                path.display()
            ),
        ));
    } else if path.to_str().is_none() {
        problems.push((key.to_string(), "path is not valid UTF-8".to_string()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_edges_parse() {
        let c: PpsConfig = toml::from_str("").expect("empty section");
        assert_eq!(c, PpsConfig::default());
        assert!(c.validate().is_empty());
        let c: PpsConfig =
            toml::from_str("device = \"/dev/pps1\"\nedge = \"clear\"").expect("parse");
        assert_eq!(c.edge, PpsEdgeKind::Clear);
        assert_eq!(c.device, PathBuf::from("/dev/pps1"));
        assert!(toml::from_str::<PpsConfig>("edge = \"rising\"").is_err());
    }

    #[test]
    fn relative_or_empty_devices_are_reported_under_their_key() {
        for bad in ["", "pps0"] {
            let c = PpsConfig {
                device: PathBuf::from(bad),
                ..Default::default()
            };
            let p = c.validate();
            assert_eq!(p.len(), 1, "{bad:?}");
            assert_eq!(p[0].0, "device");
        }
    }

    #[test]
    fn the_phc_source_checks_its_own_device_key() {
        let c: PpsConfig = toml::from_str(
            "source = \"phc\"\nphc_device = \"ptp0\"\nphc_pin = 1\nphc_channel = 1\nedge = \"clear\"",
        )
        .expect("parse");
        assert_eq!(
            (c.source, c.phc_pin, c.phc_channel),
            (PpsSourceKind::Phc, Some(1), 1)
        );
        let p = c.validate();
        assert_eq!(p.len(), 1, "{p:?}");
        assert_eq!(p[0].0, "phc_device");
        assert!(p[0].1.contains("/dev/ptp0"), "{p:?}");
        // The kernel device is not checked for a PHC source, nor the PHC for a kernel one.
        let c = PpsConfig {
            source: PpsSourceKind::Phc,
            device: PathBuf::new(),
            ..Default::default()
        };
        assert!(c.validate().is_empty());
        assert!(toml::from_str::<PpsConfig>("source = \"gpio\"").is_err());
    }
}
