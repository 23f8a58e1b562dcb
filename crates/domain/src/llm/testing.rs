//! `LlmUse` over mocked ports, as the LLM port's own tests build it.

use std::sync::Arc;

use super::{
    LlmUse, LlmUsePorts, MockLlmCallLog, MockLlmGateway, MockStructuredCompletion, MockTrialCredits, SystemLlm,
};
use crate::cost::{MockModelPriceStore, MockPriceTable};
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
    /// The price table calls are priced with; `None`: one that knows no model.
    pub(crate) prices: Option<MockPriceTable>,
}

/// A table that knows no model.
fn unpriced_table() -> MockPriceTable {
    let mut table = MockPriceTable::new();
    table.expect_lookup().returning(|_, _| None);
    table.expect_version().returning(String::new);
    table
}

fn no_project_prices() -> MockModelPriceStore {
    let mut prices = MockModelPriceStore::new();
    prices.expect_all().returning(|_| Ok(Vec::new()));
    prices
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
                price_table: Arc::new(self.prices.unwrap_or_else(unpriced_table)),
                project_prices: Arc::new(no_project_prices()),
            },
            self.system,
            self.trial_models,
        ))
    }
}
