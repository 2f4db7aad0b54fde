//! Statistical power of the one-way ANOVA F test and of the two-sample t test, and the sample
//! size or effect size that reaches a given power, as statsmodels 0.15 `FTestAnovaPower` and
//! `TTestIndPower` (`power` and `solve_power`).
//!
//! **ANOVA** (`FTestAnovaPower`, k equal-sized groups): effect size Cohen's f (the sd of the
//! group means divided by the within-group sd), `nobs` = N the **total** sample size (all
//! groups together), df_num = k − 1, df_denom = N − k, noncentrality λ = f²·N, and
//! power = P(F′ > F_crit) with F_crit = `f.isf(alpha, df_num, df_denom)` and F′ the noncentral
//! F(df_num, df_denom, λ).
//!
//! **Two-sample t** (`TTestIndPower`): effect size Cohen's d = (μ₁ − μ₂)/σ, group sizes
//! n₁ = `nobs1` and n₂ = `ratio`·n₁, df = n₁ + n₂ − 2, noncentrality δ = d·√(n₁n₂/(n₁ + n₂)).
//! With T′ the noncentral t(df, δ): `"two-sided"` power = P(T′ > t_{α/2}) + P(T′ < −t_{α/2});
//! `"larger"` P(T′ > t_α); `"smaller"` P(T′ < −t_α), where t_p = `t.isf(p, df)`.
//!
//! **Solving.** Exactly one of effect size, sample size (`nobs` / `nobs1`) and power is left
//! out and is solved for (statsmodels `solve_power`): power directly; the others by Brent's
//! method on power(x) − target, over a bracket found by doubling (power increases with the
//! sample size and with |effect size|). Sample sizes are solved as continuous numbers (the
//! result also carries the ceiling). The effect size is solved positive, except for
//! `"smaller"` where it is negative (a two-sided power is symmetric in d). Unlike statsmodels
//! (which searches f in (1e-8, 1 − 1e-8) only), f is not bounded above. Alpha is not solved.
//!
//! Errors (never a NaN): k_groups < 2; nobs ≤ k_groups (no residual df) or n₁(1 + ratio) ≤ 2;
//! alpha outside (0, 1); a target power outside (alpha, 1); effect size 0 (or of the wrong sign
//! for a one-sided alternative) when solving for the sample size; a target that is not reached
//! within the supported range (λ or δ² ≤ 1e5, N ≤ 1e12). An effect size of 0 with the power
//! solved gives power = alpha, as in statsmodels.

use super::anova::oneway_anova;
use super::noncentral::{f_isf, ncf_sf, nct_cdf_sf, t_isf, MAX_NONCENTRALITY};
use super::quad::brent;
use super::{int, Result, StatsError};
use crate::value::{num, Row, Value};

/// What `anova_power` accepts as an effect size (the same text for every form).
const F_DOMAIN: &str = "a finite Cohen's f ≥ 0";

/// Largest sample size considered when solving.
const MAX_NOBS: f64 = 1.0e12;

fn invalid(
    func: &'static str,
    name: &'static str,
    value: impl ToString,
    expected: &'static str,
) -> StatsError {
    StatsError::InvalidArgument {
        func,
        name,
        value: value.to_string(),
        expected,
    }
}

fn check_alpha(func: &'static str, alpha: f64) -> Result<()> {
    if alpha > 0.0 && alpha < 1.0 {
        Ok(())
    } else {
        Err(invalid(func, "alpha", alpha, "0 < alpha < 1"))
    }
}

fn check_target(func: &'static str, power: f64, alpha: f64) -> Result<()> {
    if power > alpha && power < 1.0 {
        Ok(())
    } else {
        Err(invalid(
            func,
            "power",
            format!("{power} (alpha = {alpha})"),
            "alpha < power < 1 (power at effect size 0 is alpha)",
        ))
    }
}

/// ⌈x⌉ as an integer (sample sizes are below 1e12, so exact).
fn ceil_int(x: f64) -> Value {
    Value::from(x.ceil() as u64)
}

/// Which quantity was solved for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Solved {
    /// The power.
    Power,
    /// The (total or first-group) sample size.
    Nobs,
    /// The effect size.
    EffectSize,
}

impl Solved {
    fn name(self, nobs: &'static str) -> &'static str {
        match self {
            Solved::Power => "power",
            Solved::Nobs => nobs,
            Solved::EffectSize => "effect_size",
        }
    }
}

/// Which one of three optional inputs is missing (exactly one must be).
fn missing(
    func: &'static str,
    effect: Option<f64>,
    nobs: Option<f64>,
    power: Option<f64>,
    nobs_name: &'static str,
) -> Result<Solved> {
    match (effect.is_none(), nobs.is_none(), power.is_none()) {
        (false, false, true) => Ok(Solved::Power),
        (false, true, false) => Ok(Solved::Nobs),
        (true, false, false) => Ok(Solved::EffectSize),
        _ => {
            let given: Vec<&str> = [("effect_size", effect), (nobs_name, nobs), ("power", power)]
                .iter()
                .filter(|(_, v)| v.is_some())
                .map(|(k, _)| *k)
                .collect();
            Err(StatsError::InvalidArgument {
                func,
                name: "options",
                value: format!("given: [{}]", given.join(", ")),
                expected: "exactly one of effect_size, the sample size and power left out (or ()): it is solved for",
            })
        }
    }
}

/// Finds x in (lo, ∞) with `g(x)` = 0 for an increasing `g`, g(lo) < 0: doubles `hi` from
/// `start` until g(hi) ≥ 0 (at most up to `max`), then Brent.
fn solve_up(
    func: &'static str,
    what: &'static str,
    mut g: impl FnMut(f64) -> Result<f64>,
    lo: f64,
    start: f64,
    max: f64,
) -> Result<f64> {
    let (mut a, mut ga) = (lo, g(lo)?);
    let mut b = start.max(lo);
    let mut gb;
    loop {
        gb = g(b)?;
        if gb >= 0.0 {
            break;
        }
        a = b;
        ga = gb;
        b *= 2.0;
        if b > max {
            return Err(StatsError::Degenerate {
                func,
                reason: format!(
                    "the target power is not reached for {what} up to {}",
                    fmt_num(max)
                ),
            });
        }
    }
    let mut err = None;
    let root = brent(
        |x| match g(x) {
            Ok(v) => v,
            Err(e) => {
                err.get_or_insert(e);
                0.0
            }
        },
        a,
        b,
        ga,
        gb,
        1e-300,
    );
    if let Some(e) = err {
        return Err(e);
    }
    root.ok_or_else(|| StatsError::Degenerate {
        func,
        reason: format!("root finding for {what} failed"),
    })
}

/// Finds the smallest-side bracket start in (edge, edge + 1]: `edge + 1` if g(edge + 1) < 0,
/// else edge + 2⁻ᵐ for the first m ≤ 40 with g < 0.
fn lower_start(
    func: &'static str,
    what: &'static str,
    mut g: impl FnMut(f64) -> Result<f64>,
    edge: f64,
    unit: f64,
) -> Result<f64> {
    let mut step = unit;
    for _ in 0..40 {
        let x = edge + step;
        if g(x)? < 0.0 {
            return Ok(x);
        }
        step /= 2.0;
    }
    Err(StatsError::Degenerate {
        func,
        reason: format!(
            "the target power is already exceeded at the smallest {what} ({edge} + {})",
            fmt_num(step)
        ),
    })
}

/// Power of the one-way ANOVA F test (statsmodels `FTestAnovaPower().power(effect_size, nobs,
/// alpha, k_groups)`).
pub fn anova_power_of(effect_size: f64, nobs: f64, alpha: f64, k_groups: usize) -> Result<f64> {
    const FN: &str = "anova_power";
    check_alpha(FN, alpha)?;
    if k_groups < 2 {
        return Err(invalid(FN, "k_groups", k_groups, "at least 2 groups"));
    }
    let k = k_groups as f64;
    if !(nobs > k && nobs.is_finite()) {
        return Err(invalid(
            FN,
            "nobs",
            format!("{nobs} (k_groups = {k_groups})"),
            "a total sample size larger than k_groups (nobs is the total over all groups)",
        ));
    }
    if !(effect_size >= 0.0 && effect_size.is_finite()) {
        return Err(invalid(FN, "effect_size", effect_size, F_DOMAIN));
    }
    let lambda = effect_size * effect_size * nobs;
    let crit = f_isf(alpha, k - 1.0, nobs - k)?;
    if lambda > MAX_NONCENTRALITY {
        // Beyond the range of the noncentral F series: the power is 1 when the miss
        // probability provably rounds away (see `ncf_miss_bound`), else we cannot evaluate it.
        if ncf_miss_bound(crit, k - 1.0, nobs - k, lambda) <= MISS_ROUNDS_AWAY {
            return Ok(1.0);
        }
        return Err(StatsError::Degenerate {
            func: FN,
            reason: format!(
                "the power at effect_size = {} and nobs = {} (noncentrality f²·nobs = {}) cannot be evaluated: the noncentral F is computed for noncentralities up to 1e5 only, and beyond that the power is shown to be 1 only when the residual df (nobs − k_groups = {}) is large enough for the critical value {} to be far below the noncentrality",
                fmt_num(effect_size),
                fmt_num(nobs),
                fmt_num(lambda),
                fmt_num(nobs - k),
                fmt_num(crit),
            ),
        });
    }
    ncf_sf(crit, k - 1.0, nobs - k, lambda)
}

/// 1 − m rounds to 1.0 in f64 when m ≤ 2⁻⁵⁴ (half the spacing of the doubles just below 1).
const MISS_ROUNDS_AWAY: f64 = 1.0 / 18014398509481984.0;

/// An upper bound on the miss probability P(F′ ≤ crit) of the noncentral F′(d1, d2, λ), d1 ≥ 1,
/// used where λ is too large for the series.
///
/// F′ = (X/d1)/(W/d2) with X ~ χ′²(d1, λ) and W ~ χ²(d2) independent, so with a = d1·crit/d2
/// and any c > d2: P(F′ ≤ crit) = P(X ≤ aW) ≤ P(W > c) + P(X ≤ a·c). X = (Z + √λ)² + Y with
/// Z ~ N(0, 1) and Y ~ χ²(d1 − 1) ≥ 0, so P(X ≤ x) ≤ P(Z ≤ √x − √λ) ≤ ½·exp(−(√λ − √x)²/2)
/// when √x < √λ (the Chernoff bound of the normal tail). The Chernoff bound of the chi-square
/// tail is P(W > c) ≤ (u·e^{1−u})^{d2/2}, u = c/d2 > 1. The result is the smallest sum over
/// u = 2, 4, …, 2⁶⁰ (1 when none applies). Example: k = 2 groups of 5 (d1 = 1, d2 = 8,
/// crit = 5.32) with λ = 8.4·10⁵: u = 16 gives 6·10⁻²² + 0 < 2⁻⁵⁴, so the power is 1 in f64.
fn ncf_miss_bound(crit: f64, d1: f64, d2: f64, lambda: f64) -> f64 {
    let a = d1 * crit / d2;
    let mut best = 1.0f64;
    for j in 1..=60 {
        let u = 2f64.powi(j);
        let chi_tail = ((u.ln() + 1.0 - u) * d2 / 2.0).exp();
        let gap = lambda.sqrt() - (a * u * d2).sqrt();
        if gap > 0.0 {
            best = best.min(chi_tail + 0.5 * (-gap * gap / 2.0).exp());
        }
    }
    best
}

/// A number for an error message: shortest round-trip form, in exponent form only when very
/// large or small (`1e-300`, `675675.67`, not `6.7567567e5`).
fn fmt_num(x: f64) -> String {
    if x != 0.0 && x.is_finite() && !(1e-4..1e15).contains(&x.abs()) {
        format!("{x:e}")
    } else {
        format!("{x}")
    }
}

/// Result of an ANOVA power analysis.
#[derive(Debug, Clone, PartialEq)]
pub struct AnovaPower {
    /// Cohen's f.
    pub effect_size: f64,
    /// Total sample size N (continuous when solved).
    pub nobs: f64,
    /// Significance level.
    pub alpha: f64,
    /// Power.
    pub power: f64,
    /// Number of groups k.
    pub k_groups: usize,
    /// What was solved for.
    pub solved: Solved,
}

impl AnovaPower {
    /// The result as a row with the keys `effect_size, nobs, nobs_ceil, n_per_group, alpha,
    /// power, k_groups, df_num, df_denom, noncentrality, solved` (`nobs_ceil` = ⌈N⌉,
    /// `n_per_group` = ⌈N/k⌉ for a balanced design, `df_denom` = N − k, `noncentrality` = f²N).
    pub fn to_row(&self) -> Row {
        let k = self.k_groups as f64;
        let mut r = Row::new();
        r.insert("effect_size".into(), num(self.effect_size));
        r.insert("nobs".into(), num(self.nobs));
        r.insert("nobs_ceil".into(), ceil_int(self.nobs));
        r.insert("n_per_group".into(), ceil_int(self.nobs / k));
        r.insert("alpha".into(), num(self.alpha));
        r.insert("power".into(), num(self.power));
        r.insert("k_groups".into(), int(self.k_groups));
        r.insert("df_num".into(), int(self.k_groups - 1));
        r.insert("df_denom".into(), num(self.nobs - k));
        r.insert(
            "noncentrality".into(),
            num(self.effect_size * self.effect_size * self.nobs),
        );
        r.insert(
            "solved".into(),
            Value::String(self.solved.name("nobs").into()),
        );
        r
    }
}

/// ANOVA power analysis (statsmodels `FTestAnovaPower().solve_power`): exactly one of
/// `effect_size`, `nobs` (total) and `power` is `None` and is solved for.
pub fn anova_power(
    effect_size: Option<f64>,
    nobs: Option<f64>,
    alpha: f64,
    power: Option<f64>,
    k_groups: usize,
) -> Result<AnovaPower> {
    const FN: &str = "anova_power";
    let solved = missing(FN, effect_size, nobs, power, "nobs")?;
    check_alpha(FN, alpha)?;
    if k_groups < 2 {
        return Err(invalid(FN, "k_groups", k_groups, "at least 2 groups"));
    }
    let k = k_groups as f64;
    let done = |effect_size, nobs, power| AnovaPower {
        effect_size,
        nobs,
        alpha,
        power,
        k_groups,
        solved,
    };
    match (effect_size, nobs, power) {
        (Some(f), Some(n), None) => Ok(done(f, n, anova_power_of(f, n, alpha, k_groups)?)),
        (Some(f), None, Some(p)) => {
            check_target(FN, p, alpha)?;
            if !(f >= 0.0 && f.is_finite()) {
                return Err(invalid(FN, "effect_size", f, F_DOMAIN));
            }
            if f == 0.0 {
                return Err(invalid(
                    FN,
                    "effect_size",
                    f,
                    "f > 0 when solving nobs: no sample size detects an effect of 0",
                ));
            }
            let g = |n: f64| Ok(anova_power_of(f, n, alpha, k_groups)? - p);
            let lo = lower_start(FN, "nobs", g, k, 1.0)?;
            let max = MAX_NOBS.min(MAX_NONCENTRALITY / (f * f));
            let n = solve_up(FN, "nobs", g, lo, 2.0 * k + 2.0, max)?;
            Ok(done(f, n, p))
        }
        (None, Some(n), Some(p)) => {
            check_target(FN, p, alpha)?;
            anova_power_of(0.0, n, alpha, k_groups)?;
            let g = |f: f64| Ok(anova_power_of(f, n, alpha, k_groups)? - p);
            let max = (MAX_NONCENTRALITY / n).sqrt();
            let f = solve_up(FN, "effect_size", g, 0.0, 0.5f64.min(max), max)?;
            Ok(done(f, n, p))
        }
        _ => unreachable!("missing() checked that exactly one is None"),
    }
}

/// The alternative hypothesis of a t test (statsmodels names).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TAlternative {
    /// μ₁ ≠ μ₂.
    TwoSided,
    /// μ₁ > μ₂.
    Larger,
    /// μ₁ < μ₂.
    Smaller,
}

impl TAlternative {
    /// Parses `"two-sided"`, `"larger"` or `"smaller"`.
    pub fn parse(s: &str) -> Result<TAlternative> {
        match s {
            "two-sided" => Ok(TAlternative::TwoSided),
            "larger" => Ok(TAlternative::Larger),
            "smaller" => Ok(TAlternative::Smaller),
            other => Err(invalid(
                "ttest_power",
                "alternative",
                format!("{other:?}"),
                "\"two-sided\", \"larger\" or \"smaller\"",
            )),
        }
    }

    /// The statsmodels name.
    pub fn name(self) -> &'static str {
        match self {
            TAlternative::TwoSided => "two-sided",
            TAlternative::Larger => "larger",
            TAlternative::Smaller => "smaller",
        }
    }
}

/// Power of the two-sample t test (statsmodels `TTestIndPower().power(effect_size, nobs1,
/// alpha, ratio, alternative)`).
pub fn ttest_power_of(
    effect_size: f64,
    nobs1: f64,
    alpha: f64,
    ratio: f64,
    alternative: TAlternative,
) -> Result<f64> {
    const FN: &str = "ttest_power";
    check_alpha(FN, alpha)?;
    if !(ratio > 0.0 && ratio.is_finite()) {
        return Err(invalid(FN, "ratio", ratio, "nobs2/nobs1 > 0"));
    }
    let nobs2 = nobs1 * ratio;
    let df = nobs1 + nobs2 - 2.0;
    if !(df > 0.0 && nobs1.is_finite()) {
        return Err(invalid(
            FN,
            "nobs1",
            format!("{nobs1} (ratio = {ratio})"),
            "a group size with nobs1 + nobs2 − 2 > 0",
        ));
    }
    if !effect_size.is_finite() {
        return Err(invalid(
            FN,
            "effect_size",
            effect_size,
            "a finite Cohen's d",
        ));
    }
    let delta = effect_size * (nobs1 * nobs2 / (nobs1 + nobs2)).sqrt();
    if delta * delta > MAX_NONCENTRALITY {
        return Err(invalid(
            FN,
            "effect_size",
            format!("{effect_size} (noncentrality δ = {})", fmt_num(delta)),
            "a noncentrality δ = d·√(n1·n2/(n1 + n2)) with δ² at most 1e5",
        ));
    }
    Ok(match alternative {
        TAlternative::TwoSided => {
            let c = t_isf(alpha / 2.0, df)?;
            nct_cdf_sf(c, df, delta)?.1 + nct_cdf_sf(-c, df, delta)?.0
        }
        TAlternative::Larger => nct_cdf_sf(t_isf(alpha, df)?, df, delta)?.1,
        TAlternative::Smaller => nct_cdf_sf(-t_isf(alpha, df)?, df, delta)?.0,
    })
}

/// Result of a two-sample t-test power analysis.
#[derive(Debug, Clone, PartialEq)]
pub struct TTestPower {
    /// Cohen's d.
    pub effect_size: f64,
    /// Size of group 1 (continuous when solved).
    pub nobs1: f64,
    /// nobs2 / nobs1.
    pub ratio: f64,
    /// Significance level.
    pub alpha: f64,
    /// Power.
    pub power: f64,
    /// The alternative.
    pub alternative: TAlternative,
    /// What was solved for.
    pub solved: Solved,
}

impl TTestPower {
    /// The result as a row with the keys `effect_size, nobs1, nobs1_ceil, nobs2, ratio, alpha,
    /// power, alternative, df, noncentrality, solved` (`nobs2` = ratio·nobs1, `df` =
    /// nobs1 + nobs2 − 2, `noncentrality` = d·√(n1·n2/(n1 + n2))).
    pub fn to_row(&self) -> Row {
        let n2 = self.nobs1 * self.ratio;
        let mut r = Row::new();
        r.insert("effect_size".into(), num(self.effect_size));
        r.insert("nobs1".into(), num(self.nobs1));
        r.insert("nobs1_ceil".into(), ceil_int(self.nobs1));
        r.insert("nobs2".into(), num(n2));
        r.insert("ratio".into(), num(self.ratio));
        r.insert("alpha".into(), num(self.alpha));
        r.insert("power".into(), num(self.power));
        r.insert(
            "alternative".into(),
            Value::String(self.alternative.name().into()),
        );
        r.insert("df".into(), num(self.nobs1 + n2 - 2.0));
        r.insert(
            "noncentrality".into(),
            num(self.effect_size * (self.nobs1 * n2 / (self.nobs1 + n2)).sqrt()),
        );
        r.insert(
            "solved".into(),
            Value::String(self.solved.name("nobs1").into()),
        );
        r
    }
}

/// Two-sample t-test power analysis (statsmodels `TTestIndPower().solve_power`): exactly one of
/// `effect_size`, `nobs1` and `power` is `None` and is solved for.
pub fn ttest_power(
    effect_size: Option<f64>,
    nobs1: Option<f64>,
    alpha: f64,
    power: Option<f64>,
    ratio: f64,
    alternative: TAlternative,
) -> Result<TTestPower> {
    const FN: &str = "ttest_power";
    let solved = missing(FN, effect_size, nobs1, power, "nobs1")?;
    check_alpha(FN, alpha)?;
    if !(ratio > 0.0 && ratio.is_finite()) {
        return Err(invalid(FN, "ratio", ratio, "nobs2/nobs1 > 0"));
    }
    let done = |effect_size, nobs1, power| TTestPower {
        effect_size,
        nobs1,
        ratio,
        alpha,
        power,
        alternative,
        solved,
    };
    let pw = |d: f64, n: f64| ttest_power_of(d, n, alpha, ratio, alternative);
    match (effect_size, nobs1, power) {
        (Some(d), Some(n), None) => Ok(done(d, n, pw(d, n)?)),
        (Some(d), None, Some(p)) => {
            check_target(FN, p, alpha)?;
            let wrong_sign = match alternative {
                TAlternative::TwoSided => d == 0.0,
                TAlternative::Larger => d <= 0.0,
                TAlternative::Smaller => d >= 0.0,
            };
            if wrong_sign || !d.is_finite() {
                return Err(invalid(
                    FN,
                    "effect_size",
                    format!("{d} (alternative = {:?})", alternative.name()),
                    "a nonzero d, positive for \"larger\" and negative for \"smaller\" (else the power never exceeds alpha)",
                ));
            }
            let g = |n: f64| Ok(pw(d, n)? - p);
            let edge = 2.0 / (1.0 + ratio);
            let lo = lower_start(FN, "nobs1", g, edge, 1.0 / (1.0 + ratio))?;
            // δ² = d²·n1·ratio/(1 + ratio) ≤ 1e5.
            let max = MAX_NOBS.min(MAX_NONCENTRALITY * (1.0 + ratio) / (ratio * d * d));
            let n = solve_up(FN, "nobs1", g, lo, lo.max(4.0), max)?;
            Ok(done(d, n, p))
        }
        (None, Some(n), Some(p)) => {
            check_target(FN, p, alpha)?;
            pw(0.0, n)?;
            let sign = if alternative == TAlternative::Smaller {
                -1.0
            } else {
                1.0
            };
            let g = |d: f64| Ok(pw(sign * d, n)? - p);
            let n2 = n * ratio;
            let max = (MAX_NONCENTRALITY * (n + n2) / (n * n2)).sqrt();
            let d = solve_up(FN, "effect_size", g, 0.0, 0.5f64.min(max), max)?;
            Ok(done(sign * d, n, p))
        }
        _ => unreachable!("missing() checked that exactly one is None"),
    }
}

/// Observed ("post hoc") power of a one-way ANOVA on data: the power at the effect size
/// estimated from the data, and the total sample size needed for `target` power at it.
#[derive(Debug, Clone, PartialEq)]
pub struct ObservedPower {
    /// The power analysis at the observed effect (`solved` = power).
    pub at_observed: AnovaPower,
    /// η² = SS_between / SS_total of the data.
    pub eta_sq: f64,
    /// The target power for `nobs_needed`.
    pub target: f64,
    /// Total sample size needed for `target` power at the observed f (continuous); `None` when
    /// the observed f is 0 (all group means equal) or when it lies where the power cannot be
    /// evaluated (see `note`).
    pub nobs_needed: Option<f64>,
    /// ⌈nobs_needed/k⌉; 2 when the continuous solution cannot be evaluated but 2 per group
    /// already reach the target (see `note`); `None` when the observed f is 0.
    pub n_per_group_needed: Option<u64>,
    /// Why `nobs_needed` is `()` although the effect is not 0.
    pub note: Option<String>,
}

impl ObservedPower {
    /// The row of [`AnovaPower::to_row`] (with `solved` = `"observed"`) plus `eta_sq`,
    /// `target_power`, `nobs_needed` (continuous) and `n_per_group_needed` = ⌈nobs_needed/k⌉
    /// (both `()` when the observed f is 0).
    pub fn to_row(&self) -> Row {
        let mut r = self.at_observed.to_row();
        r.insert("solved".into(), Value::String("observed".into()));
        r.insert("eta_sq".into(), num(self.eta_sq));
        r.insert("target_power".into(), num(self.target));
        r.insert(
            "nobs_needed".into(),
            self.nobs_needed.map_or(Value::Null, num),
        );
        r.insert(
            "n_per_group_needed".into(),
            self.n_per_group_needed.map_or(Value::Null, Value::from),
        );
        if let Some(note) = &self.note {
            r.insert("note".into(), Value::String(note.clone()));
        }
        r
    }
}

/// Observed power of the one-way ANOVA of `groups` at level `alpha`: f = √(η²/(1 − η²)) from
/// the data, N the total count, k the number of groups; power = power(f, N, alpha, k) and the
/// N that gives power `target` at that f.
///
/// Observed power is a function of the p-value of the same data (p = alpha gives power ≈ 0.5)
/// and adds no evidence to it; it is a planning aid (how many runs per group a replication
/// needs if the true effect equals the observed one), and the observed f overestimates the
/// true f in small samples.
pub fn observed_anova_power(groups: &[Vec<f64>], alpha: f64, target: f64) -> Result<ObservedPower> {
    const FN: &str = "anova_power";
    check_alpha(FN, alpha)?;
    check_target(FN, target, alpha)?;
    let a = oneway_anova(groups).map_err(|e| match e {
        StatsError::Degenerate { reason, .. } => StatsError::Degenerate { func: FN, reason },
        other => other,
    })?;
    let k = groups.len();
    let n: usize = groups.iter().map(Vec::len).sum();
    let f = (a.eta_sq / (1.0 - a.eta_sq)).sqrt();
    let at_observed = anova_power(Some(f), Some(n as f64), alpha, None, k)?;
    let (mut nobs_needed, mut n_per_group_needed, mut note) = (None, None, None);
    if f > 0.0 {
        match anova_power(Some(f), None, alpha, Some(target), k) {
            Ok(r) => {
                nobs_needed = Some(r.nobs);
                n_per_group_needed = Some((r.nobs / k as f64).ceil() as u64);
            }
            // So strong an effect that the solution lies just above N = k, where λ = f²·N is
            // beyond the evaluable range and the residual df too small to bound the power: the
            // continuous N is unknown, but every N > k has ⌈N/k⌉ ≥ 2, so when 2 per group
            // (N = 2k) already reach the target, 2 per group is the answer.
            Err(e) if f * f * (k as f64 + 1.0) > MAX_NONCENTRALITY => {
                if anova_power_of(f, 2.0 * k as f64, alpha, k).is_ok_and(|p| p >= target) {
                    n_per_group_needed = Some(2);
                    note = Some(format!(
                        "the observed effect (f = {}) is so strong that the target power is reached between N = k_groups and 2 per group, where the power cannot be evaluated (noncentrality above 1e5); 2 per group (the smallest design with a residual df) reach it",
                        fmt_num(f)
                    ));
                } else {
                    return Err(e);
                }
            }
            Err(e) => return Err(e),
        }
    }
    Ok(ObservedPower {
        at_observed,
        eta_sq: a.eta_sq,
        target,
        nobs_needed,
        n_per_group_needed,
        note,
    })
}

#[cfg(test)]
#[path = "power_unit_tests.rs"]
mod tests;
