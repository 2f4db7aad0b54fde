//! Integration tests that need process-wide state to themselves, linked into one binary of
//! their own (`cargo test --test serial`) and run one at a time: every test takes [`SERIAL`].
//!
//! - `host`: sets the Ctrl-C flag, which every in-process library call checks (and `Host::eval`
//!   resets), so it cannot share a process with the tests in `tests/it`.
//! - `quant_memory`: counts peak heap bytes with this binary's global allocator, so no other test
//!   may allocate while it measures.

use std::sync::Mutex;

/// Held by every test of this binary for its whole run.
static SERIAL: Mutex<()> = Mutex::new(());

mod host;
mod quant_memory;
