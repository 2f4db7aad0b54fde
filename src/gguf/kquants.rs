//! Dequantisation of ggml's k-quants (super-blocks of 256 elements) to `f32`.
//!
//! Follows `dequantize_row_q2_K` ... `dequantize_row_q8_K` in ggml's `ggml/src/ggml-quants.c`
//! and the block structs of `ggml/src/ggml-common.h` (`block_q2_K` etc.). The products are
//! formed in the same order as there and in gguf-py (`gguf/quants.py`, `Q2_K.dequantize_blocks`
//! etc.): `(d * scale) * q - (dmin * min)`, so results are bit-identical to both. gguf-py has
//! no Q8_K dequantiser; Q8_K (`y = d * q` with an `f32` scale) follows ggml only.
//!
//! Each function receives exactly one block (`type_size` bytes) and 256 outputs.

use super::bytes::{arr, f16};

/// `block_q2_K { u8 scales[16]; u8 qs[64]; half d; half dmin; }` (84 bytes).
///
/// Element `e`: 2-bit value `(qs[32*(e/128) + e%32] >> 2*((e%128)/32)) & 3`, scale byte
/// `scales[e/16]` (low nibble scale, high nibble min): `y = (d*sc) * q - (dmin*m)`.
pub(super) fn q2_k(b: &[u8], y: &mut [f32]) {
    let scales = &b[0..16];
    let qs = &b[16..80];
    let d = f16(b, 80);
    let dmin = f16(b, 82);
    for (e, ye) in y.iter_mut().enumerate().take(256) {
        let sc = scales[e / 16];
        let dl = d * f32::from(sc & 0x0F);
        let ml = dmin * f32::from(sc >> 4);
        let shift = 2 * ((e % 128) / 32);
        let q = (qs[32 * (e / 128) + e % 32] >> shift) & 3;
        *ye = dl * f32::from(q) - ml;
    }
}

/// The sixteen signed 6-bit scales of a Q3_K block (ggml's `kmask1/kmask2` unpacking):
/// low 4 bits from `scales[i]` (i < 8) or `scales[i-8] >> 4`, high 2 bits from
/// `scales[8 + i%4] >> 2*(i/4)`, minus 32.
fn q3_k_scales(s: &[u8]) -> [i8; 16] {
    let mut out = [0i8; 16];
    for (i, o) in out.iter_mut().enumerate() {
        let low = if i < 8 { s[i] & 0x0F } else { s[i - 8] >> 4 };
        let high = (s[8 + i % 4] >> (2 * (i / 4))) & 3;
        *o = (low | (high << 4)) as i8 - 32;
    }
    out
}

/// `block_q3_K { u8 hmask[32]; u8 qs[64]; u8 scales[12]; half d; }` (110 bytes).
///
/// Element `e` (n = e/128, j = (e%128)/32, p = e%32): low bits `(qs[32n+p] >> 2j) & 3`,
/// minus 4 when bit `4n+j` of `hmask[p]` is clear; `y = (d*scale[e/16]) * q`.
pub(super) fn q3_k(b: &[u8], y: &mut [f32]) {
    let hmask = &b[0..32];
    let qs = &b[32..96];
    let scales = q3_k_scales(&b[96..108]);
    let d = f16(b, 108);
    for (e, ye) in y.iter_mut().enumerate().take(256) {
        let (n, j, p) = (e / 128, (e % 128) / 32, e % 32);
        let low = ((qs[32 * n + p] >> (2 * j)) & 3) as i8;
        let high_clear = (hmask[p] >> (4 * n + j)) & 1 == 0;
        let q = low - if high_clear { 4 } else { 0 };
        let dl = d * f32::from(scales[e / 16]);
        *ye = dl * f32::from(q);
    }
}

/// ggml's `get_scale_min_k4`: the 6-bit scale and min of sub-block `j` (0..8) of a Q4_K/Q5_K
/// block from the 12 packed bytes `q`.
fn scale_min_k4(j: usize, q: &[u8]) -> (u8, u8) {
    if j < 4 {
        (q[j] & 63, q[j + 4] & 63)
    } else {
        (
            (q[j + 4] & 0x0F) | ((q[j - 4] >> 6) << 4),
            (q[j + 4] >> 4) | ((q[j] >> 6) << 4),
        )
    }
}

/// `block_q4_K { half d; half dmin; u8 scales[12]; u8 qs[128]; }` (144 bytes).
///
/// Sub-block s (32 elements, s = e/32) of chunk c = s/2 uses the low (s even) or high (s odd)
/// nibbles of `qs[32c..32c+32]`: `y = (d*sc_s) * q - (dmin*m_s)`.
pub(super) fn q4_k(b: &[u8], y: &mut [f32]) {
    let d = f16(b, 0);
    let dmin = f16(b, 2);
    let scales = &b[4..16];
    let qs = &b[16..144];
    for (s, ys) in y.chunks_exact_mut(32).enumerate().take(8) {
        let (sc, m) = scale_min_k4(s, scales);
        let d1 = d * f32::from(sc);
        let m1 = dmin * f32::from(m);
        let shift = 4 * (s % 2);
        let q = &qs[32 * (s / 2)..32 * (s / 2) + 32];
        for (yl, &ql) in ys.iter_mut().zip(q) {
            *yl = d1 * f32::from((ql >> shift) & 0x0F) - m1;
        }
    }
}

/// `block_q5_K { half d; half dmin; u8 scales[12]; u8 qh[32]; u8 qs[128]; }` (176 bytes).
///
/// As Q4_K, with bit `s` of `qh[l]` as fifth bit of element l of sub-block s.
pub(super) fn q5_k(b: &[u8], y: &mut [f32]) {
    let d = f16(b, 0);
    let dmin = f16(b, 2);
    let scales = &b[4..16];
    let qh = &b[16..48];
    let qs = &b[48..176];
    for (s, ys) in y.chunks_exact_mut(32).enumerate().take(8) {
        let (sc, m) = scale_min_k4(s, scales);
        let d1 = d * f32::from(sc);
        let m1 = dmin * f32::from(m);
        let shift = 4 * (s % 2);
        let q = &qs[32 * (s / 2)..32 * (s / 2) + 32];
        for ((yl, &ql), &h) in ys.iter_mut().zip(q).zip(qh) {
            let v = ((ql >> shift) & 0x0F) | (((h >> s) & 1) << 4);
            *yl = d1 * f32::from(v) - m1;
        }
    }
}

/// `block_q6_K { u8 ql[128]; u8 qh[64]; i8 scales[16]; half d; }` (210 bytes).
///
/// Per 128-element half n, for l in 0..32 and k in 0..4 (element 128n + 32k + l): low 4 bits
/// from `ql[64n + l + 32(k%2)]` (nibble k/2), high 2 bits `(qh[32n + l] >> 2k) & 3`, minus 32;
/// `y = (d * scales[8n + l/16 + 2k]) * q`.
pub(super) fn q6_k(b: &[u8], y: &mut [f32]) {
    let ql = &b[0..128];
    let qh = &b[128..192];
    let scales = &b[192..208];
    let d = f16(b, 208);
    for n in 0..2 {
        for k in 0..4 {
            for l in 0..32 {
                let lo = (ql[64 * n + l + 32 * (k % 2)] >> (4 * (k / 2))) & 0x0F;
                let hi = (qh[32 * n + l] >> (2 * k)) & 3;
                let q = (lo | (hi << 4)) as i8 - 32;
                let sc = scales[8 * n + l / 16 + 2 * k] as i8;
                y[128 * n + 32 * k + l] = (d * f32::from(sc)) * f32::from(q);
            }
        }
    }
}

/// `block_q8_K { float d; i8 qs[256]; i16 bsums[16]; }` (292 bytes): `y = d * q`.
pub(super) fn q8_k(b: &[u8], y: &mut [f32]) {
    let d = f32::from_le_bytes(arr(b));
    for (ye, &q) in y.iter_mut().zip(&b[4..260]) {
        *ye = d * f32::from(q as i8);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scale_min_k4_by_hand() {
        // j < 4: plain 6-bit fields; j >= 4: low nibble of q[j+4] plus the top two bits of
        // q[j-4] (scale) / q[j] (min). Checked against the C expression by hand.
        let q = [0xC1, 2, 3, 4, 0x45, 6, 7, 8, 0xA9, 10, 11, 12];
        assert_eq!(scale_min_k4(0, &q), (0x01, 0x05));
        assert_eq!(scale_min_k4(4, &q), (0x09 | (3 << 4), 0x0A | (1 << 4)));
    }

    #[test]
    fn q3_k_scales_by_hand() {
        // all low nibbles 0x5 / high nibbles 0xA, high bytes 0b11_10_01_00 -> i/4 selects 0..3.
        let mut s = [0xA5u8; 12];
        s[8..12].copy_from_slice(&[0b1110_0100; 4]);
        let sc = q3_k_scales(&s);
        assert_eq!(sc[0], 0x05 - 32); // high bits 0
        assert_eq!(sc[4], (0x05 | 1 << 4) - 32);
        assert_eq!(sc[8], (0x0A | 2 << 4) - 32);
        assert_eq!(sc[12], (0x0A | 3 << 4) - 32);
    }
}
