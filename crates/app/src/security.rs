//! System implementations of the small driven ports: the real clock, secrets from the
//! operating system's random source, and Argon2id password hashing.

use argon2::password_hash::{PasswordHasher as _, PasswordVerifier as _, SaltString};
use argon2::{Argon2, PasswordHash as Phc};
use async_trait::async_trait;
use rand::RngCore as _;
use rand::rngs::OsRng;

use domain::Timestamp;
use domain::secret::{SECRET_BYTES, SecretToken};
use domain::user::{Password, PasswordHash};
use ports::outbound::{Clock, PasswordHashError, PasswordHasher, SecretGenerator};

/// The wall clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        chrono::Utc::now()
    }
}

/// 256-bit secrets from the operating system's random source.
#[derive(Debug, Clone, Copy, Default)]
pub struct OsSecretGenerator;

impl SecretGenerator for OsSecretGenerator {
    fn generate(&self) -> SecretToken {
        let mut bytes = [0_u8; SECRET_BYTES];
        OsRng.fill_bytes(&mut bytes);
        SecretToken::from_random_bytes(bytes)
    }
}

/// Argon2id with the `argon2` crate's default (OWASP-recommended) parameters, run on
/// the blocking thread pool so that hashing never stalls request handling.
#[derive(Debug, Clone, Copy, Default)]
pub struct Argon2PasswordHasher;

#[async_trait]
impl PasswordHasher for Argon2PasswordHasher {
    async fn hash(&self, password: &Password) -> Result<PasswordHash, PasswordHashError> {
        let password = password.clone();
        tokio::task::spawn_blocking(move || {
            let salt = SaltString::generate(&mut OsRng);
            Argon2::default()
                .hash_password(password.expose().as_bytes(), &salt)
                .map(|phc| PasswordHash::new(phc.to_string()))
                .map_err(|error| PasswordHashError(error.to_string()))
        })
        .await
        .map_err(|error| PasswordHashError(error.to_string()))?
    }

    async fn verify(&self, password: &Password, hash: &PasswordHash) -> bool {
        let password = password.clone();
        let hash = hash.clone();
        tokio::task::spawn_blocking(move || {
            Phc::new(hash.as_str()).is_ok_and(|phc| {
                Argon2::default()
                    .verify_password(password.expose().as_bytes(), &phc)
                    .is_ok()
            })
        })
        .await
        .unwrap_or(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_hashed_password_verifies_and_another_does_not() {
        let hasher = Argon2PasswordHasher;
        let password = Password::parse("correct horse").expect("valid");

        let hash = hasher.hash(&password).await.expect("hashed");

        assert!(hash.as_str().starts_with("$argon2id$"));
        assert!(hasher.verify(&password, &hash).await);
        assert!(
            !hasher
                .verify(&Password::presented("wrong horse"), &hash)
                .await
        );
    }

    #[tokio::test]
    async fn a_malformed_hash_matches_nothing() {
        let hasher = Argon2PasswordHasher;

        let matched = hasher
            .verify(
                &Password::presented("anything"),
                &PasswordHash::new("nope".to_owned()),
            )
            .await;

        assert!(!matched);
    }

    #[test]
    fn generated_secrets_differ() {
        let generator = OsSecretGenerator;

        assert_ne!(generator.generate(), generator.generate());
    }
}
