//! The subset of Go's `text/template` that Docker users write in `--format`.
//!
//! Supported: literal text, `{{.}}`, `{{.Field}}`, `{{.A.B}}`, pipelines with
//! `|`, the functions `json`, `index`, `join`, `upper`, `lower`, `title`,
//! `len`, `println`, `printf "%s"`-style verbs `%s %v %d`, string and number
//! literals, `{{range PIPELINE}}…{{end}}`, `{{if PIPELINE}}…{{else}}…{{end}}`
//! and the `table` prefix (header row derived from the field names, cells
//! aligned like Docker's tabwriter). Data is a `serde_json::Value`, so values
//! print as Go prints them: lists as `[a b]`, maps as `map[k:v]`.
//!
//! Hand-written because no maintained crate implements Go template syntax
//! with Go's value printing, which scripts that parse Docker output rely on.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde_json::Value;

#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    #[error("template parsing error: {0}")]
    Parse(String),
    #[error("template: executing {template:?}: {message}")]
    Exec { template: String, message: String },
}

#[derive(Debug, Clone, PartialEq)]
enum Operand {
    /// `.` or `.A.B` (empty path is the dot itself).
    Field(Vec<String>),
    Str(String),
    Num(f64),
    Bool(bool),
    /// A parenthesised pipeline used as an argument.
    Sub(Box<Pipeline>),
}

#[derive(Debug, Clone, PartialEq)]
enum Command {
    Value(Operand),
    Call(String, Vec<Operand>),
}

#[derive(Debug, Clone, PartialEq)]
struct Pipeline(Vec<Command>);

#[derive(Debug, Clone, PartialEq)]
enum Node {
    Text(String),
    Action(Pipeline),
    Range(Pipeline, Vec<Node>, Vec<Node>),
    If(Pipeline, Vec<Node>, Vec<Node>),
}

/// A parsed `--format` template.
#[derive(Debug, Clone)]
pub struct Template {
    source: String,
    nodes: Vec<Node>,
    table: bool,
}

impl Template {
    /// Parses `format`. A leading `table` keyword is recorded and stripped;
    /// literal `\t` and `\n` sequences become tab and newline, as in Docker.
    pub fn parse(format: &str) -> Result<Self, TemplateError> {
        let mut src = format.replace("\\t", "\t").replace("\\n", "\n");
        let mut table = false;
        if let Some(rest) = src.strip_prefix("table") {
            if rest.is_empty() || rest.starts_with(char::is_whitespace) {
                table = true;
                src = rest.trim_start().to_string();
            }
        }
        let tokens = lex(&src)?;
        let mut pos = 0;
        let (nodes, end) = parse_nodes(&tokens, &mut pos)?;
        if let Some(end) = end {
            return Err(TemplateError::Parse(format!("unexpected {{{{{end}}}}}")));
        }
        Ok(Self {
            source: format.to_string(),
            nodes,
            table,
        })
    }

    /// Whether the template began with `table`.
    pub fn is_table(&self) -> bool {
        self.table
    }

    /// Renders the template once against `data`.
    pub fn render(&self, data: &Value) -> Result<String, TemplateError> {
        let mut out = String::new();
        exec_nodes(&self.nodes, data, &mut out).map_err(|message| TemplateError::Exec {
            template: self.source.clone(),
            message,
        })?;
        Ok(out)
    }

    /// The header row for a `table` template: every `{{.Field}}` action is
    /// replaced by `headers[Field]` (or the upper-cased field name), text kept.
    pub fn render_header(&self, headers: &BTreeMap<&str, &str>) -> String {
        let mut out = String::new();
        for node in &self.nodes {
            match node {
                Node::Text(t) => out.push_str(t),
                Node::Action(p) => {
                    let name = pipeline_field_name(p).unwrap_or_default();
                    match headers.get(name.as_str()) {
                        Some(h) => out.push_str(h),
                        None => out.push_str(&name.to_uppercase()),
                    }
                }
                Node::Range(..) | Node::If(..) => {}
            }
        }
        out
    }
}

/// The last field name a pipeline reads (`{{json .Labels}}` → `Labels`).
fn pipeline_field_name(p: &Pipeline) -> Option<String> {
    for cmd in p.0.iter().rev() {
        let ops: Vec<&Operand> = match cmd {
            Command::Value(op) => vec![op],
            Command::Call(_, args) => args.iter().collect(),
        };
        for op in ops.into_iter().rev() {
            if let Operand::Field(path) = op {
                if let Some(last) = path.last() {
                    return Some(last.clone());
                }
            }
        }
    }
    None
}

// ---------------------------------------------------------------- lexing

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Text(String),
    /// The inside of one `{{ … }}`, trimmed, with `-` trim markers applied.
    Action(String),
}

fn lex(src: &str) -> Result<Vec<Token>, TemplateError> {
    let mut tokens: Vec<Token> = Vec::new();
    let mut rest = src;
    while let Some(start) = rest.find("{{") {
        let mut text = rest[..start].to_string();
        let after = &rest[start + 2..];
        let end = find_action_end(after)
            .ok_or_else(|| TemplateError::Parse("unclosed action".to_string()))?;
        let mut inner = &after[..end];
        if let Some(stripped) = inner.strip_prefix("- ") {
            text = text.trim_end().to_string();
            inner = stripped;
        }
        let mut trim_next = false;
        if let Some(stripped) = inner.strip_suffix(" -") {
            trim_next = true;
            inner = stripped;
        }
        if !text.is_empty() {
            tokens.push(Token::Text(text));
        }
        let inner = inner.trim();
        if !inner.starts_with("/*") {
            tokens.push(Token::Action(inner.to_string()));
        }
        rest = &after[end + 2..];
        if trim_next {
            rest = rest.trim_start();
        }
    }
    if !rest.is_empty() {
        tokens.push(Token::Text(rest.to_string()));
    }
    Ok(tokens)
}

/// Position of the closing `}}`, skipping over quoted strings.
fn find_action_end(s: &str) -> Option<usize> {
    let bytes = s.as_bytes();
    let mut i = 0;
    let mut quote: Option<u8> = None;
    while i < bytes.len() {
        let b = bytes[i];
        match quote {
            Some(q) => {
                if b == b'\\' && q == b'"' {
                    i += 1;
                } else if b == q {
                    quote = None;
                }
            }
            None => {
                if b == b'"' || b == b'`' {
                    quote = Some(b);
                } else if b == b'}' && bytes.get(i + 1) == Some(&b'}') {
                    return Some(i);
                }
            }
        }
        i += 1;
    }
    None
}

// ---------------------------------------------------------------- parsing

/// Parses nodes until `{{end}}` / `{{else}}` (returned as the terminator).
fn parse_nodes(
    tokens: &[Token],
    pos: &mut usize,
) -> Result<(Vec<Node>, Option<String>), TemplateError> {
    let mut nodes = Vec::new();
    while *pos < tokens.len() {
        let tok = tokens[*pos].clone();
        *pos += 1;
        match tok {
            Token::Text(t) => nodes.push(Node::Text(t)),
            Token::Action(a) => {
                if a == "end" || a == "else" {
                    return Ok((nodes, Some(a)));
                }
                if let Some(rest) = keyword_rest(&a, "range") {
                    let pipe = parse_pipeline(rest)?;
                    let (body, else_body) = parse_block(tokens, pos, "range")?;
                    nodes.push(Node::Range(pipe, body, else_body));
                } else if let Some(rest) = keyword_rest(&a, "if") {
                    let pipe = parse_pipeline(rest)?;
                    let (body, else_body) = parse_block(tokens, pos, "if")?;
                    nodes.push(Node::If(pipe, body, else_body));
                } else {
                    nodes.push(Node::Action(parse_pipeline(&a)?));
                }
            }
        }
    }
    Ok((nodes, None))
}

fn keyword_rest<'a>(action: &'a str, keyword: &str) -> Option<&'a str> {
    let rest = action.strip_prefix(keyword)?;
    if rest.starts_with(char::is_whitespace) {
        Some(rest.trim())
    } else {
        None
    }
}

fn parse_block(
    tokens: &[Token],
    pos: &mut usize,
    what: &str,
) -> Result<(Vec<Node>, Vec<Node>), TemplateError> {
    let (body, end) = parse_nodes(tokens, pos)?;
    match end.as_deref() {
        Some("end") => Ok((body, Vec::new())),
        Some("else") => {
            let (else_body, end) = parse_nodes(tokens, pos)?;
            if end.as_deref() != Some("end") {
                return Err(TemplateError::Parse(format!("unexpected EOF in {what}")));
            }
            Ok((body, else_body))
        }
        _ => Err(TemplateError::Parse(format!("unexpected EOF in {what}"))),
    }
}

fn parse_pipeline(src: &str) -> Result<Pipeline, TemplateError> {
    let words = split_words(src)?;
    let mut cmds = Vec::new();
    for group in words.split(|w| w == "|") {
        if group.is_empty() {
            return Err(TemplateError::Parse(format!("missing command in {src:?}")));
        }
        cmds.push(parse_command(group)?);
    }
    if cmds.is_empty() {
        return Err(TemplateError::Parse(
            "missing value for command".to_string(),
        ));
    }
    Ok(Pipeline(cmds))
}

fn parse_command(words: &[String]) -> Result<Command, TemplateError> {
    let first = &words[0];
    let is_ident = first
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic())
        && !matches!(first.as_str(), "true" | "false");
    if is_ident {
        if !KNOWN_FUNCS.contains(&first.as_str()) {
            return Err(TemplateError::Parse(format!(
                "function {first:?} not defined"
            )));
        }
        let args = words[1..]
            .iter()
            .map(|w| parse_operand(w))
            .collect::<Result<_, _>>()?;
        Ok(Command::Call(first.clone(), args))
    } else {
        if words.len() > 1 {
            return Err(TemplateError::Parse(format!(
                "can't give argument to non-function {first}"
            )));
        }
        Ok(Command::Value(parse_operand(first)?))
    }
}

const KNOWN_FUNCS: &[&str] = &[
    "json", "index", "join", "upper", "lower", "title", "len", "println", "print", "printf",
    "split",
];

fn parse_operand(word: &str) -> Result<Operand, TemplateError> {
    if word == "." {
        return Ok(Operand::Field(Vec::new()));
    }
    if let Some(path) = word.strip_prefix('.') {
        let parts: Vec<String> = path.split('.').map(str::to_string).collect();
        if parts.iter().any(String::is_empty) {
            return Err(TemplateError::Parse(format!("bad field {word:?}")));
        }
        return Ok(Operand::Field(parts));
    }
    if word.starts_with('(') && word.ends_with(')') {
        return Ok(Operand::Sub(Box::new(parse_pipeline(
            &word[1..word.len() - 1],
        )?)));
    }
    if word.starts_with('"') {
        return serde_json::from_str::<String>(word)
            .map(Operand::Str)
            .map_err(|e| TemplateError::Parse(format!("bad string {word}: {e}")));
    }
    if word.len() >= 2 && word.starts_with('`') && word.ends_with('`') {
        return Ok(Operand::Str(word[1..word.len() - 1].to_string()));
    }
    match word {
        "true" => return Ok(Operand::Bool(true)),
        "false" => return Ok(Operand::Bool(false)),
        _ => {}
    }
    word.parse::<f64>()
        .map(Operand::Num)
        .map_err(|_| TemplateError::Parse(format!("unexpected {word:?} in operand")))
}

/// Splits an action into words: quoted strings, parenthesised groups and `|`
/// stay single words.
fn split_words(src: &str) -> Result<Vec<String>, TemplateError> {
    let mut words = Vec::new();
    let chars: Vec<char> = src.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        let start = i;
        if c == '"' || c == '`' {
            i += 1;
            while i < chars.len() && chars[i] != c {
                if chars[i] == '\\' && c == '"' {
                    i += 1;
                }
                i += 1;
            }
            if i >= chars.len() {
                return Err(TemplateError::Parse(
                    "unterminated quoted string".to_string(),
                ));
            }
            i += 1;
        } else if c == '(' {
            let mut depth = 0;
            while i < chars.len() {
                match chars[i] {
                    '(' => depth += 1,
                    ')' => {
                        depth -= 1;
                        if depth == 0 {
                            break;
                        }
                    }
                    _ => {}
                }
                i += 1;
            }
            if i >= chars.len() {
                return Err(TemplateError::Parse("unclosed left paren".to_string()));
            }
            i += 1;
        } else if c == '|' {
            i += 1;
        } else {
            while i < chars.len() && !chars[i].is_whitespace() && chars[i] != '|' {
                i += 1;
            }
        }
        words.push(chars[start..i].iter().collect());
    }
    Ok(words)
}

// ---------------------------------------------------------------- execution

fn exec_nodes(nodes: &[Node], dot: &Value, out: &mut String) -> Result<(), String> {
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

// ---------------------------------------------------------------- tables

/// Aligns tab-separated cells like Go's `tabwriter.NewWriter(w, 10, 1, 3, ' ', 0)`
/// as used by Docker: each column is as wide as its widest cell plus three
/// spaces, at least ten; the last cell of a line is not padded.
pub fn align_table(text: &str) -> String {
    let lines: Vec<Vec<&str>> = text.lines().map(|l| l.split('\t').collect()).collect();
    let columns = lines.iter().map(Vec::len).max().unwrap_or(0);
    let mut widths = vec![0usize; columns];
    for line in &lines {
        // The last cell is not terminated by a tab, so it does not size a column.
        for (i, cell) in line.iter().enumerate().take(line.len().saturating_sub(1)) {
            widths[i] = widths[i].max(cell.chars().count() + 3).max(10);
        }
    }
    let mut out = String::new();
    for line in &lines {
        let n = line.len();
        for (i, cell) in line.iter().enumerate() {
            out.push_str(cell);
            if i + 1 < n {
                let pad = widths[i].saturating_sub(cell.chars().count());
                out.extend(std::iter::repeat_n(' ', pad));
            }
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn render(fmt: &str, data: Value) -> String {
        Template::parse(fmt).unwrap().render(&data).unwrap()
    }

    #[test]
    fn fields_and_nested_fields() {
        let d = json!({"Id": "sha256:abc", "Config": {"User": "nobody", "Cmd": ["sh", "-c", "x"]}});
        assert_eq!(render("{{.Id}}", d.clone()), "sha256:abc");
        assert_eq!(render("{{.Config.User}}", d.clone()), "nobody");
        assert_eq!(render("{{.Config.Cmd}}", d.clone()), "[sh -c x]");
        assert_eq!(render("id={{ .Id }}!", d), "id=sha256:abc!");
    }

    #[test]
    fn json_index_and_pipes() {
        let d = json!({"Labels": {"a.b": "1", "z": "2"}, "L": ["x", "y"]});
        assert_eq!(
            render("{{json .Labels}}", d.clone()),
            r#"{"a.b":"1","z":"2"}"#
        );
        assert_eq!(render(r#"{{index .Labels "a.b"}}"#, d.clone()), "1");
        assert_eq!(
            render("{{.Labels | json}}", d.clone()),
            r#"{"a.b":"1","z":"2"}"#
        );
        assert_eq!(render("{{index .L 1}}", d.clone()), "y");
        assert_eq!(render(r#"{{join .L ","}}"#, d.clone()), "x,y");
        assert_eq!(render("{{.Labels}}", d.clone()), "map[a.b:1 z:2]");
        assert_eq!(render("{{len .L}}", d.clone()), "2");
        assert_eq!(render("{{upper (index .L 0)}}", d), "X");
    }

    #[test]
    fn escapes_and_missing_values() {
        assert_eq!(
            render(r"{{.A}}\t{{.B}}\n", json!({"A": 1, "B": null})),
            "1\t<no value>\n"
        );
        let err = Template::parse("{{.Nope}}")
            .unwrap()
            .render(&json!({"A": 1}))
            .unwrap_err();
        assert!(
            err.to_string()
                .contains("map has no entry for key \"Nope\""),
            "{err}"
        );
    }

    #[test]
    fn range_and_if() {
        let d = json!({"Layers": ["sha256:1", "sha256:2"], "E": [], "T": true});
        assert_eq!(
            render("{{range .Layers}}{{println .}}{{end}}", d.clone()),
            "sha256:1\nsha256:2\n"
        );
        assert_eq!(
            render("{{range .E}}x{{else}}none{{end}}", d.clone()),
            "none"
        );
        assert_eq!(render("{{if .T}}yes{{else}}no{{end}}", d.clone()), "yes");
        assert_eq!(render("{{if .E}}yes{{else}}no{{end}}", d), "no");
    }

    #[test]
    fn trim_markers_and_printf() {
        assert_eq!(render("a  {{- .X -}}  b", json!({"X": "x"})), "axb");
        assert_eq!(
            render(r#"{{printf "%s:%v" .A .B}}"#, json!({"A": "r", "B": 3})),
            "r:3"
        );
    }

    #[test]
    fn parse_errors() {
        assert!(Template::parse("{{.A").is_err());
        assert!(Template::parse("{{nosuchfunc .A}}").is_err());
        assert!(Template::parse("{{range .A}}x").is_err());
        assert!(Template::parse("{{end}}").is_err());
    }

    #[test]
    fn table_prefix_and_header() {
        let t = Template::parse("table {{.Repository}}\\t{{.Tag}}\\t{{.ID}}").unwrap();
        assert!(t.is_table());
        let mut h = BTreeMap::new();
        h.insert("ID", "IMAGE ID");
        assert_eq!(t.render_header(&h), "REPOSITORY\tTAG\tIMAGE ID");
        assert!(!Template::parse("tablet").unwrap().is_table());
    }

    #[test]
    fn table_alignment_matches_docker() {
        let text = "REPOSITORY\tTAG\tIMAGE ID\nbusybox\tlatest\t0123456789ab\n";
        let out = align_table(text);
        assert_eq!(
            out,
            "REPOSITORY   TAG       IMAGE ID\nbusybox      latest    0123456789ab\n"
        );
    }
}
