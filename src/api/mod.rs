//! Rhai bindings: thin functions that convert script arguments, call domain code and convert
//! the result. One file per area of the API (`docs/API.md`); each area has a
//! `register(engine, session)` function called from [`register_all`].
//!
//! See [`crate::host`] for the helpers every binding uses ([`crate::host::bind`],
//! [`crate::host::parse_opts`], [`crate::host::ResultExt::ctx`], [`crate::host::Handle`]).

pub mod adapter;
pub mod args;
pub mod core;
pub mod data;
pub mod eval;
pub mod model;
pub mod quant;
pub mod stats;
pub mod study;
pub mod table;
pub mod tensor;
pub mod train;

use rhai::Engine;

use crate::host::Session;

/// A host builder with every peftlab binding (the entry point of the command line, the REPL,
/// embedding programs and tests).
pub fn host() -> crate::host::HostBuilder {
    crate::host::Host::builder().bindings(register_all)
}

/// Registers every binding area.
pub fn register_all(engine: &mut Engine, session: &Session) {
    // Handle types first, so that every signature shows their script names.
    core::register(engine, session);
    tensor::register(engine, session);
    table::register(engine, session);
    model::register(engine, session);
    adapter::register(engine, session);
    data::register(engine, session);
    train::register(engine, session);
    stats::register(engine, session);
    eval::register(engine, session);
    quant::register(engine, session);
    study::register(engine, session);
}
