//! XL-Sum (Hasan et al. 2021), abstractive news summarisation in 45 languages.
//!
//! Data: Hugging Face `csebuetnlp/xlsum`, one config per language named in full (`hindi`,
//! `chinese_simplified`, `serbian_latin`, …), splits train / validation / test, rows `{id, url,
//! title, summary, text}`. The authors' release layout `<name>_{train,val,test}.jsonl` is also
//! supported. Languages may be given as the code below or the config name.
//!
//! lm-evaluation-harness has no core XL-Sum task (AfroBench's prompts render the literal word
//! "text" instead of the article), so both families are ours:
//! * `lm-eval`: a completion prompt in lm-eval's style, `Article: {text}\n\nSummary:`;
//! * `alpaca`: "Summarize the following news article in one sentence, written in
//!   {Language}." with the article as input.
//!
//! Generation is greedy until `"\n"` (a one-sentence summary), 64 new tokens by default.
//! Evaluated on `test`, few-shot from `validation`. Metrics: ROUGE-1, ROUGE-2, ROUGE-L
//! F-measures with the multilingual tokenizer of [`crate::eval::metrics::rouge`] (no stemming;
//! CJK, kana and Thai by character).

use super::{resolve_in, Doc, Gold, Kind, Lang, Prompted, Task};
use crate::eval::metrics::rouge::rouge;
use crate::eval::prompt::{alpaca_prompt, Family};
use crate::eval::rank_quant;
use crate::eval::EvalError;

/// (code, HF config name, language name).
const LANGS: [(&str, &str, &str); 45] = [
    ("am", "amharic", "Amharic"),
    ("ar", "arabic", "Arabic"),
    ("az", "azerbaijani", "Azerbaijani"),
    ("bn", "bengali", "Bengali"),
    ("my", "burmese", "Burmese"),
    ("zh", "chinese_simplified", "Simplified Chinese"),
    ("zh-Hant", "chinese_traditional", "Traditional Chinese"),
    ("en", "english", "English"),
    ("fr", "french", "French"),
    ("gu", "gujarati", "Gujarati"),
    ("ha", "hausa", "Hausa"),
    ("hi", "hindi", "Hindi"),
    ("ig", "igbo", "Igbo"),
    ("id", "indonesian", "Indonesian"),
    ("ja", "japanese", "Japanese"),
    ("rn", "kirundi", "Kirundi"),
    ("ko", "korean", "Korean"),
    ("ky", "kyrgyz", "Kyrgyz"),
    ("mr", "marathi", "Marathi"),
    ("ne", "nepali", "Nepali"),
    ("om", "oromo", "Oromo"),
    ("ps", "pashto", "Pashto"),
    ("fa", "persian", "Persian"),
    ("pcm", "pidgin", "Nigerian Pidgin"),
    ("pt", "portuguese", "Portuguese"),
    ("pa", "punjabi", "Punjabi"),
    ("ru", "russian", "Russian"),
    ("gd", "scottish_gaelic", "Scottish Gaelic"),
    ("sr", "serbian_cyrillic", "Serbian (Cyrillic script)"),
    ("sr-Latn", "serbian_latin", "Serbian (Latin script)"),
    ("si", "sinhala", "Sinhala"),
    ("so", "somali", "Somali"),
    ("es", "spanish", "Spanish"),
    ("sw", "swahili", "Swahili"),
    ("ta", "tamil", "Tamil"),
    ("te", "telugu", "Telugu"),
    ("th", "thai", "Thai"),
    ("ti", "tigrinya", "Tigrinya"),
    ("tr", "turkish", "Turkish"),
    ("uk", "ukrainian", "Ukrainian"),
    ("ur", "urdu", "Urdu"),
    ("uz", "uzbek", "Uzbek"),
    ("vi", "vietnamese", "Vietnamese"),
    ("cy", "welsh", "Welsh"),
    ("yo", "yoruba", "Yoruba"),
];

/// The XL-Sum task.
pub struct Xlsum;

impl Task for Xlsum {
    fn name(&self) -> &'static str {
        "xlsum"
    }
    fn kind(&self) -> Kind {
        Kind::Generate
    }
    fn dataset(&self) -> &'static str {
        "csebuetnlp/xlsum"
    }
    fn langs(&self) -> Vec<String> {
        LANGS.iter().map(|l| l.0.to_string()).collect()
    }
    fn resolve_lang(&self, user: &str) -> Option<Lang> {
        let table: Vec<(&str, &[&str])> = LANGS
            .iter()
            .map(|l| (l.0, std::slice::from_ref(&l.1)))
            .collect();
        resolve_in(&table, user)
    }
    fn metrics(&self) -> &'static [&'static str] {
        &["rouge1", "rouge2", "rougeL"]
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
    fn default_max_new_tokens(&self) -> usize {
        64
    }
    fn prompt(&self, doc: &Doc, lang: &Lang, family: Family) -> Result<Prompted, EvalError> {
        let text = doc.str("text")?;
        let summary = doc.str("summary")?;
        let frame = (family == Family::RankQuant).then(|| rank_quant::xlsum(text));
        let query = match family {
            Family::RankQuant => frame.as_ref().map(|f| f.render(&[])).unwrap_or_default(),
            Family::Alpaca => {
                let name = LANGS
                    .iter()
                    .find(|l| l.0 == lang.code)
                    .map_or("the same language", |l| l.2);
                alpaca_prompt(
                    &format!(
                        "Summarize the following news article in one sentence, written in {name}."
                    ),
                    text,
                )
            }
            _ => format!("Article: {text}\n\nSummary:"),
        };
        Ok(Prompted {
            query,
            choices: Vec::new(),
            target: summary.to_string(),
            gold: Gold::Texts(vec![summary.to_string()]),
            frame,
        })
    }
    fn score_generation(
        &self,
        pred: &str,
        golds: &[String],
        _lang: &Lang,
    ) -> Result<Vec<(&'static str, f64)>, EvalError> {
        let reference = golds.first().map_or("", String::as_str);
        let s = rouge(pred, reference);
        Ok(vec![
            ("rouge1", s.rouge1.fmeasure),
            ("rouge2", s.rouge2.fmeasure),
            ("rougeL", s.rouge_l.fmeasure),
        ])
    }
}
