//! LLM.int8() (Dettmers et al. 2022, arXiv:2208.07339) as bitsandbytes 0.50 runs
//! `Linear8bitLt(threshold=t, has_fp16_weights=False)` forward (`MatMul8bitLt.forward` with the
//! `int8_vectorwise_quant`, `int8_mixed_scaled_mm`, `int8_scaled_mm` and `int8_mm_dequant` ops):
//!
//! 1. The input `A` (`[m, k]`, any float dtype) is cast to float16. With `t > 0`, every element
//!    with `|a| ≥ t` is an outlier and the columns holding one are the outlier columns; outlier
//!    elements are zeroed before the row statistics are taken.
//! 2. `row_stats = max |a|` per row, `CA = round_half_even(a * (127 * (1 / row_stats)))` in
//!    float32 (a zero row gives codes 0), and the outlier columns of `CA` are set to 0.
//! 3. `acc = CA @ CBᵀ` exactly in int32 (`CB`: the weight's row-wise int8 codes, `SCB` their row
//!    absmax), then `out = (acc * (row_stats ⊗ SCB)) * 6.200124e-05` in float32, plus the bias
//!    (in `A`'s dtype), cast to `A`'s dtype.
//! 4. The outlier part in `A`'s dtype: `out += A[:, cols] @ dequant(CB[:, cols])ᵀ`, with the
//!    dequantised weight columns `(q * SCB) * (1/127)` cast to `A`'s dtype first; torch's CPU
//!    `addmm` accumulates in float32 and rounds once.
//!
//! [`llm_int8_reference`] is that computation on the host, element by element (the test oracle
//! and the documentation of the semantics); [`llm_int8_linear`] is the same on any burn backend
//! with tensor ops, what a model's `quant: "int8"` layers run. Both are checked against
//! bitsandbytes' output on a fixture (`tests/fixtures/quant/gen_llm_int8.py`).

use burn::tensor::backend::Backend;
use burn::tensor::{FloatDType, Tensor};
use half::f16;

use super::int8::{QuantizedInt8, INV_127};
use super::linear::QuantWeight;
use super::QuantError;

/// `1 / (127 * 127)` as bitsandbytes writes it in `int8_mm_dequant`.
const INV_127_SQ: f32 = 6.200124e-05;

/// The vector-wise int8 quantisation of activations (`int8_vectorwise_quant(A.half(), t)`).
#[derive(Debug, Clone, PartialEq)]
pub struct ActivationCodes {
    /// One int8 code per element, row-major; outlier columns hold 0.
    pub codes: Vec<i8>,
    /// The float16 absmax of each row after zeroing outliers, as float32.
    pub row_stats: Vec<f32>,
    /// The columns holding an element with `|a| ≥ threshold`, ascending.
    pub outlier_cols: Vec<usize>,
}

/// Quantises `x` (`[rows, cols]`, row-major) as `int8_vectorwise_quant(x.half(), threshold)`.
pub fn vectorwise_quant(x: &[f32], cols: usize, threshold: f32) -> ActivationCodes {
    let cols = cols.max(1);
    let mut a: Vec<f32> = x.iter().map(|&v| f16::from_f32(v).to_f32()).collect();
    let mut is_outlier_col = vec![false; cols];
    if threshold > 0.0 {
        for row in a.chunks_mut(cols) {
            for (j, v) in row.iter_mut().enumerate() {
                if v.abs() >= threshold {
                    is_outlier_col[j] = true;
                    *v = 0.0;
                }
            }
        }
    }
    let mut codes = vec![0i8; a.len()];
    let mut row_stats = Vec::with_capacity(a.len() / cols);
    for (row, out) in a.chunks(cols).zip(codes.chunks_mut(cols)) {
        let rs = row.iter().fold(0.0f32, |m, &v| m.max(v.abs()));
        row_stats.push(rs);
        if rs == 0.0 {
            continue;
        }
        let scale = (1.0f32 / rs) * 127.0;
        for ((c, &v), &outlier) in out.iter_mut().zip(row).zip(&is_outlier_col) {
            if !outlier {
                *c = (v * scale).round_ties_even().clamp(-127.0, 127.0) as i8;
            }
        }
    }
    let outlier_cols = (0..cols).filter(|&j| is_outlier_col[j]).collect();
    ActivationCodes {
        codes,
        row_stats,
        outlier_cols,
    }
}

/// Rounds to float16 when `half`, else keeps float32.
fn to_dtype(v: f32, half: bool) -> f32 {
    if half {
        f16::from_f32(v).to_f32()
    } else {
        v
    }
}

/// `Linear8bitLt` forward on the host: `x` is `[rows, in]` row-major in float16 (`half`, values
/// given as float32) or float32, `w` the row-wise int8 weight `[out, in]`, `bias` `[out]`.
/// Returns `[rows, out]` in the input's dtype (float16 values as float32). See the module docs.
pub fn llm_int8_reference(
    x: &[f32],
    w: &QuantizedInt8,
    bias: Option<&[f32]>,
    threshold: f32,
    half: bool,
) -> Result<Vec<f32>, QuantError> {
    w.check()?;
    let (n_out, k) = match w.shape.as_slice() {
        [o, i] => (*o, *i),
        s => {
            return Err(QuantError::NotMatrix {
                func: "llm_int8_reference",
                shape: s.to_vec(),
            })
        }
    };
    if k == 0 || !x.len().is_multiple_of(k) || bias.is_some_and(|b| b.len() != n_out) {
        return Err(QuantError::Inconsistent {
            func: "llm_int8_reference",
            what: format!(
                "input of {} values, weight {:?}, bias of {:?} values",
                x.len(),
                w.shape,
                bias.map(<[f32]>::len)
            ),
        });
    }
    let rows = x.len() / k;
    let x: Vec<f32> = x.iter().map(|&v| to_dtype(v, half)).collect();
    let act = vectorwise_quant(&x, k, threshold);
    let mut out = vec![0.0f32; rows * n_out];
    for r in 0..rows {
        let ca = &act.codes[r * k..(r + 1) * k];
        for o in 0..n_out {
            let cb = &w.q[o * k..(o + 1) * k];
            let acc: i32 = ca
                .iter()
                .zip(cb)
                .map(|(&a, &b)| i32::from(a) * i32::from(b))
                .sum();
            let mut v = (acc as f32 * (act.row_stats[r] * w.row_absmax[o])) * INV_127_SQ;
            if let Some(b) = bias {
                v += to_dtype(b[o], half);
            }
            let v = to_dtype(v, half);
            let sub: f32 = act
                .outlier_cols
                .iter()
                .map(|&j| {
                    let wj = to_dtype(
                        (f32::from(w.q[o * k + j]) * w.row_absmax[o]) * INV_127,
                        half,
                    );
                    x[r * k + j] * wj
                })
                .sum();
            out[r * n_out + o] = if act.outlier_cols.is_empty() {
                v
            } else {
                to_dtype(v + sub, half)
            };
        }
    }
    Ok(out)
}

/// `y = x @ Wᵀ (+ bias)` for an int8 weight as LLM.int8 with the outlier `threshold`, with
/// tensor ops on any backend; `x` is `[m, in]` in the compute dtype, the result `[m, out]` in
/// the same dtype. A weight that is not int8 falls back to the dequantised matmul.
pub fn llm_int8_linear<B: Backend>(
    x: Tensor<B, 2>,
    w: &QuantWeight<B>,
    threshold: f32,
    bias: Option<Tensor<B, 1>>,
) -> Tensor<B, 2> {
    let Some((cb, scb)) = w.int8_parts() else {
        let wd = w.dequantize_as(x.dtype());
        let y = x.matmul(wd.transpose());
        return match bias {
            Some(b) => {
                let n = b.dims()[0];
                let dt = y.dtype();
                y + b.cast(dt).reshape([1, n])
            }
            None => y,
        };
    };
    let dtype = x.dtype();
    let [m, k] = x.dims();
    let n = w.out_features();
    let x32 = x.cast(FloatDType::F32);
    let a16 = x32.clone().cast(FloatDType::F16).cast(FloatDType::F32);
    let (a, cols) = if threshold > 0.0 {
        let mask = a16.clone().abs().greater_equal_elem(threshold);
        let cols = mask.clone().any_dim(0);
        (a16.mask_fill(mask, 0.0), Some(cols))
    } else {
        (a16, None)
    };
    let row_stats = a.clone().abs().max_dim(1);
    let scale = row_stats.clone().recip().mul_scalar(127.0);
    let mut ca = (a * scale).round();
    // A zero row: 0 * inf is NaN, which bitsandbytes' int8 cast turns into 0.
    ca = ca.mask_fill(row_stats.clone().equal_elem(0.0).expand([m, k]), 0.0);
    if let Some(c) = &cols {
        ca = ca.mask_fill(c.clone().expand([m, k]), 0.0);
    }
    // Integer-valued float32 products; exact while every partial sum stays below 2^24
    // (bitsandbytes' own CPU fallback multiplies in float32 too).
    let acc = ca.matmul(cb.clone().transpose());
    let stats = row_stats * scb.clone().reshape([1, n]);
    let mut out = (acc * stats).mul_scalar(INV_127_SQ);
    if let Some(b) = bias {
        out = out + b.cast(dtype).cast(FloatDType::F32).reshape([1, n]);
    }
    let out = out.cast(dtype);
    let Some(cols) = cols else {
        return out;
    };
    let idx = cols.reshape([k]).argwhere();
    let n_cols = idx.dims()[0];
    if n_cols == 0 {
        return out;
    }
    let idx = idx.reshape([n_cols]);
    let sub_a = x32.select(1, idx.clone());
    let sub_b = (cb.select(1, idx) * scb.reshape([n, 1]))
        .mul_scalar(INV_127)
        .cast(dtype)
        .cast(FloatDType::F32);
    let sub = sub_a.matmul(sub_b.transpose());
    (out.cast(FloatDType::F32) + sub).cast(dtype)
}
