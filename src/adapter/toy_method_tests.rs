//! The extension point, proved: a toy method defined entirely in this file — a learned bias
//! per output feature, `Δ(x) = b` — registered by one `#[cfg(test)]` line of the table in
//! `adapter/mod.rs`, then attached, run forward, trained, saved and loaded through the same
//! `Model` operations as the real methods.

use super::peft_io::{PeftFiles, Strict};
use super::state::AdapterState;
use super::{
    device_tensor, host_values, AdapterCtx, AdapterError, AdapterMethod, AdapterOptions,
    LinearAdapter, LowRank, Param, Targets, Unsupported,
};
use crate::model::linear::Linear;
use crate::model::llama::CausalLm;
use crate::backend::LmBackend;
use burn::tensor::Tensor;
use serde_json::{json, Map, Value};

/// `y = W x + b₀ + b` with a trainable `b: [1, out]`, saved as `toy_bias` (`[out]`).
pub struct ToyBiasLayer<B: LmBackend> {
    b: Param<B>,
}

impl<B: LmBackend> LinearAdapter<B> for ToyBiasLayer<B> {
    fn forward(&self, layer: &Linear<B>, x: Tensor<B, 2>, _ctx: &AdapterCtx<B>) -> Tensor<B, 2> {
        let y = layer.base_forward(x);
        let b = self.b.get();
        let b = if b.dtype() == y.dtype() {
            b
        } else {
            b.cast(y.dtype())
        };
        y + b
    }

    fn params(&self) -> Vec<&Param<B>> {
        vec![&self.b]
    }

    fn params_mut(&mut self) -> Vec<&mut Param<B>> {
        vec![&mut self.b]
    }

    fn merged(
        &self,
        layer: &Linear<B>,
    ) -> Result<(Tensor<B, 2>, Option<Tensor<B, 1>>), Unsupported> {
        let b = self.b.get().reshape([layer.out_features]);
        let bias = match &layer.bias {
            Some(b0) => b0.clone() + b,
            None => b,
        };
        Ok((layer.dense_weight(), Some(bias)))
    }

    fn low_rank(&self, _layer: &Linear<B>) -> Result<LowRank<B>, Unsupported> {
        Err(Unsupported("a bias is not a low-rank update".into()))
    }
}

/// The starting bias of output feature `j`: `0.01·(j + 1)` (so the update is visible at once).
fn start(j: usize) -> f32 {
    0.01 * (j as f32 + 1.0)
}

/// The toy method: no state of its own.
pub struct ToyBias;

impl AdapterMethod for ToyBias {
    const NAME: &'static str = "toy_bias";
    const PEFT_TYPE: Option<&'static str> = Some("TOY_BIAS");
    const SUFFIXES: &'static [&'static str] = &["toy_bias"];

    fn default_targets() -> Targets {
        Targets::Many(vec!["o_proj".into()])
    }

    fn module_params(_o: &AdapterOptions, _r: u128, _in_f: u128, out_f: u128) -> u128 {
        out_f
    }

    fn attach<B: LmBackend>(
        _o: &AdapterOptions,
        lm: &mut CausalLm<B>,
        modules: &[String],
    ) -> Result<Self, AdapterError> {
        let device = lm.device.clone();
        for (name, layer) in lm.linears_mut() {
            if modules.contains(&name) {
                let out = layer.out_features;
                let v = (0..out).map(start).collect();
                let b = Param::new("toy_bias", v, [1, out], vec![out], &device);
                layer.adapter = Some(Box::new(ToyBiasLayer { b }));
            }
        }
        Ok(ToyBias)
    }

    fn reads(peft_type: &str, _cfg: &Strict<'_>) -> Result<bool, AdapterError> {
        Ok(peft_type == "TOY_BIAS")
    }

    fn load<B: LmBackend>(
        files: &PeftFiles<'_>,
        _o: &mut AdapterOptions,
        lm: &mut CausalLm<B>,
    ) -> Result<Self, AdapterError> {
        let device = lm.device.clone();
        for (name, layer) in lm.linears_mut() {
            if let Some(g) = files.group(&name) {
                let out = layer.out_features;
                let v = g.get("toy_bias", Some(vec![out]))?;
                let mut b = Param::new("toy_bias", vec![0.0; out], [1, out], vec![out], &device);
                b.value = device_tensor(v, [1, out], &device);
                layer.adapter = Some(Box::new(ToyBiasLayer { b }));
            }
        }
        Ok(ToyBias)
    }

    fn peft_config(&self, _st: &AdapterState, _steps: usize) -> Result<Map<String, Value>, AdapterError> {
        Ok(json!({ "peft_type": "TOY_BIAS" })
            .as_object()
            .cloned()
            .unwrap_or_default())
    }
}

mod tests {
    use super::*;
    use crate::{lab::Model, model::LoadOptions};
    use crate::train::StepOptions;
    use crate::with_lm;

    const O_PROJ: &str = "model.layers.0.self_attn.o_proj";

    fn tiny() -> Model {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/models/tiny-llama");
        Model::load(&dir, LoadOptions::default()).unwrap()
    }

    fn toy(m: &mut Model) {
        m.add_adapter(AdapterOptions {
            method: "toy_bias".into(),
            ..Default::default()
        })
        .unwrap();
    }

    /// The bias of `O_PROJ` as saved.
    fn bias(m: &mut Model) -> Vec<f32> {
        let t = m.adapter_tensors("default").unwrap();
        t[&format!("base_model.model.{O_PROJ}.toy_bias")].values_f32()
    }

    #[test]
    fn toy_method_attaches_by_name_and_its_output_is_base_plus_b() {
        let mut m = tiny();
        toy(&mut m);
        let st = &m.adapters.list[0];
        assert_eq!(st.method.name(), "toy_bias");
        // Default targets: every o_proj; one bias entry per output feature.
        let hidden = m.config().hidden_size;
        let layers = m.config().num_layers;
        assert_eq!(st.modules.len(), layers);
        assert_eq!(m.trainable_params("default").unwrap(), layers * hidden);
        // Forward of the adapted layer against x Wᵀ + b computed here in f64.
        with_lm!(&m.lm, lm => {
            let linears = lm.linears();
            let (_, layer) = linears.iter().find(|(n, _)| n == O_PROJ).unwrap();
            let (in_f, out_f) = (layer.in_features, layer.out_features);
            let x: Vec<f32> = (0..2 * in_f).map(|i| ((i % 7) as f32 - 3.0) * 0.25).collect();
            let xt = device_tensor(x.clone(), [2, in_f], &lm.device);
            let y = host_values(layer.forward(xt, &AdapterCtx::eval())).unwrap().1;
            let w = host_values(layer.dense_weight()).unwrap().1;
            assert!(layer.bias.is_none());
            for row in 0..2 {
                for j in 0..out_f {
                    let mut want = f64::from(start(j));
                    for k in 0..in_f {
                        want += f64::from(x[row * in_f + k]) * f64::from(w[j * in_f + k]);
                    }
                    let got = f64::from(y[row * out_f + j]);
                    // f32 dot products of in_f terms of size ≤ |x||w|: a few ulps per term.
                    let mag: f64 = (0..in_f)
                        .map(|k| f64::from((x[row * in_f + k] * w[j * in_f + k]).abs()))
                        .sum::<f64>()
                        + want.abs();
                    let tol = 4.0 * in_f as f64 * f64::from(f32::EPSILON) * mag;
                    assert!((got - want).abs() <= tol, "row {row} out {j}: {got} vs {want}");
                }
            }
        });
    }

    #[test]
    fn toy_method_trains_saves_and_loads_through_the_registry() {
        let mut m = tiny();
        toy(&mut m);
        let ids = vec![vec![1u32, 5, 9, 13, 2, 7]];
        let labels = vec![vec![1i64, 5, 9, 13, 2, 7]];
        let (_, grads) = m.gradients(&ids, &labels).unwrap();
        let g = grads[&format!("{O_PROJ}.toy_bias")].values_f32();
        let before = bias(&mut m);
        let o = StepOptions {
            lr: 1e-3,
            weight_decay: 0.0,
            ..Default::default()
        };
        m.train_step(&ids, &labels, &o).unwrap();
        let after = bias(&mut m);
        // First AdamW step: m̂ = g, v̂ = g², so b ← b − lr·g / (|g| + eps).
        let mut moved = 0;
        for j in 0..g.len() {
            let gj = f64::from(g[j]);
            let want = f64::from(before[j]) - o.lr * gj / (gj.abs() + o.eps);
            let got = f64::from(after[j]);
            // One f32 rounding of values of size |b| + lr.
            let tol = 4.0 * f64::from(f32::EPSILON) * (want.abs() + o.lr);
            assert!((got - want).abs() <= tol, "feature {j}: {got} vs {want}");
            moved += usize::from(gj.abs() > 1e-6);
        }
        assert!(moved > 0, "no gradient reached the toy bias");
        // PEFT layout out and in with the method's own keys.
        let dir = tempfile::tempdir().unwrap();
        m.save_adapter(dir.path()).unwrap();
        let cfg: Value = serde_json::from_slice(
            &std::fs::read(dir.path().join("adapter_config.json")).unwrap(),
        )
        .unwrap();
        assert_eq!(cfg["peft_type"], json!("TOY_BIAS"));
        let mut fresh = tiny();
        fresh.load_adapter(dir.path()).unwrap();
        assert_eq!(fresh.adapters.get("default").unwrap().method.name(), "toy_bias");
        assert_eq!(bias(&mut fresh), after);
        // Merging folds b into the layer bias: the same logits without the adapter.
        let before_merge = fresh.logits(&ids).unwrap().values_f32();
        fresh.merge_adapter().unwrap();
        let merged = fresh.logits(&ids).unwrap().values_f32();
        for (a, b) in before_merge.iter().zip(&merged) {
            assert!((a - b).abs() <= 1e-4 * (1.0 + a.abs()), "{a} vs {b}");
        }
    }
}
