//! Tests of the statistics bindings (src/api/stats.rs): doc examples and error messages.

fn eval(code: &str) -> Result<rhai::Dynamic, String> {
    let mut host = crate::api::host().capture_output().build();
    host.eval(code).map_err(|e| e.to_string())
}

fn field(m: &rhai::Dynamic, k: &str) -> rhai::Dynamic {
    m.clone().cast::<rhai::Map>()[k].clone()
}

#[test]
fn tost_binding() {
    // Paired d = (0.1, 0.2, 0.3): diff 0.2; margin 0.5 is the interval (−0.5, 0.5).
    let m = eval("tost([1.1, 1.2, 1.3], [1, 1, 1], #{ margin: 0.5, paired: true })").unwrap();
    assert!((field(&m, "diff").as_float().unwrap() - 0.2).abs() < 1e-12);
    assert!(field(&m, "equivalent").as_bool().unwrap());
    assert_eq!(field(&m, "method").into_string().unwrap(), "paired");
    let a =
        eval("tost([1.1, 1.2, 1.3], [1, 1, 1], #{ low: -0.5, upp: 0.5, paired: true })").unwrap();
    assert_eq!(
        field(&a, "p").as_float().unwrap(),
        field(&m, "p").as_float().unwrap()
    );
    let m =
        eval("tost([1.1, 1.2, 1.3], [1, 1.1, 1], #{ margin: 0.5, usevar: \"unequal\" })").unwrap();
    assert_eq!(field(&m, "method").into_string().unwrap(), "unequal");
    let doc = "let dora = [0.812, 0.807, 0.815];\nlet lora = [0.810, 0.809, 0.811];\nlet e = tost(dora, lora, #{ margin: 0.01, usevar: \"unequal\" }); e";
    let m = eval(doc).unwrap();
    // statsmodels ttost_ind(dora, lora, -0.01, 0.01, usevar="unequal")[0] = 0.0290201022654557
    assert!(field(&m, "equivalent").as_bool().unwrap());
    assert!((field(&m, "p").as_float().unwrap() - 0.029020102265455695).abs() < 1e-8);
    for (code, want) in [
        (
            "tost([1, 2], [1, 2], #{})",
            "tost: needs the equivalence interval",
        ),
        (
            "tost([1, 2], [1, 2], #{ margin: 1, low: 0 })",
            "either margin or both",
        ),
        (
            "tost([1, 2], [1, 2], #{ margin: -1 })",
            "margin must be a positive number (got -1)",
        ),
        (
            "tost([1, 2], [1, 2], #{ margin: 1, usevar: \"x\" })",
            "usevar = \"x\"",
        ),
        (
            "tost([1, 2], [1, 2], #{ margin: 1, usevar: \"unequal\", paired: true })",
            "independent samples only",
        ),
        ("tost([1, 2], [1, 2], #{ low: 1, upp: 0 })", "low < upp"),
        ("tost([1], [1, 2], #{ margin: 1 })", "'x1' has 1 value"),
        (
            "tost([1, 2], [1, 2], #{ margin: 1, paired: true })",
            "zero variance",
        ),
        (
            "tost([1, \"a\"], [1, 2], #{ margin: 1 })",
            "x1 must be numbers",
        ),
        ("tost([1, 2], [1, 2], #{ margin: 1, typo: 1 })", "typo"),
    ] {
        let e = eval(code).unwrap_err();
        assert!(e.contains(want), "{code}: {e}");
    }
}

#[test]
fn usability_errors() {
    let e = eval("tost([1, 2, 3], [2, 3, 4])").unwrap_err();
    assert!(
        e.contains("tost: the equivalence margin is required") && e.contains("#{ margin: m }"),
        "{e}"
    );
    assert!(!e.contains("Function not found"), "{e}");
    let e = eval("permutation_test([1, 2, 3], [2, 3, 5], #{ n: 1000000000000 })").unwrap_err();
    assert!(
        e.contains("permutation_test") && e.contains("n = 1000000000000"),
        "{e}"
    );
    let e = eval("ttest_power(#{ nobs1: 1.2, power: 0.5 })").unwrap_err();
    assert!(e.contains("ttest_power") && !e.contains("e2"), "{e}");
    let e = eval("effect_sizes(table([]), \"f1\", \"m\")").unwrap_err();
    assert!(e.contains("the table is empty"), "{e}");
    let e = eval("mcnemar([], [])").unwrap_err();
    assert!(e.contains("no items"), "{e}");
    // The strong effect of the trial: power 1 and point estimates, no internal names.
    let data = "let rows = []; for s in 0..5 { let e = [0.0, 0.0002, -0.0002, 0.0001, -0.0001][s]; rows.push(#{ m: \"a\", f1: 0.5 + e }); rows.push(#{ m: \"b\", f1: 0.6 + e }); } let t = table(rows);";
    let p = eval(&format!("{data} anova_power(t, \"f1\", \"m\")")).unwrap();
    assert_eq!(num(&p, "power"), 1.0);
    assert_eq!(field(&p, "n_per_group_needed").as_int().unwrap(), 2);
    let es = eval(&format!("{data} effect_sizes(t, \"f1\", \"m\")")).unwrap();
    assert!(num(&es, "eta_sq") > 0.99999);
    assert!(field(&es, "eta_sq_lower").is_unit());
    assert!(field(&es, "note")
        .into_string()
        .unwrap()
        .contains("not computed"));
}

#[test]
fn permutation_test_binding() {
    // The doc example: d = b − a = (.05, .03, −.01, .06, .04, .06, .05, .02), sum .30. Of
    // the 256 sign patterns only the observed one and the one flipping −.01 to +.01 (sum
    // .32) reach mean ≥ .0375, so p_greater = 2/256 and the two-sided p = 4/256.
    let code = "let a = [0.61, 0.72, 0.55, 0.80, 0.67, 0.59, 0.74, 0.70];\nlet b = [0.66, 0.75, 0.54, 0.86, 0.71, 0.65, 0.79, 0.72];\npermutation_test(a, b, #{ seed: 1 })";
    let m = eval(code).unwrap();
    assert!(field(&m, "exact").as_bool().unwrap());
    assert_eq!(field(&m, "n_resamples").as_int().unwrap(), 256);
    assert!((field(&m, "diff").as_float().unwrap() - 0.3 / 8.0).abs() < 1e-12);
    assert_eq!(field(&m, "p").as_float().unwrap(), 4.0 / 256.0);
    let g = eval("permutation_test([0, 0, 0], [1, 2, 3], #{ alternative: \"greater\" })").unwrap();
    assert_eq!(field(&g, "p").as_float().unwrap(), 0.125);
    let r1 = eval("permutation_test([0, 0, 0], [1, 2, 3], #{ n: 5, seed: 3 })").unwrap();
    let r2 = eval("permutation_test([0, 0, 0], [1, 2, 3], #{ n: 5, seed: 3 })").unwrap();
    assert!(!field(&r1, "exact").as_bool().unwrap());
    assert_eq!(
        field(&r1, "p").as_float().unwrap(),
        field(&r2, "p").as_float().unwrap()
    );
    for (code, want) in [
        ("permutation_test([1, 2], [1, 2])", "all 2 pairs are tied"),
        ("permutation_test([1, 2], [1])", "1 items (a_items has 2)"),
        (
            "permutation_test([1, 2], [1, 3], #{ n: 0 })",
            "invalid argument n = 0",
        ),
        (
            "permutation_test([1, 2], [1, 3], #{ alternative: \"both\" })",
            "alternative = \"both\"",
        ),
        (
            "permutation_test([1, 2], [1, 3], #{ resamples: 10 })",
            "resamples",
        ),
        ("permutation_test([1], [2])", "'items' has 1 value"),
    ] {
        let e = eval(code).unwrap_err();
        assert!(e.contains(want), "{code}: {e}");
    }
}

fn num(m: &rhai::Dynamic, k: &str) -> f64 {
    field(m, k).as_float().unwrap()
}

#[test]
fn power_bindings() {
    // statsmodels FTestAnovaPower().solve_power(0.25, None, 0.05, 0.8, k_groups=4)
    // = 178.39709722701812 (the doc example); power(0.25, 60, 0.05, 3) = 0.37443107625635486.
    let m = eval("anova_power(#{ effect_size: 0.25, power: 0.8, k_groups: 4 })").unwrap();
    assert!((num(&m, "nobs") - 178.39709722701812).abs() < 1e-6 * 178.4);
    assert_eq!(field(&m, "nobs_ceil").as_int().unwrap(), 179);
    assert_eq!(field(&m, "n_per_group").as_int().unwrap(), 45);
    assert_eq!(field(&m, "solved").into_string().unwrap(), "nobs");
    assert_eq!(field(&m, "df_num").as_int().unwrap(), 3);
    let m = eval("anova_power(#{ effect_size: 0.25, nobs: 60, k_groups: 3, power: () })").unwrap();
    assert!((num(&m, "power") - 0.37443107625635486).abs() < 1e-9);
    assert!((num(&m, "noncentrality") - 3.75).abs() < 1e-12);
    // TTestIndPower().solve_power(0.5, None, 0.05, 0.8) = 63.76561058891169;
    // power(0.5, 20, 0.05, alternative="larger") = 0.46337434929640864.
    let m = eval("ttest_power(#{ effect_size: 0.5, power: 0.8 })").unwrap();
    assert!((num(&m, "nobs1") - 63.76561058891169).abs() < 1e-6 * 63.8);
    assert_eq!(field(&m, "nobs1_ceil").as_int().unwrap(), 64);
    let m = eval("ttest_power(#{ effect_size: 0.5, nobs1: 20, alternative: \"larger\" })").unwrap();
    assert!((num(&m, "power") - 0.46337434929640864).abs() < 1e-9);
    assert_eq!(num(&m, "df"), 38.0);
    let m = eval("ttest_power(#{ nobs1: 20, power: 0.5, alternative: \"smaller\" })").unwrap();
    assert!(num(&m, "effect_size") < 0.0);
    assert_eq!(field(&m, "solved").into_string().unwrap(), "effect_size");
    // Observed power from a table: η² = 0.4 (means 0, 1, 2, deviations ±1, n = 2).
    let code = "let t = table([#{ g: \"a\", y: -1 }, #{ g: \"a\", y: 1 }, #{ g: \"b\", y: 0 },
        #{ g: \"b\", y: 2 }, #{ g: \"c\", y: 1 }, #{ g: \"c\", y: 3 }]);";
    let m = eval(&format!("{code} anova_power(t, \"y\", \"g\")")).unwrap();
    assert!((num(&m, "eta_sq") - 0.4).abs() < 1e-15);
    assert_eq!(field(&m, "solved").into_string().unwrap(), "observed");
    assert_eq!(num(&m, "target_power"), 0.8);
    let per = field(&m, "n_per_group_needed").as_int().unwrap() as f64;
    assert_eq!(per, (num(&m, "nobs_needed") / 3.0).ceil());
    let m2 = eval(&format!(
        "{code} anova_power(t, \"y\", \"g\", #{{ power: 0.9 }})"
    ))
    .unwrap();
    assert!(num(&m2, "nobs_needed") > num(&m, "nobs_needed"));
    let m = eval(&format!(
        "{code} effect_sizes(t, \"y\", \"g\", #{{ level: 0.9 }})"
    ))
    .unwrap();
    assert!((num(&m, "eta_sq") - 0.4).abs() < 1e-15);
    assert_eq!(num(&m, "level"), 0.9);
    let pairs = field(&m, "pairs").cast::<rhai::Array>();
    assert_eq!(pairs.len(), 3);
    let p0 = &pairs[0];
    assert_eq!(field(p0, "a").into_string().unwrap(), "a");
    assert_eq!(field(p0, "b").into_string().unwrap(), "b");
    // diff 1, s_p = √2, J(2) = 1/√π.
    let g = num(p0, "g");
    assert!((g - 1.0 / 2f64.sqrt() / std::f64::consts::PI.sqrt()).abs() < 1e-15);
    assert!(num(p0, "lower") < g && g < num(p0, "upper"));
    for (code, want) in [
        ("anova_power(#{ effect_size: 0.25, k_groups: 3 })", "exactly one of"),
        ("anova_power(#{ effect_size: 0.25, nobs: 3, k_groups: 3 })", "nobs = 3 (k_groups = 3)"),
        ("anova_power(#{ effect_size: 0.25, nobs: 30, k_groups: 1 })", "k_groups = 1"),
        ("anova_power(#{ effect_size: 0, power: 0.8 })", "effect of 0"),
        ("anova_power(#{ effect_size: 0.2, power: 0.01 })", "power = 0.01"),
        ("anova_power(#{ effect_size: 0.2, nobs: 30, alpha: 0 })", "alpha = 0"),
        ("anova_power(#{ effect_size: 0.2, nobs: 30, alpah: 0.1 })", "alpah"),
        ("ttest_power(#{ effect_size: 0.2, power: 0.8, alternative: \"greater\" })", "alternative = \"greater\""),
        ("ttest_power(#{ effect_size: -0.2, power: 0.8, alternative: \"larger\" })", "positive for \"larger\""),
        ("ttest_power(#{ effect_size: 0.2, nobs1: 10, ratio: 0 })", "ratio = 0"),
        ("effect_sizes(table([#{ g: \"a\", y: 1 }, #{ g: \"a\", y: 1 }, #{ g: \"b\", y: 2 }, #{ g: \"b\", y: 2 }]), \"y\", \"g\")", "zero variance"),
        ("effect_sizes(table([#{ g: \"a\", y: 1 }, #{ g: \"a\", y: 2 }]), \"y\", \"g\")", "at least two groups"),
        ("effect_sizes(table([#{ g: \"a\", y: 1 }, #{ g: \"a\", y: 2 }, #{ g: \"b\", y: 2 }]), \"y\", \"g\")", "'b' has 1 value"),
    ] {
        let e = eval(code).unwrap_err();
        assert!(e.contains(want), "{code}: {e}");
    }
}

#[test]
fn mcnemar_binding() {
    // The doc example: n01 = 4 (items 1, 4, 7, 8), n10 = 1 (item 6); exact p = 2·6/32.
    let m =
        eval("let a = [1, 1, 0, 1, 1, 0, 1, 1];\nlet b = [0, 1, 0, 0, 1, 1, 0, 0];\nmcnemar(a, b)")
            .unwrap();
    assert_eq!(field(&m, "n01").as_int().unwrap(), 4);
    assert_eq!(field(&m, "n10").as_int().unwrap(), 1);
    assert!((field(&m, "p").as_float().unwrap() - 0.375).abs() < 1e-15);
    assert_eq!(field(&m, "method").into_string().unwrap(), "exact");
    // Booleans and the table form agree; [[30, 12], [4, 20]] corrected: (8 − 1)²/16.
    let m = eval("mcnemar([true, false], [false, false], #{ exact: false, correction: false })")
        .unwrap();
    assert_eq!(field(&m, "statistic").as_float().unwrap(), 1.0);
    let m = eval("mcnemar([[30, 12], [4, 20]], #{ exact: false })").unwrap();
    assert_eq!(field(&m, "statistic").as_float().unwrap(), 49.0 / 16.0);
    assert_eq!(field(&m, "method").into_string().unwrap(), "chi2_corrected");
    let m = eval("mcnemar([[30, 12], [4, 20]])").unwrap();
    assert_eq!(field(&m, "statistic").as_float().unwrap(), 4.0);
    for (code, want) in [
        ("mcnemar([[1, 0], [0, 1]])", "no discordant pairs"),
        ("mcnemar([[1, 2]])", "must be 2 × 2"),
        ("mcnemar([[1, 2], [3]])", "row 1 has 1 cells"),
        (
            "mcnemar([[1, -2], [3, 4]])",
            "table[0][1] = -2 is not a count",
        ),
        ("mcnemar([[1, 2.5], [3, 4]])", "table[0][1] = 2.5"),
        ("mcnemar([1, 0], [1])", "1 items (a has 2)"),
        ("mcnemar([1, 2], [1, 0])", "a[1] = 2 is not an outcome"),
        ("mcnemar([[1, 2], [3, 4]], #{ exakt: true })", "exakt"),
    ] {
        let e = eval(code).unwrap_err();
        assert!(e.contains(want), "{code}: {e}");
    }
}

#[test]
fn mixed_lm_binding() {
    // Three groups with identical within-group patterns: the group variance is on the boundary
    // (0), so β̂ are the OLS estimates: mean(a) = 1.5, mean(b) − mean(a) = 1.5; residual
    // variance RSS/(n − p) = 3/10 (hand-computed; see src/stats/mixed_tests.rs).
    let code = r#"
let rows = [];
for g in 0..3 {
    for y in [[1.0, "a"], [3.5, "b"], [2.0, "a"], [2.5, "b"]] {
        rows.push(#{ y: y[0], v: y[1], g: g });
    }
}
let m = mixed_lm(table(rows), "y ~ v + (1 | g)", #{ reference: #{ v: "a" } });
[m.fixed.rows()[0].estimate, m.fixed.rows()[1].term, m.fixed.rows()[1].estimate, m.scale,
 m.variance.g, m.random.rows()[1].group, m.method, m.n, m.warnings.len(), m.converged]
"#;
    let v = eval(code).unwrap().cast::<rhai::Array>();
    let f = |i: usize| v[i].as_float().unwrap();
    assert!((f(0) - 1.5).abs() < 1e-12, "{v:?}");
    assert_eq!(v[1].clone().into_string().unwrap(), "v[T.b]");
    assert!((f(2) - 1.5).abs() < 1e-12, "{v:?}");
    assert!((f(3) - 0.3).abs() < 1e-12, "{v:?}");
    assert_eq!(f(4), 0.0);
    assert_eq!(v[5].clone().into_string().unwrap(), "residual");
    assert_eq!(v[6].clone().into_string().unwrap(), "REML");
    assert_eq!(v[7].as_int().unwrap(), 12);
    assert_eq!(v[8].as_int().unwrap(), 1);
    assert!(v[9].as_bool().unwrap());
    let t = "let t = table([#{ y: 1.0, v: \"a\", g: 1 }, #{ y: 2.0, v: \"b\", g: 2 }, #{ y: 1.5, v: \"a\", g: 2 }, #{ y: 2.2, v: \"b\", g: 1 }]);";
    for (call, want) in [
        (
            "mixed_lm(t, \"y ~ v + (1 | g)\", #{ rml: false })",
            "unknown option 'rml'",
        ),
        (
            "mixed_lm(t, \"y ~ v + (1 | g)\", #{ max_iter: 0 })",
            "max_iter must be at least 1",
        ),
        (
            "mixed_lm(t, \"y ~ v + (1 | g)\", #{ reference: #{ v: \"c\" } })",
            "reference level \"c\" is not a level of 'v'",
        ),
        ("mixed_lm(t, \"y ~ v + (1 | h)\")", "unknown column 'h'"),
        (
            "mixed_lm(t, \"y ~ v + (x | g)\")",
            "column 10: expected '1 | group'",
        ),
    ] {
        let e = eval(&format!("{t} {call}")).unwrap_err();
        assert!(e.contains(want), "{call}: {e}");
        assert!(e.contains("mixed_lm"), "{call}: {e}");
    }
}
