//! `--scan [--pattern P] [--count N]`: lists every key with SCAN, one per line (quoted in
//! formatted output, as is in raw output), as redis-cli does.

use std::io::{self, Write};
use std::process::ExitCode;
use std::thread;
use std::time::Duration;

use bytes::Bytes;
use protocol::Frame;

use crate::render::{self, OutputMode};
use crate::session::Session;

/// The SCAN iteration's parameters.
#[derive(Debug, Clone)]
pub struct ScanOptions {
    /// `MATCH` pattern, if any.
    pub pattern: Option<Bytes>,
    /// `COUNT` hint.
    pub count: u32,
    /// Pause between calls (`-i`).
    pub interval: Option<Duration>,
}

/// Iterates SCAN from cursor 0 until the server returns 0, printing the keys to `out`.
///
/// # Errors
///
/// Errors writing to `out` or `err`.
pub fn run(
    session: &mut Session,
    options: &ScanOptions,
    output: &OutputMode,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> io::Result<ExitCode> {
    let mut cursor = Bytes::from_static(b"0");
    loop {
        let mut argv = vec![Bytes::from_static(b"SCAN"), cursor];
        if let Some(pattern) = &options.pattern {
            argv.push(Bytes::from_static(b"MATCH"));
            argv.push(pattern.clone());
        }
        argv.push(Bytes::from_static(b"COUNT"));
        argv.push(Bytes::from(options.count.to_string()));

        let reply = match session.execute(&argv, &mut |_| {}) {
            Ok(Some(reply)) => reply,
            Ok(None) => return Ok(ExitCode::FAILURE),
            Err(error) => {
                writeln!(err, "{error}")?;
                return Ok(ExitCode::FAILURE);
            }
        };
        let (next, keys) = match parse_reply(reply) {
            Ok(parsed) => parsed,
            Err(message) => {
                writeln!(err, "{message}")?;
                return Ok(ExitCode::FAILURE);
            }
        };
        for key in keys {
            if output.is_tty() {
                let mut line = Vec::with_capacity(key.len() + 3);
                render::repr(&mut line, &key);
                out.write_all(&line)?;
            } else {
                out.write_all(&key)?;
            }
            out.write_all(b"\n")?;
        }
        if next.as_ref() == b"0" {
            out.flush()?;
            return Ok(ExitCode::SUCCESS);
        }
        cursor = next;
        if let Some(interval) = options.interval {
            out.flush()?;
            thread::sleep(interval);
        }
    }
}

/// The next cursor and the keys of a SCAN reply, or redis-cli's message for a bad reply.
fn parse_reply(reply: Frame) -> Result<(Bytes, Vec<Bytes>), String> {
    let items = match reply {
        Frame::Array(items) => items,
        Frame::Error(message) => {
            return Err(format!("SCAN error: {}", String::from_utf8_lossy(&message)));
        }
        _ => return Err("Non ARRAY response from SCAN!".to_owned()),
    };
    let [cursor, keys]: [Frame; 2] = items
        .try_into()
        .map_err(|_| "Invalid element count from SCAN!".to_owned())?;
    let (Frame::Bulk(cursor), Frame::Array(keys)) = (cursor, keys) else {
        return Err("Invalid SCAN reply: expected a cursor and an array of keys".to_owned());
    };
    let keys = keys
        .into_iter()
        .map(|key| match key {
            Frame::Bulk(key) => Ok(key),
            _ => Err("Invalid SCAN reply: a key is not a string".to_owned()),
        })
        .collect::<Result<_, _>>()?;
    Ok((cursor, keys))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bulk(s: &'static [u8]) -> Frame {
        Frame::Bulk(Bytes::from_static(s))
    }

    #[test]
    fn scan_replies() {
        let reply = Frame::Array(vec![
            bulk(b"17"),
            Frame::Array(vec![bulk(b"a"), bulk(b"b")]),
        ]);
        assert_eq!(
            parse_reply(reply),
            Ok((
                Bytes::from_static(b"17"),
                vec![Bytes::from_static(b"a"), Bytes::from_static(b"b")]
            ))
        );
        assert_eq!(
            parse_reply(Frame::Error(Bytes::from_static(b"ERR invalid cursor"))),
            Err("SCAN error: ERR invalid cursor".to_owned())
        );
        assert_eq!(
            parse_reply(Frame::Integer(1)),
            Err("Non ARRAY response from SCAN!".to_owned())
        );
        assert_eq!(
            parse_reply(Frame::Array(vec![bulk(b"0")])),
            Err("Invalid element count from SCAN!".to_owned())
        );
        assert!(parse_reply(Frame::Array(vec![
            bulk(b"0"),
            Frame::Array(vec![Frame::Integer(1)])
        ]))
        .is_err());
    }
}
