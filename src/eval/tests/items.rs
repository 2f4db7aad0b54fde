//! Joining items files: hand-made files in the runner's format (written by `write_items`),
//! files written by real evaluations with the mock model, and every error.

use std::path::{Path, PathBuf};

use serde_json::json;

use super::{fixture, opts, Mock};
use crate::eval::{evaluate_with, join_items, write_items, EvalHooks, ItemsSource, JoinOptions};
use crate::table::Table;
use crate::value::{Row, Value};

/// A choice-task record exactly as `run_choice` writes it (same keys, same order).
fn choice_rec(lang: &str, i: usize, hash: &str, correct: bool) -> Row {
    let gold = i % 3;
    let pred = if correct { gold } else { (gold + 1) % 3 };
    let hit = f64::from(u8::from(correct));
    let v = json!({
        "task": "xnli", "lang": lang, "id": format!("{lang}-test-{i}"), "prompt_hash": hash,
        "prediction": pred, "gold": gold, "choices": ["Ja", "Also", "Nein"],
        "scores": [-1.5, -2.25, -3.0], "correct": correct,
        "metrics": {"acc": hit, "acc_norm": hit, "acc_bytes": hit},
    });
    match v {
        Value::Object(r) => r,
        _ => unreachable!(),
    }
}

fn write(dir: &Path, name: &str, recs: &[Row]) -> PathBuf {
    let p = dir.join(name);
    write_items(&p.display().to_string(), recs).unwrap();
    p
}

fn src(label: &str, path: &Path) -> ItemsSource {
    ItemsSource {
        label: label.into(),
        path: path.to_path_buf(),
        sha256: None,
    }
}

fn ints(t: &Table, col: &str) -> Vec<i64> {
    t.column(col)
        .unwrap()
        .iter()
        .map(|v| v.as_i64().unwrap())
        .collect()
}

fn bools(v: &[i64]) -> Vec<bool> {
    v.iter().map(|&x| x == 1).collect()
}

/// Items 0..8: en-test-0..3 then de-test-0..3, as in the mcnemar doc example:
/// a = 1 1 0 1 1 0 1 1, b = 0 1 0 0 1 1 0 0, c = 1 0 0 1 1 1 1 0.
const A: [bool; 8] = [true, true, false, true, true, false, true, true];
const B: [bool; 8] = [false, true, false, false, true, true, false, false];
const C: [bool; 8] = [true, false, false, true, true, true, true, false];

fn key(k: usize) -> (&'static str, usize) {
    if k < 4 {
        ("en", k)
    } else {
        ("de", k - 4)
    }
}

fn recs(outcomes: &[bool; 8], order: &[usize]) -> Vec<Row> {
    order
        .iter()
        .map(|&k| {
            let (lang, i) = key(k);
            choice_rec(lang, i, &format!("h{k}"), outcomes[k])
        })
        .collect()
}

fn three_files(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let fwd: Vec<usize> = (0..8).collect();
    let rev: Vec<usize> = (0..8).rev().collect();
    let mixed = [4, 0, 5, 1, 6, 2, 7, 3];
    (
        write(dir, "a.jsonl", &recs(&A, &fwd)),
        write(dir, "b.jsonl", &recs(&B, &rev)),
        write(dir, "c.jsonl", &recs(&C, &mixed)),
    )
}

#[test]
fn joins_three_files_by_item_and_feeds_mcnemar() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b, c) = three_files(dir.path());
    let sources = [
        src("lora/seed1", &a),
        src("dora/seed1", &b),
        src("vera/seed1", &c),
    ];
    let t = join_items(&sources, &JoinOptions::default()).unwrap();
    assert_eq!(
        t.columns(),
        [
            "task",
            "lang",
            "id",
            "lora/seed1",
            "dora/seed1",
            "vera/seed1"
        ]
    );
    assert_eq!(t.len(), 8);
    // Rows in the first file's order, identity copied, b and c realigned from their orders.
    let ids: Vec<String> = t
        .column("id")
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        ids,
        [
            "en-test-0",
            "en-test-1",
            "en-test-2",
            "en-test-3",
            "de-test-0",
            "de-test-1",
            "de-test-2",
            "de-test-3"
        ]
    );
    assert_eq!(t.rows()[5]["lang"], json!("de"));
    assert_eq!(t.rows()[5]["task"], json!("xnli"));
    assert_eq!(ints(&t, "lora/seed1"), [1, 1, 0, 1, 1, 0, 1, 1]);
    assert_eq!(ints(&t, "dora/seed1"), [0, 1, 0, 0, 1, 1, 0, 0]);
    assert_eq!(ints(&t, "vera/seed1"), [1, 0, 0, 1, 1, 1, 1, 0]);
    // lora vs dora: only lora right on items 0, 3, 6, 7 (n01 = 4), only dora on item 5
    // (n10 = 1); exact p = 2·P(Bin(5, ½) ≤ 1) = 2·6/32 = 0.375.
    let m = crate::stats::mcnemar_items(
        &bools(&ints(&t, "lora/seed1")),
        &bools(&ints(&t, "dora/seed1")),
        true,
        true,
    )
    .unwrap();
    assert_eq!((m.n01, m.n10), (4, 1));
    assert!((m.p - 0.375).abs() < 1e-15, "{}", m.p);
    // lora vs vera: only lora on items 1, 7 (n01 = 2), only vera on item 5 (n10 = 1);
    // p = 2·P(Bin(3, ½) ≤ 1) = 2·4/8 = 1.
    let m = crate::stats::mcnemar_items(
        &bools(&ints(&t, "lora/seed1")),
        &bools(&ints(&t, "vera/seed1")),
        true,
        true,
    )
    .unwrap();
    assert_eq!((m.n01, m.n10), (2, 1));
    assert_eq!(m.p, 1.0);
    // The metric column of a choice task is the same outcome as a number.
    let o = JoinOptions {
        metric: "acc".into(),
        ..JoinOptions::default()
    };
    let t = join_items(&sources[..2], &o).unwrap();
    let acc: Vec<f64> = t.numeric_column("dora/seed1").unwrap();
    assert_eq!(acc, [0.0, 1.0, 0.0, 0.0, 1.0, 1.0, 0.0, 0.0]);
}

#[test]
fn joins_files_written_by_real_evaluations() {
    // Two "variants": the mock's default scorer and one that prefers other continuations.
    // Every joined column must equal that file's per-item `correct`, realigned, and its mean
    // per language the evaluation's `acc`.
    let dir = tempfile::tempdir().unwrap();
    let mut paths = Vec::new();
    let mut rows = Vec::new();
    for (v, name) in ["a", "b"].iter().enumerate() {
        let p = dir.path().join(format!("{name}.jsonl"));
        let o = opts(json!({
            "data": fixture("xnli"), "langs": ["de", "en"], "prompt": "lm-eval",
            "items_file": p.display().to_string(),
        }));
        let mut m = Mock::new();
        if v == 1 {
            m.ll = Box::new(|c, x| -(((c.len() * 7 + x.len() * 13) % 17) as f64) - 0.25);
        }
        let out = evaluate_with(&mut m, "xnli", &o, &mut EvalHooks::default()).unwrap();
        rows.push(out.rows);
        paths.push(p);
    }
    let t = join_items(
        &[src("a", &paths[0]), src("b", &paths[1])],
        &JoinOptions::default(),
    )
    .unwrap();
    assert_eq!(t.len(), 7);
    for (v, label) in ["a", "b"].iter().enumerate() {
        let text = std::fs::read_to_string(&paths[v]).unwrap();
        let want: Vec<i64> = text
            .lines()
            .map(|l| {
                let r: Value = serde_json::from_str(l).unwrap();
                i64::from(r["correct"].as_bool().unwrap())
            })
            .collect();
        let got = ints(&t, label);
        assert_eq!(got, want, "{label}");
        for (li, lang) in ["de", "en"].iter().enumerate() {
            let vals: Vec<f64> = t
                .rows()
                .iter()
                .filter(|r| r["lang"] == json!(lang))
                .map(|r| r[*label].as_f64().unwrap())
                .collect();
            let mean = vals.iter().sum::<f64>() / vals.len() as f64;
            let acc = rows[v][li]["acc"].as_f64().unwrap();
            assert!(
                (mean - acc).abs() < 1e-12,
                "{label} {lang}: {mean} vs {acc}"
            );
        }
    }
    // The two scorers disagree on some item (else the test could not tell columns apart).
    assert_ne!(ints(&t, "a"), ints(&t, "b"));
}

#[test]
fn generation_items_join_on_a_metric() {
    let dir = tempfile::tempdir().unwrap();
    let rec = |id: &str, f1: f64| -> Row {
        match json!({
            "task": "mlqa", "lang": "en", "id": id, "prompt_hash": "p",
            "prediction": "x", "gold": ["y"], "correct": null,
            "metrics": {"exact_match": 0.0, "f1": f1},
        }) {
            Value::Object(r) => r,
            _ => unreachable!(),
        }
    };
    let a = write(dir.path(), "a.jsonl", &[rec("q1", 0.5), rec("q2", 0.25)]);
    let b = write(dir.path(), "b.jsonl", &[rec("q2", 0.75), rec("q1", 1.0)]);
    let o = JoinOptions {
        metric: "f1".into(),
        ..JoinOptions::default()
    };
    let t = join_items(&[src("a", &a), src("b", &b)], &o).unwrap();
    assert_eq!(t.numeric_column("a").unwrap(), [0.5, 0.25]);
    assert_eq!(t.numeric_column("b").unwrap(), [1.0, 0.75]);
    // The default (correct) is null for generation without exact match: the error says why.
    let e = join_items(&[src("a", &a)], &JoinOptions::default())
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("a.jsonl:1: 'correct' is null") && e.contains("exact_match, f1"),
        "{e}"
    );
    let o = JoinOptions {
        metric: "rougeL".into(),
        ..JoinOptions::default()
    };
    let e = join_items(&[src("a", &a)], &o).unwrap_err().to_string();
    assert!(
        e.contains("a.jsonl:1: no metric 'rougeL' (this item has: exact_match, f1"),
        "{e}"
    );
}

fn err(sources: &[ItemsSource], o: &JoinOptions) -> String {
    join_items(sources, o).unwrap_err().to_string()
}

#[test]
fn intersect_keeps_common_items_and_mismatch_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let a = write(dir.path(), "a.jsonl", &recs(&A, &[0, 1, 2, 3, 4, 5]));
    // b lacks items 1 and 4 and has item 7.
    let b = write(dir.path(), "b.jsonl", &recs(&B, &[5, 3, 2, 0, 7]));
    let sources = [src("a", &a), src("b", &b)];
    let e = err(&sources, &JoinOptions::default());
    assert!(
        e.contains("b.jsonl ('b') has other items than")
            && e.contains("than the first file ('a')")
            && e.contains("a.jsonl are missing")
            && e.contains("2 item(s) of")
            && e.contains("are missing (e.g. (task xnli, lang en, id en-test-1))")
            && e.contains(
                "1 item(s) are not in the first file (e.g. (task xnli, lang de, id de-test-3) on line 5)"
            )
            && e.contains("#{ intersect: true }"),
        "{e}"
    );
    let o = JoinOptions {
        intersect: true,
        ..JoinOptions::default()
    };
    let t = join_items(&sources, &o).unwrap();
    let ids: Vec<&str> = t.rows().iter().map(|r| r["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["en-test-0", "en-test-2", "en-test-3", "de-test-1"]);
    assert_eq!(ints(&t, "a"), [1, 0, 1, 0]);
    assert_eq!(ints(&t, "b"), [0, 0, 0, 1]);
    // Nothing in common.
    let c = write(dir.path(), "c.jsonl", &recs(&C, &[6, 7]));
    let e = err(&[src("a", &a), src("c", &c)], &o);
    assert!(
        e.contains("no item is in every file ('a': 6 items, 'c': 2 items)"),
        "{e}"
    );
}

#[test]
fn bad_files_name_the_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (good, _, _) = three_files(d);
    let o = JoinOptions::default();
    let line = |r: &Row| serde_json::to_string(r).unwrap();
    let put = |name: &str, text: String| {
        let p = d.join(name);
        std::fs::write(&p, text).unwrap();
        p
    };
    // Missing file.
    let missing = d.join("nope.jsonl");
    let e = err(&[src("a", &good), src("b", &missing)], &o);
    assert!(
        e.contains(&format!("cannot read items file {}", missing.display())),
        "{e}"
    );
    // Malformed JSON on line 2 (a blank line 3 would be skipped).
    let r = recs(&A, &[0, 1]);
    let p = put(
        "bad.jsonl",
        format!("{}\n{{\"task\": \"xnli\",\n", line(&r[0])),
    );
    let e = err(&[src("a", &p)], &o);
    assert!(e.contains("bad.jsonl:2: not a JSON object:"), "{e}");
    // Not an object; a missing identity field; a wrong type.
    let p = put("arr.jsonl", format!("{}\n\n[1, 2]\n", line(&r[0])));
    let e = err(&[src("a", &p)], &o);
    assert!(e.contains("arr.jsonl:3: not a JSON object: [1,2]"), "{e}");
    let mut no_id = r[1].clone();
    no_id.remove("id");
    let p = put("noid.jsonl", format!("{}\n{}\n", line(&r[0]), line(&no_id)));
    let e = err(&[src("a", &p)], &o);
    assert!(e.contains("noid.jsonl:2: no field 'id'"), "{e}");
    let mut bad_lang = r[1].clone();
    bad_lang.insert("lang".into(), json!(3));
    let p = put("lang.jsonl", format!("{}\n", line(&bad_lang)));
    let e = err(&[src("a", &p)], &o);
    assert!(
        e.contains("lang.jsonl:1: 'lang' must be a string, got 3"),
        "{e}"
    );
    let mut bad_correct = r[1].clone();
    bad_correct.insert("correct".into(), json!("yes"));
    let p = put("corr.jsonl", format!("{}\n", line(&bad_correct)));
    let e = err(&[src("a", &p)], &o);
    assert!(
        e.contains("corr.jsonl:1: 'correct' must be true or false, got \"yes\""),
        "{e}"
    );
    // Duplicate item.
    let p = put(
        "dup.jsonl",
        format!("{}\n{}\n{}\n", line(&r[0]), line(&r[1]), line(&r[0])),
    );
    let e = err(&[src("a", &p)], &o);
    assert!(
        e.contains(
            "dup.jsonl:3: item (task xnli, lang en, id en-test-0) already appears on line 1"
        ),
        "{e}"
    );
    // An empty file, only blank lines, no files at all.
    let p = put("empty.jsonl", String::new());
    let e = err(&[src("a", &good), src("b", &p)], &o);
    assert!(
        e.contains("empty.jsonl: the items file has no items"),
        "{e}"
    );
    let p = put("blank.jsonl", "\n  \n".into());
    assert!(err(&[src("a", &p)], &o).contains("blank.jsonl: the items file has no items"));
    assert!(err(&[], &o).contains("no items files given"));
}

#[test]
fn labels_prompts_and_checksums_are_checked() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b, _) = three_files(dir.path());
    let o = JoinOptions::default();
    assert!(err(&[src("x", &a), src("x", &b)], &o).contains("label 'x': is given twice"));
    assert!(err(&[src("id", &a)], &o).contains("label 'id': is an item column"));
    assert!(err(&[src("", &a)], &o).contains("label '': is empty"));
    let e = err(
        &[src("a", &a)],
        &JoinOptions {
            metric: String::new(),
            ..JoinOptions::default()
        },
    );
    assert!(e.contains("option 'metric': is empty"), "{e}");
    // Another prompt for item de-test-1 (line 3 of the reversed file).
    let mut r = recs(&B, &[7, 6, 5, 4, 3, 2, 1, 0]);
    r[2].insert("prompt_hash".into(), json!("other"));
    let p = write(dir.path(), "p.jsonl", &r);
    let e = err(&[src("a", &a), src("p", &p)], &o);
    assert!(
        e.contains("p.jsonl:3: item (task xnli, lang de, id de-test-1) has prompt_hash other, but")
            && e.contains("a.jsonl has h5")
            && e.contains("check_prompts: false"),
        "{e}"
    );
    let t = join_items(
        &[src("a", &a), src("p", &p)],
        &JoinOptions {
            check_prompts: false,
            ..JoinOptions::default()
        },
    )
    .unwrap();
    assert_eq!(ints(&t, "p"), [0, 1, 0, 0, 1, 1, 0, 0]);
    // A recorded sha256 must match the file.
    let bytes = std::fs::read(&b).unwrap();
    let sha = crate::text::sha256_hex(&bytes);
    let mut sb = src("b", &b);
    sb.sha256 = Some(sha.clone());
    assert_eq!(
        join_items(&[src("a", &a), sb.clone()], &o).unwrap().len(),
        8
    );
    sb.sha256 = Some(sha.to_uppercase());
    assert!(join_items(&[src("a", &a), sb.clone()], &o).is_ok());
    sb.sha256 = Some("0".repeat(64));
    let e = err(&[src("a", &a), sb], &o);
    assert!(
        e.contains(&format!(
            "b.jsonl: its sha256 is {sha}, but 'b' recorded {}",
            "0".repeat(64)
        )) && e.contains("recompute the cell"),
        "{e}"
    );
}
