//! A throwaway certificate authority for NTS tests: a CA and server
//! certificates for 127.0.0.1/localhost, written as PEM files.

use anyhow::{Context, Result};
use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
use std::path::{Path, PathBuf};

/// A CA that signs server certificates.
pub struct TestCa {
    key: KeyPair,
    params: CertificateParams,
    /// The CA certificate, PEM (what a client trusts).
    pub pem: String,
}

impl TestCa {
    /// A fresh CA.
    pub fn new() -> Result<TestCa> {
        let key = KeyPair::generate().context("CA key")?;
        let mut params = CertificateParams::new(Vec::<String>::new()).context("CA params")?;
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "skytime test CA");
        let pem = params.self_signed(&key).context("self-sign")?.pem();
        Ok(TestCa { key, params, pem })
    }

    /// Writes the CA certificate to `path` (for `ntstrustedcerts`).
    pub fn write_ca(&self, path: &Path) -> Result<()> {
        std::fs::write(path, &self.pem).with_context(|| format!("write {}", path.display()))
    }

    /// Issues a certificate for 127.0.0.1 and localhost and writes it and
    /// its key to `cert` and `key` atomically (rename), as a renewal would.
    pub fn issue_to(&self, cert: &Path, key: &Path, common_name: &str) -> Result<()> {
        let server_key = KeyPair::generate().context("server key")?;
        let mut params =
            CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()])
                .context("server params")?;
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, common_name);
        let issuer = Issuer::from_params(&self.params, &self.key);
        let signed = params.signed_by(&server_key, &issuer).context("sign")?;
        write_atomically(key, &server_key.serialize_pem())?;
        write_atomically(cert, &signed.pem())
    }
}

fn write_atomically(path: &Path, text: &str) -> Result<()> {
    let mut temporary: PathBuf = path.to_path_buf();
    temporary.set_extension("new");
    std::fs::write(&temporary, text).with_context(|| format!("write {}", temporary.display()))?;
    std::fs::rename(&temporary, path).with_context(|| format!("rename to {}", path.display()))
}
