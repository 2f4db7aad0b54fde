//! `task_examples`: training rows whose `prompt + output` is exactly the text `evaluate` scores
//! for the gold answer, per language and split, with option and data errors.

use super::*;
use crate::eval::{evaluate, task_examples, ExampleOptions};
use serde_json::json;

fn ex(v: serde_json::Value) -> ExampleOptions {
    match serde_json::from_value(v) {
        Ok(o) => o,
        Err(e) => panic!("bad test options: {e}"),
    }
}

fn s<'a>(row: &'a Row, key: &str) -> &'a str {
    row.get(key).and_then(Value::as_str).unwrap_or("")
}

#[test]
fn xnli_rows_are_the_gold_requests_of_evaluate() {
    let data = fixture("multitask/xnli");
    for prompt in ["lm-eval", "alpaca"] {
        let d = task_examples(
            "xnli",
            &ex(json!({"data": data, "langs": ["sw", "en"], "split": "validation", "prompt": prompt})),
        )
        .unwrap();
        // 9 validation rows per language, in the order of `langs`.
        assert_eq!(d.len(), 18);
        let langs: Vec<&str> = d.rows().iter().map(|r| s(r, "lang")).collect();
        assert_eq!(&langs[..9], &["sw"; 9]);
        assert_eq!(&langs[9..], &["en"; 9]);
        // evaluate sends one (context, continuation) per choice; the gold one must be the row.
        let mut m = Mock::new();
        let o = opts(json!({"data": data, "langs": ["sw", "en"], "prompt": prompt}));
        evaluate(&mut m, "xnli", &o).unwrap();
        let reqs = m.requests();
        assert_eq!(reqs.len(), 18 * 3);
        let mut labels = Vec::new();
        for l in ["sw", "en"] {
            let text = std::fs::read_to_string(format!("{data}/{l}/validation.jsonl")).unwrap();
            for line in text.lines() {
                let v: serde_json::Value = serde_json::from_str(line).unwrap();
                labels.push(v["label"].as_u64().unwrap() as usize);
            }
        }
        for (i, row) in d.rows().iter().enumerate() {
            assert_eq!(s(row, "task"), "xnli");
            let text = format!("{}{}", s(row, "prompt"), s(row, "output"));
            let matching: Vec<usize> = (0..3)
                .filter(|&k| {
                    let (c, x) = &reqs[3 * i + k];
                    format!("{c}{x}") == text
                })
                .collect();
            assert_eq!(matching, [labels[i]], "{prompt} row {i}: {row:?}");
            assert_eq!(
                reqs[3 * i + labels[i]].0,
                s(row, "prompt"),
                "{prompt} row {i}"
            );
        }
        // The label decides which: the first sw row is an entailment ("Ndiyo" / "entailment").
        let first = &d.rows()[0];
        let want = if prompt == "alpaca" {
            "entailment".to_string()
        } else {
            " Hamisi anasoma kitabu maktabani., sahihi? Ndiyo, Hamisi yuko maktabani.".to_string()
        };
        assert_eq!(s(first, "output"), want);
        assert_eq!(s(first, "id"), "sw-validation-0");
    }
}

#[test]
fn tydiqa_rows_by_id_prefix_with_the_first_answer_and_limit() {
    let data = fixture("multitask/tydiqa");
    // Default split: the task's few-shot split (train); default langs: those with rows.
    let d = task_examples("tydiqa", &ex(json!({"data": data, "prompt": "lm-eval"}))).unwrap();
    assert_eq!(d.len(), 27);
    let ar: Vec<&Row> = d.rows().iter().filter(|r| s(r, "lang") == "ar").collect();
    assert_eq!(ar.len(), 9);
    assert_eq!(s(ar[0], "id"), "arabic-train-1");
    assert_eq!(
        s(ar[0], "prompt"),
        "السياق: نيروبي هي عاصمة كينيا.\n\nالسؤال: ما هي عاصمة كينيا؟\n\nالإجابة:"
    );
    assert_eq!(s(ar[0], "output"), " نيروبي");
    let d = task_examples(
        "tydiqa",
        &ex(json!({"data": data, "langs": ["sw"], "limit": 2})),
    )
    .unwrap();
    assert_eq!(d.len(), 2);
    assert!(s(&d.rows()[1], "prompt").ends_with("### Response:\n"));
    assert_eq!(s(&d.rows()[1], "output"), "Kairo");
}

#[test]
fn bad_options_and_missing_data_are_errors() {
    let data = fixture("multitask/xnli");
    let e = task_examples("xnlj", &ExampleOptions::default())
        .unwrap_err()
        .to_string();
    assert!(e.contains("unknown task 'xnlj'"), "{e}");
    let e = task_examples("xnli", &ex(json!({"data": data, "langs": ["de"]})))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("no data for language 'de'") && e.contains("sw/train.jsonl"),
        "{e}"
    );
    let e = task_examples("xnli", &ex(json!({"data": data, "limit": -1})))
        .unwrap_err()
        .to_string();
    assert!(e.contains("'limit'") && e.contains("-1"), "{e}");
    let e = task_examples("xnli", &ex(json!({"data": data, "prompt": "chat"})))
        .unwrap_err()
        .to_string();
    assert!(e.contains("unknown prompt family 'chat'"), "{e}");
    let e = task_examples("xnli", &ExampleOptions::default())
        .unwrap_err()
        .to_string();
    assert!(e.contains("needs the path of its data"), "{e}");
    assert!(serde_json::from_value::<ExampleOptions>(json!({"shots": 1})).is_err());
}
