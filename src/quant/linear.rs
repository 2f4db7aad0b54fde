//! Frozen (quantised or dense) linear weights on a burn backend, dequantised on the fly.
//!
//! A [`QuantWeight`] holds one `[out, in]` weight in one of three forms:
//! - host ([`Storage::Host`]): the bitsandbytes layout in host memory, dequantised by the
//!   parallel CPU kernel (`Quantized4bit::dequantize_into`) into a fresh tensor on each use; the
//!   right choice for CPU backends, where "device" memory is host memory;
//! - device ([`Storage::Device`]): packed codes as a `u8` int tensor (int8 codes as `i8`), scales
//!   as float tensors, dequantised with portable tensor ops (shift, and, table `select`, block
//!   scaling), so it runs on every backend;
//! - dense: a float tensor in its storage dtype (f32 / bf16 / f16), for `quant: "none"`.
//!
//! Both quantised forms give bit-identical weights (the same float32 products as
//! bitsandbytes' dequantisation). [`QuantWeight::forward`] computes `x @ Wᵀ` through
//! [`super::QuantOps::quant_linear`], which under autodiff keeps only the quantised weight for the
//! backward pass (see `backend.rs`). Which layers to quantise follows QLoRA: the linear layers of
//! the transformer blocks; embeddings, norms and the output head stay dense (the caller decides).

use std::sync::Arc;

use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{
    DType, Element, ElementConversion, FloatDType, Int, IntDType, Tensor, TensorData,
};

use super::fourbit::{quantize_4bit, Absmax, Quantized4bit};
use super::int8::{quantize_int8, QuantizedInt8, INV_127};
use super::tables::DOUBLE_QUANT_BLOCK_SIZE;
use super::{check_input, QuantConfig, QuantError, QuantKind};

/// Where a quantised weight is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Storage {
    /// Host memory, bitsandbytes layout; dequantised by the CPU kernel.
    Host,
    /// Backend tensors; dequantised with tensor ops on the device.
    Device,
}

/// Device-resident absmax statistics.
#[derive(Debug, Clone)]
enum DeviceAbsmax<B: Backend> {
    Plain(Tensor<B, 1>),
    Double {
        /// u8 codes, padded with zeros to a multiple of 256.
        absmax_q: Tensor<B, 1, Int>,
        /// The 256-entry dynamic map.
        code2: Tensor<B, 1>,
        /// One scale per 256 codes.
        state2: Tensor<B, 1>,
        offset: f32,
    },
}

#[derive(Debug, Clone)]
enum Repr<B: Backend> {
    Host4(Arc<Quantized4bit>),
    HostInt8(Arc<QuantizedInt8>),
    Device4 {
        /// u8, two codes per byte, padded with zeros to whole blocks.
        packed: Tensor<B, 1, Int>,
        /// The 16-entry table.
        code: Tensor<B, 1>,
        absmax: DeviceAbsmax<B>,
    },
    DeviceInt8 {
        /// i8 `[out, in]`.
        q: Tensor<B, 2, Int>,
        /// f32 `[out]`.
        row_absmax: Tensor<B, 1>,
    },
    Dense(Tensor<B, 2>),
}

/// A frozen linear weight `[out, in]`: quantised (nf4/fp4/int8) or dense. See the module docs.
#[derive(Debug, Clone)]
pub struct QuantWeight<B: Backend> {
    repr: Repr<B>,
    device: B::Device,
    shape: [usize; 2],
    kind: QuantKind,
    block_size: usize,
    double_quant: bool,
    /// LLM.int8's outlier threshold (kind `Int8`; 0 for every other kind).
    int8_threshold: f32,
    /// Bytes in bitsandbytes' accounting (see [`QuantWeight::bytes`]).
    bytes: usize,
}

fn u8_tensor<B: Backend>(data: Vec<u8>, device: &B::Device) -> Tensor<B, 1, Int> {
    let n = data.len();
    Tensor::from_data(TensorData::new(data, [n]), (device, DType::U8))
}

fn f32_tensor<B: Backend>(data: Vec<f32>, device: &B::Device) -> Tensor<B, 1> {
    let n = data.len();
    Tensor::from_data(TensorData::new(data, [n]), (device, DType::F32))
}

fn matrix_shape(func: &'static str, shape: &[usize]) -> Result<[usize; 2], QuantError> {
    match shape {
        [o, i] => Ok([*o, *i]),
        _ => Err(QuantError::NotMatrix {
            func,
            shape: shape.to_vec(),
        }),
    }
}

impl<B: Backend> QuantWeight<B> {
    /// Wraps a 4-bit quantised `[out, in]` weight, stored as `storage` on `device`.
    pub fn from_4bit(
        q: Quantized4bit,
        device: &B::Device,
        storage: Storage,
    ) -> Result<Self, QuantError> {
        let shape = matrix_shape("QuantWeight::from_4bit", &q.shape)?;
        q.check()?;
        let (kind, block_size, bytes) = (q.kind, q.block_size, q.bytes());
        let double_quant = matches!(q.absmax, Absmax::Double(_));
        let repr = match storage {
            Storage::Host => Repr::Host4(Arc::new(q)),
            Storage::Device => {
                let padded = q.n_blocks() * block_size / 2;
                let mut packed = q.packed;
                packed.resize(padded, 0);
                let absmax = match q.absmax {
                    Absmax::Plain(v) => DeviceAbsmax::Plain(f32_tensor(v, device)),
                    Absmax::Double(d) => {
                        let mut codes = d.absmax_q;
                        let n2 = d.state2_absmax.len();
                        codes.resize(n2 * DOUBLE_QUANT_BLOCK_SIZE, 0);
                        DeviceAbsmax::Double {
                            absmax_q: u8_tensor(codes, device),
                            code2: f32_tensor(d.state2_code.to_vec(), device),
                            state2: f32_tensor(d.state2_absmax, device),
                            offset: d.offset,
                        }
                    }
                };
                Repr::Device4 {
                    packed: u8_tensor(packed, device),
                    code: f32_tensor(q.code.to_vec(), device),
                    absmax,
                }
            }
        };
        let device = device.clone();
        Ok(QuantWeight {
            repr,
            device,
            shape,
            kind,
            block_size,
            double_quant,
            int8_threshold: 0.0,
            bytes,
        })
    }

    /// Wraps an int8 row-wise quantised `[out, in]` weight, stored as `storage` on `device`, as a
    /// weight-only int8 layer ([`QuantWeight::llm_int8`] makes it LLM.int8).
    pub fn from_int8(
        q: QuantizedInt8,
        device: &B::Device,
        storage: Storage,
    ) -> Result<Self, QuantError> {
        let shape = matrix_shape("QuantWeight::from_int8", &q.shape)?;
        q.check()?;
        let bytes = q.bytes();
        let repr = match storage {
            Storage::Host => Repr::HostInt8(Arc::new(q)),
            Storage::Device => {
                let codes: Vec<i8> = q.q;
                Repr::DeviceInt8 {
                    q: Tensor::from_data(TensorData::new(codes, shape), (device, DType::I8)),
                    row_absmax: f32_tensor(q.row_absmax, device),
                }
            }
        };
        let (kind, block_size, double_quant) = (QuantKind::Int8Weight, 0, false);
        let device = device.clone();
        Ok(QuantWeight {
            repr,
            device,
            shape,
            kind,
            block_size,
            double_quant,
            int8_threshold: 0.0,
            bytes,
        })
    }

    /// This int8 weight run as LLM.int8 with the outlier `threshold` (see
    /// [`super::llm_int8`]); other kinds are returned unchanged.
    pub fn llm_int8(mut self, threshold: f32) -> Self {
        if self.kind.is_int8() {
            self.kind = QuantKind::Int8;
            self.int8_threshold = threshold;
        }
        self
    }

    /// LLM.int8's outlier threshold when this weight runs as LLM.int8.
    pub fn llm_int8_threshold(&self) -> Option<f32> {
        (self.kind == QuantKind::Int8).then_some(self.int8_threshold)
    }

    /// New float32 values `data` (row-major, this weight's `[out, in]` shape) quantised the way
    /// this weight is: same kind, block size, double quantisation and storage, as PEFT
    /// re-quantises a bitsandbytes layer after merging into it. A dense weight gives a dense
    /// float32 weight.
    pub fn requantize(&self, data: &[f32]) -> Result<Self, QuantError> {
        let block_size = if self.block_size == 0 {
            QuantConfig::DEFAULT_BLOCK_SIZE
        } else {
            self.block_size
        };
        let cfg = QuantConfig::new(self.kind)
            .with_block_size(block_size)
            .with_double_quant(self.double_quant)
            .with_int8_threshold(self.int8_threshold);
        Self::quantize_with(
            data,
            self.shape,
            &cfg,
            &self.device,
            self.storage(),
            FloatDType::F32,
        )
    }

    /// The weight itself when it is dense (not quantised), in its storage dtype.
    pub fn as_dense(&self) -> Option<&Tensor<B, 2>> {
        match &self.repr {
            Repr::Dense(w) => Some(w),
            _ => None,
        }
    }

    /// Wraps a dense `[out, in]` weight (any float dtype; kept as is).
    pub fn dense(weight: Tensor<B, 2>) -> Self {
        let shape = weight.dims();
        let bytes = shape[0] * shape[1] * weight.dtype().size();
        let device = weight.device();
        let repr = Repr::Dense(weight);
        QuantWeight {
            repr,
            device,
            shape,
            kind: QuantKind::None,
            block_size: 0,
            double_quant: false,
            int8_threshold: 0.0,
            bytes,
        }
    }

    /// Quantises a float32 `[out, in]` weight given in row-major order (one tensor at a time,
    /// as a model loader reads it). `none` gives a dense tensor of `dense_dtype`.
    pub fn quantize_with(
        data: &[f32],
        shape: [usize; 2],
        cfg: &QuantConfig,
        device: &B::Device,
        storage: Storage,
        dense_dtype: FloatDType,
    ) -> Result<Self, QuantError> {
        cfg.validate()?;
        match cfg.kind {
            QuantKind::Nf4 | QuantKind::Fp4 => {
                Self::from_4bit(quantize_4bit(data, &shape, cfg)?, device, storage)
            }
            QuantKind::Int8 => Ok(
                Self::from_int8(quantize_int8(data, &shape)?, device, storage)?
                    .llm_int8(cfg.int8_threshold),
            ),
            QuantKind::Int8Weight => Self::from_int8(quantize_int8(data, &shape)?, device, storage),
            QuantKind::None => {
                check_input("quantize", data, &shape)?;
                let t = TensorData::new(data.to_vec(), shape);
                Ok(Self::dense(Tensor::from_data(
                    t,
                    (device, DType::from(dense_dtype)),
                )))
            }
        }
    }

    /// `[out, in]`.
    pub fn shape(&self) -> [usize; 2] {
        self.shape
    }

    /// Output features (rows of the weight).
    pub fn out_features(&self) -> usize {
        self.shape[0]
    }

    /// Input features (columns of the weight).
    pub fn in_features(&self) -> usize {
        self.shape[1]
    }

    /// The quantisation kind (`None` for dense weights).
    pub fn kind(&self) -> QuantKind {
        self.kind
    }

    /// Block size of nf4/fp4 weights (0 otherwise).
    pub fn block_size(&self) -> usize {
        self.block_size
    }

    /// True for double-quantised nf4/fp4 weights.
    pub fn double_quant(&self) -> bool {
        self.double_quant
    }

    /// Where the weight is kept (`Device` for dense weights).
    pub fn storage(&self) -> Storage {
        match self.repr {
            Repr::Host4(_) | Repr::HostInt8(_) => Storage::Host,
            _ => Storage::Device,
        }
    }

    /// The device tensors are created on.
    pub fn device(&self) -> B::Device {
        self.device.clone()
    }

    /// Number of parameters (`out * in`).
    pub fn num_params(&self) -> usize {
        self.shape[0] * self.shape[1]
    }

    /// Stored bytes as bitsandbytes counts them: nf4/fp4 `ceil(n/2)` packed bytes plus float32
    /// absmax per block (or, double-quantised, a byte per block, a float32 per 256 blocks and the
    /// float32 offset); int8 one byte per element plus a float32 per row; dense `n * dtype size`.
    /// The constant code tables (64 and 1024 bytes) are not counted.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Stored bits per parameter (`8 * bytes / params`).
    pub fn bits_per_param(&self) -> f64 {
        8.0 * self.bytes as f64 / self.num_params().max(1) as f64
    }

    /// The dequantised weight `[out, in]` as float32 (dense weights: converted to float32).
    pub fn dequantize(&self) -> Tensor<B, 2> {
        self.dequantize_as(DType::F32)
    }

    /// The dequantised weight `[out, in]` in `dtype` (dequantisation itself is in float32, as in
    /// bitsandbytes, then cast).
    pub fn dequantize_as(&self, dtype: DType) -> Tensor<B, 2> {
        let w = match &self.repr {
            Repr::Dense(w) => w.clone(),
            Repr::Host4(q) => self.host_tensor(|out| q.dequantize_into(out)),
            Repr::HostInt8(q) => self.host_tensor(|out| q.dequantize_into(out)),
            Repr::Device4 {
                packed,
                code,
                absmax,
            } => self.device_4bit(packed, code, absmax),
            Repr::DeviceInt8 { q, row_absmax } => {
                let [out, _] = self.shape;
                let q = q.clone().cast(FloatDType::F32);
                (q * row_absmax.clone().reshape([out, 1])).mul_scalar(INV_127)
            }
        };
        w.cast(dtype)
    }

    /// The int8 codes as float32 `[out, in]` (integer values) and the row absmax `[out]`, or
    /// `None` for other kinds.
    pub(crate) fn int8_parts(&self) -> Option<(Tensor<B, 2>, Tensor<B, 1>)> {
        match &self.repr {
            Repr::HostInt8(q) => {
                let codes: Vec<f32> = q.q.iter().map(|&c| f32::from(c)).collect();
                let t = Tensor::from_data(
                    TensorData::new(codes, self.shape),
                    (&self.device, DType::F32),
                );
                Some((t, f32_tensor(q.row_absmax.clone(), &self.device)))
            }
            Repr::DeviceInt8 { q, row_absmax } => {
                Some((q.clone().cast(FloatDType::F32), row_absmax.clone()))
            }
            _ => None,
        }
    }

    fn host_tensor(&self, fill: impl FnOnce(&mut [f32]) -> Result<(), QuantError>) -> Tensor<B, 2> {
        let mut buf = vec![0.0f32; self.num_params()];
        // The constructors checked the parts, so `fill` cannot fail; a failure would leave
        // zeros, and the consistency check is repeated in the kernels' own tests.
        if let Err(e) = fill(&mut buf) {
            debug_assert!(false, "dequantisation of a checked weight failed: {e}");
        }
        Tensor::from_data(TensorData::new(buf, self.shape), (&self.device, DType::F32))
    }

    fn device_4bit(
        &self,
        packed: &Tensor<B, 1, Int>,
        code: &Tensor<B, 1>,
        absmax: &DeviceAbsmax<B>,
    ) -> Tensor<B, 2> {
        let [out, inp] = self.shape;
        let n = out * inp;
        let bs = self.block_size;
        let n_blocks = n.div_ceil(bs);
        let int_dtype = IntDType::from(<B::IntElem as Element>::dtype());
        let hi = packed.clone().bitwise_right_shift_scalar(4.elem());
        let lo = packed.clone().bitwise_and_scalar(15.elem());
        // [bytes, 2] -> one code per element, the high nibble first.
        let idx = Tensor::stack::<2>(vec![hi, lo], 1)
            .reshape([n_blocks * bs])
            .cast(int_dtype);
        let values = code.clone().select(0, idx).reshape([n_blocks, bs]);
        let scales = match absmax {
            DeviceAbsmax::Plain(a) => a.clone(),
            DeviceAbsmax::Double {
                absmax_q,
                code2,
                state2,
                offset,
            } => {
                let n2 = state2.dims()[0];
                let q = absmax_q.clone().cast(int_dtype);
                let v = code2
                    .clone()
                    .select(0, q)
                    .reshape([n2, DOUBLE_QUANT_BLOCK_SIZE]);
                let v = v * state2.clone().reshape([n2, 1]);
                v.reshape([n2 * DOUBLE_QUANT_BLOCK_SIZE])
                    .slice(0..n_blocks)
                    .add_scalar(*offset)
            }
        };
        let w = values * scales.reshape([n_blocks, 1]);
        w.reshape([n_blocks * bs]).slice(0..n).reshape([out, inp])
    }

    /// Moves the weight's tensors to `device`.
    pub fn to_device(self, device: &B::Device) -> Self {
        let repr = match self.repr {
            Repr::Dense(w) => Repr::Dense(w.to_device(device)),
            Repr::Device4 {
                packed,
                code,
                absmax,
            } => Repr::Device4 {
                packed: packed.to_device(device),
                code: code.to_device(device),
                absmax: match absmax {
                    DeviceAbsmax::Plain(a) => DeviceAbsmax::Plain(a.to_device(device)),
                    DeviceAbsmax::Double {
                        absmax_q,
                        code2,
                        state2,
                        offset,
                    } => DeviceAbsmax::Double {
                        absmax_q: absmax_q.to_device(device),
                        code2: code2.to_device(device),
                        state2: state2.to_device(device),
                        offset,
                    },
                },
            },
            Repr::DeviceInt8 { q, row_absmax } => Repr::DeviceInt8 {
                q: q.to_device(device),
                row_absmax: row_absmax.to_device(device),
            },
            host => host,
        };
        QuantWeight {
            repr,
            device: device.clone(),
            ..self
        }
    }
}

impl<B: AutodiffBackend> QuantWeight<B> {
    /// The same weight on the inner (non-autodiff) backend; shares every buffer.
    pub fn inner(&self) -> QuantWeight<B::InnerBackend> {
        let repr = match &self.repr {
            Repr::Host4(q) => Repr::Host4(q.clone()),
            Repr::HostInt8(q) => Repr::HostInt8(q.clone()),
            Repr::Dense(w) => Repr::Dense(w.clone().inner()),
            Repr::Device4 {
                packed,
                code,
                absmax,
            } => Repr::Device4 {
                packed: packed.clone().inner(),
                code: code.clone().inner(),
                absmax: match absmax {
                    DeviceAbsmax::Plain(a) => DeviceAbsmax::Plain(a.clone().inner()),
                    DeviceAbsmax::Double {
                        absmax_q,
                        code2,
                        state2,
                        offset,
                    } => DeviceAbsmax::Double {
                        absmax_q: absmax_q.clone().inner(),
                        code2: code2.clone().inner(),
                        state2: state2.clone().inner(),
                        offset: *offset,
                    },
                },
            },
            Repr::DeviceInt8 { q, row_absmax } => Repr::DeviceInt8 {
                q: q.clone().inner(),
                row_absmax: row_absmax.clone().inner(),
            },
        };
        QuantWeight {
            repr,
            device: self.device.clone(),
            shape: self.shape,
            kind: self.kind,
            block_size: self.block_size,
            double_quant: self.double_quant,
            int8_threshold: self.int8_threshold,
            bytes: self.bytes,
        }
    }

    /// Wraps a weight of the inner backend (the inverse of [`QuantWeight::inner`]).
    pub fn from_inner(w: QuantWeight<B::InnerBackend>) -> Self {
        let repr = match w.repr {
            Repr::Host4(q) => Repr::Host4(q),
            Repr::HostInt8(q) => Repr::HostInt8(q),
            Repr::Dense(t) => Repr::Dense(Tensor::from_inner(t)),
            Repr::Device4 {
                packed,
                code,
                absmax,
            } => Repr::Device4 {
                packed: Tensor::from_inner(packed),
                code: Tensor::from_inner(code),
                absmax: match absmax {
                    DeviceAbsmax::Plain(a) => DeviceAbsmax::Plain(Tensor::from_inner(a)),
                    DeviceAbsmax::Double {
                        absmax_q,
                        code2,
                        state2,
                        offset,
                    } => DeviceAbsmax::Double {
                        absmax_q: Tensor::from_inner(absmax_q),
                        code2: Tensor::from_inner(code2),
                        state2: Tensor::from_inner(state2),
                        offset,
                    },
                },
            },
            Repr::DeviceInt8 { q, row_absmax } => Repr::DeviceInt8 {
                q: Tensor::from_inner(q),
                row_absmax: Tensor::from_inner(row_absmax),
            },
        };
        QuantWeight {
            repr,
            device: w.device,
            shape: w.shape,
            kind: w.kind,
            block_size: w.block_size,
            double_quant: w.double_quant,
            int8_threshold: w.int8_threshold,
            bytes: w.bytes,
        }
    }
}
