//! `kvserver`: parses flags, sets up logging, runs the server until SIGINT/SIGTERM or SHUTDOWN.
//!
//! `kvserver check-aof [--fix] PATH` instead checks (and optionally repairs) AOF files, like
//! `redis-check-aof`; see [`kvserver::persist::aof_check`].

use std::io::Write as _;
use std::path::{Path, PathBuf};

use clap::Parser;
use kvserver::config::LogLevel;
use kvserver::persist::aof_check;
use kvserver::Config;
use tracing_subscriber::{reload, EnvFilter};

fn main() -> anyhow::Result<()> {
    // Subcommands are recognised before the server's flat flag parser sees the arguments.
    if std::env::args_os()
        .nth(1)
        .is_some_and(|arg| arg == "check-aof")
    {
        std::process::exit(check_aof_main());
    }
    // `kvserver FILE [flags]`: the file's directives come first, as flags.
    let command = <Config as clap::CommandFactory>::command();
    let args = kvserver::config_file::expand(std::env::args_os().collect(), |name| {
        command
            .get_arguments()
            .any(|arg| arg.get_long() == Some(name))
    });
    let config = match args {
        Ok(args) => Config::parse_from(args),
        Err(message) => {
            eprintln!("{message}");
            std::process::exit(1);
        }
    };
    // RUST_LOG, when set, overrides --loglevel (handy for debugging one module).
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new(config.loglevel.filter()));
    let (filter, reload_handle) = reload::Layer::new(filter);
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;
    tracing_subscriber::registry()
        .with(filter)
        .with(
            tracing_subscriber::fmt::layer()
                .with_target(false)
                .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout())),
        )
        .init();
    let log_control: kvserver::shared::LogControl = Box::new(move |level: LogLevel| {
        reload_handle
            .reload(EnvFilter::new(level.filter()))
            .map_err(|err| err.to_string())
    });

    // Accept loop, cron and signals only: connections run on the server's own connection
    // threads (see `kvserver::server`).
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let server = kvserver::start(config, Some(log_control)).await?;
        let shared = server.shared().clone();
        tokio::spawn(async move {
            wait_for_signal().await;
            tracing::info!("signal received, shutting down");
            shared.shutdown.start();
        });
        server.stopped().await;
        anyhow::Ok(())
    })
}

/// Resolves on SIGINT or SIGTERM.
async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match (
            signal(SignalKind::interrupt()),
            signal(SignalKind::terminate()),
        ) {
            (Ok(mut interrupt), Ok(mut terminate)) => {
                tokio::select! {
                    _ = interrupt.recv() => {}
                    _ = terminate.recv() => {}
                }
            }
            _ => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// `kvserver check-aof`: the arguments after the subcommand name.
#[derive(Debug, Parser)]
#[command(
    name = "kvserver check-aof",
    bin_name = "kvserver check-aof",
    about = "Check the append-only files and report how far each one is valid",
    long_about = "Check the append-only files and report how far each one is valid.\n\n\
        PATH is the AOF directory (holding one *.manifest), a manifest, a single incr \
        log file, or a single base file. Exits with 0 if everything is valid (or was \
        repaired with --fix), 1 otherwise."
)]
struct CheckAofArgs {
    /// Truncate the last incr file to its last valid record (a torn tail from a crash, or
    /// corruption: what follows the bad record is lost). Does not ask for confirmation.
    #[arg(long)]
    fix: bool,
    /// AOF directory, manifest, incr file or base file.
    path: PathBuf,
}

/// Runs `check-aof` and returns the exit code: 0 valid (or fixed), 1 not valid or error.
fn check_aof_main() -> i32 {
    // Skips the program name: clap takes "check-aof" as the name of the command.
    let args = CheckAofArgs::parse_from(std::env::args_os().skip(1));
    let code = match aof_check::check_aof(&args.path, args.fix, &verify_base) {
        Ok(report) => {
            print!("{report}");
            i32::from(!report.is_valid())
        }
        Err(err) => {
            eprintln!("check-aof: {err}");
            1
        }
    };
    let _ = std::io::stdout().flush();
    code
}

/// Verifies a base file for `check-aof` (structure and checksum), returning its number of
/// entries.
fn verify_base(path: &Path) -> Result<u64, String> {
    kvserver::persist::snapshot_format::verify_file(path)
        .map(|summary| summary.entries)
        .map_err(|err| err.to_string())
}
