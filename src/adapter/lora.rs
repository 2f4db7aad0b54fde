//! LoRA: low-rank adaptation (Hu et al. 2021, arXiv 2106.09685) and rsLoRA (Kalajdzievski 2023,
//! arXiv 2312.03732).
//!
//! `y = W x + b + s · B A dropout(x)` with `A: [r, in]`, `B: [out, r]` and
//! `s = alpha / r` (rsLoRA: `alpha / √r`). PEFT's initialisation: `A` Kaiming-uniform with
//! `a = √5` (`U(±1/√in)`), `B = 0`; `init_lora_weights="gaussian"` draws `A ~ N(0, (1/r)²)`.
//! Saved as `lora_A.weight` / `lora_B.weight` (PEFT `lora/layer.py`), config `peft_type: "LORA"`
//! with `use_dora: false`. [`super::dora`], [`super::pissa`] and [`super::flix`] reuse this layer
//! and the helpers here.

use super::init::{lora_a, normal};
use super::peft_io::{pattern_value, PeftFiles, Strict};
use super::state::AdapterState;
use super::{
    dropout, AdapterCtx, AdapterError, AdapterMethod, AdapterOptions, Dims, LinearAdapter, LowRank,
    Param, Unsupported,
};
use crate::model::linear::Linear;
use crate::model::llama::CausalLm;
use crate::backend::LmBackend;
use crate::value::{num, Row};
use burn::tensor::Tensor;
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;

/// The LoRA scale `alpha/r` or `alpha/√r`.
pub fn scaling(alpha: f64, r: usize, rslora: bool) -> f64 {
    if rslora {
        alpha / (r as f64).sqrt()
    } else {
        alpha / r as f64
    }
}

/// LoRA on one linear layer.
pub struct LoraLayer<B: LmBackend> {
    /// `lora_A.weight`, `[r, in]`.
    pub a: Param<B>,
    /// `lora_B.weight`, `[out, r]`.
    pub b: Param<B>,
    /// Rank.
    pub r: usize,
    /// Scale of `B A`.
    pub scaling: f64,
    /// Input dropout probability.
    pub dropout: f64,
}

impl<B: LmBackend> LoraLayer<B> {
    /// Builds the layer from host values of A (`[r, in]`) and B (`[out, r]`).
    pub fn from_host(
        a: Vec<f32>,
        b: Vec<f32>,
        Dims { r, in_f, out_f }: Dims,
        scaling: f64,
        dropout: f64,
        device: &B::Device,
    ) -> Self {
        LoraLayer {
            a: Param::new("lora_A.weight", a, [r, in_f], vec![r, in_f], device),
            b: Param::new("lora_B.weight", b, [out_f, r], vec![out_f, r], device),
            r,
            scaling,
            dropout,
        }
    }

    /// The update alone: `s · B A x` on `[N, in]` (no dropout).
    pub fn delta(&self, x: Tensor<B, 2>) -> Tensor<B, 2> {
        let a = self.a.get();
        let b = self.b.get();
        let (a, b) = if a.dtype() == x.dtype() {
            (a, b)
        } else {
            (a.cast(x.dtype()), b.cast(x.dtype()))
        };
        x.matmul(a.transpose())
            .matmul(b.transpose())
            .mul_scalar(self.scaling)
    }

    /// `s · B A` as a dense `[out, in]` matrix.
    pub fn delta_weight(&self) -> Tensor<B, 2> {
        self.b.get().matmul(self.a.get()).mul_scalar(self.scaling)
    }
}

impl<B: LmBackend> LinearAdapter<B> for LoraLayer<B> {
    fn forward(&self, layer: &Linear<B>, x: Tensor<B, 2>, ctx: &AdapterCtx<B>) -> Tensor<B, 2> {
        let base = layer.base_forward(x.clone());
        base + self.delta(dropout(x, self.dropout, ctx))
    }

    fn delta(
        &self,
        _layer: &Linear<B>,
        x: Tensor<B, 2>,
        ctx: &AdapterCtx<B>,
        _base: &Tensor<B, 2>,
    ) -> Tensor<B, 2> {
        LoraLayer::delta(self, dropout(x, self.dropout, ctx))
    }

    fn params(&self) -> Vec<&Param<B>> {
        vec![&self.a, &self.b]
    }

    fn params_mut(&mut self) -> Vec<&mut Param<B>> {
        vec![&mut self.a, &mut self.b]
    }

    fn merged(
        &self,
        layer: &Linear<B>,
    ) -> Result<(Tensor<B, 2>, Option<Tensor<B, 1>>), Unsupported> {
        let w = layer.dense_weight();
        let d = self.delta_weight();
        let d = if d.dtype() == w.dtype() {
            d
        } else {
            d.cast(w.dtype())
        };
        Ok((w + d, layer.bias.clone()))
    }

    fn low_rank(&self, _layer: &Linear<B>) -> Result<LowRank<B>, Unsupported> {
        Ok(LowRank {
            a: self.a.get(),
            b: self.b.get(),
            scale: self.scaling,
        })
    }
}

/// A's initialisation: PEFT's Kaiming-uniform, or `N(0, (1/r)²)` with `init: "gaussian"`.
pub fn init_a(o: &AdapterOptions, r: usize, in_f: usize, rng: &mut crate::rng::Rng) -> Vec<f32> {
    if o.init == "gaussian" {
        normal(r * in_f, 1.0 / r as f64, rng)
    } else {
        lora_a(r, in_f, rng)
    }
}

/// Puts a fresh LoRA (B = 0) on each of `modules`, passed through `wrap` (DoRA wraps it).
pub fn attach_layers<B: LmBackend>(
    o: &AdapterOptions,
    lm: &mut CausalLm<B>,
    modules: &[String],
    wrap: impl Fn(LoraLayer<B>, &Linear<B>) -> Box<dyn LinearAdapter<B>>,
) -> Result<(), AdapterError> {
    let r = o.rank()?;
    let s = scaling(o.alpha_value()?, r, o.rslora);
    let device = lm.device.clone();
    let mut rng = crate::rng::derived(o.seed, "adapter-init");
    for (_, layer) in super::targets_mut(lm, modules) {
        let (in_f, out_f) = (layer.in_features, layer.out_features);
        let l = LoraLayer::from_host(
            init_a(o, r, in_f, &mut rng),
            vec![0.0; out_f * r],
            Dims { r, in_f, out_f },
            s,
            o.dropout,
            &device,
        );
        layer.adapter = Some(wrap(l, layer));
    }
    Ok(())
}

/// Reads the LoRA of every module of a `peft_type: "LORA"` directory (per-module alpha from
/// `alpha_pattern`), passed through `wrap` with the module's tensors; sets `alpha`, `r` and
/// `init` in `o`.
pub fn load_layers<B: LmBackend>(
    files: &PeftFiles<'_>,
    o: &mut AdapterOptions,
    lm: &mut CausalLm<B>,
    wrap: impl Fn(
        LoraLayer<B>,
        &Linear<B>,
        &super::peft_io::Group<'_>,
    ) -> Result<Box<dyn LinearAdapter<B>>, AdapterError>,
) -> Result<(), AdapterError> {
    let alpha_pattern: BTreeMap<String, f64> = files
        .get("alpha_pattern", "a map of module patterns to numbers")?
        .unwrap_or_default();
    let init: Option<Value> = files.get("init_lora_weights", "a bool or a string")?;
    if init.as_ref().and_then(Value::as_str) == Some("gaussian") {
        o.init = "gaussian".into();
    }
    o.alpha = Some(files.alpha);
    let device = lm.device.clone();
    let mut first_r = None;
    for (name, layer) in lm.linears_mut() {
        let Some(g) = files.group(&name) else {
            continue;
        };
        let (in_f, out_f) = (layer.in_features, layer.out_features);
        let r = g.rank_of("lora_A.weight", 0);
        let a = g.get("lora_A.weight", Some(vec![r, in_f]))?;
        let b = g.get("lora_B.weight", Some(vec![out_f, r]))?;
        let al = pattern_value(&alpha_pattern, &name).unwrap_or(files.alpha);
        first_r.get_or_insert(r);
        let l = LoraLayer::from_host(
            a,
            b,
            Dims { r, in_f, out_f },
            scaling(al, r, files.rslora),
            files.dropout,
            &device,
        );
        let adapter = wrap(l, layer, &g)?;
        layer.adapter = Some(adapter);
    }
    o.r = files.config_r.or(first_r);
    Ok(())
}

/// The `peft_type: "LORA"` config keys for rank `r` and `alpha`.
pub fn lora_config(o: &AdapterOptions, r: usize, alpha: f64, use_dora: bool) -> Map<String, Value> {
    let v = json!({
        "peft_type": "LORA", "r": r, "lora_alpha": alpha, "lora_dropout": o.dropout,
        "bias": "none", "layers_to_transform": null,
        "use_rslora": o.rslora, "use_dora": use_dora,
        "init_lora_weights": if o.init == "gaussian" { json!("gaussian") } else { json!(true) },
        "rank_pattern": {}, "alpha_pattern": {},
    });
    v.as_object().cloned().unwrap_or_default()
}

/// `r`, `alpha` and `rslora` for `a.info()`.
pub fn lora_info(o: &AdapterOptions, row: &mut Row) -> Result<(), AdapterError> {
    row.insert("r".into(), Value::from(o.rank()?));
    row.insert("alpha".into(), num(o.alpha_value()?));
    row.insert("rslora".into(), Value::from(o.rslora));
    Ok(())
}

/// Whether a `peft_type: "LORA"` config is DoRA (`use_dora`, read strictly).
pub fn is_dora(cfg: &Strict<'_>) -> Result<bool, AdapterError> {
    let use_dora: Option<bool> = cfg.get("use_dora", "a bool (true or false)")?;
    Ok(use_dora == Some(true))
}

/// The LoRA method (rsLoRA with `rslora: true`).
pub struct Lora;

impl AdapterMethod for Lora {
    const NAME: &'static str = "lora";
    const ALIASES: &'static [&'static str] = &["rslora"];
    const PEFT_TYPE: Option<&'static str> = Some("LORA");
    const SUFFIXES: &'static [&'static str] = &["lora_A.weight", "lora_B.weight"];

    fn module_params(_o: &AdapterOptions, r: u128, in_f: u128, out_f: u128) -> u128 {
        r.saturating_mul(in_f + out_f)
    }

    fn attach<B: LmBackend>(
        o: &AdapterOptions,
        lm: &mut CausalLm<B>,
        modules: &[String],
    ) -> Result<Self, AdapterError> {
        attach_layers(o, lm, modules, |l, _| Box::new(l))?;
        Ok(Lora)
    }

    fn reads(peft_type: &str, cfg: &Strict<'_>) -> Result<bool, AdapterError> {
        Ok(!is_dora(cfg)? && peft_type == "LORA")
    }

    fn load<B: LmBackend>(
        files: &PeftFiles<'_>,
        o: &mut AdapterOptions,
        lm: &mut CausalLm<B>,
    ) -> Result<Self, AdapterError> {
        load_layers(files, o, lm, |l, _, _| Ok(Box::new(l)))?;
        Ok(Lora)
    }

    fn peft_config(&self, st: &AdapterState, _steps: usize) -> Result<Map<String, Value>, AdapterError> {
        let o = &st.options;
        Ok(lora_config(o, o.rank()?, o.alpha_value()?, false))
    }

    fn info(&self, o: &AdapterOptions, row: &mut Row) -> Result<(), AdapterError> {
        lora_info(o, row)
    }
}

/// Puts LoRA layers with given factors on their modules (an adapter made by
/// [`super::combine`]), all or nothing; returns the adapted modules in model order. Each
/// module's `scale` becomes its layer's scaling, without dropout.
pub fn attach_factors<B: LmBackend>(
    lm: &mut CausalLm<B>,
    factors: &[(String, super::LoraFactors)],
) -> Result<Vec<String>, AdapterError> {
    let wanted: BTreeMap<&str, &super::LoraFactors> =
        factors.iter().map(|(m, f)| (m.as_str(), f)).collect();
    let names: Vec<String> = lm.linears().into_iter().map(|(n, _)| n).collect();
    if let Some(missing) = wanted.keys().find(|m| !names.iter().any(|n| n == *m)) {
        return Err(AdapterError::Option(format!(
            "module '{missing}' does not exist in this model"
        )));
    }
    let device = lm.device.clone();
    super::attach_all_or_nothing(lm, |lm| {
        let mut modules = Vec::new();
        for (name, layer) in lm.linears_mut() {
            let Some(f) = wanted.get(name.as_str()) else {
                continue;
            };
            let (in_f, out_f) = (layer.in_features, layer.out_features);
            let r = f.a.shape.first().copied().unwrap_or(0);
            if f.a.shape != [r, in_f] || f.b.shape != [out_f, r] {
                return Err(AdapterError::Shape {
                    name: format!("{name}.lora_A/lora_B"),
                    expected: vec![out_f, r, in_f],
                    found: [f.b.shape.clone(), f.a.shape.clone()].concat(),
                });
            }
            let l = LoraLayer::from_host(
                f.a.values_f32(),
                f.b.values_f32(),
                Dims { r, in_f, out_f },
                f.scale,
                0.0,
                &device,
            );
            layer.adapter = Some(Box::new(l));
            modules.push(name);
        }
        Ok(modules)
    })
}
