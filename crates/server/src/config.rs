//! The one place that reads the environment. Every problem names its variable.

use std::net::SocketAddr;
use std::time::Duration;

use adapters_llm::LlmGatewayConfig;
use domain::models::TrialModels;
use domain::provider_key::Provider;
use secrecy::SecretString;
use url::Url;

/// A configuration problem, as one line for the operator.
#[derive(Debug, thiserror::Error)]
#[error("{variable}: {message}")]
pub struct ConfigError {
    pub variable: String,
    pub message: String,
}

fn error(variable: &str, message: impl Into<String>) -> ConfigError {
    ConfigError { variable: variable.to_owned(), message: message.into() }
}

/// `DATABASE_URL`; its `Debug` hides the password.
#[derive(Clone)]
pub struct DatabaseUrl(pub String);

impl std::fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match Url::parse(&self.0) {
            Ok(mut url) if url.password().is_some() => {
                let _ = url.set_password(Some("****"));
                write!(f, "{:?}", url.as_str())
            }
            Ok(url) => write!(f, "{:?}", url.as_str()),
            Err(_) => f.write_str("\"<not a URL>\""),
        }
    }
}

/// The operator's system LLM (trial credits, and the last resort for summaries/reports).
#[derive(Debug, Clone)]
pub struct SystemLlm {
    pub provider: Provider,
    pub api_key: SecretString,
    pub model: String,
    /// `LLMA_SYSTEM_LLM_AZURE_ENDPOINT`: the resource endpoint when the provider is Azure.
    pub azure_endpoint: Option<String>,
}

/// Everything the service reads from its environment.
#[derive(Debug, Clone)]
pub struct Config {
    pub database_url: Option<DatabaseUrl>,
    pub bind: SocketAddr,
    /// `LLMA_ENCRYPTION_KEYS`; required by the commands that touch secrets.
    pub encryption_keys: Option<SecretString>,
    pub llm_gateway: LlmGatewayConfig,
    pub allow_private_endpoints: bool,
    pub system_llm: Option<SystemLlm>,
    pub trial_models: TrialModels,
    pub llm_timeout: Duration,
    pub database_max_connections: u32,
    /// `LLMA_DATABASE_READ_CONNECTIONS`: connections of the hot single-row reads (key
    /// lookups, API-key grants), beside the pool's (default 8).
    pub database_read_connections: u32,
    /// `LLMA_INGEST_MEMORY_LIMIT_MB`: memory capture and OTLP bodies in flight may hold
    /// (default 256).
    pub ingest_memory_limit_mb: usize,
    /// `LLMA_INGEST_MEMORY_WAIT_SECS`: how long a body waits for that memory before a 503
    /// (default 2).
    pub ingest_memory_wait: Duration,
    /// `LLMA_INGEST_BODY_TIMEOUT_SECS`: how long a capture or OTLP body may take to arrive
    /// (default 30).
    pub ingest_body_timeout: Duration,
    /// `LLMA_API_BODY_TIMEOUT_SECS`: how long a JSON API body may take to arrive (default 10).
    pub api_body_timeout: Duration,
    pub json_logs: bool,
    /// `LLMA_JUDGE_CONCURRENCY`: jobs in flight per process (default 8).
    pub judge_concurrency: usize,
    /// `LLMA_JOB_LEASE_SECS`: a claimed job's lease, renewed while it runs (default 60, at most 60).
    pub job_lease: Duration,
    /// `LLMA_JOB_RETRY_BASE_SECS`: the first retry's delay, doubled per attempt (default 5).
    pub job_retry_base: Duration,
    /// `LLMA_HOUSEKEEPING_INTERVAL_SECS`: how often the expired rows are swept (default
    /// 600; 0: this process never enqueues a sweep).
    pub housekeeping_interval: Duration,
    /// `LLMA_SCHEDULER_INTERVAL_SECS`: how often this process looks for due reports
    /// (default 30; 0: never).
    pub scheduler_interval: Duration,
    /// `LLMA_DELIVERY_RETRY_BASE_SECS`: a failed delivery's first retry waits this, then ×4
    /// per retry (default 30).
    pub delivery_retry_base: Duration,
    /// `LLMA_SMTP_URL` and `LLMA_SMTP_FROM`; without them e-mail targets fail clearly.
    pub smtp: Option<adapters_delivery::SmtpConfig>,
    /// `LLMA_PUBLIC_URL`: the base of links sent out (default `http://{LLMA_BIND}`), no
    /// trailing slash.
    pub public_url: String,
    /// Whether `LLMA_PUBLIC_URL` was set (else the bound address replaces the default).
    pub public_url_explicit: bool,
    /// `LLMA_SLACK_WEBHOOK_BASE_URL`: what Slack webhook URLs must start with (default
    /// `https://hooks.slack.com/`; a test or a Slack-compatible relay changes it).
    pub slack_webhook_base: String,
    /// `LLMA_METRICS_BIND`: where `GET /metrics` listens (default `127.0.0.1:9464`; set to
    /// the empty string to turn it off).
    pub metrics_bind: Option<SocketAddr>,
    /// `LLMA_HTTP_HEADER_TIMEOUT_SECS`: a request's headers must arrive within this, and
    /// an idle keep-alive connection is closed after it (default 10).
    pub http_header_timeout: Duration,
    /// `LLMA_MAX_CONNECTIONS`: open HTTP connections at most (default 4096).
    pub max_connections: usize,
    /// `LLMA_EVENT_RETENTION_DAYS`: events older than this are not kept (default 0: all).
    pub event_retention: domain::ingestion::EventRetention,
}

const BASE_URL_VARIABLES: [(Provider, &str); 6] = [
    (Provider::Openai, "LLMA_OPENAI_BASE_URL"),
    (Provider::Anthropic, "LLMA_ANTHROPIC_BASE_URL"),
    (Provider::Gemini, "LLMA_GEMINI_BASE_URL"),
    (Provider::Openrouter, "LLMA_OPENROUTER_BASE_URL"),
    (Provider::Fireworks, "LLMA_FIREWORKS_BASE_URL"),
    (Provider::TogetherAi, "LLMA_TOGETHER_AI_BASE_URL"),
];

fn parse_bool(variable: &str, raw: &str) -> Result<bool, ConfigError> {
    match raw.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" | "" => Ok(false),
        _ => Err(error(variable, format!("expected true or false, got `{raw}`"))),
    }
}

fn parse_number<T>(variable: &str, raw: &str, range: std::ops::RangeInclusive<T>) -> Result<T, ConfigError>
where
    T: std::str::FromStr + PartialOrd + std::fmt::Display,
{
    let value: T = raw.trim().parse().map_err(|_| error(variable, format!("expected a number, got `{raw}`")))?;
    if !range.contains(&value) {
        return Err(error(variable, format!("must be between {} and {}", range.start(), range.end())));
    }
    Ok(value)
}

impl Config {
    /// Reads the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads configuration through `lookup` (the environment, or a map in tests).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let get = |name: &str| lookup(name).filter(|value| !value.trim().is_empty());

        let bind = match get("LLMA_BIND") {
            Some(raw) => raw
                .trim()
                .parse()
                .map_err(|_| error("LLMA_BIND", format!("expected host:port such as 127.0.0.1:8000, got `{raw}`")))?,
            None => SocketAddr::from(([127, 0, 0, 1], 8000)),
        };

        let mut llm_gateway = LlmGatewayConfig::default();
        for (provider, variable) in BASE_URL_VARIABLES {
            if let Some(raw) = get(variable) {
                let url = Url::parse(raw.trim()).map_err(|_| error(variable, format!("`{raw}` is not a URL")))?;
                llm_gateway = llm_gateway.with_base_url(provider, url).map_err(|e| error(variable, e.to_string()))?;
            }
        }

        let system_llm = match get("LLMA_SYSTEM_LLM_PROVIDER") {
            None => None,
            Some(raw) => {
                let provider = Provider::parse(&raw).map_err(|e| error("LLMA_SYSTEM_LLM_PROVIDER", e.to_string()))?;
                let api_key = get("LLMA_SYSTEM_LLM_API_KEY")
                    .ok_or_else(|| error("LLMA_SYSTEM_LLM_API_KEY", "required when LLMA_SYSTEM_LLM_PROVIDER is set"))?;
                let model = get("LLMA_SYSTEM_LLM_MODEL")
                    .or_else(|| domain::models::default_model(provider).map(str::to_owned))
                    .ok_or_else(|| error("LLMA_SYSTEM_LLM_MODEL", "required for this provider"))?;
                let azure_endpoint = get("LLMA_SYSTEM_LLM_AZURE_ENDPOINT");
                if provider == Provider::AzureOpenai && azure_endpoint.is_none() {
                    return Err(error(
                        "LLMA_SYSTEM_LLM_AZURE_ENDPOINT",
                        "required when the system LLM is azure_openai",
                    ));
                }
                Some(SystemLlm { provider, api_key: SecretString::from(api_key), model, azure_endpoint })
            }
        };
        let trial_models = match &system_llm {
            None => TrialModels::default(),
            Some(system) => {
                let models: Vec<String> = get("LLMA_TRIAL_MODELS")
                    .map(|raw| raw.split(',').map(str::trim).filter(|m| !m.is_empty()).map(str::to_owned).collect())
                    .unwrap_or_else(|| vec![system.model.clone()]);
                TrialModels { provider: Some(system.provider), models }
            }
        };

        let smtp = match get("LLMA_SMTP_URL") {
            None => None,
            Some(url) => {
                let smtp = adapters_delivery::SmtpConfig {
                    url: SecretString::from(url.trim().to_owned()),
                    from: get("LLMA_SMTP_FROM")
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
        let public_url = match get("LLMA_PUBLIC_URL") {
            Some(raw) => {
                let url = Url::parse(raw.trim())
                    .ok()
                    .filter(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
                    .ok_or_else(|| error("LLMA_PUBLIC_URL", format!("expected an http(s) URL, got `{raw}`")))?;
                url.as_str().trim_end_matches('/').to_owned()
            }
            None => format!("http://{bind}"),
        };
        let slack_webhook_base = match get("LLMA_SLACK_WEBHOOK_BASE_URL") {
            Some(raw) => {
                Url::parse(raw.trim())
                    .map_err(|_| error("LLMA_SLACK_WEBHOOK_BASE_URL", format!("`{raw}` is not a URL")))?;
                raw.trim().to_owned()
            }
            None => "https://hooks.slack.com/".to_owned(),
        };
        let seconds = |variable: &str, default: u64| -> Result<Duration, ConfigError> {
            Ok(Duration::from_secs(
                get(variable).map(|raw| parse_number(variable, &raw, 0u64..=86_400)).transpose()?.unwrap_or(default),
            ))
        };

        let metrics_bind = match lookup("LLMA_METRICS_BIND") {
            Some(raw) if raw.trim().is_empty() => None,
            Some(raw) => Some(raw.trim().parse().map_err(|_| {
                error("LLMA_METRICS_BIND", format!("expected host:port such as 127.0.0.1:9464 (or empty), got `{raw}`"))
            })?),
            None => Some(SocketAddr::from(([127, 0, 0, 1], 9464))),
        };

        Ok(Self {
            event_retention: domain::ingestion::EventRetention::days(
                get("LLMA_EVENT_RETENTION_DAYS")
                    .map(|raw| parse_number("LLMA_EVENT_RETENTION_DAYS", &raw, 0u32..=36_500))
                    .transpose()?
                    .unwrap_or(0),
            ),
            http_header_timeout: Duration::from_secs(
                get("LLMA_HTTP_HEADER_TIMEOUT_SECS")
                    .map(|raw| parse_number("LLMA_HTTP_HEADER_TIMEOUT_SECS", &raw, 1u64..=300))
                    .transpose()?
                    .unwrap_or(10),
            ),
            max_connections: get("LLMA_MAX_CONNECTIONS")
                .map(|raw| parse_number("LLMA_MAX_CONNECTIONS", &raw, 1usize..=1_000_000))
                .transpose()?
                .unwrap_or(4096),
            metrics_bind,
            scheduler_interval: seconds("LLMA_SCHEDULER_INTERVAL_SECS", 30)?,
            delivery_retry_base: seconds("LLMA_DELIVERY_RETRY_BASE_SECS", 30)?,
            smtp,
            public_url_explicit: get("LLMA_PUBLIC_URL").is_some(),
            public_url,
            slack_webhook_base,
            database_url: get("DATABASE_URL").map(DatabaseUrl),
            bind,
            encryption_keys: get("LLMA_ENCRYPTION_KEYS").map(SecretString::from),
            llm_gateway,
            allow_private_endpoints: get("LLMA_ALLOW_PRIVATE_ENDPOINTS")
                .map(|raw| parse_bool("LLMA_ALLOW_PRIVATE_ENDPOINTS", &raw))
                .transpose()?
                .unwrap_or(false),
            system_llm,
            trial_models,
            llm_timeout: Duration::from_secs(
                get("LLMA_LLM_TIMEOUT_SECS")
                    .map(|raw| parse_number("LLMA_LLM_TIMEOUT_SECS", &raw, 1u64..=3600))
                    .transpose()?
                    .unwrap_or(120),
            ),
            database_max_connections: get("LLMA_DATABASE_MAX_CONNECTIONS")
                .map(|raw| parse_number("LLMA_DATABASE_MAX_CONNECTIONS", &raw, 1u32..=1000))
                .transpose()?
                .unwrap_or(16),
            database_read_connections: get("LLMA_DATABASE_READ_CONNECTIONS")
                .map(|raw| parse_number("LLMA_DATABASE_READ_CONNECTIONS", &raw, 1u32..=1000))
                .transpose()?
                .unwrap_or(8),
            ingest_memory_limit_mb: get("LLMA_INGEST_MEMORY_LIMIT_MB")
                .map(|raw| parse_number("LLMA_INGEST_MEMORY_LIMIT_MB", &raw, 1usize..=1_048_576))
                .transpose()?
                .unwrap_or(256),
            ingest_memory_wait: Duration::from_secs(
                get("LLMA_INGEST_MEMORY_WAIT_SECS")
                    .map(|raw| parse_number("LLMA_INGEST_MEMORY_WAIT_SECS", &raw, 0u64..=60))
                    .transpose()?
                    .unwrap_or(2),
            ),
            ingest_body_timeout: Duration::from_secs(
                get("LLMA_INGEST_BODY_TIMEOUT_SECS")
                    .map(|raw| parse_number("LLMA_INGEST_BODY_TIMEOUT_SECS", &raw, 1u64..=600))
                    .transpose()?
                    .unwrap_or(30),
            ),
            api_body_timeout: Duration::from_secs(
                get("LLMA_API_BODY_TIMEOUT_SECS")
                    .map(|raw| parse_number("LLMA_API_BODY_TIMEOUT_SECS", &raw, 1u64..=600))
                    .transpose()?
                    .unwrap_or(10),
            ),
            json_logs: get("LLMA_LOG_FORMAT").is_some_and(|f| f.eq_ignore_ascii_case("json")),
            judge_concurrency: get("LLMA_JUDGE_CONCURRENCY")
                .map(|raw| parse_number("LLMA_JUDGE_CONCURRENCY", &raw, 1usize..=1000))
                .transpose()?
                .unwrap_or(8),
            job_lease: Duration::from_secs(
                get("LLMA_JOB_LEASE_SECS")
                    .map(|raw| parse_number("LLMA_JOB_LEASE_SECS", &raw, 3u64..=60))
                    .transpose()?
                    .unwrap_or(60),
            ),
            housekeeping_interval: Duration::from_secs(
                get("LLMA_HOUSEKEEPING_INTERVAL_SECS")
                    .map(|raw| parse_number("LLMA_HOUSEKEEPING_INTERVAL_SECS", &raw, 0u64..=86_400))
                    .transpose()?
                    .unwrap_or(600),
            ),
            job_retry_base: Duration::from_secs(
                get("LLMA_JOB_RETRY_BASE_SECS")
                    .map(|raw| parse_number("LLMA_JOB_RETRY_BASE_SECS", &raw, 0u64..=3600))
                    .transpose()?
                    .unwrap_or(5),
            ),
        })
    }

    /// `DATABASE_URL`, which every command but `--help` needs.
    pub fn require_database_url(&self) -> Result<&str, ConfigError> {
        self.database_url.as_ref().map(|url| url.0.as_str()).ok_or_else(|| {
            error(
                "DATABASE_URL",
                "is not set (e.g. postgres://user@127.0.0.1:5432/llm_analytics; `cargo xtask dev` sets it)",
            )
        })
    }

    /// `LLMA_ENCRYPTION_KEYS`, which the commands that touch secrets need.
    pub fn require_encryption_keys(&self) -> Result<&SecretString, ConfigError> {
        self.encryption_keys.as_ref().ok_or_else(|| {
            error(
                "LLMA_ENCRYPTION_KEYS",
                "is not set: give `id:base64-of-32-random-bytes` (comma-separated, first seals)",
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn config(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let map: HashMap<String, String> = vars.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        Config::from_lookup(|name| map.get(name).cloned())
    }

    #[test]
    fn defaults_apply() {
        let config = config(&[]).unwrap();
        assert_eq!(config.bind.to_string(), "127.0.0.1:8000");
        assert_eq!(config.llm_timeout, Duration::from_secs(120));
        assert!(!config.allow_private_endpoints);
        assert!(config.system_llm.is_none());
    }

    #[test]
    fn each_bad_value_names_its_variable() {
        for (variable, value) in [
            ("LLMA_BIND", "nowhere"),
            ("LLMA_OPENAI_BASE_URL", "not a url"),
            ("LLMA_ALLOW_PRIVATE_ENDPOINTS", "maybe"),
            ("LLMA_LLM_TIMEOUT_SECS", "0"),
            ("LLMA_SYSTEM_LLM_PROVIDER", "mistral"),
            ("LLMA_JUDGE_CONCURRENCY", "0"),
            ("LLMA_JOB_LEASE_SECS", "61"),
            ("LLMA_JOB_RETRY_BASE_SECS", "soon"),
            ("LLMA_SCHEDULER_INTERVAL_SECS", "often"),
            ("LLMA_DELIVERY_RETRY_BASE_SECS", "-1"),
            ("LLMA_SMTP_URL", "gopher://mail"),
            ("LLMA_PUBLIC_URL", "ftp://x"),
            ("LLMA_METRICS_BIND", "everywhere"),
            ("LLMA_HTTP_HEADER_TIMEOUT_SECS", "0"),
            ("LLMA_MAX_CONNECTIONS", "none"),
            ("LLMA_EVENT_RETENTION_DAYS", "-3"),
        ] {
            let error = config(&[(variable, value)]).unwrap_err();
            assert_eq!(error.variable, variable, "{error}");
        }
    }

    #[test]
    fn system_llm_needs_a_key_and_sets_trial_models() {
        let error = config(&[("LLMA_SYSTEM_LLM_PROVIDER", "openai")]).unwrap_err();
        assert_eq!(error.variable, "LLMA_SYSTEM_LLM_API_KEY");
        let config = config(&[("LLMA_SYSTEM_LLM_PROVIDER", "openai"), ("LLMA_SYSTEM_LLM_API_KEY", "sk-x")]).unwrap();
        assert_eq!(config.trial_models.models, vec!["gpt-5-mini".to_owned()]);
        assert!(!format!("{config:?}").contains("sk-x"));
    }

    #[test]
    fn debug_output_hides_the_database_password() {
        let config = config(&[("DATABASE_URL", "postgres://app:s3cret-pw@db.internal:5432/llma")]).unwrap();
        let shown = format!("{config:?}");
        assert!(!shown.contains("s3cret-pw"), "{shown}");
        assert!(shown.contains("db.internal"), "{shown}");
        assert_eq!(config.require_database_url().unwrap(), "postgres://app:s3cret-pw@db.internal:5432/llma");
    }

    #[test]
    fn an_azure_system_llm_needs_its_endpoint() {
        let azure = [
            ("LLMA_SYSTEM_LLM_PROVIDER", "azure_openai"),
            ("LLMA_SYSTEM_LLM_API_KEY", "az-key"),
            ("LLMA_SYSTEM_LLM_MODEL", "my-deployment"),
        ];
        assert_eq!(config(&azure).unwrap_err().variable, "LLMA_SYSTEM_LLM_AZURE_ENDPOINT");
        let mut with_endpoint = azure.to_vec();
        with_endpoint.push(("LLMA_SYSTEM_LLM_AZURE_ENDPOINT", "https://r.openai.azure.com"));
        let system = config(&with_endpoint).unwrap().system_llm.unwrap();
        assert_eq!(system.azure_endpoint.as_deref(), Some("https://r.openai.azure.com"));
    }
}
