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
            let found = like(text, pattern, insensitive, pos)?;
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

/// SQL `LIKE`: `%` is any run of characters, `_` one character, a backslash makes the next one
/// literal. A pattern whose only wildcard is `%` is matched piece by piece (each piece's
/// first occurrence after the last, which is exact for `%`), in linear time; any other
/// through a regular expression (linear in the text, bounded in size).
pub(crate) fn like(text: &str, pattern: &str, insensitive: bool, pos: Pos) -> Result<bool, RunError> {
    if pattern.chars().count() > MAX_PATTERN_CHARS {
        return Err(fail(format!("the like pattern is longer than {MAX_PATTERN_CHARS} characters"), pos));
    }
    if insensitive {
        return like_exact(&text.to_lowercase(), &pattern.to_lowercase(), pos);
    }
    like_exact(text, pattern, pos)
}

fn like_exact(text: &str, pattern: &str, pos: Pos) -> Result<bool, RunError> {
    if !pattern.contains(['_', '\\']) {
        return Ok(like_pieces(text, pattern));
    }
    let mut expression = String::from("(?s)^");
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        match c {
            '%' => expression.push_str(".*"),
            '_' => expression.push('.'),
            '\\' => expression.push_str(&regex::escape(&chars.next().unwrap_or('\\').to_string())),
            c => expression.push_str(&regex::escape(c.encode_utf8(&mut [0; 4]))),
        }
    }
    expression.push('$');
    Ok(built_regex(&expression, false, pos)?.is_match(text))
}

/// `%` the only wildcard: the first piece starts the text and the last ends it (unless a
/// `%` is there), the others follow each other in order.
fn like_pieces(text: &str, pattern: &str) -> bool {
    let pieces: Vec<&str> = pattern.split('%').collect();
    let [first, middle @ .., last] = pieces.as_slice() else {
        return text == pattern;
    };
    let Some(mut rest) = text.strip_prefix(first) else {
        return false;
    };
    for piece in middle {
        // memchr's vectorised search: `str::find` was a tenth of a typical evaluator's run
        // (`output like '%name%'` over a 2 KB answer). A match of a whole UTF-8 piece
        // starts and ends on character boundaries.
        match memchr::memmem::find(rest.as_bytes(), piece.as_bytes()) {
            Some(at) => rest = &rest[at + piece.len()..],
            None => return false,
        }
    }
    rest.ends_with(last)
}

/// A compiled regular expression (RE2 semantics: linear time, no backtracking blow-up).
pub(crate) fn regex(pattern: &str, insensitive: bool, pos: Pos) -> Result<regex::Regex, RunError> {
    if pattern.chars().count() > MAX_PATTERN_CHARS {
        return Err(fail(format!("the regular expression is longer than {MAX_PATTERN_CHARS} characters"), pos));
    }
    built_regex(pattern, insensitive, pos)
}

fn built_regex(pattern: &str, insensitive: bool, pos: Pos) -> Result<regex::Regex, RunError> {
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
