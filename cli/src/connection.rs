//! One TCP connection to the server: requests encoded with the protocol crate's
//! [`RespCodec`], replies decoded with it (any RESP2/RESP3 frame).
//!
//! The shell is interactive and strictly request/reply, so this is a blocking
//! `std::net::TcpStream`, like hiredis under redis-cli, or TLS over one (`--tls`, rustls's
//! blocking stream); only `--pipe` needs reads and writes at the same time, and it uses a
//! second thread ([`crate::pipe`], plain TCP only).

use std::fmt;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use protocol::{Frame, ProtocolError, RespCodec};
use tokio_util::codec::{Decoder, Encoder};

use crate::tls::TlsOptions;

/// Bytes read from the socket at a time.
const READ_CHUNK: usize = 64 * 1024;

/// Where the server is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// Host name or IP address.
    pub host: String,
    /// TCP port.
    pub port: u16,
}

impl fmt::Display for Target {
    /// `host:port`, with IPv6 addresses in brackets (`[::1]:6379`), as redis-cli shows it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

/// Why a connection could not be opened.
#[derive(Debug)]
pub struct ConnectError {
    /// The server we tried.
    pub target: Target,
    /// What went wrong (resolution or connection).
    pub source: io::Error,
}

impl fmt::Display for ConnectError {
    /// `Could not connect to HOST:PORT: Connection refused`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Could not connect to {}: {}",
            self.target,
            describe_io_error(&self.source)
        )
    }
}

impl std::error::Error for ConnectError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}

/// Why a request or its reply failed; after any of these the connection is unusable.
#[derive(Debug)]
pub enum ConnectionError {
    /// The server closed the connection.
    Closed,
    /// Reading or writing failed.
    Io(io::Error),
    /// The server sent something that is not RESP.
    Protocol(ProtocolError),
}

impl fmt::Display for ConnectionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConnectionError::Closed => f.write_str("Server closed the connection"),
            ConnectionError::Io(err) => f.write_str(&describe_io_error(err)),
            ConnectionError::Protocol(err) => write!(f, "Protocol error: {err}"),
        }
    }
}

impl std::error::Error for ConnectionError {}

impl From<io::Error> for ConnectionError {
    fn from(err: io::Error) -> Self {
        match err.kind() {
            io::ErrorKind::UnexpectedEof
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::BrokenPipe => ConnectionError::Closed,
            _ => ConnectionError::Io(err),
        }
    }
}

impl From<ProtocolError> for ConnectionError {
    fn from(err: ProtocolError) -> Self {
        match err {
            ProtocolError::Io(err) => err.into(),
            other => ConnectionError::Protocol(other),
        }
    }
}

/// The OS's text for an I/O error, without Rust's ` (os error N)` suffix, so messages read
/// like redis-cli's (`Connection refused`).
pub fn describe_io_error(err: &io::Error) -> String {
    let text = err.to_string();
    let text = match text.rfind(" (os error ") {
        Some(at) if text.ends_with(')') => &text[..at],
        _ => &text,
    };
    text.strip_prefix("failed to lookup address information: ")
        .unwrap_or(text)
        .to_owned()
}

/// The socket, plain or with TLS.
#[derive(Debug)]
enum Stream {
    Plain(TcpStream),
    Tls(Box<rustls::StreamOwned<rustls::ClientConnection, TcpStream>>),
}

impl Stream {
    fn tcp(&self) -> &TcpStream {
        match self {
            Stream::Plain(stream) => stream,
            Stream::Tls(stream) => &stream.sock,
        }
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(stream) => stream.read(buf),
            Stream::Tls(stream) => stream.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(stream) => stream.write(buf),
            Stream::Tls(stream) => stream.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Stream::Plain(stream) => stream.flush(),
            Stream::Tls(stream) => stream.flush(),
        }
    }
}

/// Completes a TLS handshake on `tcp` (within `timeout`, if given).
fn handshake(
    tcp: TcpStream,
    host: &str,
    tls: &TlsOptions,
    timeout: Option<Duration>,
) -> io::Result<Stream> {
    let config = tls.client_config().map_err(io::Error::other)?;
    let name = tls.server_name(host).map_err(io::Error::other)?;
    let mut client = rustls::ClientConnection::new(config, name).map_err(io::Error::other)?;
    let mut tcp = tcp;
    tcp.set_read_timeout(timeout)?;
    tcp.set_write_timeout(timeout)?;
    while client.is_handshaking() {
        if let Err(err) = client.complete_io(&mut tcp) {
            if err.to_string().contains("NotValidForName") {
                return Err(io::Error::other(format!(
                    "{err} (use --sni to name the host the certificate is for)"
                )));
            }
            return Err(err);
        }
    }
    tcp.set_read_timeout(None)?;
    tcp.set_write_timeout(None)?;
    Ok(Stream::Tls(Box::new(rustls::StreamOwned::new(client, tcp))))
}

/// An open connection.
#[derive(Debug)]
pub struct Connection {
    stream: Stream,
    codec: RespCodec,
    read_buf: BytesMut,
    write_buf: BytesMut,
}

impl Connection {
    /// Connects to `target`, trying each address it resolves to in turn.
    ///
    /// # Errors
    ///
    /// [`ConnectError`] if the name does not resolve or no address accepts the connection.
    pub fn open(target: &Target, timeout: Option<Duration>) -> Result<Connection, ConnectError> {
        Connection::open_with(target, timeout, None)
    }

    /// [`open`](Self::open), then a TLS handshake with `tls` if given.
    ///
    /// # Errors
    ///
    /// As [`open`](Self::open); also a TLS configuration that does not load or a failed
    /// handshake (an untrusted certificate, one for another name...).
    pub fn open_with(
        target: &Target,
        timeout: Option<Duration>,
        tls: Option<&TlsOptions>,
    ) -> Result<Connection, ConnectError> {
        let fail = |source| ConnectError {
            target: target.clone(),
            source,
        };
        let addrs: Vec<SocketAddr> = (target.host.as_str(), target.port)
            .to_socket_addrs()
            .map_err(fail)?
            .collect();
        let mut last_error = io::Error::new(io::ErrorKind::NotFound, "no address found");
        for addr in addrs {
            let attempt = match timeout {
                Some(timeout) => TcpStream::connect_timeout(&addr, timeout),
                None => TcpStream::connect(addr),
            };
            match attempt {
                Ok(stream) => {
                    let Some(tls) = tls else {
                        return Ok(Connection::from_stream(stream));
                    };
                    let _ = stream.set_nodelay(true);
                    let stream = handshake(stream, &target.host, tls, timeout).map_err(fail)?;
                    return Ok(Connection::with_stream(stream));
                }
                Err(err) => last_error = err,
            }
        }
        Err(fail(last_error))
    }

    /// Wraps a connected stream.
    pub fn from_stream(stream: TcpStream) -> Connection {
        // Requests are small and each waits for its reply: do not let Nagle delay them.
        // Failing to set the option only costs latency.
        let _ = stream.set_nodelay(true);
        Connection::with_stream(Stream::Plain(stream))
    }

    fn with_stream(stream: Stream) -> Connection {
        Connection {
            stream,
            codec: RespCodec::default(),
            read_buf: BytesMut::with_capacity(READ_CHUNK),
            write_buf: BytesMut::new(),
        }
    }

    /// Sends one command (an array of bulk strings).
    ///
    /// # Errors
    ///
    /// [`ConnectionError`] if the write fails.
    pub fn send(&mut self, argv: &[Bytes]) -> Result<(), ConnectionError> {
        self.write_buf.clear();
        self.codec.encode(argv, &mut self.write_buf)?;
        self.stream.write_all(&self.write_buf)?;
        Ok(())
    }

    /// Reads the next frame (a reply, or a RESP3 push).
    ///
    /// # Errors
    ///
    /// [`ConnectionError`] if the connection closes or the bytes are not RESP.
    pub fn read_frame(&mut self) -> Result<Frame, ConnectionError> {
        let mut chunk = [0u8; 16 * 1024];
        loop {
            if let Some(frame) = self.codec.decode(&mut self.read_buf)? {
                return Ok(frame);
            }
            let n = match self.stream.read(&mut chunk) {
                Ok(0) => return Err(ConnectionError::Closed),
                Ok(n) => n,
                Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
                Err(err) => return Err(err.into()),
            };
            self.read_buf.extend_from_slice(&chunk[..n]);
        }
    }

    /// Whether the server has closed the connection (or it broke) while we were idle.
    ///
    /// Checked before sending a command, so that a connection dropped while the user was
    /// typing is replaced before the command is sent: afterwards there would be no telling
    /// whether the server ran it. Bytes that arrived meanwhile (e.g. RESP3 pushes) are
    /// kept for [`read_frame`](Self::read_frame).
    pub fn peer_closed(&mut self) -> bool {
        if self.stream.tcp().set_nonblocking(true).is_err() {
            return true;
        }
        let mut chunk = [0u8; 4096];
        let closed = loop {
            match self.stream.read(&mut chunk) {
                Ok(0) => break true,
                Ok(n) => self.read_buf.extend_from_slice(&chunk[..n]),
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => break false,
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => break true,
            }
        };
        closed || self.stream.tcp().set_nonblocking(false).is_err()
    }

    /// A second handle on the socket, for shutting it down from another thread (Ctrl-C
    /// while a read blocks on it).
    ///
    /// # Errors
    ///
    /// If the OS cannot duplicate the socket.
    pub fn try_clone_stream(&self) -> io::Result<TcpStream> {
        self.stream.tcp().try_clone()
    }

    /// The underlying stream (for `--pipe`, which reads and writes it from two threads);
    /// `None` for a TLS connection.
    pub fn into_stream(self) -> Option<TcpStream> {
        match self.stream {
            Stream::Plain(stream) => Some(stream),
            Stream::Tls(_) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::TcpListener;
    use std::thread;

    use super::*;

    fn target(host: &str, port: u16) -> Target {
        Target {
            host: host.to_owned(),
            port,
        }
    }

    #[test]
    fn targets_display_like_redis_cli() {
        assert_eq!(target("127.0.0.1", 6379).to_string(), "127.0.0.1:6379");
        assert_eq!(target("::1", 7000).to_string(), "[::1]:7000");
    }

    #[test]
    fn io_errors_read_like_strerror() {
        let refused = io::Error::from_raw_os_error(111);
        assert!(!describe_io_error(&refused).contains("os error"));
        let custom = io::Error::other("failed to lookup address information: nope");
        assert_eq!(describe_io_error(&custom), "nope");
    }

    #[test]
    fn refused_connection_names_the_target() {
        // Bind then drop a listener: its port is very likely free for a moment.
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("free port");
        let err = Connection::open(&target("127.0.0.1", port), None).expect_err("refused");
        assert_eq!(
            err.to_string(),
            format!("Could not connect to 127.0.0.1:{port}: Connection refused")
        );
    }

    #[test]
    fn request_reply_and_close_detection() {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let server = thread::spawn(move || {
            let (mut socket, _) = listener.accept().expect("accept");
            let mut request = [0u8; 64];
            let mut got = Vec::new();
            while !got.ends_with(b"PING\r\n") {
                let n = socket.read(&mut request).expect("read");
                got.extend_from_slice(&request[..n]);
            }
            // A reply split in two writes, then close.
            socket.write_all(b"*2\r\n+PO").expect("write");
            socket.flush().expect("flush");
            thread::sleep(Duration::from_millis(20));
            socket.write_all(b"NG\r\n,1.5\r\n").expect("write");
            got
        });
        let mut conn = Connection::open(&target("127.0.0.1", port), Some(Duration::from_secs(5)))
            .expect("connect");
        conn.send(&[Bytes::from_static(b"PING")]).expect("send");
        let reply = conn.read_frame().expect("reply");
        assert_eq!(
            reply,
            Frame::Array(vec![
                Frame::Simple(Bytes::from_static(b"PONG")),
                Frame::Double(1.5)
            ])
        );
        let request = server.join().expect("server thread");
        assert_eq!(request, b"*1\r\n$4\r\nPING\r\n");
        // The server is gone: detected without sending anything.
        let closed = (0..100).any(|_| {
            thread::sleep(Duration::from_millis(10));
            conn.peer_closed()
        });
        assert!(closed);
        assert!(matches!(conn.read_frame(), Err(ConnectionError::Closed)));
    }
}
