//! Opt-outs: record, list, export (CONTRACT §6).

use std::sync::Arc;

use async_trait::async_trait;
use futures::stream::BoxStream;
use futures::{Stream, StreamExt as _, TryStreamExt as _};
use tracing::Instrument as _;

use domain::audit::{Changes, EventAction, EventTarget, NewEvent};
use domain::mail::opt_out_notice;
use domain::optout::{OptOut, OptOutFilter, OptOutRecorded, OptOutRequest, check_opt_out};
use domain::pagination::{Page, PageRequest};
use domain::{Action, Actor, OrganizationId};
use ports::inbound::{OptOutUseCases, UseCaseError};
use ports::outbound::{
    Clock, OptOutCursor, OptOutExportPage, OptOutRepository, OrganizationRepository, StorageError,
};

use super::authorized_organization;

/// The rows of one export page. Each page is one short read of storage, so that a client
/// reading the export slowly holds no database connection between pages; an export holds
/// at most two pages in memory (the one being written and the one read ahead).
pub const EXPORT_PAGE_ROWS: u32 = 5000;

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
        // An opt-out has no URL of its own: the event's target is null and its
        // `changes` say which address opted out, and how.
        let event = NewEvent::by(
            actor,
            EventAction::OptOutRecorded,
            organization.id,
            EventTarget::None,
            opt_out.creation_date,
        )
        .with_changes(
            Changes::new()
                .with("address", None::<&str>, opt_out.address.as_str())
                .with("origin", None::<&str>, opt_out.origin.as_str()),
        );
        Ok(self.opt_outs.record(opt_out, notice, event).await?)
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
        // The first page is read before the answer starts, so that a storage failure is
        // an ordinary error response rather than a cut stream.
        let first = self
            .opt_outs
            .export_page(organization, filter.clone(), None, EXPORT_PAGE_ROWS)
            .await?;
        let reader = PageReader {
            opt_outs: self.opt_outs.clone(),
            organization,
            filter,
        };
        // Each page is read while the one before it is written: its read starts as soon
        // as the previous page arrives. At most one page is read ahead, and its read
        // releases its connection when it is done, whether the client reads on or not.
        let first_next = first.next.map(|after| reader.start(after));
        let rest = futures::stream::try_unfold(first_next, move |reading| {
            let reader = reader.clone();
            async move {
                let Some(mut reading) = reading else {
                    return Ok(None);
                };
                let page = reading.finish().await?;
                let next = page.next.map(|after| reader.start(after));
                Ok::<_, UseCaseError>(Some((rows(page.rows), next)))
            }
        })
        .try_flatten();
        Ok(rows(first.rows).chain(rest).boxed())
    }
}

/// Reads the pages of one export after the first.
#[derive(Clone)]
struct PageReader {
    opt_outs: Arc<dyn OptOutRepository>,
    organization: OrganizationId,
    filter: OptOutFilter,
}

impl PageReader {
    /// Starts reading the page after `after`, on a task of its own, so that the read
    /// goes on (and ends, releasing its connection) while the stream is not polled.
    fn start(&self, after: OptOutCursor) -> PageRead {
        let reader = self.clone();
        let read = async move {
            reader
                .opt_outs
                .export_page(
                    reader.organization,
                    reader.filter,
                    Some(after),
                    EXPORT_PAGE_ROWS,
                )
                .await
        };
        PageRead(tokio::spawn(read.in_current_span()))
    }
}

/// A page being read; dropping it (the client went away) stops the read.
struct PageRead(tokio::task::JoinHandle<Result<OptOutExportPage, StorageError>>);

impl PageRead {
    /// The page, or why it could not be read.
    async fn finish(&mut self) -> Result<OptOutExportPage, UseCaseError> {
        match (&mut self.0).await {
            Ok(page) => Ok(page?),
            Err(error) => Err(UseCaseError::unavailable(error)),
        }
    }
}

impl Drop for PageRead {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// A page's rows as a stream.
fn rows(rows: Vec<OptOut>) -> impl Stream<Item = Result<OptOut, UseCaseError>> + Send {
    futures::stream::iter(rows.into_iter().map(Ok))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::usecases::fixtures::*;
    use domain::optout::OptOutOrigin;
    use domain::{ErrorCode, Input, Role};
    use ports::outbound::{
        MockClock, MockOptOutRepository, MockOrganizationRepository, OptOutCursor,
        OptOutExportPage, StorageError,
    };

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
            .withf(|opt_out, notice, event| {
                event.action == EventAction::OptOutRecorded
                    && event.target == EventTarget::None
                    && event.organization == domain::audit::EventOrganization::Existing(CHILD)
                    && event.changes.to_json()
                        == r#"{"address": [null, "gone@example.com"], "origin": [null, "api"]}"#
                    && opt_out.organization_id == CHILD
                    && opt_out.address.as_str() == "gone@example.com"
                    && opt_out.origin == OptOutOrigin::Api
                    && opt_out.creation_date == now()
                    && notice.is_none()
            })
            .times(1)
            .returning(|opt_out, _, _| Ok(OptOutRecorded::Created(opt_out)));
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
            .withf(|_, notice, _| {
                notice
                    .as_ref()
                    .is_some_and(|email| email.to.as_str() == "contact2@example.com")
            })
            .times(1)
            .returning(|opt_out, _, _| Ok(OptOutRecorded::Created(opt_out)));
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

    fn row(address: &str) -> OptOut {
        OptOut {
            organization_id: ROOT,
            address: email(address),
            origin: OptOutOrigin::Web,
            creation_date: now(),
        }
    }

    #[tokio::test]
    async fn the_export_reads_page_after_page_following_each_cursor() {
        let cursor = OptOutCursor {
            creation_date: now(),
            id: 7,
        };
        let mut opt_outs = MockOptOutRepository::new();
        let mut sequence = mockall::Sequence::new();
        opt_outs
            .expect_export_page()
            .withf(|_, _, after, limit| after.is_none() && *limit == EXPORT_PAGE_ROWS)
            .times(1)
            .in_sequence(&mut sequence)
            .returning(move |_, _, _, _| {
                Ok(OptOutExportPage {
                    rows: vec![row("a@example.com"), row("b@example.com")],
                    next: Some(cursor),
                })
            });
        opt_outs
            .expect_export_page()
            .withf(move |_, filter, after, _| {
                *after == Some(cursor) && filter.origin == Some(OptOutOrigin::Web)
            })
            .times(1)
            .in_sequence(&mut sequence)
            .returning(|_, _, _, _| {
                Ok(OptOutExportPage {
                    rows: vec![row("c@example.com")],
                    next: None,
                })
            });
        let service = service(organizations(false), opt_outs);

        let rows: Vec<_> = service
            .export(&actor(Role::Managers), ROOT, None, Some("web".to_owned()))
            .await
            .expect("started")
            .collect()
            .await;

        let addresses: Vec<String> = rows
            .into_iter()
            .map(|row| row.expect("a row").address.to_string())
            .collect();
        assert_eq!(
            addresses,
            ["a@example.com", "b@example.com", "c@example.com"]
        );
    }

    #[tokio::test]
    async fn an_export_whose_first_page_fails_is_an_error_not_a_cut_stream() {
        let mut opt_outs = MockOptOutRepository::new();
        opt_outs
            .expect_export_page()
            .times(1)
            .returning(|_, _, _, _| Err(StorageError::unavailable("timeout".to_owned())));
        let service = service(organizations(false), opt_outs);

        let started = service
            .export(&actor(Role::Managers), ROOT, None, None)
            .await;

        assert!(matches!(started, Err(UseCaseError::Unavailable(_))));
    }

    #[tokio::test]
    async fn the_next_page_is_read_while_the_current_one_is_written() {
        let cursor = OptOutCursor {
            creation_date: now(),
            id: 7,
        };
        let reads = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counted = reads.clone();
        let mut opt_outs = MockOptOutRepository::new();
        opt_outs
            .expect_export_page()
            .times(3)
            .returning(move |_, _, after, _| {
                let read = counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                Ok(OptOutExportPage {
                    rows: vec![row(&format!("page{read}@example.com"))],
                    next: (after.is_none() || read < 2).then_some(cursor),
                })
            });
        let service = service(organizations(false), opt_outs);
        let reads_now = || reads.load(std::sync::atomic::Ordering::SeqCst);

        let mut stream = service
            .export(&actor(Role::Managers), ROOT, None, None)
            .await
            .expect("started");
        // The second page is read without the stream being polled.
        for _ in 0..1000 {
            if reads_now() == 2 {
                break;
            }
            tokio::task::yield_now().await;
        }
        assert_eq!(reads_now(), 2, "the second page is read ahead");
        let first = stream.next().await;
        for _ in 0..100 {
            tokio::task::yield_now().await;
        }
        let read_before_the_second_row = reads_now();
        let second = stream.next().await;
        for _ in 0..1000 {
            if reads_now() == 3 {
                break;
            }
            tokio::task::yield_now().await;
        }
        let rest: Vec<_> = stream.collect().await;

        assert_eq!(
            first.and_then(Result::ok).map(|o| o.address.to_string()),
            Some("page0@example.com".to_owned())
        );
        assert_eq!(read_before_the_second_row, 2, "one page ahead, no more");
        assert_eq!(
            second.and_then(Result::ok).map(|o| o.address.to_string()),
            Some("page1@example.com".to_owned())
        );
        assert_eq!(rest.len(), 1);
        assert_eq!(reads_now(), 3);
    }

    #[tokio::test]
    async fn a_later_page_that_fails_ends_the_stream_with_the_error() {
        let cursor = OptOutCursor {
            creation_date: now(),
            id: 1,
        };
        let mut opt_outs = MockOptOutRepository::new();
        opt_outs
            .expect_export_page()
            .returning(move |_, _, after, _| match after {
                None => Ok(OptOutExportPage {
                    rows: vec![row("a@example.com")],
                    next: Some(cursor),
                }),
                Some(_) => Err(StorageError::unavailable("timeout".to_owned())),
            });
        let service = service(organizations(false), opt_outs);

        let rows: Vec<_> = service
            .export(&actor(Role::Managers), ROOT, None, None)
            .await
            .expect("started")
            .collect()
            .await;

        assert_eq!(rows.len(), 2);
        assert!(rows[0].is_ok());
        assert!(matches!(rows[1], Err(UseCaseError::Unavailable(_))));
    }
}
