//! XCOPA (Ponti et al. 2020), as lm-evaluation-harness defines it (`lm_eval/tasks/xcopa/`,
//! `default_<lang>.yaml`, `utils.py`).
//!
//! Data: Hugging Face `cambridgeltl/xcopa`, configs `et ht id it qu sw ta th tr vi zh`, rows
//! `{premise, choice1, choice2, question: "cause"|"effect", label: 0|1, idx, changed}`; splits
//! validation (100) and test (500). lm-eval evaluates `test`; few-shot from `validation`.
//!
//! Prompts:
//! * `lm-eval`: `premise.strip()[:-1] + " " + connector` (the premise without its final
//!   character, the full stop, then "because"/"therefore" in the language: et "sest"/"seetõttu",
//!   …), choices are `choice1`/`choice2` with their first character lowercased, scored as
//!   `(query, " " + choice)`.
//! * `alpaca`: English instruction naming cause or effect, input with the premise and both
//!   alternatives; the choices are the alternatives as written.
//!
//! Metrics: acc, acc_norm, acc_bytes.

use super::{Doc, Gold, Kind, Lang, Prompted, Task};
use crate::eval::metrics::text::is_py_space;
use crate::eval::prompt::{alpaca_prompt, Family};
use crate::eval::rank_quant;
use crate::eval::EvalError;

/// (code, cause connector, effect connector) from lm-eval's `xcopa/utils.py`.
const CONNECTORS: [(&str, &str, &str); 11] = [
    ("et", "sest", "seetõttu"),
    ("ht", "poukisa", "donk sa"),
    ("id", "karena", "maka"),
    ("it", "perché", "quindi"),
    ("qu", "imataq", "chaymi"),
    ("sw", "kwa sababu", "kwa hiyo"),
    ("ta", "காரணமாக", "எனவே"),
    ("th", "เพราะ", "ดังนั้น"),
    ("tr", "çünkü", "bu yüzden"),
    ("vi", "bởi vì", "vì vậy"),
    ("zh", "因为", "所以"),
];

/// The XCOPA task.
pub struct Xcopa;

fn invalid(doc: &Doc, msg: String) -> EvalError {
    EvalError::Data(crate::data::DataError::Invalid {
        func: "evaluate",
        msg: format!("xcopa {} row {}: {msg}", doc.origin, doc.index + 1),
    })
}

/// Python `choice[0].lower() + choice[1:]`.
fn lower_first(s: &str) -> Option<String> {
    let mut it = s.chars();
    let first = it.next()?;
    Some(first.to_lowercase().chain(it).collect())
}

impl Task for Xcopa {
    fn name(&self) -> &'static str {
        "xcopa"
    }
    fn kind(&self) -> Kind {
        Kind::Choice
    }
    fn dataset(&self) -> &'static str {
        "cambridgeltl/xcopa"
    }
    fn langs(&self) -> Vec<String> {
        CONNECTORS.iter().map(|c| c.0.to_string()).collect()
    }
    fn resolve_lang(&self, user: &str) -> Option<Lang> {
        CONNECTORS
            .iter()
            .find(|c| c.0 == user)
            .map(|c| Lang::simple(c.0))
    }
    fn metrics(&self) -> &'static [&'static str] {
        &["acc", "acc_norm", "acc_bytes"]
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
    fn prompt(&self, doc: &Doc, lang: &Lang, family: Family) -> Result<Prompted, EvalError> {
        let premise = doc.str("premise")?;
        let c1 = doc.str("choice1")?;
        let c2 = doc.str("choice2")?;
        let question = doc.str("question")?;
        let label = doc.int("label")?;
        let gold = usize::try_from(label)
            .ok()
            .filter(|&l| l < 2)
            .ok_or_else(|| invalid(doc, format!("label {label} is not 0 or 1")))?;
        let is_cause = match question {
            "cause" => true,
            "effect" => false,
            other => {
                return Err(invalid(
                    doc,
                    format!("question '{other}' is not 'cause' or 'effect'"),
                ))
            }
        };
        let frame =
            (family == Family::RankQuant).then(|| rank_quant::xcopa(premise, c1, c2, is_cause));
        let (query, choices) = match family {
            // The answer is the text of the alternative (the paper does not say).
            Family::RankQuant => (
                frame.as_ref().map(|f| f.render(&[])).unwrap_or_default(),
                vec![c1.to_string(), c2.to_string()],
            ),
            Family::Alpaca => {
                let what = if is_cause { "cause" } else { "effect" };
                let instruction = format!(
                    "Read the premise and choose the alternative that is more plausibly its {what}. Respond with that alternative."
                );
                let input = format!("Premise: {premise}\nAlternative 1: {c1}\nAlternative 2: {c2}");
                (
                    alpaca_prompt(&instruction, &input),
                    vec![c1.to_string(), c2.to_string()],
                )
            }
            _ => {
                let (_, cause, effect) = CONNECTORS
                    .iter()
                    .find(|c| c.0 == lang.code)
                    .copied()
                    .unwrap_or(CONNECTORS[0]);
                let conn = if is_cause { cause } else { effect };
                let trimmed = premise.trim_matches(is_py_space);
                let mut chars = trimmed.chars();
                chars.next_back();
                let query = format!("{} {conn}", chars.as_str());
                let choices = [c1, c2]
                    .iter()
                    .map(|c| lower_first(c).ok_or_else(|| invalid(doc, "empty choice".into())))
                    .collect::<Result<Vec<_>, _>>()?;
                (query, choices)
            }
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
