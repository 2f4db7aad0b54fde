//! Equality and printing of nested arrays and maps with a depth limit.
//!
//! rhai 1.27's `==`, `!=`, `to_string`, `to_debug`, `print` and `debug` for arrays and maps
//! (`packages/array_basic.rs`, `map_basic.rs`, `string_basic.rs`) call the engine again for
//! every element, so each level of nesting costs several kilobytes of native stack: an array
//! nested a few thousand levels deep overflowed the stack and aborted the process. The
//! functions registered here take precedence over the packages' (the engine's global namespace
//! is searched first) and give the same results, but walk nested arrays and maps in Rust
//! with a depth counter and stop at [`crate::limits::max_depth`]:
//!
//! - `==` / `!=` return a script error at the call position;
//! - printing (also string interpolation, which ignores a printing function's error and would
//!   then fall back to a recursive `Display`) returns a placeholder and *defers* the error:
//!   [`defer_error`] stores it, and the engine's progress hook ends the script with it at the
//!   next operation (see [`take_deferred`]).
//!
//! Leaves (numbers, strings, handles) are still compared and printed by the engine's own
//! functions, so every type keeps its registered `==` and `to_debug`.

use std::cell::RefCell;

use rhai::{Array, Dynamic, Engine, EvalAltResult, Map, NativeCallContext, Position};

use super::error::{fail, RhaiResult};
use crate::limits;

thread_local! {
    /// The error waiting to be raised on this thread (scripts run on the thread that evaluates
    /// them, so hosts on other threads never see it).
    static DEFERRED: RefCell<Option<(String, Position)>> = const { RefCell::new(None) };
}

/// Stores an error, raised at `pos`, to be thrown at the script's next operation (the first
/// one wins).
pub fn defer_error(msg: String, pos: Position) {
    DEFERRED.with(|d| {
        let mut d = d.borrow_mut();
        if d.is_none() {
            *d = Some((msg, pos));
        }
    });
}

/// The waiting error's message, left in place (the progress hook ends the script with it; the
/// host then calls [`take_deferred`] to put it at its own position).
pub fn peek_deferred() -> Option<String> {
    DEFERRED.with(|d| d.borrow().as_ref().map(|(m, _)| m.clone()))
}

/// Takes the waiting error and where it was raised, if any.
pub fn take_deferred() -> Option<(String, Position)> {
    DEFERRED.with(|d| d.borrow_mut().take())
}

/// The names this module registers for arrays and maps (left out of `peftlab doc`: they are
/// the language's own operators).
pub const OVERRIDDEN: &[&str] = &["==", "!=", "to_string", "to_debug", "print", "debug"];

/// Registers the depth-limited operators and printers on `engine`.
pub fn register(engine: &mut Engine) {
    engine.register_fn(
        "==",
        |ctx: NativeCallContext, a: &mut Array, mut b: Array| -> RhaiResult<bool> {
            eq_arrays(&ctx, a, &mut b, 1)
        },
    );
    engine.register_fn(
        "!=",
        |ctx: NativeCallContext, a: &mut Array, mut b: Array| -> RhaiResult<bool> {
            eq_arrays(&ctx, a, &mut b, 1).map(|e| !e)
        },
    );
    engine.register_fn(
        "==",
        |ctx: NativeCallContext, a: &mut Map, mut b: Map| -> RhaiResult<bool> {
            eq_maps(&ctx, a, &mut b, 1)
        },
    );
    engine.register_fn(
        "!=",
        |ctx: NativeCallContext, a: &mut Map, mut b: Map| -> RhaiResult<bool> {
            eq_maps(&ctx, a, &mut b, 1).map(|e| !e)
        },
    );
    for name in ["to_string", "to_debug", "print", "debug"] {
        engine.register_fn(name, |ctx: NativeCallContext, a: &mut Array| {
            printed(&ctx, |out| fmt_array(&ctx, a, 1, out))
        });
        engine.register_fn(name, |ctx: NativeCallContext, m: &mut Map| {
            printed(&ctx, |out| fmt_map(&ctx, m, 1, out))
        });
    }
}

fn too_deep(what: &str, depth: usize) -> Option<String> {
    limits::check_depth(what, depth)
        .err()
        .map(|e| e.to_string())
}

fn eq_dyn(
    ctx: &NativeCallContext,
    a: &mut Dynamic,
    b: &mut Dynamic,
    depth: usize,
) -> RhaiResult<Option<bool>> {
    if a.is_array() && b.is_array() {
        let (Some(mut x), Some(mut y)) = (a.write_lock::<Array>(), b.write_lock::<Array>()) else {
            return Ok(None);
        };
        return eq_arrays(ctx, &mut x, &mut y, depth).map(Some);
    }
    if a.is_map() && b.is_map() {
        let (Some(mut x), Some(mut y)) = (a.write_lock::<Map>(), b.write_lock::<Map>()) else {
            return Ok(None);
        };
        return eq_maps(ctx, &mut x, &mut y, depth).map(Some);
    }
    Ok(None)
}

/// rhai's array `==`: same length and every pair `==`; a pair of different types without an
/// `==` counts as unequal, a pair of the same type without one is an error.
fn eq_arrays(
    ctx: &NativeCallContext,
    a: &mut Array,
    b: &mut Array,
    depth: usize,
) -> RhaiResult<bool> {
    if let Some(msg) = too_deep("==: the array", depth) {
        return Err(fail(msg));
    }
    if a.len() != b.len() {
        return Ok(false);
    }
    for (x, y) in a.iter_mut().zip(b.iter_mut()) {
        let eq = match eq_dyn(ctx, x, y, depth + 1)? {
            Some(e) => e,
            None => match ctx.call_native_fn_raw("==", true, &mut [&mut *x, &mut *y]) {
                Ok(r) => r.as_bool().unwrap_or(false),
                Err(err) => match *err {
                    EvalAltResult::ErrorFunctionNotFound(ref sig, ..)
                        if sig.starts_with("==") && x.type_id() != y.type_id() =>
                    {
                        false
                    }
                    _ => return Err(err),
                },
            },
        };
        if !eq {
            return Ok(false);
        }
    }
    Ok(true)
}

/// rhai's map `==`: the same keys and every value pair `==`.
fn eq_maps(ctx: &NativeCallContext, a: &mut Map, b: &mut Map, depth: usize) -> RhaiResult<bool> {
    if let Some(msg) = too_deep("==: the map", depth) {
        return Err(fail(msg));
    }
    if a.len() != b.len() {
        return Ok(false);
    }
    for (k, x) in a.iter_mut() {
        let Some(y) = b.get_mut(k) else {
            return Ok(false);
        };
        let eq = match eq_dyn(ctx, x, y, depth + 1)? {
            Some(e) => e,
            None => ctx
                .call_native_fn_raw("==", true, &mut [&mut *x, &mut *y])?
                .as_bool()
                .unwrap_or(false),
        };
        if !eq {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Runs a formatter; a value nested too deeply prints as far as the limit and defers the error.
fn printed(
    ctx: &NativeCallContext,
    f: impl FnOnce(&mut String) -> Result<(), String>,
) -> rhai::ImmutableString {
    let mut out = String::new();
    if let Err(msg) = f(&mut out) {
        defer_error(msg, ctx.call_position());
        out.push_str(" …");
    }
    out.into()
}

fn fmt_elem(
    ctx: &NativeCallContext,
    x: &mut Dynamic,
    depth: usize,
    out: &mut String,
) -> Result<(), String> {
    if x.is_array() {
        if let Some(mut a) = x.write_lock::<Array>() {
            return fmt_array(ctx, &mut a, depth, out);
        }
    }
    if x.is_map() {
        if let Some(mut m) = x.write_lock::<Map>() {
            return fmt_map(ctx, &mut m, depth, out);
        }
    }
    match ctx.call_native_fn_raw("to_debug", true, &mut [&mut *x]) {
        Ok(s) if s.is_string() => out.push_str(&s.to_string()),
        Ok(s) => out.push_str(ctx.engine().map_type_name(s.type_name())),
        Err(_) => out.push_str(&format!("{x:?}")),
    }
    Ok(())
}

fn fmt_array(
    ctx: &NativeCallContext,
    a: &mut Array,
    depth: usize,
    out: &mut String,
) -> Result<(), String> {
    if let Some(msg) = too_deep("printing: the array", depth) {
        return Err(msg);
    }
    out.push('[');
    for (i, x) in a.iter_mut().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        fmt_elem(ctx, x, depth + 1, out)?;
    }
    out.push(']');
    Ok(())
}

fn fmt_map(
    ctx: &NativeCallContext,
    m: &mut Map,
    depth: usize,
    out: &mut String,
) -> Result<(), String> {
    if let Some(msg) = too_deep("printing: the map", depth) {
        return Err(msg);
    }
    out.push_str("#{");
    for (i, (k, x)) in m.iter_mut().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        out.push_str(&format!("{:?}: ", k.as_str()));
        fmt_elem(ctx, x, depth + 1, out)?;
    }
    out.push('}');
    Ok(())
}

/// Puts a deferred error where it was raised: the innermost `ErrorTerminated` carrying its
/// message becomes a runtime error at the stored position. Returns whether it was found.
pub fn place_deferred(err: &mut EvalAltResult, msg: &str, pos: Position) -> bool {
    match err {
        EvalAltResult::ErrorInFunctionCall(_, _, inner, _)
        | EvalAltResult::ErrorInModule(_, inner, _) => place_deferred(inner, msg, pos),
        EvalAltResult::ErrorTerminated(tok, _)
            if tok.clone().into_string().ok().as_deref() == Some(msg) =>
        {
            *err = EvalAltResult::ErrorRuntime(msg.into(), pos);
            true
        }
        _ => false,
    }
}
