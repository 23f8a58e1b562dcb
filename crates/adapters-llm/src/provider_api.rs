//! Where each provider is called and how a key is presented to it.

use domain::provider_key::{Provider, ProviderCredentials};
use reqwest::header::{AUTHORIZATION, HeaderMap, HeaderName, HeaderValue};
use secrecy::ExposeSecret;
use url::Url;

use crate::config::LlmGatewayConfig;

/// The Anthropic API version the gateway speaks.
const ANTHROPIC_VERSION: &str = "2023-06-01";

/// The only Azure data-plane API version that lists deployments.
const AZURE_DEPLOYMENTS_API_VERSION: &str = "2023-03-15-preview";

/// The largest page Anthropic and Gemini serve when listing models.
const MODEL_PAGE_SIZE: &str = "1000";

/// One GET to make: URL and query; the key travels separately in headers.
#[derive(Debug, Clone)]
pub(crate) struct Call {
    pub url: Url,
    pub query: Vec<(&'static str, String)>,
}

/// Why a call could not even be addressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AddressError {
    /// An Azure key without an endpoint.
    MissingAzureEndpoint,
    /// An Azure endpoint that is not a base URL.
    BadAzureEndpoint,
    /// The key holds characters an HTTP header cannot carry (line breaks, controls).
    KeyNotAHeader,
    /// An OpenAI-compatible key without a usable base URL.
    MissingBaseUrl,
    /// An extra header an HTTP request cannot carry.
    HeaderNotAllowed,
    /// The endpoint is an address inside the network, which the operator does not allow.
    PrivateAddress,
}

/// The cheapest authenticated call that proves a key works.
pub(crate) fn key_check_call(
    config: &LlmGatewayConfig,
    credentials: &ProviderCredentials,
) -> Result<Call, AddressError> {
    let base = base_url(config, credentials)?;
    let call = match credentials.provider {
        // OpenRouter's /models needs no key and proves nothing.
        Provider::Openrouter => Call::plain(join(&base, &["key"])),
        Provider::AzureOpenai => Call {
            url: join(&base, &["openai", "models"]),
            query: vec![("api-version", azure_api_version(credentials))],
        },
        _ => Call::plain(join(&base, &["models"])),
    };
    Ok(call)
}

/// The first page of the key's model list.
pub(crate) fn model_list_call(
    config: &LlmGatewayConfig,
    credentials: &ProviderCredentials,
) -> Result<Call, AddressError> {
    let base = base_url(config, credentials)?;
    let models = join(&base, &["models"]);
    let call = match credentials.provider {
        Provider::Anthropic => Call { url: models, query: vec![("limit", MODEL_PAGE_SIZE.to_owned())] },
        Provider::Gemini => Call { url: models, query: vec![("pageSize", MODEL_PAGE_SIZE.to_owned())] },
        Provider::AzureOpenai => Call {
            url: join(&base, &["openai", "deployments"]),
            query: vec![("api-version", AZURE_DEPLOYMENTS_API_VERSION.to_owned())],
        },
        _ => Call::plain(models),
    };
    Ok(call)
}

/// Azure's model list, used when the resource does not list deployments.
pub(crate) fn azure_models_call(
    config: &LlmGatewayConfig,
    credentials: &ProviderCredentials,
) -> Result<Call, AddressError> {
    Ok(Call {
        url: join(&base_url(config, credentials)?, &["openai", "models"]),
        query: vec![("api-version", azure_api_version(credentials))],
    })
}

/// The structured-completion call of `model` (Azure: the deployment). The key is never
/// part of the URL.
pub(crate) fn completion_call(
    config: &LlmGatewayConfig,
    credentials: &ProviderCredentials,
    model: &str,
) -> Result<Call, AddressError> {
    let base = base_url(config, credentials)?;
    let call = match credentials.provider {
        Provider::Openai
        | Provider::Openrouter
        | Provider::Fireworks
        | Provider::TogetherAi
        | Provider::OpenaiCompatible => Call::plain(join(&base, &["chat", "completions"])),
        Provider::AzureOpenai => Call {
            url: join(&base, &["openai", "deployments", model, "chat", "completions"]),
            query: vec![("api-version", azure_api_version(credentials))],
        },
        Provider::Anthropic => Call::plain(join(&base, &["messages"])),
        Provider::Gemini => {
            // Model lists name Gemini models `models/<id>`; the path wants `<id>` once.
            let id = model.strip_prefix("models/").unwrap_or(model);
            Call::plain(join(&base, &["models", &format!("{id}:generateContent")]))
        }
    };
    Ok(call)
}

/// The headers that present the key, marked sensitive so no debug output shows them.
pub(crate) fn auth_headers(credentials: &ProviderCredentials) -> Result<HeaderMap, AddressError> {
    let key = credentials.api_key.expose_secret();
    let mut headers = HeaderMap::new();
    match credentials.provider {
        Provider::Openai | Provider::Openrouter | Provider::Fireworks | Provider::TogetherAi => {
            headers.insert(AUTHORIZATION, secret_value(&format!("Bearer {key}"))?);
        }
        Provider::OpenaiCompatible => {
            headers.insert(AUTHORIZATION, secret_value(&format!("Bearer {key}"))?);
            for (name, value) in credentials.compatible.iter().flat_map(|endpoint| endpoint.extra_headers.iter()) {
                let name = HeaderName::from_bytes(name.as_bytes()).map_err(|_| AddressError::HeaderNotAllowed)?;
                let value = secret_value(value.expose_secret()).map_err(|_| AddressError::HeaderNotAllowed)?;
                headers.insert(name, value);
            }
        }
        Provider::Anthropic => {
            headers.insert(HeaderName::from_static("x-api-key"), secret_value(key)?);
            headers.insert(HeaderName::from_static("anthropic-version"), HeaderValue::from_static(ANTHROPIC_VERSION));
        }
        // Never in the URL: URLs end up in logs and proxies.
        Provider::Gemini => {
            headers.insert(HeaderName::from_static("x-goog-api-key"), secret_value(key)?);
        }
        Provider::AzureOpenai => {
            headers.insert(HeaderName::from_static("api-key"), secret_value(key)?);
        }
    }
    Ok(headers)
}

/// The secrets a call carries (the key, extra headers' values), which no message may show.
pub(crate) fn secrets(credentials: &ProviderCredentials) -> Vec<&str> {
    let headers = credentials.compatible.iter().flat_map(|endpoint| endpoint.extra_headers.iter());
    std::iter::once(credentials.api_key.expose_secret())
        .chain(headers.map(|(_, value)| value.expose_secret()))
        .collect()
}

impl Call {
    fn plain(url: Url) -> Self {
        Self { url, query: Vec::new() }
    }
}

fn secret_value(raw: &str) -> Result<HeaderValue, AddressError> {
    let mut value = HeaderValue::from_str(raw).map_err(|_| AddressError::KeyNotAHeader)?;
    value.set_sensitive(true);
    Ok(value)
}

fn base_url(config: &LlmGatewayConfig, credentials: &ProviderCredentials) -> Result<Url, AddressError> {
    if let Some(base) = config.base_url(credentials.provider) {
        return Ok(base.clone());
    }
    if credentials.provider == Provider::OpenaiCompatible {
        let endpoint = credentials.compatible.as_ref().ok_or(AddressError::MissingBaseUrl)?;
        let url = Url::parse(endpoint.base_url.as_str()).map_err(|_| AddressError::MissingBaseUrl)?;
        if !net_guard::literal_allowed(&url, config.allow_private_endpoints) {
            return Err(AddressError::PrivateAddress);
        }
        return Ok(url);
    }
    let azure = credentials.azure.as_ref().ok_or(AddressError::MissingAzureEndpoint)?;
    let url = Url::parse(azure.endpoint.as_str()).map_err(|_| AddressError::BadAzureEndpoint)?;
    if url.cannot_be_a_base() || url.query().is_some() || url.fragment().is_some() {
        return Err(AddressError::BadAzureEndpoint);
    }
    Ok(url)
}

fn azure_api_version(credentials: &ProviderCredentials) -> String {
    credentials.azure.as_ref().map_or_else(
        || domain::provider_key::DEFAULT_AZURE_API_VERSION.to_owned(),
        |azure| azure.api_version.as_str().to_owned(),
    )
}

/// `base` with `segments` appended as path segments (percent-encoded).
fn join(base: &Url, segments: &[&str]) -> Url {
    let mut url = base.clone();
    url.path_segments_mut().expect("http(s) URLs are bases").pop_if_empty().extend(segments);
    url
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn join_appends_to_the_base_path_with_or_without_a_trailing_slash() {
        let with_path = Url::parse("https://api.openai.com/v1").unwrap();
        assert_eq!(join(&with_path, &["models"]).as_str(), "https://api.openai.com/v1/models");
        let with_slash = Url::parse("http://127.0.0.1:8080/").unwrap();
        assert_eq!(join(&with_slash, &["openai", "models"]).as_str(), "http://127.0.0.1:8080/openai/models");
    }

    #[test]
    fn completion_paths_escape_the_model_but_keep_gemini_s_method_suffix() {
        let config = LlmGatewayConfig::default();
        let credentials = |provider| ProviderCredentials::plain(provider, secrecy::SecretString::from("k"));
        let gemini = completion_call(&config, &credentials(Provider::Gemini), "models/gemini-2.5-flash").unwrap();
        assert_eq!(
            gemini.url.as_str(),
            "https://generativelanguage.googleapis.com/v1beta/models/gemini-2.5-flash:generateContent"
        );
        let odd = completion_call(&config, &credentials(Provider::Gemini), "a/../b?x").unwrap();
        assert_eq!(odd.url.path(), "/v1beta/models/a%2F..%2Fb%3Fx:generateContent");
        let openai = completion_call(&config, &credentials(Provider::Openai), "gpt-5-mini").unwrap();
        assert_eq!(openai.url.as_str(), "https://api.openai.com/v1/chat/completions");
    }
}
