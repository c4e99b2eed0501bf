//! Idempotent retries (CONTRACT §12): the key a client sends with a `POST`, the
//! fingerprint that tells one request from another, and the response kept to answer a
//! retry without running the request again. See `docs/idempotency.md`.

use sha2::{Digest as _, Sha256};

/// The longest key, in characters.
pub const MAX_KEY_LENGTH: usize = 255;

/// The fields that hold a secret in a response. A secret is shown once: a replay shows
/// them as `null`, and the kept response never holds them in clear.
pub const SECRET_FIELDS: [&str; 4] = ["api_key", "key", "secret", "token"];

/// An `Idempotency-Key`: 1 to 255 visible ASCII characters (no space, no control).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct IdempotencyKey(String);

/// A value that is no idempotency key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("an Idempotency-Key is 1 to {MAX_KEY_LENGTH} visible ASCII characters")]
pub struct InvalidIdempotencyKey;

impl IdempotencyKey {
    /// Reads a key from the raw bytes of a header value.
    ///
    /// # Errors
    /// `InvalidIdempotencyKey` when it is empty, longer than [`MAX_KEY_LENGTH`], or holds
    /// anything but visible ASCII (a space, a control character, a non-ASCII byte).
    pub fn parse(raw: &[u8]) -> Result<Self, InvalidIdempotencyKey> {
        let usable =
            (1..=MAX_KEY_LENGTH).contains(&raw.len()) && raw.iter().all(u8::is_ascii_graphic);
        if !usable {
            return Err(InvalidIdempotencyKey);
        }
        String::from_utf8(raw.to_vec())
            .map(Self)
            .map_err(|_| InvalidIdempotencyKey)
    }

    /// The key.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// What makes two requests "the same request" for one key: the method, the path (with or
/// without its trailing slash) and query, and the body as the adapter canonicalized it
/// (for JSON: key order and spacing ignored). Kept as the SHA-256 hex digest.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RequestFingerprint(String);

impl RequestFingerprint {
    /// The fingerprint of a request. `path` is compared without its trailing slash
    /// (CONTRACT §2: every path works with and without it); `query` as given.
    #[must_use]
    pub fn of(method: &str, path: &str, query: Option<&str>, canonical_body: &[u8]) -> Self {
        let path = match path.strip_suffix('/') {
            Some("") | None => path,
            Some(stripped) => stripped,
        };
        let mut hasher = Sha256::new();
        // Each part is preceded by its length, so that no two requests share an input.
        for part in [
            method.as_bytes(),
            path.as_bytes(),
            query.unwrap_or_default().as_bytes(),
            canonical_body,
        ] {
            hasher.update((part.len() as u64).to_be_bytes());
            hasher.update(part);
        }
        Self(
            hasher
                .finalize()
                .iter()
                .map(|byte| format!("{byte:02x}"))
                .collect(),
        )
    }

    /// A fingerprint as stored.
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

/// A response as kept for replays: its status, the headers that matter, its body (with
/// its secrets already removed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedResponse {
    /// The HTTP status code.
    pub status: u16,
    /// Header names (lowercase) and values, in order.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

impl RecordedResponse {
    /// Whether a later request with the same key replays this response. A server error
    /// (`5xx`) is not kept: the request may not have happened, and a retry runs it again.
    /// Nor is a `429`: it refuses a request that did not run, only for now, and says when
    /// to retry (`Retry-After`); keeping it would answer that retry with the same refusal
    /// for as long as the key lives. Every other answer, `4xx` included, is what the
    /// request did, and is kept.
    #[must_use]
    pub fn is_kept(&self) -> bool {
        self.status < 500 && self.status != 429
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_is_one_to_255_visible_ascii_characters() {
        assert!(IdempotencyKey::parse(b"a").is_ok());
        assert!(IdempotencyKey::parse(b"4f1c-9e2a_retry!~").is_ok());
        assert!(IdempotencyKey::parse(&[b'k'; MAX_KEY_LENGTH]).is_ok());

        assert_eq!(IdempotencyKey::parse(b""), Err(InvalidIdempotencyKey));
        assert_eq!(
            IdempotencyKey::parse(&[b'k'; MAX_KEY_LENGTH + 1]),
            Err(InvalidIdempotencyKey)
        );
        assert_eq!(
            IdempotencyKey::parse(b"two words"),
            Err(InvalidIdempotencyKey)
        );
        assert_eq!(
            IdempotencyKey::parse(b"tab\there"),
            Err(InvalidIdempotencyKey)
        );
        assert_eq!(IdempotencyKey::parse(b"nul\0"), Err(InvalidIdempotencyKey));
        assert_eq!(
            IdempotencyKey::parse(b"del\x7f"),
            Err(InvalidIdempotencyKey)
        );
        assert_eq!(
            IdempotencyKey::parse("caf\u{e9}".as_bytes()),
            Err(InvalidIdempotencyKey)
        );
    }

    #[test]
    fn a_parsed_key_keeps_its_characters() {
        let key = IdempotencyKey::parse(b"Order-42").expect("valid");

        assert_eq!(key.as_str(), "Order-42");
    }

    #[test]
    fn the_fingerprint_ignores_the_trailing_slash_of_the_path() {
        let with = RequestFingerprint::of("POST", "/organizations/", None, b"{}");
        let without = RequestFingerprint::of("POST", "/organizations", None, b"{}");

        assert_eq!(with, without);
        assert_eq!(
            RequestFingerprint::of("POST", "/", None, b""),
            RequestFingerprint::of("POST", "/", None, b"")
        );
    }

    #[test]
    fn the_fingerprint_tells_method_path_query_and_body_apart() {
        let base = RequestFingerprint::of("POST", "/organizations/", None, b"{}");

        assert_ne!(
            base,
            RequestFingerprint::of("PUT", "/organizations/", None, b"{}")
        );
        assert_ne!(
            base,
            RequestFingerprint::of("POST", "/organizations/1/", None, b"{}")
        );
        assert_ne!(
            base,
            RequestFingerprint::of("POST", "/organizations/", Some("a=1"), b"{}")
        );
        assert_ne!(
            base,
            RequestFingerprint::of("POST", "/organizations/", None, b"{\"a\":1}")
        );
        // Lengths separate the parts: moving a byte from one part to the next changes it.
        assert_ne!(
            RequestFingerprint::of("POST", "/a", None, b"b"),
            RequestFingerprint::of("POST", "/", None, b"ab")
        );
    }

    #[test]
    fn the_fingerprint_is_a_sha256_hex_digest() {
        let fingerprint = RequestFingerprint::of("POST", "/me/regen_secret/", None, b"");

        assert_eq!(fingerprint.as_str().len(), 64);
        assert!(fingerprint.as_str().chars().all(|c| c.is_ascii_hexdigit()));
    }

    #[test]
    fn server_errors_and_rate_limits_are_not_kept_other_answers_are() {
        let answer = |status| RecordedResponse {
            status,
            headers: Vec::new(),
            body: Vec::new(),
        };

        for kept in [200, 201, 204, 400, 403, 404, 409, 412, 413, 415] {
            assert!(answer(kept).is_kept(), "{kept}");
        }
        for not_kept in [429, 500, 502, 503, 504] {
            assert!(!answer(not_kept).is_kept(), "{not_kept}");
        }
    }
}
