//! Decoder-only language models (Llama, Mistral, Qwen2, Qwen3) on burn, matching transformers.
//!
//! One file per concern: [`config`] (config.json), [`weights`] (safetensors, sharded, mmap),
//! [`tokenizer`], [`rope`], [`linear`] (frozen base + adapter slot), [`hook`] (the interface
//! adapters plug into), [`attention`], [`fused`]
//! (RoPE and masked-softmax kernels), [`block`], [`llama`] (the causal LM), [`kv_cache`],
//! [`sampling`], [`generate`], [`scoring`] (lm-eval
//! log-likelihoods) and [`load`] (directory → model). [`handle`] hides the backend choice.

pub mod adapters;
pub mod attention;
pub mod block;
pub mod config;
pub mod eval_impl;
pub mod fused;
pub mod generate;
pub mod handle;
pub mod hook;
pub mod kv_cache;
pub mod lens;
pub mod linear;
pub mod llama;
pub mod load;
pub mod rope;
pub mod sampling;
pub mod scoring;
pub mod tokenizer;
pub mod training;
pub mod weights;

pub use config::{Arch, ModelConfig, RopeScaling};
pub use handle::Model;
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
    /// Bad argument (ids out of range, empty input, ...).
    #[error("{0}")]
    Input(String),
    /// Device or backend selection problem.
    #[error("{0}")]
    Device(String),
    /// Quantisation problem while loading.
    #[error("{0}")]
    Quant(String),
    /// Adapter problem surfaced through the model.
    #[error("{0}")]
    Adapter(String),
    /// The user pressed Ctrl-C.
    #[error("interrupted")]
    Interrupted,
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
