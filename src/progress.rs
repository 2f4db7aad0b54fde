//! Progress bars for long domain operations (loading, training, evaluation).
//!
//! A thin wrapper over `indicatif::ProgressBar` that draws only when stderr is a terminal and
//! progress output is globally enabled; otherwise every method is a no-op, so domain code can
//! call it unconditionally and tests and batch logs stay clean. The command line turns it off
//! with `--quiet` ([`set_enabled`]). This module does not depend on `rhai`.
//!
//! ```
//! use peftlab::progress::Progress;
//! let mut p = Progress::new(3, "training");
//! for _ in 0..3 {
//!     p.inc(1);
//!     p.set_message("loss 1.23");
//! }
//! p.finish();
//! ```

use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

static ENABLED: AtomicBool = AtomicBool::new(true);

/// Enables or disables all progress bars of the process (`--quiet` disables them).
pub fn set_enabled(on: bool) {
    ENABLED.store(on, Ordering::SeqCst);
}

/// Whether progress bars would be drawn now (enabled and stderr is a terminal).
pub fn is_visible() -> bool {
    ENABLED.load(Ordering::SeqCst) && std::io::stderr().is_terminal()
}

/// A progress bar on stderr, or nothing when progress output is not visible.
#[derive(Debug)]
pub struct Progress {
    bar: Option<ProgressBar>,
}

impl Progress {
    /// A bar for `len` units labelled `label` (`len == 0`: a spinner for unknown lengths).
    pub fn new(len: u64, label: &str) -> Self {
        if !is_visible() {
            return Self { bar: None };
        }
        let bar = if len == 0 {
            let b = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
            b.set_style(
                ProgressStyle::with_template("{spinner} {prefix} {pos} {elapsed} {msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            );
            b.enable_steady_tick(Duration::from_millis(120));
            b
        } else {
            let b = ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::stderr());
            b.set_style(
                ProgressStyle::with_template(
                    "{prefix} [{bar:30}] {pos}/{len} {elapsed}<{eta} {msg}",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
            );
            b
        };
        bar.set_prefix(label.to_string());
        Self { bar: Some(bar) }
    }

    /// A hidden bar (never draws), e.g. when a caller passed `progress: false`.
    pub fn hidden() -> Self {
        Self { bar: None }
    }

    /// Advances by `n` units.
    pub fn inc(&mut self, n: u64) {
        if let Some(b) = &self.bar {
            b.inc(n);
        }
    }

    /// Sets the absolute position.
    pub fn set_position(&mut self, pos: u64) {
        if let Some(b) = &self.bar {
            b.set_position(pos);
        }
    }

    /// Sets the message shown after the bar (e.g. the current loss).
    pub fn set_message(&mut self, msg: impl Into<String>) {
        if let Some(b) = &self.bar {
            b.set_message(msg.into());
        }
    }

    /// Prints a line above the bar without garbling it (to stderr; silent when hidden).
    pub fn println(&self, line: &str) {
        if let Some(b) = &self.bar {
            b.println(line);
        }
    }

    /// Finishes and clears the bar.
    pub fn finish(&mut self) {
        if let Some(b) = self.bar.take() {
            b.finish_and_clear();
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.finish();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hidden_when_not_a_terminal() {
        // Under `cargo test` stderr is captured or piped, so nothing may be drawn.
        let mut p = Progress::new(10, "test");
        if !std::io::stderr().is_terminal() {
            assert!(p.bar.is_none());
        }
        p.inc(3);
        p.set_message("x");
        p.finish();
        set_enabled(false);
        assert!(!is_visible());
        assert!(Progress::new(5, "off").bar.is_none());
        set_enabled(true);
    }
}
