//! Report delivery (the domain's `ReportDelivery` port): e-mail over SMTP, Slack incoming
//! webhooks, and JSON webhooks signed the Standard Webhooks way. The HTTP targets share
//! one hardened client: no redirects, no proxy, 10 s per target, and the address actually
//! connected to is checked against private ranges (so DNS rebinding cannot reach inside).

mod guarded_client;
mod signing;
mod slack;
mod smtp;
mod webhook;

use async_trait::async_trait;
use domain::reports::ReportDelivery;
use domain::reports::delivery::{ResolvedTarget, SendFailure};
use domain::reports::render::RenderedRun;

pub use guarded_client::DeliveryClientError;
pub use signing::{sign_webhook, webhook_signature};
pub use smtp::{SmtpConfig, SmtpConfigError};

/// How deliveries are sent.
#[derive(Debug, Clone, Default)]
pub struct DeliveryConfig {
    /// `LLMA_SMTP_URL` and `LLMA_SMTP_FROM`; `None`: e-mail targets fail with a clear line.
    pub smtp: Option<SmtpConfig>,
    /// `LLMA_ALLOW_PRIVATE_ENDPOINTS`: loopback and private addresses may be reached.
    pub allow_private: bool,
}

/// Sends rendered runs to every kind of target.
pub struct Deliveries {
    smtp: Option<smtp::SmtpSender>,
    http: reqwest::Client,
    allow_private: bool,
}

impl Deliveries {
    pub fn new(config: DeliveryConfig) -> Result<Self, DeliveryClientError> {
        let smtp = config.smtp.map(smtp::SmtpSender::new).transpose().map_err(DeliveryClientError::Smtp)?;
        Ok(Self { smtp, http: guarded_client::build(config.allow_private)?, allow_private: config.allow_private })
    }
}

#[async_trait]
impl ReportDelivery for Deliveries {
    async fn send(&self, target: &ResolvedTarget, run: &RenderedRun, delivery_id: &str) -> Result<(), SendFailure> {
        match target {
            ResolvedTarget::Email { address } => match &self.smtp {
                Some(smtp) => smtp.send(address, run).await,
                None => Err(SendFailure::permanent("e-mail is not configured on this server (LLMA_SMTP_URL)")),
            },
            ResolvedTarget::Slack { webhook_url: Some(url), .. } => {
                slack::send(&self.http, url, &run.slack, self.allow_private).await
            }
            ResolvedTarget::Slack { webhook_url: None, .. } => Err(SendFailure::permanent(
                "Slack integrations are not available on this server; give the target a webhook_url",
            )),
            ResolvedTarget::Webhook { url, secret } => {
                let call = webhook::WebhookCall { url, secret, body: &run.webhook, delivery_id };
                webhook::send(&self.http, call, self.allow_private).await
            }
        }
    }
}
