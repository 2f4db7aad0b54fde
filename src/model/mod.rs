//! Decoder-only language models (Llama, Mistral, Qwen2, Qwen3) on burn, matching transformers.
//!
//! This is the network only (layer 3 of `docs/ARCHITECTURE.md`): it knows nothing of training,
//! evaluation or scripts. One file per concern: [`config`] (config.json), [`weights`]
//! (safetensors, sharded, mmap), [`tokenizer`], [`rope`], [`linear`] (frozen base, adapter
//! slot and the interface adapters plug into), [`attention`] (with the fused steps of [`crate::backend::attention`]), [`block`],
//! [`llama`] (the causal LM), [`kv_cache`], [`sampling`], [`generate`], [`scoring`] (lm-eval
//! log-likelihoods) and [`load`] (directory → model). The scriptable handle that hides the
//! backend choice is `crate::lab::Model`.

pub mod attention;
pub mod block;
pub mod config;
pub mod generate;
pub mod kv_cache;
pub mod linear;
pub mod llama;
pub mod load;
pub mod norm;
pub mod rope;
pub mod sampling;
pub mod scoring;
pub mod tokenizer;
pub mod weights;

pub use config::{Arch, ModelConfig, RopeScaling};
pub use load::LoadOptions;

/// Errors of model loading and inference.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// A problem with `config.json`.
    #[error("{0}")]
    Config(String),
    /// The checkpoint's architecture is not implemented.
    #[error("unsupported architecture '{found}' (supported: {supported})")]
    UnsupportedArch {
        /// What the checkpoint declares.
        found: String,
        /// Comma-separated supported architectures.
        supported: String,
    },
    /// A file could not be read or is malformed.
    #[error("{path}: {msg}")]
    File {
        /// The file or directory.
        path: String,
        /// What went wrong.
        msg: String,
    },
    /// A weight the architecture needs is absent.
    #[error("missing tensor '{name}' in {source_desc}")]
    MissingTensor {
        /// HF tensor name.
        name: String,
        /// Where it was looked up.
        source_desc: String,
    },
    /// A weight has the wrong shape.
    #[error("tensor '{name}' has shape {found:?}, expected {expected:?}")]
    Shape {
        /// HF tensor name.
        name: String,
        /// Expected shape.
        expected: Vec<usize>,
        /// Shape in the file.
        found: Vec<usize>,
    },
    /// Tokenizer problem.
    #[error("tokenizer: {0}")]
    Tokenizer(String),
    /// The tokenizers library failed.
    #[error("tokenizer: {0}")]
    TokenizerLib(#[source] tokenizers::Error),
    /// `config.json` is not JSON, or not the JSON of a model config.
    #[error("{context}: {source}")]
    ConfigJson {
        /// What was being read.
        context: &'static str,
        /// The parser's error.
        #[source]
        source: serde_json::Error,
    },
    /// A host tensor could not be built.
    #[error(transparent)]
    Tensor(#[from] crate::tensor::TensorError),
    /// A size beyond the memory of this machine (checked before allocating).
    #[error(transparent)]
    Size(#[from] crate::limits::SizeError),
    /// Bad argument (ids out of range, empty input, ...).
    #[error("{0}")]
    Input(String),
    /// Device or backend selection problem.
    #[error(transparent)]
    Device(#[from] crate::backend::DeviceError),
    /// Bad quantisation options.
    #[error(transparent)]
    Quant(#[from] crate::quant::QuantError),
    /// A weight could not be quantised while loading.
    #[error("{name}: {source}")]
    QuantTensor {
        /// HF tensor name.
        name: String,
        /// What went wrong.
        #[source]
        source: crate::quant::QuantError,
    },
    /// The user pressed Ctrl-C.
    #[error("interrupted")]
    Interrupted(#[from] crate::interrupt::Interrupted),
}

impl ModelError {
    /// Shorthand for a file error.
    pub fn file(path: impl std::fmt::Display, msg: impl std::fmt::Display) -> Self {
        ModelError::File {
            path: path.to_string(),
            msg: msg.to_string(),
        }
    }
}

/// Reads a tensor to host f32 values.
pub fn to_host<B: burn::tensor::backend::Backend, const D: usize>(
    t: burn::tensor::Tensor<B, D>,
) -> Result<(Vec<usize>, Vec<f32>), ModelError> {
    let t = t.cast(burn::tensor::DType::F32);
    let shape = t.dims().to_vec();
    let v = t
        .into_data()
        .into_vec::<f32>()
        .map_err(|e| ModelError::Input(format!("reading a tensor back: {e:?}")))?;
    Ok((shape, v))
}
