//! How a write effect is written down: a command as a RESP array of bulk strings, exactly
//! what a client would send, so every consumer (the append-only file, a replica) can feed it
//! back to the ordinary dispatcher.

use protocol::IntText;

/// Appends `args` to `out` as a RESP array of bulk strings.
pub fn encode_command(out: &mut Vec<u8>, args: &[&[u8]]) {
    encode_header(out, args.len());
    for arg in args {
        encode_bulk(out, arg);
    }
}

/// Appends the command `name rest...` to `out` (as [`encode_command`], without first
/// collecting the arguments into one slice).
pub fn encode_named<'a>(
    out: &mut Vec<u8>,
    name: &[u8],
    rest: impl ExactSizeIterator<Item = &'a [u8]>,
) {
    let count = 1 + rest.len();
    encode_header(out, count);
    encode_bulk(out, name);
    let mut written = 1;
    for arg in rest {
        encode_bulk(out, arg);
        written += 1;
    }
    debug_assert_eq!(written, count, "the iterator reported a wrong length");
}

/// Appends the header of a RESP array of `count` elements.
fn encode_header(out: &mut Vec<u8>, count: usize) {
    out.push(b'*');
    out.extend_from_slice(number(count).as_bytes());
    out.extend_from_slice(b"\r\n");
}

/// Appends `arg` as a RESP bulk string.
fn encode_bulk(out: &mut Vec<u8>, arg: &[u8]) {
    out.push(b'$');
    out.extend_from_slice(number(arg.len()).as_bytes());
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(arg);
    out.extend_from_slice(b"\r\n");
}

fn number(n: usize) -> IntText {
    IntText::new(i64::try_from(n).unwrap_or(i64::MAX))
}

/// Appends `SELECT db` to `out`.
pub fn encode_select(out: &mut Vec<u8>, db: u32) {
    let digits = IntText::new(i64::from(db));
    encode_command(out, &[b"SELECT", digits.as_bytes()]);
}

#[cfg(all(test, not(kv_loom)))]
mod tests {
    use super::*;

    #[test]
    fn encodes_like_a_client() {
        let mut out = Vec::new();
        encode_command(&mut out, &[b"SET", b"k", b""]);
        assert_eq!(out, b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$0\r\n\r\n");
    }

    #[test]
    fn a_name_and_its_arguments_encode_as_one_command() {
        let keys: [&[u8]; 2] = [b"a", b"bc"];
        let mut named = Vec::new();
        encode_named(&mut named, b"DEL", keys.iter().copied());
        let mut whole = Vec::new();
        encode_command(&mut whole, &[b"DEL", b"a", b"bc"]);
        assert_eq!(named, whole);
        let mut select = Vec::new();
        encode_select(&mut select, 12);
        assert_eq!(select, b"*2\r\n$6\r\nSELECT\r\n$2\r\n12\r\n");
    }
}
