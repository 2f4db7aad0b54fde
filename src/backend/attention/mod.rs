//! Fused attention element-wise steps with their own autodiff backward: RoPE (with the
//! `[B, T, H, d] → [B, H, T, d]` transpose folded in) and the scaled, masked softmax.
//!
//! Written as ordinary tensor ops, both are broadcasts over a transposed view: `x · cos` with
//! `x: [B, H, T, d]` (a `swap_dims` view) and `cos: [1, 1, T, d]`, and `scores + mask` with
//! `mask: [B, 1, T, S]`. burn-flex's fast element-wise paths take neither shape, so they fall
//! back to a scalar strided walk, single-threaded: on CPU they cost more than every projection
//! of a small model together. Here each is one pass, parallel over rows.
//!
//! Semantics are those of transformers' `apply_rotary_pos_emb` (`x·cos + rotate_half(x)·sin`)
//! and `eager_attention_forward` (`softmax(q kᵀ · scale + mask)` in f32). The default
//! implementations are exactly those tensor ops (used by the GPU backends); `Flex` overrides
//! them with host kernels ([`flex`]) that compute the same expressions element by element, and
//! `Autodiff<B, C>` registers one backward step per op instead of a graph of broadcasts:
//!
//! - RoPE is linear, `y = R x`, so `∂x = Rᵀ ∂y`: `g·cos + rotate_halfᵀ(g·sin)` with
//!   `rotate_halfᵀ(z) = cat(z₂, −z₁)`, transposed back to `[B, T, H, d]`.
//! - For `p = softmax(scale·s + m)`, `∂s = scale · p ⊙ (g − Σⱼ gⱼ pⱼ)`.

pub mod flex;

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{unary, Backward, Ops, OpsKind};
use burn::backend::Autodiff;
use burn::tensor::activation::softmax;
use burn::tensor::backend::Backend;
use burn::tensor::{DType, Tensor, TensorPrimitive};

/// The additive value of a masked attention score (exp underflows to exactly 0 in f32).
pub const MASKED: f32 = -1.0e9;

/// A backend with the fused attention steps. Plain backends use the tensor-op defaults;
/// `Flex` has host kernels; `Autodiff<B, C>` registers the backward steps of this module.
pub trait AttentionBackend: Backend {
    /// RoPE of `x: [B, T, H, d]` (as the projections give it) with tables `cos`, `sin` of shape
    /// `[1 or B, 1, T, d]` in `x`'s dtype; returns the rotated `[B, H, T, d]`.
    fn rope(x: Tensor<Self, 4>, cos: &Tensor<Self, 4>, sin: &Tensor<Self, 4>) -> Tensor<Self, 4> {
        rope_ops(x, cos, sin)
    }

    /// The adjoint of [`AttentionBackend::rope`]: `g: [B, H, T, d]` → `[B, T, H, d]`.
    fn rope_backward(
        g: Tensor<Self, 4>,
        cos: &Tensor<Self, 4>,
        sin: &Tensor<Self, 4>,
    ) -> Tensor<Self, 4> {
        rope_backward_ops(g, cos, sin)
    }

    /// `softmax(scores · scale + mask)` over the last axis, in f32, returned in the dtype of
    /// `scores: [B, H, T, S]`; `mask: [B or 1, 1, T, S]` is additive f32.
    fn masked_softmax(
        scores: Tensor<Self, 4>,
        mask: &Tensor<Self, 4>,
        scale: f32,
    ) -> Tensor<Self, 4> {
        masked_softmax_ops(scores, mask, scale)
    }

    /// Writes `value: [B, H, T, d]` into `cache: [B, H, C, d]` at positions `at..at + T` of the
    /// third axis and returns the cache. The caller checks `at + T ≤ C` and the other dims.
    ///
    /// The default is `slice_assign`, which backends with in-place kernels (CubeCL) run without
    /// copying a uniquely held buffer; `Flex` writes the rows into its own buffer (burn-flex's
    /// `slice_assign` copies the whole tensor). Under `Autodiff` the write is not tracked: the
    /// result is a constant, as a KV cache only serves inference.
    fn cache_write(cache: Tensor<Self, 4>, value: Tensor<Self, 4>, at: usize) -> Tensor<Self, 4> {
        cache_write_ops(cache, value, at)
    }

    /// The gradient of the scores from the probabilities `p` and their gradient `g`:
    /// `scale · p ⊙ (g − Σ g ⊙ p)`, in `g`'s dtype.
    fn masked_softmax_backward(
        p: Tensor<Self, 4>,
        g: Tensor<Self, 4>,
        scale: f32,
    ) -> Tensor<Self, 4> {
        masked_softmax_backward_ops(p, g, scale)
    }
}

/// `cat(−x₂, x₁)` on the last axis.
fn rotate_half<B: Backend>(x: Tensor<B, 4>) -> Tensor<B, 4> {
    let [b, h, t, d] = x.dims();
    let x1 = x.clone().slice([0..b, 0..h, 0..t, 0..d / 2]);
    let x2 = x.slice([0..b, 0..h, 0..t, d / 2..d]);
    Tensor::cat(vec![x2.neg(), x1], 3)
}

/// The adjoint of [`rotate_half`]: `cat(z₂, −z₁)`.
fn rotate_half_adjoint<B: Backend>(z: Tensor<B, 4>) -> Tensor<B, 4> {
    let [b, h, t, d] = z.dims();
    let z1 = z.clone().slice([0..b, 0..h, 0..t, 0..d / 2]);
    let z2 = z.slice([0..b, 0..h, 0..t, d / 2..d]);
    Tensor::cat(vec![z2, z1.neg()], 3)
}

/// [`AttentionBackend::rope`] with tensor ops.
pub fn rope_ops<B: Backend>(
    x: Tensor<B, 4>,
    cos: &Tensor<B, 4>,
    sin: &Tensor<B, 4>,
) -> Tensor<B, 4> {
    let x = x.swap_dims(1, 2);
    x.clone() * cos.clone() + rotate_half(x) * sin.clone()
}

/// [`AttentionBackend::rope_backward`] with tensor ops.
pub fn rope_backward_ops<B: Backend>(
    g: Tensor<B, 4>,
    cos: &Tensor<B, 4>,
    sin: &Tensor<B, 4>,
) -> Tensor<B, 4> {
    let gx = g.clone() * cos.clone() + rotate_half_adjoint(g * sin.clone());
    gx.swap_dims(1, 2)
}

/// [`AttentionBackend::cache_write`] with tensor ops.
pub fn cache_write_ops<B: Backend>(
    cache: Tensor<B, 4>,
    value: Tensor<B, 4>,
    at: usize,
) -> Tensor<B, 4> {
    let [b, h, t, d] = value.dims();
    cache.slice_assign([0..b, 0..h, at..at + t, 0..d], value)
}

/// [`AttentionBackend::masked_softmax`] with tensor ops.
pub fn masked_softmax_ops<B: Backend>(
    scores: Tensor<B, 4>,
    mask: &Tensor<B, 4>,
    scale: f32,
) -> Tensor<B, 4> {
    let dtype = scores.dtype();
    let s = scores.cast(DType::F32);
    softmax(s.mul_scalar(scale) + mask.clone(), 3).cast(dtype)
}

/// [`AttentionBackend::masked_softmax_backward`] with tensor ops.
pub fn masked_softmax_backward_ops<B: Backend>(
    p: Tensor<B, 4>,
    g: Tensor<B, 4>,
    scale: f32,
) -> Tensor<B, 4> {
    let dtype = g.dtype();
    let (p, g) = (p.cast(DType::F32), g.cast(DType::F32));
    let dot = (g.clone() * p.clone()).sum_dim(3);
    (p * (g - dot)).mul_scalar(scale).cast(dtype)
}

impl AttentionBackend for burn::backend::Flex {
    fn rope(x: Tensor<Self, 4>, cos: &Tensor<Self, 4>, sin: &Tensor<Self, 4>) -> Tensor<Self, 4> {
        flex::rope(&x, cos, sin, false).unwrap_or_else(|| rope_ops(x, cos, sin))
    }

    fn rope_backward(
        g: Tensor<Self, 4>,
        cos: &Tensor<Self, 4>,
        sin: &Tensor<Self, 4>,
    ) -> Tensor<Self, 4> {
        flex::rope(&g, cos, sin, true).unwrap_or_else(|| rope_backward_ops(g, cos, sin))
    }

    fn masked_softmax(
        scores: Tensor<Self, 4>,
        mask: &Tensor<Self, 4>,
        scale: f32,
    ) -> Tensor<Self, 4> {
        flex::masked_softmax(&scores, mask, scale)
            .unwrap_or_else(|| masked_softmax_ops(scores, mask, scale))
    }

    fn masked_softmax_backward(
        p: Tensor<Self, 4>,
        g: Tensor<Self, 4>,
        scale: f32,
    ) -> Tensor<Self, 4> {
        flex::masked_softmax_backward(&p, &g, scale)
            .unwrap_or_else(|| masked_softmax_backward_ops(p, g, scale))
    }

    fn cache_write(cache: Tensor<Self, 4>, value: Tensor<Self, 4>, at: usize) -> Tensor<Self, 4> {
        match flex::cache_write(cache, &value, at) {
            (written, true) => written,
            (cache, false) => cache_write_ops(cache, value, at),
        }
    }
}

crate::backend::impl_defaults_for_optional_backends!(crate::backend::attention::AttentionBackend);

/// Backward step of RoPE: the adjoint rotation of the incoming gradient.
#[derive(Debug)]
struct RopeBackward;

impl<B: AttentionBackend> Backward<B, 1> for RopeBackward {
    /// The cos and sin tables.
    type State = (B::FloatTensorPrimitive, B::FloatTensorPrimitive);

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let (cos, sin) = ops.state;
        unary::<B, _>(ops.parents, ops.node, grads, |grad| {
            let g = Tensor::<B, 4>::from_primitive(TensorPrimitive::Float(grad));
            let cos = Tensor::<B, 4>::from_primitive(TensorPrimitive::Float(cos));
            let sin = Tensor::<B, 4>::from_primitive(TensorPrimitive::Float(sin));
            B::rope_backward(g, &cos, &sin).into_primitive().tensor()
        });
    }
}

/// Backward step of the masked softmax, from the saved probabilities.
#[derive(Debug)]
struct MaskedSoftmaxBackward;

impl<B: AttentionBackend> Backward<B, 1> for MaskedSoftmaxBackward {
    /// The probabilities (the op's output) and the scale.
    type State = (B::FloatTensorPrimitive, f32);

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let (p, scale) = ops.state;
        unary::<B, _>(ops.parents, ops.node, grads, |grad| {
            let g = Tensor::<B, 4>::from_primitive(TensorPrimitive::Float(grad));
            let p = Tensor::<B, 4>::from_primitive(TensorPrimitive::Float(p));
            B::masked_softmax_backward(p, g, scale)
                .into_primitive()
                .tensor()
        });
    }
}

impl<B: AttentionBackend, C: CheckpointStrategy> AttentionBackend for Autodiff<B, C> {
    fn cache_write(cache: Tensor<Self, 4>, value: Tensor<Self, 4>, at: usize) -> Tensor<Self, 4> {
        Tensor::from_inner(B::cache_write(cache.inner(), value.inner(), at))
    }

    fn rope(x: Tensor<Self, 4>, cos: &Tensor<Self, 4>, sin: &Tensor<Self, 4>) -> Tensor<Self, 4> {
        let x = x.into_primitive().tensor();
        let node = x.node.clone();
        let x = Tensor::<B, 4>::from_primitive(TensorPrimitive::Float(x.primitive));
        let (cos, sin) = (cos.clone().inner(), sin.clone().inner());
        let out = match RopeBackward.prepare::<C>([node]).compute_bound().stateful() {
            OpsKind::Tracked(prep) => {
                let y = B::rope(x, &cos, &sin).into_primitive().tensor();
                let state = (cos.into_primitive().tensor(), sin.into_primitive().tensor());
                prep.finish(state, y)
            }
            OpsKind::UnTracked(prep) => {
                prep.finish(B::rope(x, &cos, &sin).into_primitive().tensor())
            }
        };
        Tensor::from_primitive(TensorPrimitive::Float(out))
    }

    fn masked_softmax(
        scores: Tensor<Self, 4>,
        mask: &Tensor<Self, 4>,
        scale: f32,
    ) -> Tensor<Self, 4> {
        let s = scores.into_primitive().tensor();
        let node = s.node.clone();
        let s = Tensor::<B, 4>::from_primitive(TensorPrimitive::Float(s.primitive));
        let mask = mask.clone().inner();
        let out = match MaskedSoftmaxBackward
            .prepare::<C>([node])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                let p = B::masked_softmax(s, &mask, scale).into_primitive().tensor();
                prep.finish((p.clone(), scale), p)
            }
            OpsKind::UnTracked(prep) => {
                prep.finish(B::masked_softmax(s, &mask, scale).into_primitive().tensor())
            }
        };
        Tensor::from_primitive(TensorPrimitive::Float(out))
    }
}

#[cfg(test)]
mod tests;
