//! The shipped studies and examples: every script compiles (`peftlab check`), and the quickstart
//! runs end to end on a reduced grid, writing its table, statistics and SVG.

use crate::common;
use common::{fixture, run};
use std::path::PathBuf;

fn repo(rel: &str) -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join(rel)
        .display()
        .to_string()
}

#[test]
fn every_script_and_example_passes_check() {
    let dir = tempfile::tempdir().unwrap();
    let mut n = 0;
    for sub in ["scripts", "examples", "tests/interop"] {
        let Ok(entries) = std::fs::read_dir(repo(sub)) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.extension().is_some_and(|x| x == "rhai") {
                let r = run(dir.path(), &["check", &p.display().to_string()]);
                assert_eq!(r.code, Some(0), "{}: {}{}", p.display(), r.stdout, r.stderr);
                n += 1;
            }
        }
    }
    assert!(n >= 4, "found only {n} scripts");
}

/// Without SmolLM2 the quickstart says so and runs the whole design on the tiny model: the
/// per-cell table, both ANOVAs with the share line, Tukey, the ranking, the outputs.
#[test]
fn quickstart_runs_on_a_small_grid() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out").display().to_string();
    let _ = fixture("models/tiny-llama");
    let missing = dir
        .path()
        .join("no-such-smollm2.gguf")
        .display()
        .to_string();
    let r = common::Run::from_output(
        common::peftlab(dir.path())
            .env("PEFTLAB_SMOLLM2", &missing)
            .args([
                "run",
                &repo("examples/quickstart.rhai"),
                "--out",
                &out,
                "--set",
                "total=32",
                "--set",
                "epochs=2",
            ])
            .stdin(std::process::Stdio::null())
            .output()
            .expect("run peftlab"),
    );
    assert_eq!(r.code, Some(0), "{}\n{}", r.stdout, r.stderr);
    let notice = format!("Notice: SmolLM2-135M-Instruct not found at {missing}");
    for needle in [
        notice.as_str(),
        "tests/fixtures/models/tiny-llama",
        "Two-way ANOVA",
        "Share effect on ur accuracy: F(1, 4) = ",
        "One-way ANOVA across adapters: F(1, 6) = ",
        "Tukey HSD",
        "Ranking (target language)",
        "Outputs:",
    ] {
        assert!(
            r.stdout.contains(needle),
            "missing {needle:?} in\n{}",
            r.stdout
        );
    }
    for f in ["results.csv", "results.json", "acc_target.svg"] {
        assert!(dir.path().join("out").join(f).is_file(), "{f} not written");
    }
    let svg = std::fs::read_to_string(dir.path().join("out/acc_target.svg")).unwrap();
    assert!(svg.contains("<svg"), "not an SVG");
    // 2 adapters × 2 shares × 2 seeds.
    let csv = std::fs::read_to_string(dir.path().join("out/results.csv")).unwrap();
    assert_eq!(csv.lines().count(), 1 + 2 * 2 * 2, "{csv}");
}

/// The quickstart's claim on SmolLM2-135M-Instruct: the Urdu share effect is significant.
/// Minutes of training, so it is ignored by default; run it with
/// `cargo test --test it -- --ignored quickstart_on_smollm2` after
/// `scripts/get-smollm2.sh`.
#[test]
#[ignore = "runs the full quickstart on SmolLM2 (about 8 minutes)"]
fn quickstart_on_smollm2_shows_the_share_effect() {
    let Some(model) = peftlab::gguf::find_smollm2() else {
        eprintln!("SKIPPED: SmolLM2 GGUF not found (run scripts/get-smollm2.sh)");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out").display().to_string();
    let r = run(
        dir.path(),
        &[
            "run",
            &repo("examples/quickstart.rhai"),
            "--out",
            &out,
            "--set",
            &format!("model={}", model.display()),
        ],
    );
    assert_eq!(r.code, Some(0), "{}\n{}", r.stdout, r.stderr);
    let line = r
        .stdout
        .lines()
        .find(|l| l.starts_with("Share effect on ur accuracy"))
        .unwrap_or_else(|| panic!("no share line in\n{}", r.stdout));
    let p: f64 = line
        .split("p = ")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no p in {line:?}"));
    assert!(p < 0.05, "{line}\n{}", r.stdout);
    assert!(dir.path().join("out/acc_target.svg").is_file());
}

/// which_lora records one items file per cell (path and SHA-256 in the result), the files join
/// into the cells' scores, and a file rewritten after its result was stored is caught until the
/// cell is recomputed with --rerun.
#[test]
fn which_lora_records_items_files_that_join() {
    use peftlab::table::Table;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let out_s = out.display().to_string();
    let study = |extra: &[&str]| {
        let mut args = vec![
            "run",
            "--out",
            &out_s,
            "--set",
            "variants=[\"lora\",\"vera\"]",
            "--set",
            "tls=[\"ur\"]",
            "--set",
            "shares=[0.5]",
            "--set",
            "seeds=[1]",
            "--set",
            "train_n=20",
            "--set",
            "epochs=1",
            "--set",
            "lrs={\"lora\": 0.01, \"vera\": 0.01}",
        ];
        args.extend_from_slice(extra);
        let script = repo("scripts/which_lora.rhai");
        args.insert(1, &script);
        let r = run(dir.path(), &args);
        assert_eq!(r.code, Some(0), "{}\n{}", r.stdout, r.stderr);
        r
    };
    study(&[]);
    let results = Table::read_csv(out.join("results.csv")).unwrap();
    assert_eq!(results.len(), 2);
    let mut lines = Vec::new();
    for row in results.rows() {
        let v = row["variant"].as_str().unwrap();
        let rel = row["items_file"].as_str().unwrap();
        assert_eq!(rel, format!("items/{v}-0.5-ur-seed1.jsonl"));
        let bytes = std::fs::read(out.join(rel)).unwrap();
        assert_eq!(
            row["items_sha256"].as_str().unwrap(),
            peftlab::host::files::sha256_bytes(&bytes)
        );
        // The 12 test items of each of the two languages (en, then ur).
        assert_eq!(bytes.iter().filter(|&&b| b == b'\n').count(), 24, "{rel}");
        lines.push(String::from_utf8(bytes).unwrap());
    }
    // The join script a report would use: labels from the cells, paths and hashes from the
    // results.
    let join = common::write(
        dir.path(),
        "join.rhai",
        &format!(
            "let out = {out_s:?};\nlet r = read_csv(out + \"/results.csv\");\nlet files = #{{}};\n\
             for row in r.rows() {{ files[`${{row.variant}}/seed${{row.seed}}`] = #{{ path: out + \"/\" + row.items_file, sha256: row.items_sha256 }}; }}\n\
             write_json(join_items(files), out + \"/joined.json\");\n"
        ),
    );
    let join_s = join.display().to_string();
    let r = run(dir.path(), &["run", &join_s, "--out", &out_s]);
    assert_eq!(r.code, Some(0), "{}\n{}", r.stdout, r.stderr);
    let joined = Table::read_json(out.join("joined.json")).unwrap();
    assert_eq!(
        joined.columns(),
        ["task", "lang", "id", "lora/seed1", "vera/seed1"]
    );
    assert_eq!(joined.len(), 24);
    // Each column's mean per language is the run's micro-F1 (= accuracy): f1_en on en, f1_tl on ur.
    for row in results.rows() {
        let label = format!("{}/seed1", row["variant"].as_str().unwrap());
        for (lang, metric) in [("en", "f1_en"), ("ur", "f1_tl")] {
            let v: Vec<f64> = joined
                .rows()
                .iter()
                .filter(|r| r["lang"] == lang)
                .map(|r| r[&label].as_f64().unwrap())
                .collect();
            assert_eq!(v.len(), 12);
            let mean = v.iter().sum::<f64>() / 12.0;
            let want = row[metric].as_f64().unwrap();
            assert!(
                (mean - want).abs() < 1e-12,
                "{label} {lang}: {mean} vs {want}"
            );
        }
    }
    // A stale file (as an interrupted --rerun would leave): the first item flipped.
    let lora = out.join("items/lora-0.5-ur-seed1.jsonl");
    let stale = if lines[0].contains("\"correct\":false") {
        lines[0].replacen("\"correct\":false", "\"correct\":true", 1)
    } else {
        lines[0].replacen("\"correct\":true", "\"correct\":false", 1)
    };
    std::fs::write(&lora, &stale).unwrap();
    let r = run(dir.path(), &["run", &join_s, "--out", &out_s]);
    assert_eq!(r.code, Some(1));
    assert!(
        r.stderr.contains("join_items: ")
            && r.stderr.contains("lora-0.5-ur-seed1.jsonl: its sha256 is")
            && r.stderr.contains("recompute the cell")
            && r.stderr.contains("join.rhai:5:12"),
        "{}",
        r.stderr
    );
    // Resuming reuses the stored results and leaves the file alone; --rerun rewrites it.
    study(&[]);
    assert_eq!(std::fs::read_to_string(&lora).unwrap(), stale);
    study(&["--rerun"]);
    assert_eq!(std::fs::read_to_string(&lora).unwrap(), lines[0]);
    let r = run(dir.path(), &["run", &join_s, "--out", &out_s]);
    assert_eq!(r.code, Some(0), "{}\n{}", r.stdout, r.stderr);
}

/// The FLix study on its offline defaults (tiny-llama, the hand-made XNLI + TyDiQA fixture in
/// en, ar, sw, two held-out pairs, 3 methods × 3 seeds): budget-matched parameter counts, one
/// result row per method × seed × (task, lang) with the held-out pairs marked, real task
/// metrics, ANOVA / Tukey over the per-seed runs with finite numbers, and the files.
#[test]
fn flix_study_runs_on_the_offline_fixture() {
    use peftlab::table::Table;
    use peftlab::value::Value;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let out_s = out.display().to_string();
    let r = run(
        dir.path(),
        &["run", &repo("scripts/flix.rhai"), "--out", &out_s],
    );
    assert_eq!(r.code, Some(0), "{}\n{}", r.stdout, r.stderr);
    // tiny-llama, all linear modules: Σ(d_in + d_out) = 2 layers × (q 128 + k 96 + v 96 +
    // o 128 + gate 240 + up 240 + down 240) = 2336 parameters per unit of rank. FLix: 3 languages
    // × rank 4 + 2 tasks × rank 4 = 20 units; active per example: 4 + 4 = 8 units; LoRA r = 20.
    assert!(
        r.stdout.contains(
            "Trainable parameters: FLix 46720 in total (18688 active per example), LoRA r=20: 46720"
        ),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.contains(
            "Training rows (54): [\"xnli/en: 18\", \"xnli/sw: 18\", \"tydiqa/en: 9\", \"tydiqa/ar: 9\"]"
        ),
        "{}",
        r.stdout
    );
    let num = |v: &Value| v.as_f64().unwrap_or(f64::NAN);
    let flag = |v: &Value| match v {
        Value::Bool(b) => *b,
        Value::String(s) => s == "true",
        other => panic!("held_out is {other}"),
    };
    let results = Table::read_csv(out.join("results.csv")).unwrap();
    assert_eq!(
        results.columns(),
        [
            "method",
            "seed",
            "task",
            "lang",
            "pair",
            "held_out",
            "metric",
            "score",
            "n",
            "trainable_params",
            "final_loss"
        ]
    );
    assert_eq!(results.len(), 3 * 3 * 6);
    for method in ["lora", "flix", "flix_nodrop"] {
        for seed in 1..=3 {
            for (task, metric, n) in [("xnli", "acc", 9.0), ("tydiqa", "f1", 5.0)] {
                for lang in ["en", "ar", "sw"] {
                    let rows: Vec<_> = results
                        .rows()
                        .iter()
                        .filter(|row| {
                            row["method"] == method
                                && num(&row["seed"]) == f64::from(seed)
                                && row["task"] == task
                                && row["lang"] == lang
                        })
                        .collect();
                    assert_eq!(rows.len(), 1, "{method} seed {seed} {task}/{lang}");
                    let row = rows[0];
                    let held = (task, lang) == ("xnli", "ar") || (task, lang) == ("tydiqa", "sw");
                    assert_eq!(flag(&row["held_out"]), held, "{row:?}");
                    assert_eq!(row["metric"], metric);
                    assert_eq!(num(&row["n"]), n);
                    assert_eq!(num(&row["trainable_params"]), 46720.0);
                    let s = num(&row["score"]);
                    assert!((0.0..=1.0).contains(&s), "{row:?}");
                    if task == "xnli" {
                        // Accuracy over 9 items: a multiple of 1/9.
                        assert!(((s * 9.0).round() - s * 9.0).abs() < 1e-9, "{row:?}");
                    }
                }
            }
        }
    }
    let runs = Table::read_csv(out.join("runs.csv")).unwrap();
    assert_eq!(runs.len(), 9);
    let losses: Vec<f64> = runs.rows().iter().map(|r| num(&r["final_loss"])).collect();
    assert!(
        losses.iter().all(|l| l.is_finite() && *l > 0.0),
        "{losses:?}"
    );
    for (i, a) in losses.iter().enumerate() {
        assert!(
            losses[i + 1..].iter().all(|b| b != a),
            "two runs ended with the same loss: {losses:?}"
        );
    }
    // Each run's held-out mean is the mean of its two held-out rows.
    for run_row in runs.rows() {
        let mine: Vec<f64> = results
            .rows()
            .iter()
            .filter(|r| {
                r["method"] == run_row["method"]
                    && num(&r["seed"]) == num(&run_row["seed"])
                    && flag(&r["held_out"])
            })
            .map(|r| num(&r["score"]))
            .collect();
        assert_eq!(mine.len(), 2);
        assert!((num(&run_row["held_out"]) - (mine[0] + mine[1]) / 2.0).abs() < 1e-12);
    }
    // ANOVA over the 9 runs (df 2, 6) and Tukey for both summaries, with finite numbers.
    for summary in ["held_out", "seen"] {
        let head = format!("One-way ANOVA of the mean {summary} score across methods: F(2, 6) = ");
        let line = r
            .stdout
            .lines()
            .find(|l| l.starts_with(&head))
            .unwrap_or_else(|| panic!("no {head:?} in\n{}", r.stdout));
        let rest = &line[head.len()..];
        let (f, p) = rest.split_once(", p = ").unwrap();
        let (f, p): (f64, f64) = (f.parse().unwrap(), p.parse().unwrap());
        assert!(
            f.is_finite() && f >= 0.0 && (0.0..=1.0).contains(&p),
            "{line}"
        );
        assert!(r
            .stdout
            .contains(&format!("Ranking by the mean {summary} score: ")));
        let tk = Table::read_csv(out.join(format!("tukey_{summary}.csv"))).unwrap();
        assert_eq!(tk.len(), 3);
        for row in tk.rows() {
            for k in ["meandiff", "p_adj", "lower", "upper"] {
                assert!(num(&row[k]).is_finite(), "{summary}: {row:?}");
            }
        }
    }
    assert!(r
        .stdout
        .contains("Held-out pairs (zero-shot): [\"tydiqa/sw\", \"xnli/ar\"]"));
    let svg = std::fs::read_to_string(out.join("scores.svg")).unwrap();
    assert!(svg.contains("<svg"), "not an SVG");
    // The first held-out pair of every FLix run, exported as a plain LoRA of rank 4 + 4.
    for method in ["flix", "flix_nodrop"] {
        for seed in 1..=3 {
            let cfg = out.join(format!(
                "export/{method}-seed{seed}-tydiqa-sw/adapter_config.json"
            ));
            let cfg: serde_json::Value =
                serde_json::from_str(&std::fs::read_to_string(&cfg).unwrap()).unwrap();
            assert_eq!(cfg["r"], 8, "{method} seed {seed}");
        }
    }
    assert_eq!(std::fs::read_dir(out.join("flix")).unwrap().count(), 9);
}

/// The LoRA update `(alpha / r) · B · A` of `module` in a saved PEFT adapter directory, as
/// (rows, cols, row-major values).
fn saved_delta(dir: &std::path::Path, module: &str) -> (usize, usize, Vec<f64>) {
    let cfg: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("adapter_config.json")).unwrap())
            .unwrap();
    let scale = cfg["lora_alpha"].as_f64().unwrap() / cfg["r"].as_f64().unwrap();
    let t = peftlab::tensor::load_safetensors(&dir.join("adapter_model.safetensors")).unwrap();
    let a = &t[&format!("base_model.model.{module}.lora_A.weight")];
    let b = &t[&format!("base_model.model.{module}.lora_B.weight")];
    let (r, cols) = (a.shape[0], a.shape[1]);
    let rows = b.shape[0];
    assert_eq!(b.shape[1], r, "{}", dir.display());
    let (av, bv) = (a.values_f64(), b.values_f64());
    let mut d = vec![0.0; rows * cols];
    for i in 0..rows {
        for k in 0..r {
            let bik = bv[i * r + k] * scale;
            for j in 0..cols {
                d[i * cols + j] += bik * av[k * cols + j];
            }
        }
    }
    (rows, cols, d)
}

#[test]
fn madx_study_runs_on_the_offline_fixture() {
    use peftlab::table::Table;
    use peftlab::value::Value;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let out_s = out.display().to_string();
    let r = run(
        dir.path(),
        &["run", &repo("examples/madx.rhai"), "--out", &out_s],
    );
    assert_eq!(r.code, Some(0), "{}\n{}", r.stdout, r.stderr);
    // Language text: the 6 premises and 18 hypotheses of each XNLI train split; task rows: the 18
    // English XNLI train rows.
    assert!(
        r.stdout.contains(
            "Language text (sentences): [\"en: 24\", \"ar: 24\", \"sw: 24\"]; task rows (en): [\"xnli: 18\"]"
        ),
        "{}",
        r.stdout
    );
    let names = [
        "lang_en",
        "lang_ar",
        "lang_sw",
        "task_xnli",
        "solo_xnli",
        "merge_xnli_ar",
        "merge_xnli_sw",
    ];
    for seed in 1..=3 {
        let line = format!("Seed {seed}: adapters {names:?}; final losses: ");
        assert!(r.stdout.contains(&line), "no {line:?} in\n{}", r.stdout);
    }
    let num = |v: &Value| v.as_f64().unwrap_or(f64::NAN);
    let flag = |v: &Value| match v {
        Value::Bool(b) => *b,
        Value::String(s) => s == "true",
        other => panic!("zero_shot is {other}"),
    };
    let variants = [
        "base",
        "task_only",
        "madx_task",
        "madx",
        "madx_noswap",
        "adamergex",
    ];
    let on_source = |v: &str| !matches!(v, "madx_noswap" | "adamergex");
    let results = Table::read_csv(out.join("results.csv")).unwrap();
    assert_eq!(
        results.columns(),
        [
            "variant",
            "seed",
            "task",
            "lang",
            "zero_shot",
            "metric",
            "score",
            "n"
        ]
    );
    // 4 variants on en, ar, sw and 2 on ar, sw only, for 3 seeds.
    assert_eq!(results.len(), 3 * (4 * 3 + 2 * 2), "{}", r.stdout);
    let score = |variant: &str, seed: i32, lang: &str| -> Option<f64> {
        let rows: Vec<_> = results
            .rows()
            .iter()
            .filter(|row| {
                row["variant"] == variant
                    && num(&row["seed"]) == f64::from(seed)
                    && row["lang"] == lang
            })
            .collect();
        assert!(rows.len() <= 1, "{variant} {seed} {lang}: {rows:?}");
        let row = rows.first()?;
        assert_eq!(row["task"], "xnli");
        assert_eq!(row["metric"], "acc");
        assert_eq!(num(&row["n"]), 9.0);
        assert_eq!(flag(&row["zero_shot"]), lang != "en", "{row:?}");
        Some(num(&row["score"]))
    };
    let items = |seed: i32, variant: &str, lang: &str| -> Vec<serde_json::Value> {
        let p = out.join(format!("items/seed{seed}/xnli-{variant}-{lang}.jsonl"));
        std::fs::read_to_string(&p)
            .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    };
    for variant in variants {
        for seed in 1..=3 {
            for lang in ["en", "ar", "sw"] {
                let s = score(variant, seed, lang);
                if lang == "en" && !on_source(variant) {
                    assert!(s.is_none(), "{variant} is not defined on the source");
                    continue;
                }
                let s = s.unwrap_or_else(|| panic!("no row {variant} seed {seed} {lang}"));
                assert!((0.0..=1.0).contains(&s), "{variant} {seed} {lang}: {s}");
                // Accuracy over 9 items, and the fraction correct in the cell's item log.
                assert!(((s * 9.0).round() - s * 9.0).abs() < 1e-9, "{s}");
                let it = items(seed, variant, lang);
                assert_eq!(it.len(), 9);
                let correct = it.iter().filter(|i| i["correct"] == true).count();
                assert!(
                    (s - correct as f64 / 9.0).abs() < 1e-12,
                    "{variant} {seed} {lang}"
                );
                assert!(it.iter().all(|i| i["lang"] == lang));
            }
        }
        // The base model does not depend on the seed (no adapter is active).
        if variant == "base" {
            for lang in ["en", "ar", "sw"] {
                assert_eq!(score("base", 1, lang), score("base", 2, lang));
                assert_eq!(score("base", 1, lang), score("base", 3, lang));
            }
        }
    }
    // The variants really ran different adapter sets: on each target, the per-item choice
    // log-likelihoods of the swapped stack differ from the unswapped stack, from the task
    // adapter alone and from the arithmetic adapter; the solo task adapter changes the base.
    let lls = |seed: i32, variant: &str, lang: &str| -> Vec<f64> {
        items(seed, variant, lang)
            .iter()
            .flat_map(|i| {
                i["scores"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|x| x.as_f64().unwrap())
                    .collect::<Vec<_>>()
            })
            .collect()
    };
    let differ = |a: &[f64], b: &[f64]| {
        assert_eq!(a.len(), 27);
        assert_eq!(a.len(), b.len());
        a.iter()
            .zip(b)
            .map(|(x, y)| (x - y).abs())
            .fold(0.0, f64::max)
            > 1e-3
    };
    for seed in 1..=3 {
        for lang in ["ar", "sw"] {
            let madx = lls(seed, "madx", lang);
            for other in ["madx_noswap", "madx_task", "adamergex", "task_only", "base"] {
                assert!(
                    differ(&madx, &lls(seed, other, lang)),
                    "madx = {other} on {lang}, seed {seed}"
                );
            }
            assert!(differ(
                &lls(seed, "task_only", lang),
                &lls(seed, "base", lang)
            ));
        }
    }
    // The saved adapters: every name of the cell, and AdaMergeX's adapter is the exact signed sum
    // of the updates solo_xnli + lang_<L> − lang_en (rank 8 + 8 + 8, alpha = r).
    for seed in 1..=3 {
        let base = out.join(format!("adapters/seed{seed}"));
        for name in names {
            let cfg: serde_json::Value = serde_json::from_str(
                &std::fs::read_to_string(base.join(name).join("adapter_config.json")).unwrap(),
            )
            .unwrap();
            let r = if name.starts_with("merge_") { 24 } else { 8 };
            assert_eq!(cfg["r"], r, "{name}");
        }
        for lang in ["ar", "sw"] {
            for module in [
                "model.layers.0.self_attn.q_proj",
                "model.layers.1.mlp.down_proj",
            ] {
                let (rows, cols, merged) =
                    saved_delta(&base.join(format!("merge_xnli_{lang}")), module);
                let (_, _, solo) = saved_delta(&base.join("solo_xnli"), module);
                let (_, _, tgt) = saved_delta(&base.join(format!("lang_{lang}")), module);
                let (_, _, src) = saved_delta(&base.join("lang_en"), module);
                assert_eq!(merged.len(), rows * cols);
                let scale = merged.iter().fold(0.0f64, |m, x| m.max(x.abs()));
                assert!(scale > 1e-4, "{module}: the merged update is zero");
                for i in 0..merged.len() {
                    let want = solo[i] + tgt[i] - src[i];
                    assert!(
                        (merged[i] - want).abs() <= 1e-5 * scale,
                        "seed {seed} {lang} {module}[{i}]: {} vs {want}",
                        merged[i]
                    );
                }
                // lang_<L> and lang_en are different adapters (the swap changes weights).
                let diff = tgt
                    .iter()
                    .zip(&src)
                    .fold(0.0f64, |m, (a, b)| m.max((a - b).abs()));
                assert!(diff > 1e-4, "{module}: lang_{lang} = lang_en");
            }
        }
    }
    // The frozen source language adapter did not move while the task adapter trained.
    let cells: Vec<_> = std::fs::read_dir(out.join("madx"))
        .unwrap()
        .flatten()
        .collect();
    assert_eq!(cells.len(), 3);
    for c in cells {
        let j: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(c.path()).unwrap()).unwrap();
        assert_eq!(j["metrics"]["frozen_drift"], 0.0, "{}", c.path().display());
    }
    // Runs: each run's targets_mean is the mean of its two target rows.
    let runs = Table::read_csv(out.join("runs.csv")).unwrap();
    assert_eq!(runs.columns(), ["variant", "seed", "task", "targets_mean"]);
    assert_eq!(runs.len(), 6 * 3);
    for row in runs.rows() {
        let v = row["variant"].as_str().unwrap().to_string();
        let seed = num(&row["seed"]) as i32;
        let want = (score(&v, seed, "ar").unwrap() + score(&v, seed, "sw").unwrap()) / 2.0;
        assert!((num(&row["targets_mean"]) - want).abs() < 1e-12, "{row:?}");
    }
    // The comparison table: variant × language, means over the seeds.
    let table = Table::read_csv(out.join("table_xnli.csv")).unwrap();
    assert_eq!(
        table.columns(),
        ["variant", "en", "ar", "sw", "targets_mean"]
    );
    assert_eq!(table.len(), variants.len());
    for (row, variant) in table.rows().iter().zip(variants) {
        assert_eq!(row["variant"], variant);
        for lang in ["en", "ar", "sw", "targets_mean"] {
            let per_seed: Vec<f64> = (1..=3)
                .filter_map(|seed| {
                    if lang == "targets_mean" {
                        Some((score(variant, seed, "ar")? + score(variant, seed, "sw")?) / 2.0)
                    } else {
                        score(variant, seed, lang)
                    }
                })
                .collect();
            if per_seed.is_empty() {
                assert_eq!(row[lang], Value::Null, "{variant} {lang}");
            } else {
                let mean = per_seed.iter().sum::<f64>() / 3.0;
                assert_eq!(per_seed.len(), 3);
                assert!((num(&row[lang]) - mean).abs() < 1e-9, "{variant} {lang}");
            }
        }
    }
    assert!(r
        .stdout
        .contains("variant          en      ar      sw  targets_mean"));
    // One-way ANOVA across the 6 variants over 3 seeds each (df 5, 12) and Tukey HSD for the
    // targets' mean and each target language; the two-way table over the targets.
    let anovas = Table::read_csv(out.join("anova_xnli.csv")).unwrap();
    assert_eq!(anovas.len(), 3);
    for (row, scope) in anovas.rows().iter().zip(["targets_mean", "ar", "sw"]) {
        assert_eq!(row["scope"], scope);
        let (f, p) = (num(&row["F"]), num(&row["p"]));
        assert!(
            f.is_finite() && f >= 0.0 && (0.0..=1.0).contains(&p),
            "{row:?}"
        );
        assert_eq!(
            (num(&row["df_between"]), num(&row["df_within"])),
            (5.0, 12.0)
        );
    }
    assert!(r
        .stdout
        .contains("One-way ANOVA of xnli targets mean across variants: F(5, 12) = "));
    assert!(r.stdout.contains("Ranking by xnli targets mean: "));
    for name in ["tukey_xnli", "tukey_xnli_ar", "tukey_xnli_sw"] {
        let tk = Table::read_csv(out.join(format!("{name}.csv"))).unwrap();
        assert_eq!(tk.len(), 15, "{name}");
        for row in tk.rows() {
            for k in ["meandiff", "p_adj", "lower", "upper"] {
                assert!(num(&row[k]).is_finite(), "{name}: {row:?}");
            }
        }
    }
    let two = Table::read_csv(out.join("anova2_xnli.csv")).unwrap();
    let terms: Vec<_> = two.rows().iter().map(|r| r["term"].clone()).collect();
    assert_eq!(terms, ["variant", "lang", "variant:lang", "residual"]);
    assert!(num(&two.rows()[0]["F"]).is_finite());
    let svg = std::fs::read_to_string(out.join("scores.svg")).unwrap();
    assert!(svg.contains("<svg"), "not an SVG");
}

fn rel_close(a: f64, b: f64, tol: f64) -> bool {
    (a - b).abs() <= tol * a.abs().max(b.abs()).max(f64::MIN_POSITIVE)
}

/// The Which-LoRA study's whole design on the offline fixtures (tiny-llama, the hand-made XNLI
/// samples in en, ur, sw, hi): the learning-rate search (Table 10), every variant × TL × share
/// × seed with the 0 % model trained once per seed and scored on every TL, the layer-subset
/// LoRA (Table 13), Tables 1/2/3, both ANOVAs and Tukey (or the reason they cannot run: the
/// random tiny model scores every run alike), the logit lens in English and each TL per variant
/// (Figs. 1–3) and the per-layer correlations (Fig. 4's CSV). Small because the data are small:
/// 20 training examples, one epoch, two seeds, two learning rates.
#[test]
fn which_lora_runs_the_whole_design_offline() {
    use peftlab::table::Table;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let out_s = out.display().to_string();
    let script = repo("scripts/which_lora.rhai");
    let settings = [
        "--set",
        "seeds=[1,2]",
        "--set",
        "lr_grid=[0.01,0.05]",
        "--set",
        "train_n=20",
        "--set",
        "epochs=1",
        "--set",
        "layers=[1]",
    ];
    // The search alone first (as the Slurm job does), then the rest: the search runs are
    // reused although `phase` differs (run_cells' ignore_settings).
    let mut args = vec!["run", &script, "--out", &out_s, "--set", "phase=search"];
    args.extend_from_slice(&settings);
    let r = run(dir.path(), &args);
    assert_eq!(r.code, Some(0), "{}\n{}", r.stdout, r.stderr);
    assert!(r.stdout.contains("phase=search: done") && !r.stdout.contains("Main grid"));
    let mut args = vec!["run", &script, "--out", &out_s];
    args.extend_from_slice(&settings);
    let r = run(dir.path(), &args);
    assert_eq!(r.code, Some(0), "{}\n{}", r.stdout, r.stderr);
    assert!(
        r.stderr
            .contains("run_cells 'search': 12 cells, 12 done, 0 to run"),
        "{}",
        r.stdout
    );
    for needle in [
        "Table 1:",
        "Table 10:",
        "Table 2:",
        "Table 3:",
        "Table 13:",
        "TL ur (shares pooled), f1_tl:",
        "TL sw (shares pooled), f1_tl:",
        "TL hi (shares pooled), f1_en:",
        "Pooled over TLs and shares, f1_tl:",
        "Two-way ANOVA of TL F1 (variant × share):",
        "TL examples per run of 20: [\"0.0 % → 0\", \"1.0 % → 1\", \"10.0 % → 2\", \"50.0 % → 10\"]",
    ] {
        assert!(r.stdout.contains(needle), "missing {needle:?} in\n{}", r.stdout);
    }
    let csv = |f: &str| Table::read_csv(out.join(f)).unwrap();
    let s = |v: &peftlab::value::Value| v.as_str().unwrap_or_default().to_string();
    let num = |v: &peftlab::value::Value| v.as_f64().unwrap();

    // Table 1: tiny-llama has 2 layers, hidden 64, KV width 32, MLP width 176. LoRA r 8 on the
    // seven projections: q, o 8·(64+64), k, v 8·(64+32), gate, up, down 8·(64+176) = 9,344 per
    // layer. DoRA r 16 on q, k, v, up, down: 16·(128+96+96+240+240) = 12,800 plus magnitudes
    // 64+32+32+176+64 = 368. DoRA* adds the 608 magnitudes of the seven projections to LoRA.
    // LoRA on layer 1 only: one layer's 9,344.
    let t1 = csv("table1.csv");
    let params = |v: &str| {
        t1.rows()
            .iter()
            .find(|r| r["variant"] == v)
            .map(|r| num(&r["trainable_params"]))
            .unwrap()
    };
    assert_eq!(params("lora"), 18_688.0);
    assert_eq!(params("dora"), 2.0 * (12_800.0 + 368.0));
    assert_eq!(params("dora*"), 18_688.0 + 2.0 * 608.0);
    assert_eq!(params("lora_layers"), 9_344.0);
    assert_eq!(t1.len(), 7);

    // Table 10: 6 variants × 2 learning rates, one chosen per variant.
    let t10 = csv("table10_search.csv");
    assert_eq!(t10.len(), 12);
    for v in ["lora", "dora", "dora*", "vera", "adalora", "pissa"] {
        let chosen = t10
            .rows()
            .iter()
            .filter(|r| r["variant"] == v && s(&r["chosen"]) == "*")
            .count();
        assert_eq!(chosen, 1, "{v}");
    }

    // One row per variant × TL × share × seed (+ the layer-subset LoRA at 1 %).
    let res = csv("results.csv");
    assert_eq!(res.len(), (6 * 3 * 4 + 3) * 2);
    // The 0 % run is one training per variant and seed, scored on every TL: the three rows
    // share its items file and English F1.
    let zero: Vec<_> = res
        .rows()
        .iter()
        .filter(|r| r["variant"] == "lora" && r["seed"] == 1 && num(&r["share"]) == 0.0)
        .collect();
    assert_eq!(zero.len(), 3);
    assert!(zero
        .iter()
        .all(|r| r["items_file"] == "items/lora-0.0-all-seed1.jsonl"));
    assert!(zero.iter().all(|r| r["f1_en"] == zero[0]["f1_en"]));
    let items = std::fs::read_to_string(out.join("items/lora-0.0-all-seed1.jsonl")).unwrap();
    assert_eq!(
        items.lines().count(),
        4 * 12,
        "en + three TLs, 12 test items each"
    );
    for r in res.rows() {
        for m in ["f1_en", "f1_tl"] {
            let v = num(&r[m]);
            assert!(
                (0.0..=1.0).contains(&v) && (v * 12.0).fract().abs() < 1e-9,
                "{m} = {v}"
            );
        }
    }

    assert_eq!(csv("table2.csv").len(), 3 * 4 * 6);
    let t2 = std::fs::read_to_string(out.join("table2.txt")).unwrap();
    for row in ["ur  0 ", "sw  1 ", "hi  10", "hi  50"] {
        assert!(t2.lines().any(|l| l.starts_with(row)), "{row:?} in\n{t2}");
    }
    assert_eq!(csv("table3.csv").len(), 7);
    assert_eq!(csv("table13_layers.csv").len(), 2 * 3);
    assert_eq!(csv("anova_oneway.csv").len(), 4 * 2);

    // Figs. 1–3: English and TL curves per variant, one figure per TL; 3 hidden states.
    for (i, tl) in ["ur", "sw", "hi"].iter().enumerate() {
        let svg = std::fs::read_to_string(out.join(format!("fig{}_lens_{tl}.svg", i + 1))).unwrap();
        assert!(
            svg.contains("<svg") && svg.contains(&format!("dora* {tl}")),
            "fig for {tl}"
        );
    }
    let curves = csv("lens_curves.csv");
    assert_eq!(curves.len(), 3 * 6 * 3);
    for r in curves.rows() {
        let (en, tl) = (num(&r["en"]), num(&r["tl_share"]));
        assert!((0.0..=1.0).contains(&en) && (0.0..=1.0).contains(&tl) && en + tl <= 1.0 + 1e-12);
    }
    assert_eq!(csv("fig4_correlations.csv").len(), 3 * 2);
}

/// The analysis half of the Which-LoRA study on synthetic per-run results with real variation
/// (tests/fixtures/which_lora, made by make_synthetic.py with scipy and statsmodels): the
/// one-way ANOVAs per TL and pooled, the two-way ANOVA (type II), Tukey's decisions, the
/// ranking strings, Table 2's marks and the per-layer Pearson correlations of Fig. 4.
#[test]
fn which_lora_analysis_matches_scipy_and_statsmodels() {
    use peftlab::table::Table;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let out_s = out.display().to_string();
    let input = fixture("which_lora/synthetic_results.json")
        .display()
        .to_string();
    let r = run(
        dir.path(),
        &[
            "run",
            &repo("scripts/which_lora.rhai"),
            "--out",
            &out_s,
            "--set",
            &format!("results={input}"),
        ],
    );
    assert_eq!(r.code, Some(0), "{}\n{}", r.stdout, r.stderr);
    let expected: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(fixture("which_lora/expected.json")).unwrap(),
    )
    .unwrap();
    let csv = |f: &str| Table::read_csv(out.join(f)).unwrap();
    let num = |v: &peftlab::value::Value| v.as_f64().unwrap();

    let oneway = csv("anova_oneway.csv");
    for e in expected["oneway"].as_array().unwrap() {
        let row = oneway
            .rows()
            .iter()
            .find(|r| {
                r["scope"] == e["scope"].as_str().unwrap()
                    && r["metric"] == e["metric"].as_str().unwrap()
            })
            .unwrap();
        let (f, p) = (num(&row["F"]), num(&row["p"]));
        assert!(rel_close(f, e["F"].as_f64().unwrap(), 1e-9), "{e}: F {f}");
        assert!(rel_close(p, e["p"].as_f64().unwrap(), 1e-8), "{e}: p {p}");
        assert_eq!(num(&row["df_between"]), 2.0);
    }
    let rank = |scope: &str, metric: &str| {
        oneway
            .rows()
            .iter()
            .find(|r| r["scope"] == scope && r["metric"] == metric)
            .map(|r| r["ranking"].as_str().unwrap().to_string())
            .unwrap()
    };
    assert_eq!(rank("pooled", "f1_tl"), "dora = lora > vera");
    assert_eq!(rank("pooled", "f1_en"), "lora > dora > vera");

    let two = csv("anova_variant_share.csv");
    for e in expected["twoway"].as_array().unwrap() {
        let row = two
            .rows()
            .iter()
            .find(|r| r["term"] == e["term"].as_str().unwrap())
            .unwrap();
        assert!(
            rel_close(num(&row["ss"]), e["ss"].as_f64().unwrap(), 1e-8),
            "{e}"
        );
        assert!(
            rel_close(num(&row["F"]), e["F"].as_f64().unwrap(), 1e-8),
            "{e}"
        );
        assert!(
            rel_close(num(&row["p"]), e["p"].as_f64().unwrap(), 1e-7),
            "{e}"
        );
    }

    let tukey = csv("tukey_pooled_f1_tl.csv");
    for e in expected["tukey_pooled_f1_tl"].as_array().unwrap() {
        let (a, b) = (e["a"].as_str().unwrap(), e["b"].as_str().unwrap());
        let row = tukey
            .rows()
            .iter()
            .find(|r| (r["a"] == a && r["b"] == b) || (r["a"] == b && r["b"] == a))
            .unwrap();
        let reject = row["reject"]
            .as_bool()
            .or_else(|| row["reject"].as_str().map(|x| x == "true"));
        assert_eq!(reject, e["reject"].as_bool(), "{a} vs {b}");
    }

    let corr = csv("fig4_correlations.csv");
    for e in expected["pearson"].as_array().unwrap() {
        let row = corr
            .rows()
            .iter()
            .find(|r| {
                num(&r["layer"]) == e["layer"].as_f64().unwrap()
                    && r["share_of"] == e["share_of"].as_str().unwrap()
            })
            .unwrap();
        assert!(
            (num(&row["r"]) - e["r"].as_f64().unwrap()).abs() < 1e-12,
            "{e}"
        );
        assert!(
            rel_close(num(&row["p"]), e["p"].as_f64().unwrap(), 1e-8),
            "{e}"
        );
    }
    // Layer 0 is 0 in every run: no correlation, and the heatmap draws the others.
    assert!(corr
        .rows()
        .iter()
        .filter(|r| num(&r["layer"]) == 0.0)
        .all(|r| r["r"].is_null() || r["r"] == ""));
    let svg = std::fs::read_to_string(out.join("fig4_correlation.svg")).unwrap();
    assert!(svg.contains("<svg") && svg.contains("English share"));

    // Table 2, row ur × 1 %: means over 3 seeds; lora has the best En F1 and the second TL F1,
    // dora the second En F1 and the best TL F1 (hand-computed from the fixture rows).
    let t2 = std::fs::read_to_string(out.join("table2.txt")).unwrap();
    let row = t2.lines().find(|l| l.starts_with("ur  1 ")).unwrap();
    assert!(
        row.contains("**80.0** / _51.0_")
            && row.contains("_79.1_ / **51.9**")
            && row.contains("70.0 / 41.0"),
        "{row}"
    );
}

/// The rank×quantisation study end to end on the offline fixtures: one tiny model × three
/// fine-tuning sets (Bactrian-X-22 through `bactrian_partition`, MultiAlpaca, and Alpaca at the
/// largest rank × {8, 16} bits) × ranks {8, 16} × {NF4 + double quantisation, LLM.int8, bf16},
/// the base reference cells, the six tasks with the paper's prompts, and AlpacaEval-style win
/// rates with the tiny model as judge. Checks every output the script promises.
#[test]
fn rank_quant_runs_the_grid_offline() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let tiny = fixture("models/tiny-llama").display().to_string();
    let models = format!("models={{\"llama\": \"{tiny}\"}}");
    let r = run(
        dir.path(),
        &[
            "run",
            &repo("scripts/rank_quant.rhai"),
            "--out",
            &out.display().to_string(),
            "--set",
            &models,
            "--set",
            "offline=true",
            "--set",
            r#"sets=["bactrian-x-22", "multialpaca", "alpaca"]"#,
        ],
    );
    assert_eq!(r.code, Some(0), "{}\n{}", r.stdout, r.stderr);
    // 3 base cells + 2 sets × 2 ranks × 3 bits + Alpaca at r = 16 × {8, 16}.
    assert!(
        r.stdout.contains("rank_quant: 17 cells (1 models; sets [\"bactrian-x-22\", \"multialpaca\", \"alpaca\"]; ranks [8, 16]; bits [4, 8, 16]; lr 0.000001 (paper))"),
        "{}",
        r.stdout
    );
    let read =
        |f: &str| std::fs::read_to_string(out.join(f)).unwrap_or_else(|e| panic!("{f}: {e}"));
    // One row per (model, set, rank, bits, task, language): 12 languages in the fixtures.
    let results = read("results.csv");
    assert_eq!(results.lines().count(), 1 + 17 * 12, "{results}");
    assert!(results.lines().next().unwrap().contains("task"));
    // One row per cell; the 8-bit cells run LLM.int8.
    let cells = read("cells.csv");
    assert_eq!(cells.lines().count(), 1 + 17);
    let int8_rows: Vec<&str> = cells.lines().filter(|l| l.contains("LLM.int8()")).collect();
    assert_eq!(int8_rows.len(), 1 + 2 * 2 + 1, "{cells}");
    // Table 1: model, set, the six tasks, the average, one row per set.
    let t1 = read("table1.csv");
    let mut lines = t1.lines();
    assert_eq!(
        lines.next().unwrap(),
        "model,set,xnli,xcopa,belebele,mlqa,xquad,xlsum,Model Average"
    );
    assert_eq!(lines.count(), 3);
    // Appendix layout: base reference rows, then the set's cells; languages and avg.
    let app = read("table_xnli_llama_bactrian-x-22.csv");
    let rows: Vec<&str> = app.lines().collect();
    assert_eq!(rows[0], "cell,en,ur,sw,hi,avg");
    assert!(rows[1].starts_with("base (no adapter) bits=4,"));
    assert!(rows[4].starts_with("r=8 bits=4,"));
    assert_eq!(rows.len(), 1 + 3 + 6);
    assert_eq!(
        read("table_belebele_llama_alpaca.csv").lines().count(),
        1 + 3 + 2
    );
    // Figures 2, 3, 14 (per panel), 4 (language groups).
    for f in [
        "fig2_llama_bactrian-x-22.svg",
        "fig2_llama_multialpaca.svg",
        "fig3_llama_multialpaca.svg",
        "fig14_xlsum_llama_bactrian-x-22.svg",
        "fig14_xnli_llama_multialpaca.svg",
        "fig4_llama.svg",
    ] {
        assert!(read(f).contains("<svg"), "{f}");
    }
    assert!(!out.join("fig2_llama_alpaca.svg").exists());
    let fig4 = read("fig4.csv");
    assert!(
        fig4.contains("Group 2 (Bactrian-X-22 only)")
            && fig4.contains("Group 3 (in no training set)"),
        "{fig4}"
    );
    // AlpacaEval-style win rates per cell and the best cell per set.
    let ae = read("alpaca_eval.csv");
    assert_eq!(ae.lines().count(), 1 + 17);
    let t2 = read("table2.csv");
    assert_eq!(
        t2.lines().next().unwrap(),
        "model,set,r,bits,win_rate,ci_low,ci_high"
    );
    for l in t2.lines().skip(1) {
        let v: Vec<f64> = l.split(',').skip(4).map(|x| x.parse().unwrap()).collect();
        assert!(
            (0.0..=100.0).contains(&v[0]) && v[1] <= v[0] && v[0] <= v[2],
            "{l}"
        );
    }
    assert!(out.join("alpaca_eval_items").read_dir().unwrap().count() == 17);
}
