//! Documentation of everything a script can call: native bindings (from the engine's metadata,
//! `Engine::gen_fn_metadata_to_json`) and the functions of the embedded std modules (from their
//! ASTs' `///` comments). Used by `peftlab doc`, the REPL's `:help` and the no-panic test
//! (`peftlab doc --json`); `crate::api::docs_md` renders them as docs/API.md.

use rhai::Engine;
use serde::Serialize;

use super::register::{doc_text, friendly_type};
use super::resolver::STDLIB;

/// One parameter of a documented function.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ParamDoc {
    /// Parameter name (`_` when unknown).
    pub name: String,
    /// Friendly type name (`int`, `string`, `Model`, `any`, ...).
    #[serde(rename = "type")]
    pub typ: String,
}

/// One documented function.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct FnDoc {
    /// Function name as called from scripts.
    pub name: String,
    /// `""` for native functions, the module path (`std/study`) for std functions.
    pub module: String,
    /// Parameters in order.
    pub params: Vec<ParamDoc>,
    /// Friendly return type (`""` when unknown or `()`).
    pub returns: String,
    /// Plain-text documentation (first line = summary).
    pub doc: String,
}

impl FnDoc {
    /// `name(a: int, b: string) -> float`, with a `std/study::` prefix for std functions.
    pub fn signature(&self) -> String {
        let params: Vec<String> = self
            .params
            .iter()
            .map(|p| {
                if p.typ.is_empty() {
                    p.name.clone()
                } else {
                    format!("{}: {}", p.name, p.typ)
                }
            })
            .collect();
        let prefix = if self.module.is_empty() {
            String::new()
        } else {
            format!("{}::", self.module)
        };
        let ret = if self.returns.is_empty() || self.returns == "()" {
            String::new()
        } else {
            format!(" -> {}", self.returns)
        };
        format!("{prefix}{}({}){ret}", self.name, params.join(", "))
    }

    /// The first paragraph of the documentation, on one line.
    pub fn summary(&self) -> String {
        let lines: Vec<&str> = self
            .doc
            .lines()
            .map(str::trim)
            .take_while(|l| !l.is_empty())
            .collect();
        lines.join(" ")
    }
}

/// All native functions registered outside rhai's standard packages, sorted by name and arity,
/// followed by the public functions of the std modules.
pub fn collect(engine: &Engine) -> Vec<FnDoc> {
    let mut docs = native_docs(engine);
    // The depth-limited `==`/printing of arrays and maps replace rhai's own (same behaviour),
    // which are not listed either.
    docs.retain(|d| {
        !(super::deep::OVERRIDDEN.contains(&d.name.as_str())
            && d.params
                .first()
                .is_some_and(|p| p.typ == "array" || p.typ == "map"))
    });
    docs.sort_by(|a, b| {
        a.name
            .cmp(&b.name)
            .then(a.params.len().cmp(&b.params.len()))
            .then(a.signature().cmp(&b.signature()))
    });
    docs.extend(std_docs(engine));
    docs
}

/// The native functions registered in `engine` outside rhai's standard packages, unsorted.
pub fn native_docs(engine: &Engine) -> Vec<FnDoc> {
    let json = engine.gen_fn_metadata_to_json(false).unwrap_or_default();
    let value: serde_json::Value = serde_json::from_str(&json).unwrap_or_default();
    let empty = Vec::new();
    let functions = value
        .get("functions")
        .and_then(|f| f.as_array())
        .unwrap_or(&empty);
    functions
        .iter()
        .filter(|f| f.get("type").and_then(|t| t.as_str()) == Some("native"))
        .map(|f| {
            let name = f["name"].as_str().unwrap_or_default().to_string();
            let n = f["numParams"].as_u64().unwrap_or(0) as usize;
            let given = f
                .get("params")
                .and_then(|p| p.as_array())
                .cloned()
                .unwrap_or_default();
            let params = (0..n)
                .map(|i| {
                    let p = given.get(i);
                    let pname = p
                        .and_then(|p| p.get("name"))
                        .and_then(|n| n.as_str())
                        .unwrap_or("_");
                    let ptype = p
                        .and_then(|p| p.get("type"))
                        .and_then(|t| t.as_str())
                        .unwrap_or("");
                    ParamDoc {
                        name: pname.to_string(),
                        typ: if ptype.is_empty() {
                            String::new()
                        } else {
                            friendly_type(engine, ptype)
                        },
                    }
                })
                .collect();
            let ret = f.get("returnType").and_then(|r| r.as_str()).unwrap_or("");
            let comments: Vec<String> = f
                .get("docComments")
                .and_then(|d| d.as_array())
                .map(|a| {
                    a.iter()
                        .filter_map(|c| c.as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default();
            FnDoc {
                name,
                module: String::new(),
                params,
                returns: if ret.is_empty() {
                    String::new()
                } else {
                    friendly_type(engine, ret)
                },
                doc: doc_text(&comments),
            }
        })
        .collect()
}

/// The module-level `//!` documentation and public functions of each std module.
pub fn std_docs(engine: &Engine) -> Vec<FnDoc> {
    let mut out = Vec::new();
    for (path, text) in STDLIB {
        let Ok(ast) = engine.compile(text) else {
            continue;
        };
        let mut fns: Vec<FnDoc> = ast
            .iter_functions()
            .filter(|f| f.access == rhai::FnAccess::Public && !f.name.starts_with("anon$"))
            .map(|f| FnDoc {
                name: f.name.to_string(),
                module: path.to_string(),
                params: f
                    .params
                    .iter()
                    .map(|p| ParamDoc {
                        name: p.to_string(),
                        typ: String::new(),
                    })
                    .collect(),
                returns: String::new(),
                doc: doc_text(&f.comments),
            })
            .collect();
        fns.sort_by(|a, b| {
            a.name
                .cmp(&b.name)
                .then(a.params.len().cmp(&b.params.len()))
        });
        out.extend(fns);
    }
    out
}

/// The `//!` documentation of a std module.
pub fn module_doc(engine: &Engine, path: &str) -> Option<String> {
    let text = super::resolver::std_source(path)?;
    let ast = engine.compile(text).ok()?;
    let lines: Vec<&str> = ast.doc().lines().collect();
    Some(doc_text(
        &lines
            .iter()
            .map(|l| l.replacen("//!", "///", 1))
            .collect::<Vec<_>>(),
    ))
}

/// The overview: one line per function (signature and summary).
pub fn render_list(docs: &[FnDoc]) -> String {
    let mut out = String::new();
    let mut module = None;
    for d in docs.iter().filter(|d| !d.name.contains('$')) {
        if module != Some(&d.module) {
            let title = if d.module.is_empty() {
                "native functions"
            } else {
                &d.module
            };
            out.push_str(&format!("\n{title}\n"));
            module = Some(&d.module);
        }
        out.push_str(&format!("  {}\n", d.signature()));
        if !d.summary().is_empty() {
            out.push_str(&format!("      {}\n", d.summary()));
        }
    }
    out.trim_start().to_string()
}

/// Full documentation of the functions called `name` (all overloads), of a std module
/// (`std/study` or `study`), or, failing that, of functions whose name contains `name`.
pub fn render_topic(engine: &Engine, docs: &[FnDoc], name: &str) -> Option<String> {
    let module_path = if name.starts_with("std/") {
        name.to_string()
    } else {
        format!("std/{name}")
    };
    if let Some(mdoc) = module_doc(engine, &module_path) {
        let mut out = format!("{module_path}\n\n{mdoc}\n\nfunctions:\n");
        for d in docs.iter().filter(|d| d.module == module_path) {
            out.push_str(&format!("  {}\n", d.signature()));
        }
        return Some(out);
    }
    let (module, fname) = match name.rsplit_once("::") {
        Some((m, f)) => (Some(m), f),
        None => (None, name),
    };
    let exact: Vec<&FnDoc> = docs
        .iter()
        .filter(|d| {
            d.name == fname
                && module.is_none_or(|m| d.module == m || d.module == format!("std/{m}"))
        })
        .collect();
    let chosen: Vec<&FnDoc> = if exact.is_empty() {
        docs.iter()
            .filter(|d| d.name.contains(fname) && !d.name.contains('$'))
            .collect()
    } else {
        exact
    };
    if chosen.is_empty() {
        return None;
    }
    let mut out = String::new();
    for d in chosen {
        out.push_str(&d.signature());
        out.push('\n');
        for line in d.doc.lines() {
            out.push_str(format!("    {line}").trim_end());
            out.push('\n');
        }
        out.push('\n');
    }
    Some(out.trim_end().to_string() + "\n")
}
