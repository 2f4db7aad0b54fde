//! Statistical tests for comparing PEFT variants: one- and two-way ANOVA, Welch ANOVA,
//! Levene/Brown–Forsythe, Kruskal–Wallis, Tukey HSD (Tukey–Kramer) with the studentized range
//! distribution, p-value adjustment (Holm, Benjamini–Hochberg), a compact-letter ranking,
//! paired bootstrap and correlation; equivalence (TOST) and paired-item tests (McNemar, sign-flip
//! permutation); power analysis ([`power`]: `FTestAnovaPower`, `TTestIndPower`) and effect sizes
//! with confidence intervals ([`effect_sizes`]), on the noncentral t and F of [`noncentral`].
//!
//! Every test has a plain-slice form (`oneway_anova(&[Vec<f64>])`) and a table form in
//! [`frame`] (`anova(&Table, value, factor)`), and each result struct has `to_row()` with the
//! keys of the Rhai contract (`docs/API.md`, "Tables and statistics"). The numbers follow
//! scipy 1.17 / statsmodels 0.15 (`scipy.stats.f_oneway`, `levene`, `kruskal`, `tukey_hsd`,
//! `studentized_range`; `statsmodels.stats.oneway.anova_oneway`, `anova_lm(typ=2)`) and are
//! checked against fixtures produced by them (`tests/fixtures/stats/reference.json`).
//! Distributions (F, t, χ², normal) come from `statrs`; the studentized range, the noncentral
//! t and F and the exact central t/F quantiles of [`noncentral`] are our own.

pub mod adjust;
pub mod anova;
pub mod bootstrap;
pub mod correlation;
pub mod describe;
pub mod dist;
pub mod effect_sizes;
pub mod formula;
pub mod frame;
pub mod kruskal;
pub mod levene;
pub mod linalg;
pub mod mcnemar;
pub mod mixed;
#[cfg(test)]
mod mixed_tests;
pub mod noncentral;
pub mod ols;
pub mod permutation;
pub mod power;
pub mod ptukey;
pub mod quad;
pub mod ranking;
pub mod tost;
pub mod tukey;
pub mod twoway;
pub mod welch;

pub use adjust::{benjamini_hochberg, holm};
pub use anova::{oneway_anova, OneWay};
pub use bootstrap::{paired_bootstrap, Bootstrap};
pub use correlation::{pearson, spearman, Correlation};
pub use describe::{ci95_halfwidth, mean, median, quantile7, sd, variance};
pub use kruskal::{kruskal, Kruskal};
pub use levene::{levene, Levene};
pub use mcnemar::{mcnemar, mcnemar_items, mcnemar_table, McNemar};
pub use permutation::{permutation_test, Alternative, Permutation};
pub use ptukey::{studentized_range_cdf, studentized_range_quantile, studentized_range_sf};
pub use ranking::{compact_letters, ranking, Ranking};
pub use tost::{tost_ind, tost_paired, Tost, UseVar};
pub use tukey::{tukey_hsd, TukeyPair};
pub use twoway::{twoway_anova, TwoWay, TwoWayTerm};
pub use welch::{welch_anova, WelchAnova};

use crate::table::TableError;

/// Errors of the statistics functions. Messages name the function and the offending group,
/// cell or value.
#[derive(Debug, thiserror::Error)]
pub enum StatsError {
    /// A test that compares groups got fewer than two.
    #[error("{func}: needs at least two groups, got {found}")]
    TooFewGroups {
        /// Function name.
        func: &'static str,
        /// Number of groups found.
        found: usize,
    },
    /// A group is too small for the test (e.g. one value where a variance is needed).
    #[error("{func}: group '{group}' has {n} value(s), needs at least {need}")]
    GroupTooSmall {
        /// Function name.
        func: &'static str,
        /// Group name (or `#i`, counted from 1, for unnamed groups).
        group: String,
        /// Size of the group.
        n: usize,
        /// Minimum size.
        need: usize,
    },
    /// A value is NaN or infinite.
    #[error("{func}: group '{group}' has a non-finite value {value} at position {index}")]
    NonFinite {
        /// Function name.
        func: &'static str,
        /// Group (or series) name.
        group: String,
        /// Position inside the group, counted from 0.
        index: usize,
        /// The value.
        value: f64,
    },
    /// A two-way design cell with fewer than two observations.
    #[error("{func}: cell {cell} has {n} observation(s); every cell needs at least 2 (replicates) to test the interaction")]
    NoReplicate {
        /// Function name.
        func: &'static str,
        /// The cell, as `(a=x, b=y)`.
        cell: String,
        /// Observations in the cell.
        n: usize,
    },
    /// The data make the statistic undefined (e.g. zero variance in every group).
    #[error("{func}: {reason}")]
    Degenerate {
        /// Function name.
        func: &'static str,
        /// What is degenerate.
        reason: String,
    },
    /// An argument is out of its domain.
    #[error("{func}: invalid argument {name} = {value} ({expected})")]
    InvalidArgument {
        /// Function name.
        func: &'static str,
        /// Argument name.
        name: &'static str,
        /// The value as text.
        value: String,
        /// What was expected.
        expected: &'static str,
    },
    /// A model formula that does not parse or cannot be fitted as written.
    #[error("{func}: formula {formula:?}, column {column}: {message}")]
    Formula {
        /// Function name.
        func: &'static str,
        /// The formula as given.
        formula: String,
        /// Character position of the problem, counted from 1.
        column: usize,
        /// What is wrong.
        message: String,
    },
    /// A table problem (unknown or non-numeric column).
    #[error(transparent)]
    Table(#[from] TableError),
    /// A size option that would not fit in memory (checked before allocating).
    #[error(transparent)]
    Size(#[from] crate::limits::SizeError),
    /// Ctrl-C during a long computation (bootstrap resampling).
    #[error(transparent)]
    Interrupted(#[from] crate::interrupt::Interrupted),
}

/// Shorthand for results of this module.
pub type Result<T> = std::result::Result<T, StatsError>;

/// Per-item differences `b − a` of two systems scored on the same items: the same length, at
/// least two items, every score finite (the input checks of the paired tests).
pub fn paired_differences(func: &'static str, a: &[f64], b: &[f64]) -> Result<Vec<f64>> {
    if a.len() != b.len() {
        return Err(StatsError::InvalidArgument {
            func,
            name: "b_items",
            value: format!("{} items (a_items has {})", b.len(), a.len()),
            expected: "paired scores: the same number of items in both",
        });
    }
    if a.len() < 2 {
        return Err(StatsError::GroupTooSmall {
            func,
            group: "items".into(),
            n: a.len(),
            need: 2,
        });
    }
    check_finite(func, "a_items", a)?;
    check_finite(func, "b_items", b)?;
    Ok(a.iter().zip(b).map(|(x, y)| y - x).collect())
}

/// Groups named `g0`, `g1`, … (for tests of the table-free forms).
#[cfg(test)]
pub(crate) fn named_groups(g: &[&[f64]]) -> Vec<(String, Vec<f64>)> {
    g.iter()
        .enumerate()
        .map(|(i, v)| (format!("g{i}"), v.to_vec()))
        .collect()
}

/// Checks named groups: at least two groups, each with at least `min_size` finite values.
pub fn check_named_groups(
    func: &'static str,
    groups: &[(String, Vec<f64>)],
    min_size: usize,
) -> Result<()> {
    if groups.len() < 2 {
        return Err(StatsError::TooFewGroups {
            func,
            found: groups.len(),
        });
    }
    for (name, values) in groups {
        check_finite(func, name, values)?;
        if values.len() < min_size {
            return Err(StatsError::GroupTooSmall {
                func,
                group: name.clone(),
                n: values.len(),
                need: min_size,
            });
        }
    }
    Ok(())
}

/// Checks unnamed groups (named `#1`, `#2`, … in errors), as [`check_named_groups`].
pub fn check_groups(func: &'static str, groups: &[Vec<f64>], min_size: usize) -> Result<()> {
    if groups.len() < 2 {
        return Err(StatsError::TooFewGroups {
            func,
            found: groups.len(),
        });
    }
    for (i, values) in groups.iter().enumerate() {
        let name = format!("#{}", i + 1);
        check_finite(func, &name, values)?;
        if values.len() < min_size {
            return Err(StatsError::GroupTooSmall {
                func,
                group: name,
                n: values.len(),
                need: min_size,
            });
        }
    }
    Ok(())
}

/// Errors on the first NaN or infinite value of `values`, naming `group`.
pub fn check_finite(func: &'static str, group: &str, values: &[f64]) -> Result<()> {
    match values.iter().position(|v| !v.is_finite()) {
        Some(index) => Err(StatsError::NonFinite {
            func,
            group: group.to_string(),
            index,
            value: values[index],
        }),
        None => Ok(()),
    }
}

/// A JSON number for an integer count or degree of freedom.
pub(crate) fn int(x: usize) -> crate::value::Value {
    crate::value::Value::from(x as u64)
}

#[cfg(test)]
mod equivalence_tests;
#[cfg(test)]
mod power_tests;
#[cfg(test)]
mod reference_tests;
