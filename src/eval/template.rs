//! User-defined evaluation prompts: `evaluate(..., #{ template, choices, delimiter })`.
//!
//! `template` is a string with `{field}` placeholders, filled from the fields of each document
//! as the dataset stores them (XNLI's `premise`, Belebele's `flores_passage`, …); `{{` and `}}`
//! are literal braces. It replaces the query of the task's prompt family; the gold answer stays
//! the task's. `choices` (multiple-choice tasks) replaces the answer strings, one per choice of
//! the task in the task's order, each itself a template (`"{choice1}"`); `delimiter` goes between
//! the prompt and the answer (default `" "`, lm-eval's). Few-shot examples are rendered with the
//! same template and answered with the (templated) gold choice or the task's target, joined as
//! lm-eval joins them.

use super::EvalError;
use crate::value::{Row, Value};

/// One piece of a parsed template.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Text(String),
    Field(String),
}

/// A parsed template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    pieces: Vec<Piece>,
}

fn bad(option: &'static str, msg: String) -> EvalError {
    EvalError::Option { option, msg }
}

impl Template {
    /// Parses `text` (`option` names the option in errors).
    pub fn parse(option: &'static str, text: &str) -> Result<Template, EvalError> {
        let mut pieces = Vec::new();
        let mut lit = String::new();
        let mut chars = text.char_indices().peekable();
        while let Some((i, c)) = chars.next() {
            match c {
                '{' if chars.peek().map(|p| p.1) == Some('{') => {
                    chars.next();
                    lit.push('{');
                }
                '}' if chars.peek().map(|p| p.1) == Some('}') => {
                    chars.next();
                    lit.push('}');
                }
                '{' => {
                    let mut name = String::new();
                    let mut closed = false;
                    for (_, d) in chars.by_ref() {
                        if d == '}' {
                            closed = true;
                            break;
                        }
                        name.push(d);
                    }
                    let ok = !name.is_empty()
                        && name
                            .chars()
                            .all(|ch| ch.is_alphanumeric() || ch == '_' || ch == '-' || ch == '.');
                    if !closed || !ok {
                        return Err(bad(
                            option,
                            format!(
                                "'{{' at byte {i} does not start a {{field}} placeholder (write {{{{ for a literal brace) in {text:?}"
                            ),
                        ));
                    }
                    if !lit.is_empty() {
                        pieces.push(Piece::Text(std::mem::take(&mut lit)));
                    }
                    pieces.push(Piece::Field(name));
                }
                '}' => {
                    return Err(bad(
                        option,
                        format!(
                        "unmatched '}}' at byte {i} (write }}}} for a literal brace) in {text:?}"
                    ),
                    ))
                }
                _ => lit.push(c),
            }
        }
        if !lit.is_empty() {
            pieces.push(Piece::Text(lit));
        }
        Ok(Template { pieces })
    }

    /// The template filled from `row`; `context` names the document in errors.
    pub fn render(&self, row: &Row, context: &str) -> Result<String, EvalError> {
        let mut s = String::new();
        for p in &self.pieces {
            match p {
                Piece::Text(t) => s.push_str(t),
                Piece::Field(f) => match row.get(f) {
                    Some(Value::String(v)) => s.push_str(v),
                    Some(Value::Number(n)) => s.push_str(&n.to_string()),
                    Some(Value::Bool(b)) => s.push_str(if *b { "true" } else { "false" }),
                    Some(other) => {
                        return Err(bad(
                            "template",
                            format!(
                                "{context}: field '{f}' is not text, a number or a bool: {other}"
                            ),
                        ))
                    }
                    None => {
                        let mut present: Vec<&str> = row.keys().map(String::as_str).collect();
                        present.sort_unstable();
                        return Err(bad(
                            "template",
                            format!("{context}: no field '{f}' (fields: {})", present.join(", ")),
                        ));
                    }
                },
            }
        }
        Ok(s)
    }
}

/// The user's prompt: the query template, the answer templates and the delimiter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserPrompt {
    /// The query template; `None` when a closure ([`super::EvalHooks::template`]) writes it.
    pub query: Option<Template>,
    /// The answers of a multiple-choice task, in the task's choice order.
    pub choices: Option<Vec<Template>>,
    /// Between the prompt and the answer.
    pub delimiter: String,
}

impl UserPrompt {
    /// From the options (`choices` and `delimiter` need `template`, a string or, with
    /// `closure`, a closure given through the hooks; both at once is an error).
    pub fn from_options(
        template: Option<&str>,
        closure: bool,
        choices: Option<&[String]>,
        delimiter: Option<&str>,
    ) -> Result<Option<UserPrompt>, EvalError> {
        if template.is_some() && closure {
            return Err(bad("template", "is both a string and a closure".into()));
        }
        if template.is_none() && !closure {
            if choices.is_some() {
                return Err(bad("choices", "needs a template".into()));
            }
            if delimiter.is_some() {
                return Err(bad("delimiter", "needs a template".into()));
            }
            return Ok(None);
        };
        let choices = match choices {
            Some([]) => return Err(bad("choices", "is empty".into())),
            Some(cs) => Some(
                cs.iter()
                    .map(|c| Template::parse("choices", c))
                    .collect::<Result<Vec<_>, _>>()?,
            ),
            None => None,
        };
        Ok(Some(UserPrompt {
            query: template
                .map(|t| Template::parse("template", t))
                .transpose()?,
            choices,
            delimiter: delimiter.unwrap_or(" ").to_string(),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(v: serde_json::Value) -> Row {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn placeholders_escapes_and_errors() {
        let t = Template::parse("template", "{premise} {{x}} n={n} ok={b}").unwrap();
        let r = row(serde_json::json!({"premise": "Ein Hund.", "n": 3, "b": true}));
        assert_eq!(t.render(&r, "row 1").unwrap(), "Ein Hund. {x} n=3 ok=true");
        let e = t
            .render(&row(serde_json::json!({"n": 1, "b": false})), "row 2")
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "option 'template': row 2: no field 'premise' (fields: b, n)"
        );
        let e = Template::parse("template", "a {b c}")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("'{' at byte 2 does not start a {field} placeholder"),
            "{e}"
        );
        let e = Template::parse("template", "a } b")
            .unwrap_err()
            .to_string();
        assert!(e.contains("unmatched '}' at byte 2"), "{e}");
        let e = Template::parse("template", "{open")
            .unwrap_err()
            .to_string();
        assert!(e.contains("byte 0"), "{e}");
        let e = UserPrompt::from_options(None, false, Some(&["x".into()]), None)
            .unwrap_err()
            .to_string();
        assert_eq!(e, "option 'choices': needs a template");
    }
}
