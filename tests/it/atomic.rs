//! Operations that change several layers are all-or-nothing: a merge that fails on one module,
//! an adapter file that is bad in its last module and a checkpoint of another adapter each end
//! in an error that leaves the model, its adapter and its optimizer state exactly as they were.

use crate::common;
use burn::tensor::Tensor;
use common::*;
use peftlab::adapter::{
    AdapterCtx, AdapterOptions, LinearAdapter, LowRank, Param, Targets, Unsupported,
};
use peftlab::backend::LmBackend;
use peftlab::lab::Model;
use peftlab::model::linear::Linear;
use peftlab::tensor::HostTensor;
use peftlab::train::{StepOptions, TrainOptions};
use peftlab::with_lm;

/// A working adapter whose merge fails (the injected failure).
struct MergeFails<B: LmBackend>(Box<dyn LinearAdapter<B>>);

impl<B: LmBackend> LinearAdapter<B> for MergeFails<B> {
    fn forward(&self, layer: &Linear<B>, x: Tensor<B, 2>, ctx: &AdapterCtx<B>) -> Tensor<B, 2> {
        self.0.forward(layer, x, ctx)
    }
    fn params(&self) -> Vec<&Param<B>> {
        self.0.params()
    }
    fn params_mut(&mut self) -> Vec<&mut Param<B>> {
        self.0.params_mut()
    }
    fn merged(
        &self,
        _layer: &Linear<B>,
    ) -> Result<(Tensor<B, 2>, Option<Tensor<B, 1>>), Unsupported> {
        Err(Unsupported("injected merge failure".into()))
    }
    fn low_rank(&self, layer: &Linear<B>) -> Result<LowRank<B>, Unsupported> {
        self.0.low_rank(layer)
    }
}

/// The modules that have an adapter attached, in model order.
fn attached(m: &Model) -> Vec<String> {
    with_lm!(&m.lm, lm => lm
        .linears()
        .into_iter()
        .filter(|(_, l)| l.has_adapter())
        .map(|(n, _)| n)
        .collect())
}

/// The probe rows with themselves as labels (next-token prediction).
fn probe_batch() -> (Vec<Vec<u32>>, Vec<Vec<i64>>) {
    let (rows, _) = probe("tiny-llama");
    let labels = rows
        .iter()
        .map(|r| r.iter().map(|&t| i64::from(t)).collect())
        .collect();
    (rows, labels)
}

#[test]
fn a_merge_that_fails_on_one_module_changes_nothing() {
    let (rows, labels) = probe_batch();
    let mut m = model("tiny-llama");
    m.load_adapter(&fixture("adapters/lora")).unwrap();
    // One optimizer step, so that there is optimizer state to keep as well.
    m.train_step(&rows, &labels, &StepOptions::default())
        .unwrap();
    let modules = attached(&m);
    assert_eq!(modules.len(), 14);
    let victim = modules[9].clone();
    with_lm!(&mut m.lm, lm => {
        for (name, layer) in lm.linears_mut() {
            if name == victim {
                let a = layer.adapter.take().unwrap();
                layer.adapter = Some(Box::new(MergeFails(a)));
            }
        }
    });
    let logits = m.logits(&rows).unwrap();
    let weights = base_weights(&m);
    let tensors = m.adapter_tensors("default").unwrap();

    let e = m.merge_adapter().unwrap_err().to_string();
    assert!(e.contains("injected merge failure"), "{e}");
    assert_eq!(attached(&m), modules, "every module keeps its adapter");
    assert!(!m.adapters.is_empty(), "the adapter state is kept");
    assert_eq!(m.adapter_info("default").unwrap()["steps"], 1);
    assert!(base_weights(&m) == weights, "no base weight changed");
    assert_eq!(m.adapter_tensors("default").unwrap(), tensors);
    assert_eq!(m.logits(&rows).unwrap(), logits, "bitwise the same logits");
}

#[test]
fn an_adapter_file_bad_in_its_last_module_attaches_nothing() {
    let (rows, _) = probe_batch();
    let mut m = model("tiny-llama");
    let base = m.logits(&rows).unwrap();
    let weights = base_weights(&m);
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        fixture("adapters/lora/adapter_config.json"),
        dir.path().join("adapter_config.json"),
    )
    .unwrap();
    let mut t = tensors("adapters/lora/adapter_model.safetensors");
    // The last module in model order: layer 1's down_proj, [64, 4] in the file, cut to [64, 3].
    let key = "base_model.model.model.layers.1.mlp.down_proj.lora_B.weight";
    let v = t[key].values_f32();
    t.insert(
        key.into(),
        HostTensor::f32(vec![64, 3], v[..192].to_vec()).unwrap(),
    );
    peftlab::tensor::save_safetensors(&t, &dir.path().join("adapter_model.safetensors")).unwrap();

    let e = m.load_adapter(dir.path()).unwrap_err().to_string();
    assert!(
        e.contains("layers.1.mlp.down_proj.lora_B") && e.contains("[64, 3]"),
        "{e}"
    );
    assert!(attached(&m).is_empty(), "no module got an adapter");
    assert!(m.adapters.is_empty());
    assert!(base_weights(&m) == weights);
    assert_eq!(m.logits(&rows).unwrap(), base);
    // The model is usable as before: the intact adapter loads.
    m.load_adapter(&fixture("adapters/lora")).unwrap();
    assert_eq!(attached(&m).len(), 14);
}

#[test]
fn resuming_from_a_checkpoint_of_another_adapter_changes_nothing() {
    let d = peftlab::eval::ui_strings("train", Some(&["de".to_string()]), None).unwrap();
    let data = d.rows()[..8].to_vec();
    let dir = tempfile::tempdir().unwrap();
    let opts = TrainOptions {
        lr: 1e-2,
        max_steps: Some(2),
        batch_size: 4,
        seed: 2,
        checkpoint_dir: Some(dir.path().display().to_string()),
        ..Default::default()
    };
    let lora = |targets: &[&str]| AdapterOptions {
        r: Some(4),
        seed: 1,
        targets: Some(Targets::Many(
            targets.iter().map(|s| s.to_string()).collect(),
        )),
        ..Default::default()
    };
    // A run on q_proj and v_proj leaves a checkpoint after 2 steps.
    let mut a = model("tiny-llama");
    a.add_adapter(lora(&["q_proj", "v_proj"])).unwrap();
    a.train(&data, &opts, &mut |_| {}, &|| false).unwrap();
    let ck = peftlab::train::checkpoint::read_dir(&dir.path().join("step-00000002")).unwrap();
    let keys: Vec<&String> = ck.1.keys().collect();
    assert!(keys
        .iter()
        .any(|k| k.ends_with("q_proj.lora_B.weight.exp_avg_sq")));

    // The same run resumed on q_proj, o_proj and v_proj: the checkpoint has the first module's
    // tensors but not o_proj's, so it must be refused before q_proj is overwritten.
    let mut b = model("tiny-llama");
    b.add_adapter(lora(&["q_proj", "o_proj", "v_proj"]))
        .unwrap();
    let (rows, labels) = probe_batch();
    b.train_step(&rows, &labels, &StepOptions::default())
        .unwrap();
    let logits = b.logits(&rows).unwrap();
    let tensors = b.adapter_tensors("default").unwrap();
    let resume = TrainOptions {
        resume: true,
        max_steps: Some(4),
        ..opts
    };
    let e = b
        .train(&data, &resume, &mut |_| {}, &|| false)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("checkpoint lacks") && e.contains("o_proj"),
        "{e}"
    );
    assert_eq!(b.adapter_tensors("default").unwrap(), tensors);
    assert_eq!(b.logits(&rows).unwrap(), logits);
    assert_eq!(
        b.adapter_info("default").unwrap()["steps"],
        1,
        "optimizer step kept"
    );
}
