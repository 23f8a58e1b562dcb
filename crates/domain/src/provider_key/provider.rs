//! The LLM providers a key can belong to.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// An LLM provider family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Provider {
    Openai,
    Anthropic,
    Gemini,
    AzureOpenai,
    Fireworks,
    Openrouter,
    TogetherAi,
    /// Any server speaking OpenAI's chat-completions API at a base URL the key names.
    OpenaiCompatible,
}

/// A provider name that is neither a provider nor an accepted alias.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown provider `{0}`")]
pub struct UnknownProvider(pub String);

impl Provider {
    /// Every provider, in the order the API lists them.
    pub const ALL: [Provider; 8] = [
        Provider::Openai,
        Provider::Anthropic,
        Provider::Gemini,
        Provider::AzureOpenai,
        Provider::Fireworks,
        Provider::Openrouter,
        Provider::TogetherAi,
        Provider::OpenaiCompatible,
    ];

    /// The wire name (`azure_openai`).
    pub fn as_str(self) -> &'static str {
        match self {
            Provider::Openai => "openai",
            Provider::Anthropic => "anthropic",
            Provider::Gemini => "gemini",
            Provider::AzureOpenai => "azure_openai",
            Provider::Fireworks => "fireworks",
            Provider::Openrouter => "openrouter",
            Provider::TogetherAi => "together_ai",
            Provider::OpenaiCompatible => "openai_compatible",
        }
    }

    /// The name people know it by, for messages ("Could not connect to OpenAI").
    pub fn display_name(self) -> &'static str {
        match self {
            Provider::Openai => "OpenAI",
            Provider::Anthropic => "Anthropic",
            Provider::Gemini => "Gemini",
            Provider::AzureOpenai => "Azure OpenAI",
            Provider::Fireworks => "Fireworks",
            Provider::Openrouter => "OpenRouter",
            Provider::TogetherAi => "Together AI",
            Provider::OpenaiCompatible => "the OpenAI-compatible endpoint",
        }
    }

    /// The comma-separated wire names, for error messages.
    pub fn names() -> String {
        Self::ALL.iter().map(|p| p.as_str()).collect::<Vec<_>>().join(", ")
    }

    /// Parses a provider name: trimmed, case-insensitive, with the aliases `google`,
    /// `azure` and `together`.
    pub fn parse(raw: &str) -> Result<Self, UnknownProvider> {
        let name = raw.trim().to_ascii_lowercase();
        let provider = match name.as_str() {
            "openai" => Provider::Openai,
            "anthropic" => Provider::Anthropic,
            "gemini" | "google" => Provider::Gemini,
            "azure_openai" | "azure" => Provider::AzureOpenai,
            "fireworks" => Provider::Fireworks,
            "openrouter" => Provider::Openrouter,
            "together_ai" | "together" => Provider::TogetherAi,
            "openai_compatible" => Provider::OpenaiCompatible,
            _ => return Err(UnknownProvider(raw.to_owned())),
        };
        Ok(provider)
    }
}

impl FromStr for Provider {
    type Err = UnknownProvider;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl fmt::Display for Provider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_trims_lowercases_and_accepts_aliases() {
        assert_eq!(Provider::parse(" OpenAI ").unwrap(), Provider::Openai);
        assert_eq!(Provider::parse("google").unwrap(), Provider::Gemini);
        assert_eq!(Provider::parse("Azure").unwrap(), Provider::AzureOpenai);
        assert_eq!(Provider::parse("together").unwrap(), Provider::TogetherAi);
        for provider in Provider::ALL {
            assert_eq!(Provider::parse(provider.as_str()).unwrap(), provider);
        }
    }

    #[test]
    fn unknown_providers_are_refused_and_the_names_list_every_provider() {
        assert_eq!(Provider::parse("mistral").unwrap_err(), UnknownProvider("mistral".into()));
        assert_eq!(
            Provider::names(),
            "openai, anthropic, gemini, azure_openai, fireworks, openrouter, together_ai, openai_compatible"
        );
    }
}
