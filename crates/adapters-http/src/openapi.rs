//! The OpenAPI document, generated from the handlers' annotations.

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::error::ErrorBody;
use crate::models::{ModelDto, ModelsDto};
use crate::pagination::Paginated;
use crate::provider_keys::{self, CreatedByDto, KeyCheckDto, ProviderKeyDto};
use crate::{health, models};

/// The API's OpenAPI 3.1 document.
#[derive(OpenApi)]
#[openapi(
    info(title = "llm-analytics", description = "LLM analytics management API: provider keys, models, evaluations."),
    paths(
        health::health,
        health::ready,
        provider_keys::list_provider_keys,
        provider_keys::create_provider_key,
        provider_keys::retrieve_provider_key,
        provider_keys::replace_provider_key,
        provider_keys::update_provider_key,
        provider_keys::delete_provider_key,
        provider_keys::validate_provider_key,
        provider_keys::check_provider_key,
        models::list_models,
    ),
    components(schemas(ErrorBody, ProviderKeyDto, CreatedByDto, KeyCheckDto, ModelsDto, ModelDto, Paginated<ProviderKeyDto>)),
    modifiers(&BearerAuth)
)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "personal_api_key",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("A personal API key (`phx_…`) with the scopes the endpoint names."))
                    .build(),
            ),
        );
    }
}
