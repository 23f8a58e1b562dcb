//! Where each provider lives and how long a call may take.

use std::time::Duration;

use domain::provider_key::Provider;
use url::Url;

/// The default timeout of one provider call (spec: key checks take at most 15 s).
pub const DEFAULT_VALIDATION_TIMEOUT: Duration = Duration::from_secs(15);

/// The default bound on a response body the gateway reads (large model lists fit).
pub const DEFAULT_MAX_BODY_BYTES: usize = 8 * 1024 * 1024;

/// Configuration of [`crate::HttpLlmGateway`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LlmGatewayConfig {
    /// The API base URL of each provider with a fixed host (Azure uses the key's endpoint).
    pub base_urls: BaseUrls,
    /// The whole-request timeout of one provider call, body included.
    pub validation_timeout: Duration,
    /// The most bytes read from one successful response; larger bodies are refused.
    pub max_body_bytes: usize,
    /// Whether an Azure key may name an endpoint outside Azure's hosts, or plain http, and an
    /// OpenAI-compatible endpoint may be inside the network (tests, private gateways); off,
    /// such a key is refused before any call or at connect time.
    pub allow_private_endpoints: bool,
}

impl Default for LlmGatewayConfig {
    fn default() -> Self {
        Self {
            base_urls: BaseUrls::default(),
            validation_timeout: DEFAULT_VALIDATION_TIMEOUT,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            allow_private_endpoints: false,
        }
    }
}

impl LlmGatewayConfig {
    /// The base URL of `provider`; `None` for Azure OpenAI, whose keys name their endpoint.
    pub fn base_url(&self, provider: Provider) -> Option<&Url> {
        self.base_urls.get(provider)
    }

    /// Replaces the base URL of `provider` (see [`BaseUrls::set`]).
    pub fn with_base_url(mut self, provider: Provider, url: Url) -> Result<Self, BaseUrlError> {
        self.base_urls.set(provider, url)?;
        Ok(self)
    }

    /// Lets Azure keys name endpoints outside Azure's hosts.
    pub fn allowing_private_endpoints(mut self, allow: bool) -> Self {
        self.allow_private_endpoints = allow;
        self
    }

    /// Replaces the timeout of one provider call.
    pub fn with_validation_timeout(mut self, timeout: Duration) -> Self {
        self.validation_timeout = timeout;
        self
    }
}

/// The API base URL of every provider with a fixed host, defaulting to the providers' own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BaseUrls {
    openai: Url,
    anthropic: Url,
    gemini: Url,
    openrouter: Url,
    fireworks: Url,
    together_ai: Url,
}

/// Why a base URL was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BaseUrlError {
    /// Azure OpenAI and OpenAI-compatible keys carry their own endpoint.
    #[error("this provider has no base URL: each key names its endpoint")]
    NotConfigurable,
    /// Only `http://` and `https://` are spoken.
    #[error("the base URL of {0} must use http:// or https://")]
    NotHttp(Provider),
    /// Paths are appended to the base URL, so it cannot carry more than a path.
    #[error("the base URL of {0} must not contain credentials, a query or a fragment")]
    NotABase(Provider),
}

impl Default for BaseUrls {
    fn default() -> Self {
        let parse = |raw: &str| Url::parse(raw).expect("default base URLs are valid");
        Self {
            openai: parse("https://api.openai.com/v1"),
            anthropic: parse("https://api.anthropic.com/v1"),
            gemini: parse("https://generativelanguage.googleapis.com/v1beta"),
            openrouter: parse("https://openrouter.ai/api/v1"),
            fireworks: parse("https://api.fireworks.ai/inference/v1"),
            together_ai: parse("https://api.together.xyz/v1"),
        }
    }
}

impl BaseUrls {
    /// The base URL of `provider`; `None` for Azure OpenAI.
    pub fn get(&self, provider: Provider) -> Option<&Url> {
        match provider {
            Provider::Openai => Some(&self.openai),
            Provider::Anthropic => Some(&self.anthropic),
            Provider::Gemini => Some(&self.gemini),
            Provider::Openrouter => Some(&self.openrouter),
            Provider::Fireworks => Some(&self.fireworks),
            Provider::TogetherAi => Some(&self.together_ai),
            Provider::AzureOpenai | Provider::OpenaiCompatible => None,
        }
    }

    /// Replaces the base URL of `provider`: `http(s)://host[:port][/path]`, nothing more.
    pub fn set(&mut self, provider: Provider, url: Url) -> Result<(), BaseUrlError> {
        if url.scheme() != "http" && url.scheme() != "https" {
            return Err(BaseUrlError::NotHttp(provider));
        }
        if !url.username().is_empty() || url.password().is_some() || url.query().is_some() || url.fragment().is_some() {
            return Err(BaseUrlError::NotABase(provider));
        }
        let slot = match provider {
            Provider::Openai => &mut self.openai,
            Provider::Anthropic => &mut self.anthropic,
            Provider::Gemini => &mut self.gemini,
            Provider::Openrouter => &mut self.openrouter,
            Provider::Fireworks => &mut self.fireworks,
            Provider::TogetherAi => &mut self.together_ai,
            Provider::AzureOpenai | Provider::OpenaiCompatible => return Err(BaseUrlError::NotConfigurable),
        };
        *slot = url;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_providers_own_hosts() {
        let config = LlmGatewayConfig::default();
        let base = |p| config.base_url(p).map(Url::as_str);
        assert_eq!(base(Provider::Openai), Some("https://api.openai.com/v1"));
        assert_eq!(base(Provider::Anthropic), Some("https://api.anthropic.com/v1"));
        assert_eq!(base(Provider::Gemini), Some("https://generativelanguage.googleapis.com/v1beta"));
        assert_eq!(base(Provider::Openrouter), Some("https://openrouter.ai/api/v1"));
        assert_eq!(base(Provider::Fireworks), Some("https://api.fireworks.ai/inference/v1"));
        assert_eq!(base(Provider::TogetherAi), Some("https://api.together.xyz/v1"));
        assert_eq!(base(Provider::AzureOpenai), None);
        assert_eq!(config.validation_timeout, Duration::from_secs(15));
    }

    #[test]
    fn overrides_replace_one_provider_only() {
        let local = Url::parse("http://127.0.0.1:9000/v1").unwrap();
        let config = LlmGatewayConfig::default().with_base_url(Provider::TogetherAi, local.clone()).unwrap();
        assert_eq!(config.base_url(Provider::TogetherAi), Some(&local));
        assert_eq!(config.base_url(Provider::Openai).map(Url::as_str), Some("https://api.openai.com/v1"));
    }

    #[test]
    fn base_urls_that_cannot_take_a_path_are_refused() {
        let mut urls = BaseUrls::default();
        let url = |raw: &str| Url::parse(raw).unwrap();
        assert_eq!(
            urls.set(Provider::AzureOpenai, url("https://x.openai.azure.com")),
            Err(BaseUrlError::NotConfigurable)
        );
        assert_eq!(urls.set(Provider::Openai, url("ftp://example.com")), Err(BaseUrlError::NotHttp(Provider::Openai)));
        assert_eq!(
            urls.set(Provider::Openai, url("https://example.com/v1?x=1")),
            Err(BaseUrlError::NotABase(Provider::Openai))
        );
        assert_eq!(
            urls.set(Provider::Openai, url("https://user:pw@example.com/v1")),
            Err(BaseUrlError::NotABase(Provider::Openai))
        );
    }
}
