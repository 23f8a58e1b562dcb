//! The port code evaluators run behind.

use std::time::Duration;

use async_trait::async_trait;

use super::{CodeInput, CodeReads};

/// Code that does not compile, and where (1-based).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}, column {column}: {detail}")]
pub struct CodeSyntaxError {
    pub line: u32,
    pub column: u32,
    /// The compiler's own account of what it expected (data from the adapter, passed on
    /// as the provider's words are).
    pub detail: String,
}

/// A run that ended without an answer: an error in the code or a budget exceeded. The
/// message is the user's to read (it names no secret: the code sees only the event).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct CodeFailure(pub String);

/// The code could not be run at all (the server lacked a resource, e.g. a thread), or its
/// run ended without an answer (the interpreter's own failure): no fault of the code, so
/// nothing is blamed on it and the job is tried again, within its attempts.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the code evaluator could not run the code: {0}")]
pub struct CodeUnavailable(pub String);

/// What a run returned: `Some(bool)` for `true`/`false`, `None` for `null`; the printed
/// lines; how long it took.
#[derive(Debug, Clone, PartialEq)]
pub struct CodeRun {
    pub returned: Result<Option<bool>, String>,
    pub prints: Vec<String>,
    pub duration: Duration,
}

/// Many runs at once: each of `runs` is (an index into `sources`, an index into
/// `inputs`), so each code is compiled once and each event prepared once for the batch.
#[derive(Debug, Clone, Default)]
pub struct CodeBatch {
    pub sources: Vec<String>,
    pub inputs: Vec<CodeInput>,
    pub runs: Vec<(usize, usize)>,
}

/// How one run of a batch went: `None` when it was not run because an earlier run of the
/// same code in the batch failed (the code is deterministic: the evaluation stops at its
/// first error, so a runaway costs the batch its budget once).
pub type BatchRun = Option<Result<CodeRun, CodeFailure>>;

/// Compiles and runs evaluator code. Runs are bounded (operations, memory, time) by the
/// implementation; a run never blocks the caller's executor.
#[cfg_attr(feature = "mocks", mockall::automock)]
#[async_trait]
pub trait CodeEvaluator: Send + Sync + 'static {
    /// Whether `source` compiles.
    fn check(&self, source: &str) -> Result<(), CodeSyntaxError>;

    /// What `source` can see of an event (everything, for code that does not compile).
    fn reads(&self, source: &str) -> CodeReads;

    /// Runs `source` on one event: how the run went, or why it could not happen.
    async fn run(&self, source: &str, input: CodeInput) -> Result<Result<CodeRun, CodeFailure>, CodeUnavailable>;

    /// Runs a batch, in its order, one answer per run.
    async fn run_batch(&self, batch: CodeBatch) -> Result<Vec<BatchRun>, CodeUnavailable>;
}
