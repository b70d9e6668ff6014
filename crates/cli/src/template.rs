//! The subset of Go's `text/template` that Docker users write in `--format`.
//!
//! Supported: literal text, `{{.}}`, `{{.Field}}`, `{{.A.B}}`, pipelines with
//! `|`, the functions `json`, `index`, `join`, `upper`, `lower`, `title`,
//! `len`, `eq`, `ne`, `not`, `and`, `or`, `println`, `printf` (`%s %v %d %q`), string and number
//! literals, `{{range PIPELINE}}…{{end}}`, `{{if PIPELINE}}…{{else}}…{{end}}`
//! and the `table` prefix (header row derived from the field names, cells
//! aligned like Docker's tabwriter). Data is a `serde_json::Value`, so values
//! print as Go prints them: lists as `[a b]`, maps as `map[k:v]`.
//!
//! Hand-written because no maintained crate implements Go template syntax
//! with Go's value printing, which scripts that parse Docker output rely on.

use std::collections::BTreeMap;

use serde_json::Value;

mod exec;

use exec::exec_nodes;

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
    "split", "eq", "ne", "not", "and", "or",
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
        assert_eq!(render("{{if .E}}yes{{else}}no{{end}}", d.clone()), "no");
        let s = json!({"State": "running", "N": 2});
        assert_eq!(
            render(r#"{{if eq .State "running"}}up{{end}}"#, s.clone()),
            "up"
        );
        assert_eq!(
            render(
                r#"{{if ne .State "running"}}down{{else}}up{{end}}"#,
                s.clone()
            ),
            "up"
        );
        assert_eq!(
            render(
                r#"{{eq .N 2}} {{not .N}} {{and .N .State}} {{or "" .State}}"#,
                s
            ),
            "true false running running"
        );
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
