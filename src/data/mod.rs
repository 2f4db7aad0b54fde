//! Datasets: rows of JSON-like maps with the operations of the `Data` section of the API
//! (`load_dataset`, `dataset`, `filter`, `map`, `shuffle`, `take`, `skip`, `sample`,
//! `stratified_sample`, `concat`, `column`, `save`, `mixture`, `bactrian_partition`).
//!
//! Loading follows the Hugging Face `datasets` on-disk conventions (split files such as
//! `test-00000-of-00001.parquet` or `validation.jsonl`, see [`io`]). All randomness goes through
//! [`crate::rng`] (see [`sampling`]). `hash()` is a SHA-256 over canonical JSON lines, for
//! provenance records.

pub mod io;
pub mod mixture;
pub mod parquet;
pub mod sampling;

use std::fmt;
use std::path::Path;

use sha2::{Digest, Sha256};

pub use io::{load_dataset, LoadOptions};
pub use mixture::{
    bactrian_assignment, bactrian_partition, mixture, mixture_counts, MixBy, MixtureOptions,
    TokenCounter,
};

use crate::rng;
use crate::value::{as_key, Row, Value};

/// Errors of the data module. Messages name the function or file and the offending value.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A malformed row or file.
    #[error("{file}, line {line}: {msg}")]
    Parse {
        /// The file.
        file: String,
        /// 1-based line (or element / row number for JSON arrays and parquet).
        line: usize,
        /// What is wrong.
        msg: String,
    },
    /// A row lacks a field.
    #[error("{context}: missing field '{field}' (fields present: {present})")]
    MissingField {
        /// Where (function and row).
        context: String,
        /// The missing field.
        field: String,
        /// The fields the row has.
        present: String,
    },
    /// Bad arguments or data for an operation.
    #[error("{func}: {msg}")]
    Invalid {
        /// The function.
        func: &'static str,
        /// What is wrong.
        msg: String,
    },
    /// Nothing matched when looking for data files.
    #[error("{msg} (files found: {found})")]
    NotFound {
        /// What was looked for.
        msg: String,
        /// The files that were found instead.
        found: String,
    },
    /// Ctrl-C while reading or sampling a large dataset.
    #[error(transparent)]
    Interrupted(#[from] crate::interrupt::Interrupted),
}

impl DataError {
    /// A [`DataError::MissingField`] for `row`.
    pub fn missing(context: impl Into<String>, field: &str, row: &Row) -> Self {
        DataError::MissingField {
            context: context.into(),
            field: field.to_string(),
            present: fields_present(row),
        }
    }
}

/// The keys of a row, comma-separated (for error messages).
pub fn fields_present(row: &Row) -> String {
    if row.is_empty() {
        "none".to_string()
    } else {
        row.keys()
            .map(String::as_str)
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// An in-memory dataset: rows plus where they came from.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Dataset {
    rows: Vec<Row>,
    source: Option<String>,
}

impl Dataset {
    /// A dataset from rows (`dataset(array)`).
    pub fn new(rows: Vec<Row>) -> Self {
        Dataset { rows, source: None }
    }

    /// A dataset from rows with a provenance string (file path or the operation that made it).
    pub fn with_source(rows: Vec<Row>, source: impl Into<String>) -> Self {
        Dataset {
            rows,
            source: Some(source.into()),
        }
    }

    /// A dataset from JSON values, each of which must be an object.
    pub fn from_values(values: Vec<Value>) -> Result<Self, DataError> {
        let mut rows = Vec::with_capacity(values.len());
        for (i, v) in values.into_iter().enumerate() {
            match v {
                Value::Object(m) => rows.push(m),
                other => {
                    return Err(DataError::Invalid {
                        func: "dataset",
                        msg: format!("element {i} is not a map: {other}"),
                    })
                }
            }
        }
        Ok(Dataset::new(rows))
    }

    /// Number of rows.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// Whether there are no rows.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// Row `i`, or `None` when out of range.
    pub fn get(&self, i: usize) -> Option<&Row> {
        self.rows.get(i)
    }

    /// Row `i`, or an error naming the index and the length.
    pub fn row(&self, i: usize) -> Result<&Row, DataError> {
        self.rows.get(i).ok_or_else(|| DataError::Invalid {
            func: "dataset index",
            msg: format!(
                "index {i} out of range (dataset has {} rows)",
                self.rows.len()
            ),
        })
    }

    /// All rows.
    pub fn rows(&self) -> &[Row] {
        &self.rows
    }

    /// The rows, consuming the dataset.
    pub fn into_rows(self) -> Vec<Row> {
        self.rows
    }

    /// Where the rows came from, if known.
    pub fn source(&self) -> Option<&str> {
        self.source.as_deref()
    }

    fn derived(&self, rows: Vec<Row>, op: &str) -> Dataset {
        let source = match &self.source {
            Some(s) => format!("{s} | {op}"),
            None => op.to_string(),
        };
        Dataset {
            rows,
            source: Some(source),
        }
    }

    /// The rows for which `keep` returns true, in order. The closure's error is passed through.
    pub fn filter<E, F>(&self, mut keep: F) -> Result<Dataset, E>
    where
        F: FnMut(&Row) -> Result<bool, E>,
    {
        let mut out = Vec::new();
        for r in &self.rows {
            if keep(r)? {
                out.push(r.clone());
            }
        }
        Ok(self.derived(out, "filter"))
    }

    /// Every row replaced by `f(row)`. The closure's error is passed through.
    pub fn map<E, F>(&self, mut f: F) -> Result<Dataset, E>
    where
        F: FnMut(&Row) -> Result<Row, E>,
    {
        let mut out = Vec::with_capacity(self.rows.len());
        for r in &self.rows {
            out.push(f(r)?);
        }
        Ok(self.derived(out, "map"))
    }

    /// The rows in a seeded random order (Fisher–Yates on ChaCha8 from `rng::seeded(seed)`).
    pub fn shuffle(&self, seed: u64) -> Dataset {
        let mut r = rng::seeded(seed);
        let perm = sampling::permutation(&mut r, self.rows.len());
        let rows = perm
            .iter()
            .filter_map(|&i| self.rows.get(i).cloned())
            .collect();
        self.derived(rows, &format!("shuffle({seed})"))
    }

    /// The first `n` rows (all rows when `n >= len`).
    pub fn take(&self, n: usize) -> Dataset {
        let rows = self.rows.iter().take(n).cloned().collect();
        self.derived(rows, &format!("take({n})"))
    }

    /// All rows but the first `n`.
    pub fn skip(&self, n: usize) -> Dataset {
        let rows = self.rows.iter().skip(n).cloned().collect();
        self.derived(rows, &format!("skip({n})"))
    }

    /// `n` rows drawn without replacement, in the order drawn (a partial Fisher–Yates shuffle
    /// on `rng::seeded(seed)`). Errors when `n > len`.
    pub fn sample(&self, n: usize, seed: u64) -> Result<Dataset, DataError> {
        if n > self.rows.len() {
            return Err(DataError::Invalid {
                func: "sample",
                msg: format!(
                    "n = {n} exceeds the {} rows of the dataset",
                    self.rows.len()
                ),
            });
        }
        let mut r = rng::seeded(seed);
        let idx = sampling::choose(&mut r, self.rows.len(), n);
        let rows = idx
            .iter()
            .filter_map(|&i| self.rows.get(i).cloned())
            .collect();
        Ok(self.derived(rows, &format!("sample({n}, {seed})")))
    }

    /// This dataset's rows followed by `other`'s.
    pub fn concat(&self, other: &Dataset) -> Dataset {
        let mut rows = self.rows.clone();
        rows.extend(other.rows.iter().cloned());
        let a = self.source.as_deref().unwrap_or("dataset");
        let b = other.source.as_deref().unwrap_or("dataset");
        Dataset {
            rows,
            source: Some(format!("concat({a}, {b})")),
        }
    }

    /// The values of one field, one per row. Errors on the first row that lacks it.
    pub fn column(&self, name: &str) -> Result<Vec<Value>, DataError> {
        let mut out = Vec::with_capacity(self.rows.len());
        for (i, r) in self.rows.iter().enumerate() {
            match r.get(name) {
                Some(v) => out.push(v.clone()),
                None => return Err(DataError::missing(format!("column: row {i}"), name, r)),
            }
        }
        Ok(out)
    }

    /// Writes the rows to `path` as `.jsonl`, `.json` or `.csv` (by extension).
    pub fn save(&self, path: impl AsRef<Path>) -> Result<(), DataError> {
        io::save_rows(&self.rows, path.as_ref())
    }

    /// SHA-256 (hex) of the rows as canonical JSON lines (keys sorted at every level, compact
    /// separators, one row per line, each line ending in `\n`). Equal rows give equal hashes
    /// whatever the key order.
    pub fn hash(&self) -> String {
        let mut h = Sha256::new();
        for r in &self.rows {
            let mut line = String::new();
            canonical_json(&Value::Object(r.clone()), &mut line);
            line.push('\n');
            h.update(line.as_bytes());
        }
        hex(&h.finalize())
    }

    /// Group key of `field` in row `i` (string values without quotes), or a missing-field error.
    pub(crate) fn key_of(&self, i: usize, field: &str, func: &str) -> Result<String, DataError> {
        let r = self.row(i)?;
        r.get(field)
            .map(as_key)
            .ok_or_else(|| DataError::missing(format!("{func}: row {i}"), field, r))
    }
}

impl fmt::Display for Dataset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let cols = self
            .rows
            .first()
            .map(fields_present)
            .unwrap_or_else(|| "none".to_string());
        write!(f, "Dataset({} rows; columns: {cols}", self.rows.len())?;
        if let Some(s) = &self.source {
            let short: String = s.chars().take(80).collect();
            write!(f, "; source: {short}")?;
            if s.chars().count() > 80 {
                write!(f, "...")?;
            }
        }
        write!(f, ")")
    }
}

pub use crate::text::hex;

/// Writes `v` as canonical JSON: object keys sorted (by UTF-8 bytes) at every level, no spaces.
pub fn canonical_json(v: &Value, out: &mut String) {
    match v {
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            out.push('{');
            for (k, key) in keys.iter().enumerate() {
                if k > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String((*key).clone()).to_string());
                out.push(':');
                if let Some(x) = m.get(*key) {
                    canonical_json(x, out);
                }
            }
            out.push('}');
        }
        Value::Array(a) => {
            out.push('[');
            for (k, x) in a.iter().enumerate() {
                if k > 0 {
                    out.push(',');
                }
                canonical_json(x, out);
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}

/// Refuses a header that names a column twice: rows are maps, so the second column would
/// silently overwrite the first. `line` is where the header is (CSV line 1, parquet 0).
pub(crate) fn unique_columns(file: &str, line: usize, names: &[String]) -> Result<(), DataError> {
    for (i, h) in names.iter().enumerate() {
        if let Some(j) = names[..i].iter().position(|x| x == h) {
            return Err(DataError::Parse {
                file: file.to_string(),
                line,
                msg: format!(
                    "duplicate column name '{h}' (columns {} and {}); rename one",
                    j + 1,
                    i + 1
                ),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
