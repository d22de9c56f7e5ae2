//! Sets: distinct byte-string members, in one of three encodings chosen by size and content,
//! as Redis 7.2 chooses them (OBJECT ENCODING reports the same names).
//!
//! - **intset**: while every member is a canonical 64-bit integer (the text `parse_i64`
//!   accepts and formats back identically) and there are at most `set-max-intset-entries`
//!   (512) of them: a sorted array of little-endian integers, all 2, 4 or 8 bytes wide (the
//!   smallest width that holds every member), found by binary search.
//! - **listpack**: at most `set-max-listpack-entries` (128) members of at most
//!   `set-max-listpack-value` (64) bytes each: one contiguous buffer of `varint(len) bytes`
//!   entries, searched linearly (a few cache lines).
//! - **hashtable**: anything larger, a segmented hash map without values
//!   (`store::value::segmented`): a write during a snapshot copies one segment of about 128
//!   members, a snapshot's clone copies one pointer per segment, membership is one hash and
//!   one probe of a small table, and SSCAN's cursor keeps Redis's guarantee across growth
//!   and shrinking. Members of up to 14 bytes sit in the table's 16-byte slots themselves
//!   (no allocation each, and no pointer to follow to compare one); longer ones behind a
//!   thin pointer to one allocation holding their length and bytes.
//!
//! A set moves up (intset to listpack or hashtable, listpack to hashtable) when a write
//! passes a threshold, and never back down (removals leave the encoding as it is), as in
//! Redis. A compact set's bytes live inside its 32-byte header while they fit (29 bytes:
//! fourteen small integers, or a few short strings), so such a set is one allocation, the
//! box its value holds, and costs less than Redis's object header and intset together;
//! beyond that they are in one buffer sized exactly (grown and shrunk by reallocation, which
//! the allocator mostly does in place). Compact sets are cloned whole by a snapshot, which is
//! cheap at their size.
//!
//! # Snapshot payload (type tag `0x03`)
//!
//! ```text
//! payload := varint(count) member*count       in no particular order
//! member  := varint(len) bytes
//! ```
//!
//! The same whatever the encoding (an intset's members are written as their decimal text);
//! the loader picks the encoding from the members, under the default thresholds. A member may
//! appear only once; a payload that repeats one is rejected as corrupt.

use std::fmt;
use std::ops::{Deref, Range};

use super::codec::{PayloadRead, PayloadWrite};
use super::limits::Limits;
use super::segmented::SegMap;
use super::string::parse_i64;
use super::thin;
use super::Shown;

/// A set value; see the module documentation.
#[derive(Clone)]
pub struct Set {
    repr: Repr,
}

/// The three encodings. The two compact ones share a byte layout (see [`Ints`] and
/// [`Packed`]) held inline while it fits, else in a buffer of its own.
#[derive(Clone)]
enum Repr {
    /// A compact set whose bytes fit in the header.
    Inline {
        kind: Kind,
        len: u8,
        bytes: [u8; INLINE],
    },
    /// A compact set in a buffer of exactly its size.
    Buffer { kind: Kind, bytes: Box<[u8]> },
    /// The segmented hash map (boxed: a small set does not pay for its header).
    Table(Box<SegMap<Stored, ()>>),
}

/// Which compact encoding a set's bytes are in.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    /// Sorted integers ([`Ints`]).
    Ints,
    /// Length-prefixed members ([`Packed`]).
    Packed,
}

/// Compact bytes kept in the set's header (what is left of 32 bytes after the tag, the kind
/// and the length).
const INLINE: usize = 29;

/// A set is 32 bytes: with its box, one 32-byte allocation for a small compact set.
const _: () = assert!(std::mem::size_of::<Set>() == 32);

/// A hashtable's member, 16 bytes in the table's slot: up to [`INLINE_MEMBER`] bytes in
/// place (no allocation of its own, and no pointer to follow when a probe compares it),
/// longer ones behind one thin pointer ([`thin::ThinBytes`]: the length and the bytes in one
/// allocation). Hashes and compares as its bytes, so the table is probed with a `&[u8]`.
///
/// Why 16 bytes: a hashtable's slots are about half full on average (segments grow by
/// doubling), so each byte of a slot costs about two per member; a `Box<[u8]>` would make
/// slots 24 bytes and add an allocation even for short members.
#[derive(Clone)]
enum Stored {
    Inline { len: u8, bytes: [u8; INLINE_MEMBER] },
    Heap(thin::ThinBytes),
}

/// Longest member a hashtable keeps in place: the enum stays 16 bytes.
const INLINE_MEMBER: usize = 14;

const _: () = assert!(std::mem::size_of::<Stored>() == 16);

impl Stored {
    /// A copy of `member`.
    fn new(member: &[u8]) -> Self {
        if member.len() <= INLINE_MEMBER {
            let mut bytes = [0; INLINE_MEMBER];
            bytes[..member.len()].copy_from_slice(member);
            Stored::Inline {
                len: member.len() as u8,
                bytes,
            }
        } else {
            Stored::Heap(thin::ThinBytes::new(member))
        }
    }

    /// A copy of `member` (an owned one is copied too: the thin form is its own allocation).
    fn from_member<M: AsRef<[u8]>>(member: M) -> Self {
        Stored::new(member.as_ref())
    }

    #[inline]
    fn as_bytes(&self) -> &[u8] {
        match self {
            Stored::Inline { len, bytes } => &bytes[..usize::from(*len)],
            Stored::Heap(bytes) => bytes.as_bytes(),
        }
    }
}

impl Deref for Stored {
    type Target = [u8];

    #[inline]
    fn deref(&self) -> &[u8] {
        self.as_bytes()
    }
}

impl fmt::Debug for Stored {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        Shown(self).fmt(f)
    }
}

impl std::borrow::Borrow<[u8]> for Stored {
    #[inline]
    fn borrow(&self) -> &[u8] {
        self.as_bytes()
    }
}

impl PartialEq for Stored {
    #[inline]
    fn eq(&self, other: &Self) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl Eq for Stored {}

impl std::hash::Hash for Stored {
    /// As the bytes hash, as `Borrow<[u8]>` requires.
    #[inline]
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.as_bytes().hash(state);
    }
}

/// Widest decimal text of an `i64` (`-9223372036854775808`).
const MAX_INT_TEXT: usize = 20;

/// A member as iteration hands it out: the stored bytes, or an intset's integer formatted on
/// the stack. Dereferences to the member's bytes.
#[derive(Clone, Copy)]
pub struct Member<'a> {
    repr: MemberRepr<'a>,
}

#[derive(Clone, Copy)]
enum MemberRepr<'a> {
    Bytes(&'a [u8]),
    Int {
        value: i64,
        text: [u8; MAX_INT_TEXT],
        start: u8,
    },
}

impl<'a> Member<'a> {
    /// A member held as bytes.
    fn bytes(bytes: &'a [u8]) -> Self {
        Member {
            repr: MemberRepr::Bytes(bytes),
        }
    }

    /// An integer member, formatted.
    fn int(value: i64) -> Self {
        let mut text = [0u8; MAX_INT_TEXT];
        let formatted = protocol::IntText::new(value);
        let digits = formatted.as_bytes();
        let start = MAX_INT_TEXT - digits.len();
        text[start..].copy_from_slice(digits);
        Member {
            repr: MemberRepr::Int {
                value,
                text,
                start: start as u8,
            },
        }
    }

    /// The integer, when the member came from an intset (no parsing needed to probe
    /// another intset).
    fn as_int(&self) -> Option<i64> {
        match self.repr {
            MemberRepr::Int { value, .. } => Some(value),
            MemberRepr::Bytes(_) => None,
        }
    }
}

impl Deref for Member<'_> {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        match &self.repr {
            MemberRepr::Bytes(bytes) => bytes,
            MemberRepr::Int { text, start, .. } => &text[usize::from(*start)..],
        }
    }
}

impl PartialEq for Member<'_> {
    fn eq(&self, other: &Self) -> bool {
        **self == **other
    }
}

impl Eq for Member<'_> {}

impl PartialOrd for Member<'_> {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Member<'_> {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (**self).cmp(&**other)
    }
}

impl std::hash::Hash for Member<'_> {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        (**self).hash(state);
    }
}

impl fmt::Debug for Member<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        Shown(self).fmt(f)
    }
}

impl Default for Set {
    fn default() -> Self {
        Set::new()
    }
}

impl Set {
    /// An empty set (an empty intset, as Redis starts a computed set).
    pub fn new() -> Self {
        Set::compact(Kind::Ints)
    }

    /// An empty compact set of `kind`.
    fn compact(kind: Kind) -> Self {
        Set {
            repr: Repr::Inline {
                kind,
                len: 0,
                bytes: [0; INLINE],
            },
        }
    }

    /// An empty set in the encoding Redis creates for a key whose first member is `first`
    /// and that is about to receive `hint` members: an intset if `first` is an integer and
    /// `hint` fits one, else a listpack if `hint` fits one, else a hashtable.
    pub fn for_members(first: &[u8], hint: usize, limits: &Limits) -> Self {
        if parse_i64(first).is_some() && hint <= limits.set_max_intset_entries {
            Set::new()
        } else if hint <= limits.set_max_listpack_entries {
            Set::compact(Kind::Packed)
        } else {
            Set {
                repr: Repr::Table(Box::default()),
            }
        }
    }

    /// Moves a compact set to a hashtable if `hint` more members (a command's argument
    /// count, duplicates included, as Redis counts them) would not fit its encoding.
    pub fn prepare_for(&mut self, hint: usize, limits: &Limits) {
        let too_many = match self.compact_bytes() {
            Some((Kind::Ints, _)) => hint > limits.set_max_intset_entries,
            Some((Kind::Packed, _)) => hint > limits.set_max_listpack_entries,
            None => false,
        };
        if too_many {
            self.convert_to_table();
        }
    }

    /// The kind and bytes of a compact set.
    fn compact_bytes(&self) -> Option<(Kind, &[u8])> {
        match &self.repr {
            Repr::Inline { kind, len, bytes } => Some((*kind, &bytes[..usize::from(*len)])),
            Repr::Buffer { kind, bytes } => Some((*kind, bytes)),
            Repr::Table(_) => None,
        }
    }

    /// A compact set's bytes, mutably (for rewriting a count in place).
    fn compact_bytes_mut(&mut self) -> &mut [u8] {
        match &mut self.repr {
            Repr::Inline { len, bytes, .. } => &mut bytes[..usize::from(*len)],
            Repr::Buffer { bytes, .. } => bytes,
            Repr::Table(_) => &mut [],
        }
    }

    /// Makes `bytes` this set's compact bytes, of `kind`: inline if they fit.
    fn set_compact(&mut self, kind: Kind, new: Vec<u8>) {
        self.repr = if new.len() <= INLINE {
            let mut bytes = [0; INLINE];
            bytes[..new.len()].copy_from_slice(&new);
            Repr::Inline {
                kind,
                len: new.len() as u8,
                bytes,
            }
        } else {
            Repr::Buffer {
                kind,
                bytes: new.into_boxed_slice(),
            }
        };
    }

    /// Inserts `insert` at byte `at` of a compact set (inline while it fits; else one
    /// reallocation of an exactly-sized buffer).
    fn splice_in(&mut self, at: usize, insert: &[u8]) {
        match &mut self.repr {
            Repr::Inline { len, bytes, .. } if usize::from(*len) + insert.len() <= INLINE => {
                let end = usize::from(*len);
                bytes.copy_within(at..end, at + insert.len());
                bytes[at..at + insert.len()].copy_from_slice(insert);
                *len += insert.len() as u8;
            }
            Repr::Inline { kind, len, bytes } => {
                let mut grown = Vec::with_capacity(usize::from(*len) + insert.len());
                grown.extend_from_slice(&bytes[..usize::from(*len)]);
                grown.splice(at..at, insert.iter().copied());
                let kind = *kind;
                self.set_compact(kind, grown);
            }
            Repr::Buffer { bytes, .. } => {
                let mut grown = std::mem::take(bytes).into_vec();
                grown.reserve_exact(insert.len());
                grown.splice(at..at, insert.iter().copied());
                *bytes = grown.into_boxed_slice();
            }
            Repr::Table(_) => {}
        }
    }

    /// Removes the bytes at `range` from a compact set (back inline once they fit).
    fn cut_out(&mut self, range: Range<usize>) {
        match &mut self.repr {
            Repr::Inline { len, bytes, .. } => {
                let end = usize::from(*len);
                bytes.copy_within(range.end..end, range.start);
                *len -= range.len() as u8;
            }
            Repr::Buffer { kind, bytes } => {
                let mut shrunk = std::mem::take(bytes).into_vec();
                shrunk.drain(range);
                let kind = *kind;
                self.set_compact(kind, shrunk);
            }
            Repr::Table(_) => {}
        }
    }

    /// The name OBJECT ENCODING reports for this set's representation.
    pub fn encoding(&self) -> &'static str {
        match self.compact_bytes() {
            Some((Kind::Ints, _)) => "intset",
            Some((Kind::Packed, _)) => "listpack",
            None => "hashtable",
        }
    }

    /// Number of members (SCARD).
    pub fn len(&self) -> usize {
        match (self.compact_bytes(), &self.repr) {
            (Some((Kind::Ints, bytes)), _) => Ints(bytes).len(),
            (Some((Kind::Packed, bytes)), _) => Packed(bytes).len(),
            (None, Repr::Table(table)) => table.len(),
            (None, _) => 0,
        }
    }

    /// True when the set has no member.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Number of `Arc`'d segments: what cloning the set copies (one pointer each). 0 for a
    /// compact set, which a clone copies whole (it is small).
    pub fn segment_count(&self) -> usize {
        match &self.repr {
            Repr::Table(table) => table.segment_count(),
            Repr::Inline { .. } | Repr::Buffer { .. } => 0,
        }
    }

    /// True if `member` is in the set (SISMEMBER).
    pub fn contains(&self, member: &[u8]) -> bool {
        match (self.compact_bytes(), &self.repr) {
            (Some((Kind::Ints, bytes)), _) => {
                parse_i64(member).is_some_and(|value| Ints(bytes).contains(value))
            }
            (Some((Kind::Packed, bytes)), _) => Packed(bytes).find(member).is_some(),
            (None, Repr::Table(table)) => table.get(member).is_some(),
            (None, _) => false,
        }
    }

    /// [`Set::contains`] for a member of another set: an intset's member probes an intset
    /// without being parsed.
    pub fn contains_member(&self, member: &Member<'_>) -> bool {
        match (self.compact_bytes(), member.as_int()) {
            (Some((Kind::Ints, bytes)), Some(value)) => Ints(bytes).contains(value),
            _ => self.contains(member),
        }
    }

    /// Adds `member` (SADD) under the thresholds `limits`, converting the encoding first if
    /// it would no longer fit; false if it was already there. An owned member (`Vec`, `Box`)
    /// is moved into a hashtable without a copy.
    pub fn add<M>(&mut self, member: M, limits: &Limits) -> bool
    where
        M: AsRef<[u8]> + Into<Box<[u8]>>,
    {
        let bytes = member.as_ref();
        match self.compact_bytes() {
            Some((Kind::Ints, data)) => {
                let ints = Ints(data);
                if let Some(value) = parse_i64(bytes) {
                    if ints.contains(value) {
                        return false;
                    }
                    if ints.len() < limits.set_max_intset_entries {
                        self.insert_int(value);
                        return true;
                    }
                    // One more would pass the intset's limit: Redis goes to a hashtable.
                    self.convert_to_table();
                } else {
                    let fits_packed = ints.len() < limits.set_max_listpack_entries
                        && ints.len() < MAX_PACKED
                        && bytes.len() <= limits.set_max_listpack_value
                        && ints.widest_text() <= limits.set_max_listpack_value;
                    if fits_packed {
                        self.convert_to_packed();
                    } else {
                        self.convert_to_table();
                    }
                }
            }
            Some((Kind::Packed, data)) => {
                let packed = Packed(data);
                if packed.find(bytes).is_some() {
                    return false;
                }
                if packed.len() >= limits.set_max_listpack_entries
                    || packed.len() >= MAX_PACKED
                    || bytes.len() > limits.set_max_listpack_value
                {
                    self.convert_to_table();
                }
            }
            None => {}
        }
        match &mut self.repr {
            Repr::Table(table) => table.insert(Stored::from_member(member), ()).is_none(),
            // A listpack without the member: checked above, or it was an intset and this
            // is no integer (an intset either took an integer above or was converted).
            Repr::Inline { .. } | Repr::Buffer { .. } => {
                self.push_packed(member.as_ref());
                true
            }
        }
    }

    /// Adds `value` to an intset that does not hold it, widening every member first if
    /// `value` needs more bytes than they have.
    fn insert_int(&mut self, value: i64) {
        let Some((_, data)) = self.compact_bytes() else {
            return;
        };
        let ints = Ints(data);
        let needed = width_of(value);
        if needed > ints.width() || data.is_empty() {
            // A value too wide for the others is below or above all of them.
            let count = ints.len();
            let width = needed.max(ints.width());
            let mut widened = Vec::with_capacity(1 + (count + 1) * usize::from(width));
            widened.push(width);
            let (bytes, size) = Ints::encode(value, width);
            if value < 0 {
                widened.extend_from_slice(&bytes[..size]);
            }
            for index in 0..count {
                let (old, size) = Ints::encode(ints.get(index).unwrap_or(0), width);
                widened.extend_from_slice(&old[..size]);
            }
            if value >= 0 {
                widened.extend_from_slice(&bytes[..size]);
            }
            self.set_compact(Kind::Ints, widened);
        } else if let Err(index) = ints.search(value) {
            let (bytes, width) = Ints::encode(value, ints.width());
            self.splice_in(1 + index * width, &bytes[..width]);
        }
    }

    /// Appends `member` to a listpack that does not hold it.
    fn push_packed(&mut self, member: &[u8]) {
        let Some((_, data)) = self.compact_bytes() else {
            return;
        };
        let count = Packed(data).len();
        let end = data.len();
        let mut entry = Vec::with_capacity(member.len() + 10);
        if data.is_empty() {
            entry.extend_from_slice(&[0; COUNT_BYTES]);
        }
        push_entry(&mut entry, member);
        let at = if data.is_empty() { 0 } else { end };
        self.splice_in(at, &entry);
        Packed::set_len(self.compact_bytes_mut(), count + 1);
    }

    /// Adds `member` under the default thresholds (loading, tests); false if it was there.
    pub fn insert(&mut self, member: impl Into<Box<[u8]>>) -> bool {
        let member: Box<[u8]> = member.into();
        self.add(member, &Limits::DEFAULT)
    }

    /// Removes `member` (SREM); false if it was not there. The encoding stays as it is.
    pub fn remove(&mut self, member: &[u8]) -> bool {
        if let Repr::Table(table) = &mut self.repr {
            return table.remove(member).is_some();
        }
        let Some((kind, data)) = self.compact_bytes() else {
            return false;
        };
        match kind {
            Kind::Ints => {
                let ints = Ints(data);
                let found = parse_i64(member)
                    .filter(|&value| width_of(value) <= ints.width())
                    .and_then(|value| ints.search(value).ok());
                let Some(index) = found else {
                    return false;
                };
                let width = usize::from(ints.width());
                self.cut_out(1 + index * width..1 + (index + 1) * width);
            }
            Kind::Packed => {
                let packed = Packed(data);
                let Some(range) = packed.find(member) else {
                    return false;
                };
                let count = packed.len();
                self.cut_out(range);
                Packed::set_len(self.compact_bytes_mut(), count - 1);
            }
        }
        true
    }

    /// Every member, in no particular order (an intset's in ascending order).
    pub fn iter(&self) -> impl Iterator<Item = Member<'_>> + '_ {
        let (ints, packed, table) = match (self.compact_bytes(), &self.repr) {
            (Some((Kind::Ints, data)), _) => (Some(Ints(data).iter()), None, None),
            (Some((Kind::Packed, data)), _) => {
                (None, Some(Packed(data).iter().map(Member::bytes)), None)
            }
            (None, Repr::Table(table)) => (
                None,
                None,
                Some(table.iter().map(|(member, ())| Member::bytes(member))),
            ),
            (None, _) => (None, None, None),
        };
        ints.into_iter()
            .flatten()
            .chain(packed.into_iter().flatten())
            .chain(table.into_iter().flatten())
    }

    /// One step of SSCAN: visits some members and returns the next cursor (0 when done;
    /// start with 0). A compact set is visited whole in one step whatever the cursor, as
    /// Redis does for an intset or listpack; a hashtable one segment per step, so that every
    /// member present for the whole walk is visited at least once however the set grows or
    /// shrinks between steps (see `SegMap::scan_segment`).
    pub fn scan<'a>(&'a self, cursor: u64, mut visit: impl FnMut(Member<'a>)) -> u64 {
        match &self.repr {
            Repr::Table(table) => {
                table.scan_segment(cursor, |member, ()| visit(Member::bytes(member)))
            }
            Repr::Inline { .. } | Repr::Buffer { .. } => {
                self.iter().for_each(visit);
                0
            }
        }
    }

    /// Random access to the members by position (0 to `len() - 1`), for SRANDMEMBER and
    /// SPOP. `picks` is how many positions the caller will ask for: a hashtable asked for
    /// more than about one per segment lists its members once (O(len)) and answers each
    /// pick in O(1); otherwise each pick finds its segment by binary search and walks it.
    /// An intset answers in O(1), a listpack after listing its entries once.
    pub fn sampler(&self, picks: usize) -> Sampler<'_> {
        let index = match (self.compact_bytes(), &self.repr) {
            (Some((Kind::Ints, _)), _) => SampleIndex::Direct,
            (Some((Kind::Packed, data)), _) => SampleIndex::Listed(Packed(data).iter().collect()),
            (None, Repr::Table(table)) => {
                if picks.saturating_mul(256) > table.len() {
                    SampleIndex::Listed(table.iter().map(|(member, ())| &**member).collect())
                } else {
                    let starts = table
                        .segment_lens()
                        .scan(0, |start, len| {
                            let this = *start;
                            *start += len;
                            Some(this)
                        })
                        .collect();
                    SampleIndex::Starts(starts)
                }
            }
            (None, _) => SampleIndex::Listed(Vec::new()),
        };
        Sampler { set: self, index }
    }

    /// Rebuilds the set as a listpack (from an intset).
    fn convert_to_packed(&mut self) {
        let bytes = Packed::of(self.iter());
        self.set_compact(Kind::Packed, bytes);
    }

    /// Rebuilds the set as a hashtable.
    fn convert_to_table(&mut self) {
        let mut table: SegMap<Stored, ()> = SegMap::default();
        for member in self.iter() {
            table.insert(Stored::new(&member), ());
        }
        self.repr = Repr::Table(Box::new(table));
    }

    /// Segments not shared with a clone: those written since it was cloned.
    #[cfg(test)]
    pub(crate) fn unshared_parts(&self) -> usize {
        match &self.repr {
            Repr::Table(table) => table.unshared_parts(),
            Repr::Inline { .. } | Repr::Buffer { .. } => 0,
        }
    }
}

/// Random access to a set's members by position; see [`Set::sampler`].
pub struct Sampler<'a> {
    set: &'a Set,
    index: SampleIndex<'a>,
}

enum SampleIndex<'a> {
    /// An intset: the position is the index.
    Direct,
    /// Every member, listed once.
    Listed(Vec<&'a [u8]>),
    /// A hashtable's segments: the position of each one's first member.
    Starts(Vec<usize>),
}

impl<'a> Sampler<'a> {
    /// The member at `position`; `None` past the end.
    pub fn get(&self, position: usize) -> Option<Member<'a>> {
        if position >= self.set.len() {
            return None;
        }
        match (&self.index, &self.set.repr) {
            (SampleIndex::Direct, _) => {
                let (_, data) = self.set.compact_bytes()?;
                Some(Member::int(Ints(data).get(position)?))
            }
            (SampleIndex::Listed(members), _) => members.get(position).copied().map(Member::bytes),
            (SampleIndex::Starts(starts), Repr::Table(table)) => {
                let segment = starts.partition_point(|&start| start <= position);
                let segment = segment.checked_sub(1)?;
                let start = starts.get(segment)?;
                let (member, ()) = table.segment_nth(segment, position - start)?;
                Some(Member::bytes(member))
            }
            _ => None,
        }
    }
}

impl PartialEq for Set {
    /// Same members, whatever the encodings.
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.iter().all(|member| other.contains_member(&member))
    }
}

impl Eq for Set {}

impl<M: Into<Box<[u8]>>> FromIterator<M> for Set {
    fn from_iter<I: IntoIterator<Item = M>>(members: I) -> Self {
        let mut set = Set::new();
        for member in members {
            set.insert(member);
        }
        set
    }
}

impl fmt::Debug for Set {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.iter()).finish()
    }
}

/// The byte width an intset needs for `value`.
fn width_of(value: i64) -> u8 {
    if i16::try_from(value).is_ok() {
        2
    } else if i32::try_from(value).is_ok() {
        4
    } else {
        8
    }
}

/// A view of an intset's bytes: a one-byte header holding the width (2, 4 or 8), then the
/// members in ascending order, each that many bytes, little-endian. No bytes: an empty set
/// of width 2.
#[derive(Clone, Copy)]
struct Ints<'a>(&'a [u8]);

impl<'a> Ints<'a> {
    fn width(self) -> u8 {
        self.0.first().copied().unwrap_or(2)
    }

    fn len(self) -> usize {
        self.0.len().saturating_sub(1) / usize::from(self.width())
    }

    /// The integer at `index` (ascending order).
    fn get(self, index: usize) -> Option<i64> {
        let width = usize::from(self.width());
        let bytes = self.0.get(1 + index * width..1 + (index + 1) * width)?;
        Some(match *bytes {
            [a, b] => i64::from(i16::from_le_bytes([a, b])),
            [a, b, c, d] => i64::from(i32::from_le_bytes([a, b, c, d])),
            [a, b, c, d, e, f, g, h] => i64::from_le_bytes([a, b, c, d, e, f, g, h]),
            _ => return None,
        })
    }

    /// Binary search: `Ok(index)` of `value`, or `Err(index)` where it would go.
    fn search(self, value: i64) -> Result<usize, usize> {
        let (mut low, mut high) = (0, self.len());
        while low < high {
            let middle = low + (high - low) / 2;
            match self.get(middle) {
                Some(found) if found < value => low = middle + 1,
                Some(found) if found > value => high = middle,
                Some(_) => return Ok(middle),
                None => break,
            }
        }
        Err(low)
    }

    fn contains(self, value: i64) -> bool {
        width_of(value) <= self.width() && self.search(value).is_ok()
    }

    /// `value`'s bytes at `width`.
    fn encode(value: i64, width: u8) -> ([u8; 8], usize) {
        let mut bytes = [0u8; 8];
        let width = usize::from(width);
        bytes[..width].copy_from_slice(&value.to_le_bytes()[..width]);
        (bytes, width)
    }

    /// Length of the longest member's decimal text (that of the lowest or the highest).
    fn widest_text(self) -> usize {
        let ends = [
            self.get(0),
            self.len().checked_sub(1).and_then(|i| self.get(i)),
        ];
        ends.into_iter()
            .flatten()
            .map(|value| protocol::IntText::new(value).as_bytes().len())
            .max()
            .unwrap_or(0)
    }

    fn iter(self) -> impl Iterator<Item = Member<'a>> + 'a {
        (0..self.len()).filter_map(move |index| self.get(index).map(Member::int))
    }
}

/// A view of a listpack's bytes: a 2-byte little-endian count, then the members one after
/// the other, each as `varint(len) bytes`, in insertion order (a removal closes the gap).
/// No bytes: an empty set.
#[derive(Clone, Copy)]
struct Packed<'a>(&'a [u8]);

/// Bytes of a listpack's count.
const COUNT_BYTES: usize = 2;
/// Most members of a listpack (what its count holds); more go to a hashtable whatever
/// `set-max-listpack-entries` says.
const MAX_PACKED: usize = u16::MAX as usize;

/// Appends one `varint(len) bytes` entry.
fn push_entry(out: &mut Vec<u8>, member: &[u8]) {
    let mut len = member.len() as u64;
    while len >= 0x80 {
        out.push((len as u8) | 0x80);
        len >>= 7;
    }
    out.push(len as u8);
    out.extend_from_slice(member);
}

impl<'a> Packed<'a> {
    /// The bytes of a listpack of `members` (distinct, at most [`MAX_PACKED`]).
    fn of<'m>(members: impl Iterator<Item = Member<'m>>) -> Vec<u8> {
        let mut data = vec![0; COUNT_BYTES];
        let mut count = 0usize;
        for member in members {
            push_entry(&mut data, &member);
            count += 1;
        }
        Packed::set_len(&mut data, count);
        data
    }

    fn len(self) -> usize {
        match self.0.get(..COUNT_BYTES) {
            Some(&[a, b]) => usize::from(u16::from_le_bytes([a, b])),
            _ => 0,
        }
    }

    /// Rewrites the count of the listpack `bytes`.
    fn set_len(bytes: &mut [u8], count: usize) {
        if let Some(header) = bytes.get_mut(..COUNT_BYTES) {
            header.copy_from_slice(&(count.min(MAX_PACKED) as u16).to_le_bytes());
        }
    }

    /// Every entry's byte range (header included) and member.
    fn entries(self) -> PackedEntries<'a> {
        PackedEntries {
            data: self.0,
            at: COUNT_BYTES,
        }
    }

    fn iter(self) -> impl Iterator<Item = &'a [u8]> + 'a {
        self.entries().map(|(_, member)| member)
    }

    /// The byte range of `member`'s entry.
    fn find(self, member: &[u8]) -> Option<Range<usize>> {
        self.entries()
            .find(|(_, stored)| *stored == member)
            .map(|(range, _)| range)
    }
}

/// The iterator of [`Packed::entries`]. The buffer is only ever written by [`push_entry`];
/// a malformed one (impossible) ends the walk rather than panicking.
struct PackedEntries<'a> {
    data: &'a [u8],
    at: usize,
}

impl<'a> Iterator for PackedEntries<'a> {
    type Item = (Range<usize>, &'a [u8]);

    fn next(&mut self) -> Option<Self::Item> {
        let start = self.at;
        let mut len = 0usize;
        let mut shift = 0u32;
        let mut at = start;
        loop {
            let byte = *self.data.get(at)?;
            at += 1;
            len |= usize::from(byte & 0x7F).checked_shl(shift)?;
            if byte & 0x80 == 0 {
                break;
            }
            shift += 7;
        }
        let end = at.checked_add(len)?;
        let member = self.data.get(at..end)?;
        self.at = end;
        Some((start..end, member))
    }
}

/// Writes a set's payload.
pub fn encode<W: PayloadWrite>(set: &Set, out: &mut W) -> Result<(), W::Error> {
    out.put_count(set.len())?;
    for member in set.iter() {
        out.put_bytes(&member)?;
    }
    Ok(())
}

/// Reads a set's payload; a repeated member is an error. The count only picks the
/// encoding (more than an intset holds starts a hashtable); nothing is reserved from it.
pub fn decode<R: PayloadRead>(src: &mut R) -> Result<Set, R::Error> {
    let count = src.read_count()?;
    let limits = Limits::DEFAULT;
    let mut set = Set::new();
    set.prepare_for(usize::try_from(count).unwrap_or(usize::MAX), &limits);
    for _ in 0..count {
        if !set.add(src.read_bytes()?, &limits) {
            return Err(src.invalid("a set member appears twice"));
        }
    }
    Ok(set)
}

#[cfg(test)]
mod tests {
    use super::super::codec::testing::SliceReader;
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeSet;

    /// The width of an intset's members.
    fn int_width(set: &Set) -> Option<u8> {
        match set.compact_bytes() {
            Some((Kind::Ints, bytes)) => Some(Ints(bytes).width()),
            _ => None,
        }
    }

    fn members(set: &Set) -> BTreeSet<Vec<u8>> {
        set.iter().map(|member| member.to_vec()).collect()
    }

    #[test]
    fn members_are_added_tested_and_removed() {
        let mut set = Set::new();
        assert!(set.insert(&b"a"[..]));
        assert!(!set.insert(&b"a"[..]));
        assert!(set.contains(b"a") && !set.contains(b"b"));
        assert!(set.remove(b"a"));
        assert!(!set.remove(b"a"));
        assert!(set.is_empty());
    }

    #[test]
    fn integers_stay_an_intset_of_the_narrowest_width() {
        let limits = Limits::DEFAULT;
        let mut set = Set::new();
        for value in [5, -3, 300, 0] {
            assert!(set.add(value.to_string().into_bytes(), &limits));
        }
        assert_eq!(set.encoding(), "intset");
        assert_eq!(int_width(&set), Some(2));
        let listed: Vec<Vec<u8>> = set.iter().map(|m| m.to_vec()).collect();
        assert_eq!(listed, [&b"-3"[..], b"0", b"5", b"300"]);
        // Widening, at both ends.
        assert!(set.add(&b"70000"[..], &limits));
        assert!(set.add(&b"-9223372036854775808"[..], &limits));
        assert_eq!(int_width(&set), Some(8));
        assert!(set.contains(b"-9223372036854775808") && set.contains(b"70000"));
        assert!(set.contains(b"-3") && !set.contains(b"-03") && !set.contains(b"4"));
        // A non-canonical integer is a string: the set becomes a listpack.
        assert!(set.add(&b"007"[..], &limits));
        assert_eq!(set.encoding(), "listpack");
        assert!(set.contains(b"007") && set.contains(b"300") && !set.contains(b"7"));
        assert_eq!(set.len(), 7);
    }

    #[test]
    fn small_compact_sets_live_inline_and_move_out_and_back() {
        let limits = Limits::DEFAULT;
        let inline = |set: &Set| matches!(set.repr, Repr::Inline { .. });
        let mut set = Set::new();
        for value in 0..14 {
            assert!(set.add(value.to_string().into_bytes(), &limits));
            assert!(inline(&set), "{value}");
        }
        // 1 + 15 * 2 bytes: no longer inline.
        assert!(set.add(&b"14"[..], &limits));
        assert!(!inline(&set));
        assert!(set.remove(b"3"));
        assert!(inline(&set));
        assert_eq!(set.len(), 14);
        assert!(set.contains(b"14") && !set.contains(b"3"));
        // A listpack likewise: 2 + 9 * 3 bytes inline, one more in a buffer.
        let mut set = Set::for_members(b"a", 1, &limits);
        for i in 0..9 {
            assert!(set.add(format!("m{i}").into_bytes(), &limits));
        }
        assert!(inline(&set));
        assert!(set.add(&b"m9"[..], &limits));
        assert!(!inline(&set));
        assert_eq!(set.encoding(), "listpack");
        assert!(set.remove(b"m0"));
        assert!(inline(&set));
        let mut listed: Vec<Vec<u8>> = set.iter().map(|m| m.to_vec()).collect();
        listed.sort();
        let expected: Vec<Vec<u8>> = (1..10).map(|i| format!("m{i}").into_bytes()).collect();
        assert_eq!(listed, expected);
    }

    #[test]
    fn table_members_are_inline_up_to_14_bytes_and_hash_as_bytes() {
        use std::hash::BuildHasher;
        let state = foldhash::fast::RandomState::default();
        for len in [0, 1, 13, 14, 15, 22, 23, 100, 200] {
            let raw: Vec<u8> = (0..len).map(|i| i as u8).collect();
            let stored = Stored::new(&raw);
            assert_eq!(&*stored, &raw[..]);
            assert_eq!(
                matches!(stored, Stored::Inline { .. }),
                len <= INLINE_MEMBER
            );
            assert_eq!(Stored::from_member(raw.clone()), stored);
            assert_eq!(state.hash_one(&stored), state.hash_one(&raw[..]));
        }
    }

    #[test]
    fn thresholds_pick_the_encoding_and_it_never_goes_back() {
        let limits = Limits {
            set_max_intset_entries: 4,
            set_max_listpack_entries: 3,
            set_max_listpack_value: 5,
            ..Limits::DEFAULT
        };
        let mut set = Set::new();
        for value in 0..4 {
            set.add(value.to_string().into_bytes(), &limits);
        }
        assert_eq!(set.encoding(), "intset");
        // A fifth integer passes the intset limit: hashtable.
        set.add(&b"4"[..], &limits);
        assert_eq!(set.encoding(), "hashtable");
        for value in 0..5 {
            set.remove(value.to_string().as_bytes());
        }
        assert!(set.is_empty());
        assert_eq!(set.encoding(), "hashtable");

        // An intset too large for a listpack goes straight to a hashtable for a string.
        let mut set: Set = Set::new();
        for value in 0..3 {
            set.add(value.to_string().into_bytes(), &limits);
        }
        set.add(&b"x"[..], &limits);
        assert_eq!(set.encoding(), "hashtable");
        // ... and so does one whose integers are too long for the listpack.
        let mut set = Set::new();
        set.add(&b"123456"[..], &limits);
        set.add(&b"x"[..], &limits);
        assert_eq!(set.encoding(), "hashtable");
        // A listpack passes to a hashtable with a fourth member or a long one.
        let mut set = Set::for_members(b"a", 1, &limits);
        assert_eq!(set.encoding(), "listpack");
        for member in ["a", "b", "c"] {
            set.add(member.as_bytes(), &limits);
        }
        assert_eq!(set.encoding(), "listpack");
        assert!(!set.add(&b"c"[..], &limits));
        assert_eq!(set.encoding(), "listpack");
        set.add(&b"d"[..], &limits);
        assert_eq!(set.encoding(), "hashtable");
        let mut set = Set::for_members(b"a", 1, &limits);
        set.add(&b"toolong"[..], &limits);
        assert_eq!(set.encoding(), "hashtable");
        // Hints, as SADD gives them.
        assert_eq!(Set::for_members(b"1", 4, &limits).encoding(), "intset");
        assert_eq!(Set::for_members(b"1", 5, &limits).encoding(), "hashtable");
        assert_eq!(Set::for_members(b"a", 4, &limits).encoding(), "hashtable");
        let mut set = Set::for_members(b"1", 1, &limits);
        set.prepare_for(5, &limits);
        assert_eq!(set.encoding(), "hashtable");
    }

    #[test]
    fn samplers_reach_every_position_in_every_encoding() {
        let limits = Limits::DEFAULT;
        for (count, integers) in [(300, true), (100, false), (5000, false)] {
            let mut set = Set::new();
            for i in 0..count {
                let member = if integers {
                    i.to_string()
                } else {
                    format!("m{i}")
                };
                set.add(member.into_bytes(), &limits);
            }
            let in_order: Vec<Vec<u8>> = set.iter().map(|m| m.to_vec()).collect();
            for picks in [1, count] {
                let sampler = set.sampler(picks);
                for (position, member) in in_order.iter().enumerate() {
                    assert_eq!(
                        sampler.get(position).map(|m| m.to_vec()).as_ref(),
                        Some(member)
                    );
                }
                assert!(sampler.get(count).is_none());
            }
        }
        assert!(Set::new().sampler(1).get(0).is_none());
    }

    #[test]
    fn a_compact_set_is_scanned_whole_and_a_table_by_segments() {
        let limits = Limits::DEFAULT;
        let small: Set = ["1", "2", "x"].into_iter().map(str::as_bytes).collect();
        let mut seen = Vec::new();
        assert_eq!(small.scan(12345, |m| seen.push(m.to_vec())), 0);
        assert_eq!(seen.len(), 3);
        let mut big = Set::new();
        for i in 0..5000 {
            big.add(format!("m{i}").into_bytes(), &limits);
        }
        let mut seen = BTreeSet::new();
        let mut cursor = 0;
        let mut steps = 0;
        loop {
            cursor = big.scan(cursor, |m| {
                seen.insert(m.to_vec());
            });
            steps += 1;
            if cursor == 0 {
                break;
            }
        }
        assert!(steps > 1);
        assert_eq!(seen, members(&big));
    }

    #[test]
    fn equality_ignores_the_encoding() {
        let limits = Limits::DEFAULT;
        let mut ints = Set::new();
        let mut table = Set::for_members(b"1", 1000, &limits);
        for value in [3, 1, 2] {
            ints.add(value.to_string().into_bytes(), &limits);
            table.add(value.to_string().into_bytes(), &limits);
        }
        assert_eq!(ints.encoding(), "intset");
        assert_eq!(table.encoding(), "hashtable");
        assert_eq!(ints, table);
        table.add(&b"4"[..], &limits);
        assert_ne!(ints, table);
    }

    #[test]
    fn a_repeated_member_is_rejected() {
        for member in [&b"m"[..], b"7"] {
            let mut bytes = Vec::new();
            let Ok(()) = bytes.put_count(2);
            let Ok(()) = bytes.put_bytes(member);
            let Ok(()) = bytes.put_bytes(member);
            assert!(decode(&mut SliceReader(&bytes)).is_err());
        }
    }

    #[test]
    fn a_loaded_set_takes_the_encoding_its_members_fit() {
        for (members, encoding) in [
            (
                (0..512).map(|i| i.to_string()).collect::<Vec<_>>(),
                "intset",
            ),
            ((0..513).map(|i| i.to_string()).collect(), "hashtable"),
            ((0..128).map(|i| format!("m{i}")).collect(), "listpack"),
            ((0..129).map(|i| format!("m{i}")).collect(), "hashtable"),
        ] {
            let set: Set = members.iter().map(String::as_bytes).collect();
            let mut bytes = Vec::new();
            let Ok(()) = encode(&set, &mut bytes);
            let decoded = decode(&mut SliceReader(&bytes)).unwrap();
            assert_eq!(decoded.encoding(), encoding);
            assert_eq!(decoded, set);
        }
    }

    /// A member for the property tests: small integers (intset), other integers (widths),
    /// short strings (listpack), non-canonical integers and long strings (hashtable).
    fn member() -> impl Strategy<Value = Vec<u8>> {
        prop_oneof![
            (-40i64..40).prop_map(|v| v.to_string().into_bytes()),
            any::<i64>().prop_map(|v| v.to_string().into_bytes()),
            prop::sample::select(vec!["007", "-0", "+1", "1.0", ""]).prop_map(|s| s.into()),
            "[a-e]{1,3}".prop_map(String::into_bytes),
            prop::collection::vec(any::<u8>(), 60..70),
        ]
    }

    proptest! {
        /// Against a BTreeSet, through every conversion, under small and default limits.
        #[test]
        fn behaves_as_a_set(
            ops in prop::collection::vec((member(), 0u8..4), 0..700),
            small in any::<bool>(),
        ) {
            let limits = if small {
                Limits {
                    set_max_intset_entries: 20,
                    set_max_listpack_entries: 10,
                    set_max_listpack_value: 8,
                    ..Limits::DEFAULT
                }
            } else {
                Limits::DEFAULT
            };
            let mut set = Set::new();
            let mut model = BTreeSet::new();
            let mut ranks = Vec::new();
            for (member, op) in ops {
                if op == 0 {
                    prop_assert_eq!(set.remove(&member), model.remove(&member));
                } else {
                    prop_assert_eq!(set.add(member.as_slice(), &limits), model.insert(member.clone()));
                }
                prop_assert_eq!(set.contains(&member), model.contains(&member));
                prop_assert_eq!(set.len(), model.len());
                let rank = match set.encoding() {
                    "intset" => 0,
                    "listpack" => 1,
                    _ => 2,
                };
                ranks.push(rank);
                // The encoding's limits hold.
                match set.encoding() {
                    "intset" => {
                        prop_assert!(set.len() <= limits.set_max_intset_entries);
                        prop_assert!(model.iter().all(|m| parse_i64(m).is_some()));
                    }
                    "listpack" => {
                        prop_assert!(set.len() <= limits.set_max_listpack_entries);
                        prop_assert!(model.iter().all(|m| m.len() <= limits.set_max_listpack_value));
                    }
                    _ => {}
                }
            }
            // Never back down.
            prop_assert!(ranks.windows(2).all(|pair| pair[0] <= pair[1]));
            prop_assert_eq!(members(&set), model.clone());
            let listed: Vec<Vec<u8>> = set.iter().map(|m| m.to_vec()).collect();
            prop_assert_eq!(listed.len(), model.len());
            // A clone is equal, and the payload round-trips.
            prop_assert_eq!(&set.clone(), &set);
            let mut bytes = Vec::new();
            let Ok(()) = encode(&set, &mut bytes);
            let decoded = decode(&mut SliceReader(&bytes)).unwrap();
            prop_assert_eq!(members(&decoded), model);
        }

        #[test]
        fn payload_round_trips(members_in in prop::collection::btree_set(
            prop::collection::vec(any::<u8>(), 0..12),
            0..600,
        )) {
            let set: Set = members_in.iter().map(Vec::as_slice).collect();
            let mut bytes = Vec::new();
            let Ok(()) = encode(&set, &mut bytes);
            let mut src = SliceReader(&bytes);
            let decoded = decode(&mut src).unwrap();
            prop_assert!(src.0.is_empty());
            prop_assert_eq!(members(&decoded), members_in);
            prop_assert_eq!(decoded, set);
        }
    }
}
