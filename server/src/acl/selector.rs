//! One ACL selector: which commands, keys and channels it allows. A user has a root selector
//! and any number of extra ones (`(...)`); a command runs if one selector allows all of it.
//!
//! Commands are a bitmap over the catalogue's rows ([`catalogue::row_id`]), so a check is a
//! bit test; categories and `+@all` set many bits at once. The rules are not kept as text:
//! ACL LIST describes the bitmap, as Redis does, by the categories that cover most of it and
//! the single commands that differ.

use protocol::catalogue::{self, AclCategories, CommandSpec, KeyFlags};

use crate::glob::glob_match;

/// ACL categories in the order ACL CAT lists them (Redis's order).
pub const CATEGORIES: [(&str, AclCategories); 21] = [
    ("keyspace", AclCategories::KEYSPACE),
    ("read", AclCategories::READ),
    ("write", AclCategories::WRITE),
    ("set", AclCategories::SET),
    ("sortedset", AclCategories::SORTEDSET),
    ("list", AclCategories::LIST),
    ("hash", AclCategories::HASH),
    ("string", AclCategories::STRING),
    ("bitmap", AclCategories::BITMAP),
    ("hyperloglog", AclCategories::HYPERLOGLOG),
    ("geo", AclCategories::GEO),
    ("stream", AclCategories::STREAM),
    ("pubsub", AclCategories::PUBSUB),
    ("admin", AclCategories::ADMIN),
    ("fast", AclCategories::FAST),
    ("slow", AclCategories::SLOW),
    ("blocking", AclCategories::BLOCKING),
    ("dangerous", AclCategories::DANGEROUS),
    ("connection", AclCategories::CONNECTION),
    ("transaction", AclCategories::TRANSACTION),
    ("scripting", AclCategories::SCRIPTING),
];

/// The category named `name` (any case, without `@`).
pub fn category(name: &[u8]) -> Option<AclCategories> {
    CATEGORIES
        .iter()
        .find(|(known, _)| known.as_bytes().eq_ignore_ascii_case(name))
        .map(|&(_, flag)| flag)
}

/// Why a rule was refused: the text after `Error in ACL SETUSER modifier '...': `.
pub type RuleError = &'static str;

/// A malformed rule.
pub const SYNTAX: RuleError = "Syntax error";
/// `+x` / `-@x` naming no command or category.
pub const UNKNOWN_NAME: RuleError = "Unknown command or category name in ACL";
const KEYS_AFTER_ALL: RuleError = "Adding a pattern after the * pattern (or the 'allkeys' flag) \
     is not valid and does not have any effect. Try 'resetkeys' to start with an empty list of \
     patterns";
const CHANNELS_AFTER_ALL: RuleError = "Adding a pattern after the * pattern (or the \
     'allchannels' flag) is not valid and does not have any effect. Try 'resetchannels' to \
     start with an empty list of channels";
const FIRST_ARG_DENY: RuleError = "Allowing first-arg of a subcommand is not supported";
const FIRST_ARG_NOT_ALLOWED: RuleError = "First-arg rules are not supported for this command";

/// A key pattern and what it grants.
#[derive(Debug, Clone, PartialEq, Eq)]
struct KeyPattern {
    pattern: Vec<u8>,
    read: bool,
    write: bool,
}

/// What a command was refused for, and the argument at fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Denial {
    /// The command itself.
    Command,
    /// The key at this argument position.
    Key(usize),
    /// The channel at this argument position.
    Channel(usize),
}

impl Denial {
    /// Which denial to report when every selector refused: the one that got furthest, as
    /// Redis reports (a key denial over a command denial, a channel denial over both).
    pub fn rank(self) -> u8 {
        match self {
            Denial::Command => 0,
            Denial::Key(_) => 1,
            Denial::Channel(_) => 2,
        }
    }
}

/// A set of permissions: commands, key patterns, channel patterns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selector {
    /// One bit per catalogue row: may run it.
    commands: Vec<u64>,
    /// Set by `+@all` (and kept until `-@all`): commands added later are allowed too, and
    /// ACL LIST starts its description from `+@all`.
    all_commands: bool,
    /// First arguments allowed for a command whose bit is clear (`+select|0`), by row id.
    first_args: Vec<(usize, Vec<Vec<u8>>)>,
    all_keys: bool,
    keys: Vec<KeyPattern>,
    all_channels: bool,
    channels: Vec<Vec<u8>>,
}

fn words() -> usize {
    catalogue::row_count().div_ceil(64)
}

impl Selector {
    /// A selector that allows nothing; channels as `acl-pubsub-default` says.
    pub fn empty(all_channels: bool) -> Selector {
        Selector {
            commands: vec![0; words()],
            all_commands: false,
            first_args: Vec::new(),
            all_keys: false,
            keys: Vec::new(),
            all_channels,
            channels: Vec::new(),
        }
    }

    /// True if it allows every command on every key and channel (the checks can be skipped).
    pub fn allows_everything(&self) -> bool {
        self.all_keys && self.all_channels && (0..catalogue::row_count()).all(|id| self.has_bit(id))
    }

    fn has_bit(&self, id: usize) -> bool {
        self.commands
            .get(id / 64)
            .is_some_and(|word| word & (1 << (id % 64)) != 0)
    }

    fn set_bit(&mut self, id: usize, on: bool) {
        if let Some(word) = self.commands.get_mut(id / 64) {
            if on {
                *word |= 1 << (id % 64);
            } else {
                *word &= !(1 << (id % 64));
            }
        }
    }

    /// Allows or denies `spec` and, for a container, all its subcommands; first-arg rules
    /// of the command are dropped.
    fn change_command(&mut self, spec: &'static CommandSpec, allow: bool) {
        let id = row_id_of(spec);
        self.set_bit(id, allow);
        self.first_args.retain(|(rule_id, _)| *rule_id != id);
        for (offset, _) in spec.subcommands.iter().enumerate() {
            self.set_bit(id + 1 + offset, allow);
        }
    }

    fn change_category(&mut self, category: AclCategories, allow: bool) {
        for (id, spec) in catalogue::all().enumerate() {
            if spec.acl_categories.contains(category) {
                self.set_bit(id, allow);
                if allow {
                    self.first_args.retain(|(rule_id, _)| *rule_id != id);
                }
            }
        }
    }

    fn set_all_commands(&mut self, allow: bool) {
        self.commands.fill(if allow { u64::MAX } else { 0 });
        self.all_commands = allow;
        self.first_args.clear();
    }

    /// Applies one selector rule (keys, channels, commands). Returns `Ok(false)` if `rule`
    /// is not a selector rule at all (a user rule such as `on`), so the caller can try those.
    pub fn apply(&mut self, rule: &[u8]) -> Result<bool, RuleError> {
        let lower = rule.to_ascii_lowercase();
        match lower.as_slice() {
            b"allkeys" => self.add_keys(b"*", true, true)?,
            b"resetkeys" => {
                self.all_keys = false;
                self.keys.clear();
            }
            b"allchannels" => self.add_channel(b"*")?,
            b"resetchannels" => {
                self.all_channels = false;
                self.channels.clear();
            }
            b"allcommands" | b"+@all" => self.set_all_commands(true),
            b"nocommands" | b"-@all" => self.set_all_commands(false),
            _ => match rule.first() {
                Some(b'~') => self.add_keys(&rule[1..], true, true)?,
                Some(b'%') => {
                    let tilde = rule.iter().position(|&b| b == b'~').ok_or(SYNTAX)?;
                    let mut read = false;
                    let mut write = false;
                    for &flag in &rule[1..tilde] {
                        match flag.to_ascii_uppercase() {
                            b'R' => read = true,
                            b'W' => write = true,
                            _ => return Err(SYNTAX),
                        }
                    }
                    if !read && !write {
                        return Err(SYNTAX);
                    }
                    self.add_keys(&rule[tilde + 1..], read, write)?;
                }
                Some(b'&') => self.add_channel(&rule[1..])?,
                Some(&sign @ (b'+' | b'-')) => {
                    self.apply_command_rule(&lower[1..], sign == b'+')?
                }
                _ => return Ok(false),
            },
        }
        Ok(true)
    }

    fn add_keys(&mut self, pattern: &[u8], read: bool, write: bool) -> Result<(), RuleError> {
        if has_separator(pattern) {
            return Err(SYNTAX);
        }
        if self.all_keys {
            return Err(KEYS_AFTER_ALL);
        }
        if pattern == b"*" && read && write {
            self.all_keys = true;
            self.keys.clear();
            return Ok(());
        }
        match self.keys.iter_mut().find(|known| known.pattern == pattern) {
            Some(known) => {
                known.read |= read;
                known.write |= write;
            }
            None => self.keys.push(KeyPattern {
                pattern: pattern.to_vec(),
                read,
                write,
            }),
        }
        Ok(())
    }

    fn add_channel(&mut self, pattern: &[u8]) -> Result<(), RuleError> {
        if has_separator(pattern) {
            return Err(SYNTAX);
        }
        if self.all_channels {
            return Err(CHANNELS_AFTER_ALL);
        }
        if pattern == b"*" {
            self.all_channels = true;
            self.channels.clear();
        } else if !self.channels.iter().any(|known| known == pattern) {
            self.channels.push(pattern.to_vec());
        }
        Ok(())
    }

    fn apply_command_rule(&mut self, name: &[u8], allow: bool) -> Result<(), RuleError> {
        if let Some(category_name) = name.strip_prefix(b"@") {
            let category = category(category_name).ok_or(UNKNOWN_NAME)?;
            self.change_category(category, allow);
            return Ok(());
        }
        let Some(bar) = name.iter().position(|&b| b == b'|') else {
            let spec = catalogue::find(name).ok_or(UNKNOWN_NAME)?;
            self.change_command(spec, allow);
            return Ok(());
        };
        let spec = catalogue::find(&name[..bar]).ok_or(UNKNOWN_NAME)?;
        let rest = &name[bar + 1..];
        if !spec.subcommands.is_empty() {
            let sub = spec.subcommand(rest).ok_or(UNKNOWN_NAME)?;
            self.set_bit(row_id_of(sub), allow);
            return Ok(());
        }
        // A first argument of a plain command (`+select|0`): allowed only, and only for a
        // command not already allowed whole.
        if !allow {
            return Err(FIRST_ARG_DENY);
        }
        if rest.is_empty() || rest.contains(&b'|') || has_separator(rest) {
            return Err(FIRST_ARG_NOT_ALLOWED);
        }
        let id = row_id_of(spec);
        if self.has_bit(id) {
            return Ok(());
        }
        match self
            .first_args
            .iter_mut()
            .find(|(rule_id, _)| *rule_id == id)
        {
            Some((_, args)) => {
                if !args.iter().any(|known| known.eq_ignore_ascii_case(rest)) {
                    args.push(rest.to_vec());
                }
            }
            None => self.first_args.push((id, vec![rest.to_vec()])),
        }
        Ok(())
    }

    /// Whether command row `id` may run with these arguments (`args[1]` for first-arg rules).
    pub fn allows_command(&self, id: usize, first_arg: Option<&[u8]>) -> bool {
        if self.has_bit(id) {
            return true;
        }
        let Some(first_arg) = first_arg else {
            return false;
        };
        self.first_args.iter().any(|(rule_id, args)| {
            *rule_id == id && args.iter().any(|arg| arg.eq_ignore_ascii_case(first_arg))
        })
    }

    /// Whether `key` may be used as a key spec with `flags` describes it.
    pub fn allows_key(&self, key: &[u8], flags: KeyFlags) -> bool {
        if self.all_keys {
            return true;
        }
        let read = flags.contains(KeyFlags::ACCESS);
        let write = flags.contains(KeyFlags::INSERT)
            || flags.contains(KeyFlags::DELETE)
            || flags.contains(KeyFlags::UPDATE);
        self.keys.iter().any(|pattern| {
            (pattern.read || !read)
                && (pattern.write || !write)
                && glob_match(&pattern.pattern, key)
        })
    }

    /// Whether `channel` may be published or subscribed to; `is_pattern` for PSUBSCRIBE,
    /// whose pattern must be one of the selector's own, literally.
    pub fn allows_channel(&self, channel: &[u8], is_pattern: bool) -> bool {
        self.all_channels
            || self.channels.iter().any(|pattern| {
                if is_pattern {
                    pattern == channel
                } else {
                    glob_match(pattern, channel)
                }
            })
    }

    /// True if a subscriber allowed by `old` would lose a channel under `self`: Redis then
    /// disconnects the subscribers (see `Acl::set_user`).
    pub fn narrows_channels_of(&self, old: &Selector) -> bool {
        if self.all_channels {
            return false;
        }
        old.all_channels || old.channels.iter().any(|c| !self.channels.contains(c))
    }

    /// The key patterns as ACL GETUSER shows them (`~a %R~b`). Bytes, not text: patterns
    /// may hold any byte, and the description must rebuild them exactly.
    pub fn describe_keys(&self) -> Vec<u8> {
        if self.all_keys {
            return b"~*".to_vec();
        }
        let parts: Vec<Vec<u8>> = self
            .keys
            .iter()
            .map(|pattern| {
                let prefix: &[u8] = match (pattern.read, pattern.write) {
                    (true, true) => b"~",
                    (true, false) => b"%R~",
                    _ => b"%W~",
                };
                [prefix, &pattern.pattern].concat()
            })
            .collect();
        parts.join(&b' ')
    }

    /// The channel patterns as ACL GETUSER shows them (`&a &b`, `&*`, or empty).
    pub fn describe_channels(&self) -> Vec<u8> {
        if self.all_channels {
            return b"&*".to_vec();
        }
        let parts: Vec<Vec<u8>> = self
            .channels
            .iter()
            .map(|c| [&b"&"[..], c].concat())
            .collect();
        parts.join(&b' ')
    }

    /// The command rules, rebuilt from the bitmap: `+@all` or `-@all`, then every category
    /// that covers more of the difference than it adds, then single commands.
    pub fn describe_commands(&self) -> Vec<u8> {
        let mut rules: Vec<Vec<u8>> = Vec::new();
        let additive = !self.all_commands;
        let mut fake = Selector::empty(false);
        fake.set_all_commands(!additive);
        rules.push(if additive {
            b"-@all".to_vec()
        } else {
            b"+@all".to_vec()
        });
        // `temp` undoes each category once emitted, so later categories are judged on what
        // is left to explain.
        let mut temp = self.clone();
        for (name, category) in CATEGORIES {
            // Top-level commands only, as Redis counts (a container stands for its
            // subcommands).
            let (mut on, mut off) = (0, 0);
            for spec in catalogue::COMMANDS.iter() {
                if spec.acl_categories.contains(category) {
                    if temp.has_bit(row_id_of(spec)) {
                        on += 1;
                    } else {
                        off += 1;
                    }
                }
            }
            if (additive && on > off) || (!additive && off > on) {
                fake.change_category(category, additive);
                temp.change_category(category, !additive);
                rules.push(format!("{}@{name}", if additive { '+' } else { '-' }).into_bytes());
            }
        }
        for spec in catalogue::COMMANDS.iter() {
            self.describe_single(spec, &mut fake, &mut rules);
            for sub in spec.subcommands {
                self.describe_single(sub, &mut fake, &mut rules);
            }
            let id = row_id_of(spec);
            if !self.has_bit(id) {
                if let Some((_, args)) = self.first_args.iter().find(|(rule_id, _)| *rule_id == id)
                {
                    for arg in args {
                        rules.push([b"+", spec.name.as_bytes(), b"|", arg].concat());
                    }
                }
            }
        }
        rules.join(&b' ')
    }

    fn describe_single(
        &self,
        spec: &'static CommandSpec,
        fake: &mut Selector,
        rules: &mut Vec<Vec<u8>>,
    ) {
        let id = row_id_of(spec);
        let mine = self.has_bit(id);
        if mine != fake.has_bit(id) {
            rules.push(format!("{}{}", if mine { '+' } else { '-' }, spec.name).into_bytes());
            fake.change_command(spec, mine);
        }
    }

    /// The whole selector as ACL LIST shows it: keys, channels, commands.
    pub fn describe(&self) -> Vec<u8> {
        let mut parts = Vec::new();
        let keys = self.describe_keys();
        if !keys.is_empty() {
            parts.push(keys);
        }
        if self.all_channels {
            parts.push(b"&*".to_vec());
        } else {
            parts.push(b"resetchannels".to_vec());
            let channels = self.describe_channels();
            if !channels.is_empty() {
                parts.push(channels);
            }
        }
        parts.push(self.describe_commands());
        parts.join(&b' ')
    }
}

/// The catalogue row number of `spec` (it is one of the catalogue's rows), through a table
/// built once: describing a user looks up every row.
pub fn row_id_of(spec: &'static CommandSpec) -> usize {
    static IDS: std::sync::OnceLock<std::collections::HashMap<usize, usize>> =
        std::sync::OnceLock::new();
    let ids = IDS.get_or_init(|| {
        catalogue::all()
            .enumerate()
            .map(|(id, row)| (std::ptr::from_ref(row) as usize, id))
            .collect()
    });
    ids.get(&(std::ptr::from_ref(spec) as usize))
        .copied()
        .unwrap_or(usize::MAX)
}

/// True if a pattern or first argument holds a byte that cannot appear inside one rule:
/// whitespace separates rules and NUL ends them, in Redis as here.
fn has_separator(bytes: &[u8]) -> bool {
    bytes
        .iter()
        .any(|&b| b.is_ascii_whitespace() || b == 0 || b == 0x0b)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn selector(rules: &[&str]) -> Selector {
        let mut s = Selector::empty(false);
        for rule in rules {
            assert_eq!(s.apply(rule.as_bytes()), Ok(true), "{rule}");
        }
        s
    }

    fn text(bytes: Vec<u8>) -> String {
        String::from_utf8(bytes).expect("text")
    }

    fn id(name: &str) -> usize {
        catalogue::row_id(name)
    }

    #[test]
    fn commands_categories_and_subcommands() {
        let s = selector(&["+get", "+@hash", "-hget", "+client|id"]);
        assert!(s.allows_command(id("get"), None));
        assert!(s.allows_command(id("hset"), None));
        assert!(!s.allows_command(id("hget"), None));
        assert!(s.allows_command(id("client|id"), None));
        assert!(!s.allows_command(id("client|kill"), None));
        assert!(!s.allows_command(id("set"), None));
        assert_eq!(
            text(s.describe_commands()),
            "-@all +@hash +client|id +get -hget"
        );

        let s = selector(&["+@all", "-client|kill"]);
        assert!(!s.allows_command(id("client|kill"), None));
        assert!(s.allows_command(id("client|id"), None));
        assert_eq!(text(s.describe_commands()), "+@all -client|kill");
        assert_eq!(
            text(selector(&["+set", "-set"]).describe_commands()),
            "-@all"
        );
        assert_eq!(
            text(selector(&["+client|id", "+client"]).describe_commands()),
            "-@all +client"
        );
    }

    #[test]
    fn first_argument_rules() {
        let s = selector(&["+select|0"]);
        assert!(s.allows_command(id("select"), Some(b"0")));
        assert!(!s.allows_command(id("select"), Some(b"1")));
        assert_eq!(text(s.describe_commands()), "-@all +select|0");
        assert_eq!(
            text(selector(&["+select|0", "+select"]).describe_commands()),
            "-@all +select"
        );
        let mut s = Selector::empty(false);
        assert_eq!(s.apply(b"-select|0"), Err(FIRST_ARG_DENY));
        assert_eq!(s.apply(b"+nosuch"), Err(UNKNOWN_NAME));
        assert_eq!(s.apply(b"+client|nosuch"), Err(UNKNOWN_NAME));
        assert_eq!(s.apply(b"+@nosuch"), Err(UNKNOWN_NAME));
    }

    #[test]
    fn key_patterns_by_access() {
        let s = selector(&["~cache:*", "%R~ro:*", "%W~wo:*"]);
        let read = KeyFlags::RO | KeyFlags::ACCESS;
        let write = KeyFlags::OW | KeyFlags::UPDATE;
        assert!(s.allows_key(b"cache:1", read) && s.allows_key(b"cache:1", write));
        assert!(s.allows_key(b"ro:1", read) && !s.allows_key(b"ro:1", write));
        assert!(!s.allows_key(b"wo:1", read) && s.allows_key(b"wo:1", write));
        assert!(!s.allows_key(b"other", KeyFlags::RO));
        assert_eq!(text(s.describe_keys()), "~cache:* %R~ro:* %W~wo:*");
        assert_eq!(text(selector(&["%R~k", "%W~k"]).describe_keys()), "~k");
        let mut all = selector(&["~a", "allkeys"]);
        assert_eq!(text(all.describe_keys()), "~*");
        assert_eq!(all.apply(b"~b"), Err(KEYS_AFTER_ALL));
        assert_eq!(Selector::empty(false).apply(b"%X~a"), Err(SYNTAX));
    }

    #[test]
    fn channels_and_patterns() {
        let s = selector(&["&news.*"]);
        assert!(s.allows_channel(b"news.sport", false));
        assert!(!s.allows_channel(b"other", false));
        assert!(s.allows_channel(b"news.*", true));
        assert!(!s.allows_channel(b"news.s*", true));
        assert_eq!(text(s.describe()), "resetchannels &news.* -@all");
        let all = selector(&["allchannels"]);
        assert!(!all.narrows_channels_of(&all));
        assert!(s.narrows_channels_of(&all));
        assert_eq!(
            text(selector(&["&a", "allchannels"]).describe_channels()),
            "&*"
        );
    }
}
