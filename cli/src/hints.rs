//! The hint shown after what the user has typed so far, from an argument tree in the shape of
//! Redis's `COMMAND DOCS` (`name`, `type`, `token`, flags `optional` / `multiple` /
//! `multiple_token`, nested `arguments` for `oneof` and `block`). The tree types are the
//! catalogue's ([`ArgSpec`], [`ArgKind`], re-exported here), whether the tree came from the
//! server or from `protocol::catalogue::parse_syntax`.
//!
//! The matching follows redis-cli 7.2 (`matchArgs` / `addHintForArguments` in
//! `redis-cli.c`): the typed words are matched against the tree, positional arguments
//! left to right and each run of consecutive optional arguments in any order, and the hint
//! lists what was not matched yet, so `SET k v EX 10 ` hints `[NX|XX] [GET]`. The match state
//! lives in a `State` tree built per call, so the argument tree itself stays immutable and
//! can be shared with the line editor.

pub use protocol::catalogue::{ArgKind, ArgSpec};

/// How far the typed words matched one argument (redis-cli's `matched*` fields).
#[derive(Debug, Default, Clone)]
struct State {
    /// Words matched so far (0: not matched at all).
    matched: usize,
    /// The token was typed.
    matched_token: bool,
    /// The value after the token was typed.
    matched_name: bool,
    /// Completely typed: nothing left to hint.
    matched_all: bool,
    /// States of the nested arguments.
    children: Vec<State>,
}

impl State {
    fn for_spec(spec: &ArgSpec) -> State {
        State {
            children: states_for(&spec.children),
            ..State::default()
        }
    }

    fn clear(&mut self) {
        self.matched = 0;
        self.matched_token = false;
        self.matched_name = false;
        self.matched_all = false;
        self.children.iter_mut().for_each(State::clear);
    }
}

fn states_for(specs: &[ArgSpec]) -> Vec<State> {
    specs.iter().map(State::for_spec).collect()
}

/// The hint for `args` after the user typed `words` (the arguments after the command
/// name). `None` when the words do not fit the documented arguments.
///
/// ```
/// use kvcli::hints::{hint, ArgKind, ArgSpec};
///
/// let args = [ArgSpec::new("key", ArgKind::Key), ArgSpec::new("value", ArgKind::String)];
/// assert_eq!(hint::<&str>(&args, &[]).as_deref(), Some("key value"));
/// assert_eq!(hint(&args, &["k"]).as_deref(), Some("value"));
/// ```
pub fn hint<W: AsRef<[u8]>>(args: &[ArgSpec], words: &[W]) -> Option<String> {
    let words: Vec<&[u8]> = words.iter().map(AsRef::as_ref).collect();
    let mut states = states_for(args);
    if match_args(&words, args, &mut states) != words.len() {
        return None;
    }
    let mut out = String::new();
    add_hint_for_arguments(&mut out, args, &mut states, " ");
    let trimmed = out.trim_end().len();
    out.truncate(trimmed);
    Some(out)
}

/// The full syntax line of `args` (what `help` prints): the hint for no typed words.
pub fn syntax(args: &[ArgSpec]) -> String {
    hint::<&[u8]>(args, &[]).unwrap_or_default()
}

// -----------------------------------------------------------------------------------------
// Matching typed words against the tree.
// -----------------------------------------------------------------------------------------

/// Matches as many `words` as possible against `args`; returns how many matched.
fn match_args(words: &[&[u8]], args: &[ArgSpec], states: &mut [State]) -> usize {
    let mut next_word = 0;
    let mut next_arg = 0;
    while next_word < words.len() && next_arg < args.len() {
        let rest = &words[next_word..];
        let matched = if args[next_arg].optional {
            // Consecutive optional arguments may come in any order: match them as a group.
            let end = args[next_arg..]
                .iter()
                .position(|a| !a.optional)
                .map_or(args.len(), |p| next_arg + p);
            let matched =
                match_optional_args(rest, &args[next_arg..end], &mut states[next_arg..end]);
            next_arg = end;
            matched
        } else {
            let matched = match_arg(rest, &args[next_arg], &mut states[next_arg]);
            if matched == 0 {
                // A required argument that does not match: the words do not fit.
                return 0;
            }
            next_arg += 1;
            matched
        };
        next_word += matched;
    }
    next_word
}

/// Matches words against a run of optional arguments, each at most once, in any order.
fn match_optional_args(words: &[&[u8]], args: &[ArgSpec], states: &mut [State]) -> usize {
    let mut next_word = 0;
    let mut last_matched: Option<usize> = None;
    while next_word < words.len() {
        let Some((matched, index)) = match_one_optional_arg(&words[next_word..], args, states)
        else {
            break;
        };
        // Another option was started, so the previous one is complete: hint nothing of it.
        if let Some(last) = last_matched {
            states[last].matched_all = true;
        }
        last_matched = Some(index);
        next_word += matched;
    }
    next_word
}

/// Matches the next words against the first optional argument not matched yet that fits.
fn match_one_optional_arg(
    words: &[&[u8]],
    args: &[ArgSpec],
    states: &mut [State],
) -> Option<(usize, usize)> {
    for (index, (spec, state)) in args.iter().zip(states.iter_mut()).enumerate() {
        if state.matched != 0 {
            continue;
        }
        let matched = match_arg(words, spec, state);
        if matched != 0 {
            return Some((matched, index));
        }
    }
    None
}

/// Matches one argument, as many times as it may repeat; returns the words matched.
fn match_arg(words: &[&[u8]], spec: &ArgSpec, state: &mut State) -> usize {
    let mut matched_once = match_arg_once(words, spec, state);
    if !spec.multiple {
        return matched_once;
    }
    let mut matched_words = matched_once;
    while state.matched_all && matched_words < words.len() && matched_once > 0 {
        state.clear();
        let rest = &words[matched_words..];
        if spec.token.is_some() && !spec.multiple_token {
            // The token comes once, then only values repeat.
            matched_once = match_no_token_arg(rest, spec, state);
            if state.matched != 0 {
                state.matched_token = true;
            }
        } else {
            matched_once = match_arg_once(rest, spec, state);
        }
        matched_words += matched_once;
    }
    // More repetitions may follow, so a multiple argument is never complete.
    state.matched_all = false;
    matched_words
}

/// Matches one occurrence of an argument: its token, then its value.
fn match_arg_once(words: &[&[u8]], spec: &ArgSpec, state: &mut State) -> usize {
    let mut words = words;
    if let Some(token) = &spec.token {
        let Some(first) = words.first() else {
            return 0;
        };
        if !first.eq_ignore_ascii_case(token.as_bytes()) {
            return 0;
        }
        state.matched_token = true;
        state.matched = 1;
        if spec.kind == ArgKind::PureToken {
            state.matched_all = true;
            return 1;
        }
        if words.len() == 1 {
            return 1;
        }
        words = &words[1..];
    }
    if match_no_token_arg(words, spec, state) == 0 {
        return 0;
    }
    state.matched
}

/// Matches the value part of an argument (what follows its token, if any).
fn match_no_token_arg(words: &[&[u8]], spec: &ArgSpec, state: &mut State) -> usize {
    let Some(word) = words.first() else {
        return state.matched;
    };
    match spec.kind {
        ArgKind::Block => {
            state.matched += match_args(words, &spec.children, &mut state.children);
            state.matched_all = state.children.iter().all(|c| c.matched_all);
        }
        ArgKind::OneOf => {
            for (child, child_state) in spec.children.iter().zip(state.children.iter_mut()) {
                if match_arg(words, child, child_state) != 0 {
                    state.matched += child_state.matched;
                    state.matched_all = child_state.matched_all;
                    break;
                }
            }
        }
        ArgKind::Integer | ArgKind::UnixTime | ArgKind::Double => {
            let fits = if spec.kind == ArgKind::Double {
                starts_with_number(word)
            } else {
                starts_with_integer(word)
            };
            if fits {
                state.matched += 1;
                state.matched_name = true;
                state.matched_all = true;
            } else {
                state.matched = 0;
                state.matched_name = false;
            }
        }
        ArgKind::String | ArgKind::Key | ArgKind::Pattern | ArgKind::PureToken => {
            state.matched += 1;
            state.matched_name = true;
            state.matched_all = true;
        }
    }
    state.matched
}

/// What C's `sscanf(word, "%lld")` accepts: optional sign, then at least one digit.
fn starts_with_integer(word: &[u8]) -> bool {
    let digits = match word.first() {
        Some(b'+' | b'-') => &word[1..],
        _ => word,
    };
    digits.first().is_some_and(u8::is_ascii_digit)
}

/// Roughly what C's `sscanf(word, "%lf")` accepts: a number, or `inf` / `nan`.
fn starts_with_number(word: &[u8]) -> bool {
    let rest = match word.first() {
        Some(b'+' | b'-') => &word[1..],
        _ => word,
    };
    match rest {
        [d, ..] if d.is_ascii_digit() => true,
        [b'.', d, ..] if d.is_ascii_digit() => true,
        _ => {
            let lower = rest.to_ascii_lowercase();
            lower.starts_with(b"inf") || lower.starts_with(b"nan")
        }
    }
}

// -----------------------------------------------------------------------------------------
// Writing the hint for what was not matched.
// -----------------------------------------------------------------------------------------

/// Appends `separator` if `out` grew since `*len` and this is not the last argument.
fn add_separator(out: &mut String, len: &mut usize, separator: &str, is_last: bool) {
    if out.len() > *len && !is_last {
        out.push_str(separator);
        *len = out.len();
    }
}

/// Appends the hint for each argument of `args`, joined by `separator`.
fn add_hint_for_arguments(out: &mut String, args: &[ArgSpec], states: &mut [State], sep: &str) {
    let mut len = out.len();
    let last = args.len().saturating_sub(1);
    let mut i = 0;
    while i < args.len() {
        if !args[i].optional {
            add_hint_for_argument(out, &args[i], &mut states[i]);
            add_separator(out, &mut len, sep, i == last);
            i += 1;
            continue;
        }
        // A run of optional arguments: the one being typed comes first.
        let end = args[i..]
            .iter()
            .position(|a| !a.optional)
            .map_or(args.len(), |p| i + p);
        let mut incomplete = None;
        for j in i..end {
            if states[j].matched != 0 && !states[j].matched_all {
                add_hint_for_argument(out, &args[j], &mut states[j]);
                add_separator(out, &mut len, sep, i == last);
                incomplete = Some(j);
            }
        }
        // Once the required argument after the run was typed, the run is over.
        if end == args.len() || states[end].matched == 0 {
            for j in i..end {
                if incomplete != Some(j) {
                    add_hint_for_argument(out, &args[j], &mut states[j]);
                    add_separator(out, &mut len, sep, j == last);
                }
            }
        }
        i = end;
    }
}

/// Appends the hint for one argument, leaving out the parts already typed.
fn add_hint_for_argument(out: &mut String, spec: &ArgSpec, state: &mut State) {
    if state.matched_all {
        return;
    }
    let bracket = spec.optional && state.matched == 0;
    if bracket {
        out.push('[');
    }
    if let Some(token) = &spec.token {
        if !state.matched_token {
            push_or_empty(out, token);
            if spec.kind != ArgKind::PureToken {
                out.push(' ');
            }
        }
    }
    match spec.kind {
        // Nothing typed, or only the oneof's own token (`TYPE` in `[TYPE NORMAL|PUBSUB]`,
        // where redis-cli 7.2 shows nothing): every choice is still open.
        ArgKind::OneOf if state.children.iter().all(|c| c.matched == 0) => {
            add_hint_for_arguments(out, &spec.children, &mut state.children, "|");
        }
        ArgKind::OneOf => {
            for (child, child_state) in spec.children.iter().zip(state.children.iter_mut()) {
                if child_state.matched != 0 {
                    add_hint_for_argument(out, child, child_state);
                }
            }
        }
        ArgKind::Block => add_hint_for_arguments(out, &spec.children, &mut state.children, " "),
        ArgKind::PureToken => {}
        _ => {
            if !state.matched_name {
                push_or_empty(out, spec.label());
            }
        }
    }
    add_hint_for_repeated_argument(out, spec, state);
    if bracket {
        out.push(']');
    }
}

/// Appends `[... ...]`, the repetition of a `multiple` argument (always hinted whole).
fn add_hint_for_repeated_argument(out: &mut String, spec: &ArgSpec, state: &mut State) {
    if !spec.multiple {
        return;
    }
    state.clear();
    if !out.is_empty() {
        out.push(' ');
    }
    out.push('[');
    if spec.multiple_token {
        if let Some(token) = &spec.token {
            push_or_empty(out, token);
            if spec.kind != ArgKind::PureToken {
                out.push(' ');
            }
        }
    }
    match spec.kind {
        ArgKind::OneOf => add_hint_for_arguments(out, &spec.children, &mut state.children, "|"),
        ArgKind::Block => add_hint_for_arguments(out, &spec.children, &mut state.children, " "),
        ArgKind::PureToken => {}
        _ => push_or_empty(out, spec.label()),
    }
    out.push_str(" ...]");
}

/// Appends `text`, or `""` when it is empty so that the hint still shows something.
fn push_or_empty(out: &mut String, text: &str) {
    if text.is_empty() {
        out.push_str("\"\"");
    } else {
        out.push_str(text);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn arg(name: &str, kind: ArgKind) -> ArgSpec {
        ArgSpec::new(name, kind)
    }

    fn token(token: &str, name: &str, kind: ArgKind) -> ArgSpec {
        ArgSpec {
            token: Some(token.to_owned()),
            ..arg(name, kind)
        }
    }

    fn pure(token_text: &str) -> ArgSpec {
        token(
            token_text,
            &token_text.to_ascii_lowercase(),
            ArgKind::PureToken,
        )
    }

    fn optional(mut spec: ArgSpec) -> ArgSpec {
        spec.optional = true;
        spec
    }

    fn multiple(mut spec: ArgSpec) -> ArgSpec {
        spec.multiple = true;
        spec
    }

    fn group(kind: ArgKind, name: &str, children: Vec<ArgSpec>) -> ArgSpec {
        ArgSpec {
            children,
            ..arg(name, kind)
        }
    }

    /// SET's arguments as Redis 7 documents them.
    fn set_args() -> Vec<ArgSpec> {
        vec![
            arg("key", ArgKind::Key),
            arg("value", ArgKind::String),
            optional(group(
                ArgKind::OneOf,
                "condition",
                vec![pure("NX"), pure("XX")],
            )),
            optional(pure("GET")),
            optional(group(
                ArgKind::OneOf,
                "expiration",
                vec![
                    token("EX", "seconds", ArgKind::Integer),
                    token("PX", "milliseconds", ArgKind::Integer),
                    token("EXAT", "unix-time-seconds", ArgKind::UnixTime),
                    token("PXAT", "unix-time-milliseconds", ArgKind::UnixTime),
                    pure("KEEPTTL"),
                ],
            )),
        ]
    }

    fn h(args: &[ArgSpec], words: &[&str]) -> Option<String> {
        hint(args, words)
    }

    const SET_OPTIONS: &str = "[NX|XX] [GET] [EX seconds|PX milliseconds|EXAT unix-time-seconds|PXAT unix-time-milliseconds|KEEPTTL]";

    #[test]
    fn full_syntax() {
        assert_eq!(syntax(&set_args()), format!("key value {SET_OPTIONS}"));
        assert_eq!(syntax(&[]), "");
    }

    #[test]
    fn positional_arguments_drop_as_typed() {
        let args = set_args();
        assert_eq!(h(&args, &["k"]).unwrap(), format!("value {SET_OPTIONS}"));
        assert_eq!(h(&args, &["k", "v"]).unwrap(), SET_OPTIONS);
    }

    #[test]
    fn typed_options_drop_in_any_order() {
        let args = set_args();
        assert_eq!(h(&args, &["k", "v", "NX"]).unwrap(), "[GET] [EX seconds|PX milliseconds|EXAT unix-time-seconds|PXAT unix-time-milliseconds|KEEPTTL]");
        assert_eq!(h(&args, &["k", "v", "ex", "10"]).unwrap(), "[NX|XX] [GET]");
        assert_eq!(h(&args, &["k", "v", "get", "xx", "keepttl"]).unwrap(), "");
    }

    #[test]
    fn a_started_option_is_hinted_first() {
        let args = set_args();
        assert_eq!(
            h(&args, &["k", "v", "EX"]).unwrap(),
            "seconds [NX|XX] [GET]"
        );
        assert_eq!(
            h(&args, &["k", "v", "PXAT"]).unwrap(),
            "unix-time-milliseconds [NX|XX] [GET]"
        );
    }

    #[test]
    fn words_that_do_not_fit_give_no_hint() {
        let args = set_args();
        // `EX` needs an integer.
        assert_eq!(h(&args, &["k", "v", "EX", "soon"]), None);
        assert_eq!(h(&args, &["k", "v", "BOGUS"]), None);
        assert_eq!(h(&[], &["extra"]), None);
        assert_eq!(h(&[], &[]).as_deref(), Some(""));
    }

    #[test]
    fn multiple_arguments_keep_their_repetition() {
        let del = [multiple(arg("key", ArgKind::Key))];
        assert_eq!(h(&del, &[]).unwrap(), "key [key ...]");
        assert_eq!(h(&del, &["a"]).unwrap(), "[key ...]");
        assert_eq!(h(&del, &["a", "b", "c"]).unwrap(), "[key ...]");

        let mset = [multiple(group(
            ArgKind::Block,
            "data",
            vec![arg("key", ArgKind::Key), arg("value", ArgKind::String)],
        ))];
        assert_eq!(h(&mset, &[]).unwrap(), "key value [key value ...]");
        assert_eq!(h(&mset, &["a"]).unwrap(), "value [key value ...]");
        assert_eq!(h(&mset, &["a", "1"]).unwrap(), "[key value ...]");
    }

    #[test]
    fn tokens_with_values_and_nested_blocks() {
        // SCAN cursor [MATCH pattern] [COUNT count] [TYPE type]
        let scan = [
            arg("cursor", ArgKind::Integer),
            optional(token("MATCH", "pattern", ArgKind::Pattern)),
            optional(token("COUNT", "count", ArgKind::Integer)),
            optional(token("TYPE", "type", ArgKind::String)),
        ];
        assert_eq!(
            h(&scan, &[]).unwrap(),
            "cursor [MATCH pattern] [COUNT count] [TYPE type]"
        );
        assert_eq!(
            h(&scan, &["0"]).unwrap(),
            "[MATCH pattern] [COUNT count] [TYPE type]"
        );
        assert_eq!(
            h(&scan, &["0", "count", "5"]).unwrap(),
            "[MATCH pattern] [TYPE type]"
        );
        assert_eq!(h(&scan, &["zero"]), None);

        // HELLO [protover [AUTH username password] [SETNAME clientname]]
        let hello = [optional(group(
            ArgKind::Block,
            "arguments",
            vec![
                arg("protover", ArgKind::Integer),
                optional(group(
                    ArgKind::Block,
                    "auth",
                    vec![
                        token("AUTH", "username", ArgKind::String),
                        arg("password", ArgKind::String),
                    ],
                )),
                optional(token("SETNAME", "clientname", ArgKind::String)),
            ],
        ))];
        assert_eq!(
            h(&hello, &[]).unwrap(),
            "[protover [AUTH username password] [SETNAME clientname]]"
        );
        assert_eq!(
            h(&hello, &["3"]).unwrap(),
            "[AUTH username password] [SETNAME clientname]"
        );
        assert_eq!(
            h(&hello, &["3", "AUTH"]).unwrap(),
            "username password [SETNAME clientname]"
        );
    }

    #[test]
    fn display_text_and_empty_names() {
        let mut spec = arg("unix-time-seconds", ArgKind::UnixTime);
        spec.display = Some("unix-time".to_owned());
        assert_eq!(syntax(&[spec]), "unix-time");
        assert_eq!(syntax(&[arg("", ArgKind::String)]), "\"\"");
    }

    #[test]
    fn numbers_as_sscanf_reads_them() {
        assert!(starts_with_integer(b"12"));
        assert!(starts_with_integer(b"-1x"));
        assert!(!starts_with_integer(b"x1"));
        assert!(!starts_with_integer(b"-"));
        assert!(starts_with_number(b"1.5"));
        assert!(starts_with_number(b".5"));
        assert!(starts_with_number(b"-inf"));
        assert!(!starts_with_number(b"abc"));
    }

    #[test]
    fn kind_names() {
        assert_eq!(ArgKind::from_name("pure-token"), ArgKind::PureToken);
        assert_eq!(ArgKind::from_name("unix-time"), ArgKind::UnixTime);
        assert_eq!(ArgKind::from_name("whatever"), ArgKind::String);
    }

    /// The catalogue's syntax lines, parsed and rendered back as redis-cli prints them.
    fn round_trip(line: &str) -> String {
        syntax(&protocol::catalogue::parse_syntax(line))
    }

    #[test]
    fn parsed_syntax_renders_back_in_redis_cli_notation() {
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
        assert_eq!(round_trip("key increment:integer"), "key increment");
        assert_eq!(round_trip("key [value"), "key [value]");
        assert_eq!(round_trip("key ] value"), "key");
    }
}
