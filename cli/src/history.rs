//! Where the shell's history lives and which lines stay out of it.
//!
//! History is kept in `~/.kvcli_history`, or the file named by [`HISTFILE_ENV`]
//! (`/dev/null` turns it off). Lines that carry secrets (`AUTH`, `HELLO ... AUTH`, `CONFIG
//! SET requirepass` and the other commands redis-cli's `isSensitiveCommand` lists) are
//! never recorded, in memory or on disk.

use std::ffi::OsString;
use std::path::PathBuf;

use bytes::Bytes;

/// Environment variable naming the history file.
pub const HISTFILE_ENV: &str = "KVCLI_HISTFILE";

/// History file name in the home directory.
const HISTFILE_DEFAULT: &str = ".kvcli_history";

/// The history file: [`HISTFILE_ENV`] if set (`None` for `/dev/null`), else
/// `$HOME/.kvcli_history` (`None` without a home directory).
pub fn path(env: impl Fn(&str) -> Option<OsString>) -> Option<PathBuf> {
    match env(HISTFILE_ENV).filter(|p| !p.is_empty()) {
        Some(path) if path == "/dev/null" => None,
        Some(path) => Some(PathBuf::from(path)),
        None => env("HOME")
            .filter(|h| !h.is_empty())
            .map(|home| PathBuf::from(home).join(HISTFILE_DEFAULT)),
    }
}

/// Whether a command line holding `argv` (repeat count removed) must not be recorded.
pub fn is_sensitive(argv: &[Bytes]) -> bool {
    let is = |i: usize, name: &str| {
        argv.get(i)
            .is_some_and(|a| a.eq_ignore_ascii_case(name.as_bytes()))
    };
    let argc = argv.len();
    if is(0, "auth") {
        return true;
    }
    if is(0, "acl") && (is(1, "setuser") || is(1, "deluser") || is(1, "getuser")) {
        return true;
    }
    if is(0, "config") && is(1, "set") {
        const SECRETS: [&str; 5] = [
            "masterauth",
            "masteruser",
            "requirepass",
            "tls-key-file-pass",
            "tls-client-key-file-pass",
        ];
        return (2..argc)
            .step_by(2)
            .any(|i| SECRETS.iter().any(|secret| is(i, secret)));
    }
    if is(0, "hello") {
        // HELLO protover [AUTH username password] [SETNAME clientname]
        let mut i = 2;
        while i < argc {
            if is(i, "auth") {
                return true;
            }
            i += if is(i, "setname") { 2 } else { 1 };
        }
        return false;
    }
    if is(0, "migrate") {
        // MIGRATE host port key db timeout [COPY] [REPLACE] [AUTH pw | AUTH2 user pw] [KEYS ...]
        return (6..argc)
            .take_while(|&i| !is(i, "keys"))
            .any(|i| is(i, "auth") || is(i, "auth2"));
    }
    if is(0, "sentinel") {
        return (is(1, "config")
            && is(2, "set")
            && (is(3, "sentinel-pass") || is(3, "sentinel-user")))
            || (is(1, "set") && (is(3, "auth-pass") || is(3, "auth-user")));
    }
    false
}

/// Whether a line that could not be split into arguments (unbalanced quotes) must not be
/// recorded: it is judged by its leading words, so `AUTH "secret` stays out.
pub fn is_sensitive_unparsed(line: &[u8]) -> bool {
    let words: Vec<Bytes> = line
        .split(u8::is_ascii_whitespace)
        .filter(|w| !w.is_empty())
        .map(|w| Bytes::copy_from_slice(strip_opening_quotes(w)))
        .collect();
    // A leading repeat count (`3 AUTH ...`) does not hide the command.
    let start = usize::from(
        words
            .first()
            .is_some_and(|w| !w.is_empty() && w.iter().all(u8::is_ascii_digit)),
    );
    let command = words.get(start..).unwrap_or_default();
    // Anything that names a sensitive command counts, whatever its arguments.
    is_sensitive(command)
        || command.first().is_some_and(|c| {
            ["hello", "acl", "config", "migrate", "sentinel"]
                .iter()
                .any(|name| c.eq_ignore_ascii_case(name.as_bytes()))
        })
}

/// The word without the quotes that may open it (`"auth` is `auth`).
fn strip_opening_quotes(word: &[u8]) -> &[u8] {
    let start = word
        .iter()
        .position(|&b| b != b'"' && b != b'\'')
        .unwrap_or(word.len());
    &word[start..]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(line: &str) -> Vec<Bytes> {
        line.split(' ')
            .map(|w| Bytes::copy_from_slice(w.as_bytes()))
            .collect()
    }

    #[test]
    fn secrets_are_sensitive() {
        for line in [
            "AUTH pw",
            "auth default pw",
            "ACL SETUSER alice on >pw",
            "CONFIG SET maxclients 10 requirepass pw",
            "HELLO 3 AUTH default pw",
            "hello 3 SETNAME me AUTH u p",
            "MIGRATE h 1 k 0 100 COPY AUTH pw",
            "SENTINEL SET master auth-pass pw",
        ] {
            assert!(is_sensitive(&argv(line)), "{line}");
        }
        for line in [
            "SET auth pw",
            "GET k",
            "HELLO 3",
            "HELLO 3 SETNAME auth",
            "CONFIG SET maxclients 10",
            "CONFIG GET requirepass",
            "MIGRATE h 1 k 0 100 KEYS auth",
        ] {
            assert!(!is_sensitive(&argv(line)), "{line}");
        }
    }

    #[test]
    fn unparsed_lines_are_judged_by_their_command() {
        assert!(is_sensitive_unparsed(b"auth \"secret"));
        assert!(is_sensitive_unparsed(b"  3 AUTH 'x"));
        assert!(is_sensitive_unparsed(b"\"auth x"));
        assert!(is_sensitive_unparsed(b"HELLO 3 AUTH \"u"));
        assert!(!is_sensitive_unparsed(b"set k \"abc"));
        assert!(!is_sensitive_unparsed(b""));
    }

    #[test]
    fn history_file_location() {
        let env = |vars: &'static [(&'static str, &'static str)]| {
            move |name: &str| {
                vars.iter()
                    .find(|(k, _)| *k == name)
                    .map(|(_, v)| OsString::from(v))
            }
        };
        assert_eq!(
            path(env(&[("HOME", "/home/me")])),
            Some(PathBuf::from("/home/me/.kvcli_history"))
        );
        assert_eq!(
            path(env(&[("HOME", "/home/me"), (HISTFILE_ENV, "/tmp/h")])),
            Some(PathBuf::from("/tmp/h"))
        );
        assert_eq!(
            path(env(&[("HOME", "/home/me"), (HISTFILE_ENV, "/dev/null")])),
            None
        );
        assert_eq!(path(env(&[])), None);
    }
}
