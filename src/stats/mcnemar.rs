//! McNemar's test for paired binary outcomes (McNemar 1947), as statsmodels
//! `statsmodels.stats.contingency_tables.mcnemar(table, exact, correction)`.
//!
//! The 2 × 2 table counts items by the outcome of system a (rows) and system b (columns),
//! index 0 = success (1, `true`, correct) and 1 = failure: `table[0][1]` = n01 items that only a
//! got right, `table[1][0]` = n10 items that only b got right. Only these discordant counts
//! matter; under H₀ (equal success rates) each discordant item is a's or b's with probability ½.
//!
//! - exact (default): statistic = min(n01, n10), p = min(1, 2·P(X ≤ min(n01, n10))) with
//!   X ~ Binomial(n01 + n10, ½);
//! - chi-square: statistic = (|n01 − n10| − c)²/(n01 + n10) with c = 1 (`correction`, Edwards
//!   1948) or 0, p = P(χ²₁ > statistic) = erfc(√(statistic/2)). As in statsmodels the corrected
//!   statistic is not clamped at zero: when n01 = n10 it is 1/(n01 + n10).
//!
//! No discordant pairs (n01 = n10 = 0: the two systems agree on every item) is an error, as
//! the chi-square statistic is 0/0 there.

use super::dist::erfc;
use super::{Result, StatsError};
use crate::value::{num, Row, Value};

/// Result of McNemar's test.
#[derive(Debug, Clone, PartialEq)]
pub struct McNemar {
    /// min(n01, n10) for the exact test, the χ² statistic otherwise.
    pub statistic: f64,
    /// p-value.
    pub p: f64,
    /// Items only a got right (`table[0][1]`).
    pub n01: u64,
    /// Items only b got right (`table[1][0]`).
    pub n10: u64,
    /// `"exact"`, `"chi2"` or `"chi2_corrected"`.
    pub method: &'static str,
}

impl McNemar {
    /// The result as a row with the keys `statistic, p, n01, n10, method`.
    pub fn to_row(&self) -> Row {
        let mut r = Row::new();
        r.insert("statistic".into(), num(self.statistic));
        r.insert("p".into(), num(self.p));
        r.insert("n01".into(), Value::from(self.n01));
        r.insert("n10".into(), Value::from(self.n10));
        r.insert("method".into(), Value::String(self.method.into()));
        r
    }
}

/// P(X ≤ k) for X ~ Binomial(n, ½), k ≤ n/2. The terms C(n, i)/2ⁿ are summed from i = k down,
/// each from the previous by C(n, i−1) = C(n, i)·i/(n − i + 1), until they no longer change the
/// sum; the first term C(n, k)/2ⁿ is a scaled product for n ≤ 1000, a sum of logarithms for
/// k < 16, and Loader's saddle-point form otherwise.
pub fn binom_half_cdf(k: u64, n: u64) -> Result<f64> {
    let (kf, nf) = (k as f64, n as f64);
    // Relative sum: t_k = 1.
    let mut term = 1.0f64;
    let mut sum = 1.0f64;
    let mut i = k;
    while i > 0 {
        if i.is_multiple_of(1 << 20) {
            crate::interrupt::check()?;
        }
        term *= i as f64 / (nf - i as f64 + 1.0);
        sum += term;
        if term < 1e-18 * sum {
            break;
        }
        i -= 1;
    }
    let first = if n <= 1000 {
        // C(n, k) · 0.5ⁿ by the product Π_{j=1..k} (n − k + j)/j, scaled as it goes.
        let mut c = 0.5f64.powi((n - k) as i32);
        for j in 1..=k {
            c *= (nf - kf + j as f64) / j as f64 * 0.5;
        }
        c
    } else if k < 16 {
        // ln C(n, k) = Σ_{j=1..k} ln((n − k + j)/j): few terms, each exact to an ulp.
        let lc: f64 = (1..=k)
            .map(|j| ((nf - kf + j as f64) / j as f64).ln())
            .sum();
        (lc - nf * std::f64::consts::LN_2).exp()
    } else {
        binom_half_pmf_loader(k, n)
    };
    Ok((first * sum).min(1.0))
}

/// stirlerr(n) = ln n! − (n + ½) ln n + n − ½ ln 2π, by its asymptotic series (n ≥ 16).
fn stirlerr(n: f64) -> f64 {
    const S0: f64 = 1.0 / 12.0;
    const S1: f64 = 1.0 / 360.0;
    const S2: f64 = 1.0 / 1260.0;
    const S3: f64 = 1.0 / 1680.0;
    const S4: f64 = 1.0 / 1188.0;
    let nn = n * n;
    (S0 - (S1 - (S2 - (S3 - S4 / nn) / nn) / nn) / nn) / n
}

/// bd0(x, m) = x ln(x/m) + m − x without cancellation (Loader 2000): for x near m, with
/// v = (x − m)/(x + m), bd0 = (x − m)v + 2x Σ_{j≥1} v^{2j+1}/(2j + 1).
fn bd0(x: f64, m: f64) -> f64 {
    if (x - m).abs() < 0.1 * (x + m) {
        let v = (x - m) / (x + m);
        let mut s = (x - m) * v;
        let mut ej = 2.0 * x * v;
        let v2 = v * v;
        for j in 1..1000 {
            ej *= v2;
            let s1 = s + ej / (2 * j + 1) as f64;
            if s1 == s {
                return s1;
            }
            s = s1;
        }
        s
    } else {
        x * (x / m).ln() + m - x
    }
}

/// C(n, k)/2ⁿ for 16 ≤ k ≤ n − 16 by Loader's saddle-point form (as R's `dbinom`):
/// exp(stirlerr(n) − stirlerr(k) − stirlerr(n − k) − bd0(k, n/2) − bd0(n − k, n/2)) /
/// √(2πk(1 − k/n)), which keeps full relative precision where ln Γ differences cancel.
fn binom_half_pmf_loader(k: u64, n: u64) -> f64 {
    let (kf, nf) = (k as f64, n as f64);
    let h = nf / 2.0;
    let lc = stirlerr(nf) - stirlerr(kf) - stirlerr(nf - kf) - bd0(kf, h) - bd0(nf - kf, h);
    let lf = (2.0 * std::f64::consts::PI).ln() + kf.ln() + (-kf / nf).ln_1p();
    (lc - 0.5 * lf).exp()
}

/// McNemar's test from the discordant counts `n01` (only a right) and `n10` (only b right).
pub fn mcnemar(n01: u64, n10: u64, exact: bool, correction: bool) -> Result<McNemar> {
    const FN: &str = "mcnemar";
    let n = n01
        .checked_add(n10)
        .ok_or_else(|| StatsError::InvalidArgument {
            func: FN,
            name: "table",
            value: format!("n01 = {n01}, n10 = {n10}"),
            expected: "counts whose sum fits in 64 bits",
        })?;
    if n == 0 {
        return Err(StatsError::Degenerate {
            func: FN,
            reason: "no discordant pairs (n01 = n10 = 0): the two systems agree on every item, so the test is undefined".into(),
        });
    }
    let (statistic, p, method) = if exact {
        let k = n01.min(n10);
        let p = (2.0 * binom_half_cdf(k, n)?).min(1.0);
        (k as f64, p, "exact")
    } else {
        let c = if correction { 1.0 } else { 0.0 };
        let diff = (n01 as f64 - n10 as f64).abs() - c;
        let stat = diff * diff / n as f64;
        let method = if correction { "chi2_corrected" } else { "chi2" };
        (stat, erfc((stat / 2.0).sqrt()), method)
    };
    Ok(McNemar {
        statistic,
        p,
        n01,
        n10,
        method,
    })
}

/// McNemar's test from a 2 × 2 table of counts (rows: a right / wrong, columns: b right /
/// wrong); only the off-diagonal cells are used.
pub fn mcnemar_table(table: [[u64; 2]; 2], exact: bool, correction: bool) -> Result<McNemar> {
    if table.iter().flatten().all(|&c| c == 0) {
        return Err(StatsError::Degenerate {
            func: "mcnemar",
            reason: "the table has no items (every count is 0), so there is nothing to test".into(),
        });
    }
    mcnemar(table[0][1], table[1][0], exact, correction)
}

/// McNemar's test from per-item outcomes of a and b on the same items (`true` = right).
pub fn mcnemar_items(a: &[bool], b: &[bool], exact: bool, correction: bool) -> Result<McNemar> {
    if a.len() != b.len() {
        return Err(StatsError::InvalidArgument {
            func: "mcnemar",
            name: "b",
            value: format!("{} items (a has {})", b.len(), a.len()),
            expected: "paired outcomes: the same number of items in both",
        });
    }
    if a.is_empty() {
        return Err(StatsError::Degenerate {
            func: "mcnemar",
            reason: "there are no items (a and b are empty), so there is nothing to test".into(),
        });
    }
    let n01 = a.iter().zip(b).filter(|(x, y)| **x && !**y).count() as u64;
    let n10 = a.iter().zip(b).filter(|(x, y)| !**x && **y).count() as u64;
    mcnemar(n01, n10, exact, correction)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binomial_tail_by_hand() {
        // P(Bin(5, ½) ≤ 1) = (1 + 5)/32; P(Bin(4, ½) ≤ 2) = 11/16.
        assert!((binom_half_cdf(1, 5).unwrap() - 6.0 / 32.0).abs() < 1e-16);
        assert!((binom_half_cdf(2, 4).unwrap() - 11.0 / 16.0).abs() < 1e-16);
        assert_eq!(binom_half_cdf(0, 1).unwrap(), 0.5);
        // P(X ≤ m) for n = 2m is ½ + ½·C(2m, m)/4ᵐ, and C(2m, m)/4ᵐ = (1 − 1/(8m) + 1/(128m²)
        // + 5/(1024m³) + O(m⁻⁴))/√(πm): m = 500 takes the product path, m = 5000 the ln Γ one.
        for m in [500u64, 5000] {
            let mf = m as f64;
            let c =
                (1.0 - 1.0 / (8.0 * mf) + 1.0 / (128.0 * mf * mf) + 5.0 / (1024.0 * mf * mf * mf))
                    / (std::f64::consts::PI * mf).sqrt();
            let got = binom_half_cdf(m, 2 * m).unwrap();
            assert!((got - (0.5 + 0.5 * c)).abs() < 1e-12, "m = {m}: {got}");
        }
        // Far tails of n = 1001 (mpmath at 40 digits, rounded to f64): the log-sum path (k = 15) and Loader's
        // (k = 16, 40), to relative 1e-12.
        for (k, want) in [
            (15, 3.31018957519707e-269),
            (16, 2.0420369132988306e-267),
            (40, 2.8194395247782113e-230),
        ] {
            let got = binom_half_cdf(k, 1001).unwrap();
            assert!((got / want - 1.0).abs() < 1e-12, "k = {k}: {got}");
        }
    }

    #[test]
    fn items_build_the_table() {
        // a right on 1, 2, 3, 5; b right on 2, 4, 5: n01 = 2 (items 1, 3), n10 = 1 (item 4).
        let a = [true, true, true, false, true];
        let b = [false, true, false, true, true];
        let r = mcnemar_items(&a, &b, true, true).unwrap();
        assert_eq!((r.n01, r.n10), (2, 1));
        // 2·P(Bin(3, ½) ≤ 1) = 2·4/8 = 1.
        assert_eq!((r.statistic, r.p, r.method), (1.0, 1.0, "exact"));
        let r = mcnemar_items(&a, &b, false, false).unwrap();
        assert!((r.statistic - 1.0 / 3.0).abs() < 1e-15 && r.method == "chi2");
    }

    #[test]
    fn bad_input() {
        let e = mcnemar(0, 0, true, true).unwrap_err().to_string();
        assert!(e.contains("mcnemar: no discordant pairs"), "{e}");
        let e = mcnemar_items(&[], &[], true, true).unwrap_err().to_string();
        assert!(
            e.contains("mcnemar: there are no items") && !e.contains("agree"),
            "{e}"
        );
        let e = mcnemar_table([[0, 0], [0, 0]], true, true)
            .unwrap_err()
            .to_string();
        assert!(e.contains("mcnemar: the table has no items"), "{e}");
        assert!(mcnemar_table([[5, 0], [0, 7]], false, true).is_err());
        let e = mcnemar_items(&[true], &[true, false], true, true)
            .unwrap_err()
            .to_string();
        assert!(e.contains("2 items (a has 1)"), "{e}");
        assert!(mcnemar(u64::MAX, 1, true, true).is_err());
    }
}
