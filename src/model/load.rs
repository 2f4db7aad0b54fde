//! Building a model from a checkpoint: hub directory (safetensors) or GGUF file.
//!
//! Weights are read one tensor at a time through a [`WeightSource`], checked against the shape
//! the config implies, converted to the storage dtype and uploaded, so peak host memory is the
//! model plus one tensor.

use super::attention::Attention;
use super::block::{DecoderLayer, Mlp, RmsNorm};
use super::config::ModelConfig;
use super::linear::Linear;
use super::llama::CausalLm;
use super::weights::WeightSource;
use super::ModelError;
use crate::backend::LmBackend;
use crate::quant::{QuantConfig, QuantWeight};
use burn::tensor::{DType, Tensor, TensorData};
use serde::Deserialize;

/// Options of `load_model` (the keys of the Rhai options map).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LoadOptions {
    /// Storage/compute dtype: "f32" | "bf16" | "f16" (default f32 on cpu, bf16 on cuda).
    pub dtype: Option<String>,
    /// Frozen base quantisation: "none" | "nf4" | "fp4" | "int8" (LLM.int8) | "int8_weight"
    /// (weight-only int8).
    pub quant: String,
    /// nf4/fp4: quantise the absmax statistics too.
    pub double_quant: bool,
    /// nf4/fp4 block size.
    pub block_size: usize,
    /// LLM.int8's outlier threshold (`quant: "int8"`; default 6.0, 0 = no decomposition).
    pub int8_threshold: f64,
    /// "cpu" | "cuda" | "cuda:N".
    pub device: String,
    /// Show a progress bar while loading (on a terminal).
    pub progress: bool,
}

impl Default for LoadOptions {
    fn default() -> Self {
        LoadOptions {
            dtype: None,
            quant: "none".into(),
            double_quant: true,
            block_size: 64,
            int8_threshold: 6.0,
            device: "cpu".into(),
            progress: true,
        }
    }
}

/// Parses a dtype name.
pub fn parse_dtype(s: &str) -> Result<DType, ModelError> {
    match s {
        "f32" | "float32" => Ok(DType::F32),
        "bf16" | "bfloat16" => Ok(DType::BF16),
        "f16" | "float16" => Ok(DType::F16),
        other => Err(ModelError::Config(format!(
            "unknown dtype '{other}' (expected one of: f32, bf16, f16)"
        ))),
    }
}

/// Reads tensors from a source with shape checks.
pub struct Loader<'a, B: LmBackend> {
    src: &'a dyn WeightSource,
    device: B::Device,
    dtype: DType,
    quant: Option<QuantConfig>,
    on_tensor: &'a mut dyn FnMut(&str),
}

impl<'a, B: LmBackend> Loader<'a, B> {
    /// A loader uploading to `device` in `dtype`.
    pub fn new(
        src: &'a dyn WeightSource,
        device: B::Device,
        dtype: DType,
        quant: Option<QuantConfig>,
        on_tensor: &'a mut dyn FnMut(&str),
    ) -> Self {
        Loader {
            src,
            device,
            dtype,
            quant,
            on_tensor,
        }
    }

    /// Reads a tensor as host f32 after checking its shape.
    pub fn host(&mut self, name: &str, expected: &[usize]) -> Result<Vec<f32>, ModelError> {
        let found = self
            .src
            .shape(name)
            .ok_or_else(|| ModelError::MissingTensor {
                name: name.to_string(),
                source_desc: self.src.describe(),
            })?;
        if found != expected {
            return Err(ModelError::Shape {
                name: name.to_string(),
                expected: expected.to_vec(),
                found,
            });
        }
        (self.on_tensor)(name);
        self.src.read_f32(name)
    }

    /// Whether the source has a tensor.
    pub fn has(&self, name: &str) -> bool {
        self.src.shape(name).is_some()
    }

    fn upload<const D: usize>(
        &self,
        data: Vec<f32>,
        shape: [usize; D],
        dtype: DType,
    ) -> Tensor<B, D> {
        Tensor::from_data(TensorData::new(data, shape), (&self.device, dtype))
    }

    /// A 1-D tensor (norm weights, biases) kept in f32.
    pub fn vector(&mut self, name: &str, n: usize) -> Result<Tensor<B, 1>, ModelError> {
        let v = self.host(name, &[n])?;
        Ok(self.upload(v, [n], DType::F32))
    }

    /// A 2-D tensor in the storage dtype.
    pub fn matrix(
        &mut self,
        name: &str,
        rows: usize,
        cols: usize,
    ) -> Result<Tensor<B, 2>, ModelError> {
        if let Some(data) = self.raw(name, &[rows, cols])? {
            return Ok(Tensor::from_data(data, (&self.device, self.dtype)));
        }
        let v = self.host(name, &[rows, cols])?;
        Ok(self.upload(v, [rows, cols], self.dtype))
    }

    /// The values of `name` as stored, when the file stores it in the model's dtype (no f32
    /// copy); the shape is checked as by [`Loader::host`].
    fn raw(&mut self, name: &str, expected: &[usize]) -> Result<Option<TensorData>, ModelError> {
        match self.src.shape(name) {
            Some(found) if found == expected => {}
            _ => return Ok(None),
        }
        let raw = self.src.read_raw(name, self.dtype)?;
        if raw.is_some() {
            (self.on_tensor)(name);
        }
        Ok(raw)
    }

    /// A linear layer `prefix.weight` `[out, in]` with an optional `prefix.bias`. With a quant
    /// config, the linear layers of the decoder blocks are quantised as they are read (QLoRA's
    /// choice; embeddings, norms and the output head stay dense).
    pub fn linear(
        &mut self,
        prefix: &str,
        out: usize,
        inp: usize,
        bias: bool,
    ) -> Result<Linear<B>, ModelError> {
        let name = format!("{prefix}.weight");
        let b = if bias {
            Some(self.vector(&format!("{prefix}.bias"), out)?)
        } else {
            None
        };
        match self.quant {
            Some(cfg) if crate::quant::quantizes_tensor(&name, &[out, inp]) => {
                let host = self.host(&name, &[out, inp])?;
                let q = QuantWeight::quantize(&host, [out, inp], &cfg, &self.device).map_err(
                    |source| ModelError::QuantTensor {
                        name: name.to_string(),
                        source,
                    },
                )?;
                Ok(Linear::new(prefix.to_string(), inp, out, q, b))
            }
            _ => {
                let w = self.matrix(&name, out, inp)?;
                Ok(Linear::dense(prefix.to_string(), w, b))
            }
        }
    }
}

/// Builds the causal LM from a weight source.
pub fn build_model<B: LmBackend>(
    cfg: &ModelConfig,
    src: &dyn WeightSource,
    device: &B::Device,
    dtype: DType,
    quant: Option<QuantConfig>,
    on_tensor: &mut dyn FnMut(&str),
) -> Result<CausalLm<B>, ModelError> {
    let mut ld = Loader::<B>::new(src, device.clone(), dtype, quant, on_tensor);
    let (h, hd) = (cfg.hidden_size, cfg.head_dim);
    let (q_out, kv_out) = (cfg.num_heads * hd, cfg.num_kv_heads * hd);
    let embed = ld.matrix("model.embed_tokens.weight", cfg.vocab_size, h)?;
    let mut layers = Vec::with_capacity(cfg.num_layers);
    for i in 0..cfg.num_layers {
        let p = format!("model.layers.{i}");
        let norm = |ld: &mut Loader<B>, name: &str, n: usize| -> Result<RmsNorm<B>, ModelError> {
            Ok(RmsNorm {
                weight: ld.vector(name, n)?,
                eps: cfg.rms_norm_eps,
            })
        };
        let self_attn = Attention {
            q_proj: ld.linear(&format!("{p}.self_attn.q_proj"), q_out, h, cfg.qkv_bias)?,
            k_proj: ld.linear(&format!("{p}.self_attn.k_proj"), kv_out, h, cfg.qkv_bias)?,
            v_proj: ld.linear(&format!("{p}.self_attn.v_proj"), kv_out, h, cfg.qkv_bias)?,
            o_proj: ld.linear(&format!("{p}.self_attn.o_proj"), h, q_out, cfg.o_bias)?,
            q_norm: if cfg.qk_norm {
                Some(norm(&mut ld, &format!("{p}.self_attn.q_norm.weight"), hd)?)
            } else {
                None
            },
            k_norm: if cfg.qk_norm {
                Some(norm(&mut ld, &format!("{p}.self_attn.k_norm.weight"), hd)?)
            } else {
                None
            },
            num_heads: cfg.num_heads,
            num_kv_heads: cfg.num_kv_heads,
            head_dim: hd,
        };
        let mlp = Mlp {
            gate_proj: ld.linear(
                &format!("{p}.mlp.gate_proj"),
                cfg.intermediate_size,
                h,
                cfg.mlp_bias,
            )?,
            up_proj: ld.linear(
                &format!("{p}.mlp.up_proj"),
                cfg.intermediate_size,
                h,
                cfg.mlp_bias,
            )?,
            down_proj: ld.linear(
                &format!("{p}.mlp.down_proj"),
                h,
                cfg.intermediate_size,
                cfg.mlp_bias,
            )?,
        };
        layers.push(DecoderLayer {
            input_layernorm: norm(&mut ld, &format!("{p}.input_layernorm.weight"), h)?,
            self_attn,
            post_attention_layernorm: norm(
                &mut ld,
                &format!("{p}.post_attention_layernorm.weight"),
                h,
            )?,
            mlp,
        });
    }
    let norm = RmsNorm {
        weight: ld.vector("model.norm.weight", h)?,
        eps: cfg.rms_norm_eps,
    };
    let lm_head = if cfg.tie_word_embeddings || !ld.has("lm_head.weight") {
        if !cfg.tie_word_embeddings {
            return Err(ModelError::MissingTensor {
                name: "lm_head.weight".into(),
                source_desc: format!("{} (tie_word_embeddings is false)", src.describe()),
            });
        }
        Linear::dense("lm_head".into(), embed.clone(), None)
    } else {
        ld.linear("lm_head", cfg.vocab_size, h, false)?
    };
    Ok(CausalLm {
        config: cfg.clone(),
        embed_tokens: embed,
        layers,
        norm,
        lm_head,
        device: device.clone(),
        compute_dtype: dtype,
    })
}
