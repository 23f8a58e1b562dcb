//! Talking to LLM providers.

mod calls;
mod completion;
mod ports;

pub use calls::{LlmCallLog, LlmCallOutcome, LlmCallRecord, LlmPurpose};
pub use completion::{
    Completion, CompletionError, CompletionRequest, StructuredCompletion, TokenUsage, parse_completion,
};
pub use ports::{KeyCheck, ListedModel, LlmGateway, ModelListError};

#[cfg(feature = "mocks")]
pub use calls::MockLlmCallLog;
#[cfg(feature = "mocks")]
pub use completion::MockStructuredCompletion;
#[cfg(feature = "mocks")]
pub use ports::MockLlmGateway;
