//! Adapters: parameter-efficient updates attached to linear layers.
//!
//! Every method lives whole in its own file — its layer's forward pass, option defaults and
//! validation, PEFT config and tensor keys in and out, training hooks, export, merge and the
//! state it keeps — and is registered by one line of the table below: [`lora`] (LoRA and
//! rsLoRA), [`dora`], [`vera`], [`adalora`], [`pissa`] (an initialisation of LoRA), [`ia3`] and
//! [`flix`]. Adapters compute on activations (`y = Wx + b + Δ(x)`); the frozen base weight is
//! only read. A method's layer type implements the network's slot interface
//! [`LinearAdapter`] (`crate::model::linear`); the method type implements [`AdapterMethod`].
//! [`attach`] puts a method on a model, [`peft_io`] reads and writes PEFT's on-disk format,
//! [`targets`] selects modules the way PEFT does.
//!
//! # Why an enum generated from a table, not trait objects
//!
//! Per layer, a trait object fits: a layer's backend `B` is fixed, so the network's slot holds a
//! `Box<dyn LinearAdapter<B>>`. Per method it does not: the network is generic over `B` (CPU,
//! CUDA, their autodiff wrappers) while the attached method's state lives in the
//! backend-independent `Model`, and most method hooks are generic in `B` (attach, load, extra
//! loss, rank allocation, export). A trait with generic methods cannot be used as `dyn`; the ways
//! around that are a `B`-parametrised state, which would leak the backend into the `Model`
//! façade, or `Any` downcasts from the layers, which is what this design removes. So a method is
//! a plain struct implementing [`AdapterMethod`] (every hook but its definition has a no-op
//! default), and the `methods!` macro (in [`method`]) turns the one-line-per-method table below
//! into [`MethodKind`] and [`AnyMethod`], whose `match`es dispatch statically. Adding a method
//! touches its file and one line of the table; nothing downcasts, and each method's state is a
//! field of its own struct, reached by the method's hooks and by nothing else.

pub mod attach;
pub mod combine;
pub mod init;
pub mod method;
pub mod options;
pub mod peft_io;
pub mod state;
pub mod svd;
pub mod targets;

// The registered methods: `module: Type`, one line each (the line also declares the module).
method::methods! {
    lora: Lora,
    dora: Dora,
    vera: Vera,
    adalora: AdaLora,
    pissa: Pissa,
    ia3: Ia3,
    flix: Flix,
    #[cfg(test)] toy_method_tests: ToyBias,
}

pub use crate::model::linear::{AdapterCtx, LinearAdapter, LowRank, Param, RowMask, Unsupported};
pub use method::AdapterMethod;
pub use options::{AdapterOptions, Targets};

use crate::backend::LmBackend;
use crate::model::llama::CausalLm;
use crate::tensor::HostTensor;
use crate::value::Row;
use burn::tensor::{Tensor, TensorData};
use peft_io::{PeftFiles, Strict};
use std::collections::BTreeMap;

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
    /// No adapter has this name.
    #[error("no adapter is named '{name}' (adapters: {names})")]
    Unknown {
        /// The name asked for.
        name: String,
        /// The model's adapter names.
        names: String,
    },
    /// The adapter would not fit in memory (checked before allocating).
    #[error(transparent)]
    Size(#[from] crate::limits::SizeError),
    /// Re-quantising a merged weight failed.
    #[error(transparent)]
    Quant(#[from] crate::quant::QuantError),
    /// A model-side failure (reading a device tensor back).
    #[error(transparent)]
    Model(#[from] crate::model::ModelError),
    /// A host tensor could not be built.
    #[error(transparent)]
    Tensor(#[from] crate::tensor::TensorError),
    /// Ctrl-C during a long initialisation (PiSSA's SVD).
    #[error(transparent)]
    Interrupted(#[from] crate::interrupt::Interrupted),
}

impl From<Unsupported> for AdapterError {
    fn from(e: Unsupported) -> Self {
        AdapterError::Unsupported(e.0)
    }
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

/// Inverted dropout on `x` (`[N, F]`) with probability `p`, only in training mode.
pub fn dropout<B: LmBackend>(x: Tensor<B, 2>, p: f64, ctx: &AdapterCtx<B>) -> Tensor<B, 2> {
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

impl LoraFactors {
    /// Host copies of device factors `a` (`[r, in]`) and `b` (`[out, r]`).
    pub fn from_device<B: LmBackend>(
        a: Tensor<B, 2>,
        b: Tensor<B, 2>,
        scale: f64,
    ) -> Result<Self, AdapterError> {
        let conv = |t: Tensor<B, 2>| -> Result<HostTensor, AdapterError> {
            let (s, v) = host_values(t)?;
            host_tensor(s, v)
        };
        Ok(LoraFactors {
            a: conv(a)?,
            b: conv(b)?,
            scale,
        })
    }
}

/// Reads a device tensor back as f32 host values with its shape.
pub fn host_values<B: LmBackend, const D: usize>(
    t: Tensor<B, D>,
) -> Result<(Vec<usize>, Vec<f32>), AdapterError> {
    Ok(crate::model::to_host(t)?)
}

/// An f32 host tensor of `shape`.
pub fn host_tensor(shape: Vec<usize>, v: Vec<f32>) -> Result<HostTensor, AdapterError> {
    Ok(HostTensor::f32(shape, v)?)
}

/// The adapter parameter of `layer` saved under `key`, if any.
pub fn param<'a, B: LmBackend>(layer: &'a dyn LinearAdapter<B>, key: &str) -> Option<&'a Param<B>> {
    layer.params().into_iter().find(|p| p.key == key)
}

/// A device tensor `[rows, cols]` from host values, on `device`.
pub fn device_tensor<B: LmBackend>(
    v: Vec<f32>,
    shape: [usize; 2],
    device: &B::Device,
) -> Tensor<B, 2> {
    Tensor::from_data(TensorData::new(v, shape), device)
}

/// Whether a linear layer of `lm` already has an adapter.
pub fn any_attached<B: LmBackend>(lm: &CausalLm<B>) -> bool {
    lm.linears().iter().any(|(_, l)| l.adapter.is_some())
}

/// The targeted linear layers of `lm` (`modules`: their paths), in model order.
pub fn targets<'a, B: LmBackend>(
    lm: &'a CausalLm<B>,
    modules: &[String],
) -> Vec<(String, &'a crate::model::linear::Linear<B>)> {
    let mut v = lm.linears();
    v.retain(|(name, _)| modules.contains(name));
    v
}

/// The targeted linear layers of `lm`, mutable, in model order.
pub fn targets_mut<'a, B: LmBackend>(
    lm: &'a mut CausalLm<B>,
    modules: &[String],
) -> Vec<(String, &'a mut crate::model::linear::Linear<B>)> {
    let mut v = lm.linears_mut();
    v.retain(|(name, _)| modules.contains(name));
    v
}

/// Runs `f`, which attaches layers to a model that had none, all or nothing: on an error every
/// slot is emptied again. (Methods that replace base weights, PiSSA, compute everything before
/// they change any layer, so emptying the slots restores the model.)
pub fn attach_all_or_nothing<B: LmBackend, T>(
    lm: &mut CausalLm<B>,
    f: impl FnOnce(&mut CausalLm<B>) -> Result<T, AdapterError>,
) -> Result<T, AdapterError> {
    let out = f(lm);
    if out.is_err() {
        for (_, layer) in lm.linears_mut() {
            layer.adapter = None;
        }
    }
    out
}
