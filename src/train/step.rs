//! Loss and gradients on an autodiff backend.
//!
//! The loss is transformers' `ForCausalLMLoss`: labels shifted left by one, `-100` ignored, mean
//! cross-entropy over the remaining tokens, in f32. Only hidden rows with a target go through
//! the output head. The adapter method's extra loss (AdaLoRA's orthogonality regulariser) is
//! added when a method is given. Gradients are read
//! for the trainable adapter tensors only; base weights are never tracked.

use super::batch::TrainBatch;
use crate::adapter::{AdapterCtx, AnyMethod, Param, RowMask};
use crate::backend::LmBackend;
use crate::model::llama::CausalLm;
use crate::model::ModelError;
use burn::tensor::backend::AutodiffBackend;
use burn::tensor::{ElementConversion, Int, Tensor, TensorData};

/// Trainable adapter tensors in model order: those of each layer's working slot, named
/// `<module>.<param key>`, then those of its other trained adapters (see
/// [`crate::model::linear::Parked`]), named `<adapter>/<module>.<param key>`.
pub fn trainable<B: LmBackend>(lm: &mut CausalLm<B>) -> Vec<(String, &mut Param<B>)> {
    let mut out = Vec::new();
    for (name, layer) in lm.linears_mut() {
        if layer.adapter_trains {
            if let Some(a) = layer.adapter.as_mut() {
                for p in a.params_mut() {
                    if p.trainable {
                        out.push((format!("{name}.{}", p.key), p));
                    }
                }
            }
        }
        for parked in layer.parked.iter_mut().filter(|p| p.trains) {
            for p in parked.adapter.params_mut() {
                if p.trainable {
                    out.push((format!("{}/{name}.{}", parked.name, p.key), p));
                }
            }
        }
    }
    out
}

/// Mean next-token cross-entropy of a batch (a scalar tensor).
pub fn loss_tensor<B: LmBackend>(
    lm: &CausalLm<B>,
    tb: &TrainBatch,
    ctx: &AdapterCtx<B>,
) -> Result<Tensor<B, 1>, ModelError> {
    let t = tb.batch.seq();
    let mut rows = Vec::new();
    let mut targets = Vec::new();
    for (b, labels) in tb.labels.iter().enumerate() {
        for pos in 0..t.saturating_sub(1) {
            let l = labels[pos + 1];
            if l != -100 {
                if l < 0 || l as usize >= lm.config.vocab_size {
                    return Err(ModelError::Input(format!(
                        "label {l} at row {b}, position {} is outside the vocabulary (size {}) and is not -100",
                        pos + 1,
                        lm.config.vocab_size
                    )));
                }
                rows.push((b * t + pos) as i64);
                targets.push(l);
            }
        }
    }
    if rows.is_empty() {
        return Err(ModelError::Input(
            "no label other than -100: nothing to learn from".into(),
        ));
    }
    let n = rows.len();
    let f = lm.forward(&tb.batch, None, false, ctx)?;
    let idx = Tensor::<B, 1, Int>::from_data(TensorData::new(rows, [n]), &lm.device);
    let tgt = Tensor::<B, 2, Int>::from_data(TensorData::new(targets, [n, 1]), &lm.device);
    Ok(B::cross_entropy(lm.head(f.hidden.select(0, idx), ctx), tgt))
}

/// FLix routing masks `[N, 1]` from the examples' (already dropped-out) features.
pub fn routing<B: LmBackend>(
    tb: &TrainBatch,
    keys: &[(String, String)],
    device: &B::Device,
) -> Vec<(String, RowMask<B>)> {
    let n: usize = tb.example_of.iter().map(Vec::len).sum();
    keys.iter()
        .map(|(f, v)| {
            let m: Vec<f32> = tb
                .example_of
                .iter()
                .flatten()
                .map(|&e| {
                    let on = tb.features.get(e).and_then(|fs| fs.get(f)) == Some(v);
                    if on {
                        1.0
                    } else {
                        0.0
                    }
                })
                .collect();
            (
                format!("{f}={v}"),
                RowMask::Rows(Tensor::from_data(TensorData::new(m, [n, 1]), device)),
            )
        })
        .collect()
}

/// The gradient of each trainable tensor, in [`trainable`] order (`None`: it got none).
pub type Grads<B> = Vec<Option<Tensor<B, 2>>>;

/// Loss, gradient of each trainable tensor (`None` when it got none) and the plain loss value.
pub fn loss_and_grads<B: AutodiffBackend + LmBackend>(
    lm: &mut CausalLm<B>,
    tb: &TrainBatch,
    ctx: &AdapterCtx<B>,
    method: Option<&AnyMethod>,
) -> Result<(f64, Grads<B>), ModelError> {
    for (_, p) in trainable(lm) {
        p.value = p.value.clone().detach().require_grad();
    }
    let mut loss = loss_tensor(lm, tb, ctx)?;
    if let Some(extra) = method.and_then(|m| m.extra_loss(lm)) {
        loss = loss + extra;
    }
    let value: f32 = loss.clone().into_scalar().elem();
    let grads = loss.backward();
    let mut out = Vec::new();
    for (_, p) in trainable(lm) {
        out.push(p.value.grad(&grads).map(Tensor::from_inner));
        p.value = p.value.clone().detach();
    }
    Ok((f64::from(value), out))
}
