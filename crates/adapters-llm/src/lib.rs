//! adapters-llm: the HTTP implementations of the domain's `LlmGateway` and
//! `StructuredCompletion` ports.
//!
//! One [`HttpLlmGateway`] speaks every provider's wire format for key checks and model
//! lists; one [`HttpStructuredCompletion`] makes structured-output calls. Both follow no
//! redirects, bound every call with a timeout and every body they read with a size limit,
//! and send a key only to its provider's configured host (or the endpoint it was saved with,
//! whose address is checked when connecting).

mod completion;
mod config;
mod gateway;
mod http_client;
mod key_check;
mod model_list;
mod price_table;
mod provider_api;
mod provider_message;

pub use completion::{HttpStructuredCompletion, RetryPolicy};
pub use config::{BaseUrlError, BaseUrls, DEFAULT_MAX_BODY_BYTES, DEFAULT_VALIDATION_TIMEOUT, LlmGatewayConfig};
pub use gateway::HttpLlmGateway;
pub use http_client::GatewayBuildError;
pub use price_table::PinnedPriceTable;
