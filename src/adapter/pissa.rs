//! PiSSA: principal singular values and singular vectors adaptation (Meng et al. 2024,
//! arXiv 2404.02948).
//!
//! A LoRA whose factors start at the principal part of W (PEFT `lora/layer.py` `pissa_init`):
//! with `W = U S Vᵀ`, `S_r = S[:r] / s`, `A = diag(√S_r) Vᵀ[:r]`, `B = U[:, :r] diag(√S_r)`,
//! and the frozen base becomes the residual `W − s·B A`, so the initial output equals the base
//! model's. `init: "pissa"` uses an exact SVD; `"pissa_niter_K"` (and matrices whose short side
//! exceeds [`EXACT_LIMIT`]) use the randomized SVD with K power iterations.
//!
//! A trained PiSSA adapter only makes sense on the residual base, so `save_adapter` writes
//! PEFT's conversion (`path_initial_model_for_weight_conversion`): `A' = [A; A₀]`,
//! `B' = [B, −B₀]`, rank `2r` and alpha `2·alpha` (`√2·alpha` with rsLoRA), a plain LoRA that
//! applies to the ORIGINAL weights.

use super::attach::replacement_weight;
use super::lora::{lora_config, lora_info, scaling, LoraLayer};
use super::method::AdapterMethod;
use super::peft_io::{PeftFiles, Strict, PREFIX};
use super::state::AdapterState;
use super::svd::{svd, svd_lowrank};
use super::{
    device_tensor, host_tensor, host_values, param, AdapterError, AdapterOptions, Dims,
    LoraFactors,
};
use crate::interrupt::Interrupted;
use crate::model::llama::CausalLm;
use crate::backend::LmBackend;
use crate::tensor::HostTensor;
use crate::value::Row;
use burn::tensor::{Tensor, TensorData};
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// Short-side size above which `init: "pissa"` switches to the randomized SVD.
pub const EXACT_LIMIT: usize = 1024;

/// The PiSSA factors and residual of one weight.
pub struct PissaInit {
    /// `[r, in]`.
    pub a: Vec<f32>,
    /// `[out, r]`.
    pub b: Vec<f32>,
    /// `W − s·B A`, `[out, in]`.
    pub residual: Vec<f32>,
}

/// Computes the PiSSA initialisation of `w: [out, in]`; stops with [`Interrupted`] on Ctrl-C.
pub fn pissa_init(
    w: &[f32],
    out: usize,
    inp: usize,
    r: usize,
    scaling: f64,
    niter: Option<usize>,
    seed: u64,
) -> Result<PissaInit, Interrupted> {
    let a64: Vec<f64> = w.iter().map(|&x| f64::from(x)).collect();
    let r = r.min(out.min(inp));
    let dec = match niter {
        None if out.min(inp) <= EXACT_LIMIT => svd(&a64, out, inp)?,
        None => svd_lowrank(&a64, out, inp, r, 4, seed)?,
        Some(k) => svd_lowrank(&a64, out, inp, r, k, seed)?,
    };
    let mut a = vec![0f32; r * inp];
    let mut b = vec![0f32; out * r];
    for j in 0..r {
        let sq = (dec.s[j] / scaling).sqrt();
        for c in 0..inp {
            a[j * inp + c] = (sq * dec.vt[j * inp + c]) as f32;
        }
        for o in 0..out {
            b[o * r + j] = (dec.u[o * dec.k + j] * sq) as f32;
        }
    }
    let mut residual = w.to_vec();
    for o in 0..out {
        for c in 0..inp {
            let mut ba = 0f64;
            for j in 0..r {
                ba += f64::from(b[o * r + j]) * f64::from(a[j * inp + c]);
            }
            residual[o * inp + c] = (f64::from(w[o * inp + c]) - scaling * ba) as f32;
        }
    }
    Ok(PissaInit { a, b, residual })
}

/// PEFT's conversion of a trained PiSSA adapter to a LoRA on the original weights:
/// `A' = [A; A₀]` (`[2r, in]`) and `B' = [B, −B₀]` (`[out, 2r]`).
pub fn convert_to_lora(
    a: &[f32],
    b: &[f32],
    a0: &[f32],
    b0: &[f32],
    r: usize,
    out: usize,
) -> (Vec<f32>, Vec<f32>) {
    let mut a2 = a.to_vec();
    a2.extend_from_slice(a0);
    let mut b2 = Vec::with_capacity(out * 2 * r);
    for o in 0..out {
        b2.extend_from_slice(&b[o * r..(o + 1) * r]);
        b2.extend(b0[o * r..(o + 1) * r].iter().map(|x| -x));
    }
    (a2, b2)
}

/// PiSSA's initial factors of one module (needed to convert the trained adapter on save).
#[derive(Debug, Clone)]
pub struct PissaFactors {
    /// `A₀`, `[r, in]`.
    pub a0: Vec<f32>,
    /// `B₀`, `[out, r]`.
    pub b0: Vec<f32>,
}

/// The PiSSA method; keeps each module's initial factors and the LoRA scale.
pub struct Pissa {
    /// Initial factors per module.
    pub initial: BTreeMap<String, PissaFactors>,
    /// The LoRA scale `s`.
    pub scaling: f64,
}

impl Pissa {
    /// Each module's trained factors converted to a LoRA of the original weights:
    /// `(module, A' [2r, in], B' [out, 2r])`.
    fn converted<B: LmBackend>(
        &self,
        lm: &CausalLm<B>,
    ) -> Result<Vec<(String, HostTensor, HostTensor)>, AdapterError> {
        let mut out = Vec::new();
        for (name, layer) in lm.linears() {
            let Some(ad) = &layer.adapter else { continue };
            let missing = || {
                AdapterError::Unsupported(format!("pissa: initial factors of {name} are missing"))
            };
            let init = self.initial.get(&name).ok_or_else(missing)?;
            let (Some(a), Some(b)) = (
                param(ad.as_ref(), "lora_A.weight"),
                param(ad.as_ref(), "lora_B.weight"),
            ) else {
                return Err(missing());
            };
            let (shape, a) = host_values(a.get())?;
            let (_, b) = host_values(b.get())?;
            let (r, in_f, out_f) = (shape[0], layer.in_features, layer.out_features);
            let (a2, b2) = convert_to_lora(&a, &b, &init.a0, &init.b0, r, out_f);
            out.push((
                name,
                host_tensor(vec![2 * r, in_f], a2)?,
                host_tensor(vec![out_f, 2 * r], b2)?,
            ));
        }
        Ok(out)
    }
}

impl AdapterMethod for Pissa {
    const NAME: &'static str = "pissa";

    fn module_params(_o: &AdapterOptions, r: u128, in_f: u128, out_f: u128) -> u128 {
        r.saturating_mul(in_f + out_f)
    }

    fn attach<B: LmBackend>(
        o: &AdapterOptions,
        lm: &mut CausalLm<B>,
        modules: &[String],
    ) -> Result<Self, AdapterError> {
        let r = o.rank()?;
        let s = scaling(o.alpha_value()?, r, o.rslora);
        let niter = o
            .init
            .strip_prefix("pissa_niter_")
            .and_then(|k| k.parse().ok());
        let device = lm.device.clone();
        let mut initial = BTreeMap::new();
        // Every module's SVD runs before any layer changes: Ctrl-C (or a failure) in a later
        // module leaves the model as it was.
        let mut built = BTreeMap::new();
        for (name, layer) in super::targets(lm, modules) {
            let (in_f, out_f) = (layer.in_features, layer.out_features);
            let dense = layer.dense_weight();
            let dtype = dense.dtype();
            let (_, w) = host_values(dense)?;
            let p = pissa_init(&w, out_f, in_f, r, s, niter, o.seed)?;
            let res = Tensor::<B, 2>::from_data(
                TensorData::new(p.residual, [out_f, in_f]),
                (&device, dtype),
            );
            initial.insert(
                name.clone(),
                PissaFactors {
                    a0: p.a.clone(),
                    b0: p.b.clone(),
                },
            );
            let l = LoraLayer::from_host(p.a, p.b, Dims { r, in_f, out_f }, s, o.dropout, &device);
            built.insert(name, (replacement_weight(layer, res)?, l));
        }
        for (name, layer) in lm.linears_mut() {
            if let Some((res, l)) = built.remove(&name) {
                layer.weight = res;
                layer.adapter = Some(Box::new(l));
            }
        }
        Ok(Pissa {
            initial,
            scaling: s,
        })
    }

    /// Never: a saved PiSSA adapter is a plain LoRA (`peft_type: "LORA"`).
    fn reads(_peft_type: &str, _cfg: &Strict<'_>) -> Result<bool, AdapterError> {
        Ok(false)
    }

    fn load<B: LmBackend>(
        _files: &PeftFiles<'_>,
        _o: &mut AdapterOptions,
        _lm: &mut CausalLm<B>,
    ) -> Result<Self, AdapterError> {
        Err(AdapterError::Unsupported(
            "pissa: a saved PiSSA adapter is a LoRA of the original weights; it loads as lora"
                .into(),
        ))
    }

    /// The converted rank-2r LoRA: alpha `2·alpha` (`√2·alpha` with rsLoRA) keeps the scale.
    fn peft_config(&self, st: &AdapterState, _steps: usize) -> Result<Map<String, Value>, AdapterError> {
        let o = &st.options;
        let alpha = o.alpha_value()?;
        let alpha2 = if o.rslora {
            alpha * 2f64.sqrt()
        } else {
            2.0 * alpha
        };
        Ok(lora_config(o, 2 * o.rank()?, alpha2, false))
    }

    fn save_tensors<B: LmBackend>(
        &self,
        lm: &CausalLm<B>,
        out: &mut BTreeMap<String, HostTensor>,
    ) -> Result<(), AdapterError> {
        for (name, a, b) in self.converted(lm)? {
            out.insert(format!("{PREFIX}{name}.lora_A.weight"), a);
            out.insert(format!("{PREFIX}{name}.lora_B.weight"), b);
        }
        Ok(())
    }

    fn info(&self, o: &AdapterOptions, row: &mut Row) -> Result<(), AdapterError> {
        lora_info(o, row)
    }

    fn export<B: LmBackend>(
        &self,
        lm: &CausalLm<B>,
    ) -> Result<Vec<(String, LoraFactors)>, AdapterError> {
        Ok(self
            .converted(lm)?
            .into_iter()
            .map(|(name, a, b)| {
                let scale = self.scaling;
                (name, LoraFactors { a, b, scale })
            })
            .collect())
    }

    /// Takes the layers off and gives each module its original weight back
    /// (`residual + s·B₀A₀`; re-quantised on a quantised base). Every weight is computed before
    /// any layer changes.
    fn detach<B: LmBackend>(&self, lm: &mut CausalLm<B>) -> Result<(), AdapterError> {
        let device = lm.device.clone();
        let mut restored = BTreeMap::new();
        for (name, layer) in lm.linears() {
            if let (true, Some(p)) = (layer.adapter.is_some(), self.initial.get(&name)) {
                let (in_f, out_f) = (layer.in_features, layer.out_features);
                let r = p.a0.len() / in_f;
                let a0 = device_tensor::<B>(p.a0.clone(), [r, in_f], &device);
                let b0 = device_tensor::<B>(p.b0.clone(), [out_f, r], &device);
                let w = layer.dense_weight() + b0.matmul(a0).mul_scalar(self.scaling);
                restored.insert(name, replacement_weight(layer, w)?);
            }
        }
        for (name, layer) in lm.linears_mut() {
            layer.adapter = None;
            if let Some(w) = restored.remove(&name) {
                layer.weight = w;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn principal_plus_residual_is_w_and_conversion_cancels_at_init() {
        let mut rng = crate::rng::seeded(4);
        let (out, inp, r, s) = (6, 5, 2, 0.5);
        let w = super::super::init::normal(out * inp, 1.0, &mut rng);
        let p = pissa_init(&w, out, inp, r, s, None, 0).unwrap();
        for o in 0..out {
            for c in 0..inp {
                let ba: f64 = (0..r)
                    .map(|j| f64::from(p.b[o * r + j]) * f64::from(p.a[j * inp + c]))
                    .sum();
                let back = f64::from(p.residual[o * inp + c]) + s * ba;
                // The residual and the factors are stored in f32: a few f32 roundings of
                // quantities of magnitude |w| + s·Σ|b a|.
                let mag: f64 = f64::from(w[o * inp + c]).abs()
                    + s * (0..r)
                        .map(|j| f64::from(p.b[o * r + j] * p.a[j * inp + c]).abs())
                        .sum::<f64>();
                let tol = 8.0 * f64::from(f32::EPSILON) * mag;
                assert!((back - f64::from(w[o * inp + c])).abs() <= tol);
            }
        }
        // Converted at initialisation (A = A₀, B = B₀) the update B'A' is exactly zero.
        let (a2, b2) = convert_to_lora(&p.a, &p.b, &p.a, &p.b, r, out);
        for o in 0..out {
            for c in 0..inp {
                let terms: Vec<f32> = (0..2 * r)
                    .map(|j| b2[o * 2 * r + j] * a2[j * inp + c])
                    .collect();
                let d: f32 = terms.iter().sum();
                // The terms cancel pairwise, but the f32 partial sums round: at most 2r − 1
                // roundings of partial sums bounded by Σ|terms|.
                let mag: f32 = terms.iter().map(|t| t.abs()).sum();
                assert!(
                    d.abs() <= (2 * r) as f32 * f32::EPSILON * mag,
                    "{d} vs {mag}"
                );
            }
        }
    }
}
