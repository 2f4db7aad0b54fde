//! Mapping a GGUF Llama file onto Hugging Face `LlamaForCausalLM` names, shapes and config.
//!
//! Tensor names follow llama.cpp's `gguf-py/gguf/tensor_mapping.py` (`token_embd`, `blk.N.attn_q`,
//! ...) and transformers' GGUF loader (`modeling_gguf_pytorch_utils.py`,
//! `get_gguf_hf_weights_map`); config keys follow transformers' `integrations/ggml.py`
//! (`GGUF_CONFIG_MAPPING["llama"]`). llama.cpp's converter (`convert_hf_to_gguf.py`,
//! `LlamaModel.permute`) reorders the rows of `q_proj` and `k_proj` from Hugging Face's
//! "rotate half" layout to the interleaved layout of the original Meta code:
//! `w.reshape(n_head, 2, hd/2, in).swapaxes(1, 2)`, so GGUF row `h*hd + 2*i + s` holds
//! Hugging Face row `h*hd + s*hd/2 + i` (s in {0, 1}, i < hd/2). We undo it exactly as
//! transformers' `LlamaTensorProcessor._reverse_permute_weights` does (`n_head` for q,
//! `n_head_kv` for k).

use std::collections::HashMap;

use super::reader::GgufFile;
use super::GgufError;

/// Architectures (`general.architecture`) that can be mapped onto the Llama implementation.
pub const SUPPORTED_ARCHITECTURES: &[&str] = &["llama"];

/// Per-layer tensors: (GGUF suffix, Hugging Face suffix, rows permuted with n_head / n_kv).
const LAYER_TENSORS: &[(&str, &str, Permute)] = &[
    ("attn_norm.weight", "input_layernorm.weight", Permute::No),
    ("attn_q.weight", "self_attn.q_proj.weight", Permute::Heads),
    ("attn_k.weight", "self_attn.k_proj.weight", Permute::KvHeads),
    ("attn_v.weight", "self_attn.v_proj.weight", Permute::No),
    ("attn_output.weight", "self_attn.o_proj.weight", Permute::No),
    (
        "ffn_norm.weight",
        "post_attention_layernorm.weight",
        Permute::No,
    ),
    ("ffn_gate.weight", "mlp.gate_proj.weight", Permute::No),
    ("ffn_up.weight", "mlp.up_proj.weight", Permute::No),
    ("ffn_down.weight", "mlp.down_proj.weight", Permute::No),
];

/// Optional per-layer tensors (attention biases of Llama variants with `attention_bias`).
const LAYER_BIASES: &[(&str, &str, Permute)] = &[
    ("attn_q.bias", "self_attn.q_proj.bias", Permute::Heads),
    ("attn_k.bias", "self_attn.k_proj.bias", Permute::KvHeads),
    ("attn_v.bias", "self_attn.v_proj.bias", Permute::No),
    ("attn_output.bias", "self_attn.o_proj.bias", Permute::No),
];

/// GGUF tensors that have no Hugging Face parameter and are skipped (llama.cpp's precomputed
/// Llama-3 rope frequency factors; the config's `rope_scaling` carries the same information).
const SKIPPED: &[&str] = &["rope_freqs.weight"];

#[derive(Debug, Clone, Copy, PartialEq)]
enum Permute {
    No,
    Heads,
    KvHeads,
}

#[derive(Debug, Clone)]
struct Entry {
    hf: String,
    gguf: String,
    /// Number of heads whose rows are interleaved (None = no permutation).
    permute_heads: Option<usize>,
}

/// The name mapping of one file.
#[derive(Debug, Clone)]
pub(super) struct LlamaMapping {
    entries: Vec<Entry>,
    by_hf: HashMap<String, usize>,
}

/// Hyper-parameters read from `llama.*` metadata.
struct Dims {
    n_layer: usize,
    n_head: usize,
    n_kv: usize,
}

fn arch(file: &GgufFile) -> Result<String, GgufError> {
    let arch = file.metadata().get_str("general.architecture")?;
    if !SUPPORTED_ARCHITECTURES.contains(&arch) {
        return Err(GgufError::UnsupportedArch {
            arch: arch.to_owned(),
            supported: SUPPORTED_ARCHITECTURES
                .iter()
                .map(|s| s.to_string())
                .collect(),
        });
    }
    Ok(arch.to_owned())
}

fn dims(file: &GgufFile, arch: &str) -> Result<Dims, GgufError> {
    let md = file.metadata();
    let n_layer = md.get_u32(&format!("{arch}.block_count"))? as usize;
    let n_head = md.get_u32(&format!("{arch}.attention.head_count"))? as usize;
    let n_kv = md
        .opt(&format!("{arch}.attention.head_count_kv"), |m, k| {
            m.get_u32(k)
        })?
        .map_or(n_head, |v| v as usize);
    if n_head == 0 || n_kv == 0 || !n_head.is_multiple_of(n_kv) {
        return Err(GgufError::invalid(
            format!("metadata '{arch}.attention.head_count(_kv)'"),
            format!("{n_head} heads and {n_kv} kv heads (need n_head > 0 divisible by n_kv > 0)"),
        ));
    }
    if n_layer > 100_000 {
        return Err(GgufError::invalid(
            format!("metadata '{arch}.block_count'"),
            format!("{n_layer} layers"),
        ));
    }
    Ok(Dims {
        n_layer,
        n_head,
        n_kv,
    })
}

impl LlamaMapping {
    /// Checks the architecture and builds the name mapping; every tensor of the file must map
    /// (or be in `SKIPPED`) and every layer must have all Llama tensors.
    pub(super) fn new(file: &GgufFile) -> Result<Self, GgufError> {
        let arch = arch(file)?;
        let d = dims(file, &arch)?;
        let mut entries = Vec::new();
        for t in file.tensors() {
            if SKIPPED.contains(&t.name.as_str()) {
                continue;
            }
            let e = map_name(&t.name, &d).ok_or_else(|| {
                GgufError::invalid(
                    format!("tensor '{}'", t.name),
                    format!(
                        "no Hugging Face Llama equivalent (architecture '{arch}', {} layers)",
                        d.n_layer
                    ),
                )
            })?;
            if let Some(heads) = e.permute_heads {
                let (rows, _) = rows_cols(&t.dims);
                if t.dims.len() > 2 || !rows.is_multiple_of(2 * heads as u64) {
                    return Err(GgufError::invalid(
                        format!("tensor '{}'", t.name),
                        format!("{rows} rows cannot be split into {heads} heads of even size"),
                    ));
                }
            }
            entries.push(e);
        }
        let by_hf: HashMap<String, usize> = entries
            .iter()
            .enumerate()
            .map(|(i, e)| (e.hf.clone(), i))
            .collect();
        let mut required = vec![
            "model.embed_tokens.weight".to_string(),
            "model.norm.weight".to_string(),
        ];
        for l in 0..d.n_layer {
            for (_, hf, _) in LAYER_TENSORS {
                required.push(format!("model.layers.{l}.{hf}"));
            }
        }
        for r in required {
            if !by_hf.contains_key(&r) {
                let gguf = hf_to_gguf_hint(&r);
                return Err(GgufError::MissingTensor {
                    name: format!("{gguf} (Hugging Face {r})"),
                });
            }
        }
        Ok(LlamaMapping { entries, by_hf })
    }

    pub(super) fn hf_names(&self) -> Vec<String> {
        self.entries.iter().map(|e| e.hf.clone()).collect()
    }

    fn entry(&self, hf_name: &str) -> Result<&Entry, GgufError> {
        self.by_hf
            .get(hf_name)
            .and_then(|&i| self.entries.get(i))
            .ok_or_else(|| GgufError::UnknownTensor {
                name: hf_name.to_owned(),
                count: self.entries.len(),
                example: self
                    .entries
                    .iter()
                    .find(|e| e.hf.contains("q_proj"))
                    .or(self.entries.first())
                    .map(|e| e.hf.clone())
                    .unwrap_or_default(),
            })
    }

    pub(super) fn gguf_name(&self, hf_name: &str) -> Option<&str> {
        self.entry(hf_name).ok().map(|e| e.gguf.as_str())
    }

    pub(super) fn hf_shape(&self, file: &GgufFile, hf_name: &str) -> Option<Vec<usize>> {
        let e = self.entry(hf_name).ok()?;
        file.tensor(&e.gguf).map(|t| t.shape_row_major())
    }

    pub(super) fn read_hf_tensor_f32(
        &self,
        file: &GgufFile,
        hf_name: &str,
    ) -> Result<Vec<f32>, GgufError> {
        let e = self.entry(hf_name)?;
        let info = file
            .tensor(&e.gguf)
            .ok_or_else(|| GgufError::MissingTensor {
                name: e.gguf.clone(),
            })?;
        let data = file.read_tensor_f32(&e.gguf)?;
        match e.permute_heads {
            None => Ok(data),
            Some(heads) => {
                let (_, cols) = rows_cols(&info.dims);
                unpermute_rows(&data, cols as usize, heads).map_err(|e| e.for_tensor(&info.name))
            }
        }
    }
}

/// (rows, cols) of a matrix or bias in row-major terms: a 1-D tensor is a column of rows.
fn rows_cols(dims: &[u64]) -> (u64, u64) {
    match dims {
        [] => (1, 1),
        [n] => (*n, 1),
        [c, rest @ ..] => (rest.iter().product(), *c),
    }
}

/// The GGUF name that would hold a Hugging Face tensor (for error messages).
fn hf_to_gguf_hint(hf: &str) -> String {
    match hf {
        "model.embed_tokens.weight" => return "token_embd.weight".into(),
        "model.norm.weight" => return "output_norm.weight".into(),
        _ => {}
    }
    if let Some(rest) = hf.strip_prefix("model.layers.") {
        if let Some((l, suffix)) = rest.split_once('.') {
            if let Some((g, _, _)) = LAYER_TENSORS.iter().find(|(_, h, _)| *h == suffix) {
                return format!("blk.{l}.{g}");
            }
        }
    }
    hf.to_owned()
}

fn map_name(gguf: &str, d: &Dims) -> Option<Entry> {
    let simple = |hf: &str| Entry {
        hf: hf.to_owned(),
        gguf: gguf.to_owned(),
        permute_heads: None,
    };
    match gguf {
        "token_embd.weight" => return Some(simple("model.embed_tokens.weight")),
        "output_norm.weight" => return Some(simple("model.norm.weight")),
        "output.weight" => return Some(simple("lm_head.weight")),
        _ => {}
    }
    let rest = gguf.strip_prefix("blk.")?;
    let (layer, suffix) = rest.split_once('.')?;
    let l: usize = layer.parse().ok()?;
    if l >= d.n_layer || layer != l.to_string() {
        return None;
    }
    let (_, hf, p) = LAYER_TENSORS
        .iter()
        .chain(LAYER_BIASES)
        .find(|(g, _, _)| *g == suffix)?;
    Some(Entry {
        hf: format!("model.layers.{l}.{hf}"),
        gguf: gguf.to_owned(),
        permute_heads: match p {
            Permute::No => None,
            Permute::Heads => Some(d.n_head),
            Permute::KvHeads => Some(d.n_kv),
        },
    })
}

/// Undoes llama.cpp's rotary row permutation of a row-major `[rows, cols]` matrix (or a bias,
/// `cols` = 1): Hugging Face row `h*hd + s*hd/2 + i` = GGUF row `h*hd + 2*i + s`.
pub fn unpermute_rows(data: &[f32], cols: usize, n_heads: usize) -> Result<Vec<f32>, GgufError> {
    let rows = data.len().checked_div(cols).unwrap_or(0);
    if cols == 0 || n_heads == 0 || rows * cols != data.len() || !rows.is_multiple_of(2 * n_heads) {
        return Err(GgufError::invalid(
            "rotary permutation",
            format!(
                "{} values as [{rows}, {cols}] cannot be split into {n_heads} heads of even size",
                data.len()
            ),
        ));
    }
    let hd = rows / n_heads;
    let half = hd / 2;
    let mut out = vec![0f32; data.len()];
    for h in 0..n_heads {
        for s in 0..2 {
            for i in 0..half {
                let dst = (h * hd + s * half + i) * cols;
                let src = (h * hd + 2 * i + s) * cols;
                out[dst..dst + cols].copy_from_slice(&data[src..src + cols]);
            }
        }
    }
    Ok(out)
}

/// A float hyperparameter (RMSNorm ε, RoPE base, scaling factor) that must be finite and > 0:
/// JSON has no NaN or ±inf, so a bad value is refused here, naming the metadata key, rather
/// than turning into `null` (or a default) in the config built from it.
fn positive_float(md: &super::Metadata, key: &str) -> Result<f64, GgufError> {
    let x = md.get_f64(key)?;
    if x.is_finite() && x > 0.0 {
        Ok(x)
    } else {
        Err(GgufError::invalid(
            format!("metadata '{key}'"),
            format!("{x} (must be a finite number > 0)"),
        ))
    }
}

/// The HF-style `config.json` of a `LlamaForCausalLM` built from the `llama.*` metadata.
pub(super) fn hf_config(
    file: &GgufFile,
    map: &LlamaMapping,
) -> Result<serde_json::Value, GgufError> {
    use serde_json::json;
    let arch = arch(file)?;
    let md = file.metadata();
    let k = |s: &str| format!("{arch}.{s}");
    let d = dims(file, &arch)?;
    let hidden = md.get_u32(&k("embedding_length"))?;
    let inter = md.get_u32(&k("feed_forward_length"))?;
    let embd = file
        .tensor("token_embd.weight")
        .ok_or_else(|| GgufError::MissingTensor {
            name: "token_embd.weight".into(),
        })?;
    let embd_rows = embd.dims.get(1).copied().unwrap_or(0);
    let vocab = match md.opt(&k("vocab_size"), |m, key| m.get_u64(key))? {
        Some(v) => v,
        None => embd_rows,
    };
    if vocab != embd_rows || embd.dims.first().copied() != Some(u64::from(hidden)) {
        return Err(GgufError::invalid(
            "tensor 'token_embd.weight'",
            format!(
                "dims {:?}, expected [{hidden}, {vocab}] from embedding_length/vocab_size",
                embd.dims
            ),
        ));
    }
    let mut c = serde_json::Map::new();
    c.insert("architectures".into(), json!(["LlamaForCausalLM"]));
    c.insert("model_type".into(), json!("llama"));
    c.insert("hidden_size".into(), json!(hidden));
    c.insert("intermediate_size".into(), json!(inter));
    c.insert("num_hidden_layers".into(), json!(d.n_layer));
    c.insert("num_attention_heads".into(), json!(d.n_head));
    c.insert("num_key_value_heads".into(), json!(d.n_kv));
    let head_dim = match md.opt(&k("attention.key_length"), |m, key| m.get_u32(key))? {
        Some(hd) => hd as usize,
        None => hidden as usize / d.n_head,
    };
    if md.contains(&k("attention.key_length")) {
        c.insert("head_dim".into(), json!(head_dim));
    }
    if let Some(rot) = md.opt(&k("rope.dimension_count"), |m, key| m.get_u32(key))? {
        if rot as usize != head_dim {
            return Err(GgufError::invalid(
                format!("metadata '{}'", k("rope.dimension_count")),
                format!("{rot} rotary dimensions with head_dim {head_dim} (partial rotary is not Llama)"),
            ));
        }
    }
    let eps = positive_float(md, &k("attention.layer_norm_rms_epsilon"))?;
    c.insert("rms_norm_eps".into(), json!(eps));
    let theta = md.opt(&k("rope.freq_base"), positive_float)?;
    c.insert("rope_theta".into(), json!(theta.unwrap_or(10000.0)));
    if let Some(ty) = md.opt(&k("rope.scaling.type"), |m, key| {
        m.get_str(key).map(str::to_owned)
    })? {
        if ty != "none" {
            let factor = md.opt(&k("rope.scaling.factor"), positive_float)?;
            let mut rs = serde_json::Map::new();
            rs.insert("rope_type".into(), json!(ty));
            rs.insert("factor".into(), json!(factor.unwrap_or(1.0)));
            if let Some(orig) = md.opt(&k("rope.scaling.original_context_length"), |m, key| {
                m.get_u64(key)
            })? {
                rs.insert("original_max_position_embeddings".into(), json!(orig));
            }
            c.insert("rope_scaling".into(), serde_json::Value::Object(rs));
        }
    }
    c.insert("vocab_size".into(), json!(vocab));
    let ctx = md.opt(&k("context_length"), |m, key| m.get_u64(key))?;
    c.insert("max_position_embeddings".into(), json!(ctx.unwrap_or(2048)));
    let tied = !map.by_hf.contains_key("lm_head.weight");
    c.insert("tie_word_embeddings".into(), json!(tied));
    c.insert("hidden_act".into(), json!("silu"));
    let bias = map
        .by_hf
        .contains_key("model.layers.0.self_attn.q_proj.bias");
    c.insert("attention_bias".into(), json!(bias));
    c.insert("mlp_bias".into(), json!(false));
    for (gguf, hf) in [
        ("tokenizer.ggml.bos_token_id", "bos_token_id"),
        ("tokenizer.ggml.eos_token_id", "eos_token_id"),
        ("tokenizer.ggml.padding_token_id", "pad_token_id"),
    ] {
        if let Some(id) = md.opt(gguf, |m, key| m.get_u32(key))? {
            c.insert(hf.into(), json!(id));
        }
    }
    c.insert("torch_dtype".into(), json!("float32"));
    Ok(serde_json::Value::Object(c))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// llama.cpp's forward permutation, written from `LlamaModel.permute` in
    /// convert_hf_to_gguf.py: reshape (n_head, 2, hd/2, cols), swap axes 1 and 2.
    fn permute(w: &[f32], rows: usize, cols: usize, n_head: usize) -> Vec<f32> {
        let hd = rows / n_head;
        let half = hd / 2;
        let mut out = vec![0f32; w.len()];
        for h in 0..n_head {
            for s in 0..2 {
                for i in 0..half {
                    // source index (h, s, i) in the HF layout goes to (h, i, s)
                    let src = (h * hd + s * half + i) * cols;
                    let dst = (h * hd + i * 2 + s) * cols;
                    out[dst..dst + cols].copy_from_slice(&w[src..src + cols]);
                }
            }
        }
        out
    }

    #[test]
    fn unpermute_inverts_llama_cpp_permute() {
        let (rows, cols, heads) = (24, 3, 3);
        let w: Vec<f32> = (0..rows * cols).map(|x| x as f32).collect();
        let p = permute(&w, rows, cols, heads);
        assert_ne!(p, w);
        assert_eq!(unpermute_rows(&p, cols, heads).unwrap(), w);
        // Hand-checked: head_dim 8, GGUF row 1 (i=0, s=1) is HF row 4 (s*4 + i).
        assert_eq!(p[cols..2 * cols], w[4 * cols..5 * cols]);
    }

    #[test]
    fn unpermute_rejects_odd_heads() {
        let e = unpermute_rows(&[0.0; 6], 1, 2).unwrap_err().to_string();
        assert!(e.contains("2 heads"), "{e}");
    }
}
