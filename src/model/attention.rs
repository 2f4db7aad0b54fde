//! Multi-head attention with grouped-query heads, RoPE, optional q/k RMSNorm (Qwen3), q/k/v
//! biases (Qwen2) and sliding windows (Mistral).
//!
//! Vaswani et al. 2017 (arXiv 1706.03762); GQA, Ainslie et al. 2023 (arXiv 2305.13245). The
//! computation follows transformers' `eager_attention_forward`: `softmax(q kᵀ · d^-½ + mask) v`
//! with the softmax in f32. Grouped keys are shared by their query heads (transformers repeats
//! them `heads / kv_heads` times; the products are the same).

use super::kv_cache::KvCache;
use super::linear::AdapterCtx;
use super::linear::Linear;
use super::norm::RmsNorm;
use super::ModelError;
use crate::backend::LmBackend;
use burn::tensor::{DType, Tensor, TensorData};

pub use crate::backend::attention::MASKED;

/// Builds the additive attention mask `[B, 1, T, S]` on the host.
///
/// `key_valid[b][j]` says whether key position `j` (absolute, `0..S`) is a real token; query
/// `i` sits at absolute position `offset + i`. A key is visible when it is real, not in the
/// future, and (with a sliding window `w`) `q - k < w`, as transformers' sliding-window mask.
///
/// With `segments` (packed rows), a key is only visible to queries of the same segment.
pub fn build_mask(
    key_valid: &[Vec<bool>],
    t: usize,
    offset: usize,
    window: Option<usize>,
    segments: Option<&[Vec<u32>]>,
) -> (Vec<f32>, [usize; 4]) {
    let b = key_valid.len();
    let s = key_valid.first().map_or(0, Vec::len);
    let mut m = vec![MASKED; b * t * s];
    for (bi, valid) in key_valid.iter().enumerate() {
        for i in 0..t {
            let q = offset + i;
            let row = &mut m[(bi * t + i) * s..(bi * t + i + 1) * s];
            for (j, slot) in row.iter_mut().enumerate() {
                let same = segments.is_none_or(|sg| sg[bi][j] == sg[bi][q]);
                let visible = valid[j] && j <= q && same && window.is_none_or(|w| q - j < w);
                if visible {
                    *slot = 0.0;
                }
            }
        }
    }
    (m, [b, 1, t, s])
}

/// Per-forward inputs shared by every layer.
pub struct AttnInputs<B: LmBackend> {
    /// Batch size.
    pub batch: usize,
    /// New positions in this forward.
    pub seq: usize,
    /// cos table `[1 or B, 1, T, d]` (compute dtype).
    pub cos: Tensor<B, 4>,
    /// sin table `[1 or B, 1, T, d]`.
    pub sin: Tensor<B, 4>,
    /// Additive mask `[B, 1, T, S]` (f32).
    pub mask: Tensor<B, 4>,
}

/// One attention block.
pub struct Attention<B: LmBackend> {
    /// Query projection.
    pub q_proj: Linear<B>,
    /// Key projection.
    pub k_proj: Linear<B>,
    /// Value projection.
    pub v_proj: Linear<B>,
    /// Output projection.
    pub o_proj: Linear<B>,
    /// Per-head query norm (Qwen3).
    pub q_norm: Option<RmsNorm<B>>,
    /// Per-head key norm (Qwen3).
    pub k_norm: Option<RmsNorm<B>>,
    /// Query heads.
    pub num_heads: usize,
    /// Key/value heads.
    pub num_kv_heads: usize,
    /// Head size.
    pub head_dim: usize,
}

impl<B: LmBackend> Attention<B> {
    /// Runs attention on `x: [B·T, hidden]` and returns `[B·T, hidden]`.
    ///
    /// With a cache (layer index given), the new keys and values are written into it and the
    /// queries attend to its filled prefix; that path is inference-only (the attention product
    /// is detached from autodiff, so no graph holds on to the cache's buffers).
    pub fn forward(
        &self,
        x: Tensor<B, 2>,
        inp: &AttnInputs<B>,
        cache: Option<(&mut KvCache<B>, usize)>,
        ctx: &AdapterCtx<B>,
    ) -> Result<Tensor<B, 2>, ModelError> {
        let (b, t, d) = (inp.batch, inp.seq, self.head_dim);
        let (nh, nkv) = (self.num_heads, self.num_kv_heads);
        let q = self.q_proj.forward(x.clone(), ctx).reshape([b, t, nh, d]);
        let k = self.k_proj.forward(x.clone(), ctx).reshape([b, t, nkv, d]);
        let v = self.v_proj.forward(x, ctx).reshape([b, t, nkv, d]);
        let q = match &self.q_norm {
            Some(n) => n.forward(q),
            None => q,
        };
        let k = match &self.k_norm {
            Some(n) => n.forward(k),
            None => k,
        };
        // RoPE, transposed to [B, H, T, d] in the same pass (see `crate::backend::attention`).
        let q = B::rope(q, &inp.cos, &inp.sin);
        let k = B::rope(k, &inp.cos, &inp.sin);
        let v = v.swap_dims(1, 2);
        let (q, k, v) = match cache {
            Some((c, layer)) => {
                let (k, v) = c.write(layer, k, v)?;
                (q.detach(), k, v)
            }
            None => (q, k, v),
        };
        let s = k.dims()[2];
        // Grouped-query attention without repeating keys and values: transformers' `repeat_kv`
        // gives query head `g·rep + r` the key/value head `g`, so the `rep` query heads of a
        // group stack into one [rep·T, d] matrix against that group's [S, d] keys.
        let rep = nh / nkv;
        let q = q.reshape([b, nkv, rep * t, d]);
        let scores = q.matmul(k.transpose()).reshape([b, nh, t, s]);
        let probs = B::masked_softmax(scores, &inp.mask, (d as f64).powf(-0.5) as f32);
        let out = probs
            .reshape([b, nkv, rep * t, s])
            .matmul(v)
            .reshape([b, nh, t, d])
            .swap_dims(1, 2)
            .reshape([b * t, nh * d]);
        Ok(self.o_proj.forward(out, ctx))
    }
}

/// Uploads a host mask to the device.
pub fn mask_tensor<B: LmBackend>(mask: (Vec<f32>, [usize; 4]), device: &B::Device) -> Tensor<B, 4> {
    Tensor::from_data(TensorData::new(mask.0, mask.1), (device, DType::F32))
}
