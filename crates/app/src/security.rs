//! System implementations of the small driven ports: the real clock, secrets from the
//! operating system's random source, and Argon2id password hashing in a bounded
//! number of slots.

use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration as StdDuration;

use argon2::password_hash::{Output, ParamsString, Salt, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, PasswordHash as Phc, Version};
use async_trait::async_trait;
use rand::RngCore as _;
use rand::rngs::OsRng;
use tokio::sync::Semaphore;

use domain::secret::{SECRET_BYTES, SecretToken};
use domain::user::{Password, PasswordHash};
use domain::{Duration, Timestamp};
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

/// How many password hashes may run at once, and how long a request waits for a turn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HashingSettings {
    /// Hashes computed at the same time (`ORGS_HASH_CONCURRENCY`; default: the number
    /// of CPUs). Each one holds Argon2id's 19 MiB, so this also bounds their memory.
    pub concurrency: usize,
    /// How long a request waits for a hashing slot before it is refused with `503`
    /// (`ORGS_HASH_WAIT`, default `5s`).
    pub max_wait: StdDuration,
}

impl Default for HashingSettings {
    fn default() -> Self {
        Self {
            concurrency: std::thread::available_parallelism().map_or(1, NonZeroUsize::get),
            max_wait: StdDuration::from_secs(5),
        }
    }
}

/// A well-formed Argon2id hash, with the `argon2` crate's default parameters
/// (m=19456, t=2, p=1, as `hash` uses; a test checks they stay equal), of a random
/// password nobody knows: what unknown identifiers are verified against.
const DECOY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$\
    c2VjcmV0LWRlY295LXNhbHQ$\
    Ws4pP0hGr3lBTmG1dMJ+uYTL4S7kM8p7xeCfHdQ6U3E";

/// Argon2id with the `argon2` crate's default (OWASP-recommended) parameters, run on
/// the blocking thread pool so that hashing never stalls request handling.
///
/// At most `concurrency` hashes run at once, each in the working memory of its slot:
/// one 19 MiB buffer per slot, made on its first use and kept, so that the memory that
/// hashing takes is `concurrency` × 19 MiB whatever the traffic (letting each hash
/// allocate its own would leave freed buffers resident in the allocator of every thread
/// that ever hashed). A request that finds every slot taken for `max_wait` gets `Busy`
/// (CONTRACT §9).
#[derive(Debug, Clone)]
pub struct Argon2PasswordHasher {
    slots: Arc<Semaphore>,
    memory: Arc<Mutex<Vec<Vec<Block>>>>,
    max_wait: StdDuration,
}

impl Argon2PasswordHasher {
    /// A hasher with these bounds (at least one slot).
    #[must_use]
    pub fn new(settings: HashingSettings) -> Self {
        let concurrency = settings.concurrency.max(1);
        Self {
            slots: Arc::new(Semaphore::new(concurrency)),
            memory: Arc::new(Mutex::new(vec![Vec::new(); concurrency])),
            max_wait: settings.max_wait,
        }
    }

    /// Runs `work` on the blocking pool once a slot is free, with that slot's memory.
    /// The slot moves into the blocking task: it is held until the hash is done, even
    /// when the request that asked for it is dropped meanwhile.
    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce(&mut Vec<Block>) -> T + Send + 'static,
    ) -> Result<T, PasswordHashError> {
        let slot = tokio::time::timeout(self.max_wait, self.slots.clone().acquire_owned())
            .await
            .map_err(|_| PasswordHashError::Busy {
                retry_after: Duration::seconds(1),
            })?
            .map_err(PasswordHashError::failed)?;
        let memory = Arc::clone(&self.memory);
        tokio::task::spawn_blocking(move || {
            // A slot holds a permit, so a buffer is free; a poisoned lock only means
            // another hash panicked, and the buffers are still whole.
            let mut buffer = memory
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .pop()
                .unwrap_or_default();
            let done = work(&mut buffer);
            memory
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(buffer);
            drop(slot);
            done
        })
        .await
        .map_err(PasswordHashError::failed)
    }
}

impl Default for Argon2PasswordHasher {
    fn default() -> Self {
        Self::new(HashingSettings::default())
    }
}

/// Argon2 of `password` and `salt` with `argon2`'s parameters into an output of
/// `length` bytes, in `memory` (grown to the default parameters' size on first use;
/// parameters that need more than that get a buffer of their own).
fn compute(
    argon2: &Argon2<'_>,
    password: &[u8],
    salt: Salt<'_>,
    length: usize,
    memory: &mut Vec<Block>,
) -> argon2::password_hash::Result<Output> {
    let mut salt_bytes = [0_u8; 64];
    let salt = salt.decode_b64(&mut salt_bytes)?;
    let needed = argon2.params().block_count();
    if memory.is_empty() {
        memory.resize(Params::DEFAULT.block_count(), Block::default());
    }
    Output::init_with(length, |out| {
        if needed <= memory.len() {
            argon2.hash_password_into_with_memory(password, salt, out, &mut memory[..needed])
        } else {
            argon2.hash_password_into(password, salt, out)
        }
        .map_err(Into::into)
    })
}

/// A new PHC string for `password` with a fresh salt and the default parameters.
fn hash_in(password: &[u8], memory: &mut Vec<Block>) -> argon2::password_hash::Result<String> {
    let salt = SaltString::generate(&mut OsRng);
    let argon2 = Argon2::default();
    let output = compute(
        &argon2,
        password,
        salt.as_salt(),
        Params::DEFAULT_OUTPUT_LEN,
        memory,
    )?;
    Ok(Phc {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(argon2.params())?,
        salt: Some(salt.as_salt()),
        hash: Some(output),
    }
    .to_string())
}

/// Whether `password` matches the PHC string `hash`, computed with the hash's own
/// algorithm, version and parameters; a malformed hash matches nothing.
fn verify_in(password: &[u8], hash: &str, memory: &mut Vec<Block>) -> bool {
    let Ok(phc) = Phc::new(hash) else {
        return false;
    };
    let (Some(salt), Some(expected)) = (phc.salt, phc.hash) else {
        return false;
    };
    let algorithm = Algorithm::try_from(phc.algorithm);
    let version = phc
        .version
        .map_or(Ok(Version::default()), Version::try_from);
    let params = Params::try_from(&phc);
    let (Ok(algorithm), Ok(version), Ok(params)) = (algorithm, version, params) else {
        return false;
    };
    let argon2 = Argon2::new(algorithm, version, params);
    // `Output`'s equality is constant-time.
    compute(&argon2, password, salt, expected.len(), memory)
        .is_ok_and(|computed| computed == expected)
}

#[async_trait]
impl PasswordHasher for Argon2PasswordHasher {
    async fn hash(&self, password: &Password) -> Result<PasswordHash, PasswordHashError> {
        let password = password.clone();
        self.run(move |memory| {
            hash_in(password.expose().as_bytes(), memory)
                .map(PasswordHash::new)
                .map_err(PasswordHashError::failed)
        })
        .await?
    }

    async fn verify(
        &self,
        password: &Password,
        hash: &PasswordHash,
    ) -> Result<bool, PasswordHashError> {
        let password = password.clone();
        let hash = hash.clone();
        self.run(move |memory| verify_in(password.expose().as_bytes(), hash.as_str(), memory))
            .await
    }

    fn decoy_hash(&self) -> PasswordHash {
        PasswordHash::new(DECOY_HASH.to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_hashed_password_verifies_and_another_does_not() {
        let hasher = Argon2PasswordHasher::default();
        let password = Password::parse("correct horse").expect("valid");

        let hash = hasher.hash(&password).await.expect("hashed");

        assert!(hash.as_str().starts_with("$argon2id$"));
        assert_eq!(hasher.verify(&password, &hash).await, Ok(true));
        assert_eq!(
            hasher
                .verify(&Password::presented("wrong horse"), &hash)
                .await,
            Ok(false)
        );
    }

    #[tokio::test]
    async fn hashes_are_standard_argon2id_both_ways() {
        use argon2::password_hash::{PasswordHasher as _, PasswordVerifier as _};
        let hasher = Argon2PasswordHasher::default();
        let ours = hasher
            .hash(&Password::presented("correct horse"))
            .await
            .expect("hashed");
        let salt = SaltString::generate(&mut OsRng);
        let theirs = Argon2::default()
            .hash_password(b"battery staple", &salt)
            .expect("hashed")
            .to_string();

        let ours_by_the_crate = Argon2::default().verify_password(
            b"correct horse",
            &Phc::new(ours.as_str()).expect("a well-formed hash"),
        );
        let theirs_by_ours = hasher
            .verify(
                &Password::presented("battery staple"),
                &PasswordHash::new(theirs),
            )
            .await;

        assert_eq!(ours_by_the_crate, Ok(()));
        assert_eq!(theirs_by_ours, Ok(true));
    }

    #[tokio::test]
    async fn a_malformed_hash_matches_nothing() {
        let hasher = Argon2PasswordHasher::default();

        let matched = hasher
            .verify(
                &Password::presented("anything"),
                &PasswordHash::new("nope".to_owned()),
            )
            .await;

        assert_eq!(matched, Ok(false));
    }

    #[tokio::test]
    async fn the_decoy_costs_what_a_real_hash_costs_and_matches_nothing() {
        let hasher = Argon2PasswordHasher::default();
        let real = hasher
            .hash(&Password::presented("correct horse"))
            .await
            .expect("hashed");
        let decoy = hasher.decoy_hash();

        let decoy_phc = Phc::new(decoy.as_str()).expect("a well-formed hash");
        let real_phc = Phc::new(real.as_str()).expect("a well-formed hash");

        assert_eq!(decoy_phc.algorithm, real_phc.algorithm);
        assert_eq!(decoy_phc.version, real_phc.version);
        assert_eq!(decoy_phc.params, real_phc.params);
        assert_eq!(
            decoy_phc.hash.map(|output| output.len()),
            real_phc.hash.map(|output| output.len())
        );
        for guess in ["", "correct horse", "password"] {
            assert_eq!(
                hasher.verify(&Password::presented(guess), &decoy).await,
                Ok(false)
            );
        }
    }

    #[tokio::test]
    async fn with_every_slot_taken_past_the_wait_hashing_is_busy() {
        let hasher = Argon2PasswordHasher::new(HashingSettings {
            concurrency: 1,
            max_wait: StdDuration::from_millis(50),
        });
        let taken = hasher.slots.clone().acquire_owned().await.expect("a slot");

        let busy = hasher
            .verify(&Password::presented("x"), &hasher.decoy_hash())
            .await;
        let hashed = hasher.hash(&Password::presented("correct horse")).await;
        drop(taken);
        let after = hasher
            .verify(&Password::presented("x"), &hasher.decoy_hash())
            .await;

        assert_eq!(
            busy,
            Err(PasswordHashError::Busy {
                retry_after: Duration::seconds(1)
            })
        );
        assert!(matches!(hashed, Err(PasswordHashError::Busy { .. })));
        assert_eq!(after, Ok(false));
    }

    #[tokio::test]
    async fn a_slot_is_given_back_after_each_hash() {
        let hasher = Argon2PasswordHasher::new(HashingSettings {
            concurrency: 1,
            max_wait: StdDuration::from_secs(30),
        });

        for _ in 0..3 {
            let verified = hasher
                .verify(&Password::presented("x"), &hasher.decoy_hash())
                .await;
            assert_eq!(verified, Ok(false));
        }

        assert_eq!(hasher.slots.available_permits(), 1);
    }

    #[test]
    fn generated_secrets_differ() {
        let generator = OsSecretGenerator;

        assert_ne!(generator.generate(), generator.generate());
    }
}
