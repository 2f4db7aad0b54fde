//! RMSNorm (Zhang & Sennrich 2019, arXiv 1910.07467), computed in f32 as transformers'
//! `LlamaRMSNorm`: `w · (x / sqrt(mean(x²) + ε)).to(dtype)`. Used by the decoder layer and by
//! Qwen3's q/k norms in attention.

use crate::backend::LmBackend;
use burn::tensor::{DType, Tensor};

/// Root-mean-square normalisation over the last axis.
pub struct RmsNorm<B: LmBackend> {
    /// Scale, `[dim]`.
    pub weight: Tensor<B, 1>,
    /// Epsilon inside the square root.
    pub eps: f64,
}

impl<B: LmBackend> RmsNorm<B> {
    /// Normalises over the last axis in f32 and scales.
    pub fn forward<const D: usize>(&self, x: Tensor<B, D>) -> Tensor<B, D> {
        let dtype = x.dtype();
        let xf = x.cast(DType::F32);
        let var = xf.clone().square().mean_dim(D - 1);
        let normed = xf * var.add_scalar(self.eps).sqrt().recip();
        let normed = normed.cast(dtype);
        let mut shape = [1usize; D];
        shape[D - 1] = self.weight.dims()[0];
        let w = self.weight.clone();
        let w = w.cast(dtype);
        normed * w.reshape(shape)
    }
}
