//! Reading and writing dataset files: JSON lines, JSON arrays, CSV and parquet, and locating
//! split files in Hugging Face dataset directories.
//!
//! Directory layouts follow what `datasets`/`huggingface_hub` put on disk: sharded parquet
//! (`<split>-00000-of-00001.parquet`, the hub's parquet export), one file per split
//! (`validation.jsonl`), a folder per split (`<split>/0000.parquet`), each optionally under
//! `data/`. Split aliases: `validation` also matches `val` and `dev`.

use std::fs;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

use super::{fields_present, unique_columns, DataError, Dataset};
use crate::value::{Row, Value};

/// File extensions that hold rows.
pub const DATA_EXTENSIONS: [&str; 4] = ["parquet", "jsonl", "json", "csv"];

/// Options of `load_dataset`.
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// Split to read from a directory (default `train`; ignored for a single file).
    pub split: Option<String>,
    /// Keep only the first `limit` rows.
    pub limit: Option<usize>,
}

/// Loads a file (`.jsonl`, `.json`, `.csv`, `.parquet`) or a dataset directory.
///
/// For a directory, the split files of `opts.split` (default `train`) are read in name order
/// (see [`split_files`]); when no split was asked for and the directory holds exactly one data
/// file, that file is read. Otherwise the error lists the files that were found.
pub fn load_dataset(path: &str, opts: &LoadOptions) -> Result<Dataset, DataError> {
    let p = Path::new(path);
    if p.is_dir() {
        let split = opts.split.as_deref().unwrap_or("train");
        let mut files = split_files(p, split);
        if files.is_empty() && opts.split.is_none() {
            let here: Vec<PathBuf> = list_dir(p)
                .into_iter()
                .filter(|f| is_data_file(f))
                .collect();
            if here.len() == 1 {
                files = here;
            }
        }
        if files.is_empty() {
            return Err(DataError::NotFound {
                msg: format!("load_dataset: no files for split '{split}' in {path}"),
                found: describe_files(p),
            });
        }
        let mut rows = Vec::new();
        for f in &files {
            let left = opts.limit.map(|l| l.saturating_sub(rows.len()));
            if left == Some(0) {
                break;
            }
            rows.extend(read_rows(f, left)?);
        }
        let names: Vec<String> = files.iter().map(|f| f.display().to_string()).collect();
        Ok(Dataset::with_source(rows, names.join(", ")))
    } else if p.is_file() {
        Ok(Dataset::with_source(read_rows(p, opts.limit)?, path))
    } else {
        Err(DataError::Io {
            path: path.to_string(),
            source: std::io::Error::new(std::io::ErrorKind::NotFound, "no such file or directory"),
        })
    }
}

/// Whether a path has one of the [`DATA_EXTENSIONS`].
pub fn is_data_file(p: &Path) -> bool {
    p.is_file()
        && p.extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| DATA_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
}

/// The names a split may have on disk.
pub fn split_aliases(split: &str) -> Vec<String> {
    match split {
        "validation" | "val" | "dev" => vec!["validation".into(), "val".into(), "dev".into()],
        other => vec![other.to_string()],
    }
}

/// Entries of a directory, sorted by name (empty when unreadable).
pub fn list_dir(dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = match fs::read_dir(dir) {
        Ok(rd) => rd.filter_map(|e| e.ok().map(|e| e.path())).collect(),
        Err(_) => Vec::new(),
    };
    out.sort();
    out
}

fn stem_of(p: &Path) -> String {
    p.file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("")
        .to_string()
}

/// The files of `split` directly in `dir` or in `dir/data`: `<split>.<ext>`,
/// `<split>-*.<ext>` (shards) and `<split>/*.<ext>`, in name order. Empty when none.
pub fn split_files(dir: &Path, split: &str) -> Vec<PathBuf> {
    for base in [dir.to_path_buf(), dir.join("data")] {
        for name in split_aliases(split) {
            let files = split_files_in(&base, &name);
            if !files.is_empty() {
                return files;
            }
        }
    }
    Vec::new()
}

fn split_files_in(base: &Path, name: &str) -> Vec<PathBuf> {
    let prefix = format!("{name}-");
    let mut files: Vec<PathBuf> = list_dir(base)
        .into_iter()
        .filter(|f| is_data_file(f))
        .filter(|f| {
            let s = stem_of(f);
            s == name || s.starts_with(&prefix)
        })
        .collect();
    if files.is_empty() {
        let sub = base.join(name);
        if sub.is_dir() {
            files = list_dir(&sub)
                .into_iter()
                .filter(|f| is_data_file(f))
                .collect();
        }
    }
    files
}

/// A short listing of the data files under `dir` (three levels deep, at most 40 names), for
/// error messages.
pub fn describe_files(dir: &Path) -> String {
    let mut found = Vec::new();
    collect_files(dir, dir, 3, &mut found);
    if found.is_empty() {
        return "none".to_string();
    }
    let n = found.len();
    found.truncate(40);
    let mut s = found.join(", ");
    if n > 40 {
        s.push_str(&format!(", ... ({} more)", n - 40));
    }
    s
}

fn collect_files(root: &Path, dir: &Path, depth: usize, out: &mut Vec<String>) {
    for p in list_dir(dir) {
        if p.is_dir() {
            if depth > 1 {
                collect_files(root, &p, depth - 1, out);
            }
        } else if is_data_file(&p) {
            let rel = p.strip_prefix(root).unwrap_or(&p);
            out.push(rel.display().to_string());
        }
    }
}

fn io_err(path: &Path, source: std::io::Error) -> DataError {
    DataError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// Reads the rows of one file, choosing the reader by extension; at most `limit` rows.
pub fn read_rows(path: &Path, limit: Option<usize>) -> Result<Vec<Row>, DataError> {
    if !path.exists() {
        return Err(io_err(
            path,
            std::io::Error::new(std::io::ErrorKind::NotFound, "no such file or directory"),
        ));
    }
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(|e| e.to_ascii_lowercase())
        .unwrap_or_default();
    match ext.as_str() {
        "jsonl" => read_jsonl(path, limit),
        "json" => read_json(path, limit),
        "csv" => read_csv(path, limit),
        "parquet" => super::parquet::read_parquet(path, limit),
        "" => Err(DataError::Invalid {
            func: "load_dataset",
            msg: format!(
                "{}: the file name has no extension, so its format is unknown (expected one of: \
                 .jsonl, .json, .csv, .parquet)",
                path.display()
            ),
        }),
        other => Err(DataError::Invalid {
            func: "load_dataset",
            msg: format!(
                "{}: unsupported file type '.{other}' (expected one of: .jsonl, .json, .csv, .parquet)",
                path.display()
            ),
        }),
    }
}

fn read_jsonl(path: &Path, limit: Option<usize>) -> Result<Vec<Row>, DataError> {
    let f = fs::File::open(path).map_err(|e| io_err(path, e))?;
    parse_jsonl(BufReader::new(f), &path.display().to_string(), limit)
}

/// Parses JSON lines from a reader; blank lines are skipped; `file` names the source in errors.
pub fn parse_jsonl<R: BufRead>(
    reader: R,
    file: &str,
    limit: Option<usize>,
) -> Result<Vec<Row>, DataError> {
    let mut rows = Vec::new();
    for (i, line) in reader.lines().enumerate() {
        crate::interrupt::check()?;
        if limit.is_some_and(|l| rows.len() >= l) {
            break;
        }
        let line = line.map_err(|e| DataError::Parse {
            file: file.to_string(),
            line: i + 1,
            msg: e.to_string(),
        })?;
        if line.trim().is_empty() {
            continue;
        }
        let v: Value = serde_json::from_str(&line).map_err(|e| DataError::Parse {
            file: file.to_string(),
            line: i + 1,
            msg: format!("invalid JSON: {e}"),
        })?;
        match v {
            Value::Object(m) => rows.push(m),
            other => {
                return Err(DataError::Parse {
                    file: file.to_string(),
                    line: i + 1,
                    msg: format!("expected a JSON object, found {}", type_name(&other)),
                })
            }
        }
    }
    Ok(rows)
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// A `.json` file holds an array of objects; a file that is not one JSON value is read as JSON
/// lines (the hub stores many JSON-lines files with a `.json` extension).
fn read_json(path: &Path, limit: Option<usize>) -> Result<Vec<Row>, DataError> {
    let text = fs::read_to_string(path).map_err(|e| io_err(path, e))?;
    let file = path.display().to_string();
    match serde_json::from_str::<Value>(&text) {
        Ok(Value::Array(items)) => {
            let mut rows = Vec::new();
            for (i, v) in items.into_iter().enumerate() {
                crate::interrupt::check()?;
                if limit.is_some_and(|l| rows.len() >= l) {
                    break;
                }
                match v {
                    Value::Object(m) => rows.push(m),
                    other => {
                        return Err(DataError::Parse {
                            file,
                            line: i + 1,
                            msg: format!(
                                "element {} of the top-level array is {}, not an object",
                                i + 1,
                                type_name(&other)
                            ),
                        })
                    }
                }
            }
            Ok(rows)
        }
        Ok(Value::Object(m)) => Ok(vec![m]),
        Ok(other) => Err(DataError::Parse {
            file,
            line: 1,
            msg: format!("expected an array of objects, found {}", type_name(&other)),
        }),
        Err(_) if text.trim_start().starts_with('{') => {
            parse_jsonl(BufReader::new(text.as_bytes()), &file, limit)
        }
        Err(e) => Err(DataError::Parse {
            file,
            line: e.line(),
            msg: format!("invalid JSON: {e}"),
        }),
    }
}

/// Reads a CSV file with a header row. Cells that are plain integers (no leading zeros) or
/// decimal numbers become numbers, empty cells become `null`, everything else stays a string.
fn read_csv(path: &Path, limit: Option<usize>) -> Result<Vec<Row>, DataError> {
    let file = path.display().to_string();
    let mut rdr = csv::ReaderBuilder::new()
        .has_headers(true)
        .from_path(path)
        .map_err(|e| DataError::Parse {
            file: file.clone(),
            line: 1,
            msg: e.to_string(),
        })?;
    let headers: Vec<String> = rdr
        .headers()
        .map_err(|e| DataError::Parse {
            file: file.clone(),
            line: 1,
            msg: e.to_string(),
        })?
        .iter()
        .map(str::to_string)
        .collect();
    unique_columns(&file, 1, &headers)?;
    let mut rows = Vec::new();
    for rec in rdr.records() {
        crate::interrupt::check()?;
        if limit.is_some_and(|l| rows.len() >= l) {
            break;
        }
        let rec = rec.map_err(|e| {
            let line = e.position().map(|p| p.line() as usize).unwrap_or(0);
            DataError::Parse {
                file: file.clone(),
                line,
                msg: e.to_string(),
            }
        })?;
        let mut row = Row::new();
        for (h, cell) in headers.iter().zip(rec.iter()) {
            row.insert(h.clone(), csv_cell(cell));
        }
        rows.push(row);
    }
    Ok(rows)
}

fn csv_cell(s: &str) -> Value {
    if s.is_empty() {
        return Value::Null;
    }
    let digits = s.strip_prefix('-').unwrap_or(s);
    let plain_int = !digits.is_empty()
        && digits.bytes().all(|b| b.is_ascii_digit())
        && (digits == "0" || !digits.starts_with('0'));
    if plain_int {
        if let Ok(i) = s.parse::<i64>() {
            return Value::from(i);
        }
    }
    let looks_decimal = s
        .bytes()
        .all(|b| b.is_ascii_digit() || b"+-.eE".contains(&b))
        && s.bytes().any(|b| b.is_ascii_digit())
        && !s.starts_with("00");
    if looks_decimal {
        if let Ok(x) = s.parse::<f64>() {
            if x.is_finite() {
                return crate::value::num(x);
            }
        }
    }
    Value::String(s.to_string())
}

/// Writes rows as `.jsonl`, `.json` (an array) or `.csv` (header = every key in order of first
/// appearance; strings as-is, `null` as an empty cell, arrays and maps as JSON text).
pub fn save_rows(rows: &[Row], path: &Path) -> Result<(), DataError> {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(|e| e.to_ascii_lowercase())
        .unwrap_or_default();
    if let Some(parent) = path.parent() {
        if !parent.as_os_str().is_empty() {
            fs::create_dir_all(parent).map_err(|e| io_err(parent, e))?;
        }
    }
    // Every format is written through the atomic writer: a failed write (full disk, size
    // limit) keeps the previous file. A formatting error inside the writer is kept aside and
    // reported as itself rather than as an I/O error.
    let mut invalid: Option<DataError> = None;
    let mut stash = |msg: String| {
        invalid.get_or_insert(DataError::Invalid { func: "save", msg });
        std::io::Error::other("invalid row")
    };
    let written = match ext.as_str() {
        "jsonl" => crate::fsutil::write_atomic_with(path, |w| {
            for r in rows {
                let line = serde_json::to_string(r).map_err(|e| stash(e.to_string()))?;
                writeln!(w, "{line}")?;
            }
            Ok(())
        }),
        "json" => {
            let text = serde_json::to_string_pretty(rows).map_err(|e| DataError::Invalid {
                func: "save",
                msg: e.to_string(),
            })?;
            crate::fsutil::write_atomic(path, (text + "\n").as_bytes())
        }
        "csv" => {
            let mut header: Vec<String> = Vec::new();
            for r in rows {
                for k in r.keys() {
                    if !header.contains(k) {
                        header.push(k.clone());
                    }
                }
            }
            crate::fsutil::write_atomic_with(path, |w| {
                let mut cw = csv::Writer::from_writer(w);
                cw.write_record(&header)?;
                for r in rows {
                    let cells: Vec<String> = header
                        .iter()
                        .map(|h| match r.get(h) {
                            None | Some(Value::Null) => String::new(),
                            Some(Value::String(s)) => s.clone(),
                            Some(v) => v.to_string(),
                        })
                        .collect();
                    cw.write_record(&cells)?;
                }
                cw.flush()
            })
        }
        other => {
            return Err(DataError::Invalid {
                func: "save",
                msg: format!(
                    "{}: unsupported extension '.{other}' (expected one of: .jsonl, .json, .csv)",
                    path.display()
                ),
            })
        }
    };
    if let Some(e) = invalid {
        return Err(e);
    }
    written.map_err(|e| io_err(path, e))
}

/// The string field `field` of `row`, or an error naming the field and the fields present.
pub fn str_field<'a>(row: &'a Row, field: &str, context: &str) -> Result<&'a str, DataError> {
    match row.get(field) {
        Some(Value::String(s)) => Ok(s),
        Some(other) => Err(DataError::Invalid {
            func: "field",
            msg: format!(
                "{context}: field '{field}' is {}, expected a string",
                type_name(other)
            ),
        }),
        None => Err(DataError::MissingField {
            context: context.to_string(),
            field: field.to_string(),
            present: fields_present(row),
        }),
    }
}
