//! Black-box tests: the real `llm-analytics` binary, a real PostgreSQL database per test,
//! and fake provider servers speaking each provider's wire format.

mod access;
mod body_deadlines;
mod code_evaluators;
mod cost;
mod evaluation_config;
mod evaluation_summary;
mod evaluations;
mod helpers;
mod hostile_text;
mod ingest_memory;
mod ingestion;
mod judge;
mod metrics;
mod models;
mod offline_items;
mod openai_compatible;
mod operations;
mod otel;
mod provider_key_actions;
mod provider_key_activity;
mod provider_key_validations;
mod provider_keys;
mod report_browser;
mod reports;
mod retention;
mod secrets;
mod slow_clients;
mod targets;
