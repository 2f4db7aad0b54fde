//! Unit tests of src/stats/power.rs: solving back, degenerate inputs, observed power.

use super::*;

#[test]
fn anova_power_solves_back() {
    // statsmodels FTestAnovaPower().power(0.25, 60, 0.05, k_groups=3) = 0.41918...; the
    // round trip through solve must give back the inputs.
    let r = anova_power(Some(0.25), Some(60.0), 0.05, None, 3).unwrap();
    let n = anova_power(Some(0.25), None, 0.05, Some(r.power), 3).unwrap();
    assert!((n.nobs - 60.0).abs() < 1e-8, "{}", n.nobs);
    let f = anova_power(None, Some(60.0), 0.05, Some(r.power), 3).unwrap();
    assert!((f.effect_size - 0.25).abs() < 1e-9, "{}", f.effect_size);
    assert_eq!(n.solved, Solved::Nobs);
    let row = n.to_row();
    assert_eq!(row["nobs_ceil"], Value::from(60u64));
    assert_eq!(row["n_per_group"], Value::from(20u64));
    assert_eq!(row["solved"], Value::String("nobs".into()));
    // Effect 0: power is alpha.
    let z = anova_power(Some(0.0), Some(30.0), 0.05, None, 3).unwrap();
    assert!((z.power - 0.05).abs() < 1e-14);
}

#[test]
fn degenerate_inputs() {
    let e = |r: Result<AnovaPower>| r.unwrap_err().to_string();
    assert!(e(anova_power(Some(0.2), Some(30.0), 0.05, None, 1)).contains("k_groups = 1"));
    assert!(e(anova_power(Some(0.2), Some(3.0), 0.05, None, 3)).contains("nobs = 3"));
    assert!(e(anova_power(Some(0.2), Some(30.0), 1.0, None, 3)).contains("alpha = 1"));
    assert!(e(anova_power(Some(0.0), None, 0.05, Some(0.8), 3)).contains("effect of 0"));
    assert!(e(anova_power(Some(0.2), None, 0.05, Some(0.05), 3)).contains("power = 0.05"));
    assert!(e(anova_power(Some(0.2), None, 0.05, Some(1.0), 3)).contains("power = 1"));
    let msg = e(anova_power(Some(0.2), Some(9.0), 0.05, Some(0.8), 3));
    assert!(
        msg.contains("options = given: [effect_size, nobs, power]") && msg.contains("exactly one"),
        "{msg}"
    );
    assert!(e(anova_power(None, None, 0.05, Some(0.8), 3)).contains("exactly one"));
    assert!(e(anova_power(Some(-0.2), Some(30.0), 0.05, None, 3)).contains("effect_size"));
    let e = ttest_power(Some(-0.5), None, 0.05, Some(0.8), 1.0, TAlternative::Larger)
        .unwrap_err()
        .to_string();
    assert!(e.contains("positive for \"larger\""), "{e}");
    let e = ttest_power(Some(0.5), Some(1.0), 0.05, None, 1.0, TAlternative::Larger)
        .unwrap_err()
        .to_string();
    assert!(e.contains("nobs1 = 1 (ratio = 1)"), "{e}");
    assert!(TAlternative::parse("greater").is_err());
    // Unreachable target: f = 1e-6 needs N ≈ 1e13 > 1e12 for power 0.9.
    let e = anova_power(Some(1e-6), None, 0.05, Some(0.9), 3)
        .unwrap_err()
        .to_string();
    assert!(e.contains("not reached"), "{e}");
}

#[test]
fn observed_power_of_data() {
    // Groups with means 0, 1, 2 and within-group deviations ±1 (n = 2 each): SS_between =
    // 2·(1 + 0 + 1) = 4, SS_within = 6·1 = 6, η² = 0.4, f = √(0.4/0.6).
    let g = vec![vec![-1.0, 1.0], vec![0.0, 2.0], vec![1.0, 3.0]];
    let r = observed_anova_power(&g, 0.05, 0.8).unwrap();
    assert!((r.eta_sq - 0.4).abs() < 1e-15);
    let f = (0.4f64 / 0.6).sqrt();
    assert!((r.at_observed.effect_size - f).abs() < 1e-15);
    let direct = anova_power_of(f, 6.0, 0.05, 3).unwrap();
    assert_eq!(r.at_observed.power, direct);
    let n = r.nobs_needed.unwrap();
    assert!((anova_power_of(f, n, 0.05, 3).unwrap() - 0.8).abs() < 1e-12);
    let row = r.to_row();
    assert_eq!(row["n_per_group_needed"], ceil_int(n / 3.0));
    assert_eq!(row["solved"], Value::String("observed".into()));
    let e = observed_anova_power(&[vec![1.0, 1.0], vec![2.0, 2.0]], 0.05, 0.8)
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with("anova_power:") && e.contains("zero variance"),
        "{e}"
    );
    let same = observed_anova_power(&[vec![1.0, 2.0], vec![1.0, 2.0]], 0.05, 0.8).unwrap();
    assert_eq!(same.nobs_needed, None);
    assert_eq!(same.to_row()["nobs_needed"], Value::Null);
}

#[test]
fn strong_observed_effect_has_power_one() {
    // Two methods, 5 seeds each, sd ≈ 0.0002, difference 0.1: F ≈ 6.8e5, λ = f²·10 ≈ 8e5
    // beyond the series range; statsmodels gives power 1.0.
    let a = vec![0.5, 0.5002, 0.4998, 0.5001, 0.4999];
    let b: Vec<f64> = a.iter().map(|x| x + 0.1).collect();
    let r = observed_anova_power(&[a, b], 0.05, 0.8).unwrap();
    assert!(r.at_observed.effect_size > 200.0);
    assert_eq!(r.at_observed.power, 1.0);
    assert_eq!(r.nobs_needed, None);
    assert_eq!(r.n_per_group_needed, Some(2));
    let row = r.to_row();
    assert_eq!(row["n_per_group_needed"], Value::from(2u64));
    assert!(matches!(&row["note"], Value::String(s) if s.contains("2 per group")));
    // The solve-power form: λ = 1e6 with 10 residual df is power 1 too.
    let p = anova_power(Some(100.0), Some(100.0), 0.05, None, 4).unwrap();
    assert_eq!(p.power, 1.0);
    // The bound itself: at λ = 1e5 (inside the range) the series agrees it is 1.
    assert_eq!(
        anova_power_of(1e5f64.sqrt() / 10.0, 100.0, 0.05, 4).unwrap(),
        1.0
    );
    assert!(ncf_miss_bound(2.7, 3.0, 96.0, 1e5) < MISS_ROUNDS_AWAY);
    // Not provable (0.5 residual df, critical value 2.7e4): a clear error, not a number.
    let e = anova_power_of(300.0, 2.5, 0.05, 2).unwrap_err().to_string();
    assert!(
        e.starts_with("anova_power:")
            && e.contains("cannot be evaluated")
            && e.contains("nobs = 2.5"),
        "{e}"
    );
}

#[test]
fn error_numbers_are_readable() {
    let e = ttest_power(
        None,
        Some(1.2),
        0.05,
        Some(0.5),
        1.0,
        TAlternative::TwoSided,
    )
    .unwrap_err()
    .to_string();
    assert!(!e.contains("e2"), "{e}");
    assert_eq!(fmt_num(408.24829046386304), "408.24829046386304");
    assert_eq!(fmt_num(1e-300), "1e-300");
}

#[test]
fn effect_size_domain_is_stated_the_same_way() {
    let e = |r: Result<AnovaPower>| r.unwrap_err().to_string();
    for bad in [-0.2, f64::NAN] {
        let solve = e(anova_power(Some(bad), None, 0.05, Some(0.8), 3));
        let power = e(anova_power(Some(bad), Some(30.0), 0.05, None, 3));
        assert!(solve.contains("a finite Cohen's f ≥ 0"), "{solve}");
        assert!(power.contains("a finite Cohen's f ≥ 0"), "{power}");
    }
}
