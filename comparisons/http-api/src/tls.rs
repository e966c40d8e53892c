//! TLS for the HTTP stacks: the server's certificate ([`ServerTls`], `HTTP_TLS_CERT` and
//! `HTTP_TLS_KEY`) and what a client trusts ([`client_config`]: a CA file of one's own, else the
//! system's), on rustls with ring, the provider async-nats and redis already bring.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

/// What can stop a server from serving, or a client from being built.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The TLS settings cannot be used (the message names the variable and the file).
    #[error("{0}")]
    Tls(String),
    /// Listening failed.
    #[error("serving: {0}")]
    Io(#[from] std::io::Error),
}

fn unreadable(variable: &str, path: &Path, problem: &dyn std::fmt::Display) -> ServeError {
    ServeError::Tls(format!("{variable}: {}: {problem}", path.display()))
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The certificates of a PEM file (`variable` names it in errors).
fn certificates(variable: &str, path: &Path) -> Result<Vec<CertificateDer<'static>>, ServeError> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
        .and_then(|certs| certs.collect::<Result<_, _>>())
        .map_err(|e| unreadable(variable, path, &e))?;
    if chain.is_empty() {
        return Err(unreadable(variable, path, &"no certificate in it"));
    }
    Ok(chain)
}

/// A client configuration trusting the CAs in `ca` (a PEM file; `variable` names it in errors),
/// or the system's when there is none.
pub fn client_config(ca: Option<&Path>, variable: &str) -> Result<rustls::ClientConfig, ServeError> {
    let mut roots = rustls::RootCertStore::empty();
    match ca {
        Some(ca) => {
            for certificate in certificates(variable, ca)? {
                roots.add(certificate).map_err(|e| unreadable(variable, ca, &e))?;
            }
        }
        None => {
            let found = rustls_native_certs::load_native_certs();
            roots.add_parsable_certificates(found.certs);
        }
    }
    rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map(|builder| builder.with_root_certificates(roots).with_no_client_auth())
        .map_err(|e| ServeError::Tls(format!("{variable}: {e}")))
}

/// A server certificate chain and its key, PEM files.
#[derive(Debug, Clone)]
pub struct ServerTls {
    /// The certificate, then any intermediates.
    pub cert: PathBuf,
    /// Its private key.
    pub key: PathBuf,
}

impl ServerTls {
    /// `HTTP_TLS_CERT` and `HTTP_TLS_KEY`, when both are set; `None` when neither is (plain HTTP).
    pub fn from_env() -> Result<Option<Self>, ServeError> {
        let var = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty()).map(PathBuf::from);
        match (var("HTTP_TLS_CERT"), var("HTTP_TLS_KEY")) {
            (Some(cert), Some(key)) => Ok(Some(Self { cert, key })),
            (None, None) => Ok(None),
            (Some(_), None) => Err(ServeError::Tls("HTTP_TLS_CERT is set without HTTP_TLS_KEY".into())),
            (None, Some(_)) => Err(ServeError::Tls("HTTP_TLS_KEY is set without HTTP_TLS_CERT".into())),
        }
    }

    /// The acceptor, with the files read and checked now (so that a wrong file fails the start).
    pub(crate) fn acceptor(&self) -> Result<tokio_rustls::TlsAcceptor, ServeError> {
        let chain = certificates("HTTP_TLS_CERT", &self.cert)?;
        let key =
            PrivateKeyDer::from_pem_file(&self.key).map_err(|e| unreadable("HTTP_TLS_KEY", &self.key, &e))?;
        let config = rustls::ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .and_then(|builder| builder.with_no_client_auth().with_single_cert(chain, key))
            .map_err(|e| ServeError::Tls(format!("HTTP_TLS_CERT/HTTP_TLS_KEY: {e}")))?;
        Ok(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
    }
}
