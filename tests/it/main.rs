//! The integration tests, linked into one binary (`cargo test --test it`): every test binary
//! links burn, tokenizers, parquet and plotters, so one binary instead of one per file cuts the
//! build. Each file is a module; `common` holds the shared helpers.
//!
//! Tests that touch process-wide state are in `tests/serial` instead: `host` sets the
//! Ctrl-C flag (which every in-process library call checks, and which `Host::eval` resets), and
//! `quant_memory` counts heap bytes with its own global allocator.

mod common;

mod adapters;
mod api_doc;
mod atomic;
mod cli_cells;
mod cli_check;
mod cli_diskfull;
mod cli_doc;
mod cli_nopanic;
mod cli_run;
mod dtype;
mod eval_tiny;
mod flix;
mod gguf_llama;
mod gguf_reader;
mod gguf_smollm2;
mod layering;
mod lens;
mod model_errors;
mod models;
mod named_adapters;
mod quant_model;
mod repl;
mod script_errors;
mod scripts;
mod stdlib;
mod train_loop;
mod train_robust;
mod train_step;
