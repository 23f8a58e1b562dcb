//! Slack incoming webhooks: one JSON POST; 2xx is sent, a 4xx will not get better.

use domain::reports::delivery::SendFailure;
use serde_json::Value;

use crate::guarded_client::{describe, literal_allowed};

pub(crate) async fn send(
    client: &reqwest::Client,
    url: &str,
    payload: &Value,
    allow_private: bool,
) -> Result<(), SendFailure> {
    let parsed = url::Url::parse(url).map_err(|_| SendFailure::permanent("the webhook URL is not valid"))?;
    if !literal_allowed(&parsed, allow_private) {
        return Err(SendFailure::permanent("the URL points at a private address"));
    }
    let response = client.post(parsed).json(payload).send().await.map_err(|e| SendFailure::retry(describe(&e)))?;
    let status = response.status();
    if status.is_success() {
        return Ok(());
    }
    let body: String = response.text().await.unwrap_or_default().chars().take(200).collect();
    let detail = if body.trim().is_empty() { String::new() } else { format!(": {}", body.trim()) };
    let message = format!("Slack answered HTTP {}{detail}", status.as_u16());
    if status.is_server_error() || status.as_u16() == 429 {
        Err(SendFailure::retry(message))
    } else {
        Err(SendFailure::permanent(message))
    }
}
