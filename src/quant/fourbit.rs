//! Blockwise 4-bit quantisation (NF4 / FP4) with optional double quantisation, bit-exact with
//! `bitsandbytes.functional.quantize_4bit` / `dequantize_4bit` (0.50, CPU).
//!
//! Quantisation (torch kernel `quantize_4bit` of `backends/default/ops.py`), over the flattened
//! row-major tensor:
//! - full blocks: `absmax = max |x|` (stored unclamped), `s = clamp(x * (1 / max(absmax,
//!   1e-38)), -1, 1)`;
//! - a last block shorter than the block size: `absmax = max(max |x|, 1e-38)` (stored clamped)
//!   and `s = clamp(x / absmax, -1, 1)` (a true division);
//! - an odd element count is padded with one `s = 0`;
//! - code = `torch.bucketize(s, midpoints of the sorted table)` mapped back through the stable
//!   argsort (identity for NF4), so a value on a midpoint takes the lower entry;
//! - two codes per byte, the first element in the high nibble.
//!
//! Double quantisation (`compress_statistics=True`): `offset = absmax.mean()` (torch float32
//! cascade sum, see `tables::torch_mean_f32`), then `absmax - offset` goes through the 8-bit
//! blockwise quantiser with blocks of 256 (`blockwise8`). Dequantised absmax:
//! `state2_code[q] * state2_absmax[j] + offset`.
//!
//! Dequantisation: `code[nibble] * absmax[block]` in float32.

use rayon::prelude::*;

use super::blockwise8::quantize_blockwise8;
use super::tables::DOUBLE_QUANT_BLOCK_SIZE;
use super::tables::{dynamic_map, fp4_code, nf4_code, torch_mean_f32, Buckets4};
use super::{check_input, QuantConfig, QuantError, QuantKind};

/// Double-quantised absmax statistics (bitsandbytes `QuantState.state2` layout).
#[derive(Debug, Clone, PartialEq)]
pub struct DoubleQuant {
    /// One 8-bit code per 4-bit block (index into `state2_code`).
    pub absmax_q: Vec<u8>,
    /// Mean of the absmax values, subtracted before quantising them.
    pub offset: f32,
    /// One float32 scale per 256 absmax codes.
    pub state2_absmax: Vec<f32>,
    /// The dynamic 8-bit map (`create_dynamic_map(signed=True)`).
    pub state2_code: [f32; 256],
}

impl DoubleQuant {
    /// The absmax values as the dequantiser sees them: `code[q] * state2_absmax[j] + offset`.
    pub fn absmax_values(&self) -> Vec<f32> {
        self.absmax_q
            .chunks(DOUBLE_QUANT_BLOCK_SIZE)
            .zip(&self.state2_absmax)
            .flat_map(|(qs, &s2)| qs.iter().map(move |&q| self.state2_code[q as usize] * s2))
            .map(|v| v + self.offset)
            .collect()
    }
}

/// Per-block scales of a 4-bit tensor: plain float32, or double-quantised.
#[derive(Debug, Clone, PartialEq)]
pub enum Absmax {
    /// One float32 absmax per block.
    Plain(Vec<f32>),
    /// Double-quantised absmax.
    Double(Box<DoubleQuant>),
}

impl Absmax {
    /// Number of blocks described.
    pub fn len(&self) -> usize {
        match self {
            Absmax::Plain(v) => v.len(),
            Absmax::Double(d) => d.absmax_q.len(),
        }
    }

    /// True if there are no blocks.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The float32 absmax per block as used by the dequantiser.
    pub fn values(&self) -> Vec<f32> {
        match self {
            Absmax::Plain(v) => v.clone(),
            Absmax::Double(d) => d.absmax_values(),
        }
    }

    /// Bytes bitsandbytes stores for the statistics (the constant 256-entry map not counted).
    pub fn bytes(&self) -> usize {
        match self {
            Absmax::Plain(v) => 4 * v.len(),
            Absmax::Double(d) => d.absmax_q.len() + 4 * d.state2_absmax.len() + 4,
        }
    }
}

/// A 4-bit quantised tensor in the bitsandbytes layout.
#[derive(Debug, Clone, PartialEq)]
pub struct Quantized4bit {
    /// [`QuantKind::Nf4`] or [`QuantKind::Fp4`].
    pub kind: QuantKind,
    /// Two codes per byte, first element in the high nibble; `ceil(n / 2)` bytes.
    pub packed: Vec<u8>,
    /// Per-block scales.
    pub absmax: Absmax,
    /// The 16-entry table of `kind`.
    pub code: [f32; 16],
    /// Shape of the original tensor (row-major).
    pub shape: Vec<usize>,
    /// Elements per block.
    pub block_size: usize,
}

/// The table for a 4-bit kind.
fn code_for(kind: QuantKind) -> Result<[f32; 16], QuantError> {
    match kind {
        QuantKind::Nf4 => Ok(nf4_code()),
        QuantKind::Fp4 => Ok(fp4_code()),
        other => Err(QuantError::KindNotSupported {
            func: "quantize_4bit",
            kind: other,
            expected: "nf4, fp4",
        }),
    }
}

/// Quantises one block into `codes` (one code per element); returns the stored absmax.
fn quantize_block(block: &[f32], is_tail: bool, buckets: &Buckets4, codes: &mut [u8]) -> f32 {
    let am = block.iter().fold(0.0f32, |m, &x| m.max(x.abs()));
    let tiny = 1e-38f64 as f32;
    if is_tail {
        let am = am.max(tiny);
        for (c, &x) in codes.iter_mut().zip(block) {
            *c = buckets.index((x / am).clamp(-1.0, 1.0));
        }
        am
    } else {
        let inv = 1.0f32 / am.max(tiny);
        for (c, &x) in codes.iter_mut().zip(block) {
            *c = buckets.index((x * inv).clamp(-1.0, 1.0));
        }
        am
    }
}

/// Quantises a tensor to NF4 or FP4 (see the module header for the exact rules).
///
/// `shape` is the tensor's shape (any rank; blocks run over the flattened data). Errors: kind not
/// nf4/fp4, bad block size, shape/data mismatch, empty tensor, NaN or infinite values.
pub fn quantize_4bit(
    data: &[f32],
    shape: &[usize],
    cfg: &QuantConfig,
) -> Result<Quantized4bit, QuantError> {
    let code = code_for(cfg.kind)?;
    cfg.validate()?;
    let n = check_input("quantize", data, shape)?;
    let bs = cfg.block_size;
    let buckets = Buckets4::new(&code);
    let full = n / bs;
    let n_blocks = n.div_ceil(bs);

    // One code per element (plus one padding code for an odd count), blocks in parallel.
    let mut codes = vec![0u8; n + (n % 2)];
    let mut absmax = vec![0.0f32; n_blocks];
    codes[..n]
        .par_chunks_mut(bs)
        .zip(data.par_chunks(bs))
        .zip(absmax.par_iter_mut())
        .enumerate()
        .for_each(|(b, ((c, x), am))| *am = quantize_block(x, b >= full, &buckets, c));
    if n % 2 == 1 {
        codes[n] = buckets.index(0.0);
    }
    let packed: Vec<u8> = codes.par_chunks(2).map(|p| (p[0] << 4) | p[1]).collect();

    let absmax = if cfg.double_quant {
        Absmax::Double(Box::new(double_quantize(&absmax)?))
    } else {
        Absmax::Plain(absmax)
    };
    Ok(Quantized4bit {
        kind: cfg.kind,
        packed,
        absmax,
        code,
        shape: shape.to_vec(),
        block_size: bs,
    })
}

/// Double quantisation of the absmax values (bitsandbytes `compress_statistics=True`).
pub(crate) fn double_quantize(absmax: &[f32]) -> Result<DoubleQuant, QuantError> {
    let offset = torch_mean_f32(absmax);
    let centred: Vec<f32> = absmax.iter().map(|&a| a - offset).collect();
    let q = quantize_blockwise8(&centred, DOUBLE_QUANT_BLOCK_SIZE)?;
    Ok(DoubleQuant {
        absmax_q: q.codes,
        offset,
        state2_absmax: q.absmax,
        state2_code: *dynamic_map(),
    })
}

/// Dequantises to a new float32 vector (row-major, `shape`'s element count).
pub fn dequantize_4bit(q: &Quantized4bit) -> Result<Vec<f32>, QuantError> {
    let mut out = vec![0.0f32; q.numel()];
    q.dequantize_into(&mut out)?;
    Ok(out)
}

impl Quantized4bit {
    /// Number of elements of the original tensor.
    pub fn numel(&self) -> usize {
        self.shape.iter().product()
    }

    /// Number of absmax blocks.
    pub fn n_blocks(&self) -> usize {
        self.numel().div_ceil(self.block_size.max(1))
    }

    /// The float32 absmax per block as the dequantiser uses it.
    pub fn absmax_values(&self) -> Vec<f32> {
        self.absmax.values()
    }

    /// Checks that the parts fit together (lengths of codes, absmax, second-level scales).
    pub fn check(&self) -> Result<(), QuantError> {
        let func = "dequantize_4bit";
        let n = self.numel();
        let bad = |what: String| Err(QuantError::Inconsistent { func, what });
        if self.block_size < 2 || !self.block_size.is_multiple_of(2) {
            return bad(format!(
                "block size {} is not an even number >= 2",
                self.block_size
            ));
        }
        let (n_packed, n_blocks) = (self.packed.len(), self.n_blocks());
        if n_packed != n.div_ceil(2) {
            return bad(format!(
                "{n} elements need {} packed bytes, found {n_packed}",
                n.div_ceil(2)
            ));
        }
        if self.absmax.len() != n_blocks {
            let found = self.absmax.len();
            return bad(format!(
                "{n_blocks} blocks need as many absmax values, found {found}"
            ));
        }
        if let Absmax::Double(d) = &self.absmax {
            let need = d.absmax_q.len().div_ceil(DOUBLE_QUANT_BLOCK_SIZE);
            let found = d.state2_absmax.len();
            if found != need {
                return bad(format!("{need} second-level scales needed, found {found}"));
            }
        }
        Ok(())
    }

    /// Dequantises into `out` (length = element count), in parallel over block ranges.
    /// This is the CPU hot path of every forward through a quantised linear layer.
    pub fn dequantize_into(&self, out: &mut [f32]) -> Result<(), QuantError> {
        self.check()?;
        let n = self.numel();
        if out.len() != n {
            return Err(QuantError::OutputLength {
                func: "dequantize_into",
                expected: n,
                got: out.len(),
            });
        }
        let absmax = self.absmax.values();
        let bs = self.block_size;
        let half = bs / 2;
        let code = &self.code;
        // Several blocks per task keep the scheduling overhead small.
        let per_task = (16384 / bs).max(1);
        out.par_chunks_mut(bs * per_task)
            .zip(self.packed.par_chunks(half * per_task))
            .zip(absmax.par_chunks(per_task))
            .for_each(|((o, p), am)| {
                for ((ob, pb), &a) in o.chunks_mut(bs).zip(p.chunks(half)).zip(am) {
                    let table: [f32; 16] = std::array::from_fn(|i| code[i] * a);
                    let mut pairs = ob.chunks_exact_mut(2);
                    for (pair, &byte) in (&mut pairs).zip(pb) {
                        pair[0] = table[(byte >> 4) as usize];
                        pair[1] = table[(byte & 15) as usize];
                    }
                    if let ([last], Some(&byte)) = (pairs.into_remainder(), pb.last()) {
                        *last = table[(byte >> 4) as usize];
                    }
                }
            });
        Ok(())
    }

    /// Dequantises to a new vector.
    pub fn dequantize(&self) -> Result<Vec<f32>, QuantError> {
        dequantize_4bit(self)
    }

    /// Bytes bitsandbytes stores for this tensor: packed codes plus statistics (float32 absmax;
    /// or u8 codes + float32 per 256 blocks + the float32 offset). The constant 16- and
    /// 256-entry tables are shared by all tensors and not counted.
    pub fn bytes(&self) -> usize {
        self.packed.len() + self.absmax.bytes()
    }

    /// Stored bits per parameter (`8 * bytes / numel`).
    pub fn bits_per_param(&self) -> f64 {
        8.0 * self.bytes() as f64 / self.numel().max(1) as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(kind: QuantKind, bs: usize, dq: bool) -> QuantConfig {
        QuantConfig::new(kind)
            .with_block_size(bs)
            .with_double_quant(dq)
    }

    #[test]
    fn hand_checked_nf4_block() {
        // One block of 64: absmax 2, so s = x / 2 (multiplication by 0.5 is exact).
        // x = 2 -> s = 1 -> code 15; x = -2 -> 0; x = 0 -> 7; x = 0.2 -> s = 0.1, nearest NF4
        // entry 0.0796 (code 8; midpoint to 0.1609 is 0.1203); x = -1.0 -> s = -0.5, nearest
        // -0.5251 (code 2; midpoint to -0.3949 is -0.4600).
        let mut x = vec![0.0f32; 64];
        x[0] = 2.0;
        x[1] = -2.0;
        x[3] = 0.2;
        x[4] = -1.0;
        let q = quantize_4bit(&x, &[64], &cfg(QuantKind::Nf4, 64, false)).unwrap();
        assert_eq!(&q.packed[..3], &[0xF0, 0x78, 0x27]);
        assert_eq!(q.absmax, Absmax::Plain(vec![2.0]));
        let d = q.dequantize().unwrap();
        assert_eq!(d[0], 2.0);
        assert_eq!(d[3], 0.079_580_3 * 2.0);
        assert_eq!(d[4], -0.525_073_05 * 2.0);
        assert_eq!((q.bytes(), q.bits_per_param()), (36, 4.5));
    }

    #[test]
    fn odd_count_and_tail_block() {
        // 5 elements, block 32: a single (tail) block of 5; padding nibble = code of 0 (7).
        let x = [1.0f32, -0.5, 0.25, 0.0, 0.75];
        let q = quantize_4bit(&x, &[5], &cfg(QuantKind::Nf4, 32, false)).unwrap();
        assert_eq!(q.packed.len(), 3);
        assert_eq!(q.packed[2] & 0x0F, 7);
        let d = q.dequantize().unwrap();
        assert_eq!(d.len(), 5);
        assert_eq!(d[0], 1.0);
        // All-zero tail block: absmax is clamped to 1e-38 (stored), codes are the zero code.
        let q = quantize_4bit(&[0.0; 40], &[40], &cfg(QuantKind::Nf4, 32, false)).unwrap();
        assert_eq!(q.absmax, Absmax::Plain(vec![0.0, 1e-38f64 as f32]));
        assert!(q.packed.iter().all(|&b| b == 0x77));
        assert!(q.dequantize().unwrap().iter().all(|&v| v == 0.0));
    }

    #[test]
    fn errors() {
        let x = [1.0f32; 64];
        let e = quantize_4bit(&x, &[64], &cfg(QuantKind::Int8, 64, false)).unwrap_err();
        assert_eq!(
            e.to_string(),
            "quantize_4bit: kind 'int8' is not supported here (expected one of: nf4, fp4)"
        );
        let e = quantize_4bit(&x, &[64], &cfg(QuantKind::Nf4, 100, false)).unwrap_err();
        assert_eq!(e, QuantError::BlockSize(100));
        assert!(quantize_4bit(&x, &[8, 9], &cfg(QuantKind::Nf4, 64, false)).is_err());
        let mut y = x;
        y[7] = f32::NEG_INFINITY;
        let e = quantize_4bit(&y, &[64], &cfg(QuantKind::Fp4, 64, false)).unwrap_err();
        assert_eq!(e.to_string(), "quantize: element 7 is not finite (-inf)");
        let mut q = quantize_4bit(&x, &[64], &cfg(QuantKind::Nf4, 64, false)).unwrap();
        let mut out = vec![0.0; 63];
        assert!(q.dequantize_into(&mut out).is_err());
        q.packed.pop();
        assert!(q.dequantize().is_err());
    }

    #[test]
    fn parallel_dequant_matches_serial_formula() {
        // Larger than one rayon task (16384 elements) with a tail: compare with the plain formula.
        let n = 40_000 + 17;
        let x: Vec<f32> = (0..n)
            .map(|i| ((i * 7919) % 1000) as f32 / 1000.0 - 0.5)
            .collect();
        for (kind, dq) in [(QuantKind::Nf4, false), (QuantKind::Fp4, true)] {
            let q = quantize_4bit(&x, &[n], &cfg(kind, 64, dq)).unwrap();
            let am = q.absmax_values();
            let fast = q.dequantize().unwrap();
            for (i, &v) in fast.iter().enumerate() {
                let byte = q.packed[i / 2];
                let nib = if i % 2 == 0 { byte >> 4 } else { byte & 15 };
                assert_eq!(v, q.code[nib as usize] * am[i / 64], "element {i}");
            }
        }
    }
}
