//! Bindings of the statistics of docs/API.md: ANOVA family, Tukey HSD, ranking, studentized
//! range, bootstrap, p-value adjustment, correlation, equivalence (TOST), McNemar, the
//! paired permutation test, power analysis, effect sizes and linear mixed models.

use rhai::{Array, Dynamic, Engine, Map, FLOAT, INT};
use serde::Deserialize;

use super::args::{count, floats};
use super::table::{as_table, T};
use crate::host::convert::row_to_map;
use crate::host::{bind, fail, parse_opts, Handle, ResultExt, RhaiResult, Session};
use crate::stats;

#[path = "stats_models.rs"]
mod models;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct AlphaOpts {
    alpha: f64,
}

impl Default for AlphaOpts {
    fn default() -> Self {
        AlphaOpts { alpha: 0.05 }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct BootOpts {
    n: usize,
    seed: u64,
}

impl Default for BootOpts {
    fn default() -> Self {
        BootOpts { n: 10_000, seed: 0 }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct TostOpts {
    low: Option<f64>,
    upp: Option<f64>,
    margin: Option<f64>,
    paired: bool,
    usevar: String,
    alpha: f64,
}

impl Default for TostOpts {
    fn default() -> Self {
        TostOpts {
            low: None,
            upp: None,
            margin: None,
            paired: false,
            usevar: "pooled".into(),
            alpha: 0.05,
        }
    }
}

/// The equivalence interval of `tost`: `margin` m gives (−m, m); otherwise both `low` and `upp`.
fn tost_bounds(o: &TostOpts) -> RhaiResult<(f64, f64)> {
    match (o.margin, o.low, o.upp) {
        (Some(m), None, None) => {
            if m > 0.0 && m.is_finite() {
                Ok((-m, m))
            } else {
                Err(fail(format!(
                    "tost: margin must be a positive number (got {m})"
                )))
            }
        }
        (None, Some(l), Some(u)) => Ok((l, u)),
        (Some(_), _, _) => Err(fail(
            "tost: give either margin or both low and upp, not both".to_string(),
        )),
        _ => Err(fail(
            "tost: needs the equivalence interval: #{ margin: m } or #{ low: l, upp: u }"
                .to_string(),
        )),
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct McNemarOpts {
    exact: bool,
    correction: bool,
}

impl Default for McNemarOpts {
    fn default() -> Self {
        McNemarOpts {
            exact: true,
            correction: true,
        }
    }
}

/// A 2 × 2 table of non-negative integer counts (integral floats accepted).
fn count_table(t: &Array) -> RhaiResult<[[u64; 2]; 2]> {
    let bad = || {
        fail(format!(
            "mcnemar: table must be 2 × 2, [[n00, n01], [n10, n11]] (got {} rows)",
            t.len()
        ))
    };
    if t.len() != 2 {
        return Err(bad());
    }
    let mut out = [[0u64; 2]; 2];
    for (i, row) in t.iter().enumerate() {
        let row = row.read_lock::<Array>().ok_or_else(bad)?;
        if row.len() != 2 {
            return Err(fail(format!(
                "mcnemar: table row {i} has {} cells, needs 2",
                row.len()
            )));
        }
        for (j, v) in row.iter().enumerate() {
            let x = number("mcnemar", "table cells", v)?;
            if !(x >= 0.0 && x.fract() == 0.0 && x < 9.0e15) {
                return Err(fail(format!(
                    "mcnemar: table[{i}][{j}] = {x} is not a count (a non-negative integer)"
                )));
            }
            out[i][j] = x as u64;
        }
    }
    Ok(out)
}

/// Per-item outcomes: `true`/`false`, 1/0 or 1.0/0.0.
fn outcomes(what: &str, a: &Array) -> RhaiResult<Vec<bool>> {
    a.iter()
        .enumerate()
        .map(|(i, v)| {
            if let Ok(b) = v.as_bool() {
                return Ok(b);
            }
            match number("mcnemar", what, v) {
                Ok(1.0) => Ok(true),
                Ok(0.0) => Ok(false),
                _ => Err(fail(format!(
                    "mcnemar: {what}[{i}] = {v} is not an outcome (true/false or 1/0)"
                ))),
            }
        })
        .collect()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct PermOpts {
    n: u64,
    seed: u64,
    alternative: String,
}

impl Default for PermOpts {
    fn default() -> Self {
        PermOpts {
            n: 9999,
            seed: 0,
            alternative: "two-sided".into(),
        }
    }
}

fn number(fn_name: &str, what: &str, v: &Dynamic) -> RhaiResult<f64> {
    v.as_float()
        .or_else(|_| v.as_int().map(|i| i as f64))
        .map_err(|t| fail(format!("{fn_name}: {what} must be a number (got a {t})")))
}

fn float_array(v: Vec<f64>) -> Array {
    v.into_iter().map(Dynamic::from_float).collect()
}

/// The introduction of this area in docs/API.md (`peftlab doc --markdown`).
pub const AREA_DOC: &str = r#"The statistics take a `Table` (or an array of maps) with one row per observation, a `value`
column and a grouping `factor` column (groups in order of first appearance), or arrays of
per-item scores. The numbers follow statsmodels, scipy and R; each function names the one it
matches."#;

/// Registers the statistics bindings.
pub fn register(engine: &mut Engine, _session: &Session) {
    bind(engine, "anova", ["t", "value", "factor"], "
        One-way ANOVA of `value` across the groups of `factor`: #{ F, p, df_between, df_within, ss_between, ss_within, eta_sq }.

        ```rhai
        let a = anova(results, \"f1\", \"method\");
        print(`F=${a.F} p=${a.p}`);
        ```", |t: Dynamic, v: &str, f: &str| -> RhaiResult<Map> {
        Ok(row_to_map(&stats::frame::anova(&as_table("anova", &t)?, v, f).ctx("anova")?.to_row()))
    });
    bind(engine, "anova", ["t", "value", "factors"], "Two-way ANOVA with interaction, type II sums of squares: rows #{ term, ss, df, F, p } for \"<a>\", \"<b>\", \"<a>:<b>\", \"residual\" (F and p are () in the residual row).\n\nExample: `print(anova(results, \"f1\", [\"method\", \"lang\"]).to_text());`", |t: Dynamic, v: &str, f: Array| -> RhaiResult<T> {
        let f = super::args::strings("anova", "factors", &f)?;
        if f.len() != 2 {
            return Err(fail(format!("anova: give one factor (a string) or two (an array of 2), got {}", f.len())));
        }
        let tw = stats::frame::anova2(&as_table("anova", &t)?, v, &f[0], &f[1]).ctx("anova")?;
        Ok(Handle::new(tw.to_table()))
    });
    bind(
        engine,
        "welch_anova",
        ["t", "value", "factor"],
        "Welch's ANOVA (unequal variances): #{ F, p, df_between, df_within }.\n\nExample: `let w = welch_anova(results, \"f1\", \"method\"); print(w.p);`",
        |t: Dynamic, v: &str, f: &str| -> RhaiResult<Map> {
            Ok(row_to_map(
                &stats::frame::welch_anova(&as_table("welch_anova", &t)?, v, f)
                    .ctx("welch_anova")?
                    .to_row(),
            ))
        },
    );
    bind(
        engine,
        "levene",
        ["t", "value", "factor"],
        "Levene's test with median centring (Brown–Forsythe): #{ W, p }.\n\nExample: `let l = levene(results, \"f1\", \"method\"); if l.p < 0.05 { print(\"unequal variances: use welch_anova\"); }`",
        |t: Dynamic, v: &str, f: &str| -> RhaiResult<Map> {
            Ok(row_to_map(
                &stats::frame::levene(&as_table("levene", &t)?, v, f)
                    .ctx("levene")?
                    .to_row(),
            ))
        },
    );
    bind(
        engine,
        "kruskal",
        ["t", "value", "factor"],
        "Kruskal–Wallis H test (tie-corrected): #{ H, p }.\n\nExample: `let k = kruskal(results, \"f1\", \"method\"); print(k.H);`",
        |t: Dynamic, v: &str, f: &str| -> RhaiResult<Map> {
            Ok(row_to_map(
                &stats::frame::kruskal(&as_table("kruskal", &t)?, v, f)
                    .ctx("kruskal")?
                    .to_row(),
            ))
        },
    );
    let tukey = |t: &Dynamic, v: &str, f: &str, o: &Map| -> RhaiResult<T> {
        let o: AlphaOpts = parse_opts("tukey_hsd", o)?;
        Ok(Handle::new(
            stats::frame::tukey_hsd(&as_table("tukey_hsd", t)?, v, f, o.alpha)
                .ctx("tukey_hsd")?
                .to_table(),
        ))
    };
    let doc_t = "Tukey HSD (Tukey–Kramer for unequal sizes): rows #{ a, b, meandiff, p_adj, lower, upper, reject } with meandiff = mean(b) − mean(a), groups in order of first appearance. Option alpha (0.05).\n\nExample: `print(tukey_hsd(results, \"f1\", \"method\", #{ alpha: 0.05 }).to_text());`";
    bind(
        engine,
        "tukey_hsd",
        ["t", "value", "factor"],
        doc_t,
        move |t: Dynamic, v: &str, f: &str| tukey(&t, v, f, &Map::new()),
    );
    bind(
        engine,
        "tukey_hsd",
        ["t", "value", "factor", "opts"],
        doc_t,
        move |t: Dynamic, v: &str, f: &str, o: Map| tukey(&t, v, f, &o),
    );
    let rank = |t: &Dynamic, v: &str, f: &str, o: &Map| -> RhaiResult<stats::ranking::Ranking> {
        let o: AlphaOpts = parse_opts("ranking", o)?;
        stats::frame::ranking(&as_table("ranking", t)?, v, f, o.alpha).ctx("ranking")
    };
    let doc_r = "The hierarchy of groups by mean from Tukey HSD decisions, e.g. \"LoRA = DoRA = AdaLoRA > PiSSA > VeRA\" (\">=\" marks a non-transitive step). Option alpha.\n\nExample: `print(ranking(results, \"f1\", \"method\"));` (e.g. `LoRA = DoRA > VeRA`)";
    bind(
        engine,
        "ranking",
        ["t", "value", "factor"],
        doc_r,
        move |t: Dynamic, v: &str, f: &str| -> RhaiResult<String> {
            Ok(rank(&t, v, f, &Map::new())?.hierarchy)
        },
    );
    bind(
        engine,
        "ranking",
        ["t", "value", "factor", "opts"],
        doc_r,
        move |t: Dynamic, v: &str, f: &str, o: Map| -> RhaiResult<String> {
            Ok(rank(&t, v, f, &o)?.hierarchy)
        },
    );
    bind(
        engine,
        "ranking_letters",
        ["t", "value", "factor"],
        "The compact letter display behind `ranking`: rows #{ group, mean, letters }.\n\nExample: `print(ranking_letters(results, \"f1\", \"method\").to_text());` (groups sharing a letter do not differ)",
        move |t: Dynamic, v: &str, f: &str| -> RhaiResult<T> {
            Ok(Handle::new(rank(&t, v, f, &Map::new())?.to_table()))
        },
    );
    bind(engine, "studentized_range_cdf", ["q", "k", "df"], "P(Q ≤ q) for the studentized range of k means with df degrees of freedom (exact double integral).\n\nExample: `studentized_range_cdf(3.5, 3, 10)` is about 0.923.", |q: Dynamic, k: INT, df: Dynamic| -> RhaiResult<FLOAT> {
        let (q, df) = (number("studentized_range_cdf", "q", &q)?, number("studentized_range_cdf", "df", &df)?);
        stats::studentized_range_cdf(q, count("studentized_range_cdf", "k", k)?, df).ctx("studentized_range_cdf")
    });
    bind(
        engine,
        "studentized_range_quantile",
        ["p", "k", "df"],
        "The q with P(Q ≤ q) = p (bracketed root finding).\n\nExample: `studentized_range_quantile(0.95, 3, 10)` is about 3.877 (the Tukey critical value).",
        |p: Dynamic, k: INT, df: Dynamic| -> RhaiResult<FLOAT> {
            let (p, df) = (
                number("studentized_range_quantile", "p", &p)?,
                number("studentized_range_quantile", "df", &df)?,
            );
            stats::studentized_range_quantile(p, count("studentized_range_quantile", "k", k)?, df)
                .ctx("studentized_range_quantile")
        },
    );
    let boot = |a: &Array, b: &Array, o: &Map| -> RhaiResult<Map> {
        let o: BootOpts = parse_opts("paired_bootstrap", o)?;
        let (a, b) = (
            floats("paired_bootstrap", "a_items", a)?,
            floats("paired_bootstrap", "b_items", b)?,
        );
        Ok(row_to_map(
            &stats::paired_bootstrap(&a, &b, o.n, o.seed)
                .ctx("paired_bootstrap")?
                .to_row(),
        ))
    };
    let doc_b = "Paired bootstrap over items: #{ diff (mean b − mean a), lower, upper (95 % percentile), p }. Options n (10000), seed.\n\nExample: `let b = paired_bootstrap(j.column(\"lora\"), j.column(\"dora\"), #{ n: 10000, seed: 1 }); print(b.diff);`";
    bind(
        engine,
        "paired_bootstrap",
        ["a_items", "b_items"],
        doc_b,
        move |a: Array, b: Array| boot(&a, &b, &Map::new()),
    );
    bind(
        engine,
        "paired_bootstrap",
        ["a_items", "b_items", "opts"],
        doc_b,
        move |a: Array, b: Array, o: Map| boot(&a, &b, &o),
    );
    models::register(engine);
    let tost_doc = "
        Two one-sided t tests (TOST) for equivalence of two means, as statsmodels `ttost_ind` / `ttost_paired`:
        #{ p, diff, se, df, t_low, p_low, t_upp, p_upp, lower, upper, equivalent, method }.

        The difference is d = mean(x1) − mean(x2) (independent samples) or the mean of x1ᵢ − x2ᵢ
        (`paired: true`, same length). H₀: d ≤ low or d ≥ upp; H₁: low < d < upp.
        t_low = (d − low)/se, p_low = P(T > t_low); t_upp = (d − upp)/se, p_upp = P(T < t_upp);
        p = max(p_low, p_upp); `equivalent` = p < alpha; [lower, upper] is the 1 − 2·alpha
        interval d ± t(1 − alpha, df)·se (equivalent exactly when it lies inside (low, upp)).
        se and df: `usevar: \"pooled\"` (default) pooled variance, df = n1 + n2 − 2;
        `usevar: \"unequal\"` Welch se = √(s1²/n1 + s2²/n2) with Welch–Satterthwaite df;
        paired: se = sd(x1 − x2)/√n, df = n − 1.
        Options: `margin` (interval (−margin, margin)) or `low` and `upp` (required: there is no
        default margin, so `tost(x1, x2)` is an error saying so); `paired` (false);
        `usevar` (\"pooled\" | \"unequal\", independent samples only); `alpha` (0.05, in (0, 0.5)).
        Errors: no margin, fewer than 2 values, non-finite values, zero standard error, data that
        overflow (an infinite standard error, e.g. values near ±1e300), low ≥ upp, alpha outside (0, 0.5).

        ```rhai
        let dora = [0.812, 0.807, 0.815];
        let lora = [0.810, 0.809, 0.811];
        let e = tost(dora, lora, #{ margin: 0.01, usevar: \"unequal\" });
        print(`equivalent within ±0.01: ${e.equivalent} (p = ${e.p})`);   // true, p = 0.029
        ```";
    bind(
        engine,
        "tost",
        ["x1", "x2"],
        tost_doc,
        |_x1: Array, _x2: Array| -> RhaiResult<Map> {
            Err(fail("tost: the equivalence margin is required (there is no default): tost(x1, x2, #{ margin: m }) for (−m, m) or tost(x1, x2, #{ low: l, upp: u })".to_string()))
        },
    );
    bind(
        engine,
        "tost",
        ["x1", "x2", "opts"],
        tost_doc,
        |x1: Array, x2: Array, o: Map| -> RhaiResult<Map> {
            let o: TostOpts = parse_opts("tost", &o)?;
            let (low, upp) = tost_bounds(&o)?;
            let (x1, x2) = (floats("tost", "x1", &x1)?, floats("tost", "x2", &x2)?);
            let r = if o.paired {
                if o.usevar != "pooled" {
                    return Err(fail(format!("tost: usevar ({:?}) applies to independent samples only, not with paired: true", o.usevar)));
                }
                stats::tost_paired(&x1, &x2, low, upp, o.alpha)
            } else {
                stats::UseVar::parse(&o.usevar)
                    .and_then(|u| stats::tost_ind(&x1, &x2, low, upp, u, o.alpha))
            };
            Ok(row_to_map(&r.ctx("tost")?.to_row()))
        },
    );
    let mcn_doc = "
        McNemar's test for paired binary outcomes, as statsmodels `mcnemar(table, exact, correction)`:
        #{ statistic, p, n01, n10, method }.

        Give a 2 × 2 table of counts [[n00, n01], [n10, n11]] (rows: system a right / wrong,
        columns: system b right / wrong), or two arrays of per-item outcomes on the same items
        (true/false or 1/0, 1 = right). Only the discordant counts matter: n01 = items only a got
        right, n10 = items only b got right.
        Exact (default): statistic = min(n01, n10), p = min(1, 2·P(X ≤ statistic)) with
        X ~ Binomial(n01 + n10, ½). With `exact: false`: statistic = (|n01 − n10| − c)²/(n01 + n10)
        and p = P(χ²₁ > statistic), c = 1 with `correction: true` (default, Edwards), else 0; as
        in statsmodels the corrected statistic is not clamped (1/(n01 + n10) when n01 = n10).
        `method` is \"exact\", \"chi2_corrected\" or \"chi2\".
        Errors: no items at all (empty arrays or an all-zero table) and no discordant items (the
        systems agree everywhere), with different messages; different lengths, values that are
        not counts or outcomes.

        ```rhai
        let a = [1, 1, 0, 1, 1, 0, 1, 1];   // per-item correctness of system a
        let b = [0, 1, 0, 0, 1, 1, 0, 0];
        let m = mcnemar(a, b);          // exact binomial: n01 = 4, n10 = 1, p = 0.375
        let c = mcnemar([[30, 12], [4, 20]], #{ exact: false, correction: true });   // statistic = 49/16
        print(`exact p = ${m.p}; chi2 = ${c.statistic}, p = ${c.p}`);
        ```";
    let mcn_table = |t: &Array, o: &Map| -> RhaiResult<Map> {
        let o: McNemarOpts = parse_opts("mcnemar", o)?;
        let t = count_table(t)?;
        Ok(row_to_map(
            &stats::mcnemar_table(t, o.exact, o.correction)
                .ctx("mcnemar")?
                .to_row(),
        ))
    };
    let mcn_items = |a: &Array, b: &Array, o: &Map| -> RhaiResult<Map> {
        let o: McNemarOpts = parse_opts("mcnemar", o)?;
        let (a, b) = (outcomes("a", a)?, outcomes("b", b)?);
        Ok(row_to_map(
            &stats::mcnemar_items(&a, &b, o.exact, o.correction)
                .ctx("mcnemar")?
                .to_row(),
        ))
    };
    bind(engine, "mcnemar", ["table"], mcn_doc, move |t: Array| {
        mcn_table(&t, &Map::new())
    });
    bind(
        engine,
        "mcnemar",
        ["table", "opts"],
        mcn_doc,
        move |t: Array, o: Map| mcn_table(&t, &o),
    );
    bind(
        engine,
        "mcnemar",
        ["a", "b"],
        mcn_doc,
        move |a: Array, b: Array| mcn_items(&a, &b, &Map::new()),
    );
    bind(
        engine,
        "mcnemar",
        ["a", "b", "opts"],
        mcn_doc,
        move |a: Array, b: Array, o: Map| mcn_items(&a, &b, &o),
    );
    let perm = |a: &Array, b: &Array, o: &Map| -> RhaiResult<Map> {
        let o: PermOpts = parse_opts("permutation_test", o)?;
        let (a, b) = (
            floats("permutation_test", "a_items", a)?,
            floats("permutation_test", "b_items", b)?,
        );
        let r = stats::Alternative::parse(&o.alternative)
            .and_then(|alt| stats::permutation_test(&a, &b, o.n, o.seed, alt));
        Ok(row_to_map(&r.ctx("permutation_test")?.to_row()))
    };
    let doc_p = "
        Paired permutation (sign-flip) test of diff = mean(b − a) over items, as scipy `permutation_test(..., permutation_type=\"samples\")`:
        #{ diff, p, n_resamples, exact }.

        `a_items`, `b_items` are per-item scores of two systems on the same items. Under H₀ each
        dᵢ = bᵢ − aᵢ is as likely to have either sign, so the null distribution is mean(±dᵢ).
        When 2ⁿ ≤ `n` all 2ⁿ sign patterns are enumerated (`exact: true`, N = 2ⁿ); otherwise N = `n`
        random patterns from a ChaCha8 stream seeded by `seed` (the same seed gives the same p on
        every machine). With γ = 100·ε·|diff| and a = 0 (exact) or 1 (random):
        p_less = (#{null ≤ diff + γ} + a)/(N + a), p_greater = (#{null ≥ diff − γ} + a)/(N + a),
        two-sided p = min(1, 2·min(p_less, p_greater)).
        Options: `n` (9999), `seed` (0), `alternative` (\"two-sided\" | \"less\": b below a | \"greater\").
        Errors: fewer than 2 items, different lengths, non-finite scores, all pairs tied, `n` outside
        1..=10⁸ (checked first: at 10⁸ the Monte Carlo standard error of p is below 5e-5, so more
        resamples cannot matter). The loop honours Ctrl-C.

        ```rhai
        let a = [0.61, 0.72, 0.55, 0.80, 0.67, 0.59, 0.74, 0.70];
        let b = [0.66, 0.75, 0.54, 0.86, 0.71, 0.65, 0.79, 0.72];
        let r = permutation_test(a, b, #{ seed: 1 });   // exact (2^8 <= 9999): diff = 0.0375, p = 4/256
        print(`diff = ${r.diff}, p = ${r.p} (exact: ${r.exact})`);
        ```";
    bind(
        engine,
        "permutation_test",
        ["a_items", "b_items"],
        doc_p,
        move |a: Array, b: Array| perm(&a, &b, &Map::new()),
    );
    bind(
        engine,
        "permutation_test",
        ["a_items", "b_items", "opts"],
        doc_p,
        move |a: Array, b: Array, o: Map| perm(&a, &b, &o),
    );
    bind(
        engine,
        "holm",
        ["p_values"],
        "Holm-adjusted p-values (R p.adjust \"holm\").\n\nExample: `holm([0.01, 0.04, 0.03])` is `[0.03, 0.06, 0.06]`.",
        |p: Array| -> RhaiResult<Array> {
            Ok(float_array(
                stats::holm(&floats("holm", "p_values", &p)?).ctx("holm")?,
            ))
        },
    );
    bind(
        engine,
        "benjamini_hochberg",
        ["p_values"],
        "Benjamini–Hochberg adjusted p-values (FDR).\n\nExample: `benjamini_hochberg([0.01, 0.04, 0.03])` is `[0.03, 0.04, 0.04]`.",
        |p: Array| -> RhaiResult<Array> {
            Ok(float_array(
                stats::benjamini_hochberg(&floats("benjamini_hochberg", "p_values", &p)?)
                    .ctx("benjamini_hochberg")?,
            ))
        },
    );
    bind(
        engine,
        "pearson",
        ["x", "y"],
        "Pearson correlation with its two-sided p-value: #{ r, p }.\n\nExample: `pearson([1, 2, 3, 4], [2, 4, 5, 9]).r` is about 0.96.",
        |x: Array, y: Array| -> RhaiResult<Map> {
            let (x, y) = (floats("pearson", "x", &x)?, floats("pearson", "y", &y)?);
            Ok(row_to_map(
                &stats::pearson(&x, &y).ctx("pearson")?.to_pearson_row(),
            ))
        },
    );
    bind(
        engine,
        "spearman",
        ["x", "y"],
        "Spearman rank correlation with its two-sided p-value: #{ rho, p }.\n\nExample: `spearman([1, 2, 3, 4], [2, 4, 5, 9]).rho` is 1 (up to rounding): the ranks agree.",
        |x: Array, y: Array| -> RhaiResult<Map> {
            let (x, y) = (floats("spearman", "x", &x)?, floats("spearman", "y", &y)?);
            Ok(row_to_map(
                &stats::spearman(&x, &y).ctx("spearman")?.to_spearman_row(),
            ))
        },
    );
}

#[cfg(test)]
#[path = "stats_tests.rs"]
mod tests;
