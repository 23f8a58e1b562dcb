//! The operators' Prometheus endpoint.

use std::net::SocketAddr;

use super::ConfigError;
use super::env::{Env, error};

#[derive(Debug, Clone)]
pub struct MetricsConfig {
    /// `LLMA_METRICS_BIND`: where `GET /metrics` listens (default `127.0.0.1:9464`; set to
    /// the empty string to turn it off).
    pub bind: Option<SocketAddr>,
}

impl MetricsConfig {
    pub fn read(env: &Env) -> Result<Self, ConfigError> {
        let bind = match env.raw("LLMA_METRICS_BIND") {
            Some(raw) if raw.trim().is_empty() => None,
            Some(raw) => Some(raw.trim().parse().map_err(|_| {
                error("LLMA_METRICS_BIND", format!("expected host:port such as 127.0.0.1:9464 (or empty), got `{raw}`"))
            })?),
            None => Some(SocketAddr::from(([127, 0, 0, 1], 9464))),
        };
        Ok(Self { bind })
    }
}
