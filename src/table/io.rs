//! Table files that pandas and R read directly.
//!
//! - CSV (`csv` crate, RFC 4180): header = the columns; strings as is (quoted when needed),
//!   numbers in shortest round-trip form, bools `true`/`false`, null as an empty field,
//!   arrays/maps as JSON text. Reading parses integers and finite floats back to numbers,
//!   `true`/`false` to bools, and an empty field, `NA`, `NaN` or `nan` to null (pandas'
//!   default missing markers); everything else stays a string.
//! - JSON "records": one array of objects, every object with every column (null where a row
//!   has none) — `pandas.read_json(path)` (orient "records" is inferred) and
//!   `jsonlite::fromJSON(path)` give a data frame. Reading accepts such an array or JSON
//!   Lines (one object per line).
//!
//! Checked by hand with pandas 3.1 (`pd.read_csv`, `pd.read_json` on the files of the
//! `csv_and_json_round_trip` test table): same columns, numbers as int64/float64, empty
//! fields and JSON nulls as NaN.

use super::{Result, Table, TableError};
use crate::value::{Row, Value};
use std::path::Path;

fn io_err(func: &'static str, path: &Path, source: std::io::Error) -> TableError {
    TableError::Io {
        func,
        path: path.to_path_buf(),
        source,
    }
}

fn fmt_err(func: &'static str, path: &Path, message: impl Into<String>) -> TableError {
    TableError::Format {
        func,
        path: path.to_path_buf(),
        message: message.into(),
    }
}

fn csv_field(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn parse_field(s: &str) -> Value {
    match s {
        "" | "NA" | "NaN" | "nan" => return Value::Null,
        "true" => return Value::Bool(true),
        "false" => return Value::Bool(false),
        _ => {}
    }
    if let Ok(i) = s.parse::<i64>() {
        return Value::from(i);
    }
    match s.parse::<f64>() {
        Ok(x) if x.is_finite() => crate::value::num(x),
        _ => Value::String(s.to_string()),
    }
}

impl Table {
    /// The table as CSV text (see the module docs for the format).
    pub fn to_csv_string(&self) -> std::result::Result<String, csv::Error> {
        let mut w = csv::Writer::from_writer(Vec::new());
        w.write_record(self.columns())?;
        for r in self.rows() {
            w.write_record(
                self.columns()
                    .iter()
                    .map(|c| r.get(c).map_or_else(String::new, csv_field)),
            )?;
        }
        let bytes = w
            .into_inner()
            .map_err(|e| csv::Error::from(e.into_error()))?;
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    }

    /// Writes the table as CSV to `path` (atomically: a failed write keeps the old file).
    pub fn write_csv(&self, path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
        let text = self
            .to_csv_string()
            .map_err(|e| fmt_err("write_csv", path, e.to_string()))?;
        crate::fsutil::write_atomic(path, text.as_bytes()).map_err(|e| io_err("write_csv", path, e))
    }

    /// Parses CSV text with a header line.
    pub fn from_csv_str(text: &str) -> std::result::Result<Table, csv::Error> {
        let mut r = csv::ReaderBuilder::new().from_reader(text.as_bytes());
        let header: Vec<String> = r.headers()?.iter().map(str::to_string).collect();
        for (i, h) in header.iter().enumerate() {
            if header[..i].contains(h) {
                return Err(csv::Error::from(std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!("duplicate column name '{h}' in the header"),
                )));
            }
        }
        let mut t = Table::new();
        t.columns = header.clone();
        for rec in r.records() {
            let rec = rec?;
            let row: Row = header
                .iter()
                .zip(rec.iter())
                .map(|(h, f)| (h.clone(), parse_field(f)))
                .collect();
            t.rows.push(row);
        }
        Ok(t)
    }

    /// Reads a CSV file with a header line.
    pub fn read_csv(path: impl AsRef<Path>) -> Result<Table> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|e| io_err("read_csv", path, e))?;
        Table::from_csv_str(&text).map_err(|e| fmt_err("read_csv", path, e.to_string()))
    }

    /// The table as JSON records text: an array of objects with every column.
    pub fn to_json_string(&self) -> String {
        let mut out = String::from("[");
        for (i, r) in self.rows().iter().enumerate() {
            let full: Row = self
                .columns()
                .iter()
                .map(|c| (c.clone(), r.get(c).cloned().unwrap_or(Value::Null)))
                .collect();
            out.push_str(if i == 0 { "\n" } else { ",\n" });
            out.push_str(&Value::Object(full).to_string());
        }
        out.push_str("\n]\n");
        out
    }

    /// Writes the table as JSON records to `path` (atomically: a failed write keeps the old file).
    pub fn write_json(&self, path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
        crate::fsutil::write_atomic(path, self.to_json_string().as_bytes())
            .map_err(|e| io_err("write_json", path, e))
    }

    /// Reads a JSON array of objects or JSON Lines (one object per line).
    pub fn read_json(path: impl AsRef<Path>) -> Result<Table> {
        const FN: &str = "read_json";
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|e| io_err(FN, path, e))?;
        if text.trim_start().starts_with('[') {
            let v: Value =
                serde_json::from_str(&text).map_err(|e| fmt_err(FN, path, e.to_string()))?;
            match v {
                Value::Array(items) => Table::from_values(items),
                _ => Err(fmt_err(FN, path, "expected an array of objects")),
            }
        } else {
            let mut items = Vec::new();
            for (i, line) in text.lines().enumerate() {
                if line.trim().is_empty() {
                    continue;
                }
                let v: Value = serde_json::from_str(line)
                    .map_err(|e| fmt_err(FN, path, format!("line {}: {e}", i + 1)))?;
                items.push(v);
            }
            Table::from_values(items)
        }
    }
}
