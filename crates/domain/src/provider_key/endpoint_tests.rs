//! The provider-key use cases for OpenAI-compatible endpoints: a key bound to its endpoint,
//! headers sealed with it, custom models beside it.

use std::sync::Arc;

use secrecy::{ExposeSecret, SecretString};

use super::service_tests::{gateway_answering, transparent_cipher};
use super::*;
use crate::invalid::{FieldError, Rule};
use crate::llm::{KeyCheck, MockLlmGateway};
use crate::provider_key::{
    CompatibleSettings, EndpointInput, ExtraHeaders, KeyEdits, KeyName, MockKeyWrites, MockProviderKeyRepository,
    NewProviderKeyRecord, UpdateProviderKey,
};
use crate::{ProjectId, ProviderKeyId, UserId};

const PROJECT: ProjectId = ProjectId(7);
const ACTOR: UserId = UserId(3);
const SEALED: &str = r#"sealed:{"api_key":"local-key-123456","base_url":"https://gw.example.com/v1","extra_headers":{"x-tenant":"tenant-secret-42"}}"#;

fn settings() -> CompatibleSettings {
    CompatibleSettings {
        base_url: "https://gw.example.com/v1".into(),
        extra_headers: [("x-tenant".to_owned(), "tena...t-42".to_owned())].into(),
        custom_models: vec!["llama3.1:8b".into()],
    }
}

fn stored() -> ProviderKey {
    ProviderKey {
        provider: Provider::OpenaiCompatible,
        compatible: Some(settings()),
        ..crate::provider_key::testing::stored_key(PROJECT)
    }
}

fn headers(pairs: &[(&str, &str)]) -> ExtraHeaders {
    ExtraHeaders::parse(pairs.iter().map(|(n, v)| ((*n).to_owned(), Some(SecretString::from(*v)))).collect()).unwrap()
}

fn service(repo: MockProviderKeyRepository, writes: MockKeyWrites, gateway: MockLlmGateway) -> ProviderKeyService {
    let config = ProviderKeyServiceConfig::default();
    ProviderKeyService::new(Arc::new(repo), Arc::new(writes), Arc::new(gateway), Arc::new(transparent_cipher()), config)
}

fn holding_stored() -> MockProviderKeyRepository {
    let mut repo = MockProviderKeyRepository::new();
    repo.expect_find().returning(|_, _| Ok(Some(stored())));
    repo.expect_find_sealed().returning(|_, _| Ok(Some(crate::crypto::SealedSecret(SEALED.as_bytes().to_vec()))));
    repo
}

fn no_call() -> MockLlmGateway {
    let mut gateway = MockLlmGateway::new();
    gateway.expect_check_key().never();
    gateway
}

fn edits(endpoint: EndpointInput, api_key: Option<&str>) -> UpdateProviderKey {
    UpdateProviderKey::edits(KeyEdits {
        api_key: api_key.map(|k| SecretString::from(k.to_owned())),
        endpoint,
        ..KeyEdits::default()
    })
}

#[tokio::test]
async fn a_new_key_seals_its_endpoint_and_headers_and_shows_them_masked() {
    let mut writes = MockKeyWrites::new();
    writes
        .expect_insert()
        .withf(|record: &NewProviderKeyRecord| {
            let sealed = String::from_utf8(record.sealed_secret.0.clone()).unwrap();
            record.compatible == Some(settings())
                && sealed.contains(r#""base_url":"https://gw.example.com/v1""#)
                && sealed.contains("tenant-secret-42")
        })
        .returning(|record| Ok(ProviderKey { id: record.id, ..stored() }));
    let mut gateway = MockLlmGateway::new();
    gateway
        .expect_check_key()
        .withf(|credentials| {
            let endpoint = credentials.compatible.as_ref().unwrap();
            endpoint.base_url.as_str() == "https://gw.example.com/v1" && endpoint.custom_models == ["llama3.1:8b"]
        })
        .returning(|_| KeyCheck::ok());

    let request = CreateProviderKey {
        provider: Provider::OpenaiCompatible,
        name: KeyName::parse("vllm").unwrap(),
        api_key: SecretString::from("local-key-123456"),
        azure_endpoint: None,
        api_version: None,
        endpoint: EndpointInput {
            base_url: Some("https://gw.example.com/v1/".into()),
            extra_headers: Some(headers(&[("X-Tenant", "tenant-secret-42")])),
            custom_models: Some(vec!["llama3.1:8b".into()]),
        },
        set_as_active: false,
    };
    service(MockProviderKeyRepository::new(), writes, gateway).create(PROJECT, ACTOR, request).await.unwrap();
}

#[tokio::test]
async fn a_base_url_is_required_and_held_to_the_operators_policy_before_any_call() {
    for (base_url, rule) in [
        (None, Rule::Required),
        (Some("https://10.0.0.5/v1"), Rule::BaseUrlPrivate),
        (Some("http://gw.example.com"), Rule::BaseUrlNotHttps),
    ] {
        let request = CreateProviderKey {
            provider: Provider::OpenaiCompatible,
            name: KeyName::parse("vllm").unwrap(),
            api_key: SecretString::from("local-key-123456"),
            azure_endpoint: None,
            api_version: None,
            endpoint: EndpointInput { base_url: base_url.map(str::to_owned), ..EndpointInput::default() },
            set_as_active: false,
        };
        let refused = service(MockProviderKeyRepository::new(), MockKeyWrites::new(), no_call())
            .create(PROJECT, ACTOR, request)
            .await
            .unwrap_err();
        assert!(
            matches!(&refused, SaveProviderKeyError::Invalid(e) if *e == FieldError::new("base_url", rule.clone())),
            "{base_url:?}: {refused:?}"
        );
    }
}

#[tokio::test]
async fn moving_the_endpoint_without_the_key_is_refused_and_nothing_is_written() {
    let mut writes = MockKeyWrites::new();
    writes.expect_update().never();
    let moved = EndpointInput { base_url: Some("https://attacker.example.net/v1".into()), ..EndpointInput::default() };

    let refused = service(holding_stored(), writes, no_call())
        .update(PROJECT, ProviderKeyId::generate(), edits(moved, None), ACTOR)
        .await
        .unwrap_err();

    assert!(
        matches!(&refused, SaveProviderKeyError::Invalid(e) if *e == FieldError::new("api_key", Rule::EndpointNeedsKey)),
        "{refused:?}"
    );
}

#[tokio::test]
async fn moving_the_endpoint_with_the_key_checks_it_there_and_keeps_the_stored_headers() {
    let mut writes = MockKeyWrites::new();
    writes
        .expect_update()
        .withf(|_, _, changes| {
            let sealed = String::from_utf8(changes.sealed_secret.clone().unwrap().0).unwrap();
            changes.state == Some(KeyState::Ok)
                && changes.compatible.as_ref().map(|c| c.base_url.as_str()) == Some("https://gw2.example.com/v1")
                && sealed.contains("tenant-secret-42")
                && sealed.contains("new-key-7890123")
        })
        .returning(|_, _, _| Ok(Some(stored())));
    let moved = EndpointInput { base_url: Some("https://gw2.example.com/v1".into()), ..EndpointInput::default() };

    service(holding_stored(), writes, gateway_answering(KeyCheck::ok()))
        .update(PROJECT, ProviderKeyId::generate(), edits(moved, Some("new-key-7890123")), ACTOR)
        .await
        .unwrap();
}

#[tokio::test]
async fn new_headers_are_resealed_with_the_stored_key_and_the_state_becomes_unknown() {
    let mut writes = MockKeyWrites::new();
    writes
        .expect_update()
        .withf(|_, _, changes| {
            let sealed = String::from_utf8(changes.sealed_secret.clone().unwrap().0).unwrap();
            let shown = changes.compatible.as_ref().unwrap();
            changes.state == Some(KeyState::Unknown)
                && sealed.contains("local-key-123456")
                && sealed.contains("routing-value-99")
                && !sealed.contains("tenant-secret-42")
                && shown.extra_headers.get("x-route").map(String::as_str) == Some("rout...e-99")
                && shown.custom_models == ["llama3.1:8b"]
        })
        .returning(|_, _, _| Ok(Some(stored())));
    let same_endpoint = EndpointInput {
        base_url: Some("https://gw.example.com/v1/".into()),
        extra_headers: Some(headers(&[("x-route", "routing-value-99")])),
        custom_models: None,
    };

    service(holding_stored(), writes, no_call())
        .update(PROJECT, ProviderKeyId::generate(), edits(same_endpoint, None), ACTOR)
        .await
        .unwrap();
}

#[tokio::test]
async fn new_custom_models_change_what_is_shown_not_the_state() {
    let mut writes = MockKeyWrites::new();
    writes
        .expect_update()
        .withf(|_, _, changes| {
            let sealed = String::from_utf8(changes.sealed_secret.clone().unwrap().0).unwrap();
            changes.state.is_none()
                && changes.compatible.as_ref().unwrap().custom_models == ["qwen2.5"]
                && sealed.contains("tenant-secret-42")
        })
        .returning(|_, _, _| Ok(Some(stored())));
    let models = EndpointInput { custom_models: Some(vec!["qwen2.5".into()]), ..EndpointInput::default() };

    service(holding_stored(), writes, no_call())
        .update(PROJECT, ProviderKeyId::generate(), edits(models, None), ACTOR)
        .await
        .unwrap();
}

#[tokio::test]
async fn stored_credentials_carry_the_custom_models_kept_beside_the_secret() {
    let service = service(holding_stored(), MockKeyWrites::new(), no_call());
    let (_, credentials) = service.stored_credentials(PROJECT, ProviderKeyId::generate()).await.unwrap().unwrap();
    let endpoint = credentials.compatible.unwrap();
    assert_eq!(endpoint.custom_models, ["llama3.1:8b"]);
    assert_eq!(
        endpoint.extra_headers.iter().next().map(|(n, v)| (n, v.expose_secret())),
        Some(("x-tenant", "tenant-secret-42"))
    );
}
