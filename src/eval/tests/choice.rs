//! Multiple-choice tasks end to end: XNLI, XCOPA, Belebele.
//!
//! The mock scores a continuation by minus its length in code points, so `acc` picks the
//! shortest continuation and `acc_norm` (ll / code points of the choice without the delimiter,
//! -(L+1)/L) the longest. Expected values were worked out by hand from the fixture rows and
//! re-computed with numpy's argmax on the same numbers.

use serde_json::json;

use super::{assert_row_shape, close, f, fixture, opts, Mock};
use crate::eval::{evaluate, evaluate_with, EvalHooks};

#[test]
fn xnli_lm_eval_rows_requests_and_metrics() {
    let mut m = Mock::new();
    let o = opts(json!({"data": fixture("xnli"), "langs": ["de", "en"], "prompt": "lm-eval"}));
    let rows = evaluate(&mut m, "xnli", &o).unwrap();
    assert_eq!(rows.len(), 2);
    for r in &rows {
        assert_row_shape(r, &["acc", "acc_norm", "acc_bytes", "f1_micro", "f1_macro"]);
        assert_eq!(r["task"], json!("xnli"));
    }
    // lm-eval's request: empty context, " " + the whole localized sentence.
    let req = m.requests();
    assert_eq!(req.len(), 3 * 3 + 4 * 3);
    assert_eq!(
        req[0],
        (
            "".to_string(),
            " Der Hund schläft., richtig? Ja, Ein Tier ruht.".to_string()
        )
    );
    assert_eq!(
        req[1].1,
        " Der Hund schläft., richtig? Auch, Ein Tier ruht."
    );
    assert_eq!(req[11].1, " The cat sat, right? No, A cat is sitting");

    // de (parquet): labels 0, 2, 1. acc picks "Ja" (shortest) everywhere: 1/3.
    // acc_norm picks "Auch" (longest, tie with "Nein" -> first): 1/3.
    // acc_bytes: row 1 has one "ä", so -(L+1)/(L+1) = -1 for every choice -> "Ja" (correct);
    // rows 2, 3 are ASCII -> "Auch": row 3 correct. 2/3 — differs from acc.
    let de = &rows[0];
    assert_eq!(
        (de["lang"].clone(), de["n"].clone()),
        (json!("de"), json!(3))
    );
    assert!(close(f(de, "acc"), 1.0 / 3.0));
    assert!(close(f(de, "acc_norm"), 1.0 / 3.0));
    assert!(close(f(de, "acc_bytes"), 2.0 / 3.0));
    // Macro-F1: predictions 0,0,0 vs gold 0,2,1: class 0 TP1 FP2 -> 1/2, others 0: 1/6.
    assert!(close(f(de, "f1_macro"), 1.0 / 6.0));
    // Micro-F1 of single-label predictions is the accuracy: 1 of 3.
    assert!(close(f(de, "f1_micro"), 1.0 / 3.0));

    // en: labels 0, 2, 1, 2. acc picks "No" (2): 2/4. acc_norm picks "Also" (1): 1/4.
    let en = &rows[1];
    assert_eq!(en["n"], json!(4));
    assert!(close(f(en, "acc"), 0.5));
    assert!(close(f(en, "acc_norm"), 0.25));
    assert!(close(f(en, "acc_bytes"), 0.25));
    // Predictions all 2 vs 0,2,1,2: class 2 TP2 FP2 -> 2/3, classes 0, 1 -> 0: 2/9.
    assert!(close(f(en, "f1_macro"), 2.0 / 9.0));
    assert!(close(f(en, "f1_micro"), 0.5));
}

#[test]
fn xnli_alpaca_with_a_shot_from_train() {
    let mut m = Mock::new();
    let o = opts(json!({"data": fixture("xnli"), "langs": ["en"], "shots": 1, "seed": 3}));
    let rows = evaluate(&mut m, "xnli", &o).unwrap();
    let req = m.requests();
    let (ctx, cont) = &req[0];
    assert!(ctx.starts_with("Below is an instruction that describes a task, paired with an input"));
    // One train example with its answer, then the item's prompt.
    assert_eq!(ctx.matches("### Response:\n").count(), 2);
    assert!(ctx.contains("Premise: Train premise"));
    assert!(ctx.ends_with(
        "### Input:\nPremise: The cat sat\nHypothesis: A cat is sitting\n\n### Response:\n"
    ));
    let shot_answer_ok = ctx.contains("### Response:\nentailment\n\nBelow is")
        || ctx.contains("### Response:\nneutral\n\nBelow is");
    assert!(shot_answer_ok, "{ctx}");
    // Alpaca choices are the label words with no delimiter.
    assert_eq!(cont, "entailment");
    // Shortest word "neutral" (label 1) wins acc: gold 0,2,1,2 -> 1/4. acc_norm: -L/L ties at -1
    // -> "entailment" (0): 1/4.
    assert!(close(f(&rows[0], "acc"), 0.25));
    assert!(close(f(&rows[0], "acc_norm"), 0.25));
    // Same seed, same shots; the shot depends only on the seed and the document.
    let mut m2 = Mock::new();
    evaluate(&mut m2, "xnli", &o).unwrap();
    assert_eq!(m.requests(), m2.requests());
}

#[test]
fn xcopa_connectors_and_lowercased_choices() {
    let mut m = Mock::new();
    let o = opts(json!({"data": fixture("xcopa"), "langs": ["et", "zh"], "prompt": "lm-eval"}));
    let rows = evaluate(&mut m, "xcopa", &o).unwrap();
    let req = m.requests();
    // effect -> "seetõttu"; the premise loses its final full stop; choices lowercased.
    assert_eq!(
        req[0],
        (
            "Mees keeras kraani lahti seetõttu".into(),
            " tualett täitus veega.".into()
        )
    );
    assert_eq!(req[1].1, " vesi voolas kraanist välja.");
    assert_eq!(req[4].0, "Naine oli väsinud sest");
    assert_eq!(req[6].0, "那个人打开了水龙头 所以");
    assert_row_shape(&rows[0], &["acc", "acc_norm", "acc_bytes"]);
    // et: (lengths 21/27, gold 1), (22/14, gold 1), (19/15, gold 0):
    // acc picks 0, 1, 1 -> 1/3; acc_norm picks 1, 0, 0 -> 2/3;
    // acc_bytes: -22/22 = -28/28 -> 0; -23/22 > -15/14 -> 0; -20/23 > -16/16 -> 0 -> 1/3.
    assert!(close(f(&rows[0], "acc"), 1.0 / 3.0));
    assert!(close(f(&rows[0], "acc_norm"), 2.0 / 3.0));
    assert!(close(f(&rows[0], "acc_bytes"), 1.0 / 3.0));
    // zh: ("马桶装满了水。" 7 vs "水从龙头流出来了。" 9, gold 1), ("她倒了牛奶。" 6 vs "她没有胃口了。" 7,
    // gold 0): acc picks 0, 0 -> 1/2; acc_norm picks 1, 1 -> 1/2; acc_bytes (3 bytes per
    // character, ll -(L+1)/3L) picks 1, 1 -> 1/2.
    assert_eq!(rows[1]["n"], json!(2));
    assert!(close(f(&rows[1], "acc"), 0.5));
    assert!(close(f(&rows[1], "acc_norm"), 0.5));
}

#[test]
fn belebele_hub_layout_iso_alias_and_template() {
    let mut m = Mock::new();
    let o = opts(
        json!({"data": fixture("belebele"), "langs": ["ur", "eng_Latn"], "prompt": "lm-eval"}),
    );
    let rows = evaluate(&mut m, "belebele", &o).unwrap();
    let req = m.requests();
    assert_eq!(
        req[0].0,
        "P: یہ ایک پیراگراف ہے 0.\nQ: Q0?\nA: alpha\nB: beta\nC: gamma\nD: delta\nAnswer:"
    );
    let letters: Vec<&str> = req.iter().take(4).map(|r| r.1.as_str()).collect();
    assert_eq!(letters, [" A", " B", " C", " D"]);
    // Equal lengths -> every metric picks A. ur golds 1,2,1,4 -> 1/2; en golds 1,1 -> 1.
    assert_eq!(rows[0]["lang"], json!("ur"));
    assert!(close(f(&rows[0], "acc"), 0.5) && close(f(&rows[0], "acc_norm"), 0.5));
    assert_eq!(rows[1]["lang"], json!("eng_Latn"));
    assert!(close(f(&rows[1], "acc"), 1.0));
    // Alpaca family: the instruction and the options as input, letters without delimiter.
    let mut m2 = Mock::new();
    let o2 = opts(json!({"data": fixture("belebele"), "langs": ["en"], "limit": 1}));
    let rows2 = evaluate(&mut m2, "belebele", &o2).unwrap();
    assert_eq!(rows2[0]["n"], json!(1));
    let r2 = m2.requests();
    assert!(r2[0]
        .0
        .contains("### Input:\nPassage: This is a passage 0.\nQuestion: Q0?\nA: alpha\n"));
    assert_eq!(r2[0].1, "A");
}

#[test]
fn batch_size_never_changes_a_score() {
    let dir = tempfile::tempdir().unwrap();
    let mut outputs = Vec::new();
    for bs in [1, 2, 5, 64] {
        let items = dir.path().join(format!("items{bs}.jsonl"));
        let o = opts(json!({
            "data": fixture("xnli"), "langs": ["de", "en"], "prompt": "lm-eval",
            "batch_size": bs, "items_file": items.display().to_string(),
        }));
        let mut m = Mock::new();
        m.ll = Box::new(|c, x| -(((c.len() * 7 + x.len() * 13) % 17) as f64) - 0.25);
        let mut calls = 0usize;
        let mut last = (0, 0);
        let mut progress = |p: crate::eval::Progress<'_>| {
            calls += 1;
            last = (p.done, p.total);
        };
        let mut hooks = EvalHooks {
            progress: Some(&mut progress),
            interrupt: None,
            template: None,
        };
        let out = evaluate_with(&mut m, "xnli", &o, &mut hooks).unwrap();
        // 21 requests in chunks of bs.
        assert_eq!(calls, 21usize.div_ceil(bs));
        assert_eq!(last, (21, 21));
        assert!(m.ll_calls.iter().all(|c| c.len() <= bs));
        outputs.push((out.rows, std::fs::read_to_string(&items).unwrap()));
    }
    for o in &outputs[1..] {
        assert_eq!(o, &outputs[0]);
    }
    // The items file: one line per item with the documented fields.
    let lines: Vec<serde_json::Value> = outputs[0]
        .1
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 7);
    let first = lines[0].as_object().unwrap();
    let keys: Vec<&str> = first.keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        [
            "task",
            "lang",
            "id",
            "prompt_hash",
            "prediction",
            "gold",
            "choices",
            "scores",
            "correct",
            "metrics"
        ]
    );
    assert_eq!(first["id"], json!("de-validation-0"));
    assert_eq!(first["scores"].as_array().unwrap().len(), 3);
    assert_eq!(first["prompt_hash"].as_str().unwrap().len(), 16);
}
