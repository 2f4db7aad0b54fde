//! Combining LoRA adapters into a new one: the host-side math of PEFT 0.21's
//! `LoraModel.add_weighted_adapter` (`peft/tuners/lora/model.py`) for the combination types
//! `"linear"`, `"cat"` and `"svd"`.
//!
//! [`combine`] takes, for each source adapter, its weight and its per-module factors
//! `Δ = scale · B A` ([`LoraFactors`]) and returns the new adapter's factors with the `r` and
//! `lora_alpha` PEFT writes into the new `LoraConfig`. PEFT's rules, reproduced here:
//!
//! - **New config.** A copy of the *first* source's config with `r = new rank`,
//!   `lora_alpha = new rank` (so the new scale is `1`, or `√r` when the first source uses
//!   rsLoRA, whose `use_rslora` the copy keeps), `target_modules` the union of the sources'
//!   target sets, and empty `rank_pattern`/`alpha_pattern`. The new rank is the common rank for
//!   `"linear"` (which needs every source to have the same `r`), the sum of the ranks for
//!   `"cat"`, and `svd_rank`, or when that is absent (or `0`) the largest rank, for `"svd"`.
//! - **One source** is always combined as `"linear"`.
//! - **Modules.** The new adapter has every module of any source. At each module only the
//!   sources that have it take part; the others are skipped (not counted as zero), except that
//!   `"cat"` still gives the module the full new rank, with zero rows of A and zero columns of
//!   B after the present sources' blocks.
//! - **`"linear"`.** With `c = weight · scale` of each present source: `A = Σ sign(c)·√|c|·Aᵢ`
//!   and `B = Σ √|c|·Bᵢ` (the sign goes on A only, so a negative weight subtracts; `c = 0`
//!   counts as positive). With several sources this is not the weighted sum of the updates (the
//!   cross terms `Bᵢ Aⱼ` remain); PEFT calls it a rough approximation.
//! - **`"cat"`.** `A = [c₁A₁; c₂A₂; …]` (rows), `B = [B₁ B₂ …]` (columns): exactly
//!   `Σ cᵢ Bᵢ Aᵢ`, weight and scale on A.
//! - **`"svd"`.** `Δ = Σ cᵢ Bᵢ Aᵢ`, then `Δ = U S Vᵀ` truncated to the new rank:
//!   `B = U_r diag(S_r)`, `A = V_rᵀ` (the singular values go to B). A singular vector is
//!   defined up to its sign, and for a zero singular value (the new rank exceeds the rank of
//!   `Δ`) the row of A is any unit vector orthogonal to the others, with a zero column of B;
//!   neither choice changes `B A`. `svd_clamp = q` clamps every entry of B and A to
//!   `[-h, h]`, `h` the `q`-quantile (linear interpolation, as `torch.quantile`) of all their
//!   entries together; see [`svd_clamp`].
//!
//! PEFT forms `Δ` and takes a full SVD of it; here the SVD of the same `Δ = B_w A_c` (the
//! weighted `B`s side by side, the `A`s stacked, total rank `R`) is taken from orthonormal bases
//! of both factors and the one-sided Jacobi [`svd`] of the `R × R` core, which is exact and
//! costs `O((out + in) R²)` instead of an `out × in` matrix and its decomposition.

use super::svd::svd;
use super::{host_tensor, AdapterError, LoraFactors};
use crate::interrupt;
use std::collections::{BTreeMap, BTreeSet};

/// How [`combine`] merges the sources (PEFT's `combination_type`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Combination {
    /// `"linear"`: weighted sums of the A and of the B factors; needs equal ranks.
    Linear,
    /// `"cat"`: the weighted factors side by side; the new rank is the sum of the ranks.
    Cat,
    /// `"svd"`: the truncated SVD of the weighted sum of the updates.
    Svd(SvdOptions),
}

/// The options of the `"svd"` combination (PEFT's `svd_rank`, `svd_clamp`,
/// `svd_full_matrices`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SvdOptions {
    /// The new rank; `None` or `Some(0)` take the largest rank of the sources (PEFT's
    /// `svd_rank or max(ranks)`).
    pub rank: Option<usize>,
    /// A quantile `q` in `[0, 1]`: B and A are clamped to `±` their `q`-quantile.
    pub clamp: Option<f64>,
    /// PEFT's `svd_full_matrices` (default true). It matters only where the new rank exceeds a
    /// module's `min(out, in)`: with full matrices PEFT fails there (a shape error, or a new
    /// adapter whose A and B do not fit), so this is an error; without, such a module keeps
    /// rank `min(out, in)`, as in PEFT.
    pub full_matrices: bool,
}

impl Default for SvdOptions {
    fn default() -> Self {
        SvdOptions {
            rank: None,
            clamp: None,
            full_matrices: true,
        }
    }
}

impl Combination {
    /// PEFT's name of the combination type.
    pub fn name(&self) -> &'static str {
        match self {
            Combination::Linear => "linear",
            Combination::Cat => "cat",
            Combination::Svd(_) => "svd",
        }
    }

    /// The combination named `name` (`"linear"`, `"cat"` or `"svd"`, the latter with `svd`);
    /// PEFT's other types (`ties`, `dare_*`, `magnitude_prune*`) are an error.
    pub fn from_name(name: &str, svd: SvdOptions) -> Result<Self, AdapterError> {
        match name {
            "linear" => Ok(Combination::Linear),
            "cat" => Ok(Combination::Cat),
            "svd" => Ok(Combination::Svd(svd)),
            other => Err(AdapterError::Option(format!(
                "combine: unknown combination type {other:?} (expected \"linear\", \"cat\" or \"svd\")"
            ))),
        }
    }
}

/// One adapter to combine.
pub struct Source<'a> {
    /// Its name (for error messages).
    pub name: &'a str,
    /// Its weight; negative weights subtract the adapter's update.
    pub weight: f64,
    /// Whether its config has `use_rslora` (only the first source's flag matters: PEFT copies
    /// the first config, so the new adapter scales by `alpha/√r = √r` when it is set).
    pub use_rslora: bool,
    /// Its factors per module path (`model.layers.0.self_attn.q_proj`), each `scale · B A`
    /// with `a` `[r, in]` and `b` `[out, r]`. The adapter's rank is the largest `r` (PEFT:
    /// `max(r, *rank_pattern.values())`).
    pub factors: &'a [(String, LoraFactors)],
}

/// The adapter [`combine`] makes.
pub struct Combined {
    /// The new config's `r`.
    pub r: usize,
    /// The new config's `lora_alpha` (PEFT sets it to `r`).
    pub lora_alpha: usize,
    /// The new config's `use_rslora` (the first source's).
    pub use_rslora: bool,
    /// The new config's `target_modules`: the sorted union of the modules' last path
    /// components. This is PEFT's union when the sources targeted module names (a list or
    /// set); for a regex string PEFT writes `"(re₁)|(re₂)"` instead.
    pub target_modules: Vec<String>,
    /// The factors per module, in the order the modules first appear among the sources; each
    /// `scale` is the new adapter's (`lora_alpha / r`, or `/ √r` with rsLoRA).
    pub factors: Vec<(String, LoraFactors)>,
}

/// A row-major `[rows, cols]` matrix of f64.
struct Mat {
    rows: usize,
    cols: usize,
    v: Vec<f64>,
}

impl Mat {
    fn row(&self, i: usize) -> &[f64] {
        &self.v[i * self.cols..(i + 1) * self.cols]
    }

    fn col(&self, j: usize) -> Vec<f64> {
        (0..self.rows).map(|i| self.v[i * self.cols + j]).collect()
    }
}

/// One source's checked factors at one module.
struct Factor {
    /// `[r, in]`.
    a: Mat,
    /// `[out, r]`.
    b: Mat,
    /// `weight · scale`.
    c: f64,
}

fn bad(msg: String) -> AdapterError {
    AdapterError::Option(format!("combine: {msg}"))
}

fn matrix(
    t: &crate::tensor::HostTensor,
    what: &str,
    adapter: &str,
    module: &str,
) -> Result<Mat, AdapterError> {
    if t.shape.len() != 2 || t.is_int() {
        return Err(bad(format!(
            "{what} of module '{module}' in adapter '{adapter}' must be a 2-D float tensor, got shape {:?}",
            t.shape
        )));
    }
    let v = t.values_f64();
    if v.iter().any(|x| !x.is_finite()) {
        return Err(bad(format!(
            "{what} of module '{module}' in adapter '{adapter}' has a non-finite value"
        )));
    }
    Ok(Mat {
        rows: t.shape[0],
        cols: t.shape[1],
        v,
    })
}

/// Combines LoRA adapters as PEFT 0.21's `add_weighted_adapter` with `combination_type`
/// `how` (see the module documentation for the exact rules). Errors: no sources, a non-finite
/// weight or scale, malformed or mismatched factors, `"linear"` over sources of different
/// ranks, an SVD rank above a module's `min(out, in)` with full matrices, a clamp quantile
/// outside `[0, 1]`; Ctrl-C stops it between modules.
pub fn combine(sources: &[Source<'_>], how: Combination) -> Result<Combined, AdapterError> {
    let first = sources
        .first()
        .ok_or_else(|| bad("no adapters to combine".into()))?;
    // PEFT: "if there is only one adapter, we can only use linear merging".
    let how = if sources.len() == 1 {
        Combination::Linear
    } else {
        how
    };

    // Checked factors per module, in first-appearance order, and each source's rank.
    let mut order: Vec<String> = Vec::new();
    let mut per_module: BTreeMap<String, Vec<Factor>> = BTreeMap::new();
    let mut dims: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    let mut ranks = Vec::with_capacity(sources.len());
    for s in sources {
        if !s.weight.is_finite() {
            return Err(bad(format!(
                "the weight of adapter '{}' is {} (must be finite)",
                s.name, s.weight
            )));
        }
        if s.factors.is_empty() {
            return Err(bad(format!("adapter '{}' has no LoRA modules", s.name)));
        }
        let mut seen = BTreeSet::new();
        let mut rank = 0;
        for (module, f) in s.factors {
            if !seen.insert(module.as_str()) {
                return Err(bad(format!(
                    "adapter '{}' lists module '{module}' twice",
                    s.name
                )));
            }
            let a = matrix(&f.a, "lora_A", s.name, module)?;
            let b = matrix(&f.b, "lora_B", s.name, module)?;
            if a.rows == 0 || a.rows != b.cols || a.cols == 0 || b.rows == 0 {
                return Err(bad(format!(
                    "module '{module}' of adapter '{}' has lora_A {:?} and lora_B {:?} (need [r, in] and [out, r] with r, in, out > 0)",
                    s.name, f.a.shape, f.b.shape
                )));
            }
            if !f.scale.is_finite() {
                return Err(bad(format!(
                    "module '{module}' of adapter '{}' has scale {} (must be finite)",
                    s.name, f.scale
                )));
            }
            let d = (b.rows, a.cols);
            match dims.get(module) {
                Some(&prev) if prev != d => {
                    return Err(bad(format!(
                        "module '{module}' is [out, in] = [{}, {}] in adapter '{}' but [{}, {}] in an earlier adapter",
                        d.0, d.1, s.name, prev.0, prev.1
                    )))
                }
                Some(_) => {}
                None => {
                    dims.insert(module.clone(), d);
                    order.push(module.clone());
                }
            }
            rank = rank.max(a.rows);
            per_module.entry(module.clone()).or_default().push(Factor {
                a,
                b,
                c: s.weight * f.scale,
            });
        }
        ranks.push(rank);
    }

    let new_r = match how {
        Combination::Linear => {
            if ranks.iter().any(|&r| r != ranks[0]) {
                let list: Vec<String> = sources
                    .iter()
                    .zip(&ranks)
                    .map(|(s, r)| format!("'{}' r={r}", s.name))
                    .collect();
                return Err(bad(format!(
                    "combination \"linear\" needs adapters of equal rank (as PEFT), but they have {}; use \"cat\" or \"svd\"",
                    list.join(", ")
                )));
            }
            ranks[0]
        }
        Combination::Cat => ranks.iter().sum(),
        Combination::Svd(o) => match o.rank {
            Some(r) if r > 0 => r,
            _ => ranks.iter().copied().max().unwrap_or(0),
        },
    };

    // Everything that can be checked is checked before any module is computed.
    if let Combination::Svd(o) = how {
        if let Some(q) = o.clamp {
            if !(0.0..=1.0).contains(&q) {
                return Err(bad(format!("clamp must be a quantile in [0, 1], got {q}")));
            }
        }
        if o.full_matrices {
            for m in &order {
                let (out_f, in_f) = dims[m];
                if new_r > out_f.min(in_f) {
                    return Err(bad(format!(
                        "svd rank {new_r} exceeds module '{m}' ([out, in] = [{out_f}, {in_f}]); PEFT's full-matrices SVD fails there (use a rank of at most {} or the option full_matrices: false)",
                        out_f.min(in_f)
                    )));
                }
            }
        }
    }
    for m in &order {
        let (out_f, in_f) = dims[m];
        crate::limits::check_elems(
            "combined adapter factors",
            &[new_r as u64, (out_f + in_f) as u64],
            8,
        )?;
    }
    if let Combination::Linear = how {
        for m in &order {
            let fs = &per_module[m];
            if let Some(f) = fs.iter().find(|f| f.a.rows != fs[0].a.rows) {
                return Err(bad(format!(
                    "combination \"linear\" needs equal ranks at every module, but module '{m}' has ranks {} and {}",
                    fs[0].a.rows, f.a.rows
                )));
            }
        }
    }

    // PEFT's scaling of the new adapter: lora_alpha / r (= 1) or lora_alpha / √r (= √r).
    let scale = if first.use_rslora {
        new_r as f64 / (new_r as f64).sqrt()
    } else {
        1.0
    };
    let mut out = Vec::with_capacity(order.len());
    for m in &order {
        interrupt::check()?;
        let (out_f, in_f) = dims[m];
        let fs = &per_module[m];
        let (a, b) = match how {
            Combination::Linear => linear(fs, in_f, out_f),
            Combination::Cat => cat(fs, new_r, in_f, out_f),
            Combination::Svd(o) => {
                let r = new_r.min(out_f.min(in_f));
                let (mut a, mut b) = svd_factors(fs, r, in_f, out_f)?;
                if let Some(q) = o.clamp {
                    svd_clamp(&mut b.v, &mut a.v, q)?;
                }
                (a, b)
            }
        };
        let f = LoraFactors {
            a: host_tensor(vec![a.rows, a.cols], to_f32(&a.v))?,
            b: host_tensor(vec![b.rows, b.cols], to_f32(&b.v))?,
            scale,
        };
        out.push((m.clone(), f));
    }
    let target_modules = order
        .iter()
        .map(|m| m.rsplit('.').next().unwrap_or(m).to_string())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    Ok(Combined {
        r: new_r,
        lora_alpha: new_r,
        use_rslora: first.use_rslora,
        target_modules,
        factors: out,
    })
}

fn to_f32(v: &[f64]) -> Vec<f32> {
    v.iter().map(|&x| x as f32).collect()
}

/// `"linear"`: `A = Σ sign(c)√|c| Aᵢ`, `B = Σ √|c| Bᵢ` (ranks checked equal by the caller).
fn linear(fs: &[Factor], in_f: usize, out_f: usize) -> (Mat, Mat) {
    let r = fs[0].a.rows;
    let mut a = vec![0.0; r * in_f];
    let mut b = vec![0.0; out_f * r];
    for f in fs {
        let root = f.c.abs().sqrt();
        let wa = if f.c >= 0.0 { root } else { -root };
        for (x, y) in a.iter_mut().zip(&f.a.v) {
            *x += wa * y;
        }
        for (x, y) in b.iter_mut().zip(&f.b.v) {
            *x += root * y;
        }
    }
    (
        Mat {
            rows: r,
            cols: in_f,
            v: a,
        },
        Mat {
            rows: out_f,
            cols: r,
            v: b,
        },
    )
}

/// `"cat"`: rows `cᵢAᵢ` and columns `Bᵢ` in source order, zero-padded to rank `new_r`.
fn cat(fs: &[Factor], new_r: usize, in_f: usize, out_f: usize) -> (Mat, Mat) {
    let mut a = vec![0.0; new_r * in_f];
    let mut b = vec![0.0; out_f * new_r];
    let mut at = 0;
    for f in fs {
        let r = f.a.rows;
        for k in 0..r {
            for j in 0..in_f {
                a[(at + k) * in_f + j] = f.c * f.a.v[k * in_f + j];
            }
            for i in 0..out_f {
                b[i * new_r + at + k] = f.b.v[i * r + k];
            }
        }
        at += r;
    }
    (
        Mat {
            rows: new_r,
            cols: in_f,
            v: a,
        },
        Mat {
            rows: out_f,
            cols: new_r,
            v: b,
        },
    )
}

fn dot(x: &[f64], y: &[f64]) -> f64 {
    x.iter().zip(y).map(|(a, b)| a * b).sum()
}

fn norm(x: &[f64]) -> f64 {
    dot(x, x).sqrt()
}

/// An orthonormal basis of the span of `vs` (Gram–Schmidt, each vector orthogonalised twice);
/// a vector whose remainder is below `1e-12` of the largest input norm adds nothing.
fn basis(vs: &[Vec<f64>]) -> Vec<Vec<f64>> {
    let top = vs.iter().map(|v| norm(v)).fold(0.0, f64::max);
    let mut q: Vec<Vec<f64>> = Vec::new();
    for v in vs {
        let mut w = v.clone();
        for _ in 0..2 {
            for e in &q {
                let d = dot(e, &w);
                w.iter_mut().zip(e).for_each(|(x, y)| *x -= d * y);
            }
        }
        let n = norm(&w);
        if n > 1e-12 * top && n > 0.0 {
            w.iter_mut().for_each(|x| *x /= n);
            q.push(w);
        }
    }
    q
}

/// `"svd"` at one module: rank-`r` factors of `Δ = Σ cᵢ Bᵢ Aᵢ`, `B = U_r S_r`, `A = V_rᵀ`.
fn svd_factors(
    fs: &[Factor],
    r: usize,
    in_f: usize,
    out_f: usize,
) -> Result<(Mat, Mat), AdapterError> {
    // Δ = Σ_j bcols[j] ⊗ arows[j] over every rank-one term of every source.
    let mut bcols = Vec::new();
    let mut arows = Vec::new();
    for f in fs {
        for k in 0..f.a.rows {
            bcols.push(f.b.col(k).into_iter().map(|x| f.c * x).collect::<Vec<_>>());
            arows.push(f.a.row(k).to_vec());
        }
    }
    // bcols[j] = Q_b rb[:, j], arows[j] = Q_a ra[:, j], so Δ = Q_b (rb raᵀ) Q_aᵀ.
    let qb = basis(&bcols);
    let qa = basis(&arows);
    let (p, q) = (qb.len(), qa.len());
    let rb: Vec<Vec<f64>> = qb
        .iter()
        .map(|e| bcols.iter().map(|c| dot(e, c)).collect())
        .collect();
    let ra: Vec<Vec<f64>> = qa
        .iter()
        .map(|e| arows.iter().map(|c| dot(e, c)).collect())
        .collect();
    let mut core = vec![0.0; p * q];
    for i in 0..p {
        for l in 0..q {
            core[i * q + l] = dot(&rb[i], &ra[l]);
        }
    }
    let mut b = vec![0.0; out_f * r];
    let mut a_rows: Vec<Vec<f64>> = Vec::with_capacity(r);
    if p > 0 && q > 0 {
        let d = svd(&core, p, q)?;
        for c in 0..d.k.min(r) {
            // U[:, c] = Q_b u[:, c] scaled by S[c]; A[c] = vt[c] Q_aᵀ.
            for (t, e) in qb.iter().enumerate() {
                let w = d.u[t * d.k + c] * d.s[c];
                if w != 0.0 {
                    for i in 0..out_f {
                        b[i * r + c] += w * e[i];
                    }
                }
            }
            let mut row = vec![0.0; in_f];
            for (t, e) in qa.iter().enumerate() {
                let w = d.vt[c * q + t];
                row.iter_mut().zip(e).for_each(|(x, y)| *x += w * y);
            }
            a_rows.push(row);
        }
    }
    // Components beyond the rank of Δ: zero columns of B, and rows of A that complete the
    // orthonormal set (the unit vector e_j least covered by the rows so far, orthogonalised).
    while a_rows.len() < r {
        let j = (0..in_f)
            .map(|j| (1.0 - a_rows.iter().map(|v| v[j] * v[j]).sum::<f64>(), j))
            .fold((f64::NEG_INFINITY, 0), |m, x| if x.0 > m.0 { x } else { m })
            .1;
        let mut w = vec![0.0; in_f];
        w[j] = 1.0;
        for _ in 0..2 {
            for e in &a_rows {
                let d = dot(e, &w);
                w.iter_mut().zip(e).for_each(|(x, y)| *x -= d * y);
            }
        }
        let n = norm(&w);
        w.iter_mut().for_each(|x| *x /= n);
        a_rows.push(w);
    }
    Ok((
        Mat {
            rows: r,
            cols: in_f,
            v: a_rows.concat(),
        },
        Mat {
            rows: out_f,
            cols: r,
            v: b,
        },
    ))
}

/// PEFT's `svd_clamp` on one module's SVD factors: `h` is the `quantile`-quantile of all entries
/// of `b` and `a` together (sorted, linearly interpolated at `quantile · (n − 1)`, as
/// `torch.quantile`), and every entry is clamped to `[-h, h]` (`min(max(x, -h), h)`, so a
/// negative `h` sets everything to `h`, as `torch.clamp` does). Errors if `quantile` is not in
/// `[0, 1]`. Note that the result depends on the signs the SVD chose for its components.
pub fn svd_clamp(b: &mut [f64], a: &mut [f64], quantile: f64) -> Result<(), AdapterError> {
    if !(0.0..=1.0).contains(&quantile) {
        return Err(bad(format!(
            "clamp must be a quantile in [0, 1], got {quantile}"
        )));
    }
    let mut all: Vec<f64> = b.iter().chain(a.iter()).copied().collect();
    if all.is_empty() {
        return Ok(());
    }
    all.sort_by(f64::total_cmp);
    let pos = quantile * (all.len() - 1) as f64;
    let lo = pos.floor() as usize;
    let hi = pos.ceil() as usize;
    let h = all[lo] + (all[hi] - all[lo]) * (pos - lo as f64);
    for x in b.iter_mut().chain(a.iter_mut()) {
        *x = x.max(-h).min(h);
    }
    Ok(())
}

#[cfg(test)]
#[path = "combine_tests.rs"]
mod tests;

/// The options of `m.combine(weights, opts)`.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CombineOptions {
    /// `"linear"`, `"cat"` or `"svd"` (PEFT's `combination_type`; its default is `"svd"`).
    pub method: String,
    /// The new rank of `"svd"` (PEFT's `svd_rank`; default: the largest source rank).
    pub r: Option<usize>,
    /// The clamp quantile of `"svd"` (PEFT's `svd_clamp`).
    pub clamp: Option<f64>,
    /// PEFT's `svd_full_matrices`.
    pub full_matrices: bool,
    /// The new adapter's name.
    pub name: String,
}

impl Default for CombineOptions {
    fn default() -> Self {
        CombineOptions {
            method: "svd".into(),
            r: None,
            clamp: None,
            full_matrices: true,
            name: "combined".into(),
        }
    }
}

impl CombineOptions {
    /// The combination the options ask for; `r`, `clamp` and `full_matrices` belong to
    /// `"svd"` and are an error with another method.
    pub fn combination(&self) -> Result<Combination, AdapterError> {
        let svd = SvdOptions {
            rank: self.r,
            clamp: self.clamp,
            full_matrices: self.full_matrices,
        };
        let how = Combination::from_name(&self.method, svd)?;
        if !matches!(how, Combination::Svd(_))
            && (self.r.is_some() || self.clamp.is_some() || !self.full_matrices)
        {
            return Err(AdapterError::Option(format!(
                "combine: r, clamp and full_matrices are options of method \"svd\", not \"{}\"",
                self.method
            )));
        }
        Ok(how)
    }
}
