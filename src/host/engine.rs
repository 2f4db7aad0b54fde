//! Engine setup: language options, limits, output hooks, interruption and the `settings` module.
//!
//! - Strict variables (an undefined variable is a compile error) and an error for reading a
//!   missing map property (`cfg.rnak`), as recommended in the research note.
//! - Call depth 64 and expression depths 128/64 in *every* build (rhai's debug-build defaults
//!   are 8 and 32/16, so `cargo test` would otherwise behave differently from release).
//! - `print`/`debug` go to the session's [`Reporter`](super::Reporter).
//! - `on_progress` (called for every script operation) is a single atomic load of the interrupt
//!   flag; once set, the script ends with `ErrorTerminated` at the current position.
//! - Size limits on arrays, strings and maps from [`crate::limits`] (raised with
//!   `--max-array-size`, `--max-string-size`, `--max-map-size`); nested values are compared and
//!   printed by [`super::deep`], which stops at `--max-depth` and raises its error through the
//!   same progress hook.
//! - `--set` settings are exposed three ways: as constants in the top-level scope (`r`), as the
//!   variables of the static module `settings` (`settings::r`, which also works inside `fn`
//!   bodies, where top-level variables are invisible), and through `get_setting(name, default)`.

use rhai::{Dynamic, Engine, Module};

use super::error::INTERRUPTED_TOKEN;
use super::resolver::Resolver;
use super::session::Session;
use crate::interrupt;

/// Maximum script call depth (rhai's release default; the debug default is 8).
pub const MAX_CALL_LEVELS: usize = 64;
/// Maximum expression nesting depth at global level.
pub const MAX_EXPR_DEPTH: usize = 128;
/// Maximum expression nesting depth inside functions.
pub const MAX_FUNCTION_EXPR_DEPTH: usize = 64;

/// Creates an engine with the host's options and hooks, the module resolver, the `settings`
/// module and the given bindings (peftlab's are `crate::api::register_all`).
pub fn build_engine(
    session: &Session,
    cache_modules: bool,
    bindings: &[super::Registrar],
) -> Engine {
    let mut engine = Engine::new();
    configure(&mut engine);

    let reporter = session.reporter().clone();
    engine.on_print(move |s| reporter.print(s));
    let reporter = session.reporter().clone();
    engine.on_debug(move |s, src, pos| reporter.debug(s, src, pos.line(), pos.position()));
    engine.on_progress(|_| {
        if interrupt::is_set() {
            Some(Dynamic::from(INTERRUPTED_TOKEN))
        } else {
            super::deep::peek_deferred().map(Dynamic::from)
        }
    });
    engine.set_module_resolver(Resolver::new(cache_modules));

    let mut settings = Module::new();
    for (k, s) in session.settings() {
        settings.set_var(k.as_str(), s.value.clone());
    }
    settings.build_index();
    engine.register_static_module("settings", settings.into());

    for register in bindings {
        register(&mut engine, session);
    }
    super::deep::register(&mut engine);
    engine
}

/// Applies the language options and limits (also used by the REPL's input validator).
pub fn configure(engine: &mut Engine) {
    engine.set_strict_variables(true);
    engine.set_fail_on_invalid_map_property(true);
    engine.set_max_call_levels(MAX_CALL_LEVELS);
    engine.set_max_expr_depths(MAX_EXPR_DEPTH, MAX_FUNCTION_EXPR_DEPTH);
    engine.set_max_operations(0);
    let l = crate::limits::get();
    engine.set_max_array_size(l.max_array_size);
    engine.set_max_string_size(l.max_string_size);
    engine.set_max_map_size(l.max_map_size);
}
