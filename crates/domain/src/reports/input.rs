//! A report as sent (create, PUT, PATCH) and its validation: the sent fields over the
//! stored report (or the defaults), checked as a whole, the first problem reported with
//! its field.

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use serde_json::Value;

use super::model::{
    AlertCondition, AlertOperator, DEFAULT_DAILY_RUN_CAP, DEFAULT_MAX_SAMPLE_SIZE, DEFAULT_TRIGGER_THRESHOLD,
    Frequency, MIN_COOLDOWN_MINUTES, Report,
};
use super::schedule::{Recurrence, parse_rule, parse_zone};
use super::targets::{TargetInput, TargetPolicy, parse_targets};
use crate::EvaluationId;
use crate::invalid::{FieldError, Rule};

/// The longest `report_prompt_guidance`.
pub const MAX_GUIDANCE_CHARS: usize = 5_000;

/// A report's fields as sent; `None` = not sent.
#[derive(Debug, Clone, Default)]
pub struct ReportInput {
    pub evaluation: Option<String>,
    pub frequency: Option<String>,
    /// `Some(Value::Null)`: sent as null.
    pub alert_condition: Option<Value>,
    pub rrule: Option<String>,
    pub starts_at: Option<Option<DateTime<Utc>>>,
    pub timezone_name: Option<String>,
    pub delivery_targets: Option<Value>,
    pub max_sample_size: Option<i64>,
    pub enabled: Option<bool>,
    pub deleted: Option<bool>,
    pub report_prompt_guidance: Option<String>,
    pub trigger_threshold: Option<i64>,
    pub cooldown_minutes: Option<i64>,
    pub daily_run_cap: Option<i64>,
}

/// A report's settings, validated.
#[derive(Debug, Clone)]
pub struct ReportSettings {
    pub evaluation: EvaluationId,
    pub frequency: Frequency,
    pub alert_condition: Option<AlertCondition>,
    pub rrule: String,
    pub recurrence: Option<Recurrence>,
    pub starts_at: Option<DateTime<Utc>>,
    pub timezone_name: String,
    pub zone: Tz,
    /// `None`: keep the stored targets.
    pub targets: Option<Vec<TargetInput>>,
    pub max_sample_size: u32,
    pub enabled: bool,
    pub deleted: bool,
    pub report_prompt_guidance: String,
    pub trigger_threshold: u32,
    pub cooldown_minutes: u32,
    pub daily_run_cap: u32,
}

fn ranged(field: &str, value: i64, min: i64, max: i64) -> Result<u32, FieldError> {
    if value < min || value > max {
        return Err(FieldError::new(field, Rule::OutOfRange { min, max }));
    }
    Ok(u32::try_from(value).unwrap_or(u32::MAX))
}

fn required(field: &str) -> FieldError {
    FieldError::new(field, Rule::Required)
}

/// The sent fields over `stored` (or the defaults when creating), validated.
pub fn settings(
    input: ReportInput,
    stored: Option<&Report>,
    policy: &TargetPolicy,
) -> Result<ReportSettings, FieldError> {
    let evaluation = match (&input.evaluation, stored) {
        (Some(raw), _) => raw.parse().map_err(|_| FieldError::new("evaluation", Rule::NotAnEvaluationOfProject))?,
        (None, Some(report)) => report.evaluation,
        (None, None) => return Err(required("evaluation")),
    };
    let frequency = match &input.frequency {
        Some(raw) => Frequency::parse(raw.trim()).ok_or_else(|| {
            FieldError::new("frequency", Rule::NotAChoice { given: raw.clone(), choices: String::new() })
        })?,
        None => stored.map_or(Frequency::EveryN, |r| r.frequency),
    };
    let timezone_name = input
        .timezone_name
        .as_deref()
        .map(str::trim)
        .map(str::to_owned)
        .or_else(|| stored.map(|r| r.timezone_name.clone()))
        .unwrap_or_else(|| "UTC".to_owned());
    let zone = parse_zone(&timezone_name)
        .ok_or_else(|| FieldError::new("timezone_name", Rule::UnknownTimeZone { given: timezone_name.clone() }))?;

    let starts_at = match input.starts_at {
        Some(value) => value,
        None => stored.and_then(|r| r.starts_at),
    };
    let (rrule, recurrence) = if frequency == Frequency::Scheduled {
        let text = input.rrule.clone().or_else(|| stored.map(|r| r.rrule.clone())).unwrap_or_default();
        if text.trim().is_empty() {
            return Err(required("rrule"));
        }
        let recurrence = parse_rule(&text).map_err(|_| FieldError::new("rrule", Rule::RecurrenceRule))?;
        if starts_at.is_none() {
            return Err(required("starts_at"));
        }
        (text.trim().to_owned(), Some(recurrence))
    } else {
        (String::new(), None)
    };

    let needs_condition = || FieldError::new("alert_condition", Rule::AlertConditionRequired);
    let alert_condition = if frequency == Frequency::Alert {
        match &input.alert_condition {
            Some(Value::Null) => return Err(needs_condition()),
            Some(raw) => Some(parse_alert(raw)?),
            None => Some(stored.and_then(|r| r.alert_condition).ok_or_else(needs_condition)?),
        }
    } else {
        match &input.alert_condition {
            Some(raw) if !raw.is_null() => {
                return Err(FieldError::new("alert_condition", Rule::AlertConditionNotAlert));
            }
            _ => None,
        }
    };

    let targets = match &input.delivery_targets {
        Some(raw) => Some(parse_targets(raw, policy)?),
        None if stored.is_none() => Some(Vec::new()),
        None => None,
    };
    let max_sample_size = match input.max_sample_size {
        Some(value) => ranged("max_sample_size", value, 1, 1_000)?,
        None => stored.map_or(DEFAULT_MAX_SAMPLE_SIZE, |r| r.max_sample_size),
    };
    let trigger_threshold = match input.trigger_threshold {
        Some(value) => ranged("trigger_threshold", value, 10, 10_000)?,
        None => stored.map_or(DEFAULT_TRIGGER_THRESHOLD, |r| r.trigger_threshold),
    };
    let cooldown_minutes = match input.cooldown_minutes {
        Some(value) => ranged("cooldown_minutes", value, i64::from(MIN_COOLDOWN_MINUTES), 525_600)?,
        None => stored.map_or(MIN_COOLDOWN_MINUTES, |r| r.cooldown_minutes),
    };
    let daily_run_cap = match input.daily_run_cap {
        Some(value) => ranged("daily_run_cap", value, 1, 1_000)?,
        None => stored.map_or(DEFAULT_DAILY_RUN_CAP, |r| r.daily_run_cap),
    };
    let report_prompt_guidance =
        input.report_prompt_guidance.or_else(|| stored.map(|r| r.report_prompt_guidance.clone())).unwrap_or_default();
    if report_prompt_guidance.chars().count() > MAX_GUIDANCE_CHARS {
        return Err(FieldError::new("report_prompt_guidance", Rule::TooLong { max: MAX_GUIDANCE_CHARS }));
    }
    Ok(ReportSettings {
        evaluation,
        frequency,
        alert_condition,
        rrule,
        recurrence,
        starts_at,
        timezone_name,
        zone,
        targets,
        max_sample_size,
        enabled: input.enabled.or(stored.map(|r| r.enabled)).unwrap_or(true),
        deleted: input.deleted.or(stored.map(|r| r.deleted)).unwrap_or(false),
        report_prompt_guidance,
        trigger_threshold,
        cooldown_minutes,
        daily_run_cap,
    })
}

/// `alert_condition` as sent: `{operator, pass_rate, min_runs?, window_minutes?}`.
fn parse_alert(raw: &Value) -> Result<AlertCondition, FieldError> {
    let bad = |rule: Rule| FieldError::new("alert_condition", rule);
    let object = raw.as_object().ok_or_else(|| bad(Rule::AlertConditionNotObject))?;
    let operator = match object.get("operator").and_then(Value::as_str) {
        Some("lt") => AlertOperator::Lt,
        Some("gt") => AlertOperator::Gt,
        _ => return Err(bad(Rule::AlertOperator)),
    };
    let pass_rate = object
        .get("pass_rate")
        .and_then(Value::as_f64)
        .filter(|rate| (0.0..=100.0).contains(rate))
        .ok_or_else(|| bad(Rule::AlertPassRate))?;
    let whole = |key: &'static str, default: u64, min: u64, max: u64| -> Result<u32, FieldError> {
        match object.get(key) {
            None | Some(Value::Null) => Ok(u32::try_from(default).unwrap_or(u32::MAX)),
            Some(value) => value
                .as_u64()
                .filter(|v| (min..=max).contains(v))
                .and_then(|v| u32::try_from(v).ok())
                .ok_or_else(|| bad(Rule::AlertWhole { key, min, max })),
        }
    };
    Ok(AlertCondition {
        operator,
        pass_rate,
        min_runs: whole("min_runs", 20, 1, 1_000_000)?,
        window_minutes: whole("window_minutes", 60, 15, 10_080)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn create(input: ReportInput) -> Result<ReportSettings, FieldError> {
        settings(input, None, &TargetPolicy::default())
    }

    fn base() -> ReportInput {
        ReportInput { evaluation: Some(uuid::Uuid::now_v7().to_string()), ..ReportInput::default() }
    }

    #[test]
    fn defaults_are_those_of_the_spec() {
        let s = create(base()).unwrap();
        assert_eq!(s.frequency, Frequency::EveryN);
        assert_eq!(s.rrule, "");
        assert_eq!(s.timezone_name, "UTC");
        assert_eq!((s.max_sample_size, s.trigger_threshold, s.cooldown_minutes, s.daily_run_cap), (200, 100, 60, 10));
        assert!(s.enabled && !s.deleted);
        assert_eq!(s.targets.unwrap().len(), 0);
    }

    #[test]
    fn every_bad_field_is_named() {
        let cases: Vec<(ReportInput, &str)> = vec![
            (ReportInput::default(), "evaluation"),
            (ReportInput { frequency: Some("daily".into()), ..base() }, "frequency"),
            (ReportInput { frequency: Some("scheduled".into()), ..base() }, "rrule"),
            (
                ReportInput { frequency: Some("scheduled".into()), rrule: Some("FREQ=DAILY".into()), ..base() },
                "starts_at",
            ),
            (
                ReportInput {
                    frequency: Some("scheduled".into()),
                    rrule: Some("DTSTART:20260101T000000Z\nRRULE:FREQ=DAILY".into()),
                    starts_at: Some(Some(Utc::now())),
                    ..base()
                },
                "rrule",
            ),
            (ReportInput { timezone_name: Some("Mars/Olympus".into()), ..base() }, "timezone_name"),
            (ReportInput { trigger_threshold: Some(9), ..base() }, "trigger_threshold"),
            (ReportInput { trigger_threshold: Some(10_001), ..base() }, "trigger_threshold"),
            (ReportInput { cooldown_minutes: Some(59), ..base() }, "cooldown_minutes"),
            (ReportInput { daily_run_cap: Some(0), ..base() }, "daily_run_cap"),
            (ReportInput { max_sample_size: Some(0), ..base() }, "max_sample_size"),
            (ReportInput { frequency: Some("alert".into()), ..base() }, "alert_condition"),
            (
                ReportInput {
                    frequency: Some("alert".into()),
                    alert_condition: Some(json!({"operator": "eq", "pass_rate": 50})),
                    ..base()
                },
                "alert_condition",
            ),
            (
                ReportInput {
                    frequency: Some("alert".into()),
                    alert_condition: Some(json!({"operator": "lt", "pass_rate": 50, "window_minutes": 10})),
                    ..base()
                },
                "alert_condition",
            ),
            (
                ReportInput { alert_condition: Some(json!({"operator": "lt", "pass_rate": 5})), ..base() },
                "alert_condition",
            ),
            (ReportInput { delivery_targets: Some(json!([{"type": "fax"}])), ..base() }, "delivery_targets[0].type"),
            (ReportInput { report_prompt_guidance: Some("x".repeat(5_001)), ..base() }, "report_prompt_guidance"),
        ];
        for (input, field) in cases {
            let error = create(input).unwrap_err();
            assert_eq!(error.field, field, "{error:?}");
        }
    }

    #[test]
    fn alert_conditions_take_defaults() {
        let s = create(ReportInput {
            frequency: Some("alert".into()),
            alert_condition: Some(json!({"operator": "gt", "pass_rate": 30})),
            ..base()
        })
        .unwrap();
        let condition = s.alert_condition.unwrap();
        assert_eq!((condition.operator, condition.min_runs, condition.window_minutes), (AlertOperator::Gt, 20, 60));
    }
}
