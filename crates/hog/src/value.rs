//! Hog's values: null, booleans, integers, floats, strings, arrays, tuples, dicts and
//! functions. Collections are shared and copied on write, so passing one around is cheap.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::rc::Rc;

use crate::ast::Function;

#[derive(Debug, Clone)]
pub enum Value {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(Rc<str>),
    Array(Rc<Vec<Value>>),
    Tuple(Rc<Vec<Value>>),
    /// Keys in insertion order.
    Dict(Rc<Vec<(Rc<str>, Value)>>),
    Lambda(Rc<Closure>),
}

/// A lambda with the variables it saw when it was made.
#[derive(Debug)]
pub struct Closure {
    pub(crate) function: Rc<Function>,
    pub(crate) captured: Vec<(Rc<str>, Value)>,
}

impl Value {
    pub fn str(text: &str) -> Self {
        Value::Str(text.into())
    }

    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Bool(_) => "boolean",
            Value::Int(_) => "integer",
            Value::Float(_) => "float",
            Value::Str(_) => "string",
            Value::Array(_) => "array",
            Value::Tuple(_) => "tuple",
            Value::Dict(_) => "object",
            Value::Lambda(_) => "function",
        }
    }

    pub fn truthy(&self) -> bool {
        match self {
            Value::Null => false,
            Value::Bool(b) => *b,
            Value::Int(n) => *n != 0,
            Value::Float(n) => *n != 0.0,
            Value::Str(s) => !s.is_empty(),
            Value::Array(items) | Value::Tuple(items) => !items.is_empty(),
            Value::Dict(pairs) => !pairs.is_empty(),
            Value::Lambda(_) => true,
        }
    }

    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Int(n) => Some(*n as f64),
            Value::Float(n) => Some(*n),
            _ => None,
        }
    }

    pub fn get_key(&self, key: &str) -> Option<&Value> {
        match self {
            Value::Dict(pairs) => pairs.iter().find(|(k, _)| &**k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    /// An approximate size in bytes, for the memory budget.
    pub(crate) fn weight(&self) -> usize {
        match self {
            Value::Str(s) => s.len() + 16,
            Value::Array(items) | Value::Tuple(items) => 16 + items.len() * 16,
            Value::Dict(pairs) => 16 + pairs.iter().map(|(k, _)| k.len() + 32).sum::<usize>(),
            _ => 16,
        }
    }

    /// The text `print`, f-strings and `toString` show: strings as they are, the rest as
    /// Hog writes them.
    pub fn display(&self) -> String {
        match self {
            Value::Str(s) => s.to_string(),
            other => {
                let mut out = String::new();
                other.write_literal(&mut out);
                out
            }
        }
    }

    fn write_literal(&self, out: &mut String) {
        match self {
            Value::Null => out.push_str("null"),
            Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Value::Int(n) => {
                let _ = write!(out, "{n}");
            }
            Value::Float(n) => out.push_str(&float_text(*n)),
            Value::Str(s) => {
                out.push('\'');
                for c in s.chars() {
                    match c {
                        '\'' => out.push_str("\\'"),
                        '\\' => out.push_str("\\\\"),
                        '\n' => out.push_str("\\n"),
                        c => out.push(c),
                    }
                }
                out.push('\'');
            }
            Value::Array(items) | Value::Tuple(items) => {
                let (open, close) = if matches!(self, Value::Array(_)) { ('[', ']') } else { ('(', ')') };
                out.push(open);
                for (n, item) in items.iter().enumerate() {
                    if n > 0 {
                        out.push_str(", ");
                    }
                    item.write_literal(out);
                }
                out.push(close);
            }
            Value::Dict(pairs) => {
                out.push('{');
                for (n, (key, value)) in pairs.iter().enumerate() {
                    if n > 0 {
                        out.push_str(", ");
                    }
                    Value::Str(key.clone()).write_literal(out);
                    out.push_str(": ");
                    value.write_literal(out);
                }
                out.push('}');
            }
            Value::Lambda(closure) => {
                let _ = write!(out, "fn<{}({})>", closure.function.name, closure.function.params.len());
            }
        }
    }

    /// Structural equality; integers and floats compare by value.
    pub fn equals(&self, other: &Value) -> bool {
        match (self, other) {
            (Value::Null, Value::Null) => true,
            (Value::Bool(a), Value::Bool(b)) => a == b,
            (Value::Str(a), Value::Str(b)) => a == b,
            (a, b) if a.as_f64().is_some() && b.as_f64().is_some() => a.as_f64() == b.as_f64(),
            (Value::Array(a), Value::Array(b)) | (Value::Tuple(a), Value::Tuple(b)) => {
                a.len() == b.len() && a.iter().zip(b.iter()).all(|(x, y)| x.equals(y))
            }
            (Value::Dict(a), Value::Dict(b)) => {
                a.len() == b.len() && a.iter().all(|(k, v)| other.get_key(k).is_some_and(|w| v.equals(w)))
            }
            (Value::Lambda(a), Value::Lambda(b)) => Rc::ptr_eq(a, b),
            _ => false,
        }
    }

    pub fn from_json(json: &serde_json::Value) -> Value {
        match json {
            serde_json::Value::Null => Value::Null,
            serde_json::Value::Bool(b) => Value::Bool(*b),
            serde_json::Value::Number(n) => match n.as_i64() {
                Some(i) => Value::Int(i),
                None => Value::Float(n.as_f64().unwrap_or(0.0)),
            },
            serde_json::Value::String(s) => Value::Str(s.as_str().into()),
            serde_json::Value::Array(items) => Value::Array(Rc::new(items.iter().map(Value::from_json).collect())),
            serde_json::Value::Object(map) => {
                Value::Dict(Rc::new(map.iter().map(|(k, v)| (Rc::from(k.as_str()), Value::from_json(v))).collect()))
            }
        }
    }

    /// `json` as [`Value::from_json`] makes it, but an object keeps only `fields`: all a
    /// program that reads only those fields of it can see (`GlobalUse::Fields`).
    pub fn from_json_fields(json: &serde_json::Value, fields: &BTreeSet<Rc<str>>) -> Value {
        match json {
            serde_json::Value::Object(map) => Value::Dict(Rc::new(
                map.iter()
                    .filter(|(key, _)| fields.contains(key.as_str()))
                    .map(|(key, value)| (Rc::from(key.as_str()), Value::from_json(value)))
                    .collect(),
            )),
            other => Value::from_json(other),
        }
    }

    pub fn to_json(&self) -> serde_json::Value {
        match self {
            Value::Null | Value::Lambda(_) => serde_json::Value::Null,
            Value::Bool(b) => serde_json::Value::Bool(*b),
            Value::Int(n) => serde_json::Value::from(*n),
            Value::Float(n) => {
                serde_json::Number::from_f64(*n).map_or(serde_json::Value::Null, serde_json::Value::Number)
            }
            Value::Str(s) => serde_json::Value::String(s.to_string()),
            Value::Array(items) | Value::Tuple(items) => {
                serde_json::Value::Array(items.iter().map(Value::to_json).collect())
            }
            Value::Dict(pairs) => {
                serde_json::Value::Object(pairs.iter().map(|(k, v)| (k.to_string(), v.to_json())).collect())
            }
        }
    }
}

/// A float as Hog prints it: `3.0` keeps its point, large and tiny ones their exponent.
pub(crate) fn float_text(n: f64) -> String {
    if n.is_nan() {
        return "NaN".into();
    }
    if n.is_infinite() {
        return if n > 0.0 { "Infinity".into() } else { "-Infinity".into() };
    }
    if n == n.trunc() && n.abs() < 1e16 {
        return format!("{n:.1}");
    }
    format!("{n}")
}
