//! Training operations on the model handle: `loss`, `gradients`, `train_step` and `train`.
//!
//! The AdamW state ([`Optimizer`]) of the adapters being trained (the active, trainable ones)
//! lives beside their [`AdapterState`]s on the [`Model`]: created by the first
//! `train_step`/`train`, kept across calls (moments and step count) while the same adapters
//! train, dropped when that set changes or one of them is deleted, merged and unloaded.

use super::{Lm, Model};
use crate::adapter::{AdapterCtx, AnyMethod};
use crate::backend::LmBackend;
use crate::model::llama::{Batch, CausalLm};
use crate::tensor::HostTensor;
use crate::train::batch::TrainBatch;
use crate::train::optim::{clip_global, AdamW, AdamWConfig};
use crate::train::step::{loss_and_grads, loss_tensor, trainable};
use crate::train::trainer::{train, Hooks, TrainEvent, TrainReport};
use crate::train::{StepOptions, TrainError, TrainOptions};
use crate::value::Row;
use crate::with_lm;
use burn::tensor::backend::AutodiffBackend;
use burn::tensor::{ElementConversion, Tensor};
use std::collections::BTreeMap;

/// Builds a training batch from id rows and label rows of the same shape.
pub fn label_batch(
    ids: &[Vec<u32>],
    labels: &[Vec<i64>],
    pad: u32,
) -> Result<TrainBatch, TrainError> {
    if ids.len() != labels.len() || ids.iter().zip(labels).any(|(a, b)| a.len() != b.len()) {
        return Err(TrainError::Data(format!(
            "labels must have the shape of the batch (batch rows {:?}, label rows {:?})",
            ids.iter().map(Vec::len).collect::<Vec<_>>(),
            labels.iter().map(Vec::len).collect::<Vec<_>>()
        )));
    }
    let batch = Batch::right_padded(ids, pad)?;
    let t = batch.seq();
    let labels: Vec<Vec<i64>> = labels
        .iter()
        .map(|l| {
            let mut l = l.clone();
            l.resize(t, -100);
            l
        })
        .collect();
    let n_targets = labels
        .iter()
        .map(|l| l.iter().skip(1).filter(|&&x| x != -100).count())
        .sum();
    let example_of = (0..ids.len()).map(|i| vec![i; t]).collect();
    Ok(TrainBatch {
        batch,
        labels,
        example_of,
        features: vec![BTreeMap::new(); ids.len()],
        n_targets,
    })
}

/// The AdamW state of the attached adapter, on the model's backend.
pub enum Optimizer {
    /// CPU (burn-flex).
    Cpu(AdamW<crate::backend::Cpu>),
    /// CUDA (burn-cuda).
    #[cfg(feature = "cuda")]
    Cuda(AdamW<crate::backend::Cuda>),
}

impl Optimizer {
    /// A fresh optimizer for the backend of `lm`.
    fn fresh(lm: &Lm, config: AdamWConfig) -> Self {
        match lm {
            Lm::Cpu(_) => Optimizer::Cpu(AdamW::new(config)),
            #[cfg(feature = "cuda")]
            Lm::Cuda(_) => Optimizer::Cuda(AdamW::new(config)),
        }
    }

    /// Optimizer steps taken so far.
    pub fn steps(&self) -> usize {
        match self {
            Optimizer::Cpu(o) => o.steps(),
            #[cfg(feature = "cuda")]
            Optimizer::Cuda(o) => o.steps(),
        }
    }
}

/// The network and its optimizer, on the same backend.
enum WithOptim<'a> {
    Cpu(
        &'a mut CausalLm<crate::backend::Cpu>,
        &'a mut AdamW<crate::backend::Cpu>,
    ),
    #[cfg(feature = "cuda")]
    Cuda(
        &'a mut CausalLm<crate::backend::Cuda>,
        &'a mut AdamW<crate::backend::Cuda>,
    ),
}

/// Pairs the network with its optimizer (created on first use) and sets the hyper-parameters.
fn with_optim<'a>(
    lm: &'a mut Lm,
    slot: &'a mut Option<Optimizer>,
    config: AdamWConfig,
) -> Result<WithOptim<'a>, TrainError> {
    let opt = slot.get_or_insert_with(|| Optimizer::fresh(lm, config));
    match (lm, opt) {
        (Lm::Cpu(lm), Optimizer::Cpu(o)) => {
            o.set_config(config);
            Ok(WithOptim::Cpu(lm, o))
        }
        #[cfg(feature = "cuda")]
        (Lm::Cuda(lm), Optimizer::Cuda(o)) => {
            o.set_config(config);
            Ok(WithOptim::Cuda(lm, o))
        }
        #[allow(unreachable_patterns)]
        _ => Err(TrainError::Data(
            "the optimizer state is on another backend than the model".into(),
        )),
    }
}

/// Runs `$body` with `$lm` and `$opt` bound to the backend-specific network and optimizer.
macro_rules! with_lm_optim {
    ($pair:expr, $lm:ident, $opt:ident => $body:expr) => {
        match $pair {
            WithOptim::Cpu($lm, $opt) => $body,
            #[cfg(feature = "cuda")]
            WithOptim::Cuda($lm, $opt) => $body,
        }
    };
}

fn step_generic<B: AutodiffBackend + LmBackend>(
    lm: &mut CausalLm<B>,
    opt: &mut AdamW<B>,
    method: Option<&AnyMethod>,
    tb: &TrainBatch,
    o: &StepOptions,
) -> Result<f64, TrainError> {
    let (loss, mut grads) = loss_and_grads(lm, tb, &AdapterCtx::eval(), method)?;
    if !loss.is_finite() {
        return Err(TrainError::NonFinite {
            step: opt.steps() + 1,
            loss,
            checkpoint: String::new(),
        });
    }
    if let Some(m) = o.max_grad_norm {
        let present: Vec<usize> = (0..grads.len()).filter(|&i| grads[i].is_some()).collect();
        let mut gs: Vec<Tensor<B, 2>> = grads.iter_mut().filter_map(Option::take).collect();
        clip_global(&mut gs, m);
        for (g, i) in gs.into_iter().zip(present) {
            grads[i] = Some(g);
        }
    }
    opt.step(&mut trainable(lm), &grads, o.lr);
    Ok(loss)
}

fn grads_generic<B: AutodiffBackend + LmBackend>(
    lm: &mut CausalLm<B>,
    tb: &TrainBatch,
    method: Option<&AnyMethod>,
) -> Result<(f64, BTreeMap<String, HostTensor>), TrainError> {
    let (loss, grads) = loss_and_grads(lm, tb, &AdapterCtx::eval(), method)?;
    let names: Vec<String> = trainable(lm).into_iter().map(|(n, _)| n).collect();
    let mut out = BTreeMap::new();
    for (name, g) in names.into_iter().zip(grads) {
        if let Some(g) = g {
            let (s, v) = crate::model::to_host(g)?;
            out.insert(name, HostTensor::f32(s, v)?);
        }
    }
    Ok((loss, out))
}

impl Model {
    /// Mean next-token cross-entropy (HF convention) of `batch` with `labels` (`-100` ignored).
    pub fn loss(&self, batch: &[Vec<u32>], labels: &[Vec<i64>]) -> Result<f64, TrainError> {
        let tb = label_batch(batch, labels, self.tokenizer.pad_id)?;
        with_lm!(&self.lm, lm => {
            let l = loss_tensor(lm, &tb, &AdapterCtx::eval())?;
            let v: f32 = l.into_scalar().elem();
            Ok(f64::from(v))
        })
    }

    /// The adapters training changes now: the active, trainable ones. One of them is put in
    /// the layers' working slots, so that its method's training hooks (AdaLoRA's rank
    /// allocation and regulariser, FLix's routing) apply to it; at most one of them may have
    /// such hooks. The optimizer state is kept while the set stays the same.
    fn prepare_training(&mut self, what: &str) -> Result<String, TrainError> {
        use crate::adapter::{AdapterError, MethodKind};
        if self.adapters.is_empty() {
            return Err(AdapterError::NoAdapter.into());
        }
        if self.adapters.any_merged() {
            return Err(AdapterError::Unsupported(format!(
                "{what}: adapters are merged into the base weights; call unmerge_adapter() first"
            ))
            .into());
        }
        let trainees: Vec<&crate::adapter::state::AdapterState> = self
            .adapters
            .list
            .iter()
            .filter(|s| s.active && s.trainable)
            .collect();
        if trainees.is_empty() {
            return Err(AdapterError::Unsupported(format!(
                "{what}: no adapter is both active and trainable (adapters: {}; active: {}); use \
                 set_active and set_trainable",
                self.adapters.names().join(", "),
                self.adapters.active().join(", ")
            ))
            .into());
        }
        let hooked: Vec<&str> = trainees
            .iter()
            .filter(|s| matches!(s.method.kind(), MethodKind::AdaLora | MethodKind::Flix))
            .map(|s| s.name.as_str())
            .collect();
        if hooked.len() > 1 {
            return Err(AdapterError::Unsupported(format!(
                "{what}: {} are AdaLoRA/FLix adapters with their own training schedule; train \
                 them one at a time (set_trainable(name, false) on the others)",
                hooked.join(" and ")
            ))
            .into());
        }
        let focus = hooked
            .first()
            .map(|s| s.to_string())
            .unwrap_or_else(|| trainees[0].name.clone());
        let mut names: Vec<String> = trainees.iter().map(|s| s.name.clone()).collect();
        names.sort();
        if self.adapters.trained != names {
            self.drop_optimizer();
            self.adapters.trained = names;
        }
        self.focus(&focus)?;
        Ok(focus)
    }

    /// The loss and the gradient of every trainable tensor of the active, trainable adapters,
    /// keyed `<module>.<param key>` (AdaLoRA's regulariser included); with several such
    /// adapters, the keys of all but the first carry `<adapter>/` in front.
    pub fn gradients(
        &mut self,
        batch: &[Vec<u32>],
        labels: &[Vec<i64>],
    ) -> Result<(f64, BTreeMap<String, HostTensor>), TrainError> {
        let focus = self.prepare_training("gradients")?;
        let tb = label_batch(batch, labels, self.tokenizer.pad_id)?;
        let method = self.adapters.get(&focus).ok().map(|st| &st.method);
        with_lm!(&mut self.lm, lm => grads_generic(lm, &tb, method))
    }

    /// One AdamW step on the active, trainable adapters; returns the loss before the step.
    pub fn train_step(
        &mut self,
        batch: &[Vec<u32>],
        labels: &[Vec<i64>],
        o: &StepOptions,
    ) -> Result<f64, TrainError> {
        o.validate()?;
        let tb = label_batch(batch, labels, self.tokenizer.pad_id)?;
        let focus = self.prepare_training("train_step")?;
        let method = self
            .adapters
            .list
            .iter()
            .find(|s| s.name == focus)
            .map(|st| &st.method);
        let pair = with_optim(&mut self.lm, &mut self.optimizer, AdamWConfig::from(o))?;
        with_lm_optim!(pair, lm, opt => step_generic(lm, opt, method, &tb, o))
    }

    /// Trains the active, trainable adapters on dataset rows; `on_event` hears every finished
    /// step and every warning (e.g. a checkpoint skipped on resume).
    pub fn train(
        &mut self,
        rows: &[Row],
        opts: &TrainOptions,
        on_event: &mut dyn FnMut(TrainEvent<'_>),
        interrupted: &dyn Fn() -> bool,
    ) -> Result<TrainReport, TrainError> {
        let focus = self.prepare_training("train")?;
        let st = self
            .adapters
            .list
            .iter_mut()
            .find(|s| s.name == focus)
            .ok_or(crate::adapter::AdapterError::NoAdapter)?;
        let tok = &self.tokenizer;
        let config = AdamWConfig {
            betas: opts.betas,
            eps: opts.eps,
            weight_decay: opts.weight_decay,
        };
        let pair = with_optim(&mut self.lm, &mut self.optimizer, config)?;
        let hooks = Hooks {
            on_event,
            interrupted,
        };
        with_lm_optim!(pair, lm, opt => train(lm, st, opt, tok, rows, opts, hooks))
    }
}
