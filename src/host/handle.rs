//! Handle types: shared, mutable references to big domain objects (models, datasets, tables).
//!
//! Rhai clones a value on every assignment and argument (rhai book, `language/assignment.md`),
//! so big objects live behind `Rc<RefCell<T>>` and scripts pass the cheap [`Handle`] around;
//! `let b = a;` then refers to the same model. The handle is registered under a script name
//! (`Model`) with `to_string`/`to_debug` printing the object's one-line `Display` summary, so
//! `print(m)` and the REPL echo show e.g. `Model(llama, 2 layers, 4.2M params, f32, cpu)`.
//!
//! Borrowing goes through [`Handle::borrow`]/[`Handle::borrow_mut`], which return a script error
//! instead of panicking when the object is already borrowed (a closure passed to a method of the
//! same object calling back into it). Never hold a borrow while calling back into the engine
//! (`FnPtr::call_within_context`); take what you need, drop the borrow, then call.

use std::cell::{Ref, RefCell, RefMut};
use std::fmt::Display;
use std::rc::Rc;

use rhai::Engine;

use super::error::{fail, RhaiResult};
use super::register::bind;

/// A shared handle to a domain object, as scripts see it.
#[derive(Debug)]
pub struct Handle<T>(Rc<RefCell<T>>);

impl<T> Clone for Handle<T> {
    fn clone(&self) -> Self {
        Handle(Rc::clone(&self.0))
    }
}

impl<T> Handle<T> {
    /// Wraps a value.
    pub fn new(value: T) -> Self {
        Handle(Rc::new(RefCell::new(value)))
    }

    /// Borrows the object for reading; `fn_name` names the binding in the error.
    pub fn borrow(&self, fn_name: &str) -> RhaiResult<Ref<'_, T>> {
        self.0.try_borrow().map_err(|_| busy(fn_name))
    }

    /// Borrows the object for writing; `fn_name` names the binding in the error.
    pub fn borrow_mut(&self, fn_name: &str) -> RhaiResult<RefMut<'_, T>> {
        self.0.try_borrow_mut().map_err(|_| busy(fn_name))
    }

    /// Whether two handles refer to the same object.
    pub fn same(&self, other: &Self) -> bool {
        Rc::ptr_eq(&self.0, &other.0)
    }
}

fn busy(fn_name: &str) -> Box<rhai::EvalAltResult> {
    fail(format!(
        "{fn_name}: the object is in use by the call that is running (a callback cannot use the \
         object whose method called it)"
    ))
}

/// Registers `Handle<T>` as the script type `name` with `to_string`/`to_debug` summaries.
///
/// `T: Display` gives the one-line summary. Call this before binding functions that take the
/// handle, so that signatures show `name`.
pub fn register_handle<T: Display + 'static>(engine: &mut Engine, name: &'static str) {
    engine.register_type_with_name::<Handle<T>>(name);
    let summary = move |h: &mut Handle<T>| -> String {
        match h.0.try_borrow() {
            Ok(v) => v.to_string(),
            Err(_) => format!("{name}(in use)"),
        }
    };
    let doc = format!(
        "One-line summary of a {name}: what `print`, `debug` and string interpolation show.\n\n\
         Example: `print(x); let s = x.to_string();` (x a {name})"
    );
    bind(engine, "to_string", ["x"], &doc, summary);
    bind(engine, "to_debug", ["x"], &doc, summary);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Counter(i64);
    impl Display for Counter {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "Counter({})", self.0)
        }
    }

    #[test]
    fn handles_share_print_and_never_panic_on_reentry() {
        let mut e = Engine::new();
        register_handle::<Counter>(&mut e, "Counter");
        bind(&mut e, "counter", [], "New counter.", || {
            Handle::new(Counter(0))
        });
        bind(
            &mut e,
            "bump",
            ["c"],
            "Adds one.",
            |c: &mut Handle<Counter>| -> RhaiResult<()> {
                c.borrow_mut("bump")?.0 += 1;
                Ok(())
            },
        );
        let s: String = e
            .eval("let a = counter(); let b = a; b.bump(); a.bump(); `${a}`")
            .unwrap();
        assert_eq!(s, "Counter(2)");
        let h = Handle::new(Counter(1));
        let _guard = h.borrow_mut("x").unwrap();
        let err = h.borrow("peek").unwrap_err().to_string();
        assert!(err.contains("peek: the object is in use"), "{err}");
    }
}
