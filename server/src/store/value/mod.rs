//! The values a key can hold: one module per type, each owning its in-memory structure and
//! its piece of the snapshot format.
//!
//! - [`string`]: a `Vec<u8>` held directly in [`Value::Str`] (the hot path: GET and SET reach
//!   it through one match, nothing else).
//! - [`list`], [`hash`], [`set`], [`zset`]: collections, each small enough that the enum, and
//!   with it every key's table node, stays the size a string key needs (asserted below): a
//!   list and a set behind one `Box`; a hash and a sorted set are themselves two words (a
//!   compact buffer, or a boxed table), held directly, so a small one costs its node and one
//!   buffer.
//!
//! Handlers never match on variants: they call a typed accessor ([`Value::as_string`],
//! [`Value::as_list_mut`], ...), which fails with [`WrongType`] (Redis's `WRONGTYPE` reply)
//! when the key holds another type.
//!
//! # Snapshots of large values
//!
//! A snapshot is point-in-time (see `store::shard`): under the shard lock it captures an entry
//! before a write changes it, and its walk captures the others a few at a time. Capturing a
//! collection does not copy its elements. Every collection keeps them in fixed-size parts
//! behind `Arc`s (list chunks, hash and set segments, sorted-set segments and score-order
//! chunks), and a capture is a [`Clone`] of the value: one pointer copy per part, about one
//! per hundred elements, with the encoding done later by the snapshot thread outside the lock.
//! A write to a captured collection copies only the part it touches (`Arc::make_mut`), and
//! the snapshot drops its references, freeing what writers replaced, from its own thread. So
//! no client waits for a collection's elements while a snapshot saves it: a capture of a
//! million-element collection copies about 8,000 pointers (a tenth of a millisecond, where
//! encoding its elements took 10 to 45 ms), and a write costs at most one part's copy more
//! than without a snapshot. A string is the one value copied whole under the lock (once per snapshot, and
//! only if a write modifies it in place before the walk reaches it): the walk bounds the bytes
//! it copies per lock hold, but a single very large string is still copied in one.
//!
//! # Snapshot payloads
//!
//! Each type's payload follows its type tag and key in the snapshot file (the layout is in
//! `persist::snapshot_format`): `0x00` string, `0x01` list, `0x02` hash, `0x03` set, `0x04`
//! sorted set, each laid out as its module documents. Tags up to `0x7F` are reserved for
//! value types. Decoders trust no count or length: they reserve nothing from a count (a
//! collection grows as its elements are actually read, a chunk or segment at a time), the
//! reader bounds what a length preallocates and rejects a count or length beyond the bytes a
//! file has left, and duplicates and NaN scores are rejected as corrupt input.

pub mod codec;
pub mod hash;
pub mod limits;
pub mod list;
mod segmented;
pub mod set;
pub mod string;
mod thin;
pub mod zset;

use std::fmt;

use codec::{PayloadRead, PayloadWrite};
pub use hash::Hash;
pub use limits::{EncodingLimits, Limits};
pub use list::List;
pub use set::Set;
pub use zset::{Score, ZSet};

/// Type tags of the snapshot format, one per value type. Tags up to [`tag::LAST_RESERVED`]
/// belong to value types; the record opcodes start above it.
pub mod tag {
    /// A string.
    pub const STRING: u8 = 0x00;
    /// A list.
    pub const LIST: u8 = 0x01;
    /// A hash.
    pub const HASH: u8 = 0x02;
    /// A set.
    pub const SET: u8 = 0x03;
    /// A sorted set.
    pub const ZSET: u8 = 0x04;
    /// The highest tag reserved for value types.
    pub const LAST_RESERVED: u8 = 0x7F;
}

/// A stored value; see the module documentation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// A binary-safe string ([`string`]).
    Str(Vec<u8>),
    /// A list ([`list`]).
    List(Box<List>),
    /// A hash ([`hash`]): two words, held directly (a small hash is one buffer).
    Hash(Hash),
    /// A set ([`set`]).
    Set(Box<Set>),
    /// A sorted set ([`zset`]): two words, held directly (a small one is one buffer).
    ZSet(ZSet),
}

/// A string's `Vec` is all a string key's node has room for: the collections' boxes fit
/// beside the `Vec`'s niche, so the enum is no larger than the `Vec`. The table's node
/// (`store::table`) is one cache line on that assumption.
const _: () = assert!(std::mem::size_of::<Value>() == 24);
const _: () = assert!(std::mem::size_of::<Value>() == std::mem::size_of::<Vec<u8>>());

/// An operation against a key holding another type of value (Redis's `WRONGTYPE` error).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WrongType;

impl fmt::Display for WrongType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("operation against a key holding the wrong kind of value")
    }
}

impl std::error::Error for WrongType {}

/// Generates the typed accessors of one collection variant.
macro_rules! collection_accessors {
    ($variant:ident, $ty:ty, $as:ident, $as_mut:ident, $what:literal) => {
        #[doc = concat!("The ", $what, ", or [`WrongType`].")]
        #[inline]
        pub fn $as(&self) -> Result<&$ty, WrongType> {
            match self {
                Value::$variant(value) => Ok(value),
                _ => Err(WrongType),
            }
        }

        #[doc = concat!("The ", $what, ", mutably, or [`WrongType`].")]
        #[inline]
        pub fn $as_mut(&mut self) -> Result<&mut $ty, WrongType> {
            match self {
                Value::$variant(value) => Ok(value),
                _ => Err(WrongType),
            }
        }
    };
}

impl Value {
    /// Replaces this value with `new`. A string (the common case, SET over SET) is freed
    /// inline; a collection is handed back, for the caller to free where it chooses (the
    /// shard frees large ones off its lock: `store::lazyfree`).
    #[inline]
    #[must_use = "a replaced collection is handed back to be freed"]
    pub fn replace(&mut self, new: Value) -> Option<Value> {
        match std::mem::replace(self, new) {
            Value::Str(bytes) => {
                drop(bytes);
                None
            }
            other => Some(other),
        }
    }

    /// Puts a value just loaded from a snapshot (decoded under the default thresholds) in
    /// the representation the server's thresholds call for.
    pub fn fit_limits(&mut self, limits: &Limits) {
        if let Value::Hash(hash) = self {
            hash.fit(limits);
        }
    }

    /// About how many allocations dropping this value frees (Redis's "free effort"): 1 for
    /// a string or a compact collection (one buffer), the number of packed chunks of a
    /// chunked list (as Redis counts quicklist nodes), the number of elements otherwise.
    /// What decides whether a removed value is freed off the shard lock.
    pub fn free_effort(&self) -> usize {
        match self {
            Value::Str(_) => 1,
            Value::Hash(hash) => hash.free_effort(),
            other if matches!(other.encoding(), "listpack" | "intset") => 1,
            Value::List(list) => list.chunk_count(),
            Value::Set(set) => set.len(),
            Value::ZSet(zset) => zset.len(),
        }
    }

    /// A list value.
    pub fn list(list: List) -> Self {
        Value::List(Box::new(list))
    }

    /// A hash value.
    pub fn hash(hash: Hash) -> Self {
        Value::Hash(hash)
    }

    /// A set value.
    pub fn set(set: Set) -> Self {
        Value::Set(Box::new(set))
    }

    /// A sorted set value.
    pub fn zset(zset: ZSet) -> Self {
        Value::ZSet(zset)
    }

    /// The name TYPE reports and SCAN ... TYPE filters on.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Str(_) => "string",
            Value::List(_) => "list",
            Value::Hash(_) => "hash",
            Value::Set(_) => "set",
            Value::ZSet(_) => "zset",
        }
    }

    /// The name OBJECT ENCODING reports: Redis's name for the representation that plays the
    /// same part (a client may test it, for example to see that a small hash is compact).
    pub fn encoding(&self) -> &'static str {
        match self {
            Value::Str(bytes) => string::encoding(bytes),
            Value::List(list) => list.encoding(),
            Value::Hash(hash) => hash.encoding(),
            Value::Set(set) => set.encoding(),
            Value::ZSet(zset) => zset.encoding(),
        }
    }

    /// The string's bytes, or [`WrongType`]. Inlined: GET's path is this one match.
    #[inline]
    pub fn as_string(&self) -> Result<&[u8], WrongType> {
        match self {
            Value::Str(bytes) => Ok(bytes),
            _ => Err(WrongType),
        }
    }

    /// The string, mutably (APPEND, SETRANGE and INCR change it in place), or [`WrongType`].
    #[inline]
    pub fn as_string_mut(&mut self) -> Result<&mut Vec<u8>, WrongType> {
        match self {
            Value::Str(bytes) => Ok(bytes),
            _ => Err(WrongType),
        }
    }

    collection_accessors!(List, List, as_list, as_list_mut, "list");
    collection_accessors!(Hash, Hash, as_hash, as_hash_mut, "hash");
    collection_accessors!(Set, Set, as_set, as_set_mut, "set");
    collection_accessors!(ZSet, ZSet, as_zset, as_zset_mut, "sorted set");

    /// Borrows the value as a [`ValueRef`].
    #[inline]
    pub fn as_value_ref(&self) -> ValueRef<'_> {
        match self {
            Value::Str(bytes) => ValueRef::Str(bytes),
            Value::List(list) => ValueRef::List(list),
            Value::Hash(hash) => ValueRef::Hash(hash),
            Value::Set(set) => ValueRef::Set(set),
            Value::ZSet(zset) => ValueRef::ZSet(zset),
        }
    }

    /// How many `Arc`'d parts a clone of this value copies (one pointer each); 0 for a
    /// string, whose clone copies its bytes. What a snapshot's capture costs under the lock.
    pub fn part_count(&self) -> usize {
        match self {
            Value::Str(_) => 0,
            Value::List(list) => list.chunk_count(),
            Value::Hash(hash) => hash.segment_count(),
            Value::Set(set) => set.segment_count(),
            Value::ZSet(zset) => zset.part_count(),
        }
    }

    /// Parts not shared with a clone of this value (for tests of what a write copies while
    /// a snapshot holds a clone); 0 for a string.
    #[cfg(test)]
    pub(crate) fn unshared_parts(&self) -> usize {
        match self {
            Value::Str(_) => 0,
            Value::List(list) => list.unshared_parts(),
            Value::Hash(hash) => hash.unshared_parts(),
            Value::Set(set) => set.unshared_parts(),
            Value::ZSet(zset) => zset.unshared_parts(),
        }
    }

    /// Reads the payload of a value whose type tag is `tag`; `None` if `tag` names no value
    /// type (the caller reports it as an unknown opcode).
    pub fn decode<R: PayloadRead>(tag: u8, src: &mut R) -> Option<Result<Value, R::Error>> {
        let value = match tag {
            tag::STRING => string::decode(src).map(Value::Str),
            tag::LIST => list::decode(src).map(Value::list),
            tag::HASH => hash::decode(src).map(Value::hash),
            tag::SET => set::decode(src).map(Value::set),
            tag::ZSET => zset::decode(src).map(Value::zset),
            _ => return None,
        };
        Some(value)
    }
}

/// A borrowed value: a [`Value`], or a string's bytes held elsewhere (a snapshot keeps the
/// strings it captured in one buffer). What the snapshot writer encodes.
#[derive(Debug, Clone, Copy)]
pub enum ValueRef<'a> {
    /// A string's bytes.
    Str(&'a [u8]),
    /// A list.
    List(&'a List),
    /// A hash.
    Hash(&'a Hash),
    /// A set.
    Set(&'a Set),
    /// A sorted set.
    ZSet(&'a ZSet),
}

impl ValueRef<'_> {
    /// The value's snapshot type tag.
    pub fn type_tag(self) -> u8 {
        match self {
            ValueRef::Str(_) => tag::STRING,
            ValueRef::List(_) => tag::LIST,
            ValueRef::Hash(_) => tag::HASH,
            ValueRef::Set(_) => tag::SET,
            ValueRef::ZSet(_) => tag::ZSET,
        }
    }

    /// Writes the value's payload (what follows its type tag and key).
    pub fn encode<W: PayloadWrite>(self, out: &mut W) -> Result<(), W::Error> {
        match self {
            ValueRef::Str(bytes) => string::encode(bytes, out),
            ValueRef::List(list) => list::encode(list, out),
            ValueRef::Hash(hash) => hash::encode(hash, out),
            ValueRef::Set(set) => set::encode(set, out),
            ValueRef::ZSet(zset) => zset::encode(zset, out),
        }
    }

    /// True for a collection with no element (the store never keeps one: the command that
    /// empties a collection deletes its key).
    pub fn is_empty_collection(self) -> bool {
        match self {
            ValueRef::Str(_) => false,
            ValueRef::List(list) => list.is_empty(),
            ValueRef::Hash(hash) => hash.is_empty(),
            ValueRef::Set(set) => set.is_empty(),
            ValueRef::ZSet(zset) => zset.is_empty(),
        }
    }
}

/// Bytes in `Debug` output, escaped as text.
struct Shown<'a>(&'a [u8]);

impl fmt::Debug for Shown<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "\"{}\"", self.0.escape_ascii())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accessors_answer_wrong_type_for_other_types() {
        let mut values = [
            Value::Str(b"s".to_vec()),
            Value::list([&b"a"[..]].into_iter().collect()),
            Value::hash([(&b"f"[..], &b"v"[..])].into_iter().collect()),
            Value::set([&b"m"[..]].into_iter().collect()),
            Value::zset([(b"m", Score::new(1.0).unwrap())].into_iter().collect()),
        ];
        let names: Vec<_> = values.iter().map(Value::type_name).collect();
        assert_eq!(names, ["string", "list", "hash", "set", "zset"]);
        for (i, value) in values.iter_mut().enumerate() {
            assert_eq!(value.as_string().is_ok(), i == 0);
            assert_eq!(value.as_list().is_ok(), i == 1);
            assert_eq!(value.as_hash().is_ok(), i == 2);
            assert_eq!(value.as_set().is_ok(), i == 3);
            assert_eq!(value.as_zset().is_ok(), i == 4);
            assert_eq!(value.as_string_mut().is_ok(), i == 0);
            assert_eq!(value.as_list_mut().is_ok(), i == 1);
            assert_eq!(value.as_hash_mut().is_ok(), i == 2);
            assert_eq!(value.as_set_mut().is_ok(), i == 3);
            assert_eq!(value.as_zset_mut().err(), (i != 4).then_some(WrongType));
            let tag = value.as_value_ref().type_tag();
            assert_eq!(usize::from(tag), i);
            // Every value's payload decodes back to it under its tag.
            let mut bytes = Vec::new();
            let Ok(()) = value.as_value_ref().encode(&mut bytes);
            let mut src = codec::testing::SliceReader(&bytes);
            assert_eq!(Value::decode(tag, &mut src), Some(Ok(value.clone())));
        }
        assert!(Value::decode(0x05, &mut codec::testing::SliceReader(&[])).is_none());
    }
}
