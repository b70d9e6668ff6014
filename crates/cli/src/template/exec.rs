//! Executing a parsed template against a JSON value, printing values as Go does.

use std::fmt::Write as _;

use serde_json::Value;

use super::{Command, Node, Operand, Pipeline};

pub(super) fn exec_nodes(nodes: &[Node], dot: &Value, out: &mut String) -> Result<(), String> {
    for node in nodes {
        match node {
            Node::Text(t) => out.push_str(t),
            Node::Action(p) => {
                let v = eval_pipeline(p, dot)?;
                out.push_str(&go_print(&v));
            }
            Node::If(p, then, otherwise) => {
                if truthy(&eval_pipeline(p, dot)?) {
                    exec_nodes(then, dot, out)?;
                } else {
                    exec_nodes(otherwise, dot, out)?;
                }
            }
            Node::Range(p, body, otherwise) => {
                let v = eval_pipeline(p, dot)?;
                let items: Vec<Value> = match v {
                    Value::Array(a) => a,
                    // Go ranges over map values in key order.
                    Value::Object(m) => m.into_iter().map(|(_, v)| v).collect(),
                    Value::Null => Vec::new(),
                    other => return Err(format!("range can't iterate over {}", go_print(&other))),
                };
                if items.is_empty() {
                    exec_nodes(otherwise, dot, out)?;
                }
                for item in &items {
                    exec_nodes(body, item, out)?;
                }
            }
        }
    }
    Ok(())
}

/// Numbers compare by value (JSON has one number type; Go's eq compares ints).
fn values_equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        _ => a == b,
    }
}

fn truthy(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
    }
}

fn eval_pipeline(p: &Pipeline, dot: &Value) -> Result<Value, String> {
    let mut prev: Option<Value> = None;
    for cmd in &p.0 {
        let v = match cmd {
            Command::Value(op) => {
                if prev.is_some() {
                    return Err("can't give argument to non-function".to_string());
                }
                eval_operand(op, dot)?
            }
            Command::Call(name, args) => {
                let mut vals = args
                    .iter()
                    .map(|a| eval_operand(a, dot))
                    .collect::<Result<Vec<_>, _>>()?;
                if let Some(v) = prev.take() {
                    vals.push(v);
                }
                call(name, vals)?
            }
        };
        prev = Some(v);
    }
    Ok(prev.unwrap_or(Value::Null))
}

fn eval_operand(op: &Operand, dot: &Value) -> Result<Value, String> {
    match op {
        Operand::Field(path) => {
            let mut cur = dot;
            for name in path {
                match cur {
                    Value::Object(m) => match m.get(name) {
                        Some(v) => cur = v,
                        None => return Err(format!("map has no entry for key {name:?}")),
                    },
                    Value::Null => return Ok(Value::Null),
                    _ => {
                        return Err(format!(
                            "can't evaluate field {name} in type {}",
                            go_type(cur)
                        ))
                    }
                }
            }
            Ok(cur.clone())
        }
        Operand::Str(s) => Ok(Value::String(s.clone())),
        Operand::Num(n) => Ok(serde_json::Number::from_f64(*n)
            .map(Value::Number)
            .unwrap_or(Value::Null)),
        Operand::Bool(b) => Ok(Value::Bool(*b)),
        Operand::Sub(p) => eval_pipeline(p, dot),
    }
}

fn go_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "nil",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "slice",
        Value::Object(_) => "map",
    }
}

fn call(name: &str, args: Vec<Value>) -> Result<Value, String> {
    let arity = |n: usize| {
        if args.len() == n {
            Ok(())
        } else {
            Err(format!(
                "wrong number of args for {name}: want {n} got {}",
                args.len()
            ))
        }
    };
    match name {
        "json" => {
            arity(1)?;
            serde_json::to_string(&args[0])
                .map(Value::String)
                .map_err(|e| e.to_string())
        }
        "index" => {
            if args.len() < 2 {
                return Err("wrong number of args for index".to_string());
            }
            let mut cur = args[0].clone();
            for key in &args[1..] {
                cur = match (&cur, key) {
                    (Value::Object(m), Value::String(k)) => {
                        m.get(k).cloned().unwrap_or(Value::Null)
                    }
                    (Value::Array(a), Value::Number(n)) => {
                        let i = n.as_f64().unwrap_or(-1.0);
                        if i < 0.0 || i as usize >= a.len() {
                            return Err(format!("error calling index: index out of range: {i}"));
                        }
                        a[i as usize].clone()
                    }
                    (Value::Null, _) => Value::Null,
                    _ => return Err(format!("can't index item of type {}", go_type(&cur))),
                };
            }
            Ok(cur)
        }
        "join" => {
            arity(2)?;
            let sep = go_print(&args[1]);
            match &args[0] {
                Value::Array(a) => Ok(Value::String(
                    a.iter().map(go_print).collect::<Vec<_>>().join(&sep),
                )),
                Value::Null => Ok(Value::String(String::new())),
                other => Err(format!("join: expected a list, got {}", go_type(other))),
            }
        }
        "split" => {
            arity(2)?;
            let s = go_print(&args[0]);
            let sep = go_print(&args[1]);
            Ok(Value::Array(
                s.split(sep.as_str())
                    .map(|p| Value::String(p.to_string()))
                    .collect(),
            ))
        }
        "upper" => {
            arity(1)?;
            Ok(Value::String(go_print(&args[0]).to_uppercase()))
        }
        "lower" => {
            arity(1)?;
            Ok(Value::String(go_print(&args[0]).to_lowercase()))
        }
        "title" => {
            arity(1)?;
            let s = go_print(&args[0]);
            let mut out = String::with_capacity(s.len());
            let mut start = true;
            for c in s.chars() {
                if start {
                    out.extend(c.to_uppercase());
                } else {
                    out.push(c);
                }
                start = c.is_whitespace();
            }
            Ok(Value::String(out))
        }
        "eq" => {
            if args.len() < 2 {
                return Err("wrong number of args for eq".to_string());
            }
            Ok(Value::Bool(
                args[1..].iter().any(|a| values_equal(&args[0], a)),
            ))
        }
        "ne" => {
            arity(2)?;
            Ok(Value::Bool(!values_equal(&args[0], &args[1])))
        }
        "not" => {
            arity(1)?;
            Ok(Value::Bool(!truthy(&args[0])))
        }
        // Go's and/or return the deciding operand, not a bool.
        "and" => Ok(args
            .iter()
            .find(|a| !truthy(a))
            .or(args.last())
            .cloned()
            .unwrap_or(Value::Null)),
        "or" => Ok(args
            .iter()
            .find(|a| truthy(a))
            .or(args.last())
            .cloned()
            .unwrap_or(Value::Null)),
        "len" => {
            arity(1)?;
            let n = match &args[0] {
                Value::Array(a) => a.len(),
                Value::Object(o) => o.len(),
                Value::String(s) => s.len(),
                Value::Null => 0,
                other => return Err(format!("len of type {}", go_type(other))),
            };
            Ok(Value::from(n))
        }
        "print" => Ok(Value::String(go_sprint(&args))),
        "println" => {
            let mut s = args.iter().map(go_print).collect::<Vec<_>>().join(" ");
            s.push('\n');
            Ok(Value::String(s))
        }
        "printf" => {
            let Some(Value::String(fmt)) = args.first() else {
                return Err("printf: first argument must be a format string".to_string());
            };
            Ok(Value::String(sprintf(fmt, &args[1..])))
        }
        _ => Err(format!("function {name:?} not defined")),
    }
}

/// Go's `fmt.Sprint`: spaces only between operands that are not strings.
fn go_sprint(args: &[Value]) -> String {
    let mut out = String::new();
    for (i, a) in args.iter().enumerate() {
        if i > 0 && !a.is_string() && !args[i - 1].is_string() {
            out.push(' ');
        }
        out.push_str(&go_print(a));
    }
    out
}

fn sprintf(fmt: &str, args: &[Value]) -> String {
    let mut out = String::new();
    let mut it = args.iter();
    let mut chars = fmt.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('%') => out.push('%'),
            Some('q') => {
                let v = it.next().map(go_print).unwrap_or_default();
                out.push_str(&serde_json::to_string(&v).unwrap_or_default());
            }
            Some(_) => match it.next() {
                Some(v) => out.push_str(&go_print(v)),
                None => out.push_str("%!v(MISSING)"),
            },
            None => out.push_str("%!(NOVERB)"),
        }
    }
    out
}

/// Prints a value the way Go's `fmt` prints the corresponding Go value.
pub fn go_print(v: &Value) -> String {
    match v {
        Value::Null => "<no value>".to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                i.to_string()
            } else if let Some(u) = n.as_u64() {
                u.to_string()
            } else {
                let f = n.as_f64().unwrap_or(0.0);
                if f.fract() == 0.0 && f.abs() < 1e15 {
                    format!("{}", f as i64)
                } else {
                    f.to_string()
                }
            }
        }
        Value::String(s) => s.clone(),
        Value::Array(a) => {
            let mut s = String::from("[");
            for (i, item) in a.iter().enumerate() {
                if i > 0 {
                    s.push(' ');
                }
                s.push_str(&go_print_nested(item));
            }
            s.push(']');
            s
        }
        Value::Object(m) => {
            let mut s = String::from("map[");
            for (i, (k, item)) in m.iter().enumerate() {
                if i > 0 {
                    s.push(' ');
                }
                let _ = write!(s, "{k}:{}", go_print_nested(item));
            }
            s.push(']');
            s
        }
    }
}

/// Inside containers Go prints nil as `<nil>`, not `<no value>`.
fn go_print_nested(v: &Value) -> String {
    match v {
        Value::Null => "<nil>".to_string(),
        other => go_print(other),
    }
}
