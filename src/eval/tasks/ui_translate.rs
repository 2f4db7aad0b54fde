//! `ui_translate`: the offline demo task. Which of four strings in language X is the
//! translation of an English user-interface string? Plus [`ui_strings`], translation
//! instruction rows from the same corpus for training the demo.
//!
//! Corpus: `examples/data/parallel_ui_strings.jsonl` (built into the binary), 17,389 rows
//! `{id, lang, en, text}` of human translations from the GNU gettext catalogs of glib, gtk,
//! iso-codes and Linux-PAM as shipped by Debian, in 21 languages (de fr es it ru ar hi bn te ta
//! ur th vi id tr zh_CN ja ko el et sw). The `data` option may point to another file with the
//! same schema.
//!
//! **Splits.** A row is in `test` when the first 8 bytes of SHA-256 of its *English string*,
//! read as a big-endian integer, are 0 mod 5 (about 20 %), and in `train` otherwise. Hashing the
//! English source rather than the per-language `id` keeps the splits disjoint by item id *and*
//! by source string: no English string of a test item appears in the training rows of any
//! language. Evaluation uses `test`; [`ui_strings`] gives the rows of either split.
//!
//! **Items.** For every row of the split, three distractors are drawn from the other rows of
//! the same language and split whose English source and translation both differ from the item's
//! (duplicate texts counted once): the candidates are ordered by the difference of their length
//! in code points to the correct translation (ties by id), the 10 nearest are kept, and 3 of
//! them are drawn with `rng::derived(seed, "ui_translate/<id>")`; the same generator then places
//! the correct answer at a uniformly random position among the four.
//!
//! **Prompts.** `alpaca`: "Translate the following English text into {Language}." with the
//! English string as input (the same prompt as the training rows), the four strings scored as
//! the response. `plain`: `English: {en}\n{Language}:` with each string scored as
//! `" " + string`. Metrics: acc, acc_norm, acc_bytes.

use std::borrow::Cow;
use std::collections::HashSet;
use std::io::BufReader;
use std::sync::OnceLock;

use sha2::{Digest, Sha256};

use super::{Doc, Gold, Kind, Lang, Prompted, Task};
use crate::data::io::{parse_jsonl, read_rows};
use crate::data::sampling::{below, choose};
use crate::data::Dataset;
use crate::eval::prompt::{alpaca_prompt, Family};
use crate::eval::EvalError;
use crate::rng;
use crate::value::{Row, Value};

/// The built-in corpus.
pub const CORPUS: &str = include_str!("../../../examples/data/parallel_ui_strings.jsonl");

/// Path of the built-in corpus in the repository (for provenance records).
pub const CORPUS_PATH: &str = "examples/data/parallel_ui_strings.jsonl";

/// (code, English name) of the corpus languages.
const LANGS: [(&str, &str); 21] = [
    ("de", "German"),
    ("fr", "French"),
    ("es", "Spanish"),
    ("it", "Italian"),
    ("ru", "Russian"),
    ("ar", "Arabic"),
    ("hi", "Hindi"),
    ("bn", "Bengali"),
    ("te", "Telugu"),
    ("ta", "Tamil"),
    ("ur", "Urdu"),
    ("th", "Thai"),
    ("vi", "Vietnamese"),
    ("id", "Indonesian"),
    ("tr", "Turkish"),
    ("zh_CN", "Chinese (Simplified)"),
    ("ja", "Japanese"),
    ("ko", "Korean"),
    ("el", "Greek"),
    ("et", "Estonian"),
    ("sw", "Swahili"),
];

/// Number of nearest-length candidates the distractors are drawn from.
const NEAREST: usize = 10;

static BUILTIN: OnceLock<Result<Vec<Row>, String>> = OnceLock::new();

fn corpus(data: Option<&str>) -> Result<Cow<'static, [Row]>, EvalError> {
    match data {
        Some(path) => Ok(Cow::Owned(read_rows(std::path::Path::new(path), None)?)),
        None => BUILTIN
            .get_or_init(|| {
                parse_jsonl(BufReader::new(CORPUS.as_bytes()), CORPUS_PATH, None)
                    .map_err(|e| e.to_string())
            })
            .as_ref()
            .map(|rows| Cow::Borrowed(rows.as_slice()))
            .map_err(|m| {
                EvalError::Data(crate::data::DataError::Invalid {
                    func: "ui_translate",
                    msg: m.clone(),
                })
            }),
    }
}

/// The split of an English source string: `test` when SHA-256 (first 8 bytes, big-endian) is
/// 0 mod 5, else `train`.
pub fn split_of(en: &str) -> &'static str {
    let d = Sha256::digest(en.as_bytes());
    let mut b = [0u8; 8];
    for (dst, src) in b.iter_mut().zip(d.iter()) {
        *dst = *src;
    }
    if u64::from_be_bytes(b) % 5 == 0 {
        "test"
    } else {
        "train"
    }
}

fn field<'a>(row: &'a Row, name: &str, i: usize) -> Result<&'a str, EvalError> {
    match row.get(name) {
        Some(Value::String(s)) => Ok(s),
        _ => Err(EvalError::Data(crate::data::DataError::missing(
            format!("ui_translate corpus row {}", i + 1),
            name,
            row,
        ))),
    }
}

fn check_split(split: &str) -> Result<(), EvalError> {
    if split == "train" || split == "test" {
        Ok(())
    } else {
        Err(EvalError::Option {
            option: "split",
            msg: format!("unknown split '{split}' for ui_translate (expected one of: train, test)"),
        })
    }
}

fn lang_name(code: &str) -> &'static str {
    LANGS
        .iter()
        .find(|l| l.0 == code)
        .map_or("the target language", |l| l.1)
}

/// The instruction of the translation rows and of the `alpaca` prompt.
pub fn instruction(lang: &str) -> String {
    format!(
        "Translate the following English text into {}.",
        lang_name(lang)
    )
}

/// Translation instruction rows `{id, lang, instruction, input, output}` of one split
/// (`"train"` or `"test"`, see the module header), for the given languages (`None`: all), in
/// corpus order, from the built-in corpus or from `data`.
pub fn ui_strings(
    split: &str,
    langs: Option<&[String]>,
    data: Option<&str>,
) -> Result<Dataset, EvalError> {
    check_split(split)?;
    if let Some(ls) = langs {
        for l in ls {
            if !LANGS.iter().any(|x| x.0 == l) {
                return Err(EvalError::UnknownLang {
                    task: "ui_strings".into(),
                    lang: l.clone(),
                    known: LANGS.iter().map(|x| x.0).collect::<Vec<_>>().join(", "),
                });
            }
        }
    }
    let rows = corpus(data)?;
    let mut out = Vec::new();
    for (i, r) in rows.iter().enumerate() {
        let lang = field(r, "lang", i)?;
        if langs.is_some_and(|ls| !ls.iter().any(|l| l == lang)) {
            continue;
        }
        let en = field(r, "en", i)?;
        if split_of(en) != split {
            continue;
        }
        let mut row = Row::new();
        row.insert("id".into(), field(r, "id", i)?.into());
        row.insert("lang".into(), lang.into());
        row.insert("instruction".into(), instruction(lang).into());
        row.insert("input".into(), en.into());
        row.insert("output".into(), field(r, "text", i)?.into());
        out.push(row);
    }
    let src = format!("ui_strings({split}) from {}", data.unwrap_or(CORPUS_PATH));
    Ok(Dataset::with_source(out, src))
}

/// The `ui_translate` task.
pub struct UiTranslate;

impl Task for UiTranslate {
    fn name(&self) -> &'static str {
        "ui_translate"
    }
    fn kind(&self) -> Kind {
        Kind::Choice
    }
    fn dataset(&self) -> &'static str {
        CORPUS_PATH
    }
    fn langs(&self) -> Vec<String> {
        LANGS.iter().map(|l| l.0.to_string()).collect()
    }
    fn resolve_lang(&self, user: &str) -> Option<Lang> {
        let code = if user == "zh" { "zh_CN" } else { user };
        LANGS.iter().find(|l| l.0 == code).map(|l| Lang {
            label: user.to_string(),
            code: l.0.to_string(),
            subsets: vec![l.0.to_string()],
        })
    }
    fn metrics(&self) -> &'static [&'static str] {
        &["acc", "acc_norm", "acc_bytes"]
    }
    fn families(&self) -> &'static [&'static str] {
        &["alpaca", "plain"]
    }
    fn default_split(&self) -> &'static str {
        "test"
    }
    fn default_shot_split(&self) -> &'static str {
        "train"
    }
    fn load(
        &self,
        data: Option<&str>,
        lang: &Lang,
        split: &str,
        seed: u64,
    ) -> Result<Vec<Doc>, EvalError> {
        check_split(split)?;
        let rows = corpus(data)?;
        // (id, English, translation, length of the translation in code points)
        let mut pool: Vec<(String, String, String, usize)> = Vec::new();
        for (i, r) in rows.iter().enumerate() {
            if field(r, "lang", i)? != lang.code {
                continue;
            }
            let en = field(r, "en", i)?;
            if split_of(en) == split {
                let text = field(r, "text", i)?;
                pool.push((
                    field(r, "id", i)?.to_string(),
                    en.to_string(),
                    text.to_string(),
                    text.chars().count(),
                ));
            }
        }
        let origin = format!("{} ({}, {split})", data.unwrap_or(CORPUS_PATH), lang.code);
        let mut docs = Vec::with_capacity(pool.len());
        for (id, en, text, len) in &pool {
            let mut seen: HashSet<&str> = HashSet::new();
            let mut cands: Vec<&(String, String, String, usize)> = pool
                .iter()
                .filter(|(_, e, t, _)| e != en && t != text)
                .filter(|(_, _, t, _)| seen.insert(t.as_str()))
                .collect();
            if cands.len() < 3 {
                return Err(EvalError::NoData {
                    msg: format!(
                        "ui_translate: language '{}' split '{split}' has too few distinct strings for 3 distractors",
                        lang.label
                    ),
                    found: origin.clone(),
                });
            }
            cands.sort_by(|a, b| {
                a.3.abs_diff(*len)
                    .cmp(&b.3.abs_diff(*len))
                    .then_with(|| a.0.cmp(&b.0))
            });
            cands.truncate(NEAREST);
            let mut g = rng::derived(seed, &format!("ui_translate/{id}"));
            let mut choices: Vec<String> = choose(&mut g, cands.len(), 3)
                .iter()
                .filter_map(|&j| cands.get(j).map(|c| c.2.clone()))
                .collect();
            let pos = below(&mut g, 4);
            choices.insert(pos.min(choices.len()), text.clone());
            let mut row = Row::new();
            row.insert("id".into(), id.clone().into());
            row.insert("lang".into(), lang.code.clone().into());
            row.insert("en".into(), en.clone().into());
            row.insert("text".into(), text.clone().into());
            row.insert("choices".into(), choices.into());
            row.insert("label".into(), pos.into());
            let index = docs.len();
            docs.push(Doc {
                row,
                index,
                origin: origin.clone(),
            });
        }
        if docs.is_empty() {
            return Err(EvalError::NoData {
                msg: format!(
                    "ui_translate: no rows for language '{}' and split '{split}'",
                    lang.label
                ),
                found: origin,
            });
        }
        Ok(docs)
    }
    fn prompt(&self, doc: &Doc, lang: &Lang, family: Family) -> Result<Prompted, EvalError> {
        let en = doc.str("en")?;
        let label = usize::try_from(doc.int("label")?).unwrap_or(usize::MAX);
        let choices: Vec<String> = match doc.row.get("choices") {
            Some(Value::Array(a)) => a
                .iter()
                .filter_map(|v| v.as_str().map(String::from))
                .collect(),
            _ => return Err(doc.missing("choices")),
        };
        let target = choices
            .get(label)
            .cloned()
            .ok_or_else(|| doc.missing("label"))?;
        let query = match family {
            Family::Alpaca => alpaca_prompt(&instruction(&lang.code), en),
            _ => format!("English: {en}\n{}:", lang_name(&lang.code)),
        };
        Ok(Prompted {
            query,
            choices,
            target,
            gold: Gold::Choice(label),
            frame: None,
        })
    }
}
