//! The built-in evaluation tasks and what they share: the task trait, languages, documents,
//! prompts and the registry behind `tasks()`.
//!
//! Each task lives in its own file and documents the Hugging Face dataset and schema it reads,
//! its prompts in both families and its metrics. Task definitions follow
//! EleutherAI/lm-evaluation-harness (`lm_eval/tasks/<task>/`), see each file.

pub mod belebele;
pub mod data;
pub mod mlqa;
pub mod tydiqa;
pub mod ui_translate;
pub mod xcopa;
pub mod xlsum;
pub mod xnli;
pub mod xquad;

use std::path::Path;

use super::prompt::Family;
use super::EvalError;
use crate::data::fields_present;
use crate::value::{as_key, Row, Value};

/// How a task is scored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Multiple choice by summed continuation log-likelihood.
    Choice,
    /// Greedy generation until a stop string.
    Generate,
}

impl Kind {
    /// `"choice"` or `"generate"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Choice => "choice",
            Kind::Generate => "generate",
        }
    }
}

/// A language of a task as the user selected it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lang {
    /// The label of the result row (the user's spelling, e.g. `ur` or `urd_Arab`).
    pub label: String,
    /// The task's canonical code (e.g. `urd_Arab` for Belebele, `ar.de` for MLQA pairs).
    pub code: String,
    /// Names the language may have on disk (HF config names first, e.g. `xquad.de`, `de`).
    pub subsets: Vec<String>,
}

impl Lang {
    /// Whether a row's language column value `l` names this language (its code, label or one
    /// of its subset names).
    pub fn is(&self, l: &str) -> bool {
        l == self.code || l == self.label || self.subsets.iter().any(|s| s == l)
    }

    /// A language whose label, code and only subset name are the same.
    pub fn simple(code: &str) -> Lang {
        Lang {
            label: code.to_string(),
            code: code.to_string(),
            subsets: vec![code.to_string()],
        }
    }
}

/// One evaluation document: a dataset row and where it came from.
#[derive(Debug, Clone)]
pub struct Doc {
    /// The row, in the dataset's own schema.
    pub row: Row,
    /// Position among the documents of this language and split.
    pub index: usize,
    /// File (or corpus) the row came from, for error messages.
    pub origin: String,
}

impl Doc {
    /// "<origin> row <n>", for error messages.
    pub(crate) fn context(&self) -> String {
        format!("{} row {}", self.origin, self.index + 1)
    }

    /// A string field, or an error naming the field, the row and the fields present.
    pub fn str(&self, field: &str) -> Result<&str, EvalError> {
        match self.row.get(field) {
            Some(Value::String(s)) => Ok(s),
            Some(other) => Err(EvalError::Data(crate::data::DataError::Invalid {
                func: "evaluate",
                msg: format!(
                    "{}: field '{field}' must be a string, found {other}",
                    self.context()
                ),
            })),
            None => Err(self.missing(field)),
        }
    }

    /// An integer field (also accepts integral floats and numeric strings).
    pub fn int(&self, field: &str) -> Result<i64, EvalError> {
        let v = self.row.get(field).ok_or_else(|| self.missing(field))?;
        let n = match v {
            Value::Number(n) => n
                .as_i64()
                .or_else(|| n.as_f64().filter(|x| x.fract() == 0.0).map(|x| x as i64)),
            Value::String(s) => s.trim().parse::<i64>().ok(),
            _ => None,
        };
        n.ok_or_else(|| {
            EvalError::Data(crate::data::DataError::Invalid {
                func: "evaluate",
                msg: format!(
                    "{}: field '{field}' must be an integer, found {v}",
                    self.context()
                ),
            })
        })
    }

    /// The answer texts of a SQuAD-style `answers` field: `{text: [...], answer_start: [...]}`,
    /// a list of `{text}` maps, or a list of strings.
    pub fn answers(&self, field: &str) -> Result<Vec<String>, EvalError> {
        let v = self.row.get(field).ok_or_else(|| self.missing(field))?;
        let list = match v {
            Value::Object(m) => m.get("text").cloned().unwrap_or(Value::Null),
            other => other.clone(),
        };
        let mut out = Vec::new();
        if let Value::Array(items) = &list {
            for it in items {
                match it {
                    Value::String(s) => out.push(s.clone()),
                    Value::Object(m) => {
                        if let Some(Value::String(s)) = m.get("text") {
                            out.push(s.clone());
                        }
                    }
                    _ => {}
                }
            }
        }
        if out.is_empty() {
            return Err(EvalError::Data(crate::data::DataError::Invalid {
                func: "evaluate",
                msg: format!(
                    "{}: field '{field}' has no answer texts (expected {{text: [...]}} or a list), found {v}",
                    self.context()
                ),
            }));
        }
        Ok(out)
    }

    /// The missing-field error for this row.
    pub fn missing(&self, field: &str) -> EvalError {
        EvalError::Data(crate::data::DataError::MissingField {
            context: self.context(),
            field: field.to_string(),
            present: fields_present(&self.row),
        })
    }
}

/// The gold answer of a document.
#[derive(Debug, Clone, PartialEq)]
pub enum Gold {
    /// Index of the correct choice.
    Choice(usize),
    /// Acceptable answer texts (QA) or the reference (summaries).
    Texts(Vec<String>),
}

/// A document turned into a prompt.
#[derive(Debug, Clone, PartialEq)]
pub struct Prompted {
    /// Everything before the answer.
    pub query: String,
    /// Choice texts without the target delimiter (choice tasks; empty for generation).
    pub choices: Vec<String>,
    /// The answer text used when this document is a few-shot example.
    pub target: String,
    /// The gold answer.
    pub gold: Gold,
    /// The prompt in parts (`rank_quant` family), so that few-shot examples go inside the
    /// instruction; `None`: examples precede `query` (lm-eval's layout).
    pub frame: Option<crate::eval::rank_quant::Framed>,
}

/// Summary of a task for `tasks()`.
#[derive(Debug, Clone)]
pub struct TaskInfo {
    /// Task name.
    pub name: &'static str,
    /// Language codes.
    pub langs: Vec<String>,
    /// Metric names of the result rows.
    pub metrics: Vec<&'static str>,
    /// `choice` or `generate`.
    pub kind: Kind,
    /// Prompt families.
    pub prompts: Vec<&'static str>,
    /// Hugging Face dataset read.
    pub dataset: &'static str,
    /// Default evaluation split.
    pub split: &'static str,
    /// Default few-shot split.
    pub shot_split: &'static str,
}

impl TaskInfo {
    /// As a row `#{ name, langs, metrics, kind, prompts, dataset, split, shot_split }`.
    pub fn to_row(&self) -> Row {
        let mut r = Row::new();
        r.insert("name".into(), self.name.into());
        r.insert("langs".into(), self.langs.clone().into());
        r.insert("metrics".into(), self.metrics.clone().into());
        r.insert("kind".into(), self.kind.as_str().into());
        r.insert("prompts".into(), self.prompts.clone().into());
        r.insert("dataset".into(), self.dataset.into());
        r.insert("split".into(), self.split.into());
        r.insert("shot_split".into(), self.shot_split.into());
        r
    }
}

/// A built-in task.
pub trait Task: Sync {
    /// Task name.
    fn name(&self) -> &'static str;
    /// Choice or generation.
    fn kind(&self) -> Kind;
    /// The Hugging Face dataset read.
    fn dataset(&self) -> &'static str;
    /// Canonical language codes.
    fn langs(&self) -> Vec<String>;
    /// The language selected by a user string, if the task has it.
    fn resolve_lang(&self, user: &str) -> Option<Lang>;
    /// Metric names (in result-row order).
    fn metrics(&self) -> &'static [&'static str];
    /// Prompt families.
    fn families(&self) -> &'static [&'static str] {
        &["alpaca", "lm-eval"]
    }
    /// Default evaluation split.
    fn default_split(&self) -> &'static str;
    /// Default few-shot split.
    fn default_shot_split(&self) -> &'static str;
    /// Default `max_new_tokens` (generation tasks).
    fn default_max_new_tokens(&self) -> usize {
        32
    }
    /// Stop strings of generation.
    fn stop(&self) -> Vec<String> {
        vec!["\n".to_string()]
    }
    /// Folders holding every language in one file set (rows filtered by [`Task::row_lang`]).
    fn shared_subsets(&self) -> &'static [&'static str] {
        &[]
    }
    /// The language of a row in a multi-language file (`lang` or `language` column).
    fn row_lang(&self, row: &Row) -> Option<String> {
        row.get("lang").or_else(|| row.get("language")).map(as_key)
    }
    /// Loads the documents of one language and split (`data`: the `data` option; `seed`: the
    /// `seed` option, for tasks that build their items with randomness).
    fn load(
        &self,
        data: Option<&str>,
        lang: &Lang,
        split: &str,
        _seed: u64,
    ) -> Result<Vec<Doc>, EvalError> {
        let Some(dir) = data else {
            return Err(EvalError::Option {
                option: "data",
                msg: format!(
                    "task '{}' needs the path of its data ({})",
                    self.name(),
                    self.dataset()
                ),
            });
        };
        data::load_lang_split(Path::new(dir), lang, split, self.shared_subsets(), &|r| {
            self.row_lang(r)
        })
    }
    /// The stable id of a document (`id`, else `idx`, else `<lang>-<split>-<index>`).
    fn doc_id(&self, doc: &Doc, lang: &Lang, split: &str) -> String {
        match doc.row.get("id").or_else(|| doc.row.get("idx")) {
            Some(v) if !v.is_null() => as_key(v),
            _ => format!("{}-{split}-{}", lang.code, doc.index),
        }
    }
    /// The prompt of a document.
    fn prompt(&self, doc: &Doc, lang: &Lang, family: Family) -> Result<Prompted, EvalError>;
    /// Per-item metrics of a generation (generation tasks).
    fn score_generation(
        &self,
        _pred: &str,
        _golds: &[String],
        _lang: &Lang,
    ) -> Result<Vec<(&'static str, f64)>, EvalError> {
        Err(EvalError::Option {
            option: "task",
            msg: format!("task '{}' is not a generation task", self.name()),
        })
    }
    /// The `tasks()` summary.
    fn info(&self) -> TaskInfo {
        TaskInfo {
            name: self.name(),
            langs: self.langs(),
            metrics: self.metrics().to_vec(),
            kind: self.kind(),
            prompts: self.families().to_vec(),
            dataset: self.dataset(),
            split: self.default_split(),
            shot_split: self.default_shot_split(),
        }
    }
}

/// Every built-in task, in listing order.
pub fn all() -> [&'static dyn Task; 8] {
    [
        &xnli::Xnli,
        &xcopa::Xcopa,
        &belebele::Belebele,
        &mlqa::Mlqa,
        &xquad::Xquad,
        &tydiqa::Tydiqa,
        &xlsum::Xlsum,
        &ui_translate::UiTranslate,
    ]
}

/// The task named `name`, or an error listing the tasks.
pub fn find(name: &str) -> Result<&'static dyn Task, EvalError> {
    all()
        .into_iter()
        .find(|t| t.name() == name)
        .ok_or_else(|| EvalError::UnknownTask {
            name: name.to_string(),
            known: all()
                .iter()
                .map(|t| t.name())
                .collect::<Vec<_>>()
                .join(", "),
        })
}

/// The `tasks()` listing.
pub fn tasks() -> Vec<TaskInfo> {
    all().iter().map(|t| t.info()).collect()
}

/// Resolves a language from a table of `(code, subset names...)`: the user string may be the
/// code or any of the names; the label is the user's spelling.
pub(crate) fn resolve_in(table: &[(&str, &[&str])], user: &str) -> Option<Lang> {
    table
        .iter()
        .find(|(code, names)| *code == user || names.contains(&user))
        .map(|(code, names)| {
            let mut subsets: Vec<String> = names.iter().map(|s| s.to_string()).collect();
            if !subsets.iter().any(|s| s == code) {
                subsets.push(code.to_string());
            }
            Lang {
                label: user.to_string(),
                code: code.to_string(),
                subsets,
            }
        })
}

/// Instruction of the Alpaca prompts of the extractive QA tasks (MLQA, XQuAD, TyDiQA).
pub const QA_INSTRUCTION: &str = "Answer the question using the context. Respond with the exact span of the context that answers the question, and nothing else.";

/// The prompt of an extractive QA document (`context`, `question`, `answers`): lm-eval's
/// `"{Context}: {context}\n\n{Question}: {question}\n\n{Answer}:"` with the given (localized)
/// words, or the Alpaca prompt with input `Context: …\nQuestion: …`. The first answer is the
/// few-shot target; all answers are gold.
pub(crate) fn qa_prompt(
    doc: &Doc,
    family: Family,
    words: (&str, &str, &str),
) -> Result<Prompted, EvalError> {
    let context = doc.str("context")?;
    let question = doc.str("question")?;
    let answers = doc.answers("answers")?;
    let frame = (family == Family::RankQuant).then(|| super::rank_quant::qa(context, question));
    let query = match family {
        Family::RankQuant => frame.as_ref().map(|f| f.render(&[])).unwrap_or_default(),
        Family::Alpaca => super::prompt::alpaca_prompt(
            QA_INSTRUCTION,
            &format!("Context: {context}\nQuestion: {question}"),
        ),
        _ => format!(
            "{}: {context}\n\n{}: {question}\n\n{}:",
            words.0, words.1, words.2
        ),
    };
    let target = answers.first().cloned().unwrap_or_default();
    Ok(Prompted {
        query,
        choices: Vec::new(),
        target,
        gold: Gold::Texts(answers),
        frame,
    })
}

/// SQuAD v1.1 `exact_match` and `f1` of a generation, maximum over the gold answers (XQuAD and
/// TyDiQA-GoldP, as XTREME scores them).
pub(crate) fn squad_scores(
    pred: &str,
    golds: &[String],
) -> Result<Vec<(&'static str, f64)>, EvalError> {
    use super::metrics::squad::{squad_em, squad_f1};
    Ok(vec![
        ("exact_match", squad_em(pred, golds)?),
        ("f1", squad_f1(pred, golds)?),
    ])
}
