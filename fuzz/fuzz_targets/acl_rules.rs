//! The ACL rule parser (`ACL SETUSER` rules, the ACL file) on arbitrary input: each line is
//! a rule list, split and joined into selectors as SETUSER does. Checks that it never
//! panics, that a rule refused leaves the user as it was (SETUSER applies rules to a copy),
//! and that ACL LIST's description of the resulting user parses back to a user with the same
//! description and the same permissions (what ACL SAVE / LOAD rely on).
#![no_main]

use kvserver::acl::{merge_selector_args, User};
use libfuzzer_sys::fuzz_target;

fn rebuild(description: &[u8]) -> User {
    let words: Vec<&[u8]> = description.split(|&b| b == b' ').collect();
    let rules = merge_selector_args(words.into_iter()).expect("descriptions are balanced");
    let mut user = User::new(false);
    for rule in &rules {
        if let Err(reason) = user.apply(rule, false) {
            panic!(
                "{:?}: rule {:?} of the description refused: {reason}",
                String::from_utf8_lossy(description),
                String::from_utf8_lossy(rule)
            );
        }
    }
    user
}

fuzz_target!(|data: &[u8]| {
    let mut user = User::new(false);
    for line in data.split(|&b| b == b'\n') {
        let words = line.split(|&b| b == b' ').filter(|w| !w.is_empty());
        let Ok(rules) = merge_selector_args(words) else {
            continue;
        };
        for rule in &rules {
            let before = user.clone();
            let mut copy = user.clone();
            match copy.apply(rule, false) {
                Ok(()) => user = copy,
                Err(_) => assert_eq!(user, before),
            }
        }
    }
    let description = user.describe();
    let rebuilt = rebuild(&description);
    assert_eq!(rebuilt.describe(), description);
    assert_eq!(rebuilt.password_hexes(), user.password_hexes());
    for id in 0..protocol::catalogue::row_count() {
        for first in [None, Some(&b"0"[..]), Some(&b"x"[..])] {
            assert_eq!(
                rebuilt.root.allows_command(id, first),
                user.root.allows_command(id, first)
            );
        }
    }
    for key in [&b"k"[..], b"a:1", b""] {
        let flags = protocol::catalogue::KeyFlags::RW | protocol::catalogue::KeyFlags::ACCESS;
        assert_eq!(rebuilt.root.allows_key(key, flags), user.root.allows_key(key, flags));
    }
});
