//! `list_models` against fake providers answering in each provider's own shape.

mod common;

use adapters_llm::LlmGatewayConfig;
use common::*;
use domain::llm::{ListedModel, LlmGateway, ModelListError};
use domain::provider_key::Provider;
use serde_json::json;
use wiremock::matchers::{query_param, query_param_is_missing};
use wiremock::{MockServer, ResponseTemplate};

fn model(id: &str, created: Option<i64>) -> ListedModel {
    ListedModel { id: id.to_owned(), created }
}

/// Lists `provider`'s models from a server answering the first list call with `response`.
async fn list_answered(provider: Provider, response: ResponseTemplate) -> Result<Vec<ListedModel>, ModelListError> {
    let server = MockServer::start().await;
    authed_get(provider, &models_path(provider)).respond_with(response).expect(1).mount(&server).await;
    let (gateway, credentials) = gateway(provider, &server);
    gateway.list_models(&credentials).await
}

fn is_unavailable(result: &Result<Vec<ListedModel>, ModelListError>) -> bool {
    matches!(result, Err(ModelListError::Unavailable(_)))
}

#[tokio::test]
async fn each_provider_shape_becomes_listed_models() {
    let expected = [
        (Provider::Openai, vec![model("gpt-4o-mini", Some(1_721_172_741)), model("gpt-5-mini", Some(1_754_425_928))]),
        (Provider::Anthropic, vec![model("claude-haiku-4-5-20251001", Some(1_760_486_400))]),
        (Provider::Gemini, vec![model("gemini-2.5-flash", None)]),
        (Provider::Openrouter, vec![model("openai/gpt-5-mini", Some(1_754_587_407))]),
        (Provider::Fireworks, vec![model("accounts/fireworks/models/llama-v3p3-70b-instruct", Some(1_733_442_103))]),
        (Provider::TogetherAi, vec![model("meta-llama/Llama-3.3-70B-Instruct-Turbo", Some(1_733_461_289))]),
        (Provider::AzureOpenai, vec![model("prod-gpt4o", Some(1_722_988_800))]),
    ];
    for (provider, models) in expected {
        let response = ResponseTemplate::new(200).set_body_json(models_body(provider));
        assert_eq!(list_answered(provider, response).await, Ok(models), "{provider}");
    }
}

#[tokio::test]
async fn a_rejected_key_is_reported_as_such_by_every_provider() {
    for provider in Provider::ALL {
        for status in [401, 403] {
            let response = ResponseTemplate::new(status).set_body_json(error_body(provider, status));
            let result = list_answered(provider, response).await;
            assert_eq!(result, Err(ModelListError::KeyRejected), "{provider} {status}");
        }
    }
}

#[tokio::test]
async fn gemini_400_api_key_invalid_is_a_rejected_key() {
    let response = ResponseTemplate::new(400).set_body_json(gemini_bad_key_body());
    assert_eq!(list_answered(Provider::Gemini, response).await, Err(ModelListError::KeyRejected));
}

#[tokio::test]
async fn rate_limits_server_errors_and_html_leave_the_list_unavailable() {
    for provider in Provider::ALL {
        let answers = [
            ResponseTemplate::new(429).set_body_json(error_body(provider, 429)),
            ResponseTemplate::new(500).set_body_json(error_body(provider, 500)),
            ResponseTemplate::new(200).set_body_raw(html_page(), "text/html"),
            ResponseTemplate::new(200).set_body_json(json!({"unexpected": true, "data": "no"})),
        ];
        for response in answers {
            let result = list_answered(provider, response).await;
            assert!(is_unavailable(&result), "{provider}: {result:?}");
        }
    }
}

#[tokio::test]
async fn a_slow_provider_leaves_the_list_unavailable() {
    for provider in Provider::ALL {
        let server = MockServer::start().await;
        authed_get(provider, &models_path(provider))
            .respond_with(ResponseTemplate::new(200).set_body_json(models_body(provider)).set_delay(LONG_DELAY))
            .mount(&server)
            .await;
        let (gateway, credentials) = gateway_with(provider, &server, short_timeout());
        let result = gateway.list_models(&credentials).await;
        assert_eq!(
            result,
            Err(ModelListError::Unavailable(format!("{}: timed out", provider.display_name()))),
            "{provider}"
        );
    }
}

#[tokio::test]
async fn an_unreachable_provider_leaves_the_list_unavailable() {
    for provider in Provider::ALL {
        let (gateway, credentials) = gateway_at(provider, &refused_root(), short_timeout());
        let result = gateway.list_models(&credentials).await;
        assert_eq!(
            result,
            Err(ModelListError::Unavailable(format!("{}: could not connect", provider.display_name()))),
            "{provider}"
        );
    }
}

#[tokio::test]
async fn a_body_over_the_limit_is_not_read() {
    let server = MockServer::start().await;
    let huge = json!({"data": (0..2_000).map(|i| json!({"id": format!("model-{i}")})).collect::<Vec<_>>()});
    authed_get(Provider::Openai, "/v1/models")
        .respond_with(ResponseTemplate::new(200).set_body_json(huge))
        .mount(&server)
        .await;
    let config = LlmGatewayConfig { max_body_bytes: 1024, ..LlmGatewayConfig::default() };
    let (gateway, credentials) = gateway_with(Provider::Openai, &server, config);
    let result = gateway.list_models(&credentials).await;
    assert_eq!(result, Err(ModelListError::Unavailable("OpenAI: the answer was too large".to_owned())));
}

#[tokio::test]
async fn gemini_pages_are_followed_and_the_key_stays_out_of_the_url() {
    let server = MockServer::start().await;
    authed_get(Provider::Gemini, "/v1/models")
        .and(query_param_is_missing("pageToken"))
        .and(query_param("pageSize", "1000"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "models": [{"name": "models/gemini-2.5-flash", "supportedGenerationMethods": ["generateContent"]}],
            "nextPageToken": "Chdtb2RlbHMvZ2VtaW5pLTIuNS1wcm8"
        })))
        .expect(1)
        .mount(&server)
        .await;
    authed_get(Provider::Gemini, "/v1/models")
        .and(query_param("pageToken", "Chdtb2RlbHMvZ2VtaW5pLTIuNS1wcm8"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "models": [{"name": "models/gemini-2.5-pro", "supportedGenerationMethods": ["generateContent"]}]
        })))
        .expect(1)
        .mount(&server)
        .await;
    let (gateway, credentials) = gateway(Provider::Gemini, &server);

    let models = gateway.list_models(&credentials).await.unwrap();

    assert_eq!(models, vec![model("gemini-2.5-flash", None), model("gemini-2.5-pro", None)]);
    for request in received(&server).await {
        assert!(!request.url.as_str().contains(KEY), "key in URL: {}", request.url);
    }
}

#[tokio::test]
async fn endless_gemini_pages_are_cut_off() {
    let server = MockServer::start().await;
    authed_get(Provider::Gemini, "/v1/models")
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "models": [{"name": "models/gemini-2.5-flash"}], "nextPageToken": "again"
        })))
        .expect(10)
        .mount(&server)
        .await;
    let (gateway, credentials) = gateway(Provider::Gemini, &server);

    let models = gateway.list_models(&credentials).await.unwrap();

    assert_eq!(models.len(), 10);
}

#[tokio::test]
async fn anthropic_pages_are_followed_with_after_id() {
    let server = MockServer::start().await;
    authed_get(Provider::Anthropic, "/v1/models")
        .and(query_param_is_missing("after_id"))
        .and(query_param("limit", "1000"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "data": [{"type": "model", "id": "claude-sonnet-4-5", "display_name": "Claude Sonnet 4.5",
                      "created_at": "2025-09-29T00:00:00Z"}],
            "has_more": true, "first_id": "claude-sonnet-4-5", "last_id": "claude-sonnet-4-5"
        })))
        .expect(1)
        .mount(&server)
        .await;
    authed_get(Provider::Anthropic, "/v1/models")
        .and(query_param("after_id", "claude-sonnet-4-5"))
        .respond_with(ResponseTemplate::new(200).set_body_json(models_body(Provider::Anthropic)))
        .expect(1)
        .mount(&server)
        .await;
    let (gateway, credentials) = gateway(Provider::Anthropic, &server);

    let models = gateway.list_models(&credentials).await.unwrap();

    assert_eq!(
        models,
        vec![model("claude-sonnet-4-5", Some(1_759_104_000)), model("claude-haiku-4-5-20251001", Some(1_760_486_400)),]
    );
}

#[tokio::test]
async fn azure_lists_deployments_with_the_version_that_lists_them() {
    let server = MockServer::start().await;
    authed_get(Provider::AzureOpenai, "/openai/deployments")
        .and(query_param("api-version", "2023-03-15-preview"))
        .respond_with(ResponseTemplate::new(200).set_body_json(models_body(Provider::AzureOpenai)))
        .expect(1)
        .mount(&server)
        .await;
    let (gateway, credentials) = gateway(Provider::AzureOpenai, &server);

    let models = gateway.list_models(&credentials).await.unwrap();

    assert_eq!(models, vec![model("prod-gpt4o", Some(1_722_988_800))]);
}

#[tokio::test]
async fn azure_falls_back_to_models_when_deployments_are_not_found() {
    let server = MockServer::start().await;
    authed_get(Provider::AzureOpenai, "/openai/deployments")
        .respond_with(
            ResponseTemplate::new(404)
                .set_body_json(json!({"error": {"code": "404", "message": "Resource not found"}})),
        )
        .expect(1)
        .mount(&server)
        .await;
    authed_get(Provider::AzureOpenai, "/openai/models")
        .and(query_param("api-version", AZURE_API_VERSION))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"object": "list", "data": [{
            "id": "gpt-4o-2024-08-06", "status": "succeeded", "created_at": 1_722_902_400,
            "object": "model", "lifecycle_status": "generally-available",
            "capabilities": {"chat_completion": true, "completion": false, "embeddings": false}
        }]})))
        .expect(1)
        .mount(&server)
        .await;
    let (gateway, credentials) = gateway(Provider::AzureOpenai, &server);

    let models = gateway.list_models(&credentials).await.unwrap();

    assert_eq!(models, vec![model("gpt-4o-2024-08-06", Some(1_722_902_400))]);
}

#[tokio::test]
async fn azure_does_not_fall_back_when_the_key_is_rejected() {
    let server = MockServer::start().await;
    authed_get(Provider::AzureOpenai, "/openai/deployments")
        .respond_with(ResponseTemplate::new(401).set_body_json(error_body(Provider::AzureOpenai, 401)))
        .expect(1)
        .mount(&server)
        .await;
    authed_get(Provider::AzureOpenai, "/openai/models")
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"data": []})))
        .expect(0)
        .mount(&server)
        .await;
    let (gateway, credentials) = gateway(Provider::AzureOpenai, &server);

    assert_eq!(gateway.list_models(&credentials).await, Err(ModelListError::KeyRejected));
}

#[tokio::test]
async fn together_also_accepts_the_openai_shape() {
    let body = json!({"object": "list", "data": [{"id": "Qwen/Qwen3-235B-A22B-fp8-tput", "created": 1_745_884_800}]});
    let result = list_answered(Provider::TogetherAi, ResponseTemplate::new(200).set_body_json(body)).await;
    assert_eq!(result, Ok(vec![model("Qwen/Qwen3-235B-A22B-fp8-tput", Some(1_745_884_800))]));
}

#[tokio::test]
async fn list_errors_never_carry_the_key_or_the_providers_body() {
    for provider in Provider::ALL {
        for status in [200, 400, 401, 404, 429, 500] {
            let response = ResponseTemplate::new(status).set_body_raw(html_page(), "text/html");
            if let Err(error) = list_answered(provider, response).await {
                assert_secret_free(&error.to_string(), &format!("{provider} {status}"));
                assert_secret_free(&format!("{error:?}"), &format!("{provider} {status} debug"));
            }
        }
    }
}
