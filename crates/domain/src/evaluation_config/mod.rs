//! A project's evaluation settings: the active provider key and trial credits.

mod service;

use async_trait::async_trait;

pub use service::{EvaluationConfigService, EvaluationSettings, SetActiveKeyError};

use crate::{ProjectId, ProviderKeyId, RepositoryError};

/// The trial evaluations a project gets when nothing else is configured.
pub const DEFAULT_TRIAL_EVAL_LIMIT: i64 = 100;

/// A project's evaluation settings (defaults when the project never stored any).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EvaluationConfig {
    pub project: ProjectId,
    pub active_provider_key: Option<ProviderKeyId>,
    pub trial_eval_limit: i64,
    pub trial_evals_used: i64,
}

impl EvaluationConfig {
    /// The settings of a project that has none stored.
    pub fn default_for(project: ProjectId) -> Self {
        Self { project, active_provider_key: None, trial_eval_limit: DEFAULT_TRIAL_EVAL_LIMIT, trial_evals_used: 0 }
    }

    pub fn trial_evals_remaining(&self) -> i64 {
        (self.trial_eval_limit - self.trial_evals_used).max(0)
    }

    pub fn trial_limit_reached(&self) -> bool {
        self.trial_evals_remaining() == 0
    }
}

/// Storage of evaluation settings.
#[cfg_attr(feature = "mocks", mockall::automock)]
#[async_trait]
pub trait EvaluationConfigRepository: Send + Sync + 'static {
    /// The project's settings, or the defaults when none are stored.
    async fn get(&self, project: ProjectId) -> Result<EvaluationConfig, RepositoryError>;

    /// Makes `key` the project's active key (storing the settings row if there was none);
    /// false, and nothing changed, when the key is not a key of the project.
    async fn set_active_key(&self, project: ProjectId, key: ProviderKeyId) -> Result<bool, RepositoryError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remaining_credits_never_go_negative() {
        let mut config = EvaluationConfig::default_for(ProjectId(1));
        assert_eq!(config.trial_evals_remaining(), 100);
        config.trial_evals_used = 150;
        assert_eq!(config.trial_evals_remaining(), 0);
        assert!(config.trial_limit_reached());
    }
}
