//! Bad model inputs give clear errors, never a panic: a directory without config or weights, an
//! unsupported architecture, a missing or mis-shaped tensor, a truncated safetensors file, a
//! PyTorch pickle, a CUDA device in a CPU build, token ids outside the vocabulary.

use crate::common;
use common::fixture;
use peftlab::{lab::Model, model::LoadOptions};
use std::path::Path;

fn copy_model(dst: &Path) {
    for f in [
        "config.json",
        "tokenizer.json",
        "tokenizer_config.json",
        "model.safetensors",
    ] {
        std::fs::copy(fixture("models/tiny-llama").join(f), dst.join(f)).unwrap();
    }
}

fn err(dir: &Path) -> String {
    match Model::load(dir, LoadOptions::default()) {
        Ok(_) => panic!("{} loaded", dir.display()),
        Err(e) => e.to_string(),
    }
}

#[test]
fn missing_files_unsupported_arch_and_pickles() {
    let d = tempfile::tempdir().unwrap();
    let e = err(d.path());
    assert!(e.contains("no config.json"), "{e}");
    std::fs::copy(
        fixture("models/tiny-llama/config.json"),
        d.path().join("config.json"),
    )
    .unwrap();
    let e = err(d.path());
    assert!(e.contains("no *.safetensors"), "{e}");
    std::fs::write(d.path().join("pytorch_model.bin"), b"\x80\x02pickle").unwrap();
    let e = err(d.path());
    assert!(
        e.contains("pickle") && e.contains("safe_serialization=True"),
        "{e}"
    );
    let e = Model::load(&d.path().join("pytorch_model.bin"), LoadOptions::default())
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("pickle"), "{e}");
    let cfg = std::fs::read_to_string(d.path().join("config.json")).unwrap();
    std::fs::write(
        d.path().join("config.json"),
        cfg.replace("LlamaForCausalLM", "GPTNeoXForCausalLM"),
    )
    .unwrap();
    let e = err(d.path());
    assert!(
        e.contains("GPTNeoXForCausalLM") && e.contains("Qwen3ForCausalLM"),
        "{e}"
    );
}

#[test]
fn missing_misshaped_and_truncated_weights() {
    use peftlab::tensor::{load_safetensors, save_safetensors, HostTensor};
    let d = tempfile::tempdir().unwrap();
    copy_model(d.path());
    let st = d.path().join("model.safetensors");
    let mut w = load_safetensors(&st).unwrap();
    w.remove("model.layers.1.mlp.up_proj.weight");
    save_safetensors(&w, &st).unwrap();
    let e = err(d.path());
    assert!(
        e.contains("missing tensor 'model.layers.1.mlp.up_proj.weight'"),
        "{e}"
    );
    let mut w = load_safetensors(&fixture("models/tiny-llama/model.safetensors")).unwrap();
    w.insert(
        "model.norm.weight".into(),
        HostTensor::f32(vec![63], vec![1.0; 63]).unwrap(),
    );
    save_safetensors(&w, &st).unwrap();
    let e = err(d.path());
    assert!(
        e.contains("model.norm.weight") && e.contains("[63]") && e.contains("[64]"),
        "{e}"
    );
    let bytes = std::fs::read(fixture("models/tiny-llama/model.safetensors")).unwrap();
    for cut in [4, 100, bytes.len() / 2, bytes.len() - 1] {
        std::fs::write(&st, &bytes[..cut]).unwrap();
        let e = err(d.path());
        assert!(e.contains("model.safetensors"), "cut at {cut}: {e}");
    }
}

#[test]
fn cuda_without_the_feature_and_bad_ids() {
    let o = LoadOptions {
        device: "cuda".into(),
        ..Default::default()
    };
    match Model::load(&fixture("models/tiny-llama"), o) {
        Err(e) if cfg!(not(feature = "cuda")) => {
            assert!(e.to_string().contains("--features cuda"), "{e}")
        }
        _ => {}
    }
    let o = LoadOptions {
        device: "tpu".into(),
        ..Default::default()
    };
    let e = Model::load(&fixture("models/tiny-llama"), o)
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("unknown device 'tpu'"), "{e}");
    let m = Model::load(&fixture("models/tiny-llama"), LoadOptions::default()).unwrap();
    let e = m.logits(&[vec![1, 5000]]).unwrap_err().to_string();
    assert!(e.contains("5000") && e.contains("vocabulary"), "{e}");
    assert!(m.logits(&[]).is_err());
}

#[test]
fn config_json_that_is_not_utf8_or_has_bad_floats_is_named() {
    let d = tempfile::tempdir().unwrap();
    copy_model(d.path());
    let cfg_path = d.path().join("config.json");
    let cfg = std::fs::read_to_string(&cfg_path).unwrap();
    // an invalid UTF-8 byte inside a string value
    let mut bytes = cfg.clone().into_bytes();
    let at = cfg.find("LlamaForCausalLM").unwrap();
    bytes[at] = 0xFF;
    std::fs::write(&cfg_path, &bytes).unwrap();
    let e = err(d.path());
    assert_eq!(
        e,
        format!(
            "{}: not valid UTF-8 (byte 0xFF at offset {at})",
            cfg_path.display()
        )
    );
    // RoPE theta and RMSNorm epsilon must be finite and positive
    let v: serde_json::Value = serde_json::from_str(&cfg).unwrap();
    for (key, bad, shown) in [
        ("rope_theta", serde_json::json!(-5), "-5"),
        ("rope_theta", serde_json::json!(0.0), "0"),
        ("rms_norm_eps", serde_json::json!(-1.0), "-1"),
    ] {
        let mut v = v.clone();
        v[key] = bad;
        std::fs::write(&cfg_path, v.to_string()).unwrap();
        let e = err(d.path());
        assert_eq!(
            e,
            format!(
                "{}: {key} must be a finite number > 0 (got {shown})",
                cfg_path.display()
            )
        );
    }
}

#[test]
fn pickled_weights_next_to_other_safetensors_are_refused_as_pickles() {
    // The fixture directory also holds reference.safetensors (reference outputs, not weights):
    // with the weights only as pytorch_model.bin, the error is about the pickle, not a missing
    // tensor read from the wrong file.
    let d = tempfile::tempdir().unwrap();
    copy_model(d.path());
    std::fs::remove_file(d.path().join("model.safetensors")).unwrap();
    std::fs::copy(
        fixture("models/tiny-llama/reference.safetensors"),
        d.path().join("reference.safetensors"),
    )
    .unwrap();
    std::fs::write(d.path().join("pytorch_model.bin"), b"\x80\x02pickle").unwrap();
    let e = err(d.path());
    assert!(
        e.starts_with(&format!(
            "{}: the weights are PyTorch pickles (pytorch_model.bin): pickle checkpoints are refused",
            d.path().display()
        )) && e.contains("convert to safetensors"),
        "{e}"
    );
    assert!(!e.contains("missing tensor"), "{e}");
}

#[test]
fn tokenizer_with_an_empty_vocabulary_is_refused() {
    let d = tempfile::tempdir().unwrap();
    copy_model(d.path());
    let p = d.path().join("tokenizer.json");
    let mut t: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap();
    t["model"]["vocab"] = serde_json::json!({});
    t["model"]["merges"] = serde_json::json!([]);
    std::fs::write(&p, t.to_string()).unwrap();
    let e = err(d.path());
    assert_eq!(
        e,
        format!(
            "{}: the model's vocabulary is empty (only 3 added tokens): every text would encode \
             to special tokens alone",
            p.display()
        )
    );
}

#[test]
fn adalora_without_lora_e_names_the_missing_tensor() {
    use peftlab::tensor::{load_safetensors, save_safetensors};
    let d = tempfile::tempdir().unwrap();
    let src = fixture("adapters/adalora");
    std::fs::copy(
        src.join("adapter_config.json"),
        d.path().join("adapter_config.json"),
    )
    .unwrap();
    let st = d.path().join("adapter_model.safetensors");
    let mut w = load_safetensors(&src.join("adapter_model.safetensors")).unwrap();
    let key = "base_model.model.model.layers.0.self_attn.q_proj.lora_E";
    assert!(w.remove(key).is_some());
    save_safetensors(&w, &st).unwrap();
    let mut m = Model::load(&fixture("models/tiny-llama"), LoadOptions::default()).unwrap();
    let e = m.load_adapter(d.path()).unwrap_err().to_string();
    assert_eq!(e, format!("{}: missing '{key}'", st.display()));
}
