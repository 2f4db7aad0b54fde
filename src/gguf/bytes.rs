//! Little-endian byte readers shared by the block dequantisers ([`super::dequant`] and
//! [`super::kquants`]).

/// The first `N` bytes of `b` as an array (blocks always have at least `N` bytes; zero-filled
/// otherwise, which cannot happen because block sizes come from the type table).
pub(super) fn arr<const N: usize>(b: &[u8]) -> [u8; N] {
    let mut a = [0u8; N];
    if let Some(s) = b.get(..N) {
        a.copy_from_slice(s);
    }
    a
}

/// The little-endian IEEE half at byte offset `at`, as `f32` (exact).
pub(super) fn f16(b: &[u8], at: usize) -> f32 {
    let v = b.get(at..).map(arr::<2>).unwrap_or_default();
    half::f16::from_bits(u16::from_le_bytes(v)).to_f32()
}
