//! The `help` built-in: `help`, `help COMMAND [SUBCOMMAND]`, `help @group`, laid out as
//! redis-cli lays them out (name and syntax, summary, since, group), with its colours when
//! writing to a terminal.

use crate::docs::{CommandDoc, HelpTable};

/// Renders the answer to `help ARGS...` (`args` excludes the word `help`).
///
/// ```
/// let table = kvcli::commands::builtin_table();
/// let text = kvcli::help::render(&table, &["get"], false);
/// assert_eq!(
///     text,
///     "\n  GET key\n  summary: Read the string stored at a key\n  since: 1.0.0\n  group: string\n\n"
/// );
/// ```
pub fn render<W: AsRef<[u8]>>(table: &HelpTable, args: &[W], color: bool) -> String {
    let Some(first) = args.first() else {
        return generic_help();
    };
    let style = Style { color };
    let mut out = String::new();
    match first.as_ref().strip_prefix(b"@") {
        Some(group) => {
            let group = String::from_utf8_lossy(group);
            for doc in table.in_group(&group) {
                command_help(&mut out, doc, false, style);
            }
        }
        None => {
            for doc in table.matching(args) {
                command_help(&mut out, doc, true, style);
            }
        }
    }
    out.push('\n');
    out
}

fn generic_help() -> String {
    format!(
        "kvcli {}\n\
         To get help about kvstore commands type:\n      \
               \"help @<group>\" to get a list of commands in <group>\n      \
               \"help <command>\" for help on <command>\n      \
               \"help <tab>\" to get a list of possible help topics\n      \
               \"quit\" to exit\n",
        env!("CARGO_PKG_VERSION")
    )
}

/// ANSI styling, or none when the output is not a terminal.
#[derive(Clone, Copy)]
struct Style {
    color: bool,
}

impl Style {
    fn paint(self, code: &str, text: &str) -> String {
        if self.color {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_owned()
        }
    }
}

fn command_help(out: &mut String, doc: &CommandDoc, with_group: bool, style: Style) {
    out.push_str(&format!(
        "\n  {} {}\n",
        style.paint("1", &doc.full_name()),
        style.paint("90", &doc.syntax())
    ));
    out.push_str(&format!(
        "  {} {}\n",
        style.paint("33", "summary:"),
        doc.summary
    ));
    if !doc.since.is_empty() {
        out.push_str(&format!(
            "  {} {}\n",
            style.paint("33", "since:"),
            doc.since
        ));
    }
    if with_group {
        out.push_str(&format!(
            "  {} {}\n",
            style.paint("33", "group:"),
            doc.group
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commands::builtin_table;

    #[test]
    fn generic_help_names_the_topics() {
        let text = render::<&str>(&builtin_table(), &[], true);
        assert!(text.starts_with("kvcli "));
        assert!(text.contains("\"help @<group>\" to get a list of commands in <group>\n"));
    }

    #[test]
    fn command_help_lists_subcommands_too() {
        let text = render(&builtin_table(), &["CONFIG"], false);
        let names: Vec<&str> = text.lines().filter(|l| l.starts_with("  CONFIG")).collect();
        assert_eq!(
            names,
            [
                "  CONFIG ",
                "  CONFIG GET parameter [parameter ...]",
                "  CONFIG HELP ",
                "  CONFIG RESETSTAT ",
                "  CONFIG REWRITE ",
                "  CONFIG SET parameter value [parameter value ...]",
            ]
        );
        let one = render(&builtin_table(), &["config", "get"], false);
        assert_eq!(one.matches("summary:").count(), 1);
    }

    #[test]
    fn group_help_omits_the_group_line() {
        let text = render(&builtin_table(), &["@Server"], false);
        assert!(text.contains(
            "\n  DBSIZE \n  summary: Count the keys in the current database\n  since: 1.0.0\n"
        ));
        assert!(!text.contains("group:"));
        assert_eq!(render(&builtin_table(), &["@nope"], false), "\n");
        assert_eq!(render(&builtin_table(), &["nope"], false), "\n");
    }

    #[test]
    fn colours_match_redis_cli() {
        let text = render(&builtin_table(), &["ttl"], true);
        assert_eq!(
            text,
            "\n  \x1b[1mTTL\x1b[0m \x1b[90mkey\x1b[0m\n  \x1b[33msummary:\x1b[0m Seconds left before a key expires\n  \x1b[33msince:\x1b[0m 1.0.0\n  \x1b[33mgroup:\x1b[0m generic\n\n"
        );
    }
}
