//! One-way analysis of variance (Fisher's F test), as `scipy.stats.f_oneway` and
//! `statsmodels` `anova_lm` for `y ~ C(group)`: SS_between = Σ nᵢ(x̄ᵢ − x̄)², SS_within =
//! ΣΣ(x − x̄ᵢ)², F = (SS_between/(k−1)) / (SS_within/(N−k)), p = P(F_{k−1,N−k} > F),
//! η² = SS_between / (SS_between + SS_within).

use super::describe::{mean, sum_sq_dev};
use super::dist::f_sf;
use super::{check_groups, int, Result, StatsError};
use crate::value::{num, Row};

/// Result of a one-way ANOVA.
#[derive(Debug, Clone, PartialEq)]
pub struct OneWay {
    /// F statistic.
    pub f: f64,
    /// p-value P(F_{df_between, df_within} > F).
    pub p: f64,
    /// k − 1.
    pub df_between: usize,
    /// N − k.
    pub df_within: usize,
    /// Between-group sum of squares.
    pub ss_between: f64,
    /// Within-group (residual) sum of squares.
    pub ss_within: f64,
    /// η² = SS_between / SS_total.
    pub eta_sq: f64,
}

impl OneWay {
    /// The result as a row with the keys `F, p, df_between, df_within, ss_between, ss_within,
    /// eta_sq`.
    pub fn to_row(&self) -> Row {
        let mut r = Row::new();
        r.insert("F".into(), num(self.f));
        r.insert("p".into(), num(self.p));
        r.insert("df_between".into(), int(self.df_between));
        r.insert("df_within".into(), int(self.df_within));
        r.insert("ss_between".into(), num(self.ss_between));
        r.insert("ss_within".into(), num(self.ss_within));
        r.insert("eta_sq".into(), num(self.eta_sq));
        r
    }
}

/// One-way ANOVA over `groups` (at least two, each with at least two finite values).
///
/// Errors when every group has zero variance (F undefined: `scipy` would return inf/NaN).
pub fn oneway_anova(groups: &[Vec<f64>]) -> Result<OneWay> {
    const F: &str = "anova";
    check_groups(F, groups, 2)?;
    oneway_unchecked(F, groups)
}

/// One-way ANOVA of already checked groups; `func` names the caller in errors (Levene uses it
/// on absolute deviations).
pub(crate) fn oneway_unchecked(func: &'static str, groups: &[Vec<f64>]) -> Result<OneWay> {
    let k = groups.len();
    let n: usize = groups.iter().map(Vec::len).sum();
    if n <= k {
        return Err(StatsError::Degenerate {
            func,
            reason: format!(
                "{n} values in {k} groups leave no within-group degrees of freedom (need N > k)"
            ),
        });
    }
    let all: Vec<f64> = groups.iter().flatten().copied().collect();
    let grand = mean(&all);
    let ss_between: f64 = groups
        .iter()
        .map(|g| {
            let d = mean(g) - grand;
            g.len() as f64 * d * d
        })
        .sum();
    let ss_within: f64 = groups.iter().map(|g| sum_sq_dev(g)).sum();
    if ss_within == 0.0 {
        return Err(StatsError::Degenerate {
            func,
            reason: "every group has zero variance, so F is undefined".into(),
        });
    }
    let df_between = k - 1;
    let df_within = n - k;
    let f = (ss_between / df_between as f64) / (ss_within / df_within as f64);
    let p = f_sf(f, df_between as f64, df_within as f64);
    Ok(OneWay {
        f,
        p,
        df_between,
        df_within,
        ss_between,
        ss_within,
        eta_sq: ss_between / (ss_between + ss_within),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_research_note_vector() {
        // scipy.stats.f_oneway on the research note's A1 data: F = 7.1378278, p = 0.0090733.
        let g = vec![
            vec![24.5, 23.5, 26.4, 27.1, 29.9],
            vec![28.4, 34.2, 29.5, 32.2, 30.1],
            vec![26.1, 28.3, 24.3, 26.2, 27.8],
        ];
        let r = oneway_anova(&g).unwrap();
        assert!((r.f - 7.1378278).abs() < 1e-6);
        assert!((r.p - 0.0090733).abs() < 1e-7);
        assert_eq!((r.df_between, r.df_within), (2, 12));
        // SS by hand: means 26.28, 30.88, 26.54, grand 27.9 → 5(2.6244+8.8804+1.8496) = 66.772.
        assert!((r.ss_between - 66.772).abs() < 1e-9);
        assert!((r.eta_sq - r.ss_between / (r.ss_between + r.ss_within)).abs() < 1e-15);
        let row = r.to_row();
        let keys: Vec<&str> = row.keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            [
                "F",
                "p",
                "df_between",
                "df_within",
                "ss_between",
                "ss_within",
                "eta_sq"
            ]
        );
    }

    #[test]
    fn paper_statement_shape() {
        // "F = 0.33, p = 0.89" with six groups: df1 = 5; for df2 = 24 scipy gives
        // f.sf(0.33, 5, 24) = 0.88982, i.e. p ≈ 0.89. Build six groups of five values whose
        // F is exactly 0.33: shift group means so that SS_between/5 = 0.33 · SS_within/24.
        let base = [-2.0, -1.0, 0.0, 1.0, 2.0]; // SS = 10 per group → SS_within = 60
        let ms_within = 60.0 / 24.0;
        // group means ±d, ±d, ±d: SS_between = 5 · 6 d² = 30 d² = 5 · 0.33 · ms_within
        let d = (0.33 * ms_within / 6.0f64).sqrt();
        let groups: Vec<Vec<f64>> = (0..6)
            .map(|i| {
                let m = if i % 2 == 0 { d } else { -d };
                base.iter().map(|b| b + m).collect()
            })
            .collect();
        let r = oneway_anova(&groups).unwrap();
        assert_eq!((r.df_between, r.df_within), (5, 24));
        assert!((r.f - 0.33).abs() < 1e-12, "F = {}", r.f);
        // scipy.stats.f.sf(0.33, 5, 24) = 0.889824184059244
        assert!((r.p - 0.889824184059244).abs() < 1e-9, "p = {}", r.p);
        assert_eq!(format!("{:.2}", r.p), "0.89");
    }

    #[test]
    fn bad_input() {
        let e = oneway_anova(&[vec![1.0, 2.0]]).unwrap_err().to_string();
        assert!(e.contains("at least two groups"), "{e}");
        let e = oneway_anova(&[vec![1.0, f64::NAN], vec![2.0, 3.0]])
            .unwrap_err()
            .to_string();
        assert!(e.contains("#1") && e.contains("NaN"), "{e}");
        let e = oneway_anova(&[vec![1.0, 1.0], vec![2.0, 2.0]])
            .unwrap_err()
            .to_string();
        assert!(e.contains("zero variance"), "{e}");
        let e = oneway_anova(&[vec![1.0, 2.0], vec![2.0]])
            .unwrap_err()
            .to_string();
        assert!(e.contains("'#2' has 1 value(s), needs at least 2"), "{e}");
    }
}
