//! Certificates made at run time for the TLS tests (shared by the server's end-to-end tests
//! and the kvcli / kvbench tests, which include this file with `#[path]`): a CA, a server
//! certificate for `localhost` and `127.0.0.1` signed by it, and a client certificate
//! signed by it, all written as PEM files into a temporary directory.

#![allow(dead_code)]

use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose, SanType,
};

/// A certificate authority that signs the other certificates.
pub struct Ca {
    cert: rcgen::Certificate,
    key: KeyPair,
}

impl Ca {
    /// A new self-signed CA named `name`.
    pub fn new(name: &str) -> Ca {
        let mut params = CertificateParams::default();
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let key = KeyPair::generate().expect("CA key");
        let cert = params.self_signed(&key).expect("CA certificate");
        Ca { cert, key }
    }

    /// The CA certificate (PEM).
    pub fn pem(&self) -> String {
        self.cert.pem()
    }

    /// A server certificate for `localhost` and 127.0.0.1 named `name`: (certificate PEM,
    /// key PEM, certificate DER).
    pub fn server(&self, name: &str) -> Issued {
        let mut params = CertificateParams::new(vec!["localhost".to_owned()]).expect("names");
        params
            .subject_alt_names
            .push(SanType::IpAddress(IpAddr::V4(Ipv4Addr::LOCALHOST)));
        params.distinguished_name.push(DnType::CommonName, name);
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        self.issue(params)
    }

    /// A client certificate named `name`.
    pub fn client(&self, name: &str) -> Issued {
        let mut params = CertificateParams::default();
        params.distinguished_name.push(DnType::CommonName, name);
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        self.issue(params)
    }

    fn issue(&self, mut params: CertificateParams) -> Issued {
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        let key = KeyPair::generate().expect("key");
        let cert = params
            .signed_by(&key, &self.cert, &self.key)
            .expect("signed certificate");
        Issued {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            der: cert.der().to_vec(),
        }
    }
}

/// A certificate and its key.
pub struct Issued {
    /// The certificate (PEM).
    pub cert_pem: String,
    /// Its private key (PEM, PKCS#8).
    pub key_pem: String,
    /// The certificate (DER), to compare with what a peer presented.
    pub der: Vec<u8>,
}

/// Paths of a certificate and key written to disk.
#[derive(Clone, Debug)]
pub struct Files {
    /// The certificate file.
    pub cert: PathBuf,
    /// The key file.
    pub key: PathBuf,
}

impl Issued {
    /// Writes the certificate and key as `<name>.crt` and `<name>.key` into `dir`.
    pub fn write(&self, dir: &Path, name: &str) -> Files {
        let files = Files {
            cert: dir.join(format!("{name}.crt")),
            key: dir.join(format!("{name}.key")),
        };
        std::fs::write(&files.cert, &self.cert_pem).expect("write certificate");
        std::fs::write(&files.key, &self.key_pem).expect("write key");
        files
    }
}

/// A CA, a server and a client certificate on disk.
pub struct Pki {
    /// Holds the files; removed when dropped.
    pub dir: tempfile::TempDir,
    /// The CA.
    pub ca: Ca,
    /// The CA certificate file.
    pub ca_file: PathBuf,
    /// The server's certificate, as issued.
    pub server: Issued,
    /// The server's files.
    pub server_files: Files,
    /// The client's files.
    pub client_files: Files,
}

impl Pki {
    /// Generates everything into a new temporary directory.
    pub fn new() -> Pki {
        let dir = tempfile::tempdir().expect("temporary directory");
        let ca = Ca::new("kvstore test CA");
        let ca_file = dir.path().join("ca.crt");
        std::fs::write(&ca_file, ca.pem()).expect("write CA");
        let server = ca.server("kvstore test server");
        let server_files = server.write(dir.path(), "server");
        let client_files = ca.client("kvstore test client").write(dir.path(), "client");
        Pki {
            dir,
            ca,
            ca_file,
            server,
            server_files,
            client_files,
        }
    }

    /// A path inside the directory.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

/// Shows a path as a string (the server's settings are strings).
pub fn text(path: &Path) -> String {
    path.display().to_string()
}
