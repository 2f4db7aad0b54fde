//! A Hugging Face `tokenizers` tokenizer built from GGUF `tokenizer.ggml.*` metadata.
//!
//! Supports `tokenizer.ggml.model = "gpt2"` (byte-level BPE). The construction follows
//! transformers' GGUF tokenizer conversion (`integrations/gguf/gguf_tokenizer_mapping.py`:
//! `byte_level_tokenizer`, `add_gguf_special_tokens`, `set_split_regex`): vocabulary from
//! `tokens` (re-spelt in the GPT-2 byte alphabet where a token is not), merges from `merges`,
//! CONTROL tokens (token type 3) that are spelt in the byte alphabet become special added tokens,
//! USER_DEFINED tokens (type 4) plain added tokens, a ByteLevel decoder, and BOS/EOS added by a
//! template post-processor when `add_bos_token` / `add_eos_token` say so.
//!
//! The pre-tokenizer is chosen from `tokenizer.ggml.pre` as llama.cpp does
//! (`src/llama-vocab.cpp`, `llama_vocab::impl::load` and the regex lists of
//! `llm_tokenizer_bpe`). For the StarCoder family (`smollm`, `starcoder`, ...) llama.cpp splits
//! every digit before the GPT-2 regex, which is exactly the pre-tokenizer of SmolLM2's own
//! `tokenizer.json` (`Sequence[Digits(individual_digits), ByteLevel(use_regex)]`);
//! transformers 5.23 has no entry for `smollm` and falls back to plain ByteLevel, which gives
//! the same ids whenever the merges never join a digit to something else (checked on
//! SmolLM2, see `tests/it/gguf_smollm2.rs`).

use serde_json::{json, Value};

use super::metadata::Metadata;
use super::GgufError;

/// Llama-3's regex (llama.cpp `LLAMA_VOCAB_PRE_TYPE_LLAMA3`, transformers `_LLAMA3_SPLIT`).
const LLAMA3_SPLIT: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

/// Qwen2's regex (llama.cpp `LLAMA_VOCAB_PRE_TYPE_QWEN2`, transformers' qwen2 `PRETOKENIZE_REGEX`).
const QWEN2_SPLIT: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

/// `tokenizer.ggml.pre` values and the pre-tokenizer family they select.
const PRE_TYPES: &[(&str, PreFamily)] = &[
    ("default", PreFamily::Gpt2),
    ("gpt-2", PreFamily::Gpt2),
    ("gpt2", PreFamily::Gpt2),
    ("smollm", PreFamily::DigitsGpt2),
    ("starcoder", PreFamily::DigitsGpt2),
    ("refact", PreFamily::DigitsGpt2),
    ("command-r", PreFamily::DigitsGpt2),
    ("codeshell", PreFamily::DigitsGpt2),
    ("exaone", PreFamily::DigitsGpt2),
    ("minerva-7b", PreFamily::DigitsGpt2),
    ("llama3", PreFamily::Llama3),
    ("llama-v3", PreFamily::Llama3),
    ("llama-bpe", PreFamily::Llama3),
    ("falcon3", PreFamily::Llama3),
    ("smaug-bpe", PreFamily::Llama3),
    ("dbrx", PreFamily::Llama3),
    ("pixtral", PreFamily::Llama3),
    ("qwen2", PreFamily::Qwen2),
    ("deepseek-r1-qwen", PreFamily::Qwen2),
];

#[derive(Debug, Clone, Copy, PartialEq)]
enum PreFamily {
    /// ByteLevel with GPT-2's regex (built into tokenizers' `ByteLevel` with `use_regex`:
    /// `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`).
    Gpt2,
    /// Every digit split off first, then GPT-2's regex (StarCoder, SmolLM).
    DigitsGpt2,
    /// Llama-3 regex; whole words found in the vocabulary skip the merges (`ignore_merges`).
    Llama3,
    /// Qwen2 regex.
    Qwen2,
}

/// GGUF token types (llama.cpp `llama_token_type`).
const TOKEN_TYPE_CONTROL: i64 = 3;
const TOKEN_TYPE_USER_DEFINED: i64 = 4;

/// A tokenizer built from GGUF metadata, with the special-token settings of the file.
#[derive(Debug, Clone)]
pub struct GgufTokenizer {
    tokenizer: tokenizers::Tokenizer,
    bos: Option<(u32, String)>,
    eos: Option<(u32, String)>,
    pad: Option<(u32, String)>,
    unk: Option<(u32, String)>,
    add_bos: bool,
    add_eos: bool,
    chat_template: Option<String>,
}

/// GPT-2's byte-to-character table (`bytes_to_unicode` in GPT-2's `encoder.py`): printable
/// Latin-1 bytes map to themselves, the other 68 to U+0100 onwards in byte order.
fn bytes_to_unicode() -> [char; 256] {
    let mut table = ['\0'; 256];
    let mut n = 0u32;
    for b in 0..=255u8 {
        let printable = matches!(b, b'!'..=b'~' | 0xA1..=0xAC | 0xAE..=0xFF);
        let c = if printable {
            u32::from(b)
        } else {
            n += 1;
            255 + n
        };
        table[b as usize] = char::from_u32(c).unwrap_or('\0');
    }
    table
}

impl GgufTokenizer {
    /// Builds the tokenizer from the `tokenizer.ggml.*` (and `tokenizer.chat_template`) keys.
    pub fn from_metadata(md: &Metadata) -> Result<Self, GgufError> {
        let model = md.get_str("tokenizer.ggml.model")?;
        if model != "gpt2" {
            return Err(GgufError::Tokenizer(format!(
                "tokenizer.ggml.model '{model}' is not supported (supported: gpt2, i.e. byte-level BPE)"
            )));
        }
        let pre = md
            .opt("tokenizer.ggml.pre", |m, k| m.get_str(k).map(str::to_owned))?
            .unwrap_or_else(|| "default".to_owned());
        let family = PRE_TYPES
            .iter()
            .find(|(name, _)| *name == pre)
            .map(|e| e.1)
            .ok_or_else(|| {
                GgufError::Tokenizer(format!(
                    "tokenizer.ggml.pre '{pre}' is not supported (supported: {})",
                    PRE_TYPES.iter().map(|e| e.0).collect::<Vec<_>>().join(", ")
                ))
            })?;
        let tokens = md.get_str_array("tokenizer.ggml.tokens")?;
        if tokens.is_empty() {
            return Err(GgufError::Tokenizer(
                "tokenizer.ggml.tokens is empty: a tokenizer needs a vocabulary".into(),
            ));
        }
        let merges = md.get_str_array("tokenizer.ggml.merges")?;
        let types: Vec<i64> = match md.get("tokenizer.ggml.token_type") {
            None => Vec::new(),
            Some(_) => md
                .get_array("tokenizer.ggml.token_type")?
                .as_i64_vec()
                .ok_or_else(|| GgufError::WrongType {
                    key: "tokenizer.ggml.token_type".into(),
                    expected: "array of integers",
                    found: "array of non-integers".into(),
                })?,
        };
        if !types.is_empty() && types.len() != tokens.len() {
            return Err(GgufError::Tokenizer(format!(
                "tokenizer.ggml.token_type has {} entries but tokenizer.ggml.tokens has {}",
                types.len(),
                tokens.len()
            )));
        }
        let special = |key: &str| -> Result<Option<(u32, String)>, GgufError> {
            match md.opt(key, Metadata::get_u32)? {
                None => Ok(None),
                Some(id) => match tokens.get(id as usize) {
                    Some(t) => Ok(Some((id, t.clone()))),
                    None => Err(GgufError::Tokenizer(format!(
                        "{key} = {id} is outside the vocabulary of {} tokens",
                        tokens.len()
                    ))),
                },
            }
        };
        let bos = special("tokenizer.ggml.bos_token_id")?;
        let eos = special("tokenizer.ggml.eos_token_id")?;
        let pad = special("tokenizer.ggml.padding_token_id")?;
        let unk = special("tokenizer.ggml.unknown_token_id")?;
        let add_bos = md
            .opt("tokenizer.ggml.add_bos_token", Metadata::get_bool)?
            .unwrap_or(false);
        let add_eos = md
            .opt("tokenizer.ggml.add_eos_token", Metadata::get_bool)?
            .unwrap_or(false);
        if add_bos && bos.is_none() {
            return Err(GgufError::Tokenizer(
                "tokenizer.ggml.add_bos_token is true but tokenizer.ggml.bos_token_id is missing"
                    .into(),
            ));
        }
        if add_eos && eos.is_none() {
            return Err(GgufError::Tokenizer(
                "tokenizer.ggml.add_eos_token is true but tokenizer.ggml.eos_token_id is missing"
                    .into(),
            ));
        }
        let json = tokenizer_json(
            tokens,
            merges,
            &types,
            family,
            add_bos.then_some(&bos),
            add_eos.then_some(&eos),
        )?;
        let tokenizer: tokenizers::Tokenizer =
            serde_json::from_value(json).map_err(|source| GgufError::TokenizerLib {
                context: "building the BPE tokenizer failed",
                source: Box::new(source),
            })?;
        let chat_template = md.opt("tokenizer.chat_template", |m, k| {
            m.get_str(k).map(str::to_owned)
        })?;
        Ok(GgufTokenizer {
            tokenizer,
            bos,
            eos,
            pad,
            unk,
            add_bos,
            add_eos,
            chat_template,
        })
    }

    /// The underlying `tokenizers` tokenizer (its post-processor adds BOS/EOS as the file says).
    pub fn tokenizer(&self) -> &tokenizers::Tokenizer {
        &self.tokenizer
    }

    /// Consumes `self`, returning the `tokenizers` tokenizer.
    pub fn into_tokenizer(self) -> tokenizers::Tokenizer {
        self.tokenizer
    }

    /// Encodes `text`; with `add_special_tokens` BOS/EOS are added as the file says.
    pub fn encode(&self, text: &str, add_special_tokens: bool) -> Result<Vec<u32>, GgufError> {
        self.tokenizer
            .encode(text, add_special_tokens)
            .map(|e| e.get_ids().to_vec())
            .map_err(|source| GgufError::TokenizerLib {
                context: "encode failed",
                source,
            })
    }

    /// Decodes ids to text (special tokens dropped with `skip_special_tokens`).
    pub fn decode(&self, ids: &[u32], skip_special_tokens: bool) -> Result<String, GgufError> {
        self.tokenizer
            .decode(ids, skip_special_tokens)
            .map_err(|source| GgufError::TokenizerLib {
                context: "decode failed",
                source,
            })
    }

    /// BOS id (`tokenizer.ggml.bos_token_id`).
    pub fn bos_id(&self) -> Option<u32> {
        self.bos.as_ref().map(|b| b.0)
    }

    /// BOS token string.
    pub fn bos_token(&self) -> Option<&str> {
        self.bos.as_ref().map(|b| b.1.as_str())
    }

    /// EOS id (`tokenizer.ggml.eos_token_id`).
    pub fn eos_id(&self) -> Option<u32> {
        self.eos.as_ref().map(|b| b.0)
    }

    /// EOS token string.
    pub fn eos_token(&self) -> Option<&str> {
        self.eos.as_ref().map(|b| b.1.as_str())
    }

    /// Padding id (`tokenizer.ggml.padding_token_id`).
    pub fn pad_id(&self) -> Option<u32> {
        self.pad.as_ref().map(|b| b.0)
    }

    /// Unknown-token id (`tokenizer.ggml.unknown_token_id`).
    pub fn unk_id(&self) -> Option<u32> {
        self.unk.as_ref().map(|b| b.0)
    }

    /// Whether encoding with special tokens prepends BOS (`tokenizer.ggml.add_bos_token`).
    pub fn add_bos(&self) -> bool {
        self.add_bos
    }

    /// Whether encoding with special tokens appends EOS (`tokenizer.ggml.add_eos_token`).
    pub fn add_eos(&self) -> bool {
        self.add_eos
    }

    /// The Jinja chat template (`tokenizer.chat_template`).
    pub fn chat_template(&self) -> Option<&str> {
        self.chat_template.as_deref()
    }

    /// The tokenizer as a `tokenizer.json` string (to save beside an exported model).
    pub fn to_json_string(&self, pretty: bool) -> Result<String, GgufError> {
        self.tokenizer
            .to_string(pretty)
            .map_err(|source| GgufError::TokenizerLib {
                context: "serialising failed",
                source,
            })
    }

    /// An HF-style `tokenizer_config.json` (special tokens, add_bos/eos, chat template).
    pub fn tokenizer_config(&self) -> Value {
        let tok = |t: &Option<(u32, String)>| t.as_ref().map_or(Value::Null, |t| json!(t.1));
        json!({
            "bos_token": tok(&self.bos),
            "eos_token": tok(&self.eos),
            "pad_token": tok(&self.pad),
            "unk_token": tok(&self.unk),
            "add_bos_token": self.add_bos,
            "add_eos_token": self.add_eos,
            "chat_template": self.chat_template,
        })
    }
}

fn byte_level(use_regex: bool) -> Value {
    json!({"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": use_regex})
}

fn split(pattern: &str) -> Value {
    json!({"type": "Split", "pattern": {"Regex": pattern}, "behavior": "Isolated", "invert": false})
}

fn special_template(bos: Option<&(u32, String)>, eos: Option<&(u32, String)>) -> Value {
    let piece = |t: &(u32, String)| json!({"SpecialToken": {"id": t.1, "type_id": 0}});
    let mut single = Vec::new();
    let mut pair = Vec::new();
    let mut specials = serde_json::Map::new();
    for t in [bos, eos].into_iter().flatten() {
        specials.insert(
            t.1.clone(),
            json!({"id": t.1, "ids": [t.0], "tokens": [t.1]}),
        );
    }
    if let Some(b) = bos {
        single.push(piece(b));
        pair.push(piece(b));
    }
    single.push(json!({"Sequence": {"id": "A", "type_id": 0}}));
    pair.push(json!({"Sequence": {"id": "A", "type_id": 0}}));
    if let Some(e) = eos {
        single.push(piece(e));
        pair.push(piece(e));
    }
    if let Some(b) = bos {
        pair.push(json!({"SpecialToken": {"id": b.1, "type_id": 1}}));
    }
    pair.push(json!({"Sequence": {"id": "B", "type_id": 1}}));
    if let Some(e) = eos {
        pair.push(json!({"SpecialToken": {"id": e.1, "type_id": 1}}));
    }
    json!({"type": "TemplateProcessing", "single": single, "pair": pair, "special_tokens": specials})
}

fn tokenizer_json(
    tokens: &[String],
    merges: &[String],
    types: &[i64],
    family: PreFamily,
    bos: Option<&Option<(u32, String)>>,
    eos: Option<&Option<(u32, String)>>,
) -> Result<Value, GgufError> {
    let alphabet = bytes_to_unicode();
    let in_alphabet = |t: &str| t.chars().all(|c| alphabet.contains(&c));
    let mut vocab = serde_json::Map::new();
    for (id, t) in tokens.iter().enumerate() {
        let spelt = if in_alphabet(t) {
            t.clone()
        } else {
            t.bytes().map(|b| alphabet[b as usize]).collect()
        };
        // As in transformers' dict comprehension, a repeated spelling keeps the last id.
        vocab.insert(spelt, json!(id));
    }
    let mut pairs = Vec::with_capacity(merges.len());
    for (i, m) in merges.iter().enumerate() {
        let mut parts = m.split(' ');
        match (parts.next(), parts.next(), parts.next()) {
            (Some(a), Some(b), None) if !a.is_empty() && !b.is_empty() => pairs.push(json!([a, b])),
            _ => {
                return Err(GgufError::Tokenizer(format!(
                    "merge {i} of tokenizer.ggml.merges is {m:?}, expected two tokens separated by one space"
                )))
            }
        }
    }
    let mut added = Vec::new();
    for (id, (t, &ty)) in tokens.iter().zip(types).enumerate() {
        let special = ty == TOKEN_TYPE_CONTROL && in_alphabet(t);
        if special || ty == TOKEN_TYPE_USER_DEFINED {
            added.push(json!({
                "id": id, "content": t, "single_word": false, "lstrip": false,
                "rstrip": false, "normalized": false, "special": special,
            }));
        }
    }
    let (pre, ignore_merges) = match family {
        PreFamily::Gpt2 => (byte_level(true), false),
        PreFamily::DigitsGpt2 => (
            json!({"type": "Sequence", "pretokenizers": [
                {"type": "Digits", "individual_digits": true}, byte_level(true)]}),
            false,
        ),
        PreFamily::Llama3 => (
            json!({"type": "Sequence", "pretokenizers": [split(LLAMA3_SPLIT), byte_level(false)]}),
            true,
        ),
        PreFamily::Qwen2 => (
            json!({"type": "Sequence", "pretokenizers": [split(QWEN2_SPLIT), byte_level(false)]}),
            false,
        ),
    };
    let bos = bos.and_then(Option::as_ref);
    let eos = eos.and_then(Option::as_ref);
    let post = if bos.is_some() || eos.is_some() {
        special_template(bos, eos)
    } else {
        Value::Null
    };
    Ok(json!({
        "version": "1.0",
        "truncation": null,
        "padding": null,
        "added_tokens": added,
        "normalizer": null,
        "pre_tokenizer": pre,
        "post_processor": post,
        "decoder": {"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": true, "use_regex": true},
        "model": {
            "type": "BPE", "dropout": null, "unk_token": null,
            "continuing_subword_prefix": null, "end_of_word_suffix": null,
            "fuse_unk": false, "byte_fallback": false, "ignore_merges": ignore_merges,
            "vocab": vocab, "merges": pairs,
        },
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_alphabet_matches_gpt2() {
        let t = bytes_to_unicode();
        assert_eq!(t[b' ' as usize], 'Ġ'); // U+0120: space is the 33rd non-printable byte
        assert_eq!(t[b'\n' as usize], 'Ċ'); // U+010A
        assert_eq!(t[b'a' as usize], 'a');
        // non-printable bytes 0x00..=0x20 and 0x7F..=0xA0 take U+0100..=U+0142; 0xAD is next
        assert_eq!(t[0xAD], '\u{143}');
        let mut sorted = t.to_vec();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), 256);
    }
}
