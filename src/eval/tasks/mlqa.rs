//! MLQA (Lewis et al. 2020), as lm-evaluation-harness defines it (`lm_eval/tasks/mlqa/`,
//! `mlqa_common_yaml`, `utils.py`, tasks `mlqa_<context lang>_<question lang>`).
//!
//! Data: Hugging Face `facebook/mlqa`, configs `mlqa.<ctx>.<q>` for the 49 pairs of `ar de en
//! es hi vi zh`, splits `test` and `validation`, rows `{id, context, question, answers: {text:
//! [str], answer_start: [int]}}`. A language is given as `de` (= `de.de`) or as a pair `ar.de`
//! / `ar_de` (context Arabic, question German); the row label is what was given.
//!
//! Prompts:
//! * `lm-eval`: `Context: {context}\n\nQuestion: {question}\n\nAnswer:` (English for every
//!   pair, as in lm-eval), greedy until `"\n"`.
//! * `alpaca`: [`super::QA_INSTRUCTION`] with input `Context: …\nQuestion: …`.
//!
//! Evaluated on `test`, few-shot from `validation`. Metrics: exact_match and f1 with the
//! official MLQA normalisation of the *context* language (official Arabic article rule, see
//! [`crate::eval::metrics::mlqa`]), maximum over the gold answers, prediction stripped.

use super::{qa_prompt, Doc, Kind, Lang, Prompted, Task};
use crate::eval::metrics::mlqa::{mlqa_em, mlqa_f1, MLQA_LANGS};
use crate::eval::prompt::Family;
use crate::eval::EvalError;

/// The MLQA task.
pub struct Mlqa;

fn context_lang(lang: &Lang) -> &str {
    lang.code.split('.').next().unwrap_or(&lang.code)
}

impl Task for Mlqa {
    fn name(&self) -> &'static str {
        "mlqa"
    }
    fn kind(&self) -> Kind {
        Kind::Generate
    }
    fn dataset(&self) -> &'static str {
        "facebook/mlqa"
    }
    fn langs(&self) -> Vec<String> {
        let mut out = Vec::new();
        for c in MLQA_LANGS {
            for q in MLQA_LANGS {
                out.push(if c == q {
                    c.to_string()
                } else {
                    format!("{c}.{q}")
                });
            }
        }
        out
    }
    fn resolve_lang(&self, user: &str) -> Option<Lang> {
        let bare = user.strip_prefix("mlqa.").unwrap_or(user);
        let (c, q) = match bare.split_once(['.', '_']) {
            Some((c, q)) => (c, q),
            None => (bare, bare),
        };
        if !MLQA_LANGS.contains(&c) || !MLQA_LANGS.contains(&q) {
            return None;
        }
        let mut subsets = vec![
            format!("mlqa.{c}.{q}"),
            format!("{c}.{q}"),
            format!("{c}_{q}"),
        ];
        if c == q {
            subsets.push(c.to_string());
        }
        Some(Lang {
            label: user.to_string(),
            code: format!("{c}.{q}"),
            subsets,
        })
    }
    fn metrics(&self) -> &'static [&'static str] {
        &["exact_match", "f1"]
    }
    fn families(&self) -> &'static [&'static str] {
        &["alpaca", "lm-eval", "rank_quant"]
    }
    fn default_split(&self) -> &'static str {
        "test"
    }
    fn default_shot_split(&self) -> &'static str {
        "validation"
    }
    fn prompt(&self, doc: &Doc, _lang: &Lang, family: Family) -> Result<Prompted, EvalError> {
        qa_prompt(doc, family, ("Context", "Question", "Answer"))
    }
    fn score_generation(
        &self,
        pred: &str,
        golds: &[String],
        lang: &Lang,
    ) -> Result<Vec<(&'static str, f64)>, EvalError> {
        let l = context_lang(lang);
        Ok(vec![
            ("exact_match", mlqa_em(pred, golds, l)?),
            ("f1", mlqa_f1(pred, golds, l)?),
        ])
    }
}
