//! Reading the fields of a JSON body that the reference accepts loosely (any JSON value,
//! checked field by field), into the types of a domain command.

use domain::{FieldError, Rule};
use serde_json::Value;
use uuid::Uuid;

/// A string field, trimmed; absent or `null` is `None`.
pub fn text<'a>(value: &'a Option<Value>, field: &str) -> Result<Option<&'a str>, FieldError> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) => Ok(Some(text.trim())),
        Some(_) => Err(FieldError::new(field, Rule::NotAString)),
    }
}

/// A string field that is absent, `null` or blank is `None`.
pub fn non_blank(value: &Option<Value>, field: &str) -> Result<Option<String>, FieldError> {
    Ok(text(value, field)?.filter(|text| !text.is_empty()).map(str::to_owned))
}

/// A UUID that must be sent.
pub fn required_uuid(value: &Option<Value>, field: &str) -> Result<Uuid, FieldError> {
    match text(value, field)? {
        None | Some("") => Err(FieldError::new(field, Rule::Required)),
        Some(raw) => raw.parse().map_err(|_| FieldError::new(field, Rule::NotAUuid)),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn values_are_read_as_the_reference_reads_them() {
        assert_eq!(text(&None, "f"), Ok(None));
        assert_eq!(text(&Some(Value::Null), "f"), Ok(None));
        assert_eq!(text(&Some(json!("  a ")), "f"), Ok(Some("a")));
        assert_eq!(text(&Some(json!(5)), "f"), Err(FieldError::new("f", Rule::NotAString)));
        assert_eq!(non_blank(&Some(json!("  ")), "f"), Ok(None));
        assert_eq!(required_uuid(&Some(json!("")), "id"), Err(FieldError::new("id", Rule::Required)));
        assert_eq!(required_uuid(&Some(json!("nope")), "id"), Err(FieldError::new("id", Rule::NotAUuid)));
    }
}
