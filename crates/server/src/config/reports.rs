//! Evaluation reports: the scheduler's tick and how runs are delivered.

use std::time::Duration;

use secrecy::SecretString;
use url::Url;

use super::ConfigError;
use super::env::{Env, error};

#[derive(Debug, Clone)]
pub struct ReportsConfig {
    /// `LLMA_SCHEDULER_INTERVAL_SECS`: how often this process looks for due reports
    /// (default 30; 0: never).
    pub scheduler_interval: Duration,
    /// `LLMA_DELIVERY_RETRY_BASE_SECS`: a failed delivery's first retry waits this, then ×4
    /// per retry (default 30).
    pub delivery_retry_base: Duration,
    /// `LLMA_SMTP_URL` and `LLMA_SMTP_FROM`; without them e-mail targets fail clearly.
    pub smtp: Option<adapters_delivery::SmtpConfig>,
    /// `LLMA_SLACK_WEBHOOK_BASE_URL`: what Slack webhook URLs must start with (default
    /// `https://hooks.slack.com/`; a test or a Slack-compatible relay changes it).
    pub slack_webhook_base: String,
}

impl ReportsConfig {
    pub fn read(env: &Env) -> Result<Self, ConfigError> {
        let smtp = match env.get("LLMA_SMTP_URL") {
            None => None,
            Some(url) => {
                let smtp = adapters_delivery::SmtpConfig {
                    url: SecretString::from(url.trim().to_owned()),
                    from: env
                        .get("LLMA_SMTP_FROM")
                        .unwrap_or_else(|| "llm-analytics@localhost".to_owned())
                        .trim()
                        .to_owned(),
                };
                smtp.check().map_err(|e| match e {
                    adapters_delivery::SmtpConfigError::BadUrl => error("LLMA_SMTP_URL", e.to_string()),
                    adapters_delivery::SmtpConfigError::BadFrom => error("LLMA_SMTP_FROM", e.to_string()),
                })?;
                Some(smtp)
            }
        };
        let slack_webhook_base = match env.get("LLMA_SLACK_WEBHOOK_BASE_URL") {
            Some(raw) => {
                Url::parse(raw.trim())
                    .map_err(|_| error("LLMA_SLACK_WEBHOOK_BASE_URL", format!("`{raw}` is not a URL")))?;
                raw.trim().to_owned()
            }
            None => "https://hooks.slack.com/".to_owned(),
        };
        Ok(Self {
            scheduler_interval: env.seconds("LLMA_SCHEDULER_INTERVAL_SECS", 0..=86_400, 30)?,
            delivery_retry_base: env.seconds("LLMA_DELIVERY_RETRY_BASE_SECS", 0..=86_400, 30)?,
            smtp,
            slack_webhook_base,
        })
    }
}
