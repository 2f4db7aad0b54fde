//! The result store behind `run_cells`: one JSON file per study cell. No `rhai` here.
//!
//! A cell (a map of plain values) is identified by its *key*: the SHA-256 of its canonical JSON
//! (object keys sorted at every level, no whitespace, numbers as `serde_json` prints them, so
//! `8` and `8.0` differ), as lowercase hex, first 12 characters. The result of cell `key` of the
//! study `name` is stored in `<out>/<name>/<key>.json` as
//! `{"cell": {...}, "metrics": {...}, "provenance": {...}}`, written atomically (temporary file
//! and rename), so an interrupted run never leaves a half-written result and a re-run skips the
//! cells that have a file.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::files::{self, FileError};
use crate::value::{Row, Value};

/// Number of hex characters of the SHA-256 used as the cell key.
pub const KEY_LEN: usize = 12;

/// Errors of the cell store.
#[derive(Debug, thiserror::Error)]
pub enum CellError {
    /// The study name is not a safe relative path.
    #[error(
        "invalid study name '{0}' (use letters, digits, '_', '-', '.', and '/' between parts)"
    )]
    BadName(String),
    /// A result file exists but cannot be used.
    #[error("result file '{path}' is unusable ({reason}); delete it to recompute the cell")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// Reading or writing failed.
    #[error(transparent)]
    File(#[from] FileError),
}

/// The stored result of one cell.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CellRecord {
    /// The cell's settings.
    pub cell: Value,
    /// What the cell function returned (without its `provenance` entry).
    pub metrics: Row,
    /// Where the result came from (version, commit, times, seed, and the cell's own entries).
    pub provenance: Row,
}

/// Canonical JSON text: object keys sorted at every level, no whitespace.
pub fn canonical_json(v: &Value) -> String {
    match v {
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            let parts: Vec<String> = keys
                .iter()
                .map(|k| {
                    format!(
                        "{}:{}",
                        Value::String((*k).clone()),
                        canonical_json(&m[k.as_str()])
                    )
                })
                .collect();
            format!("{{{}}}", parts.join(","))
        }
        Value::Array(a) => format!(
            "[{}]",
            a.iter().map(canonical_json).collect::<Vec<_>>().join(",")
        ),
        other => other.to_string(),
    }
}

/// The key of a cell: first [`KEY_LEN`] hex characters of SHA-256(canonical JSON).
pub fn cell_key(cell: &Value) -> String {
    let mut h = files::sha256_bytes(canonical_json(cell).as_bytes());
    h.truncate(KEY_LEN);
    h
}

/// The directory of one study's results.
#[derive(Debug, Clone)]
pub struct CellStore {
    dir: PathBuf,
}

impl CellStore {
    /// The store of study `name` under `out_dir` (nothing is created yet).
    pub fn new(out_dir: &Path, name: &str) -> Result<Self, CellError> {
        let ok_part = |p: &str| {
            !p.is_empty()
                && p != "."
                && p != ".."
                && p.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c))
        };
        if name.is_empty() || !name.split('/').all(ok_part) {
            return Err(CellError::BadName(name.to_string()));
        }
        Ok(CellStore {
            dir: out_dir.join(name),
        })
    }

    /// The store's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The result file of a cell key.
    pub fn path(&self, key: &str) -> PathBuf {
        self.dir.join(format!("{key}.json"))
    }

    /// Loads the result of `cell` (with key `key`) if it exists. A file that does not parse, or
    /// that holds a different cell (a key collision or an edited file), is an error.
    pub fn load(&self, key: &str, cell: &Value) -> Result<Option<CellRecord>, CellError> {
        let path = self.path(key);
        if !path.exists() {
            return Ok(None);
        }
        let corrupt = |reason: String| CellError::Corrupt {
            path: path.clone(),
            reason,
        };
        let value = files::read_json(&path).map_err(|e| corrupt(e.to_string()))?;
        let rec: CellRecord = serde_json::from_value(value).map_err(|e| corrupt(e.to_string()))?;
        if canonical_json(&rec.cell) != canonical_json(cell) {
            return Err(corrupt(format!(
                "it holds cell {} instead of {}",
                canonical_json(&rec.cell),
                canonical_json(cell)
            )));
        }
        Ok(Some(rec))
    }

    /// Saves a result atomically.
    pub fn save(&self, key: &str, rec: &CellRecord) -> Result<(), CellError> {
        let value = serde_json::to_value(rec).map_err(|e| CellError::Corrupt {
            path: self.path(key),
            reason: e.to_string(),
        })?;
        files::write_json(&self.path(key), &value, true)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn canonical_json_sorts_keys_recursively() {
        let v = json!({"r": 8, "method": "lora", "opts": {"z": [1, 2.5], "a": null}});
        assert_eq!(
            canonical_json(&v),
            r#"{"method":"lora","opts":{"a":null,"z":[1,2.5]},"r":8}"#
        );
        // Key order does not change the key; int vs float does.
        let w = json!({"opts": {"a": null, "z": [1, 2.5]}, "method": "lora", "r": 8});
        assert_eq!(cell_key(&v), cell_key(&w));
        assert_ne!(cell_key(&json!({"r": 8})), cell_key(&json!({"r": 8.0})));
        // sha256 of the canonical text `{"r":8}`, checked with
        // python3 -c 'import hashlib;print(hashlib.sha256(b"{\"r\":8}").hexdigest()[:12])'
        assert_eq!(cell_key(&json!({"r": 8})), "08b2338301c6");
    }

    #[test]
    fn store_roundtrip_and_mismatch() {
        let dir = tempfile::tempdir().unwrap();
        let store = CellStore::new(dir.path(), "grid/a").unwrap();
        let cell = json!({"r": 8});
        let key = cell_key(&cell);
        assert!(store.load(&key, &cell).unwrap().is_none());
        let mut metrics = Row::new();
        metrics.insert("acc".into(), json!(0.5));
        let rec = CellRecord {
            cell: cell.clone(),
            metrics,
            provenance: Row::new(),
        };
        store.save(&key, &rec).unwrap();
        assert_eq!(store.load(&key, &cell).unwrap(), Some(rec));
        let e = store.load(&key, &json!({"r": 9})).unwrap_err().to_string();
        assert!(e.contains("instead of"), "{e}");
        for bad in ["", "../x", "/abs", "a//b", "a b"] {
            assert!(CellStore::new(dir.path(), bad).is_err(), "{bad}");
        }
    }
}
