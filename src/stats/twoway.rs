//! Two-way ANOVA with interaction and type II sums of squares, as `statsmodels`
//! `anova_lm(ols("y ~ C(a) * C(b)", data).fit(), typ=2)` (statsmodels 0.15) and R
//! `car::Anova(lm(y ~ a * b), type = 2)`.
//!
//! With RSS(M) the residual sum of squares of the least-squares fit of model M (treatment
//! coding, fitted by [`super::ols::rss`]):
//! SS(a) = RSS(b) − RSS(a + b), SS(b) = RSS(a) − RSS(a + b),
//! SS(a:b) = RSS(a + b) − RSS(a * b), SS(residual) = RSS(a * b) on N − (levels a · levels b)
//! degrees of freedom; F = (SS/df)/(SS_res/df_res). For balanced designs these are the
//! classical sums of squares. Every cell must hold at least two observations, so that the
//! interaction is estimable from replicates in every cell (an empty or single-observation
//! cell is reported by name).

use super::check_finite;
use super::dist::f_sf;
use super::ols::rss;
use super::{int, Result, StatsError};
use crate::table::Table;
use crate::value::{num, Row, Value};

/// One line of the ANOVA table.
#[derive(Debug, Clone, PartialEq)]
pub struct TwoWayTerm {
    /// `a`, `b`, `a:b` (the factor names) or `residual`.
    pub term: String,
    /// Type II sum of squares.
    pub ss: f64,
    /// Degrees of freedom.
    pub df: usize,
    /// F statistic (`None` for the residual).
    pub f: Option<f64>,
    /// p-value (`None` for the residual).
    pub p: Option<f64>,
}

impl TwoWayTerm {
    /// The line as a row with the keys `term, ss, df, F, p` (F and p null for the residual).
    pub fn to_row(&self) -> Row {
        let mut r = Row::new();
        r.insert("term".into(), Value::String(self.term.clone()));
        r.insert("ss".into(), num(self.ss));
        r.insert("df".into(), int(self.df));
        r.insert("F".into(), self.f.map_or(Value::Null, num));
        r.insert("p".into(), self.p.map_or(Value::Null, num));
        r
    }
}

/// A two-way ANOVA table: the terms `a`, `b`, `a:b` and `residual`, in that order.
#[derive(Debug, Clone, PartialEq)]
pub struct TwoWay {
    /// The four lines.
    pub terms: Vec<TwoWayTerm>,
    /// Levels of factor a, in order of first appearance.
    pub levels_a: Vec<String>,
    /// Levels of factor b, in order of first appearance.
    pub levels_b: Vec<String>,
}

impl TwoWay {
    /// The table with the columns `term, ss, df, F, p`.
    pub fn to_table(&self) -> Table {
        Table::from_rows(self.terms.iter().map(TwoWayTerm::to_row).collect())
    }
}

fn levels(xs: &[String]) -> (Vec<String>, Vec<usize>) {
    let mut names: Vec<String> = Vec::new();
    let mut codes = Vec::with_capacity(xs.len());
    for x in xs {
        let code = match names.iter().position(|n| n == x) {
            Some(i) => i,
            None => {
                names.push(x.clone());
                names.len() - 1
            }
        };
        codes.push(code);
    }
    (names, codes)
}

/// Treatment-coded dummy columns (level 0 is the reference).
fn dummies(codes: &[usize], n_levels: usize) -> Vec<Vec<f64>> {
    (1..n_levels)
        .map(|l| codes.iter().map(|&c| f64::from(u8::from(c == l))).collect())
        .collect()
}

/// Two-way ANOVA of `y` on factors `a` and `b` (one label per observation), named
/// `name_a`/`name_b` in the output.
pub fn twoway_anova(
    a: &[String],
    b: &[String],
    y: &[f64],
    name_a: &str,
    name_b: &str,
) -> Result<TwoWay> {
    const FN: &str = "anova";
    if a.len() != y.len() || b.len() != y.len() {
        return Err(StatsError::InvalidArgument {
            func: FN,
            name: "factors",
            value: format!("{} / {} labels for {} values", a.len(), b.len(), y.len()),
            expected: "one label of each factor per value",
        });
    }
    check_finite(FN, "all", y)?;
    let (la, ca) = levels(a);
    let (lb, cb) = levels(b);
    for (name, l) in [(name_a, &la), (name_b, &lb)] {
        if l.len() < 2 {
            return Err(StatsError::TooFewGroups {
                func: if name == name_a {
                    "anova (factor a)"
                } else {
                    "anova (factor b)"
                },
                found: l.len(),
            });
        }
    }
    let mut counts = vec![0usize; la.len() * lb.len()];
    for (&i, &j) in ca.iter().zip(&cb) {
        counts[i * lb.len() + j] += 1;
    }
    for (i, na) in la.iter().enumerate() {
        for (j, nb) in lb.iter().enumerate() {
            let n = counts[i * lb.len() + j];
            if n < 2 {
                return Err(StatsError::NoReplicate {
                    func: FN,
                    cell: format!("({name_a}={na}, {name_b}={nb})"),
                    n,
                });
            }
        }
    }
    let n = y.len();
    let ones = vec![1.0; n];
    let da = dummies(&ca, la.len());
    let db = dummies(&cb, lb.len());
    let mut dab = Vec::new();
    for xa in &da {
        for xb in &db {
            dab.push(xa.iter().zip(xb).map(|(p, q)| p * q).collect::<Vec<f64>>());
        }
    }
    let model = |parts: &[&Vec<Vec<f64>>]| {
        let mut cols = vec![ones.clone()];
        for p in parts {
            cols.extend(p.iter().cloned());
        }
        rss(&cols, y)
    };
    let (rss_a, _) = model(&[&da]);
    let (rss_b, _) = model(&[&db]);
    let (rss_ab_add, _) = model(&[&da, &db]);
    let (rss_full, rank_full) = model(&[&da, &db, &dab]);
    let df_res = n - rank_full;
    // The least-squares residual of data without within-cell variation is rounding noise (of
    // the order of (n·ε)²·Σy², e.g. 1e-61 for 48 equal scores of 1/3), not zero: treat anything
    // at that level as zero rather than divide noise by noise into a meaningless F.
    let sum_y2: f64 = y.iter().map(|v| v * v).sum();
    let noise = sum_y2 * (n as f64 * f64::EPSILON).powi(2);
    if rss_full <= noise {
        return Err(StatsError::Degenerate {
            func: FN,
            reason: "the residual sum of squares is zero (no variation within cells)".into(),
        });
    }
    let ms_res = rss_full / df_res as f64;
    let term = |name: String, ss: f64, df: usize| {
        let f = (ss / df as f64) / ms_res;
        TwoWayTerm {
            term: name,
            ss,
            df,
            f: Some(f),
            p: Some(f_sf(f, df as f64, df_res as f64)),
        }
    };
    let terms = vec![
        term(name_a.to_string(), rss_b - rss_ab_add, la.len() - 1),
        term(name_b.to_string(), rss_a - rss_ab_add, lb.len() - 1),
        term(
            format!("{name_a}:{name_b}"),
            rss_ab_add - rss_full,
            (la.len() - 1) * (lb.len() - 1),
        ),
        TwoWayTerm {
            term: "residual".into(),
            ss: rss_full,
            df: df_res,
            f: None,
            p: None,
        },
    ];
    Ok(TwoWay {
        terms,
        levels_a: la,
        levels_b: lb,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn errors_name_the_cell() {
        let a = s(&["x", "x", "x", "y", "y", "y", "y"]);
        let b = s(&["u", "u", "v", "u", "u", "v", "v"]);
        let y = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0];
        let e = twoway_anova(&a, &b, &y, "m", "l").unwrap_err().to_string();
        assert!(e.contains("cell (m=x, l=v) has 1 observation"), "{e}");
        let b = s(&["u", "u", "u", "u", "u", "u", "u"]);
        let e = twoway_anova(&a, &b, &y, "m", "l").unwrap_err().to_string();
        assert!(e.contains("at least two groups, got 1"), "{e}");
        let b = s(&["u", "u", "v", "v", "u", "u", "v"]);
        let mut y2 = y;
        y2[3] = f64::NAN;
        let e = twoway_anova(&a, &b, &y2, "m", "l").unwrap_err().to_string();
        assert!(e.contains("non-finite") && e.contains("position 3"), "{e}");
    }

    #[test]
    fn constant_scores_are_degenerate_not_noise() {
        // 6 variants × 4 shares × 2 seeds, every score 1/3 (a model that always predicts one of
        // three balanced labels): the least-squares residual is rounding noise, and without the
        // noise floor F would be noise over noise (it printed F = -0.63 once).
        let (mut a, mut b, mut y) = (Vec::new(), Vec::new(), Vec::new());
        for v in 0..6 {
            for sh in 0..4 {
                for _ in 0..2 {
                    a.push(format!("v{v}"));
                    b.push(format!("s{sh}"));
                    y.push(1.0 / 3.0);
                }
            }
        }
        let e = twoway_anova(&a, &b, &y, "variant", "share")
            .unwrap_err()
            .to_string();
        assert!(e.contains("no variation within cells"), "{e}");
        // Cell means that differ with no variation inside the cells: also no residual.
        let y2: Vec<f64> = a
            .iter()
            .zip(&b)
            .map(|(x, s)| if x == "v0" && s == "s1" { 0.5 } else { 0.25 })
            .collect();
        let e = twoway_anova(&a, &b, &y2, "variant", "share")
            .unwrap_err()
            .to_string();
        assert!(e.contains("no variation within cells"), "{e}");
    }

    #[test]
    fn unbalanced_matches_statsmodels() {
        // Unbalanced 3 × 3 design (cell sizes 2–4), made with numpy (default_rng(8), effects
        // plus N(0, 0.03) noise, rounded to 4 decimals; tests/fixtures/stats/make_unbalanced.py);
        // statsmodels 0.15.0
        // anova_lm(ols("f1 ~ C(variant) * C(lang)", df).fit(), typ=2) gives the values below.
        let cells: [(&str, &str, &[f64]); 9] = [
            ("LoRA", "hi", &[0.5579, 0.5699][..]),
            ("LoRA", "sw", &[0.4292, 0.4595, 0.4006][..]),
            ("LoRA", "ur", &[0.5443, 0.5213, 0.5768, 0.5787][..]),
            ("DoRA", "hi", &[0.6318, 0.613, 0.5884][..]),
            ("DoRA", "sw", &[0.4758, 0.4952][..]),
            ("DoRA", "ur", &[0.5104, 0.5483][..]),
            ("VeRA", "hi", &[0.5187, 0.5632, 0.4949, 0.511][..]),
            ("VeRA", "sw", &[0.3909, 0.3877, 0.3308][..]),
            ("VeRA", "ur", &[0.4708, 0.4564][..]),
        ];
        let (mut a, mut b, mut y) = (Vec::new(), Vec::new(), Vec::new());
        for (v, l, ys) in cells {
            for x in ys {
                a.push(v.to_string());
                b.push(l.to_string());
                y.push(*x);
            }
        }
        let r = twoway_anova(&a, &b, &y, "variant", "lang").unwrap();
        let want = [
            (
                0.03569175733748779,
                2,
                Some((26.191710268309375, 8.981591487831393e-06)),
            ),
            (
                0.08756129739701146,
                2,
                Some((64.25517551446006, 2.2582302123568138e-08)),
            ),
            (
                0.0055976461347344185,
                4,
                Some((2.053862525725179, 0.1349196633214365)),
            ),
            (0.01090169583333334, 16, None),
        ];
        for (t, (ss, df, fp)) in r.terms.iter().zip(want) {
            assert!(
                (t.ss - ss).abs() <= 1e-8 * ss,
                "{}: ss {} vs {ss}",
                t.term,
                t.ss
            );
            assert_eq!(t.df, df);
            match (t.f, t.p, fp) {
                (Some(f), Some(p), Some((wf, wp))) => {
                    assert!((f - wf).abs() <= 1e-8 * wf, "{}: F {f} vs {wf}", t.term);
                    assert!((p - wp).abs() <= 1e-8, "{}: p {p} vs {wp}", t.term);
                }
                (None, None, None) => {}
                _ => panic!("F/p presence differs for {}", t.term),
            }
        }
        // Unbalanced, so type II differs from the sequential (type I) decomposition:
        // SS(a) + SS(b) + SS(a:b) + SS(res) ≠ total SS.
        let m = crate::stats::describe::mean(&y);
        let total: f64 = y.iter().map(|v| (v - m) * (v - m)).sum();
        let sum: f64 = r.terms.iter().map(|t| t.ss).sum();
        assert!((total - sum).abs() > 1e-6);
    }
}
