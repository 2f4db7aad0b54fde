//! Adapters: parameter-efficient updates attached to linear layers.
//!
//! Every method lives in its own file and implements [`LinearAdapter`]: [`lora`] (LoRA and
//! rsLoRA), [`dora`], [`vera`], [`adalora`], [`pissa`] (an initialisation of LoRA),
//! [`ia3`] and [`flix`]. Adapters compute on activations (`y = Wx + b + Δ(x)`); the frozen base
//! weight is only read. [`attach`] puts adapters on a model, [`peft_io`] reads and writes PEFT's
//! on-disk format, [`targets`] selects modules the way PEFT does.

pub mod adalora;
pub mod attach;
pub mod dora;
pub mod flix;
pub mod ia3;
pub mod init;
pub mod lora;
pub mod options;
pub mod peft_io;
pub mod pissa;
pub mod state;
pub mod svd;
pub mod targets;
pub mod vera;

pub use options::{AdapterOptions, Method, Targets};

use crate::model::linear::Linear;
use crate::quant::QuantBackend;
use burn::tensor::{Tensor, TensorData};
use std::cell::RefCell;
use std::collections::HashMap;

/// Errors of adapter creation, loading, saving and merging.
#[derive(Debug, thiserror::Error)]
pub enum AdapterError {
    /// A bad option value.
    #[error("{0}")]
    Option(String),
    /// The target specification matched nothing.
    #[error("targets {targets} match no module (module names: {available})")]
    NoTargets {
        /// What the user asked for.
        targets: String,
        /// The linear modules of the model.
        available: String,
    },
    /// A file problem.
    #[error("{path}: {msg}")]
    File {
        /// The file.
        path: String,
        /// What went wrong.
        msg: String,
    },
    /// A tensor of a saved adapter does not fit the model.
    #[error("adapter tensor '{name}' has shape {found:?}, but this model needs {expected:?}")]
    Shape {
        /// PEFT key.
        name: String,
        /// Needed shape.
        expected: Vec<usize>,
        /// Shape in the file.
        found: Vec<usize>,
    },
    /// An operation the method cannot do.
    #[error("{0}")]
    Unsupported(String),
    /// No adapter is attached.
    #[error("no adapter is attached (call add_adapter or load_adapter first)")]
    NoAdapter,
    /// The adapter would not fit in memory (checked before allocating).
    #[error(transparent)]
    Size(#[from] crate::limits::SizeError),
    /// Ctrl-C during a long initialisation (PiSSA's SVD).
    #[error(transparent)]
    Interrupted(#[from] crate::interrupt::Interrupted),
}

impl AdapterError {
    /// Shorthand for a file error.
    pub fn file(path: impl std::fmt::Display, msg: impl std::fmt::Display) -> Self {
        AdapterError::File {
            path: path.to_string(),
            msg: msg.to_string(),
        }
    }
}

/// The shape of one low-rank update: rank, input and output features.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dims {
    /// Rank.
    pub r: usize,
    /// Input features.
    pub in_f: usize,
    /// Output features.
    pub out_f: usize,
}

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

/// Which FLix feature adapters are active, per row of the flattened batch.
#[derive(Clone)]
pub enum RowMask<B: QuantBackend> {
    /// Active (or not) for every row.
    All(bool),
    /// Active where the `[N, 1]` mask is 1.
    Rows(Tensor<B, 2>),
}

/// Per-forward state the adapters need: training mode, the dropout generator and FLix routing.
pub struct AdapterCtx<B: QuantBackend> {
    /// Whether this is a training forward pass (enables dropout).
    pub train: bool,
    /// Generator for dropout masks (ChaCha8, seeded by the trainer).
    pub rng: Option<RefCell<crate::rng::Rng>>,
    /// FLix routing: `"feature=value"` → row mask. Missing keys fall back to the model's
    /// current feature selection.
    pub routing: HashMap<String, RowMask<B>>,
}

impl<B: QuantBackend> AdapterCtx<B> {
    /// Inference context: no dropout, features as set on the model.
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

/// Inverted dropout on `x` (`[N, F]`) with probability `p`, only in training mode.
pub fn dropout<B: QuantBackend>(x: Tensor<B, 2>, p: f64, ctx: &AdapterCtx<B>) -> Tensor<B, 2> {
    if !ctx.train || p <= 0.0 {
        return x;
    }
    let Some(rng) = &ctx.rng else { return x };
    use rand::RngExt;
    let [n, f] = x.dims();
    let keep = 1.0 - p;
    let mut r = rng.borrow_mut();
    let mask: Vec<f32> = (0..n * f)
        .map(|_| {
            if r.random::<f64>() < keep {
                (1.0 / keep) as f32
            } else {
                0.0
            }
        })
        .collect();
    let m = Tensor::<B, 2>::from_data(TensorData::new(mask, [n, f]), &x.device());
    let m = if m.dtype() == x.dtype() {
        m
    } else {
        m.cast(x.dtype())
    };
    x * m
}

/// A low-rank factorisation `Δ = scale · B A` of one layer's update (for export to plain LoRA).
pub struct LoraFactors {
    /// `[r, in]`.
    pub a: crate::tensor::HostTensor,
    /// `[out, r]`.
    pub b: crate::tensor::HostTensor,
    /// Multiplier of `B A`.
    pub scale: f64,
}

/// A parameter-efficient update of one linear layer.
pub trait LinearAdapter<B: QuantBackend> {
    /// The method's name (`"lora"`, `"dora"`, ...).
    fn method(&self) -> &'static str;
    /// Computes the layer output with the update applied.
    fn forward(&self, layer: &Linear<B>, x: Tensor<B, 2>, ctx: &AdapterCtx<B>) -> Tensor<B, 2>;
    /// The adapter's tensors (trainable and frozen-but-saved).
    fn params(&self) -> Vec<&Param<B>>;
    /// Mutable access to the tensors.
    fn params_mut(&mut self) -> Vec<&mut Param<B>>;
    /// The merged dense weight `[out, in]` and bias for `merge_adapter`.
    fn merged(
        &self,
        layer: &Linear<B>,
    ) -> Result<(Tensor<B, 2>, Option<Tensor<B, 1>>), AdapterError>;
    /// The update as low-rank factors, when it is one (for `export_lora`).
    fn lora_factors(&self, layer: &Linear<B>) -> Result<LoraFactors, AdapterError>;
    /// Downcast support (AdaLoRA allocator, FLix routing, PiSSA conversion).
    fn as_any(&self) -> &dyn std::any::Any;
    /// Mutable downcast support.
    fn as_any_mut(&mut self) -> &mut dyn std::any::Any;
}
