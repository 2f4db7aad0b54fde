//! Tokenizers: `tokenizer.json` through the `tokenizers` crate, special tokens from
//! `tokenizer_config.json`.
//!
//! transformers' fast tokenizers add BOS through the post-processor when `add_bos_token` is set.
//! We encode with special tokens and, when the config asks for a BOS that the post-processor did
//! not add, prepend it ourselves, so `encode` equals `AutoTokenizer(text).input_ids`.

use super::ModelError;
use serde_json::Value;
use std::path::Path;

/// A tokenizer with the model's special tokens resolved to ids.
#[derive(Clone)]
pub struct Tokenizer {
    inner: tokenizers::Tokenizer,
    /// BOS id, if the model has one.
    pub bos_id: Option<u32>,
    /// lm-eval's `prefix_token_id`: the tokenizer's own BOS, else its EOS (never `config.json`'s
    /// ids when the tokenizer names its tokens). Conditions an empty context, and a string that
    /// starts with its text is encoded without special tokens.
    pub prefix_id: Option<u32>,
    /// EOS ids (generation stops at any of them).
    pub eos_ids: Vec<u32>,
    /// Padding id (falls back to EOS, then 0).
    pub pad_id: u32,
    /// Whether `encode` starts with BOS.
    pub add_bos: bool,
    /// The chat template, if the checkpoint ships one.
    pub chat_template: Option<String>,
}

fn token_str(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(s) => Some(s.clone()),
        Value::Object(m) => m.get("content").and_then(Value::as_str).map(String::from),
        _ => None,
    }
}

impl Tokenizer {
    /// Wraps an already-built tokenizer (used by the GGUF loader).
    pub fn from_parts(
        inner: tokenizers::Tokenizer,
        bos_id: Option<u32>,
        eos_ids: Vec<u32>,
        add_bos: bool,
        chat_template: Option<String>,
    ) -> Self {
        let pad_id = eos_ids.first().copied().unwrap_or(0);
        let prefix_id = bos_id.or(eos_ids.first().copied());
        Tokenizer {
            inner,
            bos_id,
            prefix_id,
            eos_ids,
            pad_id,
            add_bos,
            chat_template,
        }
    }

    /// Loads `tokenizer.json` and `tokenizer_config.json` from a hub directory.
    /// `config_bos`/`config_eos` come from `config.json` and are used when the tokenizer config
    /// names no token.
    pub fn from_dir(
        dir: &Path,
        config_bos: Option<u32>,
        config_eos: &[u32],
    ) -> Result<Self, ModelError> {
        let path = dir.join("tokenizer.json");
        if !path.exists() {
            return Err(ModelError::file(dir.display(), "no tokenizer.json found"));
        }
        let inner = tokenizers::Tokenizer::from_file(&path)
            .map_err(|e| ModelError::file(path.display(), e))?;
        if inner.get_vocab_size(false) == 0 {
            return Err(ModelError::file(
                path.display(),
                format!(
                    "the model's vocabulary is empty (only {} added tokens): every text would \
                     encode to special tokens alone",
                    inner.get_vocab_size(true)
                ),
            ));
        }
        let cfg_path = dir.join("tokenizer_config.json");
        let cfg: Value = if cfg_path.exists() {
            let text = std::fs::read_to_string(&cfg_path)
                .map_err(|e| ModelError::file(cfg_path.display(), e))?;
            serde_json::from_str(&text).map_err(|e| ModelError::file(cfg_path.display(), e))?
        } else {
            Value::Null
        };
        let id_of = |v: Option<&Value>| token_str(v).and_then(|s| inner.token_to_id(&s));
        let tokenizer_bos = id_of(cfg.get("bos_token"));
        let tokenizer_eos = id_of(cfg.get("eos_token"));
        let bos_id = tokenizer_bos.or(config_bos);
        let mut eos_ids: Vec<u32> = tokenizer_eos.into_iter().collect();
        for e in config_eos {
            if !eos_ids.contains(e) {
                eos_ids.push(*e);
            }
        }
        let pad_id = id_of(cfg.get("pad_token"))
            .or(eos_ids.first().copied())
            .unwrap_or(0);
        let add_bos = cfg
            .get("add_bos_token")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        let chat_template = cfg
            .get("chat_template")
            .and_then(Value::as_str)
            .map(String::from);
        // With no tokenizer config at all, transformers falls back to the model config's ids.
        let prefix_id = match (tokenizer_bos, tokenizer_eos) {
            (None, None) => config_bos.or(config_eos.first().copied()),
            (b, e) => b.or(e),
        };
        Ok(Tokenizer {
            inner,
            bos_id,
            prefix_id,
            eos_ids,
            pad_id,
            add_bos,
            chat_template,
        })
    }

    /// Encodes text the way `AutoTokenizer(text).input_ids` does (BOS per the config).
    pub fn encode(&self, text: &str) -> Result<Vec<u32>, ModelError> {
        let enc = self
            .inner
            .encode(text, true)
            .map_err(ModelError::TokenizerLib)?;
        let mut ids = enc.get_ids().to_vec();
        if self.add_bos {
            if let Some(b) = self.bos_id {
                if ids.first() != Some(&b) {
                    ids.insert(0, b);
                }
            }
        }
        Ok(ids)
    }

    /// Encodes text without any special tokens (lm-eval's `add_special_tokens=False`).
    pub fn encode_plain(&self, text: &str) -> Result<Vec<u32>, ModelError> {
        let enc = self
            .inner
            .encode(text, false)
            .map_err(ModelError::TokenizerLib)?;
        Ok(enc.get_ids().to_vec())
    }

    /// Encodes text as lm-eval's `tok_encode` does by default: with the tokenizer's special
    /// tokens (as [`Tokenizer::encode`]) unless the text already starts with the prefix token's
    /// string, then without.
    pub fn encode_lm_eval(&self, text: &str) -> Result<Vec<u32>, ModelError> {
        self.encode_unless_starts_with(text, self.prefix_id)
    }

    /// Encodes a generation prompt as lm-eval's `tok_batch_encode` does: like
    /// [`Tokenizer::encode_lm_eval`], but the check is against the BOS token's string.
    pub fn encode_lm_eval_prompt(&self, text: &str) -> Result<Vec<u32>, ModelError> {
        self.encode_unless_starts_with(text, self.bos_id)
    }

    /// [`Tokenizer::encode`], or [`Tokenizer::encode_plain`] when `text` already starts with the
    /// string of `token`.
    fn encode_unless_starts_with(
        &self,
        text: &str,
        token: Option<u32>,
    ) -> Result<Vec<u32>, ModelError> {
        let starts = match token {
            Some(t) => {
                let s = self.decode(&[t])?;
                !s.is_empty() && text.starts_with(&s)
            }
            None => false,
        };
        if starts {
            self.encode_plain(text)
        } else {
            self.encode(text)
        }
    }

    /// Decodes ids to text (special tokens kept, as `tokenizer.decode(ids)`).
    pub fn decode(&self, ids: &[u32]) -> Result<String, ModelError> {
        self.inner
            .decode(ids, false)
            .map_err(ModelError::TokenizerLib)
    }

    /// Decodes ids to text, dropping special tokens.
    pub fn decode_skip_special(&self, ids: &[u32]) -> Result<String, ModelError> {
        self.inner
            .decode(ids, true)
            .map_err(ModelError::TokenizerLib)
    }

    /// The string of one token id, if it exists.
    pub fn id_to_token(&self, id: u32) -> Option<String> {
        self.inner.id_to_token(id)
    }

    /// Vocabulary size including added tokens.
    pub fn vocab_size(&self) -> usize {
        self.inner.get_vocab_size(true)
    }
}
