//! FLix: featurized low-rank mixtures (Lin et al. 2024, arXiv 2402.17934).
//!
//! Every value of every dataset feature (e.g. `lang ∈ {en, ur}`, `task ∈ {nli, qa}`) owns a
//! LoRA with its own rank `r_f`; the update for an example is the sum of the LoRAs of its
//! features, `y = W x + b + Σ_{f ∈ F(x)} s_f B_f A_f x` with `s_f = alpha / r_f` (rsLoRA:
//! `alpha/√r_f`). During training the features come from the dataset rows (fields named like
//! the feature keys) and each feature of an example is dropped with probability
//! `feature_dropout`; at inference `set_features` selects the active adapters, so unseen
//! combinations compose and a missing feature simply contributes nothing.
//!
//! Saved with peftlab's own `peft_type: "FLIX"` (keys
//! `…<module>.flix.<feature>.<value>.lora_{A,B}.weight`); `export_lora` turns any feature
//! combination into a plain PEFT LoRA by stacking: `A' = [s₁A₁; s₂A₂]`, `B' = [B₁, B₂]`, scale 1.

use super::lora::{init_a, lora_info, scaling, LoraLayer};
use super::options::unit_interval;
use super::peft_io::{PeftFiles, Strict};
use super::state::AdapterState;
use super::{
    dropout, AdapterCtx, AdapterError, AdapterMethod, AdapterOptions, Dims, LinearAdapter,
    LowRank, Param, RowMask, Unsupported,
};
use crate::model::linear::Linear;
use crate::model::llama::CausalLm;
use crate::backend::LmBackend;
use crate::value::Row;
use burn::tensor::Tensor;
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use std::sync::{Arc, PoisonError, RwLock};

/// The inference-time selection, feature → active value, shared by the method and its layers.
pub type Active = Arc<RwLock<BTreeMap<String, String>>>;

/// A copy of the current selection.
fn selection(active: &Active) -> BTreeMap<String, String> {
    active
        .read()
        .unwrap_or_else(PoisonError::into_inner)
        .clone()
}

/// One feature value's LoRA.
pub struct FlixExpert<B: LmBackend> {
    /// Feature name (e.g. `lang`).
    pub feature: String,
    /// Feature value (e.g. `ur`).
    pub value: String,
    /// Its low-rank update.
    pub lora: LoraLayer<B>,
}

impl<B: LmBackend> FlixExpert<B> {
    /// The routing key `feature=value`.
    pub fn key(&self) -> String {
        format!("{}={}", self.feature, self.value)
    }
}

/// FLix on one linear layer.
pub struct FlixLayer<B: LmBackend> {
    /// One LoRA per feature value.
    pub experts: Vec<FlixExpert<B>>,
    /// The inference-time selection: feature → active value (absent = feature unused).
    pub active: Active,
    /// Input dropout.
    pub dropout: f64,
}

impl<B: LmBackend> FlixLayer<B> {
    fn mask_for(
        &self,
        e: &FlixExpert<B>,
        ctx: &AdapterCtx<B>,
        active: &BTreeMap<String, String>,
    ) -> RowMask<B> {
        match ctx.routing.get(&e.key()) {
            Some(m) => m.clone(),
            None => RowMask::All(active.get(&e.feature) == Some(&e.value)),
        }
    }
}

impl<B: LmBackend> LinearAdapter<B> for FlixLayer<B> {
    fn forward(&self, layer: &Linear<B>, x: Tensor<B, 2>, ctx: &AdapterCtx<B>) -> Tensor<B, 2> {
        let mut out = layer.base_forward(x.clone());
        let xd = dropout(x, self.dropout, ctx);
        let active = selection(&self.active);
        for e in &self.experts {
            match self.mask_for(e, ctx, &active) {
                RowMask::All(false) => {}
                RowMask::All(true) => out = out + e.lora.delta(xd.clone()),
                RowMask::Rows(m) => out = out + e.lora.delta(xd.clone()) * m,
            }
        }
        out
    }

    fn params(&self) -> Vec<&Param<B>> {
        self.experts
            .iter()
            .flat_map(|e| [&e.lora.a, &e.lora.b])
            .collect()
    }

    fn params_mut(&mut self) -> Vec<&mut Param<B>> {
        self.experts
            .iter_mut()
            .flat_map(|e| [&mut e.lora.a, &mut e.lora.b])
            .collect()
    }

    fn merged(
        &self,
        layer: &Linear<B>,
    ) -> Result<(Tensor<B, 2>, Option<Tensor<B, 1>>), Unsupported> {
        let mut w = layer.dense_weight();
        let active = selection(&self.active);
        for e in &self.experts {
            if active.get(&e.feature) == Some(&e.value) {
                w = w + e.lora.delta_weight();
            }
        }
        Ok((w, layer.bias.clone()))
    }

    fn low_rank(&self, _layer: &Linear<B>) -> Result<LowRank<B>, Unsupported> {
        let selected = selection(&self.active);
        let active: Vec<&FlixExpert<B>> = self
            .experts
            .iter()
            .filter(|e| selected.get(&e.feature) == Some(&e.value))
            .collect();
        if active.is_empty() {
            return Err(Unsupported(
                "export_lora: no FLix feature is active; call set_features first".into(),
            ));
        }
        let a = Tensor::cat(
            active
                .iter()
                .map(|e| e.lora.a.get().mul_scalar(e.lora.scaling))
                .collect(),
            0,
        );
        let b = Tensor::cat(active.iter().map(|e| e.lora.b.get()).collect(), 1);
        Ok(LowRank { a, b, scale: 1.0 })
    }
}

/// The rank of feature `f` (its `feature_rank`, default `r`).
fn feature_rank(o: &AdapterOptions, f: &str, r: usize) -> usize {
    o.feature_rank
        .as_ref()
        .and_then(|m| m.get(f))
        .copied()
        .unwrap_or(r)
}

/// The FLix method; keeps the features and the selection its layers read.
pub struct Flix {
    /// Feature name → possible values.
    pub features: BTreeMap<String, Vec<String>>,
    /// The inference-time selection (`set_features`).
    pub active: Active,
}

impl AdapterMethod for Flix {
    const NAME: &'static str = "flix";
    const OPTION_KEYS: &'static [&'static str] = &["features", "feature_rank", "feature_dropout"];
    const PEFT_TYPE: Option<&'static str> = Some("FLIX");

    fn validate(o: &AdapterOptions) -> Result<(), AdapterError> {
        unit_interval("feature_dropout", o.feature_dropout)?;
        let feats = o.features.as_ref().filter(|f| !f.is_empty()).ok_or_else(|| {
            AdapterError::Option(
                "flix needs features, e.g. #{ lang: [\"en\", \"ur\"], task: [\"nli\"] }".into(),
            )
        })?;
        for (k, v) in feats {
            if v.is_empty() {
                return Err(AdapterError::Option(format!(
                    "flix feature '{k}' has no values"
                )));
            }
        }
        if let Some(fr) = &o.feature_rank {
            for (k, r) in fr {
                if !feats.contains_key(k) {
                    return Err(AdapterError::Option(format!(
                        "feature_rank names '{k}', which is not a feature (features: {})",
                        feats.keys().cloned().collect::<Vec<_>>().join(", ")
                    )));
                }
                if *r == 0 {
                    return Err(AdapterError::Option(format!(
                        "feature_rank of '{k}' must be > 0"
                    )));
                }
            }
        }
        Ok(())
    }

    fn module_params(o: &AdapterOptions, r: u128, in_f: u128, out_f: u128) -> u128 {
        o.features
            .iter()
            .flatten()
            .map(|(f, values)| {
                let rf = o
                    .feature_rank
                    .as_ref()
                    .and_then(|m| m.get(f))
                    .map_or(r, |&x| x as u128);
                rf.saturating_mul(in_f + out_f)
                    .saturating_mul(values.len() as u128)
            })
            .fold(0u128, u128::saturating_add)
    }

    fn size_note(o: &AdapterOptions, r: usize) -> String {
        match &o.feature_rank {
            Some(fr) => format!(" with r = {r} and feature_rank = {fr:?}"),
            None => format!(" with r = {r}"),
        }
    }

    fn attach<B: LmBackend>(
        o: &AdapterOptions,
        lm: &mut CausalLm<B>,
        modules: &[String],
    ) -> Result<Self, AdapterError> {
        let r = o.rank()?;
        let alpha = o.alpha_value()?;
        let features = o.features.clone().unwrap_or_default();
        let active = Active::default();
        let device = lm.device.clone();
        let mut rng = crate::rng::derived(o.seed, "adapter-init");
        for (_, layer) in super::targets_mut(lm, modules) {
            let (in_f, out_f) = (layer.in_features, layer.out_features);
            let mut experts = Vec::new();
            for (f, values) in &features {
                let rf = feature_rank(o, f, r);
                let sf = scaling(alpha, rf, o.rslora);
                for v in values {
                    let a = init_a(o, rf, in_f, &mut rng);
                    let dims = Dims { r: rf, in_f, out_f };
                    let mut l = LoraLayer::from_host(a, vec![0.0; out_f * rf], dims, sf, 0.0, &device);
                    l.a.key = format!("flix.{f}.{v}.lora_A.weight");
                    l.b.key = format!("flix.{f}.{v}.lora_B.weight");
                    experts.push(FlixExpert {
                        feature: f.clone(),
                        value: v.clone(),
                        lora: l,
                    });
                }
            }
            layer.adapter = Some(Box::new(FlixLayer {
                experts,
                active: active.clone(),
                dropout: o.dropout,
            }));
        }
        Ok(Flix { features, active })
    }

    fn reads(peft_type: &str, _cfg: &Strict<'_>) -> Result<bool, AdapterError> {
        Ok(peft_type == "FLIX")
    }

    /// `…<module>.flix.<feature>.<value>.lora_{A,B}.weight`.
    fn split_key(rest: &str) -> Option<(String, String)> {
        let i = rest.find(".flix.")?;
        Some((rest[..i].to_string(), rest[i + 1..].to_string()))
    }

    fn load<B: LmBackend>(
        files: &PeftFiles<'_>,
        o: &mut AdapterOptions,
        lm: &mut CausalLm<B>,
    ) -> Result<Self, AdapterError> {
        o.alpha = Some(files.alpha);
        if let Some(f) = files.get("features", "a map of feature names to lists of values")? {
            o.features = Some(f);
        }
        if let Some(f) = files.get("feature_rank", "a map of feature names to ranks")? {
            o.feature_rank = Some(f);
        }
        if let Some(d) = files.cfg.fraction("feature_dropout")? {
            o.feature_dropout = d;
        }
        o.r = files.config_r;
        let active = Active::default();
        let device = lm.device.clone();
        for (name, layer) in lm.linears_mut() {
            let Some(g) = files.group(&name) else {
                continue;
            };
            let (in_f, out_f) = (layer.in_features, layer.out_features);
            let mut experts = Vec::new();
            for k in g.map.keys().filter(|k| k.ends_with(".lora_A.weight")) {
                let parts: Vec<&str> = k.split('.').collect();
                if parts.len() < 5 {
                    return Err(files.file_error(format!("unexpected tensor key '{k}'")));
                }
                let (f, v) = (parts[1].to_string(), parts[2..parts.len() - 2].join("."));
                let bk = k.replace(".lora_A.weight", ".lora_B.weight");
                let r = g.rank_of(k, 0);
                let a = g.get(k, Some(vec![r, in_f]))?;
                let b = g.get(&bk, Some(vec![out_f, r]))?;
                let s = scaling(files.alpha, r, files.rslora);
                let mut l = LoraLayer::from_host(a, b, Dims { r, in_f, out_f }, s, 0.0, &device);
                l.a.key = k.clone();
                l.b.key = bk;
                experts.push(FlixExpert {
                    feature: f,
                    value: v,
                    lora: l,
                });
            }
            layer.adapter = Some(Box::new(FlixLayer {
                experts,
                active: active.clone(),
                dropout: files.dropout,
            }));
        }
        Ok(Flix {
            features: o.features.clone().unwrap_or_default(),
            active,
        })
    }

    fn peft_config(&self, st: &AdapterState, _steps: usize) -> Result<Map<String, Value>, AdapterError> {
        let o = &st.options;
        let v = json!({
            "peft_type": "FLIX", "r": o.rank()?, "lora_alpha": o.alpha_value()?,
            "use_rslora": o.rslora, "lora_dropout": o.dropout, "features": o.features,
            "feature_rank": o.feature_rank, "feature_dropout": o.feature_dropout,
        });
        Ok(v.as_object().cloned().unwrap_or_default())
    }

    fn routing_keys(&self) -> Vec<(String, String)> {
        self.features
            .iter()
            .flat_map(|(f, vs)| vs.iter().map(move |v| (f.clone(), v.clone())))
            .collect()
    }

    fn info(&self, o: &AdapterOptions, row: &mut Row) -> Result<(), AdapterError> {
        lora_info(o, row)?;
        row.insert(
            "features".into(),
            serde_json::to_value(&o.features).unwrap_or(Value::Null),
        );
        row.insert(
            "selected".into(),
            serde_json::to_value(selection(&self.active)).unwrap_or(Value::Null),
        );
        Ok(())
    }

    fn set_features(&mut self, features: BTreeMap<String, String>) -> Result<(), AdapterError> {
        let known = &self.features;
        for (k, v) in &features {
            let values = known.get(k).ok_or_else(|| {
                AdapterError::Option(format!(
                    "unknown feature '{k}' (features: {})",
                    known.keys().cloned().collect::<Vec<_>>().join(", ")
                ))
            })?;
            if !values.contains(v) {
                return Err(AdapterError::Option(format!(
                    "feature '{k}' has no adapter for value '{v}' (values: {})",
                    values.join(", ")
                )));
            }
        }
        *self.active.write().unwrap_or_else(PoisonError::into_inner) = features;
        Ok(())
    }
}
