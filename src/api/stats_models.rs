//! Bindings of the model-based statistics: linear mixed models (`mixed_lm`), power analysis
//! (`anova_power`, `ttest_power`) and effect sizes (`effect_sizes`). A child of
//! `api::stats`, whose helpers it shares.

use rhai::{Dynamic, Engine, Map};
use serde::Deserialize;

use super::super::table::as_table;
use crate::host::convert::row_to_map;
use crate::host::{bind, fail, parse_opts, Handle, ResultExt, RhaiResult};
use crate::stats;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct MixedLmOpts {
    reml: bool,
    reference: std::collections::BTreeMap<String, String>,
    level: f64,
    max_iter: usize,
}

impl Default for MixedLmOpts {
    fn default() -> Self {
        let d = stats::mixed::MixedOpts::default();
        MixedLmOpts {
            reml: d.reml,
            reference: d.reference,
            level: d.level,
            max_iter: d.max_iter,
        }
    }
}

fn mixed_lm(t: &Dynamic, formula: &str, o: &Map) -> RhaiResult<Map> {
    let o: MixedLmOpts = parse_opts("mixed_lm", o)?;
    if o.max_iter == 0 {
        return Err(fail("mixed_lm: max_iter must be at least 1, got 0"));
    }
    let opts = stats::mixed::MixedOpts {
        reml: o.reml,
        reference: o.reference,
        level: o.level,
        max_iter: o.max_iter,
    };
    let m = stats::mixed::mixed_lm(&as_table("mixed_lm", t)?, formula, &opts).ctx("mixed_lm")?;
    let mut out = row_to_map(&m.to_row());
    out.insert("fixed".into(), Dynamic::from(Handle::new(m.fixed_table())));
    out.insert(
        "random".into(),
        Dynamic::from(Handle::new(m.random_table())),
    );
    Ok(out)
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct AnovaPowerOpts {
    effect_size: Option<f64>,
    nobs: Option<f64>,
    alpha: Option<f64>,
    power: Option<f64>,
    k_groups: Option<usize>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct ObservedPowerOpts {
    alpha: f64,
    power: f64,
}

impl Default for ObservedPowerOpts {
    fn default() -> Self {
        ObservedPowerOpts {
            alpha: 0.05,
            power: 0.8,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct TTestPowerOpts {
    effect_size: Option<f64>,
    nobs1: Option<f64>,
    alpha: f64,
    power: Option<f64>,
    ratio: f64,
    alternative: String,
}

impl Default for TTestPowerOpts {
    fn default() -> Self {
        TTestPowerOpts {
            effect_size: None,
            nobs1: None,
            alpha: 0.05,
            power: None,
            ratio: 1.0,
            alternative: "two-sided".into(),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct LevelOpts {
    level: f64,
}

impl Default for LevelOpts {
    fn default() -> Self {
        LevelOpts { level: 0.95 }
    }
}

/// Registers `mixed_lm`, `anova_power`, `ttest_power` and `effect_sizes`.
pub(super) fn register(engine: &mut Engine) {
    let mixed_doc = "
        Linear mixed model with random intercepts, fitted by REML (default) or ML as statsmodels
        `MixedLM`: #{ fixed, random, variance, scale, llf, method, n, converged, iterations, level,
        warnings, formula }.

        The formula is R/lme4 style: `score ~ variant * share + (1 | seed) + (1 | language)`.
        Numeric columns are covariates (`C(x)` makes one categorical), other columns are
        treatment-coded factors as patsy codes them (levels sorted, numerically when all are
        numbers; the first, or `reference`, is the baseline; columns named `variant[T.dora]`,
        interactions `variant[T.dora]:share`); `a * b` = `a + b + a:b`, `:` an interaction, and an
        interaction needs its lower-order terms; each `(1 | g)` adds a random intercept per level
        of g (several are crossed). Model: y = Xβ + Σ Zₖuₖ + ε, uₖ ~ N(0, σ²θₖ I), ε ~ N(0, σ² I).
        θ ≥ 0 maximises the REML log-likelihood
        −½ log|V| − ½ log|XᵀV⁻¹X| − ½ f log(rᵀV⁻¹r) + c (f = n − p, V = I + Σ θₖZₖZₖᵀ, β and σ²
        profiled out; ML drops the second term and uses f = n), by Newton's method with exact
        derivatives from θ = 1. `llf` is statsmodels' `llf`.
        `fixed`: table #{ term, estimate, se, z, p, lower, upper } (se from the inverse Hessian in
        (β, θ) as statsmodels; normal z, p and `level` interval). `random`: table
        #{ group, levels, variance, sd } with a last row for the residual. `variance`: map group →
        variance. `scale`: residual variance σ². A variance estimated at 0 (boundary) is kept and
        noted in `warnings`.
        Options: `reml` (true), `reference` (map column → baseline level), `level` (0.95),
        `max_iter` (200).
        Errors: formula syntax (with the column), no random intercept, unknown or non-numeric
        columns, a grouping factor with one level, a grouping column that is also a fixed effect
        or whose levels the fixed effects determine (its variance is not identifiable), a singular
        design (names the column), an exact fit (zero residual variance), n ≤ columns.

        ```rhai
        let m = mixed_lm(results, \"f1 ~ method + (1 | seed)\", #{ reference: #{ method: \"lora\" } });
        print(m.fixed);
        print(`seed variance ${m.variance.seed}, residual ${m.scale}`);
        let m2 = mixed_lm(results, \"f1 ~ variant * share + (1 | seed) + (1 | language)\",
                          #{ reference: #{ variant: \"lora\" } });
        print(m2.fixed);                                  // variant[T.dora] … with se, z, p
        print(`seed variance ${m2.variance.seed}, language ${m2.variance.language}`);
        ```";
    bind(
        engine,
        "mixed_lm",
        ["t", "formula"],
        mixed_doc,
        |t: Dynamic, f: &str| mixed_lm(&t, f, &Map::new()),
    );
    bind(
        engine,
        "mixed_lm",
        ["t", "formula", "opts"],
        mixed_doc,
        |t: Dynamic, f: &str, o: Map| mixed_lm(&t, f, &o),
    );
    let power_doc = "
        Power of the one-way ANOVA F test, or the sample size or effect size that reaches a power, as statsmodels `FTestAnovaPower().solve_power`:
        #{ effect_size, nobs, nobs_ceil, n_per_group, alpha, power, k_groups, df_num, df_denom, noncentrality, solved }.

        Options: `effect_size` (Cohen's f = sd of the group means / within-group sd), `nobs`
        (the TOTAL sample size over all groups), `power`, `alpha` (0.05), `k_groups` (2).
        Exactly one of effect_size, nobs, power is left out (or ()) and is solved for; `solved`
        names it (\"power\", \"nobs\" or \"effect_size\"). df_num = k − 1, df_denom = nobs − k,
        noncentrality λ = f²·nobs, power = P(F(df_num, df_denom, λ) > f.isf(alpha, df_num, df_denom)).
        A solved nobs is continuous; the integers `nobs_ceil` = ⌈nobs⌉ and `n_per_group` = ⌈nobs/k⌉ (balanced design).
        A solved f is positive and not bounded by 1. Effect size 0 with the power solved gives
        power = alpha; alpha is not solved for.
        Errors: k_groups < 2, nobs ≤ k_groups, alpha outside (0, 1), a target power outside (alpha, 1),
        an effect size that is not a finite f ≥ 0 (the same message in every form), effect size 0
        when solving nobs, a target not reached (λ ≤ 1e5, nobs ≤ 1e12).
        Above λ = 1e5 (beyond the range of the noncentral F series) the power is 1 when that is
        provable to double precision: with F′ = (X/d1)/(W/d2), the miss probability P(X ≤ a·W),
        a = d1·crit/d2, is at most P(W > c) + P(X ≤ a·c) ≤ (u·e^{1−u})^{d2/2} +
        ½·exp(−(√λ − √(a·c))²/2) (u = c/d2, Chernoff bounds, X ≥ (Z + √λ)²), and when that is below
        2⁻⁵⁴ the power 1 − miss is 1.0 in f64 (e.g. two groups of 5 with λ = 8·10⁵: bound 6·10⁻²²).
        Otherwise (very few residual df) it is an error.

        The table form `anova_power(t, value, factor[, #{ alpha: 0.05, power: 0.8 }])` computes the
        observed f = √(η²/(1 − η²)) of `value` by `factor` (groups as in `anova`) and returns the
        power at it (`power`, `solved` = \"observed\") plus `eta_sq`, `target_power`, `nobs_needed`
        (total N for the target power at the observed f) and the integer `n_per_group_needed` = ⌈nobs_needed/k⌉
        (both () when all means are equal). An effect so strong that the target is reached below
        2 per group, where λ > 1e5 cannot be evaluated, gives nobs_needed = (), n_per_group_needed = 2
        (every N > k needs at least 2 per group, and 2 per group reach the target) and a `note`;
        the observed power there is 1 (statsmodels agrees). Observed power is a function of the p-value and adds
        no evidence to it (p = alpha gives power ≈ 0.5); use it to plan a replication, knowing that
        the observed f overestimates the true one in small samples.

        ```rhai
        let n = anova_power(#{ effect_size: 0.25, power: 0.8, k_groups: 4 });
        print(`total N = ${n.nobs} (${n.n_per_group} per group)`);     // 178.4, 45
        let p = anova_power(#{ effect_size: 0.25, nobs: 60, k_groups: 3 });
        print(`power = ${p.power}`);                                   // 0.3744
        let o = anova_power(results, \"f1\", \"method\");
        print(`observed power ${o.power}; ${o.n_per_group_needed} seeds per method for 80 %`);
        ```";
    bind(
        engine,
        "anova_power",
        ["opts"],
        power_doc,
        |o: Map| -> RhaiResult<Map> {
            let o: AnovaPowerOpts = parse_opts("anova_power", &o)?;
            let r = stats::power::anova_power(
                o.effect_size,
                o.nobs,
                o.alpha.unwrap_or(0.05),
                o.power,
                o.k_groups.unwrap_or(2),
            );
            Ok(row_to_map(&r.ctx("anova_power")?.to_row()))
        },
    );
    let observed = |t: &Dynamic, v: &str, f: &str, o: &Map| -> RhaiResult<Map> {
        let o: ObservedPowerOpts = parse_opts("anova_power", o)?;
        let r = stats::frame::anova_power(&as_table("anova_power", t)?, v, f, o.alpha, o.power);
        Ok(row_to_map(&r.ctx("anova_power")?.to_row()))
    };
    bind(
        engine,
        "anova_power",
        ["t", "value", "factor"],
        power_doc,
        move |t: Dynamic, v: &str, f: &str| observed(&t, v, f, &Map::new()),
    );
    bind(
        engine,
        "anova_power",
        ["t", "value", "factor", "opts"],
        power_doc,
        move |t: Dynamic, v: &str, f: &str, o: Map| observed(&t, v, f, &o),
    );
    bind(engine, "ttest_power", ["opts"], "
        Power of the two-sample t test, or the sample size or effect size that reaches a power, as statsmodels `TTestIndPower().solve_power`:
        #{ effect_size, nobs1, nobs1_ceil, nobs2, ratio, alpha, power, alternative, df, noncentrality, solved }.

        Options: `effect_size` (Cohen's d = (μ1 − μ2)/σ), `nobs1` (size of group 1), `power`,
        `alpha` (0.05), `ratio` (nobs2/nobs1, 1), `alternative` (\"two-sided\" | \"larger\" | \"smaller\").
        Exactly one of effect_size, nobs1, power is left out (or ()) and is solved for (`solved`).
        df = nobs1 + nobs2 − 2, noncentrality δ = d·√(nobs1·nobs2/(nobs1 + nobs2)); two-sided power =
        P(T′ > t.isf(alpha/2)) + P(T′ < −t.isf(alpha/2)), larger: P(T′ > t.isf(alpha)), smaller:
        P(T′ < −t.isf(alpha)), T′ noncentral t(df, δ). A solved nobs1 is continuous (the integer
        `nobs1_ceil` = ⌈nobs1⌉); a solved effect size is positive, negative for \"smaller\".
        Errors: alpha outside (0, 1), target power outside (alpha, 1), nobs1·(1 + ratio) ≤ 2,
        effect size 0 or of the wrong sign for the alternative when solving nobs1, a target not
        reached (δ² ≤ 1e5), unknown alternative.

        ```rhai
        let n = ttest_power(#{ effect_size: 0.5, power: 0.8 });
        print(`${n.nobs1_ceil} per group`);                         // nobs1 = 63.77
        let p = ttest_power(#{ effect_size: 0.5, nobs1: 20, alternative: \"larger\" });
        print(`power = ${p.power}`);
        ```", |o: Map| -> RhaiResult<Map> {
        let o: TTestPowerOpts = parse_opts("ttest_power", &o)?;
        let r = stats::power::TAlternative::parse(&o.alternative).and_then(|alt| {
            stats::power::ttest_power(o.effect_size, o.nobs1, o.alpha, o.power, o.ratio, alt)
        });
        Ok(row_to_map(&r.ctx("ttest_power")?.to_row()))
    });
    let es_doc = "
        Effect sizes of `value` by `factor` with confidence intervals:
        #{ eta_sq, eta_sq_lower, eta_sq_upper, omega_sq, omega_sq_lower, omega_sq_upper, cohens_f, cohens_f_lower, cohens_f_upper, lambda_lower, lambda_upper, level, F, df_between, df_within, n, pairs }.

        Groups as in `anova` (at least two, each with at least two values). η² = SS_b/SS_t,
        ω² = (SS_b − df_b·MS_w)/(SS_t + MS_w) (negative when F < 1, not truncated),
        Cohen's f = √(η²/(1 − η²)). Interval (Steiger 2004): λ_lo and λ_hi solve
        ncf.cdf(F; df_b, df_w, λ) = (1 + level)/2 and (1 − level)/2 (0 when not reachable);
        η² and ω² limits are λ/(λ + N) (population η² and ω² are the same parameter f²/(1 + f²)),
        f limits √(λ/N).
        `pairs`: one map per pair of groups (order of first appearance)
        #{ a, b, n_a, n_b, diff, d, j, g, lower, upper }: diff = mean(b) − mean(a), d = diff/s_p with
        the pooled sd of the two groups, Hedges' g = J·d with the exact J = Γ(ν/2)/(√(ν/2)·Γ((ν−1)/2)),
        ν = n_a + n_b − 2 (1 − 3/(4(n_a + n_b) − 9) is its usual approximation); [lower, upper] inverts the noncentral t: δ with
        nct.cdf(d/√(1/n_a + 1/n_b); ν, δ) = (1 + level)/2 and (1 − level)/2, times J·√(1/n_a + 1/n_b).
        Option `level` (0.95). Errors: zero variance in every group or in both groups of a pair,
        groups of one value, one group. When an interval's limit lies beyond the supported
        noncentrality (λ > 1e5 for the factor, |δ| > 316 for a pair: a very strong effect, e.g.
        two groups of 5 with sd 0.0002 and means 0.1 apart, F ≈ 7·10⁵) both its limits are () and a `note`
        key (on the result or the pair) says why; the point estimates are still given.

        ```rhai
        let e = effect_sizes(results, \"f1\", \"method\");
        print(`eta² = ${e.eta_sq} [${e.eta_sq_lower}, ${e.eta_sq_upper}]`);
        for p in e.pairs { print(`${p.b} − ${p.a}: g = ${p.g} [${p.lower}, ${p.upper}]`); }
        ```";
    let es = |t: &Dynamic, v: &str, f: &str, o: &Map| -> RhaiResult<Map> {
        let o: LevelOpts = parse_opts("effect_sizes", o)?;
        let r = stats::frame::effect_sizes(&as_table("effect_sizes", t)?, v, f, o.level);
        Ok(row_to_map(&r.ctx("effect_sizes")?.to_row()))
    };
    bind(
        engine,
        "effect_sizes",
        ["t", "value", "factor"],
        es_doc,
        move |t: Dynamic, v: &str, f: &str| es(&t, v, f, &Map::new()),
    );
    bind(
        engine,
        "effect_sizes",
        ["t", "value", "factor", "opts"],
        es_doc,
        move |t: Dynamic, v: &str, f: &str, o: Map| es(&t, v, f, &o),
    );
}
