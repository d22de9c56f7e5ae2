//! Who may use the server: the `default` user and its passwords (`requirepass`, AUTH, HELLO
//! AUTH). The first part of ACL (issue 19): users with rules come later, on this table.
//!
//! Passwords are kept as SHA-256 digests, as Redis keeps them, and compared in constant time,
//! so neither a memory dump nor response timing reveals them. `requirepass`'s own text is
//! kept too, because CONFIG GET returns it (as Redis does).

use sha2::{Digest, Sha256};

use crate::sync::{AtomicU64, Mutex, Ordering};

/// The error of a failed AUTH or HELLO AUTH: one text for a wrong password, an unknown user
/// and a disabled one, as Redis, so that it tells an attacker nothing.
pub const WRONGPASS: &str = "WRONGPASS invalid username-password pair or user is disabled.";

/// A SHA-256 digest of a password.
type PasswordHash = [u8; 32];

fn hash(password: &[u8]) -> PasswordHash {
    Sha256::digest(password).into()
}

/// Equality that takes the same time wherever the first difference is.
fn constant_time_eq(a: &PasswordHash, b: &PasswordHash) -> bool {
    a.iter().zip(b).fold(0u8, |diff, (x, y)| diff | (x ^ y)) == 0
}

/// The default user's passwords: none (`nopass`: anyone is the default user) or some.
#[derive(Default)]
struct DefaultUser {
    /// `requirepass` as set (CONFIG GET), empty for none.
    requirepass: String,
    /// Digests of the accepted passwords; empty means `nopass`.
    passwords: Vec<PasswordHash>,
}

/// The server's users (for now the default user) and the failed-authentication count.
#[derive(Default)]
pub struct Users {
    default: Mutex<DefaultUser>,
    /// Failed AUTH / HELLO AUTH attempts (INFO `acl_access_denied_auth`).
    denied: AtomicU64,
}

impl Users {
    /// Users with `requirepass` set to `password` (empty: none).
    pub fn new(password: &str) -> Users {
        let users = Users::default();
        users.set_requirepass(password);
        users
    }

    /// Replaces the default user's passwords with `password` (empty: `nopass`), as
    /// `requirepass` and CONFIG SET requirepass do. Connections already authenticated stay
    /// so; new ones need the new password.
    pub fn set_requirepass(&self, password: &str) {
        let mut default = self.default.lock();
        default.requirepass = password.to_owned();
        default.passwords = if password.is_empty() {
            Vec::new()
        } else {
            vec![hash(password.as_bytes())]
        };
    }

    /// `requirepass` as last set.
    pub fn requirepass(&self) -> String {
        self.default.lock().requirepass.clone()
    }

    /// True if a connection must authenticate before it runs commands (the default user has
    /// a password).
    pub fn password_required(&self) -> bool {
        !self.default.lock().passwords.is_empty()
    }

    /// Checks `password` for `user`; an unknown user or a wrong password is [`WRONGPASS`]
    /// (counted). Only the default user exists so far.
    pub fn authenticate(&self, user: &[u8], password: &[u8]) -> Result<(), &'static str> {
        let accepted = user == b"default" && {
            let default = self.default.lock();
            let given = hash(password);
            // `nopass` accepts any password, as Redis; every digest is compared, so the time
            // does not depend on which one matched.
            default.passwords.is_empty()
                || default.passwords.iter().fold(false, |found, stored| {
                    found | constant_time_eq(stored, &given)
                })
        };
        if accepted {
            Ok(())
        } else {
            self.denied.fetch_add(1, Ordering::Relaxed);
            Err(WRONGPASS)
        }
    }

    /// Failed authentications since start (INFO `acl_access_denied_auth`).
    pub fn denied(&self) -> u64 {
        self.denied.load(Ordering::Relaxed)
    }
}

#[cfg(all(test, not(kv_loom)))]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_checked_against_their_digest() {
        let users = Users::new("s3cret");
        assert!(users.password_required());
        assert_eq!(users.authenticate(b"default", b"s3cret"), Ok(()));
        assert_eq!(users.authenticate(b"default", b"s3cre"), Err(WRONGPASS));
        assert_eq!(users.authenticate(b"other", b"s3cret"), Err(WRONGPASS));
        assert_eq!(users.denied(), 2);
        assert_eq!(users.requirepass(), "s3cret");
        users.set_requirepass("");
        assert!(!users.password_required());
        assert_eq!(users.authenticate(b"default", b"anything"), Ok(()));
    }

    #[test]
    fn digests_compare_in_full() {
        let (a, mut b) = (hash(b"x"), hash(b"x"));
        assert!(constant_time_eq(&a, &b));
        b[31] ^= 1;
        assert!(!constant_time_eq(&a, &b));
    }
}
