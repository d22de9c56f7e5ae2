//! The inline-command splitter (`sdssplitargs` semantics) on arbitrary lines. Checks that
//! it never panics, that the allocating and buffer-reusing versions agree, and that the
//! arguments it returns, written back as a line with every byte escaped, split back to the
//! same arguments.
#![no_main]

use libfuzzer_sys::fuzz_target;
use protocol::inline::{split_args, split_args_into};

/// One argument as a double-quoted string with every byte written as `\xHH`.
fn quote(arg: &[u8], line: &mut Vec<u8>) {
    line.push(b'"');
    for byte in arg {
        line.extend_from_slice(format!("\\x{byte:02x}").as_bytes());
    }
    line.push(b'"');
}

fuzz_target!(|line: &[u8]| {
    let owned = split_args(line);
    let (mut bytes, mut ranges) = (Vec::new(), Vec::new());
    let reused = split_args_into(line, &mut bytes, &mut ranges);
    match (&owned, &reused) {
        (Ok(args), Ok(())) => {
            assert_eq!(args.len(), ranges.len());
            for (arg, range) in args.iter().zip(&ranges) {
                assert_eq!(&arg[..], &bytes[range.clone()]);
            }
        }
        (Err(a), Err(b)) => assert_eq!(a.to_string(), b.to_string()),
        _ => panic!("split_args and split_args_into disagree: {owned:?} / {reused:?}"),
    }

    let Ok(args) = owned else {
        return;
    };
    let mut requoted = Vec::new();
    for (i, arg) in args.iter().enumerate() {
        if i > 0 {
            requoted.push(b' ');
        }
        quote(arg, &mut requoted);
    }
    let again = split_args(&requoted).expect("a line of quoted arguments splits");
    assert_eq!(again, args);
});
