//! Descriptive statistics: mean, sample variance/sd (ddof = 1), median, Hyndman–Fan type-7
//! quantile (numpy's default `np.quantile(..., method="linear")`, R's `quantile(type = 7)`),
//! the 95 % t confidence half-width, and average ranks for ties (`scipy.stats.rankdata`,
//! method "average").
//!
//! These helpers take data that the callers have already checked to be finite.

use super::dist::t_quantile;

pub use crate::num::{mean, sd, sum_sq_dev, variance};

/// Type-7 quantile of `x` at probability `p` in [0, 1]: with the sorted values `s` and
/// `h = (n - 1) p`, `s[⌊h⌋] + (h - ⌊h⌋)(s[⌊h⌋ + 1] - s[⌊h⌋])`. NaN for an empty slice or a `p`
/// outside [0, 1].
pub fn quantile7(x: &[f64], p: f64) -> f64 {
    let mut s = x.to_vec();
    s.sort_by(f64::total_cmp);
    quantile7_sorted(&s, p)
}

/// [`quantile7`] of an already sorted slice.
pub fn quantile7_sorted(s: &[f64], p: f64) -> f64 {
    if s.is_empty() || !(0.0..=1.0).contains(&p) {
        return f64::NAN;
    }
    let h = (s.len() - 1) as f64 * p;
    let lo = h.floor() as usize;
    let frac = h - lo as f64;
    match (s.get(lo), s.get(lo + 1)) {
        (Some(a), Some(b)) if frac > 0.0 => a + frac * (b - a),
        (Some(a), _) => *a,
        _ => f64::NAN,
    }
}

/// Median (type-7 quantile at 0.5).
pub fn median(x: &[f64]) -> f64 {
    quantile7(x, 0.5)
}

/// Half-width of the 95 % t confidence interval of the mean: `t_{0.975, n-1} · sd / √n`
/// (NaN for fewer than two values).
pub fn ci95_halfwidth(x: &[f64]) -> f64 {
    let n = x.len();
    if n < 2 {
        return f64::NAN;
    }
    match t_quantile(0.975, n as f64 - 1.0) {
        Some(t) => t * sd(x) / (n as f64).sqrt(),
        None => f64::NAN,
    }
}

/// Average ranks (1-based; ties get the mean of the ranks they span) and the tie-correction
/// sum Σ(t³ − t) over tie groups.
pub fn average_ranks(x: &[f64]) -> (Vec<f64>, f64) {
    let mut idx: Vec<usize> = (0..x.len()).collect();
    idx.sort_by(|&a, &b| x[a].total_cmp(&x[b]));
    let mut ranks = vec![0.0; x.len()];
    let mut ties = 0.0;
    let mut i = 0;
    while i < idx.len() {
        let mut j = i + 1;
        while j < idx.len() && x[idx[j]] == x[idx[i]] {
            j += 1;
        }
        // Positions i..j (0-based) share the average of ranks i+1..=j.
        let avg = (i + 1 + j) as f64 / 2.0;
        for &k in &idx[i..j] {
            ranks[k] = avg;
        }
        let t = (j - i) as f64;
        ties += t * t * t - t;
        i = j;
    }
    (ranks, ties)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn type7_quantiles_match_numpy() {
        // numpy: np.quantile([3, 1, 4, 1, 5, 9, 2, 6], [0.025, 0.5, 0.975])
        //   = [1.0, 3.5, 8.475]; sorted [1,1,2,3,4,5,6,9], h = 7p: 0.175 → 1 + .175·0;
        //   3.5 → (3+4)/2; 6.825 → 6 + .825·(9−6).
        let x = [3.0, 1.0, 4.0, 1.0, 5.0, 9.0, 2.0, 6.0];
        assert_eq!(quantile7(&x, 0.025), 1.0);
        assert_eq!(quantile7(&x, 0.5), 3.5);
        assert!((quantile7(&x, 0.975) - 8.475).abs() < 1e-12);
        assert_eq!(quantile7(&x, 0.0), 1.0);
        assert_eq!(quantile7(&x, 1.0), 9.0);
        assert!(quantile7(&[], 0.5).is_nan());
    }

    #[test]
    fn mean_sd_ci() {
        // By hand: mean(2,4,4,4,5,5,7,9) = 5, SS = 32, var = 32/7, sd = 2.138089935...
        let x = [2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0];
        assert_eq!(mean(&x), 5.0);
        assert!((variance(&x) - 32.0 / 7.0).abs() < 1e-14);
        // scipy: t.ppf(0.975, 7) * sd / sqrt(8) = 2.3646242515927844 * 2.1380899352993947 / 2.8284271247461903
        let want = 2.3646242515927844 * 2.1380899352993947 / 8f64.sqrt();
        assert!((ci95_halfwidth(&x) - want).abs() < 1e-9);
        assert!(sd(&[1.0]).is_nan());
    }

    #[test]
    fn ranks_with_ties() {
        // scipy.stats.rankdata([10, 20, 10, 30, 20, 20]) = [1.5, 4, 1.5, 6, 4, 4]
        let (r, t) = average_ranks(&[10.0, 20.0, 10.0, 30.0, 20.0, 20.0]);
        assert_eq!(r, vec![1.5, 4.0, 1.5, 6.0, 4.0, 4.0]);
        // tie sums: (8-2) + (27-3) = 30
        assert_eq!(t, 30.0);
    }
}
