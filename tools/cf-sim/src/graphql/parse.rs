//! A small parser for the executable GraphQL subset Cloudflare's analytics clients send: one query operation
//! with variables, fields, aliases, arguments (literals, variables, lists, objects) and nested selections.
//! Fragments, directives and mutations are rejected.

use serde_json::{Map, Number, Value};

#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Field {
    pub alias: Option<String>,
    pub name: String,
    pub args: Vec<(String, Value)>,
    /// `None` for a leaf (no braces).
    pub selections: Option<Vec<Field>>,
}

impl Field {
    pub fn output_name(&self) -> &str {
        self.alias.as_deref().unwrap_or(&self.name)
    }

    pub fn arg(&self, name: &str) -> Option<&Value> {
        self.args.iter().find(|(n, _)| n == name).map(|(_, v)| v)
    }
}

#[derive(Debug, PartialEq)]
pub(crate) struct ParseError(pub String);

#[derive(Clone, Debug, PartialEq)]
enum Token {
    Punct(char),
    Spread,
    Name(String),
    Str(String),
    Int(i64),
    Float(f64),
    Var(String),
}

fn tokenize(src: &str) -> Result<Vec<Token>, ParseError> {
    let chars: Vec<char> = src.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            c if c.is_whitespace() || c == ',' || c == '\u{feff}' => i += 1,
            '#' => {
                while i < chars.len() && chars[i] != '\n' {
                    i += 1;
                }
            }
            '{' | '}' | '(' | ')' | '[' | ']' | ':' | '!' | '=' | '@' | '|' | '&' => {
                tokens.push(Token::Punct(c));
                i += 1;
            }
            '.' if chars.get(i + 1) == Some(&'.') && chars.get(i + 2) == Some(&'.') => {
                tokens.push(Token::Spread);
                i += 3;
            }
            '$' => {
                let start = i + 1;
                i = start;
                while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                    i += 1;
                }
                if i == start {
                    return Err(ParseError("expected variable name after '$'".into()));
                }
                tokens.push(Token::Var(chars[start..i].iter().collect()));
            }
            '"' => {
                if chars.get(i + 1) == Some(&'"') && chars.get(i + 2) == Some(&'"') {
                    let start = i + 3;
                    let mut j = start;
                    while j + 2 < chars.len()
                        && !(chars[j] == '"' && chars[j + 1] == '"' && chars[j + 2] == '"')
                    {
                        j += 1;
                    }
                    if j + 2 >= chars.len() {
                        return Err(ParseError("unterminated block string".into()));
                    }
                    tokens.push(Token::Str(chars[start..j].iter().collect()));
                    i = j + 3;
                    continue;
                }
                let mut s = String::new();
                i += 1;
                loop {
                    let Some(&c) = chars.get(i) else {
                        return Err(ParseError("unterminated string".into()));
                    };
                    i += 1;
                    match c {
                        '"' => break,
                        '\\' => {
                            let Some(&e) = chars.get(i) else {
                                return Err(ParseError("unterminated string".into()));
                            };
                            i += 1;
                            match e {
                                'n' => s.push('\n'),
                                't' => s.push('\t'),
                                'r' => s.push('\r'),
                                'b' => s.push('\u{8}'),
                                'f' => s.push('\u{c}'),
                                'u' => {
                                    let hex: String = chars
                                        .get(i..i + 4)
                                        .map(|h| h.iter().collect())
                                        .unwrap_or_default();
                                    let code = u32::from_str_radix(&hex, 16)
                                        .map_err(|_| ParseError("bad \\u escape".into()))?;
                                    s.push(char::from_u32(code).unwrap_or('\u{fffd}'));
                                    i += 4;
                                }
                                other => s.push(other),
                            }
                        }
                        '\n' => return Err(ParseError("unterminated string".into())),
                        c => s.push(c),
                    }
                }
                tokens.push(Token::Str(s));
            }
            c if c == '-' || c.is_ascii_digit() => {
                let start = i;
                i += 1;
                let mut float = false;
                while i < chars.len()
                    && (chars[i].is_ascii_digit()
                        || matches!(chars[i], '.' | 'e' | 'E' | '+' | '-'))
                {
                    float |= matches!(chars[i], '.' | 'e' | 'E');
                    i += 1;
                }
                let text: String = chars[start..i].iter().collect();
                if float {
                    tokens.push(Token::Float(
                        text.parse()
                            .map_err(|_| ParseError(format!("bad number {text}")))?,
                    ));
                } else {
                    tokens.push(Token::Int(
                        text.parse()
                            .map_err(|_| ParseError(format!("bad number {text}")))?,
                    ));
                }
            }
            c if c.is_alphabetic() || c == '_' => {
                let start = i;
                while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                    i += 1;
                }
                tokens.push(Token::Name(chars[start..i].iter().collect()));
            }
            other => return Err(ParseError(format!("unexpected character {other:?}"))),
        }
    }
    Ok(tokens)
}

struct Parser<'a> {
    tokens: Vec<Token>,
    pos: usize,
    variables: &'a Map<String, Value>,
    declared: Vec<(String, Option<Value>)>,
}

impl Parser<'_> {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.pos)
    }

    fn next(&mut self) -> Option<Token> {
        let t = self.tokens.get(self.pos).cloned();
        self.pos += 1;
        t
    }

    fn expect(&mut self, c: char) -> Result<(), ParseError> {
        match self.next() {
            Some(Token::Punct(p)) if p == c => Ok(()),
            other => Err(ParseError(format!("expected '{c}', found {other:?}"))),
        }
    }

    fn eat(&mut self, c: char) -> bool {
        if self.peek() == Some(&Token::Punct(c)) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn name(&mut self) -> Result<String, ParseError> {
        match self.next() {
            Some(Token::Name(n)) => Ok(n),
            other => Err(ParseError(format!("expected a name, found {other:?}"))),
        }
    }

    fn document(&mut self) -> Result<Vec<Field>, ParseError> {
        let selections = match self.peek() {
            Some(Token::Punct('{')) => self.selection_set()?,
            Some(Token::Name(kw)) if kw == "query" => {
                self.pos += 1;
                if matches!(self.peek(), Some(Token::Name(_))) {
                    self.pos += 1;
                }
                if self.eat('(') {
                    self.variable_definitions()?;
                }
                self.selection_set()?
            }
            Some(Token::Name(kw)) => {
                return Err(ParseError(format!("{kw} operations are not supported")));
            }
            other => return Err(ParseError(format!("expected a query, found {other:?}"))),
        };
        if let Some(extra) = self.peek() {
            return Err(ParseError(format!(
                "only one operation is supported, found {extra:?}"
            )));
        }
        Ok(selections)
    }

    fn variable_definitions(&mut self) -> Result<(), ParseError> {
        while !self.eat(')') {
            let Some(Token::Var(name)) = self.next() else {
                return Err(ParseError("expected a variable definition".into()));
            };
            self.expect(':')?;
            self.type_ref()?;
            let default = if self.eat('=') {
                Some(self.value(true)?)
            } else {
                None
            };
            self.declared.push((name, default));
        }
        Ok(())
    }

    fn type_ref(&mut self) -> Result<(), ParseError> {
        if self.eat('[') {
            self.type_ref()?;
            self.expect(']')?;
        } else {
            self.name()?;
        }
        self.eat('!');
        Ok(())
    }

    fn selection_set(&mut self) -> Result<Vec<Field>, ParseError> {
        self.expect('{')?;
        let mut fields = Vec::new();
        while !self.eat('}') {
            if self.peek() == Some(&Token::Spread) {
                return Err(ParseError("fragments are not supported".into()));
            }
            if self.peek().is_none() {
                return Err(ParseError("unterminated selection set".into()));
            }
            fields.push(self.field()?);
        }
        if fields.is_empty() {
            return Err(ParseError("empty selection set".into()));
        }
        Ok(fields)
    }

    fn field(&mut self) -> Result<Field, ParseError> {
        let first = self.name()?;
        let (alias, name) = if self.eat(':') {
            (Some(first), self.name()?)
        } else {
            (None, first)
        };
        let mut args = Vec::new();
        if self.eat('(') {
            while !self.eat(')') {
                let arg = self.name()?;
                self.expect(':')?;
                args.push((arg, self.value(false)?));
            }
        }
        if self.peek() == Some(&Token::Punct('@')) {
            return Err(ParseError("directives are not supported".into()));
        }
        let selections = if self.peek() == Some(&Token::Punct('{')) {
            Some(self.selection_set()?)
        } else {
            None
        };
        Ok(Field {
            alias,
            name,
            args,
            selections,
        })
    }

    fn value(&mut self, constant: bool) -> Result<Value, ParseError> {
        match self.next() {
            Some(Token::Var(name)) if !constant => self.variable(&name),
            Some(Token::Str(s)) => Ok(Value::String(s)),
            Some(Token::Int(i)) => Ok(Value::Number(i.into())),
            Some(Token::Float(f)) => Ok(Number::from_f64(f).map_or(Value::Null, Value::Number)),
            Some(Token::Name(n)) => Ok(match n.as_str() {
                "true" => Value::Bool(true),
                "false" => Value::Bool(false),
                "null" => Value::Null,
                // Enum values (e.g. `datetime_ASC`) become strings.
                _ => Value::String(n),
            }),
            Some(Token::Punct('[')) => {
                let mut items = Vec::new();
                while !self.eat(']') {
                    items.push(self.value(constant)?);
                }
                Ok(Value::Array(items))
            }
            Some(Token::Punct('{')) => {
                let mut map = Map::new();
                while !self.eat('}') {
                    let key = self.name()?;
                    self.expect(':')?;
                    map.insert(key, self.value(constant)?);
                }
                Ok(Value::Object(map))
            }
            other => Err(ParseError(format!("expected a value, found {other:?}"))),
        }
    }

    fn variable(&self, name: &str) -> Result<Value, ParseError> {
        let Some((_, default)) = self.declared.iter().find(|(n, _)| n == name) else {
            return Err(ParseError(format!("variable ${name} is not defined")));
        };
        Ok(self
            .variables
            .get(name)
            .cloned()
            .or_else(|| default.clone())
            .unwrap_or(Value::Null))
    }
}

/// Parse `query` with `variables` substituted into arguments; returns the top-level selections.
pub(crate) fn parse_query(
    query: &str,
    variables: &Map<String, Value>,
) -> Result<Vec<Field>, ParseError> {
    let tokens = tokenize(query)?;
    Parser {
        tokens,
        pos: 0,
        variables,
        declared: Vec::new(),
    }
    .document()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn parses_the_documented_firewall_query() {
        let q = r#"query ListFirewallEvents($zoneTag: string, $filter: FirewallEventsAdaptiveFilter_InputObject) {
          viewer { zones(filter: { zoneTag: $zoneTag }) {
            firewallEventsAdaptive(filter: $filter, limit: 10, orderBy: [datetime_ASC]) {
              action clientAsn datetime rayName # comment
            } } } }"#;
        let vars = json!({"zoneTag": "abc", "filter": {"datetime_geq": "2022-07-24T11:00:00Z"}});
        let fields = parse_query(q, vars.as_object().expect("object")).expect("parse");
        let zones = &fields[0].selections.as_ref().expect("viewer selections")[0];
        assert_eq!(zones.arg("filter"), Some(&json!({"zoneTag": "abc"})));
        let fw = &zones.selections.as_ref().expect("zone selections")[0];
        assert_eq!(fw.arg("orderBy"), Some(&json!(["datetime_ASC"])));
        assert_eq!(fw.arg("limit"), Some(&json!(10)));
        assert_eq!(fw.selections.as_ref().map(Vec::len), Some(4));
    }

    #[test]
    fn rejects_undeclared_variables_and_fragments() {
        let empty = Map::new();
        assert!(
            parse_query(
                "{ viewer { zones(filter: {zoneTag: $z}) { zoneTag } } }",
                &empty
            )
            .is_err()
        );
        assert!(parse_query("{ viewer { ...F } }", &empty).is_err());
        assert!(parse_query("mutation { x }", &empty).is_err());
    }
}
