//! What evaluator code sees of a generation: `input` and `output` as strings (the text, or
//! the JSON text of a structured value, as the reference passes them), `properties`, and
//! `event`.

use serde_json::{Value, json};

use crate::judge::Generation;

/// The globals of one run.
#[derive(Debug, Clone, PartialEq)]
pub struct CodeInput {
    pub input: String,
    pub output: String,
    pub properties: Value,
    pub event: Value,
}

/// The globals for `generation`.
pub fn code_input(generation: &Generation) -> CodeInput {
    let properties = &generation.properties;
    let output = properties.get("$ai_output_choices").or_else(|| properties.get("$ai_output"));
    CodeInput {
        input: as_text(properties.get("$ai_input")),
        output: as_text(output),
        properties: Value::Object(properties.clone()),
        event: json!({
            "uuid": generation.uuid.to_string(),
            "event": generation.event,
            "distinct_id": generation.distinct_id,
            "timestamp": generation.timestamp.to_rfc3339(),
            "properties": Value::Object(properties.clone()),
        }),
    }
}

/// A string as it is; anything else as its JSON text; absent or null as empty.
fn as_text(value: Option<&Value>) -> String {
    match value {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(text)) => text.clone(),
        Some(other) => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use chrono::Utc;
    use uuid::Uuid;

    use super::*;

    #[test]
    fn text_stays_text_and_structures_become_their_json_text() {
        let Value::Object(properties) = json!({
            "$ai_input": [{"role": "user", "content": "Hi"}],
            "$ai_output": "Hello",
            "$ai_model": "gpt-5",
        }) else {
            unreachable!()
        };
        let generation = Generation {
            uuid: Uuid::nil(),
            event: "$ai_generation".into(),
            distinct_id: "u".into(),
            timestamp: Utc::now(),
            properties,
        };
        let input = code_input(&generation);
        assert_eq!(input.input, r#"[{"content":"Hi","role":"user"}]"#);
        assert_eq!(input.output, "Hello");
        assert_eq!(input.properties["$ai_model"], "gpt-5");
        assert_eq!(input.event["event"], "$ai_generation");
    }
}
