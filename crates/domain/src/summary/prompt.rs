//! The summary's prompts and output schema, and how runs are split so that no prompt
//! exceeds [`PROMPT_BUDGET_CHARS`].

use serde_json::{Value, json};

use super::{EvaluationRun, PROMPT_BUDGET_CHARS, REASONING_MAX_CHARS, SummaryDraft, SummaryFilter};
use crate::evaluation::Evaluation;

/// The schema name sent with every summary call.
pub const SCHEMA_NAME: &str = "evaluation_summary";
/// Output tokens allowed per call.
pub const MAX_OUTPUT_TOKENS: u32 = 4_000;

/// Bounds on the evaluation's own texts in a prompt, so that runs always have room.
const NAME_MAX_CHARS: usize = 400;
const DESCRIPTION_MAX_CHARS: usize = 2_000;
const JUDGE_PROMPT_MAX_CHARS: usize = 12_000;
const GENERATION_ID_MAX_CHARS: usize = 200;

/// The system text of every summary call.
pub const SYSTEM: &str = "You analyse the results of an LLM-as-a-judge evaluation. You read the judge's criterion \
and each run's verdict and reasoning, find the recurring patterns among passing, failing and not-applicable runs, and \
recommend concrete improvements. Cite only generation ids that appear in the runs you were given. Give 0 to 4 patterns \
per kind, each with 1 to 5 example generation ids, and 2 to 4 recommendations. Answer with JSON matching the schema.";

const MERGE_SYSTEM: &str = "You merge partial analyses of one LLM-as-a-judge evaluation, each written from a different \
slice of its runs, into one analysis of all runs. Combine patterns that describe the same thing, keep their example \
generation ids (only ids the partial analyses cite), and weigh frequency across all slices. Give 0 to 4 patterns per \
kind, each with 1 to 5 example generation ids, and 2 to 4 recommendations. Answer with JSON matching the schema.";

/// Cuts `text` to at most `max` characters (marking the cut).
pub fn truncate(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let mut cut: String = text.chars().take(max.saturating_sub(1)).collect();
    cut.push('…');
    cut
}

/// The JSON schema of the answer (strict mode: every property required, no others).
pub fn schema() -> Value {
    let pattern = json!({
        "type": "object",
        "additionalProperties": false,
        "required": ["title", "description", "frequency", "example_generation_ids"],
        "properties": {
            "title": {"type": "string"},
            "description": {"type": "string"},
            "frequency": {"type": "string", "enum": ["common", "occasional", "rare"]},
            "example_generation_ids": {"type": "array", "items": {"type": "string"}, "minItems": 1, "maxItems": 5}
        }
    });
    let patterns = json!({"type": "array", "items": pattern, "maxItems": 4});
    json!({
        "type": "object",
        "additionalProperties": false,
        "required": ["overall_assessment", "pass_patterns", "fail_patterns", "na_patterns", "recommendations"],
        "properties": {
            "overall_assessment": {"type": "string"},
            "pass_patterns": patterns,
            "fail_patterns": patterns,
            "na_patterns": patterns,
            "recommendations": {"type": "array", "items": {"type": "string"}, "minItems": 2, "maxItems": 4}
        }
    })
}

/// The evaluation's part of every user text: name, description, criterion and goal.
pub fn header(evaluation: &Evaluation, filter: SummaryFilter) -> String {
    format!(
        "Evaluation: {}\nDescription: {}\nJudge prompt (the criterion):\n{}\n\nGoal: {}\n",
        truncate(&evaluation.name, NAME_MAX_CHARS),
        truncate(&evaluation.description, DESCRIPTION_MAX_CHARS),
        truncate(&evaluation.prompt, JUDGE_PROMPT_MAX_CHARS),
        filter.goal(),
    )
}

/// One run as a prompt line.
pub fn run_line(run: &EvaluationRun) -> String {
    format!(
        "- generation_id: {} | result: {} | reasoning: {}\n",
        truncate(&run.generation_id, GENERATION_ID_MAX_CHARS),
        run.result.as_str(),
        truncate(&run.reasoning.replace('\n', " "), REASONING_MAX_CHARS),
    )
}

fn runs_text(header: &str, lines: &[String], part: Option<(usize, usize)>) -> String {
    let title = match part {
        Some((index, total)) => format!("\nRuns (part {index} of {total}, {} runs):\n", lines.len()),
        None => format!("\nRuns ({}):\n", lines.len()),
    };
    let mut text = String::with_capacity(header.len() + title.len() + lines.iter().map(String::len).sum::<usize>());
    text.push_str(header);
    text.push_str(&title);
    for line in lines {
        text.push_str(line);
    }
    text
}

/// The user texts to send: one when everything fits the budget, else one per chunk of
/// runs (each within the budget, runs kept in order).
pub fn run_prompts(header: &str, runs: &[EvaluationRun]) -> Vec<String> {
    let lines: Vec<String> = runs.iter().map(run_line).collect();
    let whole = runs_text(header, &lines, None);
    if fits(&whole) {
        return vec![whole];
    }
    // Room for the part title, whose digits grow with the chunk count.
    let room = budget_for_user().saturating_sub(header.chars().count() + 64);
    let mut chunks: Vec<Vec<String>> = Vec::new();
    let mut used = 0;
    for line in lines {
        let size = line.chars().count();
        if chunks.is_empty() || used + size > room {
            chunks.push(Vec::new());
            used = 0;
        }
        used += size;
        chunks.last_mut().expect("a chunk was just pushed").push(line);
    }
    let total = chunks.len();
    chunks.iter().enumerate().map(|(index, chunk)| runs_text(header, chunk, Some((index + 1, total)))).collect()
}

/// The user text of the merge call: the partial analyses, each cut to its share of the
/// budget.
pub fn merge_prompt(header: &str, partials: &[SummaryDraft]) -> String {
    let share = budget_for_user().saturating_sub(header.chars().count() + 200) / partials.len().max(1);
    let mut text = format!("{header}\nPartial analyses ({}), one per slice of the runs:\n", partials.len());
    for (index, partial) in partials.iter().enumerate() {
        let rendered = serde_json::to_string(partial).unwrap_or_default();
        text.push_str(&format!("\n[{}] ", index + 1));
        text.push_str(&truncate(&rendered, share.saturating_sub(8)));
        text.push('\n');
    }
    text
}

/// The system text of the merge call.
pub fn merge_system() -> &'static str {
    MERGE_SYSTEM
}

fn budget_for_user() -> usize {
    PROMPT_BUDGET_CHARS - SYSTEM.chars().count().max(MERGE_SYSTEM.chars().count())
}

/// Whether a user text, with the longest system text, stays within the budget.
pub fn fits(user: &str) -> bool {
    user.chars().count() <= budget_for_user()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncation_keeps_short_texts_and_cuts_long_ones_to_the_limit() {
        assert_eq!(truncate("short", 10), "short");
        let cut = truncate(&"x".repeat(3_000), REASONING_MAX_CHARS);
        assert_eq!(cut.chars().count(), REASONING_MAX_CHARS);
    }

    #[test]
    fn the_schema_requires_every_property() {
        let schema = schema();
        assert_eq!(schema["required"].as_array().unwrap().len(), schema["properties"].as_object().unwrap().len());
        assert_eq!(schema["additionalProperties"], false);
    }
}
