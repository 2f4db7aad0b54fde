//! PEFT adapters written by PEFT 0.21.2 (tests/fixtures/adapters): loading reproduces PEFT's
//! logits, saving and reloading is lossless, trainable parameter counts equal PEFT's, merging
//! keeps the outputs, and PiSSA's initialisation has its defining properties.

use crate::common;
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
            assert_eq!(
                m.trainable_params("default").unwrap(),
                want,
                "{name}: trainable params"
            );
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
        m.trainable_params("default").unwrap(),
        summary()["pissa"]["trainable_params"].as_u64().unwrap() as usize
    );
    let after = m.logits(&probe_rows).unwrap();
    let d = masked_diff(&after, &init["init_logits"], &mask);
    assert!(d <= 1e-4, "PiSSA init changes the output by {d}");
    // The principal part (B A, scale 1 here) and residual equal PEFT's (unique up to SVD sign).
    let factors = m.lora_factors("default").unwrap();
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

fn json_file(p: &std::path::Path) -> serde_json::Map<String, serde_json::Value> {
    match serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap() {
        serde_json::Value::Object(m) => m,
        other => panic!("{}: not an object: {other}", p.display()),
    }
}

#[test]
fn load_then_save_keeps_every_peft_config_key() {
    for name in ALL {
        let src = fixture(&format!("adapters/{name}"));
        let mut m = model("tiny-llama");
        m.load_adapter(&src).unwrap();
        let dir = tempfile::tempdir().unwrap();
        m.save_adapter(dir.path()).unwrap();
        let before = json_file(&src.join("adapter_config.json"));
        let after = json_file(&dir.path().join("adapter_config.json"));
        for (k, v) in &before {
            if k == "base_model_name_or_path" {
                // The base the adapter is saved from: the model it is attached to now.
                let want = fixture("models/tiny-llama").display().to_string();
                assert_eq!(after[k], serde_json::json!(want), "{name}: {k}");
                continue;
            }
            assert_eq!(after.get(k), Some(v), "{name}: key '{k}' changed");
        }
        let extra: Vec<&String> = after.keys().filter(|k| !before.contains_key(*k)).collect();
        assert!(extra.is_empty(), "{name}: keys added: {extra:?}");
    }
}

#[test]
fn adalora_saves_a_total_step_that_peft_accepts() {
    // Created in peftlab: total_step is the option.
    let mut m = model("tiny-llama");
    m.add_adapter(AdapterOptions {
        method: "adalora".into(),
        init_r: 6,
        target_r: 4,
        tinit: 3,
        tfinal: 5,
        delta_t: 2,
        total_steps: Some(40),
        ..Default::default()
    })
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    m.save_adapter(dir.path()).unwrap();
    let c = json_file(&dir.path().join("adapter_config.json"));
    let got: Vec<&serde_json::Value> = [
        "total_step",
        "target_r",
        "init_r",
        "tinit",
        "tfinal",
        "deltaT",
    ]
    .iter()
    .map(|k| &c[*k])
    .collect();
    assert_eq!(
        got,
        [40, 4, 6, 3, 5, 2]
            .map(serde_json::Value::from)
            .iter()
            .collect::<Vec<_>>()
    );
    // A config without total_step (older PEFT wrote null, PEFT 0.21 refuses it): the smallest
    // schedule PEFT 0.21 accepts, tinit + tfinal + 1 (it requires tinit < total_step - tfinal).
    let src = tempfile::tempdir().unwrap();
    let mut cfg = json_file(&fixture("adapters/adalora/adapter_config.json"));
    cfg.insert("total_step".into(), serde_json::Value::Null);
    std::fs::write(
        src.path().join("adapter_config.json"),
        serde_json::to_string(&cfg).unwrap(),
    )
    .unwrap();
    std::fs::copy(
        fixture("adapters/adalora/adapter_model.safetensors"),
        src.path().join("adapter_model.safetensors"),
    )
    .unwrap();
    let mut m = model("tiny-llama");
    m.load_adapter(src.path()).unwrap();
    let out = tempfile::tempdir().unwrap();
    m.save_adapter(out.path()).unwrap();
    let c = json_file(&out.path().join("adapter_config.json"));
    assert_eq!(c["total_step"], serde_json::json!(10 + 20 + 1));
    assert_eq!(c["target_r"], serde_json::json!(4));
}

/// A copy of a fixture adapter with one config key replaced (or a sidecar added).
fn edited(name: &str, key: &str, value: serde_json::Value) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let src = fixture(&format!("adapters/{name}"));
    let mut cfg = json_file(&src.join("adapter_config.json"));
    cfg.insert(key.into(), value);
    std::fs::write(
        dir.path().join("adapter_config.json"),
        serde_json::to_string_pretty(&cfg).unwrap(),
    )
    .unwrap();
    std::fs::copy(
        src.join("adapter_model.safetensors"),
        dir.path().join("adapter_model.safetensors"),
    )
    .unwrap();
    dir
}

#[test]
fn a_config_value_of_the_wrong_type_is_an_error_naming_file_key_and_value() {
    use serde_json::json;
    let cases = [
        (
            "lora",
            "lora_alpha",
            json!("32"),
            "'lora_alpha' must be a number, got the string \"32\"",
        ),
        (
            "rslora",
            "use_rslora",
            json!("true"),
            "'use_rslora' must be a bool (true or false), got the string \"true\"",
        ),
        (
            "dora",
            "use_dora",
            json!("true"),
            "'use_dora' must be a bool (true or false), got the string \"true\"",
        ),
        (
            "lora",
            "lora_dropout",
            json!(1.5),
            "'lora_dropout' must be in [0, 1), got 1.5",
        ),
        (
            "adalora",
            "total_step",
            json!("100"),
            "'total_step' must be a non-negative integer, got the string \"100\"",
        ),
        (
            "adalora",
            "target_r",
            json!(-4),
            "'target_r' must be a non-negative integer, got the number -4",
        ),
        (
            "adalora",
            "init_r",
            json!(6.5),
            "'init_r' must be a non-negative integer, got the number 6.5",
        ),
        (
            "vera",
            "projection_prng_key",
            json!([7]),
            "'projection_prng_key' must be a non-negative integer, got the array [7]",
        ),
        (
            "ia3",
            "feedforward_modules",
            json!(3),
            "'feedforward_modules' must be a list of module names or a string, got the number 3",
        ),
        (
            "lora",
            "alpha_pattern",
            json!({"q_proj": "16"}),
            "'alpha_pattern' must be a map of module patterns to numbers",
        ),
        (
            "lora",
            "peft_type",
            json!(1),
            "'peft_type' must be a string, got the number 1",
        ),
    ];
    let mut m = model("tiny-llama");
    for (name, key, value, want) in cases {
        let dir = edited(name, key, value.clone());
        let e = m.load_adapter(dir.path()).unwrap_err().to_string();
        assert!(
            e.contains("adapter_config.json") && e.contains(want),
            "{name} {key}={value}: {e}"
        );
        // Nothing stays attached: no adapter, no adapter parameters on any layer, and a good
        // adapter loads afterwards.
        assert!(m.adapters.is_empty(), "{name} {key}");
        assert_eq!(m.all_params(), m.config().num_params(), "{name} {key}");
    }
    // A bad tensor of the last module fails after the earlier modules were attached: they
    // are detached again.
    let dir = edited("lora", "r", serde_json::json!(4));
    let st = dir.path().join("adapter_model.safetensors");
    let mut t = peftlab::tensor::load_safetensors(&st).unwrap();
    let key = "base_model.model.model.layers.1.mlp.down_proj.lora_B.weight";
    t.insert(
        key.into(),
        peftlab::tensor::HostTensor::f32(vec![3, 4], vec![0.0; 12]).unwrap(),
    );
    peftlab::tensor::save_safetensors(&t, &st).unwrap();
    let e = m.load_adapter(dir.path()).unwrap_err().to_string();
    assert!(e.contains(key) && e.contains("shape"), "{e}");
    assert!(m.adapters.is_empty());
    assert_eq!(m.all_params(), m.config().num_params());
    m.load_adapter(&fixture("adapters/lora")).unwrap();
}

#[test]
fn a_corrupt_sidecar_is_an_error_not_ignored() {
    let mut m = model("tiny-llama");
    let cases: [(&str, &str); 3] = [
        (
            "{\"options\": {\"method\": \"lora\", \"r\": ",
            "not valid JSON",
        ),
        ("[1, 2]", "expected a JSON object, got the array [1,2]"),
        (
            "{\"options\": {\"r\": \"8\"}}",
            "'options': invalid type: string \"8\"",
        ),
    ];
    for (text, want) in cases {
        let dir = edited("lora", "r", serde_json::json!(4));
        std::fs::write(dir.path().join("peftlab.json"), text).unwrap();
        let e = m.load_adapter(dir.path()).unwrap_err().to_string();
        assert!(
            e.contains("peftlab.json") && e.contains(want) && e.contains("delete it"),
            "{text}: {e}"
        );
    }
    // A valid sidecar still loads.
    let dir = edited("lora", "r", serde_json::json!(4));
    std::fs::write(
        dir.path().join("peftlab.json"),
        "{\"options\": {\"method\": \"lora\", \"seed\": 3}, \"peftlab_version\": \"0\"}",
    )
    .unwrap();
    m.load_adapter(dir.path()).unwrap();
}
