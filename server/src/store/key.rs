//! Compact key storage: short keys live inside the table node, longer ones in one exact-size
//! heap allocation.
//!
//! Most keys are short (`user:1000:name`, `key:000000000042`); storing them inline saves an
//! allocation and its allocator overhead per key, which is a large share of the memory of a
//! small-value keyspace.

use std::fmt;
use std::ops::Deref;

/// Longest key stored inline: the enum stays 24 bytes (a tag, a length and 22 bytes).
const INLINE: usize = 22;

/// A key as stored in a shard.
#[derive(Clone, PartialEq, Eq)]
pub enum Key {
    /// Up to [`INLINE`] bytes, stored in place.
    Inline {
        /// Number of bytes used in `bytes`.
        len: u8,
        /// The key, zero-padded.
        bytes: [u8; INLINE],
    },
    /// Longer keys: one exact-size allocation.
    Heap(Box<[u8]>),
}

impl Key {
    /// Copies `key` into the compact form.
    pub fn new(key: &[u8]) -> Key {
        if key.len() <= INLINE {
            let mut bytes = [0; INLINE];
            bytes[..key.len()].copy_from_slice(key);
            Key::Inline {
                len: key.len() as u8,
                bytes,
            }
        } else {
            Key::Heap(key.into())
        }
    }

    /// The key's bytes.
    #[inline]
    pub fn as_bytes(&self) -> &[u8] {
        match self {
            Key::Inline { len, bytes } => &bytes[..usize::from(*len)],
            Key::Heap(bytes) => bytes,
        }
    }
}

impl Deref for Key {
    type Target = [u8];

    #[inline]
    fn deref(&self) -> &[u8] {
        self.as_bytes()
    }
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", String::from_utf8_lossy(self.as_bytes()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stays_24_bytes_and_round_trips() {
        assert_eq!(std::mem::size_of::<Key>(), 24);
        for len in [0, 1, 21, 22, 23, 100] {
            let raw: Vec<u8> = (0..len).map(|i| i as u8).collect();
            let key = Key::new(&raw);
            assert_eq!(key.as_bytes(), &raw[..]);
            assert_eq!(matches!(key, Key::Inline { .. }), len <= INLINE);
        }
    }
}
