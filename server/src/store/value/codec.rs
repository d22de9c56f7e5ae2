//! The seam between a value type's snapshot payload and the snapshot file around it.
//!
//! Each value type encodes and decodes its own payload (the bytes after the type tag and the
//! key; see `persist::snapshot_format` for the file layout) through these two traits. The
//! snapshot writer and reader implement them, and own the varint encoding, the checksum, the
//! error offsets and the check of lengths against the bytes a file has left, so a type module
//! knows its own layout and nothing about the file's.

/// Where a payload is written: the snapshot writer, or a buffer of encoded records.
pub trait PayloadWrite {
    /// What a failed write reports (`Infallible` for a buffer).
    type Error;

    /// Appends `bytes` as they are.
    fn put_raw(&mut self, bytes: &[u8]) -> Result<(), Self::Error>;

    /// Appends an unsigned varint (the file format's LEB128).
    fn put_varint(&mut self, value: u64) -> Result<(), Self::Error>;

    /// Appends a length-prefixed byte string: `varint(len) bytes`.
    fn put_bytes(&mut self, bytes: &[u8]) -> Result<(), Self::Error> {
        self.put_varint(bytes.len() as u64)?;
        self.put_raw(bytes)
    }

    /// Appends a count of elements (a varint).
    fn put_count(&mut self, count: usize) -> Result<(), Self::Error> {
        self.put_varint(count as u64)
    }

    /// Appends a double as its IEEE-754 bits, 8 bytes little-endian (exact round trip).
    fn put_f64(&mut self, value: f64) -> Result<(), Self::Error> {
        self.put_raw(&value.to_bits().to_le_bytes())
    }
}

/// Where a payload is read from. Implementations bound every allocation a length implies and
/// return an error (never panic) on malformed or truncated input.
pub trait PayloadRead {
    /// What a failed read reports: the reader's error, with the offset of the damage.
    type Error;

    /// Reads an unsigned varint.
    fn read_varint(&mut self) -> Result<u64, Self::Error>;

    /// Reads a length-prefixed byte string, preallocating a bounded amount whatever the
    /// length says.
    fn read_bytes(&mut self) -> Result<Vec<u8>, Self::Error>;

    /// Reads a double written by [`PayloadWrite::put_f64`].
    fn read_f64(&mut self) -> Result<f64, Self::Error>;

    /// Reads an element count. Every element takes at least one byte, so a reader that knows
    /// how many bytes are left rejects a count beyond them before anything is allocated.
    fn read_count(&mut self) -> Result<u64, Self::Error>;

    /// The error for a payload that is well-formed bytes but not a valid value (a duplicate
    /// member, a NaN score), at the reader's current position.
    fn invalid(&self, what: &'static str) -> Self::Error;
}

#[cfg(test)]
pub(crate) mod testing {
    //! A byte-slice reader and a `Vec` writer for the type modules' own tests (the real
    //! reader and writer, with offsets and checksums, are tested in
    //! `persist::snapshot_format`).

    use super::{PayloadRead, PayloadWrite};

    /// Tests encode into a `Vec` (the snapshot format's own buffer sink is private to it);
    /// the varint is the format's unsigned LEB128.
    impl PayloadWrite for Vec<u8> {
        type Error = std::convert::Infallible;

        fn put_raw(&mut self, bytes: &[u8]) -> Result<(), Self::Error> {
            self.extend_from_slice(bytes);
            Ok(())
        }

        fn put_varint(&mut self, mut value: u64) -> Result<(), Self::Error> {
            while value >= 0x80 {
                self.push((value as u8) | 0x80);
                value >>= 7;
            }
            self.push(value as u8);
            Ok(())
        }
    }

    /// Reads a payload from a slice; errors are the message of what went wrong.
    pub struct SliceReader<'a>(pub &'a [u8]);

    impl SliceReader<'_> {
        fn take(&mut self, n: usize) -> Result<&[u8], String> {
            if self.0.len() < n {
                return Err("truncated".into());
            }
            let (head, rest) = self.0.split_at(n);
            self.0 = rest;
            Ok(head)
        }
    }

    impl PayloadRead for SliceReader<'_> {
        type Error = String;

        fn read_varint(&mut self) -> Result<u64, String> {
            let mut value = 0u64;
            for i in 0..10 {
                let byte = self.take(1)?[0];
                if i == 9 && byte > 1 {
                    break;
                }
                value |= u64::from(byte & 0x7F) << (7 * i);
                if byte & 0x80 == 0 {
                    return Ok(value);
                }
            }
            Err("bad varint".into())
        }

        fn read_bytes(&mut self) -> Result<Vec<u8>, String> {
            let len = self.read_varint()?;
            let len = usize::try_from(len).map_err(|_| "too large".to_string())?;
            Ok(self.take(len)?.to_vec())
        }

        fn read_f64(&mut self) -> Result<f64, String> {
            let mut bits = [0u8; 8];
            bits.copy_from_slice(self.take(8)?);
            Ok(f64::from_bits(u64::from_le_bytes(bits)))
        }

        fn read_count(&mut self) -> Result<u64, String> {
            let count = self.read_varint()?;
            if count > self.0.len() as u64 {
                return Err("truncated".into());
            }
            Ok(count)
        }

        fn invalid(&self, what: &'static str) -> String {
            what.to_string()
        }
    }
}
