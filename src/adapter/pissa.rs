//! PiSSA: principal singular values and singular vectors adaptation (Meng et al. 2024,
//! arXiv 2404.02948).
//!
//! A LoRA whose factors start at the principal part of W (PEFT `lora/layer.py` `pissa_init`):
//! with `W = U S Vᵀ`, `S_r = S[:r] / s`, `A = diag(√S_r) Vᵀ[:r]`, `B = U[:, :r] diag(√S_r)`,
//! and the frozen base becomes the residual `W − s·B A`, so the initial output equals the base
//! model's. `init: "pissa"` uses an exact SVD; `"pissa_niter_K"` (and matrices whose short side
//! exceeds [`EXACT_LIMIT`]) use the randomized SVD with K power iterations.
//!
//! A trained PiSSA adapter only makes sense on the residual base, so `save_adapter` writes
//! PEFT's conversion (`path_initial_model_for_weight_conversion`): `A' = [A; A₀]`,
//! `B' = [B, −B₀]`, rank `2r` and alpha `2·alpha` (`√2·alpha` with rsLoRA), a plain LoRA that
//! applies to the ORIGINAL weights.

use super::svd::{svd, svd_lowrank};
use crate::interrupt::Interrupted;

/// Short-side size above which `init: "pissa"` switches to the randomized SVD.
pub const EXACT_LIMIT: usize = 1024;

/// The PiSSA factors and residual of one weight.
pub struct PissaInit {
    /// `[r, in]`.
    pub a: Vec<f32>,
    /// `[out, r]`.
    pub b: Vec<f32>,
    /// `W − s·B A`, `[out, in]`.
    pub residual: Vec<f32>,
}

/// Computes the PiSSA initialisation of `w: [out, in]`; stops with [`Interrupted`] on Ctrl-C.
pub fn pissa_init(
    w: &[f32],
    out: usize,
    inp: usize,
    r: usize,
    scaling: f64,
    niter: Option<usize>,
    seed: u64,
) -> Result<PissaInit, Interrupted> {
    let a64: Vec<f64> = w.iter().map(|&x| f64::from(x)).collect();
    let r = r.min(out.min(inp));
    let dec = match niter {
        None if out.min(inp) <= EXACT_LIMIT => svd(&a64, out, inp)?,
        None => svd_lowrank(&a64, out, inp, r, 4, seed)?,
        Some(k) => svd_lowrank(&a64, out, inp, r, k, seed)?,
    };
    let mut a = vec![0f32; r * inp];
    let mut b = vec![0f32; out * r];
    for j in 0..r {
        let sq = (dec.s[j] / scaling).sqrt();
        for c in 0..inp {
            a[j * inp + c] = (sq * dec.vt[j * inp + c]) as f32;
        }
        for o in 0..out {
            b[o * r + j] = (dec.u[o * dec.k + j] * sq) as f32;
        }
    }
    let mut residual = w.to_vec();
    for o in 0..out {
        for c in 0..inp {
            let mut ba = 0f64;
            for j in 0..r {
                ba += f64::from(b[o * r + j]) * f64::from(a[j * inp + c]);
            }
            residual[o * inp + c] = (f64::from(w[o * inp + c]) - scaling * ba) as f32;
        }
    }
    Ok(PissaInit { a, b, residual })
}

/// PEFT's conversion of a trained PiSSA adapter to a LoRA on the original weights:
/// `A' = [A; A₀]` (`[2r, in]`) and `B' = [B, −B₀]` (`[out, 2r]`).
pub fn convert_to_lora(
    a: &[f32],
    b: &[f32],
    a0: &[f32],
    b0: &[f32],
    r: usize,
    out: usize,
) -> (Vec<f32>, Vec<f32>) {
    let mut a2 = a.to_vec();
    a2.extend_from_slice(a0);
    let mut b2 = Vec::with_capacity(out * 2 * r);
    for o in 0..out {
        b2.extend_from_slice(&b[o * r..(o + 1) * r]);
        b2.extend(b0[o * r..(o + 1) * r].iter().map(|x| -x));
    }
    (a2, b2)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn principal_plus_residual_is_w_and_conversion_cancels_at_init() {
        let mut rng = crate::rng::seeded(4);
        let (out, inp, r, s) = (6, 5, 2, 0.5);
        let w = super::super::init::normal(out * inp, 1.0, &mut rng);
        let p = pissa_init(&w, out, inp, r, s, None, 0).unwrap();
        for o in 0..out {
            for c in 0..inp {
                let ba: f64 = (0..r)
                    .map(|j| f64::from(p.b[o * r + j]) * f64::from(p.a[j * inp + c]))
                    .sum();
                let back = f64::from(p.residual[o * inp + c]) + s * ba;
                // The residual and the factors are stored in f32: a few f32 roundings of
                // quantities of magnitude |w| + s·Σ|b a|.
                let mag: f64 = f64::from(w[o * inp + c]).abs()
                    + s * (0..r)
                        .map(|j| f64::from(p.b[o * r + j] * p.a[j * inp + c]).abs())
                        .sum::<f64>();
                let tol = 8.0 * f64::from(f32::EPSILON) * mag;
                assert!((back - f64::from(w[o * inp + c])).abs() <= tol);
            }
        }
        // Converted at initialisation (A = A₀, B = B₀) the update B'A' is exactly zero.
        let (a2, b2) = convert_to_lora(&p.a, &p.b, &p.a, &p.b, r, out);
        for o in 0..out {
            for c in 0..inp {
                let terms: Vec<f32> = (0..2 * r)
                    .map(|j| b2[o * 2 * r + j] * a2[j * inp + c])
                    .collect();
                let d: f32 = terms.iter().sum();
                // The terms cancel pairwise, but the f32 partial sums round: at most 2r − 1
                // roundings of partial sums bounded by Σ|terms|.
                let mag: f32 = terms.iter().map(|t| t.abs()).sum();
                assert!(
                    d.abs() <= (2 * r) as f32 * f32::EPSILON * mag,
                    "{d} vs {mag}"
                );
            }
        }
    }
}
