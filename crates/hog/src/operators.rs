//! Binary operators with Hog's semantics: arithmetic on numbers (null in, null out),
//! comparisons that are false across types, `||` concatenation, SQL `like`, regular
//! expressions and `in`.

use std::cmp::Ordering;

use crate::ast::{BinOp, Pos};
use crate::error::RunError;
use crate::interpreter::fail;
use crate::value::Value;

/// The longest regular expression accepted, and the size its compiled form may reach.
const MAX_PATTERN_CHARS: usize = 1_000;
const MAX_REGEX_BYTES: usize = 1 << 20;

pub(crate) fn binary(op: BinOp, left: &Value, right: &Value, pos: Pos) -> Result<Value, RunError> {
    match op {
        BinOp::Add | BinOp::Sub | BinOp::Mul | BinOp::Div | BinOp::Mod => arithmetic(op, left, right, pos),
        BinOp::Concat => {
            let text = |v: &Value| if matches!(v, Value::Null) { String::new() } else { v.display() };
            Ok(Value::Str(format!("{}{}", text(left), text(right)).into()))
        }
        BinOp::Eq => Ok(Value::Bool(left.equals(right))),
        BinOp::NotEq => Ok(Value::Bool(!left.equals(right))),
        BinOp::Lt => Ok(Value::Bool(compare(left, right) == Some(Ordering::Less))),
        BinOp::LtEq => Ok(Value::Bool(matches!(compare(left, right), Some(Ordering::Less | Ordering::Equal)))),
        BinOp::Gt => Ok(Value::Bool(compare(left, right) == Some(Ordering::Greater))),
        BinOp::GtEq => Ok(Value::Bool(matches!(compare(left, right), Some(Ordering::Greater | Ordering::Equal)))),
        BinOp::Like | BinOp::ILike | BinOp::NotLike | BinOp::NotILike => {
            let (Value::Str(text), Value::Str(pattern)) = (left, right) else {
                return Ok(Value::Bool(false));
            };
            let insensitive = matches!(op, BinOp::ILike | BinOp::NotILike);
            let found = like(text, pattern, insensitive);
            Ok(Value::Bool(if matches!(op, BinOp::Like | BinOp::ILike) { found } else { !found }))
        }
        BinOp::Regex | BinOp::NotRegex | BinOp::IRegex | BinOp::NotIRegex => {
            let (Value::Str(text), Value::Str(pattern)) = (left, right) else {
                return Ok(Value::Bool(false));
            };
            let insensitive = matches!(op, BinOp::IRegex | BinOp::NotIRegex);
            let found = regex(pattern, insensitive, pos)?.is_match(text);
            Ok(Value::Bool(if matches!(op, BinOp::Regex | BinOp::IRegex) { found } else { !found }))
        }
        BinOp::In | BinOp::NotIn => {
            let found = contains(right, left);
            Ok(Value::Bool(if op == BinOp::In { found } else { !found }))
        }
    }
}

/// Whether `haystack` (a list, a dict's keys, or a string) holds `needle`.
pub(crate) fn contains(haystack: &Value, needle: &Value) -> bool {
    match (haystack, needle) {
        (Value::Array(items) | Value::Tuple(items), _) => items.iter().any(|item| item.equals(needle)),
        (Value::Dict(_), Value::Str(key)) => haystack.get_key(key).is_some(),
        (Value::Str(text), Value::Str(part)) => text.contains(&**part),
        _ => false,
    }
}

fn arithmetic(op: BinOp, left: &Value, right: &Value, pos: Pos) -> Result<Value, RunError> {
    match (left, right) {
        (Value::Null, _) | (_, Value::Null) => Ok(Value::Null),
        (Value::Int(a), Value::Int(b)) => {
            let (a, b) = (*a, *b);
            let result = match op {
                BinOp::Add => a.checked_add(b),
                BinOp::Sub => a.checked_sub(b),
                BinOp::Mul => a.checked_mul(b),
                BinOp::Div => {
                    if b == 0 {
                        return Err(fail("division by zero", pos));
                    }
                    return Ok(if a % b == 0 { Value::Int(a / b) } else { Value::Float(a as f64 / b as f64) });
                }
                BinOp::Mod => {
                    if b == 0 {
                        return Err(fail("modulo by zero", pos));
                    }
                    a.checked_rem(b)
                }
                _ => None,
            };
            result.map(Value::Int).ok_or_else(|| fail("integer overflow", pos))
        }
        (a, b) if a.as_f64().is_some() && b.as_f64().is_some() => {
            let (a, b) = (a.as_f64().unwrap_or(0.0), b.as_f64().unwrap_or(0.0));
            let result = match op {
                BinOp::Add => a + b,
                BinOp::Sub => a - b,
                BinOp::Mul => a * b,
                BinOp::Div if b == 0.0 => return Err(fail("division by zero", pos)),
                BinOp::Div => a / b,
                BinOp::Mod if b == 0.0 => return Err(fail("modulo by zero", pos)),
                _ => a % b,
            };
            Ok(Value::Float(result))
        }
        (Value::Str(a), Value::Str(b)) if op == BinOp::Add => Ok(Value::Str(format!("{a}{b}").into())),
        (Value::Array(a), Value::Array(b)) if op == BinOp::Add => {
            Ok(Value::Array(std::rc::Rc::new(a.iter().chain(b.iter()).cloned().collect())))
        }
        (a, b) => {
            Err(fail(format!("cannot apply `{}` to a {} and a {}", symbol(op), a.type_name(), b.type_name()), pos))
        }
    }
}

fn symbol(op: BinOp) -> &'static str {
    match op {
        BinOp::Add => "+",
        BinOp::Sub => "-",
        BinOp::Mul => "*",
        BinOp::Div => "/",
        _ => "%",
    }
}

/// Numbers by value, strings by text, booleans false < true; across types no order.
pub(crate) fn compare(left: &Value, right: &Value) -> Option<Ordering> {
    match (left, right) {
        (Value::Str(a), Value::Str(b)) => Some(a.cmp(b)),
        (Value::Bool(a), Value::Bool(b)) => Some(a.cmp(b)),
        (a, b) => a.as_f64()?.partial_cmp(&b.as_f64()?),
    }
}

/// SQL `LIKE`: `%` any run, `_` one character, `\` escapes.
pub(crate) fn like(text: &str, pattern: &str, insensitive: bool) -> bool {
    let fold = |s: &str| if insensitive { s.to_lowercase() } else { s.to_owned() };
    let text: Vec<char> = fold(text).chars().collect();
    let pattern: Vec<char> = fold(pattern).chars().collect();
    // Iterative matching with backtracking to the last `%`: linear-ish, no recursion.
    let (mut t, mut p) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        if p < pattern.len() && pattern[p] == '\\' && p + 1 < pattern.len() && pattern[p + 1] == text[t] {
            t += 1;
            p += 2;
        } else if p < pattern.len()
            && (pattern[p] == '_' || (pattern[p] == text[t] && pattern[p] != '%' && pattern[p] != '\\'))
        {
            t += 1;
            p += 1;
        } else if p < pattern.len() && pattern[p] == '%' {
            star = Some((p, t));
            p += 1;
        } else if let Some((star_p, star_t)) = star {
            p = star_p + 1;
            t = star_t + 1;
            star = Some((star_p, star_t + 1));
        } else {
            return false;
        }
    }
    while p < pattern.len() && pattern[p] == '%' {
        p += 1;
    }
    p == pattern.len()
}

/// A compiled regular expression (RE2 semantics: linear time, no backtracking blow-up).
pub(crate) fn regex(pattern: &str, insensitive: bool, pos: Pos) -> Result<regex::Regex, RunError> {
    if pattern.chars().count() > MAX_PATTERN_CHARS {
        return Err(fail(format!("the regular expression is longer than {MAX_PATTERN_CHARS} characters"), pos));
    }
    regex::RegexBuilder::new(pattern)
        .case_insensitive(insensitive)
        .size_limit(MAX_REGEX_BYTES)
        .dfa_size_limit(MAX_REGEX_BYTES)
        .build()
        .map_err(|e| fail(format!("invalid regular expression: {}", first_line(&e.to_string())), pos))
}

fn first_line(text: &str) -> String {
    text.lines().last().unwrap_or(text).trim().to_owned()
}
