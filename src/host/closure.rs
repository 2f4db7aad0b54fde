//! Calling a script closure from a binding (`filter`, `map`, `run_cells`...).
//!
//! rhai reports a closure called with the wrong number of arguments as
//! `Function not found: anon$<hash> (map)`, naming an internal function the script never wrote.
//! [`call_closure`] turns that into "the closure passed to `filter` takes 2 parameters but is
//! called with 1", counting the closure's parameters from the script's own functions
//! (`Module::get_script_fn`), less the variables it captured (rhai curries those in front).

use rhai::{Dynamic, EvalAltResult, FnPtr, NativeCallContext};

use super::error::{fail, RhaiResult};

/// The largest parameter count looked for when explaining an arity mismatch.
const MAX_PARAMS: usize = 64;

/// Calls `f` (passed to the binding `fn_name`) with `args`; a call with the wrong number of
/// arguments is reported with both counts instead of rhai's `Function not found: anon$…`.
pub fn call_closure(
    ctx: &NativeCallContext,
    fn_name: &str,
    f: &FnPtr,
    args: Vec<Dynamic>,
) -> RhaiResult<Dynamic> {
    let n = args.len();
    f.call_within_context(ctx, args)
        .map_err(|e| explain_arity(ctx, fn_name, f, n, e))
}

/// The number of parameters the script closure or function `f` takes (less the variables it
/// captured), or `None` when it is not a script function (a native function pointer).
pub fn closure_params(ctx: &NativeCallContext, f: &FnPtr) -> Option<usize> {
    let name = f.fn_name();
    let params = (0..=MAX_PARAMS).find(|&k| {
        ctx.iter_namespaces()
            .any(|m| m.get_script_fn(name, k).is_some())
    })?;
    Some(params.saturating_sub(f.curry().len()))
}

fn explain_arity(
    ctx: &NativeCallContext,
    fn_name: &str,
    f: &FnPtr,
    called_with: usize,
    e: Box<EvalAltResult>,
) -> Box<EvalAltResult> {
    let EvalAltResult::ErrorFunctionNotFound(sig, _) = &*e else {
        return e;
    };
    let name = f.fn_name();
    // Only the call of `f` itself, not a missing function called inside its body.
    if sig != name && !sig.starts_with(&format!("{name} (")) {
        return e;
    }
    let Some(params) = closure_params(ctx, f) else {
        return e;
    };
    let what = if f.is_anonymous() {
        format!("the closure passed to {fn_name}")
    } else {
        format!("the function '{name}' passed to {fn_name}")
    };
    let plural = |k: usize| if k == 1 { "" } else { "s" };
    fail(format!(
        "{what} takes {params} parameter{} but is called with {called_with} argument{}",
        plural(params),
        plural(called_with)
    ))
}
