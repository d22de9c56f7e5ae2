//! TLS (`--tls-port`): a plain and a TLS port side by side, client certificates
//! (`tls-auth-clients`), protocol versions, certificates changed with CONFIG SET, and real
//! clients (redis-cli --tls, redis-py with ssl=True). Certificates are made at run time
//! (`support/certs.rs`).

use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use kvserver::config::TlsAuthClients;
use kvserver::ServerHandle;
use protocol::RespCodec;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;
use tokio_util::codec::Decoder;

use crate::util::{
    bulk, encode, ok, require_tool, simple, start_server_with, text_of, Frame, Raw, REPLY_TIMEOUT,
};

#[path = "support/certs.rs"]
mod certs;

use certs::{text, Ca, Files, Pki};

/// Starts a server with a plain and a TLS port (both picked by the system) configured from
/// `pki`, with `auth` for client certificates.
async fn start_tls(pki: &Pki, auth: TlsAuthClients, protocols: &str) -> ServerHandle {
    let (cert, key, ca) = (
        text(&pki.server_files.cert),
        text(&pki.server_files.key),
        text(&pki.ca_file),
    );
    let protocols = protocols.to_owned();
    start_server_with(move |config| {
        config.tls_any_port = true;
        config.tls_cert_file = cert;
        config.tls_key_file = key;
        config.tls_ca_cert_file = ca;
        config.tls_auth_clients = auth;
        config.tls_protocols = protocols;
    })
    .await
}

/// How a test client connects.
struct ClientSetup<'a> {
    /// CA certificate file the client trusts.
    ca: &'a Path,
    /// Certificate and key the client presents, if any.
    identity: Option<&'a Files>,
    /// TLS versions the client offers.
    versions: &'a [&'static rustls::SupportedProtocolVersion],
}

impl<'a> ClientSetup<'a> {
    fn new(pki: &'a Pki) -> Self {
        ClientSetup {
            ca: &pki.ca_file,
            identity: Some(&pki.client_files),
            versions: rustls::ALL_VERSIONS,
        }
    }

    fn anonymous(mut self) -> Self {
        self.identity = None;
        self
    }

    fn config(&self) -> rustls::ClientConfig {
        let mut roots = rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_file_iter(self.ca).expect("CA file") {
            roots.add(cert.expect("CA certificate")).expect("CA added");
        }
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let builder = rustls::ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(self.versions)
            .expect("versions")
            .with_root_certificates(roots);
        match self.identity {
            None => builder.with_no_client_auth(),
            Some(files) => {
                let chain = CertificateDer::pem_file_iter(&files.cert)
                    .expect("certificate file")
                    .collect::<Result<Vec<_>, _>>()
                    .expect("certificate");
                let key = PrivateKeyDer::from_pem_file(&files.key).expect("key");
                builder
                    .with_client_auth_cert(chain, key)
                    .expect("client certificate")
            }
        }
    }

    /// Connects and completes the handshake (as the client sees it: with TLS 1.3 the server
    /// may still refuse the client's certificate afterwards).
    async fn connect(&self, addr: SocketAddr) -> std::io::Result<TlsStream<TcpStream>> {
        let connector = TlsConnector::from(Arc::new(self.config()));
        let tcp = TcpStream::connect(addr).await?;
        let name = ServerName::try_from("localhost").expect("name");
        tokio::time::timeout(REPLY_TIMEOUT, connector.connect(name, tcp))
            .await
            .map_err(|_| std::io::Error::other("handshake timed out"))?
    }
}

/// A RESP client over TLS.
struct TlsClient {
    stream: TlsStream<TcpStream>,
    buf: BytesMut,
    codec: RespCodec,
}

impl TlsClient {
    async fn connect(setup: &ClientSetup<'_>, addr: SocketAddr) -> TlsClient {
        let stream = setup.connect(addr).await.expect("TLS connection");
        TlsClient {
            stream,
            buf: BytesMut::new(),
            codec: RespCodec::default(),
        }
    }

    /// Sends a command and reads its reply; `Err` if the connection fails or closes.
    async fn try_cmd(&mut self, args: &[&str]) -> std::io::Result<Frame> {
        self.stream.write_all(&encode(args)).await?;
        self.stream.flush().await?;
        loop {
            if let Some(frame) = self.codec.decode(&mut self.buf).expect("valid RESP") {
                return Ok(frame);
            }
            let read = tokio::time::timeout(REPLY_TIMEOUT, self.stream.read_buf(&mut self.buf))
                .await
                .map_err(|_| std::io::Error::other("timed out"))??;
            if read == 0 {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
        }
    }

    async fn cmd(&mut self, args: &[&str]) -> Frame {
        self.try_cmd(args).await.expect("reply over TLS")
    }

    /// The certificate the server presented.
    fn server_certificate(&self) -> Vec<u8> {
        let (_, connection) = self.stream.get_ref();
        connection
            .peer_certificates()
            .and_then(|chain| chain.first())
            .expect("server certificate")
            .to_vec()
    }
}

/// The text of an error reply.
fn error_of(frame: &Frame) -> String {
    match frame {
        Frame::Error(text) => String::from_utf8_lossy(text).into_owned(),
        other => panic!("expected an error reply, got {other:?}"),
    }
}

/// Whether a client with `setup` gets a reply to PING: the handshake and the first exchange
/// both succeed.
async fn ping_works(setup: &ClientSetup<'_>, addr: SocketAddr) -> bool {
    let Ok(stream) = setup.connect(addr).await else {
        return false;
    };
    let mut client = TlsClient {
        stream,
        buf: BytesMut::new(),
        codec: RespCodec::default(),
    };
    matches!(client.try_cmd(&["PING"]).await, Ok(frame) if frame == simple("PONG"))
}

/// Sends a plain-text PING to the TLS port `addr`: not a handshake, so the server closes the
/// connection without serving it.
async fn plain_text_is_closed(addr: SocketAddr) {
    let mut confused = Raw::connect(addr).await;
    confused.send(b"PING\r\n").await;
    let mut rest = Vec::new();
    let read = tokio::time::timeout(REPLY_TIMEOUT, confused.stream().read_to_end(&mut rest))
        .await
        .expect("closed in time");
    assert!(read.is_err() || !rest.starts_with(b"+PONG"), "{rest:?}");
}

#[tokio::test]
async fn plain_and_tls_ports_serve_side_by_side() {
    let pki = Pki::new();
    let server = start_tls(&pki, TlsAuthClients::Yes, "").await;
    let tls_addr = server.tls_addr().expect("a TLS port");
    assert_ne!(tls_addr.port(), server.addr().port());
    let mut secure = TlsClient::connect(&ClientSetup::new(&pki), tls_addr).await;
    assert_eq!(secure.cmd(&["PING"]).await, simple("PONG"));
    assert_eq!(secure.cmd(&["SET", "greeting", "hello"]).await, ok());
    assert_eq!(secure.cmd(&["GET", "greeting"]).await, bulk("hello"));
    // A large value crosses several TLS records both ways.
    let big = "x".repeat(300_000);
    assert_eq!(secure.cmd(&["SET", "big", &big]).await, ok());
    assert_eq!(secure.cmd(&["GET", "big"]).await, bulk(&big));

    let mut plain = Raw::connect(server.addr()).await;
    assert_eq!(plain.cmd(&["GET", "greeting"]).await, bulk("hello"));
    let reply = plain.cmd(&["CONFIG", "GET", "tls-port"]).await;
    assert_eq!(
        reply,
        Frame::Array(vec![bulk("tls-port"), bulk(tls_addr.port().to_string())])
    );
    let reply = plain.cmd(&["CONFIG", "GET", "tls-auth-clients"]).await;
    assert_eq!(
        reply,
        Frame::Array(vec![bulk("tls-auth-clients"), bulk("yes")])
    );
    let reply = plain.cmd(&["CONFIG", "GET", "tls-cert-file"]).await;
    assert_eq!(
        reply,
        Frame::Array(vec![
            bulk("tls-cert-file"),
            bulk(text(&pki.server_files.cert))
        ])
    );
    // CLIENT LIST sees both connections.
    let list = text_of(&secure.cmd(&["CLIENT", "LIST"]).await);
    assert_eq!(list.lines().count(), 2, "{list}");
    // QUIT ends the TLS session cleanly (close_notify): end of stream, not an error.
    assert_eq!(secure.cmd(&["QUIT"]).await, ok());
    let mut rest = Vec::new();
    let closed = tokio::time::timeout(REPLY_TIMEOUT, secure.stream.read_to_end(&mut rest))
        .await
        .expect("closed in time");
    assert_eq!(closed.expect("a clean close"), 0);
    server.shutdown();
}

#[tokio::test]
async fn a_plain_server_has_no_tls_port() {
    let server = start_server_with(|_| {}).await;
    assert!(server.tls_addr().is_none());
    let mut plain = Raw::connect(server.addr()).await;
    let reply = plain.cmd(&["CONFIG", "GET", "tls-port"]).await;
    assert_eq!(reply, Frame::Array(vec![bulk("tls-port"), bulk("0")]));
    // Settings can change without a TLS port; nothing is loaded until one listens.
    let reply = plain
        .cmd(&["CONFIG", "SET", "tls-cert-file", "/nonexistent.crt"])
        .await;
    assert_eq!(reply, ok());
    server.shutdown();
}

#[tokio::test]
async fn auth_clients_yes_requires_a_certificate_signed_by_the_ca() {
    let pki = Pki::new();
    let server = start_tls(&pki, TlsAuthClients::Yes, "").await;
    let addr = server.tls_addr().expect("TLS port");
    assert!(ping_works(&ClientSetup::new(&pki), addr).await);
    assert!(
        !ping_works(&ClientSetup::new(&pki).anonymous(), addr).await,
        "a client without a certificate is refused"
    );
    let stranger = Ca::new("another CA").client("stranger");
    let stranger = stranger.write(pki.dir.path(), "stranger");
    let setup = ClientSetup {
        identity: Some(&stranger),
        ..ClientSetup::new(&pki)
    };
    assert!(
        !ping_works(&setup, addr).await,
        "a certificate from another CA is refused"
    );
    // The server goes on serving.
    assert!(ping_works(&ClientSetup::new(&pki), addr).await);
    server.shutdown();
}

#[tokio::test]
async fn auth_clients_optional_accepts_both_but_checks_what_is_presented() {
    let pki = Pki::new();
    let server = start_tls(&pki, TlsAuthClients::Optional, "").await;
    let addr = server.tls_addr().expect("TLS port");
    assert!(ping_works(&ClientSetup::new(&pki), addr).await);
    assert!(ping_works(&ClientSetup::new(&pki).anonymous(), addr).await);
    let stranger = Ca::new("another CA").client("stranger");
    let stranger = stranger.write(pki.dir.path(), "stranger");
    let setup = ClientSetup {
        identity: Some(&stranger),
        ..ClientSetup::new(&pki)
    };
    assert!(!ping_works(&setup, addr).await);
    server.shutdown();
}

#[tokio::test]
async fn auth_clients_no_accepts_clients_without_a_certificate() {
    let pki = Pki::new();
    let server = start_tls(&pki, TlsAuthClients::No, "").await;
    let addr = server.tls_addr().expect("TLS port");
    assert!(ping_works(&ClientSetup::new(&pki).anonymous(), addr).await);
    server.shutdown();
}

#[tokio::test]
async fn a_client_that_trusts_another_ca_fails_the_handshake() {
    let pki = Pki::new();
    let server = start_tls(&pki, TlsAuthClients::No, "").await;
    let addr = server.tls_addr().expect("TLS port");
    let other_ca = pki.path("other-ca.crt");
    std::fs::write(&other_ca, Ca::new("another CA").pem()).expect("write CA");
    let setup = ClientSetup {
        ca: &other_ca,
        ..ClientSetup::new(&pki).anonymous()
    };
    let err = setup
        .connect(addr)
        .await
        .expect_err("the server's certificate is not trusted");
    assert!(err.to_string().contains("certificate"), "{err}");
    server.shutdown();
}

#[tokio::test]
async fn a_tls12_only_server_refuses_a_tls13_only_client() {
    let pki = Pki::new();
    let server = start_tls(&pki, TlsAuthClients::Yes, "TLSv1.2").await;
    let addr = server.tls_addr().expect("TLS port");
    let only_13 = ClientSetup {
        versions: &[&rustls::version::TLS13],
        ..ClientSetup::new(&pki)
    };
    assert!(only_13.connect(addr).await.is_err());
    let only_12 = ClientSetup {
        versions: &[&rustls::version::TLS12],
        ..ClientSetup::new(&pki)
    };
    let mut client = TlsClient::connect(&only_12, addr).await;
    assert_eq!(client.cmd(&["PING"]).await, simple("PONG"));
    let version = client.stream.get_ref().1.protocol_version();
    assert_eq!(version, Some(rustls::ProtocolVersion::TLSv1_2));
    // Unsupported versions are refused with a reason.
    let reply = client
        .cmd(&["CONFIG", "SET", "tls-protocols", "TLSv1.1 TLSv1.2"])
        .await;
    let reason = error_of(&reply);
    assert!(reason.starts_with("ERR CONFIG SET failed"), "{reason}");
    assert!(reason.contains("TLSv1.1"), "{reason}");
    // ... and TLS 1.3 can be turned on for the next connections.
    let reply = client
        .cmd(&["CONFIG", "SET", "tls-protocols", "TLSv1.2 TLSv1.3"])
        .await;
    assert_eq!(reply, ok());
    assert!(ping_works(&only_13, addr).await);
    server.shutdown();
}

#[tokio::test]
async fn config_set_certificate_applies_to_new_connections_only() {
    let pki = Pki::new();
    let server = start_tls(&pki, TlsAuthClients::Yes, "").await;
    let addr = server.tls_addr().expect("TLS port");
    let setup = ClientSetup::new(&pki);
    let mut old = TlsClient::connect(&setup, addr).await;
    assert_eq!(old.server_certificate(), pki.server.der);

    let renewed = pki.ca.server("renewed server certificate");
    let files = renewed.write(pki.dir.path(), "renewed");
    // Certificate and key together: one change.
    let reply = old
        .cmd(&[
            "CONFIG",
            "SET",
            "tls-cert-file",
            &text(&files.cert),
            "tls-key-file",
            &text(&files.key),
        ])
        .await;
    assert_eq!(reply, ok());
    let mut new = TlsClient::connect(&setup, addr).await;
    assert_eq!(new.server_certificate(), renewed.der);
    assert_eq!(new.cmd(&["PING"]).await, simple("PONG"));
    // The connection opened before keeps working.
    assert_eq!(old.cmd(&["SET", "k", "v"]).await, ok());
    assert_eq!(new.cmd(&["GET", "k"]).await, bulk("v"));
    let reply = new.cmd(&["CONFIG", "GET", "tls-key-file"]).await;
    assert_eq!(
        reply,
        Frame::Array(vec![bulk("tls-key-file"), bulk(text(&files.key))])
    );

    // Turning client certificates off takes effect the same way.
    assert_eq!(
        new.cmd(&["CONFIG", "SET", "tls-auth-clients", "no"]).await,
        ok()
    );
    assert!(ping_works(&ClientSetup::new(&pki).anonymous(), addr).await);
    server.shutdown();
}

#[tokio::test]
async fn config_set_with_a_bad_file_errors_and_keeps_the_old_configuration() {
    let pki = Pki::new();
    let server = start_tls(&pki, TlsAuthClients::Yes, "").await;
    let addr = server.tls_addr().expect("TLS port");
    let setup = ClientSetup::new(&pki);
    let mut client = TlsClient::connect(&setup, addr).await;
    let missing = text(&pki.path("missing.crt"));
    let reply = client
        .cmd(&["CONFIG", "SET", "tls-cert-file", &missing])
        .await;
    let reason = error_of(&reply);
    assert!(
        reason.starts_with("ERR CONFIG SET failed (possibly related to argument 'tls-cert-file')"),
        "{reason}"
    );
    assert!(reason.contains("missing.crt"), "{reason}");
    // A certificate whose key is not the configured one.
    let other = pki.ca.server("other").write(pki.dir.path(), "other");
    let reply = client
        .cmd(&["CONFIG", "SET", "tls-cert-file", &text(&other.cert)])
        .await;
    assert!(
        error_of(&reply).starts_with("ERR CONFIG SET failed"),
        "{reply:?}"
    );
    // Garbage in the CA file.
    let garbage = pki.path("garbage.crt");
    std::fs::write(&garbage, "not a certificate").expect("write");
    let reply = client
        .cmd(&["CONFIG", "SET", "tls-ca-cert-file", &text(&garbage)])
        .await;
    assert!(
        error_of(&reply).starts_with("ERR CONFIG SET failed"),
        "{reply:?}"
    );
    // A failing TLS change takes the rest of the command with it.
    let reply = client
        .cmd(&[
            "CONFIG",
            "SET",
            "maxclients",
            "77",
            "tls-cert-file",
            &missing,
        ])
        .await;
    assert!(
        error_of(&reply).starts_with("ERR CONFIG SET failed"),
        "{reply:?}"
    );
    assert_eq!(
        client.cmd(&["CONFIG", "GET", "maxclients"]).await,
        Frame::Array(vec![bulk("maxclients"), bulk("10000")])
    );
    assert_eq!(
        client.cmd(&["CONFIG", "GET", "tls-cert-file"]).await,
        Frame::Array(vec![
            bulk("tls-cert-file"),
            bulk(text(&pki.server_files.cert))
        ])
    );
    // Still serving, with the old certificate.
    let fresh = TlsClient::connect(&setup, addr).await;
    assert_eq!(fresh.server_certificate(), pki.server.der);
    assert_eq!(client.cmd(&["PING"]).await, simple("PONG"));
    server.shutdown();
}

#[tokio::test]
async fn a_silent_client_does_not_hold_up_other_handshakes() {
    let pki = Pki::new();
    let server = start_tls(&pki, TlsAuthClients::Yes, "").await;
    let addr = server.tls_addr().expect("TLS port");
    // Connects and never says hello.
    let _silent: Vec<TcpStream> = futures_util::future::join_all(
        (0..4).map(|_| async { TcpStream::connect(addr).await.expect("connect") }),
    )
    .await;
    assert!(ping_works(&ClientSetup::new(&pki), addr).await);
    // Plain text on the TLS port is not a handshake: closed.
    plain_text_is_closed(addr).await;
    server.shutdown();
}

/// Whether a TLS client with `setup` is served within a few seconds of tries (a place the
/// server gives back is free only once it noticed the close).
async fn served_soon(setup: &ClientSetup<'_>, addr: SocketAddr) -> bool {
    for _ in 0..200 {
        if ping_works(setup, addr).await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    false
}

#[tokio::test]
async fn tls_connections_count_toward_maxclients_and_give_their_place_back() {
    let pki = Pki::new();
    let server = start_tls(&pki, TlsAuthClients::Yes, "").await;
    let addr = server.tls_addr().expect("TLS port");
    let setup = ClientSetup::new(&pki);
    let mut admin = Raw::connect(server.addr()).await;
    // The plain admin connection and one TLS client.
    assert_eq!(admin.cmd(&["CONFIG", "SET", "maxclients", "2"]).await, ok());
    let mut first = TlsClient::connect(&setup, addr).await;
    assert_eq!(first.cmd(&["PING"]).await, simple("PONG"));
    assert!(!ping_works(&setup, addr).await, "a third client was served");
    // A served TLS client gives its place back when it leaves.
    drop(first);
    assert!(served_soon(&setup, addr).await, "the place never came back");
    // So does a failed handshake (plain text on the TLS port), every time.
    for _ in 0..3 {
        plain_text_is_closed(addr).await;
    }
    assert!(
        served_soon(&setup, addr).await,
        "failed handshakes kept places"
    );
    assert_eq!(admin.cmd(&["PING"]).await, simple("PONG"));
    server.shutdown();
}

#[test]
fn the_server_refuses_to_start_with_a_tls_configuration_that_does_not_load() {
    let pki = Pki::new();
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let config = kvserver::Config {
        port: 0,
        save: Default::default(),
        tls_any_port: true,
        tls_cert_file: text(&pki.server_files.cert),
        tls_key_file: text(&pki.server_files.key),
        // yes (the default) without a CA file
        ..kvserver::Config::default()
    };
    let err = runtime
        .block_on(kvserver::start(config, None))
        .err()
        .expect("refused");
    assert!(err.to_string().contains("tls-ca-cert-file"), "{err}");
}

/// `kvserver --port 0 --tls-port N`: TLS only, as Redis's `port 0`.
#[tokio::test]
async fn port_zero_with_a_tls_port_serves_tls_only() {
    let pki = Pki::new();
    let tls_port = crate::util::free_port();
    let dir = tempfile::tempdir().expect("temporary directory");
    let child = Command::new(crate::util::kvserver_binary())
        .args(["--port", "0", "--tls-port", &tls_port.to_string()])
        .args(["--tls-cert-file", &text(&pki.server_files.cert)])
        .args(["--tls-key-file", &text(&pki.server_files.key)])
        .args(["--tls-ca-cert-file", &text(&pki.ca_file)])
        .args(["--save", "", "--dir", &text(dir.path())])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("kvserver starts");
    let _guard = crate::util::ChildGuard { child };
    let addr = SocketAddr::from(([127, 0, 0, 1], tls_port));
    let setup = ClientSetup::new(&pki);
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let mut client = loop {
        if let Ok(stream) = setup.connect(addr).await {
            break TlsClient {
                stream,
                buf: BytesMut::new(),
                codec: RespCodec::default(),
            };
        }
        assert!(std::time::Instant::now() < deadline, "no TLS port");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(
        client.cmd(&["CONFIG", "GET", "port"]).await,
        Frame::Array(vec![bulk("port"), bulk("0")])
    );
    let info = text_of(&client.cmd(&["INFO", "server"]).await);
    assert!(info.contains("tcp_port:0\r\n"), "{info}");
    // Nothing listens on 6379 because of this server; no plain port to find.
}

#[tokio::test]
async fn redis_cli_connects_with_tls() {
    let Some(redis_cli) = require_tool("redis-cli") else {
        return;
    };
    let pki = Pki::new();
    let server = start_tls(&pki, TlsAuthClients::Yes, "").await;
    let addr = server.tls_addr().expect("TLS port");
    let run = |args: &[&str]| {
        let mut command = Command::new(&redis_cli);
        command
            .args(["--tls", "-h", "127.0.0.1", "-p", &addr.port().to_string()])
            .args(["--cacert", &text(&pki.ca_file)])
            .args(["--cert", &text(&pki.client_files.cert)])
            .args(["--key", &text(&pki.client_files.key)])
            .args(args);
        // Blocking: on a thread of its own, not on the runtime the server runs on.
        tokio::task::spawn_blocking(move || command.output())
    };
    let output = run(&["PING"]).await.expect("task").expect("redis-cli runs");
    assert_eq!(
        String::from_utf8_lossy(&output.stdout).trim(),
        "PONG",
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let output = run(&["SET", "from-cli", "yes"])
        .await
        .expect("task")
        .expect("redis-cli runs");
    assert_eq!(String::from_utf8_lossy(&output.stdout).trim(), "OK");
    let mut plain = Raw::connect(server.addr()).await;
    assert_eq!(plain.cmd(&["GET", "from-cli"]).await, bulk("yes"));
    server.shutdown();
}

/// redis-py with `ssl=True`, as an application would use it.
#[tokio::test]
async fn redis_py_connects_with_ssl() {
    let Some(python) = require_tool("python3") else {
        return;
    };
    let probe = Command::new(&python)
        .args(["-c", "import redis"])
        .output()
        .expect("python3 runs");
    if !probe.status.success() {
        eprintln!("SKIPPED: the python3 `redis` module is not installed (pip install redis)");
        return;
    }
    let pki = Pki::new();
    let server = start_tls(&pki, TlsAuthClients::Yes, "").await;
    let addr = server.tls_addr().expect("TLS port");
    let script = r#"
import sys, redis
port, ca, cert, key = sys.argv[1:5]
r = redis.Redis(host="localhost", port=int(port), ssl=True, ssl_ca_certs=ca,
                ssl_certfile=cert, ssl_keyfile=key)
assert r.ping() is True
assert r.set("py", "ssl") is True
assert r.get("py") == b"ssl"
pipe = r.pipeline()
for i in range(100):
    pipe.incr("counter")
assert pipe.execute()[-1] == 100
print("ok")
"#;
    let mut command = Command::new(&python);
    command
        .args(["-c", script, &addr.port().to_string()])
        .args([
            text(&pki.ca_file),
            text(&pki.client_files.cert),
            text(&pki.client_files.key),
        ]);
    let output = tokio::task::spawn_blocking(move || command.output())
        .await
        .expect("task")
        .expect("python3 runs");
    assert_eq!(
        String::from_utf8_lossy(&output.stdout).trim(),
        "ok",
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let mut plain = Raw::connect(server.addr()).await;
    assert_eq!(plain.cmd(&["GET", "counter"]).await, bulk("100"));
    server.shutdown();
}
