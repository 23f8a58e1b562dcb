//! What can go wrong: code that does not parse (with its position), and a run that fails or
//! exceeds a budget.

use std::fmt;

/// Code that does not parse; line and column are 1-based.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyntaxError {
    pub line: u32,
    pub column: u32,
    pub message: String,
}

impl fmt::Display for SyntaxError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Syntax error at line {}, column {}: {}", self.line, self.column, self.message)
    }
}

impl std::error::Error for SyntaxError {}

/// Which budget a run exceeded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Budget {
    Steps(u64),
    Memory(usize),
    Depth(usize),
    /// Evaluation nested deeper than this (expressions, blocks and calls together).
    Nesting(usize),
    Time(std::time::Duration),
}

/// Why a run ended without a value.
#[derive(Debug, Clone, PartialEq)]
pub enum RunError {
    /// A budget was exceeded.
    Exceeded(Budget),
    /// The code failed (a type error, an unknown function, a `throw`), where it failed.
    Failed { message: String, line: u32, column: u32 },
}

impl fmt::Display for RunError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RunError::Exceeded(Budget::Steps(max)) => write!(f, "The code ran more than {max} operations"),
            RunError::Exceeded(Budget::Memory(max)) => write!(f, "The code used more than {max} bytes of memory"),
            RunError::Exceeded(Budget::Depth(max)) => write!(f, "The code nested calls deeper than {max}"),
            RunError::Exceeded(Budget::Nesting(max)) => write!(f, "The code nested deeper than {max} levels"),
            RunError::Exceeded(Budget::Time(max)) => write!(f, "The code ran longer than {} ms", max.as_millis()),
            RunError::Failed { message, line, column } => write!(f, "{message} (line {line}, column {column})"),
        }
    }
}

impl std::error::Error for RunError {}
