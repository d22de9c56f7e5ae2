//! The command catalogue: every command and subcommand kvstore implements, described as data.
//!
//! One row per command ([`CommandSpec`]): name, arity, flags, ACL categories, key specs,
//! documentation group, version, complexity, a one-line summary, the argument syntax, and how
//! a write reaches the append-only file ([`Propagation`]). The rows are in [`COMMANDS`]
//! (`commands.rs`); nothing here knows how a command runs.
//!
//! Its readers: the server binds a handler to each row and answers `COMMAND`, `COMMAND INFO`,
//! `COMMAND DOCS`... from it; kvcli uses it offline for help, completion and hints; a test
//! checks SPEC.md's command reference against it. [`parse_syntax`] is the one parser that
//! turns a syntax line into the `COMMAND DOCS` argument tree.

mod bits;
mod commands;
mod keys;
mod syntax;

pub use bits::{AclCategories, CommandFlags, KeyFlags};
pub use commands::COMMANDS;
pub use keys::{key_positions, legacy_range, BeginSearch, FindKeys, KeySpec, LegacyRange};
pub use syntax::{default_kind, parse_syntax, plain, ArgKind, ArgSpec};

use crate::Argv;

/// A command's documentation group, as `COMMAND DOCS` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Group {
    /// Commands on keys of any type.
    Generic,
    /// Strings.
    String,
    /// Lists.
    List,
    /// Sets.
    Set,
    /// Sorted sets.
    SortedSet,
    /// Hashes.
    Hash,
    /// Publish/subscribe.
    Pubsub,
    /// MULTI/EXEC.
    Transactions,
    /// The connection.
    Connection,
    /// The server.
    Server,
    /// Scripts and functions.
    Scripting,
    /// HyperLogLog.
    Hyperloglog,
    /// Geospatial indexes.
    Geo,
    /// Streams.
    Stream,
    /// Bit operations.
    Bitmap,
}

impl Group {
    /// The name `COMMAND DOCS` reports.
    pub const fn as_str(self) -> &'static str {
        match self {
            Group::Generic => "generic",
            Group::String => "string",
            Group::List => "list",
            Group::Set => "set",
            Group::SortedSet => "sorted-set",
            Group::Hash => "hash",
            Group::Pubsub => "pubsub",
            Group::Transactions => "transactions",
            Group::Connection => "connection",
            Group::Server => "server",
            Group::Scripting => "scripting",
            Group::Hyperloglog => "hyperloglog",
            Group::Geo => "geo",
            Group::Stream => "stream",
            Group::Bitmap => "bitmap",
        }
    }

    /// The ACL category every command of the group belongs to, if any (`@string`).
    pub const fn acl_category(self) -> AclCategories {
        match self {
            Group::Generic => AclCategories::KEYSPACE,
            Group::String => AclCategories::STRING,
            Group::List => AclCategories::LIST,
            Group::Set => AclCategories::SET,
            Group::SortedSet => AclCategories::SORTEDSET,
            Group::Hash => AclCategories::HASH,
            Group::Pubsub => AclCategories::PUBSUB,
            Group::Transactions => AclCategories::TRANSACTION,
            Group::Connection => AclCategories::CONNECTION,
            Group::Scripting => AclCategories::SCRIPTING,
            Group::Hyperloglog => AclCategories::HYPERLOGLOG,
            Group::Geo => AclCategories::GEO,
            Group::Stream => AclCategories::STREAM,
            Group::Bitmap => AclCategories::BITMAP,
            Group::Server => AclCategories::EMPTY,
        }
    }
}

/// How a command's effect on the keyspace reaches the append-only file (and, later,
/// replicas): the seam the write-propagation stream is checked against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Propagation {
    /// Nothing is propagated: reads, and commands that do not change the keyspace.
    None,
    /// The command line as the client sent it (`APPEND`, `DEL`, `MSET`...), when it changed
    /// something.
    AsSent,
    /// A deterministic equivalent that the handler emits: `SET EX` becomes `SET PXAT`,
    /// `INCRBYFLOAT` a `SET ... KEEPTTL` of the result, an expiry in the past a `DEL`.
    Rewritten,
}

impl Propagation {
    /// The name SPEC.md's command index uses.
    pub const fn as_str(self) -> &'static str {
        match self {
            Propagation::None => "none",
            Propagation::AsSent => "as sent",
            Propagation::Rewritten => "rewritten",
        }
    }
}

/// Static description of a command, or of a container's subcommand.
#[derive(Debug)]
pub struct CommandSpec {
    /// Lowercase name; a subcommand is `container|sub`, as Redis names it.
    pub name: &'static str,
    /// Redis arity: `n` exactly n arguments including the name, `-n` at least n.
    pub arity: i32,
    /// Command flags (`COMMAND INFO`'s third field).
    pub flags: CommandFlags,
    /// ACL categories, derived from the group and flags when the row is built.
    pub acl_categories: AclCategories,
    /// Where the keys are; the legacy first/last/step triple is derived from these.
    pub key_specs: &'static [KeySpec],
    /// Documentation group.
    pub group: Group,
    /// Redis version that introduced the command.
    pub since: &'static str,
    /// Time complexity.
    pub complexity: &'static str,
    /// One line saying what the command does, in kvstore's words.
    pub summary: &'static str,
    /// Arguments after the name, in Redis documentation notation with optional type
    /// annotations (see [`parse_syntax`]).
    pub syntax: &'static str,
    /// How a write propagates; [`Propagation::None`] exactly when `flags` lacks `write`.
    pub propagation: Propagation,
    /// Subcommands of a container command (CLIENT, COMMAND, CONFIG).
    pub subcommands: &'static [CommandSpec],
}

impl CommandSpec {
    /// A command row. ACL categories are derived here, once, from the group and the flags.
    #[allow(clippy::too_many_arguments)]
    pub const fn new(
        name: &'static str,
        arity: i32,
        flags: CommandFlags,
        key_specs: &'static [KeySpec],
        group: Group,
        since: &'static str,
        complexity: &'static str,
        propagation: Propagation,
        summary: &'static str,
        syntax: &'static str,
    ) -> CommandSpec {
        CommandSpec {
            name,
            arity,
            flags,
            acl_categories: derived_acl_categories(group, flags),
            key_specs,
            group,
            since,
            complexity,
            summary,
            syntax,
            propagation,
            subcommands: &[],
        }
    }

    /// A container command (CLIENT, CONFIG...): no flags or keys of its own; it runs one of
    /// `subcommands`, named by its first argument.
    pub const fn container(
        name: &'static str,
        arity: i32,
        group: Group,
        since: &'static str,
        summary: &'static str,
        subcommands: &'static [CommandSpec],
    ) -> CommandSpec {
        CommandSpec {
            name,
            arity,
            flags: CommandFlags::EMPTY,
            // As Redis: a container is only `@slow`; its subcommands carry the categories.
            acl_categories: AclCategories::SLOW,
            key_specs: &[],
            group,
            since,
            complexity: "Depends on subcommand.",
            summary,
            syntax: "",
            propagation: Propagation::None,
            subcommands,
        }
    }

    /// True if the command may modify the keyspace.
    pub const fn is_write(&self) -> bool {
        self.flags.contains(CommandFlags::WRITE)
    }

    /// How the command's writes propagate.
    pub const fn propagation(&self) -> Propagation {
        self.propagation
    }

    /// True if `argc` arguments (name included) satisfy the arity.
    pub const fn arity_ok(&self, argc: usize) -> bool {
        arity_allows(self.arity, argc)
    }

    /// The part after `|` for a subcommand (`setname` for `client|setname`), else the name.
    pub fn sub_name(&self) -> &'static str {
        self.name.rsplit('|').next().unwrap_or(self.name)
    }

    /// The subcommand named `name` (any case, without the container's prefix).
    pub fn subcommand(&self, name: &[u8]) -> Option<&'static CommandSpec> {
        self.subcommands
            .iter()
            .find(|sub| sub.sub_name().as_bytes().eq_ignore_ascii_case(name))
    }

    /// The legacy first/last/step key triple of `COMMAND INFO`.
    pub const fn legacy_range(&self) -> LegacyRange {
        legacy_range(self.key_specs)
    }

    /// Positions of the keys in a command line (name at 0), following the key specs.
    pub fn key_positions(&self, args: Argv<'_>) -> Vec<usize> {
        key_positions(self.key_specs, args)
    }

    /// Calls `f` with each of [`key_positions`](Self::key_positions), without allocating.
    pub fn for_each_key_position(&self, args: Argv<'_>, f: impl FnMut(usize)) {
        keys::for_each_key_position(self.key_specs, args, f)
    }

    /// Calls `f` with the position of each key the command changes (read-only key specs
    /// left out).
    pub fn for_each_written_key_position(&self, args: Argv<'_>, f: impl FnMut(usize)) {
        keys::for_each_written_key_position(self.key_specs, args, f)
    }

    /// The `COMMAND DOCS` argument tree of the syntax line.
    pub fn arguments(&self) -> Vec<ArgSpec> {
        parse_syntax(self.syntax)
    }

    /// The syntax line as users read it (type annotations dropped).
    pub fn usage(&self) -> std::borrow::Cow<'static, str> {
        plain(self.syntax)
    }
}

/// True if `argc` arguments satisfy `arity` (`n`: exactly n, `-n`: at least n).
#[inline]
pub const fn arity_allows(arity: i32, argc: usize) -> bool {
    let wanted = arity.unsigned_abs() as usize;
    if arity >= 0 {
        argc == wanted
    } else {
        argc >= wanted
    }
}

/// ACL categories as kvstore assigns them: `@write`/`@read` from the flags, the group's
/// category, `@admin @dangerous` for admin commands, then `@fast` or `@slow`.
pub const fn derived_acl_categories(group: Group, flags: CommandFlags) -> AclCategories {
    let mut categories = group.acl_category();
    if flags.contains(CommandFlags::WRITE) {
        categories = categories.union(AclCategories::WRITE);
    }
    if flags.contains(CommandFlags::READONLY) {
        categories = categories.union(AclCategories::READ);
    }
    if flags.contains(CommandFlags::ADMIN) {
        categories = categories
            .union(AclCategories::ADMIN)
            .union(AclCategories::DANGEROUS);
    }
    if flags.contains(CommandFlags::BLOCKING) {
        categories = categories.union(AclCategories::BLOCKING);
    }
    if flags.contains(CommandFlags::FAST) {
        categories.union(AclCategories::FAST)
    } else {
        categories.union(AclCategories::SLOW)
    }
}

/// Every command and subcommand: each command followed by its subcommands.
pub fn all() -> impl Iterator<Item = &'static CommandSpec> {
    COMMANDS
        .iter()
        .flat_map(|spec| std::iter::once(spec).chain(spec.subcommands.iter()))
}

/// The command named `name` (any case), not looking into containers.
pub fn find(name: &[u8]) -> Option<&'static CommandSpec> {
    COMMANDS
        .iter()
        .find(|spec| spec.name.as_bytes().eq_ignore_ascii_case(name))
}

/// The command or subcommand named `name` or `container|sub` (any case).
pub fn find_full(name: &[u8]) -> Option<&'static CommandSpec> {
    match name.iter().position(|&b| b == b'|') {
        None => find(name),
        Some(bar) => find(&name[..bar])?.subcommand(&name[bar + 1..]),
    }
}

/// The row named exactly `name` (lowercase; `container|sub` for a subcommand), for tables
/// built at compile time such as the server's handler binding. Evaluated in a `static`, a
/// missing row is a compile error.
///
/// # Panics
///
/// If no row has that name.
#[allow(
    clippy::panic,
    reason = "evaluated at compile time: a missing row fails the build"
)]
pub const fn row(name: &str) -> &'static CommandSpec {
    let mut i = 0;
    while i < COMMANDS.len() {
        let spec = &COMMANDS[i];
        if const_str_eq(spec.name, name) {
            return spec;
        }
        let mut j = 0;
        while j < spec.subcommands.len() {
            if const_str_eq(spec.subcommands[j].name, name) {
                return &spec.subcommands[j];
            }
            j += 1;
        }
        i += 1;
    }
    panic!("no command of that name in the catalogue")
}

/// The position of the row named exactly `name` in [`all`]'s order: a dense number for every
/// command and subcommand, so that per-command permissions (ACL) fit in a bitmap.
///
/// # Panics
///
/// If no row has that name (at compile time in a `const`).
// Evaluated in `const` items: a wrong name is a compile error, never a runtime panic.
#[allow(clippy::panic)]
pub const fn row_id(name: &str) -> usize {
    let mut id = 0;
    let mut i = 0;
    while i < COMMANDS.len() {
        let spec = &COMMANDS[i];
        if const_str_eq(spec.name, name) {
            return id;
        }
        id += 1;
        let mut j = 0;
        while j < spec.subcommands.len() {
            if const_str_eq(spec.subcommands[j].name, name) {
                return id;
            }
            id += 1;
            j += 1;
        }
        i += 1;
    }
    panic!("no command of that name in the catalogue")
}

/// How many commands and subcommands there are: [`row_id`]s run below this.
pub const fn row_count() -> usize {
    let mut count = 0;
    let mut i = 0;
    while i < COMMANDS.len() {
        count += 1 + COMMANDS[i].subcommands.len();
        i += 1;
    }
    count
}

const fn const_str_eq(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}
