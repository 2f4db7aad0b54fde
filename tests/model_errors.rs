//! Bad model inputs give clear errors, never a panic: a directory without config or weights, an
//! unsupported architecture, a missing or mis-shaped tensor, a truncated safetensors file, a
//! PyTorch pickle, a CUDA device in a CPU build, token ids outside the vocabulary.

mod common;
use common::fixture;
use peftlab::model::{LoadOptions, Model};
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
