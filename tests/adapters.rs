//! PEFT adapters written by PEFT 0.21.2 (tests/fixtures/adapters): loading reproduces PEFT's
//! logits, saving and reloading is lossless, trainable parameter counts equal PEFT's, merging
//! keeps the outputs, and PiSSA's initialisation has its defining properties.

mod common;
use common::*;
use peftlab::adapter::{AdapterOptions, Targets};

const ALL: &[&str] = &[
    "lora", "rslora", "lora_qv", "dora", "vera", "adalora", "ia3", "pissa",
];

fn summary() -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(fixture("adapters/summary.json")).unwrap())
        .unwrap()
}

#[test]
fn every_peft_adapter_reproduces_peft_logits_and_roundtrips() {
    let (probe_rows, mask) = probe("tiny-llama");
    let sum = summary();
    for name in ALL {
        let mut m = model("tiny-llama");
        m.load_adapter(&fixture(&format!("adapters/{name}")))
            .unwrap();
        let reference = tensors(&format!("adapters/{name}/reference.safetensors"));
        let logits = m.logits(&probe_rows).unwrap();
        let d = masked_diff(&logits, &reference["logits"], &mask);
        assert!(d <= 1e-4, "{name}: logits differ from PEFT by {d}");
        if *name != "pissa" {
            let want = sum[name]["trainable_params"].as_u64().unwrap() as usize;
            assert_eq!(m.trainable_params(), want, "{name}: trainable params");
            let all = sum[name]["all_params"].as_u64().unwrap() as usize;
            assert_eq!(m.all_params(), all, "{name}: all params");
        }
        // Save, reload into a fresh model: identical logits.
        let dir = tempfile::tempdir().unwrap();
        m.save_adapter(dir.path()).unwrap();
        let mut m2 = model("tiny-llama");
        m2.load_adapter(dir.path()).unwrap();
        let d2 = masked_diff(&m2.logits(&probe_rows).unwrap(), &logits, &mask);
        assert!(d2 <= 1e-6, "{name}: save/reload changed logits by {d2}");
        // Merging keeps the outputs.
        m.merge_adapter().unwrap();
        let d3 = masked_diff(&m.logits(&probe_rows).unwrap(), &logits, &mask);
        assert!(d3 <= 1e-4, "{name}: merged logits differ by {d3}");
    }
}

fn pissa_opts() -> AdapterOptions {
    AdapterOptions {
        method: "pissa".into(),
        r: Some(4),
        alpha: Some(4.0),
        targets: Some(Targets::Many(vec![
            "q_proj".into(),
            "o_proj".into(),
            "up_proj".into(),
        ])),
        ..Default::default()
    }
}

#[test]
fn pissa_init_splits_w_into_principal_part_and_residual() {
    let (probe_rows, mask) = probe("tiny-llama");
    let init = tensors("adapters/pissa/pissa_init.safetensors");
    let mut m = model("tiny-llama");
    let base = m.logits(&probe_rows).unwrap();
    assert!(masked_diff(&base, &init["base_logits"], &mask) <= 1e-4);
    m.add_adapter(pissa_opts()).unwrap();
    assert_eq!(
        m.trainable_params(),
        summary()["pissa"]["trainable_params"].as_u64().unwrap() as usize
    );
    let after = m.logits(&probe_rows).unwrap();
    let d = masked_diff(&after, &init["init_logits"], &mask);
    assert!(d <= 1e-4, "PiSSA init changes the output by {d}");
    // The principal part (B A, scale 1 here) and residual equal PEFT's (unique up to SVD sign).
    let factors = m.lora_factors().unwrap();
    for (name, f) in &factors {
        let (r2, inp) = (f.a.shape[0], f.a.shape[1]);
        let out = f.b.shape[0];
        let r = r2 / 2;
        // At initialisation the 2r form is [A; A0], [B, -B0] with A = A0: take the first half.
        let (a, b) = (f.a.values_f32(), f.b.values_f32());
        let want = init[&format!("{name}.BA")].values_f32();
        let mut err = 0f32;
        for o in 0..out {
            for c in 0..inp {
                let ba: f32 = (0..r).map(|j| b[o * r2 + j] * a[j * inp + c]).sum();
                err = err.max((ba - want[o * inp + c]).abs());
            }
        }
        assert!(err <= 1e-4, "{name}: B·A differs from PEFT by {err}");
    }
}

#[test]
fn bad_adapter_inputs_give_clear_errors() {
    let mut m = model("tiny-llama");
    let e = m
        .add_adapter(AdapterOptions {
            method: "lorax".into(),
            ..Default::default()
        })
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("unknown method 'lorax'") && e.contains("dora"),
        "{e}"
    );
    let e = m
        .add_adapter(AdapterOptions {
            r: Some(0),
            ..Default::default()
        })
        .unwrap_err()
        .to_string();
    assert!(e.contains("r must be > 0"), "{e}");
    let e = m
        .add_adapter(AdapterOptions {
            targets: Some(Targets::Many(vec!["qq_proj".into()])),
            ..Default::default()
        })
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("qq_proj") && e.contains("q_proj") && e.contains("gate_proj"),
        "{e}"
    );
    // An adapter for another base model (tiny-mistral has a different vocabulary but the same
    // linear shapes; tiny-qwen3 has head_dim 24, so q_proj is 96 wide).
    let mut q = model("tiny-qwen3");
    let e = q
        .load_adapter(&fixture("adapters/lora"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("shape"), "{e}");
    // A corrupt file.
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        fixture("adapters/lora/adapter_config.json"),
        dir.path().join("adapter_config.json"),
    )
    .unwrap();
    let bytes = std::fs::read(fixture("adapters/lora/adapter_model.safetensors")).unwrap();
    std::fs::write(
        dir.path().join("adapter_model.safetensors"),
        &bytes[..bytes.len() / 2],
    )
    .unwrap();
    let e = m.load_adapter(dir.path()).unwrap_err().to_string();
    assert!(e.contains("adapter_model.safetensors"), "{e}");
}
