//! How many runs of a 10-line evaluator over a 2 KB output one core does, with the program
//! compiled once and compiled per run (`cargo run --release -p hog --example throughput`).
//! A measurement, not a test: the target (20,000 judgements/s end to end) is for
//! the whole path through the job table; this is the interpreter's share of it.

use std::time::Instant;

use hog::{Limits, Value, compile};

/// The evaluator measured (the code bench, `cargo xtask bench --only code`, judges with it too).
const EVALUATOR: &str = include_str!("evaluator.hog");

fn main() {
    let output = "The order ships in three to five working days. ".repeat(42);
    assert!(output.len() > 1_900 && output.len() < 2_100);
    let properties = Value::from_json(&serde_json::json!({"$ai_model": "gpt-5-mini", "$ai_total_cost_usd": 0.01}));
    let runs = 50_000;
    let program = compile(EVALUATOR).expect("the evaluator compiles");
    let started = Instant::now();
    for _ in 0..runs {
        let globals = vec![("output", Value::str(&output)), ("properties", properties.clone())];
        let outcome = program.run(globals, Limits::default()).expect("the evaluator runs");
        assert!(matches!(outcome.value, Value::Bool(true)));
    }
    let compiled_once = runs as f64 / started.elapsed().as_secs_f64();
    let started = Instant::now();
    for _ in 0..runs {
        let globals = vec![("output", Value::str(&output)), ("properties", properties.clone())];
        compile(EVALUATOR).expect("compiles").run(globals, Limits::default()).expect("runs");
    }
    let compiled_each = runs as f64 / started.elapsed().as_secs_f64();
    println!("runs/s on one core: compiled once {compiled_once:.0}, compiled per run {compiled_each:.0}");
}
