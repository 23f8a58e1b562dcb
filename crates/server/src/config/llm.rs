//! The LLM providers: their base URLs, the operator's system LLM and trial models, and
//! how long one LLM task may take.

use std::time::Duration;

use adapters_llm::LlmGatewayConfig;
use domain::models::TrialModels;
use domain::provider_key::Provider;
use secrecy::SecretString;
use url::Url;

use super::ConfigError;
use super::env::{Env, error};

/// The operator's system LLM (trial credits, and the last resort for summaries/reports).
#[derive(Debug, Clone)]
pub struct SystemLlm {
    pub provider: Provider,
    pub api_key: SecretString,
    pub model: String,
    /// `LLMA_SYSTEM_LLM_AZURE_ENDPOINT`: the resource endpoint when the provider is Azure.
    pub azure_endpoint: Option<String>,
    /// `LLMA_SYSTEM_LLM_BASE_URL`: the endpoint when the provider is openai_compatible.
    pub base_url: Option<String>,
}

#[derive(Debug, Clone)]
pub struct LlmConfig {
    /// `LLMA_<PROVIDER>_BASE_URL`: where each provider's API is.
    pub gateway: LlmGatewayConfig,
    /// `LLMA_SYSTEM_LLM_*`.
    pub system: Option<SystemLlm>,
    /// `LLMA_TRIAL_MODELS` (default the system model).
    pub trial_models: TrialModels,
    /// `LLMA_LLM_TIMEOUT_SECS`: one LLM task, retries included (default 120).
    pub timeout: Duration,
}

const BASE_URL_VARIABLES: [(Provider, &str); 6] = [
    (Provider::Openai, "LLMA_OPENAI_BASE_URL"),
    (Provider::Anthropic, "LLMA_ANTHROPIC_BASE_URL"),
    (Provider::Gemini, "LLMA_GEMINI_BASE_URL"),
    (Provider::Openrouter, "LLMA_OPENROUTER_BASE_URL"),
    (Provider::Fireworks, "LLMA_FIREWORKS_BASE_URL"),
    (Provider::TogetherAi, "LLMA_TOGETHER_AI_BASE_URL"),
];

impl LlmConfig {
    pub fn read(env: &Env) -> Result<Self, ConfigError> {
        let mut gateway =
            LlmGatewayConfig::default().allowing_private_endpoints(env.flag("LLMA_ALLOW_PRIVATE_ENDPOINTS")?);
        for (provider, variable) in BASE_URL_VARIABLES {
            if let Some(raw) = env.get(variable) {
                let url = Url::parse(raw.trim()).map_err(|_| error(variable, format!("`{raw}` is not a URL")))?;
                gateway = gateway.with_base_url(provider, url).map_err(|e| error(variable, e.to_string()))?;
            }
        }
        let system = system_llm(env)?;
        let trial_models = match &system {
            None => TrialModels::default(),
            Some(system) => {
                let models: Vec<String> = env
                    .get("LLMA_TRIAL_MODELS")
                    .map(|raw| raw.split(',').map(str::trim).filter(|m| !m.is_empty()).map(str::to_owned).collect())
                    .unwrap_or_else(|| vec![system.model.clone()]);
                TrialModels { provider: Some(system.provider), models }
            }
        };
        Ok(Self { gateway, system, trial_models, timeout: env.seconds("LLMA_LLM_TIMEOUT_SECS", 1..=3600, 120)? })
    }
}

fn system_llm(env: &Env) -> Result<Option<SystemLlm>, ConfigError> {
    let Some(raw) = env.get("LLMA_SYSTEM_LLM_PROVIDER") else {
        return Ok(None);
    };
    let provider = Provider::parse(&raw).map_err(|e| error("LLMA_SYSTEM_LLM_PROVIDER", e.to_string()))?;
    let api_key = env
        .get("LLMA_SYSTEM_LLM_API_KEY")
        .ok_or_else(|| error("LLMA_SYSTEM_LLM_API_KEY", "required when LLMA_SYSTEM_LLM_PROVIDER is set"))?;
    let model = env
        .get("LLMA_SYSTEM_LLM_MODEL")
        .or_else(|| domain::models::default_model(provider).map(str::to_owned))
        .ok_or_else(|| error("LLMA_SYSTEM_LLM_MODEL", "required for this provider"))?;
    let azure_endpoint = env.get("LLMA_SYSTEM_LLM_AZURE_ENDPOINT");
    if provider == Provider::AzureOpenai && azure_endpoint.is_none() {
        return Err(error("LLMA_SYSTEM_LLM_AZURE_ENDPOINT", "required when the system LLM is azure_openai"));
    }
    let base_url = env.get("LLMA_SYSTEM_LLM_BASE_URL");
    if provider == Provider::OpenaiCompatible && base_url.is_none() {
        return Err(error("LLMA_SYSTEM_LLM_BASE_URL", "required when the system LLM is openai_compatible"));
    }
    Ok(Some(SystemLlm { provider, api_key: SecretString::from(api_key), model, azure_endpoint, base_url }))
}
