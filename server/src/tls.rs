//! TLS: the settings (`tls-cert-file`, `tls-key-file`, `tls-ca-cert-file`,
//! `tls-auth-clients`, `tls-protocols`), the rustls server configuration built from them, and
//! the handshake of an accepted connection.
//!
//! The configuration in force is an `Arc<ServerConfig>` behind a lock that the accept loop
//! reads once per TLS connection. CONFIG SET builds a complete new configuration from the
//! changed settings (reading the files again) and swaps it in only if that succeeded, so a
//! bad file leaves the server serving with the old one; connections already open keep the
//! configuration they were accepted with.
//!
//! The handshake runs on the connection's own thread (not in the accept loop), bounded by
//! [`HANDSHAKE_TIMEOUT`]: a client that connects and says nothing cannot hold a connection
//! slot for longer.

use std::net::SocketAddr;
use std::time::Duration;

use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};
use tokio::net::TcpStream;
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;
use tracing::debug;

use crate::config::{Config, TlsAuthClients};
use crate::shared::Shared;
use std::sync::Arc;

use crate::sync::Mutex;

/// Longest a client may take to complete its TLS handshake after connecting.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The TLS settings, as CONFIG GET shows them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsSettings {
    /// `tls-cert-file`: the certificate chain (PEM).
    pub cert_file: String,
    /// `tls-key-file`: its private key (PEM).
    pub key_file: String,
    /// `tls-ca-cert-file`: CA certificates for client certificates (PEM).
    pub ca_cert_file: String,
    /// `tls-auth-clients`.
    pub auth_clients: TlsAuthClients,
    /// `tls-protocols`: "" (TLS 1.2 and 1.3) or a list of versions.
    pub protocols: String,
}

impl TlsSettings {
    /// The settings given at start-up.
    pub fn from_config(config: &Config) -> TlsSettings {
        TlsSettings {
            cert_file: config.tls_cert_file.clone(),
            key_file: config.tls_key_file.clone(),
            ca_cert_file: config.tls_ca_cert_file.clone(),
            auth_clients: config.tls_auth_clients,
            protocols: config.tls_protocols.clone(),
        }
    }

    /// Applies one CONFIG SET pair (`name` is one of [`SETTABLE`]).
    ///
    /// # Errors
    ///
    /// An unknown name, or a value that is not valid for it (the files are only read by
    /// [`TlsSettings::build`]).
    pub fn set(&mut self, name: &str, value: &[u8]) -> Result<(), String> {
        let text = || {
            std::str::from_utf8(value)
                .map(str::to_owned)
                .map_err(|_| "argument must be a valid UTF-8 string".to_owned())
        };
        match name {
            "tls-cert-file" => self.cert_file = text()?,
            "tls-key-file" => self.key_file = text()?,
            "tls-ca-cert-file" => self.ca_cert_file = text()?,
            "tls-auth-clients" => {
                self.auth_clients = TlsAuthClients::parse(value).ok_or(
                    "argument(s) must be one of the following: no, yes, optional".to_owned(),
                )?;
            }
            "tls-protocols" => {
                let protocols = text()?;
                parse_protocols(&protocols)?;
                self.protocols = protocols;
            }
            _ => return Err(format!("unknown TLS parameter '{name}'")),
        }
        Ok(())
    }

    /// Reads the files and builds the rustls configuration these settings describe.
    ///
    /// # Errors
    ///
    /// A file that is missing or holds no usable certificate or key, a key that does not
    /// belong to the certificate, `tls-auth-clients` yes or optional without a CA file, or
    /// an unsupported protocol name.
    pub fn build(&self) -> Result<Arc<ServerConfig>, String> {
        let versions = parse_protocols(&self.protocols)?;
        if self.cert_file.is_empty() || self.key_file.is_empty() {
            return Err("tls-cert-file and tls-key-file are both required".to_owned());
        }
        let chain = CertificateDer::pem_file_iter(&self.cert_file)
            .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
            .map_err(|err| format!("tls-cert-file {}: {err}", self.cert_file))?;
        if chain.is_empty() {
            return Err(format!(
                "tls-cert-file {}: no certificate found",
                self.cert_file
            ));
        }
        let key = PrivateKeyDer::from_pem_file(&self.key_file)
            .map_err(|err| format!("tls-key-file {}: {err}", self.key_file))?;
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let builder = ServerConfig::builder_with_provider(Arc::clone(&provider))
            .with_protocol_versions(&versions)
            .map_err(|err| format!("tls-protocols: {err}"))?;
        let builder = match self.auth_clients {
            TlsAuthClients::No => builder.with_no_client_auth(),
            mode => {
                if self.ca_cert_file.is_empty() {
                    return Err(format!(
                        "tls-ca-cert-file is required to verify client certificates \
                         (tls-auth-clients {})",
                        mode.name()
                    ));
                }
                let mut roots = RootCertStore::empty();
                for cert in CertificateDer::pem_file_iter(&self.ca_cert_file)
                    .map_err(|err| format!("tls-ca-cert-file {}: {err}", self.ca_cert_file))?
                {
                    let cert = cert
                        .map_err(|err| format!("tls-ca-cert-file {}: {err}", self.ca_cert_file))?;
                    roots
                        .add(cert)
                        .map_err(|err| format!("tls-ca-cert-file {}: {err}", self.ca_cert_file))?;
                }
                let verifier =
                    WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
                let verifier = if mode == TlsAuthClients::Optional {
                    verifier.allow_unauthenticated()
                } else {
                    verifier
                };
                let verifier = verifier
                    .build()
                    .map_err(|err| format!("tls-ca-cert-file {}: {err}", self.ca_cert_file))?;
                builder.with_client_cert_verifier(verifier)
            }
        };
        let config = builder
            .with_single_cert(chain, key)
            .map_err(|err| format!("tls-cert-file / tls-key-file: {err}"))?;
        Ok(Arc::new(config))
    }
}

/// The TLS parameters CONFIG SET changes (`tls-port` is fixed at start-up).
pub const SETTABLE: &[&str] = &[
    "tls-cert-file",
    "tls-key-file",
    "tls-ca-cert-file",
    "tls-auth-clients",
    "tls-protocols",
];

/// Parses `tls-protocols`: "" for TLS 1.2 and 1.3, or names from "TLSv1.2" and "TLSv1.3"
/// (any case) separated by spaces.
///
/// # Errors
///
/// A name rustls does not support (TLSv1, TLSv1.1 or anything else).
pub fn parse_protocols(
    text: &str,
) -> Result<Vec<&'static rustls::SupportedProtocolVersion>, String> {
    let mut versions = Vec::new();
    for name in text.split_whitespace() {
        let version = if name.eq_ignore_ascii_case("TLSv1.2") {
            &rustls::version::TLS12
        } else if name.eq_ignore_ascii_case("TLSv1.3") {
            &rustls::version::TLS13
        } else {
            return Err(format!(
                "unsupported TLS protocol '{name}': only TLSv1.2 and TLSv1.3 are supported"
            ));
        };
        if !versions
            .iter()
            .any(|known: &&rustls::SupportedProtocolVersion| known.version == version.version)
        {
            versions.push(version);
        }
    }
    if versions.is_empty() {
        versions = vec![&rustls::version::TLS12, &rustls::version::TLS13];
    }
    Ok(versions)
}

/// The server's TLS state: the settings, and the configuration new connections get (`None`
/// while TLS is off: the settings can still be changed, and are checked only once a TLS
/// port listens).
pub struct Tls {
    state: Mutex<(TlsSettings, Option<Arc<ServerConfig>>)>,
    enabled: bool,
}

impl Tls {
    /// The start-up state; with a TLS port, the configuration is built (and must build).
    ///
    /// # Errors
    ///
    /// As [`TlsSettings::build`], when the TLS port is on.
    pub fn new(config: &Config) -> Result<Tls, String> {
        let settings = TlsSettings::from_config(config);
        let enabled = config.tls_enabled();
        let current = if enabled {
            Some(settings.build()?)
        } else {
            None
        };
        Ok(Tls {
            state: Mutex::new((settings, current)),
            enabled,
        })
    }

    /// The settings in force.
    pub fn settings(&self) -> TlsSettings {
        self.state.lock().0.clone()
    }

    /// The configuration for a connection accepted now.
    pub fn current(&self) -> Option<Arc<ServerConfig>> {
        self.state.lock().1.clone()
    }

    /// Applies CONFIG SET `changes` (names from [`SETTABLE`]) all together: the new
    /// configuration is built first and replaces the old one only if it built.
    ///
    /// # Errors
    ///
    /// The first invalid value, or why the new configuration did not build; nothing changed.
    pub fn reconfigure(&self, changes: &[(&str, &[u8])]) -> Result<(), String> {
        // Built outside the lock (file reads), then swapped in; two concurrent CONFIG SETs
        // each apply completely, the last one wins.
        let mut settings = self.settings();
        for (name, value) in changes {
            settings.set(name, value)?;
        }
        let built = if self.enabled {
            Some(
                settings
                    .build()
                    .map_err(|err| format!("Unable to update TLS configuration: {err}"))?,
            )
        } else {
            None
        };
        *self.state.lock() = (settings, built);
        Ok(())
    }
}

/// Completes the TLS handshake of an accepted connection, within [`HANDSHAKE_TIMEOUT`].
/// `None` (logged at debug level) if it failed or timed out: the connection is closed.
///
/// A shutdown drops a connection still in its handshake.
pub async fn accept(
    stream: TcpStream,
    config: Arc<ServerConfig>,
    peer: SocketAddr,
    shared: &Shared,
) -> Option<TlsStream<TcpStream>> {
    // TCP_NODELAY comes from the listening socket (see `accept`).
    // The connection threads have no timer (see `accept`): the timeout sleeps on
    // the server's main runtime.
    let (expire, expired) = tokio::sync::oneshot::channel::<()>();
    let timer = shared.timers.spawn(async move {
        tokio::time::sleep(HANDSHAKE_TIMEOUT).await;
        let _ = expire.send(());
    });
    let handshake = TlsAcceptor::from(config).accept(stream);
    let result = tokio::select! {
        result = handshake => Some(result),
        Ok(()) = expired => None,
        () = shared.shutdown.started() => None,
    };
    timer.abort();
    match result {
        Some(Ok(stream)) => Some(stream),
        Some(Err(err)) => {
            debug!(%peer, "TLS handshake failed: {err}");
            None
        }
        None => {
            debug!(%peer, "TLS handshake timed out after {HANDSHAKE_TIMEOUT:?}");
            None
        }
    }
}

/// Ends a TLS connection politely: sends the close_notify alert and shuts the socket's
/// write side, if the socket takes them at once. A client that does not read its socket
/// cannot keep the connection's task alive: there is one attempt only.
pub async fn close(stream: &mut TlsStream<TcpStream>) {
    use std::future::Future as _;
    use tokio::io::AsyncWriteExt as _;
    let mut shutdown = std::pin::pin!(stream.shutdown());
    let _ = std::future::poll_fn(|cx| std::task::Poll::Ready(shutdown.as_mut().poll(cx))).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protocols_parse_as_redis_names_them() {
        assert_eq!(parse_protocols("").map(|v| v.len()), Ok(2));
        assert_eq!(parse_protocols("TLSv1.2").map(|v| v.len()), Ok(1));
        assert_eq!(parse_protocols("tlsv1.3 TLSv1.2").map(|v| v.len()), Ok(2));
        assert_eq!(parse_protocols("TLSv1.3 TLSv1.3").map(|v| v.len()), Ok(1));
        let err = parse_protocols("TLSv1.1 TLSv1.2").expect_err("1.1 refused");
        assert!(err.contains("TLSv1.1"), "{err}");
        assert!(parse_protocols("SSLv3").is_err());
    }

    #[test]
    fn settings_refuse_bad_values_and_missing_files() {
        let mut settings = TlsSettings::from_config(&Config::default());
        assert!(settings.set("tls-auth-clients", b"maybe").is_err());
        settings
            .set("tls-auth-clients", b"OPTIONAL")
            .expect("optional");
        assert_eq!(settings.auth_clients, TlsAuthClients::Optional);
        assert!(settings.set("tls-protocols", b"TLSv1").is_err());
        assert!(settings.build().is_err(), "no certificate configured");
        settings
            .set("tls-cert-file", b"/nonexistent/cert.pem")
            .expect("any path");
        settings
            .set("tls-key-file", b"/nonexistent/key.pem")
            .expect("any path");
        let err = settings.build().expect_err("missing files");
        assert!(err.contains("/nonexistent/cert.pem"), "{err}");
    }
}
