//! The five tiny reference models: tokenizer ids, logits, every hidden state and greedy
//! continuations must match transformers (fixtures in tests/fixtures/models, see README there).

use crate::common;
use common::{masked_diff, rows};
use peftlab::model::generate::GenSettings;
use peftlab::tensor::{load_safetensors, HostTensor};
use peftlab::{lab::Model, model::LoadOptions};
use std::path::PathBuf;

fn dir(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/models")
        .join(name)
}

fn reference(name: &str) -> std::collections::BTreeMap<String, HostTensor> {
    load_safetensors(&dir(name).join("reference.safetensors")).unwrap()
}

fn check_model(name: &str) {
    let m = Model::load(&dir(name), LoadOptions::default()).unwrap();
    let r = reference(name);
    let ids = rows(&r["input_ids"]);
    let mask = rows(&r["attention_mask"]);
    // Tokenizer ids.
    let meta: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir(name).join("reference.json")).unwrap())
            .unwrap();
    for (text, want) in meta["texts"]
        .as_array()
        .unwrap()
        .iter()
        .zip(meta["token_ids"].as_array().unwrap())
    {
        let got = m.encode(text.as_str().unwrap()).unwrap();
        let want: Vec<u32> = serde_json::from_value(want.clone()).unwrap();
        assert_eq!(got, want, "{name}: ids of {text}");
    }
    // Logits on the padded batch (rows trimmed to their mask, padded again internally).
    let unpadded: Vec<Vec<u32>> = ids
        .iter()
        .zip(&mask)
        .map(|(r, m)| {
            r.iter()
                .zip(m)
                .filter(|(_, &k)| k == 1)
                .map(|(&i, _)| i as u32)
                .collect()
        })
        .collect();
    let logits = m.logits(&unpadded).unwrap();
    let d = masked_diff(&logits, &r["logits"], &mask);
    eprintln!("{name}: max logit diff {d:e}");
    assert!(d <= 1e-4, "{name}: logits differ by {d}");
    let hs = m.hidden_states(&unpadded).unwrap();
    let n_ref = r.keys().filter(|k| k.starts_with("hidden_states.")).count();
    assert_eq!(hs.len(), n_ref, "{name}: number of hidden states");
    for (i, h) in hs.iter().enumerate() {
        let d = masked_diff(h, &r[&format!("hidden_states.{i}")], &mask);
        assert!(d <= 1e-4, "{name}: hidden state {i} differs by {d}");
    }
    // Greedy continuation of probe 0, no stop at EOS.
    let greedy: Vec<u32> = r["greedy_ids"]
        .values_f64()
        .iter()
        .map(|&x| x as u32)
        .collect();
    let prompt = &unpadded[0];
    let settings = GenSettings::greedy(greedy.len() - prompt.len());
    let new = m.generate_ids(prompt, &settings, |_| Ok(false)).unwrap();
    assert_eq!(
        &greedy[prompt.len()..],
        &new[..],
        "{name}: greedy continuation"
    );
}

#[test]
fn tiny_llama_matches_transformers() {
    check_model("tiny-llama");
}

#[test]
fn tiny_llama3_rope_scaling_matches_transformers() {
    check_model("tiny-llama3");
}

#[test]
fn tiny_mistral_sliding_window_matches_transformers() {
    check_model("tiny-mistral");
}

#[test]
fn tiny_qwen2_bias_tied_matches_transformers() {
    check_model("tiny-qwen2");
}

#[test]
fn tiny_qwen3_qk_norm_sharded_matches_transformers() {
    check_model("tiny-qwen3");
}

/// Decoding with the preallocated KV cache picks, at every step, the argmax of a full forward
/// pass over the whole sequence (no cache), with a trained LoRA adapter on every linear layer
/// (so the projections are tracked by autodiff), on every fixture model; past tiny-mistral's
/// sliding window of 8 too.
#[test]
fn cached_greedy_decoding_equals_full_recompute_with_an_adapter() {
    use peftlab::adapter::AdapterOptions;
    use peftlab::train::StepOptions;
    for name in [
        "tiny-llama",
        "tiny-llama3",
        "tiny-mistral",
        "tiny-qwen2",
        "tiny-qwen3",
    ] {
        let mut m = Model::load(&dir(name), LoadOptions::default()).unwrap();
        let r = reference(name);
        let prompt: Vec<u32> = rows(&r["input_ids"])[0]
            .iter()
            .zip(&rows(&r["attention_mask"])[0])
            .filter(|(_, &k)| k == 1)
            .map(|(&i, _)| i as u32)
            .collect();
        m.add_adapter(AdapterOptions {
            r: Some(4),
            seed: 3,
            ..Default::default()
        })
        .unwrap();
        let labels = vec![prompt.iter().map(|&t| i64::from(t)).collect()];
        let opts = StepOptions {
            lr: 1e-2,
            ..Default::default()
        };
        m.train_step(std::slice::from_ref(&prompt), &labels, &opts)
            .unwrap();
        let settings = GenSettings::greedy(20);
        let cached = m.generate_ids(&prompt, &settings, |_| Ok(false)).unwrap();
        let mut seq = prompt.clone();
        for _ in 0..settings.max_new_tokens {
            let logits = m.logits(&[seq.clone()]).unwrap();
            let v = logits.shape[2];
            let all = logits.values_f64();
            let last = &all[(seq.len() - 1) * v..seq.len() * v];
            let best = (0..v).fold(0, |b, i| if last[i] > last[b] { i } else { b });
            seq.push(best as u32);
        }
        assert_eq!(cached, seq[prompt.len()..], "{name}: cached greedy ids");
    }
}
