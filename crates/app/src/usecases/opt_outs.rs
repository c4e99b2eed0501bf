//! Opt-outs: record, list, export (CONTRACT §6).

use std::sync::Arc;

use async_trait::async_trait;
use futures::StreamExt as _;
use futures::stream::BoxStream;

use domain::mail::opt_out_notice;
use domain::optout::{OptOut, OptOutFilter, OptOutRecorded, OptOutRequest, check_opt_out};
use domain::pagination::{Page, PageRequest};
use domain::{Action, Actor, OrganizationId};
use ports::inbound::{OptOutUseCases, UseCaseError};
use ports::outbound::{Clock, OptOutRepository, OrganizationRepository};

use super::authorized_organization;

/// The opt-out use cases.
#[derive(Clone)]
pub struct OptOutService {
    organizations: Arc<dyn OrganizationRepository>,
    opt_outs: Arc<dyn OptOutRepository>,
    clock: Arc<dyn Clock>,
}

impl OptOutService {
    /// A service over these ports.
    pub fn new(
        organizations: Arc<dyn OrganizationRepository>,
        opt_outs: Arc<dyn OptOutRepository>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            organizations,
            opt_outs,
            clock,
        }
    }
}

#[async_trait]
impl OptOutUseCases for OptOutService {
    async fn record(
        &self,
        actor: &Actor,
        organization: OrganizationId,
        request: OptOutRequest,
    ) -> Result<OptOutRecorded, UseCaseError> {
        let organization = authorized_organization(
            self.organizations.as_ref(),
            actor,
            Action::ManageOptOuts,
            organization,
        )
        .await?;
        let (address, origin) = check_opt_out(request)?;
        let opt_out = OptOut {
            organization_id: organization.id,
            address,
            origin,
            creation_date: self.clock.now(),
        };
        // Storage queues the notice only if the opt-out turns out to be new.
        let notice = organization
            .contact_email
            .as_ref()
            .filter(|_| organization.settings.notify_optouts)
            .map(|contact| opt_out_notice(contact, organization.name.as_str(), &opt_out));
        Ok(self.opt_outs.record(opt_out, notice).await?)
    }

    async fn list(
        &self,
        actor: &Actor,
        organization: OrganizationId,
        address: Option<String>,
        origin: Option<String>,
        page: PageRequest,
    ) -> Result<Page<OptOut>, UseCaseError> {
        authorized_organization(
            self.organizations.as_ref(),
            actor,
            Action::ManageOptOuts,
            organization,
        )
        .await?;
        let filter = OptOutFilter::parse(address.as_deref(), origin.as_deref())?;
        let listed = self.opt_outs.list(organization, filter, page).await?;
        page.check(listed.total)
            .map_err(|_| UseCaseError::InvalidPage)?;
        Ok(listed)
    }

    async fn export(
        &self,
        actor: &Actor,
        organization: OrganizationId,
        address: Option<String>,
        origin: Option<String>,
    ) -> Result<BoxStream<'static, Result<OptOut, UseCaseError>>, UseCaseError> {
        authorized_organization(
            self.organizations.as_ref(),
            actor,
            Action::ManageOptOuts,
            organization,
        )
        .await?;
        let filter = OptOutFilter::parse(address.as_deref(), origin.as_deref())?;
        Ok(self
            .opt_outs
            .export(organization, filter)
            .map(|row| row.map_err(UseCaseError::from))
            .boxed())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::usecases::fixtures::*;
    use domain::optout::OptOutOrigin;
    use domain::{ErrorCode, Input, Role};
    use ports::outbound::{MockClock, MockOptOutRepository, MockOrganizationRepository};

    fn organizations(notify_optouts: bool) -> MockOrganizationRepository {
        let mut organizations = MockOrganizationRepository::new();
        organizations.expect_find().returning(move |id| {
            Ok([root(), child(), other_root()]
                .into_iter()
                .find(|organization| organization.id == id)
                .map(|mut organization| {
                    organization.settings.notify_optouts = notify_optouts;
                    organization
                }))
        });
        organizations
    }

    fn service(
        organizations: MockOrganizationRepository,
        opt_outs: MockOptOutRepository,
    ) -> OptOutService {
        let mut clock = MockClock::new();
        clock.expect_now().returning(now);
        OptOutService::new(Arc::new(organizations), Arc::new(opt_outs), Arc::new(clock))
    }

    fn request() -> OptOutRequest {
        OptOutRequest {
            address: Input::Value("gone@Example.com".to_owned()),
            origin: Input::Absent,
        }
    }

    #[tokio::test]
    async fn recording_stores_the_opt_out_with_origin_api_and_now() {
        let mut opt_outs = MockOptOutRepository::new();
        opt_outs
            .expect_record()
            .withf(|opt_out, notice| {
                opt_out.organization_id == CHILD
                    && opt_out.address.as_str() == "gone@example.com"
                    && opt_out.origin == OptOutOrigin::Api
                    && opt_out.creation_date == now()
                    && notice.is_none()
            })
            .times(1)
            .returning(|opt_out, _| Ok(OptOutRecorded::Created(opt_out)));
        let service = service(organizations(false), opt_outs);

        let recorded = service
            .record(&actor(Role::Managers), CHILD, request())
            .await
            .expect("recorded");

        assert!(matches!(recorded, OptOutRecorded::Created(_)));
    }

    #[tokio::test]
    async fn an_organization_that_asks_for_notices_gets_one_to_its_contact() {
        let mut opt_outs = MockOptOutRepository::new();
        opt_outs
            .expect_record()
            .withf(|_, notice| {
                notice
                    .as_ref()
                    .is_some_and(|email| email.to.as_str() == "contact2@example.com")
            })
            .times(1)
            .returning(|opt_out, _| Ok(OptOutRecorded::Created(opt_out)));
        let service = service(organizations(true), opt_outs);

        let recorded = service
            .record(&actor(Role::Administrators), CHILD, request())
            .await;

        assert!(recorded.is_ok());
    }

    #[tokio::test]
    async fn users_and_collaborators_cannot_record_or_list_opt_outs() {
        for role in [Role::Users, Role::Collaborators] {
            let mut opt_outs = MockOptOutRepository::new();
            opt_outs.expect_record().never();
            opt_outs.expect_list().never();
            let service = service(organizations(false), opt_outs);

            let recorded = service.record(&actor(role), ROOT, request()).await;
            let listed = service
                .list(&actor(role), ROOT, None, None, PageRequest::default())
                .await;

            assert_eq!(recorded, Err(UseCaseError::Forbidden));
            assert_eq!(listed, Err(UseCaseError::Forbidden));
        }
    }

    #[tokio::test]
    async fn opt_outs_of_an_invisible_organization_are_not_found() {
        let service = service(organizations(false), MockOptOutRepository::new());

        let listed = service
            .list(
                &actor(Role::Administrators),
                OTHER_ROOT,
                None,
                None,
                PageRequest::default(),
            )
            .await;

        assert_eq!(listed, Err(UseCaseError::NotFound));
    }

    #[tokio::test]
    async fn an_invalid_address_is_refused_without_storing() {
        let mut opt_outs = MockOptOutRepository::new();
        opt_outs.expect_record().never();
        let service = service(organizations(false), opt_outs);
        let request = OptOutRequest {
            address: Input::Value("nope".to_owned()),
            origin: Input::Absent,
        };

        let recorded = service.record(&actor(Role::Managers), ROOT, request).await;

        let Err(UseCaseError::Validation(errors)) = recorded else {
            panic!("expected a validation error: {recorded:?}");
        };
        assert_eq!(
            errors.codes("address"),
            Some(&[ErrorCode::InvalidEmail][..])
        );
    }

    #[tokio::test]
    async fn an_unknown_origin_filter_is_refused() {
        let mut opt_outs = MockOptOutRepository::new();
        opt_outs.expect_list().never();
        let service = service(organizations(false), opt_outs);

        let listed = service
            .list(
                &actor(Role::Managers),
                ROOT,
                None,
                Some("fax".to_owned()),
                PageRequest::default(),
            )
            .await;

        assert!(matches!(listed, Err(UseCaseError::Validation(_))));
    }

    #[tokio::test]
    async fn the_export_streams_what_storage_streams() {
        let mut opt_outs = MockOptOutRepository::new();
        opt_outs
            .expect_export()
            .times(1)
            .returning(|organization, _| {
                let row = OptOut {
                    organization_id: organization,
                    address: email("a@example.com"),
                    origin: OptOutOrigin::Web,
                    creation_date: now(),
                };
                futures::stream::iter(vec![Ok(row.clone()), Ok(row)]).boxed()
            });
        let service = service(organizations(false), opt_outs);

        let rows: Vec<_> = service
            .export(&actor(Role::Managers), ROOT, None, None)
            .await
            .expect("started")
            .collect()
            .await;

        assert_eq!(rows.len(), 2);
        assert!(rows.iter().all(Result::is_ok));
    }
}
