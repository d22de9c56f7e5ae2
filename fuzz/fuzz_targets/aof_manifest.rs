//! The append-only file's manifest parser on arbitrary text. Checks that it never panics
//! and that a manifest it accepts, written back, parses to the same manifest.
#![no_main]

use kvserver::persist::aof_manifest::Manifest;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(manifest) = Manifest::parse(text) else {
        return;
    };
    // A manifest of comments only lists no file; written back it is empty text, which (as
    // in Redis, whose loader says "Found an empty AOF manifest") does not parse. The server
    // never writes one: there is always an incr file.
    if manifest == Manifest::default() {
        return;
    }
    let written = manifest.to_text();
    let again = Manifest::parse(&written)
        .unwrap_or_else(|err| panic!("{manifest:?} written as {written:?}: {err}"));
    assert_eq!(again, manifest);
});
