//! `-u redis://[[user:]password@]host[:port][/db]` URIs, read as redis-cli reads them
//! (`parseRedisUri` in Redis's `cli_common.c`), with invalid ports and escapes reported
//! instead of silently becoming 0.

/// The parts of a URI; absent parts keep their defaults (or the other flags' values).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct RedisUri {
    /// Host name or address (`[::1]` brackets removed).
    pub host: Option<String>,
    /// TCP port.
    pub port: Option<u16>,
    /// ACL user name.
    pub user: Option<Vec<u8>>,
    /// Password.
    pub password: Option<Vec<u8>>,
    /// Database number.
    pub db: Option<i64>,
    /// `rediss://`: connect with TLS.
    pub tls: bool,
}

/// Parses a `redis://` (or `rediss://`, TLS) URI.
///
/// ```
/// let uri = kvcli::uri::parse("redis://default:s%40cret@localhost:7000/2")?;
/// assert_eq!(uri.host.as_deref(), Some("localhost"));
/// assert_eq!(uri.port, Some(7000));
/// assert_eq!(uri.password.as_deref(), Some(&b"s@cret"[..]));
/// assert_eq!(uri.db, Some(2));
/// # Ok::<(), String>(())
/// ```
///
/// # Errors
///
/// A message for the user: wrong scheme (neither `redis://` nor `rediss://`), bad port,
/// database or percent escape.
pub fn parse(uri: &str) -> Result<RedisUri, String> {
    let (rest, tls) = match strip_prefix_ignore_case(uri, "redis://") {
        Some(rest) => (rest, false),
        None => (
            strip_prefix_ignore_case(uri, "rediss://").ok_or("Invalid URI scheme")?,
            true,
        ),
    };
    let mut parsed = RedisUri {
        tls,
        ..RedisUri::default()
    };

    // The user info ends at the first `@`; `user:` before the password is optional.
    let rest = match rest.split_once('@') {
        Some((userinfo, after)) => {
            match userinfo.split_once(':') {
                Some((user, password)) => {
                    parsed.user = Some(percent_decode(user)?);
                    parsed.password = Some(percent_decode(password)?);
                }
                None => parsed.password = Some(percent_decode(userinfo)?),
            }
            after
        }
        None => rest,
    };

    let (authority, path) = match rest.split_once('/') {
        Some((authority, path)) => (authority, Some(path)),
        None => (rest, None),
    };
    let (host, port) = if let Some(bracketed) = authority.strip_prefix('[') {
        match bracketed.split_once(']') {
            Some((host, after)) => (host, after.strip_prefix(':')),
            None => (authority, None),
        }
    } else {
        match authority.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        }
    };
    if !host.is_empty() {
        parsed.host = Some(host.to_owned());
    }
    if let Some(port) = port {
        parsed.port = Some(
            port.parse()
                .map_err(|_| "Invalid server port.".to_owned())?,
        );
    }
    if let Some(db) = path.filter(|p| !p.is_empty()) {
        parsed.db = Some(
            db.parse()
                .map_err(|_| format!("Invalid database number '{db}'"))?,
        );
    }
    Ok(parsed)
}

fn strip_prefix_ignore_case<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
    let head = text.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &text[prefix.len()..])
}

/// Decodes `%XX` escapes.
fn percent_decode(text: &str) -> Result<Vec<u8>, String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'%' {
            let (Some(&high), Some(&low)) = (bytes.get(i + 1), bytes.get(i + 2)) else {
                return Err("Incomplete URI encoding".to_owned());
            };
            let (Some(high), Some(low)) = (hex(high), hex(low)) else {
                return Err("Illegal character in URI encoding".to_owned());
            };
            out.push(high << 4 | low);
            i += 3;
        } else {
            out.push(b);
            i += 1;
        }
    }
    Ok(out)
}

fn hex(digit: u8) -> Option<u8> {
    char::from(digit)
        .to_digit(16)
        .and_then(|d| u8::try_from(d).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(uri: &str) -> RedisUri {
        match parse(uri) {
            Ok(parsed) => parsed,
            Err(err) => panic!("{uri}: {err}"),
        }
    }

    #[test]
    fn full_and_partial_uris() {
        assert_eq!(
            ok("redis://alice:pw@example.com:7000/3"),
            RedisUri {
                host: Some("example.com".to_owned()),
                port: Some(7000),
                user: Some(b"alice".to_vec()),
                password: Some(b"pw".to_vec()),
                db: Some(3),
                tls: false,
            }
        );
        assert_eq!(ok("redis://"), RedisUri::default());
        assert_eq!(ok("REDIS://host").host.as_deref(), Some("host"));
        let password_only = ok("redis://secret@host");
        assert_eq!(
            (password_only.user, password_only.password),
            (None, Some(b"secret".to_vec()))
        );
        let no_host = ok("redis://:6380/1");
        assert_eq!(
            (no_host.host, no_host.port, no_host.db),
            (None, Some(6380), Some(1))
        );
        let ipv6 = ok("redis://[::1]:6390");
        assert_eq!((ipv6.host.as_deref(), ipv6.port), (Some("::1"), Some(6390)));
        assert_eq!(ok("redis://host/").db, None);
        assert_eq!(ok("redis://u:p%3a%2F@h").password, Some(b"p:/".to_vec()));
    }

    #[test]
    fn errors() {
        assert_eq!(parse("http://host"), Err("Invalid URI scheme".to_owned()));
        assert!(parse("rediss://host").is_ok_and(|uri| uri.tls));
        assert!(parse("redis://host").is_ok_and(|uri| !uri.tls));
        assert_eq!(
            parse("redis://host:99999"),
            Err("Invalid server port.".to_owned())
        );
        assert_eq!(
            parse("redis://host:x"),
            Err("Invalid server port.".to_owned())
        );
        assert!(parse("redis://host/x").is_err());
        assert_eq!(
            parse("redis://%4@h"),
            Err("Incomplete URI encoding".to_owned())
        );
        assert_eq!(
            parse("redis://%zz@h"),
            Err("Illegal character in URI encoding".to_owned())
        );
    }
}
