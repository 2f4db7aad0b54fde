//! LoRA: low-rank adaptation (Hu et al. 2021, arXiv 2106.09685) and rsLoRA (Kalajdzievski 2023,
//! arXiv 2312.03732).
//!
//! `y = W x + b + s · B A dropout(x)` with `A: [r, in]`, `B: [out, r]` and
//! `s = alpha / r` (rsLoRA: `alpha / √r`). PEFT's initialisation: `A` Kaiming-uniform with
//! `a = √5` (`U(±1/√in)`), `B = 0`; `init_lora_weights="gaussian"` draws `A ~ N(0, (1/r)²)`.
//! Saved as `lora_A.weight` / `lora_B.weight` (PEFT `lora/layer.py`). PiSSA reuses this layer
//! with a different initialisation (see [`super::pissa`]).

use super::{dropout, AdapterCtx, AdapterError, Dims, LinearAdapter, LoraFactors, Param};
use crate::model::linear::Linear;
use crate::model::to_host;
use crate::quant::QuantBackend;
use crate::tensor::HostTensor;
use burn::tensor::Tensor;

/// The LoRA scale `alpha/r` or `alpha/√r`.
pub fn scaling(alpha: f64, r: usize, rslora: bool) -> f64 {
    if rslora {
        alpha / (r as f64).sqrt()
    } else {
        alpha / r as f64
    }
}

/// LoRA on one linear layer.
pub struct LoraLayer<B: QuantBackend> {
    /// `lora_A.weight`, `[r, in]`.
    pub a: Param<B>,
    /// `lora_B.weight`, `[out, r]`.
    pub b: Param<B>,
    /// Rank.
    pub r: usize,
    /// Scale of `B A`.
    pub scaling: f64,
    /// Input dropout probability.
    pub dropout: f64,
    /// `"lora"` or `"pissa"` (same computation, different initialisation and saving).
    pub kind: &'static str,
}

impl<B: QuantBackend> LoraLayer<B> {
    /// Builds the layer from host values of A (`[r, in]`) and B (`[out, r]`).
    pub fn from_host(
        a: Vec<f32>,
        b: Vec<f32>,
        Dims { r, in_f, out_f }: Dims,
        scaling: f64,
        dropout: f64,
        device: &B::Device,
    ) -> Self {
        LoraLayer {
            a: Param::new("lora_A.weight", a, [r, in_f], vec![r, in_f], device),
            b: Param::new("lora_B.weight", b, [out_f, r], vec![out_f, r], device),
            r,
            scaling,
            dropout,
            kind: "lora",
        }
    }

    /// The update alone: `s · B A x` on `[N, in]` (no dropout).
    pub fn delta(&self, x: Tensor<B, 2>) -> Tensor<B, 2> {
        let a = self.a.get();
        let b = self.b.get();
        let (a, b) = if a.dtype() == x.dtype() {
            (a, b)
        } else {
            (a.cast(x.dtype()), b.cast(x.dtype()))
        };
        x.matmul(a.transpose())
            .matmul(b.transpose())
            .mul_scalar(self.scaling)
    }

    /// `s · B A` as a dense `[out, in]` matrix.
    pub fn delta_weight(&self) -> Tensor<B, 2> {
        self.b.get().matmul(self.a.get()).mul_scalar(self.scaling)
    }
}

/// Host copies of A and B as [`LoraFactors`].
pub fn factors<B: QuantBackend>(
    a: Tensor<B, 2>,
    b: Tensor<B, 2>,
    scale: f64,
) -> Result<LoraFactors, AdapterError> {
    let conv = |t: Tensor<B, 2>| -> Result<HostTensor, AdapterError> {
        let (s, v) = to_host(t).map_err(|e| AdapterError::Unsupported(e.to_string()))?;
        HostTensor::f32(s, v).map_err(|e| AdapterError::Unsupported(e.to_string()))
    };
    Ok(LoraFactors {
        a: conv(a)?,
        b: conv(b)?,
        scale,
    })
}

impl<B: QuantBackend> LinearAdapter<B> for LoraLayer<B> {
    fn method(&self) -> &'static str {
        self.kind
    }

    fn forward(&self, layer: &Linear<B>, x: Tensor<B, 2>, ctx: &AdapterCtx<B>) -> Tensor<B, 2> {
        let base = layer.base_forward(x.clone());
        base + self.delta(dropout(x, self.dropout, ctx))
    }

    fn params(&self) -> Vec<&Param<B>> {
        vec![&self.a, &self.b]
    }

    fn params_mut(&mut self) -> Vec<&mut Param<B>> {
        vec![&mut self.a, &mut self.b]
    }

    fn merged(
        &self,
        layer: &Linear<B>,
    ) -> Result<(Tensor<B, 2>, Option<Tensor<B, 1>>), AdapterError> {
        let w = layer.dense_weight();
        let d = self.delta_weight();
        let d = if d.dtype() == w.dtype() {
            d
        } else {
            d.cast(w.dtype())
        };
        Ok((w + d, layer.bias.clone()))
    }

    fn lora_factors(&self, _layer: &Linear<B>) -> Result<LoraFactors, AdapterError> {
        factors(self.a.get(), self.b.get(), self.scaling)
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }

    fn as_any_mut(&mut self) -> &mut dyn std::any::Any {
        self
    }
}
