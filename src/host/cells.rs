//! The result store behind `run_cells`: one JSON file per study cell. No `rhai` here.
//!
//! A cell (a map of plain values) is identified by its *key*: the SHA-256 of its canonical JSON
//! (object keys sorted at every level, no whitespace, numbers as `serde_json` prints them, so
//! `8` and `8.0` differ), as lowercase hex, first 12 characters. The result of cell `key` of the
//! study `name` is stored in `<out>/<name>/<key>.json` as
//! `{"cell": {...}, "metrics": {...}, "provenance": {...}, "settings": {...}, "script_sha256": "..."}`,
//! written atomically (temporary file and rename), so an interrupted run never leaves a
//! half-written result and a re-run skips the cells that have a file.
//!
//! A stored result is only reused under the settings it was made with: `settings` holds the
//! run's `--set` values as typed, and [`settings_diff`] compares them (by value, so `2e-4` and
//! `0.0002` agree) with the current run's. `script_sha256` is the SHA-256 of the script text,
//! so that a result made by an edited script can be reported. Records written before these
//! fields existed carry the settings in `provenance.settings` (absent there = no `--set`), and
//! no script hash (nothing to report).

use std::collections::BTreeMap;
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
    /// The run's `--set` settings (key → the text after `=`); `None` in older records (see
    /// [`CellRecord::stored_settings`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub settings: Option<BTreeMap<String, String>>,
    /// SHA-256 of the script text that made the result (`None`: unknown).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub script_sha256: Option<String>,
}

impl CellRecord {
    /// The `--set` settings the result was made with: the `settings` field, or for records
    /// written before it, `provenance.settings` (which was left out when there were none).
    pub fn stored_settings(&self) -> BTreeMap<String, String> {
        if let Some(s) = &self.settings {
            return s.clone();
        }
        match self.provenance.get("settings") {
            Some(Value::Object(m)) => m
                .iter()
                .map(|(k, v)| {
                    let text = match v {
                        Value::String(s) => s.clone(),
                        other => other.to_string(),
                    };
                    (k.clone(), text)
                })
                .collect(),
            _ => BTreeMap::new(),
        }
    }
}

/// One `--set` setting that differs between a stored result and this run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SettingDiff {
    /// The setting's name.
    pub key: String,
    /// Its text when the result was stored (`None`: not set).
    pub stored: Option<String>,
    /// Its text in this run (`None`: not set).
    pub now: Option<String>,
}

impl std::fmt::Display for SettingDiff {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let show = |v: &Option<String>| match v {
            Some(t) => format!("--set {}={t}", self.key),
            None => format!("no --set {}", self.key),
        };
        write!(
            f,
            "stored with {}, this run has {}",
            show(&self.stored),
            show(&self.now)
        )
    }
}

/// The settings that differ between `stored` and `now`; `same(a, b)` decides whether two
/// setting texts mean the same value.
pub fn settings_diff(
    stored: &BTreeMap<String, String>,
    now: &BTreeMap<String, String>,
    same: impl Fn(&str, &str) -> bool,
) -> Vec<SettingDiff> {
    let mut keys: Vec<&String> = stored.keys().chain(now.keys()).collect();
    keys.sort();
    keys.dedup();
    keys.into_iter()
        .filter_map(|k| {
            let (a, b) = (stored.get(k), now.get(k));
            let equal = match (a, b) {
                (Some(a), Some(b)) => same(a, b),
                (None, None) => true,
                _ => false,
            };
            (!equal).then(|| SettingDiff {
                key: k.clone(),
                stored: a.cloned(),
                now: b.cloned(),
            })
        })
        .collect()
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
            settings: Some(BTreeMap::from([("lr".to_string(), "2e-4".to_string())])),
            script_sha256: Some("ab".repeat(32)),
        };
        store.save(&key, &rec).unwrap();
        assert_eq!(store.load(&key, &cell).unwrap(), Some(rec));
        let e = store.load(&key, &json!({"r": 9})).unwrap_err().to_string();
        assert!(e.contains("instead of"), "{e}");
        for bad in ["", "../x", "/abs", "a//b", "a b"] {
            assert!(CellStore::new(dir.path(), bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn settings_of_old_and_new_records_and_their_differences() {
        let map = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        // An old record: settings only in provenance, or none at all.
        let mut old: CellRecord = serde_json::from_value(json!({
            "cell": {"r": 8}, "metrics": {}, "provenance": {"settings": {"lr": "2e-4"}}
        }))
        .unwrap();
        assert_eq!(old.stored_settings(), map(&[("lr", "2e-4")]));
        assert_eq!(old.script_sha256, None);
        old.provenance.clear();
        assert!(old.stored_settings().is_empty());
        // The field wins over provenance.
        old.settings = Some(map(&[("model", "a")]));
        old.provenance
            .insert("settings".into(), json!({"model": "b"}));
        assert_eq!(old.stored_settings(), map(&[("model", "a")]));
        // Differences, with a caller-defined equality (here: numeric when both parse).
        let same = |a: &str, b: &str| match (a.parse::<f64>(), b.parse::<f64>()) {
            (Ok(x), Ok(y)) => x == y,
            _ => a == b,
        };
        let stored = map(&[("lr", "2e-4"), ("model", "m1"), ("seed", "1")]);
        let now = map(&[("lr", "0.0002"), ("model", "m2"), ("r", "8")]);
        let d = settings_diff(&stored, &now, same);
        let keys: Vec<&str> = d.iter().map(|x| x.key.as_str()).collect();
        assert_eq!(keys, ["model", "r", "seed"]);
        assert_eq!(
            d[0].to_string(),
            "stored with --set model=m1, this run has --set model=m2"
        );
        assert_eq!(
            d[1].to_string(),
            "stored with no --set r, this run has --set r=8"
        );
        assert!(settings_diff(&stored, &stored, same).is_empty());
    }
}
