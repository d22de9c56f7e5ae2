//! `kvbench`: a load generator for kvstore and Redis, in the manner of `redis-benchmark`
//! (same short flags, same key scheme), with a Zipf key distribution, expiring writes, a
//! SET:GET mix, timed runs, HDR latency percentiles and CSV/JSON output.
//!
//! Built to saturate a server from one core: by default one thread runs a current-thread
//! tokio runtime with one task per connection; requests are encoded once and only their key
//! digits are rewritten per send ([`workload`]); replies are counted by a skip-parser that
//! never builds a frame ([`reply`]). [`runner`] drives a test, [`report`] prints it.
//!
//! Besides single commands, kvbench measures transactions (`multi`: MULTI, 10 SETs, EXEC as
//! one request), scripts (`evalsha`, after a `SCRIPT LOAD` outside the timed run) and
//! optimistic locking under contention (`cas`: WATCH, GET, MULTI, SET, EXEC until it
//! commits, [`cas`]) and Pub/Sub fan-out (`publish`: PUBLISH to subscribers of this process,
//! with publish-to-delivery latency and a check of the delivery order, [`publish`]).
//!
//! Exit status: 0 on success; 1 if the server cannot be reached or a connection fails
//! during a test (`Could not connect to HOST:PORT: <reason>`); 2 on a usage error; 3 with
//! `--fail-on-error` when any reply was an error (error replies are always counted and
//! reported, and the first one's text is printed on stderr).

mod cas;
mod keys;
mod publish;
mod reply;
mod report;
mod runner;
mod workload;

use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use clap::{ArgAction, Parser, ValueEnum};

use crate::keys::{KeyDist, Zipf, MAX_KEYSPACE};
use crate::publish::PubSub;
use crate::report::{Columns, Format, Progress, Report, Row, Settings};
use crate::runner::{Limit, Plan, ScriptLoad};
use crate::workload::{Ratio, Spec, Test};

/// Requests per test when neither `-n` nor `--duration` is given (redis-benchmark's default).
const DEFAULT_REQUESTS: u64 = 100_000;

/// Exit status when a connection cannot be opened or fails.
const EXIT_CONNECTION: u8 = 1;

/// Exit status under `--fail-on-error` when some reply was an error.
const EXIT_ERROR_REPLIES: u8 = 3;

/// Most `--subscribers`: each is a connection (and a file descriptor) of this process.
const MAX_SUBSCRIBERS: i64 = 1_000_000;

/// Most `--channels`.
const MAX_CHANNELS: i64 = 1_000_000;

/// Largest `-d`: Redis's default `proto-max-bulk-len`.
const MAX_DATA_SIZE: usize = protocol::parse::DEFAULT_MAX_BULK_LEN;

/// Load generator for kvstore (and any Redis-compatible server).
#[derive(Debug, Parser)]
#[command(name = "kvbench", version, disable_help_flag = true)]
#[command(
    about = "Load generator for kvstore and Redis: throughput and latency percentiles",
    after_help = "Keys are key:NNNNNNNNNNNN (INCR, EVALSHA and CAS use counter:NNNNNNNNNNNN), \
                  drawn from -r keys; without -r every request uses key number 0, as \
                  redis-benchmark does (cas: keys 0 to 9).\n\
                  multi: one request is MULTI, 10 SETs and EXEC (requests/s are transactions/s). \
                  evalsha: the script is loaded with SCRIPT LOAD before the clock starts. \
                  cas: one request is one committed WATCH/GET/MULTI/SET/EXEC increment, \
                  retries included; never pipelined.\n\
                  publish: one request is one PUBLISH to channel:NNNNNNNNNNNN; --subscribers \
                  connections of this process SUBSCRIBE first, spread over --channels channels; \
                  payloads carry a stamp (publisher, sequence, send time: at least 40 bytes); \
                  extra columns give the deliveries, their rate and publish-to-delivery \
                  latency.\n\
                  Exit status: 0 ok, 1 connection failure, 2 usage error, \
                  3 error replies with --fail-on-error."
)]
struct Cli {
    /// Server hostname or address.
    #[arg(short = 'h', long, default_value = "127.0.0.1")]
    host: String,

    /// Server port.
    #[arg(short = 'p', long, default_value_t = 6379)]
    port: u16,

    /// Number of parallel connections.
    #[arg(short = 'c', long, default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..))]
    clients: u32,

    /// Total requests per test [default: 100000].
    #[arg(short = 'n', long, value_parser = clap::value_parser!(u64).range(1..))]
    requests: Option<u64>,

    /// Run each test for this long instead of -n requests (e.g. 10s, 500ms, 2m).
    #[arg(long, value_parser = parse_duration, conflicts_with = "requests")]
    duration: Option<Duration>,

    /// Pipeline depth: requests written per batch on each connection.
    #[arg(short = 'P', long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    pipeline: u32,

    /// Value size in bytes for SET and MSET.
    #[arg(short = 'd', long = "data-size", default_value_t = 3, value_parser = parse_data_size)]
    data_size: usize,

    /// Keyspace: use random keys from 0 to KEYSPACE-1.
    #[arg(short = 'r', long, value_parser = clap::value_parser!(u64).range(1..=MAX_KEYSPACE))]
    keyspace: Option<u64>,

    /// Comma-separated tests to run, in order.
    #[arg(
        short = 't',
        long,
        value_enum,
        value_delimiter = ',',
        ignore_case = true,
        default_value = "set,get,incr,mset,mixed"
    )]
    tests: Vec<Test>,

    /// SET:GET proportions of the mixed test.
    #[arg(long, default_value = "1:10")]
    ratio: Ratio,

    /// How keys are drawn from the keyspace.
    #[arg(long, value_enum, default_value_t = Dist::Uniform)]
    dist: Dist,

    /// Exponent of the Zipf distribution (larger is more skewed; key 0 is the hottest).
    #[arg(long, default_value_t = 0.99, value_parser = parse_exponent)]
    zipf_exponent: f64,

    /// Make SETs expire after this long (SET ... PX), e.g. 30s or 500ms.
    #[arg(long, value_parser = parse_ttl)]
    ttl: Option<Duration>,

    /// Worker threads, each running its share of the connections.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    threads: u32,

    /// Output CSV.
    #[arg(long, conflicts_with = "json")]
    csv: bool,

    /// Output one JSON document.
    #[arg(long)]
    json: bool,

    /// Exit with status 3 if any reply was an error.
    #[arg(long)]
    fail_on_error: bool,

    /// Seed for key choice (default: from the clock), for repeatable key sequences.
    #[arg(long)]
    seed: Option<u64>,

    /// publish: subscriber connections, each SUBSCRIBEd to one channel before the clock starts.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(0..=MAX_SUBSCRIBERS))]
    subscribers: u32,

    /// publish: channels; subscriber i listens on channel i mod CHANNELS, and each publisher
    /// goes round them.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=MAX_CHANNELS))]
    channels: u32,

    /// publish: PUBLISHes per second over all publishers (0: as fast as replies come). Paced
    /// runs compare delivery latency at the same load.
    #[arg(long, default_value_t = 0)]
    rate: u64,

    /// Open a new connection for every request (batch, with -P), as redis-benchmark -k 0:
    /// measures how fast the server takes connections. Latency counts from the request's
    /// write, as redis-benchmark's; the rate includes the connects.
    #[arg(long, conflicts_with = "tls")]
    reconnect: bool,

    /// Connect with TLS (not for the cas, publish and evalsha tests).
    #[arg(long)]
    tls: bool,

    /// TLS: server name to ask for (SNI) and to check the certificate against [default: the
    /// host].
    #[arg(long, value_name = "HOST")]
    sni: Option<String>,

    /// TLS: CA certificate file to verify the server with [default: the system's].
    #[arg(long, value_name = "FILE")]
    cacert: Option<std::path::PathBuf>,

    /// TLS: client certificate to authenticate with.
    #[arg(long, value_name = "FILE")]
    cert: Option<std::path::PathBuf>,

    /// TLS: private key of --cert.
    #[arg(long, value_name = "FILE")]
    key: Option<std::path::PathBuf>,

    /// TLS: accept any server certificate.
    #[arg(long)]
    insecure: bool,

    /// Print help (-h is the host, as in redis-benchmark).
    #[arg(long, action = ArgAction::Help)]
    help: Option<bool>,
}

/// Key distribution (`--dist`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Dist {
    /// Every key equally likely.
    Uniform,
    /// Zipf with `--zipf-exponent`.
    Zipf,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(&cli) {
        Ok(code) => code,
        Err(message) => {
            eprintln!("{message}");
            ExitCode::from(EXIT_CONNECTION)
        }
    }
}

/// Runs every test; `Err` holds the message for a fatal failure.
fn run(cli: &Cli) -> Result<ExitCode, String> {
    let keyspace = cli.keyspace.unwrap_or(1);
    let dist_name = match cli.dist {
        Dist::Uniform => "uniform".to_owned(),
        Dist::Zipf => format!("zipf {}", cli.zipf_exponent),
    };
    let ttl_ms = cli
        .ttl
        .map(|ttl| u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX));
    let limit = match cli.duration {
        Some(duration) => Limit::Duration(duration),
        None => Limit::Requests(cli.requests.unwrap_or(DEFAULT_REQUESTS)),
    };
    let spec = Spec {
        value_size: cli.data_size,
        ttl_ms,
        ratio: cli.ratio,
    };
    let tls = tls_client(cli)?;
    let target = format!("{}:{}", cli.host, cli.port);
    let addr = probe(&cli.host, cli.port)
        .map_err(|reason| format!("Could not connect to {target}: {reason}"))?;
    let clients = usize::try_from(cli.clients).unwrap_or(usize::MAX);
    let threads = usize::try_from(cli.threads)
        .unwrap_or(usize::MAX)
        .min(clients);
    let settings = Settings {
        host: cli.host.clone(),
        port: cli.port,
        clients,
        pipeline: usize::try_from(cli.pipeline).unwrap_or(usize::MAX),
        data_size: cli.data_size,
        keyspace,
        distribution: dist_name,
        ttl_ms,
        threads,
        limit: match limit {
            Limit::Requests(n) => format!("{n} requests"),
            Limit::Duration(d) => format!("{}s", d.as_secs_f64()),
        },
        pubsub: cli.tests.contains(&Test::Publish).then(|| {
            (
                usize::try_from(cli.subscribers).unwrap_or(usize::MAX),
                usize::try_from(cli.channels).unwrap_or(usize::MAX),
            )
        }),
    };
    let format = if cli.json {
        Format::Json
    } else if cli.csv {
        Format::Csv
    } else {
        Format::Human
    };
    let seed = cli.seed.unwrap_or_else(clock_seed);
    let columns = Columns {
        retries: cli.tests.contains(&Test::Cas),
        deliveries: cli.tests.contains(&Test::Publish),
    };
    let mut report =
        Report::begin(format, settings.clone(), columns).map_err(|err| err.to_string())?;
    let mut error_replies = 0;
    for &test in &cli.tests {
        let test_keyspace = cli.keyspace.unwrap_or(test.default_keyspace());
        let mut label = spec.label(test);
        if test_keyspace != keyspace {
            // The header names the keyspace of the other tests.
            label = format!("{label} {test_keyspace} keys");
        }
        let dist = key_dist(cli, test_keyspace)?;
        let mut pipeline = settings.pipeline;
        if test == Test::Cas && pipeline > 1 {
            eprintln!(
                "kvbench: {label}: -P {pipeline} ignored: each step waits for the previous reply"
            );
            pipeline = 1;
        }
        if test == Test::Evalsha {
            let loaded = runner::load_script(addr).map_err(|err| match err {
                runner::RunError::Connect(reason) => {
                    format!("Could not connect to {target}: {reason}")
                }
                other => format!("kvbench: {label}: SCRIPT LOAD against {target} failed: {other}"),
            })?;
            if let ScriptLoad::Refused(text) = loaded {
                eprintln!(
                    "kvbench: {label}: SCRIPT LOAD was refused ({text}): the EVALSHAs will fail"
                );
            }
        }
        let plan = Plan {
            addr,
            test,
            spec: spec.clone(),
            clients,
            pipeline,
            threads,
            limit,
            dist,
            seed,
            pubsub: settings
                .pubsub
                .filter(|_| test == Test::Publish)
                .map(|(subscribers, channels)| PubSub::new(subscribers, channels).paced(cli.rate)),
            tls: tls.clone(),
            reconnect: cli.reconnect,
        };
        let mut progress = Progress::new(label.clone());
        let update = |done, elapsed| progress.update(done, elapsed);
        let measured = match &plan.pubsub {
            Some(pubsub) => publish::run(&plan, pubsub, update).map(|run| {
                let delivery = run.deliveries.summary(pubsub, run.outcome.started);
                let first = run.deliveries.first_error.clone();
                Row::new(label.clone(), &run.outcome).with_delivery(delivery, first.as_deref())
            }),
            None => runner::run(&plan, update).map(|outcome| Row::new(label.clone(), &outcome)),
        };
        progress.clear();
        let row = measured.map_err(|err| match err {
            runner::RunError::Connect(reason) => {
                format!("Could not connect to {target}: {reason}")
            }
            other => format!("kvbench: {label} against {target} failed: {other}"),
        })?;
        if row.errors > 0 {
            let what = match test {
                Test::Multi => "transactions had error replies",
                Test::Cas => "increments failed",
                Test::Publish => "publishes or deliveries failed",
                _ => "replies were errors",
            };
            eprintln!(
                "kvbench: {label}: {} of {} {what} (first: {})",
                row.errors,
                row.requests,
                row.first_error.as_deref().unwrap_or("?")
            );
        }
        error_replies += row.errors;
        report.row(row).map_err(|err| err.to_string())?;
    }
    report.finish().map_err(|err| err.to_string())?;
    Ok(if cli.fail_on_error && error_replies > 0 {
        ExitCode::from(EXIT_ERROR_REPLIES)
    } else {
        ExitCode::SUCCESS
    })
}

/// The key distribution over `keyspace` keys that `--dist` asks for.
fn key_dist(cli: &Cli, keyspace: u64) -> Result<KeyDist, String> {
    Ok(match cli.dist {
        Dist::Uniform => KeyDist::Uniform { keyspace },
        Dist::Zipf => {
            // Both parameters were validated by the argument parser.
            let zipf = Zipf::new(keyspace, cli.zipf_exponent)
                .ok_or_else(|| format!("invalid Zipf exponent {}", cli.zipf_exponent))?;
            KeyDist::Zipf(zipf)
        }
    })
}

/// The TLS client for `--tls` (`None` without it).
fn tls_client(cli: &Cli) -> Result<Option<runner::TlsClient>, String> {
    if cli.reconnect {
        if let Some(test) = cli
            .tests
            .iter()
            .find(|test| matches!(test, Test::Cas | Test::Publish))
        {
            return Err(format!(
                "kvbench: --reconnect does not apply to the {} test",
                test.name()
            ));
        }
    }
    if !cli.tls {
        return Ok(None);
    }
    if let Some(test) = cli
        .tests
        .iter()
        .find(|test| matches!(test, Test::Cas | Test::Publish | Test::Evalsha))
    {
        return Err(format!(
            "kvbench: --tls does not support the {} test yet",
            test.name()
        ));
    }
    let options = kvcli::tls::TlsOptions {
        cacert: cli.cacert.clone(),
        cert: cli.cert.clone(),
        key: cli.key.clone(),
        sni: cli.sni.clone(),
        insecure: cli.insecure,
    };
    let config = options
        .client_config()
        .map_err(|err| format!("kvbench: {err}"))?;
    let name = options
        .server_name(&cli.host)
        .map_err(|err| format!("kvbench: {err}"))?;
    Ok(Some(runner::TlsClient { config, name }))
}

/// Resolves `host` and opens (then closes) one connection, so a bad address fails before
/// any output, and every test connects to the address that worked.
fn probe(host: &str, port: u16) -> Result<SocketAddr, String> {
    let addrs: Vec<SocketAddr> = (host, port)
        .to_socket_addrs()
        .map_err(|err| err.to_string())?
        .collect();
    let stream = TcpStream::connect(&addrs[..]).map_err(|err| err.to_string())?;
    stream.peer_addr().map_err(|err| err.to_string())
}

/// A seed from the clock and the process id, for runs without `--seed`.
fn clock_seed() -> u64 {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    // Folding the 128-bit nanosecond count: losing the high bits is intended.
    (nanos as u64) ^ (nanos >> 64) as u64 ^ u64::from(std::process::id()).rotate_left(32)
}

/// Parses `10s`, `1.5s`, `500ms`, `2m`, `1h`, or a bare number of seconds.
fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (number, unit) = s.split_at(split);
    let value: f64 = number
        .parse()
        .map_err(|_| format!("expected a duration such as 10s or 500ms, got {s:?}"))?;
    let scale = match unit {
        "" | "s" => 1.0,
        "ms" => 1e-3,
        "us" => 1e-6,
        "m" => 60.0,
        "h" => 3600.0,
        other => return Err(format!("unknown unit {other:?} (use ms, s, m or h)")),
    };
    match Duration::try_from_secs_f64(value * scale) {
        Ok(d) if !d.is_zero() => Ok(d),
        Ok(_) => Err("the duration must be positive".to_owned()),
        Err(err) => Err(err.to_string()),
    }
}

/// Parses `--ttl`: a duration of at least 1 ms (PX takes whole milliseconds).
fn parse_ttl(s: &str) -> Result<Duration, String> {
    let ttl = parse_duration(s)?;
    if ttl < Duration::from_millis(1) {
        return Err("the TTL must be at least 1ms".to_owned());
    }
    Ok(ttl)
}

/// Parses `--zipf-exponent`: a positive finite number.
fn parse_exponent(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(x) if x.is_finite() && x > 0.0 => Ok(x),
        _ => Err(format!("expected a positive number, got {s:?}")),
    }
}

/// Parses `-d`, bounded by [`MAX_DATA_SIZE`].
fn parse_data_size(s: &str) -> Result<usize, String> {
    let n: usize = s.parse().map_err(|err| format!("{err}"))?;
    if n > MAX_DATA_SIZE {
        return Err(format!("at most {MAX_DATA_SIZE} bytes"));
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn redis_benchmark_flags() {
        let cli = Cli::try_parse_from([
            "kvbench",
            "-h",
            "10.0.0.1",
            "-p",
            "7000",
            "-c",
            "8",
            "-n",
            "500",
            "-P",
            "16",
            "-d",
            "100",
            "-r",
            "1000",
            "-t",
            "SET,get,Mixed",
        ])
        .expect("valid flags");
        assert_eq!(
            (cli.host.as_str(), cli.port, cli.clients),
            ("10.0.0.1", 7000, 8)
        );
        assert_eq!(
            (cli.requests, cli.pipeline, cli.data_size),
            (Some(500), 16, 100)
        );
        assert_eq!(cli.keyspace, Some(1000));
        assert_eq!(cli.tests, [Test::Set, Test::Get, Test::Mixed]);
        let cli = Cli::try_parse_from(["kvbench", "-t", "multi,EVALSHA,cas"]).expect("valid");
        assert_eq!(cli.tests, [Test::Multi, Test::Evalsha, Test::Cas]);
        assert!(Cli::try_parse_from(["kvbench", "-n", "1", "--duration", "1s"]).is_err());
        assert!(Cli::try_parse_from(["kvbench", "--csv", "--json"]).is_err());
        assert!(Cli::try_parse_from(["kvbench", "-r", "1000000000001"]).is_err());
        assert!(Cli::try_parse_from(["kvbench", "-c", "0"]).is_err());
        assert!(Cli::try_parse_from(["kvbench", "--ttl", "100us"]).is_err());
        assert!(Cli::try_parse_from(["kvbench", "--zipf-exponent", "0"]).is_err());
        assert!(Cli::try_parse_from(["kvbench", "--ratio", "0:0"]).is_err());
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("10"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        for bad in ["", "0", "0s", "s", "-1s", "1d", "1.2.3s", "1e400"] {
            assert!(parse_duration(bad).is_err(), "{bad:?}");
        }
    }
}
