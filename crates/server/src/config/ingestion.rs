//! Ingestion: the memory bodies in flight may hold, how long a body may take, and how
//! long events are kept.

use std::time::Duration;

use domain::ingestion::EventRetention;

use super::ConfigError;
use super::env::Env;

#[derive(Debug, Clone)]
pub struct IngestionConfig {
    /// `LLMA_INGEST_MEMORY_LIMIT_MB`: memory capture and OTLP bodies in flight may hold
    /// (default 256).
    pub memory_limit_mb: usize,
    /// `LLMA_INGEST_MEMORY_WAIT_SECS`: how long a body waits for that memory before a 503
    /// (default 2).
    pub memory_wait: Duration,
    /// `LLMA_INGEST_BODY_TIMEOUT_SECS`: how long a capture or OTLP body may take to arrive
    /// (default 30).
    pub body_timeout: Duration,
    /// `LLMA_EVENT_RETENTION_DAYS`: events older than this are not kept (default 0: all).
    pub event_retention: EventRetention,
    /// `LLMA_PRICE_EVENTS`: whether generations are priced when they arrive (default true;
    /// off, they keep only what the client sent).
    pub price_events: bool,
}

impl IngestionConfig {
    pub fn read(env: &Env) -> Result<Self, ConfigError> {
        Ok(Self {
            memory_limit_mb: env.number("LLMA_INGEST_MEMORY_LIMIT_MB", 1..=1_048_576, 256)?,
            memory_wait: env.seconds("LLMA_INGEST_MEMORY_WAIT_SECS", 0..=60, 2)?,
            body_timeout: env.seconds("LLMA_INGEST_BODY_TIMEOUT_SECS", 1..=600, 30)?,
            event_retention: EventRetention::days(env.number("LLMA_EVENT_RETENTION_DAYS", 0..=36_500, 0)?),
            price_events: env.get("LLMA_PRICE_EVENTS").is_none() || env.flag("LLMA_PRICE_EVENTS")?,
        })
    }
}
