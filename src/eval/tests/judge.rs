//! AlpacaEval-style judging with a mock judge whose preferences are set by hand.

use serde_json::json;

use super::Mock;
use crate::eval::judge::{answers, instructions, judge, JudgeOptions, JUDGE_TEMPLATE};
use crate::eval::EvalHooks;
use crate::value::Row;

/// `tests/fixtures/alpaca_eval/judge_case.json`: four instructions, the answers, and the judge's
/// probability of the model's answer shown as (b) and as (a): item 0 wins in both orders
/// (0.8), item 1 meets a judge that always says (a) with 0.9 (a tie after swapping), item 2
/// loses (0.3), item 3 wins more when shown first (0.6 as (b), 0.8 as (a)).
fn case() -> serde_json::Value {
    let p = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/alpaca_eval/judge_case.json"
    );
    serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
}

fn rows() -> Vec<Row> {
    case()["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| serde_json::from_value(v.clone()).unwrap())
        .collect()
}

fn mock_judge() -> Mock {
    let items = case()["items"].as_array().unwrap().clone();
    let mut m = Mock::new();
    m.ll = Box::new(move |ctx: &str, cont: &str| {
        let it = items
            .iter()
            .find(|it| ctx.contains(&format!("{}\n", it["instruction"].as_str().unwrap())))
            .expect("an item");
        let ans = it["answer"].as_str().unwrap();
        let a_is_model = ctx.contains(&format!("# Output (a):\n{ans}\n"));
        let (as_a, as_b) = (
            it["p_as_a"].as_f64().unwrap(),
            it["p_as_b"].as_f64().unwrap(),
        );
        let p_a = if a_is_model { as_a } else { 1.0 - as_b };
        let p = if cont == " Output (a)" {
            p_a
        } else {
            1.0 - p_a
        };
        p.ln() - 3.0 // an offset common to both answers
    });
    m
}

#[test]
fn win_rate_ci_and_position_bias_are_the_hand_computed_values() {
    let items = instructions(&rows(), "fixture").unwrap();
    assert_eq!(items[2].reference, "REF2");
    assert_eq!(items[2].id, "2");
    // Answers: greedy generation from the Alpaca prompt.
    let mut model = Mock::with_answers(&[
        ("Task 0", "ANS0"),
        ("Task 1", "ANS1"),
        ("Task 2", "ANS2"),
        ("Task 3", "ANS3"),
    ]);
    let o: JudgeOptions = serde_json::from_value(json!({
        "bootstrap": 20000, "seed": 7, "max_new_tokens": 40, "batch_size": 3,
    }))
    .unwrap();
    let ans = answers(&mut model, &items, &o, &mut EvalHooks::default()).unwrap();
    assert_eq!(ans, ["ANS0", "ANS1", "ANS2", "ANS3"]);
    let (prompts, max_new, stop) = &model.gen_calls[0];
    assert_eq!(
        prompts[0],
        "Below is an instruction that describes a task. Write a response that appropriately completes the request.\n\n### Instruction:\nTask 0\n\n### Response:\n"
    );
    assert_eq!(
        (*max_new, stop.as_slice()),
        (40, &["### Instruction:".to_string()][..])
    );

    let mut j = mock_judge();
    let dir = tempfile::tempdir().unwrap();
    let items_file = dir.path().join("judge.jsonl");
    let o = JudgeOptions {
        items_file: Some(items_file.display().to_string()),
        ..o
    };
    let r = judge(&mut j, &items, &ans, &o, &mut EvalHooks::default()).unwrap();
    let want = &case()["expected"];
    let w = |k: &str| want[k].as_f64().unwrap();
    // Preferences (mean of the two orders): 0.8, 0.5, 0.3, 0.7.
    let prefs: Vec<f64> = r
        .items
        .iter()
        .map(|i| i["preference"].as_f64().unwrap())
        .collect();
    for (p, e) in prefs.iter().zip(want["preferences"].as_array().unwrap()) {
        assert!((p - e.as_f64().unwrap()).abs() < 1e-12, "{prefs:?}");
    }
    assert_eq!(r.n, 4);
    assert!((r.win_rate - w("win_rate")).abs() < 1e-9, "{}", r.win_rate);
    assert!((r.win_rate - 57.5).abs() < 1e-9, "{}", r.win_rate);
    // Wins: items 0 and 3; item 1 is a tie (half a win).
    assert!((r.win_rate_discrete - w("win_rate_discrete")).abs() < 1e-12);
    // sd (ddof 1) = sqrt(0.1475 / 3); se = 100 · sd / 2.
    assert!(
        (r.se - 100.0 * (0.1475f64 / 3.0).sqrt() / 2.0).abs() < 1e-9,
        "{}",
        r.se
    );
    // Bootstrap of the mean of 4 draws from {0.3, 0.5, 0.7, 0.8}: P(mean < 0.4) = 5/256 and
    // P(mean ≤ 0.4) = 15/256 around the 2.5 % point; P(mean > 0.75) = 5/256 and
    // P(mean ≥ 0.75) = 11/256 around the 97.5 % point. So the interval is [40, 75].
    assert!((r.ci_low - w("ci_low")).abs() < 1e-9, "{}", r.ci_low);
    assert!((r.ci_high - w("ci_high")).abs() < 1e-9, "{}", r.ci_high);
    // P(judge says (a)) over the 8 prompts: 0.2 + 0.8, 0.9 + 0.9, 0.7 + 0.3, 0.4 + 0.8 = 5.0.
    assert!((r.position_bias - (5.0 / 8.0 - 0.5)).abs() < 1e-12);
    assert!((r.position_bias - w("position_bias")).abs() < 1e-12);
    // The same seed gives the same interval.
    let again = judge(
        &mut mock_judge(),
        &items,
        &ans,
        &o,
        &mut EvalHooks::default(),
    )
    .unwrap();
    assert_eq!((again.ci_low, again.ci_high), (r.ci_low, r.ci_high));

    // The judge prompts: reference first, then the answer first, each scored on both choices.
    let req = j.requests();
    assert_eq!(req.len(), 16);
    let first = JUDGE_TEMPLATE
        .replace("{instruction}", "Task 0")
        .replace("{output_a}", "REF0")
        .replace("{output_b}", "ANS0");
    assert_eq!(req[0], (first.clone(), " Output (a)".to_string()));
    assert_eq!(req[1], (first, " Output (b)".to_string()));
    assert!(req[2]
        .0
        .contains("# Output (a):\nANS0\n\n# Output (b):\nREF0\n"));

    // Per-item records, in the items-file format `join_items` reads.
    let text = std::fs::read_to_string(&items_file).unwrap();
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 4);
    assert_eq!(lines[1]["task"], "alpaca_eval");
    assert_eq!(lines[1]["id"], "1");
    assert_eq!(lines[1]["prediction"], "ANS1");
    assert_eq!(lines[1]["gold"], "REF1");
    assert_eq!(lines[1]["metrics"]["win"], 0.5);
    assert!((lines[3]["metrics"]["preference"].as_f64().unwrap() - 0.7).abs() < 1e-12);
    assert_eq!(lines[0]["correct"], true);
    assert_eq!(lines[2]["correct"], false);
}

#[test]
fn judge_errors_name_the_option_and_value() {
    let items = instructions(&rows(), "fixture").unwrap();
    let ans: Vec<String> = (0..4).map(|i| format!("ANS{i}")).collect();
    let run = |o: serde_json::Value| {
        let o: JudgeOptions = serde_json::from_value(o).unwrap();
        judge(
            &mut mock_judge(),
            &items,
            &ans,
            &o,
            &mut EvalHooks::default(),
        )
        .unwrap_err()
        .to_string()
    };
    assert_eq!(
        run(json!({"bootstrap": 0})),
        "option 'bootstrap': must be at least 1, got 0"
    );
    assert!(run(json!({"judge_template": "{instruction} {answer}"})).contains("no field 'answer'"));
    let e = judge(
        &mut mock_judge(),
        &items[..1],
        &ans[..1],
        &JudgeOptions::default(),
        &mut EvalHooks::default(),
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("needs at least 2 instructions, got 1"), "{e}");
    let bad: Vec<Row> = vec![serde_json::from_value(json!({"instruction": "x"})).unwrap()];
    let e = instructions(&bad, "data.json").unwrap_err().to_string();
    assert_eq!(
        e,
        "option 'data': data.json row 1: no field 'output' (fields: instruction)"
    );
    let o: JudgeOptions = serde_json::from_value(json!({"prompt": "chat"})).unwrap();
    let e = answers(&mut Mock::new(), &items, &o, &mut EvalHooks::default())
        .unwrap_err()
        .to_string();
    assert_eq!(
        e,
        "option 'prompt': unknown value 'chat' (expected one of: alpaca, plain)"
    );
}
