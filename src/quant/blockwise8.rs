//! Blockwise 8-bit quantisation with the dynamic map, as the bitsandbytes CPU kernel computes it
//! (`quantize_cpu_impl` / `dequantizeBlockwise8bitCpu` in `csrc/cpu_ops.cpp`, 0.50).
//!
//! Per block: `absmax = max |x|` (stored as is; an all-zero block stores 0 and codes 0),
//! `inv = 1 / absmax`, and code `lut[bin(x * inv)]` where `bin` maps [-1, 1] to 65536 bins and the
//! table holds the nearest dynamic-map entry per bin (see `tables::dynamic_lut`). A last block
//! shorter than the block size is handled like the others. Dequantisation is
//! `code[q] * absmax[block]` in float32. Double quantisation uses this with blocks of 256.

use super::tables::{dynamic_lut, dynamic_map, lut_bin};
use super::QuantError;

/// An 8-bit blockwise-quantised vector (dynamic map).
#[derive(Debug, Clone, PartialEq)]
pub struct Blockwise8 {
    /// One code per element (index into [`dynamic_map`]).
    pub codes: Vec<u8>,
    /// One float32 absmax per block.
    pub absmax: Vec<f32>,
    /// Elements per block.
    pub block_size: usize,
}

/// Quantises `data` in blocks of `block_size` with the dynamic 8-bit map.
/// The values must be finite (callers check); `block_size` must be positive.
pub fn quantize_blockwise8(data: &[f32], block_size: usize) -> Result<Blockwise8, QuantError> {
    if block_size == 0 {
        return Err(QuantError::BlockSize(0));
    }
    if let Some((index, &value)) = data.iter().enumerate().find(|(_, v)| !v.is_finite()) {
        return Err(QuantError::NonFinite {
            func: "quantize_blockwise8",
            index,
            value,
        });
    }
    let lut = dynamic_lut();
    let mut codes = vec![0u8; data.len()];
    let mut absmax = Vec::with_capacity(data.len().div_ceil(block_size));
    for (block, out) in data.chunks(block_size).zip(codes.chunks_mut(block_size)) {
        let am = block.iter().fold(0.0f32, |m, &x| m.max(x.abs()));
        absmax.push(am);
        if am == 0.0 {
            continue; // codes stay 0, as in bitsandbytes
        }
        let inv = 1.0f32 / am;
        for (o, &x) in out.iter_mut().zip(block) {
            *o = lut[lut_bin(x * inv)];
        }
    }
    Ok(Blockwise8 {
        codes,
        absmax,
        block_size,
    })
}

/// Dequantises a [`Blockwise8`]: `code[q] * absmax[block]` in float32.
pub fn dequantize_blockwise8(q: &Blockwise8) -> Result<Vec<f32>, QuantError> {
    let expected_blocks = q.codes.len().div_ceil(q.block_size.max(1));
    if q.block_size == 0 || q.absmax.len() != expected_blocks {
        return Err(QuantError::Inconsistent {
            func: "dequantize_blockwise8",
            what: format!(
                "{} codes in blocks of {} need {} absmax values, found {}",
                q.codes.len(),
                q.block_size,
                expected_blocks,
                q.absmax.len()
            ),
        });
    }
    let code = dynamic_map();
    let mut out = Vec::with_capacity(q.codes.len());
    for (block, &am) in q.codes.chunks(q.block_size).zip(&q.absmax) {
        out.extend(block.iter().map(|&c| code[c as usize] * am));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_block_and_tail() {
        // 300 values in blocks of 256: a full block and a tail of 44; the tail is all zero.
        let mut data: Vec<f32> = (0..300)
            .map(|i| ((i * 37) % 101) as f32 / 50.0 - 1.0)
            .collect();
        data[256..].fill(0.0);
        let q = quantize_blockwise8(&data, 256).unwrap();
        assert_eq!(q.absmax.len(), 2);
        assert_eq!(q.absmax[1], 0.0);
        assert!(q.codes[256..].iter().all(|&c| c == 0));
        // The block maximum maps to the top code (1.0), its negative to code 0 (-0.99296875).
        let imax = data[..256].iter().map(|x| x.abs()).enumerate();
        let (i, _) = imax.fold((0, 0.0f32), |b, (i, v)| if v > b.1 { (i, v) } else { b });
        assert_eq!(q.codes[i], if data[i] > 0.0 { 255 } else { 0 });
        let deq = dequantize_blockwise8(&q).unwrap();
        assert!(deq[256..].iter().all(|&x| x == 0.0));
        // The dynamic map's relative step is at most ~1.4% near 1 (linspace of 65 points):
        // every value is within 1% of the block absmax.
        for (a, b) in data[..256].iter().zip(&deq[..256]) {
            assert!((a - b).abs() <= 0.01 * q.absmax[0], "{a} vs {b}");
        }
    }

    #[test]
    fn rejects_bad_input() {
        assert!(quantize_blockwise8(&[1.0, f32::INFINITY], 256).is_err());
        assert!(quantize_blockwise8(&[1.0], 0).is_err());
        let bad = Blockwise8 {
            codes: vec![0; 10],
            absmax: vec![],
            block_size: 4,
        };
        assert!(dequantize_blockwise8(&bad).is_err());
    }
}
