//! The rows of the catalogue. Each command takes three lines:
//!
//! ```text
//! CommandSpec::new(name, arity, flags, key specs, group, since, complexity, propagation,
//!     summary,
//!     syntax),
//! ```
//!
//! Facts (arity, flags, key positions, version, complexity, argument syntax) are Redis 7's;
//! summaries are kvstore's own. The order is the order of `COMMAND` and `COMMAND LIST`.
//! Adding a command: a row here, a handler bound in the server's `cmd/table.rs`, tests, and
//! SPEC.md (see its section "Adding a command or a command family").

use super::bits::{CommandFlags, KeyFlags};
use super::{BeginSearch, CommandSpec, FindKeys, Group, KeySpec, Propagation};

/// A [`CommandFlags`] set from flag names: `flags![WRITE, DENYOOM]`.
macro_rules! flags {
    ($($flag:ident),* $(,)?) => {
        CommandFlags::EMPTY $(.union(CommandFlags::$flag))*
    };
}

const CONNECTION: Group = Group::Connection;
const SERVER: Group = Group::Server;
const STRING: Group = Group::String;
const GENERIC: Group = Group::Generic;
const HASH: Group = Group::Hash;
const LIST: Group = Group::List;
const SET: Group = Group::Set;
const SORTED_SET: Group = Group::SortedSet;
const TRANSACTIONS: Group = Group::Transactions;
const SCRIPTING: Group = Group::Scripting;
const PUBSUB: Group = Group::Pubsub;

const NOTHING: Propagation = Propagation::None;
const AS_SENT: Propagation = Propagation::AsSent;
const REWRITTEN: Propagation = Propagation::Rewritten;

const READS: KeyFlags = KeyFlags::RO.union(KeyFlags::ACCESS);
const UPDATES: KeyFlags = KeyFlags::RW.union(KeyFlags::UPDATE);

const NO_KEYS: &[KeySpec] = &[];
/// The key at position 1, read.
const READ_KEY: &[KeySpec] = &[KeySpec::range(READS, 1, 0, 1)];
/// The key at position 1, written.
const WRITE_KEY: &[KeySpec] = &[KeySpec::range(UPDATES, 1, 0, 1)];
/// The key at position 1, written only where absent (HSETNX).
const INSERT_KEY: &[KeySpec] = &[KeySpec::range(
    KeyFlags::RW.union(KeyFlags::INSERT),
    1,
    0,
    1,
)];
/// The key at position 1, from which parts are removed (HDEL).
const DELETE_KEY: &[KeySpec] = &[KeySpec::range(
    KeyFlags::RW.union(KeyFlags::DELETE),
    1,
    0,
    1,
)];
/// EVAL's keys: `numkeys` at position 2, then that many keys, which the script may write.
const SCRIPT_KEYS: &[KeySpec] = &[KeySpec {
    flags: KeyFlags::RW.union(KeyFlags::ACCESS).union(KeyFlags::UPDATE),
    begin_search: BeginSearch::Index(2),
    find_keys: FindKeys::KeyNum {
        key_num_index: 0,
        first_key: 1,
        key_step: 1,
    },
}];
/// EVAL_RO's keys, only read.
const SCRIPT_READ_KEYS: &[KeySpec] = &[KeySpec {
    flags: READS,
    begin_search: BeginSearch::Index(2),
    find_keys: FindKeys::KeyNum {
        key_num_index: 0,
        first_key: 1,
        key_step: 1,
    },
}];
/// Every argument is a key, only looked at (WATCH).
/// SSUBSCRIBE/SUNSUBSCRIBE: shard channel names, declared the way keys are (Redis Cluster
/// routes them by slot) but flagged as not keys.
const SHARD_CHANNELS: &[KeySpec] = &[KeySpec::range(KeyFlags::NOT_KEY, 1, -1, 1)];
/// SPUBLISH's shard channel.
const SHARD_CHANNEL: &[KeySpec] = &[KeySpec::range(KeyFlags::NOT_KEY, 1, 0, 1)];
const WATCH_KEYS: &[KeySpec] = &[KeySpec::range(KeyFlags::RO, 1, -1, 1)];
/// The key at position 1, read without returning user data (HLEN, HEXISTS).
const INSPECT_KEY: &[KeySpec] = &[KeySpec::range(KeyFlags::RO, 1, 0, 1)];
/// The key at position 1, read and then updated (HINCRBY).
const COUNTER_KEY: &[KeySpec] = &[KeySpec::range(UPDATES.union(KeyFlags::ACCESS), 1, 0, 1)];
/// Every argument from position 1, read.
const READ_KEYS: &[KeySpec] = &[KeySpec::range(READS, 1, -1, 1)];
/// Every argument from position 1, written.
const WRITE_KEYS: &[KeySpec] = &[KeySpec::range(UPDATES, 1, -1, 1)];
/// The keys of `key value [key value ...]`, written.
const WRITE_PAIRS: &[KeySpec] = &[KeySpec::range(UPDATES, 1, -1, 2)];
/// The keys at positions 1 and 2 (source and destination), written.
const WRITE_TWO_KEYS: &[KeySpec] = &[KeySpec::range(UPDATES, 1, 1, 1)];

/// What a blocking pop does to the keys it pops from.
const POPPED: KeyFlags = KeyFlags::RW.union(KeyFlags::ACCESS).union(KeyFlags::DELETE);
/// BLPOP, BZPOPMIN...: every argument from position 1 but the last (the timeout), popped.
const BLOCKING_POP_KEYS: &[KeySpec] = &[KeySpec::range(POPPED, 1, -2, 1)];
/// BLMPOP, BZMPOP: `numkeys` at position 2, the keys after it, popped.
const BLOCKING_MPOP_KEYS: &[KeySpec] = &[KeySpec {
    flags: POPPED,
    begin_search: BeginSearch::Index(2),
    find_keys: FindKeys::KeyNum {
        key_num_index: 0,
        first_key: 1,
        key_step: 1,
    },
}];
/// The key at position 1, whose elements are returned and removed (LPOP, RPOP, SPOP, ZPOPMIN,
/// ZREMRANGEBYRANK).
const POP_KEY: &[KeySpec] = &[KeySpec::range(
    KeyFlags::RW.union(KeyFlags::ACCESS).union(KeyFlags::DELETE),
    1,
    0,
    1,
)];
/// ZUNIONSTORE, ZINTERSTORE, ZDIFFSTORE: the destination at 1, `numkeys` at 2, then the
/// keys, read.
const STORE_NUMKEYS: &[KeySpec] = &[
    KeySpec::range(KeyFlags::OW.union(KeyFlags::UPDATE), 1, 0, 1),
    KeySpec {
        flags: KeyFlags::RO.union(KeyFlags::ACCESS),
        begin_search: BeginSearch::Index(2),
        find_keys: FindKeys::KeyNum {
            key_num_index: 0,
            first_key: 1,
            key_step: 1,
        },
    },
];
/// ZRANGESTORE: the destination at 1, the source at 2.
const STORE_FROM_KEY: &[KeySpec] = &[
    KeySpec::range(KeyFlags::OW.union(KeyFlags::UPDATE), 1, 0, 1),
    KeySpec::range(KeyFlags::RO.union(KeyFlags::ACCESS), 2, 0, 1),
];
/// A source at position 1 that loses an element and a destination at position 2 that
/// gains it (LMOVE, RPOPLPUSH, SMOVE).
const MOVE_KEYS: &[KeySpec] = &[
    KeySpec::range(
        KeyFlags::RW.union(KeyFlags::ACCESS).union(KeyFlags::DELETE),
        1,
        0,
        1,
    ),
    KeySpec::range(KeyFlags::RW.union(KeyFlags::INSERT), 2, 0, 1),
];
/// `numkeys key [key ...]` from position 1, popped from (LMPOP, ZMPOP).
const POP_NUMKEYS: &[KeySpec] = &[KeySpec {
    flags: KeyFlags::RW.union(KeyFlags::ACCESS).union(KeyFlags::DELETE),
    begin_search: BeginSearch::Index(1),
    find_keys: FindKeys::KeyNum {
        key_num_index: 0,
        first_key: 1,
        key_step: 1,
    },
}];
/// A destination at position 1, overwritten, computed from every key after it (SINTERSTORE).
const STORE_KEYS: &[KeySpec] = &[
    KeySpec::range(KeyFlags::OW.union(KeyFlags::UPDATE), 1, 0, 1),
    KeySpec::range(READS, 2, -1, 1),
];
/// `numkeys key [key ...]` from position 1, read (SINTERCARD, ZUNION, ZINTER, ZDIFF,
/// ZINTERCARD).
const READ_NUMKEYS: &[KeySpec] = &[KeySpec {
    flags: READS,
    begin_search: super::BeginSearch::Index(1),
    find_keys: super::FindKeys::KeyNum {
        key_num_index: 0,
        first_key: 1,
        key_step: 1,
    },
}];

/// The key at position 2, inspected (OBJECT's subcommands).
const OBJECT_KEY: &[KeySpec] = &[KeySpec::range(KeyFlags::RO, 2, 0, 1)];

/// Subcommands of OBJECT.
#[rustfmt::skip]
static OBJECT_SUBCOMMANDS: [CommandSpec; 4] = [
    CommandSpec::new("object|encoding", 3, flags![READONLY], OBJECT_KEY, GENERIC, "2.2.3", "O(1)", NOTHING,
        "Name the internal encoding of a key's value",
        "key"),
    CommandSpec::new("object|refcount", 3, flags![READONLY], OBJECT_KEY, GENERIC, "2.2.3", "O(1)", NOTHING,
        "Count the references to a key's value",
        "key"),
    CommandSpec::new("object|freq", 3, flags![READONLY], OBJECT_KEY, GENERIC, "4.0.0", "O(1)", NOTHING,
        "Access frequency of a key (only under an LFU eviction policy)",
        "key"),
    CommandSpec::new("object|help", 2, flags![LOADING, STALE], NO_KEYS, GENERIC, "6.2.0", "O(1)", NOTHING,
        "List the OBJECT subcommands",
        ""),
];

/// Subcommands of CLIENT.
#[rustfmt::skip]
static CLIENT_SUBCOMMANDS: [CommandSpec; 13] = [
    CommandSpec::new("client|id", 2, flags![NOSCRIPT, LOADING, STALE], NO_KEYS, CONNECTION, "5.0.0", "O(1)", NOTHING,
        "Show this connection's numeric id",
        ""),
    CommandSpec::new("client|setname", 3, flags![NOSCRIPT, LOADING, STALE], NO_KEYS, CONNECTION, "2.6.9", "O(1)", NOTHING,
        "Give this connection a name (empty to clear it)",
        "connection-name"),
    CommandSpec::new("client|getname", 2, flags![NOSCRIPT, LOADING, STALE], NO_KEYS, CONNECTION, "2.6.9", "O(1)", NOTHING,
        "Show this connection's name",
        ""),
    CommandSpec::new("client|list", -2, flags![ADMIN, NOSCRIPT, LOADING, STALE], NO_KEYS, CONNECTION, "2.4.0", "O(N) where N is the number of client connections", NOTHING,
        "Describe the connected clients, one line each",
        "[TYPE NORMAL | MASTER | REPLICA | PUBSUB] [ID client-id [client-id ...]]"),
    CommandSpec::new("client|info", 2, flags![NOSCRIPT, LOADING, STALE], NO_KEYS, CONNECTION, "6.2.0", "O(1)", NOTHING,
        "Describe this connection in one line",
        ""),
    CommandSpec::new("client|setinfo", 4, flags![NOSCRIPT, LOADING, STALE], NO_KEYS, CONNECTION, "7.2.0", "O(1)", NOTHING,
        "Record the name or version of the client library",
        "LIB-NAME libname | LIB-VER libver"),
    CommandSpec::new("client|help", 2, flags![LOADING, STALE], NO_KEYS, CONNECTION, "5.0.0", "O(1)", NOTHING,
        "List the CLIENT subcommands",
        ""),
    CommandSpec::new("client|kill", -3, flags![ADMIN, NOSCRIPT, LOADING, STALE], NO_KEYS, CONNECTION, "2.4.0", "O(N) where N is the number of client connections", NOTHING,
        "Disconnect the clients that match a filter (or one address)",
        "addr | [ID client-id] [TYPE NORMAL | MASTER | SLAVE | REPLICA | PUBSUB] [USER username] [ADDR addr] [LADDR laddr] [SKIPME YES | NO] [MAXAGE maxage]"),
    CommandSpec::new("client|unblock", -3, flags![ADMIN, NOSCRIPT, LOADING, STALE], NO_KEYS, CONNECTION, "5.0.0", "O(log N) where N is the number of client connections", NOTHING,
        "End another client's blocking command, as a timeout or with an error",
        "client-id [TIMEOUT | ERROR]"),
    CommandSpec::new("client|tracking", -3, flags![NOSCRIPT, LOADING, STALE], NO_KEYS, CONNECTION, "6.0.0", "O(1). Some options may introduce additional complexity.", NOTHING,
        "Be told when keys this client may have cached change (client-side caching)",
        "ON | OFF [REDIRECT client-id] [PREFIX prefix [PREFIX prefix ...]] [BCAST] [OPTIN] [OPTOUT] [NOLOOP]"),
    CommandSpec::new("client|caching", 3, flags![NOSCRIPT, LOADING, STALE], NO_KEYS, CONNECTION, "6.0.0", "O(1)", NOTHING,
        "Choose whether the next command's keys are tracked (OPTIN / OPTOUT modes)",
        "YES | NO"),
    CommandSpec::new("client|getredir", 2, flags![NOSCRIPT, LOADING, STALE], NO_KEYS, CONNECTION, "6.0.0", "O(1)", NOTHING,
        "Show which client receives this connection's invalidations",
        ""),
    CommandSpec::new("client|trackinginfo", 2, flags![NOSCRIPT, LOADING, STALE], NO_KEYS, CONNECTION, "6.2.0", "O(1)", NOTHING,
        "Describe this connection's client-side caching mode",
        ""),
];

/// Subcommands of COMMAND.
#[rustfmt::skip]
static COMMAND_SUBCOMMANDS: [CommandSpec; 6] = [
    CommandSpec::new("command|count", 2, flags![LOADING, STALE], NO_KEYS, SERVER, "2.8.13", "O(1)", NOTHING,
        "Count the commands the server implements",
        ""),
    CommandSpec::new("command|info", -2, flags![LOADING, STALE], NO_KEYS, SERVER, "2.8.13", "O(N) where N is the number of commands to look up", NOTHING,
        "Describe commands: arity, flags, key positions, ACL categories",
        "[command-name [command-name ...]]"),
    CommandSpec::new("command|docs", -2, flags![LOADING, STALE], NO_KEYS, SERVER, "7.0.0", "O(N) where N is the number of commands to look up", NOTHING,
        "Document commands: summary, version, group, arguments",
        "[command-name [command-name ...]]"),
    CommandSpec::new("command|list", -2, flags![LOADING, STALE], NO_KEYS, SERVER, "7.0.0", "O(N) where N is the total number of Redis commands", NOTHING,
        "List command names, optionally filtered",
        "[FILTERBY MODULE module-name | ACLCAT category | PATTERN pattern]"),
    CommandSpec::new("command|getkeys", -3, flags![LOADING, STALE], NO_KEYS, SERVER, "2.8.13", "O(N) where N is the number of arguments to the command", NOTHING,
        "Show which arguments of a command line are keys",
        "command [arg [arg ...]]"),
    CommandSpec::new("command|help", 2, flags![LOADING, STALE], NO_KEYS, SERVER, "5.0.0", "O(1)", NOTHING,
        "List the COMMAND subcommands",
        ""),
];

/// Subcommands of CONFIG.
#[rustfmt::skip]
static CONFIG_SUBCOMMANDS: [CommandSpec; 5] = [
    CommandSpec::new("config|get", -3, flags![ADMIN, NOSCRIPT, LOADING, STALE], NO_KEYS, SERVER, "2.0.0", "O(N) when N is the number of configuration parameters provided", NOTHING,
        "Read the settings whose names match the patterns",
        "parameter [parameter ...]"),
    CommandSpec::new("config|set", -4, flags![ADMIN, NOSCRIPT, LOADING, STALE], NO_KEYS, SERVER, "2.0.0", "O(N) when N is the number of configuration parameters provided", NOTHING,
        "Change settings while the server runs, all or none",
        "parameter value [parameter value ...]"),
    CommandSpec::new("config|resetstat", 2, flags![ADMIN, NOSCRIPT, LOADING, STALE], NO_KEYS, SERVER, "2.0.0", "O(1)", NOTHING,
        "Zero the counters that INFO reports",
        ""),
    CommandSpec::new("config|rewrite", 2, flags![ADMIN, NOSCRIPT, LOADING, STALE], NO_KEYS, SERVER, "2.8.0", "O(1)", NOTHING,
        "Write the running settings to the configuration file",
        ""),
    CommandSpec::new("config|help", 2, flags![LOADING, STALE], NO_KEYS, SERVER, "5.0.0", "O(1)", NOTHING,
        "List the CONFIG subcommands",
        ""),
];

#[rustfmt::skip]
static ACL_SUBCOMMANDS: [CommandSpec; 13] = [
    CommandSpec::new("acl|cat", -2, flags![NOSCRIPT, LOADING, STALE], NO_KEYS, SERVER, "6.0.0", "O(1) since the categories and commands are a fixed set.", NOTHING,
        "List the ACL categories, or the commands of one",
        "[category]"),
    CommandSpec::new("acl|deluser", -3, flags![ADMIN, NOSCRIPT, LOADING, STALE], NO_KEYS, SERVER, "6.0.0", "O(1) amortized time considering the typical user.", NOTHING,
        "Delete users and disconnect their clients",
        "username [username ...]"),
    CommandSpec::new("acl|dryrun", -4, flags![ADMIN, NOSCRIPT, LOADING, STALE], NO_KEYS, SERVER, "7.0.0", "O(1).", NOTHING,
        "Tell whether a user could run a command, without running it",
        "username command [arg [arg ...]]"),
    CommandSpec::new("acl|genpass", -2, flags![NOSCRIPT, LOADING, STALE], NO_KEYS, SERVER, "6.0.0", "O(1)", NOTHING,
        "Make a random password from the operating system's random source",
        "[bits:integer]"),
    CommandSpec::new("acl|getuser", 3, flags![ADMIN, NOSCRIPT, LOADING, STALE], NO_KEYS, SERVER, "6.0.0", "O(N). Where N is the number of password, command and pattern rules that the user has.", NOTHING,
        "Show one user's rules field by field",
        "username"),
    CommandSpec::new("acl|list", 2, flags![ADMIN, NOSCRIPT, LOADING, STALE], NO_KEYS, SERVER, "6.0.0", "O(N). Where N is the number of configured users.", NOTHING,
        "Show every user's rules, one line each, as ACL SETUSER takes them",
        ""),
    CommandSpec::new("acl|load", 2, flags![ADMIN, NOSCRIPT, LOADING, STALE], NO_KEYS, SERVER, "6.0.0", "O(N). Where N is the number of configured users.", NOTHING,
        "Replace every user with those of the ACL file",
        ""),
    CommandSpec::new("acl|log", -2, flags![ADMIN, NOSCRIPT, LOADING, STALE], NO_KEYS, SERVER, "6.0.0", "O(N) with N being the number of entries shown.", NOTHING,
        "Show the latest refused commands, keys, channels and logins, or clear them",
        "[count:integer | RESET]"),
    CommandSpec::new("acl|save", 2, flags![ADMIN, NOSCRIPT, LOADING, STALE], NO_KEYS, SERVER, "6.0.0", "O(N). Where N is the number of configured users.", NOTHING,
        "Write every user to the ACL file",
        ""),
    CommandSpec::new("acl|setuser", -3, flags![ADMIN, NOSCRIPT, LOADING, STALE], NO_KEYS, SERVER, "6.0.0", "O(N). Where N is the number of rules provided.", NOTHING,
        "Create a user or change its rules",
        "username [rule [rule ...]]"),
    CommandSpec::new("acl|users", 2, flags![ADMIN, NOSCRIPT, LOADING, STALE], NO_KEYS, SERVER, "6.0.0", "O(N). Where N is the number of configured users.", NOTHING,
        "List the user names",
        ""),
    CommandSpec::new("acl|whoami", 2, flags![NOSCRIPT, LOADING, STALE], NO_KEYS, SERVER, "6.0.0", "O(1)", NOTHING,
        "Name the user this connection runs as",
        ""),
    CommandSpec::new("acl|help", 2, flags![LOADING, STALE], NO_KEYS, SERVER, "6.0.0", "O(1)", NOTHING,
        "List the ACL subcommands",
        ""),
];

static SCRIPT_SUBCOMMANDS: [CommandSpec; 5] = [
    CommandSpec::new("script|exists", -3, flags![NOSCRIPT], NO_KEYS, SCRIPTING, "2.6.0", "O(N) with N being the number of scripts to check (so checking a single script is an O(1) operation).", NOTHING,
        "Tell which scripts are in the script cache",
        "sha1 [sha1 ...]"),
    CommandSpec::new("script|flush", -2, flags![NOSCRIPT], NO_KEYS, SCRIPTING, "2.6.0", "O(N) with N being the number of scripts in cache", NOTHING,
        "Empty the script cache",
        "[ASYNC | SYNC]"),
    CommandSpec::new("script|kill", 2, flags![NOSCRIPT, ALLOW_BUSY], NO_KEYS, SCRIPTING, "2.6.0", "O(1)", NOTHING,
        "Stop the script running past the busy threshold, if it has not written",
        ""),
    CommandSpec::new("script|load", 3, flags![NOSCRIPT, STALE], NO_KEYS, SCRIPTING, "2.6.0", "O(N) with N being the length in bytes of the script body.", NOTHING,
        "Compile a script and keep it in the cache under its SHA-1",
        "script"),
    CommandSpec::new("script|help", 2, flags![LOADING, STALE], NO_KEYS, SCRIPTING, "5.0.0", "O(1)", NOTHING,
        "List the SCRIPT subcommands",
        ""),
];

static PUBSUB_SUBCOMMANDS: [CommandSpec; 6] = [
    CommandSpec::new("pubsub|channels", -2, flags![PUBSUB, LOADING, STALE], NO_KEYS, PUBSUB, "2.8.0", "O(N) where N is the number of active channels, and assuming constant time pattern matching (relatively short channels and patterns)", NOTHING,
        "List the channels with subscribers, or those matching a pattern",
        "[pattern]"),
    CommandSpec::new("pubsub|numsub", -2, flags![PUBSUB, LOADING, STALE], NO_KEYS, PUBSUB, "2.8.0", "O(N) for the NUMSUB subcommand, where N is the number of requested channels", NOTHING,
        "Count the subscribers of channels",
        "[channel [channel ...]]"),
    CommandSpec::new("pubsub|numpat", 2, flags![PUBSUB, LOADING, STALE], NO_KEYS, PUBSUB, "2.8.0", "O(1)", NOTHING,
        "Count the distinct patterns clients listen to",
        ""),
    CommandSpec::new("pubsub|shardchannels", -2, flags![PUBSUB, LOADING, STALE], NO_KEYS, PUBSUB, "7.0.0", "O(N) where N is the number of active shard channels, and assuming constant time pattern matching (relatively short shard channels).", NOTHING,
        "List the shard channels with subscribers, or those matching a pattern",
        "[pattern]"),
    CommandSpec::new("pubsub|shardnumsub", -2, flags![PUBSUB, LOADING, STALE], NO_KEYS, PUBSUB, "7.0.0", "O(N) for the SHARDNUMSUB subcommand, where N is the number of requested shard channels", NOTHING,
        "Count the subscribers of shard channels",
        "[shardchannel [shardchannel ...]]"),
    CommandSpec::new("pubsub|help", 2, flags![LOADING, STALE], NO_KEYS, PUBSUB, "6.2.0", "O(1)", NOTHING,
        "List the PUBSUB subcommands",
        ""),
];

static FUNCTION_SUBCOMMANDS: [CommandSpec; 9] = [
    CommandSpec::new(
        "function|delete",
        3,
        flags![WRITE, NOSCRIPT],
        NO_KEYS,
        SCRIPTING,
        "7.0.0",
        "O(1)",
        AS_SENT,
        "Delete a function library and its functions",
        "library-name",
    ),
    CommandSpec::new(
        "function|dump",
        2,
        flags![NOSCRIPT],
        NO_KEYS,
        SCRIPTING,
        "7.0.0",
        "O(N) where N is the number of functions",
        NOTHING,
        "Serialize every function library into one payload",
        "",
    ),
    CommandSpec::new(
        "function|flush",
        -2,
        flags![WRITE, NOSCRIPT],
        NO_KEYS,
        SCRIPTING,
        "7.0.0",
        "O(N) where N is the number of functions deleted",
        AS_SENT,
        "Delete every function library",
        "[ASYNC | SYNC]",
    ),
    CommandSpec::new(
        "function|help",
        2,
        flags![LOADING, STALE],
        NO_KEYS,
        SCRIPTING,
        "7.0.0",
        "O(1)",
        NOTHING,
        "List the FUNCTION subcommands",
        "",
    ),
    CommandSpec::new(
        "function|kill",
        2,
        flags![NOSCRIPT, ALLOW_BUSY],
        NO_KEYS,
        SCRIPTING,
        "7.0.0",
        "O(1)",
        NOTHING,
        "Stop the function running past the busy threshold, if it has not written",
        "",
    ),
    CommandSpec::new(
        "function|list",
        -2,
        flags![NOSCRIPT],
        NO_KEYS,
        SCRIPTING,
        "7.0.0",
        "O(N) where N is the number of functions",
        NOTHING,
        "Describe the loaded function libraries",
        "[LIBRARYNAME library-name-pattern] [WITHCODE]",
    ),
    CommandSpec::new(
        "function|load",
        -3,
        flags![WRITE, DENYOOM, NOSCRIPT],
        NO_KEYS,
        SCRIPTING,
        "7.0.0",
        "O(1) (considering compilation time is redundant)",
        AS_SENT,
        "Load a function library from its Lua code",
        "[REPLACE] function-code",
    ),
    CommandSpec::new(
        "function|restore",
        -3,
        flags![WRITE, DENYOOM, NOSCRIPT],
        NO_KEYS,
        SCRIPTING,
        "7.0.0",
        "O(N) where N is the number of functions on the payload",
        AS_SENT,
        "Load the libraries of a FUNCTION DUMP payload",
        "serialized-value [FLUSH | APPEND | REPLACE]",
    ),
    CommandSpec::new(
        "function|stats",
        2,
        flags![NOSCRIPT, ALLOW_BUSY],
        NO_KEYS,
        SCRIPTING,
        "7.0.0",
        "O(1)",
        NOTHING,
        "Report the running function and the loaded libraries and functions",
        "",
    ),
];

/// Every command kvstore implements. An array, not a `&[..]` slice: the server binds its
/// handlers to rows by address at compile time, and a slice static's rows are copied into
/// const-evaluated tables of other crates, so the addresses would differ.
#[rustfmt::skip]
pub static COMMANDS: [CommandSpec; 174] = [
    // Connection.
    CommandSpec::new("ping", -1, flags![FAST], NO_KEYS, CONNECTION, "1.0.0", "O(1)", NOTHING,
        "Check that the server answers: PONG, or the message back",
        "[message]"),
    CommandSpec::new("echo", 2, flags![FAST], NO_KEYS, CONNECTION, "1.0.0", "O(1)", NOTHING,
        "Reply with the message given",
        "message"),
    CommandSpec::new("hello", -1, flags![NOSCRIPT, LOADING, STALE, FAST, NO_AUTH, ALLOW_BUSY], NO_KEYS, CONNECTION, "6.0.0", "O(1)", NOTHING,
        "Choose the protocol version, optionally logging in and naming the connection",
        "[protover [AUTH username password] [SETNAME clientname]]"),
    CommandSpec::new("quit", -1, flags![NOSCRIPT, LOADING, STALE, FAST, NO_AUTH, ALLOW_BUSY], NO_KEYS, CONNECTION, "1.0.0", "O(1)", NOTHING,
        "Close the connection after the reply",
        ""),
    CommandSpec::new("reset", 1, flags![NOSCRIPT, LOADING, STALE, FAST, NO_AUTH, ALLOW_BUSY], NO_KEYS, CONNECTION, "6.2.0", "O(1)", NOTHING,
        "Put the connection back in its initial state",
        ""),
    CommandSpec::new("select", 2, flags![LOADING, STALE, FAST], NO_KEYS, CONNECTION, "1.0.0", "O(1)", NOTHING,
        "Switch the connection to another database",
        "index"),
    CommandSpec::new("auth", -2, flags![NOSCRIPT, LOADING, STALE, FAST, NO_AUTH, ALLOW_BUSY], NO_KEYS, CONNECTION, "1.0.0", "O(N) where N is the number of passwords defined for the user", NOTHING,
        "Log the connection in as a user",
        "[username] password"),
    CommandSpec::container("client", -2, CONNECTION, "2.4.0",
        "Inspect and name client connections",
        &CLIENT_SUBCOMMANDS),
    // Server.
    CommandSpec::container("command", -1, SERVER, "2.8.13",
        "Describe every command the server implements",
        &COMMAND_SUBCOMMANDS),
    CommandSpec::container("acl", -2, SERVER, "6.0.0",
        "Manage users and their permissions",
        &ACL_SUBCOMMANDS),
    CommandSpec::container("config", -2, SERVER, "2.0.0",
        "Read and change server settings",
        &CONFIG_SUBCOMMANDS),
    CommandSpec::new("info", -1, flags![LOADING, STALE], NO_KEYS, SERVER, "1.0.0", "O(1)", NOTHING,
        "Report the server's state and statistics, by section",
        "[section [section ...]]"),
    CommandSpec::new("dbsize", 1, flags![READONLY, FAST], NO_KEYS, SERVER, "1.0.0", "O(1)", NOTHING,
        "Count the keys in the current database",
        ""),
    CommandSpec::new("flushdb", -1, flags![WRITE], NO_KEYS, SERVER, "1.0.0", "O(N) where N is the number of keys in the selected database", REWRITTEN,
        "Delete every key of the current database",
        "[ASYNC | SYNC]"),
    CommandSpec::new("flushall", -1, flags![WRITE], NO_KEYS, SERVER, "1.0.0", "O(N) where N is the total number of keys in all databases", REWRITTEN,
        "Delete every key of every database",
        "[ASYNC | SYNC]"),
    CommandSpec::new("save", 1, flags![ADMIN, NOSCRIPT, NO_ASYNC_LOADING, NO_MULTI], NO_KEYS, SERVER, "1.0.0", "O(N) where N is the total number of keys in all databases", NOTHING,
        "Write a snapshot to disk, then reply",
        ""),
    CommandSpec::new("bgsave", -1, flags![ADMIN, NOSCRIPT, NO_ASYNC_LOADING], NO_KEYS, SERVER, "1.0.0", "O(1)", NOTHING,
        "Write a snapshot to disk in the background",
        "[SCHEDULE]"),
    CommandSpec::new("lastsave", 1, flags![LOADING, STALE, FAST], NO_KEYS, SERVER, "1.0.0", "O(1)", NOTHING,
        "When the last snapshot succeeded, in Unix seconds",
        ""),
    CommandSpec::new("bgrewriteaof", 1, flags![ADMIN, NOSCRIPT, NO_ASYNC_LOADING], NO_KEYS, SERVER, "1.0.0", "O(1)", NOTHING,
        "Compact the append-only file in the background",
        ""),
    CommandSpec::new("time", 1, flags![LOADING, STALE, FAST], NO_KEYS, SERVER, "2.6.0", "O(1)", NOTHING,
        "The server's clock: Unix seconds and microseconds",
        ""),
    // Strings.
    CommandSpec::new("get", 2, flags![READONLY, FAST], READ_KEY, STRING, "1.0.0", "O(1)", NOTHING,
        "Read the string stored at a key",
        "key"),
    CommandSpec::new("set", -3, flags![WRITE, DENYOOM], WRITE_KEY, STRING, "1.0.0", "O(1)", REWRITTEN,
        "Store a string at a key, with optional expiry and conditions",
        "key value [NX | XX] [GET] [EX seconds | PX milliseconds | EXAT unix-time-seconds | PXAT unix-time-milliseconds | KEEPTTL]"),
    CommandSpec::new("setnx", 3, flags![WRITE, DENYOOM, FAST], WRITE_KEY, STRING, "1.0.0", "O(1)", REWRITTEN,
        "Store a string only if the key does not exist",
        "key value"),
    CommandSpec::new("setex", 4, flags![WRITE, DENYOOM], WRITE_KEY, STRING, "2.0.0", "O(1)", REWRITTEN,
        "Store a string that expires after some seconds",
        "key seconds value"),
    CommandSpec::new("psetex", 4, flags![WRITE, DENYOOM], WRITE_KEY, STRING, "2.6.0", "O(1)", REWRITTEN,
        "Store a string that expires after some milliseconds",
        "key milliseconds value"),
    CommandSpec::new("mget", -2, flags![READONLY, FAST], READ_KEYS, STRING, "1.0.0", "O(N) where N is the number of keys to retrieve.", NOTHING,
        "Read several keys at once, as one consistent view",
        "key [key ...]"),
    CommandSpec::new("mset", -3, flags![WRITE, DENYOOM], WRITE_PAIRS, STRING, "1.0.1", "O(N) where N is the number of keys to set.", AS_SENT,
        "Store several strings in one atomic step",
        "key value [key value ...]"),
    CommandSpec::new("msetnx", -3, flags![WRITE, DENYOOM], WRITE_PAIRS, STRING, "1.0.1", "O(N) where N is the number of keys to set.", REWRITTEN,
        "Store several strings, only if none of the keys exists",
        "key value [key value ...]"),
    CommandSpec::new("getset", 3, flags![WRITE, DENYOOM, FAST], WRITE_KEY, STRING, "1.0.0", "O(1)", REWRITTEN,
        "Store a string and return the one it replaced",
        "key value"),
    CommandSpec::new("getdel", 2, flags![WRITE, FAST], WRITE_KEY, STRING, "6.2.0", "O(1)", REWRITTEN,
        "Return a string and delete its key",
        "key"),
    CommandSpec::new("getex", -2, flags![WRITE, FAST], WRITE_KEY, STRING, "6.2.0", "O(1)", REWRITTEN,
        "Return a string and change or drop its expiry",
        "key [EX seconds | PX milliseconds | EXAT unix-time-seconds | PXAT unix-time-milliseconds | PERSIST]"),
    CommandSpec::new("append", 3, flags![WRITE, DENYOOM, FAST], WRITE_KEY, STRING, "2.0.0", "O(1). The amortized time complexity is O(1) assuming the appended value is small and the already present value is of any size, since the dynamic string library used by Redis will double the free space available on every reallocation.", AS_SENT,
        "Add bytes to the end of a string; replies with its new length",
        "key value"),
    CommandSpec::new("strlen", 2, flags![READONLY, FAST], READ_KEY, STRING, "2.2.0", "O(1)", NOTHING,
        "Length in bytes of the string at a key",
        "key"),
    CommandSpec::new("getrange", 4, flags![READONLY], READ_KEY, STRING, "2.4.0", "O(N) where N is the length of the returned string.", NOTHING,
        "Read the bytes of a string between two offsets",
        "key start end"),
    CommandSpec::new("setrange", 4, flags![WRITE, DENYOOM], WRITE_KEY, STRING, "2.2.0", "O(1), not counting the time taken to copy the new string in place.", AS_SENT,
        "Overwrite a string from an offset, padding with zero bytes",
        "key offset value"),
    CommandSpec::new("incr", 2, flags![WRITE, DENYOOM, FAST], WRITE_KEY, STRING, "1.0.0", "O(1)", REWRITTEN,
        "Add one to the integer at a key (a missing key counts as 0)",
        "key"),
    CommandSpec::new("decr", 2, flags![WRITE, DENYOOM, FAST], WRITE_KEY, STRING, "1.0.0", "O(1)", REWRITTEN,
        "Subtract one from the integer at a key (a missing key counts as 0)",
        "key"),
    CommandSpec::new("incrby", 3, flags![WRITE, DENYOOM, FAST], WRITE_KEY, STRING, "1.0.0", "O(1)", REWRITTEN,
        "Add an integer to the integer at a key",
        "key increment:integer"),
    CommandSpec::new("decrby", 3, flags![WRITE, DENYOOM, FAST], WRITE_KEY, STRING, "1.0.0", "O(1)", REWRITTEN,
        "Subtract an integer from the integer at a key",
        "key decrement"),
    CommandSpec::new("incrbyfloat", 3, flags![WRITE, DENYOOM, FAST], WRITE_KEY, STRING, "2.6.0", "O(1)", REWRITTEN,
        "Add a decimal number to the number at a key",
        "key increment"),
    // Keys.
    CommandSpec::new("del", -2, flags![WRITE], WRITE_KEYS, GENERIC, "1.0.0", "O(N) where N is the number of keys that will be removed.", AS_SENT,
        "Delete keys; replies with how many existed",
        "key [key ...]"),
    CommandSpec::new("unlink", -2, flags![WRITE, FAST], WRITE_KEYS, GENERIC, "4.0.0", "O(1) for each key removed regardless of its size.", REWRITTEN,
        "Delete keys, as DEL does",
        "key [key ...]"),
    CommandSpec::new("exists", -2, flags![READONLY, FAST], READ_KEYS, GENERIC, "1.0.0", "O(N) where N is the number of keys to check.", NOTHING,
        "Count how many of the keys named exist",
        "key [key ...]"),
    CommandSpec::new("type", 2, flags![READONLY, FAST], READ_KEY, GENERIC, "1.0.0", "O(1)", NOTHING,
        "Name the type of the value at a key",
        "key"),
    CommandSpec::new("keys", 2, flags![READONLY], NO_KEYS, GENERIC, "1.0.0", "O(N) with N being the number of keys in the database", NOTHING,
        "List every key matching a glob pattern",
        "pattern"),
    CommandSpec::new("scan", -2, flags![READONLY], NO_KEYS, GENERIC, "2.8.0", "O(1) for every call. O(N) for a complete iteration.", NOTHING,
        "Walk the keyspace a batch at a time, resuming from a cursor",
        "cursor [MATCH pattern] [COUNT count] [TYPE type]"),
    CommandSpec::new("rename", 3, flags![WRITE], WRITE_TWO_KEYS, GENERIC, "1.0.0", "O(1)", AS_SENT,
        "Move a key to a new name, replacing what was there",
        "key newkey"),
    CommandSpec::new("renamenx", 3, flags![WRITE, FAST], WRITE_TWO_KEYS, GENERIC, "1.0.0", "O(1)", REWRITTEN,
        "Move a key to a new name only if that name is free",
        "key newkey"),
    CommandSpec::new("copy", -3, flags![WRITE, DENYOOM], WRITE_TWO_KEYS, GENERIC, "6.2.0", "O(N) worst case for collections, where N is the number of nested items. O(1) for string values.", REWRITTEN,
        "Duplicate a key's value and expiry under another name",
        "source destination [DB destination-db] [REPLACE]"),
    CommandSpec::new("touch", -2, flags![READONLY, FAST], READ_KEYS, GENERIC, "3.2.1", "O(N) where N is the number of keys that will be touched.", NOTHING,
        "Count how many of the keys named exist, as an access to each",
        "key [key ...]"),
    CommandSpec::new("randomkey", 1, flags![READONLY], NO_KEYS, GENERIC, "1.0.0", "O(1)", NOTHING,
        "Pick a key at random",
        ""),
    // Expiry.
    CommandSpec::container("object", -2, GENERIC, "2.2.3",
        "Inspect how a key's value is stored",
        &OBJECT_SUBCOMMANDS),
    CommandSpec::new("expire", -3, flags![WRITE, FAST], WRITE_KEY, GENERIC, "1.0.0", "O(1)", REWRITTEN,
        "Make a key expire after some seconds",
        "key seconds [NX | XX | GT | LT]"),
    CommandSpec::new("pexpire", -3, flags![WRITE, FAST], WRITE_KEY, GENERIC, "2.6.0", "O(1)", REWRITTEN,
        "Make a key expire after some milliseconds",
        "key milliseconds [NX | XX | GT | LT]"),
    CommandSpec::new("expireat", -3, flags![WRITE, FAST], WRITE_KEY, GENERIC, "1.2.0", "O(1)", REWRITTEN,
        "Make a key expire at a Unix time in seconds",
        "key unix-time-seconds [NX | XX | GT | LT]"),
    CommandSpec::new("pexpireat", -3, flags![WRITE, FAST], WRITE_KEY, GENERIC, "2.6.0", "O(1)", REWRITTEN,
        "Make a key expire at a Unix time in milliseconds",
        "key unix-time-milliseconds [NX | XX | GT | LT]"),
    CommandSpec::new("ttl", 2, flags![READONLY, FAST], READ_KEY, GENERIC, "1.0.0", "O(1)", NOTHING,
        "Seconds left before a key expires",
        "key"),
    CommandSpec::new("pttl", 2, flags![READONLY, FAST], READ_KEY, GENERIC, "2.6.0", "O(1)", NOTHING,
        "Milliseconds left before a key expires",
        "key"),
    CommandSpec::new("expiretime", 2, flags![READONLY, FAST], READ_KEY, GENERIC, "7.0.0", "O(1)", NOTHING,
        "The Unix time in seconds at which a key expires",
        "key"),
    CommandSpec::new("pexpiretime", 2, flags![READONLY, FAST], READ_KEY, GENERIC, "7.0.0", "O(1)", NOTHING,
        "The Unix time in milliseconds at which a key expires",
        "key"),
    CommandSpec::new("persist", 2, flags![WRITE, FAST], WRITE_KEY, GENERIC, "2.2.0", "O(1)", AS_SENT,
        "Remove a key's expiry so that it lasts until deleted",
        "key"),
    // Hashes.
    CommandSpec::new("hset", -4, flags![WRITE, DENYOOM, FAST], WRITE_KEY, HASH, "2.0.0", "O(1) for each field/value pair added, so O(N) to add N field/value pairs when the command is called with multiple field/value pairs.", AS_SENT,
        "Set fields of a hash; replies with how many were new",
        "key field value [field value ...]"),
    CommandSpec::new("hsetnx", 4, flags![WRITE, DENYOOM, FAST], INSERT_KEY, HASH, "2.0.0", "O(1)", AS_SENT,
        "Set a hash field only if it does not exist yet",
        "key field value"),
    CommandSpec::new("hget", 3, flags![READONLY, FAST], READ_KEY, HASH, "2.0.0", "O(1)", NOTHING,
        "Read the value of one hash field",
        "key field"),
    CommandSpec::new("hmget", -3, flags![READONLY, FAST], READ_KEY, HASH, "2.0.0", "O(N) where N is the number of fields being requested.", NOTHING,
        "Read the values of several hash fields",
        "key field [field ...]"),
    CommandSpec::new("hmset", -4, flags![WRITE, DENYOOM, FAST], WRITE_KEY, HASH, "2.0.0", "O(N) where N is the number of fields being set.", REWRITTEN,
        "Set fields of a hash, as HSET does, replying OK",
        "key field value [field value ...]"),
    CommandSpec::new("hdel", -3, flags![WRITE, FAST], DELETE_KEY, HASH, "2.0.0", "O(N) where N is the number of fields to be removed.", AS_SENT,
        "Remove fields from a hash; replies with how many existed",
        "key field [field ...]"),
    CommandSpec::new("hlen", 2, flags![READONLY, FAST], INSPECT_KEY, HASH, "2.0.0", "O(1)", NOTHING,
        "Count the fields of a hash",
        "key"),
    CommandSpec::new("hstrlen", 3, flags![READONLY, FAST], INSPECT_KEY, HASH, "3.2.0", "O(1)", NOTHING,
        "Length in bytes of the value of a hash field",
        "key field"),
    CommandSpec::new("hexists", 3, flags![READONLY, FAST], INSPECT_KEY, HASH, "2.0.0", "O(1)", NOTHING,
        "Tell whether a hash has a field",
        "key field"),
    CommandSpec::new("hkeys", 2, flags![READONLY], READ_KEY, HASH, "2.0.0", "O(N) where N is the size of the hash.", NOTHING,
        "List the fields of a hash",
        "key"),
    CommandSpec::new("hvals", 2, flags![READONLY], READ_KEY, HASH, "2.0.0", "O(N) where N is the size of the hash.", NOTHING,
        "List the values of a hash",
        "key"),
    CommandSpec::new("hgetall", 2, flags![READONLY], READ_KEY, HASH, "2.0.0", "O(N) where N is the size of the hash.", NOTHING,
        "Read every field of a hash with its value",
        "key"),
    CommandSpec::new("hincrby", 4, flags![WRITE, DENYOOM, FAST], COUNTER_KEY, HASH, "2.0.0", "O(1)", AS_SENT,
        "Add an integer to the integer in a hash field",
        "key field increment:integer"),
    CommandSpec::new("hincrbyfloat", 4, flags![WRITE, DENYOOM, FAST], COUNTER_KEY, HASH, "2.6.0", "O(1)", REWRITTEN,
        "Add a decimal number to the number in a hash field",
        "key field increment"),
    CommandSpec::new("hrandfield", -2, flags![READONLY], READ_KEY, HASH, "6.2.0", "O(N) where N is the number of fields returned", NOTHING,
        "Pick random fields of a hash, optionally with their values",
        "key [count [WITHVALUES]]"),
    CommandSpec::new("hscan", -3, flags![READONLY], READ_KEY, HASH, "2.8.0", "O(1) for every call. O(N) for a complete iteration, including enough command calls for the cursor to return back to 0. N is the number of elements inside the collection.", NOTHING,
        "Walk the fields of a hash a batch at a time, resuming from a cursor",
        "key cursor [MATCH pattern] [COUNT count]"),
    // Lists.
    CommandSpec::new("lpush", -3, flags![WRITE, DENYOOM, FAST], INSERT_KEY, LIST, "1.0.0", "O(1) for each element added, so O(N) to add N elements when the command is called with multiple arguments.", AS_SENT,
        "Insert elements at the head of a list; replies with its new length",
        "key element [element ...]"),
    CommandSpec::new("rpush", -3, flags![WRITE, DENYOOM, FAST], INSERT_KEY, LIST, "1.0.0", "O(1) for each element added, so O(N) to add N elements when the command is called with multiple arguments.", AS_SENT,
        "Append elements at the tail of a list; replies with its new length",
        "key element [element ...]"),
    CommandSpec::new("lpushx", -3, flags![WRITE, DENYOOM, FAST], INSERT_KEY, LIST, "2.2.0", "O(1) for each element added, so O(N) to add N elements when the command is called with multiple arguments.", AS_SENT,
        "LPUSH only onto a list that already exists",
        "key element [element ...]"),
    CommandSpec::new("rpushx", -3, flags![WRITE, DENYOOM, FAST], INSERT_KEY, LIST, "2.2.0", "O(1) for each element added, so O(N) to add N elements when the command is called with multiple arguments.", AS_SENT,
        "RPUSH only onto a list that already exists",
        "key element [element ...]"),
    CommandSpec::new("lpop", -2, flags![WRITE, FAST], POP_KEY, LIST, "1.0.0", "O(N) where N is the number of elements returned", AS_SENT,
        "Remove and return elements from the head of a list",
        "key [count]"),
    CommandSpec::new("rpop", -2, flags![WRITE, FAST], POP_KEY, LIST, "1.0.0", "O(N) where N is the number of elements returned", AS_SENT,
        "Remove and return elements from the tail of a list",
        "key [count]"),
    CommandSpec::new("llen", 2, flags![READONLY, FAST], INSPECT_KEY, LIST, "1.0.0", "O(1)", NOTHING,
        "Count the elements of a list",
        "key"),
    CommandSpec::new("lrange", 4, flags![READONLY], READ_KEY, LIST, "1.0.0", "O(S+N) where S is the distance of start offset from HEAD for small lists, from nearest end (HEAD or TAIL) for large lists; and N is the number of elements in the specified range.", NOTHING,
        "Read the elements of a list between two indexes",
        "key start:integer stop:integer"),
    CommandSpec::new("lindex", 3, flags![READONLY], READ_KEY, LIST, "1.0.0", "O(N) where N is the number of elements to traverse to get to the element at index. This makes asking for the first or the last element of the list O(1).", NOTHING,
        "Read the element of a list at an index",
        "key index:integer"),
    CommandSpec::new("lset", 4, flags![WRITE, DENYOOM], WRITE_KEY, LIST, "1.0.0", "O(N) where N is the length of the list. Setting either the first or the last element of the list is O(1).", AS_SENT,
        "Replace the element of a list at an index",
        "key index:integer element"),
    CommandSpec::new("linsert", 5, flags![WRITE, DENYOOM], INSERT_KEY, LIST, "2.2.0", "O(N) where N is the number of elements to traverse before seeing the value pivot. This means that inserting somewhere on the left end on the list (head) can be considered O(1) and inserting somewhere on the right end (tail) is O(N).", AS_SENT,
        "Insert an element before or after the first occurrence of a pivot",
        "key <BEFORE | AFTER> pivot element"),
    CommandSpec::new("lrem", 4, flags![WRITE], DELETE_KEY, LIST, "1.0.0", "O(N+M) where N is the length of the list and M is the number of elements removed.", AS_SENT,
        "Remove occurrences of an element from a list; replies with how many",
        "key count:integer element"),
    CommandSpec::new("ltrim", 4, flags![WRITE], DELETE_KEY, LIST, "1.0.0", "O(N) where N is the number of elements to be removed by the operation.", AS_SENT,
        "Keep only the elements of a list between two indexes",
        "key start:integer stop:integer"),
    CommandSpec::new("lpos", -3, flags![READONLY], READ_KEY, LIST, "6.0.6", "O(N) where N is the number of elements in the list, for the average case. When searching for elements near the head or the tail of the list, or when the MAXLEN option is provided, the command may run in constant time.", NOTHING,
        "Find the indexes of an element in a list",
        "key element [RANK rank:integer] [COUNT num-matches:integer] [MAXLEN len:integer]"),
    CommandSpec::new("lmove", 5, flags![WRITE, DENYOOM], MOVE_KEYS, LIST, "6.2.0", "O(1)", AS_SENT,
        "Pop an element from one end of a list and push it onto an end of another",
        "source destination <LEFT | RIGHT> <LEFT | RIGHT>"),
    CommandSpec::new("rpoplpush", 3, flags![WRITE, DENYOOM], MOVE_KEYS, LIST, "1.2.0", "O(1)", AS_SENT,
        "Pop the tail of a list and push it onto the head of another (LMOVE RIGHT LEFT)",
        "source destination"),
    CommandSpec::new("lmpop", -4, flags![WRITE], POP_NUMKEYS, LIST, "7.0.0", "O(N+M) where N is the number of provided keys and M is the number of elements returned.", REWRITTEN,
        "Pop elements from the first non-empty list among several keys",
        "numkeys key [key ...] <LEFT | RIGHT> [COUNT count]"),
    // (end of lists)
    // Sets.
    CommandSpec::new("sadd", -3, flags![WRITE, DENYOOM, FAST], INSERT_KEY, SET, "1.0.0", "O(1) for each element added, so O(N) to add N elements when the command is called with multiple arguments.", AS_SENT,
        "Add members to a set; replies with how many were new",
        "key member [member ...]"),
    CommandSpec::new("srem", -3, flags![WRITE, FAST], DELETE_KEY, SET, "1.0.0", "O(N) where N is the number of members to be removed.", AS_SENT,
        "Remove members from a set; replies with how many were there",
        "key member [member ...]"),
    CommandSpec::new("scard", 2, flags![READONLY, FAST], INSPECT_KEY, SET, "1.0.0", "O(1)", NOTHING,
        "Count the members of a set",
        "key"),
    CommandSpec::new("sismember", 3, flags![READONLY, FAST], INSPECT_KEY, SET, "1.0.0", "O(1)", NOTHING,
        "Tell whether a set has a member",
        "key member"),
    CommandSpec::new("smismember", -3, flags![READONLY, FAST], INSPECT_KEY, SET, "6.2.0", "O(N) where N is the number of elements being checked for membership", NOTHING,
        "Tell, for each of several members, whether a set has it",
        "key member [member ...]"),
    CommandSpec::new("smembers", 2, flags![READONLY], READ_KEY, SET, "1.0.0", "O(N) where N is the set cardinality.", NOTHING,
        "List every member of a set",
        "key"),
    CommandSpec::new("srandmember", -2, flags![READONLY], READ_KEY, SET, "1.0.0", "Without the count argument O(1), otherwise O(N) where N is the absolute value of the passed count.", NOTHING,
        "Pick random members of a set without removing them",
        "key [count]"),
    CommandSpec::new("spop", -2, flags![WRITE, FAST], POP_KEY, SET, "1.0.0", "Without the count argument O(1), otherwise O(N) where N is the value of the passed count.", REWRITTEN,
        "Remove and return random members of a set",
        "key [count]"),
    CommandSpec::new("smove", 4, flags![WRITE, FAST], MOVE_KEYS, SET, "1.0.0", "O(1)", AS_SENT,
        "Move a member from one set to another, atomically",
        "source destination member"),
    CommandSpec::new("sinter", -2, flags![READONLY], READ_KEYS, SET, "1.0.0", "O(N*M) worst case where N is the cardinality of the smallest set and M is the number of sets.", NOTHING,
        "The members every one of several sets has",
        "key [key ...]"),
    CommandSpec::new("sintercard", -3, flags![READONLY], READ_NUMKEYS, SET, "7.0.0", "O(N*M) worst case where N is the cardinality of the smallest set and M is the number of sets.", NOTHING,
        "Count the members every one of several sets has, optionally up to a limit",
        "numkeys key [key ...] [LIMIT limit:integer]"),
    CommandSpec::new("sinterstore", -3, flags![WRITE, DENYOOM], STORE_KEYS, SET, "1.0.0", "O(N*M) worst case where N is the cardinality of the smallest set and M is the number of sets.", AS_SENT,
        "Store the intersection of sets at a key; replies with its size",
        "destination key [key ...]"),
    CommandSpec::new("sunion", -2, flags![READONLY], READ_KEYS, SET, "1.0.0", "O(N) where N is the total number of elements in all given sets.", NOTHING,
        "The members any of several sets has",
        "key [key ...]"),
    CommandSpec::new("sunionstore", -3, flags![WRITE, DENYOOM], STORE_KEYS, SET, "1.0.0", "O(N) where N is the total number of elements in all given sets.", AS_SENT,
        "Store the union of sets at a key; replies with its size",
        "destination key [key ...]"),
    CommandSpec::new("sdiff", -2, flags![READONLY], READ_KEYS, SET, "1.0.0", "O(N) where N is the total number of elements in all given sets.", NOTHING,
        "The members of the first set that none of the others has",
        "key [key ...]"),
    CommandSpec::new("sdiffstore", -3, flags![WRITE, DENYOOM], STORE_KEYS, SET, "1.0.0", "O(N) where N is the total number of elements in all given sets.", AS_SENT,
        "Store the difference of sets at a key; replies with its size",
        "destination key [key ...]"),
    CommandSpec::new("sscan", -3, flags![READONLY], READ_KEY, SET, "2.8.0", "O(1) for every call. O(N) for a complete iteration, including enough command calls for the cursor to return back to 0. N is the number of elements inside the collection.", NOTHING,
        "Walk the members of a set a batch at a time, resuming from a cursor",
        "key cursor [MATCH pattern] [COUNT count]"),
    // (end of sets)
    // Sorted sets.
    CommandSpec::new("zadd", -4, flags![WRITE, DENYOOM, FAST], WRITE_KEY, SORTED_SET, "1.2.0", "O(log(N)) for each item added, where N is the number of elements in the sorted set.", AS_SENT,
        "Add members to a sorted set or change their scores",
        "key [NX | XX] [GT | LT] [CH] [INCR] score member [score member ...]"),
    CommandSpec::new("zincrby", 4, flags![WRITE, DENYOOM, FAST], COUNTER_KEY, SORTED_SET, "1.2.0", "O(log(N)) where N is the number of elements in the sorted set.", AS_SENT,
        "Add to the score of a sorted-set member; replies with the new score",
        "key increment member"),
    CommandSpec::new("zrem", -3, flags![WRITE, FAST], DELETE_KEY, SORTED_SET, "1.2.0", "O(M*log(N)) with N being the number of elements in the sorted set and M the number of elements to be removed.", AS_SENT,
        "Remove members from a sorted set; replies with how many existed",
        "key member [member ...]"),
    CommandSpec::new("zcard", 2, flags![READONLY, FAST], INSPECT_KEY, SORTED_SET, "1.2.0", "O(1)", NOTHING,
        "Count the members of a sorted set",
        "key"),
    CommandSpec::new("zcount", 4, flags![READONLY, FAST], READ_KEY, SORTED_SET, "2.0.0", "O(log(N)) with N being the number of elements in the sorted set.", NOTHING,
        "Count the members of a sorted set within a score range",
        "key min max"),
    CommandSpec::new("zlexcount", 4, flags![READONLY, FAST], READ_KEY, SORTED_SET, "2.8.9", "O(log(N)) with N being the number of elements in the sorted set.", NOTHING,
        "Count the members of a sorted set within a lexicographic range",
        "key min max"),
    CommandSpec::new("zscore", 3, flags![READONLY, FAST], READ_KEY, SORTED_SET, "1.2.0", "O(1)", NOTHING,
        "Read the score of a sorted-set member",
        "key member"),
    CommandSpec::new("zmscore", -3, flags![READONLY, FAST], READ_KEY, SORTED_SET, "6.2.0", "O(N) where N is the number of members being requested.", NOTHING,
        "Read the scores of several sorted-set members",
        "key member [member ...]"),
    CommandSpec::new("zrank", -3, flags![READONLY, FAST], READ_KEY, SORTED_SET, "2.0.0", "O(log(N))", NOTHING,
        "Position of a member in a sorted set, lowest score first",
        "key member [WITHSCORE]"),
    CommandSpec::new("zrevrank", -3, flags![READONLY, FAST], READ_KEY, SORTED_SET, "2.0.0", "O(log(N))", NOTHING,
        "Position of a member in a sorted set, highest score first",
        "key member [WITHSCORE]"),
    CommandSpec::new("zrange", -4, flags![READONLY], READ_KEY, SORTED_SET, "1.2.0", "O(log(N)+M) with N being the number of elements in the sorted set and M the number of elements returned.", NOTHING,
        "Read members of a sorted set by rank, score or lexicographic range",
        "key start stop [BYSCORE | BYLEX] [REV] [LIMIT offset count] [WITHSCORES]"),
    CommandSpec::new("zrangestore", -5, flags![WRITE, DENYOOM], STORE_FROM_KEY, SORTED_SET, "6.2.0", "O(log(N)+M) with N being the number of elements in the sorted set and M the number of elements stored into the destination key.", AS_SENT,
        "Store a range of a sorted set as another sorted set",
        "dst src min max [BYSCORE | BYLEX] [REV] [LIMIT offset count]"),
    CommandSpec::new("zrevrange", -4, flags![READONLY], READ_KEY, SORTED_SET, "1.2.0", "O(log(N)+M) with N being the number of elements in the sorted set and M the number of elements returned.", NOTHING,
        "Read members of a sorted set by rank, highest score first",
        "key start stop [WITHSCORES]"),
    CommandSpec::new("zrangebyscore", -4, flags![READONLY], READ_KEY, SORTED_SET, "1.0.5", "O(log(N)+M) with N being the number of elements in the sorted set and M the number of elements being returned. If M is constant (e.g. always asking for the first 10 elements with LIMIT), you can consider it O(log(N)).", NOTHING,
        "Read members of a sorted set within a score range",
        "key min max [WITHSCORES] [LIMIT offset count]"),
    CommandSpec::new("zrevrangebyscore", -4, flags![READONLY], READ_KEY, SORTED_SET, "2.2.0", "O(log(N)+M) with N being the number of elements in the sorted set and M the number of elements being returned. If M is constant (e.g. always asking for the first 10 elements with LIMIT), you can consider it O(log(N)).", NOTHING,
        "Read members of a sorted set within a score range, highest first",
        "key max min [WITHSCORES] [LIMIT offset count]"),
    CommandSpec::new("zrangebylex", -4, flags![READONLY], READ_KEY, SORTED_SET, "2.8.9", "O(log(N)+M) with N being the number of elements in the sorted set and M the number of elements being returned. If M is constant (e.g. always asking for the first 10 elements with LIMIT), you can consider it O(log(N)).", NOTHING,
        "Read members of a sorted set within a lexicographic range",
        "key min max [LIMIT offset count]"),
    CommandSpec::new("zrevrangebylex", -4, flags![READONLY], READ_KEY, SORTED_SET, "2.8.9", "O(log(N)+M) with N being the number of elements in the sorted set and M the number of elements being returned. If M is constant (e.g. always asking for the first 10 elements with LIMIT), you can consider it O(log(N)).", NOTHING,
        "Read members of a sorted set within a lexicographic range, highest first",
        "key max min [LIMIT offset count]"),
    CommandSpec::new("zremrangebyrank", 4, flags![WRITE], DELETE_KEY, SORTED_SET, "2.0.0", "O(log(N)+M) with N being the number of elements in the sorted set and M the number of elements removed by the operation.", AS_SENT,
        "Remove the members of a sorted set within a rank range",
        "key start stop"),
    CommandSpec::new("zremrangebyscore", 4, flags![WRITE], DELETE_KEY, SORTED_SET, "1.2.0", "O(log(N)+M) with N being the number of elements in the sorted set and M the number of elements removed by the operation.", AS_SENT,
        "Remove the members of a sorted set within a score range",
        "key min max"),
    CommandSpec::new("zremrangebylex", 4, flags![WRITE], DELETE_KEY, SORTED_SET, "2.8.9", "O(log(N)+M) with N being the number of elements in the sorted set and M the number of elements removed by the operation.", AS_SENT,
        "Remove the members of a sorted set within a lexicographic range",
        "key min max"),
    CommandSpec::new("zpopmin", -2, flags![WRITE, FAST], POP_KEY, SORTED_SET, "5.0.0", "O(log(N)*M) with N being the number of elements in the sorted set, and M being the number of elements popped.", REWRITTEN,
        "Remove and return the members with the lowest scores",
        "key [count]"),
    CommandSpec::new("zpopmax", -2, flags![WRITE, FAST], POP_KEY, SORTED_SET, "5.0.0", "O(log(N)*M) with N being the number of elements in the sorted set, and M being the number of elements popped.", REWRITTEN,
        "Remove and return the members with the highest scores",
        "key [count]"),
    CommandSpec::new("zmpop", -4, flags![WRITE], POP_NUMKEYS, SORTED_SET, "7.0.0", "O(K) + O(M*log(N)) where K is the number of provided keys, N being the number of elements in the sorted set, and M being the number of elements popped.", REWRITTEN,
        "Pop members from the first non-empty sorted set of several",
        "numkeys key [key ...] MIN | MAX [COUNT count]"),
    CommandSpec::new("zrandmember", -2, flags![READONLY], READ_KEY, SORTED_SET, "6.2.0", "O(N) where N is the number of members returned", NOTHING,
        "Pick random members of a sorted set, optionally with their scores",
        "key [count [WITHSCORES]]"),
    CommandSpec::new("zunion", -3, flags![READONLY], READ_NUMKEYS, SORTED_SET, "6.2.0", "O(N)+O(M*log(M)) with N being the sum of the sizes of the input sorted sets, and M being the number of elements in the resulting sorted set.", NOTHING,
        "Union of sorted sets, with weights and an aggregate",
        "numkeys key [key ...] [WEIGHTS weight [weight ...]] [AGGREGATE SUM | MIN | MAX] [WITHSCORES]"),
    CommandSpec::new("zinter", -3, flags![READONLY], READ_NUMKEYS, SORTED_SET, "6.2.0", "O(N*K)+O(M*log(M)) worst case with N being the smallest input sorted set, K being the number of input sorted sets and M being the number of elements in the resulting sorted set.", NOTHING,
        "Intersection of sorted sets, with weights and an aggregate",
        "numkeys key [key ...] [WEIGHTS weight [weight ...]] [AGGREGATE SUM | MIN | MAX] [WITHSCORES]"),
    CommandSpec::new("zdiff", -3, flags![READONLY], READ_NUMKEYS, SORTED_SET, "6.2.0", "O(L + (N-K)log(N)) worst case where L is the total number of elements in all the sets, N is the size of the first set, and K is the size of the result set.", NOTHING,
        "Members of the first sorted set that are in none of the others",
        "numkeys key [key ...] [WITHSCORES]"),
    CommandSpec::new("zunionstore", -4, flags![WRITE, DENYOOM], STORE_NUMKEYS, SORTED_SET, "2.0.0", "O(N)+O(M log(M)) with N being the sum of the sizes of the input sorted sets, and M being the number of elements in the resulting sorted set.", AS_SENT,
        "Store the union of sorted sets",
        "destination numkeys key [key ...] [WEIGHTS weight [weight ...]] [AGGREGATE SUM | MIN | MAX]"),
    CommandSpec::new("zinterstore", -4, flags![WRITE, DENYOOM], STORE_NUMKEYS, SORTED_SET, "2.0.0", "O(N*K)+O(M*log(M)) worst case with N being the smallest input sorted set, K being the number of input sorted sets and M being the number of elements in the resulting sorted set.", AS_SENT,
        "Store the intersection of sorted sets",
        "destination numkeys key [key ...] [WEIGHTS weight [weight ...]] [AGGREGATE SUM | MIN | MAX]"),
    CommandSpec::new("zdiffstore", -4, flags![WRITE, DENYOOM], STORE_NUMKEYS, SORTED_SET, "6.2.0", "O(L + (N-K)log(N)) worst case where L is the total number of elements in all the sets, N is the size of the first set, and K is the size of the result set.", AS_SENT,
        "Store the members of the first sorted set that are in none of the others",
        "destination numkeys key [key ...]"),
    CommandSpec::new("zintercard", -3, flags![READONLY], READ_NUMKEYS, SORTED_SET, "7.0.0", "O(N*K) worst case with N being the smallest input sorted set, K being the number of input sorted sets.", NOTHING,
        "Count the intersection of sorted sets, optionally up to a limit",
        "numkeys key [key ...] [LIMIT limit]"),
    CommandSpec::new("zscan", -3, flags![READONLY], READ_KEY, SORTED_SET, "2.8.0", "O(1) for every call. O(N) for a complete iteration, including enough command calls for the cursor to return back to 0. N is the number of elements inside the collection.", NOTHING,
        "Walk the members of a sorted set a batch at a time, resuming from a cursor",
        "key cursor [MATCH pattern] [COUNT count]"),
    // (end of sorted sets)
    // Blocking commands.
    CommandSpec::new("blpop", -3, flags![WRITE, NOSCRIPT, BLOCKING], BLOCKING_POP_KEYS, LIST, "2.0.0", "O(N) where N is the number of provided keys.", REWRITTEN,
        "Pop the head of the first non-empty list, or wait for one",
        "key [key ...] timeout"),
    CommandSpec::new("brpop", -3, flags![WRITE, NOSCRIPT, BLOCKING], BLOCKING_POP_KEYS, LIST, "2.0.0", "O(N) where N is the number of provided keys.", REWRITTEN,
        "Pop the tail of the first non-empty list, or wait for one",
        "key [key ...] timeout"),
    CommandSpec::new("brpoplpush", 4, flags![WRITE, DENYOOM, NOSCRIPT, BLOCKING], MOVE_KEYS, LIST, "2.2.0", "O(1)", REWRITTEN,
        "Move a list's tail to another's head, or wait for one (deprecated: BLMOVE)",
        "source destination timeout"),
    CommandSpec::new("blmove", 6, flags![WRITE, DENYOOM, NOSCRIPT, BLOCKING], MOVE_KEYS, LIST, "6.2.0", "O(1)", REWRITTEN,
        "Move an element between the ends of two lists, or wait for one",
        "source destination <LEFT | RIGHT> <LEFT | RIGHT> timeout"),
    CommandSpec::new("blmpop", -5, flags![WRITE, BLOCKING], BLOCKING_MPOP_KEYS, LIST, "7.0.0", "O(N+M) where N is the number of provided keys and M is the number of elements returned.", REWRITTEN,
        "Pop elements from the first non-empty list, or wait for one",
        "timeout numkeys key [key ...] <LEFT | RIGHT> [COUNT count]"),
    CommandSpec::new("bzpopmin", -3, flags![WRITE, NOSCRIPT, FAST, BLOCKING], BLOCKING_POP_KEYS, SORTED_SET, "5.0.0", "O(log(N)) with N being the number of elements in the sorted set.", REWRITTEN,
        "Pop the lowest-scored member of the first non-empty sorted set, or wait",
        "key [key ...] timeout"),
    CommandSpec::new("bzpopmax", -3, flags![WRITE, NOSCRIPT, FAST, BLOCKING], BLOCKING_POP_KEYS, SORTED_SET, "5.0.0", "O(log(N)) with N being the number of elements in the sorted set.", REWRITTEN,
        "Pop the highest-scored member of the first non-empty sorted set, or wait",
        "key [key ...] timeout"),
    CommandSpec::new("bzmpop", -5, flags![WRITE, BLOCKING], BLOCKING_MPOP_KEYS, SORTED_SET, "7.0.0", "O(K) + O(M*log(N)) where K is the number of provided keys, N being the number of elements in the sorted set, and M being the number of elements popped.", REWRITTEN,
        "Pop members from the first non-empty sorted set, or wait for one",
        "timeout numkeys key [key ...] <MIN | MAX> [COUNT count]"),
    // (end of blocking commands)
    CommandSpec::new("multi", 1, flags![NOSCRIPT, LOADING, STALE, FAST, ALLOW_BUSY], NO_KEYS, TRANSACTIONS, "1.2.0", "O(1)", NOTHING,
        "Start queuing commands to run as one transaction",
        ""),
    CommandSpec::new("exec", 1, flags![NOSCRIPT, LOADING, STALE, SKIP_SLOWLOG], NO_KEYS, TRANSACTIONS, "1.2.0", "Depends on commands in the transaction", NOTHING,
        "Run the queued commands as one unit, unless a watched key changed",
        ""),
    CommandSpec::new("discard", 1, flags![NOSCRIPT, LOADING, STALE, FAST, ALLOW_BUSY], NO_KEYS, TRANSACTIONS, "2.0.0", "O(N), when N is the number of queued commands", NOTHING,
        "Drop the queued commands and leave the transaction",
        ""),
    CommandSpec::new("watch", -2, flags![NOSCRIPT, LOADING, STALE, FAST, ALLOW_BUSY], WATCH_KEYS, TRANSACTIONS, "2.2.0", "O(1) for every key.", NOTHING,
        "Make the next EXEC fail if any of these keys changes first",
        "key [key ...]"),
    CommandSpec::new("unwatch", 1, flags![NOSCRIPT, LOADING, STALE, FAST, ALLOW_BUSY], NO_KEYS, TRANSACTIONS, "2.2.0", "O(1)", NOTHING,
        "Stop watching every key",
        ""),
    // (end of transactions)
    CommandSpec::new("eval", -3, flags![NOSCRIPT, STALE, SKIP_MONITOR, NO_MANDATORY_KEYS], SCRIPT_KEYS, SCRIPTING, "2.6.0", "Depends on the script that is executed.", NOTHING,
        "Run a Lua script as one atomic unit",
        "script numkeys [key [key ...]] [arg [arg ...]]"),
    CommandSpec::new("evalsha", -3, flags![NOSCRIPT, STALE, SKIP_MONITOR, NO_MANDATORY_KEYS], SCRIPT_KEYS, SCRIPTING, "2.6.0", "Depends on the script that is executed.", NOTHING,
        "Run a cached Lua script, named by its SHA-1, as one atomic unit",
        "sha1 numkeys [key [key ...]] [arg [arg ...]]"),
    CommandSpec::new("eval_ro", -3, flags![READONLY, NOSCRIPT, STALE, SKIP_MONITOR, NO_MANDATORY_KEYS], SCRIPT_READ_KEYS, SCRIPTING, "7.0.0", "Depends on the script that is executed.", NOTHING,
        "Run a Lua script that may not write",
        "script numkeys [key [key ...]] [arg [arg ...]]"),
    CommandSpec::new("evalsha_ro", -3, flags![READONLY, NOSCRIPT, STALE, SKIP_MONITOR, NO_MANDATORY_KEYS], SCRIPT_READ_KEYS, SCRIPTING, "7.0.0", "Depends on the script that is executed.", NOTHING,
        "Run a cached Lua script that may not write",
        "sha1 numkeys [key [key ...]] [arg [arg ...]]"),
    CommandSpec::container("script", -2, SCRIPTING, "2.6.0",
        "Manage the script cache",
        &SCRIPT_SUBCOMMANDS),
    CommandSpec::new("fcall", -3, flags![NOSCRIPT, STALE, SKIP_MONITOR, NO_MANDATORY_KEYS], SCRIPT_KEYS, SCRIPTING, "7.0.0", "Depends on the function that is executed.", NOTHING,
        "Run a loaded function as one atomic unit",
        "function numkeys [key [key ...]] [arg [arg ...]]"),
    CommandSpec::new("fcall_ro", -3, flags![READONLY, NOSCRIPT, STALE, SKIP_MONITOR, NO_MANDATORY_KEYS], SCRIPT_READ_KEYS, SCRIPTING, "7.0.0", "Depends on the function that is executed.", NOTHING,
        "Run a loaded function that may not write",
        "function numkeys [key [key ...]] [arg [arg ...]]"),
    CommandSpec::container("function", -2, SCRIPTING, "7.0.0",
        "Manage function libraries",
        &FUNCTION_SUBCOMMANDS),
    // (end of scripting)
    CommandSpec::new("subscribe", -2, flags![PUBSUB, NOSCRIPT, LOADING, STALE], NO_KEYS, PUBSUB, "2.0.0", "O(N) where N is the number of channels to subscribe to.", NOTHING,
        "Listen for messages published to channels",
        "channel [channel ...]"),
    CommandSpec::new("unsubscribe", -1, flags![PUBSUB, NOSCRIPT, LOADING, STALE], NO_KEYS, PUBSUB, "2.0.0", "O(N) where N is the number of clients already subscribed to a channel.", NOTHING,
        "Stop listening to channels (all of them without arguments)",
        "[channel [channel ...]]"),
    CommandSpec::new("psubscribe", -2, flags![PUBSUB, NOSCRIPT, LOADING, STALE], NO_KEYS, PUBSUB, "2.0.0", "O(N) where N is the number of patterns the client is already subscribed to.", NOTHING,
        "Listen for messages published to channels matching patterns",
        "pattern [pattern ...]"),
    CommandSpec::new("punsubscribe", -1, flags![PUBSUB, NOSCRIPT, LOADING, STALE], NO_KEYS, PUBSUB, "2.0.0", "O(N+M) where N is the number of patterns the client is already subscribed and M is the number of total patterns subscribed in the system (by any client).", NOTHING,
        "Stop listening to patterns (all of them without arguments)",
        "[pattern [pattern ...]]"),
    CommandSpec::new("publish", 3, flags![PUBSUB, LOADING, STALE, FAST], NO_KEYS, PUBSUB, "2.0.0", "O(N+M) where N is the number of clients subscribed to the receiving channel and M is the total number of subscribed patterns (by any client).", NOTHING,
        "Send a message to a channel's subscribers",
        "channel message"),
    CommandSpec::new("ssubscribe", -2, flags![PUBSUB, NOSCRIPT, LOADING, STALE], SHARD_CHANNELS, PUBSUB, "7.0.0", "O(N) where N is the number of shard channels to subscribe to.", NOTHING,
        "Listen for messages published to shard channels",
        "shardchannel [shardchannel ...]"),
    CommandSpec::new("sunsubscribe", -1, flags![PUBSUB, NOSCRIPT, LOADING, STALE], SHARD_CHANNELS, PUBSUB, "7.0.0", "O(N) where N is the number of clients already subscribed to a shard channel.", NOTHING,
        "Stop listening to shard channels (all of them without arguments)",
        "[shardchannel [shardchannel ...]]"),
    CommandSpec::new("spublish", 3, flags![PUBSUB, LOADING, STALE, FAST], SHARD_CHANNEL, PUBSUB, "7.0.0", "O(N) where N is the number of clients subscribed to the receiving shard channel.", NOTHING,
        "Send a message to a shard channel's subscribers",
        "shardchannel message"),
    CommandSpec::container("pubsub", -2, PUBSUB, "2.8.0",
        "Inspect the Pub/Sub subscriptions",
        &PUBSUB_SUBCOMMANDS),
    // (end of pubsub)
    // Shutdown last, as in the table it replaces.
    CommandSpec::new("shutdown", -1, flags![ADMIN, NOSCRIPT, LOADING, STALE, NO_MULTI, ALLOW_BUSY], NO_KEYS, SERVER, "1.0.0", "O(N) when saving, where N is the total number of keys in all databases when saving data, otherwise O(1)", NOTHING,
        "Stop the server, first saving a snapshot if configured to",
        "[NOSAVE | SAVE] [NOW] [FORCE] [ABORT]"),
];

#[cfg(test)]
mod tests {
    use super::super::{
        all, find, find_full, row, row_count, row_id, AclCategories, ArgKind, CommandFlags,
    };
    use super::*;

    #[test]
    fn names_are_unique_lowercase_and_subcommands_prefixed() {
        let mut names: Vec<&str> = all().map(|spec| spec.name).collect();
        for spec in COMMANDS.iter() {
            assert_eq!(spec.name, spec.name.to_ascii_lowercase());
            assert!(!spec.name.contains('|'), "{}", spec.name);
            for sub in spec.subcommands {
                assert!(
                    sub.name.starts_with(&format!("{}|", spec.name)),
                    "{}",
                    sub.name
                );
                assert!(sub.subcommands.is_empty(), "{}: one level only", sub.name);
            }
        }
        names.sort_unstable();
        let before = names.len();
        names.dedup();
        assert_eq!(before, names.len(), "duplicate names");
        // Longer names would not fit the server's lookup buffer.
        assert!(all().all(|spec| spec.name.len() <= 32));
    }

    #[test]
    fn propagation_is_declared_for_writes_only() {
        for spec in all() {
            assert_eq!(
                spec.propagation() != Propagation::None,
                spec.is_write(),
                "{}: a write command says how it propagates, a read says it does not",
                spec.name
            );
        }
    }

    #[test]
    fn flags_are_consistent() {
        for spec in all() {
            let flags = spec.flags;
            assert!(
                !(flags.contains(CommandFlags::WRITE) && flags.contains(CommandFlags::READONLY)),
                "{}",
                spec.name
            );
            assert!(
                !flags.contains(CommandFlags::MOVABLEKEYS),
                "{}: derived",
                spec.name
            );
            // A read command writes no key; a write command writes some (its other keys may
            // be read only, as the sources of ZUNIONSTORE are in Redis).
            let writing = |flags: KeyFlags| {
                [KeyFlags::RW, KeyFlags::OW, KeyFlags::RM]
                    .into_iter()
                    .any(|access| flags.contains(access))
            };
            let writes_some = spec.key_specs.iter().any(|k| writing(k.flags));
            if spec.is_write() {
                assert!(
                    writes_some || spec.key_specs.is_empty(),
                    "{}: key access",
                    spec.name
                );
            } else if spec.group != Group::Scripting {
                // Scripts and functions are the exception, as in Redis: not write commands
                // themselves, their keys are declared read-write since what they do with
                // them is unknown.
                assert!(!writes_some, "{}: key access", spec.name);
            }
            // Keys counted by an argument (ZMPOP's numkeys) have no legacy range: movable.
            let legacy = spec.legacy_range();
            assert_eq!(
                legacy.first != 0 || legacy.movable,
                !spec.key_specs.is_empty(),
                "{}",
                spec.name
            );
        }
    }

    #[test]
    fn acl_categories_are_derived_as_before() {
        let names = |name: &str| {
            find_full(name.as_bytes())
                .map(|spec| spec.acl_categories.names().collect::<Vec<_>>())
                .unwrap_or_default()
        };
        assert_eq!(names("get"), ["read", "string", "fast"]);
        assert_eq!(names("set"), ["write", "string", "slow"]);
        assert_eq!(names("del"), ["write", "keyspace", "slow"]);
        assert_eq!(
            names("client|list"),
            ["connection", "admin", "dangerous", "slow"]
        );
        // A container is only `@slow`, as in Redis: its subcommands carry the categories.
        assert_eq!(names("client"), ["slow"]);
        assert_eq!(names("command"), ["slow"]);
        assert_eq!(names("ping"), ["connection", "fast"]);
        for spec in all() {
            assert_eq!(
                spec.acl_categories.contains(AclCategories::FAST),
                spec.flags.contains(CommandFlags::FAST),
                "{}",
                spec.name
            );
        }
    }

    #[test]
    fn every_syntax_line_parses_and_annotations_name_value_types() {
        for spec in all() {
            let args = spec.arguments();
            assert_eq!(args.is_empty(), spec.syntax.is_empty(), "{}", spec.name);
            for word in spec
                .syntax
                .split(|c: char| c.is_whitespace() || "[]|".contains(c))
            {
                if let Some((_, annotation)) = word.split_once(':') {
                    assert!(
                        ArgKind::of_value(annotation).is_some(),
                        "{}: unknown type {annotation:?}",
                        spec.name
                    );
                }
            }
        }
        let incrby = find(b"INCRBY")
            .map(|spec| spec.arguments())
            .unwrap_or_default();
        assert_eq!(incrby[1].kind, ArgKind::Integer);
        let incrbyfloat = find(b"incrbyfloat")
            .map(|spec| spec.arguments())
            .unwrap_or_default();
        assert_eq!(incrbyfloat[1].kind, ArgKind::Double);
    }

    #[test]
    fn summaries_are_short_single_lines() {
        for spec in all() {
            assert!(!spec.summary.is_empty(), "{}", spec.name);
            assert!(spec.summary.len() <= 80, "{}: {}", spec.name, spec.summary);
            assert!(!spec.summary.ends_with('.'), "{}", spec.name);
            assert!(!spec.summary.contains('\n'), "{}", spec.name);
        }
    }

    #[test]
    fn lookups() {
        assert_eq!(find(b"GeT").map(|c| c.name), Some("get"));
        assert!(find(b"client|list").is_none());
        assert_eq!(
            find_full(b"CLIENT|List").map(|c| c.name),
            Some("client|list")
        );
        assert!(find_full(b"client|nope").is_none());
        assert!(find_full(b"nope|list").is_none());
        assert_eq!(row("config|get").name, "config|get");
        assert!(std::ptr::eq(row("get"), &COMMANDS[20]));
        assert!(std::ptr::eq(
            all().nth(row_id("get")).unwrap_or(row("ping")),
            row("get")
        ));
        assert!(std::ptr::eq(
            all().nth(row_id("acl|whoami")).unwrap_or(row("ping")),
            row("acl|whoami")
        ));
        assert_eq!(all().count(), row_count());
        assert_eq!(
            find(b"client")
                .and_then(|c| c.subcommand(b"ID"))
                .map(|c| c.name),
            Some("client|id")
        );
    }

    #[test]
    fn arity() {
        let get = row("get");
        assert!(!get.arity_ok(1) && get.arity_ok(2) && !get.arity_ok(3));
        let set = row("set");
        assert!(!set.arity_ok(2) && set.arity_ok(3) && set.arity_ok(9));
    }
}
