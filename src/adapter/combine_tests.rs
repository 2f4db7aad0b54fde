//! [`combine`] against PEFT 0.21.2's `add_weighted_adapter` (fixtures made by
//! `tests/fixtures/adapters/multi/make_multi.py`): the sources are read from the multi-adapter
//! save directory `saved/`, the expected factors from `combined_<name>.safetensors` and the
//! expected config from `combined.json`.

use super::*;
use crate::adapter::peft_io::PREFIX;
use crate::tensor::{load_safetensors, HostTensor};
use std::path::PathBuf;

/// Relative tolerance: `max |got − want| ≤ TOL · max |want|` per tensor.
const TOL: f64 = 1e-5;

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/adapters/multi")
}

fn json(path: PathBuf) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

/// A saved adapter: its factors (scale from its config, as PEFT's `scaling`) and rsLoRA flag.
struct Saved {
    factors: Vec<(String, LoraFactors)>,
    use_rslora: bool,
}

fn saved(name: &str) -> Saved {
    let d = if name == "default" {
        dir().join("saved")
    } else {
        dir().join("saved").join(name)
    };
    let cfg = json(d.join("adapter_config.json"));
    let r = cfg["r"].as_f64().unwrap();
    let alpha = cfg["lora_alpha"].as_f64().unwrap();
    let use_rslora = cfg["use_rslora"].as_bool().unwrap();
    let scale = if use_rslora {
        alpha / r.sqrt()
    } else {
        alpha / r
    };
    let mut t = load_safetensors(&d.join("adapter_model.safetensors")).unwrap();
    let modules: Vec<String> = t
        .keys()
        .filter_map(|k| k.strip_suffix(".lora_A.weight"))
        .map(|k| k.strip_prefix(PREFIX).unwrap().to_string())
        .collect();
    assert!(!modules.is_empty(), "{name}: no lora_A tensors");
    let factors = modules
        .into_iter()
        .map(|m| {
            let a = t.remove(&format!("{PREFIX}{m}.lora_A.weight")).unwrap();
            let b = t.remove(&format!("{PREFIX}{m}.lora_B.weight")).unwrap();
            (m, LoraFactors { a, b, scale })
        })
        .collect();
    Saved {
        factors,
        use_rslora,
    }
}

/// PEFT's result for combination `name`: its `combined.json` entry and tensors.
fn expected(name: &str) -> (serde_json::Value, BTreeMap<String, HostTensor>) {
    let meta = json(dir().join("combined.json"))["combinations"][name].clone();
    assert!(meta.is_object(), "combined.json has no combination {name}");
    let t = load_safetensors(&dir().join(format!("combined_{name}.safetensors"))).unwrap();
    (meta, t)
}

/// Runs [`combine`] with the adapters and weights of PEFT's combination `meta`.
fn run(meta: &serde_json::Value, how: Combination) -> Result<Combined, AdapterError> {
    let names: Vec<&str> = meta["adapters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    let weights: Vec<f64> = meta["weights"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    let loaded: Vec<Saved> = names.iter().map(|n| saved(n)).collect();
    let sources: Vec<Source<'_>> = names
        .iter()
        .zip(&weights)
        .zip(&loaded)
        .map(|((&name, &weight), s)| Source {
            name,
            weight,
            use_rslora: s.use_rslora,
            factors: &s.factors,
        })
        .collect();
    combine(&sources, how)
}

fn assert_close(what: &str, got: &[f64], want: &[f64]) {
    assert_eq!(got.len(), want.len(), "{what}: sizes differ");
    let top = want.iter().fold(0.0f64, |m, x| m.max(x.abs()));
    let diff = got
        .iter()
        .zip(want)
        .fold(0.0f64, |m, (g, w)| m.max((g - w).abs()));
    assert!(
        diff <= TOL * top,
        "{what}: max |diff| {diff:e} > {TOL} × max |PEFT| {top:e}"
    );
}

/// The new config and module set agree with PEFT's.
fn check_config(c: &Combined, meta: &serde_json::Value) {
    assert_eq!(c.r as u64, meta["r"].as_u64().unwrap(), "r");
    assert_eq!(c.lora_alpha as u64, meta["lora_alpha"].as_u64().unwrap());
    assert_eq!(c.use_rslora, meta["use_rslora"].as_bool().unwrap());
    let targets: Vec<&str> = meta["target_modules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(c.target_modules, targets);
    let scaling = meta["scaling"].as_array().unwrap();
    assert_eq!(scaling.len(), 1);
    for (_, f) in &c.factors {
        assert_eq!(f.scale, scaling[0].as_f64().unwrap());
    }
    let mut modules: Vec<String> = c
        .factors
        .iter()
        .map(|(m, _)| format!("{PREFIX}{m}"))
        .collect();
    modules.sort();
    let want: Vec<&str> = meta["modules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(modules, want);
}

/// A and B of every module equal PEFT's (and have its shapes).
fn check_factors_exact(c: &Combined, t: &BTreeMap<String, HostTensor>) {
    for (m, f) in &c.factors {
        for (key, got) in [("lora_A", &f.a), ("lora_B", &f.b)] {
            let want = &t[&format!("{PREFIX}{m}.{key}.weight")];
            assert_eq!(got.shape, want.shape, "{m} {key} shape");
            assert_close(&format!("{m} {key}"), &got.values_f64(), &want.values_f64());
        }
    }
}

#[test]
fn linear_matches_peft() {
    let (meta, t) = expected("linear");
    let c = run(&meta, Combination::Linear).unwrap();
    check_config(&c, &meta);
    check_factors_exact(&c, &t);
}

#[test]
fn cat_matches_peft() {
    let (meta, t) = expected("cat");
    let c = run(&meta, Combination::Cat).unwrap();
    check_config(&c, &meta);
    assert_eq!(c.r, 6, "cat: rank 4 + 2");
    check_factors_exact(&c, &t);
    // v_proj is only in "default" (rank 4): rows 4, 5 of A and columns 4, 5 of B are zero.
    let (_, f) = c
        .factors
        .iter()
        .find(|(m, _)| m.ends_with("layers.0.self_attn.v_proj"))
        .unwrap();
    assert!(f.a.values_f64()[4 * 64..].iter().all(|&x| x == 0.0));
    assert!(f.a.values_f64()[..4 * 64].iter().any(|&x| x != 0.0));
}

/// Row `i` of a row-major `[rows, cols]` matrix.
fn row(v: &[f64], cols: usize, i: usize) -> Vec<f64> {
    v[i * cols..(i + 1) * cols].to_vec()
}

/// Column `j` of a row-major `[rows, cols]` matrix.
fn col(v: &[f64], cols: usize, j: usize) -> Vec<f64> {
    v.iter().skip(j).step_by(cols).copied().collect()
}

/// `scale · B A` of one module, `[out, in]`.
fn product(f: &LoraFactors) -> Vec<f64> {
    let (a, b) = (f.a.values_f64(), f.b.values_f64());
    let (r, n) = (f.a.shape[0], f.a.shape[1]);
    let out = f.b.shape[0];
    let mut p = vec![0.0; out * n];
    for i in 0..out {
        for k in 0..r {
            for j in 0..n {
                p[i * n + j] += f.scale * b[i * r + k] * a[k * n + j];
            }
        }
    }
    p
}

/// SVD factors are unique only up to a sign per component (u_c, v_c → −u_c, −v_c), and for a
/// zero singular value the row of A is any unit vector orthogonal to the others. So this
/// compares the product `B A` exactly, and A's rows and B's columns after aligning each
/// component's sign with PEFT's, for the components whose singular value (the norm of PEFT's
/// B column, as `B = U S`) is above 1e-4 of the largest; for the others B's columns must be
/// zero (like PEFT's) and A's rows orthonormal. Returns how many components were compared.
fn check_svd(c: &Combined, t: &BTreeMap<String, HostTensor>) -> usize {
    let mut compared = 0;
    for (m, f) in &c.factors {
        let want_a = &t[&format!("{PREFIX}{m}.lora_A.weight")];
        let want_b = &t[&format!("{PREFIX}{m}.lora_B.weight")];
        assert_eq!(f.a.shape, want_a.shape, "{m} lora_A shape");
        assert_eq!(f.b.shape, want_b.shape, "{m} lora_B shape");
        let peft = LoraFactors {
            a: want_a.clone(),
            b: want_b.clone(),
            scale: 1.0,
        };
        assert_close(&format!("{m} B·A"), &product(f), &product(&peft));
        let (r, n) = (f.a.shape[0], f.a.shape[1]);
        let (ga, gb) = (f.a.values_f64(), f.b.values_f64());
        let (wa, wb) = (want_a.values_f64(), want_b.values_f64());
        let top_a = wa.iter().fold(0.0f64, |m, x| m.max(x.abs()));
        let top_b = wb.iter().fold(0.0f64, |m, x| m.max(x.abs()));
        let sv: Vec<f64> = (0..r).map(|k| norm(&col(&wb, r, k))).collect();
        let smax = sv.iter().fold(0.0f64, |m, &x| m.max(x));
        for (k, &sk) in sv.iter().enumerate() {
            let (g_row, w_row) = (row(&ga, n, k), row(&wa, n, k));
            let (g_col, w_col) = (col(&gb, r, k), col(&wb, r, k));
            let diff_max = |g: &[f64], w: &[f64], s: f64| {
                g.iter()
                    .zip(w)
                    .fold(0.0f64, |m, (x, y)| m.max((s * x - y).abs()))
            };
            if sk > 1e-4 * smax {
                let s = dot(&g_row, &w_row).signum();
                let da = diff_max(&g_row, &w_row, s);
                let db = diff_max(&g_col, &w_col, s);
                assert!(da <= TOL * top_a, "{m} A row {k}: {da:e} (sign {s})");
                assert!(db <= TOL * top_b, "{m} B column {k}: {db:e} (sign {s})");
                compared += 1;
            } else {
                let db = diff_max(&g_col, &w_col, 1.0);
                assert!(db <= TOL * top_b, "{m} B column {k} (null): {db:e}");
            }
        }
        for k in 0..r {
            for l in 0..r {
                let d = dot(&row(&ga, n, k), &row(&ga, n, l));
                let want = if k == l { 1.0 } else { 0.0 };
                assert!((d - want).abs() < 1e-6, "{m}: rows {k}, {l} of A: {d}");
            }
        }
    }
    compared
}

#[test]
fn svd_matches_peft_up_to_signs() {
    let (meta, t) = expected("svd");
    let c = run(&meta, Combination::Svd(SvdOptions::default())).unwrap();
    check_config(&c, &meta);
    // q_proj (rank 4 of 6) and v_proj (default only) have 4 components each, k_proj and
    // down_proj ("other" only, rank 2) have 2 and two null ones; two layers.
    assert_eq!(check_svd(&c, &t), 2 * (4 + 4 + 2 + 2));
}

#[test]
fn svd_clamp_matches_peft_on_its_factors() {
    // "svd_clamp" is "svd" clamped (same inputs, deterministic SVD), so clamping PEFT's own
    // "svd" factors must give PEFT's clamped ones, whatever signs the SVD chose.
    let (meta, clamped) = expected("svd_clamp");
    let q = meta["kwargs"]["svd_clamp"].as_f64().unwrap();
    let (_, plain) = expected("svd");
    let mut changed = 0;
    for key in plain.keys().filter(|k| k.ends_with(".lora_A.weight")) {
        let m = key.strip_suffix(".lora_A.weight").unwrap();
        let bkey = format!("{m}.lora_B.weight");
        let mut a = plain[key].values_f64();
        let mut b = plain[&bkey].values_f64();
        svd_clamp(&mut b, &mut a, q).unwrap();
        assert_close(&format!("{m} clamped A"), &a, &clamped[key].values_f64());
        assert_close(&format!("{m} clamped B"), &b, &clamped[&bkey].values_f64());
        changed += usize::from(a != plain[key].values_f64() || b != plain[&bkey].values_f64());
    }
    assert_eq!(
        changed, 8,
        "the 0.9 quantile clamps some entry of every module"
    );
}

#[test]
fn svd_clamp_option_is_applied() {
    let (meta, _) = expected("svd");
    let plain = run(&meta, Combination::Svd(SvdOptions::default())).unwrap();
    let opts = SvdOptions {
        clamp: Some(0.9),
        ..SvdOptions::default()
    };
    let clamped = run(&meta, Combination::Svd(opts)).unwrap();
    for ((m, p), (_, c)) in plain.factors.iter().zip(&clamped.factors) {
        let (mut a, mut b) = (p.a.values_f64(), p.b.values_f64());
        svd_clamp(&mut b, &mut a, 0.9).unwrap();
        assert_close(&format!("{m} A"), &c.a.values_f64(), &a);
        assert_close(&format!("{m} B"), &c.b.values_f64(), &b);
        assert_ne!(
            c.a.values_f64(),
            p.a.values_f64(),
            "{m}: clamp changed nothing"
        );
    }
    let e = svd_clamp(&mut [1.0], &mut [2.0], 1.5)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("clamp must be a quantile") && e.contains("1.5"),
        "{e}"
    );
}

#[test]
fn svd_clamp_quantile_by_hand() {
    // Entries 1..=5 and −1: sorted −1,1,2,3,4,5; the 0.5-quantile is at 2.5 → 2.5; clamped to ±2.5.
    let mut b = vec![1.0, 5.0, -1.0];
    let mut a = vec![4.0, 2.0, 3.0];
    svd_clamp(&mut b, &mut a, 0.5).unwrap();
    assert_eq!(b, vec![1.0, 2.5, -1.0]);
    assert_eq!(a, vec![2.5, 2.0, 2.5]);
    // A negative quantile value h = −5: torch.clamp(min = 5, max = −5) gives −5 everywhere
    // (checked with torch 2.15).
    let mut b = vec![-5.0, -3.0];
    let mut a = vec![-4.0, 1.0];
    svd_clamp(&mut b, &mut a, 0.0).unwrap();
    assert_eq!((b, a), (vec![-5.0, -5.0], vec![-5.0, -5.0]));
}

#[test]
fn linear_of_unequal_ranks_fails_clearly() {
    let (mut meta, _) = expected("cat");
    meta["weights"] = serde_json::json!([1.0, -0.5]);
    let e = run(&meta, Combination::Linear)
        .err()
        .expect("ranks 4 and 2");
    assert!(matches!(e, AdapterError::Option(_)));
    let msg = e.to_string();
    for part in [
        "combine",
        "\"linear\"",
        "'default' r=4",
        "'other' r=2",
        "\"cat\"",
    ] {
        assert!(msg.contains(part), "{part} missing from: {msg}");
    }
}

#[test]
fn one_source_is_linear_with_signed_square_roots() {
    // PEFT combines a single adapter linearly whatever the type: c = −2 · 8/2 = −8,
    // A = −√8·A, B = √8·B, r = 2 (not "cat"'s or "svd"'s result).
    let other = saved("other");
    let src = [Source {
        name: "other",
        weight: -2.0,
        use_rslora: false,
        factors: &other.factors,
    }];
    for how in [Combination::Cat, Combination::Svd(SvdOptions::default())] {
        let c = combine(&src, how).unwrap();
        assert_eq!((c.r, c.lora_alpha), (2, 2));
        assert_eq!(c.target_modules, ["down_proj", "k_proj", "q_proj"]);
        for ((m, got), (_, orig)) in c.factors.iter().zip(&other.factors) {
            let root = 8f64.sqrt();
            let a: Vec<f64> = orig.a.values_f64().iter().map(|x| -root * x).collect();
            let b: Vec<f64> = orig.b.values_f64().iter().map(|x| root * x).collect();
            assert_close(&format!("{m} A"), &got.a.values_f64(), &a);
            assert_close(&format!("{m} B"), &got.b.values_f64(), &b);
            assert_eq!(got.scale, 1.0);
        }
    }
}

#[test]
fn rslora_first_source_gives_sqrt_r_scale() {
    let d = saved("default");
    let o = saved("other");
    let src = [
        Source {
            name: "default",
            weight: 1.0,
            use_rslora: true,
            factors: &d.factors,
        },
        Source {
            name: "other",
            weight: 1.0,
            use_rslora: false,
            factors: &o.factors,
        },
    ];
    let c = combine(&src, Combination::Cat).unwrap();
    assert!(c.use_rslora);
    assert_eq!(c.factors[0].1.scale, 6.0 / 6f64.sqrt());
}

#[test]
fn svd_rank_beyond_a_module() {
    let (meta, _) = expected("svd");
    // k_proj and v_proj are [32, 64]: rank 40 fails with full matrices (PEFT's SVD breaks
    // there)…
    let opts = SvdOptions {
        rank: Some(40),
        ..SvdOptions::default()
    };
    let e = run(&meta, Combination::Svd(opts))
        .err()
        .unwrap()
        .to_string();
    assert!(
        e.contains("svd rank 40") && e.contains("_proj' ([out, in] = [32, 64])"),
        "{e}"
    );
    // …and without them each module keeps min(out, in) components, B A still exact.
    let opts = SvdOptions {
        full_matrices: false,
        ..opts
    };
    let c = run(&meta, Combination::Svd(opts)).unwrap();
    assert_eq!(c.r, 40);
    let d = saved("default");
    let o = saved("other");
    for (m, f) in &c.factors {
        let want_r = if m.contains("k_proj") || m.contains("v_proj") {
            32
        } else {
            40
        };
        assert_eq!(f.a.shape[0], want_r, "{m}");
        assert_eq!(f.b.shape[1], want_r, "{m}");
        // The exact update 0.7·Δ_default − 1.3·Δ_other.
        let mut want = vec![0.0; f.b.shape[0] * f.a.shape[1]];
        for (w, s) in [(0.7, &d), (-1.3, &o)] {
            if let Some((_, g)) = s.factors.iter().find(|(n, _)| n == m) {
                want.iter_mut()
                    .zip(product(g))
                    .for_each(|(x, y)| *x += w * y);
            }
        }
        assert_close(&format!("{m} B·A"), &product(f), &want);
        let (a, n) = (f.a.values_f64(), f.a.shape[1]);
        for k in 0..want_r {
            for l in 0..want_r {
                let dkl = dot(&row(&a, n, k), &row(&a, n, l));
                let e = if k == l { 1.0 } else { 0.0 };
                assert!((dkl - e).abs() < 1e-6, "{m}: A rows {k}, {l}: {dkl}");
            }
        }
    }
}

#[test]
fn bad_inputs_are_clear_errors() {
    let d = saved("default");
    let src = |w: f64| Source {
        name: "default",
        weight: w,
        use_rslora: false,
        factors: &d.factors,
    };
    let e = combine(&[], Combination::Cat).err().unwrap().to_string();
    assert!(e.contains("no adapters"), "{e}");
    let e = combine(&[src(f64::NAN), src(1.0)], Combination::Cat)
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("'default'") && e.contains("NaN"), "{e}");
    let opts = SvdOptions {
        clamp: Some(-0.1),
        ..SvdOptions::default()
    };
    let e = combine(&[src(1.0), src(1.0)], Combination::Svd(opts))
        .err()
        .unwrap()
        .to_string();
    assert!(
        e.contains("clamp must be a quantile") && e.contains("-0.1"),
        "{e}"
    );
    // A module whose shape disagrees between adapters.
    let mut wrong = saved("same").factors;
    wrong[0].1.b = HostTensor::f32(vec![3, 4], vec![0.0; 12]).unwrap();
    let e = combine(
        &[
            src(1.0),
            Source {
                name: "same",
                weight: 1.0,
                use_rslora: false,
                factors: &wrong,
            },
        ],
        Combination::Linear,
    )
    .err()
    .unwrap()
    .to_string();
    assert!(e.contains(&wrong[0].0) && e.contains("'same'"), "{e}");
    let e = Combination::from_name("ties", SvdOptions::default())
        .unwrap_err()
        .to_string();
    assert!(e.contains("\"ties\""), "{e}");
    assert_eq!(
        Combination::from_name("svd", SvdOptions::default()).unwrap(),
        Combination::Svd(SvdOptions::default())
    );
}
