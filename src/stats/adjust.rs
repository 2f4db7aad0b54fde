//! Multiple-comparison p-value adjustment, as R `p.adjust(method = "holm" | "BH")` and
//! `statsmodels.stats.multitest.multipletests(method="holm" | "fdr_bh")`.
//!
//! Holm (1979): with the p-values sorted ascending, adj₍ᵢ₎ = max_{j≤i} min(1, (m − j + 1)p₍ⱼ₎).
//! Benjamini–Hochberg (1995): with them sorted descending at ranks i = m..1,
//! adj₍ᵢ₎ = min_{j≥i} min(1, m/j · p₍ⱼ₎). Results are in the input order.

use super::{Result, StatsError};

fn check(func: &'static str, p: &[f64]) -> Result<()> {
    match p.iter().position(|v| !(0.0..=1.0).contains(v)) {
        Some(i) => Err(StatsError::InvalidArgument {
            func,
            name: "p",
            value: format!("{} at position {i}", p[i]),
            expected: "p-values in [0, 1]",
        }),
        None => Ok(()),
    }
}

fn ascending_order(p: &[f64]) -> Vec<usize> {
    let mut o: Vec<usize> = (0..p.len()).collect();
    o.sort_by(|&a, &b| p[a].total_cmp(&p[b]));
    o
}

/// Holm's step-down adjustment (controls the family-wise error rate).
pub fn holm(p: &[f64]) -> Result<Vec<f64>> {
    check("holm", p)?;
    let m = p.len();
    let mut out = vec![0.0; m];
    let mut running: f64 = 0.0;
    for (j, &i) in ascending_order(p).iter().enumerate() {
        running = running.max(((m - j) as f64 * p[i]).min(1.0));
        out[i] = running;
    }
    Ok(out)
}

/// Benjamini–Hochberg step-up adjustment (controls the false discovery rate).
pub fn benjamini_hochberg(p: &[f64]) -> Result<Vec<f64>> {
    check("benjamini_hochberg", p)?;
    let m = p.len();
    let mut out = vec![0.0; m];
    let mut running: f64 = 1.0;
    for (j, &i) in ascending_order(p).iter().enumerate().rev() {
        running = running.min(m as f64 / (j + 1) as f64 * p[i]);
        out[i] = running;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: &[f64], b: &[f64]) -> bool {
        a.len() == b.len() && a.iter().zip(b).all(|(x, y)| (x - y).abs() < 1e-12)
    }

    #[test]
    fn holm_matches_r() {
        // Research note A5: Holm([0.01, 0.04, 0.03, 0.005]) = [0.03, 0.06, 0.06, 0.02]
        // (R p.adjust(c(.01,.04,.03,.005), "holm")).
        let a = holm(&[0.01, 0.04, 0.03, 0.005]).unwrap();
        assert!(close(&a, &[0.03, 0.06, 0.06, 0.02]), "{a:?}");
        // Capped at 1 and monotone: R p.adjust(c(.5, .6, .01), "holm") = c(1, 1, .03).
        let a = holm(&[0.5, 0.6, 0.01]).unwrap();
        assert!(close(&a, &[1.0, 1.0, 0.03]), "{a:?}");
    }

    #[test]
    fn bh_matches_r() {
        // R p.adjust(c(.01,.04,.03,.005), "BH") = c(0.02, 0.04, 0.04, 0.02):
        // sorted .005 .01 .03 .04 → 4/1·.005=.02, 4/2·.01=.02, 4/3·.03=.04, 4/4·.04=.04.
        let a = benjamini_hochberg(&[0.01, 0.04, 0.03, 0.005]).unwrap();
        assert!(close(&a, &[0.02, 0.04, 0.04, 0.02]), "{a:?}");
        assert!(holm(&[0.1, f64::NAN]).is_err());
        assert!(benjamini_hochberg(&[1.5]).is_err());
        assert!(holm(&[]).unwrap().is_empty());
    }
}
