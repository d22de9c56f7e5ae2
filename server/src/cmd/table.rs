//! The command table: one row per command, the single source for dispatch, arity checks, key
//! positions, `COMMAND INFO`/`COMMAND DOCS` (which redis-cli reads for its hints) and SPEC.md.

use std::collections::HashMap;
use std::sync::OnceLock;

use super::{
    config, connection, expire, info, introspect, keys, persistence, server, string, Handler,
};

/// Static description of a command (or of a container's subcommand).
pub struct CommandSpec {
    /// Lowercase name; subcommands are `container|sub`, as Redis names them.
    pub name: &'static str,
    /// Redis arity: `n` exactly n arguments including the name, `-n` at least n.
    pub arity: i32,
    /// Redis command flags as reported by COMMAND INFO.
    pub flags: &'static [&'static str],
    /// `flags` contains `write`: worked out when the table is built, since dispatch asks for
    /// every command.
    write: bool,
    /// Position of the first key (0: none).
    pub first_key: i32,
    /// Position of the last key (negative counts from the end).
    pub last_key: i32,
    /// Step between keys.
    pub key_step: i32,
    /// Documentation group (`string`, `generic`, `connection`, `server`, `keyspace`...).
    pub group: &'static str,
    /// Redis version that introduced the command (what COMMAND DOCS reports).
    pub since: &'static str,
    /// Time complexity.
    pub complexity: &'static str,
    /// One-line description.
    pub summary: &'static str,
    /// Arguments after the name, in Redis documentation syntax.
    pub syntax: &'static str,
    /// The implementation.
    pub handler: Handler,
    /// Subcommands of a container command (CLIENT, COMMAND, CONFIG).
    pub subcommands: &'static [CommandSpec],
}

impl CommandSpec {
    /// True if `argc` arguments (name included) satisfy the arity.
    pub fn arity_ok(&self, argc: usize) -> bool {
        let argc = i64::try_from(argc).unwrap_or(i64::MAX);
        let arity = i64::from(self.arity);
        if arity >= 0 {
            argc == arity
        } else {
            argc >= -arity
        }
    }

    /// Name as used in error messages: `get`, `client|setname`.
    pub fn full_name(&self) -> &'static str {
        self.name
    }

    /// The part after `|` for a subcommand, else the whole name.
    pub fn sub_name(&self) -> &'static str {
        self.name.rsplit('|').next().unwrap_or(self.name)
    }

    /// Positions of the keys in `args`, following first/last/step.
    pub fn key_positions(&self, argc: usize) -> impl Iterator<Item = usize> {
        let first = usize::try_from(self.first_key).unwrap_or(0);
        let last = if self.last_key < 0 {
            argc.checked_sub(self.last_key.unsigned_abs() as usize)
        } else {
            usize::try_from(self.last_key).ok()
        };
        let step = usize::try_from(self.key_step).unwrap_or(1).max(1);
        let end = match (first, last) {
            (0, _) | (_, None) => 0,
            (_, Some(last)) => last.min(argc.saturating_sub(1)) + 1,
        };
        (first..end.max(first)).step_by(step)
    }

    /// True if the command may modify the keyspace.
    pub fn is_write(&self) -> bool {
        self.write
    }
}

#[allow(clippy::too_many_arguments)]
const fn command(
    name: &'static str,
    arity: i32,
    flags: &'static [&'static str],
    keys: (i32, i32, i32),
    group: &'static str,
    since: &'static str,
    complexity: &'static str,
    summary: &'static str,
    syntax: &'static str,
    handler: Handler,
) -> CommandSpec {
    CommandSpec {
        name,
        arity,
        flags,
        write: contains_flag(flags, "write"),
        first_key: keys.0,
        last_key: keys.1,
        key_step: keys.2,
        group,
        since,
        complexity,
        summary,
        syntax,
        handler,
        subcommands: &[],
    }
}

/// `flags.contains(&flag)`, usable in the `const` command table.
const fn contains_flag(flags: &[&str], flag: &str) -> bool {
    let wanted = flag.as_bytes();
    let mut i = 0;
    while i < flags.len() {
        let candidate = flags[i].as_bytes();
        if candidate.len() == wanted.len() {
            let mut j = 0;
            while j < wanted.len() && candidate[j] == wanted[j] {
                j += 1;
            }
            if j == wanted.len() {
                return true;
            }
        }
        i += 1;
    }
    false
}

const NO_KEYS: (i32, i32, i32) = (0, 0, 0);
const ONE_KEY: (i32, i32, i32) = (1, 1, 1);
const ALL_KEYS: (i32, i32, i32) = (1, -1, 1);
const TWO_KEYS: (i32, i32, i32) = (1, 2, 1);

const READ_FAST: &[&str] = &["readonly", "fast"];
const WRITE_FAST: &[&str] = &["write", "denyoom", "fast"];
const WRITE_DEL: &[&str] = &["write", "fast"];
const ADMIN_CONN: &[&str] = &[
    "noscript",
    "loading",
    "stale",
    "fast",
    "no_auth",
    "allow_busy",
];

/// Subcommands of CLIENT.
static CLIENT_SUBCOMMANDS: [CommandSpec; 7] = [
    command(
        "client|id",
        2,
        &["noscript", "loading", "stale"],
        NO_KEYS,
        "connection",
        "5.0.0",
        "O(1)",
        "Returns the unique client ID of the connection.",
        "",
        connection::client_id,
    ),
    command(
        "client|setname",
        3,
        &["noscript", "loading", "stale"],
        NO_KEYS,
        "connection",
        "2.6.9",
        "O(1)",
        "Sets the connection name.",
        "connection-name",
        connection::client_setname,
    ),
    command(
        "client|getname",
        2,
        &["noscript", "loading", "stale"],
        NO_KEYS,
        "connection",
        "2.6.9",
        "O(1)",
        "Returns the name of the connection.",
        "",
        connection::client_getname,
    ),
    command(
        "client|list",
        -2,
        &["admin", "noscript", "loading", "stale"],
        NO_KEYS,
        "connection",
        "2.4.0",
        "O(N) where N is the number of client connections",
        "Lists open connections.",
        "[TYPE NORMAL | MASTER | REPLICA | PUBSUB] [ID client-id [client-id ...]]",
        connection::client_list,
    ),
    command(
        "client|info",
        2,
        &["noscript", "loading", "stale"],
        NO_KEYS,
        "connection",
        "6.2.0",
        "O(1)",
        "Returns information about the connection.",
        "",
        connection::client_info,
    ),
    command(
        "client|setinfo",
        4,
        &["noscript", "loading", "stale"],
        NO_KEYS,
        "connection",
        "7.2.0",
        "O(1)",
        "Sets information specific to the client or connection.",
        "LIB-NAME libname | LIB-VER libver",
        connection::client_setinfo,
    ),
    command(
        "client|help",
        2,
        &["loading", "stale"],
        NO_KEYS,
        "connection",
        "5.0.0",
        "O(1)",
        "Returns helpful text about the different subcommands.",
        "",
        connection::client_help,
    ),
];

/// Subcommands of COMMAND.
static COMMAND_SUBCOMMANDS: [CommandSpec; 6] = [
    command(
        "command|count",
        2,
        &["loading", "stale"],
        NO_KEYS,
        "server",
        "2.8.13",
        "O(1)",
        "Returns a count of commands.",
        "",
        introspect::command_count,
    ),
    command(
        "command|info",
        -2,
        &["loading", "stale"],
        NO_KEYS,
        "server",
        "2.8.13",
        "O(N) where N is the number of commands to look up",
        "Returns information about one, multiple or all commands.",
        "[command-name [command-name ...]]",
        introspect::command_info,
    ),
    command(
        "command|docs",
        -2,
        &["loading", "stale"],
        NO_KEYS,
        "server",
        "7.0.0",
        "O(N) where N is the number of commands to look up",
        "Returns documentary information about one, multiple or all commands.",
        "[command-name [command-name ...]]",
        introspect::command_docs,
    ),
    command(
        "command|list",
        -2,
        &["loading", "stale"],
        NO_KEYS,
        "server",
        "7.0.0",
        "O(N) where N is the total number of Redis commands",
        "Returns a list of command names.",
        "[FILTERBY MODULE module-name | ACLCAT category | PATTERN pattern]",
        introspect::command_list,
    ),
    command(
        "command|getkeys",
        -3,
        &["loading", "stale"],
        NO_KEYS,
        "server",
        "2.8.13",
        "O(N) where N is the number of arguments to the command",
        "Extracts the key names from an arbitrary command.",
        "command [arg [arg ...]]",
        introspect::command_getkeys,
    ),
    command(
        "command|help",
        2,
        &["loading", "stale"],
        NO_KEYS,
        "server",
        "5.0.0",
        "O(1)",
        "Returns helpful text about the different subcommands.",
        "",
        introspect::command_help,
    ),
];

/// Subcommands of CONFIG.
static CONFIG_SUBCOMMANDS: [CommandSpec; 5] = [
    command(
        "config|get",
        -3,
        &["admin", "noscript", "loading", "stale"],
        NO_KEYS,
        "server",
        "2.0.0",
        "O(N) when N is the number of configuration parameters provided",
        "Returns the effective values of configuration parameters.",
        "parameter [parameter ...]",
        config::config_get,
    ),
    command(
        "config|set",
        -4,
        &["admin", "noscript", "loading", "stale"],
        NO_KEYS,
        "server",
        "2.0.0",
        "O(N) when N is the number of configuration parameters provided",
        "Sets configuration parameters in-flight.",
        "parameter value [parameter value ...]",
        config::config_set,
    ),
    command(
        "config|resetstat",
        2,
        &["admin", "noscript", "loading", "stale"],
        NO_KEYS,
        "server",
        "2.0.0",
        "O(1)",
        "Resets the server's statistics.",
        "",
        config::config_resetstat,
    ),
    command(
        "config|rewrite",
        2,
        &["admin", "noscript", "loading", "stale"],
        NO_KEYS,
        "server",
        "2.8.0",
        "O(1)",
        "Persists the effective configuration to file.",
        "",
        config::config_rewrite,
    ),
    command(
        "config|help",
        2,
        &["loading", "stale"],
        NO_KEYS,
        "server",
        "5.0.0",
        "O(1)",
        "Returns helpful text about the different subcommands.",
        "",
        config::config_help,
    ),
];

const fn container(
    name: &'static str,
    arity: i32,
    group: &'static str,
    since: &'static str,
    summary: &'static str,
    handler: Handler,
    subcommands: &'static [CommandSpec],
) -> CommandSpec {
    CommandSpec {
        name,
        arity,
        flags: &[],
        write: false,
        first_key: 0,
        last_key: 0,
        key_step: 0,
        group,
        since,
        complexity: "Depends on subcommand.",
        summary,
        syntax: "",
        handler,
        subcommands,
    }
}

/// Every command the server implements.
pub static COMMANDS: [CommandSpec; 60] = [
    // Connection and server.
    command("ping", -1, &["fast"], NO_KEYS, "connection", "1.0.0", "O(1)", "Returns the server's liveliness response.", "[message]", connection::ping),
    command("echo", 2, &["fast"], NO_KEYS, "connection", "1.0.0", "O(1)", "Returns the given string.", "message", connection::echo),
    command("hello", -1, ADMIN_CONN, NO_KEYS, "connection", "6.0.0", "O(1)", "Handshakes with the Redis server.", "[protover [AUTH username password] [SETNAME clientname]]", connection::hello),
    command("quit", -1, ADMIN_CONN, NO_KEYS, "connection", "1.0.0", "O(1)", "Closes the connection.", "", connection::quit),
    command("reset", 1, ADMIN_CONN, NO_KEYS, "connection", "6.2.0", "O(1)", "Resets the connection.", "", connection::reset),
    command("select", 2, &["loading", "stale", "fast"], NO_KEYS, "connection", "1.0.0", "O(1)", "Changes the selected database.", "index", connection::select),
    command("auth", -2, ADMIN_CONN, NO_KEYS, "connection", "1.0.0", "O(N) where N is the number of passwords defined for the user", "Authenticates the connection.", "[username] password", connection::auth),
    container("client", -2, "connection", "2.4.0", "A container for client connection commands.", connection::client_help, &CLIENT_SUBCOMMANDS),
    container("command", -1, "server", "2.8.13", "Returns detailed information about all commands.", introspect::command_all, &COMMAND_SUBCOMMANDS),
    container("config", -2, "server", "2.0.0", "A container for server configuration commands.", config::config_help, &CONFIG_SUBCOMMANDS),
    command("info", -1, &["loading", "stale"], NO_KEYS, "server", "1.0.0", "O(1)", "Returns information and statistics about the server.", "[section [section ...]]", info::info),
    command("dbsize", 1, READ_FAST, NO_KEYS, "server", "1.0.0", "O(1)", "Returns the number of keys in the database.", "", server::dbsize),
    command("flushdb", -1, &["write"], NO_KEYS, "server", "1.0.0", "O(N) where N is the number of keys in the selected database", "Removes all keys from the current database.", "[ASYNC | SYNC]", server::flushdb),
    command("flushall", -1, &["write"], NO_KEYS, "server", "1.0.0", "O(N) where N is the total number of keys in all databases", "Removes all keys from all databases.", "[ASYNC | SYNC]", server::flushall),
    command("save", 1, &["admin", "noscript", "no_async_loading", "no_multi"], NO_KEYS, "server", "1.0.0", "O(N) where N is the total number of keys in all databases", "Synchronously saves the database(s) to disk.", "", persistence::save),
    command("bgsave", -1, &["admin", "noscript", "no_async_loading"], NO_KEYS, "server", "1.0.0", "O(1)", "Asynchronously saves the database(s) to disk.", "[SCHEDULE]", persistence::bgsave),
    command("lastsave", 1, &["loading", "stale", "fast"], NO_KEYS, "server", "1.0.0", "O(1)", "Returns the Unix timestamp of the last successful save to disk.", "", persistence::lastsave),
    command("bgrewriteaof", 1, &["admin", "noscript", "no_async_loading"], NO_KEYS, "server", "1.0.0", "O(1)", "Asynchronously rewrites the append-only file to disk.", "", persistence::bgrewriteaof),
    command("time", 1, &["loading", "stale", "fast"], NO_KEYS, "server", "2.6.0", "O(1)", "Returns the server time.", "", server::time),
    // Strings.
    command("get", 2, READ_FAST, ONE_KEY, "string", "1.0.0", "O(1)", "Returns the string value of a key.", "key", string::get),
    command("set", -3, &["write", "denyoom"], ONE_KEY, "string", "1.0.0", "O(1)", "Sets the string value of a key, ignoring its type. The key is created if it doesn't exist.", "key value [NX | XX] [GET] [EX seconds | PX milliseconds | EXAT unix-time-seconds | PXAT unix-time-milliseconds | KEEPTTL]", string::set),
    command("setnx", 3, WRITE_FAST, ONE_KEY, "string", "1.0.0", "O(1)", "Set the string value of a key only when the key doesn't exist.", "key value", string::setnx),
    command("setex", 4, &["write", "denyoom"], ONE_KEY, "string", "2.0.0", "O(1)", "Sets the string value and expiration time of a key. Creates the key if it doesn't exist.", "key seconds value", string::setex),
    command("psetex", 4, &["write", "denyoom"], ONE_KEY, "string", "2.6.0", "O(1)", "Sets both string value and expiration time in milliseconds of a key. The key is created if it doesn't exist.", "key milliseconds value", string::psetex),
    command("mget", -2, READ_FAST, ALL_KEYS, "string", "1.0.0", "O(N) where N is the number of keys to retrieve.", "Atomically returns the string values of one or more keys.", "key [key ...]", string::mget),
    command("mset", -3, &["write", "denyoom"], (1, -1, 2), "string", "1.0.1", "O(N) where N is the number of keys to set.", "Atomically creates or modifies the string values of one or more keys.", "key value [key value ...]", string::mset),
    command("msetnx", -3, &["write", "denyoom"], (1, -1, 2), "string", "1.0.1", "O(N) where N is the number of keys to set.", "Atomically modifies the string values of one or more keys only when all keys don't exist.", "key value [key value ...]", string::msetnx),
    command("getset", 3, WRITE_FAST, ONE_KEY, "string", "1.0.0", "O(1)", "Returns the previous string value of a key after setting it to a new value.", "key value", string::getset),
    command("getdel", 2, WRITE_DEL, ONE_KEY, "string", "6.2.0", "O(1)", "Returns the string value of a key after deleting the key.", "key", string::getdel),
    command("getex", -2, WRITE_DEL, ONE_KEY, "string", "6.2.0", "O(1)", "Returns the string value of a key after setting its expiration time.", "key [EX seconds | PX milliseconds | EXAT unix-time-seconds | PXAT unix-time-milliseconds | PERSIST]", string::getex),
    command("append", 3, WRITE_FAST, ONE_KEY, "string", "2.0.0", "O(1). The amortized time complexity is O(1) assuming the appended value is small and the already present value is of any size, since the dynamic string library used by Redis will double the free space available on every reallocation.", "Appends a string to the value of a key. Creates the key if it doesn't exist.", "key value", string::append),
    command("strlen", 2, READ_FAST, ONE_KEY, "string", "2.2.0", "O(1)", "Returns the length of a string value.", "key", string::strlen),
    command("getrange", 4, &["readonly"], ONE_KEY, "string", "2.4.0", "O(N) where N is the length of the returned string.", "Returns a substring of the string stored at a key.", "key start end", string::getrange),
    command("setrange", 4, &["write", "denyoom"], ONE_KEY, "string", "2.2.0", "O(1), not counting the time taken to copy the new string in place.", "Overwrites a part of a string value with another by an offset. Creates the key if it doesn't exist.", "key offset value", string::setrange),
    command("incr", 2, WRITE_FAST, ONE_KEY, "string", "1.0.0", "O(1)", "Increments the integer value of a key by one. Uses 0 as initial value if the key doesn't exist.", "key", string::incr),
    command("decr", 2, WRITE_FAST, ONE_KEY, "string", "1.0.0", "O(1)", "Decrements the integer value of a key by one. Uses 0 as initial value if the key doesn't exist.", "key", string::decr),
    command("incrby", 3, WRITE_FAST, ONE_KEY, "string", "1.0.0", "O(1)", "Increments the integer value of a key by a number. Uses 0 as initial value if the key doesn't exist.", "key increment", string::incrby),
    command("decrby", 3, WRITE_FAST, ONE_KEY, "string", "1.0.0", "O(1)", "Decrements a number from the integer value of a key. Uses 0 as initial value if the key doesn't exist.", "key decrement", string::decrby),
    command("incrbyfloat", 3, WRITE_FAST, ONE_KEY, "string", "2.6.0", "O(1)", "Increment the floating point value of a key by a number. Uses 0 as initial value if the key doesn't exist.", "key increment", string::incrbyfloat),
    // Keys.
    command("del", -2, &["write"], ALL_KEYS, "generic", "1.0.0", "O(N) where N is the number of keys that will be removed.", "Deletes one or more keys.", "key [key ...]", keys::del),
    command("unlink", -2, WRITE_DEL, ALL_KEYS, "generic", "4.0.0", "O(1) for each key removed regardless of its size.", "Asynchronously deletes one or more keys.", "key [key ...]", keys::unlink),
    command("exists", -2, READ_FAST, ALL_KEYS, "generic", "1.0.0", "O(N) where N is the number of keys to check.", "Determines whether one or more keys exist.", "key [key ...]", keys::exists),
    command("type", 2, READ_FAST, ONE_KEY, "generic", "1.0.0", "O(1)", "Determines the type of value stored at a key.", "key", keys::key_type),
    command("keys", 2, &["readonly"], NO_KEYS, "generic", "1.0.0", "O(N) with N being the number of keys in the database", "Returns all key names that match a pattern.", "pattern", keys::keys),
    command("scan", -2, &["readonly"], NO_KEYS, "generic", "2.8.0", "O(1) for every call. O(N) for a complete iteration.", "Iterates over the key names in the database.", "cursor [MATCH pattern] [COUNT count] [TYPE type]", keys::scan),
    command("rename", 3, &["write"], TWO_KEYS, "generic", "1.0.0", "O(1)", "Renames a key and overwrites the destination.", "key newkey", keys::rename),
    command("renamenx", 3, WRITE_DEL, TWO_KEYS, "generic", "1.0.0", "O(1)", "Renames a key only when the target key name doesn't exist.", "key newkey", keys::renamenx),
    command("copy", -3, &["write", "denyoom"], TWO_KEYS, "generic", "6.2.0", "O(N) worst case for collections, where N is the number of nested items. O(1) for string values.", "Copies the value of a key to a new key.", "source destination [DB destination-db] [REPLACE]", keys::copy),
    command("touch", -2, READ_FAST, ALL_KEYS, "generic", "3.2.1", "O(N) where N is the number of keys that will be touched.", "Returns the number of existing keys out of those specified after updating the time they were last accessed.", "key [key ...]", keys::touch),
    command("randomkey", 1, &["readonly"], NO_KEYS, "generic", "1.0.0", "O(1)", "Returns a random key name from the database.", "", keys::randomkey),
    command("expire", -3, WRITE_DEL, ONE_KEY, "generic", "1.0.0", "O(1)", "Sets the expiration time of a key in seconds.", "key seconds [NX | XX | GT | LT]", expire::expire),
    command("pexpire", -3, WRITE_DEL, ONE_KEY, "generic", "2.6.0", "O(1)", "Sets the expiration time of a key in milliseconds.", "key milliseconds [NX | XX | GT | LT]", expire::pexpire),
    command("expireat", -3, WRITE_DEL, ONE_KEY, "generic", "1.2.0", "O(1)", "Sets the expiration time of a key to a Unix timestamp.", "key unix-time-seconds [NX | XX | GT | LT]", expire::expireat),
    command("pexpireat", -3, WRITE_DEL, ONE_KEY, "generic", "2.6.0", "O(1)", "Sets the expiration time of a key to a Unix milliseconds timestamp.", "key unix-time-milliseconds [NX | XX | GT | LT]", expire::pexpireat),
    command("ttl", 2, READ_FAST, ONE_KEY, "generic", "1.0.0", "O(1)", "Returns the expiration time in seconds of a key.", "key", expire::ttl),
    command("pttl", 2, READ_FAST, ONE_KEY, "generic", "2.6.0", "O(1)", "Returns the expiration time in milliseconds of a key.", "key", expire::pttl),
    command("expiretime", 2, READ_FAST, ONE_KEY, "generic", "7.0.0", "O(1)", "Returns the expiration time of a key as a Unix timestamp.", "key", expire::expiretime),
    command("pexpiretime", 2, READ_FAST, ONE_KEY, "generic", "7.0.0", "O(1)", "Returns the expiration time of a key as a Unix milliseconds timestamp.", "key", expire::pexpiretime),
    command("persist", 2, WRITE_DEL, ONE_KEY, "generic", "2.2.0", "O(1)", "Removes the expiration time of a key.", "key", expire::persist),
    command("shutdown", -1, &["admin", "noscript", "loading", "stale", "no_multi", "allow_busy"], NO_KEYS, "server", "1.0.0", "O(N) when saving, where N is the total number of keys in all databases when saving data, otherwise O(1)", "Synchronously saves the database(s) to disk and shuts down the Redis server.", "[NOSAVE | SAVE] [NOW] [FORCE] [ABORT]", server::shutdown),
];

/// The name index: a fixed-seed foldhash map (command names are not attacker-chosen keys of a
/// growing table, and SipHash showed up at ~2.5% of CPU in pipelined GET profiles).
type CommandIndex = HashMap<&'static [u8], &'static CommandSpec, foldhash::fast::FixedState>;

/// Finds a command by name, case-insensitively, without allocating.
pub fn lookup(name: &[u8]) -> Option<&'static CommandSpec> {
    static INDEX: OnceLock<CommandIndex> = OnceLock::new();
    let index = INDEX.get_or_init(|| {
        COMMANDS
            .iter()
            .map(|spec| (spec.name.as_bytes(), spec))
            .collect()
    });
    let mut lower = [0u8; 32];
    let folded = lower.get_mut(..name.len())?;
    folded.copy_from_slice(name);
    folded.make_ascii_lowercase();
    index.get(&*folded).copied()
}

/// The command whose name is stored at `address` (see `ClientHandle::note_command`).
pub fn name_at_address(address: usize) -> Option<&'static str> {
    COMMANDS
        .iter()
        .flat_map(|spec| std::iter::once(spec).chain(spec.subcommands.iter()))
        .map(|spec| spec.name)
        .find(|name| name.as_ptr() as usize == address)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_bit_matches_the_flags() {
        for spec in COMMANDS
            .iter()
            .flat_map(|spec| std::iter::once(spec).chain(spec.subcommands.iter()))
        {
            assert_eq!(
                spec.is_write(),
                spec.flags.contains(&"write"),
                "{}",
                spec.name
            );
        }
        assert!(lookup(b"set").is_some_and(CommandSpec::is_write));
        assert!(!lookup(b"get").is_some_and(CommandSpec::is_write));
    }

    #[test]
    fn lookup_ignores_case_and_rejects_long_names() {
        assert_eq!(lookup(b"GET").map(|c| c.name), Some("get"));
        assert_eq!(lookup(b"gEt").map(|c| c.name), Some("get"));
        assert!(lookup(b"nope").is_none());
        assert!(lookup(&[b'a'; 100]).is_none());
    }

    #[test]
    fn names_are_unique_and_lowercase() {
        let mut names: Vec<&str> = COMMANDS.iter().map(|c| c.name).collect();
        for c in COMMANDS.iter() {
            assert_eq!(c.name, c.name.to_ascii_lowercase());
            for sub in c.subcommands {
                assert!(sub.name.starts_with(&format!("{}|", c.name)));
            }
        }
        names.sort_unstable();
        let before = names.len();
        names.dedup();
        assert_eq!(before, names.len());
    }

    #[test]
    fn key_positions_follow_first_last_step() {
        let mset = lookup(b"mset").unwrap();
        assert_eq!(mset.key_positions(5).collect::<Vec<_>>(), vec![1, 3]);
        let del = lookup(b"del").unwrap();
        assert_eq!(del.key_positions(4).collect::<Vec<_>>(), vec![1, 2, 3]);
        let rename = lookup(b"rename").unwrap();
        assert_eq!(rename.key_positions(3).collect::<Vec<_>>(), vec![1, 2]);
        let ping = lookup(b"ping").unwrap();
        assert_eq!(ping.key_positions(2).count(), 0);
    }
}
