//! The SSRF guard of outbound calls to hosts users name (webhooks, Slack, OpenAI-compatible
//! endpoints): a name is resolved by the client's own resolver, which drops private,
//! loopback, link-local and metadata addresses, so the address connected to is the one
//! that was checked (a name that resolves outside first and inside later gains nothing).
//! Address literals skip resolvers: [`literal_allowed`] checks them before a call.

use std::net::SocketAddr;

use domain::reports::targets::is_private_address;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// The words of a refusal by the resolver; [`is_refusal`] finds them in an error chain.
const REFUSAL: &str = "the host has no public address (private, loopback and link-local addresses are refused)";

/// A resolver that refuses addresses inside the network unless `allow_private`.
#[derive(Debug, Clone, Copy)]
pub struct GuardedResolver {
    allow_private: bool,
}

impl GuardedResolver {
    pub fn new(allow_private: bool) -> Self {
        Self { allow_private }
    }
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let allow_private = self.allow_private;
        Box::pin(async move {
            let found: Vec<SocketAddr> = tokio::net::lookup_host((name.as_str(), 0)).await?.collect();
            let allowed: Vec<SocketAddr> =
                found.into_iter().filter(|a| allow_private || !is_private_address(a.ip())).collect();
            if allowed.is_empty() {
                return Err(REFUSAL.into());
            }
            let addrs: Addrs = Box::new(allowed.into_iter());
            Ok(addrs)
        })
    }
}

/// Whether a URL whose host is an address literal may be called (names always may: the
/// resolver checks them).
pub fn literal_allowed(url: &url::Url, allow_private: bool) -> bool {
    match url.host() {
        Some(url::Host::Ipv4(ip)) => allow_private || !is_private_address(ip.into()),
        Some(url::Host::Ipv6(ip)) => allow_private || !is_private_address(ip.into()),
        _ => true,
    }
}

/// The resolver's refusal when it is what made a request fail.
pub fn refusal(error: &(dyn std::error::Error + 'static)) -> Option<&'static str> {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(inner) = source {
        if inner.to_string().contains(REFUSAL) {
            return Some(REFUSAL);
        }
        source = inner.source();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literals_inside_the_network_are_refused_unless_allowed() {
        for inside in ["https://127.0.0.1/", "https://10.1.2.3/", "https://169.254.169.254/", "https://[::1]/"] {
            let url = url::Url::parse(inside).unwrap();
            assert!(!literal_allowed(&url, false), "{inside}");
            assert!(literal_allowed(&url, true), "{inside}");
        }
        assert!(literal_allowed(&url::Url::parse("https://93.184.216.34/").unwrap(), false));
        assert!(literal_allowed(&url::Url::parse("https://localhost/").unwrap(), false), "names go to the resolver");
    }

    #[tokio::test]
    async fn the_resolver_refuses_a_name_that_resolves_inside() {
        let refused = GuardedResolver::new(false).resolve("localhost".parse().unwrap()).await;
        let error = refused.err().expect("localhost resolves to loopback only");
        assert_eq!(refusal(error.as_ref()), Some(REFUSAL));
        let allowed = GuardedResolver::new(true).resolve("localhost".parse().unwrap()).await;
        assert!(allowed.is_ok());
    }
}
