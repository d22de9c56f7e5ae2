//! One-shot mode: `kvcli SET k v` runs the command (`-r` times, `-i` apart), prints the
//! replies and exits.
//!
//! Exit status, as redis-cli 7: 0 once the command ran, error replies included (with `-e`
//! an error reply is printed to standard error and the status is 1); 1 when the server
//! cannot be reached or the connection fails.

use std::io::{self, Read, Write};
use std::process::ExitCode;

use bytes::Bytes;

use crate::args::Config;
use crate::exec::{run_command, RunOptions, RunOutcome};
use crate::help;
use crate::session::Session;

/// Runs `argv` as `config` says.
///
/// # Errors
///
/// Errors reading standard input (`-x`) or writing the output.
pub fn run(config: &Config, mut argv: Vec<Bytes>, stdin: &mut dyn Read) -> io::Result<ExitCode> {
    let stdout = io::stdout();
    let stderr = io::stderr();
    let (mut out, mut err) = (stdout.lock(), stderr.lock());

    let is_help = argv
        .first()
        .is_some_and(|c| c.eq_ignore_ascii_case(b"help") || c.as_ref() == b"?");
    let mut session = Session::new(config.settings.clone(), is_help);
    if is_help {
        // Help needs no server, but uses its COMMAND DOCS when there is one.
        let _ = session.connect();
        let text = help::render(&session.help(), &argv[1..], config.output.is_tty());
        out.write_all(text.as_bytes())?;
        out.flush()?;
        return Ok(ExitCode::SUCCESS);
    }

    if config.stdin_last_arg {
        let mut last = Vec::new();
        stdin.read_to_end(&mut last)?;
        argv.push(Bytes::from(last));
    }

    match session.connect() {
        Ok(opened) if opened.problems.is_empty() => {}
        Ok(opened) => {
            for problem in &opened.problems {
                writeln!(err, "{problem}")?;
            }
            return Ok(ExitCode::FAILURE);
        }
        Err(error) => {
            writeln!(err, "{error}")?;
            return Ok(ExitCode::FAILURE);
        }
    }

    let options = RunOptions {
        output: &config.output,
        repeat: config.repeat,
        interval: config.interval,
        stop_on_error_reply: config.error_exit,
        // Ctrl-C keeps its default action: it ends a one-shot `SUBSCRIBE`, as in redis-cli.
        interrupts: None,
    };
    match run_command(&mut session, &argv, options, &mut out, &mut err)? {
        RunOutcome::Done => Ok(ExitCode::SUCCESS),
        RunOutcome::ErrorReply(message) => {
            err.write_all(&message)?;
            err.write_all(b"\n")?;
            Ok(ExitCode::FAILURE)
        }
        RunOutcome::Failed => Ok(ExitCode::FAILURE),
        RunOutcome::Interrupted => Ok(ExitCode::SUCCESS),
    }
}
