//! `check_key` against fake providers speaking each provider's wire format.

mod common;

use adapters_llm::HttpLlmGateway;
use common::*;
use domain::llm::{KeyCheck, LlmGateway};
use domain::provider_key::{ApiVersion, CredentialField, KeyState, Provider, ProviderCredentials};
use serde_json::json;
use wiremock::matchers::{any, method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

/// What a bad key looks like, for a refusal whose message is `error_body`'s; Azure and
/// OpenAI-compatible endpoints blame the key field, and an endpoint's own words are told
/// (without the key it echoes).
fn invalid_key(provider: Provider, status: u16) -> KeyCheck {
    match provider {
        Provider::AzureOpenai => KeyCheck::invalid("Invalid API key", Some(CredentialField::ApiKey)),
        Provider::OpenaiCompatible => KeyCheck::invalid(
            format!("The endpoint refused the key: {}", echoed_message(status)),
            Some(CredentialField::ApiKey),
        ),
        _ => KeyCheck::invalid("Invalid API key", None),
    }
}

/// `error_body`'s message as an OpenAI-compatible endpoint's check tells it.
fn echoed_message(status: u16) -> String {
    format!("Request failed with status {status}. Incorrect API key provided: [redacted]")
}

/// The field an endpoint problem blames.
fn endpoint_field(provider: Provider) -> Option<CredentialField> {
    match provider {
        Provider::AzureOpenai => Some(CredentialField::AzureEndpoint),
        Provider::OpenaiCompatible => Some(CredentialField::BaseUrl),
        _ => None,
    }
}

/// Checks `provider`'s key against a server answering the check call with `response`.
async fn check_answered(provider: Provider, response: ResponseTemplate) -> KeyCheck {
    let server = MockServer::start().await;
    check_call(provider).respond_with(response).expect(1).mount(&server).await;
    let (gateway, credentials) = gateway(provider, &server);
    gateway.check_key(&credentials).await
}

#[tokio::test]
async fn a_working_key_is_ok_with_every_provider() {
    for provider in Provider::ALL {
        let response = ResponseTemplate::new(200).set_body_json(check_ok_body(provider));
        assert_eq!(check_answered(provider, response).await, KeyCheck::ok(), "{provider}");
    }
}

#[tokio::test]
async fn unauthorized_and_forbidden_mean_an_invalid_key_with_every_provider() {
    for provider in Provider::ALL {
        for status in [401, 403] {
            let response = ResponseTemplate::new(status).set_body_json(error_body(provider, status));
            let check = check_answered(provider, response).await;
            assert_eq!(check, invalid_key(provider, status), "{provider} {status}");
        }
    }
}

#[tokio::test]
async fn too_many_requests_is_a_rate_limit_error_with_every_provider() {
    for provider in Provider::ALL {
        let body =
            json!({"error": {"message": "Rate limit reached", "type": "requests", "code": "rate_limit_exceeded"}});
        let check = check_answered(provider, ResponseTemplate::new(429).set_body_json(body)).await;
        let expected = match provider {
            Provider::OpenaiCompatible => "Rate limited, please try again later (Rate limit reached)",
            _ => "Rate limited, please try again later",
        };
        assert_eq!(check, KeyCheck::error(expected, None), "{provider}");
    }
}

#[tokio::test]
async fn a_server_error_is_an_error_naming_the_status_where_the_spec_says_so() {
    for provider in Provider::ALL {
        let response = ResponseTemplate::new(500).set_body_json(error_body(provider, 500));
        let expected = match provider {
            Provider::Openrouter | Provider::TogetherAi => "Unexpected response status: 500".to_owned(),
            Provider::OpenaiCompatible => format!("The endpoint answered status 500: {}", echoed_message(500)),
            _ => "Validation failed, please try again".to_owned(),
        };
        let check = check_answered(provider, response).await;
        assert_eq!(check, KeyCheck::error(expected, None), "{provider}");
    }
}

#[tokio::test]
async fn a_slow_provider_times_out_with_every_provider() {
    for provider in Provider::ALL {
        let server = MockServer::start().await;
        check_call(provider)
            .respond_with(ResponseTemplate::new(200).set_body_json(check_ok_body(provider)).set_delay(LONG_DELAY))
            .mount(&server)
            .await;
        let (gateway, credentials) = gateway_with(provider, &server, short_timeout());
        let check = gateway.check_key(&credentials).await;
        assert_eq!(check, KeyCheck::error("Request timed out, please try again", None), "{provider}");
    }
}

#[tokio::test]
async fn an_unreachable_provider_is_a_connection_error_naming_it() {
    for provider in Provider::ALL {
        let (gateway, credentials) = gateway_at(provider, &refused_root(), short_timeout());
        let check = gateway.check_key(&credentials).await;
        let expected =
            KeyCheck::error(format!("Could not connect to {}", provider.display_name()), endpoint_field(provider));
        assert_eq!(check, expected, "{provider}");
    }
}

#[tokio::test]
async fn an_html_page_is_an_unexpected_response_naming_the_provider() {
    for provider in Provider::ALL {
        let response = ResponseTemplate::new(200).set_body_raw(html_page(), "text/html; charset=utf-8");
        let check = check_answered(provider, response).await;
        let expected = KeyCheck::error(
            format!("Unexpected response from {} — check the endpoint", provider.display_name()),
            endpoint_field(provider),
        );
        assert_eq!(check, expected, "{provider}");
    }
}

#[tokio::test]
async fn a_non_json_body_is_an_unexpected_response() {
    let response = ResponseTemplate::new(200).set_body_string("OK");
    let check = check_answered(Provider::Openai, response).await;
    assert_eq!(check, KeyCheck::error("Unexpected response from OpenAI — check the endpoint", None));
}

#[tokio::test]
async fn a_redirect_is_not_followed_and_the_key_never_reaches_the_other_host() {
    for provider in Provider::ALL {
        let elsewhere = MockServer::start().await;
        Mock::given(any())
            .respond_with(ResponseTemplate::new(200).set_body_json(check_ok_body(provider)))
            .expect(0)
            .mount(&elsewhere)
            .await;
        let server = MockServer::start().await;
        let location = format!("{}{}", elsewhere.uri(), check_path(provider));
        check_call(provider)
            .respond_with(ResponseTemplate::new(302).insert_header("location", location.as_str()))
            .expect(1)
            .mount(&server)
            .await;
        let (gateway, credentials) = gateway(provider, &server);

        let check = gateway.check_key(&credentials).await;

        assert_eq!(check.state, KeyState::Error, "{provider}: {check:?}");
        assert!(received(&elsewhere).await.is_empty(), "{provider}: redirect followed");
    }
}

#[tokio::test]
async fn gemini_answers_a_bad_key_with_400_which_means_invalid() {
    let response = ResponseTemplate::new(400).set_body_json(gemini_bad_key_body());
    let check = check_answered(Provider::Gemini, response).await;
    assert_eq!(check, KeyCheck::invalid("Invalid API key", None));
}

#[tokio::test]
async fn gemini_gets_the_key_in_a_header_and_never_in_the_url() {
    let server = MockServer::start().await;
    check_call(Provider::Gemini)
        .respond_with(ResponseTemplate::new(200).set_body_json(check_ok_body(Provider::Gemini)))
        .expect(1)
        .mount(&server)
        .await;
    let (gateway, credentials) = gateway(Provider::Gemini, &server);

    assert_eq!(gateway.check_key(&credentials).await, KeyCheck::ok());

    let requests = received(&server).await;
    let request = requests.first().expect("one request");
    assert_eq!(request.headers.get("x-goog-api-key").unwrap(), KEY);
    assert!(!request.url.as_str().contains(KEY), "key in URL: {}", request.url);
    assert!(request.url.query_pairs().all(|(name, _)| name != "key"));
}

#[tokio::test]
async fn openrouter_is_checked_with_key_because_models_needs_no_auth() {
    let server = MockServer::start().await;
    check_call(Provider::Openrouter)
        .respond_with(ResponseTemplate::new(200).set_body_json(check_ok_body(Provider::Openrouter)))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1/models"))
        .respond_with(ResponseTemplate::new(200).set_body_json(models_body(Provider::Openrouter)))
        .expect(0)
        .mount(&server)
        .await;
    let (gateway, credentials) = gateway(Provider::Openrouter, &server);

    assert_eq!(gateway.check_key(&credentials).await, KeyCheck::ok());
}

#[tokio::test]
async fn openrouter_without_credit_is_an_error_not_an_invalid_key() {
    let body = json!({"error": {"message": "Insufficient credits. Add more using https://openrouter.ai/credits", "code": 402}});
    let check = check_answered(Provider::Openrouter, ResponseTemplate::new(402).set_body_json(body)).await;
    assert_eq!(check, KeyCheck::error("The key is valid but has no credit left", None));
}

#[tokio::test]
async fn openai_without_quota_is_an_error_not_a_rate_limit() {
    let body = json!({"error": {
        "message": "You exceeded your current quota, please check your plan and billing details.",
        "type": "insufficient_quota", "param": null, "code": "insufficient_quota"
    }});
    let check = check_answered(Provider::Openai, ResponseTemplate::new(429).set_body_json(body)).await;
    assert_eq!(check, KeyCheck::error("The key is valid but has no quota left", None));
}

#[tokio::test]
async fn an_openai_key_without_the_models_scope_is_an_error_not_invalid() {
    for status in [401, 403] {
        let body = json!({"error": {
            "message": "You have insufficient permissions for this operation. Missing scopes: api.model.read. Check that you have the correct role in your organization.",
            "type": "invalid_request_error", "param": null, "code": null
        }});
        let check = check_answered(Provider::Openai, ResponseTemplate::new(status).set_body_json(body)).await;
        assert_eq!(check, KeyCheck::error("The key lacks the Models:Read permission", None), "{status}");
    }
}

#[tokio::test]
async fn anthropic_overloaded_is_an_error_and_the_version_header_is_sent() {
    // `check_call` only matches with `x-api-key` and `anthropic-version: 2023-06-01`.
    let body = json!({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}});
    let check = check_answered(Provider::Anthropic, ResponseTemplate::new(529).set_body_json(body)).await;
    assert_eq!(check, KeyCheck::error("Anthropic is overloaded, try again later", None));
}

#[tokio::test]
async fn an_unknown_azure_endpoint_blames_the_endpoint() {
    let body = json!({"error": {"code": "404", "message": "Resource not found"}});
    let check = check_answered(Provider::AzureOpenai, ResponseTemplate::new(404).set_body_json(body)).await;
    assert_eq!(
        check,
        KeyCheck::invalid("Azure endpoint not found — check the URL", Some(CredentialField::AzureEndpoint))
    );
}

#[tokio::test]
async fn azure_gets_the_key_in_api_key_and_the_keys_own_api_version() {
    let server = MockServer::start().await;
    authed_get(Provider::AzureOpenai, "/openai/models")
        .and(query_param("api-version", "2025-04-01-preview"))
        .respond_with(ResponseTemplate::new(200).set_body_json(check_ok_body(Provider::AzureOpenai)))
        .expect(1)
        .mount(&server)
        .await;
    let (gateway, mut credentials) = gateway(Provider::AzureOpenai, &server);
    let version = ApiVersion::parse(Some("2025-04-01-preview")).unwrap();
    credentials.azure.as_mut().unwrap().api_version = version;

    assert_eq!(gateway.check_key(&credentials).await, KeyCheck::ok());

    let requests = received(&server).await;
    let request = requests.first().expect("one request");
    assert_eq!(request.headers.get("api-key").unwrap(), KEY);
    assert!(request.headers.get("authorization").is_none());
}

#[tokio::test]
async fn an_azure_key_without_an_endpoint_is_invalid_on_the_endpoint() {
    let gateway = HttpLlmGateway::new(short_timeout()).unwrap();
    let credentials = ProviderCredentials { azure: None, ..credentials(Provider::AzureOpenai, "http://127.0.0.1:1") };
    let check = gateway.check_key(&credentials).await;
    assert_eq!(check.state, KeyState::Invalid);
    assert_eq!(check.field, Some(CredentialField::AzureEndpoint));
}

#[tokio::test]
async fn a_key_that_cannot_be_a_header_is_invalid_without_a_call() {
    let server = MockServer::start().await;
    Mock::given(any()).respond_with(ResponseTemplate::new(200)).expect(0).mount(&server).await;
    let (gateway, mut credentials) = gateway(Provider::Openai, &server);
    credentials.api_key = "sk-line\nbreak".into();
    assert_eq!(gateway.check_key(&credentials).await, KeyCheck::invalid("Invalid API key", None));
}

#[tokio::test]
async fn messages_never_carry_the_key_or_the_providers_body() {
    let answers = || {
        [400, 401, 402, 403, 404, 429, 500, 529]
            .into_iter()
            .map(|status| (status, ResponseTemplate::new(status).set_body_string(html_page())))
            .chain([
                (200, ResponseTemplate::new(200).set_body_raw(html_page(), "text/html")),
                (200, ResponseTemplate::new(200).set_body_string(format!("not json {KEY}"))),
            ])
            .collect::<Vec<_>>()
    };
    for provider in Provider::ALL {
        for (status, response) in answers() {
            let check = check_answered(provider, response).await;
            let message = check.message.unwrap_or_default();
            assert_secret_free(&message, &format!("{provider} {status}"));
        }
        for status in [401, 403, 429, 500] {
            let response = ResponseTemplate::new(status).set_body_json(error_body(provider, status));
            let message = check_answered(provider, response).await.message.unwrap_or_default();
            if provider == Provider::OpenaiCompatible {
                // An endpoint's own words are told, never the secrets they echo.
                assert!(!message.contains(KEY) && !message.contains("SECRET"), "{provider} {status}: {message}");
            } else {
                assert_secret_free(&message, &format!("{provider} {status} json"));
            }
        }
    }
}

#[tokio::test]
async fn an_azure_endpoint_outside_the_policy_is_refused_without_a_call() {
    let server = MockServer::start().await;
    Mock::given(any()).respond_with(ResponseTemplate::new(200)).expect(0).mount(&server).await;
    // A key saved while private endpoints were allowed, checked once they are not.
    let gateway = HttpLlmGateway::new(short_timeout().allowing_private_endpoints(false)).unwrap();
    let credentials = credentials(Provider::AzureOpenai, &server.uri());

    let check = gateway.check_key(&credentials).await;

    assert_eq!(check, KeyCheck::invalid("azure_endpoint must use https://.", Some(CredentialField::AzureEndpoint)));
}
