//! The daemon's one configuration file, `/etc/skytime/skytime.toml`.
//!
//! Each crate owns the section it is configured by; this module composes them,
//! adds the daemon's own sections, and reports every problem in a file with its
//! key and line (see [`problems`]).

pub mod problems;

use problems::{ConfigProblem, deserialize_repairing, locate_problems};
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// The reference configuration: every key, documented, at its default. Also
/// the source of "did you mean" hints.
pub const REFERENCE_CONFIG: &str = include_str!("../../../../config/skytime.toml");

/// Where a packaged daemon reads its configuration.
pub const DEFAULT_CONFIG_PATH: &str = "/etc/skytime/skytime.toml";

/// The whole configuration file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Config {
    /// `[gnss]`: the receiver's serial line.
    pub gnss: skytime_gnss::GnssConfig,
    /// `[pps]`: the pulse device.
    pub pps: skytime_pps::PpsConfig,
    /// `[refclock]`: the discipline.
    pub refclock: skytime_refclock::RefclockConfig,
    /// `[ntp]`: the server.
    pub ntp: skytime_ntp::ServerConfig,
    /// `[nts]`: Network Time Security (off while no certificate is set).
    pub nts: skytime_nts::NtsConfig,
    /// `[control]`: the operator socket.
    pub control: ControlConfig,
    /// `[metrics]`: the Prometheus endpoint.
    pub metrics: HttpEndpointConfig,
    /// `[web]`: the status page.
    pub web: HttpEndpointConfig,
    /// `[log]`: logging.
    pub log: LogConfig,
    /// `[alerts]`: thresholds of the built-in alerts.
    pub alerts: crate::alerts::AlertConfig,
}

/// `[control]`: the Unix socket `skytimectl` talks to.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct ControlConfig {
    /// Socket path; its directory must be writable by the daemon.
    pub socket: PathBuf,
    /// Group that may read status through the socket (mode 0660).
    pub group: Option<String>,
    /// The SD image's hat detection report, shown in status when it exists.
    pub detection_report: PathBuf,
}

impl Default for ControlConfig {
    fn default() -> Self {
        Self {
            socket: PathBuf::from("/run/skytime/skytimed.sock"),
            group: Some("skytime".to_string()),
            detection_report: PathBuf::from("/var/lib/skytime-image/hat-detection.txt"),
        }
    }
}

/// An HTTP listener that can be turned off (`[metrics]`, `[web]`). Loopback by
/// default: these expose the box's internals and belong behind a proxy or VPN.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct HttpEndpointConfig {
    /// Whether to serve at all.
    pub enabled: bool,
    /// Address and port to listen on.
    pub listen: SocketAddr,
}

impl HttpEndpointConfig {
    fn loopback(port: u16) -> Self {
        Self {
            enabled: true,
            listen: SocketAddr::from(([127, 0, 0, 1], port)),
        }
    }
    /// The address to listen on, if enabled.
    pub fn address(&self) -> Option<SocketAddr> {
        self.enabled.then_some(self.listen)
    }
}

impl Default for HttpEndpointConfig {
    fn default() -> Self {
        Self::loopback(0)
    }
}

/// Default metrics port (Prometheus exporters' conventional 9xxx range).
pub const DEFAULT_METRICS_PORT: u16 = 9123;
/// Default status page port.
pub const DEFAULT_WEB_PORT: u16 = 8123;

/// `[log]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct LogConfig {
    /// `error`, `warn`, `info`, `debug` or `trace`, or a full `tracing` filter
    /// such as `info,skytime_ntp=debug`. `RUST_LOG` overrides it.
    pub level: String,
    /// `text` (journald-friendly) or `json`.
    pub format: LogFormat,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            level: "info".to_string(),
            format: LogFormat::Text,
        }
    }
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// One human-readable line per event.
    Text,
    /// One JSON object per event, for log shippers.
    Json,
}

impl Config {
    /// Defaults with the metrics and status page on their loopback ports.
    pub fn packaged_defaults() -> Self {
        Self {
            metrics: HttpEndpointConfig::loopback(DEFAULT_METRICS_PORT),
            web: HttpEndpointConfig::loopback(DEFAULT_WEB_PORT),
            ..Self::default()
        }
    }

    /// Parses and validates a config file's text; every problem, or the config.
    pub fn parse(text: &str) -> Result<Config, Vec<ConfigProblem>> {
        // Parse over the packaged defaults: a section left out keeps them.
        #[derive(Deserialize)]
        #[serde(default)]
        struct Overlay {
            gnss: skytime_gnss::GnssConfig,
            pps: skytime_pps::PpsConfig,
            refclock: skytime_refclock::RefclockConfig,
            ntp: skytime_ntp::ServerConfig,
            nts: skytime_nts::NtsConfig,
            control: ControlConfig,
            metrics: Option<HttpEndpointConfig>,
            web: Option<HttpEndpointConfig>,
            log: LogConfig,
            alerts: crate::alerts::AlertConfig,
        }
        impl Default for Overlay {
            fn default() -> Self {
                let c = Config::default();
                Overlay {
                    gnss: c.gnss,
                    pps: c.pps,
                    refclock: c.refclock,
                    ntp: c.ntp,
                    nts: c.nts,
                    control: c.control,
                    metrics: None,
                    web: None,
                    log: c.log,
                    alerts: c.alerts,
                }
            }
        }
        let (overlay, mut problems) = deserialize_repairing::<Overlay>(text, &known_keys());
        let Some(overlay) = overlay else {
            return Err(problems);
        };
        let defaults = Config::packaged_defaults();
        let config = Config {
            gnss: overlay.gnss,
            pps: overlay.pps,
            refclock: overlay.refclock,
            ntp: overlay.ntp,
            nts: overlay.nts,
            control: overlay.control,
            // A section that is present but leaves out `listen` gets the default port, not 0.
            metrics: merge_endpoint(text, "metrics", overlay.metrics, defaults.metrics),
            web: merge_endpoint(text, "web", overlay.web, defaults.web),
            log: overlay.log,
            alerts: overlay.alerts,
        };
        problems.extend(locate_problems(text, config.validate()));
        if problems.is_empty() {
            Ok(config)
        } else {
            problems.sort_by_key(|p| (p.line.unwrap_or(usize::MAX), p.key.clone()));
            Err(problems)
        }
    }

    /// Reads and parses a config file.
    pub fn load(path: &Path) -> Result<Config, ConfigLoadError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigLoadError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Config::parse(&text).map_err(|problems| ConfigLoadError::Invalid {
            path: path.to_path_buf(),
            problems,
        })
    }

    /// Every semantic problem, as (dotted key, message).
    pub fn validate(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        let mut section = |name: &str, problems: Vec<(String, String)>| {
            out.extend(problems.into_iter().map(|(k, m)| {
                (
                    if k.is_empty() {
                        name.to_string()
                    } else {
                        format!("{name}.{k}")
                    },
                    m,
                )
            }));
        };
        section("gnss", self.gnss.validate());
        section("pps", self.pps.validate());
        section("refclock", self.refclock.validate());
        section("ntp", self.ntp.validate());
        section("nts", self.nts.validate());
        section("alerts", self.alerts.validate());
        let mut own = Vec::new();
        if !self.control.socket.is_absolute() {
            own.push((
                "control.socket".to_string(),
                "must be an absolute path".to_string(),
            ));
        }
        if let Err(e) = check_log_filter(&self.log.level) {
            own.push(("log.level".to_string(), e));
        }
        for (name, endpoint) in [("metrics", &self.metrics), ("web", &self.web)] {
            if let Some(addr) = endpoint.address()
                && self.ntp.listen.contains(&addr)
            {
                own.push((
                    format!("{name}.listen"),
                    format!("{addr} is also an NTP listen address"),
                ));
            }
        }
        if let (Some(m), Some(w)) = (self.metrics.address(), self.web.address())
            && m == w
            && m.port() != 0
        {
            own.push((
                "web.listen".to_string(),
                format!("{w} is also the metrics address"),
            ));
        }
        out.extend(own);
        out
    }
}

/// A level (`info`) or a tracing filter of `target=level` directives
/// (`info,skytime_ntp=debug`). Stricter than `EnvFilter`, which takes any word
/// as a target name and so would accept a misspelt level without complaint.
fn check_log_filter(filter: &str) -> Result<(), String> {
    const LEVELS: [&str; 6] = ["off", "error", "warn", "info", "debug", "trace"];
    let is_level = |s: &str| LEVELS.iter().any(|l| l.eq_ignore_ascii_case(s));
    let is_target = |s: &str| {
        !s.is_empty()
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
    };
    if filter.trim().is_empty() {
        return Err("is empty; use one of error, warn, info, debug, trace".to_string());
    }
    for directive in filter.split(',').map(str::trim) {
        let ok = match directive.split_once('=') {
            Some((target, level)) => is_target(target) && is_level(level),
            None => is_level(directive),
        };
        if !ok {
            return Err(format!(
                "`{directive}` is neither a level (error, warn, info, debug, trace, off) nor target=level"
            ));
        }
    }
    Ok(())
}

fn merge_endpoint(
    text: &str,
    section: &str,
    parsed: Option<HttpEndpointConfig>,
    default: HttpEndpointConfig,
) -> HttpEndpointConfig {
    let Some(mut parsed) = parsed else {
        return default;
    };
    let has_listen = toml_edit::Document::parse(text)
        .ok()
        .and_then(|d| problems::locate(&d, &format!("{section}.listen")))
        .is_some();
    if !has_listen {
        parsed.listen = default.listen;
    }
    parsed
}

/// Why a config file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigLoadError {
    /// The file could not be read.
    #[error("cannot read config file {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file has problems; each is listed.
    #[error("{} has {} problem(s):\n{}", path.display(), problems.len(), format_problems(path, problems))]
    Invalid {
        /// The file.
        path: PathBuf,
        /// Every problem found.
        problems: Vec<ConfigProblem>,
    },
}

/// `FILE:LINE: key: message`, one per line, as compilers print them.
pub fn format_problems(path: &Path, problems: &[ConfigProblem]) -> String {
    problems
        .iter()
        .map(|p| match p.line {
            Some(line) => format!(
                "{}:{line}: {}{}",
                path.display(),
                if p.key.is_empty() {
                    String::new()
                } else {
                    format!("{}: ", p.key)
                },
                p.message
            ),
            None => format!("{}: {p}", path.display()),
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Every key the reference config names, commented-out optional keys included.
pub fn known_keys() -> Vec<String> {
    let mut keys = Vec::new();
    let mut section = String::new();
    for line in REFERENCE_CONFIG.lines() {
        let line = line.trim().trim_start_matches('#').trim();
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            if name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.')
            {
                section = name.to_string();
                keys.push(section.clone());
            }
            continue;
        }
        if let Some((key, _)) = line.split_once('=') {
            let key = key.trim();
            if !key.is_empty() && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                keys.push(if section.is_empty() {
                    key.to_string()
                } else {
                    format!("{section}.{key}")
                });
            }
        }
    }
    keys
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reference_config_is_valid() {
        if let Err(problems) = Config::parse(REFERENCE_CONFIG) {
            panic!(
                "{}",
                format_problems(Path::new("config/skytime.toml"), &problems)
            );
        }
    }

    #[test]
    fn every_commented_key_in_the_reference_config_is_real() {
        // Uncomment every `# key = value` line and the file must still be valid.
        // Two example values depend on the machine: the pivot may not predate
        // this build, and the keyfile must exist.
        let keyfile = std::env::temp_dir().join(format!("skytime-ref-keys-{}", std::process::id()));
        std::fs::write(&keyfile, "1 AES128 HEX:000102030405060708090a0b0c0d0e0f\n")
            .expect("write keyfile");
        // And the NTS certificate and key must exist and match.
        let nts_key = rcgen::KeyPair::generate().expect("key");
        let nts_cert = rcgen::CertificateParams::new(vec!["localhost".to_string()])
            .and_then(|p| p.self_signed(&nts_key))
            .expect("certificate");
        let nts_cert_file = keyfile.with_extension("crt");
        let nts_key_file = keyfile.with_extension("key");
        std::fs::write(&nts_cert_file, nts_cert.pem()).expect("write certificate");
        std::fs::write(&nts_key_file, nts_key.serialize_pem()).expect("write key");
        let reference = REFERENCE_CONFIG
            .replace("/etc/skytime/nts.crt", &nts_cert_file.display().to_string())
            .replace("/etc/skytime/nts.key", &nts_key_file.display().to_string())
            .replace("/etc/skytime/ntp.keys", &keyfile.display().to_string())
            .replace(
                "\"2026-01-01\"",
                &format!("\"{}\"", skytime_gnss::build_date()),
            );
        let uncommented: String = reference
            .lines()
            .map(|l| {
                let t = l.trim_start();
                match t.strip_prefix("# ") {
                    Some(rest)
                        if rest.split_once('=').is_some_and(|(k, _)| {
                            let k = k.trim();
                            !k.is_empty()
                                && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                        }) =>
                    {
                        rest.to_string()
                    }
                    _ => l.to_string(),
                }
            })
            .collect::<Vec<_>>()
            .join("\n");
        let result = Config::parse(&uncommented);
        let _ = std::fs::remove_file(&keyfile);
        let _ = std::fs::remove_file(&nts_cert_file);
        let _ = std::fs::remove_file(&nts_key_file);
        if let Err(problems) = result {
            panic!(
                "{}",
                format_problems(Path::new("config/skytime.toml (uncommented)"), &problems)
            );
        }
    }

    #[test]
    fn log_filters_are_checked_strictly() {
        for ok in [
            "info",
            "DEBUG",
            "info,skytime_ntp=debug",
            "warn,skytime_refclock::discipline=trace",
        ] {
            assert!(check_log_filter(ok).is_ok(), "{ok}");
        }
        for bad in ["", "loud", "infoo", "info,ntp=lots", "=debug", "info;debug"] {
            assert!(check_log_filter(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn an_empty_file_gives_packaged_defaults() {
        let c = Config::parse("").expect("empty config is valid");
        assert_eq!(
            c.metrics.address(),
            Some(SocketAddr::from(([127, 0, 0, 1], DEFAULT_METRICS_PORT)))
        );
        assert_eq!(
            c.web.address(),
            Some(SocketAddr::from(([127, 0, 0, 1], DEFAULT_WEB_PORT)))
        );
    }

    #[test]
    fn a_typo_names_the_key_its_line_and_the_fix() {
        let text = "[gnss]\ndevice = \"/dev/serial0\"\nbuad = 9600\n";
        let problems = Config::parse(text).expect_err("typo");
        let shown = format_problems(Path::new("skytime.toml"), &problems);
        assert!(
            shown.contains("skytime.toml:3: gnss.buad: unknown key (did you mean `gnss.baud`?)"),
            "{shown}"
        );
    }

    #[test]
    fn several_problems_are_all_reported() {
        let text = "[gnss]\nbaud = 12\n[ntp]\nlisten = [\"not an address\"]\n[log]\nlevel = \"loud!!\"\nformat = \"xml\"\n[bogus]\n";
        let problems = Config::parse(text).expect_err("many problems");
        let keys: Vec<&str> = problems.iter().map(|p| p.key.as_str()).collect();
        for key in [
            "gnss.baud",
            "ntp.listen",
            "log.level",
            "log.format",
            "bogus",
        ] {
            assert!(keys.contains(&key), "{key} missing from {problems:#?}");
        }
    }

    #[test]
    fn the_ubx_config_interface_is_checked() {
        let ok = "[gnss.receiver]\nprotocol = \"ubx\"\nubx_config_interface = \"valset\"\n";
        assert!(Config::parse(ok).is_ok());
        for (text, says) in [
            (
                "[gnss.receiver]\nprotocol = \"ubx\"\nubx_config_interface = \"cfg\"\n",
                "unknown variant",
            ),
            (
                "[gnss.receiver]\nprotocol = \"pmtk\"\nubx_config_interface = \"legacy\"\n",
                "u-blox receivers only",
            ),
        ] {
            let problems = Config::parse(text).expect_err(text);
            assert!(
                problems
                    .iter()
                    .any(|p| p.key == "gnss.receiver.ubx_config_interface"
                        && p.message.contains(says)),
                "{problems:#?}"
            );
        }
    }
}
