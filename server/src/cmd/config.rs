//! CONFIG GET / SET / RESETSTAT / REWRITE: the runtime-changeable parameters.

use protocol::Argv;

use super::{printable, reply_help, CmdError, Ctx};
use crate::config::{parse_memory, parse_save_rules, parse_yes_no, FsyncPolicy, LogLevel};
use crate::glob::glob_match;
use crate::shared::Shared;
use crate::sync::Ordering;

/// Applies a validated CONFIG SET value; runs only once every pair of the command is valid.
type Apply = Box<dyn FnOnce(&Shared) -> Result<(), String>>;

/// Checks a CONFIG SET value and returns how to apply it (or the reason it is invalid).
type Validate = fn(&[u8]) -> Result<Apply, String>;

/// One configuration parameter: its name, how CONFIG GET reads it and, if it can change at
/// run time, how CONFIG SET validates a value. Adding a parameter is one row here (plus its
/// start-up flag in [`crate::config::Config`]).
struct Parameter {
    name: &'static str,
    get: fn(&Shared) -> String,
    /// `None`: fixed at start-up ("can't set immutable config").
    set: Option<Validate>,
}

const fn fixed(name: &'static str, get: fn(&Shared) -> String) -> Parameter {
    Parameter {
        name,
        get,
        set: None,
    }
}

const fn settable(name: &'static str, get: fn(&Shared) -> String, set: Validate) -> Parameter {
    Parameter {
        name,
        get,
        set: Some(set),
    }
}

/// A compact-encoding threshold (`store::value::limits`), as Redis's `size_t` parameters:
/// 0 to `i64::MAX`.
/// `encoding_limit!(alias => name)` is an older name (Redis's `ziplist` ones) for the same
/// parameter.
macro_rules! encoding_limit {
    ($name:literal) => {
        encoding_limit!($name => $name)
    };
    ($shown:literal => $name:literal) => {
        settable(
            $shown,
            |shared| {
                let limits = shared.store.limits();
                limits.usize_parameter($name).unwrap_or(0).to_string()
            },
            |value| {
                let n = integer(value)?;
                let n = usize::try_from(n)
                    .map_err(|_| "argument must be between 0 and 9223372036854775807 inclusive")?;
                Ok(Box::new(move |shared| {
                    shared.store.limits().set_usize_parameter($name, n);
                    Ok(())
                }))
            },
        )
    };
}

/// Every parameter, in the order CONFIG GET reports them.
static PARAMETERS: &[Parameter] = &[
    fixed("bind", |shared| shared.config.bind.join(" ")),
    fixed("port", |shared| shared.port.to_string()),
    fixed("tls-port", |shared| shared.tls_port.to_string()),
    settable(
        "tls-cert-file",
        |shared| shared.tls.settings().cert_file,
        |value| tls_value("tls-cert-file", value),
    ),
    settable(
        "tls-key-file",
        |shared| shared.tls.settings().key_file,
        |value| tls_value("tls-key-file", value),
    ),
    settable(
        "tls-ca-cert-file",
        |shared| shared.tls.settings().ca_cert_file,
        |value| tls_value("tls-ca-cert-file", value),
    ),
    settable(
        "tls-auth-clients",
        |shared| shared.tls.settings().auth_clients.name().to_owned(),
        |value| tls_value("tls-auth-clients", value),
    ),
    settable(
        "tls-protocols",
        |shared| shared.tls.settings().protocols,
        |value| tls_value("tls-protocols", value),
    ),
    fixed("databases", |shared| shared.config.databases.to_string()),
    fixed("tcp-backlog", |shared| {
        shared.config.tcp_backlog.to_string()
    }),
    settable(
        "maxclients",
        |shared| shared.maxclients.load(Ordering::Relaxed).to_string(),
        |value| {
            let n = integer(value)?;
            let n = usize::try_from(n)
                .ok()
                .filter(|&n| n >= 1 && u32::try_from(n).is_ok())
                .ok_or("argument must be between 1 and 4294967295 inclusive")?;
            Ok(Box::new(move |shared| {
                // As Redis: the open-files limit must fit the new number (it is raised if
                // it can be), and the descriptor table grows now rather than mid-burst.
                let fits = crate::descriptors::fit_open_files_limit(n);
                if fits < n {
                    return Err(format!(
                        "The operating system is not able to handle the specified number of \
                         clients, try with {fits}"
                    ));
                }
                crate::descriptors::reserve_descriptor_table(
                    (n as u64).saturating_add(crate::descriptors::RESERVED_FDS),
                );
                shared.maxclients.store(n, Ordering::Relaxed);
                Ok(())
            }))
        },
    ),
    settable(
        "loglevel",
        |shared| shared.loglevel.lock().name().to_owned(),
        |value| {
            let level = LogLevel::parse(value).ok_or(
                "argument(s) must be one of the following: debug, verbose, notice, warning, nothing",
            )?;
            Ok(Box::new(move |shared| shared.set_loglevel(level)))
        },
    ),
    settable(
        "hz",
        |shared| shared.hz.load(Ordering::Relaxed).to_string(),
        |value| {
            // As Redis: any int is accepted and clamped to 1..=500 (its `updateHZ`).
            let n = integer(value)?;
            let n = u32::try_from(n)
                .ok()
                .filter(|&n| i32::try_from(n).is_ok())
                .ok_or("argument must be between 0 and 2147483647 inclusive")?
                .clamp(1, 500);
            Ok(Box::new(move |shared| {
                shared.hz.store(n, Ordering::Relaxed);
                Ok(())
            }))
        },
    ),
    settable(
        "busy-reply-threshold",
        busy_threshold_get,
        busy_threshold_set,
    ),
    // Redis's older name for the same setting.
    settable("lua-time-limit", busy_threshold_get, busy_threshold_set),
    settable(
        "notify-keyspace-events",
        |shared| crate::notify::to_text(shared.notifications.flags()),
        |value| {
            let text = std::str::from_utf8(value).map_err(|_| crate::notify::INVALID_CLASS)?;
            let flags = crate::notify::parse(text)?;
            Ok(Box::new(move |shared| {
                shared.notifications.set_flags(flags);
                Ok(())
            }))
        },
    ),
    settable(
        "requirepass",
        |shared| shared.acl.requirepass(),
        |value| {
            let password = String::from_utf8(value.to_vec())
                .map_err(|_| "argument must be a valid UTF-8 string".to_owned())?;
            Ok(Box::new(move |shared| {
                shared.acl.set_requirepass(&password);
                Ok(())
            }))
        },
    ),
    settable(
        "timeout",
        |shared| shared.idle_timeout_secs.load(Ordering::Relaxed).to_string(),
        |value| {
            let secs = integer(value)?;
            let secs = u64::try_from(secs)
                .ok()
                .filter(|&s| i32::try_from(s).is_ok())
                .ok_or("argument must be between 0 and 2147483647 inclusive")?;
            Ok(Box::new(move |shared| {
                shared.idle_timeout_secs.store(secs, Ordering::Relaxed);
                Ok(())
            }))
        },
    ),
    settable(
        "tcp-keepalive",
        |shared| {
            shared
                .tcp_keepalive_secs
                .load(Ordering::Relaxed)
                .to_string()
        },
        |value| {
            let secs = u64::try_from(integer(value)?)
                .ok()
                .filter(|&s| i32::try_from(s).is_ok())
                .ok_or("argument must be between 0 and 2147483647 inclusive")?;
            Ok(Box::new(move |shared| {
                shared.tcp_keepalive_secs.store(secs, Ordering::Relaxed);
                Ok(())
            }))
        },
    ),
    settable(
        "client-query-buffer-limit",
        |shared| {
            shared
                .query_buffer_limit
                .load(Ordering::Relaxed)
                .to_string()
        },
        |value| {
            let text = std::str::from_utf8(value).map_err(|_| "Invalid argument".to_owned())?;
            // As Redis: at least 1 MB.
            let bytes = crate::config::parse_memory(text)
                .map_err(|_| "argument must be a memory value".to_owned())?;
            if bytes < 1024 * 1024 {
                return Err(
                    "argument must be between 1048576 and 9223372036854775807 inclusive".into(),
                );
            }
            Ok(Box::new(move |shared| {
                shared.query_buffer_limit.store(bytes, Ordering::Relaxed);
                Ok(())
            }))
        },
    ),
    settable(
        "protected-mode",
        |shared| yes_no(shared.admission.protected_mode()).to_owned(),
        |value| {
            let on = yes_no_value(value)?;
            Ok(Box::new(move |shared| {
                shared.admission.set_protected_mode(on);
                Ok(())
            }))
        },
    ),
    settable(
        "max-connections-per-ip",
        |shared| shared.admission.per_ip_limit().to_string(),
        |value| {
            let limit = usize::try_from(integer(value)?)
                .map_err(|_| "argument must be between 0 and 9223372036854775807 inclusive")?;
            Ok(Box::new(move |shared| {
                shared.admission.set_per_ip_limit(limit);
                Ok(())
            }))
        },
    ),
    settable(
        "acllog-max-len",
        |shared| shared.acl.log.max_len().to_string(),
        |value| {
            let n = usize::try_from(integer(value)?)
                .map_err(|_| "argument must be between 0 and 9223372036854775807 inclusive")?;
            Ok(Box::new(move |shared| {
                shared.acl.log.set_max_len(n);
                Ok(())
            }))
        },
    ),
    settable(
        "rate-limit",
        |shared| shared.rate_limiter.settings().0.to_string(),
        |value| {
            let limit = u64::try_from(integer(value)?)
                .map_err(|_| "argument must be between 0 and 9223372036854775807 inclusive")?;
            Ok(Box::new(move |shared| {
                let (_, window_ms, _) = shared.rate_limiter.settings();
                shared.rate_limiter.configure(limit, window_ms);
                Ok(())
            }))
        },
    ),
    settable(
        "rate-window",
        |shared| format!("{}ms", shared.rate_limiter.settings().1),
        |value| {
            let text = std::str::from_utf8(value).map_err(|_| "Invalid argument".to_owned())?;
            let window_ms = crate::ratelimit::parse_window(text)?;
            Ok(Box::new(move |shared| {
                let (limit, _, _) = shared.rate_limiter.settings();
                shared.rate_limiter.configure(limit, window_ms);
                Ok(())
            }))
        },
    ),
    settable(
        "rate-limit-exempt-loopback",
        |shared| yes_no(shared.rate_limiter.settings().2).to_owned(),
        |value| {
            let exempt = yes_no_value(value)?;
            Ok(Box::new(move |shared| {
                shared.rate_limiter.set_exempt_loopback(exempt);
                Ok(())
            }))
        },
    ),
    settable(
        "tracking-table-max-keys",
        |shared| shared.tracking.max_keys().to_string(),
        |value| {
            let n = usize::try_from(integer(value)?)
                .map_err(|_| "argument must be between 0 and 9223372036854775807 inclusive")?;
            Ok(Box::new(move |shared| {
                shared.tracking.set_max_keys(n);
                Ok(())
            }))
        },
    ),
    settable(
        "client-output-buffer-limit",
        |shared| shared.pubsub.output_limits().to_text(),
        |value| {
            let text = std::str::from_utf8(value).map_err(|_| "Invalid argument".to_owned())?;
            // Validated against the defaults here; applied over the current values.
            crate::pubsub::OutputLimits::default().parse_update(text)?;
            let text = text.to_owned();
            Ok(Box::new(move |shared| {
                let limits = shared.pubsub.output_limits().parse_update(&text)?;
                shared.pubsub.set_output_limits(limits);
                Ok(())
            }))
        },
    ),
    fixed("proto-max-bulk-len", |shared| {
        shared.config.proto_max_bulk_len.to_string()
    }),
    settable(
        "save",
        |shared| shared.persist.save_rules().to_text(),
        |value| {
            let rules = std::str::from_utf8(value)
                .ok()
                .and_then(|text| parse_save_rules(text).ok())
                .ok_or("Invalid save parameters")?;
            Ok(Box::new(move |shared| {
                shared.persist.set_save_rules(rules);
                Ok(())
            }))
        },
    ),
    settable(
        "stop-writes-on-bgsave-error",
        |shared| yes_no(shared.persist.stop_writes_on_bgsave_error()).to_owned(),
        |value| {
            let on = yes_no_value(value)?;
            Ok(Box::new(move |shared| {
                shared.persist.set_stop_writes_on_bgsave_error(on);
                Ok(())
            }))
        },
    ),
    settable(
        "appendonly",
        |shared| yes_no(shared.persist.aof_enabled()).to_owned(),
        |value| {
            let on = yes_no_value(value)?;
            Ok(Box::new(move |shared| {
                if on {
                    shared.persist.enable_aof_in_background(&shared.store)
                } else {
                    shared.persist.disable_aof(&shared.store);
                    Ok(())
                }
            }))
        },
    ),
    settable(
        "appendfsync",
        |shared| shared.persist.fsync_policy().name().to_owned(),
        |value| {
            let policy = FsyncPolicy::parse(value)
                .ok_or("argument(s) must be one of the following: always, everysec, no")?;
            Ok(Box::new(move |shared| {
                shared.persist.set_fsync_policy(policy);
                Ok(())
            }))
        },
    ),
    settable(
        "dir",
        |shared| {
            let dir = shared.persist.dir();
            std::fs::canonicalize(&dir)
                .unwrap_or(dir)
                .display()
                .to_string()
        },
        |value| {
            let dir: std::path::PathBuf = std::str::from_utf8(value)
                .ok()
                .filter(|text| std::path::Path::new(text).is_dir())
                .ok_or("No such directory")?
                .into();
            Ok(Box::new(move |shared| shared.persist.set_dir(dir)))
        },
    ),
    settable(
        "dbfilename",
        |shared| shared.persist.dbfilename(),
        |value| {
            let name = std::str::from_utf8(value)
                .ok()
                .filter(|text| {
                    !text.is_empty() && !text.contains('/') && *text != "." && *text != ".."
                })
                .ok_or("dbfilename can't be a path, just a filename")?
                .to_owned();
            Ok(Box::new(move |shared| shared.persist.set_dbfilename(name)))
        },
    ),
    fixed("appendfilename", |shared| shared.persist.aof_prefix.clone()),
    fixed("appenddirname", |shared| shared.persist.aof_dirname.clone()),
    settable(
        "auto-aof-rewrite-percentage",
        |shared| {
            shared
                .persist
                .auto_rewrite_percentage
                .load(Ordering::Relaxed)
                .to_string()
        },
        |value| {
            let n = integer(value)?;
            let n = u64::try_from(n)
                .ok()
                .filter(|&n| i32::try_from(n).is_ok())
                .ok_or("argument must be between 0 and 2147483647 inclusive")?;
            Ok(Box::new(move |shared| {
                shared
                    .persist
                    .auto_rewrite_percentage
                    .store(n, Ordering::Relaxed);
                Ok(())
            }))
        },
    ),
    settable(
        "auto-aof-rewrite-min-size",
        |shared| {
            shared
                .persist
                .auto_rewrite_min_size
                .load(Ordering::Relaxed)
                .to_string()
        },
        |value| {
            let n = std::str::from_utf8(value)
                .ok()
                .and_then(|text| parse_memory(text).ok())
                .ok_or("argument must be a memory value")?;
            Ok(Box::new(move |shared| {
                shared
                    .persist
                    .auto_rewrite_min_size
                    .store(n, Ordering::Relaxed);
                Ok(())
            }))
        },
    ),
    encoding_limit!("hash-max-listpack-entries"),
    encoding_limit!("hash-max-listpack-value"),
    encoding_limit!("set-max-intset-entries"),
    encoding_limit!("set-max-listpack-entries"),
    encoding_limit!("set-max-listpack-value"),
    encoding_limit!("zset-max-listpack-entries"),
    encoding_limit!("zset-max-listpack-value"),
    encoding_limit!("hash-max-ziplist-entries" => "hash-max-listpack-entries"),
    encoding_limit!("hash-max-ziplist-value" => "hash-max-listpack-value"),
    encoding_limit!("zset-max-ziplist-entries" => "zset-max-listpack-entries"),
    encoding_limit!("zset-max-ziplist-value" => "zset-max-listpack-value"),
    settable(
        "list-max-listpack-size",
        |shared| shared.store.limits().list_max_listpack_size().to_string(),
        |value| {
            let n = integer(value)?;
            let n = i32::try_from(n)
                .map_err(|_| "argument must be between -2147483648 and 2147483647 inclusive")?;
            Ok(Box::new(move |shared| {
                shared
                    .store
                    .limits()
                    .set_list_max_listpack_size(i64::from(n));
                Ok(())
            }))
        },
    ),
    settable(
        "list-max-ziplist-size",
        |shared| shared.store.limits().list_max_listpack_size().to_string(),
        |value| {
            let n = integer(value)?;
            let n = i32::try_from(n)
                .map_err(|_| "argument must be between -2147483648 and 2147483647 inclusive")?;
            Ok(Box::new(move |shared| {
                shared
                    .store
                    .limits()
                    .set_list_max_listpack_size(i64::from(n));
                Ok(())
            }))
        },
    ),
];

/// Checks a TLS parameter's value on its own. It is applied by [`config_set`] together with
/// the command's other TLS parameters (a new certificate and its key form one change), so
/// the step returned here does nothing.
fn tls_value(name: &str, value: &[u8]) -> Result<Apply, String> {
    crate::tls::TlsSettings::from_config(&crate::Config::default()).set(name, value)?;
    Ok(Box::new(|_| Ok(())))
}

fn integer(value: &[u8]) -> Result<i64, String> {
    super::parse_i64(value).ok_or_else(|| "argument couldn't be parsed into an integer".to_owned())
}

fn yes_no_value(value: &[u8]) -> Result<bool, String> {
    std::str::from_utf8(value)
        .ok()
        .and_then(|text| parse_yes_no(text).ok())
        .ok_or_else(|| "argument must be 'yes' or 'no'".to_owned())
}

fn yes_no(value: bool) -> &'static str {
    if value {
        "yes"
    } else {
        "no"
    }
}

/// CONFIG GET parameter [parameter ...]: glob patterns, each parameter reported once.
pub fn config_get(ctx: &mut Ctx<'_>, args: Argv<'_>) -> Result<(), CmdError> {
    let patterns: Vec<Vec<u8>> = args
        .slice(2..)
        .iter()
        .map(|p| p.to_ascii_lowercase())
        .collect();
    let matched: Vec<&Parameter> = PARAMETERS
        .iter()
        .filter(|p| {
            patterns
                .iter()
                .any(|pat| glob_match(pat, p.name.as_bytes()))
        })
        .collect();
    ctx.out.map(matched.len());
    for parameter in matched {
        let value = (parameter.get)(ctx.shared);
        ctx.out.bulk(parameter.name.as_bytes());
        ctx.out.bulk(value.as_bytes());
    }
    Ok(())
}

fn config_set_error(name: &str, reason: &str) -> CmdError {
    CmdError::owned(format!(
        "ERR CONFIG SET failed (possibly related to argument '{name}') - {reason}"
    ))
}

/// CONFIG SET parameter value [parameter value ...]: all or nothing.
pub fn config_set(ctx: &mut Ctx<'_>, args: Argv<'_>) -> Result<(), CmdError> {
    if !args.len().is_multiple_of(2) {
        return Err(CmdError::new(
            "ERR wrong number of arguments for 'config|set' command",
        ));
    }
    let mut changes: Vec<(&'static str, Apply)> = Vec::new();
    let mut tls_changes: Vec<(&'static str, &[u8])> = Vec::new();
    for pair in args.slice(2..).pairs() {
        let Some(parameter) = PARAMETERS
            .iter()
            .find(|p| p.name.as_bytes().eq_ignore_ascii_case(pair[0]))
        else {
            return Err(CmdError::owned(format!(
                "ERR Unknown option or number of arguments for CONFIG SET - '{}'",
                printable(pair[0], 128)
            )));
        };
        let name = parameter.name;
        if changes.iter().any(|(seen, _)| *seen == name) {
            return Err(config_set_error(name, "duplicate parameter"));
        }
        let Some(set) = parameter.set else {
            return Err(config_set_error(name, "can't set immutable config"));
        };
        let apply = set(pair[1]).map_err(|reason| config_set_error(name, &reason))?;
        if crate::tls::SETTABLE.contains(&name) {
            tls_changes.push((name, pair[1]));
        }
        changes.push((name, apply));
    }
    // The TLS parameters first, as one change: if the new configuration does not load,
    // nothing of this command is applied.
    if let Some(&(first, _)) = tls_changes.first() {
        ctx.shared
            .tls
            .reconfigure(&tls_changes)
            .map_err(|reason| config_set_error(first, &reason))?;
    }
    for (name, apply) in changes {
        apply(ctx.shared).map_err(|reason| config_set_error(name, &reason))?;
    }
    ctx.out.ok();
    Ok(())
}

/// CONFIG RESETSTAT: zeroes the INFO stats counters.
pub fn config_resetstat(ctx: &mut Ctx<'_>, _args: Argv<'_>) -> Result<(), CmdError> {
    let stats = &ctx.shared.stats;
    for counter in [
        &stats.connections_received,
        &stats.rejected_connections,
        &stats.commands_processed,
        &stats.net_input_bytes,
        &stats.net_output_bytes,
    ] {
        counter.store(0, Ordering::Relaxed);
    }
    for db in ctx.shared.store.dbs() {
        db.reset_stats();
    }
    ctx.shared.store.lazyfree().reset_stats();
    ctx.out.ok();
    Ok(())
}

/// CONFIG REWRITE: there is no configuration file to rewrite.
pub fn config_rewrite(_ctx: &mut Ctx<'_>, _args: Argv<'_>) -> Result<(), CmdError> {
    Err(CmdError::new(
        "ERR The server is running without a config file",
    ))
}

/// CONFIG HELP
pub fn config_help(ctx: &mut Ctx<'_>, _args: Argv<'_>) -> Result<(), CmdError> {
    reply_help(
        ctx,
        "CONFIG",
        &[
            "GET <pattern>",
            "    Return parameters matching the glob-like <pattern> and their values.",
            "SET <directive> <value>",
            "    Set the configuration <directive> to <value>.",
            "RESETSTAT",
            "    Reset statistics reported by the INFO command.",
            "REWRITE",
            "    Rewrite the configuration file.",
        ],
    );
    Ok(())
}

/// CONFIG GET busy-reply-threshold: milliseconds a script runs before others get `-BUSY`.
fn busy_threshold_get(shared: &Shared) -> String {
    shared
        .scripting
        .busy_threshold_ms
        .load(Ordering::Relaxed)
        .to_string()
}

/// CONFIG SET busy-reply-threshold: a non-negative number of milliseconds.
fn busy_threshold_set(value: &[u8]) -> Result<Apply, String> {
    let ms = u64::try_from(integer(value)?)
        .map_err(|_| "argument must be between 0 and 9223372036854775807 inclusive".to_owned())?;
    Ok(Box::new(move |shared| {
        shared
            .scripting
            .busy_threshold_ms
            .store(ms, Ordering::Relaxed);
        Ok(())
    }))
}
