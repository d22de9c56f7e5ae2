//! Command-line flags (clap), named as redis-cli's so habits carry over, and their
//! resolution into a [`Config`]: the URI, the environment and the terminal fill in what the
//! flags leave out.

use std::ffi::OsString;
use std::time::Duration;

use bytes::Bytes;
use clap::{ArgAction, Parser};

use crate::connection::Target;
use crate::render::OutputMode;
use crate::session::{Credentials, Settings};
use crate::tls::TlsOptions;
use crate::uri;

/// Environment variable with the password, used when neither `-a` nor `-u` gives one (it
/// does not show up in `ps` as `-a` does).
pub const AUTH_ENV: &str = "KVCLI_AUTH";

/// `kvcli` flags. `-h` is the host, as in redis-cli; help is `--help`.
#[derive(Parser, Debug)]
#[command(
    name = "kvcli",
    version,
    about = "The interactive shell of kvstore (a Redis-compatible server)",
    disable_help_flag = true,
    disable_version_flag = true,
    after_help = EXAMPLES
)]
pub struct Args {
    /// Server hostname [default: 127.0.0.1]
    #[arg(short = 'h', value_name = "HOSTNAME")]
    pub host: Option<String>,

    /// Server port [default: 6379]
    #[arg(short = 'p', value_name = "PORT")]
    pub port: Option<u16>,

    /// Password to use when connecting (the KVCLI_AUTH environment variable is safer)
    #[arg(short = 'a', long = "pass", value_name = "PASSWORD")]
    pub password: Option<OsString>,

    /// User for ACL style 'AUTH username pass'; needs a password
    #[arg(long, value_name = "USERNAME")]
    pub user: Option<OsString>,

    /// Server URI, `redis://[[user:]password@]host[:port][/db]`
    #[arg(
        short = 'u',
        value_name = "URI",
        help = "Server URI: redis://[[user:]password@]host[:port][/db]"
    )]
    pub uri: Option<String>,

    /// Database number
    #[arg(short = 'n', value_name = "DB", allow_negative_numbers = true)]
    pub db: Option<i64>,

    /// Start the session in RESP2 mode (the default)
    #[arg(short = '2', overrides_with = "resp3")]
    pub resp2: bool,

    /// Start the session in RESP3 mode (HELLO 3)
    #[arg(short = '3', overrides_with = "resp2")]
    pub resp3: bool,

    /// Server connection timeout in seconds (decimals allowed)
    #[arg(short = 't', value_name = "SECONDS", allow_negative_numbers = true)]
    pub timeout: Option<f64>,

    /// Execute the command N times (negative: forever)
    #[arg(short = 'r', value_name = "N", allow_negative_numbers = true)]
    pub repeat: Option<i64>,

    /// With -r, wait this many seconds between commands (decimals allowed); also between
    /// SCAN calls with --scan
    #[arg(short = 'i', value_name = "SECONDS", allow_negative_numbers = true)]
    pub interval: Option<f64>,

    /// Read the last argument from standard input
    #[arg(short = 'x')]
    pub stdin_last_arg: bool,

    /// Delimiter between elements of a reply in raw output [default: \n]
    #[arg(short = 'd', value_name = "DELIMITER")]
    pub element_delimiter: Option<OsString>,

    /// Delimiter between replies in raw output [default: \n]
    #[arg(short = 'D', value_name = "DELIMITER")]
    pub reply_delimiter: Option<OsString>,

    /// Exit with status 1 when the server replies with an error
    #[arg(short = 'e')]
    pub error_exit: bool,

    /// Raw output (the default when standard output is not a terminal)
    #[arg(long, overrides_with = "no_raw")]
    pub raw: bool,

    /// Formatted output even when standard output is not a terminal
    #[arg(long = "no-raw", overrides_with = "raw")]
    pub no_raw: bool,

    /// Send commands read from standard input (RESP or inline) as fast as possible
    #[arg(long)]
    pub pipe: bool,

    /// In --pipe mode, give up when no reply arrives for this many seconds after all data
    /// was sent (0: wait forever)
    #[arg(long = "pipe-timeout", value_name = "SECONDS", default_value_t = 30)]
    pub pipe_timeout: u64,

    /// List all keys using the SCAN command
    #[arg(long)]
    pub scan: bool,

    /// Keys pattern for --scan [default: *]
    #[arg(long, value_name = "PATTERN")]
    pub pattern: Option<OsString>,

    /// COUNT hint for each SCAN call with --scan
    #[arg(long, value_name = "COUNT", default_value_t = 10,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub count: u32,

    /// Establish a secure TLS connection
    #[arg(long)]
    pub tls: bool,

    /// Server name to ask for (SNI) and to check the certificate against [default: the host]
    #[arg(long, value_name = "HOST")]
    pub sni: Option<String>,

    /// CA certificate file to verify the server with [default: the system's]
    #[arg(long, value_name = "FILE")]
    pub cacert: Option<std::path::PathBuf>,

    /// Client certificate to authenticate with
    #[arg(long, value_name = "FILE")]
    pub cert: Option<std::path::PathBuf>,

    /// Private key file to authenticate with
    #[arg(long, value_name = "FILE")]
    pub key: Option<std::path::PathBuf>,

    /// Allow insecure TLS connections by skipping the server certificate's validation
    #[arg(long)]
    pub insecure: bool,

    /// Do not warn about passwords given on the command line
    #[arg(long = "no-auth-warning")]
    pub no_auth_warning: bool,

    /// Print help
    #[arg(long, action = ArgAction::Help)]
    pub help: Option<bool>,

    /// Print version
    #[arg(short = 'v', long, action = ArgAction::Version)]
    pub version: Option<bool>,

    /// The command to run and its arguments; without one, kvcli starts the interactive
    /// shell. `watch KEY|PATTERN ...` prints changes to the matching keys live instead
    #[arg(
        value_name = "CMD",
        trailing_var_arg = true,
        allow_hyphen_values = true
    )]
    pub command: Vec<OsString>,
}

const EXAMPLES: &str = "\
Examples:
  kvcli -u redis://default:PASSWORD@localhost:6379/0
  cat /etc/passwd | kvcli -x set mypasswd
  kvcli -r 100 incr counter
  kvcli -r 100 -i 1 info | grep used_memory_human:
  kvcli --pipe < commands.txt
  kvcli --scan --pattern '*:12345*' --count 100
  kvcli subscribe news                 (prints messages until Ctrl-C)
  kvcli -n 2 watch 'user:*' session    (one line per change to matching keys)

When no command is given, kvcli starts in interactive mode.
Type \"help\" in interactive mode for information on available commands.

kvcli watch KEY|PATTERN ...: prints a line per change to the keys matching any
pattern (glob, as KEYS): local time, database, key, event, then a string's value
or another type's size. It turns on keyspace notifications for the session
(CONFIG SET notify-keyspace-events, restored on exit) when the server allows it,
and says how to enable them otherwise. Ctrl-C ends it.";

/// What to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    /// The shell (or, when standard input is not a terminal, commands read line by line).
    Interactive,
    /// Run one command (`-r` times) and exit.
    OneShot(Vec<Bytes>),
    /// `--pipe`: mass insertion from standard input.
    Pipe,
    /// `--scan`: list keys.
    Scan,
    /// `watch KEY|PATTERN ...`: print changes to the matching keys live.
    Watch(Vec<Bytes>),
}

/// Everything kvcli needs to know, flags resolved.
#[derive(Debug, Clone)]
pub struct Config {
    /// Server and connection state to set up.
    pub settings: Settings,
    /// How replies are printed.
    pub output: OutputMode,
    /// What to do.
    pub mode: Mode,
    /// `-r`: times to run a one-shot command (negative: forever).
    pub repeat: i64,
    /// `-i`: pause between repetitions and between SCAN calls.
    pub interval: Option<Duration>,
    /// `-x`: append standard input as the last argument.
    pub stdin_last_arg: bool,
    /// `-e`: error replies make the exit status 1.
    pub error_exit: bool,
    /// `--pipe-timeout` (`None`: wait forever).
    pub pipe_timeout: Option<Duration>,
    /// `--pattern` for `--scan`.
    pub scan_pattern: Option<Bytes>,
    /// `--count` for `--scan`.
    pub scan_count: u32,
    /// Warn that a password on the command line may be seen by others.
    pub auth_warning: bool,
}

impl Config {
    /// Resolves the flags: `-h`, `-p`, `-a`, `--user` and `-n` win over the URI's parts; the
    /// password comes from `-a`, the URI, or the [`AUTH_ENV`] variable (`env`), in that
    /// order. Output is raw unless `stdout_is_tty` (or `--no-raw`).
    ///
    /// # Errors
    ///
    /// A message for the user about an invalid value.
    pub fn resolve(
        args: Args,
        env: impl Fn(&str) -> Option<OsString>,
        stdout_is_tty: bool,
    ) -> Result<Config, String> {
        let from_uri = args
            .uri
            .as_deref()
            .map(uri::parse)
            .transpose()?
            .unwrap_or_default();
        let host = args
            .host
            .or(from_uri.host)
            .unwrap_or_else(|| "127.0.0.1".to_owned());
        let port = args.port.or(from_uri.port).unwrap_or(6379);
        let password_on_command_line = args.password.is_some() || from_uri.password.is_some();
        let password = args
            .password
            .map(os_bytes)
            .or(from_uri.password)
            .or_else(|| env(AUTH_ENV).map(os_bytes));
        let user = args.user.map(os_bytes).or(from_uri.user);
        let auth = password.map(|password| Credentials {
            user: user.map(Bytes::from),
            password: Bytes::from(password),
        });

        let tls = (args.tls || from_uri.tls).then_some(TlsOptions {
            cacert: args.cacert,
            cert: args.cert,
            key: args.key,
            sni: args.sni,
            insecure: args.insecure,
        });
        if tls.is_some() && args.pipe {
            return Err("--pipe does not support --tls".to_owned());
        }

        let output = if args.raw || (!args.no_raw && !stdout_is_tty) {
            OutputMode::Raw {
                element_delimiter: args
                    .element_delimiter
                    .map_or_else(|| b"\n".to_vec(), os_bytes),
                reply_delimiter: args
                    .reply_delimiter
                    .map_or_else(|| b"\n".to_vec(), os_bytes),
            }
        } else {
            OutputMode::Tty
        };

        let mode = if args.pipe {
            Mode::Pipe
        } else if args.scan {
            Mode::Scan
        } else if args.command.is_empty() {
            Mode::Interactive
        } else {
            let mut command: Vec<Bytes> = args
                .command
                .into_iter()
                .map(|a| Bytes::from(os_bytes(a)))
                .collect();
            // Redis's own WATCH only matters inside a transaction, which one command
            // cannot hold: the word is free for the watch mode (the shell keeps WATCH).
            if command[0].eq_ignore_ascii_case(b"watch") {
                Mode::Watch(command.split_off(1))
            } else {
                Mode::OneShot(command)
            }
        };

        Ok(Config {
            settings: Settings {
                target: Target { host, port },
                connect_timeout: args.timeout.map(|t| seconds(t, "-t")).transpose()?,
                auth,
                db: args.db.or(from_uri.db).unwrap_or(0),
                resp3: args.resp3,
                tls,
            },
            output,
            mode,
            repeat: args.repeat.unwrap_or(1),
            interval: args
                .interval
                .map(|i| seconds(i, "-i"))
                .transpose()?
                .filter(|i| !i.is_zero()),
            stdin_last_arg: args.stdin_last_arg,
            error_exit: args.error_exit,
            pipe_timeout: (args.pipe_timeout > 0).then(|| Duration::from_secs(args.pipe_timeout)),
            scan_pattern: args.pattern.map(|p| Bytes::from(os_bytes(p))),
            scan_count: args.count,
            auth_warning: password_on_command_line && !args.no_auth_warning,
        })
    }
}

/// A non-negative number of seconds.
fn seconds(value: f64, flag: &str) -> Result<Duration, String> {
    Duration::try_from_secs_f64(value).map_err(|_| format!("Invalid number of seconds for {flag}."))
}

/// The bytes of a command-line argument (arguments are binary on Unix).
fn os_bytes(arg: OsString) -> Vec<u8> {
    #[cfg(unix)]
    {
        use std::os::unix::ffi::OsStringExt;
        arg.into_vec()
    }
    #[cfg(not(unix))]
    {
        arg.to_string_lossy().into_owned().into_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Args {
        let mut argv = vec!["kvcli"];
        argv.extend_from_slice(args);
        match Args::try_parse_from(argv) {
            Ok(parsed) => parsed,
            Err(err) => panic!("{args:?}: {err}"),
        }
    }

    fn resolve(args: &[&str]) -> Config {
        resolve_with(args, None, true)
    }

    fn resolve_with(args: &[&str], env_password: Option<&str>, tty: bool) -> Config {
        let env = |name: &str| {
            (name == AUTH_ENV)
                .then(|| env_password.map(OsString::from))
                .flatten()
        };
        match Config::resolve(parse(args), env, tty) {
            Ok(config) => config,
            Err(err) => panic!("{args:?}: {err}"),
        }
    }

    fn command(words: &[&str]) -> Mode {
        Mode::OneShot(
            words
                .iter()
                .map(|w| Bytes::copy_from_slice(w.as_bytes()))
                .collect(),
        )
    }

    #[test]
    fn defaults() {
        let config = resolve(&[]);
        assert_eq!(config.settings.target.to_string(), "127.0.0.1:6379");
        assert_eq!((config.settings.db, config.settings.resp3), (0, false));
        assert!(config.settings.auth.is_none());
        assert_eq!(config.mode, Mode::Interactive);
        assert_eq!(config.output, OutputMode::Tty);
        assert_eq!(config.repeat, 1);
        assert_eq!(config.pipe_timeout, Some(Duration::from_secs(30)));
        assert_eq!(config.scan_count, 10);
        assert!(!config.auth_warning);
    }

    #[test]
    fn dash_h_is_the_host_and_the_command_keeps_its_dashes() {
        let config = resolve(&[
            "-h", "example", "-p", "7000", "-n", "2", "-3", "SET", "k", "-1", "-x",
        ]);
        assert_eq!(config.settings.target.to_string(), "example:7000");
        assert_eq!(config.settings.db, 2);
        assert!(config.settings.resp3);
        assert!(
            !config.stdin_last_arg,
            "flags after the command are arguments"
        );
        assert_eq!(config.mode, command(&["SET", "k", "-1", "-x"]));
        assert!(Args::try_parse_from(["kvcli", "--help"])
            .is_err_and(|e| e.kind() == clap::error::ErrorKind::DisplayHelp));
        assert!(Args::try_parse_from(["kvcli", "-p", "99999"]).is_err());
    }

    #[test]
    fn uri_and_overrides() {
        let config = resolve(&["-u", "redis://alice:pw@db.example:7001/4"]);
        assert_eq!(config.settings.target.to_string(), "db.example:7001");
        assert_eq!(config.settings.db, 4);
        let auth = config.settings.auth.expect("credentials");
        assert_eq!(
            (auth.user.as_deref(), &auth.password[..]),
            (Some(&b"alice"[..]), &b"pw"[..])
        );
        assert!(config.auth_warning);

        let config = resolve(&[
            "-u",
            "redis://h:1/1",
            "-p",
            "2",
            "-n",
            "3",
            "--no-auth-warning",
        ]);
        assert_eq!((config.settings.target.port, config.settings.db), (2, 3));
        assert!(!config.auth_warning);
        assert!(Config::resolve(parse(&["-u", "http://x"]), |_| None, true).is_err());
    }

    #[test]
    fn password_sources() {
        let config = resolve_with(&[], Some("fromenv"), true);
        assert_eq!(
            config.settings.auth.map(|a| a.password),
            Some(Bytes::from_static(b"fromenv"))
        );
        assert!(!config.auth_warning, "the environment is the safe way");
        let config = resolve_with(&["-a", "flag", "--user", "bob"], Some("fromenv"), true);
        let auth = config.settings.auth.expect("credentials");
        assert_eq!(
            (auth.user.as_deref(), &auth.password[..]),
            (Some(&b"bob"[..]), &b"flag"[..])
        );
        assert!(config.auth_warning);
        assert!(
            resolve(&["--user", "bob"]).settings.auth.is_none(),
            "a user alone does nothing"
        );
    }

    #[test]
    fn output_modes() {
        assert_eq!(resolve_with(&[], None, false).output, OutputMode::raw());
        assert_eq!(
            resolve_with(&["--no-raw"], None, false).output,
            OutputMode::Tty
        );
        assert_eq!(
            resolve_with(&["--raw"], None, true).output,
            OutputMode::raw()
        );
        assert_eq!(
            resolve_with(&["--raw", "--no-raw"], None, false).output,
            OutputMode::Tty
        );
        let custom = resolve_with(&["-d", ",", "-D", ";"], None, false).output;
        assert_eq!(
            custom,
            OutputMode::Raw {
                element_delimiter: b",".to_vec(),
                reply_delimiter: b";".to_vec()
            }
        );
    }

    #[test]
    fn modes_repeat_and_intervals() {
        assert_eq!(resolve(&["--pipe"]).mode, Mode::Pipe);
        let scan = resolve(&[
            "--scan",
            "--pattern",
            "user:*",
            "--count",
            "100",
            "-i",
            "0.5",
        ]);
        assert_eq!(scan.mode, Mode::Scan);
        assert_eq!(scan.scan_pattern, Some(Bytes::from_static(b"user:*")));
        assert_eq!(scan.scan_count, 100);
        assert_eq!(scan.interval, Some(Duration::from_millis(500)));
        let repeat = resolve(&[
            "-r",
            "-1",
            "-x",
            "-e",
            "-t",
            "1.5",
            "--pipe-timeout",
            "0",
            "ping",
        ]);
        assert_eq!(repeat.repeat, -1);
        assert!(repeat.stdin_last_arg && repeat.error_exit);
        assert_eq!(
            repeat.settings.connect_timeout,
            Some(Duration::from_millis(1500))
        );
        assert_eq!(repeat.pipe_timeout, None);
        assert!(Config::resolve(parse(&["-i", "-1"]), |_| None, true).is_err());
        assert!(Args::try_parse_from(["kvcli", "--scan", "--count", "0"]).is_err());
        assert_eq!(resolve(&["-i", "0"]).interval, None);
    }

    #[test]
    fn watch_is_a_mode() {
        assert_eq!(
            resolve(&["-n", "1", "watch", "user:*", "k"]).mode,
            Mode::Watch(vec![
                Bytes::from_static(b"user:*"),
                Bytes::from_static(b"k")
            ])
        );
        assert_eq!(resolve(&["WATCH"]).mode, Mode::Watch(Vec::new()));
        assert_eq!(resolve(&["get", "watch"]).mode, command(&["get", "watch"]));
    }
}
