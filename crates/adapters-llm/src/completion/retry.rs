//! The retry policy of structured completions: which failures are worth another attempt
//! and how long to wait before it (spec section 11).

use std::time::Duration;

use domain::llm::CompletionError;
use domain::provider_key::Provider;
use reqwest::StatusCode;

use crate::http_client::{Reply, TransportError};
use crate::key_check;
use crate::provider_message::provider_message;

/// How a completion retries 429s, 5xx answers and broken connections. Never applies to a
/// rejected key, and never waits past the call's deadline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Retries after the first attempt (the spec allows at most 2).
    pub max_retries: u32,
    /// The backoff before the first retry; it doubles with every retry.
    pub base_delay: Duration,
    /// The longest backoff when the provider gives no `Retry-After`.
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self { max_retries: 2, base_delay: Duration::from_millis(500), max_delay: Duration::from_secs(8) }
    }
}

impl RetryPolicy {
    /// The wait before retry number `retry` (0-based): the provider's `Retry-After` when it
    /// gave one, else exponential backoff with jitter (half fixed, half random).
    pub(crate) fn delay(&self, retry: u32, retry_after: Option<Duration>) -> Duration {
        if let Some(wait) = retry_after {
            return wait;
        }
        let ceiling = self.base_delay.saturating_mul(1u32 << retry.min(16)).min(self.max_delay);
        let half = ceiling / 2;
        half + half.mul_f64(rand::random::<f64>())
    }
}

/// A failed attempt that may succeed when tried again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Transient {
    /// 429.
    RateLimited(Option<Duration>),
    /// 5xx.
    ServerError(StatusCode, Option<Duration>),
    /// A refused or broken connection.
    Transport(TransportError),
}

impl Transient {
    /// What the provider asked us to wait, if anything.
    pub fn retry_after(self) -> Option<Duration> {
        match self {
            Transient::RateLimited(wait) | Transient::ServerError(_, wait) => wait,
            Transient::Transport(_) => None,
        }
    }

    /// The error once no retry is left (or fits before the deadline).
    pub fn into_error(self) -> CompletionError {
        match self {
            Transient::RateLimited(retry_after) => CompletionError::RateLimited { retry_after },
            Transient::ServerError(status, _) => CompletionError::Unavailable(format!("status {}", status.as_u16())),
            Transient::Transport(error) => CompletionError::Unavailable(error.describe().to_owned()),
        }
    }
}

/// A non-2xx answer: worth retrying, or final. `secrets` (the key and headers the call
/// used) are cut out of any provider message kept.
pub(crate) fn classify_status(
    provider: Provider,
    reply: &Reply,
    secrets: &[&str],
) -> Result<Transient, CompletionError> {
    let status = reply.status;
    if key_check::is_key_rejection(provider, status, &reply.body) {
        return Err(CompletionError::KeyRejected);
    }
    if status == StatusCode::PAYMENT_REQUIRED || is_quota_refusal(status, &reply.body) {
        return Err(CompletionError::QuotaExceeded(provider_message(&reply.body, status, secrets)));
    }
    if status == StatusCode::NOT_FOUND {
        return Err(CompletionError::ModelNotFound(provider_message(&reply.body, status, secrets)));
    }
    if status == StatusCode::TOO_MANY_REQUESTS {
        return Ok(Transient::RateLimited(reply.retry_after));
    }
    if status.is_server_error() {
        return Ok(Transient::ServerError(status, reply.retry_after));
    }
    Err(CompletionError::Unavailable(format!("status {}", status.as_u16())))
}

/// A refusal for want of quota or credit: OpenAI's 429 `insufficient_quota`, Anthropic's
/// 400 "credit balance is too low".
fn is_quota_refusal(status: StatusCode, body: &[u8]) -> bool {
    let Ok(answer) = serde_json::from_slice::<serde_json::Value>(body) else {
        return false;
    };
    let error = &answer["error"];
    let said = |field: &str| error[field].as_str().unwrap_or_default().to_ascii_lowercase();
    match status {
        StatusCode::TOO_MANY_REQUESTS => said("code") == "insufficient_quota" || said("type") == "insufficient_quota",
        StatusCode::BAD_REQUEST => said("message").contains("credit balance"),
        _ => false,
    }
}

/// No answer: a connection problem is worth retrying; a timeout means the deadline passed
/// (every attempt is bounded by what is left of it).
pub(crate) fn classify_transport(error: TransportError) -> Result<Transient, CompletionError> {
    match error {
        TransportError::Connect | TransportError::Other => Ok(Transient::Transport(error)),
        TransportError::PrivateAddress => Err(CompletionError::Unavailable(error.describe().to_owned())),
        TransportError::Timeout => Err(CompletionError::Timeout),
        TransportError::TooLarge => Err(CompletionError::Unavailable(error.describe().to_owned())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(status: u16, body: &str, retry_after: Option<u64>) -> Reply {
        Reply {
            status: StatusCode::from_u16(status).unwrap(),
            body: body.as_bytes().to_vec(),
            retry_after: retry_after.map(Duration::from_secs),
        }
    }

    #[test]
    fn retry_after_wins_over_backoff() {
        let policy = RetryPolicy::default();
        assert_eq!(policy.delay(0, Some(Duration::from_secs(3))), Duration::from_secs(3));
    }

    #[test]
    fn backoff_doubles_with_jitter_and_is_capped() {
        let policy = RetryPolicy {
            max_retries: 2,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_millis(300),
        };
        for _ in 0..50 {
            let first = policy.delay(0, None);
            assert!((Duration::from_millis(50)..=Duration::from_millis(100)).contains(&first), "{first:?}");
            let second = policy.delay(1, None);
            assert!((Duration::from_millis(100)..=Duration::from_millis(200)).contains(&second), "{second:?}");
            let capped = policy.delay(10, None);
            assert!((Duration::from_millis(150)..=Duration::from_millis(300)).contains(&capped), "{capped:?}");
        }
    }

    #[test]
    fn statuses_are_sorted_into_retry_and_final() {
        let gemini_bad_key = r#"{"error":{"code":400,"details":[{"reason":"API_KEY_INVALID"}]}}"#;
        assert_eq!(classify_status(Provider::Openai, &reply(401, "", None), &[]), Err(CompletionError::KeyRejected));
        assert_eq!(classify_status(Provider::Anthropic, &reply(403, "", None), &[]), Err(CompletionError::KeyRejected));
        assert_eq!(
            classify_status(Provider::Gemini, &reply(400, gemini_bad_key, None), &[]),
            Err(CompletionError::KeyRejected)
        );
        assert_eq!(
            classify_status(Provider::Openai, &reply(400, gemini_bad_key, None), &[]),
            Err(CompletionError::Unavailable("status 400".to_owned()))
        );
        assert_eq!(
            classify_status(Provider::Openai, &reply(429, "", Some(2)), &[]),
            Ok(Transient::RateLimited(Some(Duration::from_secs(2))))
        );
        assert_eq!(
            classify_status(Provider::Anthropic, &reply(529, "", None), &[]),
            Ok(Transient::ServerError(StatusCode::from_u16(529).unwrap(), None))
        );
        assert_eq!(
            classify_status(Provider::Openai, &reply(404, "", None), &[]),
            Err(CompletionError::ModelNotFound("status 404".to_owned()))
        );
        assert_eq!(
            classify_status(Provider::Openai, &reply(418, "", None), &[]),
            Err(CompletionError::Unavailable("status 418".to_owned()))
        );
    }

    #[test]
    fn a_key_echoed_by_the_provider_is_never_kept() {
        let echo = r#"{"error":{"message":"Incorrect API key provided: sk-proj-abc123secret. Or `AIzaSyD-xyz`."}}"#;
        let Err(CompletionError::ModelNotFound(message)) =
            classify_status(Provider::Openai, &reply(404, echo, None), &["sk-proj-abc123secret"])
        else {
            panic!("a 404 is an unknown model");
        };
        assert_eq!(message, "Incorrect API key provided: [redacted]. Or [redacted]");
        let own = r#"{"error":{"message":"model of my-own-key-material not found"}}"#;
        let Err(CompletionError::ModelNotFound(message)) =
            classify_status(Provider::Openai, &reply(404, own, None), &["my-own-key-material"])
        else {
            panic!("a 404 is an unknown model");
        };
        assert!(!message.contains("my-own-key-material"), "{message}");
    }

    #[test]
    fn quota_and_unknown_models_carry_the_providers_words() {
        let quota = r#"{"error":{"message":"You exceeded your current quota.","type":"insufficient_quota","code":"insufficient_quota"}}"#;
        assert_eq!(
            classify_status(Provider::Openai, &reply(429, quota, None), &[]),
            Err(CompletionError::QuotaExceeded("You exceeded your current quota.".to_owned()))
        );
        let credit =
            r#"{"type":"error","error":{"type":"invalid_request_error","message":"Your credit balance is too low"}}"#;
        assert_eq!(
            classify_status(Provider::Anthropic, &reply(400, credit, None), &[]),
            Err(CompletionError::QuotaExceeded("Your credit balance is too low".to_owned()))
        );
        assert_eq!(
            classify_status(Provider::Openrouter, &reply(402, "{}", None), &[]),
            Err(CompletionError::QuotaExceeded("status 402".to_owned()))
        );
        let missing = r#"{"error":{"message":"The model `gpt-9` does not exist","code":"model_not_found"}}"#;
        assert_eq!(
            classify_status(Provider::Openai, &reply(404, missing, None), &[]),
            Err(CompletionError::ModelNotFound("The model `gpt-9` does not exist".to_owned()))
        );
        assert_eq!(
            classify_status(Provider::Openai, &reply(429, r#"{"error":{"message":"slow down"}}"#, None), &[]),
            Ok(Transient::RateLimited(None))
        );
    }

    #[test]
    fn a_transport_timeout_is_final() {
        assert_eq!(classify_transport(TransportError::Timeout), Err(CompletionError::Timeout));
        assert_eq!(classify_transport(TransportError::Connect), Ok(Transient::Transport(TransportError::Connect)));
    }
}
