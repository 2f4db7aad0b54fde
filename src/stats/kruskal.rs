//! Kruskal–Wallis H test with the tie correction, as `scipy.stats.kruskal` and R
//! `kruskal.test`: mid-ranks over the pooled sample, H = 12/(N(N+1)) ΣRᵢ²/nᵢ − 3(N+1),
//! divided by 1 − Σ(t³ − t)/(N³ − N); p = P(χ²_{k−1} > H).

use super::describe::average_ranks;
use super::dist::chi2_sf;
use super::{check_groups, Result, StatsError};
use crate::value::{num, Row};

/// Result of the Kruskal–Wallis test.
#[derive(Debug, Clone, PartialEq)]
pub struct Kruskal {
    /// Tie-corrected H statistic.
    pub h: f64,
    /// p-value (χ² approximation with k − 1 degrees of freedom).
    pub p: f64,
}

impl Kruskal {
    /// The result as a row with the keys `H, p`.
    pub fn to_row(&self) -> Row {
        let mut r = Row::new();
        r.insert("H".into(), num(self.h));
        r.insert("p".into(), num(self.p));
        r
    }
}

/// Kruskal–Wallis test over `groups` (at least two, each with at least two values, like every
/// group comparison here: a singleton group is usually a mistyped label).
pub fn kruskal(groups: &[Vec<f64>]) -> Result<Kruskal> {
    const FN: &str = "kruskal";
    check_groups(FN, groups, 2)?;
    let all: Vec<f64> = groups.iter().flatten().copied().collect();
    let n = all.len() as f64;
    let (ranks, ties) = average_ranks(&all);
    let correction = 1.0 - ties / (n * n * n - n);
    if correction <= 0.0 {
        return Err(StatsError::Degenerate {
            func: FN,
            reason: "all values are identical, so H is undefined".into(),
        });
    }
    let mut start = 0;
    let mut s = 0.0;
    for g in groups {
        let r: f64 = ranks[start..start + g.len()].iter().sum();
        s += r * r / g.len() as f64;
        start += g.len();
    }
    let h = (12.0 / (n * (n + 1.0)) * s - 3.0 * (n + 1.0)) / correction;
    Ok(Kruskal {
        h,
        p: chi2_sf(h, groups.len() as f64 - 1.0),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_research_note_vector() {
        // Research note A5 (scipy.stats.kruskal on the A4 unequal data): H = 8.760833,
        // p = 0.0125201.
        let g = vec![
            vec![24.5, 23.5, 26.4, 27.1, 29.9],
            vec![28.4, 34.2, 29.5, 32.2, 30.1, 31.0],
            vec![26.1, 28.3, 24.3, 26.2],
        ];
        let r = kruskal(&g).unwrap();
        assert!((r.h - 8.760833).abs() < 1e-6, "{}", r.h);
        assert!((r.p - 0.0125201).abs() < 1e-7, "{}", r.p);
    }

    #[test]
    fn tie_correction() {
        // By hand (scipy.stats.kruskal gives H = 3.3333333333333295, p = 0.06788915486182946):
        // ranks 1.5 1.5 3.5 | 3.5 5.5 5.5, rank sums 6.5 and 14.5;
        // ΣR²/n = (42.25 + 210.25)/3 = 84.1667; H0 = 12/42 · 84.1667 − 21 = 3.047619;
        // three tied pairs → Σ(t³−t) = 18; correction = 1 − 18/210; H = 3.047619/0.9142857 = 10/3.
        let r = kruskal(&[vec![1.0, 1.0, 2.0], vec![2.0, 3.0, 3.0]]).unwrap();
        assert!((r.h - 10.0 / 3.0).abs() < 1e-12, "{}", r.h);
        assert!((r.p - 0.06788915486182946).abs() < 1e-12, "{}", r.p);
        let e = kruskal(&[vec![1.0, 1.0], vec![1.0, 1.0]])
            .unwrap_err()
            .to_string();
        assert!(e.contains("identical"), "{e}");
    }
}
