//! Evaluation metrics, usable on their own (the `squad_em`, `squad_f1`, `mlqa_em`, `mlqa_f1`,
//! `rouge` and `f1_score` functions of the API) and by the built-in tasks.
//!
//! * [`squad`]: SQuAD v1.1 EM/F1 (XQuAD, TyDiQA-GoldP).
//! * [`mlqa`]: official MLQA EM/F1 with per-language normalisation.
//! * [`rouge`]: multilingual ROUGE-1/2/L after csebuetnlp/xl-sum.
//! * [`classify`]: micro/macro F1 with an explicit rule for invalid outputs, and lm-eval's
//!   multiple-choice predictions (acc, acc_norm, acc_bytes).

pub mod classify;
pub mod mlqa;
pub mod rouge;
pub mod squad;
pub mod text;

use std::collections::HashMap;

pub use classify::{
    choice_predictions, f1_score, f1_score_with_labels, Average, ChoicePredictions,
};
pub use mlqa::{mlqa_em, mlqa_em_with, mlqa_f1, mlqa_f1_with, ArabicArticles, MlqaOptions};
pub use rouge::{rouge, rouge_tokenize, RougeScore, RougeScores};
pub use squad::{squad_em, squad_f1, squad_normalize};

/// Errors of the metric functions.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum MetricError {
    /// Bad input to a metric function.
    #[error("{func}: {msg}")]
    Invalid {
        /// The function.
        func: &'static str,
        /// What is wrong.
        msg: String,
    },
}

/// Token-overlap F1 of two token lists (multiset intersection), 0 when nothing is shared.
pub fn token_f1(pred: &[&str], gold: &[&str]) -> f64 {
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for t in gold {
        *counts.entry(t).or_default() += 1;
    }
    let mut same = 0usize;
    for t in pred {
        if let Some(c) = counts.get_mut(t) {
            if *c > 0 {
                *c -= 1;
                same += 1;
            }
        }
    }
    if same == 0 {
        return 0.0;
    }
    let p = same as f64 / pred.len() as f64;
    let r = same as f64 / gold.len() as f64;
    2.0 * p * r / (p + r)
}

/// `max(score(g) for g in golds)`; an error when there are no golds.
pub fn max_over_golds<S: AsRef<str>>(
    func: &'static str,
    golds: &[S],
    mut score: impl FnMut(&str) -> f64,
) -> Result<f64, MetricError> {
    if golds.is_empty() {
        return Err(MetricError::Invalid {
            func,
            msg: "no gold answers given".into(),
        });
    }
    Ok(golds
        .iter()
        .map(|g| score(g.as_ref()))
        .fold(f64::NEG_INFINITY, f64::max))
}
