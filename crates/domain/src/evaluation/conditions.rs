//! Which generations an evaluation judges: conditions made of property filters and a
//! rollout percentage, matched without I/O so the judge runner can call them per event.

use std::fmt;

use crate::invalid::{FieldError, Rule};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Number, Value};
use sha2::{Digest, Sha256};
use uuid::Uuid;

/// The most conditions one evaluation may have.
pub const MAX_CONDITIONS: usize = 50;
/// The most property filters one condition may have.
pub const MAX_PROPERTIES: usize = 50;
const MAX_KEY_CHARS: usize = 400;
const MAX_CONDITION_ID_CHARS: usize = 100;
pub(crate) const MAX_PATTERN_CHARS: usize = 1000;
/// Compiled-size bound of a pattern: user input must not make the server build a huge automaton.
pub(crate) const REGEX_SIZE_LIMIT: usize = 1 << 20;

/// A condition as a client sends it (or as it is stored): every part optional until parsed.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ConditionInput {
    pub id: Option<String>,
    pub rollout_percentage: Option<f64>,
    pub properties: Option<Vec<PropertyFilterInput>>,
}

/// A property filter as a client sends it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PropertyFilterInput {
    pub key: Option<String>,
    pub operator: Option<String>,
    pub value: Option<Value>,
}

/// How a property filter compares an event's property with its value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PropertyOperator {
    /// Equal (case-insensitively, as text) to the value or to one of a list of values.
    Exact,
    /// Not `Exact`; also true when the property is absent.
    IsNot,
    /// The property's text contains the value, case-insensitively.
    IContains,
    /// The property's text matches the regular expression (anywhere, case-sensitively).
    Regex,
    /// The property is present and not null.
    IsSet,
    /// The property is absent or null.
    IsNotSet,
    /// The property is a number (or numeric text) greater than the value.
    Gt,
    /// The property is a number (or numeric text) less than the value.
    Lt,
}

impl PropertyOperator {
    /// Every operator, in the order error messages list them.
    pub const ALL: [PropertyOperator; 8] = [
        PropertyOperator::Exact,
        PropertyOperator::IsNot,
        PropertyOperator::IContains,
        PropertyOperator::Regex,
        PropertyOperator::IsSet,
        PropertyOperator::IsNotSet,
        PropertyOperator::Gt,
        PropertyOperator::Lt,
    ];

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            PropertyOperator::Exact => "exact",
            PropertyOperator::IsNot => "is_not",
            PropertyOperator::IContains => "icontains",
            PropertyOperator::Regex => "regex",
            PropertyOperator::IsSet => "is_set",
            PropertyOperator::IsNotSet => "is_not_set",
            PropertyOperator::Gt => "gt",
            PropertyOperator::Lt => "lt",
        }
    }

    /// Parses a wire name (exact spelling).
    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|operator| operator.as_str() == raw)
    }

    fn names() -> String {
        Self::ALL.iter().map(|o| o.as_str()).collect::<Vec<_>>().join(", ")
    }
}

impl fmt::Display for PropertyOperator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The compiled form of a filter's value.
#[derive(Debug, Clone)]
enum Matcher {
    /// Lower-cased texts, any of which must equal the property's.
    AnyOf(Vec<String>),
    NoneOf(Vec<String>),
    /// Lower-cased needle.
    Contains(String),
    Regex(regex::Regex),
    IsSet,
    IsNotSet,
    Gt(f64),
    Lt(f64),
}

/// One validated property filter. Keeps the value as given, for display and storage.
#[derive(Debug, Clone)]
pub struct PropertyFilter {
    key: String,
    operator: PropertyOperator,
    value: Value,
    matcher: Matcher,
}

impl PartialEq for PropertyFilter {
    fn eq(&self, other: &Self) -> bool {
        self.key == other.key && self.operator == other.operator && self.value == other.value
    }
}

/// The text a property or filter value compares as: strings as they are, other JSON as
/// written (`12`, `true`, `{"a":1}`).
fn as_text(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

fn as_number(value: &Value) -> Option<f64> {
    match value {
        Value::Number(number) => number.as_f64(),
        Value::String(text) => text.trim().parse::<f64>().ok(),
        _ => None,
    }
    .filter(|n| n.is_finite())
}

fn scalar(value: &Value) -> bool {
    matches!(value, Value::String(_) | Value::Number(_) | Value::Bool(_))
}

impl PropertyFilter {
    /// Validates one filter; `path` names it in errors.
    pub fn parse(input: &PropertyFilterInput, path: &str) -> Result<Self, FieldError> {
        let key = input.key.as_deref().map(str::trim).unwrap_or("");
        if key.is_empty() {
            return Err(FieldError::new(format!("{path}.key"), Rule::Blank));
        }
        if key.chars().count() > MAX_KEY_CHARS {
            return Err(FieldError::new(format!("{path}.key"), Rule::TooLong { max: MAX_KEY_CHARS }));
        }
        let operator = match input.operator.as_deref().map(str::trim) {
            None | Some("") => PropertyOperator::Exact,
            Some(raw) => PropertyOperator::parse(raw).ok_or_else(|| {
                let rule = Rule::UnknownOperator { given: raw.to_owned(), choices: PropertyOperator::names() };
                FieldError::new(format!("{path}.operator"), rule)
            })?,
        };
        let value = input.value.clone().unwrap_or(Value::Null);
        let value_error = |rule: Rule| FieldError::new(format!("{path}.value"), rule);
        let matcher = match operator {
            PropertyOperator::Exact | PropertyOperator::IsNot => {
                let texts = match &value {
                    Value::Array(items) if !items.is_empty() && items.iter().all(scalar) => {
                        items.iter().map(|item| as_text(item).to_lowercase()).collect()
                    }
                    item if scalar(item) => vec![as_text(item).to_lowercase()],
                    _ => {
                        return Err(value_error(Rule::ScalarOrList));
                    }
                };
                if operator == PropertyOperator::Exact { Matcher::AnyOf(texts) } else { Matcher::NoneOf(texts) }
            }
            PropertyOperator::IContains => match &value {
                Value::String(_) | Value::Number(_) => Matcher::Contains(as_text(&value).to_lowercase()),
                _ => return Err(value_error(Rule::StringRequired)),
            },
            PropertyOperator::Regex => {
                let Value::String(pattern) = &value else {
                    return Err(value_error(Rule::RegexRequired));
                };
                if pattern.chars().count() > MAX_PATTERN_CHARS {
                    return Err(value_error(Rule::PatternTooLong { max: MAX_PATTERN_CHARS }));
                }
                let regex = regex::RegexBuilder::new(pattern)
                    .size_limit(REGEX_SIZE_LIMIT)
                    .build()
                    .map_err(|error| value_error(regex_rule(&error)))?;
                Matcher::Regex(regex)
            }
            PropertyOperator::IsSet => Matcher::IsSet,
            PropertyOperator::IsNotSet => Matcher::IsNotSet,
            PropertyOperator::Gt | PropertyOperator::Lt => {
                let number = as_number(&value).ok_or_else(|| value_error(Rule::NumberRequired))?;
                if operator == PropertyOperator::Gt { Matcher::Gt(number) } else { Matcher::Lt(number) }
            }
        };
        Ok(Self { key: key.to_owned(), operator, value, matcher })
    }

    pub fn key(&self) -> &str {
        &self.key
    }

    pub fn operator(&self) -> PropertyOperator {
        self.operator
    }

    /// The value as the client gave it (null when the operator takes none and none was sent).
    pub fn value(&self) -> &Value {
        &self.value
    }

    /// Whether the event's properties pass this filter.
    pub fn matches(&self, properties: &Map<String, Value>) -> bool {
        let property = properties.get(&self.key).filter(|value| !value.is_null());
        match (&self.matcher, property) {
            (Matcher::IsSet, found) => found.is_some(),
            (Matcher::IsNotSet, found) => found.is_none(),
            (Matcher::NoneOf(_), None) => true,
            (_, None) => false,
            (Matcher::AnyOf(texts), Some(found)) => texts.contains(&as_text(found).to_lowercase()),
            (Matcher::NoneOf(texts), Some(found)) => !texts.contains(&as_text(found).to_lowercase()),
            (Matcher::Contains(needle), Some(found)) => as_text(found).to_lowercase().contains(needle.as_str()),
            (Matcher::Regex(regex), Some(found)) => regex.is_match(&as_text(found)),
            (Matcher::Gt(bound), Some(found)) => as_number(found).is_some_and(|n| n > *bound),
            (Matcher::Lt(bound), Some(found)) => as_number(found).is_some_and(|n| n < *bound),
        }
    }

    fn to_json(&self) -> Value {
        serde_json::json!({"key": self.key, "operator": self.operator.as_str(), "value": self.value})
    }
}

/// Why the regex crate refused a pattern: its reason reduced to the last line (the
/// others draw the pattern).
pub(crate) fn regex_rule(error: &regex::Error) -> Rule {
    match error {
        regex::Error::CompiledTooBig(_) => Rule::RegexTooLarge,
        other => {
            let text = other.to_string();
            let reason = text.lines().rev().find(|line| !line.trim().is_empty()).unwrap_or("").trim();
            let reason = reason.strip_prefix("error: ").unwrap_or(reason);
            Rule::RegexInvalid { reason: reason.to_owned() }
        }
    }
}

/// The share of matching generations a condition samples: 0..=100 percent.
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd)]
pub struct RolloutPercentage(f64);

impl RolloutPercentage {
    /// Every matching generation.
    pub const ALL: RolloutPercentage = RolloutPercentage(100.0);

    /// A finite percentage between 0 and 100 inclusive.
    pub fn parse(raw: f64) -> Option<Self> {
        (raw.is_finite() && (0.0..=100.0).contains(&raw)).then_some(Self(raw))
    }

    pub fn value(self) -> f64 {
        self.0
    }

    /// The percentage as a JSON number: whole percentages as integers (`100`, not `100.0`).
    pub fn to_json(self) -> Number {
        if self.0.fract() == 0.0 {
            // Whole and within 0..=100, so the cast is exact.
            Number::from(self.0 as i64)
        } else {
            Number::from_f64(self.0).unwrap_or_else(|| Number::from(100))
        }
    }

    /// Whether the generation with this event uuid falls in the sample. Deterministic: the
    /// same uuid always gives the same answer, so retries and replicas agree.
    pub fn includes(self, event: Uuid) -> bool {
        if self.0 >= 100.0 {
            return true;
        }
        rollout_fraction(event) * 100.0 < self.0
    }
}

/// A uniform number in [0, 1) derived from the event uuid: the first 60 bits of SHA-256 of
/// its hyphenated lower-case text.
fn rollout_fraction(event: Uuid) -> f64 {
    let digest = Sha256::digest(event.hyphenated().to_string().as_bytes());
    let mut head = [0u8; 8];
    head.copy_from_slice(&digest[..8]);
    let bits = u64::from_be_bytes(head) >> 4;
    bits as f64 / (1u64 << 60) as f64
}

/// One condition: every property filter must match, then the rollout samples.
#[derive(Debug, Clone, PartialEq)]
pub struct Condition {
    id: String,
    rollout: RolloutPercentage,
    properties: Vec<PropertyFilter>,
}

impl Condition {
    /// Validates one condition; `path` names it in errors. A missing id gets a new one.
    pub fn parse(input: &ConditionInput, path: &str) -> Result<Self, FieldError> {
        let id = match input.id.as_deref().map(str::trim).filter(|id| !id.is_empty()) {
            Some(id) if id.chars().count() > MAX_CONDITION_ID_CHARS => {
                return Err(FieldError::new(format!("{path}.id"), Rule::TooLong { max: MAX_CONDITION_ID_CHARS }));
            }
            Some(id) => id.to_owned(),
            None => Uuid::new_v4().to_string(),
        };
        let rollout = match input.rollout_percentage {
            None => RolloutPercentage::ALL,
            Some(raw) => RolloutPercentage::parse(raw).ok_or_else(|| {
                FieldError::new(format!("{path}.rollout_percentage"), Rule::OutOfRange { min: 0, max: 100 })
            })?,
        };
        let inputs = input.properties.as_deref().unwrap_or(&[]);
        if inputs.len() > MAX_PROPERTIES {
            return Err(FieldError::new(format!("{path}.properties"), Rule::TooManyFilters { max: MAX_PROPERTIES }));
        }
        let properties = inputs
            .iter()
            .enumerate()
            .map(|(n, filter)| PropertyFilter::parse(filter, &format!("{path}.properties[{n}]")))
            .collect::<Result<_, _>>()?;
        Ok(Self { id, rollout, properties })
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    pub fn rollout_percentage(&self) -> RolloutPercentage {
        self.rollout
    }

    pub fn properties(&self) -> &[PropertyFilter] {
        &self.properties
    }

    /// Whether the generation (its properties, a JSON object, and its event uuid) meets
    /// this condition: all filters match and the uuid falls in the rollout. Properties that
    /// are not an object count as none.
    pub fn matches(&self, properties: &Value, event: Uuid) -> bool {
        let empty = Map::new();
        self.matches_map(properties.as_object().unwrap_or(&empty), event)
    }

    /// As [`Condition::matches`], for properties already known to be an object.
    pub fn matches_map(&self, properties: &Map<String, Value>, event: Uuid) -> bool {
        self.properties.iter().all(|filter| filter.matches(properties)) && self.rollout.includes(event)
    }

    fn to_json(&self) -> Value {
        serde_json::json!({
            "id": self.id,
            "rollout_percentage": Value::Number(self.rollout.to_json()),
            "properties": self.properties.iter().map(PropertyFilter::to_json).collect::<Vec<_>>(),
        })
    }
}

/// An evaluation's conditions. A generation is judged when any condition matches; an
/// evaluation without conditions judges every generation.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Conditions(Vec<Condition>);

impl Conditions {
    /// Validates a list of conditions; errors name `conditions[n]...`.
    pub fn parse(inputs: &[ConditionInput]) -> Result<Self, FieldError> {
        if inputs.len() > MAX_CONDITIONS {
            return Err(FieldError::new("conditions", Rule::TooManyConditions { max: MAX_CONDITIONS }));
        }
        inputs
            .iter()
            .enumerate()
            .map(|(n, input)| Condition::parse(input, &format!("conditions[{n}]")))
            .collect::<Result<_, _>>()
            .map(Self)
    }

    /// Parses the stored JSON form (see [`Conditions::to_json`]).
    pub fn from_json(stored: &Value) -> Result<Self, anyhow::Error> {
        let inputs: Vec<ConditionInput> = serde_json::from_value(stored.clone())?;
        Ok(Self::parse(&inputs)?)
    }

    /// `[{id, rollout_percentage, properties: [{key, operator, value}]}]`.
    pub fn to_json(&self) -> Value {
        Value::Array(self.0.iter().map(Condition::to_json).collect())
    }

    pub fn as_slice(&self) -> &[Condition] {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether any condition matches the generation (always, when there are none).
    pub fn matches(&self, properties: &Value, event: Uuid) -> bool {
        let empty = Map::new();
        self.matches_map(properties.as_object().unwrap_or(&empty), event)
    }

    /// As [`Conditions::matches`], for properties already known to be an object.
    pub fn matches_map(&self, properties: &Map<String, Value>, event: Uuid) -> bool {
        self.0.is_empty() || self.0.iter().any(|condition| condition.matches_map(properties, event))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn filter(key: &str, operator: &str, value: Value) -> PropertyFilterInput {
        PropertyFilterInput { key: Some(key.into()), operator: Some(operator.into()), value: Some(value) }
    }

    fn condition(filters: Vec<PropertyFilterInput>) -> Condition {
        let input = ConditionInput { id: Some("c1".into()), rollout_percentage: None, properties: Some(filters) };
        Condition::parse(&input, "conditions[0]").unwrap()
    }

    fn matches(operator: &str, value: Value, properties: Value) -> bool {
        condition(vec![filter("$ai_model", operator, value)]).matches(&properties, Uuid::now_v7())
    }

    fn refused(filter: PropertyFilterInput) -> FieldError {
        let input = ConditionInput { properties: Some(vec![filter]), ..ConditionInput::default() };
        Condition::parse(&input, "conditions[2]").unwrap_err()
    }

    #[test]
    fn exact_compares_text_case_insensitively_and_accepts_a_list() {
        assert!(matches("exact", json!("GPT-4o"), json!({"$ai_model": "gpt-4o"})));
        assert!(!matches("exact", json!("gpt-4o"), json!({"$ai_model": "gpt-4o-mini"})));
        assert!(matches("exact", json!(["claude", "gpt-4o"]), json!({"$ai_model": "gpt-4o"})));
        assert!(matches("exact", json!(200), json!({"$ai_model": "200"})));
        assert!(matches("exact", json!(true), json!({"$ai_model": true})));
        assert!(!matches("exact", json!("gpt-4o"), json!({})));
        assert!(!matches("exact", json!("null"), json!({"$ai_model": null})));
    }

    #[test]
    fn is_not_is_the_negation_of_exact_and_true_when_absent() {
        assert!(!matches("is_not", json!("GPT-4o"), json!({"$ai_model": "gpt-4o"})));
        assert!(matches("is_not", json!("gpt-4o"), json!({"$ai_model": "gpt-5"})));
        assert!(!matches("is_not", json!(["a", "gpt-5"]), json!({"$ai_model": "gpt-5"})));
        assert!(matches("is_not", json!("gpt-4o"), json!({})));
        assert!(matches("is_not", json!("gpt-4o"), json!({"$ai_model": null})));
    }

    #[test]
    fn icontains_finds_the_needle_ignoring_case() {
        assert!(matches("icontains", json!("GPT"), json!({"$ai_model": "openai/gpt-4o"})));
        assert!(!matches("icontains", json!("claude"), json!({"$ai_model": "gpt-4o"})));
        assert!(matches("icontains", json!(40), json!({"$ai_model": 1400})));
        assert!(!matches("icontains", json!("gpt"), json!({})));
    }

    #[test]
    fn regex_searches_the_text_case_sensitively() {
        assert!(matches("regex", json!("^gpt-4"), json!({"$ai_model": "gpt-4o"})));
        assert!(matches("regex", json!("4o$"), json!({"$ai_model": "gpt-4o"})));
        assert!(!matches("regex", json!("^GPT"), json!({"$ai_model": "gpt-4o"})));
        assert!(matches("regex", json!("(?i)^GPT"), json!({"$ai_model": "gpt-4o"})));
        assert!(!matches("regex", json!(".*"), json!({})));
    }

    #[test]
    fn is_set_and_is_not_set_treat_null_as_absent() {
        assert!(matches("is_set", Value::Null, json!({"$ai_model": ""})));
        assert!(!matches("is_set", Value::Null, json!({"$ai_model": null})));
        assert!(!matches("is_set", json!("is_set"), json!({})));
        assert!(matches("is_not_set", Value::Null, json!({})));
        assert!(matches("is_not_set", Value::Null, json!({"$ai_model": null})));
        assert!(!matches("is_not_set", Value::Null, json!({"$ai_model": 0})));
    }

    #[test]
    fn gt_and_lt_compare_numbers_and_numeric_text() {
        assert!(matches("gt", json!(100), json!({"$ai_model": 150})));
        assert!(!matches("gt", json!(100), json!({"$ai_model": 100})));
        assert!(matches("gt", json!("1.5"), json!({"$ai_model": "2"})));
        assert!(!matches("gt", json!(1), json!({"$ai_model": "many"})));
        assert!(matches("lt", json!(0.5), json!({"$ai_model": 0.25})));
        assert!(!matches("lt", json!(0.5), json!({"$ai_model": 0.5})));
        assert!(!matches("lt", json!(10), json!({})));
    }

    #[test]
    fn every_filter_of_a_condition_must_match() {
        let both = condition(vec![filter("a", "exact", json!("x")), filter("b", "gt", json!(1))]);
        assert!(both.matches(&json!({"a": "x", "b": 2}), Uuid::now_v7()));
        assert!(!both.matches(&json!({"a": "x", "b": 0}), Uuid::now_v7()));
        assert!(condition(vec![]).matches(&json!({}), Uuid::now_v7()));
        assert!(!both.matches(&json!("not an object"), Uuid::now_v7()));
    }

    #[test]
    fn any_condition_matching_is_enough_and_none_means_every_generation() {
        let inputs = vec![
            ConditionInput { properties: Some(vec![filter("a", "exact", json!("x"))]), ..ConditionInput::default() },
            ConditionInput { properties: Some(vec![filter("a", "exact", json!("y"))]), ..ConditionInput::default() },
        ];
        let conditions = Conditions::parse(&inputs).unwrap();
        assert!(conditions.matches(&json!({"a": "y"}), Uuid::now_v7()));
        assert!(!conditions.matches(&json!({"a": "z"}), Uuid::now_v7()));
        assert!(Conditions::default().matches(&json!({}), Uuid::now_v7()));
    }

    #[test]
    fn rollout_is_deterministic_per_event_and_close_to_the_percentage() {
        let half = RolloutPercentage::parse(50.0).unwrap();
        let events: Vec<Uuid> = (0..4000u128).map(|n| Uuid::from_u128(n * 0x9E37_79B9_7F4A_7C15)).collect();
        let sampled = events.iter().filter(|event| half.includes(**event)).count();
        assert!((1800..=2200).contains(&sampled), "{sampled} of 4000 sampled at 50%");
        // Pinned: the first 60 bits of SHA-256 of the uuid's text (computed outside Rust),
        // so a change of the sampling (which would re-decide every stored rollout) fails.
        let pinned: Vec<bool> = events[..12].iter().map(|event| half.includes(*event)).collect();
        assert_eq!(pinned, [true, false, true, true, true, false, false, false, true, true, false, false]);
        let thirty = RolloutPercentage::parse(30.0).unwrap();
        assert!(thirty.includes(events[2]), "0.2966 < 0.30");
        assert!(!thirty.includes(events[4]), "0.3150 >= 0.30");
        let ten = RolloutPercentage::parse(10.0).unwrap();
        assert!(events.iter().all(|event| !ten.includes(*event) || half.includes(*event)), "samples are nested");
        assert!(events.iter().all(|event| RolloutPercentage::ALL.includes(*event)));
        let none = RolloutPercentage::parse(0.0).unwrap();
        assert!(events.iter().all(|event| !none.includes(*event)));
    }

    #[test]
    fn a_condition_with_a_rollout_samples_only_matching_events() {
        let input = ConditionInput {
            id: None,
            rollout_percentage: Some(0.0),
            properties: Some(vec![filter("a", "is_set", Value::Null)]),
        };
        let sampled_out = Condition::parse(&input, "c").unwrap();
        assert!(!sampled_out.matches(&json!({"a": 1}), Uuid::now_v7()));
        let everything = Condition::parse(&ConditionInput { rollout_percentage: Some(100.0), ..input }, "c").unwrap();
        assert!(everything.matches(&json!({"a": 1}), Uuid::now_v7()));
        assert!(!everything.matches(&json!({}), Uuid::now_v7()));
    }

    #[test]
    fn rollout_must_be_between_0_and_100() {
        for raw in [-1.0, 100.5, f64::NAN] {
            let input = ConditionInput { rollout_percentage: Some(raw), ..ConditionInput::default() };
            let error = Condition::parse(&input, "conditions[1]").unwrap_err();
            assert_eq!(error.field, "conditions[1].rollout_percentage");
        }
        assert_eq!(RolloutPercentage::parse(100.0).unwrap().to_json(), Number::from(100));
        assert_eq!(RolloutPercentage::parse(12.5).unwrap().to_json(), Number::from_f64(12.5).unwrap());
    }

    #[test]
    fn bad_filters_are_refused_naming_the_field() {
        assert_eq!(refused(filter(" ", "exact", json!("x"))).field, "conditions[2].properties[0].key");
        let error = refused(filter("a", "contains", json!("x")));
        assert_eq!(error.field, "conditions[2].properties[0].operator");
        assert!(matches!(&error.rule, Rule::UnknownOperator { choices, .. } if choices.contains("icontains")));
        assert_eq!(refused(filter("a", "regex", json!("(unclosed"))).field, "conditions[2].properties[0].value");
        assert!(matches!(refused(filter("a", "regex", json!("(unclosed"))).rule, Rule::RegexInvalid { .. }));
        assert_eq!(refused(filter("a", "regex", json!(5))).field, "conditions[2].properties[0].value");
        assert_eq!(refused(filter("a", "gt", json!("many"))).field, "conditions[2].properties[0].value");
        assert_eq!(refused(filter("a", "exact", json!({"x": 1}))).field, "conditions[2].properties[0].value");
        assert_eq!(refused(filter("a", "exact", json!([]))).field, "conditions[2].properties[0].value");
        assert_eq!(refused(filter("a", "icontains", Value::Null)).field, "conditions[2].properties[0].value");
    }

    #[test]
    fn the_operator_defaults_to_exact_and_a_missing_id_is_generated() {
        let input = ConditionInput {
            id: None,
            rollout_percentage: None,
            properties: Some(vec![PropertyFilterInput {
                key: Some(" $ai_model ".into()),
                operator: None,
                value: Some(json!("x")),
            }]),
        };
        let parsed = Condition::parse(&input, "c").unwrap();
        assert_eq!(parsed.properties()[0].operator(), PropertyOperator::Exact);
        assert_eq!(parsed.properties()[0].key(), "$ai_model");
        assert!(Uuid::parse_str(parsed.id()).is_ok());
        assert_eq!(parsed.rollout_percentage(), RolloutPercentage::ALL);
    }

    #[test]
    fn conditions_round_trip_through_their_stored_form() {
        let stored = json!([{"id": "c1", "rollout_percentage": 25.5, "properties": [
            {"key": "$ai_model", "operator": "regex", "value": "^gpt"},
            {"key": "cost", "operator": "is_set", "value": null},
        ]}]);
        let conditions = Conditions::from_json(&stored).unwrap();
        assert_eq!(conditions.to_json(), stored);
        assert_eq!(Conditions::from_json(&conditions.to_json()).unwrap(), conditions);
    }

    #[test]
    fn too_many_conditions_are_refused() {
        let inputs = vec![ConditionInput::default(); MAX_CONDITIONS + 1];
        assert_eq!(Conditions::parse(&inputs).unwrap_err().field, "conditions");
    }
}
