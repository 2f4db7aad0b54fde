//! Model configuration read from a Hugging Face `config.json`.
//!
//! Both layouts are accepted: the classic one (`rope_theta`, `rope_scaling`) and the newer
//! `rope_parameters` map of transformers ≥ 4.56. The raw serde struct mirrors the file; it is
//! converted once into the validated runtime [`ModelConfig`] (candle's `into_config` idiom).
//!
//! Reference: transformers `LlamaConfig`, `MistralConfig`, `Qwen2Config`, `Qwen3Config` and
//! `modeling_rope_utils.py` (rope types `default`, `linear`, `dynamic`, `llama3`).

use super::ModelError;
use serde::Deserialize;
use serde_json::Value;

/// The architectures peftlab implements.
pub const SUPPORTED_ARCHS: &[&str] = &[
    "LlamaForCausalLM",
    "MistralForCausalLM",
    "Qwen2ForCausalLM",
    "Qwen3ForCausalLM",
];

/// Which family a checkpoint belongs to (decides biases, q/k norms and sliding windows).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arch {
    /// `LlamaForCausalLM` (Llama 2/3, SmolLM2, TinyLlama...).
    Llama,
    /// `MistralForCausalLM` (sliding-window attention).
    Mistral,
    /// `Qwen2ForCausalLM` (q/k/v biases).
    Qwen2,
    /// `Qwen3ForCausalLM` (per-head q/k RMSNorm, explicit head_dim).
    Qwen3,
}

impl Arch {
    /// The transformers class name.
    pub fn name(self) -> &'static str {
        match self {
            Arch::Llama => "LlamaForCausalLM",
            Arch::Mistral => "MistralForCausalLM",
            Arch::Qwen2 => "Qwen2ForCausalLM",
            Arch::Qwen3 => "Qwen3ForCausalLM",
        }
    }
}

/// Rotary-embedding frequency scaling.
#[derive(Debug, Clone, PartialEq)]
pub enum RopeScaling {
    /// Plain RoPE.
    None,
    /// Position interpolation: frequencies divided by `factor`.
    Linear {
        /// Scaling factor.
        factor: f64,
    },
    /// Dynamic NTK scaling: the base grows once the sequence exceeds the trained length.
    Dynamic {
        /// Scaling factor.
        factor: f64,
    },
    /// Llama 3.1 wavelength-dependent scaling.
    Llama3 {
        /// Scaling factor.
        factor: f64,
        /// Low-frequency factor.
        low_freq_factor: f64,
        /// High-frequency factor.
        high_freq_factor: f64,
        /// Context length the model was pre-trained with.
        original_max_position_embeddings: f64,
    },
}

/// The validated runtime configuration of a decoder-only model.
#[derive(Debug, Clone)]
pub struct ModelConfig {
    /// Architecture family.
    pub arch: Arch,
    /// Vocabulary size.
    pub vocab_size: usize,
    /// Hidden (residual stream) size.
    pub hidden_size: usize,
    /// Feed-forward inner size.
    pub intermediate_size: usize,
    /// Number of decoder layers.
    pub num_layers: usize,
    /// Number of query heads.
    pub num_heads: usize,
    /// Number of key/value heads (GQA).
    pub num_kv_heads: usize,
    /// Size of one attention head.
    pub head_dim: usize,
    /// RMSNorm epsilon.
    pub rms_norm_eps: f64,
    /// RoPE base θ.
    pub rope_theta: f64,
    /// RoPE scaling.
    pub rope_scaling: RopeScaling,
    /// Maximum positions (used by dynamic scaling).
    pub max_position_embeddings: usize,
    /// Whether the output head shares the embedding matrix.
    pub tie_word_embeddings: bool,
    /// Sliding attention window (Mistral), if any.
    pub sliding_window: Option<usize>,
    /// Whether q/k/v projections have biases (Qwen2, or `attention_bias`).
    pub qkv_bias: bool,
    /// Whether the output projection has a bias (`attention_bias` on Llama).
    pub o_bias: bool,
    /// Whether the MLP projections have biases (`mlp_bias` on Llama).
    pub mlp_bias: bool,
    /// Whether q and k get a per-head RMSNorm (Qwen3).
    pub qk_norm: bool,
    /// BOS id from the config, if any.
    pub bos_token_id: Option<u32>,
    /// EOS ids from the config (may be several).
    pub eos_token_ids: Vec<u32>,
}

#[derive(Deserialize)]
struct RawConfig {
    #[serde(default)]
    architectures: Vec<String>,
    #[serde(default)]
    model_type: Option<String>,
    vocab_size: usize,
    hidden_size: usize,
    intermediate_size: usize,
    num_hidden_layers: usize,
    num_attention_heads: usize,
    #[serde(default)]
    num_key_value_heads: Option<usize>,
    #[serde(default)]
    head_dim: Option<usize>,
    #[serde(default)]
    hidden_act: Option<String>,
    #[serde(default = "default_eps")]
    rms_norm_eps: f64,
    #[serde(default)]
    rope_theta: Option<f64>,
    #[serde(default)]
    rope_scaling: Option<Value>,
    #[serde(default)]
    rope_parameters: Option<Value>,
    #[serde(default = "default_max_pos")]
    max_position_embeddings: usize,
    #[serde(default)]
    tie_word_embeddings: Option<bool>,
    #[serde(default)]
    sliding_window: Option<usize>,
    #[serde(default)]
    use_sliding_window: Option<bool>,
    #[serde(default)]
    attention_bias: Option<bool>,
    #[serde(default)]
    mlp_bias: Option<bool>,
    #[serde(default)]
    bos_token_id: Option<Value>,
    #[serde(default)]
    eos_token_id: Option<Value>,
}

fn default_eps() -> f64 {
    1e-6
}
fn default_max_pos() -> usize {
    4096
}

fn ids(v: &Option<Value>) -> Vec<u32> {
    match v {
        Some(Value::Number(n)) => n.as_u64().map(|x| vec![x as u32]).unwrap_or_default(),
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(|x| x.as_u64())
            .map(|x| x as u32)
            .collect(),
        _ => vec![],
    }
}

/// Checks a float hyperparameter read from a model file: it must be finite and, with
/// `positive`, greater than 0 (RoPE θ, RMSNorm ε, scaling factors). `what` names the key as
/// the file spells it; the error names it and the bad value. Every float of [`ModelConfig`] goes
/// through here, whichever file (config.json, GGUF metadata) it came from.
pub fn check_hyperparameter(what: &str, value: f64, positive: bool) -> Result<f64, ModelError> {
    if !value.is_finite() || (positive && value <= 0.0) {
        let want = if positive {
            "a finite number > 0"
        } else {
            "a finite number"
        };
        return Err(ModelError::Config(format!(
            "{what} must be {want} (got {value})"
        )));
    }
    Ok(value)
}

fn parse_scaling(v: &Value, max_pos: usize) -> Result<RopeScaling, ModelError> {
    let Some(map) = v.as_object() else {
        return Ok(RopeScaling::None);
    };
    let kind = map
        .get("rope_type")
        .or_else(|| map.get("type"))
        .and_then(Value::as_str)
        .unwrap_or("default");
    let positive = |key: &str, default: f64| -> Result<f64, ModelError> {
        match map.get(key) {
            None | Some(Value::Null) => Ok(default),
            Some(v) => match v.as_f64() {
                Some(x) => check_hyperparameter(&format!("rope scaling '{key}'"), x, true),
                None => Err(ModelError::Config(format!(
                    "rope scaling '{key}' must be a number (got {v})"
                ))),
            },
        }
    };
    let factor = positive("factor", 1.0)?;
    Ok(match kind {
        "default" => RopeScaling::None,
        "linear" => RopeScaling::Linear { factor },
        "dynamic" => RopeScaling::Dynamic { factor },
        "llama3" => RopeScaling::Llama3 {
            factor,
            low_freq_factor: positive("low_freq_factor", 1.0)?,
            high_freq_factor: positive("high_freq_factor", 4.0)?,
            original_max_position_embeddings: positive(
                "original_max_position_embeddings",
                max_pos as f64,
            )?,
        },
        other => {
            return Err(ModelError::Config(format!(
            "unsupported rope scaling type '{other}' (supported: default, linear, dynamic, llama3)"
        )))
        }
    })
}

impl ModelConfig {
    /// Parses the text of a `config.json`.
    pub fn from_json_str(text: &str) -> Result<Self, ModelError> {
        let value: Value = serde_json::from_str(text).map_err(|source| ModelError::ConfigJson {
            context: "config.json is not valid JSON",
            source,
        })?;
        Self::from_json(&value)
    }

    /// Parses a `config.json` value.
    pub fn from_json(value: &Value) -> Result<Self, ModelError> {
        let raw: RawConfig =
            serde_json::from_value(value.clone()).map_err(|source| ModelError::ConfigJson {
                context: "config.json",
                source,
            })?;
        let arch_name = raw.architectures.first().cloned().or_else(|| {
            raw.model_type.as_deref().map(|t| match t {
                "llama" => "LlamaForCausalLM".to_string(),
                "mistral" => "MistralForCausalLM".to_string(),
                "qwen2" => "Qwen2ForCausalLM".to_string(),
                "qwen3" => "Qwen3ForCausalLM".to_string(),
                other => other.to_string(),
            })
        });
        let arch = match arch_name.as_deref() {
            Some("LlamaForCausalLM") => Arch::Llama,
            Some("MistralForCausalLM") => Arch::Mistral,
            Some("Qwen2ForCausalLM") => Arch::Qwen2,
            Some("Qwen3ForCausalLM") => Arch::Qwen3,
            other => {
                return Err(ModelError::UnsupportedArch {
                    found: other.unwrap_or("<none>").to_string(),
                    supported: SUPPORTED_ARCHS.join(", "),
                })
            }
        };
        if let Some(act) = raw.hidden_act.as_deref() {
            if act != "silu" && act != "swish" {
                return Err(ModelError::Config(format!(
                    "unsupported hidden_act '{act}' (supported: silu)"
                )));
            }
        }
        if raw.num_attention_heads == 0 || raw.hidden_size == 0 || raw.num_hidden_layers == 0 {
            return Err(ModelError::Config(
                "hidden_size, num_attention_heads and num_hidden_layers must be > 0".into(),
            ));
        }
        let num_kv_heads = raw.num_key_value_heads.unwrap_or(raw.num_attention_heads);
        if num_kv_heads == 0 || !raw.num_attention_heads.is_multiple_of(num_kv_heads) {
            return Err(ModelError::Config(format!(
                "num_attention_heads ({}) must be a multiple of num_key_value_heads ({num_kv_heads})",
                raw.num_attention_heads
            )));
        }
        let head_dim = raw
            .head_dim
            .unwrap_or(raw.hidden_size / raw.num_attention_heads);
        if !head_dim.is_multiple_of(2) || head_dim == 0 {
            return Err(ModelError::Config(format!(
                "head_dim must be even (got {head_dim})"
            )));
        }
        // The newer layout keeps theta and scaling together in `rope_parameters`.
        let (theta, scaling) = match &raw.rope_parameters {
            Some(Value::Object(p)) => (
                match p.get("rope_theta") {
                    None | Some(Value::Null) => raw.rope_theta.unwrap_or(10_000.0),
                    Some(v) => v.as_f64().ok_or_else(|| {
                        ModelError::Config(format!(
                            "rope_parameters 'rope_theta' must be a number (got {v})"
                        ))
                    })?,
                },
                parse_scaling(&Value::Object(p.clone()), raw.max_position_embeddings)?,
            ),
            _ => (
                raw.rope_theta.unwrap_or(10_000.0),
                match &raw.rope_scaling {
                    Some(v) => parse_scaling(v, raw.max_position_embeddings)?,
                    None => RopeScaling::None,
                },
            ),
        };
        let sliding_window = match arch {
            Arch::Mistral => raw.sliding_window,
            Arch::Qwen2 | Arch::Qwen3 if raw.use_sliding_window == Some(true) => {
                return Err(ModelError::Config(
                    "Qwen use_sliding_window=true (per-layer windows) is not supported".into(),
                ))
            }
            _ => None,
        };
        let theta = check_hyperparameter("rope_theta", theta, true)?;
        let rms_norm_eps = check_hyperparameter("rms_norm_eps", raw.rms_norm_eps, true)?;
        let attention_bias = raw.attention_bias.unwrap_or(false);
        let config = ModelConfig {
            arch,
            vocab_size: raw.vocab_size,
            hidden_size: raw.hidden_size,
            intermediate_size: raw.intermediate_size,
            num_layers: raw.num_hidden_layers,
            num_heads: raw.num_attention_heads,
            num_kv_heads,
            head_dim,
            rms_norm_eps,
            rope_theta: theta,
            rope_scaling: scaling,
            max_position_embeddings: raw.max_position_embeddings,
            tie_word_embeddings: raw.tie_word_embeddings.unwrap_or(false),
            sliding_window,
            qkv_bias: arch == Arch::Qwen2 || attention_bias,
            o_bias: arch != Arch::Qwen2 && arch != Arch::Qwen3 && attention_bias,
            mlp_bias: raw.mlp_bias.unwrap_or(false),
            qk_norm: arch == Arch::Qwen3,
            bos_token_id: ids(&raw.bos_token_id).first().copied(),
            eos_token_ids: ids(&raw.eos_token_id),
        };
        config.check_size()?;
        Ok(config)
    }

    /// Refuses a configuration whose weights could not fit in this machine's memory even at
    /// half a byte per parameter (4-bit), before anything is allocated: a `num_hidden_layers`
    /// of 10¹² must be an error, not an aborted process. The arithmetic cannot overflow.
    pub fn check_size(&self) -> Result<(), ModelError> {
        let w = |x: usize| x as u128;
        let (h, i, v, l) = (
            w(self.hidden_size),
            w(self.intermediate_size),
            w(self.vocab_size),
            w(self.num_layers),
        );
        let q = w(self.num_heads).saturating_mul(w(self.head_dim));
        let kv = w(self.num_kv_heads).saturating_mul(w(self.head_dim));
        let attn = h.saturating_mul(q.saturating_mul(2).saturating_add(kv.saturating_mul(2)));
        let mlp = h.saturating_mul(i).saturating_mul(3);
        let per_layer = attn.saturating_add(mlp);
        let total = l
            .saturating_mul(per_layer)
            .saturating_add(v.saturating_mul(h).saturating_mul(2));
        let what = format!(
            "config.json: a model with {} layers, hidden_size {}, intermediate_size {} and \
             vocab_size {} ({total} parameters, at least half a byte each)",
            self.num_layers, self.hidden_size, self.intermediate_size, self.vocab_size
        );
        Ok(crate::limits::check_alloc(&what, total.div_ceil(2), 1)?)
    }

    /// Number of parameters of the base model (embeddings and head counted once when tied).
    pub fn num_params(&self) -> usize {
        let h = self.hidden_size;
        let q = self.num_heads * self.head_dim;
        let kv = self.num_kv_heads * self.head_dim;
        let mut attn = h * q + 2 * h * kv + q * h;
        if self.qkv_bias {
            attn += q + 2 * kv;
        }
        if self.o_bias {
            attn += h;
        }
        if self.qk_norm {
            attn += 2 * self.head_dim;
        }
        let mut mlp = 3 * h * self.intermediate_size;
        if self.mlp_bias {
            mlp += 2 * self.intermediate_size + h;
        }
        let layer = attn + mlp + 2 * h;
        let emb = self.vocab_size * h;
        let head = if self.tie_word_embeddings { 0 } else { emb };
        self.num_layers * layer + emb + head + h
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_llama3_scaling_and_new_layout() {
        let classic = r#"{"architectures":["LlamaForCausalLM"],"vocab_size":10,"hidden_size":8,
            "intermediate_size":16,"num_hidden_layers":1,"num_attention_heads":2,
            "rope_theta":500000.0,"rope_scaling":{"rope_type":"llama3","factor":8.0,
            "low_freq_factor":1.0,"high_freq_factor":4.0,"original_max_position_embeddings":32}}"#;
        let c = ModelConfig::from_json_str(classic).unwrap();
        assert_eq!(c.rope_theta, 500000.0);
        assert!(matches!(c.rope_scaling, RopeScaling::Llama3 { factor, .. } if factor == 8.0));
        assert_eq!(c.num_kv_heads, 2);
        assert_eq!(c.head_dim, 4);
        let newer = r#"{"architectures":["LlamaForCausalLM"],"vocab_size":10,"hidden_size":8,
            "intermediate_size":16,"num_hidden_layers":1,"num_attention_heads":2,
            "rope_parameters":{"rope_type":"linear","factor":2.0,"rope_theta":1000.0}}"#;
        let c = ModelConfig::from_json_str(newer).unwrap();
        assert_eq!(c.rope_theta, 1000.0);
        assert_eq!(c.rope_scaling, RopeScaling::Linear { factor: 2.0 });
    }

    #[test]
    fn unsupported_arch_lists_supported() {
        let t = r#"{"architectures":["GPT2LMHeadModel"],"vocab_size":10,"hidden_size":8,
            "intermediate_size":16,"num_hidden_layers":1,"num_attention_heads":2}"#;
        let e = ModelConfig::from_json_str(t).unwrap_err().to_string();
        assert!(
            e.contains("GPT2LMHeadModel") && e.contains("Qwen3ForCausalLM"),
            "{e}"
        );
    }

    #[test]
    fn float_hyperparameters_must_be_finite_and_positive() {
        let base = r#"{"architectures":["LlamaForCausalLM"],"vocab_size":10,"hidden_size":8,
            "intermediate_size":16,"num_hidden_layers":1,"num_attention_heads":2"#;
        let err = |extra: &str| {
            ModelConfig::from_json_str(&format!("{base},{extra}}}"))
                .unwrap_err()
                .to_string()
        };
        assert_eq!(
            err(r#""rope_theta":-5"#),
            "rope_theta must be a finite number > 0 (got -5)"
        );
        assert_eq!(
            err(r#""rope_theta":0"#),
            "rope_theta must be a finite number > 0 (got 0)"
        );
        assert_eq!(
            err(r#""rms_norm_eps":-1e-6"#),
            "rms_norm_eps must be a finite number > 0 (got -0.000001)"
        );
        assert_eq!(
            err(r#""rope_scaling":{"rope_type":"linear","factor":0}"#),
            "rope scaling 'factor' must be a finite number > 0 (got 0)"
        );
        assert_eq!(
            err(r#""rope_scaling":{"rope_type":"llama3","factor":8,"low_freq_factor":"1"}"#),
            r#"rope scaling 'low_freq_factor' must be a number (got "1")"#
        );
        assert_eq!(
            err(r#""rope_parameters":{"rope_type":"default","rope_theta":"1e4"}"#),
            r#"rope_parameters 'rope_theta' must be a number (got "1e4")"#
        );
        // absent keys keep their documented defaults
        let c = ModelConfig::from_json_str(&format!("{base}}}")).unwrap();
        assert_eq!((c.rope_theta, c.rms_norm_eps), (10_000.0, 1e-6));
    }
}
