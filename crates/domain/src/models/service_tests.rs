use std::sync::Arc;

use secrecy::SecretString;

use super::*;
use crate::crypto::{MockKeyCipher, SealedSecret};
use crate::evaluation_config::{EvaluationConfig, MockEvaluationConfigRepository};
use crate::llm::{MockLlmGateway, ModelListError};
use crate::provider_key::{MockKeyWrites, MockProviderKeyRepository, ProviderKey, ProviderKeyServiceConfig};

const PROJECT: ProjectId = ProjectId(1);

fn key(id: ProviderKeyId, provider: Provider) -> ProviderKey {
    ProviderKey {
        id,
        provider,
        name: "k".into(),
        api_key_masked: "****".into(),
        ..crate::provider_key::testing::stored_key(PROJECT)
    }
}

struct Fixture {
    gateway: MockLlmGateway,
    stored: Option<ProviderKey>,
    trial_used: i64,
    trial: TrialModels,
}

impl Fixture {
    fn new() -> Self {
        Self {
            gateway: MockLlmGateway::new(),
            stored: None,
            trial_used: 0,
            trial: TrialModels { provider: Some(Provider::Openai), models: vec!["gpt-5-mini".into()] },
        }
    }

    fn build(self) -> ModelsService {
        let mut repo = MockProviderKeyRepository::new();
        let stored = self.stored.clone();
        repo.expect_find().returning(move |_, id| Ok(stored.clone().filter(|k| k.id == id)));
        repo.expect_find_sealed().returning(|_, _| Ok(Some(SealedSecret(br#"{"api_key":"sk-abc-123456"}"#.to_vec()))));
        let mut cipher = MockKeyCipher::new();
        cipher
            .expect_open()
            .returning(|sealed, _| Ok(SecretString::from(String::from_utf8(sealed.0.clone()).unwrap())));
        let gateway = Arc::new(self.gateway);
        let keys = Arc::new(ProviderKeyService::new(
            Arc::new(repo),
            Arc::new(MockKeyWrites::new()),
            gateway.clone(),
            Arc::new(cipher),
            ProviderKeyServiceConfig::default(),
        ));
        let mut configs = MockEvaluationConfigRepository::new();
        let used = self.trial_used;
        configs.expect_get().returning(move |project| {
            Ok(EvaluationConfig { trial_evals_used: used, ..EvaluationConfig::default_for(project) })
        });
        ModelsService::new(keys, gateway, Arc::new(configs), self.trial)
    }
}

fn ids(entries: &[ModelEntry]) -> Vec<&str> {
    entries.iter().map(|e| e.id.as_str()).collect()
}

#[tokio::test]
async fn provider_is_required_and_validated() {
    let service = Fixture::new().build();
    assert!(matches!(service.list(PROJECT, None, None).await, Err(ListModelsError::MissingProvider)));
    let error = service.list(PROJECT, Some("nope"), None).await.unwrap_err();
    assert!(matches!(&error, ListModelsError::InvalidProvider(given) if given == "nope"), "{error:?}");
}

#[tokio::test]
async fn without_a_key_the_curated_list_marks_trial_models() {
    let service = Fixture::new().build();
    let models = service.list(PROJECT, Some("openai"), None).await.unwrap();
    assert_eq!(models[0], ModelEntry { id: "gpt-5-mini".into(), posthog_available: true });
    assert!(models[1..].iter().all(|m| !m.posthog_available));
}

#[tokio::test]
async fn trial_models_are_unavailable_once_credits_run_out() {
    let mut fixture = Fixture::new();
    fixture.trial_used = 100;
    let models = fixture.build().list(PROJECT, Some("openai"), None).await.unwrap();
    assert!(models.iter().all(|m| !m.posthog_available));
}

#[tokio::test]
async fn a_key_of_another_project_or_provider_is_refused() {
    let id = ProviderKeyId::generate();
    let mut fixture = Fixture::new();
    fixture.stored = Some(key(id, Provider::Anthropic));
    let service = fixture.build();

    let missing = service.list(PROJECT, Some("openai"), Some(&ProviderKeyId::generate().to_string())).await;
    assert!(matches!(missing, Err(ListModelsError::KeyNotFound)));
    let mismatch = service.list(PROJECT, Some("openai"), Some(&id.to_string())).await.unwrap_err();
    assert!(matches!(
        mismatch,
        ListModelsError::ProviderMismatch { key: Provider::Anthropic, requested: Provider::Openai }
    ));
}

#[tokio::test]
async fn live_list_puts_curated_models_first_then_newest_and_is_cached() {
    let id = ProviderKeyId::generate();
    let mut fixture = Fixture::new();
    fixture.stored = Some(key(id, Provider::Openai));
    fixture.gateway.expect_list_models().times(1).returning(|_| {
        Ok(vec![
            ListedModel { id: "old-model".into(), created: Some(1) },
            ListedModel { id: "gpt-4o".into(), created: Some(5) },
            ListedModel { id: "new-model".into(), created: Some(9) },
            ListedModel { id: "gpt-5-mini".into(), created: Some(2) },
        ])
    });
    let service = fixture.build();

    let first = service.list(PROJECT, Some("openai"), Some(&id.to_string())).await.unwrap();
    let second = service.list(PROJECT, Some("openai"), Some(&id.to_string())).await.unwrap();

    assert_eq!(ids(&first), vec!["gpt-5-mini", "gpt-4o", "new-model", "old-model"]);
    assert_eq!(first, second);
}

#[tokio::test]
async fn provider_failure_falls_back_to_the_curated_list() {
    let id = ProviderKeyId::generate();
    let mut fixture = Fixture::new();
    fixture.stored = Some(key(id, Provider::Gemini));
    fixture.gateway.expect_list_models().returning(|_| Err(ModelListError::Unavailable("boom".into())));
    let models = fixture.build().list(PROJECT, Some("gemini"), Some(&id.to_string())).await.unwrap();
    assert_eq!(ids(&models), curated_models(Provider::Gemini).to_vec());
}
