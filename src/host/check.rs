//! `peftlab check`: compile a script without running it and report every syntax error.
//!
//! Rhai stops at the first parse error, so after each error the offending line is blanked and
//! the text parsed again; each distinct error is reported with its line and column (against the
//! original text). A blanked `let x = ...`/`const x = ...` line becomes `let x=();` so that later
//! uses of `x` do not cascade into "undefined variable" errors; an end-of-input error after
//! the first error is treated as a cascade of the earlier blanking and not reported. Imports of
//! `std/...` modules that do not exist, and relative imports whose file is missing, are errors
//! too.

use std::path::Path;

use rhai::{Engine, ParseErrorType, Position, Scope};

use super::error::{snippet, ErrorKind, Location, ScriptError};
use super::resolver::{std_names, std_source};

/// Most syntax errors reported for one file.
pub const MAX_ERRORS: usize = 20;

/// All problems found in `text` (named `name`, in directory `dir` for relative imports).
pub fn check_source(
    engine: &Engine,
    scope: &Scope,
    text: &str,
    name: &str,
    dir: &Path,
) -> Vec<ScriptError> {
    let lookup = |n: &str| (n == name).then(|| text.to_string());
    let mut errors = Vec::new();
    let mut work: Vec<String> = text.split('\n').map(str::to_string).collect();
    let mut blanked = Vec::new();
    loop {
        let joined = work.join("\n");
        let Err(mut pe) = engine.compile_with_scope(&super::compile_scope(scope), &joined) else {
            break;
        };
        super::error::adjust_parse_error(&joined, &mut pe);
        let pos = pe.position();
        let cascade =
            matches!(pe.err_type(), ParseErrorType::UnexpectedEOF) || at_end(&joined, pos);
        if !errors.is_empty() && cascade {
            break;
        }
        let message = format!("syntax error: {}", pe.err_type());
        errors.push(make_error(ErrorKind::Syntax, message, name, pos, &lookup));
        let Some(line) = pos.line() else { break };
        if blanked.contains(&line) || errors.len() >= MAX_ERRORS || line > work.len() {
            break;
        }
        blanked.push(line);
        work[line - 1] = neutralize(&work[line - 1]);
    }
    for (line_no, line) in text.split('\n').enumerate() {
        if let Some((col, path)) = import_path(line) {
            let pos = Position::new(line_no as u16 + 1, col as u16);
            let problem = if path.starts_with("std/") {
                std_source(&path).is_none().then(|| {
                    format!(
                        "no std module '{path}' (std modules: {})",
                        std_names().join(", ")
                    )
                })
            } else {
                let file = dir.join(&path).with_extension("rhai");
                (!file.exists()).then(|| format!("module file '{}' does not exist", file.display()))
            };
            if let Some(msg) = problem {
                errors.push(make_error(ErrorKind::Runtime, msg, name, pos, &lookup));
            }
        }
    }
    errors.sort_by_key(|e| e.location.as_ref().map(|l| (l.line, l.column)));
    errors
}

fn make_error(
    kind: ErrorKind,
    message: String,
    name: &str,
    pos: Position,
    lookup: &dyn super::error::SourceLookup,
) -> ScriptError {
    let location = pos.line().map(|line| Location {
        source: name.to_string(),
        line,
        column: pos.position().unwrap_or(1),
    });
    let mut rendered = format!("error: {message}\n");
    if let Some(l) = &location {
        rendered.push_str(&snippet(l, lookup));
    }
    ScriptError {
        kind,
        message,
        location,
        rendered,
    }
}

/// Whether `pos` is at or after the last non-blank character of `text`.
fn at_end(text: &str, pos: Position) -> bool {
    let Some(line) = pos.line() else { return true };
    let last = text.trim_end();
    let last_line = last.split('\n').count();
    line > last_line
        || (line == last_line
            && pos.position().unwrap_or(0)
                > last
                    .split('\n')
                    .next_back()
                    .map_or(0, |l| l.chars().count()))
}

/// Replaces a line by blanks, keeping a `let`/`const` declaration of its variable.
fn neutralize(line: &str) -> String {
    let trimmed = line.trim_start();
    for kw in ["let ", "const "] {
        if let Some(rest) = trimmed.strip_prefix(kw) {
            let ident: String = rest
                .trim_start()
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            if !ident.is_empty() {
                return format!("let {ident}=();");
            }
        }
    }
    String::new()
}

/// `import "path"` on a line: (1-based column of the string, path).
fn import_path(line: &str) -> Option<(usize, String)> {
    let code = line.split("//").next().unwrap_or("");
    let idx = code.find("import")?;
    let before_ok = code[..idx]
        .chars()
        .next_back()
        .is_none_or(|c| !c.is_alphanumeric() && c != '_');
    let rest = &code[idx + "import".len()..];
    let q = rest.find('"')?;
    if !before_ok || !rest[..q].trim().is_empty() {
        return None;
    }
    let after = &rest[q + 1..];
    let end = after.find('"')?;
    let col = code[..idx].chars().count() + "import".len() + rest[..q].chars().count() + 1;
    Some((col, after[..end].to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn engine() -> Engine {
        let mut e = Engine::new();
        super::super::engine::configure(&mut e);
        e
    }

    #[test]
    fn reports_several_errors_without_cascades() {
        let src = "let a = 1;\nlet b = a +;\nprint(b);\nlet c = (2;\nprint(a)\nprint(c);\n";
        let errs = check_source(&engine(), &Scope::new(), src, "x.rhai", Path::new("."));
        let lines: Vec<usize> = errs
            .iter()
            .map(|e| e.location.as_ref().unwrap().line)
            .collect();
        assert_eq!(lines, vec![2, 4, 5], "{errs:#?}");
        assert!(
            errs[0].rendered.contains("x.rhai:2:"),
            "{}",
            errs[0].rendered
        );
    }

    #[test]
    fn good_script_has_no_errors_and_imports_are_checked() {
        let e = engine();
        let ok = "import \"std/study\" as s;\nlet g = s::grid(#{ a: [1] });\n";
        assert!(check_source(&e, &Scope::new(), ok, "ok.rhai", Path::new(".")).is_empty());
        let bad = "import \"std/nope\" as n;\nimport \"missing/mod\" as m;\n";
        let errs = check_source(&e, &Scope::new(), bad, "b.rhai", Path::new("/nonexistent"));
        assert_eq!(errs.len(), 2);
        assert!(
            errs[0].message.starts_with("no std module 'std/nope'"),
            "{}",
            errs[0].message
        );
        assert_eq!(errs[0].location.as_ref().unwrap().column, 8);
        assert!(errs[1].message.contains("does not exist"));
    }

    #[test]
    fn import_path_parsing() {
        assert_eq!(
            import_path(r#"  import "std/x" as x;"#),
            Some((10, "std/x".into()))
        );
        assert_eq!(import_path(r#"let reimport = "a";"#), None);
        assert_eq!(import_path(r#"// import "a""#), None);
    }
}
