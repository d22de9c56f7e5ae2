//! `kvcli watch KEY|PATTERN ...`: one line per change to the matching keys, as it happens.
//!
//! It rides on keyspace notifications. A first connection reads `notify-keyspace-events`
//! and, when keyspace events (`K`) for every class (`A`) are not all on, adds them for the
//! session with `CONFIG SET` (restored when the watch ends, if nobody changed it since) or,
//! if the server refuses, says how to enable them and watches anyway. A second connection
//! `PSUBSCRIBE`s to `__keyspace@<db>__:<pattern>` for each argument (arguments are glob
//! patterns: a plain key matches itself). For each event the first connection looks the
//! key up: a string's value (escaped as redis-cli shows strings, cut to
//! [`VALUE_WIDTH`] characters), or another type's name and size. Keys that the event
//! removed (`del`, `expired`, `evicted`, `rename_from`, `move_from`) get nothing more.
//!
//! The lookup runs just after the event arrives, so under a burst of writes the value
//! shown can be newer than the event, or `(gone)` when a later change removed the key. Ctrl-C (or SIGTERM, SIGHUP) ends the watch with
//! status 0 once the setting is restored.

use std::io::{self, Write};
use std::process::ExitCode;

use bytes::Bytes;
use protocol::Frame;

use crate::args::Config;
use crate::interrupt::{self, Guard, Signals};
use crate::render::repr;
use crate::session::{Session, SessionError};

/// Longest escaped value shown, in characters, before it is cut with `...`.
pub const VALUE_WIDTH: usize = 60;

/// The configuration parameter that turns keyspace notifications on.
const NOTIFY: &str = "notify-keyspace-events";

/// The event classes that `A` stands for in `notify-keyspace-events` (Redis 7).
const ALL_CLASSES: &[u8] = b"g$lshzxetd";

/// Events after which the key is gone: nothing to look up.
const REMOVING_EVENTS: &[&str] = &["del", "expired", "evicted", "rename_from", "move_from"];

/// Runs the watch; returns the exit status.
///
/// # Errors
///
/// Errors writing the output (a closed pipe ends the watch; the setting is restored
/// first).
pub fn run(config: &Config, patterns: &[Bytes]) -> io::Result<ExitCode> {
    let stdout = io::stdout();
    let stderr = io::stderr();
    let (mut out, mut err) = (stdout.lock(), stderr.lock());
    if patterns.is_empty() {
        writeln!(
            err,
            "Usage: kvcli [OPTIONS] watch KEY|PATTERN [KEY|PATTERN ...]"
        )?;
        return Ok(ExitCode::FAILURE);
    }

    let mut data = Session::new(config.settings.clone(), false);
    if let Err(message) = connect(&mut data) {
        writeln!(err, "{message}")?;
        return Ok(ExitCode::FAILURE);
    }
    let mut listener = Session::new(config.settings.clone(), false);
    if let Err(message) = connect(&mut listener) {
        writeln!(err, "{message}")?;
        return Ok(ExitCode::FAILURE);
    }
    // Armed before the configuration changes, so that however the watch is stopped from
    // here on, the change is undone.
    let interrupts = match interrupt::install(Signals::InterruptAndTermination) {
        Ok(interrupts) => Some(interrupts),
        Err(error) => {
            writeln!(err, "Cannot handle Ctrl-C: {error}")?;
            None
        }
    };
    let guard = interrupts.and_then(|i| Some(i.arm(vec![listener.try_clone_stream()?])));

    let change = match enable_notifications(&mut data, &mut err) {
        Ok(change) => change,
        Err(error) => {
            writeln!(err, "{error}")?;
            return Ok(ExitCode::FAILURE);
        }
    };
    let db = listener.settings().db;
    let watched = watch(
        &mut listener,
        &mut data,
        db,
        patterns,
        guard.as_ref(),
        &mut out,
        &mut err,
    );
    let restored = match &change {
        Some(change) => {
            // Another Ctrl-C now gives up on a server that does not answer.
            let _restoring = interrupts.and_then(|i| Some(i.arm(vec![data.try_clone_stream()?])));
            restore(&mut data, change, &mut err)?
        }
        None => true,
    };
    match watched? {
        End::Interrupted if restored => Ok(ExitCode::SUCCESS),
        _ => Ok(ExitCode::FAILURE),
    }
}

/// Connects; failures of the set-up commands (AUTH, SELECT) are fatal.
fn connect(session: &mut Session) -> Result<(), String> {
    let opened = session.connect().map_err(|e| e.to_string())?;
    if opened.problems.is_empty() {
        Ok(())
    } else {
        Err(opened.problems.join("\n"))
    }
}

/// A change made to `notify-keyspace-events`, to undo at the end.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Change {
    /// The value before.
    previous: Bytes,
    /// The value the server reported after the change.
    ours: Bytes,
}

/// Makes sure keyspace notifications are on, turning them on if needed and allowed.
/// Notices go to `err`; `Some` when the setting was changed.
fn enable_notifications(
    data: &mut Session,
    err: &mut dyn Write,
) -> Result<Option<Change>, SessionError> {
    let current = match config_get(data)? {
        Ok(current) => current,
        Err(problem) => {
            writeln!(
                err,
                "Cannot read {NOTIFY} ({problem}); watching anyway: changes show up only if \
                 keyspace notifications are on."
            )
            .ok();
            return Ok(None);
        }
    };
    if covers(&current) {
        return Ok(None);
    }
    let wanted = widened(&current);
    let reply = call(data, &[b"CONFIG", b"SET", NOTIFY.as_bytes(), &wanted])?;
    if let Frame::Error(message) = reply {
        writeln!(
            err,
            "Keyspace notifications are off ({NOTIFY} is {}) and the server refused to turn \
             them on: {}\nAsk an administrator to run: CONFIG SET {NOTIFY} {}\n\
             (or to set {NOTIFY} \"{}\" in the server's configuration). Watching anyway.",
            quoted(&current),
            String::from_utf8_lossy(&message),
            String::from_utf8_lossy(&wanted),
            String::from_utf8_lossy(&wanted),
        )
        .ok();
        return Ok(None);
    }
    let ours = match config_get(data)? {
        Ok(value) => value,
        Err(_) => Bytes::from(wanted),
    };
    writeln!(
        err,
        "Turned on keyspace notifications for this session ({NOTIFY} {} -> {}); the old \
         value comes back when the watch ends.",
        quoted(&current),
        quoted(&ours)
    )
    .ok();
    Ok(Some(Change {
        previous: current,
        ours,
    }))
}

/// Puts `notify-keyspace-events` back, unless someone changed it since. Returns whether
/// the server is left as it should be (restored, or someone else's value kept).
fn restore(data: &mut Session, change: &Change, err: &mut dyn Write) -> io::Result<bool> {
    match try_restore(data, change) {
        Ok(Restore::Done) => {
            writeln!(err, "Restored {NOTIFY} to {}.", quoted(&change.previous))?;
            Ok(true)
        }
        Ok(Restore::ChangedMeanwhile(now)) => {
            writeln!(
                err,
                "Left {NOTIFY} as {}: it was changed while watching.",
                quoted(&now)
            )?;
            Ok(true)
        }
        Ok(Restore::Refused(problem)) => {
            writeln!(
                err,
                "Could not restore {NOTIFY} to {}: {problem}",
                quoted(&change.previous)
            )?;
            Ok(false)
        }
        Err(error) => {
            writeln!(
                err,
                "Could not restore {NOTIFY} to {}: {error}",
                quoted(&change.previous)
            )?;
            Ok(false)
        }
    }
}

/// What restoring the setting came to.
enum Restore {
    /// The old value is back.
    Done,
    /// Someone set this other value since: it is not ours to undo.
    ChangedMeanwhile(Bytes),
    /// The server refused (the message).
    Refused(String),
}

fn try_restore(data: &mut Session, change: &Change) -> Result<Restore, SessionError> {
    data.ensure_connected()?;
    match config_get(data)? {
        Ok(now) if now != change.ours => return Ok(Restore::ChangedMeanwhile(now)),
        Ok(_) => {}
        Err(problem) => return Ok(Restore::Refused(problem)),
    }
    let words: [&[u8]; 4] = [b"CONFIG", b"SET", NOTIFY.as_bytes(), &change.previous];
    Ok(match call(data, &words)? {
        Frame::Error(message) => Restore::Refused(String::from_utf8_lossy(&message).into_owned()),
        _ => Restore::Done,
    })
}

/// `CONFIG GET notify-keyspace-events`: the value, or why there is none.
fn config_get(data: &mut Session) -> Result<Result<Bytes, String>, SessionError> {
    let reply = call(data, &[b"CONFIG", b"GET", NOTIFY.as_bytes()])?;
    Ok(match reply {
        Frame::Error(message) => Err(String::from_utf8_lossy(&message).into_owned()),
        Frame::Array(items) => match items.as_slice() {
            [_, Frame::Bulk(value)] => Ok(value.clone()),
            _ => Err("the server does not know the parameter".to_owned()),
        },
        Frame::Map(pairs) => match pairs.as_slice() {
            [(_, Frame::Bulk(value))] => Ok(value.clone()),
            _ => Err("the server does not know the parameter".to_owned()),
        },
        other => Err(format!("unexpected reply {other:?}")),
    })
}

/// Runs one command on `session` and returns its reply (errors included).
fn call(session: &mut Session, words: &[&[u8]]) -> Result<Frame, SessionError> {
    let argv: Vec<Bytes> = words.iter().map(|w| Bytes::copy_from_slice(w)).collect();
    // The data connection subscribes to nothing: no push is expected, none is kept.
    match session.execute(&argv, &mut |_| {})? {
        Some(reply) => Ok(reply),
        None => Err(SessionError::Connection(
            crate::connection::ConnectionError::Closed,
        )),
    }
}

/// Whether `flags` (a `notify-keyspace-events` value) sends keyspace events of every class.
pub fn covers(flags: &[u8]) -> bool {
    let all = flags.contains(&b'A');
    let has = |class: u8| flags.contains(&class) || (all && ALL_CLASSES.contains(&class));
    has(b'K') && ALL_CLASSES.iter().all(|&class| has(class))
}

/// `flags` plus keyspace events of every class.
pub fn widened(flags: &[u8]) -> Vec<u8> {
    let mut wanted = flags.to_vec();
    for flag in [b'K', b'A'] {
        if !wanted.contains(&flag) {
            wanted.push(flag);
        }
    }
    wanted
}

/// How the watch ended.
#[derive(Debug, PartialEq, Eq)]
enum End {
    /// Ctrl-C or another stopping signal.
    Interrupted,
    /// The subscription failed (refused or connection lost); reported.
    Failed,
}

/// Subscribes and prints the changes until interrupted or the connection fails.
fn watch(
    listener: &mut Session,
    data: &mut Session,
    db: i64,
    patterns: &[Bytes],
    guard: Option<&Guard>,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> io::Result<End> {
    let interrupted = || guard.is_some_and(Guard::interrupted);
    let mut argv = vec![Bytes::from_static(b"PSUBSCRIBE")];
    argv.extend(patterns.iter().map(|p| keyspace_pattern(db, p)));
    // Announced once every pattern is confirmed: from then on no change is missed.
    let mut unconfirmed = patterns.len();
    let mut sent = listener.send(&argv);
    loop {
        // Checked before every read: frames already buffered do not delay the end.
        if interrupted() {
            return Ok(End::Interrupted);
        }
        let frame = match sent.and_then(|()| listener.read_next()) {
            Ok(frame) => frame,
            Err(_) if interrupted() => return Ok(End::Interrupted),
            Err(error) => {
                writeln!(err, "{error}")?;
                return Ok(End::Failed);
            }
        };
        sent = Ok(());
        match frame {
            Frame::Error(message) => {
                writeln!(
                    err,
                    "PSUBSCRIBE failed: {}",
                    String::from_utf8_lossy(&message)
                )?;
                return Ok(End::Failed);
            }
            Frame::Array(items) | Frame::Push(items) => {
                if let Some((channel, event)) = pmessage(&items) {
                    let line = describe(data, channel, event);
                    out.write_all(&line)?;
                    out.flush()?;
                } else if is_confirmation(&items) && unconfirmed > 0 {
                    unconfirmed -= 1;
                    if unconfirmed == 0 {
                        announce(db, patterns, err)?;
                    }
                }
            }
            _ => {}
        }
    }
}

/// Whether `items` confirms a `PSUBSCRIBE` (one comes for each pattern).
fn is_confirmation(items: &[Frame]) -> bool {
    matches!(items.first(), Some(Frame::Bulk(kind)) if kind.eq_ignore_ascii_case(b"psubscribe"))
}

/// Tells the user that the watch has started.
fn announce(db: i64, patterns: &[Bytes], err: &mut dyn Write) -> io::Result<()> {
    let mut shown = Vec::new();
    for pattern in patterns {
        repr(&mut shown, pattern);
        shown.push(b' ');
    }
    writeln!(
        err,
        "Watching {}in database {db} (Ctrl-C to stop).",
        String::from_utf8_lossy(&shown)
    )?;
    err.flush()
}

/// The channel pattern for keys matching `pattern` in database `db`.
fn keyspace_pattern(db: i64, pattern: &[u8]) -> Bytes {
    let mut channel = format!("__keyspace@{db}__:").into_bytes();
    channel.extend_from_slice(pattern);
    Bytes::from(channel)
}

/// The channel and message of a `pmessage` (confirmations and other frames: `None`).
fn pmessage(items: &[Frame]) -> Option<(&[u8], &[u8])> {
    match items {
        [Frame::Bulk(kind), _pattern, Frame::Bulk(channel), Frame::Bulk(event)]
            if kind.eq_ignore_ascii_case(b"pmessage") =>
        {
            Some((channel, event))
        }
        _ => None,
    }
}

/// Splits `__keyspace@<db>__:<key>` into the database and the key.
pub fn parse_channel(channel: &[u8]) -> Option<(&[u8], &[u8])> {
    let rest = channel.strip_prefix(b"__keyspace@")?;
    let end = rest.windows(3).position(|w| w == b"__:")?;
    let (db, key) = (&rest[..end], &rest[end + 3..]);
    (!db.is_empty() && db.iter().all(u8::is_ascii_digit)).then_some((db, key))
}

/// The line for one event: time, database, key, event, and what the key holds now.
fn describe(data: &mut Session, channel: &[u8], event: &[u8]) -> Vec<u8> {
    let mut line = chrono::Local::now()
        .format("%H:%M:%S%.3f ")
        .to_string()
        .into_bytes();
    let Some((db, key)) = parse_channel(channel) else {
        // Not a keyspace channel (cannot happen with our patterns): show it as it is.
        repr(&mut line, channel);
        line.push(b' ');
        line.extend_from_slice(event);
        line.push(b'\n');
        return line;
    };
    line.extend_from_slice(b"db");
    line.extend_from_slice(db);
    line.push(b' ');
    repr(&mut line, key);
    line.push(b' ');
    line.extend_from_slice(event);
    let removed = REMOVING_EVENTS
        .iter()
        .any(|gone| event.eq_ignore_ascii_case(gone.as_bytes()));
    if !removed {
        match look_up(data, key) {
            Ok(Some(state)) => {
                line.push(b' ');
                line.extend_from_slice(&state);
            }
            Ok(None) => line.extend_from_slice(b" (gone)"),
            Err(error) => {
                line.extend_from_slice(format!(" (lookup failed: {error})").as_bytes());
            }
        }
    }
    line.push(b'\n');
    line
}

/// What `key` holds now: a string's escaped value, another type's name and size; `None`
/// when the key is gone already (a later change removed it before the lookup).
fn look_up(data: &mut Session, key: &[u8]) -> Result<Option<Vec<u8>>, SessionError> {
    data.ensure_connected()?;
    let kind = match call(data, &[b"TYPE", key])? {
        Frame::Simple(kind) | Frame::Bulk(kind) => kind,
        Frame::Error(message) => return Ok(Some(message.to_vec())),
        _ => return Ok(None),
    };
    let (size_command, unit): (&[u8], &str) = match &kind[..] {
        b"none" => return Ok(None),
        b"string" => return string_value(data, key).map(Some),
        b"list" => (b"LLEN", "element"),
        b"hash" => (b"HLEN", "field"),
        b"set" => (b"SCARD", "member"),
        b"zset" => (b"ZCARD", "member"),
        b"stream" => (b"XLEN", "entry"),
        other => return Ok(Some(other.to_vec())),
    };
    let mut state = kind.to_vec();
    if let Frame::Integer(size) = call(data, &[size_command, key])? {
        state.extend_from_slice(format!(" ({})", count(size, unit)).as_bytes());
    }
    Ok(Some(state))
}

/// A string's value, escaped and cut to [`VALUE_WIDTH`], read with `GETRANGE` so that a
/// huge value is not transferred whole.
fn string_value(data: &mut Session, key: &[u8]) -> Result<Vec<u8>, SessionError> {
    // Escaping can only lengthen the text: more bytes than this are never shown.
    let last = (VALUE_WIDTH - 1).to_string();
    let head = match call(data, &[b"GETRANGE", key, b"0", last.as_bytes()])? {
        Frame::Bulk(head) => head,
        // The key changed type since TYPE: say what it is now.
        _ => return Ok(b"(changed meanwhile)".to_vec()),
    };
    let total = if head.len() == VALUE_WIDTH {
        match call(data, &[b"STRLEN", key])? {
            Frame::Integer(n) => usize::try_from(n).unwrap_or(head.len()),
            _ => head.len(),
        }
    } else {
        head.len()
    };
    Ok(escaped_value(&head, total))
}

/// `value` (the first bytes of a string of `total` bytes) as redis-cli shows strings,
/// with at most [`VALUE_WIDTH`] characters between the quotes; a cut value ends in
/// `..."` and gives its size.
pub fn escaped_value(value: &[u8], total: usize) -> Vec<u8> {
    let mut out = b"\"".to_vec();
    let mut cut = value.len() < total;
    for &byte in value {
        let mut one = Vec::new();
        repr(&mut one, &[byte]);
        let inner = &one[1..one.len() - 1];
        if out.len() - 1 + inner.len() > VALUE_WIDTH {
            cut = true;
            break;
        }
        out.extend_from_slice(inner);
    }
    if cut {
        out.extend_from_slice(format!("...\" ({})", count(total as i64, "byte")).as_bytes());
    } else {
        out.push(b'"');
    }
    out
}

/// `1 member`, `3 members`.
fn count(n: i64, unit: &str) -> String {
    let plural = match (n, unit) {
        (1, _) => "",
        (_, "entry") => return format!("{n} entries"),
        _ => "s",
    };
    format!("{n} {unit}{plural}")
}

/// The value as text for messages, in double quotes.
fn quoted(value: &[u8]) -> String {
    let mut out = Vec::new();
    repr(&mut out, value);
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notification_flags_like_redis() {
        assert!(!covers(b""));
        assert!(covers(b"AK"));
        assert!(covers(b"AKE"));
        assert!(covers(b"AKm"));
        assert!(covers(b"Kg$lshzxetd"));
        assert!(!covers(b"A"), "keyevent only is no keyspace");
        assert!(!covers(b"Kx"), "one class is not all");
        assert!(!covers(b"Kg$lshzxet"), "module events missing");
        assert_eq!(widened(b""), b"KA");
        assert_eq!(widened(b"xE"), b"xEKA");
        assert_eq!(widened(b"AE"), b"AEK");
    }

    #[test]
    fn channels_split_into_database_and_key() {
        assert_eq!(
            parse_channel(b"__keyspace@0__:user:1"),
            Some((&b"0"[..], &b"user:1"[..]))
        );
        assert_eq!(
            parse_channel(b"__keyspace@12__:a__:b"),
            Some((&b"12"[..], &b"a__:b"[..])),
            "the key may contain the separator"
        );
        assert_eq!(
            parse_channel(b"__keyspace@3__:"),
            Some((&b"3"[..], &b""[..]))
        );
        assert_eq!(parse_channel(b"__keyevent@0__:set"), None);
        assert_eq!(parse_channel(b"__keyspace@x__:k"), None);
        assert_eq!(parse_channel(b"__keyspace@__:k"), None);
        assert_eq!(
            keyspace_pattern(2, b"user:*"),
            Bytes::from_static(b"__keyspace@2__:user:*")
        );
    }

    #[test]
    fn values_are_escaped_and_cut() {
        assert_eq!(escaped_value(b"hello", 5), b"\"hello\"");
        assert_eq!(escaped_value(b"", 0), b"\"\"");
        assert_eq!(escaped_value(b"a\nb\x00\"", 5), b"\"a\\nb\\x00\\\"\"");
        let long = vec![b'x'; VALUE_WIDTH];
        let shown = String::from_utf8(escaped_value(&long, 1000)).expect("text");
        assert_eq!(
            shown,
            format!("\"{}...\" (1000 bytes)", "x".repeat(VALUE_WIDTH))
        );
        let exact = String::from_utf8(escaped_value(&long, VALUE_WIDTH)).expect("text");
        assert_eq!(exact, format!("\"{}\"", "x".repeat(VALUE_WIDTH)));
        // Escapes count towards the width and are never split.
        let binary = vec![0u8; VALUE_WIDTH];
        let shown = String::from_utf8(escaped_value(&binary, VALUE_WIDTH)).expect("text");
        let inner = VALUE_WIDTH / 4 * 4;
        assert_eq!(
            shown,
            format!("\"{}...\" ({VALUE_WIDTH} bytes)", "\\x00".repeat(inner / 4))
        );
    }

    #[test]
    fn counts_read_naturally() {
        assert_eq!(count(1, "member"), "1 member");
        assert_eq!(count(0, "field"), "0 fields");
        assert_eq!(count(3, "entry"), "3 entries");
        assert_eq!(count(1, "entry"), "1 entry");
    }

    #[test]
    fn only_pmessages_are_events() {
        let bulk = |s: &'static [u8]| Frame::Bulk(Bytes::from_static(s));
        let message = [
            bulk(b"pmessage"),
            bulk(b"__keyspace@0__:*"),
            bulk(b"__keyspace@0__:k"),
            bulk(b"set"),
        ];
        assert_eq!(
            pmessage(&message),
            Some((&b"__keyspace@0__:k"[..], &b"set"[..]))
        );
        let confirmation = [
            bulk(b"psubscribe"),
            bulk(b"__keyspace@0__:*"),
            Frame::Integer(1),
        ];
        assert_eq!(pmessage(&confirmation), None);
        assert!(is_confirmation(&confirmation));
        assert!(!is_confirmation(&message));
    }
}
