//! Ordinary least squares residual sum of squares for small dense designs, by modified
//! Gram–Schmidt with re-orthogonalisation ("twice is enough", Giraud et al. 2005), which is
//! as accurate as Householder QR for the well-conditioned 0/1 designs of ANOVA models.
//! Linearly dependent columns (relative residual norm below 1e-10) are skipped, so the
//! returned rank is the rank of the design.

/// Residual sum of squares ‖y − X β̂‖² and rank of `columns` (each a column of X, of the
/// length of `y`).
pub fn rss(columns: &[Vec<f64>], y: &[f64]) -> (f64, usize) {
    let mut basis: Vec<Vec<f64>> = Vec::with_capacity(columns.len());
    for col in columns {
        let norm0 = dot(col, col).sqrt();
        if norm0 == 0.0 {
            continue;
        }
        let mut v = col.clone();
        for _ in 0..2 {
            for q in &basis {
                let c = dot(q, &v);
                axpy(-c, q, &mut v);
            }
        }
        let norm = dot(&v, &v).sqrt();
        if norm <= 1e-10 * norm0 {
            continue;
        }
        v.iter_mut().for_each(|x| *x /= norm);
        basis.push(v);
    }
    let mut r = y.to_vec();
    for _ in 0..2 {
        for q in &basis {
            let c = dot(q, &r);
            axpy(-c, q, &mut r);
        }
    }
    (dot(&r, &r), basis.len())
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

fn axpy(a: f64, x: &[f64], y: &mut [f64]) {
    y.iter_mut().zip(x).for_each(|(yi, xi)| *yi += a * xi);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn straight_line_fit() {
        // y = 1 + 2x except the last point, which is 1 higher: x = 0..4, y = 1,3,5,7,10.
        // By hand: x̄ = 2, ȳ = 5.2, Sxy = 22, Sxx = 10 → slope 2.2, intercept 0.8;
        // fitted 0.8, 3.0, 5.2, 7.4, 9.6 → residuals .2, 0, −.2, −.4, .4 → RSS = 0.4.
        let x0 = vec![1.0; 5];
        let x1 = vec![0.0, 1.0, 2.0, 3.0, 4.0];
        let y = [1.0, 3.0, 5.0, 7.0, 10.0];
        let (r, rank) = rss(&[x0.clone(), x1.clone()], &y);
        assert_eq!(rank, 2);
        assert!((r - 0.4).abs() < 1e-13, "{r}");
        // A duplicated column does not change the fit and is not counted in the rank.
        let (r2, rank2) = rss(&[x0, x1.clone(), x1], &y);
        assert_eq!(rank2, 2);
        assert!((r2 - 0.4).abs() < 1e-13);
    }
}
