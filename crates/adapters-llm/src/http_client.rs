//! The one HTTP client of the gateway and the bounded way it reads answers.

use std::time::Duration;

use reqwest::header::{HeaderMap, RETRY_AFTER};
use reqwest::{Client, RequestBuilder, Response, StatusCode, redirect};
use url::Url;

use domain::provider_key::Provider;

use crate::config::LlmGatewayConfig;

/// Connecting never takes longer than this, whatever the whole-request timeout.
const MAX_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Error bodies are only read for a reason code: a small bound is enough.
const ERROR_BODY_LIMIT: usize = 64 * 1024;

/// A `Retry-After` longer than this is read as this (no call waits an hour anyway).
const MAX_RETRY_AFTER: Duration = Duration::from_secs(3600);

/// The HTTP client for provider calls could not be built (TLS set-up failed).
#[derive(Debug, thiserror::Error)]
#[error("could not build the HTTP client for LLM providers")]
pub struct GatewayBuildError(#[source] reqwest::Error);

/// The gateway's clients: one for the providers' own hosts (and the operator's overrides
/// of them), one whose resolver refuses addresses inside the network for hosts that keys
/// name (OpenAI-compatible endpoints).
#[derive(Debug, Clone)]
pub(crate) struct Clients {
    fixed_hosts: Client,
    user_named_hosts: Client,
}

impl Clients {
    pub fn build(config: &LlmGatewayConfig) -> Result<Self, GatewayBuildError> {
        let guard = net_guard::GuardedResolver::new(config.allow_private_endpoints);
        Ok(Self { fixed_hosts: build_client(config, None)?, user_named_hosts: build_client(config, Some(guard))? })
    }

    /// The client for calls of `provider`.
    pub fn of(&self, provider: Provider) -> &Client {
        match provider {
            Provider::OpenaiCompatible => &self.user_named_hosts,
            _ => &self.fixed_hosts,
        }
    }
}

/// Builds a client: no redirects (a key must not follow one to another host), no proxy
/// from the environment, connect and whole-request timeouts.
fn build_client(
    config: &LlmGatewayConfig,
    guard: Option<net_guard::GuardedResolver>,
) -> Result<Client, GatewayBuildError> {
    // reqwest is built with `rustls-no-provider`: the process needs one crypto provider.
    // Installing fails harmlessly when another part of the process installed it first.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut builder = Client::builder()
        .redirect(redirect::Policy::none())
        .no_proxy()
        .connect_timeout(config.validation_timeout.min(MAX_CONNECT_TIMEOUT))
        .timeout(config.validation_timeout);
    if let Some(guard) = guard {
        builder = builder.dns_resolver(std::sync::Arc::new(guard));
    }
    builder.build().map_err(GatewayBuildError)
}

/// A provider's answer: its status, (bounded) body and `Retry-After` (in seconds).
#[derive(Debug)]
pub(crate) struct Reply {
    pub status: StatusCode,
    pub body: Vec<u8>,
    pub retry_after: Option<Duration>,
}

/// Why no answer came back. Carries no URL, header or body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TransportError {
    /// The host could not be reached (refused, DNS, TLS, connect timeout).
    Connect,
    /// The host's name resolves only to addresses inside the network, which are refused.
    PrivateAddress,
    /// The request or the body took longer than the timeout.
    Timeout,
    /// A successful answer's body was larger than allowed.
    TooLarge,
    /// Anything else (a broken connection mid-answer, a malformed response).
    Other,
}

impl TransportError {
    /// A short, secret-free description for logs and `ModelListError::Unavailable`.
    pub fn describe(self) -> &'static str {
        match self {
            TransportError::Connect => "could not connect",
            TransportError::PrivateAddress => {
                "the host resolves to private, loopback or link-local addresses only, which are refused"
            }
            TransportError::Timeout => "timed out",
            TransportError::TooLarge => "the answer was too large",
            TransportError::Other => "the request failed",
        }
    }

    fn classify(error: &reqwest::Error) -> Self {
        // A connect timeout is both: it is reported as a connection problem.
        if error.is_connect() && net_guard::refusal(error).is_some() {
            TransportError::PrivateAddress
        } else if error.is_connect() {
            TransportError::Connect
        } else if error.is_timeout() {
            TransportError::Timeout
        } else {
            TransportError::Other
        }
    }
}

/// Sends `GET url` with `headers` and `query`, reading at most `max_body_bytes` of a
/// successful body (error bodies: a small fixed bound, or nothing when larger).
pub(crate) async fn get(
    client: &Client,
    url: Url,
    headers: HeaderMap,
    query: &[(&str, &str)],
    max_body_bytes: usize,
) -> Result<Reply, TransportError> {
    send(client.get(url).headers(headers).query(query), max_body_bytes).await
}

/// Sends `POST url` with a JSON `body`, bounded by `timeout` (which replaces the client's
/// whole-request timeout), reading answers as [`get`] does.
pub(crate) async fn post_json(
    client: &Client,
    url: Url,
    headers: HeaderMap,
    query: &[(&str, &str)],
    body: &serde_json::Value,
    timeout: Duration,
    max_body_bytes: usize,
) -> Result<Reply, TransportError> {
    let request = client.post(url).headers(headers).query(query).json(body).timeout(timeout);
    send(request, max_body_bytes).await
}

async fn send(request: RequestBuilder, max_body_bytes: usize) -> Result<Reply, TransportError> {
    let response = request.send().await.map_err(|error| {
        let kind = TransportError::classify(&error);
        tracing::debug!(error = %error.without_url(), "provider call failed");
        kind
    })?;
    let status = response.status();
    let retry_after = retry_after(response.headers());
    let body = if status.is_success() {
        read_body(response, max_body_bytes).await?
    } else {
        match read_body(response, ERROR_BODY_LIMIT).await {
            Err(TransportError::TooLarge) => Vec::new(),
            other => other?,
        }
    };
    Ok(Reply { status, body, retry_after })
}

/// `Retry-After` in whole seconds; the HTTP-date form is not used by LLM providers.
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let seconds: u64 = headers.get(RETRY_AFTER)?.to_str().ok()?.trim().parse().ok()?;
    Some(Duration::from_secs(seconds).min(MAX_RETRY_AFTER))
}

async fn read_body(mut response: Response, limit: usize) -> Result<Vec<u8>, TransportError> {
    if response.content_length().is_some_and(|length| length > limit as u64) {
        return Err(TransportError::TooLarge);
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|error| TransportError::classify(&error))? {
        if body.len() + chunk.len() > limit {
            return Err(TransportError::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}
