//! Running one command, possibly repeated (`-r N`, or `N COMMAND` in the shell), and
//! printing its replies: shared by the shell and one-shot mode.

use std::io::{self, Write};
use std::thread;
use std::time::Duration;

use bytes::Bytes;
use protocol::Frame;

use crate::render::OutputMode;
use crate::session::Session;

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
