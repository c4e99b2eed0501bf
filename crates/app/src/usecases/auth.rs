//! Authentication and the caller's own account (CONTRACT §3).

use std::sync::Arc;

use async_trait::async_trait;

use domain::api_key::{ApiKey, ApiKeyRequest, KeyMaterial, NewApiKey, check_new_key};
use domain::audit::{Changes, EventAction, EventTarget, NewEvent};
use domain::limits::{LimitKey, RateLimit};
use domain::organization::Organization;
use domain::pagination::{Page, PageRequest};
use domain::secret::{SecretToken, TokenHash};
use domain::user::{Password, User};
use domain::{
    Access, Action, Actor, ApiKeyId, Duration, EmailAddress, ErrorCode, Input, Operation,
    OrganizationId, Timestamp, ValidationErrors, authorize_scope,
};
use ports::inbound::{AuthFailure, AuthUseCases, CreatedApiKey, IssuedSession, UseCaseError};
use ports::outbound::{
    Caller, Clock, CreateApiKeyError, LoginRecord, PasswordHasher, RateLimitStore, SecretGenerator,
    UserRepository, WriteError,
};

use super::key_uses::KeyUseBatch;
use super::limits::{acquire_error, give_back, hash_error};
use super::require;

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
    key_uses: Arc<KeyUseBatch>,
}

impl AuthService {
    /// A service over these ports; sessions last `session_ttl`; failed logins per
    /// identifier are limited by `login_failures`. Uses of API keys go to `key_uses`.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        users: Arc<dyn UserRepository>,
        hasher: Arc<dyn PasswordHasher>,
        secrets: Arc<dyn SecretGenerator>,
        clock: Arc<dyn Clock>,
        limits: Arc<dyn RateLimitStore>,
        session_ttl: Duration,
        login_failures: RateLimit,
        key_uses: Arc<KeyUseBatch>,
    ) -> Self {
        Self {
            users,
            hasher,
            secrets,
            clock,
            limits,
            session_ttl,
            login_failures,
            key_uses,
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

    /// The actor a found credential stands for, for a request that does `operation`;
    /// a use of an API key is recorded.
    fn admit(
        &self,
        found: Option<Caller>,
        now: Timestamp,
        operation: Operation,
    ) -> Result<Actor, UseCaseError> {
        let caller = found.ok_or(UseCaseError::Unauthenticated(AuthFailure::Invalid))?;
        if let Some(key) = caller.api_key {
            self.key_uses.record(key, now);
        }
        if authorize_scope(caller.scope, operation) != Access::Allowed {
            return Err(UseCaseError::ReadOnlyKey);
        }
        Ok(Actor {
            user_id: caller.user_id,
            role: caller.role,
            organization: caller.organization,
            request_id: None,
        })
    }
}

/// The stored form of a presented bearer token; an empty one is invalid.
fn presented_hash(token: &str) -> Result<TokenHash, UseCaseError> {
    if token.is_empty() {
        return Err(UseCaseError::Unauthenticated(AuthFailure::Invalid));
    }
    Ok(SecretToken::presented(token).hash())
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
    async fn authenticate(&self, token: &str, operation: Operation) -> Result<Actor, UseCaseError> {
        let hash = presented_hash(token)?;
        let now = self.clock.now();
        let found = self.users.authenticate(&hash, now).await?;
        self.admit(found.map(Caller::from), now, operation)
    }

    async fn authenticated_organization(
        &self,
        token: &str,
        id: OrganizationId,
    ) -> Result<(Actor, Organization), UseCaseError> {
        let hash = presented_hash(token)?;
        let now = self.clock.now();
        let found = self
            .users
            .authenticate_with_organization(&hash, now, id)
            .await?;
        let (authenticated, organization) = found.unzip();
        let actor = self.admit(authenticated, now, Operation::Read)?;
        let organization = organization.flatten().ok_or(UseCaseError::NotFound)?;
        require(&actor, Action::View, organization.node())?;
        Ok((actor, organization))
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
            .replace_api_key(actor.user_id, &KeyMaterial::of(&token), now, event)
            .await?;
        Ok(token)
    }

    async fn api_keys(
        &self,
        actor: &Actor,
        page: PageRequest,
    ) -> Result<Page<ApiKey>, UseCaseError> {
        let keys = self.users.list_api_keys(actor.user_id, page).await?;
        page.check(keys.total)
            .map_err(|_| UseCaseError::InvalidPage)?;
        Ok(keys)
    }

    async fn create_api_key(
        &self,
        actor: &Actor,
        request: ApiKeyRequest,
    ) -> Result<CreatedApiKey, UseCaseError> {
        let terms = check_new_key(request)?;
        let key = self.secrets.generate();
        let now = self.clock.now();
        let new_key = NewApiKey::from_terms(terms, &key, now);
        let event = NewEvent::by(
            actor,
            EventAction::ApiKeyCreated,
            actor.organization_id(),
            EventTarget::Member(actor.user_id),
            now,
        )
        .with_changes(Changes::of_api_key(
            &new_key.name,
            new_key.scope,
            new_key.expires_at,
            true,
        ));
        let stored = self
            .users
            .create_api_key(actor.user_id, new_key, now, event)
            .await
            .map_err(|error| match error {
                CreateApiKeyError::Refused(refusal) => {
                    UseCaseError::Validation(refusal.into_errors())
                }
                CreateApiKeyError::UserNotFound => {
                    UseCaseError::Unauthenticated(AuthFailure::Invalid)
                }
                CreateApiKeyError::Storage(error) => error.into(),
            })?;
        Ok(CreatedApiKey {
            api_key: stored,
            key,
        })
    }

    async fn revoke_api_key(&self, actor: &Actor, key: ApiKeyId) -> Result<(), UseCaseError> {
        // The storage fills `changes` in from the key it deletes.
        let event = NewEvent::by(
            actor,
            EventAction::ApiKeyRevoked,
            actor.organization_id(),
            EventTarget::Member(actor.user_id),
            self.clock.now(),
        );
        self.users
            .revoke_api_key(actor.user_id, key, event)
            .await
            .map_err(|error| match error {
                WriteError::NotFound | WriteError::VersionMismatch => UseCaseError::NotFound,
                WriteError::Storage(error) => error.into(),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::usecases::fixtures::*;
    use domain::RateEventId;
    use domain::api_key::{KeyRefusal, Scope};
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
        key_uses: Arc<KeyUseBatch>,
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
                key_uses: Arc::new(KeyUseBatch::new()),
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
                Arc::clone(&self.key_uses),
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
                    scope: Scope::Write,
                    api_key: None,
                }))
            });

        let actor = mocks
            .service()
            .authenticate("key", Operation::Write)
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

        let actor = mocks.service().authenticate("nope", Operation::Read).await;

        assert_eq!(
            actor,
            Err(UseCaseError::Unauthenticated(AuthFailure::Invalid))
        );
    }

    #[tokio::test]
    async fn an_empty_token_is_invalid_without_a_lookup() {
        let mut mocks = Mocks::new();
        mocks.users.expect_authenticate().never();

        let actor = mocks.service().authenticate("", Operation::Read).await;

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
            .withf(|user, key, _, event| {
                *user == UserId::new(10)
                    && key.hash == SecretToken::presented("fresh-secret").hash()
                    && key.prefix == "fresh-se"
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

    fn authenticated(scope: Scope, api_key: Option<ApiKeyId>) -> AuthenticatedUser {
        AuthenticatedUser {
            user: user(UserId::new(10), ROOT, Role::Administrators),
            organization: TreeNode {
                id: ROOT,
                parent: None,
            },
            scope,
            api_key,
        }
    }

    #[tokio::test]
    async fn a_read_key_may_read_but_not_write() {
        let mut mocks = Mocks::new();
        mocks
            .users
            .expect_authenticate()
            .returning(|_, _| Ok(Some(authenticated(Scope::Read, Some(ApiKeyId::new(3))))));
        let service = mocks.service();

        let read = service.authenticate("key", Operation::Read).await;
        let write = service.authenticate("key", Operation::Write).await;

        assert!(read.is_ok());
        assert_eq!(write, Err(UseCaseError::ReadOnlyKey));
    }

    #[tokio::test]
    async fn a_use_of_an_api_key_is_recorded_without_a_write_and_a_session_is_not() {
        let mut mocks = Mocks::new();
        mocks
            .users
            .expect_authenticate()
            .withf(|hash, _| *hash == SecretToken::presented("key").hash())
            .returning(|_, _| Ok(Some(authenticated(Scope::Write, Some(ApiKeyId::new(3))))));
        mocks
            .users
            .expect_authenticate()
            .returning(|_, _| Ok(Some(authenticated(Scope::Write, None))));
        mocks.users.expect_record_key_uses().never();
        let batch = Arc::clone(&mocks.key_uses);
        let service = mocks.service();

        service
            .authenticate("key", Operation::Read)
            .await
            .expect("authenticated");
        service
            .authenticate("session", Operation::Read)
            .await
            .expect("authenticated");

        assert_eq!(
            batch.take(),
            [ports::outbound::KeyUse {
                key: ApiKeyId::new(3),
                at: now()
            }]
        );
    }

    /// The root administrator of `authenticated`, reading with one storage call.
    fn read_with(mocks: &mut Mocks, organization: Option<Organization>, api_key: Option<ApiKeyId>) {
        mocks
            .users
            .expect_authenticate_with_organization()
            .withf(|hash, at, _| *hash == SecretToken::presented("key").hash() && *at == now())
            .times(1)
            .returning(move |_, _, _| {
                Ok(Some((
                    authenticated(Scope::Read, api_key).into(),
                    organization.clone(),
                )))
            });
        mocks.users.expect_authenticate().never();
    }

    #[tokio::test]
    async fn an_authenticated_read_of_an_organization_is_one_storage_call() {
        let mut mocks = Mocks::new();
        read_with(&mut mocks, Some(child()), Some(ApiKeyId::new(3)));
        let batch = Arc::clone(&mocks.key_uses);

        let (actor, organization) = mocks
            .service()
            .authenticated_organization("key", CHILD)
            .await
            .expect("read");

        assert_eq!(organization, child());
        assert_eq!(actor.user_id, UserId::new(10));
        assert_eq!(actor.organization_id(), ROOT);
        assert_eq!(
            batch.take(),
            [ports::outbound::KeyUse {
                key: ApiKeyId::new(3),
                at: now()
            }],
            "the use of the key is recorded as for any request"
        );
    }

    #[tokio::test]
    async fn an_authenticated_read_of_a_missing_or_invisible_organization_is_not_found() {
        for organization in [None, Some(other_root())] {
            let mut mocks = Mocks::new();
            read_with(&mut mocks, organization, None);

            let read = mocks
                .service()
                .authenticated_organization("key", OTHER_ROOT)
                .await;

            assert_eq!(read, Err(UseCaseError::NotFound));
        }
    }

    #[tokio::test]
    async fn an_authenticated_read_with_an_unknown_or_empty_token_is_invalid() {
        let mut mocks = Mocks::new();
        mocks
            .users
            .expect_authenticate_with_organization()
            .times(1)
            .returning(|_, _, _| Ok(None));
        let service = mocks.service();

        for token in ["nope", ""] {
            assert_eq!(
                service.authenticated_organization(token, ROOT).await,
                Err(UseCaseError::Unauthenticated(AuthFailure::Invalid))
            );
        }
    }

    fn key_request(name: &str) -> ApiKeyRequest {
        ApiKeyRequest {
            name: Input::Value(name.to_owned()),
            scope: Input::Value("read".to_owned()),
            expires_in_days: Input::Value(90),
        }
    }

    fn stored_key(user: UserId, key: &NewApiKey, at: domain::Timestamp) -> ApiKey {
        ApiKey {
            id: ApiKeyId::new(7),
            user_id: user,
            name: key.name.clone(),
            prefix: Some(key.material.prefix.clone()),
            scope: key.scope,
            created_at: at,
            expires_at: key.expires_at,
            last_used_at: None,
        }
    }

    /// The event of an `api_key.*` change by `actor(_)`, without `changes`.
    fn api_key_event(action: EventAction) -> NewEvent {
        NewEvent::new(
            action,
            domain::audit::EventActor::User(UserId::new(10)),
            domain::audit::EventOrganization::Existing(ROOT),
            EventTarget::Member(UserId::new(10)),
            domain::audit::RequestId::parse("req-root"),
            now(),
        )
    }

    #[tokio::test]
    async fn revoking_a_key_passes_its_event() {
        let mut mocks = Mocks::new();
        mocks
            .users
            .expect_revoke_api_key()
            .with(
                eq(UserId::new(10)),
                eq(ApiKeyId::new(7)),
                eq(api_key_event(EventAction::ApiKeyRevoked)),
            )
            .times(1)
            .returning(|_, _, _| Ok(()));

        mocks
            .service()
            .revoke_api_key(&actor(Role::Users), ApiKeyId::new(7))
            .await
            .expect("revoked");
    }

    #[tokio::test]
    async fn a_new_key_is_stored_as_asked_and_shown_once() {
        let mut mocks = Mocks::new();
        mocks
            .users
            .expect_create_api_key()
            .withf(|user, key, at, event| {
                *user == UserId::new(10)
                    && key.name.as_str() == "ci"
                    && key.scope == Scope::Read
                    && key.expires_at == Some(now() + Duration::days(90))
                    && key.material.hash == SecretToken::presented("fresh-secret").hash()
                    && *at == now()
                    && *event
                        == api_key_event(EventAction::ApiKeyCreated).with_changes(
                            Changes::of_api_key(
                                &key.name,
                                Scope::Read,
                                Some(now() + Duration::days(90)),
                                true,
                            ),
                        )
                    && !event.changes.to_json().contains("fresh-se")
            })
            .times(1)
            .returning(|user, key, at, _| Ok(stored_key(user, &key, at)));

        let created = mocks
            .service()
            .create_api_key(&actor(Role::Users), key_request("ci"))
            .await
            .expect("created");

        assert_eq!(created.key.expose(), "fresh-secret");
        assert_eq!(created.api_key.prefix.as_deref(), Some("fresh-se"));
    }

    #[tokio::test]
    async fn a_bad_key_request_stores_nothing() {
        let mut mocks = Mocks::new();
        mocks.users.expect_create_api_key().never();

        let created = mocks
            .service()
            .create_api_key(&actor(Role::Users), ApiKeyRequest::default())
            .await;

        assert!(matches!(created, Err(UseCaseError::Validation(errors))
            if errors.codes("name") == Some(&[ErrorCode::Required][..])));
    }

    #[tokio::test]
    async fn a_taken_name_and_too_many_keys_answer_the_contract_errors() {
        for (refusal, check) in [
            (
                KeyRefusal::NameTaken,
                (|errors: &ValidationErrors| {
                    errors.codes("name") == Some(&[ErrorCode::ApiKeyNameTaken][..])
                }) as fn(&ValidationErrors) -> bool,
            ),
            (KeyRefusal::TooMany, |errors: &ValidationErrors| {
                errors.non_field_codes() == [ErrorCode::TooManyApiKeys { max: 20 }]
            }),
        ] {
            let mut mocks = Mocks::new();
            mocks
                .users
                .expect_create_api_key()
                .returning(move |_, _, _, _| Err(CreateApiKeyError::Refused(refusal)));

            let created = mocks
                .service()
                .create_api_key(&actor(Role::Users), key_request("ci"))
                .await;

            assert!(
                matches!(&created, Err(UseCaseError::Validation(errors)) if check(errors)),
                "{created:?}"
            );
        }
    }

    #[tokio::test]
    async fn revoking_another_users_or_a_missing_key_is_not_found() {
        let mut mocks = Mocks::new();
        mocks
            .users
            .expect_revoke_api_key()
            .with(
                eq(UserId::new(10)),
                eq(ApiKeyId::new(99)),
                eq(api_key_event(EventAction::ApiKeyRevoked)),
            )
            .returning(|_, _, _| Err(WriteError::NotFound));

        let revoked = mocks
            .service()
            .revoke_api_key(&actor(Role::Administrators), ApiKeyId::new(99))
            .await;

        assert_eq!(revoked, Err(UseCaseError::NotFound));
    }

    #[tokio::test]
    async fn the_key_list_is_the_actors_and_a_page_past_the_end_is_invalid() {
        let mut mocks = Mocks::new();
        mocks
            .users
            .expect_list_api_keys()
            .with(eq(UserId::new(10)), mockall::predicate::always())
            .returning(|_, page| {
                Ok(Page {
                    items: vec![],
                    total: 0,
                    request: page,
                })
            });
        let service = mocks.service();

        let first = service
            .api_keys(&actor(Role::Users), PageRequest::new(1, 50))
            .await;
        let past = service
            .api_keys(&actor(Role::Users), PageRequest::new(2, 50))
            .await;

        assert!(first.is_ok());
        assert_eq!(past.map(|_| ()), Err(UseCaseError::InvalidPage));
    }
}
