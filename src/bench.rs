//! Benchmarks of the hot paths on random-weight models (`peftlab bench`, `cargo bench`).
//!
//! A model is built from a config (a preset or a `config.json`) with N(0, 0.02²) weights drawn
//! from ChaCha8, so the numbers do not depend on a checkpoint. Each benchmark reports tokens/s
//! and, where a peak FLOP/s is known, the model FLOPs utilisation
//! `MFU = 6·N_params·tokens / time / peak` (training; 2·N for forward-only work).

use crate::adapter::AdapterOptions;
use crate::backend::DeviceSpec;
use crate::lab::Model;
use crate::model::generate::GenSettings;
use crate::model::load::LoadOptions;
use crate::model::tokenizer::Tokenizer;
use crate::model::weights::WeightSource;
use crate::model::{ModelConfig, ModelError};
use crate::train::StepOptions;
use crate::value::{num, Row, Value};
use burn::tensor::DType;
use std::time::Instant;

/// Named model shapes.
pub fn preset(name: &str) -> Result<serde_json::Value, ModelError> {
    let (h, i, l, heads, kv, v) = match name {
        // The issues' small benchmark model: 4 layers, hidden 256.
        "small" => (256, 688, 4, 8, 4, 32000),
        // 4 layers, hidden 512 (the quantisation benchmark).
        "medium" => (512, 1408, 4, 8, 8, 32000),
        "smollm2-135m" => (576, 1536, 30, 9, 3, 49152),
        "llama-3.2-1b" => (2048, 8192, 16, 32, 8, 128256),
        "llama-3.1-8b" => (4096, 14336, 32, 32, 8, 128256),
        other => {
            return Err(ModelError::Config(format!(
                "unknown preset '{other}' (expected one of: small, medium, smollm2-135m, llama-3.2-1b, llama-3.1-8b, or a config.json path)"
            )))
        }
    };
    Ok(serde_json::json!({
        "architectures": ["LlamaForCausalLM"], "hidden_size": h, "intermediate_size": i,
        "num_hidden_layers": l, "num_attention_heads": heads, "num_key_value_heads": kv,
        "vocab_size": v, "rms_norm_eps": 1e-5, "rope_theta": 10000.0,
        "max_position_embeddings": 4096, "tie_word_embeddings": false,
    }))
}

/// Random weights in the HF naming, generated on demand one tensor at a time.
pub struct RandomSource {
    shapes: std::collections::BTreeMap<String, Vec<usize>>,
    seed: u64,
}

impl RandomSource {
    /// The tensors a config needs.
    pub fn new(cfg: &ModelConfig, seed: u64) -> Self {
        let mut shapes = std::collections::BTreeMap::new();
        let (h, hd) = (cfg.hidden_size, cfg.head_dim);
        let (q, kv) = (cfg.num_heads * hd, cfg.num_kv_heads * hd);
        shapes.insert("model.embed_tokens.weight".into(), vec![cfg.vocab_size, h]);
        shapes.insert("model.norm.weight".into(), vec![h]);
        if !cfg.tie_word_embeddings {
            shapes.insert("lm_head.weight".into(), vec![cfg.vocab_size, h]);
        }
        for i in 0..cfg.num_layers {
            let p = format!("model.layers.{i}");
            for (n, s) in [
                ("self_attn.q_proj.weight", vec![q, h]),
                ("self_attn.k_proj.weight", vec![kv, h]),
                ("self_attn.v_proj.weight", vec![kv, h]),
                ("self_attn.o_proj.weight", vec![h, q]),
                ("mlp.gate_proj.weight", vec![cfg.intermediate_size, h]),
                ("mlp.up_proj.weight", vec![cfg.intermediate_size, h]),
                ("mlp.down_proj.weight", vec![h, cfg.intermediate_size]),
                ("input_layernorm.weight", vec![h]),
                ("post_attention_layernorm.weight", vec![h]),
            ] {
                shapes.insert(format!("{p}.{n}"), s);
            }
        }
        RandomSource { shapes, seed }
    }
}

impl WeightSource for RandomSource {
    fn names(&self) -> Vec<String> {
        self.shapes.keys().cloned().collect()
    }
    fn shape(&self, name: &str) -> Option<Vec<usize>> {
        self.shapes.get(name).cloned()
    }
    fn read_f32(&self, name: &str) -> Result<Vec<f32>, ModelError> {
        let s = self
            .shapes
            .get(name)
            .ok_or_else(|| ModelError::MissingTensor {
                name: name.into(),
                source_desc: "random weights".into(),
            })?;
        if s.len() == 1 {
            return Ok(vec![1.0; s[0]]);
        }
        let mut rng = crate::rng::derived(self.seed, name);
        Ok(crate::adapter::init::normal(
            s.iter().product(),
            0.02,
            &mut rng,
        ))
    }
    fn describe(&self) -> String {
        "random weights".into()
    }
}

/// A model with random weights and a placeholder-free byte tokenizer of the config's size.
pub fn random_model(
    config_json: &serde_json::Value,
    options: LoadOptions,
    seed: u64,
) -> Result<Model, ModelError> {
    let cfg = ModelConfig::from_json(config_json)?;
    let device = DeviceSpec::parse(&options.device)?;
    device.check_available()?;
    let dtype = match &options.dtype {
        Some(d) => crate::model::load::parse_dtype(d)?,
        None if device == DeviceSpec::Cpu => DType::F32,
        None => DType::BF16,
    };
    let src = RandomSource::new(&cfg, seed);
    let quant = crate::lab::quant_config(&options)?;
    let lm = Model::build(&cfg, &src, &device, dtype, quant, options.progress)?;
    let vocab: std::collections::HashMap<String, u32> = (0..cfg.vocab_size as u32)
        .map(|i| (format!("<{i}>"), i))
        .collect();
    let wl = tokenizers::models::wordlevel::WordLevel::builder()
        .vocab(vocab.into_iter().collect())
        .unk_token("<0>".into())
        .build()
        .map_err(ModelError::TokenizerLib)?;
    let mut inner = tokenizers::Tokenizer::new(wl);
    inner.with_pre_tokenizer(Some(
        tokenizers::pre_tokenizers::whitespace::WhitespaceSplit,
    ));
    let tok = Tokenizer::from_parts(inner, None, vec![0], false, None);
    Ok(Model {
        lm,
        tokenizer: tok,
        path: "random".into(),
        options,
        device,
        dtype,
        config_hash: String::new(),
        adapters: Default::default(),
        optimizer: None,
    })
}

/// Deterministic token rows for benchmarks.
pub fn random_ids(batch: usize, seq: usize, vocab: usize, seed: u64) -> Vec<Vec<u32>> {
    use rand::RngExt;
    let mut rng = crate::rng::derived(seed, "bench-ids");
    (0..batch)
        .map(|_| {
            (0..seq)
                .map(|_| rng.random_range(1..vocab as u32))
                .collect()
        })
        .collect()
}

/// One benchmark's numbers.
#[derive(Debug, Clone)]
pub struct BenchResult {
    /// What was measured.
    pub name: String,
    /// Tokens per second.
    pub tokens_per_s: f64,
    /// Seconds per iteration (median).
    pub seconds: f64,
    /// Model FLOPs utilisation, when a peak is known.
    pub mfu: Option<f64>,
    /// Peak resident memory of the process.
    pub peak_bytes: Option<u64>,
}

impl BenchResult {
    /// As a row for tables.
    pub fn to_row(&self) -> Row {
        let mut r = Row::new();
        r.insert("bench".into(), Value::from(self.name.clone()));
        r.insert("tokens_per_s".into(), num(self.tokens_per_s));
        r.insert("seconds".into(), num(self.seconds));
        r.insert("mfu".into(), self.mfu.map_or(Value::Null, num));
        r.insert(
            "peak_bytes".into(),
            self.peak_bytes.map_or(Value::Null, Value::from),
        );
        r
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// What to benchmark.
#[derive(Debug, Clone)]
pub struct BenchSpec {
    /// `forward` | `generate` | `decode` | `train` | `score`.
    pub kind: String,
    /// Batch size.
    pub batch: usize,
    /// Sequence length (prompt length for generation).
    pub seq: usize,
    /// Timed iterations (after one warm-up); for `decode`, timed decode steps.
    pub iters: usize,
    /// LoRA rank for training (all-linear).
    pub rank: usize,
    /// New tokens for generation.
    pub new_tokens: usize,
    /// Peak FLOP/s of the device for MFU.
    pub peak_flops: Option<f64>,
}

/// Runs one benchmark on `m` (which must have no adapter for `train`, one is added).
pub fn run(m: &mut Model, spec: &BenchSpec) -> Result<BenchResult, String> {
    let cfg = m.config().clone();
    let params = cfg.num_params() as f64;
    let ids = random_ids(spec.batch, spec.seq, cfg.vocab_size, 1);
    let mut times = Vec::new();
    let (tokens, flops_per_token) = match spec.kind.as_str() {
        "forward" => {
            for i in 0..=spec.iters {
                let t = Instant::now();
                m.logits(&ids).map_err(|e| e.to_string())?;
                if i > 0 {
                    times.push(t.elapsed().as_secs_f64());
                }
            }
            (spec.batch * spec.seq, 2.0 * params)
        }
        "generate" => {
            let settings = GenSettings::greedy(spec.new_tokens);
            for i in 0..=spec.iters {
                let t = Instant::now();
                m.generate_ids(&ids[0], &settings, |_| Ok(false))
                    .map_err(|e| e.to_string())?;
                if i > 0 {
                    times.push(t.elapsed().as_secs_f64());
                }
            }
            (spec.new_tokens, 2.0 * params)
        }
        "decode" => {
            // One timestamp per generated token: the first after the prompt's forward pass,
            // then one per single-token decode step. The interval after timestamp k is the step
            // whose input sits at position `seq + k`; the first such step is the warm-up.
            let settings = GenSettings::greedy(spec.iters + 2);
            let mut stamps = Vec::with_capacity(settings.max_new_tokens);
            m.generate_ids(&ids[0], &settings, |_| {
                stamps.push(Instant::now());
                Ok(false)
            })
            .map_err(|e| e.to_string())?;
            times = stamps
                .windows(2)
                .skip(1)
                .map(|w| (w[1] - w[0]).as_secs_f64())
                .collect();
            (1, 2.0 * params)
        }
        "train" => {
            if m.adapters.is_empty() {
                m.add_adapter(AdapterOptions {
                    r: Some(spec.rank),
                    alpha: Some(2.0 * spec.rank as f64),
                    ..Default::default()
                })
                .map_err(|e| e.to_string())?;
            }
            let labels: Vec<Vec<i64>> = ids
                .iter()
                .map(|r| r.iter().map(|&x| i64::from(x)).collect())
                .collect();
            let o = StepOptions {
                lr: 1e-4,
                ..Default::default()
            };
            for i in 0..=spec.iters {
                let t = Instant::now();
                m.train_step(&ids, &labels, &o).map_err(|e| e.to_string())?;
                if i > 0 {
                    times.push(t.elapsed().as_secs_f64());
                }
            }
            (spec.batch * spec.seq, 6.0 * params)
        }
        "score" => {
            let pairs: Vec<(String, String)> = (0..spec.batch)
                .map(|b| {
                    let ctx: Vec<String> = ids[b][..spec.seq / 2]
                        .iter()
                        .map(|t| format!("<{t}>"))
                        .collect();
                    let cont: Vec<String> = ids[b][spec.seq / 2..]
                        .iter()
                        .map(|t| format!("<{t}>"))
                        .collect();
                    (ctx.join(" "), format!(" {}", cont.join(" ")))
                })
                .collect();
            for i in 0..=spec.iters {
                let t = Instant::now();
                m.loglikelihoods(&pairs, spec.batch)
                    .map_err(|e| e.to_string())?;
                if i > 0 {
                    times.push(t.elapsed().as_secs_f64());
                }
            }
            (spec.batch * spec.seq, 2.0 * params)
        }
        other => {
            return Err(format!(
                "unknown benchmark '{other}' (expected one of: forward, generate, decode, train, score)"
            ))
        }
    };
    let s = median(times);
    let tps = tokens as f64 / s;
    let name = if spec.kind == "decode" {
        format!("decode @{}..{}", spec.seq + 1, spec.seq + spec.iters)
    } else {
        format!("{} b{}×{}", spec.kind, spec.batch, spec.seq)
    };
    Ok(BenchResult {
        name,
        tokens_per_s: tps,
        seconds: s,
        mfu: spec.peak_flops.map(|p| flops_per_token * tps / p),
        peak_bytes: crate::train::trainer::peak_rss(),
    })
}
