//! What operators do from the command line: create organizations and users, set
//! flags, restore and purge archived organizations, and the first start's bootstrap
//! (CONTRACT §8).

use std::sync::Arc;

use async_trait::async_trait;

use super::organizations::created_changes;
use domain::audit::{Changes, EventAction, EventOrganization, EventTarget, NewEvent};
use domain::organization::{NewOrganization, Organization, OrganizationName, Settings};
use domain::secret::SecretToken;
use domain::user::{NewUser, Password, PersonName, User};
use domain::{EmailAddress, ErrorCode, OrganizationId, Role, Timestamp, ValidationErrors};
use ports::inbound::{
    Bootstrapped, OperatorOrganization, OperatorUseCases, OperatorUser, UseCaseError,
};
use ports::outbound::{
    Clock, CreateOrganizationError, CreateUserError, OrganizationRepository, PasswordHasher,
    SecretGenerator, UserRepository, WriteError,
};

/// The first organization and administrator made on an empty database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BootstrapSettings {
    /// The organization's name.
    pub organization_name: String,
    /// The administrator's identifier.
    pub administrator_identifier: String,
}

impl Default for BootstrapSettings {
    fn default() -> Self {
        Self {
            organization_name: "My organization".to_owned(),
            administrator_identifier: "admin@localhost".to_owned(),
        }
    }
}

/// The operator use cases.
#[derive(Clone)]
pub struct OperatorService {
    organizations: Arc<dyn OrganizationRepository>,
    users: Arc<dyn UserRepository>,
    hasher: Arc<dyn PasswordHasher>,
    secrets: Arc<dyn SecretGenerator>,
    clock: Arc<dyn Clock>,
    bootstrap: BootstrapSettings,
}

impl OperatorService {
    /// A service over these ports.
    pub fn new(
        organizations: Arc<dyn OrganizationRepository>,
        users: Arc<dyn UserRepository>,
        hasher: Arc<dyn PasswordHasher>,
        secrets: Arc<dyn SecretGenerator>,
        clock: Arc<dyn Clock>,
        bootstrap: BootstrapSettings,
    ) -> Self {
        Self {
            organizations,
            users,
            hasher,
            secrets,
            clock,
            bootstrap,
        }
    }
}

/// What `member.created` records: the new member's identifier and role, from `null`.
fn member_changes(user: &NewUser) -> Changes {
    Changes::new()
        .with("identifier", None::<&str>, user.identifier.as_str())
        .with("role", None::<&str>, user.role.as_str())
}

fn not_found(error: WriteError) -> UseCaseError {
    match error {
        WriteError::NotFound | WriteError::VersionMismatch => UseCaseError::NotFound,
        WriteError::Storage(error) => error.into(),
    }
}

#[async_trait]
impl OperatorUseCases for OperatorService {
    async fn create_organization(
        &self,
        organization: OperatorOrganization,
    ) -> Result<Organization, UseCaseError> {
        let mut errors = ValidationErrors::new();
        let name = errors.collect("name", OrganizationName::parse(&organization.name));
        let contact_email = errors.collect(
            "contact_email",
            EmailAddress::parse(&organization.contact_email),
        );
        errors.into_result()?;
        let (Some(name), Some(contact_email)) = (name, contact_email) else {
            return Err(ValidationErrors::non_field(ErrorCode::Required).into());
        };
        let new = NewOrganization {
            name,
            contact_email: Some(contact_email),
            settings: Settings::default(),
            parent: organization.parent,
            can_attach_files: organization.can_attach_files,
            can_external_optout: organization.can_external_optout,
        };
        let now = self.clock.now();
        let event = NewEvent::by_operator(
            EventAction::OrganizationCreated,
            EventOrganization::ThisOrganization,
            EventTarget::Organization,
            now,
        )
        .with_changes(created_changes(&new));
        self.organizations
            .create(new, now, event)
            .await
            .map_err(|error| match error {
                CreateOrganizationError::ParentNotFound => {
                    ValidationErrors::single("parent", ErrorCode::ObjectDoesNotExist).into()
                }
                CreateOrganizationError::ParentIsChild => {
                    ValidationErrors::single("parent", ErrorCode::ParentAlreadyHasParent).into()
                }
                CreateOrganizationError::Storage(error) => error.into(),
            })
    }

    async fn create_user(&self, user: OperatorUser) -> Result<(User, SecretToken), UseCaseError> {
        let mut errors = ValidationErrors::new();
        let identifier = errors.collect("identifier", EmailAddress::parse(&user.identifier));
        let password = user
            .password
            .as_deref()
            .and_then(|password| errors.collect("password", Password::parse(password)));
        errors.into_result()?;
        let Some(identifier) = identifier else {
            return Err(ValidationErrors::non_field(ErrorCode::Required).into());
        };
        let password_hash = match password {
            Some(password) => Some(
                self.hasher
                    .hash(&password)
                    .await
                    .map_err(UseCaseError::internal)?,
            ),
            None => None,
        };
        let api_key = self.secrets.generate();
        let new = NewUser {
            organization_id: user.organization,
            identifier,
            first_name: PersonName::unnamed(),
            last_name: PersonName::unnamed(),
            role: user.role,
            password_hash,
        };
        let now = self.clock.now();
        let event = NewEvent::by_operator(
            EventAction::MemberCreated,
            EventOrganization::Existing(user.organization),
            EventTarget::ThisMember,
            now,
        )
        .with_changes(member_changes(&new));
        let created = self
            .users
            .create(new, &domain::api_key::KeyMaterial::of(&api_key), now, event)
            .await
            .map_err(|error| match error {
                CreateUserError::IdentifierTaken => {
                    ValidationErrors::single("identifier", ErrorCode::IdentifierTaken).into()
                }
                CreateUserError::OrganizationNotFound => UseCaseError::NotFound,
                CreateUserError::Storage(error) => error.into(),
            })?;
        Ok((created, api_key))
    }

    async fn set_flags(
        &self,
        organization: OrganizationId,
        can_attach_files: Option<bool>,
        can_external_optout: Option<bool>,
    ) -> Result<Organization, UseCaseError> {
        // The flags before, for the event's `changes`.
        let current = self
            .organizations
            .find(organization)
            .await?
            .ok_or(UseCaseError::NotFound)?;
        let planned = Organization {
            can_attach_files: can_attach_files.unwrap_or(current.can_attach_files),
            can_external_optout: can_external_optout.unwrap_or(current.can_external_optout),
            ..current.clone()
        };
        let now = self.clock.now();
        let changes = Changes::of_flags(&current, &planned);
        let event = (!changes.is_empty()).then(|| {
            NewEvent::by_operator(
                EventAction::OrganizationFlagsChanged,
                EventOrganization::Existing(organization),
                EventTarget::Organization,
                now,
            )
            .with_changes(changes)
        });
        self.organizations
            .set_flags(
                organization,
                can_attach_files,
                can_external_optout,
                now,
                event,
            )
            .await
            .map_err(not_found)
    }

    async fn restore_organization(&self, organization: OrganizationId) -> Result<(), UseCaseError> {
        let now = self.clock.now();
        let event = NewEvent::by_operator(
            EventAction::OrganizationRestored,
            EventOrganization::Existing(organization),
            EventTarget::Organization,
            now,
        );
        self.organizations
            .restore(organization, now, event)
            .await
            .map_err(not_found)
    }

    async fn purge_organizations(&self, before: Timestamp) -> Result<u64, UseCaseError> {
        Ok(self.organizations.purge_archived_before(before).await?)
    }

    async fn bootstrap(&self) -> Result<Option<Bootstrapped>, UseCaseError> {
        let mut errors = ValidationErrors::new();
        let name = errors.collect(
            "organization_name",
            OrganizationName::parse(&self.bootstrap.organization_name),
        );
        let identifier = errors.collect(
            "administrator_identifier",
            EmailAddress::parse(&self.bootstrap.administrator_identifier),
        );
        errors.into_result()?;
        let (Some(name), Some(identifier)) = (name, identifier) else {
            return Err(ValidationErrors::non_field(ErrorCode::Required).into());
        };

        let organization = NewOrganization {
            name,
            contact_email: None,
            settings: Settings::default(),
            parent: None,
            can_attach_files: false,
            can_external_optout: false,
        };
        let administrator = NewUser {
            // Storage assigns the organization's id.
            organization_id: OrganizationId::new(0),
            identifier,
            first_name: PersonName::unnamed(),
            last_name: PersonName::unnamed(),
            role: Role::Administrators,
            password_hash: None,
        };
        let api_key = self.secrets.generate();
        let now = self.clock.now();
        let events = vec![
            NewEvent::by_operator(
                EventAction::OrganizationCreated,
                EventOrganization::ThisOrganization,
                EventTarget::Organization,
                now,
            )
            .with_changes(created_changes(&organization)),
            NewEvent::by_operator(
                EventAction::MemberCreated,
                EventOrganization::ThisOrganization,
                EventTarget::ThisMember,
                now,
            )
            .with_changes(member_changes(&administrator)),
        ];
        let created = self
            .users
            .create_first_administrator(
                organization,
                administrator,
                &domain::api_key::KeyMaterial::of(&api_key),
                now,
                events,
            )
            .await?;
        Ok(created.map(|(organization, administrator)| Bootstrapped {
            organization,
            administrator,
            api_key,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::usecases::fixtures::*;
    use domain::UserId;
    use domain::user::PasswordHash;
    use mockall::predicate::eq;
    use ports::outbound::{
        MockClock, MockOrganizationRepository, MockPasswordHasher, MockSecretGenerator,
        MockUserRepository,
    };

    struct Mocks {
        organizations: MockOrganizationRepository,
        users: MockUserRepository,
        hasher: MockPasswordHasher,
    }

    impl Mocks {
        fn new() -> Self {
            Self {
                organizations: MockOrganizationRepository::new(),
                users: MockUserRepository::new(),
                hasher: MockPasswordHasher::new(),
            }
        }

        fn service(self) -> OperatorService {
            let mut clock = MockClock::new();
            clock.expect_now().returning(now);
            let mut secrets = MockSecretGenerator::new();
            secrets
                .expect_generate()
                .returning(|| SecretToken::presented("operator-key"));
            OperatorService::new(
                Arc::new(self.organizations),
                Arc::new(self.users),
                Arc::new(self.hasher),
                Arc::new(secrets),
                Arc::new(clock),
                BootstrapSettings::default(),
            )
        }
    }

    fn operator_organization(parent: Option<OrganizationId>) -> OperatorOrganization {
        OperatorOrganization {
            name: "Acme".to_owned(),
            contact_email: "ops@acme.example".to_owned(),
            parent,
            can_attach_files: true,
            can_external_optout: false,
        }
    }

    #[tokio::test]
    async fn an_operator_creates_a_root_organization_with_its_flags() {
        let mut mocks = Mocks::new();
        mocks
            .organizations
            .expect_create()
            .withf(|new, _, event| {
                event.action == EventAction::OrganizationCreated
                    && event.actor == domain::audit::EventActor::Operator
                    && event.request_id.is_none()
                    && event.organization == EventOrganization::ThisOrganization
                    && event.target == EventTarget::Organization
                    && new.parent.is_none()
                    && new.can_attach_files
                    && new.name.as_str() == "Acme"
            })
            .times(1)
            .returning(|_, _, _| Ok(root()));

        let created = mocks
            .service()
            .create_organization(operator_organization(None))
            .await;

        assert_eq!(created, Ok(root()));
    }

    #[tokio::test]
    async fn an_operator_cannot_attach_to_a_child() {
        let mut mocks = Mocks::new();
        mocks
            .organizations
            .expect_create()
            .returning(|_, _, _| Err(CreateOrganizationError::ParentIsChild));

        let created = mocks
            .service()
            .create_organization(operator_organization(Some(CHILD)))
            .await;

        assert!(matches!(created, Err(UseCaseError::Validation(errors))
            if errors.codes("parent") == Some(&[ErrorCode::ParentAlreadyHasParent][..])));
    }

    #[tokio::test]
    async fn bad_operator_values_are_reported_together_without_storing() {
        let mut mocks = Mocks::new();
        mocks.organizations.expect_create().never();
        let organization = OperatorOrganization {
            name: String::new(),
            contact_email: "nope".to_owned(),
            ..operator_organization(None)
        };

        let created = mocks.service().create_organization(organization).await;

        let Err(UseCaseError::Validation(errors)) = created else {
            panic!("expected a validation error: {created:?}");
        };
        assert_eq!(errors.codes("name"), Some(&[ErrorCode::Blank][..]));
        assert_eq!(
            errors.codes("contact_email"),
            Some(&[ErrorCode::InvalidEmail][..])
        );
    }

    #[tokio::test]
    async fn an_operator_creates_a_user_with_a_hashed_password_and_gets_its_key() {
        let mut mocks = Mocks::new();
        mocks
            .hasher
            .expect_hash()
            .times(1)
            .returning(|_| Ok(PasswordHash::new("$argon2id$x".to_owned())));
        mocks
            .users
            .expect_create()
            .withf(|new, key, _, event| {
                event.action == EventAction::MemberCreated
                    && event.actor == domain::audit::EventActor::Operator
                    && event.target == EventTarget::ThisMember
                    && event.organization == EventOrganization::Existing(new.organization_id)
                    && !event.changes.to_json().contains("operator-key")
                    && new.role == Role::Managers
                    && new.password_hash.is_some()
                    && key.hash == SecretToken::presented("operator-key").hash()
                    && key.prefix == "operator"
            })
            .times(1)
            .returning(|new, _, _, _| Ok(user(UserId::new(5), new.organization_id, new.role)));

        let (created, key) = mocks
            .service()
            .create_user(OperatorUser {
                organization: ROOT,
                identifier: "m@example.com".to_owned(),
                role: Role::Managers,
                password: Some("long enough".to_owned()),
            })
            .await
            .expect("created");

        assert_eq!(created.id, UserId::new(5));
        assert_eq!(key.expose(), "operator-key");
    }

    #[tokio::test]
    async fn a_user_in_a_missing_organization_is_not_found() {
        let mut mocks = Mocks::new();
        mocks
            .users
            .expect_create()
            .returning(|_, _, _, _| Err(CreateUserError::OrganizationNotFound));

        let created = mocks
            .service()
            .create_user(OperatorUser {
                organization: OrganizationId::new(99),
                identifier: "m@example.com".to_owned(),
                role: Role::Users,
                password: None,
            })
            .await;

        assert_eq!(created, Err(UseCaseError::NotFound));
    }

    #[tokio::test]
    async fn setting_flags_records_only_the_flags_that_move() {
        let mut mocks = Mocks::new();
        mocks
            .organizations
            .expect_find()
            .with(eq(CHILD))
            .returning(|_| Ok(Some(child())));
        mocks
            .organizations
            .expect_set_flags()
            .withf(|_, attach, _, _, event| {
                *attach == Some(true)
                    && event.as_ref().is_some_and(|event| {
                        event.action == EventAction::OrganizationFlagsChanged
                            && event.actor == domain::audit::EventActor::Operator
                            && event.organization == EventOrganization::Existing(CHILD)
                            && event.changes.to_json() == r#"{"can_attach_files": [false, true]}"#
                    })
            })
            .times(1)
            .returning(|_, _, _, _, _| Ok(child()));
        mocks
            .organizations
            .expect_set_flags()
            .withf(|_, attach, _, _, event| *attach == Some(false) && event.is_none())
            .times(1)
            .returning(|_, _, _, _, _| Ok(child()));
        let service = mocks.service();

        let moved = service.set_flags(CHILD, Some(true), None).await;
        let kept = service.set_flags(CHILD, Some(false), None).await;

        assert!(moved.is_ok());
        assert!(kept.is_ok());
    }

    #[tokio::test]
    async fn setting_the_flags_of_a_missing_organization_is_not_found_and_writes_nothing() {
        let mut mocks = Mocks::new();
        mocks.organizations.expect_find().returning(|_| Ok(None));
        mocks.organizations.expect_set_flags().never();

        let set = mocks.service().set_flags(CHILD, Some(true), None).await;

        assert_eq!(set, Err(UseCaseError::NotFound));
    }

    #[tokio::test]
    async fn restoring_an_organization_that_is_not_archived_is_not_found() {
        let mut mocks = Mocks::new();
        mocks
            .organizations
            .expect_restore()
            .withf(|organization, at, event| {
                (*organization, *at) == (CHILD, now())
                    && event.action == EventAction::OrganizationRestored
                    && event.target == EventTarget::Organization
            })
            .returning(|_, _, _| Err(WriteError::NotFound));

        let restored = mocks.service().restore_organization(CHILD).await;

        assert_eq!(restored, Err(UseCaseError::NotFound));
    }

    #[tokio::test]
    async fn purging_reports_how_many_were_erased() {
        let mut mocks = Mocks::new();
        mocks
            .organizations
            .expect_purge_archived_before()
            .with(eq(now()))
            .returning(|_| Ok(3));

        let purged = mocks.service().purge_organizations(now()).await;

        assert_eq!(purged, Ok(3));
    }

    #[tokio::test]
    async fn the_bootstrap_creates_an_administrator_only_on_an_empty_database() {
        for existing_users in [false, true] {
            let mut mocks = Mocks::new();
            mocks
                .users
                .expect_create_first_administrator()
                .withf(|organization, administrator, _, _, events| {
                    events.iter().map(|event| event.action).collect::<Vec<_>>()
                        == [EventAction::OrganizationCreated, EventAction::MemberCreated]
                        && events[1].target == EventTarget::ThisMember
                        && events[1].organization == EventOrganization::ThisOrganization
                        && organization.parent.is_none()
                        && administrator.role == Role::Administrators
                        && administrator.identifier.as_str() == "admin@localhost"
                })
                .times(1)
                .returning(move |_, _, _, _, _| {
                    Ok((!existing_users)
                        .then(|| (root(), user(UserId::new(1), ROOT, Role::Administrators))))
                });

            let bootstrapped = mocks.service().bootstrap().await.expect("ran");

            assert_eq!(bootstrapped.is_some(), !existing_users);
        }
    }
}
