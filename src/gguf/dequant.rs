//! Dequantisation of ggml tensor data to `f32`: plain types and the 32-element block quants.
//!
//! Follows ggml's reference kernels in `ggml/src/ggml-quants.c` (`dequantize_row_q4_0`,
//! `_q4_1`, `_q5_0`, `_q5_1`, `_q8_0`) and the block structs of `ggml/src/ggml-common.h`,
//! with the arithmetic written in the same order as gguf-py's numpy versions
//! (`gguf/quants.py`, `Q4_0.dequantize_blocks` etc.) so that results are bit-identical to
//! `gguf.quants.dequantize` (checked on every tensor of SmolLM2-135M and on the committed
//! fixtures in `tests/fixtures/gguf/`). The k-quants live in [`super::kquants`].

use super::bytes::{arr, f16};
use super::kquants;
use super::types::GgmlType;
use super::GgufError;

/// The types that [`dequantize`] supports.
pub const DEQUANT_TYPES: &[GgmlType] = &[
    GgmlType::F32,
    GgmlType::F16,
    GgmlType::BF16,
    GgmlType::F64,
    GgmlType::I8,
    GgmlType::I16,
    GgmlType::I32,
    GgmlType::Q4_0,
    GgmlType::Q4_1,
    GgmlType::Q5_0,
    GgmlType::Q5_1,
    GgmlType::Q8_0,
    GgmlType::Q2_K,
    GgmlType::Q3_K,
    GgmlType::Q4_K,
    GgmlType::Q5_K,
    GgmlType::Q6_K,
    GgmlType::Q8_K,
];

/// Dequantises `n_elements` values of type `ty` stored in `data` to `f32`.
///
/// `data` must hold exactly the bytes of `n_elements` elements (whole blocks). Types outside
/// [`DEQUANT_TYPES`] give [`GgufError::UnsupportedType`] (with an empty tensor name; callers
/// that know the tensor fill it in with `GgufError::for_tensor`).
pub fn dequantize(ty: GgmlType, data: &[u8], n_elements: usize) -> Result<Vec<f32>, GgufError> {
    if !DEQUANT_TYPES.contains(&ty) {
        return Err(GgufError::UnsupportedType {
            tensor: String::new(),
            ty: ty.name(),
            supported: DEQUANT_TYPES
                .iter()
                .map(|t| t.name())
                .collect::<Vec<_>>()
                .join(", "),
        });
    }
    let expected = ty.bytes_for(n_elements as u64);
    if expected != Some(data.len() as u64) {
        return Err(GgufError::invalid(
            format!("{ty} data"),
            match expected {
                Some(e) => format!(
                    "{} bytes for {n_elements} elements (expected {e})",
                    data.len()
                ),
                None => format!(
                    "{n_elements} elements is not a multiple of the block size {}",
                    ty.block_size()
                ),
            },
        ));
    }
    let mut out = vec![0f32; n_elements];
    let bs = ty.block_size();
    let ts = ty.type_size();
    let blocks = data.chunks_exact(ts).zip(out.chunks_exact_mut(bs));
    match ty {
        GgmlType::F32 => blocks.for_each(|(b, y)| y[0] = f32::from_le_bytes(arr(b))),
        GgmlType::F16 => blocks.for_each(|(b, y)| y[0] = f16(b, 0)),
        GgmlType::BF16 => blocks
            .for_each(|(b, y)| y[0] = f32::from_bits(u32::from(u16::from_le_bytes(arr(b))) << 16)),
        GgmlType::F64 => blocks.for_each(|(b, y)| y[0] = f64::from_le_bytes(arr(b)) as f32),
        GgmlType::I8 => blocks.for_each(|(b, y)| y[0] = f32::from(b[0] as i8)),
        GgmlType::I16 => blocks.for_each(|(b, y)| y[0] = f32::from(i16::from_le_bytes(arr(b)))),
        GgmlType::I32 => blocks.for_each(|(b, y)| y[0] = i32::from_le_bytes(arr(b)) as f32),
        GgmlType::Q4_0 => blocks.for_each(|(b, y)| q4_0(b, y)),
        GgmlType::Q4_1 => blocks.for_each(|(b, y)| q4_1(b, y)),
        GgmlType::Q5_0 => blocks.for_each(|(b, y)| q5_0(b, y)),
        GgmlType::Q5_1 => blocks.for_each(|(b, y)| q5_1(b, y)),
        GgmlType::Q8_0 => blocks.for_each(|(b, y)| q8_0(b, y)),
        GgmlType::Q2_K => blocks.for_each(|(b, y)| kquants::q2_k(b, y)),
        GgmlType::Q3_K => blocks.for_each(|(b, y)| kquants::q3_k(b, y)),
        GgmlType::Q4_K => blocks.for_each(|(b, y)| kquants::q4_k(b, y)),
        GgmlType::Q5_K => blocks.for_each(|(b, y)| kquants::q5_k(b, y)),
        GgmlType::Q6_K => blocks.for_each(|(b, y)| kquants::q6_k(b, y)),
        GgmlType::Q8_K => blocks.for_each(|(b, y)| kquants::q8_k(b, y)),
        // Excluded by the DEQUANT_TYPES check above.
        _ => {}
    }
    Ok(out)
}

/// `block_q4_0 { half d; u8 qs[16]; }`: y[j] = d * (lo(qs[j]) - 8), y[j+16] = d * (hi(qs[j]) - 8).
fn q4_0(b: &[u8], y: &mut [f32]) {
    let d = f16(b, 0);
    let qs = &b[2..18];
    for j in 0..16 {
        y[j] = d * f32::from((qs[j] & 0x0F) as i8 - 8);
        y[j + 16] = d * f32::from((qs[j] >> 4) as i8 - 8);
    }
}

/// `block_q4_1 { half d; half m; u8 qs[16]; }`: y = d * q + m.
fn q4_1(b: &[u8], y: &mut [f32]) {
    let d = f16(b, 0);
    let m = f16(b, 2);
    let qs = &b[4..20];
    for j in 0..16 {
        y[j] = d * f32::from(qs[j] & 0x0F) + m;
        y[j + 16] = d * f32::from(qs[j] >> 4) + m;
    }
}

/// `block_q5_0 { half d; u8 qh[4]; u8 qs[16]; }`: bit j of `qh` is the 5th bit of element j.
fn q5_0(b: &[u8], y: &mut [f32]) {
    let d = f16(b, 0);
    let qh = u32::from_le_bytes(arr(&b[2..6]));
    let qs = &b[6..22];
    for j in 0..16 {
        let h0 = (((qh >> j) << 4) & 0x10) as u8;
        let h1 = ((qh >> (j + 12)) & 0x10) as u8;
        y[j] = d * f32::from(((qs[j] & 0x0F) | h0) as i8 - 16);
        y[j + 16] = d * f32::from(((qs[j] >> 4) | h1) as i8 - 16);
    }
}

/// `block_q5_1 { half d; half m; u8 qh[4]; u8 qs[16]; }`: y = d * q + m.
fn q5_1(b: &[u8], y: &mut [f32]) {
    let d = f16(b, 0);
    let m = f16(b, 2);
    let qh = u32::from_le_bytes(arr(&b[4..8]));
    let qs = &b[8..24];
    for j in 0..16 {
        let h0 = (((qh >> j) << 4) & 0x10) as u8;
        let h1 = ((qh >> (j + 12)) & 0x10) as u8;
        y[j] = d * f32::from((qs[j] & 0x0F) | h0) + m;
        y[j + 16] = d * f32::from((qs[j] >> 4) | h1) + m;
    }
}

/// `block_q8_0 { half d; i8 qs[32]; }`: y = d * q.
fn q8_0(b: &[u8], y: &mut [f32]) {
    let d = f16(b, 0);
    for (j, yj) in y.iter_mut().enumerate().take(32) {
        *yj = d * f32::from(b[2 + j] as i8);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn q4_0_block_by_hand() {
        // d = 0.5 (f16 0x3800); byte j = 0x?? with low nibble j%16 and high nibble 15-j%16.
        let mut b = vec![0x00, 0x38];
        for j in 0..16u8 {
            b.push(j | ((15 - j) << 4));
        }
        let y = dequantize(GgmlType::Q4_0, &b, 32).unwrap();
        for j in 0..16 {
            assert_eq!(y[j], 0.5 * (j as f32 - 8.0));
            assert_eq!(y[j + 16], 0.5 * ((15 - j) as f32 - 8.0));
        }
    }

    #[test]
    fn q5_1_high_bits_by_hand() {
        // d = 1, m = -2, qh has bits 0 and 16 set: element 0 and element 16 get +16.
        let mut b = vec![0x00, 0x3C, 0x00, 0xC0];
        b.extend_from_slice(&(1u32 | (1 << 16)).to_le_bytes());
        b.extend(std::iter::repeat_n(0x21u8, 16));
        let y = dequantize(GgmlType::Q5_1, &b, 32).unwrap();
        assert_eq!(y[0], 1.0 + 16.0 - 2.0);
        assert_eq!(y[1], 1.0 - 2.0);
        assert_eq!(y[16], 2.0 + 16.0 - 2.0);
        assert_eq!(y[17], 2.0 - 2.0);
    }

    #[test]
    fn wrong_sizes_and_unsupported_types_are_errors() {
        let e = dequantize(GgmlType::Q8_0, &[0u8; 33], 32)
            .unwrap_err()
            .to_string();
        assert!(e.contains("33 bytes for 32 elements (expected 34)"), "{e}");
        let e = dequantize(GgmlType::Q8_0, &[0u8; 34], 31)
            .unwrap_err()
            .to_string();
        assert!(e.contains("not a multiple of the block size 32"), "{e}");
        let e = dequantize(GgmlType::IQ2_XXS, &[0u8; 66], 256)
            .unwrap_err()
            .to_string();
        assert!(e.contains("IQ2_XXS") && e.contains("Q6_K"), "{e}");
    }

    #[test]
    fn plain_types() {
        let y = dequantize(GgmlType::BF16, &[0x80, 0x3F, 0x00, 0xC0], 2).unwrap();
        assert_eq!(y, vec![1.0, -2.0]);
        let y = dequantize(GgmlType::F16, &[0x00, 0x3C, 0x01, 0x00], 2).unwrap();
        assert_eq!(y, vec![1.0, 5.960_464_5e-8]); // smallest subnormal half = 2^-24
        let y = dequantize(GgmlType::I8, &[0xFF, 0x05], 2).unwrap();
        assert_eq!(y, vec![-1.0, 5.0]);
    }
}
