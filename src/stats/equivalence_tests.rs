//! Golden tests against `tests/fixtures/stats/equivalence.json` (scipy 1.17.1, statsmodels
//! 0.15.0; made by `tests/fixtures/stats/make_equivalence.py`, provenance in
//! `tests/fixtures/README.md`, section "stats").
//!
//! Tolerances (issue 24): TOST p-values within 1e-8 absolute (t statistics and df within 1e-10
//! relative, the 90 % interval within 1e-8); McNemar statistics and p-values within 1e-10;
//! exact permutation p-values within 1e-12, random ones within Monte Carlo error (4 standard
//! errors of the difference of two independent estimates from N resamples each, plus 2/N).

use super::mcnemar::mcnemar_table;
use super::permutation::{permutation_test, Alternative};
use super::tost::{tost_ind, tost_paired, UseVar};
use crate::value::Value;

fn fixture() -> Value {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/stats/equivalence.json"
    );
    let text = std::fs::read_to_string(path).expect("fixture present");
    serde_json::from_str(&text).expect("fixture is JSON")
}

fn f(v: &Value) -> f64 {
    v.as_f64().expect("number in fixture")
}

fn fs(v: &Value) -> Vec<f64> {
    v.as_array()
        .expect("array in fixture")
        .iter()
        .map(f)
        .collect()
}

fn close(what: &str, got: f64, want: f64, tol: f64) {
    assert!(
        (got - want).abs() <= tol * want.abs().max(1.0),
        "{what}: got {got}, want {want}"
    );
}

fn check_tost(name: &str, r: &super::Tost, c: &Value) {
    close(&format!("{name} p"), r.p, f(&c["p"]), 1e-8);
    close(&format!("{name} p_low"), r.p_low, f(&c["p_low"]), 1e-8);
    close(&format!("{name} p_upp"), r.p_upp, f(&c["p_upp"]), 1e-8);
    close(&format!("{name} t_low"), r.t_low, f(&c["t_low"]), 1e-10);
    close(&format!("{name} t_upp"), r.t_upp, f(&c["t_upp"]), 1e-10);
    close(&format!("{name} df"), r.df, f(&c["df"]), 1e-10);
    close(&format!("{name} lower"), r.lower, f(&c["lower"]), 1e-8);
    close(&format!("{name} upper"), r.upper, f(&c["upper"]), 1e-8);
    assert_eq!(r.equivalent, f(&c["p"]) < 0.05, "{name}");
}

#[test]
fn tost_ind_matches_statsmodels() {
    let fx = fixture();
    let cases = fx["tost_ind"].as_array().expect("cases");
    assert_eq!(cases.len(), 10);
    for c in cases {
        let usevar = UseVar::parse(c["usevar"].as_str().unwrap()).unwrap();
        let name = format!("{} {}", c["name"], c["usevar"]);
        let r = tost_ind(
            &fs(&c["x1"]),
            &fs(&c["x2"]),
            f(&c["low"]),
            f(&c["upp"]),
            usevar,
            0.05,
        )
        .unwrap();
        check_tost(&name, &r, c);
    }
}

#[test]
fn tost_paired_matches_statsmodels() {
    let fx = fixture();
    let cases = fx["tost_paired"].as_array().expect("cases");
    assert_eq!(cases.len(), 4);
    for c in cases {
        let r = tost_paired(
            &fs(&c["x1"]),
            &fs(&c["x2"]),
            f(&c["low"]),
            f(&c["upp"]),
            0.05,
        )
        .unwrap();
        check_tost(&c["name"].to_string(), &r, c);
    }
}

#[test]
fn mcnemar_matches_statsmodels() {
    let fx = fixture();
    let cases = fx["mcnemar"].as_array().expect("cases");
    assert_eq!(cases.len(), 9);
    for c in cases {
        let t = &c["table"];
        let cell = |i: usize, j: usize| t[i][j].as_u64().expect("count");
        let table = [[cell(0, 0), cell(0, 1)], [cell(1, 0), cell(1, 1)]];
        for (key, exact, corr) in [
            ("exact", true, true),
            ("chi2_corrected", false, true),
            ("chi2", false, false),
        ] {
            let r = mcnemar_table(table, exact, corr).unwrap();
            let w = &c[key];
            let name = format!("{t} {key}");
            close(
                &format!("{name} statistic"),
                r.statistic,
                f(&w["statistic"]),
                1e-10,
            );
            assert!(
                (r.p - f(&w["p"])).abs() <= 1e-10,
                "{name} p: got {}, want {}",
                r.p,
                w["p"]
            );
            assert_eq!(r.method, key);
        }
    }
}

#[test]
fn permutation_matches_scipy() {
    let fx = fixture();
    let cases = fx["permutation"].as_array().expect("cases");
    assert_eq!(cases.len(), 5);
    for c in cases {
        let name = c["name"].as_str().unwrap();
        let (a, b) = (fs(&c["a"]), fs(&c["b"]));
        let n_res = c["n_resamples"].as_u64().unwrap();
        let exact = c["exact"].as_bool().unwrap();
        for (key, alt) in [
            ("p", Alternative::TwoSided),
            ("p_less", Alternative::Less),
            ("p_greater", Alternative::Greater),
        ] {
            let r = permutation_test(&a, &b, n_res, 0, alt).unwrap();
            assert_eq!(r.exact, exact, "{name}");
            close(&format!("{name} diff"), r.diff, f(&c["diff"]), 1e-12);
            let want = f(&c[key]);
            let tol = if exact {
                1e-12
            } else {
                let n = n_res as f64;
                4.0 * (2.0 * want * (1.0 - want) / n).sqrt() + 2.0 / n
            };
            assert!(
                (r.p - want).abs() <= tol,
                "{name} {key}: got {}, scipy {want} (tolerance {tol})",
                r.p
            );
        }
    }
}
