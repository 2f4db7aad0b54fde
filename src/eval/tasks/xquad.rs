//! XQuAD (Artetxe et al. 2020), as lm-evaluation-harness defines it (`lm_eval/tasks/xquad/`,
//! `xquad_common_yaml`, `xquad_<lang>.yaml`, `utils.py`).
//!
//! Data: Hugging Face `google/xquad`, configs `xquad.<lang>` for `ar de el en es hi ro ru th
//! tr vi zh`, split `validation` only (1190 questions), rows `{id, context, question,
//! answers: {text: [str], answer_start: [int]}}`.
//!
//! Prompts:
//! * `lm-eval`: the localized template of lm-eval, e.g. de
//!   `Kontext: {context}\n\nFrage: {question}\n\nAntwort:`; generation is greedy until `"\n"`.
//! * `alpaca`: [`super::QA_INSTRUCTION`] with input `Context: …\nQuestion: …`.
//!
//! Few-shot examples come from `validation` (excluding the item). Metrics: SQuAD v1.1
//! exact_match and f1 (as XTREME scores XQuAD), maximum over the gold answers. lm-eval compares
//! with the first answer only, using transformers' `squad_metrics`; XQuAD has one answer per
//! question, so the two agree except that `squad_metrics` gives F1 = 1 when both normalised
//! strings are empty.

use super::{qa_prompt, squad_scores, Doc, Kind, Lang, Prompted, Task};
use crate::eval::prompt::Family;
use crate::eval::EvalError;

/// (code, Context, Question, Answer) from lm-eval's `xquad_<lang>.yaml`.
const WORDS: [(&str, &str, &str, &str); 12] = [
    ("ar", "سيا", "سؤال", "إجابة"),
    ("de", "Kontext", "Frage", "Antwort"),
    ("el", "Συμφραζόμενα", "Ερώτηση", "Απάντηση"),
    ("en", "Context", "Question", "Answer"),
    ("es", "Contexto", "Pregunta", "Respuesta"),
    ("hi", "प्रसंग", "सवाल", "उत्तर"),
    ("ro", "Context", "Întrebare", "Răspuns"),
    ("ru", "Контекст", "Вопрос", "Ответ"),
    ("th", "บริบท", "คำถาม", "คำตอบ"),
    ("tr", "Bağlam", "Soru", "Cevap"),
    ("vi", "Bối cảnh", "Câu hỏi", "Trả lời"),
    ("zh", "语境", "问题", "回答"),
];

/// The XQuAD task.
pub struct Xquad;

impl Task for Xquad {
    fn name(&self) -> &'static str {
        "xquad"
    }
    fn kind(&self) -> Kind {
        Kind::Generate
    }
    fn dataset(&self) -> &'static str {
        "google/xquad"
    }
    fn langs(&self) -> Vec<String> {
        WORDS.iter().map(|w| w.0.to_string()).collect()
    }
    fn resolve_lang(&self, user: &str) -> Option<Lang> {
        let code = user.strip_prefix("xquad.").unwrap_or(user);
        WORDS.iter().find(|w| w.0 == code).map(|w| Lang {
            label: user.to_string(),
            code: w.0.to_string(),
            subsets: vec![format!("xquad.{}", w.0), w.0.to_string()],
        })
    }
    fn metrics(&self) -> &'static [&'static str] {
        &["exact_match", "f1"]
    }
    fn families(&self) -> &'static [&'static str] {
        &["alpaca", "lm-eval", "rank_quant"]
    }
    fn default_split(&self) -> &'static str {
        "validation"
    }
    fn default_shot_split(&self) -> &'static str {
        "validation"
    }
    fn prompt(&self, doc: &Doc, lang: &Lang, family: Family) -> Result<Prompted, EvalError> {
        let w = WORDS
            .iter()
            .find(|w| w.0 == lang.code)
            .copied()
            .unwrap_or(WORDS[3]);
        qa_prompt(doc, family, (w.1, w.2, w.3))
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
