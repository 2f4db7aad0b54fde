//! The one place where script output goes: `print`, `debug`, host status lines and warnings.
//!
//! In the command line, `print` goes to stdout and everything else to stderr. A capturing
//! reporter (for tests and for applications embedding the host) collects both streams in memory
//! instead. Writes ignore I/O errors (a closed pipe such as `peftlab run x | head` must not
//! panic, which `println!` would).

use std::cell::RefCell;
use std::io::Write;
use std::rc::Rc;

#[derive(Debug, Default)]
struct Captured {
    out: String,
    err: String,
}

/// Where script output goes; cheap to clone (clones share the same sink).
#[derive(Debug, Clone, Default)]
pub struct Reporter {
    capture: Option<Rc<RefCell<Captured>>>,
    quiet: bool,
}

impl Reporter {
    /// Writes to stdout/stderr; `quiet` suppresses status lines ([`Reporter::info`]).
    pub fn stdio(quiet: bool) -> Self {
        Reporter {
            capture: None,
            quiet,
        }
    }

    /// Collects everything in memory (read it with [`Reporter::output`] and
    /// [`Reporter::messages`]).
    pub fn capturing() -> Self {
        Reporter {
            capture: Some(Rc::default()),
            quiet: false,
        }
    }

    /// Output of `print` (a line).
    pub fn print(&self, text: &str) {
        match &self.capture {
            Some(c) => {
                let mut c = c.borrow_mut();
                c.out.push_str(text);
                c.out.push('\n');
            }
            None => {
                let mut out = std::io::stdout().lock();
                let _ = writeln!(out, "{text}");
                let _ = out.flush();
            }
        }
    }

    /// Output of `debug`, prefixed with the source position when known.
    pub fn debug(
        &self,
        text: &str,
        source: Option<&str>,
        line: Option<usize>,
        column: Option<usize>,
    ) {
        let at = match (source, line) {
            (Some(s), Some(l)) => format!("[{s}:{l}:{}] ", column.unwrap_or(0)),
            (None, Some(l)) => format!("[{l}:{}] ", column.unwrap_or(0)),
            _ => String::new(),
        };
        self.err_line(&format!("{at}{text}"));
    }

    /// A host status line (e.g. "run_cells: skipping cell 3/12, already done"); silent when quiet.
    pub fn info(&self, text: &str) {
        if !self.quiet {
            self.err_line(text);
        }
    }

    /// A warning (always shown).
    pub fn warn(&self, text: &str) {
        self.err_line(&format!("warning: {text}"));
    }

    /// An error report (always shown; the command line's rendered errors go here).
    pub fn error(&self, text: &str) {
        self.err_line(text.trim_end_matches('\n'));
    }

    fn err_line(&self, text: &str) {
        match &self.capture {
            Some(c) => {
                let mut c = c.borrow_mut();
                c.err.push_str(text);
                c.err.push('\n');
            }
            None => {
                let mut err = std::io::stderr().lock();
                let _ = writeln!(err, "{text}");
            }
        }
    }

    /// Whether this reporter captures output in memory.
    pub fn is_capturing(&self) -> bool {
        self.capture.is_some()
    }

    /// The captured `print` output so far (empty when not capturing).
    pub fn output(&self) -> String {
        self.capture
            .as_ref()
            .map(|c| c.borrow().out.clone())
            .unwrap_or_default()
    }

    /// The captured debug/info/warning/error lines so far (empty when not capturing).
    pub fn messages(&self) -> String {
        self.capture
            .as_ref()
            .map(|c| c.borrow().err.clone())
            .unwrap_or_default()
    }

    /// Clears the captured text.
    pub fn clear(&self) {
        if let Some(c) = &self.capture {
            let mut c = c.borrow_mut();
            c.out.clear();
            c.err.clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capture_collects_both_streams() {
        let r = Reporter::capturing();
        let r2 = r.clone();
        r.print("a");
        r2.info("b");
        r.warn("c");
        r.debug("d", Some("s.rhai"), Some(2), Some(5));
        assert_eq!(r.output(), "a\n");
        assert_eq!(r.messages(), "b\nwarning: c\n[s.rhai:2:5] d\n");
        r.clear();
        assert_eq!(r2.output(), "");
    }
}
