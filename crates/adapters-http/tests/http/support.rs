//! Mocks of the driving ports, sample domain values, and request helpers.

use adapters_http::{AppState, router};
use async_trait::async_trait;
use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode, header};
use chrono::TimeZone;
use domain::api_key::{ApiKey, ApiKeyRequest};
use domain::invitation::{Invitation, InvitationStatus};
use domain::optout::{OptOut, OptOutOrigin};
use domain::organization::TreeNode;
use domain::organization::{Organization, OrganizationName, Settings};
use domain::pagination::{Page, PageRequest};
use domain::secret::SecretToken;
use domain::user::{MemberRef, PersonName, User};
use domain::{Actor, EmailAddress, InvitationId, OrganizationId, Role, Timestamp, UserId, Version};
use domain::{ApiKeyId, Input, Operation};
use http_body_util::BodyExt;
use ports::inbound::{
    AuthFailure, InvitationView, MockAuthUseCases, MockEventUseCases, MockHealthUseCases,
    MockIdempotencyUseCases, MockInvitationUseCases, MockMemberUseCases, MockOptOutUseCases,
    MockOrganizationUseCases, MockWebhookUseCases, UseCaseError,
};
use ports::inbound::{AuthUseCases, CreatedApiKey, IssuedSession, OrganizationUseCases};
use serde_json::Value;
use std::sync::Arc;
use tower::ServiceExt;

/// The token the mocked authentication accepts.
pub const TOKEN: &str = "good-token";

/// A `read` key of [`admin`]: writes are refused.
pub const READ_TOKEN: &str = "read-token";

/// One mock per driving port; authentication accepts [`TOKEN`] as [`admin`].
pub struct Mocks {
    pub auth: MockAuthUseCases,
    pub organizations: MockOrganizationUseCases,
    pub invitations: MockInvitationUseCases,
    pub members: MockMemberUseCases,
    pub opt_outs: MockOptOutUseCases,
    pub events: MockEventUseCases,
    pub webhooks: MockWebhookUseCases,
    pub health: MockHealthUseCases,
    pub idempotency: MockIdempotencyUseCases,
}

impl Mocks {
    pub fn new() -> Self {
        let mut auth = MockAuthUseCases::new();
        auth.expect_authenticate().returning(|token, operation| {
            if token == TOKEN {
                Ok(admin())
            } else if token == READ_TOKEN {
                match operation {
                    domain::Operation::Read => Ok(admin()),
                    domain::Operation::Write => Err(UseCaseError::ReadOnlyKey),
                }
            } else {
                Err(UseCaseError::Unauthenticated(AuthFailure::Invalid))
            }
        });
        Self {
            auth,
            organizations: MockOrganizationUseCases::new(),
            invitations: MockInvitationUseCases::new(),
            members: MockMemberUseCases::new(),
            opt_outs: MockOptOutUseCases::new(),
            events: MockEventUseCases::new(),
            webhooks: MockWebhookUseCases::new(),
            health: MockHealthUseCases::new(),
            idempotency: MockIdempotencyUseCases::new(),
        }
    }

    pub fn router(self) -> Router {
        let organizations: Arc<MockOrganizationUseCases> = Arc::new(self.organizations);
        router(AppState {
            auth: Arc::new(ComposedAuth {
                auth: self.auth,
                organizations: Arc::clone(&organizations),
            }),
            organizations,
            invitations: Arc::new(self.invitations),
            members: Arc::new(self.members),
            opt_outs: Arc::new(self.opt_outs),
            events: Arc::new(self.events),
            webhooks: Arc::new(self.webhooks),
            health: Arc::new(self.health),
            idempotency: Arc::new(self.idempotency),
        })
    }
}

/// The mocked authentication, with `authenticated_organization` composed as the
/// service composes it: `authenticate` for a read, then the organizations' `get`.
struct ComposedAuth {
    auth: MockAuthUseCases,
    organizations: Arc<MockOrganizationUseCases>,
}

#[async_trait]
impl AuthUseCases for ComposedAuth {
    async fn authenticate(&self, token: &str, operation: Operation) -> Result<Actor, UseCaseError> {
        self.auth.authenticate(token, operation).await
    }

    async fn authenticated_organization(
        &self,
        token: &str,
        id: OrganizationId,
    ) -> Result<(Actor, Organization), UseCaseError> {
        let actor = self.auth.authenticate(token, Operation::Read).await?;
        let organization = self.organizations.get(&actor, id).await?;
        Ok((actor, organization))
    }

    async fn login(
        &self,
        identifier: Input<String>,
        password: Input<String>,
    ) -> Result<IssuedSession, UseCaseError> {
        self.auth.login(identifier, password).await
    }

    async fn me(&self, actor: &Actor) -> Result<User, UseCaseError> {
        self.auth.me(actor).await
    }

    async fn regenerate_api_key(&self, actor: &Actor) -> Result<SecretToken, UseCaseError> {
        self.auth.regenerate_api_key(actor).await
    }

    async fn api_keys(
        &self,
        actor: &Actor,
        page: PageRequest,
    ) -> Result<Page<ApiKey>, UseCaseError> {
        self.auth.api_keys(actor, page).await
    }

    async fn create_api_key(
        &self,
        actor: &Actor,
        request: ApiKeyRequest,
    ) -> Result<CreatedApiKey, UseCaseError> {
        self.auth.create_api_key(actor, request).await
    }

    async fn revoke_api_key(&self, actor: &Actor, key: ApiKeyId) -> Result<(), UseCaseError> {
        self.auth.revoke_api_key(actor, key).await
    }
}

/// An administrator of the root organization 1.
pub fn admin() -> Actor {
    Actor {
        user_id: UserId::new(5),
        role: Role::Administrators,
        organization: TreeNode {
            id: OrganizationId::new(1),
            parent: None,
        },
        request_id: None,
    }
}

pub fn at(seconds: i64) -> Timestamp {
    chrono::Utc
        .timestamp_opt(1_714_564_800 + seconds, 0)
        .single()
        .expect("valid time")
}

pub fn email(address: &str) -> EmailAddress {
    EmailAddress::parse(address).expect("valid address")
}

/// The seed's root organization `Example`.
pub fn root_organization() -> Organization {
    Organization {
        id: OrganizationId::new(1),
        name: OrganizationName::parse("Example").expect("valid name"),
        contact_email: None,
        settings: Settings::default(),
        parent: None,
        can_attach_files: false,
        can_external_optout: false,
        version: Version::new(3),
        created_at: at(0),
        updated_at: at(0),
    }
}

/// The seed's child organization 2.
pub fn child_organization() -> Organization {
    let mut child = root_organization();
    child.id = OrganizationId::new(2);
    child.name = OrganizationName::parse("Child organization").expect("valid name");
    child.contact_email = Some(email("child@example.com"));
    child.parent = Some(OrganizationId::new(1));
    child.version = Version::FIRST;
    child.settings.nickname = domain::organization::Nickname::parse("nickname").expect("valid");
    child.settings.notify_message_status = false;
    child
}

pub fn user() -> User {
    User {
        id: UserId::new(5),
        organization_id: OrganizationId::new(1),
        identifier: email("admin@example.com").into(),
        first_name: PersonName::parse("Ada").expect("valid"),
        last_name: PersonName::parse("Lovelace").expect("valid"),
        role: Role::Administrators,
        is_active: true,
        created_at: at(0),
    }
}

/// A member `id` of organization 1 with `role`.
pub fn member(id: i64, role: Role) -> User {
    User {
        id: UserId::new(id),
        identifier: email(&format!("member{id}@example.com")).into(),
        first_name: PersonName::parse("Grace").expect("valid"),
        last_name: PersonName::parse("Hopper").expect("valid"),
        role,
        ..user()
    }
}

/// Invitation 7 of organization 1, pending as its use case reports it.
pub fn invitation() -> InvitationView {
    let now = at(0);
    let invitation = Invitation {
        id: InvitationId::new(7),
        organization_id: OrganizationId::new(1),
        identifier: email("new@example.com"),
        role: Role::Users,
        invited_by: Some(MemberRef {
            organization_id: OrganizationId::new(1),
            user_id: UserId::new(5),
        }),
        created_at: now,
        expires_at: now + chrono::TimeDelta::days(7),
        accepted_at: None,
        revoked_at: None,
    };
    InvitationView {
        invitation,
        status: InvitationStatus::Pending,
    }
}

pub fn opt_out(address: &str, origin: OptOutOrigin, seconds: i64) -> OptOut {
    OptOut {
        organization_id: OrganizationId::new(1),
        address: email(address),
        origin,
        creation_date: at(seconds),
    }
}

pub fn page<T>(items: Vec<T>, total: u64, page: u64, size: u64) -> Page<T> {
    Page {
        items,
        total,
        request: PageRequest::new(page, size),
    }
}

/// An authenticated request without a body.
pub fn request(method: &str, uri: &str) -> Request<Body> {
    Request::builder()
        .method(method)
        .uri(uri)
        .header(header::AUTHORIZATION, format!("Bearer {TOKEN}"))
        .body(Body::empty())
        .expect("valid request")
}

/// An authenticated request with a JSON body.
pub fn json_request(method: &str, uri: &str, body: &Value) -> Request<Body> {
    Request::builder()
        .method(method)
        .uri(uri)
        .header(header::AUTHORIZATION, format!("Bearer {TOKEN}"))
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body.to_string()))
        .expect("valid request")
}

/// A request without credentials.
pub fn anonymous(method: &str, uri: &str) -> Request<Body> {
    Request::builder()
        .method(method)
        .uri(uri)
        .body(Body::empty())
        .expect("valid request")
}

/// A response, read whole.
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl Answer {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|error| {
            panic!(
                "not JSON ({error}): {}",
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|value| value.to_str().ok())
    }
}

pub async fn send(router: Router, request: Request<Body>) -> Answer {
    let response = router.oneshot(request).await.expect("infallible");
    let status = response.status();
    let headers = response.headers().clone();
    let body = response
        .into_body()
        .collect()
        .await
        .expect("readable body")
        .to_bytes()
        .to_vec();
    Answer {
        status,
        headers,
        body,
    }
}
