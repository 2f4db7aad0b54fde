//! Adapter operations on the model handle: add, load, save, export, merge, remove, FLix
//! feature selection. The per-method work is in [`crate::adapter`]; this file only dispatches to
//! the backend and keeps the [`AdapterState`] (and the optimizer) in step with the layers.
//!
//! Every operation that changes several layers is all-or-nothing: it computes what each layer
//! gets first (merged weights, new adapters, PiSSA residuals) and changes the model only when
//! nothing can fail any more, so an error leaves the model and its adapter as they were.

use super::Model;
use crate::adapter::attach::{attach, replacement_weight};
use crate::adapter::state::AdapterState;
use crate::adapter::{peft_io, AdapterError, AdapterOptions, LoraFactors};
use crate::backend::LmBackend;
use crate::model::llama::CausalLm;
use crate::tensor::HostTensor;
use crate::value::{num, Row, Value};
use crate::with_lm;
use std::collections::BTreeMap;
use std::path::Path;

impl Model {
    fn state(&self) -> Result<&AdapterState, AdapterError> {
        self.adapter.as_ref().ok_or(AdapterError::NoAdapter)
    }

    /// Replaces the adapter state; the optimizer state belongs to the old adapter and goes.
    fn set_adapter(&mut self, st: Option<AdapterState>) {
        self.adapter = st;
        self.optimizer = None;
    }

    /// Attaches a new adapter (`add_adapter`).
    pub fn add_adapter(&mut self, opts: AdapterOptions) -> Result<(), AdapterError> {
        if self.adapter.is_some() {
            return Err(AdapterError::Unsupported(
                "an adapter is already attached; call remove_adapter() or merge_adapter() first"
                    .into(),
            ));
        }
        let st = with_lm!(&mut self.lm, lm => attach(lm, &opts))?;
        self.set_adapter(Some(st));
        Ok(())
    }

    /// Loads a PEFT adapter directory (`load_adapter`).
    pub fn load_adapter(&mut self, dir: &Path) -> Result<(), AdapterError> {
        if self.adapter.is_some() {
            return Err(AdapterError::Unsupported(
                "an adapter is already attached; call remove_adapter() first".into(),
            ));
        }
        // peft_io::load attaches nothing until every tensor has been read and checked.
        let st = with_lm!(&mut self.lm, lm => peft_io::load(lm, dir))?;
        self.set_adapter(Some(st));
        Ok(())
    }

    /// Writes the adapter in PEFT's layout (`save_adapter`).
    pub fn save_adapter(&self, dir: &Path) -> Result<(), AdapterError> {
        let st = self.state()?;
        let base = self.path.display().to_string();
        let steps = self.optimizer.as_ref().map_or(0, |o| o.steps());
        with_lm!(&self.lm, lm => peft_io::save(lm, st, dir, &base, steps))
    }

    /// The adapter's tensors under their PEFT keys, as saved.
    pub fn adapter_tensors(&self) -> Result<BTreeMap<String, HostTensor>, AdapterError> {
        let st = self.state()?;
        with_lm!(&self.lm, lm => peft_io::adapter_tensors(lm, st))
    }

    /// Number of trainable adapter parameters.
    pub fn trainable_params(&self) -> usize {
        with_lm!(&self.lm, lm => lm
            .linears()
            .iter()
            .filter_map(|(_, l)| l.adapter.as_ref())
            .flat_map(|a| a.params())
            .filter(|p| p.trainable)
            .map(|p| p.numel())
            .sum())
    }

    /// Base plus adapter parameters, counted as PEFT's `get_nb_trainable_parameters` does
    /// (AdaLoRA's frozen `ranknum` scalar is an `nn.Parameter` there, one per module).
    pub fn all_params(&self) -> usize {
        let ranknums = match &self.adapter {
            Some(st) => st.method.extra_param_count(st.modules.len()),
            None => 0,
        };
        let adapter: usize = with_lm!(&self.lm, lm => lm
            .linears()
            .iter()
            .filter_map(|(_, l)| l.adapter.as_ref())
            .flat_map(|a| a.params())
            .map(|p| p.numel())
            .sum());
        self.config().num_params() + adapter + ranknums
    }

    /// The `a.info()` map.
    pub fn adapter_info(&self) -> Result<Row, AdapterError> {
        let st = self.state()?;
        let mut r = Row::new();
        r.insert("method".into(), Value::from(st.method.name()));
        let trainable = self.trainable_params();
        r.insert("trainable_params".into(), Value::from(trainable));
        r.insert("all_params".into(), Value::from(self.all_params()));
        r.insert(
            "trainable_percent".into(),
            num(100.0 * trainable as f64 / self.all_params() as f64),
        );
        r.insert("modules".into(), Value::from(st.modules.len()));
        r.insert("targets".into(), Value::from(st.modules.clone()));
        st.method.info(&st.options, &mut r)?;
        let steps = self.optimizer.as_ref().map_or(0, |o| o.steps());
        r.insert("steps".into(), Value::from(steps));
        if let Some(s) = &st.source {
            r.insert("source".into(), Value::from(s.clone()));
        }
        Ok(r)
    }

    /// FLix: selects the active value per feature (a feature may be left out).
    pub fn set_features(&mut self, features: BTreeMap<String, String>) -> Result<(), AdapterError> {
        let st = self.adapter.as_mut().ok_or(AdapterError::NoAdapter)?;
        st.method.set_features(features)
    }

    /// Folds the adapter into the base weights and detaches it (`merge_adapter`). Every
    /// layer's merged weight is computed before any layer changes (the merged weights of all
    /// adapted layers are held at once), so an error leaves the model and its adapter as they
    /// were.
    pub fn merge_adapter(&mut self) -> Result<(), AdapterError> {
        self.state()?;
        with_lm!(&mut self.lm, lm => merge_all(lm))?;
        self.set_adapter(None);
        Ok(())
    }

    /// Detaches the adapter, restoring the original base (PiSSA's residual is undone).
    pub fn remove_adapter(&mut self) -> Result<(), AdapterError> {
        let st = self.adapter.as_ref().ok_or(AdapterError::NoAdapter)?;
        with_lm!(&mut self.lm, lm => st.method.detach(lm))?;
        self.set_adapter(None);
        Ok(())
    }

    /// Writes the update as a plain PEFT LoRA that vLLM and PEFT load (`export_lora`): VeRA as
    /// `diag(λd)·A`, `diag(λb)·B`; AdaLoRA as `A⊙E`; PiSSA in its rank-2r form; FLix's active
    /// feature combination stacked. Each module's scale is folded into B and every module is
    /// zero-padded to the largest rank, so the file has one `r` and `lora_alpha = r`.
    pub fn export_lora(&self, dir: &Path) -> Result<usize, AdapterError> {
        let factors = self.lora_factors()?;
        let r = factors.iter().map(|(_, f)| f.a.shape[0]).max().unwrap_or(0);
        let mut tensors = BTreeMap::new();
        let mut modules = Vec::new();
        for (name, f) in &factors {
            let (k, inp) = (f.a.shape[0], f.a.shape[1]);
            let out = f.b.shape[0];
            let mut a = f.a.values_f32();
            a.resize(r * inp, 0.0);
            let bv = f.b.values_f32();
            let mut b = vec![0f32; out * r];
            for o in 0..out {
                for j in 0..k {
                    b[o * r + j] = (f64::from(bv[o * k + j]) * f.scale) as f32;
                }
            }
            let conv = |s: Vec<usize>, v| HostTensor::f32(s, v).map_err(AdapterError::from);
            tensors.insert(
                format!("base_model.model.{name}.lora_A.weight"),
                conv(vec![r, inp], a)?,
            );
            tensors.insert(
                format!("base_model.model.{name}.lora_B.weight"),
                conv(vec![out, r], b)?,
            );
            modules.push(name.clone());
        }
        let cfg = serde_json::json!({
            "peft_type": "LORA", "task_type": "CAUSAL_LM", "r": r, "lora_alpha": r,
            "lora_dropout": 0.0, "target_modules": modules, "use_rslora": false, "use_dora": false,
            "bias": "none", "fan_in_fan_out": false, "init_lora_weights": true,
            "inference_mode": true, "modules_to_save": null, "rank_pattern": {}, "alpha_pattern": {},
            "base_model_name_or_path": self.path.display().to_string(),
        });
        let mut side = serde_json::Map::new();
        side.insert("export_of".into(), self.state()?.method.name().into());
        peft_io::write_dir(dir, &tensors, &cfg, side)?;
        Ok(r)
    }

    /// Per-module low-rank factors of the update (for `export_lora`).
    pub fn lora_factors(&self) -> Result<Vec<(String, LoraFactors)>, AdapterError> {
        let st = self.state()?;
        with_lm!(&self.lm, lm => st.method.export(lm))
    }
}

/// Folds every layer's adapter into its base weight: all merged weights first, then (nothing
/// can fail any more) every layer is changed.
fn merge_all<B: LmBackend>(lm: &mut CausalLm<B>) -> Result<(), AdapterError> {
    let mut merged = BTreeMap::new();
    for (name, layer) in lm.linears() {
        if let Some(a) = &layer.adapter {
            let (w, b) = a.merged(layer).map_err(AdapterError::from)?;
            merged.insert(name, (replacement_weight(layer, w)?, b));
        }
    }
    for (name, layer) in lm.linears_mut() {
        if let Some((w, b)) = merged.remove(&name) {
            layer.adapter = None;
            layer.weight = w;
            layer.bias = b;
        }
    }
    Ok(())
}
