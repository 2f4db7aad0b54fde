//! The backend extension for quantised linear layers, with a custom autodiff backward.
//!
//! Rust has no specialisation, so the operation `y = x @ Wᵀ` with a quantised `W` is a method of
//! a backend-extension trait, [`QuantOps`], implemented for every backend peftlab builds:
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

use burn::tensor::FloatDType;

use super::linear::{QuantWeight, Storage};
use super::{QuantConfig, QuantError};

/// A backend that can run quantised linear layers, one of the extensions the umbrella
/// `crate::backend::LmBackend` bundles.
///
/// Implemented for `Flex`, `Autodiff<B, C>`, and with the matching features `Cuda`
/// (f32/f16/bf16) and `LibTorch` (f32/f16/bf16).
pub trait QuantOps: Backend {
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

/// `x @ Wᵀ` without autodiff bookkeeping: LLM.int8 for `Int8` weights
/// ([`super::llm_int8::llm_int8_linear`]), else `x @ dequantize(W)ᵀ` with the dense weight in
/// `x`'s dtype.
pub(crate) fn dense_linear<B: Backend>(x: Tensor<B, 2>, weight: &QuantWeight<B>) -> Tensor<B, 2> {
    match weight.llm_int8_threshold() {
        Some(t) => super::llm_int8::llm_int8_linear(x, weight, t, None),
        None => dequant_linear(x, weight),
    }
}

/// `x @ dequantize(W)ᵀ` with the dense weight in `x`'s dtype.
pub(crate) fn dequant_linear<B: Backend>(x: Tensor<B, 2>, weight: &QuantWeight<B>) -> Tensor<B, 2> {
    let w = weight.dequantize_as(x.dtype());
    x.matmul(w.transpose())
}

impl QuantOps for burn::backend::Flex {
    fn preferred_storage() -> Storage {
        Storage::Host
    }
}

/// Implements a backend-extension trait whose methods all have defaults (the tensor-op paths)
/// for the optional backends: `Cuda` (f32/f16/bf16) with the `cuda` feature and `LibTorch`
/// (f32/f16/bf16) with `tch`. `Flex` and `Autodiff` have their own impls beside each trait.
macro_rules! impl_defaults_for_optional_backends {
    ($tr:path) => {
        #[cfg(feature = "cuda")]
        impl $tr for burn::backend::Cuda<f32> {}
        #[cfg(feature = "cuda")]
        impl $tr for burn::backend::Cuda<half::f16> {}
        #[cfg(feature = "cuda")]
        impl $tr for burn::backend::Cuda<half::bf16> {}
        #[cfg(feature = "tch")]
        impl $tr for burn::backend::LibTorch<f32> {}
        #[cfg(feature = "tch")]
        impl $tr for burn::backend::LibTorch<half::f16> {}
        #[cfg(feature = "tch")]
        impl $tr for burn::backend::LibTorch<half::bf16> {}
    };
}
pub(crate) use impl_defaults_for_optional_backends;

impl_defaults_for_optional_backends!(crate::quant::QuantOps);

/// Backward step of the quantised linear layer: `grad_x = grad_y @ dequantize(W)`.
#[derive(Debug)]
struct QuantLinearBackward;

impl<B: QuantOps> Backward<B, 1> for QuantLinearBackward {
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

impl<B: QuantOps, C: CheckpointStrategy> QuantOps for Autodiff<B, C> {
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

impl<B: QuantOps> QuantWeight<B> {
    /// Quantises a float32 `[out, in]` weight with the backend's preferred storage; `none` keeps
    /// it dense in float32. See [`QuantWeight::quantize_with`].
    pub fn quantize(
        data: &[f32],
        shape: [usize; 2],
        cfg: &QuantConfig,
        device: &B::Device,
    ) -> Result<Self, QuantError> {
        Self::quantize_with(
            data,
            shape,
            cfg,
            device,
            B::preferred_storage(),
            FloatDType::F32,
        )
    }

    /// `x @ Wᵀ` for `x` of shape `[..., in]`, returning `[..., out]` in `x`'s dtype.
    /// Under autodiff only the quantised weight is kept for the backward pass.
    /// The last dimension of `x` must equal `in_features` (the loader checks shapes).
    pub fn forward<const D: usize>(&self, x: Tensor<B, D>) -> Tensor<B, D> {
        let dims = x.dims();
        let inp = dims[D - 1];
        let rows = dims[..D - 1].iter().product::<usize>();
        let y = B::quant_linear(x.reshape([rows, inp]), self);
        let mut out_dims = dims;
        out_dims[D - 1] = self.out_features();
        y.reshape(out_dims)
    }
}
