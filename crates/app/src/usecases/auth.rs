//! Authentication and the caller's own account (CONTRACT §3).

use std::sync::Arc;

use async_trait::async_trait;

use domain::limits::{LimitKey, RateLimit};
use domain::secret::SecretToken;
use domain::user::{Password, User};
use domain::{Actor, Duration, EmailAddress, ErrorCode, Input, ValidationErrors};
use ports::inbound::{AuthFailure, AuthUseCases, IssuedSession, UseCaseError};
use ports::outbound::{Clock, PasswordHasher, RateLimitStore, SecretGenerator, UserRepository};

use super::limits::limited;

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

    /// Checks a password login; `Ok(None)` for wrong credentials.
    async fn check_credentials(
        &self,
        identifier: Option<&EmailAddress>,
        password: &str,
    ) -> Result<Option<User>, UseCaseError> {
        // An identifier that is no address cannot belong to anybody.
        let Some(identifier) = identifier else {
            return Ok(None);
        };
        let Some(record) = self.users.find_for_login(identifier).await? else {
            return Ok(None);
        };
        let Some(hash) = record.password_hash.filter(|_| record.user.is_active) else {
            return Ok(None);
        };
        let matches = self
            .hasher
            .verify(&Password::presented(password), &hash)
            .await;
        Ok(matches.then_some(record.user))
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

        let address = EmailAddress::parse(&identifier).ok();
        // Failures count per identifier whether or not a user has it (CONTRACT §5c).
        let key = LimitKey::LoginFailures(
            address
                .as_ref()
                .map_or_else(|| identifier.trim().to_lowercase(), ToString::to_string),
        );
        let now = self.clock.now();
        let failures = self
            .limits
            .window(&key, self.login_failures.window_start(now))
            .await?;
        // Checked before the password, so that a correct one does not bypass it.
        self.login_failures.check(&failures, now).map_err(limited)?;

        let Some(user) = self.check_credentials(address.as_ref(), &password).await? else {
            self.limits.record(&key, now).await?;
            return Err(invalid_credentials());
        };

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
        self.users
            .replace_api_key(actor.user_id, &token.hash(), self.clock.now())
            .await?;
        Ok(token)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::usecases::fixtures::*;
    use domain::RateEventId;
    use domain::limits::EventWindow;
    use domain::organization::TreeNode;
    use domain::user::PasswordHash;
    use domain::{Role, UserId};
    use mockall::predicate::eq;
    use ports::outbound::{
        AuthenticatedUser, LoginRecord, MockClock, MockPasswordHasher, MockRateLimitStore,
        MockSecretGenerator, MockUserRepository,
    };

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
            Self {
                users: MockUserRepository::new(),
                hasher: MockPasswordHasher::new(),
                secrets,
                limits: MockRateLimitStore::new(),
            }
        }

        /// No earlier failures; failures may be recorded.
        fn with_no_failures(mut self) -> Self {
            self.limits
                .expect_window()
                .returning(|_, _| Ok(EventWindow::default()));
            self.limits
                .expect_record()
                .returning(|_, _| Ok(RateEventId::new(1)));
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
        mocks.hasher.expect_verify().returning(|_, _| true);
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
        mocks.hasher.expect_verify().returning(|_, _| false);
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
    async fn an_inactive_user_or_one_without_password_cannot_log_in() {
        for (active, with_password) in [(false, true), (true, false)] {
            let mut mocks = Mocks::new().with_no_failures();
            mocks
                .users
                .expect_find_for_login()
                .returning(move |_| Ok(Some(login_record(active, with_password))));
            mocks.hasher.expect_verify().returning(|_, _| true);
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
    async fn an_unknown_or_malformed_identifier_gets_the_same_answer() {
        for identifier in ["nobody@example.com", "not an address"] {
            let mut mocks = Mocks::new().with_no_failures();
            mocks.users.expect_find_for_login().returning(|_| Ok(None));

            let session = mocks
                .service()
                .login(
                    Input::Value(identifier.to_owned()),
                    Input::Value("whatever1".to_owned()),
                )
                .await;

            assert!(is_invalid_credentials(&session), "{identifier}");
        }
    }

    #[tokio::test]
    async fn missing_login_fields_are_reported_together() {
        let mocks = Mocks::new();

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
    async fn a_failed_login_is_recorded_under_the_normalized_identifier() {
        let mut mocks = Mocks::new();
        mocks
            .limits
            .expect_window()
            .withf(|key, since| {
                *key == LimitKey::LoginFailures("Ada@example.com".to_owned())
                    && *since == now() - Duration::minutes(15)
            })
            .returning(|_, _| Ok(EventWindow::default()));
        mocks
            .limits
            .expect_record()
            .withf(|key, at| {
                *key == LimitKey::LoginFailures("Ada@example.com".to_owned()) && *at == now()
            })
            .times(1)
            .returning(|_, _| Ok(RateEventId::new(1)));
        mocks.users.expect_find_for_login().returning(|_| Ok(None));

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
    async fn a_successful_login_records_no_failure() {
        let mut mocks = Mocks::new();
        mocks
            .limits
            .expect_window()
            .returning(|_, _| Ok(EventWindow::default()));
        mocks.limits.expect_record().never();
        mocks
            .users
            .expect_find_for_login()
            .returning(|_| Ok(Some(login_record(true, true))));
        mocks.hasher.expect_verify().returning(|_, _| true);
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
    async fn after_ten_failures_even_a_correct_password_is_rate_limited() {
        let mut mocks = Mocks::new();
        mocks.limits.expect_window().returning(|_, _| {
            Ok(EventWindow {
                count: 10,
                oldest: Some(now() - Duration::minutes(5)),
            })
        });
        mocks.limits.expect_record().never();
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
    async fn the_tenth_failure_is_still_an_invalid_login() {
        let mut mocks = Mocks::new();
        mocks.limits.expect_window().returning(|_, _| {
            Ok(EventWindow {
                count: 9,
                oldest: Some(now() - Duration::minutes(5)),
            })
        });
        mocks
            .limits
            .expect_record()
            .times(1)
            .returning(|_, _| Ok(RateEventId::new(10)));
        mocks.users.expect_find_for_login().returning(|_| Ok(None));

        let session = mocks
            .service()
            .login(
                Input::Value("user10@example.com".to_owned()),
                Input::Value("wrong one".to_owned()),
            )
            .await;

        assert!(is_invalid_credentials(&session));
    }

    #[tokio::test]
    async fn the_window_reopens_when_the_oldest_failure_leaves_it() {
        // Ten failures, one a minute from `start`; the store counts those after `since`.
        let start = now();
        let failures: Vec<_> = (0..10)
            .map(|minute| start + Duration::minutes(minute))
            .collect();
        let mut mocks = Mocks::new();
        mocks.limits.expect_window().returning(move |_, since| {
            let inside: Vec<_> = failures.iter().filter(|at| **at > since).collect();
            Ok(EventWindow {
                count: inside.len() as u64,
                oldest: inside.first().map(|at| **at),
            })
        });
        mocks
            .limits
            .expect_record()
            .returning(|_, _| Ok(RateEventId::new(11)));
        mocks.users.expect_find_for_login().returning(|_| Ok(None));
        let mut clock = MockClock::new();
        let mut times = vec![
            start + Duration::minutes(15) + Duration::seconds(1),
            start + Duration::minutes(14),
        ];
        clock
            .expect_now()
            .returning(move || times.pop().unwrap_or(start));
        let service = AuthService::new(
            Arc::new(mocks.users),
            Arc::new(mocks.hasher),
            Arc::new(mocks.secrets),
            Arc::new(clock),
            Arc::new(mocks.limits),
            Duration::hours(12),
            RateLimit {
                count: 10,
                window: Duration::minutes(15),
            },
        );
        let attempt = || {
            service.login(
                Input::Value("user10@example.com".to_owned()),
                Input::Value("wrong one".to_owned()),
            )
        };

        let inside_the_window = attempt().await;
        let after_the_oldest_left = attempt().await;

        assert_eq!(
            inside_the_window,
            Err(UseCaseError::RateLimited {
                retry_after: Duration::minutes(1)
            })
        );
        assert!(is_invalid_credentials(&after_the_oldest_left));
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
            .withf(|user, hash, _| {
                *user == UserId::new(10) && *hash == SecretToken::presented("fresh-secret").hash()
            })
            .times(1)
            .returning(|_, _, _| Ok(()));

        let key = mocks
            .service()
            .regenerate_api_key(&actor(Role::Collaborators))
            .await
            .expect("regenerated");

        assert_eq!(key.expose(), "fresh-secret");
    }
}
