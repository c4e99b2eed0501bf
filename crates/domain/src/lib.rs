//! The organizations service's domain: pure rules and types.
//!
//! No I/O, no async runtime, no clock and no randomness: `now` and random bytes are
//! passed in, so every rule here is a plain function that another binary can reuse and
//! that tests in milliseconds. Errors are language-free codes; texts live in the HTTP
//! adapter.
//!
//! Where to start:
//! - [`authorize`]: the permission policy (who may do what to which organization);
//! - [`organization::plan_new_child`]: the create-child rules;
//! - [`invitation`]: an invitation's checks and lifecycle;
//! - [`api_key`]: API keys, their scopes ([`authorize_scope`]) and limits;
//! - [`validation`]: field-keyed errors that collect every problem of a request.
//!
//! `cargo run -p domain --example invitation_lifecycle` walks an invitation from the
//! permission check to its acceptance.

#![warn(missing_docs)]

pub mod api_key;
pub mod audit;
pub mod email;
pub mod idempotency;
pub mod ids;
pub mod invitation;
pub mod limits;
pub mod mail;
pub mod member;
pub mod optout;
pub mod organization;
pub mod pagination;
pub mod permissions;
pub mod role;
pub mod secret;
pub mod service_account;
pub mod time;
pub mod user;
pub mod validation;
pub mod webhook;

pub use audit::RequestId;
pub use email::EmailAddress;
pub use ids::{
    ApiKeyId, DeliveryId, EventId, InvitationId, OrganizationId, OutboxMessageId, RateEventId,
    UserId, Version, WebhookId,
};
pub use permissions::{Access, Action, Actor, Operation, authorize, authorize_scope};
pub use role::Role;
pub use time::{Duration, InvalidDuration, Timestamp, parse_duration};
pub use validation::{ErrorCode, FieldErrors, Input, ValidationErrors};
