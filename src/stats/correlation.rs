//! Pearson and Spearman correlation with two-sided p-values, as `scipy.stats.pearsonr` and
//! `scipy.stats.spearmanr` (scipy 1.17): for both, t = r √((n − 2)/(1 − r²)) on n − 2 degrees
//! of freedom (scipy's pearsonr states it as the exact beta distribution of r under
//! independence, which is the same test); Spearman's ρ is Pearson's r of the average ranks.

use super::describe::{average_ranks, mean};
use super::dist::t_two_sided_p;
use super::{check_finite, Result, StatsError};
use crate::value::{num, Row};

/// A correlation coefficient with its two-sided p-value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Correlation {
    /// r (Pearson) or ρ (Spearman).
    pub r: f64,
    /// Two-sided p-value for H₀: no correlation.
    pub p: f64,
}

impl Correlation {
    /// Pearson's result as a row with the keys `r, p`.
    pub fn to_pearson_row(&self) -> Row {
        let mut row = Row::new();
        row.insert("r".into(), num(self.r));
        row.insert("p".into(), num(self.p));
        row
    }

    /// Spearman's result as a row with the keys `rho, p`.
    pub fn to_spearman_row(&self) -> Row {
        let mut row = Row::new();
        row.insert("rho".into(), num(self.r));
        row.insert("p".into(), num(self.p));
        row
    }
}

fn check(func: &'static str, x: &[f64], y: &[f64]) -> Result<()> {
    if x.len() != y.len() {
        return Err(StatsError::InvalidArgument {
            func,
            name: "y",
            value: format!("{} values (x has {})", y.len(), x.len()),
            expected: "x and y of the same length",
        });
    }
    if x.len() < 3 {
        return Err(StatsError::GroupTooSmall {
            func,
            group: "x/y".into(),
            n: x.len(),
            need: 3,
        });
    }
    check_finite(func, "x", x)?;
    check_finite(func, "y", y)
}

fn pearson_unchecked(func: &'static str, x: &[f64], y: &[f64]) -> Result<Correlation> {
    let (mx, my) = (mean(x), mean(y));
    let (mut sxy, mut sxx, mut syy) = (0.0, 0.0, 0.0);
    for (a, b) in x.iter().zip(y) {
        let (dx, dy) = (a - mx, b - my);
        sxy += dx * dy;
        sxx += dx * dx;
        syy += dy * dy;
    }
    if sxx == 0.0 || syy == 0.0 {
        return Err(StatsError::Degenerate {
            func,
            reason: format!(
                "{} is constant, so the correlation is undefined",
                if sxx == 0.0 { "x" } else { "y" }
            ),
        });
    }
    let r = (sxy / (sxx.sqrt() * syy.sqrt())).clamp(-1.0, 1.0);
    let df = x.len() as f64 - 2.0;
    let p = if r.abs() == 1.0 {
        0.0
    } else {
        t_two_sided_p(r * (df / (1.0 - r * r)).sqrt(), df)
    };
    Ok(Correlation { r, p })
}

/// Pearson's product-moment correlation of `x` and `y` (same length ≥ 3, finite, not
/// constant).
pub fn pearson(x: &[f64], y: &[f64]) -> Result<Correlation> {
    check("pearson", x, y)?;
    pearson_unchecked("pearson", x, y)
}

/// Spearman's rank correlation (average ranks for ties).
pub fn spearman(x: &[f64], y: &[f64]) -> Result<Correlation> {
    check("spearman", x, y)?;
    let (rx, _) = average_ranks(x);
    let (ry, _) = average_ranks(y);
    pearson_unchecked("spearman", &rx, &ry)
}

#[cfg(test)]
mod tests {
    use super::*;

    // Reference values from scipy 1.17.1 (/work/pyenv), e.g.
    // scipy.stats.pearsonr([1,2,3,4,5,6,7,8], [2.1,3.9,6.2,7.8,11.0,11.9,14.2,15.8]).
    const X: [f64; 8] = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0];
    const Y: [f64; 8] = [2.1, 3.9, 6.2, 7.8, 11.0, 11.9, 14.2, 15.8];
    const U: [f64; 10] = [0.3, 0.1, 0.4, 0.1, 0.5, 0.9, 0.2, 0.6, 0.5, 0.3];
    const V: [f64; 10] = [1.2, 0.8, 1.1, 0.9, 1.5, 1.3, 0.7, 1.0, 1.6, 0.9];

    #[test]
    fn pearson_matches_scipy() {
        let c = pearson(&X, &Y).unwrap();
        assert!((c.r - PEARSON_XY.0).abs() < 1e-12, "{c:?}");
        assert!((c.p - PEARSON_XY.1).abs() < 1e-9 * PEARSON_XY.1, "{c:?}");
        let c = pearson(&U, &V).unwrap();
        assert!((c.r - PEARSON_UV.0).abs() < 1e-12, "{c:?}");
        assert!((c.p - PEARSON_UV.1).abs() < 1e-10, "{c:?}");
    }

    #[test]
    fn spearman_matches_scipy() {
        let c = spearman(&U, &V).unwrap();
        assert!((c.r - SPEARMAN_UV.0).abs() < 1e-12, "{c:?}");
        assert!((c.p - SPEARMAN_UV.1).abs() < 1e-10, "{c:?}");
        let c = spearman(&X, &Y).unwrap();
        assert_eq!(c.r, 1.0);
        assert_eq!(c.p, 0.0);
        let row = c.to_spearman_row();
        assert_eq!(row.keys().collect::<Vec<_>>(), ["rho", "p"]);
    }

    #[test]
    fn bad_input() {
        assert!(pearson(&[1.0, 2.0], &[1.0, 2.0]).is_err());
        assert!(pearson(&[1.0, 2.0, 3.0], &[1.0, 2.0]).is_err());
        let e = pearson(&[1.0, 1.0, 1.0], &[1.0, 2.0, 3.0])
            .unwrap_err()
            .to_string();
        assert!(e.contains("x is constant"), "{e}");
        assert!(spearman(&[1.0, f64::NAN, 3.0], &[1.0, 2.0, 3.0]).is_err());
    }

    // scipy 1.17.1: pearsonr(X, Y), pearsonr(U, V), spearmanr(U, V) (statistic, pvalue).
    const PEARSON_XY: (f64, f64) = (0.9967654306624343, 8.439859969382232e-08);
    const PEARSON_UV: (f64, f64) = (0.6186609312905433, 0.05654123482115645);
    const SPEARMAN_UV: (f64, f64) = (0.7300750890503744, 0.01651542722900795);
}
