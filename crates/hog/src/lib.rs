//! A Hog interpreter for code evaluators (spec section 4.4): Hog source is compiled once
//! (lexed and parsed to a syntax tree, errors with line and column) and run as often as
//! needed against the values an evaluation sees. Pure: no I/O of any kind; every run is
//! bounded by [`Limits`] (operations, memory, call depth, wall-clock time), and exceeding
//! one is an error, never a hang or a crash.
//!
//! Semantics follow Hog's: `let x := 1` declares, `x := 2` assigns, `=` and `==` compare,
//! arrays and tuples are indexed from 1 (negative from the end; out of range is null),
//! `||` concatenates, `??` and `?.` handle null, comparisons across types are false,
//! arithmetic with null is null.

mod ast;
mod error;
mod interpreter;
mod lexer;
mod operators;
mod parser;
mod stdlib;
mod uses;
mod value;

use std::rc::Rc;

pub use error::{Budget, RunError, SyntaxError};
pub use interpreter::{Limits, Outcome};
pub use uses::{GlobalUse, GlobalUses};
pub use value::Value;

/// The most characters a source may hold.
pub const MAX_SOURCE_CHARS: usize = 100_000;

/// Compiled Hog code, ready to run.
#[derive(Debug, Clone)]
pub struct Program {
    statements: Rc<Vec<ast::Stmt>>,
}

/// Compiles `source`, or says where and why it does not parse.
pub fn compile(source: &str) -> Result<Program, SyntaxError> {
    if source.chars().count() > MAX_SOURCE_CHARS {
        return Err(SyntaxError {
            line: 1,
            column: 1,
            message: format!("the code is longer than {MAX_SOURCE_CHARS} characters"),
        });
    }
    let tokens = lexer::lex(source)?;
    let statements = parser::parse_program(tokens)?;
    Ok(Program { statements: Rc::new(statements) })
}

impl Program {
    /// Runs the code with `globals` (name, value) in scope, within `limits`.
    pub fn run(&self, globals: Vec<(&str, Value)>, limits: Limits) -> Result<Outcome, RunError> {
        let globals = globals.into_iter().map(|(name, value)| (Rc::from(name), value)).collect();
        interpreter::Interpreter::new(globals, limits).run(&self.statements)
    }

    /// How much of each global the code can see (see [`GlobalUses`]).
    pub fn global_uses(&self) -> GlobalUses {
        GlobalUses::of(&self.statements)
    }
}

#[cfg(test)]
mod tests;
