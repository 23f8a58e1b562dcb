//! The one LLM port (DESIGN.md "LLM use"). A caller says why it asks, for which evaluation,
//! and what; the port chooses the model and who pays (the project's key, trial credits,
//! the operator's LLM), makes the call, records it in `llm_calls` and keeps the keys'
//! bookkeeping. The judge, the summary and reports know nothing else of LLMs.

use std::time::Instant;

use async_trait::async_trait;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::{CompletionError, LlmPurpose};
use crate::evaluation::Evaluation;
use crate::provider_key::Provider;
use crate::{ProjectId, ProviderKeyId, RepositoryError};

/// What the caller writes: the model is the port's choice.
#[derive(Debug, Clone, PartialEq)]
pub struct Prompt {
    pub system: String,
    pub user: String,
    /// A short name for the schema (`[A-Za-z0-9_-]`, as OpenAI's `json_schema.name` and
    /// Anthropic's tool name require).
    pub schema_name: String,
    /// A JSON Schema object (strict-mode compatible).
    pub schema: Value,
    pub max_output_tokens: u32,
}

/// One call asked of the port.
#[derive(Debug, Clone)]
pub struct LlmRequest {
    pub purpose: LlmPurpose,
    pub prompt: Prompt,
    /// The call, retries included, ends by then.
    pub deadline: Instant,
    /// Whether an answer has the shape the caller reads; one that does not is a
    /// `BadOutput` failure, recorded as such.
    pub accepts: fn(&Value) -> Result<(), String>,
}

/// Who paid for a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PaidBy {
    /// A key of the project.
    OwnKey(ProviderKeyId),
    /// The operator's LLM on the project's trial credits (the judge only).
    Trial,
    /// The operator's LLM as the last resort (summaries and reports).
    Operator,
}

/// A successful call: the answer, who paid, and what answered.
#[derive(Debug, Clone, PartialEq)]
pub struct LlmAnswer {
    pub value: Value,
    pub paid_by: PaidBy,
    pub provider: Provider,
    pub model: String,
}

/// Why no answer came.
#[derive(Debug, thiserror::Error)]
pub enum LlmError {
    /// Summaries and reports: no usable key and no operator LLM.
    #[error("no LLM is available to the project")]
    NoLlm,
    /// The judge: the evaluation's configured key is marked invalid.
    #[error("provider key {0} is invalid")]
    KeyInvalid(ProviderKeyId),
    /// The judge: no key, and the model is not a trial model (or there is no system LLM).
    #[error("no provider key, and the model is not available on trial credits")]
    ModelNotAllowed,
    /// The judge: the project's trial credits are used up.
    #[error("the project's trial evaluations are used up")]
    TrialsUsedUp,
    /// The call was made and failed (a trial credit it took is given back).
    #[error("{error}")]
    Failed { error: CompletionError, paid_by: PaidBy, model: String },
    #[error(transparent)]
    Storage(#[from] RepositoryError),
}

/// LLM calls for every purpose.
#[cfg_attr(feature = "mocks", mockall::automock)]
#[async_trait]
pub trait Llm: Send + Sync + 'static {
    /// One structured call on the evaluation's behalf (in its project).
    async fn run(&self, evaluation: &Evaluation, request: LlmRequest) -> Result<LlmAnswer, LlmError>;

    /// Whether the judge would pay for this evaluation's judgements with trial credits
    /// (spec section 9's order), without taking one.
    async fn judges_on_trial_credits(&self, evaluation: &Evaluation) -> Result<bool, RepositoryError>;

    /// Gives back what an answer cost the project when its result could not be kept
    /// (a trial credit; nothing for the other payers).
    async fn refund(&self, project: ProjectId, paid_by: PaidBy) -> Result<(), RepositoryError>;
}

/// One call whose answer is read as `T`.
pub async fn ask<T: DeserializeOwned>(
    llm: &dyn Llm,
    purpose: LlmPurpose,
    evaluation: &Evaluation,
    prompt: Prompt,
    deadline: Instant,
) -> Result<(T, LlmAnswer), LlmError> {
    let request = LlmRequest { purpose, prompt, deadline, accepts: conforms::<T> };
    let answer = llm.run(evaluation, request).await?;
    match T::deserialize(&answer.value) {
        Ok(value) => Ok((value, answer)),
        // Only an implementation that skipped `accepts` gets here.
        Err(error) => {
            llm.refund(evaluation.project, answer.paid_by).await?;
            Err(LlmError::Failed {
                error: CompletionError::BadOutput(error.to_string()),
                paid_by: answer.paid_by,
                model: answer.model,
            })
        }
    }
}

/// Whether `value` reads as a `T`.
pub fn conforms<T: DeserializeOwned>(value: &Value) -> Result<(), String> {
    T::deserialize(value).map(drop).map_err(|error| error.to_string())
}
