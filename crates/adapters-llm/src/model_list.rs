//! The model-list answers of each provider, parsed into `ListedModel`s.

use chrono::DateTime;
use domain::llm::ListedModel;
use domain::provider_key::Provider;
use serde::{Deserialize, Deserializer};
use serde_json::Value;

/// One page of a model list and how to ask for the next one.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct ModelPage {
    pub models: Vec<ListedModel>,
    /// The query parameter (name, value) that fetches the next page, if there is one.
    pub next: Option<(&'static str, String)>,
}

/// The body was not the provider's model-list shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct UnexpectedShape;

/// Parses one page of `provider`'s model list. Azure answers (deployments or models) share
/// one shape.
pub(crate) fn parse_page(provider: Provider, body: &[u8]) -> Result<ModelPage, UnexpectedShape> {
    match provider {
        Provider::Openai | Provider::Openrouter | Provider::Fireworks => {
            let list: DataList<OpenAiModel> = parse(body)?;
            Ok(ModelPage::last(list.data.into_iter().filter_map(OpenAiModel::listed)))
        }
        // Together, and some OpenAI-compatible servers, answer a bare array.
        Provider::TogetherAi | Provider::OpenaiCompatible => {
            let list: TogetherList = parse(body)?;
            let models = match list {
                TogetherList::Bare(models) | TogetherList::Wrapped { data: models } => models,
            };
            Ok(ModelPage::last(models.into_iter().filter_map(OpenAiModel::listed)))
        }
        Provider::Anthropic => {
            let page: AnthropicPage = parse(body)?;
            let next = match (page.has_more, page.last_id) {
                (true, Some(last_id)) => Some(("after_id", last_id)),
                _ => None,
            };
            let models = page.data.into_iter().filter_map(AnthropicModel::listed).collect();
            Ok(ModelPage { models, next })
        }
        Provider::Gemini => {
            let page: GeminiPage = parse(body)?;
            let next = page.next_page_token.filter(|token| !token.is_empty()).map(|token| ("pageToken", token));
            let models = page.models.into_iter().filter_map(GeminiModel::listed).collect();
            Ok(ModelPage { models, next })
        }
        Provider::AzureOpenai => {
            let list: DataList<AzureItem> = parse(body)?;
            Ok(ModelPage::last(list.data.into_iter().filter_map(AzureItem::listed)))
        }
    }
}

impl ModelPage {
    fn last(models: impl Iterator<Item = ListedModel>) -> Self {
        Self { models: models.collect(), next: None }
    }
}

fn parse<'a, T: Deserialize<'a>>(body: &'a [u8]) -> Result<T, UnexpectedShape> {
    serde_json::from_slice(body).map_err(|_| UnexpectedShape)
}

/// `{"data": [...]}`: OpenAI and the OpenAI-compatible providers, Azure.
#[derive(Deserialize)]
struct DataList<T> {
    data: Vec<T>,
}

/// Together answers a bare array; its OpenAI-compatible shape is accepted too.
#[derive(Deserialize)]
#[serde(untagged)]
enum TogetherList {
    Bare(Vec<OpenAiModel>),
    Wrapped { data: Vec<OpenAiModel> },
}

/// `{"id": "gpt-4o", "created": 1715367049, ...}`; Fireworks ids are whole paths.
#[derive(Deserialize)]
struct OpenAiModel {
    id: Option<String>,
    #[serde(default, deserialize_with = "lenient_unix_seconds")]
    created: Option<i64>,
}

impl OpenAiModel {
    fn listed(self) -> Option<ListedModel> {
        listed(self.id, self.created)
    }
}

/// `{"data": [{"id", "created_at": RFC 3339}], "has_more", "last_id"}`.
#[derive(Deserialize)]
struct AnthropicPage {
    data: Vec<AnthropicModel>,
    #[serde(default)]
    has_more: bool,
    last_id: Option<String>,
}

#[derive(Deserialize)]
struct AnthropicModel {
    id: Option<String>,
    created_at: Option<String>,
}

impl AnthropicModel {
    fn listed(self) -> Option<ListedModel> {
        let created =
            self.created_at.as_deref().and_then(|at| DateTime::parse_from_rfc3339(at).ok()).map(|at| at.timestamp());
        listed(self.id, created)
    }
}

/// `{"models": [{"name": "models/gemini-2.5-flash", ...}], "nextPageToken"}`. Google omits
/// an empty list, so `{}` is an empty page; any other field means it is not this answer.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct GeminiPage {
    #[serde(default)]
    models: Vec<GeminiModel>,
    next_page_token: Option<String>,
}

#[derive(Deserialize)]
struct GeminiModel {
    name: Option<String>,
}

impl GeminiModel {
    fn listed(self) -> Option<ListedModel> {
        let id = self.name.map(|name| name.strip_prefix("models/").map(str::to_owned).unwrap_or(name));
        listed(id, None)
    }
}

/// A deployment (`{"id": "my-gpt4o", "model": "gpt-4o", "created_at": 1722988800}`) or a
/// model (`{"id": "gpt-4o-2024-08-06", "created_at": ...}`) of an Azure resource.
#[derive(Deserialize)]
struct AzureItem {
    id: Option<String>,
    #[serde(default, deserialize_with = "lenient_unix_seconds")]
    created_at: Option<i64>,
}

impl AzureItem {
    fn listed(self) -> Option<ListedModel> {
        listed(self.id, self.created_at)
    }
}

fn listed(id: Option<String>, created: Option<i64>) -> Option<ListedModel> {
    id.filter(|id| !id.is_empty()).map(|id| ListedModel { id, created })
}

/// Unix seconds given as an integer or a float; anything else counts as unknown rather
/// than spoiling the whole list.
fn lenient_unix_seconds<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<i64>, D::Error> {
    let value = Option::<Value>::deserialize(deserializer)?;
    // Fractions of a second are dropped.
    let seconds = value.and_then(|v| v.as_i64().or_else(|| v.as_f64().map(|f| f as i64)));
    Ok(seconds)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model(id: &str, created: Option<i64>) -> ListedModel {
        ListedModel { id: id.to_owned(), created }
    }

    #[test]
    fn anthropic_created_at_becomes_unix_seconds_and_has_more_pages() {
        let body = br#"{"data":[{"type":"model","id":"claude-haiku-4-5","display_name":"Claude Haiku 4.5","created_at":"2025-10-15T00:00:00Z"}],"has_more":true,"first_id":"claude-haiku-4-5","last_id":"claude-haiku-4-5"}"#;
        let page = parse_page(Provider::Anthropic, body).unwrap();
        assert_eq!(page.models, vec![model("claude-haiku-4-5", Some(1_760_486_400))]);
        assert_eq!(page.next, Some(("after_id", "claude-haiku-4-5".to_owned())));
    }

    #[test]
    fn entries_without_an_id_are_skipped_and_odd_timestamps_are_unknown() {
        let body = br#"{"data":[{"id":"a","created":"yesterday"},{"object":"model"},{"id":"b","created":1.5e9}]}"#;
        let page = parse_page(Provider::Openai, body).unwrap();
        assert_eq!(page.models, vec![model("a", None), model("b", Some(1_500_000_000))]);
    }

    #[test]
    fn an_empty_gemini_answer_is_an_empty_last_page() {
        assert_eq!(parse_page(Provider::Gemini, b"{}"), Ok(ModelPage::default()));
    }

    #[test]
    fn a_body_of_another_shape_is_refused() {
        assert_eq!(parse_page(Provider::Openai, b"[]"), Err(UnexpectedShape));
        assert_eq!(parse_page(Provider::Gemini, b"<html></html>"), Err(UnexpectedShape));
    }
}
