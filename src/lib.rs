//! # peftlab
//!
//! Multilingual parameter-efficient fine-tuning studies as Rhai scripts.
//!
//! The crate is split into *domain* modules that never import `rhai` (model, adapter, quant,
//! train, data, eval, stats, table, plot) and a thin *host* layer (`host`, `api`, `repl`) that
//! exposes them to study scripts. The Rhai surface is documented in `docs/API.md`.
#![warn(missing_docs)]

pub mod adapter;
pub mod api;
pub mod backend;
pub mod bench;
pub mod cli;
pub mod data;
pub mod eval;
pub mod fsutil;
pub mod gguf;
pub mod host;
pub mod interrupt;
pub mod lab;
pub mod lens;
pub mod limits;
pub mod model;
pub mod num;
pub mod plot;
pub mod progress;
pub mod quant;
pub mod repl;
pub mod rng;
pub mod stats;
pub mod table;
pub mod tensor;
pub mod text;
pub mod train;
pub mod value;
