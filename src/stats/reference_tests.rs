//! Golden tests against `tests/fixtures/stats/reference.json` (scipy 1.17.1 and statsmodels
//! 0.15.0; provenance in `tests/fixtures/README.md`, section "stats").
//!
//! Tolerances (from issue 8): F/W/H and dfs within 1e-8 relative, p within 1e-8 absolute;
//! Tukey p_adj within 1e-8 and CI bounds within 1e-6; two-way table within 1e-8; studentized
//! range cdf within 1e-9 and quantiles within 1e-6.

use super::frame;
use super::ptukey::{studentized_range_cdf, studentized_range_quantile};
use crate::table::Table;
use crate::value::{Row, Value};
use serde_json::json;

fn fixture() -> Value {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/stats/reference.json"
    );
    let text = std::fs::read_to_string(path).expect("fixture present");
    serde_json::from_str(&text).expect("fixture is JSON")
}

fn f(v: &Value) -> f64 {
    v.as_f64().expect("number in fixture")
}

fn rel_close(got: f64, want: f64, tol: f64) -> bool {
    (got - want).abs() <= tol * want.abs().max(f64::MIN_POSITIVE)
}

/// The groups of a case as a long table `{method, score}` in the fixture's group order.
fn case_table(case: &Value) -> Table {
    let mut rows = Vec::new();
    for (name, vals) in case["groups"].as_object().expect("groups map") {
        for v in vals.as_array().expect("array") {
            let mut r = Row::new();
            r.insert("method".into(), json!(name));
            r.insert("score".into(), v.clone());
            rows.push(r);
        }
    }
    Table::from_rows(rows)
}

#[test]
fn oneway_welch_levene_kruskal() {
    let fx = fixture();
    let cases = fx["oneway_cases"].as_array().expect("cases");
    assert_eq!(cases.len(), 4);
    for (i, c) in cases.iter().enumerate() {
        let t = case_table(c);
        let a = frame::anova(&t, "score", "method").unwrap();
        let w = &c["anova_oneway"];
        assert!(
            rel_close(a.f, f(&w["F"]), 1e-8),
            "case {i}: F {} vs {}",
            a.f,
            w["F"]
        );
        assert!(
            (a.p - f(&w["p"])).abs() < 1e-8,
            "case {i}: p {} vs {}",
            a.p,
            w["p"]
        );
        assert_eq!(a.df_between as f64, f(&w["df_between"]));
        assert_eq!(a.df_within as f64, f(&w["df_within"]));

        let wa = frame::welch_anova(&t, "score", "method").unwrap();
        let w = &c["welch_anova"];
        assert!(
            rel_close(wa.f, f(&w["F"]), 1e-8),
            "case {i}: Welch F {} vs {}",
            wa.f,
            w["F"]
        );
        assert!(
            (wa.p - f(&w["p"])).abs() < 1e-8,
            "case {i}: Welch p {}",
            wa.p
        );
        assert_eq!(wa.df_between as f64, f(&w["df"][0]));
        assert!(
            rel_close(wa.df_within, f(&w["df"][1]), 1e-8),
            "case {i}: {}",
            wa.df_within
        );

        let l = frame::levene(&t, "score", "method").unwrap();
        let w = &c["levene_median"];
        assert!(
            rel_close(l.w, f(&w["W"]), 1e-8),
            "case {i}: W {} vs {}",
            l.w,
            w["W"]
        );
        assert!(
            (l.p - f(&w["p"])).abs() < 1e-8,
            "case {i}: Levene p {}",
            l.p
        );

        let k = frame::kruskal(&t, "score", "method").unwrap();
        let w = &c["kruskal"];
        assert!(
            rel_close(k.h, f(&w["H"]), 1e-8),
            "case {i}: H {} vs {}",
            k.h,
            w["H"]
        );
        assert!(
            (k.p - f(&w["p"])).abs() < 1e-8,
            "case {i}: Kruskal p {}",
            k.p
        );
    }
}

/// `reject` per unordered pair from statsmodels' `pairwise_tukeyhsd` summary text.
fn statsmodels_rejects(text: &str) -> Vec<(String, String, bool)> {
    text.lines()
        .filter_map(|l| {
            let parts: Vec<&str> = l.split_whitespace().collect();
            match parts.as_slice() {
                [a, b, _, _, _, _, r] if *r == "True" || *r == "False" => {
                    Some((a.to_string(), b.to_string(), *r == "True"))
                }
                _ => None,
            }
        })
        .collect()
}

#[test]
fn tukey_hsd_matches_scipy_and_statsmodels() {
    let fx = fixture();
    for (i, c) in fx["oneway_cases"]
        .as_array()
        .expect("cases")
        .iter()
        .enumerate()
    {
        let t = case_table(c);
        let hsd = frame::tukey_hsd(&t, "score", "method", 0.05).unwrap();
        let want = c["tukey_hsd_scipy"].as_array().expect("pairs");
        assert_eq!(hsd.pairs.len(), want.len());
        for (p, w) in hsd.pairs.iter().zip(want) {
            assert_eq!((json!(p.a), json!(p.b)), (w["a"].clone(), w["b"].clone()));
            assert!((p.meandiff - f(&w["meandiff_b_minus_a"])).abs() < 1e-12);
            assert!(
                (p.p_adj - f(&w["p_adj"])).abs() < 1e-8,
                "case {i} {}-{}: p_adj {} vs {}",
                p.a,
                p.b,
                p.p_adj,
                w["p_adj"]
            );
            assert!(
                (p.lower - f(&w["lower"])).abs() < 1e-6,
                "case {i}: lower {}",
                p.lower
            );
            assert!(
                (p.upper - f(&w["upper"])).abs() < 1e-6,
                "case {i}: upper {}",
                p.upper
            );
        }
        let sm = statsmodels_rejects(c["tukey_hsd_statsmodels"].as_str().expect("text"));
        assert_eq!(sm.len(), hsd.pairs.len());
        for (a, b, r) in sm {
            let p = hsd
                .pairs
                .iter()
                .find(|p| (p.a == a && p.b == b) || (p.a == b && p.b == a))
                .expect("pair present");
            assert_eq!(p.reject, r, "case {i}: reject of {a}-{b}");
        }
    }
}

#[test]
fn ranking_of_first_case() {
    // Case 0 decisions (statsmodels table): LoRA–DoRA and LoRA–VeRA not significant, every
    // other pair significant; means DoRA .6331 > LoRA .6073 > VeRA .5927 > AdaLoRA .5538 >
    // PiSSA .4946. VeRA ties with LoRA but not with DoRA → new run with ">=".
    let fx = fixture();
    let t = case_table(&fx["oneway_cases"][0]);
    let r = frame::ranking(&t, "score", "method", 0.05).unwrap();
    assert_eq!(r.hierarchy, "DoRA = LoRA >= VeRA > AdaLoRA > PiSSA");
    assert_eq!(r.letters, ["a", "ab", "b", "c", "d"]);
}

#[test]
fn two_way_type_ii_matches_statsmodels() {
    let fx = fixture();
    let tw = &fx["two_way"];
    let rows: Vec<Value> = tw["rows"].as_array().expect("rows").clone();
    let t = Table::from_values(rows).unwrap();
    let res = frame::anova2(&t, "f1", "variant", "lang").unwrap();
    let out = res.to_table();
    assert_eq!(out.columns(), ["term", "ss", "df", "F", "p"]);
    let terms: Vec<&str> = res.terms.iter().map(|x| x.term.as_str()).collect();
    assert_eq!(terms, ["variant", "lang", "variant:lang", "residual"]);
    let want = &tw["anova_typ2"];
    for (term, key) in
        res.terms
            .iter()
            .zip(["C(variant)", "C(lang)", "C(variant):C(lang)", "Residual"])
    {
        let w = &want[key];
        assert!(
            rel_close(term.ss, f(&w["sum_sq"]), 1e-8),
            "{key}: ss {}",
            term.ss
        );
        assert_eq!(term.df as f64, f(&w["df"]));
        match (term.f, term.p) {
            (Some(fv), Some(pv)) => {
                assert!(rel_close(fv, f(&w["F"]), 1e-8), "{key}: F {fv}");
                assert!((pv - f(&w["PR(>F)"])).abs() < 1e-8, "{key}: p {pv}");
            }
            _ => assert!(w["F"].is_null() && key == "Residual"),
        }
    }
    assert_eq!(out.rows()[3]["F"], Value::Null);
    assert_eq!(out.rows()[3]["p"], Value::Null);
}

#[test]
fn studentized_range_cdf_and_quantile() {
    let fx = fixture();
    let pts = fx["studentized_range"].as_array().expect("points");
    let (mut n_cdf, mut n_ppf, mut worst_cdf, mut worst_ppf) = (0, 0, 0.0f64, 0.0f64);
    for p in pts {
        let k = p["k"].as_u64().expect("k") as usize;
        let df = f(&p["df"]);
        if let Some(want) = p["cdf"].as_f64() {
            let got = studentized_range_cdf(f(&p["q"]), k, df).unwrap();
            let err = (got - want).abs();
            assert!(
                err < 1e-9,
                "cdf(q={}, k={k}, df={df}) = {got}, scipy {want}",
                p["q"]
            );
            worst_cdf = worst_cdf.max(err);
            n_cdf += 1;
        } else {
            let want = f(&p["ppf"]);
            let got = studentized_range_quantile(f(&p["p"]), k, df).unwrap();
            let err = (got - want).abs();
            assert!(
                err < 1e-6,
                "ppf(p={}, k={k}, df={df}) = {got}, scipy {want}",
                p["p"]
            );
            worst_ppf = worst_ppf.max(err);
            n_ppf += 1;
        }
    }
    assert_eq!((n_cdf, n_ppf), (280, 168));
    eprintln!("studentized range: max |cdf err| = {worst_cdf:e}, max |ppf err| = {worst_ppf:e}");
}

#[test]
fn bad_table_input() {
    let t = Table::from_values(vec![
        json!({"m": "a", "s": 1.0}),
        json!({"m": "a", "s": 2.0}),
        json!({"m": "b", "s": "high"}),
    ])
    .unwrap();
    let e = frame::anova(&t, "s", "m").unwrap_err().to_string();
    assert_eq!(e, "anova: column 's' is not numeric: row 2 has \"high\"");
    let t = Table::from_values(vec![
        json!({"m": "a", "s": 1.0}),
        json!({"m": "a", "s": 2.0}),
    ])
    .unwrap();
    let e = frame::tukey_hsd(&t, "s", "m", 0.05)
        .unwrap_err()
        .to_string();
    assert_eq!(e, "tukey_hsd: needs at least two groups, got 1");
    let t = Table::from_values(vec![
        json!({"m": "a", "s": 1.0}),
        json!({"m": "a", "s": 2.0}),
        json!({"m": "b", "s": 2.0}),
    ])
    .unwrap();
    let e = frame::levene(&t, "s", "m").unwrap_err().to_string();
    assert_eq!(e, "levene: group 'b' has 1 value(s), needs at least 2");
    let e = frame::kruskal(&t, "s", "x").unwrap_err().to_string();
    assert!(e.starts_with("kruskal: unknown column 'x'"), "{e}");
}
