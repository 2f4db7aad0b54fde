//! Options, errors, hooks and the task listing.

use serde_json::json;

use super::{fixture, opts, Mock};
use crate::eval::{evaluate, evaluate_with, tasks, EvalError, EvalHooks, EvalOptions};

#[test]
fn options_reject_unknown_keys_and_accept_null() {
    let e = serde_json::from_value::<EvalOptions>(json!({"alpah": 1}))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("unknown field `alpah`") && e.contains("items_file"),
        "{e}"
    );
    let o = opts(json!({"limit": null, "langs": null, "seed": 5, "items_file": null}));
    assert_eq!(o.seed, Some(5));
    assert_eq!(o.limit, None);
    assert_eq!(EvalOptions::KEYS.len(), 18);
}

#[test]
fn errors_name_the_bad_value() {
    let mut m = Mock::new();
    let e = evaluate(&mut m, "xnlj", &EvalOptions::default())
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with("unknown task 'xnlj' (expected one of: xnli, xcopa, belebele"),
        "{e}"
    );
    let o = opts(json!({"data": fixture("xnli"), "langs": ["xx"]}));
    let e = evaluate(&mut m, "xnli", &o).unwrap_err().to_string();
    assert!(
        e.contains("no language 'xx'") && e.contains("ar, bg, de"),
        "{e}"
    );
    let o = opts(json!({"data": fixture("xnli"), "prompt": "plain"}));
    let e = evaluate(&mut m, "xnli", &o).unwrap_err().to_string();
    assert!(
        e.contains("unknown prompt family 'plain'") && e.contains("alpaca, lm-eval"),
        "{e}"
    );
    let e = evaluate(&mut m, "xnli", &opts(json!({"langs": ["de"]})))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("option 'data'") && e.contains("facebook/xnli"),
        "{e}"
    );
    let o = opts(json!({"data": fixture("xnli"), "batch_size": 0}));
    assert!(evaluate(&mut m, "xnli", &o)
        .unwrap_err()
        .to_string()
        .contains("batch_size"));
    let o = opts(json!({"data": fixture("xnli"), "limit": -1}));
    assert!(evaluate(&mut m, "xnli", &o)
        .unwrap_err()
        .to_string()
        .contains("'limit': must be >= 0, got -1"));
    // A language without files: the error lists what is there.
    let o = opts(json!({"data": fixture("xnli"), "langs": ["fr"]}));
    let e = evaluate(&mut m, "xnli", &o).unwrap_err().to_string();
    assert!(e.contains("no data for language 'fr'"), "{e}");
    assert!(
        e.contains("de/validation-00000-of-00001.parquet") && e.contains("en/train.jsonl"),
        "{e}"
    );
}

#[test]
fn malformed_rows_name_the_field_and_row() {
    let dir = tempfile::tempdir().unwrap();
    let en = dir.path().join("en");
    std::fs::create_dir_all(&en).unwrap();
    std::fs::write(en.join("validation.jsonl"), "{\"premise\": \"p\", \"hypothesis\": \"h\", \"label\": 0}\n{\"premise\": \"p\", \"label\": 1}\n").unwrap();
    let o = opts(json!({"data": dir.path().display().to_string(), "langs": ["en"]}));
    let e = evaluate(&mut Mock::new(), "xnli", &o)
        .unwrap_err()
        .to_string();
    assert!(
        e.ends_with(
            "validation.jsonl row 2: missing field 'hypothesis' (fields present: premise, label)"
        ),
        "{e}"
    );
    std::fs::write(
        en.join("validation.jsonl"),
        "{\"premise\": \"p\", \"hypothesis\": \"h\", \"label\": 7}\n",
    )
    .unwrap();
    let e = evaluate(&mut Mock::new(), "xnli", &o)
        .unwrap_err()
        .to_string();
    assert!(e.contains("label 7 is not 0, 1 or 2"), "{e}");
    std::fs::write(en.join("validation.jsonl"), "{\"premise\": \"p\"\n").unwrap();
    let e = evaluate(&mut Mock::new(), "xnli", &o)
        .unwrap_err()
        .to_string();
    assert!(e.contains("validation.jsonl, line 1: invalid JSON"), "{e}");
}

#[test]
fn default_langs_are_those_with_data() {
    let rows = evaluate(
        &mut Mock::new(),
        "xnli",
        &opts(json!({"data": fixture("xnli"), "prompt": "lm-eval"})),
    )
    .unwrap();
    let langs: Vec<_> = rows.iter().map(|r| r["lang"].clone()).collect();
    assert_eq!(langs, [json!("de"), json!("en")]);
}

#[test]
fn interrupt_hook_stops_between_batches_and_nan_is_an_error() {
    let calls = std::cell::Cell::new(0);
    let stop = || -> Result<(), EvalError> {
        calls.set(calls.get() + 1);
        if calls.get() > 2 {
            Err(EvalError::Interrupted("ctrl-c".into()))
        } else {
            Ok(())
        }
    };
    let mut hooks = EvalHooks {
        progress: None,
        interrupt: Some(&stop),
        template: None,
    };
    let mut m = Mock::new();
    let o = opts(json!({"data": fixture("xnli"), "langs": ["en"], "batch_size": 2}));
    let e = evaluate_with(&mut m, "xnli", &o, &mut hooks)
        .unwrap_err()
        .to_string();
    assert_eq!(e, "interrupted: ctrl-c");
    assert_eq!(m.ll_calls.len(), 2);
    let mut nan = Mock::new();
    nan.ll = Box::new(|_, _| f64::NAN);
    let e = evaluate(&mut nan, "xnli", &o).unwrap_err().to_string();
    assert!(e.contains("NaN"), "{e}");
}

#[test]
fn task_listing() {
    let ts = tasks();
    let names: Vec<&str> = ts.iter().map(|t| t.name).collect();
    assert_eq!(
        names,
        [
            "xnli",
            "xcopa",
            "belebele",
            "mlqa",
            "xquad",
            "tydiqa",
            "xlsum",
            "ui_translate"
        ]
    );
    let kinds: Vec<&str> = ts.iter().map(|t| t.kind.as_str()).collect();
    assert_eq!(
        kinds,
        ["choice", "choice", "choice", "generate", "generate", "generate", "generate", "choice"]
    );
    assert_eq!(ts[0].langs.len(), 15);
    assert_eq!(ts[1].langs.len(), 11);
    assert_eq!(ts[2].langs.len(), 122);
    assert_eq!(ts[3].langs.len(), 49);
    assert_eq!(ts[4].langs.len(), 12);
    assert_eq!(ts[5].langs.len(), 11);
    assert_eq!(ts[6].langs.len(), 45);
    assert_eq!(ts[7].langs.len(), 21);
    let row = ts[3].to_row();
    assert_eq!(row["metrics"], json!(["exact_match", "f1"]));
    assert_eq!(row["split"], json!("test"));
    assert_eq!(ts[7].to_row()["prompts"], json!(["alpaca", "plain"]));
}

/// The English strings of the `ui_translate` items the mock was asked about, in order.
fn asked(m: &Mock) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for (ctx, _) in m.requests() {
        let en = ctx
            .strip_prefix("English: ")
            .and_then(|r| r.split('\n').next())
            .unwrap()
            .to_string();
        if out.last() != Some(&en) {
            out.push(en);
        }
    }
    out
}

fn ask(extra: serde_json::Value) -> Vec<String> {
    let mut o = json!({"langs": ["ur"], "prompt": "plain", "seed": 7});
    for (k, v) in extra.as_object().unwrap() {
        o[k] = v.clone();
    }
    let mut m = Mock::new();
    evaluate(&mut m, "ui_translate", &opts(o)).unwrap();
    asked(&m)
}

#[test]
fn subset_sizes_follow_lm_evals_fractional_limit() {
    use crate::eval::runner::subset_size;
    // 30 % of Belebele's 900 questions.
    assert_eq!(subset_size(900, None, Some(0.3)), 270);
    // Products a rounding error off an integer are that integer: 0.07 × 100 is
    // 7.000000000000001 in f64 (lm-eval's plain ceil evaluates 8), 0.29 × 100 is
    // 28.999999999999996.
    assert_eq!(subset_size(100, None, Some(0.07)), 7);
    assert_eq!(subset_size(100, None, Some(0.29)), 29);
    assert_eq!(subset_size(10, None, Some(0.25)), 3); // ceil(2.5)
    assert_eq!(subset_size(10, None, Some(0.01)), 1); // ceil(0.1)
    assert_eq!(subset_size(10, Some(2), Some(0.5)), 2);
    assert_eq!(subset_size(10, Some(7), Some(0.5)), 5);
    assert_eq!(subset_size(5, None, Some(1.0)), 5);
    assert_eq!(subset_size(3, Some(10), None), 3);
    assert_eq!(subset_size(3, None, None), 3);
}

#[test]
fn limit_takes_the_first_or_a_seeded_random_subset_and_fraction_a_share() {
    let all = ask(json!({}));
    assert_eq!(all.len(), 55, "the Urdu test split of the built-in corpus");
    // limit: the first N, as lm-eval.
    let first = ask(json!({"limit": 5}));
    assert_eq!(first, all[..5].to_vec());
    assert_eq!(ask(json!({"limit": 5, "sample": "first"})), first);
    // sample random: N documents drawn with the seed, in dataset order, the same every time.
    let r7 = ask(json!({"limit": 5, "sample": "random"}));
    assert_eq!(r7.len(), 5);
    let pos: Vec<usize> = r7
        .iter()
        .map(|e| all.iter().position(|a| a == e).unwrap())
        .collect();
    assert!(pos.windows(2).all(|w| w[0] < w[1]), "{pos:?}");
    assert_ne!(r7, first);
    assert_eq!(ask(json!({"limit": 5, "sample": "random"})), r7);
    let r8 = ask(json!({"limit": 5, "sample": "random", "seed": 8}));
    assert_ne!(r8, r7);
    // fraction: ceil(0.1 × 55) = 6 documents; with limit, the smaller count.
    assert_eq!(ask(json!({"fraction": 0.1})), all[..6].to_vec());
    assert_eq!(ask(json!({"fraction": 0.1, "limit": 4})), all[..4].to_vec());
    assert_eq!(ask(json!({"fraction": 0.1, "sample": "random"})).len(), 6);
    assert_eq!(ask(json!({"fraction": 1.0, "sample": "random"})), all);
    // Bad values name the option and the value.
    let mut m = Mock::new();
    for (o, want) in [
        (
            json!({"fraction": 0.0}),
            "option 'fraction': must be in (0, 1], got 0",
        ),
        (
            json!({"fraction": 1.5}),
            "option 'fraction': must be in (0, 1], got 1.5",
        ),
        (
            json!({"sample": "last"}),
            "option 'sample': unknown value 'last' (expected one of: first, random)",
        ),
    ] {
        let mut full = json!({"langs": ["ur"]});
        for (k, v) in o.as_object().unwrap() {
            full[k] = v.clone();
        }
        let e = evaluate(&mut m, "ui_translate", &opts(full))
            .unwrap_err()
            .to_string();
        assert_eq!(e, want);
    }
}

#[test]
fn a_template_string_replaces_the_prompt_and_choices_map_the_answers() {
    // XNLI (en validation, 4 items) with a MEGA-style prompt and answers; 2 shots from train.
    let mut m = Mock::new();
    let o = opts(json!({
        "data": fixture("xnli"), "langs": ["en"], "limit": 1, "shots": 2,
        "template": "{premise}\nQuestion: {hypothesis} True, False, or Neither? {{label {label}}}\nAnswer:",
        "choices": ["True", "Neither", "False"],
    }));
    evaluate(&mut m, "xnli", &o).unwrap();
    let req = m.requests();
    assert_eq!(req.len(), 3);
    let shot1 = "Train premise one\nQuestion: Train hypothesis one True, False, or Neither? {label 0}\nAnswer: True\n\n";
    let shot2 = "Train premise two\nQuestion: Train hypothesis two True, False, or Neither? {label 1}\nAnswer: Neither\n\n";
    let item =
        "The cat sat\nQuestion: A cat is sitting True, False, or Neither? {label 0}\nAnswer:";
    let ctx = &req[0].0;
    assert!(
        *ctx == format!("{shot1}{shot2}{item}") || *ctx == format!("{shot2}{shot1}{item}"),
        "{ctx:?}"
    );
    let conts: Vec<&str> = req.iter().map(|r| r.1.as_str()).collect();
    assert_eq!(conts, [" True", " Neither", " False"]);

    // Answers from the document's fields, and another delimiter.
    let mut m = Mock::new();
    let o = opts(json!({
        "data": fixture("xcopa"), "langs": ["et"], "limit": 1,
        "template": "{premise} ({question})", "choices": ["{choice1}", "{choice2}"],
        "delimiter": " => ",
    }));
    evaluate(&mut m, "xcopa", &o).unwrap();
    assert_eq!(
        m.requests(),
        vec![
            (
                "Mees keeras kraani lahti. (effect)".to_string(),
                " => Tualett täitus veega.".to_string()
            ),
            (
                "Mees keeras kraani lahti. (effect)".to_string(),
                " => Vesi voolas kraanist välja.".to_string()
            ),
        ]
    );

    // A generation task: the template is the whole prompt; the gold stays the task's.
    let mut m = Mock::with_answers(&[("Hauptstadt", "Berlin")]);
    let o = opts(json!({
        "data": fixture("xquad"), "langs": ["de"], "limit": 1,
        "template": "Kontext: {context}\nFrage: {question}\nAntwort:",
    }));
    let rows = evaluate(&mut m, "xquad", &o).unwrap();
    assert_eq!(
        m.gen_calls[0].0,
        vec![
            "Kontext: Die Hauptstadt ist Berlin.\nFrage: Was ist die Hauptstadt?\nAntwort:"
                .to_string()
        ]
    );
    assert_eq!(rows[0]["exact_match"], json!(1.0));

    // Errors name the option, the document and the value.
    for (task, data, extra, want) in [
        (
            "xnli",
            "xnli",
            json!({"template": "{premise} {hypo}"}),
            "no field 'hypo' (fields: hypothesis, label, premise)",
        ),
        (
            "xnli",
            "xnli",
            json!({"template": "{premise}", "choices": ["yes", "no"]}),
            "option 'choices': 2 given, but task 'xnli' has 3 choices per item",
        ),
        (
            "xquad",
            "xquad",
            json!({"template": "{context}", "choices": ["a"]}),
            "option 'choices': task 'xquad' is not multiple choice",
        ),
        (
            "xnli",
            "xnli",
            json!({"choices": ["a", "b", "c"]}),
            "option 'choices': needs a template",
        ),
        (
            "xnli",
            "xnli",
            json!({"template": "{premise"}),
            "option 'template': '{' at byte 0 does not start a {field} placeholder",
        ),
    ] {
        let mut o = json!({"data": fixture(data), "langs": [if task == "xquad" { "de" } else { "en" }], "limit": 1});
        for (k, v) in extra.as_object().unwrap() {
            o[k] = v.clone();
        }
        let e = evaluate(&mut Mock::new(), task, &opts(o))
            .unwrap_err()
            .to_string();
        assert!(e.contains(want), "{e}");
    }
}

#[test]
fn a_template_closure_writes_the_query_of_items_and_shots() {
    use crate::eval::tasks::Lang;
    use crate::value::Row;
    // The closure sees the document's fields and the language; few-shot examples use it too.
    let f = |row: &Row, lang: &Lang| -> Result<String, String> {
        Ok(format!(
            "[{}] {} => {}?",
            lang.label,
            row["premise"].as_str().unwrap_or(""),
            row["hypothesis"].as_str().unwrap_or("")
        ))
    };
    let mut m = Mock::new();
    let o = opts(json!({
        "data": fixture("xnli"), "langs": ["en"], "limit": 1, "shots": 1, "seed": 3,
        "choices": ["yes", "maybe", "no"], "delimiter": ": ",
    }));
    let mut hooks = EvalHooks {
        template: Some(&f),
        ..Default::default()
    };
    evaluate_with(&mut m, "xnli", &o, &mut hooks).unwrap();
    let req = m.requests();
    assert_eq!(req.len(), 3);
    let item = "[en] The cat sat => A cat is sitting?";
    let ctx = &req[0].0;
    let shot1 = "[en] Train premise one => Train hypothesis one?: yes\n\n";
    let shot2 = "[en] Train premise two => Train hypothesis two?: maybe\n\n";
    assert!(
        *ctx == format!("{shot1}{item}") || *ctx == format!("{shot2}{item}"),
        "{ctx:?}"
    );
    let conts: Vec<&str> = req.iter().map(|r| r.1.as_str()).collect();
    assert_eq!(conts, [": yes", ": maybe", ": no"]);

    // The closure's error names the document; a string and a closure at once is an error.
    let bad = |_: &Row, _: &Lang| -> Result<String, String> { Err("boom".into()) };
    let mut hooks = EvalHooks {
        template: Some(&bad),
        ..Default::default()
    };
    let o = opts(json!({"data": fixture("xnli"), "langs": ["en"], "limit": 1}));
    let e = evaluate_with(&mut Mock::new(), "xnli", &o, &mut hooks)
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with("option 'template': ")
            && e.ends_with("validation.jsonl row 1: the closure failed: boom"),
        "{e}"
    );
    let o = opts(json!({"data": fixture("xnli"), "langs": ["en"], "template": "{premise}"}));
    let e = evaluate_with(&mut Mock::new(), "xnli", &o, &mut hooks)
        .unwrap_err()
        .to_string();
    assert_eq!(e, "option 'template': is both a string and a closure");
}

#[test]
fn shots_never_come_from_the_evaluated_item() {
    // Belebele keeps one file per language: split "test" and shot_split "train" are the same
    // file, so each item's single example must be the other document.
    let mut m = Mock::new();
    let o = opts(json!({
        "data": fixture("belebele"), "langs": ["eng_Latn"], "shots": 1, "shot_split": "train",
        "template": "{flores_passage}|", "choices": ["a", "b", "c", "d"],
    }));
    evaluate(&mut m, "belebele", &o).unwrap();
    let ctxs: Vec<String> = m.requests().iter().map(|r| r.0.clone()).collect();
    assert_eq!(ctxs.len(), 8);
    assert_eq!(ctxs[0], "This is a passage 1.| a\n\nThis is a passage 0.|");
    assert_eq!(ctxs[4], "This is a passage 0.| a\n\nThis is a passage 1.|");

    // shots_file: examples from a file; a row equal to the item is never its example, and a
    // `lang` column selects the language.
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("shots.jsonl");
    std::fs::write(
        &f,
        concat!(
            "{\"premise\": \"The cat sat\", \"hypothesis\": \"A cat is sitting\", \"label\": 0, \"lang\": \"en\"}\n",
            "{\"premise\": \"Hund\", \"hypothesis\": \"Tier\", \"label\": 0, \"lang\": \"de\"}\n",
            "{\"premise\": \"Own shot\", \"hypothesis\": \"Mine\", \"label\": 2, \"lang\": \"en\"}\n",
        ),
    )
    .unwrap();
    let mut m = Mock::new();
    let o = opts(json!({
        "data": fixture("xnli"), "langs": ["en"], "limit": 1, "shots": 1, "prompt": "lm-eval",
        "shots_file": f.to_str().unwrap(),
    }));
    evaluate(&mut m, "xnli", &o).unwrap();
    let ctx = &m.requests()[0].0;
    assert_eq!(ctx, " Own shot, right? No, Mine\n\n", "{ctx:?}");
    assert!(!ctx.contains("Hund"), "{ctx:?}");
    // Too few rows that differ from the item: an error naming both counts.
    let o = opts(json!({
        "data": fixture("xnli"), "langs": ["en"], "limit": 1, "shots": 2, "prompt": "lm-eval",
        "shots_file": f.to_str().unwrap(),
    }));
    let e = evaluate(&mut Mock::new(), "xnli", &o)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains(
            "only 1 of the 2 pool documents differ from the item, 2 few-shot examples needed"
        ),
        "{e}"
    );
    let o = opts(json!({
        "data": fixture("xnli"), "langs": ["en"], "shots": 1, "shots_file": "/no/such.jsonl",
    }));
    let e = evaluate(&mut Mock::new(), "xnli", &o)
        .unwrap_err()
        .to_string();
    assert_eq!(e, "option 'shots_file': '/no/such.jsonl' is not a file");
}

#[test]
fn shot_exclude_evaluated_draws_examples_from_the_documents_not_evaluated() {
    // Belebele eng_Latn has 2 documents in one file; evaluating the first, its example must be
    // the second either way; with limit 2 and "evaluated" nothing is left: an error.
    let run = |extra: serde_json::Value| {
        let mut o = json!({
            "data": fixture("belebele"), "langs": ["eng_Latn"], "shots": 1,
            "template": "{flores_passage}|", "choices": ["a", "b", "c", "d"],
        });
        for (k, v) in extra.as_object().unwrap() {
            o[k] = v.clone();
        }
        let mut m = Mock::new();
        evaluate(&mut m, "belebele", &opts(o)).map(|_| m.requests()[0].0.clone())
    };
    assert_eq!(
        run(json!({"limit": 1, "shot_exclude": "evaluated"})).unwrap(),
        "This is a passage 1.| a\n\nThis is a passage 0.|"
    );
    let e = run(json!({"limit": 2, "shot_exclude": "evaluated"}))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("1 few-shot examples need 1 documents, but the documents of split 'test' of 'eng_Latn' that are not evaluated has 0"),
        "{e}"
    );
    let e = run(json!({"shot_exclude": "none"}))
        .unwrap_err()
        .to_string();
    assert_eq!(
        e,
        "option 'shot_exclude': unknown value 'none' (expected one of: item, evaluated)"
    );
}
