//! adapters-llm: the HTTP implementation of the domain's `LlmGateway` port.
//!
//! One [`HttpLlmGateway`] speaks every provider's wire format for key checks and model
//! lists. It follows no redirects, bounds every call with a timeout and every body it
//! reads with a size limit, and sends a key only to its provider's configured host.

mod config;
mod gateway;
mod http_client;
mod key_check;
mod model_list;
mod provider_api;

pub use config::{BaseUrlError, BaseUrls, DEFAULT_MAX_BODY_BYTES, DEFAULT_VALIDATION_TIMEOUT, LlmGatewayConfig};
pub use gateway::HttpLlmGateway;
pub use http_client::GatewayBuildError;
