//! Black-box tests: the real `llm-analytics` binary, a real PostgreSQL database per test,
//! and fake provider servers speaking each provider's wire format.

mod access;
mod helpers;
mod models;
mod operations;
mod provider_key_validations;
mod provider_keys;
mod secrets;
