//! A trace or session as the judge reads it (spec section 4.1): its events in time order
//! — generations with input, output, model, latency and cost; spans and tool calls with
//! name, input, output and error; the trace event's input and output state — capped, the
//! middle cut with a marker so the start and the end (the task and how it ended) stay.

use serde_json::Value;

use super::Generation;
use super::content;

/// `events` (any order) as text of at most `max_chars` characters.
pub fn render(events: &[Generation], max_chars: usize) -> String {
    let mut ordered: Vec<&Generation> = events.iter().collect();
    ordered.sort_by(|a, b| a.timestamp.cmp(&b.timestamp).then(a.uuid.cmp(&b.uuid)));
    let text = ordered.iter().map(|event| render_event(event)).collect::<Vec<_>>().join("\n");
    cut_middle(text, max_chars)
}

fn render_event(event: &Generation) -> String {
    let properties = &event.properties;
    let text = |key: &str| properties.get(key).filter(|v| !v.is_null());
    let mut header = format!("[{}] {}", event.timestamp.to_rfc3339(), event.event);
    let name = text("$ai_span_name").or_else(|| text("$ai_tool_name")).and_then(Value::as_str);
    if let Some(name) = name {
        header.push_str(&format!(" \"{name}\""));
    }
    let mut facts = Vec::new();
    if let Some(model) = text("$ai_model").and_then(Value::as_str) {
        facts.push(format!("model {model}"));
    }
    if let Some(latency) = text("$ai_latency").and_then(Value::as_f64) {
        facts.push(format!("latency {latency:.2} s"));
    }
    if let Some(cost) = text("$ai_total_cost_usd").and_then(Value::as_f64) {
        facts.push(format!("cost ${cost:.6}"));
    }
    if !facts.is_empty() {
        header.push_str(&format!(" ({})", facts.join(", ")));
    }
    let mut lines = vec![header];
    let input = text("$ai_input").or_else(|| text("$ai_input_state"));
    let output = text("$ai_output_choices").or_else(|| text("$ai_output")).or_else(|| text("$ai_output_state"));
    for (label, value) in [("input", input), ("output", output)] {
        if let Some(value) = value {
            lines.push(format!("{label}:\n{}", content::render(Some(value))));
        }
    }
    let failed = text("$ai_is_error").and_then(Value::as_bool).unwrap_or(false);
    if let Some(error) = text("$ai_error") {
        lines.push(format!("error:\n{}", content::render(Some(error))));
    } else if failed {
        lines.push("error: (no message)".to_owned());
    }
    lines.join("\n")
}

/// `text` cut to `max_chars` characters by dropping its middle and saying how much went.
fn cut_middle(text: String, max_chars: usize) -> String {
    let total = text.chars().count();
    if total <= max_chars {
        return text;
    }
    let marker_room = 80;
    let keep = max_chars.saturating_sub(marker_room);
    let head_chars = keep / 2;
    let tail_chars = keep - head_chars;
    let cut = total - head_chars - tail_chars;
    let head: String = text.chars().take(head_chars).collect();
    let tail: String = text.chars().skip(total - tail_chars).collect();
    format!("{head}\n[... {cut} characters from the middle were cut ...]\n{tail}")
}

#[cfg(test)]
mod tests {
    use chrono::{Duration, TimeZone, Utc};
    use serde_json::json;
    use uuid::Uuid;

    use super::*;

    fn event(name: &str, second: i64, properties: Value) -> Generation {
        Generation {
            uuid: Uuid::now_v7(),
            event: name.into(),
            distinct_id: "user".into(),
            timestamp: Utc.with_ymd_and_hms(2026, 3, 4, 12, 0, 0).unwrap() + Duration::seconds(second),
            properties: properties.as_object().unwrap().clone(),
        }
    }

    #[test]
    fn events_are_told_in_time_order_with_what_the_judge_needs() {
        let events = [
            event(
                "$ai_generation",
                2,
                json!({"$ai_model": "gpt-5", "$ai_latency": 1.5, "$ai_total_cost_usd": 0.0021,
                       "$ai_input": [{"role": "user", "content": "Book a flight"}],
                       "$ai_output_choices": [{"role": "assistant", "content": "Booked."}]}),
            ),
            event(
                "$ai_span",
                1,
                json!({"$ai_span_name": "search_flights", "$ai_input_state": {"to": "OSL"},
                       "$ai_is_error": true, "$ai_error": "timeout"}),
            ),
        ];
        let text = render(&events, 10_000);
        let span = text.find("$ai_span \"search_flights\"").unwrap();
        let generation = text.find("$ai_generation (model gpt-5, latency 1.50 s, cost $0.002100)").unwrap();
        assert!(span < generation, "{text}");
        for expected in ["{\"to\":\"OSL\"}", "error:\ntimeout", "user: Book a flight", "assistant: Booked."] {
            assert!(text.contains(expected), "{expected} missing from {text}");
        }
    }

    #[test]
    fn a_long_trace_loses_its_middle_and_says_so() {
        let events: Vec<Generation> =
            (0..200).map(|i| event("$ai_span", i, json!({"$ai_span_name": format!("step {i}")}))).collect();
        let text = render(&events, 2_000);
        assert!(text.chars().count() <= 2_000, "{}", text.chars().count());
        assert!(text.contains("\"step 0\"") && text.contains("\"step 199\""), "start and end kept");
        assert!(!text.contains("\"step 100\""));
        assert!(text.contains("characters from the middle were cut"));
    }
}
