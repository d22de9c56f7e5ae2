//! Commands: the handler binding ([`table`]), the dispatcher, and one module per family. What
//! each command is (arity, flags, keys, docs, propagation) is described once, in the command
//! catalogue (`protocol::catalogue`); [`table`] attaches a handler to each of its rows.
//!
//! A handler is a plain synchronous function from the argument vector to a reply written into
//! the connection's output buffer: no I/O, no `.await`, so each command is unit-testable and
//! the store's locks are never held across a suspension point. Handlers validate every
//! argument before they write anything, so an error reply is never preceded by a partial one.

pub mod acl;
pub mod blocking;
pub mod collection;
pub mod config;
pub mod connection;
pub mod expire;
pub mod function;
pub mod hash;
pub mod info;
pub mod introspect;
pub mod keys;
pub mod list;
pub mod persistence;
pub mod pubsub;
pub mod scripting;
pub mod server;
pub mod set;
pub mod string;
pub mod table;
pub mod tracking;
pub mod transaction;
pub mod zset;

use protocol::Argv;
use std::borrow::Cow;

use bytes::BytesMut;
use protocol::encode;
use protocol::IntText;
use protocol::Version;

use crate::clients::ClientHandle;
use crate::propagate;
use crate::shared::Shared;
use crate::store::{Db, WrongType};
use protocol::catalogue::{CommandFlags, Propagation};
pub use table::{lookup, Command, COMMANDS};

/// A command error: the whole error line, including its prefix (`ERR`, `WRONGTYPE`, ...).
/// Replying with it keeps the connection open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CmdError(Cow<'static, str>);

impl CmdError {
    /// An error with a fixed text.
    pub const fn new(text: &'static str) -> Self {
        CmdError(Cow::Borrowed(text))
    }

    /// An error with a computed text.
    pub fn owned(text: String) -> Self {
        CmdError(Cow::Owned(text))
    }

    /// The error line without the leading `-`.
    pub fn text(&self) -> &str {
        &self.0
    }
}

/// Redis's most common error texts, shared by many commands.
pub mod errors {
    use super::CmdError;

    /// Malformed options.
    pub const SYNTAX: CmdError = CmdError::new("ERR syntax error");
    /// An argument or stored value that is not a 64-bit integer.
    pub const NOT_INTEGER: CmdError = CmdError::new("ERR value is not an integer or out of range");
    /// An argument or stored value that is not a float.
    pub const NOT_FLOAT: CmdError = CmdError::new("ERR value is not a valid float");
    /// An operation on a key holding another type.
    pub const WRONGTYPE: CmdError =
        CmdError::new("WRONGTYPE Operation against a key holding the wrong kind of value");
    /// RENAME of a missing key.
    pub const NO_SUCH_KEY: CmdError = CmdError::new("ERR no such key");
    /// INCR family overflow.
    pub const OVERFLOW: CmdError = CmdError::new("ERR increment or decrement would overflow");
    /// SELECT / COPY DB outside 0..databases.
    pub const DB_OUT_OF_RANGE: CmdError = CmdError::new("ERR DB index is out of range");
}

/// A typed accessor found another type of value: Redis's `WRONGTYPE` error.
impl From<WrongType> for CmdError {
    fn from(_: WrongType) -> Self {
        errors::WRONGTYPE
    }
}

/// A connection's reply buffer and the protocol version its replies are encoded in.
pub struct Reply {
    /// Encoded replies not yet written to the socket.
    pub buf: BytesMut,
    /// RESP2 until the client sends `HELLO 3`.
    pub version: Version,
}

impl Reply {
    /// An empty buffer for a RESP2 connection.
    pub fn new() -> Self {
        Reply {
            buf: BytesMut::with_capacity(16 * 1024),
            version: Version::Resp2,
        }
    }

    /// No buffer yet (a connection borrows one from its thread's pool when it has replies).
    pub fn unbuffered() -> Self {
        Reply {
            buf: BytesMut::new(),
            version: Version::Resp2,
        }
    }

    /// `+OK`.
    pub fn ok(&mut self) {
        encode::write_simple(&mut self.buf, b"OK");
    }

    /// A simple string (no CR/LF allowed).
    pub fn simple(&mut self, text: &str) {
        encode::write_simple(&mut self.buf, text.as_bytes());
    }

    /// An error line (`text` includes its prefix).
    pub fn error(&mut self, text: &str) {
        encode::write_error(&mut self.buf, text.as_bytes());
    }

    /// An integer.
    pub fn int(&mut self, n: i64) {
        encode::write_integer(&mut self.buf, n);
    }

    /// An integer from a count.
    pub fn count(&mut self, n: usize) {
        self.int(i64::try_from(n).unwrap_or(i64::MAX));
    }

    /// A bulk string.
    pub fn bulk(&mut self, data: &[u8]) {
        encode::write_bulk(&mut self.buf, data);
    }

    /// A bulk string holding a decimal integer (Redis replies this way for e.g. cursors).
    pub fn bulk_int(&mut self, n: i64) {
        self.bulk(IntText::new(n).as_bytes());
    }

    /// The null reply (`$-1` in RESP2).
    pub fn null(&mut self) {
        encode::write_null(&mut self.buf, self.version);
    }

    /// The null array (`*-1` in RESP2).
    pub fn null_array(&mut self) {
        encode::write_null_array(&mut self.buf, self.version);
    }

    /// Header of an array of `len` elements.
    pub fn array(&mut self, len: usize) {
        encode::write_array_header(&mut self.buf, len);
    }

    /// Header of a map of `pairs` key/value pairs (a flat array in RESP2).
    pub fn map(&mut self, pairs: usize) {
        encode::write_map_header(&mut self.buf, pairs, self.version);
    }

    /// Header of a set (an array in RESP2).
    pub fn set(&mut self, len: usize) {
        encode::write_set_header(&mut self.buf, len, self.version);
    }

    /// A double (a bulk string in RESP2).
    pub fn double(&mut self, value: f64) {
        encode::write_double(&mut self.buf, value, self.version);
    }

    /// A verbatim text (`=txt:` in RESP3, a bulk string in RESP2), as INFO and CLIENT LIST use.
    pub fn verbatim(&mut self, text: &[u8]) {
        encode::write_verbatim(&mut self.buf, *b"txt", text, self.version);
    }
}

impl Default for Reply {
    fn default() -> Self {
        Self::new()
    }
}

/// Per-connection state that commands read and change.
pub struct Session {
    /// Index of the SELECTed database.
    pub db: usize,
    /// Set by QUIT: close once the reply is written.
    pub closing: bool,
    /// This client's entry in the registry behind CLIENT LIST.
    pub client: ClientHandle,
    /// Write commands run since the connection last settled them (counted for the snapshot
    /// rules; under `appendfsync always` their replies wait for the log).
    pub writes: u64,
    /// The command this connection ran last: pipelines and most clients repeat the same
    /// command, and comparing its name is cheaper than the table lookup (which showed at ~5%
    /// of the server's CPU in pipelined GET profiles).
    last_command: Option<&'static Command>,
    /// Set by the connection while the append-only file is on: dispatch then notes where each
    /// write's reply lies in the output buffer ([`Session::write_replies`]), so that under
    /// `appendfsync always` the replies of a batch whose fsync failed can become errors.
    pub track_write_replies: bool,
    /// Byte ranges of the replies of the writes run since the connection last settled them.
    pub write_replies: Vec<std::ops::Range<usize>>,
    /// Set by a blocking command that found nothing to pop: the connection waits for it
    /// (see [`blocking::wait`]) before it runs the next command.
    pub blocked: Option<Box<blocking::Blocked>>,
    /// Between MULTI and EXEC: the queued commands.
    pub multi: Option<Box<transaction::Multi>>,
    /// The keys this client WATCHes (unregistered when dropped).
    pub watching: Option<Box<transaction::Watching>>,
    /// The channels and patterns this client is subscribed to, and its mailbox (None while
    /// it has no subscription).
    pub subscriptions: Option<Box<pubsub::Subscriptions>>,
    /// The batch committed a transaction that watched keys: the connection lets the
    /// other ready clients run before it answers (see `connection`, optimistic locking).
    pub committed_watched: bool,
    /// Set while EXEC or a script runs commands: blocking commands then reply as if they
    /// timed out instead of waiting.
    pub deny_blocking: bool,
    /// Client-side caching (CLIENT TRACKING), once the connection turned it on.
    pub tracking: Option<Box<tracking::ClientTracking>>,
    /// The client has authenticated (or needed not: no password was required when it
    /// connected). Until then, while a password is required, only commands flagged
    /// `no_auth` run.
    pub authenticated: bool,
    /// The ACL user this connection runs as, and its rules.
    pub login: crate::acl::Login,
    /// This client's address's request budget under `--rate-limit`, once looked up
    /// (`rate_budget_known`): `None` if the address is exempt. Two fields rather than an
    /// `Option<Option<_>>`, whose second tag cost 8 bytes of every connection's task.
    rate_budget: Option<std::sync::Arc<crate::ratelimit::Budget>>,
    rate_budget_known: bool,
}

impl Session {
    /// A fresh session on database 0.
    pub fn new(client: ClientHandle) -> Self {
        Session {
            db: 0,
            closing: false,
            client,
            writes: 0,
            last_command: None,
            track_write_replies: false,
            write_replies: Vec::new(),
            blocked: None,
            multi: None,
            watching: None,
            subscriptions: None,
            committed_watched: false,
            deny_blocking: false,
            tracking: None,
            authenticated: true,
            login: crate::acl::Login::default_placeholder(),
            rate_budget: None,
            rate_budget_known: false,
        }
    }

    /// True if messages for this connection may arrive at any time: it has subscriptions or
    /// tracks keys for client-side caching.
    #[inline]
    pub fn expects_messages(&self) -> bool {
        self.subscriptions.is_some() || self.tracking.as_deref().is_some_and(|t| t.is_on())
    }

    /// The command named `name` (any case), if there is one.
    fn find_command(&mut self, name: &[u8]) -> Option<&'static Command> {
        if let Some(command) = self.last_command {
            if command.name.as_bytes().eq_ignore_ascii_case(name) {
                return Some(command);
            }
        }
        let command = lookup(name)?;
        self.last_command = Some(command);
        Some(command)
    }
}

/// Everything a handler may touch.
pub struct Ctx<'a> {
    /// Server-wide state: store, configuration, statistics.
    pub shared: &'a Shared,
    /// This connection's state.
    pub session: &'a mut Session,
    /// Where the reply goes.
    pub out: &'a mut Reply,
    /// Current Unix time in milliseconds, read once per command.
    pub now_ms: u64,
}

impl<'a> Ctx<'a> {
    /// The selected database (borrowed from the server state, not from `self`, so handlers
    /// can write replies while they hold it).
    /// Publishes keyspace notification `event` of `class` about `key` in the session's
    /// database (see [`Shared::notify`]).
    #[inline]
    pub fn notify(&self, class: u32, event: &str, key: &[u8]) {
        self.shared
            .notify(class, event, self.session.db, key, self.now_ms);
    }

    pub fn db(&self) -> &'a Db {
        // `session.db` is only ever set to a validated index.
        let store = &self.shared.store;
        store.db(self.session.db).unwrap_or_else(|| &store.dbs()[0])
    }
}

/// Signature of a command handler: `args[0]` is the command name as sent.
pub type Handler = fn(&mut Ctx<'_>, Argv<'_>) -> Result<(), CmdError>;

/// Writes Redis's HELP reply: a usage line, the given lines, and the HELP entry.
pub fn reply_help(ctx: &mut Ctx<'_>, command: &str, lines: &[&str]) {
    ctx.out.array(lines.len() + 3);
    ctx.out.simple(&format!(
        "{command} <subcommand> [<arg> [value] [opt] ...]. Subcommands are:"
    ));
    for line in lines {
        ctx.out.simple(line);
    }
    ctx.out.simple("HELP");
    ctx.out.simple("    Print this help.");
}

/// Runs one command and writes its reply (or error) into `ctx.out`. Returns true if a
/// command ran (its own errors included), false if it was rejected before running (unknown
/// command, wrong arity), which INFO's `total_commands_processed` does not count, as in Redis.
/// Between MULTI and EXEC commands are queued instead ([`transaction::queue`]).
pub fn dispatch(ctx: &mut Ctx<'_>, args: Argv<'_>) -> bool {
    let Some(name) = args.first() else {
        return false;
    };
    if ctx.shared.rate_limiter.enabled() && !rate_admitted(ctx) {
        ctx.out.error(crate::ratelimit::RATE_LIMITED);
        doom_transaction(ctx);
        return false;
    }
    let Some(command) = ctx.session.find_command(name) else {
        ctx.out.error(&unknown_command(name, args.slice(1..)));
        doom_transaction(ctx);
        return false;
    };
    let command = match resolve_subcommand(command, args) {
        Ok(command) => command,
        Err(err) => {
            ctx.out.error(err.text());
            doom_transaction(ctx);
            return false;
        }
    };
    if !command.arity_ok(args.len()) {
        ctx.out.error(&format!(
            "ERR wrong number of arguments for '{}' command",
            command.full_name()
        ));
        doom_transaction(ctx);
        return false;
    }
    if !ctx.session.authenticated
        && !command.spec.flags.contains(CommandFlags::NO_AUTH)
        && ctx.shared.acl.password_required()
    {
        ctx.out.error(connection::NOAUTH);
        doom_transaction(ctx);
        return false;
    }
    if !ctx.session.login.unrestricted(&ctx.shared.acl) {
        let context = if ctx.session.multi.is_some() {
            "multi"
        } else {
            "toplevel"
        };
        if let Some(denial) = acl_denial(ctx, command, args, context) {
            ctx.out.error(&crate::acl::noperm_text(denial, command));
            doom_transaction(ctx);
            return false;
        }
    }
    if ctx.shared.scripting.is_busy() && !command.spec.flags.contains(CommandFlags::ALLOW_BUSY) {
        // A script has run past the busy threshold (it holds its shards): as Redis.
        ctx.out.error(scripting::BUSY);
        doom_transaction(ctx);
        return false;
    }
    if ctx.out.version == Version::Resp2 && ctx.session.subscriptions.is_some() {
        // RESP2 subscribed mode: only the subscription commands, PING, QUIT and RESET.
        if command.name == "ping" {
            return pubsub::subscribed_ping(ctx, args);
        }
        if let Some(refusal) = pubsub::refused_while_subscribed(command.full_name()) {
            ctx.out.error(&refusal);
            doom_transaction(ctx);
            return false;
        }
    }
    if ctx.session.multi.is_some() && !transaction::runs_while_queuing(command) {
        if let Some(refusal) = write_refusal(ctx, command) {
            ctx.out.error(&refusal);
            doom_transaction(ctx);
            return false;
        }
        transaction::queue(ctx, command, args);
        return true;
    }
    crate::tracking::set_current_client(ctx.session.client.info().id);
    let ran = run_tracked(ctx, command, args, false);
    crate::tracking::set_current_client(0);
    if ctx.session.tracking.is_some() {
        tracking::after_command(ctx, command);
        tracking::pass_on_invalidations(ctx);
    }
    ran
}

/// [`run_command`] for a command the client sent (at the top level, queued in EXEC, or run
/// by its script): a read-only one first records its keys for client-side caching, if the
/// client tracks.
#[inline]
pub(crate) fn run_tracked(
    ctx: &mut Ctx<'_>,
    command: &'static Command,
    args: Argv<'_>,
    in_unit: bool,
) -> bool {
    let read = tracking::begin_read(ctx, command, args);
    let ran = run_command(ctx, command, args, in_unit);
    if let Some(seq) = read {
        tracking::end_read(ctx, seq);
    }
    ran
}

/// Checks `command` against the ACL rules of the connection's user. A refusal is counted,
/// logged in ACL LOG under `context` (`toplevel`, `multi`, `lua`) and returned; the
/// caller words the error. A connection whose user was deleted is refused and closed.
pub(crate) fn acl_denial(
    ctx: &mut Ctx<'_>,
    command: &'static Command,
    args: Argv<'_>,
    context: &'static str,
) -> Option<crate::acl::Denial> {
    use crate::acl::{Denial, LogReason};
    let acl = &ctx.shared.acl;
    if ctx.session.login.unrestricted(acl) {
        return None;
    }
    let Some(rules) = ctx.session.login.refresh(acl) else {
        // ACL DELUSER disconnects the user's clients; this one is on its way out.
        ctx.session.closing = true;
        return Some(Denial::Command);
    };
    let denial = rules.check(command, args).err()?;
    acl.count_denial(denial);
    if context != "lua" {
        // CLIENT LIST in the log entry names the refused command, as Redis's does.
        ctx.session.client.note_command(command.spec, ctx.now_ms);
    }
    let (reason, object): (LogReason, &[u8]) = match denial {
        Denial::Command => (LogReason::Command, command.full_name().as_bytes()),
        Denial::Key(position) => (LogReason::Key, &args[position]),
        Denial::Channel(position) => (LogReason::Channel, &args[position]),
    };
    let client = &ctx.session.client;
    acl.log
        .record(reason, context, object, &rules.name, ctx.now_ms, || {
            let mut line = String::new();
            client
                .registry()
                .describe(client.info(), ctx.now_ms, &mut line);
            line
        });
    Some(denial)
}

/// Counts the request against the client address's budget (`--rate-limit`).
#[cold]
fn rate_admitted(ctx: &mut Ctx<'_>) -> bool {
    let limiter = &ctx.shared.rate_limiter;
    if !ctx.session.rate_budget_known {
        ctx.session.rate_budget = limiter.budget_for(ctx.session.client.info().addr().ip());
        ctx.session.rate_budget_known = true;
    }
    ctx.session
        .rate_budget
        .as_deref()
        .is_none_or(|budget| limiter.admit(budget, ctx.now_ms))
}

/// A command rejected while queuing makes EXEC fail (`EXECABORT`).
fn doom_transaction(ctx: &mut Ctx<'_>) {
    if let Some(multi) = ctx.session.multi.as_deref_mut() {
        multi.doom();
    }
}

/// The error that refuses `command` while the disk cannot keep writes, if any: writes and
/// PING are refused, as Redis does (so that health checks notice); reads go on.
fn write_refusal(ctx: &Ctx<'_>, command: &Command) -> Option<String> {
    if !(command.is_write() || command.name == "ping") {
        return None;
    }
    let refusal = ctx.shared.persist.health.write_refusal(ctx.now_ms)?;
    Some(refusal.into_owned())
}

/// Runs a looked-up command whose arity was checked. `in_unit` is set for the commands of
/// an EXEC (and of a script): blocked clients are then served after the whole unit, not
/// after each command.
pub(crate) fn run_command(
    ctx: &mut Ctx<'_>,
    command: &'static Command,
    args: Argv<'_>,
    in_unit: bool,
) -> bool {
    // Inside EXEC or a script, CLIENT LIST keeps showing EXEC / EVAL, as in Redis.
    if !in_unit {
        ctx.session.client.note_command(command.spec, ctx.now_ms);
    }
    if let Some(refusal) = write_refusal(ctx, command) {
        ctx.out.error(&refusal);
        return false;
    }
    ctx.session.writes += u64::from(command.is_write());
    let reply_start = ctx.out.buf.len();
    let before = propagate::debug::Tally::now();
    // A lock wait inside the handler gives up if a script turns busy meanwhile (see
    // `sync::busy_wait`): the client gets BUSY, as it would had it arrived a moment later.
    let result = crate::sync::busy_wait::abortable(|| (command.handler)(ctx, args))
        .unwrap_or_else(|_| Err(CmdError::new(scripting::BUSY)));
    // A write that succeeded and changed the keyspace must have propagated, unless its
    // catalogue row says it propagates nothing (debug builds only).
    propagate::debug::check(
        command.full_name(),
        command.propagation() != Propagation::None && result.is_ok(),
        before,
    );
    if let Err(err) = result {
        ctx.out.error(err.text());
    }
    // Keys this write made ready for blocked clients are served now (inside EXEC or a
    // script, after the whole unit).
    if !in_unit && command.is_write() {
        serve_blocked_clients(ctx);
    }
    if ctx.session.track_write_replies && command.is_write() {
        ctx.session
            .write_replies
            .push(reply_start..ctx.out.buf.len());
    }
    true
}

/// Serves the clients blocked on keys a write (or a whole transaction or script) made
/// ready: after the command, by the writer, with no lock held (as Redis serves them).
pub(crate) fn serve_blocked_clients(ctx: &Ctx<'_>) {
    if ctx.shared.store.blocking().pending() {
        blocking::serve_ready(ctx.shared, ctx.now_ms);
    }
}

/// For container commands (CLIENT, COMMAND, CONFIG) finds the subcommand.
pub(crate) fn resolve_subcommand(
    command: &'static Command,
    args: Argv<'_>,
) -> Result<&'static Command, CmdError> {
    if command.subcommands.is_empty() {
        return Ok(command);
    }
    let Some(sub) = args.get(1) else {
        // A container that may run bare (COMMAND) runs its own handler.
        if command.arity_ok(args.len()) {
            return Ok(command);
        }
        return Err(CmdError::owned(format!(
            "ERR wrong number of arguments for '{}' command",
            command.name
        )));
    };
    command
        .subcommands
        .iter()
        .find(|s| s.sub_name().as_bytes().eq_ignore_ascii_case(sub))
        .ok_or_else(|| {
            CmdError::owned(format!(
                "ERR unknown subcommand '{}'. Try {} HELP.",
                printable(sub, 128),
                command.name.to_ascii_uppercase()
            ))
        })
}

/// Redis's text for an unknown command, quoting the first arguments (about 128 bytes of them,
/// as `processCommand` does).
fn unknown_command(name: &[u8], args: Argv<'_>) -> String {
    let mut quoted = String::new();
    for arg in args {
        if quoted.len() >= 128 {
            break;
        }
        // As Redis's `'%.*s' ` with `128 - sdslen(args)`: the room left is measured before
        // the opening quote.
        let room = 128 - quoted.len();
        quoted.push('\'');
        quoted.push_str(&printable(arg, room));
        quoted.push_str("' ");
    }
    format!(
        "ERR unknown command '{}', with args beginning with: {quoted}",
        printable(name, 128)
    )
}

/// A byte string for an error message: CR/LF replaced, cut at `max` bytes.
pub fn printable(bytes: &[u8], max: usize) -> String {
    let cut = &bytes[..bytes.len().min(max)];
    String::from_utf8_lossy(cut)
        .chars()
        .map(|c| if c == '\r' || c == '\n' { ' ' } else { c })
        .collect()
}

pub use crate::store::value::string::parse_i64;

/// [`parse_i64`] with Redis's error for an argument.
pub fn arg_i64(bytes: &[u8]) -> Result<i64, CmdError> {
    parse_i64(bytes).ok_or(errors::NOT_INTEGER)
}

/// Parses a SCAN-family cursor: a decimal `u64` (Redis's `strtoul` also takes a sign and
/// leading spaces; see SPEC.md 7.2).
pub fn parse_cursor(bytes: &[u8]) -> Result<u64, CmdError> {
    std::str::from_utf8(bytes)
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or(CmdError::new("ERR invalid cursor"))
}

/// Parses a float as Redis does for INCRBYFLOAT arguments and stored values: no leading
/// space, no NaN. Infinity parses (the command rejects an infinite result).
pub fn parse_f64(bytes: &[u8]) -> Option<f64> {
    let text = std::str::from_utf8(bytes).ok()?;
    if text.is_empty() || text.starts_with(|c: char| c.is_ascii_whitespace()) {
        return None;
    }
    let value: f64 = text.parse().ok()?;
    (!value.is_nan()).then_some(value)
}

/// Formats an INCRBYFLOAT result: plain decimal, no exponent, rounded to 15 significant
/// digits (`DBL_DIG`).
///
/// Redis computes in `long double`, whose extra precision hides binary noise: `0.1 + 0.2`
/// prints `0.3`. In `f64` that sum is `0.30000000000000004`; rounding to the 15 digits an
/// `f64` is guaranteed to carry gives the decimal a user expects, and any decimal of up to 15
/// significant digits survives a round trip through storage unchanged.
pub fn format_f64(value: f64) -> String {
    let rounded: f64 = format!("{value:.14e}").parse().unwrap_or(value);
    if rounded == 0.0 {
        // Avoid "-0".
        return "0".to_owned();
    }
    format!("{rounded}")
}

/// Case-insensitive comparison of an argument with an option name.
#[inline]
pub fn is(arg: &[u8], option: &str) -> bool {
    arg.eq_ignore_ascii_case(option.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_i64_is_strict_like_redis() {
        assert_eq!(parse_i64(b"0"), Some(0));
        assert_eq!(parse_i64(b"-1"), Some(-1));
        assert_eq!(parse_i64(b"9223372036854775807"), Some(i64::MAX));
        assert_eq!(parse_i64(b"-9223372036854775808"), Some(i64::MIN));
        for bad in [
            &b""[..],
            b"-",
            b"+1",
            b" 1",
            b"1 ",
            b"01",
            b"-0",
            b"1.0",
            b"9223372036854775808",
            b"-9223372036854775809",
            b"99999999999999999999",
        ] {
            assert_eq!(parse_i64(bad), None, "{:?}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn float_parse_and_format() {
        assert_eq!(parse_f64(b"1.5"), Some(1.5));
        assert_eq!(parse_f64(b"1e3"), Some(1000.0));
        assert_eq!(parse_f64(b" 1"), None);
        assert_eq!(parse_f64(b"nan"), None);
        assert_eq!(parse_f64(b"abc"), None);
        assert_eq!(format_f64(10.5), "10.5");
        assert_eq!(format_f64(3.0), "3");
        assert_eq!(format_f64(-0.0), "0");
        assert_eq!(format_f64(5.0e3), "5000");
        assert_eq!(format_f64(0.1 + 0.2), "0.3");
        assert_eq!(format_f64(10.5 + 0.1), "10.6");
        assert_eq!(
            format_f64(123_456_789.0 + 0.123_456_789),
            "123456789.123457"
        );
        assert_eq!(format_f64(1e20), "100000000000000000000");
    }

    #[test]
    fn unknown_command_text_matches_redis() {
        let args = protocol::OwnedArgv::new(&["bar", "baz"]);
        assert_eq!(
            unknown_command(b"FOO", args.argv()),
            "ERR unknown command 'FOO', with args beginning with: 'bar' 'baz' "
        );
        // Redis 7.0.15: after a quoted 100-byte argument (103 bytes of text), 25 bytes of
        // room are left, so the next argument is cut to 25 bytes.
        let long = vec![b'x'; 100];
        let args = protocol::OwnedArgv::new(&[&long[..], &long, b"abc"]);
        let text = unknown_command(b"foo", args.argv());
        let expected = format!("'{}' '{}' ", "x".repeat(100), "x".repeat(25));
        assert!(text.ends_with(&expected), "{text}");
    }
}
