//! Process-wide interrupt flag (Ctrl-C), polled by long native loops.

use std::sync::atomic::{AtomicBool, Ordering};

static FLAG: AtomicBool = AtomicBool::new(false);

/// The user interrupted the current evaluation.
#[derive(Debug, thiserror::Error)]
#[error("interrupted")]
pub struct Interrupted;

/// Errors if an interrupt was requested.
pub fn check() -> Result<(), Interrupted> {
    if FLAG.load(Ordering::Relaxed) {
        Err(Interrupted)
    } else {
        Ok(())
    }
}

/// Requests an interrupt.
pub fn request() {
    FLAG.store(true, Ordering::Relaxed);
}

/// Clears the flag before a new evaluation.
pub fn reset() {
    FLAG.store(false, Ordering::Relaxed);
}
