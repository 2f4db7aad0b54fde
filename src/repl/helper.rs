//! Line editing for the REPL: multi-line input while the input is incomplete, and completion of
//! function and variable names.
//!
//! Incompleteness is decided by compiling the input with a bare engine (nushell's
//! `validation.rs` approach, verified with rustyline 19 in the research note): an unexpected end
//! of input, a missing closing token at the end, or an unterminated string mean "keep reading".

use rhai::{Engine, LexError, ParseErrorType};
use rustyline::completion::{Completer, Pair};
use rustyline::highlight::Highlighter;
use rustyline::hint::Hinter;
use rustyline::validate::{ValidationContext, ValidationResult, Validator};
use rustyline::{Context, Helper};

/// Whether `input` is an unfinished piece of code (more lines should be read).
pub fn is_incomplete(engine: &Engine, input: &str) -> bool {
    if input.trim().is_empty() || input.trim_start().starts_with(':') {
        return false;
    }
    let Err(e) = engine.compile(input) else {
        return false;
    };
    let at_end = {
        let pos = e.position();
        let text = input.trim_end();
        let last_line = text.split('\n').count();
        match pos.line() {
            None => true,
            Some(l) => {
                l > last_line
                    || (l == last_line
                        && pos.position().unwrap_or(usize::MAX)
                            > text
                                .split('\n')
                                .next_back()
                                .map_or(0, |s| s.chars().count()))
            }
        }
    };
    match e.err_type() {
        ParseErrorType::UnexpectedEOF => true,
        ParseErrorType::MissingToken(..) | ParseErrorType::MissingSymbol(..) => at_end,
        ParseErrorType::BadInput(LexError::UnterminatedString) => true,
        _ => false,
    }
}

/// The rustyline helper of the REPL.
pub struct ReplHelper {
    parser: Engine,
    /// Names offered for completion (functions, variables, commands).
    pub names: Vec<String>,
}

impl ReplHelper {
    /// A helper completing `names`.
    pub fn new(names: Vec<String>) -> Self {
        ReplHelper {
            parser: Engine::new_raw(),
            names,
        }
    }
}

impl Validator for ReplHelper {
    fn validate(&self, ctx: &mut ValidationContext) -> rustyline::Result<ValidationResult> {
        Ok(if is_incomplete(&self.parser, ctx.input()) {
            ValidationResult::Incomplete
        } else {
            ValidationResult::Valid(None)
        })
    }
}

impl Completer for ReplHelper {
    type Candidate = Pair;

    fn complete(
        &self,
        line: &str,
        pos: usize,
        _ctx: &Context<'_>,
    ) -> rustyline::Result<(usize, Vec<Pair>)> {
        let before = &line[..pos];
        let start = before
            .char_indices()
            .rev()
            .find(|(_, c)| !(c.is_alphanumeric() || *c == '_' || *c == ':'))
            .map_or(0, |(i, c)| i + c.len_utf8());
        let word = &before[start..];
        if word.is_empty() {
            return Ok((pos, Vec::new()));
        }
        let mut hits: Vec<Pair> = self
            .names
            .iter()
            .filter(|n| n.starts_with(word))
            .map(|n| Pair {
                display: n.clone(),
                replacement: n.clone(),
            })
            .collect();
        hits.dedup_by(|a, b| a.replacement == b.replacement);
        Ok((start, hits))
    }
}

impl Hinter for ReplHelper {
    type Hint = String;
}

impl Highlighter for ReplHelper {}

impl Helper for ReplHelper {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn incomplete_inputs() {
        let e = Engine::new_raw();
        for s in [
            "fn double(x) {",
            "let cfg = #{ rank: 8,",
            "foo(1,",
            "let s = `abc",
            "if x {\n  1\n",
        ] {
            assert!(is_incomplete(&e, s), "{s:?}");
        }
        for s in [
            "1 + 2",
            "fn f(x) { x }",
            "let x = ;",
            "foo(1 2)",
            ":help",
            "",
            "let a = 1; }",
        ] {
            assert!(!is_incomplete(&e, s), "{s:?}");
        }
    }
}
