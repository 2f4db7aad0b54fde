//! Linear layers with a frozen base weight and an optional adapter.
//!
//! The base weight keeps transformers' `[out, in]` layout and is a plain tensor, never a
//! parameter: the optimizer only ever sees adapter tensors. An adapter works on activations
//! (`y = Wx + b + Δ(x)`), it never rebuilds `W + BA` on the forward pass.

use super::hook::{AdapterCtx, LinearAdapter};
use crate::quant::{QuantBackend, QuantWeight};
use burn::tensor::Tensor;

/// The frozen weight of a linear layer.
pub enum BaseWeight<B: QuantBackend> {
    /// A dense `[out, in]` matrix in the storage dtype (f32, bf16 or f16).
    Dense(Tensor<B, 2>),
    /// A quantised matrix (NF4/FP4/int8), dequantised on the fly; under autodiff its backward
    /// re-dequantises instead of keeping a dense copy.
    Quant(QuantWeight<B>),
}

/// A linear layer `y = x Wᵀ + b` plus an optional adapter.
pub struct Linear<B: QuantBackend> {
    /// Module path in transformers naming, e.g. `model.layers.0.self_attn.q_proj`.
    pub name: String,
    /// Input features.
    pub in_features: usize,
    /// Output features.
    pub out_features: usize,
    /// Frozen weight.
    pub weight: BaseWeight<B>,
    /// Frozen bias.
    pub bias: Option<Tensor<B, 1>>,
    /// The adapter attached to this layer, if any.
    pub adapter: Option<Box<dyn LinearAdapter<B>>>,
}

impl<B: QuantBackend> Linear<B> {
    /// A dense layer from an `[out, in]` weight.
    pub fn dense(name: String, weight: Tensor<B, 2>, bias: Option<Tensor<B, 1>>) -> Self {
        let [out_features, in_features] = weight.dims();
        Linear {
            name,
            in_features,
            out_features,
            weight: BaseWeight::Dense(weight),
            bias,
            adapter: None,
        }
    }

    /// The base weight as a dense `[out, in]` tensor in its storage dtype.
    pub fn dense_weight(&self) -> Tensor<B, 2> {
        match &self.weight {
            BaseWeight::Dense(w) => w.clone(),
            BaseWeight::Quant(q) => q.dequantize(),
        }
    }

    /// `x Wᵀ` (no bias, no adapter); `x` is `[N, in]`.
    pub fn weight_forward(&self, x: Tensor<B, 2>) -> Tensor<B, 2> {
        match &self.weight {
            BaseWeight::Dense(w) => {
                let w = w.clone().cast(x.dtype());
                x.matmul(w.transpose())
            }
            BaseWeight::Quant(q) => q.forward(x),
        }
    }

    /// The bias in the dtype of `like`.
    pub fn bias_like(&self, bias: &Tensor<B, 1>, like: &Tensor<B, 2>) -> Tensor<B, 1> {
        bias.clone().cast(like.dtype())
    }

    /// `x Wᵀ + b` without the adapter; `x` is `[N, in]`.
    pub fn base_forward(&self, x: Tensor<B, 2>) -> Tensor<B, 2> {
        let y = self.weight_forward(x);
        match &self.bias {
            Some(b) => {
                let b = self.bias_like(b, &y);
                y + b.unsqueeze_dim(0)
            }
            None => y,
        }
    }

    /// The full forward pass: base plus adapter.
    pub fn forward(&self, x: Tensor<B, 2>, ctx: &AdapterCtx<B>) -> Tensor<B, 2> {
        match &self.adapter {
            Some(a) => a.forward(self, x, ctx),
            None => self.base_forward(x),
        }
    }

    /// Bytes the frozen weight occupies (quantised or dense).
    pub fn weight_bytes(&self) -> usize {
        match &self.weight {
            BaseWeight::Dense(w) => w.dims().iter().product::<usize>() * w.dtype().size(),
            BaseWeight::Quant(q) => q.bytes(),
        }
    }

    /// Number of base parameters (weight and bias).
    pub fn num_params(&self) -> usize {
        self.in_features * self.out_features + self.bias.as_ref().map_or(0, |_| self.out_features)
    }
}
