//! Module resolution: the embedded standard library (`import "std/study"`) and user modules.
//!
//! The `.rhai` files under `stdlib/std/` are compiled into the binary with `include_str!` and
//! served under `std/NAME`; each is compiled and evaluated on first import (so std modules may
//! import each other) and cached. Every other path goes to rhai's `FileModuleResolver` without a
//! base path, which resolves a relative path against the directory of the importing script (the
//! AST source set by `Host::run_file`), and adds the `.rhai` extension.

use std::cell::RefCell;
use std::collections::HashMap;

use rhai::module_resolvers::FileModuleResolver;
use rhai::{Engine, EvalAltResult, Module, ModuleResolver, Position, Scope, Shared};

/// A shared module (rhai's private `SharedModule` alias).
type SharedModule = Shared<Module>;

/// The embedded standard library: (import path, source text).
pub const STDLIB: &[(&str, &str)] = &[
    ("std/study", include_str!("../../stdlib/std/study.rhai")),
    ("std/report", include_str!("../../stdlib/std/report.rhai")),
    ("std/compare", include_str!("../../stdlib/std/compare.rhai")),
];

/// The source text of a std module.
pub fn std_source(path: &str) -> Option<&'static str> {
    STDLIB.iter().find(|(p, _)| *p == path).map(|(_, s)| *s)
}

/// Names of the std modules, for error messages.
pub fn std_names() -> Vec<&'static str> {
    STDLIB.iter().map(|(p, _)| *p).collect()
}

/// Resolves `std/...` from the embedded library and everything else from files.
pub struct Resolver {
    std_cache: RefCell<HashMap<String, SharedModule>>,
    files: FileModuleResolver,
}

impl Resolver {
    /// A resolver; `cache_files: false` re-reads user modules on every import (REPL).
    pub fn new(cache_files: bool) -> Self {
        let mut files = FileModuleResolver::new();
        files.enable_cache(cache_files);
        Resolver {
            std_cache: RefCell::default(),
            files,
        }
    }
}

impl ModuleResolver for Resolver {
    fn resolve(
        &self,
        engine: &Engine,
        source: Option<&str>,
        path: &str,
        pos: Position,
    ) -> Result<SharedModule, Box<EvalAltResult>> {
        if !path.starts_with("std/") {
            return self.files.resolve(engine, source, path, pos);
        }
        if let Some(m) = self.std_cache.borrow().get(path) {
            return Ok(m.clone());
        }
        let Some(text) = std_source(path) else {
            return Err(EvalAltResult::ErrorModuleNotFound(
                format!("{path} (std modules: {})", std_names().join(", ")),
                pos,
            )
            .into());
        };
        let in_module = |e: Box<EvalAltResult>| -> Box<EvalAltResult> {
            EvalAltResult::ErrorInModule(path.to_string(), e, pos).into()
        };
        let mut ast = engine.compile(text).map_err(|e| in_module(e.into()))?;
        ast.set_source(path);
        let mut module = Module::eval_ast_as_new(Scope::new(), &ast, engine).map_err(in_module)?;
        module.build_index();
        let shared: SharedModule = module.into();
        self.std_cache
            .borrow_mut()
            .insert(path.to_string(), shared.clone());
        Ok(shared)
    }
}
