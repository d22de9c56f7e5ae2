//! The handler binding: one handler for each row of the command catalogue
//! (`protocol::catalogue`), the single description of every command.
//!
//! [`COMMANDS`] is built at compile time: `bind` finds the catalogue row by name (a name
//! without a row does not compile) and copies what dispatch reads on every request (name,
//! arity, the write flag) next to the handler, so the request path never leaves this table.
//! A unit test checks the other direction: every row is bound exactly once.

use std::collections::HashMap;
use std::sync::OnceLock;

use protocol::catalogue::{self, arity_allows, CommandSpec, Propagation};

use super::{
    acl, blocking, config, connection, expire, function, hash, info, introspect, keys, list,
    persistence, pubsub, scripting, server, set, string, tracking, transaction, zset, Handler,
};

/// A catalogue row with its handler: what dispatch looks up and runs.
pub struct Command {
    /// Lowercase name (`get`, `client|setname`), as in the catalogue.
    pub name: &'static str,
    /// Redis arity, as in the catalogue.
    arity: i32,
    /// The catalogue row has the `write` flag.
    write: bool,
    /// The implementation.
    pub handler: Handler,
    /// Everything else about the command: flags, key specs, docs, propagation.
    pub spec: &'static CommandSpec,
    /// Subcommands of a container command (CLIENT, COMMAND, CONFIG).
    pub subcommands: &'static [Command],
    /// The row's number in the catalogue ([`catalogue::row_id`]): its bit in ACL bitmaps.
    pub id: u16,
}

impl Command {
    /// True if `argc` arguments (name included) satisfy the arity.
    #[inline]
    pub fn arity_ok(&self, argc: usize) -> bool {
        arity_allows(self.arity, argc)
    }

    /// True if the command may modify the keyspace.
    #[inline]
    pub fn is_write(&self) -> bool {
        self.write
    }

    /// How the command's writes reach the append-only file (see [`Propagation`]).
    pub fn propagation(&self) -> Propagation {
        self.spec.propagation
    }

    /// Name as used in error messages: `get`, `client|setname`.
    pub fn full_name(&self) -> &'static str {
        self.name
    }

    /// The part after `|` for a subcommand, else the whole name.
    pub fn sub_name(&self) -> &'static str {
        self.spec.sub_name()
    }
}

/// Binds `handler` to the catalogue row named `name`. In a `static`, a name without a row is
/// a compile error.
const fn bind(name: &str, handler: Handler) -> Command {
    container(name, handler, &[])
}

/// Binds a container command: its own handler (run when the container is called bare or for
/// help) and its bound subcommands.
const fn container(name: &str, handler: Handler, subcommands: &'static [Command]) -> Command {
    let spec = catalogue::row(name);
    Command {
        name: spec.name,
        arity: spec.arity,
        write: spec.is_write(),
        handler,
        spec,
        subcommands,
        id: catalogue::row_id(name) as u16,
    }
}

static OBJECT_SUBCOMMANDS: [Command; 4] = [
    bind("object|encoding", keys::object_encoding),
    bind("object|refcount", keys::object_refcount),
    bind("object|freq", keys::object_freq),
    bind("object|help", keys::object_help),
];

static CLIENT_SUBCOMMANDS: [Command; 13] = [
    bind("client|id", connection::client_id),
    bind("client|setname", connection::client_setname),
    bind("client|getname", connection::client_getname),
    bind("client|list", connection::client_list),
    bind("client|info", connection::client_info),
    bind("client|setinfo", connection::client_setinfo),
    bind("client|help", connection::client_help),
    bind("client|kill", connection::client_kill),
    bind("client|unblock", blocking::client_unblock),
    bind("client|tracking", tracking::client_tracking),
    bind("client|caching", tracking::client_caching),
    bind("client|getredir", tracking::client_getredir),
    bind("client|trackinginfo", tracking::client_trackinginfo),
];

static COMMAND_SUBCOMMANDS: [Command; 6] = [
    bind("command|count", introspect::command_count),
    bind("command|info", introspect::command_info),
    bind("command|docs", introspect::command_docs),
    bind("command|list", introspect::command_list),
    bind("command|getkeys", introspect::command_getkeys),
    bind("command|help", introspect::command_help),
];

static ACL_SUBCOMMANDS: [Command; 13] = [
    bind("acl|cat", acl::acl_cat),
    bind("acl|deluser", acl::acl_deluser),
    bind("acl|dryrun", acl::acl_dryrun),
    bind("acl|genpass", acl::acl_genpass),
    bind("acl|getuser", acl::acl_getuser),
    bind("acl|list", acl::acl_list),
    bind("acl|load", acl::acl_load),
    bind("acl|log", acl::acl_log),
    bind("acl|save", acl::acl_save),
    bind("acl|setuser", acl::acl_setuser),
    bind("acl|users", acl::acl_users),
    bind("acl|whoami", acl::acl_whoami),
    bind("acl|help", acl::acl_help),
];

static CONFIG_SUBCOMMANDS: [Command; 5] = [
    bind("config|get", config::config_get),
    bind("config|set", config::config_set),
    bind("config|resetstat", config::config_resetstat),
    bind("config|rewrite", config::config_rewrite),
    bind("config|help", config::config_help),
];

static SCRIPT_SUBCOMMANDS: [Command; 5] = [
    bind("script|exists", scripting::script_exists),
    bind("script|flush", scripting::script_flush),
    bind("script|kill", scripting::script_kill),
    bind("script|load", scripting::script_load),
    bind("script|help", scripting::script_help),
];

static PUBSUB_SUBCOMMANDS: [Command; 6] = [
    bind("pubsub|channels", pubsub::pubsub_channels),
    bind("pubsub|numsub", pubsub::pubsub_numsub),
    bind("pubsub|numpat", pubsub::pubsub_numpat),
    bind("pubsub|shardchannels", pubsub::pubsub_shardchannels),
    bind("pubsub|shardnumsub", pubsub::pubsub_shardnumsub),
    bind("pubsub|help", pubsub::pubsub_help),
];

static FUNCTION_SUBCOMMANDS: [Command; 9] = [
    bind("function|delete", function::function_delete),
    bind("function|dump", function::function_dump),
    bind("function|flush", function::function_flush),
    bind("function|help", function::function_help),
    bind("function|kill", scripting::script_kill),
    bind("function|list", function::function_list),
    bind("function|load", function::function_load),
    bind("function|restore", function::function_restore),
    bind("function|stats", function::function_stats),
];

/// Every command the server runs, in catalogue order.
pub static COMMANDS: &[Command] = &[
    // Connection.
    bind("ping", connection::ping),
    bind("echo", connection::echo),
    bind("hello", connection::hello),
    bind("quit", connection::quit),
    bind("reset", connection::reset),
    bind("select", connection::select),
    bind("auth", connection::auth),
    container("client", connection::client_help, &CLIENT_SUBCOMMANDS),
    // Server.
    container("command", introspect::command_all, &COMMAND_SUBCOMMANDS),
    container("acl", acl::acl_help, &ACL_SUBCOMMANDS),
    container("config", config::config_help, &CONFIG_SUBCOMMANDS),
    bind("info", info::info),
    bind("dbsize", server::dbsize),
    bind("flushdb", server::flushdb),
    bind("flushall", server::flushall),
    bind("save", persistence::save),
    bind("bgsave", persistence::bgsave),
    bind("lastsave", persistence::lastsave),
    bind("bgrewriteaof", persistence::bgrewriteaof),
    bind("time", server::time),
    // Strings.
    bind("get", string::get),
    bind("set", string::set),
    bind("setnx", string::setnx),
    bind("setex", string::setex),
    bind("psetex", string::psetex),
    bind("mget", string::mget),
    bind("mset", string::mset),
    bind("msetnx", string::msetnx),
    bind("getset", string::getset),
    bind("getdel", string::getdel),
    bind("getex", string::getex),
    bind("append", string::append),
    bind("strlen", string::strlen),
    bind("getrange", string::getrange),
    bind("setrange", string::setrange),
    bind("incr", string::incr),
    bind("decr", string::decr),
    bind("incrby", string::incrby),
    bind("decrby", string::decrby),
    bind("incrbyfloat", string::incrbyfloat),
    // Keys.
    bind("del", keys::del),
    bind("unlink", keys::unlink),
    bind("exists", keys::exists),
    bind("type", keys::key_type),
    bind("keys", keys::keys),
    bind("scan", keys::scan),
    bind("rename", keys::rename),
    bind("renamenx", keys::renamenx),
    bind("copy", keys::copy),
    bind("touch", keys::touch),
    bind("randomkey", keys::randomkey),
    container("object", keys::object_help, &OBJECT_SUBCOMMANDS),
    // Expiry.
    bind("expire", expire::expire),
    bind("pexpire", expire::pexpire),
    bind("expireat", expire::expireat),
    bind("pexpireat", expire::pexpireat),
    bind("ttl", expire::ttl),
    bind("pttl", expire::pttl),
    bind("expiretime", expire::expiretime),
    bind("pexpiretime", expire::pexpiretime),
    bind("persist", expire::persist),
    // Hashes.
    bind("hset", hash::hset),
    bind("hsetnx", hash::hsetnx),
    bind("hget", hash::hget),
    bind("hmget", hash::hmget),
    bind("hmset", hash::hmset),
    bind("hdel", hash::hdel),
    bind("hlen", hash::hlen),
    bind("hstrlen", hash::hstrlen),
    bind("hexists", hash::hexists),
    bind("hkeys", hash::hkeys),
    bind("hvals", hash::hvals),
    bind("hgetall", hash::hgetall),
    bind("hincrby", hash::hincrby),
    bind("hincrbyfloat", hash::hincrbyfloat),
    bind("hrandfield", hash::hrandfield),
    bind("hscan", hash::hscan),
    // Lists.
    bind("lpush", list::lpush),
    bind("rpush", list::rpush),
    bind("lpushx", list::lpushx),
    bind("rpushx", list::rpushx),
    bind("lpop", list::lpop),
    bind("rpop", list::rpop),
    bind("llen", list::llen),
    bind("lrange", list::lrange),
    bind("lindex", list::lindex),
    bind("lset", list::lset),
    bind("linsert", list::linsert),
    bind("lrem", list::lrem),
    bind("ltrim", list::ltrim),
    bind("lpos", list::lpos),
    bind("lmove", list::lmove),
    bind("rpoplpush", list::rpoplpush),
    bind("lmpop", list::lmpop),
    // (end of lists)
    // Sets.
    bind("sadd", set::sadd),
    bind("srem", set::srem),
    bind("scard", set::scard),
    bind("sismember", set::sismember),
    bind("smismember", set::smismember),
    bind("smembers", set::smembers),
    bind("srandmember", set::srandmember),
    bind("spop", set::spop),
    bind("smove", set::smove),
    bind("sinter", set::sinter),
    bind("sintercard", set::sintercard),
    bind("sinterstore", set::sinterstore),
    bind("sunion", set::sunion),
    bind("sunionstore", set::sunionstore),
    bind("sdiff", set::sdiff),
    bind("sdiffstore", set::sdiffstore),
    bind("sscan", set::sscan),
    // (end of sets)
    // Sorted sets.
    bind("zadd", zset::zadd),
    bind("zincrby", zset::zincrby),
    bind("zrem", zset::zrem),
    bind("zcard", zset::zcard),
    bind("zcount", zset::zcount),
    bind("zlexcount", zset::zlexcount),
    bind("zscore", zset::zscore),
    bind("zmscore", zset::zmscore),
    bind("zrank", zset::zrank),
    bind("zrevrank", zset::zrevrank),
    bind("zrange", zset::zrange),
    bind("zrangestore", zset::zrangestore),
    bind("zrevrange", zset::zrevrange),
    bind("zrangebyscore", zset::zrangebyscore),
    bind("zrevrangebyscore", zset::zrevrangebyscore),
    bind("zrangebylex", zset::zrangebylex),
    bind("zrevrangebylex", zset::zrevrangebylex),
    bind("zremrangebyrank", zset::zremrangebyrank),
    bind("zremrangebyscore", zset::zremrangebyscore),
    bind("zremrangebylex", zset::zremrangebylex),
    bind("zpopmin", zset::zpopmin),
    bind("zpopmax", zset::zpopmax),
    bind("zmpop", zset::zmpop),
    bind("zrandmember", zset::zrandmember),
    bind("zunion", zset::zunion),
    bind("zinter", zset::zinter),
    bind("zdiff", zset::zdiff),
    bind("zunionstore", zset::zunionstore),
    bind("zinterstore", zset::zinterstore),
    bind("zdiffstore", zset::zdiffstore),
    bind("zintercard", zset::zintercard),
    bind("zscan", zset::zscan),
    // (end of sorted sets)
    // Blocking commands.
    bind("blpop", blocking::blpop),
    bind("brpop", blocking::brpop),
    bind("brpoplpush", blocking::brpoplpush),
    bind("blmove", blocking::blmove),
    bind("blmpop", blocking::blmpop),
    bind("bzpopmin", blocking::bzpopmin),
    bind("bzpopmax", blocking::bzpopmax),
    bind("bzmpop", blocking::bzmpop),
    // (end of blocking commands)
    bind("multi", transaction::multi),
    bind("exec", transaction::exec),
    bind("discard", transaction::discard),
    bind("watch", transaction::watch),
    bind("unwatch", transaction::unwatch),
    // (end of transactions)
    bind("eval", scripting::eval),
    bind("evalsha", scripting::evalsha),
    bind("eval_ro", scripting::eval_ro),
    bind("evalsha_ro", scripting::evalsha_ro),
    container("script", scripting::script_help, &SCRIPT_SUBCOMMANDS),
    bind("fcall", function::fcall),
    bind("fcall_ro", function::fcall_ro),
    container("function", function::function_help, &FUNCTION_SUBCOMMANDS),
    // (end of scripting)
    bind("subscribe", pubsub::subscribe),
    bind("unsubscribe", pubsub::unsubscribe),
    bind("psubscribe", pubsub::psubscribe),
    bind("punsubscribe", pubsub::punsubscribe),
    bind("publish", pubsub::publish),
    bind("ssubscribe", pubsub::ssubscribe),
    bind("sunsubscribe", pubsub::sunsubscribe),
    bind("spublish", pubsub::spublish),
    container("pubsub", pubsub::pubsub_help, &PUBSUB_SUBCOMMANDS),
    // (end of pubsub)
    bind("shutdown", server::shutdown),
];

/// Every bound command and subcommand.
#[cfg(test)]
pub(crate) fn all_bound() -> impl Iterator<Item = &'static Command> {
    COMMANDS
        .iter()
        .flat_map(|command| std::iter::once(command).chain(command.subcommands.iter()))
}

/// The name index: a fixed-seed foldhash map (command names are not attacker-chosen keys of a
/// growing table, and SipHash showed up at ~2.5% of CPU in pipelined GET profiles).
type CommandIndex = HashMap<&'static [u8], &'static Command, foldhash::fast::FixedState>;

/// Finds a command by name, case-insensitively, without allocating.
pub fn lookup(name: &[u8]) -> Option<&'static Command> {
    static INDEX: OnceLock<CommandIndex> = OnceLock::new();
    let index = INDEX.get_or_init(|| {
        COMMANDS
            .iter()
            .map(|command| (command.name.as_bytes(), command))
            .collect()
    });
    let mut lower = [0u8; 32];
    let folded = lower.get_mut(..name.len())?;
    folded.copy_from_slice(name);
    folded.make_ascii_lowercase();
    index.get(&*folded).copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn address(spec: &'static CommandSpec) -> usize {
        std::ptr::from_ref(spec) as usize
    }

    #[test]
    fn every_row_has_exactly_one_handler_and_every_handler_a_row() {
        // Bound names have rows (else `bind` fails to compile); here: each row is bound once,
        // top-level rows at the top level, subcommands under their own container.
        let mut bound: Vec<usize> = all_bound().map(|c| address(c.spec)).collect();
        let mut rows: Vec<usize> = catalogue::all().map(address).collect();
        bound.sort_unstable();
        rows.sort_unstable();
        let before = bound.len();
        bound.dedup();
        assert_eq!(before, bound.len(), "a row is bound twice");
        assert_eq!(bound, rows, "bound rows and catalogue rows differ");
        let top: Vec<&str> = COMMANDS.iter().map(|c| c.name).collect();
        let catalogue_top: Vec<&str> = catalogue::COMMANDS.iter().map(|s| s.name).collect();
        assert_eq!(top, catalogue_top, "same commands, in catalogue order");
        for command in COMMANDS {
            let subs: Vec<usize> = command
                .subcommands
                .iter()
                .map(|s| address(s.spec))
                .collect();
            let rows: Vec<usize> = command.spec.subcommands.iter().map(address).collect();
            assert_eq!(subs, rows, "{}: subcommands", command.name);
        }
    }

    #[test]
    fn hot_fields_match_the_row() {
        for command in all_bound() {
            assert_eq!(command.name, command.spec.name);
            assert_eq!(
                command.is_write(),
                command.spec.is_write(),
                "{}",
                command.name
            );
            assert_eq!(command.propagation(), command.spec.propagation());
            for argc in 0..8 {
                assert_eq!(command.arity_ok(argc), command.spec.arity_ok(argc));
            }
        }
        assert!(lookup(b"set").is_some_and(Command::is_write));
        assert!(!lookup(b"get").is_some_and(Command::is_write));
    }

    #[test]
    fn lookup_ignores_case_and_rejects_long_names() {
        assert_eq!(lookup(b"GET").map(|c| c.name), Some("get"));
        assert_eq!(lookup(b"gEt").map(|c| c.name), Some("get"));
        assert!(lookup(b"nope").is_none());
        assert!(
            lookup(b"client|list").is_none(),
            "subcommands go through the container"
        );
        assert!(lookup(&[b'a'; 100]).is_none());
    }

    #[test]
    fn bound_commands_point_at_their_catalogue_rows() {
        // CLIENT LIST names a client's last command from the row's address.
        for command in all_bound() {
            assert!(std::ptr::eq(command.spec, catalogue::row(command.name)));
        }
    }
}
