//! Locating the rows of one task language and split in a Hugging Face dataset layout.
//!
//! Supported layouts, tried in this order (`<sub>` is any name of the language: the HF config
//! name such as `xquad.de`, `mlqa.ar.de`, `urd_Arab`, `hindi`, or the code; each layout also
//! under `<dir>/data/`; `validation` also matches `val` and `dev`):
//!
//! 1. `<dir>` is a file with a `lang`/`language` column (rows are filtered by language);
//! 2. `<dir>/<sub>/<split>-*.{parquet,jsonl,json,csv}`, `<dir>/<sub>/<split>.<ext>` or
//!    `<dir>/<sub>/<split>/*.<ext>` (the hub's per-config layout and its parquet export);
//! 3. `<dir>/<split>/<sub>.<ext>`;
//! 4. `<dir>/<sub>_<split>.<ext>` or `<dir>/<sub>-<split>.<ext>` (XL-Sum's `hindi_val.jsonl`);
//! 5. `<dir>/<sub>.<ext>`: one file per language and no split in the name (Belebele's
//!    `data/urd_Arab.jsonl`); used for whatever split is asked;
//! 6. files of the split that hold every language: `<dir>/<split>-*.<ext>`,
//!    `<dir>/<split>.<ext>`, or the same inside a task's shared folder (TyDiQA's
//!    `secondary_task/`), with rows filtered by language.
//!
//! When nothing matches, the error lists the data files that were found.

use std::path::{Path, PathBuf};

use super::{Doc, Lang};
use crate::data::io::{
    describe_files, is_data_file, list_dir, read_rows, split_aliases, split_files,
};
use crate::eval::EvalError;
use crate::value::Row;

/// Where the rows of a language are: files, and whether rows must be filtered by language.
#[derive(Debug, Clone, PartialEq)]
pub struct Located {
    /// Files in reading order.
    pub files: Vec<PathBuf>,
    /// Whether the files mix languages.
    pub filter: bool,
}

fn with_ext(base: &Path, stem: &str) -> Vec<PathBuf> {
    list_dir(base)
        .into_iter()
        .filter(|f| is_data_file(f))
        .filter(|f| f.file_stem().and_then(|s| s.to_str()) == Some(stem))
        .collect()
}

/// Finds the files of `lang` and `split` under `dir` (see the module header).
pub fn locate(dir: &Path, lang: &Lang, split: &str, shared: &[&str]) -> Option<Located> {
    if dir.is_file() {
        return Some(Located {
            files: vec![dir.to_path_buf()],
            filter: true,
        });
    }
    let aliases = split_aliases(split);
    let bases = [dir.to_path_buf(), dir.join("data")];
    for base in &bases {
        for sub in &lang.subsets {
            let d = base.join(sub);
            if d.is_dir() {
                let files = split_files(&d, split);
                if !files.is_empty() {
                    return Some(Located {
                        files,
                        filter: false,
                    });
                }
            }
        }
    }
    for base in &bases {
        for sub in &lang.subsets {
            for a in &aliases {
                let files = with_ext(&base.join(a), sub);
                if !files.is_empty() {
                    return Some(Located {
                        files,
                        filter: false,
                    });
                }
                for sep in ["_", "-"] {
                    let files = with_ext(base, &format!("{sub}{sep}{a}"));
                    if !files.is_empty() {
                        return Some(Located {
                            files,
                            filter: false,
                        });
                    }
                }
            }
        }
    }
    for base in &bases {
        for sub in &lang.subsets {
            let files = with_ext(base, sub);
            if !files.is_empty() {
                return Some(Located {
                    files,
                    filter: false,
                });
            }
        }
    }
    for s in shared {
        let files = split_files(&dir.join(s), split);
        if !files.is_empty() {
            return Some(Located {
                files,
                filter: true,
            });
        }
    }
    let files = split_files(dir, split);
    if !files.is_empty() {
        return Some(Located {
            files,
            filter: true,
        });
    }
    None
}

/// Appends the `rows` that `keep` accepts to `docs` as documents of `origin`, numbered on from
/// the documents already there.
pub(crate) fn push_docs(
    docs: &mut Vec<Doc>,
    rows: Vec<Row>,
    origin: &str,
    mut keep: impl FnMut(&Row) -> Result<bool, EvalError>,
) -> Result<(), EvalError> {
    for row in rows {
        if keep(&row)? {
            let index = docs.len();
            docs.push(Doc {
                row,
                index,
                origin: origin.to_string(),
            });
        }
    }
    Ok(())
}

/// Reads the documents of one language and split. `row_lang` gives the language of a row of a
/// multi-language file; a row belongs to `lang` when that equals its code, label or a subset.
pub fn load_lang_split(
    dir: &Path,
    lang: &Lang,
    split: &str,
    shared: &[&str],
    row_lang: &dyn Fn(&Row) -> Option<String>,
) -> Result<Vec<Doc>, EvalError> {
    let Some(loc) = locate(dir, lang, split, shared) else {
        return Err(EvalError::NoData {
            msg: format!(
                "no data for language '{}' (looked for: {}) and split '{split}' in {}",
                lang.label,
                lang.subsets.join(", "),
                dir.display()
            ),
            found: describe_files(dir),
        });
    };
    let mut docs = Vec::new();
    for f in &loc.files {
        let origin = f.display().to_string();
        push_docs(&mut docs, read_rows(f, None)?, &origin, |row| {
            if !loc.filter {
                return Ok(true);
            }
            match row_lang(row) {
                Some(l) => Ok(lang.is(&l)),
                None => Err(EvalError::Data(crate::data::DataError::missing(
                    format!("{origin}: language of a row"),
                    "lang",
                    row,
                ))),
            }
        })?;
    }
    if docs.is_empty() {
        let names: Vec<String> = loc.files.iter().map(|f| f.display().to_string()).collect();
        return Err(EvalError::NoData {
            msg: format!(
                "no rows for language '{}' and split '{split}' in {}",
                lang.label,
                names.join(", ")
            ),
            found: describe_files(dir),
        });
    }
    Ok(docs)
}
