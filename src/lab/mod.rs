//! The lab: the scriptable, backend-independent [`Model`] façade (layer 5 of
//! `docs/ARCHITECTURE.md`).
//!
//! [`Model`] owns the tokenizer, a [`CausalLm`] on the selected backend and the attached
//! adapter's state; every operation returns host values ([`HostTensor`], ids, strings, scores),
//! so callers never see burn types. It ties the layers below together: the network
//! ([`crate::model`]), adapters ([`adapters`]), training ([`training`]), evaluation
//! ([`eval_impl`]) and the logit lens ([`lens`]).

pub mod adapters;
pub mod eval_impl;
pub mod lens;
pub mod training;

use crate::adapter::AdapterCtx;
use crate::backend::DeviceSpec;
use crate::backend::LmBackend;
use crate::model::generate::{generate_ids, GenSettings};
use crate::model::llama::{Batch, CausalLm};
use crate::model::load::{build_model, parse_dtype, LoadOptions};
use crate::model::scoring::{encode_pair, score_tokens, Score};
use crate::model::tokenizer::Tokenizer;
use crate::model::weights::{SafetensorsSource, WeightSource};
use crate::model::{to_host, ModelConfig, ModelError};
use crate::quant::QuantConfig;
use crate::tensor::HostTensor;
use crate::value::{num, Row, Value};
use burn::tensor::DType;
use std::path::{Path, PathBuf};

/// The causal LM on one of the compiled backends.
pub enum Lm {
    /// CPU (burn-flex).
    Cpu(CausalLm<crate::backend::Cpu>),
    /// CUDA (burn-cuda).
    #[cfg(feature = "cuda")]
    Cuda(CausalLm<crate::backend::Cuda>),
}

/// Runs `$body` with `$lm` bound to the backend-specific model.
#[macro_export]
macro_rules! with_lm {
    ($lm_enum:expr, $lm:ident => $body:expr) => {
        match $lm_enum {
            $crate::lab::Lm::Cpu($lm) => $body,
            #[cfg(feature = "cuda")]
            $crate::lab::Lm::Cuda($lm) => $body,
        }
    };
}

/// A loaded model with its tokenizer.
pub struct Model {
    /// The network on its backend.
    pub lm: Lm,
    /// The tokenizer.
    pub tokenizer: Tokenizer,
    /// Where it was loaded from.
    pub path: PathBuf,
    /// Options it was loaded with.
    pub options: LoadOptions,
    /// The device.
    pub device: DeviceSpec,
    /// Storage/compute dtype.
    pub dtype: DType,
    /// sha256 of the config (for provenance).
    pub config_hash: String,
    /// The attached adapters.
    pub adapters: adapters::Adapters,
    /// The optimizer state (moments and step count) of the adapters in `adapters.trained`,
    /// once they have trained.
    pub optimizer: Option<training::Optimizer>,
}

/// Bytes of the frozen base as stored (quantised linear layers count their packed codes and
/// statistics; a tied output head is counted once).
pub fn resident_bytes<B: LmBackend>(lm: &CausalLm<B>) -> usize {
    let size = |dims: &[usize], d: DType| dims.iter().product::<usize>() * d.size();
    let mut n = size(&lm.embed_tokens.dims(), lm.embed_tokens.dtype());
    n += size(&lm.norm.weight.dims(), lm.norm.weight.dtype());
    for layer in &lm.layers {
        for (_, l) in layer.linears() {
            n += l.weight_bytes() + l.bias.as_ref().map_or(0, |b| size(&b.dims(), b.dtype()));
        }
        for norm in [&layer.input_layernorm, &layer.post_attention_layernorm] {
            n += size(&norm.weight.dims(), norm.weight.dtype());
        }
        for norm in [&layer.self_attn.q_norm, &layer.self_attn.k_norm]
            .into_iter()
            .flatten()
        {
            n += size(&norm.weight.dims(), norm.weight.dtype());
        }
    }
    if !lm.config.tie_word_embeddings {
        n += lm.lm_head.weight_bytes();
    }
    n
}

/// The quantisation of the frozen base asked for by the load options (`None` for "none").
pub fn quant_config(options: &LoadOptions) -> Result<Option<QuantConfig>, ModelError> {
    if options.quant == "none" {
        return Ok(None);
    }
    let cfg = QuantConfig::from_parts(
        &options.quant,
        options.block_size as i64,
        options.double_quant,
    )?
    .with_int8_threshold(options.int8_threshold as f32);
    cfg.validate()?;
    Ok(Some(cfg))
}

fn dtype_name(d: DType) -> &'static str {
    match d {
        DType::BF16 => "bf16",
        DType::F16 => "f16",
        _ => "f32",
    }
}

/// The text of a model directory's `config.json`: a missing file says the directory is not a
/// Hugging Face model; an unreadable or non-UTF-8 file says what is wrong with it.
fn read_config_text(dir: &Path, cfg_path: &Path) -> Result<String, ModelError> {
    let bytes = match std::fs::read(cfg_path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(ModelError::file(
                dir.display(),
                "no config.json: not a Hugging Face model directory",
            ))
        }
        Err(e) => return Err(ModelError::file(cfg_path.display(), e)),
    };
    String::from_utf8(bytes).map_err(|e| {
        let at = e.utf8_error().valid_up_to();
        let byte = e.as_bytes().get(at).copied().unwrap_or(0);
        ModelError::file(
            cfg_path.display(),
            format!("not valid UTF-8 (byte 0x{byte:02X} at offset {at})"),
        )
    })
}

/// GGUF tensors seen as HF-named f32 weights.
struct GgufSource {
    g: crate::gguf::GgufModel,
    desc: String,
}

impl WeightSource for GgufSource {
    fn names(&self) -> Vec<String> {
        self.g.hf_tensor_names()
    }
    fn shape(&self, name: &str) -> Option<Vec<usize>> {
        self.g.hf_shape(name)
    }
    fn read_f32(&self, name: &str) -> Result<Vec<f32>, ModelError> {
        self.g
            .read_hf_tensor_f32(name)
            .map_err(|e| ModelError::file(&self.desc, e))
    }
    fn describe(&self) -> String {
        self.desc.clone()
    }
}

impl Model {
    /// Loads a hub directory (config.json, safetensors, tokenizer.json) or a `.gguf` file.
    pub fn load(path: &Path, options: LoadOptions) -> Result<Model, ModelError> {
        let device = DeviceSpec::parse(&options.device)?;
        device.check_available()?;
        let dtype = match &options.dtype {
            Some(d) => parse_dtype(d)?,
            None if device == DeviceSpec::Cpu => DType::F32,
            None => DType::BF16,
        };
        let quant = quant_config(&options)?;
        if !path.exists() {
            return Err(ModelError::file(
                path.display(),
                "no such file or directory",
            ));
        }
        if path.is_file() {
            let ext = path.extension().map(|e| e.to_string_lossy().to_lowercase());
            return match ext.as_deref() {
                Some("gguf") => Self::load_gguf(path, options, device, dtype, quant),
                Some("bin") | Some("pt") | Some("pth") => Err(ModelError::file(
                    path.display(),
                    "PyTorch pickle files are refused (unpickling executes code); convert to \
                     safetensors with `save_pretrained(dir, safe_serialization=True)`",
                )),
                _ => Err(ModelError::file(
                    path.display(),
                    "expected a model directory (config.json + *.safetensors + tokenizer.json)",
                )),
            };
        }
        let cfg_path = path.join("config.json");
        let text = read_config_text(path, &cfg_path)?;
        let config = ModelConfig::from_json_str(&text)
            .map_err(|e| ModelError::file(cfg_path.display(), e))?;
        let src = SafetensorsSource::open_dir(path)?;
        let tokenizer = Tokenizer::from_dir(path, config.bos_token_id, &config.eos_token_ids)?;
        let lm = Self::build(&config, &src, &device, dtype, quant, options.progress)?;
        Ok(Model {
            lm,
            tokenizer,
            path: path.to_path_buf(),
            options,
            device,
            dtype,
            config_hash: crate::text::sha256_hex(text.as_bytes()),
            adapters: Default::default(),
            optimizer: None,
        })
    }

    /// Loads a `.gguf` file (llama.cpp's format): weights dequantised to f32 one tensor at a time
    /// and mapped to the transformers layout, tokenizer and chat template from the metadata.
    fn load_gguf(
        path: &Path,
        options: LoadOptions,
        device: DeviceSpec,
        dtype: DType,
        quant: Option<QuantConfig>,
    ) -> Result<Model, ModelError> {
        let g =
            crate::gguf::GgufModel::open(path).map_err(|e| ModelError::file(path.display(), e))?;
        let cfg_json = g
            .hf_config()
            .map_err(|e| ModelError::file(path.display(), e))?;
        let config =
            ModelConfig::from_json(&cfg_json).map_err(|e| ModelError::file(path.display(), e))?;
        let gt = g
            .tokenizer()
            .map_err(|e| ModelError::file(path.display(), e))?;
        let (bos, eos, add_bos, template) = (
            gt.bos_id(),
            gt.eos_id(),
            gt.add_bos(),
            gt.chat_template().map(String::from),
        );
        let mut tokenizer = Tokenizer::from_parts(
            gt.into_tokenizer(),
            bos,
            eos.into_iter().collect(),
            add_bos,
            template,
        );
        if let Some(p) = config
            .eos_token_ids
            .iter()
            .find(|e| !tokenizer.eos_ids.contains(e))
        {
            tokenizer.eos_ids.push(*p);
        }
        let src = GgufSource {
            g,
            desc: path.display().to_string(),
        };
        let lm = Self::build(&config, &src, &device, dtype, quant, options.progress)?;
        Ok(Model {
            lm,
            tokenizer,
            path: path.to_path_buf(),
            options,
            device,
            dtype,
            config_hash: crate::text::sha256_hex(cfg_json.to_string().as_bytes()),
            adapters: Default::default(),
            optimizer: None,
        })
    }

    /// Builds the network on the requested device.
    pub fn build(
        config: &ModelConfig,
        src: &dyn WeightSource,
        device: &DeviceSpec,
        dtype: DType,
        quant: Option<QuantConfig>,
        progress: bool,
    ) -> Result<Lm, ModelError> {
        let mut bar = if progress {
            crate::progress::Progress::new(src.names().len() as u64, "loading")
        } else {
            crate::progress::Progress::hidden()
        };
        let mut on_tensor = |_name: &str| bar.inc(1);
        let out = match device {
            DeviceSpec::Cpu => Ok(Lm::Cpu(build_model(
                config,
                src,
                &Default::default(),
                dtype,
                quant,
                &mut on_tensor,
            )?)),
            #[cfg(feature = "cuda")]
            DeviceSpec::Cuda(i) => {
                let dev = burn::backend::cuda::CudaDevice::new(*i);
                Ok(Lm::Cuda(build_model(
                    config,
                    src,
                    &dev,
                    dtype,
                    quant,
                    &mut on_tensor,
                )?))
            }
            #[cfg(not(feature = "cuda"))]
            DeviceSpec::Cuda(_) => Err(ModelError::Device(crate::backend::DeviceError(
                "built without CUDA".into(),
            ))),
        };
        bar.finish();
        out
    }

    /// The model configuration.
    pub fn config(&self) -> &ModelConfig {
        with_lm!(&self.lm, lm => &lm.config)
    }

    /// `info()` map: arch, layers, hidden, heads, kv_heads, vocab, params, bytes, dtype, quant,
    /// device.
    pub fn info(&self) -> Row {
        let c = self.config();
        let params = c.num_params();
        let bytes = with_lm!(&self.lm, lm => resident_bytes(lm));
        let mut r = Row::new();
        r.insert("arch".into(), Value::from(c.arch.name()));
        r.insert("path".into(), Value::from(self.path.display().to_string()));
        r.insert("layers".into(), Value::from(c.num_layers));
        r.insert("hidden".into(), Value::from(c.hidden_size));
        r.insert("intermediate".into(), Value::from(c.intermediate_size));
        r.insert("heads".into(), Value::from(c.num_heads));
        r.insert("kv_heads".into(), Value::from(c.num_kv_heads));
        r.insert("head_dim".into(), Value::from(c.head_dim));
        r.insert("vocab".into(), Value::from(c.vocab_size));
        r.insert("params".into(), Value::from(params));
        r.insert("bytes".into(), Value::from(bytes));
        r.insert(
            "bits_per_param".into(),
            num(bytes as f64 * 8.0 / params as f64),
        );
        r.insert("dtype".into(), Value::from(dtype_name(self.dtype)));
        r.insert("quant".into(), Value::from(self.options.quant.clone()));
        let scheme = crate::quant::QuantKind::parse(&self.options.quant)
            .map_or("none", crate::quant::QuantKind::scheme);
        r.insert("quant_scheme".into(), Value::from(scheme));
        if self.options.quant.trim().eq_ignore_ascii_case("int8") {
            r.insert("int8_threshold".into(), num(self.options.int8_threshold));
        }
        r.insert("device".into(), Value::from(self.device.name()));
        r.insert("config_hash".into(), Value::from(self.config_hash.clone()));
        r
    }

    /// One-line summary.
    pub fn summary(&self) -> String {
        let c = self.config();
        format!(
            "Model({} {}L h{} v{} {} {} on {}, {})",
            c.arch.name(),
            c.num_layers,
            c.hidden_size,
            c.vocab_size,
            dtype_name(self.dtype),
            self.options.quant,
            self.device.name(),
            self.path.display()
        )
    }

    /// Encodes text (BOS as the tokenizer config says).
    pub fn encode(&self, text: &str) -> Result<Vec<u32>, ModelError> {
        self.tokenizer.encode(text)
    }

    /// Decodes ids.
    pub fn decode(&self, ids: &[u32]) -> Result<String, ModelError> {
        self.tokenizer.decode(ids)
    }

    /// Refuses rows longer than the model's `max_position_embeddings`.
    fn check_positions(&self, func: &str, rows: &[Vec<u32>]) -> Result<(), ModelError> {
        let max = self.config().max_position_embeddings;
        match rows.iter().enumerate().find(|(_, r)| r.len() > max) {
            Some((i, r)) => Err(ModelError::Input(format!(
                "{func}: row {i} has {} ids, more than this model's max_position_embeddings ({max})",
                r.len()
            ))),
            None => Ok(()),
        }
    }

    /// Logits `[B, T, V]` for right-padded rows (padding positions hold meaningless values).
    pub fn logits(&self, rows: &[Vec<u32>]) -> Result<HostTensor, ModelError> {
        self.check_positions("logits", rows)?;
        let batch = Batch::right_padded(rows, self.tokenizer.pad_id)?;
        let (b, t) = (batch.batch(), batch.seq());
        with_lm!(&self.lm, lm => {
            let ctx = AdapterCtx::eval();
            let f = lm.forward(&batch, None, false, &ctx)?;
            let (shape, v) = to_host(lm.head(f.hidden, &ctx))?;
            Ok(HostTensor::f32(vec![b, t, shape[1]], v)?)
        })
    }

    /// Hidden states (transformers convention), each `[B, T, H]`.
    pub fn hidden_states(&self, rows: &[Vec<u32>]) -> Result<Vec<HostTensor>, ModelError> {
        self.check_positions("hidden_states", rows)?;
        let batch = Batch::right_padded(rows, self.tokenizer.pad_id)?;
        let (b, t) = (batch.batch(), batch.seq());
        with_lm!(&self.lm, lm => {
            let ctx = AdapterCtx::eval();
            let f = lm.forward(&batch, None, true, &ctx)?;
            f.all_hidden
                .into_iter()
                .map(|h| {
                    let (shape, v) = to_host(h)?;
                    Ok(HostTensor::f32(vec![b, t, shape[1]], v)?)
                })
                .collect()
        })
    }

    /// New token ids after `prompt`; stops on EOS (when asked) or when `stop` says so.
    pub fn generate_ids(
        &self,
        prompt: &[u32],
        settings: &GenSettings,
        stop: impl FnMut(&[u32]) -> Result<bool, ModelError>,
    ) -> Result<Vec<u32>, ModelError> {
        let max = self.config().max_position_embeddings;
        if settings.max_new_tokens > max {
            return Err(ModelError::Input(format!(
                "max_new_tokens = {} is more than this model's max_position_embeddings ({max})",
                settings.max_new_tokens
            )));
        }
        let eos = self.tokenizer.eos_ids.clone();
        with_lm!(&self.lm, lm => generate_ids(lm, prompt, settings, &eos, &AdapterCtx::eval(), stop))
    }

    /// Generates text after `prompt`, stopping at EOS, `max_new_tokens` or the first stop
    /// string (excluded from the result).
    pub fn generate_text(
        &self,
        prompt: &str,
        settings: &GenSettings,
        stops: &[String],
    ) -> Result<String, ModelError> {
        let ids = self.encode(prompt)?;
        self.generate_text_from_ids(&ids, settings, stops)
    }

    /// Generates text after the token ids `prompt`, stopping at EOS, `max_new_tokens` or the
    /// first stop string (excluded from the result; empty stop strings are ignored).
    pub fn generate_text_from_ids(
        &self,
        prompt: &[u32],
        settings: &GenSettings,
        stops: &[String],
    ) -> Result<String, ModelError> {
        let tok = &self.tokenizer;
        let new = self.generate_ids(prompt, settings, |new| {
            let text = tok.decode_skip_special(new)?;
            Ok(crate::text::first_stop(&text, stops).is_some())
        })?;
        let mut text = tok.decode_skip_special(&new)?;
        if let Some(i) = crate::text::first_stop(&text, stops) {
            text.truncate(i);
        }
        Ok(text)
    }

    /// lm-eval log-likelihoods of (context, continuation) pairs. Inputs longer than the model's
    /// `max_position_embeddings` lose their oldest context tokens, as in lm-eval.
    pub fn loglikelihoods(
        &self,
        pairs: &[(String, String)],
        batch_size: usize,
    ) -> Result<Vec<Score>, ModelError> {
        let max_length = self.config().max_position_embeddings;
        let reqs = pairs
            .iter()
            .map(|(c, x)| {
                let mut r = encode_pair(&self.tokenizer, c, x)?;
                r.truncate_left(max_length);
                Ok(r)
            })
            .collect::<Result<Vec<_>, ModelError>>()?;
        let pad = self.tokenizer.pad_id;
        with_lm!(&self.lm, lm => score_tokens(lm, &reqs, batch_size, pad, &AdapterCtx::eval(), |_| Ok(())))
    }
}

impl std::fmt::Display for Model {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.summary())?;
        for a in &self.adapters.list {
            let state = match (a.merged, a.active) {
                (true, _) => ", merged",
                (false, true) => "",
                (false, false) => ", inactive",
            };
            write!(
                f,
                " + {} adapter '{}' on {} modules{state}",
                a.method.name(),
                a.name,
                a.modules.len()
            )?;
        }
        Ok(())
    }
}
