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
use super::targets::TargetInput;
use crate::EvaluationId;
use crate::invalid::{FieldError, Rule};

/// The longest `report_prompt_guidance`.
pub const MAX_GUIDANCE_CHARS: usize = 5_000;

/// A report's fields as the caller parsed them; `None` = not sent. A sent field holds its
/// parse: a refused one is answered where the merge over the stored report reaches it
/// (an `rrule` only counts for a scheduled report, an `alert_condition` is refused on
/// any other), so a body is told about the same field whatever else is wrong with it.
#[derive(Debug, Clone, Default)]
pub struct ReportInput {
    pub evaluation: Option<Result<EvaluationId, FieldError>>,
    pub frequency: Option<Result<Frequency, FieldError>>,
    /// `Some(None)`: sent as null.
    pub alert_condition: Option<Option<Result<AlertCondition, FieldError>>>,
    /// The rule as sent (trimmed) with its recurrence.
    pub rrule: Option<Result<(String, Recurrence), FieldError>>,
    pub starts_at: Option<Option<DateTime<Utc>>>,
    /// The zone's name as sent (trimmed) with the zone.
    pub timezone: Option<Result<(String, Tz), FieldError>>,
    pub delivery_targets: Option<Result<Vec<TargetInput>, FieldError>>,
    pub max_sample_size: Option<i64>,
    pub enabled: Option<bool>,
    pub deleted: Option<bool>,
    pub report_prompt_guidance: Option<String>,
    pub trigger_threshold: Option<i64>,
    pub cooldown_minutes: Option<i64>,
    pub daily_run_cap: Option<i64>,
}

/// `evaluation` as sent.
pub fn parse_evaluation(raw: &str) -> Result<EvaluationId, FieldError> {
    raw.parse().map_err(|_| FieldError::new("evaluation", Rule::NotAnEvaluationOfProject))
}

/// `frequency` as sent.
pub fn parse_frequency(raw: &str) -> Result<Frequency, FieldError> {
    Frequency::parse(raw.trim())
        .ok_or_else(|| FieldError::new("frequency", Rule::NotAChoice { given: raw.to_owned(), choices: String::new() }))
}

/// `timezone_name` as sent (or stored): an IANA zone.
pub fn parse_timezone(raw: &str) -> Result<(String, Tz), FieldError> {
    let name = raw.trim().to_owned();
    match parse_zone(&name) {
        Some(zone) => Ok((name, zone)),
        None => Err(FieldError::new("timezone_name", Rule::UnknownTimeZone { given: name })),
    }
}

/// `rrule` as sent (or stored): not blank, a usable rule.
pub fn parse_recurrence(raw: &str) -> Result<(String, Recurrence), FieldError> {
    if raw.trim().is_empty() {
        return Err(required("rrule"));
    }
    let recurrence = parse_rule(raw).map_err(|_| FieldError::new("rrule", Rule::RecurrenceRule))?;
    Ok((raw.trim().to_owned(), recurrence))
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
pub fn settings(input: ReportInput, stored: Option<&Report>) -> Result<ReportSettings, FieldError> {
    let evaluation = match (input.evaluation, stored) {
        (Some(sent), _) => sent?,
        (None, Some(report)) => report.evaluation,
        (None, None) => return Err(required("evaluation")),
    };
    let frequency = match input.frequency {
        Some(sent) => sent?,
        None => stored.map_or(Frequency::EveryN, |r| r.frequency),
    };
    let (timezone_name, zone) = match input.timezone {
        Some(sent) => sent?,
        None => parse_timezone(stored.map_or("UTC", |r| r.timezone_name.as_str()))?,
    };

    let starts_at = match input.starts_at {
        Some(value) => value,
        None => stored.and_then(|r| r.starts_at),
    };
    let (rrule, recurrence) = if frequency == Frequency::Scheduled {
        let (text, recurrence) = match input.rrule {
            Some(sent) => sent?,
            None => parse_recurrence(stored.map_or("", |r| r.rrule.as_str()))?,
        };
        if starts_at.is_none() {
            return Err(required("starts_at"));
        }
        (text, Some(recurrence))
    } else {
        (String::new(), None)
    };

    let needs_condition = || FieldError::new("alert_condition", Rule::AlertConditionRequired);
    let alert_condition = match (frequency == Frequency::Alert, input.alert_condition) {
        (true, Some(None)) => return Err(needs_condition()),
        (true, Some(Some(sent))) => Some(sent?),
        (true, None) => Some(stored.and_then(|r| r.alert_condition).ok_or_else(needs_condition)?),
        (false, Some(Some(_))) => return Err(FieldError::new("alert_condition", Rule::AlertConditionNotAlert)),
        (false, _) => None,
    };

    let targets = match input.delivery_targets {
        Some(sent) => Some(sent?),
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
pub fn parse_alert(raw: &Value) -> Result<AlertCondition, FieldError> {
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
        settings(input, None)
    }

    fn base() -> ReportInput {
        ReportInput { evaluation: Some(Ok(EvaluationId::generate())), ..ReportInput::default() }
    }

    fn refused(field: &str) -> FieldError {
        FieldError::new(field, Rule::Required)
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
    fn a_refused_field_is_answered_where_the_merge_reaches_it() {
        let scheduled = || ReportInput { frequency: Some(Ok(Frequency::Scheduled)), ..base() };
        let cases: Vec<(ReportInput, &str)> = vec![
            (ReportInput::default(), "evaluation"),
            (ReportInput { evaluation: Some(Err(refused("evaluation"))), ..ReportInput::default() }, "evaluation"),
            (scheduled(), "rrule"),
            (ReportInput { rrule: Some(parse_recurrence("FREQ=DAILY")), ..scheduled() }, "starts_at"),
            (ReportInput { frequency: Some(Ok(Frequency::Alert)), ..base() }, "alert_condition"),
            (ReportInput { alert_condition: Some(Some(Err(refused("alert_condition")))), ..base() }, "alert_condition"),
            (ReportInput { trigger_threshold: Some(9), ..base() }, "trigger_threshold"),
            (ReportInput { trigger_threshold: Some(10_001), ..base() }, "trigger_threshold"),
            (ReportInput { cooldown_minutes: Some(59), ..base() }, "cooldown_minutes"),
            (ReportInput { daily_run_cap: Some(0), ..base() }, "daily_run_cap"),
            (ReportInput { max_sample_size: Some(0), ..base() }, "max_sample_size"),
            (ReportInput { report_prompt_guidance: Some("x".repeat(5_001)), ..base() }, "report_prompt_guidance"),
        ];
        for (input, field) in cases {
            let error = create(input).unwrap_err();
            assert_eq!(error.field, field, "{error:?}");
        }
        let not_alert = ReportInput { alert_condition: Some(Some(Err(refused("x")))), ..base() };
        assert_eq!(
            create(not_alert).unwrap_err().rule,
            Rule::AlertConditionNotAlert,
            "any sent condition, not its parse"
        );
        let ignored = ReportInput { rrule: Some(parse_recurrence("nonsense")), ..base() };
        assert!(create(ignored).is_ok(), "an rrule counts only for a scheduled report");
    }

    #[test]
    fn the_parsers_name_their_field() {
        assert_eq!(parse_frequency("daily").unwrap_err().field, "frequency");
        assert_eq!(parse_timezone("Mars/Olympus").unwrap_err().field, "timezone_name");
        assert_eq!(parse_timezone(" Europe/Paris ").unwrap().0, "Europe/Paris");
        assert_eq!(parse_recurrence("  ").unwrap_err().rule, Rule::Required);
        assert_eq!(
            parse_recurrence("DTSTART:20260101T000000Z\nRRULE:FREQ=DAILY").unwrap_err().rule,
            Rule::RecurrenceRule
        );
        assert_eq!(parse_evaluation("nope").unwrap_err().rule, Rule::NotAnEvaluationOfProject);
        for bad in [
            json!({"operator": "eq", "pass_rate": 50}),
            json!({"operator": "lt", "pass_rate": 50, "window_minutes": 10}),
            json!("lt"),
        ] {
            assert_eq!(parse_alert(&bad).unwrap_err().field, "alert_condition", "{bad}");
        }
    }

    #[test]
    fn alert_conditions_take_defaults() {
        let condition = parse_alert(&json!({"operator": "gt", "pass_rate": 30})).unwrap();
        assert_eq!((condition.operator, condition.min_runs, condition.window_minutes), (AlertOperator::Gt, 20, 60));
        let s = create(ReportInput {
            frequency: Some(Ok(Frequency::Alert)),
            alert_condition: Some(Some(Ok(condition))),
            ..base()
        })
        .unwrap();
        assert_eq!(s.alert_condition, Some(condition));
    }
}
