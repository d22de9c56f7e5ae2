//! A session with the server: the connection plus what it should look like (credentials,
//! database, protocol version), so that a dropped connection can be replaced by one in the
//! same state.
//!
//! The state follows the user's commands as redis-cli tracks them: a successful `SELECT`
//! changes the database, `AUTH` and `HELLO ... AUTH` the credentials, `HELLO 3` / `HELLO 2`
//! the protocol, `RESET` all three. Every new connection replays them (`AUTH`, `SELECT`,
//! `HELLO 3`, in redis-cli's order) and, in the shell, fetches `COMMAND DOCS` for hints.

use std::fmt;
use std::net::TcpStream;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use protocol::Frame;

use crate::commands;
use crate::connection::{ConnectError, Connection, ConnectionError, Target};
use crate::docs::HelpTable;

/// A user name and password for `AUTH`. The password is never printed (not even by `Debug`).
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// ACL user, or `None` for `AUTH password`.
    pub user: Option<Bytes>,
    /// The password.
    pub password: Bytes,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("user", &self.user)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// What a connection should look like once set up.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The server.
    pub target: Target,
    /// Longest wait for the TCP connection (`-t`); `None`: the OS's.
    pub connect_timeout: Option<Duration>,
    /// Credentials to authenticate with.
    pub auth: Option<Credentials>,
    /// Database to select.
    pub db: i64,
    /// Speak RESP3 (`HELLO 3`).
    pub resp3: bool,
    /// Connect with TLS (`--tls`).
    pub tls: Option<crate::tls::TlsOptions>,
}

/// A failed session operation.
#[derive(Debug)]
pub enum SessionError {
    /// The connection could not be opened.
    Connect(ConnectError),
    /// The connection failed while in use; it has been dropped.
    Connection(ConnectionError),
}

impl fmt::Display for SessionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SessionError::Connect(err) => err.fmt(f),
            SessionError::Connection(err) => write!(f, "Error: {err}"),
        }
    }
}

impl std::error::Error for SessionError {}

impl From<ConnectionError> for SessionError {
    fn from(err: ConnectionError) -> Self {
        SessionError::Connection(err)
    }
}

/// What happened when a connection was opened.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Opened {
    /// For the user, when this connection replaces one that was lost.
    pub notice: Option<String>,
    /// Set-up commands that failed (`AUTH failed: ...`). The connection stays open.
    pub problems: Vec<String>,
}

/// The connection and the state it should be in.
#[derive(Debug)]
pub struct Session {
    settings: Settings,
    conn: Option<Connection>,
    /// A connection was open and broke; the next one is a reconnection.
    lost: bool,
    /// Fetch `COMMAND DOCS` on every new connection (the shell's hints).
    fetch_docs: bool,
    help: Arc<HelpTable>,
    help_version: u64,
}

impl Session {
    /// A session that is not connected yet; `fetch_docs` asks for `COMMAND DOCS` on each
    /// new connection (otherwise [`help`](Self::help) is the built-in table).
    pub fn new(settings: Settings, fetch_docs: bool) -> Session {
        Session {
            settings,
            conn: None,
            lost: false,
            fetch_docs,
            help: Arc::new(commands::builtin_table()),
            help_version: 0,
        }
    }

    /// The current settings (database, protocol...) as the user's commands changed them.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// Whether a connection is open.
    pub fn is_connected(&self) -> bool {
        self.conn.is_some()
    }

    /// The open connection, set up, for modes that drive the socket themselves (`--pipe`).
    pub fn into_connection(self) -> Option<Connection> {
        self.conn
    }

    /// The prompt: `host:port>`, `host:port[db]>` off database 0, `not connected>`.
    pub fn prompt(&self) -> String {
        if self.conn.is_none() {
            return "not connected> ".to_owned();
        }
        if self.settings.db == 0 {
            format!("{}> ", self.settings.target)
        } else {
            format!("{}[{}]> ", self.settings.target, self.settings.db)
        }
    }

    /// The help table: the server's `COMMAND DOCS` if fetched, else the built-in one.
    pub fn help(&self) -> Arc<HelpTable> {
        Arc::clone(&self.help)
    }

    /// Increases every time [`help`](Self::help) changes.
    pub fn help_version(&self) -> u64 {
        self.help_version
    }

    /// Points the session at another server (the shell's `connect HOST PORT`) and
    /// connects to it. Credentials, database and protocol carry over, as in redis-cli.
    ///
    /// # Errors
    ///
    /// As [`connect`](Self::connect).
    pub fn switch_target(&mut self, target: Target) -> Result<Opened, SessionError> {
        self.settings.target = target;
        self.lost = false;
        self.connect()
    }

    /// Opens a new connection (closing any open one) and sets it up.
    ///
    /// # Errors
    ///
    /// [`SessionError::Connect`] if the server cannot be reached, or
    /// [`SessionError::Connection`] if the connection breaks during set-up. Failed set-up
    /// commands are not errors: they are reported in [`Opened::problems`].
    pub fn connect(&mut self) -> Result<Opened, SessionError> {
        self.conn = None;
        let mut conn = Connection::open_with(
            &self.settings.target,
            self.settings.connect_timeout,
            self.settings.tls.as_ref(),
        )
        .map_err(SessionError::Connect)?;
        let problems = self.set_up(&mut conn)?;
        if self.fetch_docs {
            self.fetch_help(&mut conn)?;
        }
        self.conn = Some(conn);
        let notice = std::mem::take(&mut self.lost)
            .then(|| format!("Reconnected to {}.", self.settings.target));
        Ok(Opened { notice, problems })
    }

    /// Makes sure a working connection is open: opens one if there is none, and replaces
    /// one the server closed while we were idle. `None` if the open one is fine.
    ///
    /// # Errors
    ///
    /// As [`connect`](Self::connect).
    pub fn ensure_connected(&mut self) -> Result<Option<Opened>, SessionError> {
        let mut dropped_while_idle = false;
        if let Some(conn) = &mut self.conn {
            if !conn.peer_closed() {
                return Ok(None);
            }
            self.conn = None;
            self.lost = true;
            dropped_while_idle = true;
        }
        let mut opened = self.connect()?;
        if dropped_while_idle {
            opened.notice = Some(format!(
                "Connection to {} was lost; reconnected.",
                self.settings.target
            ));
        }
        Ok(Some(opened))
    }

    /// Sends `argv` and returns its reply, after calling `on_push` for any RESP3 push
    /// message that arrives first. `None` when the command closed the connection as
    /// expected (`SHUTDOWN`). The session must be connected ([`ensure_connected`]).
    ///
    /// [`ensure_connected`]: Self::ensure_connected
    ///
    /// # Errors
    ///
    /// [`SessionError::Connection`] if there is no connection or it fails; it is then
    /// dropped and the next [`ensure_connected`] reconnects.
    pub fn execute(
        &mut self,
        argv: &[Bytes],
        on_push: &mut dyn FnMut(&Frame),
    ) -> Result<Option<Frame>, SessionError> {
        let Some(conn) = &mut self.conn else {
            return Err(ConnectionError::Closed.into());
        };
        let result = send_and_read(conn, argv, self.settings.resp3, on_push);
        match result {
            Ok(reply) => {
                self.track(argv, &reply);
                if is(argv.first(), "quit") && !matches!(reply, Frame::Error(_)) {
                    // The server closes the connection after replying to QUIT.
                    self.conn = None;
                    self.lost = true;
                }
                Ok(Some(reply))
            }
            Err(err) => {
                self.conn = None;
                if is(argv.first(), "shutdown") && matches!(err, ConnectionError::Closed) {
                    return Ok(None);
                }
                self.lost = true;
                Err(err.into())
            }
        }
    }

    /// Sends `argv` without reading its reply, for the listening modes (after `SUBSCRIBE`),
    /// which read every frame themselves with [`read_next`](Self::read_next).
    ///
    /// # Errors
    ///
    /// As [`execute`](Self::execute).
    pub fn send(&mut self, argv: &[Bytes]) -> Result<(), SessionError> {
        let Some(conn) = &mut self.conn else {
            return Err(ConnectionError::Closed.into());
        };
        let result = conn.send(argv);
        self.keep_if_ok(result)
    }

    /// Reads the next frame from the server, whatever it is (reply or push).
    ///
    /// # Errors
    ///
    /// As [`execute`](Self::execute).
    pub fn read_next(&mut self) -> Result<Frame, SessionError> {
        let Some(conn) = &mut self.conn else {
            return Err(ConnectionError::Closed.into());
        };
        let result = conn.read_frame();
        self.keep_if_ok(result)
    }

    /// A second handle on the open connection's socket (see
    /// [`Connection::try_clone_stream`]); `None` when not connected or the OS refuses.
    pub fn try_clone_stream(&self) -> Option<TcpStream> {
        self.conn.as_ref()?.try_clone_stream().ok()
    }

    /// Closes the connection on purpose (the listening mode ended); the next one is a
    /// plain connection, not a reconnection.
    pub fn disconnect(&mut self) {
        self.conn = None;
        self.lost = false;
    }

    /// Drops the connection after a failure, so the next command reconnects.
    fn keep_if_ok<T>(&mut self, result: Result<T, ConnectionError>) -> Result<T, SessionError> {
        result.map_err(|err| {
            self.conn = None;
            self.lost = true;
            err.into()
        })
    }

    /// Updates the settings after a reply, the way redis-cli tracks connection state.
    fn track(&mut self, argv: &[Bytes], reply: &Frame) {
        if matches!(reply, Frame::Error(_)) {
            return;
        }
        let command = argv.first();
        if is(command, "select") && argv.len() == 2 {
            if let Some(db) = parse_i64(&argv[1]) {
                self.settings.db = db;
            }
        } else if is(command, "auth") && (argv.len() == 2 || argv.len() == 3) {
            let (user, password) = match argv {
                [_, password] => (None, password),
                [_, user, password] => (Some(user.clone()), password),
                _ => return,
            };
            self.settings.auth = Some(Credentials {
                user,
                password: password.clone(),
            });
        } else if is(command, "hello") {
            match reply {
                Frame::Map(_) => self.settings.resp3 = true,
                Frame::Array(_) => self.settings.resp3 = false,
                _ => {}
            }
            if let Some(credentials) = hello_credentials(argv) {
                self.settings.auth = Some(credentials);
            }
        } else if is(command, "reset") && argv.len() == 1 {
            // RESET also authenticates the connection as the default user again.
            self.settings.db = 0;
            self.settings.resp3 = false;
            self.settings.auth = None;
        }
    }

    /// Replays the settings on a new connection; returns the commands that failed.
    fn set_up(&mut self, conn: &mut Connection) -> Result<Vec<String>, SessionError> {
        let mut problems = Vec::new();
        let mut no_push = |_: &Frame| {};
        if let Some(credentials) = &self.settings.auth {
            let mut argv = vec![Bytes::from_static(b"AUTH")];
            argv.extend(credentials.user.clone());
            argv.push(credentials.password.clone());
            if let Frame::Error(message) = send_and_read(conn, &argv, false, &mut no_push)? {
                problems.push(format!(
                    "AUTH failed: {}",
                    String::from_utf8_lossy(&message)
                ));
            }
        }
        if self.settings.db != 0 {
            let argv = [
                Bytes::from_static(b"SELECT"),
                Bytes::from(self.settings.db.to_string()),
            ];
            if let Frame::Error(message) = send_and_read(conn, &argv, false, &mut no_push)? {
                problems.push(format!(
                    "SELECT {} failed: {}",
                    self.settings.db,
                    String::from_utf8_lossy(&message)
                ));
                self.settings.db = 0;
            }
        }
        if self.settings.resp3 {
            let argv = [Bytes::from_static(b"HELLO"), Bytes::from_static(b"3")];
            if let Frame::Error(message) = send_and_read(conn, &argv, false, &mut no_push)? {
                problems.push(format!(
                    "HELLO 3 failed: {}",
                    String::from_utf8_lossy(&message)
                ));
                self.settings.resp3 = false;
            }
        }
        Ok(problems)
    }

    /// Replaces the help table with the server's `COMMAND DOCS`, or the built-in one.
    fn fetch_help(&mut self, conn: &mut Connection) -> Result<(), SessionError> {
        let argv = [Bytes::from_static(b"COMMAND"), Bytes::from_static(b"DOCS")];
        let reply = send_and_read(conn, &argv, self.settings.resp3, &mut |_| {})?;
        let table = HelpTable::from_command_docs(&reply).unwrap_or_else(commands::builtin_table);
        if *self.help != table {
            self.help = Arc::new(table);
            self.help_version += 1;
        }
        Ok(())
    }
}

/// Sends a command and reads its reply, handing RESP3 pushes that come first to `on_push`.
fn send_and_read(
    conn: &mut Connection,
    argv: &[Bytes],
    resp3: bool,
    on_push: &mut dyn FnMut(&Frame),
) -> Result<Frame, ConnectionError> {
    conn.send(argv)?;
    loop {
        match conn.read_frame()? {
            Frame::Push(items) if resp3 => on_push(&Frame::Push(items)),
            reply => return Ok(reply),
        }
    }
}

/// Whether `arg` is `name`, ignoring case.
fn is(arg: Option<&Bytes>, name: &str) -> bool {
    arg.is_some_and(|a| a.eq_ignore_ascii_case(name.as_bytes()))
}

fn parse_i64(arg: &[u8]) -> Option<i64> {
    std::str::from_utf8(arg).ok()?.parse().ok()
}

/// The credentials in `HELLO protover [AUTH username password] [SETNAME name]`.
fn hello_credentials(argv: &[Bytes]) -> Option<Credentials> {
    let mut i = 2;
    while i < argv.len() {
        if is(argv.get(i), "auth") && i + 2 < argv.len() {
            return Some(Credentials {
                user: Some(argv[i + 1].clone()),
                password: argv[i + 2].clone(),
            });
        }
        i += if is(argv.get(i), "setname") { 2 } else { 1 };
    }
    None
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};
    use std::net::TcpListener;
    use std::thread;

    use protocol::parse::parse_request;
    use protocol::Limits;

    use super::*;

    fn argv(words: &[&str]) -> Vec<Bytes> {
        words
            .iter()
            .map(|w| Bytes::copy_from_slice(w.as_bytes()))
            .collect()
    }

    fn session() -> Session {
        Session::new(
            Settings {
                target: Target {
                    host: "127.0.0.1".to_owned(),
                    port: 6379,
                },
                connect_timeout: None,
                auth: None,
                db: 0,
                resp3: false,
                tls: None,
            },
            false,
        )
    }

    const OK: Frame = Frame::Simple(Bytes::from_static(b"OK"));

    #[test]
    fn tracks_select_auth_hello_and_reset() {
        let mut s = session();
        s.track(&argv(&["select", "3"]), &OK);
        assert_eq!(s.settings().db, 3);
        s.track(
            &argv(&["SELECT", "99"]),
            &Frame::Error(Bytes::from_static(b"ERR DB index is out of range")),
        );
        assert_eq!(s.settings().db, 3, "failed SELECT changes nothing");

        s.track(&argv(&["auth", "default", "secret"]), &OK);
        let auth = s.settings().auth.clone().expect("credentials");
        assert_eq!(auth.user.as_deref(), Some(&b"default"[..]));
        assert_eq!(&auth.password[..], b"secret");
        assert!(
            !format!("{auth:?}").contains("secret"),
            "Debug redacts the password"
        );

        s.track(
            &argv(&["HELLO", "3", "SETNAME", "me", "AUTH", "alice", "pw"]),
            &Frame::Map(vec![]),
        );
        assert!(s.settings().resp3);
        assert_eq!(
            s.settings().auth.as_ref().and_then(|c| c.user.as_deref()),
            Some(&b"alice"[..])
        );
        s.track(&argv(&["hello", "2"]), &Frame::Array(vec![]));
        assert!(!s.settings().resp3);

        s.track(
            &argv(&["RESET"]),
            &Frame::Simple(Bytes::from_static(b"RESET")),
        );
        assert_eq!((s.settings().db, s.settings().resp3), (0, false));
        assert!(s.settings().auth.is_none());
    }

    #[test]
    fn hello_credentials_follow_redis_syntax() {
        assert!(hello_credentials(&argv(&["HELLO", "3"])).is_none());
        assert!(hello_credentials(&argv(&["HELLO", "3", "AUTH", "u"])).is_none());
        assert!(hello_credentials(&argv(&["HELLO", "3", "SETNAME", "auth", "x"])).is_none());
        let found = hello_credentials(&argv(&["HELLO", "3", "auth", "u", "p"])).expect("found");
        assert_eq!(&found.password[..], b"p");
    }

    /// A server that answers each request it receives with the next of `replies`, then
    /// closes; returns the requests.
    fn fake_server(replies: Vec<&'static [u8]>) -> (u16, thread::JoinHandle<Vec<Vec<Bytes>>>) {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let server = thread::spawn(move || {
            let (mut socket, _) = listener.accept().expect("accept");
            let (mut buf, mut requests) = (Vec::new(), Vec::new());
            let mut chunk = [0u8; 1024];
            for reply in replies {
                let argv = loop {
                    if let Some((argv, used)) =
                        parse_request(&buf, &Limits::default()).expect("valid request")
                    {
                        buf.drain(..used);
                        break argv;
                    }
                    let n = socket.read(&mut chunk).expect("read");
                    assert!(n > 0, "client hung up");
                    buf.extend_from_slice(&chunk[..n]);
                };
                requests.push(argv);
                socket.write_all(reply).expect("write");
            }
            requests
        });
        (port, server)
    }

    fn session_for(port: u16, auth: Option<Credentials>, db: i64, resp3: bool) -> Session {
        let mut s = session();
        s.settings = Settings {
            target: Target {
                host: "127.0.0.1".to_owned(),
                port,
            },
            connect_timeout: Some(Duration::from_secs(5)),
            auth,
            db,
            resp3,
            tls: None,
        };
        s
    }

    #[test]
    fn new_connections_replay_auth_select_and_hello() {
        let (port, server) = fake_server(vec![
            b"+OK\r\n",
            b"+OK\r\n",
            b"%1\r\n+proto\r\n:3\r\n",
            b"_\r\n",
        ]);
        let credentials = Credentials {
            user: Some(Bytes::from_static(b"default")),
            password: Bytes::from_static(b"pw"),
        };
        let mut s = session_for(port, Some(credentials), 4, true);
        let opened = s.connect().expect("connects");
        assert_eq!(opened, Opened::default());
        assert_eq!(s.prompt(), format!("127.0.0.1:{port}[4]> "));
        assert_eq!(
            s.execute(&argv(&["GET", "k"]), &mut |_| {}).expect("reply"),
            Some(Frame::Null)
        );
        let requests = server.join().expect("server");
        assert_eq!(
            requests,
            [
                argv(&["AUTH", "default", "pw"]),
                argv(&["SELECT", "4"]),
                argv(&["HELLO", "3"]),
                argv(&["GET", "k"]),
            ]
        );
    }

    #[test]
    fn failed_set_up_commands_are_reported_and_the_connection_kept() {
        let (port, server) = fake_server(vec![
            b"-WRONGPASS invalid username-password pair or user is disabled.\r\n",
            b"-ERR DB index is out of range\r\n",
            b"+PONG\r\n",
        ]);
        let credentials = Credentials {
            user: None,
            password: Bytes::from_static(b"pw"),
        };
        let mut s = session_for(port, Some(credentials), 99, false);
        let opened = s.connect().expect("connects");
        assert_eq!(
            opened.problems,
            [
                "AUTH failed: WRONGPASS invalid username-password pair or user is disabled.",
                "SELECT 99 failed: ERR DB index is out of range",
            ]
        );
        assert_eq!(
            s.prompt(),
            format!("127.0.0.1:{port}> "),
            "back on database 0"
        );
        let pong = s.execute(&argv(&["PING"]), &mut |_| {}).expect("reply");
        assert_eq!(pong, Some(Frame::Simple(Bytes::from_static(b"PONG"))));
        assert_eq!(server.join().expect("server").len(), 3);
    }

    #[test]
    fn pushes_come_before_the_reply_and_a_drop_is_noticed() {
        let (port, server) = fake_server(vec![b">2\r\n+invalidate\r\n*1\r\n$1\r\nk\r\n+OK\r\n"]);
        let mut s = session_for(port, None, 0, false);
        s.settings.resp3 = true; // pretend HELLO 3 happened
        s.conn = Some(Connection::open(&s.settings.target, None).expect("connects"));
        let mut pushes = Vec::new();
        let reply = s.execute(&argv(&["SET", "k", "v"]), &mut |p| pushes.push(p.clone()));
        assert_eq!(
            reply.expect("reply"),
            Some(Frame::Simple(Bytes::from_static(b"OK")))
        );
        assert_eq!(pushes.len(), 1);
        server.join().expect("server");
        // The fake server has closed the connection: the next command must reconnect, and
        // nobody listens any more.
        assert!(matches!(
            s.ensure_connected(),
            Err(SessionError::Connect(_))
        ));
        assert_eq!(s.prompt(), "not connected> ");
    }

    #[test]
    fn prompt_shows_the_database_and_the_connection_state() {
        let mut s = session();
        assert_eq!(s.prompt(), "not connected> ");
        s.settings.db = 2;
        assert_eq!(s.prompt(), "not connected> ");
        assert!(s.execute(&argv(&["PING"]), &mut |_| {}).is_err());
    }
}
