//! Singular value decompositions on the host (f64), for PiSSA.
//!
//! [`svd`] is a one-sided Jacobi SVD (Hestenes 1958; Demmel & Veselić 1992): accurate to
//! machine precision, `O(m n²)` per sweep, used for matrices up to about 1024 on their short
//! side. [`svd_lowrank`] is the randomized range finder with subspace (power) iterations of
//! Halko, Martinsson & Tropp 2011 (arXiv 0909.4061, Alg. 4.4), as `torch.svd_lowrank`, seeded
//! with ChaCha8, for large matrices.

use super::init::normal;
use crate::interrupt::{self, Interrupted};

/// A (thin) SVD `M = U diag(S) Vᵀ` with singular values in descending order.
pub struct Svd {
    /// Left singular vectors, `[m, k]` row-major.
    pub u: Vec<f64>,
    /// Singular values, `[k]`.
    pub s: Vec<f64>,
    /// Right singular vectors transposed, `[k, n]` row-major.
    pub vt: Vec<f64>,
    /// Rows of M.
    pub m: usize,
    /// Columns of M.
    pub n: usize,
    /// Number of singular triplets.
    pub k: usize,
}

fn transpose(a: &[f64], m: usize, n: usize) -> Vec<f64> {
    let mut t = vec![0.0; m * n];
    for i in 0..m {
        for j in 0..n {
            t[j * m + i] = a[i * n + j];
        }
    }
    t
}

/// Thin SVD of a row-major `[m, n]` matrix; stops with [`Interrupted`] on Ctrl-C.
pub fn svd(a: &[f64], m: usize, n: usize) -> Result<Svd, Interrupted> {
    if n > m {
        // SVD of the transpose: Aᵀ = V S Uᵀ.
        let t = svd(&transpose(a, m, n), n, m)?;
        return Ok(Svd {
            u: transpose(&t.vt, t.k, m),
            s: t.s,
            vt: transpose(&t.u, n, t.k),
            m,
            n,
            k: t.k,
        });
    }
    // Columns of W (= A V) are orthogonalised in place; V accumulates the rotations.
    let mut w: Vec<Vec<f64>> = (0..n)
        .map(|j| (0..m).map(|i| a[i * n + j]).collect())
        .collect();
    let mut v: Vec<Vec<f64>> = (0..n)
        .map(|j| (0..n).map(|i| if i == j { 1.0 } else { 0.0 }).collect())
        .collect();
    for _sweep in 0..60 {
        let mut off = 0.0f64;
        for p in 0..n {
            interrupt::check()?;
            for q in p + 1..n {
                let (alpha, beta, gamma) = {
                    let (wp, wq) = (&w[p], &w[q]);
                    let mut al = 0.0;
                    let mut be = 0.0;
                    let mut ga = 0.0;
                    for i in 0..m {
                        al += wp[i] * wp[i];
                        be += wq[i] * wq[i];
                        ga += wp[i] * wq[i];
                    }
                    (al, be, ga)
                };
                if gamma == 0.0 || gamma.abs() <= 1e-15 * (alpha * beta).sqrt() {
                    continue;
                }
                off = off.max(gamma.abs() / (alpha * beta).sqrt());
                let zeta = (beta - alpha) / (2.0 * gamma);
                let t = zeta.signum() / (zeta.abs() + (1.0 + zeta * zeta).sqrt());
                let t = if zeta == 0.0 { 1.0 } else { t };
                let c = 1.0 / (1.0 + t * t).sqrt();
                let s = c * t;
                for vec in [&mut w, &mut v] {
                    let (lo, hi) = vec.split_at_mut(q);
                    let (cp, cq) = (&mut lo[p], &mut hi[0]);
                    for i in 0..cp.len() {
                        let (x, y) = (cp[i], cq[i]);
                        cp[i] = c * x - s * y;
                        cq[i] = s * x + c * y;
                    }
                }
            }
        }
        if off < 1e-14 {
            break;
        }
    }
    let mut triplets: Vec<(f64, usize)> = (0..n)
        .map(|j| (w[j].iter().map(|x| x * x).sum::<f64>().sqrt(), j))
        .collect();
    triplets.sort_by(|x, y| y.0.total_cmp(&x.0));
    let k = n;
    let mut u = vec![0.0; m * k];
    let mut s = vec![0.0; k];
    let mut vt = vec![0.0; k * n];
    for (col, &(sigma, j)) in triplets.iter().enumerate() {
        s[col] = sigma;
        for i in 0..m {
            u[i * k + col] = if sigma > 0.0 { w[j][i] / sigma } else { 0.0 };
        }
        for i in 0..n {
            vt[col * n + i] = v[j][i];
        }
    }
    Ok(Svd { u, s, vt, m, n, k })
}

/// Orthonormalises the columns of a row-major `[m, q]` matrix (modified Gram–Schmidt, twice).
fn orthonormalise(y: &mut [f64], m: usize, q: usize) {
    for _ in 0..2 {
        for j in 0..q {
            for p in 0..j {
                let dot: f64 = (0..m).map(|i| y[i * q + p] * y[i * q + j]).sum();
                for i in 0..m {
                    y[i * q + j] -= dot * y[i * q + p];
                }
            }
            let norm: f64 = (0..m).map(|i| y[i * q + j].powi(2)).sum::<f64>().sqrt();
            if norm > 0.0 {
                for i in 0..m {
                    y[i * q + j] /= norm;
                }
            }
        }
    }
}

/// `[m, n] × [n, q]` row-major product.
fn matmul(a: &[f64], b: &[f64], m: usize, n: usize, q: usize) -> Vec<f64> {
    let mut c = vec![0.0; m * q];
    for i in 0..m {
        for k in 0..n {
            let aik = a[i * n + k];
            if aik == 0.0 {
                continue;
            }
            for j in 0..q {
                c[i * q + j] += aik * b[k * q + j];
            }
        }
    }
    c
}

/// Randomized rank-`r` SVD with `niter` power iterations and 10 extra oversampling columns;
/// stops with [`Interrupted`] on Ctrl-C (checked every iteration).
pub fn svd_lowrank(
    a: &[f64],
    m: usize,
    n: usize,
    r: usize,
    niter: usize,
    seed: u64,
) -> Result<Svd, Interrupted> {
    let q = (r + 10).min(m.min(n));
    let mut rng = crate::rng::derived(seed, "svd_lowrank");
    let omega: Vec<f64> = normal(n * q, 1.0, &mut rng)
        .into_iter()
        .map(f64::from)
        .collect();
    let at = transpose(a, m, n);
    let mut y = matmul(a, &omega, m, n, q); // [m, q]
    orthonormalise(&mut y, m, q);
    for _ in 0..niter {
        interrupt::check()?;
        let mut z = matmul(&at, &y, n, m, q); // [n, q]
        orthonormalise(&mut z, n, q);
        y = matmul(a, &z, m, n, q);
        orthonormalise(&mut y, m, q);
    }
    // B = Qᵀ A, [q, n]; its SVD gives A ≈ (Q U_B) S Vᵀ.
    let b = matmul(&transpose(&y, m, q), a, q, m, n);
    let sb = svd(&b, q, n)?;
    let u = matmul(&y, &sb.u, m, q, sb.k);
    let k = r.min(sb.k);
    let mut uk = vec![0.0; m * k];
    for i in 0..m {
        uk[i * k..(i + 1) * k].copy_from_slice(&u[i * sb.k..i * sb.k + k]);
    }
    Ok(Svd {
        u: uk,
        s: sb.s[..k].to_vec(),
        vt: sb.vt[..k * n].to_vec(),
        m,
        n,
        k,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reconstruct(s: &Svd) -> Vec<f64> {
        let mut us = s.u.clone();
        for i in 0..s.m {
            for j in 0..s.k {
                us[i * s.k + j] *= s.s[j];
            }
        }
        matmul(&us, &s.vt, s.m, s.k, s.n)
    }

    #[test]
    fn jacobi_reconstructs_and_orders() {
        let mut rng = crate::rng::seeded(1);
        for (m, n) in [(7, 5), (5, 7), (6, 6)] {
            let a: Vec<f64> = normal(m * n, 1.0, &mut rng)
                .into_iter()
                .map(f64::from)
                .collect();
            let s = svd(&a, m, n).unwrap();
            let back = reconstruct(&s);
            let err = a
                .iter()
                .zip(&back)
                .map(|(x, y)| (x - y).abs())
                .fold(0.0, f64::max);
            assert!(err < 1e-12, "{m}x{n}: {err}");
            assert!(s.s.windows(2).all(|w| w[0] >= w[1]));
        }
        // Hand-checked: diag(3, 2) padded → singular values 3, 2.
        let s = svd(&[0.0, 2.0, 3.0, 0.0, 0.0, 0.0], 3, 2).unwrap();
        assert!((s.s[0] - 3.0).abs() < 1e-14 && (s.s[1] - 2.0).abs() < 1e-14);
    }

    #[test]
    fn lowrank_recovers_a_low_rank_matrix() {
        let mut rng = crate::rng::seeded(2);
        let (m, n, r) = (40, 30, 3);
        let l: Vec<f64> = normal(m * r, 1.0, &mut rng)
            .into_iter()
            .map(f64::from)
            .collect();
        let rt: Vec<f64> = normal(r * n, 1.0, &mut rng)
            .into_iter()
            .map(f64::from)
            .collect();
        let a = matmul(&l, &rt, m, r, n);
        let full = svd(&a, m, n).unwrap();
        let low = svd_lowrank(&a, m, n, r, 2, 0).unwrap();
        for j in 0..r {
            assert!((full.s[j] - low.s[j]).abs() < 1e-9 * full.s[0]);
        }
    }
}
