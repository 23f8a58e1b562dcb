//! The one place that reads the environment, one group per capability (each parsed and
//! validated by its own type). Every problem names its variable.

mod database;
mod env;
mod http;
mod ingestion;
mod llm;
mod metrics;
mod reports;
mod worker;

use secrecy::SecretString;

pub use database::{DatabaseConfig, DatabaseUrl};
pub use env::Env;
use env::error;
pub use http::HttpConfig;
pub use ingestion::IngestionConfig;
pub use llm::{LlmConfig, SystemLlm};
pub use metrics::MetricsConfig;
pub use reports::ReportsConfig;
pub use worker::WorkerConfig;

/// A configuration problem, as one line for the operator.
#[derive(Debug, thiserror::Error)]
#[error("{variable}: {message}")]
pub struct ConfigError {
    pub variable: String,
    pub message: String,
}

/// Everything the service reads from its environment.
#[derive(Debug, Clone)]
pub struct Config {
    pub http: HttpConfig,
    pub database: DatabaseConfig,
    pub llm: LlmConfig,
    pub worker: WorkerConfig,
    pub reports: ReportsConfig,
    pub ingestion: IngestionConfig,
    pub metrics: MetricsConfig,
    /// `LLMA_ENCRYPTION_KEYS`; required by the commands that touch secrets.
    pub encryption_keys: Option<SecretString>,
    /// `LLMA_ALLOW_PRIVATE_ENDPOINTS`: whether provider endpoints and webhooks may be
    /// private, loopback or link-local addresses (default false).
    pub allow_private_endpoints: bool,
    /// `LLMA_LOG_FORMAT=json`.
    pub json_logs: bool,
}

impl Config {
    /// Reads the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads configuration through `lookup` (the environment, or a map in tests).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let env = Env::new(&lookup);
        Ok(Self {
            http: HttpConfig::read(&env)?,
            database: DatabaseConfig::read(&env)?,
            llm: LlmConfig::read(&env)?,
            worker: WorkerConfig::read(&env)?,
            reports: ReportsConfig::read(&env)?,
            ingestion: IngestionConfig::read(&env)?,
            metrics: MetricsConfig::read(&env)?,
            encryption_keys: env.get("LLMA_ENCRYPTION_KEYS").map(SecretString::from),
            allow_private_endpoints: env.flag("LLMA_ALLOW_PRIVATE_ENDPOINTS")?,
            json_logs: env.get("LLMA_LOG_FORMAT").is_some_and(|f| f.trim().eq_ignore_ascii_case("json")),
        })
    }

    /// `DATABASE_URL`, which every command but `--help` needs.
    pub fn require_database_url(&self) -> Result<&str, ConfigError> {
        self.database.url.as_ref().map(|url| url.0.as_str()).ok_or_else(|| {
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

    use std::time::Duration;

    use super::*;

    fn config(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let map: HashMap<String, String> = vars.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        Config::from_lookup(|name| map.get(name).cloned())
    }

    #[test]
    fn defaults_apply() {
        let config = config(&[]).unwrap();
        assert_eq!(config.http.bind.to_string(), "127.0.0.1:8000");
        assert_eq!(config.llm.timeout, Duration::from_secs(120));
        assert!(!config.allow_private_endpoints);
        assert!(config.llm.system.is_none());
        assert_eq!(
            (config.worker.judge_concurrency, config.worker.report_run_concurrency, config.worker.delivery_concurrency),
            (8, 2, 4)
        );
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
            ("LLMA_REPORT_RUN_CONCURRENCY", "many"),
            ("LLMA_DELIVERY_CONCURRENCY", "0"),
            ("LLMA_DATABASE_READ_CONNECTIONS", "0"),
            ("LLMA_INGEST_MEMORY_WAIT_SECS", "61"),
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
        assert_eq!(config.llm.trial_models.models, vec!["gpt-5-mini".to_owned()]);
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
        let system = config(&with_endpoint).unwrap().llm.system.unwrap();
        assert_eq!(system.azure_endpoint.as_deref(), Some("https://r.openai.azure.com"));
    }
}
