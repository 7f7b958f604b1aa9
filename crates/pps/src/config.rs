//! The `[pps]` section of skytime.toml.

use crate::source::PpsEdgeKind;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// Which PPS device to read and which edge marks the second.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct PpsConfig {
    /// RFC 2783 device node; `/dev/pps0` is the first pps-gpio source on a Pi
    /// (the udev rule also links it as `/dev/gnsspps0`).
    pub device: PathBuf,
    /// `assert` (the usual rising edge) or `clear`.
    pub edge: PpsEdgeKind,
}

impl Default for PpsConfig {
    fn default() -> Self {
        Self {
            device: PathBuf::from("/dev/pps0"),
            edge: PpsEdgeKind::Assert,
        }
    }
}

impl PpsConfig {
    /// Every semantic problem as (key relative to `[pps]`, message).
    pub fn validate(&self) -> Vec<(String, String)> {
        let mut problems = Vec::new();
        if self.device.as_os_str().is_empty() {
            problems.push((
                "device".to_string(),
                "must name a device, e.g. /dev/pps0".to_string(),
            ));
        } else if !self.device.is_absolute() {
            problems.push((
                "device".to_string(),
                format!(
                    "`{}` is not an absolute path; use e.g. /dev/pps0",
                    self.device.display()
                ),
            ));
        } else if self.device.to_str().is_none() {
            problems.push(("device".to_string(), "path is not valid UTF-8".to_string()));
        }
        problems
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
}
