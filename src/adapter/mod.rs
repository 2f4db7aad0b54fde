//! Adapters: parameter-efficient updates attached to linear layers.
//!
//! Every method lives in its own file and implements [`LinearAdapter`]. Adapters compute on
//! activations; the frozen base weight is only read.

use crate::model::linear::Linear;
use burn::tensor::{backend::Backend, Tensor};

/// Per-forward state the adapters need: training mode (dropout) and, for FLix, which feature
/// adapters are active for each row.
pub struct AdapterCtx<B: Backend> {
    /// Whether this is a training forward pass (enables dropout).
    pub train: bool,
    _marker: std::marker::PhantomData<B>,
}

impl<B: Backend> AdapterCtx<B> {
    /// Inference context: no dropout, every feature adapter as set on the model.
    pub fn eval() -> Self {
        AdapterCtx { train: false, _marker: std::marker::PhantomData }
    }
}

/// A parameter-efficient update of one linear layer.
pub trait LinearAdapter<B: Backend> {
    /// Computes the layer output `base(x) + Δ(x)` (or the method's own combination).
    fn forward(&self, layer: &Linear<B>, x: Tensor<B, 2>, ctx: &AdapterCtx<B>) -> Tensor<B, 2>;
}
