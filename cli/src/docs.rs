//! The help table behind `help`, Tab completion and hints: one entry per command and
//! subcommand (`GET`, `CLIENT LIST`), with its summary, group and argument tree.
//!
//! It is read from the server's `COMMAND DOCS` reply (a map in RESP3, a flat array in RESP2;
//! see `server/src/cmd/introspect.rs`), once per connection, or built from the command
//! catalogue compiled into kvcli ([`crate::commands`]) when the server cannot answer.

use protocol::Frame;

use crate::hints::{self, ArgKind, ArgSpec};

/// Documentation of one command or subcommand.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandDoc {
    /// The words naming it, uppercase: `["GET"]`, `["CLIENT", "LIST"]`.
    pub words: Vec<String>,
    /// One-line description.
    pub summary: String,
    /// First version with the command.
    pub since: String,
    /// Documentation group (`string`, `generic`, `connection`, `server`...).
    pub group: String,
    /// The argument tree, empty if the command takes none.
    pub args: Vec<ArgSpec>,
}

impl CommandDoc {
    /// The full name: the words joined by a space (`CLIENT LIST`).
    pub fn full_name(&self) -> String {
        self.words.join(" ")
    }

    /// The syntax of the arguments (`key value [NX|XX] ...`), as `help` prints it.
    pub fn syntax(&self) -> String {
        hints::syntax(&self.args)
    }
}

/// Every documented command, sorted by full name, and the groups they belong to.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HelpTable {
    commands: Vec<CommandDoc>,
    groups: Vec<String>,
}

impl HelpTable {
    /// A table of `commands` (sorted here; groups collected from them).
    pub fn new(mut commands: Vec<CommandDoc>) -> HelpTable {
        commands.sort_by_key(CommandDoc::full_name);
        let mut groups: Vec<String> = commands.iter().map(|c| c.group.clone()).collect();
        groups.sort();
        groups.dedup();
        HelpTable { commands, groups }
    }

    /// Reads a `COMMAND DOCS` reply. `None` if it is not a map of command docs (an error
    /// reply, or a server without the subcommand).
    pub fn from_command_docs(reply: &Frame) -> Option<HelpTable> {
        let mut commands = Vec::new();
        for (name, docs) in pairs(reply)? {
            let name = text(name)?;
            commands.extend(command_docs(&[name.to_ascii_uppercase()], docs));
        }
        if commands.is_empty() {
            return None;
        }
        Some(HelpTable::new(commands))
    }

    /// Every command and subcommand, sorted by full name.
    pub fn commands(&self) -> &[CommandDoc] {
        &self.commands
    }

    /// Group names, sorted.
    pub fn groups(&self) -> &[String] {
        &self.groups
    }

    /// The command that `words` start with, preferring the longest name (`CLIENT LIST`
    /// over `CLIENT`), compared case-insensitively.
    pub fn find<W: AsRef<[u8]>>(&self, words: &[W]) -> Option<&CommandDoc> {
        self.commands
            .iter()
            .filter(|doc| {
                doc.words.len() <= words.len()
                    && doc
                        .words
                        .iter()
                        .zip(words)
                        .all(|(name, word)| name.as_bytes().eq_ignore_ascii_case(word.as_ref()))
            })
            .max_by_key(|doc| doc.words.len())
    }

    /// Commands whose names start with `words` (all of `CLIENT`'s for `["client"]`),
    /// as `help CLIENT` lists them.
    pub fn matching<'a, W: AsRef<[u8]>>(
        &'a self,
        words: &'a [W],
    ) -> impl Iterator<Item = &'a CommandDoc> + 'a {
        self.commands.iter().filter(move |doc| {
            words.len() <= doc.words.len()
                && doc
                    .words
                    .iter()
                    .zip(words)
                    .all(|(name, word)| name.as_bytes().eq_ignore_ascii_case(word.as_ref()))
        })
    }

    /// Commands of `group` (case-insensitive).
    pub fn in_group<'a>(&'a self, group: &'a str) -> impl Iterator<Item = &'a CommandDoc> + 'a {
        self.commands
            .iter()
            .filter(move |doc| doc.group.eq_ignore_ascii_case(group))
    }

    /// The hint to show after `words`, the arguments typed so far (command name included).
    ///
    /// While a word is being typed (`ends_with_space` false), it is counted if the hint
    /// still fits with it (`SET foo` hints `value ...`, as redis-cli 7.0 does), else the
    /// hint is the one before it (`SET k v E` hints the options).
    pub fn hint_for<W: AsRef<[u8]>>(&self, words: &[W], ends_with_space: bool) -> Option<String> {
        let with_last = self.hint_exact(words);
        if ends_with_space {
            return with_last;
        }
        let typed = words.len().checked_sub(1)?;
        with_last.or_else(|| self.hint_exact(&words[..typed]))
    }

    fn hint_exact<W: AsRef<[u8]>>(&self, words: &[W]) -> Option<String> {
        let doc = self.find(words)?;
        hints::hint(&doc.args, &words[doc.words.len()..])
    }
}

/// The entries of a map reply, or of a flat `[key, value, ...]` array (RESP2).
fn pairs(frame: &Frame) -> Option<Vec<(&Frame, &Frame)>> {
    match frame {
        Frame::Map(pairs) => Some(pairs.iter().map(|(k, v)| (k, v)).collect()),
        Frame::Array(items) if items.len() % 2 == 0 => Some(
            items
                .chunks_exact(2)
                .filter_map(|pair| match pair {
                    [k, v] => Some((k, v)),
                    _ => None,
                })
                .collect(),
        ),
        _ => None,
    }
}

/// The text of a string-like frame (bulk, simple, verbatim).
fn text(frame: &Frame) -> Option<String> {
    match frame {
        Frame::Bulk(b) | Frame::Simple(b) => Some(String::from_utf8_lossy(b).into_owned()),
        Frame::Verbatim { text, .. } => Some(String::from_utf8_lossy(text).into_owned()),
        _ => None,
    }
}

/// The entry for one command's docs map (named by `words`), followed by its subcommands'.
fn command_docs(words: &[String], docs: &Frame) -> Vec<CommandDoc> {
    let Some(fields) = pairs(docs) else {
        return Vec::new();
    };
    let mut doc = CommandDoc {
        words: words.to_vec(),
        summary: String::new(),
        since: String::new(),
        group: "generic".to_owned(),
        args: Vec::new(),
    };
    let mut subcommands = Vec::new();
    for (key, value) in fields {
        match text(key).as_deref() {
            Some("summary") => doc.summary = text(value).unwrap_or_default(),
            Some("since") => doc.since = text(value).unwrap_or_default(),
            Some("group") => doc.group = text(value).unwrap_or_default(),
            Some("arguments") => doc.args = arguments(value),
            Some("subcommands") => {
                for (name, sub_docs) in pairs(value).unwrap_or_default() {
                    let Some(name) = text(name) else { continue };
                    // Subcommands are named `container|sub`.
                    let sub = name
                        .rsplit('|')
                        .next()
                        .unwrap_or(&name)
                        .to_ascii_uppercase();
                    let mut sub_words = words.to_vec();
                    sub_words.push(sub);
                    subcommands.extend(command_docs(&sub_words, sub_docs));
                }
            }
            _ => {}
        }
    }
    let mut all = vec![doc];
    all.extend(subcommands);
    all
}

/// An `arguments` array: one map per argument.
fn arguments(frame: &Frame) -> Vec<ArgSpec> {
    match frame {
        Frame::Array(items) | Frame::Set(items) => items.iter().filter_map(argument).collect(),
        _ => Vec::new(),
    }
}

/// One argument map (`name`, `type`, `display_text`, `token`, `flags`, `arguments`).
fn argument(frame: &Frame) -> Option<ArgSpec> {
    let mut spec = ArgSpec::new(String::new(), ArgKind::String);
    for (key, value) in pairs(frame)? {
        match text(key).as_deref() {
            Some("name") => spec.name = text(value).unwrap_or_default(),
            Some("type") => spec.kind = ArgKind::from_name(&text(value).unwrap_or_default()),
            Some("display_text") => spec.display = text(value),
            Some("token") => spec.token = text(value),
            Some("arguments") => spec.children = arguments(value),
            Some("flags") => {
                if let Frame::Array(flags) | Frame::Set(flags) = value {
                    for flag in flags.iter().filter_map(text) {
                        match flag.as_str() {
                            "optional" => spec.optional = true,
                            "multiple" => spec.multiple = true,
                            "multiple_token" => spec.multiple_token = true,
                            _ => {}
                        }
                    }
                }
            }
            _ => {}
        }
    }
    Some(spec)
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;

    fn bulk(s: &str) -> Frame {
        Frame::Bulk(Bytes::copy_from_slice(s.as_bytes()))
    }

    fn map(entries: Vec<(&str, Frame)>) -> Frame {
        Frame::Map(entries.into_iter().map(|(k, v)| (bulk(k), v)).collect())
    }

    fn arg_map(name: &str, kind: &str, extra: Vec<(&str, Frame)>) -> Frame {
        let mut entries = vec![("name", bulk(name)), ("type", bulk(kind))];
        entries.extend(extra);
        map(entries)
    }

    fn flags(list: &[&str]) -> Frame {
        Frame::Set(
            list.iter()
                .map(|f| Frame::Simple(Bytes::copy_from_slice(f.as_bytes())))
                .collect(),
        )
    }

    fn sample_docs() -> Frame {
        map(vec![
            (
                "get",
                map(vec![
                    ("summary", bulk("Read the string stored at a key")),
                    ("since", bulk("1.0.0")),
                    ("group", bulk("string")),
                    ("complexity", bulk("O(1)")),
                    (
                        "arguments",
                        Frame::Array(vec![arg_map("key", "key", vec![])]),
                    ),
                ]),
            ),
            (
                "del",
                map(vec![
                    (
                        "summary",
                        bulk("Delete keys; replies with how many existed"),
                    ),
                    ("since", bulk("1.0.0")),
                    ("group", bulk("generic")),
                    (
                        "arguments",
                        Frame::Array(vec![arg_map(
                            "key",
                            "key",
                            vec![("flags", flags(&["multiple"]))],
                        )]),
                    ),
                ]),
            ),
            (
                "client",
                map(vec![
                    ("summary", bulk("Inspect and name client connections")),
                    ("since", bulk("2.4.0")),
                    ("group", bulk("connection")),
                    (
                        "subcommands",
                        map(vec![
                            (
                                "client|list",
                                map(vec![
                                    (
                                        "summary",
                                        bulk("Describe the connected clients, one line each"),
                                    ),
                                    ("since", bulk("2.4.0")),
                                    ("group", bulk("connection")),
                                    (
                                        "arguments",
                                        Frame::Array(vec![arg_map(
                                            "client-type",
                                            "oneof",
                                            vec![
                                                ("token", bulk("TYPE")),
                                                ("flags", flags(&["optional"])),
                                                (
                                                    "arguments",
                                                    Frame::Array(vec![
                                                        arg_map(
                                                            "normal",
                                                            "pure-token",
                                                            vec![("token", bulk("NORMAL"))],
                                                        ),
                                                        arg_map(
                                                            "pubsub",
                                                            "pure-token",
                                                            vec![("token", bulk("PUBSUB"))],
                                                        ),
                                                    ]),
                                                ),
                                            ],
                                        )]),
                                    ),
                                ]),
                            ),
                            (
                                "client|id",
                                map(vec![
                                    ("summary", bulk("Show this connection's numeric id")),
                                    ("since", bulk("5.0.0")),
                                    ("group", bulk("connection")),
                                ]),
                            ),
                        ]),
                    ),
                ]),
            ),
        ])
    }

    /// The same reply as RESP2 sends it: maps flattened into arrays.
    fn flatten(frame: &Frame) -> Frame {
        match frame {
            Frame::Map(pairs) => Frame::Array(
                pairs
                    .iter()
                    .flat_map(|(k, v)| [flatten(k), flatten(v)])
                    .collect(),
            ),
            Frame::Array(items) | Frame::Set(items) => {
                Frame::Array(items.iter().map(flatten).collect())
            }
            other => other.clone(),
        }
    }

    #[test]
    fn reads_command_docs_in_both_protocols() {
        let resp3 = HelpTable::from_command_docs(&sample_docs()).expect("docs");
        let resp2 = HelpTable::from_command_docs(&flatten(&sample_docs())).expect("docs");
        assert_eq!(resp3, resp2);
        let names: Vec<String> = resp3.commands().iter().map(CommandDoc::full_name).collect();
        assert_eq!(names, ["CLIENT", "CLIENT ID", "CLIENT LIST", "DEL", "GET"]);
        assert_eq!(resp3.groups(), ["connection", "generic", "string"]);
        let get = resp3.find(&["get", "k"]).expect("get");
        assert_eq!(get.summary, "Read the string stored at a key");
        assert_eq!(get.syntax(), "key");
        assert_eq!(
            resp3.find(&["DEL"]).map(CommandDoc::syntax).as_deref(),
            Some("key [key ...]")
        );
        assert_eq!(
            resp3
                .find(&["client", "LIST"])
                .map(CommandDoc::syntax)
                .as_deref(),
            Some("[TYPE NORMAL|PUBSUB]")
        );
    }

    #[test]
    fn rejects_replies_that_are_not_docs() {
        assert_eq!(
            HelpTable::from_command_docs(&Frame::Error(Bytes::from_static(b"ERR"))),
            None
        );
        assert_eq!(HelpTable::from_command_docs(&Frame::Map(Vec::new())), None);
        assert_eq!(
            HelpTable::from_command_docs(&Frame::Array(vec![bulk("x")])),
            None
        );
        // Malformed entries are skipped, not fatal.
        let odd = map(vec![("get", Frame::Integer(1)), ("ping", map(vec![]))]);
        let table = HelpTable::from_command_docs(&odd).expect("ping survives");
        assert_eq!(table.commands().len(), 1);
    }

    #[test]
    fn longest_prefix_wins_and_matching_lists_subcommands() {
        let table = HelpTable::from_command_docs(&sample_docs()).expect("docs");
        assert_eq!(
            table
                .find(&["client"])
                .map(CommandDoc::full_name)
                .as_deref(),
            Some("CLIENT")
        );
        assert_eq!(
            table
                .find(&["Client", "list", "TYPE"])
                .map(CommandDoc::full_name)
                .as_deref(),
            Some("CLIENT LIST")
        );
        assert!(table.find::<&str>(&[]).is_none());
        assert!(table.find(&["nope"]).is_none());
        let client: Vec<String> = table
            .matching(&["CLIENT"])
            .map(CommandDoc::full_name)
            .collect();
        assert_eq!(client, ["CLIENT", "CLIENT ID", "CLIENT LIST"]);
        let strings: Vec<String> = table
            .in_group("STRING")
            .map(CommandDoc::full_name)
            .collect();
        assert_eq!(strings, ["GET"]);
    }

    #[test]
    fn hints_count_the_word_being_typed_when_it_fits() {
        let table = HelpTable::from_command_docs(&sample_docs()).expect("docs");
        assert_eq!(table.hint_for(&["get"], false).as_deref(), Some("key"));
        assert_eq!(table.hint_for(&["get"], true).as_deref(), Some("key"));
        assert_eq!(table.hint_for(&["get", "k"], false).as_deref(), Some(""));
        assert_eq!(table.hint_for(&["get", "k", "x"], true), None);
        assert_eq!(
            table.hint_for(&["del", "a", "b"], true).as_deref(),
            Some("[key ...]")
        );
        assert_eq!(
            table.hint_for(&["client", "list"], true).as_deref(),
            Some("[TYPE NORMAL|PUBSUB]")
        );
        // `TY` is not the token yet: the hint is the one before it.
        assert_eq!(
            table.hint_for(&["client", "list", "TY"], false).as_deref(),
            Some("[TYPE NORMAL|PUBSUB]")
        );
        assert_eq!(
            table
                .hint_for(&["client", "list", "TYPE"], false)
                .as_deref(),
            Some("NORMAL|PUBSUB")
        );
        assert_eq!(table.hint_for(&["nope"], true), None);
        assert_eq!(table.hint_for::<&str>(&[], false), None);
    }
}
