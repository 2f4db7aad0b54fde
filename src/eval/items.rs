//! Joining items files across runs: one row per item, one column per run, so that paired tests
//! (McNemar, the paired permutation test) compare two variants on the same items.
//!
//! An items file is what `evaluate(..., #{ items_file })` writes ([`super::write_items`]): one
//! JSON object per line with at least `task`, `lang`, `id`, `prompt_hash`, `correct` and a
//! `metrics` map (`acc`, `acc_norm`, `acc_bytes` for multiple choice; `exact_match`, `f1` or
//! `rouge1`, `rouge2`, `rougeL` for generation). An item is identified by `(task, lang, id)`:
//! `id` is the document's own `id`/`idx` field, or `<lang code>-<split>-<index>`, so it is unique
//! within one task and language of one evaluation. The joined value of an item is its `correct`
//! flag as 0/1 (the default) or the number `metrics.<metric>`.

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::data::hex;
use crate::table::Table;
use crate::value::{as_key, Row, Value};

/// The identity columns of a joined table; labels may not use them.
pub const KEY_COLUMNS: [&str; 3] = ["task", "lang", "id"];

/// Errors of [`join_items`]. Every message names the file, and the line where there is one.
#[derive(Debug, thiserror::Error)]
pub enum ItemsError {
    /// No files were given.
    #[error("no items files given (pass #{{ label: path, ... }} or [#{{ label, path }}, ...])")]
    NoFiles,
    /// A label is empty, repeated or an identity column name.
    #[error("label '{label}': {why}")]
    BadLabel {
        /// The label.
        label: String,
        /// What is wrong with it.
        why: String,
    },
    /// A bad option value.
    #[error("option '{option}': {msg}")]
    Option {
        /// The option.
        option: &'static str,
        /// What is wrong.
        msg: String,
    },
    /// The file could not be read.
    #[error("cannot read items file {path}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A line is not an item record.
    #[error("{path}:{line}: {msg}")]
    Malformed {
        /// The file.
        path: PathBuf,
        /// Line number, from 1.
        line: usize,
        /// What is wrong.
        msg: String,
    },
    /// The file has no item lines.
    #[error("{path}: the items file has no items")]
    Empty {
        /// The file.
        path: PathBuf,
    },
    /// The same item twice in one file.
    #[error("{path}:{line}: item {item} already appears on line {first_line}; an items file has each item once (was it written by two evaluations?)")]
    Duplicate {
        /// The file.
        path: PathBuf,
        /// Line of the repetition, from 1.
        line: usize,
        /// Line of the first occurrence.
        first_line: usize,
        /// The item.
        item: String,
    },
    /// A file's items differ from the first file's.
    #[error("{path} ('{label}') has other items than the first file ('{first_label}'): {detail}; join only the items common to all files with #{{ intersect: true }}")]
    Mismatch {
        /// The file.
        path: PathBuf,
        /// Its label.
        label: String,
        /// The first file's label.
        first_label: String,
        /// Counts and examples of missing and extra items (naming the first file).
        detail: String,
    },
    /// `intersect: true` left nothing.
    #[error("no item is in every file ({counts})")]
    NoCommonItems {
        /// `label: n items` per file.
        counts: String,
    },
    /// An item was asked with different prompts in two files.
    #[error("{path}:{line}: item {item} {hashes}: the runs used other prompts (prompt family, shots or seed); pass #{{ check_prompts: false }} to join them anyway")]
    PromptMismatch {
        /// The file.
        path: PathBuf,
        /// Line, from 1.
        line: usize,
        /// The item.
        item: String,
        /// `has prompt_hash <here>, but <first file> has <there>`.
        hashes: String,
    },
    /// The file is not the one a stored result recorded.
    #[error("{path}: its sha256 is {actual}, but '{label}' recorded {expected}: the file was rewritten after that result was stored (e.g. by an interrupted --rerun); recompute the cell")]
    Checksum {
        /// The file.
        path: PathBuf,
        /// Its label.
        label: String,
        /// The recorded hash.
        expected: String,
        /// The file's hash.
        actual: String,
    },
    /// Stopped by Ctrl-C.
    #[error(transparent)]
    Interrupted(#[from] crate::interrupt::Interrupted),
}

/// Shorthand for results of this module.
pub type Result<T> = std::result::Result<T, ItemsError>;

/// One input of [`join_items`]: a column label and its items file.
#[derive(Debug, Clone, PartialEq)]
pub struct ItemsSource {
    /// The column name in the joined table (e.g. `"lora/seed1"`).
    pub label: String,
    /// The items file.
    pub path: PathBuf,
    /// The file's expected SHA-256 (lowercase hex), e.g. recorded with the run's result; the
    /// join fails when the file differs.
    pub sha256: Option<String>,
}

/// Options of [`join_items`] (the keys of the script's options map; unknown keys are rejected).
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct JoinOptions {
    /// `"correct"` (0/1 from the `correct` flag) or a key of the records' `metrics` map.
    pub metric: String,
    /// Keep only the items present in every file (else differing item sets are an error).
    pub intersect: bool,
    /// Require every item to have the same `prompt_hash` in every file.
    pub check_prompts: bool,
}

impl Default for JoinOptions {
    fn default() -> Self {
        JoinOptions {
            metric: "correct".into(),
            intersect: false,
            check_prompts: true,
        }
    }
}

/// An item's identity: (task, lang, id).
type ItemKey = (String, String, String);

/// One file's records in file order and the position of each item.
type FileItems = (Vec<Rec>, HashMap<ItemKey, usize>);

/// One item of one file.
struct Rec {
    key: ItemKey,
    ids: [Value; 3],
    line: usize,
    prompt_hash: Option<String>,
    value: Value,
}

fn show(key: &ItemKey) -> String {
    format!("(task {}, lang {}, id {})", key.0, key.1, key.2)
}

fn malformed(path: &Path, line: usize, msg: String) -> ItemsError {
    ItemsError::Malformed {
        path: path.to_path_buf(),
        line,
        msg,
    }
}

/// The value of one record under `metric`.
fn value_of(obj: &Row, metric: &str, path: &Path, line: usize) -> Result<Value> {
    let metric_names = || match obj.get("metrics") {
        Some(Value::Object(m)) if !m.is_empty() => m.keys().cloned().collect::<Vec<_>>().join(", "),
        _ => "none".to_string(),
    };
    if metric == "correct" {
        return match obj.get("correct") {
            Some(Value::Bool(b)) => Ok(Value::from(i64::from(*b))),
            Some(Value::Null) => Err(malformed(
                path,
                line,
                format!(
                    "'correct' is null (a generation task without exact_match); pick a metric with #{{ metric: ... }} (this item has: {})",
                    metric_names()
                ),
            )),
            Some(other) => Err(malformed(
                path,
                line,
                format!("'correct' must be true or false, got {other}"),
            )),
            None => Err(malformed(path, line, "no field 'correct'".into())),
        };
    }
    let m = match obj.get("metrics") {
        Some(Value::Object(m)) => m,
        Some(other) => {
            return Err(malformed(
                path,
                line,
                format!("'metrics' must be a map, got {other}"),
            ))
        }
        None => return Err(malformed(path, line, "no field 'metrics'".into())),
    };
    match m.get(metric) {
        Some(Value::Number(n)) if n.as_f64().is_some_and(f64::is_finite) => {
            Ok(Value::Number(n.clone()))
        }
        Some(other) => Err(malformed(
            path,
            line,
            format!("metric '{metric}' must be a finite number, got {other}"),
        )),
        None => Err(malformed(
            path,
            line,
            format!(
                "no metric '{metric}' (this item has: {}; or use \"correct\")",
                metric_names()
            ),
        )),
    }
}

/// Parses one line into a record.
fn parse_line(text: &str, metric: &str, path: &Path, line: usize) -> Result<Rec> {
    let v: Value = serde_json::from_str(text)
        .map_err(|e| malformed(path, line, format!("not a JSON object: {e}")))?;
    let Value::Object(obj) = v else {
        return Err(malformed(path, line, format!("not a JSON object: {v}")));
    };
    let mut ids: [Value; 3] = Default::default();
    let mut key: [String; 3] = Default::default();
    for (i, f) in KEY_COLUMNS.iter().enumerate() {
        match obj.get(*f) {
            Some(Value::String(s)) => key[i] = s.clone(),
            Some(v @ Value::Number(_)) if *f == "id" => key[i] = as_key(v),
            Some(other) => {
                return Err(malformed(
                    path,
                    line,
                    format!("'{f}' must be a string, got {other}"),
                ))
            }
            None => return Err(malformed(path, line, format!("no field '{f}'"))),
        }
        ids[i] = obj.get(*f).cloned().unwrap_or(Value::Null);
    }
    let prompt_hash = match obj.get("prompt_hash") {
        Some(Value::String(s)) => Some(s.clone()),
        None | Some(Value::Null) => None,
        Some(other) => {
            return Err(malformed(
                path,
                line,
                format!("'prompt_hash' must be a string, got {other}"),
            ))
        }
    };
    let value = value_of(&obj, metric, path, line)?;
    let [task, lang, id] = key;
    Ok(Rec {
        key: (task, lang, id),
        ids,
        line,
        prompt_hash,
        value,
    })
}

/// Reads one items file: its records in file order, the index of each key, and the file's
/// SHA-256.
fn read_file(src: &ItemsSource, metric: &str) -> Result<FileItems> {
    let path = src.path.as_path();
    let io = |e: std::io::Error| ItemsError::Io {
        path: path.to_path_buf(),
        source: e,
    };
    let mut reader = BufReader::new(std::fs::File::open(path).map_err(io)?);
    let mut hasher = Sha256::new();
    let mut recs: Vec<Rec> = Vec::new();
    let mut index: HashMap<ItemKey, usize> = HashMap::new();
    let mut buf = Vec::new();
    let mut line = 0usize;
    loop {
        if line.is_multiple_of(4096) {
            crate::interrupt::check()?;
        }
        buf.clear();
        if reader.read_until(b'\n', &mut buf).map_err(io)? == 0 {
            break;
        }
        line += 1;
        hasher.update(&buf);
        let text = std::str::from_utf8(&buf)
            .map_err(|e| malformed(path, line, format!("not UTF-8 text: {e}")))?;
        if text.trim().is_empty() {
            continue;
        }
        let rec = parse_line(text, metric, path, line)?;
        if let Some(&j) = index.get(&rec.key) {
            return Err(ItemsError::Duplicate {
                path: path.to_path_buf(),
                line,
                first_line: recs[j].line,
                item: show(&rec.key),
            });
        }
        index.insert(rec.key.clone(), recs.len());
        recs.push(rec);
    }
    if let Some(expected) = &src.sha256 {
        let actual = hex(&hasher.finalize());
        if !actual.eq_ignore_ascii_case(expected.trim()) {
            return Err(ItemsError::Checksum {
                path: path.to_path_buf(),
                label: src.label.clone(),
                expected: expected.clone(),
                actual,
            });
        }
    }
    if recs.is_empty() {
        return Err(ItemsError::Empty {
            path: path.to_path_buf(),
        });
    }
    Ok((recs, index))
}

fn check_labels(sources: &[ItemsSource]) -> Result<()> {
    if sources.is_empty() {
        return Err(ItemsError::NoFiles);
    }
    let mut seen = HashSet::new();
    for s in sources {
        let why = if s.label.is_empty() {
            Some("is empty".to_string())
        } else if KEY_COLUMNS.contains(&s.label.as_str()) {
            Some("is an item column (task, lang, id); choose another label".to_string())
        } else if !seen.insert(s.label.as_str()) {
            Some("is given twice".to_string())
        } else {
            None
        };
        if let Some(why) = why {
            return Err(ItemsError::BadLabel {
                label: s.label.clone(),
                why,
            });
        }
    }
    Ok(())
}

/// `n item(s) ... (e.g. <item>)` for a mismatch message.
fn describe(n: usize, what: &str, example: Option<String>) -> Option<String> {
    (n > 0).then(|| format!("{n} item(s) {what} (e.g. {})", example.unwrap_or_default()))
}

/// Joins items files on `(task, lang, id)`: one row per item, in the order of the first file,
/// with the columns `task, lang, id` and then one column per source (its label) holding the
/// item's `correct` flag as 0/1 or its metric `opts.metric`.
///
/// Errors (each naming the file, and the line where there is one): no sources; an empty,
/// repeated or reserved label; an unreadable file; a line that is not an item record or lacks
/// the value; a file without items; an item twice in one file; item sets that differ (unless
/// `intersect`, which keeps the items common to all files and fails if there are none); an item
/// whose `prompt_hash` differs between files (unless `check_prompts` is false); a file whose
/// SHA-256 differs from its source's `sha256`.
pub fn join_items(sources: &[ItemsSource], opts: &JoinOptions) -> Result<Table> {
    check_labels(sources)?;
    if opts.metric.is_empty() {
        return Err(ItemsError::Option {
            option: "metric",
            msg: "is empty (use \"correct\" or a metric name such as \"acc\" or \"f1\")".into(),
        });
    }
    let files = sources
        .iter()
        .map(|s| read_file(s, &opts.metric))
        .collect::<Result<Vec<_>>>()?;
    let (first_recs, _) = &files[0];
    let first = &sources[0];
    // Items in every file, in the first file's order.
    let keep: Vec<usize> = (0..first_recs.len())
        .filter(|&i| {
            files
                .iter()
                .all(|(_, idx)| idx.contains_key(&first_recs[i].key))
        })
        .collect();
    if !opts.intersect {
        for (src, (recs, idx)) in sources.iter().zip(&files).skip(1) {
            let missing: Vec<&Rec> = first_recs
                .iter()
                .filter(|r| !idx.contains_key(&r.key))
                .collect();
            let extra: Vec<&Rec> = recs
                .iter()
                .filter(|r| !files[0].1.contains_key(&r.key))
                .collect();
            let parts: Vec<String> = [
                describe(
                    missing.len(),
                    &format!("of {} are missing", first.path.display()),
                    missing.first().map(|r| show(&r.key)),
                ),
                describe(
                    extra.len(),
                    "are not in the first file",
                    extra
                        .first()
                        .map(|r| format!("{} on line {}", show(&r.key), r.line)),
                ),
            ]
            .into_iter()
            .flatten()
            .collect();
            if !parts.is_empty() {
                return Err(ItemsError::Mismatch {
                    path: src.path.clone(),
                    label: src.label.clone(),
                    first_label: first.label.clone(),
                    detail: parts.join("; "),
                });
            }
        }
    } else if keep.is_empty() {
        let counts: Vec<String> = sources
            .iter()
            .zip(&files)
            .map(|(s, (r, _))| format!("'{}': {} items", s.label, r.len()))
            .collect();
        return Err(ItemsError::NoCommonItems {
            counts: counts.join(", "),
        });
    }
    let mut out = Table::new();
    for (n, &i) in keep.iter().enumerate() {
        if n.is_multiple_of(4096) {
            crate::interrupt::check()?;
        }
        let head = &first_recs[i];
        let mut row = Row::new();
        for (c, v) in KEY_COLUMNS.iter().zip(&head.ids) {
            row.insert((*c).to_string(), v.clone());
        }
        for (src, (recs, idx)) in sources.iter().zip(&files) {
            let rec = &recs[idx[&head.key]];
            if opts.check_prompts {
                if let (Some(a), Some(b)) = (&head.prompt_hash, &rec.prompt_hash) {
                    if a != b {
                        return Err(ItemsError::PromptMismatch {
                            path: src.path.clone(),
                            line: rec.line,
                            item: show(&rec.key),
                            hashes: format!(
                                "has prompt_hash {b}, but {} has {a}",
                                first.path.display()
                            ),
                        });
                    }
                }
            }
            row.insert(src.label.clone(), rec.value.clone());
        }
        out.push(row);
    }
    Ok(out)
}
