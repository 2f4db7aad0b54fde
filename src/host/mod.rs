//! The script host: one Rhai engine, a persistent scope, and the session state the bindings
//! share. The host never names the bindings (`crate::api` uses the host, not the other way
//! round); [`HostBuilder::bindings`] adds them, and `peftlab::api::host()` is the builder with
//! all of peftlab's.
//!
//! The command line (`peftlab run/repl/check/doc`), the tests and `examples/embedding.rs` all
//! drive scripts through [`Host`]:
//!
//! ```
//! let mut host = peftlab::api::host().set("r", "8").unwrap().capture_output().build();
//! host.eval(r#"print(`r = ${r}, lr = ${get_setting("lr", 2e-4)}`);"#).unwrap();
//! assert_eq!(host.output(), "r = 8, lr = 0.0002\n");
//! ```
//!
//! Writing a binding (in `src/api/<area>.rs`, registered from `api::register_all`):
//! - register handle types first with [`register_handle`] (`Handle<T>`, `T: Display`);
//! - register each function with [`bind`] (parameter names and a doc comment are required);
//! - parse option maps with [`parse_opts`] into a `#[derive(Deserialize)] #[serde(default)]`
//!   struct (unknown keys and wrong types become errors naming the key);
//! - map domain errors with `.ctx("fn_name")?` ([`ResultExt`]); the engine adds the position;
//! - long loops call `crate::interrupt::check()` between units of work (domain side) or
//!   [`interrupted`] (binding side).
//!
//! Settings given with `--set key=value` are visible to scripts as top-level constants (`r`),
//! as `settings::r` (also inside `fn` bodies) and through `get_setting("r", default)`.

pub mod cells;
pub mod check;
pub mod closure;
pub mod convert;
pub mod deep;
pub mod docs;
pub mod engine;
pub mod error;
pub mod files;
pub mod handle;
pub mod opts;
pub mod register;
pub mod reporter;
pub mod resolver;
pub mod session;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use rhai::{Dynamic, Engine, EvalAltResult, Scope, AST};

pub use closure::{call_closure, closure_params};
pub use error::{fail, interrupted, terminated, ErrorKind, ResultExt, RhaiResult, ScriptError};
pub use handle::{register_handle, Handle};
pub use opts::{from_value, parse_opts};
pub use register::bind;
pub use reporter::Reporter;
pub use session::{Session, SessionConfig, Setting, Shard};

use crate::interrupt;

/// Registers script functions on a new engine (peftlab's bindings are `crate::api::register_all`).
///
/// The host is the runtime below the bindings: it never names them, so that `api` may use the
/// host's helpers without a circle. `crate::api::host()` is the builder with every binding.
pub type Registrar = fn(&mut Engine, &Session);

/// Builds a [`Host`].
#[derive(Debug, Clone, Default)]
pub struct HostBuilder {
    config: SessionConfig,
    capture: bool,
    quiet: bool,
    reload_modules: bool,
    bindings: Vec<Registrar>,
}

impl HostBuilder {
    /// The script to run; sets the default output directory (`runs/<stem>/`) and the base
    /// directory of the script's imports and of `git rev-parse`.
    pub fn script(mut self, path: impl Into<PathBuf>) -> Self {
        self.config.script = Some(path.into());
        self
    }

    /// `--out DIR`.
    pub fn out_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.config.out_dir = Some(dir.into());
        self
    }

    /// `--set key=value` (the value is parsed as on the command line).
    pub fn set(mut self, key: &str, value: &str) -> Result<Self, String> {
        let (k, s) = session::parse_assignment(&format!("{key}={value}"))?;
        self.config.settings.retain(|(old, _)| *old != k);
        self.config.settings.push((k, s));
        Ok(self)
    }

    /// Adds already-parsed settings (from the command line).
    pub fn settings(mut self, settings: Vec<(String, Setting)>) -> Self {
        for (k, s) in settings {
            self.config.settings.retain(|(old, _)| *old != k);
            self.config.settings.push((k, s));
        }
        self
    }

    /// `--shard I/N`.
    pub fn shard(mut self, shard: Option<Shard>) -> Self {
        self.config.shard = shard;
        self
    }

    /// `--rerun`.
    pub fn rerun(mut self, on: bool) -> Self {
        self.config.rerun = on;
        self
    }

    /// `--collect`.
    pub fn collect(mut self, on: bool) -> Self {
        self.config.collect = on;
        self
    }

    /// Capture `print` output and messages in memory instead of writing to stdout/stderr.
    pub fn capture_output(mut self) -> Self {
        self.capture = true;
        self
    }

    /// Suppress status lines (`--quiet`).
    pub fn quiet(mut self, on: bool) -> Self {
        self.quiet = on;
        self
    }

    /// Re-read user modules on every `import` (the REPL, so that edits are picked up).
    pub fn reload_modules(mut self, on: bool) -> Self {
        self.reload_modules = on;
        self
    }

    /// Adds a set of script functions, registered on every engine this host builds (after the
    /// engine's own functions, in the order added).
    pub fn bindings(mut self, register: Registrar) -> Self {
        self.bindings.push(register);
        self
    }

    /// Creates the host.
    pub fn build(self) -> Host {
        let reporter = if self.capture {
            Reporter::capturing()
        } else {
            Reporter::stdio(self.quiet)
        };
        let session = Session::new(self.config, reporter);
        let engine = engine::build_engine(&session, !self.reload_modules, &self.bindings);
        let mut host = Host {
            engine,
            session,
            scope: Scope::new(),
            functions: AST::empty(),
            sources: HashMap::new(),
            inputs: 0,
        };
        host.reset();
        host
    }
}

/// A script host: engine, persistent scope and accumulated script functions.
pub struct Host {
    engine: Engine,
    session: Session,
    scope: Scope<'static>,
    functions: AST,
    sources: HashMap<String, String>,
    inputs: usize,
}

impl Host {
    /// A builder with default settings (stdout output, no script) and no bindings beyond the
    /// host's own; `crate::api::host()` adds peftlab's.
    pub fn builder() -> HostBuilder {
        HostBuilder::default()
    }

    /// The engine (for registering more functions or inspecting metadata).
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Mutable access to the engine.
    pub fn engine_mut(&mut self) -> &mut Engine {
        &mut self.engine
    }

    /// The session state.
    pub fn session(&self) -> &Session {
        &self.session
    }

    /// The persistent scope (variables defined by evaluated code).
    pub fn scope(&self) -> &Scope<'static> {
        &self.scope
    }

    /// Captured `print` output (with [`HostBuilder::capture_output`]).
    pub fn output(&self) -> String {
        self.session.reporter().output()
    }

    /// Captured messages: `debug`, status lines, warnings.
    pub fn messages(&self) -> String {
        self.session.reporter().messages()
    }

    /// Clears variables and functions; the settings constants are pushed again.
    pub fn reset(&mut self) {
        self.scope = Scope::new();
        for (k, s) in self.session.settings() {
            self.scope.push_constant_dynamic(k.clone(), s.value.clone());
        }
        self.functions = AST::empty();
    }

    /// Compiles a file (reading it; compile errors are rendered against its text).
    pub fn compile_file(&mut self, path: &Path) -> Result<AST, ScriptError> {
        let name = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| io_error(&name, &e))?;
        self.compile_named(&text, &name)
    }

    /// Compiles `code` under the source name `name` (used in messages and for relative imports).
    pub fn compile_named(&mut self, code: &str, name: &str) -> Result<AST, ScriptError> {
        self.sources.insert(name.to_string(), code.to_string());
        let mut ast = self
            .engine
            .compile_with_scope(&compile_scope(&self.scope), code)
            .map_err(|mut e| {
                error::adjust_parse_error(code, &mut e);
                self.render_error(e.into(), name)
            })?;
        ast.set_source(name);
        Ok(ast)
    }

    /// Runs the session's script (from [`HostBuilder::script`]).
    pub fn run_script(&mut self) -> Result<Dynamic, ScriptError> {
        let Some(path) = self.session.script().map(Path::to_path_buf) else {
            return Err(io_error(
                "<none>",
                &std::io::Error::other("no script given"),
            ));
        };
        self.run_file(&path)
    }

    /// Runs a file in the persistent scope; its functions stay defined.
    pub fn run_file(&mut self, path: &Path) -> Result<Dynamic, ScriptError> {
        let ast = self.compile_file(path)?;
        self.exec(ast)
    }

    /// Evaluates a piece of code in the persistent scope (REPL semantics: variables and
    /// functions persist between calls). Inputs are named `<input:N>` in messages.
    pub fn eval(&mut self, code: &str) -> Result<Dynamic, ScriptError> {
        self.inputs += 1;
        let name = format!("<input:{}>", self.inputs);
        let ast = self.compile_named(code, &name)?;
        self.exec(ast)
    }

    fn exec(&mut self, ast: AST) -> Result<Dynamic, ScriptError> {
        let name = ast.source().unwrap_or("<input>").to_string();
        interrupt::reset();
        let _ = deep::take_deferred();
        let mut merged = self.functions.merge(&ast);
        let mut result = self
            .engine
            .eval_ast_with_scope::<Dynamic>(&mut self.scope, &merged);
        // An error deferred by printing a too deeply nested value: raised by the next
        // operation, reported where the printing happened (or raised now if no operation came).
        if let Some((msg, pos)) = deep::take_deferred() {
            match &mut result {
                Err(e) => {
                    deep::place_deferred(e, &msg, pos);
                }
                Ok(_) => result = Err(EvalAltResult::ErrorRuntime(msg.into(), pos).into()),
            }
        }
        merged.clear_statements();
        self.functions = merged;
        result.map_err(|e| self.render_error(e, &name))
    }

    /// Renders an engine error against the sources this host has seen.
    pub fn render_error(&self, err: Box<EvalAltResult>, main_source: &str) -> ScriptError {
        let lookup = |name: &str| -> Option<String> {
            if let Some(t) = self.sources.get(name) {
                return Some(t.clone());
            }
            if let Some(t) = resolver::std_source(name) {
                return Some(t.to_string());
            }
            // User modules are named by their import path, relative to the script's directory.
            let dir = self.session.script_dir();
            [Path::new(name).to_path_buf(), dir.join(name)]
                .iter()
                .flat_map(|p| [p.clone(), p.with_extension("rhai")])
                .find_map(|p| std::fs::read_to_string(p).ok())
        };
        error::render(err, main_source, &lookup)
    }

    /// Signatures of the script functions defined so far (REPL `:fns`).
    pub fn user_functions(&self) -> Vec<String> {
        self.functions
            .iter_functions()
            .filter(|f| !f.name.starts_with("anon$"))
            .map(|f| format!("{}({})", f.name, f.params.join(", ")))
            .collect()
    }

    /// Documentation of all callable functions.
    pub fn docs(&self) -> Vec<docs::FnDoc> {
        docs::collect(&self.engine)
    }

    /// A one-line, readable summary of a value (REPL echo): strings quoted, long arrays and maps
    /// shortened, handles through their registered `to_debug`.
    pub fn summarize(&self, v: &Dynamic) -> String {
        summarize(&self.engine, v, 0)
    }
}

/// The scope to compile against: the same names, every one a variable. Rhai's optimizer
/// propagates the *constants* of the compile scope into `fn` bodies and closures without
/// regard to their parameters, so with the settings as constants `--set bits=[4, 16]` replaced
/// the parameter `bits` of `fn load_opts(bits, device)`. Variables are not propagated; the
/// names are still known to strict-variables mode, and the settings stay constants at run time.
pub(crate) fn compile_scope(scope: &Scope) -> Scope<'static> {
    let mut s = Scope::new();
    for (name, _constant, value) in scope.iter_raw() {
        s.push_dynamic(name.to_string(), value.clone());
    }
    s
}

fn io_error(name: &str, e: &std::io::Error) -> ScriptError {
    let message = format!("cannot read '{name}': {e}");
    ScriptError {
        kind: ErrorKind::Io,
        rendered: format!("error: {message}\n"),
        message,
        location: None,
    }
}

/// Most items shown for arrays and maps in summaries.
const SUMMARY_ITEMS: usize = 12;
/// Most characters shown for strings in summaries.
const SUMMARY_CHARS: usize = 400;

fn summarize(engine: &Engine, v: &Dynamic, depth: usize) -> String {
    let v = if v.is_shared() {
        v.flatten_clone()
    } else {
        v.clone()
    };
    if v.is_unit() {
        return "()".into();
    }
    if v.is_string() {
        let s = v.to_string();
        let n = s.chars().count();
        return if n > SUMMARY_CHARS {
            let head: String = s.chars().take(SUMMARY_CHARS).collect();
            format!("{head:?}... ({n} chars)")
        } else {
            format!("{s:?}")
        };
    }
    if v.is_int() || v.is_float() || v.is_bool() || v.is_char() {
        return v.to_string();
    }
    if let Some(a) = v.read_lock::<rhai::Array>() {
        if depth > 3 {
            return format!("[... {} items]", a.len());
        }
        let mut parts: Vec<String> = a
            .iter()
            .take(SUMMARY_ITEMS)
            .map(|x| summarize(engine, x, depth + 1))
            .collect();
        if a.len() > SUMMARY_ITEMS {
            parts.push(format!("... ({} items)", a.len()));
        }
        return format!("[{}]", parts.join(", "));
    }
    if let Some(m) = v.read_lock::<rhai::Map>() {
        if depth > 3 {
            return format!("#{{... {} keys}}", m.len());
        }
        let mut parts: Vec<String> = m
            .iter()
            .take(SUMMARY_ITEMS)
            .map(|(k, x)| format!("{k}: {}", summarize(engine, x, depth + 1)))
            .collect();
        if m.len() > SUMMARY_ITEMS {
            parts.push(format!("... ({} keys)", m.len()));
        }
        return format!("#{{{}}}", parts.join(", "));
    }
    // Custom types: the registered `to_debug`.
    let mut scope = Scope::new();
    scope.push_dynamic("__v", v.clone());
    engine
        .eval_with_scope::<String>(&mut scope, "to_debug(__v)")
        .unwrap_or_else(|_| engine.map_type_name(v.type_name()).to_string())
}
