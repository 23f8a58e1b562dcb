//! `POST evaluation_runs/`: what the request carries, read field by field, and the run
//! it queues.

use crate::invalid::{FieldError, Rule};
use serde_json::Value;
use uuid::Uuid;

use super::ManualRunError;
use crate::EvaluationId;
use crate::jobs::JobId;

/// `POST evaluation_runs/` as sent (values unchecked).
#[derive(Debug, Clone, Default)]
pub struct ManualRunInput {
    pub evaluation_id: Option<Value>,
    pub target_event_id: Option<Value>,
    pub timestamp: Option<Value>,
    pub event: Option<Value>,
    pub distinct_id: Option<Value>,
}

/// A queued manual run.
#[derive(Debug, Clone, PartialEq)]
pub struct ManualRun {
    pub job: JobId,
    pub evaluation: EvaluationId,
    pub evaluation_name: String,
    pub target_event_id: Uuid,
}

pub(super) fn text<'a>(value: &'a Option<Value>, field: &'static str) -> Result<Option<&'a str>, ManualRunError> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) => Ok(Some(text.trim())),
        Some(_) => Err(FieldError::new(field, Rule::NotAString).into()),
    }
}

pub(super) fn required_uuid(value: &Option<Value>, field: &'static str) -> Result<Uuid, ManualRunError> {
    match text(value, field)? {
        None | Some("") => Err(FieldError::new(field, Rule::Required).into()),
        Some(raw) => raw.parse().map_err(|_| FieldError::new(field, Rule::NotAUuid).into()),
    }
}
