//! `LlmUse` over mocked ports, as the LLM port's own tests build it.

use std::sync::Arc;

use super::{
    LlmUse, LlmUsePorts, MockLlmCallLog, MockLlmGateway, MockStructuredCompletion, MockTrialCredits, SystemLlm,
};
use crate::crypto::MockKeyCipher;
use crate::evaluation_config::MockEvaluationConfigRepository;
use crate::models::TrialModels;
use crate::provider_key::{MockKeyWrites, MockProviderKeyRepository, ProviderKeyService, ProviderKeyServiceConfig};

/// The ports behind `LlmUse`, each a mock a test sets expectations on.
#[derive(Default)]
pub(crate) struct LlmMocks {
    pub(crate) keys: MockProviderKeyRepository,
    /// Where a key the provider rejected is marked invalid.
    pub(crate) key_writes: MockKeyWrites,
    pub(crate) gateway: MockLlmGateway,
    pub(crate) cipher: MockKeyCipher,
    pub(crate) configs: MockEvaluationConfigRepository,
    pub(crate) completion: MockStructuredCompletion,
    pub(crate) calls: MockLlmCallLog,
    pub(crate) trial_credits: MockTrialCredits,
    /// The operator's LLM (trial credits, and the summary's fallback).
    pub(crate) system: Option<SystemLlm>,
    pub(crate) trial_models: TrialModels,
}

impl LlmMocks {
    pub(crate) fn build(self) -> Arc<LlmUse> {
        let keys = Arc::new(self.keys);
        let gateway = Arc::new(self.gateway);
        let provider_keys = Arc::new(ProviderKeyService::new(
            keys.clone(),
            Arc::new(self.key_writes),
            gateway.clone(),
            Arc::new(self.cipher),
            ProviderKeyServiceConfig::default(),
        ));
        Arc::new(LlmUse::new(
            LlmUsePorts {
                provider_keys,
                key_repository: keys,
                evaluation_configs: Arc::new(self.configs),
                gateway,
                completion: Arc::new(self.completion),
                llm_calls: Arc::new(self.calls),
                trial_credits: Arc::new(self.trial_credits),
            },
            self.system,
            self.trial_models,
        ))
    }
}
