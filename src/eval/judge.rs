//! Pairwise judging with a local judge model, in the manner of AlpacaEval (Li et al. 2023;
//! Dubois et al. 2024): the model under test answers a set of instructions, a judge model
//! compares each answer with a reference answer, and the score is the model's win rate.
//!
//! - **Answers**: greedy generation (`generate_until`) from the Alpaca prompt of each instruction
//!   (`prompt: "alpaca"`, the default; `"plain"` gives the instruction alone), stopping at the
//!   next `### Instruction:` header or after `max_new_tokens`.
//! - **Judgement**: the judge prompt shows the instruction and two outputs labelled `Output (a)`
//!   and `Output (b)` and asks which is better ([`JUDGE_TEMPLATE`], our wording of AlpacaEval's
//!   pairwise question; `judge_template` takes a template of one's own with `{instruction}`,
//!   `{output_a}`, `{output_b}`). The judge does not generate: its preference is read from
//!   its log-probabilities of the two answers ` Output (a)` and ` Output (b)`,
//!   `P(b) = 1 / (1 + exp(lp(a) − lp(b)))`, so judging is deterministic and graded, as
//!   AlpacaEval 2's weighted (log-probability) annotators are.
//! - **Position bias**: every item is judged twice, with the reference first (the model's answer
//!   is `Output (b)`) and with the model's answer first; the item's preference is the mean of
//!   the model's probability in the two orders. `position_bias` is the judge's mean probability
//!   of choosing `Output (a)` minus 0.5.
//! - **Win rate**: 100 × the mean preference (AlpacaEval 2's weighted win rate);
//!   `win_rate_discrete` counts an item as won (preference > 0.5), tied (= 0.5, half a win) or
//!   lost (AlpacaEval 1). `se` is the standard error of the mean (ddof 1) × 100, and `ci_low` /
//!   `ci_high` the percentile interval of a seeded bootstrap of the mean preference
//!   (`stats::paired_bootstrap` against zero, type-7 percentiles, 95 %).
//! - **Per-item records** (`items_file`) are what `join_items` reads, so two cells can be
//!   compared item by item (`metric: "preference"` or `"win"`) with `permutation_test`.

use serde::Deserialize;

use super::model::LanguageModel;
use super::prompt::alpaca_prompt;
use super::runner::{write_items, EvalHooks, Progress};
use super::template::Template;
use super::EvalError;
use crate::value::{num, Row, Value};

/// The judge prompt (our wording of AlpacaEval's pairwise question).
pub const JUDGE_TEMPLATE: &str = "You are comparing two answers to the same instruction. Decide which answer a careful human reader would prefer: the one that follows the instruction more helpfully, accurately and completely. The order of the answers and their length must not decide.\n\n# Instruction:\n{instruction}\n\n# Output (a):\n{output_a}\n\n# Output (b):\n{output_b}\n\n# Which output is better, Output (a) or Output (b)? Reply with \"Output (a)\" or \"Output (b)\".\nBetter output:";

/// The two answers the judge's log-probabilities compare.
pub const CHOICES: [&str; 2] = [" Output (a)", " Output (b)"];

/// Options of [`alpaca_eval`] (script keys of the same names).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct JudgeOptions {
    /// Answer prompt: `"alpaca"` (default) or `"plain"`.
    pub prompt: Option<String>,
    /// Generation length limit of the answers (default 256).
    pub max_new_tokens: Option<i64>,
    /// Requests per model call (default 8).
    pub batch_size: Option<i64>,
    /// Judge at most the first `limit` instructions.
    pub limit: Option<i64>,
    /// A judge prompt of one's own with `{instruction}`, `{output_a}`, `{output_b}`.
    pub judge_template: Option<String>,
    /// Bootstrap resamples of the confidence interval (default 1000).
    pub bootstrap: Option<i64>,
    /// Seed of the bootstrap (default 1234).
    pub seed: Option<i64>,
    /// Where to write one JSON line per instruction (for `join_items`).
    pub items_file: Option<String>,
}

/// One instruction with its reference answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Instruction {
    /// Stable id (the row's `id`, else its 0-based position).
    pub id: String,
    /// The instruction.
    pub instruction: String,
    /// Optional input (Alpaca-style data); empty in AlpacaEval.
    pub input: String,
    /// The reference answer (AlpacaEval's `output`).
    pub reference: String,
}

/// The judge's verdicts and the win rate.
#[derive(Debug, Clone, PartialEq)]
pub struct JudgeReport {
    /// Instructions judged.
    pub n: usize,
    /// 100 × mean preference for the model's answers.
    pub win_rate: f64,
    /// 100 × (wins + ties / 2) / n.
    pub win_rate_discrete: f64,
    /// Standard error of the win rate (100 × sd / √n, ddof 1).
    pub se: f64,
    /// Lower end of the 95 % bootstrap percentile interval of the win rate.
    pub ci_low: f64,
    /// Upper end.
    pub ci_high: f64,
    /// The judge's mean probability of `Output (a)` minus 0.5.
    pub position_bias: f64,
    /// Bootstrap resamples.
    pub bootstrap: usize,
    /// One record per instruction (see the module docs).
    pub items: Vec<Row>,
}

fn bad(option: &'static str, msg: String) -> EvalError {
    EvalError::Option { option, msg }
}

fn positive(option: &'static str, v: Option<i64>, default: usize) -> Result<usize, EvalError> {
    match v {
        None => Ok(default),
        Some(x) if x >= 1 => Ok(x as usize),
        Some(x) => Err(bad(option, format!("must be at least 1, got {x}"))),
    }
}

/// Reads instructions from rows with `instruction` and `output` (the reference) and optional
/// `input` and `id`, as AlpacaEval's `alpaca_eval.json` holds them.
pub fn instructions(rows: &[Row], origin: &str) -> Result<Vec<Instruction>, EvalError> {
    let text = |r: &Row, i: usize, f: &str, required: bool| -> Result<String, EvalError> {
        match r.get(f) {
            Some(Value::String(s)) => Ok(s.clone()),
            None | Some(Value::Null) if !required => Ok(String::new()),
            Some(other) => Err(bad(
                "data",
                format!("{origin} row {}: field '{f}' is not text: {other}", i + 1),
            )),
            None => {
                let mut keys: Vec<&str> = r.keys().map(String::as_str).collect();
                keys.sort_unstable();
                Err(bad(
                    "data",
                    format!(
                        "{origin} row {}: no field '{f}' (fields: {})",
                        i + 1,
                        keys.join(", ")
                    ),
                ))
            }
        }
    };
    if rows.is_empty() {
        return Err(bad("data", format!("{origin} holds no instructions")));
    }
    rows.iter()
        .enumerate()
        .map(|(i, r)| {
            Ok(Instruction {
                id: match r.get("id") {
                    Some(v) if !v.is_null() => crate::value::as_key(v),
                    _ => i.to_string(),
                },
                instruction: text(r, i, "instruction", true)?,
                input: text(r, i, "input", false)?,
                reference: text(r, i, "output", true)?,
            })
        })
        .collect()
}

/// The model's answers to `items` (greedy; see the module docs).
pub fn answers(
    model: &mut dyn LanguageModel,
    items: &[Instruction],
    o: &JudgeOptions,
    hooks: &mut EvalHooks<'_>,
) -> Result<Vec<String>, EvalError> {
    let family = o.prompt.as_deref().unwrap_or("alpaca");
    let prompts: Vec<String> = match family {
        "alpaca" => items
            .iter()
            .map(|it| alpaca_prompt(&it.instruction, &it.input))
            .collect(),
        "plain" => items
            .iter()
            .map(|it| {
                if it.input.is_empty() {
                    it.instruction.clone()
                } else {
                    format!("{}\n\n{}", it.instruction, it.input)
                }
            })
            .collect(),
        other => {
            return Err(bad(
                "prompt",
                format!("unknown value '{other}' (expected one of: alpaca, plain)"),
            ))
        }
    };
    let max_new = positive("max_new_tokens", o.max_new_tokens, 256)?;
    crate::limits::check_elems(
        &format!("alpaca_eval: max_new_tokens = {max_new}"),
        &[max_new as u64],
        4,
    )
    .map_err(|e| bad("max_new_tokens", e.to_string()))?;
    let bs = positive("batch_size", o.batch_size, 8)?;
    let stop = vec!["### Instruction:".to_string()];
    let mut out = Vec::with_capacity(prompts.len());
    for chunk in prompts.chunks(bs) {
        if let Some(check) = hooks.interrupt {
            check()?;
        }
        let got = model.generate_until(chunk, max_new, &stop, bs)?;
        if got.len() != chunk.len() {
            return Err(EvalError::Model(format!(
                "generate_until returned {} answers for {} prompts",
                got.len(),
                chunk.len()
            )));
        }
        out.extend(got.into_iter().map(|s| s.trim().to_string()));
        if let Some(p) = hooks.progress.as_mut() {
            p(Progress {
                task: "alpaca_eval answers",
                done: out.len(),
                total: prompts.len(),
            });
        }
    }
    Ok(out)
}

/// `1 / (1 + exp(lp_a − lp_b))`: the probability of `b` among the two answers.
fn prob_b(lp_a: f64, lp_b: f64) -> f64 {
    1.0 / (1.0 + (lp_a - lp_b).exp())
}

/// Judges `answers` against the references of `items` with `judge` and computes the win rate.
pub fn judge(
    judge: &mut dyn LanguageModel,
    items: &[Instruction],
    answers: &[String],
    o: &JudgeOptions,
    hooks: &mut EvalHooks<'_>,
) -> Result<JudgeReport, EvalError> {
    if answers.len() != items.len() {
        return Err(EvalError::Model(format!(
            "{} answers for {} instructions",
            answers.len(),
            items.len()
        )));
    }
    if items.len() < 2 {
        return Err(bad(
            "data",
            format!(
                "a win rate with a confidence interval needs at least 2 instructions, got {}",
                items.len()
            ),
        ));
    }
    let template = Template::parse(
        "judge_template",
        o.judge_template.as_deref().unwrap_or(JUDGE_TEMPLATE),
    )?;
    let bs = positive("batch_size", o.batch_size, 8)?;
    let n_boot = positive("bootstrap", o.bootstrap, 1000)?;
    let seed = o.seed.unwrap_or(1234) as u64;
    // Two prompts per item: the reference first, then the model's answer first.
    let mut requests = Vec::with_capacity(items.len() * 4);
    let mut prompts = Vec::with_capacity(items.len() * 2);
    for (it, ans) in items.iter().zip(answers) {
        for (a, b) in [(&it.reference, ans), (ans, &it.reference)] {
            let mut row = Row::new();
            let instruction = if it.input.is_empty() {
                it.instruction.clone()
            } else {
                format!("{}\n\n{}", it.instruction, it.input)
            };
            row.insert("instruction".into(), instruction.into());
            row.insert("output_a".into(), a.clone().into());
            row.insert("output_b".into(), b.clone().into());
            let p = template.render(&row, &format!("instruction {}", it.id))?;
            for c in CHOICES {
                requests.push((p.clone(), c.to_string()));
            }
            prompts.push(p);
        }
    }
    let mut lls = Vec::with_capacity(requests.len());
    for chunk in requests.chunks(bs) {
        if let Some(check) = hooks.interrupt {
            check()?;
        }
        let got = judge.loglikelihood(chunk, bs)?;
        if got.len() != chunk.len() {
            return Err(EvalError::Model(format!(
                "loglikelihood returned {} results for {} requests",
                got.len(),
                chunk.len()
            )));
        }
        lls.extend(got);
        if let Some(p) = hooks.progress.as_mut() {
            p(Progress {
                task: "alpaca_eval judge",
                done: lls.len(),
                total: requests.len(),
            });
        }
    }
    let mut prefs = Vec::with_capacity(items.len());
    let mut records = Vec::with_capacity(items.len());
    let mut p_a_sum = 0.0;
    let mut wins = 0.0;
    for (i, (it, ans)) in items.iter().zip(answers).enumerate() {
        let lp = |k: usize| lls[4 * i + k].logprob;
        for k in 0..4 {
            if !lp(k).is_finite() {
                return Err(EvalError::Model(format!(
                    "the judge's log-probability of '{}' for instruction {} is {}",
                    CHOICES[k % 2].trim(),
                    it.id,
                    lp(k)
                )));
            }
        }
        // Order 1: reference = (a), model = (b). Order 2: model = (a), reference = (b).
        let model_as_b = prob_b(lp(0), lp(1));
        let model_as_a = 1.0 - prob_b(lp(2), lp(3));
        p_a_sum += (1.0 - model_as_b) + model_as_a;
        let pref = 0.5 * (model_as_b + model_as_a);
        let win = if pref > 0.5 {
            1.0
        } else if pref < 0.5 {
            0.0
        } else {
            0.5
        };
        prefs.push(pref);
        wins += win;
        let mut rec = Row::new();
        rec.insert("task".into(), "alpaca_eval".into());
        rec.insert("lang".into(), "en".into());
        rec.insert("id".into(), it.id.clone().into());
        rec.insert(
            "prompt_hash".into(),
            super::runner::prompt_hash(&prompts[2 * i]).into(),
        );
        rec.insert("instruction".into(), it.instruction.clone().into());
        rec.insert("prediction".into(), ans.clone().into());
        rec.insert("gold".into(), it.reference.clone().into());
        rec.insert("p_model_as_b".into(), num(model_as_b));
        rec.insert("p_model_as_a".into(), num(model_as_a));
        rec.insert("preference".into(), num(pref));
        rec.insert("correct".into(), Value::Bool(win == 1.0));
        let mut m = Row::new();
        m.insert("preference".into(), num(pref));
        m.insert("win".into(), num(win));
        rec.insert("metrics".into(), Value::Object(m));
        records.push(rec);
    }
    let n = prefs.len();
    let zeros = vec![0.0; n];
    let boot = crate::stats::paired_bootstrap(&zeros, &prefs, n_boot, seed)
        .map_err(|e| bad("bootstrap", e.to_string()))?;
    if let Some(path) = &o.items_file {
        write_items(path, &records)?;
    }
    Ok(JudgeReport {
        n,
        win_rate: 100.0 * crate::num::mean(&prefs),
        win_rate_discrete: 100.0 * wins / n as f64,
        se: 100.0 * crate::num::sd(&prefs) / (n as f64).sqrt(),
        ci_low: 100.0 * boot.lower,
        ci_high: 100.0 * boot.upper,
        position_bias: p_a_sum / (2 * n) as f64 - 0.5,
        bootstrap: n_boot,
        items: records,
    })
}

impl JudgeReport {
    /// The summary as a row (without the items).
    pub fn to_row(&self) -> Row {
        let mut r = Row::new();
        r.insert("n".into(), Value::from(self.n));
        r.insert("win_rate".into(), num(self.win_rate));
        r.insert("win_rate_discrete".into(), num(self.win_rate_discrete));
        r.insert("se".into(), num(self.se));
        r.insert("ci_low".into(), num(self.ci_low));
        r.insert("ci_high".into(), num(self.ci_high));
        r.insert("position_bias".into(), num(self.position_bias));
        r.insert("bootstrap".into(), Value::from(self.bootstrap));
        r
    }
}
