//! kvstore's commands as kvcli knows them offline: the command catalogue of the protocol crate
//! (`protocol::catalogue`, the table the server itself answers `COMMAND DOCS` from), turned
//! into a [`HelpTable`]. It backs `help`, completion and hints when the server cannot answer
//! `COMMAND DOCS` (not connected yet, or an older server); when it can, the server's answer is
//! used instead. `cli/tests/kvcli/docs.rs` checks that both say the same.

use protocol::catalogue;

use crate::docs::{CommandDoc, HelpTable};

/// The help table built from the catalogue compiled into kvcli.
pub fn builtin_table() -> HelpTable {
    HelpTable::new(
        catalogue::all()
            .map(|spec| CommandDoc {
                words: spec.name.split('|').map(str::to_ascii_uppercase).collect(),
                summary: spec.summary.to_owned(),
                since: spec.since.to_owned(),
                group: spec.group.as_str().to_owned(),
                args: spec.arguments(),
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_command_and_subcommand_is_there() {
        let table = builtin_table();
        let names: Vec<String> = table.commands().iter().map(CommandDoc::full_name).collect();
        // Every catalogue row, commands and subcommands.
        let commands = protocol::catalogue::COMMANDS.len();
        assert_eq!(names.iter().filter(|n| !n.contains(' ')).count(), commands);
        assert_eq!(names.len(), protocol::catalogue::all().count());
        assert!(commands >= 77);
        let mut sorted = names.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(names, sorted, "sorted, no duplicates");
        assert!(names.iter().any(|n| n == "CLIENT SETNAME"));
    }

    #[test]
    fn syntax_round_trips_through_the_argument_tree() {
        let table = builtin_table();
        let syntax_of = |words: &[&str]| table.find(words).map(CommandDoc::syntax);
        assert_eq!(
            syntax_of(&["SET"]).as_deref(),
            Some("key value [NX|XX] [GET] [EX seconds|PX milliseconds|EXAT unix-time-seconds|PXAT unix-time-milliseconds|KEEPTTL]")
        );
        assert_eq!(
            syntax_of(&["mset"]).as_deref(),
            Some("key value [key value ...]")
        );
        assert_eq!(
            syntax_of(&["client", "list"]).as_deref(),
            Some("[TYPE NORMAL|MASTER|REPLICA|PUBSUB] [ID client-id [client-id ...]]")
        );
        assert_eq!(
            syntax_of(&["CLIENT", "SETINFO"]).as_deref(),
            Some("LIB-NAME libname|LIB-VER libver")
        );
        assert_eq!(syntax_of(&["AUTH"]).as_deref(), Some("[username] password"));
        // Type annotations do not show.
        assert_eq!(syntax_of(&["INCRBY"]).as_deref(), Some("key increment"));
        assert_eq!(
            syntax_of(&["HINCRBY"]).as_deref(),
            Some("key field increment")
        );
        assert_eq!(
            syntax_of(&["hset"]).as_deref(),
            Some("key field value [field value ...]")
        );
        // A required choice, as redis-cli shows it.
        assert_eq!(
            syntax_of(&["LMOVE"]).as_deref(),
            Some("source destination LEFT|RIGHT LEFT|RIGHT")
        );
        assert_eq!(
            table.groups(),
            [
                "connection",
                "generic",
                "hash",
                "list",
                "server",
                "sorted-set",
                "string"
            ]
        );
    }
}
