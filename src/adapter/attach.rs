//! Attaching a fresh adapter to a model from `add_adapter` options.
//!
//! The options are validated, modules are selected with [`super::targets`], the size is checked
//! against memory before anything is allocated, then the method's
//! [`attach`](super::AdapterMethod::attach) builds its layers with PEFT's initialisation, drawn
//! from one ChaCha8 stream per purpose (`seed` for LoRA-style factors, `projection_seed` for
//! VeRA's shared matrices), in model order, so the same options always give the same adapter.

use super::state::AdapterState;
use super::{any_attached, targets, AdapterError, AdapterOptions, MethodKind};
use crate::backend::LmBackend;
use crate::model::linear::Linear;
use crate::model::llama::CausalLm;
use crate::quant::QuantWeight;
use burn::tensor::Tensor;

/// The frozen weight that gives `layer` the values `w` (a merge, PiSSA's residual): a dense
/// base stays dense (`w` as it is); a quantised base is quantised again with its own settings
/// (kind, block size, double quantisation), as PEFT merges into a bitsandbytes layer. It is
/// never silently densified; the values then carry one more rounding to the quantisation grid.
pub fn replacement_weight<B: LmBackend>(
    layer: &Linear<B>,
    w: Tensor<B, 2>,
) -> Result<QuantWeight<B>, AdapterError> {
    if layer.weight.as_dense().is_some() {
        return Ok(QuantWeight::dense(w));
    }
    let (_, data) = super::host_values(w)?;
    Ok(layer.weight.requantize(&data)?)
}

/// Bytes per trainable parameter: the f32 value, its gradient and AdamW's two moments.
const BYTES_PER_TRAINABLE: u64 = 16;

/// Refuses an adapter whose parameters (with gradients and optimizer moments) would not fit
/// in this machine's memory, before anything is allocated: a rank of 10⁹ must be an error,
/// not an aborted process.
fn check_budget<B: LmBackend>(
    lm: &CausalLm<B>,
    modules: &[String],
    opts: &AdapterOptions,
    method: MethodKind,
    r: usize,
) -> Result<(), AdapterError> {
    let r128 = r as u128;
    let mut total: u128 = 0;
    let (mut max_in, mut max_out) = (0u128, 0u128);
    for (_, l) in super::targets(lm, modules) {
        let (i, o) = (l.in_features as u128, l.out_features as u128);
        max_in = max_in.max(i);
        max_out = max_out.max(o);
        total = total.saturating_add(method.module_params(opts, r128, i, o));
    }
    total = total.saturating_add(method.shared_params(opts, r128, max_in, max_out));
    let what = format!(
        "the {} adapter{} on {} modules ({total} parameters; {BYTES_PER_TRAINABLE} bytes \
         each with gradient and AdamW moments)",
        method.name(),
        method.size_note(opts, r),
        modules.len()
    );
    crate::limits::check_alloc(&what, total, BYTES_PER_TRAINABLE)?;
    Ok(())
}

/// Trainable-parameter equivalents of `n` frozen f32 values (no gradient, no moments).
pub fn frozen_equivalent(n: u128) -> u128 {
    n / u128::from(BYTES_PER_TRAINABLE / 4)
}

/// Attaches a new adapter of a registered method; errors if one is attached already.
pub fn attach<B: LmBackend>(
    lm: &mut CausalLm<B>,
    opts: &AdapterOptions,
) -> Result<AdapterState, AdapterError> {
    let method = opts.validate()?;
    if any_attached(lm) {
        return Err(AdapterError::Unsupported(
            "an adapter is already attached; remove_adapter() first".into(),
        ));
    }
    let names: Vec<String> = lm.linears().into_iter().map(|(n, _)| n).collect();
    let modules = targets::select(&names, &opts.targets_or_default()?, opts.layers.as_deref())?;
    check_budget(lm, &modules, opts, method, opts.rank()?)?;
    let state = super::attach_all_or_nothing(lm, |lm| method.attach(opts, lm, &modules))?;
    Ok(AdapterState::new(opts.clone(), state, modules))
}
