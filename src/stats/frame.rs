//! Table-level forms of the tests, as the Rhai contract calls them:
//! `anova(t, value, factor)`, `anova(t, value, [a, b])`, `welch_anova`, `levene`, `kruskal`,
//! `tukey_hsd(t, value, factor, alpha)`, `ranking(t, value, factor)`,
//! `effect_sizes(t, value, factor, level)` and the observed-power form of `anova_power`. Each reads the numeric
//! column `value` grouped by the labels of `factor` (groups in order of first appearance),
//! checks the groups by name (at least two groups, at least two values each) and calls the
//! slice form.

use super::{check_named_groups, Result};
use super::{
    kruskal as kw, levene as lv, oneway_anova, ranking as rk, tukey, twoway_anova, welch, Kruskal,
    Levene, OneWay, Ranking, TwoWay, WelchAnova,
};
use crate::table::Table;

fn grouped(
    func: &'static str,
    t: &Table,
    value: &str,
    factor: &str,
) -> Result<Vec<(String, Vec<f64>)>> {
    let g = t.groups_for(func, value, factor)?;
    check_named_groups(func, &g, 2)?;
    Ok(g)
}

fn values(g: &[(String, Vec<f64>)]) -> Vec<Vec<f64>> {
    g.iter().map(|x| x.1.clone()).collect()
}

/// One-way ANOVA of `value` by `factor`.
pub fn anova(t: &Table, value: &str, factor: &str) -> Result<OneWay> {
    oneway_anova(&values(&grouped("anova", t, value, factor)?))
}

/// Two-way ANOVA (type II, with interaction) of `value` by `factor_a` and `factor_b`.
pub fn anova2(t: &Table, value: &str, factor_a: &str, factor_b: &str) -> Result<TwoWay> {
    let y = t.numeric_column_for("anova", value)?;
    let a = t.key_column("anova", factor_a)?;
    let b = t.key_column("anova", factor_b)?;
    twoway_anova(&a, &b, &y, factor_a, factor_b)
}

/// Welch's ANOVA of `value` by `factor`.
pub fn welch_anova(t: &Table, value: &str, factor: &str) -> Result<WelchAnova> {
    welch::welch_anova(&values(&grouped("welch_anova", t, value, factor)?))
}

/// Brown–Forsythe (median-centred Levene) test of `value` by `factor`.
pub fn levene(t: &Table, value: &str, factor: &str) -> Result<Levene> {
    lv::levene(&values(&grouped("levene", t, value, factor)?))
}

/// Kruskal–Wallis test of `value` by `factor`.
pub fn kruskal(t: &Table, value: &str, factor: &str) -> Result<Kruskal> {
    kw::kruskal(&values(&grouped("kruskal", t, value, factor)?))
}

/// Tukey HSD of `value` by `factor` at level `alpha`.
pub fn tukey_hsd(t: &Table, value: &str, factor: &str, alpha: f64) -> Result<tukey::TukeyHsd> {
    tukey::tukey_hsd(&grouped("tukey_hsd", t, value, factor)?, alpha)
}

/// Ranking (hierarchy string and letters) of `value` by `factor` from Tukey HSD at `alpha`.
pub fn ranking(t: &Table, value: &str, factor: &str, alpha: f64) -> Result<Ranking> {
    let hsd = tukey::tukey_hsd(&grouped("ranking", t, value, factor)?, alpha)?;
    Ok(rk::ranking(&hsd))
}

/// Effect sizes (η², ω², Cohen's f, pairwise Hedges' g, with intervals at `level`) of `value`
/// by `factor`.
pub fn effect_sizes(
    t: &Table,
    value: &str,
    factor: &str,
    level: f64,
) -> Result<super::effect_sizes::EffectSizes> {
    super::effect_sizes::effect_sizes(&grouped("effect_sizes", t, value, factor)?, level)
}

/// Observed power of the one-way ANOVA of `value` by `factor` at `alpha`, and the sample size
/// for power `target` at the observed effect.
pub fn anova_power(
    t: &Table,
    value: &str,
    factor: &str,
    alpha: f64,
    target: f64,
) -> Result<super::power::ObservedPower> {
    super::power::observed_anova_power(
        &values(&grouped("anova_power", t, value, factor)?),
        alpha,
        target,
    )
}
