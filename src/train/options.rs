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
        check(
            "warmup_ratio",
            self.warmup_ratio,
            "a number in [0, 1]",
            |x| (0.0..=1.0).contains(&x),
        )?;
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
    /// Range checks of every optimizer hyperparameter, the one place both `train` and
    /// `train_step` go through: each must be finite (NaN and ±inf are refused) and in range.
    /// The error names the option and the bad value.
    pub fn validate(&self) -> Result<(), TrainError> {
        let [b1, b2] = self.betas;
        check("lr", self.lr, "a finite number >= 0", |x| x >= 0.0)?;
        check("betas[0]", b1, "a number in [0, 1)", |x| {
            (0.0..1.0).contains(&x)
        })?;
        check("betas[1]", b2, "a number in [0, 1)", |x| {
            (0.0..1.0).contains(&x)
        })?;
        check("eps", self.eps, "a finite number > 0", |x| x > 0.0)?;
        check(
            "weight_decay",
            self.weight_decay,
            "a finite number >= 0",
            |x| x >= 0.0,
        )?;
        if let Some(n) = self.max_grad_norm {
            check("max_grad_norm", n, "a finite number > 0 or ()", |x| x > 0.0)?;
        }
        Ok(())
    }
}

/// `Ok` when `value` is finite and `ok(value)`; else an error naming the option, what it must be
/// and the value.
pub(crate) fn check(
    name: &str,
    value: f64,
    want: &str,
    ok: impl Fn(f64) -> bool,
) -> Result<(), TrainError> {
    if value.is_finite() && ok(value) {
        Ok(())
    } else {
        Err(TrainError::Option(format!(
            "{name} must be {want} (got {value})"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(o: StepOptions) -> String {
        o.validate().unwrap_err().to_string()
    }

    #[test]
    fn every_optimizer_option_must_be_finite_and_in_range() {
        let d = StepOptions::default;
        assert!(d().validate().is_ok());
        let cases: Vec<(StepOptions, &str)> = vec![
            (
                StepOptions {
                    lr: f64::NAN,
                    ..d()
                },
                "lr must be a finite number >= 0 (got NaN)",
            ),
            (
                StepOptions {
                    lr: f64::INFINITY,
                    ..d()
                },
                "lr must be a finite number >= 0 (got inf)",
            ),
            (
                StepOptions { lr: -1e-3, ..d() },
                "lr must be a finite number >= 0 (got -0.001)",
            ),
            (
                StepOptions {
                    betas: [f64::NAN, 0.999],
                    ..d()
                },
                "betas[0] must be a number in [0, 1) (got NaN)",
            ),
            (
                StepOptions {
                    betas: [0.9, 1.0],
                    ..d()
                },
                "betas[1] must be a number in [0, 1) (got 1)",
            ),
            (
                StepOptions {
                    eps: f64::INFINITY,
                    ..d()
                },
                "eps must be a finite number > 0 (got inf)",
            ),
            (
                StepOptions { eps: 0.0, ..d() },
                "eps must be a finite number > 0 (got 0)",
            ),
            (
                StepOptions {
                    weight_decay: f64::NAN,
                    ..d()
                },
                "weight_decay must be a finite number >= 0 (got NaN)",
            ),
            (
                StepOptions {
                    weight_decay: f64::INFINITY,
                    ..d()
                },
                "weight_decay must be a finite number >= 0 (got inf)",
            ),
            (
                StepOptions {
                    max_grad_norm: Some(f64::NAN),
                    ..d()
                },
                "max_grad_norm must be a finite number > 0 or () (got NaN)",
            ),
            (
                StepOptions {
                    max_grad_norm: Some(-1.0),
                    ..d()
                },
                "max_grad_norm must be a finite number > 0 or () (got -1)",
            ),
        ];
        for (o, want) in cases {
            assert_eq!(err(o), want);
        }
    }

    #[test]
    fn train_options_check_the_optimizer_and_the_schedule() {
        let d = TrainOptions::default;
        let e = |o: TrainOptions| o.validate().unwrap_err().to_string();
        assert!(d().validate().is_ok());
        assert_eq!(
            e(TrainOptions {
                lr: f64::NAN,
                ..d()
            }),
            "lr must be a finite number >= 0 (got NaN)"
        );
        assert_eq!(
            e(TrainOptions {
                warmup_ratio: f64::NAN,
                ..d()
            }),
            "warmup_ratio must be a number in [0, 1] (got NaN)"
        );
        assert_eq!(
            e(TrainOptions {
                weight_decay: -0.1,
                ..d()
            }),
            "weight_decay must be a finite number >= 0 (got -0.1)"
        );
    }
}
