//! Deterministic random numbers.
//!
//! Every random choice in peftlab takes a seed and draws from ChaCha8 (never `thread_rng`), so
//! that a study gives the same result on every machine.

pub use rand::rngs::ChaCha8Rng as Rng;
use rand::SeedableRng;

/// A ChaCha8 generator seeded from a `u64`.
pub fn seeded(seed: u64) -> Rng {
    Rng::seed_from_u64(seed)
}

/// A ChaCha8 generator for a named purpose, derived from a base seed so that streams for
/// different purposes (data order, dropout, init) do not overlap.
pub fn derived(seed: u64, purpose: &str) -> Rng {
    // FNV-1a over the purpose string, mixed with the seed.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in purpose.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    Rng::seed_from_u64(seed ^ h.rotate_left(17))
}
