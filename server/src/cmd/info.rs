//! INFO: the server's sections of `field:value` lines, in Redis's names and order.

use protocol::Argv;
use std::fmt::Write as _;

use super::{CmdError, Ctx};
use crate::clock::unix_ms;
use crate::store::Db;
use crate::sync::Ordering;
use crate::VERSION_FOR_CLIENTS;

/// Sections INFO prints by default, in Redis's order.
const DEFAULT_SECTIONS: &[&str] = &[
    "server",
    "clients",
    "memory",
    "persistence",
    "stats",
    "replication",
    "cpu",
    "keyspace",
];

/// INFO [section ...]
pub fn info(ctx: &mut Ctx<'_>, args: Argv<'_>) -> Result<(), CmdError> {
    let wanted: Vec<String> = args
        .slice(1..)
        .iter()
        .map(|a| String::from_utf8_lossy(a).to_ascii_lowercase())
        .collect();
    let everything = wanted.is_empty()
        || wanted
            .iter()
            .any(|w| matches!(w.as_str(), "all" | "everything" | "default"));
    let mut text = String::new();
    for section in DEFAULT_SECTIONS {
        if everything || wanted.iter().any(|w| w == section) {
            if !text.is_empty() {
                text.push_str("\r\n");
            }
            write_info_section(ctx, section, &mut text);
        }
    }
    ctx.out.verbatim(text.as_bytes());
    Ok(())
}

fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "K", "M", "G", "T"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n}B")
    } else {
        format!("{value:.2}{}", UNITS[unit])
    }
}

fn write_info_section(ctx: &Ctx<'_>, section: &str, text: &mut String) {
    let shared = ctx.shared;
    let stats = &shared.stats;
    let load = |c: &crate::sync::AtomicU64| c.load(Ordering::Relaxed);
    let uptime = shared.started.elapsed().as_secs();
    // `write!` into a String cannot fail.
    match section {
        "server" => {
            let _ = write!(
                text,
                "# Server\r\nredis_version:{VERSION_FOR_CLIENTS}\r\nkvstore_version:{}\r\n\
                 redis_git_sha1:00000000\r\nredis_git_dirty:0\r\nredis_build_id:0\r\n\
                 redis_mode:standalone\r\nos:{} {}\r\narch_bits:{}\r\nmultiplexing_api:tokio\r\n\
                 process_id:{}\r\ntcp_port:{}\r\nserver_time_usec:{}\r\nuptime_in_seconds:{uptime}\r\n\
                 uptime_in_days:{}\r\nhz:{}\r\nconfigured_hz:{}\r\nexecutable:{}\r\nconfig_file:\r\n",
                env!("CARGO_PKG_VERSION"),
                std::env::consts::OS,
                std::env::consts::ARCH,
                usize::BITS,
                std::process::id(),
                shared.port,
                unix_ms() * 1000,
                uptime / 86_400,
                shared.hz.load(Ordering::Relaxed),
                shared.config.hz,
                std::env::current_exe()
                    .map(|p| p.display().to_string())
                    .unwrap_or_default(),
            );
        }
        "clients" => {
            let _ = write!(
                text,
                "# Clients\r\nconnected_clients:{}\r\nmaxclients:{}\r\nblocked_clients:{}\r\n\
                 tracking_clients:{}\r\n",
                shared.clients.len(),
                shared.maxclients.load(Ordering::Relaxed),
                shared.store.blocking().blocked_clients(),
                shared.tracking.stats().0,
            );
        }
        "memory" => {
            let used = crate::memory::allocated_bytes();
            let rss = crate::memory::resident_bytes();
            let ratio = if used > 0 {
                rss as f64 / used as f64
            } else {
                0.0
            };
            let _ = write!(
                text,
                "# Memory\r\nused_memory:{used}\r\nused_memory_human:{}\r\n\
                 used_memory_rss:{rss}\r\nused_memory_rss_human:{}\r\nmaxmemory:0\r\n\
                 maxmemory_human:0B\r\nmaxmemory_policy:noeviction\r\n\
                 mem_fragmentation_ratio:{ratio:.2}\r\nmem_allocator:{allocator}\r\n\
                 lazyfree_pending_objects:{}\r\nlazyfreed_objects:{}\r\n",
                human_bytes(used),
                human_bytes(rss),
                shared.store.lazyfree().pending(),
                shared.store.lazyfree().freed(),
                allocator = crate::memory::ALLOCATOR_NAME,
            );
        }
        "persistence" => {
            let p = &shared.persist;
            let flag = |b: &std::sync::atomic::AtomicBool| u8::from(b.load(Ordering::Relaxed));
            let status = |b: &std::sync::atomic::AtomicBool| {
                if b.load(Ordering::Relaxed) {
                    "ok"
                } else {
                    "err"
                }
            };
            let aof = p.aof();
            let aof_write_ok = aof
                .as_ref()
                .is_none_or(|aof| !aof.write_failed.load(Ordering::Relaxed));
            let _ = write!(
                text,
                "# Persistence\r\nloading:{}\r\nasync_loading:0\r\n\
                 rdb_changes_since_last_save:{}\r\nrdb_bgsave_in_progress:{}\r\n\
                 rdb_last_save_time:{}\r\nrdb_last_bgsave_status:{}\r\n\
                 aof_enabled:{}\r\naof_rewrite_in_progress:{}\r\naof_rewrite_scheduled:{}\r\n\
                 aof_last_bgrewrite_status:{}\r\naof_last_write_status:{}\r\n",
                flag(&p.loading),
                p.dirty.load(Ordering::Relaxed),
                flag(&p.bgsave_in_progress),
                p.last_save_secs.load(Ordering::Relaxed),
                status(&p.last_bgsave_ok),
                u8::from(aof.is_some()),
                flag(&p.rewrite_in_progress),
                flag(&p.rewrite_scheduled),
                status(&p.last_rewrite_ok),
                if aof_write_ok { "ok" } else { "err" },
            );
            if let Some(aof) = &aof {
                let _ = write!(
                    text,
                    "aof_current_size:{}\r\naof_base_size:{}\r\naof_fsync_policy:{}\r\n",
                    p.aof_current_size(),
                    p.aof_base_size.load(Ordering::Relaxed),
                    aof.policy().name(),
                );
            }
        }
        "stats" => {
            let denied = shared.acl.denied_counts();
            let keyspace = shared
                .store
                .dbs()
                .iter()
                .map(Db::stats)
                .fold((0, 0, 0), |acc, s| {
                    (acc.0 + s.hits, acc.1 + s.misses, acc.2 + s.expired)
                });
            let tracking = shared.tracking.stats();
            let _ = write!(
                text,
                "# Stats\r\ntotal_connections_received:{}\r\ntotal_commands_processed:{}\r\n\
                 instantaneous_ops_per_sec:{}\r\ntotal_net_input_bytes:{}\r\n\
                 total_net_output_bytes:{}\r\nrejected_connections:{}\r\nexpired_keys:{}\r\n\
                 evicted_keys:0\r\nkeyspace_hits:{}\r\nkeyspace_misses:{}\r\n\
                 tracking_total_keys:{}\r\ntracking_total_items:{}\r\n\
                 tracking_total_prefixes:{}\r\nacl_access_denied_auth:{}\r\n\
                 acl_access_denied_cmd:{}\r\nacl_access_denied_key:{}\r\n\
                 acl_access_denied_channel:{}\r\nrate_limited_requests:{}\r\n",
                load(&stats.connections_received),
                load(&stats.commands_processed),
                load(&stats.ops_per_sec),
                load(&stats.net_input_bytes),
                load(&stats.net_output_bytes),
                load(&stats.rejected_connections),
                keyspace.2,
                keyspace.0,
                keyspace.1,
                tracking.1,
                tracking.2,
                tracking.3,
                denied[0],
                denied[1],
                denied[2],
                denied[3],
                shared.rate_limiter.refused(),
            );
        }
        "replication" => {
            text.push_str("# Replication\r\nrole:master\r\nconnected_slaves:0\r\n");
        }
        "cpu" => {
            let (user, system) = crate::memory::cpu_seconds();
            let _ = write!(
                text,
                "# CPU\r\nused_cpu_sys:{system:.6}\r\nused_cpu_user:{user:.6}\r\n"
            );
        }
        "keyspace" => {
            text.push_str("# Keyspace\r\n");
            for (index, db) in shared.store.dbs().iter().enumerate() {
                let (keys, volatile) = db.counts();
                if keys > 0 {
                    let _ = write!(
                        text,
                        "db{index}:keys={keys},expires={volatile},avg_ttl=0\r\n"
                    );
                }
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::human_bytes;

    #[test]
    fn human_sizes() {
        assert_eq!(human_bytes(0), "0B");
        assert_eq!(human_bytes(1023), "1023B");
        assert_eq!(human_bytes(1024), "1.00K");
        assert_eq!(human_bytes(3 * 1024 * 1024 / 2), "1.50M");
    }
}
