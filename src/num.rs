//! Numerically careful moments of a slice, shared by tables (`group_mean`) and statistics
//! (`crate::stats::describe` re-exports them). The callers check that the data are finite.

/// Arithmetic mean (NaN for an empty slice).
pub fn mean(x: &[f64]) -> f64 {
    if x.is_empty() {
        return f64::NAN;
    }
    // Two-pass mean: a first estimate, then the mean of the residuals, for accuracy.
    let n = x.len() as f64;
    let m0 = x.iter().sum::<f64>() / n;
    m0 + x.iter().map(|v| v - m0).sum::<f64>() / n
}

/// Sum of squared deviations from the mean.
pub fn sum_sq_dev(x: &[f64]) -> f64 {
    let m = mean(x);
    x.iter().map(|v| (v - m) * (v - m)).sum()
}

/// Sample variance with ddof = 1 (NaN for fewer than two values).
pub fn variance(x: &[f64]) -> f64 {
    if x.len() < 2 {
        return f64::NAN;
    }
    sum_sq_dev(x) / (x.len() as f64 - 1.0)
}

/// Sample standard deviation with ddof = 1 (NaN for fewer than two values).
pub fn sd(x: &[f64]) -> f64 {
    variance(x).sqrt()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn moments_by_hand() {
        let x = [2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0];
        assert_eq!(mean(&x), 5.0);
        assert_eq!(sum_sq_dev(&x), 32.0);
        assert_eq!(variance(&x), 32.0 / 7.0);
        assert_eq!(sd(&x), (32.0f64 / 7.0).sqrt());
        assert!(mean(&[]).is_nan() && variance(&[1.0]).is_nan());
        // The residual pass recovers the digits a naive sum loses.
        let big = [1e16 + 1.0, 1e16 + 3.0];
        assert_eq!(mean(&big), 1e16 + 2.0);
    }
}
