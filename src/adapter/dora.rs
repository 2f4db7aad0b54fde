//! DoRA: weight-decomposed low-rank adaptation (Liu et al. 2024, arXiv 2402.09353).
//!
//! The adapted weight is `m · (W + sBA) / ‖W + sBA‖` with a trainable magnitude `m` per output
//! row (PEFT `lora/dora.py`, `DoraLinearLayer`): the row norm is **detached**, and the output is
//! computed on activations as `(m/‖·‖ − 1) ⊙ (Wx) + (m/‖·‖) ⊙ s·BAx` (+ bias). With input dropout
//! in training, `Wx` uses the dropped-out input, as PEFT does.
//!
//! The row norm never materialises `W + sBA`: with `ω_i = ‖W_i‖²` (cached, W is frozen),
//! `‖W_i + s(BA)_i‖² = ω_i + 2s·(B ⊙ W Aᵀ)_i·1 + s²·(B (A Aᵀ) ⊙ B)_i·1`, which costs one
//! `[out, in] × [in, r]` product. `m` is initialised to the row norm of `W + sBA` and saved as
//! `lora_magnitude_vector` (shape `[out]`, no `.weight` suffix; older PEFT versions wrote
//! `lora_magnitude_vector.weight`, which loads too); config `peft_type: "LORA"`, `use_dora: true`.

use super::lora::{attach_layers, is_dora, load_layers, lora_config, lora_info, LoraLayer};
use super::peft_io::{PeftFiles, Strict};
use super::state::AdapterState;
use super::{
    device_tensor, dropout, AdapterCtx, AdapterError, AdapterMethod, AdapterOptions,
    LinearAdapter, LowRank, Param, Unsupported,
};
use crate::model::linear::Linear;
use crate::model::llama::CausalLm;
use crate::backend::LmBackend;
use crate::value::Row;
use burn::tensor::{DType, Tensor};
use serde_json::{Map, Value};

/// DoRA on one linear layer.
pub struct DoraLayer<B: LmBackend> {
    /// The low-rank direction update.
    pub lora: LoraLayer<B>,
    /// `lora_magnitude_vector`, stored `[1, out]`.
    pub magnitude: Param<B>,
    /// Cached `‖W_i‖²`, `[1, out]` (f32).
    pub w_row_sq: Tensor<B, 2>,
}

fn f32t<B: LmBackend, const D: usize>(t: Tensor<B, D>) -> Tensor<B, D> {
    if t.dtype() == DType::F32 {
        t
    } else {
        t.cast(DType::F32)
    }
}

/// `‖W_i‖²` per output row, `[1, out]`.
pub fn row_norm_sq<B: LmBackend>(w: Tensor<B, 2>) -> Tensor<B, 2> {
    f32t(w).square().sum_dim(1).transpose()
}

impl<B: LmBackend> DoraLayer<B> {
    /// Wraps a LoRA layer; the magnitude starts at `‖W + sBA‖` per row.
    pub fn new(lora: LoraLayer<B>, layer: &Linear<B>) -> Self {
        let w_row_sq = row_norm_sq(layer.dense_weight());
        let mut d = DoraLayer {
            magnitude: Param {
                key: "lora_magnitude_vector".into(),
                value: w_row_sq.clone(),
                saved_shape: vec![layer.out_features],
                trainable: true,
            },
            lora,
            w_row_sq,
        };
        d.magnitude.value = d.weight_norm(layer);
        d
    }

    /// Detached `‖W + sBA‖` per row, `[1, out]` (f32).
    pub fn weight_norm(&self, layer: &Linear<B>) -> Tensor<B, 2> {
        let s = self.lora.scaling;
        let a = f32t(self.lora.a.get().detach());
        let b = f32t(self.lora.b.get().detach());
        let w = f32t(layer.dense_weight());
        let cross = (b.clone() * w.matmul(a.clone().transpose())).sum_dim(1); // [out, 1]
        let quad = (b.clone().matmul(a.clone().matmul(a.transpose())) * b).sum_dim(1); // [out, 1]
        let sq =
            self.w_row_sq.clone().transpose() + cross.mul_scalar(2.0 * s) + quad.mul_scalar(s * s);
        sq.clamp_min(0.0).sqrt().transpose().detach()
    }
}

impl<B: LmBackend> LinearAdapter<B> for DoraLayer<B> {
    fn forward(&self, layer: &Linear<B>, x: Tensor<B, 2>, ctx: &AdapterCtx<B>) -> Tensor<B, 2> {
        let result = layer.base_forward(x.clone());
        let dropped = ctx.train && self.lora.dropout > 0.0;
        let xd = dropout(x, self.lora.dropout, ctx);
        let base_no_bias = if dropped {
            layer.weight_forward(xd.clone())
        } else {
            match &layer.bias {
                Some(bias) => result.clone() - layer.bias_like(bias, &result).unsqueeze_dim(0),
                None => result.clone(),
            }
        };
        let scale = self.magnitude.get() / self.weight_norm(layer); // [1, out]
        let scale = if scale.dtype() == result.dtype() {
            scale
        } else {
            scale.cast(result.dtype())
        };
        let lora = self.lora.delta(xd);
        result + (scale.clone().sub_scalar(1.0)) * base_no_bias + scale * lora
    }

    fn params(&self) -> Vec<&Param<B>> {
        vec![&self.lora.a, &self.lora.b, &self.magnitude]
    }

    fn params_mut(&mut self) -> Vec<&mut Param<B>> {
        vec![&mut self.lora.a, &mut self.lora.b, &mut self.magnitude]
    }

    fn merged(
        &self,
        layer: &Linear<B>,
    ) -> Result<(Tensor<B, 2>, Option<Tensor<B, 1>>), Unsupported> {
        let w = f32t(layer.dense_weight());
        let full = w + f32t(self.lora.delta_weight());
        let norm = f32t(full.clone()).square().sum_dim(1).sqrt(); // [out, 1]
        let factor = self.magnitude.get().transpose() / norm;
        Ok((full * factor, layer.bias.clone()))
    }

    fn low_rank(&self, _layer: &Linear<B>) -> Result<LowRank<B>, Unsupported> {
        Err(Unsupported(
            "DoRA is not a low-rank update (the magnitude rescales every row of W); merge it with \
             merge_adapter() instead of exporting a plain LoRA"
                .into(),
        ))
    }
}

/// The DoRA method.
pub struct Dora;

impl AdapterMethod for Dora {
    const NAME: &'static str = "dora";
    const PEFT_TYPE: Option<&'static str> = Some("LORA");
    const SUFFIXES: &'static [&'static str] = &[
        "lora_A.weight",
        "lora_B.weight",
        "lora_magnitude_vector.weight",
        "lora_magnitude_vector",
    ];

    fn module_params(_o: &AdapterOptions, r: u128, in_f: u128, out_f: u128) -> u128 {
        r.saturating_mul(in_f + out_f).saturating_add(out_f)
    }

    fn attach<B: LmBackend>(
        o: &AdapterOptions,
        lm: &mut CausalLm<B>,
        modules: &[String],
    ) -> Result<Self, AdapterError> {
        attach_layers(o, lm, modules, |l, layer| Box::new(DoraLayer::new(l, layer)))?;
        Ok(Dora)
    }

    fn reads(peft_type: &str, cfg: &Strict<'_>) -> Result<bool, AdapterError> {
        Ok(peft_type == "LORA" && is_dora(cfg)?)
    }

    fn load<B: LmBackend>(
        files: &PeftFiles<'_>,
        o: &mut AdapterOptions,
        lm: &mut CausalLm<B>,
    ) -> Result<Self, AdapterError> {
        load_layers(files, o, lm, |l, layer, g| {
            let key = if g.map.contains_key("lora_magnitude_vector") {
                "lora_magnitude_vector"
            } else {
                "lora_magnitude_vector.weight"
            };
            let out_f = layer.out_features;
            let m = g.get(key, Some(vec![out_f]))?;
            let mut d = DoraLayer::new(l, layer);
            d.magnitude.value = device_tensor(m, [1, out_f], &d.magnitude.value.device());
            Ok(Box::new(d))
        })?;
        Ok(Dora)
    }

    fn peft_config(&self, st: &AdapterState, _steps: usize) -> Result<Map<String, Value>, AdapterError> {
        let o = &st.options;
        Ok(lora_config(o, o.rank()?, o.alpha_value()?, true))
    }

    fn info(&self, o: &AdapterOptions, row: &mut Row) -> Result<(), AdapterError> {
        lora_info(o, row)
    }
}
