//! The functions an evaluator can call: strings, JSON, arrays and dicts, numbers and
//! conversions, `print` and `typeof`. None does I/O.

use std::rc::Rc;

use crate::ast::Pos;
use crate::error::RunError;
use crate::interpreter::{Interpreter, fail};
use crate::operators::{contains, like, regex};
use crate::value::Value;

const NAMES: [&str; 48] = [
    "print",
    "typeof",
    "length",
    "empty",
    "notEmpty",
    "lower",
    "upper",
    "trim",
    "trimLeft",
    "trimRight",
    "concat",
    "match",
    "like",
    "ilike",
    "replaceAll",
    "replaceOne",
    "splitByString",
    "position",
    "substring",
    "startsWith",
    "endsWith",
    "reverse",
    "jsonParse",
    "jsonStringify",
    "has",
    "indexOf",
    "arrayMap",
    "arrayFilter",
    "arrayExists",
    "arrayCount",
    "arrayReduce",
    "keys",
    "values",
    "toString",
    "toInt",
    "toFloat",
    "round",
    "floor",
    "ceil",
    "abs",
    "min",
    "max",
    "isNull",
    "isNotNull",
    "arrayPushBack",
    "arrayPushFront",
    "arrayPopBack",
    "arrayPopFront",
];

pub(crate) fn exists(name: &str) -> bool {
    NAMES.contains(&name)
}

fn arg(args: &[Value], n: usize) -> &Value {
    args.get(n).unwrap_or(&Value::Null)
}

fn wrong(name: &str, what: &str, pos: Pos) -> RunError {
    fail(format!("{name}() expects {what}"), pos)
}

pub(crate) fn call(vm: &mut Interpreter, name: &str, args: Vec<Value>, pos: Pos) -> Result<Value, RunError> {
    let string_arg = |n: usize| -> Result<Option<&str>, RunError> {
        match arg(&args, n) {
            Value::Null => Ok(None),
            Value::Str(s) => Ok(Some(s)),
            other => Err(fail(format!("{name}() expects a string, got a {}", other.type_name()), pos)),
        }
    };
    let made = |vm: &mut Interpreter, text: String| vm.made(Value::Str(text.into()));
    match name {
        "print" => {
            let line = args.iter().map(Value::display).collect::<Vec<_>>().join(" ");
            vm.print(line)?;
            Ok(Value::Null)
        }
        "typeof" => Ok(Value::str(arg(&args, 0).type_name())),
        "length" => Ok(match arg(&args, 0) {
            Value::Str(s) => Value::Int(s.chars().count() as i64),
            Value::Array(items) | Value::Tuple(items) => Value::Int(items.len() as i64),
            Value::Dict(pairs) => Value::Int(pairs.len() as i64),
            Value::Null => Value::Int(0),
            other => return Err(fail(format!("length() of a {}", other.type_name()), pos)),
        }),
        "empty" | "notEmpty" => {
            let empty = match arg(&args, 0) {
                Value::Null => true,
                Value::Str(s) => s.is_empty(),
                Value::Array(items) | Value::Tuple(items) => items.is_empty(),
                Value::Dict(pairs) => pairs.is_empty(),
                _ => false,
            };
            Ok(Value::Bool(if name == "empty" { empty } else { !empty }))
        }
        "lower" | "upper" | "trim" | "trimLeft" | "trimRight" | "reverse"
            if !matches!(arg(&args, 0), Value::Array(_)) =>
        {
            let Some(s) = string_arg(0)? else { return Ok(Value::Null) };
            let result = match name {
                "lower" => s.to_lowercase(),
                "upper" => s.to_uppercase(),
                "trim" => s.trim().to_owned(),
                "trimLeft" => s.trim_start().to_owned(),
                "trimRight" => s.trim_end().to_owned(),
                _ => s.chars().rev().collect(),
            };
            made(vm, result)
        }
        "reverse" => match arg(&args, 0) {
            Value::Array(items) => vm.made(Value::Array(Rc::new(items.iter().rev().cloned().collect()))),
            _ => Err(wrong(name, "a string or an array", pos)),
        },
        "concat" => {
            let total: usize = args.iter().map(|a| a.weight()).sum();
            vm.reserve(total)?;
            let joined: String =
                args.iter().filter(|a| !matches!(a, Value::Null)).map(Value::display).collect::<Vec<_>>().concat();
            made(vm, joined)
        }
        "match" => {
            let (Some(s), Some(pattern)) = (string_arg(0)?, string_arg(1)?) else { return Ok(Value::Bool(false)) };
            Ok(Value::Bool(regex(pattern, false, pos)?.is_match(s)))
        }
        "like" | "ilike" => {
            let (Some(s), Some(pattern)) = (string_arg(0)?, string_arg(1)?) else { return Ok(Value::Bool(false)) };
            Ok(Value::Bool(like(s, pattern, name == "ilike", pos)?))
        }
        "replaceAll" | "replaceOne" => {
            let (Some(s), Some(from), Some(to)) = (string_arg(0)?, string_arg(1)?, string_arg(2)?) else {
                return Ok(Value::Null);
            };
            if from.is_empty() {
                return made(vm, s.to_owned());
            }
            let count = if name == "replaceAll" { s.matches(from).count() } else { 1 };
            vm.reserve(s.len() + count.saturating_mul(to.len()))?;
            let result = if name == "replaceAll" { s.replace(from, to) } else { s.replacen(from, to, 1) };
            made(vm, result)
        }
        "splitByString" => {
            let (Some(separator), Some(s)) = (string_arg(0)?, string_arg(1)?) else { return Ok(Value::Null) };
            vm.reserve(s.len() * 2)?;
            let parts: Vec<Value> = if separator.is_empty() {
                s.chars().map(|c| Value::str(&c.to_string())).collect()
            } else {
                s.split(separator).map(Value::str).collect()
            };
            vm.made(Value::Array(Rc::new(parts)))
        }
        "position" => {
            let (Some(haystack), Some(needle)) = (string_arg(0)?, string_arg(1)?) else { return Ok(Value::Int(0)) };
            Ok(Value::Int(haystack.find(needle).map_or(0, |at| haystack[..at].chars().count() as i64 + 1)))
        }
        "substring" => {
            let Some(s) = string_arg(0)? else { return Ok(Value::Null) };
            let chars: Vec<char> = s.chars().collect();
            let start = match arg(&args, 1) {
                Value::Int(n) => *n,
                _ => return Err(wrong(name, "(string, start, length?) with a 1-based start", pos)),
            };
            let begin = if start > 0 {
                (start - 1) as usize
            } else {
                chars.len().saturating_sub(start.unsigned_abs() as usize)
            };
            let length = match arg(&args, 2) {
                Value::Int(n) if *n >= 0 => *n as usize,
                Value::Null => chars.len(),
                _ => return Err(wrong(name, "a length of 0 or more", pos)),
            };
            let result: String = chars.iter().skip(begin).take(length).collect();
            made(vm, result)
        }
        "startsWith" | "endsWith" => {
            let (Some(s), Some(part)) = (string_arg(0)?, string_arg(1)?) else { return Ok(Value::Bool(false)) };
            Ok(Value::Bool(if name == "startsWith" { s.starts_with(part) } else { s.ends_with(part) }))
        }
        "jsonParse" => {
            let Some(s) = string_arg(0)? else { return Ok(Value::Null) };
            vm.reserve(s.len() * 2)?;
            match serde_json::from_str::<serde_json::Value>(s) {
                Ok(json) => vm.made(Value::from_json(&json)),
                Err(e) => Err(fail(format!("jsonParse(): not JSON ({e})"), pos)),
            }
        }
        "jsonStringify" => {
            let json = arg(&args, 0).to_json();
            let text = match arg(&args, 1) {
                Value::Int(n) if *n > 0 => serde_json::to_string_pretty(&json),
                _ => serde_json::to_string(&json),
            }
            .unwrap_or_default();
            made(vm, text)
        }
        "has" => Ok(Value::Bool(contains(arg(&args, 0), arg(&args, 1)))),
        "indexOf" => match arg(&args, 0) {
            Value::Array(items) | Value::Tuple(items) => {
                Ok(Value::Int(items.iter().position(|item| item.equals(arg(&args, 1))).map_or(0, |at| at as i64 + 1)))
            }
            Value::Null => Ok(Value::Int(0)),
            _ => Err(wrong(name, "an array", pos)),
        },
        "arrayMap" | "arrayFilter" | "arrayExists" | "arrayCount" => {
            let (Value::Lambda(function), list) = (arg(&args, 0).clone(), arg(&args, 1).clone()) else {
                return Err(wrong(name, "(lambda, array), e.g. arrayMap(x -> x * 2, [1, 2])", pos));
            };
            let items = match list {
                Value::Array(items) | Value::Tuple(items) => items,
                Value::Null => Rc::new(Vec::new()),
                _ => return Err(wrong(name, "(lambda, array)", pos)),
            };
            let mut mapped = Vec::new();
            let mut count = 0;
            for item in items.iter() {
                let result = vm.call_closure(&function, vec![item.clone()], pos)?;
                match name {
                    "arrayMap" => mapped.push(result),
                    "arrayFilter" if result.truthy() => mapped.push(item.clone()),
                    "arrayExists" if result.truthy() => return Ok(Value::Bool(true)),
                    "arrayCount" if result.truthy() => count += 1,
                    _ => {}
                }
            }
            match name {
                "arrayExists" => Ok(Value::Bool(false)),
                "arrayCount" => Ok(Value::Int(count)),
                _ => vm.made(Value::Array(Rc::new(mapped))),
            }
        }
        "arrayReduce" => {
            let (Value::Lambda(function), Value::Array(items)) = (arg(&args, 0).clone(), arg(&args, 1).clone()) else {
                return Err(wrong(name, "(lambda (acc, x), array, initial)", pos));
            };
            let mut acc = arg(&args, 2).clone();
            for item in items.iter() {
                acc = vm.call_closure(&function, vec![acc, item.clone()], pos)?;
            }
            Ok(acc)
        }
        "keys" | "values" => match arg(&args, 0) {
            Value::Dict(pairs) => {
                let items =
                    pairs.iter().map(|(k, v)| if name == "keys" { Value::Str(k.clone()) } else { v.clone() }).collect();
                vm.made(Value::Array(Rc::new(items)))
            }
            Value::Null => vm.made(Value::Array(Rc::new(Vec::new()))),
            _ => Err(wrong(name, "an object", pos)),
        },
        "toString" => match arg(&args, 0) {
            Value::Null => Ok(Value::str("null")),
            value => made(vm, value.display()),
        },
        "toInt" => Ok(match arg(&args, 0) {
            Value::Int(n) => Value::Int(*n),
            Value::Float(n) if n.is_finite() => Value::Int(n.trunc() as i64),
            Value::Bool(b) => Value::Int(i64::from(*b)),
            Value::Str(s) => s.trim().parse::<i64>().map_or_else(
                |_| {
                    s.trim()
                        .parse::<f64>()
                        .ok()
                        .filter(|f| f.is_finite())
                        .map_or(Value::Null, |f| Value::Int(f.trunc() as i64))
                },
                Value::Int,
            ),
            _ => Value::Null,
        }),
        "toFloat" => Ok(match arg(&args, 0) {
            Value::Int(n) => Value::Float(*n as f64),
            Value::Float(n) => Value::Float(*n),
            Value::Bool(b) => Value::Float(if *b { 1.0 } else { 0.0 }),
            Value::Str(s) => s.trim().parse::<f64>().map_or(Value::Null, Value::Float),
            _ => Value::Null,
        }),
        "round" | "floor" | "ceil" | "abs" => {
            let Some(n) = arg(&args, 0).as_f64() else {
                return if matches!(arg(&args, 0), Value::Null) {
                    Ok(Value::Null)
                } else {
                    Err(wrong(name, "a number", pos))
                };
            };
            if let Value::Int(i) = arg(&args, 0) {
                if name == "abs" {
                    return Ok(Value::Int(i.checked_abs().ok_or_else(|| fail("integer overflow", pos))?));
                }
                if args.len() < 2 {
                    return Ok(Value::Int(*i));
                }
            }
            let digits = match arg(&args, 1) {
                Value::Int(d) => (*d).clamp(-15, 15) as i32,
                _ => 0,
            };
            let scale = 10f64.powi(digits);
            let result = match name {
                "round" => (n * scale).round() / scale,
                "floor" => (n * scale).floor() / scale,
                "ceil" => (n * scale).ceil() / scale,
                _ => n.abs(),
            };
            Ok(Value::Float(result))
        }
        "min" | "max" => {
            let candidates: Vec<&Value> = match (args.len(), arg(&args, 0)) {
                (1, Value::Array(items)) => items.iter().collect(),
                _ => args.iter().collect(),
            };
            let mut best: Option<&Value> = None;
            for candidate in candidates.into_iter().filter(|v| !matches!(v, Value::Null)) {
                let better = best.is_none_or(|b| {
                    let order = crate::operators::compare(candidate, b);
                    if name == "min" {
                        order == Some(std::cmp::Ordering::Less)
                    } else {
                        order == Some(std::cmp::Ordering::Greater)
                    }
                });
                if better {
                    best = Some(candidate);
                }
            }
            Ok(best.cloned().unwrap_or(Value::Null))
        }
        "arrayPushBack" | "arrayPushFront" | "arrayPopBack" | "arrayPopFront" => {
            let mut items = match arg(&args, 0) {
                Value::Array(items) => items.as_ref().clone(),
                Value::Null => Vec::new(),
                _ => return Err(wrong(name, "an array", pos)),
            };
            match name {
                "arrayPushBack" => items.push(arg(&args, 1).clone()),
                "arrayPushFront" => items.insert(0, arg(&args, 1).clone()),
                "arrayPopBack" => {
                    items.pop();
                }
                _ if !items.is_empty() => {
                    items.remove(0);
                }
                _ => {}
            }
            vm.made(Value::Array(Rc::new(items)))
        }
        "isNull" => Ok(Value::Bool(matches!(arg(&args, 0), Value::Null))),
        "isNotNull" => Ok(Value::Bool(!matches!(arg(&args, 0), Value::Null))),
        _ => Err(fail(format!("unknown function `{name}`"), pos)),
    }
}
