//! Process-wide interruption (Ctrl-C) flag.
//!
//! A single [`AtomicBool`] is set by a `ctrlc` handler (installed once by the command line
//! front end with [`install`]). Long-running domain loops — training steps, evaluation batches,
//! quantisation blocks, file hashing — call [`check`] between units of work and stop with
//! [`Interrupted`] when the user pressed Ctrl-C. The script host clears the flag with [`reset`]
//! before each evaluation and turns [`Interrupted`] into a terminating (uncatchable) script error
//! at the call position. This is the `Signals::check`/`Signals::reset` pattern of nushell
//! (`crates/nu-protocol/src/pipeline/signals.rs`). This module does not depend on `rhai`.
//!
//! ```
//! use peftlab::interrupt;
//! fn train_steps(n: usize) -> Result<usize, interrupt::Interrupted> {
//!     for step in 0..n {
//!         interrupt::check()?; // between units of work
//!         let _ = step;
//!     }
//!     Ok(n)
//! }
//! interrupt::reset();
//! assert_eq!(train_steps(3).unwrap(), 3);
//! ```

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;

static FLAG: AtomicBool = AtomicBool::new(false);
static INSTALLED: OnceLock<bool> = OnceLock::new();

/// The user interrupted the computation (Ctrl-C).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("interrupted (Ctrl-C)")]
pub struct Interrupted;

/// Installs the Ctrl-C handler once per process; later calls do nothing.
///
/// The handler sets the flag. A second Ctrl-C while the flag is still set (nobody has polled it,
/// e.g. inside a native call that cannot be cancelled) exits the process with status 130.
/// Returns `false` when the handler could not be installed (another one exists).
pub fn install() -> bool {
    *INSTALLED.get_or_init(|| {
        ctrlc::set_handler(|| {
            if FLAG.swap(true, Ordering::SeqCst) {
                eprintln!("\ninterrupted twice: exiting");
                std::process::exit(130);
            }
        })
        .is_ok()
    })
}

/// Returns `Err(Interrupted)` when Ctrl-C was pressed since the last [`reset`].
///
/// Cheap (one atomic load): call it between units of work.
pub fn check() -> Result<(), Interrupted> {
    if FLAG.load(Ordering::Relaxed) {
        Err(Interrupted)
    } else {
        Ok(())
    }
}

/// Whether the flag is set.
pub fn is_set() -> bool {
    FLAG.load(Ordering::Relaxed)
}

/// Clears the flag (the host calls this before each evaluation).
pub fn reset() {
    FLAG.store(false, Ordering::SeqCst);
}

/// Sets the flag as if Ctrl-C had been pressed (for tests and for embedding applications that
/// have their own cancel button).
pub fn trigger() {
    FLAG.store(true, Ordering::SeqCst);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trigger_check_reset() {
        reset();
        assert_eq!(check(), Ok(()));
        trigger();
        assert!(is_set());
        assert_eq!(check(), Err(Interrupted));
        assert_eq!(Interrupted.to_string(), "interrupted (Ctrl-C)");
        reset();
        assert_eq!(check(), Ok(()));
    }
}
