//! Password digests: passwords are kept as SHA-256 digests, as Redis keeps them, and
//! compared in constant time, so neither a memory dump nor response timing reveals them.
//! Users and their rules are in [`crate::acl`].

use sha2::{Digest, Sha256};

/// A SHA-256 digest of a password.
pub type PasswordHash = [u8; 32];

/// The digest passwords are stored and compared as.
pub fn hash(password: &[u8]) -> PasswordHash {
    Sha256::digest(password).into()
}

/// Equality that takes the same time wherever the first difference is.
pub fn constant_time_eq(a: &PasswordHash, b: &PasswordHash) -> bool {
    a.iter().zip(b).fold(0u8, |diff, (x, y)| diff | (x ^ y)) == 0
}

#[cfg(all(test, not(kv_loom)))]
mod tests {
    use super::*;

    #[test]
    fn digests_compare_in_full() {
        let (a, mut b) = (hash(b"x"), hash(b"x"));
        assert!(constant_time_eq(&a, &b));
        b[31] ^= 1;
        assert!(!constant_time_eq(&a, &b));
    }
}
