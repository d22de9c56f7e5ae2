//! FUNCTION RESTORE's payload decoder (the only RESTORE payload kvserver has: there is no
//! key-level DUMP/RESTORE yet). The input is tried as it is and with its correct CRC-32
//! appended, so that mutations reach the parser behind the checksum. Checks that it never
//! panics and that an accepted payload, encoded again, is the same bytes.
#![no_main]

use kvserver::script::functions::decode_dump;
use libfuzzer_sys::fuzz_target;

/// The payload of `codes` in FUNCTION DUMP's format.
fn encode(codes: &[bytes::Bytes]) -> Vec<u8> {
    let mut out = b"KVFN\x01".to_vec();
    out.extend_from_slice(&(codes.len() as u32).to_le_bytes());
    for code in codes {
        out.extend_from_slice(&(code.len() as u32).to_le_bytes());
        out.extend_from_slice(code);
    }
    let checksum = crc32fast::hash(&out);
    out.extend_from_slice(&checksum.to_le_bytes());
    out
}

fuzz_target!(|data: &[u8]| {
    if let Ok(codes) = decode_dump(data) {
        assert_eq!(encode(&codes), data);
    }
    let mut sealed = data.to_vec();
    sealed.extend_from_slice(&crc32fast::hash(data).to_le_bytes());
    if let Ok(codes) = decode_dump(&sealed) {
        assert_eq!(encode(&codes), sealed);
    }
});
