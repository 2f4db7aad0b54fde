//! One AdamW step against PyTorch + PEFT (tests/fixtures/adapters/{lora,dora}/train_step):
//! the loss, every gradient and every parameter after `torch.optim.AdamW(lr=1e-3, betas=(0.9,
//! 0.999), eps=1e-8, weight_decay=0.01)` must agree within 1e-5.

use crate::common;
use common::*;
use peftlab::train::StepOptions;

fn peft_name(ours: &str) -> String {
    // model.layers.0.mlp.down_proj.lora_A.weight → …lora_A.default.weight
    if let Some(m) = ours.strip_suffix(".lora_magnitude_vector") {
        format!("{m}.lora_magnitude_vector.default.weight")
    } else if let Some(m) = ours.strip_suffix(".weight") {
        format!("{m}.default.weight")
    } else {
        ours.to_string()
    }
}

fn check(method: &str) {
    let fx = tensors(&format!("adapters/{method}/train_step.safetensors"));
    let r = tensors("models/tiny-llama/reference.safetensors");
    let ids: Vec<Vec<u32>> = rows(&r["input_ids"])
        .iter()
        .map(|r| r.iter().map(|&x| x as u32).collect())
        .collect();
    let labels = rows(&fx["labels"]);
    let mut m = model("tiny-llama");
    m.load_adapter(&fixture(&format!("adapters/{method}")))
        .unwrap();
    let want_loss = f64::from(fx["loss"].values_f32()[0]);
    let loss = m.loss(&ids, &labels).unwrap();
    assert!(
        (loss - want_loss).abs() <= 1e-5,
        "{method}: loss {loss} vs {want_loss}"
    );
    let (gl, grads) = m.gradients(&ids, &labels).unwrap();
    assert!((gl - want_loss).abs() <= 1e-5);
    let mut n = 0;
    for (name, g) in &grads {
        let want = &fx[&format!("grad.{}", peft_name(name))];
        let d = g
            .values_f32()
            .iter()
            .zip(want.values_f32())
            .map(|(a, b)| (a - b).abs())
            .fold(0f32, f32::max);
        assert_eq!(g.numel(), want.numel(), "{name}");
        assert!(d <= 1e-5, "{method}: gradient of {name} differs by {d}");
        n += 1;
    }
    assert_eq!(n, fx.keys().filter(|k| k.starts_with("grad.")).count());
    let opts = StepOptions {
        lr: 1e-3,
        betas: [0.9, 0.999],
        eps: 1e-8,
        weight_decay: 0.01,
        max_grad_norm: None,
    };
    let step_loss = m.train_step(&ids, &labels, &opts).unwrap();
    assert!((step_loss - want_loss).abs() <= 1e-5);
    let after = m.adapter_tensors("default").unwrap();
    let mut checked = 0;
    for (key, t) in &after {
        let ours = key.strip_prefix("base_model.model.").unwrap();
        let want = &fx[&format!("after_step.{}", peft_name(ours))];
        let d = t
            .values_f32()
            .iter()
            .zip(want.values_f32())
            .map(|(a, b)| (a - b).abs())
            .fold(0f32, f32::max);
        assert!(
            d <= 1e-5,
            "{method}: {ours} after one AdamW step differs by {d}"
        );
        checked += 1;
    }
    assert_eq!(
        checked,
        fx.keys().filter(|k| k.starts_with("after_step.")).count()
    );
}

#[test]
fn lora_step_matches_torch_adamw() {
    check("lora");
}

#[test]
fn dora_step_matches_torch_adamw() {
    check("dora");
}

/// The optimizer state (moments and step count) is kept across `train_step` and `train` calls
/// and belongs to the attached adapter: removing, merging or replacing the adapter drops it.
#[test]
fn optimizer_state_lasts_across_calls_and_goes_with_the_adapter() {
    use peftlab::adapter::AdapterOptions;
    let r = tensors("models/tiny-llama/reference.safetensors");
    let ids: Vec<Vec<u32>> = rows(&r["input_ids"])
        .iter()
        .map(|r| r.iter().map(|&x| x as u32).collect())
        .collect();
    let labels: Vec<Vec<i64>> = ids
        .iter()
        .map(|r| r.iter().map(|&t| i64::from(t)).collect())
        .collect();
    let opts = StepOptions {
        lr: 1e-2,
        ..Default::default()
    };
    let lora = || AdapterOptions {
        r: Some(4),
        seed: 7,
        ..Default::default()
    };
    let two_steps = |drop_state_between: bool| {
        let mut m = model("tiny-llama");
        m.add_adapter(lora()).unwrap();
        assert_eq!(m.adapter_info("default").unwrap()["steps"], 0);
        m.train_step(&ids, &labels, &opts).unwrap();
        if drop_state_between {
            m.optimizer = None;
        }
        m.train_step(&ids, &labels, &opts).unwrap();
        m
    };
    let mut kept = two_steps(false);
    assert_eq!(kept.adapter_info("default").unwrap()["steps"], 2);
    assert_eq!(
        two_steps(false).adapter_tensors("default").unwrap(),
        kept.adapter_tensors("default").unwrap(),
        "reproducible"
    );
    // Without the moments and the step count the second step is another (a first) step.
    let mut dropped = two_steps(true);
    assert_eq!(dropped.adapter_info("default").unwrap()["steps"], 1);
    assert_ne!(
        dropped.adapter_tensors("default").unwrap(),
        kept.adapter_tensors("default").unwrap()
    );

    // `train` continues the count of earlier `train_step` calls.
    let mut m = two_steps(false);
    let d = peftlab::eval::ui_strings("train", Some(&["de".to_string()]), None).unwrap();
    let train = peftlab::train::TrainOptions {
        max_steps: Some(3),
        batch_size: 4,
        ..Default::default()
    };
    let rep = m
        .train(&d.rows()[..8], &train, &mut |_| {}, &|| false)
        .unwrap();
    assert_eq!(rep.steps, 5);
    assert_eq!(m.adapter_info("default").unwrap()["steps"], 5);

    // A new adapter starts from step 0, after remove_adapter and after merge_adapter.
    m.remove_adapter().unwrap();
    assert!(m.optimizer.is_none());
    m.add_adapter(lora()).unwrap();
    assert_eq!(m.adapter_info("default").unwrap()["steps"], 0);
    m.train_step(&ids, &labels, &opts).unwrap();
    m.merge_and_unload().unwrap();
    assert!(m.optimizer.is_none());
    m.add_adapter(lora()).unwrap();
    assert_eq!(m.adapter_info("default").unwrap()["steps"], 0);
}
