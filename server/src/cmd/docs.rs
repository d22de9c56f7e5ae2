//! Turns a command's syntax line (`key value [NX | XX] [EX seconds | KEEPTTL]`) into the
//! argument tree of `COMMAND DOCS`, which redis-cli and kvcli use to hint the remaining
//! arguments while the user types. Keeping one syntax string per command means the docs,
//! the hints and SPEC.md cannot drift apart.

/// One documented argument, in the shape of Redis's `COMMAND DOCS` argument maps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Arg {
    /// Argument name (`key`, `seconds`, or a token's lowercase name).
    pub name: String,
    /// Redis argument type: key, string, integer, double, pattern, unix-time, pure-token,
    /// oneof or block.
    pub kind: &'static str,
    /// The literal token that introduces the argument (`EX` in `EX seconds`).
    pub token: Option<String>,
    /// Can be left out.
    pub optional: bool,
    /// Can be repeated.
    pub multiple: bool,
    /// Members of a oneof or block.
    pub children: Vec<Arg>,
}

#[derive(Debug, Clone, PartialEq)]
enum Item {
    Word(String),
    Group(Vec<Vec<Item>>),
    Ellipsis,
}

fn tokenize(syntax: &str) -> Vec<String> {
    let spaced = syntax
        .replace('[', " [ ")
        .replace(']', " ] ")
        .replace('|', " | ")
        .replace("...", " ... ");
    spaced.split_whitespace().map(str::to_owned).collect()
}

/// Parses alternatives separated by `|` until `]` or the end.
fn parse_alternatives(tokens: &[String], pos: &mut usize) -> Vec<Vec<Item>> {
    let mut alternatives = vec![Vec::new()];
    while let Some(token) = tokens.get(*pos) {
        *pos += 1;
        match token.as_str() {
            "]" => break,
            "|" => alternatives.push(Vec::new()),
            "[" => {
                let group = parse_alternatives(tokens, pos);
                if let Some(current) = alternatives.last_mut() {
                    current.push(Item::Group(group));
                }
            }
            "..." => {
                if let Some(current) = alternatives.last_mut() {
                    current.push(Item::Ellipsis);
                }
            }
            word => {
                if let Some(current) = alternatives.last_mut() {
                    current.push(Item::Word(word.to_owned()));
                }
            }
        }
    }
    alternatives
}

fn is_token(word: &str) -> bool {
    word.chars().any(|c| c.is_ascii_uppercase()) && !word.chars().any(|c| c.is_ascii_lowercase())
}

fn kind_of(name: &str) -> &'static str {
    match name {
        "key" | "newkey" | "source" | "destination" => "key",
        "pattern" => "pattern",
        "seconds" | "milliseconds" | "count" | "offset" | "start" | "end" | "index" | "cursor"
        | "decrement" | "db" | "destination-db" | "protover" | "client-id" | "index1"
        | "index2" | "numkeys" => "integer",
        "increment" => "double",
        _ if name.starts_with("unix-time") => "unix-time",
        _ => "string",
    }
}

fn leaf(name: &str, token: Option<&str>) -> Arg {
    Arg {
        name: name.to_owned(),
        kind: kind_of(name),
        token: token.map(str::to_owned),
        optional: false,
        multiple: false,
        children: Vec::new(),
    }
}

fn pure_token(token: &str) -> Arg {
    Arg {
        name: token.to_ascii_lowercase(),
        kind: "pure-token",
        token: Some(token.to_owned()),
        optional: false,
        multiple: false,
        children: Vec::new(),
    }
}

/// Converts one `|`-free sequence of items into arguments.
fn convert_sequence(items: &[Item]) -> Vec<Arg> {
    let mut args: Vec<Arg> = Vec::new();
    let mut i = 0;
    while i < items.len() {
        match &items[i] {
            Item::Word(word) if is_token(word) => match items.get(i + 1) {
                Some(Item::Word(value)) if !is_token(value) => {
                    args.push(leaf(value, Some(word)));
                    i += 1;
                }
                _ => args.push(pure_token(word)),
            },
            Item::Word(word) => args.push(leaf(word, None)),
            Item::Ellipsis => {
                if let Some(last) = args.last_mut() {
                    last.multiple = true;
                }
            }
            Item::Group(alternatives) => {
                let group = convert_group(alternatives);
                // `key [key ...]` and `key value [key value ...]`: a repetition of what
                // precedes, which Redis documents as one `multiple` argument.
                if !(group.multiple && absorb_repetition(&mut args, &group)) {
                    args.push(group);
                }
            }
        }
        i += 1;
    }
    args
}

/// If `group` repeats the last arguments of `args`, marks them multiple and returns true.
fn absorb_repetition(args: &mut Vec<Arg>, group: &Arg) -> bool {
    let repeated: Vec<&Arg> = if group.kind == "block" {
        group.children.iter().collect()
    } else {
        vec![group]
    };
    let n = repeated.len();
    if args.len() < n {
        return false;
    }
    let tail = &args[args.len() - n..];
    // `ID client-id [client-id ...]`: the token is written once, the values repeat.
    let same = tail
        .iter()
        .zip(&repeated)
        .all(|(a, b)| a.name == b.name && (a.token == b.token || b.token.is_none()));
    if !same {
        return false;
    }
    if n == 1 {
        if let Some(last) = args.last_mut() {
            last.multiple = true;
        }
    } else {
        let children = args.split_off(args.len() - n);
        args.push(Arg {
            name: children
                .iter()
                .map(|c| c.name.as_str())
                .collect::<Vec<_>>()
                .join("-"),
            kind: "block",
            token: None,
            optional: false,
            multiple: true,
            children,
        });
    }
    true
}

/// Converts a bracketed group into one optional argument.
fn convert_group(alternatives: &[Vec<Item>]) -> Arg {
    let mut options: Vec<Arg> = alternatives
        .iter()
        .map(|alternative| {
            let mut args = convert_sequence(alternative);
            if args.len() == 1 {
                args.remove(0)
            } else {
                let multiple = args.last().is_some_and(|a| a.multiple)
                    && alternative.last() == Some(&Item::Ellipsis);
                if multiple {
                    if let Some(last) = args.last_mut() {
                        last.multiple = false;
                    }
                }
                Arg {
                    name: args
                        .iter()
                        .map(|a| a.name.as_str())
                        .collect::<Vec<_>>()
                        .join("-"),
                    kind: "block",
                    token: None,
                    optional: false,
                    multiple,
                    children: args,
                }
            }
        })
        .collect();
    let mut arg = if options.len() == 1 {
        options.remove(0)
    } else {
        Arg {
            name: options
                .iter()
                .map(|a| a.name.as_str())
                .collect::<Vec<_>>()
                .join("-"),
            kind: "oneof",
            token: None,
            optional: false,
            multiple: false,
            children: options,
        }
    };
    arg.optional = true;
    arg
}

/// The documented arguments of a syntax line.
pub fn arguments(syntax: &str) -> Vec<Arg> {
    let tokens = tokenize(syntax);
    let mut pos = 0;
    let alternatives = parse_alternatives(&tokens, &mut pos);
    if alternatives.len() > 1 {
        // Top-level alternatives (`LIB-NAME libname | LIB-VER libver`): one required oneof.
        let mut group = convert_group(&alternatives);
        group.optional = false;
        vec![group]
    } else {
        alternatives
            .first()
            .map(|items| convert_sequence(items))
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_syntax_becomes_redis_like_tree() {
        let args = arguments("key value [NX | XX] [GET] [EX seconds | PX milliseconds | KEEPTTL]");
        assert_eq!(args.len(), 5);
        assert_eq!((args[0].name.as_str(), args[0].kind), ("key", "key"));
        assert_eq!((args[1].name.as_str(), args[1].kind), ("value", "string"));
        assert_eq!(args[2].kind, "oneof");
        assert!(args[2].optional);
        assert_eq!(args[2].children[0].token.as_deref(), Some("NX"));
        assert_eq!(args[3].kind, "pure-token");
        assert!(args[3].optional);
        let expiration = &args[4];
        assert_eq!(expiration.kind, "oneof");
        assert_eq!(expiration.children[0].name, "seconds");
        assert_eq!(expiration.children[0].kind, "integer");
        assert_eq!(expiration.children[0].token.as_deref(), Some("EX"));
        assert_eq!(expiration.children[2].kind, "pure-token");
    }

    #[test]
    fn repetitions_become_multiple() {
        let del = arguments("key [key ...]");
        assert_eq!(del.len(), 1);
        assert!(del[0].multiple && !del[0].optional);
        let mset = arguments("key value [key value ...]");
        assert_eq!(mset.len(), 1);
        assert_eq!(mset[0].kind, "block");
        assert!(mset[0].multiple);
        assert_eq!(mset[0].children.len(), 2);
    }

    #[test]
    fn a_token_written_once_before_repeated_values() {
        let list = arguments("[ID client-id [client-id ...]]");
        assert_eq!(list.len(), 1);
        assert_eq!(list[0].name, "client-id");
        assert_eq!(list[0].token.as_deref(), Some("ID"));
        assert!(list[0].optional && list[0].multiple);
    }

    #[test]
    fn tokens_with_values_and_top_level_choice() {
        let scan = arguments("cursor [MATCH pattern] [COUNT count] [TYPE type]");
        assert_eq!(scan.len(), 4);
        assert_eq!(scan[1].token.as_deref(), Some("MATCH"));
        assert_eq!(scan[1].kind, "pattern");
        assert!(scan[1].optional);
        let setinfo = arguments("LIB-NAME libname | LIB-VER libver");
        assert_eq!(setinfo.len(), 1);
        assert_eq!(setinfo[0].kind, "oneof");
        assert!(!setinfo[0].optional);
        assert!(arguments("").is_empty());
    }
}
