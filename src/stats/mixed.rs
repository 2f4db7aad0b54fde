//! Linear mixed models with crossed random intercepts, fitted by REML (default) or ML, as
//! statsmodels `MixedLM` fits them (`smf.mixedlm(formula, data, groups=g).fit()` for one
//! grouping factor; `groups` constant with one variance component `0 + C(g)` per factor for
//! crossed ones).
//!
//! Model: y = Xβ + Σₖ Zₖuₖ + ε, with uₖ ~ N(0, σ²θₖ I) one intercept per level of grouping
//! factor k and ε ~ N(0, σ² I); so Var(y) = σ² V(θ), V = I + Σₖ θₖ ZₖZₖᵀ. The reported
//! variance of factor k is σ²θₖ and the residual variance ("scale") is σ².
//!
//! Estimation, with β and σ² profiled out (p = columns of X, n = rows, f = n − p for REML,
//! n for ML; β̂(θ) = (XᵀV⁻¹X)⁻¹XᵀV⁻¹y, r = y − Xβ̂, s = rᵀV⁻¹r, σ̂² = s/f):
//! - REML: ℓ(θ) = −½ log|V| − ½ log|XᵀV⁻¹X| − ½ f log s − ½ f log 2π + ½ f log f − ½ f;
//! - ML: ℓ(θ) = −½ log|V| − ½ n log s − ½ n log 2π + ½ n log n − ½ n.
//!
//! These are statsmodels' `loglike` values (its REML determinant uses the unscaled V). θ ≥ 0
//! is found by projected Newton iterations with the exact gradient and Hessian (Fisher scoring
//! where the Hessian is not negative definite), started at θ = 1 (statsmodels' start) with a
//! backtracking line search, until the Newton decrement is below 1e-20 (a change of the
//! log-likelihood far below its rounding). A factor whose variance is estimated at 0 (the
//! boundary) is reported with a warning.
//!
//! Standard errors of β are statsmodels': the square roots of the diagonal of the inverse of
//! minus the Hessian of the log-likelihood with σ² profiled out, in (β, θ) jointly (so they
//! include the uncertainty of θ through the β–θ cross terms, unlike the plain GLS covariance
//! σ̂²(XᵀV⁻¹X)⁻¹). Factors at the boundary are held fixed there. z = β̂/se, two-sided normal
//! p-values and normal confidence intervals, as statsmodels' summary.
//!
//! All work is in the dimensions of the levels (q) and fixed effects (p): V⁻¹ is applied by
//! the Woodbury identity V⁻¹ = I − ZD(I + DZᵀZD)⁻¹DZᵀ with D = diag(√θ), so the data enter
//! only through ZᵀZ, ZᵀX, Zᵀy, XᵀX, Xᵀy and the residuals.

// Dense matrix code indexes several arrays with the same indices; iterators would obscure it.
#![allow(clippy::needless_range_loop)]

use super::dist::norm_sf;
use super::formula::{self, Design};
use super::linalg::{Cholesky, Mat};
use super::{check_finite, Result, StatsError};
use crate::table::Table;
use crate::value::{num, Row, Value};
use std::collections::BTreeMap;

const FN: &str = "mixed_lm";

#[path = "mixed_hessian.rs"]
mod hessian;

/// Options of [`mixed_lm`].
#[derive(Debug, Clone)]
pub struct MixedOpts {
    /// REML (true, the default) or ML.
    pub reml: bool,
    /// Baseline level per categorical column (default: the first level in sorted order).
    pub reference: BTreeMap<String, String>,
    /// Confidence level of the fixed-effect intervals (default 0.95).
    pub level: f64,
    /// Maximum Newton iterations (default 200).
    pub max_iter: usize,
}

impl Default for MixedOpts {
    fn default() -> Self {
        MixedOpts {
            reml: true,
            reference: BTreeMap::new(),
            level: 0.95,
            max_iter: 200,
        }
    }
}

/// One fixed-effect coefficient.
#[derive(Debug, Clone, PartialEq)]
pub struct FixedEffect {
    /// Column name (`Intercept`, `variant[T.dora]`, `variant[T.dora]:share` …).
    pub term: String,
    /// Estimate β̂.
    pub estimate: f64,
    /// Standard error.
    pub se: f64,
    /// z = estimate / se.
    pub z: f64,
    /// Two-sided normal p-value.
    pub p: f64,
    /// Lower end of the confidence interval.
    pub lower: f64,
    /// Upper end of the confidence interval.
    pub upper: f64,
}

/// One random-intercept variance component.
#[derive(Debug, Clone, PartialEq)]
pub struct VarComp {
    /// The grouping column.
    pub group: String,
    /// Number of levels.
    pub levels: usize,
    /// Variance σ²θ of the intercepts.
    pub variance: f64,
}

/// A fitted mixed model.
#[derive(Debug, Clone, PartialEq)]
pub struct MixedLm {
    /// The formula as given.
    pub formula: String,
    /// Fixed effects in design order.
    pub fixed: Vec<FixedEffect>,
    /// Random-intercept variances in formula order.
    pub random: Vec<VarComp>,
    /// Residual variance σ².
    pub scale: f64,
    /// Log-likelihood (REML or ML) at the optimum.
    pub llf: f64,
    /// True for REML.
    pub reml: bool,
    /// Observations.
    pub n: usize,
    /// Newton iterations used.
    pub iterations: usize,
    /// Whether the optimiser met its tolerance.
    pub converged: bool,
    /// Notes on the fit (boundary estimates, standard-error fallbacks).
    pub warnings: Vec<String>,
    /// Confidence level of the intervals.
    pub level: f64,
}

impl MixedLm {
    /// Rows `#{ term, estimate, se, z, p, lower, upper }`.
    pub fn fixed_table(&self) -> Table {
        Table::from_rows(
            self.fixed
                .iter()
                .map(|f| {
                    let mut r = Row::new();
                    r.insert("term".into(), Value::String(f.term.clone()));
                    for (k, v) in [
                        ("estimate", f.estimate),
                        ("se", f.se),
                        ("z", f.z),
                        ("p", f.p),
                        ("lower", f.lower),
                        ("upper", f.upper),
                    ] {
                        r.insert(k.into(), num(v));
                    }
                    r
                })
                .collect(),
        )
    }

    /// Rows `#{ group, levels, variance, sd }`, then `#{ group: "residual", … }`.
    pub fn random_table(&self) -> Table {
        let row = |g: &str, levels: Option<usize>, v: f64| {
            let mut r = Row::new();
            r.insert("group".into(), Value::String(g.to_string()));
            r.insert(
                "levels".into(),
                levels.map_or(Value::Null, |l| Value::from(l as u64)),
            );
            r.insert("variance".into(), num(v));
            r.insert("sd".into(), num(v.sqrt()));
            r
        };
        let mut rows: Vec<Row> = self
            .random
            .iter()
            .map(|c| row(&c.group, Some(c.levels), c.variance))
            .collect();
        rows.push(row("residual", None, self.scale));
        Table::from_rows(rows)
    }

    /// The scalar results `#{ formula, method, n, scale, llf, converged, iterations, level,
    /// variance: #{ group: σ²θ … }, warnings }`.
    pub fn to_row(&self) -> Row {
        let mut r = Row::new();
        r.insert("formula".into(), Value::String(self.formula.clone()));
        r.insert(
            "method".into(),
            Value::String(if self.reml { "REML" } else { "ML" }.into()),
        );
        r.insert("n".into(), Value::from(self.n as u64));
        r.insert("scale".into(), num(self.scale));
        r.insert("llf".into(), num(self.llf));
        r.insert("converged".into(), Value::Bool(self.converged));
        r.insert("iterations".into(), Value::from(self.iterations as u64));
        r.insert("level".into(), num(self.level));
        let var: serde_json::Map<String, Value> = self
            .random
            .iter()
            .map(|c| (c.group.clone(), num(c.variance)))
            .collect();
        r.insert("variance".into(), Value::Object(var));
        r.insert(
            "warnings".into(),
            Value::Array(self.warnings.iter().cloned().map(Value::String).collect()),
        );
        r
    }
}

/// Sufficient statistics of the data for the fit.
struct Data {
    n: usize,
    p: usize,
    q: usize,
    /// Level range of each component.
    comp: Vec<std::ops::Range<usize>>,
    /// Global level index of each row, per component.
    codes: Vec<Vec<usize>>,
    x: Vec<Vec<f64>>,
    y: Vec<f64>,
    ztz: Mat,
    /// ZᵀX, q × p row-major.
    ztx: Vec<f64>,
    zty: Vec<f64>,
    xtx: Mat,
    xty: Vec<f64>,
}

/// Everything computed at one θ.
struct Eval {
    llf: f64,
    grad: Vec<f64>,
    hess: Vec<Vec<f64>>,
    fisher: Vec<Vec<f64>>,
    beta: Vec<f64>,
    s: f64,
    m: Mat,
    /// Z'V⁻¹Z.
    sm: Mat,
    /// Z'V⁻¹X, q × p row-major.
    t: Vec<f64>,
    /// Z'V⁻¹r.
    w: Vec<f64>,
    /// Diagonal of ZᵀPZ.
    g_diag: Vec<f64>,
}

/// Fits `formula` to the rows of `t`.
pub fn mixed_lm(t: &Table, formula_text: &str, opts: &MixedOpts) -> Result<MixedLm> {
    if !(opts.level > 0.0 && opts.level < 1.0) {
        return Err(StatsError::InvalidArgument {
            func: FN,
            name: "level",
            value: opts.level.to_string(),
            expected: "a confidence level strictly between 0 and 1",
        });
    }
    let f = formula::parse(formula_text)?;
    if f.groups.is_empty() {
        return Err(StatsError::Formula {
            func: FN,
            formula: formula_text.to_string(),
            column: formula_text.len() + 1,
            message: "no random intercept: add one such as (1 | seed), or use anova for a fixed-effects model".into(),
        });
    }
    let d = formula::design(t, &f, &opts.reference)?;
    fit(formula_text, d, opts)
}

fn check_design(d: &Design) -> Result<()> {
    let (n, p) = (d.y.len(), d.columns.len());
    check_finite(FN, "response", &d.y)?;
    for (name, c) in d.names.iter().zip(&d.columns) {
        check_finite(FN, name, c)?;
    }
    if n <= p {
        return Err(StatsError::Degenerate {
            func: FN,
            reason: format!(
                "{n} observation(s) for {p} fixed-effect columns; the residual variance needs more observations than columns"
            ),
        });
    }
    for (g, lv) in &d.groups {
        if lv.names.len() < 2 {
            return Err(StatsError::Degenerate {
                func: FN,
                reason: format!(
                    "grouping factor '{g}' has a single level; its variance cannot be separated from the residual"
                ),
            });
        }
    }
    // Which column makes the design singular: the first one that Gram–Schmidt cannot extend.
    for k in 1..=p {
        let (_, rank) = super::ols::rss(&d.columns[..k], &d.y);
        if rank < k {
            return Err(StatsError::Degenerate {
                func: FN,
                reason: format!(
                    "singular design: column '{}' is a linear combination of the columns before it (a factor level or combination with no data, or a covariate that is constant within a factor)",
                    d.names[k - 1]
                ),
            });
        }
    }
    // A response the fixed effects fit exactly (e.g. every score the same) leaves only rounding
    // noise, of the order of (n·ε)²·Σy², for the variances: estimates, standard errors and p
    // values would be noise (it once gave p = 0.0035 for a difference of 7e-16).
    let (rss, _) = super::ols::rss(&d.columns, &d.y);
    let sum_y2: f64 = d.y.iter().map(|v| v * v).sum();
    if rss <= sum_y2 * (n as f64 * f64::EPSILON).powi(2) {
        return Err(StatsError::Degenerate {
            func: FN,
            reason: "the fixed effects fit the response exactly (zero residual variance, e.g. every value the same), so the variances and standard errors are undefined".into(),
        });
    }
    Ok(())
}

fn data(d: &Design) -> Result<Data> {
    let (n, p) = (d.y.len(), d.columns.len());
    let q: usize = d.groups.iter().map(|g| g.1.names.len()).sum();
    crate::limits::check_elems(FN, &[q as u64, q as u64, 8], 8)?;
    let mut comp = Vec::new();
    let mut codes = Vec::new();
    let mut off = 0;
    for (_, lv) in &d.groups {
        comp.push(off..off + lv.names.len());
        codes.push(lv.codes.iter().map(|c| c + off).collect::<Vec<_>>());
        off += lv.names.len();
    }
    let mut ztz = Mat::zeros(q);
    let mut ztx = vec![0.0; q * p];
    let mut zty = vec![0.0; q];
    for i in 0..n {
        for a in &codes {
            for b in &codes {
                *ztz.at_mut(a[i], b[i]) += 1.0;
            }
            for j in 0..p {
                ztx[a[i] * p + j] += d.columns[j][i];
            }
            zty[a[i]] += d.y[i];
        }
    }
    let mut xtx = Mat::zeros(p);
    let mut xty = vec![0.0; p];
    for j in 0..p {
        for k in 0..p {
            *xtx.at_mut(j, k) = dot(&d.columns[j], &d.columns[k]);
        }
        xty[j] = dot(&d.columns[j], &d.y);
    }
    Ok(Data {
        n,
        p,
        q,
        comp,
        codes,
        x: d.columns.clone(),
        y: d.y.clone(),
        ztz,
        ztx,
        zty,
        xtx,
        xty,
    })
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

impl Data {
    fn fac(&self, reml: bool) -> f64 {
        if reml {
            (self.n - self.p) as f64
        } else {
            self.n as f64
        }
    }

    /// Evaluates the profile log-likelihood and its derivatives at θ.
    fn eval(&self, theta: &[f64], reml: bool) -> Result<Eval> {
        let (n, p, q) = (self.n, self.p, self.q);
        let mut dsc = vec![0.0; q];
        for (k, r) in self.comp.iter().enumerate() {
            for l in r.clone() {
                dsc[l] = theta[k].max(0.0).sqrt();
            }
        }
        // C = I + D ZᵀZ D
        let mut c = Mat::eye(q);
        for l in 0..q {
            for m in 0..q {
                *c.at_mut(l, m) += dsc[l] * self.ztz.at(l, m) * dsc[m];
            }
        }
        let cc = Cholesky::new(&c).ok_or_else(|| StatsError::Degenerate {
            func: FN,
            reason: format!("the random-effect system is not positive definite at θ = {theta:?}"),
        })?;
        // B = D ZᵀZ (q × q), E = D ZᵀX (q × p), e = D Zᵀy. Column-major copies for solves.
        let bcols: Vec<f64> = (0..q)
            .flat_map(|m| (0..q).map(move |l| (l, m)))
            .map(|(l, m)| dsc[l] * self.ztz.at(l, m))
            .collect();
        let ecols: Vec<f64> = (0..p)
            .flat_map(|j| (0..q).map(move |l| (l, j)))
            .map(|(l, j)| dsc[l] * self.ztx[l * p + j])
            .collect();
        let cib = cc.solve_cols(&bcols, q); // C⁻¹B, column m at [m*q..]
        let cie = cc.solve_cols(&ecols, p); // C⁻¹E
                                            // S = ZᵀZ − Bᵀ C⁻¹ B
        let mut sm = Mat::zeros(q);
        for l in 0..q {
            for m in 0..q {
                let v = dot(&bcols[l * q..(l + 1) * q], &cib[m * q..(m + 1) * q]);
                *sm.at_mut(l, m) = self.ztz.at(l, m) - v;
            }
        }
        // T = ZᵀX − Bᵀ C⁻¹ E (q × p)
        let mut t = vec![0.0; q * p];
        for l in 0..q {
            for j in 0..p {
                let v = dot(&bcols[l * q..(l + 1) * q], &cie[j * q..(j + 1) * q]);
                t[l * p + j] = self.ztx[l * p + j] - v;
            }
        }
        // M = XᵀX − Eᵀ C⁻¹ E, XᵀV⁻¹y = Xᵀy − Eᵀ C⁻¹ e
        let e: Vec<f64> = (0..q).map(|l| dsc[l] * self.zty[l]).collect();
        let cie_y = cc.solve(&e);
        let mut m = Mat::zeros(p);
        let mut xvy = vec![0.0; p];
        for j in 0..p {
            for k in 0..p {
                let v = dot(&ecols[j * q..(j + 1) * q], &cie[k * q..(k + 1) * q]);
                *m.at_mut(j, k) = self.xtx.at(j, k) - v;
            }
            xvy[j] = self.xty[j] - dot(&ecols[j * q..(j + 1) * q], &cie_y);
        }
        let mc = Cholesky::new(&m).ok_or_else(|| StatsError::Degenerate {
            func: FN,
            reason: "singular design: XᵀV⁻¹X is not positive definite".into(),
        })?;
        let beta = mc.solve(&xvy);
        // Residuals in data space, then s = rᵀV⁻¹r and w = ZᵀV⁻¹r.
        let mut ztr = vec![0.0; q];
        let mut rtr = 0.0;
        for i in 0..n {
            let fit: f64 = (0..p).map(|j| self.x[j][i] * beta[j]).sum();
            let r = self.y[i] - fit;
            rtr += r * r;
            for a in &self.codes {
                ztr[a[i]] += r;
            }
        }
        let dr: Vec<f64> = (0..q).map(|l| dsc[l] * ztr[l]).collect();
        let cidr = cc.solve(&dr);
        let s = rtr - dot(&dr, &cidr);
        if !(s > 0.0 && s.is_finite()) {
            return Err(StatsError::Degenerate {
                func: FN,
                reason: "the fixed effects fit the response exactly (zero residual variance); there is no variance left to partition".into(),
            });
        }
        let w: Vec<f64> = (0..q)
            .map(|l| ztr[l] - dot(&bcols[l * q..(l + 1) * q], &cidr))
            .collect();
        // G = S − T M⁻¹ Tᵀ (Zᵀ P Z)
        let minv = mc.inverse();
        let mut g = sm.clone();
        let mut tm = vec![0.0; q * p]; // T M⁻¹
        for l in 0..q {
            for j in 0..p {
                tm[l * p + j] = (0..p).map(|k| t[l * p + k] * minv.at(k, j)).sum();
            }
        }
        for l in 0..q {
            for mm in 0..q {
                let v: f64 = (0..p).map(|j| tm[l * p + j] * t[mm * p + j]).sum();
                *g.at_mut(l, mm) -= v;
            }
        }
        let fac = self.fac(reml);
        let two_pi = 2.0 * std::f64::consts::PI;
        let llf = if reml {
            -0.5 * cc.logdet() - 0.5 * mc.logdet() - 0.5 * fac * s.ln() - 0.5 * fac * two_pi.ln()
                + 0.5 * fac * fac.ln()
                - 0.5 * fac
        } else {
            -0.5 * cc.logdet() - 0.5 * fac * s.ln() - 0.5 * fac * two_pi.ln() + 0.5 * fac * fac.ln()
                - 0.5 * fac
        };
        let tr_mat = if reml { &g } else { &sm };
        let kk = self.comp.len();
        let b: Vec<f64> = self
            .comp
            .iter()
            .map(|r| r.clone().map(|l| w[l] * w[l]).sum())
            .collect();
        let grad: Vec<f64> = (0..kk)
            .map(|k| {
                let tr: f64 = self.comp[k].clone().map(|l| tr_mat.at(l, l)).sum();
                -0.5 * tr + 0.5 * fac * b[k] / s
            })
            .collect();
        let mut hess = vec![vec![0.0; kk]; kk];
        let mut fisher = vec![vec![0.0; kk]; kk];
        for j in 0..kk {
            for k in 0..kk {
                let mut sq = 0.0;
                let mut cjk = 0.0;
                for l in self.comp[j].clone() {
                    for mm in self.comp[k].clone() {
                        sq += tr_mat.at(l, mm) * tr_mat.at(l, mm);
                        cjk += w[l] * g.at(l, mm) * w[mm];
                    }
                }
                fisher[j][k] = 0.5 * sq;
                hess[j][k] = 0.5 * sq - fac * cjk / s + 0.5 * fac * b[j] * b[k] / (s * s);
            }
        }
        let g_diag = (0..q).map(|l| g.at(l, l)).collect();
        Ok(Eval {
            g_diag,
            llf,
            grad,
            hess,
            fisher,
            beta,
            s,
            m,
            sm,
            t,
            w,
        })
    }
}

/// Solves the small system A d = g for a symmetric positive definite A given as rows.
fn solve_small(a: &[Vec<f64>], g: &[f64]) -> Option<Vec<f64>> {
    let n = g.len();
    let mut m = Mat::zeros(n);
    for i in 0..n {
        for j in 0..n {
            *m.at_mut(i, j) = a[i][j];
        }
    }
    Cholesky::new(&m).map(|c| c.solve(g))
}

/// Normal quantile by Newton refinement of statrs' start on our accurate cdf.
fn norm_quantile(p: f64) -> f64 {
    use statrs::distribution::{ContinuousCDF, Normal};
    let mut x = Normal::standard().inverse_cdf(p);
    for _ in 0..3 {
        let pdf = (-0.5 * x * x).exp() / (2.0 * std::f64::consts::PI).sqrt();
        x -= (super::dist::norm_cdf(x) - p) / pdf;
    }
    x
}

fn fit(formula_text: &str, d: Design, opts: &MixedOpts) -> Result<MixedLm> {
    check_design(&d)?;
    let dat = data(&d)?;
    let kk = dat.comp.len();
    let reml = opts.reml;
    let mut theta = vec![1.0; kk];
    let mut e = dat.eval(&theta, reml)?;
    // A grouping factor whose levels the fixed effects already determine (Z_k in the span of
    // X) leaves nothing for its variance: ZₖᵀPZₖ = 0, and the likelihood does not depend on θₖ.
    for (k, r) in dat.comp.iter().enumerate() {
        let g_tr: f64 = r.clone().map(|l| e.g_diag[l]).sum();
        let s_tr: f64 = r.clone().map(|l| e.sm.at(l, l)).sum();
        if g_tr <= 1e-10 * s_tr {
            return Err(StatsError::Degenerate {
                func: FN,
                reason: format!(
                    "the variance of '{}' is not identifiable: the fixed effects determine its levels (a fixed factor that is the same grouping under another name?)",
                    d.groups[k].0
                ),
            });
        }
    }
    let mut converged = false;
    let mut iterations = 0;
    for it in 0..opts.max_iter {
        crate::interrupt::check()?;
        iterations = it + 1;
        let free: Vec<usize> = (0..kk)
            .filter(|&k| theta[k] > 0.0 || e.grad[k] > 0.0)
            .collect();
        if free.is_empty() {
            converged = true;
            break;
        }
        let g: Vec<f64> = free.iter().map(|&k| e.grad[k]).collect();
        let neg_h: Vec<Vec<f64>> = free
            .iter()
            .map(|&j| free.iter().map(|&k| -e.hess[j][k]).collect())
            .collect();
        let fish: Vec<Vec<f64>> = free
            .iter()
            .map(|&j| free.iter().map(|&k| e.fisher[j][k]).collect())
            .collect();
        let dir = solve_small(&neg_h, &g)
            .or_else(|| solve_small(&fish, &g))
            .unwrap_or_else(|| g.clone());
        let decrement: f64 = dir.iter().zip(&g).map(|(a, b)| a * b).sum();
        if decrement.abs() < 1e-20 {
            converged = true;
            break;
        }
        let mut step = 1.0;
        let mut accepted = false;
        for _ in 0..60 {
            let mut cand = theta.clone();
            for (i, &k) in free.iter().enumerate() {
                cand[k] = (theta[k] + step * dir[i]).max(0.0);
            }
            let ec = dat.eval(&cand, reml)?;
            if ec.llf >= e.llf {
                let moved = cand
                    .iter()
                    .zip(&theta)
                    .map(|(a, b)| (a - b).abs() / (1.0 + b.abs()))
                    .fold(0.0, f64::max);
                theta = cand;
                e = ec;
                accepted = true;
                if moved < 1e-14 {
                    converged = true;
                }
                break;
            }
            step *= 0.5;
        }
        if !accepted {
            // No step improves the likelihood: a maximum to rounding.
            converged = decrement.abs() < 1e-12;
            break;
        }
        if converged {
            break;
        }
    }
    let scale = e.s / dat.fac(reml);
    let mut warnings = Vec::new();
    if !converged {
        warnings.push(format!(
            "the optimiser did not converge in {iterations} iterations (max_iter); the estimates may be inaccurate"
        ));
    }
    let free: Vec<usize> = (0..kk).filter(|&k| theta[k] > 0.0).collect();
    for (k, (g, _)) in d.groups.iter().enumerate() {
        if theta[k] == 0.0 {
            warnings.push(format!(
                "the variance of '{g}' is estimated at 0 (the boundary): the data show no variation between its levels beyond the residual"
            ));
        }
    }
    let h = dat.full_hessian(&e, &free, reml);
    let mut neg = h.clone();
    neg.a.iter_mut().for_each(|x| *x = -*x);
    let p = dat.p;
    let cov: Vec<f64> = match Cholesky::new(&neg) {
        Some(c) => {
            let inv = c.inverse();
            (0..p).map(|j| inv.at(j, j)).collect()
        }
        None => {
            warnings.push(
                "the Hessian is not negative definite at the optimum; standard errors are the GLS ones, σ²(XᵀV⁻¹X)⁻¹".into(),
            );
            let inv = Cholesky::new(&e.m)
                .map(|c| c.inverse())
                .unwrap_or(Mat::zeros(p));
            (0..p).map(|j| inv.at(j, j) * scale).collect()
        }
    };
    let zq = norm_quantile(0.5 + opts.level / 2.0);
    let fixed = (0..p)
        .map(|j| {
            let est = e.beta[j];
            let se = cov[j].sqrt();
            let z = est / se;
            FixedEffect {
                term: d.names[j].clone(),
                estimate: est,
                se,
                z,
                p: 2.0 * norm_sf(z.abs()),
                lower: est - zq * se,
                upper: est + zq * se,
            }
        })
        .collect();
    let random = d
        .groups
        .iter()
        .enumerate()
        .map(|(k, (g, lv))| VarComp {
            group: g.clone(),
            levels: lv.names.len(),
            variance: scale * theta[k],
        })
        .collect();
    Ok(MixedLm {
        formula: formula_text.to_string(),
        fixed,
        random,
        scale,
        llf: e.llf,
        reml,
        n: dat.n,
        iterations,
        converged,
        warnings,
        level: opts.level,
    })
}
