//! Evaluation: built-in multilingual tasks (XNLI, XCOPA, Belebele, MLQA, XQuAD, TyDiQA-GoldP,
//! XL-Sum and the offline demo task `ui_translate`), their metrics, and a generic runner over
//! any [`LanguageModel`].
//!
//! Scoring follows EleutherAI/lm-evaluation-harness (`lm_eval/api/task.py`,
//! `ConfigurableTask.construct_requests` / `process_results`): multiple-choice tasks send one
//! `(context, delimiter + choice)` log-likelihood request per choice and report `acc`,
//! `acc_norm` (per code point) and `acc_bytes`; generation tasks decode greedily until a stop
//! string and are scored with the metrics in [`metrics`]. Results are one row per language,
//! `#{ task, lang, n, <metric>: value, ... }`, with metrics as fractions in [0, 1].

pub mod examples;
pub mod items;
pub mod judge;
pub mod metrics;
pub mod model;
pub mod prompt;
pub mod rank_quant;
pub mod runner;
pub mod tasks;
pub mod template;

pub use examples::{task_examples, ExampleOptions};
pub use items::{join_items, ItemsError, ItemsSource, JoinOptions};
pub use metrics::MetricError;
pub use model::{LanguageModel, LogLik};
pub use prompt::{alpaca_prompt, Family};
pub use runner::{
    evaluate, evaluate_with, write_items, EvalHooks, EvalOutput, Progress, TemplateFn,
};
pub use tasks::ui_translate::ui_strings;
pub use tasks::{tasks, Kind, TaskInfo};

use serde::Deserialize;

use crate::data::DataError;

/// Errors of evaluation. The messages do not name the script function: the binding that
/// raised the error (`evaluate`, `task_examples`, `ui_strings`) prefixes its own name.
#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    /// The language model failed.
    #[error("model: {0}")]
    Model(String),
    /// Reading or interpreting data failed.
    #[error(transparent)]
    Data(#[from] DataError),
    /// A metric got bad input (e.g. a NaN log-likelihood).
    #[error(transparent)]
    Metric(#[from] MetricError),
    /// No such task.
    #[error("unknown task '{name}' (expected one of: {known})")]
    UnknownTask {
        /// The name given.
        name: String,
        /// The built-in tasks.
        known: String,
    },
    /// The task has no such language.
    #[error("task '{task}' has no language '{lang}' (expected one of: {known})")]
    UnknownLang {
        /// The task.
        task: String,
        /// The language given.
        lang: String,
        /// The task's languages.
        known: String,
    },
    /// A bad option value.
    #[error("option '{option}': {msg}")]
    Option {
        /// The option.
        option: &'static str,
        /// What is wrong.
        msg: String,
    },
    /// No data files matched.
    #[error("{msg} (files found: {found})")]
    NoData {
        /// What was looked for.
        msg: String,
        /// The data files that exist.
        found: String,
    },
    /// Stopped by the interrupt hook.
    #[error("interrupted: {0}")]
    Interrupted(String),
    /// Writing the items file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
}

/// Options of `m.evaluate(task, opts)`: exactly the keys of the API; unknown keys are
/// rejected by the deserialiser (`deny_unknown_fields`), every key may be missing or `null`.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct EvalOptions {
    /// Path of the task data (HF dataset directory or a file); `ui_translate` has built-in data.
    pub data: Option<String>,
    /// Languages to evaluate (default: every language of the task that has data).
    pub langs: Option<Vec<String>>,
    /// Evaluation split (default: the task's, as in lm-eval).
    pub split: Option<String>,
    /// Number of few-shot examples (default 0).
    pub shots: Option<i64>,
    /// Split the few-shot examples come from (default: the task's).
    pub shot_split: Option<String>,
    /// A data file the few-shot examples come from instead of a split (the task's schema; a
    /// `lang` column, where present, selects the language).
    pub shots_file: Option<String>,
    /// Which documents of the shot split may not be examples: `"item"` (default, lm-eval: only
    /// the evaluated item itself) or `"evaluated"` (none of the evaluated documents: with
    /// `limit`/`fraction` on a split that also gives the shots, the examples come from the
    /// rest).
    pub shot_exclude: Option<String>,
    /// Evaluate at most `limit` documents of each language (the first ones, or a seeded random
    /// subset with `sample: "random"`).
    pub limit: Option<i64>,
    /// Evaluate `ceil(fraction × n)` of the n documents of each language (lm-eval's fractional
    /// limit, without its floating-point overshoot: 7 % of 100 is 7), 0 < fraction ≤ 1; with
    /// `limit`, the smaller count.
    pub fraction: Option<f64>,
    /// Which documents `limit`/`fraction` keep: `"first"` (default, as lm-eval) or `"random"`
    /// (drawn with the seed, kept in dataset order).
    pub sample: Option<String>,
    /// Seed of few-shot sampling and of `ui_translate`'s distractors (default 1234).
    pub seed: Option<i64>,
    /// Requests per model call (default 8); never changes a score.
    pub batch_size: Option<i64>,
    /// Prompt family: `"alpaca"` (default), `"lm-eval"`, or `"plain"` for `ui_translate`.
    pub prompt: Option<String>,
    /// A prompt of one's own: `{field}` placeholders filled from each document's fields
    /// (replaces the prompt family's query; see [`template`]).
    pub template: Option<String>,
    /// With `template`, the answer strings of a multiple-choice task, one per choice in the
    /// task's order, each a template.
    pub choices: Option<Vec<String>>,
    /// With `template`, the text between the prompt and the answer (default `" "`).
    pub delimiter: Option<String>,
    /// Generation length limit (default: the task's, 32 for QA, 64 for XL-Sum).
    pub max_new_tokens: Option<i64>,
    /// Where to write one JSON line per item.
    pub items_file: Option<String>,
}

impl EvalOptions {
    /// The option keys, for "unknown option" messages.
    pub const KEYS: [&'static str; 18] = [
        "data",
        "langs",
        "split",
        "shots",
        "shot_split",
        "shots_file",
        "shot_exclude",
        "limit",
        "fraction",
        "sample",
        "seed",
        "batch_size",
        "prompt",
        "template",
        "choices",
        "delimiter",
        "max_new_tokens",
        "items_file",
    ];
}

#[cfg(test)]
mod tests;
