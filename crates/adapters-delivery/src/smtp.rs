//! E-mail over SMTP with lettre: one message per address, an HTML part and a plain-text
//! part. A 5xx from the server (a refused recipient) is final; the rest is retried.

use std::time::Duration;

use domain::reports::delivery::{SendFailure, TARGET_TIMEOUT};
use domain::reports::render::RenderedRun;
use lettre::message::{Mailbox, MultiPart};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use secrecy::{ExposeSecret, SecretString};

/// `LLMA_SMTP_URL` (e.g. `smtp://127.0.0.1:2525`, `smtps://user:pass@host`; it may hold
/// a password, so it is a secret) and `LLMA_SMTP_FROM`.
#[derive(Debug, Clone)]
pub struct SmtpConfig {
    pub url: SecretString,
    pub from: String,
}

/// The SMTP settings are unusable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SmtpConfigError {
    #[error("expected smtp://host:port or smtps://user:password@host:port")]
    BadUrl,
    #[error("LLMA_SMTP_FROM must be an e-mail address such as reports@example.com")]
    BadFrom,
}

impl SmtpConfig {
    /// Checks both values without connecting.
    pub fn check(&self) -> Result<(), SmtpConfigError> {
        AsyncSmtpTransport::<Tokio1Executor>::from_url(self.url.expose_secret())
            .map_err(|_| SmtpConfigError::BadUrl)?;
        self.from.parse::<Mailbox>().map_err(|_| SmtpConfigError::BadFrom)?;
        Ok(())
    }
}

pub(crate) struct SmtpSender {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
}

impl SmtpSender {
    pub(crate) fn new(config: SmtpConfig) -> Result<Self, SmtpConfigError> {
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(config.url.expose_secret())
            .map_err(|_| SmtpConfigError::BadUrl)?
            .timeout(Some(Duration::from_secs(5)))
            .build();
        let from = config.from.parse::<Mailbox>().map_err(|_| SmtpConfigError::BadFrom)?;
        Ok(Self { transport, from })
    }

    pub(crate) async fn send(&self, address: &str, run: &RenderedRun) -> Result<(), SendFailure> {
        let to: Mailbox = address.parse().map_err(|_| SendFailure::permanent("not a valid e-mail address"))?;
        let message = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(run.subject.clone())
            .multipart(MultiPart::alternative_plain_html(run.text.clone(), run.html.clone()))
            .map_err(|e| SendFailure::permanent(format!("the message could not be built ({e})")))?;
        match tokio::time::timeout(TARGET_TIMEOUT, self.transport.send(message)).await {
            Err(_) => Err(SendFailure::retry("the SMTP server did not answer within 10 s")),
            Ok(Ok(_)) => Ok(()),
            Ok(Err(error)) if error.is_permanent() => {
                Err(SendFailure::permanent(format!("the SMTP server refused it: {error}")))
            }
            Ok(Err(error)) => Err(SendFailure::retry(format!("the SMTP server could not be used: {error}"))),
        }
    }
}
