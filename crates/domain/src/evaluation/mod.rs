//! Evaluations: LLM-as-a-judge definitions, the conditions that pick the generations they
//! judge, and their model configurations.

pub(crate) mod conditions;
mod error;
mod model;
mod ports;
mod service;
mod target;
mod writes;

pub use conditions::{
    Condition, ConditionInput, Conditions, MAX_CONDITIONS, MAX_PROPERTIES, PropertyFilter, PropertyFilterInput,
    PropertyOperator, RolloutPercentage,
};
pub use error::*;
pub use model::{
    AssignOutcome, DependentEvaluation, Evaluation, EvaluationChanges, EvaluationListFilter, EvaluationName,
    EvaluationState, EvaluationStatus, EvaluationType, JudgeStop, KeyAssignment, MaxRunsPerHour, ModelConfiguration,
    ModelConfigurationSpec, ModelName, NewEvaluation, OutputType, Prompt, SaveOutcome, StatusReason, TextError,
    TrialEvaluation,
};
pub use ports::{EvaluationRepository, EvaluationStatements, LockedEvaluation, StateUpdate};
pub use service::{
    AssignKeyCommand, AssignResult, DependentConfigs, EvaluationService, MAX_ASSIGNED_EVALUATIONS,
    TRIAL_EVALUATIONS_LIMIT,
};
pub use target::{
    EvaluationTarget, MAX_AGE_SECONDS, QUIET_PERIOD_SECONDS, Settling, TargetChange, TargetKind, WINDOW_SECONDS,
};
pub use writes::{EvaluationTransactions, EvaluationWrites};

#[cfg(feature = "mocks")]
pub use ports::{MockEvaluationRepository, MockEvaluationStatements};
#[cfg(feature = "mocks")]
pub use writes::MockEvaluationWrites;

/// A plain evaluation for other contexts' unit tests.
#[cfg(test)]
pub(crate) mod test_support {
    use chrono::{TimeZone, Utc};

    use super::{Conditions, Evaluation, EvaluationState, EvaluationType, ModelConfiguration, OutputType};
    use crate::provider_key::Provider;
    use crate::{EvaluationId, ModelConfigurationId, ProjectId, ProviderKeyId};

    pub(crate) fn evaluation() -> Evaluation {
        let at = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
        Evaluation {
            id: EvaluationId(uuid::Uuid::from_u128(0xE1)),
            project: ProjectId(1),
            name: "Politeness".into(),
            description: "Is the answer polite?".into(),
            state: EvaluationState::Active,
            evaluation_type: EvaluationType::LlmJudge,
            prompt: "Pass when the answer is polite.".into(),
            output_type: OutputType::BooleanWithNa,
            conditions: Conditions::default(),
            model_configuration: None,
            max_runs_per_hour: None,
            target: super::EvaluationTarget::Generation,
            status_reason_detail: None,
            rate_limited_since: None,
            created_by: None,
            created_at: at,
            updated_at: at,
            deleted: false,
        }
    }

    /// The evaluation in `project`, with this model configuration (or none).
    pub(crate) fn configured(
        project: ProjectId,
        configuration: Option<(Provider, &str, Option<ProviderKeyId>)>,
    ) -> Evaluation {
        Evaluation {
            project,
            model_configuration: configuration.map(|(provider, model, key)| ModelConfiguration {
                id: ModelConfigurationId(uuid::Uuid::from_u128(0xC0)),
                provider,
                model: model.into(),
                provider_key: key,
            }),
            ..evaluation()
        }
    }
}
