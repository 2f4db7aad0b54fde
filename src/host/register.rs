//! Registering native functions with parameter names and doc comments.
//!
//! Every binding goes through [`bind`], which registers the function in the engine's global
//! namespace with its parameter names, friendly type names (`int`, `float`, `string`, `array`,
//! `map`, `Fn`, handle names) and a doc comment, using rhai's `FuncRegistration` with
//! `with_params_info`/`with_comments` (the `metadata` feature). `peftlab doc`, the REPL's
//! `:help NAME` and the no-panic test read them back through `Engine::gen_fn_metadata_to_json`.
//! Register handle types (see [`super::handle`]) before the functions that take them, so that
//! their names appear in signatures.
//!
//! All bindings are registered as *volatile* (never evaluated at compile time by the optimizer):
//! they read files, clocks and models.

use rhai::{Engine, FuncRegistration, RhaiNativeFunc};

/// Registers `func` as the script function `name` with parameter names and documentation.
///
/// `params` names the script-visible parameters (without a `NativeCallContext`); the compiler
/// checks that there is one name per parameter. `doc` is plain text (Markdown, with ```` ```rhai ````
/// examples); it is de-indented and its first line is the one-line summary in `peftlab doc`.
///
/// ```
/// use peftlab::host::{bind, RhaiResult, fail};
/// let mut engine = rhai::Engine::new();
/// bind(&mut engine, "halve", ["x"], "Half of an even integer.", |x: i64| -> RhaiResult<i64> {
///     if x % 2 != 0 { return Err(fail(format!("halve: {x} is odd"))); }
///     Ok(x / 2)
/// });
/// assert_eq!(engine.eval::<i64>("halve(8)").unwrap(), 4);
/// ```
pub fn bind<A, const N: usize, const X: bool, R, const F: bool, FUNC>(
    engine: &mut Engine,
    name: &str,
    params: [&str; N],
    doc: &str,
    func: FUNC,
) where
    A: 'static,
    // `R: Variant` (rhai's internal trait) follows from its blanket impl for `Any + Clone`.
    R: Clone + 'static,
    FUNC: RhaiNativeFunc<A, N, X, R, F> + 'static,
{
    let types = FUNC::param_names();
    let mut info: Vec<String> = params
        .iter()
        .zip(types.iter())
        .map(|(n, t)| format!("{n}: {}", friendly_type(engine, t)))
        .collect();
    let ret = friendly_type(engine, FUNC::return_type_name());
    info.push(ret);
    FuncRegistration::new(name)
        .in_global_namespace()
        .with_volatility(true)
        .with_params_info(info)
        .with_comments([doc_comment(doc)])
        .register_into_engine(engine, func);
}

/// Turns plain documentation text into a rhai doc-comment block (`/// ` on every line).
pub fn doc_comment(doc: &str) -> String {
    let lines: Vec<&str> = doc.trim_matches('\n').lines().collect();
    let indent = lines
        .iter()
        .skip(1)
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.len() - l.trim_start().len())
        .min()
        .unwrap_or(0);
    lines
        .iter()
        .enumerate()
        .map(|(i, l)| {
            let l = if i == 0 {
                l.trim()
            } else {
                l.get(indent..).unwrap_or(l.trim_start())
            };
            if l.is_empty() {
                "///".to_string()
            } else {
                format!("/// {}", l.trim_end())
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Strips `///` leaders from rhai doc comments, giving plain text.
pub fn doc_text(comments: &[impl AsRef<str>]) -> String {
    let mut out = Vec::new();
    for block in comments {
        for line in block.as_ref().lines() {
            let l = line.trim_start();
            let l = l
                .strip_prefix("/// ")
                .or_else(|| l.strip_prefix("///"))
                .or_else(|| l.strip_prefix("/**"))
                .or_else(|| l.strip_prefix("*/"))
                .or_else(|| l.strip_prefix("* "))
                .unwrap_or(l);
            out.push(l.trim_end_matches("*/").to_string());
        }
    }
    while out.last().is_some_and(|l| l.trim().is_empty()) {
        out.pop();
    }
    out.join("\n")
}

/// A script author's name for a Rust type as registered with rhai.
///
/// `&str`/`String`/`ImmutableString` → `string`, `i64` → `int`, `f64` → `float`, `Array` →
/// `array`, `Map` → `map`, `FnPtr` → `Fn`, `Dynamic` → `any`, `Result<T, _>` → name of `T`,
/// registered custom types → their registered name.
pub fn friendly_type(engine: &Engine, rust: &str) -> String {
    let t = rust.trim();
    let t = t.strip_prefix("&mut ").unwrap_or(t);
    if let Some(inner) = t
        .strip_prefix("core::result::Result<")
        .or_else(|| t.strip_prefix("Result<"))
    {
        // Result<T, Box<EvalAltResult>>: the first generic argument.
        let mut depth = 0usize;
        for (i, c) in inner.char_indices() {
            match c {
                '<' => depth += 1,
                '>' => depth = depth.saturating_sub(1),
                ',' if depth == 0 => return friendly_type(engine, &inner[..i]),
                _ => {}
            }
        }
    }
    let mapped = engine.map_type_name(t);
    if mapped != t {
        return simple_name(mapped);
    }
    simple_name(t)
}

fn simple_name(t: &str) -> String {
    let base = t.trim();
    let last = base.rsplit("::").next().unwrap_or(base);
    let key = if base.contains("BTreeMap<") && base.contains("Dynamic") {
        "map"
    } else if base.contains("Vec<") && base.contains("Dynamic") {
        "array"
    } else if base.starts_with("alloc::vec::Vec<u8>") {
        "blob"
    } else {
        last
    };
    match key {
        "&str" | "str" | "String" | "ImmutableString" | "string" => "string",
        "i64" | "INT" | "int" => "int",
        "f64" | "FLOAT" | "float" => "float",
        "bool" => "bool",
        "char" => "char",
        "Array" | "array" => "array",
        "Map" | "map" => "map",
        "Blob" | "blob" => "blob",
        "FnPtr" | "Fn" => "Fn",
        "Dynamic" | "?" | "any" => "any",
        "()" => "()",
        other => other,
    }
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::error::RhaiResult;
    use rhai::{Array, FnPtr, Map, NativeCallContext};

    #[test]
    fn doc_comment_dedents_and_prefixes() {
        let d = doc_comment("First line.\n\n        ```rhai\n        let x = f(1);\n        ```\n");
        assert_eq!(
            d,
            "/// First line.\n///\n/// ```rhai\n/// let x = f(1);\n/// ```"
        );
        assert_eq!(doc_text(&[d]), "First line.\n\n```rhai\nlet x = f(1);\n```");
    }

    #[test]
    fn signatures_have_names_and_friendly_types() {
        let mut e = Engine::new();
        bind(
            &mut e,
            "f1",
            ["path", "n", "x", "opts"],
            "Doc one.",
            |_: &str, _: i64, _: f64, _: Map| -> RhaiResult<Array> { Ok(Array::new()) },
        );
        bind(
            &mut e,
            "f2",
            ["name", "cells", "f"],
            "Doc two.",
            |_: NativeCallContext, _: rhai::ImmutableString, _: Array, _: FnPtr| true,
        );
        bind(&mut e, "f3", [], "Doc three.", || ());
        let json: serde_json::Value =
            serde_json::from_str(&e.gen_fn_metadata_to_json(false).unwrap()).unwrap();
        let sigs: Vec<String> = json["functions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["signature"].as_str().unwrap().to_string())
            .collect();
        assert!(
            sigs.contains(&"f1(path: string, n: int, x: float, opts: map) -> array".to_string()),
            "{sigs:?}"
        );
        assert!(
            sigs.contains(&"f2(name: string, cells: array, f: Fn) -> bool".to_string()),
            "{sigs:?}"
        );
        assert!(sigs.contains(&"f3()".to_string()), "{sigs:?}");
        let f1 = json["functions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["name"] == "f1")
            .unwrap();
        assert_eq!(f1["docComments"][0], "/// Doc one.");
    }
}
