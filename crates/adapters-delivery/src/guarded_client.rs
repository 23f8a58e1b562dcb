//! The HTTP client of Slack and webhook deliveries.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use domain::reports::delivery::TARGET_TIMEOUT;
use domain::reports::targets::is_private_address;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use reqwest::{Client, redirect};

/// The delivery adapters could not be built.
#[derive(Debug, thiserror::Error)]
pub enum DeliveryClientError {
    #[error("could not build the HTTP client for report deliveries")]
    Http(#[source] reqwest::Error),
    #[error("LLMA_SMTP_URL: {0}")]
    Smtp(#[from] crate::SmtpConfigError),
}

/// Resolves names and refuses private addresses, so the address connected to is the one
/// that was checked (a name that resolves outside first and inside later gains nothing).
struct GuardedResolver {
    allow_private: bool,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let allow_private = self.allow_private;
        Box::pin(async move {
            let found: Vec<SocketAddr> = tokio::net::lookup_host((name.as_str(), 0)).await?.collect();
            let allowed: Vec<SocketAddr> =
                found.into_iter().filter(|a| allow_private || !is_private_address(a.ip())).collect();
            if allowed.is_empty() {
                return Err(
                    "the host has no public address (private, loopback and link-local addresses are refused)".into()
                );
            }
            let addrs: Addrs = Box::new(allowed.into_iter());
            Ok(addrs)
        })
    }
}

pub(crate) fn build(allow_private: bool) -> Result<Client, DeliveryClientError> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    Client::builder()
        .redirect(redirect::Policy::none())
        .no_proxy()
        .dns_resolver(Arc::new(GuardedResolver { allow_private }))
        .connect_timeout(Duration::from_secs(5))
        .timeout(TARGET_TIMEOUT)
        .build()
        .map_err(DeliveryClientError::Http)
}

/// A URL whose host is an address literal skips the resolver: check it here.
pub(crate) fn literal_allowed(url: &url::Url, allow_private: bool) -> bool {
    match url.host() {
        Some(url::Host::Ipv4(ip)) => allow_private || !is_private_address(ip.into()),
        Some(url::Host::Ipv6(ip)) => allow_private || !is_private_address(ip.into()),
        _ => true,
    }
}

/// A short description of a transport failure (no URL: it may hold a token).
pub(crate) fn describe(error: &reqwest::Error) -> String {
    if error.is_timeout() {
        return "timed out after 10 s".into();
    }
    if error.is_connect() {
        let mut source: Option<&dyn std::error::Error> = std::error::Error::source(error);
        while let Some(inner) = source {
            let text = inner.to_string();
            if text.contains("no public address") {
                return text;
            }
            source = inner.source();
        }
        return "could not connect".into();
    }
    "the request failed".into()
}
