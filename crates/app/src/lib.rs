//! The organizations service's application layer: the use-case services that
//! implement the driving ports, the system implementations of the small driven ports
//! (clock, secrets, password hashing), and — in `main` — the `orgs` binary.

pub mod config;
pub mod connections;
pub mod delivery;
pub mod maintenance;
pub mod security;
pub mod server;
pub mod telemetry;
pub mod usecases;
pub mod webhooks;
