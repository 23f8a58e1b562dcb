use crate::invalid::{FieldError, Rule};
use crate::provider_key::{KeyEdits, KeyName};
use std::sync::Arc;

use mockall::predicate::eq;
use secrecy::{ExposeSecret, SecretString};

use super::*;
use crate::crypto::{CipherError, MockKeyCipher, SealedSecret};
use crate::llm::MockLlmGateway;
use crate::provider_key::{MockKeyWrites, MockProviderKeyRepository, ResealError, ResealReport, SealedKeyRow};

const PROJECT: ProjectId = ProjectId(7);
const ACTOR: UserId = UserId(3);

fn stored_key(provider: Provider) -> ProviderKey {
    ProviderKey {
        provider,
        azure_endpoint: (provider == Provider::AzureOpenai).then(|| "https://a.openai.azure.com".to_owned()),
        api_version: (provider == Provider::AzureOpenai).then(|| "2024-10-21".to_owned()),
        ..crate::provider_key::testing::stored_key(PROJECT)
    }
}

/// A cipher that "seals" by prefixing, so tests can read what was sealed.
/// A repository holding `existing`, whose sealed secret reads `sealed` (as
/// [`transparent_cipher`] seals).
fn holding(existing: ProviderKey, sealed: &'static str) -> MockProviderKeyRepository {
    let mut repo = MockProviderKeyRepository::new();
    repo.expect_find().returning(move |_, _| Ok(Some(existing.clone())));
    repo.expect_find_sealed().returning(move |_, _| Ok(Some(SealedSecret(sealed.as_bytes().to_vec()))));
    repo
}

pub(super) fn transparent_cipher() -> MockKeyCipher {
    let mut cipher = MockKeyCipher::new();
    cipher
        .expect_seal()
        .returning(|plain, _| Ok(SealedSecret(format!("sealed:{}", plain.expose_secret()).into_bytes())));
    cipher.expect_open().returning(|sealed, _| {
        let text = String::from_utf8(sealed.0.clone()).unwrap();
        Ok(SecretString::from(text.trim_start_matches("sealed:").to_owned()))
    });
    cipher.expect_is_current().returning(|sealed| sealed.0.starts_with(b"sealed:"));
    cipher
}

fn service(
    repo: MockProviderKeyRepository,
    writes: MockKeyWrites,
    gateway: MockLlmGateway,
    cipher: MockKeyCipher,
) -> ProviderKeyService {
    let config = ProviderKeyServiceConfig::default();
    ProviderKeyService::new(Arc::new(repo), Arc::new(writes), Arc::new(gateway), Arc::new(cipher), config)
}

pub(super) fn gateway_answering(check: KeyCheck) -> MockLlmGateway {
    let mut gateway = MockLlmGateway::new();
    gateway.expect_check_key().returning(move |_| check.clone());
    gateway
}

fn create_request(provider: Provider, key: &str) -> CreateProviderKey {
    CreateProviderKey {
        provider,
        name: KeyName::parse("prod").unwrap(),
        api_key: SecretString::from(key.to_owned()),
        azure_endpoint: None,
        api_version: None,
        endpoint: EndpointInput::default(),
        set_as_active: false,
    }
}

#[tokio::test]
async fn create_stores_nothing_when_provider_rejects_key() {
    let repo = MockProviderKeyRepository::new();
    let mut writes = MockKeyWrites::new();
    writes.expect_insert().never();
    let service =
        service(repo, writes, gateway_answering(KeyCheck::invalid("Invalid API key", None)), transparent_cipher());

    let error = service.create(PROJECT, ACTOR, create_request(Provider::Openai, "sk-test-12345")).await.unwrap_err();

    match error {
        SaveProviderKeyError::Invalid(FieldError { field, rule }) => {
            assert_eq!(field, "api_key");
            assert_eq!(rule, Rule::ProviderRejected { reason: Some("Invalid API key".into()) });
        }
        other => panic!("unexpected {other:?}"),
    }
}

#[tokio::test]
async fn create_checks_the_prefix_before_any_network_call() {
    let mut gateway = MockLlmGateway::new();
    gateway.expect_check_key().never();
    let repo = MockProviderKeyRepository::new();
    let mut writes = MockKeyWrites::new();
    writes.expect_insert().never();
    let service = service(repo, writes, gateway, transparent_cipher());

    let error =
        service.create(PROJECT, ACTOR, create_request(Provider::Anthropic, "sk-not-anthropic")).await.unwrap_err();

    assert!(
        matches!(&error, SaveProviderKeyError::Invalid(FieldError { field, rule: Rule::KeyFormat(Provider::Anthropic) })
            if field == "api_key")
    );
}

#[tokio::test]
async fn create_seals_the_key_and_stores_only_its_mask() {
    let repo = MockProviderKeyRepository::new();
    let mut writes = MockKeyWrites::new();
    writes
        .expect_insert()
        .withf(|record: &NewProviderKeyRecord| {
            let sealed = String::from_utf8(record.sealed_secret.0.clone()).unwrap();
            record.api_key_masked == "sk-t...2345"
                && record.name.as_str() == "prod"
                && record.state == KeyState::Ok
                && record.set_as_active
                && sealed.starts_with("sealed:")
                && sealed.contains("sk-test-12345")
        })
        .returning(|record| Ok(ProviderKey { id: record.id, ..stored_key(record.provider) }));
    let service = service(repo, writes, gateway_answering(KeyCheck::ok()), transparent_cipher());

    let mut request = create_request(Provider::Openai, "sk-test-12345");
    request.set_as_active = true;
    let key = service.create(PROJECT, ACTOR, request).await.unwrap();

    assert_eq!(key.provider, Provider::Openai);
}

#[tokio::test]
async fn create_requires_azure_endpoint_on_an_azure_host() {
    let mut gateway = MockLlmGateway::new();
    gateway.expect_check_key().never();
    let service = service(MockProviderKeyRepository::new(), MockKeyWrites::new(), gateway, transparent_cipher());

    let mut request = create_request(Provider::AzureOpenai, "azure-key-123456");
    request.azure_endpoint = Some("https://169.254.169.254/".into());
    let error = service.create(PROJECT, ACTOR, request).await.unwrap_err();

    assert!(matches!(
        error,
        SaveProviderKeyError::Invalid(FieldError { field, rule: Rule::AzureEndpoint(_) }) if field == "azure_endpoint"
    ));
}

#[tokio::test]
async fn create_reports_azure_endpoint_rejections_on_that_field() {
    let check = KeyCheck::invalid("Azure endpoint not found — check the URL", Some(CredentialField::AzureEndpoint));
    let service =
        service(MockProviderKeyRepository::new(), MockKeyWrites::new(), gateway_answering(check), transparent_cipher());

    let mut request = create_request(Provider::AzureOpenai, "azure-key-123456");
    request.azure_endpoint = Some("https://a.openai.azure.com".into());
    let error = service.create(PROJECT, ACTOR, request).await.unwrap_err();

    assert!(matches!(
        error,
        SaveProviderKeyError::Invalid(FieldError { field, rule: Rule::ProviderRejected { .. } })
            if field == "azure_endpoint"
    ));
}

#[tokio::test]
async fn update_with_new_key_changes_nothing_when_validation_fails() {
    let existing = stored_key(Provider::Openai);
    let mut repo = MockProviderKeyRepository::new();
    let mut writes = MockKeyWrites::new();
    repo.expect_find().returning(move |_, _| Ok(Some(existing.clone())));
    writes.expect_update().never();
    let service =
        service(repo, writes, gateway_answering(KeyCheck::invalid("Invalid API key", None)), transparent_cipher());

    let request = UpdateProviderKey::edits(KeyEdits {
        api_key: Some(SecretString::from("sk-new-1234567")),
        ..Default::default()
    });
    let error = service.update(PROJECT, ProviderKeyId::generate(), request, ACTOR).await.unwrap_err();

    assert!(matches!(
        error,
        SaveProviderKeyError::Invalid(FieldError { field, rule: Rule::ProviderRejected { .. } }) if field == "api_key"
    ));
}

#[tokio::test]
async fn update_with_valid_new_key_reseals_and_marks_ok() {
    let existing = stored_key(Provider::Openai);
    let id = existing.id;
    let mut repo = MockProviderKeyRepository::new();
    let mut writes = MockKeyWrites::new();
    repo.expect_find().returning(move |_, _| Ok(Some(existing.clone())));
    writes
        .expect_update()
        .withf(move |_, key, changes| {
            *key == id
                && changes.state == Some(KeyState::Ok)
                && changes.api_key_masked.as_deref() == Some("sk-n...4567")
                && changes.sealed_secret.is_some()
        })
        .returning(|_, _, _| Ok(Some(stored_key(Provider::Openai))));
    let service = service(repo, writes, gateway_answering(KeyCheck::ok()), transparent_cipher());

    let request = UpdateProviderKey::edits(KeyEdits {
        api_key: Some(SecretString::from("sk-new-1234567")),
        ..Default::default()
    });
    service.update(PROJECT, id, request, ACTOR).await.unwrap();
}

#[tokio::test]
async fn update_of_azure_endpoint_without_key_resets_state_to_unknown() {
    let repo = holding(
        stored_key(Provider::AzureOpenai),
        r#"sealed:{"api_key":"azure-key-123456","azure_endpoint":"https://a.openai.azure.com","api_version":"2024-10-21"}"#,
    );
    let mut writes = MockKeyWrites::new();
    writes
        .expect_update()
        .withf(|_, _, changes| {
            let sealed = String::from_utf8(changes.sealed_secret.clone().unwrap().0).unwrap();
            changes.state == Some(KeyState::Unknown)
                && changes.azure_endpoint.as_deref() == Some("https://b.openai.azure.com")
                && sealed.contains("azure-key-123456")
                && sealed.contains("https://b.openai.azure.com")
        })
        .returning(|_, _, _| Ok(Some(stored_key(Provider::AzureOpenai))));
    let mut gateway = MockLlmGateway::new();
    gateway.expect_check_key().never();
    let service = service(repo, writes, gateway, transparent_cipher());

    let request = UpdateProviderKey::edits(KeyEdits {
        azure_endpoint: Some("https://b.openai.azure.com/".into()),
        ..Default::default()
    });
    service.update(PROJECT, ProviderKeyId::generate(), request, ACTOR).await.unwrap();
}

#[tokio::test]
async fn update_refuses_a_provider_change() {
    let existing = stored_key(Provider::Openai);
    let mut repo = MockProviderKeyRepository::new();
    let mut writes = MockKeyWrites::new();
    repo.expect_find().returning(move |_, _| Ok(Some(existing.clone())));
    writes.expect_update().never();
    let service = service(repo, writes, MockLlmGateway::new(), transparent_cipher());

    let request = UpdateProviderKey { provider: Ok(Some(Provider::Anthropic)), edits: Ok(KeyEdits::default()) };
    let error = service.update(PROJECT, ProviderKeyId::generate(), request, ACTOR).await.unwrap_err();

    assert!(matches!(
        error,
        SaveProviderKeyError::Invalid(FieldError { field, rule: Rule::ProviderUnchangeable }) if field == "provider"
    ));
}

#[tokio::test]
async fn update_of_missing_key_is_not_found() {
    let mut repo = MockProviderKeyRepository::new();
    repo.expect_find().returning(|_, _| Ok(None));
    let service = service(repo, MockKeyWrites::new(), MockLlmGateway::new(), transparent_cipher());

    let error = service
        .update(PROJECT, ProviderKeyId::generate(), UpdateProviderKey::edits(KeyEdits::default()), ACTOR)
        .await
        .unwrap_err();

    assert!(matches!(error, SaveProviderKeyError::NotFound));
}

#[tokio::test]
async fn validate_persists_the_new_state_and_message() {
    let repo = holding(stored_key(Provider::Openai), r#"sealed:{"api_key":"sk-test-12345"}"#);
    let mut writes = MockKeyWrites::new();
    writes
        .expect_update()
        .withf(|_, _, changes| {
            changes.state == Some(KeyState::Invalid)
                && changes.error_message == Some(Some("Invalid API key".into()))
                && changes.sealed_secret.is_none()
        })
        .returning(|_, _, _| Ok(Some(stored_key(Provider::Openai))));
    let service =
        service(repo, writes, gateway_answering(KeyCheck::invalid("Invalid API key", None)), transparent_cipher());

    service.validate(PROJECT, ProviderKeyId::generate(), ACTOR).await.unwrap();
}

#[tokio::test]
async fn validate_without_stored_secret_says_so() {
    let existing = stored_key(Provider::Openai);
    let mut repo = MockProviderKeyRepository::new();
    repo.expect_find().returning(move |_, _| Ok(Some(existing.clone())));
    repo.expect_find_sealed().returning(|_, _| Ok(None));
    let service = service(repo, MockKeyWrites::new(), MockLlmGateway::new(), transparent_cipher());

    let error = service.validate(PROJECT, ProviderKeyId::generate(), ACTOR).await.unwrap_err();

    assert!(matches!(error, ValidateStoredKeyError::NoSecret), "{error:?}");
}

#[tokio::test]
async fn delete_maps_replacement_rules_to_their_messages() {
    let mut repo = MockProviderKeyRepository::new();
    let mut writes = MockKeyWrites::new();
    let mismatch = ProviderKeyId::generate();
    writes
        .expect_delete()
        .with(
            mockall::predicate::always(),
            mockall::predicate::always(),
            eq(KeyRemoval { replacement: Some(mismatch), actor: Some(ACTOR) }),
        )
        .returning(|_, _, _| Ok(DeleteOutcome::ReplacementProviderMismatch));
    writes.expect_delete().returning(|_, _, _| Ok(DeleteOutcome::Deleted { moved: 2, disabled: 1 }));
    let id = ProviderKeyId::generate();
    repo.expect_find().returning(move |_, key| Ok((key == id).then(|| stored_key(Provider::Openai))));
    let service = service(repo, writes, MockLlmGateway::new(), transparent_cipher());

    let error = service.delete(PROJECT, id, Some(&mismatch.to_string()), ACTOR).await.unwrap_err();
    assert!(matches!(error, DeleteProviderKeyError::ReplacementProviderMismatch), "{error:?}");
    let error = service.delete(PROJECT, id, Some("not-a-uuid"), ACTOR).await.unwrap_err();
    assert!(matches!(error, DeleteProviderKeyError::ReplacementNotFound), "{error:?}");
    let missing = service.delete(PROJECT, ProviderKeyId::generate(), Some("not-a-uuid"), ACTOR).await.unwrap_err();
    assert!(matches!(missing, DeleteProviderKeyError::NotFound), "a missing key is 404 whatever the replacement");
    service.delete(PROJECT, id, None, ACTOR).await.unwrap();
}

#[tokio::test]
async fn check_calls_the_provider_with_a_well_formed_key() {
    let mut gateway = MockLlmGateway::new();
    gateway
        .expect_check_key()
        .withf(|credentials| credentials.provider == Provider::Openai)
        .returning(|_| KeyCheck::ok());
    let service = service(MockProviderKeyRepository::new(), MockKeyWrites::new(), gateway, transparent_cipher());

    let check = service
        .check(CheckProviderKey {
            provider: Provider::Openai,
            api_key: SecretString::from("sk-abc-123456"),
            azure_endpoint: None,
            api_version: None,
            endpoint: EndpointInput::default(),
        })
        .await;
    assert_eq!(check.state, KeyState::Ok);
    let badly_formed = service
        .check(CheckProviderKey {
            provider: Provider::Openai,
            api_key: SecretString::from("pk-abc-123456"),
            azure_endpoint: None,
            api_version: None,
            endpoint: EndpointInput::default(),
        })
        .await;
    assert_eq!(badly_formed, KeyCheck::refused(Rule::KeyFormat(Provider::Openai), None));
}

#[tokio::test]
async fn check_reports_bad_azure_endpoint_without_calling_out() {
    let mut gateway = MockLlmGateway::new();
    gateway.expect_check_key().never();
    let service = service(MockProviderKeyRepository::new(), MockKeyWrites::new(), gateway, transparent_cipher());

    let check = service
        .check(CheckProviderKey {
            provider: Provider::AzureOpenai,
            api_key: SecretString::from("k-123456789"),
            azure_endpoint: Some("https://example.com".into()),
            api_version: None,
            endpoint: EndpointInput::default(),
        })
        .await;

    assert_eq!(check.state, KeyState::Invalid);
    assert_eq!(check.field, Some(CredentialField::AzureEndpoint));
}

#[tokio::test]
async fn reseal_all_reseals_only_rows_under_an_old_key() {
    let old = SealedKeyRow {
        id: ProviderKeyId::generate(),
        project: PROJECT,
        provider: Provider::Openai,
        sealed_secret: SealedSecret(b"old:secret".to_vec()),
    };
    let current = SealedKeyRow {
        id: ProviderKeyId::generate(),
        sealed_secret: SealedSecret(b"sealed:x".to_vec()),
        ..old.clone()
    };
    let batch = vec![old.clone(), current];
    let mut repo = MockProviderKeyRepository::new();
    let mut calls = 0;
    repo.expect_sealed_batch().returning(move |_, _| {
        calls += 1;
        Ok(if calls == 1 { batch.clone() } else { vec![] })
    });
    let old_id = old.id;
    repo.expect_replace_sealed().times(1).withf(move |row, _| row.id == old_id).returning(|_, _| Ok(true));
    let mut cipher = MockKeyCipher::new();
    cipher.expect_is_current().returning(|sealed| sealed.0.starts_with(b"sealed:"));
    cipher.expect_open().returning(|_, _| Ok(SecretString::from("secret")));
    cipher.expect_seal().returning(|_, _| Ok(SealedSecret(b"sealed:secret".to_vec())));
    let service = service(repo, MockKeyWrites::new(), MockLlmGateway::new(), cipher);

    let report = service.reseal_all().await.unwrap();

    assert_eq!(report, ResealReport { examined: 2, resealed: 1 });
}

#[tokio::test]
async fn reseal_all_stops_on_a_secret_no_key_opens() {
    let row = SealedKeyRow {
        id: ProviderKeyId::generate(),
        project: PROJECT,
        provider: Provider::Openai,
        sealed_secret: SealedSecret(b"other".to_vec()),
    };
    let mut repo = MockProviderKeyRepository::new();
    repo.expect_sealed_batch().returning(move |_, _| Ok(vec![row.clone()]));
    let mut cipher = MockKeyCipher::new();
    cipher.expect_is_current().returning(|_| false);
    cipher.expect_open().returning(|_, _| Err(CipherError::UnknownKeyId("gone".into())));
    let service = service(repo, MockKeyWrites::new(), MockLlmGateway::new(), cipher);

    assert!(matches!(service.reseal_all().await, Err(ResealError::CannotOpen { .. })));
}

#[tokio::test]
async fn validate_records_the_gateways_refusal_of_a_stored_endpoint() {
    let repo = holding(
        stored_key(Provider::AzureOpenai),
        r#"sealed:{"api_key":"azure-key-123456","azure_endpoint":"http://127.0.0.1:9","api_version":"2024-10-21"}"#,
    );
    let mut writes = MockKeyWrites::new();
    writes
        .expect_update()
        .withf(|_, _, changes| {
            changes.state == Some(KeyState::Invalid)
                && changes.error_message == Some(Some("azure_endpoint must use https://.".into()))
        })
        .returning(|_, _, _| Ok(Some(stored_key(Provider::AzureOpenai))));
    // The gateway is the last line before the network: it refuses endpoints the operator's
    // policy does not allow, whatever the domain checked before.
    let refusal = KeyCheck::invalid("azure_endpoint must use https://.", Some(CredentialField::AzureEndpoint));
    let gateway = gateway_answering(refusal);
    let service = service(repo, writes, gateway, transparent_cipher());

    service.validate(PROJECT, ProviderKeyId::generate(), ACTOR).await.unwrap();
}
