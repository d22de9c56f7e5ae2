//! The `kvcli` entry point: parses the flags and runs the chosen mode.

use std::io::{self, IsTerminal};
use std::process::ExitCode;

use clap::Parser;

use crate::args::{Args, Config, Mode};
use crate::repl::{self, Shell};
use crate::scan::{self, ScanOptions};
use crate::session::Session;
use crate::{history, oneshot, pipe, watch};

/// Runs kvcli with the process's arguments and environment; returns the exit status.
pub fn run() -> ExitCode {
    let args = Args::parse();
    let config = match Config::resolve(
        args,
        |name| std::env::var_os(name),
        io::stdout().is_terminal(),
    ) {
        Ok(config) => config,
        Err(message) => {
            eprintln!("{message}");
            return ExitCode::FAILURE;
        }
    };
    if config.auth_warning {
        eprintln!(
            "Warning: Using a password with '-a' or '-u' option on the command line interface may not be safe."
        );
    }
    match run_mode(&config) {
        Ok(code) => code,
        // The reader of our output went away (`kvcli --scan | head`): nothing left to do.
        Err(error) if error.kind() == io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("kvcli: {error}");
            ExitCode::FAILURE
        }
    }
}

fn run_mode(config: &Config) -> io::Result<ExitCode> {
    match &config.mode {
        Mode::OneShot(argv) => oneshot::run(config, argv.clone(), &mut io::stdin().lock()),
        Mode::Pipe => {
            let mut session = Session::new(config.settings.clone(), false);
            if let Err(message) = connect_strictly(&mut session) {
                eprintln!("{message}");
                return Ok(ExitCode::FAILURE);
            }
            match session.into_connection() {
                Some(conn) => match conn.into_stream() {
                    Some(stream) => pipe::run(stream, io::stdin(), config.pipe_timeout),
                    None => {
                        eprintln!("--pipe does not support --tls");
                        Ok(ExitCode::FAILURE)
                    }
                },
                None => Ok(ExitCode::FAILURE),
            }
        }
        Mode::Scan => {
            let mut session = Session::new(config.settings.clone(), false);
            if let Err(message) = connect_strictly(&mut session) {
                eprintln!("{message}");
                return Ok(ExitCode::FAILURE);
            }
            let options = ScanOptions {
                pattern: config.scan_pattern.clone(),
                count: config.scan_count,
                interval: config.interval,
            };
            scan::run(
                &mut session,
                &options,
                &config.output,
                &mut io::stdout().lock(),
                &mut io::stderr().lock(),
            )
        }
        Mode::Watch(patterns) => watch::run(config, patterns),
        Mode::Interactive => {
            let interactive = io::stdin().is_terminal();
            let session = Session::new(config.settings.clone(), interactive);
            let shell = Shell::new(
                session,
                config.output.clone(),
                config.interval,
                io::stdout().is_terminal(),
            );
            if interactive {
                repl::run_terminal(shell, history::path(|name| std::env::var_os(name)))?;
            } else {
                repl::run_lines(shell, &mut io::stdin().lock())?;
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Connects; any failure, set-up commands included, is fatal outside the shell.
fn connect_strictly(session: &mut Session) -> Result<(), String> {
    let opened = session.connect().map_err(|e| e.to_string())?;
    if opened.problems.is_empty() {
        Ok(())
    } else {
        Err(opened.problems.join("\n"))
    }
}
