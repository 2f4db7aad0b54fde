//! The `rank_quant` prompt family against the study's text: every prompt `evaluate` sends, with
//! 0 and with 4 shots, equals the figure text of appendix C rendered for the fixture item, byte
//! for byte.
//!
//! The expected prompts are built here from `tests/fixtures/prompts/rank_quant/*.txt` (the
//! figures as `seed_studies.md` §1.8 prints them, extracted by `extract_templates.py`) with a
//! renderer of their own: `{{field}}` substitution and XCOPA's one Jinja `{% if %}` rendered
//! literally. The layout choices the paper leaves open (README, `eval::rank_quant`): a blank line
//! after the system prompt, a newline after the response header, and the shots after the
//! instruction text, each its item block, a newline, its answer and a blank line.

use std::path::PathBuf;

use serde_json::{json, Value as Json};

use super::{opts, Mock};
use crate::eval::{evaluate, EvalOptions};

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/prompts/rank_quant")
}

fn template(name: &str) -> String {
    std::fs::read_to_string(dir().join(format!("{name}.txt"))).unwrap()
}

fn rows(rel: &str) -> Vec<Json> {
    std::fs::read_to_string(dir().join("data").join(rel))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// `{{field}}` from the row; XCOPA's `{% if question == "cause" %} a cause {% else %} an effect
/// {% endif %}` as Jinja renders it without whitespace control.
fn fill(t: &str, row: &Json) -> String {
    let jinja = "{% if question == \"cause\" %} a cause {% else %} an effect {% endif %}";
    let mut s = t.to_string();
    if s.contains(jinja) {
        let what = if row["question"] == "cause" {
            " a cause "
        } else {
            " an effect "
        };
        s = s.replace(jinja, what);
    }
    if let Json::Object(m) = row {
        for (k, v) in m {
            if let Json::String(text) = v {
                s = s.replace(&format!("{{{{{k}}}}}"), text);
            }
        }
    }
    assert!(!s.contains("{{") && !s.contains("{%"), "unfilled: {s}");
    s
}

/// The template split into the instruction (with its separator), the item block (from the line
/// that starts with `marker`) and the tail (from the blank lines before `### Response`).
fn parts(name: &str, marker: &str) -> (String, String, String) {
    let t = template(name);
    let start = t.find(marker).unwrap();
    let header = t.rfind("### Response").unwrap();
    let end = t[..header].trim_end_matches('\n').len();
    (
        t[..start].to_string(),
        t[start..end].to_string(),
        t[end..].to_string(),
    )
}

fn permutations(n: usize) -> Vec<Vec<usize>> {
    if n == 0 {
        return vec![Vec::new()];
    }
    let mut out = Vec::new();
    for p in permutations(n - 1) {
        for i in 0..=p.len() {
            let mut q = p.clone();
            q.insert(i, n - 1);
            out.push(q);
        }
    }
    out
}

struct Case {
    task: &'static str,
    template: &'static str,
    marker: &'static str,
    item: Json,
    shots: Vec<Json>,
    answer: fn(&Json) -> String,
    options: Json,
}

/// The prompt `evaluate` sent for the first item: the context of the first log-likelihood
/// request (choice tasks) or the first generation prompt.
fn sent_prompt(task: &str, o: &EvalOptions) -> (String, Vec<String>) {
    let mut m = Mock::new();
    evaluate(&mut m, task, o).unwrap();
    let req = m.requests();
    if req.is_empty() {
        (m.gen_calls[0].0[0].clone(), Vec::new())
    } else {
        let first = req[0].0.clone();
        let conts = req
            .iter()
            .filter(|r| r.0 == first)
            .map(|r| r.1.clone())
            .collect();
        (first, conts)
    }
}

fn cases() -> Vec<Case> {
    let data = |rel: &str| dir().join("data").join(rel).display().to_string();
    let first_answer = |r: &Json| r["answers"]["text"][0].as_str().unwrap().to_string();
    let xquad = rows("xquad/xquad.de/validation.jsonl");
    let belebele = rows("belebele/urd_Arab.jsonl");
    vec![
        Case {
            task: "xnli",
            template: "xnli",
            marker: "{{premise}}",
            item: rows("xnli/de/test.jsonl").remove(0),
            shots: rows("xnli/de/validation.jsonl"),
            answer: |r| ["True", "Neither", "False"][r["label"].as_u64().unwrap() as usize].into(),
            options: json!({"data": data("xnli"), "langs": ["de"], "split": "test",
                            "shot_split": "validation"}),
        },
        Case {
            task: "xcopa",
            template: "xcopa",
            marker: "Given this premise:",
            item: rows("xcopa/et/test.jsonl").remove(0),
            shots: rows("xcopa/et/validation.jsonl"),
            answer: |r| {
                let k = if r["label"] == 0 {
                    "choice1"
                } else {
                    "choice2"
                };
                r[k].as_str().unwrap().to_string()
            },
            options: json!({"data": data("xcopa"), "langs": ["et"], "split": "test",
                            "shot_split": "validation"}),
        },
        Case {
            task: "belebele",
            template: "belebele",
            marker: "Passage:",
            item: belebele[0].clone(),
            shots: belebele[1..].to_vec(),
            answer: |r| {
                let n: usize = r["correct_answer_num"].as_str().unwrap().parse().unwrap();
                ["A", "B", "C", "D"][n - 1].into()
            },
            options: json!({"data": data("belebele"), "langs": ["urd_Arab"], "split": "test",
                            "shot_split": "test"}),
        },
        Case {
            task: "mlqa",
            template: "qa",
            marker: "Context:",
            item: rows("mlqa/mlqa.de.de/test.jsonl").remove(0),
            shots: rows("mlqa/mlqa.de.de/validation.jsonl"),
            answer: first_answer,
            options: json!({"data": data("mlqa"), "langs": ["de"], "split": "test",
                            "shot_split": "validation"}),
        },
        Case {
            task: "xquad",
            template: "qa",
            marker: "Context:",
            item: xquad[0].clone(),
            shots: xquad[1..].to_vec(),
            answer: first_answer,
            options: json!({"data": data("xquad"), "langs": ["de"], "split": "validation",
                            "shot_split": "validation"}),
        },
        Case {
            task: "xlsum",
            template: "xlsum",
            marker: "{{text}}",
            item: rows("xlsum/english_test.jsonl").remove(0),
            shots: rows("xlsum/english_val.jsonl"),
            answer: |r| r["summary"].as_str().unwrap().to_string(),
            options: json!({"data": data("xlsum"), "langs": ["en"], "split": "test",
                            "shot_split": "validation"}),
        },
    ]
}

#[test]
fn each_prompt_equals_the_papers_text_with_0_and_4_shots() {
    let system = template("system");
    assert_eq!(
        system,
        "Below is an instruction that describes a task, paired with an input that provides further context. Write a response that appropriately completes the request."
    );
    for c in cases() {
        let (head, block, tail) = parts(c.template, c.marker);
        let prefix = format!("{system}\n\n{head}");
        let suffix = format!("{}{tail}\n", fill(&block, &c.item));

        let mut o = c.options.clone();
        o["prompt"] = json!("rank_quant");
        o["limit"] = json!(1);
        let (zero, conts) = sent_prompt(c.task, &opts(o.clone()));
        assert_eq!(zero, format!("{prefix}{suffix}"), "{} 0-shot", c.task);
        // The whole figure, filled, is the 0-shot prompt after the system prompt.
        assert_eq!(
            zero,
            format!("{system}\n\n{}\n", fill(&template(c.template), &c.item)),
            "{}",
            c.task
        );

        o["shots"] = json!(4);
        let (four, conts4) = sent_prompt(c.task, &opts(o));
        let examples: Vec<String> = c
            .shots
            .iter()
            .map(|s| format!("{}\n{}\n\n", fill(&block, s), (c.answer)(s)))
            .collect();
        assert_eq!(examples.len(), 4, "{}", c.task);
        let matches = permutations(4)
            .into_iter()
            .filter(|p| {
                let shots: String = p.iter().map(|&i| examples[i].as_str()).collect();
                four == format!("{prefix}{shots}{suffix}")
            })
            .count();
        assert_eq!(matches, 1, "{} 4-shot prompt:\n{four}", c.task);
        assert_eq!(conts, conts4, "{}", c.task);
    }
}

#[test]
fn choices_follow_the_response_header_directly() {
    let cs = cases();
    let expect: [(&str, Vec<&str>); 3] = [
        ("xnli", vec!["True", "Neither", "False"]),
        ("xcopa", vec!["Ta läks arsti juurde.", "Ta läks randa."]),
        ("belebele", vec!["A", "B", "C", "D"]),
    ];
    for (task, want) in expect {
        let c = cs.iter().find(|c| c.task == task).unwrap();
        let mut o = c.options.clone();
        o["prompt"] = json!("rank_quant");
        let (ctx, conts) = sent_prompt(task, &opts(o));
        assert!(ctx.ends_with("\n"), "{task}");
        assert_eq!(conts, want, "{task}");
    }
    // XNLI's header keeps the figure's missing colon; the others have it.
    let mut o = cs[0].options.clone();
    o["prompt"] = json!("rank_quant");
    assert!(sent_prompt("xnli", &opts(o))
        .0
        .ends_with("Neither?\n### Response\n"));
}
