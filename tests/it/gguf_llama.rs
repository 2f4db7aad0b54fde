//! Llama mapping and tokenizer on small synthetic GGUF files (no model download needed).
//!
//! The files are written with `peftlab::gguf::writer::GgufWriter` the way llama.cpp's
//! `convert_hf_to_gguf.py` writes a Llama: GGUF dims reversed from the Hugging Face shape and
//! the rows of q/k permuted by `LlamaModel.permute` (re-implemented below from its definition:
//! `w.reshape(n_head, 2, rows/n_head/2, cols).swapaxes(1, 2)`), so reading them back must give
//! the original Hugging Face matrices.

use peftlab::gguf::writer::GgufWriter;
use peftlab::gguf::{GgufError, GgufFile, GgufModel, MetaArray, MetaValue};

/// llama.cpp's `LlamaModel.permute` on a row-major `[rows, cols]` matrix.
fn llama_cpp_permute(w: &[f32], cols: usize, n_head: usize) -> Vec<f32> {
    let rows = w.len() / cols;
    let half = rows / n_head / 2;
    let mut out = Vec::with_capacity(w.len());
    // output index order (h, i, s) reads input (h, s, i)
    for h in 0..n_head {
        for i in 0..half {
            for s in 0..2 {
                let src = h * 2 * half + s * half + i;
                out.extend_from_slice(&w[src * cols..(src + 1) * cols]);
            }
        }
    }
    out
}

fn ramp(n: usize, scale: f32) -> Vec<f32> {
    (0..n).map(|i| i as f32 * scale).collect()
}

const H: usize = 8; // hidden
const NH: usize = 2; // heads (head_dim 4)
const NKV: usize = 1;
const FF: usize = 12;
const V: usize = 5;

/// A 2-layer Llama with hidden 8, 2 heads, 1 kv head, ffn 12, vocab 5, no output.weight.
fn tiny_llama(extra: impl FnOnce(GgufWriter) -> GgufWriter) -> GgufWriter {
    tiny_llama_with_heads(NH as u32, extra)
}

fn tiny_llama_with_heads(heads: u32, extra: impl FnOnce(GgufWriter) -> GgufWriter) -> GgufWriter {
    tiny_llama_with(heads, MetaValue::F32(500000.0), MetaValue::F32(1e-6), extra)
}

/// The tiny Llama with the given head count, `rope.freq_base` and RMSNorm epsilon.
fn tiny_llama_with(
    heads: u32,
    freq_base: MetaValue,
    rms_eps: MetaValue,
    extra: impl FnOnce(GgufWriter) -> GgufWriter,
) -> GgufWriter {
    let mut w = GgufWriter::new()
        .kv("general.architecture", MetaValue::Str("llama".into()))
        .kv("llama.block_count", MetaValue::U32(2))
        .kv("llama.context_length", MetaValue::U32(64))
        .kv("llama.embedding_length", MetaValue::U32(H as u32))
        .kv("llama.feed_forward_length", MetaValue::U32(FF as u32))
        .kv("llama.attention.head_count", MetaValue::U32(heads))
        .kv("llama.attention.head_count_kv", MetaValue::U32(NKV as u32))
        .kv("llama.rope.freq_base", freq_base)
        .kv("llama.attention.layer_norm_rms_epsilon", rms_eps)
        .kv("llama.rope.dimension_count", MetaValue::U32(4))
        .kv("tokenizer.ggml.bos_token_id", MetaValue::U32(3))
        .kv("tokenizer.ggml.eos_token_id", MetaValue::U32(4))
        .tensor_f32(
            "token_embd.weight",
            &[H as u64, V as u64],
            &ramp(H * V, 0.01),
        )
        .tensor_f32("output_norm.weight", &[H as u64], &ramp(H, 1.0));
    for l in 0..2u64 {
        let n = |s: &str| format!("blk.{l}.{s}.weight");
        let q_hf = ramp(H * H, 1.0);
        let k_hf = ramp(NKV * 4 * H, -1.0);
        w = w
            .tensor_f32(&n("attn_norm"), &[H as u64], &ramp(H, 2.0))
            .tensor_f32(
                &n("attn_q"),
                &[H as u64, H as u64],
                &llama_cpp_permute(&q_hf, H, NH),
            )
            .tensor_f32(
                &n("attn_k"),
                &[H as u64, 4],
                &llama_cpp_permute(&k_hf, H, NKV),
            )
            .tensor_f32(&n("attn_v"), &[H as u64, 4], &ramp(4 * H, 3.0))
            .tensor_f32(&n("attn_output"), &[H as u64, H as u64], &ramp(H * H, 4.0))
            .tensor_f32(&n("ffn_norm"), &[H as u64], &ramp(H, 5.0))
            .tensor_f32(&n("ffn_gate"), &[H as u64, FF as u64], &ramp(H * FF, 6.0))
            .tensor_f32(&n("ffn_up"), &[H as u64, FF as u64], &ramp(H * FF, 7.0))
            .tensor_f32(&n("ffn_down"), &[FF as u64, H as u64], &ramp(H * FF, 8.0));
    }
    extra(w)
}

fn open(w: GgufWriter) -> Result<GgufModel, GgufError> {
    GgufModel::from_file(GgufFile::from_bytes(w.to_bytes())?)
}

#[test]
fn config_from_llama_metadata() {
    let m = open(tiny_llama(|w| w)).unwrap();
    let c = m.hf_config().unwrap();
    let want = serde_json::json!({
        "architectures": ["LlamaForCausalLM"], "model_type": "llama",
        "hidden_size": 8, "intermediate_size": 12, "num_hidden_layers": 2,
        "num_attention_heads": 2, "num_key_value_heads": 1, "rms_norm_eps": 1e-6,
        "rope_theta": 500000.0, "vocab_size": 5, "max_position_embeddings": 64,
        "tie_word_embeddings": true, "hidden_act": "silu", "attention_bias": false,
        "mlp_bias": false, "bos_token_id": 3, "eos_token_id": 4, "torch_dtype": "float32",
    });
    assert_eq!(c, want);
}

#[test]
fn names_and_shapes_follow_hugging_face() {
    let m = open(tiny_llama(|w| w)).unwrap();
    let names = m.hf_tensor_names();
    assert_eq!(names.len(), 2 + 2 * 9);
    assert_eq!(names[0], "model.embed_tokens.weight");
    assert!(names.contains(&"model.layers.1.post_attention_layernorm.weight".to_string()));
    assert_eq!(m.hf_shape("model.embed_tokens.weight"), Some(vec![V, H]));
    assert_eq!(
        m.hf_shape("model.layers.0.self_attn.k_proj.weight"),
        Some(vec![4, H])
    );
    assert_eq!(
        m.hf_shape("model.layers.0.mlp.down_proj.weight"),
        Some(vec![H, FF])
    );
    assert_eq!(
        m.hf_shape("model.layers.0.mlp.up_proj.weight"),
        Some(vec![FF, H])
    );
    assert_eq!(m.hf_shape("lm_head.weight"), None);
    assert_eq!(
        m.gguf_name("model.layers.1.self_attn.o_proj.weight"),
        Some("blk.1.attn_output.weight")
    );
    let e = m
        .read_hf_tensor_f32("model.layers.9.mlp.up_proj.weight")
        .unwrap_err();
    assert!(
        e.to_string()
            .contains("unknown tensor 'model.layers.9.mlp.up_proj.weight'"),
        "{e}"
    );
}

#[test]
fn q_and_k_rows_are_unpermuted() {
    let m = open(tiny_llama(|w| w)).unwrap();
    assert_eq!(
        m.read_hf_tensor_f32("model.layers.0.self_attn.q_proj.weight")
            .unwrap(),
        ramp(H * H, 1.0)
    );
    assert_eq!(
        m.read_hf_tensor_f32("model.layers.1.self_attn.k_proj.weight")
            .unwrap(),
        ramp(4 * H, -1.0)
    );
    // v is not permuted
    assert_eq!(
        m.read_hf_tensor_f32("model.layers.0.self_attn.v_proj.weight")
            .unwrap(),
        ramp(4 * H, 3.0)
    );
    // and the raw GGUF q really is permuted: GGUF row 1 is HF row 2 (head_dim 4: i=0, s=1)
    let raw = m.file().read_tensor_f32("blk.0.attn_q.weight").unwrap();
    assert_eq!(raw[H..2 * H], ramp(H * H, 1.0)[2 * H..3 * H]);
}

#[test]
fn untied_output_and_biases() {
    let m = open(tiny_llama(|w| {
        w.tensor_f32("output.weight", &[H as u64, V as u64], &ramp(H * V, 9.0))
            .tensor_f32(
                "blk.0.attn_q.bias",
                &[H as u64],
                &llama_cpp_permute(&ramp(H, 1.0), 1, NH),
            )
            .tensor_f32("rope_freqs.weight", &[2], &[1.0, 1.0])
    }))
    .unwrap();
    let c = m.hf_config().unwrap();
    assert_eq!(c["tie_word_embeddings"], false);
    assert_eq!(c["attention_bias"], true);
    assert_eq!(
        m.read_hf_tensor_f32("lm_head.weight").unwrap(),
        ramp(H * V, 9.0)
    );
    assert_eq!(
        m.read_hf_tensor_f32("model.layers.0.self_attn.q_proj.bias")
            .unwrap(),
        ramp(H, 1.0)
    );
    assert!(!m.hf_tensor_names().iter().any(|n| n.contains("rope_freqs")));
}

#[test]
fn mapping_errors_name_the_problem() {
    // a tensor with no Llama equivalent
    let e = open(tiny_llama(|w| {
        w.tensor_f32("blk.0.ffn_gate_exps.weight", &[1], &[0.0])
    }))
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("'blk.0.ffn_gate_exps.weight'") && e.contains("no Hugging Face Llama"),
        "{e}"
    );
    // a layer beyond block_count
    let e = open(tiny_llama(|w| {
        w.tensor_f32("blk.2.attn_norm.weight", &[1], &[0.0])
    }))
    .unwrap_err()
    .to_string();
    assert!(e.contains("'blk.2.attn_norm.weight'"), "{e}");
    // a missing tensor
    let mut w = GgufWriter::new()
        .kv("general.architecture", MetaValue::Str("llama".into()))
        .kv("llama.block_count", MetaValue::U32(1))
        .kv("llama.attention.head_count", MetaValue::U32(2));
    w = w.tensor_f32("token_embd.weight", &[2, 2], &[0.0; 4]);
    let e = open(w).unwrap_err().to_string();
    assert_eq!(
        e,
        "gguf: missing tensor 'output_norm.weight (Hugging Face model.norm.weight)'"
    );
    // missing metadata
    let w = GgufWriter::new().kv("general.architecture", MetaValue::Str("llama".into()));
    let e = open(w).unwrap_err().to_string();
    assert_eq!(
        e,
        "gguf: missing metadata key 'llama.block_count' (expected unsigned integer)"
    );
    // q rows (8) cannot be split into 3 heads of even size
    let e = open(tiny_llama_with_heads(3, |w| w))
        .unwrap_err()
        .to_string();
    assert_eq!(
        e,
        "gguf: invalid tensor 'blk.0.attn_q.weight': 8 rows cannot be split into 3 heads of even size"
    );
}

#[test]
fn non_finite_or_negative_hyperparameters_are_refused_with_their_key() {
    let cases = [
        (
            MetaValue::F32(f32::NAN),
            MetaValue::F32(1e-6),
            "llama.rope.freq_base",
            "NaN",
        ),
        (
            MetaValue::F32(f32::INFINITY),
            MetaValue::F32(1e-6),
            "llama.rope.freq_base",
            "inf",
        ),
        (
            MetaValue::F64(-5.0),
            MetaValue::F32(1e-6),
            "llama.rope.freq_base",
            "-5",
        ),
        (
            MetaValue::F32(1e4),
            MetaValue::F32(f32::NEG_INFINITY),
            "llama.attention.layer_norm_rms_epsilon",
            "-inf",
        ),
        (
            MetaValue::F32(1e4),
            MetaValue::F64(0.0),
            "llama.attention.layer_norm_rms_epsilon",
            "0",
        ),
    ];
    for (theta, eps, key, shown) in cases {
        let m = open(tiny_llama_with(NH as u32, theta, eps, |w| w)).unwrap();
        let e = m.hf_config().unwrap_err().to_string();
        assert_eq!(
            e,
            format!("gguf: invalid metadata '{key}': {shown} (must be a finite number > 0)")
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Tokenizer

/// GPT-2's byte alphabet, written out from its definition (printable Latin-1 bytes keep their
/// code point; the others take U+0100.. in byte order).
fn byte_char(b: u8) -> char {
    let printable = |x: u8| matches!(x, b'!'..=b'~' | 0xA1..=0xAC | 0xAE..=0xFF);
    if printable(b) {
        char::from(b)
    } else {
        let n = (0..b).filter(|&x| !printable(x)).count() as u32;
        char::from_u32(256 + n).unwrap()
    }
}

/// Vocabulary: ids 0..=255 are the 256 byte characters (id = byte), then the merged tokens
/// 256 "he", 257 "ll", 258 "hell", 259 "hello", 260 "Ġw", 261 "12", and the added tokens
/// 262 "<|im_start|>" (control), 263 "<|im_end|>" (control), 264 "<think>" (user-defined).
fn tokenizer_file(pre: &str, add_bos: bool) -> GgufWriter {
    let mut tokens: Vec<String> = (0..=255u8).map(|b| byte_char(b).to_string()).collect();
    for t in [
        "he",
        "ll",
        "hell",
        "hello",
        "Ġw",
        "12",
        "<|im_start|>",
        "<|im_end|>",
        "<think>",
    ] {
        tokens.push(t.into());
    }
    let mut types = vec![1i32; 262];
    types.extend([3, 3, 4]);
    let merges = ["h e", "l l", "he ll", "hell o", "Ġ w", "1 2"];
    tiny_llama(|w| w)
        .kv("tokenizer.ggml.model", MetaValue::Str("gpt2".into()))
        .kv("tokenizer.ggml.pre", MetaValue::Str(pre.into()))
        .kv(
            "tokenizer.ggml.tokens",
            MetaValue::Array(MetaArray::Str(tokens)),
        )
        .kv(
            "tokenizer.ggml.token_type",
            MetaValue::Array(MetaArray::I32(types)),
        )
        .kv(
            "tokenizer.ggml.merges",
            MetaValue::Array(MetaArray::Str(
                merges.iter().map(|s| s.to_string()).collect(),
            )),
        )
        .kv("tokenizer.ggml.add_bos_token", MetaValue::Bool(add_bos))
        .kv(
            "tokenizer.chat_template",
            MetaValue::Str("{{ messages }}".into()),
        )
}

fn tok(pre: &str, add_bos: bool) -> peftlab::gguf::GgufTokenizer {
    // BOS/EOS are the tiny model's ids 3 and 4 (byte tokens; any id works for these tests)
    let w = tokenizer_file(pre, add_bos);
    let bytes = w.to_bytes();
    let f = GgufFile::from_bytes(bytes).unwrap();
    peftlab::gguf::GgufTokenizer::from_metadata(f.metadata()).unwrap()
}

#[test]
fn byte_level_bpe_with_smollm_digit_splitting() {
    let t = tok("smollm", false);
    // "hello" merges fully; " world" -> "Ġw" + o r l d; the trailing space before the digits
    // stays alone because Digits splits "1" and "2" off first, so "12" never forms.
    let ids = t.encode("hello world 12", true).unwrap();
    assert_eq!(ids, vec![259, 260, 111, 114, 108, 100, 32, 49, 50]);
    assert_eq!(t.decode(&ids, false).unwrap(), "hello world 12");
    // gpt2 pre-tokenization keeps " 12" together: "Ġ" + "12"
    let g = tok("gpt2", false);
    assert_eq!(
        g.encode("hello world 12", true).unwrap(),
        vec![259, 260, 111, 114, 108, 100, 32, 261]
    );
}

#[test]
fn control_and_user_defined_tokens_stay_whole() {
    let t = tok("smollm", false);
    let ids = t
        .encode("<|im_start|>user\nhi<|im_end|><think>", true)
        .unwrap();
    // 'u'=117 's'=115 'e'=101 'r'=114, "\n" is byte 10 ('Ċ'), 'h'=104 'i'=105
    assert_eq!(ids, vec![262, 117, 115, 101, 114, 10, 104, 105, 263, 264]);
    assert_eq!(t.decode(&ids, true).unwrap(), "user\nhi<think>");
    assert_eq!(
        t.decode(&ids, false).unwrap(),
        "<|im_start|>user\nhi<|im_end|><think>"
    );
    // non-ASCII text goes through the byte alphabet: "é" = C3 A9
    assert_eq!(t.encode("é", false).unwrap(), vec![0xC3, 0xA9]);
    assert_eq!(t.chat_template(), Some("{{ messages }}"));
}

#[test]
fn bos_is_added_when_the_file_says_so() {
    let t = tok("llama-bpe", true);
    assert!(t.add_bos());
    assert_eq!(t.bos_id(), Some(3));
    assert_eq!(t.encode("hello", true).unwrap(), vec![3, 259]);
    assert_eq!(t.encode("hello", false).unwrap(), vec![259]);
    let cfg = t.tokenizer_config();
    assert_eq!(cfg["add_bos_token"], true);
    assert_eq!(cfg["eos_token"], byte_char(4).to_string());
    // the tokenizer serialises to a tokenizer.json that loads again
    let json = t.to_json_string(false).unwrap();
    let again: tokenizers::Tokenizer = json.parse().unwrap();
    assert_eq!(again.encode("hello", true).unwrap().get_ids(), &[3, 259]);
}

#[test]
fn tokenizer_errors() {
    let md = |w: GgufWriter| GgufFile::from_bytes(w.to_bytes()).unwrap();
    let f = md(tokenizer_file("mystery", false));
    let e = peftlab::gguf::GgufTokenizer::from_metadata(f.metadata())
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("tokenizer.ggml.pre 'mystery' is not supported") && e.contains("smollm"),
        "{e}"
    );
    let f = md(tiny_llama(|w| w).kv("tokenizer.ggml.model", MetaValue::Str("llama".into())));
    let e = peftlab::gguf::GgufTokenizer::from_metadata(f.metadata())
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("tokenizer.ggml.model 'llama' is not supported"),
        "{e}"
    );
    // an empty vocabulary would encode every text to BOS alone
    let f = md(tiny_llama(|w| w)
        .kv("tokenizer.ggml.model", MetaValue::Str("gpt2".into()))
        .kv(
            "tokenizer.ggml.tokens",
            MetaValue::Array(MetaArray::Str(vec![])),
        )
        .kv(
            "tokenizer.ggml.merges",
            MetaValue::Array(MetaArray::Str(vec![])),
        ));
    let e = peftlab::gguf::GgufTokenizer::from_metadata(f.metadata())
        .unwrap_err()
        .to_string();
    assert_eq!(
        e,
        "gguf: tokenizer: tokenizer.ggml.tokens is empty: a tokenizer needs a vocabulary"
    );
}

#[test]
fn loading_a_gguf_with_a_bad_epsilon_names_the_file_and_key() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("bad-eps.gguf");
    let w = tiny_llama_with(
        NH as u32,
        MetaValue::F32(1e4),
        MetaValue::F32(f32::NEG_INFINITY),
        |w| w,
    );
    std::fs::write(&p, w.to_bytes()).unwrap();
    let e = peftlab::lab::Model::load(&p, peftlab::model::LoadOptions::default())
        .err()
        .unwrap()
        .to_string();
    assert_eq!(
        e,
        format!(
            "{}: gguf: invalid metadata 'llama.attention.layer_norm_rms_epsilon': -inf (must be \
             a finite number > 0)",
            p.display()
        )
    );
}
