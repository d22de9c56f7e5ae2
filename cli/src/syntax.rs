//! Turns a syntax line in Redis documentation notation (`key value [NX | XX] [EX seconds |
//! KEEPTTL]`, `key [key ...]`) into the argument tree `COMMAND DOCS` would send, for the
//! compiled-in command table ([`crate::commands`]).
//!
//! Conventions: an all-uppercase word is a token (`NX`, `LIB-NAME`); a token followed by a
//! lowercase word introduces that value (`EX seconds`); `[...]` is optional, `|` separates
//! alternatives (a `oneof`), several arguments in one alternative form a `block`, and
//! `[x ...]` after `x` makes `x` repeatable (`multiple`), as Redis documents it.

use crate::hints::{ArgKind, ArgSpec};

/// A syntax element before conversion.
#[derive(Debug, Clone, PartialEq)]
enum Item {
    Word(String),
    /// `[...]`: its `|`-separated alternatives.
    Group(Vec<Vec<Item>>),
    /// `...` after an element.
    Ellipsis,
}

/// The argument tree of `syntax` (empty for a command without arguments).
pub fn parse(syntax: &str) -> Vec<ArgSpec> {
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

fn tokenize(syntax: &str) -> Vec<String> {
    syntax
        .replace('[', " [ ")
        .replace(']', " ] ")
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
            "]" => break,
            "|" => {
                alternatives.push(Vec::new());
                continue;
            }
            "[" => Item::Group(parse_alternatives(tokens, pos)),
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

/// The argument type Redis documents for a value of this name.
fn kind_of(name: &str) -> ArgKind {
    match name {
        "key" | "newkey" | "source" | "destination" => ArgKind::Key,
        "pattern" => ArgKind::Pattern,
        "seconds" | "milliseconds" | "count" | "offset" | "start" | "end" | "index" | "cursor"
        | "decrement" | "db" | "destination-db" | "protover" | "client-id" | "numkeys" => {
            ArgKind::Integer
        }
        "increment" => ArgKind::Double,
        _ if name.starts_with("unix-time") => ArgKind::UnixTime,
        _ => ArgKind::String,
    }
}

fn value(name: &str, token: Option<&str>) -> ArgSpec {
    ArgSpec {
        token: token.map(str::to_owned),
        ..ArgSpec::new(name, kind_of(name))
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
    use crate::hints::syntax;

    fn round_trip(line: &str) -> String {
        syntax(&parse(line))
    }

    #[test]
    fn renders_back_in_redis_cli_notation() {
        assert_eq!(round_trip(""), "");
        assert_eq!(round_trip("key"), "key");
        assert_eq!(round_trip("[message]"), "[message]");
        assert_eq!(round_trip("key [key ...]"), "key [key ...]");
        assert_eq!(
            round_trip("key value [key value ...]"),
            "key value [key value ...]"
        );
        assert_eq!(
            round_trip("[section [section ...]]"),
            "[section [section ...]]"
        );
        assert_eq!(
            round_trip("key seconds [NX | XX | GT | LT]"),
            "key seconds [NX|XX|GT|LT]"
        );
        assert_eq!(
            round_trip("[protover [AUTH username password] [SETNAME clientname]]"),
            "[protover [AUTH username password] [SETNAME clientname]]"
        );
        assert_eq!(
            round_trip("LIB-NAME libname | LIB-VER libver"),
            "LIB-NAME libname|LIB-VER libver"
        );
        assert_eq!(
            round_trip("[ID client-id [client-id ...]]"),
            "[ID client-id [client-id ...]]"
        );
        assert_eq!(
            round_trip("[GET pattern [GET pattern ...]]"),
            "[GET pattern [GET pattern ...]]"
        );
    }

    #[test]
    fn builds_redis_shaped_trees() {
        let set = parse("key value [NX | XX] [GET] [EX seconds | KEEPTTL]");
        assert_eq!(set.len(), 5);
        assert_eq!((set[0].name.as_str(), set[0].kind), ("key", ArgKind::Key));
        assert_eq!(set[2].kind, ArgKind::OneOf);
        assert!(set[2].optional);
        assert_eq!(set[3].kind, ArgKind::PureToken);
        assert_eq!(set[3].token.as_deref(), Some("GET"));
        let expiry = &set[4].children;
        assert_eq!(
            (expiry[0].token.as_deref(), expiry[0].kind),
            (Some("EX"), ArgKind::Integer)
        );
        assert_eq!(expiry[1].kind, ArgKind::PureToken);

        let mset = parse("key value [key value ...]");
        assert_eq!(mset.len(), 1);
        assert_eq!(mset[0].kind, ArgKind::Block);
        assert!(mset[0].multiple && !mset[0].optional);

        let list = parse("[ID client-id [client-id ...]]");
        assert_eq!(list.len(), 1);
        assert_eq!(list[0].token.as_deref(), Some("ID"));
        assert!(list[0].optional && list[0].multiple && !list[0].multiple_token);
        assert_eq!(list[0].kind, ArgKind::Integer);

        let choice = parse("LIB-NAME libname | LIB-VER libver");
        assert_eq!(choice.len(), 1);
        assert!(!choice[0].optional);
        assert_eq!(parse("increment")[0].kind, ArgKind::Double);
        assert_eq!(parse("unix-time-seconds")[0].kind, ArgKind::UnixTime);
    }

    #[test]
    fn tolerates_unbalanced_brackets() {
        assert_eq!(round_trip("key [value"), "key [value]");
        assert_eq!(round_trip("key ] value"), "key");
        assert_eq!(round_trip("... key"), "key");
    }
}
