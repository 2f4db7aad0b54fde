//! Checks of the GGUF loader on SmolLM2-135M-Instruct (Q4_1) against independent implementations.
//!
//! The model is not in the repository: fetch it with `scripts/get-smollm2.sh` (or point
//! `PEFTLAB_SMOLLM2` at the .gguf). Without it every test prints a message and passes.
//!
//! Reference values (`tests/fixtures/smollm2/`) were made by
//! `tests/interop/make_smollm2_reference.py` with transformers 5.23.0 (GGUF loading, which
//! dequantises with gguf-py 0.19.0 and undoes the Q/K permutation itself), torch 2.15 float32
//! on CPU, and the `tokenizers` Python library with SmolLM2's own pre-tokenizer; versions and the
//! file's sha256 are in the fixtures' `provenance` entry.
//!
//! What is checked here:
//! - every raw tensor dequantises bit-identically to gguf-py (sha256 of the f32 bytes);
//! - every Hugging Face tensor (names, shapes, values after the un-permutation) is
//!   bit-identical to transformers' `state_dict()`;
//! - the HF config, the chat template and tokenizer ids agree with transformers;
//! - a plain f32 Llama forward pass written here (a test oracle, independent of the crate's
//!   burn model) on the loaded weights reproduces transformers' next-token logits and its
//!   20-token greedy continuations.

use std::path::PathBuf;

use peftlab::gguf::{find_smollm2, GgufModel};
use peftlab::model::generate::GenSettings;
use peftlab::model::sampling::Sampler;
use peftlab::{lab::Model, model::LoadOptions};
use serde_json::Value;
use sha2::{Digest, Sha256};

fn model_path(test: &str) -> Option<PathBuf> {
    match find_smollm2() {
        Some(p) if p.is_file() => Some(p),
        Some(p) => panic!(
            "{test}: PEFTLAB_SMOLLM2 points to {}, which is not a file",
            p.display()
        ),
        None => {
            eprintln!(
                "SKIPPED {test}: SmolLM2 GGUF not found (run scripts/get-smollm2.sh or set \
                 PEFTLAB_SMOLLM2; looked in {})",
                peftlab::gguf::smollm2_default_path().display()
            );
            None
        }
    }
}

fn fixture(name: &str) -> Value {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/smollm2")
        .join(name);
    serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
}

fn sha256_f32(v: &[f32]) -> String {
    let mut h = Sha256::new();
    for x in v {
        h.update(x.to_le_bytes());
    }
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

fn ids(v: &Value) -> Vec<u32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap() as u32)
        .collect()
}

#[test]
fn smollm2_file_is_the_one_the_references_were_made_from() {
    let Some(path) = model_path("smollm2_file_is_the_one_the_references_were_made_from") else {
        return;
    };
    let reference = fixture("reference.json");
    let bytes = std::fs::read(path).unwrap();
    let sha: String = Sha256::digest(&bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(
        sha,
        reference["provenance"]["file_sha256"].as_str().unwrap()
    );
}

#[test]
fn smollm2_truncated_copies_give_truncated_errors() {
    let Some(path) = model_path("smollm2_truncated_copies_give_truncated_errors") else {
        return;
    };
    let bytes = std::fs::read(path).unwrap();
    let header = peftlab::gguf::GgufFile::from_bytes(bytes.clone())
        .unwrap()
        .data_offset() as usize;
    // 300 cuts spread over the header (metadata, token arrays, tensor infos) and 50 in the data
    let cuts = (0..300)
        .map(|i| i * header / 300)
        .chain((0..50).map(|i| header + i * (bytes.len() - header) / 50 + 1));
    for cut in cuts {
        match peftlab::gguf::GgufFile::from_bytes(bytes[..cut].to_vec()) {
            Err(peftlab::gguf::GgufError::Truncated { file_len, .. }) => {
                assert_eq!(file_len, cut as u64)
            }
            other => panic!("cut at {cut}: expected Truncated, got {other:?}"),
        }
    }
}

#[test]
fn smollm2_config_matches_transformers() {
    let Some(path) = model_path("smollm2_config_matches_transformers") else {
        return;
    };
    let m = GgufModel::open(&path).unwrap();
    let c = m.hf_config().unwrap();
    let r = &fixture("reference.json")["config"];
    for k in [
        "hidden_size",
        "intermediate_size",
        "num_hidden_layers",
        "num_attention_heads",
        "num_key_value_heads",
        "vocab_size",
        "max_position_embeddings",
        "tie_word_embeddings",
        "bos_token_id",
        "eos_token_id",
    ] {
        assert_eq!(c[k], r[k], "{k}");
    }
    // transformers keeps the f32 value (9.999999747378752e-06); we write its shortest form.
    assert_eq!(c["rms_norm_eps"].as_f64().unwrap(), 1e-5);
    assert_eq!(
        c["rms_norm_eps"].as_f64().unwrap() as f32,
        r["rms_norm_eps"].as_f64().unwrap() as f32
    );
    assert_eq!(c["rope_theta"].as_f64(), r["rope_theta"].as_f64());
    assert_eq!(c["architectures"][0], "LlamaForCausalLM");
    let template = fixture("reference.json")["chat_template"].clone();
    assert_eq!(m.chat_template().as_deref(), template.as_str());
    assert!(template.as_str().unwrap().contains("<|im_start|>"));
}

#[test]
fn smollm2_every_raw_tensor_dequantises_like_gguf_py() {
    let Some(path) = model_path("smollm2_every_raw_tensor_dequantises_like_gguf_py") else {
        return;
    };
    let m = GgufModel::open(&path).unwrap();
    let refs = fixture("tensors_sha256.json");
    let refs = refs["gguf"].as_object().unwrap();
    let f = m.file();
    assert_eq!(f.tensors().len(), refs.len());
    let mut types = std::collections::BTreeMap::new();
    for t in f.tensors() {
        let r = &refs[&t.name];
        assert_eq!(t.ty.name(), r["type"].as_str().unwrap(), "{}", t.name);
        let dims: Vec<u64> = r["dims"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d.as_u64().unwrap())
            .collect();
        assert_eq!(t.dims, dims, "{}", t.name);
        let v = f.read_tensor_f32(&t.name).unwrap();
        assert_eq!(sha256_f32(&v), r["sha256"].as_str().unwrap(), "{}", t.name);
        *types.entry(t.ty.name()).or_insert(0) += 1;
    }
    // F32 norms, Q4_1 matrices, Q8_0 embedding: 61 + 210 + 1 tensors
    assert_eq!(
        types.into_iter().collect::<Vec<_>>(),
        vec![("F32", 61), ("Q4_1", 210), ("Q8_0", 1)]
    );
}

#[test]
fn smollm2_hf_tensors_match_transformers_state_dict() {
    let Some(path) = model_path("smollm2_hf_tensors_match_transformers_state_dict") else {
        return;
    };
    let m = GgufModel::open(&path).unwrap();
    let refs = fixture("tensors_sha256.json");
    let refs = refs["hf"].as_object().unwrap();
    let mut ours = m.hf_tensor_names();
    ours.sort();
    let mut theirs: Vec<String> = refs.keys().cloned().collect();
    theirs.sort();
    assert_eq!(ours, theirs);
    for name in &ours {
        let r = &refs[name];
        let shape: Vec<usize> = r["shape"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d.as_u64().unwrap() as usize)
            .collect();
        assert_eq!(m.hf_shape(name).unwrap(), shape, "{name}");
        let v = m.read_hf_tensor_f32(name).unwrap();
        assert_eq!(v.len(), shape.iter().product::<usize>());
        assert_eq!(sha256_f32(&v), r["sha256"].as_str().unwrap(), "{name}");
    }
}

#[test]
fn smollm2_tokenizer_matches_transformers() {
    let Some(path) = model_path("smollm2_tokenizer_matches_transformers") else {
        return;
    };
    let m = GgufModel::open(&path).unwrap();
    let tok = m.tokenizer().unwrap();
    assert_eq!(tok.bos_id(), Some(1));
    assert_eq!(tok.bos_token(), Some("<|im_start|>"));
    assert_eq!(tok.eos_id(), Some(2));
    assert_eq!(tok.eos_token(), Some("<|im_end|>"));
    assert!(!tok.add_bos());
    let r = fixture("reference.json");
    for case in r["tokenizer"].as_array().unwrap() {
        let text = case["text"].as_str().unwrap();
        let want = ids(&case["ids"]);
        // the SmolLM2 pipeline and transformers' GGUF tokenizer agree on all cases
        assert_eq!(want, ids(&case["transformers_gguf_ids"]), "{text:?}");
        assert_eq!(tok.encode(text, true).unwrap(), want, "{text:?}");
        assert_eq!(tok.decode(&want, false).unwrap(), text, "{text:?}");
    }
    for p in r["prompts"].as_array().unwrap() {
        let text = p["text"].as_str().unwrap();
        assert_eq!(tok.encode(text, true).unwrap(), ids(&p["ids"]), "{text:?}");
    }
}

#[test]
fn smollm2_forward_reproduces_transformers_logits_and_greedy_text() {
    let Some(path) = model_path("smollm2_forward_reproduces_transformers_logits_and_greedy_text")
    else {
        return;
    };
    let m = Model::load(&path, LoadOptions::default()).unwrap();
    let r = fixture("reference.json");
    let mut worst = 0f32;
    for p in r["prompts"].as_array().unwrap() {
        let prompt = ids(&p["ids"]);
        let logits = m.logits(std::slice::from_ref(&prompt)).unwrap();
        let last = logits.index(0).unwrap().index(-1).unwrap();
        let v = last.values_f32();
        // next-token top-1 and the reference's top-5 logits (at the reference ids)
        let top5 = ids(&p["top5_ids"]);
        assert_eq!(last.argmax().unwrap() as u32, top5[0], "{:?}", p["text"]);
        for (id, want) in top5.iter().zip(p["top5_logits"].as_array().unwrap()) {
            worst = worst.max((v[*id as usize] - want.as_f64().unwrap() as f32).abs());
        }
        for (got, want) in v.iter().zip(p["first8_logits"].as_array().unwrap()) {
            worst = worst.max((got - want.as_f64().unwrap() as f32).abs());
        }
        // greedy continuation, stopping at EOS like transformers' generate
        let want_ids = ids(&p["greedy_ids"]);
        let settings = GenSettings {
            max_new_tokens: want_ids.len(),
            sampler: Sampler {
                temperature: 0.0,
                top_k: 0,
                top_p: 1.0,
            },
            seed: 0,
            stop_at_eos: true,
        };
        let got_ids = m.generate_ids(&prompt, &settings, |_| Ok(false)).unwrap();
        assert_eq!(got_ids, want_ids, "{:?}", p["text"]);
        let text = m.decode(&got_ids).unwrap();
        assert_eq!(text, p["greedy_text"].as_str().unwrap());
        eprintln!("{:?} -> {:?}", p["text"].as_str().unwrap(), text);
    }
    eprintln!("worst logit difference vs transformers: {worst:e}");
    // f32 in a different summation order than torch's BLAS, logits of magnitude ~25.
    assert!(worst < 1e-4, "worst logit difference {worst}");
}

#[test]
fn smollm2_lora_training_lowers_the_loss_on_the_demo_data() {
    let Some(path) = model_path("smollm2_lora_training_lowers_the_loss_on_the_demo_data") else {
        return;
    };
    let mut m = Model::load(&path, LoadOptions::default()).unwrap();
    m.add_adapter(peftlab::adapter::AdapterOptions {
        r: Some(8),
        seed: 1,
        ..Default::default()
    })
    .unwrap();
    let d = peftlab::eval::ui_strings("train", Some(&["de".to_string()]), None).unwrap();
    let rows = d.rows()[..8].to_vec();
    let o = peftlab::train::TrainOptions {
        lr: 1e-3,
        epochs: 3,
        batch_size: 4,
        seed: 1,
        ..Default::default()
    };
    let rep = m.train(&rows, &o, &mut |_| {}, &|| false).unwrap();
    let (first, last) = (rep.losses[0], *rep.losses.last().unwrap());
    eprintln!("SmolLM2 LoRA losses: {:?}", rep.losses);
    assert!(last < 0.9 * first, "loss {first} -> {last}");
}
