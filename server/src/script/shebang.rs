//! The first-line headers of scripts and function libraries.
//!
//! An EVAL script may start with `#!lua` and an optional `flags=...` list that tells the server
//! what the script will do (no writes, may run while out of memory, ...). A library loaded with
//! FUNCTION LOAD must start with `#!lua name=<library>`. Both headers are parsed here with the
//! error replies Redis gives for malformed ones.

/// What a script or function declares about itself (`#!lua flags=...` or the `flags` of
/// `redis.register_function`). The server uses these to decide where and whether it may run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ScriptFlags {
    /// The script was declared with a shebang (or is a function). Without one, Redis 7 runs an
    /// EVAL script with the legacy rules: its flags are unknown and writes are not ruled out.
    pub declared: bool,
    /// `no-writes`: the script never writes; it may run with EVAL_RO/FCALL_RO and on replicas.
    pub no_writes: bool,
    /// `allow-oom`: the script may run while the server is over its memory limit.
    pub allow_oom: bool,
    /// `allow-stale`: the script may run on a replica with a stale data set.
    pub allow_stale: bool,
    /// `no-cluster`: the script refuses to run in cluster mode.
    pub no_cluster: bool,
    /// `allow-cross-slot-keys`: the script may touch keys in several cluster slots.
    pub allow_cross_slot_keys: bool,
}

impl ScriptFlags {
    /// Sets the flag called `name` (as written in a shebang or a `flags` table); false when
    /// the name is not a known flag.
    pub fn set_by_name(&mut self, name: &[u8]) -> bool {
        let slot = match name {
            b"no-writes" => &mut self.no_writes,
            b"allow-oom" => &mut self.allow_oom,
            b"allow-stale" => &mut self.allow_stale,
            b"no-cluster" => &mut self.no_cluster,
            b"allow-cross-slot-keys" => &mut self.allow_cross_slot_keys,
            _ => return false,
        };
        *slot = true;
        true
    }

    /// The names of the flags that are set, in the order FUNCTION LIST shows them.
    pub fn names(&self) -> Vec<&'static str> {
        [
            (self.no_writes, "no-writes"),
            (self.allow_oom, "allow-oom"),
            (self.allow_stale, "allow-stale"),
            (self.no_cluster, "no-cluster"),
            (self.allow_cross_slot_keys, "allow-cross-slot-keys"),
        ]
        .into_iter()
        .filter_map(|(set, name)| set.then_some(name))
        .collect()
    }
}

/// A script body split into its declared flags and the Lua source to compile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedScript<'a> {
    /// The flags from the shebang (`declared` false when there is none).
    pub flags: ScriptFlags,
    /// The code to hand to Lua: the body with the shebang line emptied, so that line numbers
    /// in error messages still count it.
    pub code: &'a [u8],
}

/// Splits an EVAL body into its `#!lua flags=...` header and code, with Redis's errors
/// (`ERR Invalid script shebang`, `ERR Unexpected engine in script shebang: ...`, ...).
pub fn parse_script(body: &[u8]) -> Result<ParsedScript<'_>, String> {
    if !body.starts_with(b"#!") {
        return Ok(ParsedScript {
            flags: ScriptFlags::default(),
            code: body,
        });
    }
    let Some(end) = body.iter().position(|&b| b == b'\n') else {
        return Err("ERR Invalid script shebang".to_string());
    };
    let mut parts = words(&body[..end]);
    let engine = parts.next().unwrap_or_default();
    if engine != b"#!lua" {
        return Err(format!(
            "ERR Unexpected engine in script shebang: {}",
            String::from_utf8_lossy(engine)
        ));
    }
    let mut flags = ScriptFlags {
        declared: true,
        ..ScriptFlags::default()
    };
    for part in parts {
        let Some(list) = part.strip_prefix(b"flags=") else {
            return Err(format!(
                "ERR Unknown lua shebang option: {}",
                String::from_utf8_lossy(part)
            ));
        };
        if list.is_empty() {
            continue;
        }
        for name in list.split(|&b| b == b',') {
            if !flags.set_by_name(name) {
                return Err(format!(
                    "ERR Unexpected flag in script shebang: {}",
                    String::from_utf8_lossy(name)
                ));
            }
        }
    }
    Ok(ParsedScript {
        flags,
        code: &body[end..],
    })
}

/// A library's code split into its name (from `#!lua name=<lib>`) and the code to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedLibrary<'a> {
    /// The library name, already checked with [`valid_name`].
    pub name: String,
    /// The code with the header line emptied (line numbers unchanged).
    pub code: &'a [u8],
}

/// Parses the header of a FUNCTION LOAD payload, with Redis's errors (`ERR Missing library
/// metadata`, `ERR Engine 'js' not found`, `ERR Library name was not given`, ...).
pub fn parse_library(code: &[u8]) -> Result<ParsedLibrary<'_>, String> {
    if !code.starts_with(b"#!") {
        return Err("ERR Missing library metadata".to_string());
    }
    let end = code.iter().position(|&b| b == b'\n').unwrap_or(code.len());
    let mut parts = words(&code[..end]);
    let engine = parts.next().unwrap_or_default();
    let engine = engine.get(2..).unwrap_or_default();
    if !engine.eq_ignore_ascii_case(b"lua") {
        return Err(format!(
            "ERR Engine '{}' not found",
            String::from_utf8_lossy(engine)
        ));
    }
    let mut name = None;
    for part in parts {
        match part.strip_prefix(b"name=") {
            Some(_) if name.is_some() => {
                return Err(
                    "ERR Invalid metadata value, name argument was given multiple times"
                        .to_string(),
                )
            }
            Some(value) => name = Some(value),
            None => {
                return Err(format!(
                    "ERR Invalid metadata value given: {}",
                    String::from_utf8_lossy(part)
                ))
            }
        }
    }
    let Some(name) = name else {
        return Err("ERR Library name was not given".to_string());
    };
    if !valid_name(name) {
        return Err(INVALID_NAME.to_string());
    }
    Ok(ParsedLibrary {
        name: String::from_utf8_lossy(name).into_owned(),
        code: &code[end..],
    })
}

/// Redis's reply for a bad library or function name (it uses the same text for both).
pub const INVALID_NAME: &str = "ERR Library names can only contain letters, numbers, or underscores(_) and must be at least one character long";

/// Whether `name` may name a library or a function: ASCII letters, digits and `_`, at least one.
pub fn valid_name(name: &[u8]) -> bool {
    !name.is_empty() && name.iter().all(|&b| b.is_ascii_alphanumeric() || b == b'_')
}

/// The space-separated words of a header line.
fn words(line: &[u8]) -> impl Iterator<Item = &[u8]> {
    line.split(|b| b.is_ascii_whitespace())
        .filter(|w| !w.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn script_err(body: &str) -> String {
        parse_script(body.as_bytes()).unwrap_err()
    }

    fn library_err(code: &str) -> String {
        parse_library(code.as_bytes()).unwrap_err()
    }

    #[test]
    fn script_without_shebang_has_undeclared_flags() {
        let parsed = parse_script(b"return 1").unwrap();
        assert_eq!(parsed.flags, ScriptFlags::default());
        assert_eq!(parsed.code, b"return 1");
    }

    #[test]
    fn script_shebang_flags() {
        let parsed = parse_script(b"#!lua flags=no-writes,allow-oom\nreturn 1").unwrap();
        assert!(parsed.flags.declared && parsed.flags.no_writes && parsed.flags.allow_oom);
        assert!(!parsed.flags.allow_stale);
        assert_eq!(parsed.code, b"\nreturn 1");
        let all =
            parse_script(b"#!lua flags=no-cluster,allow-stale,allow-cross-slot-keys\nreturn 1")
                .unwrap();
        assert_eq!(
            all.flags.names(),
            ["allow-stale", "no-cluster", "allow-cross-slot-keys"]
        );
        // Accepted by Redis 7.0.15: no flags, an empty list, extra spaces.
        assert_eq!(
            parse_script(b"#!lua\nreturn 1").unwrap().flags.names(),
            Vec::<&str>::new()
        );
        assert!(parse_script(b"#!lua flags=\nreturn 1").is_ok());
        assert!(
            parse_script(b"#!lua  flags=no-writes\nreturn 1")
                .unwrap()
                .flags
                .no_writes
        );
    }

    #[test]
    fn script_shebang_errors_match_redis() {
        assert_eq!(
            script_err("#!lua flags=bogus\nreturn 1"),
            "ERR Unexpected flag in script shebang: bogus"
        );
        assert_eq!(
            script_err("#!lua flags=no-writes,\nreturn 1"),
            "ERR Unexpected flag in script shebang: "
        );
        assert_eq!(
            script_err("#!luax\nreturn 1"),
            "ERR Unexpected engine in script shebang: #!luax"
        );
        assert_eq!(
            script_err("#!lua name=foo\nreturn 1"),
            "ERR Unknown lua shebang option: name=foo"
        );
        assert_eq!(
            script_err("#!lua x\nreturn 1"),
            "ERR Unknown lua shebang option: x"
        );
        assert_eq!(script_err("#!lua"), "ERR Invalid script shebang");
        assert_eq!(script_err("#!"), "ERR Invalid script shebang");
    }

    #[test]
    fn library_header() {
        let parsed = parse_library(b"#!lua name=mylib\nredis.register_function()").unwrap();
        assert_eq!(parsed.name, "mylib");
        assert_eq!(parsed.code, b"\nredis.register_function()");
        assert_eq!(
            library_err("redis.register_function('g', f)"),
            "ERR Missing library metadata"
        );
        assert_eq!(library_err("#!js name=x\n"), "ERR Engine 'js' not found");
        assert_eq!(library_err("#!lua\n"), "ERR Library name was not given");
        assert_eq!(
            library_err("#!lua name=a name=b\n"),
            "ERR Invalid metadata value, name argument was given multiple times"
        );
        assert_eq!(
            library_err("#!lua name=x foo=bar\n"),
            "ERR Invalid metadata value given: foo=bar"
        );
        assert_eq!(library_err("#!lua name=bad-name!\n"), INVALID_NAME);
    }

    #[test]
    fn names() {
        assert!(valid_name(b"_a9"));
        assert!(!valid_name(b""));
        assert!(!valid_name(b"bad name"));
    }
}
