//! Generation tasks end to end: MLQA, XQuAD, TyDiQA-GoldP, XL-Sum. The mock answers with a
//! fixed string per question (with a leading space, which evaluation strips). Expected metric
//! values are the hand-checked ones of the metric unit tests (MLQA: also re-computed with the
//! official script's functions; ROUGE: with `rouge-score` given the same tokens).

use serde_json::json;

use super::{assert_row_shape, close, f, fixture, opts, Mock};
use crate::eval::{evaluate, evaluate_with, EvalHooks};

#[test]
fn mlqa_arabic_and_chinese_official_normalisation() {
    let mut m = Mock::with_answers(&[
        ("ماذا قرأ الولد؟", "فالكتاب"),
        ("أين الكتاب؟", "الكتاب على الطاولة؟"),
        ("中国的首都是哪里？", "北京是首都。"),
        ("他住在哪里？", "“北京”"),
    ]);
    let o = opts(json!({"data": fixture("mlqa"), "langs": ["ar", "zh"], "prompt": "lm-eval"}));
    let rows = evaluate(&mut m, "mlqa", &o).unwrap();
    assert_row_shape(&rows[0], &["exact_match", "f1"]);
    // Prompt and generation settings of lm-eval's mlqa tasks.
    let (prompts, max_new, stop) = &m.gen_calls[0];
    assert_eq!(
        prompts[0],
        "Context: ذهب الولد إلى المكتبة وقرأ فالكتاب.\n\nQuestion: ماذا قرأ الولد؟\n\nAnswer:"
    );
    assert_eq!((*max_new, stop.clone()), (32, vec!["\n".to_string()]));
    // ar: "فالكتاب" vs "الكتاب": official rule -> [ف, كتاب] vs [كتاب]: EM 0, F1 2/3;
    // "الكتاب على الطاولة؟" vs first gold "كتاب على طاولة": EM 1, F1 1.
    assert!(close(f(&rows[0], "exact_match"), 0.5));
    assert!(close(f(&rows[0], "f1"), 5.0 / 6.0));
    // zh: "北京是首都。" vs "首都北京": EM 0, F1 8/9; "“北京”" vs "北京。": EM 1, F1 1.
    assert!(close(f(&rows[1], "exact_match"), 0.5));
    assert!(close(f(&rows[1], "f1"), 17.0 / 18.0));
}

#[test]
fn xquad_localized_prompt_squad_metrics_and_shots() {
    let answers = [
        ("Was ist die Hauptstadt?", "Berlin."),
        ("Wann wurde es gebaut?", "1998"),
        ("Wie heißt der Fluss?", "Der Fluss Spree"),
    ];
    let mut m = Mock::with_answers(&answers);
    let o = opts(json!({"data": fixture("xquad"), "langs": ["de"], "prompt": "lm-eval"}));
    let rows = evaluate(&mut m, "xquad", &o).unwrap();
    assert_eq!(
        m.gen_calls[0].0[0],
        "Kontext: Die Hauptstadt ist Berlin.\n\nFrage: Was ist die Hauptstadt?\n\nAntwort:"
    );
    // "Berlin." = "Berlin": EM 1, F1 1. "1998" vs "im Jahr 1998": EM 0, P 1, R 1/3, F1 1/2.
    // "Der Fluss Spree" vs "Spree": EM 0, F1 1/2. Means: EM 1/3, F1 2/3.
    assert!(close(f(&rows[0], "exact_match"), 1.0 / 3.0));
    assert!(close(f(&rows[0], "f1"), 2.0 / 3.0));

    // One shot from the same split: never the item itself, `q + " " + answer + "\n\n"` first.
    let mut m1 = Mock::with_answers(&answers);
    let o1 = opts(
        json!({"data": fixture("xquad"), "langs": ["de"], "prompt": "lm-eval", "shots": 1, "seed": 7}),
    );
    let rows1 = evaluate(&mut m1, "xquad", &o1).unwrap();
    for p in &m1.gen_calls[0].0 {
        let parts: Vec<&str> = p.split("\n\nKontext: ").collect();
        assert_eq!(parts.len(), 2, "{p}");
        assert_eq!(p.matches("Frage: ").count(), 2);
        let shot_q = parts[0]
            .split("Frage: ")
            .nth(1)
            .unwrap()
            .split("\n\n")
            .next()
            .unwrap();
        let own_q = parts[1]
            .split("Frage: ")
            .nth(1)
            .unwrap()
            .split("\n\n")
            .next()
            .unwrap();
        assert_ne!(shot_q, own_q);
        assert!(parts[0].starts_with("Kontext: "));
        let gold_of_shot = ["Berlin", "im Jahr 1998", "Spree"];
        assert!(
            gold_of_shot
                .iter()
                .any(|g| parts[0].ends_with(&format!("Antwort: {g}"))),
            "{p}"
        );
    }
    // The answers do not depend on the shots here, so the metrics are unchanged.
    assert_eq!(rows1, rows);
    // Too few documents for the shots: zh has one validation row.
    let bad = opts(json!({"data": fixture("xquad"), "langs": ["zh"], "shots": 1}));
    let e = evaluate(&mut Mock::new(), "xquad", &bad)
        .unwrap_err()
        .to_string();
    assert!(e.contains("option 'shots'") && e.contains("has 1"), "{e}");
}

#[test]
fn tydiqa_languages_from_id_prefix_in_one_parquet() {
    let mut m = Mock::with_answers(&[
        ("ما عاصمة مصر؟", "القاهرة"),
        ("What is the capital of France?", "Paris"),
        ("What is long?", "river"),
        ("Mji mkuu wa Kenya ni upi?", "mji mkuu"),
    ]);
    let o =
        opts(json!({"data": fixture("tydiqa"), "langs": ["ar", "en", "sw"], "prompt": "lm-eval"}));
    let rows = evaluate(&mut m, "tydiqa", &o).unwrap();
    let ns: Vec<_> = rows.iter().map(|r| r["n"].clone()).collect();
    assert_eq!(ns, [json!(1), json!(2), json!(1)]);
    assert!(m.gen_calls[0].0[0].starts_with("السياق: القاهرة عاصمة مصر.\n\nالسؤال: "));
    assert!(m.gen_calls[0].0[0].ends_with("\n\nالإجابة:"));
    // ar EM 1; en: "Paris" EM 1, "river" matches the gold "river" (also "the river" after
    // article removal): EM 1; sw: "mji mkuu" vs "Nairobi": EM 0, F1 0.
    assert!(close(f(&rows[0], "exact_match"), 1.0));
    assert!(close(f(&rows[1], "exact_match"), 1.0) && close(f(&rows[1], "f1"), 1.0));
    assert!(close(f(&rows[2], "exact_match"), 0.0) && close(f(&rows[2], "f1"), 0.0));
    // Default languages: those with rows in the validation file (ar, en, sw).
    let all = evaluate(&mut m, "tydiqa", &opts(json!({"data": fixture("tydiqa")}))).unwrap();
    let langs: Vec<_> = all.iter().map(|r| r["lang"].clone()).collect();
    assert_eq!(langs, [json!("ar"), json!("en"), json!("sw")]);
}

#[test]
fn xlsum_multilingual_rouge_and_items_file() {
    let dir = tempfile::tempdir().unwrap();
    let items = dir.path().join("sub/items.jsonl");
    let mut m = Mock::with_answers(&[
        ("नई दिल्ली भारत की राजधानी है और", "दिल्ली भारत की राजधानी है"),
        ("A cat was seen.", "The cat sat on the mat."),
        ("Dogs bark. They", "Cats bark."),
    ]);
    let o = opts(json!({
        "data": fixture("xlsum"), "langs": ["hindi", "en"], "prompt": "lm-eval",
        "items_file": items.display().to_string(),
    }));
    let mut hooks = EvalHooks::default();
    let out = evaluate_with(&mut m, "xlsum", &o, &mut hooks).unwrap();
    let rows = &out.rows;
    assert_row_shape(&rows[0], &["rouge1", "rouge2", "rougeL"]);
    assert_eq!(rows[0]["lang"], json!("hindi"));
    assert_eq!(m.gen_calls[0].1, 64);
    assert!(m.gen_calls[0].0[0].starts_with("Article: नई दिल्ली"));
    assert!(m.gen_calls[0].0[0].ends_with("\n\nSummary:"));
    // Hindi: ROUGE-1 10/11, ROUGE-2 4/9, ROUGE-L 8/11 (see metrics::rouge tests).
    assert!(close(f(&rows[0], "rouge1"), 10.0 / 11.0));
    assert!(close(f(&rows[0], "rouge2"), 4.0 / 9.0));
    assert!(close(f(&rows[0], "rougeL"), 8.0 / 11.0));
    // en: identical summary -> 1, 1, 1; "Cats bark." vs "Dogs bark loudly.": 1 shared unigram,
    // P 1/2, R 1/3, F 0.4; no shared bigram; LCS 1 -> 0.4. Means 0.7, 0.5, 0.7.
    assert!(close(f(&rows[1], "rouge1"), 0.7));
    assert!(close(f(&rows[1], "rouge2"), 0.5));
    assert!(close(f(&rows[1], "rougeL"), 0.7));
    let text = std::fs::read_to_string(&items).unwrap();
    let recs: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(recs.len(), 3);
    assert_eq!(recs[0]["id"], json!("hi-1"));
    assert_eq!(recs[0]["prediction"], json!("दिल्ली भारत की राजधानी है"));
    assert_eq!(recs[0]["gold"], json!(["भारत की राजधानी नई दिल्ली है।"]));
    assert_eq!(recs[0]["correct"], serde_json::Value::Null);
    assert_eq!(out.items.len(), 3);
    // Alpaca family names the language.
    let mut m2 = Mock::new();
    evaluate(
        &mut m2,
        "xlsum",
        &opts(json!({"data": fixture("xlsum"), "langs": ["hi"]})),
    )
    .unwrap();
    assert!(m2.gen_calls[0].0[0]
        .contains("### Instruction:\nSummarize the following news article in one sentence, written in Hindi.\n\n### Input:\nनई"));
}
