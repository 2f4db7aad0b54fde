//! TyDiQA-GoldP (Clark et al. 2020), the gold-passage task of TyDi QA.
//!
//! Data: Hugging Face `google-research-datasets/tydiqa`, config `secondary_task` (the hub's
//! layout `secondary_task/{train,validation}-*.parquet`), rows `{id, title, context, question,
//! answers: {text: [str], answer_start: [int]}}`; every language is in the same files and the
//! language is the prefix of `id` (`arabic-…`, `bengali-…`, …). Languages `ar bn en fi id ja ko
//! ru sw te th`; the validation split has no `ja` and `th` rows. Evaluated on `validation`,
//! few-shot from `train`.
//!
//! lm-evaluation-harness has no TyDiQA task on main; the `lm-eval` prompts are the localized
//! templates of the lm-eval pull request "Add TyDiQA Gold Passage task (11 languages)"
//! (`lm_eval/tasks/tydiqa/tydiqa_goldp_<lang>.yaml`, e.g. ar
//! `السياق: {context}\n\nالسؤال: {question}\n\nالإجابة:`), greedy until `"\n"`. `alpaca`:
//! [`super::QA_INSTRUCTION`].
//!
//! Metrics: SQuAD v1.1 exact_match and f1, maximum over the gold answers, as XTREME scores
//! TyDiQA-GoldP (the lm-eval pull request uses an MLQA-style normalisation instead).

use super::{qa_prompt, squad_scores, Doc, Kind, Lang, Prompted, Task};
use crate::eval::prompt::Family;
use crate::eval::EvalError;
use crate::value::{Row, Value};

/// (code, id prefix, Context, Question, Answer).
const LANGS: [(&str, &str, &str, &str, &str); 11] = [
    ("ar", "arabic", "السياق", "السؤال", "الإجابة"),
    ("bn", "bengali", "প্রসঙ্গ", "প্রশ্ন", "উত্তর"),
    ("en", "english", "Context", "Question", "Answer"),
    ("fi", "finnish", "Konteksti", "Kysymys", "Vastaus"),
    ("id", "indonesian", "Konteks", "Pertanyaan", "Jawaban"),
    ("ja", "japanese", "文脈", "質問", "回答"),
    ("ko", "korean", "맥락", "질문", "답변"),
    ("ru", "russian", "Контекст", "Вопрос", "Ответ"),
    ("sw", "swahili", "Muktadha", "Swali", "Jibu"),
    ("te", "telugu", "సందర్భం", "ప్రశ్న", "సమాధానం"),
    ("th", "thai", "บริบท", "คำถาม", "คำตอบ"),
];

/// The TyDiQA-GoldP task.
pub struct Tydiqa;

impl Task for Tydiqa {
    fn name(&self) -> &'static str {
        "tydiqa"
    }
    fn kind(&self) -> Kind {
        Kind::Generate
    }
    fn dataset(&self) -> &'static str {
        "google-research-datasets/tydiqa (secondary_task)"
    }
    fn langs(&self) -> Vec<String> {
        LANGS.iter().map(|l| l.0.to_string()).collect()
    }
    fn resolve_lang(&self, user: &str) -> Option<Lang> {
        LANGS
            .iter()
            .find(|l| l.0 == user || l.1 == user)
            .map(|l| Lang {
                label: user.to_string(),
                code: l.0.to_string(),
                subsets: vec![l.1.to_string(), l.0.to_string()],
            })
    }
    fn metrics(&self) -> &'static [&'static str] {
        &["exact_match", "f1"]
    }
    fn default_split(&self) -> &'static str {
        "validation"
    }
    fn default_shot_split(&self) -> &'static str {
        "train"
    }
    fn shared_subsets(&self) -> &'static [&'static str] {
        &["secondary_task"]
    }
    /// The language of a row: its `lang`/`language` column, else the prefix of `id`.
    fn row_lang(&self, row: &Row) -> Option<String> {
        if let Some(Value::String(l)) = row.get("lang").or_else(|| row.get("language")) {
            return Some(l.clone());
        }
        match row.get("id") {
            Some(Value::String(id)) => id.split('-').next().map(String::from),
            _ => None,
        }
    }
    fn prompt(&self, doc: &Doc, lang: &Lang, family: Family) -> Result<Prompted, EvalError> {
        let w = LANGS
            .iter()
            .find(|l| l.0 == lang.code)
            .copied()
            .unwrap_or(LANGS[2]);
        qa_prompt(doc, family, (w.2, w.3, w.4))
    }
    fn score_generation(
        &self,
        pred: &str,
        golds: &[String],
        _lang: &Lang,
    ) -> Result<Vec<(&'static str, f64)>, EvalError> {
        squad_scores(pred, golds)
    }
}
