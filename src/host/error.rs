//! Errors at the script boundary: domain errors into Rhai errors, and Rhai errors into the
//! `file:line:column` + source line + caret text shown to the user.
//!
//! Bindings return `Result<T, Box<EvalAltResult>>` ([`RhaiResult`]). A domain error becomes a
//! runtime error `"<fn_name>: <error>: <source chain>"` with [`Position::NONE`]; the engine fills
//! in the position of the call site (rhai 1.27 `EvalAltResult::fill_position`, called on every
//! native call), so the user sees the script's line and column. A domain error caused by
//! [`crate::interrupt::Interrupted`] (anywhere in its `source()` chain, or while the interrupt flag
//! is set) becomes an uncatchable `ErrorTerminated` instead, so Ctrl-C stops the script even
//! inside `try`. The renderer follows `eprint_error` of rhai's `src/bin/rhai-run.rs`, in the
//! layout of rustc diagnostics.

use std::error::Error as StdError;

use rhai::{EvalAltResult, Position};

use crate::interrupt::{self, Interrupted};

/// The result type of every binding.
pub type RhaiResult<T> = Result<T, Box<EvalAltResult>>;

/// The token carried by `ErrorTerminated` when the user pressed Ctrl-C.
pub const INTERRUPTED_TOKEN: &str = "interrupted (Ctrl-C)";

/// A runtime error with the given message; the engine fills in the call position.
pub fn fail(msg: impl Into<String>) -> Box<EvalAltResult> {
    EvalAltResult::ErrorRuntime(msg.into().into(), Position::NONE).into()
}

/// The uncatchable error that stops a script after Ctrl-C.
pub fn terminated() -> Box<EvalAltResult> {
    EvalAltResult::ErrorTerminated(INTERRUPTED_TOKEN.into(), Position::NONE).into()
}

/// Polls the interrupt flag from a binding: `interrupted()?` between units of work.
pub fn interrupted() -> RhaiResult<()> {
    interrupt::check().map_err(|_| terminated())
}

/// Converts any domain error into a Rhai error named after the script function.
///
/// The message is `"<fn_name>: <error>"`, followed by `": <cause>"` for each `source()` whose
/// text is not already part of the message.
pub fn domain_error(fn_name: &str, err: &(dyn StdError + 'static)) -> Box<EvalAltResult> {
    let mut msg = err.to_string();
    let mut cause = err.source();
    let mut is_interrupt = err.downcast_ref::<Interrupted>().is_some();
    while let Some(c) = cause {
        is_interrupt |= c.downcast_ref::<Interrupted>().is_some();
        let text = c.to_string();
        if !msg.contains(&text) {
            msg.push_str(": ");
            msg.push_str(&text);
        }
        cause = c.source();
    }
    if is_interrupt || interrupt::is_set() {
        return terminated();
    }
    if msg.starts_with(&format!("{fn_name}: ")) {
        // Domain errors that already name the function are not prefixed twice.
        fail(msg)
    } else {
        fail(format!("{fn_name}: {msg}"))
    }
}

/// `.ctx("fn_name")?` turns a domain `Result` into a binding result (see [`domain_error`]).
pub trait ResultExt<T> {
    /// Maps the error into a Rhai runtime error prefixed with `fn_name`.
    fn ctx(self, fn_name: &str) -> RhaiResult<T>;
}

impl<T, E: StdError + 'static> ResultExt<T> for Result<T, E> {
    fn ctx(self, fn_name: &str) -> RhaiResult<T> {
        self.map_err(|e| domain_error(fn_name, &e))
    }
}

/// What kind of failure a script run ended with (decides the exit code and wording).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The script does not parse.
    Syntax,
    /// The script failed while running.
    Runtime,
    /// The user pressed Ctrl-C.
    Interrupted,
    /// The script file (or a file it needs) could not be read.
    Io,
}

/// A rendered script error, ready to print.
#[derive(Debug, Clone)]
pub struct ScriptError {
    /// What went wrong.
    pub kind: ErrorKind,
    /// The bare message (no position), e.g. `add_adapter: unknown option 'alpah' (...)`.
    pub message: String,
    /// Where the error happened (innermost known position).
    pub location: Option<Location>,
    /// The full diagnostic text (message, location, source line with caret, call notes).
    pub rendered: String,
}

impl std::fmt::Display for ScriptError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.rendered)
    }
}

impl std::error::Error for ScriptError {}

/// A position in a named source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    /// The script or module name as the user knows it (path, `std/NAME`, `<repl:3>`).
    pub source: String,
    /// 1-based line.
    pub line: usize,
    /// 1-based column (character).
    pub column: usize,
}

/// Looks up the text of a named source for rendering source lines.
pub trait SourceLookup {
    /// The text of `source`, if known.
    fn text(&self, source: &str) -> Option<String>;
}

impl<F: Fn(&str) -> Option<String>> SourceLookup for F {
    fn text(&self, source: &str) -> Option<String> {
        self(source)
    }
}

fn location(source: &str, pos: Position) -> Option<Location> {
    Some(Location {
        source: source.to_string(),
        line: pos.line()?,
        column: pos.position().unwrap_or(1),
    })
}

/// The message of one error without its position.
fn bare_message(err: &mut EvalAltResult) -> String {
    let _ = err.take_position();
    match err {
        EvalAltResult::ErrorRuntime(d, _) if d.is_string() => d.to_string(),
        EvalAltResult::ErrorTerminated(d, _) if d.is_string() => d.to_string(),
        EvalAltResult::ErrorParsing(p, _) => format!("syntax error: {p}"),
        EvalAltResult::ErrorDataTooLarge(what, _) => {
            let l = crate::limits::get();
            let (limit, unit, flag) = if what.starts_with("Length of string") {
                (l.max_string_size, "bytes", "--max-string-size")
            } else if what.contains("map") {
                (l.max_map_size, "entries", "--max-map-size")
            } else {
                (l.max_array_size, "elements", "--max-array-size")
            };
            format!("{what} over the limit of {limit} {unit} (raise it with {flag})")
        }
        other => other.to_string(),
    }
}

fn pretty_fn_name(name: &str) -> String {
    if name.starts_with("anon$") {
        "in closure".to_string()
    } else {
        format!("in call to function '{name}'")
    }
}

/// Renders an error of a script named `main_source` as a diagnostic.
///
/// Nested errors (inside script functions, closures and modules) are unwound: the innermost
/// position gets the source line and caret; each enclosing call becomes a note with its call
/// site.
pub fn render(
    err: Box<EvalAltResult>,
    main_source: &str,
    lookup: &dyn SourceLookup,
) -> ScriptError {
    let mut notes = Vec::new();
    let mut src = main_source.to_string();
    let mut err = err;
    loop {
        err = match *err {
            EvalAltResult::ErrorInFunctionCall(name, fn_src, inner, pos) => {
                notes.push((pretty_fn_name(&name), location(&src, pos)));
                if !fn_src.is_empty() {
                    src = fn_src;
                }
                inner
            }
            EvalAltResult::ErrorInModule(name, inner, pos) => {
                notes.push((format!("in module '{name}'"), location(&src, pos)));
                if !name.is_empty() {
                    src = name;
                }
                inner
            }
            other => {
                *err = other;
                break;
            }
        };
    }
    let kind = match &*err {
        EvalAltResult::ErrorParsing(..) => ErrorKind::Syntax,
        EvalAltResult::ErrorTerminated(token, _)
            if token.clone().into_string().ok().as_deref() == Some(INTERRUPTED_TOKEN) =>
        {
            ErrorKind::Interrupted
        }
        EvalAltResult::ErrorSystem(..) => ErrorKind::Io,
        _ => ErrorKind::Runtime,
    };
    let pos = err.position();
    let mut loc = location(&src, pos).or_else(|| notes.iter().rev().find_map(|(_, l)| l.clone()));
    // An error raised inside a std module (e.g. a `throw` of a bad argument) is shown at the
    // innermost call from user code; the std position becomes a note.
    let mut raised_in = None;
    if loc.as_ref().is_some_and(|l| l.source.starts_with("std/")) {
        let user = notes
            .iter()
            .rposition(|(_, l)| l.as_ref().is_some_and(|l| !l.source.starts_with("std/")));
        if let Some(i) = user {
            raised_in = loc.take();
            loc = notes[i].1.clone();
            notes.truncate(i);
        }
    }
    let message = bare_message(&mut err);
    let mut out = format!("error: {message}\n");
    if let Some(l) = &loc {
        out.push_str(&snippet(l, lookup));
    }
    if let Some(r) = &raised_in {
        out.push_str(&format!(
            "  = note: raised at {}:{}:{}\n",
            r.source, r.line, r.column
        ));
    }
    for (what, at) in notes.iter().rev() {
        match at {
            Some(l) => out.push_str(&format!(
                "  = note: {what}, called at {}:{}:{}\n",
                l.source, l.line, l.column
            )),
            None => out.push_str(&format!("  = note: {what}\n")),
        }
    }
    ScriptError {
        kind,
        message,
        location: loc,
        rendered: out,
    }
}

/// A better position for some parse errors: rhai reports a missing `;` at the *next* token,
/// often the start of the following line, and an unexpected end of input after the last line;
/// the user needs the end of the unterminated line.
pub fn adjust_parse_error(text: &str, err: &mut rhai::ParseError) {
    let (Some(line), Some(col)) = (err.1.line(), err.1.position()) else {
        return;
    };
    let lines: Vec<&str> = text.split('\n').collect();
    let end_of_prev_code = |line: usize| {
        (1..line).rev().find_map(|prev| {
            let l = lines.get(prev - 1)?.trim_end();
            (!l.trim().is_empty()).then(|| Position::new(prev as u16, l.chars().count() as u16 + 1))
        })
    };
    let current = lines.get(line - 1).copied().unwrap_or("");
    // At the end of the input (on a blank line or past the end): the end of the last code line.
    if current.trim().is_empty() && lines.iter().skip(line).all(|l| l.trim().is_empty()) {
        if let Some(p) = end_of_prev_code(line) {
            err.1 = p;
        }
        return;
    }
    let missing_semicolon =
        matches!(err.err_type(), rhai::ParseErrorType::MissingToken(t, _) if t == ";");
    let indent = current.chars().take_while(|c| c.is_whitespace()).count();
    if missing_semicolon && col <= indent + 1 {
        if let Some(p) = end_of_prev_code(line) {
            err.1 = p;
        }
    }
}

/// The `--> file:line:col` header, the source line and a caret line.
pub fn snippet(l: &Location, lookup: &dyn SourceLookup) -> String {
    let line_no = l.line.to_string();
    let gutter = " ".repeat(line_no.len());
    let mut out = format!("{gutter}--> {}:{}:{}\n", l.source, l.line, l.column);
    let text = lookup.text(&l.source);
    let line = text.as_deref().and_then(|t| t.split('\n').nth(l.line - 1));
    if let Some(line) = line {
        let line = line.trim_end_matches('\r');
        // Keep tabs so that the caret lines up under the same character.
        let pad: String = line
            .chars()
            .take(l.column.saturating_sub(1))
            .map(|c| if c == '\t' { '\t' } else { ' ' })
            .collect();
        out.push_str(&format!("{gutter} |\n{line_no} | {line}\n"));
        out.push_str(&format!(
            "{gutter} | {pad}^ line {}, column {}\n",
            l.line, l.column
        ));
    } else {
        out.push_str(&format!(
            "{gutter} = at line {}, column {}\n",
            l.line, l.column
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    enum DomainError {
        #[error("cannot read '{path}'")]
        Read {
            path: String,
            #[source]
            source: std::io::Error,
        },
        #[error("stopped")]
        Stop(#[from] Interrupted),
    }

    fn runtime_msg(e: EvalAltResult) -> String {
        match e {
            EvalAltResult::ErrorRuntime(d, p) => {
                assert!(p.is_none());
                d.to_string()
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn domain_errors_are_prefixed_and_chained() {
        let r: Result<(), DomainError> = Err(DomainError::Read {
            path: "x.json".into(),
            source: std::io::Error::new(std::io::ErrorKind::NotFound, "no such file"),
        });
        assert_eq!(
            runtime_msg(*r.ctx("read_json").unwrap_err()),
            "read_json: cannot read 'x.json': no such file"
        );
    }

    #[test]
    fn interrupted_becomes_terminated() {
        let r: Result<(), DomainError> = Err(DomainError::Stop(Interrupted));
        let e = r.ctx("train").unwrap_err();
        assert!(matches!(*e, EvalAltResult::ErrorTerminated(..)), "{e:?}");
    }

    #[test]
    fn render_shows_line_caret_and_notes() {
        let src = "let a = 1;\nfn f(x) {\n\tx.foo()\n}\nf(a);\n";
        let engine = rhai::Engine::new();
        let mut ast = engine.compile(src).unwrap();
        ast.set_source("s.rhai");
        let err = engine.run_ast(&ast).unwrap_err();
        let lookup = |name: &str| (name == "s.rhai").then(|| src.to_string());
        let r = render(err, "s.rhai", &lookup);
        assert_eq!(r.kind, ErrorKind::Runtime);
        assert_eq!(
            r.location,
            Some(Location {
                source: "s.rhai".into(),
                line: 3,
                column: 4
            })
        );
        assert!(
            r.rendered
                .starts_with("error: Function not found: foo (i64)\n"),
            "{}",
            r.rendered
        );
        assert!(r.rendered.contains(" --> s.rhai:3:4\n"), "{}", r.rendered);
        assert!(
            r.rendered
                .contains("3 | \tx.foo()\n  | \t  ^ line 3, column 4\n"),
            "{}",
            r.rendered
        );
        assert!(
            r.rendered
                .contains("= note: in call to function 'f', called at s.rhai:5:1"),
            "{}",
            r.rendered
        );
    }
}
