//! The training loop of `m.train(data, opts)`.
//!
//! Per optimizer step: `grad_accum` micro-batches (each `batch_size` examples, shuffled per epoch
//! with the seed), mean loss, gradients averaged over micro-batches (HF divides each
//! micro-batch loss by `grad_accum`), global clipping, AdamW with the scheduled rate, then
//! AdaLoRA's budget allocation. Total steps: `max_steps`, else `epochs · ⌈⌈N/batch⌉/accum⌉`.
//! Every random draw is derived from `(seed, purpose, step)`, which makes runs reproducible and
//! resumption exact.

use super::batch::{collate, has_label, no_label_error, tokenize, Example};
use super::checkpoint::{self, TrainState};
use super::optim::{clip_global, AdamW, AdamWConfig};
use super::schedule::{factor, warmup_steps};
use super::step::{loss_and_grads, routing, trainable};
use super::{TrainError, TrainOptions};
use crate::adapter::state::AdapterState;
use crate::adapter::AdapterCtx;
use crate::backend::LmBackend;
use crate::model::llama::CausalLm;
use crate::model::to_host;
use crate::model::tokenizer::Tokenizer;
use crate::tensor::HostTensor;
use crate::value::Row;
use burn::tensor::backend::AutodiffBackend;
use burn::tensor::{Tensor, TensorData};
use rand::seq::SliceRandom;
use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

/// What one optimizer step reports (to the log file and the progress bar).
#[derive(Debug, Clone, serde::Serialize)]
pub struct StepLog {
    /// Optimizer step (1-based).
    pub step: usize,
    /// Total planned steps.
    pub total: usize,
    /// Epoch (0-based, fractional).
    pub epoch: f64,
    /// Mean loss of the step's micro-batches.
    pub loss: f64,
    /// Learning rate used.
    pub lr: f64,
    /// Gradient norm before clipping.
    pub grad_norm: f64,
    /// Tokens in this step.
    pub tokens: usize,
    /// Seconds since the start of this run.
    pub seconds: f64,
}

/// The result of `train`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct TrainReport {
    /// Optimizer steps taken in total (including resumed ones).
    pub steps: usize,
    /// Epochs covered.
    pub epochs: f64,
    /// Loss of the last step.
    pub final_loss: f64,
    /// Loss of every step.
    pub losses: Vec<f64>,
    /// Tokens processed.
    pub tokens: usize,
    /// Wall-clock seconds.
    pub seconds: f64,
    /// Throughput.
    pub tokens_per_s: f64,
    /// Peak resident memory of the process (bytes), where the OS reports it.
    pub peak_bytes: Option<u64>,
    /// Examples cut to `max_len`.
    pub truncated: usize,
    /// Step the run resumed from (0 = fresh).
    pub resumed_from: usize,
}

/// Peak resident set size from `/proc/self/status` (Linux).
pub fn peak_rss() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = s.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

fn fingerprint(opts: &TrainOptions, examples: &[Example]) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    let mut o = opts.clone();
    o.max_steps = None;
    o.resume = false;
    o.progress = false;
    o.log_file = None;
    o.checkpoint_every = None;
    // keep_checkpoints changes no result; it is left out of the text, which therefore stays
    // the one older versions (without the option) computed, so their checkpoints still resume.
    let mut v = serde_json::to_value(&o).unwrap_or_default();
    if let Some(m) = v.as_object_mut() {
        m.shift_remove("keep_checkpoints");
    }
    h.update(v.to_string());
    for e in examples {
        for t in &e.ids {
            h.update(t.to_le_bytes());
        }
    }
    crate::text::hex(&h.finalize()[..8])
}

/// Checkpoint content: host copies of every trainable tensor (under its name) and the
/// optimizer's moments (`<name>.exp_avg`, `<name>.exp_avg_sq`).
pub fn snapshot<B: AutodiffBackend + LmBackend>(
    lm: &mut CausalLm<B>,
    opt: &AdamW<B>,
) -> Result<BTreeMap<String, HostTensor>, TrainError> {
    let mut out = opt.state_tensors()?;
    for (name, p) in trainable(lm) {
        let (s, v) = to_host(p.value.clone())?;
        out.insert(name, HostTensor::f32(s, v)?);
    }
    Ok(out)
}

/// Restores what [`snapshot`] wrote, with the optimizer at `steps`. Every tensor is read and
/// checked before anything changes: a checkpoint of another adapter is an error that leaves the
/// model and the optimizer as they were.
pub fn restore<B: AutodiffBackend + LmBackend>(
    lm: &mut CausalLm<B>,
    opt: &mut AdamW<B>,
    steps: usize,
    t: &BTreeMap<String, HostTensor>,
) -> Result<(), TrainError> {
    let device = lm.device.clone();
    let mut values = Vec::new();
    let mut shapes = Vec::new();
    for (name, p) in trainable(lm) {
        let [r, c] = p.value.dims();
        let h = t.get(&name).ok_or_else(|| {
            TrainError::Data(format!("checkpoint lacks {name} (different adapter?)"))
        })?;
        if h.shape != [r, c] {
            return Err(TrainError::Data(format!(
                "checkpoint tensor {name} has shape {:?}, but the adapter's is [{r}, {c}] \
                 (different adapter?)",
                h.shape
            )));
        }
        values.push(Tensor::<B, 2>::from_data(
            TensorData::new(h.values_f32(), [r, c]),
            &device,
        ));
        shapes.push((name, [r, c]));
    }
    opt.load_state(steps, &shapes, t, &device)?;
    for ((_, p), v) in trainable(lm).into_iter().zip(values) {
        p.value = v;
    }
    Ok(())
}

/// What the training loop tells its caller while it runs.
#[derive(Debug, Clone, Copy)]
pub enum TrainEvent<'a> {
    /// An optimizer step finished.
    Step(&'a StepLog),
    /// Something the user should know that does not stop training (e.g. an unusable
    /// checkpoint was skipped when resuming).
    Warning(&'a str),
}

/// Hooks the caller provides (progress, warnings, interrupt).
pub struct Hooks<'a> {
    /// Called after every optimizer step and for every warning.
    pub on_event: &'a mut dyn FnMut(TrainEvent<'_>),
    /// Returns true when the user asked to stop.
    pub interrupted: &'a dyn Fn() -> bool,
}

/// The `log_file` of a run: one JSON line per optimizer step, each step once.
struct StepLogFile {
    path: PathBuf,
    file: std::fs::File,
}

impl StepLogFile {
    /// Prepares the log of a run that starts after `start_step` steps: the lines of steps up
    /// to `start_step` are kept (a resumed run), later ones (written after the checkpoint by a
    /// run that was then killed) and unreadable lines are dropped, all in one atomic rewrite;
    /// then the file is opened for appending.
    fn open(path: &str, start_step: usize) -> Result<Self, TrainError> {
        let p = PathBuf::from(path);
        let err =
            |e: &dyn std::fmt::Display| TrainError::file(p.display(), format!("log_file: {e}"));
        if p.is_dir() {
            return Err(TrainError::file(
                format!("log_file '{}'", p.display()),
                format!(
                    "is a directory (give a file path, e.g. '{}')",
                    p.join("train.jsonl").display()
                ),
            ));
        }
        let old = match std::fs::read(&p) {
            Ok(b) => String::from_utf8_lossy(&b).into_owned(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(e) => return Err(err(&e)),
        };
        let step_of = |line: &str| {
            serde_json::from_str::<serde_json::Value>(line)
                .ok()?
                .get("step")?
                .as_u64()
        };
        let kept: Vec<&str> = old
            .lines()
            .filter(|l| step_of(l).is_some_and(|s| s >= 1 && s as usize <= start_step))
            .collect();
        crate::fsutil::write_atomic_with(&p, |w| {
            for l in &kept {
                writeln!(w, "{l}")?;
            }
            Ok(())
        })
        .map_err(|e| err(&e))?;
        let file = std::fs::OpenOptions::new()
            .append(true)
            .open(&p)
            .map_err(|e| err(&e))?;
        Ok(StepLogFile { path: p, file })
    }

    /// Appends one step's line.
    fn append(&mut self, s: &StepLog) -> Result<(), TrainError> {
        let line =
            serde_json::to_string(s).map_err(|e| TrainError::file(self.path.display(), e))?;
        writeln!(self.file, "{line}").map_err(|e| {
            TrainError::file(
                self.path.display(),
                format!("writing the log file failed: {e}"),
            )
        })
    }
}

/// Runs training on `rows` with the optimizer `opt` (its step count continues from earlier
/// steps; its hyper-parameters are set from `opts`).
pub fn train<B: AutodiffBackend + LmBackend>(
    lm: &mut CausalLm<B>,
    st: &mut AdapterState,
    opt: &mut AdamW<B>,
    tok: &Tokenizer,
    rows: &[Row],
    opts: &TrainOptions,
    hooks: Hooks<'_>,
) -> Result<TrainReport, TrainError> {
    opts.validate()?;
    if rows.is_empty() {
        return Err(TrainError::Data("train: the dataset is empty".into()));
    }
    let routing_keys = st.method.routing_keys();
    let feature_names: Vec<String> = st
        .options
        .features
        .clone()
        .unwrap_or_default()
        .into_keys()
        .collect();
    let (examples, truncated) = tokenize(
        rows,
        tok,
        &opts.template,
        opts.max_len,
        opts.train_on_prompt,
        &feature_names,
    )?;
    let n = examples.len();
    if !examples.iter().any(|e| has_label(&e.labels)) {
        return Err(no_label_error(
            "train: no example",
            truncated,
            n,
            opts.max_len,
        ));
    }
    let n_batches = n.div_ceil(opts.batch_size);
    let per_epoch = n_batches.div_ceil(opts.grad_accum);
    let total = opts.max_steps.unwrap_or(opts.epochs * per_epoch);
    if total == 0 {
        return Err(TrainError::Option(
            "train: zero steps (epochs or max_steps is 0)".into(),
        ));
    }
    let warmup = warmup_steps(opts.warmup_steps, opts.warmup_ratio, total);
    let fp = fingerprint(opts, &examples);
    opt.set_config(AdamWConfig {
        betas: opts.betas,
        eps: opts.eps,
        weight_decay: opts.weight_decay,
    });
    let ck_dir = opts.checkpoint_dir.as_ref().map(PathBuf::from);
    let ck_every = opts.checkpoint_every.unwrap_or(per_epoch).max(1);
    let mut losses = Vec::new();
    let mut tokens = 0usize;
    let mut prior_seconds = 0.0;
    let mut start_step = 0;
    let mut last_ck = String::new();
    if let Some(dir) = &ck_dir {
        let n = checkpoint::remove_leftovers(dir);
        if n > 0 {
            (hooks.on_event)(TrainEvent::Warning(&format!(
                "{}: removed {n} unfinished checkpoint write(s) of an earlier run",
                dir.display()
            )));
        }
    }
    if let (Some(dir), true) = (&ck_dir, opts.resume) {
        let (found, warnings) = checkpoint::read_resume(dir);
        for w in &warnings {
            (hooks.on_event)(TrainEvent::Warning(w));
        }
        if let Some((state, tensors, path)) = found {
            if state.fingerprint != fp {
                return Err(TrainError::file(
                    path.display(),
                    "this checkpoint belongs to a run with other options or data; use another checkpoint_dir or resume: false",
                ));
            }
            restore(lm, opt, state.step, &tensors)?;
            if let Some(m) = &state.method_state {
                st.method.restore_state(lm, m)?;
            }
            start_step = state.step;
            losses = state.losses;
            tokens = state.tokens;
            prior_seconds = state.seconds;
            last_ck = format!(" (last checkpoint: {})", path.display());
        }
    }
    let mut log_file = match &opts.log_file {
        Some(p) => Some(StepLogFile::open(p, start_step)?),
        None => None,
    };
    let t0 = Instant::now();
    let mut order: Vec<usize> = Vec::new();
    let mut order_epoch = usize::MAX;
    for step in start_step..total {
        if (hooks.interrupted)() {
            return Err(TrainError::Interrupted {
                step,
                checkpoint: last_ck,
            });
        }
        let epoch = step / per_epoch;
        if epoch != order_epoch {
            order = (0..n).collect();
            order.shuffle(&mut crate::rng::derived(
                opts.seed,
                &format!("data-order-{epoch}"),
            ));
            order_epoch = epoch;
        }
        let first = (step % per_epoch) * opts.grad_accum;
        let last = (first + opts.grad_accum).min(n_batches);
        let micro = last - first;
        let mut acc: Vec<Option<Tensor<B, 2>>> = Vec::new();
        let mut loss_sum = 0.0;
        let mut step_tokens = 0;
        for (k, bi) in (first..last).enumerate() {
            let idx = &order[bi * opts.batch_size..((bi + 1) * opts.batch_size).min(n)];
            let mut exs: Vec<Example> = idx.iter().map(|&i| examples[i].clone()).collect();
            let stream = format!("feature-dropout-{step}-{k}");
            super::batch::drop_features(&mut exs, st.options.feature_dropout, opts.seed, &stream);
            let refs: Vec<&Example> = exs.iter().collect();
            let tb = collate(&refs, tok.pad_id, opts.packing, opts.max_len)?;
            if !tb.labels.iter().any(|l| has_label(l)) {
                let at = format!("train: step {}: no example of this micro-batch", step + 1);
                return Err(no_label_error(&at, truncated, n, opts.max_len));
            }
            step_tokens += tb.batch.valid.iter().flatten().filter(|&&v| v).count();
            let mut ctx = AdapterCtx::train(crate::rng::derived(
                opts.seed,
                &format!("dropout-{step}-{k}"),
            ));
            ctx.routing = routing(&tb, &routing_keys, &lm.device)
                .into_iter()
                .collect();
            let (loss, grads) = loss_and_grads(lm, &tb, &ctx, Some(&st.method))?;
            if !loss.is_finite() {
                return Err(TrainError::NonFinite {
                    step: step + 1,
                    loss,
                    checkpoint: last_ck,
                });
            }
            loss_sum += loss;
            if acc.is_empty() {
                acc = grads;
            } else {
                for (a, g) in acc.iter_mut().zip(grads) {
                    *a = match (a.take(), g) {
                        (Some(x), Some(y)) => Some(x + y),
                        (x, y) => x.or(y),
                    };
                }
            }
        }
        let loss = loss_sum / micro as f64;
        let scale = 1.0 / micro as f64;
        let present: Vec<usize> = (0..acc.len()).filter(|&i| acc[i].is_some()).collect();
        let mut gs: Vec<Tensor<B, 2>> = present
            .iter()
            .filter_map(|&i| acc[i].take().map(|g| g.mul_scalar(scale)))
            .collect();
        let grad_norm = match opts.max_grad_norm {
            Some(m) => clip_global(&mut gs, m),
            None => super::optim::global_norm(&gs),
        };
        let lr = opts.lr * factor(&opts.schedule, step, warmup, total);
        let mut named_grads = BTreeMap::new();
        {
            let mut params = trainable(lm);
            let mut grads: Vec<Option<Tensor<B, 2>>> = vec![None; params.len()];
            for (g, &pi) in gs.into_iter().zip(&present) {
                named_grads.insert(params[pi].0.clone(), g.clone());
                grads[pi] = Some(g);
            }
            opt.step(&mut params, &grads, lr);
        }
        st.method.after_step(lm, opt.steps(), &named_grads)?;
        losses.push(loss);
        tokens += step_tokens;
        let log = StepLog {
            step: opt.steps(),
            total,
            epoch: (step + 1) as f64 / per_epoch as f64,
            loss,
            lr,
            grad_norm,
            tokens: step_tokens,
            seconds: prior_seconds + t0.elapsed().as_secs_f64(),
        };
        if let Some(f) = log_file.as_mut() {
            f.append(&log)?;
        }
        (hooks.on_event)(TrainEvent::Step(&log));
        if let Some(dir) = &ck_dir {
            if (step + 1) % ck_every == 0 || step + 1 == total {
                let state = TrainState {
                    step: opt.steps(),
                    losses: losses.clone(),
                    tokens,
                    seconds: log.seconds,
                    method_state: st.method.checkpoint_state(),
                    fingerprint: fp.clone(),
                    params_sha256: None,
                };
                let path =
                    checkpoint::write(dir, &state, &snapshot(lm, opt)?, opts.keep_checkpoints)?;
                last_ck = format!(" (last checkpoint: {})", path.display());
            }
        }
    }
    let seconds = t0.elapsed().as_secs_f64();
    let run_tokens: usize = tokens;
    Ok(TrainReport {
        steps: opt.steps(),
        epochs: total as f64 / per_epoch as f64,
        final_loss: losses.last().copied().unwrap_or(f64::NAN),
        losses,
        tokens: run_tokens,
        seconds: prior_seconds + seconds,
        tokens_per_s: if seconds > 0.0 {
            run_tokens as f64 / (prior_seconds + seconds)
        } else {
            0.0
        },
        peak_bytes: peak_rss(),
        truncated,
        resumed_from: start_step,
    })
}
