//! Code tables of bitsandbytes and the float arithmetic needed to reproduce them exactly.
//!
//! - NF4: the 16 quantiles of N(0,1) from `bitsandbytes.functional.get_4bit_type("nf4")`
//!   (QLoRA, arXiv:2305.14314, Appendix E).
//! - FP4: `get_4bit_type("fp4")`: `[0, 0.0625, 8, 12, 4, 6, 2, 3, 0, -0.0625, -8, ...] / 12` in
//!   float32 (index 8 is +0.0: the Python list holds the integer `-0`).
//! - The signed dynamic 8-bit map `create_dynamic_map(signed=True, max_exponent_bits=7,
//!   total_bits=8)` (Dettmers 2015, arXiv:1511.04561). It is built from `torch.linspace(0.1, 1,
//!   n, dtype=float32)`, whose CPU kernel computes `start + step*i` (first half) and
//!   `end - step*(n-1-i)` (second half) with fused multiply-adds; reproduced with `mul_add`.
//! - [`torch_mean_f32`]: `Tensor.mean()` of a contiguous float32 CPU tensor, i.e. the cascade sum
//!   of `aten/src/ATen/native/cpu/SumKernel.cpp` (`row_sum` / `multi_row_sum`, 4-way ILP, 8-lane
//!   AVX2 vectors, float accumulators) divided by `n` in float32. bitsandbytes uses it for the
//!   double-quantisation offset.

use std::sync::OnceLock;

/// Block size of the second-level (absmax) quantisation in double quantisation.
pub const DOUBLE_QUANT_BLOCK_SIZE: usize = 256;

/// The NF4 table (bit-exact float32 values of bitsandbytes).
pub fn nf4_code() -> [f32; 16] {
    [
        -1.0,
        -0.696_192_8,
        -0.525_073_05,
        -0.394_917_5,
        -0.284_441_38,
        -0.184_773_43,
        -0.091_050_036,
        0.0,
        0.079_580_3,
        0.160_930_2,
        0.246_112_3,
        0.337_915_24,
        0.440_709_83,
        0.562_617,
        0.722_956_84,
        1.0,
    ]
}

/// The FP4 table in bit-pattern order, normalised by 12 in float32 as bitsandbytes does.
pub fn fp4_code() -> [f32; 16] {
    let raw: [f32; 16] = [
        0.0, 0.0625, 8.0, 12.0, 4.0, 6.0, 2.0, 3.0, 0.0, -0.0625, -8.0, -12.0, -4.0, -6.0, -2.0,
        -3.0,
    ];
    raw.map(|v| v / 12.0)
}

/// Decision data for the 4-bit "nearest code" search of bitsandbytes' torch kernel:
/// the table sorted by a stable argsort, the float32 midpoints `(s[i] + s[i+1]) / 2` and the
/// permutation back to code indices. A scaled value `x` gets code `order[#{bounds < x}]`
/// (`torch.bucketize(x, bounds, right=False)`): a value exactly on a midpoint takes the lower
/// entry.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Buckets4 {
    pub bounds: [f32; 15],
    pub order: [u8; 16],
}

impl Buckets4 {
    pub fn new(code: &[f32; 16]) -> Self {
        let mut order: [u8; 16] = std::array::from_fn(|i| i as u8);
        // Stable sort: equal entries (the two zeros of FP4) keep their index order.
        order.sort_by(|&a, &b| {
            code[a as usize]
                .total_cmp(&code[b as usize])
                .then(a.cmp(&b))
        });
        // total_cmp orders -0.0 before +0.0, but FP4 has no -0.0 and NF4 has a single zero.
        let sorted = order.map(|i| code[i as usize]);
        let bounds = std::array::from_fn(|i| (sorted[i] + sorted[i + 1]) / 2.0);
        Buckets4 { bounds, order }
    }

    /// Code index for a value already scaled and clamped to [-1, 1].
    #[inline]
    pub fn index(&self, x: f32) -> u8 {
        let pos = self.bounds.iter().filter(|&&b| b < x).count();
        self.order[pos]
    }
}

/// The signed dynamic 8-bit map of bitsandbytes (256 sorted float32 values in [-1, 1]).
pub fn dynamic_map() -> &'static [f32; 256] {
    static MAP: OnceLock<[f32; 256]> = OnceLock::new();
    MAP.get_or_init(build_dynamic_map)
}

fn torch_linspace_f32(start: f32, end: f32, steps: usize) -> Vec<f32> {
    let step = (end - start) / (steps as f32 - 1.0);
    let half = steps / 2;
    (0..steps)
        .map(|i| {
            if i < half {
                step.mul_add(i as f32, start)
            } else {
                (-step).mul_add((steps - i - 1) as f32, end)
            }
        })
        .collect()
}

fn build_dynamic_map() -> [f32; 256] {
    // Powers 10^(i-6), converted from f64 to f32 as torch converts a Python float scalar.
    const SCALES: [f64; 7] = [1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1.0];
    let mut data: Vec<f32> = Vec::with_capacity(256);
    for (i, &scale) in SCALES.iter().enumerate() {
        let items = (1usize << i) + 1;
        let b = torch_linspace_f32(0.1, 1.0, items);
        let s = scale as f32;
        for w in b.windows(2) {
            let mean = (w[0] + w[1]) / 2.0;
            data.push(s * mean);
            data.push(-(s * mean));
        }
    }
    data.push(0.0);
    data.push(1.0);
    data.sort_by(f32::total_cmp);
    let mut out = [0.0f32; 256];
    out.copy_from_slice(&data);
    out
}

/// 65536-entry lookup table from a normalised value to its dynamic-map code, built as the
/// bitsandbytes CPU kernel does (`build_quantize_lut` in `csrc/cpu_ops.cpp`): bin `i` stands for
/// `-1 + 2i/65535` and gets the first code whose upper midpoint `0.5*(c[j]+c[j+1])` is not below it.
pub(crate) fn dynamic_lut() -> &'static [u8] {
    static LUT: OnceLock<Vec<u8>> = OnceLock::new();
    LUT.get_or_init(|| {
        let code = dynamic_map();
        let mid: Vec<f32> = code.windows(2).map(|w| 0.5 * (w[0] + w[1])).collect();
        let mut lut = vec![0u8; 65536];
        let mut idx = 0usize;
        for (i, slot) in lut.iter_mut().enumerate() {
            let val = -1.0f32 + (2.0f32 * i as f32) / 65535.0f32;
            while idx < 255 && mid[idx] < val {
                idx += 1;
            }
            *slot = idx as u8;
        }
        lut
    })
}

/// Bin of a normalised value in [`dynamic_lut`] (`norm_to_lut_index` of bitsandbytes).
#[inline]
pub(crate) fn lut_bin(x: f32) -> usize {
    let v = x.clamp(-1.0, 1.0);
    ((v + 1.0) * 0.5 * 65535.0 + 0.5) as usize
}

const LANES: usize = 8;

trait Acc: Copy {
    fn zero() -> Self;
    fn add(self, other: Self) -> Self;
}

impl Acc for f32 {
    fn zero() -> Self {
        0.0
    }
    fn add(self, other: Self) -> Self {
        self + other
    }
}

impl Acc for [f32; LANES] {
    fn zero() -> Self {
        [0.0; LANES]
    }
    fn add(self, other: Self) -> Self {
        std::array::from_fn(|i| self[i] + other[i])
    }
}

fn ceil_log2(x: usize) -> usize {
    if x <= 1 {
        0
    } else {
        (usize::BITS - (x - 1).leading_zeros()) as usize
    }
}

/// `multi_row_sum` with 4 rows and 4 cascade levels.
fn multi_row_sum<T: Acc>(load: impl Fn(usize, usize) -> T, size: usize) -> [T; 4] {
    const LEVELS: usize = 4;
    let level_power = (ceil_log2(size) / LEVELS).max(4);
    let level_step = 1usize << level_power;
    let level_mask = level_step - 1;
    let mut acc = [[T::zero(); 4]; LEVELS];
    let mut i = 0usize;
    while i + level_step <= size {
        for _ in 0..level_step {
            for (k, a) in acc[0].iter_mut().enumerate() {
                *a = a.add(load(i, k));
            }
            i += 1;
        }
        for j in 1..LEVELS {
            let (lower, upper) = acc.split_at_mut(j);
            for (a, b) in upper[0].iter_mut().zip(lower[j - 1].iter_mut()) {
                *a = a.add(*b);
                *b = T::zero();
            }
            if i & (level_mask << (j * level_power)) != 0 {
                break;
            }
        }
    }
    while i < size {
        for (k, a) in acc[0].iter_mut().enumerate() {
            *a = a.add(load(i, k));
        }
        i += 1;
    }
    let (first, rest) = acc.split_at_mut(1);
    for level in rest.iter() {
        for (a, b) in first[0].iter_mut().zip(level) {
            *a = a.add(*b);
        }
    }
    acc[0]
}

/// `row_sum` with an ILP factor of 4 over `size` items given by `load`.
fn row_sum<T: Acc>(load: impl Fn(usize) -> T, size: usize) -> T {
    let size_ilp = size / 4;
    let mut partial = multi_row_sum(|i, k| load(i * 4 + k), size_ilp);
    for i in size_ilp * 4..size {
        partial[0] = partial[0].add(load(i));
    }
    for k in 1..4 {
        partial[0] = partial[0].add(partial[k]);
    }
    partial[0]
}

/// float32 sum as torch computes it on one CPU thread with AVX2 (see the module header).
pub(crate) fn torch_sum_f32(a: &[f32]) -> f32 {
    let n = a.len();
    if n < LANES {
        return row_sum(|i| a[i], n);
    }
    let vec_size = n / LANES;
    let vec_acc = row_sum(
        |i| {
            let mut v = [0.0f32; LANES];
            v.copy_from_slice(&a[i * LANES..(i + 1) * LANES]);
            v
        },
        vec_size,
    );
    let mut total = 0.0f32;
    for &x in &a[vec_size * LANES..] {
        total += x;
    }
    for lane in vec_acc {
        total += lane;
    }
    total
}

/// `torch.Tensor.mean()` of a contiguous float32 CPU tensor (single thread, AVX2 build):
/// the cascade sum divided by `n` in float32. Tensors above torch's parallel grain (32768
/// elements) are split across threads by torch, so there the result can differ in the last bit
/// from torch run with several threads.
pub fn torch_mean_f32(a: &[f32]) -> f32 {
    if a.is_empty() {
        return f32::NAN;
    }
    torch_sum_f32(a) / a.len() as f32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fp4_order_and_bounds() {
        // Stable argsort of the FP4 table: -1(11) -2/3(10) -1/2(13) -1/3(12) -1/4(15) -1/6(14)
        // -1/192(9) 0(0) 0(8) 1/192(1) 1/6(6) 1/4(7) 1/3(4) 1/2(5) 2/3(2) 1(3), by hand.
        let b = Buckets4::new(&fp4_code());
        assert_eq!(
            b.order,
            [11, 10, 13, 12, 15, 14, 9, 0, 8, 1, 6, 7, 4, 5, 2, 3]
        );
        // The midpoint between the two zeros is 0: -tiny -> code 0, +tiny -> code 8, 0 -> 0.
        assert_eq!(b.index(-1e-6), 0);
        assert_eq!(b.index(0.0), 0);
        assert_eq!(b.index(1e-6), 8);
        assert_eq!(b.index(1.0), 3);
        assert_eq!(b.index(-1.0), 11);
        let nf = Buckets4::new(&nf4_code());
        assert_eq!(nf.order, std::array::from_fn(|i| i as u8));
        // Exactly on a midpoint: the lower code (torch.bucketize, right=False).
        assert_eq!(nf.index(nf.bounds[9]), 9);
        assert_eq!(nf.index(f32::from_bits(nf.bounds[9].to_bits() + 1)), 10);
    }

    #[test]
    fn dynamic_map_shape() {
        let m = dynamic_map();
        assert!(m.windows(2).all(|w| w[0] <= w[1]));
        assert_eq!(m[255], 1.0);
        assert_eq!(m[127], 0.0);
        // Smallest magnitude: 1e-6 * (0.1 + 1) / 2 = 5.5e-7 (the 2-point linspace [0.1, 1]).
        assert_eq!(m[128], 1e-6f32 * ((0.1f32 + 1.0) / 2.0));
        assert_eq!(m[126], -m[128]);
        // Largest below one: (1 - step/2) with step = 0.9/64, i.e. 0.99296875 in float32.
        assert!((m[254] - 0.992_968_75).abs() < 1e-7);
        let lut = dynamic_lut();
        assert_eq!(lut[0], 0);
        assert_eq!(lut[65535], 255);
        // The LUT is bitsandbytes' approximation: 0 falls in bin 32768, which stands for
        // -1 + 65536/65535 = 1.53e-5 and is nearest to code 131 (2.125e-5; the midpoint to code
        // 130 = 7.75e-6 is 1.45e-5). So bitsandbytes quantises an exact 0 to code 131.
        assert_eq!(lut_bin(0.0), 32768);
        assert_eq!(lut[32768], 131);
        assert!((m[131] - 2.125e-5).abs() < 1e-11 && (m[130] - 7.75e-6).abs() < 1e-11);
    }

    #[test]
    fn torch_sum_small_cases() {
        // n < 8: 4 scalar accumulators; element 4 joins accumulator 0 before 1..3 are added,
        // i.e. ((a0 + a4) + a1) + a2) + a3.
        let a = [1e8f32, 1.0, -1e8, 1.0, 1.0];
        let expect = (((1e8f32 + 1.0) + 1.0) + -1e8) + 1.0;
        assert_eq!(torch_sum_f32(&a), expect);
        assert_eq!(torch_sum_f32(&[0.5; 192]), 96.0);
        assert_eq!(torch_mean_f32(&[0.25; 1000]), 0.25);
        assert!(torch_mean_f32(&[]).is_nan());
    }
}
