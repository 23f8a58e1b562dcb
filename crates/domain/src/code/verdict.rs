//! A run's answer as a verdict: `true`/`false` pass or fail, `null` is not applicable
//! where the evaluation allows it, printed lines are the reasoning.

use crate::evaluation::OutputType;
use crate::judge::prompt::Verdict;

use super::CodeRun;

/// Why a run's answer is no verdict.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodeVerdictError {
    #[error("the code returned {0}; it must return true, false or null")]
    NotABoolean(String),
    #[error("the code returned null, but the evaluation does not allow N/A (output_type boolean_with_na)")]
    NullNotAllowed,
}

/// The printed lines joined, at most this many characters.
const MAX_REASONING_CHARS: usize = 10_000;

pub fn verdict_of_run(run: &CodeRun, output_type: OutputType) -> Result<Verdict, CodeVerdictError> {
    let returned = run.returned.clone().map_err(CodeVerdictError::NotABoolean)?;
    let reasoning: String = run.prints.join("\n").chars().take(MAX_REASONING_CHARS).collect();
    match (returned, output_type) {
        (Some(result), _) => Ok(Verdict { result: Some(result), applicable: true, reasoning }),
        (None, OutputType::BooleanWithNa) => Ok(Verdict { result: None, applicable: false, reasoning }),
        (None, OutputType::Boolean) => Err(CodeVerdictError::NullNotAllowed),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn run(returned: Result<Option<bool>, String>) -> CodeRun {
        CodeRun { returned, prints: vec!["looked at it".into(), "fine".into()], duration: Duration::ZERO }
    }

    #[test]
    fn booleans_pass_or_fail_null_is_na_only_where_allowed() {
        let pass = verdict_of_run(&run(Ok(Some(true))), OutputType::Boolean).unwrap();
        assert_eq!((pass.result, pass.applicable, pass.reasoning.as_str()), (Some(true), true, "looked at it\nfine"));
        let na = verdict_of_run(&run(Ok(None)), OutputType::BooleanWithNa).unwrap();
        assert_eq!((na.result, na.applicable), (None, false));
        assert_eq!(verdict_of_run(&run(Ok(None)), OutputType::Boolean), Err(CodeVerdictError::NullNotAllowed));
        assert!(matches!(
            verdict_of_run(&run(Err("a string".into())), OutputType::Boolean),
            Err(CodeVerdictError::NotABoolean(_))
        ));
    }
}
