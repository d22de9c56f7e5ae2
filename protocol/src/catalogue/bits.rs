//! The bit sets of the catalogue: command flags, ACL categories and key-spec flags.
//!
//! Each is a `Copy` integer with one named constant per bit, `const fn` set operations (so
//! catalogue rows can combine them in a `static`), and the names Redis uses on the wire. The
//! bit order is the order `COMMAND INFO` lists the names in.

use std::fmt;

/// Declares a bit set type: one constant per bit with its wire name, in listing order.
macro_rules! bit_set {
    (
        $(#[$meta:meta])*
        pub struct $name:ident: $repr:ty {
            $( $(#[$flag_meta:meta])* const $flag:ident = $text:literal; )*
        }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
        pub struct $name($repr);

        #[allow(non_camel_case_types, clippy::upper_case_acronyms)]
        #[repr(u8)]
        enum Bit { $( $flag, )* }

        impl $name {
            $( $(#[$flag_meta])* pub const $flag: $name = $name(1 << Bit::$flag as u8); )*

            /// The empty set.
            pub const EMPTY: $name = $name(0);

            /// Every bit with its wire name, in listing order.
            const NAMED: &'static [($name, &'static str)] = &[ $( ($name::$flag, $text), )* ];

            /// The bits of both sets.
            pub const fn union(self, other: $name) -> $name {
                $name(self.0 | other.0)
            }

            /// True if every bit of `other` is set in `self`.
            pub const fn contains(self, other: $name) -> bool {
                self.0 & other.0 == other.0
            }

            /// True if no bit is set.
            pub const fn is_empty(self) -> bool {
                self.0 == 0
            }

            /// How many bits are set.
            pub const fn len(self) -> usize {
                self.0.count_ones() as usize
            }

            /// The wire names of the set bits, in listing order.
            pub fn names(self) -> impl Iterator<Item = &'static str> {
                Self::NAMED
                    .iter()
                    .filter(move |(bit, _)| self.contains(*bit))
                    .map(|(_, text)| *text)
            }

            /// The bit with this wire name (ASCII case-insensitive).
            pub fn from_name(name: &[u8]) -> Option<$name> {
                Self::NAMED
                    .iter()
                    .find(|(_, text)| text.as_bytes().eq_ignore_ascii_case(name))
                    .map(|(bit, _)| *bit)
            }
        }

        impl std::ops::BitOr for $name {
            type Output = $name;

            fn bitor(self, other: $name) -> $name {
                self.union(other)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_set().entries(self.names()).finish()
            }
        }
    };
}

mod command_flags {
    use super::fmt;

    bit_set! {
        /// Redis's command flags, as `COMMAND INFO` reports them (`write`, `readonly`, `fast`...).
        pub struct CommandFlags: u32 {
            /// May modify the keyspace.
            const WRITE = "write";
            /// Only reads the keyspace.
            const READONLY = "readonly";
            /// May grow memory use (refused under `maxmemory` in Redis).
            const DENYOOM = "denyoom";
            /// Implemented by a module.
            const MODULE = "module";
            /// Administrative (also `@admin` and `@dangerous`).
            const ADMIN = "admin";
            /// Publish/subscribe.
            const PUBSUB = "pubsub";
            /// Not allowed from scripts.
            const NOSCRIPT = "noscript";
            /// May block the client.
            const BLOCKING = "blocking";
            /// Allowed while the dataset loads.
            const LOADING = "loading";
            /// Allowed on a replica with stale data.
            const STALE = "stale";
            /// Not shown by MONITOR.
            const SKIP_MONITOR = "skip_monitor";
            /// Not recorded in the slow log.
            const SKIP_SLOWLOG = "skip_slowlog";
            /// Cluster: allowed on an importing slot after ASKING.
            const ASKING = "asking";
            /// O(1) or O(log N), never delays the server (also `@fast`).
            const FAST = "fast";
            /// Allowed before authentication.
            const NO_AUTH = "no_auth";
            /// Key arguments may be absent.
            const NO_MANDATORY_KEYS = "no_mandatory_keys";
            /// Refused during asynchronous loading.
            const NO_ASYNC_LOADING = "no_async_loading";
            /// Not allowed inside MULTI.
            const NO_MULTI = "no_multi";
            /// Key positions cannot be told from the legacy first/last/step triple.
            const MOVABLEKEYS = "movablekeys";
            /// Allowed while a script or function is busy.
            const ALLOW_BUSY = "allow_busy";
        }
    }
}

mod acl_categories {
    use super::fmt;

    bit_set! {
        /// ACL categories (`@read`, `@string`...), named without the `@`.
        ///
        /// The bit order is the order kvstore has always listed them in `COMMAND INFO` (access,
        /// then data type, then administrative, then speed); Redis lists the same set in a
        /// different order.
        pub struct AclCategories: u32 {
            /// Writes the keyspace.
            const WRITE = "write";
            /// Reads the keyspace.
            const READ = "read";
            /// Generic key commands.
            const KEYSPACE = "keyspace";
            /// Strings.
            const STRING = "string";
            /// Lists.
            const LIST = "list";
            /// Hashes.
            const HASH = "hash";
            /// Sets.
            const SET = "set";
            /// Sorted sets.
            const SORTEDSET = "sortedset";
            /// Streams.
            const STREAM = "stream";
            /// Bit operations on strings.
            const BITMAP = "bitmap";
            /// HyperLogLog.
            const HYPERLOGLOG = "hyperloglog";
            /// Geospatial indexes.
            const GEO = "geo";
            /// Publish/subscribe.
            const PUBSUB = "pubsub";
            /// The connection itself.
            const CONNECTION = "connection";
            /// MULTI/EXEC.
            const TRANSACTION = "transaction";
            /// Scripts and functions.
            const SCRIPTING = "scripting";
            /// Administration.
            const ADMIN = "admin";
            /// Potentially harmful.
            const DANGEROUS = "dangerous";
            /// Fast commands.
            const FAST = "fast";
            /// Everything that is not fast.
            const SLOW = "slow";
            /// May block the client.
            const BLOCKING = "blocking";
        }
    }
}

mod key_flags {
    use super::fmt;

    bit_set! {
        /// What a command does with the keys of one key spec (`RO`, `RW`, `access`...).
        pub struct KeyFlags: u16 {
            /// Read only.
            const RO = "RO";
            /// Read and write.
            const RW = "RW";
            /// Overwrite: the old value is not read.
            const OW = "OW";
            /// Removes the key.
            const RM = "RM";
            /// Returns or uses the value.
            const ACCESS = "access";
            /// Updates the value.
            const UPDATE = "update";
            /// Adds data, never modifies or removes it.
            const INSERT = "insert";
            /// Deletes data.
            const DELETE = "delete";
            /// Not a key (a name in another namespace).
            const NOT_KEY = "not_key";
            /// The spec may miss some keys.
            const INCOMPLETE = "incomplete";
            /// The flags depend on other arguments.
            const VARIABLE_FLAGS = "variable_flags";
        }
    }
}

pub use acl_categories::AclCategories;
pub use command_flags::CommandFlags;
pub use key_flags::KeyFlags;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_bit_order_whatever_the_union_order() {
        let flags = CommandFlags::FAST
            .union(CommandFlags::WRITE)
            .union(CommandFlags::DENYOOM);
        assert_eq!(
            flags.names().collect::<Vec<_>>(),
            ["write", "denyoom", "fast"]
        );
        assert_eq!(flags.len(), 3);
        assert!(flags.contains(CommandFlags::WRITE | CommandFlags::FAST));
        assert!(!flags.contains(CommandFlags::READONLY));
        assert!(CommandFlags::EMPTY.is_empty());
        assert_eq!(format!("{flags:?}"), r#"{"write", "denyoom", "fast"}"#);
    }

    #[test]
    fn from_name_ignores_case() {
        assert_eq!(
            AclCategories::from_name(b"KeySpace"),
            Some(AclCategories::KEYSPACE)
        );
        assert_eq!(KeyFlags::from_name(b"rw"), Some(KeyFlags::RW));
        assert_eq!(CommandFlags::from_name(b"nope"), None);
    }
}
