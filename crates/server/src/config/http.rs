//! The HTTP API: where it listens, the links it sends out, and its limits.

use std::net::SocketAddr;
use std::time::Duration;

use url::Url;

use super::ConfigError;
use super::env::{Env, error};

#[derive(Debug, Clone)]
pub struct HttpConfig {
    /// `LLMA_BIND` (default `127.0.0.1:8000`).
    pub bind: SocketAddr,
    /// `LLMA_PUBLIC_URL`: the base of links sent out (default `http://{LLMA_BIND}`), no
    /// trailing slash.
    pub public_url: String,
    /// Whether `LLMA_PUBLIC_URL` was set (else the bound address replaces the default).
    pub public_url_explicit: bool,
    /// `LLMA_HTTP_HEADER_TIMEOUT_SECS`: a request's headers must arrive within this, and
    /// an idle keep-alive connection is closed after it (default 10).
    pub header_timeout: Duration,
    /// `LLMA_MAX_CONNECTIONS`: open HTTP connections at most (default 4096).
    pub max_connections: usize,
    /// `LLMA_API_BODY_TIMEOUT_SECS`: how long a JSON API body may take to arrive (default 10).
    pub api_body_timeout: Duration,
}

impl HttpConfig {
    pub fn read(env: &Env) -> Result<Self, ConfigError> {
        let bind = match env.get("LLMA_BIND") {
            Some(raw) => raw
                .trim()
                .parse()
                .map_err(|_| error("LLMA_BIND", format!("expected host:port such as 127.0.0.1:8000, got `{raw}`")))?,
            None => SocketAddr::from(([127, 0, 0, 1], 8000)),
        };
        let public_url = match env.get("LLMA_PUBLIC_URL") {
            Some(raw) => {
                let url = Url::parse(raw.trim())
                    .ok()
                    .filter(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
                    .ok_or_else(|| error("LLMA_PUBLIC_URL", format!("expected an http(s) URL, got `{raw}`")))?;
                url.as_str().trim_end_matches('/').to_owned()
            }
            None => format!("http://{bind}"),
        };
        Ok(Self {
            bind,
            public_url,
            public_url_explicit: env.get("LLMA_PUBLIC_URL").is_some(),
            header_timeout: env.seconds("LLMA_HTTP_HEADER_TIMEOUT_SECS", 1..=300, 10)?,
            max_connections: env.number("LLMA_MAX_CONNECTIONS", 1..=1_000_000, 4096)?,
            api_body_timeout: env.seconds("LLMA_API_BODY_TIMEOUT_SECS", 1..=600, 10)?,
        })
    }
}
