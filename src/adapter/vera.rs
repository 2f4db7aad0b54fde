//! VeRA: vector-based random matrix adaptation (Kopiczko et al. 2024, arXiv 2310.11454).
//!
//! One pair of frozen random matrices is shared by every adapted layer, sized for the largest
//! layer: `A_sh: [r, max_in]`, `B_sh: [max_out, r]`. Each layer trains two vectors and computes
//! `y = W x + b + λ_b ⊙ (B_sh[:out] (λ_d ⊙ (A_sh[:, :in] dropout(x))))` (PEFT `vera/layer.py`),
//! with no alpha. `λ_d` starts at `d_initial`, `λ_b` at 0, so the initial update is zero. The
//! shared matrices use gain-√2 Kaiming-uniform (`U(±√(6/fan_in))`) from a generator seeded by
//! `projection_seed` (ChaCha8: peftlab's stream, not torch's), and are always saved
//! (`base_model.vera_A`, `base_model.vera_B`) so that the adapter is reproducible anywhere.

use super::attach::frozen_equivalent;
use super::init::vera_kaiming;
use super::options::finite;
use super::peft_io::{device_from_host, PeftFiles, Strict, INT};
use super::state::AdapterState;
use super::{
    device_tensor, dropout, host_tensor, AdapterCtx, AdapterError, AdapterMethod, AdapterOptions,
    LinearAdapter, LowRank, Param, Targets, Unsupported,
};
use crate::model::linear::Linear;
use crate::model::llama::CausalLm;
use crate::backend::LmBackend;
use crate::tensor::HostTensor;
use crate::value::Row;
use burn::tensor::Tensor;
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;

/// VeRA on one linear layer.
pub struct VeraLayer<B: LmBackend> {
    /// `vera_lambda_d`, stored `[1, r]`.
    pub lambda_d: Param<B>,
    /// `vera_lambda_b`, stored `[1, out]`.
    pub lambda_b: Param<B>,
    /// The shared `A` sliced to this layer, `[r, in]` (frozen).
    pub a: Tensor<B, 2>,
    /// The shared `B` sliced to this layer, `[out, r]` (frozen).
    pub b: Tensor<B, 2>,
    /// Input dropout.
    pub dropout: f64,
}

impl<B: LmBackend> VeraLayer<B> {
    /// Slices the shared matrices for a layer and sets `λ_d = d_initial`, `λ_b = 0`.
    pub fn new(
        shared_a: &Tensor<B, 2>,
        shared_b: &Tensor<B, 2>,
        in_f: usize,
        out_f: usize,
        d_initial: f64,
        dropout: f64,
    ) -> Self {
        let r = shared_a.dims()[0];
        let device = shared_a.device();
        VeraLayer {
            lambda_d: Param::new(
                "vera_lambda_d",
                vec![d_initial as f32; r],
                [1, r],
                vec![r],
                &device,
            ),
            lambda_b: Param::new(
                "vera_lambda_b",
                vec![0.0; out_f],
                [1, out_f],
                vec![out_f],
                &device,
            ),
            a: shared_a.clone().slice([0..r, 0..in_f]),
            b: shared_b.clone().slice([0..out_f, 0..r]),
            dropout,
        }
    }

    fn scaled_factors(&self) -> (Tensor<B, 2>, Tensor<B, 2>) {
        // diag(λd)·A and diag(λb)·B.
        let a = self.a.clone() * self.lambda_d.get().transpose();
        let b = self.b.clone() * self.lambda_b.get().transpose();
        (a, b)
    }
}

impl<B: LmBackend> LinearAdapter<B> for VeraLayer<B> {
    fn forward(&self, layer: &Linear<B>, x: Tensor<B, 2>, ctx: &AdapterCtx<B>) -> Tensor<B, 2> {
        let base = layer.base_forward(x.clone());
        let xd = dropout(x, self.dropout, ctx);
        let h = xd.matmul(self.a.clone().transpose()) * self.lambda_d.get();
        base + h.matmul(self.b.clone().transpose()) * self.lambda_b.get()
    }

    fn params(&self) -> Vec<&Param<B>> {
        vec![&self.lambda_d, &self.lambda_b]
    }

    fn params_mut(&mut self) -> Vec<&mut Param<B>> {
        vec![&mut self.lambda_d, &mut self.lambda_b]
    }

    fn merged(
        &self,
        layer: &Linear<B>,
    ) -> Result<(Tensor<B, 2>, Option<Tensor<B, 1>>), Unsupported> {
        let (a, b) = self.scaled_factors();
        Ok((layer.dense_weight() + b.matmul(a), layer.bias.clone()))
    }

    fn low_rank(&self, _layer: &Linear<B>) -> Result<LowRank<B>, Unsupported> {
        let (a, b) = self.scaled_factors();
        Ok(LowRank { a, b, scale: 1.0 })
    }
}

/// Keys of the shared projections in the safetensors file.
const SHARED_KEYS: [&str; 2] = ["base_model.vera_A", "base_model.vera_B"];

/// The VeRA method; keeps the shared projections `(A, B)` for saving.
pub struct Vera {
    /// `A_sh: [r, max_in]` and `B_sh: [max_out, r]`.
    pub shared: (HostTensor, HostTensor),
}

impl AdapterMethod for Vera {
    const NAME: &'static str = "vera";
    const OPTION_KEYS: &'static [&'static str] = &["d_initial", "projection_seed"];
    const PEFT_TYPE: Option<&'static str> = Some("VERA");
    const SUFFIXES: &'static [&'static str] = &["vera_lambda_b", "vera_lambda_d"];

    /// PEFT's default rank for VeRA.
    fn default_rank(_o: &AdapterOptions) -> usize {
        256
    }

    /// PEFT's Llama default for VeRA.
    fn default_targets() -> Targets {
        Targets::Many(vec!["q_proj".into(), "v_proj".into()])
    }

    fn validate(o: &AdapterOptions) -> Result<(), AdapterError> {
        finite("d_initial", o.d_initial)
    }

    fn module_params(_o: &AdapterOptions, r: u128, _in_f: u128, out_f: u128) -> u128 {
        r.saturating_add(out_f)
    }

    fn shared_params(_o: &AdapterOptions, r: u128, max_in: u128, max_out: u128) -> u128 {
        // The shared projections are frozen f32 values (no gradient, no optimizer state).
        frozen_equivalent(r.saturating_mul(max_in + max_out))
    }

    fn attach<B: LmBackend>(
        o: &AdapterOptions,
        lm: &mut CausalLm<B>,
        modules: &[String],
    ) -> Result<Self, AdapterError> {
        let r = o.rank()?;
        let (mut max_in, mut max_out) = (0, 0);
        for (n, l) in lm.linears() {
            if modules.contains(&n) {
                max_in = max_in.max(l.in_features);
                max_out = max_out.max(l.out_features);
            }
        }
        let mut prng = crate::rng::derived(o.projection_seed, "vera-projection");
        let a = vera_kaiming(r, max_in, &mut prng);
        let b = vera_kaiming(max_out, r, &mut prng);
        let shared = (
            host_tensor(vec![r, max_in], a.clone())?,
            host_tensor(vec![max_out, r], b.clone())?,
        );
        let device = lm.device.clone();
        let sa = device_tensor::<B>(a, [r, max_in], &device);
        let sb = device_tensor::<B>(b, [max_out, r], &device);
        for (name, layer) in lm.linears_mut() {
            if modules.contains(&name) {
                let (in_f, out_f) = (layer.in_features, layer.out_features);
                let v = VeraLayer::new(&sa, &sb, in_f, out_f, o.d_initial, o.dropout);
                layer.adapter = Some(Box::new(v));
            }
        }
        Ok(Vera { shared })
    }

    fn reads(peft_type: &str, _cfg: &Strict<'_>) -> Result<bool, AdapterError> {
        Ok(peft_type == "VERA")
    }

    fn is_shared_key(key: &str) -> bool {
        SHARED_KEYS.contains(&key)
    }

    fn load<B: LmBackend>(
        files: &PeftFiles<'_>,
        o: &mut AdapterOptions,
        lm: &mut CausalLm<B>,
    ) -> Result<Self, AdapterError> {
        let get = |k: &str| {
            files.tensors.get(k).cloned().ok_or_else(|| {
                files.file_error(format!(
                    "VeRA adapter without '{k}' (save_projection=False is not supported: the \
                     projections cannot be regenerated outside torch)"
                ))
            })
        };
        let shared = (get(SHARED_KEYS[0])?, get(SHARED_KEYS[1])?);
        o.projection_seed = files.get("projection_prng_key", INT)?.unwrap_or(0);
        o.d_initial = files.get("d_initial", "a number")?.unwrap_or(0.1);
        let device = lm.device.clone();
        let sa = device_from_host::<B>(SHARED_KEYS[0], &shared.0, &device)?;
        let sb = device_from_host::<B>(SHARED_KEYS[1], &shared.1, &device)?;
        let [r, max_in] = sa.dims();
        let max_out = sb.dims()[0];
        let mut first_r = None;
        for (name, layer) in lm.linears_mut() {
            let Some(g) = files.group(&name) else {
                continue;
            };
            let (in_f, out_f) = (layer.in_features, layer.out_features);
            if max_in < in_f || max_out < out_f || sb.dims()[1] != r {
                return Err(AdapterError::Shape {
                    name: "base_model.vera_A/vera_B".into(),
                    expected: vec![r, in_f, out_f],
                    found: vec![r, max_in, max_out],
                });
            }
            first_r.get_or_insert(r);
            let mut v = VeraLayer::new(&sa, &sb, in_f, out_f, 0.0, files.dropout);
            let d = g.get("vera_lambda_d", Some(vec![r]))?;
            v.lambda_d.value = device_tensor(d, [1, r], &device);
            let b = g.get("vera_lambda_b", Some(vec![out_f]))?;
            v.lambda_b.value = device_tensor(b, [1, out_f], &device);
            layer.adapter = Some(Box::new(v));
        }
        o.r = files.config_r.or(first_r);
        Ok(Vera { shared })
    }

    fn peft_config(&self, st: &AdapterState, _steps: usize) -> Result<Map<String, Value>, AdapterError> {
        let o = &st.options;
        let v = json!({
            "peft_type": "VERA", "r": o.rank()?, "projection_prng_key": o.projection_seed,
            "bias": "none", "layers_to_transform": null,
            "save_projection": true, "vera_dropout": o.dropout, "d_initial": o.d_initial,
            "init_weights": true,
        });
        Ok(v.as_object().cloned().unwrap_or_default())
    }

    fn save_tensors<B: LmBackend>(
        &self,
        lm: &CausalLm<B>,
        out: &mut BTreeMap<String, HostTensor>,
    ) -> Result<(), AdapterError> {
        super::method::all_params(lm, out)?;
        out.insert(SHARED_KEYS[0].into(), self.shared.0.clone());
        out.insert(SHARED_KEYS[1].into(), self.shared.1.clone());
        Ok(())
    }

    fn info(&self, o: &AdapterOptions, row: &mut Row) -> Result<(), AdapterError> {
        row.insert("r".into(), Value::from(o.rank()?));
        Ok(())
    }
}
