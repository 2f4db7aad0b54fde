//! IA³: infused adapter by inhibiting and amplifying inner activations (Liu et al. 2022,
//! arXiv 2205.05638).
//!
//! A learned vector rescales a layer (PEFT `ia3/layer.py`): for attention projections the
//! *output* is scaled, `y = (W x + b) ⊙ l` with `l: [out, 1]`; for feed-forward modules
//! (`feedforward_modules`, by default `down_proj`) the *input* is scaled, `y = W (x ⊙ l) + b`
//! with `l: [1, in]`. `l` starts at ones; saved as `ia3_l` (`[out, 1]`, or `[1, in]` for
//! feed-forward modules), config `peft_type: "IA3"` with the `feedforward_modules` it adapted.

use super::peft_io::{PeftFiles, Strict};
use super::state::AdapterState;
use super::{
    device_tensor, AdapterCtx, AdapterError, AdapterMethod, AdapterOptions, LinearAdapter,
    LowRank, Param, Targets, Unsupported,
};
use crate::model::linear::Linear;
use crate::model::llama::CausalLm;
use crate::backend::LmBackend;
use burn::tensor::Tensor;
use serde_json::{json, Map, Value};

/// IA³ on one linear layer.
pub struct Ia3Layer<B: LmBackend> {
    /// `ia3_l`, stored `[1, out]` (or `[1, in]` for feed-forward modules).
    pub l: Param<B>,
    /// Whether the input (feed-forward) rather than the output is scaled.
    pub feedforward: bool,
}

impl<B: LmBackend> Ia3Layer<B> {
    /// Ones-initialised scaling for a layer.
    pub fn new(layer: &Linear<B>, feedforward: bool, device: &B::Device) -> Self {
        let (n, saved) = if feedforward {
            (layer.in_features, vec![1, layer.in_features])
        } else {
            (layer.out_features, vec![layer.out_features, 1])
        };
        Ia3Layer {
            l: Param::new("ia3_l", vec![1.0; n], [1, n], saved, device),
            feedforward,
        }
    }
}

impl<B: LmBackend> LinearAdapter<B> for Ia3Layer<B> {
    fn forward(&self, layer: &Linear<B>, x: Tensor<B, 2>, _ctx: &AdapterCtx<B>) -> Tensor<B, 2> {
        let l = self.l.get();
        let l = if l.dtype() == x.dtype() {
            l
        } else {
            l.cast(x.dtype())
        };
        if self.feedforward {
            layer.base_forward(x * l)
        } else {
            layer.base_forward(x) * l
        }
    }

    fn params(&self) -> Vec<&Param<B>> {
        vec![&self.l]
    }

    fn params_mut(&mut self) -> Vec<&mut Param<B>> {
        vec![&mut self.l]
    }

    fn merged(
        &self,
        layer: &Linear<B>,
    ) -> Result<(Tensor<B, 2>, Option<Tensor<B, 1>>), Unsupported> {
        let w = layer.dense_weight();
        let l = self.l.get();
        if self.feedforward {
            Ok((w * l, layer.bias.clone()))
        } else {
            let bias = layer
                .bias
                .clone()
                .map(|b| b * l.clone().reshape([layer.out_features]));
            Ok((w * l.transpose(), bias))
        }
    }

    fn low_rank(&self, _layer: &Linear<B>) -> Result<LowRank<B>, Unsupported> {
        Err(Unsupported(
            "IA³ is not a low-rank update (it rescales whole rows/columns of W); merge it with \
             merge_adapter() instead of exporting a plain LoRA"
                .into(),
        ))
    }
}

/// Whether a module is one of IA³'s feed-forward modules.
pub fn is_feedforward(module: &str, ff: &[String]) -> bool {
    ff.iter()
        .any(|f| module == f || module.ends_with(&format!(".{f}")))
}

/// The feed-forward module names of the options (default `down_proj`).
fn feedforward(o: &AdapterOptions) -> Vec<String> {
    o.feedforward
        .clone()
        .unwrap_or_else(|| vec!["down_proj".to_string()])
}

/// The IA³ method.
pub struct Ia3;

impl AdapterMethod for Ia3 {
    const NAME: &'static str = "ia3";
    const OPTION_KEYS: &'static [&'static str] = &["feedforward"];
    const ALIASES: &'static [&'static str] = &["ia³"];
    const PEFT_TYPE: Option<&'static str> = Some("IA3");
    const SUFFIXES: &'static [&'static str] = &["ia3_l"];

    /// PEFT's Llama default for IA³.
    fn default_targets() -> Targets {
        Targets::Many(vec!["k_proj".into(), "v_proj".into(), "down_proj".into()])
    }

    fn module_params(_o: &AdapterOptions, _r: u128, in_f: u128, out_f: u128) -> u128 {
        in_f.max(out_f)
    }

    fn size_note(_o: &AdapterOptions, _r: usize) -> String {
        String::new()
    }

    fn attach<B: LmBackend>(
        o: &AdapterOptions,
        lm: &mut CausalLm<B>,
        modules: &[String],
    ) -> Result<Self, AdapterError> {
        let ff = feedforward(o);
        let device = lm.device.clone();
        for (name, layer) in lm.linears_mut() {
            if modules.contains(&name) {
                let l = Ia3Layer::new(layer, is_feedforward(&name, &ff), &device);
                layer.adapter = Some(Box::new(l));
            }
        }
        Ok(Ia3)
    }

    fn reads(peft_type: &str, _cfg: &Strict<'_>) -> Result<bool, AdapterError> {
        Ok(peft_type == "IA3")
    }

    fn load<B: LmBackend>(
        files: &PeftFiles<'_>,
        o: &mut AdapterOptions,
        lm: &mut CausalLm<B>,
    ) -> Result<Self, AdapterError> {
        let ff_modules: Vec<String> = match files
            .get::<Targets>("feedforward_modules", "a list of module names or a string")?
        {
            Some(Targets::Many(v)) => v,
            Some(Targets::One(s)) => vec![s],
            None => Vec::new(),
        };
        o.feedforward = Some(ff_modules.clone());
        let device = lm.device.clone();
        for (name, layer) in lm.linears_mut() {
            let Some(g) = files.group(&name) else {
                continue;
            };
            let (in_f, out_f) = (layer.in_features, layer.out_features);
            let t = g
                .map
                .get("ia3_l")
                .ok_or_else(|| files.file_error(format!("missing ia3_l of {name}")))?;
            let ff = is_feedforward(&name, &ff_modules)
                || t.shape == vec![1, in_f] && t.shape != vec![out_f, 1];
            let mut l = Ia3Layer::new(layer, ff, &device);
            let n = if ff { in_f } else { out_f };
            let want = if ff { vec![1, in_f] } else { vec![out_f, 1] };
            l.l.value = device_tensor(g.get("ia3_l", Some(want))?, [1, n], &device);
            layer.adapter = Some(Box::new(l));
        }
        Ok(Ia3)
    }

    fn peft_config(&self, st: &AdapterState, _steps: usize) -> Result<Map<String, Value>, AdapterError> {
        let ff = feedforward(&st.options);
        let ff_mods: Vec<&String> = st
            .modules
            .iter()
            .filter(|m| is_feedforward(m, &ff))
            .collect();
        let v = json!({
            "peft_type": "IA3", "feedforward_modules": ff_mods, "init_ia3_weights": true,
        });
        Ok(v.as_object().cloned().unwrap_or_default())
    }
}
