//! `HogEvaluator`: the domain's [`CodeEvaluator`] over the `hog` interpreter. A run happens
//! on a thread of its own with a stack of [`RUN_STACK_BYTES`] (it is CPU work, and the
//! interpreter's nesting bound is sized for a smaller stack than that), within the spec's
//! budgets (section 4.4): 100,000 operations, 64 MB of values, 1 s, call depth 64.

mod run_threads;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use domain::code::{
    BatchRun, CodeBatch, CodeEvaluator, CodeFailure, CodeInput, CodeReads, CodeRun, CodeSyntaxError, CodeUnavailable,
};
use hog::{GlobalUse, GlobalUses, Limits, Program, Value};
pub use run_threads::{KEPT_THREADS, RUN_STACK_BYTES, RunThreads};

/// Runs Hog code evaluators.
#[derive(Debug, Clone)]
pub struct HogEvaluator {
    limits: Limits,
    threads: RunThreads,
}

impl Default for HogEvaluator {
    fn default() -> Self {
        Self::on(RunThreads::default())
    }
}

impl HogEvaluator {
    /// Running on `threads`, within the spec's budgets.
    pub fn on(threads: RunThreads) -> Self {
        Self {
            limits: Limits {
                max_steps: 100_000,
                max_memory_bytes: 64 * 1024 * 1024,
                max_depth: 64,
                max_duration: Duration::from_secs(1),
                max_prints: 100,
            },
            threads,
        }
    }

    /// With other budgets (tests).
    pub fn with_limits(limits: Limits) -> Self {
        Self { limits, ..Self::default() }
    }
}

fn run_now(limits: Limits, source: &str, input: CodeInput) -> Result<CodeRun, CodeFailure> {
    let started = Instant::now();
    let program = hog::compile(source).map_err(|e| CodeFailure(e.to_string()))?;
    let seen = Seen::by([&program]);
    run_program(limits, &program, globals_of(&input, &seen), started)
}

fn run_program(limits: Limits, program: &Program, globals: Globals, started: Instant) -> Result<CodeRun, CodeFailure> {
    let outcome = program.run(globals, limits).map_err(|e| CodeFailure(e.to_string()))?;
    let returned = match outcome.value {
        Value::Bool(b) => Ok(Some(b)),
        Value::Null => Ok(None),
        other => Err(format!("a {} ({})", other.type_name(), shorten(&other.display()))),
    };
    Ok(CodeRun { returned, prints: outcome.prints, duration: started.elapsed() })
}

/// Each code compiled once, each event's globals made once, of what the codes can see of
/// them (values are shared and copied on write, so no run sees another's changes); after a
/// code's first failure its other runs are skipped. An event's input is dropped once its
/// globals are made, and its globals after its last run, so a batch holds one copy of the
/// events it has yet to judge and none of those it has judged (a worker's batches in
/// flight stay well under the resident floor at which its threads give memory back, and so
/// keep their pages).
fn run_batch_now(limits: Limits, batch: CodeBatch) -> Vec<BatchRun> {
    let programs: Vec<Result<Program, CodeFailure>> =
        batch.sources.iter().map(|source| hog::compile(source).map_err(|e| CodeFailure(e.to_string()))).collect();
    let mut last_run = vec![0; batch.inputs.len()];
    for (index, &(_, input)) in batch.runs.iter().enumerate() {
        if let Some(last) = last_run.get_mut(input) {
            *last = index;
        }
    }
    let seen = Seen::by(programs.iter().flatten());
    let mut inputs: Vec<Option<CodeInput>> = batch.inputs.into_iter().map(Some).collect();
    let mut failed = vec![false; programs.len()];
    let mut globals: Vec<Option<Globals>> = vec![None; inputs.len()];
    let mut answers = Vec::with_capacity(batch.runs.len());
    for (index, &(source, input)) in batch.runs.iter().enumerate() {
        let events = Events { seen: &seen, inputs: &mut inputs, globals: &mut globals };
        answers.push(run_one(limits, &programs, &mut failed, source, input, events));
        if last_run.get(input) == Some(&index) {
            globals[input] = None;
        }
    }
    answers
}

/// The run of `source` on `input` in a batch (see [`run_batch_now`]).
fn run_one(
    limits: Limits,
    programs: &[Result<Program, CodeFailure>],
    failed: &mut [bool],
    source: usize,
    input: usize,
    events: Events,
) -> BatchRun {
    let no_such_run = || Some(Err(CodeFailure("the code evaluator was given no such run".into())));
    let (Some(program), Some(event_globals)) = (programs.get(source), events.globals.get_mut(input)) else {
        return no_such_run();
    };
    if failed[source] {
        return None;
    }
    let started = Instant::now();
    if event_globals.is_none() {
        *event_globals = events.inputs[input].take().map(|event| globals_of(&event, events.seen));
    }
    let Some(event_globals) = event_globals.as_ref() else {
        return no_such_run();
    };
    let answer = program
        .as_ref()
        .map_err(Clone::clone)
        .and_then(|program| run_program(limits, program, event_globals.clone(), started));
    failed[source] = answer.is_err();
    Some(answer)
}

/// The globals a run starts with.
type Globals = Vec<(&'static str, Value)>;

/// A batch's events: what is still to be made of each, and what has been.
struct Events<'a> {
    seen: &'a Seen,
    inputs: &'a mut [Option<CodeInput>],
    globals: &'a mut [Option<Globals>],
}

/// How much of each global the programs of a batch can see, together: a global none of
/// them names is not made, and of the properties only the fields they read (an event's
/// properties hold its input and output again, often most of its size).
struct Seen {
    input: bool,
    output: bool,
    properties: GlobalUse,
    event: bool,
    target: bool,
    evaluation_events: bool,
}

impl Seen {
    fn by<'a>(programs: impl IntoIterator<Item = &'a Program>) -> Self {
        let uses: Vec<GlobalUses> = programs.into_iter().map(Program::global_uses).collect();
        let of = |name: &str| uses.iter().fold(GlobalUse::Unused, |seen, uses| seen.union(uses.of_global(name)));
        let named = |name: &str| of(name) != GlobalUse::Unused;
        Self {
            input: named("input"),
            output: named("output"),
            properties: of("properties"),
            event: named("event"),
            target: named("target"),
            evaluation_events: named("evaluation_events"),
        }
    }
}

fn globals_of(input: &CodeInput, seen: &Seen) -> Globals {
    let mut globals = Vec::with_capacity(6);
    if seen.input {
        globals.push(("input", Value::Str(input.input.as_str().into())));
    }
    if seen.output {
        globals.push(("output", Value::Str(input.output.as_str().into())));
    }
    if seen.event {
        let properties = Value::from_json(&input.properties);
        // `event.properties` shares the properties' value (copied only if the code writes it).
        let event = match Value::from_json(&input.event) {
            Value::Dict(mut fields) => {
                std::rc::Rc::make_mut(&mut fields).push(("properties".into(), properties.clone()));
                Value::Dict(fields)
            }
            other => other,
        };
        globals.push(("properties", properties));
        globals.push(("event", event));
    } else {
        match &seen.properties {
            GlobalUse::Unused => {}
            GlobalUse::Fields(fields) => {
                globals.push(("properties", Value::from_json_fields(&input.properties, fields)));
            }
            GlobalUse::Whole => globals.push(("properties", Value::from_json(&input.properties))),
        }
    }
    if let Some(target) = &input.target {
        if seen.target {
            globals.push(("target", Value::from_json(&target.target)));
        }
        if seen.evaluation_events {
            globals.push(("evaluation_events", Value::from_json(&target.evaluation_events)));
        }
    }
    globals
}

fn shorten(text: &str) -> String {
    let mut short: String = text.chars().take(60).collect();
    if short.len() < text.len() {
        short.push('…');
    }
    short
}

#[async_trait]
impl CodeEvaluator for HogEvaluator {
    fn check(&self, source: &str) -> Result<(), CodeSyntaxError> {
        hog::compile(source).map(drop).map_err(|e| CodeSyntaxError {
            line: e.line,
            column: e.column,
            detail: e.message,
        })
    }

    fn reads(&self, source: &str) -> CodeReads {
        let Ok(program) = hog::compile(source) else {
            return CodeReads::everything();
        };
        let seen = Seen::by([&program]);
        let properties = match seen.properties {
            _ if seen.event => None,
            GlobalUse::Unused => Some(BTreeSet::new()),
            GlobalUse::Fields(fields) => Some(fields.iter().map(|field| field.to_string()).collect()),
            GlobalUse::Whole => None,
        };
        CodeReads { input: seen.input, output: seen.output, event: seen.event, properties }
    }

    async fn run(&self, source: &str, input: CodeInput) -> Result<Result<CodeRun, CodeFailure>, CodeUnavailable> {
        let limits = self.limits;
        let source = source.to_owned();
        self.threads.run(move || run_now(limits, &source, input)).await
    }

    async fn run_batch(&self, batch: CodeBatch) -> Result<Vec<BatchRun>, CodeUnavailable> {
        let limits = self.limits;
        self.threads.run(move || run_batch_now(limits, batch)).await
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn input(output: &str) -> CodeInput {
        CodeInput {
            input: "What is 2 + 2?".into(),
            output: output.into(),
            properties: json!({"$ai_model": "gpt-5", "$ai_total_cost_usd": 0.01}),
            event: json!({"uuid": "0195", "event": "$ai_generation"}),
            target: None,
        }
    }

    #[tokio::test]
    async fn a_verdict_its_reasoning_and_what_is_no_verdict() {
        let evaluator = HogEvaluator::default();
        let source = "print(f'{length(output)} characters'); return length(output) < 2000";
        let run = evaluator.run(source, input("4")).await.unwrap().unwrap();
        assert_eq!((run.returned, run.prints), (Ok(Some(true)), vec!["1 characters".to_owned()]));
        let na = evaluator.run("return null", input("4")).await.unwrap().unwrap();
        assert_eq!(na.returned, Ok(None));
        let text = evaluator.run("return 'yes'", input("4")).await.unwrap().unwrap();
        assert_eq!(text.returned, Err("a string (yes)".to_owned()));
        let cost = evaluator.run("return properties.$ai_total_cost_usd > 0.05", input("4")).await.unwrap().unwrap();
        assert_eq!(cost.returned, Ok(Some(false)));
        let event = "event.properties.$ai_model := 'other'\n\
                     return event.event = '$ai_generation' and event.properties.$ai_model = 'other' \
                     and properties.$ai_model = 'gpt-5'";
        assert_eq!(
            evaluator.run(event, input("4")).await.unwrap().unwrap().returned,
            Ok(Some(true)),
            "event carries the properties"
        );
    }

    #[tokio::test]
    async fn syntax_errors_have_positions_and_a_runaway_ends_within_its_second() {
        let evaluator = HogEvaluator::default();
        assert_eq!(evaluator.check("let x := \nreturn x +").unwrap_err().line, 2);
        let started = Instant::now();
        let failure = evaluator.run("let n := 0; while (true) { n := n + 1 }", input("")).await.unwrap().unwrap_err();
        assert!(failure.0.contains("operations") || failure.0.contains("longer than"), "{failure}");
        assert!(started.elapsed() < Duration::from_secs(3));
    }

    #[tokio::test]
    async fn a_batch_shares_each_events_globals_without_sharing_changes_and_skips_a_code_after_its_failure() {
        let evaluator = HogEvaluator::default();
        let batch = CodeBatch {
            sources: vec![
                // changes its globals: no other run may see the change
                "properties.$ai_model := 'changed'; output := 'changed'; return true".into(),
                "return properties.$ai_model = 'gpt-5' and output != 'changed'".into(),
                "if (output = 'boom') { throw 'boom' }\nreturn true".into(),
                "return (".into(),
            ],
            inputs: vec![input("fine"), input("boom"), input("fine again")],
            runs: vec![(0, 0), (1, 0), (2, 0), (2, 1), (2, 2), (1, 2), (3, 0), (3, 1), (1, 9), (1, 0)],
        };
        let answers = evaluator.run_batch(batch).await.unwrap();
        let returned: Vec<Option<Result<Option<bool>, String>>> = answers
            .iter()
            .map(|answer| {
                answer.as_ref().map(|run| run.as_ref().map(|r| r.returned.clone().unwrap()).map_err(|f| f.0.clone()))
            })
            .collect();
        assert_eq!(returned[..3], [Some(Ok(Some(true))), Some(Ok(Some(true))), Some(Ok(Some(true)))]);
        assert!(matches!(&returned[3], Some(Err(message)) if message.contains("boom")), "{:?}", returned[3]);
        assert_eq!(returned[4], None, "not run after its code failed");
        assert_eq!(returned[5], Some(Ok(Some(true))), "another code goes on");
        assert!(matches!(&returned[6], Some(Err(message)) if message.contains("line 1")), "{:?}", returned[6]);
        assert_eq!(returned[7], None);
        assert!(matches!(&returned[8], Some(Err(message)) if message.contains("no such run")), "{:?}", returned[8]);
        assert_eq!(returned[9], Some(Ok(Some(true))), "an event judged again after its other runs");
    }

    #[test]
    fn what_a_code_reads_is_what_it_names() {
        let evaluator = HogEvaluator::default();
        let reads = evaluator.reads(include_str!("../../hog/examples/evaluator.hog"));
        let cost = BTreeSet::from(["$ai_total_cost_usd".to_owned()]);
        assert_eq!(reads, CodeReads { input: false, output: true, event: false, properties: Some(cost) });
        let event = evaluator.reads("return event.properties.$ai_model = input");
        assert_eq!(event, CodeReads { input: true, output: false, event: true, properties: None });
        let whole = evaluator.reads("return length(jsonStringify(properties)) > 2");
        assert_eq!(whole.properties, None);
        assert_eq!(evaluator.reads("return true").properties, Some(BTreeSet::new()));
        assert_eq!(evaluator.reads("return ("), CodeReads::everything(), "code that does not compile");
    }

    #[tokio::test]
    async fn each_code_of_a_batch_sees_what_it_names_of_an_events_globals_when_another_sees_less() {
        let evaluator = HogEvaluator::default();
        let sources = [
            "return properties.$ai_model = 'gpt-5' and properties.$ai_total_cost_usd = 0.01",
            "let n := 0\nfor (k, v in properties) { n := n + 1 }\nreturn n = 2 and input = 'What is 2 + 2?'",
            "return event.properties.$ai_model = 'gpt-5' and output = 'four'",
        ];
        for codes in [vec![0], vec![0, 1], vec![1, 0, 2], vec![2, 0], vec![1]] {
            let batch = CodeBatch {
                sources: codes.iter().map(|code| sources[*code].to_owned()).collect(),
                inputs: vec![input("four")],
                runs: (0..codes.len()).map(|source| (source, 0)).collect(),
            };
            let answers = evaluator.run_batch(batch).await.unwrap();
            for (code, answer) in codes.iter().zip(answers) {
                let returned = answer.unwrap().unwrap().returned;
                assert_eq!(returned, Ok(Some(true)), "{}, in a batch of codes {codes:?}", sources[*code]);
            }
        }
    }
}
