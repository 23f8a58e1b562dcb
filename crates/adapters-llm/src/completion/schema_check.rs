//! The part of JSON Schema the service's answer schemas use (`type`, `properties`,
//! `required`, `additionalProperties: false`, `items`, `enum`, `minItems`, `maxItems`),
//! checked on answers from servers that could not be held to the schema themselves (JSON
//! mode instead of `json_schema`).

use serde_json::Value;

/// Whether `value` satisfies `schema`; the reason when it does not.
pub(crate) fn conforms(value: &Value, schema: &Value) -> Result<(), &'static str> {
    if let Some(expected) = schema.get("type")
        && !type_matches(value, expected)
    {
        return Err("the answer did not match the schema: a value has the wrong type");
    }
    if let Some(choices) = schema.get("enum").and_then(Value::as_array)
        && !choices.contains(value)
    {
        return Err("the answer did not match the schema: a value is not one of the choices");
    }
    match value {
        Value::Object(fields) => {
            let properties = schema.get("properties").and_then(Value::as_object);
            for name in schema.get("required").and_then(Value::as_array).into_iter().flatten() {
                if name.as_str().is_some_and(|name| !fields.contains_key(name)) {
                    return Err("the answer did not match the schema: a required field is missing");
                }
            }
            for (name, field) in fields {
                match properties.and_then(|properties| properties.get(name)) {
                    Some(field_schema) => conforms(field, field_schema)?,
                    None if schema.get("additionalProperties") == Some(&Value::Bool(false)) => {
                        return Err("the answer did not match the schema: it has a field the schema does not name");
                    }
                    None => {}
                }
            }
            Ok(())
        }
        Value::Array(items) => {
            let bound = |name: &str| schema.get(name).and_then(Value::as_u64).map(|n| n as usize);
            if bound("minItems").is_some_and(|min| items.len() < min)
                || bound("maxItems").is_some_and(|max| items.len() > max)
            {
                return Err("the answer did not match the schema: a list has too few or too many items");
            }
            match schema.get("items") {
                Some(item_schema) => items.iter().try_for_each(|item| conforms(item, item_schema)),
                None => Ok(()),
            }
        }
        _ => Ok(()),
    }
}

fn type_matches(value: &Value, expected: &Value) -> bool {
    match expected {
        Value::String(name) => is_type(value, name),
        Value::Array(names) => names.iter().filter_map(Value::as_str).any(|name| is_type(value, name)),
        _ => true,
    }
}

fn is_type(value: &Value, name: &str) -> bool {
    match name {
        "object" => value.is_object(),
        "array" => value.is_array(),
        "string" => value.is_string(),
        "boolean" => value.is_boolean(),
        "number" => value.is_number(),
        "integer" => value.is_i64() || value.is_u64(),
        "null" => value.is_null(),
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn verdict_schema() -> Value {
        json!({
            "type": "object",
            "additionalProperties": false,
            "required": ["verdict", "reasoning"],
            "properties": {
                "verdict": {"type": "boolean"},
                "reasoning": {"type": "string"},
                "tags": {"type": "array", "items": {"type": "string", "enum": ["a", "b"]}, "maxItems": 2}
            }
        })
    }

    #[test]
    fn an_answer_in_shape_passes_and_each_way_out_of_it_is_named() {
        let schema = verdict_schema();
        assert_eq!(conforms(&json!({"verdict": true, "reasoning": "ok", "tags": ["a"]}), &schema), Ok(()));
        for (answer, why) in [
            (json!({"verdict": "yes", "reasoning": "ok"}), "wrong type"),
            (json!({"verdict": true}), "required field is missing"),
            (json!({"verdict": true, "reasoning": "ok", "extra": 1}), "does not name"),
            (json!({"verdict": true, "reasoning": "ok", "tags": ["c"]}), "not one of the choices"),
            (json!({"verdict": true, "reasoning": "ok", "tags": ["a", "b", "a"]}), "too few or too many"),
            (json!([1]), "wrong type"),
        ] {
            let refused = conforms(&answer, &schema).unwrap_err();
            assert!(refused.contains(why), "{answer}: {refused}");
        }
    }
}
