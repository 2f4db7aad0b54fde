//! LLM.int8 row-wise absmax quantisation (Dettmers et al. 2022, arXiv:2208.07339), bit-exact with
//! `bitsandbytes.functional.int8_vectorwise_quant(W.half())` (0.50, threshold 0), which is what
//! `Linear8bitLt` / `Int8Params` store for a weight.
//!
//! - The weight is first rounded to float16 (round to nearest even), as bitsandbytes does.
//! - `row_absmax = max |w16|` per row (a float16 value, kept as float32).
//! - `q = round_half_even(w16 * (127 * (1 / row_absmax)))` in float32: torch evaluates
//!   `127.0 / row_stats` as `row_stats.reciprocal() * 127.0`, and that order of roundings decides
//!   exact ties (checked against the fixture, where the plain division gives three different codes).
//! - An all-zero row stores absmax 0 and codes 0 (bitsandbytes computes 0 * inf = NaN and casts it
//!   to 0 on x86).
//! - Dequantisation (`int8_vectorwise_dequant`): `(q * row_absmax) * 7.874015718698502e-3`.
//!
//! Activations are not quantised here: the forward pass dequantises the weight (bitsandbytes'
//! int8 matmul also quantises the activations row-wise).

use half::f16;

use super::{check_input, QuantError};

/// `1/127` as bitsandbytes writes it in `int8_vectorwise_dequant`, converted to float32.
pub(crate) const INV_127: f32 = 7.874_015_718_698_502e-3_f64 as f32;

/// A row-wise int8 quantised matrix.
#[derive(Debug, Clone, PartialEq)]
pub struct QuantizedInt8 {
    /// One int8 code per element, row-major.
    pub q: Vec<i8>,
    /// One float32 absmax per row (float16-representable).
    pub row_absmax: Vec<f32>,
    /// Shape of the original tensor; rows = product of all but the last dimension.
    pub shape: Vec<usize>,
}

/// Quantises a tensor row-wise to int8 (rows = all but the last dimension, as bitsandbytes).
/// Errors: shape/data mismatch, empty, NaN/inf, or values that overflow float16.
pub fn quantize_int8(data: &[f32], shape: &[usize]) -> Result<QuantizedInt8, QuantError> {
    let n = check_input("quantize", data, shape)?;
    let cols = shape.last().copied().unwrap_or(n).max(1);
    let mut q = vec![0i8; n];
    let mut row_absmax = Vec::with_capacity(n / cols);
    let mut row16 = vec![0.0f32; cols];
    for (r, (row, qrow)) in data.chunks(cols).zip(q.chunks_mut(cols)).enumerate() {
        for (j, (dst, &x)) in row16.iter_mut().zip(row).enumerate() {
            let h = f16::from_f32(x);
            if !h.is_finite() {
                return Err(QuantError::F16Overflow {
                    index: r * cols + j,
                    value: x,
                });
            }
            *dst = h.to_f32();
        }
        let am = row16.iter().fold(0.0f32, |m, &x| m.max(x.abs()));
        row_absmax.push(am);
        if am == 0.0 {
            continue;
        }
        let scale = (1.0f32 / am) * 127.0;
        for (c, &x) in qrow.iter_mut().zip(&row16) {
            *c = (x * scale).round_ties_even().clamp(-127.0, 127.0) as i8;
        }
    }
    Ok(QuantizedInt8 {
        q,
        row_absmax,
        shape: shape.to_vec(),
    })
}

/// Dequantises to float32: `(q * row_absmax) * (1/127)`.
pub fn dequantize_int8(q: &QuantizedInt8) -> Result<Vec<f32>, QuantError> {
    let mut out = vec![0.0f32; q.q.len()];
    q.dequantize_into(&mut out)?;
    Ok(out)
}

impl QuantizedInt8 {
    /// Number of elements.
    pub fn numel(&self) -> usize {
        self.shape.iter().product()
    }

    /// Elements per row (the last dimension).
    pub fn cols(&self) -> usize {
        self.shape.last().copied().unwrap_or(0)
    }

    /// Checks the lengths of codes and row scales against the shape.
    pub fn check(&self) -> Result<(), QuantError> {
        let n = self.numel();
        let cols = self.cols();
        let rows = n.checked_div(cols).unwrap_or(0);
        if self.q.len() != n || self.row_absmax.len() != rows {
            return Err(QuantError::Inconsistent {
                func: "dequantize_int8",
                what: format!(
                    "shape {:?} needs {n} codes and {rows} row scales, found {} and {}",
                    self.shape,
                    self.q.len(),
                    self.row_absmax.len()
                ),
            });
        }
        Ok(())
    }

    /// Dequantises into `out` (length = element count), rows in parallel.
    pub fn dequantize_into(&self, out: &mut [f32]) -> Result<(), QuantError> {
        use rayon::prelude::*;
        self.check()?;
        if out.len() != self.q.len() {
            return Err(QuantError::OutputLength {
                func: "dequantize_into",
                expected: self.q.len(),
                got: out.len(),
            });
        }
        let cols = self.cols().max(1);
        out.par_chunks_mut(cols)
            .zip(self.q.par_chunks(cols))
            .zip(&self.row_absmax)
            .for_each(|((o, q), &s)| {
                for (d, &c) in o.iter_mut().zip(q) {
                    *d = (f32::from(c) * s) * INV_127;
                }
            });
        Ok(())
    }

    /// Dequantises to a new vector.
    pub fn dequantize(&self) -> Result<Vec<f32>, QuantError> {
        dequantize_int8(self)
    }

    /// Stored bytes: one per code plus a float32 per row.
    pub fn bytes(&self) -> usize {
        self.q.len() + 4 * self.row_absmax.len()
    }

    /// Stored bits per parameter.
    pub fn bits_per_param(&self) -> f64 {
        8.0 * self.bytes() as f64 / self.numel().max(1) as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hand_checked_rows() {
        // Row 0: absmax 2 (exact in f16): scale = 0.5 * 127 = 63.5; 1.0 -> 63.5 -> 64 (ties to
        // even), -1.0 -> -64, 2 -> 127, 0.5 -> 31.75 -> 32. Row 1 is all zero.
        let w = [1.0f32, -1.0, 2.0, 0.5, 0.0, 0.0, 0.0, 0.0];
        let q = quantize_int8(&w, &[2, 4]).unwrap();
        assert_eq!(q.q, vec![64, -64, 127, 32, 0, 0, 0, 0]);
        assert_eq!(q.row_absmax, vec![2.0, 0.0]);
        let d = q.dequantize().unwrap();
        assert_eq!(d[2], (127.0f32 * 2.0) * INV_127);
        assert!(d[4..].iter().all(|&v| v == 0.0));
        assert_eq!(q.bytes(), 8 + 8);
        // A value that is not float16-exact is rounded first: 0.1 -> 0.0999755859375.
        let q = quantize_int8(&[0.1f32], &[1]).unwrap();
        assert_eq!(q.row_absmax, vec![0.099_975_586]);
    }

    #[test]
    fn errors() {
        let e = quantize_int8(&[1.0, 70000.0], &[1, 2]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "quantize: int8 quantises the float16 copy of the weight, but element 1 (70000) \
             overflows float16 (max 65504)"
        );
        assert!(quantize_int8(&[1.0, f32::NAN], &[2]).is_err());
        assert!(quantize_int8(&[1.0; 6], &[4, 2]).is_err());
        let mut q = quantize_int8(&[1.0; 6], &[2, 3]).unwrap();
        q.row_absmax.pop();
        assert!(q.dequantize().is_err());
    }
}
