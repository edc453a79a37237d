//! Trust for outgoing TLS (SPEC §10): the web PKI roots, plus the operator's extra trust anchors
//! from `CAPUTCHIN_TLS_EXTRA_ROOTS` (a PEM file), for the SMTP relay and for webhooks alike.
//! Without extra roots a private or self-signed certificate fails as `tls`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject as _;

/// The operator's extra trust anchors, as read at start.
#[derive(Clone, PartialEq, Eq)]
pub struct ExtraRoots {
    /// The PEM file they came from.
    pub path: PathBuf,
    /// The file's bytes (lettre reads its roots from PEM).
    pub pem: Vec<u8>,
    /// The certificates, DER.
    pub certs: Vec<CertificateDer<'static>>,
}

impl std::fmt::Debug for ExtraRoots {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExtraRoots")
            .field("path", &self.path)
            .field("certificates", &self.certs.len())
            .finish()
    }
}

impl ExtraRoots {
    /// Reads a PEM file of one or more certificates; every one must be usable as a trust anchor.
    pub fn read(path: &Path) -> Result<ExtraRoots, String> {
        let pem =
            std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let certs = CertificateDer::pem_slice_iter(&pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| format!("{} is not a PEM file of certificates: {e}", path.display()))?;
        if certs.is_empty() {
            return Err(format!("{} holds no PEM certificate", path.display()));
        }
        let mut store = rustls::RootCertStore::empty();
        for cert in &certs {
            store
                .add(cert.clone())
                .map_err(|e| format!("a certificate in {} is not usable: {e}", path.display()))?;
        }
        Ok(ExtraRoots {
            path: path.to_owned(),
            pem,
            certs,
        })
    }
}

/// The roots every outgoing TLS connection trusts: the web PKI's and the extra ones.
pub fn root_store(extra: Option<&ExtraRoots>) -> rustls::RootCertStore {
    let mut store = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    if let Some(extra) = extra {
        // Each one was checked when the settings were read.
        let _ = store.add_parsable_certificates(extra.certs.iter().cloned());
    }
    store
}

/// A rustls client configuration with those roots, the ring provider and its default protocol
/// versions; `alpn` names the application protocols offered (e.g. `http/1.1`).
pub fn client_config(
    extra: Option<&ExtraRoots>,
    alpn: &[&[u8]],
) -> Result<Arc<rustls::ClientConfig>, rustls::Error> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(root_store(extra))
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Ok(Arc::new(config))
}
