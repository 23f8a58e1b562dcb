//! The price list shipped with the service: a pinned snapshot of LiteLLM's public
//! `model_prices_and_context_window.json` (`data/model_prices.json`, reduced to the chat,
//! completion and embedding models with per-token prices; its `version` names the PyPI
//! release it came from). Compiled in, parsed once.

use std::collections::HashMap;

use domain::cost::{PriceTable, TablePrice, TokenPrices};
use serde::Deserialize;

const SNAPSHOT: &str = include_str!("../data/model_prices.json");

#[derive(Deserialize)]
struct Snapshot {
    version: String,
    models: HashMap<String, Row>,
}

#[derive(Deserialize)]
struct Row {
    provider: String,
    input: f64,
    output: f64,
    cache_read: Option<f64>,
    cache_write: Option<f64>,
}

/// The pinned price list.
pub struct PinnedPriceTable {
    version: String,
    models: HashMap<String, Row>,
}

impl PinnedPriceTable {
    /// The snapshot compiled into the binary.
    pub fn load() -> Result<Self, serde_json::Error> {
        let snapshot: Snapshot = serde_json::from_str(SNAPSHOT)?;
        Ok(Self { version: snapshot.version, models: snapshot.models })
    }

    fn row(&self, name: &str) -> Option<(&String, &Row)> {
        self.models.get_key_value(name)
    }
}

impl PriceTable for PinnedPriceTable {
    /// The model as named, then lower-cased, then as `{provider}/{model}`, then without a
    /// `prefix/` (OpenRouter's `openai/gpt-4o`).
    fn lookup(&self, model: &str, provider: &str) -> Option<TablePrice> {
        let model = model.trim();
        let lower = model.to_ascii_lowercase();
        let mut names = vec![model.to_owned(), lower.clone()];
        let provider = provider.trim();
        if !provider.is_empty() {
            names.push(format!("{}/{lower}", provider.to_ascii_lowercase()));
        }
        if let Some((_, bare)) = lower.rsplit_once('/') {
            names.push(bare.to_owned());
        }
        let (name, row) = names.iter().find_map(|name| self.row(name))?;
        Some(TablePrice {
            model: name.clone(),
            provider: row.provider.clone(),
            prices: TokenPrices {
                input: row.input,
                output: row.output,
                cache_read: row.cache_read,
                cache_write: row.cache_write,
            },
        })
    }

    fn version(&self) -> String {
        self.version.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_snapshot_prices_the_default_judge_models() {
        let table = PinnedPriceTable::load().unwrap();
        assert!(table.version().starts_with("litellm-"));
        for model in ["gpt-5-mini", "claude-haiku-4-5", "gemini-2.5-flash", "gpt-4o"] {
            let price = table.lookup(model, "").unwrap_or_else(|| panic!("{model} is priced"));
            assert!(price.prices.input > 0.0 && price.prices.output > 0.0, "{model}");
        }
        let routed = table.lookup("openai/GPT-4o", "openrouter").expect("a routed name is priced");
        assert!(routed.model.ends_with("gpt-4o"), "{}", routed.model);
        assert_eq!(table.lookup("GPT-4O", "").unwrap().prices, table.lookup("gpt-4o", "").unwrap().prices);
        assert!(table.lookup("no-such-model-anywhere", "openai").is_none());
    }
}
