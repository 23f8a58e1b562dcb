//! Talking to LLM providers.

mod calls;
mod completion;
mod port;
mod ports;
#[cfg(test)]
pub(crate) mod testing;
mod usage;

pub use calls::{LlmCallLog, LlmCallOutcome, LlmCallRecord, LlmPurpose};
pub use completion::{Completion, CompletionError, CompletionRequest, StructuredCompletion, TokenUsage};
pub use port::{Llm, LlmAnswer, LlmError, LlmRequest, PaidBy, Prompt, ask, conforms};
pub use ports::{KeyCheck, ListedModel, LlmGateway, ModelListError, TrialCredits};
pub use usage::{KEY_REJECTED_MESSAGE, LlmUse, LlmUsePorts, SystemLlm};

#[cfg(feature = "mocks")]
pub use calls::MockLlmCallLog;
#[cfg(feature = "mocks")]
pub use completion::MockStructuredCompletion;
#[cfg(feature = "mocks")]
pub use port::MockLlm;
#[cfg(feature = "mocks")]
pub use ports::{MockLlmGateway, MockTrialCredits};
