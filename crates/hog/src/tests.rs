//! The language as evaluators use it, each budget, and errors with their positions.

use std::time::Duration;

use super::*;

fn run_with(source: &str, globals: Vec<(&str, Value)>) -> Result<Outcome, RunError> {
    compile(source).unwrap_or_else(|e| panic!("{source}: {e}")).run(globals, Limits::default())
}

fn eval(source: &str) -> Value {
    run_with(source, vec![]).unwrap_or_else(|e| panic!("{source}: {e}")).value
}

fn shown(source: &str) -> String {
    eval(source).display()
}

#[test]
fn variables_arithmetic_and_comparisons() {
    assert_eq!(shown("let a := 2; a := a * 3 + 1; return a"), "7");
    assert_eq!(shown("return 7 / 2"), "3.5");
    assert_eq!(shown("return 6 / 2"), "3");
    assert_eq!(shown("return 7 % 3"), "1");
    assert_eq!(shown("return 1 = 1 and 2 == 2 and 1 != 2"), "true");
    assert_eq!(shown("return 1 = '1'"), "false");
    assert_eq!(shown("return null = null"), "true");
    assert_eq!(shown("return 1 < 'a'"), "false");
    assert_eq!(shown("return 'abc' < 'abd'"), "true");
    assert_eq!(shown("return 1 + null"), "null");
    assert_eq!(shown("return 2.5 * 2"), "5.0");
    assert_eq!(shown("return -3 + 1"), "-2");
    assert_eq!(shown("return not true or false"), "false");
    assert_eq!(shown("return 1 > 2 ? 'yes' : 'no'"), "no");
}

#[test]
fn like_matches_as_sql_does_and_in_linear_time() {
    let like = |text: &str, pattern: &str| {
        let globals = vec![("t", Value::str(text)), ("p", Value::str(pattern))];
        run_with("return [t like p, t ilike p]", globals).unwrap().value.display()
    };
    for (text, pattern, expected) in [
        ("abc", "abc", "[true, true]"),
        ("abc", "ab", "[false, false]"),
        ("abc", "%", "[true, true]"),
        ("", "%", "[true, true]"),
        ("abc", "a%c", "[true, true]"),
        ("ac", "a%c", "[true, true]"),
        ("abcabc", "%b%b%", "[true, true]"),
        ("abcabc", "%b%b%b%", "[false, false]"),
        ("abab", "a%ab", "[true, true]"),
        ("aab", "a%ab", "[true, true]"),
        ("ab", "a%ab", "[false, false]"),
        ("Acme Corp", "%acme%", "[false, true]"),
        ("abc", "a_c", "[true, true]"),
        ("ac", "a_c", "[false, false]"),
        ("héc", "h_c", "[true, true]"),
        ("100%", "100\\%", "[true, true]"),
        ("1000", "100\\%", "[false, false]"),
        ("a_b", "a\\_b", "[true, true]"),
        ("axb", "a\\_b", "[false, false]"),
        ("line\nbreak", "line_break", "[true, true]"),
        ("a.b", "a.b", "[true, true]"),
        ("axb", "a.b", "[false, false]"),
        ("(x)", "(%)", "[true, true]"),
    ] {
        assert_eq!(like(text, pattern), expected, "{text:?} like {pattern:?}");
    }
    // Many pieces over a long text (a matcher that backtracks to its last `%` does
    // pieces × length work here); both paths agree.
    let long = "a".repeat(1_000_000);
    assert_eq!(like(&long, &format!("{}b", "%a".repeat(400))), "[false, false]");
    assert_eq!(like(&long, &format!("{}_b", "%a".repeat(400))), "[false, false]");
    assert_eq!(like(&long, &format!("{}%", "%a".repeat(400))), "[true, true]");
    assert_eq!(like(&long, &format!("{}_%", "%a".repeat(400))), "[true, true]");
    let error = run_with(&format!("return 'x' like '{}'", "_".repeat(1_001)), vec![]).unwrap_err();
    assert!(error.to_string().contains("longer than 1000"), "{error}");
}

#[test]
fn strings_and_their_functions() {
    assert_eq!(shown("return 'a' || 'b' || 1"), "ab1");
    assert_eq!(shown("let name := 'Hog'; return f'Hello {name}, {1 + 2}!'"), "Hello Hog, 3!");
    assert_eq!(shown("return length('héllo')"), "5");
    assert_eq!(shown("return upper('abc') || lower('DEF') || trim('  x  ')"), "ABCdefx");
    assert_eq!(shown("return 'hello world' like '%world'"), "true");
    assert_eq!(shown("return 'Hello' ilike 'h%'"), "true");
    assert_eq!(shown("return 'Hello' not like 'h%'"), "true");
    assert_eq!(shown("return match('order 123', '\\\\d+')"), "true");
    assert_eq!(shown("return 'string' =~ 'i.g$'"), "true");
    assert_eq!(shown("return 'string' =~* 'I.G$'"), "true");
    assert_eq!(shown("return replaceAll('a-b-c', '-', '+')"), "a+b+c");
    assert_eq!(shown("return splitByString(',', 'a,b,c')"), "['a', 'b', 'c']");
    assert_eq!(shown("return position('hello', 'l')"), "3");
    assert_eq!(shown("return position('hello', 'z')"), "0");
    assert_eq!(shown("return substring('hello', 2, 3)"), "ell");
    assert_eq!(shown("return toString(12) || toString(1.5) || toString(true)"), "121.5true");
    assert_eq!(shown("return toInt('42') + toInt(3.9)"), "45");
    assert_eq!(shown("return toFloat('2.5')"), "2.5");
    assert_eq!(shown("return toInt('abc')"), "null");
    assert_eq!(shown("return round(2.567, 2)"), "2.57");
    assert_eq!(shown("return 'competitor' in 'our competitor is great'"), "true");
}

#[test]
fn arrays_from_one_dicts_and_lambdas() {
    assert_eq!(shown("let a := [10, 20, 30]; return a[1]"), "10");
    assert_eq!(shown("let a := [10, 20, 30]; return a[-1]"), "30");
    assert_eq!(shown("let a := [10, 20, 30]; return a[4]"), "null");
    assert_eq!(shown("let a := [10, 20, 30]; return a[0]"), "null");
    assert_eq!(shown("let a := [1, 2]; a[2] := 5; return a"), "[1, 5]");
    assert_eq!(shown("let t := (1, 'x'); return t.2"), "x");
    assert_eq!(shown("let d := {'a': {'b': 1}}; return d.a.b + d['a']['b']"), "2");
    assert_eq!(shown("let d := {}; d.x := 1; d['y'] := 2; return d"), "{'x': 1, 'y': 2}");
    assert_eq!(shown("let d := null; return d?.a?.b ?? 'none'"), "none");
    assert_eq!(shown("return has([1, 2], 2) and has({'k': 1}, 'k') and not has([1], 3)"), "true");
    assert_eq!(shown("return indexOf(['a', 'b'], 'b')"), "2");
    assert_eq!(shown("return arrayMap(x -> x * 2, [1, 2, 3])"), "[2, 4, 6]");
    assert_eq!(shown("return arrayFilter((x) -> x > 1, [1, 2, 3])"), "[2, 3]");
    assert_eq!(shown("return arrayExists(x -> x = 'b', ['a', 'b'])"), "true");
    assert_eq!(shown("let n := 10; let add := x -> x + n; return add(5)"), "15");
    assert_eq!(shown("return keys({'a': 1, 'b': 2})"), "['a', 'b']");
    assert_eq!(
        shown("return typeof([]) || typeof({}) || typeof(1) || typeof(1.0) || typeof(null)"),
        "arrayobjectintegerfloatnull"
    );
}

#[test]
fn json_in_and_out() {
    assert_eq!(shown("let d := jsonParse('{\"a\": [1, 2, {\"b\": null}]}'); return d.a[3].b ?? d.a[2]"), "2");
    assert_eq!(shown("return jsonStringify({'a': [1, true, null]})"), "{\"a\":[1,true,null]}");
    let invalid = run_with("return jsonParse('{oops')", vec![]).unwrap_err();
    assert!(invalid.to_string().contains("jsonParse(): not JSON"), "{invalid}");
}

#[test]
fn control_flow_functions_and_prints() {
    let code = "
        fun fib(n) { if (n < 2) { return n } return fib(n - 1) + fib(n - 2) }
        let total := 0
        for (let i := 1; i <= 10; i := i + 1) { if (i % 2 = 0) continue; total := total + i }
        let words := 0
        for (w in ['a', 'b', 'c']) { words := words + 1 }
        for (k, v in {'x': 1, 'y': 2}) { print(k, v) }
        let n := 0
        while (true) { n := n + 1; if (n >= 3) break }
        print(f'fib {fib(10)}')
        return [total, words, n]
    ";
    let outcome = run_with(code, vec![]).unwrap();
    assert_eq!(outcome.value.display(), "[25, 3, 3]");
    assert_eq!(outcome.prints, ["x 1", "y 2", "fib 55"]);
}

#[test]
fn globals_are_what_the_code_sees() {
    let globals = vec![
        ("output", Value::str("{\"answer\": 42}")),
        ("properties", Value::from_json(&serde_json::json!({"$ai_model": "gpt-5", "$ai_total_cost_usd": 0.07}))),
    ];
    let code = "let parsed := jsonParse(output); return parsed.answer = 42 and properties.$ai_total_cost_usd > 0.05";
    assert_eq!(run_with(code, globals).unwrap().value.display(), "true");
}

#[test]
fn syntax_errors_say_where() {
    let cases = [
        ("let x := ", 1, 10),
        ("let x := 1\nreturn x +* 2", 2, 11),
        ("if (true { return 1 }", 1, 10),
        ("return 'open", 1, 8),
        ("let a := [1, 2", 1, 15),
        ("return @", 1, 8),
    ];
    for (source, line, column) in cases {
        let error = compile(source).unwrap_err();
        assert_eq!((error.line, error.column), (line, column), "{source}: {error}");
    }
    let deep = format!("return {}1{}", "(".repeat(500), ")".repeat(500));
    assert!(compile(&deep).unwrap_err().message.contains("nests deeper"));
}

#[test]
fn each_budget_is_an_error_not_a_hang() {
    let program = compile("let i := 0; while (true) { i := i + 1 }").unwrap();
    let steps = program.run(vec![], Limits { max_steps: 10_000, ..Limits::default() }).unwrap_err();
    assert_eq!(steps, RunError::Exceeded(Budget::Steps(10_000)));

    let limits = Limits { max_steps: u64::MAX, max_duration: Duration::from_millis(50), ..Limits::default() };
    let started = std::time::Instant::now();
    assert_eq!(program.run(vec![], limits).unwrap_err(), RunError::Exceeded(Budget::Time(Duration::from_millis(50))));
    assert!(started.elapsed() < Duration::from_secs(2));

    let huge = compile("let s := 'x'; while (true) { s := s || s }").unwrap();
    assert!(matches!(huge.run(vec![], Limits::default()).unwrap_err(), RunError::Exceeded(Budget::Memory(_))));

    let deep = compile("fun f(n) { return f(n + 1) } return f(0)").unwrap();
    assert_eq!(deep.run(vec![], Limits::default()).unwrap_err(), RunError::Exceeded(Budget::Depth(64)));

    let many = compile("let a := []; while (true) { a := a + [1, 2, 3, 4, 5, 6, 7, 8] }").unwrap();
    let error = many.run(vec![], Limits { max_steps: u64::MAX, ..Limits::default() }).unwrap_err();
    assert!(matches!(error, RunError::Exceeded(Budget::Memory(_) | Budget::Time(_))), "{error:?}");
}

#[test]
fn run_time_errors_say_where() {
    let error = run_with("let x := 1\nreturn x + 'a'", vec![]).unwrap_err();
    assert_eq!(
        error,
        RunError::Failed { message: "cannot apply `+` to a integer and a string".into(), line: 2, column: 10 }
    );
    let unknown = run_with("return nope(1)", vec![]).unwrap_err();
    assert!(unknown.to_string().starts_with("unknown function `nope`"), "{unknown}");
    let thrown = run_with("throw 'bad output'", vec![]).unwrap_err();
    assert!(thrown.to_string().starts_with("bad output"), "{thrown}");
    let undeclared = run_with("y := 1", vec![]).unwrap_err();
    assert!(undeclared.to_string().contains("not declared"), "{undeclared}");
}

/// Token soup from a fixed seed: whatever the parser is given, it answers with a program or
/// a positioned error, and whatever compiles runs to a value or an error within its budgets.
#[test]
fn no_input_panics_and_every_run_ends_within_its_budgets() {
    const VOCABULARY: [&str; 58] = [
        "let ",
        "x",
        "y",
        " := ",
        "(",
        ")",
        "[",
        "]",
        "{",
        "}",
        ",",
        ";",
        "1",
        "-2",
        "3.5",
        "'s'",
        "f'{x}'",
        "true",
        "null",
        " + ",
        " - ",
        " * ",
        " / ",
        " % ",
        " = ",
        " < ",
        " and ",
        " or ",
        "not ",
        " ?? ",
        "?.",
        ".",
        "->",
        "if ",
        "else ",
        "while ",
        "for ",
        " in ",
        "return ",
        "fun ",
        "f",
        "break",
        "print",
        "length",
        "arrayMap",
        "jsonParse",
        "'{\"a\":1}'",
        ":",
        " || ",
        " like ",
        "'%'",
        " =~ ",
        "'('",
        "\n",
        "//c\n",
        "x[1]",
        "[x]",
        "{'k': x}",
    ];
    let mut seed: u64 = 0x5eed;
    let mut next = move |bound: usize| {
        seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        ((seed >> 33) as usize) % bound
    };
    let limits = Limits { max_steps: 2_000, max_duration: Duration::from_millis(20), ..Limits::default() };
    let mut compiled = 0;
    for _ in 0..3_000 {
        let length = 1 + next(12);
        let source: String = (0..length).map(|_| VOCABULARY[next(VOCABULARY.len())]).collect();
        match compile(&source) {
            Ok(program) => {
                compiled += 1;
                let started = std::time::Instant::now();
                let _ = program.run(vec![("x", Value::Int(1))], limits);
                assert!(started.elapsed() < Duration::from_millis(500), "{source}");
            }
            Err(error) => assert!(error.line >= 1 && error.column >= 1, "{source}: {error}"),
        }
    }
    assert!(compiled > 50, "the soup should hold some programs: {compiled}");
}

#[test]
fn a_program_sees_the_fields_it_names_and_whatever_it_passes_on_whole() {
    let uses = |source: &str| compile(source).unwrap().global_uses();
    let fields = |names: &[&str]| GlobalUse::Fields(names.iter().map(|n| Rc::from(*n)).collect());

    let read = uses("let t := lower(output)\nreturn properties.$ai_total_cost_usd < properties?.['cap'] ?? 1");
    assert_eq!(read.of_global("properties"), fields(&["$ai_total_cost_usd", "cap"]));
    assert_eq!(read.of_global("output"), GlobalUse::Whole);
    assert_eq!(read.of_global("input"), GlobalUse::Unused);
    assert_eq!(read.of_global("event"), GlobalUse::Unused);
    assert_eq!(uses("return properties.a.b").of_global("properties"), fields(&["a"]));
    assert_eq!(uses("properties.a := 1\nreturn properties.a").of_global("properties"), fields(&["a"]));

    for whole in [
        "return jsonStringify(properties)",
        "let p := properties\nreturn p.a",
        "for (k, v in properties) { print(k) }",
        "let k := 'a'\nreturn properties[k]",
        "return properties[1]",
        "properties := {}",
        "return properties()",
        "return f'{properties}'",
    ] {
        assert_eq!(uses(whole).of_global("properties"), GlobalUse::Whole, "{whole}");
    }
    // A local of the same name only makes more of the global seen.
    let hidden = uses("let properties := {'a': 1}\nfun f(properties) { return properties.b }\nreturn properties.a");
    assert_eq!(hidden.of_global("properties"), fields(&["a", "b"]));
    assert_eq!(GlobalUse::Unused.union(fields(&["a"])).union(fields(&["b"])), fields(&["a", "b"]));
    assert_eq!(fields(&["a"]).union(GlobalUse::Whole), GlobalUse::Whole);
}

mod properties {
    use proptest::prelude::*;

    use super::*;

    /// Expressions that read globals whole or by field, or pass them on.
    fn global_expr() -> impl Strategy<Value = String> {
        let leaf = prop_oneof![
            Just("properties".to_owned()),
            Just("properties.a".to_owned()),
            Just("properties['b']".to_owned()),
            Just("properties?.c".to_owned()),
            Just("properties.a.x".to_owned()),
            Just("properties.zz".to_owned()),
            Just("input".to_owned()),
            Just("event".to_owned()),
            Just("event.properties.e".to_owned()),
            Just("p".to_owned()),
            Just("1".to_owned()),
            Just("'a'".to_owned()),
        ];
        leaf.prop_recursive(3, 12, 2, |inner| {
            prop_oneof![
                (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("({a} ?? {b})")),
                (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("({a} = {b})")),
                (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("[{a}, {b}]")),
                inner.clone().prop_map(|a| format!("jsonStringify({a})")),
                inner.clone().prop_map(|a| format!("length({a})")),
                inner.clone().prop_map(|a| format!("arrayMap(x -> [{a}], [1])")),
                inner.clone().prop_map(|a| format!("arrayMap(properties -> [{a}], [{{'a': 9}}])")),
                inner.prop_map(|a| format!("{{'k': {a}}}")),
            ]
        })
    }

    /// Statements that read, write and hide globals, then a returned expression.
    fn global_program() -> impl Strategy<Value = String> {
        let statement = global_expr().prop_flat_map(|e| {
            prop_oneof![
                Just(format!("print({e})")),
                Just(format!("let p := {e}")),
                Just(format!("properties.a := {e}")),
                Just(format!("properties := {e}")),
                Just(format!("let properties := {e}")),
                Just("for (k, v in properties) { print(k, v) }".to_owned()),
            ]
        });
        (proptest::collection::vec(statement, 0..4), global_expr())
            .prop_map(|(statements, returned)| format!("{}\nreturn {returned}", statements.join("\n")))
    }

    /// Every global, whole.
    fn all_globals() -> Vec<(&'static str, Value)> {
        let properties = serde_json::json!({"a": {"x": 1}, "b": "two", "c": [3], "d": null, "e": "unread"});
        vec![
            ("input", Value::str("the question")),
            ("properties", Value::from_json(&properties)),
            ("event", Value::from_json(&serde_json::json!({"event": "$ai_generation", "properties": properties}))),
            ("unused", Value::Int(7)),
        ]
    }

    /// Only what `program` can see of each global.
    fn seen_globals(program: &Program) -> Vec<(&'static str, Value)> {
        let uses = program.global_uses();
        all_globals()
            .into_iter()
            .filter_map(|(name, value)| match uses.of_global(name) {
                GlobalUse::Unused => None,
                GlobalUse::Whole => Some((name, value)),
                GlobalUse::Fields(fields) => Some((name, Value::from_json_fields(&value.to_json(), &fields))),
            })
            .collect()
    }

    /// A run as its caller sees it: the value, the prints and the steps, or the error.
    fn seen(outcome: Result<Outcome, RunError>) -> Result<(String, Vec<String>, u64), String> {
        outcome.map(|o| (o.value.display(), o.prints, o.steps)).map_err(|e| e.to_string())
    }

    const PIECES: [&str; 40] = [
        "let ", "x", " := ", "(", ")", "[", "]", "{", "}", ",", ";", "1", "'s'", "f'{x}'", "null", " + ", " * ", " = ",
        " and ", "not ", " ?? ", "?.", ".", "->", "if ", "else ", "while ", "for ", " in ", "return ", "fun ", "f",
        "print", "length", "arrayMap", ":", " || ", " like ", "\n", "x[1]",
    ];

    fn budget() -> Limits {
        Limits {
            max_steps: 5_000,
            max_duration: Duration::from_millis(50),
            max_memory_bytes: 1 << 20,
            ..Limits::default()
        }
    }

    proptest! {
        // 256 cases in the suite; `HOG_PROPTEST_CASES` runs more (the README has a long run).
        #![proptest_config(ProptestConfig::with_cases(
            std::env::var("HOG_PROPTEST_CASES").ok().and_then(|n| n.parse().ok()).unwrap_or(256)
        ))]

        /// Any text at all: compiled or refused with a position, never a panic.
        #[test]
        fn any_text_compiles_or_is_refused_with_a_position(source in "\\PC{0,200}") {
            match compile(&source) {
                Ok(program) => { let _ = program.run(vec![], budget()); }
                Err(error) => prop_assert!(error.line >= 1 && error.column >= 1),
            }
        }

        /// Whatever a program does with its globals, it runs the same with only what
        /// [`Program::global_uses`] says it can see of them.
        #[test]
        fn a_program_runs_the_same_on_what_it_can_see(source in global_program()) {
            let program = compile(&source).unwrap_or_else(|e| panic!("{source}: {e}"));
            let whole = seen(program.run(all_globals(), budget()));
            prop_assert_eq!(seen(program.run(seen_globals(&program), budget())), whole, "{}", source);
        }

        /// Programs made of Hog's own pieces: whatever compiles ends within its budgets.
        #[test]
        fn hog_shaped_programs_end_within_their_budgets(pieces in proptest::collection::vec(0..PIECES.len(), 1..30)) {
            let source: String = pieces.iter().map(|n| PIECES[*n]).collect();
            if let Ok(program) = compile(&source) {
                let started = std::time::Instant::now();
                let _ = program.run(vec![("x", Value::Int(2))], budget());
                prop_assert!(started.elapsed() < Duration::from_millis(1_000), "{}", source);
            }
        }
    }
}

#[test]
fn deep_nesting_inside_deep_recursion_is_a_budget_error_not_a_stack_overflow() {
    let nested = format!("{}f(n + 1){}", "1 + [".repeat(45), "][1]".repeat(45));
    let source = format!("fun f(n) {{ if (n > 1000) {{ return 0 }} return {nested} }}\nreturn f(0)");
    let error = std::thread::Builder::new()
        .stack_size(2 * 1024 * 1024)
        .spawn(move || compile(&source).unwrap().run(vec![], Limits::default()).map(|o| o.value.display()))
        .unwrap()
        .join()
        .expect("the run must not overflow its stack");
    assert_eq!(error, Err(RunError::Exceeded(Budget::Nesting(crate::interpreter::MAX_NESTING))));
}

#[test]
fn looping_over_a_number_says_where() {
    let error = run_with("let n := 5\nfor (x in n) { print(x) }", vec![]).unwrap_err();
    assert_eq!(
        error,
        RunError::Failed { message: "cannot loop over a value of type integer".into(), line: 2, column: 11 }
    );
}
