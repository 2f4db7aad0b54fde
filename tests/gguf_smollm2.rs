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

/// A plain f32 Llama forward pass with a KV cache (Hugging Face `modeling_llama` semantics:
/// RMSNorm in f32, rotate-half RoPE, grouped-query attention, SiLU-gated MLP, tied lm_head).
/// A test oracle only; the product's model is the burn implementation.
mod oracle {
    use peftlab::gguf::GgufModel;

    pub struct Layer {
        ln1: Vec<f32>,
        q: Vec<f32>,
        k: Vec<f32>,
        v: Vec<f32>,
        o: Vec<f32>,
        ln2: Vec<f32>,
        gate: Vec<f32>,
        up: Vec<f32>,
        down: Vec<f32>,
    }

    pub struct Llama {
        hidden: usize,
        inter: usize,
        n_head: usize,
        n_kv: usize,
        hd: usize,
        vocab: usize,
        eps: f32,
        theta: f64,
        embed: Vec<f32>,
        lm_head: Option<Vec<f32>>,
        norm: Vec<f32>,
        layers: Vec<Layer>,
    }

    fn dot(a: &[f32], b: &[f32]) -> f32 {
        let mut acc = [0f32; 8];
        let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
        let (ra, rb) = (ca.remainder(), cb.remainder());
        for (x, y) in ca.zip(cb) {
            for i in 0..8 {
                acc[i] += x[i] * y[i];
            }
        }
        let tail: f32 = ra.iter().zip(rb).map(|(x, y)| x * y).sum();
        acc.iter().sum::<f32>() + tail
    }

    /// `w` is row-major `[out, in]` (Hugging Face layout).
    fn matvec(w: &[f32], x: &[f32]) -> Vec<f32> {
        w.chunks_exact(x.len()).map(|row| dot(row, x)).collect()
    }

    fn rmsnorm(x: &[f32], w: &[f32], eps: f32) -> Vec<f32> {
        let ms = x.iter().map(|v| v * v).sum::<f32>() / x.len() as f32;
        let s = 1.0 / (ms + eps).sqrt();
        x.iter().zip(w).map(|(v, g)| g * (v * s)).collect()
    }

    fn rope(x: &mut [f32], hd: usize, pos: usize, theta: f64) {
        let half = hd / 2;
        for head in x.chunks_exact_mut(hd) {
            for i in 0..half {
                let inv = 1.0 / theta.powf((2 * i) as f64 / hd as f64);
                let (s, c) = ((pos as f64) * inv).sin_cos();
                let (s, c) = (s as f32, c as f32);
                let (a, b) = (head[i], head[i + half]);
                head[i] = a * c - b * s;
                head[i + half] = b * c + a * s;
            }
        }
    }

    impl Llama {
        pub fn load(m: &GgufModel) -> Llama {
            let c = m.hf_config().unwrap();
            let u = |k: &str| c[k].as_u64().unwrap() as usize;
            let t = |n: &str| m.read_hf_tensor_f32(n).unwrap();
            let n_layers = u("num_hidden_layers");
            let layers = (0..n_layers)
                .map(|l| {
                    let p = format!("model.layers.{l}.");
                    Layer {
                        ln1: t(&format!("{p}input_layernorm.weight")),
                        q: t(&format!("{p}self_attn.q_proj.weight")),
                        k: t(&format!("{p}self_attn.k_proj.weight")),
                        v: t(&format!("{p}self_attn.v_proj.weight")),
                        o: t(&format!("{p}self_attn.o_proj.weight")),
                        ln2: t(&format!("{p}post_attention_layernorm.weight")),
                        gate: t(&format!("{p}mlp.gate_proj.weight")),
                        up: t(&format!("{p}mlp.up_proj.weight")),
                        down: t(&format!("{p}mlp.down_proj.weight")),
                    }
                })
                .collect();
            let hidden = u("hidden_size");
            let n_head = u("num_attention_heads");
            Llama {
                hidden,
                inter: u("intermediate_size"),
                n_head,
                n_kv: u("num_key_value_heads"),
                hd: hidden / n_head,
                vocab: u("vocab_size"),
                eps: c["rms_norm_eps"].as_f64().unwrap() as f32,
                theta: c["rope_theta"].as_f64().unwrap(),
                embed: t("model.embed_tokens.weight"),
                lm_head: (!c["tie_word_embeddings"].as_bool().unwrap())
                    .then(|| t("lm_head.weight")),
                norm: t("model.norm.weight"),
                layers,
            }
        }

        /// Runs `tokens` through the model, appending to `cache` (per layer: keys, values);
        /// returns the logits after the last token.
        pub fn step(&self, tokens: &[u32], cache: &mut [(Vec<f32>, Vec<f32>)]) -> Vec<f32> {
            let (h, hd) = (self.hidden, self.hd);
            let kvd = self.n_kv * hd;
            let group = self.n_head / self.n_kv;
            let mut x = Vec::new();
            for &tok in tokens {
                let t0 = tok as usize;
                x = self.embed[t0 * h..(t0 + 1) * h].to_vec();
                for (layer, (kc, vc)) in self.layers.iter().zip(cache.iter_mut()) {
                    let pos = kc.len() / kvd;
                    let a = rmsnorm(&x, &layer.ln1, self.eps);
                    let mut q = matvec(&layer.q, &a);
                    let mut k = matvec(&layer.k, &a);
                    let v = matvec(&layer.v, &a);
                    rope(&mut q, hd, pos, self.theta);
                    rope(&mut k, hd, pos, self.theta);
                    kc.extend_from_slice(&k);
                    vc.extend_from_slice(&v);
                    let n = pos + 1;
                    let mut att = vec![0f32; self.n_head * hd];
                    for head in 0..self.n_head {
                        let kvh = head / group;
                        let qh = &q[head * hd..(head + 1) * hd];
                        let scale = 1.0 / (hd as f32).sqrt();
                        let scores: Vec<f32> = (0..n)
                            .map(|j| {
                                dot(qh, &kc[j * kvd + kvh * hd..j * kvd + (kvh + 1) * hd]) * scale
                            })
                            .collect();
                        let mx = scores.iter().cloned().fold(f32::NEG_INFINITY, f32::max);
                        let e: Vec<f32> = scores.iter().map(|s| (s - mx).exp()).collect();
                        let z: f32 = e.iter().sum();
                        let out = &mut att[head * hd..(head + 1) * hd];
                        for (j, ej) in e.iter().enumerate() {
                            let vj = &vc[j * kvd + kvh * hd..j * kvd + (kvh + 1) * hd];
                            for d in 0..hd {
                                out[d] += ej / z * vj[d];
                            }
                        }
                    }
                    let o = matvec(&layer.o, &att);
                    x.iter_mut().zip(&o).for_each(|(xi, oi)| *xi += oi);
                    let b = rmsnorm(&x, &layer.ln2, self.eps);
                    let g = matvec(&layer.gate, &b);
                    let u = matvec(&layer.up, &b);
                    let act: Vec<f32> = g
                        .iter()
                        .zip(&u)
                        .map(|(g, u)| g / (1.0 + (-g).exp()) * u)
                        .collect();
                    debug_assert_eq!(act.len(), self.inter);
                    let d = matvec(&layer.down, &act);
                    x.iter_mut().zip(&d).for_each(|(xi, di)| *xi += di);
                }
            }
            let xn = rmsnorm(&x, &self.norm, self.eps);
            let head = self.lm_head.as_ref().unwrap_or(&self.embed);
            let logits = matvec(head, &xn);
            assert_eq!(logits.len(), self.vocab);
            logits
        }

        pub fn new_cache(&self) -> Vec<(Vec<f32>, Vec<f32>)> {
            vec![(Vec::new(), Vec::new()); self.layers.len()]
        }
    }

    pub fn argmax(v: &[f32]) -> u32 {
        let mut best = 0;
        for (i, x) in v.iter().enumerate() {
            if *x > v[best] {
                best = i;
            }
        }
        best as u32
    }
}

#[test]
fn smollm2_oracle_forward_reproduces_transformers_logits_and_greedy_text() {
    let Some(path) =
        model_path("smollm2_oracle_forward_reproduces_transformers_logits_and_greedy_text")
    else {
        return;
    };
    let m = GgufModel::open(&path).unwrap();
    let tok = m.tokenizer().unwrap();
    let llama = oracle::Llama::load(&m);
    let r = fixture("reference.json");
    let mut worst = 0f32;
    for p in r["prompts"].as_array().unwrap() {
        let prompt = ids(&p["ids"]);
        let mut cache = llama.new_cache();
        let logits = llama.step(&prompt, &mut cache);
        // next-token top-1 and the reference's top-5 logits (at the reference ids)
        let top5 = ids(&p["top5_ids"]);
        assert_eq!(oracle::argmax(&logits), top5[0], "{:?}", p["text"]);
        for (id, want) in top5.iter().zip(p["top5_logits"].as_array().unwrap()) {
            let d = (logits[*id as usize] - want.as_f64().unwrap() as f32).abs();
            worst = worst.max(d);
        }
        for (got, want) in logits.iter().zip(p["first8_logits"].as_array().unwrap()) {
            worst = worst.max((got - want.as_f64().unwrap() as f32).abs());
        }
        // greedy continuation, stopping at EOS like transformers' generate
        let want_ids = ids(&p["greedy_ids"]);
        let mut next = oracle::argmax(&logits);
        let mut got_ids = vec![next];
        while got_ids.len() < want_ids.len() && Some(next) != tok.eos_id() {
            next = oracle::argmax(&llama.step(&[next], &mut cache));
            got_ids.push(next);
        }
        assert_eq!(got_ids, want_ids, "{:?}", p["text"]);
        let text = tok.decode(&got_ids, false).unwrap();
        assert_eq!(text, p["greedy_text"].as_str().unwrap());
        eprintln!("{:?} -> {:?}", p["text"].as_str().unwrap(), text);
    }
    // f32 arithmetic in a different order than torch's BLAS: the measured worst |diff| over
    // the 5 prompts x 13 logits was 5.9e-5 (logits of magnitude ~25); a wrong permutation,
    // eps or rope theta moves logits by whole units.
    eprintln!("worst logit difference vs transformers: {worst:e}");
    assert!(worst < 5e-4, "worst logit difference {worst}");
}
