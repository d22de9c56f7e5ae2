//! Running one command, possibly repeated (`-r N`, or `N COMMAND` in the shell), and
//! printing its replies: shared by the shell and one-shot mode.
//!
//! `SUBSCRIBE`, `PSUBSCRIBE` and `SSUBSCRIBE` enter a listening mode instead, as in
//! redis-cli: every frame the server sends (confirmations, then messages; RESP3 pushes
//! alike) is printed as it arrives, until an error reply, a lost connection or Ctrl-C.

use std::io::{self, Write};
use std::thread;
use std::time::Duration;

use bytes::Bytes;
use protocol::Frame;

use crate::interrupt::Interrupts;
use crate::render::OutputMode;
use crate::session::Session;

/// Printed before listening when the output is for people, as redis-cli does.
pub const LISTENING_BANNER: &str = "Reading messages... (press Ctrl-C to quit)\n";

/// How to run a command.
#[derive(Debug, Clone, Copy)]
pub struct RunOptions<'a> {
    /// How replies are printed.
    pub output: &'a OutputMode,
    /// Times to run it; negative: until interrupted.
    pub repeat: i64,
    /// Pause between runs (`-i`).
    pub interval: Option<Duration>,
    /// Stop at the first error reply without printing it (`-e`).
    pub stop_on_error_reply: bool,
    /// Where Ctrl-C ends a listening mode (the interactive shell); `None`: Ctrl-C keeps
    /// its default action and ends the process (one-shot mode, as redis-cli).
    pub interrupts: Option<&'static Interrupts>,
}

/// How a run ended.
#[derive(Debug, PartialEq, Eq)]
pub enum RunOutcome {
    /// Every run got its reply (printed).
    Done,
    /// With [`RunOptions::stop_on_error_reply`]: the server replied with this error.
    ErrorReply(Bytes),
    /// The connection failed; the message was written to the error stream.
    Failed,
    /// Ctrl-C ended a listening mode; the connection was closed (it was still subscribed).
    Interrupted,
}

/// Whether `argv` is a command that makes the connection listen for messages.
pub fn is_subscribe(argv: &[Bytes]) -> bool {
    argv.first().is_some_and(|command| {
        ["subscribe", "psubscribe", "ssubscribe"]
            .iter()
            .any(|name| command.eq_ignore_ascii_case(name.as_bytes()))
    })
}

/// Runs `argv` on an open session as `options` say, writing replies (and RESP3 pushes) to
/// `out` and connection errors to `err`.
///
/// # Errors
///
/// Only errors writing to `out` or `err` (e.g. a closed pipe).
pub fn run_command(
    session: &mut Session,
    argv: &[Bytes],
    options: RunOptions<'_>,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> io::Result<RunOutcome> {
    if is_subscribe(argv) {
        return listen(session, argv, options, out, err);
    }
    let mut remaining = options.repeat;
    while remaining != 0 {
        if remaining > 0 {
            remaining -= 1;
        }
        let mut pushes: Vec<Frame> = Vec::new();
        let result = session.execute(argv, &mut |push| pushes.push(push.clone()));
        for push in &pushes {
            out.write_all(&options.output.render(push))?;
        }
        match result {
            Ok(Some(Frame::Error(message))) if options.stop_on_error_reply => {
                out.flush()?;
                return Ok(RunOutcome::ErrorReply(message));
            }
            Ok(Some(reply)) => out.write_all(&options.output.format(argv, &reply))?,
            // The command closed the connection as it should (SHUTDOWN).
            Ok(None) => break,
            Err(error) => {
                out.flush()?;
                writeln!(err, "{error}")?;
                return Ok(RunOutcome::Failed);
            }
        }
        // Flush each reply, so that `kvcli -r 100 -i 1 ... | grep` shows them as they come.
        out.flush()?;
        if remaining != 0 {
            if let Some(interval) = options.interval {
                thread::sleep(interval);
            }
        }
    }
    Ok(RunOutcome::Done)
}

/// Sends a subscribing command and prints every frame that arrives, flushed one by one
/// (so that `kvcli SUBSCRIBE ch | grep` sees them live), until an error reply (the
/// command was refused), the connection fails, or Ctrl-C (see [`RunOptions::interrupts`]).
fn listen(
    session: &mut Session,
    argv: &[Bytes],
    options: RunOptions<'_>,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> io::Result<RunOutcome> {
    if options.output.is_tty() {
        out.write_all(LISTENING_BANNER.as_bytes())?;
        out.flush()?;
    }
    // Armed before sending, so that a Ctrl-C at any moment from here on is ours.
    let guard = options
        .interrupts
        .and_then(|interrupts| Some(interrupts.arm(vec![session.try_clone_stream()?])));
    let interrupted = || guard.as_ref().is_some_and(|g| g.interrupted());
    let mut sent = session.send(argv);
    loop {
        // Checked before every read: frames already buffered do not delay the end.
        if interrupted() {
            session.disconnect();
            return Ok(RunOutcome::Interrupted);
        }
        let frame = match std::mem::replace(&mut sent, Ok(())).and_then(|()| session.read_next()) {
            Ok(frame) => frame,
            // The read failed because Ctrl-C shut the socket down: checked above.
            Err(_) if interrupted() => continue,
            Err(error) => {
                writeln!(err, "{error}")?;
                return Ok(RunOutcome::Failed);
            }
        };
        match frame {
            Frame::Error(message) if options.stop_on_error_reply => {
                return Ok(RunOutcome::ErrorReply(message));
            }
            frame => {
                out.write_all(&options.output.render(&frame))?;
                out.flush()?;
                if matches!(frame, Frame::Error(_)) {
                    // Refused (e.g. no channel given): the connection is not subscribed.
                    return Ok(RunOutcome::Done);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(words: &[&str]) -> Vec<Bytes> {
        words
            .iter()
            .map(|w| Bytes::copy_from_slice(w.as_bytes()))
            .collect()
    }

    #[test]
    fn subscribing_commands_listen() {
        for words in [
            &["subscribe", "ch"][..],
            &["PSUBSCRIBE", "a*"],
            &["SSubscribe", "s"],
            &["subscribe"],
        ] {
            assert!(is_subscribe(&argv(words)), "{words:?}");
        }
        for words in [
            &["unsubscribe"][..],
            &["publish", "subscribe", "x"],
            &["spublish", "ch", "m"],
            &[],
        ] {
            assert!(!is_subscribe(&argv(words)), "{words:?}");
        }
    }
}
