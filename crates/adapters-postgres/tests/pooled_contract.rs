//! The repository contract, run on PostgreSQL through PgBouncer in transaction mode (one
//! pooler for this test binary, five server connections per database) with the
//! `transaction` pooler setting: one fresh database per check.

mod support;

storage_contract::contract_tests!(support::fresh_pooled_store);
