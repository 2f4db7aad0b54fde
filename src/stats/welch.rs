//! Welch's heteroscedastic one-way ANOVA (Welch 1951), as R `oneway.test(var.equal = FALSE)`
//! and `statsmodels.stats.oneway.anova_oneway(use_var="unequal")`:
//! wᵢ = nᵢ/sᵢ², m = Σwᵢx̄ᵢ/Σw, A = Σwᵢ(x̄ᵢ − m)²/(k − 1),
//! T = Σ(1 − wᵢ/Σw)²/(nᵢ − 1), F = A / (1 + 2(k − 2)T/(k² − 1)),
//! df = (k − 1, (k² − 1)/(3T)).

use super::describe::{mean, variance};
use super::dist::f_sf;
use super::{check_groups, int, Result, StatsError};
use crate::value::{num, Row};

/// Result of Welch's ANOVA.
#[derive(Debug, Clone, PartialEq)]
pub struct WelchAnova {
    /// F statistic.
    pub f: f64,
    /// p-value.
    pub p: f64,
    /// k − 1.
    pub df_between: usize,
    /// Welch's denominator degrees of freedom (not an integer).
    pub df_within: f64,
}

impl WelchAnova {
    /// The result as a row with the keys `F, p, df_between, df_within`.
    pub fn to_row(&self) -> Row {
        let mut r = Row::new();
        r.insert("F".into(), num(self.f));
        r.insert("p".into(), num(self.p));
        r.insert("df_between".into(), int(self.df_between));
        r.insert("df_within".into(), num(self.df_within));
        r
    }
}

/// Welch's ANOVA over `groups` (at least two, each with at least two values and non-zero
/// variance).
pub fn welch_anova(groups: &[Vec<f64>]) -> Result<WelchAnova> {
    const FN: &str = "welch_anova";
    check_groups(FN, groups, 2)?;
    let k = groups.len() as f64;
    let mut w = Vec::with_capacity(groups.len());
    for (i, g) in groups.iter().enumerate() {
        let v = variance(g);
        if v <= 0.0 {
            return Err(StatsError::Degenerate {
                func: FN,
                reason: format!(
                    "group #{} has zero variance, so its Welch weight is undefined",
                    i + 1
                ),
            });
        }
        w.push(g.len() as f64 / v);
    }
    let means: Vec<f64> = groups.iter().map(|g| mean(g)).collect();
    let sw: f64 = w.iter().sum();
    let m = w.iter().zip(&means).map(|(wi, xi)| wi * xi).sum::<f64>() / sw;
    let a = w
        .iter()
        .zip(&means)
        .map(|(wi, xi)| wi * (xi - m) * (xi - m))
        .sum::<f64>()
        / (k - 1.0);
    let t: f64 = w
        .iter()
        .zip(groups)
        .map(|(wi, g)| {
            let r = 1.0 - wi / sw;
            r * r / (g.len() as f64 - 1.0)
        })
        .sum();
    let f = a / (1.0 + 2.0 * (k - 2.0) * t / (k * k - 1.0));
    let df2 = (k * k - 1.0) / (3.0 * t);
    let df_between = groups.len() - 1;
    Ok(WelchAnova {
        f,
        p: f_sf(f, df_between as f64, df2),
        df_between,
        df_within: df2,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_research_note_vector() {
        // Research note A5 (statsmodels anova_oneway use_var="unequal" on the A4 unequal data):
        // F = 8.680467, df = (2, 7.648989), p = 0.0107712.
        let g = vec![
            vec![24.5, 23.5, 26.4, 27.1, 29.9],
            vec![28.4, 34.2, 29.5, 32.2, 30.1, 31.0],
            vec![26.1, 28.3, 24.3, 26.2],
        ];
        let r = welch_anova(&g).unwrap();
        assert!((r.f - 8.680467).abs() < 1e-6, "{}", r.f);
        assert!((r.df_within - 7.648989).abs() < 1e-6, "{}", r.df_within);
        assert!((r.p - 0.0107712).abs() < 1e-7, "{}", r.p);
    }

    #[test]
    fn rejects_singletons_and_constant_groups() {
        let e = welch_anova(&[vec![1.0], vec![2.0, 3.0]])
            .unwrap_err()
            .to_string();
        assert!(e.contains("'#1' has 1 value"), "{e}");
        let e = welch_anova(&[vec![1.0, 1.0], vec![2.0, 3.0]])
            .unwrap_err()
            .to_string();
        assert!(e.contains("zero variance"), "{e}");
    }
}
