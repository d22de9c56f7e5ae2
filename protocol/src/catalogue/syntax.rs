//! Argument syntax: turns a catalogue row's syntax line, in Redis documentation notation
//! (`key value [NX | XX] [EX seconds | KEEPTTL]`, `key [key ...]`), into the argument tree that
//! `COMMAND DOCS` sends and kvcli uses for help, completion and hints.
//!
//! Notation: an all-uppercase word is a literal token (`NX`, `LIB-NAME`); a token followed by a
//! lowercase word introduces that value (`EX seconds`); `[...]` is optional; `|` separates
//! alternatives (a `oneof`); several arguments in one alternative form a `block`; `[x ...]`
//! right after `x` makes `x` repeatable (`multiple`), and `[T x ...]` after `T x` repeats the
//! token too (`multiple_token`).
//!
//! Types: a value's type comes from its name ([`default_kind`], the one table of names), unless
//! the word carries an annotation, `name:type`, for a name whose usual type is wrong here
//! (`INCRBY key increment:integer`, where `increment` is usually a double). [`plain`] drops
//! the annotations for display.

use std::borrow::Cow;

/// The type of a documented argument, as `COMMAND DOCS` spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArgKind {
    /// `string`: any word.
    String,
    /// `integer`: a word starting with an integer.
    Integer,
    /// `double`: a word starting with a number.
    Double,
    /// `key`: a key name.
    Key,
    /// `pattern`: a glob pattern.
    Pattern,
    /// `unix-time`: an integer timestamp.
    UnixTime,
    /// `pure-token`: the token alone (`NX`), no value.
    PureToken,
    /// `oneof`: exactly one of the nested arguments.
    OneOf,
    /// `block`: all the nested arguments, in order.
    Block,
}

impl ArgKind {
    /// The `COMMAND DOCS` type name.
    pub const fn as_str(self) -> &'static str {
        match self {
            ArgKind::String => "string",
            ArgKind::Integer => "integer",
            ArgKind::Double => "double",
            ArgKind::Key => "key",
            ArgKind::Pattern => "pattern",
            ArgKind::UnixTime => "unix-time",
            ArgKind::PureToken => "pure-token",
            ArgKind::OneOf => "oneof",
            ArgKind::Block => "block",
        }
    }

    /// Parses a `COMMAND DOCS` type name; unknown names are treated as `string`, since a
    /// newer server may send types this client does not know.
    pub fn from_name(name: &str) -> ArgKind {
        ArgKind::of_value(name).unwrap_or(match name {
            "pure-token" => ArgKind::PureToken,
            "oneof" => ArgKind::OneOf,
            "block" => ArgKind::Block,
            _ => ArgKind::String,
        })
    }

    /// The type named by a syntax annotation: only the types a value can have.
    pub fn of_value(name: &str) -> Option<ArgKind> {
        Some(match name {
            "string" => ArgKind::String,
            "integer" => ArgKind::Integer,
            "double" => ArgKind::Double,
            "key" => ArgKind::Key,
            "pattern" => ArgKind::Pattern,
            "unix-time" => ArgKind::UnixTime,
            _ => return None,
        })
    }
}

/// The type of a value named `name` when its syntax word has no annotation: the names Redis
/// documents with a type other than `string`.
pub fn default_kind(name: &str) -> ArgKind {
    match name {
        "key" | "newkey" | "source" | "destination" => ArgKind::Key,
        "pattern" => ArgKind::Pattern,
        "seconds" | "milliseconds" | "count" | "offset" | "start" | "end" | "index" | "cursor"
        | "decrement" | "db" | "destination-db" | "protover" | "client-id" | "index1"
        | "index2" | "numkeys" => ArgKind::Integer,
        "increment" => ArgKind::Double,
        _ if name.starts_with("unix-time") => ArgKind::UnixTime,
        _ => ArgKind::String,
    }
}

/// One documented argument of a command, in the shape of `COMMAND DOCS`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArgSpec {
    /// Argument name (`key`, `seconds`, `nx-xx`).
    pub name: String,
    /// `display_text`, shown instead of the name when present.
    pub display: Option<String>,
    /// The argument's type.
    pub kind: ArgKind,
    /// Literal word introducing the argument (`EX` in `EX seconds`).
    pub token: Option<String>,
    /// Can be left out.
    pub optional: bool,
    /// Can be repeated.
    pub multiple: bool,
    /// When repeated, the token is repeated too (`GET pattern [GET pattern ...]`).
    pub multiple_token: bool,
    /// Members of a `oneof` or `block`.
    pub children: Vec<ArgSpec>,
}

impl ArgSpec {
    /// A required argument of `kind` with no token.
    pub fn new(name: impl Into<String>, kind: ArgKind) -> ArgSpec {
        ArgSpec {
            name: name.into(),
            display: None,
            kind,
            token: None,
            optional: false,
            multiple: false,
            multiple_token: false,
            children: Vec::new(),
        }
    }

    /// The text naming this argument in a hint: `display` if present, else the name.
    pub fn label(&self) -> &str {
        self.display.as_deref().unwrap_or(&self.name)
    }
}

/// The argument tree of `syntax` (empty for a command without arguments).
///
/// ```
/// use protocol::catalogue::{parse_syntax, ArgKind};
///
/// let args = parse_syntax("key increment:integer [NX | XX]");
/// assert_eq!(args[1].name, "increment");
/// assert_eq!(args[1].kind, ArgKind::Integer);
/// assert_eq!(args[2].kind, ArgKind::OneOf);
/// assert!(args[2].optional);
/// ```
pub fn parse_syntax(syntax: &str) -> Vec<ArgSpec> {
    let tokens = tokenize(syntax);
    let mut pos = 0;
    let mut alternatives = parse_alternatives(&tokens, &mut pos);
    if alternatives.len() > 1 {
        // Top-level alternatives (`LIB-NAME libname | LIB-VER libver`): one required oneof.
        let mut choice = convert_group(&alternatives);
        choice.optional = false;
        vec![choice]
    } else {
        alternatives
            .pop()
            .map(|items| convert_sequence(&items))
            .unwrap_or_default()
    }
}

/// `syntax` without its type annotations: what help texts and SPEC.md show.
///
/// ```
/// assert_eq!(protocol::catalogue::plain("key increment:integer"), "key increment");
/// ```
pub fn plain(syntax: &str) -> Cow<'_, str> {
    if !syntax.contains(':') {
        return Cow::Borrowed(syntax);
    }
    let mut out = String::with_capacity(syntax.len());
    let mut in_annotation = false;
    for c in syntax.chars() {
        match c {
            ':' => in_annotation = true,
            c if c.is_whitespace() || matches!(c, '[' | ']' | '<' | '>' | '|') => {
                in_annotation = false;
                out.push(c);
            }
            c if !in_annotation => out.push(c),
            _ => {}
        }
    }
    Cow::Owned(out)
}

/// A syntax element before conversion.
#[derive(Debug, Clone, PartialEq)]
enum Item {
    Word(String),
    /// `[...]`: its `|`-separated alternatives.
    Group(Vec<Vec<Item>>),
    /// `<...>`: a required choice among its `|`-separated alternatives (`<LEFT | RIGHT>`).
    Required(Vec<Vec<Item>>),
    /// `...` after an element.
    Ellipsis,
}

fn tokenize(syntax: &str) -> Vec<String> {
    syntax
        .replace('[', " [ ")
        .replace(']', " ] ")
        .replace('<', " < ")
        .replace('>', " > ")
        .replace('|', " | ")
        .replace("...", " ... ")
        .split_whitespace()
        .map(str::to_owned)
        .collect()
}

/// Parses `|`-separated sequences until the `]` closing the current group (or the end).
fn parse_alternatives(tokens: &[String], pos: &mut usize) -> Vec<Vec<Item>> {
    let mut alternatives = vec![Vec::new()];
    while let Some(token) = tokens.get(*pos) {
        *pos += 1;
        let item = match token.as_str() {
            "]" | ">" => break,
            "|" => {
                alternatives.push(Vec::new());
                continue;
            }
            "[" => Item::Group(parse_alternatives(tokens, pos)),
            "<" => Item::Required(parse_alternatives(tokens, pos)),
            "..." => Item::Ellipsis,
            word => Item::Word(word.to_owned()),
        };
        if let Some(current) = alternatives.last_mut() {
            current.push(item);
        }
    }
    alternatives
}

/// A literal token: has uppercase letters and no lowercase ones (`NX`, `LIB-NAME`).
fn is_token(word: &str) -> bool {
    word.chars().any(|c| c.is_ascii_uppercase()) && !word.chars().any(|c| c.is_ascii_lowercase())
}

/// A value argument from its syntax word (`seconds`, or annotated `increment:integer`).
fn value(word: &str, token: Option<&str>) -> ArgSpec {
    let (name, kind) = match word.split_once(':') {
        Some((name, annotation)) => (
            name,
            ArgKind::of_value(annotation).unwrap_or_else(|| default_kind(name)),
        ),
        None => (word, default_kind(word)),
    };
    ArgSpec {
        token: token.map(str::to_owned),
        ..ArgSpec::new(name, kind)
    }
}

fn pure_token(token: &str) -> ArgSpec {
    ArgSpec {
        token: Some(token.to_owned()),
        ..ArgSpec::new(token.to_ascii_lowercase(), ArgKind::PureToken)
    }
}

/// Several arguments under one name: a `block` (all in order) or a `oneof` (one of them).
fn aggregate(kind: ArgKind, children: Vec<ArgSpec>) -> ArgSpec {
    let name = children
        .iter()
        .map(|c| c.name.as_str())
        .collect::<Vec<_>>()
        .join("-");
    ArgSpec {
        children,
        ..ArgSpec::new(name, kind)
    }
}

/// Converts a `|`-free sequence of items into arguments.
fn convert_sequence(items: &[Item]) -> Vec<ArgSpec> {
    let mut args: Vec<ArgSpec> = Vec::new();
    let mut i = 0;
    while let Some(item) = items.get(i) {
        match item {
            Item::Word(word) if is_token(word) => match items.get(i + 1) {
                Some(Item::Word(next)) if !is_token(next) => {
                    args.push(value(next, Some(word)));
                    i += 1;
                }
                _ => args.push(pure_token(word)),
            },
            Item::Word(word) => args.push(value(word, None)),
            Item::Ellipsis => {
                if let Some(last) = args.last_mut() {
                    last.multiple = true;
                }
            }
            Item::Group(alternatives) => {
                let group = convert_group(alternatives);
                if !absorb_repetition(&mut args, &group) {
                    args.push(group);
                }
            }
            Item::Required(alternatives) => {
                let mut choice = convert_group(alternatives);
                choice.optional = false;
                args.push(choice);
            }
        }
        i += 1;
    }
    args
}

/// If `group` is `[x ...]` repeating the arguments just before it, marks those `multiple`
/// (as one block when there are several) and returns true.
fn absorb_repetition(args: &mut Vec<ArgSpec>, group: &ArgSpec) -> bool {
    if !group.multiple {
        return false;
    }
    let repeated: &[ArgSpec] = if group.kind == ArgKind::Block {
        &group.children
    } else {
        std::slice::from_ref(group)
    };
    let Some(start) = args.len().checked_sub(repeated.len()) else {
        return false;
    };
    let tail = &args[start..];
    // `ID client-id [client-id ...]`: the token comes once; `[ID client-id ...]` repeats it.
    let same = tail.iter().zip(repeated).all(|(a, b)| {
        a.name == b.name && (a.token == b.token || (a.token.is_some() && b.token.is_none()))
    });
    if !same || tail.is_empty() {
        return false;
    }
    if let [only] = repeated {
        if let Some(last) = args.last_mut() {
            last.multiple = true;
            last.multiple_token = last.token.is_some() && last.token == only.token;
        }
    } else {
        let children = args.split_off(start);
        let mut block = aggregate(ArgKind::Block, children);
        block.multiple = true;
        args.push(block);
    }
    true
}

/// Converts a bracketed group into one optional argument.
fn convert_group(alternatives: &[Vec<Item>]) -> ArgSpec {
    let mut options: Vec<ArgSpec> = alternatives
        .iter()
        .map(|alternative| {
            let mut args = convert_sequence(alternative);
            if args.len() == 1 {
                return args.remove(0);
            }
            // `[key value ...]`: the ellipsis repeats the whole block, not its last member.
            let repeats = alternative.last() == Some(&Item::Ellipsis);
            if repeats {
                if let Some(last) = args.last_mut() {
                    last.multiple = false;
                }
            }
            let mut block = aggregate(ArgKind::Block, args);
            block.multiple = repeats;
            block
        })
        .collect();
    let mut arg = if options.len() == 1 {
        options.remove(0)
    } else {
        aggregate(ArgKind::OneOf, options)
    };
    arg.optional = true;
    arg
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names_and_kinds(args: &[ArgSpec]) -> Vec<(&str, ArgKind)> {
        args.iter().map(|a| (a.name.as_str(), a.kind)).collect()
    }

    #[test]
    fn set_syntax_becomes_a_redis_shaped_tree() {
        let set = parse_syntax(
            "key value [NX | XX] [GET] [EX seconds | PX milliseconds | EXAT unix-time-seconds \
             | PXAT unix-time-milliseconds | KEEPTTL]",
        );
        assert_eq!(
            names_and_kinds(&set),
            [
                ("key", ArgKind::Key),
                ("value", ArgKind::String),
                ("nx-xx", ArgKind::OneOf),
                ("get", ArgKind::PureToken),
                (
                    "seconds-milliseconds-unix-time-seconds-unix-time-milliseconds-keepttl",
                    ArgKind::OneOf
                ),
            ]
        );
        assert!(!set[0].optional && set[2].optional && set[3].optional && set[4].optional);
        assert_eq!(set[2].children[0].token.as_deref(), Some("NX"));
        assert_eq!(set[3].token.as_deref(), Some("GET"));
        let expiry = &set[4].children;
        assert_eq!(
            names_and_kinds(expiry),
            [
                ("seconds", ArgKind::Integer),
                ("milliseconds", ArgKind::Integer),
                ("unix-time-seconds", ArgKind::UnixTime),
                ("unix-time-milliseconds", ArgKind::UnixTime),
                ("keepttl", ArgKind::PureToken),
            ]
        );
        assert_eq!(expiry[0].token.as_deref(), Some("EX"));
    }

    #[test]
    fn angle_brackets_are_a_required_choice() {
        let lmove = parse_syntax("source destination <LEFT | RIGHT> <LEFT | RIGHT> [COUNT count]");
        assert_eq!(lmove.len(), 5);
        assert_eq!((lmove[2].kind, lmove[2].optional), (ArgKind::OneOf, false));
        assert_eq!(lmove[2].children[1].token.as_deref(), Some("RIGHT"));
        assert!(lmove[4].optional);
        assert_eq!(
            plain("key <BEFORE | AFTER> pivot:string"),
            "key <BEFORE | AFTER> pivot"
        );
    }

    #[test]
    fn repetitions_become_multiple() {
        let del = parse_syntax("key [key ...]");
        assert_eq!(del.len(), 1);
        assert!(del[0].multiple && !del[0].optional && !del[0].multiple_token);

        let mset = parse_syntax("key value [key value ...]");
        assert_eq!(names_and_kinds(&mset), [("key-value", ArgKind::Block)]);
        assert!(mset[0].multiple && !mset[0].optional);
        assert_eq!(
            names_and_kinds(&mset[0].children),
            [("key", ArgKind::Key), ("value", ArgKind::String)]
        );

        let sections = parse_syntax("[section [section ...]]");
        assert_eq!(sections.len(), 1);
        assert!(sections[0].optional && sections[0].multiple);
    }

    #[test]
    fn a_token_once_or_repeated() {
        let list = parse_syntax("[ID client-id [client-id ...]]");
        assert_eq!(names_and_kinds(&list), [("client-id", ArgKind::Integer)]);
        assert_eq!(list[0].token.as_deref(), Some("ID"));
        assert!(list[0].optional && list[0].multiple && !list[0].multiple_token);

        let sort = parse_syntax("[GET pattern [GET pattern ...]]");
        assert_eq!(names_and_kinds(&sort), [("pattern", ArgKind::Pattern)]);
        assert!(sort[0].optional && sort[0].multiple && sort[0].multiple_token);
    }

    #[test]
    fn tokens_with_values_nested_blocks_and_top_level_choice() {
        let scan = parse_syntax("cursor [MATCH pattern] [COUNT count] [TYPE type]");
        assert_eq!(
            names_and_kinds(&scan),
            [
                ("cursor", ArgKind::Integer),
                ("pattern", ArgKind::Pattern),
                ("count", ArgKind::Integer),
                ("type", ArgKind::String),
            ]
        );
        assert_eq!(scan[1].token.as_deref(), Some("MATCH"));

        let hello = parse_syntax("[protover [AUTH username password] [SETNAME clientname]]");
        assert_eq!(hello.len(), 1);
        assert_eq!(hello[0].kind, ArgKind::Block);
        assert_eq!(
            names_and_kinds(&hello[0].children),
            [
                ("protover", ArgKind::Integer),
                ("username-password", ArgKind::Block),
                ("clientname", ArgKind::String),
            ]
        );

        let setinfo = parse_syntax("LIB-NAME libname | LIB-VER libver");
        assert_eq!(setinfo.len(), 1);
        assert_eq!(setinfo[0].kind, ArgKind::OneOf);
        assert!(!setinfo[0].optional);
        assert!(parse_syntax("").is_empty());
    }

    #[test]
    fn annotations_override_the_name_table() {
        // `increment` is a double by name (INCRBYFLOAT), an integer where annotated (INCRBY).
        assert_eq!(parse_syntax("increment")[0].kind, ArgKind::Double);
        let incrby = parse_syntax("key increment:integer");
        assert_eq!(
            names_and_kinds(&incrby),
            [("key", ArgKind::Key), ("increment", ArgKind::Integer)]
        );
        let tokened = parse_syntax("[BY step:double]");
        assert_eq!(names_and_kinds(&tokened), [("step", ArgKind::Double)]);
        assert_eq!(tokened[0].token.as_deref(), Some("BY"));
        // The name table covers the names both former parsers disagreed on.
        assert_eq!(default_kind("index1"), ArgKind::Integer);
        assert_eq!(default_kind("index2"), ArgKind::Integer);
        assert_eq!(default_kind("unix-time-seconds"), ArgKind::UnixTime);
        assert_eq!(default_kind("message"), ArgKind::String);
    }

    #[test]
    fn plain_drops_annotations_only() {
        assert_eq!(plain("key value"), "key value");
        assert_eq!(plain("key increment:integer"), "key increment");
        assert_eq!(
            plain("[BY step:double|ONE n:integer] [x:key ...]"),
            "[BY step|ONE n] [x ...]"
        );
    }

    #[test]
    fn type_names_round_trip() {
        for kind in [
            ArgKind::String,
            ArgKind::Integer,
            ArgKind::Double,
            ArgKind::Key,
            ArgKind::Pattern,
            ArgKind::UnixTime,
            ArgKind::PureToken,
            ArgKind::OneOf,
            ArgKind::Block,
        ] {
            assert_eq!(ArgKind::from_name(kind.as_str()), kind);
        }
        assert_eq!(ArgKind::from_name("future-type"), ArgKind::String);
        assert_eq!(ArgKind::of_value("oneof"), None);
    }

    #[test]
    fn tolerates_unbalanced_brackets() {
        assert_eq!(parse_syntax("key [value").len(), 2);
        assert_eq!(parse_syntax("key ] value").len(), 1);
        assert_eq!(parse_syntax("... key").len(), 1);
    }
}
