//! Walks the syntax tree under the run's budgets: every expression and statement is a step,
//! every string or collection made is weighed against the memory budget, calls nest to a
//! bounded depth, and the clock is read every few hundred steps.

use std::collections::HashMap;
use std::rc::Rc;
use std::time::{Duration, Instant};

use crate::ast::{Expr, FSegment, Function, Pos, Stmt};
use crate::error::{Budget, RunError};
use crate::value::{Closure, Value};

/// The budgets of one run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Expressions and statements evaluated.
    pub max_steps: u64,
    /// Bytes of strings and collections made, in total.
    pub max_memory_bytes: usize,
    /// Nested function calls.
    pub max_depth: usize,
    /// Wall-clock time.
    pub max_duration: Duration,
    /// `print` lines kept.
    pub max_prints: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_steps: 100_000,
            max_memory_bytes: 64 * 1024 * 1024,
            max_depth: 64,
            max_duration: Duration::from_millis(500),
            max_prints: 100,
        }
    }
}

/// What a run returned and printed.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub value: Value,
    pub prints: Vec<String>,
    pub steps: u64,
}

pub(crate) enum Flow {
    Normal,
    Return(Value),
    Break,
    Continue,
}

type Scope = Vec<(Rc<str>, Value)>;

/// How deeply evaluation may nest (expressions in expressions, blocks in blocks, calls),
/// counted together: a bound on the interpreter's own stack, whatever the code.
pub(crate) const MAX_NESTING: usize = 256;

pub(crate) struct Interpreter {
    /// The current nesting of `eval` and `statement`.
    nesting: usize,
    globals: Scope,
    /// Each call's scopes, innermost last; a call sees its own scopes and the globals.
    frames: Vec<Vec<Scope>>,
    functions: HashMap<Rc<str>, Rc<Function>>,
    limits: Limits,
    steps: u64,
    memory: usize,
    started: Instant,
    pub(crate) prints: Vec<String>,
}

pub(crate) fn fail(message: impl Into<String>, pos: Pos) -> RunError {
    RunError::Failed { message: message.into(), line: pos.line, column: pos.column }
}

impl Interpreter {
    pub(crate) fn new(globals: Vec<(Rc<str>, Value)>, limits: Limits) -> Self {
        Self {
            nesting: 0,
            globals,
            frames: vec![vec![Vec::new()]],
            functions: HashMap::new(),
            limits,
            steps: 0,
            memory: 0,
            started: Instant::now(),
            prints: Vec::new(),
        }
    }

    pub(crate) fn run(mut self, program: &[Stmt]) -> Result<Outcome, RunError> {
        let value = match self.block(program)? {
            Flow::Return(value) => value,
            _ => Value::Null,
        };
        Ok(Outcome { value, prints: self.prints, steps: self.steps })
    }

    pub(crate) fn step(&mut self) -> Result<(), RunError> {
        self.steps += 1;
        if self.steps > self.limits.max_steps {
            return Err(RunError::Exceeded(Budget::Steps(self.limits.max_steps)));
        }
        if self.steps.is_multiple_of(256) && self.started.elapsed() > self.limits.max_duration {
            return Err(RunError::Exceeded(Budget::Time(self.limits.max_duration)));
        }
        Ok(())
    }

    /// Counts a value just made against the memory budget.
    pub(crate) fn made(&mut self, value: Value) -> Result<Value, RunError> {
        self.memory += value.weight();
        if self.memory > self.limits.max_memory_bytes {
            return Err(RunError::Exceeded(Budget::Memory(self.limits.max_memory_bytes)));
        }
        Ok(value)
    }

    /// Checks that `bytes` more would still fit, before making something that large.
    pub(crate) fn reserve(&mut self, bytes: usize) -> Result<(), RunError> {
        if self.memory.saturating_add(bytes) > self.limits.max_memory_bytes {
            return Err(RunError::Exceeded(Budget::Memory(self.limits.max_memory_bytes)));
        }
        Ok(())
    }

    pub(crate) fn print(&mut self, line: String) -> Result<(), RunError> {
        self.reserve(line.len())?;
        self.memory += line.len();
        if self.prints.len() < self.limits.max_prints {
            self.prints.push(line);
        }
        Ok(())
    }

    fn scopes(&mut self) -> &mut Vec<Scope> {
        self.frames.last_mut().expect("a frame is always open")
    }

    fn lookup(&self, name: &str) -> Option<&Value> {
        let frame = self.frames.last().expect("a frame is always open");
        for scope in frame.iter().rev() {
            if let Some((_, value)) = scope.iter().rev().find(|(n, _)| &**n == name) {
                return Some(value);
            }
        }
        self.globals.iter().find(|(n, _)| &**n == name).map(|(_, v)| v)
    }

    fn lookup_mut(&mut self, name: &str) -> Option<&mut Value> {
        let frame = self.frames.last_mut().expect("a frame is always open");
        for scope in frame.iter_mut().rev() {
            if let Some((_, value)) = scope.iter_mut().rev().find(|(n, _)| &**n == name) {
                return Some(value);
            }
        }
        self.globals.iter_mut().find(|(n, _)| &**n == name).map(|(_, v)| v)
    }

    fn declare(&mut self, name: Rc<str>, value: Value) {
        let scope = self.scopes().last_mut().expect("a scope is always open");
        match scope.iter_mut().find(|(n, _)| *n == name) {
            Some((_, slot)) => *slot = value,
            None => scope.push((name, value)),
        }
    }

    fn block(&mut self, statements: &[Stmt]) -> Result<Flow, RunError> {
        self.scopes().push(Vec::new());
        let mut flow = Flow::Normal;
        for statement in statements {
            flow = self.statement(statement)?;
            if !matches!(flow, Flow::Normal) {
                break;
            }
        }
        self.scopes().pop();
        Ok(flow)
    }

    fn statement(&mut self, statement: &Stmt) -> Result<Flow, RunError> {
        self.enter()?;
        let flow = self.statement_inner(statement);
        self.nesting -= 1;
        flow
    }

    fn enter(&mut self) -> Result<(), RunError> {
        self.step()?;
        if self.nesting >= MAX_NESTING {
            return Err(RunError::Exceeded(Budget::Nesting(MAX_NESTING)));
        }
        self.nesting += 1;
        Ok(())
    }

    fn statement_inner(&mut self, statement: &Stmt) -> Result<Flow, RunError> {
        match statement {
            Stmt::Let(name, value) => {
                let value = match value {
                    Some(expr) => self.eval(expr)?,
                    None => Value::Null,
                };
                self.declare(name.clone(), value);
            }
            Stmt::Assign { target, value, pos } => {
                let value = self.eval(value)?;
                self.assign(target, value, *pos)?;
            }
            Stmt::Expr(expr) => {
                self.eval(expr)?;
            }
            Stmt::If(cond, then, otherwise) => {
                if self.eval(cond)?.truthy() {
                    return self.block(std::slice::from_ref(then));
                } else if let Some(otherwise) = otherwise {
                    return self.block(std::slice::from_ref(otherwise));
                }
            }
            Stmt::While(cond, body) => {
                while self.eval(cond)?.truthy() {
                    match self.block(std::slice::from_ref(body))? {
                        Flow::Break => break,
                        Flow::Return(value) => return Ok(Flow::Return(value)),
                        Flow::Normal | Flow::Continue => {}
                    }
                }
            }
            Stmt::For { init, cond, step, body } => {
                self.scopes().push(Vec::new());
                let flow = self.for_loop(init.as_deref(), cond.as_ref(), step.as_deref(), body);
                self.scopes().pop();
                return flow;
            }
            Stmt::ForIn { key, value, iterable, body, pos } => {
                let items: Vec<(Value, Value)> = match self.eval(iterable)? {
                    // The key of a list element counts from 0, as the reference's loops do
                    // (its indexing, `list[1]`, counts from 1).
                    Value::Array(items) | Value::Tuple(items) => {
                        items.iter().enumerate().map(|(n, v)| (Value::Int(n as i64), v.clone())).collect()
                    }
                    Value::Dict(pairs) => pairs.iter().map(|(k, v)| (Value::Str(k.clone()), v.clone())).collect(),
                    Value::Null => Vec::new(),
                    other => {
                        return Err(fail(format!("cannot loop over a value of type {}", other.type_name()), *pos));
                    }
                };
                for (k, v) in items {
                    self.scopes().push(Vec::new());
                    if let Some(key) = key {
                        self.declare(key.clone(), k);
                        self.declare(value.clone(), v);
                    } else {
                        self.declare(value.clone(), v);
                    }
                    let flow = self.block(std::slice::from_ref(body));
                    self.scopes().pop();
                    match flow? {
                        Flow::Break => break,
                        Flow::Return(value) => return Ok(Flow::Return(value)),
                        Flow::Normal | Flow::Continue => {}
                    }
                }
            }
            Stmt::Function(function) => {
                self.functions.insert(function.name.clone(), function.clone());
            }
            Stmt::Return(value) => {
                let value = match value {
                    Some(expr) => self.eval(expr)?,
                    None => Value::Null,
                };
                return Ok(Flow::Return(value));
            }
            Stmt::Break => return Ok(Flow::Break),
            Stmt::Continue => return Ok(Flow::Continue),
            Stmt::Throw(expr, pos) => {
                let value = self.eval(expr)?;
                let message = value.get_key("message").map_or_else(|| value.display(), Value::display);
                return Err(fail(message, *pos));
            }
            Stmt::Block(statements) => return self.block(statements),
        }
        Ok(Flow::Normal)
    }

    fn for_loop(
        &mut self,
        init: Option<&Stmt>,
        cond: Option<&Expr>,
        step: Option<&Stmt>,
        body: &Stmt,
    ) -> Result<Flow, RunError> {
        if let Some(init) = init {
            self.statement(init)?;
        }
        loop {
            if let Some(cond) = cond
                && !self.eval(cond)?.truthy()
            {
                break;
            }
            match self.block(std::slice::from_ref(body))? {
                Flow::Break => break,
                Flow::Return(value) => return Ok(Flow::Return(value)),
                Flow::Normal | Flow::Continue => {}
            }
            if let Some(step) = step {
                self.statement(step)?;
            } else {
                self.step()?;
            }
        }
        Ok(Flow::Normal)
    }

    fn assign(&mut self, target: &Expr, value: Value, pos: Pos) -> Result<(), RunError> {
        match target {
            Expr::Var(name, _) => match self.lookup_mut(name) {
                Some(slot) => {
                    *slot = value;
                    Ok(())
                }
                None => Err(fail(format!("variable `{name}` is not declared (use `let {name} := ...`)"), pos)),
            },
            Expr::Index { .. } => {
                let mut path = Vec::new();
                let mut node = target;
                while let Expr::Index { target, index, .. } = node {
                    path.push(self.eval(index)?);
                    node = target;
                }
                path.reverse();
                let Expr::Var(name, _) = node else {
                    return Err(fail("only a variable's elements and fields can be assigned to", pos));
                };
                let name = name.clone();
                let Some(root) = self.lookup_mut(&name) else {
                    return Err(fail(format!("variable `{name}` is not declared"), pos));
                };
                set_path(root, &path, value, pos)
            }
            _ => Err(fail("only a variable, an element or a field can be assigned to", pos)),
        }
    }

    pub(crate) fn eval(&mut self, expr: &Expr) -> Result<Value, RunError> {
        self.enter()?;
        let value = self.eval_inner(expr);
        self.nesting -= 1;
        value
    }

    fn eval_inner(&mut self, expr: &Expr) -> Result<Value, RunError> {
        match expr {
            Expr::Null => Ok(Value::Null),
            Expr::Bool(b) => Ok(Value::Bool(*b)),
            Expr::Int(n) => Ok(Value::Int(*n)),
            Expr::Float(n) => Ok(Value::Float(*n)),
            Expr::Str(s) => Ok(Value::Str(s.clone())),
            Expr::FString(segments) => {
                let mut text = String::new();
                for segment in segments {
                    match segment {
                        FSegment::Text(part) => text.push_str(part),
                        FSegment::Code(expr) => {
                            let value = self.eval(expr)?;
                            let shown = value.display();
                            self.reserve(text.len() + shown.len())?;
                            text.push_str(&shown);
                        }
                    }
                }
                self.made(Value::Str(text.into()))
            }
            Expr::Var(name, pos) => match self.lookup(name) {
                Some(value) => Ok(value.clone()),
                None if self.functions.contains_key(name) || crate::stdlib::exists(name) => {
                    Err(fail(format!("`{name}` is a function: call it with ()"), *pos))
                }
                None => Ok(Value::Null),
            },
            Expr::Array(items) => {
                let values = items.iter().map(|item| self.eval(item)).collect::<Result<Vec<_>, _>>()?;
                self.made(Value::Array(Rc::new(values)))
            }
            Expr::Tuple(items) => {
                let values = items.iter().map(|item| self.eval(item)).collect::<Result<Vec<_>, _>>()?;
                self.made(Value::Tuple(Rc::new(values)))
            }
            Expr::Dict(pairs) => {
                let mut entries: Vec<(Rc<str>, Value)> = Vec::with_capacity(pairs.len());
                for (key, value) in pairs {
                    let key: Rc<str> = match self.eval(key)? {
                        Value::Str(s) => s,
                        other => other.display().into(),
                    };
                    let value = self.eval(value)?;
                    match entries.iter_mut().find(|(k, _)| *k == key) {
                        Some((_, slot)) => *slot = value,
                        None => entries.push((key, value)),
                    }
                }
                self.made(Value::Dict(Rc::new(entries)))
            }
            Expr::Index { target, index, nullish, pos } => {
                let target = self.eval(target)?;
                if *nullish && matches!(target, Value::Null) {
                    return Ok(Value::Null);
                }
                let index = self.eval(index)?;
                get_index(&target, &index, *pos)
            }
            Expr::Call { name, args, pos } => self.call(name, args, *pos),
            Expr::Binary { op, left, right, pos } => {
                let left = self.eval(left)?;
                let right = self.eval(right)?;
                let value = crate::operators::binary(*op, &left, &right, *pos)?;
                match value {
                    Value::Str(_) | Value::Array(_) => self.made(value),
                    other => Ok(other),
                }
            }
            Expr::Not(inner) => Ok(Value::Bool(!self.eval(inner)?.truthy())),
            Expr::Neg(inner, pos) => match self.eval(inner)? {
                Value::Int(n) => Ok(Value::Int(n.wrapping_neg())),
                Value::Float(n) => Ok(Value::Float(-n)),
                Value::Null => Ok(Value::Null),
                other => Err(fail(format!("cannot negate a value of type {}", other.type_name()), *pos)),
            },
            Expr::And(left, right) => {
                if !self.eval(left)?.truthy() {
                    return Ok(Value::Bool(false));
                }
                Ok(Value::Bool(self.eval(right)?.truthy()))
            }
            Expr::Or(left, right) => {
                if self.eval(left)?.truthy() {
                    return Ok(Value::Bool(true));
                }
                Ok(Value::Bool(self.eval(right)?.truthy()))
            }
            Expr::Nullish(left, right) => match self.eval(left)? {
                Value::Null => self.eval(right),
                value => Ok(value),
            },
            Expr::Ternary(cond, then, otherwise) => {
                if self.eval(cond)?.truthy() {
                    self.eval(then)
                } else {
                    self.eval(otherwise)
                }
            }
            Expr::Lambda(function) => {
                let frame = self.frames.last().expect("a frame is always open");
                let captured: Vec<(Rc<str>, Value)> = frame.iter().flatten().cloned().collect();
                Ok(Value::Lambda(Rc::new(Closure { function: function.clone(), captured })))
            }
        }
    }

    fn call(&mut self, name: &Rc<str>, args: &[Expr], pos: Pos) -> Result<Value, RunError> {
        let values = args.iter().map(|arg| self.eval(arg)).collect::<Result<Vec<_>, _>>()?;
        if let Some(function) = self.functions.get(name).cloned() {
            return self.call_function(&function, Vec::new(), values, pos);
        }
        if let Some(Value::Lambda(closure)) = self.lookup(name).cloned() {
            return self.call_closure(&closure, values, pos);
        }
        crate::stdlib::call(self, name, values, pos)
    }

    pub(crate) fn call_closure(&mut self, closure: &Closure, args: Vec<Value>, pos: Pos) -> Result<Value, RunError> {
        self.call_function(&closure.function, closure.captured.clone(), args, pos)
    }

    fn call_function(
        &mut self,
        function: &Function,
        captured: Vec<(Rc<str>, Value)>,
        args: Vec<Value>,
        pos: Pos,
    ) -> Result<Value, RunError> {
        if self.frames.len() > self.limits.max_depth {
            return Err(RunError::Exceeded(Budget::Depth(self.limits.max_depth)));
        }
        let mut scope = captured;
        let mut args = args.into_iter();
        for param in &function.params {
            scope.push((param.clone(), args.next().unwrap_or(Value::Null)));
        }
        if args.next().is_some() {
            return Err(fail(
                format!("`{}` takes {} arguments, more were given", function.name, function.params.len()),
                pos,
            ));
        }
        self.frames.push(vec![scope]);
        let flow = self.block(&function.body);
        self.frames.pop();
        match flow? {
            Flow::Return(value) => Ok(value),
            _ => Ok(Value::Null),
        }
    }
}

/// `target[index]`: arrays and tuples from 1 (negative from the end), dicts by key;
/// out of range or absent is null.
pub(crate) fn get_index(target: &Value, index: &Value, pos: Pos) -> Result<Value, RunError> {
    match (target, index) {
        (Value::Null, _) => Ok(Value::Null),
        (Value::Array(items) | Value::Tuple(items), Value::Int(n)) => {
            Ok(position(items.len(), *n).and_then(|at| items.get(at)).cloned().unwrap_or(Value::Null))
        }
        (Value::Dict(_), Value::Str(key)) => Ok(target.get_key(key).cloned().unwrap_or(Value::Null)),
        (Value::Dict(_), other) => Ok(target.get_key(&other.display()).cloned().unwrap_or(Value::Null)),
        (Value::Str(text), Value::Int(n)) => {
            let chars: Vec<char> = text.chars().collect();
            Ok(position(chars.len(), *n)
                .and_then(|at| chars.get(at))
                .map_or(Value::Null, |c| Value::str(&c.to_string())))
        }
        (Value::Array(_) | Value::Tuple(_), Value::Str(_)) => Ok(Value::Null),
        (target, index) => {
            Err(fail(format!("cannot index a value of type {} with a {}", target.type_name(), index.type_name()), pos))
        }
    }
}

/// A 1-based (or negative, from the end) index into `len` items, as a 0-based offset.
pub(crate) fn position(len: usize, n: i64) -> Option<usize> {
    if n > 0 {
        usize::try_from(n - 1).ok().filter(|at| *at < len)
    } else if n < 0 {
        let back = usize::try_from(n.unsigned_abs()).ok()?;
        len.checked_sub(back)
    } else {
        None
    }
}

fn set_path(slot: &mut Value, path: &[Value], value: Value, pos: Pos) -> Result<(), RunError> {
    let Some((index, rest)) = path.split_first() else {
        *slot = value;
        return Ok(());
    };
    match (slot, index) {
        (Value::Array(items), Value::Int(n)) => {
            let items = Rc::make_mut(items);
            let at = position(items.len(), *n).ok_or_else(|| fail(format!("index {n} is out of range"), pos))?;
            set_path(&mut items[at], rest, value, pos)
        }
        (Value::Dict(pairs), key) => {
            let key: Rc<str> = match key {
                Value::Str(s) => s.clone(),
                other => other.display().into(),
            };
            let pairs = Rc::make_mut(pairs);
            match pairs.iter_mut().find(|(k, _)| *k == key) {
                Some((_, existing)) => set_path(existing, rest, value, pos),
                None if rest.is_empty() => {
                    pairs.push((key, value));
                    Ok(())
                }
                None => Err(fail(format!("no field `{key}` to assign into"), pos)),
            }
        }
        (slot, _) => Err(fail(format!("cannot assign into a value of type {}", slot.type_name()), pos)),
    }
}
