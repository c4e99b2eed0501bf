//! Router tests: requests through `oneshot`, with mocks of the driving ports.

mod auth;
mod events;
mod idempotency;
mod invitations;
mod languages;
mod members;
mod opt_outs;
mod organizations;
mod service;
mod support;
mod webhooks;
mod wire;
