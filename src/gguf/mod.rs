//! GGUF model files: reader, dequantisation, Llama mapping onto Hugging Face names, tokenizer.
//!
//! Implements the GGUF container as specified in ggml's `docs/gguf.md` (versions 2 and 3) and
//! read by llama.cpp (`ggml/src/gguf.cpp`, `gguf_init_from_file_impl`) and by gguf-py
//! (`gguf/gguf_reader.py`, `GGUFReader`). Dequantisation follows ggml's reference kernels
//! (`ggml/src/ggml-quants.c`, `dequantize_row_*`), checked against gguf-py's
//! `gguf.quants.dequantize`. The mapping to Hugging Face Llama names and the undoing of the
//! rotary Q/K row permutation follow transformers' `integrations/ggml.py` (`TENSOR_PROCESSORS`,
//! `LlamaConverter.process`, `reverse_permute_weights`), the inverse of llama.cpp's
//! `convert_hf_to_gguf.py` `LlamaModel.permute`.
//!
//! Entry point: [`GgufModel::open`]. The file is memory-mapped; tensors are dequantised one at
//! a time on request ([`GgufModel::read_hf_tensor_f32`]), so opening a file costs only the
//! header parse. Every offset and size read from the file is checked against the file length
//! before use: a malformed file gives a [`GgufError`], never a panic.

use std::path::{Path, PathBuf};

mod bytes;
mod dequant;
mod kquants;
mod llama;
mod metadata;
mod reader;
mod tokenizer;
mod types;
pub mod writer;

pub use dequant::dequantize;
pub use llama::SUPPORTED_ARCHITECTURES;
pub use metadata::{MetaArray, MetaValue, Metadata};
pub use reader::{GgufFile, TensorInfo, DEFAULT_ALIGNMENT};
pub use tokenizer::GgufTokenizer;
pub use types::GgmlType;

/// File name of the SmolLM2 GGUF that `scripts/get-smollm2.sh` extracts.
pub const SMOLLM2_FILE: &str = "SmolLM2-135M-Instruct.Q4_1.gguf";

/// Where `scripts/get-smollm2.sh` puts the SmolLM2 GGUF: `$PEFTLAB_CACHE/smollm2/...` if
/// `PEFTLAB_CACHE` is set, else `${XDG_CACHE_HOME:-$HOME/.cache}/peftlab/smollm2/...`.
pub fn smollm2_default_path() -> PathBuf {
    let non_empty = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty());
    let cache = match non_empty("PEFTLAB_CACHE") {
        Some(c) => PathBuf::from(c),
        None => non_empty("XDG_CACHE_HOME")
            .map(PathBuf::from)
            .or_else(|| dirs::home_dir().map(|h| h.join(".cache")))
            .unwrap_or_else(|| PathBuf::from(".cache"))
            .join("peftlab"),
    };
    cache.join("smollm2").join(SMOLLM2_FILE)
}

/// The SmolLM2 GGUF used by tests and examples: the path in `PEFTLAB_SMOLLM2` if set (whether
/// or not it exists, so that a wrong setting is noticed), else [`smollm2_default_path`] if that
/// file exists, else `None` (fetch it with `scripts/get-smollm2.sh`).
pub fn find_smollm2() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("PEFTLAB_SMOLLM2").filter(|v| !v.is_empty()) {
        return Some(PathBuf::from(p));
    }
    let p = smollm2_default_path();
    p.is_file().then_some(p)
}

/// Errors from reading a GGUF file, dequantising its tensors or mapping it onto a Llama model.
#[derive(Debug, thiserror::Error)]
pub enum GgufError {
    /// The file could not be opened or memory-mapped.
    #[error("gguf: cannot read '{path}': {source}")]
    Io {
        /// The path that was opened.
        path: PathBuf,
        /// The underlying I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The file does not start with the bytes `GGUF`.
    #[error("gguf: not a GGUF file (first bytes {found:?}, expected \"GGUF\")")]
    BadMagic {
        /// The first (up to four) bytes of the file.
        found: Vec<u8>,
    },
    /// The GGUF version is not 2 or 3.
    #[error("gguf: unsupported GGUF version {version} (supported: 2, 3){hint}")]
    UnsupportedVersion {
        /// The version number read from the file.
        version: u32,
        /// Extra explanation (e.g. a big-endian file), or empty.
        hint: String,
    },
    /// An offset or size read from the file points past its end.
    #[error("gguf: file truncated: {what} needs bytes up to offset {offset}, but the file has only {file_len} bytes")]
    Truncated {
        /// What was being read (e.g. `metadata key 3`, `data of tensor 'blk.0.attn_q.weight'`).
        what: String,
        /// The end offset that was needed.
        offset: u64,
        /// The length of the file.
        file_len: u64,
    },
    /// A tensor has a ggml type id that this reader does not know.
    #[error("gguf: tensor '{tensor}' has unknown ggml type id {type_id}")]
    UnknownType {
        /// The tensor's name.
        tensor: String,
        /// The type id read from the file.
        type_id: u32,
    },
    /// A tensor has a known ggml type that cannot be dequantised yet.
    #[error("gguf: tensor '{tensor}' has type {ty}, which peftlab cannot dequantise (supported: {supported})")]
    UnsupportedType {
        /// The tensor's name.
        tensor: String,
        /// The ggml type name (e.g. `IQ2_XXS`).
        ty: &'static str,
        /// The types that can be dequantised, comma-separated.
        supported: String,
    },
    /// A metadata value has an unknown GGUF value type id.
    #[error("gguf: metadata '{key}' has unknown value type id {type_id} (valid: 0..=12)")]
    UnknownValueType {
        /// The metadata key.
        key: String,
        /// The value type id read from the file.
        type_id: u32,
    },
    /// `general.architecture` names a model family that is not supported.
    #[error("gguf: unsupported architecture '{arch}' (supported: {})", supported.join(", "))]
    UnsupportedArch {
        /// The architecture read from `general.architecture`.
        arch: String,
        /// The supported architectures.
        supported: Vec<String>,
    },
    /// A required metadata key is absent.
    #[error("gguf: missing metadata key '{key}' (expected {expected})")]
    MissingKey {
        /// The key.
        key: String,
        /// The expected value type.
        expected: &'static str,
    },
    /// A metadata key has a value of the wrong type.
    #[error("gguf: metadata '{key}' has type {found}, expected {expected}")]
    WrongType {
        /// The key.
        key: String,
        /// The expected value type.
        expected: &'static str,
        /// The type found in the file.
        found: String,
    },
    /// A tensor that the mapping needs is absent from the file.
    #[error("gguf: missing tensor '{name}'")]
    MissingTensor {
        /// The (GGUF or Hugging Face) tensor name.
        name: String,
    },
    /// A Hugging Face tensor name was asked for that this model does not have.
    #[error("gguf: unknown tensor '{name}' (this model has {count} tensors, e.g. {example})")]
    UnknownTensor {
        /// The requested name.
        name: String,
        /// How many mapped tensors the model has.
        count: usize,
        /// One valid name, for orientation.
        example: String,
    },
    /// A structural problem in the file (bad alignment, duplicate key, shape mismatch...).
    #[error("gguf: invalid {what}: {reason}")]
    Invalid {
        /// What is invalid.
        what: String,
        /// Why.
        reason: String,
    },
    /// The tokenizer described by `tokenizer.ggml.*` could not be built.
    #[error("gguf: tokenizer: {0}")]
    Tokenizer(String),
    /// The tokenizers library failed on the GGUF vocabulary.
    #[error("gguf: tokenizer: {context}: {source}")]
    TokenizerLib {
        /// What was being done.
        context: &'static str,
        /// The library's error.
        #[source]
        source: tokenizers::Error,
    },
}

impl GgufError {
    /// Shorthand for [`GgufError::Invalid`].
    pub(crate) fn invalid(what: impl Into<String>, reason: impl Into<String>) -> Self {
        GgufError::Invalid {
            what: what.into(),
            reason: reason.into(),
        }
    }

    /// Fills in the tensor name of errors raised by [`dequantize`], which does not know it.
    pub fn for_tensor(self, name: &str) -> Self {
        match self {
            GgufError::UnsupportedType { ty, supported, .. } => GgufError::UnsupportedType {
                tensor: name.to_owned(),
                ty,
                supported,
            },
            GgufError::Invalid { what, reason } => GgufError::Invalid {
                what: format!("{what} of tensor '{name}'"),
                reason,
            },
            other => other,
        }
    }
}

/// A GGUF Llama model file, opened and memory-mapped, with typed metadata and tensor infos.
///
/// Names and shapes are exposed in Hugging Face Llama layout (`model.layers.N.self_attn.q_proj.weight`,
/// `[out, in]`), so that the same loader code serves safetensors checkpoints and GGUF files.
#[derive(Debug)]
pub struct GgufModel {
    file: GgufFile,
    map: llama::LlamaMapping,
}

impl GgufModel {
    /// Opens a GGUF file, parses header, metadata and tensor infos, and checks that it is a
    /// supported architecture (see [`SUPPORTED_ARCHITECTURES`]) with the tensors a Llama needs.
    pub fn open(path: &Path) -> Result<Self, GgufError> {
        let file = GgufFile::open(path)?;
        Self::from_file(file)
    }

    /// Wraps an already parsed file (e.g. from [`GgufFile::from_bytes`]).
    pub fn from_file(file: GgufFile) -> Result<Self, GgufError> {
        let map = llama::LlamaMapping::new(&file)?;
        Ok(GgufModel { file, map })
    }

    /// The underlying parsed file (raw GGUF names, types and offsets).
    pub fn file(&self) -> &GgufFile {
        &self.file
    }

    /// The metadata key/value pairs.
    pub fn metadata(&self) -> &Metadata {
        self.file.metadata()
    }

    /// An HF-style `config.json` for `LlamaForCausalLM`, built from the `llama.*` metadata.
    pub fn hf_config(&self) -> Result<serde_json::Value, GgufError> {
        llama::hf_config(&self.file, &self.map)
    }

    /// The Hugging Face names of all tensors, in file order.
    pub fn hf_tensor_names(&self) -> Vec<String> {
        self.map.hf_names()
    }

    /// The Hugging Face shape (`[out, in]` for matrices) of a tensor, or `None` if unknown.
    pub fn hf_shape(&self, hf_name: &str) -> Option<Vec<usize>> {
        self.map.hf_shape(&self.file, hf_name)
    }

    /// The GGUF tensor name behind a Hugging Face name (e.g. `blk.0.attn_q.weight`).
    pub fn gguf_name(&self, hf_name: &str) -> Option<&str> {
        self.map.gguf_name(hf_name)
    }

    /// Dequantises one tensor to `f32` in Hugging Face layout (row-major `[out, in]`), with the
    /// rotary Q/K row permutation of llama.cpp's converter undone.
    pub fn read_hf_tensor_f32(&self, hf_name: &str) -> Result<Vec<f32>, GgufError> {
        self.map.read_hf_tensor_f32(&self.file, hf_name)
    }

    /// The tokenizer described by the `tokenizer.ggml.*` metadata.
    pub fn tokenizer(&self) -> Result<GgufTokenizer, GgufError> {
        GgufTokenizer::from_metadata(self.file.metadata())
    }

    /// The Jinja chat template from `tokenizer.chat_template`, if the file has one.
    pub fn chat_template(&self) -> Option<String> {
        self.file
            .metadata()
            .get_str("tokenizer.chat_template")
            .ok()
            .map(str::to_owned)
    }
}
