//! Adapter tests: each PostgreSQL repository against a real database, a fresh migrated
//! database per test. Run with `cargo xtask test -p adapters-postgres`.

mod ai_events;
mod coalesced_reads;
mod evaluation_config;
mod evaluations;
mod housekeeping;
mod identity;
mod jobs;
mod judge_results;
mod provider_keys;
mod read_connections;
mod reports;
mod summaries;
mod support;
mod targets;
