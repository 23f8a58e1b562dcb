//! The reference's example evaluators (`data/reference_examples.json`, taken from its
//! `hogEvalExamples.json`) as golden tests: each compiles, answers a boolean on a clean
//! generation, and passes, fails and prints where the reference's own tests say it does.

use std::collections::HashMap;

use adapters_hog::HogEvaluator;
use chrono::Utc;
use domain::code::{CodeEvaluator, CodeRun, code_input};
use domain::judge::Generation;
use serde_json::{Value, json};

fn examples() -> HashMap<String, String> {
    let data: Value = serde_json::from_str(include_str!("data/reference_examples.json")).unwrap();
    data["examples"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["label"].as_str().unwrap().to_owned(), e["source"].as_str().unwrap().to_owned()))
        .collect()
}

/// A generation as the reference's tests make one.
fn generation(mut properties: Value) -> Generation {
    let defaults = json!({
        "$ai_input": [
            {"role": "system", "content": "You are a helpful assistant."},
            {"role": "user", "content": "What is PostHog?"}
        ],
        "$ai_output_choices": [{"message": {"role": "assistant",
            "content": "PostHog is an open-source product analytics platform that helps teams understand user behavior."},
            "index": 0}],
        "$ai_model": "gpt-4",
        "$ai_total_cost_usd": 0.01,
        "$ai_latency": 1.5,
    });
    for (key, value) in defaults.as_object().unwrap() {
        if properties.get(key).is_none() {
            properties[key] = value.clone();
        }
    }
    let properties = properties
        .as_object()
        .unwrap()
        .iter()
        .filter(|(_, v)| !v.is_null())
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    Generation {
        uuid: uuid::Uuid::nil(),
        event: "$ai_generation".into(),
        distinct_id: "test-user".into(),
        timestamp: Utc::now(),
        properties,
    }
}

/// The output that satisfies most examples.
fn clean() -> Generation {
    generation(json!({"$ai_output_choices": [{"message": {"role": "assistant", "content":
        "Hello world! I called get_weather and get_news to help you. PostHog is an open-source product analytics \
         platform that helps teams understand user behavior through event tracking and feature flags."}, "index": 0}]}))
}

/// `generation` with `$ai_output` as a plain string instead of the choices.
fn plain_output(text: &str) -> Generation {
    generation(json!({"$ai_output_choices": null, "$ai_output": text}))
}

async fn run(label: &str, generation: &Generation) -> CodeRun {
    let source = examples().remove(label).unwrap_or_else(|| panic!("no example {label}"));
    HogEvaluator::default()
        .run(&source, code_input(generation))
        .await
        .expect("a thread for the run")
        .unwrap_or_else(|e| panic!("{label}: {e}"))
}

#[tokio::test]
async fn every_example_compiles_and_answers_a_boolean_on_a_clean_generation() {
    let examples = examples();
    assert_eq!(examples.len(), 13);
    for (label, source) in examples {
        HogEvaluator::default().check(&source).unwrap_or_else(|e| panic!("{label}: {e}"));
        let ran = run(&label, &clean()).await;
        assert!(matches!(ran.returned, Ok(Some(_))), "{label}: {:?} {:?}", ran.returned, ran.prints);
    }
}

#[tokio::test]
async fn the_examples_pass_on_a_clean_output() {
    for label in [
        "Output not empty",
        "Output quality",
        "Error detection",
        "Refusal detection",
        "Regex safety checks",
        "Cost & latency guard",
        "Contains keywords",
        "Tools called",
    ] {
        let ran = run(label, &clean()).await;
        assert_eq!(ran.returned, Ok(Some(true)), "{label}: {:?}", ran.prints);
    }
}

#[tokio::test]
async fn the_examples_fail_on_bad_output() {
    for (label, output) in [
        ("Output not empty", ""),
        ("Output quality", "short"),
        ("Error detection", "An error occurred\nTraceback follows"),
        ("Refusal detection", "I'm sorry, but I cannot help with that request."),
    ] {
        let ran = run(label, &plain_output(output)).await;
        assert_eq!(ran.returned, Ok(Some(false)), "{label}: {:?}", ran.prints);
    }
}

#[tokio::test]
async fn the_guards_fail_and_say_why() {
    let expensive =
        run("Cost & latency guard", &generation(json!({"$ai_total_cost_usd": 0.10, "$ai_latency": 1.0}))).await;
    assert_eq!(expensive.returned, Ok(Some(false)));
    assert!(expensive.prints.join("\n").contains("exceeds budget"), "{:?}", expensive.prints);

    let turns: Vec<Value> = (0..15).map(|i| json!({"role": "user", "content": format!("Message {i}")})).collect();
    let long = run("Conversation length", &generation(json!({"$ai_input": turns}))).await;
    assert_eq!(long.returned, Ok(Some(false)));
    assert!(long.prints.join("\n").contains("Exceeds limit"), "{:?}", long.prints);

    let email = generation(json!({"$ai_output_choices": [{"message": {"role": "assistant",
        "content": "Contact us at test@example.com"}, "index": 0}]}));
    assert_eq!(run("Regex safety checks", &email).await.returned, Ok(Some(false)));
}

#[tokio::test]
async fn the_quickstart_prints_the_messages_the_choices_and_the_model() {
    let ran = run("Quickstart", &clean()).await;
    assert_eq!(ran.returned, Ok(Some(true)));
    let printed = ran.prints.join("\n");
    for expected in ["[system] You are a helpful assistant.", "[user] What is PostHog?", "Choice 0:", "Model: gpt-4"] {
        assert!(printed.contains(expected), "{expected} in {printed}");
    }

    let plain = generation(json!({"$ai_output_choices": null, "$ai_input": "What is PostHog?",
        "$ai_output": "PostHog is a product analytics platform."}));
    let ran = run("Quickstart", &plain).await;
    assert_eq!(ran.returned, Ok(Some(true)));
    let printed = ran.prints.join("\n");
    assert!(printed.contains("Input: What is PostHog?"), "{printed}");
    assert!(printed.contains("Output: PostHog is a product analytics platform."), "{printed}");
}
