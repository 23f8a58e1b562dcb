//! Talking to LLM providers.

mod calls;
mod completion;
mod ports;
#[cfg(test)]
pub(crate) mod testing;
mod usage;

pub use calls::{LlmCallLog, LlmCallOutcome, LlmCallRecord, LlmPurpose};
pub use completion::{
    Completion, CompletionError, CompletionRequest, StructuredCompletion, TokenUsage, parse_completion,
};
pub use ports::{KeyCheck, ListedModel, LlmGateway, ModelListError};
pub use usage::{ChosenLlm, JudgeLlm, KEY_REJECTED_MESSAGE, LlmUse, LlmUsePorts, SystemLlm};

#[cfg(feature = "mocks")]
pub use calls::MockLlmCallLog;
#[cfg(feature = "mocks")]
pub use completion::MockStructuredCompletion;
#[cfg(feature = "mocks")]
pub use ports::MockLlmGateway;
