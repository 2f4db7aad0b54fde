//! Bindings of the "Models" section of docs/API.md: loading, tokenising, logits, hidden states,
//! generation and lm-eval scoring.

use rhai::{Array, Dynamic, Engine, Map, FLOAT, INT};
use serde::Deserialize;

use super::args::{id_rows, ids, is_batch, strings, to_array};
use crate::host::convert::row_to_map;
use crate::host::{
    bind, fail, parse_opts, register_handle, Handle, ResultExt, RhaiResult, Session,
};
use crate::model::generate::GenSettings;
use crate::model::sampling::Sampler;
use crate::tensor::HostTensor;
use crate::{lab::Model, model::LoadOptions};

/// Options of `generate` / `generate_ids`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct GenOpts {
    max_new_tokens: usize,
    stop: Vec<String>,
    temperature: f64,
    top_k: usize,
    top_p: f64,
    seed: u64,
    stop_at_eos: bool,
}

impl Default for GenOpts {
    fn default() -> Self {
        GenOpts {
            max_new_tokens: 32,
            stop: vec![],
            temperature: 0.0,
            top_k: 0,
            top_p: 1.0,
            seed: 0,
            stop_at_eos: true,
        }
    }
}

impl GenOpts {
    fn settings(&self, fn_name: &str) -> RhaiResult<GenSettings> {
        let ok = self.temperature >= 0.0 && self.top_p > 0.0 && self.top_p <= 1.0;
        if !ok {
            return Err(fail(format!(
                "{fn_name}: temperature must be >= 0 and top_p in (0, 1] (got {}, {})",
                self.temperature, self.top_p
            )));
        }
        Ok(GenSettings {
            max_new_tokens: self.max_new_tokens,
            sampler: Sampler {
                temperature: self.temperature,
                top_k: self.top_k,
                top_p: self.top_p,
            },
            seed: self.seed,
            stop_at_eos: self.stop_at_eos,
        })
    }
}

fn load(path: &str, opts: &Map) -> RhaiResult<Handle<Model>> {
    let o: LoadOptions = parse_opts("load_model", opts)?;
    Ok(Handle::new(
        Model::load(std::path::Path::new(path), o).ctx("load_model")?,
    ))
}

fn logits(m: &Handle<Model>, a: &Array) -> RhaiResult<Handle<HostTensor>> {
    let m = m.borrow("logits")?;
    if is_batch(a) {
        let rows = id_rows("logits", a)?;
        Ok(Handle::new(m.logits(&rows).ctx("logits")?))
    } else {
        let t = m.logits(&[ids("logits", a)?]).ctx("logits")?;
        Ok(Handle::new(t.index(0).ctx("logits")?))
    }
}

fn hidden(m: &Handle<Model>, a: &Array) -> RhaiResult<Array> {
    let m = m.borrow("hidden_states")?;
    let single = !is_batch(a);
    let rows = if single {
        vec![ids("hidden_states", a)?]
    } else {
        id_rows("hidden_states", a)?
    };
    let hs = m.hidden_states(&rows).ctx("hidden_states")?;
    hs.into_iter()
        .map(|h| {
            let h = if single {
                h.index(0).ctx("hidden_states")?
            } else {
                h
            };
            Ok(Dynamic::from(Handle::new(h)))
        })
        .collect()
}

fn generate(m: &Handle<Model>, prompt: &str, opts: &Map) -> RhaiResult<String> {
    let o: GenOpts = parse_opts("generate", opts)?;
    let s = o.settings("generate")?;
    m.borrow("generate")?
        .generate_text(prompt, &s, &o.stop)
        .ctx("generate")
}

fn generate_ids(m: &Handle<Model>, a: &Array, opts: &Map) -> RhaiResult<Array> {
    let o: GenOpts = parse_opts("generate_ids", opts)?;
    if !o.stop.is_empty() {
        return Err(fail("generate_ids: 'stop' strings apply to generate(); generate_ids stops at EOS or max_new_tokens"));
    }
    let s = o.settings("generate_ids")?;
    let prompt = ids("generate_ids", a)?;
    let out = m
        .borrow("generate_ids")?
        .generate_ids(&prompt, &s, |_| Ok(false))
        .ctx("generate_ids")?;
    Ok(to_array(&out))
}

/// The introduction of this area in docs/API.md (`peftlab doc --markdown`).
pub const AREA_DOC: &str = r#"A `Model` is a base model (Hugging Face directory or GGUF file) with at most one attached
adapter; actions are methods (`m.logits(ids)`), and `print(m)` shows a one-line summary.
Every function below that computes with the model uses the attached adapter, if any."#;

/// Registers the model bindings.
pub fn register(engine: &mut Engine, _session: &Session) {
    register_handle::<Model>(engine, "Model");
    let doc_load = "
        Loads a model: a Hugging Face directory (config.json, *.safetensors incl. sharded, tokenizer.json) or a .gguf file.

        Options: `dtype` (\"f32\" | \"bf16\" | \"f16\"), `quant` (\"none\" | \"nf4\" | \"fp4\" | \"int8\" | \"int8_weight\"),
        `double_quant`, `block_size`, `int8_threshold`, `device` (\"cpu\" | \"cuda\" | \"cuda:N\"), `progress`.
        `int8` is LLM.int8() as bitsandbytes' `Linear8bitLt` runs it at inference: row-wise int8 weights, activations
        quantised row-wise at run time, and the outlier columns (any |x| ≥ `int8_threshold`, default 6.0 as in
        bitsandbytes and transformers; 0 turns the decomposition off) multiplied in 16-bit. `int8_weight` is weight-only
        int8: the same codes dequantised for a float matmul. `info()` names the scheme in use (`quant_scheme`).

        ```rhai
        let m = load_model(\"models/tiny-llama\");
        let q = load_model(\"models/llama\", #{ quant: \"nf4\", double_quant: true });
        let i8 = load_model(\"models/llama\", #{ quant: \"int8\" });   // LLM.int8(), threshold 6.0
        print(i8.info().quant_scheme);
        ```";
    bind(engine, "load_model", ["path"], doc_load, |p: &str| {
        load(p, &Map::new())
    });
    bind(
        engine,
        "load_model",
        ["path", "opts"],
        doc_load,
        |p: &str, o: Map| load(p, &o),
    );
    bind(engine, "info", ["m"], "Facts about the model: arch, layers, hidden, heads, kv_heads, vocab, params, bytes, dtype, quant, device, and also intermediate, head_dim, bits_per_param, path and config_hash.\n\n```rhai\nlet i = m.info();\nprint(`${i.arch}: ${i.layers} layers, ${i.params} parameters, ${i.dtype}`);\n```", |m: &mut Handle<Model>| -> RhaiResult<Map> {
        Ok(row_to_map(&m.borrow("info")?.info()))
    });
    bind(
        engine,
        "encode",
        ["m", "text"],
        "Token ids of `text` (BOS as the tokenizer config says).\n\nExample: `let ids = m.encode(\"Hello world\"); print(m.decode(ids));`",
        |m: &mut Handle<Model>, t: &str| -> RhaiResult<Array> {
            Ok(to_array(&m.borrow("encode")?.encode(t).ctx("encode")?))
        },
    );
    bind(
        engine,
        "decode",
        ["m", "ids"],
        "Text of token ids (special tokens kept).\n\nExample: `m.decode(m.generate_ids(m.encode(\"2 + 2 =\"), #{ max_new_tokens: 4 }))`",
        |m: &mut Handle<Model>, a: Array| -> RhaiResult<String> {
            m.borrow("decode")?
                .decode(&ids("decode", &a)?)
                .ctx("decode")
        },
    );
    bind(engine, "logits", ["m", "ids"], "
        Logits: `[T, V]` for an array of ids, `[B, T, V]` for an array of id arrays (right-padded internally).

        ```rhai
        let l = m.logits(m.encode(\"Hello\"));
        print(l.shape());
        ```", |m: &mut Handle<Model>, a: Array| logits(m, &a));
    bind(engine, "hidden_states", ["m", "ids"], "Hidden states (index 0 = embeddings, last = after the final norm), `[T, H]` each (or `[B, T, H]` for a batch).\n\nExample: `let hs = m.hidden_states(m.encode(\"Hello\")); print(hs.len()); print(hs[0].shape());` (layers + 1 states)", |m: &mut Handle<Model>, a: Array| hidden(m, &a));
    let doc_gen = "
        Generates text after `prompt` (KV cache). Options: `max_new_tokens` (32), `stop` (array of strings), `temperature` (0 = greedy), `top_k`, `top_p`, `seed`, `stop_at_eos` (true).

        ```rhai
        m.generate(\"The capital of France is\", #{ max_new_tokens: 8, stop: [\"\\n\"] })
        ```";
    bind(
        engine,
        "generate",
        ["m", "prompt"],
        doc_gen,
        |m: &mut Handle<Model>, p: &str| generate(m, p, &Map::new()),
    );
    bind(
        engine,
        "generate",
        ["m", "prompt", "opts"],
        doc_gen,
        |m: &mut Handle<Model>, p: &str, o: Map| generate(m, p, &o),
    );
    let doc_gi = "New token ids after `ids` (options as generate, without `stop`; `stop_at_eos` default true).\n\nExample: `let new_ids = m.generate_ids(m.encode(\"Once upon a time\"), #{ max_new_tokens: 16, stop_at_eos: false });`";
    bind(
        engine,
        "generate_ids",
        ["m", "ids"],
        doc_gi,
        |m: &mut Handle<Model>, a: Array| generate_ids(m, &a, &Map::new()),
    );
    bind(
        engine,
        "generate_ids",
        ["m", "ids", "opts"],
        doc_gi,
        |m: &mut Handle<Model>, a: Array, o: Map| generate_ids(m, &a, &o),
    );
    bind(
        engine,
        "loglikelihood",
        ["m", "context", "continuation"],
        "
        lm-eval log-likelihood of `continuation` after `context`: #{ logprob, is_greedy, tokens }.\n\nExample: `let r = m.loglikelihood(\"The capital of France is\", \" Paris\"); print(r.logprob);`",
        |m: &mut Handle<Model>, c: &str, x: &str| -> RhaiResult<Map> {
            let s = m
                .borrow("loglikelihood")?
                .loglikelihoods(&[(c.to_string(), x.to_string())], 1)
                .ctx("loglikelihood")?;
            let s = &s[0];
            let mut out = Map::new();
            out.insert("logprob".into(), Dynamic::from_float(s.logprob));
            out.insert("is_greedy".into(), Dynamic::from_bool(s.is_greedy));
            out.insert("tokens".into(), Dynamic::from_int(s.tokens as INT));
            Ok(out)
        },
    );
    bind(engine, "score_choices", ["m", "context", "choices"], "
        Summed log-probabilities of each choice as a continuation of `context` (lm-eval rules; choices are used verbatim, so include a leading space where the task wants one).

        ```rhai
        m.score_choices(\"The sky is\", [\" blue\", \" green\"])
        ```", |m: &mut Handle<Model>, c: &str, choices: Array| -> RhaiResult<Array> {
        let ch = strings("score_choices", "choices", &choices)?;
        let pairs: Vec<(String, String)> = ch.into_iter().map(|x| (c.to_string(), x)).collect();
        let s = m.borrow("score_choices")?.loglikelihoods(&pairs, 8).ctx("score_choices")?;
        Ok(s.iter().map(|x| Dynamic::from_float(x.logprob as FLOAT)).collect())
    });
    bind(
        engine,
        "chat_template",
        ["m"],
        "The model's chat template (Jinja text), or () when it has none.\n\nExample: `if m.chat_template() != () { print(\"chat model\"); }`",
        |m: &mut Handle<Model>| -> RhaiResult<Dynamic> {
            Ok(m.borrow("chat_template")?
                .tokenizer
                .chat_template
                .clone()
                .map_or(Dynamic::UNIT, Dynamic::from))
        },
    );
}
