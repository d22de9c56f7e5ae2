//! One ACL user: whether it is enabled, its passwords, and its selectors. [`User::apply`]
//! runs one `ACL SETUSER` rule; it is pure (no server state), so the rule parser can be
//! fuzzed on its own.

use super::selector::{RuleError, Selector, SYNTAX};
use crate::auth::{hash, PasswordHash};

const BAD_HASH: RuleError = "The password hash must be exactly 64 characters and contain only \
     lowercase hexadecimal characters";
const NO_SUCH_PASSWORD: RuleError =
    "The password you are trying to remove from the user does not exist";

/// A user's rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// Users can log in only while on.
    pub enabled: bool,
    /// Any password is accepted.
    pub nopass: bool,
    /// `sanitize-payload` / `skip-sanitize-payload` as set (kvstore has no RESTORE yet to
    /// sanitize, but the flags are kept and shown as Redis shows them).
    pub sanitize: Option<bool>,
    passwords: Vec<PasswordHash>,
    /// The root selector.
    pub root: Selector,
    /// Further selectors: a command runs if any selector allows all of it.
    pub selectors: Vec<Selector>,
}

impl User {
    /// A new user as `ACL SETUSER name` creates it: off, no passwords, no permissions.
    /// `all_channels` is `acl-pubsub-default` (Redis 7: `resetchannels`).
    pub fn new(all_channels: bool) -> User {
        User {
            enabled: false,
            nopass: false,
            sanitize: None,
            passwords: Vec::new(),
            root: Selector::empty(all_channels),
            selectors: Vec::new(),
        }
    }

    /// The default user of a fresh server: on, no password, everything allowed.
    pub fn default_user() -> User {
        let mut user = User::new(true);
        for rule in ["on", "nopass", "~*", "&*", "+@all"] {
            let _ = user.apply(rule.as_bytes(), true);
        }
        user
    }

    /// Applies one rule (`on`, `>pw`, `~keys`, `+@read`, `(~x +get)`...). On error the user
    /// may be half-changed: callers apply rules to a copy.
    pub fn apply(&mut self, rule: &[u8], all_channels: bool) -> Result<(), RuleError> {
        if rule.first() == Some(&b'(') {
            let inner = rule
                .strip_prefix(b"(")
                .and_then(|r| r.strip_suffix(b")"))
                .ok_or(SYNTAX)?;
            let mut selector = Selector::empty(all_channels);
            for part in inner
                .split(|b| b.is_ascii_whitespace())
                .filter(|p| !p.is_empty())
            {
                // A rule ending in `)` inside a selector (a pattern `~a)`) could not be told
                // from the selector's end when ACL LIST's description is read back (Redis
                // accepts it and then cannot load its own ACL file).
                if part.ends_with(b")") || !selector.apply(part)? {
                    return Err(SYNTAX);
                }
            }
            self.selectors.push(selector);
            return Ok(());
        }
        if self.root.apply(rule)? {
            return Ok(());
        }
        match rule.to_ascii_lowercase().as_slice() {
            b"on" => self.enabled = true,
            b"off" => self.enabled = false,
            b"nopass" => {
                self.nopass = true;
                self.passwords.clear();
            }
            b"resetpass" => {
                self.nopass = false;
                self.passwords.clear();
            }
            b"sanitize-payload" => self.sanitize = Some(true),
            b"skip-sanitize-payload" => self.sanitize = Some(false),
            b"clearselectors" => self.selectors.clear(),
            b"reset" => {
                *self = User::new(all_channels);
                self.sanitize = Some(true);
            }
            _ => match rule.first() {
                Some(b'>') => self.add_password(hash(&rule[1..])),
                Some(b'<') => self.remove_password(&hash(&rule[1..]))?,
                Some(b'#') => self.add_password(parse_hash(&rule[1..])?),
                Some(b'!') => self.remove_password(&parse_hash(&rule[1..])?)?,
                _ => return Err(SYNTAX),
            },
        }
        Ok(())
    }

    fn add_password(&mut self, digest: PasswordHash) {
        self.nopass = false;
        if !self.passwords.contains(&digest) {
            self.passwords.push(digest);
        }
    }

    fn remove_password(&mut self, digest: &PasswordHash) -> Result<(), RuleError> {
        let position = self
            .passwords
            .iter()
            .position(|known| known == digest)
            .ok_or(NO_SUCH_PASSWORD)?;
        self.passwords.remove(position);
        self.nopass = false;
        Ok(())
    }

    /// Whether `password` logs this user in (checked in constant time against every digest).
    pub fn password_matches(&self, password: &[u8]) -> bool {
        if self.nopass {
            return true;
        }
        let given = hash(password);
        self.passwords.iter().fold(false, |found, stored| {
            found | crate::auth::constant_time_eq(stored, &given)
        })
    }

    /// Whether a connection logged in as this user must authenticate first (it is the
    /// default user of new connections and has a password or is off).
    pub fn requires_auth(&self) -> bool {
        !self.enabled || !self.nopass
    }

    /// The flags as ACL GETUSER lists them.
    pub fn flags(&self) -> Vec<&'static str> {
        let mut flags = vec![if self.enabled { "on" } else { "off" }];
        if self.nopass {
            flags.push("nopass");
        }
        match self.sanitize {
            Some(false) => flags.push("skip-sanitize-payload"),
            Some(true) => flags.push("sanitize-payload"),
            None => {}
        }
        flags
    }

    /// The password digests in hex.
    pub fn password_hexes(&self) -> Vec<String> {
        self.passwords.iter().map(|digest| to_hex(digest)).collect()
    }

    /// The rules that rebuild this user (ACL LIST's line without `user <name> `).
    pub fn describe(&self) -> Vec<u8> {
        let mut parts: Vec<Vec<u8>> = self.flags().iter().map(|f| f.as_bytes().to_vec()).collect();
        parts.extend(
            self.password_hexes()
                .into_iter()
                .map(|hex| format!("#{hex}").into_bytes()),
        );
        parts.push(self.root.describe());
        parts.extend(
            self.selectors
                .iter()
                .map(|s| [&b"("[..], &s.describe(), b")"].concat()),
        );
        parts.join(&b' ')
    }

    /// True if every selector of `self` keeps every channel `old` allowed.
    pub fn narrows_channels_of(&self, old: &User) -> bool {
        // Conservative, as Redis: any selector losing a channel counts.
        self.root.narrows_channels_of(&old.root)
            || old.selectors.iter().enumerate().any(|(i, before)| {
                self.selectors
                    .get(i)
                    .is_none_or(|now| now.narrows_channels_of(before))
            })
    }
}

fn parse_hash(hex: &[u8]) -> Result<PasswordHash, RuleError> {
    if hex.len() != 64 {
        return Err(BAD_HASH);
    }
    let mut digest = [0u8; 32];
    for (byte, pair) in digest.iter_mut().zip(hex.chunks_exact(2)) {
        let nibble = |c: u8| match c {
            b'0'..=b'9' => Ok(c - b'0'),
            b'a'..=b'f' => Ok(c - b'a' + 10),
            _ => Err(BAD_HASH),
        };
        *byte = nibble(pair[0])? << 4 | nibble(pair[1])?;
    }
    Ok(digest)
}

fn to_hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes.iter().fold(String::with_capacity(64), |mut out, b| {
        let _ = write!(out, "{b:02x}");
        out
    })
}

/// Splits SETUSER arguments into rules, joining a selector written over several arguments
/// (`(~a` `+get)`) into one. Returns the offending start on an unclosed parenthesis.
pub fn merge_selector_args<'a>(
    args: impl Iterator<Item = &'a [u8]>,
) -> Result<Vec<Vec<u8>>, Vec<u8>> {
    let mut rules = Vec::new();
    let mut open: Option<Vec<u8>> = None;
    for arg in args {
        match open.as_mut() {
            Some(selector) => {
                selector.push(b' ');
                selector.extend_from_slice(arg);
                if arg.ends_with(b")") {
                    rules.extend(open.take());
                }
            }
            None if arg.first() == Some(&b'(') && !arg.ends_with(b")") => open = Some(arg.to_vec()),
            None => rules.push(arg.to_vec()),
        }
    }
    match open {
        Some(start) => Err(start),
        None => Ok(rules),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(rules: &[&str]) -> User {
        let mut u = User::new(false);
        for rule in rules {
            u.apply(rule.as_bytes(), false)
                .unwrap_or_else(|e| panic!("{rule}: {e}"));
        }
        u
    }

    #[test]
    fn passwords_and_flags() {
        let u = user(&["on", ">p1", ">p2", "<p1"]);
        assert!(u.enabled && !u.nopass);
        assert!(u.password_matches(b"p2") && !u.password_matches(b"p1"));
        let hex = u.password_hexes()[0].clone();
        let mut v = User::new(false);
        v.apply(format!("#{hex}").as_bytes(), false).expect("hash");
        assert!(v.password_matches(b"p2"));
        assert_eq!(v.apply(b"#abc", false), Err(BAD_HASH));
        assert_eq!(v.apply(b"<nope", false), Err(NO_SUCH_PASSWORD));
        assert_eq!(v.apply(format!("!{hex}").as_bytes(), false), Ok(()));
        assert!(!v.password_matches(b"p2"));
        assert_eq!(user(&["nopass", ">a"]).flags(), ["off"]);
        assert_eq!(user(&[">a", "nopass"]).flags(), ["off", "nopass"]);
        assert_eq!(
            user(&["sanitize-payload", "skip-sanitize-payload"]).flags(),
            ["off", "skip-sanitize-payload"]
        );
        assert_eq!(User::new(false).apply(b"foo", false), Err(SYNTAX));
    }

    #[test]
    fn descriptions_read_as_redis_writes_them() {
        assert_eq!(
            String::from_utf8_lossy(&User::default_user().describe()),
            "on nopass ~* &* +@all"
        );
        assert_eq!(
            String::from_utf8_lossy(&User::new(false).describe()),
            "off resetchannels -@all"
        );
        assert_eq!(
            String::from_utf8_lossy(&user(&["reset"]).describe()),
            "off sanitize-payload resetchannels -@all"
        );
        let u = user(&["(+get ~x*)"]);
        assert_eq!(
            String::from_utf8_lossy(&u.describe()),
            "off resetchannels -@all (~x* resetchannels -@all +get)"
        );
    }

    #[test]
    fn binary_patterns_survive_the_description() {
        // Found by the acl_rules fuzz target: described as lossy UTF-8, two patterns that
        // differ in a byte that is not UTF-8 became one.
        let mut u = User::new(false);
        u.apply(b"~ca\x95che", false).expect("pattern");
        u.apply(b"~ca\x9dche", false).expect("pattern");
        u.apply(b"&\xff\x01", false).expect("channel");
        assert_eq!(
            u.apply(b"&a\x00b", false),
            Err(SYNTAX),
            "NUL ends a rule, as in Redis"
        );
        assert_eq!(u.apply(b"~a b", false), Err(SYNTAX));
        assert_eq!(u.apply(b"(~a) +get)", false), Err(SYNTAX));
        let description = u.describe();
        let mut rebuilt = User::new(false);
        for rule in description.split(|&b| b == b' ') {
            rebuilt.apply(rule, false).expect("description rule");
        }
        assert_eq!(rebuilt, u);
        assert!(rebuilt
            .root
            .allows_key(b"ca\x9dche", protocol::catalogue::KeyFlags::RO));
    }

    #[test]
    fn selectors_spread_over_arguments_are_joined() {
        let args: Vec<&[u8]> = vec![b"on", b"(~a", b"+get)", b"(+set)"];
        assert_eq!(
            merge_selector_args(args.into_iter()),
            Ok(vec![
                b"on".to_vec(),
                b"(~a +get)".to_vec(),
                b"(+set)".to_vec()
            ])
        );
        let args: Vec<&[u8]> = vec![b"(+get"];
        assert_eq!(
            merge_selector_args(args.into_iter()),
            Err(b"(+get".to_vec())
        );
    }

    /// Rules drawn from every kind SETUSER takes, valid or not.
    fn rule() -> impl proptest::strategy::Strategy<Value = String> {
        use proptest::prelude::*;
        let words = prop::sample::select(vec![
            "on",
            "off",
            "nopass",
            "resetpass",
            ">p1",
            ">p2",
            "<p1",
            "allkeys",
            "resetkeys",
            "allchannels",
            "resetchannels",
            "allcommands",
            "nocommands",
            "+@all",
            "-@all",
            "+@read",
            "-@write",
            "+@hash",
            "-@dangerous",
            "+@connection",
            "+get",
            "-get",
            "+client",
            "-client|kill",
            "+client|id",
            "+select|0",
            "+select|1",
            "-select",
            "~k*",
            "~a",
            "%R~r*",
            "%W~w*",
            "&c*",
            "&news",
            "reset",
            "clearselectors",
            "sanitize-payload",
            "skip-sanitize-payload",
            "(+get ~x*)",
            "(+@read &c)",
            "+nosuch",
            "%X~a",
            "#abc",
        ]);
        words.prop_map(str::to_owned)
    }

    proptest::proptest! {
        /// ACL LIST's description of any user rebuilds exactly that user: ACL SAVE and LOAD
        /// (and a replica of the rules) lose nothing.
        #[test]
        fn descriptions_rebuild_the_user(rules in proptest::collection::vec(rule(), 0..12)) {
            let mut user = User::new(false);
            for rule in &rules {
                let mut copy = user.clone();
                if copy.apply(rule.as_bytes(), false).is_ok() {
                    user = copy;
                }
            }
            let description = user.describe();
            let words: Vec<&[u8]> = description.split(|&b| b == b' ').collect();
            let merged = merge_selector_args(words.into_iter()).expect("balanced");
            let mut rebuilt = User::new(false);
            for rule in &merged {
                rebuilt
                    .apply(rule, false)
                    .unwrap_or_else(|e| panic!("{}: {}: {e}", String::from_utf8_lossy(&description), String::from_utf8_lossy(rule)));
            }
            proptest::prop_assert_eq!(&rebuilt.describe(), &description);
            proptest::prop_assert_eq!(rebuilt.enabled, user.enabled);
            proptest::prop_assert_eq!(rebuilt.nopass, user.nopass);
            proptest::prop_assert_eq!(rebuilt.password_hexes(), user.password_hexes());
            proptest::prop_assert_eq!(rebuilt.selectors.len(), user.selectors.len());
            for id in 0..protocol::catalogue::row_count() {
                proptest::prop_assert_eq!(
                    rebuilt.root.allows_command(id, Some(b"0")),
                    user.root.allows_command(id, Some(b"0")),
                    "command {} after {:?}", id, rules
                );
            }
        }
    }
}
