//! The thresholds past which a small collection leaves its compact encoding: Redis's
//! parameters, under Redis's names and with its defaults, settable with `CONFIG SET`.
//!
//! One [`EncodingLimits`] belongs to each server's store (tests run several servers in one
//! process, so these are not globals). A command reads them once with [`EncodingLimits::get`]
//! (a few relaxed loads) and passes the [`Limits`] copy to the value it changes. A change
//! applies to values as they are next written; existing values are not re-encoded, as in
//! Redis.

// Plain std atomics, also under loom: these are configuration values, not synchronisation.
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};

/// The compact-encoding thresholds, as plain numbers: what a write consults.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// `hash-max-listpack-entries`: most fields of a compact hash.
    pub hash_max_listpack_entries: usize,
    /// `hash-max-listpack-value`: longest field or value (bytes) of a compact hash.
    pub hash_max_listpack_value: usize,
    /// `set-max-intset-entries`: most members of an all-integer compact set.
    pub set_max_intset_entries: usize,
    /// `set-max-listpack-entries`: most members of a compact set of other strings.
    pub set_max_listpack_entries: usize,
    /// `set-max-listpack-value`: longest member (bytes) of a compact set.
    pub set_max_listpack_value: usize,
    /// `zset-max-listpack-entries`: most members of a compact sorted set.
    pub zset_max_listpack_entries: usize,
    /// `zset-max-listpack-value`: longest member (bytes) of a compact sorted set.
    pub zset_max_listpack_value: usize,
    /// `list-max-listpack-size`: a positive number bounds the elements of one list chunk;
    /// -1 to -5 bound its bytes to 4, 8, 16, 32 or 64 KiB (Redis's meaning).
    pub list_max_listpack_size: i64,
}

impl Limits {
    /// Redis 7's defaults.
    pub const DEFAULT: Limits = Limits {
        hash_max_listpack_entries: 128,
        hash_max_listpack_value: 64,
        set_max_intset_entries: 512,
        set_max_listpack_entries: 128,
        set_max_listpack_value: 64,
        zset_max_listpack_entries: 128,
        zset_max_listpack_value: 64,
        list_max_listpack_size: -2,
    };

    /// The byte budget of one list chunk under `list-max-listpack-size`, if it is a size
    /// class (-1 to -5; anything below -5 counts as -5), or `None` when it counts entries.
    pub fn list_chunk_bytes(&self) -> Option<usize> {
        match self.list_max_listpack_size {
            n if n >= 0 => None,
            n => Some(4096 << (n.unsigned_abs().min(5) - 1)),
        }
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits::DEFAULT
    }
}

/// The live thresholds of one store; see the module documentation.
#[derive(Debug)]
pub struct EncodingLimits {
    hash_max_listpack_entries: AtomicUsize,
    hash_max_listpack_value: AtomicUsize,
    set_max_intset_entries: AtomicUsize,
    set_max_listpack_entries: AtomicUsize,
    set_max_listpack_value: AtomicUsize,
    zset_max_listpack_entries: AtomicUsize,
    zset_max_listpack_value: AtomicUsize,
    list_max_listpack_size: AtomicI64,
}

impl Default for EncodingLimits {
    fn default() -> Self {
        EncodingLimits::new(Limits::DEFAULT)
    }
}

/// Names of the `usize` parameters, with their accessors: what CONFIG GET and SET go through.
macro_rules! usize_parameters {
    ($($name:literal => $field:ident),* $(,)?) => {
        impl EncodingLimits {
            /// The `usize` parameters' names, in CONFIG GET order.
            pub const USIZE_NAMES: &'static [&'static str] = &[$($name),*];

            /// The value of the `usize` parameter `name`.
            pub fn usize_parameter(&self, name: &str) -> Option<usize> {
                match name {
                    $($name => Some(self.$field.load(Ordering::Relaxed)),)*
                    _ => None,
                }
            }

            /// Sets the `usize` parameter `name`; false if there is none of that name.
            pub fn set_usize_parameter(&self, name: &str, value: usize) -> bool {
                match name {
                    $($name => self.$field.store(value, Ordering::Relaxed),)*
                    _ => return false,
                }
                true
            }
        }
    };
}

usize_parameters! {
    "hash-max-listpack-entries" => hash_max_listpack_entries,
    "hash-max-listpack-value" => hash_max_listpack_value,
    "set-max-intset-entries" => set_max_intset_entries,
    "set-max-listpack-entries" => set_max_listpack_entries,
    "set-max-listpack-value" => set_max_listpack_value,
    "zset-max-listpack-entries" => zset_max_listpack_entries,
    "zset-max-listpack-value" => zset_max_listpack_value,
}

impl EncodingLimits {
    /// Live thresholds starting at `limits`.
    pub fn new(limits: Limits) -> Self {
        EncodingLimits {
            hash_max_listpack_entries: AtomicUsize::new(limits.hash_max_listpack_entries),
            hash_max_listpack_value: AtomicUsize::new(limits.hash_max_listpack_value),
            set_max_intset_entries: AtomicUsize::new(limits.set_max_intset_entries),
            set_max_listpack_entries: AtomicUsize::new(limits.set_max_listpack_entries),
            set_max_listpack_value: AtomicUsize::new(limits.set_max_listpack_value),
            zset_max_listpack_entries: AtomicUsize::new(limits.zset_max_listpack_entries),
            zset_max_listpack_value: AtomicUsize::new(limits.zset_max_listpack_value),
            list_max_listpack_size: AtomicI64::new(limits.list_max_listpack_size),
        }
    }

    /// The current thresholds.
    pub fn get(&self) -> Limits {
        Limits {
            hash_max_listpack_entries: self.hash_max_listpack_entries.load(Ordering::Relaxed),
            hash_max_listpack_value: self.hash_max_listpack_value.load(Ordering::Relaxed),
            set_max_intset_entries: self.set_max_intset_entries.load(Ordering::Relaxed),
            set_max_listpack_entries: self.set_max_listpack_entries.load(Ordering::Relaxed),
            set_max_listpack_value: self.set_max_listpack_value.load(Ordering::Relaxed),
            zset_max_listpack_entries: self.zset_max_listpack_entries.load(Ordering::Relaxed),
            zset_max_listpack_value: self.zset_max_listpack_value.load(Ordering::Relaxed),
            list_max_listpack_size: self.list_max_listpack_size.load(Ordering::Relaxed),
        }
    }

    /// `list-max-listpack-size`.
    pub fn list_max_listpack_size(&self) -> i64 {
        self.list_max_listpack_size.load(Ordering::Relaxed)
    }

    /// Sets `list-max-listpack-size`.
    pub fn set_list_max_listpack_size(&self, value: i64) {
        self.list_max_listpack_size.store(value, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameters_read_back_what_was_set() {
        let limits = EncodingLimits::default();
        assert_eq!(limits.get(), Limits::DEFAULT);
        for (i, name) in EncodingLimits::USIZE_NAMES.iter().enumerate() {
            assert!(limits.set_usize_parameter(name, 1000 + i));
            assert_eq!(limits.usize_parameter(name), Some(1000 + i));
        }
        assert!(!limits.set_usize_parameter("nope", 1));
        assert_eq!(limits.get().zset_max_listpack_value, 1006);
        limits.set_list_max_listpack_size(-5);
        assert_eq!(limits.get().list_chunk_bytes(), Some(65536));
        limits.set_list_max_listpack_size(-1);
        assert_eq!(limits.get().list_chunk_bytes(), Some(4096));
        limits.set_list_max_listpack_size(-9);
        assert_eq!(limits.get().list_chunk_bytes(), Some(65536));
        limits.set_list_max_listpack_size(7);
        assert_eq!(limits.get().list_chunk_bytes(), None);
    }
}
