//! # peftlab
//!
//! Multilingual parameter-efficient fine-tuning studies as Rhai scripts.
//!
//! The crate is split into *domain* modules that never import `rhai` (model, adapter, quant,
//! train, data, eval, stats, table, plot) and a thin *host* layer (`host`, `api`, `repl`) that
//! exposes them to study scripts. The Rhai surface is documented in `docs/API.md`.
#![warn(missing_docs)]

pub mod quant;
pub mod rng;
pub mod value;
