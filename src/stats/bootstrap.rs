//! Paired bootstrap of the difference of two systems' mean per-item scores (Efron &
//! Tibshirani 1993, ch. 13 and 16; Koehn 2004, "Statistical significance tests for machine
//! translation evaluation"), on a seeded ChaCha8 stream (`crate::rng::seeded`).
//!
//! Conventions:
//! - `diff` = mean(b) − mean(a) (positive when system b scores higher), as Tukey's
//!   `meandiff`.
//! - Each replicate draws n item indices with replacement (the same indices for a and b, so
//!   the pairing is kept) and records `d* = mean(b[idx]) − mean(a[idx])`.
//! - `lower`/`upper`: the 2.5 % and 97.5 % type-7 percentiles of the d* (numpy's default
//!   `np.percentile`), i.e. the percentile interval.
//! - `p`: two-sided, p = min(1, 2 · min(1 + #{d* ≤ 0}, 1 + #{d* ≥ 0}) / (B + 1)), the usual
//!   "+1" correction (Davison & Hinkley 1997, eq. 4.11) so that p is never 0; it tests
//!   H₀: diff = 0 by how often the resampled difference falls on the other side of zero.

use super::describe::{mean, quantile7_sorted};
use super::{Result, StatsError};
use crate::value::{num, Row};
use rand::RngExt;

/// Result of a paired bootstrap.
#[derive(Debug, Clone, PartialEq)]
pub struct Bootstrap {
    /// mean(b) − mean(a).
    pub diff: f64,
    /// 2.5 % percentile of the bootstrap differences.
    pub lower: f64,
    /// 97.5 % percentile.
    pub upper: f64,
    /// Two-sided bootstrap p-value (with the +1 correction).
    pub p: f64,
}

impl Bootstrap {
    /// The result as a row with the keys `diff, lower, upper, p`.
    pub fn to_row(&self) -> Row {
        let mut r = Row::new();
        r.insert("diff".into(), num(self.diff));
        r.insert("lower".into(), num(self.lower));
        r.insert("upper".into(), num(self.upper));
        r.insert("p".into(), num(self.p));
        r
    }
}

/// Paired bootstrap of mean(b) − mean(a) over `n_resamples` replicates seeded by `seed`.
/// `a` and `b` are per-item scores of two systems on the same items (same length ≥ 2).
pub fn paired_bootstrap(a: &[f64], b: &[f64], n_resamples: usize, seed: u64) -> Result<Bootstrap> {
    const FN: &str = "paired_bootstrap";
    let d = super::paired_differences(FN, a, b)?;
    if n_resamples < 1 {
        return Err(StatsError::InvalidArgument {
            func: FN,
            name: "n",
            value: n_resamples.to_string(),
            expected: "at least 1 resample (10000 recommended)",
        });
    }
    crate::limits::check_elems(
        &format!("{FN}: n = {n_resamples} resamples"),
        &[n_resamples as u64],
        8,
    )?;
    let n = d.len();
    let mut rng = crate::rng::seeded(seed);
    let mut stats = Vec::with_capacity(n_resamples);
    for _ in 0..n_resamples {
        crate::interrupt::check()?;
        let mut s = 0.0;
        for _ in 0..n {
            s += d[rng.random_range(0..n)];
        }
        stats.push(s / n as f64);
    }
    let below = stats.iter().filter(|&&x| x <= 0.0).count();
    let above = stats.iter().filter(|&&x| x >= 0.0).count();
    stats.sort_by(f64::total_cmp);
    let tail = (1 + below.min(above)) as f64 / (n_resamples + 1) as f64;
    Ok(Bootstrap {
        diff: mean(b) - mean(a),
        lower: quantile7_sorted(&stats, 0.025),
        upper: quantile7_sorted(&stats, 0.975),
        p: (2.0 * tail).min(1.0),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constant_difference_is_exact() {
        // b = a + 0.1 on every item: every resample gives d* = 0.1 (up to rounding), so the
        // interval collapses to 0.1, no d* ≤ 0, and p = 2·(1 + 0)/(B + 1) = 2/1001.
        let a = [0.2, 0.5, 0.9, 0.4, 0.3];
        let b: Vec<f64> = a.iter().map(|x| x + 0.1).collect();
        let r = paired_bootstrap(&a, &b, 1000, 7).unwrap();
        assert!((r.diff - 0.1).abs() < 1e-12);
        assert!((r.lower - 0.1).abs() < 1e-12 && (r.upper - 0.1).abs() < 1e-12);
        assert!((r.p - 2.0 / 1001.0).abs() < 1e-15, "{}", r.p);
    }

    #[test]
    fn deterministic_and_sensible() {
        // Items where b wins on 3 of 4: d = (1, 1, 1, −1), mean 0.5.
        let a = [0.0, 0.0, 0.0, 1.0];
        let b = [1.0, 1.0, 1.0, 0.0];
        let r1 = paired_bootstrap(&a, &b, 2000, 42).unwrap();
        let r2 = paired_bootstrap(&a, &b, 2000, 42).unwrap();
        assert_eq!(r1, r2);
        let r3 = paired_bootstrap(&a, &b, 2000, 43).unwrap();
        assert_ne!(r1, r3);
        assert_eq!(r1.diff, 0.5);
        // A resample mean of d takes values in {−1, −.5, 0, .5, 1}; P(d* ≤ 0) = P(at most two
        // of four draws are the +1's ... ) = P(Bin(4, 3/4) ≤ 2) = 1 − (81 + 108)/256 = 67/256
        // ≈ 0.262, so p ≈ 0.52; the percentile interval is [−0.5, 1].
        assert_eq!((r1.lower, r1.upper), (-0.5, 1.0));
        assert!((r1.p - 2.0 * 67.0 / 256.0).abs() < 0.05, "{}", r1.p);
    }

    #[test]
    fn bad_input() {
        assert!(paired_bootstrap(&[1.0], &[1.0, 2.0], 10, 0).is_err());
        assert!(paired_bootstrap(&[1.0], &[1.0], 10, 0).is_err());
        let e = paired_bootstrap(&[1.0, f64::NAN], &[1.0, 2.0], 10, 0)
            .unwrap_err()
            .to_string();
        assert!(e.contains("a_items") && e.contains("NaN"), "{e}");
        assert!(paired_bootstrap(&[1.0, 2.0], &[1.0, 2.0], 0, 0).is_err());
    }
}
