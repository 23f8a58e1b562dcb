//! Azure OpenAI: the OpenAI chat-completions body and answer, sent to the key's
//! endpoint with the deployment in the path and the key in `api-key`
//! (see `provider_api`).

use domain::llm::CompletionRequest;
use serde_json::Value;

use super::Answer;
use super::openai_compatible::{self, TokenLimitField};

/// The OpenAI body; Azure routes by deployment and ignores `model`.
pub(crate) fn body(request: &CompletionRequest) -> Value {
    openai_compatible::body(request, TokenLimitField::MaxCompletionTokens)
}

/// The answer sits where OpenAI puts it.
pub(crate) fn parse(body: &[u8]) -> Answer {
    openai_compatible::parse(body)
}
