//! Weight quantisation for frozen base models: NF4 / FP4 with optional double quantisation,
//! LLM.int8 row-wise absmax int8, and the device-side quantised linear layer.
//!
//! The host side (this module and `tables`, `blockwise8`, `fourbit`, `int8`, `probe`) reproduces
//! bitsandbytes 0.50 bit for bit:
//! - `bitsandbytes.functional.quantize_4bit` / `dequantize_4bit` (the torch fallback kernel of
//!   `backends/default/ops.py`, which the CPU backend uses for 4-bit quantisation);
//! - the double quantisation of the absmax statistics (`compress_statistics=True`): the mean is
//!   subtracted and the rest goes through `quantize_blockwise` with blocks of 256 and the dynamic
//!   8-bit map, computed by the native CPU kernel `quantize_cpu_impl` in `csrc/cpu_ops.cpp`;
//! - `int8_vectorwise_quant` (LLM.int8, Dettmers et al. 2022, arXiv:2208.07339) of the float16
//!   copy of a weight, as `Linear8bitLt` does.
//!
//! References: Dettmers et al., "QLoRA: Efficient Finetuning of Quantized LLMs" (arXiv:2305.14314)
//! for NF4 and double quantisation; bitsandbytes-foundation/bitsandbytes 0.50.2 for the exact
//! arithmetic. Checked against `tests/fixtures/quant/*.safetensors`, produced by that library.
//!
//! The device side (`linear`, `backend`) stores the quantised weight on a burn backend and
//! dequantises on the fly in the forward pass; under autodiff a custom backward re-dequantises
//! instead of keeping the dense weight alive until `backward()`.

mod blockwise8;
mod fourbit;
mod int8;
mod linear;
mod llm_int8;
mod ops;
mod probe;
mod tables;

#[cfg(test)]
mod fixture_tests;
#[cfg(test)]
mod linear_tests;

pub use blockwise8::{dequantize_blockwise8, quantize_blockwise8, Blockwise8};
pub use fourbit::{dequantize_4bit, quantize_4bit, Absmax, DoubleQuant, Quantized4bit};
pub use int8::{dequantize_int8, quantize_int8, QuantizedInt8};
pub use linear::{QuantWeight, Storage};
pub use llm_int8::{llm_int8_linear, llm_int8_reference, vectorwise_quant, ActivationCodes};
pub(crate) use ops::impl_defaults_for_optional_backends;
pub use ops::QuantOps;
pub use probe::{quantize_probe, ProbeTensor, QuantProbe};
pub use tables::{dynamic_map, fp4_code, nf4_code, torch_mean_f32, DOUBLE_QUANT_BLOCK_SIZE};

use std::fmt;
use std::str::FromStr;

/// Errors of the quantisation module. Messages name the function and the offending value.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum QuantError {
    /// The quantisation kind is not one of the supported names.
    #[error("quantize: unknown kind '{0}' (expected one of: nf4, fp4, int8, int8_weight, none)")]
    UnknownKind(String),
    /// LLM.int8's outlier threshold is negative or not finite.
    #[error("quantize: int8_threshold must be a finite number >= 0 (got {0})")]
    Threshold(f32),
    /// The block size is not a power of two in 32..=4096.
    #[error("quantize: block_size must be a power of two in 32..=4096 (got {0})")]
    BlockSize(i64),
    /// The shape does not describe the data.
    #[error("{func}: shape {shape:?} has {expected} elements but the data has {got}")]
    ShapeMismatch {
        /// Function that saw the mismatch.
        func: &'static str,
        /// The shape given.
        shape: Vec<usize>,
        /// Number of elements the shape describes.
        expected: usize,
        /// Number of elements supplied.
        got: usize,
    },
    /// The tensor has no elements.
    #[error("{0}: the tensor is empty (shape {1:?})")]
    Empty(&'static str, Vec<usize>),
    /// An element is NaN or infinite.
    #[error("{func}: element {index} is not finite ({value})")]
    NonFinite {
        /// Function that saw the value.
        func: &'static str,
        /// Flat (row-major) index of the element.
        index: usize,
        /// The value.
        value: f32,
    },
    /// An element does not fit in float16, which int8 quantisation works on (as bitsandbytes).
    #[error(
        "quantize: int8 quantises the float16 copy of the weight, but element {index} ({value}) \
         overflows float16 (max 65504)"
    )]
    F16Overflow {
        /// Flat index of the element.
        index: usize,
        /// The value.
        value: f32,
    },
    /// The kind cannot be used by this function (e.g. probing `none`).
    #[error("{func}: kind '{kind}' is not supported here (expected one of: {expected})")]
    KindNotSupported {
        /// Function name.
        func: &'static str,
        /// The kind given.
        kind: QuantKind,
        /// The kinds that work.
        expected: &'static str,
    },
    /// An output buffer has the wrong length.
    #[error("{func}: output buffer has {got} elements, expected {expected}")]
    OutputLength {
        /// Function name.
        func: &'static str,
        /// Expected number of elements.
        expected: usize,
        /// Length of the buffer.
        got: usize,
    },
    /// A quantised weight is inconsistent (e.g. built by hand with wrong lengths).
    #[error("{func}: inconsistent quantised data: {what}")]
    Inconsistent {
        /// Function name.
        func: &'static str,
        /// What is wrong.
        what: String,
    },
    /// A quantised linear layer needs a 2-D weight `[out, in]`.
    #[error("{func}: a linear weight must be 2-D [out, in] (got shape {shape:?})")]
    NotMatrix {
        /// Function name.
        func: &'static str,
        /// The shape given.
        shape: Vec<usize>,
    },
}

/// Which quantisation a frozen base weight gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum QuantKind {
    /// 4-bit NormalFloat (QLoRA), blockwise absmax.
    Nf4,
    /// 4-bit float (1 sign, 2 exponent, 1 mantissa bit; bitsandbytes' table), blockwise absmax.
    Fp4,
    /// LLM.int8() (Dettmers et al. 2022) as bitsandbytes' `Linear8bitLt` runs it: row-wise
    /// absmax int8 weights; at run time the activations are quantised row-wise to int8 and the
    /// outlier columns (any |x| ≥ [`QuantConfig::int8_threshold`], 6.0 by default) are multiplied
    /// in 16-bit (float16 activations and dequantised weights) and added back.
    Int8,
    /// Weight-only int8: the LLM.int8 row-wise weight codes, dequantised to the compute dtype
    /// for a float matmul (no activation quantisation, no outlier decomposition).
    Int8Weight,
    /// No quantisation: the weight stays dense in the storage dtype.
    #[default]
    None,
}

impl QuantKind {
    /// All kinds, in the order error messages list them.
    pub const ALL: [QuantKind; 5] = [
        QuantKind::Nf4,
        QuantKind::Fp4,
        QuantKind::Int8,
        QuantKind::Int8Weight,
        QuantKind::None,
    ];

    /// The name used in scripts (`"nf4"`, `"fp4"`, `"int8"`, `"int8_weight"`, `"none"`).
    pub fn as_str(self) -> &'static str {
        match self {
            QuantKind::Nf4 => "nf4",
            QuantKind::Fp4 => "fp4",
            QuantKind::Int8 => "int8",
            QuantKind::Int8Weight => "int8_weight",
            QuantKind::None => "none",
        }
    }

    /// True for the row-wise int8 kinds (LLM.int8 and weight-only int8), which store the same
    /// codes.
    pub fn is_int8(self) -> bool {
        matches!(self, QuantKind::Int8 | QuantKind::Int8Weight)
    }

    /// What the kind computes, for `info()` and reports.
    pub fn scheme(self) -> &'static str {
        match self {
            QuantKind::Nf4 => "NF4 weights (blockwise absmax), dequantised for a 16/32-bit matmul",
            QuantKind::Fp4 => "FP4 weights (blockwise absmax), dequantised for a 16/32-bit matmul",
            QuantKind::Int8 => {
                "LLM.int8(): int8 row-wise weights and activations, outlier columns in 16-bit"
            }
            QuantKind::Int8Weight => {
                "weight-only int8 (row-wise codes dequantised for a float matmul)"
            }
            QuantKind::None => "none",
        }
    }

    /// True for the blockwise 4-bit kinds (nf4, fp4).
    pub fn is_4bit(self) -> bool {
        matches!(self, QuantKind::Nf4 | QuantKind::Fp4)
    }

    /// Parses a kind name (case-insensitive, surrounding blanks ignored).
    pub fn parse(name: &str) -> Result<Self, QuantError> {
        let lower = name.trim().to_ascii_lowercase();
        QuantKind::ALL
            .into_iter()
            .find(|k| k.as_str() == lower)
            .ok_or_else(|| QuantError::UnknownKind(name.to_string()))
    }
}

impl fmt::Display for QuantKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for QuantKind {
    type Err = QuantError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        QuantKind::parse(s)
    }
}

/// Settings for quantising one weight (or every linear layer of a model).
///
/// `block_size` and `double_quant` apply to nf4/fp4 only; int8 is row-wise and `none` keeps the
/// weight dense. The block size is still validated for every kind, so a bad option never passes
/// silently.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct QuantConfig {
    /// The quantisation kind.
    pub kind: QuantKind,
    /// Elements per absmax block (nf4/fp4); a power of two in 32..=4096, default 64.
    pub block_size: usize,
    /// Quantise the absmax statistics too (nf4/fp4; bitsandbytes' `compress_statistics`).
    pub double_quant: bool,
    /// LLM.int8's outlier threshold: activation columns holding any |x| ≥ this run in 16-bit
    /// (bitsandbytes' and transformers' `llm_int8_threshold`, default 6.0; 0 turns the
    /// decomposition off, leaving pure vector-wise int8).
    pub int8_threshold: f32,
}

impl Default for QuantConfig {
    fn default() -> Self {
        QuantConfig::new(QuantKind::None)
    }
}

impl QuantConfig {
    /// bitsandbytes' default block size for 4-bit quantisation.
    pub const DEFAULT_BLOCK_SIZE: usize = 64;
    /// bitsandbytes' and transformers' default LLM.int8 outlier threshold.
    pub const DEFAULT_INT8_THRESHOLD: f32 = 6.0;

    /// A config of the given kind with block size 64 and no double quantisation.
    pub fn new(kind: QuantKind) -> Self {
        QuantConfig {
            kind,
            block_size: Self::DEFAULT_BLOCK_SIZE,
            double_quant: false,
            int8_threshold: Self::DEFAULT_INT8_THRESHOLD,
        }
    }

    /// Builds and validates a config from script-level values.
    pub fn from_parts(kind: &str, block_size: i64, double_quant: bool) -> Result<Self, QuantError> {
        let kind = QuantKind::parse(kind)?;
        let block_size = check_block_size(block_size)?;
        Ok(QuantConfig {
            kind,
            block_size,
            double_quant,
            int8_threshold: Self::DEFAULT_INT8_THRESHOLD,
        })
    }

    /// Sets LLM.int8's outlier threshold (finite and ≥ 0; see [`QuantConfig::validate`]).
    pub fn with_int8_threshold(mut self, threshold: f32) -> Self {
        self.int8_threshold = threshold;
        self
    }

    /// Sets the block size (validated by [`QuantConfig::validate`]).
    pub fn with_block_size(mut self, block_size: usize) -> Self {
        self.block_size = block_size;
        self
    }

    /// Sets double quantisation.
    pub fn with_double_quant(mut self, double_quant: bool) -> Self {
        self.double_quant = double_quant;
        self
    }

    /// Checks the block size (a power of two in 32..=4096, as bitsandbytes requires) and the
    /// int8 threshold (finite, ≥ 0).
    pub fn validate(&self) -> Result<(), QuantError> {
        if !(self.int8_threshold.is_finite() && self.int8_threshold >= 0.0) {
            return Err(QuantError::Threshold(self.int8_threshold));
        }
        check_block_size(i64::try_from(self.block_size).unwrap_or(i64::MAX)).map(|_| ())
    }
}

/// Validates a block size: a power of two in 32..=4096 (bitsandbytes `quantize_4bit`).
pub fn check_block_size(block_size: i64) -> Result<usize, QuantError> {
    match usize::try_from(block_size) {
        Ok(bs) if (32..=4096).contains(&bs) && bs.is_power_of_two() => Ok(bs),
        _ => Err(QuantError::BlockSize(block_size)),
    }
}

/// QLoRA's choice of which checkpoint tensors to quantise: the 2-D `*_proj.weight` matrices of
/// the transformer blocks (Llama / Mistral / Qwen naming: `model.layers.N.self_attn.{q,k,v,o}_proj`,
/// `model.layers.N.mlp.{gate,up,down}_proj`). Embeddings, norms, biases and the output head
/// (`lm_head`) stay dense in the compute dtype.
pub fn quantizes_tensor(name: &str, shape: &[usize]) -> bool {
    shape.len() == 2 && name.ends_with("_proj.weight") && name.contains("layers.")
}

/// Checks that `shape` describes `len` elements, that it is non-empty, and that every value is
/// finite. Returns the element count.
pub(crate) fn check_input(
    func: &'static str,
    data: &[f32],
    shape: &[usize],
) -> Result<usize, QuantError> {
    let expected = shape.iter().try_fold(1usize, |acc, &d| acc.checked_mul(d));
    let expected = expected.unwrap_or(usize::MAX);
    if expected != data.len() {
        return Err(QuantError::ShapeMismatch {
            func,
            shape: shape.to_vec(),
            expected,
            got: data.len(),
        });
    }
    if data.is_empty() {
        return Err(QuantError::Empty(func, shape.to_vec()));
    }
    if let Some((index, &value)) = data.iter().enumerate().find(|(_, v)| !v.is_finite()) {
        return Err(QuantError::NonFinite { func, index, value });
    }
    Ok(expected)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kind_parsing_and_errors() {
        assert_eq!(QuantKind::parse("nf4"), Ok(QuantKind::Nf4));
        assert_eq!(QuantKind::parse(" FP4 "), Ok(QuantKind::Fp4));
        assert_eq!("int8".parse::<QuantKind>(), Ok(QuantKind::Int8));
        assert_eq!(QuantKind::parse("none"), Ok(QuantKind::None));
        let err = QuantKind::parse("nf3").unwrap_err();
        assert_eq!(
            err.to_string(),
            "quantize: unknown kind 'nf3' (expected one of: nf4, fp4, int8, int8_weight, none)"
        );
        assert!(QuantKind::Nf4.is_4bit() && QuantKind::Fp4.is_4bit());
        assert!(!QuantKind::Int8.is_4bit() && !QuantKind::None.is_4bit());
    }

    #[test]
    fn block_size_validation() {
        for ok in [32, 64, 128, 256, 512, 1024, 2048, 4096] {
            assert_eq!(check_block_size(ok), Ok(ok as usize));
        }
        for bad in [0, -64, 16, 31, 48, 100, 8192, 65] {
            let err = check_block_size(bad).unwrap_err();
            assert_eq!(
                err.to_string(),
                format!("quantize: block_size must be a power of two in 32..=4096 (got {bad})")
            );
        }
        assert!(QuantConfig::new(QuantKind::Nf4)
            .with_block_size(100)
            .validate()
            .is_err());
        assert!(QuantConfig::new(QuantKind::Nf4)
            .with_block_size(4096)
            .validate()
            .is_ok());
        let cfg = QuantConfig::from_parts("nf4", 128, true).unwrap();
        assert_eq!(
            (cfg.kind, cfg.block_size, cfg.double_quant),
            (QuantKind::Nf4, 128, true)
        );
        assert!(QuantConfig::from_parts("q4", 64, false).is_err());
    }

    #[test]
    fn which_tensors_are_quantised() {
        let m = [512, 512];
        assert!(quantizes_tensor(
            "model.layers.0.self_attn.q_proj.weight",
            &m
        ));
        assert!(quantizes_tensor(
            "model.layers.11.mlp.down_proj.weight",
            &[512, 1408]
        ));
        assert!(!quantizes_tensor(
            "model.layers.0.self_attn.q_proj.bias",
            &[512]
        ));
        assert!(!quantizes_tensor(
            "model.embed_tokens.weight",
            &[32000, 512]
        ));
        assert!(!quantizes_tensor("lm_head.weight", &[32000, 512]));
        assert!(!quantizes_tensor(
            "model.layers.0.input_layernorm.weight",
            &[512]
        ));
        assert!(!quantizes_tensor("model.norm.weight", &[512]));
    }

    #[test]
    fn input_checks() {
        let e = check_input("quantize", &[1.0, 2.0], &[3]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "quantize: shape [3] has 3 elements but the data has 2"
        );
        let e = check_input("quantize", &[], &[0, 4]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "quantize: the tensor is empty (shape [0, 4])"
        );
        let e = check_input("quantize", &[1.0, f32::NAN], &[2]).unwrap_err();
        assert_eq!(e.to_string(), "quantize: element 1 is not finite (NaN)");
        assert_eq!(check_input("quantize", &[1.0; 6], &[2, 3]), Ok(6));
    }
}
