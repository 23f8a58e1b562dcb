//! What only OpenAI-compatible endpoints do (spec section 1.1): a key checked with a
//! one-token completion where the endpoint has no `/models`, JSON mode with the schema
//! checked here where it has no `json_schema`, and the SSRF guard at connect time.

mod common;

use std::time::Duration;

use adapters_llm::{HttpLlmGateway, HttpStructuredCompletion, LlmGatewayConfig};
use common::*;
use domain::llm::{CompletionError, KeyCheck, LlmGateway, ModelListError, StructuredCompletion};
use domain::provider_key::{BaseUrl, CredentialField, KeyState, Provider, ProviderCredentials};
use serde_json::json;
use wiremock::matchers::{body_partial_json, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const PROVIDER: Provider = Provider::OpenaiCompatible;

/// An endpoint without `/models` (as many gateways): 404 there.
async fn without_model_list() -> MockServer {
    let server = MockServer::start().await;
    check_call(PROVIDER)
        .respond_with(ResponseTemplate::new(404).set_body_json(json!({"detail": "Not Found"})))
        .mount(&server)
        .await;
    server
}

/// The one-token completion a key check makes with the first custom model.
fn one_token_completion() -> wiremock::MockBuilder {
    completion_call(PROVIDER).and(body_partial_json(json!({"model": CUSTOM_MODEL, "max_tokens": 1})))
}

#[tokio::test]
async fn without_a_model_list_the_key_is_checked_with_a_one_token_completion_of_the_first_custom_model() {
    let server = without_model_list().await;
    let answer = answer_body(PROVIDER, &json!({"ok": true}));
    one_token_completion()
        .respond_with(ResponseTemplate::new(200).set_body_json(answer))
        .expect(1)
        .mount(&server)
        .await;
    let (gateway, credentials) = gateway(PROVIDER, &server);

    assert_eq!(gateway.check_key(&credentials).await, KeyCheck::ok());
}

#[tokio::test]
async fn a_completion_that_refuses_the_key_tells_the_endpoints_words_without_the_key() {
    let server = without_model_list().await;
    one_token_completion()
        .respond_with(ResponseTemplate::new(401).set_body_json(error_body(PROVIDER, 401)))
        .expect(1)
        .mount(&server)
        .await;
    let (gateway, credentials) = gateway(PROVIDER, &server);

    let check = gateway.check_key(&credentials).await;

    assert_eq!(check.state, KeyState::Invalid);
    assert_eq!(check.field, Some(CredentialField::ApiKey));
    let message = check.message.unwrap();
    assert!(message.starts_with("The endpoint refused the key: Request failed with status 401."), "{message}");
    assert!(!message.contains(KEY) && !message.contains(TENANT_SECRET), "{message}");
}

#[tokio::test]
async fn without_a_model_list_or_a_custom_model_the_check_says_what_to_add() {
    let server = without_model_list().await;
    Mock::given(method("POST")).respond_with(ResponseTemplate::new(200)).expect(0).mount(&server).await;
    let (gateway, mut credentials) = gateway(PROVIDER, &server);
    credentials.compatible.as_mut().unwrap().custom_models.clear();

    let check = gateway.check_key(&credentials).await;

    assert_eq!(check.state, KeyState::Error);
    assert_eq!(check.field, Some(CredentialField::BaseUrl));
    assert!(check.message.unwrap().contains("add a custom model"));
}

/// A server without `json_schema`: it refuses the strict format as vLLM's older releases
/// do and answers JSON-mode requests with `answers`, in turn.
async fn json_mode_server(answers: Vec<serde_json::Value>) -> MockServer {
    let server = MockServer::start().await;
    let refusal = json!({"object": "error", "type": "BadRequestError", "code": 400,
        "message": "response_format.type: Input should be 'text' or 'json_object'"});
    completion_call(PROVIDER)
        .and(body_partial_json(json!({"response_format": {"type": "json_schema"}})))
        .respond_with(ResponseTemplate::new(400).set_body_json(refusal))
        .expect(1)
        .mount(&server)
        .await;
    let count = answers.len() as u64;
    for (n, answer) in answers.into_iter().enumerate() {
        completion_call(PROVIDER)
            .and(body_partial_json(json!({"response_format": {"type": "json_object"}})))
            .respond_with(ResponseTemplate::new(200).set_body_json(answer_body(PROVIDER, &answer)))
            .up_to_n_times(1)
            .with_priority(u8::try_from(n + 1).unwrap())
            .expect(1)
            .mount(&server)
            .await;
    }
    assert!(count > 0);
    server
}

#[tokio::test]
async fn a_server_without_json_schema_is_asked_in_json_mode_and_its_answer_held_to_the_schema() {
    let off_schema = json!({"verdict": "maybe", "score": 3});
    let server = json_mode_server(vec![off_schema, verdict()]).await;
    let (adapter, credentials) = completion(PROVIDER, &server);

    let completion = adapter.complete(&credentials, &completion_request(), Duration::from_secs(10)).await.unwrap();

    assert_eq!(completion.value, verdict());
    assert_eq!(completion.attempts, 3, "refused, off the schema, then in it");
    let json_mode = &received(&server).await[1];
    let body: serde_json::Value = serde_json::from_slice(&json_mode.body).unwrap();
    let system = body["messages"][0]["content"].as_str().unwrap();
    assert!(system.contains(&verdict_schema().to_string()), "the schema is in the instructions: {system}");
}

#[tokio::test]
async fn two_answers_off_the_schema_in_json_mode_are_bad_output() {
    let off_schema = json!({"verdict": "pass"});
    let server = json_mode_server(vec![off_schema.clone(), off_schema]).await;
    let (adapter, credentials) = completion(PROVIDER, &server);

    let outcome = adapter.complete(&credentials, &completion_request(), Duration::from_secs(10)).await;

    match outcome {
        Err(CompletionError::BadOutput(why)) => assert!(why.contains("required field is missing"), "{why}"),
        other => panic!("expected bad output, got {other:?}"),
    }
}

/// Credentials of the test key pointed at `root` as saved while private endpoints were
/// allowed, and a gateway and completion adapter of a server that does not allow them.
fn guarded(root: &str) -> (HttpLlmGateway, HttpStructuredCompletion, ProviderCredentials) {
    let mut credentials = credentials(PROVIDER, "http://placeholder.invalid");
    credentials.compatible.as_mut().unwrap().base_url = BaseUrl::parse(root, true).unwrap();
    let config = LlmGatewayConfig::default().allowing_private_endpoints(false);
    let gateway = HttpLlmGateway::new(config.clone()).unwrap();
    let completion = HttpStructuredCompletion::new(config).unwrap().with_retry_policy(fast_retries());
    (gateway, completion, credentials)
}

#[tokio::test]
async fn every_kind_of_address_inside_the_network_is_refused_at_connect_time_and_never_reached() {
    let server = MockServer::start().await;
    Mock::given(path("/v1/models")).respond_with(ResponseTemplate::new(200)).expect(0).mount(&server).await;
    Mock::given(method("POST")).respond_with(ResponseTemplate::new(200)).expect(0).mount(&server).await;
    let port = server.address().port();
    let roots = [
        format!("http://127.0.0.1:{port}/v1"),  // loopback, where the fake server listens
        format!("http://localhost:{port}/v1"),  // a name that resolves to loopback
        "http://10.20.30.40/v1".to_owned(),     // private
        "http://172.16.0.1/v1".to_owned(),      // private
        "http://192.168.1.1/v1".to_owned(),     // private
        "http://169.254.169.254/v1".to_owned(), // link-local: cloud metadata
        "http://100.64.0.1/v1".to_owned(),      // carrier-grade NAT
        "http://[::1]/v1".to_owned(),           // IPv6 loopback
        "http://[fe80::1]/v1".to_owned(),       // IPv6 link-local
        "http://[fd00::1]/v1".to_owned(),       // IPv6 unique local
        "http://[::ffff:127.0.0.1]/v1".to_owned(), // IPv4-mapped loopback
        "http://0.0.0.0/v1".to_owned(),         // unspecified
    ];
    for root in roots {
        let (gateway, completion, credentials) = guarded(&root);

        let check = gateway.check_key(&credentials).await;
        assert_eq!(check.state, KeyState::Invalid, "{root}: {check:?}");
        assert_eq!(check.field, Some(CredentialField::BaseUrl), "{root}");
        assert!(check.message.as_deref().unwrap().contains("private, loopback"), "{root}: {check:?}");

        let listed = gateway.list_models(&credentials).await;
        assert!(
            matches!(&listed, Err(ModelListError::Unavailable(why)) if why.contains("private, loopback")),
            "{root}: {listed:?}"
        );

        let completed = completion.complete(&credentials, &completion_request(), Duration::from_secs(5)).await;
        assert!(
            matches!(&completed, Err(CompletionError::Unavailable(why)) if why.contains("private, loopback")),
            "{root}: {completed:?}"
        );
    }
    assert!(received(&server).await.is_empty(), "no call reached the server inside the network");
}

#[tokio::test]
async fn with_private_endpoints_allowed_the_same_address_is_called() {
    let server = MockServer::start().await;
    check_call(PROVIDER)
        .respond_with(ResponseTemplate::new(200).set_body_json(models_body(PROVIDER)))
        .mount(&server)
        .await;
    let root = format!("http://localhost:{}", server.address().port());
    let config = LlmGatewayConfig::default().allowing_private_endpoints(true);

    let (gateway, credentials) = gateway_at(PROVIDER, &root, config);

    assert_eq!(gateway.check_key(&credentials).await, KeyCheck::ok());
    let models = gateway.list_models(&credentials).await.unwrap();
    assert_eq!(models.iter().map(|m| m.id.as_str()).collect::<Vec<_>>(), ["meta-llama/Llama-3.1-8B-Instruct"]);
}
