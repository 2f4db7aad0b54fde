//! End-to-end evaluation on tiny-llama: every task on its HF-schema fixture produces one row per
//! language with the task's metrics, and batching never changes a score.

use crate::common;
use common::*;
use peftlab::eval::{evaluate, EvalOptions};
use serde_json::json;

fn opts(v: serde_json::Value) -> EvalOptions {
    serde_json::from_value(v).unwrap()
}

#[test]
fn every_task_runs_on_tiny_llama_with_the_expected_rows() {
    let mut m = model("tiny-llama");
    let cases = [
        ("xnli", json!(["de", "en"]), vec!["acc"]),
        ("xcopa", json!(["et"]), vec!["acc"]),
        ("belebele", json!(null), vec!["acc", "acc_norm"]),
        ("mlqa", json!(["ar", "zh"]), vec!["exact_match", "f1"]),
        ("xquad", json!(["de"]), vec!["exact_match", "f1"]),
        ("tydiqa", json!(["ar", "en"]), vec!["exact_match", "f1"]),
        ("xlsum", json!(["hi"]), vec!["rougeL"]),
    ];
    for (task, langs, metrics) in cases {
        let data = fixture(&format!("evaldata/{task}")).display().to_string();
        let o = opts(json!({"data": data, "langs": langs, "max_new_tokens": 8, "batch_size": 4}));
        let rows = evaluate(&mut m, task, &o).unwrap_or_else(|e| panic!("{task}: {e}"));
        assert!(!rows.is_empty(), "{task}: no rows");
        for r in &rows {
            assert_eq!(r["task"], task);
            assert!(r["n"].as_u64().unwrap() > 0, "{task}: n");
            for k in &metrics {
                let v = r
                    .get(*k)
                    .and_then(|x| x.as_f64())
                    .unwrap_or_else(|| panic!("{task}: metric {k} missing in {r:?}"));
                assert!((0.0..=1.0).contains(&v), "{task}: {k} = {v}");
            }
        }
    }
}

#[test]
fn scoring_is_batch_size_invariant() {
    let m = model("tiny-llama");
    let pairs: Vec<(String, String)> = [
        ("Open the file", " in a new window"),
        ("फ़ाइल", " खोलें"),
        ("", "Mở tệp"),
        ("Save as  ", "PDF"),
        (
            "A much longer context so that padding is needed in a batch",
            " ok",
        ),
    ]
    .iter()
    .map(|(a, b)| (a.to_string(), b.to_string()))
    .collect();
    let one = m.loglikelihoods(&pairs, 1).unwrap();
    let all = m.loglikelihoods(&pairs, 8).unwrap();
    for (a, b) in one.iter().zip(&all) {
        // Batched and single rows run matmuls of other shapes, so each token's f32
        // log-probability may round differently by a few ulps of its size; the per-token bounds
        // add up to a few ulps of |Σ log p| (all terms are negative). Observed: 1 ulp of one
        // token (4.8e-7) on logprobs of −16 to −48, where the bound is 3e-5 to 9e-5.
        assert!(
            (a.logprob - b.logprob).abs() <= f32_ulps(16.0, b.logprob.abs()),
            "{} vs {}",
            a.logprob,
            b.logprob
        );
        assert_eq!(a.is_greedy, b.is_greedy);
        assert_eq!(a.tokens, b.tokens);
        assert!(a.logprob < 0.0);
    }
    // lm-eval moves the context's trailing spaces to the continuation.
    let moved = m
        .loglikelihoods(&[("Save as".into(), "  PDF".into())], 1)
        .unwrap();
    // The same tokens through the same single-row computation: equal exactly.
    assert_eq!(moved[0].tokens, one[3].tokens);
    assert_eq!(moved[0].logprob, one[3].logprob);
}

#[test]
fn ui_translate_runs_offline_on_the_builtin_corpus() {
    let mut m = model("tiny-llama");
    let o = opts(json!({"langs": ["de", "ur"], "limit": 5, "batch_size": 8}));
    let rows = evaluate(&mut m, "ui_translate", &o).unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0]["lang"], "de");
    assert_eq!(rows[0]["n"], 5);
}

/// Token ids of lm-eval's request encoding (HEAD 4e7e0d4, `loglikelihood`/`_encode_pair` with
/// HFLM's default `tok_encode`), computed in Python with transformers 5.24
/// `AutoTokenizer.from_pretrained(<fixture dir>)`: `context_enc = tok.encode(context)`,
/// `whole = tok.encode(context + continuation)` (no special tokens when the string starts with
/// the prefix token's text), continuation = `whole[len(context_enc):]`; an empty context is
/// `[prefix]` + `tok.encode(continuation, add_special_tokens=False)`, or that encoding's first
/// token when it already is the prefix.
#[test]
fn requests_are_encoded_exactly_as_lm_eval_encodes_them() {
    use peftlab::model::scoring::encode_pair;
    type Case = (&'static str, &'static str, &'static [u32], &'static [u32]);
    let cases: [(&str, &[Case]); 2] = [
        (
            "tiny-llama",
            &[
                (
                    "Open the file",
                    " in a new window",
                    &[0, 49, 82, 268, 279, 512],
                    &[325, 277, 307, 71, 89, 834],
                ),
                (
                    "Save as  ",
                    "PDF",
                    &[0, 53, 67, 484, 680],
                    &[223, 430, 38, 40],
                ),
                ("", "Mở tệp", &[0], &[47, 332, 256, 264, 332, 232, 82]),
                (
                    "<|begin_of_text|>Hello",
                    " world",
                    &[0, 42, 816, 81],
                    &[314, 273, 509],
                ),
                ("", "<|begin_of_text|>Hi", &[0], &[42, 75]),
            ],
        ),
        (
            "tiny-mistral",
            &[
                (
                    "Save as  ",
                    "PDF",
                    &[1, 979, 310, 323, 344, 327, 979, 323, 341],
                    &[979, 979, 307, 295, 297],
                ),
                ("", "Mở tệp", &[1], &[979, 304, 949, 979, 342, 931, 338]),
                (
                    "<s>Hello",
                    " world",
                    &[1, 979, 299, 327, 334, 334, 337],
                    &[979, 345, 337, 340, 334, 326],
                ),
            ],
        ),
    ];
    for (name, pairs) in cases {
        let m = model(name);
        for &(ctx, cont, want_ctx, want_cont) in pairs {
            let r = encode_pair(&m.tokenizer, ctx, cont).unwrap();
            let split = r.tokens.len() - r.n_cont;
            assert_eq!(
                &r.tokens[..split],
                want_ctx,
                "{name}: context of {ctx:?} + {cont:?}"
            );
            assert_eq!(
                &r.tokens[split..],
                want_cont,
                "{name}: continuation of {ctx:?} + {cont:?}"
            );
        }
    }
}

#[test]
fn evaluate_takes_a_template_closure_from_a_script() {
    // The same prompt as a string template and as a closure gives the same scores; a closure
    // with the language and an error inside the closure name the script's line.
    let dir = tempfile::tempdir().unwrap();
    let tiny = crate::common::fixture("models/tiny-llama");
    let xnli = crate::common::fixture("evaldata/xnli");
    let script = format!(
        r#"let m = load_model("{tiny}", #{{ progress: false }});
let o = #{{ data: "{xnli}", langs: ["en"], choices: ["yes", "maybe", "no"] }};
let a = m.evaluate("xnli", o + #{{ template: "{{premise}}? {{hypothesis}}" }});
let b = m.evaluate("xnli", o + #{{ template: |doc| doc.premise + "? " + doc.hypothesis }});
let c = m.evaluate("xnli", o + #{{ template: |doc, lang| `[${{lang}}] ${{doc.premise}}` }});
print(`same=${{a.rows()[0].acc == b.rows()[0].acc && a.rows()[0].acc_norm == b.rows()[0].acc_norm}} n=${{b.rows()[0].n}}`);
print(`c=${{c.rows()[0].n}}`);
let d = m.evaluate("xnli", o + #{{ template: |doc| doc.nothing.len() }});
"#,
        tiny = tiny.display(),
        xnli = xnli.display()
    );
    crate::common::write(dir.path(), "t.rhai", &script);
    let r = crate::common::run(dir.path(), &["run", "t.rhai"]);
    assert_eq!(r.code, Some(1), "{}", r.stderr);
    assert!(r.stdout.contains("same=true n=4"), "{}", r.stdout);
    assert!(r.stdout.contains("c=4"), "{}", r.stdout);
    assert!(
        r.stderr
            .contains("the closure failed: Property not found: nothing")
            && r.stderr.contains("t.rhai:8:11"),
        "{}",
        r.stderr
    );
}

#[test]
fn alpaca_eval_with_a_tiny_judge_is_deterministic() {
    let dir = tempfile::tempdir().unwrap();
    let tiny = crate::common::fixture("models/tiny-llama");
    let data = crate::common::fixture("alpaca_eval/mini.json");
    let script = format!(
        r#"let m = load_model("{tiny}", #{{ progress: false }});
let o = #{{ max_new_tokens: 6, bootstrap: 200, seed: 3, items_file: "ae.jsonl" }};
let a = alpaca_eval(m, m, "{data}", o);
let b = alpaca_eval(m, m, "{data}", o);
print(`n=${{a.n}} same=${{a.win_rate == b.win_rate && a.ci_low == b.ci_low && a.ci_high == b.ci_high}}`);
print(`ordered=${{a.ci_low <= a.win_rate && a.win_rate <= a.ci_high && 0.0 <= a.ci_low && a.ci_high <= 100.0}}`);
print(`rows=${{a.items.len()}} bias=${{type_of(a.position_bias)}}`);
let j = join_items(#{{ x: "ae.jsonl", y: "ae.jsonl" }}, #{{ metric: "preference" }});
print(`joined=${{j.len()}}`);
alpaca_eval(m, m, [#{{ instruction: "x" }}], o);
"#,
        tiny = tiny.display(),
        data = data.display()
    );
    crate::common::write(dir.path(), "t.rhai", &script);
    let r = crate::common::run(dir.path(), &["run", "t.rhai"]);
    assert_eq!(r.code, Some(1), "{}", r.stderr);
    assert!(r.stdout.contains("n=6 same=true"), "{}", r.stdout);
    assert!(r.stdout.contains("ordered=true"), "{}", r.stdout);
    assert!(r.stdout.contains("rows=6 bias=f64"), "{}", r.stdout);
    assert!(r.stdout.contains("joined=6"), "{}", r.stdout);
    assert!(
        r.stderr
            .contains("data row 1: no field 'output' (fields: instruction)")
            && r.stderr.contains("t.rhai:10:1"),
        "{}",
        r.stderr
    );
}
