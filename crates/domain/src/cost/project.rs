//! A project's own model prices (`llm_analytics/model_prices/`): they take precedence over
//! the shipped table for the models they match, from their `valid_from` on.

use chrono::{DateTime, Utc};

use super::TokenPrices;
use crate::ProjectId;
use crate::evaluation::conditions::{MAX_PATTERN_CHARS, REGEX_SIZE_LIMIT, regex_rule};
use crate::invalid::{FieldError, Rule};

/// A model price's id.
pub type ModelPriceId = uuid::Uuid;

/// Which models a price is for.
#[derive(Debug, Clone)]
pub enum ModelMatch {
    /// The model's name, ignoring case.
    Exact(String),
    /// A regular expression the whole name is searched with.
    Regex(regex::Regex),
}

impl PartialEq for ModelMatch {
    fn eq(&self, other: &Self) -> bool {
        self.pattern() == other.pattern() && self.is_regex() == other.is_regex()
    }
}

impl ModelMatch {
    /// The longest model name or pattern accepted.
    pub const MAX_CHARS: usize = 200;

    /// `model` as sent, with `match` (`exact`, the default, or `regex`).
    pub fn parse(model: &str, regex: bool) -> Result<Self, FieldError> {
        let model = model.trim();
        if model.is_empty() {
            return Err(FieldError::new("model", Rule::Blank));
        }
        let max = if regex { MAX_PATTERN_CHARS.min(Self::MAX_CHARS) } else { Self::MAX_CHARS };
        if model.chars().count() > max {
            return Err(FieldError::new("model", Rule::TooLong { max }));
        }
        if !regex {
            return Ok(Self::Exact(model.to_owned()));
        }
        regex::RegexBuilder::new(model)
            .size_limit(REGEX_SIZE_LIMIT)
            .build()
            .map(Self::Regex)
            .map_err(|error| FieldError::new("model", regex_rule(&error)))
    }

    pub fn pattern(&self) -> &str {
        match self {
            Self::Exact(model) => model,
            Self::Regex(regex) => regex.as_str(),
        }
    }

    pub fn is_regex(&self) -> bool {
        matches!(self, Self::Regex(_))
    }

    pub fn matches(&self, model: &str) -> bool {
        match self {
            Self::Exact(name) => name.eq_ignore_ascii_case(model.trim()),
            Self::Regex(regex) => regex.is_match(model),
        }
    }
}

/// A stored project price.
#[derive(Debug, Clone, PartialEq)]
pub struct ProjectPrice {
    pub id: ModelPriceId,
    pub project: ProjectId,
    pub model: ModelMatch,
    /// Only events of this `$ai_provider` (any case); `None`: any provider.
    pub provider: Option<String>,
    pub prices: TokenPrices,
    pub valid_from: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl ProjectPrice {
    fn applies(&self, model: &str, provider: Option<&str>, at: DateTime<Utc>) -> bool {
        self.valid_from <= at
            && self.model.matches(model)
            && self.provider.as_deref().is_none_or(|wanted| provider.is_some_and(|p| p.eq_ignore_ascii_case(wanted)))
    }
}

/// The price among `prices` for `model` (of `provider`) at `at`: the matching one valid
/// latest; an exact name wins over a pattern valid from the same time.
pub fn project_price<'a>(
    prices: &'a [ProjectPrice],
    model: &str,
    provider: Option<&str>,
    at: DateTime<Utc>,
) -> Option<&'a ProjectPrice> {
    prices
        .iter()
        .filter(|price| price.applies(model, provider, at))
        .max_by(|a, b| a.valid_from.cmp(&b.valid_from).then(b.model.is_regex().cmp(&a.model.is_regex())))
}

/// A price to store, every field checked.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelPriceSpec {
    pub model: ModelMatch,
    pub provider: Option<String>,
    pub prices: TokenPrices,
    pub valid_from: Option<DateTime<Utc>>,
}

/// A price as sent: each field parsed by the adapter, `None` when not sent.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ModelPriceInput {
    pub model: Option<Result<String, FieldError>>,
    pub regex: Option<bool>,
    pub provider: Option<Option<String>>,
    pub input_cost_per_token: Option<Result<f64, FieldError>>,
    pub output_cost_per_token: Option<Result<f64, FieldError>>,
    pub cache_read_cost_per_token: Option<Result<Option<f64>, FieldError>>,
    pub cache_write_cost_per_token: Option<Result<Option<f64>, FieldError>>,
    pub valid_from: Option<Result<DateTime<Utc>, FieldError>>,
}

impl ModelPriceInput {
    /// The whole price: `stored` filled in for what was not sent (an update), else the
    /// required fields checked (a create).
    pub fn spec(self, stored: Option<&ProjectPrice>) -> Result<ModelPriceSpec, FieldError> {
        let required = |field: &str| FieldError::new(field, Rule::Required);
        let regex = self.regex.or(stored.map(|s| s.model.is_regex())).unwrap_or(false);
        let model = match (self.model.transpose()?, stored) {
            (Some(model), _) => ModelMatch::parse(&model, regex)?,
            (None, Some(stored)) => ModelMatch::parse(stored.model.pattern(), regex)?,
            (None, None) => return Err(required("model")),
        };
        let price = |sent: Option<Result<f64, FieldError>>, stored: Option<f64>, field: &str| match sent {
            Some(sent) => sent,
            None => stored.ok_or_else(|| required(field)),
        };
        let prices = TokenPrices {
            input: price(self.input_cost_per_token, stored.map(|s| s.prices.input), "input_cost_per_token")?,
            output: price(self.output_cost_per_token, stored.map(|s| s.prices.output), "output_cost_per_token")?,
            cache_read: match self.cache_read_cost_per_token {
                Some(sent) => sent?,
                None => stored.and_then(|s| s.prices.cache_read),
            },
            cache_write: match self.cache_write_cost_per_token {
                Some(sent) => sent?,
                None => stored.and_then(|s| s.prices.cache_write),
            },
        };
        let provider = match self.provider {
            Some(provider) => provider.map(|p| p.trim().to_owned()).filter(|p| !p.is_empty()),
            None => stored.and_then(|s| s.provider.clone()),
        };
        if provider.as_ref().is_some_and(|p| p.chars().count() > ModelMatch::MAX_CHARS) {
            return Err(FieldError::new("provider", Rule::TooLong { max: ModelMatch::MAX_CHARS }));
        }
        let valid_from = self.valid_from.transpose()?.or(stored.map(|s| s.valid_from));
        Ok(ModelPriceSpec { model, provider, prices, valid_from })
    }
}

/// A per-token price as sent: a finite number ≥ 0.
pub fn parse_token_price(field: &str, sent: &serde_json::Value) -> Result<f64, FieldError> {
    match sent.as_f64() {
        Some(price) if (0.0..=1.0).contains(&price) => Ok(price),
        Some(_) => Err(FieldError::new(field, Rule::PriceOutOfRange)),
        None => Err(FieldError::new(field, Rule::NumberRequired)),
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn price(model: ModelMatch, provider: Option<&str>, valid_from: i64) -> ProjectPrice {
        let at = Utc.timestamp_opt(valid_from, 0).unwrap();
        ProjectPrice {
            id: uuid::Uuid::now_v7(),
            project: ProjectId(1),
            model,
            provider: provider.map(str::to_owned),
            prices: TokenPrices { input: valid_from as f64, output: 0.0, cache_read: None, cache_write: None },
            valid_from: at,
            created_at: at,
            updated_at: at,
        }
    }

    #[test]
    fn the_price_valid_latest_that_matches_wins_and_exact_beats_a_pattern() {
        let prices = [
            price(ModelMatch::parse("gpt-4o", false).unwrap(), None, 100),
            price(ModelMatch::parse("^gpt-4o.*", true).unwrap(), None, 200),
            price(ModelMatch::parse("GPT-4O", false).unwrap(), Some("azure"), 300),
            price(ModelMatch::parse("gpt-4o", false).unwrap(), None, 200),
        ];
        let at = |t| Utc.timestamp_opt(t, 0).unwrap();
        assert_eq!(project_price(&prices, "gpt-4o", Some("openai"), at(150)).unwrap().prices.input, 100.0);
        let at_250 = project_price(&prices, "gpt-4o", Some("openai"), at(250)).unwrap();
        assert!(!at_250.model.is_regex(), "the exact name valid from the same time");
        assert_eq!(project_price(&prices, "gpt-4o", Some("Azure"), at(400)).unwrap().prices.input, 300.0);
        assert_eq!(project_price(&prices, "gpt-4o-mini", None, at(400)).unwrap().prices.input, 200.0);
        assert!(project_price(&prices, "gpt-4o", None, at(50)).is_none(), "none valid yet");
    }

    #[test]
    fn a_price_needs_its_fields_and_a_pattern_that_compiles() {
        assert_eq!(ModelPriceInput::default().spec(None).unwrap_err().field, "model");
        let no_prices = ModelPriceInput { model: Some(Ok("m".into())), ..ModelPriceInput::default() };
        assert_eq!(no_prices.spec(None).unwrap_err().field, "input_cost_per_token");
        assert!(matches!(ModelMatch::parse("gpt-(4", true).unwrap_err().rule, Rule::RegexInvalid { .. }));
        assert_eq!(parse_token_price("x", &serde_json::json!(-1)).unwrap_err().rule, Rule::PriceOutOfRange);
        assert_eq!(parse_token_price("x", &serde_json::json!("1")).unwrap_err().rule, Rule::NumberRequired);
    }
}
