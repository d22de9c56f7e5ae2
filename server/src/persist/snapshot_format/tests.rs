//! The format's tests: layout, round trips of every type, corrupt and truncated input.

use std::io::{self, Read, Write};

use super::writer::GATHER_FOR_TESTS;
use super::*;
use crate::store::value::tag::STRING as TYPE_STRING;
use proptest::prelude::*;

/// Writes `items` with `write_entry` and friends.
fn write_items(items: &[Item], created_ms: u64) -> Vec<u8> {
    let mut writer = SnapshotWriter::new(Vec::new(), created_ms).unwrap();
    for item in items {
        match item {
            Item::SelectDb(db) => writer.select_db(*db).unwrap(),
            Item::Functions(payload) => writer.functions(payload).unwrap(),
            Item::SizeHint {
                keys,
                keys_with_ttl,
            } => writer.size_hint(*keys, *keys_with_ttl).unwrap(),
            Item::Entry {
                key,
                value,
                expires_at_ms,
            } => writer.write_entry(key, value, *expires_at_ms).unwrap(),
        }
    }
    let entries = items
        .iter()
        .filter(|item| matches!(item, Item::Entry { .. }))
        .count() as u64;
    assert_eq!(writer.entries_written(), entries);
    let bytes_before_eof = writer.bytes_written();
    let out = writer.finish().unwrap();
    assert_eq!(out.len() as u64, bytes_before_eof + 5);
    out
}

/// Writes `items` with runs of entries batched through `encode_entry` + `write_encoded`.
fn write_items_encoded(items: &[Item], created_ms: u64) -> Vec<u8> {
    let mut writer = SnapshotWriter::new(Vec::new(), created_ms).unwrap();
    let mut batch = Vec::new();
    for item in items {
        if !matches!(item, Item::Entry { .. }) {
            writer.write_encoded(&batch).unwrap();
            batch.clear();
        }
        match item {
            Item::SelectDb(db) => writer.select_db(*db).unwrap(),
            Item::Functions(payload) => writer.functions(payload).unwrap(),
            Item::SizeHint {
                keys,
                keys_with_ttl,
            } => writer.size_hint(*keys, *keys_with_ttl).unwrap(),
            Item::Entry {
                key,
                value,
                expires_at_ms,
            } => encode_entry(&mut batch, key, value, *expires_at_ms),
        }
    }
    writer.write_encoded(&batch).unwrap();
    let entries = items
        .iter()
        .filter(|item| matches!(item, Item::Entry { .. }))
        .count() as u64;
    assert_eq!(writer.entries_written(), entries);
    writer.finish().unwrap()
}

/// Reads a whole snapshot; the created time and the items.
fn read_all(bytes: &[u8]) -> Result<(u64, Vec<Item>), FormatError> {
    let mut reader = SnapshotReader::new(bytes)?;
    let mut items = Vec::new();
    while let Some(item) = reader.next_item()? {
        items.push(item);
    }
    assert_eq!(reader.offset(), bytes.len() as u64);
    // Fused: stays at the end.
    assert!(reader.next_item()?.is_none());
    Ok((reader.created_ms(), items))
}

/// Like `read_all`, through `with_file_len`, returning only the outcome.
fn read_all_with_len(bytes: &[u8]) -> Result<usize, FormatError> {
    let mut reader = SnapshotReader::with_file_len(bytes, bytes.len() as u64)?;
    let mut count = 0;
    while reader.next_item()?.is_some() {
        count += 1;
    }
    Ok(count)
}

fn entry(key: &[u8], value: &[u8], expires_at_ms: Option<u64>) -> Item {
    Item::Entry {
        key: key.to_vec(),
        value: Value::Str(value.to_vec()),
        expires_at_ms,
    }
}

fn small_items() -> Vec<Item> {
    vec![
        Item::Functions(b"any payload: checked when restored".to_vec()),
        entry(b"before-select", b"db0", None),
        Item::SelectDb(0),
        Item::SizeHint {
            keys: 3,
            keys_with_ttl: 1,
        },
        entry(b"a", b"1", None),
        entry(b"", b"", Some(1_700_000_000_000)),
        entry(b"\x00\xff\r\n", &[0xFF; 200], None),
        Item::SelectDb(300),
        entry(b"k", b"v", Some(u64::MAX)),
    ]
}

fn small_snapshot() -> Vec<u8> {
    write_items(&small_items(), 1_234_567)
}

/// A header followed by `body`, then EOF and a correct checksum.
fn with_body(body: &[u8]) -> Vec<u8> {
    let mut bytes = Vec::new();
    bytes.extend_from_slice(MAGIC);
    bytes.extend_from_slice(&VERSION.to_le_bytes());
    bytes.extend_from_slice(&42u64.to_le_bytes());
    bytes.extend_from_slice(body);
    bytes.push(OP_EOF);
    let crc = crc32fast::hash(&bytes);
    bytes.extend_from_slice(&crc.to_le_bytes());
    bytes
}

fn item_strategy() -> impl Strategy<Value = Item> {
    let key = prop::collection::vec(any::<u8>(), 0..24);
    let value = prop_oneof![
        3 => prop::collection::vec(any::<u8>(), 0..64),
        1 => prop::collection::vec(any::<u8>(), 0..4096),
    ];
    let ttl = prop::option::of(any::<u64>());
    (key, value, ttl).prop_map(|(key, value, expires_at_ms)| Item::Entry {
        key,
        value: Value::Str(value),
        expires_at_ms,
    })
}

fn items_strategy() -> impl Strategy<Value = Vec<Item>> {
    let db = prop_oneof![0u32..16, any::<u32>()];
    let hint = prop::option::of((any::<u64>(), any::<u64>()));
    let database = (db, hint, prop::collection::vec(item_strategy(), 0..12));
    prop::collection::vec(database, 0..5).prop_map(|dbs| {
        let mut items = Vec::new();
        for (db, hint, entries) in dbs {
            items.push(Item::SelectDb(db));
            if let Some((keys, keys_with_ttl)) = hint {
                items.push(Item::SizeHint {
                    keys,
                    keys_with_ttl,
                });
            }
            items.extend(entries);
        }
        items
    })
}

proptest! {
    #[test]
    fn roundtrip_preserves_every_item(items in items_strategy(), created in any::<u64>()) {
        let bytes = write_items(&items, created);
        let (read_created, read_items) = read_all(&bytes).unwrap();
        prop_assert_eq!(read_created, created);
        prop_assert_eq!(&read_items, &items);
        prop_assert_eq!(read_all_with_len(&bytes).unwrap(), items.len());
    }

    #[test]
    fn encoded_batches_write_identical_bytes(items in items_strategy(), created in any::<u64>()) {
        prop_assert_eq!(write_items_encoded(&items, created), write_items(&items, created));
    }

    #[test]
    fn varints_roundtrip(value in any::<u64>()) {
        let varint = Varint::new(value);
        prop_assert_eq!(decode_varint(varint.as_bytes()), Some((value, varint.len)));
        // And through the reader's byte-at-a-time path, at the end of the input.
        let mut body = vec![OP_SIZE_HINT];
        body.extend_from_slice(varint.as_bytes());
        body.extend_from_slice(varint.as_bytes());
        let (_, items) = read_all(&with_body(&body)).unwrap();
        prop_assert_eq!(items, vec![Item::SizeHint { keys: value, keys_with_ttl: value }]);
    }

    #[test]
    fn arbitrary_bodies_never_panic(body in prop::collection::vec(any::<u8>(), 0..64)) {
        let bytes = with_body(&body);
        let _ = read_all(&bytes);
        let _ = read_all_with_len(&bytes);
    }
}

#[test]
fn small_snapshot_roundtrips() {
    let bytes = small_snapshot();
    let (created, items) = read_all(&bytes).unwrap();
    assert_eq!(created, 1_234_567);
    assert_eq!(items, small_items());
}

#[test]
fn empty_snapshot_is_header_eof_and_checksum() {
    let bytes = write_items(&[], 7);
    assert_eq!(bytes.len(), HEADER_LEN + 1 + 4);
    assert_eq!(&bytes[..8], MAGIC);
    let mut expected = Vec::new();
    expected.extend_from_slice(MAGIC);
    expected.extend_from_slice(&VERSION.to_le_bytes());
    expected.extend_from_slice(&7u64.to_le_bytes());
    expected.push(OP_EOF);
    let crc = crc32fast::hash(&expected);
    expected.extend_from_slice(&crc.to_le_bytes());
    assert_eq!(bytes, expected);
    assert_eq!(read_all(&bytes).unwrap(), (7, vec![]));
}

#[test]
fn layout_matches_the_spec() {
    let mut writer = SnapshotWriter::new(Vec::new(), 0x0102).unwrap();
    writer.select_db(300).unwrap();
    writer.size_hint(1, 1).unwrap();
    writer
        .write_entry(b"ab", &Value::Str(b"xyz".to_vec()), Some(5))
        .unwrap();
    let bytes = writer.finish().unwrap();
    let mut expected = b"KVSNAP\r\n".to_vec();
    expected.extend_from_slice(&[1, 0]);
    expected.extend_from_slice(&[0x02, 0x01, 0, 0, 0, 0, 0, 0]);
    expected.extend_from_slice(&[0xFE, 0xAC, 0x02]); // varint(300)
    expected.extend_from_slice(&[0xFD, 1, 1]);
    expected.extend_from_slice(&[0xFC, 5, 0, 0, 0, 0, 0, 0, 0]);
    expected.extend_from_slice(&[0x00, 2, b'a', b'b', 3, b'x', b'y', b'z']);
    expected.push(0xFF);
    let crc = crc32fast::hash(&expected);
    expected.extend_from_slice(&crc.to_le_bytes());
    assert_eq!(bytes, expected);
}

#[test]
fn truncation_at_every_offset_is_an_error() {
    let bytes = small_snapshot();
    for cut in 0..bytes.len() {
        let short = &bytes[..cut];
        let err = read_all(short).unwrap_err();
        assert!(
            matches!(err.kind, FormatErrorKind::Truncated),
            "cut at {cut}: {err}"
        );
        assert_eq!(err.offset, cut as u64, "cut at {cut}: {err}");
        let err = read_all_with_len(short).unwrap_err();
        assert!(
            matches!(err.kind, FormatErrorKind::Truncated),
            "cut at {cut}: {err}"
        );
    }
}

#[test]
fn any_single_byte_change_is_an_error() {
    let bytes = small_snapshot();
    for at in 0..bytes.len() {
        for flip in 1..=255u8 {
            let mut bad = bytes.clone();
            bad[at] ^= flip;
            assert!(read_all(&bad).is_err(), "byte {at} ^ {flip:#x} accepted");
            assert!(
                read_all_with_len(&bad).is_err(),
                "byte {at} ^ {flip:#x} accepted"
            );
        }
    }
}

#[test]
fn a_changed_payload_byte_is_a_checksum_mismatch() {
    let mut bytes = small_snapshot();
    let at = bytes.len() - 6; // the last value, "v"
    bytes[at] ^= 0x20;
    let err = read_all(&bytes).unwrap_err();
    assert!(
        matches!(err.kind, FormatErrorKind::ChecksumMismatch { .. }),
        "{err}"
    );
    assert_eq!(err.offset, bytes.len() as u64 - 4);
    assert!(err.to_string().starts_with(&format!(
        "checksum mismatch at byte {} (stored 0x",
        bytes.len() - 4
    )));
}

#[test]
fn trailing_data_is_an_error() {
    let mut bytes = small_snapshot();
    let len = bytes.len() as u64;
    bytes.push(0);
    let err = read_all(&bytes).unwrap_err();
    assert!(matches!(err.kind, FormatErrorKind::TrailingData), "{err}");
    assert_eq!(err.offset, len);
    let err = read_all_with_len(&bytes).unwrap_err();
    assert!(matches!(err.kind, FormatErrorKind::TrailingData), "{err}");
}

#[test]
fn bad_magic_is_an_error() {
    let mut bytes = small_snapshot();
    bytes[0] = b'R';
    let err = read_all(&bytes).unwrap_err();
    assert!(matches!(err.kind, FormatErrorKind::BadMagic), "{err}");
    assert_eq!(err.offset, 0);
    // A short file that is not a prefix of the magic is bad magic, not truncation.
    let err = read_all(b"*1\r\n").unwrap_err();
    assert!(matches!(err.kind, FormatErrorKind::BadMagic), "{err}");
    let err = read_all(b"KVSN").unwrap_err();
    assert!(matches!(err.kind, FormatErrorKind::Truncated), "{err}");
}

#[test]
fn unsupported_version_is_an_error() {
    let mut bytes = small_snapshot();
    bytes[8..10].copy_from_slice(&2u16.to_le_bytes());
    let err = read_all(&bytes).unwrap_err();
    assert!(
        matches!(err.kind, FormatErrorKind::UnsupportedVersion(2)),
        "{err}"
    );
    assert_eq!(err.offset, 8);
    assert_eq!(
        err.to_string(),
        "unsupported snapshot format version 2 at byte 8 (this build reads version 1)"
    );
}

#[test]
fn huge_lengths_fail_fast_without_allocating() {
    // A key length of 2^40 (1 TiB) in a tiny file, with a valid checksum.
    let mut body = vec![OP_SELECT_DB, 0, TYPE_STRING];
    body.extend_from_slice(Varint::new(1 << 40).as_bytes());
    body.extend_from_slice(b"abc");
    let bytes = with_body(&body);
    let err = read_all(&bytes).unwrap_err();
    assert!(matches!(err.kind, FormatErrorKind::Truncated), "{err}");
    assert_eq!(err.offset, bytes.len() as u64);
    let err = read_all_with_len(&bytes).unwrap_err();
    assert!(matches!(err.kind, FormatErrorKind::Truncated), "{err}");

    // The same for a value length.
    let mut body = vec![TYPE_STRING, 1, b'k'];
    body.extend_from_slice(Varint::new(1 << 40).as_bytes());
    let err = read_all(&with_body(&body)).unwrap_err();
    assert!(matches!(err.kind, FormatErrorKind::Truncated), "{err}");

    // Beyond what any Vec can hold: rejected before reading on.
    let mut body = vec![TYPE_STRING];
    body.extend_from_slice(Varint::new(u64::MAX).as_bytes());
    let err = read_all(&with_body(&body)).unwrap_err();
    assert!(
        matches!(err.kind, FormatErrorKind::TooLarge(u64::MAX)),
        "{err}"
    );
    assert_eq!(err.offset, HEADER_LEN as u64 + 1);
}

#[test]
fn malformed_varints_are_errors() {
    // Eleven bytes.
    let mut body = vec![OP_SELECT_DB];
    body.extend_from_slice(&[0x80; 10]);
    body.push(0);
    let err = read_all(&with_body(&body)).unwrap_err();
    assert!(matches!(err.kind, FormatErrorKind::BadVarint), "{err}");
    assert_eq!(err.offset, HEADER_LEN as u64 + 1);
    // Ten bytes overflowing 64 bits.
    let mut body = vec![OP_SIZE_HINT];
    body.extend_from_slice(&[0xFF; 9]);
    body.push(0x02);
    body.push(0);
    let err = read_all(&with_body(&body)).unwrap_err();
    assert!(matches!(err.kind, FormatErrorKind::BadVarint), "{err}");
    assert_eq!(decode_varint(&body[1..]), None);
    // The same through the byte-at-a-time path: the varint ends the input.
    let mut bytes = with_body(&[]);
    bytes.truncate(HEADER_LEN);
    bytes.push(OP_SIZE_HINT);
    bytes.extend_from_slice(&[0xFF; 9]);
    bytes.push(0x02);
    let err = read_all(&bytes).unwrap_err();
    assert!(matches!(err.kind, FormatErrorKind::BadVarint), "{err}");
}

#[test]
fn database_index_above_u32_is_an_error() {
    let mut body = vec![OP_SELECT_DB];
    body.extend_from_slice(Varint::new(1 << 32).as_bytes());
    let err = read_all(&with_body(&body)).unwrap_err();
    assert!(
        matches!(err.kind, FormatErrorKind::DbOutOfRange(0x1_0000_0000)),
        "{err}"
    );
    assert_eq!(err.offset, HEADER_LEN as u64 + 1);
}

#[test]
fn expire_must_prefix_a_value() {
    // 0x05..=0x7F: type tags reserved for value types to come.
    for next in [OP_SELECT_DB, OP_SIZE_HINT, OP_EXPIRE_MS, OP_EOF, 0x05, 0x7F] {
        let mut body = vec![OP_EXPIRE_MS];
        body.extend_from_slice(&9u64.to_le_bytes());
        body.extend_from_slice(&[next, 0, 0, 0, 0, 0, 0, 0, 0]);
        let err = read_all(&with_body(&body)).unwrap_err();
        assert!(
            matches!(err.kind, FormatErrorKind::BadOpcode(op) if op == next),
            "{next:#x}: {err}"
        );
        assert_eq!(err.offset, HEADER_LEN as u64 + 9);
    }
}

#[test]
fn unknown_opcodes_are_errors() {
    for op in [0x05, 0x7F, 0x80, 0xFA] {
        let err = read_all(&with_body(&[op, 0, 0])).unwrap_err();
        assert!(
            matches!(err.kind, FormatErrorKind::BadOpcode(got) if got == op),
            "{err}"
        );
        assert_eq!(
            err.to_string(),
            format!("unexpected opcode 0x{op:02X} at byte {HEADER_LEN}")
        );
    }
}

#[test]
fn the_reader_stays_failed_after_an_error() {
    let mut bytes = small_snapshot();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    let mut reader = SnapshotReader::new(&bytes[..]).unwrap();
    let err = loop {
        match reader.next_item() {
            Ok(Some(_)) => {}
            Ok(None) => panic!("corrupt snapshot accepted"),
            Err(err) => break err,
        }
    };
    assert!(matches!(err.kind, FormatErrorKind::ChecksumMismatch { .. }));
    assert!(reader.next_item().is_err());
    assert!(reader.next_item().is_err());
}

#[test]
fn write_encoded_rejects_what_encode_entry_did_not_produce() {
    let mut writer = SnapshotWriter::new(Vec::new(), 0).unwrap();
    let mut batch = Vec::new();
    encode_entry(&mut batch, b"key", &Value::Str(b"value".to_vec()), Some(1));
    encode_entry(&mut batch, b"k2", &Value::Str(Vec::new()), None);
    for bad in [
        &batch[..batch.len() - 1],
        &[OP_SELECT_DB, 0][..],
        &[OP_EXPIRE_MS, 0, 0][..],
        &[TYPE_STRING, 5, b'a'][..],
    ] {
        let err = writer.write_encoded(bad).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
    }
    let before = writer.bytes_written();
    writer.write_encoded(&batch).unwrap();
    writer.write_encoded(&[]).unwrap();
    assert_eq!(writer.entries_written(), 2);
    assert_eq!(writer.bytes_written(), before + batch.len() as u64);
    let bytes = writer.finish().unwrap();
    let (_, items) = read_all(&bytes).unwrap();
    assert_eq!(
        items,
        vec![entry(b"key", b"value", Some(1)), entry(b"k2", b"", None)]
    );
}

#[test]
fn a_failed_write_poisons_the_writer() {
    /// Accepts `left` bytes, then fails.
    struct Failing {
        left: usize,
    }
    impl Write for Failing {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            if self.left == 0 {
                return Err(io::Error::other("disk full"));
            }
            let n = buf.len().min(self.left);
            self.left -= n;
            Ok(n)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }
    assert!(SnapshotWriter::new(Failing { left: 5 }, 0).is_err());
    let mut writer = SnapshotWriter::new(
        Failing {
            left: HEADER_LEN + 3,
        },
        0,
    )
    .unwrap();
    let value = Value::Str(vec![1; 10]);
    assert!(writer.write_entry(b"key", &value, None).is_err());
    assert!(writer.select_db(1).is_err());
    assert!(writer.finish().is_err());
}

#[test]
fn large_values_cross_buffer_boundaries() {
    let big = (0..3 * READ_BUF + 17)
        .map(|i| (i % 251) as u8)
        .collect::<Vec<_>>();
    let items = vec![
        Item::SelectDb(1),
        entry(&big[..READ_BUF + 3], &big, Some(3)),
        entry(b"after", &big[..READ_BUF - 5], None),
    ];
    let bytes = write_items(&items, 0);
    assert_eq!(read_all(&bytes).unwrap().1, items);
    assert_eq!(read_all_with_len(&bytes).unwrap(), items.len());
    // Read one byte per call, the worst case for the buffering.
    struct Trickle<'a>(&'a [u8]);
    impl Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            match (self.0.split_first(), buf.first_mut()) {
                (Some((&byte, rest)), Some(slot)) => {
                    *slot = byte;
                    self.0 = rest;
                    Ok(1)
                }
                _ => Ok(0),
            }
        }
    }
    let mut reader = SnapshotReader::new(Trickle(&bytes)).unwrap();
    let mut read = Vec::new();
    while let Some(item) = reader.next_item().unwrap() {
        read.push(item);
    }
    assert_eq!(read, items);
}

#[test]
fn verify_file_checks_a_file_written_atomically() {
    let dir = tempfile::tempdir().unwrap();
    let items = small_items();
    let mut entries = 0;
    let len = crate::persist::fsutil::write_atomically(
        &crate::persist::disk::OsDisk,
        dir.path(),
        "dump.kvs",
        |w| {
            let mut writer = SnapshotWriter::new(w, 99)?;
            for item in &items {
                match item {
                    Item::SelectDb(db) => writer.select_db(*db)?,
                    Item::Functions(payload) => writer.functions(payload)?,
                    Item::SizeHint {
                        keys,
                        keys_with_ttl,
                    } => writer.size_hint(*keys, *keys_with_ttl)?,
                    Item::Entry {
                        key,
                        value,
                        expires_at_ms,
                    } => writer.write_entry(key, value, *expires_at_ms)?,
                }
            }
            entries = writer.entries_written();
            writer.finish()?;
            Ok(())
        },
    )
    .unwrap();
    let path = dir.path().join("dump.kvs");
    let summary = verify_file(&path).unwrap();
    assert_eq!(
        summary,
        VerifySummary {
            entries,
            bytes: len,
            created_ms: 99,
        }
    );
    assert_eq!(entries, 5);

    // A truncated copy fails, with the offset where the data ends.
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() - 3]).unwrap();
    let err = verify_file(&path).unwrap_err();
    assert!(matches!(err.kind, FormatErrorKind::Truncated), "{err}");
    assert_eq!(err.offset, len - 3);

    let err = verify_file(&dir.path().join("missing")).unwrap_err();
    assert!(matches!(err.kind, FormatErrorKind::Io(_)), "{err}");
}

/// `cargo test --release -p kvserver --lib snapshot_format -- --ignored --nocapture`
#[test]
#[ignore = "timing; run in release"]
fn reads_a_million_entries_quickly() {
    let mut writer = SnapshotWriter::new(Vec::new(), 0).unwrap();
    writer.select_db(0).unwrap();
    writer.size_hint(1_000_000, 0).unwrap();
    for i in 0..1_000_000u64 {
        let key = format!("key:{i:012}");
        let value = Value::Str(format!("value-{i:024}").into_bytes());
        let ttl = (i % 4 == 0).then_some(1_700_000_000_000 + i);
        writer.write_entry(key.as_bytes(), &value, ttl).unwrap();
    }
    let bytes = writer.finish().unwrap();
    let start = std::time::Instant::now();
    let mut reader = SnapshotReader::new(&bytes[..]).unwrap();
    let mut entries = 0u64;
    while let Some(item) = reader.next_item().unwrap() {
        if let Item::Entry { .. } = item {
            entries += 1;
        }
    }
    let elapsed = start.elapsed();
    println!(
        "read {entries} entries ({} bytes) in {elapsed:?}",
        bytes.len()
    );
    assert_eq!(entries, 1_000_000);
}

// ---------------------------------------------------------------------------------------------
// Lists, hashes, sets and sorted sets.

use crate::store::value::{Hash, List, Score, Set, ZSet};

fn bytes_strategy(max: usize) -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(any::<u8>(), 0..max)
}

/// A value of any type; collections of up to a few hundred elements (several chunks or
/// segments at the top of the range).
fn value_strategy() -> impl Strategy<Value = Value> {
    let elements = || prop::collection::vec(bytes_strategy(10), 0..300);
    prop_oneof![
        bytes_strategy(64).prop_map(Value::Str),
        elements().prop_map(|e| Value::list(e.into_iter().collect::<List>())),
        prop::collection::vec((bytes_strategy(10), bytes_strategy(10)), 0..300)
            .prop_map(|pairs| Value::hash(pairs.into_iter().collect::<Hash>())),
        elements().prop_map(|e| Value::set(e.into_iter().collect::<Set>())),
        prop::collection::vec((bytes_strategy(10), any::<f64>()), 0..300).prop_map(|entries| {
            let zset: ZSet = entries
                .into_iter()
                .filter_map(|(member, score)| Some((member, Score::new(score)?)))
                .collect();
            Value::zset(zset)
        }),
    ]
}

fn items_of_every_type() -> impl Strategy<Value = Vec<Item>> {
    let entry = (
        bytes_strategy(16),
        value_strategy(),
        prop::option::of(any::<u64>()),
    );
    let entries = prop::collection::vec(entry, 0..8);
    (0u32..4, entries).prop_map(|(db, entries)| {
        let mut items = vec![Item::SelectDb(db)];
        items.extend(
            entries
                .into_iter()
                .map(|(key, value, expires_at_ms)| Item::Entry {
                    key,
                    value,
                    expires_at_ms,
                }),
        );
        items
    })
}

/// `bytes` with its checksum recomputed, so that damage is found by the decoders rather than
/// by the checksum.
fn with_fixed_checksum(mut bytes: Vec<u8>) -> Vec<u8> {
    let end = bytes.len() - 4;
    let crc = crc32fast::hash(&bytes[..end]);
    bytes[end..].copy_from_slice(&crc.to_le_bytes());
    bytes
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn every_type_round_trips(items in items_of_every_type(), created in any::<u64>()) {
        let bytes = write_items(&items, created);
        let (read_created, read_items) = read_all(&bytes).unwrap();
        prop_assert_eq!(read_created, created);
        prop_assert_eq!(&read_items, &items);
        prop_assert_eq!(read_all_with_len(&bytes).unwrap(), items.len());
        prop_assert_eq!(write_items_encoded(&items, created), bytes);
    }

    /// A file cut anywhere is truncated, whatever it holds.
    #[test]
    fn every_type_truncated_anywhere_is_an_error(items in items_of_every_type(), cut in any::<prop::sample::Index>()) {
        let bytes = write_items(&items, 0);
        let cut = cut.index(bytes.len());
        let err = read_all(&bytes[..cut]).unwrap_err();
        prop_assert!(matches!(err.kind, FormatErrorKind::Truncated), "cut at {}: {}", cut, err);
        prop_assert!(read_all_with_len(&bytes[..cut]).is_err());
    }

    /// Damaged payloads behind a valid checksum: the decoders return an error or a value,
    /// and never panic or allocate what a damaged count asks for.
    #[test]
    fn damaged_payloads_never_panic(
        items in items_of_every_type(),
        damage in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
    ) {
        let mut bytes = write_items(&items, 0);
        let body = HEADER_LEN..bytes.len() - 5;
        if !body.is_empty() {
            for (at, byte) in damage {
                let at = body.start + at.index(body.len());
                bytes[at] = byte;
            }
        }
        let bytes = with_fixed_checksum(bytes);
        let _ = read_all(&bytes);
        let _ = read_all_with_len(&bytes);
    }

    /// Random payloads after each collection tag, behind a valid checksum.
    #[test]
    fn arbitrary_collection_payloads_never_panic(
        tag in 1u8..=4,
        payload in prop::collection::vec(any::<u8>(), 0..96),
    ) {
        let mut body = vec![tag, 1, b'k'];
        body.extend_from_slice(&payload);
        let bytes = with_body(&body);
        let _ = read_all(&bytes);
        let _ = read_all_with_len(&bytes);
    }
}

/// The bytes of each collection type's record, as the module documentation lays them out.
#[test]
fn collection_layouts_match_the_spec() {
    let zset: ZSet = [(b"m", Score::new(1.5).unwrap())].into_iter().collect();
    let cases: [(Value, &[u8]); 4] = [
        (
            Value::list([&b"a"[..], b"bc"].into_iter().collect()),
            &[0x01, 1, b'k', 2, 1, b'a', 2, b'b', b'c'],
        ),
        (
            Value::hash([(&b"f"[..], &b"v"[..])].into_iter().collect()),
            &[0x02, 1, b'k', 1, 1, b'f', 1, b'v'],
        ),
        (
            Value::set([&b"m"[..]].into_iter().collect()),
            &[0x03, 1, b'k', 1, 1, b'm'],
        ),
        (
            Value::zset(zset),
            &[0x04, 1, b'k', 1, 1, b'm', 0, 0, 0, 0, 0, 0, 0xF8, 0x3F],
        ),
    ];
    for (value, record) in cases {
        let mut writer = SnapshotWriter::new(Vec::new(), 0).unwrap();
        writer.write_entry(b"k", &value, None).unwrap();
        let bytes = writer.finish().unwrap();
        assert_eq!(&bytes[HEADER_LEN..bytes.len() - 5], record, "{value:?}");
        let (_, items) = read_all(&bytes).unwrap();
        assert_eq!(
            items,
            [Item::Entry {
                key: b"k".to_vec(),
                value,
                expires_at_ms: None
            }]
        );
    }
}

/// A version 1 file as builds before collections wrote it (strings only, bytes laid out by
/// hand) reads exactly as it always did.
#[test]
fn a_file_from_before_collections_reads_unchanged() {
    let mut body = vec![OP_SELECT_DB, 2, OP_SIZE_HINT, 2, 1];
    body.extend_from_slice(&[OP_EXPIRE_MS, 5, 0, 0, 0, 0, 0, 0, 0]);
    body.extend_from_slice(&[0x00, 2, b'a', b'b', 3, b'x', b'y', b'z']);
    body.extend_from_slice(&[0x00, 0, 0]);
    let (created, items) = read_all(&with_body(&body)).unwrap();
    assert_eq!(created, 42);
    assert_eq!(
        items,
        [
            Item::SelectDb(2),
            Item::SizeHint {
                keys: 2,
                keys_with_ttl: 1
            },
            entry(b"ab", b"xyz", Some(5)),
            entry(b"", b"", None),
        ]
    );
}

#[test]
fn collection_counts_are_not_trusted() {
    for tag in 1u8..=4 {
        // 2^40 elements announced, none present.
        let mut body = vec![tag, 1, b'k'];
        body.extend_from_slice(Varint::new(1 << 40).as_bytes());
        let bytes = with_body(&body);
        let err = read_all(&bytes).unwrap_err();
        assert!(
            matches!(err.kind, FormatErrorKind::Truncated),
            "{tag}: {err}"
        );
        let err = read_all_with_len(&bytes).unwrap_err();
        assert!(
            matches!(err.kind, FormatErrorKind::Truncated),
            "{tag}: {err}"
        );
        // Beyond anything memory could hold.
        let mut body = vec![tag, 1, b'k'];
        body.extend_from_slice(Varint::new(u64::MAX).as_bytes());
        let err = read_all(&with_body(&body)).unwrap_err();
        assert!(
            matches!(err.kind, FormatErrorKind::TooLarge(u64::MAX)),
            "{tag}: {err}"
        );
        assert_eq!(err.offset, HEADER_LEN as u64 + 3);
    }
}

#[test]
fn repeated_members_and_nan_scores_are_errors() {
    let cases: [(&[u8], &str); 4] = [
        (
            &[0x02, 1, b'k', 2, 1, b'f', 0, 1, b'f', 0],
            "a hash field appears twice",
        ),
        (
            &[0x03, 1, b'k', 2, 1, b'm', 1, b'm'],
            "a set member appears twice",
        ),
        (
            &[0x04, 1, b'k', 1, 1, b'm', 0, 0, 0, 0, 0, 0, 0xF8, 0x7F],
            "a NaN score",
        ),
        (
            &[
                0x04, 1, b'k', 2, 1, b'm', 0, 0, 0, 0, 0, 0, 0, 0, 1, b'm', 0, 0, 0, 0, 0, 0, 0, 0,
            ],
            "a sorted set member appears twice",
        ),
    ];
    for (body, what) in cases {
        let bytes = with_body(body);
        let err = read_all(&bytes).unwrap_err();
        assert!(
            matches!(err.kind, FormatErrorKind::BadValue(got) if got == what),
            "{err}"
        );
        assert_eq!(err.offset, (HEADER_LEN + body.len()) as u64);
        assert!(
            err.to_string().starts_with("invalid value at byte"),
            "{err}"
        );
    }
}

/// Writes `items` with `write_captured` (entries as a snapshot captures them), one call per
/// run of entries.
fn write_items_captured(items: &[Item], created_ms: u64) -> Vec<u8> {
    use crate::store::CapturedEntry;
    let mut writer = SnapshotWriter::new(Vec::new(), created_ms).unwrap();
    let mut run = Vec::new();
    let flush = |writer: &mut SnapshotWriter<Vec<u8>>, run: &mut Vec<&Item>| {
        let entries = run.drain(..).filter_map(|item| match item {
            Item::Entry {
                key,
                value,
                expires_at_ms,
            } => Some(CapturedEntry {
                key,
                value: value.as_value_ref(),
                expires_at: *expires_at_ms,
            }),
            _ => None,
        });
        writer.write_captured(entries).unwrap();
    };
    for item in items {
        match item {
            Item::Entry { .. } => run.push(item),
            Item::SelectDb(db) => {
                flush(&mut writer, &mut run);
                writer.select_db(*db).unwrap();
            }
            Item::SizeHint {
                keys,
                keys_with_ttl,
            } => {
                flush(&mut writer, &mut run);
                writer.size_hint(*keys, *keys_with_ttl).unwrap();
            }
            Item::Functions(payload) => {
                flush(&mut writer, &mut run);
                writer.functions(payload).unwrap();
            }
        }
    }
    flush(&mut writer, &mut run);
    let entries = items
        .iter()
        .filter(|item| matches!(item, Item::Entry { .. }))
        .count() as u64;
    assert_eq!(writer.entries_written(), entries);
    writer.finish().unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn captured_entries_write_identical_bytes(items in items_of_every_type(), created in any::<u64>()) {
        prop_assert_eq!(write_items_captured(&items, created), write_items(&items, created));
    }
}

/// Gathered strings are written a buffer at a time, and a string larger than the buffer, or
/// a collection, in between, lands in its place.
#[test]
fn captured_entries_cross_the_gather_buffer() {
    let big = vec![b'x'; 3 * GATHER_FOR_TESTS];
    let mut items = vec![Item::SelectDb(0)];
    for i in 0..5000u32 {
        let key = format!("key:{i}").into_bytes();
        let value = match i % 1000 {
            7 => Value::Str(big.clone()),
            8 => Value::list((0..300).map(|e| format!("{e}").into_bytes()).collect()),
            _ => Value::Str(format!("value:{i}").into_bytes()),
        };
        items.push(Item::Entry {
            key,
            value,
            expires_at_ms: (i % 3 == 0).then_some(u64::from(i)),
        });
    }
    let bytes = write_items_captured(&items, 9);
    assert_eq!(bytes, write_items(&items, 9));
    assert_eq!(read_all(&bytes).unwrap().1, items);
}
