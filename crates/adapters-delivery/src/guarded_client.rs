//! The HTTP client of Slack and webhook deliveries.

use std::sync::Arc;
use std::time::Duration;

use domain::reports::delivery::TARGET_TIMEOUT;
use net_guard::GuardedResolver;
use reqwest::{Client, redirect};

/// The delivery adapters could not be built.
#[derive(Debug, thiserror::Error)]
pub enum DeliveryClientError {
    #[error("could not build the HTTP client for report deliveries")]
    Http(#[source] reqwest::Error),
    #[error("LLMA_SMTP_URL: {0}")]
    Smtp(#[from] crate::SmtpConfigError),
}

pub(crate) fn build(allow_private: bool) -> Result<Client, DeliveryClientError> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    Client::builder()
        .redirect(redirect::Policy::none())
        .no_proxy()
        .dns_resolver(Arc::new(GuardedResolver::new(allow_private)))
        .connect_timeout(Duration::from_secs(5))
        .timeout(TARGET_TIMEOUT)
        .build()
        .map_err(DeliveryClientError::Http)
}

pub(crate) use net_guard::literal_allowed;

/// A short description of a transport failure (no URL: it may hold a token).
pub(crate) fn describe(error: &reqwest::Error) -> String {
    if error.is_timeout() {
        return "timed out after 10 s".into();
    }
    if error.is_connect() {
        return net_guard::refusal(error).unwrap_or("could not connect").into();
    }
    "the request failed".into()
}
