//! Secrets (API keys, session tokens, invitation tokens) and their stored hashes.
//!
//! A secret is shown once, when made; only its SHA-256 hash is stored (CONTRACT §3).
//! Randomness comes from outside: the domain turns given bytes into a token.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};

/// How many random bytes make a secret: 256 bits, above the contract's 128.
pub const SECRET_BYTES: usize = 32;

/// A secret token as handed to its owner, URL-safe base64 of random bytes.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretToken(String);

impl SecretToken {
    /// Encodes random bytes as a token.
    #[must_use]
    pub fn from_random_bytes(bytes: [u8; SECRET_BYTES]) -> Self {
        Self(URL_SAFE_NO_PAD.encode(bytes))
    }

    /// Wraps a token a caller presented (any string; it is only ever hashed).
    #[must_use]
    pub fn presented(value: &str) -> Self {
        Self(value.to_owned())
    }

    /// The token, to show once.
    #[must_use]
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Its hash, the only form that is stored.
    #[must_use]
    pub fn hash(&self) -> TokenHash {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let digest = Sha256::digest(self.0.as_bytes());
        // Written into an array, then copied once: pushing each digit as a `char` onto a
        // `String` cost more than the rest of this function but the digest itself.
        let mut hex = [0_u8; 64];
        for (pair, byte) in hex.chunks_exact_mut(2).zip(digest) {
            pair[0] = HEX[usize::from(byte >> 4)];
            pair[1] = HEX[usize::from(byte & 0x0f)];
        }
        // Hex digits are ASCII: never the empty default.
        TokenHash(
            std::str::from_utf8(&hex)
                .map(str::to_owned)
                .unwrap_or_default(),
        )
    }
}

impl std::fmt::Debug for SecretToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretToken(<redacted>)")
    }
}

/// The SHA-256 hash of a secret token, lowercase hex.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TokenHash(String);

impl TokenHash {
    /// Wraps a stored hash.
    #[must_use]
    pub fn from_stored(value: String) -> Self {
        Self(value)
    }

    /// The hex digest.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// What a stored credential is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CredentialKind {
    /// A long-lived API key, replaced by `regen_secret`.
    ApiKey,
    /// A session token from `POST /auth/token/`, with an expiry.
    Session,
}

impl CredentialKind {
    /// The storage name.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            CredentialKind::ApiKey => "api_key",
            CredentialKind::Session => "session",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_is_43_url_safe_characters_of_256_bits() {
        let token = SecretToken::from_random_bytes([0xff; SECRET_BYTES]);

        assert_eq!(token.expose().len(), 43);
        assert!(
            token
                .expose()
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        );
    }

    #[test]
    fn the_hash_is_the_sha256_hex_digest() {
        let token = SecretToken::presented("abc");

        assert_eq!(
            token.hash().as_str(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    proptest::proptest! {
        #[test]
        fn the_hash_is_the_lowercase_hex_of_the_digest(token in proptest::prelude::any::<String>()) {
            let expected: String = Sha256::digest(token.as_bytes())
                .iter()
                .map(|byte| format!("{byte:02x}"))
                .collect();
            let hash = SecretToken::presented(&token).hash();
            proptest::prop_assert_eq!(hash.as_str(), expected);
        }
    }

    #[test]
    fn a_token_never_shows_in_debug_output() {
        let token = SecretToken::presented("very-secret");

        assert!(!format!("{token:?}").contains("very-secret"));
    }

    #[test]
    fn different_bytes_make_different_tokens_and_hashes() {
        let a = SecretToken::from_random_bytes([1; SECRET_BYTES]);
        let b = SecretToken::from_random_bytes([2; SECRET_BYTES]);

        assert_ne!(a, b);
        assert_ne!(a.hash(), b.hash());
    }
}
