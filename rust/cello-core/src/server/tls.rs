//! TLS for the native server: loading the certificate, key and client CA from
//! PEM files into a `rustls::ServerConfig`, and the certificate store a
//! reload (`SIGHUP`) swaps without touching open connections.
//!
//! Every transport that speaks TLS builds its `rustls::ServerConfig` here
//! ([`load_server_config`], or [`build_server_config`] with a shared
//! [`CertStore`] so one reload reaches them all), with rustls on the `ring`
//! backend (the HTTP client's too).

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use rustls::crypto::CryptoProvider;
use rustls::server::{ClientHello, ResolvesServerCert, WebPkiClientVerifier};
use rustls::sign::CertifiedKey;
use rustls::{RootCertStore, SupportedProtocolVersion};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

/// What a TLS listener serves, as given by the user (`TlsConfig`).
#[derive(Debug, Clone)]
pub struct TlsSettings {
    pub cert_path: PathBuf,
    pub key_path: PathBuf,
    /// CA certificates (PEM) client certificates are checked against; with
    /// it a client may present a certificate, and must with `require_client_cert`.
    pub ca_path: Option<PathBuf>,
    /// `"1.2"` or `"1.3"`.
    pub min_version: String,
    pub max_version: String,
    pub require_client_cert: bool,
    /// ALPN protocols offered, most preferred first (`h2`, `http/1.1`).
    pub alpn: Vec<Vec<u8>>,
}

/// A TLS setting that cannot be served, as one line for the user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsError(pub String);

impl fmt::Display for TlsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for TlsError {}

fn error(message: impl Into<String>) -> TlsError {
    TlsError(message.into())
}

// ring's provider: deprecated in favour of aws-lc's (post-quantum key
// exchange), which would add a C toolchain build; the HTTP client uses ring too.
#[allow(deprecated)]
fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn read(what: &str, path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path)
        .map_err(|e| error(format!("cannot read TLS {what} {}: {e}", path.display())))
}

fn certificates(what: &str, path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem = read(what, path)?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| error(format!("bad PEM in TLS {what} {}: {e}", path.display())))?;
    if certs.is_empty() {
        return Err(error(format!(
            "no certificate found in TLS {what} {} (expected PEM \"BEGIN CERTIFICATE\")",
            path.display()
        )));
    }
    Ok(certs)
}

/// The certificate chain and key of `settings`, checked to belong together.
pub fn load_certified_key(settings: &TlsSettings) -> Result<Arc<CertifiedKey>, TlsError> {
    let certs = certificates("certificate", &settings.cert_path)?;
    let key_path = &settings.key_path;
    let pem = read("key", key_path)?;
    let key = PrivateKeyDer::from_pem_slice(&pem).map_err(|_| {
        error(format!(
            "no private key found in TLS key {} (expected PEM \"BEGIN PRIVATE KEY\")",
            key_path.display()
        ))
    })?;
    let signing = provider()
        .key_provider
        .load_private_key(key)
        .map_err(|e| error(format!("unusable TLS key {}: {e}", key_path.display())))?;
    let certified = CertifiedKey::new(certs, signing);
    match certified.keys_match() {
        Ok(()) | Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::Unknown)) => {}
        Err(_) => {
            return Err(error(format!(
                "the TLS key {} does not match the certificate {}",
                key_path.display(),
                settings.cert_path.display()
            )))
        }
    }
    Ok(Arc::new(certified))
}

/// The served certificate, swapped whole by [`CertStore::reload`]: a
/// handshake takes the one current when it starts, so connections already
/// open are untouched.
#[derive(Debug)]
pub struct CertStore {
    settings: TlsSettings,
    current: RwLock<Arc<CertifiedKey>>,
}

impl CertStore {
    pub fn load(settings: &TlsSettings) -> Result<Arc<Self>, TlsError> {
        Ok(Arc::new(CertStore {
            settings: settings.clone(),
            current: RwLock::new(load_certified_key(settings)?),
        }))
    }

    /// Reads the files again; on an error the current certificate stays.
    pub fn reload(&self) -> Result<(), TlsError> {
        let fresh = load_certified_key(&self.settings)?;
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = fresh;
        Ok(())
    }

    pub fn current(&self) -> Arc<CertifiedKey> {
        self.current
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

impl ResolvesServerCert for CertStore {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current())
    }
}

fn version(name: &str, value: &str) -> Result<&'static SupportedProtocolVersion, TlsError> {
    match value {
        "1.2" => Ok(&rustls::version::TLS12),
        "1.3" => Ok(&rustls::version::TLS13),
        other => Err(error(format!(
            "TLS {name} must be \"1.2\" or \"1.3\", not {other:?}"
        ))),
    }
}

/// The TLS versions from `min_version` to `max_version`.
fn versions(settings: &TlsSettings) -> Result<Vec<&'static SupportedProtocolVersion>, TlsError> {
    let min = version("min_version", &settings.min_version)?;
    let max = version("max_version", &settings.max_version)?;
    let all = [&rustls::version::TLS12, &rustls::version::TLS13];
    let from = all
        .iter()
        .position(|v| v.version == min.version)
        .unwrap_or(0);
    let to = all
        .iter()
        .position(|v| v.version == max.version)
        .unwrap_or(1);
    if from > to {
        return Err(error("TLS min_version is above max_version"));
    }
    Ok(all[from..=to].to_vec())
}

/// A `rustls::ServerConfig` for `settings`, serving the certificates of `certs`.
pub fn build_server_config(
    settings: &TlsSettings,
    certs: Arc<CertStore>,
) -> Result<rustls::ServerConfig, TlsError> {
    let provider = provider();
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&versions(settings)?)
        .map_err(|e| error(format!("unusable TLS versions: {e}")))?;
    let builder = match &settings.ca_path {
        None if settings.require_client_cert => return Err(error(
            "TLS require_client_cert needs ca_path: the CA client certificates are checked against",
        )),
        None => builder.with_no_client_auth(),
        Some(ca_path) => {
            let mut roots = RootCertStore::empty();
            for cert in certificates("CA file", ca_path)? {
                roots.add(cert).map_err(|e| {
                    error(format!(
                        "unusable CA certificate in {}: {e}",
                        ca_path.display()
                    ))
                })?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
            let verifier = if settings.require_client_cert {
                verifier
            } else {
                verifier.allow_unauthenticated()
            };
            let verifier = verifier
                .build()
                .map_err(|e| error(format!("unusable TLS CA file {}: {e}", ca_path.display())))?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let mut config = builder.with_cert_resolver(certs);
    config.alpn_protocols = settings.alpn.clone();
    Ok(config)
}

/// A `rustls::ServerConfig` for `settings`, with a certificate store of its own.
pub fn load_server_config(settings: &TlsSettings) -> Result<rustls::ServerConfig, TlsError> {
    build_server_config(settings, CertStore::load(settings)?)
}

/// What a request learns of its connection's TLS session (a request
/// extension on connections that came in over TLS).
#[derive(Debug, Clone)]
pub struct PeerTls {
    /// `0x0303` for TLS 1.2, `0x0304` for TLS 1.3 (the ASGI TLS extension's numbers).
    pub version: u16,
    /// The IANA number of the cipher suite.
    pub cipher_suite: u16,
    /// The client's certificates (DER), its own first; empty when it sent none.
    pub client_chain: Vec<CertificateDer<'static>>,
}

impl PeerTls {
    pub fn of(conn: &rustls::ServerConnection) -> Self {
        PeerTls {
            version: conn.protocol_version().map(u16::from).unwrap_or(0),
            cipher_suite: conn
                .negotiated_cipher_suite()
                .map(|s| u16::from(s.suite()))
                .unwrap_or(0),
            client_chain: conn
                .peer_certificates()
                .map(|c| c.iter().map(|c| c.clone().into_owned()).collect())
                .unwrap_or_default(),
        }
    }
}

impl PeerTls {
    /// The session an ASGI server describes in `scope["extensions"]["tls"]`
    /// (door 2): its PEM client chain, version and cipher suite. Entries
    /// that are not PEM certificates are left out.
    pub fn from_asgi(chain: &[String], version: u16, cipher_suite: u16) -> Self {
        PeerTls {
            version,
            cipher_suite,
            client_chain: chain
                .iter()
                .filter_map(|pem| CertificateDer::from_pem_slice(pem.as_bytes()).ok())
                .collect(),
        }
    }
}

/// A DER certificate as PEM text.
pub fn to_pem(der: &[u8]) -> String {
    use base64::Engine;
    let text = base64::engine::general_purpose::STANDARD.encode(der);
    let mut pem = String::with_capacity(text.len() + text.len() / 64 + 64);
    pem.push_str("-----BEGIN CERTIFICATE-----\n");
    for line in text.as_bytes().chunks(64) {
        pem.push_str(std::str::from_utf8(line).unwrap_or_default());
        pem.push('\n');
    }
    pem.push_str("-----END CERTIFICATE-----\n");
    pem
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(cert: &str, key: &str) -> TlsSettings {
        TlsSettings {
            cert_path: cert.into(),
            key_path: key.into(),
            ca_path: None,
            min_version: "1.2".into(),
            max_version: "1.3".into(),
            require_client_cert: false,
            alpn: vec![],
        }
    }

    #[test]
    fn missing_files_are_named_in_the_error() {
        let err = load_server_config(&settings("/nonexistent/cert.pem", "/nonexistent/key.pem"))
            .unwrap_err();
        assert!(
            err.0
                .starts_with("cannot read TLS certificate /nonexistent/cert.pem"),
            "{err}"
        );
    }

    #[test]
    fn a_file_without_a_certificate_is_refused() {
        let dir = std::env::temp_dir().join(format!("cello-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let cert = dir.join("empty.pem");
        std::fs::write(&cert, "not a certificate\n").unwrap();
        let err =
            load_server_config(&settings(cert.to_str().unwrap(), "/nonexistent")).unwrap_err();
        assert!(
            err.0.starts_with("no certificate found in TLS certificate"),
            "{err}"
        );
    }

    #[test]
    fn versions_span_min_to_max() {
        let mut s = settings("c", "k");
        assert_eq!(versions(&s).unwrap().len(), 2);
        s.min_version = "1.3".into();
        assert_eq!(versions(&s).unwrap().len(), 1);
        s.max_version = "1.2".into();
        assert!(versions(&s).is_err());
        s.min_version = "1.1".into();
        assert!(versions(&s).unwrap_err().0.contains("min_version"));
    }

    #[test]
    fn an_asgi_chain_round_trips_through_pem() {
        let der = vec![0x30u8, 0x03, 0x02, 0x01, 0x01];
        let peer = PeerTls::from_asgi(&[to_pem(&der), "junk".into()], 0x0304, 0x1301);
        assert_eq!(peer.client_chain.len(), 1);
        assert_eq!(peer.client_chain[0].as_ref(), &der[..]);
    }

    #[test]
    fn pem_lines_are_64_characters() {
        let pem = to_pem(&[7u8; 100]);
        assert!(pem.starts_with("-----BEGIN CERTIFICATE-----\n"));
        assert!(pem.lines().all(|l| l.len() <= 64));
        assert!(pem.ends_with("-----END CERTIFICATE-----\n"));
    }
}
