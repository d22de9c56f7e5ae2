//! `--tls`: kvcli against a kvserver TLS port, with certificates made at run time.

use kvserver::config::TlsAuthClients;

use crate::util::{kvcli, TestServer};

#[path = "../../../tests/support/certs.rs"]
mod certs;

use certs::{text, Pki};

/// A server with a TLS port that requires client certificates from `pki`'s CA.
fn tls_server(pki: &Pki, auth: TlsAuthClients) -> TestServer {
    TestServer::start_with(|config| {
        config.tls_any_port = true;
        config.tls_cert_file = text(&pki.server_files.cert);
        config.tls_key_file = text(&pki.server_files.key);
        config.tls_ca_cert_file = text(&pki.ca_file);
        config.tls_auth_clients = auth;
    })
}

#[test]
fn one_shot_commands_over_tls() {
    let pki = Pki::new();
    let server = tls_server(&pki, TlsAuthClients::Yes);
    let port = server.tls_port.expect("TLS port").to_string();
    let (ca, cert, key) = (
        text(&pki.ca_file),
        text(&pki.client_files.cert),
        text(&pki.client_files.key),
    );
    let secure = |extra: &[&str]| {
        let mut args = vec!["-h", "localhost", "-p", &port, "--tls", "--cacert", &ca];
        args.extend_from_slice(&["--cert", &cert, "--key", &key]);
        args.extend_from_slice(extra);
        kvcli(&args, b"")
    };
    let run = secure(&["SET", "over", "tls"]);
    assert_eq!(
        (run.code, run.out()),
        (Some(0), "OK\n".to_owned()),
        "{}",
        run.err()
    );
    let run = secure(&["GET", "over"]);
    assert_eq!(run.out(), "tls\n", "{}", run.err());
    // The plain port sees the same data.
    assert_eq!(server.cmd(&["GET", "over"]), "tls\n");
    // The shell's line mode over TLS.
    let run = secure(&[]);
    assert_eq!(run.code, Some(0));
    let run = kvcli(
        &[
            "-p",
            &port,
            "--tls",
            "--sni",
            "localhost",
            "--cacert",
            &ca,
            "--cert",
            &cert,
            "--key",
            &key,
        ],
        b"PING\nGET over\n",
    );
    assert_eq!(run.out(), "PONG\ntls\n", "{}", run.err());
}

#[test]
fn certificate_problems_are_reported() {
    let pki = Pki::new();
    let server = tls_server(&pki, TlsAuthClients::No);
    let port = server.tls_port.expect("TLS port").to_string();
    let ca = text(&pki.ca_file);
    // No client certificate needed here.
    let run = kvcli(
        &[
            "-h",
            "localhost",
            "-p",
            &port,
            "--tls",
            "--cacert",
            &ca,
            "PING",
        ],
        b"",
    );
    assert_eq!(run.out(), "PONG\n", "{}", run.err());
    // The certificate is for localhost and 127.0.0.1, not for this name.
    let run = kvcli(
        &[
            "-p",
            &port,
            "--tls",
            "--cacert",
            &ca,
            "--sni",
            "elsewhere.example",
            "PING",
        ],
        b"",
    );
    assert_eq!(run.code, Some(1));
    assert!(
        run.err()
            .starts_with(&format!("Could not connect to 127.0.0.1:{port}")),
        "{}",
        run.err()
    );
    // ... unless checks are off.
    let run = kvcli(
        &[
            "-p",
            &port,
            "--tls",
            "--insecure",
            "--sni",
            "elsewhere.example",
            "PING",
        ],
        b"",
    );
    assert_eq!(run.out(), "PONG\n", "{}", run.err());
    // An untrusted CA.
    let other = pki.path("other-ca.crt");
    std::fs::write(&other, certs::Ca::new("another CA").pem()).expect("write CA");
    let run = kvcli(
        &["-p", &port, "--tls", "--cacert", &text(&other), "PING"],
        b"",
    );
    assert_eq!(run.code, Some(1));
    assert!(run.err().contains("certificate"), "{}", run.err());
    // A missing CA file.
    let run = kvcli(
        &[
            "-p",
            &port,
            "--tls",
            "--cacert",
            "/nonexistent/ca.crt",
            "PING",
        ],
        b"",
    );
    assert_eq!(run.code, Some(1));
    assert!(run.err().contains("/nonexistent/ca.crt"), "{}", run.err());
    // TLS to the plain port fails instead of hanging.
    let plain = server.port.to_string();
    let run = kvcli(
        &["-p", &plain, "-t", "5", "--tls", "--cacert", &ca, "PING"],
        b"",
    );
    assert_eq!(run.code, Some(1), "{}", run.out());
}
