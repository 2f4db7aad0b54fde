//! The backend extension for quantised linear layers, with a custom autodiff backward.
//!
//! Rust has no specialisation, so the operation `y = x @ Wᵀ` with a quantised `W` is a method of
//! a backend-extension trait, [`QuantBackend`], implemented for every backend peftlab builds:
//! plain backends (`Flex`; `Cuda` with the `cuda` feature; `LibTorch` with `tch`) dequantise and
//! call `matmul`, and `Autodiff<B, C>` registers its own backward step.
//!
//! Why a custom backward: burn-autodiff's `float_matmul` keeps the right-hand side for the
//! backward pass whenever the left-hand side is tracked (`burn-autodiff` 0.21, `ops/tensor.rs`),
//! so a plain `x.matmul(dequantize(W).transpose())` keeps a dense float copy of every quantised
//! layer alive until `backward()`, and QLoRA saves no memory. Here the saved state is the
//! quantised weight itself (packed codes and scales; a reference-counted handle, no copy), and
//! the backward step dequantises again to compute `grad_x = grad_y @ W`. The frozen weight gets
//! no gradient. This is the pattern of burn's `examples/custom-cubecl-kernel/src/backward.rs` and
//! of QLoRA (Dettmers et al. 2023, arXiv:2305.14314, §3), which dequantises in both passes.

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{unary, Backward, Ops, OpsKind};
use burn::backend::Autodiff;
use burn::tensor::backend::Backend;
use burn::tensor::{Tensor, TensorPrimitive};

use super::linear::{QuantWeight, Storage};

/// A backend that can run quantised linear layers (and, through its supertraits, the fused
/// cross-entropy of [`crate::train::cross_entropy`] and the fused attention steps of
/// [`crate::model::fused`]).
///
/// Model code that holds [`QuantWeight`]s is generic over `B: QuantBackend` (instead of
/// `B: Backend`); training code over `B: AutodiffBackend + QuantBackend` (every
/// `Autodiff<B: QuantBackend>` is one). Implemented for `Flex`, `Autodiff<B, C>`, and with the
/// matching features `Cuda` (f32/f16/bf16) and `LibTorch` (f32/f16/bf16).
pub trait QuantBackend:
    crate::train::cross_entropy::CrossEntropyBackend + crate::model::fused::AttentionBackend
{
    /// Where [`QuantWeight::quantize`] keeps a quantised weight on this backend by default:
    /// [`Storage::Host`] on CPU backends (dequantised by the parallel host kernel, no copy),
    /// [`Storage::Device`] elsewhere (dequantised with tensor ops on the device).
    fn preferred_storage() -> Storage {
        Storage::Device
    }

    /// `y = x @ Wᵀ` for `x` of shape `[m, in]`; returns `[m, out]` in `x`'s dtype.
    /// The default dequantises `W` (a temporary) and multiplies.
    fn quant_linear(x: Tensor<Self, 2>, weight: &QuantWeight<Self>) -> Tensor<Self, 2> {
        dense_linear(x, weight)
    }
}

/// `x @ dequantize(W)ᵀ` with the dense weight in `x`'s dtype (no autodiff bookkeeping).
pub(crate) fn dense_linear<B: Backend>(x: Tensor<B, 2>, weight: &QuantWeight<B>) -> Tensor<B, 2> {
    let w = weight.dequantize_as(x.dtype());
    x.matmul(w.transpose())
}

impl QuantBackend for burn::backend::Flex {
    fn preferred_storage() -> Storage {
        Storage::Host
    }
}

crate::backend::impl_defaults_for_optional_backends!(crate::quant::QuantBackend);

/// Backward step of the quantised linear layer: `grad_x = grad_y @ dequantize(W)`.
#[derive(Debug)]
struct QuantLinearBackward;

impl<B: QuantBackend> Backward<B, 1> for QuantLinearBackward {
    /// The quantised weight on the inner backend (shared handles, no dense copy).
    type State = QuantWeight<B>;

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let weight = ops.state;
        unary::<B, _>(ops.parents, ops.node, grads, |grad| {
            let grad = Tensor::<B, 2>::from_primitive(TensorPrimitive::Float(grad));
            let w = weight.dequantize_as(grad.dtype());
            grad.matmul(w).into_primitive().tensor()
        });
    }
}

impl<B: QuantBackend, C: CheckpointStrategy> QuantBackend for Autodiff<B, C> {
    fn preferred_storage() -> Storage {
        B::preferred_storage()
    }

    fn quant_linear(x: Tensor<Self, 2>, weight: &QuantWeight<Self>) -> Tensor<Self, 2> {
        let inner_weight = weight.inner();
        let x = x.into_primitive().tensor();
        let node = x.node.clone();
        let x_inner = Tensor::<B, 2>::from_primitive(TensorPrimitive::Float(x.primitive));
        let y = B::quant_linear(x_inner, &inner_weight)
            .into_primitive()
            .tensor();
        let out = match QuantLinearBackward
            .prepare::<C>([node])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => prep.finish(inner_weight, y),
            OpsKind::UnTracked(prep) => prep.finish(y),
        };
        Tensor::from_primitive(TensorPrimitive::Float(out))
    }
}
