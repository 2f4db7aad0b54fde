//! The generic evaluation loop: options → documents → prompts (with seeded few-shot examples)
//! → model requests in batches → per-item scores → one row per language, plus the items file.
//!
//! Follows lm-evaluation-harness' request flow (`evaluator.simple_evaluate`,
//! `ConfigurableTask.fewshot_context`, `construct_requests`, `process_results`): few-shot
//! examples are `query + delimiter + answer + "\n\n"` before the query; a multiple-choice item
//! sends `(context, delimiter + choice)` for every choice. Few-shot examples are drawn per item
//! with `rng::derived(seed, "<task>/<lang>/<doc index>")` from the shot split (excluding the
//! item itself when the shot split is the evaluation split; lm-eval's Belebele uses the first n
//! instead, we draw at random for every task). Requests go to the model in chunks of
//! `batch_size`, in document order; results depend only on the per-request answers, so the batch
//! size cannot change a score as long as the model is batch-invariant.

use std::path::Path;

use serde_json::json;
use sha2::{Digest, Sha256};

use super::metrics::classify::{choice_predictions, f1_score, Average};
use super::metrics::text::is_py_space;
use super::model::LanguageModel;
use super::prompt::{with_shots, Family};
use super::tasks::{self, Doc, Gold, Kind, Lang, Prompted, Task};
use super::template::UserPrompt;
use super::{EvalError, EvalOptions};
use crate::data::hex;
use crate::data::sampling::choose;
use crate::rng;
use crate::value::{as_key, num, Row, Value};

/// Progress of a running evaluation (requests or prompts done so far).
#[derive(Debug, Clone, Copy)]
pub struct Progress<'a> {
    /// Task name.
    pub task: &'a str,
    /// Requests answered so far.
    pub done: usize,
    /// All requests.
    pub total: usize,
}

/// Hooks the host connects: a progress callback after every batch and an interrupt check
/// before every batch (its error stops the evaluation and is returned).
#[derive(Default)]
pub struct EvalHooks<'a> {
    /// Called after every batch.
    pub progress: Option<&'a mut dyn FnMut(Progress<'_>)>,
    /// Called before every batch.
    pub interrupt: Option<&'a dyn Fn() -> Result<(), EvalError>>,
    /// The `template` closure: writes the query of a document (its fields as the dataset
    /// stores them) in a language; an `Err` is the closure's own error message.
    pub template: Option<&'a TemplateFn<'a>>,
}

/// A script's prompt function: `(document fields, language) -> query`.
pub type TemplateFn<'a> = dyn Fn(&Row, &Lang) -> Result<String, String> + 'a;

/// Result rows and per-item records.
#[derive(Debug, Clone, Default)]
pub struct EvalOutput {
    /// One row per language: `#{ task, lang, n, <metric>: value, ... }`.
    pub rows: Vec<Row>,
    /// One record per item (what the items file holds).
    pub items: Vec<Row>,
}

/// Evaluation options checked against a task (defaults filled in).
pub(crate) struct Resolved {
    pub(crate) langs: Vec<Lang>,
    pub(crate) explicit_langs: bool,
    pub(crate) split: String,
    shots: usize,
    shot_split: String,
    pub(crate) limit: Option<usize>,
    fraction: Option<f64>,
    random_sample: bool,
    /// `shot_exclude: "evaluated"`.
    exclude_evaluated: bool,
    pub(crate) seed: u64,
    batch_size: usize,
    pub(crate) family: Family,
    max_new_tokens: usize,
    user: Option<UserPrompt>,
}

impl Resolved {
    /// Between a prompt and its answer: the user's `delimiter` with a template, else the
    /// family's.
    fn delimiter(&self) -> &str {
        self.user
            .as_ref()
            .map_or(self.family.target_delimiter(), |u| u.delimiter.as_str())
    }
}

/// The task's prompt of `doc` with the user's template applied (query, answers).
fn prompt_of(
    t: &dyn Task,
    doc: &Doc,
    lang: &Lang,
    r: &Resolved,
    closure: Option<&TemplateFn<'_>>,
) -> Result<Prompted, EvalError> {
    let mut p = t.prompt(doc, lang, r.family)?;
    let Some(u) = &r.user else {
        return Ok(p);
    };
    let ctx = doc.context();
    p.query = match (&u.query, closure) {
        (Some(q), _) => q.render(&doc.row, &ctx)?,
        (None, Some(f)) => f(&doc.row, lang)
            .map_err(|e| opt_err("template", format!("{ctx}: the closure failed: {e}")))?,
        (None, None) => return Err(opt_err("template", "no closure was given".into())),
    };
    p.frame = None;
    if let Some(cs) = &u.choices {
        if p.choices.is_empty() {
            return Err(opt_err(
                "choices",
                format!("task '{}' is not multiple choice", t.name()),
            ));
        }
        if cs.len() != p.choices.len() {
            return Err(opt_err(
                "choices",
                format!(
                    "{} given, but task '{}' has {} choices per item",
                    cs.len(),
                    t.name(),
                    p.choices.len()
                ),
            ));
        }
        p.choices = cs
            .iter()
            .map(|c| c.render(&doc.row, &ctx))
            .collect::<Result<_, _>>()?;
        if let Gold::Choice(g) = p.gold {
            p.target = p.choices.get(g).cloned().unwrap_or_default();
        }
    }
    Ok(p)
}

fn opt_err(option: &'static str, msg: String) -> EvalError {
    EvalError::Option { option, msg }
}

fn non_negative(option: &'static str, v: Option<i64>, default: i64) -> Result<usize, EvalError> {
    let x = v.unwrap_or(default);
    usize::try_from(x).map_err(|_| opt_err(option, format!("must be >= 0, got {x}")))
}

/// Checks the options against the task: prompt family, languages, sizes and the seed.
/// `closure`: whether the hooks carry a `template` closure.
pub(crate) fn resolve(t: &dyn Task, o: &EvalOptions, closure: bool) -> Result<Resolved, EvalError> {
    let family_name = o.prompt.clone().unwrap_or_else(|| "alpaca".to_string());
    let family = Family::parse(&family_name)
        .filter(|f| t.families().contains(&f.as_str()))
        .ok_or_else(|| {
            opt_err(
                "prompt",
                format!(
                    "unknown prompt family '{family_name}' for task '{}' (expected one of: {})",
                    t.name(),
                    t.families().join(", ")
                ),
            )
        })?;
    let (langs, explicit_langs) = match &o.langs {
        Some(ls) => {
            if ls.is_empty() {
                return Err(opt_err("langs", "is empty".into()));
            }
            let mut out = Vec::new();
            for l in ls {
                let lang = t.resolve_lang(l).ok_or_else(|| EvalError::UnknownLang {
                    task: t.name().to_string(),
                    lang: l.clone(),
                    known: t.langs().join(", "),
                })?;
                out.push(lang);
            }
            (out, true)
        }
        None => (
            t.langs().iter().filter_map(|l| t.resolve_lang(l)).collect(),
            false,
        ),
    };
    let batch_size = non_negative("batch_size", o.batch_size, 8)?;
    if batch_size == 0 {
        return Err(opt_err("batch_size", "must be at least 1".into()));
    }
    let max_new_tokens = non_negative(
        "max_new_tokens",
        o.max_new_tokens,
        t.default_max_new_tokens() as i64,
    )?;
    let fraction = match o.fraction {
        Some(f) if !(f.is_finite() && f > 0.0 && f <= 1.0) => {
            return Err(opt_err("fraction", format!("must be in (0, 1], got {f}")))
        }
        f => f,
    };
    let random_sample = match o.sample.as_deref() {
        None | Some("first") => false,
        Some("random") => true,
        Some(other) => {
            return Err(opt_err(
                "sample",
                format!("unknown value '{other}' (expected one of: first, random)"),
            ))
        }
    };
    let exclude_evaluated = match o.shot_exclude.as_deref() {
        None | Some("item") => false,
        Some("evaluated") => true,
        Some(other) => {
            return Err(opt_err(
                "shot_exclude",
                format!("unknown value '{other}' (expected one of: item, evaluated)"),
            ))
        }
    };
    let seed = o.seed.unwrap_or(1234);
    let seed =
        u64::try_from(seed).map_err(|_| opt_err("seed", format!("must be >= 0, got {seed}")))?;
    Ok(Resolved {
        langs,
        explicit_langs,
        split: o
            .split
            .clone()
            .unwrap_or_else(|| t.default_split().to_string()),
        shots: non_negative("shots", o.shots, 0)?,
        shot_split: o
            .shot_split
            .clone()
            .unwrap_or_else(|| t.default_shot_split().to_string()),
        limit: match o.limit {
            Some(l) => Some(non_negative("limit", Some(l), 0)?),
            None => None,
        },
        fraction,
        random_sample,
        exclude_evaluated,
        seed,
        batch_size,
        family,
        max_new_tokens,
        user: UserPrompt::from_options(
            o.template.as_deref(),
            closure,
            o.choices.as_deref(),
            o.delimiter.as_deref(),
        )?,
    })
}

/// One prompt of one document, ready for the model.
struct Item {
    lang: usize,
    id: String,
    context: String,
    choices: Vec<String>,
    gold: Gold,
}

fn build_items(
    t: &dyn Task,
    o: &EvalOptions,
    r: &Resolved,
    closure: Option<&TemplateFn<'_>>,
) -> Result<(Vec<Lang>, Vec<Item>), EvalError> {
    let data = o.data.as_deref();
    let mut langs = Vec::new();
    let mut items = Vec::new();
    let mut missing = Vec::new();
    for lang in &r.langs {
        let docs = match t.load(data, lang, &r.split, r.seed) {
            Ok(d) => d,
            Err(EvalError::NoData { msg, found }) if !r.explicit_langs => {
                missing.push((msg, found));
                continue;
            }
            Err(e) => return Err(e),
        };
        let pool: Option<Vec<Doc>> = if r.shots == 0 {
            None
        } else if let Some(f) = &o.shots_file {
            Some(shot_pool_file(t, f, lang)?)
        } else if r.shot_split == r.split {
            None
        } else {
            Some(t.load(data, lang, &r.shot_split, r.seed)?)
        };
        // Two split names can resolve to one file (Belebele's `<lang>.jsonl` serves every
        // split): then the pool is the evaluated documents themselves.
        let same_split = r.shots > 0
            && pool
                .as_ref()
                .is_none_or(|p| o.shots_file.is_none() && same_files(p, &docs));
        let evaluated = subset(&docs, r, &format!("{}/{}", t.name(), lang.code));
        // `shot_exclude: "evaluated"`: the examples come from the documents of the split that
        // are not evaluated (XQuAD's single split, evaluated on its first 1,000 questions).
        let unevaluated: Option<Vec<Doc>> = (same_split && r.exclude_evaluated).then(|| {
            let keep: std::collections::HashSet<usize> =
                evaluated.iter().map(|d| d.index).collect();
            docs.iter()
                .filter(|d| !keep.contains(&d.index))
                .cloned()
                .collect()
        });
        // Whether the pool holds the evaluated documents, so that each item excludes itself.
        let own_split = same_split && unevaluated.is_none();
        let pool_docs: &[Doc] = match (&unevaluated, own_split) {
            (Some(u), _) => u,
            (None, true) => &docs,
            (None, false) => pool.as_deref().unwrap_or(&docs),
        };
        let need = r.shots + usize::from(own_split);
        if r.shots > 0 && pool_docs.len() < need {
            let from = match &o.shots_file {
                Some(f) => format!("'{f}'"),
                None if unevaluated.is_some() => format!(
                    "the documents of split '{}' of '{}' that are not evaluated",
                    r.shot_split, lang.label
                ),
                None => format!("split '{}' of '{}'", r.shot_split, lang.label),
            };
            return Err(opt_err(
                "shots",
                format!(
                    "{} few-shot examples need {need} documents, but {from} has {}",
                    r.shots,
                    pool_docs.len()
                ),
            ));
        }
        let lang_index = langs.len();
        for doc in evaluated {
            let p = prompt_of(t, doc, lang, r, closure)?;
            let delim = r.delimiter();
            let mut examples = Vec::with_capacity(r.shots);
            if r.shots > 0 {
                let purpose = format!("{}/{}/{}", t.name(), lang.code, doc.index);
                let mut g = rng::derived(r.seed, &purpose);
                let mut picks = choose(&mut g, pool_docs.len(), need);
                // Never an evaluated item as its own example: not the same document, nor a pool
                // row with the same content (a shots file or split that repeats test items).
                let own = |j: usize| {
                    (own_split && j == doc.index)
                        || pool_docs
                            .get(j)
                            .is_some_and(|sd| same_content(&sd.row, &doc.row))
                };
                if picks.iter().filter(|&&j| !own(j)).count() < r.shots {
                    // Rare: duplicates of the item in the pool; draw from the whole pool.
                    picks = choose(&mut g, pool_docs.len(), pool_docs.len());
                }
                let picks: Vec<usize> = picks
                    .into_iter()
                    .filter(|&j| !own(j))
                    .take(r.shots)
                    .collect();
                if picks.len() < r.shots {
                    return Err(opt_err(
                        "shots",
                        format!(
                            "{}: only {} of the {} pool documents differ from the item, {} \
                             few-shot examples needed",
                            doc.context(),
                            picks.len(),
                            pool_docs.len(),
                            r.shots
                        ),
                    ));
                }
                for j in picks {
                    if let Some(sd) = pool_docs.get(j) {
                        let sp = prompt_of(t, sd, lang, r, closure)?;
                        // A framed example contributes its item block, not its whole prompt.
                        let q = match (&p.frame, sp.frame) {
                            (Some(_), Some(f)) => f.block,
                            _ => sp.query,
                        };
                        examples.push((q, sp.target));
                    }
                }
            }
            let context = match &p.frame {
                Some(f) => f.render(&examples),
                None => with_shots(&examples, &p.query, delim),
            };
            items.push(Item {
                lang: lang_index,
                id: t.doc_id(doc, lang, &r.split),
                context,
                choices: p.choices,
                gold: p.gold,
            });
        }
        langs.push(lang.clone());
    }
    if langs.is_empty() {
        let (msg, found) = missing.into_iter().next().unwrap_or_else(|| {
            (
                format!("task '{}' has no languages selected", t.name()),
                "none".to_string(),
            )
        });
        return Err(EvalError::NoData { msg, found });
    }
    Ok((langs, items))
}

/// Whether two rows hold the same document, ignoring a `lang`/`language` column (a shots file
/// may add one).
fn same_content(a: &Row, b: &Row) -> bool {
    let fields = |r: &'_ Row| {
        r.len() - usize::from(r.contains_key("lang")) - usize::from(r.contains_key("language"))
    };
    fields(a) == fields(b)
        && a.iter()
            .filter(|(k, _)| *k != "lang" && *k != "language")
            .all(|(k, v)| b.get(k) == Some(v))
}

/// Whether two document lists were read from the same files.
fn same_files(a: &[Doc], b: &[Doc]) -> bool {
    fn files(d: &[Doc]) -> Vec<&str> {
        let mut f: Vec<&str> = d.iter().map(|x| x.origin.as_str()).collect();
        f.dedup();
        f
    }
    files(a) == files(b)
}

/// The few-shot pool of `shots_file`: a data file (JSON lines, JSON, CSV or Parquet) in the
/// task's schema. Rows with a `lang`/`language` column are kept for `lang` only; a file without
/// that column serves every language.
fn shot_pool_file(t: &dyn Task, path: &str, lang: &Lang) -> Result<Vec<Doc>, EvalError> {
    let p = Path::new(path);
    if !p.is_file() {
        return Err(opt_err("shots_file", format!("'{path}' is not a file")));
    }
    let mut docs = Vec::new();
    tasks::data::push_docs(
        &mut docs,
        crate::data::io::read_rows(p, None)?,
        path,
        |row| Ok(t.row_lang(row).is_none_or(|l| lang.is(&l))),
    )?;
    Ok(docs)
}

/// How many of `n` documents `limit` and `fraction` keep: `ceil(fraction × n)` (lm-eval's
/// fractional limit), capped by `limit`. A product within 1e-9 of an integer counts as that
/// integer: 7 % of 100 is 7, where lm-eval's plain `ceil` of 0.07 × 100 = 7.000000000000001
/// gives 8.
pub(crate) fn subset_size(n: usize, limit: Option<usize>, fraction: Option<f64>) -> usize {
    let by_fraction = fraction.map_or(n, |f| {
        let x = f * n as f64;
        let k = if (x - x.round()).abs() < 1e-9 {
            x.round()
        } else {
            x.ceil()
        };
        (k as usize).min(n)
    });
    limit.map_or(by_fraction, |l| l.min(by_fraction))
}

/// The documents evaluated: all, the first `subset_size`, or (`sample: "random"`) that many
/// drawn with `rng::derived(seed, "sample/<task>/<lang>")`, in dataset order.
fn subset<'a>(docs: &'a [Doc], r: &Resolved, purpose: &str) -> Vec<&'a Doc> {
    let k = subset_size(docs.len(), r.limit, r.fraction);
    if !r.random_sample || k == docs.len() {
        return docs.iter().take(k).collect();
    }
    let mut g = rng::derived(r.seed, &format!("sample/{purpose}"));
    let mut picks = choose(&mut g, docs.len(), k);
    picks.sort_unstable();
    picks.into_iter().filter_map(|i| docs.get(i)).collect()
}

/// Sends `requests` to `call` in chunks of `batch_size`, in order: the interrupt hook runs
/// before every chunk, the progress hook after it, and a chunk answered with the wrong number of
/// results is a model error (`what` names the model method).
fn in_batches<Q, A>(
    requests: &[Q],
    batch_size: usize,
    task: &str,
    what: &str,
    hooks: &mut EvalHooks<'_>,
    mut call: impl FnMut(&[Q]) -> Result<Vec<A>, EvalError>,
) -> Result<Vec<A>, EvalError> {
    let total = requests.len();
    let mut out = Vec::with_capacity(total);
    for chunk in requests.chunks(batch_size) {
        if let Some(stop) = hooks.interrupt {
            stop()?;
        }
        let answers = call(chunk)?;
        if answers.len() != chunk.len() {
            return Err(EvalError::Model(format!(
                "{what} returned {} results for {} requests",
                answers.len(),
                chunk.len()
            )));
        }
        out.extend(answers);
        if let Some(p) = hooks.progress.as_mut() {
            p(Progress {
                task,
                done: out.len(),
                total,
            });
        }
    }
    Ok(out)
}

pub(crate) fn prompt_hash(s: &str) -> String {
    let d = Sha256::digest(s.as_bytes());
    hex(&d).chars().take(16).collect()
}

/// Evaluates `task` and returns one row per language.
pub fn evaluate(
    model: &mut dyn LanguageModel,
    task: &str,
    opts: &EvalOptions,
) -> Result<Vec<Row>, EvalError> {
    Ok(evaluate_with(model, task, opts, &mut EvalHooks::default())?.rows)
}

/// Evaluates `task` with progress/interrupt hooks; returns the rows and the item records and
/// writes the items file when `opts.items_file` is set.
pub fn evaluate_with(
    model: &mut dyn LanguageModel,
    task: &str,
    opts: &EvalOptions,
    hooks: &mut EvalHooks<'_>,
) -> Result<EvalOutput, EvalError> {
    let t = tasks::find(task)?;
    let r = resolve(t, opts, hooks.template.is_some())?;
    let (langs, items) = build_items(t, opts, &r, hooks.template)?;
    let records = match t.kind() {
        Kind::Choice => run_choice(model, t, &r, &langs, &items, hooks)?,
        Kind::Generate => run_generate(model, t, &r, &langs, &items, hooks)?,
    };
    let rows = aggregate(t, &langs, &items, &records)?;
    if let Some(path) = &opts.items_file {
        write_items(path, &records)?;
    }
    Ok(EvalOutput {
        rows,
        items: records,
    })
}

fn base_record(t: &dyn Task, langs: &[Lang], it: &Item) -> Row {
    let mut rec = Row::new();
    rec.insert("task".into(), t.name().into());
    rec.insert(
        "lang".into(),
        langs.get(it.lang).map_or("", |l| l.label.as_str()).into(),
    );
    rec.insert("id".into(), it.id.clone().into());
    rec.insert("prompt_hash".into(), prompt_hash(&it.context).into());
    rec
}

fn run_choice(
    model: &mut dyn LanguageModel,
    t: &dyn Task,
    r: &Resolved,
    langs: &[Lang],
    items: &[Item],
    hooks: &mut EvalHooks<'_>,
) -> Result<Vec<Row>, EvalError> {
    let delim = r.delimiter();
    let requests: Vec<(String, String)> = items
        .iter()
        .flat_map(|it| {
            it.choices
                .iter()
                .map(|c| (it.context.clone(), format!("{delim}{c}")))
        })
        .collect();
    let lls = in_batches(
        &requests,
        r.batch_size,
        t.name(),
        "loglikelihood",
        hooks,
        |chunk| model.loglikelihood(chunk, r.batch_size),
    )?;
    let mut records = Vec::with_capacity(items.len());
    let mut k = 0;
    for it in items {
        let scores: Vec<f64> = lls
            .get(k..k + it.choices.len())
            .unwrap_or(&[])
            .iter()
            .map(|l| l.logprob)
            .collect();
        k += it.choices.len();
        let preds = choice_predictions(&scores, &it.choices)?;
        let gold = match it.gold {
            Gold::Choice(g) => g,
            Gold::Texts(_) => {
                return Err(EvalError::Model("a choice item has a text gold".into()));
            }
        };
        let hit = |p: usize| if p == gold { 1.0 } else { 0.0 };
        let mut rec = base_record(t, langs, it);
        rec.insert("prediction".into(), preds.acc.into());
        rec.insert("gold".into(), gold.into());
        rec.insert("choices".into(), it.choices.clone().into());
        rec.insert(
            "scores".into(),
            Value::Array(scores.iter().map(|s| num(*s)).collect()),
        );
        rec.insert("correct".into(), (preds.acc == gold).into());
        rec.insert(
            "metrics".into(),
            json!({"acc": hit(preds.acc), "acc_norm": hit(preds.acc_norm), "acc_bytes": hit(preds.acc_bytes)}),
        );
        records.push(rec);
    }
    Ok(records)
}

fn run_generate(
    model: &mut dyn LanguageModel,
    t: &dyn Task,
    r: &Resolved,
    langs: &[Lang],
    items: &[Item],
    hooks: &mut EvalHooks<'_>,
) -> Result<Vec<Row>, EvalError> {
    let prompts: Vec<String> = items.iter().map(|it| it.context.clone()).collect();
    let stop = t.stop();
    let outs = in_batches(
        &prompts,
        r.batch_size,
        t.name(),
        "generate_until",
        hooks,
        |chunk| model.generate_until(chunk, r.max_new_tokens, &stop, r.batch_size),
    )?;
    let mut records = Vec::with_capacity(items.len());
    for (it, raw) in items.iter().zip(&outs) {
        let pred = raw.trim_matches(is_py_space).to_string();
        let golds = match &it.gold {
            Gold::Texts(g) => g.clone(),
            Gold::Choice(_) => {
                return Err(EvalError::Model(
                    "a generation item has a choice gold".into(),
                ))
            }
        };
        let lang = langs
            .get(it.lang)
            .ok_or_else(|| EvalError::Model("language index".into()))?;
        let scores = t.score_generation(&pred, &golds, lang)?;
        let mut rec = base_record(t, langs, it);
        rec.insert("prediction".into(), pred.into());
        rec.insert("gold".into(), golds.into());
        let em = scores
            .iter()
            .find(|(k, _)| *k == "exact_match")
            .map(|(_, v)| *v);
        rec.insert(
            "correct".into(),
            em.map_or(Value::Null, |v| Value::Bool(v >= 1.0)),
        );
        let mut m = Row::new();
        for (k, v) in &scores {
            m.insert((*k).to_string(), num(*v));
        }
        rec.insert("metrics".into(), Value::Object(m));
        records.push(rec);
    }
    Ok(records)
}

fn aggregate(
    t: &dyn Task,
    langs: &[Lang],
    items: &[Item],
    records: &[Row],
) -> Result<Vec<Row>, EvalError> {
    let mut rows = Vec::with_capacity(langs.len());
    for (li, lang) in langs.iter().enumerate() {
        let recs: Vec<&Row> = items
            .iter()
            .zip(records)
            .filter(|(it, _)| it.lang == li)
            .map(|(_, r)| r)
            .collect();
        let mut row = Row::new();
        row.insert("task".into(), t.name().into());
        row.insert("lang".into(), lang.label.clone().into());
        row.insert("n".into(), recs.len().into());
        for &m in t.metrics() {
            let average = match m {
                "f1_macro" => Some(Average::Macro),
                "f1_micro" => Some(Average::Micro),
                _ => None,
            };
            let value = if let Some(average) = average {
                let key = |r: &Row, k: &str| r.get(k).map(as_key).unwrap_or_default();
                let preds: Vec<String> = recs.iter().map(|r| key(r, "prediction")).collect();
                let golds: Vec<String> = recs.iter().map(|r| key(r, "gold")).collect();
                if recs.is_empty() {
                    f64::NAN
                } else {
                    f1_score(&preds, &golds, average)?
                }
            } else {
                let vals: Vec<f64> = recs
                    .iter()
                    .filter_map(|r| {
                        r.get("metrics")
                            .and_then(|x| x.get(m))
                            .and_then(Value::as_f64)
                    })
                    .collect();
                if vals.is_empty() {
                    f64::NAN
                } else {
                    vals.iter().sum::<f64>() / vals.len() as f64
                }
            };
            row.insert(m.to_string(), num(value));
        }
        rows.push(row);
    }
    Ok(rows)
}

/// Writes item records as JSON lines (creating parent folders).
pub fn write_items(path: &str, items: &[Row]) -> Result<(), EvalError> {
    let io = |e: std::io::Error| EvalError::Io {
        path: path.to_string(),
        source: e,
    };
    let p = Path::new(path);
    if let Some(parent) = p.parent() {
        if !parent.as_os_str().is_empty() {
            std::fs::create_dir_all(parent).map_err(io)?;
        }
    }
    crate::fsutil::write_atomic_with(p, |w| {
        for it in items {
            let line = serde_json::to_string(it)?;
            writeln!(w, "{line}")?;
        }
        Ok(())
    })
    .map_err(io)
}
