//! The interface adapters plug into.
//!
//! The network knows nothing about adapter methods: a [`Linear`] layer has one optional slot,
//! a `Box<dyn LinearAdapter<B>>`, and calls it with the per-forward [`AdapterCtx`] (training
//! mode, dropout generator, FLix-style row routing). Everything an adapter method needs from the
//! network goes through this file, and every method (`crate::adapter::*`) implements
//! [`LinearAdapter`]; the dependency points from adapters to the model, never back.
//!
//! Besides the forward pass, the slot offers what any caller may ask of the update on one layer
//! without knowing its method: its tensors ([`Param`], for the optimizer and for saving), the
//! dense weight with the update folded in ([`LinearAdapter::merged`]) and the update as a
//! low-rank pair ([`LinearAdapter::low_rank`]).

use super::linear::Linear;
use crate::quant::QuantBackend;
use burn::tensor::{Tensor, TensorData};
use std::cell::RefCell;
use std::collections::HashMap;

/// A tensor of an adapter, with the key suffix and shape PEFT saves it under.
pub struct Param<B: QuantBackend> {
    /// Key suffix after the module path, e.g. `lora_A.weight` or `lora_magnitude_vector`.
    pub key: String,
    /// The value, stored 2-D internally.
    pub value: Tensor<B, 2>,
    /// The shape in PEFT files (e.g. `[out]` for a DoRA magnitude stored as `[1, out]`).
    pub saved_shape: Vec<usize>,
    /// Whether the optimizer updates it.
    pub trainable: bool,
}

impl<B: QuantBackend> Param<B> {
    /// A trainable parameter from host values of `shape2d`, saved as `saved_shape`.
    pub fn new(
        key: &str,
        data: Vec<f32>,
        shape2d: [usize; 2],
        saved_shape: Vec<usize>,
        device: &B::Device,
    ) -> Self {
        Param {
            key: key.to_string(),
            value: Tensor::from_data(TensorData::new(data, shape2d), device),
            saved_shape,
            trainable: true,
        }
    }

    /// Number of elements.
    pub fn numel(&self) -> usize {
        self.value.dims().iter().product()
    }

    /// The value without any autodiff graph (for inference and bookkeeping).
    pub fn get(&self) -> Tensor<B, 2> {
        self.value.clone()
    }
}

/// Which rows of the flattened batch a routed part of an adapter applies to.
#[derive(Clone)]
pub enum RowMask<B: QuantBackend> {
    /// Active (or not) for every row.
    All(bool),
    /// Active where the `[N, 1]` mask is 1.
    Rows(Tensor<B, 2>),
}

/// Per-forward state the adapters need: training mode, the dropout generator and row routing.
pub struct AdapterCtx<B: QuantBackend> {
    /// Whether this is a training forward pass (enables dropout).
    pub train: bool,
    /// Generator for dropout masks (ChaCha8, seeded by the trainer).
    pub rng: Option<RefCell<crate::rng::Rng>>,
    /// Routing (FLix): `"feature=value"` → row mask. Missing keys fall back to the adapter's
    /// own selection.
    pub routing: HashMap<String, RowMask<B>>,
}

impl<B: QuantBackend> AdapterCtx<B> {
    /// Inference context: no dropout, no routing.
    pub fn eval() -> Self {
        AdapterCtx {
            train: false,
            rng: None,
            routing: HashMap::new(),
        }
    }

    /// Training context with a dropout generator.
    pub fn train(rng: crate::rng::Rng) -> Self {
        AdapterCtx {
            train: true,
            rng: Some(RefCell::new(rng)),
            routing: HashMap::new(),
        }
    }
}

/// A request the update on a layer cannot serve (e.g. a low-rank form of DoRA), with the reason.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Unsupported(pub String);

/// An update written as `Δ = scale · B A` (`A: [r, in]`, `B: [out, r]`).
pub struct LowRank<B: QuantBackend> {
    /// `[r, in]`.
    pub a: Tensor<B, 2>,
    /// `[out, r]`.
    pub b: Tensor<B, 2>,
    /// Multiplier of `B A`.
    pub scale: f64,
}

/// The update one adapter method applies to one linear layer: what a [`Linear`]'s slot holds.
pub trait LinearAdapter<B: QuantBackend> {
    /// Computes the layer output with the update applied (`layer` gives the frozen base).
    fn forward(&self, layer: &Linear<B>, x: Tensor<B, 2>, ctx: &AdapterCtx<B>) -> Tensor<B, 2>;
    /// The adapter's tensors (trainable and frozen-but-saved).
    fn params(&self) -> Vec<&Param<B>>;
    /// Mutable access to the tensors.
    fn params_mut(&mut self) -> Vec<&mut Param<B>>;
    /// The dense weight `[out, in]` and bias with the update folded in.
    fn merged(
        &self,
        layer: &Linear<B>,
    ) -> Result<(Tensor<B, 2>, Option<Tensor<B, 1>>), Unsupported>;
    /// The update as low-rank factors, when it is one.
    fn low_rank(&self, layer: &Linear<B>) -> Result<LowRank<B>, Unsupported>;
}
