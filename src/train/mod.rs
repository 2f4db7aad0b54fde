//! Training adapters: the PyTorch/HF recipe, exactly.
//!
//! [`template`] renders Alpaca and custom prompts, [`batch`] tokenises, masks, pads and packs,
//! [`schedule`] is HF's `get_*_schedule_with_warmup`, [`optim`] is `torch.optim.AdamW` with
//! global `clip_grad_norm_`, [`step`] computes the loss and gradients on an autodiff backend,
//! [`checkpoint`] writes resumable state atomically and [`trainer`] runs the loop.

pub mod batch;
pub mod checkpoint;
pub mod optim;
pub mod options;
pub mod schedule;
pub mod step;
pub mod template;
pub mod trainer;

pub use options::{StepOptions, TrainOptions};

/// Errors of training.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    /// A bad option.
    #[error("{0}")]
    Option(String),
    /// A data row cannot be used.
    #[error("{0}")]
    Data(String),
    /// The loss became NaN or infinite.
    #[error("non-finite loss {loss} at step {step}{checkpoint}")]
    NonFinite {
        /// The optimizer step (1-based) whose forward produced it.
        step: usize,
        /// The value.
        loss: f64,
        /// Where the last good checkpoint is, if any.
        checkpoint: String,
    },
    /// Checkpoint files.
    #[error("{path}: {msg}")]
    File {
        /// The file or directory.
        path: String,
        /// What went wrong.
        msg: String,
    },
    /// The model failed.
    #[error(transparent)]
    Model(#[from] crate::model::ModelError),
    /// A host tensor could not be built.
    #[error(transparent)]
    Tensor(#[from] crate::tensor::TensorError),
    /// The adapter failed.
    #[error(transparent)]
    Adapter(#[from] crate::adapter::AdapterError),
    /// Ctrl-C.
    #[error("interrupted at step {step}{checkpoint}")]
    Interrupted {
        /// Steps completed.
        step: usize,
        /// Where the last checkpoint is, if any.
        checkpoint: String,
    },
}

impl TrainError {
    /// Shorthand for a file error.
    pub fn file(path: impl std::fmt::Display, msg: impl std::fmt::Display) -> Self {
        TrainError::File {
            path: path.to_string(),
            msg: msg.to_string(),
        }
    }
}
