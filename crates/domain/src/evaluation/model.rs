//! The evaluation entity (an LLM-as-a-judge definition) and its value types.

use chrono::{DateTime, Utc};
use serde_json::Value;
use uuid::Uuid;

use super::{Conditions, EvaluationTarget, TargetChange};
use crate::provider_key::{Provider, UserSummary};
use crate::{EvaluationId, ModelConfigurationId, ProjectId, ProviderKeyId, UserId};

pub use crate::invalid::TextError;

fn bounded(raw: &str, max: usize) -> Result<String, TextError> {
    let text = raw.trim();
    match text.chars().count() {
        0 => Err(TextError::Blank),
        n if n > max => Err(TextError::TooLong { max }),
        _ => Ok(text.to_owned()),
    }
}

/// An evaluation's name: trimmed, 1..=400 characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EvaluationName(String);

impl EvaluationName {
    pub const MAX_CHARS: usize = 400;

    pub fn parse(raw: &str) -> Result<Self, TextError> {
        bounded(raw, Self::MAX_CHARS).map(Self)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The judge's instructions: not blank, at most 50 000 characters; kept as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prompt(String);

impl Prompt {
    pub const MAX_CHARS: usize = 50_000;

    pub fn parse(raw: &str) -> Result<Self, TextError> {
        bounded(raw, Self::MAX_CHARS)?;
        Ok(Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The hourly cap on an evaluation's judgements: 1..=1 000 000.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MaxRunsPerHour(u32);

impl MaxRunsPerHour {
    pub const MAX: i64 = 1_000_000;

    pub fn parse(raw: i64) -> Option<Self> {
        u32::try_from(raw).ok().filter(|n| (1..=Self::MAX).contains(&i64::from(*n))).map(Self)
    }

    pub fn get(self) -> u32 {
        self.0
    }
}

/// A model name of a model configuration: trimmed, 1..=200 characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelName(String);

impl ModelName {
    pub const MAX_CHARS: usize = 200;

    pub fn parse(raw: &str) -> Result<Self, TextError> {
        bounded(raw, Self::MAX_CHARS).map(Self)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

macro_rules! wire_enum {
    ($(#[$doc:meta])* $name:ident { $($(#[$vdoc:meta])* $variant:ident => $wire:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $($(#[$vdoc])* $variant),+
        }

        impl $name {
            /// Every value, in the order messages list them.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The wire name.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $wire),+
                }
            }

            /// Parses a wire name (exact spelling).
            pub fn parse(raw: &str) -> Option<Self> {
                match raw {
                    $($wire => Some($name::$variant),)+
                    _ => None,
                }
            }

            /// The wire names, comma-separated, for messages.
            pub fn names() -> String {
                Self::ALL.iter().map(|v| v.as_str()).collect::<Vec<_>>().join(", ")
            }
        }
    };
}

wire_enum!(
    /// What kind of evaluation it is.
    EvaluationType {
        /// An LLM judges each generation against the prompt.
        LlmJudge => "llm_judge",
        /// Code (Hog) returns the verdict; no LLM.
        Hog => "hog",
    }
);

wire_enum!(
    /// What the judge may answer.
    OutputType {
        /// Pass or fail.
        Boolean => "boolean",
        /// Pass, fail, or not applicable.
        BooleanWithNa => "boolean_with_na",
    }
);

wire_enum!(
    /// An evaluation's run status as the API shows it.
    EvaluationStatus {
        Active => "active",
        Paused => "paused",
        Error => "error",
    }
);

wire_enum!(
    /// Why an evaluation stopped by itself.
    StatusReason {
        /// Its model configuration's key was deleted without a replacement.
        ProviderKeyDeleted => "provider_key_deleted",
        /// The provider refused the key.
        ProviderKeyInvalid => "provider_key_invalid",
        /// It ran on trial credits and they are used up.
        TrialLimitReached => "trial_limit_reached",
        /// Without a key it names a model the trial credits do not cover.
        ModelNotAllowed => "model_not_allowed",
        /// The provider says the key's account is out of quota or credit.
        QuotaExceeded => "quota_exceeded",
        /// The provider kept refusing for rate limits through the retries of a whole hour.
        RateLimited => "rate_limited",
        /// The provider does not know the configured model.
        ModelNotFound => "model_not_found",
        /// Its code failed or exceeded a budget (the code is deterministic: it would again).
        HogError => "hog_error",
    }
);

/// `enabled`, `status` and `status_reason` together, so that only the allowed
/// combinations exist: active ⇔ enabled without a reason; paused ⇔ disabled without a
/// reason; error ⇒ disabled with a reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EvaluationState {
    Active,
    Paused,
    Error(StatusReason),
}

impl EvaluationState {
    /// The state a client's `enabled` flag gives a new evaluation.
    pub fn from_enabled(enabled: bool) -> Self {
        if enabled { Self::Active } else { Self::Paused }
    }

    /// The stored columns, if they form an allowed combination.
    pub fn from_parts(enabled: bool, status: EvaluationStatus, reason: Option<StatusReason>) -> Option<Self> {
        match (enabled, status, reason) {
            (true, EvaluationStatus::Active, None) => Some(Self::Active),
            (false, EvaluationStatus::Paused, None) => Some(Self::Paused),
            (false, EvaluationStatus::Error, Some(reason)) => Some(Self::Error(reason)),
            _ => None,
        }
    }

    pub fn enabled(self) -> bool {
        self == Self::Active
    }

    pub fn status(self) -> EvaluationStatus {
        match self {
            Self::Active => EvaluationStatus::Active,
            Self::Paused => EvaluationStatus::Paused,
            Self::Error(_) => EvaluationStatus::Error,
        }
    }

    pub fn reason(self) -> Option<StatusReason> {
        match self {
            Self::Error(reason) => Some(reason),
            _ => None,
        }
    }

    /// The state after a client write that set `enabled` (or left it out): enabling
    /// clears any error; disabling an active evaluation pauses it; a disabled evaluation
    /// keeps its state (and its error reason) when told to stay disabled.
    pub fn after_write(self, enabled: Option<bool>) -> Self {
        match (enabled, self) {
            (Some(true), _) => Self::Active,
            (Some(false), Self::Active) => Self::Paused,
            (_, state) => state,
        }
    }

    /// The state after a key was assigned: an error becomes paused (the cause is fixed);
    /// with `enable`, the evaluation becomes active.
    pub fn after_key_assigned(self, enable: bool) -> Self {
        match (enable, self) {
            (true, _) => Self::Active,
            (false, Self::Error(_)) => Self::Paused,
            (false, state) => state,
        }
    }
}

/// Which provider, model and key an evaluation judges with (no key = the project's
/// active key, else trial credits).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelConfiguration {
    pub id: ModelConfigurationId,
    pub provider: Provider,
    pub model: String,
    pub provider_key: Option<ProviderKeyId>,
}

/// A validated model configuration to store. The key's project and provider are checked
/// by the repository inside the write's transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelConfigurationSpec {
    pub provider: Provider,
    pub model: ModelName,
    pub provider_key: Option<ProviderKeyId>,
}

impl ModelConfigurationSpec {
    /// A team's own endpoint has no trial credits to fall back on: it names its key.
    pub fn check_key_named(&self) -> Result<(), crate::invalid::FieldError> {
        if self.provider == Provider::OpenaiCompatible && self.provider_key.is_none() {
            return Err(crate::invalid::FieldError::new(
                "model_configuration.provider_key_id",
                crate::invalid::Rule::Required,
            ));
        }
        Ok(())
    }
}

/// A stored evaluation as read back.
#[derive(Debug, Clone, PartialEq)]
pub struct Evaluation {
    pub id: EvaluationId,
    pub project: ProjectId,
    pub name: String,
    pub description: String,
    pub state: EvaluationState,
    pub evaluation_type: EvaluationType,
    pub prompt: String,
    pub output_type: OutputType,
    pub conditions: Conditions,
    pub model_configuration: Option<ModelConfiguration>,
    /// The hourly cap on judgements (spec section 9); `None`: no cap.
    pub max_runs_per_hour: Option<MaxRunsPerHour>,
    /// What one judgement covers (spec section 4.1).
    pub target: EvaluationTarget,
    /// The provider's own words behind the state's reason, when it gave some.
    pub status_reason_detail: Option<String>,
    /// Since when every judge job of it that ended ended rate-limited (no verdict since).
    pub rate_limited_since: Option<DateTime<Utc>>,
    pub created_by: Option<UserSummary>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub deleted: bool,
}

impl Evaluation {
    /// Whether the judge runner should judge this generation: the evaluation is live and
    /// one of its conditions matches the generation's properties and event uuid.
    pub fn applies_to(&self, properties: &serde_json::Map<String, Value>, event: Uuid) -> bool {
        !self.deleted && self.state.enabled() && self.conditions.matches_map(properties, event)
    }
}

/// Which evaluations a list returns (spec section 4: `?search=`, `?enabled=`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EvaluationListFilter {
    /// Contained in the name or the description, ignoring case.
    pub search: Option<String>,
    pub enabled: Option<bool>,
}

/// A validated evaluation ready to insert (with its model configuration, if any).
#[derive(Debug, Clone, PartialEq)]
pub struct NewEvaluation {
    pub id: EvaluationId,
    pub project: ProjectId,
    pub name: EvaluationName,
    pub description: String,
    pub state: EvaluationState,
    pub evaluation_type: EvaluationType,
    pub prompt: Prompt,
    pub output_type: OutputType,
    pub conditions: Conditions,
    pub model_configuration: Option<ModelConfigurationSpec>,
    pub max_runs_per_hour: Option<MaxRunsPerHour>,
    pub target: EvaluationTarget,
    pub created_by: UserId,
}

/// An evaluation write (create, PUT or PATCH) as a command: each sent field a checked
/// value, `None` when not sent. The adapter that received the request builds it from the
/// domain's value types; the service applies what depends on the mode (required fields and
/// defaults on create) and an update is applied in one transaction, leaving a `None` field
/// as it is.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EvaluationChanges {
    pub name: Option<EvaluationName>,
    pub description: Option<String>,
    /// The client's `enabled`; the new state follows [`EvaluationState::after_write`],
    /// applied to the row as locked by the write.
    pub enabled: Option<bool>,
    pub evaluation_type: Option<EvaluationType>,
    pub prompt: Option<Prompt>,
    pub output_type: Option<OutputType>,
    pub conditions: Option<Conditions>,
    /// `Some(None)` removes the model configuration; `Some(Some(_))` replaces it.
    pub model_configuration: Option<Option<ModelConfigurationSpec>>,
    /// `Some(None)` removes the cap.
    pub max_runs_per_hour: Option<Option<MaxRunsPerHour>>,
    /// `target` and/or `target_config`, applied to the stored target by
    /// [`TargetChange::applied_to`].
    pub target: Option<TargetChange>,
    /// Soft-delete it in the same write.
    pub delete: bool,
}

/// What an insert or update did, or why it did nothing. Decided inside its transaction.
#[derive(Debug, Clone, PartialEq)]
pub enum SaveOutcome {
    Saved(Box<Evaluation>),
    /// No such (non-deleted) evaluation in this project.
    NotFound,
    /// The model configuration names a key that is not in this project.
    KeyNotFound,
    /// The model configuration's key belongs to another provider.
    KeyProviderMismatch {
        key_provider: Provider,
    },
}

/// Which enabled evaluations the judge runner stops (puts in `error` with a reason).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JudgeStop {
    /// One evaluation (e.g. `model_not_allowed`).
    One(EvaluationId),
    /// Every evaluation whose model configuration uses the key (`provider_key_invalid`).
    UsingKey(ProviderKeyId),
    /// Every evaluation without a key of its own (`trial_limit_reached`).
    WithoutKey,
}

/// A non-deleted evaluation whose model configuration uses a given key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DependentEvaluation {
    pub id: EvaluationId,
    pub name: String,
    pub model_configuration: ModelConfigurationId,
}

/// A non-deleted evaluation that runs on trial credits for a provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrialEvaluation {
    pub id: EvaluationId,
    pub name: String,
    pub enabled: bool,
}

/// Pointing evaluations at a key, in one transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyAssignment {
    /// The evaluations to update; ids of other projects and deleted ones are ignored.
    pub evaluations: Vec<EvaluationId>,
    /// Also enable them (state active).
    pub enable: bool,
    /// Give evaluations without a model configuration one with the key's provider, this
    /// model and the key. `None`: leave them without.
    pub model_for_unconfigured: Option<ModelName>,
    /// Who assigned it (recorded in the key's audit trail with the change).
    pub actor: Option<crate::UserId>,
}

/// What an assignment did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AssignOutcome {
    Assigned {
        /// Model configurations now pointing at the key (updated or created).
        configs_updated: u64,
        /// Evaluations that were disabled and are now enabled.
        evals_enabled: u64,
    },
    /// No such key in this project.
    KeyNotFound,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_trimmed_and_bounded_to_400_characters() {
        assert_eq!(EvaluationName::parse("  judge ").unwrap().as_str(), "judge");
        assert_eq!(EvaluationName::parse(" "), Err(TextError::Blank));
        assert!(EvaluationName::parse(&"é".repeat(400)).is_ok());
        assert_eq!(EvaluationName::parse(&"x".repeat(401)), Err(TextError::TooLong { max: 400 }));
    }

    #[test]
    fn prompts_must_not_be_blank_and_keep_their_text() {
        assert_eq!(Prompt::parse(" \n\t"), Err(TextError::Blank));
        assert_eq!(Prompt::parse(" Is it polite?\n").unwrap().as_str(), " Is it polite?\n");
    }

    #[test]
    fn only_the_allowed_state_combinations_exist() {
        use EvaluationStatus::*;
        let reason = Some(StatusReason::ProviderKeyDeleted);
        assert_eq!(EvaluationState::from_parts(true, Active, None), Some(EvaluationState::Active));
        assert_eq!(EvaluationState::from_parts(false, Paused, None), Some(EvaluationState::Paused));
        assert_eq!(
            EvaluationState::from_parts(false, Error, reason),
            Some(EvaluationState::Error(StatusReason::ProviderKeyDeleted))
        );
        for (enabled, status, reason) in [
            (false, Active, None),
            (true, Active, reason),
            (true, Paused, None),
            (false, Paused, reason),
            (true, Error, reason),
            (false, Error, None),
        ] {
            assert_eq!(EvaluationState::from_parts(enabled, status, reason), None, "{enabled} {status:?} {reason:?}");
        }
    }

    #[test]
    fn state_parts_agree_with_the_invariants() {
        for state in
            [EvaluationState::Active, EvaluationState::Paused, EvaluationState::Error(StatusReason::ModelNotAllowed)]
        {
            assert_eq!(EvaluationState::from_parts(state.enabled(), state.status(), state.reason()), Some(state));
        }
    }

    #[test]
    fn writes_derive_the_state_from_enabled() {
        let error = EvaluationState::Error(StatusReason::ProviderKeyInvalid);
        assert_eq!(error.after_write(Some(true)), EvaluationState::Active, "enabling clears the error");
        assert_eq!(error.after_write(Some(false)), error, "staying disabled keeps the reason");
        assert_eq!(error.after_write(None), error);
        assert_eq!(EvaluationState::Active.after_write(Some(false)), EvaluationState::Paused);
        assert_eq!(EvaluationState::Active.after_write(None), EvaluationState::Active);
        assert_eq!(EvaluationState::Paused.after_write(Some(true)), EvaluationState::Active);
        assert_eq!(EvaluationState::from_enabled(false), EvaluationState::Paused);
        assert_eq!(EvaluationState::from_enabled(true), EvaluationState::Active);
    }

    #[test]
    fn assigning_a_key_pauses_errors_and_enables_on_request() {
        let error = EvaluationState::Error(StatusReason::ProviderKeyDeleted);
        assert_eq!(error.after_key_assigned(false), EvaluationState::Paused);
        assert_eq!(error.after_key_assigned(true), EvaluationState::Active);
        assert_eq!(EvaluationState::Paused.after_key_assigned(false), EvaluationState::Paused);
        assert_eq!(EvaluationState::Active.after_key_assigned(false), EvaluationState::Active);
    }

    #[test]
    fn wire_names_round_trip() {
        for reason in StatusReason::ALL {
            assert_eq!(StatusReason::parse(reason.as_str()), Some(*reason));
        }
        assert_eq!(OutputType::names(), "boolean, boolean_with_na");
        assert_eq!(EvaluationType::parse("llm_judge"), Some(EvaluationType::LlmJudge));
        assert_eq!(EvaluationStatus::parse("Active"), None);
    }
}
