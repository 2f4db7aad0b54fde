//! The Hessian that statsmodels inverts for the standard errors of a mixed model: the
//! log-likelihood with σ² profiled out, differentiated twice in (β, θ) jointly (see
//! `MixedLM.hessian`), built from the q- and p-sized pieces of [`super::Eval`].

// Dense matrix code indexes several arrays with the same indices; iterators would obscure it.
#![allow(clippy::needless_range_loop)]

use super::{Cholesky, Data, Eval, Mat};

impl Data {
    /// statsmodels' Hessian in (β, θ_free) with σ² profiled, at the optimum.
    pub(super) fn full_hessian(&self, e: &Eval, free: &[usize], reml: bool) -> Mat {
        let (p, q) = (self.p, self.q);
        let fac = self.fac(reml);
        let s = e.s;
        let dim = p + free.len();
        let mut h = Mat::zeros(dim);
        for j in 0..p {
            for k in 0..p {
                *h.at_mut(j, k) = -fac * e.m.at(j, k) / s;
            }
        }
        let minv = Cholesky::new(&e.m)
            .map(|c| c.inverse())
            .unwrap_or(Mat::eye(p));
        let trow = |l: usize| &e.t[l * p..(l + 1) * p];
        // Q_k = T_kᵀ T_k, then M⁻¹Q_k
        let mq: Vec<Vec<f64>> = free
            .iter()
            .map(|&k| {
                let mut qk = vec![0.0; p * p];
                for l in self.comp[k].clone() {
                    let tr = trow(l);
                    for a in 0..p {
                        for b in 0..p {
                            qk[a * p + b] += tr[a] * tr[b];
                        }
                    }
                }
                matmul(&minv.a, &qk, p)
            })
            .collect();
        let b: Vec<f64> = free
            .iter()
            .map(|&k| self.comp[k].clone().map(|l| e.w[l] * e.w[l]).sum())
            .collect();
        for (fi, &k) in free.iter().enumerate() {
            for j in 0..p {
                let v: f64 = self.comp[k].clone().map(|l| trow(l)[j] * e.w[l]).sum();
                *h.at_mut(p + fi, j) = -fac * v / s;
                *h.at_mut(j, p + fi) = -fac * v / s;
            }
            for (fj, &k2) in free.iter().enumerate() {
                let mut sq = 0.0;
                let mut dij = 0.0;
                // F_ij = T_iᵀ S_ij T_j + T_jᵀ S_ji T_i (p × p)
                let mut fm = vec![0.0; p * p];
                for l in self.comp[k].clone() {
                    for m in self.comp[k2].clone() {
                        let slm = e.sm.at(l, m);
                        sq += slm * slm;
                        dij += 2.0 * e.w[l] * slm * e.w[m];
                        if reml && slm != 0.0 {
                            let (tl, tmr) = (trow(l), trow(m));
                            for a in 0..p {
                                for c in 0..p {
                                    fm[a * p + c] += slm * (tl[a] * tmr[c] + tmr[a] * tl[c]);
                                }
                            }
                        }
                    }
                }
                let mut v = 0.5 * sq - 0.5 * fac * (dij / s - b[fi] * b[fj] / (s * s));
                if reml {
                    let tr_qq: f64 = (0..p)
                        .map(|a| {
                            (0..p)
                                .map(|c| mq[fi][a * p + c] * mq[fj][c * p + a])
                                .sum::<f64>()
                        })
                        .sum();
                    let mf = matmul(&minv.a, &fm, p);
                    let tr_f: f64 = (0..p).map(|a| mf[a * p + a]).sum();
                    v += 0.5 * (tr_qq - tr_f);
                }
                *h.at_mut(p + fi, p + fj) = v;
            }
        }
        let _ = q;
        h
    }
}

fn matmul(a: &[f64], b: &[f64], p: usize) -> Vec<f64> {
    let mut out = vec![0.0; p * p];
    for i in 0..p {
        for k in 0..p {
            let aik = a[i * p + k];
            if aik == 0.0 {
                continue;
            }
            for j in 0..p {
                out[i * p + j] += aik * b[k * p + j];
            }
        }
    }
    out
}
