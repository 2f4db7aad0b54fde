//! Two one-sided tests (TOST) for equivalence of two means (Schuirmann 1987), as statsmodels
//! `ttost_ind(x1, x2, low, upp, usevar)` and `ttost_paired(x1, x2, low, upp)`.
//!
//! Hypotheses, with d = mean(x1) − mean(x2) (independent samples) or the mean of the
//! per-item differences x1ᵢ − x2ᵢ (paired samples):
//! H₀: d ≤ low or d ≥ upp (not equivalent); H₁: low < d < upp (equivalent within the margin).
//!
//! Formulas (sᵢ² the sample variances with n − 1 in the denominator):
//! - independent, `usevar = "pooled"`: se = √(s_p² (1/n₁ + 1/n₂)) with
//!   s_p² = ((n₁ − 1)s₁² + (n₂ − 1)s₂²)/(n₁ + n₂ − 2), df = n₁ + n₂ − 2;
//! - independent, `usevar = "unequal"` (Welch): se = √(s₁²/n₁ + s₂²/n₂), Welch–Satterthwaite
//!   df = (s₁²/n₁ + s₂²/n₂)² / ((s₁²/n₁)²/(n₁ − 1) + (s₂²/n₂)²/(n₂ − 1));
//! - paired: se = s_d/√n with s_d the sd of the differences, df = n − 1.
//!
//! Then t_low = (d − low)/se with p_low = P(T_df > t_low) (the test of H₀: d ≤ low), and
//! t_upp = (d − upp)/se with p_upp = P(T_df < t_upp) (H₀: d ≥ upp); the TOST p-value is
//! max(p_low, p_upp). Equivalent at level α when p < α, which is the same as the 1 − 2α
//! confidence interval d ± t_{1−α, df}·se lying inside (low, upp); both are reported.

use super::describe::{mean, variance};
use super::{check_finite, Result, StatsError};
use crate::value::{num, Row, Value};
use statrs::function::beta::beta_reg;

/// How the standard error of an independent-samples difference is formed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UseVar {
    /// Pooled variance, df = n₁ + n₂ − 2 (Student).
    Pooled,
    /// Separate variances, Welch–Satterthwaite df.
    Unequal,
}

impl UseVar {
    /// Parses `"pooled"` or `"unequal"`.
    pub fn parse(s: &str) -> Result<UseVar> {
        match s {
            "pooled" => Ok(UseVar::Pooled),
            "unequal" => Ok(UseVar::Unequal),
            other => Err(StatsError::InvalidArgument {
                func: "tost",
                name: "usevar",
                value: format!("{other:?}"),
                expected: "\"pooled\" or \"unequal\"",
            }),
        }
    }

    fn name(self) -> &'static str {
        match self {
            UseVar::Pooled => "pooled",
            UseVar::Unequal => "unequal",
        }
    }
}

/// Result of a TOST.
#[derive(Debug, Clone, PartialEq)]
pub struct Tost {
    /// The TOST p-value max(p_low, p_upp).
    pub p: f64,
    /// The estimated difference d.
    pub diff: f64,
    /// Standard error of d.
    pub se: f64,
    /// Degrees of freedom (not an integer for Welch).
    pub df: f64,
    /// t statistic against the lower bound, (d − low)/se.
    pub t_low: f64,
    /// One-sided p-value of H₀: d ≤ low.
    pub p_low: f64,
    /// t statistic against the upper bound, (d − upp)/se.
    pub t_upp: f64,
    /// One-sided p-value of H₀: d ≥ upp.
    pub p_upp: f64,
    /// Lower end of the 1 − 2α confidence interval of d.
    pub lower: f64,
    /// Upper end of the 1 − 2α confidence interval of d.
    pub upper: f64,
    /// Whether p < α.
    pub equivalent: bool,
    /// `"paired"`, `"pooled"` or `"unequal"`.
    pub method: &'static str,
}

impl Tost {
    /// The result as a row with the keys
    /// `p, diff, se, df, t_low, p_low, t_upp, p_upp, lower, upper, equivalent, method`.
    pub fn to_row(&self) -> Row {
        let mut r = Row::new();
        r.insert("p".into(), num(self.p));
        r.insert("diff".into(), num(self.diff));
        r.insert("se".into(), num(self.se));
        r.insert("df".into(), num(self.df));
        r.insert("t_low".into(), num(self.t_low));
        r.insert("p_low".into(), num(self.p_low));
        r.insert("t_upp".into(), num(self.t_upp));
        r.insert("p_upp".into(), num(self.p_upp));
        r.insert("lower".into(), num(self.lower));
        r.insert("upper".into(), num(self.upper));
        r.insert("equivalent".into(), Value::Bool(self.equivalent));
        r.insert("method".into(), Value::String(self.method.into()));
        r
    }
}

/// Upper tail P(T > t) of Student's t with `df` degrees of freedom, from the regularized
/// incomplete beta: P(T > |t|) = I_{df/(df+t²)}(df/2, 1/2)/2.
pub fn t_sf(t: f64, df: f64) -> f64 {
    if t.is_infinite() {
        return if t > 0.0 { 0.0 } else { 1.0 };
    }
    let half = 0.5 * beta_reg(df / 2.0, 0.5, df / (df + t * t));
    if t >= 0.0 {
        half
    } else {
        1.0 - half
    }
}

fn check_bounds(func: &'static str, low: f64, upp: f64, alpha: f64) -> Result<()> {
    for (name, v) in [("low", low), ("upp", upp)] {
        if !v.is_finite() {
            return Err(StatsError::InvalidArgument {
                func,
                name,
                value: v.to_string(),
                expected: "a finite number",
            });
        }
    }
    if low >= upp {
        return Err(StatsError::InvalidArgument {
            func,
            name: "low",
            value: format!("{low} (upp = {upp})"),
            expected: "low < upp: the equivalence interval (low, upp) must not be empty",
        });
    }
    if !(alpha > 0.0 && alpha < 0.5) {
        return Err(StatsError::InvalidArgument {
            func,
            name: "alpha",
            value: alpha.to_string(),
            expected: "0 < alpha < 0.5",
        });
    }
    Ok(())
}

fn check_size(func: &'static str, group: &str, x: &[f64]) -> Result<()> {
    if x.len() < 2 {
        return Err(StatsError::GroupTooSmall {
            func,
            group: group.into(),
            n: x.len(),
            need: 2,
        });
    }
    check_finite(func, group, x)
}

#[allow(clippy::too_many_arguments)]
fn finish(
    func: &'static str,
    diff: f64,
    se: f64,
    df: f64,
    low: f64,
    upp: f64,
    alpha: f64,
    method: &'static str,
) -> Result<Tost> {
    if !se.is_finite() {
        return Err(StatsError::Degenerate {
            func,
            reason: format!(
                "the standard error of the difference is {se}: the data overflow f64 (values near ±1e308 whose squares or sums are not representable); rescale them"
            ),
        });
    }
    if se <= 0.0 {
        return Err(StatsError::Degenerate {
            func,
            reason: format!(
                "the standard error of the difference is {se} (zero variance), so the t statistics are undefined"
            ),
        });
    }
    let t_low = (diff - low) / se;
    let t_upp = (diff - upp) / se;
    let p_low = t_sf(t_low, df);
    let p_upp = t_sf(-t_upp, df);
    let p = p_low.max(p_upp);
    let q = super::dist::t_quantile(1.0 - alpha, df).ok_or_else(|| StatsError::Degenerate {
        func,
        reason: format!("no t quantile for alpha = {alpha}, df = {df}"),
    })?;
    Ok(Tost {
        p,
        diff,
        se,
        df,
        t_low,
        p_low,
        t_upp,
        p_upp,
        lower: diff - q * se,
        upper: diff + q * se,
        equivalent: p < alpha,
        method,
    })
}

/// TOST for two independent samples (statsmodels `ttost_ind`): d = mean(x1) − mean(x2),
/// equivalence interval (`low`, `upp`), level `alpha` for `equivalent` and the 1 − 2α interval.
pub fn tost_ind(
    x1: &[f64],
    x2: &[f64],
    low: f64,
    upp: f64,
    usevar: UseVar,
    alpha: f64,
) -> Result<Tost> {
    const FN: &str = "tost";
    check_size(FN, "x1", x1)?;
    check_size(FN, "x2", x2)?;
    check_bounds(FN, low, upp, alpha)?;
    let (n1, n2) = (x1.len() as f64, x2.len() as f64);
    let (v1, v2) = (variance(x1), variance(x2));
    let (se, df) = match usevar {
        UseVar::Pooled => {
            let sp = ((n1 - 1.0) * v1 + (n2 - 1.0) * v2) / (n1 + n2 - 2.0);
            ((sp * (1.0 / n1 + 1.0 / n2)).sqrt(), n1 + n2 - 2.0)
        }
        UseVar::Unequal => {
            let (a, b) = (v1 / n1, v2 / n2);
            let df = (a + b) * (a + b) / (a * a / (n1 - 1.0) + b * b / (n2 - 1.0));
            ((a + b).sqrt(), df)
        }
    };
    finish(
        FN,
        mean(x1) - mean(x2),
        se,
        df,
        low,
        upp,
        alpha,
        usevar.name(),
    )
}

/// TOST for paired samples (statsmodels `ttost_paired`): d = mean of x1ᵢ − x2ᵢ.
pub fn tost_paired(x1: &[f64], x2: &[f64], low: f64, upp: f64, alpha: f64) -> Result<Tost> {
    const FN: &str = "tost";
    if x1.len() != x2.len() {
        return Err(StatsError::InvalidArgument {
            func: FN,
            name: "x2",
            value: format!("{} items (x1 has {})", x2.len(), x1.len()),
            expected: "paired samples: the same number of items in both",
        });
    }
    check_size(FN, "x1", x1)?;
    check_size(FN, "x2", x2)?;
    check_bounds(FN, low, upp, alpha)?;
    let d: Vec<f64> = x1.iter().zip(x2).map(|(a, b)| a - b).collect();
    let n = d.len() as f64;
    let se = (variance(&d) / n).sqrt();
    finish(FN, mean(&d), se, n - 1.0, low, upp, alpha, "paired")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn t_sf_is_a_tail() {
        // scipy.stats.t.sf(2.0, 10) = 0.03669401738537018; t.sf(-2, 10) = 1 − that.
        assert!((t_sf(2.0, 10.0) - 0.03669401738537018).abs() < 1e-15);
        assert!((t_sf(-2.0, 10.0) - (1.0 - 0.03669401738537018)).abs() < 1e-15);
        assert_eq!(t_sf(0.0, 3.0), 0.5);
    }

    #[test]
    fn hand_computed_paired() {
        // d = (0.1, 0.2, 0.3): mean 0.2, sd 0.1, se = 0.1/√3, df = 2; margin ±0.5:
        // t_low = 0.7/se = 12.124..., t_upp = −0.3/se = −5.196...
        let x1 = [1.1, 1.2, 1.3];
        let x2 = [1.0, 1.0, 1.0];
        let r = tost_paired(&x1, &x2, -0.5, 0.5, 0.05).unwrap();
        let se = 0.1 / 3f64.sqrt();
        assert!((r.diff - 0.2).abs() < 1e-12 && (r.se - se).abs() < 1e-12);
        assert!((r.t_low - 0.7 / se).abs() < 1e-9 && (r.t_upp + 0.3 / se).abs() < 1e-9);
        assert_eq!(r.p, r.p_upp);
        assert!(r.equivalent && r.lower > -0.5 && r.upper < 0.5);
        assert_eq!(r.method, "paired");
    }

    #[test]
    fn bad_input() {
        let e = tost_ind(&[1.0], &[1.0, 2.0], -1.0, 1.0, UseVar::Pooled, 0.05)
            .unwrap_err()
            .to_string();
        assert!(e.contains("tost") && e.contains("'x1' has 1 value"), "{e}");
        let e = tost_ind(&[1.0, 2.0], &[1.0, 2.0], 1.0, 1.0, UseVar::Pooled, 0.05)
            .unwrap_err()
            .to_string();
        assert!(e.contains("low = 1 (upp = 1)"), "{e}");
        let e = tost_ind(&[1.0, 1.0], &[2.0, 2.0], -1.0, 1.0, UseVar::Unequal, 0.05)
            .unwrap_err()
            .to_string();
        assert!(e.contains("zero variance"), "{e}");
        let e = tost_paired(&[1.0, 2.0], &[0.0, 1.0], -1.0, 1.0, 0.05)
            .unwrap_err()
            .to_string();
        assert!(e.contains("zero variance"), "{e}");
        let e = tost_paired(&[1.0, 2.0], &[0.0], -1.0, 1.0, 0.05)
            .unwrap_err()
            .to_string();
        assert!(e.contains("1 items (x1 has 2)"), "{e}");
        let e = tost_paired(&[1.0, f64::INFINITY], &[0.0, 1.0], -1.0, 1.0, 0.05)
            .unwrap_err()
            .to_string();
        assert!(e.contains("'x1'") && e.contains("inf"), "{e}");
        assert!(tost_paired(&[1.0, 2.0], &[0.0, 1.5], -1.0, f64::NAN, 0.05).is_err());
        assert!(tost_paired(&[1.0, 2.0], &[0.0, 1.5], -1.0, 1.0, 0.5).is_err());
        assert!(UseVar::parse("welch").is_err());
        let big = [1e300, -1e300, 1e300];
        let e = tost_ind(&big, &[1.0, 2.0, 3.0], -1.0, 1.0, UseVar::Pooled, 0.05)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("overflow") && !e.contains("zero variance"),
            "{e}"
        );
    }
}
