//! Effect sizes of a one-way design with confidence intervals: η², ω² and Cohen's f for the
//! whole factor, and Hedges' g for every pair of groups.
//!
//! With k groups, N values, SS_b = Σ nᵢ(x̄ᵢ − x̄)², SS_w = ΣΣ(x − x̄ᵢ)², SS_t = SS_b + SS_w,
//! df_b = k − 1, df_w = N − k, MS_w = SS_w/df_w and F = (SS_b/df_b)/MS_w:
//! - η² = SS_b/SS_t;
//! - ω² = (SS_b − df_b·MS_w)/(SS_t + MS_w) (less biased; negative when F < 1, reported as is);
//! - Cohen's f = √(η²/(1 − η²)) = √(SS_b/SS_w).
//!
//! **Interval for the factor** (Steiger 2004, *Psychological Methods* 9:164; Smithson 2003):
//! the observed F is noncentral F(df_b, df_w, λ) distributed. With level L (0.95) the limits
//! of λ solve ncf.cdf(F; df_b, df_w, λ_lo) = (1 + L)/2 and ncf.cdf(F; df_b, df_w, λ_hi) =
//! (1 − L)/2 (the cdf falls as λ grows); a limit is 0 when even λ = 0 gives a cdf at or below
//! its target (so both are 0 when F is below the (1 − L)/2 quantile of the central F). Then
//! η² and ω² limits are λ/(λ + N) and f limits √(λ/N): the population η² and ω² are the same
//! parameter f²/(1 + f²) (ω² only estimates it with less bias), so they share the interval.
//! The point estimates need not lie inside it (ω² is below η²; the limits may both be 0).
//!
//! **Pairs** (a, b), in order of first appearance: diff = x̄_b − x̄_a, s_p² = ((n_a − 1)s_a² +
//! (n_b − 1)s_b²)/ν with ν = n_a + n_b − 2 (the two groups only), Cohen's d = diff/s_p, and
//! Hedges' g = J·d with the exact small-sample factor J = Γ(ν/2)/(√(ν/2)·Γ((ν − 1)/2)) (Hedges
//! 1981; the approximation 1 − 3/(4(n_a + n_b) − 9) differs by < 0.3 % for ν ≥ 4). The interval
//! inverts the noncentral t: t = d/√(1/n_a + 1/n_b) is noncentral t(ν, δ) with
//! δ = d_pop/√(1/n_a + 1/n_b); δ_lo, δ_hi solve nct.cdf(t; ν, δ) = (1 + L)/2 and (1 − L)/2, and
//! g's limits are J·δ·√(1/n_a + 1/n_b).
//!
//! Errors: fewer than two groups, a group with fewer than two values, non-finite values, zero
//! variance in every group (F undefined), a pair whose pooled sd is 0, level outside (0, 1).
//!
//! **Separations beyond the supported noncentrality.** The noncentral F and t are evaluated for
//! λ ≤ 1e5 (|δ| ≤ 316) only. When an interval limit lies beyond (a very strong effect, e.g.
//! F ≈ 7·10⁵ from two groups with sd 0.0002 and means 0.1 apart), the point estimates are still
//! returned, that limit is `None` (`()` in Rhai) and a `note` says why; both limits of an
//! interval are then `None` (the lower one alone would be a one-sided bound nobody asked for).
//! No NaN is returned.

use super::anova::oneway_anova;
use super::describe::{mean, variance};
use super::noncentral::{ncf_cdf, nct_cdf, MAX_NONCENTRALITY};
use super::quad::brent;
use super::{check_named_groups, int, Result, StatsError};
use crate::value::{num, Row, Value};
use statrs::function::gamma::ln_gamma;

const FN: &str = "effect_sizes";

/// Hedges' g of one pair of groups.
#[derive(Debug, Clone, PartialEq)]
pub struct PairEffect {
    /// First group.
    pub a: String,
    /// Second group.
    pub b: String,
    /// Size of a.
    pub n_a: usize,
    /// Size of b.
    pub n_b: usize,
    /// mean(b) − mean(a).
    pub diff: f64,
    /// Cohen's d = diff / pooled sd of a and b.
    pub d: f64,
    /// The small-sample factor J.
    pub j: f64,
    /// Hedges' g = J·d.
    pub g: f64,
    /// Lower limit of g (`None` beyond the supported noncentrality, see the module docs).
    pub lower: Option<f64>,
    /// Upper limit of g (`None` beyond the supported noncentrality).
    pub upper: Option<f64>,
}

impl PairEffect {
    /// The row `a, b, n_a, n_b, diff, d, j, g, lower, upper` (limits `()` with a `note` when
    /// they cannot be computed).
    pub fn to_row(&self) -> Row {
        let mut r = Row::new();
        r.insert("a".into(), Value::String(self.a.clone()));
        r.insert("b".into(), Value::String(self.b.clone()));
        r.insert("n_a".into(), int(self.n_a));
        r.insert("n_b".into(), int(self.n_b));
        r.insert("diff".into(), num(self.diff));
        r.insert("d".into(), num(self.d));
        r.insert("j".into(), num(self.j));
        r.insert("g".into(), num(self.g));
        r.insert("lower".into(), opt(self.lower));
        r.insert("upper".into(), opt(self.upper));
        if self.lower.is_none() {
            r.insert("note".into(), Value::String(BEYOND_T.into()));
        }
        r
    }
}

const BEYOND_T: &str = "the interval of g is not computed: the groups are separated so far (|t| beyond what the noncentral t is evaluated for, |δ| ≤ 316) that its limits lie outside the supported range";
const BEYOND_F: &str = "the interval of eta_sq, omega_sq and cohens_f is not computed: F is so large that the upper noncentrality limit lies beyond the supported 1e5 of the noncentral F";

fn opt(x: Option<f64>) -> Value {
    x.map_or(Value::Null, num)
}

/// Effect sizes of a one-way design (see the module docs).
#[derive(Debug, Clone, PartialEq)]
pub struct EffectSizes {
    /// Confidence level.
    pub level: f64,
    /// F statistic.
    pub f: f64,
    /// k − 1.
    pub df_between: usize,
    /// N − k.
    pub df_within: usize,
    /// N.
    pub n: usize,
    /// η².
    pub eta_sq: f64,
    /// ω².
    pub omega_sq: f64,
    /// Cohen's f.
    pub cohens_f: f64,
    /// Lower limit of the noncentrality λ (`None` beyond the supported range, see the module docs).
    pub lambda_lower: Option<f64>,
    /// Upper limit of λ (`None` beyond the supported range).
    pub lambda_upper: Option<f64>,
    /// Every pair of groups.
    pub pairs: Vec<PairEffect>,
}

impl EffectSizes {
    /// The row `eta_sq, eta_sq_lower, eta_sq_upper, omega_sq, omega_sq_lower, omega_sq_upper,
    /// cohens_f, cohens_f_lower, cohens_f_upper, lambda_lower, lambda_upper, level, F,
    /// df_between, df_within, n, pairs` (`pairs` an array of [`PairEffect::to_row`] maps), the
    /// limits `()` plus a `note` when they cannot be computed.
    pub fn to_row(&self) -> Row {
        let n = self.n as f64;
        let eta = |l: Option<f64>| opt(l.map(|l| l / (l + n)));
        let f = |l: Option<f64>| opt(l.map(|l| (l / n).sqrt()));
        let mut r = Row::new();
        r.insert("eta_sq".into(), num(self.eta_sq));
        r.insert("eta_sq_lower".into(), eta(self.lambda_lower));
        r.insert("eta_sq_upper".into(), eta(self.lambda_upper));
        r.insert("omega_sq".into(), num(self.omega_sq));
        r.insert("omega_sq_lower".into(), eta(self.lambda_lower));
        r.insert("omega_sq_upper".into(), eta(self.lambda_upper));
        r.insert("cohens_f".into(), num(self.cohens_f));
        r.insert("cohens_f_lower".into(), f(self.lambda_lower));
        r.insert("cohens_f_upper".into(), f(self.lambda_upper));
        r.insert("lambda_lower".into(), opt(self.lambda_lower));
        r.insert("lambda_upper".into(), opt(self.lambda_upper));
        if self.lambda_upper.is_none() {
            r.insert("note".into(), Value::String(BEYOND_F.into()));
        }
        r.insert("level".into(), num(self.level));
        r.insert("F".into(), num(self.f));
        r.insert("df_between".into(), int(self.df_between));
        r.insert("df_within".into(), int(self.df_within));
        r.insert("n".into(), int(self.n));
        r.insert(
            "pairs".into(),
            Value::Array(
                self.pairs
                    .iter()
                    .map(|p| Value::Object(p.to_row()))
                    .collect(),
            ),
        );
        r
    }
}

/// Root of a decreasing `cdf(x)` = `target` on [lo, hi] (cdf(lo) > target > cdf(hi)).
fn root(
    what: &str,
    cdf: impl Fn(f64) -> Result<f64>,
    target: f64,
    (lo, c_lo): (f64, f64),
    (hi, c_hi): (f64, f64),
) -> Result<f64> {
    let mut err = None;
    let r = brent(
        |x| match cdf(x) {
            Ok(c) => c - target,
            Err(e) => {
                err.get_or_insert(e);
                0.0
            }
        },
        lo,
        hi,
        c_lo - target,
        c_hi - target,
        1e-300,
    );
    if let Some(e) = err {
        return Err(e);
    }
    r.ok_or_else(|| StatsError::Degenerate {
        func: FN,
        reason: format!("root finding for {what} failed"),
    })
}

/// The λ with ncf.cdf(F; d1, d2, λ) = `target`, 0 when ncf.cdf(F; d1, d2, 0) ≤ target, or
/// `None` when even λ = 1e5 (the supported maximum) leaves the cdf at or above the target.
fn lambda_limit(f_obs: f64, d1: f64, d2: f64, target: f64) -> Result<Option<f64>> {
    let cdf = |l: f64| ncf_cdf(f_obs, d1, d2, l);
    let c0 = cdf(0.0)?;
    if c0 <= target {
        return Ok(Some(0.0));
    }
    let (mut lo, mut c_lo) = (0.0, c0);
    let mut hi = (f_obs * d1).clamp(1.0, MAX_NONCENTRALITY);
    loop {
        let c_hi = cdf(hi)?;
        if c_hi < target {
            return root(
                "the noncentrality limit",
                cdf,
                target,
                (lo, c_lo),
                (hi, c_hi),
            )
            .map(Some);
        }
        if hi >= MAX_NONCENTRALITY {
            return Ok(None);
        }
        (lo, c_lo) = (hi, c_hi);
        hi = (hi * 2.0).min(MAX_NONCENTRALITY);
    }
}

/// The δ with nct.cdf(t; ν, δ) = `target` (the cdf falls as δ grows), or `None` when it lies
/// beyond the supported |δ| ≤ √1e5.
fn delta_limit(t: f64, nu: f64, target: f64) -> Result<Option<f64>> {
    let cdf = |d: f64| nct_cdf(t, nu, d);
    let max = MAX_NONCENTRALITY.sqrt();
    let mut step = 1.0;
    let (mut lo, mut hi) = ((t - step).clamp(-max, max), (t + step).clamp(-max, max));
    let (mut c_lo, mut c_hi) = (cdf(lo)?, cdf(hi)?);
    while c_lo <= target || c_hi >= target {
        if lo <= -max || hi >= max {
            return Ok(None);
        }
        step *= 2.0;
        if c_lo <= target {
            lo = (t - step).clamp(-max, max);
            c_lo = cdf(lo)?;
        }
        if c_hi >= target {
            hi = (t + step).clamp(-max, max);
            c_hi = cdf(hi)?;
        }
    }
    root(
        "the noncentrality limit",
        cdf,
        target,
        (lo, c_lo),
        (hi, c_hi),
    )
    .map(Some)
}

/// The exact small-sample factor J(ν) = Γ(ν/2)/(√(ν/2)·Γ((ν − 1)/2)) of Hedges' g.
pub fn hedges_j(nu: f64) -> f64 {
    (ln_gamma(nu / 2.0) - ln_gamma((nu - 1.0) / 2.0)).exp() / (nu / 2.0).sqrt()
}

/// Effect sizes of the named `groups` with intervals at confidence `level` (e.g. 0.95).
pub fn effect_sizes(groups: &[(String, Vec<f64>)], level: f64) -> Result<EffectSizes> {
    if !(level > 0.0 && level < 1.0) {
        return Err(StatsError::InvalidArgument {
            func: FN,
            name: "level",
            value: level.to_string(),
            expected: "0 < level < 1",
        });
    }
    check_named_groups(FN, groups, 2)?;
    let values: Vec<Vec<f64>> = groups.iter().map(|g| g.1.clone()).collect();
    let a = oneway_anova(&values).map_err(|e| match e {
        StatsError::Degenerate { reason, .. } => StatsError::Degenerate { func: FN, reason },
        other => other,
    })?;
    let n: usize = values.iter().map(Vec::len).sum();
    let (d1, d2) = (a.df_between as f64, a.df_within as f64);
    let ms_w = a.ss_within / d2;
    let ss_t = a.ss_between + a.ss_within;
    let upper_q = (1.0 + level) / 2.0;
    let lower_q = (1.0 - level) / 2.0;
    let lambda_upper = lambda_limit(a.f, d1, d2, lower_q)?;
    // The lower limit alone would be a one-sided bound: reported only with the upper one.
    let lambda_lower = match lambda_upper {
        Some(_) => lambda_limit(a.f, d1, d2, upper_q)?,
        None => None,
    };
    let mut pairs = Vec::new();
    for i in 0..groups.len() {
        for j in i + 1..groups.len() {
            let (na, xa) = (&groups[i].0, &groups[i].1);
            let (nb, xb) = (&groups[j].0, &groups[j].1);
            crate::interrupt::check()?;
            let (n_a, n_b) = (xa.len() as f64, xb.len() as f64);
            let nu = n_a + n_b - 2.0;
            let sp = (((n_a - 1.0) * variance(xa) + (n_b - 1.0) * variance(xb)) / nu).sqrt();
            let diff = mean(xb) - mean(xa);
            if sp.is_nan() || sp <= 0.0 {
                return Err(StatsError::Degenerate {
                    func: FN,
                    reason: format!(
                        "groups '{na}' and '{nb}' both have zero variance, so their Hedges' g is undefined"
                    ),
                });
            }
            let d = diff / sp;
            let scale = (1.0 / n_a + 1.0 / n_b).sqrt();
            let t = d / scale;
            let jf = hedges_j(nu);
            let (lo, hi) = match (delta_limit(t, nu, upper_q)?, delta_limit(t, nu, lower_q)?) {
                (Some(lo), Some(hi)) => (Some(lo), Some(hi)),
                _ => (None, None),
            };
            pairs.push(PairEffect {
                a: na.clone(),
                b: nb.clone(),
                n_a: xa.len(),
                n_b: xb.len(),
                diff,
                d,
                j: jf,
                g: jf * d,
                lower: lo.map(|lo| jf * lo * scale),
                upper: hi.map(|hi| jf * hi * scale),
            });
        }
    }
    Ok(EffectSizes {
        level,
        f: a.f,
        df_between: a.df_between,
        df_within: a.df_within,
        n,
        eta_sq: a.eta_sq,
        omega_sq: (a.ss_between - d1 * ms_w) / (ss_t + ms_w),
        cohens_f: (a.ss_between / a.ss_within).sqrt(),
        lambda_lower,
        lambda_upper,
        pairs,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::named_groups as named;

    #[test]
    fn hand_computed_point_estimates() {
        // Means 0, 1, 2 with deviations ±1 (n = 2): SS_b = 2(1 + 0 + 1) = 4, SS_w = 6,
        // SS_t = 10, df_b = 2, df_w = 3, MS_w = 2, F = 2/2 = 1.
        let g = named(&[&[-1.0, 1.0], &[0.0, 2.0], &[1.0, 3.0]]);
        let r = effect_sizes(&g, 0.95).unwrap();
        assert!((r.eta_sq - 0.4).abs() < 1e-15);
        assert!((r.omega_sq - (4.0 - 2.0 * 2.0) / (10.0 + 2.0)).abs() < 1e-15);
        assert!((r.cohens_f - (4.0f64 / 6.0).sqrt()).abs() < 1e-15);
        assert!((r.f - 1.0).abs() < 1e-14);
        // Pair (g0, g2): diff 2, s_p² = (2 + 2)/2 = 2, d = 2/√2, ν = 2:
        // J(2) = Γ(1)/(√1·Γ(½)) = 1/√π.
        let p = &r.pairs[1];
        assert_eq!((p.a.as_str(), p.b.as_str()), ("g0", "g2"));
        assert!((p.d - 2.0 / 2f64.sqrt()).abs() < 1e-15);
        assert!((p.j - 1.0 / std::f64::consts::PI.sqrt()).abs() < 1e-15);
        assert!((p.g - p.j * p.d).abs() < 1e-15);
        // The approximation 1 − 3/(4·N − 9) is close for larger ν: J(38) vs 1 − 3/151.
        assert!((hedges_j(38.0) - (1.0 - 3.0 / 151.0)).abs() < 1e-4);
        // F = 1 with df (2, 3): the lower λ limit is 0 (cdf(1; λ = 0) = 0.5 < 0.975).
        assert_eq!(r.lambda_lower, Some(0.0));
        assert!(r.lambda_upper.unwrap() > 0.0);
        let row = r.to_row();
        assert_eq!(row["omega_sq_lower"], row["eta_sq_lower"]);
        // Equal means: F = 0, η² = 0, ω² = −2·MS_w/(SS_t + MS_w) = −2·2/(6 + 2) (SS_w = 6,
        // df_w = 3), and both λ limits 0 (cdf(0; λ) = 0 is below both targets).
        let z = effect_sizes(&named(&[&[0.0, 2.0], &[0.0, 2.0], &[0.0, 2.0]]), 0.95).unwrap();
        assert_eq!((z.f, z.eta_sq, z.cohens_f), (0.0, 0.0, 0.0));
        assert!((z.omega_sq + 0.5).abs() < 1e-15);
        assert_eq!((z.lambda_lower, z.lambda_upper), (Some(0.0), Some(0.0)));
        assert_eq!(row["pairs"].as_array().map(Vec::len), Some(3));
    }

    #[test]
    fn limits_invert_the_noncentral_distributions() {
        let g = named(&[
            &[0.1, 0.5, -0.3, 0.2, 0.0],
            &[1.2, 0.8, 1.9, 1.1, 1.4],
            &[2.2, 1.7, 2.5, 2.0, 2.9],
        ]);
        let r = effect_sizes(&g, 0.9).unwrap();
        let (d1, d2) = (r.df_between as f64, r.df_within as f64);
        let c_lo = ncf_cdf(r.f, d1, d2, r.lambda_lower.unwrap()).unwrap();
        let c_hi = ncf_cdf(r.f, d1, d2, r.lambda_upper.unwrap()).unwrap();
        assert!(
            (c_lo - 0.95).abs() < 1e-9 && (c_hi - 0.05).abs() < 1e-9,
            "{c_lo} {c_hi}"
        );
        for p in &r.pairs {
            let scale = (1.0 / p.n_a as f64 + 1.0 / p.n_b as f64).sqrt();
            let nu = (p.n_a + p.n_b - 2) as f64;
            let t = p.d / scale;
            let (lower, upper) = (p.lower.unwrap(), p.upper.unwrap());
            let c = nct_cdf(t, nu, lower / (p.j * scale)).unwrap();
            assert!((c - 0.95).abs() < 1e-9, "{c}");
            let c = nct_cdf(t, nu, upper / (p.j * scale)).unwrap();
            assert!((c - 0.05).abs() < 1e-9, "{c}");
            assert!(lower < p.g && p.g < upper);
        }
    }

    #[test]
    fn degenerate_inputs() {
        let e = |g: &[&[f64]]| effect_sizes(&named(g), 0.95).unwrap_err().to_string();
        assert!(e(&[&[1.0, 2.0]]).contains("at least two groups"));
        assert!(e(&[&[1.0, 2.0], &[3.0]]).contains("'g1' has 1 value(s)"));
        let msg = e(&[&[1.0, 1.0], &[2.0, 2.0]]);
        assert!(
            msg.starts_with("effect_sizes:") && msg.contains("zero variance"),
            "{msg}"
        );
        let msg = e(&[&[1.0, 1.0], &[2.0, 2.0], &[0.0, 5.0]]);
        assert!(
            msg.contains("'g0' and 'g1' both have zero variance"),
            "{msg}"
        );
        let msg = effect_sizes(&named(&[&[1.0, 2.0], &[2.0, 3.0]]), 1.0)
            .unwrap_err()
            .to_string();
        assert!(msg.contains("level = 1"), "{msg}");
    }

    #[test]
    fn strong_effect_keeps_point_estimates() {
        // Two methods, 5 seeds each, sd ≈ 0.0002, means 0.1 apart: F ≈ 6.8e5, beyond the
        // noncentral F's range; the point estimates come back, the limits are () with a note.
        let a = [0.5, 0.5002, 0.4998, 0.5001, 0.4999];
        let b: Vec<f64> = a.iter().map(|x| x + 0.1).collect();
        let r = effect_sizes(&named(&[&a, &b]), 0.95).unwrap();
        assert!(
            r.f > 5e5 && r.eta_sq > 0.99999 && r.cohens_f > 200.0,
            "{r:?}"
        );
        assert_eq!((r.lambda_lower, r.lambda_upper), (None, None));
        let row = r.to_row();
        for k in [
            "eta_sq_lower",
            "omega_sq_upper",
            "cohens_f_lower",
            "lambda_upper",
        ] {
            assert_eq!(row[k], Value::Null, "{k}");
        }
        assert!(matches!(&row["note"], Value::String(s) if s.contains("not computed")));
        assert!(row["eta_sq"].as_f64().unwrap() > 0.99999);
        let p = &r.pairs[0];
        assert!((p.diff - 0.1).abs() < 1e-12 && p.g > 100.0);
        assert_eq!((p.lower, p.upper), (None, None));
        assert!(p.to_row().contains_key("note"));
    }
}
