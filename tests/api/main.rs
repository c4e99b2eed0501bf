//! Black-box tests of the API: the real service over HTTP, on SQLite and PostgreSQL.

mod auth;
mod invitations;
mod limits;
mod members;
mod opt_outs;
mod organizations;
mod resilience;
mod schema;
mod service;
mod slow_clients;
mod smtp;
mod wire;
