//! Signed webhooks: the run as JSON, with `webhook-id` (run + target, the same on every
//! retry), `webhook-timestamp` and `webhook-signature`.

use domain::reports::delivery::SendFailure;
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;

use crate::guarded_client::{describe, literal_allowed};
use crate::signing::sign_webhook;

/// One webhook delivery.
pub(crate) struct WebhookCall<'a> {
    pub url: &'a str,
    pub secret: &'a SecretString,
    pub body: &'a Value,
    pub delivery_id: &'a str,
}

fn now_unix() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

pub(crate) async fn send(
    client: &reqwest::Client,
    call: WebhookCall<'_>,
    allow_private: bool,
) -> Result<(), SendFailure> {
    let parsed = url::Url::parse(call.url).map_err(|_| SendFailure::permanent("the webhook URL is not valid"))?;
    if !literal_allowed(&parsed, allow_private) {
        return Err(SendFailure::permanent("the URL points at a private address"));
    }
    let body = serde_json::to_vec(call.body).map_err(|_| SendFailure::permanent("the run could not be encoded"))?;
    let timestamp = now_unix();
    let signature = sign_webhook(call.secret.expose_secret(), call.delivery_id, timestamp, &body);
    let response = client
        .post(parsed)
        .header("content-type", "application/json")
        .header("webhook-id", call.delivery_id)
        .header("webhook-timestamp", timestamp.to_string())
        .header("webhook-signature", signature)
        .body(body)
        .send()
        .await
        .map_err(|e| SendFailure::retry(describe(&e)))?;
    let status = response.status();
    if status.is_success() {
        return Ok(());
    }
    let message = format!("the endpoint answered HTTP {}", status.as_u16());
    if status.is_server_error() || matches!(status.as_u16(), 408 | 409 | 425 | 429) {
        Err(SendFailure::retry(message))
    } else if status.is_redirection() {
        Err(SendFailure::permanent(format!("{message} (redirects are not followed)")))
    } else {
        Err(SendFailure::permanent(message))
    }
}
