//! Quantised bases: tiny-llama loaded as NF4 (with and without double quantisation), FP4 and
//! int8 computes exactly what an f32 model built from the dequantised weights computes, reports
//! its size, and LoRA training on the NF4 base lowers the loss.

use crate::common;
use common::*;
use peftlab::adapter::AdapterOptions;
use peftlab::quant::{quantize_4bit, quantize_int8, quantizes_tensor, QuantConfig, QuantKind};
use peftlab::tensor::{save_safetensors, HostTensor};
use peftlab::train::TrainOptions;
use peftlab::{lab::Model, model::LoadOptions};

fn load(quant: &str, dq: bool) -> Model {
    let o = LoadOptions {
        quant: quant.into(),
        double_quant: dq,
        ..Default::default()
    };
    Model::load(&fixture("models/tiny-llama"), o).unwrap()
}

/// tiny-llama with every QLoRA-quantised weight replaced by its dequantised value, as f32.
fn dequantised_copy(kind: &str, dq: bool) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let src = fixture("models/tiny-llama");
    for f in ["config.json", "tokenizer.json", "tokenizer_config.json"] {
        std::fs::copy(src.join(f), dir.path().join(f)).unwrap();
    }
    let mut w = tensors("models/tiny-llama/model.safetensors");
    for (name, t) in w.iter_mut() {
        if !quantizes_tensor(name, &t.shape) {
            continue;
        }
        let v = t.values_f32();
        let deq = if kind == "int8" {
            quantize_int8(&v, &t.shape).unwrap().dequantize().unwrap()
        } else {
            let cfg = QuantConfig::new(QuantKind::parse(kind).unwrap()).with_double_quant(dq);
            quantize_4bit(&v, &t.shape, &cfg)
                .unwrap()
                .dequantize()
                .unwrap()
        };
        *t = HostTensor::f32(t.shape.clone(), deq).unwrap();
    }
    save_safetensors(&w, &dir.path().join("model.safetensors")).unwrap();
    dir
}

#[test]
fn quantised_models_equal_their_dequantised_f32_twins() {
    let (rows, mask) = probe("tiny-llama");
    for (kind, dq) in [
        ("nf4", false),
        ("nf4", true),
        ("fp4", true),
        ("int8", false),
    ] {
        let q = load(kind, dq);
        let twin_dir = dequantised_copy(kind, dq);
        let twin = Model::load(twin_dir.path(), LoadOptions::default()).unwrap();
        let d = masked_diff(
            &q.logits(&rows).unwrap(),
            &twin.logits(&rows).unwrap(),
            &mask,
        );
        assert!(
            d <= 1e-5,
            "{kind} dq={dq}: logits differ from the dequantised f32 model by {d}"
        );
        let info = q.info();
        assert_eq!(info["quant"], kind);
        let f32_bytes = load("none", false).info()["bytes"].as_u64().unwrap();
        assert!(
            info["bytes"].as_u64().unwrap() < f32_bytes,
            "{kind}: no memory saved"
        );
    }
}

#[test]
fn lora_on_an_nf4_base_lowers_the_loss() {
    let mut m = load("nf4", true);
    m.add_adapter(AdapterOptions {
        r: Some(8),
        seed: 1,
        ..Default::default()
    })
    .unwrap();
    let data = peftlab::eval::ui_strings("train", Some(&["fr".to_string()]), None).unwrap();
    let rows = data.rows()[..16].to_vec();
    let o = TrainOptions {
        lr: 1e-2,
        epochs: 8,
        batch_size: 8,
        seed: 1,
        ..Default::default()
    };
    let rep = m.train(&rows, &o, &mut |_| {}, &|| false).unwrap();
    let (first, last) = (rep.losses[0], *rep.losses.last().unwrap());
    assert!(last < 0.85 * first, "loss {first} -> {last}");
    assert!(rep.losses.iter().all(|l| l.is_finite()));
}

#[test]
fn bad_quant_options_are_clear_errors() {
    let bad = |o: LoadOptions| {
        Model::load(&fixture("models/tiny-llama"), o)
            .err()
            .unwrap()
            .to_string()
    };
    let e = bad(LoadOptions {
        quant: "nf3".into(),
        ..Default::default()
    });
    assert!(e.contains("nf3") && e.contains("nf4"), "{e}");
    let e = bad(LoadOptions {
        quant: "nf4".into(),
        block_size: 100,
        ..Default::default()
    });
    assert!(e.contains("power of two") && e.contains("100"), "{e}");
}
