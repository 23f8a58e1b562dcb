//! The curated judge-capable models and the operator's trial models.

use crate::provider_key::Provider;

/// Judge-capable models we list first (and alone when the provider cannot be reached).
pub fn curated_models(provider: Provider) -> &'static [&'static str] {
    match provider {
        Provider::Openai => {
            &["gpt-5-mini", "gpt-5", "gpt-5-nano", "gpt-4.1", "gpt-4.1-mini", "gpt-4o", "gpt-4o-mini", "o4-mini"]
        }
        Provider::Anthropic => &["claude-haiku-4-5", "claude-sonnet-4-5", "claude-opus-4-1"],
        Provider::Gemini => &["gemini-2.5-flash", "gemini-2.5-pro", "gemini-2.5-flash-lite"],
        _ => &[],
    }
}

/// The model used with a provider's key when nothing names one (spec section 11). Azure
/// and OpenAI-compatible endpoints have none: their models are what the endpoint serves.
pub fn default_model(provider: Provider) -> Option<&'static str> {
    match provider {
        Provider::Openai => Some("gpt-5-mini"),
        Provider::Anthropic => Some("claude-haiku-4-5"),
        Provider::Gemini => Some("gemini-2.5-flash"),
        Provider::Openrouter => Some("openai/gpt-5-mini"),
        Provider::TogetherAi => Some("meta-llama/Llama-3.3-70B-Instruct-Turbo"),
        Provider::Fireworks => Some("accounts/fireworks/models/llama-v3p3-70b-instruct"),
        Provider::AzureOpenai | Provider::OpenaiCompatible => None,
    }
}

/// The models the operator's system LLM offers on trial credits.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrialModels {
    pub provider: Option<Provider>,
    pub models: Vec<String>,
}

impl TrialModels {
    /// Whether `model` of `provider` runs on trial credits.
    pub fn includes(&self, provider: Provider, model: &str) -> bool {
        self.provider == Some(provider) && self.models.iter().any(|m| m == model)
    }

    /// The trial models of `provider` (empty for other providers).
    pub fn for_provider(&self, provider: Provider) -> &[String] {
        if self.provider == Some(provider) { &self.models } else { &[] }
    }
}
