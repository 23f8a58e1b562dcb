//! An evaluation write (create, PUT or PATCH) as a command: each sent field already a
//! checked value; `None` means not sent. The adapter that received the request builds it
//! from the domain's value types (`EvaluationName::parse`, `Conditions::parse`, ...); the
//! service applies what depends on the mode (required fields, defaults) and on storage.

use super::{Conditions, EvaluationName, EvaluationType, MaxRunsPerHour, ModelConfigurationSpec, OutputType, Prompt};

#[derive(Debug, Clone, Default, PartialEq)]
pub struct EvaluationCommand {
    pub name: Option<EvaluationName>,
    pub description: Option<String>,
    pub enabled: Option<bool>,
    pub evaluation_type: Option<EvaluationType>,
    /// `evaluation_config.prompt`.
    pub prompt: Option<Prompt>,
    pub output_type: Option<OutputType>,
    pub conditions: Option<Conditions>,
    /// `Some(None)`: sent as `null` (no model configuration).
    pub model_configuration: Option<Option<ModelConfigurationSpec>>,
    /// `Some(None)`: sent as `null` (no cap).
    pub max_runs_per_hour: Option<Option<MaxRunsPerHour>>,
    /// `true` soft-deletes in an update (the reference's clients delete this way).
    pub deleted: Option<bool>,
}
