//! End-to-end tests of evaluation with a deterministic mock model, on fixtures in each task's
//! Hugging Face schema (`tests/fixtures/evaldata/<task>/`, made by `make_task_fixtures.py`).

mod choice;
mod examples;
mod generate;
mod items;
mod judge;
mod options;
mod rank_quant;
mod ui;

use std::path::PathBuf;

use super::{EvalError, EvalOptions, LanguageModel, LogLik};
use crate::value::{Row, Value};

/// Path of a task fixture.
pub(super) fn fixture(rel: &str) -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/evaldata")
        .join(rel)
        .display()
        .to_string()
}

type LlFn = Box<dyn Fn(&str, &str) -> f64>;

/// A deterministic model. Log-likelihood: `ll(context, continuation)`, by default minus the
/// number of code points of the continuation (so the shortest choice wins `acc` and the
/// longest wins `acc_norm`). Generation: the answer of the needle that occurs last in the
/// prompt, with a leading space (as a model continuing "Answer:" would produce), else "".
pub(super) struct Mock {
    pub ll: LlFn,
    pub answers: Vec<(String, String)>,
    pub ll_calls: Vec<Vec<(String, String)>>,
    pub gen_calls: Vec<(Vec<String>, usize, Vec<String>)>,
}

impl Mock {
    pub fn new() -> Self {
        Mock {
            ll: Box::new(|_, cont| -(cont.chars().count() as f64)),
            answers: Vec::new(),
            ll_calls: Vec::new(),
            gen_calls: Vec::new(),
        }
    }

    pub fn with_answers(pairs: &[(&str, &str)]) -> Self {
        let mut m = Mock::new();
        m.answers = pairs
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect();
        m
    }

    pub fn requests(&self) -> Vec<(String, String)> {
        self.ll_calls.iter().flatten().cloned().collect()
    }
}

impl LanguageModel for Mock {
    fn loglikelihood(
        &mut self,
        requests: &[(String, String)],
        _batch_size: usize,
    ) -> Result<Vec<LogLik>, EvalError> {
        self.ll_calls.push(requests.to_vec());
        Ok(requests
            .iter()
            .map(|(c, x)| LogLik {
                logprob: (self.ll)(c, x),
                is_greedy: false,
            })
            .collect())
    }

    fn generate_until(
        &mut self,
        prompts: &[String],
        max_new_tokens: usize,
        stop: &[String],
        _batch_size: usize,
    ) -> Result<Vec<String>, EvalError> {
        self.gen_calls
            .push((prompts.to_vec(), max_new_tokens, stop.to_vec()));
        Ok(prompts
            .iter()
            .map(|p| {
                self.answers
                    .iter()
                    .filter_map(|(needle, ans)| p.rfind(needle.as_str()).map(|pos| (pos, ans)))
                    .max_by_key(|(pos, _)| *pos)
                    .map_or(String::new(), |(_, a)| format!(" {a}"))
            })
            .collect())
    }

    fn count_tokens(&self, text: &str) -> Result<usize, EvalError> {
        Ok(text.split_whitespace().count())
    }
}

/// Options from a JSON object (as the host deserialises them).
pub(super) fn opts(v: serde_json::Value) -> EvalOptions {
    match serde_json::from_value(v) {
        Ok(o) => o,
        Err(e) => panic!("bad test options: {e}"),
    }
}

pub(super) fn f(row: &Row, key: &str) -> f64 {
    row.get(key).and_then(Value::as_f64).unwrap_or(f64::NAN)
}

pub(super) fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-12
}

/// Asserts the row keys are exactly `task, lang, n` and the metrics, in that order.
pub(super) fn assert_row_shape(row: &Row, metrics: &[&str]) {
    let keys: Vec<&str> = row.keys().map(String::as_str).collect();
    let mut want = vec!["task", "lang", "n"];
    want.extend_from_slice(metrics);
    assert_eq!(keys, want);
}
