//! The command table compiled into kvcli: kvstore's commands and subcommands with their
//! group, version, summary and syntax. It backs `help`, completion and hints when the
//! server cannot answer `COMMAND DOCS` (not connected yet, or an older server); when it
//! can, the server's own table is used instead.
//!
//! The syntax strings are the ones in kvstore's command table (`server/src/cmd/table.rs`)
//! and SPEC.md, in Redis documentation notation; [`crate::syntax`] turns them into argument
//! trees. `cli/tests/kvcli.rs` checks this table against a running server's `COMMAND DOCS`.

use crate::docs::{CommandDoc, HelpTable};
use crate::syntax;

/// One built-in entry: what `COMMAND DOCS` would say about a command.
struct Builtin {
    /// Full name, uppercase, subcommands after a space (`CLIENT LIST`).
    name: &'static str,
    /// Documentation group.
    group: &'static str,
    /// First version with the command.
    since: &'static str,
    /// One-line description.
    summary: &'static str,
    /// Arguments after the name, in Redis documentation syntax.
    syntax: &'static str,
}

const fn builtin(
    name: &'static str,
    group: &'static str,
    since: &'static str,
    summary: &'static str,
    syntax: &'static str,
) -> Builtin {
    Builtin {
        name,
        group,
        since,
        summary,
        syntax,
    }
}

/// kvstore's commands, sorted by name.
#[rustfmt::skip]
static BUILTINS: &[Builtin] = &[
    builtin("APPEND", "string", "2.0.0", "Appends a string to the value of a key. Creates the key if it doesn't exist.", "key value"),
    builtin("AUTH", "connection", "1.0.0", "Authenticates the connection.", "[username] password"),
    builtin("BGREWRITEAOF", "server", "1.0.0", "Asynchronously rewrites the append-only file to disk.", ""),
    builtin("BGSAVE", "server", "1.0.0", "Asynchronously saves the database(s) to disk.", "[SCHEDULE]"),
    builtin("CLIENT", "connection", "2.4.0", "A container for client connection commands.", ""),
    builtin("CLIENT GETNAME", "connection", "2.6.9", "Returns the name of the connection.", ""),
    builtin("CLIENT HELP", "connection", "5.0.0", "Returns helpful text about the different subcommands.", ""),
    builtin("CLIENT ID", "connection", "5.0.0", "Returns the unique client ID of the connection.", ""),
    builtin("CLIENT INFO", "connection", "6.2.0", "Returns information about the connection.", ""),
    builtin("CLIENT LIST", "connection", "2.4.0", "Lists open connections.", "[TYPE NORMAL | MASTER | REPLICA | PUBSUB] [ID client-id [client-id ...]]"),
    builtin("CLIENT SETINFO", "connection", "7.2.0", "Sets information specific to the client or connection.", "LIB-NAME libname | LIB-VER libver"),
    builtin("CLIENT SETNAME", "connection", "2.6.9", "Sets the connection name.", "connection-name"),
    builtin("COMMAND", "server", "2.8.13", "Returns detailed information about all commands.", ""),
    builtin("COMMAND COUNT", "server", "2.8.13", "Returns a count of commands.", ""),
    builtin("COMMAND DOCS", "server", "7.0.0", "Returns documentary information about one, multiple or all commands.", "[command-name [command-name ...]]"),
    builtin("COMMAND GETKEYS", "server", "2.8.13", "Extracts the key names from an arbitrary command.", "command [arg [arg ...]]"),
    builtin("COMMAND HELP", "server", "5.0.0", "Returns helpful text about the different subcommands.", ""),
    builtin("COMMAND INFO", "server", "2.8.13", "Returns information about one, multiple or all commands.", "[command-name [command-name ...]]"),
    builtin("COMMAND LIST", "server", "7.0.0", "Returns a list of command names.", "[FILTERBY MODULE module-name | ACLCAT category | PATTERN pattern]"),
    builtin("CONFIG", "server", "2.0.0", "A container for server configuration commands.", ""),
    builtin("CONFIG GET", "server", "2.0.0", "Returns the effective values of configuration parameters.", "parameter [parameter ...]"),
    builtin("CONFIG HELP", "server", "5.0.0", "Returns helpful text about the different subcommands.", ""),
    builtin("CONFIG RESETSTAT", "server", "2.0.0", "Resets the server's statistics.", ""),
    builtin("CONFIG REWRITE", "server", "2.8.0", "Persists the effective configuration to file.", ""),
    builtin("CONFIG SET", "server", "2.0.0", "Sets configuration parameters in-flight.", "parameter value [parameter value ...]"),
    builtin("COPY", "generic", "6.2.0", "Copies the value of a key to a new key.", "source destination [DB destination-db] [REPLACE]"),
    builtin("DBSIZE", "server", "1.0.0", "Returns the number of keys in the database.", ""),
    builtin("DECR", "string", "1.0.0", "Decrements the integer value of a key by one. Uses 0 as initial value if the key doesn't exist.", "key"),
    builtin("DECRBY", "string", "1.0.0", "Decrements a number from the integer value of a key. Uses 0 as initial value if the key doesn't exist.", "key decrement"),
    builtin("DEL", "generic", "1.0.0", "Deletes one or more keys.", "key [key ...]"),
    builtin("ECHO", "connection", "1.0.0", "Returns the given string.", "message"),
    builtin("EXISTS", "generic", "1.0.0", "Determines whether one or more keys exist.", "key [key ...]"),
    builtin("EXPIRE", "generic", "1.0.0", "Sets the expiration time of a key in seconds.", "key seconds [NX | XX | GT | LT]"),
    builtin("EXPIREAT", "generic", "1.2.0", "Sets the expiration time of a key to a Unix timestamp.", "key unix-time-seconds [NX | XX | GT | LT]"),
    builtin("EXPIRETIME", "generic", "7.0.0", "Returns the expiration time of a key as a Unix timestamp.", "key"),
    builtin("FLUSHALL", "server", "1.0.0", "Removes all keys from all databases.", "[ASYNC | SYNC]"),
    builtin("FLUSHDB", "server", "1.0.0", "Removes all keys from the current database.", "[ASYNC | SYNC]"),
    builtin("GET", "string", "1.0.0", "Returns the string value of a key.", "key"),
    builtin("GETDEL", "string", "6.2.0", "Returns the string value of a key after deleting the key.", "key"),
    builtin("GETEX", "string", "6.2.0", "Returns the string value of a key after setting its expiration time.", "key [EX seconds | PX milliseconds | EXAT unix-time-seconds | PXAT unix-time-milliseconds | PERSIST]"),
    builtin("GETRANGE", "string", "2.4.0", "Returns a substring of the string stored at a key.", "key start end"),
    builtin("GETSET", "string", "1.0.0", "Returns the previous string value of a key after setting it to a new value.", "key value"),
    builtin("HELLO", "connection", "6.0.0", "Handshakes with the Redis server.", "[protover [AUTH username password] [SETNAME clientname]]"),
    builtin("INCR", "string", "1.0.0", "Increments the integer value of a key by one. Uses 0 as initial value if the key doesn't exist.", "key"),
    builtin("INCRBY", "string", "1.0.0", "Increments the integer value of a key by a number. Uses 0 as initial value if the key doesn't exist.", "key increment"),
    builtin("INCRBYFLOAT", "string", "2.6.0", "Increment the floating point value of a key by a number. Uses 0 as initial value if the key doesn't exist.", "key increment"),
    builtin("INFO", "server", "1.0.0", "Returns information and statistics about the server.", "[section [section ...]]"),
    builtin("KEYS", "generic", "1.0.0", "Returns all key names that match a pattern.", "pattern"),
    builtin("LASTSAVE", "server", "1.0.0", "Returns the Unix timestamp of the last successful save to disk.", ""),
    builtin("MGET", "string", "1.0.0", "Atomically returns the string values of one or more keys.", "key [key ...]"),
    builtin("MSET", "string", "1.0.1", "Atomically creates or modifies the string values of one or more keys.", "key value [key value ...]"),
    builtin("MSETNX", "string", "1.0.1", "Atomically modifies the string values of one or more keys only when all keys don't exist.", "key value [key value ...]"),
    builtin("PERSIST", "generic", "2.2.0", "Removes the expiration time of a key.", "key"),
    builtin("PEXPIRE", "generic", "2.6.0", "Sets the expiration time of a key in milliseconds.", "key milliseconds [NX | XX | GT | LT]"),
    builtin("PEXPIREAT", "generic", "2.6.0", "Sets the expiration time of a key to a Unix milliseconds timestamp.", "key unix-time-milliseconds [NX | XX | GT | LT]"),
    builtin("PEXPIRETIME", "generic", "7.0.0", "Returns the expiration time of a key as a Unix milliseconds timestamp.", "key"),
    builtin("PING", "connection", "1.0.0", "Returns the server's liveliness response.", "[message]"),
    builtin("PSETEX", "string", "2.6.0", "Sets both string value and expiration time in milliseconds of a key. The key is created if it doesn't exist.", "key milliseconds value"),
    builtin("PTTL", "generic", "2.6.0", "Returns the expiration time in milliseconds of a key.", "key"),
    builtin("QUIT", "connection", "1.0.0", "Closes the connection.", ""),
    builtin("RANDOMKEY", "generic", "1.0.0", "Returns a random key name from the database.", ""),
    builtin("RENAME", "generic", "1.0.0", "Renames a key and overwrites the destination.", "key newkey"),
    builtin("RENAMENX", "generic", "1.0.0", "Renames a key only when the target key name doesn't exist.", "key newkey"),
    builtin("RESET", "connection", "6.2.0", "Resets the connection.", ""),
    builtin("SAVE", "server", "1.0.0", "Synchronously saves the database(s) to disk.", ""),
    builtin("SCAN", "generic", "2.8.0", "Iterates over the key names in the database.", "cursor [MATCH pattern] [COUNT count] [TYPE type]"),
    builtin("SELECT", "connection", "1.0.0", "Changes the selected database.", "index"),
    builtin("SET", "string", "1.0.0", "Sets the string value of a key, ignoring its type. The key is created if it doesn't exist.", "key value [NX | XX] [GET] [EX seconds | PX milliseconds | EXAT unix-time-seconds | PXAT unix-time-milliseconds | KEEPTTL]"),
    builtin("SETEX", "string", "2.0.0", "Sets the string value and expiration time of a key. Creates the key if it doesn't exist.", "key seconds value"),
    builtin("SETNX", "string", "1.0.0", "Set the string value of a key only when the key doesn't exist.", "key value"),
    builtin("SETRANGE", "string", "2.2.0", "Overwrites a part of a string value with another by an offset. Creates the key if it doesn't exist.", "key offset value"),
    builtin("SHUTDOWN", "server", "1.0.0", "Synchronously saves the database(s) to disk and shuts down the Redis server.", "[NOSAVE | SAVE] [NOW] [FORCE] [ABORT]"),
    builtin("STRLEN", "string", "2.2.0", "Returns the length of a string value.", "key"),
    builtin("TIME", "server", "2.6.0", "Returns the server time.", ""),
    builtin("TOUCH", "generic", "3.2.1", "Returns the number of existing keys out of those specified after updating the time they were last accessed.", "key [key ...]"),
    builtin("TTL", "generic", "1.0.0", "Returns the expiration time in seconds of a key.", "key"),
    builtin("TYPE", "generic", "1.0.0", "Determines the type of value stored at a key.", "key"),
    builtin("UNLINK", "generic", "4.0.0", "Asynchronously deletes one or more keys.", "key [key ...]"),
];

/// The help table built from the compiled-in command list.
pub fn builtin_table() -> HelpTable {
    HelpTable::new(
        BUILTINS
            .iter()
            .map(|b| CommandDoc {
                words: b.name.split(' ').map(str::to_owned).collect(),
                summary: b.summary.to_owned(),
                since: b.since.to_owned(),
                group: b.group.to_owned(),
                args: syntax::parse(b.syntax),
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_sorted_and_complete() {
        let names: Vec<&str> = BUILTINS.iter().map(|b| b.name).collect();
        let mut sorted = names.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(names, sorted, "sorted, no duplicates");
        // 60 commands and 18 subcommands, as `COMMAND COUNT` and SPEC.md say.
        assert_eq!(
            BUILTINS.iter().filter(|b| !b.name.contains(' ')).count(),
            60
        );
        assert_eq!(BUILTINS.len(), 78);
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
        assert_eq!(
            table.groups(),
            ["connection", "generic", "server", "string"]
        );
    }
}
