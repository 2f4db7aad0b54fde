//! The decoder layer and its SwiGLU feed-forward block (Shazeer 2020, arXiv 2002.05202):
//! `down(silu(gate(x)) · up(x))`. The layer is pre-norm ([`super::norm::RmsNorm`]) with
//! residuals.

use super::attention::{Attention, AttnInputs};
use super::kv_cache::KvCache;
use super::linear::AdapterCtx;
use super::linear::Linear;
pub use super::norm::RmsNorm;
use super::ModelError;
use crate::backend::LmBackend;
use burn::tensor::{activation::silu, Tensor};

/// The gated feed-forward block.
pub struct Mlp<B: LmBackend> {
    /// Gate projection.
    pub gate_proj: Linear<B>,
    /// Up projection.
    pub up_proj: Linear<B>,
    /// Down projection.
    pub down_proj: Linear<B>,
}

impl<B: LmBackend> Mlp<B> {
    /// `down(silu(gate(x)) · up(x))`.
    pub fn forward(&self, x: Tensor<B, 2>, ctx: &AdapterCtx<B>) -> Tensor<B, 2> {
        let g = silu(self.gate_proj.forward(x.clone(), ctx));
        let u = self.up_proj.forward(x, ctx);
        self.down_proj.forward(g * u, ctx)
    }
}

/// One pre-norm decoder layer.
pub struct DecoderLayer<B: LmBackend> {
    /// Norm before attention.
    pub input_layernorm: RmsNorm<B>,
    /// Self-attention.
    pub self_attn: Attention<B>,
    /// Norm before the MLP.
    pub post_attention_layernorm: RmsNorm<B>,
    /// Feed-forward block.
    pub mlp: Mlp<B>,
}

impl<B: LmBackend> DecoderLayer<B> {
    /// `x + attn(norm(x))`, then `x + mlp(norm(x))`, on `[B·T, hidden]`.
    pub fn forward(
        &self,
        x: Tensor<B, 2>,
        inp: &AttnInputs<B>,
        cache: Option<(&mut KvCache<B>, usize)>,
        ctx: &AdapterCtx<B>,
    ) -> Result<Tensor<B, 2>, ModelError> {
        let h = self
            .self_attn
            .forward(self.input_layernorm.forward(x.clone()), inp, cache, ctx)?;
        let x = x + h;
        let h = self
            .mlp
            .forward(self.post_attention_layernorm.forward(x.clone()), ctx);
        Ok(x + h)
    }

    /// The layer's linear modules with their short names (`self_attn.q_proj`, ...).
    pub fn linears_mut(&mut self) -> Vec<(&'static str, &mut Linear<B>)> {
        vec![
            ("self_attn.q_proj", &mut self.self_attn.q_proj),
            ("self_attn.k_proj", &mut self.self_attn.k_proj),
            ("self_attn.v_proj", &mut self.self_attn.v_proj),
            ("self_attn.o_proj", &mut self.self_attn.o_proj),
            ("mlp.gate_proj", &mut self.mlp.gate_proj),
            ("mlp.up_proj", &mut self.mlp.up_proj),
            ("mlp.down_proj", &mut self.mlp.down_proj),
        ]
    }

    /// Immutable view of the layer's linear modules.
    pub fn linears(&self) -> Vec<(&'static str, &Linear<B>)> {
        vec![
            ("self_attn.q_proj", &self.self_attn.q_proj),
            ("self_attn.k_proj", &self.self_attn.k_proj),
            ("self_attn.v_proj", &self.self_attn.v_proj),
            ("self_attn.o_proj", &self.self_attn.o_proj),
            ("mlp.gate_proj", &self.mlp.gate_proj),
            ("mlp.up_proj", &self.mlp.up_proj),
            ("mlp.down_proj", &self.mlp.down_proj),
        ]
    }
}
