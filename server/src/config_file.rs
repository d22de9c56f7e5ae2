//! The configuration file, as `redis-server /path/to/redis.conf` reads one: `kvserver
//! kvstore.conf [--flag value ...]`.
//!
//! Each line is a directive named as the flag without its dashes (`tcp-backlog 1024`,
//! `bind 127.0.0.1 ::1`, `user alice on >secret ~app:* +@read`), with Redis's quoting
//! ("double quotes" with `\n`, `\xHH` escapes, 'single quotes'); `#` starts a comment line.
//! The file is turned into flags placed before the command line's, so one parser checks
//! both and flags given on the command line win. As in Redis, a directive given twice keeps
//! its last value, except `user` (every line adds a user) and `save` (every line adds rules).

use std::ffi::OsString;

/// Directives whose lines add up instead of replacing each other.
const CUMULATIVE: &[&str] = &["user"];

/// The arguments `kvserver` runs with: `args` unchanged, or, when the first argument after
/// the program name is a file (not a flag), that file's directives as flags followed by the
/// remaining arguments. `known` says whether a flag name (without dashes) exists.
pub fn expand(args: Vec<OsString>, known: impl Fn(&str) -> bool) -> Result<Vec<OsString>, String> {
    let Some(first) = args.get(1) else {
        return Ok(args);
    };
    if first.to_string_lossy().starts_with('-') {
        return Ok(args);
    }
    let path = std::path::PathBuf::from(first);
    let text = std::fs::read_to_string(&path).map_err(|err| {
        format!(
            "Fatal error, can't open config file '{}': {err}",
            path.display()
        )
    })?;
    let given: Vec<String> = args
        .iter()
        .skip(2)
        .filter_map(|arg| {
            let arg = arg.to_string_lossy();
            let name = arg.strip_prefix("--")?;
            Some(name.split('=').next().unwrap_or(name).to_owned())
        })
        .collect();
    let mut expanded: Vec<OsString> = args.iter().take(1).cloned().collect();
    for (name, values) in directives(&text, &known)? {
        // The command line wins over the file (and `user` lines add to its users).
        if given.contains(&name) && !CUMULATIVE.contains(&name.as_str()) {
            continue;
        }
        expanded.push(format!("--{name}").into());
        expanded.extend(values.into_iter().map(OsString::from));
    }
    expanded.extend(args.into_iter().skip(2));
    Ok(expanded)
}

/// The file's directives in order, each as a flag name and the values the flag takes;
/// repeated ones merged as the module docs say.
fn directives(
    text: &str,
    known: &impl Fn(&str) -> bool,
) -> Result<Vec<(String, Vec<String>)>, String> {
    let mut out: Vec<(String, Vec<String>)> = Vec::new();
    let mut save_rules: Option<Vec<String>> = None;
    for (number, line) in text.lines().enumerate() {
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let bad = |why: &str| {
            format!(
                "*** FATAL CONFIG FILE ERROR ***\nReading the configuration file, at line {}\n\
                 >>> '{trimmed}'\n{why}",
                number + 1
            )
        };
        let words =
            split_args(trimmed).ok_or_else(|| bad("Unbalanced quotes in configuration line"))?;
        let Some((name, values)) = words.split_first() else {
            continue;
        };
        let name = name.to_ascii_lowercase();
        if !known(&name) || values.is_empty() {
            return Err(bad("Bad directive or wrong number of arguments"));
        }
        let values = match name.as_str() {
            // One value: the user's name and rules, as the flag takes them.
            "user" => vec![values.join(" ")],
            // Lines add rules; `save ""` clears those before it.
            "save" => {
                let rules = save_rules.get_or_insert_with(Vec::new);
                if values.iter().all(String::is_empty) {
                    rules.clear();
                } else {
                    rules.extend(values.iter().cloned());
                }
                continue;
            }
            // One value with the addresses separated by spaces, as the flag takes them.
            "bind" => vec![values.join(" ")],
            _ => values.to_vec(),
        };
        if !CUMULATIVE.contains(&name.as_str()) {
            out.retain(|(seen, _)| *seen != name);
        }
        out.push((name, values));
    }
    if let Some(rules) = save_rules {
        out.push(("save".to_owned(), vec![rules.join(" ")]));
    }
    Ok(out)
}

/// Splits a line into words as Redis does (the protocol crate's splitter for inline
/// commands, Redis's `sdssplitargs`: the same quoting rules for both). `None` if a quote is
/// unbalanced.
pub fn split_args(line: &str) -> Option<Vec<String>> {
    let words = protocol::inline::split_args(line.as_bytes()).ok()?;
    Some(
        words
            .iter()
            .map(|word| String::from_utf8_lossy(word).into_owned())
            .collect(),
    )
}

#[cfg(all(test, not(kv_loom)))]
mod tests {
    use super::*;

    fn strings(args: &[OsString]) -> Vec<String> {
        args.iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect()
    }

    #[test]
    fn splits_as_redis() {
        assert_eq!(split_args("a  b\tc").unwrap(), ["a", "b", "c"]);
        assert_eq!(split_args(r#"save "" x"#).unwrap(), ["save", "", "x"]);
        assert_eq!(
            split_args(r#""a\x41\n" 'it\'s'"#).unwrap(),
            ["aA\n", "it's"]
        );
        assert_eq!(split_args(r#""open"#), None);
        assert_eq!(split_args(r#""a"b"#), None);
        assert_eq!(split_args("  ").unwrap(), Vec::<String>::new());
    }

    #[test]
    fn a_file_becomes_flags_that_the_command_line_overrides() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kv.conf");
        std::fs::write(
            &path,
            "# comment\n\ntcp-backlog 128\nport 7000\nport 7001\nbind 127.0.0.1 ::1\n\
             save 900 1\nsave 300 10\nuser alice on >pw ~a:*\nuser bob on nopass\n\
             requirepass \"p w\"\n",
        )
        .unwrap();
        let args = vec![
            OsString::from("kvserver"),
            path.clone().into_os_string(),
            "--port".into(),
            "7002".into(),
            "--user".into(),
            "carol on".into(),
        ];
        let expanded = strings(&expand(args, |_| true).unwrap());
        assert_eq!(
            expanded,
            [
                "kvserver",
                "--tcp-backlog",
                "128",
                "--bind",
                "127.0.0.1 ::1",
                "--user",
                "alice on >pw ~a:*",
                "--user",
                "bob on nopass",
                "--requirepass",
                "p w",
                "--save",
                "900 1 300 10",
                "--port",
                "7002",
                "--user",
                "carol on",
            ]
        );
    }

    #[test]
    fn bad_lines_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kv.conf");
        std::fs::write(&path, "port 1\nno-such-thing 1\n").unwrap();
        let args = vec![OsString::from("kvserver"), path.into_os_string()];
        let err = expand(args, |name| name == "port").unwrap_err();
        assert!(err.contains("at line 2"), "{err}");
        assert!(err.contains("Bad directive"), "{err}");
        let missing = vec![OsString::from("kvserver"), OsString::from("/no/such.conf")];
        assert!(expand(missing, |_| true)
            .unwrap_err()
            .contains("can't open config file"));
    }

    #[test]
    fn flags_alone_are_left_alone() {
        let args = vec![
            OsString::from("kvserver"),
            OsString::from("--port"),
            "1".into(),
        ];
        assert_eq!(expand(args.clone(), |_| true).unwrap(), args);
    }
}
