//! `kvserver`: parses flags, sets up logging, runs the server until SIGINT/SIGTERM or SHUTDOWN.

use clap::Parser;
use kvserver::config::LogLevel;
use kvserver::Config;
use tracing_subscriber::{reload, EnvFilter};

fn main() -> anyhow::Result<()> {
    let config = Config::parse();
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
    let log_control: kvserver::server::LogControl = Box::new(move |level: LogLevel| {
        reload_handle
            .reload(EnvFilter::new(level.filter()))
            .map_err(|err| err.to_string())
    });

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("kv-worker")
        .build()?;
    runtime.block_on(async move {
        let server = kvserver::start(config, Some(log_control)).await?;
        let shutdown = server.shared().shutdown.clone();
        tokio::spawn(async move {
            wait_for_signal().await;
            tracing::info!("signal received, shutting down");
            shutdown.cancel();
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
