//! What it takes to call a provider: the secret key and, for Azure, the endpoint and API
//! version. These are sealed together as one blob at rest.

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use url::Url;

use super::{CompatibleEndpoint, ExtraHeaders, Provider};
use crate::invalid::Rule;

/// The API version used for Azure OpenAI when none is given.
pub const DEFAULT_AZURE_API_VERSION: &str = "2024-10-21";

const AZURE_HOST_SUFFIXES: [&str; 3] = [".openai.azure.com", ".cognitiveservices.azure.com", ".services.ai.azure.com"];

/// Which input field a credential problem concerns (`attr` / `error_field`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CredentialField {
    ApiKey,
    AzureEndpoint,
    ApiVersion,
    /// An OpenAI-compatible endpoint's `base_url`.
    BaseUrl,
}

impl CredentialField {
    pub fn as_str(self) -> &'static str {
        match self {
            CredentialField::ApiKey => "api_key",
            CredentialField::AzureEndpoint => "azure_endpoint",
            CredentialField::ApiVersion => "api_version",
            CredentialField::BaseUrl => "base_url",
        }
    }
}

/// An Azure OpenAI resource endpoint: `https://` on an Azure OpenAI host, without a
/// trailing slash. Other hosts only when private endpoints are allowed by configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AzureEndpoint(String);

/// Why an Azure endpoint was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AzureEndpointError {
    #[error("no azure endpoint")]
    Missing,
    #[error("the azure endpoint is not a URL")]
    NotAUrl,
    #[error("the azure endpoint is not https")]
    NotHttps,
    #[error("the azure endpoint is not on an Azure OpenAI host")]
    NotAzureHost,
}

impl AzureEndpoint {
    /// Parses an endpoint; `allow_private` lifts the host and scheme rules (tests, private
    /// gateways).
    pub fn parse(raw: &str, allow_private: bool) -> Result<Self, AzureEndpointError> {
        let trimmed = raw.trim();
        if trimmed.is_empty() {
            return Err(AzureEndpointError::Missing);
        }
        let url = Url::parse(trimmed).map_err(|_| AzureEndpointError::NotAUrl)?;
        let host = url.host_str().ok_or(AzureEndpointError::NotAUrl)?.to_ascii_lowercase();
        if !url.username().is_empty() || url.password().is_some() {
            return Err(AzureEndpointError::NotAUrl);
        }
        if !allow_private {
            if url.scheme() != "https" {
                return Err(AzureEndpointError::NotHttps);
            }
            if !AZURE_HOST_SUFFIXES.iter().any(|suffix| host.ends_with(suffix)) {
                return Err(AzureEndpointError::NotAzureHost);
            }
        } else if url.scheme() != "https" && url.scheme() != "http" {
            return Err(AzureEndpointError::NotHttps);
        }
        Ok(Self(trimmed.trim_end_matches('/').to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// An Azure OpenAI API version such as `2024-10-21`: 1..=20 characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiVersion(String);

impl ApiVersion {
    /// Parses a version; empty means the default.
    pub const MAX_CHARS: usize = 20;

    pub fn parse(raw: Option<&str>) -> Result<Self, Rule> {
        let version = raw.map(str::trim).filter(|v| !v.is_empty()).unwrap_or(DEFAULT_AZURE_API_VERSION);
        if version.chars().count() > Self::MAX_CHARS {
            return Err(Rule::ApiVersionTooLong { max: Self::MAX_CHARS });
        }
        if !version.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.') {
            return Err(Rule::ApiVersionCharacters);
        }
        Ok(Self(version.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Where an Azure key is used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AzureTarget {
    pub endpoint: AzureEndpoint,
    pub api_version: ApiVersion,
}

/// Everything needed to call a provider. `Debug` never shows the key.
#[derive(Debug, Clone)]
pub struct ProviderCredentials {
    pub provider: Provider,
    pub api_key: SecretString,
    /// Present exactly for `azure_openai`.
    pub azure: Option<AzureTarget>,
    /// Present exactly for `openai_compatible`.
    pub compatible: Option<CompatibleEndpoint>,
}

/// The secret part of a provider key as sealed at rest: the key with where it may be sent
/// (the Azure fields, an OpenAI-compatible endpoint and its headers).
#[derive(Serialize, Deserialize)]
pub struct SecretConfig {
    pub api_key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub azure_endpoint: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extra_headers: Option<std::collections::BTreeMap<String, String>>,
}

impl ProviderCredentials {
    /// Credentials of a provider with a fixed host.
    pub fn plain(provider: Provider, api_key: SecretString) -> Self {
        Self { provider, api_key, azure: None, compatible: None }
    }

    /// The plaintext to seal.
    pub fn to_secret_config(&self) -> SecretString {
        let config = SecretConfig {
            api_key: self.api_key.expose_secret().to_owned(),
            azure_endpoint: self.azure.as_ref().map(|a| a.endpoint.as_str().to_owned()),
            api_version: self.azure.as_ref().map(|a| a.api_version.as_str().to_owned()),
            base_url: self.compatible.as_ref().map(|c| c.base_url.as_str().to_owned()),
            extra_headers: self.compatible.as_ref().map(|c| c.extra_headers.to_plain()).filter(|h| !h.is_empty()),
        };
        let json = serde_json::to_string(&config).expect("a secret config always serialises");
        SecretString::from(json)
    }

    /// Reads credentials back from an opened secret config. The stored endpoint was
    /// validated when written, so only its shape is re-checked here.
    pub fn from_secret_config(provider: Provider, plaintext: &SecretString) -> Option<Self> {
        let config: SecretConfig = serde_json::from_str(plaintext.expose_secret()).ok()?;
        let azure = match (provider, config.azure_endpoint) {
            (Provider::AzureOpenai, Some(endpoint)) => Some(AzureTarget {
                endpoint: AzureEndpoint::parse(&endpoint, true).ok()?,
                api_version: ApiVersion::parse(config.api_version.as_deref()).ok()?,
            }),
            (Provider::AzureOpenai, None) => return None,
            _ => None,
        };
        let compatible = match (provider, config.base_url) {
            (Provider::OpenaiCompatible, Some(base_url)) => Some(CompatibleEndpoint {
                base_url: super::BaseUrl::parse(&base_url, true).ok()?,
                extra_headers: ExtraHeaders::from_plain(config.extra_headers.unwrap_or_default()),
                custom_models: Vec::new(),
            }),
            (Provider::OpenaiCompatible, None) => return None,
            _ => None,
        };
        Some(Self { provider, api_key: SecretString::from(config.api_key), azure, compatible })
    }

    /// The masked form of the key shown in responses.
    pub fn masked_key(&self) -> String {
        mask_api_key(self.api_key.expose_secret())
    }
}

/// First 4 + `...` + last 4 characters for keys longer than 8 characters, else `****`.
pub fn mask_api_key(key: &str) -> String {
    let chars: Vec<char> = key.chars().collect();
    if chars.len() <= 8 {
        return "****".to_owned();
    }
    let head: String = chars[..4].iter().collect();
    let tail: String = chars[chars.len() - 4..].iter().collect();
    format!("{head}...{tail}")
}

/// The format check made before any network call: OpenAI keys start `sk-` (which covers
/// `sk-proj-`), Anthropic keys `sk-ant-`. Returns the rule `api_key` breaks.
pub fn check_key_format(provider: Provider, key: &str) -> Result<(), Rule> {
    let key = key.trim();
    if key.is_empty() {
        return Err(Rule::ApiKeyRequired);
    }
    match provider {
        Provider::Openai if !key.starts_with("sk-") => Err(Rule::KeyFormat(provider)),
        Provider::Anthropic if !key.starts_with("sk-ant-") => Err(Rule::KeyFormat(provider)),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mask_shows_first_and_last_four_of_long_keys() {
        assert_eq!(mask_api_key("sk-test-12345"), "sk-t...2345");
        assert_eq!(mask_api_key("123456789"), "1234...6789");
    }

    #[test]
    fn mask_hides_short_keys_entirely() {
        assert_eq!(mask_api_key("12345678"), "****");
        assert_eq!(mask_api_key(""), "****");
    }

    #[test]
    fn key_format_checks_the_provider_prefix() {
        assert!(check_key_format(Provider::Openai, "sk-proj-abc").is_ok());
        assert_eq!(check_key_format(Provider::Openai, "pk-abc"), Err(Rule::KeyFormat(Provider::Openai)));
        assert_eq!(check_key_format(Provider::Anthropic, "sk-abc"), Err(Rule::KeyFormat(Provider::Anthropic)));
        assert_eq!(check_key_format(Provider::Openai, "  "), Err(Rule::ApiKeyRequired));
        assert!(check_key_format(Provider::Gemini, "AIza-anything").is_ok());
    }

    #[test]
    fn azure_endpoint_must_be_https_on_an_azure_host() {
        assert!(AzureEndpoint::parse("https://x.openai.azure.com/", false).is_ok());
        assert!(AzureEndpoint::parse("https://x.cognitiveservices.azure.com", false).is_ok());
        assert!(AzureEndpoint::parse("https://x.services.ai.azure.com", false).is_ok());
        assert_eq!(AzureEndpoint::parse("http://x.openai.azure.com", false), Err(AzureEndpointError::NotHttps));
        assert_eq!(AzureEndpoint::parse("https://169.254.169.254", false), Err(AzureEndpointError::NotAzureHost));
        assert_eq!(
            AzureEndpoint::parse("https://evil.com/.openai.azure.com", false),
            Err(AzureEndpointError::NotAzureHost)
        );
        assert_eq!(AzureEndpoint::parse("  ", false), Err(AzureEndpointError::Missing));
    }

    #[test]
    fn private_endpoints_are_allowed_only_by_configuration() {
        assert!(AzureEndpoint::parse("http://127.0.0.1:9999", false).is_err());
        let endpoint = AzureEndpoint::parse("http://127.0.0.1:9999/", true).unwrap();
        assert_eq!(endpoint.as_str(), "http://127.0.0.1:9999");
    }

    #[test]
    fn api_version_defaults_and_is_bounded() {
        assert_eq!(ApiVersion::parse(None).unwrap().as_str(), DEFAULT_AZURE_API_VERSION);
        assert!(ApiVersion::parse(Some("2024-10-21-preview-too-long")).is_err());
    }

    #[test]
    fn secret_config_round_trips_and_debug_hides_the_key() {
        let credentials = ProviderCredentials {
            provider: Provider::AzureOpenai,
            api_key: SecretString::from("azure-secret-value"),
            azure: Some(AzureTarget {
                endpoint: AzureEndpoint::parse("https://a.openai.azure.com", false).unwrap(),
                api_version: ApiVersion::parse(None).unwrap(),
            }),
            compatible: None,
        };
        assert!(!format!("{credentials:?}").contains("azure-secret-value"));
        let back =
            ProviderCredentials::from_secret_config(Provider::AzureOpenai, &credentials.to_secret_config()).unwrap();
        assert_eq!(back.api_key.expose_secret(), "azure-secret-value");
        assert_eq!(back.azure, credentials.azure);
    }

    #[test]
    fn an_endpoint_and_its_headers_are_sealed_with_the_key() {
        let headers = vec![("X-Tenant".to_owned(), Some(SecretString::from("tenant-secret-42")))];
        let credentials = ProviderCredentials {
            compatible: Some(CompatibleEndpoint {
                base_url: super::super::BaseUrl::parse("https://gw.example.com/v1", false).unwrap(),
                extra_headers: ExtraHeaders::parse(headers).unwrap(),
                custom_models: Vec::new(),
            }),
            ..ProviderCredentials::plain(Provider::OpenaiCompatible, SecretString::from("local-key-1234"))
        };
        assert!(!format!("{credentials:?}").contains("tenant-secret-42"));
        let sealed = credentials.to_secret_config();
        let back = ProviderCredentials::from_secret_config(Provider::OpenaiCompatible, &sealed).unwrap();
        assert_eq!(back.compatible, credentials.compatible);
        let without_endpoint = SecretString::from(r#"{"api_key":"k"}"#);
        assert!(ProviderCredentials::from_secret_config(Provider::OpenaiCompatible, &without_endpoint).is_none());
    }
}
