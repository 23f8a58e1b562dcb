//! Code evaluators (spec section 4.4): deterministic checks written as code, run behind
//! the [`CodeEvaluator`] port so the judge does not know the language; what the code sees
//! of a generation, and how its answer becomes a verdict.

mod input;
mod ports;
mod reads;
mod trial;
mod verdict;

pub use input::{CodeInput, CodeTarget, StoredTexts, code_input, code_input_taking_with, target_code_input};
pub use ports::{BatchRun, CodeBatch, CodeEvaluator, CodeFailure, CodeRun, CodeSyntaxError, CodeUnavailable};
pub use reads::CodeReads;
pub use trial::{CodeTrials, DEFAULT_SAMPLE_COUNT, MAX_SAMPLE_COUNT, TestCode, TestCodeError, TestedEvent};
pub use verdict::{CodeVerdictError, verdict_of_run};

#[cfg(feature = "mocks")]
pub use ports::MockCodeEvaluator;
