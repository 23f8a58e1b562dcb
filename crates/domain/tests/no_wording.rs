//! The domain's errors are data: which field, which rule, which bounds. Sentences for a
//! client, and the reference API's (Django REST framework's) phrases in particular, are
//! chosen by the adapter that answers it. This test reads the domain's sources and fails
//! on wording that crept back in.

use std::fs;
use std::path::{Path, PathBuf};

/// Phrases of the reference's error bodies; none belongs in the domain.
const CLIENT_PHRASES: [&str; 17] = [
    "This field",
    "Ensure this",
    "may not be blank",
    " is required.",
    "Must be a valid",
    "must be a valid UUID",
    "A valid integer",
    "Not found.",
    "is not a valid choice",
    "is not a valid operator",
    "Not a valid",
    "Enter a",
    "Expected a",
    "Authentication credentials",
    "You don't have",
    "Request was throttled",
    "Use ISO 8601",
];

fn sources(dir: &Path, found: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            sources(&path, found);
        } else if path.extension().is_some_and(|e| e == "rs") {
            let name = path.file_name().unwrap().to_string_lossy();
            if !name.ends_with("_tests.rs") && name != "testing.rs" && name != "tests.rs" {
                found.push(path);
            }
        }
    }
}

/// The file's lines before its `#[cfg(test)]` module, comments dropped.
fn code_lines(text: &str) -> Vec<(usize, &str)> {
    text.lines()
        .enumerate()
        .take_while(|(_, line)| line.trim() != "#[cfg(test)]")
        .filter(|(_, line)| !line.trim_start().starts_with("//"))
        .map(|(n, line)| (n + 1, line))
        .collect()
}

/// The string literals of a line (no escapes needed for this check).
fn literals(line: &str) -> Vec<&str> {
    line.split('"').skip(1).step_by(2).collect()
}

fn domain_sources() -> Vec<(String, String)> {
    let mut files = Vec::new();
    sources(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src"), &mut files);
    assert!(files.len() > 50, "the domain's sources were not found");
    files.into_iter().map(|path| (path.display().to_string(), fs::read_to_string(&path).unwrap())).collect()
}

#[test]
fn no_string_of_the_domain_carries_a_client_phrase() {
    let mut found = Vec::new();
    for (path, text) in domain_sources() {
        for (number, line) in code_lines(&text) {
            for literal in literals(line) {
                if let Some(phrase) = CLIENT_PHRASES.iter().find(|phrase| literal.contains(*phrase)) {
                    found.push(format!("{path}:{number}: `{phrase}` in \"{literal}\""));
                }
            }
        }
    }
    assert!(found.is_empty(), "client wording in the domain (word it in adapters-http):\n{}", found.join("\n"));
}

#[test]
fn error_displays_are_terse_descriptions_not_sentences() {
    let mut found = Vec::new();
    for (path, text) in domain_sources() {
        let lines = code_lines(&text);
        for (index, (number, line)) in lines.iter().enumerate() {
            if !line.contains("#[error(") || line.contains("transparent") {
                continue;
            }
            // The literal may sit on the attribute's next line.
            let literal = literals(line)
                .first()
                .copied()
                .or_else(|| lines.get(index + 1).and_then(|(_, next)| literals(next).first().copied()));
            let Some(literal) = literal else { continue };
            let sentence = literal.starts_with(|c: char| c.is_ascii_uppercase()) || literal.ends_with('.');
            if sentence {
                found.push(format!("{path}:{number}: \"{literal}\""));
            }
        }
    }
    assert!(found.is_empty(), "error Display written as a client sentence:\n{}", found.join("\n"));
}

#[test]
fn no_error_type_carries_a_message() {
    let mut found = Vec::new();
    for (path, text) in domain_sources() {
        let mut in_error_type = false;
        for (number, line) in code_lines(&text) {
            if line.contains("thiserror::Error") {
                in_error_type = true;
            } else if line.starts_with('}') {
                in_error_type = false;
            } else if in_error_type && (line.contains("message: String") || line.contains("message: &'static str")) {
                found.push(format!("{path}:{number}: {}", line.trim()));
            }
        }
    }
    assert!(found.is_empty(), "an error type carries a sentence instead of data:\n{}", found.join("\n"));
}
