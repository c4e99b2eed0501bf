//! Use-case services: the driving ports implemented with the domain's rules on top of
//! the driven ports. Each service decides in pure domain code first, then makes one
//! port call carrying the whole intent.

mod auth;
mod events;
mod health;
mod idempotency;
mod invitations;
mod key_uses;
mod limits;
mod members;
mod operator;
mod opt_outs;
mod organizations;
mod webhooks;

#[cfg(test)]
pub(crate) mod fixtures;

pub use auth::AuthService;
pub use events::EventService;
pub use health::HealthService;
pub use idempotency::{IdempotencyService, IdempotencySettings};
pub use invitations::{InvitationPorts, InvitationService, InvitationSettings};
pub use key_uses::KeyUseBatch;
pub use limits::AbuseLimits;
pub use members::MemberService;
pub use operator::{BootstrapSettings, OperatorService};
pub use opt_outs::{EXPORT_PAGE_ROWS, OptOutService};
pub use organizations::OrganizationService;
pub use webhooks::WebhookService;

use domain::organization::{ParentReference, TreeNode};
use domain::{Access, Action, Actor, authorize};
use ports::inbound::{ParentLink, UseCaseError};
use ports::outbound::{OrganizationRepository, StorageError};

/// Turns the policy's answer into the use-case error: not visible → 404, forbidden → 403.
fn require(actor: &Actor, action: Action, target: TreeNode) -> Result<(), UseCaseError> {
    match authorize(actor, action, target) {
        Access::Allowed => Ok(()),
        Access::NotVisible => Err(UseCaseError::NotFound),
        Access::Forbidden => Err(UseCaseError::Forbidden),
    }
}

/// Loads a live organization and checks that `actor` may do `action` to it.
async fn authorized_organization(
    organizations: &dyn OrganizationRepository,
    actor: &Actor,
    action: Action,
    id: domain::OrganizationId,
) -> Result<domain::organization::Organization, UseCaseError> {
    let organization = organizations
        .find(id)
        .await?
        .ok_or(UseCaseError::NotFound)?;
    require(actor, action, organization.node())?;
    Ok(organization)
}

/// Looks up the organization a `parent` link points at.
async fn resolve_parent(
    organizations: &dyn OrganizationRepository,
    link: ParentLink,
) -> Result<ParentReference, StorageError> {
    Ok(match link {
        ParentLink::Absent => ParentReference::Absent,
        ParentLink::Blank => ParentReference::Blank,
        ParentLink::NoUrlMatch => ParentReference::NoUrlMatch,
        ParentLink::Organization(id) => match organizations.find(id).await? {
            Some(parent) => ParentReference::Found(parent.node()),
            None => ParentReference::Missing,
        },
    })
}
