//! VeRA: vector-based random matrix adaptation (Kopiczko et al. 2024, arXiv 2310.11454).
//!
//! One pair of frozen random matrices is shared by every adapted layer, sized for the largest
//! layer: `A_sh: [r, max_in]`, `B_sh: [max_out, r]`. Each layer trains two vectors and computes
//! `y = W x + b + λ_b ⊙ (B_sh[:out] (λ_d ⊙ (A_sh[:, :in] dropout(x))))` (PEFT `vera/layer.py`),
//! with no alpha. `λ_d` starts at `d_initial`, `λ_b` at 0, so the initial update is zero. The
//! shared matrices use gain-√2 Kaiming-uniform (`U(±√(6/fan_in))`) from a generator seeded by
//! `projection_seed` (ChaCha8: peftlab's stream, not torch's), and are always saved
//! (`base_model.vera_A`, `base_model.vera_B`) so that the adapter is reproducible anywhere.

use super::lora::factors;
use super::{dropout, AdapterCtx, AdapterError, LinearAdapter, LoraFactors, Param};
use crate::model::linear::Linear;
use crate::quant::QuantBackend;
use burn::tensor::Tensor;

/// VeRA on one linear layer.
pub struct VeraLayer<B: QuantBackend> {
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

impl<B: QuantBackend> VeraLayer<B> {
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

impl<B: QuantBackend> LinearAdapter<B> for VeraLayer<B> {
    fn method(&self) -> &'static str {
        "vera"
    }

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
    ) -> Result<(Tensor<B, 2>, Option<Tensor<B, 1>>), AdapterError> {
        let (a, b) = self.scaled_factors();
        Ok((layer.dense_weight() + b.matmul(a), layer.bias.clone()))
    }

    fn lora_factors(&self, _layer: &Linear<B>) -> Result<LoraFactors, AdapterError> {
        let (a, b) = self.scaled_factors();
        factors(a, b, 1.0)
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }

    fn as_any_mut(&mut self) -> &mut dyn std::any::Any {
        self
    }
}
