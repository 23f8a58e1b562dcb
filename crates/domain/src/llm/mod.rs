//! Talking to LLM providers.

mod ports;

pub use ports::{KeyCheck, ListedModel, LlmGateway, ModelListError};

#[cfg(feature = "mocks")]
pub use ports::MockLlmGateway;
