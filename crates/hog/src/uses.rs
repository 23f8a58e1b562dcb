//! What a program can see of each variable it does not declare (its globals), read from the
//! syntax tree: nothing, only some fields named in the source, or all of it. A caller that
//! builds large globals (an event's properties) builds only what a program can see.

use std::collections::{BTreeSet, HashMap};
use std::rc::Rc;

use crate::ast::{Expr, FSegment, Stmt};

/// How much of one global a program can see.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum GlobalUse {
    /// The name never appears: the global need not exist.
    #[default]
    Unused,
    /// Only read as `name.field` or `name['field']` with these fields: a dict holding just
    /// those of them that exist gives the same run.
    Fields(BTreeSet<Rc<str>>),
    /// Anything else (passed on, iterated, assigned, indexed by a value): the whole value.
    Whole,
}

impl GlobalUse {
    /// What either of two programs sharing the global can see.
    #[must_use]
    pub fn union(self, other: GlobalUse) -> GlobalUse {
        match (self, other) {
            (GlobalUse::Whole, _) | (_, GlobalUse::Whole) => GlobalUse::Whole,
            (GlobalUse::Unused, only) | (only, GlobalUse::Unused) => only,
            (GlobalUse::Fields(mut these), GlobalUse::Fields(those)) => {
                these.extend(those);
                GlobalUse::Fields(these)
            }
        }
    }
}

/// Each name a program mentions, with how much of it the program can see.
#[derive(Debug, Clone, Default)]
pub struct GlobalUses {
    names: HashMap<Rc<str>, GlobalUse>,
}

impl GlobalUses {
    pub(crate) fn of(statements: &[Stmt]) -> Self {
        let mut uses = Self::default();
        uses.statements(statements);
        uses
    }

    /// How much of global `name` the program can see.
    pub fn of_global(&self, name: &str) -> GlobalUse {
        self.names.get(name).cloned().unwrap_or_default()
    }

    fn whole(&mut self, name: &Rc<str>) {
        self.names.insert(name.clone(), GlobalUse::Whole);
    }

    fn field(&mut self, name: &Rc<str>, field: &Rc<str>) {
        let entry = self.names.entry(name.clone()).or_default();
        *entry = std::mem::take(entry).union(GlobalUse::Fields(BTreeSet::from([field.clone()])));
    }

    fn statements(&mut self, statements: &[Stmt]) {
        for statement in statements {
            self.statement(statement);
        }
    }

    fn statement(&mut self, statement: &Stmt) {
        match statement {
            // Declaring a name reads nothing of a global of that name; the local's reads
            // after it are taken for the global's, which can only make more of it seen.
            Stmt::Let(_, value) => {
                if let Some(value) = value {
                    self.expr(value);
                }
            }
            Stmt::Assign { target, value, .. } => {
                self.expr(target);
                self.expr(value);
            }
            Stmt::Expr(expr) | Stmt::Throw(expr, _) | Stmt::Return(Some(expr)) => self.expr(expr),
            Stmt::If(cond, then, otherwise) => {
                self.expr(cond);
                self.statement(then);
                if let Some(otherwise) = otherwise {
                    self.statement(otherwise);
                }
            }
            Stmt::While(cond, body) => {
                self.expr(cond);
                self.statement(body);
            }
            Stmt::For { init, cond, step, body } => {
                for part in [init, step].into_iter().flatten() {
                    self.statement(part);
                }
                if let Some(cond) = cond {
                    self.expr(cond);
                }
                self.statement(body);
            }
            Stmt::ForIn { iterable, body, .. } => {
                self.expr(iterable);
                self.statement(body);
            }
            Stmt::Function(function) => self.statements(&function.body),
            Stmt::Block(statements) => self.statements(statements),
            Stmt::Return(None) | Stmt::Break | Stmt::Continue => {}
        }
    }

    fn expr(&mut self, expr: &Expr) {
        match expr {
            Expr::Null | Expr::Bool(_) | Expr::Int(_) | Expr::Float(_) | Expr::Str(_) => {}
            Expr::FString(segments) => {
                for segment in segments {
                    if let FSegment::Code(expr) = segment {
                        self.expr(expr);
                    }
                }
            }
            Expr::Var(name, _) => self.whole(name),
            Expr::Index { target, index, .. } => match (&**target, &**index) {
                (Expr::Var(name, _), Expr::Str(field)) => self.field(name, field),
                _ => {
                    self.expr(target);
                    self.expr(index);
                }
            },
            // A call's name may be a variable holding a lambda.
            Expr::Call { name, args, .. } => {
                self.whole(name);
                self.exprs(args);
            }
            Expr::Array(items) | Expr::Tuple(items) => self.exprs(items),
            Expr::Dict(pairs) => {
                for (key, value) in pairs {
                    self.expr(key);
                    self.expr(value);
                }
            }
            Expr::Binary { left, right, .. }
            | Expr::And(left, right)
            | Expr::Or(left, right)
            | Expr::Nullish(left, right) => {
                self.expr(left);
                self.expr(right);
            }
            Expr::Not(inner) | Expr::Neg(inner, _) => self.expr(inner),
            Expr::Ternary(cond, then, otherwise) => {
                self.expr(cond);
                self.expr(then);
                self.expr(otherwise);
            }
            Expr::Lambda(function) => self.statements(&function.body),
        }
    }

    fn exprs(&mut self, exprs: &[Expr]) {
        for expr in exprs {
            self.expr(expr);
        }
    }
}
