//! The `[nts]` section. NTS is off while `certificate` is unset.

use crate::keyring::{KeyRole, RotationPolicy};
use serde::Deserialize;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

/// The IANA port of NTS-KE.
pub const DEFAULT_KE_PORT: u16 = 4460;

/// `[nts]`: certificate, NTS-KE listener, cookie keys.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct NtsConfig {
    /// PEM certificate chain, leaf first. Unset: NTS is off.
    pub certificate: Option<PathBuf>,
    /// PEM private key of the certificate (PKCS#8, PKCS#1 or SEC1).
    pub private_key: Option<PathBuf>,
    /// Addresses for NTS-KE; an address without a port gets 4460.
    pub ke_listen: Vec<String>,
    /// The cookie key file. Unset: `nts-cookie-keys` in the state directory.
    pub cookie_key_file: Option<PathBuf>,
    /// `writer` (creates and rotates the file) or `reader` (a fleet member
    /// that follows a file another box writes).
    pub cookie_key_role: CookieKeyRole,
    /// Hours between cookie key rotations.
    pub cookie_key_rotation_hours: u64,
    /// Keys kept (the current one included): cookies stay valid for about
    /// `cookie_key_rotation_hours * cookie_keys_kept` hours.
    pub cookie_keys_kept: usize,
    /// NTS-KE connections served at once; more are closed at accept.
    pub ke_max_connections: usize,
    /// Deadline for one NTS-KE exchange (handshake, request, response), ms.
    pub ke_timeout_ms: u64,
}

/// `cookie_key_role` in the file.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CookieKeyRole {
    /// Creates, rotates and saves the key file.
    Writer,
    /// Reads a key file that another box writes.
    Reader,
}

impl Default for NtsConfig {
    fn default() -> Self {
        NtsConfig {
            certificate: None,
            private_key: None,
            ke_listen: vec![
                SocketAddr::from((Ipv4Addr::UNSPECIFIED, DEFAULT_KE_PORT)).to_string(),
                SocketAddr::from((Ipv6Addr::UNSPECIFIED, DEFAULT_KE_PORT)).to_string(),
            ],
            cookie_key_file: None,
            cookie_key_role: CookieKeyRole::Writer,
            cookie_key_rotation_hours: 24,
            cookie_keys_kept: 7,
            ke_max_connections: 64,
            ke_timeout_ms: 5_000,
        }
    }
}

impl NtsConfig {
    /// Whether NTS is served at all.
    pub fn enabled(&self) -> bool {
        self.certificate.is_some()
    }

    /// `ke_listen` resolved: `ADDR:PORT`, `[V6]:PORT`, or a bare address
    /// (port 4460).
    pub fn ke_addresses(&self) -> Result<Vec<SocketAddr>, String> {
        self.ke_listen
            .iter()
            .map(|text| {
                text.parse::<SocketAddr>()
                    .or_else(|_| {
                        text.trim_start_matches('[')
                            .trim_end_matches(']')
                            .parse::<IpAddr>()
                            .map(|ip| SocketAddr::new(ip, DEFAULT_KE_PORT))
                    })
                    .map_err(|_| format!("`{text}` is neither ADDR:PORT nor an address"))
            })
            .collect()
    }

    /// The rotation schedule.
    pub fn rotation(&self) -> RotationPolicy {
        RotationPolicy {
            rotate_every: Duration::from_secs(self.cookie_key_rotation_hours.saturating_mul(3600)),
            keep: self.cookie_keys_kept,
        }
    }

    /// The key file role.
    pub fn role(&self) -> KeyRole {
        match self.cookie_key_role {
            CookieKeyRole::Writer => KeyRole::Writer,
            CookieKeyRole::Reader => KeyRole::Reader,
        }
    }

    /// Every semantic problem as (key relative to `[nts]`, message). With a
    /// certificate set, loads it and checks that the key belongs to it.
    pub fn validate(&self) -> Vec<(String, String)> {
        let mut errs = Vec::new();
        let mut err = |k: &str, m: String| errs.push((k.to_string(), m));
        match self.ke_addresses() {
            Ok(addrs) if addrs.is_empty() && self.enabled() => {
                err("ke_listen", "at least one address is needed".into())
            }
            Ok(_) => {}
            Err(e) => err("ke_listen", e),
        }
        if !(1..=8760).contains(&self.cookie_key_rotation_hours) {
            err(
                "cookie_key_rotation_hours",
                format!("{} is outside 1..=8760", self.cookie_key_rotation_hours),
            );
        }
        if !(2..=64).contains(&self.cookie_keys_kept) {
            err(
                "cookie_keys_kept",
                format!("{} is outside 2..=64", self.cookie_keys_kept),
            );
        }
        if !(1..=10_000).contains(&self.ke_max_connections) {
            err(
                "ke_max_connections",
                format!("{} is outside 1..=10000", self.ke_max_connections),
            );
        }
        if !(100..=60_000).contains(&self.ke_timeout_ms) {
            err(
                "ke_timeout_ms",
                format!("{} is outside 100..=60000", self.ke_timeout_ms),
            );
        }
        match (&self.certificate, &self.private_key) {
            (Some(_), None) => err("private_key", "needed when certificate is set".into()),
            (None, Some(_)) => err(
                "certificate",
                "needed when private_key is set (NTS is off without it)".into(),
            ),
            #[cfg(feature = "ke-server")]
            (Some(cert), Some(key)) => {
                if let Err(e) = crate::tls::load(cert, key) {
                    err("certificate", e.to_string());
                }
            }
            _ => {}
        }
        errs
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_off_and_valid() {
        let c = NtsConfig::default();
        assert!(!c.enabled());
        assert!(c.validate().is_empty());
        assert_eq!(c.ke_addresses().expect("parses")[0].port(), 4460);
    }

    #[test]
    fn bare_addresses_get_port_4460_and_junk_is_named() {
        let c: NtsConfig =
            toml::from_str(r#"ke_listen = ["127.0.0.1", "[::1]", "[::1]:5000", "10.0.0.1:44"]"#)
                .expect("parses");
        let ports: Vec<u16> = c
            .ke_addresses()
            .expect("ok")
            .iter()
            .map(|a| a.port())
            .collect();
        assert_eq!(ports, [4460, 4460, 5000, 44]);
        let bad: NtsConfig =
            toml::from_str(r#"ke_listen = ["host.example:4460"]"#).expect("parses");
        assert!(
            bad.validate()
                .iter()
                .any(|(k, m)| k == "ke_listen" && m.contains("host.example"))
        );
    }

    #[test]
    fn a_key_that_does_not_belong_to_the_certificate_is_reported() {
        let dir = std::env::temp_dir().join(format!("skytime-nts-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let key = rcgen::KeyPair::generate().expect("key");
        let other = rcgen::KeyPair::generate().expect("key");
        let cert = rcgen::CertificateParams::new(vec!["localhost".to_string()])
            .and_then(|p| p.self_signed(&key))
            .expect("certificate");
        let (cert_file, key_file, other_file) =
            (dir.join("c.pem"), dir.join("k.pem"), dir.join("o.pem"));
        std::fs::write(&cert_file, cert.pem()).expect("write");
        std::fs::write(&key_file, key.serialize_pem()).expect("write");
        std::fs::write(&other_file, other.serialize_pem()).expect("write");
        let config = |key: &std::path::Path| NtsConfig {
            certificate: Some(cert_file.clone()),
            private_key: Some(key.to_path_buf()),
            ..NtsConfig::default()
        };
        assert!(config(&key_file).validate().is_empty());
        let problems = config(&other_file).validate();
        assert!(
            problems
                .iter()
                .any(|(k, m)| k == "certificate" && m.contains("does not fit")),
            "{problems:?}"
        );
        std::fs::remove_dir_all(&dir).expect("cleanup");
    }

    #[test]
    fn half_configured_certificates_and_missing_files_are_reported() {
        let c: NtsConfig =
            toml::from_str(r#"certificate = "/nonexistent/nts.crt""#).expect("parses");
        assert!(c.validate().iter().any(|(k, _)| k == "private_key"));
        let c: NtsConfig = toml::from_str(
            "certificate = \"/nonexistent/nts.crt\"\nprivate_key = \"/nonexistent/nts.key\"",
        )
        .expect("parses");
        let problems = c.validate();
        assert!(
            problems
                .iter()
                .any(|(k, m)| k == "certificate" && m.contains("/nonexistent/nts.crt")),
            "{problems:?}"
        );
    }
}
