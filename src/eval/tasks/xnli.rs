//! XNLI (Conneau et al. 2018), as lm-evaluation-harness defines it (`lm_eval/tasks/xnli/`,
//! `xnli_common_yaml`, `utils.py`).
//!
//! Data: Hugging Face `facebook/xnli`, one config per language (`ar bg de el en es fr hi ru sw
//! th tr ur vi zh`), rows `{premise: str, hypothesis: str, label: int}` with 0 = entailment,
//! 1 = neutral, 2 = contradiction. Splits train / validation / test; lm-eval evaluates
//! `validation` (the task has no `test_split`) and draws few-shot examples from `train`.
//!
//! Prompts:
//! * `lm-eval`: empty query; each choice is the whole sentence
//!   `premise + ", <right>? <Yes|Also|No>, " + hypothesis` with lm-eval's localized words
//!   (`utils.py` `LANGUAGES`), scored as `(context, " " + choice)`.
//! * `alpaca`: English instruction, input `Premise: …\nHypothesis: …`, choices the label words
//!   `entailment`, `neutral`, `contradiction`.
//!
//! Metrics: acc, acc_norm, acc_bytes, and micro- and macro-F1 over the three labels. For
//! single-label three-way classification micro-F1 equals accuracy; it is reported under its
//! own name because the "Which LoRA?" study reports XNLI as micro-F1.

use super::{Doc, Gold, Kind, Lang, Prompted, Task};
use crate::eval::prompt::{alpaca_prompt, Family};
use crate::eval::rank_quant;
use crate::eval::EvalError;

/// (code, question word, entailment, neutral, contradiction) from lm-eval's `xnli/utils.py`.
const WORDS: [(&str, &str, &str, &str, &str); 15] = [
    ("ar", "صحيح", "نعم", "لذا", "رقم"),
    ("bg", "правилно", "да", "така", "не"),
    ("de", "richtig", "Ja", "Auch", "Nein"),
    ("el", "σωστός", "Ναί", "Έτσι", "όχι"),
    ("en", "right", "Yes", "Also", "No"),
    ("es", "correcto", "Sí", "Asi que", "No"),
    ("fr", "correct", "Oui", "Aussi", "Non"),
    ("hi", "सही", "हाँ", "इसलिए", "नहीं"),
    ("ru", "правильно", "Да", "Так", "Нет"),
    ("sw", "sahihi", "Ndiyo", "Hivyo", "Hapana"),
    ("th", "ถูกต้อง", "ใช่", "ดังนั้น", "ไม่"),
    ("tr", "doğru", "Evet", "Böylece", "Hayır"),
    ("ur", "صحیح", "جی ہاں", "اس لئے", "نہیں"),
    ("vi", "đúng", "Vâng", "Vì vậy", "Không"),
    ("zh", "正确", "是的", "所以", "不是的"),
];

const INSTRUCTION: &str = "Determine the relationship between the premise and the hypothesis. Answer \"entailment\" if the premise implies the hypothesis, \"contradiction\" if it contradicts the hypothesis, and \"neutral\" otherwise.";

/// The XNLI task.
pub struct Xnli;

impl Task for Xnli {
    fn name(&self) -> &'static str {
        "xnli"
    }
    fn kind(&self) -> Kind {
        Kind::Choice
    }
    fn dataset(&self) -> &'static str {
        "facebook/xnli"
    }
    fn langs(&self) -> Vec<String> {
        WORDS.iter().map(|w| w.0.to_string()).collect()
    }
    fn resolve_lang(&self, user: &str) -> Option<Lang> {
        WORDS
            .iter()
            .find(|w| w.0 == user)
            .map(|w| Lang::simple(w.0))
    }
    fn metrics(&self) -> &'static [&'static str] {
        &["acc", "acc_norm", "acc_bytes", "f1_micro", "f1_macro"]
    }
    fn families(&self) -> &'static [&'static str] {
        &["alpaca", "lm-eval", "rank_quant"]
    }
    fn default_split(&self) -> &'static str {
        "validation"
    }
    fn default_shot_split(&self) -> &'static str {
        "train"
    }
    fn prompt(&self, doc: &Doc, lang: &Lang, family: Family) -> Result<Prompted, EvalError> {
        let premise = doc.str("premise")?;
        let hypothesis = doc.str("hypothesis")?;
        let label = doc.int("label")?;
        let gold = usize::try_from(label)
            .ok()
            .filter(|&l| l < 3)
            .ok_or_else(|| {
                EvalError::Data(crate::data::DataError::Invalid {
                    func: "evaluate",
                    msg: format!(
                        "xnli {} row {}: label {label} is not 0, 1 or 2",
                        doc.origin,
                        doc.index + 1
                    ),
                })
            })?;
        let choices: Vec<String> = match family {
            Family::Alpaca => ["entailment", "neutral", "contradiction"]
                .map(String::from)
                .to_vec(),
            // The options the study's prompt names, in label order.
            Family::RankQuant => ["True", "Neither", "False"].map(String::from).to_vec(),
            _ => {
                let w = WORDS
                    .iter()
                    .find(|w| w.0 == lang.code)
                    .copied()
                    .unwrap_or(WORDS[4]);
                [w.2, w.3, w.4]
                    .iter()
                    .map(|ans| format!("{premise}, {}? {ans}, {hypothesis}", w.1))
                    .collect()
            }
        };
        let frame = (family == Family::RankQuant).then(|| rank_quant::xnli(premise, hypothesis));
        let query = match family {
            Family::Alpaca => alpaca_prompt(
                INSTRUCTION,
                &format!("Premise: {premise}\nHypothesis: {hypothesis}"),
            ),
            Family::RankQuant => frame.as_ref().map(|f| f.render(&[])).unwrap_or_default(),
            _ => String::new(),
        };
        let target = choices.get(gold).cloned().unwrap_or_default();
        Ok(Prompted {
            query,
            choices,
            target,
            gold: Gold::Choice(gold),
            frame,
        })
    }
}
