//! Layer-wise language analysis (logit lens + language id) on tiny-llama.

use crate::common;
use common::*;
use peftlab::tensor::HostTensor;

/// A hidden row built from the output-head row of `token` (divided by the final-norm weight, so
/// that after the norm it points along that row) decodes to `token` and is identified.
#[test]
fn hand_built_hidden_state_decodes_to_its_token_and_language() {
    let m = model("tiny-llama");
    let w = tensors("models/tiny-llama/model.safetensors");
    let head = &w["lm_head.weight"];
    let norm = w["model.norm.weight"].values_f32();
    let h = head.shape[1];
    let ids = peftlab::lens::LangId::new(&["en".into(), "hi".into()]).unwrap();
    // Token 279 is " the", token 968 is "ें" (a Devanagari vowel sign) in this vocabulary.
    for (token, lang) in [(279u32, Some(0usize)), (968, Some(1))] {
        let row = head.index(i64::from(token)).unwrap().values_f32();
        let hidden: Vec<f32> = row.iter().zip(&norm).map(|(r, n)| r / n).collect();
        let t = HostTensor::f32(vec![1, h], hidden).unwrap();
        let top = m.lens_tokens(&t, false, 1).unwrap();
        assert_eq!(top[0][0], token, "lens of the hand-built state");
        let s = m.decode(&[token]).unwrap();
        assert_eq!(ids.identify(&s), lang, "{s:?}");
    }
}

#[test]
fn layer_languages_is_a_well_formed_table_with_and_without_adapter() {
    let mut m = model("tiny-llama");
    let texts = vec![
        "Open the file in a new window".to_string(),
        "फ़ाइल खोलें".to_string(),
    ];
    let langs = vec!["en".to_string(), "hi".to_string()];
    let base = m.layer_languages(&texts, &langs, 3, "all").unwrap();
    assert_eq!(base.len(), 3, "embeddings + 2 layers");
    for (i, r) in base.iter().enumerate() {
        assert_eq!(r["layer"], i);
        let total: f64 = ["en", "hi", "other"]
            .iter()
            .map(|k| r[*k].as_f64().unwrap())
            .sum();
        assert!((total - 1.0).abs() < 1e-12, "proportions sum to 1: {total}");
    }
    m.load_adapter(&fixture("adapters/lora")).unwrap();
    let with = m.layer_languages(&texts, &langs, 3, "last").unwrap();
    assert_eq!(with.len(), 3);
    assert!(m.layer_languages(&texts, &langs, 1, "first").is_err());
}

/// Swahili (issue 21: whatlang had none) is accepted; an unsupported code is an error naming it
/// and listing the supported codes.
#[test]
fn layer_languages_covers_swahili_and_names_unsupported_codes() {
    let m = model("tiny-llama");
    let texts = vec!["Habari ya asubuhi, rafiki yangu".to_string()];
    let langs = vec!["en".to_string(), "sw".to_string()];
    let rows = m.layer_languages(&texts, &langs, 5, "all").unwrap();
    assert_eq!(rows.len(), 3);
    for r in &rows {
        let total: f64 = ["en", "sw", "other"]
            .iter()
            .map(|k| r[*k].as_f64().unwrap())
            .sum();
        assert!((total - 1.0).abs() < 1e-12, "proportions sum to 1: {total}");
    }
    let e = m
        .layer_languages(&texts, &["en".to_string(), "am".to_string()], 1, "all")
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("layer_languages") && e.contains("'am'") && e.contains("sw, ta, te"),
        "{e}"
    );
}
