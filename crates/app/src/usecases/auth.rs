//! Authentication and the caller's own account (CONTRACT §3).

use std::sync::Arc;

use async_trait::async_trait;

use domain::audit::{EventAction, EventTarget, NewEvent};
use domain::limits::{LimitKey, RateLimit};
use domain::secret::SecretToken;
use domain::user::{Password, User};
use domain::{Actor, Duration, EmailAddress, ErrorCode, Input, ValidationErrors};
use ports::inbound::{AuthFailure, AuthUseCases, IssuedSession, UseCaseError};
use ports::outbound::{
    Clock, LoginRecord, PasswordHasher, RateLimitStore, SecretGenerator, UserRepository,
};

use super::limits::{acquire_error, give_back, hash_error};

/// The authentication use cases.
#[derive(Clone)]
pub struct AuthService {
    users: Arc<dyn UserRepository>,
    hasher: Arc<dyn PasswordHasher>,
    secrets: Arc<dyn SecretGenerator>,
    clock: Arc<dyn Clock>,
    limits: Arc<dyn RateLimitStore>,
    session_ttl: Duration,
    login_failures: RateLimit,
}

impl AuthService {
    /// A service over these ports; sessions last `session_ttl`; failed logins per
    /// identifier are limited by `login_failures`.
    pub fn new(
        users: Arc<dyn UserRepository>,
        hasher: Arc<dyn PasswordHasher>,
        secrets: Arc<dyn SecretGenerator>,
        clock: Arc<dyn Clock>,
        limits: Arc<dyn RateLimitStore>,
        session_ttl: Duration,
        login_failures: RateLimit,
    ) -> Self {
        Self {
            users,
            hasher,
            secrets,
            clock,
            limits,
            session_ttl,
            login_failures,
        }
    }

    /// Checks a password login; `Ok(None)` for wrong credentials. An identifier that is
    /// no address belongs to nobody, and is refused without a hash; every other path
    /// verifies exactly one hash, against a decoy when there is no stored one, so that an
    /// unknown identifier costs as long as a wrong password (CONTRACT §9).
    async fn check_credentials(
        &self,
        identifier: &str,
        password: &str,
    ) -> Result<Option<User>, UseCaseError> {
        let Ok(identifier) = EmailAddress::parse(identifier) else {
            return Ok(None);
        };
        let (user, hash) = match self.users.find_for_login(&identifier).await? {
            Some(LoginRecord {
                user,
                password_hash: Some(hash),
            }) => (Some(user), hash),
            Some(LoginRecord {
                password_hash: None,
                ..
            })
            | None => (None, self.hasher.decoy_hash()),
        };
        let matches = self
            .hasher
            .verify(&Password::presented(password), &hash)
            .await
            .map_err(hash_error)?;
        Ok(user.filter(|user| matches && user.is_active))
    }
}

fn invalid_credentials() -> UseCaseError {
    ValidationErrors::non_field(ErrorCode::InvalidCredentials).into()
}

/// A required, non-blank string field of the login request.
fn login_field(errors: &mut ValidationErrors, field: &str, input: Input<String>) -> Option<String> {
    errors.collect(
        field,
        input.required().and_then(|value| {
            if value.trim().is_empty() {
                Err(ErrorCode::Blank)
            } else {
                Ok(value)
            }
        }),
    )
}

#[async_trait]
impl AuthUseCases for AuthService {
    async fn authenticate(&self, token: &str) -> Result<Actor, UseCaseError> {
        if token.is_empty() {
            return Err(UseCaseError::Unauthenticated(AuthFailure::Invalid));
        }
        let hash = SecretToken::presented(token).hash();
        let found = self.users.authenticate(&hash, self.clock.now()).await?;
        let authenticated = found.ok_or(UseCaseError::Unauthenticated(AuthFailure::Invalid))?;
        Ok(Actor {
            user_id: authenticated.user.id,
            role: authenticated.user.role,
            organization: authenticated.organization,
            request_id: None,
        })
    }

    async fn login(
        &self,
        identifier: Input<String>,
        password: Input<String>,
    ) -> Result<IssuedSession, UseCaseError> {
        let mut errors = ValidationErrors::new();
        let identifier = login_field(&mut errors, "identifier", identifier);
        let password = login_field(&mut errors, "password", password);
        errors.into_result()?;
        let (Some(identifier), Some(password)) = (identifier, password) else {
            return Err(invalid_credentials());
        };

        // Failures count per identifier whether or not a user has it (CONTRACT §5c). One
        // failure is taken atomically before the password is checked, so that parallel
        // attempts cannot all pass one count (CONTRACT §9) and a correct password does
        // not bypass a reached limit; a success gives it back.
        let now = self.clock.now();
        let failure = self
            .limits
            .acquire(
                &[(LimitKey::login_failures(&identifier), self.login_failures)],
                now,
            )
            .await
            .map_err(acquire_error)?;
        let user = match self.check_credentials(&identifier, &password).await {
            Ok(Some(user)) => user,
            Ok(None) => return Err(invalid_credentials()),
            Err(error) => {
                // Not a failed login: the password was never checked.
                give_back(self.limits.as_ref(), &failure).await;
                return Err(error);
            }
        };
        give_back(self.limits.as_ref(), &failure).await;

        let token = self.secrets.generate();
        let expires_at = now + self.session_ttl;
        self.users
            .create_session(user.id, &token.hash(), now, expires_at)
            .await?;
        Ok(IssuedSession { token, expires_at })
    }

    async fn me(&self, actor: &Actor) -> Result<User, UseCaseError> {
        self.users
            .find(actor.user_id)
            .await?
            .ok_or(UseCaseError::Unauthenticated(AuthFailure::Invalid))
    }

    async fn regenerate_api_key(&self, actor: &Actor) -> Result<SecretToken, UseCaseError> {
        let token = self.secrets.generate();
        let now = self.clock.now();
        let event = NewEvent::by(
            actor,
            EventAction::ApiKeyRegenerated,
            actor.organization_id(),
            EventTarget::Member(actor.user_id),
            now,
        );
        self.users
            .replace_api_key(actor.user_id, &token.hash(), now, event)
            .await?;
        Ok(token)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::usecases::fixtures::*;
    use domain::RateEventId;
    use domain::limits::LimitReached;
    use domain::organization::TreeNode;
    use domain::user::PasswordHash;
    use domain::{Role, UserId};
    use mockall::predicate::eq;
    use ports::outbound::{
        AcquireError, AuthenticatedUser, MockClock, MockPasswordHasher, MockRateLimitStore,
        MockSecretGenerator, MockUserRepository, PasswordHashError,
    };

    const DECOY: &str = "$argon2id$decoy";

    struct Mocks {
        users: MockUserRepository,
        hasher: MockPasswordHasher,
        secrets: MockSecretGenerator,
        limits: MockRateLimitStore,
    }

    impl Mocks {
        fn new() -> Self {
            let mut secrets = MockSecretGenerator::new();
            secrets
                .expect_generate()
                .returning(|| SecretToken::presented("fresh-secret"));
            let mut hasher = MockPasswordHasher::new();
            hasher
                .expect_decoy_hash()
                .returning(|| PasswordHash::new(DECOY.to_owned()));
            Self {
                users: MockUserRepository::new(),
                hasher,
                secrets,
                limits: MockRateLimitStore::new(),
            }
        }

        /// A failure slot is free; it may be given back.
        fn with_no_failures(mut self) -> Self {
            self.limits
                .expect_acquire()
                .returning(|_, _| Ok(vec![RateEventId::new(1)]));
            self.limits.expect_release().returning(|_| Ok(()));
            self
        }

        fn service(self) -> AuthService {
            let mut clock = MockClock::new();
            clock.expect_now().returning(now);
            AuthService::new(
                Arc::new(self.users),
                Arc::new(self.hasher),
                Arc::new(self.secrets),
                Arc::new(clock),
                Arc::new(self.limits),
                Duration::hours(12),
                RateLimit {
                    count: 10,
                    window: Duration::minutes(15),
                },
            )
        }
    }

    fn login_record(active: bool, with_password: bool) -> LoginRecord {
        let mut user = user(UserId::new(10), ROOT, Role::Managers);
        user.is_active = active;
        LoginRecord {
            user,
            password_hash: with_password.then(|| PasswordHash::new("$argon2id$stored".to_owned())),
        }
    }

    fn is_invalid_credentials(result: &Result<IssuedSession, UseCaseError>) -> bool {
        matches!(result, Err(UseCaseError::Validation(errors))
            if errors.non_field_codes() == [ErrorCode::InvalidCredentials])
    }

    #[tokio::test]
    async fn a_known_token_authenticates_as_its_user() {
        let mut mocks = Mocks::new();
        mocks
            .users
            .expect_authenticate()
            .withf(|hash, at| *hash == SecretToken::presented("key").hash() && *at == now())
            .times(1)
            .returning(|_, _| {
                Ok(Some(AuthenticatedUser {
                    user: user(UserId::new(10), ROOT, Role::Managers),
                    organization: TreeNode {
                        id: ROOT,
                        parent: None,
                    },
                }))
            });

        let actor = mocks
            .service()
            .authenticate("key")
            .await
            .expect("authenticated");

        assert_eq!(actor.user_id, UserId::new(10));
        assert_eq!(actor.role, Role::Managers);
        assert_eq!(actor.organization_id(), ROOT);
    }

    #[tokio::test]
    async fn an_unknown_token_is_invalid() {
        let mut mocks = Mocks::new();
        mocks.users.expect_authenticate().returning(|_, _| Ok(None));

        let actor = mocks.service().authenticate("nope").await;

        assert_eq!(
            actor,
            Err(UseCaseError::Unauthenticated(AuthFailure::Invalid))
        );
    }

    #[tokio::test]
    async fn an_empty_token_is_invalid_without_a_lookup() {
        let mut mocks = Mocks::new();
        mocks.users.expect_authenticate().never();

        let actor = mocks.service().authenticate("").await;

        assert_eq!(
            actor,
            Err(UseCaseError::Unauthenticated(AuthFailure::Invalid))
        );
    }

    #[tokio::test]
    async fn a_correct_password_opens_a_session_that_expires_after_the_ttl() {
        let mut mocks = Mocks::new().with_no_failures();
        mocks
            .users
            .expect_find_for_login()
            .with(eq(email("user10@example.com")))
            .returning(|_| Ok(Some(login_record(true, true))));
        mocks.hasher.expect_verify().returning(|_, _| Ok(true));
        mocks
            .users
            .expect_create_session()
            .withf(|user, hash, created, expires| {
                *user == UserId::new(10)
                    && *hash == SecretToken::presented("fresh-secret").hash()
                    && *created == now()
                    && *expires == now() + Duration::hours(12)
            })
            .times(1)
            .returning(|_, _, _, _| Ok(()));

        let session = mocks
            .service()
            .login(
                Input::Value("user10@EXAMPLE.com".to_owned()),
                Input::Value("correct horse".to_owned()),
            )
            .await
            .expect("logged in");

        assert_eq!(session.token.expose(), "fresh-secret");
        assert_eq!(session.expires_at, now() + Duration::hours(12));
    }

    #[tokio::test]
    async fn a_wrong_password_is_refused_and_opens_no_session() {
        let mut mocks = Mocks::new().with_no_failures();
        mocks
            .users
            .expect_find_for_login()
            .returning(|_| Ok(Some(login_record(true, true))));
        mocks.hasher.expect_verify().returning(|_, _| Ok(false));
        mocks.users.expect_create_session().never();

        let session = mocks
            .service()
            .login(
                Input::Value("user10@example.com".to_owned()),
                Input::Value("wrong".to_owned()),
            )
            .await;

        assert!(is_invalid_credentials(&session), "{session:?}");
    }

    #[tokio::test]
    async fn an_inactive_user_or_one_without_password_cannot_log_in_and_costs_one_verification() {
        for (active, with_password, verified) in
            [(false, true, "$argon2id$stored"), (true, false, DECOY)]
        {
            let mut mocks = Mocks::new().with_no_failures();
            mocks
                .users
                .expect_find_for_login()
                .returning(move |_| Ok(Some(login_record(active, with_password))));
            mocks
                .hasher
                .expect_verify()
                .withf(move |_, hash| hash.as_str() == verified)
                .times(1)
                .returning(|_, _| Ok(true));
            mocks.users.expect_create_session().never();

            let session = mocks
                .service()
                .login(
                    Input::Value("user10@example.com".to_owned()),
                    Input::Value("correct horse".to_owned()),
                )
                .await;

            assert!(is_invalid_credentials(&session), "{session:?}");
        }
    }

    #[tokio::test]
    async fn an_unknown_identifier_costs_one_verification_like_a_wrong_password() {
        // CONTRACT §9: both paths verify exactly one hash, the unknown one a decoy.
        for (known, verified) in [(true, "$argon2id$stored"), (false, DECOY)] {
            let mut mocks = Mocks::new().with_no_failures();
            mocks
                .users
                .expect_find_for_login()
                .times(1)
                .returning(move |_| Ok(known.then(|| login_record(true, true))));
            mocks
                .hasher
                .expect_verify()
                .withf(move |password, hash| {
                    password.expose() == "whatever1" && hash.as_str() == verified
                })
                .times(1)
                .returning(|_, _| Ok(false));

            let session = mocks
                .service()
                .login(
                    Input::Value("user10@example.com".to_owned()),
                    Input::Value("whatever1".to_owned()),
                )
                .await;

            assert!(is_invalid_credentials(&session), "known: {known}");
        }
    }

    #[tokio::test]
    async fn an_identifier_that_is_no_address_is_refused_without_a_lookup_or_a_hash() {
        let mut mocks = Mocks::new().with_no_failures();
        mocks.users.expect_find_for_login().never();
        mocks.hasher.expect_verify().never();

        let session = mocks
            .service()
            .login(
                Input::Value("x".repeat(3000)),
                Input::Value("whatever1".to_owned()),
            )
            .await;

        assert!(is_invalid_credentials(&session));
    }

    #[tokio::test]
    async fn missing_login_fields_are_reported_together() {
        let mut mocks = Mocks::new();
        mocks.limits.expect_acquire().never();

        let session = mocks
            .service()
            .login(Input::Absent, Input::Value(String::new()))
            .await;

        let Err(UseCaseError::Validation(errors)) = session else {
            panic!("expected a validation error: {session:?}");
        };
        assert_eq!(errors.codes("identifier"), Some(&[ErrorCode::Required][..]));
        assert_eq!(errors.codes("password"), Some(&[ErrorCode::Blank][..]));
    }

    #[tokio::test]
    async fn a_failure_slot_is_taken_before_the_lookup_and_the_hash_and_kept_on_failure() {
        let mut sequence = mockall::Sequence::new();
        let mut mocks = Mocks::new();
        mocks
            .limits
            .expect_acquire()
            .withf(|limits, at| {
                *at == now()
                    && limits
                        == [(
                            LimitKey::LoginFailures("Ada@example.com".to_owned()),
                            RateLimit {
                                count: 10,
                                window: Duration::minutes(15),
                            },
                        )]
            })
            .times(1)
            .in_sequence(&mut sequence)
            .returning(|_, _| Ok(vec![RateEventId::new(1)]));
        mocks
            .users
            .expect_find_for_login()
            .times(1)
            .in_sequence(&mut sequence)
            .returning(|_| Ok(None));
        mocks
            .hasher
            .expect_verify()
            .times(1)
            .in_sequence(&mut sequence)
            .returning(|_, _| Ok(false));
        mocks.limits.expect_release().never();

        let session = mocks
            .service()
            .login(
                Input::Value("Ada@EXAMPLE.com".to_owned()),
                Input::Value("whatever1".to_owned()),
            )
            .await;

        assert!(is_invalid_credentials(&session));
    }

    #[tokio::test]
    async fn a_successful_login_gives_its_failure_slot_back() {
        let mut mocks = Mocks::new();
        mocks
            .limits
            .expect_acquire()
            .returning(|_, _| Ok(vec![RateEventId::new(7)]));
        mocks
            .limits
            .expect_release()
            .withf(|events| events == [RateEventId::new(7)])
            .times(1)
            .returning(|_| Ok(()));
        mocks
            .users
            .expect_find_for_login()
            .returning(|_| Ok(Some(login_record(true, true))));
        mocks.hasher.expect_verify().returning(|_, _| Ok(true));
        mocks
            .users
            .expect_create_session()
            .returning(|_, _, _, _| Ok(()));

        let session = mocks
            .service()
            .login(
                Input::Value("user10@example.com".to_owned()),
                Input::Value("correct horse".to_owned()),
            )
            .await;

        assert!(session.is_ok());
    }

    #[tokio::test]
    async fn when_no_failure_slot_is_left_even_a_correct_password_is_rate_limited_unchecked() {
        let mut mocks = Mocks::new();
        mocks.limits.expect_acquire().returning(|_, _| {
            Err(AcquireError::Limited(LimitReached {
                retry_after: Duration::minutes(10),
            }))
        });
        mocks.limits.expect_release().never();
        mocks.users.expect_find_for_login().never();
        mocks.hasher.expect_verify().never();

        let session = mocks
            .service()
            .login(
                Input::Value("user10@example.com".to_owned()),
                Input::Value("correct horse".to_owned()),
            )
            .await;

        assert_eq!(
            session,
            Err(UseCaseError::RateLimited {
                retry_after: Duration::minutes(10)
            })
        );
    }

    #[tokio::test]
    async fn busy_hashing_answers_overloaded_and_gives_the_slot_back() {
        let mut mocks = Mocks::new();
        mocks
            .limits
            .expect_acquire()
            .returning(|_, _| Ok(vec![RateEventId::new(3)]));
        mocks
            .limits
            .expect_release()
            .withf(|events| events == [RateEventId::new(3)])
            .times(1)
            .returning(|_| Ok(()));
        mocks.users.expect_find_for_login().returning(|_| Ok(None));
        mocks.hasher.expect_verify().returning(|_, _| {
            Err(PasswordHashError::Busy {
                retry_after: Duration::seconds(1),
            })
        });

        let session = mocks
            .service()
            .login(
                Input::Value("user10@example.com".to_owned()),
                Input::Value("whatever1".to_owned()),
            )
            .await;

        assert_eq!(
            session,
            Err(UseCaseError::Overloaded {
                retry_after: Duration::seconds(1)
            })
        );
    }

    #[tokio::test]
    async fn me_is_the_actors_user() {
        let mut mocks = Mocks::new();
        mocks
            .users
            .expect_find()
            .with(eq(UserId::new(10)))
            .returning(|id| Ok(Some(user(id, ROOT, Role::Users))));

        let me = mocks
            .service()
            .me(&actor(Role::Users))
            .await
            .expect("found");

        assert_eq!(me.id, UserId::new(10));
    }

    #[tokio::test]
    async fn regenerating_the_api_key_replaces_it_with_a_fresh_one() {
        let mut mocks = Mocks::new();
        mocks
            .users
            .expect_replace_api_key()
            .withf(|user, hash, _, event| {
                *user == UserId::new(10)
                    && *hash == SecretToken::presented("fresh-secret").hash()
                    && event.action == EventAction::ApiKeyRegenerated
                    && event.actor == domain::audit::EventActor::User(UserId::new(10))
                    && event.organization == domain::audit::EventOrganization::Existing(ROOT)
                    && event.target == EventTarget::Member(UserId::new(10))
                    && event.changes.is_empty()
            })
            .times(1)
            .returning(|_, _, _, _| Ok(()));

        let key = mocks
            .service()
            .regenerate_api_key(&actor(Role::Collaborators))
            .await
            .expect("regenerated");

        assert_eq!(key.expose(), "fresh-secret");
    }
}
