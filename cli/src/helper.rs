//! The line editor's helper: Tab completion of command names (subcommands included:
//! `client l` → `CLIENT LIST`), the grey hint of the remaining arguments, both taken from
//! the session's [`HelpTable`].

use std::borrow::Cow;
use std::sync::Arc;

use protocol::inline::split_args;
use rustyline::completion::{Completer, Pair};
use rustyline::highlight::Highlighter;
use rustyline::hint::Hinter;
use rustyline::validate::Validator;
use rustyline::{Context, Helper};

use crate::docs::HelpTable;

/// Completion and hints for the shell.
pub struct KvHelper {
    table: Arc<HelpTable>,
    version: u64,
}

impl KvHelper {
    /// A helper using `table` (version `version`, see [`update`](Self::update)).
    pub fn new(table: Arc<HelpTable>, version: u64) -> KvHelper {
        KvHelper { table, version }
    }

    /// Switches to a newer table (after a connection fetched `COMMAND DOCS`).
    pub fn update(&mut self, table: Arc<HelpTable>, version: u64) {
        if version != self.version {
            self.table = table;
            self.version = version;
        }
    }
}

/// Completions of `line` (the text before the cursor): where the replaced text starts and
/// the candidates, in the table's order.
///
/// Names are matched case-insensitively and completed in the case the user types in
/// (uppercase unless the typed text is lowercase). After `help `, groups (`@string`) are
/// offered too.
pub fn completions(table: &HelpTable, line: &str) -> (usize, Vec<String>) {
    let (start, with_groups) = match line.get(..5) {
        Some(head) if head.eq_ignore_ascii_case("help ") => {
            let typed = line[5..].trim_start();
            (line.len() - typed.len(), true)
        }
        _ => (0, false),
    };
    let typed = &line[start..];
    let lowercase = typed.chars().any(|c| c.is_ascii_lowercase())
        && !typed.chars().any(|c| c.is_ascii_uppercase());
    let starts_with = |name: &str| {
        name.get(..typed.len())
            .is_some_and(|head| head.eq_ignore_ascii_case(typed))
    };
    let mut candidates: Vec<String> = Vec::new();
    if with_groups {
        candidates.extend(
            table
                .groups()
                .iter()
                .map(|g| format!("@{g}"))
                .filter(|g| starts_with(g)),
        );
    }
    candidates.extend(
        table
            .commands()
            .iter()
            .map(|doc| doc.full_name())
            .filter(|name| starts_with(name))
            .map(|name| {
                if lowercase {
                    name.to_ascii_lowercase()
                } else {
                    name
                }
            }),
    );
    (start, candidates)
}

/// The hint to show after `line`: the arguments still to type, with a leading space when
/// the line does not end with one. `None` when there is nothing to show.
pub fn hint_for_line(table: &HelpTable, line: &str) -> Option<String> {
    let words = split_args(line.as_bytes()).ok()?;
    let ends_with_space = line.ends_with(|c: char| c.is_ascii_whitespace());
    let hint = table.hint_for(&words, ends_with_space)?;
    if hint.is_empty() {
        None
    } else if ends_with_space {
        Some(hint)
    } else {
        Some(format!(" {hint}"))
    }
}

impl Completer for KvHelper {
    type Candidate = Pair;

    fn complete(
        &self,
        line: &str,
        pos: usize,
        _ctx: &Context<'_>,
    ) -> rustyline::Result<(usize, Vec<Pair>)> {
        let before = line.get(..pos).unwrap_or(line);
        let (start, names) = completions(&self.table, before);
        let pairs = names
            .into_iter()
            .map(|name| Pair {
                display: name.clone(),
                replacement: name,
            })
            .collect();
        Ok((start, pairs))
    }
}

impl Hinter for KvHelper {
    type Hint = String;

    fn hint(&self, line: &str, pos: usize, _ctx: &Context<'_>) -> Option<String> {
        // Only at the end of the line, where the hint is drawn.
        if pos < line.len() {
            return None;
        }
        hint_for_line(&self.table, line)
    }
}

impl Highlighter for KvHelper {
    fn highlight_hint<'h>(&self, hint: &'h str) -> Cow<'h, str> {
        // Dark grey, as redis-cli draws hints.
        Cow::Owned(format!("\x1b[90m{hint}\x1b[0m"))
    }
}

impl Validator for KvHelper {}

impl Helper for KvHelper {}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commands::builtin_table;

    fn complete(line: &str) -> (usize, Vec<String>) {
        completions(&builtin_table(), line)
    }

    #[test]
    fn completes_commands_in_the_typed_case() {
        assert_eq!(complete("ech"), (0, vec!["echo".to_owned()]));
        assert_eq!(complete("ECH"), (0, vec!["ECHO".to_owned()]));
        assert_eq!(complete("Ech"), (0, vec!["ECHO".to_owned()]));
        assert_eq!(complete("getr").1, ["getrange"], "prefix match only");
        assert_eq!(complete("nope").1, Vec::<String>::new());
        assert_eq!(complete("hincr").1, ["hincrby", "hincrbyfloat"]);
        let rows = protocol::catalogue::all().count();
        assert_eq!(complete("").1.len(), rows);
    }

    #[test]
    fn completes_subcommands() {
        assert_eq!(complete("client l"), (0, vec!["client list".to_owned()]));
        assert_eq!(
            complete("CONFIG RE").1,
            ["CONFIG RESETSTAT", "CONFIG REWRITE"]
        );
        assert_eq!(
            complete("cli").1.first().map(String::as_str),
            Some("client")
        );
    }

    #[test]
    fn help_completes_commands_and_groups() {
        let table = builtin_table();
        let (start, groups) = complete("help @s");
        assert_eq!(start, 5);
        assert!(groups.contains(&"@server".to_owned()) && groups.contains(&"@string".to_owned()));
        assert!(groups.iter().all(|g| g.starts_with("@s")));
        assert_eq!(complete("help @h"), (5, vec!["@hash".to_owned()]));
        assert_eq!(complete("HELP  GETD"), (6, vec!["GETDEL".to_owned()]));
        let rows = protocol::catalogue::all().count();
        assert_eq!(complete("help ").1.len(), table.groups().len() + rows);
    }

    #[test]
    fn hints_for_lines() {
        let table = builtin_table();
        let hint = |line: &str| hint_for_line(&table, line);
        assert_eq!(
            hint("set ").as_deref(),
            Some("key value [NX|XX] [GET] [EX seconds|PX milliseconds|EXAT unix-time-seconds|PXAT unix-time-milliseconds|KEEPTTL]")
        );
        assert_eq!(
            hint("SET k").as_deref(),
            Some(" value [NX|XX] [GET] [EX seconds|PX milliseconds|EXAT unix-time-seconds|PXAT unix-time-milliseconds|KEEPTTL]")
        );
        assert_eq!(hint("set k v ex 10 ").as_deref(), Some("[NX|XX] [GET]"));
        assert_eq!(
            hint("set k v ex").as_deref(),
            Some(" seconds [NX|XX] [GET]")
        );
        assert_eq!(hint("set \"a key\" ").as_deref(), Some("value [NX|XX] [GET] [EX seconds|PX milliseconds|EXAT unix-time-seconds|PXAT unix-time-milliseconds|KEEPTTL]"));
        assert_eq!(hint("get k ").as_deref(), None, "nothing left");
        assert_eq!(hint("get k extra ").as_deref(), None, "does not fit");
        assert_eq!(hint("set \"unbalanced "), None);
        assert_eq!(hint(""), None);
        assert_eq!(
            hint("client list ").as_deref(),
            Some("[TYPE NORMAL|MASTER|REPLICA|PUBSUB] [ID client-id [client-id ...]]")
        );
        assert_eq!(hint("DEL a b ").as_deref(), Some("[key ...]"));
    }
}
