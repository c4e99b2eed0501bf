//! The repository contract, run on PostgreSQL: one fresh database per check.

mod support;

storage_contract::contract_tests!(support::fresh_store);
