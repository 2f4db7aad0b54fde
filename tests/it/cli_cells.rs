//! `run_cells`: resumable, shardable study grids with JSON results.

use crate::common;

use std::path::Path;

use common::{run, write};

const STUDY: &str = r#"
import "std/study" as study;
let cells = study::grid(#{ method: ["lora", "dora"], r: [8, 16], seed: [1, 2] });
let rows = run_cells("grid", cells, |c| {
    let base = if c.method == "lora" { 0.5 } else { 0.6 };
    #{ acc: base + c.r / 100.0 + c.seed / 1000.0, provenance: #{ data: "demo" } }
});
print(rows.len());
write_json(rows, out_path("rows.json"));
"#;

fn rows(dir: &Path, out: &str) -> serde_json::Value {
    let text = std::fs::read_to_string(dir.join(out).join("rows.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

#[test]
fn second_run_skips_completed_cells() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "s.rhai", STUDY);
    let r = run(dir.path(), &["run", "s.rhai", "--out", "out"]);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    assert_eq!(r.stdout, "8\n");
    assert!(
        r.stderr
            .contains("run_cells 'grid': 8 cells, 0 done, 8 to run"),
        "{}",
        r.stderr
    );
    assert_eq!(r.stderr.matches("  run  [").count(), 8, "{}", r.stderr);
    let first = rows(dir.path(), "out");
    // Cell order is the grid order; metrics are merged into the cell fields.
    assert_eq!(
        first[0],
        serde_json::json!({"method": "lora", "r": 8, "seed": 1, "acc": 0.581})
    );
    assert_eq!(
        first[7],
        serde_json::json!({"method": "dora", "r": 16, "seed": 2, "acc": 0.762})
    );

    let files: Vec<_> = std::fs::read_dir(dir.path().join("out/grid"))
        .unwrap()
        .collect();
    assert_eq!(files.len(), 8);
    // One stored result: cell, metrics and provenance; the file name is the cell key, the
    // first 12 hex digits of sha256 of the canonical cell JSON. Checked with
    // python3 -c 'import hashlib;print(hashlib.sha256(b"{\"method\":\"lora\",\"r\":8,\"seed\":1}").hexdigest()[:12])'
    let rec: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("out/grid/e21eba81e4ab.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(
        rec["cell"],
        serde_json::json!({"method": "lora", "r": 8, "seed": 1})
    );
    assert_eq!(rec["metrics"], serde_json::json!({"acc": 0.581}));
    let prov = &rec["provenance"];
    assert_eq!(prov["peftlab_version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(prov["seed"], 1);
    assert_eq!(prov["data"], "demo");
    assert_eq!(prov["cell_key"], "e21eba81e4ab");
    assert_eq!(prov["cell_index"], 0);
    for k in ["started", "finished"] {
        let t = prov[k].as_str().unwrap();
        assert!(
            t.len() == 20 && t.ends_with('Z') && t.as_bytes()[10] == b'T',
            "{k}: {t}"
        );
    }

    let r = run(dir.path(), &["run", "s.rhai", "--out", "out"]);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    assert!(
        r.stderr.contains("8 cells, 8 done, 0 to run"),
        "{}",
        r.stderr
    );
    assert_eq!(r.stderr.matches("  skip [").count(), 8, "{}", r.stderr);
    assert!(
        r.stderr
            .contains("  skip [1/8] e21eba81e4ab method=lora r=8 seed=1 (done)"),
        "{}",
        r.stderr
    );
    assert!(!r.stderr.contains("  run  ["), "{}", r.stderr);
    assert_eq!(rows(dir.path(), "out"), first);

    // A deleted result is recomputed, the others are skipped.
    std::fs::remove_file(dir.path().join("out/grid/e21eba81e4ab.json")).unwrap();
    let r = run(dir.path(), &["run", "s.rhai", "--out", "out"]);
    assert!(
        r.stderr.contains("8 cells, 7 done, 1 to run"),
        "{}",
        r.stderr
    );
    assert_eq!(rows(dir.path(), "out"), first);
}

#[test]
fn shards_then_collect_equal_an_unsharded_run() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "s.rhai", STUDY);
    let r = run(dir.path(), &["run", "s.rhai", "--out", "full"]);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    let full = rows(dir.path(), "full");

    let r1 = run(
        dir.path(),
        &["run", "s.rhai", "--out", "sh", "--shard", "1/2"],
    );
    assert_eq!(r1.code, Some(0), "{}", r1.stderr);
    // Shard 1/2 runs the cells with even 0-based index: [1/8], [3/8], ...
    assert!(
        r1.stderr.contains("  run  [1/8]") && r1.stderr.contains("  run  [3/8]"),
        "{}",
        r1.stderr
    );
    assert!(!r1.stderr.contains("  run  [2/8]"), "{}", r1.stderr);
    assert_eq!(r1.stdout, "4\n");

    // Collecting before the second shard ran is an error listing what is missing.
    let early = run(dir.path(), &["run", "s.rhai", "--out", "sh", "--collect"]);
    assert_eq!(early.code, Some(1));
    assert!(
        early
            .stderr
            .contains("run_cells: 4 of 8 cells have no result in"),
        "{}",
        early.stderr
    );
    assert!(
        early.stderr.contains("[2] method=lora r=8 seed=2"),
        "{}",
        early.stderr
    );

    let r2 = run(
        dir.path(),
        &["run", "s.rhai", "--out", "sh", "--shard", "2/2"],
    );
    assert_eq!(r2.code, Some(0), "{}", r2.stderr);
    assert!(
        r2.stderr.contains("  run  [2/8]") && !r2.stderr.contains("  run  [1/8]"),
        "{}",
        r2.stderr
    );
    assert_eq!(r2.stdout, "8\n");

    let c = run(dir.path(), &["run", "s.rhai", "--out", "sh", "--collect"]);
    assert_eq!(c.code, Some(0), "{}", c.stderr);
    assert!(!c.stderr.contains("  run  ["), "{}", c.stderr);
    assert_eq!(rows(dir.path(), "sh"), full);
}

#[test]
fn bad_cells_and_results_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        (
            "run_cells(\"g\", [1], |c| #{});",
            "run_cells: cell 1 is not a map (got i64)",
        ),
        (
            "run_cells(\"g\", [#{a: 1}, #{a: 1}], |c| #{});",
            "run_cells: cells 1 and 2 are identical (a=1)",
        ),
        (
            "run_cells(\"g\", [#{a: 1}], |c| 5);",
            "run_cells: the cell function must return a map of metrics (got i64)",
        ),
        (
            "run_cells(\"g\", [#{a: 1}], |c| #{ a: 2 });",
            "run_cells: metric 'a' = 2 contradicts the cell field 'a' = 1",
        ),
        (
            "run_cells(\"../g\", [#{a: 1}], |c| #{});",
            "run_cells: invalid study name '../g'",
        ),
        (
            "run_cells(\"g\", [#{a: stopwatch()}], |c| #{});",
            "run_cells: cell 1: 'a': a value of type Stopwatch cannot be stored as JSON",
        ),
        (
            "run_cells(\"g\", [#{a: 1}], |c| #{}, #{ rerun: 1 });",
            "run_cells: option 'rerun': expected a bool",
        ),
    ];
    for (i, (code, expected)) in cases.iter().enumerate() {
        let name = format!("c{i}.rhai");
        write(dir.path(), &name, code);
        let r = run(dir.path(), &["run", &name, "--out", "o"]);
        assert_eq!(r.code, Some(1), "{code}");
        assert!(r.stderr.contains(expected), "{code}\n{}", r.stderr);
        r.assert_no_panic();
    }
    // An error inside the closure stops the run; the cells before it keep their results.
    write(dir.path(), "e.rhai", "run_cells(\"g\", [#{a: 1}, #{a: 2}], |c| { if c.a == 2 { throw \"boom\"; } #{ x: 1 } });\n");
    let r = run(dir.path(), &["run", "e.rhai", "--out", "o2"]);
    assert_eq!(r.code, Some(1));
    assert!(
        r.stderr.contains("boom") && r.stderr.contains("in closure"),
        "{}",
        r.stderr
    );
    assert_eq!(
        std::fs::read_dir(dir.path().join("o2/g")).unwrap().count(),
        1
    );
    // rerun: recompute although stored.
    write(
        dir.path(),
        "rr.rhai",
        "run_cells(\"g\", [#{a: 1}], |c| #{ x: 1 }, #{ rerun: true });\n",
    );
    let r = run(dir.path(), &["run", "rr.rhai", "--out", "o2"]);
    assert!(r.stderr.contains("  run  [1/1]"), "{}", r.stderr);
}

const SET_STUDY: &str = r#"
let lr = get_setting("lr", 0.001);
let rows = run_cells("g", [#{ r: 4 }, #{ r: 8 }], |c| #{ loss: lr * c.r });
print(rows.len());
"#;

#[test]
fn results_made_under_other_settings_are_not_reused() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "s.rhai", SET_STUDY);
    let r = run(
        dir.path(),
        &["run", "s.rhai", "--out", "o", "--set", "lr=2e-4"],
    );
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    // The record stores the settings and the script's hash.
    let first = std::fs::read_dir(dir.path().join("o/g"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let rec: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(first).unwrap()).unwrap();
    assert_eq!(rec["settings"], serde_json::json!({"lr": "2e-4"}));
    assert_eq!(rec["script_sha256"].as_str().map(str::len), Some(64));

    // The same value written differently is the same setting: reused.
    let r = run(
        dir.path(),
        &["run", "s.rhai", "--out", "o", "--set", "lr=0.0002"],
    );
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    assert!(
        r.stderr.contains("2 cells, 2 done, 0 to run"),
        "{}",
        r.stderr
    );

    // Another value, a missing or an extra setting: an error naming it and the way out, with
    // -q too; nothing is recomputed or overwritten.
    let before: Vec<String> = std::fs::read_dir(dir.path().join("o/g"))
        .unwrap()
        .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap())
        .collect();
    let cases: [(&[&str], &str); 3] = [
        (
            &["--set", "lr=1e-3"],
            "'lr' stored with --set lr=2e-4, this run has --set lr=1e-3",
        ),
        (
            &[],
            "'lr' stored with --set lr=2e-4, this run has no --set lr",
        ),
        (
            &["--set", "lr=2e-4", "--set", "model=m2"],
            "'model' stored with no --set model, this run has --set model=m2",
        ),
    ];
    for (extra, want) in cases {
        let mut args = vec!["-q", "run", "s.rhai", "--out", "o"];
        args.extend_from_slice(extra);
        let r = run(dir.path(), &args);
        r.assert_no_panic();
        assert_eq!(r.code, Some(1), "{extra:?}: {}", r.stderr);
        assert!(
            r.stderr
                .contains("run_cells 'g': the stored result of cell [1/2]")
                && r.stderr.contains("r=4")
                && r.stderr.contains(want)
                && r.stderr.contains("--rerun")
                && r.stderr.contains("rerun: true")
                && r.stderr.contains("another --out"),
            "{extra:?}:\n{}",
            r.stderr
        );
        assert!(r.stderr.contains("s.rhai:3:"), "no position: {}", r.stderr);
    }
    let after: Vec<String> = std::fs::read_dir(dir.path().join("o/g"))
        .unwrap()
        .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap())
        .collect();
    assert_eq!(before, after);

    // rerun: true recomputes under the new settings, which are then stored.
    write(
        dir.path(),
        "rr.rhai",
        &SET_STUDY.replace("c.r });", "c.r }, #{ rerun: true });"),
    );
    let r = run(
        dir.path(),
        &["run", "rr.rhai", "--out", "o", "--set", "lr=1e-3"],
    );
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    assert_eq!(r.stderr.matches("  run  [").count(), 2, "{}", r.stderr);
    write(dir.path(), "s2.rhai", SET_STUDY);
    let r = run(
        dir.path(),
        &["run", "s2.rhai", "--out", "o", "--set", "lr=0.001"],
    );
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    assert!(r.stderr.contains("2 done, 0 to run"), "{}", r.stderr);

    // `peftlab run --rerun` recomputes every cell of the unchanged script.
    let r = run(
        dir.path(),
        &["run", "s2.rhai", "--out", "o", "--set", "lr=0.5", "--rerun"],
    );
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    assert_eq!(r.stderr.matches("  run  [").count(), 2, "{}", r.stderr);
    let r = run(
        dir.path(),
        &["run", "s2.rhai", "--out", "o", "--set", "lr=0.5"],
    );
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    assert!(r.stderr.contains("2 done, 0 to run"), "{}", r.stderr);
}

#[test]
fn an_edited_script_is_reported_even_when_quiet() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "s.rhai", SET_STUDY);
    let r = run(dir.path(), &["run", "s.rhai", "--out", "o"]);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    let r = run(dir.path(), &["-q", "run", "s.rhai", "--out", "o"]);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    assert!(!r.stderr.contains("warning"), "{}", r.stderr);
    write(dir.path(), "s.rhai", &format!("// edited\n{SET_STUDY}"));
    let r = run(dir.path(), &["-q", "run", "s.rhai", "--out", "o"]);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    assert!(
        r.stderr
            .contains("warning: run_cells 'g': 2 stored result(s)")
            && r.stderr.contains("different version of the script text")
            && r.stderr.contains("rerun: true"),
        "{}",
        r.stderr
    );
}

#[test]
fn old_records_without_settings_use_their_provenance() {
    // A result stored before records carried `settings`: its provenance.settings decides.
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "s.rhai", SET_STUDY);
    let r = run(
        dir.path(),
        &["run", "s.rhai", "--out", "o", "--set", "lr=2e-4"],
    );
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    for e in std::fs::read_dir(dir.path().join("o/g")).unwrap() {
        let p = e.unwrap().path();
        let mut rec: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap();
        let obj = rec.as_object_mut().unwrap();
        obj.remove("settings");
        obj.remove("script_sha256");
        assert_eq!(
            rec["provenance"]["settings"],
            serde_json::json!({"lr": "2e-4"})
        );
        std::fs::write(&p, rec.to_string()).unwrap();
    }
    let r = run(
        dir.path(),
        &["run", "s.rhai", "--out", "o", "--set", "lr=2e-4"],
    );
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    assert!(!r.stderr.contains("warning"), "{}", r.stderr);
    let r = run(
        dir.path(),
        &["run", "s.rhai", "--out", "o", "--set", "lr=0.5"],
    );
    assert_eq!(r.code, Some(1), "{}", r.stderr);
    assert!(
        r.stderr.contains("'lr' stored with --set lr=2e-4"),
        "{}",
        r.stderr
    );
}
