//! What one judgement of an evaluation covers (spec section 4.1): a generation, a whole
//! trace or a whole session, and when a trace or session counts as settled.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};

use crate::invalid::{FieldError, Rule};

/// Which events one judgement covers (stored in job payloads by its wire name).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TargetKind {
    /// One `$ai_generation` (the default).
    Generation,
    /// Every event sharing an `$ai_trace_id`.
    Trace,
    /// Every event sharing an `$ai_session_id`.
    Session,
}

impl TargetKind {
    pub const ALL: &'static [TargetKind] = &[TargetKind::Generation, TargetKind::Trace, TargetKind::Session];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Generation => "generation",
            Self::Trace => "trace",
            Self::Session => "session",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|kind| kind.as_str() == raw)
    }

    pub fn names() -> String {
        Self::ALL.iter().map(|kind| kind.as_str()).collect::<Vec<_>>().join(", ")
    }

    /// The event property whose value names the target (none for a generation: its uuid).
    pub fn id_property(self) -> Option<&'static str> {
        match self {
            Self::Generation => None,
            Self::Trace => Some("$ai_trace_id"),
            Self::Session => Some("$ai_session_id"),
        }
    }

    /// The most characters of events the judge reads for one target.
    pub fn max_text_chars(self) -> usize {
        match self {
            Self::Generation | Self::Trace => 150_000,
            Self::Session => 500_000,
        }
    }
}

/// When a trace or session is judged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Settling {
    /// Once nothing new arrived for `quiet_period`, or `max_age` after its first event,
    /// whichever comes first.
    Inactivity { quiet_period: Duration, max_age: Duration },
    /// `window` after its first event.
    FixedWindow { window: Duration },
}

/// Bounds of the settling settings, in seconds (the reference's).
pub const QUIET_PERIOD_SECONDS: (u64, u64, u64) = (60, 7_200, 300);
pub const MAX_AGE_SECONDS: (u64, u64, u64) = (300, 7_200, 7_200);
pub const WINDOW_SECONDS: (u64, u64, u64) = (60, 7_200, 1_800);

impl Default for Settling {
    fn default() -> Self {
        Self::FixedWindow { window: Duration::from_secs(WINDOW_SECONDS.2) }
    }
}

impl Settling {
    /// `target_config` as sent: a strategy and its seconds (defaults where left out).
    pub fn parse(sent: &Value) -> Result<Self, FieldError> {
        let field = |name: &str| format!("target_config.{name}");
        let Some(object) = sent.as_object() else {
            return Err(FieldError::new("target_config", Rule::NotAnObject));
        };
        let strategy = match object.get("strategy") {
            None | Some(Value::Null) => return Err(FieldError::new(field("strategy"), Rule::Required)),
            Some(Value::String(strategy)) => strategy.as_str(),
            Some(other) => {
                return Err(FieldError::new(
                    field("strategy"),
                    Rule::NotAChoice { given: other.to_string(), choices: "inactivity, fixed_window".into() },
                ));
            }
        };
        match strategy {
            "inactivity" => Ok(Self::Inactivity {
                quiet_period: seconds(object, "quiet_period_seconds", QUIET_PERIOD_SECONDS)?,
                max_age: seconds(object, "max_age_seconds", MAX_AGE_SECONDS)?,
            }),
            "fixed_window" => Ok(Self::FixedWindow { window: seconds(object, "window_seconds", WINDOW_SECONDS)? }),
            other => Err(FieldError::new(
                field("strategy"),
                Rule::NotAChoice { given: other.to_owned(), choices: "inactivity, fixed_window".into() },
            )),
        }
    }

    /// As stored and answered.
    pub fn to_json(self) -> Value {
        match self {
            Self::Inactivity { quiet_period, max_age } => json!({
                "strategy": "inactivity",
                "quiet_period_seconds": quiet_period.as_secs(),
                "max_age_seconds": max_age.as_secs(),
            }),
            Self::FixedWindow { window } => json!({"strategy": "fixed_window", "window_seconds": window.as_secs()}),
        }
    }

    /// When a target first seen at `first_seen` is due: (the due time now, the latest it
    /// may move to as later events arrive).
    pub fn first_due(self, first_seen: DateTime<Utc>) -> (DateTime<Utc>, DateTime<Utc>) {
        match self {
            Self::Inactivity { quiet_period, max_age } => {
                let latest = first_seen + max_age;
                ((first_seen + quiet_period).min(latest), latest)
            }
            Self::FixedWindow { window } => (first_seen + window, first_seen + window),
        }
    }

    /// The due time an event arriving at `seen` asks for (never past the first due's
    /// latest; a fixed window does not move).
    pub fn due_after_event(self, seen: DateTime<Utc>) -> Option<DateTime<Utc>> {
        match self {
            Self::Inactivity { quiet_period, .. } => Some(seen + quiet_period),
            Self::FixedWindow { .. } => None,
        }
    }
}

fn seconds(
    object: &Map<String, Value>,
    name: &str,
    (min, max, default): (u64, u64, u64),
) -> Result<Duration, FieldError> {
    let field = format!("target_config.{name}");
    let value = match object.get(name) {
        None | Some(Value::Null) => default,
        Some(Value::Number(n)) => match n.as_u64() {
            Some(n) => n,
            None if n.as_i64().is_some() => 0,
            None => return Err(FieldError::new(field, Rule::NotAnInteger)),
        },
        Some(_) => return Err(FieldError::new(field, Rule::NotAnInteger)),
    };
    if !(min..=max).contains(&value) {
        return Err(FieldError::new(field, Rule::OutOfRange { min: min as i64, max: max as i64 }));
    }
    Ok(Duration::from_secs(value))
}

/// An evaluation's target with its settling rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum EvaluationTarget {
    #[default]
    Generation,
    Trace(Settling),
    Session(Settling),
}

impl EvaluationTarget {
    pub fn kind(self) -> TargetKind {
        match self {
            Self::Generation => TargetKind::Generation,
            Self::Trace(_) => TargetKind::Trace,
            Self::Session(_) => TargetKind::Session,
        }
    }

    pub fn settling(self) -> Option<Settling> {
        match self {
            Self::Generation => None,
            Self::Trace(settling) | Self::Session(settling) => Some(settling),
        }
    }

    /// `kind` with `settling` (the default when none; ignored for a generation).
    pub fn of(kind: TargetKind, settling: Option<Settling>) -> Self {
        match kind {
            TargetKind::Generation => Self::Generation,
            TargetKind::Trace => Self::Trace(settling.unwrap_or_default()),
            TargetKind::Session => Self::Session(settling.unwrap_or_default()),
        }
    }

    /// As read back from storage (`target`, `target_config`).
    pub fn from_stored(kind: &str, config: Option<&Value>) -> Option<Self> {
        let kind = TargetKind::parse(kind)?;
        let settling = match config {
            None | Some(Value::Null) => None,
            Some(config) => Some(Settling::parse(config).ok()?),
        };
        Some(Self::of(kind, settling))
    }
}

/// A client's change of `target` and/or `target_config`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TargetChange {
    pub kind: Option<TargetKind>,
    pub settling: Option<Settling>,
}

impl TargetChange {
    /// The target after this change of `current`: a new kind takes the sent settling, or
    /// keeps the current one when the kind stays a trace or session, or the default; a
    /// settling alone changes the current trace or session (and is ignored for a
    /// generation, as the reference ignores it).
    pub fn applied_to(self, current: EvaluationTarget) -> EvaluationTarget {
        let kind = self.kind.unwrap_or(current.kind());
        EvaluationTarget::of(kind, self.settling.or(current.settling()))
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    #[test]
    fn settling_is_parsed_with_the_reference_defaults_and_bounds() {
        assert_eq!(
            Settling::parse(&json!({"strategy": "inactivity"})),
            Ok(Settling::Inactivity { quiet_period: Duration::from_secs(300), max_age: Duration::from_secs(7_200) })
        );
        assert_eq!(
            Settling::parse(&json!({"strategy": "fixed_window", "window_seconds": 60})),
            Ok(Settling::FixedWindow { window: Duration::from_secs(60) })
        );
        for (sent, field) in [
            (json!({"strategy": "inactivity", "quiet_period_seconds": 59}), "target_config.quiet_period_seconds"),
            (json!({"strategy": "inactivity", "max_age_seconds": 7_201}), "target_config.max_age_seconds"),
            (json!({"strategy": "fixed_window", "window_seconds": -1}), "target_config.window_seconds"),
            (json!({"strategy": "fixed_window", "window_seconds": 90.5}), "target_config.window_seconds"),
            (json!({"strategy": "sliding"}), "target_config.strategy"),
            (json!({}), "target_config.strategy"),
            (json!("inactivity"), "target_config"),
        ] {
            assert_eq!(Settling::parse(&sent).unwrap_err().field, field, "{sent}");
        }
    }

    #[test]
    fn a_trace_is_due_after_its_quiet_period_but_never_past_its_max_age() {
        let first = Utc.with_ymd_and_hms(2026, 3, 4, 12, 0, 0).unwrap();
        let inactivity =
            Settling::Inactivity { quiet_period: Duration::from_secs(300), max_age: Duration::from_secs(600) };
        assert_eq!(inactivity.first_due(first), (first + Duration::from_secs(300), first + Duration::from_secs(600)));
        assert_eq!(
            inactivity.due_after_event(first + Duration::from_secs(100)),
            Some(first + Duration::from_secs(400))
        );
        let window = Settling::FixedWindow { window: Duration::from_secs(1_800) };
        assert_eq!(window.first_due(first), (first + Duration::from_secs(1_800), first + Duration::from_secs(1_800)));
        assert_eq!(window.due_after_event(first), None);
    }

    #[test]
    fn a_change_keeps_what_it_does_not_name() {
        let inactivity =
            Settling::Inactivity { quiet_period: Duration::from_secs(60), max_age: Duration::from_secs(300) };
        let trace = EvaluationTarget::Trace(inactivity);
        let to_session = TargetChange { kind: Some(TargetKind::Session), settling: None };
        assert_eq!(to_session.applied_to(trace), EvaluationTarget::Session(inactivity));
        assert_eq!(to_session.applied_to(EvaluationTarget::Generation), EvaluationTarget::Session(Settling::default()));
        let only_settling = TargetChange { kind: None, settling: Some(Settling::default()) };
        assert_eq!(only_settling.applied_to(trace), EvaluationTarget::Trace(Settling::default()));
        assert_eq!(only_settling.applied_to(EvaluationTarget::Generation), EvaluationTarget::Generation);
        assert_eq!(
            EvaluationTarget::from_stored("trace", Some(&inactivity.to_json())),
            Some(EvaluationTarget::Trace(inactivity))
        );
        assert_eq!(EvaluationTarget::from_stored("generation", None), Some(EvaluationTarget::Generation));
    }
}
