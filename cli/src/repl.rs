//! The interactive shell: a rustyline loop with history, completion and hints on a
//! terminal; plain line-by-line reading when standard input is a file or a pipe
//! (`kvcli < commands.txt`), as redis-cli does.
//!
//! Each line is split as redis-cli splits it ([`protocol::inline::split_args`]: double
//! quotes with `\n \t \xHH` escapes, single quotes; unbalanced quotes print
//! `Invalid argument(s)` and send nothing). `N COMMAND` runs a command N times. Built-ins:
//! `help`, `quit` / `exit`, `clear`, `connect HOST PORT`. `SUBSCRIBE` and its kin listen
//! for messages until Ctrl-C, which closes that connection, opens a new one and returns to
//! the prompt (see [`crate::exec`]); Ctrl-C while another command runs ends kvcli with
//! status 1, as in redis-cli.

use std::io::{self, BufRead, Write};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use bytes::Bytes;
use protocol::inline::split_args;
use rustyline::config::{CompletionType, Config as EditorConfig};
use rustyline::error::ReadlineError;
use rustyline::history::FileHistory;
use rustyline::Editor;

use crate::connection::Target;
use crate::exec::{run_command, RunOptions, RunOutcome};
use crate::helper::KvHelper;
use crate::interrupt::{self, Interrupts, Signals};
use crate::render::OutputMode;
use crate::session::{Opened, Session, SessionError};
use crate::{help, history};

/// Commands slower than this get their duration printed, as redis-cli does.
const SLOW_COMMAND: Duration = Duration::from_millis(500);

/// Lines kept in the history.
const HISTORY_SIZE: usize = 1000;

/// Whether the shell goes on after a line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    /// Read the next line.
    Continue,
    /// `quit` / `exit`.
    Exit,
}

/// The shell's state: the session and how to print.
pub struct Shell {
    session: Session,
    output: OutputMode,
    interval: Option<Duration>,
    /// Standard output is a terminal: colour the help.
    color: bool,
    /// Where Ctrl-C ends a listening mode (on a terminal); see [`crate::interrupt`].
    interrupts: Option<&'static Interrupts>,
}

impl Shell {
    /// A shell over `session`.
    pub fn new(
        session: Session,
        output: OutputMode,
        interval: Option<Duration>,
        color: bool,
    ) -> Shell {
        Shell {
            session,
            output,
            interval,
            color,
            interrupts: None,
        }
    }

    /// Lets Ctrl-C end a listening mode (`SUBSCRIBE`) and return to the prompt, instead of
    /// ending the process.
    pub fn interrupt_with(&mut self, interrupts: &'static Interrupts) {
        self.interrupts = Some(interrupts);
    }

    /// The session (for its prompt and help table).
    pub fn session(&self) -> &Session {
        &self.session
    }

    /// Connects at start-up. Failing is not fatal: the next command tries again, and the
    /// prompt says `not connected>` meanwhile.
    ///
    /// # Errors
    ///
    /// Only errors writing to `err`.
    pub fn connect(&mut self, err: &mut dyn Write) -> io::Result<()> {
        let result = self.session.connect();
        report_connect(result.map(Some), err)
    }

    /// Runs one line typed by the user.
    ///
    /// # Errors
    ///
    /// Only errors writing to `out` or `err`.
    pub fn run_line(
        &mut self,
        line: &[u8],
        out: &mut dyn Write,
        err: &mut dyn Write,
    ) -> io::Result<Flow> {
        let Ok(argv) = split_args(line) else {
            writeln!(out, "Invalid argument(s)")?;
            return Ok(Flow::Continue);
        };
        let Some(first) = argv.first() else {
            return Ok(Flow::Continue);
        };
        let is = |word: &Bytes, name: &str| word.eq_ignore_ascii_case(name.as_bytes());
        if is(first, "quit") || is(first, "exit") {
            return Ok(Flow::Exit);
        }
        if is(first, "connect") && argv.len() == 3 {
            let host = String::from_utf8_lossy(&argv[1]).into_owned();
            let Some(port) = std::str::from_utf8(&argv[2])
                .ok()
                .and_then(|p| p.parse().ok())
            else {
                writeln!(err, "Invalid port: {}", String::from_utf8_lossy(&argv[2]))?;
                return Ok(Flow::Continue);
            };
            let result = self.session.switch_target(Target { host, port });
            report_connect(result.map(Some), err)?;
            return Ok(Flow::Continue);
        }
        if is(first, "clear") && argv.len() == 1 {
            // Home the cursor and erase the screen.
            out.write_all(b"\x1b[H\x1b[2J")?;
            out.flush()?;
            return Ok(Flow::Continue);
        }
        let Some((repeat, argv)) = split_repeat(&argv) else {
            writeln!(out, "Invalid repeat count: it must be a positive number.")?;
            return Ok(Flow::Continue);
        };
        if argv
            .first()
            .is_some_and(|c| is(c, "help") || c.as_ref() == b"?")
        {
            let text = help::render(&self.session.help(), &argv[1..], self.color);
            out.write_all(text.as_bytes())?;
            out.flush()?;
            return Ok(Flow::Continue);
        }
        self.execute(argv, repeat, out, err)?;
        Ok(Flow::Continue)
    }

    fn execute(
        &mut self,
        argv: &[Bytes],
        repeat: i64,
        out: &mut dyn Write,
        err: &mut dyn Write,
    ) -> io::Result<()> {
        let result = self.session.ensure_connected();
        let connected = result.is_ok();
        report_connect(result, err)?;
        if !connected {
            return Ok(());
        }
        let started = Instant::now();
        let options = RunOptions {
            output: &self.output,
            repeat,
            interval: self.interval,
            stop_on_error_reply: false,
            interrupts: self.interrupts,
        };
        let outcome = run_command(&mut self.session, argv, options, out, err)?;
        let elapsed = started.elapsed();
        let finished = matches!(outcome, RunOutcome::Done | RunOutcome::Interrupted);
        if finished && elapsed >= SLOW_COMMAND && self.output.is_tty() {
            writeln!(out, "({:.2}s)", elapsed.as_secs_f64())?;
        }
        if outcome == RunOutcome::Interrupted {
            // The old connection was still subscribed: start afresh, as redis-cli does.
            out.flush()?;
            self.connect(err)?;
        }
        Ok(())
    }
}

/// Prints what opening a connection produced: the failure, or the reconnection notice and
/// any set-up command that failed.
fn report_connect(
    result: Result<Option<Opened>, SessionError>,
    err: &mut dyn Write,
) -> io::Result<()> {
    match result {
        Ok(None) => {}
        Ok(Some(opened)) => {
            for problem in &opened.problems {
                writeln!(err, "{problem}")?;
            }
            if let Some(notice) = &opened.notice {
                writeln!(err, "{notice}")?;
            }
        }
        Err(error) => writeln!(err, "{error}")?,
    }
    err.flush()
}

/// Splits a leading repeat count off (`3 INCR x` runs `INCR x` three times), as redis-cli
/// does: a first word that is a whole decimal number, followed by a command. `None` for a
/// count that is zero, negative or too big.
fn split_repeat(argv: &[Bytes]) -> Option<(i64, &[Bytes])> {
    let (first, rest) = argv.split_first()?;
    let digits = first
        .strip_prefix(b"+")
        .or_else(|| first.strip_prefix(b"-"))
        .unwrap_or(first);
    let is_number = !digits.is_empty() && digits.iter().all(u8::is_ascii_digit);
    if rest.is_empty() || !is_number {
        return Some((1, argv));
    }
    let count: i64 = std::str::from_utf8(first).ok()?.parse().ok()?;
    (count > 0).then_some((count, rest))
}

/// Whether `line` may go into the history (not blank, no secrets).
pub fn should_record(line: &[u8]) -> bool {
    match split_args(line) {
        Ok(argv) if argv.is_empty() => false,
        Ok(argv) => {
            let command = split_repeat(&argv).map_or(&argv[..], |(_, command)| command);
            !history::is_sensitive(command)
        }
        Err(_) => !history::is_sensitive_unparsed(line),
    }
}

/// Runs the shell on a terminal: line editing, completion, hints and history.
///
/// # Errors
///
/// Errors of the terminal or of standard output.
pub fn run_terminal(mut shell: Shell, history_path: Option<PathBuf>) -> io::Result<()> {
    let stdout = io::stdout();
    let stderr = io::stderr();
    match interrupt::install(Signals::Interrupt) {
        Ok(interrupts) => shell.interrupt_with(interrupts),
        // Then Ctrl-C while listening ends kvcli, which is what it does in one-shot mode.
        Err(error) => writeln!(stderr.lock(), "Cannot handle Ctrl-C: {error}")?,
    }
    shell.connect(&mut stderr.lock())?;

    let config = EditorConfig::builder()
        .completion_type(CompletionType::Circular)
        .max_history_size(HISTORY_SIZE)
        .map_err(io::Error::other)?
        .auto_add_history(false)
        .build();
    let mut editor: Editor<KvHelper, FileHistory> =
        Editor::with_config(config).map_err(io::Error::other)?;
    let session = shell.session();
    editor.set_helper(Some(KvHelper::new(session.help(), session.help_version())));
    if let Some(path) = &history_path {
        // A missing or unreadable history file is not a reason to refuse to start.
        let _ = editor.load_history(path);
    }

    loop {
        let session = shell.session();
        let (table, version) = (session.help(), session.help_version());
        if let Some(helper) = editor.helper_mut() {
            helper.update(table, version);
        }
        let prompt = session.prompt();
        let line = match editor.readline(&prompt) {
            Ok(line) => line,
            // Ctrl-C at the prompt leaves the shell, as in redis-cli.
            Err(ReadlineError::Interrupted) => break,
            // Ctrl-D on an empty line.
            Err(ReadlineError::Eof) => break,
            Err(ReadlineError::Io(error)) => return Err(error),
            Err(error) => return Err(io::Error::other(error)),
        };
        if should_record(line.as_bytes()) {
            // History is a convenience: failing to record or save it is not an error.
            let _ = editor.add_history_entry(line.as_str());
            if let Some(path) = &history_path {
                let _ = editor.append_history(path);
            }
        }
        let flow = shell.run_line(line.as_bytes(), &mut stdout.lock(), &mut stderr.lock())?;
        if flow == Flow::Exit {
            break;
        }
    }
    Ok(())
}

/// Runs commands read line by line from `input` (standard input that is not a terminal):
/// no prompt, no history, no hints.
///
/// # Errors
///
/// Errors reading `input` or writing the output.
pub fn run_lines(mut shell: Shell, input: &mut dyn BufRead) -> io::Result<()> {
    let stdout = io::stdout();
    let stderr = io::stderr();
    shell.connect(&mut stderr.lock())?;
    let mut line = Vec::new();
    loop {
        line.clear();
        if input.read_until(b'\n', &mut line)? == 0 {
            return Ok(());
        }
        let text = line.strip_suffix(b"\n").unwrap_or(&line);
        let text = text.strip_suffix(b"\r").unwrap_or(text);
        if shell.run_line(text, &mut stdout.lock(), &mut stderr.lock())? == Flow::Exit {
            return Ok(());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::Settings;

    fn argv(words: &[&str]) -> Vec<Bytes> {
        words
            .iter()
            .map(|w| Bytes::copy_from_slice(w.as_bytes()))
            .collect()
    }

    #[test]
    fn repeat_prefix_like_redis_cli() {
        let line = argv(&["3", "INCR", "x"]);
        assert_eq!(split_repeat(&line), Some((3, &line[1..])));
        let lone = argv(&["3"]);
        assert_eq!(
            split_repeat(&lone),
            Some((1, &lone[..])),
            "a number alone is a command"
        );
        let word = argv(&["3x", "INCR"]);
        assert_eq!(split_repeat(&word), Some((1, &word[..])));
        let sign = argv(&["+", "PING"]);
        assert_eq!(
            split_repeat(&sign),
            Some((1, &sign[..])),
            "a sign alone is no number"
        );
        let plus = argv(&["+2", "PING"]);
        assert_eq!(split_repeat(&plus), Some((2, &plus[1..])));
        assert_eq!(split_repeat(&argv(&["0", "PING"])), None);
        assert_eq!(split_repeat(&argv(&["-1", "PING"])), None);
        assert_eq!(split_repeat(&argv(&["99999999999999999999", "PING"])), None);
    }

    /// The shell splits lines with `protocol::inline::split_args`; these are redis-cli's
    /// rules as a user types them.
    #[test]
    fn lines_split_like_redis_cli() {
        let split = |line: &[u8]| -> Option<Vec<Vec<u8>>> {
            split_args(line)
                .ok()
                .map(|args| args.iter().map(|a| a.to_vec()).collect())
        };
        let words = |list: &[&[u8]]| Some(list.iter().map(|w| w.to_vec()).collect::<Vec<_>>());
        assert_eq!(
            split(br#"set "a key" 'it\'s' "\x41\n\t\x00" plain"#),
            words(&[b"set", b"a key", b"it's", b"A\n\t\x00", b"plain"])
        );
        assert_eq!(split(br"get 'a\nb'"), words(&[b"get", br"a\nb"]));
        assert_eq!(split(b"  ping   "), words(&[b"ping"]));
        assert_eq!(split(br#"echo "\xzz""#), words(&[b"echo", b"xzz"]));
        assert_eq!(split(b"set k \"abc"), None, "unterminated double quote");
        assert_eq!(split(b"set k 'abc"), None, "unterminated single quote");
        assert_eq!(
            split(b"set k \"a\"b"),
            None,
            "closing quote followed by a letter"
        );
    }

    #[test]
    fn history_keeps_secrets_out() {
        assert!(should_record(b"set k v"));
        assert!(should_record(b"set k \"unbalanced"));
        assert!(!should_record(b""));
        assert!(!should_record(b"   "));
        assert!(!should_record(b"AUTH default secret"));
        assert!(!should_record(b"2 auth secret"));
        assert!(!should_record(b"hello 3 auth default secret"));
        assert!(!should_record(b"auth \"secret"));
    }

    fn offline_shell() -> Shell {
        let settings = Settings {
            target: Target {
                host: "127.0.0.1".to_owned(),
                // Port 0 cannot be connected to: every command fails to connect.
                port: 0,
            },
            connect_timeout: None,
            auth: None,
            db: 0,
            resp3: false,
            tls: None,
        };
        Shell::new(Session::new(settings, false), OutputMode::Tty, None, false)
    }

    fn run(shell: &mut Shell, line: &str) -> (Flow, String, String) {
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let flow = match shell.run_line(line.as_bytes(), &mut out, &mut err) {
            Ok(flow) => flow,
            Err(error) => panic!("{line}: {error}"),
        };
        let text = |bytes: Vec<u8>| String::from_utf8(bytes).unwrap_or_default();
        (flow, text(out), text(err))
    }

    #[test]
    fn built_ins_work_without_a_server() {
        let mut shell = offline_shell();
        assert_eq!(
            run(&mut shell, "set k \"abc"),
            (
                Flow::Continue,
                "Invalid argument(s)\n".to_owned(),
                String::new()
            )
        );
        assert_eq!(
            run(&mut shell, "   "),
            (Flow::Continue, String::new(), String::new())
        );
        assert_eq!(
            run(&mut shell, "0 ping").1,
            "Invalid repeat count: it must be a positive number.\n"
        );
        let (_, help, _) = run(&mut shell, "help get");
        assert!(help.starts_with("\n  GET key\n"));
        assert_eq!(run(&mut shell, "? @nope").1, "\n");
        assert_eq!(run(&mut shell, "clear").1, "\x1b[H\x1b[2J");
        assert_eq!(
            run(&mut shell, "connect localhost x").2,
            "Invalid port: x\n"
        );
        assert_eq!(run(&mut shell, "QUIT").0, Flow::Exit);
        assert_eq!(run(&mut shell, "exit now").0, Flow::Exit);
        let (flow, out, err) = run(&mut shell, "ping");
        assert_eq!((flow, out.as_str()), (Flow::Continue, ""));
        assert!(
            err.starts_with("Could not connect to 127.0.0.1:0: "),
            "{err}"
        );
    }
}
