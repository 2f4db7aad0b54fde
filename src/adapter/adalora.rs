//! AdaLoRA: adaptive budget allocation (Zhang et al. 2023, arXiv 2303.10512).
//!
//! Each layer holds an SVD-shaped update `Δ = B diag(E) A` with `A: [r, in]`, `E: [r, 1]`,
//! `B: [out, r]` (saved as bare `lora_A`, `lora_E`, `lora_B`), applied as
//! `y = W x + b + dropout(x) (A ⊙ E)ᵀ Bᵀ · alpha / (ranknum + 1e-5)` where `ranknum` is the
//! initial rank (PEFT `adalora/layer.py`: it stays `init_r` even after pruning). `A`, `B` start
//! at `N(0, 0.02²)` and `E` at 0.
//!
//! The [`RankAllocator`] follows PEFT's `RankAllocator` exactly: after each optimizer step
//! (1-based `step`), while `step < total − tfinal`, the sensitivity `|p · ∇p|` of every entry is
//! smoothed (`β₁`) and its uncertainty tracked (`β₂`); the budget falls cubically from
//! `init_r · n` to `target_r · n` between `tinit` and `total − tfinal`; every `delta_t` steps the
//! triplets with the lowest scores (`mean` importance of A's row + B's column + E's entry) are
//! pruned by zeroing `E`. At `step = total − tfinal` the final mask is fixed and re-applied after
//! every later step. The orthogonality regulariser `orth_reg · mean(‖AAᵀ − I‖_F, ‖BᵀB − I‖_F)`
//! is added to the training loss.

use super::lora::factors;
use super::{dropout, AdapterCtx, AdapterError, Dims, LinearAdapter, LoraFactors, Param};
use crate::model::linear::Linear;
use crate::quant::QuantBackend;
use burn::tensor::{Tensor, TensorData};
use std::collections::BTreeMap;

/// AdaLoRA on one linear layer.
pub struct AdaLoraLayer<B: QuantBackend> {
    /// `lora_A`, `[r, in]`.
    pub a: Param<B>,
    /// `lora_E`, `[r, 1]`.
    pub e: Param<B>,
    /// `lora_B`, `[out, r]`.
    pub b: Param<B>,
    /// `lora_alpha` (PEFT's AdaLoRA scaling is alpha itself).
    pub alpha: f64,
    /// `init_r`.
    pub ranknum: f64,
    /// Input dropout.
    pub dropout: f64,
    /// Which of the r triplets are kept.
    pub mask: Vec<bool>,
}

impl<B: QuantBackend> AdaLoraLayer<B> {
    /// Builds the layer from host values.
    pub fn from_host(
        [a, e, b]: [Vec<f32>; 3],
        Dims { r, in_f, out_f }: Dims,
        alpha: f64,
        ranknum: f64,
        dropout: f64,
        device: &B::Device,
    ) -> Self {
        AdaLoraLayer {
            a: Param::new("lora_A", a, [r, in_f], vec![r, in_f], device),
            e: Param::new("lora_E", e, [r, 1], vec![r, 1], device),
            b: Param::new("lora_B", b, [out_f, r], vec![out_f, r], device),
            alpha,
            ranknum,
            dropout,
            mask: vec![true; r],
        }
    }

    fn scale(&self) -> f64 {
        self.alpha / (self.ranknum + 1e-5)
    }

    /// Zeroes `E` where the mask is false.
    pub fn apply_mask(&mut self) {
        if self.mask.iter().all(|&k| k) {
            return;
        }
        let r = self.mask.len();
        let m: Vec<f32> = self
            .mask
            .iter()
            .map(|&k| if k { 1.0 } else { 0.0 })
            .collect();
        let device = self.e.value.device();
        let mt = Tensor::<B, 2>::from_data(TensorData::new(m, [r, 1]), &device);
        self.e.value = (self.e.value.clone() * mt).detach();
    }
}

impl<B: QuantBackend> LinearAdapter<B> for AdaLoraLayer<B> {
    fn method(&self) -> &'static str {
        "adalora"
    }

    fn forward(&self, layer: &Linear<B>, x: Tensor<B, 2>, ctx: &AdapterCtx<B>) -> Tensor<B, 2> {
        let base = layer.base_forward(x.clone());
        let xd = dropout(x, self.dropout, ctx);
        let ae = self.a.get() * self.e.get();
        base + xd
            .matmul(ae.transpose())
            .matmul(self.b.get().transpose())
            .mul_scalar(self.scale())
    }

    fn params(&self) -> Vec<&Param<B>> {
        vec![&self.a, &self.e, &self.b]
    }

    fn params_mut(&mut self) -> Vec<&mut Param<B>> {
        vec![&mut self.a, &mut self.e, &mut self.b]
    }

    fn merged(
        &self,
        layer: &Linear<B>,
    ) -> Result<(Tensor<B, 2>, Option<Tensor<B, 1>>), AdapterError> {
        let d = self
            .b
            .get()
            .matmul(self.a.get() * self.e.get())
            .mul_scalar(self.scale());
        Ok((layer.dense_weight() + d, layer.bias.clone()))
    }

    fn lora_factors(&self, _layer: &Linear<B>) -> Result<LoraFactors, AdapterError> {
        factors(self.a.get() * self.e.get(), self.b.get(), self.scale())
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }

    fn as_any_mut(&mut self) -> &mut dyn std::any::Any {
        self
    }
}

/// The orthogonality regulariser over all AdaLoRA layers (mean Frobenius norm of `AAᵀ − I` and
/// `BᵀB − I`), to be multiplied by `orth_reg` and added to the loss.
pub fn orth_regulariser<B: QuantBackend>(layers: &[&AdaLoraLayer<B>]) -> Option<Tensor<B, 1>> {
    let mut terms = Vec::new();
    for l in layers {
        for (p, is_a) in [(&l.a, true), (&l.b, false)] {
            let v = p.get();
            let cov = if is_a {
                v.clone().matmul(v.transpose())
            } else {
                v.clone().transpose().matmul(v)
            };
            let n = cov.dims()[0];
            let eye = Tensor::<B, 2>::eye(n, &cov.device());
            terms.push((cov - eye).square().sum().sqrt());
        }
    }
    if terms.is_empty() {
        return None;
    }
    let n = terms.len() as f64;
    Some(Tensor::cat(terms, 0).sum().div_scalar(n))
}

/// Smoothed sensitivities of one parameter.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct Ipt {
    /// `exp_avg_ipt`.
    pub avg: Vec<f32>,
    /// `exp_avg_unc`.
    pub unc: Vec<f32>,
}

/// PEFT's `RankAllocator` state.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct RankAllocator {
    /// `init_r · #modules`.
    pub init_bgt: usize,
    /// `target_r · #modules`.
    pub target_bgt: usize,
    /// Warm-up steps.
    pub tinit: usize,
    /// Final fixed steps.
    pub tfinal: usize,
    /// Steps between allocations.
    pub delta_t: usize,
    /// Total steps.
    pub total_step: usize,
    /// Sensitivity smoothing.
    pub beta1: f64,
    /// Uncertainty smoothing.
    pub beta2: f64,
    /// Per `module.lora_X` state.
    pub ipt: BTreeMap<String, Ipt>,
    /// The current rank pattern (`module.lora_E` → kept triplets), once a mask was computed.
    pub rank_pattern: Option<BTreeMap<String, Vec<bool>>>,
    /// The budget after the last step.
    pub budget: usize,
}

/// One layer's host view for the allocator: name, `(A, E, B)` values and gradients.
pub struct LayerStats {
    /// Module path.
    pub module: String,
    /// Rank.
    pub r: usize,
    /// `[A, E, B]` values (row-major).
    pub values: [Vec<f32>; 3],
    /// `[A, E, B]` gradients.
    pub grads: [Vec<f32>; 3],
    /// Input features (columns of A).
    pub in_f: usize,
    /// Output features (rows of B).
    pub out_f: usize,
}

impl RankAllocator {
    /// The allocator of PEFT for `n_modules` modules.
    pub fn new(opts: &super::AdapterOptions, n_modules: usize) -> Self {
        RankAllocator {
            init_bgt: opts.init_r * n_modules,
            target_bgt: opts.target_r * n_modules,
            tinit: opts.tinit,
            tfinal: opts.tfinal,
            delta_t: opts.delta_t.max(1),
            total_step: opts.total_steps.unwrap_or(1),
            beta1: opts.beta1,
            beta2: opts.beta2,
            ipt: BTreeMap::new(),
            rank_pattern: None,
            budget: opts.init_r * n_modules,
        }
    }

    /// `budget_schedule(step)` → (budget, whether to mask now).
    pub fn budget_schedule(&self, step: usize) -> (usize, bool) {
        let (tinit, tfinal, total) = (self.tinit, self.tfinal, self.total_step);
        if step <= tinit {
            (self.init_bgt, false)
        } else if step > total - tfinal {
            (self.target_bgt, true)
        } else {
            let mul = 1.0 - (step - tinit) as f64 / (total - tfinal - tinit) as f64;
            let b = ((self.init_bgt - self.target_bgt) as f64 * mul.powi(3)
                + self.target_bgt as f64) as usize;
            (b, step.is_multiple_of(self.delta_t))
        }
    }

    fn update_ipt(&mut self, layers: &[LayerStats]) {
        for l in layers {
            for (k, name) in ["lora_A", "lora_E", "lora_B"].iter().enumerate() {
                let key = format!("{}.{name}", l.module);
                let entry = self.ipt.entry(key).or_insert_with(|| Ipt {
                    avg: vec![0.0; l.values[k].len()],
                    unc: vec![0.0; l.values[k].len()],
                });
                let (b1, b2) = (self.beta1 as f32, self.beta2 as f32);
                for i in 0..l.values[k].len() {
                    let ipt = (l.values[k][i] * l.grads[k][i]).abs();
                    entry.avg[i] = b1 * entry.avg[i] + (1.0 - b1) * ipt;
                    entry.unc[i] = b2 * entry.unc[i] + (1.0 - b2) * (ipt - entry.avg[i]).abs();
                }
            }
        }
    }

    fn mask_to_budget(&self, layers: &[LayerStats], budget: usize) -> BTreeMap<String, Vec<bool>> {
        let score = |module: &str, name: &str, i: usize| -> f32 {
            self.ipt
                .get(&format!("{module}.{name}"))
                .map_or(0.0, |s| s.avg[i] * s.unc[i])
        };
        let mut triplets: Vec<(String, Vec<f32>)> = Vec::new();
        for l in layers {
            let mut s = vec![0f32; l.r];
            for (j, sj) in s.iter_mut().enumerate() {
                // A row mean, B column mean, E entry (PEFT _combine_ipt).
                let a: f32 = (0..l.in_f)
                    .map(|c| score(&l.module, "lora_A", j * l.in_f + c))
                    .sum::<f32>()
                    / l.in_f as f32;
                let b: f32 = (0..l.out_f)
                    .map(|o| score(&l.module, "lora_B", o * l.r + j))
                    .sum::<f32>()
                    / l.out_f as f32;
                *sj = score(&l.module, "lora_E", j) + (a + b);
            }
            triplets.push((l.module.clone(), s));
        }
        let mut all: Vec<f32> = triplets.iter().flat_map(|t| t.1.iter().copied()).collect();
        all.sort_by(f32::total_cmp);
        let k = self.init_bgt.saturating_sub(budget);
        let threshold = if k == 0 {
            f32::NEG_INFINITY
        } else {
            all[(k - 1).min(all.len() - 1)]
        };
        triplets
            .into_iter()
            .map(|(m, s)| {
                (
                    format!("{m}.lora_E"),
                    s.iter().map(|&x| x > threshold).collect(),
                )
            })
            .collect()
    }

    /// PEFT's `update_and_allocate(global_step)`; returns the rank pattern to apply, if any.
    pub fn update_and_allocate(
        &mut self,
        step: usize,
        layers: &[LayerStats],
    ) -> Option<BTreeMap<String, Vec<bool>>> {
        let boundary = self.total_step - self.tfinal;
        if step < boundary {
            self.update_ipt(layers);
            let (budget, mask_now) = self.budget_schedule(step);
            self.budget = budget;
            if mask_now {
                let p = self.mask_to_budget(layers, budget);
                self.rank_pattern = Some(p.clone());
                return Some(p);
            }
            None
        } else if step == boundary {
            let (budget, _) = self.budget_schedule(step);
            self.budget = budget;
            let p = self.mask_to_budget(layers, budget);
            self.rank_pattern = Some(p.clone());
            self.ipt.clear();
            Some(p)
        } else {
            self.budget = self.target_bgt;
            self.rank_pattern.clone()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alloc() -> RankAllocator {
        let opts = super::super::AdapterOptions {
            method: "adalora".into(),
            init_r: 6,
            target_r: 4,
            tinit: 10,
            tfinal: 20,
            delta_t: 5,
            total_steps: Some(100),
            ..Default::default()
        };
        RankAllocator::new(&opts, 8)
    }

    #[test]
    fn budget_schedule_is_peft_cubic() {
        let a = alloc();
        assert_eq!(a.budget_schedule(10), (48, false));
        assert_eq!(a.budget_schedule(81), (32, true));
        // step 45: mul = 1 - 35/70 = 0.5 → int(16 · 0.125 + 32) = 34; 45 % 5 == 0 → mask.
        assert_eq!(a.budget_schedule(45), (34, true));
        assert!(!a.budget_schedule(46).1);
    }

    #[test]
    fn pruning_keeps_the_most_important_triplets() {
        let mut a = alloc();
        a.init_bgt = 4;
        a.target_bgt = 2;
        // One module, r = 4, in = out = 1: E's sensitivity decides.
        let stats = vec![LayerStats {
            module: "m".into(),
            r: 4,
            values: [vec![1.0; 4], vec![1.0, 2.0, 3.0, 4.0], vec![1.0; 4]],
            grads: [vec![0.0; 4], vec![1.0, 1.0, 1.0, 1.0], vec![0.0; 4]],
            in_f: 1,
            out_f: 1,
        }];
        a.update_ipt(&stats);
        a.update_ipt(&stats);
        let p = a.mask_to_budget(&stats, 2);
        assert_eq!(p["m.lora_E"], vec![false, false, true, true]);
    }
}
