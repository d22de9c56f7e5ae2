//! TLS for kvcli and kvbench: the options redis-cli has (`--tls`, `--cacert`, `--cert`,
//! `--key`, `--sni`, `--insecure`) and the rustls client configuration built from them.
//!
//! Unlike redis-cli, the server's certificate must name the host connected to (or the
//! `--sni` name): rustls always checks it. `--insecure` skips every check of the server's
//! certificate (the handshake's signatures are still verified).

use std::path::PathBuf;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};

/// How to connect with TLS.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsOptions {
    /// CA certificates (PEM) to trust; `None`: the system's.
    pub cacert: Option<PathBuf>,
    /// Client certificate (PEM) to present, with `key`.
    pub cert: Option<PathBuf>,
    /// Private key (PEM) of `cert`.
    pub key: Option<PathBuf>,
    /// Name to ask for (Server Name Indication) and to check the certificate against;
    /// `None`: the host connected to.
    pub sni: Option<String>,
    /// Accept any server certificate.
    pub insecure: bool,
}

impl TlsOptions {
    /// The rustls configuration for these options.
    ///
    /// # Errors
    ///
    /// A message for the user: a file that cannot be read or holds nothing usable, `--cert`
    /// without `--key` (or the other way round), or no CA certificate to trust.
    pub fn client_config(&self) -> Result<Arc<ClientConfig>, String> {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let builder = ClientConfig::builder_with_provider(Arc::clone(&provider))
            .with_safe_default_protocol_versions()
            .map_err(|err| err.to_string())?;
        let builder = if self.insecure {
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(AnyServerCertificate(provider)))
        } else {
            builder.with_root_certificates(self.roots()?)
        };
        let config = match (&self.cert, &self.key) {
            (None, None) => builder.with_no_client_auth(),
            (Some(cert), Some(key)) => {
                let chain = CertificateDer::pem_file_iter(cert)
                    .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
                    .map_err(|err| format!("--cert {}: {err}", cert.display()))?;
                if chain.is_empty() {
                    return Err(format!("--cert {}: no certificate found", cert.display()));
                }
                let key = PrivateKeyDer::from_pem_file(key)
                    .map_err(|err| format!("--key {}: {err}", key.display()))?;
                builder
                    .with_client_auth_cert(chain, key)
                    .map_err(|err| format!("--cert / --key: {err}"))?
            }
            _ => return Err("--cert and --key go together".to_owned()),
        };
        Ok(Arc::new(config))
    }

    /// The name to ask for and verify: `--sni`, else `host` (a name or an IP address).
    ///
    /// # Errors
    ///
    /// A name that is neither a valid DNS name nor an IP address.
    pub fn server_name(&self, host: &str) -> Result<ServerName<'static>, String> {
        let name = self.sni.as_deref().unwrap_or(host);
        ServerName::try_from(name.to_owned())
            .map_err(|_| format!("'{name}' is not a valid TLS server name"))
    }

    fn roots(&self) -> Result<RootCertStore, String> {
        let mut roots = RootCertStore::empty();
        match &self.cacert {
            Some(path) => {
                let certs = CertificateDer::pem_file_iter(path)
                    .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
                    .map_err(|err| format!("--cacert {}: {err}", path.display()))?;
                for cert in certs {
                    roots
                        .add(cert)
                        .map_err(|err| format!("--cacert {}: {err}", path.display()))?;
                }
            }
            None => {
                let found = rustls_native_certs::load_native_certs();
                roots.add_parsable_certificates(found.certs);
            }
        }
        if roots.is_empty() {
            return Err("no CA certificate to verify the server with (use --cacert)".to_owned());
        }
        Ok(roots)
    }
}

/// `--insecure`: any certificate is accepted; the handshake's signatures are still checked,
/// so the peer holds the key of the certificate it sent.
#[derive(Debug)]
struct AnyServerCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AnyServerCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_come_from_sni_or_the_host() {
        let options = TlsOptions::default();
        assert_eq!(
            options.server_name("127.0.0.1").ok(),
            ServerName::try_from("127.0.0.1").ok()
        );
        let options = TlsOptions {
            sni: Some("cache.example".to_owned()),
            ..TlsOptions::default()
        };
        assert_eq!(
            options.server_name("127.0.0.1").ok(),
            ServerName::try_from("cache.example").ok()
        );
        let options = TlsOptions {
            sni: Some("not a name".to_owned()),
            ..TlsOptions::default()
        };
        assert!(options.server_name("localhost").is_err());
    }

    #[test]
    fn files_are_checked() {
        let options = TlsOptions {
            cacert: Some("/nonexistent/ca.crt".into()),
            ..TlsOptions::default()
        };
        let err = options.client_config().expect_err("missing file");
        assert!(err.contains("/nonexistent/ca.crt"), "{err}");
        let options = TlsOptions {
            insecure: true,
            cert: Some("/nonexistent/client.crt".into()),
            ..TlsOptions::default()
        };
        assert!(options.client_config().is_err(), "--cert without --key");
        let options = TlsOptions {
            insecure: true,
            ..TlsOptions::default()
        };
        assert!(options.client_config().is_ok());
    }
}
