//! `train` and `train_step` options (keys of the Rhai options maps).

use super::TrainError;
use serde::{Deserialize, Serialize};

/// Options of `m.train(data, opts)`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrainOptions {
    /// `"alpaca"` or a template string with `{field}` placeholders and `{output}`.
    pub template: String,
    /// Peak learning rate.
    pub lr: f64,
    /// Passes over the data.
    pub epochs: usize,
    /// Stop after this many optimizer steps (overrides epochs).
    pub max_steps: Option<usize>,
    /// Examples per micro-batch.
    pub batch_size: usize,
    /// Micro-batches per optimizer step.
    pub grad_accum: usize,
    /// Truncate examples (or packed rows) to this many tokens.
    pub max_len: usize,
    /// `"cosine"` | `"linear"` | `"constant"`.
    pub schedule: String,
    /// Warm-up steps (wins over warmup_ratio when > 0).
    pub warmup_steps: usize,
    /// Warm-up as a fraction of the total steps.
    pub warmup_ratio: f64,
    /// Decoupled weight decay.
    pub weight_decay: f64,
    /// Adam betas.
    pub betas: [f64; 2],
    /// Adam epsilon (outside the square root).
    pub eps: f64,
    /// Global gradient-norm clipping (`()` = off).
    pub max_grad_norm: Option<f64>,
    /// Seed of data order, dropout and FLix feature dropout.
    pub seed: u64,
    /// Compute the loss on prompt tokens too.
    pub train_on_prompt: bool,
    /// Pack short examples into rows of `max_len` (attention stays within each example).
    pub packing: bool,
    /// Where checkpoints go (`()` = none).
    pub checkpoint_dir: Option<String>,
    /// Steps between checkpoints (default: once per epoch when a directory is given).
    pub checkpoint_every: Option<usize>,
    /// Continue from the last complete checkpoint in `checkpoint_dir`.
    pub resume: bool,
    /// Progress bar on a terminal.
    pub progress: bool,
    /// One JSON line per optimizer step. A fresh run starts the file anew; a resumed run
    /// keeps the lines up to its checkpoint's step, so every step appears once.
    pub log_file: Option<String>,
    /// Checkpoints kept in `checkpoint_dir` (the newest ones; at least 1).
    pub keep_checkpoints: usize,
}

impl Default for TrainOptions {
    fn default() -> Self {
        TrainOptions {
            template: "alpaca".into(),
            lr: 2e-4,
            epochs: 1,
            max_steps: None,
            batch_size: 8,
            grad_accum: 1,
            max_len: 512,
            schedule: "cosine".into(),
            warmup_steps: 0,
            warmup_ratio: 0.0,
            weight_decay: 0.0,
            betas: [0.9, 0.999],
            eps: 1e-8,
            max_grad_norm: Some(1.0),
            seed: 0,
            train_on_prompt: false,
            packing: false,
            checkpoint_dir: None,
            checkpoint_every: None,
            resume: true,
            progress: true,
            log_file: None,
            keep_checkpoints: 2,
        }
    }
}

impl TrainOptions {
    /// Range checks serde cannot do.
    pub fn validate(&self) -> Result<(), TrainError> {
        let bad = |m: String| Err(TrainError::Option(m));
        if !(self.lr.is_finite() && self.lr >= 0.0) {
            return bad(format!("lr must be a finite number >= 0 (got {})", self.lr));
        }
        if self.batch_size == 0 || self.grad_accum == 0 || self.max_len < 2 {
            return bad(format!(
                "batch_size and grad_accum must be > 0 and max_len >= 2 (got {}, {}, {})",
                self.batch_size, self.grad_accum, self.max_len
            ));
        }
        if self.keep_checkpoints == 0 {
            return bad(
                "keep_checkpoints must be >= 1 (got 0); the newest checkpoint is needed to resume"
                    .into(),
            );
        }
        if !["cosine", "linear", "constant"].contains(&self.schedule.as_str()) {
            return bad(format!(
                "unknown schedule '{}' (expected one of: cosine, linear, constant)",
                self.schedule
            ));
        }
        if !(0.0..=1.0).contains(&self.warmup_ratio) {
            return bad(format!(
                "warmup_ratio must be in [0, 1] (got {})",
                self.warmup_ratio
            ));
        }
        StepOptions {
            lr: self.lr,
            betas: self.betas,
            eps: self.eps,
            weight_decay: self.weight_decay,
            max_grad_norm: self.max_grad_norm,
        }
        .validate()
    }
}

/// Options of one optimizer step (`m.train_step`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StepOptions {
    /// Learning rate.
    pub lr: f64,
    /// Adam betas.
    pub betas: [f64; 2],
    /// Adam epsilon.
    pub eps: f64,
    /// Decoupled weight decay.
    pub weight_decay: f64,
    /// Global gradient-norm clipping (`()` = off).
    pub max_grad_norm: Option<f64>,
}

impl Default for StepOptions {
    fn default() -> Self {
        StepOptions {
            lr: 1e-3,
            betas: [0.9, 0.999],
            eps: 1e-8,
            weight_decay: 0.01,
            max_grad_norm: None,
        }
    }
}

impl StepOptions {
    /// Range checks.
    pub fn validate(&self) -> Result<(), TrainError> {
        let [b1, b2] = self.betas;
        if !(0.0..1.0).contains(&b1) || !(0.0..1.0).contains(&b2) {
            return Err(TrainError::Option(format!(
                "betas must be in [0, 1) (got [{b1}, {b2}])"
            )));
        }
        let eps_ok = self.eps > 0.0;
        if !eps_ok || self.weight_decay < 0.0 {
            return Err(TrainError::Option(format!(
                "eps must be > 0 and weight_decay >= 0 (got {}, {})",
                self.eps, self.weight_decay
            )));
        }
        if let Some(n) = self.max_grad_norm {
            let positive = n > 0.0;
            if !positive {
                return Err(TrainError::Option(format!(
                    "max_grad_norm must be > 0 (got {n})"
                )));
            }
        }
        Ok(())
    }
}
