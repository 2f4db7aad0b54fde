//! Levene's test with median centring (the Brown–Forsythe variant), as
//! `scipy.stats.levene(..., center="median")` (the default) and R `car::leveneTest`:
//! zᵢⱼ = |xᵢⱼ − median(xᵢ)|, then the one-way ANOVA F of the z's is W, with
//! p = P(F_{k−1, N−k} > W).

use super::anova::oneway_unchecked;
use super::check_groups;
use super::describe::median;
use super::{Result, StatsError};
use crate::value::{num, Row};

/// Result of Levene's test.
#[derive(Debug, Clone, PartialEq)]
pub struct Levene {
    /// W statistic.
    pub w: f64,
    /// p-value.
    pub p: f64,
}

impl Levene {
    /// The result as a row with the keys `W, p`.
    pub fn to_row(&self) -> Row {
        let mut r = Row::new();
        r.insert("W".into(), num(self.w));
        r.insert("p".into(), num(self.p));
        r
    }
}

/// Brown–Forsythe (median-centred Levene) test over `groups` (at least two, each with at least
/// two values).
pub fn levene(groups: &[Vec<f64>]) -> Result<Levene> {
    const FN: &str = "levene";
    check_groups(FN, groups, 2)?;
    let z: Vec<Vec<f64>> = groups
        .iter()
        .map(|g| {
            let m = median(g);
            g.iter().map(|x| (x - m).abs()).collect()
        })
        .collect();
    let r = oneway_unchecked(FN, &z).map_err(|e| match e {
        StatsError::Degenerate { func, .. } => StatsError::Degenerate {
            func,
            reason: "the absolute deviations from the group medians have zero variance in \
                     every group, so W is undefined"
                .into(),
        },
        other => other,
    })?;
    Ok(Levene { w: r.f, p: r.p })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_research_note_vector() {
        // Research note A5 (scipy.stats.levene, center="median", on the A4 unequal data):
        // W = 0.416754, p = 0.668367.
        let g = vec![
            vec![24.5, 23.5, 26.4, 27.1, 29.9],
            vec![28.4, 34.2, 29.5, 32.2, 30.1, 31.0],
            vec![26.1, 28.3, 24.3, 26.2],
        ];
        let r = levene(&g).unwrap();
        assert!((r.w - 0.416754).abs() < 1e-6, "{}", r.w);
        assert!((r.p - 0.668367).abs() < 1e-6, "{}", r.p);
    }
}
