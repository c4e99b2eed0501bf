//! Black-box tests of the API: the real service over HTTP, on SQLite and PostgreSQL.

mod api_keys;
mod audit;
mod auth;
mod event_cursor;
mod hardening_auth;
mod hostile_input;
mod idempotency;
mod invitations;
mod limits;
mod members;
mod opt_outs;
mod organizations;
mod outbox;
mod outputs;
mod pages;
mod reads;
mod resilience;
mod schema;
mod service;
mod service_accounts;
mod slow_clients;
mod smtp;
mod webhooks;
mod wire;
