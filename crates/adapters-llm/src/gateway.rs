//! `HttpLlmGateway`: the `LlmGateway` port over HTTP.

use async_trait::async_trait;
use domain::llm::{KeyCheck, ListedModel, LlmGateway, ModelListError};
use domain::provider_key::{AzureEndpoint, Provider, ProviderCredentials};
use reqwest::StatusCode;
use reqwest::header::HeaderMap;

use crate::config::LlmGatewayConfig;
use crate::http_client::{self, GatewayBuildError, Reply, TransportError};
use crate::key_check;
use crate::model_list::{self, ModelPage};
use crate::provider_api::{self, AddressError, Call};

/// Model lists are paginated by Anthropic and Gemini; a server that never stops handing
/// out page tokens is cut off here.
const MAX_MODEL_PAGES: usize = 10;

/// Checks keys and lists models with every provider over HTTP, with one shared client.
/// Cheap to share behind an `Arc<dyn LlmGateway>`.
#[derive(Debug, Clone)]
pub struct HttpLlmGateway {
    clients: http_client::Clients,
    config: LlmGatewayConfig,
}

impl HttpLlmGateway {
    /// Builds the gateway and its HTTP client (no redirects, timeouts from `config`).
    pub fn new(config: LlmGatewayConfig) -> Result<Self, GatewayBuildError> {
        let clients = http_client::Clients::build(&config)?;
        Ok(Self { clients, config })
    }

    /// The configuration the gateway was built with.
    pub fn config(&self) -> &LlmGatewayConfig {
        &self.config
    }

    async fn get(&self, provider: Provider, call: Call, headers: HeaderMap) -> Result<Reply, TransportError> {
        let query: Vec<(&str, &str)> = call.query.iter().map(|(name, value)| (*name, value.as_str())).collect();
        let client = self.clients.of(provider);
        http_client::get(client, call.url, headers, &query, self.config.max_body_bytes).await
    }

    /// An OpenAI-compatible endpoint without `/models`: a one-token completion with its
    /// first custom model proves the key.
    async fn check_by_completion(&self, credentials: &ProviderCredentials, headers: HeaderMap) -> KeyCheck {
        let provider = credentials.provider;
        let Some(model) = credentials.compatible.as_ref().and_then(|c| c.custom_models.first()) else {
            return key_check::no_model_to_check();
        };
        let call = match provider_api::completion_call(&self.config, credentials, model) {
            Ok(call) => call,
            Err(error) => return key_check::from_address(provider, error),
        };
        let body = serde_json::json!({
            "model": model,
            "messages": [{"role": "user", "content": "ping"}],
            "max_tokens": 1,
        });
        let client = self.clients.of(provider);
        let timeout = self.config.validation_timeout;
        match http_client::post_json(client, call.url, headers, &[], &body, timeout, self.config.max_body_bytes).await {
            Ok(reply) => key_check::from_endpoint_reply(&reply, &provider_api::secrets(credentials)),
            Err(error) => key_check::from_transport(provider, error),
        }
    }

    async fn check(&self, credentials: &ProviderCredentials) -> KeyCheck {
        let provider = credentials.provider;
        if let Some(azure) = &credentials.azure
            && let Err(refusal) = AzureEndpoint::parse(azure.endpoint.as_str(), self.config.allow_private_endpoints)
        {
            return key_check::endpoint_refused(refusal);
        }
        let addressed = provider_api::key_check_call(&self.config, credentials)
            .and_then(|call| Ok((call, provider_api::auth_headers(credentials)?)));
        let (call, headers) = match addressed {
            Ok(addressed) => addressed,
            Err(error) => return key_check::from_address(provider, error),
        };
        match self.get(provider, call, headers.clone()).await {
            Ok(reply) if provider == Provider::OpenaiCompatible && reply.status == StatusCode::NOT_FOUND => {
                tracing::info!("the endpoint has no model list; checking the key with a completion");
                self.check_by_completion(credentials, headers).await
            }
            Ok(reply) if provider == Provider::OpenaiCompatible => {
                tracing::info!(status = reply.status.as_u16(), "endpoint answered the key check");
                key_check::from_endpoint_reply(&reply, &provider_api::secrets(credentials))
            }
            Ok(reply) => {
                tracing::info!(status = reply.status.as_u16(), "provider answered the key check");
                key_check::from_reply(provider, &reply)
            }
            Err(error) => {
                tracing::warn!(error = error.describe(), "provider key check got no answer");
                key_check::from_transport(provider, error)
            }
        }
    }

    async fn list(&self, credentials: &ProviderCredentials) -> Result<Vec<ListedModel>, ListFailure> {
        let headers = provider_api::auth_headers(credentials)?;
        let first = provider_api::model_list_call(&self.config, credentials)?;
        let listed = self.list_pages(credentials.provider, first, &headers).await;
        match listed {
            // Resources that do not list deployments still list their models.
            Err(ListFailure::Status(StatusCode::NOT_FOUND, _)) if credentials.provider == Provider::AzureOpenai => {
                let fallback = provider_api::azure_models_call(&self.config, credentials)?;
                self.list_pages(credentials.provider, fallback, &headers).await
            }
            other => other,
        }
    }

    async fn list_pages(
        &self,
        provider: Provider,
        first: Call,
        headers: &HeaderMap,
    ) -> Result<Vec<ListedModel>, ListFailure> {
        let mut models = Vec::new();
        let mut call = first.clone();
        for _ in 0..MAX_MODEL_PAGES {
            let reply = self.get(provider, call, headers.clone()).await?;
            if !reply.status.is_success() {
                return Err(ListFailure::Status(reply.status, reply.body));
            }
            let page: ModelPage = model_list::parse_page(provider, &reply.body).map_err(|_| ListFailure::Shape)?;
            models.extend(page.models);
            let Some((name, value)) = page.next else {
                return Ok(models);
            };
            call = first.clone();
            call.query.retain(|(existing, _)| *existing != name);
            call.query.push((name, value));
        }
        tracing::warn!(pages = MAX_MODEL_PAGES, "model list cut off after the page limit");
        Ok(models)
    }
}

#[async_trait]
impl LlmGateway for HttpLlmGateway {
    #[tracing::instrument(skip_all, fields(provider = %credentials.provider))]
    async fn check_key(&self, credentials: &ProviderCredentials) -> KeyCheck {
        let check = self.check(credentials).await;
        tracing::info!(state = check.state.as_str(), "key checked");
        check
    }

    #[tracing::instrument(skip_all, fields(provider = %credentials.provider))]
    async fn list_models(&self, credentials: &ProviderCredentials) -> Result<Vec<ListedModel>, ModelListError> {
        let provider = credentials.provider;
        match self.list(credentials).await {
            Ok(models) => {
                tracing::debug!(count = models.len(), "models listed");
                Ok(models)
            }
            Err(failure) => {
                let error = failure.into_error(provider);
                tracing::warn!(%error, "could not list models");
                Err(error)
            }
        }
    }
}

/// Why a model list failed, before it is told to the domain.
#[derive(Debug)]
enum ListFailure {
    Address(AddressError),
    Transport(TransportError),
    Status(StatusCode, Vec<u8>),
    Shape,
}

impl ListFailure {
    fn into_error(self, provider: Provider) -> ModelListError {
        let name = provider.display_name();
        match self {
            ListFailure::Address(AddressError::KeyNotAHeader) => ModelListError::KeyRejected,
            ListFailure::Address(AddressError::PrivateAddress) => {
                ModelListError::Unavailable(format!("{name}: {}", TransportError::PrivateAddress.describe()))
            }
            ListFailure::Address(_) => ModelListError::Unavailable(format!("no usable endpoint for {name}")),
            ListFailure::Transport(error) => ModelListError::Unavailable(format!("{name}: {}", error.describe())),
            ListFailure::Status(status, body) if key_check::is_key_rejection(provider, status, &body) => {
                ModelListError::KeyRejected
            }
            ListFailure::Status(status, _) => {
                ModelListError::Unavailable(format!("{name} answered status {}", status.as_u16()))
            }
            ListFailure::Shape => ModelListError::Unavailable(format!("{name} answered with an unexpected body")),
        }
    }
}

impl From<AddressError> for ListFailure {
    fn from(error: AddressError) -> Self {
        ListFailure::Address(error)
    }
}

impl From<TransportError> for ListFailure {
    fn from(error: TransportError) -> Self {
        ListFailure::Transport(error)
    }
}
