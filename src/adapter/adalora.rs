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
//! is added to the training loss. The allocator (and with it the rank pattern) belongs to the
//! [`AdaLora`] method; a saved adapter keeps only the kept triplets, with `rank_pattern` in the
//! config (PEFT `peft_type: "ADALORA"`).

use super::init::normal;
use super::options::{finite, unit_interval};
use super::peft_io::{PeftFiles, Strict, INT, PREFIX};
use super::state::AdapterState;
use super::{
    dropout, host_tensor, host_values, param, AdapterCtx, AdapterError, AdapterMethod,
    AdapterOptions, Dims, LinearAdapter, LowRank, Param, Unsupported,
};
use crate::model::linear::Linear;
use crate::model::llama::CausalLm;
use crate::backend::LmBackend;
use crate::tensor::HostTensor;
use crate::value::Row;
use burn::tensor::{Tensor, TensorData};
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;

/// AdaLoRA on one linear layer.
pub struct AdaLoraLayer<B: LmBackend> {
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
}

impl<B: LmBackend> AdaLoraLayer<B> {
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
        }
    }

    fn scale(&self) -> f64 {
        self.alpha / (self.ranknum + 1e-5)
    }
}

impl<B: LmBackend> LinearAdapter<B> for AdaLoraLayer<B> {
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
    ) -> Result<(Tensor<B, 2>, Option<Tensor<B, 1>>), Unsupported> {
        let d = self
            .b
            .get()
            .matmul(self.a.get() * self.e.get())
            .mul_scalar(self.scale());
        Ok((layer.dense_weight() + d, layer.bias.clone()))
    }

    fn low_rank(&self, _layer: &Linear<B>) -> Result<LowRank<B>, Unsupported> {
        Ok(LowRank {
            a: self.a.get() * self.e.get(),
            b: self.b.get(),
            scale: self.scale(),
        })
    }
}

/// Zeroes the pruned entries of a layer's `E` (`mask[i]` false: triplet `i` pruned).
fn apply_mask<B: LmBackend>(layer: &mut dyn LinearAdapter<B>, mask: &[bool]) {
    if mask.iter().all(|&k| k) {
        return;
    }
    let m: Vec<f32> = mask.iter().map(|&k| if k { 1.0 } else { 0.0 }).collect();
    if let Some(e) = layer.params_mut().into_iter().find(|p| p.key == "lora_E") {
        if e.value.dims()[0] != m.len() {
            return;
        }
        let mt = Tensor::<B, 2>::from_data(TensorData::new(m, [mask.len(), 1]), &e.value.device());
        e.value = (e.value.clone() * mt).detach();
    }
}

/// Applies a rank pattern (`module.lora_E` → kept triplets) to the layers of `lm`.
pub fn apply_pattern<B: LmBackend>(
    lm: &mut CausalLm<B>,
    pattern: &BTreeMap<String, Vec<bool>>,
) {
    for (name, layer) in lm.linears_mut() {
        if let (Some(a), Some(m)) = (layer.adapter.as_mut(), pattern.get(&format!("{name}.lora_E")))
        {
            apply_mask(a.as_mut(), m);
        }
    }
}

/// The orthogonality regulariser over the AdaLoRA tensors of `lm` (mean Frobenius norm of
/// `AAᵀ − I` and `BᵀB − I`), to be multiplied by `orth_reg` and added to the loss.
pub fn orth_regulariser<B: LmBackend>(lm: &CausalLm<B>) -> Option<Tensor<B, 1>> {
    let mut terms = Vec::new();
    for (_, layer) in lm.linears() {
        let Some(ad) = &layer.adapter else { continue };
        let (Some(a), Some(b)) = (param(ad.as_ref(), "lora_A"), param(ad.as_ref(), "lora_B"))
        else {
            continue;
        };
        for (p, is_a) in [(a, true), (b, false)] {
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

/// Keeps rows (`axis 0`) or columns (`axis 1`) of a row-major `[rows, cols]` matrix.
fn keep(v: &[f32], rows: usize, cols: usize, axis: usize, mask: &[bool]) -> Vec<f32> {
    let mut out = Vec::new();
    for i in 0..rows {
        for j in 0..cols {
            let k = if axis == 0 { i } else { j };
            if mask[k] {
                out.push(v[i * cols + j]);
            }
        }
    }
    out
}

/// The AdaLoRA method; keeps the rank allocator (absent for a loaded adapter, which trains
/// with its saved ranks) and the regulariser weight.
pub struct AdaLora {
    /// PEFT's `RankAllocator`.
    pub allocator: Option<RankAllocator>,
    /// `orth_reg`.
    pub orth_reg: f64,
}

impl AdaLora {
    /// The rank pattern learned so far.
    fn pattern(&self) -> Option<&BTreeMap<String, Vec<bool>>> {
        self.allocator.as_ref().and_then(|a| a.rank_pattern.as_ref())
    }

    /// AdaLoRA's `total_step` to save: the option (required by `add_adapter`, read from a
    /// loaded config). A loaded config without it (older PEFT wrote `null`, which PEFT 0.21
    /// refuses) gets the steps trained here, at least the smallest schedule PEFT accepts,
    /// `tinit + tfinal + 1` (PEFT checks `tinit < total_step - tfinal`; for inference the
    /// value has no effect).
    pub fn total_step(&self, st: &AdapterState, steps: usize) -> usize {
        let o = &st.options;
        let min = o.tinit.saturating_add(o.tfinal).saturating_add(1);
        o.total_steps
            .or(self.allocator.as_ref().map(|a| a.total_step))
            .unwrap_or(steps)
            .max(min)
    }
}

impl AdapterMethod for AdaLora {
    const NAME: &'static str = "adalora";
    const OPTION_KEYS: &'static [&'static str] = &["init_r", "target_r", "tinit", "tfinal", "delta_t", "beta1", "beta2", "orth_reg", "total_steps"];
    const PEFT_TYPE: Option<&'static str> = Some("ADALORA");
    const SUFFIXES: &'static [&'static str] = &["lora_A", "lora_B", "lora_E"];

    fn default_rank(o: &AdapterOptions) -> usize {
        o.init_r
    }

    fn validate(o: &AdapterOptions) -> Result<(), AdapterError> {
        finite("orth_reg", o.orth_reg)?;
        unit_interval("beta1", o.beta1)?;
        unit_interval("beta2", o.beta2)?;
        let total = o.total_steps.ok_or_else(|| {
            AdapterError::Option(
                "adalora needs total_steps (the planned number of optimizer steps)".into(),
            )
        })?;
        if o.init_r == 0 || o.target_r > o.init_r {
            return Err(AdapterError::Option(format!(
                "adalora needs 0 < target_r <= init_r (got target_r {}, init_r {})",
                o.target_r, o.init_r
            )));
        }
        if o.tinit + o.tfinal >= total {
            return Err(AdapterError::Option(format!(
                "adalora needs tinit + tfinal < total_steps (got {} + {} >= {total})",
                o.tinit, o.tfinal
            )));
        }
        if o.delta_t == 0 {
            return Err(AdapterError::Option("adalora delta_t must be > 0".into()));
        }
        Ok(())
    }

    fn module_params(o: &AdapterOptions, _r: u128, in_f: u128, out_f: u128) -> u128 {
        (o.init_r as u128).saturating_mul(in_f + out_f + 1)
    }

    fn size_note(o: &AdapterOptions, _r: usize) -> String {
        format!(" with init_r = {}", o.init_r)
    }

    fn attach<B: LmBackend>(
        o: &AdapterOptions,
        lm: &mut CausalLm<B>,
        modules: &[String],
    ) -> Result<Self, AdapterError> {
        let ri = o.init_r;
        let alpha = o.alpha.unwrap_or(2.0 * ri as f64);
        let device = lm.device.clone();
        let mut rng = crate::rng::derived(o.seed, "adapter-init");
        for (_, layer) in super::targets_mut(lm, modules) {
            let (in_f, out_f) = (layer.in_features, layer.out_features);
            let a = normal(ri * in_f, 0.02, &mut rng);
            let b = normal(out_f * ri, 0.02, &mut rng);
            let dims = Dims { r: ri, in_f, out_f };
            let l = AdaLoraLayer::from_host(
                [a, vec![0.0; ri], b],
                dims,
                alpha,
                ri as f64,
                o.dropout,
                &device,
            );
            layer.adapter = Some(Box::new(l));
        }
        Ok(AdaLora {
            allocator: Some(RankAllocator::new(o, modules.len())),
            orth_reg: o.orth_reg,
        })
    }

    fn reads(peft_type: &str, _cfg: &Strict<'_>) -> Result<bool, AdapterError> {
        Ok(peft_type == "ADALORA")
    }

    fn load<B: LmBackend>(
        files: &PeftFiles<'_>,
        o: &mut AdapterOptions,
        lm: &mut CausalLm<B>,
    ) -> Result<Self, AdapterError> {
        let init_r: usize = files.get("init_r", INT)?.unwrap_or(12);
        o.init_r = init_r;
        o.alpha = Some(files.alpha);
        o.target_r = files.get("target_r", INT)?.unwrap_or(8);
        o.tinit = files.get("tinit", INT)?.unwrap_or(0);
        o.tfinal = files.get("tfinal", INT)?.unwrap_or(0);
        o.delta_t = files.get("deltaT", INT)?.unwrap_or(1);
        o.beta1 = files.get("beta1", "a number")?.unwrap_or(0.85);
        o.beta2 = files.get("beta2", "a number")?.unwrap_or(0.85);
        o.orth_reg = files.get("orth_reg_weight", "a number")?.unwrap_or(0.5);
        o.total_steps = files.get("total_step", INT)?;
        let device = lm.device.clone();
        for (name, layer) in lm.linears_mut() {
            let Some(g) = files.group(&name) else {
                continue;
            };
            let (in_f, out_f) = (layer.in_features, layer.out_features);
            // The rank comes from lora_E: read it first, so a missing lora_E is named as
            // missing rather than reported as a rank-0 shape mismatch of lora_A.
            g.get("lora_E", None)?;
            let k = g.rank_of("lora_E", 0);
            let a = g.get("lora_A", Some(vec![k, in_f]))?;
            let e = g.get("lora_E", Some(vec![k, 1]))?;
            let b = g.get("lora_B", Some(vec![out_f, k]))?;
            layer.adapter = Some(Box::new(AdaLoraLayer::from_host(
                [a, e, b],
                Dims { r: k, in_f, out_f },
                files.alpha,
                init_r as f64,
                files.dropout,
                &device,
            )));
        }
        Ok(AdaLora {
            allocator: None,
            orth_reg: o.orth_reg,
        })
    }

    fn peft_config(&self, st: &AdapterState, steps: usize) -> Result<Map<String, Value>, AdapterError> {
        let o = &st.options;
        let v = json!({
            // No "r": AdaLoRA ignores it and PEFT warns when it differs from LoraConfig's 8.
            "peft_type": "ADALORA", "init_r": o.init_r, "target_r": o.target_r,
            "bias": "none", "layers_to_transform": null,
            "tinit": o.tinit, "tfinal": o.tfinal, "deltaT": o.delta_t, "beta1": o.beta1,
            "beta2": o.beta2, "orth_reg_weight": o.orth_reg,
            "total_step": self.total_step(st, steps),
            "lora_alpha": o.alpha.unwrap_or(2.0 * o.init_r as f64), "lora_dropout": o.dropout,
            "init_lora_weights": true, "rank_pattern": self.pattern(),
        });
        Ok(v.as_object().cloned().unwrap_or_default())
    }

    /// Bare `lora_A`/`lora_E`/`lora_B`, pruned to the kept triplets of the rank pattern.
    fn save_tensors<B: LmBackend>(
        &self,
        lm: &CausalLm<B>,
        out: &mut BTreeMap<String, HostTensor>,
    ) -> Result<(), AdapterError> {
        let Some(pattern) = self.pattern() else {
            return super::method::all_params(lm, out);
        };
        for (name, layer) in lm.linears() {
            let Some(ad) = &layer.adapter else { continue };
            let prefix = format!("{PREFIX}{name}");
            let mask = pattern.get(&format!("{name}.lora_E"));
            let (in_f, o) = (layer.in_features, layer.out_features);
            let tensors = (
                param(ad.as_ref(), "lora_A"),
                param(ad.as_ref(), "lora_E"),
                param(ad.as_ref(), "lora_B"),
            );
            match (mask, tensors) {
                (Some(mask), (Some(a), Some(e), Some(b))) if e.value.dims()[0] == mask.len() => {
                    let r = mask.len();
                    let k = mask.iter().filter(|&&m| m).count();
                    let pruned = [
                        ("lora_A", vec![k, in_f], keep(&host_values(a.get())?.1, r, in_f, 0, mask)),
                        ("lora_E", vec![k, 1], keep(&host_values(e.get())?.1, r, 1, 0, mask)),
                        ("lora_B", vec![o, k], keep(&host_values(b.get())?.1, o, r, 1, mask)),
                    ];
                    for (key, shape, v) in pruned {
                        out.insert(format!("{prefix}.{key}"), host_tensor(shape, v)?);
                    }
                }
                _ => {
                    for p in ad.params() {
                        let v = host_values(p.get())?.1;
                        out.insert(
                            format!("{prefix}.{}", p.key),
                            host_tensor(p.saved_shape.clone(), v)?,
                        );
                    }
                }
            }
        }
        Ok(())
    }

    fn extra_loss<B: LmBackend>(&self, lm: &CausalLm<B>) -> Option<Tensor<B, 1>> {
        orth_regulariser(lm).map(|r| r.mul_scalar(self.orth_reg))
    }

    /// PEFT's `update_and_allocate`: sensitivities from the step's gradients, then the budget's
    /// rank pattern applied to `E`.
    fn after_step<B: LmBackend>(
        &mut self,
        lm: &mut CausalLm<B>,
        step: usize,
        grads: &BTreeMap<String, Tensor<B, 2>>,
    ) -> Result<(), AdapterError> {
        let Some(alloc) = self.allocator.as_mut() else {
            return Ok(());
        };
        let mut stats = Vec::new();
        for (name, layer) in lm.linears() {
            let Some(ad) = &layer.adapter else { continue };
            let (Some(a), Some(e), Some(b)) = (
                param(ad.as_ref(), "lora_A"),
                param(ad.as_ref(), "lora_E"),
                param(ad.as_ref(), "lora_B"),
            ) else {
                continue;
            };
            let g = |k: &str, like: &Tensor<B, 2>| -> Result<Vec<f32>, AdapterError> {
                Ok(match grads.get(&format!("{name}.{k}")) {
                    Some(t) => host_values(t.clone())?.1,
                    None => host_values(like.zeros_like())?.1,
                })
            };
            stats.push(LayerStats {
                module: name.clone(),
                r: e.value.dims()[0],
                values: [
                    host_values(a.get())?.1,
                    host_values(e.get())?.1,
                    host_values(b.get())?.1,
                ],
                grads: [
                    g("lora_A", &a.value)?,
                    g("lora_E", &e.value)?,
                    g("lora_B", &b.value)?,
                ],
                in_f: layer.in_features,
                out_f: layer.out_features,
            });
        }
        if let Some(pattern) = alloc.update_and_allocate(step, &stats) {
            apply_pattern(lm, &pattern);
        }
        Ok(())
    }

    fn checkpoint_state(&self) -> Option<Value> {
        self.allocator
            .as_ref()
            .and_then(|a| serde_json::to_value(a).ok())
    }

    fn restore_state<B: LmBackend>(
        &mut self,
        lm: &mut CausalLm<B>,
        state: &Value,
    ) -> Result<(), AdapterError> {
        let a: RankAllocator = serde_json::from_value(state.clone()).map_err(|e| {
            AdapterError::Unsupported(format!("checkpoint: bad AdaLoRA allocator state: {e}"))
        })?;
        if let Some(p) = &a.rank_pattern {
            apply_pattern(lm, p);
        }
        self.allocator = Some(a);
        Ok(())
    }

    fn info(&self, o: &AdapterOptions, row: &mut Row) -> Result<(), AdapterError> {
        if let Some(a) = &self.allocator {
            row.insert("init_r".into(), Value::from(o.init_r));
            row.insert("target_r".into(), Value::from(o.target_r));
            row.insert("budget".into(), Value::from(a.budget));
        }
        Ok(())
    }

    /// PEFT counts each module's frozen `ranknum` scalar (an `nn.Parameter`).
    fn extra_param_count(&self, modules: usize) -> usize {
        modules
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

    #[test]
    fn after_step_prunes_to_the_target_budget_and_the_state_round_trips() {
        use crate::{lab::Model, model::LoadOptions};
        use crate::train::step::{loss_and_grads, trainable};
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/models/tiny-llama");
        let mut m = Model::load(&dir, LoadOptions::default()).unwrap();
        let targets = super::super::Targets::Many(vec!["q_proj".into(), "v_proj".into()]);
        let opts = super::super::AdapterOptions {
            method: "adalora".into(),
            init_r: 4,
            target_r: 2,
            total_steps: Some(2),
            targets: Some(targets),
            ..Default::default()
        };
        m.add_adapter(opts).unwrap();
        let ids = [vec![1u32, 5, 9, 13, 2, 7]];
        let labels = [vec![1i64, 5, 9, 13, 2, 7]];
        let tb = crate::lab::training::label_batch(&ids, &labels, m.tokenizer.pad_id).unwrap();
        let st = &mut m.adapters.list[0];
        let n_modules = st.modules.len();
        crate::with_lm!(&mut m.lm, lm => {
            let (_, grads) = loss_and_grads(lm, &tb, &AdapterCtx::eval(), Some(&st.method)).unwrap();
            let names: Vec<String> = trainable(lm).into_iter().map(|(n, _)| n).collect();
            let named: BTreeMap<String, Tensor<_, 2>> = names
                .into_iter()
                .zip(grads)
                .filter_map(|(n, g)| g.map(|g| (n, g)))
                .collect();
            // Step 1 smooths the sensitivities; step 2 = total − tfinal fixes the final mask.
            st.method.after_step(lm, 1, &named).unwrap();
            st.method.after_step(lm, 2, &named).unwrap();
        });
        let saved = m.adapter_tensors("default").unwrap();
        let kept: usize = saved
            .iter()
            .filter(|(k, _)| k.ends_with(".lora_E"))
            .map(|(_, t)| t.shape[0])
            .sum();
        assert_eq!(kept, 2 * n_modules);
        let st = &mut m.adapters.list[0];
        let state = st.method.checkpoint_state().unwrap();
        let super::super::AnyMethod::AdaLora(a) = &st.method else {
            panic!("not adalora");
        };
        let mut fresh = AdaLora {
            allocator: None,
            orth_reg: a.orth_reg,
        };
        crate::with_lm!(&mut m.lm, lm => fresh.restore_state(lm, &state).unwrap());
        assert_eq!(fresh.pattern(), a.pattern());
    }
}
