//! Evaluations: LLM-as-a-judge definitions, the conditions that pick the generations they
//! judge, and their model configurations.

mod conditions;
mod error;
mod model;
mod ports;
mod service;

pub use conditions::{
    Condition, ConditionError, ConditionInput, Conditions, MAX_CONDITIONS, MAX_PROPERTIES, PropertyFilter,
    PropertyFilterInput, PropertyOperator, RolloutPercentage,
};
pub use error::*;
pub use model::{
    AssignOutcome, DependentEvaluation, Evaluation, EvaluationChanges, EvaluationName, EvaluationState,
    EvaluationStatus, EvaluationType, JudgeStop, KeyAssignment, MaxRunsPerHour, ModelConfiguration,
    ModelConfigurationSpec, ModelName, NewEvaluation, OutputType, Prompt, SaveOutcome, StatusReason, TextError,
    TrialEvaluation,
};
pub use ports::EvaluationRepository;
pub use service::{
    AssignKeyRequest, AssignResult, DependentConfigs, EvaluationInput, EvaluationService, JudgeConfigInput,
    MAX_ASSIGNED_EVALUATIONS, ModelConfigurationInput, TRIAL_EVALUATIONS_LIMIT,
};

#[cfg(feature = "mocks")]
pub use ports::MockEvaluationRepository;
