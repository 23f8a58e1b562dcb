//! Pricing one event, in the reference's order of precedence: the client's costs
//! (`passthrough`), the client's per-token prices (`custom`), a price table (`table`).

use serde_json::{Map, Number, Value, json};

use chrono::{DateTime, Utc};

use super::{PriceTable, ProjectPrice, TokenPrices, project_price};

/// Where a cost came from (`$ai_cost_model_source`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CostSource {
    /// The client sent the costs.
    Passthrough,
    /// The client sent per-token prices.
    Custom,
    /// The project's own prices.
    Project,
    /// The price list shipped with the service.
    Table,
}

impl CostSource {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Passthrough => "passthrough",
            Self::Custom => "custom",
            Self::Project => "project",
            Self::Table => "table",
        }
    }
}

/// How an event was priced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Priced {
    /// Its costs are stamped (or were sent).
    By(CostSource),
    /// It names a model no price is known for: no cost.
    ModelNotFound,
    /// Not something with a cost (no model, or not a generation or embedding).
    NotApplicable,
}

/// Costs a client may send; their sum is the total when it sent none.
const CLIENT_COSTS: [&str; 4] =
    ["$ai_input_cost_usd", "$ai_output_cost_usd", "$ai_request_cost_usd", "$ai_web_search_cost_usd"];
const TOTAL: &str = "$ai_total_cost_usd";

/// What a call of `model` (by `provider`) with these tokens cost at `at`, priced as an
/// ingested generation is: the project's `prices`, else `table`.
pub fn price_call(
    model: &str,
    provider: &str,
    (input_tokens, output_tokens): (u64, u64),
    at: DateTime<Utc>,
    prices: &[ProjectPrice],
    table: &dyn PriceTable,
) -> Option<(f64, CostSource)> {
    let mut properties = Map::new();
    properties.insert("$ai_model".into(), json!(model));
    properties.insert("$ai_provider".into(), json!(provider));
    properties.insert("$ai_input_tokens".into(), json!(input_tokens));
    properties.insert("$ai_output_tokens".into(), json!(output_tokens));
    match stamp_cost(&mut properties, at, prices, table) {
        Priced::By(source) => Some((number(&properties, TOTAL)?, source)),
        Priced::ModelNotFound | Priced::NotApplicable => None,
    }
}

/// Whether pricing `properties` may need a price list (the client sent neither costs nor
/// prices, and names a model).
pub fn needs_price_list(properties: &Map<String, Value>) -> bool {
    let sent = |key: &str| number(properties, key).is_some();
    !(CLIENT_COSTS.iter().any(|key| sent(key))
        || sent(TOTAL)
        || sent("$ai_input_token_price")
        || sent("$ai_output_token_price"))
        && text(properties, "$ai_model").is_some()
}

/// Prices `properties` of a `$ai_generation` or `$ai_embedding` that happened at `at` —
/// the client's costs, its prices, the project's `prices`, then `table` — and stamps the result
/// (`$ai_input_cost_usd`, `$ai_output_cost_usd`, `$ai_total_cost_usd`,
/// `$ai_model_cost_used`, `$ai_cost_model_source`, `$ai_cost_model_provider`, and for the
/// table its version), never overwriting a property the client sent.
pub fn stamp_cost(
    properties: &mut Map<String, Value>,
    at: DateTime<Utc>,
    prices: &[ProjectPrice],
    table: &dyn PriceTable,
) -> Priced {
    let sent: Vec<f64> = CLIENT_COSTS.iter().filter_map(|key| number(properties, key)).collect();
    if !sent.is_empty() || number(properties, TOTAL).is_some() {
        set_absent(properties, TOTAL, sent.iter().sum::<f64>());
        set_absent(properties, "$ai_cost_model_source", json!(CostSource::Passthrough.as_str()));
        return Priced::By(CostSource::Passthrough);
    }
    let provider = text(properties, "$ai_provider");
    let model = text(properties, "$ai_model");
    let client_input = number(properties, "$ai_input_token_price");
    let client_output = number(properties, "$ai_output_token_price");
    if client_input.is_some() || client_output.is_some() {
        let prices = TokenPrices {
            input: client_input.unwrap_or(0.0),
            output: client_output.unwrap_or(0.0),
            cache_read: number(properties, "$ai_cache_read_token_price"),
            cache_write: number(properties, "$ai_cache_write_token_price"),
        };
        let stamp = Stamp { prices, source: CostSource::Custom, model: model.clone(), provider: provider.clone() };
        stamp.write(properties, None);
        return Priced::By(CostSource::Custom);
    }
    let Some(model) = model else {
        return Priced::NotApplicable;
    };
    if let Some(own) = project_price(prices, &model, provider.as_deref(), at) {
        let stamp = Stamp { prices: own.prices, source: CostSource::Project, model: Some(model), provider };
        stamp.write(properties, None);
        return Priced::By(CostSource::Project);
    }
    let Some(found) = table.lookup(&model, provider.as_deref().unwrap_or_default()) else {
        return Priced::ModelNotFound;
    };
    let stamp = Stamp {
        prices: found.prices,
        source: CostSource::Table,
        model: Some(found.model),
        provider: Some(provider.unwrap_or(found.provider)),
    };
    stamp.write(properties, Some(table.version()));
    Priced::By(CostSource::Table)
}

/// Prices and where they came from, ready to be written.
struct Stamp {
    prices: TokenPrices,
    source: CostSource,
    model: Option<String>,
    provider: Option<String>,
}

impl Stamp {
    fn write(self, properties: &mut Map<String, Value>, table_version: Option<String>) {
        let tokens = |key: &str| number(properties, key).unwrap_or(0.0).max(0.0);
        let (input, output) = (tokens("$ai_input_tokens"), tokens("$ai_output_tokens"));
        let (cache_read, cache_write) =
            (tokens("$ai_cache_read_input_tokens"), tokens("$ai_cache_creation_input_tokens"));
        // Anthropic counts cached tokens apart from input tokens; the OpenAI-style APIs
        // count cache reads inside them.
        let anthropic = self.provider.as_deref().is_some_and(|p| p.eq_ignore_ascii_case("anthropic"));
        let uncached = if anthropic { input } else { (input - cache_read).max(0.0) };
        let prices = self.prices;
        let input_cost = uncached * prices.input
            + cache_read * prices.cache_read.unwrap_or(prices.input)
            + cache_write * prices.cache_write.unwrap_or(prices.input);
        let output_cost = output * prices.output;
        set_absent(properties, "$ai_input_cost_usd", input_cost);
        set_absent(properties, "$ai_output_cost_usd", output_cost);
        set_absent(properties, TOTAL, input_cost + output_cost);
        set_absent(properties, "$ai_cost_model_source", json!(self.source.as_str()));
        if let Some(model) = self.model {
            set_absent(properties, "$ai_model_cost_used", json!(model));
        }
        if let Some(provider) = self.provider {
            set_absent(properties, "$ai_cost_model_provider", json!(provider));
        }
        if let Some(version) = table_version {
            set_absent(properties, "$ai_cost_model_table_version", json!(version));
        }
    }
}

fn number(properties: &Map<String, Value>, key: &str) -> Option<f64> {
    match properties.get(key)? {
        Value::Number(n) => n.as_f64().filter(|n| n.is_finite()),
        Value::String(s) => s.trim().parse::<f64>().ok().filter(|n| n.is_finite()),
        _ => None,
    }
}

fn text(properties: &Map<String, Value>, key: &str) -> Option<String> {
    properties.get(key)?.as_str().map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned)
}

/// Sets `key` unless the client sent it (a number becomes a JSON number).
fn set_absent(properties: &mut Map<String, Value>, key: &str, value: impl Into<Stamped>) {
    if properties.get(key).is_some_and(|v| !v.is_null()) {
        return;
    }
    let value = match value.into() {
        Stamped::Number(n) => Number::from_f64(n).map_or(Value::Null, Value::Number),
        Stamped::Json(v) => v,
    };
    properties.insert(key.to_owned(), value);
}

enum Stamped {
    Number(f64),
    Json(Value),
}

impl From<f64> for Stamped {
    fn from(n: f64) -> Self {
        Self::Number(n)
    }
}

impl From<Value> for Stamped {
    fn from(v: Value) -> Self {
        Self::Json(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cost::{MockPriceTable, TablePrice};

    fn properties(value: Value) -> Map<String, Value> {
        value.as_object().unwrap().clone()
    }

    fn table_with_gpt() -> MockPriceTable {
        let mut table = MockPriceTable::new();
        table.expect_lookup().returning(|model, _| {
            (model == "gpt-4o").then(|| TablePrice {
                model: "gpt-4o".into(),
                provider: "openai".into(),
                prices: TokenPrices { input: 2.5e-6, output: 1e-5, cache_read: Some(1.25e-6), cache_write: None },
            })
        });
        table.expect_version().returning(|| "litellm-test".into());
        table
    }

    fn close(value: &Value, expected: f64) -> bool {
        value.as_f64().is_some_and(|v| (v - expected).abs() < 1e-12)
    }

    #[test]
    fn the_clients_costs_are_kept_and_summed_when_it_sent_no_total() {
        let mut sent =
            properties(json!({"$ai_model": "gpt-4o", "$ai_input_cost_usd": 0.01, "$ai_output_cost_usd": "0.02"}));
        assert_eq!(stamp_cost(&mut sent, Utc::now(), &[], &MockPriceTable::new()), Priced::By(CostSource::Passthrough));
        assert!(close(&sent["$ai_total_cost_usd"], 0.03));
        assert_eq!(sent["$ai_input_cost_usd"], json!(0.01));
        assert_eq!(sent["$ai_cost_model_source"], "passthrough");
        let mut total_only = properties(json!({"$ai_total_cost_usd": 0.5, "$ai_cost_model_source": "mine"}));
        stamp_cost(&mut total_only, Utc::now(), &[], &MockPriceTable::new());
        assert_eq!(
            (total_only["$ai_total_cost_usd"].clone(), total_only["$ai_cost_model_source"].clone()),
            (json!(0.5), json!("mine"))
        );
    }

    #[test]
    fn the_clients_prices_times_its_tokens_with_cache_reads_inside_openai_input() {
        let mut sent = properties(json!({"$ai_model": "my-model", "$ai_provider": "openai", "$ai_input_tokens": 1000,
            "$ai_output_tokens": 100, "$ai_cache_read_input_tokens": 400, "$ai_input_token_price": 1e-6,
            "$ai_output_token_price": 2e-6, "$ai_cache_read_token_price": 5e-7}));
        assert_eq!(stamp_cost(&mut sent, Utc::now(), &[], &MockPriceTable::new()), Priced::By(CostSource::Custom));
        assert!(close(&sent["$ai_input_cost_usd"], 600.0 * 1e-6 + 400.0 * 5e-7));
        assert!(close(&sent["$ai_output_cost_usd"], 100.0 * 2e-6));
        assert!(close(&sent["$ai_total_cost_usd"], 600.0 * 1e-6 + 400.0 * 5e-7 + 100.0 * 2e-6));
        assert_eq!(sent["$ai_cost_model_source"], "custom");
        assert_eq!(sent["$ai_model_cost_used"], "my-model");
    }

    #[test]
    fn anthropic_counts_cache_tokens_apart() {
        let mut sent = properties(json!({"$ai_model": "claude", "$ai_provider": "anthropic", "$ai_input_tokens": 100,
            "$ai_cache_read_input_tokens": 1000, "$ai_cache_creation_input_tokens": 10,
            "$ai_input_token_price": 3e-6, "$ai_cache_read_token_price": 3e-7, "$ai_cache_write_token_price": 3.75e-6}));
        stamp_cost(&mut sent, Utc::now(), &[], &MockPriceTable::new());
        assert!(close(&sent["$ai_input_cost_usd"], 100.0 * 3e-6 + 1000.0 * 3e-7 + 10.0 * 3.75e-6));
    }

    #[test]
    fn the_projects_price_comes_before_the_table() {
        let at = Utc::now();
        let own = ProjectPrice {
            id: uuid::Uuid::now_v7(),
            project: crate::ProjectId(1),
            model: crate::cost::ModelMatch::parse("gpt-4o", false).unwrap(),
            provider: None,
            prices: TokenPrices { input: 1e-3, output: 0.0, cache_read: None, cache_write: None },
            valid_from: at - chrono::Duration::days(1),
            created_at: at,
            updated_at: at,
        };
        let mut sent = properties(json!({"$ai_model": "gpt-4o", "$ai_input_tokens": 10}));
        assert_eq!(stamp_cost(&mut sent, at, &[own], &table_with_gpt()), Priced::By(CostSource::Project));
        assert!(close(&sent["$ai_total_cost_usd"], 10.0 * 1e-3));
        assert_eq!(sent["$ai_cost_model_source"], "project");
    }

    #[test]
    fn the_table_prices_a_known_model_and_says_so_and_an_unknown_one_gets_nothing() {
        let mut known = properties(json!({"$ai_model": "gpt-4o", "$ai_input_tokens": 10, "$ai_output_tokens": 5}));
        assert_eq!(stamp_cost(&mut known, Utc::now(), &[], &table_with_gpt()), Priced::By(CostSource::Table));
        assert!(close(&known["$ai_total_cost_usd"], 10.0 * 2.5e-6 + 5.0 * 1e-5));
        assert_eq!(known["$ai_cost_model_source"], "table");
        assert_eq!(known["$ai_cost_model_provider"], "openai");
        assert_eq!(known["$ai_model_cost_used"], "gpt-4o");
        assert_eq!(known["$ai_cost_model_table_version"], "litellm-test");

        let mut unknown = properties(json!({"$ai_model": "mystery-1", "$ai_input_tokens": 10}));
        assert_eq!(stamp_cost(&mut unknown, Utc::now(), &[], &table_with_gpt()), Priced::ModelNotFound);
        assert!(!unknown.contains_key("$ai_total_cost_usd"));
        let mut no_model = properties(json!({"$ai_input_tokens": 10}));
        assert_eq!(stamp_cost(&mut no_model, Utc::now(), &[], &table_with_gpt()), Priced::NotApplicable);
    }
}
