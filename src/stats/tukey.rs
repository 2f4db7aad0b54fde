//! Tukey's honestly significant difference test, with the Tukey–Kramer standard error for
//! unequal group sizes, as `scipy.stats.tukey_hsd` (scipy 1.17), R `TukeyHSD` and
//! `statsmodels` `pairwise_tukeyhsd` (which agree; research note A4):
//! MSE = SS_within/(N − k) on N − k degrees of freedom, SEᵢⱼ = √(MSE/2 · (1/nᵢ + 1/nⱼ)),
//! q = |x̄ⱼ − x̄ᵢ|/SEᵢⱼ, p_adj = P(Q_{k,N−k} > q) (studentized range, [`super::ptukey`]),
//! CI = (x̄ⱼ − x̄ᵢ) ± q_{1−α; k, N−k} · SEᵢⱼ.
//!
//! Conventions of the Rhai contract: groups in order of first appearance, pairs (i < j) in
//! order, `meandiff = mean(b) − mean(a)` with a = group i and b = group j (statsmodels'
//! `group1`/`group2` convention), `reject = p_adj < alpha`.

use super::describe::{mean, sum_sq_dev};
use super::ptukey::{studentized_range_quantile, studentized_range_sf};
use super::{check_named_groups, Result, StatsError};
use crate::table::Table;
use crate::value::{num, Row, Value};

/// One pairwise comparison.
#[derive(Debug, Clone, PartialEq)]
pub struct TukeyPair {
    /// First group (earlier in order of appearance).
    pub a: String,
    /// Second group.
    pub b: String,
    /// mean(b) − mean(a).
    pub meandiff: f64,
    /// Adjusted p-value.
    pub p_adj: f64,
    /// Lower bound of the simultaneous confidence interval of mean(b) − mean(a).
    pub lower: f64,
    /// Upper bound.
    pub upper: f64,
    /// Whether p_adj < alpha.
    pub reject: bool,
}

impl TukeyPair {
    /// The pair as a row with the keys `a, b, meandiff, p_adj, lower, upper, reject`.
    pub fn to_row(&self) -> Row {
        let mut r = Row::new();
        r.insert("a".into(), Value::String(self.a.clone()));
        r.insert("b".into(), Value::String(self.b.clone()));
        r.insert("meandiff".into(), num(self.meandiff));
        r.insert("p_adj".into(), num(self.p_adj));
        r.insert("lower".into(), num(self.lower));
        r.insert("upper".into(), num(self.upper));
        r.insert("reject".into(), Value::Bool(self.reject));
        r
    }
}

/// The full Tukey HSD result.
#[derive(Debug, Clone, PartialEq)]
pub struct TukeyHsd {
    /// Group names in order of first appearance.
    pub groups: Vec<String>,
    /// Group means, same order.
    pub means: Vec<f64>,
    /// Group sizes.
    pub sizes: Vec<usize>,
    /// Pooled within-group mean square.
    pub mse: f64,
    /// Residual degrees of freedom N − k.
    pub df: usize,
    /// Family-wise error rate used for the intervals and `reject`.
    pub alpha: f64,
    /// Critical value q_{1−α; k, N−k}.
    pub q_crit: f64,
    /// All pairs i < j, in order.
    pub pairs: Vec<TukeyPair>,
}

impl TukeyHsd {
    /// The pairs as a table with the columns `a, b, meandiff, p_adj, lower, upper, reject`.
    pub fn to_table(&self) -> Table {
        Table::from_rows(self.pairs.iter().map(TukeyPair::to_row).collect())
    }

    /// Whether groups `i` and `j` (indices into [`Self::groups`]) differ significantly.
    pub fn differs(&self, i: usize, j: usize) -> bool {
        let (i, j) = if i < j { (i, j) } else { (j, i) };
        let k = self.groups.len();
        if i == j || j >= k {
            return false;
        }
        // Index of pair (i, j) in the row-major upper triangle.
        let idx = i * (2 * k - i - 1) / 2 + (j - i - 1);
        self.pairs.get(idx).is_some_and(|p| p.reject)
    }
}

/// Tukey HSD / Tukey–Kramer over named groups (at least two, each with at least two values)
/// at family-wise level `alpha` (0 < alpha < 1; usually 0.05).
pub fn tukey_hsd(groups: &[(String, Vec<f64>)], alpha: f64) -> Result<TukeyHsd> {
    const FN: &str = "tukey_hsd";
    if !(alpha > 0.0 && alpha < 1.0) {
        return Err(StatsError::InvalidArgument {
            func: FN,
            name: "alpha",
            value: alpha.to_string(),
            expected: "0 < alpha < 1",
        });
    }
    check_named_groups(FN, groups, 2)?;
    let k = groups.len();
    let n: usize = groups.iter().map(|g| g.1.len()).sum();
    let df = n - k;
    let ss_within: f64 = groups.iter().map(|g| sum_sq_dev(&g.1)).sum();
    if ss_within == 0.0 {
        return Err(StatsError::Degenerate {
            func: FN,
            reason: "every group has zero variance, so the standard errors are zero".into(),
        });
    }
    let mse = ss_within / df as f64;
    let means: Vec<f64> = groups.iter().map(|g| mean(&g.1)).collect();
    let sizes: Vec<usize> = groups.iter().map(|g| g.1.len()).collect();
    let q_crit = studentized_range_quantile(1.0 - alpha, k, df as f64)?;
    let mut pairs = Vec::with_capacity(k * (k - 1) / 2);
    for i in 0..k {
        for j in i + 1..k {
            let diff = means[j] - means[i];
            let se = (mse / 2.0 * (1.0 / sizes[i] as f64 + 1.0 / sizes[j] as f64)).sqrt();
            let p_adj = studentized_range_sf(diff.abs() / se, k, df as f64)?;
            pairs.push(TukeyPair {
                a: groups[i].0.clone(),
                b: groups[j].0.clone(),
                meandiff: diff,
                p_adj,
                lower: diff - q_crit * se,
                upper: diff + q_crit * se,
                reject: p_adj < alpha,
            });
        }
    }
    Ok(TukeyHsd {
        groups: groups.iter().map(|g| g.0.clone()).collect(),
        means,
        sizes,
        mse,
        df,
        alpha,
        q_crit,
        pairs,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::named_groups as named;

    #[test]
    fn research_note_vectors() {
        // Research note A4 (scipy.stats.tukey_hsd): equal n → p = 0.01444833, 0.98031072,
        // 0.02033114 and CI half-width 3.649159; unequal → p = 0.00958798, 0.99917917,
        // 0.01329695.
        let a: &[f64] = &[24.5, 23.5, 26.4, 27.1, 29.9];
        let b: &[f64] = &[28.4, 34.2, 29.5, 32.2, 30.1];
        let c: &[f64] = &[26.1, 28.3, 24.3, 26.2, 27.8];
        let r = tukey_hsd(&named(&[a, b, c]), 0.05).unwrap();
        let p: Vec<f64> = r.pairs.iter().map(|x| x.p_adj).collect();
        for (got, want) in p.iter().zip([0.01444833, 0.98031072, 0.02033114]) {
            assert!((got - want).abs() < 1e-8, "{got} vs {want}");
        }
        let half = (r.pairs[0].upper - r.pairs[0].lower) / 2.0;
        assert!((half - 3.649159).abs() < 1e-6, "{half}");
        assert!((r.pairs[0].meandiff - 4.6).abs() < 1e-12); // 30.88 − 26.28
        assert!(r.pairs[0].reject && !r.pairs[1].reject && r.pairs[2].reject);
        assert!(r.differs(0, 1) && r.differs(1, 0) && !r.differs(0, 2));

        let b2: &[f64] = &[28.4, 34.2, 29.5, 32.2, 30.1, 31.0];
        let c2: &[f64] = &[26.1, 28.3, 24.3, 26.2];
        let r = tukey_hsd(&named(&[a, b2, c2]), 0.05).unwrap();
        let p: Vec<f64> = r.pairs.iter().map(|x| x.p_adj).collect();
        for (got, want) in p.iter().zip([0.00958798, 0.99917917, 0.01329695]) {
            assert!((got - want).abs() < 1e-8, "{got} vs {want}");
        }
        let keys: Vec<String> = r.pairs[0].to_row().keys().cloned().collect();
        assert_eq!(
            keys,
            ["a", "b", "meandiff", "p_adj", "lower", "upper", "reject"]
        );
    }

    #[test]
    fn bad_input() {
        let e = tukey_hsd(&named(&[&[1.0, 2.0]]), 0.05)
            .unwrap_err()
            .to_string();
        assert!(e.contains("at least two groups"), "{e}");
        let e = tukey_hsd(&named(&[&[1.0, 2.0], &[3.0]]), 0.05)
            .unwrap_err()
            .to_string();
        assert!(e.contains("'g1' has 1 value"), "{e}");
        assert!(tukey_hsd(&named(&[&[1.0, 2.0], &[3.0, 4.0]]), 1.5).is_err());
    }
}
