//! The offline demo task `ui_translate` on the built-in corpus, and `ui_strings`.

use std::collections::HashSet;

use serde_json::json;

use super::{close, f, opts, Mock};
use crate::eval::tasks::ui_translate::{split_of, CORPUS};
use crate::eval::{evaluate, evaluate_with, ui_strings, EvalHooks};

fn corpus_rows() -> Vec<serde_json::Value> {
    CORPUS
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn ui_translate_items_are_well_formed_and_seeded() {
    let o = opts(json!({"langs": ["de", "sw", "zh"], "limit": 20, "prompt": "plain", "seed": 11}));
    let mut m = Mock::new();
    let out = evaluate_with(&mut m, "ui_translate", &o, &mut EvalHooks::default()).unwrap();
    let langs: Vec<_> = out.rows.iter().map(|r| r["lang"].clone()).collect();
    assert_eq!(langs, [json!("de"), json!("sw"), json!("zh")]);
    assert_eq!(out.rows[0]["n"], json!(20));
    let corpus = corpus_rows();
    let by_id: std::collections::HashMap<&str, &serde_json::Value> = corpus
        .iter()
        .map(|r| (r["id"].as_str().unwrap(), r))
        .collect();
    let mut positions = HashSet::new();
    for it in &out.items {
        let row = by_id[it["id"].as_str().unwrap()];
        let lang = row["lang"].as_str().unwrap();
        let choices: Vec<&str> = it["choices"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c.as_str().unwrap())
            .collect();
        assert_eq!(choices.len(), 4);
        assert_eq!(
            choices.iter().collect::<HashSet<_>>().len(),
            4,
            "distinct: {choices:?}"
        );
        let gold = it["gold"].as_u64().unwrap() as usize;
        positions.insert(gold);
        assert_eq!(choices[gold], row["text"].as_str().unwrap());
        // The item and its distractors come from the test split of the same language.
        assert_eq!(split_of(row["en"].as_str().unwrap()), "test");
        for (k, c) in choices.iter().enumerate() {
            if k == gold {
                continue;
            }
            // (A translation may occur twice in a language; one occurrence must qualify.)
            let ok = corpus.iter().any(|r| {
                r["lang"] == json!(lang)
                    && r["text"] == json!(c)
                    && r["en"] != row["en"]
                    && split_of(r["en"].as_str().unwrap()) == "test"
            });
            assert!(ok, "distractor {c:?} of {}", it["id"]);
        }
        // acc with the length mock: the shortest " " + choice wins.
        let lens: Vec<usize> = choices.iter().map(|c| c.chars().count()).collect();
        let shortest = (0..4).fold(0, |b, k| if lens[k] < lens[b] { k } else { b });
        assert_eq!(
            it["metrics"]["acc"],
            json!(if shortest == gold { 1.0 } else { 0.0 })
        );
    }
    assert!(positions.len() > 1, "answer positions vary");
    // The plain prompt.
    let first = &m.requests()[0];
    assert!(
        first.0.starts_with("English: ") && first.0.ends_with("\nGerman:"),
        "{first:?}"
    );
    assert!(first.1.starts_with(' '));
    // Same seed: same items; another seed: other distractors or positions.
    let again = evaluate_with(
        &mut Mock::new(),
        "ui_translate",
        &o,
        &mut EvalHooks::default(),
    )
    .unwrap();
    assert_eq!(again.items, out.items);
    let o2 = opts(json!({"langs": ["de", "sw", "zh"], "limit": 20, "prompt": "plain", "seed": 12}));
    let other = evaluate_with(
        &mut Mock::new(),
        "ui_translate",
        &o2,
        &mut EvalHooks::default(),
    )
    .unwrap();
    assert_ne!(other.items, out.items);
    // Alpaca prompt = the training prompt of ui_strings.
    let mut ma = Mock::new();
    let rows = evaluate(
        &mut ma,
        "ui_translate",
        &opts(json!({"langs": ["hi"], "limit": 3})),
    )
    .unwrap();
    assert_eq!(rows[0]["n"], json!(3));
    let (ctx, cont) = &ma.requests()[0];
    assert!(ctx.contains(
        "### Instruction:\nTranslate the following English text into Hindi.\n\n### Input:\n"
    ));
    assert!(ctx.ends_with("### Response:\n") && !cont.starts_with(' '));
    assert!((0.0..=1.0).contains(&f(&rows[0], "acc")));
}

#[test]
fn ui_translate_hand_checked_scores() {
    // A model that gives -1 to the true (English, Estonian) pair of the corpus and -50 to
    // anything else gets every item right; the reverse model gets every item wrong.
    let corpus = corpus_rows();
    let pairs: HashSet<(String, String)> = corpus
        .iter()
        .filter(|r| r["lang"] == json!("et"))
        .map(|r| {
            (
                format!("English: {}\nEstonian:", r["en"].as_str().unwrap()),
                format!(" {}", r["text"].as_str().unwrap()),
            )
        })
        .collect();
    let o = opts(json!({"langs": ["et"], "limit": 10, "prompt": "plain"}));
    let mut m = Mock::new();
    let good = pairs.clone();
    m.ll = Box::new(move |c, x| {
        if good.contains(&(c.to_string(), x.to_string())) {
            -1.0
        } else {
            -50.0
        }
    });
    let rows = evaluate(&mut m, "ui_translate", &o).unwrap();
    assert_eq!(rows[0]["n"], json!(10));
    assert!(close(f(&rows[0], "acc"), 1.0));
    assert!(close(f(&rows[0], "acc_norm"), 1.0));
    let mut w = Mock::new();
    w.ll = Box::new(move |c, x| {
        if pairs.contains(&(c.to_string(), x.to_string())) {
            -50.0
        } else {
            -1.0
        }
    });
    let rows = evaluate(&mut w, "ui_translate", &o).unwrap();
    assert!(close(f(&rows[0], "acc"), 0.0));
}

#[test]
fn ui_strings_splits_are_disjoint_and_complete() {
    let langs = vec!["de".to_string(), "sw".to_string()];
    let train = ui_strings("train", Some(&langs), None).unwrap();
    let test = ui_strings("test", Some(&langs), None).unwrap();
    let corpus = corpus_rows();
    let n_de_sw = corpus
        .iter()
        .filter(|r| r["lang"] == json!("de") || r["lang"] == json!("sw"))
        .count();
    assert_eq!(train.len() + test.len(), n_de_sw);
    assert_eq!(n_de_sw, 955);
    // About a fifth is test.
    assert!((150..240).contains(&test.len()), "{}", test.len());
    let ids = |d: &crate::data::Dataset| -> HashSet<String> {
        d.column("id")
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_string())
            .collect()
    };
    assert!(ids(&train).is_disjoint(&ids(&test)));
    // Disjoint by English source across all languages, too.
    let all_train = ui_strings("train", None, None).unwrap();
    let all_test = ui_strings("test", None, None).unwrap();
    assert_eq!(all_train.len() + all_test.len(), 17_389);
    let src = |d: &crate::data::Dataset| -> HashSet<String> {
        d.column("input")
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_string())
            .collect()
    };
    assert!(src(&all_train).is_disjoint(&src(&all_test)));
    let r0 = test.row(0).unwrap();
    let keys: Vec<&str> = r0.keys().map(String::as_str).collect();
    assert_eq!(keys, ["id", "lang", "instruction", "input", "output"]);
    assert!(r0["instruction"]
        .as_str()
        .unwrap()
        .starts_with("Translate the following English text into "));
    assert!(ui_strings("dev", None, None).is_err());
    let bad = vec!["xx".to_string()];
    assert!(ui_strings("train", Some(&bad), None)
        .unwrap_err()
        .to_string()
        .contains("no language 'xx'"));
}
