//! Half-precision bases: tiny-llama loaded in bf16 and f16 agrees with the f32 reference logits
//! within the precision of the format.

use crate::common;
use common::*;
use peftlab::{lab::Model, model::LoadOptions};

fn load(dtype: &str) -> Model {
    let o = LoadOptions {
        dtype: Some(dtype.into()),
        ..Default::default()
    };
    Model::load(&fixture("models/tiny-llama"), o).unwrap()
}

#[test]
fn bf16_and_f16_agree_with_f32_within_their_precision() {
    let (rows, mask) = probe("tiny-llama");
    let reference = tensors("models/tiny-llama/reference.safetensors");
    let want = &reference["logits"];
    let scale = want.values_f32().iter().fold(0f32, |m, x| m.max(x.abs())) as f64;
    // The tolerance is what the reference implementation itself loses in that format: transformers
    // 5.23 (torch 2.15, eager attention) loading this model in bf16 / f16 gives logits within
    // 0.04137 / 0.004674 of its f32 logits (measured on the probe batch, largest logit 2.53); we
    // allow 1.25 times that. A wrong half-precision path (e.g. softmax or norms not in f32, or
    // RoPE tables rounded before the rotation) is well above it.
    for (dtype, hf) in [("bf16", 0.04137), ("f16", 0.004674)] {
        let m = load(dtype);
        assert_eq!(m.info()["dtype"], dtype);
        let got = m.logits(&rows).unwrap();
        let d = masked_diff(&got, want, &mask);
        eprintln!("{dtype}: max |Δlogit| = {d:.5} (largest logit {scale:.3})");
        assert!(
            d <= 1.25 * hf,
            "{dtype}: logits differ by {d} (bound {})",
            1.25 * hf
        );
        // Two bytes per weight (norm weights stay f32).
        let f32_bytes = load("f32").info()["bytes"].as_f64().unwrap();
        let bytes = m.info()["bytes"].as_f64().unwrap();
        assert!(
            bytes < 0.51 * f32_bytes && bytes > 0.49 * f32_bytes,
            "{dtype}: {bytes} vs {f32_bytes}"
        );
    }
}

/// tiny-llama's checkpoint rewritten with every tensor stored as bf16 (round to nearest even,
/// as torch's `.to(torch.bfloat16)`), in a temporary directory.
fn bf16_checkpoint() -> tempfile::TempDir {
    use safetensors::tensor::{Dtype, TensorView};
    let src = fixture("models/tiny-llama");
    let dir = tempfile::tempdir().unwrap();
    for f in ["config.json", "tokenizer.json", "tokenizer_config.json"] {
        std::fs::copy(src.join(f), dir.path().join(f)).unwrap();
    }
    let tensors = peftlab::tensor::load_safetensors(&src.join("model.safetensors")).unwrap();
    let bytes: Vec<(String, Vec<usize>, Vec<u8>)> = tensors
        .iter()
        .map(|(k, t)| {
            let b = t
                .values_f32()
                .iter()
                .flat_map(|&x| half::bf16::from_f32(x).to_bits().to_le_bytes())
                .collect();
            (k.clone(), t.shape.clone(), b)
        })
        .collect();
    let views: Vec<(String, TensorView<'_>)> = bytes
        .iter()
        .map(|(k, s, b)| {
            (
                k.clone(),
                TensorView::new(Dtype::BF16, s.clone(), b).unwrap(),
            )
        })
        .collect();
    safetensors::tensor::serialize_to_file(views, None, &dir.path().join("model.safetensors"))
        .unwrap();
    dir
}

#[test]
fn a_bf16_checkpoint_loads_as_its_bytes_and_equals_the_converted_f32_one() {
    // bf16 in the file and in the model: the bytes are taken as they are (no f32 copy). They
    // must give bitwise the logits of the f32 checkpoint converted to bf16 on loading.
    let dir = bf16_checkpoint();
    let o = LoadOptions {
        dtype: Some("bf16".into()),
        ..Default::default()
    };
    let direct = Model::load(dir.path(), o.clone()).unwrap();
    let converted = load("bf16");
    let (rows, _) = probe("tiny-llama");
    let a = direct.logits(&rows).unwrap().values_f32();
    let b = converted.logits(&rows).unwrap().values_f32();
    assert!(a == b, "the same bf16 weights give the same logits");
}
