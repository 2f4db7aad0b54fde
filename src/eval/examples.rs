//! Training examples from an evaluation task's data (`task_examples`).
//!
//! Each document of a split is rendered with the task's own prompt (the same code path as
//! [`super::evaluate`]) and paired with its gold answer, so that a model is fine-tuned on
//! exactly the text that evaluation scores: `prompt + output` is the context followed by the
//! gold continuation of a multiple-choice item (`output` starts with the prompt family's target
//! delimiter, `" "` for `lm-eval`, nothing for `alpaca`), or the prompt followed by the first
//! reference answer of a generation item. This is how lm-evaluation-harness builds its
//! few-shot examples (`query + delimiter + target`), used here as training rows.
//!
//! Rows are `#{ task, lang, id, prompt, output }`: `task` is the task name and `lang` the
//! language as the user spelled it (what `evaluate` puts in its `lang` column), so the rows
//! can carry FLix's routing features directly (`features: #{ task: [...], lang: [...] }`), and
//! `m.train(rows, #{ template: "{prompt}{output}" })` learns the answer only.

use serde::Deserialize;

use super::runner::resolve;
use super::tasks;
use super::{EvalError, EvalOptions};
use crate::data::Dataset;
use crate::value::Row;

/// Options of `task_examples(task, opts)`; unknown keys are rejected, every key may be missing.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ExampleOptions {
    /// Path of the task data (HF dataset directory or a file); `ui_translate` has built-in data.
    pub data: Option<String>,
    /// Languages (default: every language of the task that has rows in the split).
    pub langs: Option<Vec<String>>,
    /// Split to read (default: the task's few-shot split, `train` for XNLI and TyDiQA).
    pub split: Option<String>,
    /// Prompt family: `"alpaca"` (default), `"lm-eval"`, or `"plain"` for `ui_translate`.
    pub prompt: Option<String>,
    /// Only the first `limit` documents of each language.
    pub limit: Option<i64>,
    /// Seed of tasks that build their documents with randomness (`ui_translate`; default 1234).
    pub seed: Option<i64>,
}

/// The rows of `task`'s split as training examples `#{ task, lang, id, prompt, output }`, in
/// language order, then document order (see the module header).
///
/// ```
/// use peftlab::eval::examples::{task_examples, ExampleOptions};
/// let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/evaldata/xnli");
/// let o = ExampleOptions { data: Some(dir.into()), langs: Some(vec!["en".into()]), ..Default::default() };
/// let d = task_examples("xnli", &o).unwrap();
/// assert_eq!(d.len(), 2); // en/train.jsonl
/// assert_eq!(d.rows()[0]["output"], "entailment");
/// ```
pub fn task_examples(task: &str, o: &ExampleOptions) -> Result<Dataset, EvalError> {
    let t = tasks::find(task)?;
    let eval = EvalOptions {
        data: o.data.clone(),
        langs: o.langs.clone(),
        split: Some(
            o.split
                .clone()
                .unwrap_or_else(|| t.default_shot_split().to_string()),
        ),
        prompt: o.prompt.clone(),
        limit: o.limit,
        seed: o.seed,
        ..Default::default()
    };
    let r = resolve(t, &eval, false)?;
    let delim = r.family.target_delimiter();
    let mut rows = Vec::new();
    let mut missing = None;
    for lang in &r.langs {
        crate::interrupt::check().map_err(|e| EvalError::Interrupted(e.to_string()))?;
        let docs = match t.load(o.data.as_deref(), lang, &r.split, r.seed) {
            Ok(d) => d,
            Err(e @ EvalError::NoData { .. }) if !r.explicit_langs => {
                missing.get_or_insert(e);
                continue;
            }
            Err(e) => return Err(e),
        };
        let n = r.limit.map_or(docs.len(), |l| l.min(docs.len()));
        for doc in docs.iter().take(n) {
            let p = t.prompt(doc, lang, r.family)?;
            let mut row = Row::new();
            row.insert("task".into(), t.name().into());
            row.insert("lang".into(), lang.label.clone().into());
            row.insert("id".into(), t.doc_id(doc, lang, &r.split).into());
            row.insert("prompt".into(), p.query.into());
            row.insert("output".into(), format!("{delim}{}", p.target).into());
            rows.push(row);
        }
    }
    if rows.is_empty() {
        if let Some(e) = missing {
            return Err(e);
        }
    }
    let source = format!(
        "task_examples({task}, split {}, prompt {}) from {}",
        r.split,
        r.family,
        o.data.as_deref().unwrap_or("built-in data")
    );
    Ok(Dataset::with_source(rows, source))
}
