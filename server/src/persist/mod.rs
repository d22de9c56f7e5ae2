//! Persistence: snapshots (SAVE/BGSAVE and the AOF base), the append-only log, rewrite and
//! recovery.

pub mod aof_files;
pub mod fsutil;
pub mod snapshot_format;
