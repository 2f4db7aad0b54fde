//! Quantised bases: tiny-llama loaded as NF4 (with and without double quantisation), FP4 and
//! weight-only int8 computes exactly what an f32 model built from the dequantised weights
//! computes, reports its size, and LoRA training on the NF4 base lowers the loss. LLM.int8
//! (`quant: "int8"`) quantises activations too: close to weight-only int8, not equal, and named
//! as such by `info()`.

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
        let deq = if kind.starts_with("int8") {
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
        ("int8_weight", false),
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
fn llm_int8_quantises_activations_and_says_so() {
    let (rows, mask) = probe("tiny-llama");
    let weight_only = load("int8_weight", false);
    let llm = load("int8", false);
    let d = masked_diff(
        &llm.logits(&rows).unwrap(),
        &weight_only.logits(&rows).unwrap(),
        &mask,
    );
    // Activation rounding to 8 bits moves the logits, but only a little.
    assert!(d > 1e-4 && d < 0.5, "LLM.int8 vs weight-only int8: {d}");
    let info = llm.info();
    assert_eq!(info["quant"], "int8");
    assert!(
        info["quant_scheme"]
            .as_str()
            .unwrap()
            .starts_with("LLM.int8(): int8 row-wise weights and activations"),
        "{info:?}"
    );
    assert_eq!(info["int8_threshold"], 6.0);
    assert!(weight_only.info()["quant_scheme"]
        .as_str()
        .unwrap()
        .starts_with("weight-only int8"));
    // threshold 0: pure vector-wise int8; a bad threshold is refused before loading.
    let o = LoadOptions {
        quant: "int8".into(),
        int8_threshold: -1.0,
        ..Default::default()
    };
    let Err(e) = Model::load(&fixture("models/tiny-llama"), o) else {
        panic!("a negative threshold loaded");
    };
    let e = e.to_string();
    assert!(
        e.contains("int8_threshold must be a finite number >= 0 (got -1)"),
        "{e}"
    );
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

/// The NF4 (double-quantised) weight of `model.layers.0.self_attn.q_proj`: its kind, stored
/// bytes and dequantised values.
fn q_proj(m: &Model) -> (QuantKind, usize, Vec<f32>) {
    peftlab::with_lm!(&m.lm, lm => {
        let (_, l) = lm.linears().into_iter().next().unwrap();
        let v = peftlab::model::to_host(l.weight.dequantize()).unwrap().1;
        (l.weight.kind(), l.weight.bytes(), v)
    })
}

#[test]
fn merging_into_a_quantised_base_requantises_it() {
    let mut m = load("nf4", true);
    let (kind0, bytes0, _) = q_proj(&m);
    assert_eq!(kind0, QuantKind::Nf4);
    m.add_adapter(AdapterOptions {
        r: Some(4),
        seed: 3,
        ..Default::default()
    })
    .unwrap();
    let rows = vec![vec![1u32, 5, 9, 13, 2, 7, 11, 3]];
    let labels = vec![vec![1i64, 5, 9, 13, 2, 7, 11, 3]];
    let o = peftlab::train::StepOptions {
        lr: 5e-2,
        ..Default::default()
    };
    for _ in 0..2 {
        m.train_step(&rows, &labels, &o).unwrap();
    }
    // W + ΔW as the adapter computes it, before the merge.
    let (merged, shape) = peftlab::with_lm!(&m.lm, lm => {
        let (_, l) = lm.linears().into_iter().next().unwrap();
        let (w, _) = l.adapter.as_ref().unwrap().merged(l).unwrap();
        let (shape, v) = peftlab::model::to_host(w).unwrap();
        (v, shape)
    });
    let (_, _, before) = q_proj(&m);
    assert!(
        merged.iter().zip(&before).any(|(a, b)| a != b),
        "the trained update must change the weight"
    );
    m.merge_adapter().unwrap();
    let (kind, bytes, after) = q_proj(&m);
    // Still NF4 with double quantisation, the same size, and exactly W + ΔW quantised again.
    assert_eq!((kind, bytes), (QuantKind::Nf4, bytes0));
    let cfg = QuantConfig::new(QuantKind::Nf4).with_double_quant(true);
    let expected = quantize_4bit(&merged, &shape, &cfg)
        .unwrap()
        .dequantize()
        .unwrap();
    assert_eq!(
        after.iter().map(|x| x.to_bits()).collect::<Vec<_>>(),
        expected.iter().map(|x| x.to_bits()).collect::<Vec<_>>()
    );
    // unmerge_adapter puts the original codes back: the base dequantises bit for bit as before.
    m.unmerge_adapter().unwrap();
    let (kind, bytes, restored) = q_proj(&m);
    assert_eq!((kind, bytes), (QuantKind::Nf4, bytes0));
    assert!(
        restored
            .iter()
            .map(|x| x.to_bits())
            .eq(before.iter().map(|x| x.to_bits())),
        "unmerge restores the quantised base exactly"
    );
}

#[test]
fn pissa_on_a_quantised_base_keeps_it_quantised() {
    let mut m = load("nf4", false);
    let (_, bytes0, _) = q_proj(&m);
    m.add_adapter(AdapterOptions {
        method: "pissa".into(),
        r: Some(2),
        init: "pissa".into(),
        ..Default::default()
    })
    .unwrap();
    let (kind, bytes, _) = q_proj(&m);
    assert_eq!((kind, bytes), (QuantKind::Nf4, bytes0));
    m.remove_adapter().unwrap();
    let (kind, bytes, _) = q_proj(&m);
    assert_eq!((kind, bytes), (QuantKind::Nf4, bytes0));
}
