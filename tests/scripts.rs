//! The shipped studies and examples: every script compiles (`peftlab check`), and the quickstart
//! runs end to end on a reduced grid, writing its table, statistics and SVG.

mod common;
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

#[test]
fn quickstart_runs_on_a_small_grid() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out").display().to_string();
    let _ = fixture("models/tiny-llama");
    let r = run(
        dir.path(),
        &[
            "run",
            &repo("examples/quickstart.rhai"),
            "--out",
            &out,
            "--set",
            "seeds=[1,2]",
            "--set",
            "methods=[\"lora\",\"vera\"]",
            "--set",
            "total=32",
            "--set",
            "epochs=2",
            "--set",
            "limit=60",
        ],
    );
    assert_eq!(r.code, Some(0), "{}\n{}", r.stdout, r.stderr);
    for needle in [
        "One-way ANOVA",
        "Tukey HSD",
        "Ranking (target language)",
        "Two-way ANOVA",
        "Outputs:",
    ] {
        // (60 items per language: the accuracies of the 8 cells differ, so every test runs.)
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
    assert!(
        svg.starts_with("<svg") || svg.contains("<svg"),
        "not an SVG"
    );
    let csv = std::fs::read_to_string(dir.path().join("out/results.csv")).unwrap();
    assert_eq!(csv.lines().count(), 1 + 2 * 2 * 2, "{csv}");
}
