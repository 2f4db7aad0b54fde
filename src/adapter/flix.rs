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

use super::lora::{factors, LoraLayer};
use super::{dropout, AdapterCtx, AdapterError, LinearAdapter, LoraFactors, Param, RowMask};
use crate::model::linear::Linear;
use crate::quant::QuantBackend;
use burn::tensor::Tensor;
use std::collections::BTreeMap;

/// One feature value's LoRA.
pub struct FlixExpert<B: QuantBackend> {
    /// Feature name (e.g. `lang`).
    pub feature: String,
    /// Feature value (e.g. `ur`).
    pub value: String,
    /// Its low-rank update.
    pub lora: LoraLayer<B>,
}

impl<B: QuantBackend> FlixExpert<B> {
    /// The routing key `feature=value`.
    pub fn key(&self) -> String {
        format!("{}={}", self.feature, self.value)
    }
}

/// FLix on one linear layer.
pub struct FlixLayer<B: QuantBackend> {
    /// One LoRA per feature value.
    pub experts: Vec<FlixExpert<B>>,
    /// The inference-time selection: feature → active value (absent = feature unused).
    pub active: BTreeMap<String, String>,
    /// Input dropout.
    pub dropout: f64,
}

impl<B: QuantBackend> FlixLayer<B> {
    fn mask_for(&self, e: &FlixExpert<B>, ctx: &AdapterCtx<B>) -> RowMask<B> {
        match ctx.routing.get(&e.key()) {
            Some(m) => m.clone(),
            None => RowMask::All(self.active.get(&e.feature) == Some(&e.value)),
        }
    }
}

impl<B: QuantBackend> LinearAdapter<B> for FlixLayer<B> {
    fn method(&self) -> &'static str {
        "flix"
    }

    fn forward(&self, layer: &Linear<B>, x: Tensor<B, 2>, ctx: &AdapterCtx<B>) -> Tensor<B, 2> {
        let mut out = layer.base_forward(x.clone());
        let xd = dropout(x, self.dropout, ctx);
        for e in &self.experts {
            match self.mask_for(e, ctx) {
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
    ) -> Result<(Tensor<B, 2>, Option<Tensor<B, 1>>), AdapterError> {
        let mut w = layer.dense_weight();
        for e in &self.experts {
            if self.active.get(&e.feature) == Some(&e.value) {
                w = w + e.lora.delta_weight();
            }
        }
        Ok((w, layer.bias.clone()))
    }

    fn lora_factors(&self, _layer: &Linear<B>) -> Result<LoraFactors, AdapterError> {
        let active: Vec<&FlixExpert<B>> = self
            .experts
            .iter()
            .filter(|e| self.active.get(&e.feature) == Some(&e.value))
            .collect();
        if active.is_empty() {
            return Err(AdapterError::Unsupported(
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
        factors(a, b, 1.0)
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }

    fn as_any_mut(&mut self) -> &mut dyn std::any::Any {
        self
    }
}
